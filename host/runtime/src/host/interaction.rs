//! `netra:plugin/interaction`: a plugin's questions go to whoever its call
//! is for (an MCP client: its user, its model). While one waits, the call's
//! deadline stands still; the wait is bounded by the plugin's timeout and by
//! its `ask_wait` limit, whichever is shorter.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::bindings::Message;
use crate::bindings::interaction::{AskError, Host};
use crate::host::{GuestCtx, Interaction, Question, SampleRequest};

impl Host for GuestCtx {
    async fn ask(
        &mut self,
        prompt: String,
        schema: Option<String>,
        timeout_ms: u32,
    ) -> Result<String, AskError> {
        if prompt.trim().is_empty() {
            return Err(AskError::Invalid("the prompt is empty".into()));
        }
        let schema = match schema {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|e| AskError::Invalid(format!("the schema is not JSON: {e}")))?,
            ),
        };
        let interaction = self.interaction()?;
        let question = Question { prompt, schema };
        let answer = self.wait(timeout_ms, interaction.ask(question)).await?;
        Ok(answer.to_string())
    }

    async fn sample(
        &mut self,
        messages: Vec<Message>,
        max_tokens: u32,
        timeout_ms: u32,
    ) -> Result<String, AskError> {
        if messages.is_empty() {
            return Err(AskError::Invalid("there are no messages".into()));
        }
        if max_tokens == 0 {
            return Err(AskError::Invalid("max-tokens is 0".into()));
        }
        let interaction = self.interaction()?;
        let request = SampleRequest {
            messages,
            max_tokens,
        };
        self.wait(timeout_ms, interaction.sample(request)).await
    }
}

impl GuestCtx {
    /// Who answers this call's questions.
    fn interaction(&self) -> Result<Arc<dyn Interaction>, AskError> {
        self.interaction.clone().ok_or_else(|| {
            AskError::Unsupported(
                "no one can be asked on this call: questions go to MCP clients that declare \
                 the elicitation (ask) or sampling (sample) capability"
                    .into(),
            )
        })
    }

    /// Waits for `answer` with the call's clock stopped, at most the
    /// plugin's `timeout_ms` (0: no timeout of its own) and `ask_wait`.
    async fn wait<T>(
        &self,
        timeout_ms: u32,
        answer: impl Future<Output = Result<T, AskError>>,
    ) -> Result<T, AskError> {
        let limit = self.plugin.limits.ask_wait;
        let wait = match timeout_ms {
            0 => limit,
            ms => limit.min(Duration::from_millis(u64::from(ms))),
        };
        let _stopped = self.deadline.pause();
        tokio::time::timeout(wait, answer)
            .await
            .unwrap_or(Err(AskError::Timeout))
    }
}
