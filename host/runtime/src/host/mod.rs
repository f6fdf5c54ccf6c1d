//! Host implementations of netra's WIT interfaces, one file per interface.
//! Each method is a few lines that forward to plain Rust.

mod config;
mod kv;
mod log;

use std::sync::Arc;

use wasmtime::component::{HasSelf, Linker};

use crate::bindings;
use crate::store::{PluginShared, StoreState};

/// The netra-specific part of a store: who the request is for and which
/// plugin is running.
pub(crate) struct GuestCtx {
    pub(crate) plugin: Arc<PluginShared>,
    /// The authenticated user the request belongs to; scopes kv.
    pub(crate) user_id: String,
}

/// Adds WASI and the tool world's imports to `linker`.
pub(crate) fn add_tool_world(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    bindings::log::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::config::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::kv::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    Ok(())
}
