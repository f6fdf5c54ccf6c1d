//! Agent plugins: linking and describing one, and running one turn in a
//! fresh instance.

use std::sync::Arc;

use wasmtime::component::Component;

use crate::bindings::{
    AgentDescriptor, AgentPluginPre, Message, RunContext, ToolDescriptor, ToolError,
};
use crate::cache::CacheOutcome;
use crate::deadline::until;
use crate::engine::Runtime;
use crate::error::{InvokeError, LoadError};
use crate::host::{AgentHost, ToolCallFuture};
use crate::settings::{
    MAX_TOOL_NAME, MemoryInit, PluginSettings, PluginShared, World, shared_settings, valid_name,
};
use crate::store::{DESCRIBE_DEADLINE, StoreState, classify, instantiate_error};

/// A loaded agent plugin. Cheap to clone.
#[derive(Clone)]
pub struct AgentPlugin {
    inner: Arc<AgentPluginInner>,
}

struct AgentPluginInner {
    runtime: Runtime,
    shared: Arc<PluginShared>,
    pre: AgentPluginPre<StoreState>,
    descriptor: AgentDescriptor,
    digest: String,
    cache: CacheOutcome,
}

/// A host for `describe`, which may not emit events or call tools.
pub(crate) struct DescribeHost;

impl AgentHost for DescribeHost {
    fn thinking(&self, _text: String) {}
    fn message_delta(&self, _text: String) {}
    fn list_tools(&self) -> Vec<ToolDescriptor> {
        Vec::new()
    }
    fn call_tool(self: Arc<Self>, _name: String, _arguments: String) -> ToolCallFuture {
        Box::pin(async { Err(ToolError::Denied("no tools during describe".into())) })
    }
}

async fn describe(
    runtime: &Runtime,
    shared: &Arc<PluginShared>,
    pre: &AgentPluginPre<StoreState>,
) -> Result<AgentDescriptor, LoadError> {
    let deadline = DESCRIBE_DEADLINE.min(shared.limits.deadline);
    let mut store = runtime.new_store(shared, "", Some(Arc::new(DescribeHost)));
    let clock = store.data().guest.deadline.start(deadline);
    let timeout = || LoadError::Describe(InvokeError::Timeout(deadline));
    let bindings = until(&clock, pre.instantiate_async(&mut store))
        .await
        .ok_or_else(timeout)?
        .map_err(|e| LoadError::Describe(classify(&store, e, deadline)))?;
    until(
        &clock,
        bindings.netra_plugin_agent().call_describe(&mut store),
    )
    .await
    .ok_or_else(timeout)?
    .map_err(|e| LoadError::Describe(classify(&store, e, deadline)))
}

fn check_name(name: &str) -> Result<(), LoadError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(LoadError::InvalidDescriptor(format!(
            "agent name {name:?} must be 1-{MAX_TOOL_NAME} characters of a-z, 0-9, `_` or `-`"
        )))
    }
}

impl AgentPlugin {
    /// Links a compiled agent component and asks it to describe itself.
    pub(crate) async fn load(
        runtime: &Runtime,
        (component, cache, digest): (Component, CacheOutcome, String),
        settings: PluginSettings,
    ) -> Result<AgentPlugin, LoadError> {
        let memory = settings.memory_init.unwrap_or(MemoryInit::Map);
        let pre = runtime.prepare(&component, World::Agent, memory, AgentPluginPre::new)?;
        let shared = shared_settings(&runtime.inner.config.default_limits, &component, settings)?;
        let descriptor = describe(runtime, &shared, &pre).await?;
        check_name(&descriptor.name)?;
        tracing::info!(
            plugin = %shared.name,
            agent = %descriptor.name,
            digest = %&digest[..12],
            cache = ?cache,
            "loaded agent plugin"
        );
        Ok(AgentPlugin {
            inner: Arc::new(AgentPluginInner {
                runtime: runtime.clone(),
                shared,
                pre,
                descriptor,
                digest,
                cache,
            }),
        })
    }

    /// The plugin's name (from its settings).
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    /// What its imports ask for that its grant does not give (see
    /// [`crate::capability_gaps`]).
    pub fn capability_gaps(&self) -> &[String] {
        &self.inner.shared.gaps
    }

    /// What the agent says it is.
    pub fn descriptor(&self) -> &AgentDescriptor {
        &self.inner.descriptor
    }

    /// The SHA-256 of its component bytes, hex encoded.
    pub fn digest(&self) -> &str {
        &self.inner.digest
    }

    /// Whether loading it compiled the component or hit the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache
    }

    /// Runs one turn in a fresh instance that lives exactly as long as this
    /// call. Dropping the returned future stops the guest at its next epoch
    /// tick and frees the instance: that is how a run is cancelled.
    pub async fn run(
        &self,
        ctx: RunContext,
        input: String,
        history: Vec<Message>,
        host: Arc<dyn AgentHost>,
    ) -> Result<String, InvokeError> {
        let shared = &self.inner.shared;
        let deadline = shared.limits.deadline;
        let mut store = self
            .inner
            .runtime
            .new_store(shared, &ctx.user_id, Some(host));
        // One deadline for the whole run, instantiation included.
        let clock = store.data().guest.deadline.start(deadline);
        let seat = store.data().cpu.handle();
        let user = ctx.user_id.clone();
        let pre = self.inner.pre.clone();
        let run = async move {
            let bindings = match until(&clock, pre.instantiate_async(&mut store)).await {
                Some(Ok(bindings)) => bindings,
                Some(Err(err)) => {
                    return Err(instantiate_error(&store, err, deadline));
                }
                None => return Err(InvokeError::Timeout(deadline)),
            };
            let call = bindings
                .netra_plugin_agent()
                .call_run(&mut store, &ctx, &input, &history);
            let Some(result) = until(&clock, call).await else {
                return Err(InvokeError::Timeout(deadline));
            };
            match result {
                Ok(Ok(answer)) => Ok(answer),
                Ok(Err(err)) => Err(InvokeError::Agent(err)),
                Err(err) => Err(classify(&store, err, deadline)),
            }
        };
        self.inner
            .runtime
            .inner
            .guests
            .run(seat, &user, run)
            .await
            .unwrap_or_else(|| Err(InvokeError::Capacity("the host is stopping".into())))
    }
}
