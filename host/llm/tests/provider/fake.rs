//! A scripted OpenAI-compatible server on 127.0.0.1: each request it accepts
//! gets the next script, whose steps write exactly the given bytes, pause,
//! mark the time, or wait for the client to close the connection.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub enum Step {
    /// Write these bytes and flush.
    Write(Vec<u8>),
    Pause(Duration),
    /// Remember when the script got here.
    Mark(&'static str),
    /// Read until the client closes the connection; report when it did.
    AwaitClose,
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
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

#[derive(Default)]
struct Shared {
    requests: Mutex<Vec<Captured>>,
    marks: Mutex<Vec<(&'static str, Instant)>>,
}

pub struct FakeServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    closed: mpsc::UnboundedReceiver<Instant>,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Request `i` gets `scripts[i]`; later requests get the last script.
    pub async fn start(scripts: Vec<Vec<Step>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared::default());
        let (closed_tx, closed) = mpsc::unbounded_channel();
        let scripts = Arc::new(scripts);
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        return;
                    };
                    let shared = shared.clone();
                    let scripts = scripts.clone();
                    let closed_tx = closed_tx.clone();
                    tokio::spawn(async move {
                        serve(socket, &shared, &scripts, &closed_tx).await;
                    });
                }
            }
        });
        Self {
            addr,
            shared,
            closed,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn mark(&self, name: &str) -> Option<Instant> {
        let marks = self.shared.marks.lock().unwrap();
        marks.iter().find(|(n, _)| *n == name).map(|(_, at)| *at)
    }

    /// When a connection in `AwaitClose` saw the client close it.
    pub async fn client_closed(&mut self, within: Duration) -> Option<Instant> {
        tokio::time::timeout(within, self.closed.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut socket: TcpStream,
    shared: &Shared,
    scripts: &[Vec<Step>],
    closed: &mpsc::UnboundedSender<Instant>,
) {
    socket.set_nodelay(true).expect("nodelay");
    let Some(request) = read_request(&mut socket).await else {
        return;
    };
    let number = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(request);
        requests.len() - 1
    };
    let Some(script) = scripts.get(number).or(scripts.last()) else {
        return;
    };
    for step in script {
        match step {
            Step::Write(bytes) => {
                if socket.write_all(bytes).await.is_err() || socket.flush().await.is_err() {
                    return;
                }
            }
            Step::Pause(pause) => tokio::time::sleep(*pause).await,
            Step::Mark(name) => shared.marks.lock().unwrap().push((name, Instant::now())),
            Step::AwaitClose => {
                let mut buf = [0u8; 1024];
                loop {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                let _ = closed.send(Instant::now());
                return;
            }
        }
    }
    // Dropping the socket closes the connection (every response says so).
}

async fn read_request(socket: &mut TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
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
        let n = tokio::time::timeout(Duration::from_secs(5), socket.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured {
        method,
        path,
        headers,
        body,
    })
}

// Building blocks of scripts, byte for byte what the servers send.

/// The head of a streamed answer (chunked, as OpenAI, vLLM, Ollama and
/// llama.cpp send it).
pub fn sse_head() -> Step {
    Step::Write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec(),
    )
}

/// One HTTP chunk holding exactly `bytes`.
pub fn chunk(bytes: &str) -> Step {
    Step::Write(format!("{:x}\r\n{bytes}\r\n", bytes.len()).into_bytes())
}

/// One SSE event `data: JSON`, in one HTTP chunk.
pub fn event(data: &Value) -> Step {
    chunk(&format!("data: {data}\n\n"))
}

pub fn done() -> Step {
    chunk("data: [DONE]\n\n")
}

/// The last chunk of a chunked body.
pub fn end() -> Step {
    Step::Write(b"0\r\n\r\n".to_vec())
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
    Step::Write(head.into_bytes())
}

/// An OpenAI error response.
pub fn error_response(status: &str, message: &str, headers: &[(&str, &str)]) -> Step {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}});
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    response(status, &all, &body.to_string())
}

/// A `chat.completion.chunk` with this delta and finish reason.
pub fn delta(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        "usage": null
    })
}

pub fn content(text: &str) -> Value {
    delta(json!({"content": text}), None)
}

/// The final chunk `include_usage` asks for: no choices, the usage.
pub fn usage(prompt: u32, completion: u32) -> Value {
    json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    })
}

/// A complete streamed answer with this text.
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
