//! Back-off between attempts: exponential, capped, with jitter so a provider that comes back
//! is not hit by every queued notification in the same instant.

use klaxon_core::model::Millis;

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this instant.
    RetryAt(Millis),
    /// Attempts are used up: record the failure.
    GiveUp,
}

/// The back-off before attempt `attempts + 1`, given `attempts` already made (>= 1):
/// `base · 2^(attempts-1)`, at most `max`, then scaled by a jitter factor in [0.5, 1.0]
/// (`jitter` is a number in [0, 1)).
pub fn backoff_ms(attempts: u32, base: u64, max: u64, jitter: f64) -> u64 {
    let exp = attempts.saturating_sub(1).min(40);
    let raw = base.saturating_mul(1u64 << exp).min(max);
    let factor = 0.5 + 0.5 * jitter.clamp(0.0, 1.0);
    // Whole milliseconds; the float is bounded by `max`, so the cast cannot overflow.
    ((raw as f64) * factor).round().max(1.0) as u64
}

/// Decides after attempt number `attempts` (1-based, just made) failed with a transient error.
pub fn after_failure(
    attempts: u32,
    max_attempts: u32,
    now: Millis,
    base: u64,
    max: u64,
    jitter: f64,
) -> Next {
    if attempts >= max_attempts {
        return Next::GiveUp;
    }
    let wait = backoff_ms(attempts, base, max, jitter);
    Next::RetryAt(now.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_within_half() {
        // spec: DESIGN.md principle 5 (retries with back-off)
        assert_eq!(backoff_ms(1, 2_000, 300_000, 1.0), 2_000);
        assert_eq!(backoff_ms(2, 2_000, 300_000, 1.0), 4_000);
        assert_eq!(backoff_ms(3, 2_000, 300_000, 1.0), 8_000);
        assert_eq!(backoff_ms(30, 2_000, 300_000, 1.0), 300_000);
        assert_eq!(backoff_ms(1, 2_000, 300_000, 0.0), 1_000);
        for j in [0.0, 0.25, 0.5, 0.999] {
            let b = backoff_ms(4, 2_000, 300_000, j);
            assert!((8_000..=16_000).contains(&b), "{b}");
        }
    }

    #[test]
    fn gives_up_after_the_last_attempt() {
        assert_eq!(
            after_failure(1, 3, 100, 1_000, 10_000, 1.0),
            Next::RetryAt(1_100)
        );
        assert_eq!(
            after_failure(2, 3, 100, 1_000, 10_000, 1.0),
            Next::RetryAt(2_100)
        );
        assert_eq!(after_failure(3, 3, 100, 1_000, 10_000, 1.0), Next::GiveUp);
    }
}
