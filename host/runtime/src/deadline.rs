//! When a call must stop: the [`Deadline`] a store's call runs against, and
//! [`until`], which awaits a call no longer than that.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
// Tokio's clock, so that a test with paused time sees the deadline move
// with the timers that wait for it.
use tokio::time::Instant;

/// When a store's current call must stop. Shared by the epoch callback (a
/// guest computing past it traps), [`until`] (a guest waiting in the host
/// past it is dropped) and the host functions that wait on a person
/// (`interaction`), which stop the clock while they wait: time spent waiting
/// for a user's answer is bounded by its own limit, not by the deadline.
#[derive(Clone)]
pub(crate) struct Deadline(Arc<DeadlineInner>);

struct DeadlineInner {
    clock: Mutex<Clock>,
    /// Woken when the clock starts again, so [`until`] re-arms.
    resumed: Notify,
}

struct Clock {
    at: Instant,
    /// Since when the clock has stood still (a question is waiting).
    paused: Option<Instant>,
}

impl Deadline {
    pub(crate) fn new(at: std::time::Instant) -> Self {
        let at = Instant::from_std(at);
        Self(Arc::new(DeadlineInner {
            clock: Mutex::new(Clock { at, paused: None }),
            resumed: Notify::new(),
        }))
    }

    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.0.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a call's clock: it must stop `after` from now. Returns the
    /// deadline, for [`until`].
    pub(crate) fn start(&self, after: Duration) -> Deadline {
        *self.clock() = Clock {
            at: Instant::now() + after,
            paused: None,
        };
        self.clone()
    }

    /// When the call must stop, were the clock to run from now on.
    pub(crate) fn at(&self) -> std::time::Instant {
        let clock = self.clock();
        let at = match clock.paused {
            Some(since) => clock.at + since.elapsed(),
            None => clock.at,
        };
        at.into_std()
    }

    /// Whether the call is out of time (never while the clock stands still).
    pub(crate) fn passed(&self) -> bool {
        let clock = self.clock();
        clock.paused.is_none() && Instant::now() >= clock.at
    }

    /// Stops the clock until the returned guard is dropped.
    pub(crate) fn pause(&self) -> Paused {
        let mut clock = self.clock();
        if clock.paused.is_none() {
            clock.paused = Some(Instant::now());
        }
        Paused(self.clone())
    }
}

/// The clock of a [`Deadline`] standing still; dropping it starts it again,
/// the deadline moved by the time it stood.
pub(crate) struct Paused(Deadline);

impl Drop for Paused {
    fn drop(&mut self) {
        let mut clock = self.0.clock();
        if let Some(since) = clock.paused.take() {
            clock.at += since.elapsed();
        }
        drop(clock);
        self.0.0.resumed.notify_waiters();
    }
}

/// Awaits a guest call until its `deadline`, whatever the guest waits on. The
/// epoch callback stops a guest that computes past its deadline; a guest
/// blocked in the host (a WASI sleep or poll, an HTTP request or body, a tool
/// call, `llm.chat`, a nested run) never reaches an epoch check, so its call
/// is dropped here instead, and with it whatever it waits on. While the clock
/// stands still (a question waits for its answer) the call is not dropped.
/// `None` means the deadline passed; the store must not be called again.
pub(crate) async fn until<T>(deadline: &Deadline, call: impl Future<Output = T>) -> Option<T> {
    let mut call = std::pin::pin!(call);
    loop {
        let resumed = deadline.0.resumed.notified();
        let mut resumed = std::pin::pin!(resumed);
        resumed.as_mut().enable();
        let (at, paused) = {
            let clock = deadline.clock();
            (clock.at, clock.paused.is_some())
        };
        let expiry = async {
            if paused {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep_until(at).await;
        };
        tokio::select! {
            biased;
            out = &mut call => return Some(out),
            () = resumed => {}
            () = expiry => {
                if deadline.passed() {
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_call_waiting_with_the_clock_stopped_outlives_its_deadline() {
        let deadline = Deadline::new(std::time::Instant::now());
        deadline.start(Duration::from_secs(1));
        // A call that asks a question for 3 s, then works 0.5 s more.
        let question = {
            let deadline = deadline.clone();
            async move {
                let stopped = deadline.pause();
                tokio::time::sleep(Duration::from_secs(3)).await;
                assert!(!deadline.passed(), "the clock stood still");
                drop(stopped);
                tokio::time::sleep(Duration::from_millis(500)).await;
                "answered"
            }
        };
        assert_eq!(until(&deadline, question).await, Some("answered"));
        // Once it runs again, the rest of its time still bounds it.
        let slow = async {
            let stopped = deadline.pause();
            tokio::time::sleep(Duration::from_secs(1)).await;
            drop(stopped);
            tokio::time::sleep(Duration::from_secs(5)).await;
        };
        deadline.start(Duration::from_secs(1));
        assert_eq!(until(&deadline, slow).await, None);
    }
}
