//! netra's server: WebSocket sessions speaking netra.v1, agent runs with
//! their event streams, and the HTTP endpoints around them.
//!
//! Data flows one way: frame -> [`protocol`] -> [`session`] -> [`runs`] ->
//! `netra-runtime` (fresh instances) -> [`run_log`] -> subscribers' queues.

pub mod admin;
pub mod catalog;
pub mod deps;
pub mod health;
pub mod http;
pub mod ids;
pub mod kv;
pub mod llm;
pub mod mcp;
pub mod protocol;
pub mod ready;
pub mod recovery;
pub mod registry;
pub mod retention;
pub mod run_log;
pub mod runs;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use netra_auth::Authenticator;

pub use kv::{SqliteKv, StoreKv};

/// Locks `mutex`; a panic elsewhere while it was held does not poison it
/// for the rest of the host.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
pub use ready::Readiness;
pub use recovery::recover_interrupted;
pub use registry::{Grants, PluginGrant, Registry};
pub use retention::Retention;
pub use runs::{RunLimits, Runs, Services};

/// Limits and timings of sessions.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Frames queued for one session before it counts as a slow consumer
    /// and is closed with 1013.
    pub send_queue: usize,
    /// Largest client message (and frame), in bytes; larger closes with 1009.
    pub max_message_bytes: usize,
    /// Read buffer per connection; small so idle sessions stay cheap.
    pub read_buffer_bytes: usize,
    /// Frames queued for a client are gathered up to this many bytes before
    /// a write; the writer flushes whatever it has once the queue is empty.
    /// Allocated only while a session sends.
    pub write_buffer_bytes: usize,
    /// How often the server pings; a peer silent for two periods is closed.
    pub keepalive: Duration,
    /// A session that sends no frame for this long is closed.
    pub idle_timeout: Duration,
    /// Bytes queued for one session before it counts as a slow consumer.
    pub send_queue_bytes: usize,
    /// Longest wait for the socket to take one write; a session whose
    /// client stops reading is closed after it.
    pub write_timeout: Duration,
    /// Most bytes of messages in one `thread.get` page.
    pub page_bytes: usize,
    /// Time a connection has to send a request's headers.
    pub header_read_timeout: Duration,
    /// Open connections at once; more wait in the kernel's accept queue.
    pub max_connections: usize,
    /// WebSocket sessions one user may hold at once.
    pub max_sessions_per_user: usize,
    /// Largest request body, except plugin uploads (see the admin routes).
    pub max_body_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            send_queue: 1024,
            max_message_bytes: 64 * 1024,
            read_buffer_bytes: 4 * 1024,
            write_buffer_bytes: 16 * 1024,
            keepalive: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(600),
            send_queue_bytes: 16 << 20,
            write_timeout: Duration::from_secs(30),
            page_bytes: 1 << 20,
            header_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            max_sessions_per_user: 64,
            max_body_bytes: 1 << 20,
        }
    }
}

/// Everything a connection needs, shared by all of them.
pub struct App {
    /// Session limits.
    pub config: ServerConfig,
    /// Checks tokens at the upgrade.
    pub auth: Authenticator,
    /// The runs.
    pub runs: Arc<Runs>,
    /// What `/readyz` reports; `None` reports ready with nothing checked.
    pub readiness: Option<Arc<Readiness>>,
    /// The plugins' versions, for the admin API and `plugins.changed`;
    /// `None` serves a fixed registry.
    pub catalog: Option<Arc<catalog::Catalog>>,
    /// Open WebSocket sessions per user.
    pub sessions: Arc<Sessions>,
    /// `/mcp`; `None` answers 404 there (`mcp.enabled = false`).
    pub mcp: Option<Arc<mcp::http::McpHttp>>,
}

/// Open WebSocket sessions per user, for `max_sessions_per_user`.
#[derive(Default)]
pub struct Sessions(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// One open session of a user; dropping it gives the slot back.
pub struct SessionSlot {
    sessions: Arc<Sessions>,
    user: String,
}

impl Sessions {
    /// A slot for one more session of `user`, unless they hold `max` already.
    pub fn claim(self: &Arc<Self>, user: &str, max: usize) -> Option<SessionSlot> {
        let mut open = self.lock();
        let count = open.entry(user.to_string()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(SessionSlot {
            sessions: self.clone(),
            user: user.to_string(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut open = self.sessions.lock();
        if let Some(count) = open.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user);
            }
        }
    }
}
