//! The [`Runtime`]: one engine, its epoch ticker, the component cache and the
//! linker every plugin is instantiated through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use wasmtime::component::Linker;
use wasmtime::{Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::cache::ComponentCache;
use crate::config::RuntimeConfig;
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

/// The WebAssembly runtime shared by the whole host. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    pub(crate) tool_linker: Linker<StoreState>,
    pub(crate) agent_linker: Linker<StoreState>,
    pub(crate) cache: ComponentCache,
    pub(crate) config: RuntimeConfig,
    pub(crate) compiled: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = build_engine(&config).map_err(|e| LoadError::Io(format!("{e:#}")))?;
        let mut tool_linker = Linker::new(&engine);
        host::add_tool_world(&mut tool_linker).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let mut agent_linker = Linker::new(&engine);
        host::add_agent_world(&mut agent_linker).map_err(|e| LoadError::Link(format!("{e:#}")))?;
        let cache = ComponentCache::new(&engine, config.cache_dir.clone())?;
        let ticker = EpochTicker::start(engine.clone(), config.epoch_tick)
            .map_err(|e| LoadError::Io(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                tool_linker,
                agent_linker,
                cache,
                config,
                compiled: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
                ticker,
            }),
        })
    }

    /// The engine, for code that needs wasmtime directly (benchmarks).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
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

fn build_engine(config: &RuntimeConfig) -> wasmtime::Result<Engine> {
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
        .linear_memory_keep_resident(config.memory_keep_resident)
        .table_keep_resident(config.memory_keep_resident)
        // On Linux 6.7+ reset only the pages a request dirtied, and keep them
        // resident so the next request does not fault them in again.
        .pagemap_scan(Enabled::Auto);

    let mut wasm = wasmtime::Config::new();
    wasm.wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .consume_fuel(config.fuel)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// A thread that advances the engine's epoch every tick, which is what makes
/// deadlines fire and running guests yield.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine, tick: std::time::Duration) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("netra-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
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
