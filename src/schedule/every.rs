//! Interval schedules (`every: 30m`): due times on a fixed grid.
//!
//! The grid is anchored at the Unix epoch (1970-01-01 00:00 UTC): the due times of `every: I`
//! with jitter offset `o` are `epoch + n·I + o`. So calling with the previous due time gives
//! that time plus `I` (no drift however long a run takes), a restart picks the grid up where
//! it was (no burst, no run missed twice), and `every: 1h` runs at the full hour (plus jitter)
//! like `0 * * * *` would. A day has no daylight-saving exceptions here: an interval is UTC.

use std::time::Duration;

use chrono::{DateTime, Utc};

const NANOS: i128 = 1_000_000_000;

/// The first grid point `epoch + n·interval + offset` strictly after `after`. `None` for a
/// zero interval or beyond chrono's range.
pub(crate) fn next_on_grid(interval: Duration, offset: Duration, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let step = i128::try_from(interval.as_nanos()).ok().filter(|s| *s > 0)?;
    let offset = i128::try_from(offset.as_nanos()).ok()?;
    let after = i128::from(after.timestamp()) * NANOS + i128::from(after.timestamp_subsec_nanos());
    let n = (after - offset).div_euclid(step) + 1;
    let due = n.checked_mul(step)?.checked_add(offset)?;
    let secs = i64::try_from(due.div_euclid(NANOS)).ok()?;
    let nanos = u32::try_from(due.rem_euclid(NANOS)).ok()?;
    DateTime::from_timestamp(secs, nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn next(every: u64, offset: u64, after: &str) -> String {
        next_on_grid(Duration::from_secs(every), Duration::from_secs(offset), utc(after)).unwrap().to_rfc3339()
    }

    #[test]
    fn grid_points_strictly_after() {
        assert_eq!(next(1800, 0, "2026-03-02T10:00:00Z"), "2026-03-02T10:30:00+00:00");
        assert_eq!(next(1800, 0, "2026-03-02T09:59:59.999Z"), "2026-03-02T10:00:00+00:00");
        assert_eq!(next(1800, 0, "2026-03-02T10:17:00Z"), "2026-03-02T10:30:00+00:00");
        assert_eq!(next(1800, 42, "2026-03-02T10:00:00Z"), "2026-03-02T10:00:42+00:00");
        assert_eq!(next(1800, 42, "2026-03-02T10:00:42Z"), "2026-03-02T10:30:42+00:00");
        // 7 minutes does not divide an hour: still one fixed grid.
        assert_eq!(next(420, 0, "2026-03-02T10:00:00Z"), "2026-03-02T10:03:00+00:00");
        assert_eq!(next(1, 0, "1969-12-31T23:59:58.5Z"), "1969-12-31T23:59:59+00:00");
        assert_eq!(next_on_grid(Duration::ZERO, Duration::ZERO, utc("2026-03-02T10:00:00Z")), None);
    }

    #[test]
    fn chained_calls_do_not_drift() {
        let every = Duration::from_secs(300);
        let mut t = utc("2026-03-02T10:01:13Z");
        let mut seen = Vec::new();
        for _ in 0..3 {
            t = next_on_grid(every, Duration::from_secs(13), t).unwrap();
            seen.push(t.to_rfc3339());
        }
        assert_eq!(seen, ["2026-03-02T10:05:13+00:00", "2026-03-02T10:10:13+00:00", "2026-03-02T10:15:13+00:00"]);
    }
}
