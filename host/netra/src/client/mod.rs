//! Clients of the netra.v1 protocol built into the binary: `netra chat` for people
//! and `netra loadgen` for measuring a host.
//!
//! Both reach the host only through its WebSocket, exactly as any other client does,
//! so what they show is what a third-party client sees. `docs/protocol.md` is the
//! reference for every message read and written here.

pub mod chat;
pub mod loadgen;

use std::fmt;

use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

/// An open client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The subprotocol every connection asks for.
const SUBPROTOCOL: &str = "netra.v1";

/// The URL `netra serve` listens on by default.
pub const DEFAULT_URL: &str = "ws://127.0.0.1:8080/v1/ws";

/// Why a connection could not be opened.
#[derive(Debug)]
pub enum ConnectError {
    /// The host answered the upgrade with an HTTP error and a JSON `reason`.
    Refused { status: StatusCode, reason: String },
    /// Anything else: a bad URL, nobody listening, a broken handshake.
    Failed(String),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused { status, reason } => {
                write!(
                    f,
                    "the host refused the connection: HTTP {status}: {reason}"
                )
            }
            Self::Failed(message) => f.write_str(message),
        }
    }
}

/// Opens a netra.v1 connection with the token in an `Authorization` header.
///
/// Nagle's algorithm is off: commands and events are small frames, and waiting to
/// batch them would only add latency.
pub async fn connect(
    url: &str,
    token: &str,
    config: Option<WebSocketConfig>,
) -> Result<Ws, ConnectError> {
    let mut request = url
        .into_client_request()
        .map_err(|e| ConnectError::Failed(format!("bad URL {url:?}: {e}")))?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        ConnectError::Failed("the token has characters an HTTP header cannot carry".into())
    })?;
    let headers = request.headers_mut();
    headers.insert(AUTHORIZATION, bearer);
    headers.insert(
        SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    match tokio_tungstenite::connect_async_with_config(request, config, true).await {
        Ok((ws, _response)) => Ok(ws),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status();
            let reason = response
                .body()
                .as_deref()
                .and_then(refusal_reason)
                .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_string());
            Err(ConnectError::Refused { status, reason })
        }
        Err(err) => Err(ConnectError::Failed(err.to_string())),
    }
}

/// The `reason` of a refusal body `{"error": ..., "reason": ...}`, else its text.
fn refusal_reason(body: &[u8]) -> Option<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(json) => json.get("reason").and_then(Value::as_str).map(String::from),
        Err(_) => {
            let text = String::from_utf8_lossy(body).trim().to_string();
            (!text.is_empty()).then_some(text)
        }
    }
}

/// A message from the host, sorted by what a client does with it.
#[derive(Debug)]
pub enum HostMessage {
    /// A command was accepted; `body` holds its payload next to `type` and `ref`.
    Ack { reference: String, body: Value },
    /// A command or frame was rejected.
    Error {
        reference: Option<String>,
        code: String,
        message: String,
    },
    /// A run event.
    Event(Event),
    /// A notice that is about no command and no run: `plugins.changed`.
    Notice { kind: String, body: Value },
}

/// A run event: the fields every event has, and the whole message for the rest.
#[derive(Debug)]
pub struct Event {
    pub run_id: String,
    pub seq: u64,
    pub kind: EventKind,
    pub body: Value,
}

/// The run event types of netra.v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Started,
    Thinking,
    MessageDelta,
    ToolExecuting,
    ToolCompleted,
    Completed,
    Failed,
    /// A type this client doesn't know; the protocol may add some.
    Other,
}

impl EventKind {
    fn from_type(name: &str) -> Self {
        match name {
            "agent_started" => Self::Started,
            "agent_thinking" => Self::Thinking,
            "message_delta" => Self::MessageDelta,
            "tool_executing" => Self::ToolExecuting,
            "tool_completed" => Self::ToolCompleted,
            "agent_completed" => Self::Completed,
            "agent_error" => Self::Failed,
            _ => Self::Other,
        }
    }

    /// Whether the event ends its run: nothing of the run follows it.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }
}

impl HostMessage {
    /// Reads one text frame from the host.
    pub fn parse(text: &str) -> Result<Self, String> {
        let body: Value =
            serde_json::from_str(text).map_err(|e| format!("a frame is not JSON: {e}"))?;
        let kind = str_field(&body, "type").ok_or("a frame has no `type`")?;
        match kind {
            "ack" => {
                let reference = str_field(&body, "ref").ok_or("an ack has no `ref`")?;
                Ok(Self::Ack {
                    reference: reference.to_string(),
                    body,
                })
            }
            "error" => Ok(Self::Error {
                reference: str_field(&body, "ref").map(String::from),
                code: str_field(&body, "code").unwrap_or("unknown").to_string(),
                message: str_field(&body, "message").unwrap_or("").to_string(),
            }),
            "plugins.changed" => Ok(Self::Notice {
                kind: kind.to_string(),
                body,
            }),
            other => {
                let kind = EventKind::from_type(other);
                let run_id = str_field(&body, "run_id")
                    .ok_or_else(|| format!("a {other} event has no `run_id`"))?
                    .to_string();
                let seq = body
                    .get("seq")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| format!("a {other} event has no `seq`"))?;
                Ok(Self::Event(Event {
                    run_id,
                    seq,
                    kind,
                    body,
                }))
            }
        }
    }
}

/// A string field of a JSON object.
pub fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_host_messages() {
        let ack = HostMessage::parse(r#"{"type":"ack","ref":"c1","run_id":"run_1"}"#);
        assert!(matches!(ack, Ok(HostMessage::Ack { reference, .. }) if reference == "c1"));
        let error = HostMessage::parse(r#"{"type":"error","code":"bad_frame","message":"x"}"#);
        assert!(matches!(
            error,
            Ok(HostMessage::Error { reference: None, code, .. }) if code == "bad_frame"
        ));
        let event = HostMessage::parse(
            r#"{"type":"agent_completed","run_id":"run_1","thread_id":"thr_1","seq":8,"ts":"t","output":"","outcome":"completed"}"#,
        );
        assert!(matches!(
            event,
            Ok(HostMessage::Event(Event {
                seq: 8,
                kind: EventKind::Completed,
                ..
            }))
        ));
        assert!(HostMessage::parse(r#"{"type":"agent_thinking","seq":1}"#).is_err());
        assert!(HostMessage::parse("[1]").is_err());
    }

    #[test]
    fn reads_the_reason_of_a_refusal() {
        let body = br#"{"error":"unauthorized","reason":"token expired"}"#;
        assert_eq!(refusal_reason(body).as_deref(), Some("token expired"));
        assert_eq!(refusal_reason(b"nope").as_deref(), Some("nope"));
        assert_eq!(refusal_reason(b""), None);
    }
}
