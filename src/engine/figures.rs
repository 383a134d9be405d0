//! A run's counts in words, as every text summary of a run writes them: `wharf run`'s
//! headline, `wharf status`'s last run and the `summary` notice's default text. One rule for
//! all of them ([`nonzero`]): a count that is zero is left out, except `N delivered`, which
//! says what the run did even when that is nothing. `--json`, the notice's `facts` and the
//! templates reading them keep every figure.

use super::RunReport;

/// A count of a run's text summaries, `None` when it is zero (see the module doc); `figure`
/// writes the count (`3 failed (1 of them a response)`).
pub fn nonzero(count: impl Into<u64>, figure: impl FnOnce() -> String) -> Option<String> {
    (count.into() > 0).then(figure)
}

impl RunReport {
    /// The run's file counts, zero ones left out ([`nonzero`]): `5 seen, 1 not ready, 3
    /// delivered, 1 failed`; `0 delivered` for a run that found nothing. Quarantined files are
    /// not among them ([`quarantined_figure`](Self::quarantined_figure)).
    pub fn figures(&self) -> Vec<String> {
        let c = &self.counts;
        let figures = [
            nonzero(c.seen, || format!("{} seen", c.seen)),
            nonzero(c.not_ready, || format!("{} not ready", c.not_ready)),
            Some(format!("{} delivered", c.delivered)),
            nonzero(c.skipped, || format!("{} skipped", c.skipped)),
            nonzero(c.failed, || self.failed_figure()),
        ];
        figures.into_iter().flatten().collect()
    }

    /// The run's status and counts in one line, as a text summary of it reads after its run
    /// number: `failed — 5 seen, 2 delivered, 1 failed (42 bytes)`; with `quarantined`, its
    /// quarantined files too, when there are any (`wharf run` says them on its second line).
    pub fn outcome_line(&self, quarantined: bool) -> String {
        let mut figures = self.figures();
        if quarantined {
            figures.extend(nonzero(self.quarantined, || self.quarantined_figure()));
        }
        format!("{} — {} ({} bytes)", self.status.as_str(), figures.join(", "), self.counts.bytes)
    }

    /// The run's `failed` figure, saying which of them are responses (counted in `failed`, not
    /// in `seen`: their `responses:` lines say why): `2 failed`, `1 failed (a response)`, `3
    /// failed (1 of them a response)`.
    pub fn failed_figure(&self) -> String {
        of_responses(self.counts.failed, self.responses.iter().filter(|r| r.failed()).count(), "failed")
    }

    /// The run's `quarantined` figure, as [`failed_figure`](Self::failed_figure) says its
    /// responses: `1 quarantined (a response)`.
    pub fn quarantined_figure(&self) -> String {
        of_responses(self.quarantined, self.responses.iter().filter(|r| r.quarantined()).count(), "quarantined")
    }
}

/// `total` files `what` (`failed`), `responses` of them responses.
fn of_responses(total: u32, responses: usize, what: &str) -> String {
    match responses {
        0 => format!("{total} {what}"),
        1 if total == 1 => format!("1 {what} (a response)"),
        n if u32::try_from(n).is_ok_and(|n| n == total) => format!("{total} {what} (responses)"),
        1 => format!("{total} {what} (1 of them a response)"),
        n => format!("{total} {what} ({n} of them responses)"),
    }
}

#[cfg(test)]
impl RunReport {
    /// The report of run `run` of `flow` that found nothing (tests fill in what they need).
    pub(crate) fn empty(flow: &str, run: u64) -> Self {
        RunReport {
            flow: flow.into(),
            run,
            status: crate::ledger::RunStatus::Ok,
            counts: Default::default(),
            quarantined: 0,
            records: Default::default(),
            files: vec![],
            responses: vec![],
            skipped_names: vec![],
            unlisted_folders: vec![],
            later: None,
            error: None,
            error_kind: None,
            aborted_by_command: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Counts, RunStatus};

    /// The `summary` notice's text said every count (`0 failed, 0 quarantined, 0 not ready,
    /// 0 skipped`) where `wharf run` leaves zero ones out: both follow the one rule now, the
    /// notice naming its quarantined files in the same line.
    #[test]
    fn the_outcome_line_leaves_out_zero_counts_but_delivered() {
        let mut r = RunReport::empty("f", 1);
        assert_eq!(r.outcome_line(true), "ok — 0 delivered (0 bytes)");
        r.counts = Counts { seen: 5, not_ready: 1, delivered: 3, skipped: 0, failed: 1, bytes: 42 };
        r.quarantined = 2;
        r.status = RunStatus::Failed;
        assert_eq!(r.outcome_line(true), "failed — 5 seen, 1 not ready, 3 delivered, 1 failed, 2 quarantined (42 bytes)");
        assert_eq!(r.outcome_line(false), "failed — 5 seen, 1 not ready, 3 delivered, 1 failed (42 bytes)");
    }
}
