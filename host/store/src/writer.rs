//! The writer: one thread, one write connection, one ordered queue, group commit.
//!
//! Every write of a [`SqliteStore`](crate::SqliteStore) (events, runs,
//! threads, messages, kv, audit, plugin versions, pruning) goes through this
//! queue, so:
//! - writes commit in the order they were submitted, whoever submitted them
//!   (a run's `finish_run` queued after its last event commits after it);
//! - there is exactly one SQLite writer per database, so writers never wait on
//!   each other's locks or fail with `SQLITE_BUSY`;
//! - events and other writes share commits: the loop takes the first queued
//!   write, then everything else already queued (up to
//!   [`StoreOptions::max_batch`]), runs them all in one transaction and
//!   commits once. Writes that arrive during a commit form the next batch, so
//!   the batch size grows with load and the cost of a commit is shared by
//!   every write in it.
//!
//! After the commit, the callbacks of the batch run on this thread, in
//! submission order. The server sends an event to clients from its callback,
//! which is how "append, commit, then send" holds without a client ever
//! waiting on a commit of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

use crate::model::to_i64;
use crate::schema::{self, Target};
use crate::{EventRecord, StoreError, StoreOptions};

/// Runs on the writer thread once the write it belongs to is committed
/// (`Ok`) or has failed (`Err`: nothing of it was stored). It should be quick:
/// the next batch waits for it.
pub type OnDurable = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A write run inside the writer's transaction (in a savepoint of its own,
/// so its failure undoes only its changes).
pub(crate) type WriteJob = Box<dyn FnOnce(&Connection) -> Result<(), StoreError> + Send>;

enum Item {
    Event(EventRecord, OnDurable),
    Job(WriteJob, OnDurable),
    /// A job that checks everything that can refuse it before it changes
    /// anything, so it needs no savepoint (see [`EventWriter::submit_checked`]).
    Checked(WriteJob, OnDurable),
}

impl Item {
    fn into_callback(self) -> OnDurable {
        match self {
            Self::Event(_, done) | Self::Job(_, done) | Self::Checked(_, done) => done,
        }
    }
}

/// Counters of what the writer has done, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed (or attempted).
    pub transactions: u64,
    /// Events written.
    pub events: u64,
    /// Other writes run.
    pub jobs: u64,
}

#[derive(Default)]
struct Counters {
    transactions: AtomicU64,
    events: AtomicU64,
    jobs: AtomicU64,
}

/// A handle to the store's writer thread; cheap to clone.
///
/// The thread owns the database's only write connection and one FIFO queue.
/// It takes the first queued write, then everything else already queued (up
/// to [`StoreOptions::max_batch`], waiting up to [`StoreOptions::batch_linger`]
/// for more), runs them all in one transaction, commits once, then runs their
/// callbacks in submission order. Every write of a [`SqliteStore`](crate::SqliteStore)
/// goes through this queue, so events, runs, messages, kv and pruning commit
/// in the order they were submitted and share commits.
///
/// The thread stops, after committing everything queued, when the last
/// handle is dropped, and that drop waits for it.
#[derive(Clone)]
pub struct EventWriter {
    shared: Arc<Shared>,
}

struct Shared {
    checkpointer: Option<Checkpointer>,
    tx: Option<Sender<Item>>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
    counters: Arc<Counters>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // The writer's connection, closed last, makes the final checkpoint.
        drop(self.checkpointer.take());
        // Closing the queue ends the loop once it has drained.
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            // A callback may hold the last handle; the thread cannot join itself.
            if thread.thread().id() != thread::current().id() && thread.join().is_err() {
                tracing::error!("the store writer thread panicked");
            }
        }
    }
}

impl EventWriter {
    /// Opens `path` (creating it and its directory if needed, migrating the
    /// schema) and starts the writer thread.
    ///
    /// A database must have one writer: [`SqliteStore::open`](crate::SqliteStore::open)
    /// starts one and hands it out with [`SqliteStore::writer`](crate::SqliteStore::writer);
    /// use this only for a process that writes events and nothing else.
    pub fn start(path: &Path, options: &StoreOptions) -> Result<Self, StoreError> {
        Self::start_target(&Target::file(path)?, options)
    }

    pub(crate) fn start_target(
        target: &Target,
        options: &StoreOptions,
    ) -> Result<Self, StoreError> {
        let conn = schema::open_writer(target, options)?;
        let checkpointer = match target {
            Target::File(_) => {
                // Checkpoints (copying the WAL into the database, with an
                // fsync) run on a thread of their own, not between commits.
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                Some(Checkpointer::start(target, options)?)
            }
            Target::Memory(_) => None,
        };
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(Counters::default());
        let batching = Batching {
            max: options.max_batch.max(1),
            linger: options.batch_linger,
            restart_wal: checkpointer.is_some(),
        };
        let thread = thread::Builder::new()
            .name("netra-store-writer".into())
            .spawn({
                let counters = counters.clone();
                move || run(conn, &rx, batching, &counters)
            })?;
        Ok(Self {
            shared: Arc::new(Shared {
                checkpointer,
                tx: Some(tx),
                thread_id: thread.thread().id(),
                thread: Some(thread),
                counters,
            }),
        })
    }

    /// Queues one event. `on_durable` runs on the writer thread right after
    /// the transaction containing it commits, or with the error if it could
    /// not be stored (a duplicate `(run_id, seq)`, an unknown run, a failed
    /// commit). Events commit, and their callbacks run, strictly in
    /// submission order, interleaved in that order with every other write.
    ///
    /// Never blocks: the queue is unbounded, and it is drained as fast as the
    /// disk allows. If the writer has stopped, `on_durable` runs at once on
    /// this thread with [`StoreError::WriterStopped`].
    pub fn append(&self, event: EventRecord, on_durable: OnDurable) {
        self.send(Item::Event(event, on_durable));
    }

    /// Blocks until everything queued before the call is committed.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(()))
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        let c = &self.shared.counters;
        WriterStats {
            transactions: c.transactions.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            jobs: c.jobs.load(Ordering::Relaxed),
        }
    }

    /// Queues a write; `done` gets its outcome after the commit.
    pub(crate) fn submit(&self, job: WriteJob, done: OnDurable) {
        self.send(Item::Job(job, done));
    }

    /// Queues a write that runs without a savepoint of its own: it must do
    /// every check that can refuse it before its first change. If it fails
    /// anyway after changing something (an I/O error), the whole batch is
    /// rolled back and fails with it, so nothing half-done is committed.
    /// Saving the savepoint matters on the hottest writes (a run's start and
    /// end): its undo journal copies every page the write touches.
    pub(crate) fn submit_checked(&self, job: WriteJob, done: OnDurable) {
        self.send(Item::Checked(job, done));
    }

    /// Queues a write and blocks until it is committed; returns what it produced.
    pub(crate) fn write<T: Send + 'static>(
        &self,
        job: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if thread::current().id() == self.shared.thread_id {
            return Err(StoreError::OnWriterThread);
        }
        let slot = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::sync_channel(1);
        let produced = slot.clone();
        self.submit(
            Box::new(move |conn| {
                let value = job(conn)?;
                *produced.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
                Ok(())
            }),
            Box::new(move |result| {
                // The caller waits on `rx`, so the send cannot fail while it matters.
                let _ = tx.send(result);
            }),
        );
        rx.recv().map_err(|_| StoreError::WriterStopped)??;
        let value = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        value.ok_or_else(|| StoreError::Internal("a committed write produced no value".into()))
    }

    fn send(&self, item: Item) {
        let Some(tx) = &self.shared.tx else {
            return item.into_callback()(Err(StoreError::WriterStopped));
        };
        if let Err(mpsc::SendError(item)) = tx.send(item) {
            item.into_callback()(Err(StoreError::WriterStopped));
        }
    }
}

/// How often the checkpointer copies committed WAL frames into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// How often the writer itself checkpoints, so the WAL can rewind.
const WRITER_CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// A thread with its own connection that runs passive checkpoints, so the
/// writer never pays for one (they copy pages and fsync). A passive
/// checkpoint takes no lock the writer needs: it copies what is committed
/// and stops where a reader still needs the WAL.
struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(target: &Target, options: &StoreOptions) -> Result<Self, StoreError> {
        let conn = schema::open_checkpointer(target, options)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("netra-store-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
                    let done = conn
                        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
                    if let Err(err) = done {
                        tracing::warn!("WAL checkpoint failed: {err}");
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the store checkpoint thread panicked");
        }
    }
}

#[derive(Clone, Copy)]
struct Batching {
    max: usize,
    linger: Duration,
    /// Whether the writer checkpoints now and then so the WAL can rewind
    /// (file databases; the checkpointer thread does the bulk of the copying).
    restart_wal: bool,
}

fn run(mut conn: Connection, rx: &Receiver<Item>, batching: Batching, counters: &Counters) {
    let mut batch = Vec::with_capacity(batching.max);
    let mut last_checkpoint = Instant::now();
    while let Ok(first) = rx.recv() {
        batch.push(first);
        collect(rx, &mut batch, batching);
        counters.transactions.fetch_add(1, Ordering::Relaxed);
        for (done, result) in write_batch(&mut conn, batch.drain(..), counters) {
            if catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
                tracing::error!("an on_durable callback panicked; the writer goes on");
            }
        }
        if batching.restart_wal && last_checkpoint.elapsed() >= WRITER_CHECKPOINT_EVERY {
            // The checkpointer is always a few commits behind a busy writer,
            // and SQLite only rewinds the WAL once all of it is copied. A
            // checkpoint here, between commits, copies that small rest, so
            // the next commit starts the WAL over instead of growing it.
            last_checkpoint = Instant::now();
            if let Err(err) =
                conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
            {
                tracing::warn!("WAL checkpoint failed: {err}");
            }
        }
    }
    // The queue is closed and drained; dropping `conn` checkpoints the WAL.
}

/// Adds to `batch` what is already queued, and with a linger what arrives
/// within it, up to the batch limit.
fn collect(rx: &Receiver<Item>, batch: &mut Vec<Item>, batching: Batching) {
    let deadline = (!batching.linger.is_zero()).then(|| Instant::now() + batching.linger);
    while batch.len() < batching.max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => {
                let Some(deadline) = deadline else { return };
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(item) => batch.push(item),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
                }
            }
        }
    }
}

type Outcome = (OnDurable, Result<(), StoreError>);

/// Runs a batch in one transaction. Each item's result is its own until the
/// commit; if the transaction as a whole fails, every item fails with it.
fn write_batch(
    conn: &mut Connection,
    mut items: impl ExactSizeIterator<Item = Item>,
    counters: &Counters,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len());
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => return fail_all(StoreError::from(err), outcomes, items),
    };
    {
        // Prepared once per batch: events are most of what a batch holds.
        let mut insert = match tx.prepare_cached(INSERT_EVENT) {
            Ok(insert) => insert,
            Err(err) => return fail_all(StoreError::from(err), outcomes, items),
        };
        while let Some(item) = items.next() {
            let (done, result) = match item {
                Item::Event(event, done) => {
                    counters.events.fetch_add(1, Ordering::Relaxed);
                    (done, execute_insert_event(&mut insert, &event))
                }
                Item::Job(job, done) => {
                    counters.jobs.fetch_add(1, Ordering::Relaxed);
                    (done, run_job(&tx, job))
                }
                Item::Checked(job, done) => {
                    counters.jobs.fetch_add(1, Ordering::Relaxed);
                    let before = tx.total_changes();
                    let result = match catch_unwind(AssertUnwindSafe(|| job(&tx))) {
                        Ok(result) => result,
                        Err(_) => Err(StoreError::Internal("a write job panicked".into())),
                    };
                    if let Err(err) = &result
                        && tx.total_changes() != before
                    {
                        // Refused after a change: only dropping the whole
                        // transaction undoes it.
                        let err = err.clone();
                        outcomes.push((done, result));
                        drop(insert);
                        drop(tx);
                        return fail_all(err, outcomes, items);
                    }
                    (done, result)
                }
            };
            let failed = result.as_ref().err().cloned();
            outcomes.push((done, result));
            // Some errors (I/O, disk full) make SQLite roll the whole transaction
            // back; going on would run the rest outside any transaction.
            if let Some(err) = failed
                && tx.is_autocommit()
            {
                return fail_all(err, outcomes, items);
            }
        }
    }
    if let Err(err) = tx.commit() {
        let err = StoreError::from(err);
        for (_, result) in &mut outcomes {
            *result = Err(err.clone());
        }
    }
    outcomes
}

fn fail_all(
    err: StoreError,
    mut outcomes: Vec<Outcome>,
    rest: impl Iterator<Item = Item>,
) -> Vec<Outcome> {
    for (_, result) in &mut outcomes {
        *result = Err(err.clone());
    }
    outcomes.extend(rest.map(|item| (item.into_callback(), Err(err.clone()))));
    outcomes
}

const INSERT_EVENT: &str =
    "INSERT INTO run_events (run_id, seq, ts, frame) VALUES (?1, ?2, ?3, ?4)";

pub(crate) fn insert_event(conn: &Connection, event: &EventRecord) -> Result<(), StoreError> {
    execute_insert_event(&mut conn.prepare_cached(INSERT_EVENT)?, event)
}

fn execute_insert_event(
    insert: &mut rusqlite::CachedStatement<'_>,
    event: &EventRecord,
) -> Result<(), StoreError> {
    // A failed INSERT undoes only itself, so no savepoint is needed here.
    insert
        .execute((
            &event.run_id,
            to_i64(event.seq, "event seq")?,
            event.ts_ms,
            &*event.frame,
        ))
        .map_err(|err| match crate::error::constraint_code(&err) {
            Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
                StoreError::NotFound(format!("run {}", event.run_id))
            }
            Some(_) => StoreError::Conflict(format!(
                "event {} of run {} already exists",
                event.seq, event.run_id
            )),
            None => err.into(),
        })?;
    Ok(())
}

fn run_job(conn: &Connection, job: WriteJob) -> Result<(), StoreError> {
    // A savepoint of its own, so a failing job undoes only its changes. The
    // statements are cached: rusqlite's `savepoint()` parses them anew each
    // time, which costs more than a small job itself.
    conn.prepare_cached("SAVEPOINT job")?.execute([])?;
    let result = match catch_unwind(AssertUnwindSafe(|| job(conn))) {
        Ok(result) => result,
        Err(_) => Err(StoreError::Internal("a write job panicked".into())),
    };
    if result.is_err() {
        conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
    }
    conn.prepare_cached("RELEASE job")?.execute([])?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit_rows(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
            .unwrap()
    }

    fn insert_audit(conn: &Connection) -> Result<(), StoreError> {
        conn.execute(
            "INSERT INTO audit (ts, actor, action, subject, detail) VALUES (1, 'a', 'b', 'c', '{}')",
            [],
        )?;
        Ok(())
    }

    #[test]
    fn a_checked_job_that_fails_after_a_change_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netra.db");
        let writer = EventWriter::start(&path, &StoreOptions::default()).unwrap();
        let (tx, rx) = mpsc::channel();

        // Refused before any change: only this job fails.
        let done = tx.clone();
        writer.submit_checked(
            Box::new(|_| Err(StoreError::Conflict("refused up front".into()))),
            Box::new(move |r| done.send(("clean", r)).unwrap()),
        );
        writer.flush().unwrap();
        // Refused after a change: the change must not be committed.
        let done = tx.clone();
        writer.submit_checked(
            Box::new(|conn| {
                insert_audit(conn)?;
                Err(StoreError::Internal("failed half-way".into()))
            }),
            Box::new(move |r| done.send(("dirty", r)).unwrap()),
        );
        // The flush may share the failed batch, and then fails with it.
        let _ = writer.flush();
        drop(tx);
        let outcomes: Vec<_> = rx.iter().collect();
        assert!(matches!(
            outcomes[0],
            ("clean", Err(StoreError::Conflict(_)))
        ));
        assert!(matches!(outcomes[1], ("dirty", Err(_))));
        assert_eq!(
            audit_rows(&path),
            0,
            "a half-done checked job was committed"
        );

        // A checked job that succeeds commits.
        writer.submit_checked(Box::new(insert_audit), Box::new(|r| r.unwrap()));
        writer.flush().unwrap();
        assert_eq!(audit_rows(&path), 1);
    }
}
