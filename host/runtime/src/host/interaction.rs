//! `netra:plugin/interaction`: a plugin's questions go to whoever its call
//! is for (an MCP client: its user, its model). While one waits, the call's
//! deadline stands still; the wait is bounded by the plugin's timeout and by
//! its `ask_wait` limit, whichever is shorter.

use std::future::Future;
use std::time::Duration;

use crate::bindings::Message;
use crate::bindings::interaction::{AskError, Host};
use crate::host::{GuestCtx, Question, SampleRequest};

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
        let wait = self.wait_for(timeout_ms);
        let question = Question {
            prompt,
            schema,
            wait,
        };
        // The call's own interaction (an MCP client), else the agent's run.
        let asked = match (&self.interaction, &self.agent) {
            (Some(interaction), _) => interaction.clone().ask(question),
            (None, Some(agent)) => agent.clone().ask(question),
            (None, None) => return Err(no_one()),
        };
        let answer = self.wait(wait, asked).await?;
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
        let Some(interaction) = self.interaction.clone() else {
            return Err(AskError::Unsupported(
                "no client model can be asked on this call: sampling goes to MCP clients \
                 that declare the capability (agents reach models through llm)"
                    .into(),
            ));
        };
        let request = SampleRequest {
            messages,
            max_tokens,
        };
        self.wait(self.wait_for(timeout_ms), interaction.sample(request))
            .await
    }
}

/// Why a tool call that is not made for a client cannot ask.
fn no_one() -> AskError {
    AskError::Unsupported(
        "no one can be asked on this call: questions go to the user of an agent's run, \
         and to MCP clients that declare the elicitation capability"
            .into(),
    )
}

impl GuestCtx {
    /// How long to wait for an answer: the plugin's `timeout_ms` (0: no
    /// timeout of its own) and `ask_wait`, whichever is shorter.
    fn wait_for(&self, timeout_ms: u32) -> Duration {
        let limit = self.plugin.limits.ask_wait;
        match timeout_ms {
            0 => limit,
            ms => limit.min(Duration::from_millis(u64::from(ms))),
        }
    }

    /// Waits for `answer`, at most `wait`, with the call's clock stopped.
    async fn wait<T>(
        &self,
        wait: Duration,
        answer: impl Future<Output = Result<T, AskError>>,
    ) -> Result<T, AskError> {
        let _stopped = self.deadline.pause();
        tokio::time::timeout(wait, answer)
            .await
            .unwrap_or(Err(AskError::Timeout))
    }
}
