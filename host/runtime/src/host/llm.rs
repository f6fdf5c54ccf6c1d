//! `netra:plugin/llm`: chat completion. The run's host decides which models
//! the agent may use, calls the provider and streams the tokens to the client.

use crate::bindings::llm::{ChatRequest, ChatResponse, Host, LlmError};
use crate::host::GuestCtx;

impl Host for GuestCtx {
    async fn chat(&mut self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        match &self.agent {
            Some(agent) => agent.clone().chat(request).await,
            None => Err(LlmError::Denied(format!(
                "no language model is granted to plugin `{}`",
                self.plugin.name
            ))),
        }
    }
}
