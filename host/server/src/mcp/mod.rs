//! MCP: the served tools, and optionally agents, for any MCP client, through
//! the official Rust SDK (`rmcp`). Streamable HTTP on `/mcp` ([`http`]) and
//! stdio (`netra mcp`) share one [`Handler`]: a tool call is one fresh
//! instance of the tool's plugin ([`call`]); an agent call is a full run in
//! the run log ([`agent`]).
//!
//! What is exposed is decided by the operator (`[mcp] tools`, `agents`) and
//! read from the registry serving now, so a hot-load changes it at once;
//! sessions then get `notifications/tools/list_changed`.

// MCP logging (`logging/setLevel`, `notifications/message`) is in the
// 2025-11-25 revision netra serves; rmcp marks it deprecated for 2026-07-28.
#![allow(deprecated)]

mod agent;
mod ask;
mod call;
mod handler;
pub mod http;
pub mod wire;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netra_config::Exposed;
use rmcp::model::{JsonObject, Tool};
use rmcp::service::{Peer, RoleServer};
use tokio_util::sync::CancellationToken;

pub use handler::Handler;

use crate::lock;
use crate::registry::Registry;
use crate::runs::Runs;

/// The arguments of an agent called as an MCP tool.
const AGENT_SCHEMA: &str = r#"{"type":"object","properties":{"input":{"type":"string","description":"The task or message for the agent, in words."},"thread_id":{"type":"string","description":"Continue this thread (from an earlier call's result) instead of starting a new one."}},"required":["input"]}"#;

/// The result of an agent called as an MCP tool.
const AGENT_OUTPUT_SCHEMA: &str = r#"{"type":"object","properties":{"output":{"type":"string"},"run_id":{"type":"string"},"thread_id":{"type":"string"}},"required":["output","run_id","thread_id"]}"#;

/// What MCP clients are served, from `[mcp]`.
#[derive(Clone, Debug)]
pub struct McpSettings {
    /// The tools clients may list and call.
    pub tools: Exposed,
    /// The agents clients may call as tools.
    pub agents: Exposed,
    /// Tools per `tools/list` page.
    pub page_size: usize,
    /// Log and progress notifications one call may send.
    pub max_notifications_per_call: u64,
    /// `Host` values `/mcp` answers; empty turns the check off.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed besides loopback ones.
    pub allowed_origins: Vec<String>,
    /// Whether clients of revisions with sessions get one.
    pub sessions: bool,
    /// Sessions one user may hold.
    pub max_sessions_per_user: usize,
    /// Sessions the host holds.
    pub max_sessions: usize,
    /// An idle session ends after this.
    pub session_idle_timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            tools: Exposed::All,
            agents: Exposed::All,
            page_size: 100,
            max_notifications_per_call: 1000,
            allowed_hosts: loopback_hosts(),
            allowed_origins: Vec::new(),
            sessions: true,
            max_sessions_per_user: 64,
            max_sessions: 10_000,
            session_idle_timeout: Duration::from_secs(600),
            max_body_bytes: 1 << 20,
        }
    }
}

/// The host names every `/mcp` answers to.
pub fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]", "::1"]
        .map(String::from)
        .to_vec()
}

/// What the MCP side of the host shares: the runs, the settings, and the
/// connected sessions (for `list_changed`).
pub struct Mcp {
    pub(crate) runs: Arc<Runs>,
    settings: McpSettings,
    /// Sessions to tell when the exposed set changes.
    peers: Mutex<Vec<Peer<RoleServer>>>,
    /// The exposed names at the last change notice.
    exposed: Mutex<BTreeSet<String>>,
    /// Sessions that set a log level (their calls send notifications).
    logging: Mutex<std::collections::HashSet<String>>,
}

/// One exposed tool: a tool of a plugin, or an agent run as a tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tool,
    Agent,
}

impl Mcp {
    /// MCP over `runs`' plugins, as `settings` say.
    pub fn new(runs: Arc<Runs>, settings: McpSettings) -> Arc<Self> {
        let mcp = Arc::new(Self {
            runs,
            settings,
            peers: Mutex::new(Vec::new()),
            exposed: Mutex::new(BTreeSet::new()),
            logging: Mutex::new(Default::default()),
        });
        let now = mcp.exposed_names(&mcp.runs.registry());
        *lock(&mcp.exposed) = now;
        mcp
    }

    /// The settings.
    pub fn settings(&self) -> &McpSettings {
        &self.settings
    }

    /// What `name` is, if it is exposed in `registry`.
    fn kind(&self, registry: &Registry, name: &str) -> Option<Kind> {
        if self.settings.tools.contains(name) && registry.tool(name).is_some() {
            return Some(Kind::Tool);
        }
        if self.settings.agents.contains(name) && registry.agent(name).is_some() {
            return Some(Kind::Agent);
        }
        None
    }

    /// Every name MCP clients see now, sorted.
    pub fn exposed(&self) -> Vec<String> {
        let registry = self.runs.registry();
        self.exposed_names(&registry).into_iter().collect()
    }

    /// Every exposed name, sorted: tools, then agents not named like a tool.
    fn exposed_names(&self, registry: &Registry) -> BTreeSet<String> {
        let tools = registry
            .tools()
            .map(|t| &t.descriptor.name)
            .filter(|n| self.settings.tools.contains(n));
        let agents = registry
            .agents()
            .map(|a| &a.plugin.descriptor().name)
            .filter(|n| self.settings.agents.contains(n));
        tools.chain(agents).cloned().collect()
    }

    /// The page of `tools/list` after `cursor` (the last name of the page
    /// before; opaque to clients), and the cursor of the next page.
    fn page(
        &self,
        registry: &Registry,
        cursor: Option<&str>,
    ) -> Result<(Vec<Tool>, Option<String>), String> {
        let names = self.exposed_names(registry);
        let after = match cursor {
            None => None,
            Some(cursor) => Some(
                decode_cursor(cursor)
                    .ok_or_else(|| format!("{cursor:?} is not a cursor this server handed out"))?,
            ),
        };
        let mut rest = names
            .iter()
            .filter(|n| after.as_ref().is_none_or(|a| n.as_str() > a.as_str()));
        let page: Vec<&String> = rest.by_ref().take(self.settings.page_size).collect();
        let next = match (page.last(), rest.next()) {
            (Some(last), Some(_)) => Some(encode_cursor(last)),
            _ => None,
        };
        let tools = page
            .into_iter()
            .filter_map(|name| self.descriptor(registry, name))
            .collect();
        Ok((tools, next))
    }

    /// The MCP descriptor of the exposed tool or agent `name`.
    fn descriptor(&self, registry: &Registry, name: &str) -> Option<Tool> {
        match self.kind(registry, name)? {
            Kind::Tool => {
                let d = &registry.tool(name)?.descriptor;
                let mut tool = Tool::new(
                    d.name.clone(),
                    d.description.clone(),
                    Arc::new(object_schema(&d.input_schema)),
                );
                if let Some(output) = d.output_schema.as_deref().and_then(output_schema) {
                    tool = tool.with_raw_output_schema(Arc::new(output));
                }
                Some(tool)
            }
            Kind::Agent => {
                let agent = registry.agent(name)?;
                let description = format!(
                    "Runs the agent {name}: {}",
                    agent.plugin.descriptor().description
                );
                Some(
                    Tool::new(
                        name.to_string(),
                        description,
                        Arc::new(object_schema(AGENT_SCHEMA)),
                    )
                    .with_raw_output_schema(Arc::new(object_schema(AGENT_OUTPUT_SCHEMA))),
                )
            }
        }
    }

    /// Remembers a session to tell about changes to the exposed set.
    fn add_peer(&self, peer: Peer<RoleServer>) {
        let mut peers = lock(&self.peers);
        peers.retain(|p| !p.is_transport_closed());
        peers.push(peer);
    }

    /// Sends `notifications/tools/list_changed` to every session if the
    /// exposed set is not what it was at the last notice.
    pub async fn notify_if_changed(&self) {
        let now = self.exposed_names(&self.runs.registry());
        {
            let mut last = lock(&self.exposed);
            if *last == now {
                return;
            }
            *last = now;
        }
        let peers: Vec<_> = {
            let mut peers = lock(&self.peers);
            peers.retain(|p| !p.is_transport_closed());
            peers.clone()
        };
        for peer in peers {
            if let Err(err) = peer.notify_tool_list_changed().await {
                tracing::debug!("cannot send tools/list_changed: {err}");
            }
        }
    }

    /// Sends `list_changed` after each hot-load that changes the exposed
    /// set, until `shutdown`.
    pub fn spawn_watch(
        self: &Arc<Self>,
        catalog: &crate::catalog::Catalog,
        shutdown: CancellationToken,
    ) {
        let mut changes = catalog.subscribe();
        let mcp = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    change = changes.recv() => match change {
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            mcp.notify_if_changed().await;
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    () = shutdown.cancelled() => return,
                }
            }
        });
    }
}

/// `text`, a JSON Schema, as an object; `{"type": "object"}` if it is not one.
fn object_schema(text: &str) -> JsonObject {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => {
            let mut map = JsonObject::new();
            map.insert("type".into(), "object".into());
            map
        }
    }
}

/// A tool's output schema as MCP wants it: an object schema as it is,
/// another one under `result` (as [`call::result_of`] wraps the value).
fn output_schema(text: &str) -> Option<JsonObject> {
    let schema: serde_json::Value = serde_json::from_str(text).ok()?;
    let serde_json::Value::Object(map) = schema else {
        return None;
    };
    if map.get("type").and_then(|t| t.as_str()) == Some("object") {
        return Some(map);
    }
    // Keywords of the whole schema stay at the top, where `$ref`s resolve.
    let mut inner = map;
    let mut outer = JsonObject::new();
    for key in ["$schema", "$defs", "definitions", "$id"] {
        if let Some(value) = inner.remove(key) {
            outer.insert(key.into(), value);
        }
    }
    outer.insert("type".into(), "object".into());
    outer.insert(
        "properties".into(),
        serde_json::json!({ "result": serde_json::Value::Object(inner) }),
    );
    outer.insert("required".into(), serde_json::json!(["result"]));
    Some(outer)
}

/// Cursors are the last name of a page, hex-encoded so that clients treat
/// them as opaque.
fn encode_cursor(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if !cursor.len().is_multiple_of(2) || cursor.len() > 512 {
        return None;
    }
    let bytes = (0..cursor.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(cursor.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for name in ["calculate", "a", "note_delete"] {
            assert_eq!(
                super::decode_cursor(&super::encode_cursor(name)).as_deref(),
                Some(name)
            );
        }
        assert_eq!(super::decode_cursor("zz"), None);
        assert_eq!(super::decode_cursor("abc"), None);
        assert_eq!(super::decode_cursor("ff"), None, "not UTF-8");
    }
}
