//! What only the in-memory store does: callbacks run inline, outside its lock.
//! Everything it shares with SQLite is in `conformance`.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use netra_store::{AuditEntry, MemoryStore, Store, StoreError};

use crate::{event, new_run};

/// Runs `test` on another thread, failing instead of hanging if it deadlocks.
fn within_seconds(test: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        test();
        let _ = tx.send(());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(()) => worker.join().unwrap(),
        // The test panicked: report its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: the test did not finish"),
    }
}

#[test]
fn callbacks_run_inline_outside_the_lock() {
    within_seconds(|| {
        let store = Arc::new(MemoryStore::new());
        store.create_thread("thr_1", "alice").unwrap();
        store
            .create_run(&new_run("run_1", "thr_1", "alice"))
            .unwrap();
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (inner, log) = (store.clone(), seen.clone());
        store.append_event(
            event("run_1", 1),
            Box::new(move |result| {
                result.unwrap();
                // The event is visible, and blocking writes work: on SQLite
                // they fail with OnWriterThread.
                let last_seq = inner.run("run_1").unwrap().unwrap().last_seq;
                log.lock().unwrap().push(format!("last_seq {last_seq}"));
                inner.create_thread("thr_2", "alice").unwrap();
                let nested = log.clone();
                inner.append_event(
                    event("run_1", 2),
                    Box::new(move |result| {
                        result.unwrap();
                        nested.lock().unwrap().push("nested".into());
                    }),
                );
                log.lock().unwrap().push("done".into());
            }),
        );
        // Everything ran before append_event returned.
        assert_eq!(*seen.lock().unwrap(), ["last_seq 1", "nested", "done"]);
        assert_eq!(
            store.thread_owner("thr_2").unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 2);
    });
}

#[test]
fn a_callback_may_take_a_lock_another_caller_holds_while_writing() {
    within_seconds(|| {
        let store = Arc::new(MemoryStore::new());
        store.create_thread("thr_1", "alice").unwrap();
        store
            .create_run(&new_run("run_1", "thr_1", "alice"))
            .unwrap();
        // Like the server: a run's events are numbered and submitted under
        // the run's lock, and their callbacks take the run's other lock.
        let submit = Arc::new(Mutex::new(0u64));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (store, submit, delivered) = (store.clone(), submit.clone(), delivered.clone());
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let mut seq = submit.lock().unwrap();
                        *seq += 1;
                        let (delivered, n) = (delivered.clone(), *seq);
                        store.append_event(
                            event("run_1", n),
                            Box::new(move |result| {
                                result.unwrap();
                                delivered.lock().unwrap().push(n);
                            }),
                        );
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
        let delivered = delivered.lock().unwrap();
        assert_eq!(*delivered, (1..=400).collect::<Vec<_>>());
    });
}

#[test]
fn a_panicking_callback_does_not_break_the_store() {
    let store = MemoryStore::new();
    store.create_thread("thr_1", "alice").unwrap();
    store
        .create_run(&new_run("run_1", "thr_1", "alice"))
        .unwrap();
    store.append_event(event("run_1", 1), Box::new(|_| panic!("a buggy callback")));
    let (tx, rx) = mpsc::channel();
    store.append_event(
        event("run_1", 2),
        Box::new(move |result| tx.send(result).unwrap()),
    );
    rx.recv().unwrap().unwrap();
    assert_eq!(store.events_after("run_1", 0, 10).unwrap().len(), 2);
    store.flush().unwrap();
}

#[test]
fn stores_share_nothing_and_the_audit_log_is_readable() {
    let (one, two) = (MemoryStore::new(), MemoryStore::default());
    one.create_thread("thr_1", "alice").unwrap();
    assert_eq!(two.thread_owner("thr_1").unwrap(), None);
    two.create_thread("thr_1", "bob").unwrap();

    let entry = |action: &str, detail: &str| AuditEntry {
        actor: "host".into(),
        action: action.into(),
        subject: "run_1".into(),
        detail: detail.into(),
    };
    one.audit(&entry("run.recover", "{}")).unwrap();
    assert!(matches!(
        one.audit(&entry("run.recover", "{")),
        Err(StoreError::Invalid(_))
    ));
    one.audit(&entry("plugin.activate", r#"{"v":2}"#)).unwrap();
    let log = one.audit_log();
    let actions: Vec<_> = log.iter().map(|(_, e)| e.action.as_str()).collect();
    assert_eq!(actions, ["run.recover", "plugin.activate"]);
    assert!(log[0].0 <= log[1].0);
    assert!(two.audit_log().is_empty());
}
