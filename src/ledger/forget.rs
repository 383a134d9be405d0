//! Forgetting a flow: every record the ledger keeps under one flow name, for a flow that was
//! removed from the flows folder (or renamed) and will never run again, whose records its own
//! history pruning (`prune`) would otherwise never reach.
//!
//! Removed, in this order: runs, their content totals, events, readiness observations,
//! awaited responses (with their request index), content results, file records (with their
//! indexes and content warnings, `store::FileTables`), quarantined
//! files of earlier generations (`quarantined`), delivered
//! identities, the names its listings could never take, and last the flow's counters: its
//! health (alert streaks), pruning marks, `expect:` fingerprint, count of runs skipped
//! (`overlap:`) and when a daemon first served it. In chunks: each call removes at most a
//! given number of records in one write transaction and says whether more is left, so a flow
//! with years of history does not make one transaction of millions of changes; a call after
//! an interrupted one goes on where it stopped.
//!
//! Never touched: the records of any other flow (a flow named `ab` beside `a` included), and
//! the ledger-wide counters (run and event numbering, the notifier's cursor: the events of
//! other flows are sent as before), and the notifier's list of notices held back (opaque here:
//! `wharf forget` drops the flow's from it with [`Ledger::edit_notify_held`]). Whether a flow may be forgotten (it has no flow file any
//! more) is the caller's question; this module knows names only.

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::ops::Bound;

use redb::{ReadableTable, TableDefinition};
use serde::Serialize;

use super::awaits::{AWAIT_REQUESTS, AWAITS};
use super::events::{EVENTS, HEALTH};
use super::prune::{files_key, pruned_key};
use super::quarantined::EARLIER;
use super::store::FileTables;
use super::unsafe_names::UNSAFE_NAMES;
use super::{COUNTERS, DONE, FILE_RESULTS, FILES, Ledger, LedgerError, OBSERVATIONS, RUN_CONTENT, RUNS};

/// How many records of one flow the ledger holds, per kind: what [`Ledger::forget`] removes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FlowRecords {
    pub runs: usize,
    /// Content-step totals of runs.
    pub run_totals: usize,
    pub events: usize,
    /// Readiness observations.
    pub observations: usize,
    /// Awaited responses of round trips.
    pub awaits: usize,
    /// Their index by request.
    pub await_requests: usize,
    /// What the content steps made of files.
    pub content_results: usize,
    /// File records.
    pub files: usize,
    /// Quarantined files of earlier generations (a newer file taken under their name since).
    pub earlier_quarantined: usize,
    /// Delivered identities.
    pub deliveries: usize,
    /// Names in the source folder that could never be taken.
    pub unsafe_names: usize,
    /// The flow's counters: health (alert streaks), pruning marks, `expect:` fingerprint,
    /// count of runs skipped and when a daemon first served it.
    pub marks: usize,
}

impl FlowRecords {
    /// Each kind with its count, in the order they are removed (for printing).
    pub fn kinds(&self) -> [(&'static str, usize); 12] {
        [
            ("runs", self.runs),
            ("run totals", self.run_totals),
            ("events", self.events),
            ("observations", self.observations),
            ("awaited responses", self.awaits),
            ("await index entries", self.await_requests),
            ("content results", self.content_results),
            ("file records", self.files),
            ("earlier quarantined files", self.earlier_quarantined),
            ("delivered identities", self.deliveries),
            ("files never taken", self.unsafe_names),
            ("counters (health, pruning, expected files, skips, first served)", self.marks),
        ]
    }

    pub fn total(&self) -> usize {
        self.kinds().iter().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Both counts, kind by kind.
    pub fn add(&mut self, o: &FlowRecords) {
        self.runs += o.runs;
        self.run_totals += o.run_totals;
        self.events += o.events;
        self.observations += o.observations;
        self.awaits += o.awaits;
        self.await_requests += o.await_requests;
        self.content_results += o.content_results;
        self.files += o.files;
        self.earlier_quarantined += o.earlier_quarantined;
        self.deliveries += o.deliveries;
        self.unsafe_names += o.unsafe_names;
        self.marks += o.marks;
    }
}

/// What one [`Ledger::forget`] call removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forgot {
    pub removed: FlowRecords,
    /// The limit was reached: more is left, for the next call.
    pub more: bool,
}

/// A range of keys, as redb takes it.
pub(super) type Span<K> = (Bound<K>, Bound<K>);

/// Every key of `flow` in a table keyed by (flow, name): exactly those whose first part is
/// `flow` (`next` is the smallest name after it, `flow` + NUL, so `ab` is not `a`'s).
pub(super) fn named<'a>(flow: &'a str, next: &'a str) -> Span<(&'a str, &'a str)> {
    (Bound::Included((flow, "")), Bound::Excluded((next, "")))
}

/// Every key of `flow` in a table keyed by (flow, name, number), as [`named`].
fn named_numbered<'a>(flow: &'a str, next: &'a str) -> Span<(&'a str, &'a str, i64)> {
    (Bound::Included((flow, "", i64::MIN)), Bound::Excluded((next, "", i64::MIN)))
}

/// Every key of `flow` in a table keyed by (flow, number).
fn numbered(flow: &str) -> Span<(&str, u64)> {
    (Bound::Included((flow, 0)), Bound::Included((flow, u64::MAX)))
}

/// The flow's keys of the `counters_v1` table (its pruning marks, its `expect:` fingerprint,
/// its runs skipped, when a daemon first served it).
fn counter_keys(flow: &str) -> [String; 6] {
    use super::events::{expect_rules_key, served_since_key, skipped_at_key, skipped_runs_key};
    [pruned_key(flow), files_key(flow), expect_rules_key(flow), skipped_runs_key(flow), skipped_at_key(flow), served_since_key(flow)]
}

/// Removes up to `budget` entries of `range` from `def`, lowering the budget by as many.
fn drain<'a, K, V, KR>(
    tx: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
    range: Span<KR>,
    budget: &mut usize,
) -> Result<usize, redb::Error>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    KR: Borrow<K::SelfType<'a>> + 'a,
{
    let mut table = tx.open_table(def)?;
    let mut n = 0;
    for item in table.extract_from_if(range, |_, _| true)?.take(*budget) {
        item?;
        n += 1;
    }
    *budget -= n;
    Ok(n)
}

/// `def` in a read transaction; `None` when the ledger does not have it (one an older wharf
/// last opened for writing, and holds still: nothing of the kind is stored there).
fn table<K, V>(tx: &redb::ReadTransaction, def: TableDefinition<K, V>) -> Result<Option<redb::ReadOnlyTable<K, V>>, redb::Error>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
{
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// How many entries of `range` `def` holds (none without the table).
fn count<'a, K, V, KR>(tx: &redb::ReadTransaction, def: TableDefinition<K, V>, range: Span<KR>) -> Result<usize, redb::Error>
where
    K: redb::Key + 'static,
    V: redb::Value + 'static,
    KR: Borrow<K::SelfType<'a>> + 'a,
{
    let Some(table) = table(tx, def)? else { return Ok(0) };
    let mut n = 0;
    for item in table.range(range)? {
        item?;
        n += 1;
    }
    Ok(n)
}

impl Ledger {
    /// How many records of each kind the ledger holds for `flow` (what [`Ledger::forget`]
    /// would remove). Reads every one of them: for a command, not a run. A table the ledger
    /// does not have yet holds none.
    pub fn flow_records(&self, flow: &str) -> Result<FlowRecords, LedgerError> {
        let next = format!("{flow}\0");
        self.read(|tx| {
            let mut marks = 0;
            if let Some(health) = table(tx, HEALTH)? {
                marks += usize::from(health.get(flow)?.is_some());
            }
            if let Some(counters) = table(tx, COUNTERS)? {
                for key in counter_keys(flow) {
                    marks += usize::from(counters.get(key.as_str())?.is_some());
                }
            }
            Ok(FlowRecords {
                runs: count(tx, RUNS, numbered(flow))?,
                run_totals: count(tx, RUN_CONTENT, numbered(flow))?,
                events: count(tx, EVENTS, numbered(flow))?,
                observations: count(tx, OBSERVATIONS, named(flow, &next))?,
                awaits: count(tx, AWAITS, named(flow, &next))?,
                await_requests: count(tx, AWAIT_REQUESTS, named(flow, &next))?,
                content_results: count(tx, FILE_RESULTS, named(flow, &next))?,
                files: count(tx, FILES, named(flow, &next))?,
                earlier_quarantined: count(tx, EARLIER, named_numbered(flow, &next))?,
                deliveries: count(tx, DONE, named(flow, &next))?,
                unsafe_names: count(tx, UNSAFE_NAMES, named(flow, &next))?,
                marks,
            })
        })
    }

    /// Removes up to `limit` records of `flow` in one write transaction (see the module doc;
    /// the flow's counters (health, pruning marks, `expect:` fingerprint, skip count, first served) go with the last chunk, beyond the limit); call
    /// again while [`Forgot::more`]. Lazy writes of the flow not stored yet are stored
    /// first by the same transaction, and so removed with the rest.
    pub fn forget(&self, flow: &str, limit: usize) -> Result<Forgot, LedgerError> {
        let next = format!("{flow}\0");
        self.write(|tx| {
            // At least one: a call must make progress, or a loop on `more` would never end.
            let mut budget = limit.max(1);
            let b = &mut budget;
            let mut r = FlowRecords {
                runs: drain(tx, RUNS, numbered(flow), b)?,
                run_totals: drain(tx, RUN_CONTENT, numbered(flow), b)?,
                events: drain(tx, EVENTS, numbered(flow), b)?,
                observations: drain(tx, OBSERVATIONS, named(flow, &next), b)?,
                awaits: drain(tx, AWAITS, named(flow, &next), b)?,
                await_requests: drain(tx, AWAIT_REQUESTS, named(flow, &next), b)?,
                content_results: drain(tx, FILE_RESULTS, named(flow, &next), b)?,
                // Closed before the next table is drained (it holds that one open).
                files: {
                    let mut files = FileTables::open(tx)?;
                    files.drain(named(flow, &next), b)?
                },
                earlier_quarantined: drain(tx, EARLIER, named_numbered(flow, &next), b)?,
                deliveries: drain(tx, DONE, named(flow, &next), b)?,
                unsafe_names: drain(tx, UNSAFE_NAMES, named(flow, &next), b)?,
                marks: 0,
            };
            if budget == 0 {
                // Whether anything is left is for the next call to find (it may be nothing).
                return Ok(Forgot { removed: r, more: true });
            }
            // Last, once the rest is gone: a flow interrupted half way still shows in the
            // ledger's list of flows, to be forgotten again.
            r.marks += usize::from(tx.open_table(HEALTH)?.remove(flow)?.is_some());
            let mut counters = tx.open_table(COUNTERS)?;
            for key in counter_keys(flow) {
                r.marks += usize::from(counters.remove(key.as_str())?.is_some());
            }
            Ok(Forgot { removed: r, more: false })
        })
    }

    /// The names of the flows with a run in the ledger, sorted. Every flow that ran has one
    /// (pruning keeps a flow's newest run); a round trip's response flow (`NAME.response`)
    /// records its files under its own name but its runs under its flow's. A skip-scan: one
    /// look-up per flow, however many runs each has.
    pub fn flows(&self) -> Result<BTreeSet<String>, LedgerError> {
        self.read(|tx| {
            let runs = tx.open_table(RUNS)?;
            let mut out = BTreeSet::new();
            let mut flow = runs.first()?.map(|(k, _)| k.value().0.to_string());
            while let Some(f) = flow {
                let next = format!("{f}\0");
                flow = runs.range::<(&str, u64)>((next.as_str(), 0)..)?.next().transpose()?.map(|(k, _)| k.value().0.to_string());
                out.insert(f);
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::awaits::{AwaitRecord, AwaitState};
    use crate::ledger::events::{FlowHealth, NewEvent};
    use crate::ledger::prune::{ForgetDelivered, Listed, Prune};
    use crate::ledger::records::{DoneRecord, FileRecord, FileResult, FileState, Observation, RunContent, RunStatus};
    use crate::ledger::{Durability, EventKind};

    /// Gives `flow` one record of every kind the ledger keeps under a flow's name.
    fn fill(l: &Ledger, flow: &str) {
        let mut run = l.begin_run(flow, 1).unwrap();
        run.status = RunStatus::Ok;
        run.finished = Some(2);
        l.finish_run_with(&run, |_| (FlowHealth { failing_streak: 1, ..Default::default() }, Vec::new())).unwrap();
        l.put_run_content(flow, run.id, &RunContent::default()).unwrap();
        let ev = NewEvent { flow: flow.into(), at: 1, kind: EventKind::Failed, subject: String::new(), detail: "x".into(), run: None };
        l.record_events(&[ev]).unwrap();
        l.put_observations(flow, &[("in/seen.csv".into(), Observation { size: 1, mtime: None, since: 1 })]).unwrap();
        // A second event, `not_taken`, with it.
        let names = [("/in/a\\nb.csv".to_string(), "a control character in the name".to_string())];
        l.note_unsafe_names(&crate::ledger::Noted { flow, run: run.id, at: 1, names: &names, unlisted: &[] }).unwrap();
        let a = AwaitRecord {
            flow: flow.into(),
            request: "out/r.csv".into(),
            request_identity: "id:r".into(),
            expected: "ack/r.csv".into(),
            state: AwaitState::Waiting,
            ..Default::default()
        };
        l.register_await(&a).unwrap();
        // An earlier file under the name, quarantined, replaced by the one delivered.
        let bad = FileRecord { path: "in/a.csv".into(), identity: "id:a0".into(), state: FileState::Quarantined, ..Default::default() };
        let q = crate::ledger::QuarantineRecord { copy: Some("bad/a.csv".into()), ..Default::default() };
        l.put_file_and_result(flow, &bad, &FileResult { quarantine: Some(q), ..Default::default() }).unwrap();
        let rec = FileRecord { path: "in/a.csv".into(), identity: "id:a".into(), state: FileState::Done, ..Default::default() };
        l.put_file_and_result(flow, &rec, &FileResult::default()).unwrap();
        l.complete(flow, &rec, &DoneRecord { path: rec.path.clone(), run: run.id, at: 1, targets: vec![] }).unwrap();
        let listed = Listed::default();
        let p = Prune { flow, cutoff: 0, listed: Some(&listed), forget_delivered: ForgetDelivered::Never, limit: 10 };
        l.prune(&p, 5).unwrap();
        l.served_since(flow, 1).unwrap();
    }

    const ONE_OF_EACH: FlowRecords = FlowRecords {
        runs: 1,
        run_totals: 1,
        events: 2,
        observations: 1,
        awaits: 1,
        await_requests: 1,
        content_results: 1,
        files: 1,
        earlier_quarantined: 1,
        deliveries: 1,
        unsafe_names: 1,
        marks: 4,
    };

    #[test]
    fn every_kind_of_record_of_the_flow_goes_and_no_other_flows() {
        let l = Ledger::in_memory().unwrap();
        // `a` is a prefix of `ab` and `a.response`, and `a-` sorts between: all stay.
        for f in ["a", "ab", "a-", "a.response", "0"] {
            fill(&l, f);
        }
        assert_eq!(l.flow_records("a").unwrap(), ONE_OF_EACH);
        let before: Vec<FlowRecords> = ["ab", "a-", "a.response", "0"].iter().map(|f| l.flow_records(f).unwrap()).collect();
        let (events, cursor_before) = (l.last_event_seq().unwrap(), l.notify_cursor().unwrap());
        l.set_notify_cursor(2).unwrap();

        let out = l.forget("a", 1000).unwrap();
        assert_eq!(out, Forgot { removed: ONE_OF_EACH, more: false });
        assert!(l.flow_records("a").unwrap().is_empty());
        assert!(l.runs(Some("a"), 10).unwrap().is_empty() && l.done("a", "id:a").unwrap().is_none());
        assert_eq!((l.health("a").unwrap(), l.last_pruned("a").unwrap()), (FlowHealth::default(), None));
        let after: Vec<FlowRecords> = ["ab", "a-", "a.response", "0"].iter().map(|f| l.flow_records(f).unwrap()).collect();
        assert_eq!(after, before, "the other flows keep every record");
        assert_eq!(before[0], ONE_OF_EACH);
        // The numbering and the notifier's cursor go on: nothing of another flow is sent
        // twice or skipped, no run number is reused.
        assert_eq!((l.last_event_seq().unwrap(), cursor_before), (events, None));
        assert_eq!(l.notify_cursor().unwrap(), Some(2));
        assert_eq!(l.begin_run("a", 9).unwrap().id, 6);
        assert_eq!(l.forget("nothing", 10).unwrap(), Forgot::default());
    }

    /// The counters' line names every counter, when a daemon first served the flow among
    /// them: a flow a daemon served and never ran has only that, and `wharf forget` listed it
    /// as "health, pruning and skip counts".
    #[test]
    fn the_counters_line_names_when_a_daemon_first_served_the_flow() {
        let l = Ledger::in_memory().unwrap();
        l.served_since("a", 1).unwrap();
        let r = l.flow_records("a").unwrap();
        assert_eq!(r, FlowRecords { marks: 1, ..Default::default() });
        let shown: Vec<(&str, usize)> = r.kinds().into_iter().filter(|(_, n)| *n > 0).collect();
        assert_eq!(shown, [("counters (health, pruning, expected files, skips, first served)", 1)]);
    }

    #[test]
    fn a_limit_removes_in_chunks_and_the_next_call_goes_on() {
        let l = Ledger::in_memory().unwrap();
        fill(&l, "a");
        fill(&l, "b");
        // Records written lazily and not stored yet are the flow's too.
        let lazy = FileRecord { path: "in/lazy.csv".into(), state: FileState::Staging, ..Default::default() };
        l.put_file_with("a", &lazy, Durability::Lazy).unwrap();
        let mut total = FlowRecords::default();
        let mut calls = 0;
        loop {
            let out = l.forget("a", 5).unwrap();
            assert!(out.removed.total() - out.removed.marks <= 5, "{out:?}");
            total.add(&out.removed);
            calls += 1;
            if !out.more {
                break;
            }
        }
        assert_eq!(total, FlowRecords { files: 2, ..ONE_OF_EACH });
        assert_eq!(calls, 3, "12 records in chunks of 5, the marks with the last");
        assert!(l.flow_records("a").unwrap().is_empty() && l.file("a", "in/lazy.csv").unwrap().is_none());
        assert_eq!(l.flow_records("b").unwrap(), ONE_OF_EACH);
    }

    /// A ledger an older wharf still holds (its `wharf serve`, not stopped yet after an
    /// upgrade) lacks the tables added since: the dry run counts what it has, read-only. It
    /// failed: "Table 'unsafe_names_v1' does not exist".
    #[test]
    fn a_ledger_without_the_newer_tables_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        let run = crate::ledger::RunRecord { id: 1, flow: "a".into(), ..Default::default() };
        tx.open_table(RUNS).unwrap().insert(("a", 1), &run).unwrap();
        tx.commit().unwrap();
        drop(db);
        let r = Ledger::open_read_only(&path).unwrap();
        assert!(r.missing_tables().unwrap().contains(&"unsafe_names_v1"));
        assert_eq!(r.flow_records("a").unwrap(), FlowRecords { runs: 1, ..Default::default() });
        assert!(r.flow_records("b").unwrap().is_empty());
    }

    #[test]
    fn the_flows_with_runs_are_listed_once_each() {
        let l = Ledger::in_memory().unwrap();
        assert!(l.flows().unwrap().is_empty());
        for f in ["b", "a", "ab", "a", "b", "a-"] {
            l.begin_run(f, 1).unwrap();
        }
        l.put_file("files-only", &FileRecord { path: "x".into(), ..Default::default() }).unwrap();
        assert_eq!(l.flows().unwrap().into_iter().collect::<Vec<_>>(), ["a", "a-", "ab", "b"]);
        l.forget("a", 100).unwrap();
        assert_eq!(l.flows().unwrap().into_iter().collect::<Vec<_>>(), ["a-", "ab", "b"]);
    }
}
