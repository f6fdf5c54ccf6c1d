//! MCP through the real `netra serve` (`/mcp`) and `netra mcp` (stdio): the
//! official Python SDK (pinned in tests/mcp/requirements.txt) lists, calls,
//! gets an error result, cancels a long call and gets `list_changed` after
//! a hot-load, over both transports; a raw client sends what no SDK would
//! (bad JSON, batches, wrong types, others' sessions) and checks auth,
//! paging, per-user kv and agents run as tools.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netra_tests::http::Conn;
use netra_tests::mcp::{McpClient, messages};
use netra_tests::serve::{CALCULATOR, Plugin, Server, netra_bin};
use netra_tests::ws::Client;
use serde_json::{Value, json};

/// The venv `cargo xtask tools` (and `cargo xtask test`) installs the MCP
/// Python SDK into.
fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/tools/mcp-python/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: `cargo xtask tools` installs the MCP Python SDK these tests use",
        python.display()
    );
    python
}

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/client.py")
}

/// Runs tests/mcp/client.py with `args`; when it is ready for the hot-load,
/// `hotload` runs and the client is told to go on. Returns its stdout.
fn run_client(args: &[String], hotload: impl FnOnce()) -> String {
    let mut child = Command::new(python())
        .arg(client_script())
        .args(["--deadline", "120", "--hotload"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the MCP client");
    let stdout = child.stdout.take().expect("client stdout");
    let mut stdin = child.stdin.take().expect("client stdin");
    let mut out = String::new();
    let mut hotload = Some(hotload);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("client output");
        out.push_str(&line);
        out.push('\n');
        if line.contains("READY_FOR_HOTLOAD")
            && let Some(hotload) = hotload.take()
        {
            hotload();
            stdin.write_all(b"go\n").expect("tell the client");
            stdin.flush().expect("flush");
        }
    }
    let status = child.wait().expect("client exit");
    assert!(status.success(), "the MCP client failed:\n{out}");
    for step in [
        "initialize",
        "list_tools",
        "calculate",
        "calculate_error",
        "cancel",
        "hotload",
    ] {
        assert!(
            out.contains(&format!("OK {step}\n")),
            "no OK {step}:\n{out}"
        );
    }
    out
}

fn copy_guest(name: &str, dir: &Path) {
    let file = format!("{name}.wasm");
    std::fs::copy(netra_tests::guests_dir().join(&file), dir.join(&file)).expect("copy guest");
}

#[test]
fn the_python_sdk_over_streamable_http() {
    // Dev mode, no config file: every tool is exposed. `sleep` (hostile
    // fixture) is the long call to cancel; `text` arrives by hot-load.
    let server = Server::serve_guests(&["calculator", "fixture_hostile"]);
    let token = server.token("py", &[]);
    let url = format!("http://{}/mcp", server.addr);
    let started = Instant::now();
    let out = run_client(&["--http".into(), url, "--token".into(), token], || {
        copy_guest("text", server.plugins_dir())
    });
    assert!(out.contains("new=['slugify', 'text_stats']"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(60), "{out}");
}

#[test]
fn the_python_sdk_over_stdio() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    let data = tempfile::tempdir().expect("data dir");
    copy_guest("calculator", plugins.path());
    copy_guest("fixture_hostile", plugins.path());
    let netra = netra_bin().display().to_string();
    let args = [
        "--stdio".to_string(),
        "--".into(),
        netra,
        "mcp".into(),
        "--plugins".into(),
        plugins.path().display().to_string(),
        "--data-dir".into(),
        data.path().display().to_string(),
    ];
    let out = run_client(&args, || copy_guest("text", plugins.path()));
    assert!(out.contains("new=['slugify', 'text_stats']"), "{out}");
}

#[test]
fn stdout_of_netra_mcp_carries_only_protocol_messages() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    let data = tempfile::tempdir().expect("data dir");
    copy_guest("calculator", plugins.path());
    let mut child = Command::new(netra_bin())
        .arg("mcp")
        .arg("--plugins")
        .arg(plugins.path())
        .arg("--data-dir")
        .arg(data.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netra mcp");
    let mut stdin = child.stdin.take().expect("stdin");
    let requests = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"calculate","arguments":{"expression":"6*7"}}}),
    ];
    for request in requests {
        writeln!(stdin, "{request}").expect("write");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("netra mcp output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("stdout line is not a JSON-RPC message: {line:?}"))
        })
        .collect();
    assert!(lines.iter().all(|m| m["jsonrpc"] == "2.0"), "{stdout}");
    let answer = lines
        .iter()
        .find(|m| m["id"] == 2)
        .expect("an answer to the call");
    assert_eq!(
        answer["result"]["structuredContent"]["result"], 42,
        "{answer}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("netra mcp: serving calculate"), "{stderr}");
}

const NOTES: Plugin = Plugin {
    guest: "notes",
    manifest: include_str!("../../../../plugins/notes/plugin.toml"),
};

const HOSTILE: Plugin = Plugin {
    guest: "fixture-hostile",
    manifest: "name = \"hostile\"\nversion = \"1.0.0\"\nkind = \"tool\"\n",
};

const MCP_CONFIG: &str = r#"
[mcp]
tools = ["calculate", "note_save", "note_list"]
page_size = 2
max_sessions_per_user = 3
"#;

fn post(conn: &mut Conn, headers: &[(&str, &str)], body: &[u8]) -> netra_tests::http::Response {
    let mut all = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    all.extend_from_slice(headers);
    conn.request("POST", "/mcp", &all, body).expect("POST /mcp")
}

#[test]
fn auth_hosts_origins_and_bad_input_get_clear_errors() {
    let server = Server::start_with_env(
        &[CALCULATOR, NOTES, HOSTILE],
        "refuse",
        MCP_CONFIG,
        &[("NETRA_SERVER__MAX_BODY_BYTES", "4096")],
    );
    let token = server.token("ada", &[]);
    let bearer = format!("Bearer {token}");
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}).to_string();

    // No token: 401 pointing at the protected-resource metadata.
    let mut conn = Conn::connect(&server.addr).expect("connect");
    let refused = post(&mut conn, &[], init.as_bytes());
    assert_eq!(refused.status, 401);
    let challenge = refused.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer ")
            && challenge.contains("/.well-known/oauth-protected-resource"),
        "{challenge}"
    );
    let metadata = conn
        .request("GET", "/.well-known/oauth-protected-resource", &[], b"")
        .expect("metadata");
    assert_eq!(metadata.status, 200);
    assert_eq!(
        metadata.json()["resource"],
        format!("http://{}/mcp", server.addr)
    );
    let forged = post(
        &mut conn,
        &[("Authorization", "Bearer nope")],
        init.as_bytes(),
    );
    assert_eq!(forged.status, 401);

    // DNS rebinding: a foreign Host or Origin is refused before anything.
    let foreign_host = netra_tests::http::request(
        &server.addr,
        "POST",
        "/mcp",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        init.as_bytes(),
    )
    .expect("POST with Host: netra");
    assert_eq!(foreign_host.status, 403, "{}", foreign_host.text());
    let evil = post(
        &mut conn,
        &[
            ("Authorization", &bearer),
            ("Origin", "http://evil.example.com"),
        ],
        init.as_bytes(),
    );
    assert_eq!(evil.status, 403);
    let local = post(
        &mut conn,
        &[
            ("Authorization", &bearer),
            ("Origin", "http://localhost:5173"),
        ],
        init.as_bytes(),
    );
    assert_eq!(local.status, 200, "{}", local.text());

    // Bad input: JSON-RPC errors, the session unharmed.
    let mut client = McpClient::connect(&server.addr, "/mcp", &token).expect("session");
    let error_of = |response: netra_tests::http::Response| -> i64 {
        assert_eq!(response.status, 400, "{}", response.text());
        response.json()["error"]["code"].as_i64().unwrap_or(0)
    };
    assert_eq!(error_of(client.post(b"{not json").expect("post")), -32700);
    let batch =
        br#"[{"jsonrpc":"2.0","id":2,"method":"ping"},{"jsonrpc":"2.0","id":3,"method":"ping"}]"#;
    assert_eq!(error_of(client.post(batch).expect("post")), -32600);
    let wrong_type = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"calculate","arguments":"2+2"}}"#;
    assert_eq!(error_of(client.post(wrong_type).expect("post")), -32602);
    let unknown = client
        .request("no/such", json!({}))
        .expect("unknown method");
    assert_eq!(unknown["error"]["code"], -32601, "{unknown}");
    let ungranted = client
        .call_tool("sleep", json!({"ms": 1}))
        .expect("ungranted");
    assert_eq!(ungranted["error"]["code"], -32602, "{ungranted}");
    assert!(
        ungranted["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not granted")),
        "{ungranted}"
    );
    let missing = client
        .call_tool("no_such_tool", json!({}))
        .expect("missing");
    assert_eq!(missing["error"]["code"], -32602, "{missing}");
    // Over `server.max_body_bytes` (4 KiB here): 413.
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    let mut conn = Conn::connect(&server.addr).expect("connect");
    let too_big = post(&mut conn, &[("Authorization", &bearer)], big.as_bytes());
    assert_eq!(too_big.status, 413, "{}", too_big.text());
    let mut client = McpClient::connect(&server.addr, "/mcp", &token).expect("session");
    let ok = client
        .call_tool("calculate", json!({"expression": "2+3*4"}))
        .expect("call");
    assert_eq!(ok["result"]["structuredContent"]["result"], 14, "{ok}");
    assert_eq!(ok["result"]["content"][0]["text"], "14", "{ok}");
    let failed = client
        .call_tool("calculate", json!({"expression": "2+"}))
        .expect("call");
    assert_eq!(failed["result"]["isError"], true, "{failed}");

    // Paging: three exposed tools, two per page, opaque cursors.
    let first = client.request("tools/list", json!({})).expect("page 1");
    let names = |page: &Value| -> Vec<String> {
        page["result"]["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names(&first), ["calculate", "note_list"], "{first}");
    let cursor = first["result"]["nextCursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let second = client
        .request("tools/list", json!({"cursor": cursor}))
        .expect("page 2");
    assert_eq!(names(&second), ["note_save"], "{second}");
    assert!(second["result"].get("nextCursor").is_none(), "{second}");
    let bad_cursor = client
        .request("tools/list", json!({"cursor": "zz"}))
        .expect("bad cursor");
    assert_eq!(bad_cursor["error"]["code"], -32602, "{bad_cursor}");

    // kv is the token's user's: Grace sees none of Ada's notes.
    let saved = client
        .call_tool(
            "note_save",
            json!({"title": "taxes", "text": "due in April"}),
        )
        .expect("save");
    assert_eq!(saved["result"]["isError"], false, "{saved}");
    let grace = server.token("grace", &[]);
    let mut other = McpClient::connect(&server.addr, "/mcp", &grace).expect("grace");
    let hers = other.call_tool("note_list", json!({})).expect("list");
    assert!(!hers.to_string().contains("taxes"), "{hers}");
    let ours = client.call_tool("note_list", json!({})).expect("list");
    assert!(ours.to_string().contains("taxes"), "{ours}");

    // The stateless 2026-07-28 revision: no handshake, `server/discover`,
    // every request carrying its version.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "0"},
    });
    let mut stateless = Conn::connect(&server.addr).expect("connect");
    for (method, name, params) in [
        ("server/discover", None, json!({"_meta": meta})),
        (
            "tools/call",
            Some("calculate"),
            json!({"name": "calculate", "arguments": {"expression": "1+1"}, "_meta": meta}),
        ),
    ] {
        let mut headers = vec![
            ("Authorization", bearer.as_str()),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
        ];
        if let Some(name) = name {
            headers.push(("Mcp-Name", name));
        }
        let body = json!({"jsonrpc": "2.0", "id": 70, "method": method, "params": params});
        let response = post(&mut stateless, &headers, body.to_string().as_bytes());
        assert_eq!(response.status, 200, "{method}: {}", response.text());
        assert!(response.header("mcp-session-id").is_none());
        let answer = messages(&response).pop().unwrap_or_default();
        match method {
            "server/discover" => assert!(
                answer["result"]["supportedVersions"]
                    .as_array()
                    .is_some_and(
                        |v| v.contains(&json!("2025-11-25")) && v.contains(&json!("2026-07-28"))
                    ),
                "{answer}"
            ),
            _ => assert_eq!(
                answer["result"]["structuredContent"]["result"], 2,
                "{answer}"
            ),
        }
    }

    // Sessions are their user's: Grace cannot use Ada's session id.
    let session = client.session().expect("a session id").to_string();
    let mut conn = Conn::connect(&server.addr).expect("connect");
    let hijack = post(
        &mut conn,
        &[
            ("Authorization", &format!("Bearer {grace}")),
            ("Mcp-Session-Id", &session),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        br#"{"jsonrpc":"2.0","id":9,"method":"tools/list"}"#,
    );
    assert_eq!(hijack.status, 404, "{}", hijack.text());
    // Ada holds three sessions (the limit: the browser-origin one and two
    // clients): a fourth is refused.
    let third = McpClient::connect(&server.addr, "/mcp", &token);
    let err = third.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("too_many_sessions"), "{err}");
}

const HELPER: Plugin = Plugin {
    guest: "helper",
    manifest: include_str!("../../../../plugins/helper/plugin.toml"),
};

const CLOCK: Plugin = Plugin {
    guest: "clock",
    manifest: include_str!("../../../../plugins/clock/plugin.toml"),
};

const TEXT: Plugin = Plugin {
    guest: "text",
    manifest: include_str!("../../../../plugins/text/plugin.toml"),
};

const SPIN: Plugin = Plugin {
    guest: "agent-spin",
    manifest: "name = \"agent-spin\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
};

const AGENTS_CONFIG: &str = r#"
[limits]
max_runs_per_user = 1

[plugin.helper]
tools = ["calculate", "now", "slugify", "text_stats", "note_save", "note_list", "note_get", "note_delete"]

[mcp]
tools = []
agents = ["helper", "spin-agent"]
"#;

#[test]
fn an_agent_is_a_tool_whose_call_is_a_recorded_run_that_cancel_ends() {
    let server = Server::start(
        &[CALCULATOR, CLOCK, TEXT, NOTES, HELPER, SPIN],
        "refuse",
        AGENTS_CONFIG,
    );
    let token = server.token("ada", &[]);
    let mut client = McpClient::connect(&server.addr, "/mcp", &token).expect("session");
    let listed = client.request("tools/list", json!({})).expect("list");
    let tools = listed["result"]["tools"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let helper = tools
        .iter()
        .find(|t| t["name"] == "helper")
        .unwrap_or_else(|| panic!("helper is listed: {listed}"));
    assert_eq!(helper["inputSchema"]["required"], json!(["input"]));
    assert!(!listed.to_string().contains("\"calculate\""), "{listed}");

    // Progress while it runs, the answer as the result, the run in the log.
    let body = json!({"jsonrpc":"2.0","id":50,"method":"tools/call","params":{
        "name":"helper","arguments":{"input":"what is 2+3*4"},"_meta":{"progressToken":"p1"}}});
    let response = client
        .post(body.to_string().as_bytes())
        .expect("call helper");
    let all = messages(&response);
    let progress: Vec<&Value> = all
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "no progress: {all:?}");
    assert!(
        progress
            .iter()
            .all(|p| p["params"]["progressToken"] == "p1")
    );
    let result = all.iter().find(|m| m["id"] == 50).expect("the result");
    let structured = &result["result"]["structuredContent"];
    assert!(
        structured["output"]
            .as_str()
            .is_some_and(|o| o.contains("14")),
        "{result}"
    );
    let run_id = structured["run_id"].as_str().expect("a run id").to_string();
    let events = netra_tests::block_on(async {
        let mut ws = Client::connect(&server.url(), &token).await;
        let ack = ws.request("run.subscribe", json!({"run_id": run_id})).await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let mut events = Vec::new();
        loop {
            let frame = ws.recv().await;
            let kind = frame["type"].as_str().unwrap_or_default().to_string();
            events.push(kind.clone());
            if kind == "agent_completed" || kind == "agent_error" {
                return events;
            }
        }
    });
    assert!(events.contains(&"tool_executing".to_string()), "{events:?}");
    assert_eq!(events.last().map(String::as_str), Some("agent_completed"));

    // A run that would spin to its deadline ends when the client cancels:
    // the user's one run slot is free again at once.
    let session = client.session().expect("session").to_string();
    let addr = server.addr.clone();
    let bearer = format!("Bearer {token}");
    let spin = std::thread::spawn(move || {
        let started = Instant::now();
        let answer = client.call_tool("spin-agent", json!({"input": "spin"}));
        (started.elapsed(), answer.map(|a| a.to_string()))
    });
    std::thread::sleep(Duration::from_millis(700));
    let mut conn = Conn::connect(&addr).expect("connect");
    let cancel = post(
        &mut conn,
        &[
            ("Authorization", &bearer),
            ("Mcp-Session-Id", &session),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        br#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3,"reason":"test"}}"#,
    );
    assert_eq!(cancel.status, 202, "{}", cancel.text());
    let (took, _) = spin.join().expect("spin thread");
    assert!(
        took < Duration::from_secs(20),
        "the cancelled run took {took:?}"
    );
    // The run's end (and its slot) may trail the call's by a moment.
    let mut again = McpClient::connect(&server.addr, "/mcp", &token).expect("session");
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        let answer = again
            .call_tool("helper", json!({"input": "what is 1+1"}))
            .expect("call");
        let busy = answer.to_string().contains("too_many_runs");
        if !busy || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

const CONFORMANCE: Plugin = Plugin {
    guest: "conformance",
    manifest: include_str!("../../../../plugins/conformance/plugin.toml"),
};

/// The conformance tools, with a deadline shorter than a slow answer and a
/// wait limit shorter than a late one (tests/mcp/client.py --ask).
const ASKING: &str = r#"
[mcp]
tools = ["*"]
agents = ["echo-agent"]

[plugin.conformance]
limits = { deadline = "1s", ask_wait = "3s" }
"#;

#[test]
fn tools_ask_the_client_s_user_and_model() {
    // Its manifest asks for a 5 s deadline; this one asks for nothing.
    let conformance = Plugin {
        guest: "conformance",
        manifest: "name = \"conformance\"\nversion = \"0.1.0\"\nkind = \"tool\"\n",
    };
    // And a Python and a JavaScript tool that ask (their SDKs' interaction).
    let py = Plugin {
        guest: "py:py-probe",
        manifest: include_str!("../../../../plugins/fixtures/py-probe/plugin.toml"),
    };
    let js = Plugin {
        guest: "js:js-probe",
        manifest: include_str!("../../../../plugins/fixtures/js-probe/plugin.toml"),
    };
    // And an agent that asks its run's user, called as a tool.
    let echo = Plugin {
        guest: "agent-echo",
        manifest: "name = \"agent-echo\"\nversion = \"1.0.0\"\nkind = \"agent\"\n",
    };
    let server = Server::start(&[conformance, py, js, echo], "refuse", ASKING);
    let token = server.token("ada", &[]);
    let url = format!("http://{}/mcp", server.addr);
    let output = Command::new(python())
        .arg(client_script())
        .args([
            "--deadline",
            "120",
            "--ask",
            "--polyglot",
            "--tool-deadline",
            "1",
            "--ask-wait",
            "3",
        ])
        .args(["--http", &url, "--token", &token])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the MCP client");
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the MCP client failed:\n{out}");
    for step in [
        "no_capability",
        "elicit_accept",
        "elicit_decline",
        "elicit_invalid",
        "sample",
        "elicit_slow",
        "elicit_late",
        "polyglot",
        "agent_asks",
    ] {
        assert!(
            out.contains(&format!("OK {step}\n")),
            "no OK {step}:\n{out}"
        );
    }
}

const CAPPED: &str = r#"
[mcp]
tools = ["*"]
max_notifications_per_call = 2
max_sessions = 2
session_idle_timeout = "1s"
"#;

#[test]
fn notifications_and_sessions_stop_at_their_limits() {
    let server = Server::start(&[CONFORMANCE], "refuse", CAPPED);
    let token = server.token("ada", &[]);
    let mut client = McpClient::connect(&server.addr, "/mcp", &token).expect("session");
    let set = client
        .request("logging/setLevel", json!({"level": "debug"}))
        .expect("setLevel");
    assert_eq!(set["result"], json!({}), "{set}");
    // (Log notifications ride the session's GET stream, which rmcp opens
    // to clients that ask; the conformance suite's tools-call-with-logging
    // checks them.)
    // Progress, with its token echoed and never going down.
    let body = json!({"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"test_tool_with_progress","arguments":{},"_meta":{"progressToken":7}}});
    let response = client.post(body.to_string().as_bytes()).expect("call");
    let progress: Vec<f64> = messages(&response)
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .map(|m| {
            assert_eq!(m["params"]["progressToken"], 7);
            m["params"]["progress"].as_f64().unwrap_or(-1.0)
        })
        .collect();
    assert_eq!(progress, [0.0, 50.0], "capped at two");
    // A session without a log level: the same call answered as JSON, with
    // no progress asked (by rmcp: the plugin may ask questions, which ride
    // the call's stream, so it never takes the direct path).
    let mut quiet = McpClient::connect(&server.addr, "/mcp", &token).expect("session");
    let plain = quiet
        .call_tool("test_simple_text", json!({}))
        .expect("call");
    assert_eq!(
        plain["result"]["content"][0]["text"], "This is a simple text response for testing.",
        "{plain}"
    );
    assert!(plain["result"].get("resultType").is_none(), "{plain}");
    // The host holds two sessions (mcp.max_sessions): another user's is refused.
    let grace = server.token("grace", &[]);
    let refused = McpClient::connect(&server.addr, "/mcp", &grace)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("too_many_sessions"), "{refused}");
    // Idle sessions end after mcp.session_idle_timeout (1 s here) and give
    // their places back; a request in one that ended finds no session.
    let gave_up = Instant::now() + Duration::from_secs(15);
    let admitted = loop {
        std::thread::sleep(Duration::from_millis(250));
        if let Ok(admitted) = McpClient::connect(&server.addr, "/mcp", &grace) {
            break admitted;
        }
        assert!(Instant::now() < gave_up, "no session ended while idle");
    };
    assert!(admitted.session().is_some());
    let ping = json!({"jsonrpc": "2.0", "id": 99, "method": "ping"});
    let ended = client.post(ping.to_string().as_bytes()).expect("post");
    assert_eq!(ended.status, 404, "{}", ended.text());
}
