//! Hot-loading through the real `netra serve`: versions uploaded, activated
//! and rolled back over the admin API and dropped into the watched plugins
//! dir, swapped under load without a failed run; broken candidates rejected
//! with their reasons while the active version keeps serving; the admin
//! role required on every route.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use netra_tests::serve::{Plugin, Server};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const HELPER_V2: &str = r#"name = "helper"
version = "0.2.0"
kind = "agent"
description = "The helper, version two."

[needs]
tools = ["calculate", "now", "slugify", "text_stats", "note_save", "note_list", "note_get", "note_delete"]
"#;

/// The helper and every tool it needs, with their real manifests.
fn plugins() -> Vec<Plugin> {
    vec![
        Plugin {
            guest: "calculator",
            manifest: include_str!("../../../../plugins/calculator/plugin.toml"),
        },
        Plugin {
            guest: "clock",
            manifest: include_str!("../../../../plugins/clock/plugin.toml"),
        },
        Plugin {
            guest: "text",
            manifest: include_str!("../../../../plugins/text/plugin.toml"),
        },
        Plugin {
            guest: "notes",
            manifest: include_str!("../../../../plugins/notes/plugin.toml"),
        },
        Plugin {
            guest: "helper",
            manifest: include_str!("../../../../plugins/helper/plugin.toml"),
        },
    ]
}

const CONFIG: &str = r#"
[plugin.helper]
tools = ["calculate", "now", "slugify", "text_stats", "note_save", "note_list", "note_get", "note_delete"]
"#;

fn serve() -> Server {
    Server::start(&plugins(), "refuse", CONFIG)
}

/// A multipart/form-data body with a `wasm` part and, if given, a `manifest` part.
fn multipart(wasm: &[u8], manifest: Option<&str>) -> (String, Vec<u8>) {
    let boundary = "netra-test-boundary-7d1c0f9a";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"wasm\"; filename=\"plugin.wasm\"\r\nContent-Type: application/wasm\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(wasm);
    body.extend_from_slice(b"\r\n");
    if let Some(manifest) = manifest {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"; filename=\"plugin.toml\"\r\n\r\n{manifest}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(
    server: &Server,
    token: &str,
    name: &str,
    wasm: &[u8],
    manifest: Option<&str>,
    activate: bool,
) -> (u16, Value) {
    let (content_type, body) = multipart(wasm, manifest);
    let path = if activate {
        format!("/v1/admin/plugins/{name}/versions")
    } else {
        format!("/v1/admin/plugins/{name}/versions?activate=false")
    };
    server.http_body("POST", &path, Some(token), &content_type, &body)
}

fn activate(server: &Server, token: &str, name: &str, version: &str) -> (u16, Value) {
    let body = json!({ "version": version }).to_string();
    server.http_body(
        "POST",
        &format!("/v1/admin/plugins/{name}/activate"),
        Some(token),
        "application/json",
        body.as_bytes(),
    )
}

/// The active version of `name` as the admin API reports it.
fn active_version(server: &Server, token: &str, name: &str) -> Option<String> {
    let (status, plugin) = server.http("GET", &format!("/v1/admin/plugins/{name}"), Some(token));
    assert_eq!(status, 200, "{plugin}");
    plugin["active"]["version"].as_str().map(String::from)
}

/// The version `agent_started` reports and the one the agent itself says
/// in its first `agent_thinking` (`... (helper 0.2.0)`).
fn versions_of(events: &[Value]) -> (String, String) {
    let started = events
        .iter()
        .find(|e| e["type"] == "agent_started")
        .and_then(|e| e["version"].as_str())
        .unwrap_or_default()
        .to_string();
    let said = events
        .iter()
        .find(|e| e["type"] == "agent_thinking")
        .and_then(|e| e["text"].as_str())
        .and_then(|text| text.rsplit_once("(helper "))
        .map(|(_, rest)| rest.trim_end_matches(')').to_string())
        .unwrap_or_default();
    (started, said)
}

/// Writes `bytes` to `dir/name` the safe way: a temporary name, then a rename.
fn drop_in(dir: &Path, name: &str, bytes: &[u8]) {
    let tmp = dir.join(format!(".{name}.partial"));
    std::fs::write(&tmp, bytes).expect("write the temporary file");
    std::fs::rename(&tmp, dir.join(name)).expect("rename into place");
}

/// Polls until `done`, for at most 20 s.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "waited 20 s for {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Collects the `plugins.changed` frames a WebSocket session receives
/// until `stop` is set; after each it lists the agents, and records the
/// ack's agents beside the notice (`"agents"`).
fn follow_changes(
    server: &Server,
    token: &str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Value>> {
    let url = server.url();
    let token = token.to_string();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        runtime.block_on(async move {
            let mut ws = netra_tests::ws::socket(&url, &token).await;
            // A ping's ack proves the session is up before changes start.
            ws.send(Message::Text(
                json!({"type": "ping", "id": "p"}).to_string().into(),
            ))
            .await
            .expect("ping");
            let mut changes = Vec::new();
            let mut acked = false;
            while !stop.load(Ordering::Relaxed) {
                let Ok(frame) = tokio::time::timeout(Duration::from_millis(100), ws.next()).await
                else {
                    continue;
                };
                let Some(Ok(Message::Text(text))) = frame else {
                    continue;
                };
                let value = netra_tests::ws::decode(&text);
                if value["type"] == "ack" && !acked {
                    acked = true;
                    let _ = ready_tx.send(());
                }
                if value["type"] == "plugins.changed" {
                    changes.push(value);
                    let list = json!({"type": "agents.list", "id": format!("l{}", changes.len())});
                    ws.send(Message::Text(list.to_string().into()))
                        .await
                        .expect("agents.list");
                } else if value["type"] == "ack"
                    && let Some(n) = value["ref"].as_str().and_then(|r| r.strip_prefix('l'))
                    && let Ok(n) = n.parse::<usize>()
                    && let Some(change) = changes.get_mut(n - 1)
                {
                    change["agents"] = value["agents"].clone();
                }
            }
            changes
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the session is up");
    handle
}

#[test]
fn versions_swap_under_load_without_a_failed_run() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    let next = std::fs::read(netra_tests::guest("fixture-helper-next")).expect("helper v2");
    let (status, body) = upload(&server, &admin, "helper", &next, Some(HELPER_V2), false);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["activated"], false);
    assert_eq!(
        active_version(&server, &admin, "helper").as_deref(),
        Some("0.1.0")
    );

    let stop = Arc::new(AtomicBool::new(false));
    let changes = follow_changes(&server, &user, stop.clone());
    let runs: Vec<Vec<Value>> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    let mut runs = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        runs.push(server.run_events(&user, "helper", "what is 2+3*4"));
                    }
                    runs
                })
            })
            .collect();
        for round in 0..10 {
            let version = if round % 2 == 0 { "0.2.0" } else { "0.1.0" };
            let (status, body) = activate(&server, &admin, "helper", version);
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["active"]["version"], version);
            std::thread::sleep(Duration::from_millis(150));
        }
        stop.store(true, Ordering::Relaxed);
        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client thread"))
            .collect()
    });
    let changes = changes.join().expect("follower thread");

    let mut seen = BTreeMap::new();
    for events in &runs {
        let last = events.last().expect("a terminal event");
        assert_eq!(last["type"], "agent_completed", "a run failed: {last}");
        assert!(
            last["output"].as_str().is_some_and(|o| o.contains("14")),
            "{last}"
        );
        let (started, said) = versions_of(events);
        assert_eq!(started, said, "a run changed version part-way: {events:?}");
        *seen.entry(started).or_insert(0) += 1;
    }
    assert!(runs.len() >= 10, "only {} runs completed", runs.len());
    assert!(
        seen.contains_key("0.1.0") && seen.contains_key("0.2.0"),
        "versions seen: {seen:?}"
    );
    let activated: Vec<&Value> = changes
        .iter()
        .filter(|c| c["change"] == "activated" && c["plugin"] == "helper")
        .collect();
    assert_eq!(activated.len(), 10, "plugins.changed frames: {changes:?}");
    assert_eq!(activated[0]["version"], "0.2.0");
    assert!(
        activated[0]["digest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:"))
    );

    let (status, audit) = server.http("GET", "/v1/admin/audit?limit=100", Some(&admin));
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().expect("entries");
    let activations = entries
        .iter()
        .filter(|e| e["action"] == "plugin.activate" && e["subject"] == "helper")
        .count();
    assert_eq!(activations, 10, "{audit:#}");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "plugin.upload" && e["actor"] == "admin:ops")
    );
}

#[test]
fn broken_candidates_are_rejected_with_every_reason_and_the_active_version_serves_on() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    let helper_manifest = include_str!("../../../../plugins/helper/plugin.toml");
    let calculator_manifest = include_str!("../../../../plugins/calculator/plugin.toml");

    let rejected = |name: &str, wasm: &[u8], manifest: &str, expect: &str| {
        let (status, body) = upload(&server, &admin, name, wasm, Some(manifest), true);
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"], "rejected");
        let reasons = body["reasons"].to_string();
        assert!(reasons.contains(expect), "expected {expect:?} in {reasons}");
        // The active version is untouched and serves.
        let last = server.run(&user, "helper", "what is 6*7");
        assert_eq!(last["type"], "agent_completed", "{last}");
        assert!(
            last["output"].as_str().is_some_and(|o| o.contains("42")),
            "{last}"
        );
        reasons
    };
    // Not a component at all.
    rejected(
        "helper",
        b"\0asm\x0d\0\x01\0garbage",
        helper_manifest,
        "failed to load",
    );
    // A valid component of another world (a wasi:cli command).
    let command = std::fs::read(netra_tests::guest("fixture-wrong-world")).expect("fixture");
    rejected("helper", &command, helper_manifest, "failed to load");
    // A tool whose describe traps.
    let trap = std::fs::read(netra_tests::guest("fixture-describe-trap")).expect("fixture");
    rejected("calculator", &trap, calculator_manifest, "describe");
    // A tool component declared as an agent.
    let calculator = std::fs::read(netra_tests::guest("calculator")).expect("calculator");
    rejected(
        "helper",
        &calculator,
        helper_manifest,
        "implements the tool world",
    );
    // A new helper that needs a tool nobody provides.
    let next = std::fs::read(netra_tests::guest("fixture-helper-next")).expect("helper v2");
    let needs_missing = HELPER_V2.replace("\"note_delete\"]", "\"note_delete\", \"translate\"]");
    rejected("helper", &next, &needs_missing, "translate");
    // A calculator without its tool would leave the helper without one.
    let echo = std::fs::read(netra_tests::guest("text")).expect("text");
    let reasons = rejected(
        "calculator",
        &echo,
        calculator_manifest,
        "would leave plugin helper degraded",
    );
    assert!(reasons.contains("calculate"), "{reasons}");

    // A corrupt file dropped into the watched dir is rejected too.
    drop_in(server.plugins_dir(), "helper.wasm", b"not a component");
    wait_for("the dropped-in file's rejection in the audit log", || {
        let (_, audit) = server.http("GET", "/v1/admin/audit", Some(&admin));
        audit["entries"].as_array().is_some_and(|e| {
            e.iter()
                .any(|e| e["action"] == "plugin.reject" && e["detail"]["source"] == "dir")
        })
    });
    let (_, plugin) = server.http("GET", "/v1/admin/plugins/helper", Some(&admin));
    assert_eq!(plugin["active"]["version"], "0.1.0", "{plugin}");
    assert_eq!(plugin["state"], "ready", "{plugin}");
    assert!(
        plugin["last_rejection"]
            .to_string()
            .contains("failed to load"),
        "{plugin}"
    );
    assert_eq!(
        plugin["versions"].as_array().map(Vec::len),
        Some(1),
        "{plugin}"
    );
    let last = server.run(&user, "helper", "what is 6*7");
    assert_eq!(last["type"], "agent_completed", "{last}");

    let (_, audit) = server.http("GET", "/v1/admin/audit?limit=100", Some(&admin));
    let rejections = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "plugin.reject")
        .count();
    assert_eq!(rejections, 7, "{audit:#}");
}

#[test]
fn rollback_drop_in_disable_and_delete_change_what_new_runs_get() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    let next = std::fs::read(netra_tests::guest("fixture-helper-next")).expect("helper v2");

    let (status, body) = upload(&server, &admin, "helper", &next, Some(HELPER_V2), true);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"]["version"], "0.2.0");
    let events = server.run_events(&user, "helper", "what is 1+1");
    assert_eq!(versions_of(&events), ("0.2.0".into(), "0.2.0".into()));

    let (status, body) = server.http("POST", "/v1/admin/plugins/helper/rollback", Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"]["version"], "0.1.0");
    let events = server.run_events(&user, "helper", "what is 1+1");
    assert_eq!(versions_of(&events).0, "0.1.0");

    // A version dropped into the watched dir (write-then-rename), manifest first.
    let stop = Arc::new(AtomicBool::new(false));
    let changes = follow_changes(&server, &user, stop.clone());
    let v3 = HELPER_V2.replace("0.2.0", "0.3.0");
    drop_in(server.plugins_dir(), "helper.toml", v3.as_bytes());
    drop_in(server.plugins_dir(), "helper.wasm", &next);
    wait_for("the dropped-in version to be active", || {
        active_version(&server, &admin, "helper").as_deref() == Some("0.3.0")
    });
    let events = server.run_events(&user, "helper", "what is 1+1");
    assert_eq!(versions_of(&events).0, "0.3.0");
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let changes = changes.join().expect("follower");
    let change = changes
        .iter()
        .find(|c| c["plugin"] == "helper" && c["version"] == "0.3.0")
        .unwrap_or_else(|| panic!("no notice of 0.3.0: {changes:?}"));
    // agents.list sent right after the notice already lists the new version.
    let listed = change["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["name"] == "helper"))
        .unwrap_or_else(|| panic!("no agents.list ack: {change}"));
    assert_eq!(listed["version"], "0.3.0", "{listed}");
    assert_eq!(listed["digest"], change["digest"], "{listed}");
    let (_, plugin) = server.http("GET", "/v1/admin/plugins/helper", Some(&admin));
    let dropped = plugin["versions"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["version"] == "0.3.0"))
        .cloned()
        .expect("the dropped-in version is kept");
    assert_eq!(dropped["source"], "dir");
    assert_eq!(dropped["created_by"], "host");

    // Disable: runs are refused with the reason; enable serves again.
    let (status, body) = server.http("POST", "/v1/admin/plugins/helper/disable", Some(&admin));
    assert_eq!(status, 200, "{body}");
    let refused = server.start_error(&user, "helper", "what is 1+1");
    assert!(
        refused.to_string().contains("disabled by an operator"),
        "{refused}"
    );
    let (status, body) = server.http("POST", "/v1/admin/plugins/helper/enable", Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        server.run(&user, "helper", "what is 1+1")["type"],
        "agent_completed"
    );

    // Delete: never the active version; an inactive one goes.
    let (status, body) = server.http(
        "DELETE",
        "/v1/admin/plugins/helper/versions/0.3.0",
        Some(&admin),
    );
    assert_eq!(status, 409, "{body}");
    let (status, body) = server.http(
        "DELETE",
        "/v1/admin/plugins/helper/versions/0.2.0",
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.http(
        "DELETE",
        "/v1/admin/plugins/helper/versions/0.2.0",
        Some(&admin),
    );
    assert_eq!(status, 404, "{body}");

    // The operator's choice survives a restart: roll back to 0.1.0, restart.
    let (status, body) = server.http("POST", "/v1/admin/plugins/helper/rollback", Some(&admin));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"]["version"], "0.1.0");
    let server = server.restart();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    assert_eq!(
        active_version(&server, &admin, "helper").as_deref(),
        Some("0.1.0")
    );
    assert_eq!(
        versions_of(&server.run_events(&user, "helper", "what is 1+1")).0,
        "0.1.0"
    );
}

#[test]
fn every_admin_route_needs_a_token_with_the_admin_role() {
    let server = serve();
    let user = server.token("alice", &[]);
    let routes = [
        ("GET", "/v1/admin/plugins"),
        ("GET", "/v1/admin/plugins/helper"),
        ("POST", "/v1/admin/plugins/helper/versions"),
        ("POST", "/v1/admin/plugins/helper/activate"),
        ("POST", "/v1/admin/plugins/helper/rollback"),
        ("POST", "/v1/admin/plugins/helper/disable"),
        ("POST", "/v1/admin/plugins/helper/enable"),
        ("DELETE", "/v1/admin/plugins/helper/versions/0.1.0"),
        ("GET", "/v1/admin/audit"),
        ("POST", "/v1/admin/self-check"),
        ("GET", "/v1/admin/no-such-route"),
    ];
    for (method, path) in routes {
        let (status, body) = server.http(method, path, None);
        assert_eq!(status, 401, "{method} {path} without a token: {body}");
        let (status, body) = server.http(method, path, Some("not.a.token"));
        assert_eq!(status, 401, "{method} {path} with a bad token: {body}");
        let (status, body) = server.http(method, path, Some(&user));
        assert_eq!(status, 403, "{method} {path} without the role: {body}");
        assert_eq!(body["error"], "forbidden");
    }
    // Nothing changed.
    let admin = server.token("ops", &["admin"]);
    let (_, plugin) = server.http("GET", "/v1/admin/plugins/helper", Some(&admin));
    assert_eq!(plugin["enabled"], true, "{plugin}");
    let (_, audit) = server.http("GET", "/v1/admin/audit", Some(&admin));
    assert!(
        !audit["entries"].to_string().contains("plugin.disable"),
        "{audit}"
    );
}

/// `netra admin ARGS` against `server`; (exit success, stdout, stderr).
fn netra_admin(server: &Server, token: &str, args: &[&str]) -> (bool, String, String) {
    let out = netra_tests::serve::netra()
        .arg("admin")
        .args([
            "--url",
            &format!("http://{}", server.addr),
            "--token",
            token,
        ])
        .args(args)
        .output()
        .expect("netra admin runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn netra_admin_drives_the_api() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    let files = tempfile::tempdir().expect("tempdir");
    let wasm = files.path().join("helper.wasm");
    let manifest = files.path().join("helper.toml");
    std::fs::copy(netra_tests::guest("fixture-helper-next"), &wasm).expect("copy");
    std::fs::write(&manifest, HELPER_V2).expect("manifest");
    let (wasm, manifest) = (wasm.display().to_string(), manifest.display().to_string());

    let (ok, out, err) = netra_admin(&server, &admin, &["list"]);
    assert!(ok, "{err}");
    let helper_line = out
        .lines()
        .find(|l| l.starts_with("helper"))
        .unwrap_or_else(|| panic!("no helper line in {out}"));
    assert!(
        helper_line.contains("agent") && helper_line.contains("0.1.0"),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("calculator")), "{out}");

    let upload = ["upload", "helper", "--wasm", &wasm, "--manifest", &manifest];
    let (ok, out, err) = netra_admin(&server, &admin, &[&upload[..], &["--no-activate"]].concat());
    assert!(ok, "{err}");
    assert!(
        out.contains("0.2.0") && out.contains("not activated"),
        "{out}"
    );

    let (ok, out, err) = netra_admin(&server, &admin, &["activate", "helper", "0.2.0"]);
    assert!(ok, "{err}");
    assert!(out.contains("activated") && out.contains("0.2.0"), "{out}");
    let events = server.run_events(&user, "helper", "what is 2+2");
    assert_eq!(versions_of(&events).0, "0.2.0");

    let (ok, out, err) = netra_admin(&server, &admin, &["rollback", "helper"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("rolled back") && out.contains("0.1.0"),
        "{out}"
    );

    let (ok, out, err) = netra_admin(&server, &admin, &["--json", "show", "helper"]);
    assert!(ok, "{err}");
    let shown: Value = serde_json::from_str(&out).expect("--json prints JSON");
    assert_eq!(shown["active"]["version"], "0.1.0");
    assert_eq!(shown["versions"].as_array().map(Vec::len), Some(2));

    // A rejected upload: exit 1, every reason on stderr.
    let broken = files.path().join("broken.wasm");
    std::fs::write(&broken, b"not a component").expect("write");
    let broken = broken.display().to_string();
    let (ok, _, err) = netra_admin(
        &server,
        &admin,
        &[
            "upload",
            "helper",
            "--wasm",
            &broken,
            "--manifest",
            &manifest,
        ],
    );
    assert!(!ok, "a rejected upload must fail");
    assert!(
        err.contains("rejected") && err.contains("failed to load"),
        "{err}"
    );

    // Without the role: exit 1 with the reason.
    let (ok, _, err) = netra_admin(&server, &user, &["list"]);
    assert!(!ok);
    assert!(err.contains("admin role"), "{err}");

    let (ok, out, err) = netra_admin(&server, &admin, &["audit", "--limit", "10"]);
    assert!(ok, "{err}");
    for action in [
        "plugin.upload",
        "plugin.activate",
        "plugin.rollback",
        "plugin.reject",
    ] {
        assert!(
            out.contains(action),
            "{action} missing from the audit log: {out}"
        );
    }
}

#[test]
fn a_new_plugin_is_added_and_bad_admin_requests_get_clear_errors() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);

    // A plugin the host has never seen, uploaded: served at once.
    let counter = std::fs::read(netra_tests::guest("fixture-counter")).expect("fixture");
    let manifest = "name = \"counter\"\nversion = \"1.0.0\"\nkind = \"tool\"\n";
    let (status, body) = upload(&server, &admin, "counter", &counter, Some(manifest), true);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"]["kind"], "tool");
    let (_, plugins) = server.http("GET", "/v1/admin/plugins", Some(&admin));
    let names: Vec<&str> = plugins["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"counter") && names.contains(&"helper"),
        "{names:?}"
    );

    // A manifest naming another plugin.
    let (status, body) = upload(
        &server,
        &admin,
        "counter",
        &counter,
        Some(&manifest.replace("\"counter\"", "\"other\"")),
        true,
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        body["reasons"]
            .to_string()
            .contains("names it \\\"other\\\""),
        "{body}"
    );
    // Not multipart.
    let (status, body) = server.http_body(
        "POST",
        "/v1/admin/plugins/counter/versions",
        Some(&admin),
        "application/wasm",
        &counter,
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("multipart")),
        "{body}"
    );
    // A multipart body without the component.
    let (content_type, _) = multipart(b"", None);
    let (status, body) = server.http_body(
        "POST",
        "/v1/admin/plugins/counter/versions",
        Some(&admin),
        &content_type,
        b"--netra-test-boundary-7d1c0f9a--\r\n",
    );
    assert_eq!(status, 400, "{body}");
    // A plugin name that is not a file name.
    let (status, body) = upload(&server, &admin, "..", &counter, None, true);
    assert!(status == 400 || status == 404, "{status} {body}");
    // Activate: not JSON, an unknown version, an unknown plugin.
    let (status, body) = server.http_body(
        "POST",
        "/v1/admin/plugins/helper/activate",
        Some(&admin),
        "application/json",
        b"{not json",
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = activate(&server, &admin, "helper", "9.9.9");
    assert_eq!(status, 404, "{body}");
    let (status, body) = activate(&server, &admin, "nobody", "1.0.0");
    assert_eq!(status, 404, "{body}");
    // Rollback with nothing to roll back to.
    let (status, body) = server.http("POST", "/v1/admin/plugins/helper/rollback", Some(&admin));
    assert_eq!(status, 409, "{body}");
    // None of it disturbed the runs.
    let last = server.run(&user, "helper", "what is 6*7");
    assert_eq!(last["type"], "agent_completed", "{last}");
}

/// An agent name two plugins export is a conflict, refused like a tool name
/// two plugins provide: an upload or a dropped-in file exporting an agent
/// another plugin serves is rejected with a reason naming both plugins, and
/// at start the plugin loaded later is refused with that reason while the
/// other serves the name.
#[test]
fn an_agent_name_two_plugins_export_is_a_conflict() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    let helper = std::fs::read(netra_tests::guest("helper")).expect("helper");
    let conflict = "agent \\\"helper\\\" is already provided by plugin helper";

    // An upload under another name (that sorts first, so it would load first).
    let copy = "name = \"a-helper\"\nversion = \"9.9.9\"\nkind = \"agent\"\n";
    let (status, body) = upload(&server, &admin, "a-helper", &helper, Some(copy), true);
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "rejected", "{body}");
    assert!(body["reasons"].to_string().contains(conflict), "{body}");
    // Not even kept inactive.
    let (status, body) = upload(&server, &admin, "a-helper", &helper, Some(copy), false);
    assert_eq!(status, 422, "{body}");

    // A copy dropped into the watched dir (sorts after helper).
    let copy = "name = \"helper-copy\"\nversion = \"9.9.9\"\nkind = \"agent\"\n";
    drop_in(server.plugins_dir(), "helper-copy.toml", copy.as_bytes());
    drop_in(server.plugins_dir(), "helper-copy.wasm", &helper);
    wait_for("the dropped-in copy's rejection", || {
        let (_, plugin) = server.http("GET", "/v1/admin/plugins/helper-copy", Some(&admin));
        plugin["last_rejection"].to_string().contains(conflict)
    });
    let (_, audit) = server.http("GET", "/v1/admin/audit?limit=100", Some(&admin));
    let rejected = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "plugin.reject")
        .map(|e| (e["subject"].as_str().unwrap_or_default(), e.to_string()))
        .collect::<Vec<_>>();
    assert!(
        rejected
            .iter()
            .any(|(subject, entry)| *subject == "a-helper" && entry.contains(conflict)),
        "{audit:#}"
    );
    assert!(
        rejected
            .iter()
            .any(|(subject, entry)| *subject == "helper-copy" && entry.contains(conflict)),
        "{audit:#}"
    );
    // The helper plugin still serves the name.
    let events = server.run_events(&user, "helper", "what is 1+1");
    assert_eq!(versions_of(&events).0, "0.1.0");

    // At start, with both files in the dir: helper (the plugin named like
    // the agent) keeps the name and serves it; the copy is refused with the
    // reason naming helper.
    let server = server.restart();
    let admin = server.token("ops", &["admin"]);
    let user = server.token("alice", &[]);
    let (_, readyz) = server.wait_readyz("readyz", |_, _| true);
    let node = |id: &str| {
        readyz["nodes"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["id"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("no node {id} in {readyz:#}"))
    };
    assert_eq!(node("plugin.helper")["state"], "ready", "{readyz:#}");
    let copy = node("plugin.helper-copy");
    assert_eq!(copy["state"], "refused", "{copy}");
    assert!(copy["reasons"].to_string().contains(conflict), "{copy}");
    let (_, plugin) = server.http("GET", "/v1/admin/plugins/helper-copy", Some(&admin));
    assert_eq!(plugin["state"], "refused", "{plugin}");
    let events = server.run_events(&user, "helper", "what is 1+1");
    assert_eq!(versions_of(&events).0, "0.1.0");
}

/// Kept files are named by content, so two plugins' versions can share
/// them; deleting one plugin's version leaves the files while another
/// plugin's version refers to them (it still serves after a restart), and
/// removes them once nothing does.
#[test]
fn deleting_a_version_keeps_files_another_plugin_still_uses() {
    let server = serve();
    let admin = server.token("ops", &["admin"]);
    let counter = std::fs::read(netra_tests::guest("fixture-counter")).expect("counter");
    let trap = std::fs::read(netra_tests::guest("fixture-trap")).expect("trap");
    let spin = std::fs::read(netra_tests::guest("fixture-spin")).expect("spin");
    let uploaded = |name: &str, wasm: &[u8]| -> String {
        // No manifest: the same component is the same version in any plugin.
        let (status, body) = upload(&server, &admin, name, wasm, None, true);
        assert_eq!(status, 201, "{name}: {body}");
        body["version"]["digest"]
            .as_str()
            .expect("a digest")
            .to_string()
    };
    // spare: the counter, then the trap tool (the counter version inactive).
    let shared = uploaded("spare", &counter);
    uploaded("spare", &trap);
    // twin: the counter, the same bytes as spare's first version.
    assert_eq!(uploaded("twin", &counter), shared);
    let hex = |digest: &str| digest.trim_start_matches("sha256:").to_string();
    // The data dir stays the same across the restart below.
    let versions_dir = server.state_dir().join("plugins");
    let kept = |ext: &str| versions_dir.join(format!("{}.{ext}", hex(&shared)));
    assert!(kept("wasm").exists());

    let (status, body) = server.http(
        "DELETE",
        &format!("/v1/admin/plugins/spare/versions/{}", hex(&shared)),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], shared.as_str(), "{body}");
    assert!(kept("wasm").exists(), "twin's active version lost its file");
    let (_, audit) = server.http("GET", "/v1/admin/audit", Some(&admin));
    let deleted = audit["entries"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "plugin.delete"))
        .cloned()
        .unwrap_or_else(|| panic!("no plugin.delete in {audit:#}"));
    assert_eq!(
        deleted["detail"]["files_kept_for"],
        json!(["twin"]),
        "{deleted}"
    );

    // twin still has its version, and serves it after a restart.
    let server = server.restart();
    let admin = server.token("ops", &["admin"]);
    let (status, plugin) = server.http("GET", "/v1/admin/plugins/twin", Some(&admin));
    assert_eq!(status, 200, "{plugin}");
    assert_eq!(plugin["state"], "ready", "{plugin}");
    assert_eq!(plugin["active"]["digest"], shared.as_str(), "{plugin}");

    // Once no version refers to them, the files go.
    let (status, body) = upload(&server, &admin, "twin", &spin, None, true);
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.http(
        "DELETE",
        &format!("/v1/admin/plugins/twin/versions/{}", hex(&shared)),
        Some(&admin),
    );
    assert_eq!(status, 200, "{body}");
    assert!(!kept("wasm").exists(), "an unused kept file stays");
}
