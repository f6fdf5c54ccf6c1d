//! [`Store`] on one SQLite database: a pool of readers and one [`EventWriter`].

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::constraint_code;
use crate::model::{checked_end, from_ms, limit, now_ms, to_i64, to_ms};
use crate::schema::{self, Target};
use crate::writer::insert_event;
use crate::{
    AuditEntry, AuditRecord, EventRecord, EventWriter, NewMessage, NewRun, NewThread, OnDurable,
    PluginState, PluginVersion, Role, RunEnd, RunRecord, RunStatus, Store, StoreError,
    StoreOptions, StoredMessage, ThreadSummary, Usage,
};

/// How many ended runs one `prune_events` call looks at, at most. Bounds the
/// work of a call even when many old runs have few or no events.
const PRUNE_RUNS_PER_CALL: i64 = 64;

/// The SQLite store. Reads take a pooled reader connection; writes are jobs
/// on the [`EventWriter`], which it owns.
pub struct SqliteStore {
    writer: EventWriter,
    readers: Readers,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, applies pending
    /// migrations and starts the writer thread.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        Self::open_target(Target::file(path)?, options)
    }

    /// A private in-memory database, for tests and benchmarks. Its
    /// connections share it through SQLite's `memdb` VFS; without WAL a
    /// reader and the writer take turns instead of working at once.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::open_target(Target::memory(), StoreOptions::default())
    }

    fn open_target(target: Target, options: StoreOptions) -> Result<Self, StoreError> {
        let writer = EventWriter::start_target(&target, &options)?;
        Ok(Self {
            writer,
            readers: Readers {
                target,
                idle: Mutex::new(Vec::new()),
                options,
            },
        })
    }

    /// The writer, for the event hot path ([`EventWriter::append`]) and its stats.
    pub fn writer(&self) -> &EventWriter {
        &self.writer
    }

    /// The schema version of the database.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        self.readers.with(schema::version)
    }

    /// `PRAGMA integrity_check`: `["ok"]` for a sound database, otherwise the problems found.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// Idle reader connections; one is opened when none is idle, and kept
/// afterwards if fewer than `options.readers` are.
struct Readers {
    target: Target,
    idle: Mutex<Vec<Connection>>,
    options: StoreOptions,
}

impl Readers {
    fn idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.idle().pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => schema::open_reader(&self.target, &self.options)?,
        };
        let result = read(&conn);
        let mut idle = self.idle();
        if idle.len() < self.options.readers {
            idle.push(conn);
        }
        result
    }
}

const RUN_COLUMNS: &str = "r.id, r.thread_id, r.user_id, r.agent, r.plugin_version, r.status, \
     r.input, r.started_at, r.ended_at, r.error_code, r.prompt_tokens, r.completion_tokens, \
     r.events_pruned, \
     (SELECT COALESCE(MAX(e.seq), 0) FROM run_events e WHERE e.run_id = r.id), \
     r.parent_run_id";

fn run_record(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(5)?;
    let status = RunStatus::parse(&status).ok_or_else(|| bad_value(5, "run status", &status))?;
    let prompt: Option<i64> = row.get(10)?;
    let completion: Option<i64> = row.get(11)?;
    let usage = match (prompt, completion) {
        (None, None) => None,
        (p, c) => Some(Usage {
            prompt_tokens: u64::try_from(p.unwrap_or(0)).unwrap_or(0),
            completion_tokens: u64::try_from(c.unwrap_or(0)).unwrap_or(0),
        }),
    };
    Ok(RunRecord {
        id: row.get(0)?,
        thread_id: row.get(1)?,
        user: row.get(2)?,
        agent: row.get(3)?,
        plugin_version: row.get(4)?,
        status,
        input: row.get(6)?,
        started_at: from_ms(row.get(7)?),
        ended_at: row.get::<_, Option<i64>>(8)?.map(from_ms),
        error_code: row.get(9)?,
        usage,
        events_pruned: row.get(12)?,
        last_seq: u64::try_from(row.get::<_, i64>(13)?).unwrap_or(0),
        parent_run_id: row.get(14)?,
    })
}

const PLUGIN_VERSION_COLUMNS: &str = "plugin, digest, version, kind, size, source, created_at, \
     created_by, activated_at";

fn plugin_version(row: &Row<'_>) -> rusqlite::Result<PluginVersion> {
    Ok(PluginVersion {
        plugin: row.get(0)?,
        digest: row.get(1)?,
        version: row.get(2)?,
        kind: row.get(3)?,
        size: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
        source: row.get(5)?,
        created_at: from_ms(row.get(6)?),
        created_by: row.get(7)?,
        activated_at: row.get::<_, Option<i64>>(8)?.map(from_ms),
    })
}

fn plugin_version_not_found(plugin: &str, digest: &str) -> StoreError {
    StoreError::NotFound(format!("plugin version {plugin}@{digest}"))
}

/// SQLite's default page size, which netra's databases use.
const PAGE_SIZE: u64 = 4096;

/// What a `run_events` row with a frame of `frame_bytes` takes on disk: the
/// table is clustered on its key (`WITHOUT ROWID`, an index b-tree), whose
/// cells keep at most about a quarter of a page inline; a longer frame
/// spills to overflow pages, whole pages each, and a frame just over the
/// bound can cost a page for a hundred bytes (SQLite's file format, "B-tree
/// cell payload"). Counting this, not the frame, keeps a run's growth of
/// the file within its byte budget.
fn event_cost(frame_bytes: usize, page: u64) -> u64 {
    // Key and cell overhead: run id, seq, ts, headers.
    let payload = frame_bytes as u64 + 64;
    let usable = page;
    let max_local = (usable - 12) * 64 / 255 - 23;
    // B-tree pages are not full and interior pages index the leaves: a
    // sixteenth more (`cargo xtask bench hostile`: an event flood grew the
    // file 2 % over what its cells alone add up to).
    let with_pages = |cells: u64| cells + cells / 16;
    if payload <= max_local {
        return with_pages(payload);
    }
    let min_local = (usable - 12) * 32 / 255 - 23;
    let fitted = min_local + (payload - min_local) % (usable - 4);
    let local = if fitted <= max_local {
        fitted
    } else {
        min_local
    };
    with_pages(local + (payload - local).div_ceil(usable - 4) * page)
}

/// A `messages` row read as `seq, role, content, run_id, created_at`.
fn message_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    let role: String = row.get(1)?;
    Ok(StoredMessage {
        seq: u64::try_from(row.get::<_, i64>(0)?).unwrap_or(0),
        role: Role::parse(&role).ok_or_else(|| bad_value(1, "role", &role))?,
        content: row.get(2)?,
        run_id: row.get(3)?,
        created_at: from_ms(row.get(4)?),
    })
}

fn bad_value(column: usize, what: &str, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        format!("unknown {what} {value:?}").into(),
    )
}

/// Whether `sql` (a `SELECT 1 ... WHERE key = ?1`) finds a row.
fn exists(conn: &Connection, sql: &str, key: &str) -> Result<bool, StoreError> {
    Ok(conn.prepare_cached(sql)?.exists([key])?)
}

fn insert_thread(conn: &Connection, thread: &NewThread) -> Result<(), StoreError> {
    let now = now_ms();
    conn.prepare_cached(
        "INSERT INTO threads (id, owner, title, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?4)",
    )?
    .execute((&thread.id, &thread.owner, &thread.title, now))
    .map_err(|err| match constraint_code(&err) {
        Some(_) => StoreError::Conflict(format!("thread {} already exists", thread.id)),
        None => err.into(),
    })?;
    Ok(())
}

fn insert_run(conn: &Connection, run: &NewRun) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO runs (id, thread_id, user_id, agent, plugin_version, status, \
         started_at, input, parent_run_id) VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8)",
    )?
    .execute((
        &run.id,
        &run.thread_id,
        &run.user,
        &run.agent,
        &run.plugin_version,
        to_ms(run.started_at),
        &run.input,
        &run.parent_run_id,
    ))
    .map_err(|err| match constraint_code(&err) {
        Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
            StoreError::NotFound(format!("thread {}", run.thread_id))
        }
        Some(_) => StoreError::Conflict(format!("run {} already exists", run.id)),
        None => err.into(),
    })?;
    Ok(())
}

/// Which thread `insert_messages` appends to.
enum ThreadOf<'a> {
    /// This thread.
    Id(&'a str),
    /// The thread of this run.
    Run(&'a str),
}

fn insert_messages(
    conn: &Connection,
    thread: ThreadOf<'_>,
    run_id: &str,
    messages: &[NewMessage],
) -> Result<(), StoreError> {
    let now = now_ms();
    let count = to_i64(messages.len() as u64, "message count")?;
    // Messages are numbered 1..=message_count and never deleted on their own,
    // so the updated count tells where the new ones go. The writer is the only
    // writer, so nobody can take these numbers meanwhile.
    let (sql, key) = match thread {
        ThreadOf::Id(id) => (
            "UPDATE threads SET updated_at = MAX(updated_at, ?2), \
             message_count = message_count + ?3 WHERE id = ?1 \
             RETURNING id, message_count",
            id,
        ),
        ThreadOf::Run(run) => (
            "UPDATE threads SET updated_at = MAX(updated_at, ?2), \
             message_count = message_count + ?3 \
             WHERE id = (SELECT thread_id FROM runs WHERE id = ?1) \
             RETURNING id, message_count",
            run,
        ),
    };
    let updated: Option<(String, i64)> = conn
        .prepare_cached(sql)?
        .query_row((key, now, count), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((thread_id, total)) = updated else {
        return Err(StoreError::NotFound(match thread {
            ThreadOf::Id(id) => format!("thread {id}"),
            ThreadOf::Run(run) => format!("run {run}"),
        }));
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO messages (thread_id, seq, role, content, run_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (seq, message) in (total - count + 1..).zip(messages) {
        insert
            .execute((
                &thread_id,
                seq,
                message.role.as_str(),
                &message.content,
                run_id,
                now,
            ))
            .map_err(|err| match constraint_code(&err) {
                Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                    StoreError::NotFound(format!("run {run_id}"))
                }
                _ => err.into(),
            })?;
    }
    Ok(())
}

fn update_run_end(
    conn: &Connection,
    id: &str,
    end: &RunEnd,
    usage: Option<(i64, i64)>,
) -> Result<(), StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE runs SET status = ?2, ended_at = ?3, error_code = ?4, \
             prompt_tokens = ?5, completion_tokens = ?6 \
             WHERE id = ?1 AND status = 'running'",
        )?
        .execute((
            id,
            end.status.as_str(),
            to_ms(end.ended_at),
            &end.error_code,
            usage.map(|u| u.0),
            usage.map(|u| u.1),
        ))?;
    if changed == 1 {
        return Ok(());
    }
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM runs WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Err(match status {
        None => StoreError::NotFound(format!("run {id}")),
        Some(status) => StoreError::Conflict(format!("run {id} already ended ({status})")),
    })
}

impl Store for SqliteStore {
    fn create_thread(&self, thread_id: &str, owner: &str) -> Result<(), StoreError> {
        let thread = NewThread {
            id: thread_id.to_owned(),
            owner: owner.to_owned(),
            title: None,
        };
        self.writer.write(move |conn| insert_thread(conn, &thread))
    }

    fn set_thread_title(&self, thread_id: &str, title: Option<&str>) -> Result<(), StoreError> {
        let (id, title) = (thread_id.to_owned(), title.map(str::to_owned));
        self.writer.write(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE threads SET title = ?2 WHERE id = ?1")?
                .execute((&id, &title))?;
            if changed == 0 {
                return Err(StoreError::NotFound(format!("thread {id}")));
            }
            Ok(())
        })
    }

    fn thread_owner(&self, thread_id: &str) -> Result<Option<String>, StoreError> {
        self.readers.with(|conn| {
            Ok(conn
                .prepare_cached("SELECT owner FROM threads WHERE id = ?1")?
                .query_row([thread_id], |r| r.get(0))
                .optional()?)
        })
    }

    fn thread_messages(&self, thread_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, role, content, run_id, created_at FROM messages \
                 WHERE thread_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([thread_id], message_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn thread_page(
        &self,
        thread_id: &str,
        after_seq: u64,
        max: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, role, content, run_id, created_at FROM messages \
                 WHERE thread_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let after = i64::try_from(after_seq).unwrap_or(i64::MAX);
            let rows = stmt.query_map((thread_id, after, limit(max)), message_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn thread_tail(&self, thread_id: &str, max: usize) -> Result<Vec<StoredMessage>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, role, content, run_id, created_at FROM messages \
                 WHERE thread_id = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map((thread_id, limit(max)), message_row)?;
            let mut messages: Vec<StoredMessage> = rows.collect::<Result<_, _>>()?;
            messages.reverse();
            Ok(messages)
        })
    }

    fn event_cost(&self, frame_bytes: usize) -> u64 {
        event_cost(frame_bytes, PAGE_SIZE)
    }

    fn list_threads(&self, owner: &str, max: usize) -> Result<Vec<ThreadSummary>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, title, created_at, updated_at, message_count FROM threads \
                 WHERE owner = ?1 ORDER BY updated_at DESC, id DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map((owner, limit(max)), |row| {
                Ok(ThreadSummary {
                    id: row.get(0)?,
                    title: row.get(1)?,
                    created_at: from_ms(row.get(2)?),
                    last_activity: from_ms(row.get(3)?),
                    message_count: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
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
        let (thread_id, run_id) = (thread_id.to_owned(), run_id.to_owned());
        let messages = messages.to_vec();
        self.writer
            .write(move |conn| insert_messages(conn, ThreadOf::Id(&thread_id), &run_id, &messages))
    }

    fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        let run = run.clone();
        self.writer.write(move |conn| insert_run(conn, &run))
    }

    fn begin_run(&self, thread: Option<NewThread>, run: NewRun, on_durable: OnDurable) {
        self.writer.submit_checked(
            Box::new(move |conn| {
                // Every refusal first, then the writes (no savepoint needed).
                if let Some(new) = &thread
                    && exists(conn, "SELECT 1 FROM threads WHERE id = ?1", &new.id)?
                {
                    return Err(StoreError::Conflict(format!(
                        "thread {} already exists",
                        new.id
                    )));
                }
                let creates_its_thread = thread.as_ref().is_some_and(|t| t.id == run.thread_id);
                if !creates_its_thread
                    && !exists(conn, "SELECT 1 FROM threads WHERE id = ?1", &run.thread_id)?
                {
                    return Err(StoreError::NotFound(format!("thread {}", run.thread_id)));
                }
                if exists(conn, "SELECT 1 FROM runs WHERE id = ?1", &run.id)? {
                    return Err(StoreError::Conflict(format!(
                        "run {} already exists",
                        run.id
                    )));
                }
                if let Some(thread) = &thread {
                    insert_thread(conn, thread)?;
                }
                insert_run(conn, &run)
            }),
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
        let usage = match checked_end(&terminal.run_id, &end) {
            Ok(usage) => usage,
            Err(err) => return on_durable(Err(err)),
        };
        self.writer.submit_checked(
            Box::new(move |conn| {
                let run_id = terminal.run_id.clone();
                // Every refusal first, then the writes (no savepoint needed):
                // a taken seq, then the run's end, which changes nothing when
                // it refuses (an unknown or already ended run).
                let seq = to_i64(terminal.seq, "event seq")?;
                let taken: bool = conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM run_events WHERE run_id = ?1 AND seq = ?2)",
                    )?
                    .query_row((&run_id, seq), |r| r.get(0))?;
                if taken {
                    return Err(StoreError::Conflict(format!(
                        "event {} of run {run_id} already exists",
                        terminal.seq
                    )));
                }
                update_run_end(conn, &run_id, &end, usage)?;
                insert_event(conn, &terminal)?;
                if !messages.is_empty() {
                    insert_messages(conn, ThreadOf::Run(&run_id), &run_id, &messages)?;
                }
                Ok(())
            }),
            on_durable,
        );
    }

    fn finish_run(&self, run_id: &str, end: &RunEnd) -> Result<(), StoreError> {
        let usage = checked_end(run_id, end)?;
        let (id, end) = (run_id.to_owned(), end.clone());
        self.writer
            .write(move |conn| update_run_end(conn, &id, &end, usage))
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.readers.with(|conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs r WHERE r.id = ?1"))?
                .query_row([run_id], run_record)
                .optional()?)
        })
    }

    fn running_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs r WHERE r.status = 'running' \
                 ORDER BY r.started_at, r.id"
            ))?;
            let rows = stmt.query_map([], run_record)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn append_event(&self, event: EventRecord, on_durable: OnDurable) {
        self.writer.append(event, on_durable);
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.writer.flush()
    }

    fn events_after(
        &self,
        run_id: &str,
        after_seq: u64,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        let after = to_i64(after_seq, "seq")?;
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT frame FROM run_events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            )?;
            let rows = stmt.query_map((run_id, after, limit(max)), |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn kv_get(&self, user: &str, plugin: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.readers.with(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT value FROM kv WHERE user_id = ?1 AND plugin = ?2 AND key = ?3",
                )?
                .query_row((user, plugin, key), |r| r.get(0))
                .optional()?)
        })
    }

    fn kv_set(
        &self,
        user: &str,
        plugin: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<(), StoreError> {
        let (user, plugin, key) = (user.to_owned(), plugin.to_owned(), key.to_owned());
        self.writer.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO kv (user_id, plugin, key, value, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (user_id, plugin, key) \
                 DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            )?
            .execute((&user, &plugin, &key, &value, now_ms()))?;
            Ok(())
        })
    }

    fn kv_delete(&self, user: &str, plugin: &str, key: &str) -> Result<bool, StoreError> {
        let (user, plugin, key) = (user.to_owned(), plugin.to_owned(), key.to_owned());
        self.writer.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM kv WHERE user_id = ?1 AND plugin = ?2 AND key = ?3")?
                .execute((&user, &plugin, &key))?;
            Ok(deleted > 0)
        })
    }

    fn kv_usage(&self, user: &str, plugin: &str) -> Result<(u64, u64), StoreError> {
        self.readers.with(|conn| {
            let (keys, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(sum(length(CAST(key AS BLOB)) + length(value)), 0) \
                     FROM kv WHERE user_id = ?1 AND plugin = ?2",
                )?
                .query_row((user, plugin), |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok((
                u64::try_from(keys).unwrap_or(0),
                u64::try_from(bytes).unwrap_or(0),
            ))
        })
    }

    fn kv_list(
        &self,
        user: &str,
        plugin: &str,
        prefix: &str,
        max: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.readers.with(|conn| {
            // Keys with the prefix are contiguous from the first key >= it in
            // the primary-key order, so the scan stops at the first key without it.
            let mut stmt = conn.prepare_cached(
                "SELECT key FROM kv WHERE user_id = ?1 AND plugin = ?2 AND key >= ?3 ORDER BY key",
            )?;
            let mut rows = stmt.query((user, plugin, prefix))?;
            let mut keys = Vec::new();
            while keys.len() < max {
                let Some(row) = rows.next()? else { break };
                let key: String = row.get(0)?;
                if !key.starts_with(prefix) {
                    break;
                }
                keys.push(key);
            }
            Ok(keys)
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.writer.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO audit (ts, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute((
                now_ms(),
                &entry.actor,
                &entry.action,
                &entry.subject,
                &entry.detail,
            ))
            .map_err(|err| match constraint_code(&err) {
                Some(_) => StoreError::Invalid(format!(
                    "audit detail of {} is not JSON",
                    entry.action
                )),
                None => err.into(),
            })?;
            Ok(())
        })
    }

    fn audit_entries(&self, max: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.readers.with(|conn| {
            // `audit_by_ts` holds the rowid too, so this reads the index backwards.
            let mut stmt = conn.prepare_cached(
                "SELECT ts, actor, action, subject, detail FROM audit \
                 ORDER BY ts DESC, id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map([limit(max)], |row| {
                Ok(AuditRecord {
                    ts: from_ms(row.get(0)?),
                    entry: AuditEntry {
                        actor: row.get(1)?,
                        action: row.get(2)?,
                        subject: row.get(3)?,
                        detail: row.get(4)?,
                    },
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn add_plugin_version(&self, version: &PluginVersion) -> Result<bool, StoreError> {
        let size = to_i64(version.size, "plugin size")?;
        let version = version.clone();
        self.writer.write(move |conn| {
            let added = conn
                .prepare_cached(&format!(
                    "INSERT INTO plugin_versions ({PLUGIN_VERSION_COLUMNS}) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                     ON CONFLICT (plugin, digest) DO NOTHING"
                ))?
                .execute((
                    &version.plugin,
                    &version.digest,
                    &version.version,
                    &version.kind,
                    size,
                    &version.source,
                    to_ms(version.created_at),
                    &version.created_by,
                    version.activated_at.map(to_ms),
                ))?;
            Ok(added == 1)
        })
    }

    fn plugin_versions(&self, plugin: Option<&str>) -> Result<Vec<PluginVersion>, StoreError> {
        // One plugin's versions are a range of the primary key.
        let filter = if plugin.is_some() {
            "WHERE plugin = ?1"
        } else {
            ""
        };
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {PLUGIN_VERSION_COLUMNS} FROM plugin_versions {filter} \
                 ORDER BY plugin, created_at DESC, digest"
            ))?;
            let rows = match plugin {
                Some(plugin) => stmt.query_map([plugin], plugin_version)?,
                None => stmt.query_map([], plugin_version)?,
            };
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn delete_plugin_version(&self, plugin: &str, digest: &str) -> Result<(), StoreError> {
        let (plugin, digest) = (plugin.to_owned(), digest.to_owned());
        self.writer.write(move |conn| {
            let recorded = conn
                .prepare_cached("SELECT 1 FROM plugin_versions WHERE plugin = ?1 AND digest = ?2")?
                .exists((&plugin, &digest))?;
            if !recorded {
                return Err(plugin_version_not_found(&plugin, &digest));
            }
            let active = conn
                .prepare_cached("SELECT 1 FROM plugin_state WHERE plugin = ?1 AND active = ?2")?
                .exists((&plugin, &digest))?;
            if active {
                return Err(StoreError::Conflict(format!(
                    "plugin version {plugin}@{digest} is the active version"
                )));
            }
            conn.prepare_cached("DELETE FROM plugin_versions WHERE plugin = ?1 AND digest = ?2")?
                .execute((&plugin, &digest))?;
            Ok(())
        })
    }

    fn activate_plugin_version(
        &self,
        plugin: &str,
        digest: &str,
        at: SystemTime,
    ) -> Result<(), StoreError> {
        let (plugin, digest, at) = (plugin.to_owned(), digest.to_owned(), to_ms(at));
        // The job runs in a savepoint of its own: both changes commit or neither.
        self.writer.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE plugin_versions SET activated_at = ?3 \
                     WHERE plugin = ?1 AND digest = ?2",
                )?
                .execute((&plugin, &digest, at))?;
            if changed == 0 {
                return Err(plugin_version_not_found(&plugin, &digest));
            }
            conn.prepare_cached(
                "INSERT INTO plugin_state (plugin, active, enabled, updated_at) \
                 VALUES (?1, ?2, 1, ?3) \
                 ON CONFLICT (plugin) \
                 DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
            )?
            .execute((&plugin, &digest, now_ms()))?;
            Ok(())
        })
    }

    fn set_plugin_enabled(&self, plugin: &str, enabled: bool) -> Result<(), StoreError> {
        let plugin = plugin.to_owned();
        self.writer.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO plugin_state (plugin, active, enabled, updated_at) \
                 VALUES (?1, NULL, ?2, ?3) \
                 ON CONFLICT (plugin) \
                 DO UPDATE SET enabled = excluded.enabled, updated_at = excluded.updated_at",
            )?
            .execute((&plugin, enabled, now_ms()))?;
            Ok(())
        })
    }

    fn plugin_states(&self) -> Result<Vec<PluginState>, StoreError> {
        self.readers.with(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT plugin, active, enabled FROM plugin_state ORDER BY plugin",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(PluginState {
                    plugin: row.get(0)?,
                    active: row.get(1)?,
                    enabled: row.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn prune_events(&self, older_than: SystemTime, max_rows: usize) -> Result<usize, StoreError> {
        if max_rows == 0 {
            return Ok(0);
        }
        let cutoff = to_ms(older_than);
        self.writer.write(move |conn| {
            let runs: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM runs \
                     WHERE ended_at IS NOT NULL AND events_pruned = 0 AND ended_at < ?1 \
                     ORDER BY ended_at LIMIT ?2",
                )?
                .query_map((cutoff, PRUNE_RUNS_PER_CALL), |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut budget = max_rows;
            for run_id in runs {
                let deleted = conn
                    .prepare_cached(
                        "DELETE FROM run_events WHERE run_id = ?1 AND seq IN \
                         (SELECT seq FROM run_events WHERE run_id = ?1 ORDER BY seq LIMIT ?2)",
                    )?
                    .execute((&run_id, limit(budget)))?;
                if deleted < budget {
                    // Fewer than asked for: the run has no events left.
                    conn.prepare_cached("UPDATE runs SET events_pruned = 1 WHERE id = ?1")?
                        .execute([&run_id])?;
                }
                budget -= deleted;
                if budget == 0 {
                    break;
                }
            }
            Ok(max_rows - budget)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::event_cost;

    #[test]
    fn small_frames_cost_what_they_are_and_spilled_ones_whole_pages() {
        assert_eq!(event_cost(500, 4096), 564 + 564 / 16);
        // Just over the inline bound: a page for the spill.
        let spilled = event_cost(1100, 4096);
        assert!((4097..5300).contains(&spilled), "{spilled}");
        // Large frames fill their overflow pages.
        let large = event_cost(64 * 1024, 4096);
        assert!((64 * 1024..75 * 1024).contains(&large), "{large}");
    }
}
