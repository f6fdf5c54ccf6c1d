//! The circuit breaker of one endpoint: a pure state machine driven by
//! outcomes and the current time (see the module above for its states).

use std::time::{Duration, Instant};

use netra_llm::jitter;

use super::{HealthPolicy, JITTER, MAX_SLEEP, MIN_PERIOD};
use crate::protocol::ready::BreakerState;

/// Why a breaker refused a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Rejected {
    /// Open; a trial is allowed after `retry_in`.
    Open { retry_in: Duration },
    /// Half-open, and the one trial call is out.
    TrialInFlight,
}

/// The settings of a breaker, resolved from the policy.
#[derive(Clone, Copy, Debug)]
struct BreakerConfig {
    threshold: u32,
    first_open: Duration,
    max_open: Duration,
    /// How long a trial call may stay unreported before another is allowed.
    trial_lease: Duration,
}

impl BreakerConfig {
    fn from_policy(policy: &HealthPolicy) -> Self {
        let max_open = policy.max_open_for.max(MIN_PERIOD);
        Self {
            threshold: policy.failure_threshold.max(1),
            first_open: policy.open_for.clamp(MIN_PERIOD, max_open),
            max_open,
            trial_lease: max_open.max(policy.timeout),
        }
    }
}

/// A circuit breaker: a pure state machine. Every method takes the current
/// time instead of reading a clock, so tests drive it without sleeping; the
/// only randomness is the jitter of open periods, from its own generator.
pub(super) struct Breaker {
    config: BreakerConfig,
    state: BreakerState,
    pub(super) failures: u32,
    pub(super) last_error: Option<String>,
    /// A success was seen since the breaker last closed (or was created).
    verified: bool,
    /// Length of the current open period, before jitter.
    period: Duration,
    /// End of the open period (meaningful when open).
    open_until: Instant,
    /// When the current half-open trial was handed out.
    trial_since: Option<Instant>,
    rng: fastrand::Rng,
}

impl Breaker {
    pub(super) fn new(policy: &HealthPolicy, rng: fastrand::Rng) -> Self {
        Self {
            config: BreakerConfig::from_policy(policy),
            state: BreakerState::Closed,
            failures: 0,
            last_error: None,
            verified: false,
            period: Duration::ZERO,
            open_until: Instant::now(),
            trial_since: None,
            rng,
        }
    }

    pub(super) fn state(&self) -> BreakerState {
        self.state
    }

    pub(super) fn healthy(&self) -> bool {
        self.state == BreakerState::Closed && self.verified
    }

    pub(super) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Asks to send one call. Closed: yes. Open: no, until the open period
    /// is over; then the breaker turns half-open and this call is the trial.
    /// Half-open: yes only if no trial is out (or the last one's lease ran out).
    pub(super) fn try_acquire(&mut self, now: Instant) -> Result<(), Rejected> {
        match self.state {
            BreakerState::Closed => Ok(()),
            BreakerState::Open if now < self.open_until => Err(Rejected::Open {
                retry_in: self.open_until - now,
            }),
            BreakerState::Open => {
                self.state = BreakerState::HalfOpen;
                self.trial_since = Some(now);
                Ok(())
            }
            BreakerState::HalfOpen => match self.trial_since {
                Some(since) if now.saturating_duration_since(since) < self.config.trial_lease => {
                    Err(Rejected::TrialInFlight)
                }
                _ => {
                    self.trial_since = Some(now);
                    Ok(())
                }
            },
        }
    }

    /// A call or probe succeeded.
    pub(super) fn on_success(&mut self) {
        match self.state {
            BreakerState::Closed => {
                self.failures = 0;
                self.verified = true;
            }
            BreakerState::HalfOpen => self.close(),
            BreakerState::Open => {}
        }
    }

    /// A call or probe failed with `reason`.
    pub(super) fn on_failure(&mut self, now: Instant, reason: String) {
        match self.state {
            BreakerState::Closed => {
                self.count_failure(reason);
                if self.failures >= self.config.threshold {
                    self.open(now, self.config.first_open);
                }
            }
            BreakerState::HalfOpen => {
                self.count_failure(reason);
                let doubled = self.period.saturating_mul(2);
                self.open(
                    now,
                    doubled.clamp(self.config.first_open, self.config.max_open),
                );
            }
            BreakerState::Open => {}
        }
    }

    /// Counts a failure without any transition (start attempts).
    pub(super) fn count_failure(&mut self, reason: String) {
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(reason);
    }

    /// Opens for the first period, whatever the count (start gave up).
    pub(super) fn trip(&mut self, now: Instant) {
        self.open(now, self.config.first_open);
    }

    /// Closes and forgets the failures (a success at start or in a trial).
    pub(super) fn close(&mut self) {
        self.state = BreakerState::Closed;
        self.failures = 0;
        self.verified = true;
        self.period = Duration::ZERO;
        self.trial_since = None;
    }

    pub(super) fn open(&mut self, now: Instant, period: Duration) {
        self.state = BreakerState::Open;
        self.verified = false;
        self.period = period;
        self.open_until = later(now, jitter(period, JITTER, &mut self.rng));
        self.trial_since = None;
    }

    /// Time left in the open period, when open.
    pub(super) fn retry_in(&self, now: Instant) -> Option<Duration> {
        (self.state == BreakerState::Open).then(|| self.open_until.saturating_duration_since(now))
    }

    /// When `try_acquire` may next succeed.
    pub(super) fn next_try(&self, now: Instant) -> Instant {
        match (self.state, self.trial_since) {
            (BreakerState::Open, _) => self.open_until,
            (BreakerState::HalfOpen, Some(since)) => later(since, self.config.trial_lease),
            _ => now,
        }
    }
}

/// `now + after`, saturating far in the future instead of overflowing.
pub(super) fn later(now: Instant, after: Duration) -> Instant {
    now.checked_add(after)
        .or_else(|| now.checked_add(MAX_SLEEP))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            open_for: Duration::from_secs(1),
            max_open_for: Duration::from_secs(5),
            ..HealthPolicy::default()
        }
    }

    fn breaker() -> Breaker {
        Breaker::new(&policy(), fastrand::Rng::with_seed(7))
    }

    fn fail(breaker: &mut Breaker, now: Instant) {
        breaker.on_failure(now, "connection refused".to_owned());
    }

    /// Past the longest jittered `period`.
    fn past(period: Duration) -> Duration {
        period.mul_f64(1.0 + JITTER) + Duration::from_millis(1)
    }

    #[test]
    fn threshold_opens_the_breaker() {
        let mut b = breaker();
        let t0 = Instant::now();
        fail(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.try_acquire(t0), Ok(()));
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.failures, 3);
        assert!(!b.healthy());
    }

    #[test]
    fn a_success_while_closed_resets_the_count() {
        let mut b = breaker();
        let t0 = Instant::now();
        fail(&mut b, t0);
        fail(&mut b, t0);
        b.on_success();
        fail(&mut b, t0);
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failures, 2);
    }

    #[test]
    fn open_rejects_with_the_time_to_the_next_trial() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let Err(Rejected::Open { retry_in }) = b.try_acquire(t0 + Duration::from_millis(100))
        else {
            panic!("an open breaker let a call through");
        };
        assert!(retry_in <= Duration::from_millis(1000), "{retry_in:?}");
        assert!(retry_in >= Duration::from_millis(800), "{retry_in:?}");
        assert_eq!(b.last_error(), Some("connection refused"));
        // Outcomes of calls that left before the breaker opened change nothing.
        b.on_success();
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.failures, 3);
    }

    #[test]
    fn half_open_after_the_open_period_with_one_trial_at_a_time() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let t1 = t0 + past(Duration::from_secs(1));
        assert_eq!(b.try_acquire(t1), Ok(()));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert_eq!(b.try_acquire(t1), Err(Rejected::TrialInFlight));
        assert_eq!(
            b.try_acquire(t1 + Duration::from_secs(1)),
            Err(Rejected::TrialInFlight)
        );
        // A trial nobody reports frees its slot after the lease.
        let t2 = t1 + b.config.trial_lease;
        assert_eq!(b.try_acquire(t2), Ok(()));
        assert_eq!(b.try_acquire(t2), Err(Rejected::TrialInFlight));
    }

    #[test]
    fn a_successful_trial_closes_and_resets() {
        let mut b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            fail(&mut b, t0);
        }
        let t1 = t0 + past(Duration::from_secs(1));
        assert_eq!(b.try_acquire(t1), Ok(()));
        b.on_success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failures, 0);
        assert!(b.healthy());
        assert_eq!(b.try_acquire(t1), Ok(()));
        assert_eq!(b.try_acquire(t1), Ok(()));
        // Next time it opens, the period starts over at `open_for`.
        for _ in 0..3 {
            fail(&mut b, t1);
        }
        assert_eq!(b.period, Duration::from_secs(1));
    }

    #[test]
    fn failed_trials_double_the_open_period_up_to_the_cap() {
        let mut b = breaker();
        let mut now = Instant::now();
        for _ in 0..3 {
            fail(&mut b, now);
        }
        let mut periods = vec![b.period];
        for _ in 0..5 {
            let wait = b.open_until - now;
            assert!(
                wait >= b.period.mul_f64(1.0 - JITTER) && wait <= b.period.mul_f64(1.0 + JITTER)
            );
            assert!(
                b.try_acquire(now + wait - Duration::from_millis(1))
                    .is_err()
            );
            now += wait;
            assert_eq!(b.try_acquire(now), Ok(()));
            fail(&mut b, now);
            assert_eq!(b.state(), BreakerState::Open);
            periods.push(b.period);
        }
        let secs: Vec<u64> = periods.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 5, 5, 5]);
        assert_eq!(b.failures, 8);
    }

    #[test]
    fn zero_periods_are_raised() {
        let policy = HealthPolicy {
            open_for: Duration::ZERO,
            max_open_for: Duration::ZERO,
            failure_threshold: 0,
            ..HealthPolicy::default()
        };
        let mut b = Breaker::new(&policy, fastrand::Rng::with_seed(1));
        let t0 = Instant::now();
        fail(&mut b, t0);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.period, MIN_PERIOD);
    }
}
