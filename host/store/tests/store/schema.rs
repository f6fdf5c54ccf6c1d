use netra_store::{SqliteStore, Store, StoreOptions, Synchronous};

use crate::{ended, open, thread_and_run};

#[test]
fn migrations_apply_once_and_reopen_is_a_no_op() {
    let (_dir, path, store) = open();
    assert_eq!(store.schema_version().unwrap(), 1);
    thread_and_run(&store, "thr_1", "run_1", "alice");
    drop(store);

    for _ in 0..2 {
        let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(store.schema_version().unwrap(), 1);
        assert_eq!(
            store.thread_owner("thr_1").unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    }
}

#[test]
fn a_newer_schema_is_refused() {
    let (_dir, path, store) = open();
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path, StoreOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn opens_in_wal_mode_with_the_chosen_synchronous() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netra.db");
    let options = StoreOptions {
        synchronous: Synchronous::Full,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&path, options).unwrap();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    store
        .finish_run("run_1", &ended(netra_store::RunStatus::Completed, 2_000))
        .unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn in_memory_store_works_across_connections() {
    let store = SqliteStore::open_in_memory().unwrap();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    assert_eq!(
        store.thread_owner("thr_1").unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.run("run_1").unwrap().unwrap().user, "alice");
    // A second in-memory store is a different database.
    let other = SqliteStore::open_in_memory().unwrap();
    assert_eq!(other.thread_owner("thr_1").unwrap(), None);
}
