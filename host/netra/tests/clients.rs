//! `netra chat` and `netra loadgen` against a real `netra serve` on port 0.
//!
//! One server serves every step: starting it compiles the guest plugins, which is
//! the slow part.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// The plugins the server loads: the helper agent and the tools it routes to.
const PLUGINS: [&str; 4] = ["helper", "calculator", "clock", "text"];

/// A `netra serve` child process, killed when dropped (also when a test panics).
struct Server {
    child: Child,
    url: String,
    data: tempfile::TempDir,
    _plugins: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let plugins = tempfile::tempdir().expect("plugins dir");
        for name in PLUGINS {
            let file = format!("{name}.wasm");
            std::fs::copy(
                netra_tests::guests_dir().join(&file),
                plugins.path().join(&file),
            )
            .unwrap_or_else(|e| panic!("cannot copy guest {file}: {e}"));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_netra"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .arg("--plugins")
            .arg(plugins.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("netra serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        // Build the guard before reading, so a failed start still kills the child.
        let mut server = Self {
            child,
            url: String::new(),
            data,
            _plugins: plugins,
        };
        server.url = format!("ws://{}/v1/ws", listening_addr(stdout));
        server
    }

    fn data_dir(&self) -> &Path {
        self.data.path()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `netra listening on http://ADDR ...` from the server's first line, then keeps
/// draining its stdout so its later prints never hit a closed pipe.
fn listening_addr(stdout: ChildStdout) -> String {
    let mut lines = BufReader::new(stdout);
    let mut first = String::new();
    lines.read_line(&mut first).expect("read serve's stdout");
    let addr = first
        .strip_prefix("netra listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line from netra serve: {first:?}"))
        .to_string();
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    addr
}

fn netra(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_netra"));
    command.args(args);
    command
}

/// Runs `netra ARGS` to its end.
fn run(args: &[&str]) -> Output {
    netra(args).output().expect("netra runs")
}

/// Runs `netra chat` with `input` on stdin.
fn chat(server: &Server, token: &str, input: &str) -> Output {
    let mut child = netra(&["chat", "--url", &server.url, "--agent", "helper"])
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
    let server = Server::start();
    let data_dir = server.data_dir().display().to_string();

    // loadgen: 20 users with 5 runs each, every frame checked.
    let out = run(&[
        "loadgen",
        "--url",
        &server.url,
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

    // A refused upgrade shows the status and the reason, and fails.
    let out = chat(&server, "not-a-token", "hello\n");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("401") && stderr.contains("malformed token"),
        "{stderr}"
    );
}
