//! What each plugin gets, decided from the manifests and the configuration
//! before anything is loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use netra_config::{Config, Manifest, PluginConfig};
use netra_runtime::{DirGrant, KvStore, Limits, Sandbox};

use crate::deps::{PluginNode, start_order};
use crate::registry::{Grants, PluginGrant};

/// A plugin offered to [`plan`]: its name and its manifest.
pub struct Offered<'a> {
    /// The plugin's name (its file stem).
    pub name: &'a str,
    /// Its manifest's text, if it has one.
    pub manifest: Option<&'a str>,
    /// Where the manifest came from, for messages (a file, `upload`).
    pub origin: &'a str,
}

/// The decision for every plugin offered.
pub struct PluginPlan {
    /// Every plugin, with its needs and, if refused, why.
    pub nodes: Vec<PluginNode>,
    /// The grant of every plugin with a manifest or a `[plugin.NAME]` section.
    pub grants: BTreeMap<String, PluginConfig>,
    /// Per agent plugin: the tools it may call.
    pub agent_tools: BTreeMap<String, BTreeSet<String>>,
    /// Whether agents without a tools grant get none.
    pub deny_unlisted: bool,
    /// Refused plugins: not loaded.
    pub skip: BTreeSet<String>,
    /// Load order.
    pub order: Vec<String>,
}

/// The plugins in `dir` (`NAME.wasm`, with `NAME.toml` if there is one), by name.
pub fn scan_dir(dir: &Path) -> Vec<(String, Option<String>)> {
    let mut stems: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wasm"))
        .filter_map(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    stems.sort();
    stems
        .into_iter()
        .map(|stem| {
            let manifest = std::fs::read_to_string(dir.join(format!("{stem}.toml"))).ok();
            (stem, manifest)
        })
        .collect()
}

/// Compares each offered plugin's needs (its manifest) with its grant. With
/// a configuration file the grant is what `[plugin.NAME]` says (deny by
/// default: an agent with no `tools` list calls no tool); without one (dev
/// mode) a plugin's manifest grants the tools and agents it needs, and an
/// agent without a manifest may call every tool. Files, environment and
/// network are only ever granted by the configuration. `disabled` plugins
/// are refused.
pub fn plan(config: &Config, offered: &[Offered<'_>], disabled: &BTreeSet<String>) -> PluginPlan {
    let dev = config.file.is_none();
    let mut plan = PluginPlan {
        nodes: Vec::new(),
        grants: config.plugin.clone(),
        agent_tools: BTreeMap::new(),
        deny_unlisted: !dev,
        skip: BTreeSet::new(),
        order: Vec::new(),
    };
    for offer in offered {
        let name = offer.name;
        let mut node = PluginNode {
            name: name.to_string(),
            ..PluginNode::default()
        };
        let grant = config.plugin.get(name);
        if grant.is_some_and(|g| !g.enabled) {
            node.refused
                .push(format!("disabled (plugin.{name}.enabled = false)"));
        }
        if disabled.contains(name) {
            node.refused.push("disabled by an operator".to_string());
        }
        if let Some(text) = offer.manifest {
            node.manifest = true;
            match Manifest::parse(text) {
                Err(problems) => node.refused.extend(problems.0.iter().map(|p| {
                    if p.path.is_empty() {
                        format!("invalid manifest: {}: {}", offer.origin, p.message)
                    } else {
                        format!("invalid manifest: {}: {p}", offer.origin)
                    }
                })),
                Ok(manifest) if manifest.name != name => node.refused.push(format!(
                    "its manifest names it {:?}, but the plugin is {name}",
                    manifest.name
                )),
                Ok(manifest) => {
                    let defaults = match manifest.kind {
                        netra_config::PluginKind::Agent => config.limits.agent,
                        netra_config::PluginKind::Tool => config.limits.tool,
                    };
                    let mut grant = grant.cloned().unwrap_or_default();
                    if dev && grant.tools.is_none() {
                        grant.tools = Some(
                            manifest
                                .needs
                                .tools
                                .iter()
                                .chain(&manifest.needs.agents)
                                .cloned()
                                .collect(),
                        );
                    }
                    let granted = grant.limits.over(defaults);
                    let missing =
                        netra_config::manifest::ungranted(&manifest, Some(&grant), granted);
                    if !missing.is_empty() {
                        match config.plugins.ungranted {
                            netra_config::Ungranted::Refuse => node.refused.extend(missing),
                            netra_config::Ungranted::Degrade => node.ungranted = missing,
                        }
                    }
                    // The plugin runs with the tighter of asked and granted.
                    let limits = netra_config::manifest::effective_limits(&manifest, granted);
                    grant.limits = netra_config::LimitOverrides {
                        memory: Some(limits.memory),
                        deadline: Some(limits.deadline),
                        fuel: limits.fuel,
                        budgets: limits.budgets.fixed(),
                    };
                    node.kind = Some(manifest.kind.as_str().to_string());
                    node.version = Some(manifest.version.clone());
                    node.needs_tools = manifest.needs.tools.clone();
                    node.needs_agents = manifest.needs.agents.clone();
                    node.needs_llm = manifest.needs.llm_providers();
                    plan.grants.insert(name.to_string(), grant);
                }
            }
        }
        if let Some(tools) = plan.grants.get(name).and_then(|g| g.tools.clone()) {
            plan.agent_tools.insert(name.to_string(), tools);
        }
        if !node.refused.is_empty() {
            plan.skip.insert(name.to_string());
        }
        plan.nodes.push(node);
    }
    plan.order = start_order(&plan.nodes);
    plan
}

/// The runtime grants of `plan` under `config`; plugins' kv is `kv`.
pub fn grants(config: &Config, plan: &PluginPlan, kv: Option<Arc<dyn KvStore>>) -> Grants {
    let runtime_limits = |limits: netra_config::PluginLimits| Limits {
        memory_bytes: usize::try_from(limits.memory).unwrap_or(usize::MAX),
        deadline: limits.deadline,
        fuel: limits.fuel,
        ..crate::registry::with_budgets(Limits::default(), &limits.budgets)
    };
    Grants {
        agent_tools: plan.agent_tools.clone(),
        agent_llm: plan
            .grants
            .iter()
            .filter(|(_, grant)| !grant.llm.is_empty())
            .map(|(name, grant)| (name.clone(), grant.llm.clone()))
            .collect(),
        deny_unlisted: plan.deny_unlisted,
        skip: plan.skip.clone(),
        order: plan.order.clone(),
        limits: BTreeMap::new(),
        agent_limits: Some(runtime_limits(config.limits.agent)),
        tool_limits: Some(runtime_limits(config.limits.tool)),
        agent_budgets: config.limits.agent.budgets,
        tool_budgets: config.limits.tool.budgets,
        kv,
        plugins: plan
            .grants
            .iter()
            .map(|(name, plugin)| {
                let grant = PluginGrant {
                    config: plugin.config.clone(),
                    kv: plugin.kv,
                    memory_bytes: plugin
                        .limits
                        .memory
                        .map(|m| usize::try_from(m).unwrap_or(usize::MAX)),
                    deadline: plugin.limits.deadline,
                    fuel: plugin.limits.fuel,
                    budgets: plugin.limits.budgets,
                    sandbox: sandbox(name, plugin),
                };
                (name.clone(), grant)
            })
            .collect(),
    }
}

/// The directories and environment variables a plugin's grant lists; a
/// granted variable the host does not have is left out, with a warning.
fn sandbox(name: &str, plugin: &PluginConfig) -> Sandbox {
    let env = plugin
        .env
        .iter()
        .filter_map(|var| match std::env::var(var) {
            Ok(value) => Some((var.clone(), value)),
            Err(_) => {
                tracing::warn!(plugin = name, "granted ${var}, which is not set");
                None
            }
        })
        .collect();
    let dirs = plugin
        .files
        .iter()
        .map(|grant| DirGrant {
            host: grant.host.clone(),
            guest: grant.guest.clone(),
            writable: grant.writable,
        })
        .collect();
    Sandbox {
        env,
        dirs,
        network: plugin.network.clone(),
    }
}
