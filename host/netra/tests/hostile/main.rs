//! The hostile-plugin battery: each attack runs through the real `netra
//! serve` (real components, a real SQLite file, real WebSocket clients) and
//! must end with its own code, with the host up and a bystander's `helper`
//! runs completing after every one.
//!
//! A test binary of its own, like `tests/timing`: cargo runs test binaries
//! one after another, so the battery (whose guests run at SCHED_IDLE and
//! whose bystander must stay fast) does not share the 2 cores with the
//! dozens of servers of the `netra` binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use netra_tests::block_on;
use netra_tests::serve::{CALCULATOR, Plugin, Server};
use netra_tests::ws::Client;

const HELPER: Plugin = Plugin {
    guest: "helper",
    manifest: r#"name = "helper"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate"]
"#,
};

const CONFIG: &str = r#"
[limits]
max_runs_per_user = 8

[limits.agent]
deadline = "4s"
max_event_bytes = "4MiB"
max_tool_calls = 100
max_tool_arguments_bytes = "16KiB"
max_answer_bytes = "64KiB"
max_nested_runs = 3
log_lines_per_second = 20
kv_max_keys = 50
tool_progress_per_second = 5

[limits.tool]
deadline = "1s"
max_result_bytes = "64KiB"
log_lines_per_second = 20

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "sleep", "huge_result", "flood_progress", "escape", "helper", "hostile-agent"]
"#;

fn plugins() -> Vec<Plugin> {
    vec![
        CALCULATOR,
        HELPER,
        Plugin {
            guest: "fixture-hostile",
            manifest: "name = \"hostile\"\nversion = \"1.0.0\"\nkind = \"tool\"\n",
        },
        Plugin {
            guest: "agent-hostile",
            manifest: r#"name = "agent-hostile"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate", "sleep", "huge_result", "escape"]
agents = ["helper"]
"#,
        },
        Plugin {
            guest: "agent-spin",
            manifest: "name = \"agent-spin\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
        Plugin {
            guest: "agent-membomb",
            manifest: "name = \"agent-membomb\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
        Plugin {
            guest: "agent-echo",
            manifest: "name = \"agent-echo\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
        Plugin {
            guest: "agent-trap",
            manifest: "name = \"agent-trap\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
    ]
}

/// The terminal event's code: `agent_error.code`, or `completed`.
fn outcome(end: &Value) -> String {
    match end["type"].as_str() {
        Some("agent_error") => end["code"].as_str().unwrap_or_default().to_string(),
        Some("agent_completed") => end["outcome"].as_str().unwrap_or_default().to_string(),
        _ => format!("no terminal event: {end}"),
    }
}

/// The error codes of the run's failed tool calls.
fn tool_errors(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "tool_completed" && e["error"].is_object())
        .map(|e| e["error"]["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

struct Battery {
    server: Server,
    attacker: String,
    bystander: String,
}

impl Battery {
    /// Runs `agent` on `input` as the attacker; then the bystander's run must
    /// still complete with the right answer.
    fn attack(&self, agent: &str, input: &str) -> Vec<Value> {
        let events = self.server.run_events(&self.attacker, agent, input);
        self.bystander_is_served(&format!("{agent} {input}"));
        events
    }

    fn bystander_is_served(&self, after: &str) {
        let end = self.server.run(&self.bystander, "helper", "what is 6 * 7");
        assert_eq!(end["type"], "agent_completed", "after {after}: {end}");
        assert!(
            end["output"].as_str().unwrap_or_default().contains("42"),
            "after {after}: {end}"
        );
        let (status, _) = self.server.http("GET", "/healthz", None);
        assert_eq!(status, 200, "after {after}");
    }
}

#[test]
fn hostile_plugins_and_clients_end_with_their_codes_and_disturb_no_one() {
    // A session whose client stops reading is closed within a bounded time.
    // Its queue holds more than one run's event budget, so only a client
    // that does not read can fill it.
    let server = Server::start_with_env(
        &plugins(),
        "refuse",
        CONFIG,
        &[
            ("NETRA_SERVER__SEND_QUEUE_BYTES", "2MiB"),
            ("NETRA_SERVER__WRITE_TIMEOUT", "1s"),
        ],
    );
    let battery = Battery {
        attacker: server.token("mallory", &[]),
        bystander: server.token("bob", &[]),
        server,
    };
    battery.bystander_is_served("start");

    // Infinite loop, memory bomb, stack overflow, trap.
    let started = Instant::now();
    let end = battery.attack("spin-agent", "go");
    assert_eq!(outcome(end.last().unwrap()), "timeout");
    assert!(started.elapsed() < Duration::from_secs(15));
    let end = battery.attack("membomb-agent", "go");
    assert_eq!(outcome(end.last().unwrap()), "out_of_memory");
    let end = battery.attack("hostile-agent", "recurse");
    assert_eq!(outcome(end.last().unwrap()), "stack_overflow");
    let end = battery.attack("trap-agent", "go");
    assert_eq!(outcome(end.last().unwrap()), "trap");

    // A tool that sleeps past its deadline (a WASI clock wait, where no
    // epoch check runs) ends at the deadline, not when it wakes.
    let started = Instant::now();
    let events = battery.attack("hostile-agent", "sleep 60000");
    let tool_took = started.elapsed();
    assert_eq!(tool_errors(&events), ["timeout"], "{events:#?}");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    assert!(tool_took < Duration::from_secs(10), "took {tool_took:?}");
    let duration = events
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .and_then(|e| e["duration_ms"].as_f64())
        .unwrap_or(f64::MAX);
    assert!(
        duration < 1100.0,
        "the call took {duration} ms (deadline 1 s)"
    );

    // Huge tool result, huge arguments, huge answer.
    let events = battery.attack("hostile-agent", "huge_result 100000");
    assert_eq!(tool_errors(&events), ["result_too_large"]);
    assert_eq!(outcome(events.last().unwrap()), "completed");
    let events = battery.attack("hostile-agent", "huge_args 100000");
    assert_eq!(tool_errors(&events), ["arguments_too_large"]);
    let executing = events
        .iter()
        .find(|e| e["type"] == "tool_executing")
        .expect("tool_executing");
    assert_eq!(executing["arguments"]["omitted_bytes"], 100_000 + 17);
    let events = battery.attack("hostile-agent", "answer 100000");
    assert_eq!(outcome(events.last().unwrap()), "budget_answer_bytes");

    // Output, event and tool-call floods.
    // 1,000 times the log rate: the excess is dropped and the run ends well.
    // (Not more: guest threads run SCHED_IDLE, so on a machine busy with
    // other work a flood of host calls is slow to go through.)
    let events = battery.attack("hostile-agent", "print 20000");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    // 20,000 progress reports in one call: the run carries 5 a second
    // (limits tool_progress_per_second), all between the call's
    // tool_executing and tool_completed; the rest are dropped.
    let events = battery.attack("hostile-agent", "progress 20000");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    assert_eq!(
        events.last().unwrap()["output"],
        r#"{"reported":20000}"#,
        "{events:#?}"
    );
    let at = |kind: &str| events.iter().position(|e| e["type"] == kind);
    let progress: Vec<usize> = (0..events.len())
        .filter(|i| events[*i]["type"] == "tool_progress")
        .collect();
    assert!(
        (5..=10).contains(&progress.len()),
        "{} tool_progress events",
        progress.len()
    );
    let (executing, completed) = (at("tool_executing"), at("tool_completed"));
    assert!(
        progress
            .iter()
            .all(|i| Some(*i) > executing && Some(*i) < completed)
    );
    assert_eq!(events[progress[0]]["text"], "report 0");
    let events = battery.attack("hostile-agent", "events");
    assert_eq!(outcome(events.last().unwrap()), "budget_event_bytes");
    let stored: usize = events.iter().map(|e| e.to_string().len()).sum();
    // The budget counts what the events take in the store, which is at
    // least their frames.
    assert!(stored < 4 << 20, "{stored} bytes of events");
    let events = battery.attack("hostile-agent", "tools");
    assert_eq!(outcome(events.last().unwrap()), "budget_tool_calls");
    let calls = events
        .iter()
        .filter(|e| e["type"] == "tool_executing")
        .count();
    assert_eq!(calls, 100);

    // kv bomb: the quota stops it; the plugin sees `too-large`.
    let events = battery.attack("hostile-agent", "kv 1000");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    let answer = events.last().unwrap()["output"]
        .as_str()
        .unwrap_or_default();
    assert!(
        answer.starts_with("written 50; error:") && answer.contains("kv_max_keys"),
        "{answer}"
    );

    // Recursive delegation and a nested-run storm.
    let events = battery.attack("hostile-agent", "delegate");
    assert_eq!(outcome(events.last().unwrap()), "delegation_too_deep");
    let events = battery.attack("hostile-agent", "nested 10");
    assert_eq!(outcome(events.last().unwrap()), "budget_nested_runs");
    let nested = events
        .iter()
        .filter(|e| e["type"] == "agent_started" && e["agent"] == "helper")
        .count();
    assert_eq!(nested, 3);

    // Escapes: no file, environment, socket or HTTP host was granted.
    let events = battery.attack("hostile-agent", "escape");
    let end = events.last().unwrap();
    assert_eq!(outcome(end), "completed");
    let report: Value =
        serde_json::from_str(end["output"].as_str().unwrap_or_default()).expect("a report");
    for what in [
        "read_etc_passwd",
        "list_root",
        "env_home",
        "tcp_connect",
        "http_get",
        "write_tmp",
    ] {
        assert_eq!(report[what], false, "{what}: {report:#}");
    }
    assert_eq!(report["env_vars"], 0, "{report:#}");

    // A client that never reads: its session is closed (send queue bytes or
    // write timeout), nobody else notices.
    never_reading_client(&battery);
    battery.bystander_is_served("a client that never reads");
}

fn never_reading_client(battery: &Battery) {
    let url = battery.server.url();
    let token = battery.attacker.clone();
    block_on(async move {
        let mut ws = netra_tests::ws::socket(&url, &token).await;
        // The attack: six runs streaming deltas until their event budget
        // (about 1 MB of frames each), to a client that reads nothing.
        for id in 1..=6 {
            let start = json!({"type": "run.start", "id": id.to_string(), "agent": "hostile-agent", "input": "deltas 3000"});
            ws.send(Message::Text(start.to_string().into()))
                .await
                .expect("send");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut completed = 0;
        let closed = loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(Message::Text(text)))) => {
                    completed += usize::from(text.contains("\"agent_completed\""));
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => break None,
                Err(_) => panic!("the session of a client that never read is still open"),
            }
        };
        assert!(completed < 6, "every run reached a client that never read");
        assert!(
            matches!(closed, Some(1013) | None),
            "closed with {closed:?}"
        );
    });
}

const WIRE_CONFIG: &str = r#"
[limits]
max_history_bytes = 7

[limits.agent]
deadline = "2s"

[limits.tool]
deadline = "30s"

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "huge_result", "sleep", "escape", "helper"]

[plugin.agent-spin.limits]
fuel = 20000000
"#;

/// The wire and HTTP limits: big answers and results below their budgets
/// still arrive whole (over a socket whose incoming limit is the 1 KiB
/// floor), `thread.get` pages by bytes, and connections are bounded.
#[test]
fn big_frames_arrive_and_connections_are_bounded() {
    let server = Server::start_with_env(
        &plugins(),
        "refuse",
        WIRE_CONFIG,
        &[
            ("NETRA_SERVER__MAX_MESSAGE_BYTES", "1024"),
            ("NETRA_SERVER__PAGE_BYTES", "256KiB"),
            ("NETRA_SERVER__MAX_SESSIONS_PER_USER", "2"),
            ("NETRA_SERVER__MAX_BODY_BYTES", "4KiB"),
            ("NETRA_SERVER__HEADER_READ_TIMEOUT", "1s"),
        ],
    );
    let token = server.token("carol", &[]);

    // Fuel configured in netra.toml is honoured.
    let end = server.run(&token, "spin-agent", "go");
    assert_eq!(outcome(&end), "out_of_fuel");
    // An agent waiting on a tool call (the tool may sleep 30 s) ends at its
    // own deadline of 2 s.
    let started = Instant::now();
    let end = server.run(&token, "hostile-agent", "sleep 20000");
    assert_eq!(outcome(&end), "timeout");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A 300,000-byte answer and a 300,000-byte tool result: far over the
    // socket's own 1 KiB message limit, under their budgets (1 MiB).
    let events = server.run_events(&token, "hostile-agent", "answer 300000");
    let end = events.last().expect("an end");
    assert_eq!(outcome(end), "completed");
    assert_eq!(end["output"].as_str().map(str::len), Some(300_000));
    let events = server.run_events(&token, "hostile-agent", "huge_result 300000");
    assert_eq!(outcome(events.last().expect("an end")), "completed");
    assert_eq!(events.last().expect("an end")["output"], "300000");
    let result = events
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .expect("tool_completed");
    assert_eq!(result["ok"].as_str().map(str::len), Some(300_000));

    let url = server.url();
    block_on(async {
        // Two runs of 300,000-byte answers in one thread, then its pages.
        let mut ws = Client::connect(&url, &token).await;
        let (thread, _) = ws.run_in(None, "hostile-agent", "answer 300000").await;
        ws.run_in(Some(&thread), "hostile-agent", "answer 300000")
            .await;
        let mut after = 0;
        let mut pages = Vec::new();
        loop {
            let page = ws
                .request(
                    "thread.get",
                    json!({"thread_id": thread, "after_seq": after}),
                )
                .await;
            let messages = page["messages"].as_array().expect("messages").clone();
            let bytes: usize = messages
                .iter()
                .map(|m| m["content"].as_str().map_or(0, str::len))
                .sum();
            pages.push((messages.len(), bytes));
            after = messages
                .last()
                .and_then(|m| m["seq"].as_u64())
                .expect("a seq");
            if page["has_more"] != true {
                break;
            }
        }
        // user, answer, user, answer: each answer is over the page's bytes,
        // so it comes alone, and nothing comes after it.
        assert_eq!(
            pages,
            [(1, 13), (1, 300_000), (1, 13), (1, 300_000)],
            "pages of (messages, bytes)"
        );

        // The history a run gets is cut to max_history_bytes (7): the
        // latest messages that fit.
        let (thread, _) = ws.run_in(None, "echo-agent", "one").await;
        ws.run_in(Some(&thread), "echo-agent", "two").await;
        let (_, end) = ws.run_in(Some(&thread), "echo-agent", "history").await;
        assert_eq!(end["output"], "user: two\nassistant: two");

        // The per-user session cap: carol holds two sessions now.
        let _second = Client::connect(&url, &token).await;
        let mut request = url.as_str().into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 429);
            }
            other => panic!("a third session was not refused: {:?}", other.map(|_| ())),
        }
        // Another user is not affected.
        let dave = server.token("dave", &[]);
        let _dave = Client::connect(&url, &dave).await;
    });

    // Body limit on a route that reads no body.
    let (status, body) = server.http_body("POST", "/healthz", None, "text/plain", &[b'x'; 10_000]);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"], "body_too_large");

    // A partial request line is closed after the header-read timeout.
    let mut partial = TcpStream::connect(&server.addr).expect("connect");
    partial.write_all(b"GET /healthz HTT").expect("write");
    partial
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0_u8; 256];
    let read = partial.read(&mut buf);
    assert!(
        matches!(&read, Ok(0))
            || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
            || String::from_utf8_lossy(&buf).contains("408"),
        "{read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

const CAP_CONFIG: &str = r#"
[limits]
max_history_messages = 3
max_runs_per_user = 1

[limits.agent]
kv_max_bytes = "4KiB"

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "huge_result", "sleep", "escape", "helper"]
"#;

/// Connections over `max_connections` wait until one closes; idle ones are
/// closed by the header-read timeout (which also ends idle keep-alive
/// connections); a run's history is its thread's latest messages.
#[test]
fn connections_over_the_cap_wait_and_history_is_bounded() {
    let server = Server::start_with_env(
        &plugins(),
        "refuse",
        CAP_CONFIG,
        &[
            ("NETRA_SERVER__MAX_CONNECTIONS", "3"),
            ("NETRA_SERVER__HEADER_READ_TIMEOUT", "2s"),
        ],
    );
    let token = server.token("erin", &[]);
    let url = server.url();
    block_on(async {
        let mut ws = Client::connect(&url, &token).await;
        let (thread, _) = ws.run_in(None, "echo-agent", "one").await;
        ws.run_in(Some(&thread), "echo-agent", "two").await;
        let (_, end) = ws.run_in(Some(&thread), "echo-agent", "history").await;
        // Four messages in the thread; the run got the latest three.
        assert_eq!(end["output"], "assistant: one\nuser: two\nassistant: two");
        // The kv quota in bytes: three keys of 1026 bytes fit in 4 KiB.
        let (_, end) = ws.run_in(None, "hostile-agent", "kv 100").await;
        let answer = end["output"].as_str().unwrap_or_default();
        assert!(
            answer.starts_with("written 3; error:") && answer.contains("kv_max_bytes"),
            "{end}"
        );
    });

    // A nested run takes a run slot like any other: with one run per user,
    // the agent's call of `helper` is refused and the run goes on.
    let events = server.run_events(&token, "hostile-agent", "nested 1");
    assert_eq!(tool_errors(&events), ["too_many_runs"], "{events:#?}");
    assert_eq!(outcome(events.last().expect("an end")), "completed");

    // A keep-alive connection that went idle after a response is closed.
    let mut idle = TcpStream::connect(&server.addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: netra\r\n\r\n")
        .expect("write");
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut response = Vec::new();
    let mut buf = [0_u8; 1024];
    let closed = loop {
        match idle.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    assert!(String::from_utf8_lossy(&response).starts_with("HTTP/1.1 200"));
    assert!(closed, "the idle keep-alive connection was not closed");

    // Three connections that send nothing hold every slot.
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&server.addr).expect("connect"))
        .collect();
    // The kernel accepts a fourth, but the host serves it only once a slot
    // is free: when the header-read timeout closes the idle three.
    let mut waiting = TcpStream::connect(&server.addr).expect("connect");
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: netra\r\nConnection: close\r\n\r\n")
        .expect("write");
    waiting
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    assert!(
        waiting.read(&mut buf).is_err(),
        "served while every slot was held"
    );
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut response = String::new();
    waiting.read_to_string(&mut response).expect("a response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    for mut conn in held {
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let read = conn.read(&mut buf);
        assert!(
            matches!(&read, Ok(0))
                || matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
            "an idle connection was not closed: {read:?}"
        );
    }
}

const FAIR_CONFIG: &str = r#"
[limits]
guest_cpus = 1

[limits.agent]
deadline = "120s"

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "sleep", "huge_result", "escape", "helper"]
"#;

/// The CPU goes to users in turn, not to runs: with one guest slot
/// (`guest_cpus = 1`), four runs of one user computing and then one run of
/// another user doing the same work, the other user's run (half the slot's
/// time against an eighth for each of the four) ends first. Shared by run,
/// it would get a fifth, and end about last.
#[test]
fn guests_share_the_cpu_by_user_not_by_run() {
    let server = Server::start(&plugins(), "refuse", FAIR_CONFIG);
    let mallory = server.token("mallory", &[]);
    let bob = server.token("bob", &[]);
    let url = server.url();
    let burn = "burn 150000000";
    block_on(async {
        let mut sockets = Vec::new();
        for _ in 0..4 {
            let mut ws = Client::connect(&url, &mallory).await;
            start(&mut ws, "hostile-agent", burn).await;
            // Computing from here on.
            let thought = ws.until(&["agent_thinking", "agent_error"]).await;
            assert_eq!(thought["type"], "agent_thinking", "{thought}");
            sockets.push(("mallory", ws));
        }
        let mut ws = Client::connect(&url, &bob).await;
        start(&mut ws, "hostile-agent", burn).await;
        sockets.push(("bob", ws));

        let mut ends: futures_util::stream::FuturesUnordered<_> = sockets
            .into_iter()
            .map(|(user, mut ws)| async move {
                let end = ws.until(&["agent_completed", "agent_error"]).await;
                (user, end)
            })
            .collect();
        let mut order = Vec::new();
        while let Some((user, end)) = ends.next().await {
            assert_eq!(outcome(&end), "completed", "{user}: {end}");
            order.push((user, end["output"].clone()));
        }
        assert_eq!(order[0].0, "bob", "the order the runs ended in: {order:?}");
        // The same work each time: the same answer.
        assert!(order.iter().all(|(_, out)| *out == order[0].1), "{order:?}");
    });
}

const RATE_CONFIG: &str = r#"
[limits]
user_event_bytes_per_sec = "256KiB"
user_event_burst_bytes = "64KiB"
user_memory_growth_bytes_per_sec = "16MiB"
user_memory_growth_burst_bytes = "16MiB"

[limits.agent]
deadline = "2s"

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "sleep", "huge_result", "escape", "helper"]
"#;

/// A user's events go into the store at their rate, however fast their
/// agent emits (`[limits] user_event_bytes_per_sec`): the flooding run waits
/// and ends at its deadline, far below the 16 MiB event budget it reaches in
/// well under a second without the rate, while another user's run is served
/// meanwhile. Likewise a user's memories grow at their rate
/// (`user_memory_growth_bytes_per_sec`): the memory bomb, which reaches its
/// 64 MiB limit at once without it, is still short of it at its deadline.
#[test]
fn a_users_events_and_memory_growth_go_at_their_rate() {
    let server = Server::start(&plugins(), "refuse", RATE_CONFIG);
    let mallory = server.token("mallory", &[]);
    let bob = server.token("bob", &[]);
    let url = server.url();
    block_on(async {
        let mut flood = Client::connect(&url, &mallory).await;
        start(&mut flood, "hostile-agent", "events").await;
        let first = flood.until(&["agent_thinking", "agent_error"]).await;
        assert_eq!(first["type"], "agent_thinking", "{first}");
        let served = bystander_run(&url, &bob).await;

        let mut bytes = first.to_string().len();
        let end = loop {
            let frame = flood.recv().await;
            match frame["type"].as_str() {
                Some("agent_thinking") => bytes += frame.to_string().len(),
                Some("agent_completed" | "agent_error") => break frame,
                _ => {}
            }
        };
        // Stopped by its deadline, after bob's run (RFC 3339 UTC times
        // of one format sort as strings).
        assert_eq!(outcome(&end), "timeout", "{end}");
        assert!(served["ts"].as_str() < end["ts"].as_str(), "{served} {end}");
        // The burst, then the rate for the run's 2 s, with a second to spare.
        let most = (64 << 10) + 3 * (256 << 10);
        assert!(
            (64 << 10..most).contains(&bytes),
            "{bytes} bytes of thinking"
        );

        let mut bomb = Client::connect(&url, &mallory).await;
        start(&mut bomb, "membomb-agent", "go").await;
        let served = bystander_run(&url, &bob).await;
        let end = bomb.until(&["agent_completed", "agent_error"]).await;
        assert_eq!(outcome(&end), "timeout", "{end}");
        assert!(served["ts"].as_str() < end["ts"].as_str(), "{served} {end}");
    });
}

/// Runs `helper` as the bystander; its `agent_completed`.
async fn bystander_run(url: &str, token: &str) -> Value {
    let mut ws = Client::connect(url, token).await;
    let (_, served) = ws.run_in(None, "helper", "what is 6 * 7").await;
    assert!(
        served["output"].as_str().unwrap_or_default().contains("42"),
        "{served}"
    );
    served
}

/// Sends `run.start` for `agent` on `input`, without waiting for anything.
async fn start(client: &mut Client, agent: &str, input: &str) {
    client
        .command("run.start", json!({"agent": agent, "input": input}))
        .await;
}
