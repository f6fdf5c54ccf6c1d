//! How long to wait before the next attempt: [`Backoff`], [`jitter`] and
//! `Retry-After`.

use std::time::{Duration, SystemTime};

/// Exponential backoff with jitter: the one schedule netra retries on, for
/// LLM calls here and for the health monitor's start attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// The first pause; it doubles with every attempt.
    pub base: Duration,
    /// The longest pause before jitter.
    pub max: Duration,
    /// Each pause is scaled by a random factor in `[1 - jitter, 1 + jitter]`,
    /// so clients that failed together do not come back together.
    pub jitter: f64,
}

impl Backoff {
    /// 100 ms doubled per attempt up to 10 s, ±50% jitter.
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(10),
        jitter: 0.5,
    };

    /// The pause after failed attempt number `attempt` (0 for the first).
    pub fn pause(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let doubled = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        jitter(doubled, self.jitter, rng)
    }
}

/// `base` scaled by a random factor in `[1 - fraction, 1 + fraction]`
/// (`fraction` clamped to `[0, 1]`).
pub fn jitter(base: Duration, fraction: f64, rng: &mut fastrand::Rng) -> Duration {
    let fraction = fraction.clamp(0.0, 1.0);
    let factor = 1.0 + fraction * (rng.f64() * 2.0 - 1.0);
    Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
}

/// Longest wait a server's `Retry-After` can ask for.
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);

/// The pause after failed LLM attempt number `attempt`.
pub(crate) fn backoff(attempt: u32) -> Duration {
    Backoff::DEFAULT.pause(attempt, &mut fastrand::Rng::new())
}

/// A `Retry-After` value: delay seconds (some servers send fractions) or an
/// HTTP date. `None` when it is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0)
            .then(|| Duration::from_secs_f64(seconds.min(1e9)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let backoff = Backoff::DEFAULT;
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 0..6 {
            let center = backoff.base * 2u32.pow(attempt);
            for _ in 0..50 {
                let pause = backoff.pause(attempt, &mut rng);
                assert!(pause >= center / 2 && pause <= center * 3 / 2, "{pause:?}");
            }
        }
        assert!(backoff.pause(40, &mut rng) <= backoff.max * 3 / 2);
        assert!(backoff.pause(u32::MAX, &mut rng) > Duration::ZERO);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let mut rng = fastrand::Rng::with_seed(1);
        let base = Duration::from_secs(1);
        for _ in 0..200 {
            let d = jitter(base, 0.1, &mut rng);
            assert!(d >= base * 9 / 10 && d <= base * 11 / 10, "{d:?}");
        }
        assert_eq!(jitter(base, 0.0, &mut rng), base);
        assert!(jitter(Duration::MAX, 1.0, &mut fastrand::Rng::with_seed(3)) > Duration::ZERO);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("0.5", now), Some(Duration::from_millis(500)));
        // 1_445_412_480 is Wed, 21 Oct 2015 07:28:00 GMT.
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }
}
