//! Deleting old run events, a little at a time.
//!
//! Every `period`, the task deletes the events of runs that ended more than
//! `max_age` ago, in writes of at most `batch` rows with a pause between
//! them, so live runs' events never wait long behind it in the store's
//! writer queue. Threads, messages and run records are kept; a run whose
//! events are gone answers `run.subscribe` with `expired`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netra_store::Store;
use tokio_util::sync::CancellationToken;

/// How long run events are kept, and how cleanup paces itself.
#[derive(Clone, Debug)]
pub struct Retention {
    /// Events of runs that ended longer ago than this are deleted.
    pub max_age: Duration,
    /// How often cleanup runs.
    pub period: Duration,
    /// Most rows one write deletes.
    pub batch: usize,
    /// Pause between two writes of one cleanup.
    pub pause: Duration,
}

impl Retention {
    /// Keeps events for `max_age`, cleaning up every minute in writes of 500 rows.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            period: Duration::from_secs(60),
            batch: 500,
            pause: Duration::from_millis(20),
        }
    }
}

/// Most a batch grows to, as a multiple of the policy's batch.
const MAX_GROWTH: usize = 16;

/// The batch after a full one: twice as large, up to `MAX_GROWTH` times the
/// policy's. A backlog (runs written faster than one batch per pause) is
/// then deleted faster each step, so retention keeps up with any run rate
/// the writer can take, while a small backlog still goes in small writes.
fn next_batch(batch: usize, base: usize) -> usize {
    batch
        .saturating_mul(2)
        .min(base.max(1).saturating_mul(MAX_GROWTH))
}

/// Runs cleanup until `shutdown`; the first one right away.
pub async fn run(store: Arc<dyn Store>, policy: Retention, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(policy.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(cutoff) = SystemTime::now().checked_sub(policy.max_age) else {
            continue;
        };
        let mut deleted = 0;
        let mut batch = policy.batch;
        loop {
            let store = store.clone();
            let step = tokio::task::spawn_blocking(move || store.prune_events(cutoff, batch)).await;
            match step {
                Ok(Ok(n)) => {
                    deleted += n;
                    if n < batch {
                        break;
                    }
                    batch = next_batch(batch, policy.batch);
                }
                Ok(Err(err)) => {
                    tracing::error!("event retention failed: {err}");
                    break;
                }
                Err(err) => {
                    tracing::error!("event retention task failed: {err}");
                    break;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(policy.pause) => {}
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, "deleted run events past the retention age");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_while_full_up_to_a_bound() {
        let mut batch = 500;
        let mut seen = Vec::new();
        for _ in 0..6 {
            batch = next_batch(batch, 500);
            seen.push(batch);
        }
        assert_eq!(seen, [1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(next_batch(1, 1), 2);
        assert_eq!(next_batch(0, 0), 0);
    }
}
