//! When a scheduled flow would run next, as shown before it is served (`wharf plan`, `wharf
//! status` without a daemon): the next due times computed from its schedule, in the schedule's
//! zone; and the note for a cron read in UTC on a machine whose zone is another.

use chrono::{DateTime, Offset as _, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::{Schedule, ScheduleKind};
use crate::config::duration::format as format_duration;

/// How many due times `wharf plan` shows.
pub const SHOWN: usize = 3;

/// A schedule and its next due times, for `wharf plan` (`--json`: `expression`, `timezone`,
/// `next` as RFC 3339 times with the zone's offset).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Upcoming {
    /// `0 6 * * mon-fri`, or `every 30m`; `, jitter 30s` after it when the flow has a jitter.
    pub expression: String,
    /// The zone the times are read in: the cron's `timezone:` (UTC without one); UTC for
    /// `every`.
    pub timezone: String,
    #[serde(serialize_with = "with_offsets")]
    pub next: Vec<DateTime<Tz>>,
}

impl Schedule {
    /// The zone the schedule's times are read in (UTC for `every`).
    pub fn zone(&self) -> Tz {
        match &self.kind {
            ScheduleKind::Cron { tz, .. } => *tz,
            ScheduleKind::Every(_) => Tz::UTC,
        }
    }

    /// The next `n` due times after `after` (jitter included), fewer when the schedule ends.
    pub fn next_times(&self, flow_name: &str, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut t = after;
        while out.len() < n {
            let Some(next) = self.next_after(flow_name, t) else { break };
            out.push(next);
            t = next;
        }
        out
    }
}

impl Upcoming {
    /// The next [`SHOWN`] due times of `schedule` (flow `flow_name`) after `now`.
    pub fn of(schedule: &Schedule, flow_name: &str, now: DateTime<Utc>) -> Upcoming {
        let tz = schedule.zone();
        let mut expression = match &schedule.kind {
            ScheduleKind::Cron { expr, .. } => expr.to_string(),
            ScheduleKind::Every(interval) => format!("every {}", format_duration(*interval)),
        };
        if !schedule.jitter.is_zero() {
            expression.push_str(&format!(", jitter {}", format_duration(schedule.jitter)));
        }
        let next = schedule.next_times(flow_name, now, SHOWN).into_iter().map(|t| t.with_timezone(&tz)).collect();
        Upcoming { expression, timezone: tz.name().to_string(), next }
    }

    /// `schedule: 0 6 * * mon-fri (Europe/Berlin): next Tue 2026-12-08 06:00 +01:00, …`.
    pub fn line(&self) -> String {
        let times: Vec<String> = self.next.iter().map(shown).collect();
        let next = if times.is_empty() { "no further run".to_string() } else { format!("next {}", times.join(", ")) };
        format!("schedule: {} ({}): {next}", self.expression, self.timezone)
    }
}

/// `Tue 2026-12-08 06:00 +01:00` (with seconds when a jitter gives some).
pub fn shown(t: &DateTime<Tz>) -> String {
    let time = if chrono::Timelike::second(t) == 0 { "%H:%M" } else { "%H:%M:%S" };
    t.format(&format!("%a %Y-%m-%d {time} %:z")).to_string()
}

fn with_offsets<S: serde::Serializer>(times: &[DateTime<Tz>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(times.iter().map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)))
}

/// For a cron without `timezone:` (read in UTC) on a machine whose zone `local` is not UTC:
/// the note saying when it runs here, from its next due time after `now`: "`0 6 * * *` runs at
/// 06:00 UTC (07:00 here in Europe/Berlin); set `timezone: Europe/Berlin` for local times".
/// `None` for any other schedule, or a machine in UTC (or whose zone is not known).
pub fn utc_note(schedule: &Schedule, flow_name: &str, local: Option<Tz>, now: DateTime<Utc>) -> Option<String> {
    let ScheduleKind::Cron { expr, .. } = &schedule.kind else { return None };
    let local = local?;
    if schedule.zone_given || is_utc(local) {
        return None;
    }
    let next = schedule.next_after(flow_name, now)?;
    let (utc, here) = (next.format("%H:%M"), next.with_timezone(&local).format("%H:%M"));
    Some(format!("`{expr}` runs at {utc} UTC ({here} here in {}); set `timezone: {}` for local times", local.name(), local.name()))
}

/// Whether `tz` is UTC all year (`UTC`, `Etc/UTC`, `Etc/GMT`…), not a zone at +00:00 only now.
fn is_utc(tz: Tz) -> bool {
    use chrono::TimeZone as _;
    let offset = |month: u32| {
        let t = chrono::NaiveDate::from_ymd_opt(2026, month, 1).and_then(|d| d.and_hms_opt(12, 0, 0)).unwrap_or_default();
        tz.offset_from_utc_datetime(&t).fix().local_minus_utc()
    };
    offset(1) == 0 && offset(7) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::{CronExpr, Overlap};
    use std::time::Duration;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn cron(expr: &str, tz: Option<Tz>) -> Schedule {
        Schedule {
            kind: ScheduleKind::Cron { expr: CronExpr::parse(expr).unwrap(), tz: tz.unwrap_or(Tz::UTC) },
            jitter: Duration::ZERO,
            overlap: Overlap::Skip,
            zone_given: tz.is_some(),
        }
    }

    #[test]
    fn the_next_times_are_shown_in_the_schedules_zone_with_its_offset() {
        let s = cron("0 6 * * mon-fri", Some(Tz::Europe__Berlin));
        let u = Upcoming::of(&s, "orders", utc("2026-12-07T12:00:00Z"));
        assert_eq!(
            u.line(),
            "schedule: 0 6 * * mon-fri (Europe/Berlin): next Tue 2026-12-08 06:00 +01:00, Wed 2026-12-09 06:00 +01:00, \
             Thu 2026-12-10 06:00 +01:00"
        );
        let json = serde_json::to_value(&u).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"expression": "0 6 * * mon-fri", "timezone": "Europe/Berlin",
                "next": ["2026-12-08T06:00:00+01:00", "2026-12-09T06:00:00+01:00", "2026-12-10T06:00:00+01:00"]})
        );
        let every = Schedule { kind: ScheduleKind::Every(Duration::from_secs(1800)), zone_given: false, ..s };
        assert_eq!(
            Upcoming::of(&every, "orders", utc("2026-12-07T12:10:00Z")).line(),
            "schedule: every 30m (UTC): next Mon 2026-12-07 12:30 +00:00, Mon 2026-12-07 13:00 +00:00, Mon 2026-12-07 13:30 +00:00"
        );
    }

    #[test]
    fn a_cron_without_a_zone_on_a_machine_elsewhere_is_noted() {
        let now = utc("2026-12-07T12:00:00Z");
        let berlin = Some(Tz::Europe__Berlin);
        assert_eq!(
            utc_note(&cron("0 6 * * *", None), "f", berlin, now).as_deref(),
            Some("`0 6 * * *` runs at 06:00 UTC (07:00 here in Europe/Berlin); set `timezone: Europe/Berlin` for local times")
        );
        assert_eq!(utc_note(&cron("0 6 * * *", Some(Tz::UTC)), "f", berlin, now), None, "a zone given, UTC too");
        assert_eq!(utc_note(&cron("0 6 * * *", None), "f", Some(Tz::Etc__UTC), now), None, "a machine in UTC");
        assert_eq!(utc_note(&cron("0 6 * * *", None), "f", None, now), None, "a zone not known");
        // London is at +00:00 in winter, not all year.
        assert!(utc_note(&cron("0 6 * * *", None), "f", Some(Tz::Europe__London), now).is_some());
    }
}
