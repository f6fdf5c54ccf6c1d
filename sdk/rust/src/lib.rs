//! The Rust SDK for netra plugins.
//!
//! A netra plugin is a WebAssembly component that exports either tools or an
//! agent (the `tool-plugin` and `agent-plugin` worlds of `wit/plugin.wit`). This
//! crate hides the component-model bindings: a tool is a type implementing
//! [`Tool`], an agent a type implementing [`Agent`], and one macro call exports
//! them.
//!
//! ```
//! use netra_sdk::{Context, Tool, ToolError};
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! /// Arguments of `shout`.
//! #[derive(Deserialize, JsonSchema)]
//! struct Args {
//!     /// The text to shout.
//!     text: String,
//! }
//!
//! struct Shout;
//!
//! impl Tool for Shout {
//!     const NAME: &'static str = "shout";
//!     const DESCRIPTION: &'static str = "Returns the text in upper case.";
//!     type Args = Args;
//!     type Output = String;
//!
//!     fn call(_ctx: &Context, args: Args) -> Result<String, ToolError> {
//!         Ok(args.text.to_uppercase())
//!     }
//! }
//!
//! netra_sdk::export_tools!(Shout);
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-wasip2`; the result is a component.
//!
//! The host functions a plugin may import are plain modules: [`log`],
//! [`config`], [`kv`], [`progress`], [`interaction`], and for agents
//! [`events`], [`tools`] and [`llm`]. A component imports only the host
//! functions it actually calls.

mod agent;
mod context;
mod convert;
mod error;
mod tool;

pub mod config;
pub mod events;
pub mod interaction;
pub mod kv;
pub mod llm;
pub mod log;
pub mod progress;
pub mod tools;

#[doc(hidden)]
pub mod __private;

// The bindings live under `__private` because the export macros map their
// modules into the plugin's crate; the SDK's own modules use them from here.
use __private::bindings;

pub use agent::Agent;
pub use context::{Context, Message, Role};
pub use error::{AgentError, ToolError};
pub use tool::{Tool, ToolDescriptor, schema_of};

/// Exports one or more [`Tool`]s as the component's `netra:plugin/tool` interface.
///
/// Call it once per plugin crate, at module level, with every tool the plugin
/// provides: `netra_sdk::export_tools!(Calculate, Convert);`. Tool names must be
/// valid (lowercase ASCII letters, digits, `_` and `-`, at most 64 characters) and
/// distinct; both are checked at compile time.
pub use netra_sdk_macros::export_tools;

/// Exports an [`Agent`] as the component's `netra:plugin/agent` interface.
///
/// Call it once per plugin crate, at module level: `netra_sdk::export_agent!(Helper);`.
pub use netra_sdk_macros::export_agent;

/// The JSON Schema library used for tool arguments; derive
/// [`JsonSchema`](schemars::JsonSchema) on a tool's `Args`.
pub use schemars;
/// The JSON library tools exchange values with.
pub use serde_json;
