//! Tests of the wall-clock bounds the issues demand: an infinite loop stopped
//! within twice its deadline, a spinning guest that does not starve others, a
//! cancel that ends its run within 100 ms.
//!
//! They have their own test binary because cargo runs test binaries one after
//! another: here they do not share the 2 cores with the hundreds of runs of the
//! e2e binary, and within this binary [`SERIAL`] runs them one at a time.
//! The bounds themselves are the issues' numbers, not loosened.

use std::time::{Duration, Instant};

use netra_runtime::{InvokeError, Limits};
use serde_json::json;

use netra_tests::inproc::{TestServer, assert_calculator_still_works, ctx, load, runtime};

/// Held for the whole of each test so they never overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_the_deadline() {
    let _serial = SERIAL.lock().await;
    let rt = runtime();
    let deadline = Duration::from_millis(200);
    let spin = load(
        &rt,
        "fixture-spin",
        Limits {
            deadline,
            ..Limits::default()
        },
    )
    .await;
    let calc = load(&rt, "calculator", Limits::default()).await;
    let started = Instant::now();
    let err = spin.call(ctx("alice"), "spin", "{}").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(err, InvokeError::Timeout(d) if d == deadline),
        "{err:?}"
    );
    assert!(elapsed >= deadline, "stopped early: {elapsed:?}");
    assert!(
        elapsed < deadline * 2,
        "took {elapsed:?} for a {deadline:?} deadline"
    );
    assert_calculator_still_works(&calc).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_starve_other_calls() {
    // One thread only: the calculator can finish while the spinner runs only
    // if the spinner yields at epoch ticks.
    let _serial = SERIAL.lock().await;
    let rt = runtime();
    let spin = load(
        &rt,
        "fixture-spin",
        Limits {
            deadline: Duration::from_secs(2),
            ..Limits::default()
        },
    )
    .await;
    let calc = load(&rt, "calculator", Limits::default()).await;
    let spinner = tokio::spawn(async move { spin.call(ctx("bob"), "spin", "{}").await });
    tokio::task::yield_now().await;
    let started = Instant::now();
    assert_calculator_still_works(&calc).await;
    assert!(
        !spinner.is_finished(),
        "the spinner should still be running"
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(matches!(
        spinner.await.unwrap(),
        Err(InvokeError::Timeout(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_run_within_100_ms() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let (run_id, _) = client.start_run("spin-agent", "go").await;
    // Wait until the agent is running (its thinking event).
    loop {
        let frame = client.recv().await;
        if frame["type"] == "agent_thinking" {
            break;
        }
    }
    let sent = Instant::now();
    let id = client
        .command("run.cancel", json!({ "run_id": run_id }))
        .await;
    let mut acked = false;
    loop {
        let frame = client.recv().await;
        if frame["ref"] == json!(id) {
            assert_eq!(frame["type"], "ack");
            acked = true;
        } else if frame["type"] == "agent_completed" {
            let elapsed = sent.elapsed();
            assert_eq!(frame["outcome"], "cancelled");
            assert!(
                elapsed < Duration::from_millis(100),
                "cancel took {elapsed:?}"
            );
            break;
        }
    }
    assert!(acked);
    // Cancelling again, or someone else's run, is not found.
    let again = client
        .request("run.cancel", json!({ "run_id": run_id }))
        .await;
    assert_eq!(again["code"], "not_found");
}
