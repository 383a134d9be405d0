//! `wharf plan`: what a run would do with each file now, and why — without doing it.
//!
//! Read-only by construction: it lists the source, and only when a file would be delivered
//! connects the sinks to look (`stat`) at its targets (and the quarantine location: for a
//! file a check step refuses from the listing, to name its copy as the run does,
//! `quarantine::copy_name`; for a file a crashed run left `quarantining`, to name the copy
//! the run confirms or writes, `quarantine::resumed_copy`, and when its source is gone, to
//! read its copy (and its staged copy, given the staging folder): the same judgement as the
//! run's, `quarantine::left_aside`; for a round trip with awaits open, to list the response
//! folder, `awaits::foresee`); it reads the ledger (observations,
//! delivered identities, files in flight) and never writes it, so a plan neither counts as a
//! readiness poll nor claims a file. The decisions come from the same functions a run uses
//! (`discover`, `ready::assess`, `identity::key`, `lifecycle::Settled`, the sinks' names and
//! `transfer::choose_target`, the trigger's name and `transfer::trigger_room`, the rejects
//! file's name, `cap::left` for the files `source.max_files` leaves for a later run,
//! `disposition::foresee` with `lifecycle::recorded_move` for what becomes of each source: a
//! file delivered now, one delivered before and found again, one a crashed run left), so the
//! plan cannot drift from the run.
//!
//! What a plan cannot know without the content is said, not guessed: a flow with content
//! steps may still quarantine a file, a `content` identity needs the file's hash, and an
//! export command (`source.command`) is not run.
//!
//! The last `wharf probe` of each endpoint (a JSON file in the state folder, only read) is
//! judged again against the flow as it is now, and what matters is shown with its age.

use std::path::Path;
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::disposition::Fate;
use super::error::FileError;
use super::{
    awaits, cap, discover, disposition, endpoints, identity, left_failing, left_gone, left_unlisted, lifecycle, quarantine, ready,
    shared_targets,
};
use crate::config::Flow;
use crate::config::flow::{Disposition, EndpointSpec};
use crate::endpoint::{DynEndpoint, EndpointError, RemotePath};
use crate::ledger::{FileRecord, FileState, Ledger, LedgerError, Snapshot, to_millis};
use crate::probe::{self, Finding, Severity};

mod targets;

pub(in crate::engine) use targets::{chosen_shown, unconfirmed_shown};
use targets::{look_at_targets, named, shown};

/// What a run would do with one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Not complete yet: why.
    Wait { why: String },
    /// Delivered before (same identity): left alone, then disposed of like a delivered file.
    /// `then`: what becomes of the source (none for `after.success: keep`).
    AlreadyDone {
        why: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        then: Option<String>,
    },
    /// Left alone by a run for what the ledger says of this very version: quarantined
    /// before (a corrected file sent again is taken). Also a file a crashed run left before
    /// delivering any of it, whose source is gone: recorded vanished.
    Skip { why: String },
    /// Left in flight by an earlier run: resumed from its state. `writes`: what the resumed
    /// run still writes that the plan looked at (a trigger owed for a delivery confirmed
    /// before the crash). `then`: what becomes of the source once delivered (none for
    /// `after.success: keep`, or a file being quarantined), the `move_to` target recorded
    /// before the crash if there is one. `state`: the state it was left in, written as the
    /// ledger names it (`staging`, `quarantining`). `copy`: for a file being quarantined, the
    /// copy the run puts it aside as (`None` when the quarantine location was not looked at).
    Resume {
        #[serde(serialize_with = "state_name")]
        state: FileState,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        writes: Vec<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        copy: Option<PlannedCopy>,
    },
    /// Refused by a `check` step on what the listing shows (size, name): quarantined. Also a
    /// file a crashed run left `quarantining` whose source is gone and whose copy is there, or
    /// whose staged copy is whole: recorded quarantined, or put aside from its staged copy
    /// (`why`: the run's report line).
    Quarantine { why: String },
    /// Taken, but a sink refuses it (its target exists, `if_exists: fail`): the file fails.
    /// Also a file a crashed run left `quarantining` whose source is gone and whose copy
    /// cannot be confirmed, nor made from its staged copy (`why`: the run's error; its staged
    /// copy looked at only when the plan is given the staging folder).
    Fail { why: String },
    /// Taken: delivered to every sink as named, then the source disposed of.
    Deliver { targets: Vec<String>, then: String },
}

/// The quarantine copy a resumed run puts a file left `quarantining` aside as, named as
/// `quarantine::put_aside` names it (`quarantine::resumed_copy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCopy {
    /// `endpoint:/path`.
    pub to: String,
    /// Made before the crash, and whole: confirmed, not made again (else it is written).
    pub made: bool,
}

/// One listed file and its action.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedFile {
    pub path: String,
    pub size: u64,
    #[serde(flatten)]
    pub action: Action,
    /// For a round trip, the response this file awaits once the run sends it (where, due and
    /// given up when): a request it delivers, one it resumes before the request sink confirmed
    /// it, one it holds back and sends after its look for responses ([`awaits_of`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub awaits: Option<awaits::PlannedAwait>,
}

impl PlannedFile {
    fn new(path: String, size: u64, action: Action) -> Self {
        PlannedFile { path, size, action, awaits: None }
    }
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub flow: String,
    pub files: Vec<PlannedFile>,
    /// What the plan could not check (content steps, command sources, content identity).
    pub caveats: Vec<String>,
    /// Round trips: what the run's look for responses, at its end, would do with each open
    /// await (none for a flow without `response`, or with no await open).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<awaits::PlannedResponse>,
    /// What the last probes of the flow's endpoints found that matters (see [`add_probes`]).
    pub probes: Vec<ProbeNote>,
    /// Set when the source endpoint is a server that was never probed.
    pub probe_hint: Option<String>,
}

/// A stored probe's warnings and errors for this flow.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeNote {
    pub endpoint: String,
    pub target: String,
    #[serde(with = "crate::timestamp::utc")]
    pub probed_at: DateTime<Utc>,
    /// `3 days ago`.
    pub age: String,
    pub findings: Vec<Finding>,
}

/// A plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The run report's words, with its hint (a server that may be down, credentials).
    #[error("flow {flow}: {source}{}", super::hint(source))]
    Endpoint {
        flow: String,
        #[source]
        source: EndpointError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Plans a run of `flow` at `now`. `ledger` is `None` when nothing has run yet;
/// `staging_dir` is the runs' staging folder (`STATE/staging`; `None`: not looked at), where
/// what the run does may depend on a staged copy: a file a crashed run left `quarantining` is
/// put aside from it, one left before its delivery was done, its source gone since, is
/// finished from it, else it vanished (`left_gone`; not looked at: shown resumed).
pub async fn plan(flow: &Flow, ledger: Option<&Ledger>, now: SystemTime, staging_dir: Option<&Path>) -> Result<Plan, PlanError> {
    let err = |source| PlanError::Endpoint { flow: flow.name.clone(), source };
    let eps = endpoints::open_all(flow, &[flow.source.endpoint.as_str()]).await.map_err(err)?;
    let Some(source) = eps.get(&flow.source.endpoint) else {
        return Ok(Plan {
            flow: flow.name.clone(),
            files: vec![],
            caveats: vec!["the source endpoint is not defined".into()],
            responses: vec![],
            probes: vec![],
            probe_hint: None,
        });
    };
    let skip = [&flow.after_success, &flow.after_failure];
    let discover::Discovered { candidates, skipped, unlisted } =
        discover::discover(&flow.name, &**source, &flow.source, flow.steps.as_ref(), &skip, now).await.map_err(err)?;
    let now_ms = to_millis(now);
    // The run number the next run would get, for `{{run}}` in names (another run may take it).
    // From the ledger's numbering, not its newest run: that run's flow may have been forgotten.
    let next_run = match ledger {
        Some(l) => l.next_run_id()?,
        None => 1,
    };
    // One read transaction for every look-up of the listing.
    let snapshot = ledger.map(Ledger::snapshot).transpose()?;
    // The run before, to tell a file it held back already (logged once).
    let earlier = match ledger {
        Some(l) if super::looks_back(flow) => awaits::earlier_run(l, &flow.name, next_run)?,
        _ => None,
    };
    let mut seen = Vec::new();
    let mut files = Vec::new();
    // Whether the run may start the file, as far as its readiness and what holds files back
    // say (`source.max_files` counts those).
    let mut open = Vec::new();
    let mut prevs = Vec::with_capacity(candidates.len());
    let mut verdicts = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let prev = match &snapshot {
            Some(l) => l.observation(&flow.name, c.entry.path.as_str())?,
            None => None,
        };
        verdicts.push(c.assess(&flow.source.ready, prev.as_ref(), now_ms).0);
        prevs.push(prev);
    }
    ready::unless_being_written(&**source, candidates.iter().map(|c| &c.entry.path), &mut verdicts).await;
    for ((c, prev), verdict) in candidates.iter().zip(prevs).zip(verdicts) {
        seen.push(awaits::seen_ready(flow, c, prev.as_ref(), earlier));
        open.push(verdict == ready::Readiness::Ready);
        let action = match verdict {
            ready::Readiness::NotReady(why) => Action::Wait { why },
            ready::Readiness::Ready => decide(flow, snapshot.as_ref(), c, next_run, now)?,
        };
        files.push(PlannedFile::new(c.entry.path.to_string(), c.entry.size, action));
    }
    // Round trips: a request whose response name another open request awaits waits its turn.
    // Judged, as the run judges it, for every ready file whatever the ledger says of it (a
    // resumed request not sent yet, a file whose identity was delivered under another path):
    // a file the run holds back never reaches its turn, and one it lets go may hold back a
    // later one. Before this run's own duplicates: a file held back is delivered by no one.
    // Those held back by an await the run's look for responses may close (see below).
    let mut after_look = Vec::new();
    if flow.response.is_some() {
        let (awaits, undisposed) = match ledger {
            Some(l) => {
                let awaits = l.awaits(Some(&flow.name))?;
                let undisposed = awaits::undisposed(l, flow, &awaits)?;
                (awaits, undisposed)
            }
            None => Default::default(),
        };
        let mut requests = Vec::new();
        for (i, c) in candidates.iter().enumerate() {
            if !matches!(files[i].action, Action::Wait { .. }) {
                let prev = snapshot.as_ref().map(|l| l.file(&flow.name, c.entry.path.as_str())).transpose()?.flatten();
                requests.push((i, c, prev));
            }
        }
        let requests_seen = requests.iter().map(|(i, c, p)| (&c.entry, c.rel.as_str(), p.as_ref(), seen[*i]));
        let held = awaits::held_back(flow, awaits, &undisposed, requests_seen, next_run, now);
        for ((i, c, _), held) in requests.iter().zip(held) {
            if let Some(held) = held {
                held.log(flow, &c.entry.path);
                if let Some(awaited) = held.awaited {
                    after_look.push((*i, awaited, held.undisposed));
                }
                files[*i].action = Action::Wait { why: held.why };
                open[*i] = false;
            }
        }
    }
    // A name a sink gives several files of the run goes to one of them per run.
    let contenders = candidates.iter().zip(&files).zip(&seen).map(|((c, f), seen)| {
        let resumed = match f.action {
            Action::Deliver { .. } => false,
            Action::Resume { .. } => true,
            _ => return None,
        };
        Some(shared_targets::Contender { entry: &c.entry, rel: &c.rel, resumed, seen: seen.is_some() })
    });
    let held = shared_targets::held_back(flow, contenders, next_run, now);
    for ((f, open), why) in files.iter_mut().zip(&mut open).zip(held) {
        if let Some(why) = why {
            f.action = Action::Wait { why };
            *open = false;
        }
    }
    // Then the run leaves what is over its `source.max_files` for the next run, before any
    // file starts (so before a file finds itself the duplicate of another of the run).
    let mut places = cap::Places::new(flow.source.max_files);
    // Files a crashed run left in flight whose source is no longer listed (shown below) take
    // the places first, as resumed work (`left_unlisted`); those they do not reach wait.
    let mut unlisted_later = std::collections::BTreeSet::new();
    if let (Some(_), Some(l)) = (places.max(), ledger) {
        let listed: std::collections::BTreeSet<&str> = candidates.iter().map(|c| c.entry.path.as_str()).collect();
        let left = left_unlisted::taken_up(flow, &**source, l, &listed, &unlisted).await?;
        let later = places.take(left.iter().map(|l| Some((cap::Turn::Resumed, &l.entry))));
        unlisted_later.extend(left.into_iter().zip(later).filter(|(_, later)| *later).map(|(l, _)| l.rec.path));
    }
    if let Some(max) = places.max() {
        let turns = turns(flow, snapshot.as_ref(), &candidates, |i| open[i])?;
        for (f, left) in files.iter_mut().zip(places.take(turns)) {
            if left {
                f.action = Action::Wait { why: cap::Later::why(max) };
            }
        }
    }
    // A file of the same identity as one taken before it in this run (an identity without the
    // path) is that file's duplicate, as the run finds when its turn comes. After the shared
    // names, as the run judges them before any file starts: both files of one identity want
    // the name, the oldest takes it, and the other waits (it is no one's duplicate yet).
    // A resumed file records its delivery at its turn as a new one does (unless it is being
    // quarantined), so it is the first of its identity too; but it is no one's duplicate: the
    // run takes up what a crashed run started without looking for its identity again.
    if !flow.source.identity.path {
        // The first file of each identity, by the ledger's key of it (as the run's report
        // names it from the delivery it records: `lifecycle::same_identity_as`).
        let mut first: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
        for (c, f) in candidates.iter().zip(files.iter_mut()) {
            let (delivers, new) = match &f.action {
                Action::Deliver { .. } => (true, true),
                Action::Resume { state, .. } => (*state != FileState::Quarantining, false),
                _ => (false, false),
            };
            let Some(key) = identity::key(flow.source.identity, &c.entry).filter(|_| delivers) else {
                continue;
            };
            match first.get(&key) {
                Some(p) if new => {
                    let why = format!("same identity as {}, delivered first by this run", lifecycle::source_shown(p));
                    f.action = Action::AlreadyDone { why, then: disposal(flow) };
                }
                Some(_) => {}
                None => drop(first.insert(key, c.entry.path.as_str())),
            }
        }
    }
    let mut caveats = caveats(flow);
    caveats.extend(skipped.iter().map(|s| format!("{} is never taken ({})", s.shown_path(), s.explained())));
    caveats.extend(discover::unlisted_line(&unlisted));
    look_at_targets(flow, &candidates, &mut files, snapshot.as_ref(), next_run, now, &mut caveats).await?;
    // The sources the run disposes of, in the order it does: the listing's files it delivers,
    // finds delivered before, or resumes, each at its turn; and those it quarantines or fails
    // (`after.failure`), whose names in a `move_to` folder shared with `after.success` are
    // taken as well.
    let mut disposals = Vec::new();
    for (i, (c, f)) in candidates.iter().zip(&files).enumerate() {
        let (recorded, failed) = match f.action {
            Action::Deliver { .. } | Action::AlreadyDone { .. } => (None, false),
            // A file being quarantined is disposed of per `after.failure` once put aside.
            Action::Resume { state, .. } => {
                let rec = snapshot.as_ref().map(|l| l.file(&flow.name, c.entry.path.as_str())).transpose()?.flatten();
                (rec.as_ref().and_then(lifecycle::recorded_move), state == FileState::Quarantining)
            }
            // Failed again, a file killed before its source was moved chooses its name afresh:
            // the one recorded then is dropped when the file is taken again (`lifecycle::process`).
            Action::Quarantine { .. } | Action::Fail { .. } => (None, true),
            _ => continue,
        };
        disposals.push(Disposal { file: i, source: c.entry.path.clone(), size: c.entry.size, recorded, listed: true, failed });
    }
    let mut opened = None;
    name_quarantine_copies(flow, ledger, &candidates, &mut files, &mut opened).await?;
    // Then what a crashed run left delivered or being quarantined, its source no longer listed
    // (it was being moved or deleted), or left before its delivery was done, its source gone
    // since: the next run finishes it, as `run_once` does after the listing's files.
    if let Some(l) = ledger {
        let listed: std::collections::BTreeSet<&str> = candidates.iter().map(|c| c.entry.path.as_str()).collect();
        for r in l.in_flight_files(&flow.name)? {
            if listed.contains(r.path.as_str()) {
                continue;
            }
            let path = lifecycle::source_shown(&r.path);
            if let Some(max) = places.max().filter(|_| unlisted_later.contains(&r.path)) {
                files.push(PlannedFile::new(path, r.size, Action::Wait { why: cap::Later::why(max) }));
                continue;
            }
            // What is left is resumed, as a file left in flight that is listed.
            match r.state {
                FileState::Delivered | FileState::Disposing => {}
                FileState::Quarantining => {
                    if let Some(action) = left_aside(flow, &**source, &mut opened, l, &r, staging_dir).await? {
                        files.push(PlannedFile::new(path, r.size, action));
                    }
                    continue;
                }
                // Failed for good, its source moved before the failure was recorded: recorded
                // failed, as `left_failing::finish` does it.
                _ if disposition::failing_move(&r).is_some() => {
                    let Ok(source_path) = RemotePath::parse(&r.path) else { continue };
                    let why = match left_failing::judge(flow, &**source, &r, &source_path).await {
                        Ok(None) => continue,
                        Ok(Some((why, _))) => why,
                        Err(FileError::Ledger(e)) => return Err(e.into()),
                        Err(e) => left_failing::unjudged(&e),
                    };
                    files.push(PlannedFile::new(path, r.size, Action::Fail { why }));
                    continue;
                }
                // Left before its delivery was done, its source gone since, as
                // `left_gone::finish` does it.
                _ => match left_gone::judge(flow, &**source, l, &r, &unlisted, staging_dir).await? {
                    None => continue,
                    Some(left_gone::Judged::Resume) => {}
                    Some(left_gone::Judged::Vanish(why)) => {
                        files.push(PlannedFile::new(path, r.size, Action::Skip { why }));
                        continue;
                    }
                    Some(left_gone::Judged::Fail(why) | left_gone::Judged::Unjudged(why)) => {
                        files.push(PlannedFile::new(path, r.size, Action::Fail { why }));
                        continue;
                    }
                },
            }
            if let Ok(source) = RemotePath::parse(&r.path) {
                let recorded = lifecycle::recorded_move(&r);
                disposals.push(Disposal { file: files.len(), source, size: r.size, recorded, listed: false, failed: false });
            }
            // Not listed: a file delivered to no sink yet, finished from its staged copy.
            let awaits = RemotePath::parse(&r.path).ok().and_then(|p| {
                let rel = flow_rel(flow, &p);
                awaits_of(flow, &listed_as(p, r.size), &rel, Some(&r), next_run, now)
            });
            files.push(PlannedFile { awaits, ..PlannedFile::new(path, r.size, resume(flow, &r)) });
        }
    }
    look_at_disposals(flow, (&**source, &candidates), &disposals, &mut files, now).await;
    // Round trips: then the run looks for the responses of the awaits open before it (those of
    // the requests it sends are not open yet to a plan: it sends nothing).
    let responses = match ledger {
        Some(l) => {
            let (responses, caveat) = awaits::foresee(flow, l, next_run, now).await?;
            caveats.extend(caveat);
            responses
        }
        None => Vec::new(),
    };
    // A request held back by an await that look closes goes after it, in the same run
    // (`awaits::send_after_look`).
    let mut after = std::collections::BTreeSet::new();
    for (i, awaited, undisposed) in after_look {
        let closes = responses.iter().any(|r| r.expected == awaited && !r.becomes.is_open());
        if let (true, Action::Wait { why }) = (closes, &mut files[i].action) {
            after.insert(i);
            why.push_str(if undisposed {
                " — the run's look for responses tries again to dispose of it (see responses), and if that succeeds sends this request after it, in the same run, unless another request or file takes its names first"
            } else {
                " — the run's look for responses closes that await (see responses), and sends this request after it, in the same run, unless another request or file takes its names first"
            });
        }
    }
    // They take what is left of the run's places under `source.max_files`.
    if let Some(max) = places.max() {
        let turns = turns(flow, snapshot.as_ref(), &candidates, |i| after.contains(&i))?;
        for (i, left) in places.take(turns).into_iter().enumerate() {
            if left {
                files[i].action = Action::Wait { why: cap::Later::why(max) };
                after.remove(&i);
            }
        }
    }
    // Round trips: under each request the run sends, the response it then awaits.
    if flow.response.is_some() {
        for (i, (c, f)) in candidates.iter().zip(files.iter_mut()).enumerate() {
            let resumed = match f.action {
                Action::Deliver { .. } => None,
                Action::Resume { .. } => snapshot.as_ref().map(|l| l.file(&flow.name, c.entry.path.as_str())).transpose()?.flatten(),
                Action::Wait { .. } if after.contains(&i) => None,
                _ => continue,
            };
            f.awaits = awaits_of(flow, &c.entry, &c.rel, resumed.as_ref(), next_run, now);
        }
    }
    Ok(Plan { flow: flow.name.clone(), files, caveats, responses, probes: vec![], probe_hint: None })
}

/// Where each of `candidates` the run may start (`starts`, by index) stands for the run's
/// places under `source.max_files` ([`lifecycle::Known::turn`]); `None` for the others.
fn turns<'c>(
    flow: &Flow,
    snapshot: Option<&Snapshot>,
    candidates: &'c [discover::Candidate],
    starts: impl Fn(usize) -> bool,
) -> Result<Vec<Option<(cap::Turn, &'c crate::endpoint::Entry)>>, LedgerError> {
    let mut turns = Vec::with_capacity(candidates.len());
    for (i, c) in candidates.iter().enumerate() {
        let known = match (snapshot, starts(i)) {
            (_, false) => None,
            (Some(l), true) => Some(lifecycle::Known::read(l, flow, &c.entry)?),
            (None, true) => Some(lifecycle::Known::anew()),
        };
        turns.push(known.and_then(|k| k.turn(flow, &c.entry)).map(|t| (t, &c.entry)));
    }
    Ok(turns)
}

/// What the request `entry` (at `rel` under the source folder) awaits once the run numbered
/// `run` sends it, for its line: `resumed`, the record of a run that stopped before the
/// request sink confirmed it (none once it did: it awaits its response already, shown with the
/// plan's responses; nor for a file being quarantined, which is not sent).
fn awaits_of(
    flow: &Flow,
    entry: &crate::endpoint::Entry,
    rel: &str,
    resumed: Option<&FileRecord>,
    run: u64,
    now: SystemTime,
) -> Option<awaits::PlannedAwait> {
    if resumed.is_some_and(|r| r.state == FileState::Quarantining) {
        return None;
    }
    awaits::planned(flow, entry, rel, resumed, run, now)
}

/// The listing's entry of a file no longer listed, from what the ledger knows of it.
fn listed_as(path: RemotePath, size: u64) -> crate::endpoint::Entry {
    crate::endpoint::Entry { path, kind: crate::endpoint::EntryKind::File, size, mtime: None }
}

/// `path` relative to the flow's source folder, as discovery gives it (`sub/a.csv`).
fn flow_rel(flow: &Flow, path: &RemotePath) -> String {
    path.strip_prefix(&flow.source.path).unwrap_or_else(|| path.name()).to_string()
}

/// What the run does with a file a crashed run left `quarantining`, its source no longer
/// listed, as `quarantine::finish_left_aside` does it (from `quarantine::left_aside`, the
/// quarantine endpoint opened once, on the first such file): recorded quarantined when its
/// copy is there, or put aside from its staged copy (in `staging_dir`) when that is whole,
/// else a failure; `None` while the source is still at its path.
async fn left_aside(
    flow: &Flow,
    source: &dyn crate::endpoint::Endpoint,
    opened: &mut Opened,
    ledger: &Ledger,
    rec: &FileRecord,
    staging_dir: Option<&Path>,
) -> Result<Option<Action>, LedgerError> {
    let Ok(path) = RemotePath::parse(&rec.path) else { return Ok(None) };
    let qr = ledger.file_result(&flow.name, &rec.path)?.and_then(|r| r.quarantine);
    let staged = staging_dir.map(|d| super::stage::staging_path(d, &flow.name, &path));
    let judged = match quarantine_endpoint(flow, opened).await {
        Err(e) => return Ok(Some(Action::Fail { why: quarantine::left_aside_unjudged(&e) })),
        Ok(ep) => quarantine::left_aside(flow, source, ep.as_deref(), rec, &path, qr.as_ref(), staged.as_deref()).await,
    };
    Ok(match judged {
        Ok(None) => None,
        Ok(Some(quarantine::LeftAside::Confirmed { detail, .. })) => Some(Action::Quarantine { why: detail }),
        Ok(Some(quarantine::LeftAside::FromStaged { copy, reason, fate, .. })) => {
            let endpoint = flow.quarantine.as_ref().map_or("", |q| q.endpoint.as_str());
            Some(Action::Quarantine { why: quarantine::from_staged(endpoint, &copy, &reason, &fate) })
        }
        Ok(Some(quarantine::LeftAside::Unconfirmed(u))) => Some(Action::Fail { why: u.failure() }),
        Err(FileError::Ledger(e)) => return Err(e),
        Err(e) => Some(Action::Fail { why: quarantine::left_aside_unjudged(&e) }),
    })
}

/// The flow's quarantine endpoint (`None` without a quarantine), opened on the first call
/// and kept in `opened`: the plan opens it once, and only when a file is quarantined.
async fn quarantine_endpoint(flow: &Flow, opened: &mut Opened) -> Result<Option<DynEndpoint>, String> {
    if let Some(ep) = opened {
        return ep.clone();
    }
    let ep = match flow.quarantine.as_ref() {
        Some(q) => {
            endpoints::open_all(flow, &[q.endpoint.as_str()]).await.map(|eps| eps.get(&q.endpoint).cloned()).map_err(|e| e.to_string())
        }
        None => Ok(None),
    };
    *opened = Some(ep.clone());
    ep
}

/// The quarantine endpoint, once the plan opened it (or failed to).
type Opened = Option<Result<Option<DynEndpoint>, String>>;

/// Names the copy each file the run quarantines makes, in the run's order, each passing over
/// the names those before it take (the first [`targets::LOOKS_MAX`]): a file refused from the
/// listing, as `quarantine::put_aside` chooses it (`quarantine::copy_name`): `to
/// ftp:/rejected/a.csv_` where it said the folder alone; a file a crashed run left
/// `quarantining`, the copy recorded for it, confirmed or written, or the one chosen instead
/// (`quarantine::resumed_copy`, as the run). The folder stays when the quarantine location
/// cannot be looked at.
async fn name_quarantine_copies(
    flow: &Flow,
    ledger: Option<&Ledger>,
    candidates: &[discover::Candidate],
    files: &mut [PlannedFile],
    opened: &mut Opened,
) -> Result<(), LedgerError> {
    let Some(q) = flow.quarantine.as_ref() else { return Ok(()) };
    let folder = quarantine_to(flow);
    let mut taken = std::collections::HashSet::new();
    let refused = candidates
        .iter()
        .zip(files.iter_mut())
        .filter(|(_, f)| matches!(f.action, Action::Quarantine { .. } | Action::Resume { state: FileState::Quarantining, .. }));
    for (c, f) in refused.take(targets::LOOKS_MAX) {
        let Ok(Some(ep)) = quarantine_endpoint(flow, opened).await else { return Ok(()) };
        match &mut f.action {
            Action::Quarantine { why } => {
                let Ok(copy) = quarantine::copy_name(&*ep, &q.path, &c.entry.path, |p| taken.contains(p)).await else { continue };
                *why = why.replacen(&folder, &format!(" to {}:{copy}", q.endpoint), 1);
                taken.insert(copy);
            }
            Action::Resume { copy: planned, .. } => {
                let (Some(l), path) = (ledger, c.entry.path.as_str()) else { continue };
                let Some(rec) = l.file(&flow.name, path)? else { continue };
                let qr = l.file_result(&flow.name, path)?.and_then(|r| r.quarantine);
                // As `put_aside`: a copy recorded on another endpoint is not looked for.
                let recorded = qr.and_then(|r| r.copy.filter(|_| r.endpoint == q.endpoint)).and_then(|c| RemotePath::parse(&c).ok());
                let expect = rec.sha256.as_deref().map_or(super::transfer::Expect::Size, super::transfer::Expect::Sha256);
                let named =
                    quarantine::resumed_copy(&*ep, &q.path, &c.entry.path, recorded.as_ref(), rec.size, expect, |p| taken.contains(p))
                        .await;
                let Ok((copy, made)) = named else { continue };
                *planned = Some(PlannedCopy { to: format!("{}:{copy}", q.endpoint), made });
                taken.insert(copy);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A source the run disposes of per `after.success` (or `after.failure`).
struct Disposal {
    /// Its line in the plan.
    file: usize,
    source: RemotePath,
    size: u64,
    /// The `move_to` target a crashed run recorded for it (`lifecycle::recorded_move`).
    recorded: Option<RemotePath>,
    /// In this listing (else left by a crashed run, and looked for).
    listed: bool,
    /// Quarantined or failed: disposed of per `after.failure`, its fate not shown.
    failed: bool,
}

/// What becomes of each source the run disposes of (`disposals`, in the order the run does;
/// the first [`targets::LOOKS_MAX`]), as the run does it (`disposition::foresee`, which only
/// stats): for `move_to`, the first free name in the folder, passing over those earlier
/// files of the run take (and their companions: done file, checksum, row count, moved with
/// them), or the target a crashed run recorded; for a source no longer listed, whether it is
/// there at all. A listed source's companions are where `listed` (the listing's candidates)
/// shows them, as the run finds them (`discover::locate`).
async fn look_at_disposals(
    flow: &Flow,
    (source, listed): (&dyn crate::endpoint::Endpoint, &[discover::Candidate]),
    disposals: &[Disposal],
    files: &mut [PlannedFile],
    now: SystemTime,
) {
    let mut taken = std::collections::HashSet::new();
    for d in disposals.iter().take(targets::LOOKS_MAX) {
        let disp = if d.failed { &flow.after_failure } else { &flow.after_success };
        // Only a move takes names; `after.failure: delete` may keep the source (see `failure`).
        if *disp == Disposition::Keep || (d.failed && !matches!(disp, Disposition::MoveTo(_))) {
            continue;
        }
        let there = d.listed.then_some(true);
        let fate = disposition::foresee(source, &d.source, disp, d.recorded.as_ref(), there, |p| taken.contains(p)).await;
        if let Ok(Fate::Moved { to, .. }) = &fate {
            taken.insert(to.clone());
        }
        if fate.is_ok() && matches!(disp, Disposition::MoveTo(_)) {
            // Moved after it, each to a free name (`lifecycle::dispose_companions`).
            let entry = listed_as(d.source.clone(), d.size);
            for c in discover::companions_of(&flow.source, flow.steps.as_ref(), &entry, &flow_rel(flow, &d.source), now) {
                // Under the name it has there (`source.ignore_case`); one not told apart stays.
                let found = discover::locate(source, &flow.source, flow.steps.as_ref(), (listed, &d.source), &c, now).await;
                let Ok(discover::Located::At(c)) = found else {
                    continue;
                };
                if let Ok(Fate::Moved { to, .. }) = disposition::foresee(source, &c, disp, None, None, |p| taken.contains(p)).await {
                    taken.insert(to);
                }
            }
        }
        let (Action::Deliver { then, .. } | Action::AlreadyDone { then: Some(then), .. } | Action::Resume { then: Some(then), .. }) =
            &mut files[d.file].action
        else {
            continue;
        };
        *then = fate_shown(flow, fate, d.recorded.as_ref());
    }
}

/// How a plan shows what becomes of a delivered file's source (`fate`, as
/// `disposition::foresee` saw it; `recorded`: the `move_to` target a crashed run chose). Also
/// for a round trip's response a crashed run left delivered (`awaits::foresee`).
pub(in crate::engine) fn fate_shown(flow: &Flow, fate: Result<Fate, FileError>, recorded: Option<&RemotePath>) -> String {
    let recorded = |p: &RemotePath| recorded == Some(p);
    match fate {
        Ok(Fate::Kept) => "keep the source".to_string(),
        Ok(Fate::Deleted { there: true }) => "delete the source".to_string(),
        Ok(Fate::Deleted { there: false }) => "delete the source (gone already)".to_string(),
        Ok(Fate::Moved { to, instead_of }) => match instead_of {
            None if recorded(&to) => format!("move the source to {to} (the name chosen before the crash)"),
            None => format!("move the source to {to}"),
            Some(w) if recorded(&w) => format!("move the source to {to} ({w}, chosen before the crash, is taken)"),
            Some(w) => format!("move the source to {to} ({w} is taken)"),
        },
        Ok(Fate::MovedBefore(t)) => format!("the source is at {t} already (moved before the crash)"),
        Ok(Fate::Gone) => "the source is no longer there: not moved".to_string(),
        Err(e) => match &flow.after_success {
            Disposition::MoveTo(dir) => format!("move the source to {dir}/ (its name there not looked at: {e})"),
            _ => format!("delete the source (not looked at: {e})"),
        },
    }
}

/// Adds what the stored probes of `flow`'s endpoints (in `state_dir`) found that matters to
/// the flow now: warnings and errors, judged against the current flow. Only reads.
pub fn add_probes(plan: &mut Plan, flow: &Flow, state_dir: &Path, now: DateTime<Utc>) {
    for name in flow.endpoints.keys() {
        let report = match probe::store::load(state_dir, &flow.name, name) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let remote = !matches!(flow.endpoints.get(name), Some(EndpointSpec::Local { .. }));
                if *name == flow.source.endpoint && remote {
                    plan.probe_hint = Some(format!(
                        "the source endpoint {name} was never probed: `wharf probe {} --write` checks its clock, mtimes and rename",
                        flow.file.display()
                    ));
                }
                continue;
            }
            Err(e) => {
                plan.caveats.push(e.to_string());
                continue;
            }
        };
        let findings: Vec<Finding> = probe::findings(flow, &report).into_iter().filter(|f| f.severity >= Severity::Warning).collect();
        plan.probes.push(ProbeNote {
            endpoint: name.clone(),
            target: report.target.clone(),
            probed_at: report.probed_at,
            age: ago(now - report.probed_at),
            findings,
        });
    }
}

/// `just now`, `5 minutes ago`, `3 hours ago`, `12 days ago`.
fn ago(d: chrono::TimeDelta) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match d.num_seconds() {
        ..60 => "just now".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s => plural(s / 86_400, "day"),
    }
}

/// The action for a ready file.
fn decide(flow: &Flow, ledger: Option<&Snapshot>, c: &discover::Candidate, run: u64, now: SystemTime) -> Result<Action, LedgerError> {
    if let Some(l) = ledger {
        // What the ledger says of this very version, judged as a run judges it at the file's
        // turn: settled (delivered, a duplicate, quarantined) or in flight.
        if let Some(rec) = l.file(&flow.name, c.entry.path.as_str())?
            && lifecycle::same_version(flow, &c.entry, &rec)
        {
            match lifecycle::Settled::told(&rec, |id| l.done(&flow.name, id).ok().flatten()) {
                Some(lifecycle::Settled::Delivered(why)) => return Ok(Action::AlreadyDone { why, then: disposal(flow) }),
                Some(lifecycle::Settled::Quarantined(why)) => return Ok(Action::Skip { why }),
                // Refused for the login's rights when the last run tried it: as that run said,
                // a plan cannot read it to know better.
                None if let Some(refused) = lifecycle::unreadable::refused(&rec) => {
                    return Ok(Action::Wait {
                        why: format!(
                            "{} (so run {} found it, refused since {}; the next run tries again)",
                            refused.message,
                            rec.run,
                            lifecycle::date(refused.at)
                        ),
                    });
                }
                None if rec.state.in_flight() => return Ok(resume(flow, &rec)),
                None => {}
            }
        }
        if let Some(d) = lifecycle::delivered_before(l, flow, &c.entry)? {
            return Ok(Action::AlreadyDone { why: lifecycle::same_identity_as(&d), then: disposal(flow) });
        }
    }
    let refused = lifecycle::refused_by_listing(flow, &c.entry);
    if !refused.is_empty() {
        return Ok(Action::Quarantine {
            why: format!("would be quarantined{} by a check step: {}", quarantine_to(flow), refused.join("; ")),
        });
    }
    let targets = flow.sinks.iter().enumerate().map(|(i, s)| match named(flow, i, c, run, now) {
        Ok((dir, name)) => shown(s, &dir, &name),
        Err(e) => format!("{}:<{e}>", s.endpoint),
    });
    let then = disposal(flow).unwrap_or_else(|| "keep the source".to_string());
    Ok(Action::Deliver { targets: targets.collect(), then })
}

/// ` to erp:/rejected`: where the flow quarantines files (nothing without a quarantine).
pub fn quarantine_to(flow: &Flow) -> String {
    flow.quarantine.as_ref().map(|q| format!(" to {}:{}", q.endpoint, q.path)).unwrap_or_default()
}

/// What the run does with a file an earlier run left `quarantining`, for the plan's line: it
/// is quarantined as decided, whatever the steps would say now, when its source still holds
/// the bytes refused (`quarantine::resumed`, which reads the source again, or downloads it
/// again if its staged copy is gone: other bytes are taken as a new file), as `copy` (the
/// quarantine folder alone when it was not looked at); `None` for another state.
pub fn resumed_quarantine(flow: &Flow, state: FileState, copy: Option<&PlannedCopy>) -> Option<String> {
    const OTHER: &str = "other bytes at the source now are taken as a new file";
    (state == FileState::Quarantining).then(|| match copy {
        Some(PlannedCopy { to, made: true }) => {
            format!(
                "then quarantined to {to} as decided before (the copy made before the crash, not made again; the steps are not run again; {OTHER})"
            )
        }
        Some(PlannedCopy { to, made: false }) => {
            format!(
                "then quarantined to {to} as decided before (the steps are not run again; downloaded again if its staged copy is gone; {OTHER})"
            )
        }
        None => format!(
            "then quarantined{} as decided before (the steps are not run again; downloaded again if its staged copy is gone; {OTHER})",
            quarantine_to(flow)
        ),
    })
}

/// What a run does with a delivered file's source, as the flow names it (the `move_to`
/// folder not looked at): `None` for `keep`.
fn disposal(flow: &Flow) -> Option<String> {
    match &flow.after_success {
        Disposition::Keep => None,
        Disposition::Delete => Some("delete the source".to_string()),
        Disposition::MoveTo(p) => Some(format!("move the source to {p}/ (a free name if taken)")),
    }
}

/// A file a crashed run left in flight (`rec`), resumed: delivered, then its source
/// disposed of (not a file being quarantined).
fn resume(flow: &Flow, rec: &FileRecord) -> Action {
    let then = disposal(flow).filter(|_| rec.state != FileState::Quarantining);
    Action::Resume { state: rec.state, writes: vec![], then, copy: None }
}

/// A resumed file's state in `--json`, as the ledger names it (`wharf files`, `wharf status`).
fn state_name<S: serde::Serializer>(state: &FileState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(state.as_str())
}

fn caveats(flow: &Flow) -> Vec<String> {
    let mut out = Vec::new();
    if flow.steps.is_some() {
        out.push("the flow has content steps: checks on content (magic bytes, checksums) and record checks may still quarantine a file, and output names follow the steps".into());
    }
    let programs: Vec<String> = flow
        .steps
        .iter()
        .flat_map(|s| s.steps())
        .filter_map(|s| if let crate::steps::Step::Command(c) = s { Some(format!("`{}`", c.shown())) } else { None })
        .collect();
    if !programs.is_empty() {
        out.push(format!(
            "command steps are not run by a plan: {} may still refuse a file (quarantined); the names shown are as the steps' `name` makes them",
            programs.join(", ")
        ));
    }
    if flow.source.command.is_some() {
        out.push("source.command is not run by a plan; its output would be taken as a new file".into());
    }
    if flow.source.identity.sha256 {
        // Before, "files already delivered with another name are not recognised here", which
        // left out a file with the bytes of another of the same listing (the run skips it too).
        out.push(
            "a content identity needs the file's hash, which a plan does not read: a file with the same bytes as one delivered before \
             under another name, or as another file listed here, is shown as `deliver`, and the run skips it"
                .into(),
        );
    }
    if flow.source.ready.stable_for.is_some() {
        out.push("a plan is not a poll: `stable_for` counts from the polls of real runs".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::flow::IfExists;
    use crate::endpoint::{ErrorKind, SkipReason};
    use crate::engine::{RunOptions, run_once};
    use crate::ledger::SourceFate;

    /// A flow from `dir/src/in` to `dir/dst/inbox`, with `extra` YAML added.
    fn flow(dir: &Path, extra: &str) -> Flow {
        flow_with(dir, "include: ['*.csv']", extra)
    }

    /// [`flow`], its source's options (beside `endpoint` and `path`) `source`.
    fn flow_with(dir: &Path, source: &str, extra: &str) -> Flow {
        let (src, dst) = (dir.join("src"), dir.join("dst"));
        std::fs::create_dir_all(src.join("in")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, {source} }}\n\
             sinks:\n  - {{ endpoint: erp, path: /inbox }}\n{extra}",
            src.display(),
            dst.display()
        );
        crate::config::load_flow_str(&text, &dir.join("t.yaml")).unwrap()
    }

    async fn run(flow: &Flow, ledger: &Ledger, dir: &Path) -> crate::engine::RunReport {
        run_once(flow, ledger, &RunOptions::new(dir.join("staging")), &mut |_| {}).await.unwrap()
    }

    /// Two files of one listing with the same bytes, identity by content: the plan cannot tell
    /// (it reads no content) and shows both delivered; its note says the run skips such a
    /// file (before, it spoke only of files delivered before under another name).
    #[tokio::test]
    async fn a_content_identity_note_tells_of_files_alike_in_one_listing() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow_with(d, "include: ['*.csv'], identity: [sha256]", "after: { success: keep }\n");
        for name in ["a.csv", "b.csv"] {
            std::fs::write(d.join("src/in").join(name), "same\n").unwrap();
        }
        let ledger = Ledger::in_memory().unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert_eq!(p.files.len(), 2);
        let note = p.caveats.iter().find(|c| c.starts_with("a content identity")).unwrap_or_else(|| panic!("{:#?}", p.caveats));
        assert!(note.contains("or as another file listed here, is shown as `deliver`, and the run skips it"), "{note}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.skipped), (1, 1), "{r:#?}");
    }

    /// Partners send `ORDERS_1.CSV` to a flow taking `*.csv`: it was never taken, and nothing
    /// said why. Now the plan and the run's report name the pattern it would match ignoring
    /// case (a `not_taken` event, once), and `source.ignore_case: true` takes it.
    #[tokio::test]
    async fn a_file_taken_only_ignoring_case_is_told_of_and_taken_with_ignore_case() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "after: { success: keep }\n");
        for name in ["a.csv", "ORDERS_1.CSV", "b.TXT"] {
            std::fs::write(d.join("src/in").join(name), "1\n").unwrap();
        }
        let ledger = Ledger::in_memory().unwrap();
        let why = "`ORDERS_1.CSV` does not match `*.csv`, but would ignoring case: set `source.ignore_case: true` to take it";
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert_eq!(p.files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["/in/a.csv"]);
        assert!(p.caveats.contains(&format!("/in/ORDERS_1.CSV is never taken ({why})")), "{:#?}", p.caveats);
        assert!(!p.caveats.iter().any(|c| c.contains("b.TXT")), "{:#?}", p.caveats);
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        let told: Vec<(String, SkipReason, Option<&str>)> =
            r.skipped_names.iter().map(|s| (s.shown_path(), s.reason, s.pattern.as_deref())).collect();
        assert_eq!(told, [("/in/ORDERS_1.CSV".to_string(), SkipReason::CaseOnly, Some("*.csv"))]);
        let events: Vec<(String, String)> = ledger.events(None, 0, 10).unwrap().into_iter().map(|e| (e.subject, e.detail)).collect();
        assert_eq!(events, [("/in/ORDERS_1.CSV".to_string(), why.to_string())]);

        let ignoring = flow_with(d, "include: ['*.csv'], ignore_case: true", "after: { success: keep }\n");
        let r = run(&ignoring, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert!(r.skipped_names.is_empty(), "{r:#?}");
        assert_eq!(std::fs::read(d.join("dst/inbox/ORDERS_1.CSV")).unwrap(), b"1\n");
        assert!(!d.join("dst/inbox/b.TXT").exists());
        assert!(ledger.unsafe_names("t").unwrap().is_empty(), "no more to tell");
    }

    /// Each planned file's path, and why it waits (`None`: it does not).
    fn waits(p: &Plan) -> Vec<(&str, Option<&str>)> {
        p.files
            .iter()
            .map(|f| match &f.action {
                Action::Wait { why } => (f.path.as_str(), Some(why.as_str())),
                _ => (f.path.as_str(), None),
            })
            .collect()
    }

    /// With `source.ignore_case: true`, a partner varying the case of its names varies it on
    /// the done file too: `X.CSV.DONE` is `X.CSV`'s done file `X.CSV.done`, never taken as
    /// data (`include: ['*']`), and moved with it under its own name. Before, `X.CSV` waited
    /// for good and `X.CSV.DONE` was delivered as data. Two named like `z.csv.done`
    /// (`Z.CSV.DONE`, `z.csv.Done`): neither is taken, nor taken as data; `z.csv` waits with
    /// a reason naming both, and is taken once one is gone.
    #[tokio::test]
    async fn with_ignore_case_a_done_file_in_another_case_is_taken_and_two_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow_with(
            d,
            "include: ['*'], ignore_case: true, ready: { done_file: '{{name}}.done' }",
            "after: { success: { move_to: /done } }\n",
        );
        for name in ["X.CSV", "X.CSV.DONE", "z.csv", "Z.CSV.DONE", "z.csv.Done"] {
            std::fs::write(d.join("src/in").join(name), "1\n").unwrap();
        }
        let why = "no done file \"z.csv.done\": \"Z.CSV.DONE\" and \"z.csv.Done\" are both there, named like it ignoring case \
                   (`ignore_case`), so neither is taken for it; remove or rename the ones that are not it";
        let ledger = Ledger::in_memory().unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let shown = waits(&p);
        assert_eq!(shown, [("/in/X.CSV", None), ("/in/z.csv", Some(why))], "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.seen, r.counts.delivered, r.counts.not_ready), (2, 1, 1), "{r:#?}");
        assert_eq!(r.files.iter().find(|f| f.path == "/in/z.csv").unwrap().detail, why);
        let names = |dir: &str| {
            let mut n: Vec<String> =
                std::fs::read_dir(d.join(dir)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            n.sort();
            n
        };
        assert_eq!(names("dst/inbox"), ["X.CSV"]);
        assert_eq!(names("src/done"), ["X.CSV", "X.CSV.DONE"]);
        std::fs::remove_file(d.join("src/in/z.csv.Done")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.not_ready), (1, 0), "{r:#?}");
        assert_eq!(names("dst/inbox"), ["X.CSV", "z.csv"]);
        assert_eq!(names("src/done"), ["X.CSV", "X.CSV.DONE", "Z.CSV.DONE", "z.csv"]);
    }

    /// With `ignore_case`, `x.csv` and `X.CSV` each beside the done file named exactly after
    /// it (`x.csv.done`, `X.CSV.DONE` for `X.CSV.done`): the exact name is `x.csv`'s, so the
    /// other is `X.CSV`'s — both are taken, each done file moved with its own file. Before,
    /// `X.CSV` waited for good, its done file "ambiguous" between the two. Only where no
    /// exact name tells them apart are two named alike ambiguous: `Y.CSV` beside
    /// `y.csv.done` and `Y.Csv.Done`, with no `y.csv`, waits and says why.
    #[tokio::test]
    async fn with_ignore_case_each_file_has_the_done_file_named_exactly_after_it_or_the_one_left() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow_with(
            d,
            "include: ['*.csv'], ignore_case: true, ready: { done_file: '{{name}}.done' }",
            // Several at a time: each done file is moved as the run's listing found it, whatever
            // the other file has moved meanwhile (`discover::locate`).
            "after: { success: { move_to: /done } }\nconcurrency: 4\n",
        );
        for name in ["x.csv", "X.CSV", "x.csv.done", "X.CSV.DONE", "Y.CSV", "y.csv.done", "Y.Csv.Done"] {
            std::fs::write(d.join("src/in").join(name), name).unwrap();
        }
        let ledger = Ledger::in_memory().unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let why = "no done file \"Y.CSV.done\": \"Y.Csv.Done\" and \"y.csv.done\" are both there, named like it ignoring case \
                   (`ignore_case`), so neither is taken for it; remove or rename the ones that are not it";
        assert_eq!(waits(&p), [("/in/X.CSV", None), ("/in/Y.CSV", Some(why)), ("/in/x.csv", None)], "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.not_ready), (2, 1), "{r:#?}");
        let names = |dir: &str| {
            let mut n: Vec<String> =
                std::fs::read_dir(d.join(dir)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            n.sort();
            n
        };
        assert_eq!(names("dst/inbox"), ["X.CSV", "x.csv"]);
        assert_eq!(names("src/done"), ["X.CSV", "X.CSV.DONE", "x.csv", "x.csv.done"]);
        assert_eq!(names("src/in"), ["Y.CSV", "Y.Csv.Done", "y.csv.done"]);
    }

    /// With `ignore_case`, a done file named like its data file but for case (`{{stem}}.CSV`
    /// of `a.csv`) is not the data file itself: the file waits for it, and says so. Before,
    /// `a.csv` was set aside as its own done file, never taken, without a word. (`wharf
    /// validate` refuses this beside `include: ['*.csv']`; beside `*`, which takes `.xml`
    /// files too, whose done files it may name, the run tells.)
    #[tokio::test]
    async fn with_ignore_case_a_file_is_not_its_own_done_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow_with(d, "include: ['*'], ignore_case: true, ready: { done_file: '{{stem}}.CSV' }", "after: { success: keep }\n");
        std::fs::write(d.join("src/in/a.csv"), "1\n").unwrap();
        let p = plan(&flow, None, SystemTime::now(), None).await.unwrap();
        let shown = waits(&p);
        assert_eq!(shown, [("/in/a.csv", Some("no done file \"a.CSV\" yet"))], "{p:#?}");
    }

    /// `move_to` is planned with the name each source gets there, as the run moves them: one
    /// name taken before the run, and two files of one name from two sub-folders (the second
    /// takes the next free name, as the first is moved first).
    #[tokio::test]
    async fn the_name_a_source_is_moved_to_is_planned_as_the_run_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, recursive: true, include: ['**/*.csv'] }}\n\
             sinks: [ {{ endpoint: erp, path: /inbox, name: '{{{{rel_dir}}}}-{{{{name}}}}' }} ]\nafter: {{ success: {{ move_to: /done }} }}\n",
            src.display(),
            dir.path().join("dst").display()
        );
        let flow = crate::config::load_flow_str(&text, &dir.path().join("t.yaml")).unwrap();
        for d in ["in/a", "in/b", "done"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
        }
        for (p, body) in [("in/a/x.csv", "a\n"), ("in/b/x.csv", "b\n"), ("in/y.csv", "y\n"), ("done/y.csv", "before\n")] {
            std::fs::write(src.join(p), body).unwrap();
        }
        let ledger = Ledger::in_memory().unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let then: Vec<(&str, &str)> = p
            .files
            .iter()
            .map(|f| match &f.action {
                Action::Deliver { then, .. } => (f.path.as_str(), then.as_str()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            then,
            [
                ("/in/a/x.csv", "move the source to /done/x.csv"),
                ("/in/b/x.csv", "move the source to /done/x-1.csv (/done/x.csv is taken)"),
                ("/in/y.csv", "move the source to /done/y-1.csv (/done/y.csv is taken)"),
            ]
        );
        assert!(!src.join("done/x.csv").exists(), "a plan moves nothing");
        let report = run(&flow, &ledger, dir.path()).await;
        assert_eq!(report.counts.delivered, 3, "{report:?}");
        let read = |p: &str| std::fs::read_to_string(src.join(p)).unwrap();
        assert_eq!((read("done/y-1.csv"), read("done/y.csv")), ("y\n".into(), "before\n".into()));
        // Which of the two `x.csv` is moved first may differ (a run takes several files at
        // once); the names are the same.
        assert_eq!(sorted_contents(&src, &["done/x.csv", "done/x-1.csv"]), ["a\n", "b\n"]);
    }

    /// The record a run that crashed a minute ago, downloading `path` (run 1), left.
    fn left_staging(path: &str, identity: String, size: u64, mtime: i64) -> FileRecord {
        let at = crate::ledger::now_millis() - 60_000;
        FileRecord {
            path: path.into(),
            identity,
            size,
            mtime: Some(mtime),
            state: FileState::Staging,
            first_seen: at,
            updated: at,
            run: 1,
            ..Default::default()
        }
    }

    /// The contents of the files at `paths` under `src`, sorted: two files moved at once may
    /// take the planned names in either order.
    fn sorted_contents(src: &Path, paths: &[&str]) -> Vec<String> {
        let mut contents: Vec<String> = paths.iter().map(|p| std::fs::read_to_string(src.join(p)).unwrap()).collect();
        contents.sort();
        contents
    }

    /// A download a killed run left, its source gone since: the plan says the run skips it
    /// (recording it vanished), and the run does.
    #[tokio::test]
    async fn a_file_left_mid_download_whose_source_is_gone_is_planned_as_the_run_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "");
        let ledger = Ledger::in_memory().unwrap();
        let rec =
            FileRecord { path: "in/gone.csv".into(), identity: "id".into(), state: FileState::Staging, size: 9, ..Default::default() };
        ledger.put_file(&flow.name, &rec).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let r = run(&flow, &ledger, dir.path()).await;
        assert_eq!((r.files.len(), r.files[0].outcome), (1, crate::engine::Outcome::Skipped), "{r:?}");
        let Action::Skip { why } = &p.files[0].action else { panic!("the run skips it; the plan said {:?}", p.files[0]) };
        assert_eq!(why, &r.files[0].detail);
        assert_eq!(ledger.file(&flow.name, "in/gone.csv").unwrap().unwrap().state, FileState::Vanished);
        assert!(plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap().files.is_empty());
    }

    /// A `command` step's `name` renames the target the plan shows, as the run delivers it.
    #[tokio::test]
    async fn targets_are_named_as_the_command_steps_make_them() {
        let dir = tempfile::tempdir().unwrap();
        let steps = "steps:\n  - command: { run: [gzip, -c, -n], name: '{{name}}.gz' }\nquarantine: { endpoint: erp, path: /rejected }\n";
        let flow = flow(dir.path(), steps);
        std::fs::write(dir.path().join("src/in/a.csv"), b"a,1\n").unwrap();
        let p = plan(&flow, None, SystemTime::now(), None).await.unwrap();
        let Action::Deliver { targets, .. } = &p.files[0].action else { panic!("{:?}", p.files[0]) };
        assert_eq!(targets, &["erp:/inbox/a.csv.gz"]);
        assert!(
            p.caveats.iter().any(|c| c.starts_with("command steps are not run by a plan: `gzip` may still refuse")),
            "{:#?}",
            p.caveats
        );
        let ledger = Ledger::in_memory().unwrap();
        let r = run(&flow, &ledger, dir.path()).await;
        assert_eq!(r.files[0].targets, ["erp:/inbox/a.csv.gz"], "{r:?}");
        assert!(!r.files[0].detail.contains("records:"), "no records were read: {}", r.files[0].detail);
        let sent = std::fs::read(dir.path().join("dst/inbox/a.csv.gz")).unwrap();
        assert_eq!(&sent[..2], &[0x1f, 0x8b]);
    }

    #[tokio::test]
    async fn a_quarantined_file_left_at_the_source_is_planned_as_the_run_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "steps:\n  - check: { non_empty: true }\nquarantine: { endpoint: erp, path: /rejected }\n");
        std::fs::write(dir.path().join("src/in/empty.csv"), b"").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        let first = run(&flow, &ledger, dir.path()).await;
        assert_eq!(first.quarantined, 1, "{first:?}");
        assert!(dir.path().join("src/in/empty.csv").exists(), "after.failure: keep (the default)");

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let second = run(&flow, &ledger, dir.path()).await;
        assert_eq!(second.files[0].outcome, crate::engine::Outcome::Skipped, "{second:?}");
        assert_eq!(second.quarantined, 0, "not quarantined again");
        let Action::Skip { why } = &p.files[0].action else { panic!("the run skips it; the plan said {:?}", p.files[0]) };
        assert!(why.contains("quarantined in run 1"), "{why}");
    }

    #[tokio::test]
    async fn a_file_delivered_under_a_content_identity_is_planned_as_the_run_skips_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut flow = flow(dir.path(), "");
        flow.source.identity = crate::config::flow::Identity { path: false, size: false, mtime: false, sha256: true };
        std::fs::write(dir.path().join("src/in/a.csv"), b"a,1\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, dir.path()).await.counts.delivered, 1);
        assert!(dir.path().join("src/in/a.csv").exists(), "after.success: keep (the default)");

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let second = run(&flow, &ledger, dir.path()).await;
        assert_eq!(second.files[0].outcome, crate::engine::Outcome::Skipped, "{second:?}");
        assert!(
            matches!(&p.files[0].action, Action::AlreadyDone { why, .. } if why.contains("run 1")),
            "the run skips it; the plan said {:?}",
            p.files[0]
        );
    }
    /// A file a crashed run left delivered, its source gone (it was being deleted): the next
    /// run finishes it; the plan lists it so.
    #[tokio::test]
    async fn a_file_a_crashed_run_left_delivered_is_planned_as_finished_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "after: { success: delete }\n");
        let ledger = Ledger::in_memory().unwrap();
        let rec = crate::ledger::FileRecord { path: "in/gone.csv".into(), state: FileState::Disposing, size: 3, ..Default::default() };
        ledger.put_file("t", &rec).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p.files[..], [f] if f.path == "/in/gone.csv" && matches!(&f.action, Action::Resume { state: FileState::Disposing, .. })),
            "{:?}",
            p.files
        );
    }

    /// A file delivered before and found at the source again (delivered while the flow kept
    /// its sources, the flow changed to `move_to` since) is moved by the run like a delivered
    /// file, at its turn, taking its name in the folder before the files after it. The plan
    /// said neither, and planned a later file of the same name to the name this one takes.
    #[tokio::test]
    async fn a_source_delivered_before_is_planned_as_the_run_moves_it_taking_its_name_first() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, recursive: true, include: ['**/*.csv'] }}\n\
             sinks: [ {{ endpoint: erp, path: /inbox, name: '{{{{rel_dir}}}}-{{{{name}}}}' }} ]\n",
            src.display(),
            dir.path().join("dst").display()
        );
        let mut flow = crate::config::load_flow_str(&text, &dir.path().join("t.yaml")).unwrap();
        for d in ["in/a", "in/b"] {
            std::fs::create_dir_all(src.join(d)).unwrap();
        }
        std::fs::write(src.join("in/a/x.csv"), "a\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, dir.path()).await.counts.delivered, 1);
        std::fs::write(src.join("in/b/x.csv"), "b\n").unwrap();
        flow.after_success = Disposition::MoveTo(RemotePath::parse("/done").unwrap());

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let then: Vec<(&str, Option<&str>)> = p
            .files
            .iter()
            .map(|f| match &f.action {
                Action::AlreadyDone { then, .. } => (f.path.as_str(), then.as_deref()),
                Action::Deliver { then, .. } => (f.path.as_str(), Some(then.as_str())),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            then,
            [
                ("/in/a/x.csv", Some("move the source to /done/x.csv")),
                ("/in/b/x.csv", Some("move the source to /done/x-1.csv (/done/x.csv is taken)")),
            ]
        );
        assert!(matches!(&p.files[0].action, Action::AlreadyDone { why, .. } if why.contains("delivered in run 1")), "{:?}", p.files[0]);
        assert!(src.join("in/a/x.csv").exists(), "a plan moves nothing");
        let report = run(&flow, &ledger, dir.path()).await;
        let a = &report.files[0];
        assert_eq!(a.outcome, crate::engine::Outcome::Skipped, "{report:?}");
        assert!(a.detail.contains("; source moved to /done/x.csv"), "{report:?}");
        assert_eq!(report.counts.delivered, 1, "{report:?}");
        assert!(!src.join("in/a/x.csv").exists() && !src.join("in/b/x.csv").exists(), "both moved");
        // Which of the two is moved first may differ (a run takes several files at once); the
        // names are the ones planned.
        assert_eq!(sorted_contents(&src, &["done/x.csv", "done/x-1.csv"]), ["a\n", "b\n"]);
    }

    /// What becomes of a source delivered before, as the run does it: `keep` leaves it (no
    /// `then`: the `--json` of such a flow is as it was), `delete` deletes it.
    #[tokio::test]
    async fn a_source_delivered_before_is_planned_as_kept_or_deleted_as_the_run_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut flow = flow(dir.path(), "");
        let a = dir.path().join("src/in/a.csv");
        std::fs::write(&a, b"a,1\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, dir.path()).await.counts.delivered, 1);
        for (disposition, then, kept) in [(Disposition::Keep, None, true), (Disposition::Delete, Some("delete the source"), false)] {
            flow.after_success = disposition;
            let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
            assert!(
                matches!(&p.files[..], [f] if matches!(&f.action, Action::AlreadyDone { then: t, .. } if t.as_deref() == then)),
                "{:?}",
                p.files
            );
            let json = serde_json::to_value(&p.files[0]).unwrap();
            assert_eq!(json.get("then").and_then(|t| t.as_str()), then, "{json}");
            let report = run(&flow, &ledger, dir.path()).await;
            assert_eq!(report.files[0].outcome, crate::engine::Outcome::Skipped, "{report:?}");
            assert_eq!(a.exists(), kept, "{report:?}");
        }
    }

    /// Files a crashed run left delivered or disposing: the next run moves each source where
    /// it chooses (the target recorded before the crash; taken since, the next free name; none
    /// recorded, the first free name), or finds it moved, or gone. The plan says where (it said
    /// only `resume`), counting the names in the order the run takes them.
    #[tokio::test]
    async fn where_a_resumed_file_s_source_goes_is_planned_as_the_run_moves_it() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "after: { success: { move_to: /done } }\n");
        let src = dir.path().join("src");
        for n in ["a", "b", "c", "d"] {
            std::fs::write(src.join(format!("in/{n}.csv")), format!("{n}\n")).unwrap();
        }
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, dir.path()).await.counts.delivered, 4);
        let crash = |n: &str, state: FileState, recorded: Option<&str>, back: bool| {
            let mut rec = ledger.file("t", &format!("in/{n}.csv")).unwrap().unwrap();
            (rec.state, rec.disposed_to) = (state, recorded.map(str::to_string));
            ledger.put_file("t", &rec).unwrap();
            if back {
                // Not moved yet (a rename keeps the file's time: the same version).
                std::fs::rename(src.join(format!("done/{n}.csv")), src.join(format!("in/{n}.csv"))).unwrap();
            }
        };
        // a: its target recorded; b: delivered, its name in the folder taken by the partner's
        // file; c: moved before the crash; d: gone from the source and from the folder.
        crash("a", FileState::Disposing, Some("done/a-7.csv"), true);
        crash("b", FileState::Delivered, None, true);
        std::fs::write(src.join("done/b.csv"), b"the partner's").unwrap();
        crash("c", FileState::Disposing, Some("done/c.csv"), false);
        crash("d", FileState::Disposing, Some("done/d.csv"), false);
        std::fs::remove_file(src.join("done/d.csv")).unwrap();

        let then = |p: &Plan| -> Vec<(String, Option<String>)> {
            p.files
                .iter()
                .map(|f| match &f.action {
                    Action::Resume { then, writes, .. } if writes.is_empty() => (f.path.clone(), then.clone()),
                    other => panic!("{}: {other:?}", f.path),
                })
                .collect()
        };
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let planned = then(&p);
        let planned: Vec<(&str, Option<&str>)> = planned.iter().map(|(p, t)| (p.as_str(), t.as_deref())).collect();
        assert_eq!(
            planned,
            [
                ("/in/a.csv", Some("move the source to /done/a-7.csv (the name chosen before the crash)")),
                ("/in/b.csv", Some("move the source to /done/b-1.csv (/done/b.csv is taken)")),
                ("/in/c.csv", Some("the source is at /done/c.csv already (moved before the crash)")),
                ("/in/d.csv", Some("the source is no longer there: not moved")),
            ]
        );
        let report = run(&flow, &ledger, dir.path()).await;
        let detail = |n: &str| report.files.iter().find(|f| f.path == format!("/in/{n}.csv")).unwrap().detail.clone();
        assert!(detail("a").ends_with("source moved to /done/a-7.csv"), "{report:?}");
        assert!(detail("b").ends_with("source moved to /done/b-1.csv"), "{report:?}");
        assert!(detail("c").ends_with("source moved to /done/c.csv"), "{report:?}");
        assert!(detail("d").ends_with("source no longer there, so not moved"), "{report:?}");
        assert_eq!(std::fs::read(src.join("done/b.csv")).unwrap(), b"the partner's");

        // The recorded target taken since the crash: the run chooses again in the folder.
        crash("a", FileState::Disposing, Some("done/a-7.csv"), false);
        std::fs::rename(src.join("done/a-7.csv"), src.join("in/a.csv")).unwrap();
        std::fs::write(src.join("done/a-7.csv"), b"the partner's").unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert_eq!(
            then(&p),
            [(
                "/in/a.csv".to_string(),
                Some("move the source to /done/a.csv (/done/a-7.csv, chosen before the crash, is taken)".to_string())
            )]
        );
        let report = run(&flow, &ledger, dir.path()).await;
        assert!(report.files[0].detail.ends_with("source moved to /done/a.csv"), "{report:?}");
        assert_eq!(std::fs::read(src.join("done/a.csv")).unwrap(), b"a\n");
    }

    /// Two files of one listing with one identity (the path left out of it): the run
    /// delivers the first and finds the other its duplicate; the plan says so.
    #[tokio::test]
    async fn a_second_file_of_the_same_identity_is_planned_as_its_duplicate() {
        let dir = tempfile::tempdir().unwrap();
        let mut flow = flow(dir.path(), "");
        flow.source.identity = crate::config::flow::Identity { path: false, size: true, mtime: false, sha256: false };
        for n in ["a", "b"] {
            std::fs::write(dir.path().join(format!("src/in/{n}.csv")), b"same").unwrap();
        }
        let p = plan(&flow, None, SystemTime::now(), None).await.unwrap();
        let ledger = Ledger::in_memory().unwrap();
        let r = run(&flow, &ledger, dir.path()).await;
        assert_eq!((r.counts.delivered, r.counts.skipped), (1, 1), "{r:?}");
        assert!(matches!(&p.files[0].action, Action::Deliver { .. }), "{:?}", p.files[0]);
        assert!(
            matches!(&p.files[1].action, Action::AlreadyDone { why, .. } if why == "same identity as /in/a.csv, delivered first by this run"),
            "{:?}",
            p.files[1]
        );
    }

    /// The sinks are looked at for the first files to deliver only: 50,000 stats on a distant
    /// sink would take minutes where the listing took seconds.
    #[tokio::test]
    async fn the_targets_of_many_files_are_looked_at_for_the_first_only() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "");
        for i in 0..targets::LOOKS_MAX + 2 {
            std::fs::write(dir.path().join(format!("src/in/{i:05}.csv")), b"").unwrap();
        }
        std::fs::create_dir_all(dir.path().join("dst/inbox")).unwrap();
        std::fs::write(dir.path().join("dst/inbox/00000.csv"), b"there").unwrap();
        std::fs::write(dir.path().join(format!("dst/inbox/{:05}.csv", targets::LOOKS_MAX + 1)), b"there").unwrap();
        let p = plan(&flow, None, SystemTime::now(), None).await.unwrap();
        assert!(matches!(&p.files[0].action, Action::Fail { .. }), "looked at: {:?}", p.files[0]);
        let last = p.files.last().unwrap();
        assert!(matches!(&last.action, Action::Deliver { .. }), "not looked at: {last:?}");
        assert!(p.caveats.iter().any(|c| c.contains("first 1000 files") && c.contains("other 2")), "{:?}", p.caveats);
    }

    #[tokio::test]
    async fn a_target_taken_on_the_sink_is_planned_by_the_sink_s_if_exists_as_the_run_does() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path().join("dst/inbox");
        let mut flow = flow(dir.path(), "");
        std::fs::create_dir_all(&inbox).unwrap();
        std::fs::write(inbox.join("a.csv"), b"someone else's").unwrap();
        std::fs::write(inbox.join("a-1.csv"), b"someone else's too").unwrap();
        std::fs::write(dir.path().join("src/in/a.csv"), b"a,1\n").unwrap();
        std::fs::write(dir.path().join("src/in/b.csv"), b"b,1\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();

        // `fail` (the default): the run fails the file; the plan must not say it delivers it.
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let Action::Fail { why } = &p.files[0].action else { panic!("the run fails it; the plan said {:?}", p.files[0]) };
        assert!(why.contains("erp:/inbox/a.csv exists already") && why.contains("if_exists: fail"), "{why}");
        assert!(matches!(&p.files[1].action, Action::Deliver { targets, .. } if targets == &["erp:/inbox/b.csv"]), "{:?}", p.files[1]);
        let report = run(&flow, &ledger, dir.path()).await;
        assert_eq!(report.files[0].outcome, crate::engine::Outcome::Failed, "{report:?}");
        std::fs::remove_file(inbox.join("b.csv")).unwrap();

        // `rename`: the plan names the free name the run takes.
        flow.sinks[0].if_exists = IfExists::Rename;
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let Action::Deliver { targets, .. } = &p.files[0].action else { panic!("{:?}", p.files[0]) };
        assert_eq!(targets, &["erp:/inbox/a-2.csv (erp:/inbox/a.csv is taken)"]);
        assert!(!inbox.join("a-2.csv").exists(), "a plan writes nothing");
        let report = run(&flow, &ledger, dir.path()).await;
        assert_eq!(report.files[0].targets, ["erp:/inbox/a-2.csv"], "{report:?}");

        // `overwrite` and `skip` say what becomes of the file there.
        std::fs::write(dir.path().join("src/in/c.csv"), b"c\n").unwrap();
        std::fs::write(inbox.join("c.csv"), b"old").unwrap();
        flow.sinks[0].if_exists = IfExists::Overwrite;
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let c = p.files.iter().find(|f| f.path == "/in/c.csv").unwrap();
        assert!(
            matches!(&c.action, Action::Deliver { targets, .. } if targets == &["erp:/inbox/c.csv (replacing the file there)"]),
            "{c:?}"
        );
        flow.sinks[0].if_exists = IfExists::Skip;
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let c = p.files.iter().find(|f| f.path == "/in/c.csv").unwrap();
        assert!(
            matches!(&c.action, Action::Deliver { targets, .. } if targets == &["erp:/inbox/c.csv (there already: left as it is, counted as delivered)"]),
            "{c:?}"
        );
        assert_eq!(std::fs::read(inbox.join("c.csv")).unwrap(), b"old");
    }
    #[tokio::test]
    async fn a_sink_that_cannot_be_reached_is_a_note_and_the_others_are_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let mut flow = flow(dir.path(), "");
        let unreachable = "name: u\nendpoints:\n  srv: { type: sftp, host: 127.0.0.1, port: 1, user: x, auth: { password: y }, \
                           host_key: { fingerprint: \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" }, connect_timeout: 2s }\n\
                           source: { endpoint: srv, path: /in }\nsinks: [ { endpoint: srv, path: /x, trigger: \"{{name}}.ok\" } ]\n";
        let other = crate::config::load_flow_str(unreachable, &dir.path().join("u.yaml")).unwrap();
        flow.endpoints.extend(other.endpoints);
        flow.sinks.extend(other.sinks);
        std::fs::create_dir_all(dir.path().join("dst/inbox")).unwrap();
        std::fs::write(dir.path().join("dst/inbox/a.csv"), b"there").unwrap();
        std::fs::write(dir.path().join("src/in/a.csv"), b"a\n").unwrap();
        let p = plan(&flow, None, SystemTime::now(), None).await.unwrap();
        assert!(matches!(&p.files[0].action, Action::Fail { why } if why.contains("erp:/inbox/a.csv exists already")), "{:?}", p.files[0]);
        let note = p.caveats.iter().find(|c| c.starts_with("sink srv could not be reached")).unwrap_or_else(|| panic!("{:?}", p.caveats));
        assert!(note.contains("a run now would stop before taking any file"), "{note}");
        std::fs::remove_file(dir.path().join("dst/inbox/a.csv")).unwrap();
        let p = plan(&flow, None, SystemTime::now(), None).await.unwrap();
        assert!(
            // Its trigger too, as named (before, left out).
            matches!(&p.files[0].action, Action::Deliver { targets, .. }
                if targets == &["erp:/inbox/a.csv", "srv:/x/a.csv", "srv:/x/a.csv.ok (trigger)"]),
            "{:?}",
            p.files[0]
        );
    }
    #[tokio::test]
    async fn a_name_two_files_of_one_run_deliver_to_is_planned_as_the_run_takes_it() {
        for (policy, second) in [
            ("fail", None),
            ("overwrite", None),
            ("rename", Some("erp:/inbox/import-1.csv (erp:/inbox/import.csv is delivered first by /in/a.csv in the same run)")),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let mut flow = flow(dir.path(), "");
            flow.sinks[0].name = crate::template::NameTemplate::new("import.csv").unwrap();
            flow.sinks[0].if_exists = match policy {
                "fail" => IfExists::Fail,
                "overwrite" => IfExists::Overwrite,
                _ => IfExists::Rename,
            };
            std::fs::write(dir.path().join("src/in/a.csv"), b"a\n").unwrap();
            std::fs::write(dir.path().join("src/in/b.csv"), b"b\n").unwrap();
            // b is the newer: a takes the name first.
            // (Closed again: a file still open for writing is not ready.)
            let b = std::fs::File::options().write(true).open(dir.path().join("src/in/b.csv")).unwrap();
            b.set_modified(SystemTime::now() + std::time::Duration::from_secs(1)).unwrap();
            drop(b);
            let ledger = Ledger::in_memory().unwrap();
            let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
            assert!(
                matches!(&p.files[0].action, Action::Deliver { targets, .. } if targets == &["erp:/inbox/import.csv"]),
                "{:?}",
                p.files[0]
            );
            let report = run(&flow, &ledger, dir.path()).await;
            match second {
                None => {
                    // One per run, the older first: b waits, in the plan as in the run.
                    let Action::Wait { why } = &p.files[1].action else {
                        panic!("{policy}: the run holds it back; the plan said {:?}", p.files[1])
                    };
                    assert!(why.contains("as /inbox/import.csv, the name /in/a.csv takes in this run"), "{why}");
                    let b = report.files.iter().find(|f| f.path == "/in/b.csv").unwrap();
                    assert_eq!((b.outcome, &b.detail), (crate::engine::Outcome::NotReady, why), "{report:?}");
                    assert_eq!(report.counts.delivered, 1, "{report:?}");
                }
                Some(t) => {
                    assert!(matches!(&p.files[1].action, Action::Deliver { targets, .. } if targets == &[t]), "{policy}: {:?}", p.files[1]);
                    // The names the plan shows, whichever of the two files the run gives each.
                    let mut names: Vec<&str> = report.files.iter().flat_map(|f| f.targets.iter().map(String::as_str)).collect();
                    names.sort_unstable();
                    assert_eq!(names, ["erp:/inbox/import-1.csv", "erp:/inbox/import.csv"], "{report:?}");
                }
            }
        }
    }

    /// A trigger owed for a delivery an earlier run confirmed: that run failed on it (a file
    /// with content holds the trigger's name), or crashed before writing it (halt point
    /// `triggering`: the file left `delivering`, the trigger recorded as about to be written).
    /// The next run writes only the trigger, finds it written, or fails again; the plan says
    /// which (it said "deliver … (delivered before)" for the first and "resume" for the others).
    #[tokio::test]
    async fn a_trigger_owed_for_an_earlier_delivery_is_planned_as_the_run_writes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut flow = flow(dir.path(), "");
        flow.sinks[0].trigger = Some(crate::template::NameTemplate::new("{{name}}.ok").unwrap());
        let inbox = dir.path().join("dst/inbox");
        std::fs::create_dir_all(&inbox).unwrap();
        std::fs::write(inbox.join("a.csv.ok"), b"the partner's own").unwrap();
        std::fs::write(dir.path().join("src/in/a.csv"), b"a,1\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        let first = run(&flow, &ledger, dir.path()).await;
        assert_eq!(first.files[0].outcome, crate::engine::Outcome::Failed, "{first:?}");
        let failed = ledger.file("t", "in/a.csv").unwrap().unwrap();

        // Retried after the failure: the trigger's name still holds the partner's file.
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let Action::Fail { why } = &p.files[0].action else { panic!("the run fails it again; the plan said {:?}", p.files[0]) };
        assert!(
            why.contains("a.csv.ok") && why.contains("the file fails (after delivering to erp:/inbox/a.csv (delivered before))"),
            "{why}"
        );
        let second = run(&flow, &ledger, dir.path()).await;
        assert_eq!(second.files[0].outcome, crate::engine::Outcome::Failed, "{second:?}");

        // Left `delivering` by a crash before the trigger: the same, resumed.
        let crashed = crate::ledger::FileRecord { state: FileState::Delivering, ..failed };
        ledger.put_file("t", &crashed).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p.files[0].action, Action::Fail { why } if why.contains("a.csv.ok")),
            "the run fails it; the plan said {:?}",
            p.files[0]
        );
        let third = run(&flow, &ledger, dir.path()).await;
        assert_eq!(third.files[0].outcome, crate::engine::Outcome::Failed, "{third:?}");

        // The partner's file gone: the resumed run writes the trigger, and only the trigger.
        std::fs::remove_file(inbox.join("a.csv.ok")).unwrap();
        ledger.put_file("t", &crashed).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p.files[0].action, Action::Resume { state: FileState::Delivering, writes, .. } if writes == &["erp:/inbox/a.csv.ok (trigger)"]),
            "{:?}",
            p.files[0]
        );
        // Written before the crash (halt point `triggered`): found, not written again.
        std::fs::write(inbox.join("a.csv.ok"), b"").unwrap();
        let p2 = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p2.files[0].action, Action::Resume { writes, .. } if writes.len() == 1 && writes[0].contains("not written again")),
            "{:?}",
            p2.files[0]
        );
        std::fs::remove_file(inbox.join("a.csv.ok")).unwrap();
        let fourth = run(&flow, &ledger, dir.path()).await;
        assert_eq!(fourth.files[0].outcome, crate::engine::Outcome::Delivered, "{fourth:?}");
        assert_eq!(fourth.files[0].targets, ["erp:/inbox/a.csv", "erp:/inbox/a.csv.ok"], "{fourth:?}");
        assert_eq!(std::fs::read(inbox.join("a.csv.ok")).unwrap(), b"");
        let mut names: Vec<_> = std::fs::read_dir(&inbox).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["a.csv", "a.csv.ok"], "delivered once");
    }

    /// A crash just after the trigger was written, before the ledger knew (halt point
    /// `triggered`), with a trigger name that uses `{{run}}`: the resumed run finds the trigger
    /// under the name recorded for it, and writes no second one under its own run number (the
    /// partner would take the file twice); the plan says so.
    #[tokio::test]
    async fn a_trigger_recorded_before_a_crash_keeps_its_name_in_the_resumed_run_and_its_plan() {
        let dir = tempfile::tempdir().unwrap();
        let mut flow = flow(dir.path(), "");
        flow.sinks[0].trigger = Some(crate::template::NameTemplate::new("{{name}}.{{run}}.ok").unwrap());
        std::fs::write(dir.path().join("src/in/a.csv"), b"a,1\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, dir.path()).await.counts.delivered, 1);
        let mut crashed = ledger.file("t", "in/a.csv").unwrap().unwrap();
        crashed.state = FileState::Delivering;
        let trigger = crashed.deliveries.iter_mut().find(|d| d.target.ends_with(".ok")).unwrap();
        assert_eq!(trigger.target, "inbox/a.csv.1.ok");
        trigger.done = false;
        ledger.put_file("t", &crashed).unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p.files[0].action, Action::Resume { writes, .. }
                if writes == &["erp:/inbox/a.csv.1.ok (trigger, there already or its file taken by the partner: not written again)"]),
            "{:?}",
            p.files[0]
        );
        let second = run(&flow, &ledger, dir.path()).await;
        assert_eq!(second.files[0].outcome, crate::engine::Outcome::Delivered, "{second:?}");
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("dst/inbox")).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["a.csv", "a.csv.1.ok"], "one trigger for one delivery");
    }

    /// A file a crashed run left before its delivery (`staging`), its target taken on the sink
    /// meanwhile (`if_exists: fail`): the resumed run fails it, the plan says so (it said only
    /// `resume`); free, the plan names what the resumed run writes.
    #[tokio::test]
    async fn a_resumed_file_s_targets_are_planned_as_the_resumed_run_chooses_them() {
        let dir = tempfile::tempdir().unwrap();
        let flow = flow(dir.path(), "");
        std::fs::write(dir.path().join("src/in/a.csv"), b"a,1\n").unwrap();
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, dir.path()).await.counts.delivered, 1);
        let mut crashed = ledger.file("t", "in/a.csv").unwrap().unwrap();
        crashed.state = FileState::Staging;
        crashed.deliveries.clear();
        ledger.put_file("t", &crashed).unwrap();
        std::fs::write(dir.path().join("dst/inbox/a.csv"), b"someone else's").unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let Action::Fail { why } = &p.files[0].action else { panic!("the run fails it; the plan said {:?}", p.files[0]) };
        assert!(why.contains("erp:/inbox/a.csv exists already"), "{why}");
        let second = run(&flow, &ledger, dir.path()).await;
        assert_eq!(second.files[0].outcome, crate::engine::Outcome::Failed, "{second:?}");

        std::fs::remove_file(dir.path().join("dst/inbox/a.csv")).unwrap();
        crashed.state = FileState::Staging;
        ledger.put_file("t", &crashed).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p.files[0].action, Action::Resume { state: FileState::Staging, writes, .. } if writes == &["erp:/inbox/a.csv"]),
            "{:?}",
            p.files[0]
        );
        let third = run(&flow, &ledger, dir.path()).await;
        assert_eq!(third.files[0].targets, ["erp:/inbox/a.csv"], "{third:?}");
    }

    /// Round trips: a request a crashed run left before sending it is judged like any ready
    /// file: it goes first, and a later request awaiting the same response name waits for it.
    /// The plan judged only the files it delivers new: it said the later one is delivered.
    #[tokio::test]
    async fn a_resumed_request_holds_back_a_later_one_in_the_plan_as_in_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["outbox", "partner/inbox", "partner/outbox", "acks"] {
            std::fs::create_dir_all(d.join(f)).unwrap();
        }
        let yaml = "name: rt\nendpoints:\n  out: { type: local, root: outbox }\n  partner: { type: local, root: partner }\n  \
                    acks: { type: local, root: acks }\nsource: { endpoint: out, path: / }\n\
                    sinks: [ { endpoint: partner, path: /inbox } ]\nafter: { success: delete }\n\
                    response: { path: /outbox, name: \"{{stem}}.ack\", deadline: 1h, sinks: [ { endpoint: acks } ] }\n";
        let flow = crate::config::load_flow_str(yaml, &d.join("rt.yaml")).unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        std::fs::write(d.join("outbox/a.xml"), "<order/>").unwrap();
        // a.csv was being downloaded when a run crashed: nothing of it was sent.
        let mtime = to_millis(std::fs::metadata(d.join("outbox/a.csv")).unwrap().modified().unwrap());
        let rec = left_staging("a.csv", format!("p=a.csv|s=5|m={mtime}"), 5, mtime);
        let ledger = Ledger::in_memory().unwrap();
        ledger.put_file_with("rt", &rec, crate::ledger::Durability::Durable).unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(matches!(&p.files[0].action, Action::Resume { state: FileState::Staging, .. }), "{:?}", p.files[0]);
        let Action::Wait { why } = &p.files[1].action else { panic!("the run holds it back; the plan said {:?}", p.files[1]) };
        assert!(why.contains("would also answer /a.csv"), "{why}");
        let r = run(&flow, &ledger, d).await;
        let got = |path: &str| r.files.iter().find(|f| f.path.ends_with(path)).map(|f| (f.outcome, f.detail.clone())).unwrap();
        assert_eq!(got("a.csv").0, crate::engine::Outcome::Delivered, "{r:?}");
        assert_eq!(got("a.xml"), (crate::engine::Outcome::NotReady, why.clone()), "{r:?}");
    }

    /// Round trips with an identity without the path: a request held back (its response
    /// name awaited) is delivered by no one in this run, so a later file of its identity is
    /// no duplicate of it and is delivered. The plan called that one a duplicate.
    #[tokio::test]
    async fn a_held_back_request_makes_no_duplicate_of_a_later_file_in_the_plan_as_in_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["outbox", "partner/inbox", "partner/outbox", "acks"] {
            std::fs::create_dir_all(d.join(f)).unwrap();
        }
        let yaml = "name: rt\nendpoints:\n  out: { type: local, root: outbox }\n  partner: { type: local, root: partner }\n  \
                    acks: { type: local, root: acks }\nsource: { endpoint: out, path: /, identity: [size, mtime] }\n\
                    sinks: [ { endpoint: partner, path: /inbox } ]\nafter: { success: delete }\n\
                    response: { path: /outbox, name: \"{{stem}}.ack\", deadline: 1h, sinks: [ { endpoint: acks } ] }\n";
        let flow = crate::config::load_flow_str(yaml, &d.join("rt.yaml")).unwrap();
        let ledger = Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        assert_eq!(run(&flow, &ledger, d).await.counts.delivered, 1);
        // a.txt awaits a.ack as a.csv does; b.txt is the same file (size and time) by another name.
        std::fs::write(d.join("outbox/a.txt"), "order 2").unwrap();
        std::fs::write(d.join("outbox/b.txt"), "order 2").unwrap();
        let t = std::fs::metadata(d.join("outbox/a.txt")).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(d.join("outbox/b.txt")).unwrap().set_modified(t).unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(matches!(&p.files[0].action, Action::Wait { why } if why.contains("is awaited for /a.csv")), "{:?}", p.files[0]);
        assert!(matches!(&p.files[1].action, Action::Deliver { .. }), "the run delivers it; the plan said {:?}", p.files[1]);
        let r = run(&flow, &ledger, d).await;
        let got: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(got, [("/a.txt", crate::engine::Outcome::NotReady), ("/b.txt", crate::engine::Outcome::Delivered)], "{r:?}");
    }

    /// A sink name every file shares (`import.csv`) with an identity without the path: a file
    /// whose identity was delivered before (under another name) is skipped as a duplicate, so
    /// it takes no name and holds back no real file, in the plan as in the run. Before, the
    /// run counted it (older, it took the name) and held back the new file for nothing; the
    /// plan said the new file is delivered.
    #[tokio::test]
    async fn a_duplicate_of_an_earlier_delivery_holds_back_no_file_in_the_plan_as_in_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["src/in", "dst/inbox"] {
            std::fs::create_dir_all(d.join(f)).unwrap();
        }
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, identity: [size, mtime] }}\n\
             sinks: [ {{ endpoint: erp, path: /inbox, name: import.csv, if_exists: overwrite }} ]\nafter: {{ success: delete }}\n",
            d.join("src").display(),
            d.join("dst").display()
        );
        let flow = crate::config::load_flow_str(&text, &d.join("t.yaml")).unwrap();
        let ledger = Ledger::in_memory().unwrap();
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        let put = |name: &str, body: &str, at: SystemTime| {
            let p = d.join("src/in").join(name);
            std::fs::write(&p, body).unwrap();
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(at).unwrap();
        };
        put("a.csv", "first", old);
        assert_eq!(run(&flow, &ledger, d).await.counts.delivered, 1);
        // b.csv: a.csv again by another name (same size and time); c.csv: a new file, newer.
        put("b.csv", "first", old);
        put("c.csv", "second", old + std::time::Duration::from_secs(60));

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let action = |path: &str| &p.files.iter().find(|f| f.path == path).unwrap().action;
        assert!(matches!(action("/in/b.csv"), Action::AlreadyDone { why, .. } if why.starts_with("same identity as")), "{p:#?}");
        assert!(matches!(action("/in/c.csv"), Action::Deliver { .. }), "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        let got = |path: &str| r.files.iter().find(|f| f.path == path).map(|f| f.outcome).unwrap();
        assert_eq!((got("/in/b.csv"), got("/in/c.csv")), (crate::engine::Outcome::Skipped, crate::engine::Outcome::Delivered), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("dst/inbox/import.csv")).unwrap(), "second");
    }

    /// A flow from `dir/src/in` to `dir/dst/inbox` whose sink names every file `import.csv`
    /// (`if_exists: overwrite`), with `extra` YAML added.
    fn shared_name_flow(dir: &Path, extra: &str) -> Flow {
        for f in ["src/in", "dst/inbox"] {
            std::fs::create_dir_all(dir.join(f)).unwrap();
        }
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             sinks: [ {{ endpoint: erp, path: /inbox, name: import.csv, if_exists: overwrite }} ]\n{extra}",
            dir.join("src").display(),
            dir.join("dst").display()
        );
        crate::config::load_flow_str(&text, &dir.join("t.yaml")).unwrap()
    }

    /// Writes `dir/src/in/name` with `body`, modified `secs` seconds after an hour ago.
    fn put_at(dir: &Path, name: &str, body: &str, secs: u64) {
        let p = dir.join("src/in").join(name);
        std::fs::write(&p, body).unwrap();
        let at = SystemTime::now() - std::time::Duration::from_secs(3600) + std::time::Duration::from_secs(secs);
        std::fs::File::options().write(true).open(&p).unwrap().set_modified(at).unwrap();
    }

    /// A sink name every file shares (`import.csv`): a file a `check` step refuses from the
    /// listing (here: empty) is quarantined before any delivery, so it takes no name and
    /// holds back no real file, in the plan as in the run. Before, the run counted it (older,
    /// it took the name) and held back the good file for nothing; the plan delivered it.
    #[tokio::test]
    async fn a_file_quarantined_from_the_listing_holds_back_no_file_in_the_plan_as_in_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = shared_name_flow(
            d,
            "source: { endpoint: partner, path: /in }\nsteps:\n  - check: { non_empty: true }\n\
             quarantine: { endpoint: erp, path: /rejected }\n",
        );
        put_at(d, "a.csv", "", 0);
        put_at(d, "b.csv", "good", 60);
        let ledger = Ledger::in_memory().unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let action = |path: &str| &p.files.iter().find(|f| f.path == path).unwrap().action;
        assert!(matches!(action("/in/a.csv"), Action::Quarantine { .. }), "{p:#?}");
        assert!(matches!(action("/in/b.csv"), Action::Deliver { .. }), "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        let got = |path: &str| r.files.iter().find(|f| f.path == path).map(|f| f.outcome).unwrap();
        assert_eq!(
            (got("/in/a.csv"), got("/in/b.csv")),
            (crate::engine::Outcome::Quarantined, crate::engine::Outcome::Delivered),
            "{r:#?}"
        );
        assert_eq!(std::fs::read_to_string(d.join("dst/inbox/import.csv")).unwrap(), "good");
    }

    /// A sink name every file shares (`import.csv`) and two files of one identity (an identity
    /// without the path) in one run: both want the name, the older takes it and the newer
    /// waits (the next run skips it as a duplicate), in the plan as in the run. Before, the
    /// plan found the duplicate first, in listing order: it delivered the newer file (the
    /// first listed) and called the older one its duplicate, where the run delivers the older.
    #[tokio::test]
    async fn two_files_of_one_identity_wanting_one_name_are_planned_as_the_run_takes_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = shared_name_flow(d, "source: { endpoint: partner, path: /in, identity: [size] }\n");
        put_at(d, "a.csv", "new!", 60);
        put_at(d, "b.csv", "old!", 0);
        let ledger = Ledger::in_memory().unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let action = |path: &str| &p.files.iter().find(|f| f.path == path).unwrap().action;
        let Action::Wait { why } = action("/in/a.csv") else { panic!("the run holds it back; the plan said {p:#?}") };
        assert!(why.contains("the name /in/b.csv takes in this run"), "{why}");
        assert!(matches!(action("/in/b.csv"), Action::Deliver { .. }), "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        let got = |path: &str| r.files.iter().find(|f| f.path == path).map(|f| (f.outcome, f.detail.clone())).unwrap();
        assert_eq!(got("/in/a.csv"), (crate::engine::Outcome::NotReady, why.clone()), "{r:#?}");
        assert_eq!(got("/in/b.csv").0, crate::engine::Outcome::Delivered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("dst/inbox/import.csv")).unwrap(), "old!");
    }

    /// A flow from `dir/src/in` (recursive, one file at a time) to `dir/dst/inbox`, sources
    /// moved to `/done`, with `extra` YAML added.
    fn moving_flow(dir: &Path, include: &str, extra: &str) -> Flow {
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, recursive: true, include: ['{include}'] }}\n\
             sinks: [ {{ endpoint: erp, path: /inbox, name: '{{{{rel_dir}}}}-{{{{name}}}}' }} ]\nconcurrency: 1\n{extra}",
            dir.join("src").display(),
            dir.join("dst").display()
        );
        crate::config::load_flow_str(&text, &dir.join("t.yaml")).unwrap()
    }

    fn put(dir: &Path, files: &[(&str, &str)]) {
        for (p, body) in files {
            let p = dir.join("src").join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
    }

    fn then(f: &PlannedFile) -> &str {
        match &f.action {
            Action::Deliver { then, .. } => then,
            other => panic!("{}: {other:?}", f.path),
        }
    }

    /// A done file is moved into the `move_to` folder after its data file, to a free name
    /// there: a later file of the run wanting that name takes the next one. The plan did not
    /// count the done files' names, and named the one the done file takes.
    #[tokio::test]
    async fn a_name_a_done_file_takes_in_the_move_to_folder_is_counted_in_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let flow = moving_flow(dir.path(), "**/*", "after: { success: { move_to: /done } }\n");
        let mut flow = flow;
        flow.source.ready.done_file = Some(crate::template::NameTemplate::new("{{name}}.ok").unwrap());
        put(dir.path(), &[("in/a/x.csv", "a\n"), ("in/a/x.csv.ok", ""), ("in/b/x.csv.ok", "b\n"), ("in/b/x.csv.ok.ok", "")]);
        let ledger = Ledger::in_memory().unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let paths: Vec<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/in/a/x.csv", "/in/b/x.csv.ok"]);
        assert_eq!(then(&p.files[0]), "move the source to /done/x.csv");
        assert_eq!(then(&p.files[1]), "move the source to /done/x.csv-1.ok (/done/x.csv.ok is taken)");
        let report = run(&flow, &ledger, dir.path()).await;
        assert_eq!(report.counts.delivered, 2, "{report:?}");
        let read = |p: &str| std::fs::read_to_string(dir.path().join("src/done").join(p)).unwrap();
        assert_eq!(
            (read("x.csv"), read("x.csv.ok"), read("x.csv-1.ok"), read("x.csv.ok.ok")),
            ("a\n".into(), "".into(), "b\n".into(), "".into())
        );
    }

    /// `after.failure: move_to` the folder `after.success` moves to: a file quarantined by a
    /// check step takes its name there before a later file of the run is moved. The plan did
    /// not count it, and named the quarantined file's name for the later one.
    #[tokio::test]
    async fn a_name_a_quarantined_file_takes_in_the_move_to_folder_is_counted_in_the_plan() {
        let dir = tempfile::tempdir().unwrap();
        let flow = moving_flow(
            dir.path(),
            "**/*.csv",
            "steps:\n  - check: { non_empty: true }\nquarantine: { endpoint: erp, path: /rejected }\n\
             after: { success: { move_to: /done }, failure: { move_to: /done } }\n",
        );
        put(dir.path(), &[("in/a/x.csv", ""), ("in/b/x.csv", "b\n")]);
        let ledger = Ledger::in_memory().unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(matches!(&p.files[0].action, Action::Quarantine { .. }), "{:?}", p.files[0]);
        assert_eq!(then(&p.files[1]), "move the source to /done/x-1.csv (/done/x.csv is taken)");
        let report = run(&flow, &ledger, dir.path()).await;
        assert_eq!((report.quarantined, report.counts.delivered), (1, 1), "{report:?}");
        let read = |p: &str| std::fs::read_to_string(dir.path().join("src/done").join(p)).unwrap();
        assert_eq!((read("x.csv"), read("x-1.csv")), ("".into(), "b\n".into()));
    }

    /// [`flow`] with an identity without the path: the size and the time.
    fn size_and_time_flow(dir: &Path, extra: &str) -> Flow {
        let mut flow = flow(dir, extra);
        flow.source.identity = crate::config::flow::Identity { path: false, size: true, mtime: true, sha256: false };
        flow
    }

    /// An identity without the path: a file a crashed run left in flight is resumed at its
    /// turn and records its delivery, so a later file of its identity is skipped as its
    /// duplicate, in the plan as in the run. The plan counted only a file delivered new as
    /// the first of its identity: it said the later file is delivered.
    #[tokio::test]
    async fn a_resumed_file_makes_a_later_file_of_its_identity_a_duplicate_in_the_plan_as_in_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = size_and_time_flow(d, "after: { success: delete }\n");
        put(d, &[("in/a.csv", "order"), ("in/b.csv", "order")]);
        let t = std::fs::metadata(d.join("src/in/a.csv")).unwrap().modified().unwrap();
        std::fs::File::options().write(true).open(d.join("src/in/b.csv")).unwrap().set_modified(t).unwrap();
        // a.csv was being downloaded when a run crashed.
        let rec = left_staging("in/a.csv", format!("s=5|m={}", to_millis(t)), 5, to_millis(t));
        let ledger = Ledger::in_memory().unwrap();
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let action = |path: &str| &p.files.iter().find(|f| f.path == path).unwrap().action;
        assert!(matches!(action("/in/a.csv"), Action::Resume { state: FileState::Staging, .. }), "{p:#?}");
        let Action::AlreadyDone { why, then } = action("/in/b.csv") else { panic!("the run skips it; the plan said {p:#?}") };
        assert_eq!((why.as_str(), then.as_deref()), ("same identity as /in/a.csv, delivered first by this run", Some("delete the source")));
        let r = run(&flow, &ledger, d).await;
        let got = |path: &str| r.files.iter().find(|f| f.path == path).map(|f| (f.outcome, f.detail.clone())).unwrap();
        assert_eq!(got("/in/a.csv").0, crate::engine::Outcome::Delivered, "{r:#?}");
        let (outcome, detail) = got("/in/b.csv");
        assert_eq!(outcome, crate::engine::Outcome::Skipped, "{r:#?}");
        assert!(detail.starts_with("same identity as /in/a.csv delivered in run ") && detail.ends_with("; source deleted"), "{detail}");
        assert!(!d.join("src/in/b.csv").exists());
    }

    /// The file a duplicate is the same as, named in the plan as in the run's report: as the
    /// listing names it (`/in/a.csv`), the run's report line of that very file too. Before, the
    /// run named it by the ledger's key (`in/a.csv`), the plan by the listing's path.
    #[tokio::test]
    async fn the_first_file_of_an_identity_is_named_alike_in_the_plan_and_the_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = size_and_time_flow(d, "");
        let at = SystemTime::now() - std::time::Duration::from_secs(3600);
        let same = |name: &str| {
            put(d, &[(&format!("in/{name}"), "order")]);
            std::fs::File::options().write(true).open(d.join("src/in").join(name)).unwrap().set_modified(at).unwrap();
        };
        same("a.csv");
        same("b.csv");
        let first = |why: &str| why.strip_prefix("same identity as ").and_then(|w| w.split([' ', ',']).next()).map(str::to_string);
        let ledger = Ledger::in_memory().unwrap();

        // b.csv, the duplicate of a.csv delivered first by this run.
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let Action::AlreadyDone { why, .. } = &p.files[1].action else { panic!("{p:#?}") };
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.files[0].path.as_str(), r.files[0].outcome), ("/in/a.csv", crate::engine::Outcome::Delivered), "{r:#?}");
        assert_eq!(r.files[1].outcome, crate::engine::Outcome::Skipped, "{r:#?}");
        assert_eq!(first(why), first(&r.files[1].detail), "plan: {why}; run: {}", r.files[1].detail);
        assert_eq!(first(why).as_deref(), Some(r.files[0].path.as_str()));

        // c.csv, the duplicate of a.csv delivered by an earlier run: the plan says what the run says.
        same("c.csv");
        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let c = p.files.iter().find(|f| f.path == "/in/c.csv").unwrap();
        let Action::AlreadyDone { why, .. } = &c.action else { panic!("{p:#?}") };
        let r = run(&flow, &ledger, d).await;
        let run_c = r.files.iter().find(|f| f.path == "/in/c.csv").unwrap();
        assert_eq!((run_c.outcome, &run_c.detail), (crate::engine::Outcome::Skipped, why), "{r:#?}");
        assert_eq!(first(why).as_deref(), Some("/in/a.csv"));
    }

    /// A file refused by its steps, its run killed while putting it aside (`quarantining`, no
    /// copy made yet), its staged copy gone since (the staging folder emptied), and the flow's
    /// steps changed meanwhile to accept it: the next run quarantines it as decided (the same
    /// bytes, downloaded again), as the plan says. Before, the run took it as a new file, ran
    /// the steps again and delivered it, where the plan said it is being quarantined. Other
    /// bytes at the source (rewritten with the same size and time) were never refused: taken as
    /// a new file.
    #[tokio::test]
    async fn a_file_left_quarantining_without_its_staged_copy_is_quarantined_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let q = "quarantine: { endpoint: erp, path: /rejected }\n";
        let refusing = flow(d, &format!("steps:\n  - check: {{ magic: [zip] }}\n{q}"));
        let accepting = flow(d, &format!("steps:\n  - check: {{ non_empty: true }}\n{q}"));
        put(d, &[("in/a.csv", "a,1\n")]);
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&refusing, &ledger, d).await.quarantined, 1);
        // Killed after the verdict, before the copy: the copy and the staging folder gone.
        let copy = d.join("dst/rejected/a.csv");
        let reports = ["a.csv.report.json", "a.csv.report.txt"].map(|r| d.join("dst/rejected").join(r));
        for f in std::iter::once(&copy).chain(&reports) {
            std::fs::remove_file(f).unwrap();
        }
        let mut rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        rec.state = FileState::Quarantining;
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        let _ = std::fs::remove_dir_all(d.join("staging"));

        let p = plan(&accepting, Some(&ledger), SystemTime::now(), None).await.unwrap();
        let Action::Resume { state, then: None, copy: planned, .. } = &p.files[0].action else { panic!("{p:#?}") };
        let said = resumed_quarantine(&accepting, *state, planned.as_ref()).unwrap();
        assert!(said.starts_with("then quarantined to erp:/rejected/a.csv as decided before"), "{said}");
        let r = run(&accepting, &ledger, d).await;
        assert_eq!((r.files[0].outcome, r.counts.delivered), (crate::engine::Outcome::Quarantined, 0), "{r:#?}");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "a,1\n");
        assert!(!d.join("dst/inbox/a.csv").exists());
        assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Quarantined);

        // Other bytes of the same size and time, left quarantining: the steps judge them.
        let t = std::fs::metadata(d.join("src/in/a.csv")).unwrap().modified().unwrap();
        put(d, &[("in/a.csv", "b,2\n")]);
        std::fs::File::options().write(true).open(d.join("src/in/a.csv")).unwrap().set_modified(t).unwrap();
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        let r = run(&accepting, &ledger, d).await;
        assert_eq!(r.files[0].outcome, crate::engine::Outcome::Delivered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("dst/inbox/a.csv")).unwrap(), "b,2\n");
    }

    /// `wharf plan` names the copy a file left `quarantining` is put aside as, the one the run
    /// confirms or writes (`quarantine::resumed_copy`, as `put_aside`): the copy made before
    /// the crash, whole, is confirmed and not made again; its name taken by somebody else's
    /// file since, the run writes the next free one. Before, the plan named the quarantine
    /// folder alone.
    #[tokio::test]
    async fn a_file_left_quarantining_is_planned_with_the_copy_the_run_confirms_or_writes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\n");
        put(d, &[("in/a.csv", "a,1\n")]);
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
        for (theirs, to, made) in [(false, "erp:/rejected/a.csv", true), (true, "erp:/rejected/a-1.csv", false)] {
            // Killed while putting it aside: the copy made (or the name taken since).
            let mut rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
            rec.state = FileState::Quarantining;
            ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
            if theirs {
                std::fs::write(d.join("dst/rejected/a.csv"), "somebody else's\n").unwrap();
            }
            let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
            let [PlannedFile { action: Action::Resume { state, copy, .. }, .. }] = &p.files[..] else { panic!("{p:#?}") };
            assert_eq!(copy, &Some(PlannedCopy { to: to.to_string(), made }));
            let said = resumed_quarantine(&flow, *state, copy.as_ref()).unwrap();
            assert!(said.starts_with(&format!("then quarantined to {to} as decided before")), "{said}");
            let r = run(&flow, &ledger, d).await;
            let [f] = &r.files[..] else { panic!("{r:#?}") };
            assert_eq!((f.outcome, &f.targets[..]), (crate::engine::Outcome::Quarantined, &[to.to_string()][..]), "{r:#?}");
        }
        assert_eq!(std::fs::read_to_string(d.join("dst/rejected/a.csv")).unwrap(), "somebody else's\n");
        assert_eq!(std::fs::read_to_string(d.join("dst/rejected/a-1.csv")).unwrap(), "a,1\n");
    }

    /// A file left `quarantining` is disposed of per `after.failure` (here: kept) once put
    /// aside, not per `after.success`: it takes no name in the `move_to` folder, and a later
    /// file of the same name is moved to that name, in the plan as in the run. Before, the plan
    /// counted the name as taken and moved the later file to the next one. Nor does it write
    /// to a sink: its target there already (`if_exists: fail`) does not make it fail. Before,
    /// the plan looked at its targets as a delivery's, and said it fails.
    #[tokio::test]
    async fn a_file_left_quarantining_takes_no_name_in_the_success_move_to_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = moving_flow(
            d,
            "**/*.csv",
            "steps:\n  - check: { non_empty: true }\nquarantine: { endpoint: erp, path: /rejected }\n\
             after: { success: { move_to: /done } }\n",
        );
        put(d, &[("in/a/x.csv", "")]);
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
        // Killed after the verdict, before the copy.
        std::fs::remove_dir_all(d.join("dst/rejected")).unwrap();
        let mut rec = ledger.file("t", "in/a/x.csv").unwrap().unwrap();
        rec.state = FileState::Quarantining;
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        put(d, &[("in/b/x.csv", "b\n")]);
        std::fs::create_dir_all(d.join("dst/inbox")).unwrap();
        std::fs::write(d.join("dst/inbox/a-x.csv"), "the partner's").unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
        assert!(
            matches!(&p.files[0].action, Action::Resume { state: FileState::Quarantining, then: None, writes, .. } if writes.is_empty()),
            "{p:#?}"
        );
        assert_eq!(then(&p.files[1]), "move the source to /done/x.csv");
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.quarantined, r.counts.delivered), (1, 1), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("src/done/x.csv")).unwrap(), "b\n");
        assert!(d.join("src/in/a/x.csv").exists(), "after.failure: keep");
    }

    /// A run killed in `quarantine::put_aside` after `after.failure` deleted (or moved) the
    /// source, before the file was recorded quarantined, leaves it `quarantining` with its
    /// copy recorded and made, and its source no longer listed. The next run records it
    /// quarantined (`wharf quarantine list`/`reprocess` see it; `release` keeps the last copy),
    /// saying it was finished after a crash, as the plan says. Before, neither ever looked at
    /// it again: it stayed `quarantining` for ever.
    #[tokio::test]
    async fn a_file_left_quarantining_with_its_source_gone_is_recorded_quarantined_as_planned() {
        for (after, fate) in [("delete", SourceFate::Deleted), ("{ move_to: /failed }", SourceFate::Moved)] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let flow = flow(
                d,
                &format!(
                    "steps:\n  - check: {{ magic: [zip] }}\nquarantine: {{ endpoint: erp, path: /rejected }}\nafter: {{ failure: {after} }}\n"
                ),
            );
            put(d, &[("in/a.csv", "a,1\n")]);
            let ledger = Ledger::in_memory().unwrap();
            assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
            assert!(!d.join("src/in/a.csv").exists());
            // Killed after after.failure, before `quarantined` was stored: its disposal lost too.
            let mut rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
            (rec.state, rec.source_fate, rec.disposed_to) = (FileState::Quarantining, SourceFate::Kept, None);
            ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();

            let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
            let [f] = &p.files[..] else { panic!("{p:#?}") };
            let Action::Quarantine { why } = &f.action else { panic!("{p:#?}") };
            assert_eq!(f.path, "/in/a.csv");
            assert!(why.starts_with("quarantined to erp:/rejected/a.csv: "), "{why}");
            assert!(why.ends_with("; finished after a crash (the copy had been made before it)"), "{why}");
            let r = run(&flow, &ledger, d).await;
            let [f] = &r.files[..] else { panic!("{r:#?}") };
            assert_eq!((f.outcome, &f.detail, r.quarantined, r.counts.seen), (crate::engine::Outcome::Quarantined, why, 1, 1), "{r:#?}");
            assert_eq!(f.targets, ["erp:/rejected/a.csv"]);
            let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
            assert_eq!((rec.state, rec.source_fate), (FileState::Quarantined, fate));
            let q = ledger.file_result("t", "in/a.csv").unwrap().unwrap().quarantine.unwrap();
            assert_eq!(q.copy.as_deref(), Some("rejected/a.csv"));
            if fate == SourceFate::Deleted {
                let e = crate::engine::quarantine::release(&flow, &ledger, "/in/a.csv", None, false, &d.join("staging")).await.unwrap_err();
                assert!(matches!(e, crate::engine::quarantine::QuarantineError::LastCopy { .. }), "{e}");
            }
            // Finished: the next run has nothing to do with it.
            assert!(run(&flow, &ledger, d).await.files.is_empty());
        }
    }

    /// What the ledger holds of `in/a.csv` when a run on this thread reaches the halt point
    /// `point` (where it is killed in a crash test), until the guard is dropped.
    fn held_at(
        ledger: &std::sync::Arc<Ledger>,
        point: &'static str,
    ) -> (std::rc::Rc<std::cell::RefCell<Option<FileRecord>>>, crate::engine::halt::hook::Guard) {
        let left = std::rc::Rc::new(std::cell::RefCell::new(None));
        let (l, held) = (ledger.clone(), left.clone());
        let hook = crate::engine::halt::hook::set(move |p| {
            if p == point {
                *held.borrow_mut() = l.file("t", "in/a.csv").unwrap();
            }
        });
        (left, hook)
    }

    /// A run killed in `quarantine::put_aside` after `after.failure: move_to` moved the source
    /// (`quarantine_disposed`): the move target was recorded before the move, so the next run
    /// records where the source went (`disposed_to`, here the free name `a-1.csv`, `a.csv`
    /// being taken), and the plan says it beforehand. Before, the record said `source moved
    /// to /failed/ (its name there was not recorded)` and named no file. Killed between the
    /// record and the move (`quarantine_disposing`), the source is still listed: the next run
    /// moves it to the name recorded.
    #[tokio::test]
    async fn a_file_left_quarantining_after_its_source_was_moved_is_recorded_with_where_it_went() {
        for point in ["quarantine_disposed", "quarantine_disposing"] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let flow = flow(
                d,
                "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
            );
            put(d, &[("in/a.csv", "a,1\n"), ("failed/a.csv", "yesterday's\n")]);
            let ledger = std::sync::Arc::new(Ledger::in_memory().unwrap());
            let (left, hook) = held_at(&ledger, point);
            assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
            drop(hook);
            let rec = left.borrow_mut().take().expect("halt point reached");
            assert_eq!(
                (rec.state, rec.source_fate, rec.disposed_to.as_deref()),
                (FileState::Quarantining, SourceFate::Kept, Some("failed/a-1.csv"))
            );
            ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
            let moved = d.join("src/failed/a-1.csv");
            if point == "quarantine_disposing" {
                // Not moved yet when it was killed.
                std::fs::rename(&moved, d.join("src/in/a.csv")).unwrap();
                let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
                assert!(matches!(p.files[0].action, Action::Resume { state: FileState::Quarantining, .. }), "{p:#?}");
                let r = run(&flow, &ledger, d).await;
                assert_eq!(r.quarantined, 1, "{r:#?}");
                assert!(r.files[0].detail.ends_with("; source moved to /failed/a-1.csv"), "{}", r.files[0].detail);
            } else {
                let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
                let [f] = &p.files[..] else { panic!("{p:#?}") };
                let Action::Quarantine { why } = &f.action else { panic!("{p:#?}") };
                assert!(
                    why.ends_with("; source moved to /failed/a-1.csv; finished after a crash (the copy had been made before it)"),
                    "{why}"
                );
                let r = run(&flow, &ledger, d).await;
                assert_eq!((r.quarantined, &r.files[0].detail), (1, why), "{r:#?}");
            }
            let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
            assert_eq!(
                (rec.state, rec.source_fate, rec.disposed_to.as_deref()),
                (FileState::Quarantined, SourceFate::Moved, Some("failed/a-1.csv"))
            );
            assert_eq!(std::fs::read_to_string(&moved).unwrap(), "a,1\n");
            assert_eq!(std::fs::read_to_string(d.join("src/failed/a.csv")).unwrap(), "yesterday's\n");
        }
    }

    /// A run resuming a file left `quarantining` with its `after.failure: move_to` name
    /// recorded (killed at `quarantine_disposing`), the partner writing a new version of the
    /// file before the source is moved: what is there now was not refused, and is not moved
    /// into `failed/` as if it were, as a delivered file's source is not disposed of once
    /// changed (`lifecycle::changed_since_read`). It stays at the source, the file is recorded
    /// quarantined with its source kept, and the next run takes the new version (here accepted,
    /// and delivered). Before, it was moved to the name recorded, and never delivered.
    #[tokio::test]
    async fn a_new_version_written_while_a_resumed_quarantine_moves_its_source_stays_for_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(
            d,
            "steps:\n  - check: { non_empty: true }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
        );
        put(d, &[("in/a.csv", "")]);
        let ledger = std::sync::Arc::new(Ledger::in_memory().unwrap());
        let (left, hook) = held_at(&ledger, "quarantine_disposing");
        assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
        drop(hook);
        let rec = left.borrow_mut().take().expect("halt point reached");
        assert_eq!(rec.disposed_to.as_deref(), Some("failed/a.csv"));
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        // Killed before the move.
        let source = d.join("src/in/a.csv");
        std::fs::rename(d.join("src/failed/a.csv"), &source).unwrap();
        // The partner's new version, written as the resumed run puts the file aside.
        let partner = source.clone();
        let hook = crate::engine::halt::hook::set(move |p| {
            if p == "quarantining" {
                std::fs::write(&partner, "b,2\n").unwrap();
            }
        });
        let r = run(&flow, &ledger, d).await;
        drop(hook);
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, crate::engine::Outcome::Quarantined, "{r:#?}");
        assert!(
            f.detail
                .ends_with("; source kept: it changed while it was moved (4 bytes now, 0 when read); the next run takes it as a new file"),
            "{}",
            f.detail
        );
        assert_eq!(std::fs::read_to_string(&source).unwrap(), "b,2\n");
        assert!(!d.join("src/failed/a.csv").exists(), "not moved as the file refused");
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!((rec.state, rec.source_fate, rec.disposed_to), (FileState::Quarantined, SourceFate::Kept, None));
        assert_eq!(std::fs::read_to_string(d.join("dst/rejected/a.csv")).unwrap(), "", "the copy is of the version refused");
        // The next run takes the new version.
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.quarantined), (1, 0), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("dst/inbox/a.csv")).unwrap(), "b,2\n");
    }

    /// A run killed in `lifecycle::fail` as `after.failure: move_to` moves the source of a
    /// file failed for good (its sink target taken): the move target is recorded before the move, the
    /// file still in flight. Killed after the move (`failure_disposed`), the next run records
    /// it failed, its source moved to the name recorded (`a-1.csv`, `a.csv` being taken),
    /// saying it was finished after a crash, as the plan says beforehand; moved on from there
    /// since, its fate is unknown. Before, it stayed in flight for ever, its source gone.
    /// Killed between the record and the move (`failure_disposing`), the source is still
    /// listed: the next run takes it again, the name recorded dropped, and failing again moves
    /// it to the first free name then (`a-1.csv` again, `a.csv` still taken).
    #[tokio::test]
    async fn a_file_left_failing_after_its_source_was_moved_is_recorded_failed_with_where_it_went() {
        for (point, removed) in [("failure_disposed", false), ("failure_disposed", true), ("failure_disposing", false)] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let flow = flow(d, "after: { failure: { move_to: /failed } }\n");
            put(d, &[("in/a.csv", "a,1\n"), ("failed/a.csv", "yesterday's\n")]);
            // Failed for good: its target on the sink is taken (`if_exists: fail`).
            std::fs::create_dir_all(d.join("dst/inbox")).unwrap();
            std::fs::write(d.join("dst/inbox/a.csv"), "someone else's\n").unwrap();
            let ledger = std::sync::Arc::new(Ledger::in_memory().unwrap());
            let (left, hook) = held_at(&ledger, point);
            let r = run(&flow, &ledger, d).await;
            assert_eq!(r.files[0].outcome, crate::engine::Outcome::Failed, "{r:#?}");
            drop(hook);
            let rec = left.borrow_mut().take().expect("halt point reached");
            assert!(rec.state.in_flight(), "{rec:?}");
            assert_eq!((rec.source_fate, rec.disposed_to.as_deref()), (SourceFate::Kept, Some("failed/a-1.csv")));
            ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
            let moved = d.join("src/failed/a-1.csv");
            if point == "failure_disposing" {
                // Not moved yet when it was killed.
                std::fs::rename(&moved, d.join("src/in/a.csv")).unwrap();
                let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
                assert!(
                    matches!(&p.files[..], [PlannedFile { action: Action::Fail { why }, .. }] if why.ends_with("the source is moved to /failed/")),
                    "{p:#?}"
                );
                let r = run(&flow, &ledger, d).await;
                assert_eq!(r.files[0].outcome, crate::engine::Outcome::Failed, "{r:#?}");
                assert!(r.files[0].detail.ends_with("; source moved to /failed/a-1.csv"), "{}", r.files[0].detail);
            } else {
                if removed {
                    std::fs::remove_file(&moved).unwrap();
                }
                let p = plan(&flow, Some(&ledger), SystemTime::now(), None).await.unwrap();
                let [f] = &p.files[..] else { panic!("{p:#?}") };
                let Action::Fail { why } = &f.action else { panic!("{p:#?}") };
                let fate = if removed {
                    "; source no longer at /in/a.csv, nor at /failed/a-1.csv, the name recorded for it in the after.failure folder (moved or removed since)"
                } else {
                    "; source moved to /failed/a-1.csv"
                };
                assert!(why.ends_with(&format!("{fate}; finished after a crash (it had failed before it)")), "{why}");
                let r = run(&flow, &ledger, d).await;
                let [f] = &r.files[..] else { panic!("{r:#?}") };
                assert_eq!((f.outcome, &f.detail, r.counts.seen), (crate::engine::Outcome::Failed, why, 1), "{r:#?}");
            }
            let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
            let fate = if removed { (SourceFate::Unknown, None) } else { (SourceFate::Moved, Some("failed/a-1.csv")) };
            assert_eq!((rec.state, rec.source_fate, rec.disposed_to.as_deref()), (FileState::Failed, fate.0, fate.1));
            if !removed {
                assert_eq!(std::fs::read_to_string(&moved).unwrap(), "a,1\n");
            }
            assert_eq!(std::fs::read_to_string(d.join("src/failed/a.csv")).unwrap(), "yesterday's\n");
            // Finished: the next run has nothing to do with it.
            assert!(run(&flow, &ledger, d).await.files.is_empty());
        }
    }

    /// The same crash, but the copy is not there (removed since, or never made before the
    /// source went), nor its staged copy whole (here cut short): the run says so as a failure
    /// naming the copy, where else the file may be, and what the operator can do, and keeps it
    /// in flight (its staged copy is not swept), as the plan says; the copy put back, the next
    /// run records it quarantined. Nothing to put back, `wharf quarantine release` gives it up:
    /// refused while a run can finish it, and after that no run fails it again. Before, no
    /// command could, short of editing the ledger.
    #[tokio::test]
    async fn a_file_left_quarantining_with_its_source_and_copy_gone_fails_loudly_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(
            d,
            "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
        );
        put(d, &[("in/a.csv", "a,1\n")]);
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
        let mut rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        rec.state = FileState::Quarantining;
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        let copy = d.join("dst/rejected/a.csv");
        std::fs::rename(&copy, d.join("aside")).unwrap();
        let staging = d.join("staging");
        let staged = crate::engine::stage::staging_path(&staging, "t", &RemotePath::parse("in/a.csv").unwrap());
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        std::fs::write(&staged, "a,").unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), Some(&staging)).await.unwrap();
        let [f] = &p.files[..] else { panic!("{p:#?}") };
        let Action::Fail { why } = &f.action else { panic!("{p:#?}") };
        assert!(why.contains("the source is no longer at /in/a.csv, but its quarantine copy erp:/rejected/a.csv is not there"), "{why}");
        assert!(why.contains("look for it in the after.failure folder /failed/ and the quarantine folder erp:/rejected (a copy cut short is .a.csv.t.part)"), "{why}");
        assert!(
            why.contains(&format!(
                "and its staged copy {} (kept while the file is in flight; not the bytes refused, by the size",
                staged.display()
            )),
            "{why}"
        );
        assert!(why.ends_with("else `wharf quarantine release t /in/a.csv` gives it up (forgets it)"), "{why}");
        for _ in 0..2 {
            let r = run(&flow, &ledger, d).await;
            let [f] = &r.files[..] else { panic!("{r:#?}") };
            assert_eq!((f.outcome, f.error_kind, r.counts.failed), (crate::engine::Outcome::Failed, Some(ErrorKind::NotFound), 1));
            assert_eq!(&f.detail, why);
            let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
            assert_eq!(rec.state, FileState::Quarantining);
            assert_eq!(rec.last_error.map(|e| e.message), Some(f.detail.clone()));
            assert!(staged.exists(), "the staged copy stays while the file is in flight");
        }
        // Refused while a run finishes it: here the copy is back.
        std::fs::rename(d.join("aside"), &copy).unwrap();
        let e = crate::engine::quarantine::release(&flow, &ledger, "/in/a.csv", None, false, &staging).await.unwrap_err();
        assert!(
            matches!(&e, crate::engine::quarantine::QuarantineError::BeingQuarantined { what, .. } if what.contains("erp:/rejected/a.csv is there")),
            "{e}"
        );
        assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Quarantining);
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.files[0].outcome, crate::engine::Outcome::Quarantined, "{r:#?}");
        assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Quarantined);
        assert!(!staged.exists());

        // Left so again, nothing to put back: given up.
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        std::fs::remove_file(&copy).unwrap();
        assert_eq!(run(&flow, &ledger, d).await.counts.failed, 1);
        let released = crate::engine::quarantine::release(&flow, &ledger, "/in/a.csv", None, false, &staging).await.unwrap();
        assert!(released.removed.is_empty() && released.left.is_none(), "{released:?}");
        assert!(ledger.file("t", "in/a.csv").unwrap().is_none());
        assert!(run(&flow, &ledger, d).await.files.is_empty(), "no run fails it again");
    }

    /// The same crash, the copy not there, but its staged copy whole (the size and SHA-256
    /// recorded with the verdict): the run puts it aside from that, and records it
    /// quarantined with where the source went, as the plan says (the staging folder given).
    /// Before, it failed on every run, while the bytes refused were at hand.
    #[tokio::test]
    async fn a_file_left_quarantining_with_its_copy_gone_is_put_aside_from_its_staged_copy_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(
            d,
            "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
        );
        put(d, &[("in/a.csv", "a,1\n")]);
        let ledger = std::sync::Arc::new(Ledger::in_memory().unwrap());
        // Killed once the source was moved, before the file was recorded quarantined.
        let (left, hook) = held_at(&ledger, "quarantine_disposed");
        assert_eq!(run(&flow, &ledger, d).await.quarantined, 1);
        drop(hook);
        let rec = left.borrow_mut().take().expect("halt point reached");
        ledger.put_file_with("t", &rec, crate::ledger::Durability::Durable).unwrap();
        // The copy lost since, the staged copy kept.
        for f in ["a.csv", "a.csv.report.json", "a.csv.report.txt"] {
            std::fs::remove_file(d.join("dst/rejected").join(f)).unwrap();
        }
        let staging = d.join("staging");
        let staged = crate::engine::stage::staging_path(&staging, "t", &RemotePath::parse("in/a.csv").unwrap());
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        std::fs::write(&staged, "a,1\n").unwrap();

        let p = plan(&flow, Some(&ledger), SystemTime::now(), Some(&staging)).await.unwrap();
        let [f] = &p.files[..] else { panic!("{p:#?}") };
        let Action::Quarantine { why } = &f.action else { panic!("{p:#?}") };
        assert!(why.starts_with("quarantined to erp:/rejected/a.csv: "), "{why}");
        assert!(
            why.ends_with(
                "; source moved to /failed/a.csv; finished after a crash from its staged copy (no copy made before it was found)"
            ),
            "{why}"
        );
        let e = crate::engine::quarantine::release(&flow, &ledger, "/in/a.csv", None, false, &staging).await.unwrap_err();
        assert!(matches!(e, crate::engine::quarantine::QuarantineError::BeingQuarantined { .. }), "{e}");
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(
            (f.outcome, &f.detail, &f.targets[..]),
            (crate::engine::Outcome::Quarantined, why, &["erp:/rejected/a.csv".to_string()][..])
        );
        assert_eq!(std::fs::read_to_string(d.join("dst/rejected/a.csv")).unwrap(), "a,1\n");
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!(
            (rec.state, rec.source_fate, rec.disposed_to.as_deref()),
            (FileState::Quarantined, SourceFate::Moved, Some("failed/a.csv"))
        );
        assert!(!staged.exists());
        // Finished: the next run has nothing to do with it.
        assert!(run(&flow, &ledger, d).await.files.is_empty());
    }

    /// `--json` names a resumed file's state as it did when the plan carried it as text: the
    /// ledger's name (`quarantining`), with `then` left out where it is `None`.
    #[test]
    fn a_resumed_state_is_written_in_json_as_the_ledger_names_it() {
        let states = [
            FileState::Claimed,
            FileState::Staging,
            FileState::Staged,
            FileState::Processed,
            FileState::Delivering,
            FileState::Delivered,
            FileState::Disposing,
            FileState::Quarantining,
        ];
        for state in states {
            let f = PlannedFile::new("/in/a.csv".into(), 3, Action::Resume { state, writes: vec![], then: None, copy: None });
            let json = serde_json::to_value(&f).unwrap();
            assert_eq!(json, serde_json::json!({ "path": "/in/a.csv", "size": 3, "action": "resume", "state": state.as_str() }));
        }
    }
}
