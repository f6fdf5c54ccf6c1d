//! The LLM capability through the real `netra serve`: the `assistant` agent
//! against a local server speaking OpenAI's streamed chat-completions format.

use serde_json::{Value, json};

use netra_tests::openai::{ScriptedServer, Step, chunk, sse};
use netra_tests::serve::{CALCULATOR, Plugin, Server};
use netra_tests::stub::closed_port;

const ASSISTANT: Plugin = Plugin {
    guest: "assistant",
    manifest: r#"name = "assistant"
version = "0.1.0"
kind = "agent"
[needs]
tools = ["calculate"]
"#,
};

fn config(llm: &ScriptedServer) -> String {
    format!(
        r#"
[llm.fake]
base_url = "{}"
models = ["fake-1"]

[plugin.assistant]
tools = ["calculate"]
llm = ["fake"]
"#,
        llm.base_url()
    )
}

/// The model asks for two calculations, with the tool calls' ids, names and
/// arguments split across chunks, then answers in three content chunks.
fn two_tool_calls_then_an_answer() -> Vec<Vec<Step>> {
    let call = |index: u32, id: Option<&str>, name: Option<&str>, arguments: &str| {
        let mut function = json!({ "arguments": arguments });
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({ "index": index, "function": function });
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        chunk(json!({ "tool_calls": [call] }), None, None)
    };
    vec![
        sse(&[
            chunk(json!({ "role": "assistant", "content": null }), None, None),
            call(0, Some("call_1"), Some("calculate"), ""),
            call(0, None, None, "{\"expression\":"),
            call(0, None, None, "\"2+3\"}"),
            call(1, Some("call_2"), Some("calculate"), "{\"expr"),
            call(1, None, None, "ession\":\"3*4\"}"),
            chunk(json!({}), Some("tool_calls"), None),
            chunk(json!({}), None, Some((20, 10))),
        ]),
        sse(&[
            chunk(json!({ "role": "assistant", "content": "" }), None, None),
            chunk(json!({ "content": "2+3 is 5" }), None, None),
            chunk(json!({ "content": " and 3*4" }), None, None),
            chunk(json!({ "content": " is 12." }), None, None),
            chunk(json!({}), Some("stop"), None),
            chunk(json!({}), None, Some((30, 7))),
        ]),
    ]
}

/// `assistant` answers a question that needs two tool calls: the client sees
/// tool_executing / tool_completed for each, the answer as message_delta
/// tokens, then agent_completed with the summed usage; the model got the
/// tools' results back with their call ids.
#[test]
fn the_assistant_calls_two_tools_and_streams_its_answer() {
    let llm = ScriptedServer::openai(two_tool_calls_then_an_answer());
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config(&llm));
    let token = server.token("dana", &[]);
    let events = server.run_events(&token, "assistant", "what are 2+3 and 3*4?");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    let last = events.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["type"], "agent_completed", "{events:#?}");

    let executing: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool_executing")
        .collect();
    assert_eq!(executing.len(), 2, "{kinds:?}");
    assert_eq!(executing[0]["tool"], "calculate");
    assert_eq!(executing[0]["arguments"], json!({ "expression": "2+3" }));
    assert_eq!(executing[1]["arguments"], json!({ "expression": "3*4" }));
    let completed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool_completed")
        .collect();
    assert_eq!(completed.len(), 2, "{kinds:?}");
    assert!(
        completed.iter().all(|c| c.get("ok").is_some()),
        "{completed:?}"
    );

    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "message_delta")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(streamed, "2+3 is 5 and 3*4 is 12.");
    assert!(
        kinds.iter().filter(|k| **k == "message_delta").count() >= 3,
        "{kinds:?}"
    );
    assert_eq!(last["output"], "2+3 is 5 and 3*4 is 12.");
    assert_eq!(
        last["usage"],
        json!({ "prompt_tokens": 50, "completion_tokens": 17 })
    );

    let requests = llm.chat_requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0]["model"], "fake-1");
    assert_eq!(requests[0]["stream"], true);
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "calculate");
    let second = requests[1]["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let tool_answers: Vec<(&str, &str)> = second
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap_or_default(),
                m["content"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(tool_answers.len(), 2, "{second:#?}");
    assert_eq!(tool_answers[0].0, "call_1");
    assert!(tool_answers[0].1.contains('5'), "{tool_answers:?}");
    assert_eq!(tool_answers[1].0, "call_2");
    assert!(tool_answers[1].1.contains("12"), "{tool_answers:?}");
    let assistant_turn = second
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        assistant_turn["tool_calls"][1]["id"], "call_2",
        "{second:#?}"
    );
}

/// An agent without an `llm` grant is denied the model with the key to
/// change, and the run ends with that error.
#[test]
fn a_model_not_granted_is_denied() {
    let llm = ScriptedServer::openai(two_tool_calls_then_an_answer());
    let config = config(&llm).replace("llm = [\"fake\"]", "");
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config);
    let token = server.token("erin", &[]);
    let last = server.run(&token, "assistant", "what is 2+3?");
    assert_eq!(last["type"], "agent_error", "{last}");
    assert!(
        last["message"].to_string().contains("plugin.assistant.llm"),
        "{last}"
    );
    assert!(llm.chat_requests().is_empty());
}

/// An answer in two halves with `pause` between them.
fn a_paused_answer(pause: Step) -> Vec<Step> {
    let mut pieces = sse(&[chunk(json!({ "content": "first half," }), None, None)]);
    // Drop the `[DONE]` of the first part: the stream goes on after the pause.
    pieces.pop();
    pieces.push(pause);
    pieces.extend(
        sse(&[
            chunk(json!({ "content": " second half" }), Some("stop"), None),
            chunk(json!({}), None, Some((5, 4))),
        ])
        .into_iter()
        .skip(1),
    );
    pieces
}

/// Streaming is real: with a provider that pauses mid-stream, the first
/// message_delta reaches the client before the provider's stream has ended.
#[test]
fn tokens_reach_the_client_while_the_provider_is_still_streaming() {
    let pause = std::time::Duration::from_millis(1500);
    let llm = ScriptedServer::openai(vec![a_paused_answer(Step::Pause(pause))]);
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config(&llm));
    let token = server.token("finn", &[]);
    let events = server.run_events_at(&token, "assistant", "say it in halves", false);
    let (last_at, last) = events.last().cloned().expect("events");
    assert_eq!(last["output"], "first half, second half", "{last}");
    let first_delta = events
        .iter()
        .find(|(_, e)| e["type"] == "message_delta")
        .map(|(at, _)| *at)
        .expect("a message_delta");
    let stream_end = llm
        .finished()
        .first()
        .copied()
        .expect("the provider's stream ended");
    assert!(
        first_delta < stream_end,
        "the first delta arrived {:?} after the provider's stream ended",
        first_delta.duration_since(stream_end)
    );
    assert!(last_at >= stream_end);
}

/// Cancelling a run while the model streams closes the upstream request.
#[test]
fn cancel_during_streaming_closes_the_upstream_request() {
    let wait = Step::AwaitClose(std::time::Duration::from_secs(10));
    let llm = ScriptedServer::openai(vec![a_paused_answer(wait)]);
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config(&llm));
    let token = server.token("gale", &[]);
    let events = server.run_events_at(&token, "assistant", "say it slowly", true);
    let (_, last) = events.last().cloned().expect("events");
    assert_eq!(last["type"], "agent_completed", "{last}");
    assert_eq!(last["outcome"], "cancelled", "{last}");
    assert_eq!(last["output"], "first half,");
    // The provider's connection is closed once the run is cancelled.
    assert!(
        llm.client_closed(std::time::Duration::from_secs(10))
            .is_some(),
        "the upstream request was not closed"
    );
}

/// A model that stalls mid-stream cannot hold a run past the agent's
/// deadline: the run ends with `timeout` at the deadline and the upstream
/// request is closed.
#[test]
fn a_stalled_model_ends_at_the_agents_deadline() {
    let wait = Step::AwaitClose(std::time::Duration::from_secs(20));
    let llm = ScriptedServer::openai(vec![a_paused_answer(wait)]);
    let config = format!("{}\n[limits.agent]\ndeadline = \"1s\"\n", config(&llm));
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config);
    let token = server.token("hale", &[]);
    let started = std::time::Instant::now();
    let events = server.run_events(&token, "assistant", "say it slowly");
    let last = events.last().cloned().expect("events");
    assert_eq!(last["type"], "agent_error", "{last}");
    assert_eq!(last["code"], "timeout", "{last}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        llm.client_closed(std::time::Duration::from_secs(15).saturating_sub(started.elapsed()))
            .is_some(),
        "the upstream request was not closed"
    );
}

/// 429 with Retry-After, then success: the run succeeds after the retry.
/// A dead endpoint: its breaker opens and runs fail with
/// dependency_unavailable (retryable) without a request going out.
#[test]
fn rate_limits_are_retried_and_a_dead_endpoint_fails_fast() {
    let limited = vec![Step::text(
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 60\r\nConnection: close\r\n\r\n{\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\"}}".to_string(),
    )];
    let answer = sse(&[
        chunk(json!({ "content": "done" }), Some("stop"), None),
        chunk(json!({}), None, Some((3, 1))),
    ]);
    let llm = ScriptedServer::openai(vec![limited, answer]);
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config(&llm));
    let token = server.token("hale", &[]);
    let last = server.run(&token, "assistant", "anything");
    assert_eq!(last["type"], "agent_completed", "{last}");
    assert_eq!(last["output"], "done");
    assert_eq!(llm.chat_requests().len(), 2);

    // A closed port: the start checks open the breaker.
    let port = closed_port();
    let dead = format!(
        r#"
[llm.fake]
base_url = "http://127.0.0.1:{port}/v1"
models = ["fake-1"]

[health]
failure_threshold = 1
start_attempts = 1
open_for = "1h"
max_open_for = "1h"

[plugin.assistant]
tools = ["calculate"]
llm = ["fake"]
"#
    );
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &dead);
    server.wait_readyz("the breaker to open", |_, body| {
        body["endpoints"][0]["state"] == "open"
    });
    let token = server.token("ivy", &[]);
    for _ in 0..3 {
        let last = server.run(&token, "assistant", "anything");
        assert_eq!(last["type"], "agent_error", "{last}");
        assert_eq!(last["code"], "dependency_unavailable", "{last}");
        assert_eq!(last["retryable"], true, "{last}");
        assert!(last["message"].to_string().contains("breaker"), "{last}");
    }
}

/// A completion that calls one tool (an agent, for the supervisor).
fn calls(tool: &str, arguments: Value) -> Vec<Step> {
    sse(&[
        chunk(
            json!({ "tool_calls": [{
                "index": 0, "id": format!("call_{tool}"), "type": "function",
                "function": { "name": tool, "arguments": arguments.to_string() },
            }] }),
            None,
            None,
        ),
        chunk(json!({}), Some("tool_calls"), Some((10, 5))),
    ])
}

/// A completion that answers `text`.
fn answers(text: &str) -> Vec<Step> {
    sse(&[
        chunk(json!({ "content": text }), Some("stop"), None),
        chunk(json!({}), None, Some((10, 5))),
    ])
}

const SUPERVISOR: Plugin = Plugin {
    guest: "supervisor",
    manifest: r#"name = "supervisor"
version = "0.1.0"
kind = "agent"
"#,
};

const HELPER: Plugin = Plugin {
    guest: "helper",
    manifest: r#"name = "helper"
version = "0.1.0"
kind = "agent"
[needs]
tools = ["calculate"]
"#,
};

/// `supervisor` delegates to `helper` and `assistant`: each is a nested run
/// of its own whose events reach the client with `parent_run_id`, between
/// the supervisor's tool_executing and tool_completed for it.
#[test]
fn the_supervisor_delegates_to_nested_runs() {
    let llm = ScriptedServer::openai(vec![
        // supervisor: delegate to helper, then (next step) to assistant
        calls("helper", json!({ "input": "what is 2+3*4" })),
        calls("assistant", json!({ "input": "what is 10/4" })),
        // assistant (nested): calculate, then answer
        calls("calculate", json!({ "expression": "10/4" })),
        answers("10/4 is 2.5"),
        // supervisor: the combined answer
        answers("2+3*4 is 14 and 10/4 is 2.5."),
    ]);
    let config = format!(
        r#"
[llm.fake]
base_url = "{}"
models = ["fake-1"]

[plugin.supervisor]
tools = ["helper", "assistant"]
llm = ["fake"]

[plugin.assistant]
tools = ["calculate"]
llm = ["fake"]

[plugin.helper]
tools = ["calculate"]
"#,
        llm.base_url()
    );
    let server = Server::start(
        &[CALCULATOR, ASSISTANT, HELPER, SUPERVISOR],
        "refuse",
        &config,
    );
    let token = server.token("jay", &[]);
    let events = server.run_events(&token, "supervisor", "what are 2+3*4 and 10/4?");
    let last = events.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["type"], "agent_completed", "{events:#?}");
    assert_eq!(last["output"], "2+3*4 is 14 and 10/4 is 2.5.");
    let root = last["run_id"].as_str().unwrap_or_default().to_string();

    let nested_starts: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "agent_started" && e["run_id"] != root.as_str())
        .collect();
    let agents: Vec<&str> = nested_starts
        .iter()
        .map(|e| e["agent"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(agents, ["helper", "assistant"], "{events:#?}");
    for nested in &nested_starts {
        assert_eq!(nested["parent_run_id"], root.as_str(), "{nested}");
        assert_ne!(nested["run_id"], root.as_str());
    }
    // Every event of a nested run carries the parent, and each nested run
    // has exactly one terminal event, between the supervisor's tool events.
    for nested in &nested_starts {
        let id = nested["run_id"].as_str().unwrap_or_default();
        let its: Vec<&Value> = events.iter().filter(|e| e["run_id"] == id).collect();
        assert!(its.iter().all(|e| e["parent_run_id"] == root.as_str()));
        assert_eq!(
            its.iter()
                .filter(|e| e["type"] == "agent_completed" || e["type"] == "agent_error")
                .count(),
            1
        );
        let seqs: Vec<u64> = its.iter().filter_map(|e| e["seq"].as_u64()).collect();
        assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    }
    let position = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred);
    let executing_helper =
        position(&|e| e["type"] == "tool_executing" && e["tool"] == "helper").expect("delegated");
    let helper_done =
        position(&|e| e["type"] == "agent_completed" && e["parent_run_id"] == root.as_str())
            .expect("helper answered");
    let completed_helper =
        position(&|e| e["type"] == "tool_completed" && e["tool"] == "helper").expect("result");
    assert!(executing_helper < helper_done && helper_done < completed_helper);
    let helper_result = &events[completed_helper]["ok"];
    assert!(helper_result.to_string().contains("14"), "{helper_result}");
    // The nested assistant called its own tool in its own run.
    assert!(events.iter().any(|e| e["type"] == "tool_executing"
        && e["tool"] == "calculate"
        && e["parent_run_id"] == root.as_str()
        && e["arguments"] == json!({ "expression": "10/4" })));
}

/// A supervisor that delegates to itself stops at the delegation depth
/// limit, and the run the client started ends with a clear agent_error.
#[test]
fn a_delegation_cycle_ends_at_the_depth_limit() {
    let again = || calls("supervisor", json!({ "input": "delegate again" }));
    let llm = ScriptedServer::openai((0..8).map(|_| again()).collect());
    let config = format!(
        r#"
[llm.fake]
base_url = "{}"
models = ["fake-1"]

[plugin.supervisor]
tools = ["supervisor"]
llm = ["fake"]
"#,
        llm.base_url()
    );
    let server = Server::start(&[CALCULATOR, SUPERVISOR], "refuse", &config);
    let token = server.token("kim", &[]);
    let events = server.run_events(&token, "supervisor", "loop forever");
    let last = events.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["type"], "agent_error", "{last}");
    assert_eq!(last["code"], "delegation_too_deep", "{last}");
    assert_eq!(last["retryable"], false);
    let message = last["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("delegation depth limit (4)")
            && message.matches("supervisor").count() == 6,
        "{message}"
    );
    // Root + 4 nested runs called the model, one each; the 5th delegation
    // was refused before a run started.
    assert_eq!(llm.chat_requests().len(), 5);
    let starts = events
        .iter()
        .filter(|e| e["type"] == "agent_started")
        .count();
    assert_eq!(starts, 5, "{events:#?}");
}

/// Reasoning tokens (`reasoning_content`, as vLLM and llama.cpp send them)
/// reach the client as agent_thinking, the answer as message_delta.
#[test]
fn reasoning_tokens_become_agent_thinking() {
    let llm = ScriptedServer::openai(vec![sse(&[
        chunk(
            json!({ "reasoning_content": "the user wants " }),
            None,
            None,
        ),
        chunk(json!({ "reasoning_content": "a greeting" }), None, None),
        chunk(json!({ "content": "hello" }), Some("stop"), None),
        chunk(json!({}), None, Some((4, 9))),
    ])]);
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config(&llm));
    let token = server.token("lou", &[]);
    let events = server.run_events(&token, "assistant", "greet me");
    let thinking: String = events
        .iter()
        .filter(|e| e["type"] == "agent_thinking")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(thinking, "the user wants a greeting", "{events:#?}");
    let last = events.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["output"], "hello");
    assert_eq!(
        last["usage"],
        json!({ "prompt_tokens": 4, "completion_tokens": 9 })
    );
}

/// A 500 is retried; a stream of malformed JSON ends the run with a clear,
/// retryable error instead of a guess.
#[test]
fn server_errors_are_retried_and_malformed_streams_fail_clearly() {
    let error = vec![Step::text(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string(),
    )];
    let mut malformed = sse(&[]);
    malformed.insert(1, Step::text("data: {\"choices\": [\n\n".to_string()));
    let llm = ScriptedServer::openai(vec![error, answers("recovered"), malformed]);
    let server = Server::start(&[CALCULATOR, ASSISTANT], "refuse", &config(&llm));
    let token = server.token("max", &[]);
    let last = server.run(&token, "assistant", "first");
    assert_eq!(last["output"], "recovered", "{last}");
    assert_eq!(llm.chat_requests().len(), 2);

    let last = server.run(&token, "assistant", "second");
    assert_eq!(last["type"], "agent_error", "{last}");
    assert_eq!(last["code"], "dependency_unavailable", "{last}");
    assert!(last["message"].to_string().contains("malformed"), "{last}");
}
