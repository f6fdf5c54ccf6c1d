//! An agent asks its user (`interaction.ask`) over the WebSocket: the run
//! emits `input_requested` and waits; a wrong answer is refused and the
//! question stays open; a disconnect does not end the wait and the question
//! is replayed on `run.subscribe`; the owner answers from another session;
//! another user cannot; a question nobody answers expires and the agent
//! gets `timeout`; a cancel ends the wait.

use netra_tests::serve::{Plugin, Server};
use netra_tests::ws::Client;
use serde_json::json;

const ECHO: Plugin = Plugin {
    guest: "agent-echo",
    manifest: "name = \"agent-echo\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
};

const CONFIG: &str = r#"
[limits.agent]
deadline = "1s"
ask_wait = "2s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_its_user_and_waits_for_the_answer() {
    let server = Server::start(&[ECHO], "refuse", CONFIG);
    let ada = server.token("ada", &[]);
    let mut first = Client::connect(&server.url(), &ada).await;
    let (run_id, _) = first.start_run("echo-agent", "ask").await;
    let asked = first.until(&["input_requested"]).await;
    assert_eq!(asked["prompt"], "What is your name?", "{asked}");
    assert_eq!(asked["schema"], json!({"type": "string", "minLength": 2}));
    assert!(
        asked["expires_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let request_id = asked["request_id"].clone();
    // The client goes away; the run keeps waiting.
    drop(first);

    // Another user cannot answer it.
    let grace = server.token("grace", &[]);
    let mut other = Client::connect(&server.url(), &grace).await;
    let refused = other
        .request(
            "run.respond",
            json!({"run_id": run_id, "request_id": request_id, "value": "Grace"}),
        )
        .await;
    assert_eq!(refused["code"], "not_found", "{refused}");

    // The owner, on a new session: the question is replayed, a wrong answer
    // is refused and leaves it open, a right one ends the wait.
    let mut second = Client::connect(&server.url(), &ada).await;
    let ack = second
        .request("run.subscribe", json!({"run_id": run_id, "after_seq": 0}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let replayed = second.until(&["input_requested"]).await;
    assert_eq!(replayed["request_id"], request_id);
    let wrong = second
        .request(
            "run.respond",
            json!({"run_id": run_id, "request_id": request_id, "value": "A"}),
        )
        .await;
    assert_eq!(wrong["code"], "invalid_value", "{wrong}");
    // Past the 1 s deadline: the clock stands still while the run waits.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let right = second
        .request(
            "run.respond",
            json!({"run_id": run_id, "request_id": request_id, "value": "Ada"}),
        )
        .await;
    assert_eq!(right["type"], "ack", "{right}");
    let events = second.run_events_after(&run_id).await;
    let closed = events
        .iter()
        .find(|e| e["type"] == "input_closed")
        .unwrap_or_else(|| panic!("no input_closed: {events:#?}"));
    assert_eq!(closed["outcome"], "answered");
    assert_eq!(closed["value"], "Ada");
    let end = events.last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(end["type"], "agent_completed", "{end}");
    assert_eq!(end["output"], "hello Ada");
    // Answered once: a second answer finds no open question.
    let again = second
        .request(
            "run.respond",
            json!({"run_id": run_id, "request_id": request_id, "value": "Ada"}),
        )
        .await;
    assert_eq!(again["code"], "not_found", "{again}");

    // Nobody answers: after ask_wait (2 s) the question expires and the
    // agent gets `timeout`.
    let events = second.run("echo-agent", "ask").await;
    let closed = events
        .iter()
        .find(|e| e["type"] == "input_closed")
        .unwrap_or_else(|| panic!("no input_closed: {events:#?}"));
    assert_eq!(closed["outcome"], "expired");
    let end = events.last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(end["output"], "error: no answer came in time", "{end}");

    // Cancelled while it waits: the question closes `cancelled`, so does the run.
    let (run_id, _) = second.start_run("echo-agent", "ask").await;
    second.until(&["input_requested"]).await;
    let ack = second
        .request("run.cancel", json!({"run_id": run_id}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let events = second.run_events_after(&run_id).await;
    let closed = events
        .iter()
        .find(|e| e["type"] == "input_closed")
        .unwrap_or_else(|| panic!("no input_closed: {events:#?}"));
    assert_eq!(closed["outcome"], "cancelled");
    let end = events.last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(end["outcome"], "cancelled", "{end}");
}
