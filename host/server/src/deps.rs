//! The dependency graph: plugins, the LLM providers and their endpoints, and
//! the store, with edges from what each plugin needs.
//!
//! Built once the plugins are loaded. Structural problems (a needed tool no
//! plugin provides, an agent that is not loaded, an unknown provider, a cycle
//! of agents delegating to each other, a need the operator did not grant)
//! degrade the plugin and, through the edges, everything that needs it.
//! Endpoint health is read live from [`Health`]: while a provider's breaker
//! is open, every plugin that needs it (directly or through a tool or a
//! delegated agent) is degraded, and its runs fail fast with
//! `dependency_unavailable`. Nothing here ever stops the host.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::health::Health;
use crate::protocol::ready::{BreakerState, NodeKind, NodeState, NodeStatus};
use crate::registry::Registry;

/// One plugin file, as the graph sees it (from its manifest, if any).
#[derive(Clone, Debug, Default)]
pub struct PluginNode {
    /// The file's stem.
    pub name: String,
    /// `agent` or `tool`, when known (from the manifest or the loaded component).
    pub kind: Option<String>,
    /// The manifest's version.
    pub version: Option<String>,
    /// Whether it has a manifest (without one its needs are unknown).
    pub manifest: bool,
    /// Tools it calls.
    pub needs_tools: BTreeSet<String>,
    /// Agents it delegates to.
    pub needs_agents: BTreeSet<String>,
    /// LLM providers it calls.
    pub needs_llm: BTreeSet<String>,
    /// Why it was not loaded (refused, or failed to load); empty if loaded.
    pub refused: Vec<String>,
    /// Needs the operator did not grant (loaded degraded).
    pub ungranted: Vec<String>,
}

/// Why a run cannot start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unavailable {
    /// What is missing or down, in a sentence.
    pub reason: String,
    /// True when the cause is an endpoint that may come back.
    pub retryable: bool,
}

struct Node {
    kind: NodeKind,
    /// Problems of the node itself (not inherited).
    reasons: Vec<String>,
    refused: bool,
    /// Node ids it depends on.
    needs: Vec<String>,
    notes: Vec<String>,
    /// The cycle it is in (an index into the cycles found), if any.
    cycle: Option<usize>,
}

impl Node {
    /// A node of `kind` that needs `needs`, with no problems yet.
    fn new(kind: NodeKind, needs: Vec<String>) -> Self {
        Self {
            kind,
            reasons: Vec::new(),
            refused: false,
            needs,
            notes: Vec::new(),
            cycle: None,
        }
    }
}

/// The graph.
pub struct Dependencies {
    nodes: BTreeMap<String, Node>,
    /// Plugin nodes in start order: every node after what it needs; the
    /// members of cycles last.
    order: Vec<String>,
    /// Per agent name: the plugin node that serves it.
    agents: BTreeMap<String, String>,
    /// Per plugin node: its structural problems including inherited ones.
    blocked: BTreeMap<String, Vec<String>>,
    /// Per plugin node: the endpoints it needs, directly or not.
    endpoints: BTreeMap<String, BTreeSet<String>>,
    health: Arc<Health>,
}

/// The endpoint (and node) id of the LLM provider `name`.
pub fn llm_node(name: &str) -> String {
    format!("llm.{name}")
}

fn plugin_node(name: &str) -> String {
    format!("plugin.{name}")
}

impl Dependencies {
    /// The graph of `plugins` (every plugin file, loaded or not) as served by
    /// `registry`, with the configured LLM `providers` (checked by `health`)
    /// and the store (`store` describes it).
    pub fn build(
        registry: &Registry,
        plugins: Vec<PluginNode>,
        providers: &BTreeSet<String>,
        health: Arc<Health>,
        store: &str,
    ) -> Self {
        let mut nodes = BTreeMap::new();
        let mut store_node = Node::new(NodeKind::Store, Vec::new());
        store_node.notes.push(store.to_string());
        nodes.insert("store".to_string(), store_node);
        for provider in providers {
            nodes.insert(llm_node(provider), Node::new(NodeKind::Llm, Vec::new()));
        }
        // Who serves what, among the loaded plugins.
        let tool_owner: BTreeMap<&str, &str> = registry
            .tools()
            .map(|t| (t.descriptor.name.as_str(), t.plugin.name()))
            .collect();
        let mut agents = BTreeMap::new();
        for agent in registry.agents() {
            agents.insert(
                agent.plugin.descriptor().name.clone(),
                plugin_node(agent.plugin.name()),
            );
        }
        for plugin in &plugins {
            let id = plugin_node(&plugin.name);
            let mut reasons = plugin.ungranted.clone();
            let mut needs = BTreeSet::new();
            let loaded = plugin.refused.is_empty();
            let kind = match plugin.kind.as_deref() {
                Some("agent") => NodeKind::Agent,
                Some("tool") => NodeKind::Tool,
                _ => NodeKind::Plugin,
            };
            if kind == NodeKind::Agent {
                needs.insert("store".to_string());
            }
            for tool in &plugin.needs_tools {
                match tool_owner.get(tool.as_str()) {
                    Some(owner) => {
                        needs.insert(plugin_node(owner));
                    }
                    None => reasons.push(format!(
                        "needs tool {tool:?}, which no loaded plugin provides"
                    )),
                }
            }
            for agent in &plugin.needs_agents {
                match agents.get(agent) {
                    Some(node) => {
                        needs.insert(node.clone());
                    }
                    None => reasons.push(format!("needs agent {agent:?}, which is not loaded")),
                }
            }
            for provider in &plugin.needs_llm {
                if providers.contains(provider) {
                    needs.insert(llm_node(provider));
                } else {
                    reasons.push(format!(
                        "needs LLM provider {provider:?}, which is not configured ([llm.{provider}])"
                    ));
                }
            }
            let mut notes = Vec::new();
            if loaded && !plugin.manifest {
                notes.push("no manifest: its needs are unknown".to_string());
            }
            if let Some(version) = &plugin.version {
                notes.push(format!("version {version}"));
            }
            let mut node = Node::new(kind, needs.into_iter().collect());
            node.reasons = if loaded {
                reasons
            } else {
                plugin.refused.clone()
            };
            node.refused = !loaded;
            node.notes = notes;
            nodes.insert(id, node);
        }
        let (order, cycles) = topological(&nodes);
        for (index, cycle) in cycles.into_iter().enumerate() {
            let path = cycle
                .iter()
                .chain(cycle.first())
                .map(|id| id.trim_start_matches("plugin."))
                .collect::<Vec<_>>()
                .join(" -> ");
            for id in &cycle {
                if let Some(node) = nodes.get_mut(id) {
                    node.reasons.push(format!("in a dependency cycle: {path}"));
                    node.cycle = Some(index);
                }
            }
        }
        let mut graph = Self {
            nodes,
            order,
            agents,
            blocked: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            health,
        };
        graph.propagate();
        graph
    }

    /// Computes, in start order, each plugin's structural problems with
    /// those of what it needs, and the endpoints it needs transitively.
    fn propagate(&mut self) {
        // Nodes behind a cycle come after it in no particular order: repeat
        // until nothing changes (at most once per node).
        for _ in 0..=self.order.len() {
            let before = self.blocked.clone();
            self.propagate_once();
            if self.blocked == before {
                break;
            }
        }
    }

    fn propagate_once(&mut self) {
        for id in self.order.clone() {
            let Some(node) = self.nodes.get(&id) else {
                continue;
            };
            let mut blocked = node.reasons.clone();
            let mut endpoints = BTreeSet::new();
            for need in &node.needs {
                if need.starts_with("llm.") {
                    endpoints.insert(need.clone());
                    continue;
                }
                if let Some(problems) = self.blocked.get(need)
                    && !problems.is_empty()
                    && !self.same_cycle(&id, need)
                {
                    blocked.push(format!(
                        "needs {need}, which is {}",
                        if self.nodes.get(need).is_some_and(|n| n.refused) {
                            "refused"
                        } else {
                            "degraded"
                        }
                    ));
                }
                if let Some(theirs) = self.endpoints.get(need) {
                    endpoints.extend(theirs.iter().cloned());
                }
            }
            self.blocked.insert(id.clone(), blocked);
            self.endpoints.insert(id, endpoints);
        }
    }

    /// Whether `a` and `b` are in one cycle (each already says so).
    fn same_cycle(&self, a: &str, b: &str) -> bool {
        let cycle = |id: &str| self.nodes.get(id).and_then(|n| n.cycle);
        cycle(a).is_some_and(|c| cycle(b) == Some(c))
    }

    /// The structural problems of plugin `name` (its own and those of what
    /// it needs; endpoint health aside); empty when it is whole or unknown.
    pub fn problems(&self, name: &str) -> &[String] {
        self.blocked
            .get(&plugin_node(name))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether plugin `name` is in the graph and was refused.
    pub fn is_refused(&self, name: &str) -> bool {
        self.nodes
            .get(&plugin_node(name))
            .is_some_and(|n| n.refused)
    }

    /// Plugin node ids in start order.
    pub fn order(&self) -> &[String] {
        &self.order
    }

    /// Whether a run of `agent` may start now; fast (no I/O).
    pub fn check_agent(&self, agent: &str) -> Result<(), Unavailable> {
        let Some(id) = self.agents.get(agent) else {
            return Ok(());
        };
        if let Some(problems) = self.blocked.get(id)
            && let Some(first) = problems.first()
        {
            return Err(Unavailable {
                reason: format!(
                    "agent {agent} is degraded: {}",
                    problems_text(problems, first)
                ),
                retryable: false,
            });
        }
        for endpoint in self.endpoints.get(id).into_iter().flatten() {
            if self.health.state(endpoint) == Some(BreakerState::Open) {
                let why = self
                    .endpoint_reason(endpoint)
                    .unwrap_or_else(|| "breaker open".into());
                return Err(Unavailable {
                    reason: format!("agent {agent} needs {endpoint}, which is unavailable: {why}"),
                    retryable: true,
                });
            }
        }
        Ok(())
    }

    fn endpoint_reason(&self, endpoint: &str) -> Option<String> {
        self.health
            .snapshot()
            .into_iter()
            .find(|status| status.name == endpoint)
            .map(|status| {
                let error = status.last_error.unwrap_or_else(|| "failing".into());
                format!("{error} (breaker open)")
            })
    }

    /// Every node with its live state, in id order.
    pub fn statuses(&self) -> Vec<NodeStatus> {
        let endpoints: BTreeMap<String, _> = self
            .health
            .snapshot()
            .into_iter()
            .map(|status| (status.name.clone(), status))
            .collect();
        let mut out = Vec::new();
        for (id, node) in &self.nodes {
            let mut reasons = self
                .blocked
                .get(id)
                .cloned()
                .unwrap_or_else(|| node.reasons.clone());
            if let Some(status) = endpoints.get(id)
                && status.state == BreakerState::Open
            {
                reasons.push(format!(
                    "{} (breaker open)",
                    status
                        .last_error
                        .clone()
                        .unwrap_or_else(|| "failing".into())
                ));
            }
            for endpoint in self.endpoints.get(id).into_iter().flatten() {
                if endpoints
                    .get(endpoint)
                    .is_some_and(|s| s.state == BreakerState::Open)
                {
                    reasons.push(format!("needs {endpoint}, which is unavailable"));
                }
            }
            let state = if node.refused {
                NodeState::Refused
            } else if reasons.is_empty() {
                NodeState::Ready
            } else {
                NodeState::Degraded
            };
            out.push(NodeStatus {
                id: id.clone(),
                kind: node.kind,
                state,
                reasons,
                needs: node.needs.clone(),
                notes: node.notes.clone(),
            });
        }
        out
    }
}

/// The order to load `plugins` in, before anything is loaded: tools (and
/// plugins of unknown kind) first, then agents, each after the agents it
/// delegates to (agent names are taken to be plugin names here); members of
/// cycles last.
pub fn start_order(plugins: &[PluginNode]) -> Vec<String> {
    let names: BTreeSet<&str> = plugins.iter().map(|p| p.name.as_str()).collect();
    let mut nodes = BTreeMap::new();
    for plugin in plugins {
        let mut needs: Vec<String> = plugin
            .needs_agents
            .iter()
            .filter(|a| names.contains(a.as_str()))
            .map(|a| plugin_node(a))
            .collect();
        if plugin.kind.as_deref() == Some("agent") {
            // Every tool plugin before any agent.
            needs.extend(
                plugins
                    .iter()
                    .filter(|p| p.kind.as_deref() != Some("agent"))
                    .map(|p| plugin_node(&p.name)),
            );
        }
        nodes.insert(
            plugin_node(&plugin.name),
            Node::new(NodeKind::Plugin, needs),
        );
    }
    let (order, _) = topological(&nodes);
    order
        .into_iter()
        .map(|id| id.trim_start_matches("plugin.").to_string())
        .collect()
}

fn problems_text(problems: &[String], first: &str) -> String {
    match problems.len() {
        1 => first.to_string(),
        n => format!("{first} (and {} more)", n - 1),
    }
}

/// Kahn's algorithm over the plugin nodes: every node after its needs.
/// Nodes left over are in or behind a cycle; the cycles among them are
/// returned as paths.
fn topological(nodes: &BTreeMap<String, Node>) -> (Vec<String>, Vec<Vec<String>>) {
    let plugins: Vec<&String> = nodes
        .keys()
        .filter(|id| id.starts_with("plugin."))
        .collect();
    let mut waiting: BTreeMap<&str, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for id in &plugins {
        let needs: Vec<&str> = nodes[*id]
            .needs
            .iter()
            .filter(|n| n.starts_with("plugin.") && nodes.contains_key(*n))
            .map(String::as_str)
            .collect();
        waiting.insert(id.as_str(), needs.len());
        for need in needs {
            dependents.entry(need).or_default().push(id.as_str());
        }
    }
    let mut ready: Vec<&str> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(id, _)| *id)
        .collect();
    let mut order = Vec::new();
    while let Some(id) = ready.pop() {
        order.push(id.to_string());
        for dependent in dependents.get(id).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(dependent) {
                *n -= 1;
                if *n == 0 {
                    ready.push(dependent);
                }
            }
        }
    }
    let left: BTreeSet<&str> = waiting
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(id, _)| *id)
        .collect();
    let cycles = cycles(nodes, &left);
    order.extend(left.iter().map(|id| id.to_string()));
    (order, cycles)
}

/// The distinct cycles among `left`, each as the path of its members.
fn cycles(nodes: &BTreeMap<String, Node>, left: &BTreeSet<&str>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    let mut in_cycle: BTreeSet<String> = BTreeSet::new();
    for start in left {
        if in_cycle.contains(*start) {
            continue;
        }
        // Follow needs inside `left` until a node repeats: that is a cycle.
        let mut path: Vec<String> = vec![start.to_string()];
        let mut current = start.to_string();
        loop {
            let next = nodes[&current]
                .needs
                .iter()
                .find(|n| left.contains(n.as_str()))
                .cloned();
            let Some(next) = next else { break };
            if let Some(at) = path.iter().position(|p| *p == next) {
                let cycle = path[at..].to_vec();
                if cycle.iter().all(|id| !in_cycle.contains(id)) {
                    in_cycle.extend(cycle.iter().cloned());
                    found.push(cycle);
                }
                break;
            }
            path.push(next.clone());
            current = next;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(needs: &[&str]) -> Node {
        Node::new(
            NodeKind::Agent,
            needs.iter().map(|s| s.to_string()).collect(),
        )
    }

    #[test]
    fn order_puts_needs_first_and_finds_cycles_with_their_path() {
        let nodes = BTreeMap::from([
            ("plugin.a".to_string(), node(&["plugin.b", "store"])),
            ("plugin.b".to_string(), node(&["plugin.c"])),
            ("plugin.c".to_string(), node(&[])),
            ("plugin.x".to_string(), node(&["plugin.y"])),
            ("plugin.y".to_string(), node(&["plugin.x"])),
            ("plugin.z".to_string(), node(&["plugin.x"])),
            ("store".to_string(), node(&[])),
        ]);
        let (order, cycles) = topological(&nodes);
        let at = |id: &str| order.iter().position(|o| o == id).expect("in order");
        assert!(at("plugin.c") < at("plugin.b") && at("plugin.b") < at("plugin.a"));
        assert_eq!(order.len(), 6);
        assert_eq!(
            cycles,
            vec![vec!["plugin.x".to_string(), "plugin.y".to_string()]]
        );
    }
}
