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
pub mod llm;
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
}
