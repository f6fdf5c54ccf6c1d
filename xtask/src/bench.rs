//! `cargo xtask bench runtime|server|breaker|swap|start`, and what the
//! benches share: a release `netra serve` (`BenchServer`), its RSS, a raw
//! HTTP request for the admin API.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::{cargo, plugins, release_netra, root, run};

pub(crate) fn bench_runtime() -> Result<()> {
    plugins()?;
    let mut cmd = cargo();
    cmd.args(["bench", "--package", "netra-runtime", "--bench", "runtime"]);
    run(cmd)
}

/// Starts a release `netra serve` on the example plugins and drives it with
/// `netra loadgen`: runs/s and latency at 100 sessions, then the server's RSS
/// per idle session with 10,000 idle sessions.
pub(crate) fn bench_server() -> Result<()> {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let netra = release_netra()?;

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
pub(crate) fn bench_breaker() -> Result<()> {
    let netra = release_netra()?;
    let root = root();
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
        let body = netra_tests::http::request(&http, "GET", "/readyz", &[], b"")?.text();
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

/// Hot-loading under load: a release `netra serve` on a copy of the example
/// plugins with a second version of `helper` (0.2.0) uploaded beside 0.1.0.
/// loadgen's throughput and latency without swaps, then with 10 activations
/// during the run; then the latency of 20 rollbacks through the admin API and
/// of 10 drop-ins into the watched plugins dir.
pub(crate) fn bench_swap() -> Result<()> {
    use std::time::{Duration, Instant};

    const SESSIONS: usize = 20;
    const SWAPS: u32 = 10;
    const SWAP_EVERY: Duration = Duration::from_millis(200);
    /// How long after loadgen starts the first activation is sent (it has
    /// connected and warmed up by then).
    const SWAPS_AFTER: Duration = Duration::from_millis(500);
    /// How long the measured loadgen runs should last, so that every
    /// activation lands inside them with room to spare.
    const LOAD_SECS: f64 = 6.0;
    /// Rounds of loadgen without swaps and with them, alternating.
    const ROUNDS: usize = 3;
    const ROLLBACKS: usize = 20;
    const DROP_INS: usize = 10;

    let netra = release_netra()?;
    let root = root();
    let target = root.join("target");

    // A fresh copy of the example plugins, which the server watches.
    let dir = target.join("bench-swap");
    let _ = std::fs::remove_dir_all(&dir);
    let plugins_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    for entry in std::fs::read_dir(target.join("plugins"))? {
        let from = entry?.path();
        if let (true, Some(name)) = (from.is_file(), from.file_name()) {
            std::fs::copy(&from, plugins_dir.join(name))
                .with_context(|| format!("copying {}", from.display()))?;
        }
    }
    // The two versions of helper: the example (0.1.0) and the same source
    // built as 0.2.0, with the example's manifest saying so.
    let v1 = (
        std::fs::read(target.join("plugins").join("helper.wasm"))?,
        std::fs::read_to_string(target.join("plugins").join("helper.toml"))?,
    );
    let manifest2 = v1.1.replace("version = \"0.1.0\"", "version = \"0.2.0\"");
    if manifest2 == v1.1 {
        bail!("target/plugins/helper.toml does not say version = \"0.1.0\"");
    }
    let wasm2 = target
        .join("guests")
        .join("wasm32-wasip2")
        .join("release")
        .join("fixture_helper_next.wasm");
    let v2 = (
        std::fs::read(&wasm2).with_context(|| format!("reading {}", wasm2.display()))?,
        manifest2,
    );
    let next = dir.join("next");
    std::fs::create_dir_all(&next)?;
    std::fs::write(next.join("helper.wasm"), &v2.0)?;
    std::fs::write(next.join("helper.toml"), &v2.1)?;

    let server = BenchServer::start_on(&netra, "memory", &plugins_dir, dir.join("data"))?;
    let addr = server.http_addr().to_string();
    let out = Command::new(&netra)
        .args(["token", "--sub", "ops", "--role", "admin", "--data-dir"])
        .arg(&server.data)
        .output()
        .context("running netra token")?;
    if !out.status.success() {
        bail!(
            "netra token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .context("netra token printed nothing")?
        .trim()
        .to_string();
    let mut upload = Command::new(&netra);
    upload
        .args([
            "admin",
            "--url",
            &format!("http://{addr}"),
            "--token",
            &token,
        ])
        .args(["upload", "helper", "--no-activate", "--wasm"])
        .arg(next.join("helper.wasm"))
        .arg("--manifest")
        .arg(next.join("helper.toml"));
    run(upload)?;

    const INFO: &str = "/v1/admin/plugins/helper";
    let active = |what: &str| -> Result<(String, String)> {
        let (status, body) = http(&addr, "GET", INFO, &token, None)?;
        if status != 200 {
            bail!("{what}: GET {INFO} answered {status}: {body}");
        }
        Ok((
            body["active"]["digest"].as_str().unwrap_or_default().into(),
            body["active"]["version"]
                .as_str()
                .unwrap_or_default()
                .into(),
        ))
    };
    let (status, info) = http(&addr, "GET", INFO, &token, None)?;
    if status != 200 {
        bail!("GET {INFO} answered {status}: {info}");
    }
    let digest_of = |version: &str| -> Result<String> {
        let versions = info["versions"].as_array().map(Vec::as_slice);
        versions
            .unwrap_or_default()
            .iter()
            .find(|v| v["version"] == version)
            .and_then(|v| v["digest"].as_str())
            .map(str::to_string)
            .with_context(|| format!("helper has no version {version}: {info}"))
    };
    let (d1, d2) = (digest_of("0.1.0")?, digest_of("0.2.0")?);
    if active("after the upload")?.0 != d1 {
        bail!("helper 0.1.0 is not the active version after the upload: {info}");
    }
    eprintln!("helper 0.1.0 = {d1}\nhelper 0.2.0 = {d2}");

    // Every run must complete and loadgen must see no error at all; the
    // `plugins.changed` notices the sessions get are counted, not errors.
    let loadgen = |runs: usize| -> Result<Value> {
        let mut load = Command::new(&netra);
        load.args(["loadgen", "--url", &server.url, "--agent", "helper"])
            .args(["--input", "what is 2+3*4"])
            .args(["--sessions", &SESSIONS.to_string()])
            .args(["--runs", &runs.to_string(), "--warmup", "5", "--json"])
            .arg("--data-dir")
            .arg(&server.data);
        eprintln!("$ {load:?}");
        let out = load.output().context("running loadgen")?;
        let report: Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!("loadgen printed {:?}", String::from_utf8_lossy(&out.stdout))
        })?;
        if report["ok"] != Value::Bool(true)
            || report["runs"].as_u64() != Some((SESSIONS * runs) as u64)
        {
            bail!("loadgen reported failed runs: {report}");
        }
        Ok(report)
    };

    // Size the runs so one loadgen lasts about LOAD_SECS on this machine.
    let probe = loadgen(500)?;
    let rate = probe["runs_per_sec"].as_f64().unwrap_or(0.0);
    let runs =
        ((rate * LOAD_SECS / SESSIONS as f64 / 100.0).round() as usize * 100).clamp(1_000, 100_000);
    eprintln!("probe: {rate:.0} runs/s; measuring {SESSIONS} sessions x {runs} runs");

    // The same load while another thread activates 0.2.0 and 0.1.0 in turn.
    struct Swap {
        version: &'static str,
        sent: Instant,
        done: Instant,
        status: u16,
        body: Value,
    }
    let swapped_round = || -> Result<(Value, Vec<f64>)> {
        let (swapped, swaps, exited) = std::thread::scope(|scope| -> Result<_> {
            let swapper = scope.spawn(|| -> Result<Vec<Swap>> {
                std::thread::sleep(SWAPS_AFTER);
                let start = Instant::now();
                let mut swaps = Vec::new();
                for i in 0..SWAPS {
                    let at = start + SWAP_EVERY * i;
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    let version = if i % 2 == 0 { "0.2.0" } else { "0.1.0" };
                    let body = serde_json::json!({ "version": version });
                    let sent = Instant::now();
                    let (status, body) = http(
                        &addr,
                        "POST",
                        &format!("{INFO}/activate"),
                        &token,
                        Some(&body),
                    )?;
                    swaps.push(Swap {
                        version,
                        sent,
                        done: Instant::now(),
                        status,
                        body,
                    });
                }
                Ok(swaps)
            });
            let report = loadgen(runs);
            let exited = Instant::now();
            let swaps = swapper
                .join()
                .map_err(|_| anyhow::anyhow!("the swap thread panicked"))?;
            Ok((report?, swaps?, exited))
        })?;
        for swap in &swaps {
            if swap.status != 200 || swap.body["active"]["version"] != swap.version {
                bail!(
                    "activating {} answered {}: {}",
                    swap.version,
                    swap.status,
                    swap.body
                );
            }
        }
        // loadgen's measured phase ended before it exited and began wall_secs
        // before that end: every activation must fall inside it.
        let wall = Duration::from_secs_f64(swapped["wall_secs"].as_f64().unwrap_or(0.0));
        let (first, last) = (&swaps[0], &swaps[swaps.len() - 1]);
        if first.sent < exited.checked_sub(wall).unwrap_or(exited)
            || last.done + Duration::from_millis(500) > exited
        {
            bail!(
                "the activations did not all fall within loadgen's measured runs \
                 (first sent {:?} after loadgen started measuring at the latest; last done {:?} before it exited)",
                exited
                    .checked_sub(wall)
                    .and_then(|start| first.sent.checked_duration_since(start)),
                exited.checked_duration_since(last.done),
            );
        }
        let activate_ms = swaps
            .iter()
            .map(|s| (s.done - s.sent).as_secs_f64() * 1000.0)
            .collect();
        Ok((swapped, activate_ms))
    };

    // Rounds without and with swaps in turn, so the machine's drift (the
    // load generator shares its cores) hits both alike.
    let mut baselines = Vec::new();
    let mut swapped = Vec::new();
    let mut activate_ms = Vec::new();
    for _ in 0..ROUNDS {
        baselines.push(loadgen(runs)?);
        let (report, times) = swapped_round()?;
        let times_ms: Vec<String> = times.iter().map(|ms| format!("{ms:.1}")).collect();
        eprintln!("activations (ms): {}", times_ms.join(" "));
        swapped.push(report);
        activate_ms.extend(times);
    }

    // Rollbacks: each answers once the version before is active again.
    let mut rollback_ms = Vec::new();
    for i in 0..ROLLBACKS {
        let (before, _) = active("before a rollback")?;
        let sent = Instant::now();
        let (status, body) = http(&addr, "POST", &format!("{INFO}/rollback"), &token, None)?;
        let took = sent.elapsed();
        let now = body["active"]["digest"].as_str().unwrap_or_default();
        if status != 200 || now == before {
            bail!("rollback {i} answered {status}: {body}");
        }
        let (after, _) = active("after a rollback")?;
        if after != now {
            bail!("rollback {i} answered {now} active, but {after} is");
        }
        rollback_ms.push(took.as_secs_f64() * 1000.0);
    }

    // Drop-ins: the other version's files renamed into the watched dir,
    // manifest first, timed from the component's rename until it is active.
    let mut drop_in_ms = Vec::new();
    for i in 0..DROP_INS {
        let (before, _) = active("before a drop-in")?;
        let (files, expect) = if before == d1 { (&v2, &d2) } else { (&v1, &d1) };
        let place = |name: &str, bytes: &[u8]| -> Result<()> {
            let temp = plugins_dir.join(format!(".{name}.partial"));
            std::fs::write(&temp, bytes)?;
            std::fs::rename(&temp, plugins_dir.join(name))?;
            Ok(())
        };
        place("helper.toml", files.1.as_bytes())?;
        let temp = plugins_dir.join(".helper.wasm.partial");
        std::fs::write(&temp, &files.0)?;
        std::fs::rename(&temp, plugins_dir.join("helper.wasm"))?;
        let renamed = Instant::now();
        loop {
            let (now, _) = active("after a drop-in")?;
            if now == *expect {
                break;
            }
            if now != before {
                eprintln!("drop-in {i}: {now} became active on the way to {expect}");
            }
            if renamed.elapsed() > Duration::from_secs(10) {
                bail!("drop-in {i}: {expect} was not active 10 s after the rename");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        drop_in_ms.push(renamed.elapsed().as_secs_f64() * 1000.0);
    }
    drop(server);

    let figure = |report: &Value, path: &str| {
        path.split('.')
            .fold(report, |value, key| &value[key])
            .as_f64()
            .unwrap_or(0.0)
    };
    println!(
        "\nhelper, `what is 2+3*4`, {SESSIONS} sessions x {runs} runs, {SWAPS} activations per swap round\n\
         load          round   runs/s    p50 ms   p99 ms   wall s"
    );
    for round in 0..ROUNDS {
        for (what, report) in [
            ("baseline", &baselines[round]),
            ("under swaps", &swapped[round]),
        ] {
            println!(
                "{what:<12} {:>6} {:>8.0}  {:>7.2}  {:>7.2}  {:>6.2}",
                round + 1,
                figure(report, "runs_per_sec"),
                figure(report, "latency_ms.p50"),
                figure(report, "latency_ms.p99"),
                figure(report, "wall_secs"),
            );
        }
    }
    let mean = |reports: &[Value], path: &str| {
        reports.iter().map(|r| figure(r, path)).sum::<f64>() / reports.len().max(1) as f64
    };
    println!("means:");
    for (what, reports) in [("baseline", &baselines), ("under swaps", &swapped)] {
        println!(
            "{what:<12} {:>6} {:>8.0}  {:>7.2}  {:>7.2}",
            "",
            mean(reports, "runs_per_sec"),
            mean(reports, "latency_ms.p50"),
            mean(reports, "latency_ms.p99"),
        );
    }
    let ratio = |path: &str| mean(&swapped, path) / mean(&baselines, path).max(f64::MIN_POSITIVE);
    println!(
        "under swaps / baseline (means): runs/s {:.2}x, p50 {:.2}x, p99 {:.2}x",
        ratio("runs_per_sec"),
        ratio("latency_ms.p50"),
        ratio("latency_ms.p99"),
    );
    let notices: u64 = swapped.iter().filter_map(|r| r["notices"].as_u64()).sum();
    let completed: u64 = swapped.iter().filter_map(|r| r["runs"].as_u64()).sum();
    println!(
        "under swaps: {} activations, all 200, all within loadgen's measured runs; \
         {completed} runs completed, loadgen ok (0 errors of any kind); \
         the sessions got {notices} `plugins.changed` notices",
        activate_ms.len()
    );
    println!("\nswap            count   p50 ms   max ms");
    for (what, times) in [
        ("activate (load)", &activate_ms),
        ("rollback", &rollback_ms),
        ("drop-in", &drop_in_ms),
    ] {
        let (p50, max) = p50_max(times);
        println!("{what:<15} {:>5}  {p50:>7.2}  {max:>7.2}", times.len());
    }
    println!("targets: rollback and drop-in <= 1000 ms");
    Ok(())
}

/// The median (nearest rank) and the largest of some figures.
fn p50_max(figures: &[f64]) -> (f64, f64) {
    let mut sorted = figures.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => (0.0, 0.0),
        n => (sorted[n.div_ceil(2) - 1], sorted[n - 1]),
    }
}

/// One HTTP/1.1 request to `addr` with an admin token (and a JSON body), on
/// a connection of its own: the status and the body as JSON (`Null` if it
/// is not JSON).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    netra_tests::http::json(addr, method, path, Some(token), body)
        .with_context(|| format!("{method} {path} on {addr}"))
}

/// Start to ready (`netra serve` printing that it listens, every plugin
/// loaded) with all the example plugins, Python and JavaScript included:
/// once with an empty compile cache, then five times with it warm. Each
/// start has a fresh data dir; only the cache is kept.
pub(crate) fn bench_start() -> Result<()> {
    let netra = release_netra()?;
    let target = root().join("target");
    let cache = target.join("bench-start-cache");
    let _ = std::fs::remove_dir_all(&cache);
    let mut figures = Vec::new();
    for round in 0..6 {
        let began = std::time::Instant::now();
        let mut command = Command::new(&netra);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--store", "memory"])
            .arg("--data-dir")
            .arg(target.join("bench-start-data"))
            .arg("--plugins")
            .arg(target.join("plugins"))
            .env("NETRA_SERVER__CACHE_DIR", &cache);
        let _ = std::fs::remove_dir_all(target.join("bench-start-data"));
        let mut server =
            BenchServer::spawn(&mut command, target.join("bench-start-data"), "start")?;
        let ready = began.elapsed().as_secs_f64() * 1000.0;
        server.stop();
        let what = if round == 0 { "cold" } else { "warm" };
        eprintln!("{what} start: {ready:.0} ms");
        figures.push((what, ready));
    }
    let warm: Vec<f64> = figures
        .iter()
        .filter(|(w, _)| *w == "warm")
        .map(|(_, ms)| *ms)
        .collect();
    let (p50, max) = p50_max(&warm);
    println!(
        "\nstart to ready, all example plugins in target/plugins (release netra, --store memory)"
    );
    println!("cold cache: {:.0} ms", figures[0].1);
    println!(
        "warm cache: p50 {p50:.0} ms, max {max:.0} ms over {} starts",
        warm.len()
    );
    println!(
        "cold / warm p50 = {:.1}x",
        figures[0].1 / p50.max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// A release `netra serve` on a fresh data dir, killed when dropped.
pub(crate) struct BenchServer {
    child: Child,
    pub(crate) pid: u32,
    pub(crate) url: String,
    data: PathBuf,
}

impl BenchServer {
    /// Serves the example plugins (`target/plugins`) from a fresh data dir.
    fn start(netra: &Path, store: &str) -> Result<Self> {
        let target = root().join("target");
        let data = target.join(format!("bench-data-{store}"));
        Self::start_on(netra, store, &target.join("plugins"), data)
    }

    /// Serves the plugins in `plugins` (and watches it) from the fresh data
    /// dir `data` (emptied first).
    fn start_on(netra: &Path, store: &str, plugins: &Path, data: PathBuf) -> Result<Self> {
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        let mut command = Command::new(netra);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--max-runs", "1024"])
            .args(["--store", store, "--data-dir"])
            .arg(&data)
            .arg("--plugins")
            .arg(plugins);
        Self::spawn(&mut command, data, store)
    }

    /// The server's HTTP address, `HOST:PORT`.
    pub(crate) fn http_addr(&self) -> &str {
        self.url
            .trim_start_matches("ws://")
            .trim_end_matches("/v1/ws")
    }

    /// Starts `command` (a `netra serve`) whose data dir is `data`.
    pub(crate) fn spawn(command: &mut Command, data: PathBuf, what: &str) -> Result<Self> {
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
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS in /proc status")
}
