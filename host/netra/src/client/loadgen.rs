//! `netra loadgen`: many concurrent sessions against a host, with a check of every
//! frame that comes back.
//!
//! Run mode opens `--sessions` connections, lets each run `--warmup` and then `--runs`
//! runs one after another, and reports throughput and latency of the measured runs.
//! Every event must belong to a run its own session started, and every run's `seq`
//! must go 1, 2, 3 ... up to exactly one terminal event; anything else is counted.
//!
//! Idle mode (`--idle N`) only opens N connections and holds them, answering pings, to
//! measure what an idle session costs the host.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::ArgGroup;
use futures_util::{SinkExt, StreamExt};
use netra_auth::Authenticator;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, interval_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use netra_server::protocol::{
    AckPayload, Command, CommandKind, EventKind, Reply, RunEvent, ServerFrame,
};

use super::{DEFAULT_URL, Ws, connect};

/// Arguments of `netra loadgen`.
#[derive(clap::Args, Debug)]
#[command(group(
    ArgGroup::new("credentials")
        .required(true)
        .args(["token", "token_file", "data_dir"])
))]
pub struct LoadgenArgs {
    /// The host's WebSocket URL.
    #[arg(long, default_value = DEFAULT_URL)]
    pub url: String,
    /// One token for every session. All sessions are then one user, and the host's
    /// per-user run limit (8 by default) applies to them together: prefer --data-dir.
    #[arg(long)]
    pub token: Option<String>,
    /// Read the one token for every session from a file.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The server's data dir: mint a dev token per session, for users load-0,
    /// load-1, ... so each session is a user of its own.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 10)]
    pub sessions: usize,
    /// Measured runs per session, one after another.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Unmeasured runs per session before the measured ones.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// The agent to run.
    #[arg(long, default_value = "helper")]
    pub agent: String,
    /// The input of every run.
    #[arg(long, default_value = "what is 2+3*4")]
    pub input: String,
    /// Instead of running, hold N idle sessions open (answering pings).
    #[arg(long, value_name = "N")]
    pub idle: Option<usize>,
    /// How long --idle holds its sessions once all are connected, in seconds.
    #[arg(long, default_value_t = 30, requires = "idle")]
    pub hold_secs: u64,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// How long to wait for a run's terminal event before counting it missing, in seconds.
    #[arg(long, default_value_t = 120)]
    pub run_timeout_secs: u64,
    /// Print one JSON object with the figures instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write every `run.start` ack and run event received, as the exact frame
    /// text, one per line, to FILE when the load ends (also when the host
    /// went away mid-run).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}

/// How often a session sends a `ping` command while idle: the host closes a
/// connection that sends no command for 10 minutes.
const KEEPALIVE: Duration = Duration::from_secs(240);

/// Distinct connection failures printed, at most.
const SHOW_FAILURES: usize = 3;

/// Runs `netra loadgen`.
pub async fn loadgen(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.connect_concurrency > 0,
        "--connect-concurrency must be at least 1"
    );
    let wanted = args.idle.unwrap_or(args.sessions);
    raise_open_file_limit(wanted);
    let ttl = Duration::from_secs(args.hold_secs.saturating_add(24 * 3600));
    let credentials = Arc::new(Credentials::from_args(&args, ttl)?);
    match args.idle {
        Some(count) => hold_idle(&args, credentials, count).await,
        None => {
            anyhow::ensure!(args.sessions > 0, "--sessions must be at least 1");
            anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
            drive(&args, credentials).await
        }
    }
}

/// Where session tokens come from.
enum Credentials {
    /// One token for all sessions.
    Shared(String),
    /// A dev token per session, signed with the server's dev secret.
    Minted { auth: Authenticator, ttl: Duration },
}

impl Credentials {
    fn from_args(args: &LoadgenArgs, ttl: Duration) -> anyhow::Result<Self> {
        if let Some(token) = &args.token {
            return Ok(Self::Shared(token.trim().to_string()));
        }
        if let Some(file) = &args.token_file {
            let token = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            return Ok(Self::Shared(token.trim().to_string()));
        }
        let dir = args
            .data_dir
            .as_ref()
            .context("give --token, --token-file or --data-dir")?;
        // Minting into a dir without a secret would create a new one the server doesn't
        // know, and every connection would then fail with 401.
        let secret = dir.join("dev-jwt-secret");
        anyhow::ensure!(
            secret.exists(),
            "{} has no dev secret; pass the --data-dir the server runs with",
            dir.display()
        );
        // `netra_auth::dev_token` rereads the secret on every call; one authenticator
        // signs the same tokens without 10,000 reads.
        let auth = Authenticator::dev(dir)?;
        Ok(Self::Minted { auth, ttl })
    }

    fn token(&self, session: usize) -> Result<String, String> {
        match self {
            Self::Shared(token) => Ok(token.clone()),
            Self::Minted { auth, ttl } => auth
                .issue(&format!("load-{session}"), &[], *ttl)
                .map_err(|e| format!("cannot mint a token: {e}")),
        }
    }
}

/// Opens session `index` once a connect slot is free.
async fn open(
    url: &str,
    credentials: &Credentials,
    slots: &Semaphore,
    index: usize,
    config: Option<WebSocketConfig>,
) -> Result<Ws, String> {
    let token = credentials.token(index)?;
    let _slot = slots.acquire().await.map_err(|e| e.to_string())?;
    connect(url, &token, config)
        .await
        .map_err(|e| e.to_string())
}

/// Raises the soft open-file limit to the hard one: each session is a socket.
fn raise_open_file_limit(sessions: usize) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            let needed = u64::try_from(sessions)
                .unwrap_or(u64::MAX)
                .saturating_add(64);
            if limit < needed {
                eprintln!(
                    "warning: the open-file limit is {limit}; {sessions} sessions need about \
                     {needed}. Raise the hard limit (ulimit -Hn) first."
                );
            }
        }
        Err(err) => eprintln!("warning: cannot raise the open-file limit: {err}"),
    }
}

// ---- run mode ----

/// What every session does.
struct Plan {
    agent: String,
    input: String,
    run_timeout: Duration,
}

/// Correctness and timing figures of one session, and of all of them merged.
#[derive(Default)]
struct Tally {
    /// `run.start` commands sent.
    started: u64,
    /// Measured runs that ended with `agent_completed`.
    completed: u64,
    /// Runs that ended with `agent_error`.
    agent_errors: u64,
    /// `error` frames, and frames that weren't readable.
    error_frames: u64,
    /// Connections that couldn't be opened.
    connect_failures: u64,
    /// Connections lost mid-session.
    disconnects: u64,
    /// `run.start` acks that matched the command.
    acks: u64,
    /// Events of a run this session didn't start, and acks of commands it didn't send.
    misrouted: u64,
    /// Runs with no terminal event (timed out, or the connection was lost).
    missing: u64,
    /// Events whose `seq` wasn't the previous one plus 1.
    gaps: u64,
    /// Events after their run's terminal event.
    after_terminal: u64,
    /// `plugins.changed` notices received (not errors: plugins may change
    /// under load).
    notices: u64,
    /// `error` and `agent_error` codes and how often each came.
    codes: BTreeMap<String, u64>,
    /// Latency of each measured run, from sending `run.start` to its terminal event.
    latencies_us: Vec<u64>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.started += other.started;
        self.completed += other.completed;
        self.agent_errors += other.agent_errors;
        self.error_frames += other.error_frames;
        self.connect_failures += other.connect_failures;
        self.disconnects += other.disconnects;
        self.acks += other.acks;
        self.misrouted += other.misrouted;
        self.missing += other.missing;
        self.gaps += other.gaps;
        self.after_terminal += other.after_terminal;
        self.notices += other.notices;
        for (code, count) in other.codes {
            *self.codes.entry(code).or_default() += count;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    fn errors(&self) -> u64 {
        self.agent_errors + self.error_frames + self.connect_failures + self.disconnects
    }

    fn ok(&self) -> bool {
        self.errors() == 0
            && self.misrouted == 0
            && self.missing == 0
            && self.gaps == 0
            && self.after_terminal == 0
    }

    fn count_code(&mut self, code: &str) {
        *self.codes.entry(code.to_string()).or_default() += 1;
    }
}

/// Where a run of this session stands.
struct Track {
    next_seq: u64,
    ended: bool,
}

/// The connection was lost; the session can run no more.
struct Lost;

/// One connection and what it has seen.
struct Session {
    ws: Ws,
    next_id: u64,
    /// Every run this session started, by run id.
    runs: HashMap<String, Track>,
    tally: Tally,
    lost: bool,
    /// Every ack and event frame received, when recording.
    recorded: Option<Vec<String>>,
}

impl Session {
    fn new(ws: Ws, record: bool) -> Self {
        Self {
            ws,
            next_id: 0,
            runs: HashMap::new(),
            tally: Tally::default(),
            lost: false,
            recorded: record.then(Vec::new),
        }
    }

    /// Runs `count` runs one after another; stops early if the connection is lost.
    async fn run_many(&mut self, plan: &Plan, count: usize, measure: bool) {
        for _ in 0..count {
            if self.lost {
                return;
            }
            if self.run_once(plan, measure).await.is_err() {
                self.lost = true;
                self.tally.disconnects += 1;
            }
        }
    }

    /// Starts one run and reads frames until its terminal event.
    async fn run_once(&mut self, plan: &Plan, measure: bool) -> Result<(), Lost> {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let command = Command {
            id: id.clone(),
            kind: CommandKind::RunStart {
                agent: plan.agent.clone(),
                input: plan.input.clone(),
                thread_id: None,
            },
        };
        let sent = Instant::now();
        self.tally.started += 1;
        if self
            .ws
            .send(Message::text(command.to_text()))
            .await
            .is_err()
        {
            self.tally.missing += 1;
            return Err(Lost);
        }
        let deadline = sent + plan.run_timeout;
        let mut run_id: Option<String> = None;
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_elapsed) => {
                    self.tally.missing += 1;
                    return Ok(());
                }
                Ok(Some(Ok(Message::Text(text)))) => text,
                Ok(Some(Ok(Message::Close(_))) | Some(Err(_)) | None) => {
                    self.tally.missing += 1;
                    return Err(Lost);
                }
                Ok(Some(Ok(_))) => continue,
            };
            match ServerFrame::parse(&frame) {
                Err(_) => {
                    self.tally.error_frames += 1;
                    self.tally.count_code("unreadable_frame");
                }
                Ok(ServerFrame::Reply(Reply::Ack { reference, payload })) => {
                    if let Some(recorded) = &mut self.recorded {
                        recorded.push(frame.to_string());
                    }
                    if reference != id.as_str() {
                        self.tally.misrouted += 1;
                        continue;
                    }
                    match payload {
                        AckPayload::RunStarted { run_id: rid, .. } => {
                            self.tally.acks += 1;
                            self.runs.insert(
                                rid.clone(),
                                Track {
                                    next_seq: 1,
                                    ended: false,
                                },
                            );
                            run_id = Some(rid);
                        }
                        _ => {
                            self.tally.error_frames += 1;
                            self.tally.count_code("ack_without_run_id");
                        }
                    }
                }
                Ok(ServerFrame::Reply(Reply::Error {
                    reference, code, ..
                })) => {
                    self.tally.error_frames += 1;
                    self.tally.count_code(code.as_str());
                    if reference.as_deref() == Some(id.as_str()) {
                        return Ok(());
                    }
                }
                // Operators may change plugins while the load runs.
                Ok(ServerFrame::PluginsChanged(_)) => self.tally.notices += 1,
                Ok(ServerFrame::Event(event)) => {
                    if let Some(recorded) = &mut self.recorded {
                        recorded.push(frame.to_string());
                    }
                    let ended = self.check(&event);
                    if ended && run_id.as_deref() == Some(event.run_id.as_ref()) {
                        if let EventKind::AgentError { code, .. } = event.kind.as_ref() {
                            self.tally.agent_errors += 1;
                            self.tally.count_code(code.as_str());
                        } else if measure {
                            self.tally.completed += 1;
                        }
                        if measure {
                            let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                            self.tally.latencies_us.push(us);
                        }
                        return Ok(());
                    }
                }
            }
        }
    }

    fn check(&mut self, event: &RunEvent<'_>) -> bool {
        let Some(track) = self.runs.get_mut(event.run_id.as_ref()) else {
            self.tally.misrouted += 1;
            return false;
        };
        if track.ended {
            self.tally.after_terminal += 1;
            return false;
        }
        if event.seq != track.next_seq {
            self.tally.gaps += 1;
        }
        track.next_seq = event.seq.saturating_add(1);
        track.ended = event.kind.is_terminal();
        track.ended
    }
}

/// Runs every session's runs concurrently, each session on a task of its own.
async fn phase(
    sessions: Vec<Session>,
    plan: &Arc<Plan>,
    runs: usize,
    measure: bool,
) -> Vec<Session> {
    let mut tasks = JoinSet::new();
    for mut session in sessions {
        let plan = plan.clone();
        tasks.spawn(async move {
            session.run_many(&plan, runs, measure).await;
            session
        });
    }
    let mut done = Vec::new();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(session) => done.push(session),
            Err(err) => eprintln!("error: a session task failed: {err}"),
        }
    }
    done
}

async fn drive(args: &LoadgenArgs, credentials: Arc<Credentials>) -> anyhow::Result<ExitCode> {
    let plan = Arc::new(Plan {
        agent: args.agent.clone(),
        input: args.input.clone(),
        run_timeout: Duration::from_secs(args.run_timeout_secs),
    });
    let mut tally = Tally::default();

    let connecting = Instant::now();
    let slots = Arc::new(Semaphore::new(args.connect_concurrency));
    let mut tasks = JoinSet::new();
    for index in 0..args.sessions {
        let (url, credentials, slots) = (args.url.clone(), credentials.clone(), slots.clone());
        tasks.spawn(async move { open(&url, &credentials, &slots, index, None).await });
    }
    let mut sessions = Vec::with_capacity(args.sessions);
    let mut failures = Failures::default();
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(Ok(ws)) => sessions.push(Session::new(ws, args.record.is_some())),
            Ok(Err(err)) => {
                tally.connect_failures += 1;
                failures.note(err);
            }
            Err(err) => {
                tally.connect_failures += 1;
                failures.note(err.to_string());
            }
        }
    }
    let connect_secs = connecting.elapsed().as_secs_f64();
    let connected = sessions.len();
    failures.print();

    if args.warmup > 0 {
        sessions = phase(sessions, &plan, args.warmup, false).await;
    }
    let measuring = Instant::now();
    sessions = phase(sessions, &plan, args.runs, true).await;
    let wall_secs = measuring.elapsed().as_secs_f64();

    if let Some(path) = &args.record {
        let mut lines = String::new();
        for frame in sessions.iter().flat_map(|s| s.recorded.iter().flatten()) {
            lines.push_str(frame);
            lines.push('\n');
        }
        std::fs::write(path, lines)
            .with_context(|| format!("cannot write the record {}", path.display()))?;
    }
    let mut closing = JoinSet::new();
    for mut session in sessions {
        tally.merge(std::mem::take(&mut session.tally));
        closing.spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), session.ws.close(None)).await;
        });
    }
    while closing.join_next().await.is_some() {}

    let report = Report {
        sessions: args.sessions,
        connected,
        connect_secs,
        runs_per_session: args.runs,
        warmup: args.warmup,
        wall_secs,
        tally,
    };
    if args.json {
        println!("{}", report.json());
    } else {
        report.print();
    }
    Ok(if report.tally.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Connection failures, counted by message.
#[derive(Default)]
struct Failures(BTreeMap<String, u64>);

impl Failures {
    fn note(&mut self, message: String) {
        *self.0.entry(message).or_default() += 1;
    }

    fn print(&self) {
        for (message, count) in self.0.iter().take(SHOW_FAILURES) {
            eprintln!("error: {count} connection(s) failed: {message}");
        }
        if self.0.len() > SHOW_FAILURES {
            eprintln!("error: and {} other failures", self.0.len() - SHOW_FAILURES);
        }
    }
}

struct Report {
    sessions: usize,
    connected: usize,
    connect_secs: f64,
    runs_per_session: usize,
    warmup: usize,
    wall_secs: f64,
    tally: Tally,
}

/// Latency percentiles in milliseconds, by nearest rank.
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn of(latencies_us: &[u64]) -> Option<Self> {
        let mut sorted = latencies_us.to_vec();
        sorted.sort_unstable();
        let max = *sorted.last()?;
        let at = |p: f64| {
            let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            ms(sorted[rank.clamp(1, sorted.len()) - 1])
        };
        Some(Self {
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: ms(max),
        })
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    fn runs_per_sec(&self) -> f64 {
        if self.wall_secs > 0.0 {
            self.tally.completed as f64 / self.wall_secs
        } else {
            0.0
        }
    }

    fn json(&self) -> Value {
        let t = &self.tally;
        let latency = Latency::of(&t.latencies_us).map(|l| {
            json!({ "p50": round3(l.p50), "p90": round3(l.p90), "p99": round3(l.p99), "max": round3(l.max) })
        });
        json!({
            "sessions": self.sessions,
            "connected": self.connected,
            "connect_secs": round3(self.connect_secs),
            "runs_per_session": self.runs_per_session,
            "warmup": self.warmup,
            "runs": t.completed,
            "started": t.started,
            "wall_secs": round3(self.wall_secs),
            "runs_per_sec": round3(self.runs_per_sec()),
            "latency_ms": latency,
            "errors": t.errors(),
            "agent_errors": t.agent_errors,
            "error_frames": t.error_frames,
            "connect_failures": t.connect_failures,
            "disconnects": t.disconnects,
            "error_codes": t.codes,
            "acks": t.acks,
            "misrouted": t.misrouted,
            "missing": t.missing,
            "gaps": t.gaps,
            "after_terminal": t.after_terminal,
            "notices": t.notices,
            "ok": t.ok(),
        })
    }

    fn print(&self) {
        let t = &self.tally;
        println!(
            "sessions     {} of {} connected in {:.2} s; {} runs each, after {} warmup",
            self.connected, self.sessions, self.connect_secs, self.runs_per_session, self.warmup
        );
        println!(
            "runs         {} in {:.3} s = {:.1} runs/s",
            t.completed,
            self.wall_secs,
            self.runs_per_sec()
        );
        match Latency::of(&t.latencies_us) {
            Some(l) => println!(
                "latency ms   p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                l.p50, l.p90, l.p99, l.max
            ),
            None => println!("latency ms   -"),
        }
        println!(
            "errors       {} (agent_error {}, error frames {}, connect failures {}, disconnects {})",
            t.errors(),
            t.agent_errors,
            t.error_frames,
            t.connect_failures,
            t.disconnects
        );
        if !t.codes.is_empty() {
            let codes: Vec<String> = t.codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
            println!("error codes  {}", codes.join(", "));
        }
        println!(
            "checks       acks {}/{}  misrouted {}  missing {}  gaps {}  after terminal {}  plugin notices {}",
            t.acks, t.started, t.misrouted, t.missing, t.gaps, t.after_terminal, t.notices
        );
        println!("result       {}", if t.ok() { "ok" } else { "FAILED" });
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---- idle mode ----

/// Holds `count` idle sessions for `--hold-secs`, then closes them.
async fn hold_idle(
    args: &LoadgenArgs,
    credentials: Arc<Credentials>,
    count: usize,
) -> anyhow::Result<ExitCode> {
    // Small buffers keep the client lean too: an idle session reads only pings.
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    let slots = Arc::new(Semaphore::new(args.connect_concurrency));
    let stop = CancellationToken::new();
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..count {
        let (url, credentials, slots) = (args.url.clone(), credentials.clone(), slots.clone());
        let (stop, connected, failed, dropped) = (
            stop.clone(),
            connected.clone(),
            failed.clone(),
            dropped.clone(),
        );
        tasks.spawn(async move {
            match open(&url, &credentials, &slots, index, Some(config)).await {
                Ok(ws) => {
                    connected.fetch_add(1, Ordering::Relaxed);
                    if !hold(ws, &stop).await {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    None
                }
                Err(err) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    Some(err)
                }
            }
        });
    }

    let mut last = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut since_print = Instant::now();
    loop {
        tick.tick().await;
        let (up, down) = (
            connected.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
        );
        if up + down >= count {
            break;
        }
        if up != last && since_print.elapsed() >= Duration::from_secs(1) {
            eprintln!("connected {up}/{count} idle sessions");
            last = up;
            since_print = Instant::now();
        }
    }
    let up = connected.load(Ordering::Relaxed);
    let connect_secs = started.elapsed().as_secs_f64();
    // Tasks that are done by now are the failed connects: say why before holding.
    let mut counted = Failures::default();
    while let Some(result) = tasks.try_join_next() {
        match result {
            Ok(Some(err)) => counted.note(err),
            Ok(None) => {}
            Err(err) => counted.note(err.to_string()),
        }
    }
    counted.print();
    eprintln!(
        "connected {up} idle sessions in {connect_secs:.1} s ({} failed); holding for {} s",
        failed.load(Ordering::Relaxed),
        args.hold_secs
    );
    tokio::time::sleep(Duration::from_secs(args.hold_secs)).await;
    let still = up.saturating_sub(dropped.load(Ordering::Relaxed));
    eprintln!(
        "held {still} idle sessions for {} s; closing",
        args.hold_secs
    );
    stop.cancel();
    while let Some(result) = tasks.join_next().await {
        if let Err(err) = result {
            eprintln!("error: an idle session task failed: {err}");
        }
    }

    let failed = failed.load(Ordering::Relaxed);
    let dropped = dropped.load(Ordering::Relaxed);
    if args.json {
        let report = json!({
            "idle": count,
            "connected": up,
            "connect_failures": failed,
            "dropped": dropped,
            "connect_secs": round3(connect_secs),
            "hold_secs": args.hold_secs,
            "ok": failed == 0 && dropped == 0,
        });
        println!("{report}");
    } else {
        println!(
            "idle         {up} of {count} connected in {connect_secs:.2} s, held {} s; \
             {failed} failed, {dropped} dropped",
            args.hold_secs
        );
    }
    Ok(if failed == 0 && dropped == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Keeps one idle session open until `stop`; false if the host closed it first.
async fn hold(mut ws: Ws, stop: &CancellationToken) -> bool {
    let mut keepalive = interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
    let mut pings = 0u64;
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
                return true;
            }
            // Reading is what answers the host's pings.
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return false,
                Some(Ok(_)) => {}
            },
            _ = keepalive.tick() => {
                pings += 1;
                let ping = Command {
                    id: format!("p{pings}"),
                    kind: CommandKind::Ping,
                }
                .to_text();
                if ws.send(Message::text(ping)).await.is_err() {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let latencies: Vec<u64> = (1..=100).map(|ms| ms * 1000).collect();
        let l = Latency::of(&latencies).expect("some latencies");
        assert_eq!((l.p50, l.p90, l.p99, l.max), (50.0, 90.0, 99.0, 100.0));
        let one = Latency::of(&[2500]).expect("one latency");
        assert_eq!((one.p50, one.max), (2.5, 2.5));
        assert!(Latency::of(&[]).is_none());
    }
}
