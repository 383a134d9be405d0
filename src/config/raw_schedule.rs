//! The `schedule:` and `expect:` parts of a flow file as written: when `wharf serve` runs the
//! flow, and by when a file must have been delivered. Serde + schemars types that mirror the
//! YAML one to one, like `raw.rs` (a file of its own: a concept of its own).
//!
//! Shape only: cron expressions, time zones, durations, times and days are checked by
//! `validate/schedule.rs`, which builds [`crate::schedule::Schedule`] and
//! [`crate::schedule::Expect`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// When `wharf serve` runs the flow: exactly one of `cron` or `every`. Without a schedule the
/// flow runs only when asked (`wharf run`, `wharf trigger`), and under `wharf serve` again
/// (with backoff) after a run that could not reach a server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSchedule {
    /// A cron expression: `minute hour day-of-month month day-of-week`, or six fields with
    /// seconds first (`*/30 * * * *`, `0 6 * * mon-fri`, `15 0 6 * * *`). Names (`mon`, `jan`),
    /// ranges, lists, steps, `L`, `W`, `#` and `@daily`-style nicknames are understood (croner
    /// syntax). Read as wall-clock time in `timezone`. Six fields that run more than once a
    /// minute (`*/5 * * * * *`: every 5 seconds, not minutes) are warned of. Day-of-week
    /// numbers count from Sunday = 0 (`1-5` is Monday to Friday), not from Sunday = 1 as in
    /// Quartz (Camel, Spring): a Quartz-style expression (`?`) with day numbers is warned of;
    /// day names mean the same in both. A name stands only in its own field (`0 6 * jan
    /// mon-fri`; `0 6 * mon-fri jan` is refused). With both day fields restricted, a day that
    /// matches either runs, as in classic cron: `0 6 13 * fri` runs on every 13th and on every
    /// Friday (to run on Fridays the 13th only, write `0 6 13 * +fri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// An interval (a duration: `30m`), from `1s` to `366d`. Runs are on a fixed grid counted from 1970-01-01
    /// 00:00 UTC (`every: 1h` runs at every full hour, plus jitter), so a restart keeps the same
    /// times; runs missed while wharf was stopped are not made up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::duration::schema")]
    pub every: Option<String>,
    /// IANA time zone the `cron` fields are read in (`Europe/Berlin`). Default: `UTC`, whatever
    /// the machine's zone (`wharf validate` and `wharf plan` add a note when that zone is not
    /// UTC: "`0 6 * * *` runs at 06:00 UTC (07:00 here in Europe/Berlin)"; `wharf plan` shows
    /// the next three times in this zone). Only with `cron`. Daylight saving time: a run at a fixed time of day that the spring change
    /// skips (`30 2 * * *`) happens at the first moment after the gap (03:00), one in the hour
    /// repeated in autumn happens once, at its first pass; an interval pattern (`*/15 * * * *`)
    /// has no runs in the skipped hour and runs in both passes of the repeated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Spread: every run of this flow is shifted by the same offset in `[0, jitter)`, derived
    /// from the flow's name (a duration: `30s`). So a hundred flows on one cron do not hit a
    /// server in the same second, and a flow's runs keep their time across restarts. Must be
    /// shorter than the time between two runs.
    #[serde(default = "default_jitter")]
    #[schemars(schema_with = "super::duration::schema")]
    pub jitter: String,
    /// What a run that falls due while the previous run of this flow is still going does:
    /// `skip` it (default) or `queue` it. A flow never runs twice at once.
    #[serde(default)]
    pub overlap: Overlap,
}

/// What a due run does while the flow's previous run still goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Skip it; the next due time comes as usual.
    #[default]
    Skip,
    /// Run once right after the previous run ends. At most one run waits: a further due time
    /// while one waits is skipped, and counted as `skip` counts its skips (`wharf status`,
    /// `wharf_runs_skipped_total`); a `wharf trigger` then is answered `queued` (the run
    /// waiting) and not counted.
    Queue,
}

impl Overlap {
    /// As written in a flow file.
    pub fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
        }
    }
}

/// A file this flow must have delivered by a time of day: when none was delivered in the
/// window before the deadline, `wharf serve` raises an "expected file missing" alert.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// The deadline, a local time of day `HH:MM` (24 h) in `timezone`. A time the spring DST
    /// change skips counts as the first moment after the gap; one the autumn change repeats,
    /// as its first pass.
    pub by: String,
    /// The days with a deadline: `daily` (default), `mon-fri`, days and ranges separated by
    /// commas (`mon-wed,fri`), or a list (`[mon, wed, fri]`). Days are `mon` … `sun`.
    #[serde(default = "default_days")]
    pub days: RawDays,
    /// IANA time zone of `by` and `since` (`Europe/Berlin`). Default: `UTC`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Start of the window a delivery must fall into, `HH:MM`: on the deadline's day when
    /// before `by`, else on the day before (`since: "18:00"` with `by: "06:00"` is the night
    /// before). Default: the previous deadline of this entry (on Monday for `mon-fri`: Friday's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// `daily`, `mon-fri`, `mon-wed,fri`, or a list of days and ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawDays {
    /// Days and ranges in one string: `mon-fri`, `mon,wed,fri`, `daily`.
    Text(String),
    /// One day or range per item: `[mon, wed, fri]`.
    List(Vec<String>),
}

fn default_jitter() -> String {
    "0s".into()
}

fn default_days() -> RawDays {
    RawDays::Text("daily".into())
}
