//! Conversions between the SDK's types and the generated WIT types.
//!
//! Every conversion is total: the SDK types mirror the WIT ones case for case,
//! so a plugin's result always has a faithful WIT value.

use crate::bindings::netra::plugin::types as wit;
use crate::{AgentError, Context, Message, Role, ToolDescriptor, ToolError};

impl From<wit::RunContext> for Context {
    fn from(ctx: wit::RunContext) -> Self {
        Self {
            user_id: ctx.user_id,
            thread_id: ctx.thread_id,
            run_id: ctx.run_id,
        }
    }
}

impl From<wit::Role> for Role {
    fn from(role: wit::Role) -> Self {
        match role {
            wit::Role::System => Self::System,
            wit::Role::User => Self::User,
            wit::Role::Assistant => Self::Assistant,
            wit::Role::Tool => Self::Tool,
        }
    }
}

impl From<Role> for wit::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::System => Self::System,
            Role::User => Self::User,
            Role::Assistant => Self::Assistant,
            Role::Tool => Self::Tool,
        }
    }
}

impl From<wit::Message> for Message {
    fn from(message: wit::Message) -> Self {
        Self {
            role: message.role.into(),
            content: message.content,
        }
    }
}

impl From<ToolDescriptor> for wit::ToolDescriptor {
    fn from(descriptor: ToolDescriptor) -> Self {
        Self {
            name: descriptor.name,
            description: descriptor.description,
            input_schema: descriptor.input_schema,
            output_schema: descriptor.output_schema,
        }
    }
}

impl From<wit::ToolDescriptor> for ToolDescriptor {
    fn from(descriptor: wit::ToolDescriptor) -> Self {
        Self {
            name: descriptor.name,
            description: descriptor.description,
            input_schema: descriptor.input_schema,
            output_schema: descriptor.output_schema,
        }
    }
}

impl From<ToolError> for wit::ToolError {
    fn from(error: ToolError) -> Self {
        match error {
            ToolError::InvalidArguments(message) => Self::InvalidArguments(message),
            ToolError::Denied(message) => Self::Denied(message),
            ToolError::NotFound(message) => Self::NotFound(message),
            ToolError::Failed(message) => Self::Failed(message),
            ToolError::Timeout => Self::Timeout,
            ToolError::Cancelled => Self::Cancelled,
        }
    }
}

impl From<wit::ToolError> for ToolError {
    fn from(error: wit::ToolError) -> Self {
        match error {
            wit::ToolError::InvalidArguments(message) => Self::InvalidArguments(message),
            wit::ToolError::Denied(message) => Self::Denied(message),
            wit::ToolError::NotFound(message) => Self::NotFound(message),
            wit::ToolError::Failed(message) => Self::Failed(message),
            wit::ToolError::Timeout => Self::Timeout,
            wit::ToolError::Cancelled => Self::Cancelled,
        }
    }
}

impl From<AgentError> for wit::AgentError {
    fn from(error: AgentError) -> Self {
        match error {
            AgentError::InvalidInput(message) => Self::InvalidInput(message),
            AgentError::Unavailable(message) => Self::Unavailable(message),
            AgentError::Failed(message) => Self::Failed(message),
            AgentError::Cancelled => Self::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compares through `Debug`: the generated types do not implement `PartialEq`.
    fn same<A: std::fmt::Debug, B: std::fmt::Debug>(a: A, b: B) {
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
    }

    #[test]
    fn tool_errors_round_trip_case_for_case() {
        let all = [
            ToolError::invalid("a"),
            ToolError::denied("b"),
            ToolError::not_found("c"),
            ToolError::failed("d"),
            ToolError::Timeout,
            ToolError::Cancelled,
        ];
        for error in all {
            let there = wit::ToolError::from(error.clone());
            let back = ToolError::from(there);
            assert_eq!(back, error);
        }
        same(
            wit::ToolError::from(ToolError::invalid("x")),
            wit::ToolError::InvalidArguments("x".into()),
        );
    }

    #[test]
    fn agent_errors_map_case_for_case() {
        same(
            wit::AgentError::from(AgentError::invalid_input("x")),
            wit::AgentError::InvalidInput("x".into()),
        );
        same(
            wit::AgentError::from(AgentError::unavailable("x")),
            wit::AgentError::Unavailable("x".into()),
        );
        same(
            wit::AgentError::from(AgentError::failed("x")),
            wit::AgentError::Failed("x".into()),
        );
        same(
            wit::AgentError::from(AgentError::Cancelled),
            wit::AgentError::Cancelled,
        );
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::System, Role::User, Role::Assistant, Role::Tool] {
            assert_eq!(Role::from(wit::Role::from(role)), role);
        }
    }

    #[test]
    fn context_and_messages_keep_their_fields() {
        let ctx = Context::from(wit::RunContext {
            user_id: "u".into(),
            thread_id: "t".into(),
            run_id: "r".into(),
        });
        assert_eq!(
            (
                ctx.user_id.as_str(),
                ctx.thread_id.as_str(),
                ctx.run_id.as_str()
            ),
            ("u", "t", "r")
        );
        let message = Message::from(wit::Message {
            role: wit::Role::Assistant,
            content: "hi".into(),
        });
        assert_eq!(
            message,
            Message {
                role: Role::Assistant,
                content: "hi".into()
            }
        );
    }
}
