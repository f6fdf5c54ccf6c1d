//! `netra chat` and `netra loadgen` against a real `netra serve` on port 0.
//!
//! One server serves every step: starting it compiles the guest plugins, which is
//! the slow part.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use netra_tests::serve::Server;

/// The plugins the server loads: the helper agent and the tools it routes to,
/// an agent that spins until its deadline (runs that are still going when
/// the crash test kills the server), and one that asks its user.
const PLUGINS: [&str; 6] = [
    "helper",
    "calculator",
    "clock",
    "text",
    "fixture_agent_spin",
    "fixture_agent_echo",
];

fn netra(args: &[&str]) -> Command {
    let mut command = netra_tests::serve::netra();
    command.args(args);
    command
}

fn serve() -> Server {
    Server::serve_guests(&PLUGINS)
}

/// Runs `netra ARGS` to its end.
fn run(args: &[&str]) -> Output {
    netra(args).output().expect("netra runs")
}

/// Runs `netra chat` with `input` on stdin.
fn chat(server: &Server, token: &str, input: &str) -> Output {
    chat_with(server, token, "helper", input)
}

/// Runs `netra chat --agent AGENT` with `input` on stdin.
fn chat_with(server: &Server, token: &str, agent: &str, input: &str) -> Output {
    let mut child = netra(&["chat", "--url", &server.url(), "--agent", agent])
        .env("NETRA_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netra chat starts");
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(input.as_bytes()).expect("write chat input");
    drop(stdin);
    child.wait_with_output().expect("netra chat ends")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn loadgen_and_chat_against_a_real_server() {
    let server = serve();
    let data_dir = server.state_dir().display().to_string();

    // loadgen: 20 users with 5 runs each, every frame checked.
    let out = run(&[
        "loadgen",
        "--url",
        &server.url(),
        "--data-dir",
        &data_dir,
        "--sessions",
        "20",
        "--runs",
        "5",
        "--json",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen failed: {stdout}\n{}",
        text(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    for (key, want) in [
        ("runs", 100),
        ("acks", 100),
        ("errors", 0),
        ("misrouted", 0),
        ("missing", 0),
        ("gaps", 0),
    ] {
        assert_eq!(report[key], want, "{key} in {report}");
    }
    assert!(report["latency_ms"]["p99"].as_f64().is_some(), "{report}");

    // chat: a piped question prints the streamed answer and exits 0.
    let out = run(&["token", "--data-dir", &data_dir, "--sub", "alice"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout
        .lines()
        .last()
        .expect("a token line")
        .trim()
        .to_string();

    let out = chat(&server, &token, "what is 2+3*4\n");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "chat failed: {stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("→ calculate"), "{stdout}");
    assert!(stdout.contains("14"), "{stdout}");

    // Two questions in one thread, and the commands.
    let out = chat(
        &server,
        &token,
        "/agents\nwhat is 6*7\n/tools\nwhat is 1+1\n/quit\n",
    );
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "chat failed: {stdout}\n{}",
        text(&out.stderr)
    );
    for want in ["helper (", "42", "calculate (from ", "2"] {
        assert!(stdout.contains(want), "{want:?} missing in {stdout}");
    }

    // The agent asks: the next lines answer, a wrong one is refused and
    // the question stays open for the next.
    let out = chat_with(&server, &token, "echo-agent", "ask\nA\nAda\n");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "chat failed: {stdout}\n{}",
        text(&out.stderr)
    );
    for want in [
        "? What is your name? (answer on the next line)",
        "error invalid_value",
        "question answered",
        "hello Ada",
    ] {
        assert!(stdout.contains(want), "{want:?} missing in {stdout}");
    }

    // A refused upgrade shows the status and the reason, and fails.
    let out = chat(&server, "not-a-token", "hello\n");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("malformed token"),
        "{stderr}"
    );
}

/// kill -9 under load, then restart: nothing a client saw is lost, and every
/// interrupted run is closed with `host_restarted`.
#[test]
fn a_kill_9_under_load_loses_no_event_a_client_saw() {
    use netra_store::{RunStatus, SqliteStore, Store, StoreOptions};

    let server = serve();
    let data_dir = server.state_dir().display().to_string();
    let record = server.state_dir().join("received.jsonl");
    let spin_record = server.state_dir().join("spin.jsonl");
    let loadgen = |agent: &str, sessions: &str, runs: &str, record: &Path| {
        netra(&[
            "loadgen",
            "--url",
            &server.url(),
            "--data-dir",
            &data_dir,
            "--agent",
            agent,
            "--sessions",
            sessions,
            "--runs",
            runs,
            "--run-timeout-secs",
            "120",
            "--json",
            "--record",
        ])
        .arg(record)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("loadgen starts")
    };
    // 20 users running helper back to back, far more runs than fit in the
    // time, and 3 users with a run that is still going at the kill.
    let helper_load = loadgen("helper", "20", "1000000", &record);
    let spin_load = loadgen("spin-agent", "3", "1", &spin_record);
    // Let the load build up: wait until runs are going, then a little longer.
    let db = server.state_dir().join("netra.db");
    let probe = SqliteStore::open(&db, StoreOptions::default()).expect("open the store");
    for _ in 0..600 {
        if !probe.running_runs().expect("read runs").is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(probe);
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let args = server.args().to_vec();
    let (data, plugins) = server.kill_9();
    // The load generators see their connections drop, write what they
    // received and exit.
    let out = helper_load.wait_with_output().expect("loadgen ends");
    assert!(
        !out.status.success(),
        "loadgen should report the lost connections: {}",
        text(&out.stdout)
    );
    let spin_out = spin_load.wait_with_output().expect("loadgen ends");
    assert!(!spin_out.status.success(), "{}", text(&spin_out.stdout));
    let received = std::fs::read_to_string(&record).expect("the record")
        + &std::fs::read_to_string(&spin_record).expect("the spin record");
    let frames: Vec<&str> = received.lines().collect();
    assert!(
        frames.len() > 100,
        "only {} frames before the kill",
        frames.len()
    );

    let server = Server::spawn(&args, data, plugins);
    let store = SqliteStore::open(&db, StoreOptions::default()).expect("reopen the store");
    assert_eq!(store.integrity_check().expect("integrity_check"), ["ok"]);
    assert!(
        store.running_runs().expect("running runs").is_empty(),
        "recovery closed every run"
    );

    // Every event any client received is in the log, byte for byte.
    let mut runs = std::collections::BTreeMap::<String, (u64, bool)>::new();
    for frame in &frames {
        let message = netra_tests::ws::decode(frame);
        let run_id = message["run_id"].as_str().expect("run_id").to_string();
        let Some(seq) = message["seq"].as_u64() else {
            // A run.start ack: the run was recorded.
            runs.entry(run_id).or_default();
            continue;
        };
        let stored = store
            .events_after(&run_id, seq - 1, 1)
            .expect("read the log");
        assert_eq!(stored, [frame.to_string()], "event {seq} of {run_id}");
        let terminal = matches!(
            message["type"].as_str(),
            Some("agent_completed" | "agent_error")
        );
        let entry = runs.entry(run_id).or_default();
        entry.0 = entry.0.max(seq);
        entry.1 |= terminal;
    }

    // Every run the kill interrupted (acknowledged, and no terminal event
    // reached its client) has ended: with host_restarted after the last event
    // stored, or with a terminal event committed just before the kill.
    let mut restarted = 0;
    for (run_id, (last_seen, ended)) in &runs {
        if *ended {
            continue;
        }
        let run = store
            .run(run_id)
            .expect("read run")
            .expect("the run exists");
        assert_ne!(run.status, RunStatus::Running, "{run_id}");
        assert!(
            run.last_seq > *last_seen,
            "{run_id} has no end after what was seen"
        );
        let last = store
            .events_after(run_id, run.last_seq - 1, 1)
            .expect("read the log");
        let last: serde_json::Value = serde_json::from_str(&last[0]).expect("JSON");
        if run.error_code.as_deref() == Some("host_restarted") {
            assert_eq!(last["type"], "agent_error");
            assert_eq!(last["code"], "host_restarted");
            assert_eq!(last["retryable"], true);
            restarted += 1;
        } else {
            assert!(
                matches!(
                    last["type"].as_str(),
                    Some("agent_completed" | "agent_error")
                ),
                "{last}"
            );
        }
    }
    let recovered = server
        .banner
        .iter()
        .find_map(|line| line.strip_prefix("recovered: "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(
        recovered > 0,
        "no run was in flight at the kill; serve printed {:?}; loadgen: {} {}; {} frames",
        server.banner,
        text(&out.stdout),
        text(&out.stderr),
        frames.len()
    );
    assert!(restarted >= 3, "the spinning runs end with host_restarted");
    assert!(restarted <= recovered, "{restarted} > {recovered}");

    // The restarted host serves: one more run completes.
    let out = run(&[
        "loadgen",
        "--url",
        &server.url(),
        "--data-dir",
        &data_dir,
        "--sessions",
        "2",
        "--runs",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stdout));
}
