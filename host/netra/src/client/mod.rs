//! Clients of the netra.v1 protocol built into the binary: `netra chat` for people
//! and `netra loadgen` for measuring a host.
//!
//! Both reach the host only through its WebSocket, exactly as any other client does,
//! so what they show is what a third-party client sees. `docs/protocol.md` is the
//! reference for every message read and written here.

pub mod chat;
pub mod loadgen;

use std::fmt;

use netra_server::protocol::SUBPROTOCOL;
use netra_server::protocol::admin::HttpError;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite};

/// An open client connection.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

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
    match serde_json::from_slice::<HttpError>(body) {
        Ok(error) => Some(error.reason),
        Err(_) => {
            let text = String::from_utf8_lossy(body).trim().to_string();
            (!text.is_empty()).then_some(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_reason_of_a_refusal() {
        let body = br#"{"error":"unauthorized","reason":"token expired"}"#;
        assert_eq!(refusal_reason(body).as_deref(), Some("token expired"));
        assert_eq!(refusal_reason(b"nope").as_deref(), Some("nope"));
        assert_eq!(refusal_reason(b""), None);
    }
}
