//! What the code expanded by `export_tools!` and `export_agent!` calls into.
//!
//! Not part of the public API: the macros are the only intended users, and
//! these items may change in any release.

pub mod bindings;

pub use wit_bindgen;

use crate::tool::call_json;
use crate::{Agent, Context, Message, Tool, ToolDescriptor, ToolError};
use bindings::netra::plugin::types as wit;

/// One exported tool: its name and monomorphised entry points.
pub struct ToolEntry {
    name: &'static str,
    describe: fn() -> ToolDescriptor,
    call: fn(&Context, &str) -> Result<String, ToolError>,
}

impl ToolEntry {
    /// The entry of the tool `T`.
    pub const fn of<T: Tool>() -> Self {
        Self {
            name: T::NAME,
            describe: ToolDescriptor::of::<T>,
            call: call_json::<T>,
        }
    }
}

/// Implements `tool.describe`.
pub fn describe_tools(tools: &[ToolEntry]) -> Vec<wit::ToolDescriptor> {
    tools.iter().map(|tool| (tool.describe)().into()).collect()
}

/// Implements `tool.invoke`.
pub fn invoke_tool(
    tools: &[ToolEntry],
    ctx: wit::RunContext,
    name: String,
    arguments: String,
) -> Result<String, wit::ToolError> {
    dispatch(tools, &ctx.into(), &name, &arguments).map_err(Into::into)
}

fn dispatch(
    tools: &[ToolEntry],
    ctx: &Context,
    name: &str,
    arguments: &str,
) -> Result<String, ToolError> {
    let tool = tools
        .iter()
        .find(|tool| tool.name == name)
        .ok_or_else(|| ToolError::NotFound(format!("this plugin has no tool named `{name}`")))?;
    (tool.call)(ctx, arguments)
}

/// Implements `agent.describe`.
pub fn describe_agent<A: Agent>() -> wit::AgentDescriptor {
    wit::AgentDescriptor {
        name: A::NAME.to_owned(),
        description: A::DESCRIPTION.to_owned(),
    }
}

/// Implements `agent.run`.
pub fn run_agent<A: Agent>(
    ctx: wit::RunContext,
    input: String,
    history: Vec<wit::Message>,
) -> Result<String, wit::AgentError> {
    let history = history.into_iter().map(Message::from).collect();
    A::run(&ctx.into(), input, history).map_err(Into::into)
}

/// Fails compilation unless every name is a valid tool name and no two are
/// equal. Evaluated in a `const` item by `export_tools!`.
pub const fn check_tool_names(names: &[&str]) {
    let mut i = 0;
    while i < names.len() {
        check_name(names[i]);
        let mut j = i + 1;
        while j < names.len() {
            if str_eq(names[i], names[j]) {
                panic!("export_tools!: two tools have the same NAME");
            }
            j += 1;
        }
        i += 1;
    }
}

/// Fails compilation unless `name` is a valid name: 1 to 64 lowercase ASCII
/// letters, digits, `_` and `-` (the rule of the WIT `tool-descriptor`).
pub const fn check_name(name: &str) {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > 64 {
        panic!("a tool or agent NAME must have 1 to 64 characters");
    }
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => {}
            _ => panic!(
                "a tool or agent NAME may contain only lowercase ASCII letters, digits, `_` and `-`"
            ),
        }
        i += 1;
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::tests::{Add, WhoAmI};

    const TOOLS: &[ToolEntry] = &[ToolEntry::of::<Add>(), ToolEntry::of::<WhoAmI>()];

    // The check runs at compile time exactly as in `export_tools!`.
    const _: () = check_tool_names(&[Add::NAME, WhoAmI::NAME]);

    fn ctx() -> wit::RunContext {
        wit::RunContext {
            user_id: "u".into(),
            thread_id: "t".into(),
            run_id: "r".into(),
        }
    }

    #[test]
    fn describe_lists_every_tool_in_order() {
        let names: Vec<_> = describe_tools(TOOLS).into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["add", "whoami"]);
    }

    #[test]
    fn invoke_dispatches_by_name() {
        let result = invoke_tool(TOOLS, ctx(), "add".into(), r#"{"a":1,"b":2}"#.into());
        assert_eq!(result.ok().as_deref(), Some("3"));
        let result = invoke_tool(TOOLS, ctx(), "whoami".into(), String::new());
        assert!(result.is_ok_and(|json| json.contains(r#""user":"u""#)));
    }

    #[test]
    fn unknown_names_are_not_found() {
        assert_eq!(
            dispatch(TOOLS, &Context::default(), "sub", "{}"),
            Err(ToolError::NotFound(
                "this plugin has no tool named `sub`".into()
            ))
        );
    }

    #[test]
    fn bad_arguments_reach_the_host_as_invalid_arguments() {
        let result = invoke_tool(TOOLS, ctx(), "add".into(), "[]".into());
        assert!(matches!(result, Err(wit::ToolError::InvalidArguments(_))));
    }

    struct Echo;

    impl Agent for Echo {
        const NAME: &'static str = "echo";
        const DESCRIPTION: &'static str = "Repeats the input.";

        fn run(
            ctx: &Context,
            input: String,
            history: Vec<Message>,
        ) -> Result<String, crate::AgentError> {
            if input.is_empty() {
                return Err(crate::AgentError::invalid_input("say something"));
            }
            Ok(format!("{}:{}:{input}", ctx.user_id, history.len()))
        }
    }

    #[test]
    fn agents_describe_and_run() {
        let descriptor = describe_agent::<Echo>();
        assert_eq!(
            (descriptor.name.as_str(), descriptor.description.as_str()),
            ("echo", "Repeats the input.")
        );
        let history = vec![wit::Message {
            role: wit::Role::User,
            content: "earlier".into(),
        }];
        let answer = run_agent::<Echo>(ctx(), "hi".into(), history);
        assert_eq!(answer.ok().as_deref(), Some("u:1:hi"));
        let error = run_agent::<Echo>(ctx(), String::new(), Vec::new());
        assert!(matches!(error, Err(wit::AgentError::InvalidInput(_))));
    }

    #[test]
    fn valid_names_pass() {
        check_name("calculate");
        check_name("text_stats");
        check_name("a-1");
        check_tool_names(&["a", "b", "c"]);
    }

    #[test]
    #[should_panic(expected = "lowercase ASCII")]
    fn upper_case_names_are_rejected() {
        check_name("Calculate");
    }

    #[test]
    #[should_panic(expected = "1 to 64")]
    fn empty_names_are_rejected() {
        check_name("");
    }

    #[test]
    #[should_panic(expected = "1 to 64")]
    fn long_names_are_rejected() {
        check_name(&"x".repeat(65));
    }

    #[test]
    #[should_panic(expected = "same NAME")]
    fn duplicate_names_are_rejected() {
        check_tool_names(&["a", "b", "a"]);
    }
}
