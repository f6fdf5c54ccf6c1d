//! The dependency graph, health checks, breakers and readiness of the real
//! `netra serve`, configured by a netra.toml, driven over HTTP and WebSocket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// `netra serve`, killed on drop.
struct Server {
    child: Child,
    addr: String,
    data: tempfile::TempDir,
    _plugins: tempfile::TempDir,
    /// What `netra config check` said about the configuration served.
    check: Option<std::process::Output>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plugin to put in the plugins dir: the guest file and its manifest.
struct Plugin {
    guest: &'static str,
    manifest: &'static str,
}

const CALCULATOR: Plugin = Plugin {
    guest: "calculator",
    manifest: r#"name = "calculator"
version = "1.0.0"
kind = "tool"
"#,
};

impl Server {
    /// Serves `plugins` with `config` (a netra.toml without the server and
    /// plugins sections, which are added here, with `plugins.ungranted`).
    fn start(plugins: &[Plugin], ungranted: &str, config: &str) -> Self {
        let data = tempfile::tempdir().expect("data dir");
        let dir = tempfile::tempdir().expect("plugins dir");
        for plugin in plugins {
            // Fixtures are built as fixture_agent_*.wasm; served by their short name.
            let built = if plugin.guest.starts_with("agent-") {
                netra_tests::guest(&format!("fixture-{}", plugin.guest))
            } else {
                netra_tests::guest(plugin.guest)
            };
            std::fs::copy(built, dir.path().join(format!("{}.wasm", plugin.guest)))
                .expect("copy guest");
            std::fs::write(
                dir.path().join(format!("{}.toml", plugin.guest)),
                plugin.manifest,
            )
            .expect("write manifest");
        }
        let file = data.path().join("netra.toml");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[plugins]\ndir = {:?}\nungranted = {ungranted:?}\n\n{config}",
            data.path().join("state").display().to_string(),
            dir.path().display().to_string(),
        );
        std::fs::write(&file, text).expect("write netra.toml");
        // `netra config check` sees what serve will do, before anything loads.
        let check = Command::new(env!("CARGO_BIN_EXE_netra"))
            .args(["config", "check", "--config"])
            .arg(&file)
            .output()
            .expect("netra config check");
        let mut args = vec!["serve".to_string(), "--config".to_string()];
        args.push(file.display().to_string());
        let mut server = Self::spawn(&args, data, dir);
        server.check = Some(check);
        server
    }

    /// `netra serve ARGS`; the data dir's `state` is the server's data dir.
    fn spawn(args: &[String], data: tempfile::TempDir, dir: tempfile::TempDir) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_netra"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("netra serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Self {
            child,
            addr: String::new(),
            data,
            _plugins: dir,
            check: None,
        };
        server.addr = listening_addr(stdout);
        server
    }

    fn state_dir(&self) -> std::path::PathBuf {
        self.data.path().join("state")
    }

    /// A dev-mode token for `user`, with `roles`.
    fn token(&self, user: &str, roles: &[&str]) -> String {
        let mut command = Command::new(env!("CARGO_BIN_EXE_netra"));
        command.args(["token", "--sub", user, "--data-dir"]);
        command.arg(self.state_dir());
        for role in roles {
            command.args(["--role", role]);
        }
        let out = command.output().expect("netra token");
        assert!(out.status.success(), "netra token failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a token")
            .to_string()
    }

    /// An HTTP/1.1 request; returns (status, JSON body).
    fn http(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: netra\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .expect("write request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Polls `/readyz` until `done` holds for (status, body), for at most 30 s.
    fn wait_readyz(&self, what: &str, done: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
        let start = Instant::now();
        loop {
            let (status, body) = self.http("GET", "/readyz", None);
            if done(status, &body) {
                return (status, body);
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited 30 s for {what}; last /readyz: {status} {body:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `agent` on `input` over a real WebSocket and returns its
    /// terminal event.
    fn run(&self, token: &str, agent: &str, input: &str) -> Value {
        let url = format!("ws://{}/v1/ws", self.addr);
        let token = token.to_string();
        let (agent, input) = (agent.to_string(), input.to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        runtime.block_on(async move {
            let mut request = url.into_client_request().expect("request");
            request.headers_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            let (mut ws, _) = tokio_tungstenite::connect_async(request)
                .await
                .expect("connect");
            let start = json!({"type": "run.start", "id": "1", "agent": agent, "input": input});
            ws.send(Message::Text(start.to_string().into()))
                .await
                .expect("send");
            loop {
                let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
                    .await
                    .expect("a frame in time")
                    .expect("open socket")
                    .expect("valid frame");
                let Message::Text(text) = frame else { continue };
                let value: Value = serde_json::from_str(&text).expect("JSON");
                assert_ne!(value["type"], "error", "run.start refused: {value}");
                if value["type"] == "agent_completed" || value["type"] == "agent_error" {
                    return value;
                }
            }
        })
    }
}

fn listening_addr(stdout: ChildStdout) -> String {
    let mut lines = BufReader::new(stdout);
    let mut seen = Vec::new();
    let addr = loop {
        let mut line = String::new();
        let read = lines.read_line(&mut line).expect("read serve's stdout");
        assert!(read > 0, "netra serve exited; it printed {seen:?}");
        if let Some(rest) = line.strip_prefix("netra listening on http://") {
            break rest
                .split_whitespace()
                .next()
                .expect("an address")
                .to_string();
        }
        seen.push(line);
    };
    std::thread::spawn(move || std::io::copy(&mut lines, &mut std::io::sink()));
    addr
}

/// A port nothing listens on (taken from the OS, then released).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// An OpenAI-compatible endpoint's model list on `port`, answering until
/// dropped; counts the requests it served.
struct FakeLlm {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
}

impl FakeLlm {
    fn start(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the LLM port");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (stopping, counting) = (stop.clone(), served.clone());
        std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut head = [0u8; 1024];
                        let n = stream.read(&mut head).unwrap_or(0);
                        let request = String::from_utf8_lossy(&head[..n]).to_string();
                        let body = r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#;
                        let status = if request.starts_with("GET /v1/models ") {
                            "200 OK"
                        } else {
                            "404 Not Found"
                        };
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        counting.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { stop, served }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

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
    let llm_server = FakeLlm::start(llm_port);
    let (status, readyz) = server.wait_readyz("ready after the endpoint returns", |status, _| {
        status == 200
    });
    assert_eq!(readyz["ready"], true);
    assert_eq!(readyz["golden_path"]["state"], "passed", "{readyz:#}");
    assert_eq!(readyz["golden_path"]["tools"], json!(["calculate"]));
    assert_eq!(endpoint(&readyz, "llm.local")["state"], "closed");
    assert_eq!(node(&readyz, "plugin.helper")["state"], "ready");
    assert_eq!(status, 200);
    assert!(llm_server.served.load(Ordering::Relaxed) >= 1);
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
        if !manifest.exists() {
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
        std::fs::copy(
            netra_tests::guest(&name),
            dir.path().join(format!("{name}.wasm")),
        )
        .expect("copy guest");
        names.push(name);
    }
    names.sort();
    assert_eq!(names, ["calculator", "clock", "helper", "notes", "text"]);
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
}
