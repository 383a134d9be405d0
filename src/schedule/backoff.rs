//! Waiting before a retry: exponential backoff with ±25 % jitter, so flows retrying against
//! one server do not hit it in lockstep.
//!
//! Pure arithmetic plus one source of randomness, which [`backoff_with`] lets tests replace.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The wait before retry number `attempt` (1 = the first retry): `base · 2^(attempt−1)`,
/// capped at `max`, times a random factor in `[0.75, 1.25)`, and never more than `max`.
/// With `base` 30 s: about 30 s, 1 min, 2 min, 4 min, … . `attempt` 0 counts as 1.
pub fn backoff(attempt: u32, base: Duration, max: Duration) -> Duration {
    backoff_with(attempt, base, max, random_unit())
}

/// [`backoff`] with the random draw given: `unit` in `[0, 1)` maps to the factor
/// `0.75 + unit / 2` (values outside are clamped).
pub fn backoff_with(attempt: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let doublings = attempt.saturating_sub(1);
    let nominal = match 1u32.checked_shl(doublings) {
        Some(times) => base.checked_mul(times).unwrap_or(Duration::MAX).min(max),
        None => max,
    };
    let factor = 0.75 + unit.clamp(0.0, 1.0) / 2.0;
    nominal.mul_f64(factor).min(max)
}

/// A draw in `[0, 1)`. std's `RandomState` is seeded randomly per process and per instance;
/// good enough to spread retries, and no extra dependency.
fn random_unit() -> f64 {
    let bits = std::collections::hash_map::RandomState::new().build_hasher().finish();
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S30: Duration = Duration::from_secs(30);
    const MAX: Duration = Duration::from_secs(3600);

    #[test]
    fn doubles_from_base_up_to_max() {
        let mid = |attempt| backoff_with(attempt, S30, MAX, 0.5);
        assert_eq!(
            [mid(0), mid(1), mid(2), mid(3), mid(4)],
            [S30, S30, Duration::from_secs(60), Duration::from_secs(120), Duration::from_secs(240)]
        );
        assert_eq!(mid(8), MAX, "30 s · 128 = 64 min, capped");
        assert_eq!(mid(u32::MAX), MAX);
    }

    #[test]
    fn jitter_is_a_quarter_either_way_and_never_past_max() {
        assert_eq!(backoff_with(2, S30, MAX, 0.0), Duration::from_secs(45));
        assert_eq!(backoff_with(2, S30, MAX, 0.999_999), Duration::from_secs(60).mul_f64(0.75 + 0.999_999 / 2.0));
        assert_eq!(backoff_with(2, S30, MAX, 7.0), Duration::from_secs(75), "clamped");
        assert_eq!(backoff_with(20, S30, MAX, 0.0), MAX.mul_f64(0.75));
        assert_eq!(backoff_with(20, S30, MAX, 0.99), MAX);
    }

    #[test]
    fn random_draws_stay_in_range_and_vary() {
        let draws: Vec<Duration> = (0..200).map(|_| backoff(3, S30, MAX)).collect();
        assert!(draws.iter().all(|d| *d >= Duration::from_secs(90) && *d < Duration::from_secs(150)), "{draws:?}");
        let mut distinct = draws.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 100, "{}", distinct.len());
        assert!(draws.iter().any(|d| *d < Duration::from_secs(110)) && draws.iter().any(|d| *d > Duration::from_secs(130)));
    }
}
