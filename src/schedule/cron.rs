//! Cron expressions (croner syntax, 5 fields or 6 with seconds first) evaluated in an IANA
//! time zone.
//!
//! Owns parsing an expression and finding its next occurrence as a UTC instant. Daylight
//! saving time follows croner: a job at a fixed time of day (`30 2 * * *`) that falls into the
//! hour skipped in spring runs at the first instant after the gap (03:00), and in the hour
//! repeated in autumn runs once, at the first of the two; an interval or wildcard job
//! (`*/15 * * * *`) has no runs in the skipped hour and runs in both passes of the repeated
//! hour. Jitter and the flow's overlap policy are not handled here (see [`super::Schedule`]).

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed cron expression, with the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    text: String,
    // Boxed: a parsed pattern is ~300 bytes, and schedules sit in every `Flow`.
    cron: Box<Cron>,
}

impl CronExpr {
    /// Parses `minute hour day-of-month month day-of-week`, or the same with a leading seconds
    /// field; `@daily`-style nicknames, names (`mon`, `jan`), `L`, `W`, `#` as croner reads them.
    /// An expression that never matches (`0 0 30 2 *`) is refused. The error is a sentence fit
    /// for a diagnostic: the field croner refused (`bad_field`) and croner's own message.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let cron = parser().parse(text).map_err(|e| match bad_field(text) {
            Some(field) => format!("bad cron expression `{text}`: {field}: {e}"),
            None => format!("bad cron expression `{text}`: {e}"),
        })?;
        let expr = CronExpr { text: text.trim().to_string(), cron: Box::new(cron) };
        if expr.next_after(Tz::UTC, reference()).is_none() {
            return Err(format!("cron expression `{text}` never matches a real date"));
        }
        Ok(expr)
    }

    /// The expression as written (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first occurrence strictly after `after`, with the fields read as wall-clock time in
    /// `tz`. `None` when there is none (an expression that stopped matching, or past year 5000).
    pub fn next_after(&self, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = tz.from_utc_datetime(&after.naive_utc());
        self.cron.find_next_occurrence(&local, false).ok().map(|t| t.with_timezone(&Utc))
    }

    /// The shortest time between two consecutive occurrences in `tz`, over the occurrences of
    /// two years (at most a thousand); `None` with fewer than two. Used to refuse a jitter that
    /// would push a run past the next one.
    pub fn shortest_gap(&self, tz: Tz) -> Option<Duration> {
        let end = reference() + chrono::TimeDelta::days(2 * 366);
        let mut previous = self.next_after(tz, reference())?;
        let mut shortest: Option<Duration> = None;
        for _ in 0..1000 {
            let Some(next) = self.next_after(tz, previous).filter(|n| *n <= end) else { break };
            let gap = (next - previous).to_std().unwrap_or_default();
            shortest = Some(shortest.map_or(gap, |s| s.min(gap)));
            previous = next;
        }
        shortest
    }
}

impl fmt::Display for CronExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).year(Year::Disallowed).build()
}

/// Names the first field of a 5- or 6-field expression that croner refuses on its own (with
/// every other field `*`), and what that field takes: `the hour field `25` (0-23)`. Croner's
/// own messages ("Component error: Number out of bounds.") do not say which field.
fn bad_field(text: &str) -> Option<String> {
    const FIVE: [(&str, &str); 5] =
        [("minute", "0-59"), ("hour", "0-23"), ("day-of-month", "1-31"), ("month", "1-12 or jan-dec"), ("day-of-week", "0-7 or sun-sat")];
    let fields: Vec<&str> = text.split_whitespace().collect();
    let names: Vec<(&str, &str)> = match fields.len() {
        5 => FIVE.to_vec(),
        6 => std::iter::once(("second", "0-59")).chain(FIVE).collect(),
        _ => return None,
    };
    (0..fields.len()).find_map(|i| {
        let alone: Vec<&str> = (0..fields.len()).map(|j| if j == i { fields[i] } else { "*" }).collect();
        let (name, takes) = names[i];
        parser().parse(&alone.join(" ")).is_err().then(|| format!("the {name} field `{}` ({takes})", fields[i]))
    })
}

/// A fixed starting point for the checks at validation time, so they give the same answer
/// whenever they run: 2026-01-01 00:00 UTC.
fn reference() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, tz: Tz, after: &str) -> String {
        CronExpr::parse(expr).unwrap().next_after(tz, utc(after)).unwrap().to_rfc3339()
    }

    /// The next `n` occurrences after `after`.
    fn series(expr: &str, tz: Tz, after: &str, n: usize) -> Vec<String> {
        let c = CronExpr::parse(expr).unwrap();
        let mut t = utc(after);
        (0..n)
            .map(|_| {
                t = c.next_after(tz, t).unwrap();
                t.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn next_times_are_strictly_after() {
        assert_eq!(reference().to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(next("*/30 * * * *", Tz::UTC, "2026-03-02T10:00:00Z"), "2026-03-02T10:30:00+00:00");
        assert_eq!(next("*/30 * * * *", Tz::UTC, "2026-03-02T09:59:59.900Z"), "2026-03-02T10:00:00+00:00");
        assert_eq!(next("*/30 * * * *", Tz::UTC, "2026-03-02T10:00:00.500Z"), "2026-03-02T10:30:00+00:00");
        // 2026-03-06 is a Friday: the next weekday 06:00 is Monday.
        assert_eq!(next("0 6 * * mon-fri", Tz::UTC, "2026-03-06T06:00:00Z"), "2026-03-09T06:00:00+00:00");
        assert_eq!(next("@daily", Tz::UTC, "2026-03-06T06:00:00Z"), "2026-03-07T00:00:00+00:00");
    }

    #[test]
    fn six_fields_start_with_seconds() {
        assert_eq!(
            series("*/20 * * * * *", Tz::UTC, "2026-03-02T10:00:00Z", 4),
            ["2026-03-02T10:00:20+00:00", "2026-03-02T10:00:40+00:00", "2026-03-02T10:01:00+00:00", "2026-03-02T10:01:20+00:00"]
        );
        assert_eq!(next("15 0 6 * * *", Tz::UTC, "2026-03-02T10:00:00Z"), "2026-03-03T06:00:15+00:00");
    }

    #[test]
    fn fields_are_wall_clock_time_in_the_zone() {
        let berlin = Tz::Europe__Berlin;
        // Winter (UTC+1) and summer (UTC+2).
        assert_eq!(next("0 6 * * *", berlin, "2026-01-10T12:00:00Z"), "2026-01-11T05:00:00+00:00");
        assert_eq!(next("0 6 * * *", berlin, "2026-07-10T12:00:00Z"), "2026-07-11T04:00:00+00:00");
        // Across the spring change (2026-03-29, 02:00 → 03:00) a daily 06:00 stays at 06:00 local.
        assert_eq!(
            series("0 6 * * *", berlin, "2026-03-27T12:00:00Z", 3),
            ["2026-03-28T05:00:00+00:00", "2026-03-29T04:00:00+00:00", "2026-03-30T04:00:00+00:00"]
        );
    }

    #[test]
    fn spring_forward_gap() {
        let berlin = Tz::Europe__Berlin;
        // A fixed-time job in the skipped hour runs at the first instant after it: 03:00 CEST.
        assert_eq!(
            series("30 2 * * *", berlin, "2026-03-27T12:00:00Z", 3),
            ["2026-03-28T01:30:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        // An interval job has no runs in the skipped hour: 01:30 CET, then 03:00 CEST.
        assert_eq!(
            series("*/30 * * * *", berlin, "2026-03-29T00:00:00Z", 3),
            ["2026-03-29T00:30:00+00:00", "2026-03-29T01:00:00+00:00", "2026-03-29T01:30:00+00:00"]
        );
    }

    #[test]
    fn fall_back_repeated_hour() {
        let berlin = Tz::Europe__Berlin;
        // 2026-10-25: 03:00 CEST → 02:00 CET. A fixed-time job at 02:30 runs once, in CEST.
        assert_eq!(series("30 2 * * *", berlin, "2026-10-24T12:00:00Z", 2), ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]);
        // An interval job runs in both passes: 02:00, 02:30 CEST, then 02:00, 02:30 CET.
        assert_eq!(
            series("*/30 2 * * *", berlin, "2026-10-24T23:00:00Z", 4),
            ["2026-10-25T00:00:00+00:00", "2026-10-25T00:30:00+00:00", "2026-10-25T01:00:00+00:00", "2026-10-25T01:30:00+00:00"]
        );
    }

    #[test]
    fn bad_expressions_carry_croners_message() {
        let e = CronExpr::parse("*/30 * * *").unwrap_err();
        assert!(e.starts_with("bad cron expression `*/30 * * *`: Invalid pattern: "), "{e}");
        assert!(CronExpr::parse("0 0 0 * * * 2030").unwrap_err().starts_with("bad cron expression"), "no year field");
        assert!(CronExpr::parse("61 * * * *").unwrap_err().starts_with("bad cron expression `61 * * * *`: "));
        // The field croner refused is named, with what it takes.
        let e = CronExpr::parse("0 25 * * *").unwrap_err();
        assert!(e.starts_with("bad cron expression `0 25 * * *`: the hour field `25` (0-23): "), "{e}");
        let e = CronExpr::parse("0 0 * 13 *").unwrap_err();
        assert!(e.starts_with("bad cron expression `0 0 * 13 *`: the month field `13` (1-12 or jan-dec): "), "{e}");
        let e = CronExpr::parse("*/0 * * * *").unwrap_err();
        assert!(e.starts_with("bad cron expression `*/0 * * * *`: the minute field `*/0` (0-59): "), "{e}");
        let e = CronExpr::parse("0 0 0 0 * *").unwrap_err();
        assert!(e.starts_with("bad cron expression `0 0 0 0 * *`: the day-of-month field `0` (1-31): "), "six fields: {e}");
        let e = CronExpr::parse("0 0 * * mon-fry").unwrap_err();
        assert!(e.starts_with("bad cron expression `0 0 * * mon-fry`: the day-of-week field `mon-fry` (0-7 or sun-sat): "), "{e}");
        assert!(CronExpr::parse("").is_err());
        assert_eq!(CronExpr::parse("0 0 30 2 *").unwrap_err(), "cron expression `0 0 30 2 *` never matches a real date");
    }

    #[test]
    fn shortest_gap() {
        let gap = |e: &str| CronExpr::parse(e).unwrap().shortest_gap(Tz::Europe__Berlin);
        assert_eq!(gap("*/30 * * * *"), Some(Duration::from_secs(1800)));
        assert_eq!(gap("0 9,17 * * *"), Some(Duration::from_secs(8 * 3600)));
        assert_eq!(gap("*/5 * * * * *"), Some(Duration::from_secs(5)));
        assert_eq!(gap("0 6 * * *"), Some(Duration::from_secs(23 * 3600)), "the day clocks go forward has 23 h");
        assert_eq!(gap("0 6 * * mon-fri"), Some(Duration::from_secs(24 * 3600)), "Berlin changes clocks on Sundays");
        assert_eq!(gap("0 0 1 1 *"), Some(Duration::from_secs(365 * 86_400)));
    }
}
