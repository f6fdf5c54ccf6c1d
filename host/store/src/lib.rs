//! netra's store: threads, messages, runs, the per-run event log, plugin kv,
//! the plugin version registry and the audit log. This is the only crate that
//! speaks SQL.
//!
//! [`Store`] is the interface the host uses, with two implementations:
//! - [`SqliteStore`] keeps everything in one SQLite file (WAL, numbered
//!   migrations). Its calls are synchronous. Reads use a small pool of reader
//!   connections and may run on any thread (from async code, through
//!   `spawn_blocking`). Writes go through one [`EventWriter`] thread that owns
//!   the only write connection and commits in submission order with group
//!   commit (see its docs).
//! - [`MemoryStore`] keeps everything in the process's memory, with the same
//!   semantics and errors, for tests, benchmarks and `--store memory`: nothing
//!   survives a restart.
//!
//! A PostgreSQL backend serving several hosts would be one more
//! implementation of the same trait. `netra_server::StoreKv` adapts a store
//! to the runtime's `KvStore`; this crate knows nothing of the runtime.
//!
//! Architecture invariants:
//! - an event's `on_durable` callback runs only after the write that holds it
//!   is committed (in memory: applied), and callbacks run in submission order;
//! - there is exactly one writer connection per SQLite database;
//! - kv rows are always addressed by (user, plugin, key): there is no call
//!   that reads or writes across users or plugins.

#![warn(missing_docs)]

mod error;
mod memory;
mod model;
mod options;
mod schema;
mod sqlite;
mod writer;

use std::time::SystemTime;

pub use error::StoreError;
pub use memory::MemoryStore;
pub use model::{
    AuditEntry, AuditRecord, EventRecord, NewMessage, NewRun, NewThread, PluginState,
    PluginVersion, Role, RunEnd, RunRecord, RunStatus, StoredMessage, ThreadSummary, Usage,
};
pub use options::{StoreOptions, Synchronous};
pub use sqlite::SqliteStore;
pub use writer::{EventWriter, OnDurable, WriterStats};

/// Everything the host keeps across restarts (when the store is persistent:
/// a [`MemoryStore`] forgets it all).
///
/// Reads return what is committed. Writes are applied in the order they are
/// called (across threads: in the order they reach the store), and the
/// blocking ones return once committed. Calls block; call them from
/// `spawn_blocking` in async code.
pub trait Store: Send + Sync + 'static {
    /// Creates a thread owned by `owner`; [`StoreError::Conflict`] if the id is taken.
    fn create_thread(&self, thread_id: &str, owner: &str) -> Result<(), StoreError>;

    /// Sets or clears a thread's title.
    fn set_thread_title(&self, thread_id: &str, title: Option<&str>) -> Result<(), StoreError>;

    /// The owner of a thread, or `None` if it does not exist.
    fn thread_owner(&self, thread_id: &str) -> Result<Option<String>, StoreError>;

    /// A thread's messages in order (empty if the thread does not exist:
    /// check the owner first).
    fn thread_messages(&self, thread_id: &str) -> Result<Vec<StoredMessage>, StoreError>;

    /// At most `limit` messages of a thread with seq > `after_seq`, in order.
    fn thread_page(
        &self,
        thread_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let mut messages = self.thread_messages(thread_id)?;
        messages.retain(|m| m.seq > after_seq);
        messages.truncate(limit);
        Ok(messages)
    }

    /// The last `limit` messages of a thread, in order.
    fn thread_tail(&self, thread_id: &str, limit: usize) -> Result<Vec<StoredMessage>, StoreError> {
        let mut messages = self.thread_messages(thread_id)?;
        let skip = messages.len().saturating_sub(limit);
        messages.drain(..skip);
        Ok(messages)
    }

    /// `owner`'s threads, most recently active first, at most `limit`.
    fn list_threads(&self, owner: &str, limit: usize) -> Result<Vec<ThreadSummary>, StoreError>;

    /// Appends messages to a thread, numbering them after its last one.
    /// [`StoreError::NotFound`] if the thread or the run does not exist.
    fn append_messages(
        &self,
        thread_id: &str,
        run_id: &str,
        messages: &[NewMessage],
    ) -> Result<(), StoreError>;

    /// Records a run as running. [`StoreError::NotFound`] if its thread does
    /// not exist, [`StoreError::Conflict`] if the id is taken.
    fn create_run(&self, run: &NewRun) -> Result<(), StoreError>;

    /// Records how a running run ended. [`StoreError::Conflict`] if it has
    /// already ended, [`StoreError::Invalid`] if `end.status` is `Running`.
    fn finish_run(&self, run_id: &str, end: &RunEnd) -> Result<(), StoreError>;

    /// Records a run as running, creating its thread first when `thread` is
    /// given, in one atomic write. Never blocks: `on_durable` gets the outcome
    /// once it is committed, in order with every other write.
    fn begin_run(&self, thread: Option<NewThread>, run: NewRun, on_durable: OnDurable);

    /// Ends a running run in one atomic write: appends its terminal event,
    /// appends `messages` to its thread and records `end`. A crash leaves
    /// either all of it or none. Never blocks; `on_durable` as for
    /// [`Store::append_event`].
    fn end_run(
        &self,
        terminal: EventRecord,
        messages: Vec<NewMessage>,
        end: RunEnd,
        on_durable: OnDurable,
    );

    /// One run, with its owner, status and last event seq.
    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// The runs still marked running, oldest first: at start, the ones a crash interrupted.
    fn running_runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// Queues an event; `on_durable` runs once it is committed (or failed).
    /// See [`EventWriter::append`] for the ordering guarantees.
    fn append_event(&self, event: EventRecord, on_durable: OnDurable);

    /// Blocks until every write queued before the call is committed.
    fn flush(&self) -> Result<(), StoreError>;

    /// Bytes an event whose frame is `frame_bytes` long takes in the store,
    /// which is what a run's `max_event_bytes` counts. By default the frame.
    fn event_cost(&self, frame_bytes: usize) -> u64 {
        frame_bytes as u64
    }

    /// The frames of a run's events with seq > `after_seq`, in seq order, at most `limit`.
    fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// One kv value.
    fn kv_get(&self, user: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Writes one kv value.
    fn kv_set(&self, user: &str, plugin: &str, key: &str, value: Vec<u8>)
    -> Result<(), StoreError>;

    /// Deletes one kv value; whether it existed.
    fn kv_delete(&self, user: &str, plugin: &str, key: &str) -> Result<bool, StoreError>;

    /// How many keys (user, plugin) holds and their bytes (keys plus values).
    fn kv_usage(&self, user: &str, plugin: &str) -> Result<(u64, u64), StoreError>;

    /// Keys starting with `prefix`, sorted, at most `limit`.
    fn kv_list(
        &self,
        user: &str,
        plugin: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError>;

    /// Appends to the audit log, stamped with the current time.
    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// The audit log, newest first (by time, then by the order of writing),
    /// at most `limit` entries.
    fn audit_entries(&self, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;

    /// Records a plugin version; `false`, changing nothing, if a version of
    /// that plugin with that digest is already recorded.
    /// [`StoreError::Invalid`] if its size does not fit SQLite's integers.
    fn add_plugin_version(&self, version: &PluginVersion) -> Result<bool, StoreError>;

    /// Every recorded version, or those of `plugin`: by plugin name, then
    /// newest (`created_at`) first, then by digest.
    fn plugin_versions(&self, plugin: Option<&str>) -> Result<Vec<PluginVersion>, StoreError>;

    /// Forgets a plugin version. [`StoreError::NotFound`] if it is not
    /// recorded, [`StoreError::Conflict`] if it is the plugin's active version.
    fn delete_plugin_version(&self, plugin: &str, digest: &str) -> Result<(), StoreError>;

    /// Makes a recorded version its plugin's active one and sets its
    /// `activated_at` to `at`, in one write; a plugin without a state yet
    /// gets one, enabled. [`StoreError::NotFound`] (changing nothing) if the
    /// version is not recorded.
    fn activate_plugin_version(
        &self,
        plugin: &str,
        digest: &str,
        at: SystemTime,
    ) -> Result<(), StoreError>;

    /// Enables or disables a plugin, keeping its active version; a plugin
    /// without a state yet gets one, with no active version.
    fn set_plugin_enabled(&self, plugin: &str, enabled: bool) -> Result<(), StoreError>;

    /// The state of every plugin that has one, by plugin name.
    fn plugin_states(&self) -> Result<Vec<PluginState>, StoreError>;

    /// Deletes at most `max_rows` events of runs that ended before
    /// `older_than`, oldest runs first; returns how many it deleted. Call it
    /// repeatedly (with a pause) until it returns less than `max_rows`: each
    /// call is one short write, so retention never holds the writer for long.
    fn prune_events(&self, older_than: SystemTime, max_rows: usize) -> Result<usize, StoreError>;
}
