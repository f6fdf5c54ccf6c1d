//! Loading plugins and calling them, each request in a fresh instance.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{PoolConcurrencyLimitError, Store, Trap, UpdateDeadline};
use wasmtime_wasi::{FsPerms, WasiCtx};
use wasmtime_wasi_http::WasiHttpCtx;

use crate::agent::AgentHost;
use crate::allowlist::Allowlist;
use crate::bindings::{
    AGENT_EXPORT, RunContext, TOOL_EXPORT, ToolDescriptor, ToolError, ToolPluginPre,
};
use crate::cache::CacheOutcome;
use crate::config::Limits;
use crate::cpu::AtTick;
use crate::engine::{MemoryInit, Runtime};
use crate::error::{InvokeError, LoadError};
use crate::host::GuestCtx;
use crate::http::OutgoingHttp;
use crate::kv::KvStore;
use crate::stdio::{GuestOutput, LogRate, Stream};
use crate::store::{Limiter, PluginShared, StoreState};

/// The generated per-instance bindings of the tool world.
type ToolBindings = crate::bindings::generated_tool::ToolPlugin;

/// `describe` must answer within this time at load.
pub(crate) const DESCRIBE_DEADLINE: Duration = Duration::from_secs(5);
/// Longest tool name.
const MAX_TOOL_NAME: usize = 64;

/// Which world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum World {
    /// `netra:plugin/tool-plugin`.
    Tool,
    /// `netra:plugin/agent-plugin`.
    Agent,
}

impl World {
    /// The world's WIT name.
    pub fn wit_name(self) -> &'static str {
        match self {
            World::Tool => "netra:plugin/tool-plugin@0.1.0",
            World::Agent => "netra:plugin/agent-plugin@0.1.0",
        }
    }
}

/// What the operator decided for one plugin.
#[derive(Clone)]
pub struct PluginSettings {
    /// The plugin's name (used in logs and to scope kv).
    pub name: String,
    /// Limits of each of its stores; `None` uses the runtime's defaults.
    pub limits: Option<Limits>,
    /// Values the plugin reads through the `config` interface.
    pub config: BTreeMap<String, String>,
    /// Its key-value backend; `None` means kv is not granted.
    pub kv: Option<Arc<dyn KvStore>>,
    /// What it may see of the host through WASI: nothing by default.
    pub sandbox: Sandbox,
    /// How its instances get their memory; `None` picks by the component
    /// ([`MemoryInit::for_component`]).
    pub memory_init: Option<MemoryInit>,
}

impl PluginSettings {
    /// Settings with nothing granted and default limits.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            limits: None,
            config: BTreeMap::new(),
            kv: None,
            sandbox: Sandbox::default(),
            memory_init: None,
        }
    }
}

/// The part of the host a plugin may see through WASI. The default is
/// nothing: no environment, no directories, no network (and never sockets).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Environment variables it sees, with their values.
    pub env: Vec<(String, String)>,
    /// Directories it sees.
    pub dirs: Vec<DirGrant>,
    /// Hosts it may send HTTP requests to (wasi:http): `api.example.com`
    /// (that name, any port), `*.example.com` (any name under it, not the
    /// name itself), `127.0.0.1:8081` or `[::1]:8080` (that port only).
    /// Requests to any other host fail with `HTTP-request-denied`.
    pub network: Vec<String>,
}

/// A host directory a plugin sees at a path of its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    /// The directory on the host.
    pub host: std::path::PathBuf,
    /// Where the plugin sees it (an absolute path).
    pub guest: String,
    /// Whether it may create, change and delete files in it (else read-only).
    pub writable: bool,
}

impl Sandbox {
    /// Checks that every granted directory exists and is a directory, and
    /// parses the network grant.
    pub(crate) fn check(&self) -> Result<Allowlist, LoadError> {
        for dir in &self.dirs {
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    return Err(LoadError::Io(format!(
                        "granted directory {} is not a directory",
                        dir.host.display()
                    )));
                }
                Err(err) => {
                    return Err(LoadError::Io(format!(
                        "granted directory {}: {err}",
                        dir.host.display()
                    )));
                }
            }
        }
        Allowlist::parse(&self.network).map_err(LoadError::Io)
    }
}

/// A loaded plugin of either world.
#[derive(Clone)]
pub enum Plugin {
    /// A tool plugin.
    Tool(ToolPlugin),
    /// An agent plugin.
    Agent(crate::agent::AgentPlugin),
}

/// What `inspect` learns about a component.
#[derive(Clone, Debug)]
pub struct PluginInfo {
    /// The world it implements, if any.
    pub world: Option<World>,
    /// Its imported interfaces.
    pub imports: Vec<String>,
    /// Its exported interfaces.
    pub exports: Vec<String>,
    /// For a tool plugin, its tools.
    pub tools: Vec<ToolDescriptor>,
    /// For an agent plugin, what it says it is.
    pub agent: Option<crate::bindings::AgentDescriptor>,
    /// The SHA-256 of its bytes.
    pub digest: String,
}

/// A loaded tool plugin: compiled, linked, described. Cheap to clone.
#[derive(Clone)]
pub struct ToolPlugin {
    inner: Arc<ToolPluginInner>,
}

struct ToolPluginInner {
    runtime: Runtime,
    shared: Arc<PluginShared>,
    pre: ToolPluginPre<StoreState>,
    tools: Vec<ToolDescriptor>,
    digest: String,
    cache: CacheOutcome,
    /// Fresh instances made ahead of requests, each for one request only.
    prepared: Mutex<Vec<Prepared>>,
    /// Whether the preparer thread has been asked to refill.
    preparing: AtomicBool,
    /// Callers of [`ToolPlugin::prepare`] waiting for the refill.
    waiters: Mutex<Vec<tokio::sync::oneshot::Sender<()>>>,
}

/// An instance no request has used, with nothing of any user in it.
struct Prepared {
    store: Store<StoreState>,
    bindings: ToolBindings,
}

/// Awaits a guest call until `deadline`, whatever the guest waits on. The
/// epoch callback stops a guest that computes past its deadline; a guest
/// blocked in the host (a WASI sleep or poll, an HTTP request or body, a tool
/// call, `llm.chat`, a nested run) never reaches an epoch check, so its call
/// is dropped here instead, and with it whatever it waits on. `None` means
/// the deadline passed; the store must not be called again.
pub(crate) async fn until<T>(
    deadline: Instant,
    call: impl std::future::Future<Output = T>,
) -> Option<T> {
    tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), call)
        .await
        .ok()
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

impl Runtime {
    /// Compiles (or loads from the cache) a component for `memory`'s
    /// engine, off the async threads. With `preinitialize` on, what is
    /// compiled is the component's snapshot after its warm-up calls (see
    /// `preinit`) when one can be made. The digest is the original's.
    pub(crate) async fn compile(
        &self,
        wasm: Arc<[u8]>,
        memory: MemoryInit,
    ) -> Result<(Component, CacheOutcome, String), LoadError> {
        let (component, outcome, digest) = self.compile_uncounted(wasm, memory).await?;
        let counter = match outcome {
            CacheOutcome::Hit => &self.inner.cache_hits,
            CacheOutcome::Compiled => &self.inner.compiled,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Ok((component, outcome, digest))
    }

    async fn compile_uncounted(
        &self,
        wasm: Arc<[u8]>,
        memory: MemoryInit,
    ) -> Result<(Component, CacheOutcome, String), LoadError> {
        let digest = {
            let wasm = wasm.clone();
            tokio::task::spawn_blocking(move || crate::cache::digest(&wasm))
                .await
                .map_err(|e| LoadError::Io(format!("compile task failed: {e}")))?
        };
        if self.inner.config.preinitialize {
            let name = format!("{digest}-{}", crate::preinit::SNAPSHOT_KEY);
            let runtime = self.clone();
            let key = name.clone();
            let cached = tokio::task::spawn_blocking(move || {
                let flavor = runtime.flavor(memory);
                flavor.cache.lookup(&flavor.engine, &key)
            })
            .await
            .map_err(|e| LoadError::Io(format!("compile task failed: {e}")))?;
            if let Some(component) = cached {
                return Ok((component, CacheOutcome::Hit, digest));
            }
            let cache = &self.flavor(memory).cache;
            if !cache.marked(&name) {
                match crate::preinit::snapshot(self, wasm.clone(), memory).await {
                    Ok(component) => {
                        cache.put(&component, &name);
                        return Ok((component, CacheOutcome::Compiled, digest));
                    }
                    Err(crate::preinit::NoSnapshot::Unsupported(why)) => {
                        tracing::warn!(digest = %&digest[..12], "no pre-initialized snapshot: {why}");
                        cache.mark(&name);
                    }
                    Err(crate::preinit::NoSnapshot::Busy(why)) => {
                        // Not remembered: the next load tries again.
                        tracing::warn!(digest = %&digest[..12], "no pre-initialized snapshot this time: {why}");
                    }
                }
            }
        }
        let runtime = self.clone();
        let key = digest.clone();
        let (component, outcome) = tokio::task::spawn_blocking(move || {
            let flavor = runtime.flavor(memory);
            flavor.cache.load(&flavor.engine, &wasm, &key)
        })
        .await
        .map_err(|e| LoadError::Io(format!("compile task failed: {e}")))??;
        Ok((component, outcome, digest))
    }

    /// Compiles a plugin's component for its memory strategy (its settings',
    /// or the component's default, which the returned settings then name).
    pub(crate) async fn compile_plugin(
        &self,
        wasm: Arc<[u8]>,
        settings: PluginSettings,
    ) -> Result<((Component, CacheOutcome, String), PluginSettings), LoadError> {
        let memory = settings
            .memory_init
            .unwrap_or_else(|| MemoryInit::for_component(&wasm));
        let compiled = self.compile(wasm, memory).await?;
        let settings = PluginSettings {
            memory_init: Some(memory),
            ..settings
        };
        Ok((compiled, settings))
    }

    /// Loads a tool plugin: compiles it, checks that it implements the tool
    /// world and links, and asks it to describe its tools.
    pub async fn load_tool(
        &self,
        wasm: impl Into<Arc<[u8]>>,
        settings: PluginSettings,
    ) -> Result<ToolPlugin, LoadError> {
        let (compiled, settings) = self.compile_plugin(wasm.into(), settings).await?;
        self.finish_tool(compiled, settings).await
    }

    /// Loads a plugin of either world, deciding by what the component exports.
    pub async fn load_plugin(
        &self,
        wasm: impl Into<Arc<[u8]>>,
        settings: PluginSettings,
    ) -> Result<Plugin, LoadError> {
        let (compiled, settings) = self.compile_plugin(wasm.into(), settings).await?;
        let exports = export_names(&compiled.0);
        if exports.iter().any(|e| e == AGENT_EXPORT) {
            Ok(Plugin::Agent(self.finish_agent(compiled, settings).await?))
        } else {
            Ok(Plugin::Tool(self.finish_tool(compiled, settings).await?))
        }
    }

    /// Checks the component's world, links it against that world's linker
    /// and maps its memory images now rather than on the first request.
    pub(crate) fn prepare<P>(
        &self,
        component: &Component,
        world: World,
        memory: MemoryInit,
        typed: impl FnOnce(wasmtime::component::InstancePre<StoreState>) -> wasmtime::Result<P>,
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

    async fn finish_tool(
        &self,
        (component, cache, digest): (Component, CacheOutcome, String),
        settings: PluginSettings,
    ) -> Result<ToolPlugin, LoadError> {
        let memory = settings.memory_init.unwrap_or(MemoryInit::Map);
        let pre = self.prepare(&component, World::Tool, memory, ToolPluginPre::new)?;
        let shared = shared_settings(self, &component, settings)?;
        let mut plugin = ToolPlugin {
            inner: Arc::new(ToolPluginInner {
                runtime: self.clone(),
                shared,
                pre,
                tools: Vec::new(),
                digest,
                cache,
                prepared: Mutex::new(Vec::new()),
                preparing: AtomicBool::new(false),
                waiters: Mutex::new(Vec::new()),
            }),
        };
        let tools = plugin.describe().await?;
        validate_tools(&tools)?;
        match Arc::get_mut(&mut plugin.inner) {
            Some(inner) => inner.tools = tools,
            None => return Err(LoadError::Io("plugin handle escaped during load".into())),
        }
        tracing::info!(
            plugin = %plugin.name(),
            digest = %&plugin.digest()[..12],
            cache = ?plugin.cache_outcome(),
            tools = plugin.tools().len(),
            memory = ?plugin.inner.shared.memory,
            "loaded tool plugin"
        );
        plugin.prepare_later();
        Ok(plugin)
    }

    /// Reports a component's world, imports, exports and (for tools) its
    /// descriptors, with nothing granted.
    pub async fn inspect(&self, wasm: impl Into<Arc<[u8]>>) -> Result<PluginInfo, LoadError> {
        let wasm = wasm.into();
        let memory = MemoryInit::for_component(&wasm);
        let (component, _, digest) = self.compile(wasm.clone(), memory).await?;
        let exports = export_names(&component);
        let imports = component
            .component_type()
            .imports(component.engine())
            .map(|(name, _)| name.to_string())
            .collect();
        let world = if exports.iter().any(|e| e == TOOL_EXPORT) {
            Some(World::Tool)
        } else if exports.iter().any(|e| e == AGENT_EXPORT) {
            Some(World::Agent)
        } else {
            None
        };
        let (tools, agent) = match world {
            Some(World::Tool) => {
                let plugin = self.load_tool(wasm, PluginSettings::new("inspect")).await?;
                (plugin.tools().to_vec(), None)
            }
            Some(World::Agent) => {
                let plugin = self
                    .load_agent(wasm, PluginSettings::new("inspect"))
                    .await?;
                (Vec::new(), Some(plugin.descriptor().clone()))
            }
            None => (Vec::new(), None),
        };
        Ok(PluginInfo {
            world,
            imports,
            exports,
            tools,
            agent,
            digest,
        })
    }
}

pub(crate) fn export_names(component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(component.engine())
        .map(|(name, _)| name.to_string())
        .collect()
}

/// Whether `name` is a valid tool or agent name.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The read-only part of a plugin that every one of its stores points at.
pub(crate) fn shared_settings(
    runtime: &Runtime,
    component: &Component,
    settings: PluginSettings,
) -> Result<Arc<PluginShared>, LoadError> {
    let network = settings.sandbox.check()?;
    let imports: Vec<String> = component
        .component_type()
        .imports(component.engine())
        .map(|(name, _)| name.to_string())
        .collect();
    let gaps = capability_gaps(&imports, &settings.sandbox);
    for gap in &gaps {
        tracing::warn!(plugin = %settings.name, "{gap}");
    }
    let limits = settings
        .limits
        .unwrap_or_else(|| runtime.inner.config.default_limits.clone());
    Ok(Arc::new(PluginShared {
        memory: settings.memory_init.unwrap_or(MemoryInit::Map),
        name: settings.name.into(),
        limits,
        config: settings.config,
        kv: settings.kv,
        sandbox: settings.sandbox,
        network,
        gaps,
    }))
}

/// What a component imports that its grant will not let it use: the
/// differences an operator should know about (the calls will fail).
pub fn capability_gaps(imports: &[String], sandbox: &Sandbox) -> Vec<String> {
    let imports_any = |prefix: &str| imports.iter().any(|i| i.starts_with(prefix));
    let mut gaps = Vec::new();
    if imports_any("wasi:filesystem/") && sandbox.dirs.is_empty() {
        gaps.push(
            "imports wasi:filesystem but is granted no directories: it will see none".to_string(),
        );
    }
    if imports_any("wasi:sockets/") {
        gaps.push(
            "imports wasi:sockets, which netra never grants: its connections will be refused"
                .to_string(),
        );
    }
    if imports_any("wasi:http/") && sandbox.network.is_empty() {
        gaps.push(
            "imports wasi:http but is granted no network hosts: its requests will be refused"
                .to_string(),
        );
    }
    gaps
}

fn validate_tools(tools: &[ToolDescriptor]) -> Result<(), LoadError> {
    let mut seen = std::collections::HashSet::new();
    for tool in tools {
        let name = &tool.name;
        if !valid_name(name) {
            return Err(LoadError::InvalidDescriptor(format!(
                "tool name {name:?} must be 1-{MAX_TOOL_NAME} characters of a-z, 0-9, `_` or `-`"
            )));
        }
        if !seen.insert(name.as_str()) {
            return Err(LoadError::InvalidDescriptor(format!(
                "tool {name:?} is described twice"
            )));
        }
        let schema: serde_json::Value = serde_json::from_str(&tool.input_schema).map_err(|e| {
            LoadError::InvalidDescriptor(format!("tool {name:?}: input schema is not JSON: {e}"))
        })?;
        if !schema.is_object() {
            return Err(LoadError::InvalidDescriptor(format!(
                "tool {name:?}: input schema must be a JSON object"
            )));
        }
        if let Some(output) = &tool.output_schema {
            serde_json::from_str::<serde_json::Value>(output).map_err(|e| {
                LoadError::InvalidDescriptor(format!(
                    "tool {name:?}: output schema is not JSON: {e}"
                ))
            })?;
        }
    }
    Ok(())
}

impl ToolPlugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// What its imports ask for that its grant does not give (see
    /// [`capability_gaps`]).
    pub fn capability_gaps(&self) -> &[String] {
        &self.inner.shared.gaps
    }

    /// Its tools, as described at load.
    pub fn tools(&self) -> &[ToolDescriptor] {
        &self.inner.tools
    }

    /// The SHA-256 of its component bytes, hex encoded.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Whether loading it compiled the component or hit the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// The limits of each of its stores.
    pub fn limits(&self) -> &Limits {
        &self.inner.shared.limits
    }

    /// Gives one request a fresh instance: one made ahead (see
    /// [`RuntimeConfig::prepared_instances`](crate::RuntimeConfig)) when there
    /// is one, else a new one. Calls on it share the instance's memory; a new
    /// request must use a new instance.
    pub async fn instantiate(&self, ctx: RunContext) -> Result<ToolInstance, InvokeError> {
        let prepared = self
            .inner
            .prepared
            .lock()
            .ok()
            .and_then(|mut ready| ready.pop());
        let Some(Prepared {
            mut store,
            bindings,
        }) = prepared
        else {
            let mut instance = self.instantiate_new(ctx).await?;
            instance.refill_on_drop = true;
            return Ok(instance);
        };
        // Made with no user; this request is its first and only one.
        let state = store.data_mut();
        state.guest.user_id.clone_from(&ctx.user_id);
        state.deadline = Instant::now() + self.inner.shared.limits.deadline;
        // Epoch deadlines count from now, not from when it was made.
        store.set_epoch_deadline(1);
        Ok(self.instance(Prepared { store, bindings }, ctx, true))
    }

    /// Instantiates the component now.
    async fn instantiate_new(&self, ctx: RunContext) -> Result<ToolInstance, InvokeError> {
        let made = self.make(&ctx.user_id).await?;
        Ok(self.instance(made, ctx, false))
    }

    fn instance(&self, made: Prepared, ctx: RunContext, refill_on_drop: bool) -> ToolInstance {
        ToolInstance {
            plugin: self.clone(),
            live: Some(made),
            ctx,
            refill_on_drop,
        }
    }

    /// A new store and instance for `user_id`.
    async fn make(&self, user_id: &str) -> Result<Prepared, InvokeError> {
        let inner = &self.inner;
        let mut store = new_store(&inner.runtime, &inner.shared, user_id, None);
        let deadline = self.inner.shared.limits.deadline;
        let until_at = Instant::now() + deadline;
        store.data_mut().deadline = until_at;
        match until(until_at, self.inner.pre.instantiate_async(&mut store)).await {
            Some(Ok(bindings)) => Ok(Prepared { store, bindings }),
            Some(Err(err)) => Err(instantiate_error(&store, err, deadline)),
            None => Err(InvokeError::Timeout(deadline)),
        }
    }

    /// How many prepared instances are ready now.
    pub fn prepared_count(&self) -> usize {
        self.inner.prepared.lock().map_or(0, |ready| ready.len())
    }

    /// Makes instances until [`RuntimeConfig::prepared_instances`]
    /// (crate::RuntimeConfig) are ready, on the runtime's preparer thread,
    /// and waits for it. Requests refill on their own; this is for a caller
    /// that wants them ready now (after a load, between benchmark samples).
    pub async fn prepare(&self) {
        let Some(preparer) = self.preparer() else {
            return;
        };
        self.inner.preparing.store(true, Ordering::Release);
        let (done, finished) = tokio::sync::oneshot::channel();
        if let Ok(mut waiters) = self.inner.waiters.lock() {
            waiters.push(done);
        }
        if preparer.send(self.clone()).is_ok() {
            let _ = finished.await;
        }
    }

    /// The preparer thread's work for this plugin.
    pub(crate) async fn prepare_now(&self) {
        let target = self.inner.runtime.inner.config.prepared_instances;
        loop {
            let ready = self.inner.prepared.lock().map_or(target, |r| r.len());
            if ready >= target {
                break;
            }
            match self.make("").await {
                Ok(instance) => {
                    if let Ok(mut ready) = self.inner.prepared.lock() {
                        ready.push(instance);
                    }
                }
                Err(err) => {
                    tracing::debug!(plugin = %self.name(), "cannot prepare an instance: {err}");
                    break;
                }
            }
        }
        self.inner.preparing.store(false, Ordering::Release);
        if let Ok(mut waiters) = self.inner.waiters.lock() {
            for waiter in waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }

    /// Where to ask for prepared instances, if this plugin has them: only
    /// `Copy` plugins do, whose instantiation copies their image. A `Map`
    /// plugin's instantiation is tens of microseconds, and an instance made on
    /// the request's own thread finds its memory in that core's cache, which
    /// measured as fast as one made ahead on another thread.
    fn preparer(&self) -> Option<&tokio::sync::mpsc::UnboundedSender<ToolPlugin>> {
        if self.inner.shared.memory != MemoryInit::Copy {
            return None;
        }
        self.inner.runtime.inner.preparer.as_ref()
    }

    /// Asks the preparer thread to refill, unless it is on it already or
    /// nothing is to be prepared.
    fn prepare_later(&self) {
        let Some(preparer) = self.preparer() else {
            return;
        };
        if self.inner.preparing.swap(true, Ordering::AcqRel) {
            return;
        }
        if preparer.send(self.clone()).is_err() {
            self.inner.preparing.store(false, Ordering::Release);
        }
    }

    /// Calls `tool` in a fresh instance that is dropped afterwards: the
    /// path of a single request.
    pub async fn call(
        &self,
        ctx: RunContext,
        tool: &str,
        arguments: &str,
    ) -> Result<String, InvokeError> {
        self.instantiate(ctx).await?.invoke(tool, arguments).await
    }

    async fn describe(&self) -> Result<Vec<ToolDescriptor>, LoadError> {
        let ctx = RunContext {
            user_id: String::new(),
            thread_id: String::new(),
            run_id: String::new(),
        };
        let Prepared {
            mut store,
            bindings,
        } = self.make(&ctx.user_id).await.map_err(LoadError::Describe)?;
        let deadline = DESCRIBE_DEADLINE.min(self.inner.shared.limits.deadline);
        let until_at = Instant::now() + deadline;
        store.data_mut().deadline = until_at;
        let call = bindings.netra_plugin_tool().call_describe(&mut store);
        match until(until_at, call).await {
            Some(result) => {
                result.map_err(|err| LoadError::Describe(classify(&store, err, deadline)))
            }
            None => Err(LoadError::Describe(InvokeError::Timeout(deadline))),
        }
    }
}

/// A fresh store for one request of the plugin `shared`.
pub(crate) fn new_store(
    runtime: &Runtime,
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
    let deadline = Instant::now() + shared.limits.deadline;
    let state = StoreState {
        wasi,
        http: WasiHttpCtx::new(),
        http_hooks: OutgoingHttp {
            plugin: shared.clone(),
            deadline,
        },
        table: ResourceTable::new(),
        limiter: Limiter::new(&shared.limits),
        deadline,
        guest: GuestCtx {
            plugin: shared.clone(),
            user_id: user_id.to_string(),
            agent,
        },
        stderr,
        cpu: runtime.inner.cpu.seat(),
    };
    let mut store = Store::new(&runtime.flavor(shared.memory).engine, state);
    store.limiter(|state| &mut state.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut store| {
        let state = store.data_mut();
        if Instant::now() >= state.deadline {
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
    if runtime.inner.config.fuel {
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

/// One request's instance of a tool plugin. Dropping it frees the instance.
pub struct ToolInstance {
    plugin: ToolPlugin,
    /// The store and its bindings; `None` once a call failed fatally or was
    /// dropped half-way (the instance went with it): it is poisoned.
    live: Option<Prepared>,
    ctx: RunContext,
    /// Whether dropping it asks for a prepared instance in its place: the
    /// refill waits until the request is done instead of competing with it.
    refill_on_drop: bool,
}

impl Drop for ToolInstance {
    fn drop(&mut self) {
        if self.refill_on_drop {
            self.plugin.prepare_later();
        }
    }
}

impl ToolInstance {
    /// Calls `tool` with JSON `arguments` and returns its JSON result.
    pub async fn invoke(&mut self, tool: &str, arguments: &str) -> Result<String, InvokeError> {
        let Some(mut live) = self.live.take() else {
            return Err(InvokeError::Poisoned);
        };
        let limits = &self.plugin.inner.shared.limits;
        let deadline = limits.deadline;
        let max_result = limits.max_result_bytes;
        let until_at = Instant::now() + deadline;
        live.store.data_mut().deadline = until_at;
        if let (true, Some(fuel)) = (self.plugin.inner.runtime.inner.config.fuel, limits.fuel) {
            let _ = live.store.set_fuel(fuel);
        }
        let seat = live.store.data().cpu.handle();
        let ctx = self.ctx.clone();
        let user = ctx.user_id.clone();
        let (tool, arguments) = (tool.to_string(), arguments.to_string());
        let call = async move {
            let call = live.bindings.netra_plugin_tool().call_invoke(
                &mut live.store,
                &ctx,
                &tool,
                &arguments,
            );
            let result = until(until_at, call).await;
            // Done computing: the CPU slot, if it holds one, is someone else's.
            live.store.data().cpu.leave();
            (live, result)
        };
        let guests = &self.plugin.inner.runtime.inner.guests;
        let Some((live, result)) = guests.run(seat, &user, call).await else {
            return Err(InvokeError::Capacity("the host is stopping".into()));
        };
        let Some(result) = result else {
            // Stopped while waiting in the host: the guest is mid-call.
            return Err(InvokeError::Timeout(deadline));
        };
        let outcome = match result {
            Ok(Ok(json)) if json.len() > max_result => Err(InvokeError::ResultTooLarge {
                bytes: json.len(),
                limit: max_result,
            }),
            Ok(Ok(json)) => match serde_json::from_str::<serde::de::IgnoredAny>(&json) {
                Ok(_) => Ok(json),
                Err(e) => Err(InvokeError::Tool(ToolError::Failed(format!(
                    "tool returned invalid JSON: {e}"
                )))),
            },
            Ok(Err(err)) => Err(InvokeError::Tool(err)),
            Err(err) => {
                let err = classify(&live.store, err, deadline);
                if err.poisons_instance() {
                    // The instance goes with `live`.
                    return Err(err);
                }
                Err(err)
            }
        };
        self.live = Some(live);
        outcome
    }

    /// The plugin this instance belongs to.
    pub fn plugin(&self) -> &ToolPlugin {
        &self.plugin
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_http_is_a_gap_only_without_network_hosts() {
        let imports = vec![
            "wasi:http/outgoing-handler@0.2.6".to_string(),
            "wasi:sockets/tcp@0.2.6".to_string(),
        ];
        let none = capability_gaps(&imports, &Sandbox::default());
        assert_eq!(none.len(), 2, "{none:?}");
        assert!(none.iter().any(|g| g.contains("granted no network hosts")));

        let granted = Sandbox {
            network: vec!["api.example.com".into()],
            ..Sandbox::default()
        };
        let gaps = capability_gaps(&imports, &granted);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert!(gaps[0].contains("wasi:sockets"), "{gaps:?}");
    }
}
