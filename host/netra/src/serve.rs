//! `netra serve` and `netra token`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use netra_config::{Config, Value};
use netra_server::catalog::plan;
use tokio_util::sync::CancellationToken;

use crate::host::Host;

/// Arguments of `netra serve`. Flags override the configuration file and
/// its `NETRA_*` environment overrides.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// The configuration file [default: $NETRA_CONFIG, else ./netra.toml if
    /// it exists, else built-in defaults]. `netra config check` checks one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (`server.listen`, default 127.0.0.1:8080).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Where netra keeps its state: dev secret, compiled-component cache, the
    /// database (`server.data_dir`, default ./netra-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Directory of plugin components (*.wasm) to serve (`plugins.dir`,
    /// default ./plugins).
    #[arg(long)]
    pub plugins: Option<PathBuf>,
    /// HS256 secret file (`auth.hs256_secret_file`). Without any key netra
    /// runs in dev mode.
    #[arg(long, value_name = "FILE")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// RS256 public key (PEM); repeatable (`auth.rs256_keys`).
    #[arg(long, value_name = "FILE")]
    pub jwt_rs256_key: Vec<PathBuf>,
    /// ES256 public key (PEM); repeatable (`auth.es256_keys`).
    #[arg(long, value_name = "FILE")]
    pub jwt_es256_key: Vec<PathBuf>,
    /// JWKS file with RS256/ES256 public keys (`auth.jwks_file`).
    #[arg(long, value_name = "FILE")]
    pub jwt_jwks: Option<PathBuf>,
    /// Required `iss` claim (`auth.issuer`, default netra).
    #[arg(long)]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim (`auth.audience`, default netra).
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// Restrict an agent to some tools, as AGENT=TOOL,TOOL (repeatable;
    /// `plugin.AGENT.tools`).
    #[arg(long = "allow-tools", value_name = "AGENT=TOOLS")]
    pub allow_tools: Vec<String>,
    /// Runs one user may have going at once (`limits.max_runs_per_user`, default 8).
    #[arg(long)]
    pub max_runs_per_user: Option<u64>,
    /// Runs the host may have going at once (`limits.max_runs`, default 256).
    #[arg(long)]
    pub max_runs: Option<u64>,
    /// Wall-clock limit of one agent run, in milliseconds (`limits.agent.deadline`,
    /// default 60 s).
    #[arg(long)]
    pub agent_deadline_ms: Option<u64>,
    /// Wall-clock limit of one tool call, in milliseconds (`limits.tool.deadline`,
    /// default 10 s).
    #[arg(long)]
    pub tool_deadline_ms: Option<u64>,
    /// Where threads, runs, event logs and plugin kv live: `sqlite`
    /// (`store.path`, default DATA_DIR/netra.db) or `memory` (nothing
    /// survives a restart) (`store.kind`).
    #[arg(long, value_enum)]
    pub store: Option<StoreChoice>,
    /// How long run event logs are kept after a run ends, e.g. `30d`, `12h`;
    /// `0s` keeps them forever (`store.event_retention`, default 30d).
    #[arg(long)]
    pub event_retention: Option<String>,
}

/// `--store`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// One SQLite file.
    Sqlite,
    /// Process memory, for demos, tests and benchmarks.
    Memory,
}

/// The flags given, as configuration overrides (paths made absolute against
/// the working directory, where the user typed them).
fn overrides(args: &ServeArgs) -> anyhow::Result<Vec<(String, Value)>> {
    let mut out: Vec<(String, Value)> = Vec::new();
    let text = |key: &str, value: String| (key.to_string(), Value::String(value));
    let path = |p: &Path| -> anyhow::Result<Value> {
        let absolute = std::path::absolute(p)
            .with_context(|| format!("cannot resolve the path {}", p.display()))?;
        Ok(Value::String(absolute.display().to_string()))
    };
    if let Some(listen) = args.listen {
        out.push(text("server.listen", listen.to_string()));
    }
    if let Some(dir) = &args.data_dir {
        out.push(("server.data_dir".into(), path(dir)?));
    }
    if let Some(dir) = &args.plugins {
        out.push(("plugins.dir".into(), path(dir)?));
    }
    if let Some(file) = &args.jwt_hs256_secret_file {
        out.push(("auth.hs256_secret_file".into(), path(file)?));
    }
    for (key, files) in [
        ("auth.rs256_keys", &args.jwt_rs256_key),
        ("auth.es256_keys", &args.jwt_es256_key),
    ] {
        if !files.is_empty() {
            let list = files
                .iter()
                .map(|f| path(f))
                .collect::<anyhow::Result<_>>()?;
            out.push((key.into(), Value::Array(list)));
        }
    }
    if let Some(file) = &args.jwt_jwks {
        out.push(("auth.jwks_file".into(), path(file)?));
    }
    if let Some(issuer) = &args.jwt_issuer {
        out.push(text("auth.issuer", issuer.clone()));
    }
    if let Some(audience) = &args.jwt_audience {
        out.push(text("auth.audience", audience.clone()));
    }
    for (agent, tools) in parse_allow_tools(&args.allow_tools)? {
        let tools = tools.into_iter().map(Value::String).collect();
        out.push((format!("plugin.{agent}.tools"), Value::Array(tools)));
    }
    let int = |n: u64| Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    if let Some(n) = args.max_runs {
        out.push(("limits.max_runs".into(), int(n)));
    }
    if let Some(n) = args.max_runs_per_user {
        out.push(("limits.max_runs_per_user".into(), int(n)));
    }
    if let Some(ms) = args.agent_deadline_ms {
        out.push(text("limits.agent.deadline", format!("{ms}ms")));
    }
    if let Some(ms) = args.tool_deadline_ms {
        out.push(text("limits.tool.deadline", format!("{ms}ms")));
    }
    if let Some(store) = args.store {
        let kind = match store {
            StoreChoice::Sqlite => "sqlite",
            StoreChoice::Memory => "memory",
        };
        out.push(text("store.kind", kind.into()));
    }
    if let Some(retention) = &args.event_retention {
        let retention = if retention.trim() == "0" {
            "0s".to_string()
        } else {
            retention.clone()
        };
        out.push(text("store.event_retention", retention));
    }
    Ok(out)
}

/// The configuration `netra serve` runs with: the file, the environment, the flags.
fn configuration(args: &ServeArgs) -> anyhow::Result<Config> {
    netra_config::load_with(args.config.as_deref(), overrides(args)?)
        .map_err(|problems| anyhow::anyhow!("{problems}").context("invalid configuration"))
}

/// Runs the server until Ctrl-C.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = configuration(&args)?;
    dev_mode_listens_locally(&config)?;
    let host = Host::build(config).await?;
    for line in &host.notes {
        println!("{line}");
    }
    let (config, auth) = (host.config.clone(), host.auth.clone());
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "netra listening on http://{addr} (WebSocket ws://{addr}/v1/ws, subprotocol netra.v1)"
    );
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    println!("agents: {}", list(&host.agents));
    println!("tools:  {}", list(&host.tools));
    if host.app.mcp.is_some() {
        println!("mcp:    http://{addr}/mcp ({})", list(&host.mcp.exposed()));
    }
    if host.dev {
        let token = auth.issue("dev", &[], Duration::from_secs(24 * 3600))?;
        println!(
            "dev mode: tokens are signed with {}",
            config.server.data_dir.join("dev-jwt-secret").display()
        );
        println!("connect:  netra chat --url ws://{addr}/v1/ws --agent helper --token {token}");
        println!("token for user \"dev\" (24 h):");
        println!("{token}");
    }
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(netra_server::http::serve(
        listener,
        host.app.clone(),
        shutdown.clone(),
    ));
    host.start_background(&shutdown)?;
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    eprintln!("shutting down");
    shutdown.cancel();
    let _ = server.await;
    Ok(())
}

/// For `netra config check`: prints what each plugin in the plugins
/// directory would get, from its manifest and grant, without loading any.
/// False if a plugin would be refused.
pub fn check_plugins(config: &Config) -> bool {
    let dir = &config.plugins.dir;
    let found = plan::scan_dir(dir);
    let origins: Vec<String> = found
        .iter()
        .map(|(name, _)| dir.join(format!("{name}.toml")).display().to_string())
        .collect();
    let offered: Vec<plan::Offered<'_>> = found
        .iter()
        .zip(&origins)
        .map(|((name, manifest), origin)| plan::Offered {
            name,
            manifest: manifest.as_deref(),
            origin,
        })
        .collect();
    let plan = plan::plan(config, &offered, &BTreeSet::new());
    if plan.nodes.is_empty() {
        println!("  no plugins in {}", config.plugins.dir.display());
        return true;
    }
    let mut ok = true;
    for node in &plan.nodes {
        let what = match (&node.kind, &node.version) {
            (Some(kind), Some(version)) => format!("{kind} {version}"),
            _ if node.manifest => "manifest invalid".to_string(),
            _ => "no manifest: needs unknown".to_string(),
        };
        let verdict = if !node.refused.is_empty() {
            ok = false;
            "refused"
        } else if !node.ungranted.is_empty() {
            "degraded"
        } else {
            "ok"
        };
        println!("  plugin {} ({what}): {verdict}", node.name);
        for reason in node.refused.iter().chain(&node.ungranted) {
            println!("    {reason}");
        }
    }
    ok
}

/// Opens the store and closes the runs a previous process left running.
/// Dev mode (no `[auth]` key) accepts tokens signed with a secret anyone
/// with the data dir can read, and `netra token` mints admin ones: it may
/// listen on a loopback address only.
fn dev_mode_listens_locally(config: &Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    if !config.auth.is_dev() || listen.ip().is_loopback() {
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {listen} in dev mode: without auth configured anyone who \
         reaches this address could use the server. Configure auth with `[auth] \
         hs256_secret_env` (or hs256_secret_file, rs256_keys, es256_keys, jwks_file; \
         e.g. NETRA_AUTH__HS256_SECRET_ENV or --jwt-hs256-secret-file), or listen on a \
         loopback address (`[server] listen`, NETRA_SERVER__LISTEN or --listen, e.g. \
         127.0.0.1:8080)"
    )
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
