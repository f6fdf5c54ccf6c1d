//! The messages an assistant run sends to the model, built up step by step.
//! Plain Rust over the SDK's types, tested on the host.

use netra_sdk::llm::{ChatMessage, ChatResponse, Role};
use netra_sdk::{Message, Role as ThreadRole};

/// The conversation of one run.
pub struct Conversation {
    messages: Vec<ChatMessage>,
}

fn message(role: Role, content: String) -> ChatMessage {
    ChatMessage {
        role,
        content,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

impl Conversation {
    /// The system prompt, the thread's history, then the user's input.
    pub fn new(system: String, history: &[Message], input: String) -> Self {
        let mut messages = vec![message(Role::System, system)];
        messages.extend(history.iter().map(|m| {
            let role = match m.role {
                ThreadRole::System => Role::System,
                ThreadRole::User => Role::User,
                ThreadRole::Assistant => Role::Assistant,
                ThreadRole::Tool => Role::Tool,
            };
            message(role, m.content.clone())
        }));
        messages.push(message(Role::User, input));
        Self { messages }
    }

    /// Everything so far.
    pub fn messages(&self) -> &[ChatMessage] {
        &self.messages
    }

    /// The model's turn that asked for tools.
    pub fn assistant(&mut self, response: ChatResponse) {
        self.messages.push(ChatMessage {
            role: Role::Assistant,
            content: response.content,
            tool_calls: response.tool_calls,
            tool_call_id: None,
        });
    }

    /// A tool's result (or error text), answering call `id`.
    pub fn tool_result(&mut self, id: String, content: String) {
        self.messages.push(ChatMessage {
            role: Role::Tool,
            content,
            tool_calls: Vec::new(),
            tool_call_id: Some(id),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netra_sdk::llm::{ToolCall, Usage};

    #[test]
    fn a_conversation_orders_system_history_input_then_tool_turns() {
        let history = vec![
            Message {
                role: ThreadRole::User,
                content: "hi".into(),
            },
            Message {
                role: ThreadRole::Assistant,
                content: "hello".into(),
            },
        ];
        let mut c = Conversation::new("be brief".into(), &history, "what is 2+3?".into());
        c.assistant(ChatResponse {
            content: String::new(),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "calculate".into(),
                arguments: r#"{"expression":"2+3"}"#.into(),
            }],
            usage: Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
            },
        });
        c.tool_result("call_1".into(), "5".into());
        let roles: Vec<Role> = c.messages().iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::System,
                Role::User,
                Role::Assistant,
                Role::User,
                Role::Assistant,
                Role::Tool
            ]
        );
        assert_eq!(c.messages()[0].content, "be brief");
        assert_eq!(c.messages()[4].tool_calls.len(), 1);
        assert_eq!(c.messages()[5].tool_call_id.as_deref(), Some("call_1"));
    }
}
