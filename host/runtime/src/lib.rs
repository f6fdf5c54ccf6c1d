//! netra's WebAssembly runtime.
//!
//! One [`Runtime`] owns one `wasmtime::Engine` (pooling allocator, copy-on-write
//! memory images, epoch interruption, async support), a disk cache of compiled
//! components, and the linker with netra's host interfaces. Plugins are loaded
//! once into a [`ToolPlugin`] (a compiled component plus its `InstancePre`), and
//! every request gets a fresh `Store` and instance from it: nothing a guest keeps
//! in memory survives from one request to the next.
//!
//! The runtime knows nothing of WebSocket, HTTP or the wire protocol: it takes
//! bytes and JSON strings and returns typed results and errors.

mod agent;
mod allowlist;
mod bindings;
mod cache;
mod config;
mod cpu;
mod deadline;
mod engine;
mod error;
mod host;
mod http;
mod kv;
#[cfg(test)]
mod layers;
mod load;
mod preinit;
pub mod rate;
mod settings;
mod stdio;
mod store;
mod tool;

pub use agent::AgentPlugin;
pub use bindings::{
    AgentDescriptor, AgentError, AskError, Message, Role, RunContext, ToolDescriptor, ToolError,
};
/// The `llm` interface's types, as agents send and receive them.
pub mod llm {
    pub use crate::bindings::llm::{
        ChatMessage, ChatRequest, ChatResponse, LlmError, ToolCall, Usage,
    };
}
pub use cache::CacheOutcome;
pub use config::{Limits, RuntimeConfig};
pub use engine::Runtime;
pub use error::{InvokeError, LoadError, agent_error_message, tool_error_message};
pub use host::{
    AgentHost, AskFuture, CallObserver, ChatFuture, Interaction, LogLevel, Question, SampleRequest,
    SettleFuture, ToolCallFuture,
};
pub use kv::{KvError, KvScope, KvStore, KvUsage, MemoryKv};
pub use load::{Plugin, PluginInfo};
pub use settings::{DirGrant, MemoryInit, PluginSettings, Sandbox, World, capability_gaps};
pub use tool::{ToolInstance, ToolPlugin};
