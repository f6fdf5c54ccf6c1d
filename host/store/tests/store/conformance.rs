//! One set of assertions, run against every [`Store`]: `sqlite::<check>`
//! against a [`netra_store::SqliteStore`] on a fresh file, `memory::<check>`
//! against a [`netra_store::MemoryStore`]. Every check takes an
//! `Arc<dyn Store>` (shared, so a callback can hold it too), so it can only
//! rely on the trait.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netra_store::{
    AuditEntry, EventRecord, NewMessage, NewRun, NewThread, OnDurable, PluginState, PluginVersion,
    Role, RunEnd, RunStatus, Store, StoreError, Usage,
};

use crate::{at, digest, ended, event, frame, new_run, plugin_version};

/// Declares `sqlite::<check>` and `memory::<check>` tests for each check.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            use std::sync::Arc;

            use netra_store::Store;

            $(
                #[test]
                fn $check() {
                    let (_dir, _path, store) = crate::open();
                    let store: Arc<dyn Store> = Arc::new(store);
                    super::$check(&store);
                }
            )*
        }
        mod memory {
            use std::sync::Arc;

            use netra_store::Store;

            $(
                #[test]
                fn $check() {
                    let store: Arc<dyn Store> = Arc::new(netra_store::MemoryStore::new());
                    super::$check(&store);
                }
            )*
        }
    };
}

conformance!(
    threads_messages_and_runs_round_trip,
    write_errors_are_typed,
    begin_run_creates_thread_and_run_atomically,
    end_run_is_atomic,
    callbacks_arrive_in_submission_order,
    concurrent_callbacks_arrive_in_submission_order,
    callbacks_may_write_to_the_store,
    events_after_returns_later_frames_in_order,
    kv_is_scoped_to_user_and_plugin,
    list_threads_shows_the_owners_most_recent_first,
    running_runs_are_oldest_first,
    prune_deletes_only_old_ended_runs_events_in_bounded_steps,
    audit_details_must_be_json,
    audit_entries_are_newest_first_and_limited,
    plugin_versions_are_recorded_once_and_listed_in_order,
    activating_a_version_makes_it_active,
    the_active_or_a_missing_version_cannot_be_deleted,
    plugins_are_enabled_and_disabled,
);

fn msg(role: Role, content: &str) -> NewMessage {
    NewMessage {
        role,
        content: content.into(),
    }
}

fn thread(id: &str, owner: &str) -> NewThread {
    NewThread {
        id: id.into(),
        owner: owner.into(),
        title: None,
    }
}

fn thread_and_run(store: &Arc<dyn Store>, thread_id: &str, run_id: &str, user: &str) {
    store.create_thread(thread_id, user).unwrap();
    store.create_run(&new_run(run_id, thread_id, user)).unwrap();
}

/// Submits a non-blocking write and waits for its callback.
fn wait(submit: impl FnOnce(OnDurable)) -> Result<(), StoreError> {
    let (tx, rx) = mpsc::channel();
    submit(Box::new(move |result| tx.send(result).unwrap()));
    rx.recv().unwrap()
}

fn append(store: &Arc<dyn Store>, event: EventRecord) -> Result<(), StoreError> {
    wait(|done| store.append_event(event, done))
}

fn is_conflict<T>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}

fn is_not_found<T>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound(_)))
}

fn is_invalid<T>(r: &Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Invalid(_)))
}

/// The messages of a thread as (seq, role, content, run).
fn messages(store: &Arc<dyn Store>, thread_id: &str) -> Vec<(u64, Role, String, String)> {
    store
        .thread_messages(thread_id)
        .unwrap()
        .into_iter()
        .map(|m| (m.seq, m.role, m.content, m.run_id.unwrap()))
        .collect()
}

fn threads_messages_and_runs_round_trip(store: &Arc<dyn Store>) {
    thread_and_run(store, "thr_1", "run_1", "alice");
    assert_eq!(
        store.thread_owner("thr_1").unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.thread_owner("thr_nope").unwrap(), None);
    assert!(store.thread_messages("thr_nope").unwrap().is_empty());

    store
        .append_messages(
            "thr_1",
            "run_1",
            &[msg(Role::User, "hi"), msg(Role::Assistant, "hello")],
        )
        .unwrap();
    // Times are kept in whole milliseconds; times before 1970 become 1970.
    let mut run_2 = new_run("run_2", "thr_1", "alice");
    run_2.started_at = at(2_000) + Duration::from_micros(999);
    // A nested run (agent-as-tool) knows its parent.
    run_2.parent_run_id = Some("run_1".into());
    store.create_run(&run_2).unwrap();
    store
        .append_messages(
            "thr_1",
            "run_2",
            &[msg(Role::System, "sys"), msg(Role::Tool, "{}")],
        )
        .unwrap();
    // Nothing to append is not an error, whatever the ids.
    store.append_messages("thr_nope", "run_nope", &[]).unwrap();
    let owned = |(seq, role, content, run): (u64, Role, &str, &str)| {
        (seq, role, content.to_owned(), run.to_owned())
    };
    assert_eq!(
        messages(store, "thr_1"),
        [
            (1, Role::User, "hi", "run_1"),
            (2, Role::Assistant, "hello", "run_1"),
            (3, Role::System, "sys", "run_2"),
            (4, Role::Tool, "{}", "run_2"),
        ]
        .map(owned)
    );
    let stored = store.thread_messages("thr_1").unwrap();
    assert!(
        stored
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    let summary = &store.list_threads("alice", 10).unwrap()[0];
    assert_eq!((summary.id.as_str(), summary.message_count), ("thr_1", 4));
    assert_eq!(summary.last_activity, stored[3].created_at);

    let run = store.run("run_1").unwrap().unwrap();
    assert_eq!(run.id, "run_1");
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(
        (run.user.as_str(), run.thread_id.as_str()),
        ("alice", "thr_1")
    );
    assert_eq!(
        (run.agent.as_str(), run.plugin_version.as_str()),
        ("helper", "0.1.0")
    );
    assert_eq!(run.input, "hello");
    assert_eq!(run.started_at, at(1_000));
    assert_eq!((run.ended_at, run.last_seq, run.usage), (None, 0, None));
    assert_eq!((run.error_code, run.events_pruned), (None, false));
    let run_2 = store.run("run_2").unwrap().unwrap();
    assert_eq!(run_2.started_at, at(2_000));
    assert_eq!(run_2.parent_run_id.as_deref(), Some("run_1"));
    assert_eq!(run.parent_run_id, None);

    for seq in 1..=3 {
        append(store, event("run_1", seq)).unwrap();
    }
    store
        .finish_run(
            "run_1",
            &RunEnd {
                status: RunStatus::Failed,
                ended_at: at(5_000) + Duration::from_nanos(1),
                error_code: Some("tool_failed".into()),
                usage: Some(Usage {
                    prompt_tokens: 12,
                    completion_tokens: 34,
                }),
            },
        )
        .unwrap();
    let run = store.run("run_1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.ended_at, Some(at(5_000)));
    assert_eq!(run.error_code.as_deref(), Some("tool_failed"));
    assert_eq!(
        run.usage,
        Some(Usage {
            prompt_tokens: 12,
            completion_tokens: 34
        })
    );
    assert_eq!(run.last_seq, 3);
    assert_eq!(store.run("run_nope").unwrap(), None);

    let mut run_3 = new_run("run_3", "thr_1", "alice");
    run_3.started_at = UNIX_EPOCH - Duration::from_secs(1);
    store.create_run(&run_3).unwrap();
    store
        .finish_run("run_3", &ended(RunStatus::Cancelled, 7_000))
        .unwrap();
    let run_3 = store.run("run_3").unwrap().unwrap();
    assert_eq!(run_3.started_at, UNIX_EPOCH);
    assert_eq!((run_3.status, run_3.usage), (RunStatus::Cancelled, None));

    store.set_thread_title("thr_1", Some("a title")).unwrap();
    assert_eq!(
        store.list_threads("alice", 10).unwrap()[0].title.as_deref(),
        Some("a title")
    );
    store.set_thread_title("thr_1", None).unwrap();
    assert_eq!(store.list_threads("alice", 10).unwrap()[0].title, None);
    store.flush().unwrap();
}

fn write_errors_are_typed(store: &Arc<dyn Store>) {
    thread_and_run(store, "thr_1", "run_1", "alice");

    assert!(is_conflict(&store.create_thread("thr_1", "bob")));
    assert!(is_conflict(
        &store.create_run(&new_run("run_1", "thr_1", "alice"))
    ));
    assert!(is_not_found(
        &store.create_run(&new_run("run_2", "thr_nope", "alice"))
    ));
    // A taken run id is reported before a missing thread.
    assert!(is_conflict(
        &store.create_run(&new_run("run_1", "thr_nope", "alice"))
    ));
    assert!(is_not_found(&store.set_thread_title("thr_nope", Some("x"))));
    assert!(is_not_found(&store.append_messages(
        "thr_nope",
        "run_1",
        &[msg(Role::User, "x")]
    )));
    assert!(is_not_found(&store.append_messages(
        "thr_1",
        "run_nope",
        &[msg(Role::User, "x")]
    )));
    // The failed appends left nothing behind, not even the thread's counters.
    assert!(store.thread_messages("thr_1").unwrap().is_empty());
    let summary = &store.list_threads("alice", 10).unwrap()[0];
    assert_eq!(summary.message_count, 0);
    assert_eq!(summary.last_activity, summary.created_at);

    assert!(is_not_found(&append(store, event("run_nope", 1))));
    append(store, event("run_1", 1)).unwrap();
    assert!(is_conflict(&append(store, event("run_1", 1))));
    assert!(is_invalid(&append(store, event("run_1", u64::MAX))));
    assert!(is_invalid(&store.events_after("run_1", u64::MAX, 10)));
    assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 1);

    // A status of Running is refused before the run is even looked up.
    assert!(is_invalid(
        &store.finish_run("run_1", &ended(RunStatus::Running, 2))
    ));
    assert!(is_invalid(
        &store.finish_run("run_nope", &ended(RunStatus::Running, 2))
    ));
    let too_big = RunEnd {
        usage: Some(Usage {
            prompt_tokens: u64::MAX,
            completion_tokens: 1,
        }),
        ..ended(RunStatus::Completed, 2)
    };
    assert!(is_invalid(&store.finish_run("run_1", &too_big)));
    assert_eq!(
        store.run("run_1").unwrap().unwrap().status,
        RunStatus::Running
    );
    store
        .finish_run("run_1", &ended(RunStatus::Completed, 2))
        .unwrap();
    assert!(is_conflict(
        &store.finish_run("run_1", &ended(RunStatus::Cancelled, 3))
    ));
    assert!(is_not_found(
        &store.finish_run("run_nope", &ended(RunStatus::Cancelled, 3))
    ));
    let run = store.run("run_1").unwrap().unwrap();
    assert_eq!(
        (run.status, run.ended_at),
        (RunStatus::Completed, Some(at(2)))
    );
    // An ended run still takes events (recovery appends a terminal event).
    append(store, event("run_1", 2)).unwrap();
}

fn begin_run_creates_thread_and_run_atomically(store: &Arc<dyn Store>) {
    let titled = NewThread {
        title: Some("first".into()),
        ..thread("thr_1", "alice")
    };
    wait(|done| store.begin_run(Some(titled), new_run("run_1", "thr_1", "alice"), done)).unwrap();
    assert_eq!(
        store.thread_owner("thr_1").unwrap().as_deref(),
        Some("alice")
    );
    let summary = &store.list_threads("alice", 10).unwrap()[0];
    assert_eq!(
        (summary.id.as_str(), summary.title.as_deref()),
        ("thr_1", Some("first"))
    );
    let run = store.run("run_1").unwrap().unwrap();
    assert_eq!(
        (run.status, run.thread_id.as_str()),
        (RunStatus::Running, "thr_1")
    );

    // The thread exists: nothing is written, not even the run.
    let r = wait(|done| {
        store.begin_run(
            Some(thread("thr_1", "bob")),
            new_run("run_2", "thr_1", "bob"),
            done,
        )
    });
    assert!(is_conflict(&r), "{r:?}");
    assert_eq!(store.run("run_2").unwrap(), None);
    assert_eq!(
        store.thread_owner("thr_1").unwrap().as_deref(),
        Some("alice")
    );

    // Without a thread to create, the run's thread must exist.
    let r = wait(|done| store.begin_run(None, new_run("run_3", "thr_nope", "alice"), done));
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(store.run("run_3").unwrap(), None);

    // The run fails: the new thread is not kept either.
    let r = wait(|done| {
        store.begin_run(
            Some(thread("thr_2", "alice")),
            new_run("run_1", "thr_2", "alice"),
            done,
        )
    });
    assert!(is_conflict(&r), "{r:?}");
    assert_eq!(store.thread_owner("thr_2").unwrap(), None);
    let r = wait(|done| {
        store.begin_run(
            Some(thread("thr_3", "alice")),
            new_run("run_4", "thr_other", "alice"),
            done,
        )
    });
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(store.thread_owner("thr_3").unwrap(), None);
    assert_eq!(store.run("run_4").unwrap(), None);

    // A run in an existing thread.
    wait(|done| store.begin_run(None, new_run("run_5", "thr_1", "alice"), done)).unwrap();
    let ids: Vec<_> = store
        .running_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["run_1", "run_5"]);
    let threads: Vec<_> = store
        .list_threads("alice", 10)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(threads, ["thr_1"]);
}

fn end_run_is_atomic(store: &Arc<dyn Store>) {
    thread_and_run(store, "thr_1", "run_1", "alice");
    for seq in 1..=3 {
        append(store, event("run_1", seq)).unwrap();
    }
    let answer = || vec![msg(Role::User, "hello"), msg(Role::Assistant, "hi!")];
    let failed = || RunEnd {
        status: RunStatus::Failed,
        ended_at: at(9_000),
        error_code: Some("tool_failed".into()),
        usage: Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 7,
        }),
    };
    let unchanged = |store: &Arc<dyn Store>| {
        let run = store.run("run_1").unwrap().unwrap();
        assert_eq!(
            (run.status, run.ended_at, run.last_seq),
            (RunStatus::Running, None, 3)
        );
        assert_eq!((run.error_code, run.usage), (None, None));
        assert!(store.thread_messages("thr_1").unwrap().is_empty());
        assert_eq!(store.list_threads("alice", 1).unwrap()[0].message_count, 0);
    };

    // The terminal event's seq is taken: nothing of the end is written.
    let r = wait(|done| store.end_run(event("run_1", 3), answer(), failed(), done));
    assert!(is_conflict(&r), "{r:?}");
    unchanged(store);
    assert_eq!(
        store.events_after("run_1", 2, 10).unwrap(),
        [frame("run_1", 3).to_string()]
    );
    let r = wait(|done| {
        store.end_run(
            event("run_1", 4),
            answer(),
            ended(RunStatus::Running, 9_000),
            done,
        )
    });
    assert!(is_invalid(&r), "{r:?}");
    unchanged(store);
    let r = wait(|done| store.end_run(event("run_nope", 4), answer(), failed(), done));
    assert!(is_not_found(&r), "{r:?}");
    unchanged(store);

    // All of it at once.
    wait(|done| store.end_run(event("run_1", 4), answer(), failed(), done)).unwrap();
    let run = store.run("run_1").unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.ended_at, Some(at(9_000)));
    assert_eq!(run.error_code.as_deref(), Some("tool_failed"));
    assert_eq!(
        run.usage,
        Some(Usage {
            prompt_tokens: 5,
            completion_tokens: 7
        })
    );
    assert_eq!(run.last_seq, 4);
    assert_eq!(
        store.events_after("run_1", 3, 10).unwrap(),
        [frame("run_1", 4).to_string()]
    );
    let expected = [
        (1, Role::User, "hello".to_owned(), "run_1".to_owned()),
        (2, Role::Assistant, "hi!".to_owned(), "run_1".to_owned()),
    ];
    assert_eq!(messages(store, "thr_1"), expected);
    assert_eq!(store.list_threads("alice", 1).unwrap()[0].message_count, 2);
    assert!(store.running_runs().unwrap().is_empty());

    // The run has ended: a second end writes nothing, not even its event.
    let r = wait(|done| {
        store.end_run(
            event("run_1", 5),
            answer(),
            ended(RunStatus::Completed, 9_500),
            done,
        )
    });
    assert!(is_conflict(&r), "{r:?}");
    assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 4);
    assert_eq!(
        store.run("run_1").unwrap().unwrap().status,
        RunStatus::Failed
    );
    assert_eq!(messages(store, "thr_1"), expected);

    // Messages go to the run's thread, numbered after its last one; an end
    // without messages adds none.
    store
        .create_run(&new_run("run_2", "thr_1", "alice"))
        .unwrap();
    wait(|done| {
        store.end_run(
            event("run_2", 1),
            vec![msg(Role::User, "again")],
            ended(RunStatus::Completed, 10_000),
            done,
        )
    })
    .unwrap();
    thread_and_run(store, "thr_2", "run_3", "alice");
    wait(|done| {
        store.end_run(
            event("run_3", 1),
            Vec::new(),
            ended(RunStatus::Cancelled, 10_000),
            done,
        )
    })
    .unwrap();
    let last = messages(store, "thr_1").pop().unwrap();
    assert_eq!(last, (3, Role::User, "again".into(), "run_2".into()));
    assert!(store.thread_messages("thr_2").unwrap().is_empty());
    let run_3 = store.run("run_3").unwrap().unwrap();
    assert_eq!((run_3.status, run_3.last_seq), (RunStatus::Cancelled, 1));
}

/// What a callback saw: its submission index and the outcome's kind.
type Seen = Arc<Mutex<Vec<(usize, &'static str)>>>;

fn recorder(seen: &Seen, index: usize) -> OnDurable {
    let seen = seen.clone();
    Box::new(move |result| {
        let kind = match result {
            Ok(()) => "ok",
            Err(StoreError::Conflict(_)) => "conflict",
            Err(StoreError::NotFound(_)) => "not found",
            Err(_) => "other",
        };
        seen.lock().unwrap().push((index, kind));
    })
}

fn callbacks_arrive_in_submission_order(store: &Arc<dyn Store>) {
    let seen = Seen::default();
    let mut expected = Vec::new();
    let mut next = |outcome: &'static str| {
        expected.push((expected.len(), outcome));
        recorder(&seen, expected.len() - 1)
    };
    store.begin_run(
        Some(thread("thr_1", "alice")),
        new_run("run_1", "thr_1", "alice"),
        next("ok"),
    );
    for seq in 1..=100 {
        store.append_event(event("run_1", seq), next("ok"));
    }
    store.append_event(event("run_1", 7), next("conflict"));
    store.append_event(event("run_nope", 1), next("not found"));
    store.begin_run(None, new_run("run_2", "thr_1", "alice"), next("ok"));
    store.begin_run(
        Some(thread("thr_1", "alice")),
        new_run("run_3", "thr_1", "alice"),
        next("conflict"),
    );
    store.end_run(
        event("run_1", 101),
        vec![msg(Role::User, "hello")],
        ended(RunStatus::Completed, 5_000),
        next("ok"),
    );
    store.append_event(event("run_2", 1), next("ok"));
    store.end_run(
        event("run_1", 102),
        Vec::new(),
        ended(RunStatus::Completed, 6_000),
        next("conflict"),
    );
    store.flush().unwrap();
    assert_eq!(*seen.lock().unwrap(), expected);
    assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 101);
    assert_eq!(store.run("run_2").unwrap().unwrap().last_seq, 1);
}

/// Several threads append; submission order is made observable with a
/// counter taken under a lock around each call, as the server numbers a
/// run's events under its own lock.
fn concurrent_callbacks_arrive_in_submission_order(store: &Arc<dyn Store>) {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 250;
    for t in 0..THREADS {
        thread_and_run(store, &format!("thr_{t}"), &format!("run_{t}"), "alice");
    }
    let submitted = Mutex::new(0u64);
    let completed: Arc<Mutex<Vec<(u64, u64, u64)>>> = Arc::default();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let (submitted, completed) = (&submitted, &completed);
            scope.spawn(move || {
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
            });
        }
    });
    store.flush().unwrap();
    let completed = completed.lock().unwrap();
    assert_eq!(completed.len() as u64, THREADS * PER_THREAD);
    for (i, (order, _, _)) in completed.iter().enumerate() {
        assert_eq!(*order, i as u64);
    }
    for t in 0..THREADS {
        let run = format!("run_{t}");
        let frames = store.events_after(&run, 0, usize::MAX).unwrap();
        assert_eq!(frames.len() as u64, PER_THREAD);
        assert_eq!(store.run(&run).unwrap().unwrap().last_seq, PER_THREAD);
    }
}

/// A callback may queue another write; it is stored like any other.
fn callbacks_may_write_to_the_store(store: &Arc<dyn Store>) {
    thread_and_run(store, "thr_1", "run_1", "alice");
    let (tx, rx) = mpsc::channel();
    let (inner, second) = (store.clone(), tx.clone());
    store.append_event(
        event("run_1", 1),
        Box::new(move |result| {
            tx.send(("first", result)).unwrap();
            inner.append_event(
                event("run_1", 2),
                Box::new(move |result| second.send(("second", result)).unwrap()),
            );
        }),
    );
    let got: Vec<_> = rx.iter().take(2).collect();
    assert!(
        matches!(got[..], [("first", Ok(())), ("second", Ok(()))]),
        "{got:?}"
    );
    store.flush().unwrap();
    assert_eq!(
        store.events_after("run_1", 0, 10).unwrap(),
        [frame("run_1", 1).to_string(), frame("run_1", 2).to_string()]
    );
}

fn events_after_returns_later_frames_in_order(store: &Arc<dyn Store>) {
    thread_and_run(store, "thr_1", "run_1", "alice");
    thread_and_run(store, "thr_2", "run_2", "bob");
    // Interleave two runs, and submit run_1's events out of seq order.
    for seq in [1, 2, 5, 3, 4] {
        append(store, event("run_1", seq)).unwrap();
        append(store, event("run_2", seq)).unwrap();
    }
    let frames = |after, limit| store.events_after("run_1", after, limit).unwrap();
    let expected: Vec<String> = (1..=5).map(|s| frame("run_1", s).to_string()).collect();
    assert_eq!(frames(0, 100), expected);
    assert_eq!(frames(2, 100), expected[2..]);
    assert_eq!(frames(2, 2), expected[2..4]);
    assert_eq!(frames(0, usize::MAX), expected);
    assert!(frames(0, 0).is_empty());
    assert!(frames(5, 100).is_empty());
    assert!(store.events_after("run_nope", 0, 100).unwrap().is_empty());
    assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 5);
}

fn kv_is_scoped_to_user_and_plugin(store: &Arc<dyn Store>) {
    let set = |user: &str, plugin: &str, key: &str, value: &str| {
        store
            .kv_set(user, plugin, key, value.as_bytes().to_vec())
            .unwrap();
    };
    let get = |user: &str, plugin: &str, key: &str| {
        store
            .kv_get(user, plugin, key)
            .unwrap()
            .map(|v| String::from_utf8(v).unwrap())
    };
    set("alice", "notes", "n/2", "two");
    set("alice", "notes", "n/1", "one");
    set("alice", "notes", "o/1", "other");
    set("alice", "notes", "n", "bare");
    set("alice", "notes", "N/1", "upper");
    set("alice", "notes", "n/é", "accent");
    set("alice", "todo", "n/1", "todo");
    set("bob", "notes", "n/1", "bob's");
    set("alice", "empty", "e", "");

    assert_eq!(get("alice", "notes", "n/1").as_deref(), Some("one"));
    assert_eq!(get("bob", "notes", "n/1").as_deref(), Some("bob's"));
    assert_eq!(get("alice", "todo", "n/1").as_deref(), Some("todo"));
    assert_eq!(get("alice", "empty", "e").as_deref(), Some(""));
    assert_eq!(get("bob", "notes", "n/2"), None);
    assert_eq!(get("bob", "todo", "n/1"), None);
    assert_eq!(get("carol", "notes", "n/1"), None);

    let list = |user: &str, plugin: &str, prefix: &str, limit: usize| {
        store.kv_list(user, plugin, prefix, limit).unwrap()
    };
    // Sorted by bytes: upper case first, non-ASCII last.
    assert_eq!(list("alice", "notes", "n/", 100), ["n/1", "n/2", "n/é"]);
    assert_eq!(list("alice", "notes", "n", 100), ["n", "n/1", "n/2", "n/é"]);
    assert_eq!(
        list("alice", "notes", "", 100),
        ["N/1", "n", "n/1", "n/2", "n/é", "o/1"]
    );
    assert_eq!(list("alice", "notes", "", 2), ["N/1", "n"]);
    assert_eq!(list("alice", "notes", "n/", 1), ["n/1"]);
    assert!(list("alice", "notes", "n/", 0).is_empty());
    assert!(list("alice", "notes", "p", 100).is_empty());
    assert!(list("alice", "notes", "n/3", 100).is_empty());
    assert_eq!(list("alice", "notes", "", usize::MAX).len(), 6);
    assert_eq!(list("bob", "notes", "", 100), ["n/1"]);
    assert_eq!(list("alice", "todo", "", 100), ["n/1"]);
    assert!(list("carol", "notes", "", 100).is_empty());
    assert!(list("alice", "nothing", "", 100).is_empty());

    // Overwrite, and delete only within the scope.
    set("alice", "notes", "n/1", "uno");
    assert_eq!(get("alice", "notes", "n/1").as_deref(), Some("uno"));
    assert!(!store.kv_delete("bob", "notes", "n/2").unwrap());
    assert!(!store.kv_delete("carol", "notes", "n/1").unwrap());
    assert!(store.kv_delete("bob", "notes", "n/1").unwrap());
    assert!(!store.kv_delete("bob", "notes", "n/1").unwrap());
    assert_eq!(get("bob", "notes", "n/1"), None);
    assert!(list("bob", "notes", "", 100).is_empty());
    assert_eq!(get("alice", "notes", "n/1").as_deref(), Some("uno"));
    // A deleted scope can be written again.
    set("bob", "notes", "n/1", "again");
    assert_eq!(get("bob", "notes", "n/1").as_deref(), Some("again"));
}

fn list_threads_shows_the_owners_most_recent_first(store: &Arc<dyn Store>) {
    thread_and_run(store, "thr_a1", "run_a1", "alice");
    thread_and_run(store, "thr_b1", "run_b1", "bob");
    thread_and_run(store, "thr_a2", "run_a2", "alice");
    store.set_thread_title("thr_a1", Some("first")).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    // Activity in the older thread moves it to the top.
    store
        .append_messages(
            "thr_a1",
            "run_a1",
            &[msg(Role::User, "1"), msg(Role::Assistant, "2")],
        )
        .unwrap();

    let alice = store.list_threads("alice", 10).unwrap();
    let got: Vec<_> = alice
        .iter()
        .map(|t| (t.id.as_str(), t.title.as_deref(), t.message_count))
        .collect();
    assert_eq!(got, [("thr_a1", Some("first"), 2), ("thr_a2", None, 0)]);
    assert!(alice[0].last_activity > alice[0].created_at);
    assert_eq!(alice[1].last_activity, alice[1].created_at);
    assert_eq!(store.list_threads("alice", 1).unwrap().len(), 1);
    assert!(store.list_threads("alice", 0).unwrap().is_empty());
    let bob: Vec<_> = store
        .list_threads("bob", usize::MAX)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(bob, ["thr_b1"]);
    assert!(store.list_threads("carol", 10).unwrap().is_empty());

    // Threads created within the same millisecond come greatest id first:
    // whatever the clock did, the list is ordered by (activity, id), descending.
    for id in ["thr_c", "thr_e", "thr_d", "thr_f", "thr_b"] {
        store.create_thread(id, "carol").unwrap();
    }
    let carol = store.list_threads("carol", 10).unwrap();
    assert_eq!(carol.len(), 5);
    for pair in carol.windows(2) {
        assert!(
            (pair[0].last_activity, &pair[0].id) > (pair[1].last_activity, &pair[1].id),
            "{carol:?}"
        );
    }
}

fn running_runs_are_oldest_first(store: &Arc<dyn Store>) {
    store.create_thread("thr_1", "alice").unwrap();
    for (id, ms) in [
        ("run_c", 3_000),
        ("run_b", 1_000),
        ("run_a", 3_000),
        ("run_d", 2_000),
    ] {
        let run = NewRun {
            started_at: at(ms),
            ..new_run(id, "thr_1", "alice")
        };
        store.create_run(&run).unwrap();
    }
    store
        .finish_run("run_d", &ended(RunStatus::Completed, 4_000))
        .unwrap();
    append(store, event("run_a", 1)).unwrap();
    let running: Vec<_> = store
        .running_runs()
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.last_seq))
        .collect();
    assert_eq!(
        running,
        [
            ("run_b".into(), 0),
            ("run_a".into(), 1),
            ("run_c".into(), 0)
        ]
    );
}

fn prune_deletes_only_old_ended_runs_events_in_bounded_steps(store: &Arc<dyn Store>) {
    // run_old1 and run_old2 ended before the cutoff, run_new after it,
    // run_live is still running.
    thread_and_run(store, "thr_1", "run_old1", "alice");
    for id in ["run_old2", "run_new", "run_live"] {
        store.create_run(&new_run(id, "thr_1", "alice")).unwrap();
    }
    for id in ["run_old1", "run_old2", "run_new", "run_live"] {
        for seq in 1..=10 {
            append(store, event(id, seq)).unwrap();
        }
    }
    // Ended in another order than they were created.
    store
        .finish_run("run_old2", &ended(RunStatus::Failed, 20_000))
        .unwrap();
    store
        .finish_run("run_old1", &ended(RunStatus::Completed, 10_000))
        .unwrap();
    store
        .finish_run("run_new", &ended(RunStatus::Completed, 40_000))
        .unwrap();
    let cutoff = at(30_000);
    let count = |id: &str| store.events_after(id, 0, usize::MAX).unwrap().len();
    let run = |id: &str| store.run(id).unwrap().unwrap();

    // Each call deletes at most max_rows, oldest run first, from its start.
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 7);
    assert_eq!((count("run_old1"), count("run_old2")), (3, 10));
    assert_eq!(
        store.events_after("run_old1", 0, 1).unwrap()[0],
        *frame("run_old1", 8)
    );
    assert_eq!(
        (run("run_old1").last_seq, run("run_old1").events_pruned),
        (10, false)
    );
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 7);
    assert_eq!((count("run_old1"), count("run_old2")), (0, 6));
    assert_eq!(
        (run("run_old1").last_seq, run("run_old1").events_pruned),
        (0, true)
    );
    // Exactly the rest of run_old2: it is empty, but only the next call,
    // which finds nothing left, marks it pruned.
    assert_eq!(store.prune_events(cutoff, 6).unwrap(), 6);
    assert_eq!(
        (run("run_old2").last_seq, run("run_old2").events_pruned),
        (0, false)
    );
    assert_eq!(store.prune_events(cutoff, 7).unwrap(), 0);
    assert!(run("run_old2").events_pruned);
    assert_eq!((count("run_old1"), count("run_old2")), (0, 0));
    assert_eq!((count("run_new"), count("run_live")), (10, 10));
    assert!(!run("run_new").events_pruned);
    assert_eq!(run("run_new").last_seq, 10);

    // The cutoff is exclusive; a later one reaches run_new; a running run
    // is never touched.
    assert_eq!(store.prune_events(at(40_000), 100).unwrap(), 0);
    assert_eq!(store.prune_events(at(40_001), 0).unwrap(), 0);
    assert_eq!(store.prune_events(at(40_001), 100).unwrap(), 10);
    assert_eq!(store.prune_events(at(u64::MAX / 4), 100).unwrap(), 0);
    assert_eq!(count("run_live"), 10);
    assert!(!run("run_live").events_pruned);
    assert!(run("run_new").events_pruned);

    // A pruned run keeps its record and still takes events, which are not
    // pruned again.
    append(store, event("run_old1", 11)).unwrap();
    assert_eq!(run("run_old1").last_seq, 11);
    assert_eq!(store.prune_events(at(u64::MAX / 4), 100).unwrap(), 0);
    assert_eq!(count("run_old1"), 1);
    assert_eq!(run("run_old1").status, RunStatus::Completed);
}

fn audit_details_must_be_json(store: &Arc<dyn Store>) {
    let entry = |detail: &str| AuditEntry {
        actor: "admin:root".into(),
        action: "plugin.activate".into(),
        subject: "helper@0.2.0".into(),
        detail: detail.into(),
    };
    let valid = [
        "{}",
        r#"{"from":"0.1.0"}"#,
        r#" {"a": [1, -2.5e3, 0, true, false, null, "x\u00e9\n"]} "#,
        "[]",
        "1",
        "\"text\"",
        "null",
        "1e999",
        r#""\ud800""#,
        r#"{"a":1,"a":2}"#,
    ];
    // SQLite accepts nesting up to 1000 deep; brackets in strings do not count.
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let objects = |depth: usize| format!("{}1{}", r#"{"a[\"{":"#.repeat(depth), "}".repeat(depth));
    let valid = valid.into_iter().map(str::to_owned).chain([
        nested(1000),
        objects(1000),
        format!("[{:?}]", "[".repeat(2000)),
    ]);
    for detail in valid {
        store
            .audit(&entry(&detail))
            .unwrap_or_else(|err| panic!("{detail:?}: {err}"));
    }
    let invalid = [
        "",
        " ",
        "not json",
        "{",
        "{'a':1}",
        "{a:1}",
        "[1,]",
        "01",
        "NaN",
        "{} {}",
        "{}x",
        "\"\u{1}\"",
        "\"\\x41\"",
        "// comment\n{}",
    ];
    let invalid = invalid
        .into_iter()
        .map(str::to_owned)
        .chain([nested(1001), objects(1001)]);
    for detail in invalid {
        let r = store.audit(&entry(&detail));
        assert!(is_invalid(&r), "{detail:?}: {r:?}");
    }
}

fn audit_entries_are_newest_first_and_limited(store: &Arc<dyn Store>) {
    assert!(store.audit_entries(10).unwrap().is_empty());
    let entry = |i: usize| AuditEntry {
        actor: "admin:root".into(),
        action: format!("action.{i}"),
        subject: format!("subject {i}"),
        detail: format!(r#"{{"i":{i}}}"#),
    };
    // Entries are stamped in whole milliseconds.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let before = at(now.as_millis() as u64);
    for i in 0..5 {
        store.audit(&entry(i)).unwrap();
    }
    // A refused entry is not in the log.
    let mut refused = entry(5);
    refused.detail = "not json".into();
    assert!(is_invalid(&store.audit(&refused)));
    let after = SystemTime::now();

    // Several share a millisecond: among those, the last written comes first.
    let all = store.audit_entries(usize::MAX).unwrap();
    let entries: Vec<AuditEntry> = all.iter().map(|r| r.entry.clone()).collect();
    assert_eq!(entries, (0..5).rev().map(entry).collect::<Vec<_>>());
    assert!(all.iter().all(|r| before <= r.ts && r.ts <= after));
    assert!(all.windows(2).all(|w| w[0].ts >= w[1].ts));

    assert_eq!(store.audit_entries(2).unwrap(), all[..2]);
    assert!(store.audit_entries(0).unwrap().is_empty());
}

fn plugin_versions_are_recorded_once_and_listed_in_order(store: &Arc<dyn Store>) {
    assert!(store.plugin_versions(None).unwrap().is_empty());
    // Times are kept in whole milliseconds; times before 1970 become 1970.
    let helper_old = PluginVersion {
        created_at: at(1_000) + Duration::from_micros(999),
        activated_at: Some(UNIX_EPOCH - Duration::from_secs(1)),
        ..plugin_version("helper", 'a', 1_000)
    };
    let helper_new = PluginVersion {
        version: None,
        kind: "agent".into(),
        size: i64::MAX as u64,
        source: "upload".into(),
        created_by: "admin:root".into(),
        ..plugin_version("helper", 'c', 3_000)
    };
    // As new as helper_new: the smaller digest comes first.
    let helper_tie = plugin_version("helper", 'b', 3_000);
    let echo_old = plugin_version("echo", 'f', 500);
    // The same bytes under another name are another version.
    let echo_new = plugin_version("echo", 'a', 2_000);
    for version in [&helper_old, &helper_new, &helper_tie, &echo_old, &echo_new] {
        assert!(store.add_plugin_version(version).unwrap(), "{version:?}");
    }

    // A version already recorded is left as it is, whatever else differs.
    let again = PluginVersion {
        version: Some("9.9.9".into()),
        size: 1,
        created_at: at(9_000),
        activated_at: None,
        ..helper_old.clone()
    };
    assert!(!store.add_plugin_version(&again).unwrap());
    // A size SQLite cannot hold is refused, and nothing is recorded.
    let too_big = PluginVersion {
        size: u64::MAX,
        ..plugin_version("huge", 'a', 1_000)
    };
    assert!(is_invalid(&store.add_plugin_version(&too_big)));

    let stored_old = PluginVersion {
        created_at: at(1_000),
        activated_at: Some(UNIX_EPOCH),
        ..helper_old
    };
    let helper = [helper_tie, helper_new, stored_old];
    let mut all = vec![echo_new, echo_old];
    all.extend(helper.iter().cloned());
    assert_eq!(store.plugin_versions(None).unwrap(), all);
    assert_eq!(store.plugin_versions(Some("helper")).unwrap(), helper);
    assert!(store.plugin_versions(Some("huge")).unwrap().is_empty());
    assert!(store.plugin_versions(Some("nope")).unwrap().is_empty());
    // Recording versions gives no plugin a state.
    assert!(store.plugin_states().unwrap().is_empty());
}

fn activated_at(store: &Arc<dyn Store>, plugin: &str, digest: &str) -> Option<SystemTime> {
    store
        .plugin_versions(Some(plugin))
        .unwrap()
        .into_iter()
        .find(|v| v.digest == digest)
        .unwrap()
        .activated_at
}

fn state(plugin: &str, active: Option<char>, enabled: bool) -> PluginState {
    PluginState {
        plugin: plugin.into(),
        active: active.map(digest),
        enabled,
    }
}

fn activating_a_version_makes_it_active(store: &Arc<dyn Store>) {
    for version in [
        plugin_version("helper", 'a', 1_000),
        plugin_version("helper", 'b', 2_000),
    ] {
        store.add_plugin_version(&version).unwrap();
    }
    // An unknown version is refused, and no state is created for it.
    let r = store.activate_plugin_version("helper", &digest('c'), at(5_000));
    assert!(is_not_found(&r), "{r:?}");
    let r = store.activate_plugin_version("nope", &digest('a'), at(5_000));
    assert!(is_not_found(&r), "{r:?}");
    assert!(store.plugin_states().unwrap().is_empty());

    store
        .activate_plugin_version(
            "helper",
            &digest('a'),
            at(5_000) + Duration::from_micros(500),
        )
        .unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [state("helper", Some('a'), true)]
    );
    assert_eq!(activated_at(store, "helper", &digest('a')), Some(at(5_000)));
    assert_eq!(activated_at(store, "helper", &digest('b')), None);

    // Switching: the previous version keeps the time it was last activated.
    store
        .activate_plugin_version("helper", &digest('b'), at(6_000))
        .unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [state("helper", Some('b'), true)]
    );
    assert_eq!(activated_at(store, "helper", &digest('a')), Some(at(5_000)));
    assert_eq!(activated_at(store, "helper", &digest('b')), Some(at(6_000)));

    // Back again: the time is the latest activation.
    store
        .activate_plugin_version("helper", &digest('a'), at(7_000))
        .unwrap();
    assert_eq!(activated_at(store, "helper", &digest('a')), Some(at(7_000)));
    // A refused activation changes nothing.
    assert!(is_not_found(&store.activate_plugin_version(
        "helper",
        &digest('c'),
        at(8_000)
    )));
    assert_eq!(
        store.plugin_states().unwrap(),
        [state("helper", Some('a'), true)]
    );
}

fn the_active_or_a_missing_version_cannot_be_deleted(store: &Arc<dyn Store>) {
    for version in [
        plugin_version("helper", 'a', 1_000),
        plugin_version("helper", 'b', 2_000),
    ] {
        store.add_plugin_version(&version).unwrap();
    }
    store
        .activate_plugin_version("helper", &digest('a'), at(5_000))
        .unwrap();

    let r = store.delete_plugin_version("helper", &digest('a'));
    match &r {
        Err(StoreError::Conflict(message)) => assert!(message.contains("active"), "{message}"),
        _ => panic!("deleting the active version: {r:?}"),
    }
    let r = store.delete_plugin_version("helper", &digest('c'));
    assert!(is_not_found(&r), "{r:?}");
    let r = store.delete_plugin_version("nope", &digest('a'));
    assert!(is_not_found(&r), "{r:?}");

    store.delete_plugin_version("helper", &digest('b')).unwrap();
    let r = store.delete_plugin_version("helper", &digest('b'));
    assert!(is_not_found(&r), "{r:?}");
    assert_eq!(
        store.plugin_versions(None).unwrap(),
        [PluginVersion {
            activated_at: Some(at(5_000)),
            ..plugin_version("helper", 'a', 1_000)
        }]
    );
    assert!(is_not_found(&store.activate_plugin_version(
        "helper",
        &digest('b'),
        at(6_000)
    )));

    // A deleted version can be recorded again; once another is active, the
    // formerly active one can go.
    assert!(
        store
            .add_plugin_version(&plugin_version("helper", 'b', 2_000))
            .unwrap()
    );
    store
        .activate_plugin_version("helper", &digest('b'), at(6_000))
        .unwrap();
    store.delete_plugin_version("helper", &digest('a')).unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [state("helper", Some('b'), true)]
    );
    let left: Vec<String> = store
        .plugin_versions(None)
        .unwrap()
        .into_iter()
        .map(|v| v.digest)
        .collect();
    assert_eq!(left, [digest('b')]);
}

fn plugins_are_enabled_and_disabled(store: &Arc<dyn Store>) {
    // A plugin without a state gets one, with nothing active.
    store.set_plugin_enabled("echo", false).unwrap();
    assert_eq!(store.plugin_states().unwrap(), [state("echo", None, false)]);

    store
        .add_plugin_version(&plugin_version("helper", 'a', 1_000))
        .unwrap();
    store
        .add_plugin_version(&plugin_version("helper", 'b', 2_000))
        .unwrap();
    store
        .activate_plugin_version("helper", &digest('a'), at(5_000))
        .unwrap();
    // Disabling keeps the active version, and activating keeps it disabled.
    store.set_plugin_enabled("helper", false).unwrap();
    store
        .activate_plugin_version("helper", &digest('b'), at(6_000))
        .unwrap();
    // A plugin whose name sorts before the others by bytes ('Z' < 'e').
    store.set_plugin_enabled("Zeta", true).unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [
            state("Zeta", None, true),
            state("echo", None, false),
            state("helper", Some('b'), false),
        ]
    );

    // Setting the same value twice is fine; each toggle is kept.
    store.set_plugin_enabled("echo", true).unwrap();
    store.set_plugin_enabled("echo", true).unwrap();
    store.set_plugin_enabled("helper", true).unwrap();
    store.set_plugin_enabled("Zeta", false).unwrap();
    assert_eq!(
        store.plugin_states().unwrap(),
        [
            state("Zeta", None, false),
            state("echo", None, true),
            state("helper", Some('b'), true),
        ]
    );
}
