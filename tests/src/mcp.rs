//! A raw MCP client over Streamable HTTP (std only): JSON-RPC messages on
//! one kept-alive connection, answers read from a JSON body or an SSE
//! stream. The benches use it for `tools/call` at full speed; the tests
//! use it to send what no SDK client would (malformed JSON, batches, wrong
//! types). The tests' real client is the official Python SDK.

use std::io;

use serde_json::{Value, json};

use crate::http::{Conn, Response};

/// The revision the client asks for.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// One MCP session (or none, if the server is stateless) on one connection.
pub struct McpClient {
    conn: Conn,
    path: String,
    auth: String,
    session: Option<String>,
    next_id: u64,
}

impl McpClient {
    /// Connects to `addr` and initializes a session as the holder of `token`.
    pub fn connect(addr: &str, path: &str, token: &str) -> io::Result<Self> {
        let mut client = Self::unopened(addr, path, token)?;
        let init = client.request(
            "initialize",
            json!({
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "netra-tests", "version": "0"},
            }),
        )?;
        if init.get("result").is_none() {
            return Err(io::Error::other(format!("initialize failed: {init}")));
        }
        let response = client.post(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"})
                .to_string()
                .as_bytes(),
        )?;
        if response.status != 202 {
            return Err(io::Error::other(format!(
                "notifications/initialized answered {}",
                response.status
            )));
        }
        Ok(client)
    }

    /// A connection that has not initialized (to test what comes before).
    pub fn unopened(addr: &str, path: &str, token: &str) -> io::Result<Self> {
        Ok(Self {
            conn: Conn::connect(addr)?,
            path: path.to_string(),
            auth: format!("Bearer {token}"),
            session: None,
            next_id: 1,
        })
    }

    /// The session id the server gave, if any.
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// Sends the request `method` with `params` and returns the JSON-RPC
    /// message answering it (`result` or `error`); notifications sent
    /// before it on the same stream are skipped.
    pub fn request(&mut self, method: &str, params: Value) -> io::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = self.post(body.to_string().as_bytes())?;
        messages(&response)
            .into_iter()
            .find(|m| m.get("id") == Some(&json!(id)))
            .ok_or_else(|| {
                io::Error::other(format!(
                    "no answer to {method} in a {} response: {}",
                    response.status,
                    response.text()
                ))
            })
    }

    /// `tools/call` of `name` with `arguments`: its result, or the error.
    pub fn call_tool(&mut self, name: &str, arguments: Value) -> io::Result<Value> {
        self.request("tools/call", json!({"name": name, "arguments": arguments}))
    }

    /// POSTs `body` as it is, with the session's headers.
    pub fn post(&mut self, body: &[u8]) -> io::Result<Response> {
        let mut headers = vec![
            ("Authorization", self.auth.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", PROTOCOL_VERSION),
        ];
        if let Some(session) = &self.session {
            headers.push(("Mcp-Session-Id", session.as_str()));
        }
        let response = self.conn.request("POST", &self.path, &headers, body)?;
        if self.session.is_none()
            && let Some(session) = response.header("mcp-session-id")
        {
            self.session = Some(session.to_string());
        }
        Ok(response)
    }
}

/// The JSON-RPC messages of an answer: its JSON body, or each `data:` line
/// of its SSE stream.
pub fn messages(response: &Response) -> Vec<Value> {
    let is_sse = response
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/event-stream"));
    if !is_sse {
        return match response.json() {
            Value::Null => Vec::new(),
            Value::Array(items) => items,
            one => vec![one],
        };
    }
    response
        .text()
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}
