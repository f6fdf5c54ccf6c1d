//! The scripted OpenAI-compatible server: the one edge of netra's tests this
//! machine cannot reach for real, so a local stand-in that writes, byte for
//! byte, what OpenAI-compatible servers write. Each request it accepts gets
//! the next script, whose steps write bytes, pause, mark the time, or wait
//! for the client to close the connection. It records every request.
//!
//! Std only, on threads of its own: blocking tests and async tests (any
//! runtime) use it alike, and netra-llm's tests use it without the
//! `harness` feature.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The model every scripted answer names.
pub const MODEL: &str = "fake-1";

/// One step of a scripted response.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes and flush.
    Write(Vec<u8>),
    /// Wait before the next step.
    Pause(Duration),
    /// Remember when the script got here ([`ScriptedServer::mark`]).
    Mark(&'static str),
    /// Wait up to this long for the client to close the connection, and
    /// record when it did ([`ScriptedServer::client_closed`]).
    AwaitClose(Duration),
}

impl Step {
    /// Writes `text` as it is.
    pub fn text(text: impl Into<String>) -> Self {
        Step::Write(text.into().into_bytes())
    }
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Captured {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    /// The value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// What happens to requests past the end of the scripts.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Every request is scripted; later ones get the last script again.
    Raw,
    /// `GET /v1/models` answers the model list (health checks, unscripted
    /// and unrecorded); chat requests get the scripts in turn, then 500.
    OpenAi,
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Captured>>,
    marks: Mutex<Vec<(&'static str, Instant)>>,
    /// When each script was written to its end.
    finished: Mutex<Vec<Instant>>,
    /// When a client closed a connection during an `AwaitClose`.
    closed: Mutex<Vec<Instant>>,
}

/// Locks a mutex whether or not a serving thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The server, on 127.0.0.1 and a free port; stops accepting when dropped.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl ScriptedServer {
    /// Request `i` gets `scripts[i]`; later requests get the last script.
    pub fn start(scripts: Vec<Vec<Step>>) -> Self {
        Self::serve(scripts, Mode::Raw)
    }

    /// An OpenAI-compatible endpoint: `GET /v1/models` lists [`MODEL`];
    /// each chat request gets the next script, then a 500.
    pub fn openai(scripts: Vec<Vec<Step>>) -> Self {
        Self::serve(scripts, Mode::OpenAi)
    }

    fn serve(scripts: Vec<Vec<Step>>, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let scripts = Arc::new(Mutex::new(scripts.into_iter().collect::<VecDeque<_>>()));
        let last = Arc::new(Mutex::new(None::<Vec<Step>>));
        let (stopping, serving) = (stop.clone(), shared.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((socket, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let (shared, scripts, last) = (serving.clone(), scripts.clone(), last.clone());
                std::thread::spawn(move || {
                    let next = || {
                        let script = lock(&scripts).pop_front();
                        match (script, mode) {
                            (Some(script), _) => {
                                *lock(&last) = Some(script.clone());
                                Some(script)
                            }
                            (None, Mode::Raw) => lock(&last).clone(),
                            (None, Mode::OpenAi) => None,
                        }
                    };
                    serve_one(socket, &shared, mode, next);
                });
            }
        });
        Self { addr, shared, stop }
    }

    /// The base URL a provider is configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The scripted requests received so far.
    pub fn requests(&self) -> Vec<Captured> {
        lock(&self.shared.requests).clone()
    }

    /// How many scripted requests it received.
    pub fn request_count(&self) -> usize {
        lock(&self.shared.requests).len()
    }

    /// The scripted requests' bodies, as JSON.
    pub fn chat_requests(&self) -> Vec<Value> {
        self.requests().iter().map(Captured::json).collect()
    }

    /// When a script reached [`Step::Mark`] `name` first.
    pub fn mark(&self, name: &str) -> Option<Instant> {
        let marks = lock(&self.shared.marks);
        marks.iter().find(|(n, _)| *n == name).map(|(_, at)| *at)
    }

    /// When each script was written to its end, in order.
    pub fn finished(&self) -> Vec<Instant> {
        lock(&self.shared.finished).clone()
    }

    /// Waits up to `within` for a client to close a connection held by
    /// [`Step::AwaitClose`]; when it did.
    pub fn client_closed(&self, within: Duration) -> Option<Instant> {
        let start = Instant::now();
        loop {
            if let Some(at) = lock(&self.shared.closed).first() {
                return Some(*at);
            }
            if start.elapsed() >= within {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_one(
    mut socket: TcpStream,
    shared: &Shared,
    mode: Mode,
    next: impl FnOnce() -> Option<Vec<Step>>,
) {
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_nodelay(true);
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    let Some(request) = read_request(&mut socket) else {
        return;
    };
    if matches!(mode, Mode::OpenAi) && request.method == "GET" {
        let body = json!({"object": "list", "data": [{"id": MODEL, "object": "model"}]});
        let status = if request.path == "/v1/models" {
            "200 OK"
        } else {
            "404 Not Found"
        };
        let _ = write_steps(&mut socket, shared, &[json_response(status, &body)]);
        return;
    }
    lock(&shared.requests).push(request);
    let Some(script) = next() else {
        let _ = socket.write_all(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    };
    if write_steps(&mut socket, shared, &script) {
        lock(&shared.finished).push(Instant::now());
    }
    // Dropping the socket closes the connection (every response says so).
}

/// Plays `steps`; false if the client went away before their end.
fn write_steps(socket: &mut TcpStream, shared: &Shared, steps: &[Step]) -> bool {
    for step in steps {
        match step {
            Step::Write(bytes) => {
                if socket.write_all(bytes).is_err() || socket.flush().is_err() {
                    return false;
                }
            }
            Step::Pause(pause) => std::thread::sleep(*pause),
            Step::Mark(name) => lock(&shared.marks).push((name, Instant::now())),
            Step::AwaitClose(limit) => {
                let _ = socket.set_read_timeout(Some(*limit));
                let mut buf = [0u8; 1024];
                let started = Instant::now();
                while started.elapsed() < *limit {
                    match socket.read(&mut buf) {
                        Ok(0) => {
                            lock(&shared.closed).push(Instant::now());
                            return false;
                        }
                        Ok(_) => {}
                        Err(err)
                            if matches!(
                                err.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) =>
                        {
                            break;
                        }
                        Err(_) => {
                            lock(&shared.closed).push(Instant::now());
                            return false;
                        }
                    }
                }
            }
        }
    }
    true
}

fn read_request(socket: &mut TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        match socket.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(Captured {
        method,
        path,
        headers,
        body,
    })
}

// Building blocks of scripts, byte for byte what the servers send.

/// A streamed chat completion delimited by the connection's close: each
/// chunk as an SSE `data:` event, then `data: [DONE]`.
pub fn sse(chunks: &[Value]) -> Vec<Step> {
    let mut steps = vec![Step::text(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
    )];
    for chunk in chunks {
        steps.push(Step::text(format!("data: {chunk}\n\n")));
    }
    steps.push(Step::text("data: [DONE]\n\n"));
    steps
}

/// The head of a chunked streamed answer (as OpenAI, vLLM, Ollama and
/// llama.cpp send it).
pub fn sse_head() -> Step {
    Step::text(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )
}

/// One HTTP chunk holding exactly `bytes`.
pub fn http_chunk(bytes: &str) -> Step {
    Step::text(format!("{:x}\r\n{bytes}\r\n", bytes.len()))
}

/// One SSE event `data: JSON`, in one HTTP chunk.
pub fn event(data: &Value) -> Step {
    http_chunk(&format!("data: {data}\n\n"))
}

/// The `[DONE]` event, in one HTTP chunk.
pub fn done() -> Step {
    http_chunk("data: [DONE]\n\n")
}

/// The last chunk of a chunked body.
pub fn end() -> Step {
    Step::text("0\r\n\r\n")
}

/// A whole response with a body and its length.
pub fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Step {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    Step::text(head)
}

fn json_response(status: &str, body: &Value) -> Step {
    response(
        status,
        &[("content-type", "application/json")],
        &body.to_string(),
    )
}

/// An OpenAI error response.
pub fn error_response(status: &str, message: &str, headers: &[(&str, &str)]) -> Step {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    response(status, &all, &body.to_string())
}

/// A `chat.completion.chunk` with `delta` and `finish_reason`; with `usage`
/// (prompt, completion tokens), the final chunk `include_usage` asks for: no
/// choices, the usage.
pub fn chunk(delta: Value, finish_reason: Option<&str>, usage: Option<(u32, u32)>) -> Value {
    let mut chunk = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null,
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

/// A `chat.completion.chunk` with `delta` and `finish_reason`.
pub fn delta(delta: Value, finish_reason: Option<&str>) -> Value {
    chunk(delta, finish_reason, None)
}

/// A chunk of answer text.
pub fn content(text: &str) -> Value {
    chunk(json!({"content": text}), None, None)
}

/// The usage chunk.
pub fn usage(prompt: u32, completion: u32) -> Value {
    chunk(json!({}), None, Some((prompt, completion)))
}

/// A complete chunked streamed answer with this text.
pub fn answer(text: &str) -> Vec<Step> {
    vec![
        sse_head(),
        event(&delta(json!({"role": "assistant", "content": ""}), None)),
        event(&content(text)),
        event(&delta(json!({}), Some("stop"))),
        event(&usage(5, 2)),
        done(),
        end(),
    ]
}
