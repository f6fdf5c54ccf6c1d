//! The tests' WebSocket client speaking netra.v1. Every frame it receives is
//! checked twice: against the JSON Schema of docs/protocol (the contract
//! other-language clients code against) and by decoding it as the host's own
//! [`ServerFrame`] (the contract the Rust clients code against).

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use netra_server::protocol::{EventKind, RunEvent, ServerFrame};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for any one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(30);

/// A raw WebSocket to a netra server.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw WebSocket session on `url` authenticated with `token` (for the
/// tests that must send what no well-behaved client would).
pub async fn socket(url: &str, token: &str) -> Socket {
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

/// The next text frame on a raw socket, checked by [`decode`]; other
/// frames (pings, pongs) are skipped.
pub async fn next_frame(ws: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(FRAME_TIMEOUT, ws.next())
            .await
            .expect("a frame within the timeout")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return decode(&text),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Decodes a text frame: it must be JSON, match the wire schema and decode
/// as a [`ServerFrame`].
pub fn decode(text: &str) -> Value {
    let value: Value = serde_json::from_str(text).expect("frames are JSON");
    crate::check_frame(&value);
    if let Err(err) = ServerFrame::parse(text) {
        panic!("{err}: {value}");
    }
    value
}

/// A real WebSocket client speaking netra.v1.
pub struct Client {
    pub ws: Socket,
    pub next_id: u64,
    /// Frames read while waiting for something else, in arrival order.
    pub pending: VecDeque<Value>,
}

impl Client {
    /// Connects to `url` with `token` in the `Authorization` header.
    pub async fn connect(url: &str, token: &str) -> Self {
        Self {
            ws: socket(url, token).await,
            next_id: 0,
            pending: VecDeque::new(),
        }
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    /// Sends a command with a fresh id; returns the id.
    pub async fn command(&mut self, kind: &str, mut fields: Value) -> String {
        self.next_id += 1;
        let id = format!("c{}", self.next_id);
        fields["type"] = json!(kind);
        fields["id"] = json!(id);
        self.send_text(fields.to_string()).await;
        id
    }

    /// The next frame, checked by [`decode`].
    pub async fn recv(&mut self) -> Value {
        next_frame(&mut self.ws).await
    }

    /// Reads frames until one whose type is in `kinds`, and returns it; an
    /// `error` frame on the way fails the test.
    pub async fn until(&mut self, kinds: &[&str]) -> Value {
        loop {
            let frame = self.recv().await;
            assert_ne!(frame["type"], "error", "{frame}");
            if kinds.iter().any(|k| frame["type"] == *k) {
                return frame;
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket error instead of a close: {err}"),
            }
        }
    }

    /// Sends a command and returns its ack (or error) frame.
    pub async fn request(&mut self, kind: &str, fields: Value) -> Value {
        let id = self.command(kind, fields).await;
        loop {
            let frame = self.recv().await;
            if frame["ref"] == json!(id) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Starts a run and returns (run_id, thread_id).
    pub async fn start_run(&mut self, agent: &str, input: &str) -> (String, String) {
        let ack = self
            .request("run.start", json!({ "agent": agent, "input": input }))
            .await;
        assert_eq!(ack["type"], "ack", "run.start refused: {ack}");
        (
            ack["run_id"].as_str().expect("run_id").to_string(),
            ack["thread_id"].as_str().expect("thread_id").to_string(),
        )
    }

    /// Collects the events of `run_id` up to and including its terminal
    /// event, checking the order rules on the way.
    pub async fn run_events(&mut self, run_id: &str) -> Vec<Value> {
        let events = self.run_events_after(run_id).await;
        check_order(&events);
        events
    }

    /// Collects events of `run_id` up to its terminal event, without the
    /// order check (for a stream resumed part-way). Frames of other runs are
    /// kept for later.
    pub async fn run_events_after(&mut self, run_id: &str) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let position = self
                .pending
                .iter()
                .position(|f| f["run_id"] == json!(run_id));
            let frame = match position.and_then(|i| self.pending.remove(i)) {
                Some(frame) => frame,
                None => self.recv().await,
            };
            if frame["run_id"] != json!(run_id) {
                self.pending.push_back(frame);
                continue;
            }
            let terminal = matches!(
                frame["type"].as_str(),
                Some("agent_completed" | "agent_error")
            );
            events.push(frame);
            if terminal {
                return events;
            }
        }
    }

    /// Runs `agent` on `input` in `thread` (a new thread if `None`) to its
    /// end: the thread and the terminal event.
    pub async fn run_in(
        &mut self,
        thread: Option<&str>,
        agent: &str,
        input: &str,
    ) -> (String, Value) {
        let mut start = json!({ "agent": agent, "input": input });
        if let Some(thread) = thread {
            start["thread_id"] = json!(thread);
        }
        let ack = self.request("run.start", start).await;
        assert_eq!(ack["type"], "ack", "run.start refused: {ack}");
        let run_id = ack["run_id"].as_str().expect("run_id").to_string();
        let thread = ack["thread_id"].as_str().expect("thread_id").to_string();
        let mut events = self.run_events_after(&run_id).await;
        (thread, events.pop().unwrap_or(Value::Null))
    }

    /// Starts a run and returns all its events.
    pub async fn run(&mut self, agent: &str, input: &str) -> Vec<Value> {
        let (run_id, _) = self.start_run(agent, input).await;
        self.run_events(&run_id).await
    }
}

/// `events` decoded as the typed [`RunEvent`]s they must be.
pub fn typed(events: &[Value]) -> Vec<RunEvent<'static>> {
    events
        .iter()
        .map(|e| {
            RunEvent::deserialize(e.clone())
                .unwrap_or_else(|err| panic!("{err}: not a run event: {e}"))
        })
        .collect()
}

/// The order rules every run must follow: `agent_started` first, seq 1, 2,
/// 3 ... without gaps, one terminal event and it last, and every tool call
/// completed after it began.
pub fn check_order(events: &[Value]) {
    let typed = typed(events);
    assert!(
        matches!(
            typed.first().map(|e| e.kind.as_ref()),
            Some(EventKind::AgentStarted { .. })
        ),
        "{events:#?}"
    );
    for (i, event) in typed.iter().enumerate() {
        assert_eq!(event.seq, i as u64 + 1, "seq gap in {events:#?}");
    }
    let terminals = typed.iter().filter(|e| e.kind.is_terminal()).count();
    assert_eq!(terminals, 1, "{events:#?}");
    assert!(
        typed.last().is_some_and(|e| e.kind.is_terminal()),
        "{events:#?}"
    );
    let mut open = BTreeSet::new();
    for event in &typed {
        match event.kind.as_ref() {
            EventKind::ToolExecuting { tool_call_id, .. } => {
                assert!(open.insert(tool_call_id.clone()), "{tool_call_id} twice");
            }
            EventKind::ToolCompleted { tool_call_id, .. } => {
                assert!(
                    open.remove(tool_call_id),
                    "{tool_call_id} completed before executing"
                );
            }
            _ => {}
        }
    }
}

/// Types of `events`, in order.
pub fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect()
}
