//! `cargo xtask`: netra's build steps that are not a plain `cargo build`.
//!
//! - `cargo xtask plugins`: build every plugin in `plugins/` for wasm32-wasip2
//!   and copy the examples to `target/plugins/NAME.wasm`.
//! - `cargo xtask test`: the whole test suite (what README.md and CI run).
//! - `cargo xtask demo`: build the plugins and show them working.
//! - `cargo xtask bench runtime`: the runtime benchmark (see BENCHMARKS.md).
//! - `cargo xtask ci`: formatting, lints, then the test suite.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, bail};
use serde_json::Value;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["plugins"] => plugins().map(|_| ()),
        ["test"] => test(),
        ["demo"] => demo(),
        ["bench", "runtime"] => bench_runtime(),
        ["bench", "server"] => bench_server(),
        ["bench", "breaker"] => bench_breaker(),
        ["ci"] => ci(),
        _ => {
            eprintln!(
                "usage: cargo xtask <command>\n\n\
                 commands:\n  \
                 plugins        build the plugins into target/plugins/, each with its manifest\n  \
                 test           run the whole test suite\n  \
                 demo           build the plugins and run the demo\n  \
                 bench runtime  benchmark fresh-instance calls (see BENCHMARKS.md)\n  \
                 bench server   loadgen against a release server (memory vs SQLite store), idle-session RSS\n  \
                 bench breaker  how fast a run fails while its model endpoint's breaker is open, beside a helper run\n  \
                 ci             fmt --check, clippy -D warnings, then test"
            );
            bail!("unknown or missing command: {args:?}");
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root());
    cmd
}

fn run(mut cmd: Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("failed to start {cmd:?}"))?;
    if !status.success() {
        bail!("command failed ({status}): {cmd:?}");
    }
    Ok(())
}

/// Builds every guest crate and copies the example plugins (not the test
/// fixtures) to `target/plugins/`. Returns the copied paths.
fn plugins() -> Result<Vec<PathBuf>> {
    let root = root();
    let guests = root.join("target").join("guests");
    let mut cmd = cargo();
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(root.join("plugins").join("Cargo.toml"))
    .arg("--target-dir")
    .arg(&guests);
    run(cmd)?;
    let built = guests.join("wasm32-wasip2").join("release");
    let out = root.join("target").join("plugins");
    std::fs::create_dir_all(&out)?;
    let mut copied = Vec::new();
    for name in example_plugins(&root.join("plugins"))? {
        let file = format!("{}.wasm", name.replace('-', "_"));
        let from = built.join(&file);
        let to = out.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        // Its manifest beside it: what it is and what it needs.
        let manifest = root.join("plugins").join(&name).join("plugin.toml");
        let to_manifest = out.join(format!("{name}.toml"));
        std::fs::copy(&manifest, &to_manifest).with_context(|| {
            format!(
                "copying {} to {}",
                manifest.display(),
                to_manifest.display()
            )
        })?;
        copied.push(to);
    }
    eprintln!("built {} plugins into {}", copied.len(), out.display());
    Ok(copied)
}

/// The package names of the example plugins: every crate directly under
/// `plugins/` (fixtures live in `plugins/fixtures/` and are not examples).
fn example_plugins(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let manifest = entry?.path().join("Cargo.toml");
        if !manifest.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest)?;
        let name = text
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once('=')?;
                (key.trim() == "name").then(|| value.trim().trim_matches('"').to_string())
            })
            .with_context(|| format!("no package name in {}", manifest.display()))?;
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn test() -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"]);
    run(cmd)?;
    // The plugins' own logic, compiled for the host.
    let mut cmd = cargo();
    cmd.args([
        "test",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--target-dir",
        "target/guests-host",
    ]);
    run(cmd)
}

/// Builds the plugins and the host, then serves the examples with
/// `examples/netra.toml` (127.0.0.1:8080, an embedded SQLite file in
/// ./netra-data), printing how to connect.
fn demo() -> Result<()> {
    plugins()?;
    let mut build = cargo();
    build.args(["build", "--package", "netra"]);
    run(build)?;
    let root = root();
    let netra = root.join("target").join("debug").join("netra");
    let mut serve = Command::new(&netra);
    serve
        .current_dir(&root)
        // examples/netra.toml: 127.0.0.1:8080, ./netra-data, target/plugins,
        // the grants of the examples and the golden-path self-check.
        .args(["serve", "--config"])
        .arg(root.join("examples").join("netra.toml"));
    eprintln!("\nStarting the demo server (Ctrl-C stops it). In another terminal:");
    eprintln!(
        "  {} chat --url ws://127.0.0.1:8080/v1/ws --agent helper --token \"$({} token --data-dir netra-data --sub you | tail -n1)\"\n",
        netra.display(),
        netra.display()
    );
    run(serve)
}

fn bench_runtime() -> Result<()> {
    plugins()?;
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "netra-runtime", "--bench", "runtime"]);
    run(cmd)
}

/// Starts a release `netra serve` on the example plugins and drives it with
/// `netra loadgen`: runs/s and latency at 100 sessions, then the server's RSS
/// per idle session with 10,000 idle sessions.
fn bench_server() -> Result<()> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    plugins()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "netra"]);
    run(build)?;
    let netra = root().join("target").join("release").join("netra");

    // Throughput with each store, alternating so drift hits both alike, at
    // the usual 100 sessions and at 200.
    let rounds: [(&str, usize, usize); 8] = [
        ("memory", 100, 200),
        ("sqlite", 100, 200),
        ("memory", 100, 200),
        ("sqlite", 100, 200),
        ("memory", 100, 200),
        ("sqlite", 100, 200),
        ("memory", 200, 100),
        ("sqlite", 200, 100),
    ];
    let mut figures: Vec<(&str, usize, Value)> = Vec::new();
    for (store, sessions, runs) in rounds {
        let server = BenchServer::start(&netra, store)?;
        let mut load = Command::new(&netra);
        load.args(["loadgen", "--url", &server.url, "--agent", "helper"])
            .args([
                "--input",
                "what is 2+3*4",
                "--sessions",
                &sessions.to_string(),
            ])
            .args(["--runs", &runs.to_string(), "--warmup", "5", "--json"])
            .arg("--data-dir")
            .arg(&server.data)
            .stderr(Stdio::inherit());
        eprintln!("$ {load:?}");
        let out = load.output().context("running loadgen")?;
        let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("loadgen printed {:?}", String::from_utf8_lossy(&out.stdout))
        })?;
        if report["ok"] != Value::Bool(true) {
            bail!("loadgen reported errors against the {store} store: {report}");
        }
        figures.push((store, sessions, report));
    }
    println!("\nstore    sessions   runs/s    p50 ms   p99 ms   (helper, `what is 2+3*4`)");
    for (store, sessions, report) in &figures {
        println!(
            "{store:<8} {sessions:>8} {:>8.0}  {:>7.2}  {:>7.2}",
            report["runs_per_sec"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
        );
    }
    for sessions in [100, 200] {
        let mean = |which: &str| {
            let rates: Vec<f64> = figures
                .iter()
                .filter(|(store, n, _)| *store == which && *n == sessions)
                .filter_map(|(_, _, report)| report["runs_per_sec"].as_f64())
                .collect();
            rates.iter().sum::<f64>() / rates.len().max(1) as f64
        };
        let (memory, sqlite) = (mean("memory"), mean("sqlite"));
        println!(
            "{sessions} sessions, mean: memory {memory:.0} runs/s, sqlite {sqlite:.0} runs/s: sqlite/memory = {:.2}x",
            sqlite / memory.max(1.0)
        );
    }

    // What an idle session costs, on the SQLite server.
    let server = BenchServer::start(&netra, "sqlite")?;
    let before = rss_kib(server.pid)?;
    let idle = 10_000;
    let mut holder = Command::new(&netra)
        .args(["loadgen", "--url", &server.url, "--idle", &idle.to_string()])
        .args(["--hold-secs", "30", "--data-dir"])
        .arg(&server.data)
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the idle sessions")?;
    // loadgen reports its progress on stderr.
    let holder_out = holder.stderr.take().context("loadgen stderr")?;
    let mut connected = false;
    for line in BufReader::new(holder_out).lines() {
        let line = line?;
        eprintln!("loadgen: {line}");
        if line.contains(&format!("connected {idle}")) {
            connected = true;
            break;
        }
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = rss_kib(server.pid)?;
    let _ = holder.kill();
    let _ = holder.wait();
    if !connected {
        bail!("the idle sessions did not all connect");
    }
    let per_session = (after.saturating_sub(before)) as f64 * 1024.0 / idle as f64;
    println!(
        "\nserver RSS: {before} KiB before, {after} KiB with {idle} idle sessions: {:.1} KiB per idle session",
        per_session / 1024.0
    );
    Ok(())
}

/// How fast runs fail while their model endpoint's circuit breaker is open:
/// `assistant` granted a provider on a closed port, measured with loadgen
/// (one session, so latency is the path itself) beside `helper` runs (a real
/// run with a tool call) on the same server in the same invocation.
fn bench_breaker() -> Result<()> {
    use std::io::{Read, Write};

    plugins()?;
    let mut build = cargo();
    build.args(["build", "--release", "--package", "netra"]);
    run(build)?;
    let root = root();
    let netra = root.join("target").join("release").join("netra");
    let dir = root.join("target").join("bench-breaker");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = {data:?}

[plugins]
dir = {plugins:?}

[llm.dead]
base_url = "http://127.0.0.1:{dead_port}/v1"
models = ["none"]

[health]
failure_threshold = 1
start_attempts = 1
open_for = "1h"
max_open_for = "1h"

[plugin.assistant]
tools = ["calculate"]
llm = ["dead"]

[plugin.helper]
tools = ["calculate", "now", "slugify", "text_stats", "note_save", "note_list", "note_get", "note_delete"]
"#,
        data = dir.join("data").display().to_string(),
        plugins = root.join("target").join("plugins").display().to_string(),
    );
    let file = dir.join("netra.toml");
    std::fs::write(&file, config)?;
    let mut server = BenchServer::spawn(
        Command::new(&netra).arg("serve").arg("--config").arg(&file),
        dir.join("data"),
        "breaker",
    )?;
    // Wait for the start check to open the breaker.
    let http = server
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/v1/ws")
        .to_string();
    let started = std::time::Instant::now();
    loop {
        let mut stream = std::net::TcpStream::connect(&http)?;
        write!(
            stream,
            "GET /readyz HTTP/1.1\r\nHost: netra\r\nConnection: close\r\n\r\n"
        )?;
        let mut body = String::new();
        stream.read_to_string(&mut body)?;
        if body.contains("\"state\":\"open\"") {
            break;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            bail!("the breaker did not open: {body}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut figures = Vec::new();
    for (agent, input) in [("assistant", "what is 2+3*4"), ("helper", "what is 2+3*4")] {
        let mut load = Command::new(&netra);
        load.args(["loadgen", "--url", &server.url, "--agent", agent])
            .args(["--input", input, "--sessions", "1", "--runs", "500"])
            .args(["--warmup", "20", "--json", "--data-dir"])
            .arg(&server.data);
        eprintln!("$ {load:?}");
        let out = load.output().context("running loadgen")?;
        let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("loadgen printed {:?}", String::from_utf8_lossy(&out.stdout))
        })?;
        figures.push((agent, report));
    }
    server.stop();
    println!("\nagent       p50 ms   p99 ms   completed  agent_error codes");
    for (agent, report) in &figures {
        println!(
            "{agent:<10} {:>7.3}  {:>7.3}  {:>9}  {}",
            report["latency_ms"]["p50"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
            report["runs"],
            report["error_codes"],
        );
    }
    let p50 = |i: usize| figures[i].1["latency_ms"]["p50"].as_f64().unwrap_or(0.0);
    println!(
        "fail-fast (assistant, breaker open) / helper run p50 = {:.2}x",
        p50(0) / p50(1).max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// A release `netra serve` on a fresh data dir, killed when dropped.
struct BenchServer {
    child: Child,
    pid: u32,
    url: String,
    data: PathBuf,
}

impl BenchServer {
    fn start(netra: &Path, store: &str) -> Result<Self> {
        let root = root();
        let data = root.join("target").join(format!("bench-data-{store}"));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        let mut command = Command::new(netra);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--max-runs", "1024"])
            .args(["--store", store, "--data-dir"])
            .arg(&data)
            .arg("--plugins")
            .arg(root.join("target").join("plugins"));
        Self::spawn(&mut command, data, store)
    }

    /// Starts `command` (a `netra serve`) whose data dir is `data`.
    fn spawn(command: &mut Command, data: PathBuf, what: &str) -> Result<Self> {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;

        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .context("starting netra serve")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("server stdout")?;
        let mut server = Self {
            child,
            pid,
            url: String::new(),
            data,
        };
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .context("the server exited before listening")??;
            if let Some(rest) = line.strip_prefix("netra listening on http://") {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
        };
        // Keep draining the server's stdout so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        server.url = format!("ws://{addr}/v1/ws");
        eprintln!("server pid {pid} ({what}) on {}", server.url);
        Ok(server)
    }
}

impl BenchServer {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident set size of a process, from /proc.
fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc status")
}

fn ci() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run(fmt)?;
    let mut fmt_plugins = cargo();
    fmt_plugins.args([
        "fmt",
        "--all",
        "--check",
        "--manifest-path",
        "plugins/Cargo.toml",
    ]);
    run(fmt_plugins)?;
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;
    let mut clippy_plugins = cargo();
    clippy_plugins.args([
        "clippy",
        "--manifest-path",
        "plugins/Cargo.toml",
        "--target",
        "wasm32-wasip2",
        "--target-dir",
        "target/guests",
        "--release",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy_plugins)?;
    test()
}
