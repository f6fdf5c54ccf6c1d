//! Raw writer throughput: runs shaped like `helper`'s (begin, 8 events, end
//! with 2 messages), submitted as fast as one thread can.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use netra_store::{
    EventRecord, NewMessage, NewRun, NewThread, Role, RunEnd, RunStatus, SqliteStore, Store,
    StoreOptions,
};

fn main() {
    let dir = std::env::args().nth(1).expect("dir");
    let runs: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000);
    let per_batch: usize = std::env::args()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let store = SqliteStore::open(
        &std::path::Path::new(&dir).join("netra.db"),
        StoreOptions::default(),
    )
    .unwrap();
    let frame: Arc<str> = format!(
        "{{\"type\":\"message_delta\",\"run_id\":\"run_0\",\"text\":\"{}\"}}",
        "x".repeat(250)
    )
    .into();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    for i in 0..runs {
        let run_id = format!("run_{:032x}", i);
        let thread_id = format!("thr_{:032x}", i);
        let ok = |r: Result<(), _>| r.unwrap();
        store.begin_run(
            Some(NewThread {
                id: thread_id.clone(),
                owner: format!("u{}", i % 100),
                title: Some("what is 2+3*4".into()),
            }),
            NewRun {
                id: run_id.clone(),
                thread_id,
                user: format!("u{}", i % 100),
                agent: "helper".into(),
                plugin_version: "1".into(),
                input: "what is 2+3*4".into(),
                started_at: SystemTime::now(),
                parent_run_id: None,
            },
            Box::new(ok),
        );
        for seq in 1..=7 {
            store.append_event(
                EventRecord {
                    run_id: run_id.clone(),
                    seq,
                    ts_ms: 1,
                    frame: frame.clone(),
                },
                Box::new(ok),
            );
        }
        let d = done.clone();
        store.end_run(
            EventRecord {
                run_id,
                seq: 8,
                ts_ms: 1,
                frame: frame.clone(),
            },
            vec![
                NewMessage {
                    role: Role::User,
                    content: "what is 2+3*4".into(),
                },
                NewMessage {
                    role: Role::Assistant,
                    content: "14".into(),
                },
            ],
            RunEnd {
                status: RunStatus::Completed,
                ended_at: SystemTime::now(),
                error_code: None,
                usage: None,
            },
            Box::new(move |r| {
                r.unwrap();
                d.fetch_add(1, Ordering::Relaxed);
            }),
        );
        if per_batch > 0 && i % per_batch == per_batch - 1 {
            store.flush().unwrap();
        }
    }
    store.flush().unwrap();
    let el = start.elapsed();
    let stats = store.writer().stats();
    println!(
        "{runs} runs in {:?}: {:.1} us/run, {} transactions",
        el,
        el.as_secs_f64() * 1e6 / runs as f64,
        stats.transactions
    );
}
