//! `GET /readyz` and `POST /v1/admin/self-check`: the dependency graph's
//! nodes, the endpoints' breakers and the golden path.

use serde::{Deserialize, Serialize};

/// A node's state in `/readyz`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Serving.
    Ready,
    /// Loaded, but something it needs is missing, refused, ungranted or
    /// down: its runs fail fast.
    Degraded,
    /// Not loaded.
    Refused,
}

impl NodeState {
    /// `ready`, `degraded` or `refused`, as `/readyz` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Degraded => "degraded",
            Self::Refused => "refused",
        }
    }
}

/// What a node of the dependency graph is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The store.
    Store,
    /// An LLM provider.
    Llm,
    /// An agent plugin.
    Agent,
    /// A tool plugin.
    Tool,
    /// A plugin whose kind is not known (it did not load).
    Plugin,
}

impl NodeKind {
    /// As `/readyz` writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Llm => "llm",
            Self::Agent => "agent",
            Self::Tool => "tool",
            Self::Plugin => "plugin",
        }
    }
}

/// One node of the graph with its live state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// `store`, `llm.NAME` or `plugin.NAME`.
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// Its state.
    pub state: NodeState,
    /// Why it is not ready; empty when ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The nodes it depends on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Notes that do not change its state (e.g. no manifest).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Where an endpoint's circuit breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go out.
    Closed,
    /// Calls are refused until the open period is over.
    Open,
    /// One trial call at a time decides between closed and open.
    HalfOpen,
}

/// One endpoint and its breaker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// Its name (`llm.NAME`).
    pub name: String,
    /// The base URL as configured.
    pub url: String,
    /// The breaker's state.
    pub state: BreakerState,
    /// The breaker is closed and a probe or call has succeeded since it
    /// closed. An endpoint never checked is not healthy; failures below the
    /// threshold do not make it unhealthy.
    pub healthy: bool,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The reason of the most recent failure, kept after a recovery.
    pub last_error: Option<String>,
    /// Time since the last probe finished; `None` before the first probe.
    pub last_checked_ms_ago: Option<u64>,
    /// Probes done (real calls reported to the breaker are not counted).
    pub checks: u64,
}

/// The golden path's latest result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum GoldenPathResult {
    /// None is configured (`[health.golden_path]`).
    NotConfigured,
    /// Not run yet.
    Pending {
        /// The agent it will run.
        agent: String,
    },
    /// The run completed and called tools.
    Passed {
        /// The agent.
        agent: String,
        /// The run.
        run_id: String,
        /// The tools it called.
        tools: Vec<String>,
        /// How long it took.
        duration_ms: u64,
        /// When it ended.
        at: String,
    },
    /// It did not pass.
    Failed {
        /// The agent.
        agent: String,
        /// The run, if one started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
        /// Why.
        reason: String,
        /// When it ended.
        at: String,
    },
}

/// The golden path's state alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoldenPathState {
    /// See [`GoldenPathResult::NotConfigured`].
    NotConfigured,
    /// See [`GoldenPathResult::Pending`].
    Pending,
    /// See [`GoldenPathResult::Passed`].
    Passed,
    /// See [`GoldenPathResult::Failed`].
    Failed,
}

impl GoldenPathResult {
    /// Whether it lets the host be ready.
    pub fn is_ok(&self) -> bool {
        matches!(self, Self::NotConfigured | Self::Passed { .. })
    }

    /// Its state alone.
    pub fn state(&self) -> GoldenPathState {
        match self {
            Self::NotConfigured => GoldenPathState::NotConfigured,
            Self::Pending { .. } => GoldenPathState::Pending,
            Self::Passed { .. } => GoldenPathState::Passed,
            Self::Failed { .. } => GoldenPathState::Failed,
        }
    }
}

/// The `/readyz` body for an admin: everything, with reasons, paths and
/// endpoint URLs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadyReport {
    /// Whether the host is ready to serve.
    pub ready: bool,
    /// The golden path's latest result.
    pub golden_path: GoldenPathResult,
    /// Every node of the dependency graph.
    pub nodes: Vec<NodeStatus>,
    /// Every endpoint.
    pub endpoints: Vec<EndpointStatus>,
}

/// The `/readyz` body for anyone else: states only (no paths, URLs,
/// reasons or messages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublicReadyReport {
    /// Whether the host is ready to serve.
    pub ready: bool,
    /// The golden path's state.
    pub golden_path: StateOnly<GoldenPathState>,
    /// Every node's id and state.
    #[serde(default)]
    pub nodes: Vec<NodeSummary>,
    /// Every endpoint's name and breaker state.
    #[serde(default)]
    pub endpoints: Vec<EndpointSummary>,
}

/// `{"state": ...}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateOnly<S> {
    /// The state.
    pub state: S,
}

/// A node's id and state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// See [`NodeStatus::id`].
    pub id: String,
    /// See [`NodeStatus::state`].
    pub state: NodeState,
}

/// An endpoint's name and breaker state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSummary {
    /// See [`EndpointStatus::name`].
    pub name: String,
    /// See [`EndpointStatus::state`].
    pub state: BreakerState,
}

impl ReadyReport {
    /// What anyone may see of it.
    pub fn public(&self) -> PublicReadyReport {
        PublicReadyReport {
            ready: self.ready,
            golden_path: StateOnly {
                state: self.golden_path.state(),
            },
            nodes: self
                .nodes
                .iter()
                .map(|node| NodeSummary {
                    id: node.id.clone(),
                    state: node.state,
                })
                .collect(),
            endpoints: self
                .endpoints
                .iter()
                .map(|endpoint| EndpointSummary {
                    name: endpoint.name.clone(),
                    state: endpoint.state,
                })
                .collect(),
        }
    }
}
