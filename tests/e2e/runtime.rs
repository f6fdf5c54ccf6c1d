//! The runtime with real guest components: fresh instances, limits, typed
//! failures, the sandbox and the compile cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use netra_runtime::{
    CacheOutcome, DirGrant, InvokeError, Limits, LoadError, MemoryInit, MemoryKv, PluginSettings,
    Runtime, RuntimeConfig, Sandbox, ToolError,
};
use netra_tests::guest_bytes;
use netra_tests::stub::TinyServer;
use serde_json::{Value, json};

use netra_tests::inproc::{assert_calculator_still_works, calculate, ctx, load, runtime};

#[tokio::test]
async fn calculator_evaluates_with_precedence_and_rejects_bad_input() {
    let rt = runtime();
    let calc = load(&rt, "calculator", Limits::default()).await;
    assert_eq!(calc.tools().len(), 1);
    assert_eq!(calc.tools()[0].name, "calculate");
    let schema: serde_json::Value = serde_json::from_str(&calc.tools()[0].input_schema).unwrap();
    assert!(schema["properties"]["expression"].is_object(), "{schema}");

    assert_eq!(calculate(&calc, "2+3*4").await.unwrap(), "14");
    assert_eq!(calculate(&calc, "(2+3)*4").await.unwrap(), "20");
    assert_eq!(calculate(&calc, "-2^2").await.unwrap(), "-4");
    assert_eq!(calculate(&calc, "7/2").await.unwrap(), "3.5");
    match calculate(&calc, "2+").await {
        Err(InvokeError::Tool(ToolError::InvalidArguments(msg))) => {
            assert!(msg.contains("position 2"), "{msg}")
        }
        other => panic!("expected invalid-arguments, got {other:?}"),
    }
    match calc
        .call(ctx("alice"), "calculate", r#"{"expr":"1"}"#)
        .await
    {
        Err(InvokeError::Tool(ToolError::InvalidArguments(msg))) => {
            assert!(msg.contains("expression"), "{msg}")
        }
        other => panic!("expected invalid-arguments, got {other:?}"),
    }
    match calc.call(ctx("alice"), "no_such_tool", "{}").await {
        Err(InvokeError::Tool(ToolError::NotFound(_))) => {}
        other => panic!("expected not-found, got {other:?}"),
    }
}

#[tokio::test]
async fn every_call_gets_a_fresh_instance() {
    let rt = runtime();
    let counter = load(&rt, "fixture-counter", Limits::default()).await;
    for i in 0..1000 {
        let result = counter.call(ctx("alice"), "count", "{}").await.unwrap();
        assert_eq!(result, "1", "call {i} saw state left by an earlier call");
    }
}

/// A runtime that keeps two instances of each `Copy` plugin made ahead.
fn preparing_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 64,
        prepared_instances: 2,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// Loads a Rust guest as a `Copy` plugin (only those are prepared ahead).
async fn load_copy(runtime: &Runtime, crate_name: &str, kv: bool) -> netra_runtime::ToolPlugin {
    let mut settings = PluginSettings::new(crate_name);
    settings.memory_init = Some(MemoryInit::Copy);
    if kv {
        settings.kv = Some(Arc::new(MemoryKv::default()));
    }
    runtime
        .load_tool(guest_bytes(crate_name), settings)
        .await
        .unwrap_or_else(|e| panic!("loading {crate_name}: {e}"))
}

#[tokio::test]
async fn prepared_instances_are_fresh_and_used_once() {
    let rt = preparing_runtime();
    let counter = load_copy(&rt, "fixture-counter", false).await;
    for i in 0..20 {
        counter.prepare().await;
        assert_eq!(counter.prepared_count(), 2, "round {i}: not refilled");
        let result = counter.call(ctx("alice"), "count", "{}").await.unwrap();
        assert_eq!(
            result, "1",
            "round {i}: a prepared instance was used before"
        );
        // The request took one; the refill starts when its instance is dropped.
        assert!(counter.prepared_count() <= 2);
    }
}

#[tokio::test]
async fn a_prepared_instance_takes_the_user_of_its_request() {
    // Prepared instances are made for nobody; kv must still be scoped to the
    // user of the request that takes one.
    let rt = preparing_runtime();
    let notes = load_copy(&rt, "notes", true).await;
    notes.prepare().await;
    assert_eq!(notes.prepared_count(), 2);
    let saved = notes
        .call(
            ctx("alice"),
            "note_save",
            r#"{"title":"plan","text":"alice's secret"}"#,
        )
        .await
        .unwrap();
    assert!(saved.contains("plan"), "{saved}");
    notes.prepare().await;
    let bob: Value =
        serde_json::from_str(&notes.call(ctx("bob"), "note_list", "{}").await.unwrap()).unwrap();
    notes.prepare().await;
    let alice: Value =
        serde_json::from_str(&notes.call(ctx("alice"), "note_list", "{}").await.unwrap()).unwrap();
    assert_eq!(bob.to_string().matches("plan").count(), 0, "bob sees {bob}");
    assert_eq!(
        alice.to_string().matches("plan").count(),
        1,
        "alice sees {alice}"
    );
}

#[tokio::test]
async fn preinitialized_snapshots_are_cached_and_answer_like_the_original() {
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: 8,
        preinitialize: true,
        ..RuntimeConfig::default()
    };
    let cold = Runtime::new(config()).unwrap();
    let plugin = load(&cold, "calculator", Limits::default()).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Compiled);
    assert_calculator_still_works(&plugin).await;
    let names: Vec<String> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("-init1-")),
        "no snapshot cached: {names:?}"
    );
    drop((plugin, cold));

    let warm = Runtime::new(config()).unwrap();
    let plugin = load(&warm, "calculator", Limits::default()).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(warm.compiled_count(), 0);
    assert_calculator_still_works(&plugin).await;
    // The counter's snapshot was taken after describe and a not-found invoke,
    // neither of which counts: every call still sees a fresh counter.
    let counter = load(&warm, "fixture-counter", Limits::default()).await;
    for _ in 0..5 {
        assert_eq!(
            counter.call(ctx("alice"), "count", "{}").await.unwrap(),
            "1"
        );
    }
}

#[tokio::test]
async fn calls_on_one_instance_share_its_state() {
    // The converse of the test above, so it cannot pass vacuously: within one
    // instance the counter does advance.
    let rt = runtime();
    let counter = load(&rt, "fixture-counter", Limits::default()).await;
    let mut instance = counter.instantiate(ctx("alice")).await.unwrap();
    for expected in 1..=3 {
        assert_eq!(
            instance.invoke("count", "{}").await.unwrap(),
            expected.to_string()
        );
    }
}

#[tokio::test]
async fn a_memory_bomb_stops_at_the_limit() {
    let rt = runtime();
    let limit = 32 << 20;
    let bomb = load(
        &rt,
        "fixture-membomb",
        Limits {
            memory_bytes: limit,
            ..Limits::default()
        },
    )
    .await;
    let calc = load(&rt, "calculator", Limits::default()).await;
    let err = bomb.call(ctx("alice"), "allocate", "{}").await.unwrap_err();
    assert!(
        matches!(err, InvokeError::OutOfMemory { limit: l } if l == limit),
        "{err:?}"
    );
    assert_eq!(err.code(), "out_of_memory");
    assert_calculator_still_works(&calc).await;
}

#[tokio::test]
async fn a_trap_carries_the_guest_message() {
    let rt = runtime();
    let trap = load(&rt, "fixture-trap", Limits::default()).await;
    let calc = load(&rt, "calculator", Limits::default()).await;
    let err = trap
        .call(ctx("alice"), "trap", r#"{"message":"kaboom"}"#)
        .await
        .unwrap_err();
    match &err {
        InvokeError::Trap { message, .. } => {
            assert!(message.contains("deliberate trap: kaboom"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(err.to_string().contains("kaboom"), "{err}");
    assert_calculator_still_works(&calc).await;
}

#[tokio::test]
async fn a_trapped_instance_cannot_be_reused() {
    let rt = runtime();
    let trap = load(&rt, "fixture-trap", Limits::default()).await;
    let mut instance = trap.instantiate(ctx("alice")).await.unwrap();
    assert!(matches!(
        instance.invoke("trap", "{}").await,
        Err(InvokeError::Trap { .. })
    ));
    assert!(matches!(
        instance.invoke("trap", "{}").await,
        Err(InvokeError::Poisoned)
    ));
}

#[tokio::test]
async fn unbounded_recursion_is_a_stack_overflow() {
    let rt = runtime();
    let recurse = load(&rt, "fixture-recurse", Limits::default()).await;
    let calc = load(&rt, "calculator", Limits::default()).await;
    let err = recurse
        .call(ctx("alice"), "recurse", "{}")
        .await
        .unwrap_err();
    assert!(matches!(err, InvokeError::StackOverflow), "{err:?}");
    assert_calculator_still_works(&calc).await;
}

#[tokio::test]
async fn fuel_limits_stop_a_spinning_guest() {
    let rt = Runtime::new(RuntimeConfig {
        fuel: true,
        max_instances: 8,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let limits = Limits {
        fuel: Some(5_000_000),
        deadline: Duration::from_secs(30),
        ..Limits::default()
    };
    let spin = load(&rt, "fixture-spin", limits.clone()).await;
    let err = spin.call(ctx("alice"), "spin", "{}").await.unwrap_err();
    assert!(matches!(err, InvokeError::OutOfFuel), "{err:?}");
    let calc = load(&rt, "calculator", limits).await;
    assert_calculator_still_works(&calc).await;
}

#[tokio::test]
async fn the_sandbox_denies_environment_files_and_network() {
    // Even with variables in the host's own environment, none reach the guest.
    let rt = runtime();
    let probe = load(&rt, "fixture-sandbox", Limits::default()).await;
    let report = probe.call(ctx("alice"), "probe", "{}").await.unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["env_vars"], 0, "{report}");
    assert_eq!(report["read_root_dir"], false, "{report}");
    assert_eq!(report["read_cwd"], false, "{report}");
    assert_eq!(report["read_etc_passwd"], false, "{report}");
    assert_eq!(report["tcp_connect"], false, "{report}");
}

#[tokio::test]
async fn granted_directories_and_variables_are_all_a_plugin_sees() {
    let host = tempfile::tempdir().unwrap();
    let (ro, rw, secret) = (
        host.path().join("ro"),
        host.path().join("rw"),
        host.path().join("secret"),
    );
    for dir in [&ro, &rw, &secret] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(ro.join("in.txt"), "read me").unwrap();
    std::fs::write(secret.join("key.txt"), "not for plugins").unwrap();

    let rt = runtime();
    let mut settings = PluginSettings::new("fixture-sandbox");
    settings.sandbox = Sandbox {
        env: vec![("GRANTED".into(), "yes".into())],
        dirs: vec![
            DirGrant {
                host: ro.clone(),
                guest: "/data".into(),
                writable: false,
            },
            DirGrant {
                host: rw.clone(),
                guest: "/out".into(),
                writable: true,
            },
        ],
        network: Vec::new(),
    };
    let plugin = rt
        .load_tool(guest_bytes("fixture-sandbox"), settings)
        .await
        .unwrap();
    let call = |tool: &'static str, args: serde_json::Value| {
        let plugin = plugin.clone();
        async move { plugin.call(ctx("alice"), tool, &args.to_string()).await }
    };
    let failed = |result: Result<String, InvokeError>| match result {
        Err(InvokeError::Tool(ToolError::Failed(message))) => message,
        other => panic!("expected a tool error, got {other:?}"),
    };

    // The granted counterparts work.
    assert_eq!(
        call("read_file", serde_json::json!({"path": "/data/in.txt"}))
            .await
            .unwrap(),
        "\"read me\""
    );
    assert_eq!(
        call(
            "write_file",
            serde_json::json!({"path": "/out/new.txt", "text": "hi"})
        )
        .await
        .unwrap(),
        "true"
    );
    assert_eq!(std::fs::read_to_string(rw.join("new.txt")).unwrap(), "hi");
    assert_eq!(
        call("get_env", serde_json::json!({"name": "GRANTED"}))
            .await
            .unwrap(),
        "\"yes\""
    );

    // Writing to the read-only grant is refused, and nothing is written.
    let message = failed(
        call(
            "write_file",
            serde_json::json!({"path": "/data/in.txt", "text": "x"}),
        )
        .await,
    );
    assert!(message.contains("cannot write /data/in.txt"), "{message}");
    assert_eq!(
        std::fs::read_to_string(ro.join("in.txt")).unwrap(),
        "read me"
    );
    let message = failed(
        call(
            "write_file",
            serde_json::json!({"path": "/data/new.txt", "text": "x"}),
        )
        .await,
    );
    assert!(message.contains("cannot write"), "{message}");
    assert!(!ro.join("new.txt").exists());

    // Outside the grants nothing is reachable: not the host path of another
    // directory, not a way out of a granted one.
    let outside = secret.join("key.txt").display().to_string();
    for path in [outside.as_str(), "/data/../secret/key.txt", "/etc/passwd"] {
        let message = failed(call("read_file", serde_json::json!({"path": path})).await);
        assert!(message.contains("cannot read"), "{path}: {message}");
    }

    // A variable the grant does not list is not there, even if the host has it.
    let message = failed(call("get_env", serde_json::json!({"name": "PATH"})).await);
    assert!(message.contains("cannot read $PATH"), "{message}");

    // Its imports are compared with its grant: with directories granted only
    // the sockets and the HTTP (no network hosts) it imports are flagged; with
    // nothing granted, the filesystem too.
    let gaps = plugin.capability_gaps();
    assert_eq!(gaps.len(), 2, "{gaps:?}");
    assert!(gaps.iter().any(|g| g.contains("wasi:sockets")), "{gaps:?}");
    assert!(
        gaps.iter()
            .any(|g| g.contains("wasi:http") && g.contains("no network hosts")),
        "{gaps:?}"
    );
    let bare = load(&rt, "fixture-sandbox", Limits::default()).await;
    assert!(
        bare.capability_gaps()
            .iter()
            .any(|g| g.contains("wasi:filesystem") && g.contains("no directories")),
        "{:?}",
        bare.capability_gaps()
    );
    let calculator = load(&rt, "calculator", Limits::default()).await;
    assert!(calculator.capability_gaps().is_empty());

    // A granted directory that does not exist refuses the plugin at load.
    let mut settings = PluginSettings::new("fixture-sandbox");
    settings.sandbox.dirs.push(DirGrant {
        host: host.path().join("missing"),
        guest: "/gone".into(),
        writable: false,
    });
    match rt.load_tool(guest_bytes("fixture-sandbox"), settings).await {
        Err(LoadError::Io(message)) => assert!(message.contains("missing"), "{message}"),
        other => panic!("expected a load error, got {:?}", other.map(|_| ())),
    }
}

/// Loads the sandbox fixture with `network` granted and a 5 s deadline.
async fn load_with_network(rt: &Runtime, network: Vec<String>) -> netra_runtime::ToolPlugin {
    let mut settings = PluginSettings::new("fixture-sandbox");
    settings.limits = Some(Limits {
        deadline: Duration::from_secs(5),
        ..Limits::default()
    });
    settings.sandbox.network = network;
    rt.load_tool(guest_bytes("fixture-sandbox"), settings)
        .await
        .unwrap()
}

async fn http_get(plugin: &netra_runtime::ToolPlugin, url: &str) -> Result<Value, InvokeError> {
    let args = json!({ "url": url }).to_string();
    let call = plugin.call(ctx("alice"), "http_get", &args);
    let json = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("http_get returns within its deadline")?;
    Ok(serde_json::from_str(&json).unwrap())
}

/// The tool error of a denied request.
fn denied(result: Result<Value, InvokeError>) -> String {
    match result {
        Err(InvokeError::Tool(ToolError::Failed(message))) => {
            assert!(message.contains("HttpRequestDenied"), "{message}");
            message
        }
        other => panic!("expected a denied request, got {other:?}"),
    }
}

#[tokio::test]
async fn http_reaches_only_the_hosts_and_ports_the_network_grant_lists() {
    let a = TinyServer::start("hello from A");
    let b = TinyServer::start("hello from B");
    let rt = runtime();
    let plugin = load_with_network(&rt, vec![format!("127.0.0.1:{}", a.port)]).await;
    assert!(
        plugin
            .capability_gaps()
            .iter()
            .all(|g| !g.contains("wasi:http")),
        "{:?}",
        plugin.capability_gaps()
    );

    let response = http_get(&plugin, &format!("http://127.0.0.1:{}/hello", a.port))
        .await
        .unwrap();
    assert_eq!(response, json!({"status": 200, "body": "hello from A"}));
    assert_eq!(a.accepted(), 1);

    // The same address on another port, the same server under another name,
    // the same address on the scheme's default port: none is on the list.
    for url in [
        format!("http://127.0.0.1:{}/", b.port),
        format!("http://localhost:{}/", a.port),
        "http://127.0.0.1/".to_string(),
        format!("http://user@127.0.0.1:{}/", a.port),
    ] {
        let message = denied(http_get(&plugin, &url).await);
        assert!(message.contains(&url), "{message}");
    }
    assert_eq!(b.accepted(), 0, "a denied request must not connect");
    assert_eq!(a.accepted(), 1, "a denied request must not connect");
}

#[tokio::test]
async fn http_with_an_empty_network_grant_is_denied() {
    let a = TinyServer::start("hello from A");
    let rt = runtime();
    let plugin = load_with_network(&rt, Vec::new()).await;
    assert!(
        plugin
            .capability_gaps()
            .iter()
            .any(|g| g.contains("wasi:http") && g.contains("no network hosts")),
        "{:?}",
        plugin.capability_gaps()
    );
    denied(http_get(&plugin, &format!("http://127.0.0.1:{}/", a.port)).await);
    assert_eq!(a.accepted(), 0);

    // A malformed pattern refuses the plugin at load.
    let mut settings = PluginSettings::new("fixture-sandbox");
    settings.sandbox.network = vec!["http://127.0.0.1/".into()];
    match rt.load_tool(guest_bytes("fixture-sandbox"), settings).await {
        Err(LoadError::Io(message)) => assert!(message.contains("network grant"), "{message}"),
        other => panic!("expected a load error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_request_to_a_silent_host_ends_at_the_plugin_deadline() {
    let silent = TinyServer::silent();
    let rt = runtime();
    let mut settings = PluginSettings::new("fixture-sandbox");
    let deadline = Duration::from_millis(700);
    settings.limits = Some(Limits {
        deadline,
        ..Limits::default()
    });
    settings.sandbox.network = vec![format!("127.0.0.1:{}", silent.port)];
    let plugin = rt
        .load_tool(guest_bytes("fixture-sandbox"), settings)
        .await
        .unwrap();

    let started = Instant::now();
    let result = http_get(&plugin, &format!("http://127.0.0.1:{}/", silent.port)).await;
    let took = started.elapsed();
    match result {
        Err(InvokeError::Timeout(_)) => {}
        // The guest may get the timeout back and return before the next
        // epoch tick notices that its deadline has passed.
        Err(InvokeError::Tool(ToolError::Failed(message))) if message.contains("Timeout") => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took < deadline + Duration::from_secs(2), "took {took:?}");
    assert_eq!(silent.accepted(), 1);
}

#[tokio::test]
async fn a_second_start_with_a_warm_cache_compiles_nothing() {
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    };
    let cold = Runtime::new(config()).unwrap();
    let plugin = load(&cold, "calculator", Limits::default()).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Compiled);
    assert_eq!(cold.compiled_count(), 1);
    drop((plugin, cold));

    let warm = Runtime::new(config()).unwrap();
    let plugin = load(&warm, "calculator", Limits::default()).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Hit);
    assert_eq!(warm.compiled_count(), 0, "a warm start must not compile");
    assert_eq!(warm.cache_hit_count(), 1);
    assert_calculator_still_works(&plugin).await;
}

#[tokio::test]
async fn a_corrupt_cache_entry_is_recompiled() {
    let cache = tempfile::tempdir().unwrap();
    let config = || RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: 8,
        ..RuntimeConfig::default()
    };
    drop(
        load(
            &Runtime::new(config()).unwrap(),
            "calculator",
            Limits::default(),
        )
        .await,
    );
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"not a compiled component").unwrap();
    }
    let rt = Runtime::new(config()).unwrap();
    let plugin = load(&rt, "calculator", Limits::default()).await;
    assert_eq!(plugin.cache_outcome(), CacheOutcome::Compiled);
    assert_calculator_still_works(&plugin).await;
}

#[tokio::test]
async fn bad_components_are_rejected_with_a_reason() {
    let rt = runtime();
    let err = rt
        .load_tool(b"definitely not wasm".to_vec(), PluginSettings::new("junk"))
        .await
        .err()
        .expect("junk must not load");
    assert!(matches!(err, LoadError::Compile(_)), "{err}");

    // A core module, not a component.
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let err = rt
        .load_tool(core_module, PluginSettings::new("core"))
        .await
        .err()
        .expect("a core module must not load");
    assert!(matches!(err, LoadError::Compile(_)), "{err}");
}

#[tokio::test]
async fn concurrent_requests_are_isolated() {
    let rt = runtime();
    let counter = Arc::new(load(&rt, "fixture-counter", Limits::default()).await);
    let mut tasks = Vec::new();
    for user in 0..32 {
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                let out = counter
                    .call(ctx(&format!("user{user}")), "count", "{}")
                    .await
                    .unwrap();
                assert_eq!(out, "1");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn inspect_reports_world_and_tools() {
    let rt = runtime();
    let info = rt.inspect(guest_bytes("text")).await.unwrap();
    assert_eq!(info.world, Some(netra_runtime::World::Tool));
    assert!(info.exports.iter().any(|e| e == "netra:plugin/tool@0.1.0"));
    let names: Vec<_> = info.tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"slugify") && names.contains(&"text_stats"),
        "{names:?}"
    );
    assert!(
        !info
            .imports
            .iter()
            .any(|i| i.starts_with("netra:plugin/events")),
        "a tool must not import agent interfaces: {:?}",
        info.imports
    );
}
