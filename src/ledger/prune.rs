//! History retention: which of a flow's records the ledger forgets once they are older than
//! the flow's `history`, so that a daemon polling every minute for years keeps a ledger of
//! bounded size (every poll is a run record; every file a record or three).
//!
//! Forgotten, when older than the cutoff:
//! - finished runs (and their content totals), but never the flow's newest run nor its
//!   newest successful one (`wharf status` shows both);
//! - events the notifier has handled (or that no daemon will send: none ever ran); those it
//!   has not are kept [`UNSENT_KEEP_MS`] at least, then go too: a ledger served once and
//!   then only run from cron (its cursor stuck where the daemon stopped) would otherwise keep
//!   every event for ever. What went unsent is counted (`Ledger::forgotten_unsent`), so the
//!   notifier says it skips them when it resumes;
//! - readiness observations of paths the last listing no longer had;
//! - the records of files finished (`done`, `failed`, `duplicate`, `vanished`) whose path the
//!   last listing no longer had, with their content results;
//! - with them, the delivered identity of a file its record says wharf moved or deleted: a
//!   file re-sent after `history` is taken as a new one. One its record says was kept (a
//!   flow that keeps its sources, `after.success: keep`, or did when it was delivered) keeps
//!   its delivered identity: a listing that comes back empty once (a partner's share not
//!   mounted for a minute) must not make the files in it new. (Records an older wharf wrote
//!   do not say; the flow's `after.success` decides for them.)
//!
//!   The deliveries of earlier versions of a name whose record now holds a later one
//!   (`orders.csv` every day) go too, under the same rule.
//! - awaited responses (round trips) answered, refused or expired before the cutoff.
//!
//! Kept whatever their age: quarantined files, those of earlier generations under a name a
//! newer file has been taken under since included (`wharf quarantine` releases them), files
//! still in flight, responses still awaited, the awaits of requests not finished yet (a
//! request retried registers its await again), and every record of another flow.

use std::collections::HashSet;

use redb::ReadableTable;

use super::awaits::{AWAIT_REQUESTS, AWAITS, AwaitState};
use super::events::{EVENTS, NOTIFY_CURSOR, UNSENT_FORGOTTEN, UNSENT_FORGOTTEN_UPTO};
use super::records::{FileRecord, FileState, RunStatus, SourceFate};
use super::store::FileTables;
use super::{COUNTERS, DONE, FILES, Ledger, LedgerError, Millis, OBSERVATIONS, RUN_CONTENT, RUNS, flow_range};

/// How long an event the notifier has not sent is kept at least, whatever the flow's
/// `history` (a week: a daemon stopped over a long weekend sends what happened meanwhile).
pub const UNSENT_KEEP_MS: Millis = 7 * 86_400_000;

/// What to forget of one flow.
#[derive(Debug)]
pub struct Prune<'a> {
    pub flow: &'a str,
    /// Records last changed before this (ms since the epoch) may go.
    pub cutoff: Millis,
    /// What the flow's source listing that this pruning follows had (`None`: no listing,
    /// and then no file record or observation is forgotten).
    pub listed: Option<&'a Listed>,
    /// Which delivered identities may go with their file records.
    pub forget_delivered: ForgetDelivered,
    /// At most this many records of each kind in one call (one write transaction); the rest
    /// waits for the next call.
    pub limit: usize,
}

/// What a listing of the flow's source had: its files, and the subfolders it could not list
/// (whatever is under them may still be there).
#[derive(Debug, Default, Clone)]
pub struct Listed {
    pub paths: HashSet<String>,
    /// Folders (as record paths are written: `in/sub`) that could not be listed.
    pub unlisted: Vec<String>,
}

impl Listed {
    /// A listing of exactly `paths`.
    pub fn of(paths: impl IntoIterator<Item = String>) -> Listed {
        Listed { paths: paths.into_iter().collect(), unlisted: Vec::new() }
    }

    /// Nothing listed but what may be under `folders`, the subfolders a listing could not
    /// read (written as record paths are: `in/sub`).
    pub fn unlisted(folders: impl IntoIterator<Item = String>) -> Listed {
        Listed { paths: HashSet::new(), unlisted: folders.into_iter().collect() }
    }

    /// Whether the file at `path` may still be in the folder: listed, or under a folder that
    /// could not be listed.
    pub fn may_have(&self, path: &str) -> bool {
        self.paths.contains(path) || self.unlisted.iter().any(|f| path.strip_prefix(f.as_str()).is_some_and(|rest| rest.starts_with('/')))
    }
}

/// What the flow does with a delivered source (`after.success`), for what its records do not
/// say: which earlier versions' deliveries go (a name whose record holds a later version),
/// and which deliveries go with records an older wharf wrote (their `source_fate` is
/// `unknown`). A record that says is judged by what it says (see [`source_removed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgetDelivered {
    /// None (`keep`: the files are still in the folder, whether listed or not).
    Never,
    /// Those of the files their record says were moved away (`move_to`).
    Moved,
    /// All (`delete`).
    All,
}

/// What a [`Ledger::prune`] forgot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub runs: usize,
    pub events: usize,
    pub observations: usize,
    pub files: usize,
    pub awaits: usize,
    /// Delivered identities of earlier versions of a file name (see [`Ledger::prune`]).
    pub deliveries: usize,
    /// A limit was reached: more is left to forget.
    pub more: bool,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.runs + self.events + self.observations + self.files + self.awaits + self.deliveries == 0
    }
}

/// The `counters_v1` key of when `flow` was last pruned completely.
pub(super) fn pruned_key(flow: &str) -> String {
    format!("pruned_at/{flow}")
}

/// The `counters_v1` key of the cutoff `flow`'s file records were last pruned to.
pub(super) fn files_key(flow: &str) -> String {
    format!("files_forgotten_before/{flow}")
}

/// Whether `rec`'s source is no longer in the folder by wharf's doing (moved or deleted), so
/// that its delivered identity may go with it. What the record says decides, not what the
/// flow does now: a file delivered while the flow kept its sources may still be in the folder
/// after a switch to `delete`, unlisted once. A record an older wharf wrote does not say
/// (`unknown`): judged by the flow, as it was then.
fn source_removed(rec: &FileRecord, flow: ForgetDelivered) -> bool {
    match rec.source_fate {
        SourceFate::Moved | SourceFate::Deleted => true,
        SourceFate::Kept => false,
        SourceFate::Unknown => match flow {
            ForgetDelivered::Never => false,
            ForgetDelivered::Moved => rec.disposed_to.is_some(),
            ForgetDelivered::All => true,
        },
    }
}

/// A finished file whose record may be forgotten (in flight and quarantined ones may not).
fn finished(state: FileState) -> bool {
    matches!(state, FileState::Done | FileState::Failed | FileState::Duplicate | FileState::Vanished)
}

impl Ledger {
    /// When `flow`'s history was last pruned to the end (`None`: never).
    pub fn last_pruned(&self, flow: &str) -> Result<Option<Millis>, LedgerError> {
        // Counters hold u64: a time is stored as its non-negative ms.
        self.read(|tx| Ok(tx.open_table(COUNTERS)?.get(pruned_key(flow).as_str())?.map(|v| v.value() as Millis)))
    }

    /// Before when `flow`'s records of finished files may have been forgotten (`None`: none
    /// ever was): what the ledger says of the flow's deliveries before it is incomplete.
    pub fn files_forgotten_before(&self, flow: &str) -> Result<Option<Millis>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(COUNTERS)?.get(files_key(flow).as_str())?.map(|v| v.value() as Millis)))
    }

    /// Forgets what `p` allows, in one write transaction, and records when (unless a limit
    /// was reached: the next call goes on).
    pub fn prune(&self, p: &Prune, now: Millis) -> Result<Pruned, LedgerError> {
        let in_flight: HashSet<String> = self.pending().keys().filter(|(f, _)| f == p.flow).map(|(_, path)| path.clone()).collect();
        self.write(|tx| {
            let mut out = Pruned::default();
            prune_runs(tx, p, &mut out)?;
            prune_events(tx, p, now, &mut out)?;
            prune_awaits(tx, p, &mut out)?;
            if let Some(listed) = p.listed {
                prune_observations(tx, p, listed, &mut out)?;
                prune_files(tx, p, listed, &in_flight, &mut out)?;
                // The last cutoff, not the latest: a clock that jumped ahead for a while must
                // not silence `expect:` until it gets there.
                tx.open_table(COUNTERS)?.insert(files_key(p.flow).as_str(), p.cutoff.max(0) as u64)?;
            }
            if !out.more {
                tx.open_table(COUNTERS)?.insert(pruned_key(p.flow).as_str(), now.max(0) as u64)?;
            }
            Ok(out)
        })
    }
}

/// Adds `item` to `old` unless `old` holds `p.limit` already; then says so (`out.more`) and
/// `false`: the caller stops, the rest waits for the next pruning.
fn take<T>(old: &mut Vec<T>, item: T, p: &Prune, out: &mut Pruned) -> bool {
    if old.len() == p.limit {
        out.more = true;
        return false;
    }
    old.push(item);
    true
}

fn prune_runs(tx: &redb::WriteTransaction, p: &Prune, out: &mut Pruned) -> Result<(), redb::Error> {
    let mut runs = tx.open_table(RUNS)?;
    let mut old = Vec::new();
    {
        let all = (p.flow, 0)..=(p.flow, u64::MAX);
        // The newest run, and the newest successful one, stay.
        let mut keep = HashSet::new();
        for item in runs.range(all.clone())?.rev() {
            let run = item?.1.value();
            let ok = run.status == RunStatus::Ok;
            if keep.is_empty() || ok {
                keep.insert(run.id);
            }
            if ok {
                break;
            }
        }
        // Run numbers grow with time: the old ones come first.
        for item in runs.range(all)? {
            let run = item?.1.value();
            if run.finished.unwrap_or(run.started) >= p.cutoff {
                break;
            }
            if run.status != RunStatus::Running && !keep.contains(&run.id) && !take(&mut old, run.id, p, out) {
                break;
            }
        }
    }
    let mut content = tx.open_table(RUN_CONTENT)?;
    for id in &old {
        runs.remove((p.flow, *id))?;
        content.remove((p.flow, *id))?;
    }
    out.runs = old.len();
    Ok(())
}

fn prune_events(tx: &redb::WriteTransaction, p: &Prune, now: Millis, out: &mut Pruned) -> Result<(), redb::Error> {
    // With no cursor no daemon ever ran, and one starting later does not replay what came
    // before it: every event is as good as handled.
    let handled = tx.open_table(COUNTERS)?.get(NOTIFY_CURSOR)?.map(|v| v.value()).unwrap_or(u64::MAX);
    let unsent_cutoff = p.cutoff.min(now.saturating_sub(UNSENT_KEEP_MS));
    let mut events = tx.open_table(EVENTS)?;
    let mut old = Vec::new();
    // Sequence numbers grow with time: the old ones come first, and once one is unsent, so
    // are all after it.
    for item in events.range((p.flow, 0)..=(p.flow, u64::MAX))? {
        let e = item?.1.value();
        let cutoff = if e.seq > handled { unsent_cutoff } else { p.cutoff };
        if e.at >= cutoff || !take(&mut old, e.seq, p, out) {
            break;
        }
    }
    for seq in &old {
        events.remove((p.flow, *seq))?;
    }
    out.events = old.len();
    let unsent: Vec<u64> = old.into_iter().filter(|seq| *seq > handled).collect();
    if let Some(&last) = unsent.last() {
        // Counted from the last time the notifier passed what was forgotten unsent before.
        let mut counters = tx.open_table(COUNTERS)?;
        let upto = counters.get(UNSENT_FORGOTTEN_UPTO)?.map(|v| v.value());
        let count = match upto {
            Some(upto) if upto > handled => counters.get(UNSENT_FORGOTTEN)?.map_or(0, |v| v.value()),
            _ => 0,
        };
        counters.insert(UNSENT_FORGOTTEN, count + unsent.len() as u64)?;
        counters.insert(UNSENT_FORGOTTEN_UPTO, upto.unwrap_or(0).max(last))?;
    }
    Ok(())
}

fn prune_awaits(tx: &redb::WriteTransaction, p: &Prune, out: &mut Pruned) -> Result<(), redb::Error> {
    let mut awaits = tx.open_table(AWAITS)?;
    let files = tx.open_table(FILES)?;
    let mut old = Vec::new();
    let response_flow = crate::config::flow::response_flow_name(p.flow);
    for item in awaits.range(flow_range(p.flow))? {
        let a = item?.1.value();
        // A request not finished yet (its disposal failing run after run) registers its await
        // again at each attempt: forgotten, it would be awaited anew, and be overdue.
        let request = files.get((p.flow, a.request.as_str()))?.map(|r| r.value());
        if request.is_some_and(|r| {
            r.identity == a.request_identity && !matches!(r.state, FileState::Done | FileState::Duplicate | FileState::Vanished)
        }) {
            continue;
        }
        // Nor while its response is (every sink has it, its disposal on the server refused run
        // after run): the runs that try it again, and hold back requests awaiting its name,
        // go by its await.
        let response = files.get((response_flow.as_str(), a.expected.as_str()))?.map(|r| r.value());
        if response.is_some_and(|r| matches!(r.state, FileState::Delivered | FileState::Disposing)) {
            continue;
        }
        let closed_at = match a.state {
            AwaitState::Waiting | AwaitState::Overdue => None,
            AwaitState::Expired => a.expire_at,
            AwaitState::Answered | AwaitState::Late | AwaitState::Rejected => a.answered_at,
        };
        if closed_at.is_some_and(|at| at < p.cutoff) && !take(&mut old, a, p, out) {
            break;
        }
    }
    let mut requests = tx.open_table(AWAIT_REQUESTS)?;
    for a in &old {
        awaits.remove((p.flow, a.expected.as_str()))?;
        // The request's index entry, unless a later request of the same identity took it over.
        let ours = requests.get((p.flow, a.request_identity.as_str()))?.is_some_and(|e| e.value() == a.expected);
        if ours {
            requests.remove((p.flow, a.request_identity.as_str()))?;
        }
    }
    out.awaits = old.len();
    Ok(())
}

fn prune_observations(tx: &redb::WriteTransaction, p: &Prune, listed: &Listed, out: &mut Pruned) -> Result<(), redb::Error> {
    let mut obs = tx.open_table(OBSERVATIONS)?;
    let mut old = Vec::new();
    for item in obs.range(flow_range(p.flow))? {
        let (k, v) = item?;
        let path = k.value().1;
        if v.value().since < p.cutoff && !listed.may_have(path) && !take(&mut old, path.to_string(), p, out) {
            break;
        }
    }
    for path in &old {
        obs.remove((p.flow, path.as_str()))?;
    }
    out.observations = old.len();
    Ok(())
}

fn prune_files(
    tx: &redb::WriteTransaction,
    p: &Prune,
    listed: &Listed,
    in_flight: &HashSet<String>,
    out: &mut Pruned,
) -> Result<(), redb::Error> {
    let mut files = FileTables::open(tx)?;
    let mut old = Vec::new();
    for item in files.files.range(flow_range(p.flow))? {
        let rec = item?.1.value();
        if finished(rec.state)
            && rec.updated < p.cutoff
            && !listed.may_have(&rec.path)
            && !in_flight.contains(&rec.path)
            && !take(&mut old, rec, p, out)
        {
            break;
        }
    }
    let mut done = tx.open_table(DONE)?;
    if p.forget_delivered != ForgetDelivered::Never {
        // Earlier versions under a name whose record now holds a later, finished one
        // (`orders.csv` every day): their deliveries have no record of their own to go with,
        // and what is at that name is not them. Looked up before the records go.
        let mut earlier = Vec::new();
        for item in done.range(flow_range(p.flow))? {
            let (k, v) = item?;
            let (identity, d) = (k.value().1, v.value());
            if d.at >= p.cutoff || listed.may_have(&d.path) || in_flight.contains(&d.path) {
                continue;
            }
            let later =
                files.files.get((p.flow, d.path.as_str()))?.map(|r| r.value()).is_some_and(|r| finished(r.state) && r.identity != identity);
            if later && !take(&mut earlier, identity.to_string(), p, out) {
                break;
            }
        }
        for identity in &earlier {
            done.remove((p.flow, identity.as_str()))?;
        }
        out.deliveries = earlier.len();
    }
    for rec in &old {
        files.remove(p.flow, &rec.path)?;
        // The delivered identity goes with the file that delivered it (not with a duplicate
        // of it, nor when a later delivery of the identity is still recent).
        let delivered_here = source_removed(rec, p.forget_delivered)
            && done.get((p.flow, rec.identity.as_str()))?.map(|d| d.value()).is_some_and(|d| d.path == rec.path && d.at < p.cutoff);
        if delivered_here {
            done.remove((p.flow, rec.identity.as_str()))?;
            out.deliveries += 1;
        }
    }
    out.files = old.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::events::{EventKind, NewEvent};
    use crate::ledger::records::{DoneRecord, FileRecord, Observation, RunContent};

    const DAY: Millis = 86_400_000;

    fn run(l: &Ledger, flow: &str, at: Millis, status: RunStatus) -> u64 {
        let mut r = l.begin_run(flow, at).unwrap();
        r.status = status;
        r.finished = Some(at + 1);
        l.finish_run(&r).unwrap();
        l.put_run_content(flow, r.id, &RunContent::default()).unwrap();
        r.id
    }

    /// A record that does not say what became of its source (as an older wharf wrote it): the
    /// flow's `forget_delivered` decides for it.
    fn file(l: &Ledger, flow: &str, path: &str, state: FileState, at: Millis) {
        file_with(l, flow, path, state, at, SourceFate::Unknown);
    }

    fn file_with(l: &Ledger, flow: &str, path: &str, state: FileState, at: Millis, source_fate: SourceFate) {
        let rec = FileRecord { path: path.into(), identity: format!("id:{path}"), state, updated: at, source_fate, ..Default::default() };
        if state == FileState::Done {
            l.complete(flow, &rec, &DoneRecord { path: path.into(), run: 1, at, targets: vec![] }).unwrap();
        } else {
            l.put_file(flow, &rec).unwrap();
        }
    }

    fn prune(l: &Ledger, listed: &[&str], forget_delivered: ForgetDelivered, limit: usize) -> Pruned {
        let listed = Listed::of(listed.iter().map(|s| s.to_string()));
        let p = Prune { flow: "f", cutoff: 100 * DAY, listed: Some(&listed), forget_delivered, limit };
        l.prune(&p, 190 * DAY).unwrap()
    }

    #[test]
    fn old_runs_go_but_the_newest_and_the_newest_successful_one_stay() {
        let l = Ledger::in_memory().unwrap();
        let ok = run(&l, "f", DAY, RunStatus::Ok);
        let newest_ok = run(&l, "f", 2 * DAY, RunStatus::Ok);
        let failed = run(&l, "f", 3 * DAY, RunStatus::Failed);
        let other = run(&l, "g", DAY, RunStatus::Ok);
        let p = prune(&l, &[], ForgetDelivered::Never, 100);
        assert_eq!((p.runs, p.more), (1, false));
        let left: Vec<u64> = l.runs(Some("f"), 10).unwrap().iter().map(|r| r.id).collect();
        assert_eq!(left, [failed, newest_ok]);
        assert_eq!(l.last_runs("f").unwrap().last_ok.map(|r| r.id), Some(newest_ok));
        assert!(l.run_content("f", ok).unwrap().is_none(), "its content totals go with it");
        assert!(l.run_content("f", newest_ok).unwrap().is_some());
        assert_eq!(l.runs(Some("g"), 10).unwrap()[0].id, other, "another flow's runs stay");
        assert_eq!(l.last_pruned("f").unwrap(), Some(190 * DAY));
    }

    #[test]
    fn recent_runs_stay_and_a_limit_leaves_the_rest_for_the_next_call() {
        let l = Ledger::in_memory().unwrap();
        for d in 1..=5 {
            run(&l, "f", d * DAY, RunStatus::Ok);
        }
        run(&l, "f", 150 * DAY, RunStatus::Ok);
        let p = prune(&l, &[], ForgetDelivered::Never, 2);
        assert_eq!((p.runs, p.more), (2, true));
        assert_eq!(l.last_pruned("f").unwrap(), None, "not done yet");
        assert_eq!(prune(&l, &[], ForgetDelivered::Never, 2), Pruned { runs: 2, more: true, ..Pruned::default() });
        assert_eq!(prune(&l, &[], ForgetDelivered::Never, 2), Pruned { runs: 1, ..Pruned::default() });
        assert_eq!(l.runs(Some("f"), 10).unwrap().len(), 1, "the newest run, also the newest ok");
        assert!(l.run_content("f", 1).unwrap().is_none());
    }

    #[test]
    fn only_events_the_notifier_handled_go_before_a_week_past_history() {
        let l = Ledger::in_memory().unwrap();
        let ev = |at| NewEvent { flow: "f".into(), at, kind: EventKind::Failed, subject: String::new(), detail: "x".into(), run: None };
        l.record_events(&[ev(DAY), ev(97 * DAY), ev(98 * DAY), ev(99 * DAY), ev(150 * DAY)]).unwrap();
        l.set_notify_cursor(2).unwrap();
        let p = Prune { flow: "f", cutoff: 100 * DAY, listed: None, forget_delivered: ForgetDelivered::Never, limit: 100 };
        // Past `history`: the sent ones go; the unsent ones stay a week.
        assert_eq!(l.prune(&p, 104 * DAY).unwrap().events, 2);
        assert_eq!(l.events(Some("f"), 0, 10).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(l.forgotten_unsent(2).unwrap(), None, "nothing unsent forgotten yet");
        l.set_notify_cursor(5).unwrap();
        assert_eq!(l.prune(&p, 104 * DAY).unwrap().events, 2, "a recent one stays");
    }

    /// A ledger served once, then only run from cron: the notifier's cursor stays where the
    /// daemon stopped, and the events after it (a `failed` a minute) went on piling up for
    /// ever. Past `history` and a week they go, counted for the notifier to skip.
    #[test]
    fn unsent_events_go_a_week_past_history_and_are_counted() {
        let l = Ledger::in_memory().unwrap();
        let ev = |at| NewEvent { flow: "f".into(), at, kind: EventKind::Failed, subject: String::new(), detail: "x".into(), run: None };
        l.record_events(&[ev(DAY), ev(2 * DAY), ev(3 * DAY), ev(150 * DAY)]).unwrap();
        l.set_notify_cursor(1).unwrap();
        let p = |limit| Prune { flow: "f", cutoff: 100 * DAY, listed: None, forget_delivered: ForgetDelivered::Never, limit };
        assert_eq!(l.prune(&p(1), 190 * DAY).unwrap().events, 1, "the sent one");
        assert_eq!(l.forgotten_unsent(1).unwrap(), None);
        assert_eq!(l.prune(&p(100), 190 * DAY).unwrap().events, 2);
        assert_eq!(l.events(Some("f"), 0, 10).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [4]);
        assert_eq!(l.forgotten_unsent(1).unwrap(), Some((2, 3)), "two, up to event 3");
        assert_eq!(l.forgotten_unsent(3).unwrap(), None, "a notifier past them has nothing to skip");
        // Once the notifier passed them, the next ones are counted afresh.
        l.set_notify_cursor(4).unwrap();
        l.record_events(&[ev(160 * DAY)]).unwrap();
        let later = Prune { cutoff: 300 * DAY, ..p(100) };
        assert_eq!(l.prune(&later, 400 * DAY).unwrap().events, 2);
        assert_eq!(l.forgotten_unsent(4).unwrap(), Some((1, 5)));
    }

    #[test]
    fn finished_files_no_longer_listed_go_and_their_delivery_only_when_the_flow_disposes() {
        let l = Ledger::in_memory().unwrap();
        file(&l, "f", "in/gone.csv", FileState::Done, DAY);
        file(&l, "f", "in/kept.csv", FileState::Done, DAY);
        file(&l, "f", "in/failed.csv", FileState::Failed, DAY);
        file(&l, "f", "in/quarantined.csv", FileState::Quarantined, DAY);
        file(&l, "f", "in/staging.csv", FileState::Staging, DAY);
        file(&l, "f", "in/recent.csv", FileState::Done, 150 * DAY);
        l.put_observations("f", &[("in/seen.csv".into(), Observation { size: 1, mtime: None, since: DAY })]).unwrap();
        let p = prune(&l, &["in/kept.csv"], ForgetDelivered::Never, 100);
        assert_eq!((p.files, p.observations), (2, 1));
        let left: Vec<String> = l.files("f").unwrap().into_iter().map(|r| r.path).collect();
        assert_eq!(left, ["in/kept.csv", "in/quarantined.csv", "in/recent.csv", "in/staging.csv"]);
        assert!(l.done("f", "id:in/gone.csv").unwrap().is_some(), "a flow keeping its sources keeps every delivery");
        assert!(l.observation("f", "in/seen.csv").unwrap().is_none());

        file(&l, "f", "in/gone.csv", FileState::Done, DAY);
        assert_eq!(prune(&l, &["in/kept.csv"], ForgetDelivered::All, 100).files, 1);
        assert!(l.done("f", "id:in/gone.csv").unwrap().is_none(), "moved or deleted: re-sent later, it is new");
        assert!(l.done("f", "id:in/kept.csv").unwrap().is_some(), "still listed");

        // A flow moving its sources forgets the deliveries of the files it moved, not of those
        // delivered while it kept them (still in the folder, unlisted once).
        file(&l, "f", "in/kept-then.csv", FileState::Done, DAY);
        let moved = FileRecord { disposed_to: Some("in/processed/moved.csv".into()), ..l.file("f", "in/kept-then.csv").unwrap().unwrap() };
        let moved = FileRecord { path: "in/moved.csv".into(), identity: "id:in/moved.csv".into(), ..moved };
        l.complete("f", &moved, &DoneRecord { path: moved.path.clone(), run: 1, at: DAY, targets: vec![] }).unwrap();
        assert_eq!(prune(&l, &["in/kept.csv"], ForgetDelivered::Moved, 100).files, 2);
        assert!(l.done("f", "id:in/kept-then.csv").unwrap().is_some());
        assert!(l.done("f", "id:in/moved.csv").unwrap().is_none());
    }

    #[test]
    fn what_a_record_says_of_its_source_decides_not_what_the_flow_does_now() {
        let l = Ledger::in_memory().unwrap();
        // Delivered while the flow kept its sources, then the flow switched to `delete` (or
        // `move_to`): a file it kept may still be in the folder, missed by one listing.
        file_with(&l, "f", "in/kept.csv", FileState::Done, DAY, SourceFate::Kept);
        file_with(&l, "f", "in/deleted.csv", FileState::Done, DAY, SourceFate::Deleted);
        file_with(&l, "f", "in/moved.csv", FileState::Done, DAY, SourceFate::Moved);
        assert_eq!(prune(&l, &[], ForgetDelivered::All, 100).files, 3, "the records go");
        assert!(l.done("f", "id:in/kept.csv").unwrap().is_some(), "its delivery stays: the file may still be there");
        assert!(l.done("f", "id:in/deleted.csv").unwrap().is_none());
        assert!(l.done("f", "id:in/moved.csv").unwrap().is_none());
        // And the other way: deleted while the flow deleted, forgotten after a switch to `keep`.
        file_with(&l, "f", "in/deleted-then.csv", FileState::Done, DAY, SourceFate::Deleted);
        prune(&l, &[], ForgetDelivered::Never, 100);
        assert!(l.done("f", "id:in/deleted-then.csv").unwrap().is_none());
    }

    #[test]
    fn the_delivery_of_an_earlier_version_under_the_same_name_goes_too() {
        // `orders.csv` every day: the file record holds the last version only; the delivered
        // identities of the earlier ones are forgotten as theirs would be.
        let l = Ledger::in_memory().unwrap();
        let moved = |version: &str, at| {
            let rec = FileRecord {
                path: "in/orders.csv".into(),
                identity: format!("id:{version}"),
                state: FileState::Done,
                updated: at,
                disposed_to: Some(format!("in/processed/orders-{version}.csv")),
                source_fate: SourceFate::Moved,
                ..Default::default()
            };
            l.complete("f", &rec, &DoneRecord { path: rec.path.clone(), run: 1, at, targets: vec![] }).unwrap();
        };
        moved("1", DAY);
        moved("2", 2 * DAY);
        moved("3", 150 * DAY);
        let p = prune(&l, &[], ForgetDelivered::Moved, 100);
        assert_eq!((p.files, p.more), (0, false), "the record is recent");
        assert!(l.done("f", "id:1").unwrap().is_none() && l.done("f", "id:2").unwrap().is_none());
        assert!(l.done("f", "id:3").unwrap().is_some());
        // Not for a flow keeping its sources, nor while a version of that name is listed.
        moved("4", DAY);
        moved("5", 150 * DAY);
        prune(&l, &[], ForgetDelivered::Never, 100);
        assert!(l.done("f", "id:4").unwrap().is_some());
        prune(&l, &["in/orders.csv"], ForgetDelivered::All, 100);
        assert!(l.done("f", "id:4").unwrap().is_some());
        assert_eq!(prune(&l, &[], ForgetDelivered::All, 1), Pruned { deliveries: 1, ..Pruned::default() });
        assert!(l.done("f", "id:4").unwrap().is_none());
    }

    #[test]
    fn how_far_back_files_were_forgotten_follows_the_clock_back() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(l.files_forgotten_before("f").unwrap(), None);
        let listed = Listed::default();
        let p = |cutoff| Prune { flow: "f", cutoff, listed: Some(&listed), forget_delivered: ForgetDelivered::Never, limit: 10 };
        // A clock a year ahead for a while, then right again: `expect:` judges again at once.
        l.prune(&p(400 * DAY), 490 * DAY).unwrap();
        l.prune(&p(100 * DAY), 190 * DAY).unwrap();
        assert_eq!(l.files_forgotten_before("f").unwrap(), Some(100 * DAY));
    }

    #[test]
    fn closed_awaits_go_open_ones_stay() {
        use crate::ledger::awaits::{AwaitRecord, AwaitState};
        let l = Ledger::in_memory().unwrap();
        let a = |n: &str, state, answered_at, expire_at| AwaitRecord {
            flow: "f".into(),
            request: format!("out/{n}"),
            request_identity: format!("id:{n}"),
            expected: format!("ack/{n}"),
            state,
            answered_at,
            expire_at,
            ..Default::default()
        };
        l.register_await(&a("answered", AwaitState::Answered, Some(DAY), None)).unwrap();
        l.register_await(&a("expired", AwaitState::Expired, None, Some(DAY))).unwrap();
        l.register_await(&a("recent", AwaitState::Late, Some(150 * DAY), None)).unwrap();
        l.register_await(&a("waiting", AwaitState::Overdue, None, Some(DAY))).unwrap();
        assert_eq!(prune(&l, &[], ForgetDelivered::Never, 100).awaits, 2);
        let left: Vec<String> = l.awaits(Some("f")).unwrap().into_iter().map(|a| a.expected).collect();
        assert_eq!(left, ["ack/recent", "ack/waiting"]);
        // Not while its request is still going (delivered, its disposal failing run after run).
        l.register_await(&a("going", AwaitState::Answered, Some(DAY), None)).unwrap();
        let g = FileRecord { path: "out/going".into(), identity: "id:going".into(), state: FileState::Failed, ..Default::default() };
        l.put_file("f", &g).unwrap();
        // Nor while its response is (every sink has it, its disposal refused run after run).
        l.register_await(&a("taking", AwaitState::Answered, Some(DAY), None)).unwrap();
        let t = FileRecord { path: "ack/taking".into(), state: FileState::Disposing, ..Default::default() };
        l.put_file("f.response", &t).unwrap();
        assert_eq!(prune(&l, &[], ForgetDelivered::Never, 100).awaits, 0);
        assert!(l.awaited("f", "ack/taking").unwrap().is_some());
        assert_eq!(l.register_await(&a("going", AwaitState::Waiting, None, None)).unwrap(), crate::ledger::awaits::Registered::Existing);
        // The request may be registered again (a new await), as a new file would be.
        assert_eq!(l.register_await(&a("answered", AwaitState::Waiting, None, None)).unwrap(), crate::ledger::awaits::Registered::New);
    }

    #[test]
    fn nothing_under_a_folder_that_could_not_be_listed_is_forgotten() {
        let l = Ledger::in_memory().unwrap();
        file(&l, "f", "in/sub/a.csv", FileState::Done, DAY);
        file(&l, "f", "in/subway.csv", FileState::Done, DAY);
        let listed = Listed { paths: HashSet::new(), unlisted: vec!["in/sub".into()] };
        assert!(listed.may_have("in/sub/a.csv") && listed.may_have("in/sub/x/y.csv"));
        assert!(!listed.may_have("in/subway.csv") && !listed.may_have("in/sub"));
        let p = Prune { flow: "f", cutoff: 100 * DAY, listed: Some(&listed), forget_delivered: ForgetDelivered::All, limit: 10 };
        assert_eq!(l.prune(&p, 190 * DAY).unwrap().files, 1);
        assert!(l.file("f", "in/sub/a.csv").unwrap().is_some() && l.done("f", "id:in/sub/a.csv").unwrap().is_some());
    }
}
