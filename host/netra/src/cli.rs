//! Command-line arguments and the commands they run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use netra_runtime::{
    DirGrant, InvokeError, Limits, PluginSettings, RunContext, Runtime, RuntimeConfig, Sandbox,
    World,
};

/// netra: a host for AI agents and tools that run as sandboxed WebAssembly components.
#[derive(Parser, Debug)]
#[command(name = "netra", version, about)]
pub struct Cli {
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// Where compiled components are cached [default: $NETRA_CACHE_DIR, else
    /// $XDG_CACHE_HOME/netra, else ~/.cache/netra].
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Work with plugin components.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Call tools without a server.
    #[command(subcommand)]
    Tool(ToolCommand),
    /// Serve agents and tools over WebSocket (and MCP on /mcp).
    Serve(crate::serve::ServeArgs),
    /// Serve the tools (and chosen agents) to one local MCP client over stdio.
    Mcp(crate::mcp::McpArgs),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a signed dev-mode token (the last line of the output).
    Token(crate::serve::TokenArgs),
    /// Chat with an agent on a running host, showing its events as they stream.
    Chat(crate::client::chat::ChatArgs),
    /// Load a running host with concurrent sessions and check every event.
    Loadgen(crate::client::loadgen::LoadgenArgs),
    /// Manage the plugins of a running host through its admin HTTP API.
    Admin(crate::admin::AdminArgs),
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check a configuration (with its NETRA_* overrides) and print every
    /// problem, each with its key path and a hint; exits non-zero on any.
    Check {
        /// The file [default: $NETRA_CONFIG, else ./netra.toml if it exists].
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PluginCommand {
    /// Print a component's world, imports, exports and tool descriptors.
    Inspect {
        /// The component (.wasm).
        file: PathBuf,
    },
    /// Create a tool plugin (Rust, Python or JavaScript) that builds and
    /// answers `greet` out of the box.
    New(crate::scaffold::NewArgs),
    /// Build a plugin directory into NAME.wasm, its manifest beside it.
    Build(crate::scaffold::BuildArgs),
}

#[derive(Subcommand, Debug)]
pub enum ToolCommand {
    /// Call one tool of a plugin in a fresh instance and print its JSON result.
    Call {
        /// The component (.wasm).
        file: PathBuf,
        /// The tool's name.
        tool: String,
        /// The arguments, a JSON object.
        #[arg(default_value = "{}")]
        arguments: String,
        /// Wall-clock limit for the call, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        deadline_ms: u64,
        /// Memory limit, in MiB.
        #[arg(long, default_value_t = 64)]
        memory_mib: usize,
        /// Fuel limit (turns on fuel metering).
        #[arg(long)]
        fuel: Option<u64>,
        /// A config value the plugin can read, as KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        config: Vec<String>,
        /// The user id the call is made for.
        #[arg(long, default_value = "cli")]
        user: String,
        /// Let the plugin see a host directory, as HOST:GUEST (read-only) or
        /// HOST:GUEST:rw (repeatable); as `files` in a `[plugin.NAME]` grant.
        #[arg(long = "dir", value_name = "HOST:GUEST[:rw]")]
        dirs: Vec<String>,
        /// Let the plugin read this environment variable of the host
        /// (repeatable); as `env` in a `[plugin.NAME]` grant.
        #[arg(long = "env", value_name = "NAME")]
        env: Vec<String>,
        /// Let the plugin send HTTP requests (wasi:http) to hosts matching
        /// this pattern: `api.example.com`, `*.example.com`, optionally with
        /// `:PORT` (repeatable); as `network` in a `[plugin.NAME]` grant.
        #[arg(long = "allow-host", value_name = "PATTERN")]
        allow_hosts: Vec<String>,
        /// Time the call: make it N more times, one after another, each in a
        /// fresh instance, and print calls/s, p50 and p99 (JSON) instead of
        /// the result.
        #[arg(long, value_name = "N")]
        repeat: Option<u64>,
    },
}

/// `netra config check`.
fn check_config(file: Option<&Path>) -> ExitCode {
    let shown = file
        .map(Path::to_path_buf)
        .or_else(netra_config::default_file)
        .map_or_else(
            || "built-in defaults".to_string(),
            |f| f.display().to_string(),
        );
    match netra_config::load(file) {
        Ok(config) => {
            println!("{shown}: ok");
            println!("  listen   {}", config.server.listen);
            println!("  data     {}", config.server.data_dir.display());
            println!("  plugins  {}", config.plugins.dir.display());
            let store = match config.store.kind {
                netra_config::StoreKind::Sqlite => config.store.path.display().to_string(),
                netra_config::StoreKind::Memory => "memory".to_string(),
            };
            println!("  store    {store}");
            let auth = if config.auth.is_dev() {
                "dev mode"
            } else {
                "JWT keys configured"
            };
            println!("  auth     {auth}");
            println!(
                "  {} LLM provider(s), {} plugin section(s)",
                config.llm.len(),
                config.plugin.len()
            );
            // The plugins as the manifests and grants decide, before any loads.
            if crate::serve::check_plugins(&config) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(problems) => {
            print!("{shown}: {problems}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the parsed command; errors are printed here.
pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let cache_dir = cli.cache_dir.or_else(default_cache_dir);
    match cli.command {
        Command::Serve(args) => crate::serve::serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Mcp(args) => crate::mcp::mcp(args).await.map(|()| ExitCode::SUCCESS),
        Command::Token(args) => crate::serve::token(args).map(|()| ExitCode::SUCCESS),
        Command::Config(ConfigCommand::Check { config }) => Ok(check_config(config.as_deref())),
        Command::Chat(args) => crate::client::chat::chat(args).await,
        Command::Loadgen(args) => crate::client::loadgen::loadgen(args).await,
        Command::Admin(args) => crate::admin::admin(args).await,
        Command::Plugin(PluginCommand::New(args)) => crate::scaffold::new(args),
        Command::Plugin(PluginCommand::Build(args)) => crate::scaffold::build(args),
        Command::Plugin(PluginCommand::Inspect { file }) => {
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir,
                ..RuntimeConfig::default()
            })?;
            inspect(&runtime, &file).await
        }
        Command::Tool(ToolCommand::Call {
            file,
            tool,
            arguments,
            deadline_ms,
            memory_mib,
            fuel,
            config,
            user,
            dirs,
            env,
            allow_hosts,
            repeat,
        }) => {
            let limits = Limits {
                memory_bytes: memory_mib.saturating_mul(1 << 20),
                deadline: Duration::from_millis(deadline_ms),
                fuel,
                ..Limits::default()
            };
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir,
                fuel: fuel.is_some(),
                max_instances: 16,
                max_memory_bytes: limits.memory_bytes.max(1 << 20),
                ..RuntimeConfig::default()
            })?;
            let mut settings = PluginSettings::new(plugin_name(&file));
            settings.limits = Some(limits);
            for pair in config {
                let (key, value) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--config expects KEY=VALUE, got {pair:?}"))?;
                settings.config.insert(key.to_string(), value.to_string());
            }
            settings.kv = Some(std::sync::Arc::new(netra_runtime::MemoryKv::default()));
            settings.sandbox = sandbox(&dirs, &env, allow_hosts)?;
            let call_once = Call {
                tool: &tool,
                arguments: &arguments,
                user: &user,
                repeat,
            };
            call(&runtime, &file, settings, call_once).await
        }
    }
}

/// `--dir`, `--env` and `--allow-host` as a sandbox grant. Host patterns are
/// checked when the plugin loads.
fn sandbox(dirs: &[String], env: &[String], hosts: Vec<String>) -> anyhow::Result<Sandbox> {
    let mut sandbox = Sandbox {
        network: hosts,
        ..Sandbox::default()
    };
    for spec in dirs {
        let (spec, writable) = match spec.strip_suffix(":rw") {
            Some(rest) => (rest, true),
            None => (spec.strip_suffix(":ro").unwrap_or(spec), false),
        };
        let (host, guest) = spec
            .rsplit_once(':')
            .filter(|(host, guest)| !host.is_empty() && guest.starts_with('/'))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--dir expects HOST:GUEST[:rw] with an absolute GUEST, got {spec:?}"
                )
            })?;
        sandbox.dirs.push(DirGrant {
            host: PathBuf::from(host),
            guest: guest.to_string(),
            writable,
        });
    }
    for name in env {
        match std::env::var(name) {
            Ok(value) => sandbox.env.push((name.clone(), value)),
            Err(_) => eprintln!("warning: --env {name}: not set here; the plugin will not see it"),
        }
    }
    Ok(sandbox)
}

async fn inspect(runtime: &Runtime, file: &Path) -> anyhow::Result<ExitCode> {
    let wasm = read(file)?;
    let info = runtime.inspect(wasm).await?;
    println!("file:    {}", file.display());
    println!("sha256:  {}", info.digest);
    match info.world {
        Some(world) => println!("world:   {}", world.wit_name()),
        None => println!("world:   none (exports no netra:plugin interface)"),
    }
    println!("imports:");
    for name in &info.imports {
        println!("  {name}");
    }
    let gaps = netra_runtime::capability_gaps(&info.imports, &Sandbox::default());
    if !gaps.is_empty() {
        println!("with nothing granted, it:");
        for gap in &gaps {
            println!("  {gap}");
        }
    }
    println!("exports:");
    for name in &info.exports {
        println!("  {name}");
    }
    if let Some(agent) = &info.agent {
        println!("agent:");
        println!("  {}: {}", agent.name, agent.description);
    }
    if info.world == Some(World::Tool) {
        println!("tools:");
        for tool in &info.tools {
            println!("  {}: {}", tool.name, tool.description);
            println!("    input schema:  {}", compact(&tool.input_schema));
            if let Some(output) = &tool.output_schema {
                println!("    output schema: {}", compact(output));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One `netra tool call`.
struct Call<'a> {
    tool: &'a str,
    arguments: &'a str,
    user: &'a str,
    /// Timed calls after the first one.
    repeat: Option<u64>,
}

async fn call(
    runtime: &Runtime,
    file: &Path,
    settings: PluginSettings,
    call: Call<'_>,
) -> anyhow::Result<ExitCode> {
    let Call {
        tool,
        arguments,
        user,
        repeat,
    } = call;
    if let Err(err) = serde_json::from_str::<serde_json::Value>(arguments) {
        eprintln!("error: the arguments are not valid JSON: {err}");
        return Ok(ExitCode::from(2));
    }
    let wasm = read(file)?;
    let plugin = runtime.load_tool(wasm, settings).await?;
    if !plugin.tools().iter().any(|t| t.name == tool) {
        let names: Vec<_> = plugin.tools().iter().map(|t| t.name.as_str()).collect();
        eprintln!(
            "error: {} has no tool {tool:?}; it has: {}",
            file.display(),
            names.join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let ctx = RunContext {
        user_id: user.to_string(),
        thread_id: "cli".to_string(),
        run_id: "cli".to_string(),
    };
    match plugin.call(ctx.clone(), tool, arguments).await {
        Ok(_) if repeat.is_some() => {
            let n = repeat.unwrap_or(0).max(1);
            let mut micros = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            let started = std::time::Instant::now();
            for _ in 0..n {
                let one = std::time::Instant::now();
                plugin.call(ctx.clone(), tool, arguments).await?;
                micros.push(one.elapsed().as_secs_f64() * 1e6);
            }
            let elapsed = started.elapsed().as_secs_f64();
            micros.sort_by(f64::total_cmp);
            let at = |q: f64| micros[((micros.len() as f64 - 1.0) * q).round() as usize];
            let report = serde_json::json!({
                "calls": n,
                "calls_per_sec": n as f64 / elapsed,
                "p50_us": at(0.5),
                "p99_us": at(0.99),
            });
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(json) => {
            println!("{}", pretty(&json));
            Ok(ExitCode::SUCCESS)
        }
        Err(err @ InvokeError::Tool(_)) => {
            eprintln!("error: {tool}: {err}");
            Ok(ExitCode::FAILURE)
        }
        Err(err) => {
            eprintln!("error: {tool}: {} ({})", err, err.code());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read(file: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))
}

fn plugin_name(file: &Path) -> String {
    file.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".to_string())
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NETRA_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("netra"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("netra"))
}

/// Pretty-prints JSON objects and arrays; scalars print as they are.
fn pretty(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(value @ (serde_json::Value::Object(_) | serde_json::Value::Array(_))) => {
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| json.to_string())
        }
        _ => json.to_string(),
    }
}

fn compact(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(value) => value.to_string(),
        Err(_) => json.to_string(),
    }
}
