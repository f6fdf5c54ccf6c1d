//! The [`Runtime`]: its engines (one per [`MemoryInit`]), their epoch ticker,
//! the component cache and the linkers every plugin is instantiated through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::Linker;
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ComponentCache;
use crate::config::RuntimeConfig;
use crate::cpu::{CpuGate, GuestThreads};
use crate::error::LoadError;
use crate::host;
use crate::store::StoreState;

/// Core instances a single component may create. Components made by
/// componentize-py and componentize-js have dozens of small core modules.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 128;
/// Linear memories a single component may create.
const MAX_MEMORIES_PER_COMPONENT: u32 = 8;
/// Tables a single component may create.
const MAX_TABLES_PER_COMPONENT: u32 = 64;

/// How a plugin's fresh instances get their initial linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryInit {
    /// Map the component's memory image copy-on-write: instantiation is
    /// nearly free and a call pays one page fault per page it first writes.
    /// Best for components whose calls write few pages (Rust, JavaScript).
    Map,
    /// Copy the memory image into the instance's own memory when it is
    /// created: instantiation costs a copy of the image (done ahead of the
    /// request when instances are prepared) and calls then fault nothing.
    /// Best for runtimes whose every call writes across the heap (CPython's
    /// reference counts).
    Copy,
}

impl MemoryInit {
    /// The default for a component: `Copy` for components that embed
    /// CPython (componentize-py's), `Map` for everything else.
    pub fn for_component(wasm: &[u8]) -> Self {
        if crate::preinit::embeds_cpython(wasm) {
            MemoryInit::Copy
        } else {
            MemoryInit::Map
        }
    }
}

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
        host::add_tool_world(&mut tool_linker).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut agent_linker = Linker::new(&engine);
        host::add_agent_world(&mut agent_linker).map_err(|e| LoadError::Link(format!("{e:#}")))?;
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
    pub(crate) preparer: Option<tokio::sync::mpsc::UnboundedSender<crate::ToolPlugin>>,
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
fn start_preparer() -> std::io::Result<tokio::sync::mpsc::UnboundedSender<crate::ToolPlugin>> {
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<crate::ToolPlugin>();
    let events = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    std::thread::Builder::new()
        .name("netra-prepare".into())
        .spawn(move || {
            events.block_on(async move {
                while let Some(plugin) = receiver.recv().await {
                    plugin.prepare_now().await;
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
