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
mod engine;
mod error;
mod host;
mod http;
mod kv;
mod plugin;
mod preinit;
pub mod rate;
mod stdio;
mod store;

pub use agent::{AgentHost, AgentPlugin, ChatFuture, SettleFuture, ToolCallFuture};
pub use bindings::{
    AgentDescriptor, AgentError, Message, Role, RunContext, ToolDescriptor, ToolError,
};
/// The `llm` interface's types, as agents send and receive them.
pub mod llm {
    pub use crate::bindings::llm::{
        ChatMessage, ChatRequest, ChatResponse, LlmError, ToolCall, Usage,
    };
}
pub use cache::CacheOutcome;
pub use config::{Limits, RuntimeConfig};
pub use engine::{MemoryInit, Runtime};
pub use error::{InvokeError, LoadError, agent_error_message, tool_error_message};
pub use kv::{KvError, KvScope, KvStore, KvUsage, MemoryKv};
pub use plugin::{
    DirGrant, Plugin, PluginInfo, PluginSettings, Sandbox, ToolInstance, ToolPlugin, World,
    capability_gaps,
};
