//! `cargo xtask bench hostile`: what hostile plugins cost a bystander.
//!
//! One release `netra serve` (SQLite store, dev-mode auth) serves `helper`
//! and the hostile fixtures. A bystander (user `bob`, 4 sessions) runs
//! `helper` with `netra loadgen`, once with no attack and once during each
//! attack by another user (`mallory`, 8 sessions: the per-user run limit),
//! alternating, all in the same run. Besides the bystander's latency, each
//! attack's effect on the server's RSS (sampled while it runs, and after)
//! and on the database is measured: the growth of `netra.db` per attacking
//! run, against the configured `max_event_bytes`, both ends measured once
//! the checkpointer has copied the WAL into it (a WAL keeps its size until
//! the next write rewinds it, so adding it would misplace growth between
//! phases); the WAL's peak during each attack is shown beside it. The
//! server's CPU and the loadgens' in each phase say what was saturated.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::bench::{BenchServer, rss_kib};
use crate::{release_netra, root};

/// `[limits.agent] max_event_bytes` written into the bench's netra.toml:
/// the default (host/config/src/budgets.rs), stated so the figure compared
/// against is the configured one.
const MAX_EVENT_BYTES: u64 = 16 << 20;
/// `[limits] max_runs_per_user`, also the default.
const MAX_RUNS_PER_USER: usize = 8;
/// The bystander's sessions (one user; below the per-user run limit).
const BYSTANDER_SESSIONS: usize = 4;
/// Measured runs per bystander session, after `BYSTANDER_WARMUP`.
const BYSTANDER_RUNS: usize = 500;
const BYSTANDER_WARMUP: usize = 5;
/// How long an attack runs before the bystander starts.
const RAMP: Duration = Duration::from_millis(1500);
/// How long each attacker loadgen should last: the attacker is a loop of
/// loadgens (each reports its runs), sized from the previous one.
const ATTACK_SLICE: Duration = Duration::from_secs(2);
/// The database is measured once neither it nor its WAL has changed size
/// for this long (the store's checkpointer, which runs every 50 ms, has
/// copied the WAL into it), or after `SETTLE_MAX` at most.
const SETTLE: Duration = Duration::from_millis(1000);
const SETTLE_MAX: Duration = Duration::from_secs(60);
/// Clock ticks per second of /proc/PID/stat's CPU times (`getconf CLK_TCK`,
/// 100 on Linux).
const CLK_TCK: f64 = 100.0;
/// Targets.
const P99_RATIO_TARGET: f64 = 2.0;
const RSS_GROWTH_TARGET_MIB: f64 = 256.0;

/// One attack: the agent mallory runs and its input.
struct Attack {
    name: &'static str,
    agent: &'static str,
    input: &'static str,
}

const ATTACKS: &[Attack] = &[
    Attack {
        name: "infinite loop",
        agent: "spin-agent",
        input: "go",
    },
    Attack {
        name: "memory bomb",
        agent: "membomb-agent",
        input: "go",
    },
    Attack {
        name: "event flood",
        agent: "hostile-agent",
        input: "events",
    },
    Attack {
        name: "tool-call storm",
        agent: "hostile-agent",
        input: "tools",
    },
    Attack {
        name: "stdout flood",
        agent: "hostile-agent",
        input: "print 100000",
    },
    Attack {
        name: "huge answer",
        agent: "hostile-agent",
        input: "answer 2000000",
    },
    Attack {
        name: "kv bomb",
        agent: "hostile-agent",
        input: "kv 100000",
    },
    Attack {
        name: "recursive delegation",
        agent: "hostile-agent",
        input: "delegate",
    },
    Attack {
        name: "sleep past the deadline",
        agent: "hostile-agent",
        input: "sleep 60000",
    },
    Attack {
        name: "nested-run storm",
        agent: "hostile-agent",
        input: "nested 100",
    },
];

/// The bystander's figures in one phase.
struct Bystander {
    p50: f64,
    p99: f64,
    /// Runs started, warm-up included (each one writes to the store).
    started: u64,
    /// Completed measured runs.
    completed: u64,
    ok: bool,
    errors: String,
}

impl Bystander {
    fn of(report: &Value) -> Self {
        Self {
            p50: report["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
            p99: report["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            started: report["started"].as_u64().unwrap_or(0),
            completed: report["runs"].as_u64().unwrap_or(0),
            ok: report["ok"] == Value::Bool(true),
            errors: report["error_codes"].to_string(),
        }
    }
}

/// Sizes of the database file and its WAL, in bytes.
fn db_bytes(data: &Path) -> (u64, u64) {
    let len = |name: &str| std::fs::metadata(data.join(name)).map_or(0, |m| m.len());
    (len("netra.db"), len("netra.db-wal"))
}

/// Waits for the store to catch up (see `SETTLE`); the sizes then, and
/// whether it did catch up.
fn settle(data: &Path) -> ((u64, u64), bool) {
    let started = Instant::now();
    let mut last = db_bytes(data);
    let mut stable_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = db_bytes(data);
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= SETTLE {
            return (now, true);
        }
        if started.elapsed() > SETTLE_MAX {
            eprintln!("warning: the database did not settle in {SETTLE_MAX:?}: {now:?}");
            return (now, false);
        }
    }
}

/// The database file's size as a signed number, for differences.
fn db_file((db, _wal): (u64, u64)) -> i64 {
    i64::try_from(db).unwrap_or(i64::MAX)
}

/// CPU seconds of a process (`self` or a pid): its own and, with
/// `children`, those of its waited-for children instead.
fn cpu_secs(pid: &str, children: bool) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command's closing parenthesis, from field 3.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime, stime are fields 14, 15; cutime, cstime 16, 17.
    let first = if children { 13 } else { 11 };
    let ticks = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .with_context(|| format!("no field {} in /proc/{pid}/stat", i + 3))
    };
    Ok((ticks(first)? + ticks(first + 1)?) / CLK_TCK)
}

/// One attack's figures.
struct Row {
    attack: &'static Attack,
    bystander: Bystander,
    /// The no-attack phase just before it.
    baseline: Bystander,
    rss_after_kib: u64,
    /// RssAnon after: the heap and guest memory, not file pages.
    anon_after_kib: u64,
    rss_peak_kib: u64,
    /// The largest WAL seen while the attack ran.
    wal_peak: u64,
    /// Growth of the database file over the attack (both ends measured
    /// settled), the bystander's runs subtracted.
    db_growth: i64,
    db_after: (u64, u64),
    settled: bool,
    attacking_runs: u64,
    attacker_loadgens: usize,
    attacker_codes: String,
    took: Duration,
    /// CPU seconds the server and the loadgens (bystander and attacker)
    /// used during the attack.
    server_cpu: f64,
    loadgen_cpu: f64,
}

/// A loadgen run against the server with one token for every session.
fn loadgen(
    netra: &Path,
    url: &str,
    token: &str,
    agent: &str,
    input: &str,
    (sessions, runs, warmup): (usize, usize, usize),
) -> Result<Value> {
    let mut load = Command::new(netra);
    load.args(["loadgen", "--url", url, "--token", token])
        .args(["--agent", agent, "--input", input])
        .args(["--sessions", &sessions.to_string()])
        .args(["--runs", &runs.to_string()])
        .args(["--warmup", &warmup.to_string(), "--json"])
        .stdin(Stdio::null());
    let out = load.output().context("running loadgen")?;
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "loadgen ({agent} {input:?}) printed {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Mallory's attack: loadgens one after another until told to stop; each
/// one's report.
fn start_attacker(
    netra: PathBuf,
    url: String,
    token: String,
    attack: &'static Attack,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Result<Vec<Value>>> {
    std::thread::spawn(move || {
        let mut reports = Vec::new();
        let mut runs = 1_usize;
        loop {
            let began = Instant::now();
            let report = loadgen(
                &netra,
                &url,
                &token,
                attack.agent,
                attack.input,
                (MAX_RUNS_PER_USER, runs, 0),
            )?;
            let took = began.elapsed().as_secs_f64();
            reports.push(report);
            if stop.load(Ordering::SeqCst) {
                return Ok(reports);
            }
            let per_run = took / runs as f64;
            let next = (ATTACK_SLICE.as_secs_f64() / per_run.max(1e-4)) as usize;
            runs = next.clamp(1, runs.saturating_mul(10)).min(5_000);
        }
    })
}

/// Samples the server's RSS and the WAL's size until stopped; the largest
/// of each.
fn start_sampler(pid: u32, data: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let (mut rss, mut wal) = (0, 0);
        while !stop.load(Ordering::SeqCst) {
            if let Ok(kib) = rss_kib(pid) {
                rss = rss.max(kib);
            }
            wal = wal.max(db_bytes(&data).1);
            std::thread::sleep(Duration::from_millis(20));
        }
        (rss, wal)
    })
}

/// A value of the server's /proc status, in KiB.
fn proc_status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Lays out the plugins dir and netra.toml in `dir`; returns the config file.
fn prepare(dir: &Path) -> Result<PathBuf> {
    let target = root().join("target");
    let guests = target.join("guests").join("wasm32-wasip2").join("release");
    let examples = target.join("plugins");
    let plugins_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugins_dir)?;
    let copy = |from: PathBuf, name: &str, manifest: &str| -> Result<()> {
        let to = plugins_dir.join(format!("{name}.wasm"));
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        std::fs::write(plugins_dir.join(format!("{name}.toml")), manifest)?;
        Ok(())
    };
    let calculator = std::fs::read_to_string(examples.join("calculator.toml"))?;
    copy(examples.join("calculator.wasm"), "calculator", &calculator)?;
    copy(
        examples.join("helper.wasm"),
        "helper",
        "name = \"helper\"\nversion = \"1.0.0\"\nkind = \"agent\"\n\n[needs]\ntools = [\"calculate\"]\n",
    )?;
    copy(
        guests.join("fixture_hostile.wasm"),
        "hostile",
        "name = \"hostile\"\nversion = \"1.0.0\"\nkind = \"tool\"\n",
    )?;
    copy(
        guests.join("fixture_agent_hostile.wasm"),
        "agent-hostile",
        "name = \"agent-hostile\"\nversion = \"1.0.0\"\nkind = \"agent\"\n\n[needs]\n\
         tools = [\"calculate\", \"sleep\", \"huge_result\", \"escape\"]\nagents = [\"helper\"]\n",
    )?;
    for name in ["spin", "membomb"] {
        copy(
            guests.join(format!("fixture_agent_{name}.wasm")),
            &format!("agent-{name}"),
            &format!("name = \"agent-{name}\"\nversion = \"1.0.0\"\nkind = \"agent\"\n"),
        )?;
    }
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = {data:?}
cache_dir = {cache:?}

[plugins]
dir = {plugins:?}

[limits]
max_runs_per_user = {MAX_RUNS_PER_USER}

# Every other budget is the default; this one is written out because the
# bench compares each attacking run's database growth with it.
[limits.agent]
max_event_bytes = {MAX_EVENT_BYTES}

[plugin.helper]
tools = ["calculate"]

[plugin.agent-hostile]
tools = ["calculate", "sleep", "huge_result", "escape", "helper", "hostile-agent"]
"#,
        data = dir.join("data").display().to_string(),
        // Kept between runs of the bench: a restart compiles nothing.
        cache = target.join("bench-hostile-cache").display().to_string(),
        plugins = plugins_dir.display().to_string(),
    );
    let file = dir.join("netra.toml");
    std::fs::write(&file, config)?;
    Ok(file)
}

/// A dev-mode token for `user`.
fn token(netra: &Path, data: &Path, user: &str) -> Result<String> {
    let out = Command::new(netra)
        .args(["token", "--sub", user, "--data-dir"])
        .arg(data)
        .output()
        .context("running netra token")?;
    if !out.status.success() {
        bail!(
            "netra token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .rfind(|line| !line.trim().is_empty())
        .context("netra token printed nothing")?
        .trim()
        .to_string())
}

/// `cargo xtask bench hostile [ATTACK..]`: every attack, or those whose
/// name contains one of `only`.
pub(crate) fn bench_hostile(only: &[&str]) -> Result<()> {
    let attacks: Vec<&'static Attack> = ATTACKS
        .iter()
        .filter(|a| only.is_empty() || only.iter().any(|o| a.name.contains(o)))
        .collect();
    if attacks.is_empty() {
        let names: Vec<&str> = ATTACKS.iter().map(|a| a.name).collect();
        bail!("no attack is named like {only:?}; the attacks: {names:?}");
    }
    let began = Instant::now();
    let netra = release_netra()?;
    let target = root().join("target");
    let dir = target.join("bench-hostile");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = prepare(&dir)?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    // The server's log (guest output, refused runs) goes to a file.
    let log = dir.join("server.log");
    let mut serve = Command::new(&netra);
    serve
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let server = BenchServer::spawn(&mut serve, data.clone(), "hostile")?;
    eprintln!("server log: {}", log.display());
    let bob = token(&netra, &data, "bob")?;
    let mallory = token(&netra, &data, "mallory")?;

    let bystander = |what: &str| -> Result<Bystander> {
        let report = loadgen(
            &netra,
            &server.url,
            &bob,
            "helper",
            "what is 6 * 7",
            (BYSTANDER_SESSIONS, BYSTANDER_RUNS, BYSTANDER_WARMUP),
        )?;
        let figures = Bystander::of(&report);
        eprintln!(
            "bystander ({what}): p50 {:.3} ms, p99 {:.3} ms, {} completed, ok {}",
            figures.p50, figures.p99, figures.completed, figures.ok
        );
        Ok(figures)
    };

    // Warm the server (helper and calculator compiled, instantiated and
    // run) before the first figures.
    let warm = loadgen(
        &netra,
        &server.url,
        &bob,
        "helper",
        "what is 6 * 7",
        (1, 20, 0),
    )?;
    if warm["ok"] != Value::Bool(true) {
        bail!("helper does not run on the bench server: {warm}");
    }

    // The store's growth per bystander run (measured in the no-attack
    // phases), to subtract from the growth during an attack.
    let mut baseline_growth: i64 = 0;
    let mut baseline_started: u64 = 0;
    let mut baselines = Vec::new();
    let mut rows = Vec::new();
    let mut rss_start_kib = 0;
    for (i, attack) in attacks.into_iter().enumerate() {
        // No attack.
        let (before, _) = settle(&data);
        let base = bystander("no attack")?;
        let (after_base, _) = settle(&data);
        baseline_growth += db_file(after_base) - db_file(before);
        baseline_started += base.started;
        if i == 0 {
            rss_start_kib = rss_kib(server.pid)?;
            eprintln!(
                "server RSS before the first attack: {:.1} MiB",
                mib(rss_start_kib)
            );
        }

        // The attack, the bystander during it.
        eprintln!(
            "attack: {} ({} {:?})",
            attack.name, attack.agent, attack.input
        );
        let phase = Instant::now();
        let server_cpu = cpu_secs(&server.pid.to_string(), false)?;
        let loadgen_cpu = cpu_secs("self", true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop_sampler = Arc::new(AtomicBool::new(false));
        let sampler = start_sampler(server.pid, data.clone(), stop_sampler.clone());
        let attacker = start_attacker(
            netra.clone(),
            server.url.clone(),
            mallory.clone(),
            attack,
            stop.clone(),
        );
        std::thread::sleep(RAMP);
        let during = bystander(attack.name);
        stop.store(true, Ordering::SeqCst);
        let reports = attacker
            .join()
            .map_err(|_| anyhow::anyhow!("the attacker thread panicked"))?
            .with_context(|| format!("attack {}", attack.name))?;
        let during = during?;
        let took = phase.elapsed();
        let server_cpu = cpu_secs(&server.pid.to_string(), false)? - server_cpu;
        let loadgen_cpu = cpu_secs("self", true)? - loadgen_cpu;
        let (db_after, settled) = settle(&data);
        stop_sampler.store(true, Ordering::SeqCst);
        let (rss_peak_kib, wal_peak) = sampler
            .join()
            .map_err(|_| anyhow::anyhow!("the sampler panicked"))?;
        let rss_after_kib = rss_kib(server.pid)?;
        let anon_after_kib = proc_status_kib(server.pid, "RssAnon")?;
        let per_bystander_run = baseline_growth.max(0) as f64 / baseline_started.max(1) as f64;
        let bystander_cost = (per_bystander_run * during.started as f64) as i64;
        let db_growth = db_file(db_after) - db_file(after_base) - bystander_cost;
        let attacking_runs: u64 = reports
            .iter()
            .map(|r| r["runs"].as_u64().unwrap_or(0) + r["agent_errors"].as_u64().unwrap_or(0))
            .sum();
        let mut codes = std::collections::BTreeMap::<String, u64>::new();
        let mut completed = 0;
        for report in &reports {
            completed += report["runs"].as_u64().unwrap_or(0);
            if let Some(map) = report["error_codes"].as_object() {
                for (code, n) in map {
                    *codes.entry(code.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
        let missing: u64 = reports.iter().filter_map(|r| r["missing"].as_u64()).sum();
        let mut outcome: Vec<String> = Vec::new();
        if completed > 0 {
            outcome.push(format!("completed {completed}"));
        }
        outcome.extend(codes.iter().map(|(code, n)| format!("{code} {n}")));
        if missing > 0 {
            outcome.push(format!("missing {missing}"));
        }
        let row = Row {
            attack,
            bystander: during,
            baseline: base,
            rss_after_kib,
            anon_after_kib,
            rss_peak_kib,
            wal_peak,
            db_growth,
            db_after,
            settled,
            attacking_runs,
            attacker_loadgens: reports.len(),
            attacker_codes: outcome.join(", "),
            took,
            server_cpu,
            loadgen_cpu,
        };
        eprintln!(
            "  {} attacking runs ({}) in {:.1} s; RSS after {:.1} MiB (anon {:.1}), peak {:.1} MiB; \
             database {:+.1} MiB, WAL peak {:.1} MiB",
            row.attacking_runs,
            row.attacker_codes,
            row.took.as_secs_f64(),
            mib(rss_after_kib),
            mib(anon_after_kib),
            mib(rss_peak_kib),
            row.db_growth as f64 / (1 << 20) as f64,
            row.wal_peak as f64 / (1 << 20) as f64,
        );
        rows.push(row);
    }
    // A last baseline after every attack.
    let last = bystander("no attack, after every attack")?;
    baselines.extend(rows.iter().map(|r| (r.baseline.p50, r.baseline.p99)));
    baselines.push((last.p50, last.p99));
    let vmhwm = proc_status_kib(server.pid, "VmHWM")?;
    let rss_end = rss_kib(server.pid)?;
    drop(server);

    let per_bystander_run = baseline_growth.max(0) as f64 / baseline_started.max(1) as f64;
    report(
        &rows,
        &baselines,
        &last,
        rss_start_kib,
        rss_end,
        vmhwm,
        per_bystander_run,
    );
    eprintln!("bench hostile took {:.0} s", began.elapsed().as_secs_f64());
    Ok(())
}

/// The median of some figures (the lower middle one for an even count).
fn median(figures: impl Iterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = figures.filter(|f| f.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[n.div_ceil(2) - 1],
    }
}

/// Prints the markdown tables and the verdicts.
fn report(
    rows: &[Row],
    baselines: &[(f64, f64)],
    last: &Bystander,
    rss_start_kib: u64,
    rss_end_kib: u64,
    vmhwm_kib: u64,
    bystander_bytes_per_run: f64,
) {
    let base_p50 = median(baselines.iter().map(|b| b.0));
    let base_p99 = median(baselines.iter().map(|b| b.1));
    let baseline_list: Vec<String> = baselines.iter().map(|b| format!("{:.2}", b.1)).collect();
    println!(
        "\nbystander: user bob, {BYSTANDER_SESSIONS} sessions x {BYSTANDER_RUNS} runs of `helper` \
         (`what is 6 * 7`) after {BYSTANDER_WARMUP} warm-up runs each; attacker: user mallory, \
         {MAX_RUNS_PER_USER} sessions; configured max_event_bytes = {MAX_EVENT_BYTES} B ({} KiB)",
        MAX_EVENT_BYTES / 1024
    );
    println!(
        "no-attack baselines ({} phases, one before each attack and one at the end): \
         p50 median {base_p50:.2} ms, p99 median {base_p99:.2} ms (each p99: {} ms)",
        baselines.len(),
        baseline_list.join(", ")
    );
    println!(
        "server RSS before the first attack {:.1} MiB, after the last {:.1} MiB, VmHWM {:.1} MiB; \
         database growth per bystander run (no attack; subtracted from each attack's) {:.2} KiB\n",
        mib(rss_start_kib),
        mib(rss_end_kib),
        mib(vmhwm_kib),
        bystander_bytes_per_run / 1024.0
    );
    println!(
        "| attack | mallory runs | bystander p50 (ms) | bystander p99 (ms) | p99 / baseline p99 | \
         RSS after (MiB) | RSS peak during (MiB) | DB growth / attacking run (KiB) | attacking runs | targets |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| none (baseline, median of {}) | | {base_p50:.2} | {base_p99:.2} | 1.00x | {:.0} | | | | |",
        baselines.len(),
        mib(rss_start_kib)
    );
    let mut missed = Vec::new();
    for row in rows {
        let ratio = row.bystander.p99 / base_p99;
        let growth_mib = mib(row.rss_after_kib.saturating_sub(rss_start_kib));
        let per_run =
            (row.attacking_runs > 0).then(|| row.db_growth as f64 / row.attacking_runs as f64);
        let mut verdict = Vec::new();
        if !row.bystander.ok {
            verdict.push(format!("MISSED: bystander errors {}", row.bystander.errors));
        }
        if ratio.is_nan() || ratio > P99_RATIO_TARGET {
            verdict.push(format!("MISSED p99 ({ratio:.2}x > {P99_RATIO_TARGET}x)"));
        }
        if growth_mib > RSS_GROWTH_TARGET_MIB {
            verdict.push(format!(
                "MISSED RSS (+{growth_mib:.0} MiB > {RSS_GROWTH_TARGET_MIB} MiB)"
            ));
        }
        match per_run {
            Some(bytes) if bytes > MAX_EVENT_BYTES as f64 => verdict.push(format!(
                "MISSED DB ({:.0} KiB/run > {} KiB)",
                bytes / 1024.0,
                MAX_EVENT_BYTES / 1024
            )),
            Some(_) => {}
            None => verdict.push("no attacking run ended".into()),
        }
        if verdict.is_empty() {
            verdict.push("met".into());
        } else {
            missed.push(format!("{}: {}", row.attack.name, verdict.join(", ")));
        }
        println!(
            "| {} | `{} {}` | {:.2} | {:.2} | {ratio:.2}x | {:.0} | {:.0} | {} | {} | {} |",
            row.attack.name,
            row.attack.agent,
            row.attack.input,
            row.bystander.p50,
            row.bystander.p99,
            mib(row.rss_after_kib),
            mib(row.rss_peak_kib),
            per_run.map_or("-".into(), |b| format!("{:.1}", b / 1024.0)),
            row.attacking_runs,
            verdict.join("; ")
        );
    }
    println!(
        "\nper attack: the no-attack phase just before it, what mallory's runs ended with \
         (loadgen's codes: `too_many_runs` are refused starts, not runs), the server's anonymous \
         RSS after, the CPU the server and the loadgens (bystander's and attacker's) used in the \
         phase, in cores (of 2), the WAL's peak during it and the database after it settled"
    );
    println!(
        "| attack | baseline before: p50 / p99 (ms) | mallory's runs ended with | loadgens | phase (s) | server CPU (cores) | loadgens CPU (cores) | RssAnon after (MiB) | WAL peak (MiB) | netra.db / WAL after (MiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let size = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    for row in rows {
        println!(
            "| {} | {:.2} / {:.2} | {} | {} | {:.1} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} / {:.0}{} |",
            row.attack.name,
            row.baseline.p50,
            row.baseline.p99,
            row.attacker_codes,
            row.attacker_loadgens,
            row.took.as_secs_f64(),
            row.server_cpu / row.took.as_secs_f64(),
            row.loadgen_cpu / row.took.as_secs_f64(),
            mib(row.anon_after_kib),
            size(row.wal_peak),
            size(row.db_after.0),
            size(row.db_after.1),
            if row.settled { "" } else { " (not settled)" },
        );
    }
    println!(
        "\nlast baseline (after every attack): p50 {:.2} ms, p99 {:.2} ms, ok {}",
        last.p50, last.p99, last.ok
    );
    println!(
        "targets: bystander p99 during an attack <= {P99_RATIO_TARGET}x its p99 without \
         (median of the baselines); RSS after an attack <= {RSS_GROWTH_TARGET_MIB} MiB above \
         the RSS before the first; database growth per attacking run <= max_event_bytes \
         (the growth of netra.db, measured settled: once the checkpointer has copied the WAL \
         into it; the WAL itself is a scratch file cut back to 64 MiB when it rewinds, its peak \
         is shown above)"
    );
    if missed.is_empty() {
        println!("every target met");
    } else {
        println!("MISSED ({} of {} attacks):", missed.len(), rows.len());
        for line in missed {
            println!("  MISSED {line}");
        }
    }
}
