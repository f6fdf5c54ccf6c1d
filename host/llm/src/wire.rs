//! The OpenAI chat-completions JSON: the request body we send, the chunks
//! (and whole completions) we read, and error bodies. The only serde types of
//! the crate.
//!
//! Reading is lenient the way the servers differ: every field may be missing
//! or `null`, unknown fields are ignored, and tool-call arguments may come as
//! a JSON object instead of text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::types::{ChatMessage, ChatRequest, Role, ToolSpec};

#[derive(Serialize)]
struct RequestBody<'a> {
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCallOut<'a>,
}

#[derive(Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
}

/// The JSON body of a streamed request for `model`.
pub(crate) fn encode(request: &ChatRequest, model: &str) -> Result<Vec<u8>, String> {
    if let Some(temperature) = request.temperature
        && !temperature.is_finite()
    {
        return Err(format!(
            "temperature must be a finite number, not {temperature}"
        ));
    }
    let body = RequestBody {
        model,
        messages: request.messages.iter().map(message_out).collect(),
        tools: request.tools.iter().map(tool_out).collect(),
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
    };
    serde_json::to_vec(&body).map_err(|e| format!("cannot encode the request: {e}"))
}

fn message_out(message: &ChatMessage) -> MessageOut<'_> {
    // An assistant turn that only calls tools has no text; servers expect the
    // field absent (or null) then, while every other message needs it, even
    // when empty.
    let content = (!(message.role == Role::Assistant
        && message.content.is_empty()
        && !message.tool_calls.is_empty()))
    .then_some(message.content.as_str());
    MessageOut {
        role: message.role.as_str(),
        content,
        tool_calls: message
            .tool_calls
            .iter()
            .map(|call| ToolCallOut {
                id: &call.id,
                kind: "function",
                function: FunctionCallOut {
                    name: &call.name,
                    arguments: &call.arguments,
                },
            })
            .collect(),
        tool_call_id: message.tool_call_id.as_deref(),
    }
}

fn tool_out(tool: &ToolSpec) -> ToolOut<'_> {
    ToolOut {
        kind: "function",
        function: FunctionOut {
            name: &tool.name,
            description: &tool.description,
            parameters: (!tool.parameters.is_null()).then_some(&tool.parameters),
        },
    }
}

/// One streamed chunk (`chat.completion.chunk`), or a whole non-streamed
/// completion (`chat.completion`, whose choices carry `message`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Chunk {
    pub(crate) choices: Option<Vec<Choice>>,
    pub(crate) usage: Option<UsageIn>,
    /// Some servers (vLLM, proxies) report a failure inside the stream.
    pub(crate) error: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct Choice {
    pub(crate) index: Option<u32>,
    pub(crate) delta: Option<DeltaIn>,
    pub(crate) message: Option<DeltaIn>,
    pub(crate) finish_reason: Option<String>,
}

/// `delta` of a chunk, or `message` of a whole completion: the same fields.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct DeltaIn {
    pub(crate) content: Option<String>,
    /// vLLM, llama.cpp, DeepSeek.
    pub(crate) reasoning_content: Option<String>,
    /// Ollama, OpenRouter.
    pub(crate) reasoning: Option<String>,
    pub(crate) tool_calls: Option<Vec<ToolCallIn>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct ToolCallIn {
    pub(crate) index: Option<u32>,
    pub(crate) id: Option<String>,
    pub(crate) function: Option<FunctionIn>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct FunctionIn {
    pub(crate) name: Option<String>,
    /// Text fragments in the standard; an object from some servers.
    pub(crate) arguments: Option<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct UsageIn {
    pub(crate) prompt_tokens: Option<u64>,
    pub(crate) completion_tokens: Option<u64>,
}

/// The human-readable message of an error body: `{"error": {"message"}}`
/// (OpenAI, llama.cpp, Ollama, newer vLLM), `{"error": "text"}`, or
/// `{"message": ...}` (older vLLM). `None` when the body has none.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    error_value_message(&value)
}

/// The message of an `error` value found in a body or a stream chunk.
pub(crate) fn error_value_message(value: &Value) -> Option<String> {
    let text = match value.get("error") {
        Some(Value::String(text)) => Some(text.as_str()),
        Some(error) => error
            .get("message")
            .and_then(Value::as_str)
            .or_else(|| value.get("message").and_then(Value::as_str)),
        None => value.get("message").and_then(Value::as_str),
    };
    match (text.filter(|t| !t.trim().is_empty()), value.get("error")) {
        (Some(text), _) => Some(text.to_owned()),
        (None, Some(error)) if !error.is_null() => Some(error.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolCall;
    use serde_json::json;

    #[test]
    fn an_empty_error_message_is_shown_as_the_error_value() {
        // Found by `cargo xtask fuzz`: `{"error": ""}` read as an empty message.
        assert_eq!(
            error_value_message(&json!({"error": ""})).as_deref(),
            Some("\"\"")
        );
        assert_eq!(
            error_value_message(&json!({"error": {"message": " "}})).as_deref(),
            Some("{\"message\":\" \"}")
        );
    }

    #[test]
    fn request_shape() {
        let request = ChatRequest {
            model: None,
            messages: vec![
                ChatMessage::system("be brief"),
                ChatMessage::user(""),
                ChatMessage::assistant_tool_calls(
                    "",
                    vec![ToolCall {
                        id: "call_1".into(),
                        name: "add".into(),
                        arguments: "{\"a\":1}".into(),
                    }],
                ),
                ChatMessage::tool("call_1", "2"),
            ],
            tools: vec![
                ToolSpec {
                    name: "add".into(),
                    description: "adds".into(),
                    parameters: json!({"type": "object"}),
                },
                ToolSpec {
                    name: "now".into(),
                    description: String::new(),
                    parameters: Value::Null,
                },
            ],
            temperature: Some(0.5),
            max_tokens: None,
        };
        let body: Value = serde_json::from_slice(&encode(&request, "m").unwrap()).unwrap();
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": ""},
                    {"role": "assistant", "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": "{\"a\":1}"}}
                    ]},
                    {"role": "tool", "content": "2", "tool_call_id": "call_1"}
                ],
                "tools": [
                    {"type": "function", "function": {"name": "add", "description": "adds", "parameters": {"type": "object"}}},
                    {"type": "function", "function": {"name": "now"}}
                ],
                "temperature": 0.5,
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        let bad = ChatRequest {
            temperature: Some(f32::NAN),
            ..ChatRequest::default()
        };
        assert!(encode(&bad, "m").is_err());
    }

    #[test]
    fn error_messages_of_each_server() {
        let openai = br#"{"error":{"message":"bad model","type":"invalid_request_error","param":null,"code":null}}"#;
        assert_eq!(error_message(openai).as_deref(), Some("bad model"));
        assert_eq!(
            error_message(br#"{"error":"no such model"}"#).as_deref(),
            Some("no such model")
        );
        assert_eq!(
            error_message(
                br#"{"object":"error","message":"too long","type":"BadRequestError","code":400}"#
            )
            .as_deref(),
            Some("too long")
        );
        assert_eq!(
            error_message(br#"{"error":{"code":7}}"#).as_deref(),
            Some(r#"{"code":7}"#)
        );
        assert_eq!(error_message(b"<html>"), None);
        assert_eq!(error_message(b"{}"), None);
    }
}
