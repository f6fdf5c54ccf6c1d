use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use netra_store::{
    EventWriter, RunStatus, SqliteStore, Store, StoreError, StoreOptions, Synchronous,
};

use crate::{append_sync, ended, event, open, thread_and_run};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 1000;

/// Eight threads append 1000 events each. Submission order is made
/// observable with a counter taken under a lock just around `append`, so the
/// test can check callbacks run in exactly that order.
#[test]
fn concurrent_appends_commit_in_order_with_group_commit() {
    let (_dir, path, store) = open();
    let store = Arc::new(store);
    for t in 0..THREADS {
        thread_and_run(&store, &format!("thr_{t}"), &format!("run_{t}"), "alice");
    }
    let before = store.writer().stats();

    let started = std::time::Instant::now();
    let submitted = Arc::new(Mutex::new(0u64));
    let completed: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::default();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, submitted, completed) =
                (store.clone(), submitted.clone(), completed.clone());
            std::thread::spawn(move || {
                for seq in 1..=PER_THREAD {
                    let completed = completed.clone();
                    let mut next = submitted.lock().unwrap();
                    let order = *next;
                    *next += 1;
                    store.append_event(
                        event(&format!("run_{t}"), seq),
                        Box::new(move |result| {
                            result.unwrap();
                            completed.lock().unwrap().push((order, t, seq));
                        }),
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    store.flush().unwrap();

    let completed = completed.lock().unwrap();
    assert_eq!(completed.len() as u64, THREADS * PER_THREAD);
    // Callbacks ran in submission order, each exactly once...
    for (i, (order, _, _)) in completed.iter().enumerate() {
        assert_eq!(*order, i as u64);
    }
    // ...hence in seq order within every run.
    let mut last: HashMap<u64, u64> = HashMap::new();
    for &(_, t, seq) in completed.iter() {
        let prev = last.insert(t, seq).unwrap_or(0);
        assert_eq!(seq, prev + 1, "run_{t}");
    }

    let stats = store.writer().stats();
    let transactions = stats.transactions - before.transactions;
    assert_eq!(stats.events - before.events, THREADS * PER_THREAD);
    eprintln!(
        "{} events in {transactions} transactions, {:?}",
        THREADS * PER_THREAD,
        started.elapsed()
    );
    assert!(
        transactions < THREADS * PER_THREAD / 4,
        "group commit did not batch: {transactions} transactions"
    );

    for t in 0..THREADS {
        let frames = store
            .events_after(&format!("run_{t}"), 0, usize::MAX)
            .unwrap();
        assert_eq!(frames.len() as u64, PER_THREAD);
        assert_eq!(frames[0], *crate::frame(&format!("run_{t}"), 1));
    }
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM run_events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows as u64, THREADS * PER_THREAD);
}

#[test]
fn events_survive_a_drop_without_flush() {
    let (_dir, path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    let durable = Arc::new(AtomicUsize::new(0));
    for seq in 1..=5000 {
        let durable = durable.clone();
        store.writer().append(
            event("run_1", seq),
            Box::new(move |result| {
                result.unwrap();
                durable.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    // Dropping the store drains the queue and waits for the writer.
    drop(store);
    assert_eq!(durable.load(Ordering::SeqCst), 5000);

    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    let frames = store.events_after("run_1", 0, usize::MAX).unwrap();
    assert_eq!(frames.len(), 5000);
    assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 5000);
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
}

#[test]
fn a_write_commits_after_the_events_queued_before_it() {
    let (_dir, _path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    for seq in 1..=300 {
        store.append_event(event("run_1", seq), Box::new(|result| result.unwrap()));
    }
    // No flush: finish_run is queued behind the events, so once it returns
    // they are committed too.
    store
        .finish_run("run_1", &ended(RunStatus::Completed, 9_000))
        .unwrap();
    assert_eq!(
        store.events_after("run_1", 0, usize::MAX).unwrap().len(),
        300
    );
}

#[test]
fn a_failing_event_does_not_fail_its_batch() {
    let (_dir, _path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    append_sync(&store, event("run_1", 1)).unwrap();
    let (tx, rx) = mpsc::channel();
    // Submitted together, so they very likely share a transaction.
    for (run, seq) in [("run_1", 2), ("run_1", 1), ("run_nope", 1), ("run_1", 3)] {
        let tx = tx.clone();
        store.append_event(
            event(run, seq),
            Box::new(move |r| tx.send((seq, r)).unwrap()),
        );
    }
    let results: Vec<_> = rx.iter().take(4).collect();
    assert!(matches!(results[0], (2, Ok(()))));
    assert!(matches!(results[1], (1, Err(StoreError::Conflict(_)))));
    assert!(matches!(results[2], (1, Err(StoreError::NotFound(_)))));
    assert!(matches!(results[3], (3, Ok(()))));
    assert_eq!(store.events_after("run_1", 0, 10).unwrap().len(), 3);
}

#[test]
fn callbacks_cannot_break_the_writer() {
    let (_dir, _path, store) = open();
    let store = Arc::new(store);
    thread_and_run(&store, "thr_1", "run_1", "alice");
    store.append_event(event("run_1", 1), Box::new(|_| panic!("a buggy callback")));
    // A blocking write from a callback would wait on itself; it is refused.
    let (tx, rx) = mpsc::channel();
    let inner = store.clone();
    store.append_event(
        event("run_1", 2),
        Box::new(move |_| tx.send(inner.create_thread("thr_x", "alice")).unwrap()),
    );
    assert!(matches!(
        rx.recv().unwrap(),
        Err(StoreError::OnWriterThread)
    ));
    append_sync(&store, event("run_1", 3)).unwrap();
    assert_eq!(store.events_after("run_1", 0, 10).unwrap().len(), 3);
}

#[test]
fn a_standalone_writer_with_full_sync_and_linger() {
    let (_dir, path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    drop(store);
    let options = StoreOptions {
        synchronous: Synchronous::Full,
        batch_linger: Duration::from_millis(1),
        max_batch: 64,
        ..StoreOptions::default()
    };
    let writer = EventWriter::start(&path, &options).unwrap();
    let ok = Arc::new(AtomicUsize::new(0));
    for seq in 1..=1000 {
        let ok = ok.clone();
        writer.append(
            event("run_1", seq),
            Box::new(move |r| {
                r.unwrap();
                ok.fetch_add(1, Ordering::SeqCst);
            }),
        );
    }
    writer.flush().unwrap();
    assert_eq!(ok.load(Ordering::SeqCst), 1000);
    let stats = writer.stats();
    // At most 64 per batch; a flush is a write of its own.
    assert!(stats.transactions >= 1000 / 64, "{stats:?}");
    assert!(stats.transactions < 200, "{stats:?}");
    drop(writer);
    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(
        store.events_after("run_1", 0, usize::MAX).unwrap().len(),
        1000
    );
}

/// Kills a process that is appending events with SIGKILL: every event it had
/// acknowledged is in the log, and the database is sound.
#[cfg(unix)]
#[test]
fn acknowledged_events_survive_kill_9() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let (_dir, path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    drop(store);

    // `cargo test` builds the package's examples next to the test binary's
    // directory: target/<profile>/examples/crash_child.
    let exe = std::env::current_exe().unwrap();
    let child_exe = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("crash_child"))
        .unwrap();
    assert!(child_exe.exists(), "{} is missing", child_exe.display());
    let mut child = Command::new(child_exe)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut acked = 0u64;
    for line in stdout.lines() {
        let Some(seq) = line
            .unwrap()
            .split_once("ack ")
            .map(|(_, n)| n.parse::<u64>().unwrap())
        else {
            continue;
        };
        assert_eq!(seq, acked + 1, "acks arrive in order");
        acked = seq;
        if acked == 3000 {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    child.wait().unwrap();
    assert_eq!(acked, 3000);

    let store = SqliteStore::open(&path, StoreOptions::default()).unwrap();
    assert_eq!(store.integrity_check().unwrap(), ["ok"]);
    let frames = store.events_after("run_1", 0, usize::MAX).unwrap();
    assert!(
        frames.len() as u64 >= acked,
        "{} stored < {acked} acknowledged",
        frames.len()
    );
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(*frame, *crate::frame("run_1", i as u64 + 1), "no gaps");
    }
}
