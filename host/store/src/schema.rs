//! Opening connections with netra's settings, and the numbered migrations.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::{StoreError, StoreOptions};

/// The schema, one migration per entry; entry `i` takes the database from
/// version `i` to `i + 1`. Append only: a released migration never changes.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_clustered_logs.sql"),
    include_str!("migrations/0003_nested_runs.sql"),
    include_str!("migrations/0004_plugin_versions.sql"),
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Where the database lives.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// A file, in WAL mode.
    File(PathBuf),
    /// A process-private in-memory database shared by the store's
    /// connections (SQLite's `memdb` VFS; freed when the last one closes).
    Memory(String),
}

impl Target {
    /// A fresh in-memory database nobody else names.
    pub(crate) fn memory() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self::Memory(format!(
            "file:/netra-store-{}-{n}?vfs=memdb",
            std::process::id()
        ))
    }

    pub(crate) fn file(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self::File(path.to_path_buf()))
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        match self {
            Self::File(path) => Connection::open(path),
            Self::Memory(uri) => Connection::open_with_flags(uri, OpenFlags::default()),
        }
    }
}

/// Opens the connection the writer owns: WAL, the chosen `synchronous`, and
/// the schema migrated to [`SCHEMA_VERSION`].
pub(crate) fn open_writer(
    target: &Target,
    options: &StoreOptions,
) -> Result<Connection, StoreError> {
    let mut conn = target.open()?;
    conn.busy_timeout(options.busy_timeout)?;
    if matches!(target, Target::File(_)) {
        // WAL lets readers work while the writer commits, and makes a commit
        // one sequential append. The mode is stored in the file, so readers
        // opened later inherit it.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Invalid(format!(
                "the database refused WAL mode (journal_mode is {mode})"
            )));
        }
    }
    apply_common(&conn, options)?;
    // Without a limit the WAL keeps its largest size after a checkpoint.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    // Each write job runs in a savepoint, whose undo pages go to a
    // statement journal: in memory, not a temp file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Every statement the store runs stays prepared.
    conn.set_prepared_statement_cache_capacity(64);
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a reader: same settings, and `query_only` so a bug cannot write
/// around the writer.
pub(crate) fn open_reader(
    target: &Target,
    options: &StoreOptions,
) -> Result<Connection, StoreError> {
    let conn = target.open()?;
    conn.busy_timeout(options.busy_timeout)?;
    apply_common(&conn, options)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Opens the connection that runs checkpoints.
pub(crate) fn open_checkpointer(
    target: &Target,
    options: &StoreOptions,
) -> Result<Connection, StoreError> {
    let conn = target.open()?;
    conn.busy_timeout(options.busy_timeout)?;
    apply_common(&conn, options)?;
    Ok(conn)
}

fn apply_common(conn: &Connection, options: &StoreOptions) -> Result<(), StoreError> {
    conn.pragma_update(None, "synchronous", options.synchronous.pragma())?;
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

/// Applies the migrations the database lacks, each in its own transaction
/// that also bumps `user_version`, so a crash leaves a whole version. The
/// version is read under the write lock, so two processes opening the same
/// file at once cannot both apply a migration.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Rebuilding a table (create, copy, drop, rename) needs foreign keys off:
    // with them on, dropping the old table would run its ON DELETE actions.
    // They cannot change inside a transaction, so they go off around the
    // migrations, and each migration checks them before it commits.
    conn.pragma_update(None, "foreign_keys", false)?;
    let result = apply_migrations(conn);
    conn.pragma_update(None, "foreign_keys", true)?;
    result
}

fn apply_migrations(conn: &mut Connection) -> Result<(), StoreError> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: u32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                known: SCHEMA_VERSION,
            });
        }
        if found == SCHEMA_VERSION {
            return Ok(());
        }
        let version = found + 1;
        let failed = |source| StoreError::Migration {
            version,
            source: std::sync::Arc::new(source),
        };
        tx.execute_batch(MIGRATIONS[found as usize])
            .map_err(failed)?;
        let violations: i64 = tx
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(failed)?;
        if violations > 0 {
            return Err(failed(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY),
                Some(format!(
                    "{violations} foreign key violations after the migration"
                )),
            )));
        }
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
        tracing::info!(version, "applied store migration");
    }
}

/// The schema version of an open database.
pub(crate) fn version(conn: &Connection) -> Result<u32, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}
