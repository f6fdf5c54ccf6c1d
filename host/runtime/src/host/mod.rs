//! Host implementations of netra's WIT interfaces, one file per interface.
//! Each method is a few lines that forward to plain Rust.

mod config;
mod events;
mod kv;
mod llm;
mod log;
mod tools;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::agent::AgentHost;
use crate::bindings;
use crate::store::{PluginShared, StoreState};

/// The netra-specific part of a store: who the request is for and which
/// plugin is running.
pub(crate) struct GuestCtx {
    pub(crate) plugin: Arc<PluginShared>,
    /// The authenticated user the request belongs to; scopes kv.
    pub(crate) user_id: String,
    /// For an agent run: where its events go and how it calls tools.
    pub(crate) agent: Option<Arc<dyn AgentHost>>,
}

/// Adds WASI (with wasi:http, which the plugin's `network` grant gates) and
/// the tool world's imports to `linker`.
pub(crate) fn add_tool_world(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    bindings::log::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::config::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::kv::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    Ok(())
}

/// Adds WASI and the agent world's imports to `linker`.
pub(crate) fn add_agent_world(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    add_tool_world(linker)?;
    bindings::events::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::tools::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::llm::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    Ok(())
}
