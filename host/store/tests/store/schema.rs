use netra_store::{PluginState, SqliteStore, Store, StoreOptions, Synchronous};

use crate::{at, digest, ended, open, plugin_version, thread_and_run};

#[test]
fn migrations_apply_once_and_reopen_is_a_no_op() {
    let (_dir, path, store) = open();
    assert_eq!(store.schema_version().unwrap(), 4);
    thread_and_run(&store, "thr_1", "run_1", "alice");
    drop(store);

    for _ in 0..2 {
        let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
        assert_eq!(store.schema_version().unwrap(), 4);
        assert_eq!(
            store.thread_owner("thr_1").unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    }
}

#[test]
fn a_version_1_database_keeps_its_events_and_messages_through_the_later_migrations() {
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
    assert_eq!(store.schema_version().unwrap(), 4);
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
fn a_version_3_database_gains_the_plugin_registry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netra.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    for migration in [
        include_str!("../../src/migrations/0001_init.sql"),
        include_str!("../../src/migrations/0002_clustered_logs.sql"),
        include_str!("../../src/migrations/0003_nested_runs.sql"),
    ] {
        conn.execute_batch(migration).unwrap();
    }
    conn.execute_batch(
        "INSERT INTO threads (id, owner, created_at, updated_at) VALUES ('thr_1', 'alice', 1, 1);
         INSERT INTO runs (id, thread_id, user_id, agent, plugin_version, status, started_at, \
             input, parent_run_id) \
             VALUES ('run_1', 'thr_1', 'alice', 'helper', '1', 'running', 1, 'hi', NULL);
         INSERT INTO audit (ts, actor, action, subject, detail) \
             VALUES (5, 'host', 'run.recover', 'run_1', '{}');
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 4);
    assert_eq!(store.run("run_1").unwrap().unwrap().user, "alice");
    let audit = store.audit_entries(10).unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].ts, audit[0].entry.action.as_str()),
        (at(5), "run.recover")
    );
    assert!(store.plugin_versions(None).unwrap().is_empty());
    assert!(store.plugin_states().unwrap().is_empty());
    assert!(
        store
            .add_plugin_version(&plugin_version("helper", 'a', 1_000))
            .unwrap()
    );
    store
        .activate_plugin_version("helper", &digest('a'), at(2_000))
        .unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [PluginState {
            plugin: "helper".into(),
            active: Some(digest('a')),
            enabled: true,
        }]
    );
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    drop(store);

    // The new tables are STRICT, and the active version cannot be deleted
    // even around the store.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "foreign_keys", true).unwrap();
    let wrong_type = conn.execute(
        "INSERT INTO plugin_versions (plugin, digest, kind, size, source, created_at, created_by) \
         VALUES ('echo', 'x', 'tool', 'big', 'dir', 1, 'host')",
        [],
    );
    assert!(wrong_type.is_err());
    let active = conn.execute("DELETE FROM plugin_versions WHERE plugin = 'helper'", []);
    assert!(active.is_err());
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
