//! A byte rate: a token bucket that may go into debt.
//!
//! A user's events (in the server) and the growth of their guests' memories
//! (in the CPU gate, `cpu`) are charged to one of these: a charge is never
//! refused (the event is made, the memory has grown), it lowers the level,
//! possibly below zero, and the user's work waits at its next chance until
//! the debt is repaid. That is how a quota throttles a producer in Kafka
//! (`producer_byte_rate`: the broker delays its answer) and an ingester in
//! Loki (`ingestion_rate_mb`/`ingestion_burst_size_mb`): the flood slows
//! down; nothing is dropped.

use std::time::{Duration, Instant};

/// How many bytes a user may spend, in a sustained rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRate {
    /// Bytes per second, sustained.
    pub per_sec: u64,
    /// Bytes that may go at once after a quiet spell (the bucket's size).
    pub burst: u64,
}

/// A [`ByteRate`]'s state: the level of the bucket at an instant.
#[derive(Debug)]
pub struct Bucket {
    rate: ByteRate,
    /// Bytes that may go now; negative while in debt.
    level: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(rate: ByteRate, now: Instant) -> Self {
        Self {
            rate,
            level: rate.burst as f64,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + elapsed * self.rate.per_sec as f64).min(self.rate.burst as f64);
        self.at = self.at.max(now);
    }

    /// Takes `bytes`, going into debt if there are not that many.
    pub fn charge(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.level -= bytes as f64;
    }

    /// How long until the debt is repaid; `None` when there is none.
    pub fn debt(&mut self, now: Instant) -> Option<Duration> {
        self.refill(now);
        if self.level >= 0.0 {
            return None;
        }
        let per_sec = self.rate.per_sec.max(1) as f64;
        Some(Duration::from_secs_f64(-self.level / per_sec))
    }

    /// When the bucket will be full again if nothing more is charged: until
    /// then, forgetting it would hand out a burst the user has spent.
    pub fn full_at(&mut self, now: Instant) -> Instant {
        self.refill(now);
        let missing = self.rate.burst as f64 - self.level;
        let per_sec = self.rate.per_sec.max(1) as f64;
        now + Duration::from_secs_f64((missing / per_sec).max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: ByteRate = ByteRate {
        per_sec: 1000,
        burst: 500,
    };

    #[test]
    fn a_burst_goes_at_once_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(RATE, t0);
        bucket.charge(500, t0);
        assert_eq!(bucket.debt(t0), None, "the burst is free");
        bucket.charge(250, t0);
        let wait = bucket.debt(t0).unwrap();
        assert!((wait.as_secs_f64() - 0.25).abs() < 1e-9, "{wait:?}");
        // Paid back at the rate.
        assert!(bucket.debt(t0 + Duration::from_millis(100)).is_some());
        assert_eq!(bucket.debt(t0 + Duration::from_millis(250)), None);
    }

    #[test]
    fn a_quiet_spell_refills_up_to_the_burst_only() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(RATE, t0);
        bucket.charge(500, t0);
        let later = t0 + Duration::from_secs(60);
        assert_eq!(bucket.full_at(later), later);
        bucket.charge(600, later);
        let wait = bucket.debt(later).unwrap();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
    }

    #[test]
    fn full_at_says_when_the_spent_burst_is_back() {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(RATE, t0);
        bucket.charge(800, t0);
        // 300 in debt plus 500 to refill, at 1000 a second.
        let full = bucket.full_at(t0);
        assert!(
            (full.duration_since(t0).as_secs_f64() - 0.8).abs() < 1e-9,
            "{full:?}"
        );
    }

    #[test]
    fn time_going_backwards_does_not_refill() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(100);
        let mut bucket = Bucket::new(RATE, t1);
        bucket.charge(600, t1);
        assert!(bucket.debt(t0).is_some());
        assert!(bucket.debt(t1).is_some());
    }
}
