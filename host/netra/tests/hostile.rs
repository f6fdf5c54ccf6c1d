//! The hostile-plugin battery: each attack runs through the real `netra
//! serve` (real components, a real SQLite file, real WebSocket clients) and
//! must end with its own code, with the host up and a bystander's `helper`
//! runs completing after every one.

mod support;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use support::{CALCULATOR, Plugin, Server};

const HELPER: Plugin = Plugin {
    guest: "helper",
    manifest: r#"name = "helper"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate"]
"#,
};

const CONFIG: &str = r#"
[limits]
max_runs_per_user = 8

[limits.agent]
deadline = "4s"
max_event_bytes = "1MiB"
max_tool_calls = 100
max_tool_arguments_bytes = "16KiB"
max_answer_bytes = "64KiB"
max_nested_runs = 3
log_lines_per_second = 20
kv_max_keys = 50

[limits.tool]
deadline = "1s"
max_result_bytes = "64KiB"
log_lines_per_second = 20

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "sleep", "huge_result", "escape", "helper", "hostile-agent"]
"#;

fn plugins() -> Vec<Plugin> {
    vec![
        CALCULATOR,
        HELPER,
        Plugin {
            guest: "fixture-hostile",
            manifest: "name = \"hostile\"\nversion = \"1.0.0\"\nkind = \"tool\"\n",
        },
        Plugin {
            guest: "agent-hostile",
            manifest: r#"name = "agent-hostile"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate", "sleep", "huge_result", "escape"]
agents = ["helper"]
"#,
        },
        Plugin {
            guest: "agent-spin",
            manifest: "name = \"agent-spin\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
        Plugin {
            guest: "agent-membomb",
            manifest: "name = \"agent-membomb\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
        Plugin {
            guest: "agent-trap",
            manifest: "name = \"agent-trap\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
        },
    ]
}

/// The terminal event's code: `agent_error.code`, or `completed`.
fn outcome(end: &Value) -> String {
    match end["type"].as_str() {
        Some("agent_error") => end["code"].as_str().unwrap_or_default().to_string(),
        Some("agent_completed") => end["outcome"].as_str().unwrap_or_default().to_string(),
        _ => format!("no terminal event: {end}"),
    }
}

/// The error codes of the run's failed tool calls.
fn tool_errors(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "tool_completed" && e["error"].is_object())
        .map(|e| e["error"]["code"].as_str().unwrap_or_default().to_string())
        .collect()
}

struct Battery {
    server: Server,
    attacker: String,
    bystander: String,
}

impl Battery {
    /// Runs `agent` on `input` as the attacker; then the bystander's run must
    /// still complete with the right answer.
    fn attack(&self, agent: &str, input: &str) -> Vec<Value> {
        let events = self.server.run_events(&self.attacker, agent, input);
        self.bystander_is_served(&format!("{agent} {input}"));
        events
    }

    fn bystander_is_served(&self, after: &str) {
        let end = self.server.run(&self.bystander, "helper", "what is 6 * 7");
        assert_eq!(end["type"], "agent_completed", "after {after}: {end}");
        assert!(
            end["output"].as_str().unwrap_or_default().contains("42"),
            "after {after}: {end}"
        );
        let (status, _) = self.server.http("GET", "/healthz", None);
        assert_eq!(status, 200, "after {after}");
    }
}

#[test]
fn hostile_plugins_and_clients_end_with_their_codes_and_disturb_no_one() {
    // A session whose client stops reading is closed within a bounded time.
    // Its queue holds more than one run's event budget, so only a client
    // that does not read can fill it.
    // SAFETY: this test binary has one test; nothing reads the environment
    // concurrently.
    unsafe {
        std::env::set_var("NETRA_SERVER__SEND_QUEUE_BYTES", "2MiB");
        std::env::set_var("NETRA_SERVER__WRITE_TIMEOUT", "1s");
    }
    let server = Server::start(&plugins(), "refuse", CONFIG);
    let battery = Battery {
        attacker: server.token("mallory", &[]),
        bystander: server.token("bob", &[]),
        server,
    };
    battery.bystander_is_served("start");

    // Infinite loop, memory bomb, stack overflow, trap.
    let started = Instant::now();
    let end = battery.attack("spin-agent", "go");
    assert_eq!(outcome(end.last().unwrap()), "timeout");
    assert!(started.elapsed() < Duration::from_secs(15));
    let end = battery.attack("membomb-agent", "go");
    assert_eq!(outcome(end.last().unwrap()), "out_of_memory");
    let end = battery.attack("hostile-agent", "recurse");
    assert_eq!(outcome(end.last().unwrap()), "stack_overflow");
    let end = battery.attack("trap-agent", "go");
    assert_eq!(outcome(end.last().unwrap()), "trap");

    // A tool that sleeps past its deadline (a WASI clock wait, where no
    // epoch check runs) ends at the deadline, not when it wakes.
    let started = Instant::now();
    let events = battery.attack("hostile-agent", "sleep 60000");
    let tool_took = started.elapsed();
    assert_eq!(tool_errors(&events), ["timeout"], "{events:#?}");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    assert!(tool_took < Duration::from_secs(10), "took {tool_took:?}");
    let duration = events
        .iter()
        .find(|e| e["type"] == "tool_completed")
        .and_then(|e| e["duration_ms"].as_f64())
        .unwrap_or(f64::MAX);
    assert!(
        duration < 1100.0,
        "the call took {duration} ms (deadline 1 s)"
    );

    // Huge tool result, huge arguments, huge answer.
    let events = battery.attack("hostile-agent", "huge_result 100000");
    assert_eq!(tool_errors(&events), ["result_too_large"]);
    assert_eq!(outcome(events.last().unwrap()), "completed");
    let events = battery.attack("hostile-agent", "huge_args 100000");
    assert_eq!(tool_errors(&events), ["arguments_too_large"]);
    let executing = events
        .iter()
        .find(|e| e["type"] == "tool_executing")
        .expect("tool_executing");
    assert_eq!(executing["arguments"]["omitted_bytes"], 100_000 + 17);
    let events = battery.attack("hostile-agent", "answer 100000");
    assert_eq!(outcome(events.last().unwrap()), "budget_answer_bytes");

    // Output, event and tool-call floods.
    let events = battery.attack("hostile-agent", "print 100000");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    let events = battery.attack("hostile-agent", "events");
    assert_eq!(outcome(events.last().unwrap()), "budget_event_bytes");
    let stored: usize = events.iter().map(|e| e.to_string().len()).sum();
    assert!(stored < (1 << 20) + 4096, "{stored} bytes of events");
    let events = battery.attack("hostile-agent", "tools");
    assert_eq!(outcome(events.last().unwrap()), "budget_tool_calls");
    let calls = events
        .iter()
        .filter(|e| e["type"] == "tool_executing")
        .count();
    assert_eq!(calls, 100);

    // kv bomb: the quota stops it; the plugin sees `too-large`.
    let events = battery.attack("hostile-agent", "kv 1000");
    assert_eq!(outcome(events.last().unwrap()), "completed");
    let answer = events.last().unwrap()["output"]
        .as_str()
        .unwrap_or_default();
    assert!(
        answer.starts_with("written 50; error:") && answer.contains("kv_max_keys"),
        "{answer}"
    );

    // Recursive delegation and a nested-run storm.
    let events = battery.attack("hostile-agent", "delegate");
    assert_eq!(outcome(events.last().unwrap()), "delegation_too_deep");
    let events = battery.attack("hostile-agent", "nested 10");
    assert_eq!(outcome(events.last().unwrap()), "budget_nested_runs");
    let nested = events
        .iter()
        .filter(|e| e["type"] == "agent_started" && e["agent"] == "helper")
        .count();
    assert_eq!(nested, 3);

    // Escapes: no file, environment, socket or HTTP host was granted.
    let events = battery.attack("hostile-agent", "escape");
    let end = events.last().unwrap();
    assert_eq!(outcome(end), "completed");
    let report: Value =
        serde_json::from_str(end["output"].as_str().unwrap_or_default()).expect("a report");
    for what in [
        "read_etc_passwd",
        "list_root",
        "env_home",
        "tcp_connect",
        "http_get",
        "write_tmp",
    ] {
        assert_eq!(report[what], false, "{what}: {report:#}");
    }
    assert_eq!(report["env_vars"], 0, "{report:#}");

    // A client that never reads: its session is closed (send queue bytes or
    // write timeout), nobody else notices.
    never_reading_client(&battery);
    battery.bystander_is_served("a client that never reads");
}

fn never_reading_client(battery: &Battery) {
    let url = format!("ws://{}/v1/ws", battery.server.addr);
    let token = battery.attacker.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    runtime.block_on(async move {
        let mut ws = support::connect(&url, &token).await;
        // The attack: six runs of ~900 KiB of deltas each (under the event
        // budget), streamed to a client that reads nothing.
        for id in 1..=6 {
            let start = json!({"type": "run.start", "id": id.to_string(), "agent": "hostile-agent", "input": "deltas 800"});
            ws.send(Message::Text(start.to_string().into()))
                .await
                .expect("send");
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut closed = None;
        let mut completed = 0;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    closed = Some(frame.map(|f| u16::from(f.code)));
                    break;
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    completed += usize::from(text.contains("\"agent_completed\""));
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    closed = Some(None);
                    break;
                }
                Err(_) => panic!("the session of a client that never read is still open"),
            }
        }
        assert!(completed < 6, "every run reached a client that never read");
        assert!(
            matches!(closed, Some(Some(1013)) | Some(None)),
            "closed with {closed:?}"
        );
    });
}
