//! Expected files (`expect:`): at each deadline, was a file delivered in its window?
//!
//! A deadline is checked once: the last one checked is kept in the flow's health
//! (`expect_checked`, with a fingerprint of the rules it was checked by), so a restart checks
//! the deadlines that passed while the daemon was down and never the same one twice. Rules
//! that changed, or came back after being taken out, are judged from then on only. A miss
//! raises one `missing` event. A check that cannot be recorded (the state folder is full) is
//! not counted as done: it is made again a minute later, until it can be.
//!
//! **The marks are written off the daemon's loop** ([`Marks`], by the blocking writer of
//! `behind.rs`): the loop decides (where checking resumes, which deadlines passed) and goes
//! on; a durable commit held it up to 100 ms and more. What is kept:
//! - *A missed deadline is recorded with its mark in one transaction*: the writer judges the
//!   windows and writes the `missing` events and the new mark together (a check), so a crash
//!   neither loses a miss nor reports it twice.
//! - *A mark read after a restart is the last one written*: one writer writes the marks in
//!   the order the loop made them, and the daemon waits for it at shutdown before it lets the
//!   ledger go. Within the daemon, a mark is read from what waits to be written first
//!   ([`Marks::mark`]), then from the ledger.
//! - *A check that could not be recorded is made again*: the writer tells the loop (and wakes
//!   it), which sets the flow back to its previous mark and checks again a minute later; a
//!   flow is not checked again while its check is being written. The misses found are logged
//!   and handed to the notifier by the loop, once written.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::behind::{Behind, Writes};
use super::supervisor::{Cmd, Shared};
use crate::ledger::{Event, EventKind, Ledger, LedgerError, Millis, NewEvent, to_millis};
use crate::schedule::{Deadline, Expect, expect_fingerprint};

/// Looks ahead this far for the next deadline.
const HORIZON_DAYS: i64 = 8;

/// How long after a check that could not be recorded it is made again.
const RETRY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// A mark with the fingerprint of the rules it was made for, as the ledger keeps it.
type Mark = (Option<Millis>, Option<u64>);

/// A write of a flow's mark.
#[derive(Debug, Clone)]
enum MarkWrite {
    /// Where checking resumes (`from`), or none (the flow's `expect:` was taken out).
    Set { flow: String, mark: Option<(Millis, u64)> },
    /// A check at `at` of `deadlines`, made from `from`: the misses and the mark `at`, in
    /// one transaction.
    Check { flow: String, deadlines: Vec<Deadline>, at: DateTime<Utc>, print: u64, from: DateTime<Utc> },
}

impl MarkWrite {
    fn flow(&self) -> &str {
        match self {
            MarkWrite::Set { flow, .. } | MarkWrite::Check { flow, .. } => flow,
        }
    }

    /// The mark it writes.
    fn mark(&self) -> Mark {
        match self {
            MarkWrite::Set { mark, .. } => (mark.map(|m| m.0), mark.map(|m| m.1)),
            MarkWrite::Check { at, print, .. } => (Some(to_millis((*at).into())), Some(*print)),
        }
    }
}

/// What the loop learns of the writes once they are over.
#[derive(Debug)]
enum Outcome {
    /// Recorded, with the `missing` events it raised.
    Checked { flow: String, events: Vec<Event> },
    /// Not recorded: to be made again from `from`.
    CheckFailed { flow: String, at: DateTime<Utc>, print: u64, from: DateTime<Utc>, error: LedgerError },
    /// The mark of a flow without `expect:` is still there: cleared again at the next check.
    ClearFailed { flow: String },
}

/// The marks to write, in order, and what the loop is to learn of them.
struct MarkWrites {
    /// The first one is being written, until its write is over.
    queue: VecDeque<MarkWrite>,
    outcomes: Vec<Outcome>,
    /// Wakes the loop for the outcomes.
    wake: mpsc::UnboundedSender<Cmd>,
}

impl Writes for MarkWrites {
    type Batch = MarkWrite;
    type Out = Result<Vec<Event>, LedgerError>;

    fn take(&mut self, _: &Ledger) -> Option<MarkWrite> {
        self.queue.front().cloned()
    }

    fn write(ledger: &Ledger, w: &MarkWrite) -> Self::Out {
        match w {
            MarkWrite::Set { flow, mark } => {
                let set = ledger.set_expect_mark(flow, *mark, Vec::new());
                match (&set, mark) {
                    (Err(e), Some(_)) => {
                        tracing::error!(flow = %flow, error = %e, "Could not record where expected-file checks start; a restart may miss a deadline.");
                    }
                    (Err(e), None) => {
                        tracing::error!(flow = %flow, error = %e, "Could not forget the expected-file checks of a flow without `expect:`.");
                    }
                    (Ok(_), _) => {}
                }
                set
            }
            // A write that failed before (a full state folder) left the ledger taking nothing
            // until it is opened again: done here too, not only by a run (a flow that only
            // expects files may have none).
            MarkWrite::Check { flow, deadlines, at, print, .. } => ledger
                .recover()
                .and_then(|()| missed(ledger, flow, deadlines))
                .and_then(|events| ledger.set_expect_mark(flow, Some((to_millis((*at).into()), *print)), events)),
        }
    }

    fn done(&mut self, w: MarkWrite, out: Self::Out) {
        self.queue.pop_front();
        let outcome = match (w, out) {
            (MarkWrite::Check { flow, .. }, Ok(events)) => Outcome::Checked { flow, events },
            (MarkWrite::Check { flow, at, print, from, .. }, Err(error)) => Outcome::CheckFailed { flow, at, print, from, error },
            (MarkWrite::Set { flow, mark: None }, Err(_)) => Outcome::ClearFailed { flow },
            (MarkWrite::Set { .. }, _) => return,
        };
        self.outcomes.push(outcome);
        let _ = self.wake.send(Cmd::Wake);
    }
}

/// The flows' marks, written off the loop.
pub(super) struct Marks(Arc<Behind<MarkWrites>>);

impl Marks {
    /// `wake`: the loop's commands, to tell it of a check written.
    pub fn new(ledger: Arc<Ledger>, wake: mpsc::UnboundedSender<Cmd>) -> Marks {
        Marks(Behind::new(ledger, MarkWrites { queue: VecDeque::new(), outcomes: Vec::new(), wake }))
    }

    /// The flow's mark: the last one waiting to be written, else the ledger's.
    fn mark(&self, flow: &str) -> Result<Mark, LedgerError> {
        self.0.read(|m, ledger| match m.queue.iter().rev().find(|w| w.flow() == flow) {
            Some(w) => Ok(w.mark()),
            None => ledger.expect_mark(flow),
        })
    }

    fn write(&self, w: MarkWrite) {
        self.0.change(|m| m.queue.push_back(w));
    }

    /// A check of `flow` is being written.
    fn checking(&self, flow: &str) -> bool {
        self.0.read(|m, _| m.queue.iter().any(|w| matches!(w, MarkWrite::Check { flow: f, .. } if f == flow)))
    }

    fn outcomes(&self) -> Vec<Outcome> {
        self.0.read(|m, _| std::mem::take(&mut m.outcomes))
    }

    /// Waits until every mark so far is written (or failed and logged).
    pub async fn written(&self) {
        self.0.written().await;
    }
}

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
    /// mark is stored at once (off the loop): a deadline that passes while the daemon is down
    /// before it checked any is then still checked at the next start.
    fn from(&mut self, shared: &Arc<Shared>, flow: &str, rules: &[Expect], now: DateTime<Utc>) -> DateTime<Utc> {
        let print = expect_fingerprint(rules);
        let known = match self.checked.get(flow) {
            Some((t, p)) if *p == print => return *t,
            Some(_) => true,
            None => false,
        };
        self.cleared.remove(flow);
        // Changed while served: the stored mark was made for the old rules.
        let stored = if known { Ok((None, None)) } else { shared.marks.mark(flow) };
        let resumed = stored.as_ref().ok().and_then(|(mark, p)| {
            // A mark without a fingerprint was made by an older wharf: resumed, as then.
            mark.filter(|_| p.is_none_or(|p| p == print)).and_then(DateTime::from_timestamp_millis)
        });
        let t = resumed.unwrap_or(now);
        match stored {
            Ok(_) => shared.marks.write(MarkWrite::Set { flow: flow.to_string(), mark: Some((to_millis(t.into()), print)) }),
            // Not over a mark that could not be read: it may still be right.
            Err(e) => {
                tracing::error!(flow = %flow, error = %e, "Could not record where expected-file checks start; a restart may miss a deadline.")
            }
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
        match shared.marks.mark(flow) {
            Ok((None, None)) => {}
            // A write that fails is told back (`Outcome::ClearFailed`): tried again then.
            Ok(_) => shared.marks.write(MarkWrite::Set { flow: flow.to_string(), mark: None }),
            // Tried again at the next check.
            Err(e) => {
                tracing::error!(flow = %flow, error = %e, "Could not forget the expected-file checks of a flow without `expect:`.");
                return;
            }
        }
        self.cleared.insert(flow.to_string());
    }

    /// What the writer did of the checks and clears since the last call.
    fn learn(&mut self, shared: &Arc<Shared>) {
        for outcome in shared.marks.outcomes() {
            match outcome {
                Outcome::Checked { flow, events } => {
                    for e in &events {
                        tracing::warn!(flow = %flow, detail = %e.detail, "Expected file missing.");
                    }
                    if !events.is_empty() {
                        shared.notifier.wake();
                    }
                }
                Outcome::CheckFailed { flow, at, print, from, error } => {
                    // Not done: a deadline missed now would otherwise never be reported.
                    tracing::error!(flow = %flow, error = %error, retry_in_s = RETRY.num_seconds(), "Could not check expected files; checking again.");
                    // Unless its rules changed since (then judged from then on).
                    if self.checked.get(&flow) == Some(&(at, print)) {
                        self.checked.insert(flow.clone(), (from, print));
                        self.again.insert(flow, at + RETRY);
                    }
                }
                Outcome::ClearFailed { flow } => {
                    self.cleared.remove(&flow);
                }
            }
        }
    }

    /// Checks every deadline of every flow that passed by `now`.
    pub fn check(&mut self, shared: &Arc<Shared>, now: DateTime<Utc>) {
        self.learn(shared);
        for flow in shared.registry().flows() {
            if flow.expect.is_empty() {
                self.clear(shared, &flow.name);
                continue;
            }
            let from = self.from(shared, &flow.name, &flow.expect, now);
            // A check being written: the loop is woken once it is.
            if from >= now || self.again.get(&flow.name).is_some_and(|t| *t > now) || shared.marks.checking(&flow.name) {
                continue;
            }
            let deadlines: Vec<Deadline> = flow.expect.iter().flat_map(|e| e.deadlines_between(from, now)).collect();
            if deadlines.is_empty() {
                continue;
            }
            let print = expect_fingerprint(&flow.expect);
            shared.marks.write(MarkWrite::Check { flow: flow.name.clone(), deadlines, at: now, print, from });
            // Done unless the writer says otherwise (`learn`).
            self.checked.insert(flow.name.clone(), (now, print));
            self.again.remove(&flow.name);
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
            detail: format!(
                "no file was delivered by {} (none since {}); ask the partner whether it was sent (`wharf files {flow}` lists what \
                 the flow took last)",
                d.label, d.since_label
            ),
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
        Deadline { due: at(to), window_start: at(from), label: format!("day {}", to / DAY), since_label: format!("day {}", from / DAY) }
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
        // The deadline, the window in the same words, and what to do.
        assert_eq!(
            events[0].detail,
            "no file was delivered by day 96 (none since day 95); ask the partner whether it was sent (`wharf files f` lists what the \
             flow took last)"
        );
    }

    /// The marks are written off the loop, in the order made: while the writes wait (the
    /// ledger's write transaction held, as a run's group commit holds it) the loop goes on
    /// and reads the last mark it made; a check's miss is written with its mark, in one
    /// transaction; the loop is told (and woken) once a check is written, and the last mark
    /// made is the one the ledger keeps.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn marks_are_written_off_the_loop_in_order_a_miss_with_its_mark() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("ledger.redb")).unwrap());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let marks = Marks::new(ledger.clone(), tx);
        let held = crate::serve::behind::HeldWrite::hold(&ledger);
        let at = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        marks.write(MarkWrite::Set { flow: "f".into(), mark: Some((DAY, 7)) });
        marks.write(MarkWrite::Check {
            flow: "f".into(),
            deadlines: vec![deadline(DAY, 3 * DAY)],
            at: at(3 * DAY),
            print: 7,
            from: at(DAY),
        });
        marks.write(MarkWrite::Set { flow: "g".into(), mark: None });
        // Nothing written yet: the loop reads what it made.
        assert_eq!(marks.mark("f").unwrap(), (Some(3 * DAY), Some(7)));
        assert_eq!(marks.mark("g").unwrap(), (None, None));
        assert!(marks.checking("f") && !marks.checking("g"));
        assert_eq!(ledger.expect_mark("f").unwrap(), (None, None), "not written while the transaction is held");
        held.release();
        marks.written().await;
        assert_eq!(ledger.expect_mark("f").unwrap(), (Some(3 * DAY), Some(7)), "the last mark made");
        let missing = ledger.events(Some("f"), 0, 10).unwrap();
        assert_eq!(missing.iter().map(|e| (e.kind, e.at)).collect::<Vec<_>>(), [(EventKind::Missing, 3 * DAY)]);
        assert!(matches!(rx.recv().await, Some(Cmd::Wake)), "the loop is woken for the check");
        let outcomes = marks.outcomes();
        assert!(matches!(&outcomes[..], [Outcome::Checked { flow, events }] if flow == "f" && events == &missing), "{outcomes:?}");
        assert!(!marks.checking("f"));
    }
}
