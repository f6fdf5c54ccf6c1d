//! The JSON-RPC checks `/mcp` makes before the SDK sees a body, so that bad
//! input always gets a JSON-RPC error with the right code (the SDK answers
//! some of it with a bare 415, or a wrong params type as an unknown method):
//!
//! - not JSON: -32700 (parse error);
//! - a batch, or not a JSON-RPC 2.0 message: -32600 (invalid request);
//!   Streamable HTTP since 2025-06-18 carries one message per POST;
//! - `params` that are not an object, or the wrong shape for `tools/call`,
//!   `tools/list` or `initialize`: -32602 (invalid params).

use serde_json::{Value, json};

/// JSON-RPC's codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const INVALID_PARAMS: i64 = -32602;

/// A JSON-RPC error for a body the server refuses: its code, message and
/// the request's id when it has one.
#[derive(Debug, PartialEq)]
pub struct Refused {
    pub code: i64,
    pub message: String,
    pub id: Value,
}

impl Refused {
    /// The JSON-RPC error response.
    pub fn to_json(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": self.code, "message": self.message},
        })
    }
}

/// Checks one POSTed body.
pub fn check(body: &[u8]) -> Result<(), Refused> {
    let refuse = |code, message: String, id: &Value| {
        Err(Refused {
            code,
            message,
            id: id.clone(),
        })
    };
    let message: Value = match serde_json::from_slice(body) {
        Ok(message) => message,
        Err(err) => return refuse(PARSE_ERROR, format!("parse error: {err}"), &Value::Null),
    };
    let Value::Object(map) = &message else {
        let what = if message.is_array() {
            "a batch: send one JSON-RPC message per request (batching was removed in MCP 2025-06-18)"
        } else {
            "not a JSON-RPC message (expected an object)"
        };
        return refuse(
            INVALID_REQUEST,
            format!("invalid request: {what}"),
            &Value::Null,
        );
    };
    let id = map.get("id").cloned().unwrap_or(Value::Null);
    if map.get("jsonrpc") != Some(&json!("2.0")) {
        return refuse(
            INVALID_REQUEST,
            "invalid request: \"jsonrpc\" must be \"2.0\"".into(),
            &id,
        );
    }
    if !matches!(id, Value::Null | Value::String(_) | Value::Number(_)) {
        return refuse(
            INVALID_REQUEST,
            "invalid request: \"id\" must be a string or a number".into(),
            &Value::Null,
        );
    }
    let Some(method) = map.get("method") else {
        // A response to a request of the server (or garbage): it needs a
        // result or an error.
        if map.contains_key("result") || map.contains_key("error") {
            return Ok(());
        }
        return refuse(
            INVALID_REQUEST,
            "invalid request: no \"method\" (nor a result or error)".into(),
            &id,
        );
    };
    let Some(method) = method.as_str() else {
        return refuse(
            INVALID_REQUEST,
            "invalid request: \"method\" must be a string".into(),
            &id,
        );
    };
    let params = match map.get("params") {
        None => None,
        Some(Value::Object(params)) => Some(params),
        Some(_) => {
            return refuse(
                INVALID_PARAMS,
                format!("invalid params: the params of {method} must be an object"),
                &id,
            );
        }
    };
    let field = |name: &str| params.and_then(|p| p.get(name));
    let wrong = |what: &str| refuse(INVALID_PARAMS, format!("invalid params: {what}"), &id);
    let name_ok = field("name").is_some_and(Value::is_string);
    let arguments_ok = field("arguments").is_none_or(|a| a.is_object() || a.is_null());
    let cursor_ok = field("cursor").is_none_or(|c| c.is_string() || c.is_null());
    let version_ok = field("protocolVersion").is_some_and(Value::is_string);
    match method {
        "tools/call" if !name_ok => wrong("tools/call needs \"name\", a string"),
        "tools/call" if !arguments_ok => wrong("the \"arguments\" of tools/call must be an object"),
        "tools/list" if !cursor_ok => wrong("the \"cursor\" of tools/list must be a string"),
        "initialize" if !version_ok => wrong("initialize needs \"protocolVersion\", a string"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(body: &str) -> Option<i64> {
        check(body.as_bytes()).err().map(|r| r.code)
    }

    #[test]
    fn bad_input_gets_its_json_rpc_code() {
        assert_eq!(code("{not json"), Some(PARSE_ERROR));
        assert_eq!(code("[]"), Some(INVALID_REQUEST));
        assert_eq!(
            code(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(code("42"), Some(INVALID_REQUEST));
        assert_eq!(
            code(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            Some(INVALID_REQUEST)
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":8}"#), Some(INVALID_REQUEST));
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":"x"}"#),
            Some(INVALID_PARAMS)
        );
        assert_eq!(
            code(
                r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"calculate","arguments":"2+2"}}"#
            ),
            Some(INVALID_PARAMS)
        );
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":7}}"#),
            Some(INVALID_PARAMS)
        );
    }

    #[test]
    fn good_messages_pass_and_keep_their_id() {
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#), None);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            None
        );
        assert_eq!(code(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#), None);
        assert_eq!(
            code(r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"calculate"}}"#),
            None
        );
        let refused = check(br#"{"jsonrpc":"2.0","id":"x","method":"tools/call"}"#);
        assert_eq!(refused.map_err(|r| r.id), Err(json!("x")));
    }
}
