//! How long to wait before the next attempt.

use std::time::{Duration, SystemTime};

/// First backoff pause; it doubles with every attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest backoff pause before jitter.
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Longest wait a server's `Retry-After` can ask for.
pub(crate) const RETRY_AFTER_MAX: Duration = Duration::from_secs(30);

/// The pause after failed attempt number `attempt` (0 for the first):
/// 100 ms doubled per attempt, ±50% jitter so clients that failed together
/// do not come back together.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let doubled = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(BACKOFF_MAX);
    doubled.mul_f64(0.5 + fastrand::f64())
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
    fn backoff_doubles_with_jitter() {
        for attempt in 0..6 {
            let center = BACKOFF_BASE * 2u32.pow(attempt);
            for _ in 0..50 {
                let pause = backoff(attempt);
                assert!(pause >= center / 2 && pause <= center * 3 / 2, "{pause:?}");
            }
        }
        assert!(backoff(40) <= BACKOFF_MAX * 3 / 2);
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
