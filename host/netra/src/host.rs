//! A host built from its configuration: the store, the plugins' catalog,
//! the runs, auth and the MCP side; everything `netra serve` and `netra mcp`
//! share. Only how clients reach it differs.

use std::sync::Arc;

use anyhow::Context;
use netra_auth::{AuthConfig, Authenticator, PublicKey, Secret};
use netra_config::{Config, Exposed};
use netra_llm::{Provider, ProviderConfig};
use netra_runtime::rate::ByteRate;
use netra_runtime::{Runtime, RuntimeConfig};
use netra_server::catalog::{Catalog, CatalogSettings};
use netra_server::deps::llm_node;
use netra_server::health::Health;
use netra_server::llm::Models;
use netra_server::mcp::http::McpHttp;
use netra_server::mcp::{Mcp, McpSettings, loopback_hosts};
use netra_server::{
    App, Readiness, Retention, RunLimits, Runs, ServerConfig, Services, StoreKv,
    recover_interrupted,
};
use netra_store::{MemoryStore, SqliteStore, Store, StoreOptions, Synchronous};
use tokio_util::sync::CancellationToken;

/// Everything a host serves from, built once.
pub struct Host {
    /// Its configuration.
    pub config: Arc<Config>,
    /// What connections share (also `/mcp`).
    pub app: Arc<App>,
    /// Tokens' keys; in dev mode, a secret in the data dir.
    pub auth: Authenticator,
    /// Whether no `[auth]` key is configured.
    pub dev: bool,
    /// Agents and tools served at start.
    pub agents: Vec<String>,
    /// Tools served at start.
    pub tools: Vec<String>,
    /// What to tell the operator (crash recovery, ...).
    pub notes: Vec<String>,
    /// The MCP side, for stdio and `list_changed`.
    pub mcp: Arc<Mcp>,
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    health: Arc<Health>,
    readiness: Arc<Readiness>,
    runs: Arc<Runs>,
}

impl Host {
    /// Opens the store, loads the plugins and makes the runs of `config`.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let data_dir = &config.server.data_dir.clone();
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let (auth, dev) = authenticator(&config)?;
        let mut notes = Vec::new();
        let store = open_store(&config, &mut notes).await?;

        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(config.server.cache_dir.clone()),
            max_instances: u32::try_from(config.limits.max_runs.saturating_mul(4))
                .unwrap_or(u32::MAX)
                .max(16),
            // A long-running server snapshots plugins after their warm-up calls
            // (once per component, cached) and keeps instances made ahead.
            preinitialize: true,
            // Fuel limits may come from netra.toml or from any manifest, also one
            // hot-loaded later; metering costs little next to instantiation.
            fuel: true,
            prepared_instances: usize::try_from(config.limits.prepared_instances).unwrap_or(0),
            guest_cpus: config
                .limits
                .guest_cpus
                .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            user_memory_growth: rate(
                config.limits.user_memory_growth_bytes_per_sec,
                config.limits.user_memory_growth_burst_bytes,
            ),
            ..RuntimeConfig::default()
        })?;
        let health = Health::new(config.health.clone());
        for (name, provider) in &config.llm {
            health.add_endpoint(&llm_node(name), &provider.base_url);
        }
        let store_note = match config.store.kind {
            netra_config::StoreKind::Memory => "memory".to_string(),
            netra_config::StoreKind::Sqlite => format!("sqlite {}", config.store.path.display()),
        };
        let plugins_dir = config.plugins.dir.clone();
        if !plugins_dir.is_dir() {
            anyhow::bail!("cannot read plugins dir {}", plugins_dir.display());
        }
        let config = Arc::new(config);
        let opened = Catalog::open(CatalogSettings {
            config: config.clone(),
            runtime,
            store: store.clone(),
            health: health.clone(),
            // Plugins' key-value data lives in the store, scoped to (user, plugin).
            kv: Some(Arc::new(StoreKv::new(store.clone()))),
            versions_dir: data_dir.join("plugins"),
            store_note,
        })
        .await
        .with_context(|| format!("cannot load the plugins of {}", plugins_dir.display()))?;
        for warning in &opened.warnings {
            eprintln!("warning: {warning}");
        }
        let catalog = opened.catalog;
        let current = opened.current;
        let served = current.get();
        let agents: Vec<_> = served
            .registry
            .agents()
            .map(|a| a.plugin.descriptor().name.clone())
            .collect();
        let tools: Vec<_> = served
            .registry
            .tools()
            .map(|t| t.descriptor.name.clone())
            .collect();
        drop(served);

        let readiness = Readiness::new(
            current.clone(),
            health.clone(),
            config.health.golden_path.clone(),
        );

        let mut models = Models::new();
        for (name, provider) in &config.llm {
            let client = Provider::new(ProviderConfig {
                name: name.clone(),
                base_url: provider.base_url.clone(),
                api_key: provider
                    .api_key
                    .as_ref()
                    .map(|key| key.expose().to_string()),
                models: provider.models.clone(),
                timeout: provider.timeout,
                max_retries: 3,
            })
            .map_err(|err| anyhow::anyhow!("LLM provider {name}: {err}"))?;
            models.add(name, client, provider.models.clone(), Some(health.clone()));
        }
        let runs = Runs::with_services(
            current,
            store.clone(),
            RunLimits {
                per_user: usize::try_from(config.limits.max_runs_per_user).unwrap_or(usize::MAX),
                global: usize::try_from(config.limits.max_runs).unwrap_or(usize::MAX),
                history_messages: size(config.limits.max_history_messages),
                history_bytes: size(config.limits.max_history_bytes),
                user_event_rate: rate(
                    config.limits.user_event_bytes_per_sec,
                    config.limits.user_event_burst_bytes,
                ),
            },
            Services {
                models: Some(Arc::new(models)),
            },
        );
        let mcp = Mcp::new(runs.clone(), mcp_settings(&config));
        let app = Arc::new(App {
            config: ServerConfig {
                send_queue: usize::try_from(config.server.send_queue).unwrap_or(1024),
                max_message_bytes: usize::try_from(config.server.max_message_bytes)
                    .unwrap_or(64 * 1024),
                keepalive: config.server.keepalive,
                idle_timeout: config.server.idle_timeout,
                send_queue_bytes: size(config.server.send_queue_bytes),
                write_timeout: config.server.write_timeout,
                page_bytes: size(config.server.page_bytes),
                header_read_timeout: config.server.header_read_timeout,
                max_connections: size(config.server.max_connections),
                max_sessions_per_user: size(config.server.max_sessions_per_user),
                max_body_bytes: size(config.server.max_body_bytes),
                ..ServerConfig::default()
            },
            auth: auth.clone(),
            runs: runs.clone(),
            readiness: Some(readiness.clone()),
            catalog: Some(catalog.clone()),
            sessions: Default::default(),
            mcp: config
                .mcp
                .enabled
                .then(|| Arc::new(McpHttp::new(mcp.clone()))),
        });
        Ok(Host {
            config,
            app,
            auth,
            dev,
            agents,
            tools,
            notes,
            mcp,
            store,
            catalog,
            health,
            readiness,
            runs,
        })
    }

    /// Starts what runs beside the clients until `shutdown`: retention, the
    /// plugins dir watcher (hot-loads), `list_changed` for MCP sessions, the
    /// endpoint checks and the golden path.
    pub fn start_background(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let config = &self.config;
        if let Some(max_age) = config.store.event_retention {
            tokio::spawn(netra_server::retention::run(
                self.store.clone(),
                Retention::new(max_age),
                shutdown.clone(),
            ));
        }
        self.mcp.spawn_watch(&self.catalog, shutdown.clone());
        // Versions dropped into the plugins dir are validated and activated.
        let plugins_dir = &config.plugins.dir;
        let watch = netra_server::catalog::watch::spawn(self.catalog.clone(), shutdown.clone())
            .with_context(|| format!("cannot watch the plugins dir {}", plugins_dir.display()))?;
        // The watcher lives as long as the host serves.
        let stop = shutdown.clone();
        tokio::spawn(async move {
            stop.cancelled().await;
            drop(watch);
        });
        // Endpoints first (bounded retries), then the golden path, which waits
        // for nothing else; both in the background so /healthz answers at once.
        let health = self.health.clone();
        let readiness = self.readiness.clone();
        let runs = self.runs.clone();
        let shutdown = shutdown.clone();
        let retry = config.health.interval;
        tokio::spawn(async move {
            health.check_all_at_start().await;
            health.spawn_monitor(shutdown.clone());
            readiness.spawn_self_check(runs, retry, shutdown);
        });
        Ok(())
    }
}

/// `[mcp]` as the MCP side takes it. Unset `tools`/`agents` expose
/// everything without a configuration file (dev mode) and nothing with one.
fn mcp_settings(config: &Config) -> McpSettings {
    let mcp = &config.mcp;
    let unset = || {
        if config.file.is_none() {
            Exposed::All
        } else {
            Exposed::Names(Default::default())
        }
    };
    let mut allowed_hosts = Vec::new();
    if !mcp.allowed_hosts.iter().any(|h| h == "*") {
        allowed_hosts = loopback_hosts();
        let ip = config.server.listen.ip();
        if !ip.is_unspecified() {
            allowed_hosts.push(match ip {
                std::net::IpAddr::V4(ip) => ip.to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            });
        }
        allowed_hosts.extend(mcp.allowed_hosts.iter().map(|h| h.to_ascii_lowercase()));
    }
    McpSettings {
        tools: mcp.tools.clone().unwrap_or_else(unset),
        agents: mcp.agents.clone().unwrap_or_else(unset),
        page_size: size(mcp.page_size),
        max_notifications_per_call: mcp.max_notifications_per_call,
        allowed_hosts,
        allowed_origins: mcp
            .allowed_origins
            .iter()
            .map(|o| o.to_ascii_lowercase())
            .collect(),
        sessions: mcp.sessions,
        max_sessions_per_user: size(mcp.max_sessions_per_user),
        max_sessions: size(mcp.max_sessions),
        session_idle_timeout: mcp.session_idle_timeout,
        max_body_bytes: size(config.server.max_body_bytes),
    }
}

/// A configured count or size as a `usize` (saturating).
fn size(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

async fn open_store(config: &Config, notes: &mut Vec<String>) -> anyhow::Result<Arc<dyn Store>> {
    let store: Arc<dyn Store> = match config.store.kind {
        netra_config::StoreKind::Memory => Arc::new(MemoryStore::new()),
        netra_config::StoreKind::Sqlite => {
            let path = &config.store.path;
            let options = StoreOptions {
                synchronous: match config.store.durability {
                    netra_config::Durability::Process => Synchronous::Normal,
                    netra_config::Durability::PowerLoss => Synchronous::Full,
                },
                ..StoreOptions::default()
            };
            let store = SqliteStore::open(path, options)
                .with_context(|| format!("cannot open the store {}", path.display()))?;
            Arc::new(store)
        }
    };
    let recovering = store.clone();
    let closed = tokio::task::spawn_blocking(move || recover_interrupted(&*recovering))
        .await
        .context("crash recovery panicked")?
        .context("cannot close the runs a previous process left running")?;
    if !closed.is_empty() {
        notes.push(format!(
            "recovered: {} interrupted runs closed with host_restarted",
            closed.len()
        ));
    }
    Ok(store)
}

fn authenticator(config: &Config) -> anyhow::Result<(Authenticator, bool)> {
    let settings = &config.auth;
    if settings.is_dev() {
        return Ok((Authenticator::dev(&config.server.data_dir)?, true));
    }
    let mut auth = AuthConfig::new(settings.issuer.clone(), settings.audience.clone());
    if let Some(secret) = &settings.hs256_secret {
        auth.hs256_secret = Some(Secret::new(secret.expose().as_bytes().to_vec()));
    }
    for file in &settings.rs256_keys {
        let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        auth.public_keys.push(PublicKey::rsa_pem(&pem)?);
    }
    for file in &settings.es256_keys {
        let pem = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
        auth.public_keys.push(PublicKey::ec_pem(&pem)?);
    }
    if let Some(file) = &settings.jwks_file {
        auth.public_keys.extend(netra_auth::load_jwks(file)?);
    }
    Ok((Authenticator::new(auth)?, false))
}

/// A `[limits]` rate and burst; a rate of 0 is none.
fn rate(per_sec: u64, burst: u64) -> Option<ByteRate> {
    (per_sec > 0).then_some(ByteRate { per_sec, burst })
}
