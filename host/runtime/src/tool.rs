//! Tool plugins: one request's fresh instance, made on the request's thread
//! or ahead of it on the preparer thread, and its calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use wasmtime::Store;
use wasmtime::component::Component;

use crate::bindings::{RunContext, ToolDescriptor, ToolError, ToolPluginPre};
use crate::cache::CacheOutcome;
use crate::config::Limits;
use crate::deadline::until;
use crate::engine::{PrepareJob, Runtime};
use crate::error::{InvokeError, LoadError};
use crate::host::{CallObserver, Interaction};
use crate::settings::{
    MAX_TOOL_NAME, MemoryInit, PluginSettings, PluginShared, World, shared_settings, valid_name,
};
use crate::store::{DESCRIBE_DEADLINE, StoreState, classify, instantiate_error};

/// The generated per-instance bindings of the tool world.
type ToolBindings = crate::bindings::generated_tool::ToolPlugin;

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
    /// Links a compiled tool component, asks it to describe its tools and
    /// starts preparing its instances.
    pub(crate) async fn load(
        runtime: &Runtime,
        (component, cache, digest): (Component, CacheOutcome, String),
        settings: PluginSettings,
    ) -> Result<ToolPlugin, LoadError> {
        let memory = settings.memory_init.unwrap_or(MemoryInit::Map);
        let pre = runtime.prepare(&component, World::Tool, memory, ToolPluginPre::new)?;
        let shared = shared_settings(&runtime.inner.config.default_limits, &component, settings)?;
        let mut plugin = ToolPlugin {
            inner: Arc::new(ToolPluginInner {
                runtime: runtime.clone(),
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

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// What its imports ask for that its grant does not give (see
    /// [`capability_gaps`]).
    pub fn capability_gaps(&self) -> &[String] {
        &self.inner.shared.gaps
    }

    /// Whether its calls may ask questions (it imports `interaction`).
    pub fn asks(&self) -> bool {
        self.inner.shared.asks
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
        state
            .guest
            .deadline
            .start(self.inner.shared.limits.deadline);
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
        let mut store = inner.runtime.new_store(&inner.shared, user_id, None);
        let deadline = self.inner.shared.limits.deadline;
        let clock = store.data().guest.deadline.start(deadline);
        match until(&clock, self.inner.pre.instantiate_async(&mut store)).await {
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
        if preparer.send(self.prepare_job()).is_ok() {
            let _ = finished.await;
        }
    }

    /// The preparer thread's work for this plugin.
    fn prepare_job(&self) -> PrepareJob {
        let plugin = self.clone();
        Box::pin(async move { plugin.prepare_now().await })
    }

    async fn prepare_now(&self) {
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
    fn preparer(&self) -> Option<&tokio::sync::mpsc::UnboundedSender<PrepareJob>> {
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
        if preparer.send(self.prepare_job()).is_err() {
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
        let clock = store.data().guest.deadline.start(deadline);
        let call = bindings.netra_plugin_tool().call_describe(&mut store);
        match until(&clock, call).await {
            Some(result) => {
                result.map_err(|err| LoadError::Describe(classify(&store, err, deadline)))
            }
            None => Err(LoadError::Describe(InvokeError::Timeout(deadline))),
        }
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
        let clock = live.store.data().guest.deadline.start(deadline);
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
            let result = until(&clock, call).await;
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

    /// Sends the guest's log lines and progress reports of the calls that
    /// follow to `observer` (besides the host's tracing).
    pub fn observe(&mut self, observer: Arc<dyn CallObserver>) {
        if let Some(live) = &mut self.live {
            live.store.data_mut().guest.observer = Some(observer);
        }
    }

    /// Sends the questions of the calls that follow (`interaction`) to
    /// `interaction`; without one, a question is answered `unsupported`.
    pub fn interact(&mut self, interaction: Arc<dyn Interaction>) {
        if let Some(live) = &mut self.live {
            live.store.data_mut().guest.interaction = Some(interaction);
        }
    }

    /// The plugin this instance belongs to.
    pub fn plugin(&self) -> &ToolPlugin {
        &self.plugin
    }
}
