//! `[mcp]`: what netra serves to MCP clients on `/mcp` and through `netra mcp`.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::problem::Report;
use crate::read::Section;

/// `[mcp]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mcp {
    /// `enabled` (default true): serve `/mcp` on the listener.
    pub enabled: bool,
    /// `tools`: the tools MCP clients may list and call. `None` when the
    /// key is not set: every tool without a configuration file (dev mode),
    /// none with one.
    pub tools: Option<Exposed>,
    /// `agents`: the agents MCP clients may call as tools (each call a full
    /// run); unset as for `tools`.
    pub agents: Option<Exposed>,
    /// `allowed_origins`: browser origins allowed to call `/mcp`, as
    /// `scheme://host[:port|:*]`. Requests with another `Origin` get 403;
    /// requests without one (non-browser clients) pass. Loopback origins
    /// are always allowed.
    pub allowed_origins: Vec<String>,
    /// `allowed_hosts`: `Host` values `/mcp` answers, besides the loopback
    /// names and the listen address (DNS rebinding protection); `["*"]`
    /// turns the check off (behind a proxy that checks it).
    pub allowed_hosts: Vec<String>,
    /// `page_size` (default 100): tools per `tools/list` page.
    pub page_size: u64,
    /// `sessions` (default true): MCP sessions (`Mcp-Session-Id`) for
    /// clients of revisions that have them; false serves every request
    /// statelessly.
    pub sessions: bool,
    /// `max_sessions_per_user` (default 64): sessions one user may hold.
    pub max_sessions_per_user: u64,
    /// `max_sessions` (default 10,000): sessions the host holds at once.
    pub max_sessions: u64,
    /// `session_idle_timeout` (default 10 min): a session idle this long ends.
    pub session_idle_timeout: Duration,
    /// `max_notifications_per_call` (default 1,000): log and progress
    /// notifications one call may send; the excess is dropped and counted.
    pub max_notifications_per_call: u64,
}

/// Which tools or agents are exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exposed {
    /// `["*"]`: all of them.
    All,
    /// The names listed.
    Names(BTreeSet<String>),
}

impl Exposed {
    /// Whether `name` is exposed.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Exposed::All => true,
            Exposed::Names(names) => names.contains(name),
        }
    }
}

impl Default for Mcp {
    fn default() -> Self {
        Self {
            enabled: true,
            tools: None,
            agents: None,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            page_size: 100,
            sessions: true,
            max_sessions_per_user: 64,
            max_sessions: 10_000,
            session_idle_timeout: Duration::from_secs(600),
            max_notifications_per_call: 1000,
        }
    }
}

pub(crate) fn mcp(s: &Section<'_>, report: &mut Report) -> Mcp {
    let defaults = Mcp::default();
    let exposed = |key: &str, report: &mut Report| {
        let names = s.strings(key, report)?;
        if names.iter().any(|n| n == "*") {
            if names.len() > 1 {
                report.hint(
                    &s.key_path(key),
                    "\"*\" beside names",
                    "write [\"*\"] for all of them, or list the names",
                );
            }
            return Some(Exposed::All);
        }
        Some(Exposed::Names(names.into_iter().collect()))
    };
    let origins = s.strings("allowed_origins", report).unwrap_or_default();
    for (i, origin) in origins.iter().enumerate() {
        if !(origin.starts_with("http://") || origin.starts_with("https://") || origin == "null") {
            report.hint(
                &format!("{}[{i}]", s.key_path("allowed_origins")),
                format!("{origin:?} has no scheme"),
                "write scheme://host, e.g. \"https://app.example.com\" or \"http://localhost:*\"",
            );
        }
    }
    let mcp = Mcp {
        enabled: s.bool("enabled", report).unwrap_or(defaults.enabled),
        tools: exposed("tools", report),
        agents: exposed("agents", report),
        allowed_origins: origins,
        allowed_hosts: s.strings("allowed_hosts", report).unwrap_or_default(),
        page_size: s
            .integer("page_size", 1, 10_000, report)
            .unwrap_or(defaults.page_size),
        sessions: s.bool("sessions", report).unwrap_or(defaults.sessions),
        max_sessions_per_user: s
            .integer("max_sessions_per_user", 1, 1_000_000, report)
            .unwrap_or(defaults.max_sessions_per_user),
        max_sessions: s
            .integer("max_sessions", 1, 10_000_000, report)
            .unwrap_or(defaults.max_sessions),
        session_idle_timeout: s
            .duration(
                "session_idle_timeout",
                Duration::from_secs(1),
                Duration::from_secs(7 * 24 * 3600),
                report,
            )
            .unwrap_or(defaults.session_idle_timeout),
        max_notifications_per_call: s
            .integer("max_notifications_per_call", 0, 1_000_000, report)
            .unwrap_or(defaults.max_notifications_per_call),
    };
    s.finish(report);
    mcp
}
