//! `netra serve` and `netra token`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use netra_auth::{AuthConfig, Authenticator, PublicKey, Secret};
use netra_runtime::{Limits, Runtime, RuntimeConfig};
use netra_server::{
    App, Grants, Registry, Retention, RunLimits, Runs, ServerConfig, recover_interrupted,
};
use netra_store::{MemoryStore, SqliteStore, Store, StoreKv, StoreOptions};
use tokio_util::sync::CancellationToken;

/// Arguments of `netra serve`.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where netra keeps its state (dev secret, compiled-component cache).
    #[arg(long, default_value = "./netra-data")]
    pub data_dir: PathBuf,
    /// Directory of plugin components (*.wasm) to serve.
    #[arg(long, default_value = "./plugins")]
    pub plugins: PathBuf,
    /// HS256 secret file. Without any key option netra runs in dev mode.
    #[arg(long, value_name = "FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// RS256 public key (PEM); repeatable.
    #[arg(long, value_name = "FILE")]
    pub jwt_rs256_key: Vec<PathBuf>,
    /// ES256 public key (PEM); repeatable.
    #[arg(long, value_name = "FILE")]
    pub jwt_es256_key: Vec<PathBuf>,
    /// JWKS file with RS256/ES256 public keys.
    #[arg(long, value_name = "FILE")]
    pub jwt_jwks: Option<PathBuf>,
    /// Required `iss` claim (with a configured key).
    #[arg(long, default_value = "netra")]
    pub jwt_issuer: String,
    /// Required `aud` claim (with a configured key).
    #[arg(long, default_value = "netra")]
    pub jwt_audience: String,
    /// Restrict an agent to some tools, as AGENT=TOOL,TOOL (repeatable).
    #[arg(long = "allow-tools", value_name = "AGENT=TOOLS")]
    pub allow_tools: Vec<String>,
    /// Runs one user may have going at once.
    #[arg(long, default_value_t = 8)]
    pub max_runs_per_user: usize,
    /// Runs the host may have going at once.
    #[arg(long, default_value_t = 256)]
    pub max_runs: usize,
    /// Wall-clock limit of one agent run, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    pub agent_deadline_ms: u64,
    /// Wall-clock limit of one tool call, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub tool_deadline_ms: u64,
    /// Where threads, runs, event logs and plugin kv live: `sqlite`
    /// (DATA_DIR/netra.db) or `memory` (nothing survives a restart).
    #[arg(long, value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// How long run event logs are kept after a run ends (e.g. `30d`,
    /// `12h`); `0` keeps them forever. Threads and messages are kept.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    pub event_retention: Duration,
}

/// The store `netra serve` uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// One SQLite file in the data dir.
    Sqlite,
    /// Process memory, for demos, tests and benchmarks.
    Memory,
}

/// Runs the server until Ctrl-C.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create data dir {}", args.data_dir.display()))?;
    let (auth, dev) = authenticator(&args)?;
    let store = open_store(&args).await?;

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(args.data_dir.join("cache")),
        max_instances: u32::try_from(args.max_runs.saturating_mul(4))
            .unwrap_or(u32::MAX)
            .max(16),
        ..RuntimeConfig::default()
    })?;
    let grants = Grants {
        agent_tools: parse_allow_tools(&args.allow_tools)?,
        limits: BTreeMap::new(),
        agent_limits: Some(Limits {
            deadline: Duration::from_millis(args.agent_deadline_ms),
            ..Limits::default()
        }),
        tool_limits: Some(Limits {
            deadline: Duration::from_millis(args.tool_deadline_ms),
            ..Limits::default()
        }),
        // Plugins' key-value data lives in the store, scoped to (user, plugin).
        kv: Some(Arc::new(StoreKv::new(store.clone()))),
    };
    let (registry, failures) = Registry::load_dir(&runtime, &args.plugins, &grants)
        .await
        .with_context(|| format!("cannot read plugins dir {}", args.plugins.display()))?;
    for failure in &failures {
        eprintln!("warning: {} not loaded: {}", failure.file, failure.error);
    }
    let agents: Vec<_> = registry
        .agents()
        .map(|a| a.plugin.descriptor().name.clone())
        .collect();
    let tools: Vec<_> = registry
        .tools()
        .map(|t| t.descriptor.name.clone())
        .collect();

    let runs = Runs::new(
        Arc::new(registry),
        store.clone(),
        RunLimits {
            per_user: args.max_runs_per_user,
            global: args.max_runs,
        },
    );
    let app = Arc::new(App {
        config: ServerConfig::default(),
        auth: auth.clone(),
        runs,
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "netra listening on http://{addr} (WebSocket ws://{addr}/v1/ws, subprotocol netra.v1)"
    );
    println!(
        "agents: {}",
        if agents.is_empty() {
            "none".into()
        } else {
            agents.join(", ")
        }
    );
    println!(
        "tools:  {}",
        if tools.is_empty() {
            "none".into()
        } else {
            tools.join(", ")
        }
    );
    if dev {
        let token = auth.issue("dev", &[], Duration::from_secs(24 * 3600))?;
        println!(
            "dev mode: tokens are signed with {}",
            args.data_dir.join("dev-jwt-secret").display()
        );
        println!("connect:  netra chat --url ws://{addr}/v1/ws --agent helper --token {token}");
        println!("token for user \"dev\" (24 h):");
        println!("{token}");
    }
    let shutdown = CancellationToken::new();
    if !args.event_retention.is_zero() {
        tokio::spawn(netra_server::retention::run(
            store.clone(),
            Retention::new(args.event_retention),
            shutdown.clone(),
        ));
    }
    let server = tokio::spawn(netra_server::http::serve(listener, app, shutdown.clone()));
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("shutting down");
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}

/// Opens the store and closes the runs a previous process left running.
async fn open_store(args: &ServeArgs) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match args.store {
        StoreKind::Memory => Arc::new(MemoryStore::new()),
        StoreKind::Sqlite => {
            let db = args.data_dir.join("netra.db");
            let store = SqliteStore::open(&db, StoreOptions::default())
                .with_context(|| format!("cannot open the store {}", db.display()))?;
            Arc::new(store)
        }
    };
    let recovering = store.clone();
    let closed = tokio::task::spawn_blocking(move || recover_interrupted(&*recovering))
        .await
        .context("crash recovery panicked")?
        .context("cannot close the runs a previous process left running")?;
    if !closed.is_empty() {
        println!(
            "recovered: {} interrupted runs closed with host_restarted",
            closed.len()
        );
    }
    Ok(store)
}

fn authenticator(args: &ServeArgs) -> anyhow::Result<(Authenticator, bool)> {
    let mut config = AuthConfig::new(args.jwt_issuer.clone(), args.jwt_audience.clone());
    if let Some(file) = &args.jwt_hs256_secret_file {
        config.hs256_secret = Some(Secret::from_file(file)?);
    }
    for file in &args.jwt_rs256_key {
        let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        config.public_keys.push(PublicKey::rsa_pem(&pem)?);
    }
    for file in &args.jwt_es256_key {
        let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        config.public_keys.push(PublicKey::ec_pem(&pem)?);
    }
    if let Some(file) = &args.jwt_jwks {
        config.public_keys.extend(netra_auth::load_jwks(file)?);
    }
    if config.hs256_secret.is_none() && config.public_keys.is_empty() {
        return Ok((Authenticator::dev(&args.data_dir)?, true));
    }
    Ok((Authenticator::new(config)?, false))
}

fn parse_allow_tools(specs: &[String]) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let mut map = BTreeMap::new();
    for spec in specs {
        let (agent, tools) = spec
            .split_once('=')
            .with_context(|| format!("--allow-tools expects AGENT=TOOL,TOOL, got {spec:?}"))?;
        let tools: BTreeSet<String> = tools
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(String::from)
            .collect();
        map.insert(agent.trim().to_string(), tools);
    }
    Ok(map)
}

/// Arguments of `netra token`.
#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    /// The data dir of the server (holds the dev secret).
    #[arg(long, default_value = "./netra-data")]
    pub data_dir: PathBuf,
    /// The user id (`sub` claim).
    #[arg(long)]
    pub sub: String,
    /// A role to grant (repeatable), e.g. `admin`.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 24 * 3600)]
    pub ttl_secs: u64,
}

/// Prints a dev-mode token; the token is the last line.
pub fn token(args: TokenArgs) -> anyhow::Result<()> {
    let roles: Vec<&str> = args.roles.iter().map(String::as_str).collect();
    let token = netra_auth::dev_token(
        &args.data_dir,
        &args.sub,
        &roles,
        Duration::from_secs(args.ttl_secs),
    )?;
    println!("dev token for {:?}, valid {} s:", args.sub, args.ttl_secs);
    println!("{token}");
    Ok(())
}
