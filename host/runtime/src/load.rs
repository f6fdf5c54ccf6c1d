//! Loading: compiling a component (or finding it in the cache, or
//! snapshotting it first, see `preinit`) and loading it as a tool or agent
//! plugin, or inspecting what it is.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use wasmtime::component::Component;

use crate::agent::AgentPlugin;
use crate::bindings::{AGENT_EXPORT, AgentDescriptor, TOOL_EXPORT, ToolDescriptor};
use crate::cache::{self, CacheOutcome};
use crate::engine::{Runtime, export_names};
use crate::error::LoadError;
use crate::preinit;
use crate::settings::{MemoryInit, PluginSettings, World};
use crate::tool::ToolPlugin;

/// A loaded plugin of either world.
#[derive(Clone)]
pub enum Plugin {
    /// A tool plugin.
    Tool(ToolPlugin),
    /// An agent plugin.
    Agent(AgentPlugin),
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
    pub agent: Option<AgentDescriptor>,
    /// The SHA-256 of its bytes.
    pub digest: String,
}

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
            tokio::task::spawn_blocking(move || cache::digest(&wasm))
                .await
                .map_err(|e| LoadError::Io(format!("compile task failed: {e}")))?
        };
        if self.inner.config.preinitialize {
            let name = format!("{digest}-{}", preinit::SNAPSHOT_KEY);
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
                match preinit::snapshot(self, wasm.clone(), memory).await {
                    Ok(component) => {
                        cache.put(&component, &name);
                        return Ok((component, CacheOutcome::Compiled, digest));
                    }
                    Err(preinit::NoSnapshot::Unsupported(why)) => {
                        tracing::warn!(digest = %&digest[..12], "no pre-initialized snapshot: {why}");
                        cache.mark(&name);
                    }
                    Err(preinit::NoSnapshot::Busy(why)) => {
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
        ToolPlugin::load(self, compiled, settings).await
    }

    /// Loads an agent plugin: compiles it, checks its world, links it and asks
    /// it to describe itself.
    pub async fn load_agent(
        &self,
        wasm: impl Into<Arc<[u8]>>,
        settings: PluginSettings,
    ) -> Result<AgentPlugin, LoadError> {
        let (compiled, settings) = self.compile_plugin(wasm.into(), settings).await?;
        AgentPlugin::load(self, compiled, settings).await
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
            Ok(Plugin::Agent(
                AgentPlugin::load(self, compiled, settings).await?,
            ))
        } else {
            Ok(Plugin::Tool(
                ToolPlugin::load(self, compiled, settings).await?,
            ))
        }
    }

    /// Checks the component's world, links it against that world's linker
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
