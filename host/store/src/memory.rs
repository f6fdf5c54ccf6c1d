//! [`Store`] in the process's memory, for tests, benchmarks and
//! `netra serve --store memory`.
//!
//! It keeps the same data as the SQLite schema, in maps behind one mutex, and
//! gives every method the same results and the same [`StoreError`]s as
//! [`SqliteStore`](crate::SqliteStore): the conformance tests run one set of
//! assertions against both. Times are kept as SQLite keeps them, in whole
//! milliseconds clamped at the Unix epoch, so what comes back is equal too.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use crate::model::{checked_end, from_ms, now_ms, to_i64, to_ms};
use crate::{
    AuditEntry, AuditRecord, EventRecord, NewMessage, NewRun, NewThread, OnDurable, PluginState,
    PluginVersion, RunEnd, RunRecord, RunStatus, Store, StoreError, StoredMessage, ThreadSummary,
    Usage,
};

/// How many ended runs one `prune_events` call looks at, at most (as in SQLite).
const PRUNE_RUNS_PER_CALL: usize = 64;

/// A [`Store`] that keeps everything in memory: nothing survives a restart.
///
/// Meant for tests, benchmarks and `--store memory`. Every method has the
/// semantics of [`SqliteStore`](crate::SqliteStore)'s, errors included; a
/// write either applies whole or fails leaving nothing behind, and
/// [`Store::begin_run`] and [`Store::end_run`] are as atomic as there.
///
/// All data sits behind one mutex, held only for the duration of a call.
/// Writes are applied when they are called, so there is nothing to commit:
/// the `on_durable` callback of a non-blocking write runs on the calling
/// thread before the call returns, after the write is applied and after the
/// lock is released. A callback may therefore call back into the store, even
/// a blocking write (which on SQLite fails with
/// [`StoreError::OnWriterThread`]), and may take the caller's own locks. As
/// on SQLite, a callback that panics is logged and does not break the store.
///
/// Callbacks run in submission order: those of the calls of one thread, or of
/// calls the caller orders (for example under a lock of its own), run in the
/// order of the calls. Two calls racing on different threads have no order
/// between them, and their callbacks may run in either order.
#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

/// The data, shaped like the SQLite schema.
#[derive(Default)]
struct Tables {
    threads: HashMap<String, Thread>,
    /// Thread ids by owner, so listing a user's threads does not scan everyone's.
    threads_by_owner: HashMap<String, Vec<String>>,
    runs: HashMap<String, Run>,
    /// The `order` of the next run created.
    next_run: u64,
    /// Values by user, plugin and key.
    kv: HashMap<String, HashMap<String, BTreeMap<String, Vec<u8>>>>,
    /// The audit log, with the time of each entry, in the order of writing.
    audit: Vec<(SystemTime, AuditEntry)>,
    /// Plugin versions by plugin and digest, their times as stored.
    plugin_versions: BTreeMap<String, BTreeMap<String, PluginVersion>>,
    /// Plugin states by plugin. Their `updated_at` is not kept: nothing reads it.
    plugin_states: BTreeMap<String, PluginState>,
}

struct Thread {
    owner: String,
    title: Option<String>,
    created_at: SystemTime,
    /// When a message was last appended; `created_at` if none was.
    updated_at: SystemTime,
    /// `messages[i]` has seq `i + 1`.
    messages: Vec<StoredMessage>,
}

struct Run {
    /// Creation order; ended runs with the same end time are pruned in it,
    /// as SQLite visits them in rowid order.
    order: u64,
    thread_id: String,
    user: String,
    agent: String,
    plugin_version: String,
    status: RunStatus,
    input: String,
    started_at: SystemTime,
    ended_at: Option<SystemTime>,
    error_code: Option<String>,
    usage: Option<Usage>,
    events_pruned: bool,
    /// Frames by seq. Event timestamps are not kept: nothing reads them.
    events: BTreeMap<u64, Arc<str>>,
    /// The run that started it, if any.
    parent_run_id: Option<String>,
}

impl Run {
    fn record(&self, id: &str) -> RunRecord {
        RunRecord {
            id: id.to_owned(),
            thread_id: self.thread_id.clone(),
            user: self.user.clone(),
            agent: self.agent.clone(),
            plugin_version: self.plugin_version.clone(),
            status: self.status,
            input: self.input.clone(),
            started_at: self.started_at,
            ended_at: self.ended_at,
            error_code: self.error_code.clone(),
            usage: self.usage,
            last_seq: self.events.last_key_value().map_or(0, |(seq, _)| *seq),
            events_pruned: self.events_pruned,
            parent_run_id: self.parent_run_id.clone(),
        }
    }
}

/// `t` as the SQLite store gives it back: whole milliseconds, not before 1970.
fn stored(t: SystemTime) -> SystemTime {
    from_ms(to_ms(t))
}

/// The current time as stored.
fn now() -> SystemTime {
    from_ms(now_ms())
}

/// SQLite's `json_valid` refuses JSON nested deeper than this.
const JSON_MAX_DEPTH: usize = 1000;

/// Whether SQLite's `json_valid` accepts `text`: well-formed JSON (RFC 8259)
/// nested at most [`JSON_MAX_DEPTH`] deep. Deserializing into `IgnoredAny`
/// checks the syntax only, without limits on numbers, surrogates or depth.
fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
        && json_depth(text) <= JSON_MAX_DEPTH
}

/// The deepest nesting of arrays and objects in well-formed JSON `text`.
fn json_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for byte in text.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn plugin_version_not_found(plugin: &str, digest: &str) -> StoreError {
    StoreError::NotFound(format!("plugin version {plugin}@{digest}"))
}

/// Runs a write's callback, as the SQLite writer does: a panic is logged.
fn notify(on_durable: OnDurable, result: Result<(), StoreError>) {
    if catch_unwind(AssertUnwindSafe(|| on_durable(result))).is_err() {
        tracing::error!("an on_durable callback panicked; the store goes on");
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The audit log, oldest entry first, each with the time it was recorded.
    pub fn audit_log(&self) -> Vec<(SystemTime, AuditEntry)> {
        self.tables().audit.clone()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // Every write checks before it changes anything, so a panic under
        // the lock cannot have left the tables half-written.
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a write, releases the lock, then runs its callback.
    fn write_then(
        &self,
        write: impl FnOnce(&mut Tables) -> Result<(), StoreError>,
        on_durable: OnDurable,
    ) {
        let result = write(&mut self.tables());
        notify(on_durable, result);
    }
}

impl Tables {
    fn check_thread(&self, thread: &NewThread) -> Result<(), StoreError> {
        if self.threads.contains_key(&thread.id) {
            return Err(StoreError::Conflict(format!(
                "thread {} already exists",
                thread.id
            )));
        }
        Ok(())
    }

    fn add_thread(&mut self, thread: NewThread) {
        let now = now();
        self.threads_by_owner
            .entry(thread.owner.clone())
            .or_default()
            .push(thread.id.clone());
        self.threads.insert(
            thread.id,
            Thread {
                owner: thread.owner,
                title: thread.title,
                created_at: now,
                updated_at: now,
                messages: Vec::new(),
            },
        );
    }

    /// Checks that `run` can be created, once a thread named `new_thread` (if
    /// any) is. A taken id wins over a missing thread, as in SQLite, which
    /// checks the key before the foreign key.
    fn check_run(&self, run: &NewRun, new_thread: Option<&str>) -> Result<(), StoreError> {
        if self.runs.contains_key(&run.id) {
            return Err(StoreError::Conflict(format!(
                "run {} already exists",
                run.id
            )));
        }
        if !self.threads.contains_key(&run.thread_id) && new_thread != Some(&run.thread_id) {
            return Err(StoreError::NotFound(format!("thread {}", run.thread_id)));
        }
        Ok(())
    }

    fn add_run(&mut self, run: NewRun) {
        let order = self.next_run;
        self.next_run += 1;
        self.runs.insert(
            run.id,
            Run {
                order,
                thread_id: run.thread_id,
                user: run.user,
                agent: run.agent,
                plugin_version: run.plugin_version,
                status: RunStatus::Running,
                input: run.input,
                started_at: stored(run.started_at),
                ended_at: None,
                error_code: None,
                usage: None,
                events_pruned: false,
                events: BTreeMap::new(),
                parent_run_id: run.parent_run_id,
            },
        );
    }

    /// Checks that `event` can be appended: its seq fits SQLite, its run
    /// exists and has no event with that seq.
    fn check_event(&self, event: &EventRecord) -> Result<(), StoreError> {
        to_i64(event.seq, "event seq")?;
        let run = self
            .runs
            .get(&event.run_id)
            .ok_or_else(|| StoreError::NotFound(format!("run {}", event.run_id)))?;
        if run.events.contains_key(&event.seq) {
            return Err(StoreError::Conflict(format!(
                "event {} of run {} already exists",
                event.seq, event.run_id
            )));
        }
        Ok(())
    }

    fn append_event(&mut self, event: EventRecord) -> Result<(), StoreError> {
        self.check_event(&event)?;
        if let Some(run) = self.runs.get_mut(&event.run_id) {
            run.events.insert(event.seq, event.frame);
        }
        Ok(())
    }

    /// Checks that messages of `run_id` can be appended to `thread_id`.
    fn check_messages(&self, thread_id: &str, run_id: &str) -> Result<(), StoreError> {
        if !self.threads.contains_key(thread_id) {
            return Err(StoreError::NotFound(format!("thread {thread_id}")));
        }
        if !self.runs.contains_key(run_id) {
            return Err(StoreError::NotFound(format!("run {run_id}")));
        }
        Ok(())
    }

    fn add_messages(&mut self, thread_id: &str, run_id: &str, messages: Vec<NewMessage>) {
        let Some(thread) = self.threads.get_mut(thread_id) else {
            return;
        };
        let now = now();
        thread.updated_at = thread.updated_at.max(now);
        let first = thread.messages.len() as u64 + 1;
        thread
            .messages
            .extend((first..).zip(messages).map(|(seq, message)| StoredMessage {
                seq,
                role: message.role,
                content: message.content,
                run_id: Some(run_id.to_owned()),
                created_at: now,
            }));
    }

    /// Checks that run `run_id` exists and is running.
    fn check_running(&self, run_id: &str) -> Result<&Run, StoreError> {
        let run = self
            .runs
            .get(run_id)
            .ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))?;
        if run.status != RunStatus::Running {
            return Err(StoreError::Conflict(format!(
                "run {run_id} already ended ({})",
                run.status
            )));
        }
        Ok(run)
    }

    /// Records `end` on a run that [`Self::check_running`] accepted.
    fn set_end(&mut self, run_id: &str, end: RunEnd) {
        if let Some(run) = self.runs.get_mut(run_id) {
            run.status = end.status;
            run.ended_at = Some(stored(end.ended_at));
            run.error_code = end.error_code;
            run.usage = end.usage;
        }
    }

    /// `end_run` as one all-or-nothing write: everything is checked, in the
    /// order SQLite runs its statements, before anything changes.
    fn end_run(
        &mut self,
        terminal: EventRecord,
        messages: Vec<NewMessage>,
        end: RunEnd,
    ) -> Result<(), StoreError> {
        self.check_event(&terminal)?;
        let run_id = terminal.run_id.clone();
        let thread_id = self.check_running(&run_id)?.thread_id.clone();
        if !messages.is_empty() {
            self.check_messages(&thread_id, &run_id)?;
        }
        self.append_event(terminal)?;
        if !messages.is_empty() {
            self.add_messages(&thread_id, &run_id, messages);
        }
        self.set_end(&run_id, end);
        Ok(())
    }

    fn plugin_version_mut(
        &mut self,
        plugin: &str,
        digest: &str,
    ) -> Result<&mut PluginVersion, StoreError> {
        self.plugin_versions
            .get_mut(plugin)
            .and_then(|versions| versions.get_mut(digest))
            .ok_or_else(|| plugin_version_not_found(plugin, digest))
    }

    /// The state of `plugin`, created (enabled, nothing active) if it has none.
    fn plugin_state(&mut self, plugin: &str) -> &mut PluginState {
        self.plugin_states
            .entry(plugin.to_owned())
            .or_insert_with(|| PluginState {
                plugin: plugin.to_owned(),
                active: None,
                enabled: true,
            })
    }

    fn prune_events(&mut self, older_than: SystemTime, max_rows: usize) -> usize {
        let cutoff = stored(older_than);
        let mut prunable: Vec<(SystemTime, u64, &str)> = self
            .runs
            .iter()
            .filter(|(_, run)| !run.events_pruned)
            .filter_map(|(id, run)| Some((run.ended_at?, run.order, id.as_str())))
            .filter(|(ended_at, _, _)| *ended_at < cutoff)
            .collect();
        prunable.sort_unstable();
        prunable.truncate(PRUNE_RUNS_PER_CALL);
        let ids: Vec<String> = prunable
            .into_iter()
            .map(|(_, _, id)| id.to_owned())
            .collect();

        let mut budget = max_rows;
        for id in ids {
            let Some(run) = self.runs.get_mut(&id) else {
                continue;
            };
            let mut deleted = 0;
            while deleted < budget && run.events.pop_first().is_some() {
                deleted += 1;
            }
            if deleted < budget {
                // Fewer than asked for: the run has no events left.
                run.events_pruned = true;
            }
            budget -= deleted;
            if budget == 0 {
                break;
            }
        }
        max_rows - budget
    }
}

impl Store for MemoryStore {
    fn create_thread(&self, thread_id: &str, owner: &str) -> Result<(), StoreError> {
        let thread = NewThread {
            id: thread_id.to_owned(),
            owner: owner.to_owned(),
            title: None,
        };
        let mut tables = self.tables();
        tables.check_thread(&thread)?;
        tables.add_thread(thread);
        Ok(())
    }

    fn set_thread_title(&self, thread_id: &str, title: Option<&str>) -> Result<(), StoreError> {
        let mut tables = self.tables();
        let thread = tables
            .threads
            .get_mut(thread_id)
            .ok_or_else(|| StoreError::NotFound(format!("thread {thread_id}")))?;
        thread.title = title.map(str::to_owned);
        Ok(())
    }

    fn thread_owner(&self, thread_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .tables()
            .threads
            .get(thread_id)
            .map(|thread| thread.owner.clone()))
    }

    fn thread_messages(&self, thread_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        Ok(self
            .tables()
            .threads
            .get(thread_id)
            .map(|thread| thread.messages.clone())
            .unwrap_or_default())
    }

    fn list_threads(&self, owner: &str, max: usize) -> Result<Vec<ThreadSummary>, StoreError> {
        let tables = self.tables();
        let ids = tables
            .threads_by_owner
            .get(owner)
            .map_or(&[][..], Vec::as_slice);
        let mut threads: Vec<(&String, &Thread)> = ids
            .iter()
            .filter_map(|id| Some((id, tables.threads.get(id)?)))
            .collect();
        // Most recent activity first, then the greater id, as SQLite's
        // `ORDER BY updated_at DESC, id DESC` (which compares bytes, as `str` does).
        threads.sort_unstable_by(|(a_id, a), (b_id, b)| {
            (b.updated_at, b_id).cmp(&(a.updated_at, a_id))
        });
        Ok(threads
            .into_iter()
            .take(max)
            .map(|(id, thread)| ThreadSummary {
                id: id.clone(),
                title: thread.title.clone(),
                created_at: thread.created_at,
                last_activity: thread.updated_at,
                message_count: thread.messages.len() as u64,
            })
            .collect())
    }

    fn append_messages(
        &self,
        thread_id: &str,
        run_id: &str,
        messages: &[NewMessage],
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut tables = self.tables();
        tables.check_messages(thread_id, run_id)?;
        tables.add_messages(thread_id, run_id, messages.to_vec());
        Ok(())
    }

    fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        let mut tables = self.tables();
        tables.check_run(run, None)?;
        tables.add_run(run.clone());
        Ok(())
    }

    fn begin_run(&self, thread: Option<NewThread>, run: NewRun, on_durable: OnDurable) {
        self.write_then(
            move |tables| {
                if let Some(thread) = &thread {
                    tables.check_thread(thread)?;
                }
                tables.check_run(&run, thread.as_ref().map(|t| t.id.as_str()))?;
                if let Some(thread) = thread {
                    tables.add_thread(thread);
                }
                tables.add_run(run);
                Ok(())
            },
            on_durable,
        );
    }

    fn end_run(
        &self,
        terminal: EventRecord,
        messages: Vec<NewMessage>,
        end: RunEnd,
        on_durable: OnDurable,
    ) {
        if let Err(err) = checked_end(&terminal.run_id, &end) {
            return notify(on_durable, Err(err));
        }
        self.write_then(
            move |tables| tables.end_run(terminal, messages, end),
            on_durable,
        );
    }

    fn finish_run(&self, run_id: &str, end: &RunEnd) -> Result<(), StoreError> {
        checked_end(run_id, end)?;
        let mut tables = self.tables();
        tables.check_running(run_id)?;
        tables.set_end(run_id, end.clone());
        Ok(())
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.tables().runs.get(run_id).map(|run| run.record(run_id)))
    }

    fn running_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let tables = self.tables();
        let mut running: Vec<(&String, &Run)> = tables
            .runs
            .iter()
            .filter(|(_, run)| run.status == RunStatus::Running)
            .collect();
        running.sort_unstable_by(|(a_id, a), (b_id, b)| {
            (a.started_at, a_id).cmp(&(b.started_at, b_id))
        });
        Ok(running
            .into_iter()
            .map(|(id, run)| run.record(id))
            .collect())
    }

    fn append_event(&self, event: EventRecord, on_durable: OnDurable) {
        self.write_then(move |tables| tables.append_event(event), on_durable);
    }

    fn flush(&self) -> Result<(), StoreError> {
        // Every write is applied before its call returns.
        Ok(())
    }

    fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        to_i64(after_seq, "seq")?;
        let tables = self.tables();
        let Some(run) = tables.runs.get(run_id) else {
            return Ok(Vec::new());
        };
        Ok(run
            .events
            .range((Bound::Excluded(after_seq), Bound::Unbounded))
            .take(max)
            .map(|(_, frame)| frame.to_string())
            .collect())
    }

    fn kv_get(&self, user: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tables()
            .kv
            .get(user)
            .and_then(|plugins| plugins.get(plugin))
            .and_then(|values| values.get(key))
            .cloned())
    }

    fn kv_set(
        &self,
        user: &str,
        plugin: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.tables()
            .kv
            .entry(user.to_owned())
            .or_default()
            .entry(plugin.to_owned())
            .or_default()
            .insert(key.to_owned(), value);
        Ok(())
    }

    fn kv_delete(&self, user: &str, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let mut tables = self.tables();
        let Some(plugins) = tables.kv.get_mut(user) else {
            return Ok(false);
        };
        let Some(values) = plugins.get_mut(plugin) else {
            return Ok(false);
        };
        let deleted = values.remove(key).is_some();
        // Drop emptied scopes, so deleted users and plugins leave nothing behind.
        if values.is_empty() {
            plugins.remove(plugin);
            if plugins.is_empty() {
                tables.kv.remove(user);
            }
        }
        Ok(deleted)
    }

    fn kv_usage(&self, user: &str, plugin: &str) -> Result<(u64, u64), StoreError> {
        let tables = self.tables();
        let Some(values) = tables.kv.get(user).and_then(|plugins| plugins.get(plugin)) else {
            return Ok((0, 0));
        };
        let bytes = values.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        Ok((values.len() as u64, bytes))
    }

    fn kv_list(
        &self,
        user: &str,
        plugin: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let tables = self.tables();
        let Some(values) = tables.kv.get(user).and_then(|plugins| plugins.get(plugin)) else {
            return Ok(Vec::new());
        };
        // Keys with the prefix are contiguous from the first key >= it.
        Ok(values
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(prefix))
            .take(max)
            .cloned()
            .collect())
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        if !is_json(&entry.detail) {
            return Err(StoreError::Invalid(format!(
                "audit detail of {} is not JSON",
                entry.action
            )));
        }
        self.tables().audit.push((now(), entry.clone()));
        Ok(())
    }

    fn audit_entries(&self, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let tables = self.tables();
        // Newest first, and among entries of the same millisecond the last
        // written first, as SQLite's `ORDER BY ts DESC, id DESC`. The clock
        // may have gone back between entries, so the log is sorted, not reversed.
        let mut order: Vec<usize> = (0..tables.audit.len()).collect();
        order.sort_unstable_by_key(|&i| Reverse((tables.audit[i].0, i)));
        Ok(order
            .into_iter()
            .take(max)
            .map(|i| {
                let (ts, entry) = &tables.audit[i];
                AuditRecord {
                    ts: *ts,
                    entry: entry.clone(),
                }
            })
            .collect())
    }

    fn add_plugin_version(&self, version: &PluginVersion) -> Result<bool, StoreError> {
        to_i64(version.size, "plugin size")?;
        let mut tables = self.tables();
        let versions = tables
            .plugin_versions
            .entry(version.plugin.clone())
            .or_default();
        if versions.contains_key(&version.digest) {
            return Ok(false);
        }
        versions.insert(
            version.digest.clone(),
            PluginVersion {
                created_at: stored(version.created_at),
                activated_at: version.activated_at.map(stored),
                ..version.clone()
            },
        );
        Ok(true)
    }

    fn plugin_versions(&self, plugin: Option<&str>) -> Result<Vec<PluginVersion>, StoreError> {
        let tables = self.tables();
        let by_plugin: Vec<&BTreeMap<String, PluginVersion>> = match plugin {
            Some(plugin) => tables.plugin_versions.get(plugin).into_iter().collect(),
            None => tables.plugin_versions.values().collect(),
        };
        let mut listed = Vec::new();
        // The plugins come in name order; within one, newest first, then by
        // digest, as SQLite's `ORDER BY plugin, created_at DESC, digest`.
        for versions in by_plugin {
            let mut newest_first: Vec<&PluginVersion> = versions.values().collect();
            // Stable: versions of the same time stay in digest order.
            newest_first.sort_by_key(|version| Reverse(version.created_at));
            listed.extend(newest_first.into_iter().cloned());
        }
        Ok(listed)
    }

    fn delete_plugin_version(&self, plugin: &str, digest: &str) -> Result<(), StoreError> {
        let mut guard = self.tables();
        let tables = &mut *guard;
        let Some(versions) = tables
            .plugin_versions
            .get_mut(plugin)
            .filter(|versions| versions.contains_key(digest))
        else {
            return Err(plugin_version_not_found(plugin, digest));
        };
        let active = tables
            .plugin_states
            .get(plugin)
            .and_then(|state| state.active.as_deref());
        if active == Some(digest) {
            return Err(StoreError::Conflict(format!(
                "plugin version {plugin}@{digest} is the active version"
            )));
        }
        versions.remove(digest);
        // Drop an emptied plugin, so deleted plugins leave nothing behind.
        if versions.is_empty() {
            tables.plugin_versions.remove(plugin);
        }
        Ok(())
    }

    fn activate_plugin_version(
        &self,
        plugin: &str,
        digest: &str,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let mut tables = self.tables();
        tables.plugin_version_mut(plugin, digest)?.activated_at = Some(stored(at));
        tables.plugin_state(plugin).active = Some(digest.to_owned());
        Ok(())
    }

    fn set_plugin_enabled(&self, plugin: &str, enabled: bool) -> Result<(), StoreError> {
        self.tables().plugin_state(plugin).enabled = enabled;
        Ok(())
    }

    fn plugin_states(&self) -> Result<Vec<PluginState>, StoreError> {
        Ok(self.tables().plugin_states.values().cloned().collect())
    }

    fn prune_events(&self, older_than: SystemTime, max_rows: usize) -> Result<usize, StoreError> {
        if max_rows == 0 {
            return Ok(0);
        }
        Ok(self.tables().prune_events(older_than, max_rows))
    }
}
