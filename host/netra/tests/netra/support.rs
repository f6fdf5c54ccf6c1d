//! Shared by the tests that drive the real `netra serve`: the server with a
//! netra.toml and a plugins dir, HTTP and WebSocket clients, and local
//! stand-ins for OpenAI-compatible endpoints.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `netra serve`, killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    data: tempfile::TempDir,
    plugins: tempfile::TempDir,
    /// The arguments `netra serve` was started with.
    args: Vec<String>,
    /// What `netra config check` said about the configuration served.
    pub check: Option<std::process::Output>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plugin to put in the plugins dir: the guest file and its manifest.
pub struct Plugin {
    pub guest: &'static str,
    pub manifest: &'static str,
}

pub const CALCULATOR: Plugin = Plugin {
    guest: "calculator",
    manifest: r#"name = "calculator"
version = "1.0.0"
kind = "tool"
"#,
};

impl Server {
    /// Serves `plugins` with `config` (a netra.toml without the server and
    /// plugins sections, which are added here, with `plugins.ungranted`).
    pub fn start(plugins: &[Plugin], ungranted: &str, config: &str) -> Self {
        Self::start_with_env(plugins, ungranted, config, &[])
    }

    /// [`Server::start`] with `NETRA_*` variables set for the server only
    /// (for the `[server]` keys, which the generated file sets too).
    pub fn start_with_env(
        plugins: &[Plugin],
        ungranted: &str,
        config: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let dir = tempfile::tempdir().expect("plugins dir");
        for plugin in plugins {
            // Fixtures are built as fixture_agent_*.wasm; served by their short
            // name. `py:NAME` and `js:NAME` are Python and JavaScript guests.
            let (built, name) = if let Some(name) = plugin.guest.strip_prefix("py:") {
                (netra_tests::polyglot_guest("py", name), name)
            } else if let Some(name) = plugin.guest.strip_prefix("js:") {
                (netra_tests::polyglot_guest("js", name), name)
            } else if let Some(name) = plugin.guest.strip_prefix("fixture-") {
                (netra_tests::guest(plugin.guest), name)
            } else if plugin.guest.starts_with("agent-") {
                (
                    netra_tests::guest(&format!("fixture-{}", plugin.guest)),
                    plugin.guest,
                )
            } else {
                (netra_tests::guest(plugin.guest), plugin.guest)
            };
            std::fs::copy(built, dir.path().join(format!("{name}.wasm"))).expect("copy guest");
            std::fs::write(dir.path().join(format!("{name}.toml")), plugin.manifest)
                .expect("write manifest");
        }
        let file = data.path().join("netra.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\ncache_dir = {:?}\n\n[plugins]\ndir = {:?}\nungranted = {ungranted:?}\n\n{config}",
            data.path().join("state").display().to_string(),
            shared_cache_dir().display().to_string(),
            dir.path().display().to_string(),
        );
        std::fs::write(&file, text).expect("write netra.toml");
        // `netra config check` sees what serve will do, before anything loads.
        let check = Command::new(env!("CARGO_BIN_EXE_netra"))
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .expect("netra config check");
        let mut args = vec!["serve".to_string(), "--config".to_string()];
        args.push(file.display().to_string());
        let mut server = Self::spawn_with_env(&args, data, dir, env);
        server.check = Some(check);
        server
    }

    /// `netra serve ARGS`; the data dir's `state` is the server's data dir.
    pub fn spawn(args: &[String], data: tempfile::TempDir, dir: tempfile::TempDir) -> Self {
        Self::spawn_with_env(args, data, dir, &[])
    }

    fn spawn_with_env(
        args: &[String],
        data: tempfile::TempDir,
        dir: tempfile::TempDir,
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netra"))
            .args(args)
            .envs(env.iter().copied())
            // Every test server compiles a component once per machine.
            .env("NETRA_SERVER__CACHE_DIR", shared_cache_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("netra serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Self {
            child,
            addr: String::new(),
            data,
            plugins: dir,
            args: args.to_vec(),
            check: None,
        };
        server.addr = listening_addr(stdout);
        server
    }

    /// The plugins dir it serves (and watches).
    pub fn plugins_dir(&self) -> &std::path::Path {
        self.plugins.path()
    }

    /// Stops the server and starts it again on the same data and plugins.
    pub fn restart(mut self) -> Self {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let args = std::mem::take(&mut self.args);
        let data = std::mem::replace(&mut self.data, tempfile::tempdir().expect("tempdir"));
        let plugins = std::mem::replace(&mut self.plugins, tempfile::tempdir().expect("tempdir"));
        Self::spawn(&args, data, plugins)
    }

    pub fn state_dir(&self) -> std::path::PathBuf {
        self.data.path().join("state")
    }

    /// A dev-mode token for `user`, with `roles`.
    pub fn token(&self, user: &str, roles: &[&str]) -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_netra"));
        command.args(["token", "--sub", user, "--data-dir"]);
        command.arg(self.state_dir());
        for role in roles {
            command.args(["--role", role]);
        }
        let out = command.output().expect("netra token");
        assert!(out.status.success(), "netra token failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a token")
            .to_string()
    }

    /// An HTTP/1.1 request; returns (status, JSON body).
    pub fn http(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        self.http_body(method, path, token, "application/json", b"")
    }

    /// An HTTP/1.1 request with a body; returns (status, JSON body).
    pub fn http_body(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &[u8],
    ) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: netra\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .expect("write request");
        stream.write_all(body).expect("write body");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Polls `/readyz` with an admin token (the whole report) until `done`
    /// holds for (status, body), for at most 30 s.
    pub fn wait_readyz(&self, what: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
        let admin = self.token("readyz", &["admin"]);
        let start = Instant::now();
        loop {
            let (status, body) = self.http("GET", "/readyz", Some(&admin));
            if done(status, &body) {
                return (status, body);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; last /readyz: {status} {body:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `run.start` for `agent` over a real WebSocket and returns the
    /// `error` it is refused with.
    pub fn start_error(&self, token: &str, agent: &str, input: &str) -> Value {
        let url = format!("ws://{}/v1/ws", self.addr);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        runtime.block_on(async move {
            let mut ws = connect(&url, token).await;
            let start = json!({"type": "run.start", "id": "1", "agent": agent, "input": input});
            ws.send(Message::Text(start.to_string().into()))
                .await
                .expect("send");
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .expect("a frame in time")
                    .expect("open socket")
                    .expect("valid frame");
                let Message::Text(text) = frame else { continue };
                let value: Value = serde_json::from_str(&text).expect("JSON");
                assert_ne!(value["type"], "ack", "the run was started: {value}");
                if value["type"] == "error" {
                    return value;
                }
            }
        })
    }

    /// Runs `agent` on `input` over a real WebSocket and returns its
    /// terminal event.
    pub fn run(&self, token: &str, agent: &str, input: &str) -> Value {
        let events = self.run_events(token, agent, input);
        events.last().cloned().unwrap_or(Value::Null)
    }

    /// Runs `agent` on `input` over a real WebSocket and returns every event
    /// of the run, the terminal one last.
    pub fn run_events(&self, token: &str, agent: &str, input: &str) -> Vec<Value> {
        self.run_events_at(token, agent, input, false)
            .into_iter()
            .map(|(_, event)| event)
            .collect()
    }

    /// [`Server::run_events`] with the time each event arrived; with
    /// `cancel`, sends `run.cancel` as soon as the first `message_delta`
    /// arrives.
    pub fn run_events_at(
        &self,
        token: &str,
        agent: &str,
        input: &str,
        cancel: bool,
    ) -> Vec<(Instant, Value)> {
        let url = format!("ws://{}/v1/ws", self.addr);
        let token = token.to_string();
        let (agent, input) = (agent.to_string(), input.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        runtime.block_on(async move {
            let mut ws = connect(&url, &token).await;
            let start = json!({"type": "run.start", "id": "1", "agent": agent, "input": input});
            ws.send(Message::Text(start.to_string().into()))
                .await
                .expect("send");
            let mut events = Vec::new();
            let mut cancelled = false;
            // Nested runs end too; the run started here ends last.
            let mut root: Option<String> = None;
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                    .await
                    .expect("a frame in time")
                    .expect("open socket")
                    .expect("valid frame");
                let Message::Text(text) = frame else { continue };
                let at = Instant::now();
                let value: Value = serde_json::from_str(&text).expect("JSON");
                assert_ne!(value["type"], "error", "command refused: {value}");
                if value["type"] == "ack" {
                    if value["ref"] == "1" {
                        root = value["run_id"].as_str().map(String::from);
                    }
                    continue;
                }
                if cancel && value["type"] == "message_delta" && !cancelled {
                    cancelled = true;
                    let stop = json!({"type": "run.cancel", "id": "2", "run_id": value["run_id"]});
                    ws.send(Message::Text(stop.to_string().into()))
                        .await
                        .expect("send cancel");
                }
                let terminal = (value["type"] == "agent_completed"
                    || value["type"] == "agent_error")
                    && value["run_id"].as_str() == root.as_deref();
                events.push((at, value));
                if terminal {
                    return events;
                }
            }
        })
    }
}

fn listening_addr(stdout: ChildStdout) -> String {
    let mut lines = BufReader::new(stdout);
    let mut seen = Vec::new();
    let addr = loop {
        let mut line = String::new();
        let read = lines.read_line(&mut line).expect("read serve's stdout");
        assert!(read > 0, "netra serve exited; it printed {seen:?}");
        if let Some(rest) = line.strip_prefix("netra listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    addr
}

/// A WebSocket session on `url` authenticated with `token`.
pub async fn connect(
    url: &str,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("connect");
    ws
}

/// The compiled-component cache every test server shares: the large Python
/// and JavaScript components are compiled once per machine, not per test.
pub fn shared_cache_dir() -> std::path::PathBuf {
    netra_tests::guests_dir()
        .join("..")
        .join("..")
        .join("test-cache")
}

/// A port nothing listens on (taken from the OS, then released).
pub fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An OpenAI-compatible endpoint's model list on `port`, answering until
/// dropped; counts the requests it served.
pub struct FakeLlm {
    stop: Arc<AtomicBool>,
    pub served: Arc<AtomicUsize>,
}

impl FakeLlm {
    pub fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the LLM port");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (stopping, counting) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut head = [0u8; 1024];
                        let n = stream.read(&mut head).unwrap_or(0);
                        let request = String::from_utf8_lossy(&head[..n]).to_string();
                        let body = r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#;
                        let status = if request.starts_with("GET /v1/models ") {
                            "200 OK"
                        } else {
                            "404 Not Found"
                        };
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        counting.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { stop, served }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One piece of a scripted HTTP response.
pub enum Piece {
    /// Bytes written as they are.
    Bytes(String),
    /// A pause before the next piece.
    Pause(Duration),
    /// Waits up to this long for the client to close the connection (and
    /// records it in [`FakeOpenAi::closed`]).
    AwaitClose(Duration),
}

/// A streamed chat completion in OpenAI's wire format: each chunk as an SSE
/// `data:` event, then `data: [DONE]`.
pub fn sse(chunks: &[Value]) -> Vec<Piece> {
    let mut pieces = vec![Piece::Bytes(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
            .to_string(),
    )];
    for chunk in chunks {
        pieces.push(Piece::Bytes(format!("data: {chunk}\n\n")));
    }
    pieces.push(Piece::Bytes("data: [DONE]\n\n".to_string()));
    pieces
}

/// A `chat.completion.chunk` with `delta` (and `usage`, if given).
pub fn chunk(delta: Value, finish_reason: Option<&str>, usage: Option<(u32, u32)>) -> Value {
    let mut chunk = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1_764_000_000,
        "model": "fake-1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    });
    if let Some((prompt, completion)) = usage {
        chunk["choices"] = json!([]);
        chunk["usage"] = json!({
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        });
    }
    chunk
}

/// A local stand-in for an OpenAI-compatible server: `GET /v1/models`
/// answers the model list; each `POST /v1/chat/completions` gets the next
/// scripted response (a 500 when the script is used up). Records every
/// request body it receives.
pub struct FakeOpenAi {
    pub port: u16,
    pub requests: Arc<std::sync::Mutex<Vec<Value>>>,
    /// When each scripted response was written to its end.
    pub finished: Arc<std::sync::Mutex<Vec<Instant>>>,
    /// Whether a client closed a connection during an `AwaitClose`.
    pub closed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FakeOpenAi {
    pub fn start(script: Vec<Vec<Piece>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let script = Arc::new(std::sync::Mutex::new(
            script
                .into_iter()
                .collect::<std::collections::VecDeque<_>>(),
        ));
        let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (stopping, recorded) = (stop.clone(), requests.clone());
        let (ends, saw_close) = (finished.clone(), closed.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let (script, recorded) = (script.clone(), recorded.clone());
                let (ends, saw_close) = (ends.clone(), saw_close.clone());
                std::thread::spawn(move || {
                    serve_one(stream, &script, &recorded, &saw_close, &ends)
                });
            }
        });
        Self {
            port,
            requests,
            finished,
            closed,
            stop,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// The chat requests received so far.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(
    mut stream: TcpStream,
    script: &std::sync::Mutex<std::collections::VecDeque<Vec<Piece>>>,
    recorded: &std::sync::Mutex<Vec<Value>>,
    closed: &AtomicBool,
    finished: &std::sync::Mutex<Vec<Instant>>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while data.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    if head.starts_with("GET ") {
        let body = r#"{"object":"list","data":[{"id":"fake-1","object":"model"}]}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    let body: Value =
        serde_json::from_slice(&data[head_end..head_end + length]).unwrap_or(Value::Null);
    if let Ok(mut recorded) = recorded.lock() {
        recorded.push(body);
    }
    let pieces = script.lock().ok().and_then(|mut s| s.pop_front());
    let Some(pieces) = pieces else {
        let _ = stream.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    for piece in pieces {
        match piece {
            Piece::Bytes(text) => {
                if stream.write_all(text.as_bytes()).is_err() {
                    return;
                }
                let _ = stream.flush();
            }
            Piece::Pause(pause) => std::thread::sleep(pause),
            Piece::AwaitClose(limit) => {
                let _ = stream.set_read_timeout(Some(limit));
                if matches!(stream.read(&mut buf), Ok(0)) {
                    closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
    if let Ok(mut finished) = finished.lock() {
        finished.push(Instant::now());
    }
}
