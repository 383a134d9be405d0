//! Meaning checks on a flow's `schedule:` and `expect:` sections, and the building of its
//! [`Schedule`] and [`Expect`]s.
//!
//! A child of `validate/mod.rs`, adding methods to the same [`Checker`]. The syntax of cron
//! expressions, time zones, times of day and days belongs to [`crate::schedule`]; this file
//! applies it, with YAML paths, and checks the rules between fields: exactly one of `cron` and
//! `every`, `timezone` only with `cron`, a jitter shorter than the time between runs.

use std::time::Duration;

use chrono_tz::Tz;

use super::Checker;
use crate::config::duration;
use crate::config::raw_schedule::{RawDays, RawExpect, RawSchedule};
use crate::schedule::{CronExpr, Days, Expect, Schedule, ScheduleKind, parse_time_of_day, parse_timezone};

const AT: &str = "/schedule";
/// The shortest `every:` (a cron expression cannot be shorter either).
const MIN_EVERY: Duration = Duration::from_secs(1);
/// The longest `every:`: a year (a leap one). Longer ones look like a typo, and beyond a few
/// hundred thousand years no run would ever fall due.
const MAX_EVERY: Duration = Duration::from_secs(366 * 24 * 3600);

impl Checker<'_, '_> {
    pub(super) fn schedule(&mut self, raw: RawSchedule) -> Option<Schedule> {
        let jitter = self.ok(&format!("{AT}/jitter"), duration::parse(&raw.jitter));
        let kind = match (raw.cron, raw.every) {
            (Some(_), Some(_)) => {
                self.problem(AT, "set either `cron` or `every`, not both");
                None
            }
            (None, None) => {
                self.problem(AT, "set `cron` (an expression such as `*/30 * * * *`) or `every` (an interval such as `30m`)");
                None
            }
            (Some(expr), None) => {
                let expr = self.ok(&format!("{AT}/cron"), CronExpr::parse(&expr));
                let tz = match &raw.timezone {
                    Some(name) => self.ok(&format!("{AT}/timezone"), parse_timezone(name)),
                    None => Some(Tz::UTC),
                };
                match (expr, tz) {
                    (Some(expr), Some(tz)) => Some(ScheduleKind::Cron { expr, tz }),
                    _ => None,
                }
            }
            (None, Some(every)) => {
                if raw.timezone.is_some() {
                    self.problem(
                        format!("{AT}/timezone"),
                        "only applies to `cron`: an `every` interval is counted in UTC, whatever the zone",
                    );
                }
                let at = format!("{AT}/every");
                let interval = self.positive_duration(&at, &every)?;
                if interval < MIN_EVERY {
                    // Every run is a ledger commit (and a listing of the source): hundreds a
                    // second fill the ledger and keep a core busy.
                    self.problem(&at, format!("`{every}` is shorter than 1s: runs are recorded in the ledger; run at most every second"));
                    return None;
                }
                if interval > MAX_EVERY {
                    self.problem(
                        &at,
                        format!(
                            "`{every}` is longer than a year: for a yearly run use `cron` (`0 6 1 1 *`); for runs only on demand leave `schedule` out (`wharf trigger`)"
                        ),
                    );
                    return None;
                }
                Some(ScheduleKind::Every(interval))
            }
        };
        let (kind, jitter) = (kind?, jitter?);
        let between = match &kind {
            ScheduleKind::Every(interval) => Some(*interval),
            ScheduleKind::Cron { expr, tz } => expr.shortest_gap(*tz),
        };
        if let ScheduleKind::Cron { expr, .. } = &kind {
            self.seconds_field(expr, between);
            self.quartz_weekdays(expr);
        }
        if let Some(between) = between.filter(|b| jitter >= *b) {
            self.problem(
                format!("{AT}/jitter"),
                format!(
                    "`{}` must be shorter than the time between two runs ({}): a run would be shifted past the next one",
                    raw.jitter,
                    duration::format(between)
                ),
            );
            return None;
        }
        Some(Schedule { kind, jitter, overlap: raw.overlap, zone_given: raw.timezone.is_some() })
    }

    /// A warning for a six-field `cron` that runs more than once a minute (`*/5 * * * * *`:
    /// every 5 seconds): six fields start with seconds, which a five-field expression with one
    /// field too many becomes without a word. `between` is its shortest gap between runs.
    fn seconds_field(&mut self, expr: &CronExpr, between: Option<Duration>) {
        let fields: Vec<&str> = expr.as_str().split_whitespace().collect();
        let Some(between) = between.filter(|b| fields.len() == 6 && *b < Duration::from_secs(60)) else { return };
        self.warning(
            format!("{AT}/cron"),
            format!(
                "`{}` has six fields, the first being seconds: it runs as often as every {}, each run a listing of the source and a \
                 record in the ledger; a schedule in minutes has five fields, minute hour day-of-month month day-of-week (`{}`: the \
                 first five alone)",
                expr.as_str(),
                duration::format(between),
                fields[..5].join(" ")
            ),
        );
    }

    /// A warning for a cron written the Quartz way (`?` in a day field, as Camel and Spring
    /// users write it) with day-of-week numbers: Quartz counts them from Sunday = 1, cron here
    /// from Sunday = 0, so `0 0 7 ? * 2-6` (weekdays, in Quartz) runs Tuesday to Saturday.
    /// Names (`MON-FRI`) mean the same in both.
    fn quartz_weekdays(&mut self, expr: &CronExpr) {
        let fields: Vec<&str> = expr.as_str().split_whitespace().collect();
        let Some(weekdays) = fields.last().filter(|_| fields.iter().any(|f| f.contains('?'))) else { return };
        if !weekdays.chars().any(|c| c.is_ascii_digit()) {
            return;
        }
        self.warning(
            format!("{AT}/cron"),
            format!(
                "`{}` is written like a Quartz expression (`?`), but its day-of-week numbers count from Sunday = 0 here, as in \
                 cron, not from Sunday = 1 as in Quartz: `{weekdays}` does not mean what it means there (Quartz's `2-6`, Monday \
                 to Friday, is Tuesday to Saturday here); write the days by name (`MON-FRI`), which mean the same in both",
                expr.as_str()
            ),
        );
    }

    /// Checks every `expect:` entry (`None` items are malformed, already reported).
    pub(super) fn expects(&mut self, raw: Vec<Option<RawExpect>>) -> Option<Vec<Expect>> {
        let built: Vec<Option<Expect>> =
            raw.into_iter().enumerate().map(|(i, e)| e.and_then(|e| self.expect(&format!("/expect/{i}"), e))).collect();
        built.into_iter().collect()
    }

    fn expect(&mut self, at: &str, raw: RawExpect) -> Option<Expect> {
        let by = self.ok(&format!("{at}/by"), parse_time_of_day(&raw.by));
        let days = self.ok(
            &format!("{at}/days"),
            match &raw.days {
                RawDays::Text(text) => Days::parse(text),
                RawDays::List(items) => Days::parse_list(items),
            },
        );
        let tz = match &raw.timezone {
            Some(name) => self.ok(&format!("{at}/timezone"), parse_timezone(name)),
            None => Some(Tz::UTC),
        };
        let since = match &raw.since {
            Some(text) => Some(self.ok(&format!("{at}/since"), parse_time_of_day(text))?),
            None => None,
        };
        Some(Expect { by: by?, days: days?, tz: tz?, since })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::tests::{problems, run};
    use super::*;
    use crate::schedule::Overlap;

    const BASE: &str = "name: orders
endpoints:
  a: { type: local, root: ./a }
  b: { type: local, root: ./b }
source: { endpoint: a, path: / }
sinks: [ { endpoint: b } ]
";

    #[test]
    fn without_schedule_or_expect() {
        let flow = run(BASE).unwrap();
        assert!(flow.schedule.is_none() && flow.expect.is_empty());
    }

    #[test]
    fn builds_cron_and_every_schedules() {
        let flow =
            run(&format!("{BASE}schedule: {{ cron: \"*/30 * * * *\", timezone: Europe/Berlin, jitter: 30s, overlap: queue }}\n")).unwrap();
        let s = flow.schedule.unwrap();
        assert_eq!(s.to_string(), "cron */30 * * * * (Europe/Berlin), jitter 30s, overlap queue");
        assert!(matches!(&s.kind, ScheduleKind::Cron { expr, tz: Tz::Europe__Berlin } if expr.as_str() == "*/30 * * * *"));
        assert_eq!((s.jitter, s.overlap, s.zone_given), (Duration::from_secs(30), Overlap::Queue, true));

        let s = run(&format!("{BASE}schedule: {{ every: 5m }}\n")).unwrap().schedule.unwrap();
        assert_eq!(
            s,
            Schedule {
                kind: ScheduleKind::Every(Duration::from_secs(300)),
                jitter: Duration::ZERO,
                overlap: Overlap::Skip,
                zone_given: false
            }
        );
        let s = run(&format!("{BASE}schedule: {{ cron: \"0 6 * * mon-fri\" }}\n")).unwrap().schedule.unwrap();
        assert_eq!(s.to_string(), "cron 0 6 * * mon-fri (UTC)");
        assert!(!s.zone_given, "read in UTC without a `timezone:`");
    }

    /// Before, `*/5 * * * * *` (meant: every five minutes, one field too many) was taken as
    /// every five seconds without a word.
    #[test]
    fn a_six_field_cron_that_runs_within_the_minute_is_a_warning() {
        use super::super::tests::warnings;
        let w = |cron: &str| warnings(&format!("{BASE}schedule: {{ cron: \"{cron}\" }}\n"));
        assert_eq!(
            w("*/5 * * * * *"),
            ["`*/5 * * * * *` has six fields, the first being seconds: it runs as often as every 5s, each run a listing of the source \
              and a record in the ledger; a schedule in minutes has five fields, minute hour day-of-month month day-of-week \
              (`*/5 * * * *`: the first five alone) (at /schedule/cron)"]
        );
        assert_eq!(w("* 0 7 * * mon-fri").len(), 1, "every second of 07:00");
        // Seconds that are once a minute or less are meant.
        for cron in ["15 0 6 * * *", "0 */5 * * * *", "0 0 7 ? * MON-FRI", "*/5 * * * *", "* * * * *"] {
            assert_eq!(w(cron), Vec::<String>::new(), "{cron}");
        }
    }

    /// Before, `0 0 7 ? * 2-6` (Monday to Friday, to a Quartz user) passed without a word
    /// and ran Tuesday to Saturday.
    #[test]
    fn a_quartz_cron_with_weekday_numbers_is_a_warning() {
        use super::super::tests::warnings;
        let w = |cron: &str| warnings(&format!("{BASE}schedule: {{ cron: \"{cron}\" }}\n"));
        let got = w("0 0 7 ? * 2-6");
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with("`0 0 7 ? * 2-6` is written like a Quartz expression (`?`)")
                && got[0].contains("`2-6` does not mean")
                && got[0].ends_with("(at /schedule/cron)"),
            "{got:#?}"
        );
        for cron in ["0 0 7 ? * MON-FRI", "0 7 * * 1-5", "0 0 7 1 * ?"] {
            assert_eq!(w(cron), Vec::<String>::new(), "{cron}");
        }
    }

    #[test]
    fn schedule_problems_with_paths() {
        let p = |s: &str| problems(&format!("{BASE}schedule: {s}\n"));
        assert_eq!(p("{ cron: \"* * * * *\", every: 1m }"), ["set either `cron` or `every`, not both (at /schedule)"]);
        assert_eq!(
            p("{ jitter: 1s }"),
            ["set `cron` (an expression such as `*/30 * * * *`) or `every` (an interval such as `30m`) (at /schedule)"]
        );
        let got = p("{ cron: \"*/30 * * *\", timezone: Europe/Berln, jitter: \"5\" }");
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("`5` is not a duration") && got[0].ends_with("(at /schedule/jitter)"), "{got:#?}");
        assert!(
            got[1].starts_with("bad cron expression `*/30 * * *`: it has 4 fields; write 5 (") && got[1].ends_with("(at /schedule/cron)")
        );
        assert!(got[2].contains("(did you mean `Europe/Berlin`?) (at /schedule/timezone)"), "{got:#?}");
        assert_eq!(p("{ cron: \"0 0 30 2 *\" }"), ["cron expression `0 0 30 2 *` never matches a real date (at /schedule/cron)"]);
        assert_eq!(p("{ every: 0s }"), ["`0s` is zero; give a positive duration (at /schedule/every)"]);
        // Were accepted: `500ms` ran twice a second, each run a ledger commit; `100000000d`
        // never fell due (status showed no next time, and nothing said why).
        assert_eq!(
            p("{ every: 500ms }"),
            ["`500ms` is shorter than 1s: runs are recorded in the ledger; run at most every second (at /schedule/every)"]
        );
        let got = p("{ every: 100000000d }");
        assert!(got.len() == 1 && got[0].starts_with("`100000000d` is longer than a year: for a yearly run use `cron`"), "{got:#?}");
        assert!(got[0].ends_with("(at /schedule/every)"), "{got:#?}");
        assert!(run(&format!("{BASE}schedule: {{ every: 1s }}\n")).is_ok());
        assert!(run(&format!("{BASE}schedule: {{ every: 366d }}\n")).is_ok());
        assert_eq!(
            p("{ every: 10m, timezone: UTC }"),
            ["only applies to `cron`: an `every` interval is counted in UTC, whatever the zone (at /schedule/timezone)"]
        );
        assert_eq!(
            p("{ every: 10m, jitter: 10m }"),
            ["`10m` must be shorter than the time between two runs (10m): a run would be shifted past the next one (at /schedule/jitter)"]
        );
        assert_eq!(
            p("{ cron: \"0 9,17 * * *\", jitter: 8h }"),
            ["`8h` must be shorter than the time between two runs (8h): a run would be shifted past the next one (at /schedule/jitter)"]
        );
        assert!(run(&format!("{BASE}schedule: {{ cron: \"0 9,17 * * *\", jitter: 7h59m }}\n")).is_ok());
    }

    #[test]
    fn builds_expects() {
        let flow = run(&format!(
            "{BASE}expect:\n  - {{ by: \"06:00\", days: mon-fri, timezone: Europe/Berlin, since: \"18:00\" }}\n  - {{ by: \"12:30\", days: [mon, wed-fri] }}\n  - {{ by: \"23:00\" }}\n"
        ))
        .unwrap();
        let shown: Vec<String> = flow.expect.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["by 06:00 Europe/Berlin, mon-fri since 18:00", "by 12:30 UTC, mon,wed-fri", "by 23:00 UTC, daily"]);
    }

    #[test]
    fn loaded_problems_carry_lines_and_a_bad_entry_hides_no_other() {
        let text = format!(
            "{BASE}schedule:\n  cron: \"0 6 * * mon-fri\"\n  timezone: Europe/Berln\nexpect:\n  - {{ by: 7 }}\n  - {{ by: \"06:00\", days: mo-fri }}\n"
        );
        let got: Vec<String> = crate::config::load_flow_str_with_env(&text, Path::new("f.yaml"), &|_| Err(std::env::VarError::NotPresent))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        let want = [
            "f.yaml:9:13: unknown time zone `Europe/Berln`: give an IANA name such as `Europe/Berlin` or `UTC` (did you mean `Europe/Berlin`?) (at /schedule/timezone)",
            "f.yaml:11:11: expected a string, found the number 7 (at /expect/0/by)",
            "f.yaml:12:26: unknown day `mo` in `mo-fri`: use `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`, ranges like `mon-fri`, or `daily` (at /expect/1/days)",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn expect_problems_with_paths() {
        let got = problems(&format!(
            "{BASE}expect:\n  - {{ by: \"6\", days: mo-fr, timezone: Mars/Base, since: \"25:00\" }}\n  - {{ by: \"06:00\", days: [mon, someday] }}\n"
        ));
        let want = [
            "`6` is not a time of day: write `HH:MM` (24 h), e.g. `06:00` (at /expect/0/by)",
            "unknown day `mo` in `mo-fr`: use `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`, ranges like `mon-fri`, or `daily` (at /expect/0/days)",
            "unknown time zone `Mars/Base`: give an IANA name such as `Europe/Berlin` or `UTC` (at /expect/0/timezone)",
            "`25:00` is not a time of day: write `HH:MM` (24 h), e.g. `06:00` (at /expect/0/since)",
            "unknown day `someday` in `someday`: use `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`, ranges like `mon-fri`, or `daily` (at /expect/1/days)",
        ];
        assert_eq!(got, want);
    }
}
