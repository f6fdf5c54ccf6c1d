//! The codes of failed runs and tool calls: `agent_error.code` and
//! `tool_completed.error.code`. One enum for both, since most codes
//! (`timeout`, `trap`, `out_of_memory`, ...) mean the same in either place.
//!
//! A client decodes a code it does not know (from a newer host) as
//! [`Code::Other`], and treats it as a generic failure.

use std::fmt;

use netra_runtime::{AgentError, InvokeError, ToolError};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $text:literal,)*) => {
        /// A failure code (see the module docs).
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Code {
            $($(#[$doc])* $variant,)*
            /// A code this build does not know.
            Other(String),
        }

        impl Code {
            /// Every code this build knows.
            pub const ALL: &[Code] = &[$(Code::$variant,)*];

            /// The code as it is written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Code::$variant => $text,)*
                    Code::Other(text) => text,
                }
            }

            /// The code written `text` ([`Code::Other`] when unknown).
            pub fn parse(text: &str) -> Code {
                match text {
                    $($text => Code::$variant,)*
                    other => Code::Other(other.to_string()),
                }
            }
        }
    };
}

codes! {
    // Tool call failures the tool or the host reports.
    /// The arguments do not fit the tool's schema or are not JSON.
    InvalidArguments = "invalid_arguments",
    /// The call is not allowed (a grant, a budget).
    Denied = "denied",
    /// No such tool.
    NotFound = "not_found",
    /// The tool failed.
    Failed = "failed",
    /// The call or run took longer than its deadline.
    Timeout = "timeout",
    /// The call or run was cancelled.
    Cancelled = "cancelled",
    /// The arguments are over `limits.max_tool_arguments_bytes`.
    ArgumentsTooLarge = "arguments_too_large",
    /// The result is over `limits.max_result_bytes`.
    ResultTooLarge = "result_too_large",
    // The runtime's failures of a guest.
    /// A tool call failed inside a nested run's tool.
    ToolError = "tool_error",
    /// The agent refused its input.
    InvalidInput = "invalid_input",
    /// Something the agent needs is missing or down.
    DependencyUnavailable = "dependency_unavailable",
    /// The agent failed.
    AgentFailed = "agent_failed",
    /// The guest ran out of memory (its limit).
    OutOfMemory = "out_of_memory",
    /// The guest ran out of fuel.
    OutOfFuel = "out_of_fuel",
    /// The guest's stack overflowed.
    StackOverflow = "stack_overflow",
    /// The guest trapped.
    Trap = "trap",
    /// The host had no instance to spare; retry.
    Capacity = "capacity",
    /// The guest could not be instantiated.
    InstantiateFailed = "instantiate_failed",
    /// The instance was unusable after an earlier failure.
    Poisoned = "poisoned",
    // What the host ends a run with.
    /// The run emitted more than `limits.max_events` events.
    BudgetEvents = "budget_events",
    /// The run's events took more than `limits.max_event_bytes`.
    BudgetEventBytes = "budget_event_bytes",
    /// The run made more than `limits.max_tool_calls` tool calls.
    BudgetToolCalls = "budget_tool_calls",
    /// The run started more than `limits.max_nested_runs` agents as tools.
    BudgetNestedRuns = "budget_nested_runs",
    /// The answer is over `limits.max_answer_bytes`.
    BudgetAnswerBytes = "budget_answer_bytes",
    /// Agents delegated to agents deeper than the host allows.
    DelegationTooDeep = "delegation_too_deep",
    /// The agent called a tool it is not granted.
    ToolDenied = "tool_denied",
    /// The user has `max_runs_per_user` runs going (a nested run's call).
    TooManyRuns = "too_many_runs",
    /// The host is at its limit of runs (a nested run's call).
    AtCapacity = "at_capacity",
    /// The store failed; retry.
    StoreUnavailable = "store_unavailable",
    /// The host restarted while the run was going.
    HostRestarted = "host_restarted",
    /// The host failed.
    Internal = "internal",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Code::parse(&text))
    }
}

impl From<&ToolError> for Code {
    fn from(err: &ToolError) -> Self {
        match err {
            ToolError::InvalidArguments(_) => Code::InvalidArguments,
            ToolError::Denied(_) => Code::Denied,
            ToolError::NotFound(_) => Code::NotFound,
            ToolError::Failed(_) => Code::Failed,
            ToolError::Timeout => Code::Timeout,
            ToolError::Cancelled => Code::Cancelled,
        }
    }
}

impl From<&InvokeError> for Code {
    fn from(err: &InvokeError) -> Self {
        match err {
            InvokeError::Tool(_) => Code::ToolError,
            InvokeError::Agent(AgentError::InvalidInput(_)) => Code::InvalidInput,
            InvokeError::Agent(AgentError::Unavailable(_)) => Code::DependencyUnavailable,
            InvokeError::Agent(AgentError::Failed(_)) => Code::AgentFailed,
            InvokeError::Agent(AgentError::Cancelled) => Code::Cancelled,
            InvokeError::Timeout(_) => Code::Timeout,
            InvokeError::OutOfMemory { .. } => Code::OutOfMemory,
            InvokeError::OutOfFuel => Code::OutOfFuel,
            InvokeError::StackOverflow => Code::StackOverflow,
            InvokeError::Trap { .. } => Code::Trap,
            InvokeError::Capacity(_) => Code::Capacity,
            InvokeError::Instantiate(_) => Code::InstantiateFailed,
            InvokeError::Poisoned => Code::Poisoned,
            InvokeError::ResultTooLarge { .. } => Code::ResultTooLarge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept() {
        for code in Code::ALL {
            let text = serde_json::to_string(code).expect("serializes");
            let back: Code = serde_json::from_str(&text).expect("decodes");
            assert_eq!(&back, code);
        }
        let unknown: Code = serde_json::from_str("\"brand_new\"").expect("decodes");
        assert_eq!(unknown, Code::Other("brand_new".into()));
        assert_eq!(unknown.to_string(), "brand_new");
    }

    #[test]
    fn the_runtimes_codes_are_the_wires() {
        let errors = [
            InvokeError::Timeout(std::time::Duration::from_secs(1)),
            InvokeError::OutOfFuel,
            InvokeError::StackOverflow,
            InvokeError::Poisoned,
            InvokeError::Capacity("full".into()),
            InvokeError::Agent(AgentError::Failed("x".into())),
        ];
        for err in &errors {
            assert_eq!(Code::from(err).as_str(), err.code());
        }
    }
}
