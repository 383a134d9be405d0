//! The server's clock offset and mtime precision, from files written in a scratch folder.
//!
//! Pure arithmetic over samples, so it is tested without a server. A sample is our clock just
//! before and just after writing a file, and the modification time the server then lists for
//! it. The server stamped the file at some instant inside our interval (on its own clock) and
//! truncated it to its precision `p`, so `offset = server − ours` lies in
//! `[mtime − after, mtime + p − before]`. Intervals of several samples are intersected, which
//! narrows the uncertainty when the samples fall at different points of a second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One file written and listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Our clock just before the write started.
    pub before: SystemTime,
    /// Our clock just after the write was acknowledged.
    pub after: SystemTime,
    /// The modification time the server listed for the file.
    pub mtime: SystemTime,
}

/// The server's clock minus ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Positive: the server is ahead of us; negative: behind.
    pub offset_ms: i64,
    /// The true offset is within `offset_ms ± uncertainty_ms` (includes the mtime precision).
    pub uncertainty_ms: u64,
    pub samples: usize,
}

/// Signed milliseconds since the epoch (also before it).
fn ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The offset from `samples`, given the mtime `precision`; `None` without samples.
pub fn estimate(samples: &[Sample], precision: Duration) -> Option<ClockOffset> {
    let p = precision.as_millis() as i64;
    let bounds: Vec<(i64, i64)> = samples.iter().map(|s| (ms(s.mtime) - ms(s.after), ms(s.mtime) + p - ms(s.before))).collect();
    let lo = bounds.iter().map(|b| b.0).max()?;
    let hi = bounds.iter().map(|b| b.1).min()?;
    // Samples that disagree (a server stamping at close, a clock step meanwhile): take the
    // union instead, which is honest about how little is known.
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (bounds.iter().map(|b| b.0).min()?, bounds.iter().map(|b| b.1).max()?) };
    Some(ClockOffset { offset_ms: lo + (hi - lo) / 2, uncertainty_ms: ((hi - lo + 1) / 2) as u64, samples: samples.len() })
}

/// The coarsest of 1 min, 1 s, 1 ms, 1 µs, 1 ns that every mtime is a whole multiple of.
/// Meaningful when the samples span more than a second (else a minute could be guessed for
/// times that merely all fell on a full minute).
pub fn observed_precision(mtimes: &[SystemTime]) -> Option<Duration> {
    if mtimes.is_empty() {
        return None;
    }
    let nanos: Vec<i128> = mtimes
        .iter()
        .map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        })
        .collect();
    let units = [Duration::from_secs(60), Duration::from_secs(1), Duration::from_millis(1), Duration::from_micros(1)];
    Some(units.into_iter().find(|u| nanos.iter().all(|n| n % (u.as_nanos() as i128) == 0)).unwrap_or(Duration::from_nanos(1)))
}

/// `42 s`, `1.5 s`, `250 ms`, `3 min 5 s`, `2 h 0 min`: for findings.
pub fn human_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..10_000 if ms.is_multiple_of(1000) => format!("{} s", ms / 1000),
        1_000..10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        10_000..120_000 if !ms.is_multiple_of(60_000) => format!("{} s", (ms + 500) / 1000),
        10_000..7_200_000 => {
            let s = (ms + 500) / 1000;
            if s.is_multiple_of(60) { format!("{} min", s / 60) } else { format!("{} min {} s", s / 60, s % 60) }
        }
        _ => {
            let m = (ms + 30_000) / 60_000;
            format!("{} h {} min", m / 60, m % 60)
        }
    }
}

/// A precision for people: `1 min`, `1 s`, `1 ms`, `1 µs`, `1 ns`.
pub fn human_precision(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        human_ms(d.as_millis() as u64)
    } else if d >= Duration::from_millis(1) {
        format!("{} ms", d.as_millis())
    } else if d >= Duration::from_micros(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{} ns", d.as_nanos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn sample(before: u64, after: u64, mtime: u64) -> Sample {
        Sample { before: at(before), after: at(after), mtime: at(mtime) }
    }

    #[test]
    fn a_server_behind_us_gives_a_negative_offset_with_the_precision_in_the_uncertainty() {
        // Written at 100.2–100.3 s by us; the server (42 s behind) stamped 58.2 s, listed as 58 s.
        let o = estimate(&[sample(100_200, 100_300, 58_000)], Duration::from_secs(1)).unwrap();
        assert!((-42_300..=-41_200).contains(&o.offset_ms), "{o:?}");
        assert_eq!(o.uncertainty_ms, 550);
        assert!(o.offset_ms - (o.uncertainty_ms as i64) <= -42_000 && o.offset_ms + (o.uncertainty_ms as i64) >= -42_000);
    }

    #[test]
    fn several_samples_narrow_the_interval() {
        // Same clock (offset 0), 1 s precision, samples at different points of the second.
        let samples = [sample(1_100, 1_150, 1_000), sample(1_550, 1_600, 1_000), sample(2_010, 2_050, 2_000)];
        let one = estimate(&samples[..1], Duration::from_secs(1)).unwrap();
        let all = estimate(&samples, Duration::from_secs(1)).unwrap();
        assert!(all.uncertainty_ms < one.uncertainty_ms, "{all:?} vs {one:?}");
        assert!(all.offset_ms.unsigned_abs() <= all.uncertainty_ms, "{all:?}");
        assert_eq!(all.samples, 3);
    }

    #[test]
    fn minute_precision_means_minute_uncertainty() {
        let o = estimate(&[sample(130_000, 130_100, 120_000)], Duration::from_secs(60)).unwrap();
        assert!(o.uncertainty_ms >= 25_000, "{o:?}");
        assert!(o.offset_ms.unsigned_abs() <= o.uncertainty_ms);
    }

    #[test]
    fn disagreeing_samples_widen_instead_of_failing() {
        let o = estimate(&[sample(0, 10, 0), sample(5_000, 5_010, 60_000)], Duration::from_secs(1)).unwrap();
        assert!(o.uncertainty_ms > 20_000, "{o:?}");
        assert_eq!(estimate(&[], Duration::from_secs(1)), None);
    }

    #[test]
    fn precision_from_mtimes() {
        let p = |ms: &[u64]| observed_precision(&ms.iter().map(|&m| at(m)).collect::<Vec<_>>()).unwrap();
        assert_eq!(p(&[60_000, 120_000]), Duration::from_secs(60));
        assert_eq!(p(&[60_000, 61_000]), Duration::from_secs(1));
        assert_eq!(p(&[60_001, 61_000]), Duration::from_millis(1));
        let fine = observed_precision(&[UNIX_EPOCH + Duration::from_nanos(1_000_000_123)]).unwrap();
        assert_eq!(fine, Duration::from_nanos(1));
        assert_eq!(observed_precision(&[]), None);
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(human_ms(42_000), "42 s");
        assert_eq!(human_ms(1_500), "1.5 s");
        assert_eq!(human_ms(250), "250 ms");
        assert_eq!(human_ms(185_000), "3 min 5 s");
        assert_eq!(human_ms(120_000), "2 min");
        assert_eq!(human_ms(3 * 3_600_000), "3 h 0 min");
        assert_eq!(human_precision(Duration::from_secs(60)), "1 min");
        assert_eq!(human_precision(Duration::from_micros(1)), "1 µs");
    }
}
