//! Durable threads and runs: the SQLite store under the real server.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netra_server::retention::{self, Retention};
use netra_store::{EventRecord, NewRun, NewThread, RunStatus, SqliteStore, Store, StoreOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use netra_tests::inproc::TestServer;
use netra_tests::ws::{check_order, types};

fn terminal(events: &[Value]) -> &Value {
    events.last().expect("a terminal event")
}

#[tokio::test]
async fn a_finished_run_replays_from_the_store_exactly_as_sent() {
    let data = tempfile::tempdir().unwrap();
    let (run_id, live) = {
        let server = TestServer::restart_in(data.path()).await;
        let mut client = server.connect("alice").await;
        let (run_id, _) = client.start_run("helper", "what is 2+3*4").await;
        let live = client.run_events(&run_id).await;
        assert_eq!(terminal(&live)["output"], "2+3*4 = 14");
        (run_id, live)
    };

    // A new server has nothing in memory: the replay comes from the store.
    let server = TestServer::restart_in(data.path()).await;
    let mut again = server.connect("alice").await;
    let ack = again
        .request("run.subscribe", json!({ "run_id": run_id, "after_seq": 2 }))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let replayed = again.run_events_after(&run_id).await;
    assert_eq!(
        replayed,
        live[2..],
        "the replay is the live stream, event for event"
    );
    let record = server.store.run(&run_id).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Completed);
    assert_eq!(record.last_seq, live.len() as u64);
}

#[tokio::test]
async fn a_disconnect_does_not_cancel_and_subscribing_after_the_last_seq_is_gapless() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    // spin-agent keeps streaming until its 3 s deadline.
    let (run_id, _) = client.start_run("spin-agent", "go").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = client.recv().await;
        if frame["run_id"] == json!(run_id) {
            seen.push(frame);
        }
    }
    drop(client);

    // Someone else cannot follow it.
    let mut mallory = server.connect("mallory").await;
    let refused = mallory
        .request("run.subscribe", json!({ "run_id": run_id, "after_seq": 0 }))
        .await;
    assert_eq!(refused["code"], "not_found");

    // The owner, on a new connection, gets the rest: no gap, no duplicate,
    // and the run went on after the disconnect (it ends at its deadline).
    let mut again = server.connect("alice").await;
    let last = seen.last().unwrap()["seq"].as_u64().unwrap();
    let ack = again
        .request(
            "run.subscribe",
            json!({ "run_id": run_id, "after_seq": last }),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    seen.extend(again.run_events_after(&run_id).await);
    check_order(&seen);
    assert_eq!(terminal(&seen)["code"], "timeout");

    // Every event the client saw is in the log, identical.
    server.store.flush().unwrap();
    let stored: Vec<Value> = server
        .store
        .events_after(&run_id, 0, 10_000)
        .unwrap()
        .iter()
        .map(|f| netra_tests::ws::decode(f))
        .collect();
    assert_eq!(stored, seen);
}

#[tokio::test]
async fn threads_carry_history_and_are_listed_and_read_by_their_owner() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let (run_id, thread_id) = client.start_run("echo-agent", "hello there").await;
    client.run_events(&run_id).await;
    let ack = client
        .request(
            "run.start",
            json!({"agent": "echo-agent", "input": "history", "thread_id": thread_id}),
        )
        .await;
    let events = client.run_events(ack["run_id"].as_str().unwrap()).await;
    assert_eq!(
        terminal(&events)["output"],
        "user: hello there\nassistant: hello there"
    );

    let thread = client
        .request("thread.get", json!({ "thread_id": thread_id }))
        .await;
    assert_eq!(thread["type"], "ack", "{thread}");
    let roles: Vec<_> = thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [(1, "user"), (2, "assistant"), (3, "user"), (4, "assistant")]
    );
    assert_eq!(thread["messages"][0]["run_id"], json!(run_id));
    assert_eq!(thread["has_more"], false);

    let page = client
        .request(
            "thread.get",
            json!({ "thread_id": thread_id, "after_seq": 1, "limit": 2 }),
        )
        .await;
    let seqs: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(page["has_more"], true);

    let (second_run, other_thread) = client.start_run("echo-agent", "another topic").await;
    client.run_events(&second_run).await;
    let list = client.request("threads.list", json!({})).await;
    let threads = list["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 2, "{list}");
    assert_eq!(
        threads[0]["thread_id"],
        json!(other_thread),
        "most recent first"
    );
    assert_eq!(threads[1]["thread_id"], json!(thread_id));
    assert_eq!(threads[1]["title"], "hello there");
    assert_eq!(threads[1]["message_count"], 4);
}

#[tokio::test]
async fn another_user_cannot_reach_a_run_or_thread_in_any_way() {
    let server = TestServer::start().await;
    let mut alice = server.connect("alice").await;
    let (done_run, thread_id) = alice.start_run("echo-agent", "secret plans").await;
    alice.run_events(&done_run).await;
    let (live_run, _) = alice.start_run("spin-agent", "go").await;

    let mut bob = server.connect("bob").await;
    for run_id in [&done_run, &live_run] {
        let refused = bob
            .request("run.subscribe", json!({ "run_id": run_id, "after_seq": 0 }))
            .await;
        assert_eq!(refused["code"], "not_found", "{refused}");
        let refused = bob.request("run.cancel", json!({ "run_id": run_id })).await;
        assert_eq!(refused["code"], "not_found", "{refused}");
    }
    let refused = bob
        .request("thread.get", json!({ "thread_id": thread_id }))
        .await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    let refused = bob
        .request(
            "run.start",
            json!({"agent": "echo-agent", "input": "history", "thread_id": thread_id}),
        )
        .await;
    assert_eq!(refused["code"], "not_found", "{refused}");
    let list = bob.request("threads.list", json!({})).await;
    assert_eq!(list["threads"], json!([]), "{list}");
    // A missing thread reads exactly like someone else's.
    let missing = bob
        .request(
            "thread.get",
            json!({ "thread_id": format!("thr_{}", "f".repeat(32)) }),
        )
        .await;
    assert_eq!(missing["code"], "not_found");

    // Alice's thread is untouched by all of that.
    let thread = alice
        .request("thread.get", json!({ "thread_id": thread_id }))
        .await;
    assert_eq!(thread["messages"].as_array().unwrap().len(), 2, "{thread}");
    alice
        .request("run.cancel", json!({ "run_id": live_run }))
        .await;
    alice.run_events(&live_run).await;
}

#[tokio::test]
async fn a_thread_takes_one_run_at_a_time() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let (run_id, thread_id) = client.start_run("spin-agent", "go").await;
    let busy = client
        .request(
            "run.start",
            json!({"agent": "echo-agent", "input": "hi", "thread_id": thread_id}),
        )
        .await;
    assert_eq!(busy["code"], "thread_busy", "{busy}");
    client
        .request("run.cancel", json!({ "run_id": run_id }))
        .await;
    client.run_events(&run_id).await;
    // Once the run has ended (and is stored), the thread takes the next one.
    let mut ack = Value::Null;
    for _ in 0..100 {
        ack = client
            .request(
                "run.start",
                json!({"agent": "echo-agent", "input": "history", "thread_id": thread_id}),
            )
            .await;
        if ack["type"] == "ack" {
            break;
        }
        assert_eq!(ack["code"], "thread_busy", "{ack}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let events = client.run_events(ack["run_id"].as_str().unwrap()).await;
    // The cancelled run kept the user's message and what it had streamed.
    assert!(
        terminal(&events)["output"]
            .as_str()
            .unwrap()
            .starts_with("user: go"),
        "{events:#?}"
    );
}

#[tokio::test]
async fn a_thread_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let thread_id = {
        let server = TestServer::restart_in(data.path()).await;
        let mut client = server.connect("alice").await;
        let (run_id, thread_id) = client.start_run("echo-agent", "remember me").await;
        client.run_events(&run_id).await;
        thread_id
    };
    let server = TestServer::restart_in(data.path()).await;
    let mut client = server.connect("alice").await;
    let ack = client
        .request(
            "run.start",
            json!({"agent": "echo-agent", "input": "history", "thread_id": thread_id}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let events = client.run_events(ack["run_id"].as_str().unwrap()).await;
    assert_eq!(
        terminal(&events)["output"],
        "user: remember me\nassistant: remember me"
    );
}

#[tokio::test]
async fn runs_a_crash_left_running_end_with_host_restarted() {
    let data = tempfile::tempdir().unwrap();
    // The state a kill -9 leaves: a run recorded with two events and no end.
    let run_id = format!("run_{}", "0".repeat(31) + "1");
    let thread_id = format!("thr_{}", "0".repeat(31) + "1");
    {
        let store =
            SqliteStore::open(&data.path().join("netra.db"), StoreOptions::default()).unwrap();
        let thread = NewThread {
            id: thread_id.clone(),
            owner: "alice".into(),
            title: Some("crash".into()),
        };
        let run = NewRun {
            id: run_id.clone(),
            thread_id: thread_id.clone(),
            user: "alice".into(),
            agent: "helper".into(),
            plugin_version: "0.1.0".into(),
            input: "what is 1+1".into(),
            started_at: SystemTime::now(),
            parent_run_id: None,
        };
        store.begin_run(Some(thread), run, Box::new(|r| r.unwrap()));
        let base =
            json!({"run_id": run_id, "thread_id": thread_id, "ts": "2026-11-25T00:00:00.000Z"});
        let started =
            json!({"type": "agent_started", "seq": 1, "agent": "helper", "version": "0.1.0"});
        let thinking = json!({"type": "agent_thinking", "seq": 2, "text": "adding"});
        for (seq, mut frame) in [(1, started), (2, thinking)] {
            for (key, value) in base.as_object().unwrap() {
                frame[key] = value.clone();
            }
            store.append_event(
                EventRecord {
                    run_id: run_id.clone(),
                    seq,
                    ts_ms: 0,
                    frame: frame.to_string().into(),
                },
                Box::new(|r| r.unwrap()),
            );
        }
        store.flush().unwrap();
    }

    let server = TestServer::restart_in(data.path()).await;
    let mut client = server.connect("alice").await;
    let ack = client
        .request("run.subscribe", json!({ "run_id": run_id, "after_seq": 1 }))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let rest = client.run_events_after(&run_id).await;
    assert_eq!(types(&rest), ["agent_thinking", "agent_error"]);
    assert_eq!(rest[1]["seq"], 3);
    assert_eq!(rest[1]["code"], "host_restarted");
    assert_eq!(rest[1]["retryable"], true);
    let record = server.store.run(&run_id).unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Failed);
    assert!(server.store.running_runs().unwrap().is_empty());
    // What the user asked is kept in the thread.
    let thread = client
        .request("thread.get", json!({ "thread_id": thread_id }))
        .await;
    assert_eq!(thread["messages"][0]["content"], "what is 1+1");
}

#[tokio::test]
async fn retention_deletes_old_event_logs_and_subscribe_says_expired() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let (run_id, thread_id) = client.start_run("echo-agent", "short-lived").await;
    client.run_events(&run_id).await;

    let shutdown = CancellationToken::new();
    let store: Arc<dyn Store> = server.store.clone();
    let policy = Retention {
        max_age: Duration::from_millis(1),
        period: Duration::from_millis(20),
        batch: 1,
        pause: Duration::from_millis(1),
    };
    let task = tokio::spawn(retention::run(store, policy, shutdown.clone()));
    let mut pruned = false;
    for _ in 0..500 {
        let record = server.store.run(&run_id).unwrap().unwrap();
        if record.events_pruned {
            pruned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    assert!(pruned, "retention did not prune the run's events");

    let expired = client
        .request("run.subscribe", json!({ "run_id": run_id, "after_seq": 0 }))
        .await;
    assert_eq!(expired["code"], "expired", "{expired}");
    // The conversation itself is kept.
    let thread = client
        .request("thread.get", json!({ "thread_id": thread_id }))
        .await;
    assert_eq!(thread["messages"].as_array().unwrap().len(), 2);
}
