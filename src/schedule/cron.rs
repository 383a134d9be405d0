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
    /// An expression that never matches (`0 0 30 2 *`) is refused, and so is a name in a
    /// field of the other kind (`0 6 * mon-fri jan`: croner reads any name in any field, and
    /// would run on Mondays from January to May). The error is a sentence fit for a diagnostic,
    /// in plain words: the field refused and what it takes (`bad_field`), or how many fields
    /// there are; croner's own message only for what neither explains.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        if let Some(why) = misplaced_name(text) {
            return Err(format!("bad cron expression `{text}`: {why}"));
        }
        let cron = parser().parse(text).map_err(|e| {
            let fields = text.split_whitespace().count();
            let why = match (bad_field(text), e) {
                (Some(field), _) => field,
                (None, croner::errors::CronError::EmptyPattern) => "it is empty".to_string(),
                (None, _) if text.trim().starts_with('@') => {
                    "cron knows the nicknames `@yearly`, `@monthly`, `@weekly`, `@daily` and `@hourly` only".to_string()
                }
                (None, _) if !text.starts_with('@') && !(5..=6).contains(&fields) => format!(
                    "it has {fields} field{}; write 5 (minute hour day-of-month month day-of-week, e.g. `*/30 * * * *`) or 6 (seconds first)",
                    if fields == 1 { "" } else { "s" }
                ),
                (None, e) => e.to_string(),
            };
            format!("bad cron expression `{text}`: {why}")
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
/// every other field `*`), and what that field takes: ``the hour field takes 0-23, not `25` …``.
/// Croner's own messages ("Component error: Number out of bounds.") do not say which field,
/// nor what to write.
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
        parser().parse(&alone.join(" ")).is_err().then(|| {
            format!(
                "the {name} field takes {takes}, not `{}` (or a range `a-b` from low to high, a list `a,b`, a step `*/n` of 1 or more)",
                fields[i]
            )
        })
    })
}

/// Names a month or day name written in a field other than its own (`mon` in the month
/// field, `jan` in the day-of-week field, either in a number field): croner replaces every
/// name with its number wherever it stands, so `0 6 * mon-fri jan` (month and day-of-week
/// swapped) would be read as `0 6 * 1-5 1`, Mondays from January to May, without a word.
fn misplaced_name(text: &str) -> Option<String> {
    const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    const NAMES: [&str; 6] = ["second", "minute", "hour", "day-of-month", "month", "day-of-week"];
    let fields: Vec<&str> = text.split_whitespace().collect();
    let first = match fields.len() {
        5 => 1,
        6 => 0,
        _ => return None,
    };
    let fields_are = if first == 0 { "second minute" } else { "minute" };
    fields.iter().zip(&NAMES[first..]).find_map(|(field, &name)| {
        let upper = field.to_ascii_uppercase();
        let names = MONTHS.iter().map(|m| (m, "a month", "month")).chain(DAYS.iter().map(|d| (d, "a day of the week", "day-of-week")));
        names.filter(|(_, _, own)| *own != name).find_map(|(n, kind, _)| {
            let at = upper.find(n)?;
            let written = field.get(at..at + n.len()).unwrap_or(n);
            Some(format!(
                "`{written}` names {kind} but stands in the {name} field; the fields are {fields_are} hour day-of-month month \
                 day-of-week (`0 6 * jan mon-fri`: 06:00 on weekdays in January)"
            ))
        })
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

    /// In plain words: which field, what it takes (was: croner's "Component error: Number out
    /// of bounds." after the field), how many fields there are (was: "Invalid pattern: Pattern
    /// must have 5 or 6 fields when years are disallowed.").
    #[test]
    fn bad_expressions_are_said_in_plain_words() {
        let takes = "(or a range `a-b` from low to high, a list `a,b`, a step `*/n` of 1 or more)";
        for (expr, field) in [
            ("0 25 * * *", "the hour field takes 0-23, not `25`"),
            ("61 * * * *", "the minute field takes 0-59, not `61`"),
            ("0 0 * 13 *", "the month field takes 1-12 or jan-dec, not `13`"),
            ("*/0 * * * *", "the minute field takes 0-59, not `*/0`"),
            ("5-1 * * * *", "the minute field takes 0-59, not `5-1`"),
            ("0 0 0 0 * *", "the day-of-month field takes 1-31, not `0`"),
            ("0 0 * * mon-fry", "the day-of-week field takes 0-7 or sun-sat, not `mon-fry`"),
        ] {
            assert_eq!(CronExpr::parse(expr).unwrap_err(), format!("bad cron expression `{expr}`: {field} {takes}"));
        }
        let five = "write 5 (minute hour day-of-month month day-of-week, e.g. `*/30 * * * *`) or 6 (seconds first)";
        assert_eq!(CronExpr::parse("*/30 * * *").unwrap_err(), format!("bad cron expression `*/30 * * *`: it has 4 fields; {five}"));
        assert_eq!(
            CronExpr::parse("0 0 0 * * * 2030").unwrap_err(),
            format!("bad cron expression `0 0 0 * * * 2030`: it has 7 fields; {five}")
        );
        assert_eq!(CronExpr::parse("daily").unwrap_err(), format!("bad cron expression `daily`: it has 1 field; {five}"));
        assert_eq!(
            CronExpr::parse("@nightly").unwrap_err(),
            "bad cron expression `@nightly`: cron knows the nicknames `@yearly`, `@monthly`, `@weekly`, `@daily` and `@hourly` only"
        );
        assert_eq!(CronExpr::parse("").unwrap_err(), "bad cron expression ``: it is empty");
        assert_eq!(CronExpr::parse("0 0 30 2 *").unwrap_err(), "cron expression `0 0 30 2 *` never matches a real date");
        for expr in ["0 25 * * *", "*/30 * * *", "@nightly", "5-1 * * * *"] {
            let e = CronExpr::parse(expr).unwrap_err();
            assert!(!e.contains("Component error") && !e.contains("Invalid pattern"), "{e}");
        }
    }

    /// Croner reads a name in any field: month and day-of-week swapped (`0 6 * mon-fri jan`)
    /// ran on Mondays from January to May, without a word.
    #[test]
    fn a_name_in_a_field_of_another_kind_is_refused() {
        let fields = "the fields are minute hour day-of-month month day-of-week (`0 6 * jan mon-fri`: 06:00 on weekdays in January)";
        for (expr, why) in [
            ("0 6 * MON-FRI JAN", "`MON` names a day of the week but stands in the month field"),
            ("0 6 * * jan", "`jan` names a month but stands in the day-of-week field"),
            ("0 6 mon * *", "`mon` names a day of the week but stands in the day-of-month field"),
            ("0 6 * jan,Sat *", "`Sat` names a day of the week but stands in the month field"),
        ] {
            assert_eq!(CronExpr::parse(expr).unwrap_err(), format!("bad cron expression `{expr}`: {why}; {fields}"));
        }
        assert_eq!(
            CronExpr::parse("0 0 6 * * sep").unwrap_err(),
            "bad cron expression `0 0 6 * * sep`: `sep` names a month but stands in the day-of-week field; the fields are second \
             minute hour day-of-month month day-of-week (`0 6 * jan mon-fri`: 06:00 on weekdays in January)"
        );
        // Names where they belong, any case, in ranges and lists.
        for expr in ["0 6 * jan mon-fri", "0 6 * JAN-MAR,dec Mon,Wed,FRI", "0 0 6 * Sep sat-sun", "0 0 * * 5L", "0 0 LW * *", "@weekly"] {
            assert!(CronExpr::parse(expr).is_ok(), "{expr}");
        }
        assert_eq!(next("0 6 * jan mon-fri", Tz::UTC, "2026-12-07T00:00:00Z"), "2027-01-01T06:00:00+00:00");
    }

    /// As in classic cron, and as the flow reference says: both day fields restricted is
    /// either day; `+` before the day of the week makes it both.
    #[test]
    fn both_day_fields_match_either_day_unless_joined_by_plus() {
        // 2026-01-02 is a Friday, 2026-02-13 the first Friday the 13th.
        assert_eq!(
            series("0 6 13 * fri", Tz::UTC, "2026-01-01T00:00:00Z", 3)[..2],
            ["2026-01-02T06:00:00+00:00", "2026-01-09T06:00:00+00:00"]
        );
        assert_eq!(next("0 6 13 * fri", Tz::UTC, "2026-01-10T00:00:00Z"), "2026-01-13T06:00:00+00:00");
        assert_eq!(series("0 6 13 * +fri", Tz::UTC, "2026-01-01T00:00:00Z", 2), ["2026-02-13T06:00:00+00:00", "2026-03-13T06:00:00+00:00"]);
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
