//! How a store is opened and how its writer batches.

use std::time::Duration;

/// SQLite's `synchronous` setting for the WAL database.
///
/// In WAL mode a commit appends to the WAL file. With [`Synchronous::Normal`]
/// the commit is a `write()` into the operating system's page cache and the
/// WAL is fsynced only at checkpoints, so a committed transaction survives the
/// process dying in any way (panic, OOM kill, `kill -9`): the kernel still
/// writes the pages out. Only a power loss or kernel crash can lose the last
/// commits, and even then the database is not corrupted, it just rolls back to
/// an earlier commit. That is exactly the guarantee netra's event log promises
/// ("nothing lost on kill -9"), at a fraction of the cost of an fsync per commit.
///
/// [`Synchronous::Full`] fsyncs the WAL on every commit, which is what a
/// deployment needs to keep every acknowledged event across power loss. Group
/// commit keeps it affordable: one fsync covers a whole batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Synchronous {
    /// Durable across process crashes; the default.
    #[default]
    Normal,
    /// Durable across power loss; one fsync per commit.
    Full,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Normal => "NORMAL",
            Self::Full => "FULL",
        }
    }
}

/// Settings for [`SqliteStore::open`](crate::SqliteStore::open) and
/// [`EventWriter::start`](crate::EventWriter::start).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Durability of a commit; see [`Synchronous`].
    pub synchronous: Synchronous,
    /// How long a connection waits for a lock held by another connection
    /// (another process, or a checkpoint) before failing with "database is locked".
    pub busy_timeout: Duration,
    /// How many idle reader connections the store keeps. More readers than
    /// this may be open at once; the extra ones are closed after use.
    pub readers: usize,
    /// The most writes (events and other jobs) committed in one transaction.
    pub max_batch: usize,
    /// How long the writer waits for more writes after the first one of a batch.
    ///
    /// Zero (the default) means it takes whatever is already queued and
    /// commits at once: writes that arrive while a commit is in progress form
    /// the next batch, so batches grow with load on their own and a lone
    /// event is never delayed. A small linger (hundreds of microseconds) only
    /// pays off with [`Synchronous::Full`] on a disk with slow fsync.
    pub batch_linger: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Normal,
            busy_timeout: Duration::from_secs(5),
            readers: 4,
            max_batch: 512,
            batch_linger: Duration::ZERO,
        }
    }
}
