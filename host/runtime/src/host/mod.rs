//! Host implementations of netra's WIT interfaces, one file per interface.
//! Each method is a few lines that forward to plain Rust: for an agent, to the
//! [`AgentHost`] the run is connected to.

mod config;
mod events;
mod interaction;
mod kv;
mod llm;
mod log;
mod progress;
mod tools;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::bindings::interaction::AskError;
use crate::bindings::llm::{ChatRequest, ChatResponse, LlmError};
use crate::bindings::{Message, ToolDescriptor, ToolError};
use crate::deadline::Deadline;
use crate::settings::PluginShared;

/// The netra-specific part of a store: who the request is for and which
/// plugin is running.
pub(crate) struct GuestCtx {
    pub(crate) plugin: Arc<PluginShared>,
    /// The authenticated user the request belongs to; scopes kv.
    pub(crate) user_id: String,
    /// For an agent run: where its events go and how it calls tools.
    pub(crate) agent: Option<Arc<dyn AgentHost>>,
    /// Who follows this call's log lines and progress reports, if anyone
    /// (an MCP client); set per call with [`ToolInstance::observe`](crate::ToolInstance::observe).
    pub(crate) observer: Option<Arc<dyn CallObserver>>,
    /// Who answers this call's questions (`interaction`), if anyone (an MCP
    /// client); set per call with [`ToolInstance::interact`](crate::ToolInstance::interact).
    pub(crate) interaction: Option<Arc<dyn Interaction>>,
    /// When the current call must stop; questions stop its clock.
    pub(crate) deadline: Deadline,
}

/// How important a guest's log line is (the WIT `log.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed diagnostics.
    Trace,
    /// Diagnostics for developers.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something failed.
    Error,
}

/// Follows one call as it runs: the guest's `log` lines (besides the
/// host's tracing, where they always go) and its `progress` reports. Called
/// on the guest's thread: implementations queue and return at once.
pub trait CallObserver: Send + Sync + 'static {
    /// The guest logged `message` (already truncated by the host).
    fn log(&self, level: LogLevel, message: &str);
    /// The guest reported progress; `fraction` is within 0.0..=1.0 when set.
    fn progress(&self, text: &str, fraction: Option<f32>);
}

/// A question a plugin asks (`interaction.ask`), checked by the host: the
/// prompt is not empty and the schema, when there is one, is JSON.
#[derive(Clone, Debug)]
pub struct Question {
    /// What the user is asked.
    pub prompt: String,
    /// The JSON Schema of the answer; `None` asks for free text.
    pub schema: Option<serde_json::Value>,
    /// How long the runtime waits for the answer (the plugin's timeout and
    /// `ask_wait`, whichever is shorter).
    pub wait: std::time::Duration,
}

/// A request for the client's model (`interaction.sample`).
#[derive(Clone, Debug)]
pub struct SampleRequest {
    /// The conversation to continue, oldest first.
    pub messages: Vec<Message>,
    /// The most tokens the answer may have.
    pub max_tokens: u32,
}

/// What [`Interaction`] returns.
pub type AskFuture<T> = Pin<Box<dyn Future<Output = Result<T, AskError>> + Send>>;

/// Answers one call's questions: whoever the call is made for (an MCP
/// client: its user through elicitation, its model through sampling). The
/// runtime bounds the wait (the plugin's timeout, `ask_wait`) and stops the
/// call's deadline while it lasts; dropping the future withdraws the
/// question.
pub trait Interaction: Send + Sync + 'static {
    /// Asks the user; the answer is JSON matching the question's schema.
    fn ask(self: Arc<Self>, question: Question) -> AskFuture<serde_json::Value>;
    /// Asks the client's model; the answer is its text.
    fn sample(self: Arc<Self>, request: SampleRequest) -> AskFuture<String>;
}

/// A boxed tool-call future, so [`AgentHost`] stays object safe.
pub type ToolCallFuture = Pin<Box<dyn Future<Output = Result<String, ToolError>> + Send>>;

/// What an agent run is connected to: the run's event stream and its tools.
/// The runtime calls it from the agent's imports; it knows nothing of how
/// events travel or how tools are found.
pub trait AgentHost: Send + Sync + 'static {
    /// The agent reported a step of its reasoning.
    fn thinking(&self, text: String);
    /// The agent appended text to its answer.
    fn message_delta(&self, text: String);
    /// The tools this run may call.
    fn list_tools(&self) -> Vec<ToolDescriptor>;
    /// Calls a tool for this run.
    fn call_tool(self: Arc<Self>, name: String, arguments: String) -> ToolCallFuture;
    /// Waits until the run's earlier events are stored far enough that it
    /// may emit more: called after each event, so a run that floods the store
    /// is slowed, not the host's other runs. By default it does not wait.
    fn settle(self: Arc<Self>) -> SettleFuture {
        Box::pin(async {})
    }
    /// Runs one chat completion for this run with a model its grant allows;
    /// the host streams the tokens to the client while the guest waits. By
    /// default no model is granted.
    fn chat(self: Arc<Self>, request: ChatRequest) -> ChatFuture {
        let _ = request;
        Box::pin(async { Err(LlmError::Denied("no language model is granted".into())) })
    }
    /// Asks the run's user a question (`interaction.ask` of an agent whose
    /// call has no [`Interaction`] of its own). By default no one answers.
    fn ask(self: Arc<Self>, question: Question) -> AskFuture<serde_json::Value> {
        let _ = question;
        Box::pin(async {
            Err(AskError::Unsupported(
                "this run has no one to answer questions".into(),
            ))
        })
    }
}

/// What [`AgentHost::settle`] returns.
pub type SettleFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What [`AgentHost::chat`] returns.
pub type ChatFuture = Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send>>;
