//! The [`Runtime`]: its engines (one per [`MemoryInit`]), their epoch ticker,
//! the component cache, the linkers every plugin is instantiated through, the
//! CPU gate and guest threads, and the preparer thread. It knows plugins only
//! as components, `InstancePre`s and stores; `tool` and `agent` build on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use crate::bindings::{self, AGENT_EXPORT, TOOL_EXPORT};
use crate::cache::ComponentCache;
use crate::config::RuntimeConfig;
use crate::cpu::{CpuGate, GuestThreads};
use crate::error::LoadError;
use crate::host::{AgentHost, GuestCtx};
use crate::settings::{MemoryInit, PluginShared, World};
use crate::store::StoreState;

/// Work for the preparer thread: making a plugin's instances ahead of its
/// requests.
pub(crate) type PrepareJob = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Core instances a single component may create. Components made by
/// componentize-py and componentize-js have dozens of small core modules.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 128;
/// Linear memories a single component may create.
const MAX_MEMORIES_PER_COMPONENT: u32 = 8;
/// Tables a single component may create.
const MAX_TABLES_PER_COMPONENT: u32 = 64;

/// The WebAssembly runtime shared by the whole host. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

/// One engine and what is built on it.
pub(crate) struct Flavor {
    pub(crate) engine: Engine,
    pub(crate) tool_linker: Linker<StoreState>,
    pub(crate) agent_linker: Linker<StoreState>,
    pub(crate) cache: ComponentCache,
}

impl Flavor {
    fn new(config: &RuntimeConfig, memory: MemoryInit) -> Result<Self, LoadError> {
        let engine = build_engine(config, memory).map_err(|e| LoadError::Io(format!("{e:#}")))?;
        let mut tool_linker = Linker::new(&engine);
        add_tool_world(&mut tool_linker).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut agent_linker = Linker::new(&engine);
        add_agent_world(&mut agent_linker).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let cache = ComponentCache::new(&engine, config.cache_dir.clone())?;
        Ok(Self {
            engine,
            tool_linker,
            agent_linker,
            cache,
        })
    }
}

pub(crate) struct RuntimeInner {
    map: Flavor,
    copy: Flavor,
    /// Where tool plugins ask for prepared instances; `None` when none are
    /// kept.
    pub(crate) preparer: Option<tokio::sync::mpsc::UnboundedSender<PrepareJob>>,
    pub(crate) config: RuntimeConfig,
    pub(crate) compiled: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    /// The slots guests compute in, handed out to users in turn.
    pub(crate) cpu: Arc<CpuGate>,
    /// Where calls that compute for more than a tick go on.
    pub(crate) guests: GuestThreads,
    ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let map = Flavor::new(&config, MemoryInit::Map)?;
        let copy = Flavor::new(&config, MemoryInit::Copy)?;
        let slots = match config.guest_cpus {
            0 => CpuGate::default_slots(),
            n => n,
        };
        let cpu = CpuGate::new(slots, config.user_memory_growth);
        // A thread per slot, and one more for calls waiting their turn to
        // run their host calls on.
        let guests = GuestThreads::start(slots + 1)
            .map_err(|e| LoadError::Io(format!("cannot start the guest threads: {e}")))?;
        let ticker = EpochTicker::start(
            vec![map.engine.clone(), copy.engine.clone()],
            cpu.clone(),
            config.epoch_tick,
        )
        .map_err(|e| LoadError::Io(format!("cannot start the epoch ticker: {e}")))?;
        let preparer = if config.prepared_instances > 0 {
            Some(
                start_preparer()
                    .map_err(|e| LoadError::Io(format!("cannot start the preparer: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                map,
                copy,
                preparer,
                config,
                compiled: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                cpu,
                guests,
                ticker,
            }),
        })
    }

    /// The engine of `Map` plugins, for code that needs wasmtime directly
    /// (benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.inner.map.engine
    }

    /// The engine, linkers and cache of plugins with this memory strategy.
    pub(crate) fn flavor(&self, memory: MemoryInit) -> &Flavor {
        match memory {
            MemoryInit::Map => &self.inner.map,
            MemoryInit::Copy => &self.inner.copy,
        }
    }

    /// The settings this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// How many components this runtime has compiled (as opposed to loaded
    /// from the cache) since it started.
    pub fn compiled_count(&self) -> u64 {
        self.inner.compiled.load(Ordering::Relaxed)
    }

    /// How many components were loaded from the cache since it started.
    pub fn cache_hit_count(&self) -> u64 {
        self.inner.cache_hits.load(Ordering::Relaxed)
    }

    /// A fresh store for one request of the plugin `shared`, in its engine
    /// and with a seat at the CPU gate.
    pub(crate) fn new_store(
        &self,
        shared: &Arc<PluginShared>,
        user_id: &str,
        agent: Option<Arc<dyn AgentHost>>,
    ) -> Store<StoreState> {
        crate::store::new_store(
            &self.flavor(shared.memory).engine,
            self.inner.cpu.seat(),
            self.inner.config.fuel,
            shared,
            user_id,
            agent,
        )
    }

    /// Checks the component's world, links it against that world's linker
    /// and maps its memory images now rather than on the first request.
    pub(crate) fn prepare<P>(
        &self,
        component: &Component,
        world: World,
        memory: MemoryInit,
        typed: impl FnOnce(InstancePre<StoreState>) -> wasmtime::Result<P>,
    ) -> Result<P, LoadError> {
        self.expect_world(component, world)?;
        let flavor = self.flavor(memory);
        let linker = match world {
            World::Tool => &flavor.tool_linker,
            World::Agent => &flavor.agent_linker,
        };
        let pre = linker
            .instantiate_pre(component)
            .and_then(typed)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        component
            .initialize_copy_on_write_image()
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        Ok(pre)
    }

    /// Checks that `component` exports `world`'s interface.
    fn expect_world(&self, component: &Component, world: World) -> Result<(), LoadError> {
        let export = match world {
            World::Tool => TOOL_EXPORT,
            World::Agent => AGENT_EXPORT,
        };
        let exports = export_names(component);
        if exports.iter().any(|name| name == export) {
            return Ok(());
        }
        Err(LoadError::WrongWorld {
            expected: world.wit_name(),
            found: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        })
    }
}

/// The names a component exports.
pub(crate) fn export_names(component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(component.engine())
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Adds WASI (with wasi:http, which the plugin's `network` grant gates) and
/// the tool world's imports to `linker`.
fn add_tool_world(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    bindings::log::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::config::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::kv::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::progress::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::interaction::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    Ok(())
}

/// Adds WASI and the agent world's imports to `linker`.
fn add_agent_world(linker: &mut Linker<StoreState>) -> wasmtime::Result<()> {
    add_tool_world(linker)?;
    bindings::events::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::tools::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    bindings::llm::add_to_linker::<_, HasSelf<GuestCtx>>(linker, |s| &mut s.guest)?;
    Ok(())
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

/// Starts the thread that makes prepared instances. It has its own event loop
/// so that instantiating (milliseconds for a large `Copy` plugin) never runs
/// on a thread that is serving a request's call. It ends when the runtime is
/// dropped.
fn start_preparer() -> std::io::Result<tokio::sync::mpsc::UnboundedSender<PrepareJob>> {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<PrepareJob>();
    let events = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("netra-prepare".into())
        .spawn(move || {
            events.block_on(async move {
                while let Some(job) = receiver.recv().await {
                    job.await;
                }
            });
        })?;
    Ok(sender)
}

/// Bytes of each memory a `Copy` plugin keeps resident between instances, at
/// least: its image is copied into these pages at every instantiation, and
/// pages that stay mapped are not faulted in again.
const COPY_KEEP_RESIDENT: usize = 64 << 20;

fn build_engine(config: &RuntimeConfig, memory: MemoryInit) -> wasmtime::Result<Engine> {
    let keep_resident = match memory {
        MemoryInit::Map => config.memory_keep_resident,
        MemoryInit::Copy => config.memory_keep_resident.max(COPY_KEEP_RESIDENT),
    };
    let instances = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(8))
        .total_memories(instances.saturating_mul(2))
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_memory_size(config.max_memory_bytes)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(config.memory_keep_resident)
        // On Linux 6.7+ reset only the pages a request dirtied, and keep them
        // resident so the next request does not fault them in again.
        .pagemap_scan(Enabled::Auto);

    let mut wasm = wasmtime::Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(memory == MemoryInit::Map)
        .consume_fuel(config.fuel)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// A thread that advances the engines' epochs every tick, which is what makes
/// deadlines fire and running guests yield, and takes unrenewed CPU slots
/// back (see `cpu`).
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(
        engines: Vec<Engine>,
        cpu: Arc<CpuGate>,
        tick: std::time::Duration,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("netra-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    // Before the epoch moves, so leases renewed at this tick
                    // count from it.
                    cpu.sweep();
                    for engine in &engines {
                        engine.increment_epoch();
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
