//! The [`Tool`] trait and what the host learns about a tool.

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Context, ToolError};

/// A tool: a named function an agent or a language model can call with JSON
/// arguments.
///
/// Export tools with [`export_tools!`](crate::export_tools). The SDK decodes the
/// JSON arguments into [`Args`](Self::Args) (a decoding failure is answered with
/// [`ToolError::InvalidArguments`] without calling the tool) and encodes the
/// returned [`Output`](Self::Output) as JSON.
pub trait Tool {
    /// The tool's name: lowercase ASCII letters, digits, `_` and `-`, at most 64
    /// characters, unique within the plugin.
    const NAME: &'static str;
    /// One or two sentences a language model reads to decide when to call it.
    const DESCRIPTION: &'static str;
    /// The arguments; its JSON Schema is the tool's input schema, so document
    /// its fields with `///` comments.
    type Args: DeserializeOwned + JsonSchema;
    /// The result, encoded as JSON.
    type Output: Serialize;

    /// Runs the tool for the request `ctx`.
    fn call(ctx: &Context, args: Self::Args) -> Result<Self::Output, ToolError>;

    /// The JSON Schema of the arguments; generated from [`Args`](Self::Args).
    fn input_schema() -> String {
        schema_of::<Self::Args>()
    }

    /// The JSON Schema of the result, when the tool promises one. None by
    /// default; `Some(schema_of::<Self::Output>())` is the usual override.
    fn output_schema() -> Option<String> {
        None
    }
}

/// What a tool is and how to call it, as shown to agents and language models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolDescriptor {
    /// The tool's name.
    pub name: String,
    /// What the tool does.
    pub description: String,
    /// A JSON Schema (draft 2020-12) of the arguments.
    pub input_schema: String,
    /// A JSON Schema of the result, when the tool promises one.
    pub output_schema: Option<String>,
}

impl ToolDescriptor {
    /// Describes the tool `T`.
    pub fn of<T: Tool>() -> Self {
        Self {
            name: T::NAME.to_owned(),
            description: T::DESCRIPTION.to_owned(),
            input_schema: T::input_schema(),
            output_schema: T::output_schema(),
        }
    }
}

/// The JSON Schema (draft 2020-12) of `T`, as JSON text.
pub fn schema_of<T: JsonSchema + ?Sized>() -> String {
    schemars::schema_for!(T).as_value().to_string()
}

/// Runs the tool `T` on JSON `arguments` and returns its JSON result.
///
/// Blank arguments count as `{}`: callers (models especially) often send
/// nothing at all to a tool whose arguments are all optional.
pub(crate) fn call_json<T: Tool>(ctx: &Context, arguments: &str) -> Result<String, ToolError> {
    let arguments = if arguments.trim().is_empty() {
        "{}"
    } else {
        arguments
    };
    let args = serde_json::from_str::<T::Args>(arguments)
        .map_err(|error| ToolError::InvalidArguments(error.to_string()))?;
    let output = T::call(ctx, args)?;
    serde_json::to_string(&output).map_err(|error| {
        ToolError::Failed(format!(
            "the result of `{}` could not be encoded as JSON: {error}",
            T::NAME
        ))
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use schemars::JsonSchema;
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    /// Arguments of `add`.
    #[derive(Deserialize, JsonSchema)]
    pub(crate) struct AddArgs {
        /// The first term.
        a: i64,
        /// The second term.
        b: i64,
    }

    /// A tool that adds two integers, or fails on request.
    pub(crate) struct Add;

    impl Tool for Add {
        const NAME: &'static str = "add";
        const DESCRIPTION: &'static str = "Adds two integers.";
        type Args = AddArgs;
        type Output = i64;

        fn call(_ctx: &Context, args: AddArgs) -> Result<i64, ToolError> {
            args.a
                .checked_add(args.b)
                .ok_or_else(|| ToolError::invalid("the sum overflows"))
        }
    }

    /// Arguments of `whoami`: none.
    #[derive(Deserialize, JsonSchema)]
    pub(crate) struct NoArgs {}

    /// A tool that returns its context, with a declared output schema.
    pub(crate) struct WhoAmI;

    impl Tool for WhoAmI {
        const NAME: &'static str = "whoami";
        const DESCRIPTION: &'static str = "Returns the caller.";
        type Args = NoArgs;
        type Output = BTreeMap<&'static str, String>;

        fn call(ctx: &Context, _args: NoArgs) -> Result<Self::Output, ToolError> {
            Ok(BTreeMap::from([
                ("user", ctx.user_id.clone()),
                ("thread", ctx.thread_id.clone()),
                ("run", ctx.run_id.clone()),
            ]))
        }

        fn output_schema() -> Option<String> {
            Some(schema_of::<Self::Output>())
        }
    }

    /// A tool whose result cannot be encoded as JSON (a map with non-string keys).
    pub(crate) struct Unencodable;

    impl Tool for Unencodable {
        const NAME: &'static str = "unencodable";
        const DESCRIPTION: &'static str = "Returns something JSON cannot hold.";
        type Args = NoArgs;
        type Output = BTreeMap<(u8, u8), u8>;

        fn call(_ctx: &Context, _args: NoArgs) -> Result<Self::Output, ToolError> {
            Ok(BTreeMap::from([((1, 2), 3)]))
        }
    }

    fn ctx() -> Context {
        Context {
            user_id: "u".into(),
            thread_id: "t".into(),
            run_id: "r".into(),
        }
    }

    #[test]
    fn input_schema_comes_from_the_args_type() {
        let schema: Value = serde_json::from_str(&Add::input_schema()).expect("valid JSON");
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["description"], "Arguments of `add`.");
        assert_eq!(schema["properties"]["a"]["description"], "The first term.");
        assert_eq!(schema["required"], json!(["a", "b"]));
    }

    #[test]
    fn descriptor_collects_name_description_and_schemas() {
        let add = ToolDescriptor::of::<Add>();
        assert_eq!(add.name, "add");
        assert_eq!(add.description, "Adds two integers.");
        assert_eq!(add.output_schema, None);

        let whoami = ToolDescriptor::of::<WhoAmI>();
        let output: Value =
            serde_json::from_str(whoami.output_schema.as_deref().expect("declared"))
                .expect("valid JSON");
        assert_eq!(output["type"], "object");
    }

    #[test]
    fn call_json_decodes_calls_and_encodes() {
        assert_eq!(
            call_json::<Add>(&ctx(), r#"{"a": 2, "b": 40}"#),
            Ok("42".into())
        );
        let who: Value =
            serde_json::from_str(&call_json::<WhoAmI>(&ctx(), "{}").expect("ok")).expect("json");
        assert_eq!(who, json!({"user": "u", "thread": "t", "run": "r"}));
    }

    #[test]
    fn bad_arguments_are_invalid_arguments_with_the_serde_message() {
        assert_eq!(
            call_json::<Add>(&ctx(), r#"{"a": 2}"#),
            Err(ToolError::InvalidArguments(
                "missing field `b` at line 1 column 8".into()
            ))
        );
        assert!(matches!(
            call_json::<Add>(&ctx(), "not json"),
            Err(ToolError::InvalidArguments(_))
        ));
        assert!(matches!(
            call_json::<Add>(&ctx(), r#"{"a": "two", "b": 1}"#),
            Err(ToolError::InvalidArguments(message)) if message.contains("invalid type")
        ));
    }

    #[test]
    fn blank_arguments_count_as_an_empty_object() {
        assert!(call_json::<WhoAmI>(&ctx(), "").is_ok());
        assert!(call_json::<WhoAmI>(&ctx(), "  \n").is_ok());
    }

    #[test]
    fn tool_errors_pass_through() {
        assert_eq!(
            call_json::<Add>(&ctx(), &format!(r#"{{"a": {}, "b": 1}}"#, i64::MAX)),
            Err(ToolError::invalid("the sum overflows"))
        );
    }

    #[test]
    fn an_unencodable_result_is_a_failure_not_a_panic() {
        assert!(matches!(
            call_json::<Unencodable>(&ctx(), "{}"),
            Err(ToolError::Failed(message)) if message.contains("`unencodable`")
        ));
    }
}
