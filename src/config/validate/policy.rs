//! Meaning checks on how a flow's runs behave: `concurrency` (files in flight, with
//! `on_error`), `retry`, `alerts` and `history`.
//!
//! A child of `validate/mod.rs`, adding methods to the same `Checker`.

use std::time::Duration;

use super::{Checker, MAX_CONCURRENCY};
use crate::config::duration;
use crate::config::flow::{Alerts, Retry};
use crate::config::raw::{OnError, RawAlerts, RawRetry};

/// `history` when the flow does not set it: 90 days.
pub const DEFAULT_HISTORY: Duration = Duration::from_secs(90 * 86_400);

impl Checker<'_, '_> {
    pub(super) fn alerts(&mut self, a: RawAlerts) -> Option<Alerts> {
        if a.unreachable_after == 0 {
            self.problem("/alerts/unreachable_after", "must be at least 1 (runs in a row)");
            return None;
        }
        Some(Alerts { unreachable_after: a.unreachable_after })
    }

    /// Files in flight: as set (1–64), or 1 with `on_error: stop` (files in order); `None`
    /// inside when the flow leaves it to each run. The outer `None`: a problem was reported.
    pub(super) fn concurrency(&mut self, set: Option<Option<u32>>, on_error: Option<OnError>) -> Option<Option<usize>> {
        let stop = on_error == Some(OnError::Stop);
        match set? {
            None => Some(stop.then_some(1)),
            Some(n) if !(1..=MAX_CONCURRENCY).contains(&n) => {
                self.problem("/concurrency", format!("must be between 1 and {MAX_CONCURRENCY} (files in flight at once), not {n}"));
                None
            }
            Some(n) if n > 1 && stop => {
                self.problem("/concurrency", "must be 1 with `on_error: stop`, which takes the files one after the other");
                None
            }
            Some(n) => Some(Some(n as usize)),
        }
    }

    /// `history`: `Some(None)` for `forever`; at least a day (a shorter one would forget a
    /// file's delivery while its partner may still send it again the same day).
    pub(super) fn history(&mut self, set: Option<&str>) -> Option<Option<Duration>> {
        match set {
            None => Some(Some(DEFAULT_HISTORY)),
            Some("forever") => Some(None),
            Some(text) => {
                let d = self.ok("/history", duration::parse(text))?;
                if d < Duration::from_secs(86_400) {
                    self.problem("/history", format!("must be at least `1d` (or `forever`), not `{text}`"));
                    return None;
                }
                Some(Some(d))
            }
        }
    }

    pub(super) fn retry(&mut self, r: RawRetry) -> Option<Retry> {
        if r.attempts == 0 {
            self.problem("/retry/attempts", "must be at least 1 (the first attempt counts)");
        }
        let backoff = self.ok("/retry/backoff", duration::parse(&r.backoff))?;
        (r.attempts > 0).then_some(Retry { attempts: r.attempts, backoff, give_up_after: r.give_up_after })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, problems, run};

    #[test]
    fn concurrency_is_left_to_the_run_unless_set_and_is_one_for_flows_that_stop_at_an_error() {
        assert_eq!(run(BASE).unwrap().concurrency, None);
        assert_eq!(run(&format!("{BASE}on_error: stop\n")).unwrap().concurrency, Some(1));
        assert_eq!(run(&format!("{BASE}concurrency: 64\n")).unwrap().concurrency, Some(64));
        assert_eq!(run(&format!("{BASE}on_error: stop\nconcurrency: 1\n")).unwrap().concurrency, Some(1));
        assert_eq!(
            problems(&format!("{BASE}on_error: stop\nconcurrency: 2\n")),
            ["must be 1 with `on_error: stop`, which takes the files one after the other (at /concurrency)"]
        );
        assert_eq!(
            problems(&format!("{BASE}concurrency: 0\n")),
            ["must be between 1 and 64 (files in flight at once), not 0 (at /concurrency)"]
        );
    }

    #[test]
    fn history_is_ninety_days_unless_set_at_least_a_day_or_forever() {
        use std::time::Duration;
        assert_eq!(run(BASE).unwrap().history, Some(super::DEFAULT_HISTORY));
        assert_eq!(run(&format!("{BASE}history: 1d\n")).unwrap().history, Some(Duration::from_secs(86_400)));
        assert_eq!(run(&format!("{BASE}history: forever\n")).unwrap().history, None);
        assert_eq!(problems(&format!("{BASE}history: 12h\n")), ["must be at least `1d` (or `forever`), not `12h` (at /history)"]);
        assert_eq!(problems(&format!("{BASE}history: always\n")).len(), 1);
    }
}
