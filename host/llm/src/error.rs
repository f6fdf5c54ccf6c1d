//! The one error type of a chat call.

/// Why a chat call failed. The variants match the WIT `llm` interface's
/// error cases; the string is a message for people, never parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// HTTP 429 after every retry was spent.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// The endpoint could not be reached, failed (5xx), timed out, stalled,
    /// broke off mid-stream, sent a malformed stream, or its breaker is open.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The request cannot succeed as sent: a bad configuration, or a 4xx
    /// answer (with the server's message).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The server refused the credentials (401, 403).
    #[error("denied: {0}")]
    Denied(String),
}

impl LlmError {
    /// A stable name of the variant, as the WIT interface spells it.
    pub fn code(&self) -> &'static str {
        match self {
            LlmError::RateLimited(_) => "rate-limited",
            LlmError::Unavailable(_) => "unavailable",
            LlmError::InvalidRequest(_) => "invalid-request",
            LlmError::Denied(_) => "denied",
        }
    }

    /// The message without the variant's prefix.
    pub fn message(&self) -> &str {
        match self {
            LlmError::RateLimited(message)
            | LlmError::Unavailable(message)
            | LlmError::InvalidRequest(message)
            | LlmError::Denied(message) => message,
        }
    }

    /// The same variant with its message passed through `f`.
    pub(crate) fn map_message(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            LlmError::RateLimited(message) => LlmError::RateLimited(f(message)),
            LlmError::Unavailable(message) => LlmError::Unavailable(f(message)),
            LlmError::InvalidRequest(message) => LlmError::InvalidRequest(f(message)),
            LlmError::Denied(message) => LlmError::Denied(f(message)),
        }
    }
}
