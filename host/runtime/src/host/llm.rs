//! `netra:plugin/llm`: chat completion. No provider is wired in yet, so every
//! request is denied with a clear reason.

use crate::bindings::llm::{ChatRequest, ChatResponse, Host, LlmError};
use crate::host::GuestCtx;

impl Host for GuestCtx {
    async fn chat(&mut self, _request: ChatRequest) -> Result<ChatResponse, LlmError> {
        Err(LlmError::Denied(format!(
            "no language model is granted to plugin `{}`",
            self.plugin.name
        )))
    }
}
