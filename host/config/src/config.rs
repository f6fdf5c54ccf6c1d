//! The resolved configuration, and the step that reads and checks it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use crate::Secret;
use crate::budgets::{BudgetOverrides, Budgets};
use crate::host_pattern::HostPattern;
use crate::problem::Report;
use crate::read::Section;

const MIB: u64 = 1 << 20;

/// Everything `netra serve` is configured with, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[server]`.
    pub server: Server,
    /// `[auth]`.
    pub auth: Auth,
    /// `[store]`.
    pub store: Store,
    /// `[plugins]`.
    pub plugins: Plugins,
    /// `[limits]`.
    pub limits: Limits,
    /// `[llm.NAME]`: the LLM providers, by name.
    pub llm: BTreeMap<String, LlmProvider>,
    /// `[plugin.NAME]`: each plugin's grant, limits and config values, by name.
    pub plugin: BTreeMap<String, PluginConfig>,
    /// `[health]`: endpoint checks, circuit breakers, the golden path.
    pub health: Health,
    /// `[mcp]`: what MCP clients are served.
    pub mcp: crate::Mcp,
    /// The file this configuration came from; `None` when netra runs on
    /// defaults (and the environment) alone.
    pub file: Option<PathBuf>,
}

/// `[health]`: how external endpoints are checked and when the host is ready.
#[derive(Clone, Debug)]
pub struct Health {
    /// `interval`: probe period of a healthy endpoint (default 10 s).
    pub interval: Duration,
    /// `timeout`: one probe's timeout (default 2 s).
    pub timeout: Duration,
    /// `failure_threshold`: consecutive failures that open a breaker (default 3).
    pub failure_threshold: u32,
    /// `open_for`: first open period before a trial (default 1 s); doubles
    /// per failed trial up to `max_open_for` (default 30 s).
    pub open_for: Duration,
    /// `max_open_for`.
    pub max_open_for: Duration,
    /// `start_attempts`: tries per endpoint at start (default 3).
    pub start_attempts: u32,
    /// `[health.golden_path]`: the self-check run; `None` when not configured.
    pub golden_path: Option<GoldenPath>,
}

impl Health {
    const INTERVAL: Duration = Duration::from_secs(10);
    const TIMEOUT: Duration = Duration::from_secs(2);
    const FAILURE_THRESHOLD: u32 = 3;
    const OPEN_FOR: Duration = Duration::from_secs(1);
    const MAX_OPEN_FOR: Duration = Duration::from_secs(30);
    const START_ATTEMPTS: u32 = 3;
}

impl Default for Health {
    /// The defaults netra.toml's `[health]` documents, no golden path.
    fn default() -> Self {
        Self {
            interval: Self::INTERVAL,
            timeout: Self::TIMEOUT,
            failure_threshold: Self::FAILURE_THRESHOLD,
            open_for: Self::OPEN_FOR,
            max_open_for: Self::MAX_OPEN_FOR,
            start_attempts: Self::START_ATTEMPTS,
            golden_path: None,
        }
    }
}

/// `[health.golden_path]`: a run through the real path that must pass before
/// the host reports ready.
#[derive(Clone, Debug)]
pub struct GoldenPath {
    /// `agent`: the agent to run (it must call at least one tool).
    pub agent: String,
    /// `input`: what it is asked.
    pub input: String,
    /// `expect`: text its answer must contain, if set.
    pub expect: Option<String>,
    /// `timeout`: how long the run may take (default 30 s).
    pub timeout: Duration,
}

/// `[server]`.
#[derive(Clone, Debug)]
pub struct Server {
    /// `listen`: the address to serve on (default `127.0.0.1:8080`).
    pub listen: SocketAddr,
    /// `data_dir`: the dev secret, the database, kept plugin versions
    /// (default `./netra-data`).
    pub data_dir: PathBuf,
    /// `cache_dir`: compiled components, so a restart compiles nothing
    /// (default `DATA_DIR/cache`). Hosts on one machine may share it.
    pub cache_dir: PathBuf,
    /// `max_message_bytes`: largest client frame (default 64 KiB).
    pub max_message_bytes: u64,
    /// `send_queue`: frames queued per session before it counts as a slow
    /// consumer (default 1024).
    pub send_queue: u64,
    /// `keepalive`: ping period (default 30 s).
    pub keepalive: Duration,
    /// `idle_timeout`: a session silent this long is closed (default 10 min).
    pub idle_timeout: Duration,
    /// `send_queue_bytes`: bytes queued per session before it counts as a
    /// slow consumer and is closed with 1013 (default 16 MiB).
    pub send_queue_bytes: u64,
    /// `write_timeout`: longest wait for the socket to take one write before
    /// the session is closed (default 30 s).
    pub write_timeout: Duration,
    /// `page_bytes`: most bytes of messages in one `thread.get` page (default 1 MiB).
    pub page_bytes: u64,
    /// `header_read_timeout`: time from when the server waits for a request
    /// (connection opened, or the last response sent) to the end of its
    /// headers; it also closes idle keep-alive connections (default 10 s).
    pub header_read_timeout: Duration,
    /// `max_connections`: open connections the host accepts (default 10,000);
    /// over it a new connection waits in the kernel's queue.
    pub max_connections: u64,
    /// `max_sessions_per_user`: WebSocket sessions one user may hold (default 64).
    pub max_sessions_per_user: u64,
    /// `max_body_bytes`: largest request body on any route but plugin
    /// uploads (default 1 MiB).
    pub max_body_bytes: u64,
}

/// `[auth]`. With no key at all, netra runs in dev mode.
#[derive(Clone, Debug)]
pub struct Auth {
    /// `issuer`: the required `iss` (default `netra`).
    pub issuer: String,
    /// `audience`: the required `aud` (default `netra`).
    pub audience: String,
    /// `hs256_secret_env` / `hs256_secret_file`: an HS256 secret.
    pub hs256_secret: Option<Secret>,
    /// `rs256_keys`: RS256 public keys (PEM files).
    pub rs256_keys: Vec<PathBuf>,
    /// `es256_keys`: ES256 public keys (PEM files).
    pub es256_keys: Vec<PathBuf>,
    /// `jwks_file`: a JWKS file.
    pub jwks_file: Option<PathBuf>,
}

impl Auth {
    /// Whether no key is configured (dev mode: tokens signed with a secret
    /// generated in the data dir).
    pub fn is_dev(&self) -> bool {
        self.hs256_secret.is_none()
            && self.rs256_keys.is_empty()
            && self.es256_keys.is_empty()
            && self.jwks_file.is_none()
    }
}

/// Where the store lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// One SQLite file.
    Sqlite,
    /// Process memory: nothing survives a restart.
    Memory,
}

/// How durable a commit is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Survives the process dying in any way (`synchronous=NORMAL`).
    Process,
    /// Survives power loss too (`synchronous=FULL`: an fsync per commit).
    PowerLoss,
}

/// `[store]`.
#[derive(Clone, Debug)]
pub struct Store {
    /// `kind`: `sqlite` (default) or `memory`.
    pub kind: StoreKind,
    /// `path`: the database file (default `DATA_DIR/netra.db`).
    pub path: PathBuf,
    /// `durability`: `process` (default) or `power_loss`.
    pub durability: Durability,
    /// `event_retention`: how long run event logs are kept after a run ends
    /// (default 30 days); `"0s"` keeps them forever (`None`).
    pub event_retention: Option<Duration>,
}

/// What happens to a plugin that needs something its grant does not give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ungranted {
    /// It is not loaded.
    Refuse,
    /// It is loaded and marked degraded with the reasons; its runs fail fast
    /// with `dependency_unavailable` and the reasons.
    Degrade,
}

/// `[plugins]`.
#[derive(Clone, Debug)]
pub struct Plugins {
    /// `dir`: the directory of plugin components (default `./plugins`).
    pub dir: PathBuf,
    /// `ungranted`: `refuse` (default) or `degrade`.
    pub ungranted: Ungranted,
}

/// Resource limits of one plugin instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginLimits {
    /// `memory`: linear memory, in bytes.
    pub memory: u64,
    /// `deadline`: wall-clock limit of one run or tool call.
    pub deadline: Duration,
    /// `fuel`: instruction budget of one call; `None` is unlimited.
    pub fuel: Option<u64>,
    /// Events, bytes, calls, log output and kv space (see [`Budgets`]).
    pub budgets: Budgets,
}

/// `[limits]`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// `max_runs`: runs the host has going at once (default 256).
    pub max_runs: u64,
    /// `max_runs_per_user`: runs one user has going at once (default 8).
    pub max_runs_per_user: u64,
    /// `prepared_instances`: fresh instances each `Copy` (CPython) tool
    /// plugin keeps made ahead of requests (default 2; 0 makes every instance
    /// on demand).
    pub prepared_instances: u64,
    /// `max_history_messages`: most messages of its thread a run gets, the
    /// latest (default 200).
    pub max_history_messages: u64,
    /// `max_history_bytes`: most bytes of history a run gets (default 1 MiB).
    pub max_history_bytes: u64,
    /// `guest_cpus`: guests computing at once, users served in turn at each
    /// epoch tick; `None` (the default) is one fewer than the machine's
    /// cores, at least 1, which leaves a core to the host.
    pub guest_cpus: Option<u64>,
    /// `user_event_bytes_per_sec`: how fast one user's runs together may put
    /// events into the store, sustained; 0 is unlimited (default 16 MiB). A
    /// user's run over it waits (its guest paused) until the rate allows.
    pub user_event_bytes_per_sec: u64,
    /// `user_event_burst_bytes`: bytes of events a user may put at once
    /// after a quiet spell (default 16 MiB).
    pub user_event_burst_bytes: u64,
    /// `user_memory_growth_bytes_per_sec`: how fast one user's guests
    /// together may grow their linear memories once instantiated, sustained;
    /// 0 is unlimited (default 256 MiB). A guest that grows past it waits
    /// at its next epoch tick, holding no CPU slot.
    pub user_memory_growth_bytes_per_sec: u64,
    /// `user_memory_growth_burst_bytes`: growth a user may make at once
    /// after a quiet spell (default 256 MiB).
    pub user_memory_growth_burst_bytes: u64,
    /// `[limits.agent]`: default limits of agents (64 MiB, 60 s).
    pub agent: PluginLimits,
    /// `[limits.tool]`: default limits of tools (64 MiB, 10 s).
    pub tool: PluginLimits,
}

/// `[llm.NAME]`: an OpenAI-compatible endpoint.
#[derive(Clone, Debug)]
pub struct LlmProvider {
    /// `base_url`: e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// `api_key_env` / `api_key_file`: the API key, if the endpoint needs one.
    pub api_key: Option<Secret>,
    /// `models`: the models plugins may be granted.
    pub models: Vec<String>,
    /// `timeout`: one request's limit (default 60 s).
    pub timeout: Duration,
}

/// A directory a plugin may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileGrant {
    /// `host`: the directory on the host.
    pub host: PathBuf,
    /// `guest`: where the plugin sees it (an absolute path).
    pub guest: String,
    /// `mode = "rw"` (default `"ro"`).
    pub writable: bool,
}

/// `[plugin.NAME]`: what the operator grants one plugin.
#[derive(Clone, Debug)]
pub struct PluginConfig {
    /// `enabled` (default true).
    pub enabled: bool,
    /// `tools`: the tools an agent may call; `None` when not listed.
    pub tools: Option<BTreeSet<String>>,
    /// `llm`: `provider` or `provider/model` entries.
    pub llm: Vec<String>,
    /// `kv`: whether it gets key-value storage (default true).
    pub kv: bool,
    /// `network`: hosts it may reach over HTTP: `api.example.com`, `*.example.com`.
    pub network: Vec<String>,
    /// `files`: directories it may see.
    pub files: Vec<FileGrant>,
    /// `env`: environment variables it may read (their values are the host's).
    pub env: Vec<String>,
    /// `[plugin.NAME.config]`: values for its `config.get`.
    pub config: BTreeMap<String, String>,
    /// `[plugin.NAME.limits]`: its limits, over the defaults of its kind.
    pub limits: LimitOverrides,
}

impl Default for PluginConfig {
    /// A plugin without a `[plugin.NAME]` section: enabled, kv, nothing else.
    fn default() -> Self {
        Self {
            enabled: true,
            tools: None,
            llm: Vec::new(),
            kv: true,
            network: Vec::new(),
            files: Vec::new(),
            env: Vec::new(),
            config: BTreeMap::new(),
            limits: LimitOverrides::default(),
        }
    }
}

/// Per-plugin limits; unset ones come from `[limits.agent]` / `[limits.tool]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitOverrides {
    /// `memory`.
    pub memory: Option<u64>,
    /// `deadline`.
    pub deadline: Option<Duration>,
    /// `fuel`.
    pub fuel: Option<u64>,
    /// The budgets set here.
    pub budgets: BudgetOverrides,
}

impl LimitOverrides {
    /// These overrides over `defaults`.
    pub fn over(&self, defaults: PluginLimits) -> PluginLimits {
        PluginLimits {
            memory: self.memory.unwrap_or(defaults.memory),
            deadline: self.deadline.unwrap_or(defaults.deadline),
            fuel: self.fuel.or(defaults.fuel),
            budgets: self.budgets.over(defaults.budgets),
        }
    }
}

/// Environment lookups for secrets, injectable for tests.
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads `table` into a [`Config`], adding every problem to `report`.
/// `base` is the directory relative paths are resolved against.
pub(crate) fn resolve(table: &Table, base: &Path, env: Lookup<'_>, report: &mut Report) -> Config {
    let root = Section::root(table);
    let server = server(&root.table("server", report), base, report);
    let auth = auth(&root.table("auth", report), base, env, report);
    let store = store(&root.table("store", report), &server.data_dir, base, report);
    let plugins = plugins(&root.table("plugins", report), base, report);
    let limits = limits(&root.table("limits", report), report);
    let llm = llm(&root.table("llm", report), base, env, report);
    let plugin = plugin_grants(&root.table("plugin", report), base, &llm, report);
    let health = health(&root.table("health", report), report);
    let mcp = crate::mcp::mcp(&root.table("mcp", report), report);
    root.finish(report);
    Config {
        server,
        auth,
        store,
        plugins,
        limits,
        llm,
        plugin,
        health,
        mcp,
        file: None,
    }
}

fn health(s: &Section<'_>, report: &mut Report) -> Health {
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let interval = s
        .duration("interval", ms(10), secs(3600), report)
        .unwrap_or(Health::INTERVAL);
    let open_for = s
        .duration("open_for", ms(10), secs(3600), report)
        .unwrap_or(Health::OPEN_FOR);
    let max_open_for = s
        .duration("max_open_for", ms(10), secs(24 * 3600), report)
        .unwrap_or(Health::MAX_OPEN_FOR.max(open_for));
    if max_open_for < open_for {
        report.hint(
            &s.key_path("max_open_for"),
            "shorter than open_for",
            "the open period only grows: make max_open_for at least open_for",
        );
    }
    let g = s.table("golden_path", report);
    let golden_path = if g.names().is_empty() {
        g.finish(report);
        None
    } else {
        let agent = g.string("agent", report);
        if agent.is_none() {
            report.hint(
                &g.key_path("agent"),
                "missing",
                "name the agent the self-check runs, e.g. \"helper\"",
            );
        }
        let input = g.string("input", report);
        if input.as_deref().is_none_or(|i| i.trim().is_empty()) {
            report.hint(
                &g.key_path("input"),
                "missing or empty",
                "a request that makes the agent call a tool, e.g. \"what is 2+3*4\"",
            );
        }
        let expect = g.string("expect", report);
        let timeout = g
            .duration("timeout", ms(100), secs(3600), report)
            .unwrap_or(secs(30));
        g.finish(report);
        agent.zip(input).map(|(agent, input)| GoldenPath {
            agent,
            input,
            expect,
            timeout,
        })
    };
    let health = Health {
        interval,
        timeout: s
            .duration("timeout", ms(10), secs(600), report)
            .unwrap_or(Health::TIMEOUT),
        failure_threshold: s
            .integer("failure_threshold", 1, 1000, report)
            .map_or(Health::FAILURE_THRESHOLD, |n| {
                u32::try_from(n).unwrap_or(Health::FAILURE_THRESHOLD)
            }),
        open_for,
        max_open_for,
        start_attempts: s
            .integer("start_attempts", 1, 100, report)
            .map_or(Health::START_ATTEMPTS, |n| {
                u32::try_from(n).unwrap_or(Health::START_ATTEMPTS)
            }),
        golden_path,
    };
    s.finish(report);
    health
}

fn path(section: &Section<'_>, key: &str, base: &Path, report: &mut Report) -> Option<PathBuf> {
    let text = section.string(key, report)?;
    if text.trim().is_empty() {
        report.hint(
            &section.key_path(key),
            "empty path",
            "give a directory or file, relative to the config file or absolute",
        );
        return None;
    }
    Some(base.join(text))
}

fn server(s: &Section<'_>, base: &Path, report: &mut Report) -> Server {
    let listen = s
        .string("listen", report)
        .and_then(|text| match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                report.hint(
                    &s.key_path("listen"),
                    format!("{text:?} is not a socket address"),
                    "write IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\" (port 0-65535)",
                );
                None
            }
        });
    let data_dir = path(s, "data_dir", base, report).unwrap_or_else(|| base.join("netra-data"));
    let server = Server {
        listen: listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
        cache_dir: path(s, "cache_dir", base, report).unwrap_or_else(|| data_dir.join("cache")),
        data_dir,
        max_message_bytes: s
            .bytes("max_message_bytes", 1024, 16 * MIB, report)
            .unwrap_or(64 * 1024),
        send_queue: s.integer("send_queue", 16, 1 << 20, report).unwrap_or(1024),
        keepalive: s
            .duration(
                "keepalive",
                Duration::from_secs(1),
                Duration::from_secs(3600),
                report,
            )
            .unwrap_or(Duration::from_secs(30)),
        idle_timeout: s
            .duration(
                "idle_timeout",
                Duration::from_secs(1),
                Duration::from_secs(24 * 3600),
                report,
            )
            .unwrap_or(Duration::from_secs(600)),
        send_queue_bytes: s
            .bytes("send_queue_bytes", 64 * 1024, 1024 * MIB, report)
            .unwrap_or(16 * MIB),
        write_timeout: s
            .duration(
                "write_timeout",
                Duration::from_millis(100),
                Duration::from_secs(3600),
                report,
            )
            .unwrap_or(Duration::from_secs(30)),
        page_bytes: s.bytes("page_bytes", 1024, 64 * MIB, report).unwrap_or(MIB),
        header_read_timeout: s
            .duration(
                "header_read_timeout",
                Duration::from_millis(100),
                Duration::from_secs(600),
                report,
            )
            .unwrap_or(Duration::from_secs(10)),
        max_connections: s
            .integer("max_connections", 1, 10_000_000, report)
            .unwrap_or(10_000),
        max_sessions_per_user: s
            .integer("max_sessions_per_user", 1, 1_000_000, report)
            .unwrap_or(64),
        max_body_bytes: s
            .bytes("max_body_bytes", 1024, 1024 * MIB, report)
            .unwrap_or(MIB),
    };
    s.finish(report);
    server
}

/// A secret from `KEY_env` (a variable name) or `KEY_file` (a path), not both.
fn secret(
    s: &Section<'_>,
    key: &str,
    base: &Path,
    env: Lookup<'_>,
    report: &mut Report,
) -> Option<Secret> {
    let env_key = format!("{key}_env");
    let file_key = format!("{key}_file");
    let from_env = s.string(&env_key, report);
    let from_file = path(s, &file_key, base, report);
    if s.raw(key).is_some() {
        report.hint(
            &s.key_path(key),
            "secrets are not written in the config file",
            format!("name an environment variable with `{env_key}` or a file with `{file_key}`"),
        );
    }
    match (from_env, from_file) {
        (Some(_), Some(_)) => {
            report.hint(
                &s.key_path(&env_key),
                format!("both `{env_key}` and `{file_key}` are set"),
                "keep one",
            );
            None
        }
        (Some(var), None) => match env(&var) {
            Some(value) if !value.trim().is_empty() => Some(Secret::new(value.trim().to_string())),
            _ => {
                report.hint(
                    &s.key_path(&env_key),
                    format!("the environment variable {var} is not set or empty"),
                    format!("export {var}=... before starting netra"),
                );
                None
            }
        },
        (None, Some(file)) => match std::fs::read_to_string(&file) {
            Ok(value) if !value.trim().is_empty() => Some(Secret::new(value.trim().to_string())),
            Ok(_) => {
                report.add(
                    &s.key_path(&file_key),
                    format!("{} is empty", file.display()),
                );
                None
            }
            Err(err) => {
                report.add(
                    &s.key_path(&file_key),
                    format!("cannot read {}: {err}", file.display()),
                );
                None
            }
        },
        (None, None) => None,
    }
}

fn non_empty(s: &Section<'_>, key: &str, default: &str, report: &mut Report) -> String {
    match s.string(key, report) {
        Some(text) if text.trim().is_empty() => {
            report.add(&s.key_path(key), "must not be empty");
            default.to_string()
        }
        Some(text) => text,
        None => default.to_string(),
    }
}

fn paths(s: &Section<'_>, key: &str, base: &Path, report: &mut Report) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (i, text) in s
        .strings(key, report)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        if text.trim().is_empty() {
            report.add(&format!("{}[{i}]", s.key_path(key)), "empty path");
        } else {
            out.push(base.join(text));
        }
    }
    out
}

fn auth(s: &Section<'_>, base: &Path, env: Lookup<'_>, report: &mut Report) -> Auth {
    let auth = Auth {
        issuer: non_empty(s, "issuer", "netra", report),
        audience: non_empty(s, "audience", "netra", report),
        hs256_secret: secret(s, "hs256_secret", base, env, report),
        rs256_keys: paths(s, "rs256_keys", base, report),
        es256_keys: paths(s, "es256_keys", base, report),
        jwks_file: path(s, "jwks_file", base, report),
    };
    s.finish(report);
    auth
}

fn choice<T: Copy>(
    s: &Section<'_>,
    key: &str,
    options: &[(&str, T)],
    default: T,
    report: &mut Report,
) -> T {
    let Some(text) = s.string(key, report) else {
        return default;
    };
    match options.iter().find(|(name, _)| *name == text) {
        Some((_, value)) => *value,
        None => {
            let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
            report.hint(
                &s.key_path(key),
                format!("{text:?} is not one of the choices"),
                format!("use one of: {}", names.join(", ")),
            );
            default
        }
    }
}

fn store(s: &Section<'_>, data_dir: &Path, base: &Path, report: &mut Report) -> Store {
    let retention = s.duration(
        "event_retention",
        Duration::ZERO,
        Duration::from_secs(10 * 365 * 24 * 3600),
        report,
    );
    let store = Store {
        kind: choice(
            s,
            "kind",
            &[("sqlite", StoreKind::Sqlite), ("memory", StoreKind::Memory)],
            StoreKind::Sqlite,
            report,
        ),
        path: path(s, "path", base, report).unwrap_or_else(|| data_dir.join("netra.db")),
        durability: choice(
            s,
            "durability",
            &[
                ("process", Durability::Process),
                ("power_loss", Durability::PowerLoss),
            ],
            Durability::Process,
            report,
        ),
        event_retention: match retention {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(Duration::from_secs(30 * 24 * 3600)),
        },
    };
    s.finish(report);
    store
}

fn plugins(s: &Section<'_>, base: &Path, report: &mut Report) -> Plugins {
    let plugins = Plugins {
        dir: path(s, "dir", base, report).unwrap_or_else(|| base.join("plugins")),
        ungranted: choice(
            s,
            "ungranted",
            &[
                ("refuse", Ungranted::Refuse),
                ("degrade", Ungranted::Degrade),
            ],
            Ungranted::Refuse,
            report,
        ),
    };
    s.finish(report);
    plugins
}

const MEMORY_RANGE: (u64, u64) = (MIB, 4096 * MIB);
const DEADLINE_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(3600));

pub(crate) fn limit_overrides(s: &Section<'_>, report: &mut Report) -> LimitOverrides {
    let limits = LimitOverrides {
        memory: s.bytes("memory", MEMORY_RANGE.0, MEMORY_RANGE.1, report),
        deadline: s.duration("deadline", DEADLINE_RANGE.0, DEADLINE_RANGE.1, report),
        fuel: s.integer("fuel", 1, u64::MAX >> 1, report),
        budgets: BudgetOverrides::read(s, report),
    };
    s.finish(report);
    limits
}

fn limits(s: &Section<'_>, report: &mut Report) -> Limits {
    let max_runs = s.integer("max_runs", 1, 100_000, report).unwrap_or(256);
    let per_user = s
        .integer("max_runs_per_user", 1, 10_000, report)
        .unwrap_or(8);
    if per_user > max_runs {
        report.hint(
            &s.key_path("max_runs_per_user"),
            format!("{per_user} is more than max_runs ({max_runs})"),
            "one user cannot have more runs going than the whole host",
        );
    }
    let prepared_instances = s.integer("prepared_instances", 0, 64, report).unwrap_or(2);
    let max_history_messages = s
        .integer("max_history_messages", 0, 1_000_000, report)
        .unwrap_or(200);
    let max_history_bytes = s
        .bytes("max_history_bytes", 0, 1024 * MIB, report)
        .unwrap_or(MIB);
    let guest_cpus = s.integer("guest_cpus", 1, 4096, report);
    let user_event_bytes_per_sec = s
        .bytes("user_event_bytes_per_sec", 0, 1024 * 1024 * MIB, report)
        .unwrap_or(16 * MIB);
    let user_event_burst_bytes = s
        .bytes(
            "user_event_burst_bytes",
            64 * 1024,
            1024 * 1024 * MIB,
            report,
        )
        .unwrap_or(16 * MIB);
    let user_memory_growth_bytes_per_sec = s
        .bytes(
            "user_memory_growth_bytes_per_sec",
            0,
            1024 * 1024 * MIB,
            report,
        )
        .unwrap_or(256 * MIB);
    let user_memory_growth_burst_bytes = s
        .bytes(
            "user_memory_growth_burst_bytes",
            MIB,
            1024 * 1024 * MIB,
            report,
        )
        .unwrap_or(256 * MIB);
    let agent = limit_overrides(&s.table("agent", report), report).over(PluginLimits {
        memory: 64 * MIB,
        deadline: Duration::from_secs(60),
        fuel: None,
        budgets: Budgets::default(),
    });
    let tool = limit_overrides(&s.table("tool", report), report).over(PluginLimits {
        memory: 64 * MIB,
        deadline: Duration::from_secs(10),
        fuel: None,
        budgets: Budgets::default(),
    });
    s.finish(report);
    Limits {
        max_runs,
        max_runs_per_user: per_user,
        prepared_instances,
        max_history_messages,
        max_history_bytes,
        guest_cpus,
        user_event_bytes_per_sec,
        user_event_burst_bytes,
        user_memory_growth_bytes_per_sec,
        user_memory_growth_burst_bytes,
        agent,
        tool,
    }
}

fn llm(
    s: &Section<'_>,
    base: &Path,
    env: Lookup<'_>,
    report: &mut Report,
) -> BTreeMap<String, LlmProvider> {
    let mut providers = BTreeMap::new();
    for name in s.names() {
        let p = s.table(&name, report);
        let base_url = match p.string("base_url", report) {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => url,
            Some(url) => {
                report.hint(
                    &p.key_path("base_url"),
                    format!("{url:?} is not an http(s) URL"),
                    "e.g. \"https://api.openai.com/v1\" or \"http://127.0.0.1:11434/v1\"",
                );
                String::new()
            }
            None => {
                report.hint(
                    &p.key_path("base_url"),
                    "missing",
                    "every provider needs the URL of its OpenAI-compatible API",
                );
                String::new()
            }
        };
        let models = p.strings("models", report).unwrap_or_default();
        if models.is_empty() {
            report.hint(
                &p.key_path("models"),
                "no models listed",
                "list the models plugins may use, e.g. [\"gpt-4o-mini\"]",
            );
        }
        let provider = LlmProvider {
            base_url,
            api_key: secret(&p, "api_key", base, env, report),
            models,
            timeout: p
                .duration(
                    "timeout",
                    Duration::from_secs(1),
                    Duration::from_secs(3600),
                    report,
                )
                .unwrap_or(Duration::from_secs(60)),
        };
        p.finish(report);
        providers.insert(name, provider);
    }
    s.finish(report);
    providers
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

fn files(s: &Section<'_>, base: &Path, report: &mut Report) -> Vec<FileGrant> {
    let key = s.key_path("files");
    let Some(value) = s.raw("files") else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        report.hint(
            &key,
            "expected a list of tables",
            "files = [{ host = \"./data\", guest = \"/data\", mode = \"ro\" }]",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{key}[{i}]");
        let Value::Table(t) = item else {
            report.hint(
                &item_path,
                "expected a table",
                "{ host = \"./data\", guest = \"/data\", mode = \"ro\" }",
            );
            continue;
        };
        let get = |k: &str| t.get(k).and_then(Value::as_str);
        for k in t
            .keys()
            .filter(|k| !["host", "guest", "mode"].contains(&k.as_str()))
        {
            report.hint(
                &format!("{item_path}.{k}"),
                "unknown key",
                "use host, guest and mode",
            );
        }
        let host = match get("host") {
            Some(h) if !h.trim().is_empty() => Some(base.join(h)),
            _ => {
                report.add(&format!("{item_path}.host"), "empty path");
                None
            }
        };
        let guest = match get("guest") {
            Some(g) if g.starts_with('/') => Some(g.to_string()),
            _ => {
                report.hint(
                    &format!("{item_path}.guest"),
                    "must be an absolute path",
                    "where the plugin sees the directory, e.g. \"/data\"",
                );
                None
            }
        };
        let writable = match get("mode").unwrap_or("ro") {
            "ro" => false,
            "rw" => true,
            other => {
                report.hint(
                    &format!("{item_path}.mode"),
                    format!("{other:?} is not a mode"),
                    "use \"ro\" (read-only) or \"rw\" (read-write)",
                );
                false
            }
        };
        if let (Some(host), Some(guest)) = (host, guest) {
            out.push(FileGrant {
                host,
                guest,
                writable,
            });
        }
    }
    out
}

fn plugin_grants(
    s: &Section<'_>,
    base: &Path,
    llm: &BTreeMap<String, LlmProvider>,
    report: &mut Report,
) -> BTreeMap<String, PluginConfig> {
    let mut grants = BTreeMap::new();
    for name in s.names() {
        let p = s.table(&name, report);
        let tools = p.strings("tools", report).map(|tools| {
            for (i, tool) in tools.iter().enumerate() {
                if tool.trim().is_empty() {
                    report.add(&format!("{}[{i}]", p.key_path("tools")), "empty tool name");
                }
            }
            tools.into_iter().collect::<BTreeSet<_>>()
        });
        let llm_grants = p.strings("llm", report).unwrap_or_default();
        for (i, entry) in llm_grants.iter().enumerate() {
            let (provider, model) = match entry.split_once('/') {
                Some((provider, model)) => (provider, Some(model)),
                None => (entry.as_str(), None),
            };
            let here = format!("{}[{i}]", p.key_path("llm"));
            match llm.get(provider) {
                None => report.hint(
                    &here,
                    format!("no LLM provider {provider:?}"),
                    format!("define it under [llm.{provider}] or fix the name"),
                ),
                Some(found) => {
                    if let Some(model) = model
                        && !found.models.iter().any(|m| m == model)
                    {
                        report.hint(
                            &here,
                            format!("provider {provider:?} does not list model {model:?}"),
                            format!("add it to llm.{provider}.models"),
                        );
                    }
                }
            }
        }
        let network = p.strings("network", report).unwrap_or_default();
        for (i, host) in network.iter().enumerate() {
            if host.parse::<HostPattern>().is_err() {
                report.hint(
                    &format!("{}[{i}]", p.key_path("network")),
                    format!("{host:?} is not a host name or pattern"),
                    "write a host (\"api.example.com\"), a subdomain pattern (\"*.example.com\"), optionally with \":PORT\"; no scheme or path",
                );
            }
        }
        let env = p.strings("env", report).unwrap_or_default();
        for (i, var) in env.iter().enumerate() {
            if !is_env_name(var) {
                report.add(
                    &format!("{}[{i}]", p.key_path("env")),
                    format!("{var:?} is not an environment variable name"),
                );
            }
        }
        let config_section = p.table("config", report);
        let mut config = BTreeMap::new();
        for key in config_section.names() {
            if let Some(value) = config_section.string(&key, report) {
                config.insert(key, value);
            }
        }
        config_section.finish(report);
        let grant = PluginConfig {
            enabled: p.bool("enabled", report).unwrap_or(true),
            tools,
            llm: llm_grants,
            kv: p.bool("kv", report).unwrap_or(true),
            network,
            files: files(&p, base, report),
            env,
            config,
            limits: limit_overrides(&p.table("limits", report), report),
        };
        p.finish(report);
        grants.insert(name, grant);
    }
    s.finish(report);
    grants
}
