//! Readiness: the golden path (a self-check run through the real host) and
//! the `/readyz` report of every dependency node, breaker and the self-check.
//!
//! The host is ready once the golden path has passed (or none is
//! configured). A degraded plugin does not make the host unready: it serves
//! everything else and says what is wrong in the report.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::deps::Dependencies;
use crate::health::Health;
pub use crate::protocol::ready::GoldenPathResult;
use crate::protocol::ready::ReadyReport;
use crate::protocol::{EventKind, Outcome, RunEvent, timestamp_of};
use crate::run_log::Outbox;
use crate::runs::{Current, Runs};

/// The user the self-check runs as (its threads are stored under it).
pub const SELF_CHECK_USER: &str = "netra:self-check";

/// The longest wait between two tries of a failing golden path.
pub const MAX_SELF_CHECK_RETRY: Duration = Duration::from_secs(300);

/// What the golden path runs: netra.toml's `[health.golden_path]`.
pub use netra_config::GoldenPath;

/// What `/readyz` reports.
pub struct Readiness {
    /// The served plugins, whose graph is reported.
    current: Arc<Current>,
    health: Arc<Health>,
    golden_path: Option<GoldenPath>,
    result: Mutex<GoldenPathResult>,
    /// Serializes self-checks (at start and on demand).
    running: tokio::sync::Mutex<()>,
}

impl Readiness {
    /// Readiness over the graph of the `current` plugins and endpoints
    /// `health`, gated by `golden_path` if one is configured.
    pub fn new(
        current: Arc<Current>,
        health: Arc<Health>,
        golden_path: Option<GoldenPath>,
    ) -> Arc<Self> {
        let result = match &golden_path {
            Some(g) => GoldenPathResult::Pending {
                agent: g.agent.clone(),
            },
            None => GoldenPathResult::NotConfigured,
        };
        Arc::new(Self {
            current,
            health,
            golden_path,
            result: Mutex::new(result),
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// The dependency graph of the plugins served now.
    pub fn dependencies(&self) -> Option<Arc<Dependencies>> {
        self.current.get().deps.clone()
    }

    fn result(&self) -> GoldenPathResult {
        self.result
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the host is ready to serve.
    pub fn is_ready(&self) -> bool {
        self.result().is_ok()
    }

    /// The `/readyz` body for an admin; [`ReadyReport::public`] is what
    /// anyone else sees.
    pub fn report(&self) -> ReadyReport {
        let golden_path = self.result();
        ReadyReport {
            ready: golden_path.is_ok(),
            golden_path,
            nodes: self
                .dependencies()
                .map(|deps| deps.statuses())
                .unwrap_or_default(),
            endpoints: self.health.snapshot(),
        }
    }

    /// Runs the golden path now (waiting for one already going) and records
    /// its result.
    pub async fn self_check(&self, runs: &Arc<Runs>) -> GoldenPathResult {
        let Some(spec) = &self.golden_path else {
            return GoldenPathResult::NotConfigured;
        };
        let _one_at_a_time = self.running.lock().await;
        let result = golden_path(runs, spec).await;
        match &result {
            GoldenPathResult::Passed {
                run_id,
                duration_ms,
                ..
            } => tracing::info!(agent = %spec.agent, %run_id, duration_ms, "golden path passed"),
            GoldenPathResult::Failed { reason, .. } => {
                tracing::warn!(agent = %spec.agent, "golden path failed: {reason}")
            }
            _ => {}
        }
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = result.clone();
        result
    }

    /// At start: runs the golden path, and again until it passes once (a
    /// dependency may still be coming up): after `retry`, then twice as long
    /// each time, up to [`MAX_SELF_CHECK_RETRY`] (each try stores a run).
    pub fn spawn_self_check(
        self: &Arc<Self>,
        runs: Arc<Runs>,
        retry: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut wait = retry.min(MAX_SELF_CHECK_RETRY);
            loop {
                if this.self_check(&runs).await.is_ok() {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return,
                }
                wait = (wait * 2).min(MAX_SELF_CHECK_RETRY);
            }
        })
    }
}

/// One self-check run: the agent must complete, call at least one tool
/// successfully, and (if asked) answer with the expected text.
async fn golden_path(runs: &Arc<Runs>, spec: &GoldenPath) -> GoldenPathResult {
    let began = Instant::now();
    let failed = |run_id: Option<String>, reason: String| GoldenPathResult::Failed {
        agent: spec.agent.clone(),
        run_id,
        reason,
        at: timestamp_of(SystemTime::now()),
    };
    let (outbox, mut frames, _overflow) = Outbox::new(4096);
    let (ack_tx, ack_rx) = tokio::sync::oneshot::channel();
    let started = runs
        .start(
            SELF_CHECK_USER,
            &spec.agent,
            spec.input.clone(),
            None,
            outbox,
            move |ack| {
                let _ = ack_tx.send(ack.map(|run| run.run_id.clone()).map_err(|r| r.message));
            },
        )
        .await;
    if let Err(refused) = started {
        return failed(None, format!("the run was refused: {}", refused.message));
    }
    let run_id = match ack_rx.await {
        Ok(Ok(run_id)) => run_id,
        Ok(Err(reason)) => return failed(None, format!("the run was not recorded: {reason}")),
        Err(_) => return failed(None, "the run was dropped before it was recorded".into()),
    };
    let mut tools = Vec::new();
    let mut tool_errors = Vec::new();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    loop {
        let frame = match tokio::time::timeout_at(deadline, frames.recv()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => return failed(Some(run_id), "the run's events stopped".into()),
            Err(_) => {
                runs.cancel(SELF_CHECK_USER, &run_id).ok();
                return failed(
                    Some(run_id),
                    format!(
                        "no result within {}",
                        humantime::format_duration(spec.timeout)
                    ),
                );
            }
        };
        // The frames are this host's own run events, decoded as the wire
        // type they were written as.
        let Ok(event) = serde_json::from_str::<RunEvent<'_>>(&frame) else {
            continue;
        };
        match event.kind.into_owned() {
            EventKind::ToolCompleted {
                tool, ok, error, ..
            } => match (ok, error) {
                (Some(_), _) => tools.push(tool),
                (None, error) => {
                    let message = error.map(|e| e.message).unwrap_or_default();
                    tool_errors.push(format!("{tool}: {message}"));
                }
            },
            EventKind::AgentError { code, message, .. } => {
                return failed(Some(run_id), format!("agent_error {code}: {message}"));
            }
            EventKind::AgentCompleted {
                output, outcome, ..
            } => {
                let reason = if outcome != Outcome::Completed {
                    Some(format!("the run ended {}", outcome_name(outcome)))
                } else if tools.is_empty() {
                    Some(if tool_errors.is_empty() {
                        "the agent completed without calling a tool".to_string()
                    } else {
                        format!("every tool call failed: {}", tool_errors.join("; "))
                    })
                } else {
                    spec.expect
                        .as_ref()
                        .filter(|expect| !output.contains(expect.as_str()))
                        .map(|expect| format!("the answer {output:?} does not contain {expect:?}"))
                };
                return match reason {
                    Some(reason) => failed(Some(run_id), reason),
                    None => GoldenPathResult::Passed {
                        agent: spec.agent.clone(),
                        run_id,
                        tools,
                        duration_ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
                        at: timestamp_of(SystemTime::now()),
                    },
                };
            }
            _ => {}
        }
    }
}

/// `completed` or `cancelled`.
fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Completed => "completed",
        Outcome::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_golden_path_state_is_the_reports_state() {
        let at = "2026-01-01T00:00:00.000Z".to_string();
        for result in [
            GoldenPathResult::NotConfigured,
            GoldenPathResult::Pending { agent: "a".into() },
            GoldenPathResult::Passed {
                agent: "a".into(),
                run_id: "r".into(),
                tools: Vec::new(),
                duration_ms: 1,
                at: at.clone(),
            },
            GoldenPathResult::Failed {
                agent: "a".into(),
                run_id: None,
                reason: "/secret/path".into(),
                at: at.clone(),
            },
        ] {
            let full = serde_json::to_value(&result).expect("serializes");
            let state = serde_json::to_value(result.state()).expect("serializes");
            assert_eq!(full["state"], state, "{full}");
            let back: GoldenPathResult = serde_json::from_value(full).expect("decodes");
            assert_eq!(back, result);
        }
    }
}
