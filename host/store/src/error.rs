//! The one error type of the store.

use std::sync::Arc;

/// Why a store operation failed.
///
/// It is `Clone` because one failed commit fails every event in its batch, and
/// each of their callbacks gets its own copy.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the operation.
    #[error("database error: {0}")]
    Database(Arc<rusqlite::Error>),
    /// The database directory could not be created.
    #[error("cannot prepare the database directory: {0}")]
    Io(Arc<std::io::Error>),
    /// Applying a numbered migration failed; the database is left at the version before it.
    #[error("migration {version} failed: {source}")]
    Migration {
        /// The migration's number.
        version: u32,
        /// What SQLite said.
        source: Arc<rusqlite::Error>,
    },
    /// The database was written by a newer netra; this build must not touch it.
    #[error("database schema version {found} is newer than this build knows ({known})")]
    SchemaTooNew {
        /// The version in the file.
        found: u32,
        /// The newest version this build has.
        known: u32,
    },
    /// The thread, run or other row named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The row already exists, or is not in a state that allows the change.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The caller passed a value the store cannot keep (for example a number
    /// that does not fit SQLite's signed 64 bits).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The writer thread is gone (it panicked or the store is shutting down).
    #[error("the store's writer has stopped")]
    WriterStopped,
    /// A bug inside the store (a write job panicked); the job's changes were rolled back.
    #[error("internal store error: {0}")]
    Internal(String),
    /// A blocking write was called on the writer thread itself (from an
    /// `on_durable` callback); waiting would deadlock.
    #[error("a blocking store write was called on the writer thread")]
    OnWriterThread,
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Database(Arc::new(err))
    }
}

impl From<std::io::Error> for StoreError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(Arc::new(err))
    }
}

/// The extended result code when `err` is a constraint violation.
pub(crate) fn constraint_code(err: &rusqlite::Error) -> Option<std::ffi::c_int> {
    match err {
        rusqlite::Error::SqliteFailure(e, _)
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Some(e.extended_code)
        }
        _ => None,
    }
}
