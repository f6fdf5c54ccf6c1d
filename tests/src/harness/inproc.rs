//! A netra server in the test's own process, on 127.0.0.1:0 and a real
//! SQLite file, with every guest plugin loaded once per test binary; and
//! helpers that call the runtime directly.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::guest_bytes;
use crate::ws::Client;
use netra_auth::{AuthConfig, Authenticator};
use netra_runtime::{
    InvokeError, Limits, PluginSettings, RunContext, Runtime, RuntimeConfig, ToolPlugin,
};
use netra_server::{App, Grants, Registry, RunLimits, Runs, ServerConfig, StoreKv};
use netra_store::{SqliteStore, StoreOptions};
use tokio_util::sync::CancellationToken;

/// Every guest plugin, loaded once per test binary and shared by all test
/// servers (each server still creates fresh instances per run).
pub fn registry() -> Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            std::thread::spawn(|| {
                let tokio = tokio::runtime::Runtime::new().expect("tokio");
                tokio.block_on(async {
                    let cache = crate::guests_dir().join("../../../netra-test-cache");
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
                        Registry::load_dir(&runtime, &crate::guests_dir(), &grants)
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
        let dir = crate::guests_dir().join("../../../netra-test-kv");
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
        let runs = Runs::new(registry(), store.clone(), limits);
        let mcp = netra_server::mcp::Mcp::new(runs.clone(), Default::default());
        let app = Arc::new(App {
            config,
            auth: auth.clone(),
            runs,
            readiness: None,
            catalog: None,
            sessions: Default::default(),
            mcp: Some(Arc::new(netra_server::mcp::http::McpHttp::new(mcp))),
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
        Client::connect(&self.url(), token).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
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
