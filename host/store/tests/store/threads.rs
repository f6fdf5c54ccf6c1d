use netra_store::{AuditEntry, NewMessage, Role, RunEnd, RunStatus, Store, StoreError, Usage};

use crate::{append_sync, at, ended, event, new_run, open, thread_and_run};

fn msg(role: Role, content: &str) -> NewMessage {
    NewMessage {
        role,
        content: content.into(),
    }
}

#[test]
fn threads_messages_and_runs_round_trip() {
    let (_dir, _path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    assert_eq!(
        store.thread_owner("thr_1").unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.thread_owner("thr_nope").unwrap(), None);

    store
        .append_messages(
            "thr_1",
            "run_1",
            &[msg(Role::User, "hi"), msg(Role::Assistant, "hello")],
        )
        .unwrap();
    store
        .create_run(&new_run("run_2", "thr_1", "alice"))
        .unwrap();
    store
        .append_messages(
            "thr_1",
            "run_2",
            &[msg(Role::User, "again"), msg(Role::Tool, "{}")],
        )
        .unwrap();
    let messages = store.thread_messages("thr_1").unwrap();
    let got: Vec<_> = messages
        .iter()
        .map(|m| {
            (
                m.seq,
                m.role,
                m.content.as_str(),
                m.run_id.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, Role::User, "hi", "run_1"),
            (2, Role::Assistant, "hello", "run_1"),
            (3, Role::User, "again", "run_2"),
            (4, Role::Tool, "{}", "run_2"),
        ]
    );

    let run = store.run("run_1").unwrap().unwrap();
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

    for seq in 1..=3 {
        append_sync(&store, event("run_1", seq)).unwrap();
    }
    store
        .finish_run(
            "run_1",
            &RunEnd {
                status: RunStatus::Failed,
                ended_at: at(5_000),
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

    let running: Vec<_> = store
        .running_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(running, ["run_2"]);
}

#[test]
fn write_errors_are_typed() {
    let (_dir, _path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    let conflict = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Conflict(_)));
    let not_found = |r: Result<(), StoreError>| matches!(r, Err(StoreError::NotFound(_)));

    assert!(conflict(store.create_thread("thr_1", "bob")));
    assert!(conflict(
        store.create_run(&new_run("run_1", "thr_1", "alice"))
    ));
    assert!(not_found(
        store.create_run(&new_run("run_2", "thr_nope", "alice"))
    ));
    assert!(not_found(store.append_messages(
        "thr_nope",
        "run_1",
        &[msg(Role::User, "x")]
    )));
    assert!(not_found(store.append_messages(
        "thr_1",
        "run_nope",
        &[msg(Role::User, "x")]
    )));
    // The failed append left nothing behind, not even the thread's counters.
    assert!(store.thread_messages("thr_1").unwrap().is_empty());
    assert_eq!(store.list_threads("alice", 10).unwrap()[0].message_count, 0);

    assert!(not_found(append_sync(&store, event("run_nope", 1))));
    append_sync(&store, event("run_1", 1)).unwrap();
    assert!(conflict(append_sync(&store, event("run_1", 1))));

    assert!(matches!(
        store.finish_run("run_1", &ended(RunStatus::Running, 2)),
        Err(StoreError::Invalid(_))
    ));
    store
        .finish_run("run_1", &ended(RunStatus::Completed, 2))
        .unwrap();
    assert!(conflict(
        store.finish_run("run_1", &ended(RunStatus::Cancelled, 3))
    ));
    assert!(not_found(
        store.finish_run("run_nope", &ended(RunStatus::Cancelled, 3))
    ));
    assert_eq!(
        store.run("run_1").unwrap().unwrap().status,
        RunStatus::Completed
    );
}

#[test]
fn list_threads_shows_only_the_owners_most_recent_first() {
    let (_dir, _path, store) = open();
    thread_and_run(&store, "thr_a1", "run_a1", "alice");
    thread_and_run(&store, "thr_b1", "run_b1", "bob");
    thread_and_run(&store, "thr_a2", "run_a2", "alice");
    store.set_thread_title("thr_a1", Some("first")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
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
    assert_eq!(store.list_threads("alice", 1).unwrap().len(), 1);
    let bob: Vec<_> = store
        .list_threads("bob", 10)
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(bob, ["thr_b1"]);
    assert!(store.list_threads("carol", 10).unwrap().is_empty());
}

#[test]
fn events_after_returns_later_frames_in_order() {
    let (_dir, _path, store) = open();
    thread_and_run(&store, "thr_1", "run_1", "alice");
    thread_and_run(&store, "thr_2", "run_2", "bob");
    // Interleave two runs, and submit run_1's events out of seq order.
    for seq in [1, 2, 5, 3, 4] {
        append_sync(&store, event("run_1", seq)).unwrap();
        append_sync(&store, event("run_2", seq)).unwrap();
    }
    let frames = |after, limit| store.events_after("run_1", after, limit).unwrap();
    let expected: Vec<String> = (1..=5)
        .map(|s| crate::frame("run_1", s).to_string())
        .collect();
    assert_eq!(frames(0, 100), expected);
    assert_eq!(frames(2, 100), expected[2..]);
    assert_eq!(frames(2, 2), expected[2..4]);
    assert!(frames(5, 100).is_empty());
    assert!(store.events_after("run_nope", 0, 100).unwrap().is_empty());
    assert_eq!(store.run("run_1").unwrap().unwrap().last_seq, 5);
}

#[test]
fn audit_entries_must_be_json() {
    let (_dir, path, store) = open();
    let entry = |detail: &str| AuditEntry {
        actor: "admin:root".into(),
        action: "plugin.activate".into(),
        subject: "helper@0.2.0".into(),
        detail: detail.into(),
    };
    store.audit(&entry(r#"{"from":"0.1.0"}"#)).unwrap();
    assert!(matches!(
        store.audit(&entry("not json")),
        Err(StoreError::Invalid(_))
    ));
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}
