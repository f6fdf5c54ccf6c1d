use netra_store::{SqliteStore, Store, StoreOptions, Synchronous};

use crate::{ended, open, thread_and_run};

#[test]
fn migrations_apply_once_and_reopen_is_a_no_op() {
    let (_dir, path, store) = open();
    assert_eq!(store.schema_version().unwrap(), 3);
    thread_and_run(&store, "thr_1", "run_1", "alice");
    drop(store);

    for _ in 0..2 {
        let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        assert_eq!(
            store.thread_owner("thr_1").unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    }
}

#[test]
fn a_version_1_database_keeps_its_events_and_messages_through_migrations_2_and_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netra.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("../../src/migrations/0001_init.sql"))
        .unwrap();
    conn.execute_batch(
        "INSERT INTO threads (id, owner, created_at, updated_at, message_count) \
             VALUES ('thr_1', 'alice', 1, 2, 2);
         INSERT INTO runs (id, thread_id, user_id, agent, plugin_version, status, started_at, \
             ended_at, input) VALUES ('run_1', 'thr_1', 'alice', 'helper', '1', 'completed', 1, 2, 'hi');
         INSERT INTO run_events VALUES ('run_1', 1, 1, '{\"seq\":1}'), ('run_1', 2, 2, '{\"seq\":2}');
         INSERT INTO messages VALUES ('thr_1', 1, 'user', 'hi', 'run_1', 1), \
             ('thr_1', 2, 'assistant', 'hello', 'run_1', 2);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(
        store.events_after("run_1", 0, 10).unwrap(),
        [r#"{"seq":1}"#, r#"{"seq":2}"#]
    );
    let messages = store.thread_messages("thr_1").unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].content, "hello");
    let run = store.run("run_1").unwrap().unwrap();
    assert_eq!((run.last_seq, run.parent_run_id), (2, None));
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
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
