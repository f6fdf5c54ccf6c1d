//! Agent plugins: loading, and running one turn in a fresh instance.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::Component;

use crate::bindings::llm::{ChatRequest, ChatResponse, LlmError};
use crate::bindings::{
    AGENT_EXPORT, AgentDescriptor, AgentPluginPre, Message, RunContext, ToolDescriptor, ToolError,
};
use crate::cache::CacheOutcome;
use crate::engine::Runtime;
use crate::error::{InvokeError, LoadError};
use crate::plugin::{PluginSettings, World, classify, new_store, shared_settings, until};
use crate::store::PluginShared;

/// A boxed tool-call future, so [`AgentHost`] stays object safe.
pub type ToolCallFuture = Pin<Box<dyn Future<Output = Result<String, ToolError>> + Send>>;

/// What an agent run is connected to: the run's event stream and its tools.
/// The runtime calls it from the agent's imports; it knows nothing of how
/// events travel or how tools are found.
pub trait AgentHost: Send + Sync + 'static {
    /// The agent reported a step of its reasoning.
    fn thinking(&self, text: String);
    /// The agent appended text to its answer.
    fn message_delta(&self, text: String);
    /// The tools this run may call.
    fn list_tools(&self) -> Vec<ToolDescriptor>;
    /// Calls a tool for this run.
    fn call_tool(self: Arc<Self>, name: String, arguments: String) -> ToolCallFuture;
    /// Waits until the run's earlier events are stored far enough that it
    /// may emit more: called after each event, so a run that floods the store
    /// is slowed, not the host's other runs. By default it does not wait.
    fn settle(self: Arc<Self>) -> SettleFuture {
        Box::pin(async {})
    }
    /// Runs one chat completion for this run with a model its grant allows;
    /// the host streams the tokens to the client while the guest waits. By
    /// default no model is granted.
    fn chat(self: Arc<Self>, request: ChatRequest) -> ChatFuture {
        let _ = request;
        Box::pin(async { Err(LlmError::Denied("no language model is granted".into())) })
    }
}

/// What [`AgentHost::settle`] returns.
pub type SettleFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What [`AgentHost::chat`] returns.
pub type ChatFuture = Pin<Box<dyn Future<Output = Result<ChatResponse, LlmError>> + Send>>;

/// A loaded agent plugin. Cheap to clone.
#[derive(Clone)]
pub struct AgentPlugin {
    inner: Arc<AgentPluginInner>,
}

struct AgentPluginInner {
    runtime: Runtime,
    shared: Arc<PluginShared>,
    pre: AgentPluginPre<crate::store::StoreState>,
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

impl Runtime {
    /// Loads an agent plugin: compiles it, checks its world, links it and asks
    /// it to describe itself.
    pub async fn load_agent(
        &self,
        wasm: impl Into<Arc<[u8]>>,
        settings: PluginSettings,
    ) -> Result<AgentPlugin, LoadError> {
        let (compiled, settings) = self.compile_plugin(wasm.into(), settings).await?;
        self.finish_agent(compiled, settings).await
    }

    pub(crate) async fn finish_agent(
        &self,
        (component, cache, digest): (Component, CacheOutcome, String),
        settings: PluginSettings,
    ) -> Result<AgentPlugin, LoadError> {
        let memory = settings
            .memory_init
            .unwrap_or(crate::engine::MemoryInit::Map);
        let pre = self.prepare(&component, World::Agent, memory, AgentPluginPre::new)?;
        let shared = shared_settings(self, &component, settings)?;
        let descriptor = describe(self, &shared, &pre).await?;
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
                runtime: self.clone(),
                shared,
                pre,
                descriptor,
                digest,
                cache,
            }),
        })
    }

    pub(crate) fn expect_world(
        &self,
        component: &Component,
        world: World,
    ) -> Result<(), LoadError> {
        let export = match world {
            World::Tool => crate::bindings::TOOL_EXPORT,
            World::Agent => AGENT_EXPORT,
        };
        let exports = crate::plugin::export_names(component);
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

async fn describe(
    runtime: &Runtime,
    shared: &Arc<PluginShared>,
    pre: &AgentPluginPre<crate::store::StoreState>,
) -> Result<AgentDescriptor, LoadError> {
    let deadline = crate::plugin::DESCRIBE_DEADLINE.min(shared.limits.deadline);
    let mut store = new_store(runtime, shared, "", Some(Arc::new(DescribeHost)));
    let until_at = Instant::now() + deadline;
    store.data_mut().deadline = until_at;
    let timeout = || LoadError::Describe(InvokeError::Timeout(deadline));
    let bindings = until(until_at, pre.instantiate_async(&mut store))
        .await
        .ok_or_else(timeout)?
        .map_err(|e| LoadError::Describe(classify(&store, e, deadline)))?;
    until(
        until_at,
        bindings.netra_plugin_agent().call_describe(&mut store),
    )
    .await
    .ok_or_else(timeout)?
    .map_err(|e| LoadError::Describe(classify(&store, e, deadline)))
}

fn check_name(name: &str) -> Result<(), LoadError> {
    if crate::plugin::valid_name(name) {
        Ok(())
    } else {
        Err(LoadError::InvalidDescriptor(format!(
            "agent name {name:?} must be 1-64 characters of a-z, 0-9, `_` or `-`"
        )))
    }
}

impl AgentPlugin {
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
        let mut store = new_store(&self.inner.runtime, shared, &ctx.user_id, Some(host));
        // One deadline for the whole run, instantiation included.
        let until_at = Instant::now() + deadline;
        store.data_mut().deadline = until_at;
        let seat = store.data().cpu.handle();
        let user = ctx.user_id.clone();
        let pre = self.inner.pre.clone();
        let run = async move {
            let bindings = match until(until_at, pre.instantiate_async(&mut store)).await {
                Some(Ok(bindings)) => bindings,
                Some(Err(err)) => {
                    return Err(crate::plugin::instantiate_error(&store, err, deadline));
                }
                None => return Err(InvokeError::Timeout(deadline)),
            };
            let call = bindings
                .netra_plugin_agent()
                .call_run(&mut store, &ctx, &input, &history);
            let Some(result) = until(until_at, call).await else {
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
