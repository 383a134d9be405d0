//! Expected files (`expect:`): at each deadline, was a file delivered in its window?
//!
//! A deadline is checked once: the last one checked is kept in the flow's health
//! (`expect_checked`), so a restart checks the deadlines that passed while the daemon was down
//! and never the same one twice. A miss raises one `missing` event. A check that cannot be
//! recorded (the state folder is full) is not counted as done: it is made again a minute
//! later, until it can be.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::supervisor::Shared;
use crate::ledger::{EventKind, FileState, Ledger, LedgerError, NewEvent, to_millis};
use crate::schedule::Deadline;

/// Looks ahead this far for the next deadline.
const HORIZON_DAYS: i64 = 8;

/// How long after a check that could not be recorded it is made again.
const RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// The last checked time per flow.
pub(super) struct Watch {
    checked: BTreeMap<String, DateTime<Utc>>,
    /// Flows whose last check could not be recorded, and when to check them again.
    again: BTreeMap<String, DateTime<Utc>>,
}

impl Watch {
    pub fn new(_shared: &Arc<Shared>) -> Self {
        Watch { checked: BTreeMap::new(), again: BTreeMap::new() }
    }

    /// Where checking resumes for `flow`: the stored mark, else `now`, the first time this
    /// daemon looks at the flow (at its start, or when a reload brings in a flow with
    /// `expect:`): the deadlines before the flow was served are not its to judge. In the
    /// second case the mark is stored at once: a deadline that passes while the daemon is down
    /// before it checked any is then still checked at the next start.
    fn from(&mut self, shared: &Arc<Shared>, flow: &str, now: DateTime<Utc>) -> DateTime<Utc> {
        if let Some(t) = self.checked.get(flow) {
            return *t;
        }
        let stored = shared.ledger.health(flow).ok().and_then(|h| h.expect_checked).and_then(DateTime::from_timestamp_millis);
        let t = match stored {
            Some(t) => t,
            None => {
                let mark = to_millis(now.into());
                let saved = shared.ledger.update_health(flow, |h| {
                    let mut h = h.clone();
                    // Set only if still unset (nothing else writes it, but never move it back).
                    h.expect_checked.get_or_insert(mark);
                    (h, Vec::new())
                });
                if let Err(e) = saved {
                    tracing::error!(flow = %flow, error = %e, "Could not record where expected-file checks start; a restart may miss a deadline.");
                }
                now
            }
        };
        self.checked.insert(flow.to_string(), t);
        t
    }

    /// Checks every deadline of every flow that passed by `now`.
    pub fn check(&mut self, shared: &Arc<Shared>, now: DateTime<Utc>) {
        for flow in shared.registry().flows() {
            if flow.expect.is_empty() {
                continue;
            }
            let from = self.from(shared, &flow.name, now);
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
            let stored = shared.ledger.recover().and_then(|()| missed(&shared.ledger, &flow.name, &deadlines)).and_then(|events| {
                let mark = to_millis(now.into());
                shared.ledger.update_health(&flow.name, |h| {
                    let mut h = h.clone();
                    h.expect_checked = Some(mark);
                    (h, events)
                })
            });
            match stored {
                Ok(evs) => {
                    for e in &evs {
                        tracing::warn!(flow = %flow.name, detail = %e.detail, "Expected file missing.");
                    }
                    if !evs.is_empty() {
                        shared.notifier.wake();
                    }
                    self.checked.insert(flow.name.clone(), now);
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
            let from = self.from(shared, &flow.name, now);
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
    let delivered: Vec<i64> = ledger.files(flow)?.into_iter().filter(|f| f.state == FileState::Done).map(|f| f.updated).collect();
    let forgotten = ledger.files_forgotten_before(flow)?;
    Ok(deadlines
        .iter()
        .filter(|d| {
            let (from, to) = (d.window_start.timestamp_millis(), d.due.timestamp_millis());
            !delivered.iter().any(|t| (from..=to).contains(t))
        })
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
    use crate::ledger::{DoneRecord, FileRecord};

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
