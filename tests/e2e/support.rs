//! A real server on 127.0.0.1:0 and a real WebSocket client for the tests.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use netra_auth::{AuthConfig, Authenticator};
use netra_runtime::{
    InvokeError, Limits, PluginSettings, RunContext, Runtime, RuntimeConfig, ToolPlugin,
};
use netra_server::{App, Grants, Registry, RunLimits, Runs, ServerConfig, StoreKv};
use netra_store::{SqliteStore, StoreOptions};
use netra_tests::guest_bytes;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long a test waits for any one frame.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(20);

/// Every guest plugin, loaded once per test binary and shared by all test
/// servers (each server still creates fresh instances per run).
pub fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            std::thread::spawn(|| {
                let tokio = tokio::runtime::Runtime::new().expect("tokio");
                tokio.block_on(async {
                    let cache = netra_tests::guests_dir().join("../../../netra-test-cache");
                    let runtime = Runtime::new(RuntimeConfig {
                        cache_dir: Some(cache),
                        max_instances: 2000,
                        ..RuntimeConfig::default()
                    })
                    .expect("runtime");
                    let grants = Grants {
                        agent_tools: BTreeMap::from([(
                            "forbidden-agent".to_string(),
                            BTreeSet::from(["calculate".to_string()]),
                        )]),
                        agent_limits: Some(Limits {
                            deadline: Duration::from_secs(3),
                            memory_bytes: 32 << 20,
                            ..Limits::default()
                        }),
                        tool_limits: Some(Limits {
                            deadline: Duration::from_secs(2),
                            ..Limits::default()
                        }),
                        // Plugins' kv in a real SQLite file, as `netra serve` keeps it.
                        kv: Some(Arc::new(StoreKv::new(kv_store()))),
                        // Not loaded here: the hot-loading tests' deliberately
                        // broken candidates, and a second build of `helper`.
                        skip: BTreeSet::from([
                            "fixture-wrong-world".to_string(),
                            "fixture_describe_trap".to_string(),
                            "fixture_helper_next".to_string(),
                        ]),
                        ..Grants::default()
                    };
                    let (registry, failures) =
                        Registry::load_dir(&runtime, &netra_tests::guests_dir(), &grants)
                            .await
                            .expect("read guests dir");
                    assert!(failures.is_empty(), "guests failed to load: {failures:?}");
                    Arc::new(registry)
                })
            })
            .join()
            .expect("registry loader thread")
        })
        .clone()
}

/// The SQLite store behind every test server's plugin kv (the registry, and
/// with it the kv, is shared by the whole test binary).
fn kv_store() -> Arc<SqliteStore> {
    static KV: OnceLock<Arc<SqliteStore>> = OnceLock::new();
    KV.get_or_init(|| {
        // Statics are never dropped, so a temp dir would outlive the process:
        // keep the file under target/, one per process, and clear old ones.
        let dir = netra_tests::guests_dir().join("../../../netra-test-kv");
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join(format!("kv-{}.db", std::process::id()));
        Arc::new(SqliteStore::open(&path, StoreOptions::default()).expect("kv store"))
    })
    .clone()
}

/// A netra server running in this process, on a real SQLite file.
pub struct TestServer {
    pub addr: SocketAddr,
    pub auth: Authenticator,
    /// The server's store.
    pub store: Arc<SqliteStore>,
    shutdown: CancellationToken,
    _data: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A dev-mode server with default limits.
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default(), RunLimits::default(), None).await
    }

    /// A server with the given limits; `auth` replaces dev mode.
    pub async fn start_with(
        config: ServerConfig,
        limits: RunLimits,
        auth: Option<AuthConfig>,
    ) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Self::start_in(data.path(), config, limits, auth).await;
        server._data = Some(data);
        server
    }

    /// A dev-mode server on the data dir `dir` (kept when the server stops),
    /// after crash recovery, as `netra serve` starts.
    pub async fn restart_in(dir: &Path) -> Self {
        Self::start_in(dir, ServerConfig::default(), RunLimits::default(), None).await
    }

    async fn start_in(
        dir: &Path,
        config: ServerConfig,
        limits: RunLimits,
        auth: Option<AuthConfig>,
    ) -> Self {
        let auth = match auth {
            Some(config) => Authenticator::new(config).expect("auth config"),
            None => Authenticator::dev(dir).expect("dev auth"),
        };
        let store = Arc::new(
            SqliteStore::open(&dir.join("netra.db"), StoreOptions::default()).expect("store"),
        );
        netra_server::recover_interrupted(&*store).expect("crash recovery");
        let app = Arc::new(App {
            config,
            auth: auth.clone(),
            runs: Runs::new(registry(), store.clone(), limits),
            readiness: None,
            catalog: None,
            sessions: Default::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        tokio::spawn(netra_server::http::serve(listener, app, shutdown.clone()));
        Self {
            addr,
            auth,
            store,
            shutdown,
            _data: None,
        }
    }

    /// The WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/ws", self.addr)
    }

    /// A dev token for `user`.
    pub fn token(&self, user: &str) -> String {
        self.auth
            .issue(user, &[], Duration::from_secs(3600))
            .expect("issue token")
    }

    /// Connects as `user` with an `Authorization` header.
    pub async fn connect(&self, user: &str) -> Client {
        let token = self.token(user);
        self.connect_with_token(&token).await
    }

    /// Connects with a given token.
    pub async fn connect_with_token(&self, token: &str) -> Client {
        let mut request = self.url().into_client_request().expect("request");
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connect");
        Client {
            ws,
            next_id: 0,
            pending: Default::default(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A real WebSocket client speaking netra.v1.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub next_id: u64,
    /// Frames read while waiting for something else, in arrival order.
    pub pending: std::collections::VecDeque<Value>,
}

impl Client {
    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::Text(text.into().into()))
            .await
            .expect("send");
    }

    /// Sends a command with a fresh id; returns the id.
    pub async fn command(&mut self, kind: &str, mut fields: Value) -> String {
        self.next_id += 1;
        let id = format!("c{}", self.next_id);
        fields["type"] = json!(kind);
        fields["id"] = json!(id);
        self.send_text(fields.to_string()).await;
        id
    }

    /// The next JSON frame, checked against the wire schema.
    pub async fn recv(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("a frame within the timeout")
                .expect("the socket is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("frames are JSON");
                    netra_tests::check_frame(&value);
                    return value;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(FRAME_TIMEOUT, self.ws.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(Message::Close(None))) | None => return 1005,
                Some(Ok(_)) => continue,
                Some(Err(err)) => panic!("socket error instead of a close: {err}"),
            }
        }
    }

    /// Sends a command and returns its ack (or error) frame.
    pub async fn request(&mut self, kind: &str, fields: Value) -> Value {
        let id = self.command(kind, fields).await;
        loop {
            let frame = self.recv().await;
            if frame["ref"] == json!(id) {
                return frame;
            }
            self.pending.push_back(frame);
        }
    }

    /// Starts a run and returns (run_id, thread_id).
    pub async fn start_run(&mut self, agent: &str, input: &str) -> (String, String) {
        let ack = self
            .request("run.start", json!({ "agent": agent, "input": input }))
            .await;
        assert_eq!(ack["type"], "ack", "run.start refused: {ack}");
        (
            ack["run_id"].as_str().expect("run_id").to_string(),
            ack["thread_id"].as_str().expect("thread_id").to_string(),
        )
    }

    /// Collects the events of `run_id` up to and including its terminal
    /// event, checking the order rules on the way.
    pub async fn run_events(&mut self, run_id: &str) -> Vec<Value> {
        let events = self.run_events_after(run_id).await;
        check_order(&events);
        events
    }

    /// Collects events of `run_id` up to its terminal event, without the
    /// order check (for a stream resumed part-way). Frames of other runs are
    /// kept for later.
    pub async fn run_events_after(&mut self, run_id: &str) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            let position = self
                .pending
                .iter()
                .position(|f| f["run_id"] == json!(run_id));
            let frame = match position.and_then(|i| self.pending.remove(i)) {
                Some(frame) => frame,
                None => self.recv().await,
            };
            if frame["run_id"] != json!(run_id) {
                self.pending.push_back(frame);
                continue;
            }
            let terminal = matches!(
                frame["type"].as_str(),
                Some("agent_completed" | "agent_error")
            );
            events.push(frame);
            if terminal {
                return events;
            }
        }
    }

    /// Starts a run and returns all its events.
    pub async fn run(&mut self, agent: &str, input: &str) -> Vec<Value> {
        let (run_id, _) = self.start_run(agent, input).await;
        self.run_events(&run_id).await
    }
}

/// The order rules every run must follow.
pub fn check_order(events: &[Value]) {
    assert_eq!(events[0]["type"], "agent_started", "{events:#?}");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(event["seq"], json!(i as u64 + 1), "seq gap in {events:#?}");
    }
    let terminals = events
        .iter()
        .filter(|e| matches!(e["type"].as_str(), Some("agent_completed" | "agent_error")))
        .count();
    assert_eq!(terminals, 1, "{events:#?}");
    let mut open = BTreeSet::new();
    for event in events {
        match event["type"].as_str() {
            Some("tool_executing") => {
                assert!(open.insert(event["tool_call_id"].to_string()));
            }
            Some("tool_completed") => {
                assert!(
                    open.remove(&event["tool_call_id"].to_string()),
                    "completed before executing"
                );
            }
            _ => {}
        }
    }
}

/// Types of `events`, in order.
pub fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?"))
        .collect()
}

// Direct runtime helpers, shared by the e2e and timing binaries.

/// A run context for direct runtime calls.
pub fn ctx(user: &str) -> RunContext {
    RunContext {
        user_id: user.into(),
        thread_id: "thr_test".into(),
        run_id: "run_test".into(),
    }
}

/// A runtime sized for tests, without a cache.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 64,
        ..RuntimeConfig::default()
    })
    .expect("runtime starts")
}

/// Loads a guest tool with `limits`.
pub async fn load(runtime: &Runtime, crate_name: &str, limits: Limits) -> ToolPlugin {
    let mut settings = PluginSettings::new(crate_name);
    settings.limits = Some(limits);
    runtime
        .load_tool(guest_bytes(crate_name), settings)
        .await
        .unwrap_or_else(|e| panic!("loading {crate_name}: {e}"))
}

/// Calls the calculator.
pub async fn calculate(calculator: &ToolPlugin, expression: &str) -> Result<String, InvokeError> {
    let args = serde_json::json!({ "expression": expression }).to_string();
    calculator.call(ctx("alice"), "calculate", &args).await
}

/// After a failure, the same runtime must still serve a well-behaved plugin.
pub async fn assert_calculator_still_works(calculator: &ToolPlugin) {
    assert_eq!(
        calculate(calculator, "2+3*4")
            .await
            .expect("calculator answers"),
        "14"
    );
}
