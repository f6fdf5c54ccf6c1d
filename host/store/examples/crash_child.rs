//! The child half of the store's kill -9 test (`acknowledged_events_survive_kill_9`):
//! appends events to the database named by its first argument and prints
//! `ack <seq>` from each `on_durable` callback, the moment a server would send
//! the frame to clients, until the parent kills it.

use std::io::Write;
use std::time::Duration;

use netra_store::{EventRecord, SqliteStore, Store, StoreOptions};

fn main() {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: crash_child DB");
        std::process::exit(2);
    };
    let store = match SqliteStore::open(path.as_ref(), StoreOptions::default()) {
        Ok(store) => store,
        Err(err) => {
            eprintln!("cannot open {}: {err}", path.to_string_lossy());
            std::process::exit(1);
        }
    };
    // Bounded, so a broken child ends (and the parent sees EOF) instead of hanging.
    for seq in 1..=100_000u64 {
        let frame =
            format!(r#"{{"type":"message_delta","run_id":"run_1","seq":{seq},"text":"x"}}"#);
        let event = EventRecord {
            run_id: "run_1".into(),
            seq,
            ts_ms: 1_000 + seq as i64,
            frame: frame.into(),
        };
        store.append_event(
            event,
            Box::new(move |result| {
                if result.is_ok() {
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "ack {seq}");
                    let _ = out.flush();
                }
            }),
        );
        if seq % 64 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let _ = store.flush();
}
