//! Tests of netra-store against real SQLite files in temporary directories,
//! and of the in-memory store against the same assertions (`conformance`).

mod conformance;
mod kv;
mod memory;
mod plugins;
mod retention;
mod schema;
mod threads;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netra_store::{
    EventRecord, NewRun, PluginVersion, RunEnd, RunStatus, SqliteStore, Store, StoreError,
    StoreOptions,
};
use tempfile::TempDir;

/// A store on a fresh file; keep the directory alive as long as the store.
fn open() -> (TempDir, PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("netra.db");
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    (dir, path, store)
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn new_run(id: &str, thread_id: &str, user: &str) -> NewRun {
    NewRun {
        id: id.into(),
        thread_id: thread_id.into(),
        user: user.into(),
        agent: "helper".into(),
        plugin_version: "0.1.0".into(),
        input: "hello".into(),
        started_at: at(1_000),
        parent_run_id: None,
    }
}

/// Creates a thread and a run in it.
fn thread_and_run(store: &SqliteStore, thread_id: &str, run_id: &str, user: &str) {
    store.create_thread(thread_id, user).unwrap();
    store.create_run(&new_run(run_id, thread_id, user)).unwrap();
}

fn ended(status: RunStatus, ms: u64) -> RunEnd {
    RunEnd {
        status,
        ended_at: at(ms),
        error_code: None,
        usage: None,
    }
}

fn frame(run_id: &str, seq: u64) -> Arc<str> {
    format!(r#"{{"type":"message_delta","run_id":"{run_id}","seq":{seq},"text":"x"}}"#).into()
}

fn event(run_id: &str, seq: u64) -> EventRecord {
    EventRecord {
        run_id: run_id.into(),
        seq,
        ts_ms: 1_000 + seq as i64,
        frame: frame(run_id, seq),
    }
}

/// Appends an event through the writer and waits for its commit.
fn append_sync(store: &SqliteStore, event: EventRecord) -> Result<(), StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    store.append_event(
        event,
        Box::new(move |result| {
            tx.send(result).unwrap();
        }),
    );
    rx.recv().unwrap()
}

/// A digest made of one hex digit repeated, `sha256:aaaa...`.
fn digest(hex: char) -> String {
    format!("sha256:{}", hex.to_string().repeat(64))
}

/// A tool version loaded from the plugins directory, created at `created_ms`.
fn plugin_version(plugin: &str, hex: char, created_ms: u64) -> PluginVersion {
    PluginVersion {
        plugin: plugin.into(),
        digest: digest(hex),
        version: Some("0.1.0".into()),
        kind: "tool".into(),
        size: 12_345,
        source: "dir".into(),
        created_at: at(created_ms),
        created_by: "host".into(),
        activated_at: None,
    }
}
