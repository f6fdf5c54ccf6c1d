//! Questions a tool or agent asks whoever its call is for, and waits for.
//!
//! Over MCP, [`ask`] reaches the client's user (`elicitation/create`) and
//! [`sample`] the client's model (`sampling/createMessage`). While a
//! question waits, the call's deadline stands still; the host bounds the wait
//! by the timeout given here and by its own limit (`ask_wait`).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::bindings::netra::plugin::{interaction, types};
use crate::{AgentError, Message, ToolError};

/// Why a question got no answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AskError {
    /// The user saw the question and chose not to answer.
    Declined,
    /// The user dismissed the question, or the call was cancelled.
    Cancelled,
    /// No answer came in time.
    Timeout,
    /// No one can be asked on this call; the message says why.
    Unsupported(String),
    /// The question cannot be asked as it is; the message says what is wrong.
    Invalid(String),
    /// The client answered with an error or an answer that does not match
    /// the schema.
    Failed(String),
}

impl fmt::Display for AskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Declined => f.write_str("the user declined to answer"),
            Self::Cancelled => f.write_str("the question was cancelled"),
            Self::Timeout => f.write_str("no answer came in time"),
            Self::Unsupported(message) => write!(f, "cannot ask: {message}"),
            Self::Invalid(message) => write!(f, "invalid question: {message}"),
            Self::Failed(message) => write!(f, "the question failed: {message}"),
        }
    }
}

impl std::error::Error for AskError {}

impl From<interaction::AskError> for AskError {
    fn from(error: interaction::AskError) -> Self {
        match error {
            interaction::AskError::Declined => Self::Declined,
            interaction::AskError::Cancelled => Self::Cancelled,
            interaction::AskError::Timeout => Self::Timeout,
            interaction::AskError::Unsupported(message) => Self::Unsupported(message),
            interaction::AskError::Invalid(message) => Self::Invalid(message),
            interaction::AskError::Failed(message) => Self::Failed(message),
        }
    }
}

/// Lets a tool use `?` on a question: a declined question denies the call,
/// a cancelled or timed-out one ends it as such, anything else fails it.
impl From<AskError> for ToolError {
    fn from(error: AskError) -> Self {
        match error {
            AskError::Declined => Self::Denied(error.to_string()),
            AskError::Cancelled => Self::Cancelled,
            AskError::Timeout => Self::Timeout,
            _ => Self::Failed(error.to_string()),
        }
    }
}

/// Lets an agent use `?` on a question.
impl From<AskError> for AgentError {
    fn from(error: AskError) -> Self {
        match error {
            AskError::Cancelled => Self::Cancelled,
            _ => Self::Failed(error.to_string()),
        }
    }
}

/// Asks the user `prompt`; the answer is JSON matching `schema`: an object
/// of string, number, integer, boolean and enum properties, or one such
/// property's schema (the answer is then that value). `timeout` bounds the
/// wait (zero: only the host's limit does).
pub fn ask(prompt: &str, schema: &Value, timeout: Duration) -> Result<Value, AskError> {
    let answer = interaction::ask(prompt, Some(&schema.to_string()), millis(timeout))?;
    serde_json::from_str(&answer).map_err(|error| {
        AskError::Failed(format!("the host sent an answer that is not JSON: {error}"))
    })
}

/// Asks the user `prompt` for free text.
pub fn ask_text(prompt: &str, timeout: Duration) -> Result<String, AskError> {
    let answer = interaction::ask(prompt, None, millis(timeout))?;
    serde_json::from_str(&answer).map_err(|error| {
        AskError::Failed(format!(
            "the host sent an answer that is not a JSON string: {error}"
        ))
    })
}

/// Asks the client's language model to continue `messages` (system messages
/// become its system prompt) in at most `max_tokens`; returns its text.
pub fn sample(
    messages: &[Message],
    max_tokens: u32,
    timeout: Duration,
) -> Result<String, AskError> {
    let messages: Vec<types::Message> = messages
        .iter()
        .map(|message| types::Message {
            role: message.role.into(),
            content: message.content.clone(),
        })
        .collect();
    Ok(interaction::sample(&messages, max_tokens, millis(timeout))?)
}

fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_onto_tool_errors() {
        assert!(matches!(
            ToolError::from(AskError::Declined),
            ToolError::Denied(_)
        ));
        assert_eq!(ToolError::from(AskError::Timeout), ToolError::Timeout);
        assert_eq!(ToolError::from(AskError::Cancelled), ToolError::Cancelled);
        assert!(matches!(
            ToolError::from(AskError::Unsupported("no client".into())),
            ToolError::Failed(_)
        ));
        assert_eq!(millis(Duration::from_secs(u64::MAX)), u32::MAX);
    }
}
