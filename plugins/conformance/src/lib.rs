//! The fixture tools of the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`), written as a netra tool plugin:
//! what the suite asks of a server's tools, done through netra's plugin
//! contract. Rich content (images, audio, embedded resources) is a result
//! of the one key `$content`, a list of MCP content blocks; log lines are
//! `netra_sdk::log`, progress is `netra_sdk::progress`, and questions to the
//! client's user and model are `netra_sdk::interaction`.

use std::time::Duration;

use netra_sdk::interaction::{self, AskError};
use netra_sdk::{Context, Message, Role, Tool, ToolError, log, progress};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// A 1x1 red PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// A tiny WAV file.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

/// No arguments.
#[derive(Deserialize, JsonSchema)]
struct NoArgs {}

/// A result of MCP content blocks.
fn content(blocks: Value) -> Value {
    json!({ "$content": blocks })
}

struct SimpleText;

impl Tool for SimpleText {
    const NAME: &'static str = "test_simple_text";
    const DESCRIPTION: &'static str = "Returns a simple text response.";
    type Args = NoArgs;
    type Output = String;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<String, ToolError> {
        Ok("This is a simple text response for testing.".into())
    }
}

struct ImageContent;

impl Tool for ImageContent {
    const NAME: &'static str = "test_image_content";
    const DESCRIPTION: &'static str = "Returns an image (a 1x1 red PNG).";
    type Args = NoArgs;
    type Output = Value;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<Value, ToolError> {
        Ok(content(
            json!([{ "type": "image", "data": PNG, "mimeType": "image/png" }]),
        ))
    }
}

struct AudioContent;

impl Tool for AudioContent {
    const NAME: &'static str = "test_audio_content";
    const DESCRIPTION: &'static str = "Returns a short WAV sound.";
    type Args = NoArgs;
    type Output = Value;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<Value, ToolError> {
        Ok(content(
            json!([{ "type": "audio", "data": WAV, "mimeType": "audio/wav" }]),
        ))
    }
}

struct EmbeddedResource;

impl Tool for EmbeddedResource {
    const NAME: &'static str = "test_embedded_resource";
    const DESCRIPTION: &'static str = "Returns an embedded text resource.";
    type Args = NoArgs;
    type Output = Value;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<Value, ToolError> {
        Ok(content(json!([{
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content."
            }
        }])))
    }
}

struct MultipleContentTypes;

impl Tool for MultipleContentTypes {
    const NAME: &'static str = "test_multiple_content_types";
    const DESCRIPTION: &'static str = "Returns text, an image and a resource together.";
    type Args = NoArgs;
    type Output = Value;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<Value, ToolError> {
        Ok(content(json!([
            { "type": "text", "text": "Multiple content types test:" },
            { "type": "image", "data": PNG, "mimeType": "image/png" },
            {
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": "{\"test\":\"data\",\"value\":123}"
                }
            }
        ])))
    }
}

struct WithLogging;

impl Tool for WithLogging {
    const NAME: &'static str = "test_tool_with_logging";
    const DESCRIPTION: &'static str = "Logs three messages while it runs.";
    type Args = NoArgs;
    type Output = String;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<String, ToolError> {
        log::info("Tool execution started");
        std::thread::sleep(Duration::from_millis(50));
        log::info("Tool processing data");
        std::thread::sleep(Duration::from_millis(50));
        log::info("Tool execution completed");
        Ok("Tool with logging executed successfully".into())
    }
}

struct ErrorHandling;

impl Tool for ErrorHandling {
    const NAME: &'static str = "test_error_handling";
    const DESCRIPTION: &'static str = "Always fails, to show how a tool error looks.";
    type Args = NoArgs;
    type Output = String;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<String, ToolError> {
        Err(ToolError::failed(
            "This tool intentionally returns an error for testing",
        ))
    }
}

struct WithProgress;

impl Tool for WithProgress {
    const NAME: &'static str = "test_tool_with_progress";
    const DESCRIPTION: &'static str = "Reports progress 0, 50 and 100 of 100 while it runs.";
    type Args = NoArgs;
    type Output = String;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<String, ToolError> {
        for (step, fraction) in [(0, 0.0), (50, 0.5), (100, 1.0)] {
            progress::report_fraction(format!("Completed step {step} of 100"), fraction);
            if step < 100 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok("Progress reported".into())
    }
}

struct JsonSchema202012;

impl Tool for JsonSchema202012 {
    const NAME: &'static str = "json_schema_2020_12_tool";
    const DESCRIPTION: &'static str =
        "Tool with JSON Schema 2020-12 features for conformance testing (SEP-1613)";
    type Args = Value;
    type Output = Value;

    fn call(_ctx: &Context, args: Value) -> Result<Value, ToolError> {
        Ok(json!({ "received": args }))
    }

    fn input_schema() -> String {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {
                        "street": { "type": "string" },
                        "city": { "type": "string" }
                    }
                }
            },
            "properties": {
                "name": { "type": "string" },
                "address": { "$ref": "#/$defs/address" },
                "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                "phone": { "type": "string" },
                "email": { "type": "string" }
            },
            "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
            "if": {
                "properties": { "contactMethod": { "const": "phone" } },
                "required": ["contactMethod"]
            },
            "then": { "required": ["phone"] },
            "else": { "required": ["email"] },
            "additionalProperties": false
        })
        .to_string()
    }
}

/// How long the fixtures wait for the client's answers.
const ASK_TIMEOUT: Duration = Duration::from_secs(30);

/// `action=..., content=...` of an elicitation's outcome.
fn outcome(answer: Result<Value, AskError>) -> Result<String, ToolError> {
    match answer {
        Ok(content) => Ok(format!("action=accept, content={content}")),
        Err(AskError::Declined) => Ok("action=decline".into()),
        Err(AskError::Cancelled) => Ok("action=cancel".into()),
        Err(other) => Err(other.into()),
    }
}

/// Arguments of `test_sampling`.
#[derive(Deserialize, JsonSchema)]
struct SamplingArgs {
    /// The prompt to send to the LLM.
    prompt: String,
}

struct Sampling;

impl Tool for Sampling {
    const NAME: &'static str = "test_sampling";
    const DESCRIPTION: &'static str =
        "Asks the client's language model (sampling/createMessage) to answer the prompt.";
    type Args = SamplingArgs;
    type Output = String;

    fn call(_ctx: &Context, args: SamplingArgs) -> Result<String, ToolError> {
        let messages = [Message {
            role: Role::User,
            content: args.prompt,
        }];
        let text = interaction::sample(&messages, 100, ASK_TIMEOUT)?;
        Ok(format!("LLM response: {text}"))
    }
}

/// Arguments of `test_elicitation`.
#[derive(Deserialize, JsonSchema)]
struct ElicitationArgs {
    /// The message to show the user.
    message: String,
}

struct Elicitation;

impl Tool for Elicitation {
    const NAME: &'static str = "test_elicitation";
    const DESCRIPTION: &'static str =
        "Asks the client's user (elicitation/create) for a username and an email address.";
    type Args = ElicitationArgs;
    type Output = String;

    fn call(_ctx: &Context, args: ElicitationArgs) -> Result<String, ToolError> {
        let schema = json!({
            "type": "object",
            "properties": {
                "username": { "type": "string", "description": "User's response" },
                "email": { "type": "string", "description": "User's email address" }
            },
            "required": ["username", "email"]
        });
        let answer = interaction::ask(&args.message, &schema, ASK_TIMEOUT);
        Ok(format!("User response: {}", outcome(answer)?))
    }
}

struct ElicitationDefaults;

impl Tool for ElicitationDefaults {
    const NAME: &'static str = "test_elicitation_sep1034_defaults";
    const DESCRIPTION: &'static str =
        "Asks the client's user for a form whose every field has a default (SEP-1034).";
    type Args = NoArgs;
    type Output = String;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<String, ToolError> {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": { "type": "string", "default": "John Doe" },
                "age": { "type": "integer", "default": 30 },
                "score": { "type": "number", "default": 95.5 },
                "status": {
                    "type": "string",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active"
                },
                "verified": { "type": "boolean", "default": true }
            }
        });
        let answer = interaction::ask("Please review your profile", &schema, ASK_TIMEOUT);
        Ok(format!("Elicitation completed: {}", outcome(answer)?))
    }
}

struct ElicitationEnums;

impl Tool for ElicitationEnums {
    const NAME: &'static str = "test_elicitation_sep1330_enums";
    const DESCRIPTION: &'static str =
        "Asks the client's user for a form with the five kinds of enum (SEP-1330).";
    type Args = NoArgs;
    type Output = String;

    fn call(_ctx: &Context, _args: NoArgs) -> Result<String, ToolError> {
        let schema = json!({
            "type": "object",
            "properties": {
                "untitledSingle": {
                    "type": "string",
                    "enum": ["option1", "option2", "option3"]
                },
                "titledSingle": {
                    "type": "string",
                    "oneOf": [
                        { "const": "value1", "title": "First Option" },
                        { "const": "value2", "title": "Second Option" },
                        { "const": "value3", "title": "Third Option" }
                    ]
                },
                "legacyEnum": {
                    "type": "string",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"]
                },
                "untitledMulti": {
                    "type": "array",
                    "items": { "type": "string", "enum": ["option1", "option2", "option3"] }
                },
                "titledMulti": {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            { "const": "value1", "title": "First Choice" },
                            { "const": "value2", "title": "Second Choice" },
                            { "const": "value3", "title": "Third Choice" }
                        ]
                    }
                }
            }
        });
        let answer = interaction::ask("Choose your options", &schema, ASK_TIMEOUT);
        Ok(format!("Elicitation completed: {}", outcome(answer)?))
    }
}

netra_sdk::export_tools!(
    SimpleText,
    ImageContent,
    AudioContent,
    EmbeddedResource,
    MultipleContentTypes,
    WithLogging,
    ErrorHandling,
    WithProgress,
    JsonSchema202012,
    Sampling,
    Elicitation,
    ElicitationDefaults,
    ElicitationEnums,
);
