//! Health of the external endpoints netra calls (OpenAI-compatible LLM
//! providers): probes, and a circuit breaker per endpoint.
//!
//! Each endpoint has a [`Breaker`], a pure state machine driven by outcomes
//! and the current time:
//!
//! - **Closed**: calls go out. `failure_threshold` consecutive failures (from
//!   probes or from real traffic reported with [`Health::record`]) open it.
//! - **Open**: [`Health::check`] refuses calls at once, with the last error
//!   and the time until the next trial. The open period starts at `open_for`
//!   and doubles after each failed trial, up to `max_open_for`; every period
//!   gets ±10% jitter so endpoints that failed together do not retry together.
//! - **HalfOpen**: the open period is over; exactly one trial call (a probe
//!   of the monitor, or a real call let through by `check`) goes out at a
//!   time. Its success closes the breaker and resets the count, its failure
//!   opens it again for a doubled period.
//!
//! A probe asks one question: does the endpoint answer? It is netra-llm's
//! [`Probe`], a `GET {base_url}/models` through the provider's own HTTP
//! client (so with a real TLS handshake for `https://`): any answer below 500
//! except 429 counts as up (a 401 or 403 is the provider's business with our
//! key, a 404 or 405 a provider without a model list), a 5xx or 429, a refused
//! or failed connection or handshake, a timeout or a malformed answer as down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use netra_llm::{Backoff, Probe, jitter};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

mod breaker;

use breaker::{Breaker, Rejected, later};

/// Jitter of the probe interval and of open periods: ±10%.
const JITTER: f64 = 0.1;
/// Shortest interval or open period: a zero in the policy must not turn the
/// monitor into a busy loop.
const MIN_PERIOD: Duration = Duration::from_millis(10);
/// Longest single sleep of the monitor; it then looks again. Keeps a huge
/// configured period from overflowing a timer.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

/// How endpoints are probed and when their breakers open: netra.toml's
/// `[health]`, with its defaults (the golden path is `ready`'s).
pub use netra_config::Health as HealthPolicy;

pub use crate::protocol::ready::{BreakerState, EndpointStatus};

/// The endpoints, their breakers and the probes; shared as `Arc<Health>`.
pub struct Health {
    policy: HealthPolicy,
    endpoints: Mutex<BTreeMap<String, Endpoint>>,
    changes: watch::Sender<u64>,
}

struct Endpoint {
    url: String,
    /// What to probe, or why the URL cannot be probed (the probe's failure).
    target: Result<Probe, String>,
    breaker: Breaker,
    last_checked: Option<Instant>,
    /// When the monitor probes next while the breaker is closed.
    next_probe: Option<Instant>,
    checks: u64,
}

impl Health {
    /// No endpoints yet; add them with [`Health::add_endpoint`].
    pub fn new(policy: HealthPolicy) -> Arc<Self> {
        Arc::new(Self {
            policy,
            endpoints: Mutex::new(BTreeMap::new()),
            changes: watch::Sender::new(0),
        })
    }

    /// Registers an endpoint by its base URL (`http://127.0.0.1:11434/v1`).
    /// Call it before [`Health::check_all_at_start`] and
    /// [`Health::spawn_monitor`]: the monitor watches the endpoints present
    /// when it starts. A URL that cannot be probed is not refused here: its
    /// probes fail with the reason, so the problem shows in the status. A
    /// second call with the same name replaces the endpoint.
    pub fn add_endpoint(&self, name: &str, url: &str) {
        let endpoint = Endpoint {
            url: url.to_owned(),
            target: Probe::new(url),
            breaker: Breaker::new(&self.policy, fastrand::Rng::new()),
            last_checked: None,
            next_probe: None,
            checks: 0,
        };
        self.lock().insert(name.to_owned(), endpoint);
    }

    /// The breaker state of `name`, or `None` for an unknown endpoint.
    pub fn state(&self, name: &str) -> Option<BreakerState> {
        self.lock().get(name).map(|e| e.breaker.state())
    }

    /// Fast, no I/O: `Ok` when a call may go out (closed; half-open lets
    /// exactly one trial call through at a time), `Err(reason)` otherwise:
    /// "endpoint llm.local is unavailable: connection refused (breaker open,
    /// next trial in 800 ms)".
    ///
    /// An Ok in HalfOpen hands the caller the trial: report its outcome with
    /// [`Health::record`]. A trial never reported frees its slot after
    /// `max_open_for` (or `timeout`, if longer). An unknown endpoint is an
    /// error: a call to an endpoint nobody registered is a wiring bug.
    pub fn check(&self, name: &str) -> Result<(), String> {
        let verdict = self.update(name, |endpoint, now| {
            let breaker = &mut endpoint.breaker;
            breaker.try_acquire(now).map_err(|rejected| {
                (
                    rejected,
                    breaker.last_error().unwrap_or("failing").to_owned(),
                )
            })
        });
        match verdict {
            None => Err(format!("endpoint {name} is not configured")),
            Some(Ok(())) => Ok(()),
            Some(Err((Rejected::Open { retry_in }, reason))) => Err(format!(
                "endpoint {name} is unavailable: {reason} (breaker open, next trial in {})",
                fmt_duration(retry_in)
            )),
            Some(Err((Rejected::TrialInFlight, reason))) => Err(format!(
                "endpoint {name} is unavailable: {reason} (breaker half-open, a trial call is in flight)"
            )),
        }
    }

    /// Reports the outcome of a real call (the LLM provider calls this):
    /// failures count toward the threshold, a success resets the count, and
    /// in half-open a success closes and a failure opens again.
    ///
    /// Outcomes arriving while the breaker is open are of calls that left
    /// before it opened; they are ignored, only trials decide.
    pub fn record(&self, name: &str, outcome: Result<(), String>) {
        let known = self.update(name, |endpoint, now| match outcome {
            Ok(()) => endpoint.breaker.on_success(),
            Err(reason) => endpoint.breaker.on_failure(now, reason),
        });
        if known.is_none() {
            tracing::debug!(endpoint = name, "outcome for an unknown endpoint ignored");
        }
    }

    /// Every endpoint, sorted by name.
    pub fn snapshot(&self) -> Vec<EndpointStatus> {
        let now = Instant::now();
        self.lock()
            .iter()
            .map(|(name, endpoint)| EndpointStatus {
                name: name.clone(),
                url: endpoint.url.clone(),
                state: endpoint.breaker.state(),
                healthy: endpoint.breaker.healthy(),
                consecutive_failures: endpoint.breaker.failures,
                last_error: endpoint.breaker.last_error.clone(),
                last_checked_ms_ago: endpoint.last_checked.map(|at| {
                    u64::try_from(now.saturating_duration_since(at).as_millis()).unwrap_or(u64::MAX)
                }),
                checks: endpoint.checks,
            })
            .collect()
    }

    /// At start: probes every endpoint, concurrently, each up to
    /// `start_attempts` times with exponential backoff and jitter between
    /// attempts (100 ms, 200 ms, ... ±50%). Returns when all are settled; an
    /// endpoint still failing ends with its breaker open.
    ///
    /// The failed attempts count as consecutive failures, but the breaker
    /// only opens once the attempts are used up, whatever the threshold; a
    /// success closes it.
    pub async fn check_all_at_start(&self) {
        let targets: Vec<(String, Result<Probe, String>)> = self
            .lock()
            .iter()
            .map(|(name, endpoint)| (name.clone(), endpoint.target.clone()))
            .collect();
        join_all(
            targets
                .into_iter()
                .map(|(name, target)| self.start_one(name, target)),
        )
        .await;
    }

    async fn start_one(&self, name: String, target: Result<Probe, String>) {
        let mut rng = fastrand::Rng::new();
        let attempts = self.policy.start_attempts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Backoff::DEFAULT.pause(attempt - 1, &mut rng).min(MAX_SLEEP))
                    .await;
            }
            let outcome = probe(&target, self.policy.timeout).await;
            let interval = self.interval();
            let settled = self.update(&name, |endpoint, now| {
                endpoint.checks += 1;
                endpoint.last_checked = Some(now);
                endpoint.next_probe = Some(later(now, jitter(interval, JITTER, &mut rng)));
                match outcome {
                    Ok(()) => {
                        endpoint.breaker.close();
                        true
                    }
                    Err(reason) => {
                        tracing::debug!(endpoint = %name, attempt = attempt + 1, %reason, "start probe failed");
                        endpoint.breaker.count_failure(reason);
                        if attempt + 1 == attempts {
                            endpoint.breaker.trip(now);
                        }
                        false
                    }
                }
            });
            // `None`: the endpoint was replaced or never existed; stop.
            if settled != Some(false) {
                return;
            }
        }
    }

    /// Watches the endpoints until `shutdown`: while a breaker is closed, a
    /// probe every `interval` (±10%); while open, it waits out the open
    /// period, turns half-open and probes once: success closes (failures
    /// reset), failure opens again for a doubled period (up to
    /// `max_open_for`).
    ///
    /// An endpoint never probed is probed at once. All endpoints are watched
    /// inside the one returned task; it wakes on every change (a breaker
    /// opened by real traffic starts its open period at once).
    pub fn spawn_monitor(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let names: Vec<String> = self.lock().keys().cloned().collect();
        let health = self.clone();
        tokio::spawn(async move {
            join_all(
                names
                    .into_iter()
                    .map(|name| health.clone().watch_endpoint(name, shutdown.clone())),
            )
            .await;
        })
    }

    /// A counter that moves whenever an endpoint's state or healthy flag
    /// changes, so readiness can be recomputed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    async fn watch_endpoint(self: Arc<Self>, name: String, shutdown: CancellationToken) {
        let mut changes = self.subscribe();
        let mut rng = fastrand::Rng::new();
        loop {
            changes.borrow_and_update();
            let Some(step) = self.update(&name, |endpoint, now| endpoint.next_step(now)) else {
                return;
            };
            match step {
                Step::Probe(target) => {
                    let outcome = tokio::select! {
                        () = shutdown.cancelled() => return,
                        outcome = probe(&target, self.policy.timeout) => outcome,
                    };
                    let interval = self.interval();
                    self.update(&name, |endpoint, now| {
                        endpoint.checks += 1;
                        endpoint.last_checked = Some(now);
                        endpoint.next_probe = Some(later(now, jitter(interval, JITTER, &mut rng)));
                        match outcome {
                            Ok(()) => endpoint.breaker.on_success(),
                            Err(reason) => endpoint.breaker.on_failure(now, reason),
                        }
                    });
                }
                Step::Wait(until) => {
                    let wait = until
                        .saturating_duration_since(Instant::now())
                        .min(MAX_SLEEP);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                        changed = changes.changed() => {
                            // The sender lives in `self`, so this cannot end;
                            // if it did, fall back to the timer alone.
                            if changed.is_err() {
                                tokio::select! {
                                    () = shutdown.cancelled() => return,
                                    () = tokio::time::sleep(wait) => {}
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn interval(&self) -> Duration {
        self.policy.interval.max(MIN_PERIOD)
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Endpoint>> {
        // The map stays consistent even if a holder panicked: every update is
        // a few field writes.
        self.endpoints
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `change` on one endpoint under the lock; then, outside it, logs
    /// a state transition and bumps the change counter if the state or the
    /// healthy flag moved. `None` for an unknown endpoint.
    fn update<R>(&self, name: &str, change: impl FnOnce(&mut Endpoint, Instant) -> R) -> Option<R> {
        let now = Instant::now();
        let (result, transition) = {
            let mut endpoints = self.lock();
            let endpoint = endpoints.get_mut(name)?;
            let before = (endpoint.breaker.state(), endpoint.breaker.healthy());
            let result = change(endpoint, now);
            let breaker = &endpoint.breaker;
            let after = (breaker.state(), breaker.healthy());
            // The reason is copied only on a transition: `check` runs this
            // for every call.
            let transition = (before != after).then(|| {
                (
                    before,
                    after,
                    breaker.last_error.clone(),
                    breaker.retry_in(now),
                )
            });
            (result, transition)
        };
        if let Some((before, after, reason, retry_in)) = transition {
            log_transition(
                name,
                before,
                after,
                reason.as_deref().unwrap_or(""),
                retry_in,
            );
            self.changes
                .send_modify(|count| *count = count.wrapping_add(1));
        }
        Some(result)
    }
}

fn log_transition(
    name: &str,
    (from, _): (BreakerState, bool),
    (to, healthy): (BreakerState, bool),
    reason: &str,
    retry_in: Option<Duration>,
) {
    let next_trial_in = retry_in.map(fmt_duration).unwrap_or_default();
    match (from, to) {
        (BreakerState::Closed, BreakerState::Open) => {
            tracing::info!(
                endpoint = name,
                reason,
                next_trial_in,
                "endpoint unavailable: breaker opened"
            );
        }
        (_, BreakerState::Open) => {
            tracing::info!(
                endpoint = name,
                reason,
                next_trial_in,
                "endpoint still unavailable: breaker open again"
            );
        }
        (_, BreakerState::HalfOpen) => {
            tracing::debug!(
                endpoint = name,
                "open period over: breaker half-open, one trial call allowed"
            );
        }
        (BreakerState::Open | BreakerState::HalfOpen, BreakerState::Closed) => {
            tracing::info!(endpoint = name, "endpoint available again: breaker closed");
        }
        (BreakerState::Closed, BreakerState::Closed) if healthy => {
            tracing::info!(endpoint = name, "endpoint is up");
        }
        (BreakerState::Closed, BreakerState::Closed) => {}
    }
}

/// What the monitor does next for one endpoint.
enum Step {
    Probe(Result<Probe, String>),
    Wait(Instant),
}

impl Endpoint {
    /// Claims the half-open trial when the monitor's probe is to be it.
    fn next_step(&mut self, now: Instant) -> Step {
        match self.breaker.state() {
            BreakerState::Closed => match self.next_probe {
                Some(at) if at > now => Step::Wait(at),
                _ => Step::Probe(self.target.clone()),
            },
            BreakerState::Open | BreakerState::HalfOpen => match self.breaker.try_acquire(now) {
                Ok(()) => Step::Probe(self.target.clone()),
                Err(_) => Step::Wait(self.breaker.next_try(now)),
            },
        }
    }
}

/// `800 ms`, `2 s`, `1.5 s`.
fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// One probe, bounded by `timeout`; `Err` carries a short reason.
async fn probe(target: &Result<Probe, String>, timeout: Duration) -> Result<(), String> {
    let probe = target.as_ref().map_err(Clone::clone)?;
    match tokio::time::timeout(timeout, probe.check()).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("timed out after {}", fmt_duration(timeout))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netra_tests::stub::{TinyServer, closed_port};

    fn policy() -> HealthPolicy {
        HealthPolicy {
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(5),
            ..HealthPolicy::default()
        }
    }

    #[test]
    fn check_explains_an_open_breaker() {
        let health = Health::new(policy());
        health.add_endpoint("llm.local", "http://127.0.0.1:9/v1");
        assert_eq!(health.check("llm.local"), Ok(()));
        for _ in 0..3 {
            health.record("llm.local", Err("connection refused".to_owned()));
        }
        let err = health.check("llm.local").expect_err("open breaker");
        assert!(
            err.starts_with("endpoint llm.local is unavailable: connection refused (breaker open, next trial in "),
            "{err}"
        );
        assert_eq!(
            health.check("nope"),
            Err("endpoint nope is not configured".to_owned())
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_millis(800)), "800 ms");
        assert_eq!(fmt_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5 s");
    }

    #[test]
    fn health_is_send_and_sync() {
        fn shared<T: Send + Sync>() {}
        shared::<Health>();
        shared::<Arc<Health>>();
    }

    fn quick() -> HealthPolicy {
        HealthPolicy {
            interval: Duration::from_millis(50),
            timeout: Duration::from_secs(1),
            failure_threshold: 3,
            open_for: Duration::from_millis(50),
            max_open_for: Duration::from_millis(200),
            start_attempts: 2,
            golden_path: None,
        }
    }

    #[tokio::test]
    async fn start_check_closes_a_live_endpoint() {
        let server = TinyServer::models("200 OK");
        let url = server.base_url();
        let health = Health::new(quick());
        health.add_endpoint("llm", &url);
        let mut changes = health.subscribe();
        health.check_all_at_start().await;
        assert_eq!(health.state("llm"), Some(BreakerState::Closed));
        assert_eq!(health.check("llm"), Ok(()));
        let status = &health.snapshot()[0];
        assert!(status.healthy);
        assert_eq!(status.checks, 1);
        assert_eq!(status.consecutive_failures, 0);
        assert!(status.last_checked_ms_ago.is_some());
        assert!(changes.has_changed().expect("sender alive"));
        assert_eq!(*changes.borrow_and_update(), 1);
        drop(server);
    }

    #[tokio::test]
    async fn probes_report_status_timeouts_and_bad_urls() {
        let server = TinyServer::models("503 Service Unavailable");
        let busy = server.base_url();
        // Accepts and never answers.
        let silent = TinyServer::silent();
        let quiet = silent.base_url();

        let health = Health::new(HealthPolicy {
            timeout: Duration::from_millis(300),
            start_attempts: 1,
            ..quick()
        });
        health.add_endpoint("busy", &busy);
        health.add_endpoint("quiet", &quiet);
        health.add_endpoint("bad", "ftp://llm.local/v1");
        health.check_all_at_start().await;

        let snapshot = health.snapshot();
        let names: Vec<&str> = snapshot.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["bad", "busy", "quiet"]);
        for status in &snapshot {
            assert_eq!(status.state, BreakerState::Open, "{status:?}");
            assert!(!status.healthy);
        }
        let reason = |i: usize| snapshot[i].last_error.clone().unwrap_or_default();
        assert!(reason(0).starts_with("invalid URL"), "{}", reason(0));
        assert_eq!(reason(1), "HTTP 503");
        assert_eq!(reason(2), "timed out after 300 ms");
        drop(silent);
        drop(server);
    }

    #[tokio::test]
    async fn a_closed_port_opens_at_start_and_recovers_under_the_monitor() {
        let port = closed_port();
        let url = format!("http://127.0.0.1:{port}/v1");

        let health = Health::new(quick());
        health.add_endpoint("llm", &url);
        let changes = health.subscribe();
        health.check_all_at_start().await;
        assert_eq!(health.state("llm"), Some(BreakerState::Open));
        let status = &health.snapshot()[0];
        assert_eq!(status.consecutive_failures, 2);
        assert_eq!(status.checks, 2);
        assert_eq!(status.last_error.as_deref(), Some("connection refused"));
        let err = health.check("llm").expect_err("open breaker");
        assert!(err.contains("connection refused"), "{err}");
        let seen_at_start = *changes.borrow();
        assert!(seen_at_start >= 1);

        let server = TinyServer::models_on(port);
        let shutdown = CancellationToken::new();
        let monitor = health.spawn_monitor(shutdown.clone());

        let deadline = Instant::now() + Duration::from_secs(5);
        while health.state("llm") != Some(BreakerState::Closed) {
            assert!(Instant::now() < deadline, "still {:?}", health.snapshot());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(health.check("llm"), Ok(()));
        let status = &health.snapshot()[0];
        assert!(status.healthy);
        assert_eq!(status.consecutive_failures, 0);
        // Open -> HalfOpen -> Closed (healthy): at least two more changes.
        assert!(
            *changes.borrow() >= seen_at_start + 2,
            "{}",
            *changes.borrow()
        );

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), monitor)
            .await
            .expect("monitor stops on shutdown")
            .expect("monitor did not panic");
        drop(server);
    }
}
