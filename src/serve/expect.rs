//! Expected files (`expect:`): at each deadline, was a file delivered in its window?
//!
//! A deadline is checked once: the last one checked is kept in the flow's health
//! (`expect_checked`, with a fingerprint of the rules it was checked by), so a restart checks
//! the deadlines that passed while the daemon was down and never the same one twice. Rules
//! that changed, or came back after being taken out, are judged from then on only. A miss raises one `missing` event. A check that cannot be
//! recorded (the state folder is full) is not counted as done: it is made again a minute
//! later, until it can be.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::supervisor::Shared;
use crate::ledger::{EventKind, Ledger, LedgerError, NewEvent, to_millis};
use crate::schedule::{Deadline, Expect, expect_fingerprint};

/// Looks ahead this far for the next deadline.
const HORIZON_DAYS: i64 = 8;

/// How long after a check that could not be recorded it is made again.
const RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The last checked time per flow, with the fingerprint of the rules it was checked by.
pub(super) struct Watch {
    checked: BTreeMap<String, (DateTime<Utc>, u64)>,
    /// Flows whose last check could not be recorded, and when to check them again.
    again: BTreeMap<String, DateTime<Utc>>,
    /// Flows without `expect:` whose stored mark this daemon has cleared (or found none).
    cleared: BTreeSet<String>,
}

impl Watch {
    pub fn new(_shared: &Arc<Shared>) -> Self {
        Watch { checked: BTreeMap::new(), again: BTreeMap::new(), cleared: BTreeSet::new() }
    }

    /// Where checking resumes for `flow`: the stored mark if it was made for the flow's
    /// current rules, else `now`: the first time a daemon looks at the flow (at its start, or
    /// when a reload brings in a flow with `expect:`), and when its rules changed or came back
    /// after being taken out: the deadlines before are not these rules' to judge. The new
    /// mark is stored at once: a deadline that passes while the daemon is down before it
    /// checked any is then still checked at the next start.
    fn from(&mut self, shared: &Arc<Shared>, flow: &str, rules: &[Expect], now: DateTime<Utc>) -> DateTime<Utc> {
        let print = expect_fingerprint(rules);
        let known = match self.checked.get(flow) {
            Some((t, p)) if *p == print => return *t,
            Some(_) => true,
            None => false,
        };
        self.cleared.remove(flow);
        // Changed while served: the stored mark was made for the old rules.
        let stored = if known { Ok((None, None)) } else { shared.ledger.expect_mark(flow) };
        let resumed = stored.as_ref().ok().and_then(|(mark, p)| {
            // A mark without a fingerprint was made by an older wharf: resumed, as then.
            mark.filter(|_| p.is_none_or(|p| p == print)).and_then(DateTime::from_timestamp_millis)
        });
        let t = resumed.unwrap_or(now);
        // Not over a mark that could not be read: it may still be right.
        let saved = stored.and_then(|_| shared.ledger.set_expect_mark(flow, Some((to_millis(t.into()), print)), Vec::new()));
        if let Err(e) = saved {
            tracing::error!(flow = %flow, error = %e, "Could not record where expected-file checks start; a restart may miss a deadline.");
        }
        self.checked.insert(flow.to_string(), (t, print));
        t
    }

    /// Forgets the mark of a flow whose `expect:` was taken out (once per daemon and flow):
    /// when it comes back it is judged from then, not for the days it was out.
    fn clear(&mut self, shared: &Arc<Shared>, flow: &str) {
        if self.cleared.contains(flow) {
            return;
        }
        self.checked.remove(flow);
        self.again.remove(flow);
        let cleared = match shared.ledger.expect_mark(flow) {
            Ok((None, None)) => Ok(()),
            Ok(_) => shared.ledger.set_expect_mark(flow, None, Vec::new()).map(|_| ()),
            Err(e) => Err(e),
        };
        match cleared {
            Ok(()) => {
                self.cleared.insert(flow.to_string());
            }
            // Tried again at the next check.
            Err(e) => tracing::error!(flow = %flow, error = %e, "Could not forget the expected-file checks of a flow without `expect:`."),
        }
    }

    /// Checks every deadline of every flow that passed by `now`.
    pub fn check(&mut self, shared: &Arc<Shared>, now: DateTime<Utc>) {
        for flow in shared.registry().flows() {
            if flow.expect.is_empty() {
                self.clear(shared, &flow.name);
                continue;
            }
            let from = self.from(shared, &flow.name, &flow.expect, now);
            if from >= now || self.again.get(&flow.name).is_some_and(|t| *t > now) {
                continue;
            }
            let deadlines: Vec<Deadline> = flow.expect.iter().flat_map(|e| e.deadlines_between(from, now)).collect();
            if deadlines.is_empty() {
                continue;
            }
            // A write that failed before (a full state folder) left the ledger taking nothing
            // until it is opened again: done here too, not only by a run (a flow that only
            // expects files may have none).
            let print = expect_fingerprint(&flow.expect);
            let stored = shared
                .ledger
                .recover()
                .and_then(|()| missed(&shared.ledger, &flow.name, &deadlines))
                .and_then(|events| shared.ledger.set_expect_mark(&flow.name, Some((to_millis(now.into()), print)), events));
            match stored {
                Ok(evs) => {
                    for e in &evs {
                        tracing::warn!(flow = %flow.name, detail = %e.detail, "Expected file missing.");
                    }
                    if !evs.is_empty() {
                        shared.notifier.wake();
                    }
                    self.checked.insert(flow.name.clone(), (now, print));
                    self.again.remove(&flow.name);
                }
                Err(e) => {
                    // Not done: a deadline missed now would otherwise never be reported.
                    tracing::error!(flow = %flow.name, error = %e, retry_in_s = RETRY.num_seconds(), "Could not check expected files; checking again.");
                    self.again.insert(flow.name.clone(), now + RETRY);
                }
            }
        }
    }

    /// The next deadline of any flow, `now` being the time of the last [`Watch::check`].
    pub fn next(&mut self, shared: &Arc<Shared>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut best: Option<DateTime<Utc>> = None;
        for flow in shared.registry().flows() {
            if flow.expect.is_empty() {
                continue;
            }
            let from = self.from(shared, &flow.name, &flow.expect, now);
            let to = from + chrono::Duration::days(HORIZON_DAYS);
            let first = match self.again.get(&flow.name) {
                // Its passed deadlines wait for the check made again.
                Some(t) => Some(*t),
                None => flow.expect.iter().filter_map(|e| e.deadlines_between(from, to).into_iter().map(|d| d.due).min()).min(),
            };
            best = match (best, first) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        best
    }
}

/// One `missing` event per deadline whose window saw no delivered file. A window reaching
/// back before what the flow's `history` forgot (a daemon down for longer than it, checking
/// the deadlines it missed) cannot be judged: it is logged, never reported missing.
fn missed(ledger: &Ledger, flow: &str, deadlines: &[Deadline]) -> Result<Vec<NewEvent>, LedgerError> {
    let windows: Vec<(i64, i64)> = deadlines.iter().map(|d| (d.window_start.timestamp_millis(), d.due.timestamp_millis())).collect();
    let delivered = ledger.delivered_in(flow, &windows)?;
    let forgotten = ledger.files_forgotten_before(flow)?;
    Ok(deadlines
        .iter()
        .zip(delivered)
        .filter(|(_, delivered)| !delivered)
        .map(|(d, _)| d)
        .filter(|d| {
            let judged = forgotten.is_none_or(|f| d.window_start.timestamp_millis() >= f);
            if !judged {
                tracing::warn!(flow = %flow, deadline = %d.label, "Cannot tell whether a file was delivered by this past deadline: the flow's `history` no longer goes back to its window; not reported missing.");
            }
            judged
        })
        .map(|d| NewEvent {
            flow: flow.to_string(),
            at: d.due.timestamp_millis(),
            kind: EventKind::Missing,
            subject: String::new(),
            detail: format!("no file was delivered by {} (window from {})", d.label, d.window_start.format("%Y-%m-%d %H:%M UTC")),
            // Judged by the daemon's clock, not by a run.
            run: None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::prune::Prune;
    use crate::ledger::{DoneRecord, FileRecord, FileState};

    const DAY: i64 = 86_400_000;

    fn deadline(from: i64, to: i64) -> Deadline {
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        Deadline { due: at(to), window_start: at(from), label: format!("day {}", to / DAY) }
    }

    #[test]
    fn a_window_older_than_the_history_is_not_reported_missing() {
        let l = Ledger::in_memory().unwrap();
        let rec =
            FileRecord { path: "in/a.csv".into(), identity: "id".into(), state: FileState::Done, updated: 2 * DAY, ..Default::default() };
        l.complete("f", &rec, &DoneRecord { path: rec.path.clone(), run: 1, at: 2 * DAY, targets: vec![] }).unwrap();
        assert!(missed(&l, "f", &[deadline(DAY, 3 * DAY)]).unwrap().is_empty(), "delivered in its window");
        // A daemon down for 100 days: the delivery was forgotten meanwhile (moved away).
        let listed = Default::default();
        let p = Prune {
            flow: "f",
            cutoff: 90 * DAY,
            listed: Some(&listed),
            forget_delivered: crate::ledger::prune::ForgetDelivered::All,
            limit: 100,
        };
        assert_eq!(l.prune(&p, 100 * DAY).unwrap().files, 1);
        assert!(missed(&l, "f", &[deadline(DAY, 3 * DAY)]).unwrap().is_empty(), "cannot tell: not reported missing");
        // A window since the cutoff is judged as before.
        let events = missed(&l, "f", &[deadline(95 * DAY, 96 * DAY)]).unwrap();
        assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [EventKind::Missing]);
    }
}
