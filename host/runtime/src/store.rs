//! One request's `Store`: what it holds, how it is made (deny-by-default WASI,
//! the deadline and CPU-share epoch callback), the limiter that records why a
//! memory or table could not grow, and how a failed call is classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::{
    Engine, PoolConcurrencyLimitError, ResourceLimiter, Store, StoreLimits, StoreLimitsBuilder,
    Trap, UpdateDeadline,
};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::config::Limits;
use crate::cpu::{AtTick, CpuSeat};
use crate::deadline::Deadline;
use crate::error::InvokeError;
use crate::host::{AgentHost, GuestCtx};
use crate::http::OutgoingHttp;
use crate::settings::PluginShared;
use crate::stdio::{GuestOutput, LogRate, Stream};

/// `describe` must answer within this time at load.
pub(crate) const DESCRIBE_DEADLINE: Duration = Duration::from_secs(5);

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
    /// Holds the current call's [`Deadline`], checked on every epoch tick.
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
        self.http_hooks.deadline = self.guest.deadline.at();
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

/// The error a store's epoch callback raises when the call's deadline passed.
#[derive(Debug)]
struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline exceeded")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// A fresh store for one request of the plugin `shared`.
pub(crate) fn new_store(
    engine: &Engine,
    cpu: CpuSeat,
    fuel: bool,
    shared: &Arc<PluginShared>,
    user_id: &str,
    agent: Option<Arc<dyn AgentHost>>,
) -> Store<StoreState> {
    let rate = LogRate::new(
        shared.name.clone(),
        shared.limits.log_lines_per_second,
        shared.limits.log_bytes_per_second,
    );
    let stderr = GuestOutput::new(shared.name.clone(), Stream::Stderr, rate.clone());
    // Deny by default: no sockets, no arguments, empty stdin, and only the
    // environment and directories the plugin's grant lists. HTTP goes through
    // wasi:http, whose hooks check each request against the network grant.
    let mut wasi = WasiCtx::builder();
    wasi.stdout(GuestOutput::new(shared.name.clone(), Stream::Stdout, rate))
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    for (name, value) in &shared.sandbox.env {
        wasi.env(name, value);
    }
    for dir in &shared.sandbox.dirs {
        let perms = if dir.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        if let Err(err) = wasi.preopened_dir(&dir.host, &dir.guest, perms) {
            // Checked at load; gone since. The plugin then sees less, never more.
            tracing::error!(plugin = %shared.name, dir = %dir.host.display(), "cannot open a granted directory: {err}");
        }
    }
    let wasi = wasi.build();
    let deadline = Deadline::new(Instant::now() + shared.limits.deadline);
    let state = StoreState {
        wasi,
        http: WasiHttpCtx::new(),
        http_hooks: OutgoingHttp {
            plugin: shared.clone(),
            deadline: deadline.at(),
        },
        table: ResourceTable::new(),
        limiter: Limiter::new(&shared.limits),
        guest: GuestCtx {
            plugin: shared.clone(),
            user_id: user_id.to_string(),
            agent,
            observer: None,
            interaction: None,
            deadline,
        },
        stderr,
        cpu,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut store| {
        let state = store.data_mut();
        if state.guest.deadline.passed() {
            return Err(wasmtime::Error::new(DeadlineExceeded));
        }
        let grown = std::mem::take(&mut state.limiter.grown);
        // Let other tasks on this thread run, then keep going: at once if
        // the guest holds or gets a CPU slot, else when its user's turn comes
        // (and their memory growth is within its rate).
        Ok(match state.cpu.tick(&state.guest.user_id, grown) {
            AtTick::Go => UpdateDeadline::Yield(1),
            AtTick::Grace => UpdateDeadline::Continue(1),
            AtTick::Wait(turn) => UpdateDeadline::YieldCustom(1, turn),
        })
    });
    if fuel {
        // With metering on, a plugin without a fuel limit gets all it wants.
        let _ = store.set_fuel(shared.limits.fuel.unwrap_or(u64::MAX));
    }
    store
}

/// Turns a failed instantiation into an [`InvokeError`].
pub(crate) fn instantiate_error(
    store: &Store<StoreState>,
    err: wasmtime::Error,
    deadline: Duration,
) -> InvokeError {
    if err.is::<PoolConcurrencyLimitError>() {
        return InvokeError::Capacity(format!("{err}"));
    }
    match classify(store, err, deadline) {
        InvokeError::Trap { trap, message } if trap == "host error" => {
            InvokeError::Instantiate(message)
        }
        other => other,
    }
}

/// Turns a failed call into the most precise [`InvokeError`].
pub(crate) fn classify(
    store: &Store<StoreState>,
    err: wasmtime::Error,
    deadline: Duration,
) -> InvokeError {
    let state = store.data();
    if err.is::<DeadlineExceeded>() {
        return InvokeError::Timeout(deadline);
    }
    if state.limiter.memory_refused {
        return InvokeError::OutOfMemory {
            limit: state.limiter.memory_limit,
        };
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => InvokeError::StackOverflow,
        Some(Trap::OutOfFuel) => InvokeError::OutOfFuel,
        Some(Trap::Interrupt) => InvokeError::Timeout(deadline),
        Some(trap) => InvokeError::Trap {
            trap: trap.to_string(),
            message: state.stderr.tail(),
        },
        None => InvokeError::Trap {
            trap: "host error".into(),
            message: format!("{err:#}"),
        },
    }
}
