//! Typed failures of loading a plugin and of calling into one.
//!
//! A guest can fail in many ways (return an error, trap, run out of time, memory
//! or fuel, overflow its stack); each becomes one variant here so callers can
//! report it precisely. None of them affects the host or other requests.

use std::time::Duration;

use crate::bindings::{AgentError, ToolError};

/// Why a call into a plugin did not return a result.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The tool ran and returned an error value.
    #[error("{}", tool_error_message(.0))]
    Tool(ToolError),
    /// The agent ran and returned an error value.
    #[error("{}", agent_error_message(.0))]
    Agent(AgentError),
    /// The call did not finish within its deadline.
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The guest tried to grow its memory past its limit.
    #[error("out of memory: the plugin's limit is {limit} bytes")]
    OutOfMemory {
        /// The limit that was hit, in bytes.
        limit: usize,
    },
    /// The guest used up its fuel.
    #[error("out of fuel")]
    OutOfFuel,
    /// The guest overflowed its stack (usually unbounded recursion).
    #[error("stack overflow")]
    StackOverflow,
    /// The guest trapped; `message` holds what it printed to stderr, which for
    /// a Rust panic is the panic message.
    #[error("plugin trapped ({trap}){}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Trap {
        /// The kind of trap, as wasmtime names it.
        trap: String,
        /// The guest's last words on stderr.
        message: String,
    },
    /// The host is at its limit of concurrent instances.
    #[error("at capacity: {0}")]
    Capacity(String),
    /// A fresh instance could not be created.
    #[error("instantiation failed: {0}")]
    Instantiate(String),
    /// An earlier call on this instance failed fatally; it cannot be reused.
    #[error("the instance failed earlier and cannot be called again")]
    Poisoned,
    /// The tool's result is larger than its plugin may return.
    #[error("the result is {bytes} bytes; the plugin's limit is {limit} (limits.max_result_bytes)")]
    ResultTooLarge {
        /// The result's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

impl InvokeError {
    /// A short stable code for the error, for wire protocols and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::Tool(_) => "tool_error",
            InvokeError::Agent(AgentError::InvalidInput(_)) => "invalid_input",
            InvokeError::Agent(AgentError::Unavailable(_)) => "dependency_unavailable",
            InvokeError::Agent(AgentError::Failed(_)) => "agent_failed",
            InvokeError::Agent(AgentError::Cancelled) => "cancelled",
            InvokeError::Timeout(_) => "timeout",
            InvokeError::OutOfMemory { .. } => "out_of_memory",
            InvokeError::OutOfFuel => "out_of_fuel",
            InvokeError::StackOverflow => "stack_overflow",
            InvokeError::Trap { .. } => "trap",
            InvokeError::Capacity(_) => "capacity",
            InvokeError::Instantiate(_) => "instantiate_failed",
            InvokeError::Poisoned => "poisoned",
            InvokeError::ResultTooLarge { .. } => "result_too_large",
        }
    }

    /// Whether the instance that produced this error may be called again.
    pub(crate) fn poisons_instance(&self) -> bool {
        !matches!(
            self,
            InvokeError::Tool(_) | InvokeError::Agent(_) | InvokeError::ResultTooLarge { .. }
        )
    }
}

/// A readable message for a tool's own error value.
pub fn tool_error_message(err: &ToolError) -> String {
    match err {
        ToolError::InvalidArguments(m) => format!("invalid arguments: {m}"),
        ToolError::Denied(m) => format!("denied: {m}"),
        ToolError::NotFound(m) => format!("not found: {m}"),
        ToolError::Failed(m) => format!("failed: {m}"),
        ToolError::Timeout => "timed out".to_string(),
        ToolError::Cancelled => "cancelled".to_string(),
    }
}

/// A readable message for an agent's own error value.
pub fn agent_error_message(err: &AgentError) -> String {
    match err {
        AgentError::InvalidInput(m) => format!("invalid input: {m}"),
        AgentError::Unavailable(m) => format!("unavailable: {m}"),
        AgentError::Failed(m) => format!("failed: {m}"),
        AgentError::Cancelled => "cancelled".to_string(),
    }
}

/// Why a plugin could not be loaded. The message is meant for an operator.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a valid component, or it failed to compile.
    #[error("not a valid component: {0}")]
    Compile(String),
    /// The component does not export the interface of the expected world.
    #[error("component does not implement the {expected} world (it exports: {found})")]
    WrongWorld {
        /// The world the host expected.
        expected: &'static str,
        /// The interfaces the component does export.
        found: String,
    },
    /// The component imports something the host does not provide.
    #[error("component cannot be linked: {0}")]
    Link(String),
    /// `describe` failed.
    #[error("describe failed: {0}")]
    Describe(InvokeError),
    /// `describe` answered with something unusable.
    #[error("invalid descriptor: {0}")]
    InvalidDescriptor(String),
    /// Reading the component or the cache failed.
    #[error("{0}")]
    Io(String),
}
