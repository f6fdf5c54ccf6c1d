//! The plugins a server serves: agents by name, tools by name, and which
//! tools each agent may call.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use netra_config::{BudgetOverrides, Budgets};
use netra_runtime::{
    AgentPlugin, KvStore, Limits, LoadError, Plugin, PluginSettings, Runtime, Sandbox,
    ToolDescriptor, ToolPlugin,
};

/// An agent that can be run.
#[derive(Clone)]
pub struct AgentEntry {
    /// The loaded plugin.
    pub plugin: AgentPlugin,
    /// Its version as shown to clients.
    pub version: String,
    /// The content hash of that version, when the host keeps versions.
    pub digest: Option<String>,
    /// The tools it may call; `None` means every tool.
    pub allowed_tools: Option<BTreeSet<String>>,
    /// The models it may use: `provider` or `provider/model` entries.
    pub llm: Vec<String>,
    /// What one of its runs may spend.
    pub budgets: Budgets,
}

/// A tool that agents can call.
#[derive(Clone)]
pub struct ToolEntry {
    /// The plugin that provides it.
    pub plugin: ToolPlugin,
    /// Its descriptor.
    pub descriptor: ToolDescriptor,
}

/// Which plugins to load and what each is granted.
#[derive(Clone, Default)]
pub struct Grants {
    /// Per agent (plugin file name or agent name): the only tools it may
    /// call. Agents not listed may call every tool, unless `deny_unlisted`.
    pub agent_tools: BTreeMap<String, BTreeSet<String>>,
    /// Agents not in `agent_tools` may call no tool (`netra serve` with a
    /// configuration file: deny by default).
    pub deny_unlisted: bool,
    /// Per agent plugin: its `llm` grant (`provider` or `provider/model`).
    pub agent_llm: BTreeMap<String, Vec<String>>,
    /// Plugin files (names without `.wasm`) not to load: refused.
    pub skip: BTreeSet<String>,
    /// Plugin names in the order to load them (what a plugin needs first);
    /// files not listed load after them, by name.
    pub order: Vec<String>,
    /// Limits per plugin name (the file stem); others get the defaults.
    pub limits: BTreeMap<String, Limits>,
    /// Default limits for agents (runs are longer than tool calls).
    pub agent_limits: Option<Limits>,
    /// Default limits for tools.
    pub tool_limits: Option<Limits>,
    /// Default budgets of agents' runs (`[limits.agent]`).
    pub agent_budgets: Budgets,
    /// Default budgets of tools' calls (`[limits.tool]`).
    pub tool_budgets: Budgets,
    /// The kv backend granted to every plugin (unless its [`PluginGrant`] says no).
    pub kv: Option<Arc<dyn KvStore>>,
    /// Per plugin name: config values, kv, limit overrides (from `[plugin.NAME]`).
    pub plugins: BTreeMap<String, PluginGrant>,
}

/// What the operator set for one plugin; unset limits come from the defaults
/// of its kind.
#[derive(Clone, Debug)]
pub struct PluginGrant {
    /// Values it reads through the `config` interface.
    pub config: BTreeMap<String, String>,
    /// Whether it gets kv.
    pub kv: bool,
    /// Its memory limit, in bytes.
    pub memory_bytes: Option<usize>,
    /// Its deadline.
    pub deadline: Option<Duration>,
    /// Its fuel.
    pub fuel: Option<u64>,
    /// Its budgets, over the defaults of its kind.
    pub budgets: BudgetOverrides,
    /// The directories and environment variables it sees.
    pub sandbox: Sandbox,
}

impl Default for PluginGrant {
    fn default() -> Self {
        Self {
            config: BTreeMap::new(),
            kv: true,
            memory_bytes: None,
            deadline: None,
            fuel: None,
            budgets: BudgetOverrides::default(),
            sandbox: Sandbox::default(),
        }
    }
}

/// `limits` with what the runtime enforces of `budgets`: the size of a tool
/// result and the rate of guest log output.
pub fn with_budgets(limits: Limits, budgets: &Budgets) -> Limits {
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Limits {
        max_result_bytes: size(budgets.max_result_bytes),
        log_lines_per_second: u32::try_from(budgets.log_lines_per_second).unwrap_or(u32::MAX),
        log_bytes_per_second: size(budgets.log_bytes_per_second),
        kv_max_keys: budgets.kv_max_keys,
        kv_max_bytes: budgets.kv_max_bytes,
        ask_wait: std::time::Duration::from_millis(budgets.ask_wait),
        ..limits
    }
}

impl PluginGrant {
    /// `defaults` with this grant's limits over them.
    fn limits(&self, defaults: Option<Limits>) -> Option<Limits> {
        if self.memory_bytes.is_none() && self.deadline.is_none() && self.fuel.is_none() {
            return defaults;
        }
        let mut limits = defaults.unwrap_or_default();
        if let Some(memory) = self.memory_bytes {
            limits.memory_bytes = memory;
        }
        if let Some(deadline) = self.deadline {
            limits.deadline = deadline;
        }
        if self.fuel.is_some() {
            limits.fuel = self.fuel;
        }
        Some(limits)
    }
}

/// The served plugins. Immutable once built; hot-loading swaps whole registries.
#[derive(Default)]
pub struct Registry {
    agents: BTreeMap<String, AgentEntry>,
    tools: BTreeMap<String, ToolEntry>,
    /// Tool and agent names two plugins provide.
    conflicts: Vec<Conflict>,
}

/// A tool or agent name that two plugins provide: the plugin added first
/// keeps it, the other one's is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// `tool` or `agent`.
    pub kind: &'static str,
    /// The tool's or agent's name.
    pub name: String,
    /// The plugin that provides it here.
    pub kept: String,
    /// The plugin whose tool or agent of that name is not served.
    pub ignored: String,
}

impl Conflict {
    /// Whether plugin `name` is one of the two.
    pub fn involves(&self, name: &str) -> bool {
        self.kept == name || self.ignored == name
    }

    /// The plugin other than `name`.
    pub fn other(&self, name: &str) -> &str {
        if self.kept == name {
            &self.ignored
        } else {
            &self.kept
        }
    }
}

/// How a version is shown: its label (the manifest's `version`) and its
/// content hash.
#[derive(Clone, Debug, Default)]
pub struct VersionTag {
    /// What clients see as the version.
    pub label: String,
    /// `sha256:...` of the version's content.
    pub digest: String,
}

/// A plugin file that could not be loaded.
#[derive(Debug)]
pub struct LoadFailure {
    /// The file.
    pub file: String,
    /// Why.
    pub error: LoadError,
}

impl Registry {
    /// Loads every `*.wasm` in `dir`. A plugin that fails to load is reported
    /// and skipped; it does not stop the others.
    pub async fn load_dir(
        runtime: &Runtime,
        dir: &Path,
        grants: &Grants,
    ) -> std::io::Result<(Self, Vec<LoadFailure>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
            .filter(|path| {
                path.file_stem()
                    .is_none_or(|stem| !grants.skip.contains(&*stem.to_string_lossy()))
            })
            .collect();
        let rank = |path: &std::path::PathBuf| {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let at = grants.order.iter().position(|n| *n == stem);
            (at.unwrap_or(usize::MAX), stem)
        };
        files.sort_by_cached_key(rank);
        let mut registry = Registry::default();
        let mut failures = Vec::new();
        for file in files {
            let name = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let wasm = std::fs::read(&file)?;
            match Self::load_one(runtime, &name, wasm, grants).await {
                Ok(plugin) => registry.add(plugin, grants, None),
                Err(error) => {
                    tracing::error!(file = %file.display(), "plugin not loaded: {error}");
                    failures.push(LoadFailure {
                        file: file.display().to_string(),
                        error,
                    });
                }
            }
        }
        Ok((registry, failures))
    }

    /// Compiles, links and describes the plugin `name` from `wasm`, with the
    /// grant and the limits `grants` give it (the defaults of its kind unless
    /// set for it).
    pub async fn load_one(
        runtime: &Runtime,
        name: &str,
        wasm: Vec<u8>,
        grants: &Grants,
    ) -> Result<Plugin, LoadError> {
        let grant = grants.plugins.get(name).cloned().unwrap_or_default();
        let mut settings = PluginSettings::new(name);
        settings.kv = grant.kv.then(|| grants.kv.clone()).flatten();
        settings.config = grant.config.clone();
        settings.sandbox = grant.sandbox.clone();
        let explicit = grants.limits.get(name).cloned();
        let budgeted = |limits: Option<Limits>, defaults: Budgets| {
            let budgets = grant.budgets.over(defaults);
            match limits {
                None if budgets == Budgets::default() => None,
                limits => Some(with_budgets(limits.unwrap_or_default(), &budgets)),
            }
        };
        settings.limits = explicit.clone().or_else(|| {
            budgeted(
                grant.limits(grants.tool_limits.clone()),
                grants.tool_budgets,
            )
        });
        let plugin = runtime.load_plugin(wasm.clone(), settings.clone()).await?;
        if let Plugin::Agent(_) = plugin {
            let agent_limits = explicit.or_else(|| {
                budgeted(
                    grant.limits(grants.agent_limits.clone()),
                    grants.agent_budgets,
                )
            });
            if agent_limits != settings.limits {
                // Reload with agent limits; the component comes from the cache.
                settings.limits = agent_limits;
                return Ok(Plugin::Agent(runtime.load_agent(wasm, settings).await?));
            }
        }
        Ok(plugin)
    }

    /// Adds a loaded plugin with its grants; `version` says how clients see
    /// it (by default the start of its component's hash).
    pub fn add(&mut self, plugin: Plugin, grants: &Grants, version: Option<VersionTag>) {
        match plugin {
            Plugin::Tool(tool) => self.add_tool(tool),
            Plugin::Agent(agent) => {
                let name = agent.descriptor().name.clone();
                if !self.add_agent(agent, grants) {
                    return;
                }
                if let (Some(tag), Some(entry)) = (version, self.agents.get_mut(&name)) {
                    entry.version = tag.label;
                    entry.digest = Some(tag.digest);
                }
            }
        }
    }

    /// Tool and agent names two plugins provide, in the order found.
    pub fn conflicts(&self) -> &[Conflict] {
        &self.conflicts
    }

    /// Adds every tool of a tool plugin; a name already taken keeps its
    /// first provider.
    pub fn add_tool(&mut self, plugin: ToolPlugin) {
        for descriptor in plugin.tools() {
            if let Some(existing) = self.tools.get(&descriptor.name) {
                tracing::warn!(
                    tool = %descriptor.name,
                    kept = %existing.plugin.name(),
                    ignored = %plugin.name(),
                    "two plugins provide the same tool"
                );
                self.conflicts.push(Conflict {
                    kind: "tool",
                    name: descriptor.name.clone(),
                    kept: existing.plugin.name().to_string(),
                    ignored: plugin.name().to_string(),
                });
                continue;
            }
            self.tools.insert(
                descriptor.name.clone(),
                ToolEntry {
                    plugin: plugin.clone(),
                    descriptor: descriptor.clone(),
                },
            );
        }
    }

    /// Adds an agent with its grants. An agent name another plugin already
    /// provides is a conflict, recorded like a tool name two plugins provide:
    /// the plugin named like the agent keeps it, else the first added does
    /// (so which one serves does not depend on load order in the common
    /// case). False if this plugin's agent is not added.
    pub fn add_agent(&mut self, plugin: AgentPlugin, grants: &Grants) -> bool {
        let name = plugin.descriptor().name.clone();
        if let Some(existing) = self.agents.get(&name)
            && existing.plugin.name() != plugin.name()
        {
            let replace = plugin.name() == name;
            let (kept, ignored) = if replace {
                (plugin.name(), existing.plugin.name())
            } else {
                (existing.plugin.name(), plugin.name())
            };
            tracing::warn!(agent = %name, %kept, %ignored, "two plugins provide the same agent");
            self.conflicts.push(Conflict {
                kind: "agent",
                name: name.clone(),
                kept: kept.to_string(),
                ignored: ignored.to_string(),
            });
            if !replace {
                return false;
            }
        }
        let version = format!("sha256:{}", &plugin.digest()[..12]);
        let allowed_tools = grants
            .agent_tools
            .get(plugin.name())
            .or_else(|| grants.agent_tools.get(&name))
            .cloned()
            .or_else(|| grants.deny_unlisted.then(BTreeSet::new));
        let llm = grants
            .agent_llm
            .get(plugin.name())
            .cloned()
            .unwrap_or_default();
        let budgets = grants
            .plugins
            .get(plugin.name())
            .map_or(grants.agent_budgets, |g| {
                g.budgets.over(grants.agent_budgets)
            });
        self.agents.insert(
            name,
            AgentEntry {
                plugin,
                version,
                digest: None,
                allowed_tools,
                llm,
                budgets,
            },
        );
        true
    }

    /// The tool called `name`.
    pub fn tool(&self, name: &str) -> Option<&ToolEntry> {
        self.tools.get(name)
    }

    /// The agent called `name`.
    pub fn agent(&self, name: &str) -> Option<&AgentEntry> {
        self.agents.get(name)
    }

    /// Every agent, by name.
    pub fn agents(&self) -> impl Iterator<Item = &AgentEntry> {
        self.agents.values()
    }

    /// Every tool, by name.
    pub fn tools(&self) -> impl Iterator<Item = &ToolEntry> {
        self.tools.values()
    }

    /// The tools `agent` may call.
    pub fn tools_for(&self, agent: &AgentEntry) -> BTreeMap<String, ToolEntry> {
        self.tools
            .iter()
            .filter(|(name, _)| {
                agent
                    .allowed_tools
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(*name))
            })
            .map(|(name, entry)| (name.clone(), entry.clone()))
            .collect()
    }
}
