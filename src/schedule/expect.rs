//! Expected-file deadlines: "a file must have been delivered by 06:00 Berlin time, Monday to
//! Friday". Owns the `days` syntax, times of day, and the list of deadlines (with the window
//! a delivery must fall into) between two instants.
//!
//! It only computes times; whether a file arrived in a window is the serve loop's question to
//! the ledger.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, Utc, Weekday};
use chrono_tz::Tz;

use super::timezone::resolve_local;

/// One `expect:` entry: a file must have been delivered by `by` (local time in `tz`) on each of
/// `days`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub by: NaiveTime,
    pub days: Days,
    pub tz: Tz,
    /// Start of the window (local time): on the deadline's day when before `by`, else on the
    /// day before. `None`: the window starts at the previous deadline of this expect.
    pub since: Option<NaiveTime>,
}

/// One deadline: at `due`, a file must have been delivered in `[window_start, due]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub due: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    /// For messages: `06:00 Europe/Berlin, Mon 2026-11-23`.
    pub label: String,
    /// For messages: the window's start the same way, `06:00 Europe/Berlin, Fri 2026-11-20`.
    pub since_label: String,
}

/// A fingerprint of a flow's `expect:` rules, the same in every process: tells whether the
/// rules a stored check mark was made for are still the flow's (a mark made for other rules,
/// or before the rules were taken out and put back, must not be resumed from).
pub fn fingerprint(rules: &[Expect]) -> u64 {
    let text: String = rules
        .iter()
        .map(|e| format!("{}|{:07b}|{}|{};", e.by, e.days.0, e.tz.name(), e.since.map(|t| t.to_string()).unwrap_or_default()))
        .collect();
    // FNV-1a: std's hashers may change between releases, and the value is stored.
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl Expect {
    /// The deadlines due in `(from, to]`, oldest first. A `by` the spring DST change skips is
    /// due at the first instant after the gap; one the autumn change repeats is due at the
    /// first of the two (as for cron, see [`super::resolve_local`]).
    pub fn deadlines_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Deadline> {
        let mut out = Vec::new();
        if to <= from {
            return out;
        }
        // A day's deadline may lie a day off in UTC: look one local day beyond both ends.
        let first = from.with_timezone(&self.tz).date_naive().pred_opt();
        let last = to.with_timezone(&self.tz).date_naive().succ_opt();
        let (Some(first), Some(last)) = (first, last) else { return out };
        for day in first.iter_days().take_while(|d| *d <= last) {
            if !self.days.contains(day.weekday()) {
                continue;
            }
            let due = self.at(day, self.by);
            if due > from && due <= to {
                let window_start = self.window_start(day, due);
                let since_label = self.local_label(window_start);
                out.push(Deadline { due, window_start, label: self.label(day), since_label });
            }
        }
        out
    }

    /// The instant of local time `time` on local date `day`.
    fn at(&self, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
        resolve_local(self.tz, day.and_time(time))
    }

    fn window_start(&self, day: NaiveDate, due: DateTime<Utc>) -> DateTime<Utc> {
        let a_day_before = due - TimeDelta::days(1);
        match self.since {
            Some(since) if since < self.by => self.at(day, since),
            Some(since) => day.pred_opt().map_or(a_day_before, |d| self.at(d, since)),
            // The previous deadline: at most a week back, as `days` names at least one day.
            None => std::iter::successors(day.pred_opt(), |d| d.pred_opt())
                .take(7)
                .find(|d| self.days.contains(d.weekday()))
                .map_or(a_day_before, |d| self.at(d, self.by)),
        }
    }

    fn label(&self, day: NaiveDate) -> String {
        format!("{} {}, {}", self.by.format("%H:%M"), self.tz.name(), day.format("%a %Y-%m-%d"))
    }

    /// An instant as [`Expect::label`] says a deadline: wall-clock time in the rule's zone.
    fn local_label(&self, t: DateTime<Utc>) -> String {
        let local = t.with_timezone(&self.tz);
        format!("{} {}, {}", local.format("%H:%M"), self.tz.name(), local.format("%a %Y-%m-%d"))
    }
}

/// `by 06:00 Europe/Berlin, mon-fri` / `… since 18:00`.
impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "by {} {}, {}", self.by.format("%H:%M"), self.tz.name(), self.days)?;
        if let Some(since) = self.since {
            write!(f, " since {}", since.format("%H:%M"))?;
        }
        Ok(())
    }
}

/// Parses a time of day `HH:MM` (24 h; `6:00` is accepted too).
pub fn parse_time_of_day(text: &str) -> Result<NaiveTime, String> {
    let bad = || format!("`{text}` is not a time of day: write `HH:MM` (24 h), e.g. `06:00`");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    NaiveTime::from_hms_opt(h, m, 0).ok_or_else(bad)
}

/// A set of weekdays.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Days(u8);

const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Days {
    /// Every day.
    pub const DAILY: Days = Days(0b111_1111);
    /// Monday to Friday.
    pub const WEEKDAYS: Days = Days(0b001_1111);

    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }

    /// Parses `daily`, or comma-separated days and ranges: `mon-fri`, `mon,wed,fri`,
    /// `mon-wed,fri`, `fri-mon` (a range may wrap past Sunday). Days are `mon` … `sun` or
    /// written out (`monday`), in any letter case.
    pub fn parse(text: &str) -> Result<Days, String> {
        Days::parse_list(&[text])
    }

    /// Like [`Days::parse`] for a YAML list, each item a day or a range: `[mon, wed-fri]`.
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Days, String> {
        let mut set = 0u8;
        for item in items {
            let item = item.as_ref().trim();
            if item.eq_ignore_ascii_case("daily") {
                set = Days::DAILY.0;
                continue;
            }
            for part in item.split(',').map(str::trim) {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (a, b) = (day_index(a, item)?, day_index(b, item)?);
                let mut i = a;
                loop {
                    set |= 1 << i;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
        }
        if set == 0 {
            return Err("names no day: give e.g. `mon-fri`, `daily` or `[mon, wed, fri]`".into());
        }
        Ok(Days(set))
    }
}

fn day_index(name: &str, item: &str) -> Result<u8, String> {
    let lower = name.trim().to_ascii_lowercase();
    let full = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
    (0u8..7).find(|&i| lower == NAMES[usize::from(i)] || lower == full[usize::from(i)]).ok_or_else(|| {
        format!(
            "unknown day `{}` in `{item}`: use `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`, ranges like `mon-fri`, or `daily`",
            name.trim()
        )
    })
}

/// `daily`, `mon-fri`, or the days and ranges: `mon,wed-fri`.
impl fmt::Display for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Days::DAILY {
            return f.write_str("daily");
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < 7 {
            if self.0 & (1 << i) == 0 {
                i += 1;
                continue;
            }
            let start = i;
            while i + 1 < 7 && self.0 & (1 << (i + 1)) != 0 {
                i += 1;
            }
            parts.push(if start == i { NAMES[start].to_string() } else { format!("{}-{}", NAMES[start], NAMES[i]) });
            i += 1;
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Debug for Days {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Days({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_rules_apart_and_is_stable() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let base = [expect("06:00", "mon-fri", berlin, None)];
        assert_eq!(fingerprint(&base), fingerprint(&base.clone()));
        // Stored in the ledger: the same value in every process and release (a change makes
        // every daemon judge every flow's deadlines from its next start only).
        assert_eq!(fingerprint(&base), 0x7358_c634_0d00_5192);
        for other in [
            vec![expect("06:30", "mon-fri", berlin, None)],
            vec![expect("06:00", "daily", berlin, None)],
            vec![expect("06:00", "mon-fri", Tz::UTC, None)],
            vec![expect("06:00", "mon-fri", berlin, Some("05:00"))],
            vec![base[0].clone(), base[0].clone()],
        ] {
            assert_ne!(fingerprint(&base), fingerprint(&other), "{other:?}");
        }
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn expect(by: &str, days: &str, tz: Tz, since: Option<&str>) -> Expect {
        Expect {
            by: parse_time_of_day(by).unwrap(),
            days: Days::parse(days).unwrap(),
            tz,
            since: since.map(|s| parse_time_of_day(s).unwrap()),
        }
    }

    #[test]
    fn days_syntax() {
        assert_eq!(Days::parse("mon-fri"), Ok(Days::WEEKDAYS));
        assert_eq!(Days::parse("daily"), Ok(Days::DAILY));
        assert_eq!(Days::parse("Mon-Sun"), Ok(Days::DAILY));
        assert_eq!(Days::parse_list(&["mon", "tue", "wednesday", "thu-fri"]), Ok(Days::WEEKDAYS));
        let d = Days::parse("mon-wed, fri").unwrap();
        assert_eq!(d.to_string(), "mon-wed,fri");
        assert!(d.contains(Weekday::Tue) && d.contains(Weekday::Fri) && !d.contains(Weekday::Thu));
        assert_eq!(Days::parse("fri-mon").unwrap().to_string(), "mon,fri-sun");
        assert_eq!(Days::parse("sat").unwrap().to_string(), "sat");
        assert_eq!(format!("{:?}", Days::WEEKDAYS), "Days(mon-fri)");
        assert_eq!(
            Days::parse("mo-fri").unwrap_err(),
            "unknown day `mo` in `mo-fri`: use `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`, ranges like `mon-fri`, or `daily`"
        );
        assert!(Days::parse("").unwrap_err().contains("unknown day ``"));
        assert!(Days::parse("mon-").is_err() && Days::parse("weekdays").is_err());
        assert!(Days::parse_list::<&str>(&[]).unwrap_err().starts_with("names no day"));
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("06:00"), Ok(NaiveTime::from_hms_opt(6, 0, 0).unwrap()));
        assert_eq!(parse_time_of_day("6:05"), Ok(NaiveTime::from_hms_opt(6, 5, 0).unwrap()));
        assert_eq!(parse_time_of_day("23:59"), Ok(NaiveTime::from_hms_opt(23, 59, 0).unwrap()));
        for bad in ["24:00", "06:60", "0600", "6", "06:0", "06:00:00", " 06:00", "-1:00", "aa:bb", ""] {
            assert!(parse_time_of_day(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_time_of_day("25:00").unwrap_err(), "`25:00` is not a time of day: write `HH:MM` (24 h), e.g. `06:00`");
    }

    #[test]
    fn a_week_of_weekday_deadlines() {
        // Mon 2026-11-23 … Sun 2026-11-29, Berlin in winter (UTC+1).
        let e = expect("06:00", "mon-fri", Tz::Europe__Berlin, None);
        let got = e.deadlines_between(utc("2026-11-22T00:00:00Z"), utc("2026-11-29T23:00:00Z"));
        let dues: Vec<String> = got.iter().map(|d| d.due.to_rfc3339()).collect();
        assert_eq!(
            dues,
            [
                "2026-11-23T05:00:00+00:00",
                "2026-11-24T05:00:00+00:00",
                "2026-11-25T05:00:00+00:00",
                "2026-11-26T05:00:00+00:00",
                "2026-11-27T05:00:00+00:00"
            ]
        );
        assert_eq!(got[0].label, "06:00 Europe/Berlin, Mon 2026-11-23");
        assert_eq!(got[4].label, "06:00 Europe/Berlin, Fri 2026-11-27");
        assert_eq!(got[0].since_label, "06:00 Europe/Berlin, Fri 2026-11-20", "in the zone, as the deadline (was: 05:00 UTC)");
        // Default window: since the previous deadline. Monday's starts on Friday.
        assert_eq!(got[0].window_start, utc("2026-11-20T05:00:00Z"));
        assert_eq!(got[1].window_start, got[0].due);
        assert_eq!(got[4].window_start, got[3].due);
    }

    #[test]
    fn bounds_are_exclusive_then_inclusive() {
        let e = expect("06:00", "daily", Tz::UTC, None);
        let at = utc("2026-11-23T06:00:00Z");
        assert_eq!(e.deadlines_between(at, at + TimeDelta::hours(24)).len(), 1, "(from, to]: the one at `to`");
        assert_eq!(e.deadlines_between(at - TimeDelta::seconds(1), at).len(), 1);
        assert!(e.deadlines_between(at, at).is_empty());
        assert!(e.deadlines_between(at + TimeDelta::hours(1), at).is_empty());
    }

    #[test]
    fn since_windows() {
        let day = (utc("2026-11-23T00:00:00Z"), utc("2026-11-24T00:00:00Z"));
        // `since` after `by`: from the evening before.
        let e = expect("06:00", "daily", Tz::Europe__Berlin, Some("18:00"));
        let d = &e.deadlines_between(day.0, day.1)[0];
        assert_eq!((d.window_start, d.due), (utc("2026-11-22T17:00:00Z"), utc("2026-11-23T05:00:00Z")));
        // `since` before `by`: the same morning.
        let e = expect("09:30", "daily", Tz::UTC, Some("07:00"));
        let d = &e.deadlines_between(day.0, day.1)[0];
        assert_eq!((d.window_start, d.due), (utc("2026-11-23T07:00:00Z"), utc("2026-11-23T09:30:00Z")));
        // `since` equal to `by`: the whole day before.
        let e = expect("06:00", "daily", Tz::UTC, Some("06:00"));
        let d = &e.deadlines_between(day.0, day.1)[0];
        assert_eq!(d.due - d.window_start, TimeDelta::hours(24));
    }

    #[test]
    fn deadlines_across_dst_changes() {
        let e = expect("02:30", "daily", Tz::Europe__Berlin, None);
        // Spring (2026-03-29): 02:30 does not exist; due at 03:00 CEST.
        let got = e.deadlines_between(utc("2026-03-28T12:00:00Z"), utc("2026-03-30T12:00:00Z"));
        let dues: Vec<String> = got.iter().map(|d| d.due.to_rfc3339()).collect();
        assert_eq!(dues, ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]);
        assert_eq!(got[0].window_start, utc("2026-03-28T01:30:00Z"));
        // Autumn (2026-10-25): 02:30 happens twice; due once, at the first.
        let got = e.deadlines_between(utc("2026-10-24T12:00:00Z"), utc("2026-10-25T12:00:00Z"));
        assert_eq!(got.iter().map(|d| d.due.to_rfc3339()).collect::<Vec<_>>(), ["2026-10-25T00:30:00+00:00"]);
    }

    #[test]
    fn displays() {
        assert_eq!(expect("06:00", "mon-fri", Tz::Europe__Berlin, None).to_string(), "by 06:00 Europe/Berlin, mon-fri");
        assert_eq!(expect("6:00", "daily", Tz::UTC, Some("18:00")).to_string(), "by 06:00 UTC, daily since 18:00");
    }
}
