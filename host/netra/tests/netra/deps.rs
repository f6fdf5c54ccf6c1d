//! The dependency graph, health checks, breakers and readiness of the real
//! `netra serve`, configured by a netra.toml, driven over HTTP and WebSocket.

use std::path::Path;

use serde_json::{Value, json};

use netra_tests::serve::{CALCULATOR, Plugin, Server};
use netra_tests::stub::{TinyServer, closed_port};

fn node<'a>(readyz: &'a Value, id: &str) -> &'a Value {
    readyz["nodes"]
        .as_array()
        .and_then(|nodes| nodes.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("no node {id} in {readyz:#}"))
}

fn reasons(readyz: &Value, id: &str) -> String {
    node(readyz, id)["reasons"].to_string()
}

fn endpoint<'a>(readyz: &'a Value, name: &str) -> &'a Value {
    readyz["endpoints"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no endpoint {name} in {readyz:#}"))
}

/// A missing tool, an agent cycle and a dead LLM endpoint each degrade
/// exactly the plugins that need them, with the reasons in /readyz, while
/// the rest serves; /readyz is 503 until the golden path passes; when the
/// endpoint comes back its breaker closes and the runs that needed it
/// succeed, without a restart.
#[test]
fn dependency_failures_degrade_exactly_their_dependents_until_they_recover() {
    let llm_port = closed_port();
    let plugins = [
        CALCULATOR,
        Plugin {
            // The golden-path agent: a tool and the LLM.
            guest: "helper",
            manifest: r#"name = "helper"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate"]
llm = ["local"]
"#,
        },
        Plugin {
            guest: "agent-echo",
            manifest: r#"name = "agent-echo"
version = "1.0.0"
kind = "agent"
"#,
        },
        Plugin {
            guest: "agent-forbidden",
            manifest: r#"name = "agent-forbidden"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["no_such_tool"]
"#,
        },
        Plugin {
            guest: "agent-spin",
            manifest: r#"name = "agent-spin"
version = "1.0.0"
kind = "agent"
[needs]
agents = ["trap-agent"]
"#,
        },
        Plugin {
            guest: "agent-trap",
            manifest: r#"name = "agent-trap"
version = "1.0.0"
kind = "agent"
[needs]
agents = ["spin-agent"]
"#,
        },
    ];
    let config = format!(
        r#"
[llm.local]
base_url = "http://127.0.0.1:{llm_port}/v1"
models = ["m"]

[health]
interval = "100ms"
timeout = "500ms"
failure_threshold = 1
open_for = "100ms"
max_open_for = "200ms"
start_attempts = 2

[health.golden_path]
agent = "helper"
input = "what is 2+3*4"
expect = "14"

[plugin.helper]
tools = ["calculate"]
llm = ["local"]

[plugin.agent-forbidden]
tools = ["no_such_tool"]

[plugin.agent-spin]
tools = ["trap-agent"]

[plugin.agent-trap]
tools = ["spin-agent"]
"#
    );
    let server = Server::start(&plugins, "refuse", &config);
    let token = server.token("alice", &[]);

    // The endpoint is down: the golden path cannot pass, so not ready.
    let (status, readyz) = server.wait_readyz("the golden path to fail", |_, body| {
        body["golden_path"]["state"] == "failed"
    });
    assert_eq!(status, 503, "{readyz:#}");
    assert_eq!(readyz["ready"], false);
    let golden = readyz["golden_path"]["reason"].to_string();
    assert!(golden.contains("dependency_unavailable"), "{golden}");

    let llm = endpoint(&readyz, "llm.local");
    assert_eq!(llm["state"], "open", "{llm}");
    assert!(llm["last_error"].to_string().contains("refused"), "{llm}");
    let state = |id: &str| node(&readyz, id)["state"].as_str().map(String::from);
    assert_eq!(state("store").as_deref(), Some("ready"));
    assert_eq!(state("plugin.calculator").as_deref(), Some("ready"));
    assert_eq!(state("plugin.agent-echo").as_deref(), Some("ready"));
    assert_eq!(state("llm.local").as_deref(), Some("degraded"));
    assert_eq!(state("plugin.helper").as_deref(), Some("degraded"));
    assert!(reasons(&readyz, "plugin.helper").contains("llm.local"));
    assert_eq!(state("plugin.agent-forbidden").as_deref(), Some("degraded"));
    let missing = reasons(&readyz, "plugin.agent-forbidden");
    assert!(
        missing.contains("no_such_tool") && missing.contains("no loaded plugin provides"),
        "{missing}"
    );
    for id in ["plugin.agent-spin", "plugin.agent-trap"] {
        assert_eq!(state(id).as_deref(), Some("degraded"));
        let cycle = reasons(&readyz, id);
        assert!(
            cycle.contains("dependency cycle: agent-spin -> agent-trap -> agent-spin")
                || cycle.contains("dependency cycle: agent-trap -> agent-spin -> agent-trap"),
            "{cycle}"
        );
    }

    // Runs of degraded agents fail fast with the reason; the rest serve.
    let echo = server.run(&token, "echo-agent", "hello");
    assert_eq!(echo["type"], "agent_completed", "{echo}");
    let helper = server.run(&token, "helper", "what is 2+3*4");
    assert_eq!(helper["type"], "agent_error", "{helper}");
    assert_eq!(helper["code"], "dependency_unavailable");
    assert_eq!(helper["retryable"], true);
    assert!(
        helper["message"].to_string().contains("llm.local"),
        "{helper}"
    );
    let spin = server.run(&token, "spin-agent", "spin");
    assert_eq!(spin["code"], "dependency_unavailable", "{spin}");
    assert_eq!(spin["retryable"], false);
    assert!(spin["message"].to_string().contains("cycle"), "{spin}");
    let forbidden = server.run(&token, "forbidden-agent", "x");
    assert_eq!(forbidden["code"], "dependency_unavailable", "{forbidden}");
    assert!(forbidden["message"].to_string().contains("no_such_tool"));

    // The endpoint comes back: the breaker half-opens, its trial passes and
    // it closes; the golden path passes on its next try; no restart.
    let llm_server = TinyServer::models_on(llm_port);
    let (status, readyz) = server.wait_readyz("ready after the endpoint returns", |status, _| {
        status == 200
    });
    assert_eq!(readyz["ready"], true);
    assert_eq!(readyz["golden_path"]["state"], "passed", "{readyz:#}");
    assert_eq!(readyz["golden_path"]["tools"], json!(["calculate"]));
    assert_eq!(endpoint(&readyz, "llm.local")["state"], "closed");
    assert_eq!(node(&readyz, "plugin.helper")["state"], "ready");
    assert_eq!(status, 200);
    assert!(llm_server.accepted() >= 1);
    let helper = server.run(&token, "helper", "what is 2+3*4");
    assert_eq!(helper["type"], "agent_completed", "{helper}");
    assert!(helper["output"].to_string().contains("14"), "{helper}");
    // Structural problems stay until the plugins change.
    let spin = server.run(&token, "spin-agent", "spin");
    assert_eq!(spin["code"], "dependency_unavailable", "{spin}");

    // The self-check on demand: admins only.
    let (status, _) = server.http("POST", "/v1/admin/self-check", None);
    assert_eq!(status, 401);
    let (status, _) = server.http("POST", "/v1/admin/self-check", Some(&token));
    assert_eq!(status, 403);
    let admin = server.token("root", &["admin"]);
    let (status, result) = server.http("POST", "/v1/admin/self-check", Some(&admin));
    assert_eq!(status, 200);
    assert_eq!(result["state"], "passed", "{result}");
}

/// A need the operator did not grant refuses the plugin (the default) or,
/// with `ungranted = "degrade"`, loads it degraded; either way the reason
/// names the key to change. With a configuration file an agent may call only
/// the tools its grant lists: none when it lists none.
#[test]
fn ungranted_needs_refuse_or_degrade_and_tools_are_deny_by_default() {
    let plugins = || {
        [
            CALCULATOR,
            Plugin {
                guest: "helper",
                manifest: r#"name = "helper"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate"]
"#,
            },
            Plugin {
                guest: "agent-echo",
                manifest: r#"name = "agent-echo"
version = "1.0.0"
kind = "agent"
"#,
            },
        ]
    };
    let grant = "plugin.helper.tools";
    for (policy, state) in [("refuse", "refused"), ("degrade", "degraded")] {
        let server = Server::start(&plugins(), policy, "");
        let check = server.check.as_ref().expect("config check ran");
        let printed = String::from_utf8_lossy(&check.stdout);
        assert!(
            printed.contains(&format!("plugin helper (agent 1.0.0): {state}"))
                && printed.contains("needs tool \"calculate\", not granted (plugin.helper.tools)")
                && printed.contains("plugin calculator (tool 1.0.0): ok"),
            "{printed}"
        );
        // A refused plugin fails the check; a degraded one is a warning.
        assert_eq!(check.status.success(), policy == "degrade", "{printed}");
        let token = server.token("bob", &[]);
        // No golden path configured: ready at once.
        let (status, readyz) = server.wait_readyz("readyz", |_, _| true);
        assert_eq!(status, 200, "{readyz:#}");
        assert_eq!(readyz["golden_path"]["state"], "not_configured");
        let helper = node(&readyz, "plugin.helper");
        assert_eq!(helper["state"], state, "{policy}: {helper}");
        let why = helper["reasons"].to_string();
        assert!(
            why.contains("needs tool \\\"calculate\\\", not granted") && why.contains(grant),
            "{why}"
        );
        assert_eq!(node(&readyz, "plugin.calculator")["state"], "ready");
        assert_eq!(node(&readyz, "plugin.agent-echo")["state"], "ready");
        // Deny by default: echo-agent has no tools grant, so it sees none.
        let tools = server.run(&token, "echo-agent", "tools");
        assert_eq!(tools["type"], "agent_completed", "{tools}");
        assert_eq!(tools["output"], "", "{tools}");
        if policy == "degrade" {
            let run = server.run(&token, "helper", "what is 2+3*4");
            assert_eq!(run["code"], "dependency_unavailable", "{run}");
            assert_eq!(run["retryable"], false);
            assert!(run["message"].to_string().contains(grant), "{run}");
        }
    }
}

/// The example plugins' manifests (`plugins/*/plugin.toml`, copied beside
/// the .wasm files by `cargo xtask plugins`) are valid, and without a
/// configuration file (dev mode) they grant what they need: every node is
/// ready and helper reaches its tools, notes included.
#[test]
fn the_example_manifests_serve_in_dev_mode() {
    let data = tempfile::tempdir().expect("data dir");
    let dir = tempfile::tempdir().expect("plugins dir");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&examples).expect("plugins/") {
        let path = entry.expect("entry").path();
        let manifest = path.join("plugin.toml");
        // plugins/conformance holds the MCP conformance suite's tools, not an example.
        if !manifest.exists() || path.ends_with("conformance") {
            continue;
        }
        let name = path
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let parsed = netra_config::Manifest::load(&manifest).expect("a valid manifest");
        assert_eq!(parsed.name, name, "{}", manifest.display());
        std::fs::copy(&manifest, dir.path().join(format!("{name}.toml"))).expect("copy");
        // Python and JavaScript examples are built by `cargo xtask plugins`.
        let built = if path.join("app.py").exists() {
            netra_tests::polyglot_guest("py", &name)
        } else if path.join("app.js").exists() {
            netra_tests::polyglot_guest("js", &name)
        } else {
            netra_tests::guest(&name)
        };
        std::fs::copy(built, dir.path().join(format!("{name}.wasm"))).expect("copy guest");
        names.push(name);
    }
    names.sort();
    assert_eq!(
        names,
        [
            "assistant",
            "calculator",
            "clock",
            "helper",
            "jsonq",
            "notes",
            "pyagent",
            "supervisor",
            "text",
            "units"
        ]
    );
    let args: Vec<String> = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data.path().join("state").display().to_string(),
        "--plugins",
        &dir.path().display().to_string(),
    ]
    .map(String::from)
    .to_vec();
    let server = Server::spawn(&args, data, dir);
    let (status, readyz) = server.wait_readyz("readyz", |_, _| true);
    assert_eq!(status, 200, "{readyz:#}");
    for name in &names {
        let node = node(&readyz, &format!("plugin.{name}"));
        assert_eq!(node["state"], "ready", "{node}");
    }
    let token = server.token("carol", &[]);
    let run = server.run(&token, "helper", "remember: the demo works");
    assert_eq!(run["type"], "agent_completed", "{run}");
    let run = server.run(&token, "helper", "what is 2+3*4");
    assert!(run["output"].to_string().contains("14"), "{run}");
    // The agent written in Python, granted `calculate` by its manifest.
    let run = server.run(&token, "pyagent", "what is 6*7");
    assert!(run["output"].to_string().contains("42"), "{run}");
}

/// `/readyz` without an admin token (none, a bad one, one without the role)
/// shows states only: whether the host is ready, each node's id and state,
/// each endpoint's name and breaker state and the golden path's state; no
/// file path, URL, reason or message. With an admin token it is the whole
/// report. The status code is the same either way.
#[test]
fn readyz_shows_states_only_without_an_admin_token() {
    let llm_port = closed_port();
    let plugins = [
        CALCULATOR,
        Plugin {
            guest: "helper",
            manifest: r#"name = "helper"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["calculate"]
llm = ["local"]
"#,
        },
        Plugin {
            guest: "agent-forbidden",
            manifest: r#"name = "agent-forbidden"
version = "1.0.0"
kind = "agent"
[needs]
tools = ["no_such_tool"]
"#,
        },
    ];
    let config = format!(
        r#"
[llm.local]
base_url = "http://127.0.0.1:{llm_port}/v1"
models = ["m"]

[health]
interval = "100ms"
timeout = "500ms"
failure_threshold = 1
open_for = "1h"
max_open_for = "1h"
start_attempts = 1

[health.golden_path]
agent = "helper"
input = "what is 2+3*4"

[plugin.helper]
tools = ["calculate"]
llm = ["local"]

[plugin.agent-forbidden]
tools = ["no_such_tool"]
"#
    );
    let server = Server::start(&plugins, "refuse", &config);
    let (status, full) = server.wait_readyz("the golden path to fail", |_, body| {
        body["golden_path"]["state"] == "failed"
    });
    assert_eq!(status, 503, "{full:#}");
    // The admin sees everything: the endpoint's URL, the store's path, reasons.
    let admin = server.token("root", &["admin"]);
    let (status, full) = server.http("GET", "/readyz", Some(&admin));
    assert_eq!(status, 503, "{full:#}");
    let text = full.to_string();
    let state_dir = server.state_dir().display().to_string();
    assert!(text.contains(&format!("127.0.0.1:{llm_port}")), "{full:#}");
    assert!(text.contains(&state_dir), "{full:#}");
    assert!(
        reasons(&full, "plugin.agent-forbidden").contains("no_such_tool"),
        "{full:#}"
    );
    assert!(full["golden_path"]["reason"].is_string(), "{full:#}");

    let user = server.token("alice", &[]);
    for token in [None, Some("not.a.token"), Some(user.as_str())] {
        let (status, body) = server.http("GET", "/readyz", token);
        assert_eq!(status, 503, "{token:?}: {body:#}");
        let keys = |value: &Value| -> Vec<String> {
            let mut keys: Vec<String> = value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        assert_eq!(
            keys(&body),
            ["endpoints", "golden_path", "nodes", "ready"],
            "{body:#}"
        );
        assert_eq!(body["ready"], false, "{body:#}");
        assert_eq!(body["golden_path"], json!({"state": "failed"}), "{body:#}");
        let nodes = body["nodes"].as_array().expect("nodes");
        assert_eq!(
            nodes.len(),
            full["nodes"].as_array().map_or(0, Vec::len),
            "{body:#}"
        );
        for node in nodes {
            assert_eq!(keys(node), ["id", "state"], "{node}");
        }
        assert_eq!(node(&body, "plugin.calculator")["state"], "ready");
        assert_eq!(node(&body, "plugin.agent-forbidden")["state"], "degraded");
        assert_eq!(node(&body, "store")["state"], "ready");
        assert_eq!(
            endpoint(&body, "llm.local"),
            &json!({"name": "llm.local", "state": "open"}),
            "{body:#}"
        );
        let text = body.to_string();
        for secret in [
            state_dir.as_str(),
            "127.0.0.1",
            "http://",
            "netra.db",
            "reason",
            "notes",
            "url",
            "no_such_tool",
        ] {
            assert!(!text.contains(secret), "{secret:?} in {body:#}");
        }
    }
}
