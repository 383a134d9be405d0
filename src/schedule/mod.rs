//! The time-related half of `wharf serve`: when a flow is due ([`Schedule`]), when a file is
//! expected by ([`Expect`]), how long to wait before retrying ([`backoff`]), and the
//! [`Clock`] every wait goes through.
//!
//! Everything here is pure and deterministic given a clock: no networking, no ledger, no
//! spawning. The serve loop asks [`Schedule::next_after`] for the next due time, sleeps on its
//! [`Clock`] until then, runs the flow (or skips / queues it, as [`Overlap`] says), and at each
//! [`Deadline`] checks the ledger for a delivery in the window. Tests drive the same loop with a
//! [`ManualClock`] instead of sleeping.
//!
//! One file per concept: `cron.rs` (cron expressions in a time zone), `every.rs` (interval
//! grids), `jitter.rs` (the stable per-flow offset), `expect.rs` (expected-file deadlines),
//! `timezone.rs` (zone names, local times across DST, the machine's zone), `upcoming.rs` (the
//! next due times as shown before a flow is served), `clock.rs`, `backoff.rs`. The YAML side
//! is `config/raw_schedule.rs` and `config/validate/schedule.rs`.

mod backoff;
pub mod clock;
mod cron;
mod every;
mod expect;
pub mod jitter;
mod timezone;
pub mod upcoming;

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::config::duration::format as format_duration;

pub use self::backoff::{backoff, backoff_with};
pub use self::clock::{Clock, ManualClock, SystemClock};
pub use self::cron::CronExpr;
pub use self::expect::{Days, Deadline, Expect, fingerprint as expect_fingerprint, parse_time_of_day};
pub use self::timezone::{local_zone, parse_timezone, resolve_local};
pub use crate::config::raw_schedule::Overlap;

/// When a flow runs unattended: a cron expression in a time zone or a fixed interval, shifted
/// by the flow's jitter offset, and what a due run does while the previous one still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    /// Runs are shifted by a stable offset in `[0, jitter)` derived from the flow name (see
    /// [`jitter::offset`]); zero: no shift.
    pub jitter: Duration,
    pub overlap: Overlap,
    /// Whether the flow file gave a `timezone:` (a cron without one is read in UTC, whatever
    /// the machine's zone: [`upcoming::utc_note`]).
    pub zone_given: bool,
}

/// The two ways of saying when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleKind {
    /// At the occurrences of `expr`, read as wall-clock time in `tz`.
    Cron { expr: CronExpr, tz: Tz },
    /// Every so long, on a grid anchored at the Unix epoch (see [`Schedule::next_after`]).
    /// Never zero.
    Every(Duration),
}

impl Schedule {
    /// The next due time strictly after `after`, the flow's jitter offset included (stable per
    /// `flow_name`). The serve loop calls it with the previous due time (or with "now" at
    /// start-up), so a slow run never shifts the schedule.
    ///
    /// - cron: the first occurrence `o` of the expression with `o + offset > after`.
    /// - every: the first grid point `1970-01-01T00:00Z + n·interval + offset` after `after`.
    ///   Anchoring at the epoch rather than at the last run means a restart keeps the same
    ///   times (no drift, no burst of catch-up runs; runs missed while stopped are not made
    ///   up), and chained calls give exactly `previous + interval`.
    ///
    /// `None` when there is no further run (a cron expression past its last match, or beyond
    /// the year 5000).
    pub fn next_after(&self, flow_name: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = self.offset(flow_name);
        match &self.kind {
            ScheduleKind::Every(interval) => every::next_on_grid(*interval, offset, after),
            ScheduleKind::Cron { expr, tz } => {
                let shift = TimeDelta::from_std(offset).ok()?;
                let occurrence = expr.next_after(*tz, after.checked_sub_signed(shift)?)?;
                occurrence.checked_add_signed(shift)
            }
        }
    }

    /// This flow's jitter offset, in `[0, jitter)`.
    pub fn offset(&self, flow_name: &str) -> Duration {
        jitter::offset(flow_name, self.jitter)
    }
}

/// `cron */30 * * * * (Europe/Berlin), jitter 30s` / `every 5m, overlap queue` — for
/// `wharf status`. Zero jitter and the default overlap (`skip`) are left out.
impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ScheduleKind::Cron { expr, tz } => write!(f, "cron {expr} ({})", tz.name())?,
            ScheduleKind::Every(interval) => write!(f, "every {}", format_duration(*interval))?,
        }
        if !self.jitter.is_zero() {
            write!(f, ", jitter {}", format_duration(self.jitter))?;
        }
        if self.overlap == Overlap::Queue {
            f.write_str(", overlap queue")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn cron(expr: &str, tz: Tz, jitter: u64) -> Schedule {
        Schedule {
            kind: ScheduleKind::Cron { expr: CronExpr::parse(expr).unwrap(), tz },
            jitter: Duration::from_secs(jitter),
            overlap: Overlap::Skip,
            zone_given: true,
        }
    }

    fn every(secs: u64, jitter: u64) -> Schedule {
        Schedule {
            kind: ScheduleKind::Every(Duration::from_secs(secs)),
            jitter: Duration::from_secs(jitter),
            overlap: Overlap::Skip,
            zone_given: false,
        }
    }

    #[test]
    fn cron_with_jitter_is_shifted_by_the_flows_offset() {
        let s = cron("*/30 * * * *", Tz::Europe__Berlin, 60);
        let offset = TimeDelta::from_std(s.offset("orders")).unwrap();
        assert!(offset > TimeDelta::zero() && offset < TimeDelta::seconds(60), "{offset}");
        let first = s.next_after("orders", utc("2026-03-02T10:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-03-02T10:00:00Z") + offset, "10:00 + offset is still ahead");
        // Called with the previous due time: the next occurrence, same offset.
        let second = s.next_after("orders", first).unwrap();
        assert_eq!(second, utc("2026-03-02T10:30:00Z") + offset);
        // Just before the shifted time: that time.
        assert_eq!(s.next_after("orders", first - TimeDelta::milliseconds(1)), Some(first));
        // Another flow on the same cron gets another offset.
        let other = s.next_after("invoices", utc("2026-03-02T10:00:00Z")).unwrap();
        assert_ne!(other, first);
        assert!(other >= utc("2026-03-02T10:00:00Z") && other < utc("2026-03-02T10:01:00Z"));
    }

    #[test]
    fn every_with_jitter_chains_without_drift() {
        let s = every(300, 30);
        let offset = TimeDelta::from_std(s.offset("orders")).unwrap();
        let mut t = utc("2026-03-02T10:02:00Z");
        let mut due = Vec::new();
        for _ in 0..3 {
            t = s.next_after("orders", t).unwrap();
            due.push(t - offset);
        }
        assert_eq!(due, [utc("2026-03-02T10:05:00Z"), utc("2026-03-02T10:10:00Z"), utc("2026-03-02T10:15:00Z")]);
        // After a restart at any moment, the same grid.
        assert_eq!(s.next_after("orders", utc("2026-03-02T10:07:59Z")), Some(utc("2026-03-02T10:10:00Z") + offset));
    }

    #[test]
    fn displays_for_status() {
        assert_eq!(cron("*/30 * * * *", Tz::Europe__Berlin, 30).to_string(), "cron */30 * * * * (Europe/Berlin), jitter 30s");
        assert_eq!(cron("0 6 * * mon-fri", Tz::UTC, 0).to_string(), "cron 0 6 * * mon-fri (UTC)");
        let mut s = every(5400, 0);
        s.overlap = Overlap::Queue;
        assert_eq!(s.to_string(), "every 1h30m, overlap queue");
    }
}
