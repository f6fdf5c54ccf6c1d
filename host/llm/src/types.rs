//! What a caller sends and gets back: plain Rust, no serde. The OpenAI JSON
//! shapes live in `wire.rs` only.

use std::ops::{Add, AddAssign};

/// One piece of the answer, handed to the sink as soon as it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delta {
    /// Answer text (`delta.content`).
    Content(String),
    /// Reasoning ("thinking") text, for servers that stream it separately
    /// (`delta.reasoning_content` or `delta.reasoning`).
    Reasoning(String),
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result; the message's `tool_call_id` says which call.
    Tool,
}

impl Role {
    /// The role as the OpenAI API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One completion to stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatRequest {
    /// `None` (or empty) uses the provider's first configured model.
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    /// Functions the model may call; sent only when not empty.
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
    /// The calls an assistant message asked for.
    pub tool_calls: Vec<ToolCall>,
    /// On a tool message: the id of the call it answers.
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message with only a role and text.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }

    /// The assistant turn that asked for `tool_calls` (its text may be empty),
    /// as it must be replayed before the tools' results.
    pub fn assistant_tool_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self {
            tool_calls,
            ..Self::new(Role::Assistant, content)
        }
    }

    /// A tool's result for the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::new(Role::Tool, content)
        }
    }
}

/// A function the model may call.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments; `Value::Null` sends none.
    pub parameters: serde_json::Value,
}

/// A call the model asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolCall {
    /// The server's id (`call_...`); `call_{index}` when a server sent none.
    pub id: String,
    pub name: String,
    /// The arguments as JSON text, exactly as the model wrote them (`{}` when
    /// the server sent nothing). The model may write invalid JSON: parse it
    /// and report a failure to the model rather than trusting it.
    pub arguments: String,
}

/// Tokens the server counted for one completion; zero when it did not say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl Add for Usage {
    type Output = Usage;

    /// Sums per run; saturates rather than wrapping.
    fn add(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = *self + other;
    }
}

/// The whole completion, once the stream ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChatResponse {
    /// Every content delta, concatenated (reasoning is not included).
    pub content: String,
    /// The calls the model asked for, in the order of their index.
    pub tool_calls: Vec<ToolCall>,
    pub usage: Usage,
}
