//! The WebSocket server end to end: real server on 127.0.0.1:0, real
//! clients, real guest components.

use std::time::Duration;

use netra_server::{RunLimits, ServerConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use netra_tests::inproc::TestServer;
use netra_tests::ws::{Client, check_order, types};

fn deltas(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "message_delta")
        .map(|e| e["text"].as_str().unwrap_or_default())
        .collect()
}

fn terminal(events: &[Value]) -> &Value {
    events.last().expect("events")
}

#[tokio::test]
async fn helper_answers_arithmetic_through_the_calculator() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let events = client.run("helper", "what is 2+3*4").await;
    let kinds = types(&events);
    assert_eq!(
        &kinds[..4],
        [
            "agent_started",
            "agent_thinking",
            "tool_executing",
            "tool_completed"
        ],
        "{kinds:?}"
    );
    assert!(
        kinds[4..kinds.len() - 1]
            .iter()
            .all(|k| *k == "message_delta"),
        "{kinds:?}"
    );
    assert!(
        kinds.len() >= 6,
        "expected at least one message_delta: {kinds:?}"
    );
    assert_eq!(*kinds.last().unwrap(), "agent_completed");

    assert_eq!(events[0]["agent"], "helper");
    assert!(
        events[0]["version"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(events[2]["tool"], "calculate");
    assert_eq!(events[2]["arguments"], json!({"expression": "2+3*4"}));
    assert_eq!(events[3]["ok"], json!(14));
    assert_eq!(events[2]["tool_call_id"], events[3]["tool_call_id"]);
    let done = terminal(&events);
    assert_eq!(done["outcome"], "completed");
    assert!(done["output"].as_str().unwrap().contains("14"), "{done}");
    assert_eq!(deltas(&events), done["output"].as_str().unwrap());
}

#[tokio::test]
async fn lists_agents_and_tools_and_answers_ping() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let agents = client.request("agents.list", json!({})).await;
    let names: Vec<_> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"helper") && names.contains(&"echo-agent"),
        "{names:?}"
    );
    let tools = client.request("tools.list", json!({})).await;
    let names: Vec<_> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"calculate") && names.contains(&"slugify"),
        "{names:?}"
    );
    let pong = client.request("ping", json!({})).await;
    assert_eq!(pong["pong"], true);
}

#[tokio::test]
async fn the_token_can_travel_in_the_subprotocol_header() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start().await;
    let mut request = server.url().into_client_request().unwrap();
    let offer = format!("netra.v1, bearer.{}", server.token("browser"));
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offer.parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade");
    assert_eq!(response.headers()["sec-websocket-protocol"], "netra.v1");
    let mut client = Client {
        ws,
        next_id: 100,
        pending: Default::default(),
    };
    let pong = client.request("ping", json!({})).await;
    assert_eq!(pong["type"], "ack");
}

#[tokio::test]
async fn agents_get_history_and_their_granted_tools() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let (run_id, thread_id) = client.start_run("echo-agent", "first message").await;
    let events = client.run_events(&run_id).await;
    assert_eq!(terminal(&events)["output"], "first message");
    assert_eq!(deltas(&events), "first message");

    let ack = client
        .request(
            "run.start",
            json!({"agent": "echo-agent", "input": "history", "thread_id": thread_id}),
        )
        .await;
    assert_eq!(ack["thread_id"], json!(thread_id));
    let events = client.run_events(ack["run_id"].as_str().unwrap()).await;
    assert_eq!(
        terminal(&events)["output"],
        "user: first message\nassistant: first message"
    );

    // Another user cannot continue the thread, and cannot tell it exists.
    let mut mallory = server.connect("mallory").await;
    let refused = mallory
        .request(
            "run.start",
            json!({"agent": "echo-agent", "input": "history", "thread_id": thread_id}),
        )
        .await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "not_found");

    let events = client.run("echo-agent", "tools").await;
    let output = terminal(&events)["output"].as_str().unwrap().to_string();
    assert!(
        output.contains("calculate") && output.contains("slugify"),
        "{output}"
    );
}

#[tokio::test]
async fn hostile_agents_fail_cleanly_while_bystanders_complete() {
    let server = TestServer::start().await;
    let mut hostile = server.connect("mallory").await;
    let mut bystander = server.connect("alice").await;
    let mut hostile_runs = Vec::new();
    for agent in [
        "spin-agent",
        "trap-agent",
        "membomb-agent",
        "forbidden-agent",
    ] {
        let (run_id, _) = hostile.start_run(agent, "go").await;
        hostile_runs.push((agent, run_id));
    }
    // While they misbehave, ordinary runs of another user complete.
    for _ in 0..5 {
        let events = bystander.run("helper", "what is (1+2)^3").await;
        assert_eq!(terminal(&events)["outcome"], "completed", "{events:#?}");
        assert!(terminal(&events)["output"].as_str().unwrap().contains("27"));
    }
    let mut codes = Vec::new();
    for (agent, run_id) in hostile_runs {
        let events = hostile.run_events(&run_id).await;
        let end = terminal(&events);
        assert_eq!(end["type"], "agent_error", "{agent}: {events:#?}");
        assert_eq!(end["retryable"], false, "{agent}");
        codes.push((
            agent,
            end["code"].as_str().unwrap().to_string(),
            end["message"].clone(),
        ));
    }
    assert_eq!(codes[0].1, "timeout", "{codes:?}");
    assert_eq!(codes[1].1, "trap", "{codes:?}");
    assert!(
        codes[1]
            .2
            .as_str()
            .unwrap()
            .contains("agent trap: deliberate"),
        "{codes:?}"
    );
    assert_eq!(codes[2].1, "out_of_memory", "{codes:?}");
    assert_eq!(codes[3].1, "tool_denied", "{codes:?}");
    assert!(
        codes[3].2.as_str().unwrap().contains("slugify"),
        "{codes:?}"
    );
}

#[tokio::test]
async fn a_denied_tool_call_shows_in_the_events() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let events = client.run("forbidden-agent", "go").await;
    let completed: Vec<_> = events
        .iter()
        .filter(|e| e["type"] == "tool_completed")
        .collect();
    assert_eq!(completed.len(), 2, "{events:#?}");
    assert_eq!(completed[0]["ok"], json!(3));
    assert_eq!(completed[1]["tool"], "slugify");
    assert_eq!(completed[1]["error"]["code"], "denied");
}

#[tokio::test]
async fn bad_frames_get_errors_and_the_socket_keeps_working() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    client.send_text("{not json").await;
    let err = client.recv().await;
    assert_eq!(
        (err["type"].as_str(), err["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );

    let err = client.request("run.fly", json!({})).await;
    assert_eq!(err["code"], "unknown_command");

    let err = client
        .request("run.start", json!({"agent": "helper"}))
        .await;
    assert_eq!(err["code"], "invalid_command");
    assert!(err["message"].as_str().unwrap().contains("input"), "{err}");

    let err = client
        .request("run.start", json!({"agent": "nobody", "input": "x"}))
        .await;
    assert_eq!(err["code"], "unknown_agent");

    client.ws.send_binary(vec![1, 2, 3]).await;
    let err = client.recv().await;
    assert_eq!(err["code"], "binary_not_supported");

    // Still fully usable.
    let events = client.run("helper", "what is 6*7").await;
    assert!(terminal(&events)["output"].as_str().unwrap().contains("42"));
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    let huge = json!({"type": "run.start", "id": "big", "agent": "helper", "input": "x".repeat(100 * 1024)});
    client.send_text(huge.to_string()).await;
    assert_eq!(client.expect_close().await, 1009);
    // Other sessions are unaffected.
    let mut other = server.connect("alice").await;
    assert_eq!(other.request("ping", json!({})).await["pong"], true);
}

#[tokio::test]
async fn per_user_run_limit_gives_a_clear_error() {
    let server = TestServer::start_with(
        ServerConfig::default(),
        RunLimits {
            per_user: 2,
            global: 100,
            ..RunLimits::default()
        },
        None,
    )
    .await;
    let mut client = server.connect("alice").await;
    let (first, _) = client.start_run("spin-agent", "go").await;
    let (second, _) = client.start_run("spin-agent", "go").await;
    let refused = client
        .request("run.start", json!({"agent": "helper", "input": "1+1"}))
        .await;
    assert_eq!(refused["code"], "too_many_runs", "{refused}");
    // Another user is not affected by alice's limit.
    let mut bob = server.connect("bob").await;
    let events = bob.run("helper", "what is 1+1").await;
    assert_eq!(terminal(&events)["outcome"], "completed");
    for run in [first, second] {
        client.request("run.cancel", json!({ "run_id": run })).await;
    }
}

#[tokio::test]
async fn an_expiring_token_closes_the_session_with_4401() {
    let server = TestServer::start().await;
    let token = server
        .auth
        .issue("alice", &[], Duration::from_secs(2))
        .unwrap();
    let mut client = server.connect_with_token(&token).await;
    assert_eq!(client.request("ping", json!({})).await["pong"], true);
    assert_eq!(client.expect_close().await, 4401);
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_1013() {
    let server = TestServer::start_with(
        ServerConfig {
            send_queue: 4,
            ..ServerConfig::default()
        },
        RunLimits::default(),
        None,
    )
    .await;
    let mut client = server.connect("alice").await;
    // Ask for far more replies than the queue holds without reading any.
    let burst: Vec<Message> = (0..2000)
        .map(|i| {
            Message::Text(
                json!({"type": "tools.list", "id": format!("t{i}")})
                    .to_string()
                    .into(),
            )
        })
        .collect();
    for message in burst {
        if client.ws.send(message).await.is_err() {
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let code = loop {
        match client.ws.next().await {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, 1013);
}

#[tokio::test]
async fn two_hundred_users_five_runs_each_no_misrouted_events() {
    let server = TestServer::start().await;
    let mut tasks = Vec::new();
    for user in 0..200 {
        let mut client = server.connect(&format!("user{user}")).await;
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for run in 0..5 {
                let input = format!("what is {user}+{run}");
                let (run_id, _) = client.start_run("helper", &input).await;
                mine.push(run_id.clone());
                let mut events = Vec::new();
                loop {
                    let frame = client.recv().await;
                    if frame.get("seq").is_none() {
                        continue;
                    }
                    assert_eq!(frame["run_id"], json!(run_id), "misrouted event: {frame}");
                    let done = matches!(
                        frame["type"].as_str(),
                        Some("agent_completed" | "agent_error")
                    );
                    events.push(frame);
                    if done {
                        break;
                    }
                }
                check_order(&events);
                let output = events.last().unwrap()["output"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                assert!(output.contains(&(user + run).to_string()), "{output}");
            }
            mine
        }));
    }
    let mut all = std::collections::HashSet::new();
    for task in tasks {
        for run in task.await.expect("client task") {
            assert!(all.insert(run), "duplicate run id");
        }
    }
    assert_eq!(all.len(), 1000);
}

trait SendBinary {
    async fn send_binary(&mut self, bytes: Vec<u8>);
}

impl SendBinary
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn send_binary(&mut self, bytes: Vec<u8>) {
        use futures_util::SinkExt;
        self.send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }
}

use futures_util::{SinkExt, StreamExt};

#[tokio::test]
async fn a_flood_of_invalid_frames_closes_with_1008() {
    let server = TestServer::start().await;
    let mut client = server.connect("alice").await;
    for _ in 0..150 {
        if client
            .ws
            .send(Message::Text("garbage".into()))
            .await
            .is_err()
        {
            break;
        }
    }
    assert_eq!(client.expect_close().await, 1008);
}

#[tokio::test]
async fn helper_keeps_notes_per_user_in_kv() {
    let server = TestServer::start().await;
    let mut alice = server.connect("notes-alice").await;
    let events = alice.run("helper", "remember: buy oat milk").await;
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "tool_executing" && e["tool"] == "note_save"),
        "{events:#?}"
    );
    assert_eq!(terminal(&events)["outcome"], "completed", "{events:#?}");
    let events = alice.run("helper", "what are my notes").await;
    let listed = terminal(&events)["output"].as_str().unwrap().to_string();
    assert!(listed.contains("buy oat milk"), "{listed}");

    // Bob's kv scope is his own: he sees no notes and cannot delete Alice's.
    let mut bob = server.connect("notes-bob").await;
    let events = bob.run("helper", "what are my notes").await;
    let output = terminal(&events)["output"].as_str().unwrap().to_string();
    assert!(output.contains("no notes"), "{output}");
    let events = bob.run("helper", "forget buy oat milk").await;
    let output = terminal(&events)["output"].as_str().unwrap().to_string();
    assert!(output.contains("no note"), "{output}");
    let events = alice.run("helper", "what are my notes").await;
    assert_eq!(terminal(&events)["output"].as_str().unwrap(), listed);
}
