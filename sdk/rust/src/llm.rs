//! Chat completion with a language model chosen and granted by the operator.
//!
//! For now this is the generated binding itself; the host forwards the tokens
//! of a completion to the client while it streams. Convert the SDK's
//! [`Role`](crate::Role) and [`ToolDescriptor`](crate::ToolDescriptor) with
//! `.into()` when building a [`ChatRequest`].

pub use crate::bindings::netra::plugin::llm::{
    ChatMessage, ChatRequest, ChatResponse, LlmError, ToolCall, Usage, chat,
};
/// The WIT `role` enum used by [`ChatMessage`]; converts to and from
/// [`crate::Role`].
pub use crate::bindings::netra::plugin::types::Role;
/// The WIT `tool-descriptor` record used by [`ChatRequest`]; converts from
/// [`crate::ToolDescriptor`].
pub use crate::bindings::netra::plugin::types::ToolDescriptor;
