//! Plugins written in Python (componentize-py) and JavaScript
//! (componentize-js), served by the real `netra serve` beside Rust ones and
//! reached over a real WebSocket: their tools answer runs correctly, their
//! exceptions become tool errors with the message, every request gets a
//! fresh instance, and an agent written in Python calls a Rust tool.

use serde_json::{Value, json};

use netra_tests::openai::{ScriptedServer, Step, chunk, sse};
use netra_tests::serve::{CALCULATOR, Plugin, Server};

const ASSISTANT: Plugin = Plugin {
    guest: "assistant",
    manifest: "name = \"assistant\"\nversion = \"0.1.0\"\nkind = \"agent\"\n",
};

fn plugins() -> Vec<Plugin> {
    vec![
        CALCULATOR,
        ASSISTANT,
        Plugin {
            guest: "py:units",
            manifest: include_str!("../../../../plugins/units/plugin.toml"),
        },
        Plugin {
            guest: "js:jsonq",
            manifest: include_str!("../../../../plugins/jsonq/plugin.toml"),
        },
        Plugin {
            guest: "py:pyagent",
            manifest: include_str!("../../../../plugins/pyagent/plugin.toml"),
        },
        Plugin {
            guest: "py:py-probe",
            manifest: include_str!("../../../../plugins/fixtures/py-probe/plugin.toml"),
        },
        Plugin {
            guest: "js:js-probe",
            manifest: include_str!("../../../../plugins/fixtures/js-probe/plugin.toml"),
        },
    ]
}

fn config(llm: &ScriptedServer) -> String {
    format!(
        r#"
[llm.fake]
base_url = "{}"
models = ["fake-1"]

[plugin.assistant]
tools = ["convert", "json_query", "py_count", "py_boom", "js_count", "js_boom"]
llm = ["fake"]

[plugin.pyagent]
tools = ["calculate"]
"#,
        llm.base_url()
    )
}

/// One model turn that asks for `calls` (name, arguments), then one that
/// answers `answer`.
fn turn(calls: &[(&str, Value)], answer: &str) -> Vec<Vec<Step>> {
    let mut asking = vec![chunk(
        json!({ "role": "assistant", "content": null }),
        None,
        None,
    )];
    for (index, (name, arguments)) in calls.iter().enumerate() {
        asking.push(chunk(
            json!({ "tool_calls": [{
                "index": index,
                "id": format!("call_{index}"),
                "type": "function",
                "function": { "name": name, "arguments": arguments.to_string() },
            }]}),
            None,
            None,
        ));
    }
    asking.push(chunk(json!({}), Some("tool_calls"), None));
    vec![
        sse(&asking),
        sse(&[
            chunk(
                json!({ "role": "assistant", "content": answer }),
                None,
                None,
            ),
            chunk(json!({}), Some("stop"), None),
        ]),
    ]
}

/// The `tool_completed` events of a run, in order.
fn completions(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e["type"] == "tool_completed")
        .cloned()
        .collect()
}

/// A completed tool call's result, parsed.
fn result(completed: &Value) -> Value {
    let ok = &completed["ok"];
    match ok.as_str() {
        Some(text) => serde_json::from_str(text).unwrap_or(ok.clone()),
        None => ok.clone(),
    }
}

#[test]
fn python_and_javascript_plugins_serve_runs_over_websocket() {
    let mut script = Vec::new();
    // 1: a Python tool and a JavaScript tool answer correctly.
    script.extend(turn(
        &[
            (
                "convert",
                json!({ "value": 1.0, "from_unit": "m", "to_unit": "ft" }),
            ),
            (
                "json_query",
                json!({ "json": { "a": { "b": [ { "c": 7 }, { "c": 9 } ] } }, "path": "a.b[1].c" }),
            ),
        ],
        "1 m is 3.28 ft and the value is 9.",
    ));
    // 2: exceptions in Python and JavaScript become tool errors.
    script.extend(turn(
        &[
            ("py_boom", json!({ "message": "snake" })),
            ("js_boom", json!({ "message": "camel" })),
        ],
        "Both tools failed.",
    ));
    // 3-5: a module-level counter in each language, one call per request.
    for _ in 0..3 {
        script.extend(turn(
            &[("py_count", json!({})), ("js_count", json!({}))],
            "Counted.",
        ));
    }
    let llm = ScriptedServer::openai(script);
    let server = Server::start(&plugins(), "refuse", &config(&llm));
    let token = server.token("pat", &[]);

    let events = server.run_events(&token, "assistant", "convert and query");
    let done = completions(&events);
    assert_eq!(
        events.last().map(|e| &e["type"]),
        Some(&json!("agent_completed")),
        "{events:#?}"
    );
    assert_eq!(done.len(), 2, "{events:#?}");
    let feet = result(&done[0]);
    let value = feet["value"].as_f64().unwrap_or_default();
    assert!((value - 3.28084).abs() < 1e-4, "convert answered {feet}");
    assert_eq!(result(&done[1])["result"], json!(9), "{}", done[1]);

    let events = server.run_events(&token, "assistant", "break both");
    assert_eq!(
        events.last().map(|e| &e["type"]),
        Some(&json!("agent_completed")),
        "{events:#?}"
    );
    let done = completions(&events);
    assert_eq!(done.len(), 2, "{events:#?}");
    for (completed, language_message) in done.iter().zip(["boom: snake", "boom: camel"]) {
        let error = &completed["error"];
        assert_eq!(error["code"], "failed", "{completed}");
        assert!(
            error["message"]
                .as_str()
                .is_some_and(|m| m.contains(language_message)),
            "{completed}"
        );
    }

    for round in 0..3 {
        let events = server.run_events(&token, "assistant", "count");
        let done = completions(&events);
        assert_eq!(done.len(), 2, "round {round}: {events:#?}");
        for completed in &done {
            assert_eq!(
                result(completed)["count"],
                json!(1),
                "round {round}: {completed}"
            );
        }
    }
    let requests = llm.chat_requests();
    assert_eq!(requests.len(), 10);
    // The SDKs put each tool's declared examples into its input schema, where
    // the model sees them.
    let tools = requests[0]["tools"].as_array().cloned().unwrap_or_default();
    let parameters = |name: &str| {
        tools
            .iter()
            .find(|t| t["function"]["name"] == name)
            .map(|t| t["function"]["parameters"].clone())
            .unwrap_or_default()
    };
    assert_eq!(
        parameters("convert")["examples"],
        json!([{ "value": 1, "from_unit": "m", "to_unit": "ft" }])
    );
    assert_eq!(
        parameters("json_query")["examples"][0]["path"],
        json!("a.b[1].c")
    );
}

#[test]
fn an_agent_written_in_python_calls_a_rust_tool() {
    let llm = ScriptedServer::openai(Vec::new());
    let server = Server::start(&plugins(), "refuse", &config(&llm));
    let token = server.token("pat", &[]);
    let events = server.run_events(&token, "pyagent", "what is 2+3*4");
    let last = events.last().cloned().unwrap_or(Value::Null);
    assert_eq!(last["type"], "agent_completed", "{events:#?}");
    assert!(
        last["output"].as_str().is_some_and(|o| o.contains("14")),
        "{last}"
    );
    let executing: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "tool_executing")
        .collect();
    assert_eq!(executing.len(), 1, "{events:#?}");
    assert_eq!(executing[0]["tool"], "calculate");
    let done = completions(&events);
    assert!(done[0].get("ok").is_some(), "{done:?}");
    assert!(
        events.iter().any(|e| e["type"] == "agent_thinking"),
        "{events:#?}"
    );
    let streamed: String = events
        .iter()
        .filter(|e| e["type"] == "message_delta")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert_eq!(Some(streamed.as_str()), last["output"].as_str());
}
