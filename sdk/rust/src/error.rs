//! The errors a tool or an agent returns to the host.

use std::fmt;

/// Why a tool call failed; the SDK's mirror of the WIT `tool-error` variant.
///
/// Returning an error is the normal way for a tool to fail: the message goes
/// back to the caller (often a language model) to act on. A panic, by contrast,
/// traps the component and the host treats it as a bug in the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ToolError {
    /// The arguments did not match the input schema or made no sense; the
    /// message says what was wrong, for the caller to fix.
    InvalidArguments(String),
    /// The request was understood but is not allowed.
    Denied(String),
    /// No tool of that name exists.
    NotFound(String),
    /// The tool ran and failed; the message says why.
    Failed(String),
    /// The tool did not finish within its deadline.
    Timeout,
    /// The run the call belonged to was cancelled.
    Cancelled,
}

impl ToolError {
    /// An [`InvalidArguments`](Self::InvalidArguments) error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidArguments(message.into())
    }

    /// A [`Denied`](Self::Denied) error.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    /// A [`NotFound`](Self::NotFound) error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound(message.into())
    }

    /// A [`Failed`](Self::Failed) error.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidArguments(message) => write!(f, "invalid arguments: {message}"),
            Self::Denied(message) => write!(f, "denied: {message}"),
            Self::NotFound(message) => write!(f, "not found: {message}"),
            Self::Failed(message) => write!(f, "failed: {message}"),
            Self::Timeout => f.write_str("timed out"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for ToolError {}

/// Why an agent run failed; the SDK's mirror of the WIT `agent-error` variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AgentError {
    /// The input could not be handled; not worth retrying unchanged.
    InvalidInput(String),
    /// A dependency (a model provider, a tool) was unavailable; retrying later
    /// may succeed.
    Unavailable(String),
    /// The agent failed for another reason.
    Failed(String),
    /// The agent noticed the run was cancelled and stopped.
    Cancelled,
}

impl AgentError {
    /// An [`InvalidInput`](Self::InvalidInput) error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// An [`Unavailable`](Self::Unavailable) error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable(message.into())
    }

    /// A [`Failed`](Self::Failed) error.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Self::Unavailable(message) => write!(f, "unavailable: {message}"),
            Self::Failed(message) => write!(f, "failed: {message}"),
            Self::Cancelled => f.write_str("cancelled"),
        }
    }
}

impl std::error::Error for AgentError {}

/// Lets an agent use `?` on [`tools::call`](crate::tools::call).
///
/// A tool that timed out counts as unavailable (retrying may succeed);
/// cancellation stays cancellation; every other failure fails the run with the
/// tool's message.
impl From<ToolError> for AgentError {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::Timeout => Self::Unavailable(error.to_string()),
            ToolError::Cancelled => Self::Cancelled,
            other => Self::Failed(format!("tool call {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_pick_the_variant() {
        assert_eq!(
            ToolError::invalid("x"),
            ToolError::InvalidArguments("x".into())
        );
        assert_eq!(ToolError::denied("x"), ToolError::Denied("x".into()));
        assert_eq!(ToolError::not_found("x"), ToolError::NotFound("x".into()));
        assert_eq!(
            ToolError::failed(String::from("x")),
            ToolError::Failed("x".into())
        );
        assert_eq!(
            AgentError::invalid_input("x"),
            AgentError::InvalidInput("x".into())
        );
        assert_eq!(
            AgentError::unavailable("x"),
            AgentError::Unavailable("x".into())
        );
        assert_eq!(AgentError::failed("x"), AgentError::Failed("x".into()));
    }

    #[test]
    fn display_names_the_kind() {
        assert_eq!(
            ToolError::invalid("missing field `expression`").to_string(),
            "invalid arguments: missing field `expression`"
        );
        assert_eq!(ToolError::Timeout.to_string(), "timed out");
        assert_eq!(AgentError::Cancelled.to_string(), "cancelled");
    }

    #[test]
    fn tool_errors_become_agent_errors() {
        assert_eq!(
            AgentError::from(ToolError::Cancelled),
            AgentError::Cancelled
        );
        assert_eq!(
            AgentError::from(ToolError::Timeout),
            AgentError::Unavailable("timed out".into())
        );
        assert_eq!(
            AgentError::from(ToolError::not_found("search")),
            AgentError::Failed("tool call not found: search".into())
        );
    }
}
