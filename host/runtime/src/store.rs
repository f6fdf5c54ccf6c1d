//! What one request's `Store` holds, and the limiter that records why a memory
//! or table could not grow.

use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::allowlist::Allowlist;
use crate::config::Limits;
use crate::cpu::CpuSeat;
use crate::host::GuestCtx;
use crate::http::OutgoingHttp;
use crate::stdio::GuestOutput;

/// The data of one request's store. Created fresh for every request and
/// dropped with it; nothing in it is shared with another request except
/// read-only plugin settings and the scoped kv backend.
pub(crate) struct StoreState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    /// Where outgoing requests are checked against the plugin's grant.
    pub(crate) http_hooks: OutgoingHttp,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    /// When the current call must stop; checked on every epoch tick.
    pub(crate) deadline: Instant,
    pub(crate) guest: GuestCtx,
    pub(crate) stderr: GuestOutput,
    /// The store's share of the CPU: a slot while it computes.
    pub(crate) cpu: CpuSeat,
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // The deadline moves with every call; requests are bounded by the
        // current one.
        self.http_hooks.deadline = self.deadline;
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

/// `StoreLimits` plus a record of which limit refused a growth, so a failure
/// can be reported as "out of memory" rather than as the trap it causes.
pub(crate) struct Limiter {
    limits: StoreLimits,
    pub(crate) memory_limit: usize,
    pub(crate) memory_refused: bool,
    pub(crate) table_refused: bool,
    /// Bytes the memories grew by since the last epoch tick took them (to
    /// charge the user, see `cpu`); instantiation's sizes are not counted.
    pub(crate) grown: u64,
}

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            limits: StoreLimitsBuilder::new()
                .memory_size(limits.memory_bytes)
                .instances(limits.instances)
                .tables(limits.tables)
                .memories(limits.instances)
                .table_elements(limits.table_elements)
                .build(),
            memory_limit: limits.memory_bytes,
            memory_refused: false,
            table_refused: false,
            grown: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        self.memory_refused |= !allowed;
        if allowed && current > 0 {
            self.grown += desired.saturating_sub(current) as u64;
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.table_growing(current, desired, maximum)?;
        self.table_refused |= !allowed;
        Ok(allowed)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// Plugin-wide, read-only facts every store of a plugin points at.
pub(crate) struct PluginShared {
    pub(crate) name: Arc<str>,
    /// Which engine its stores are made in.
    pub(crate) memory: crate::engine::MemoryInit,
    pub(crate) limits: Limits,
    pub(crate) config: std::collections::BTreeMap<String, String>,
    pub(crate) kv: Option<Arc<dyn crate::kv::KvStore>>,
    pub(crate) sandbox: crate::plugin::Sandbox,
    /// `sandbox.network`, parsed.
    pub(crate) network: Allowlist,
    /// What its imports ask for that its grant does not give.
    pub(crate) gaps: Vec<String>,
}
