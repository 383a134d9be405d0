//! The per-file lifecycle (design §5): the only per-file loop in wharf.
//!
//! ```text
//! claimed ─► staging ─► staged ─┬──────────────────────────► delivering{targets} ─► delivered ─► disposing ─► done
//!                               └─(steps)─► processed ───────┘
//!                                        └► quarantining{copy} ─► quarantined (copy + reports, after.failure)
//!    any step ─► (transient) stays put, retried next run │ (permanent) failed + after.failure
//!    before delivery, the source gone ─► vanished (skipped, not failed)
//!    after some sinks confirmed, the source and its staged copy gone ─► failed (`lost_source`)
//! ```
//! Each arrow is a ledger write. Those announcing a side effect that cannot be checked
//! afterwards are durable: the start of a download that may be resumed (the version a
//! staging file belongs to; a file of at most 1 MiB is always downloaded from scratch),
//! the delivery target before the upload's rename, a trigger file, moving or deleting the
//! source, and `done`. The others are lazy ([`Durability::Lazy`], made durable by
//! the next durable write): losing one in a crash only sends the file back to the last durable
//! state, which resumes from what is on disk (the staged file, the recorded target).
//! A run that finds a record in flight for the same
//! file version resumes from its state: the staged prefix is kept, the steps' output is reused
//! (or made again from the staged file), sinks already confirmed are not delivered again, a
//! recorded target that already holds the file counts as delivered, a recorded quarantine
//! copy is checked before uploading again, and a recorded move target tells whether the
//! source was already moved.
//!
//! This file holds the state machine itself; [`delivery`] the uploads to the sinks,
//! [`failure`] what a failed file becomes, [`versions`] the checks that the file is still the
//! version listed (or read).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::Flow;
use crate::config::flow::{Disposition, IfExists};
use crate::endpoint::{DynEndpoint, Endpoint, Entry, ErrorKind, RemotePath};
use crate::ledger::{
    Delivery, DoneRecord, Durability, ErrorRecord, FileRecord, FileState, FileWarning, Ledger, LedgerError, Millis, QuarantineRecord,
    Replaced, Snapshot, SourceFate, Transition, now_millis,
};
use crate::template::NameVars;

use super::budget::Budget;
use super::claims::{self, Claim, Claims};
use super::commits::Commits;
use super::error::FileError;
use super::identity::{self, mtime_millis};
use super::retry::retry;
use super::transfer::{self, Target};
use super::{FileReport, Outcome, REPORT_LOG_TARGET, cap, content, disposition, halt, pipe, quarantine, stage};

mod delivery;
mod failure;
pub(super) mod unreadable;
mod versions;

use delivery::{Sent, deliver_one, payload, recovered, unhashed};
pub(super) use delivery::{owed_trigger, owed_triggers, rejects_ext, rejects_name, rejects_owed, rename_room, trigger_of, wanted_for};
use failure::fail;
pub(super) use failure::{VANISHED, lost_source};
pub(super) use versions::changed_since_read;
use versions::replaced_since_listed;

/// Deliveries of a rejects file are recorded as sink index `REJECTS + i` (sink `i`'s rejects),
/// so they resume exactly like the output's own deliveries.
const REJECTS: u32 = 1 << 20;

/// Trigger files are recorded as sink index `TRIGGERS + i` (sink `i`'s trigger).
const TRIGGERS: u32 = 2 << 20;

/// The flow's sink a recorded delivery belongs to.
fn sink_of(recorded: u32) -> usize {
    (recorded % REJECTS) as usize
}

/// Everything a file's processing needs from its run.
pub(super) struct Ctx<'a> {
    pub flow: &'a Flow,
    /// The flow the files' events are raised for (`wharf events FLOW`): `flow`'s own name, or
    /// for a response flow its request flow's, as the run's other events.
    pub events_flow: &'a str,
    pub ledger: &'a Ledger,
    pub source: DynEndpoint,
    pub sinks: Vec<DynEndpoint>,
    /// The quarantine endpoint, when the flow has one.
    pub quarantine: Option<DynEndpoint>,
    pub run: u64,
    pub now: SystemTime,
    pub staging_dir: &'a Path,
    /// Names being written by the run's files in flight (see `claims`).
    pub claims: Claims,
    /// Durable transitions waiting for the next group commit (see `commits`).
    pub commits: Commits,
    /// Sink folders made sure of in this run (see `transfer::Folders`).
    pub folders: transfer::Folders,
    /// Bytes the files moved whole may hold at once (see `budget`).
    pub budget: Budget,
    /// The run's listing, sorted by path: where each listed file's companions are (done file,
    /// checksum, row count), as discovery found them (`discover::locate`). Empty where the
    /// files are not the run's listing's (a round trip's responses, a reprocessed file).
    pub listed: &'a [super::discover::Candidate],
}

impl Ctx<'_> {
    /// Stores a transition durably: returns once it is on disk.
    pub async fn store(&self, t: Transition) -> Result<(), LedgerError> {
        self.commits.put(self.ledger, t).await
    }

    /// The setting that says what becomes of a delivered file's source, as a flow file spells
    /// it: `after.success`, or for a round trip's response (whose files are taken as the
    /// derived flow `<flow>.response`, its events raised for `<flow>`) `response.after`.
    pub fn disposal_setting(&self) -> &'static str {
        if self.is_response() { "`response.after`" } else { "`after.success`" }
    }

    /// Whether the files are a round trip's responses (the derived flow `<flow>.response`,
    /// whose events are raised for `<flow>`).
    pub fn is_response(&self) -> bool {
        self.events_flow != self.flow.name
    }
}

fn report(path: &RemotePath, outcome: Outcome, detail: impl Into<String>) -> FileReport {
    FileReport { path: path.to_string(), outcome, detail: detail.into(), targets: vec![], bytes: 0, error_kind: None, records: None }
}

/// `2026-01-05 10:00:00 UTC` for ms since the epoch.
pub(super) fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

/// What the ledger said about a file when its run judged the listing: read in the one read
/// transaction of the whole listing instead of two per file (each costs redb's reader
/// locks, 10 `fcntl`s per file here).
pub(super) struct Known {
    prev: Option<FileRecord>,
    /// The delivery of its identity, when it is settled before the file's turn: found (a
    /// delivery stays delivered), or not found under an identity that names the path (only
    /// this file can write it). `None` when it must be read at its turn (an earlier file of
    /// the run may be the same file).
    done: Option<Option<DoneRecord>>,
}

impl Known {
    /// A file known to be new whatever the ledger records at its path or of its identity (a
    /// round trip's response listed like an earlier one that was taken away: `awaits`).
    pub(super) fn anew() -> Known {
        Known { prev: None, done: Some(None) }
    }

    pub fn read(snapshot: &Snapshot, flow: &Flow, entry: &Entry) -> Result<Known, LedgerError> {
        let prev = snapshot.file(&flow.name, entry.path.as_str())?;
        let done = match delivered_before(snapshot, flow, entry)? {
            Some(d) => Some(Some(d)),
            None if flow.source.identity.path && identity::key(flow.source.identity, entry).is_some() => Some(None),
            None => None,
        };
        Ok(Known { prev, done })
    }

    /// What the ledger knew of the path (any version).
    pub fn prev(&self) -> Option<&FileRecord> {
        self.prev.as_ref()
    }

    /// Whether the listed file may deliver in this run, and if so whether a crashed run
    /// started it (`Some(true)`): `None` when it is settled (delivered, a duplicate,
    /// quarantined) or, not started, its identity was delivered before (it is skipped as a
    /// duplicate at its turn) or a `check` step refuses it from the listing (it is
    /// quarantined). As `wharf plan` judges it (settled, resumed, already done, quarantine).
    pub fn contends(&self, flow: &Flow, entry: &Entry) -> Option<bool> {
        let same = self.prev.as_ref().filter(|p| same_version(flow, entry, p));
        // A file the login could not read is started afresh, not resumed: it does not go first
        // for a name it shares with readable files, run after run while it stays refused.
        let resumed = same.is_some_and(|p| p.state.in_flight() && unreadable::refused(p).is_none());
        if same.is_some_and(|p| Settled::of(p).is_some()) || (!resumed && matches!(self.done, Some(Some(_)))) {
            return None;
        }
        if !resumed && !refused_by_listing(flow, entry).is_empty() {
            return None;
        }
        Some(resumed)
    }

    /// Where the listed file stands for a run's places (`source.max_files`, [`cap::left`]):
    /// `None` when the run does not start it ([`Known::contends`]); else resumed, tried
    /// before (it failed, or the login could not read it) or new.
    pub fn turn(&self, flow: &Flow, entry: &Entry) -> Option<cap::Turn> {
        let resumed = self.contends(flow, entry)?;
        let same = self.prev.as_ref().filter(|p| same_version(flow, entry, p));
        Some(if resumed {
            cap::Turn::Resumed
        } else if same.is_some_and(|p| p.state == FileState::Failed || unreadable::refused(p).is_some()) {
            cap::Turn::Retried
        } else {
            cap::Turn::New
        })
    }
}

/// What the flow's `check` steps refuse in the file listed as `entry` before reading a byte
/// of it (its name, its size), each as a sentence: a file not started that is refused so is
/// quarantined at its turn and delivers nothing, so it takes no name a sink gives several
/// files ([`Known::contends`]). `wharf plan` shows it quarantined from this.
pub(super) fn refused_by_listing(flow: &Flow, entry: &Entry) -> Vec<String> {
    flow.steps.iter().flat_map(|s| s.checks()).flat_map(|ch| ch.listing_problems(entry.path.name(), entry.size)).collect()
}

/// The delivery, before this run, of the identity of the file listed as `entry`, when the
/// listing tells the identity: the run skips the file as its duplicate (taking no name a
/// sink gives several files, `shared_targets`), and `wharf plan` shows it already done.
pub(super) fn delivered_before(snapshot: &Snapshot, flow: &Flow, entry: &Entry) -> Result<Option<DoneRecord>, LedgerError> {
    match identity::key(flow.source.identity, entry) {
        Some(k) => snapshot.done(&flow.name, &k),
        None => Ok(None),
    }
}

/// The record of the file listed as `entry`, taken as a new file first seen at `now`.
fn new_record(flow: &Flow, entry: &Entry, now: Millis) -> FileRecord {
    FileRecord {
        path: entry.path.as_str().to_string(),
        identity: identity::key(flow.source.identity, entry).unwrap_or_default(),
        size: entry.size,
        mtime: mtime_millis(entry),
        first_seen: now,
        ..Default::default()
    }
}

/// Whether `r` records the version of the file listed as `entry`: the same identity when the
/// identity is known from the listing, else the same size and time.
pub(super) fn same_version(flow: &Flow, entry: &Entry, r: &FileRecord) -> bool {
    match identity::key(flow.source.identity, entry) {
        Some(k) => r.identity == k,
        None => r.size == entry.size && r.mtime == mtime_millis(entry),
    }
}

/// What the ledger's record of the very version listed says a run does with it, when the
/// file is settled: skipped, with the run's words. `wharf plan` says the same from it.
pub(super) enum Settled {
    /// Delivered before, or a duplicate of a file that was: disposed of like a delivered file.
    Delivered(String),
    /// Quarantined before: left where it is (a corrected file sent again is a new version).
    Quarantined(String),
}

impl Settled {
    pub fn of(p: &FileRecord) -> Option<Settled> {
        Settled::told(p, |_| None)
    }

    /// As [`Settled::of`], a duplicate naming the delivery of its identity as the run that
    /// skipped it first did ([`same_identity_as`]): `delivered(identity)` looks it up (only
    /// for a duplicate; none: said without it).
    pub fn told(p: &FileRecord, delivered: impl FnOnce(&str) -> Option<DoneRecord>) -> Option<Settled> {
        match p.state {
            FileState::Done => Some(Settled::Delivered(format!("already delivered in run {} on {}", p.run, date(p.updated)))),
            FileState::Duplicate => Some(Settled::Delivered(
                delivered(&p.identity).map_or_else(|| "duplicate of a file delivered before".to_string(), |d| same_identity_as(&d)),
            )),
            FileState::Quarantined => Some(Settled::Quarantined(format!(
                "quarantined in run {} on {} (see `wharf quarantine show`; a corrected file sent again is taken)",
                p.run,
                date(p.updated)
            ))),
            _ => None,
        }
    }
}

/// Takes one ready file as far as it can go. Returns its report and whether the run must
/// stop (the ledger or an endpoint became unusable). Only ledger errors are `Err`. What the
/// ledger knows of it is read now unless `known` brings it.
pub(super) async fn process(cx: &Ctx<'_>, entry: &Entry, rel: &str, known: Option<Known>) -> Result<(FileReport, bool), LedgerError> {
    let flow = &cx.flow.name;
    let path = entry.path.as_str();
    let id_pre = identity::key(cx.flow.source.identity, entry);
    let same_version = |r: &FileRecord| same_version(cx.flow, entry, r);
    let Known { prev, done: done_before } = match known {
        Some(k) => k,
        None => Known { prev: cx.ledger.file(flow, path)?, done: None },
    };
    if let Some(p) = prev.as_ref().filter(|p| same_version(p))
        && let Some(settled) = Settled::told(p, |id| cx.ledger.done(flow, id).ok().flatten())
    {
        let detail = match settled {
            // Still (or again) at the source: sent again under an identity delivered before, or
            // a duplicate whose disposal failed. Disposed of like a success (nothing, for
            // `keep`), as a duplicate under another name is, not skipped by every run.
            Settled::Delivered(detail) => {
                let mut rec = p.clone();
                let disposed = dispose_skipped(cx, &mut rec, entry).await;
                if rec.source_fate != p.source_fate || rec.disposed_to != p.disposed_to {
                    // Moved or deleted now (the flow kept its sources when it delivered it):
                    // what history reads to forget its delivery in time.
                    rec.updated = now_millis();
                    cx.store(Transition::File { flow: flow.clone(), rec }).await?;
                }
                format!("{detail}{disposed}")
            }
            Settled::Quarantined(detail) => detail,
        };
        return Ok((report(&entry.path, Outcome::Skipped, detail), false));
    }
    let mut rec = match prev.filter(|p| same_version(p)) {
        Some(p) => p,
        None => new_record(cx.flow, entry, now_millis()),
    };
    // Before the state is moved on: whether the last look at it found it unreadable.
    let refused_before = unreadable::refused_before(&rec);
    if matches!(rec.state, FileState::Failed | FileState::Vanished) {
        // Retried after a permanent failure that left the file in place (or back after it
        // vanished): start again, keeping the sinks that already confirmed.
        rec.state = FileState::Claimed;
    }
    if disposition::failing_move(&rec).is_some() {
        // Failed for good by a run that recorded where `after.failure: move_to` puts it and
        // stopped before the move (`failure_disposing`): listed again, its source is still at
        // its path, so the move never happened. The name goes, or the record would read as
        // failing (`disposition::failing_move`) while the file is delivered, and a crash then
        // with its source gone would have it recorded failed (`left_failing`). Failing
        // again, it chooses a name afresh (`fail`), as `wharf plan` shows it.
        rec.disposed_to = None;
    }
    // A round trip's response every sink has keeps the run that took it, while later runs
    // only try its disposal again (refused by the server): that run tells which await it
    // answered (`awaits::taken_for`), and a later request's await, registered meanwhile under
    // the same name, must not take it for its own answer.
    if !(cx.is_response() && delivered(&rec)) {
        rec.run = cx.run;
    }
    let done_before = match (done_before, &id_pre) {
        (Some(d), _) => d,
        (None, Some(k)) => cx.ledger.done(flow, k)?,
        (None, None) => None,
    };
    if rec.state == FileState::Claimed
        && let Some(d) = done_before
    {
        return duplicate(cx, &mut rec, entry, d).await;
    }
    let staged = stage::staging_path(cx.staging_dir, flow, &entry.path);
    let mut kept = None;
    match advance(cx, &mut rec, entry, rel, &staged, &mut kept).await {
        Ok(f) => Ok((f, false)),
        Err(FileError::Ledger(e)) => Err(e),
        // Its download refused for the login's rights: not ready yet, never failed.
        Err(FileError::Unreadable(e)) if rec.state == FileState::Staging => {
            unreadable::not_yet(cx, (&mut rec, entry, &staged), e, refused_before).await
        }
        Err(e) => fail(cx, &mut rec, entry, e, &staged, kept).await,
    }
}

/// The state machine proper. A small file without steps is held in memory from its
/// download to its delivery (`kept`, see `stage::INLINE_MAX`) instead of staged on disk.
async fn advance(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    rel: &str,
    staged: &Path,
    kept: &mut Option<Vec<u8>>,
) -> Result<FileReport, FileError> {
    let flow = &cx.flow.name;
    // Held from choosing a `move_to` name until the move is done.
    let mut moving: Option<Claim> = None;
    // The staged file and the steps' outputs were made by this call: whole, not checked again.
    let mut fresh = false;
    // A sink took the staged file by renaming it: nothing left to remove.
    let mut staged_gone = false;
    // The request's await was registered by this call (round trips).
    let mut awaited = false;
    // A warning of the content steps for the report of the file they let through (recorded
    // with their result, `Ledger::file_warning`; a run resumed after them logged and recorded
    // it, and its report does not repeat it).
    let mut warning: Option<String> = None;
    // When the record was last written before this call (0 for a new one): a delivery found
    // made (after a crash) happened no later than that, give or take the write itself.
    let picked_up = rec.updated;
    let found_at = |rec: &FileRecord| if picked_up > 0 { picked_up.min(rec.updated) } else { rec.updated };
    loop {
        match rec.state {
            FileState::Claimed | FileState::Staging => {
                // A staging file is only ever resumed for the version a durable record names
                // as staging; whatever another version left is removed first. A small file
                // is never resumed (downloading it again costs less than a durable record),
                // so nothing is recorded before its download.
                let recorded = rec.state == FileState::Staging;
                let small = stage::is_small(entry.size);
                rec.state = FileState::Staging;
                if !small {
                    if !recorded {
                        stage::discard(staged).await;
                    }
                    put(cx, rec).await?;
                }
                let resume = recorded || !small;
                let hash = staging_hash(cx);
                // Steps read the staged file; anything else can take its bytes.
                let in_memory = cx.flow.steps.is_none();
                let st = match retry(cx.flow, "download", || {
                    stage::stage(&*cx.source, &entry.path, entry.size, staged, resume, hash, in_memory, &cx.budget)
                })
                .await
                {
                    // Another length than the listing's: the partner is still writing, or
                    // put another version there. Not ready, as a file found replaced below:
                    // the next run lists it again and judges its readiness anew.
                    Err(FileError::Changed(why)) => {
                        stage::discard(staged).await;
                        tracing::info!(flow = %flow, path = %entry.path, reason = %why, "Not taken: the file changed since it was listed.");
                        return Ok(report(&entry.path, Outcome::NotReady, why));
                    }
                    other => other?,
                };
                if let Some(why) = replaced_since_listed(cx, rec, st.opened.as_ref()) {
                    // What was read is not the version listed (and judged ready): nothing is
                    // delivered or recorded for it; the next run lists the new version and
                    // takes it as the new file it is.
                    stage::discard(staged).await;
                    tracing::info!(flow = %flow, path = %entry.path, reason = %why, "Not taken: the file was replaced since it was listed.");
                    return Ok(report(&entry.path, Outcome::NotReady, why));
                }
                rec.sha256 = st.sha256;
                *kept = st.data;
                if cx.flow.source.identity.sha256
                    && let Some(sha) = &rec.sha256
                {
                    rec.identity = identity::content_key(sha);
                    if let Some(d) = cx.ledger.done(flow, &rec.identity)? {
                        stage::discard(staged).await;
                        let (f, _) = duplicate(cx, rec, entry, d).await?;
                        return Ok(f);
                    }
                }
                rec.state = FileState::Staged;
                fresh = true;
                // Lazy: lost, staging runs again and finds the file whole (hashing, no download).
                put_lazy(cx, rec)?;
            }
            FileState::Staged => {
                // Checked when resuming.
                if !fresh && !staged_complete(staged, rec.size, rec.sha256.as_deref()).await {
                    tracing::warn!(flow = %flow, path = %entry.path, "Staging file missing; downloading again.");
                    rec.state = FileState::Claimed;
                    continue;
                }
                match &cx.flow.steps {
                    Some(steps) => {
                        let result;
                        (result, warning) = content::process(cx, rec, &entry.path, staged, steps).await?;
                        rec.state = if result.quarantine.is_some() { FileState::Quarantining } else { FileState::Processed };
                        rec.updated = now_millis();
                        let recorded = warning.as_ref().map(|text| FileWarning { run: cx.run, at: rec.updated, text: text.clone() });
                        cx.store(Transition::Processed { flow: flow.clone(), rec: rec.clone(), result, warning: recorded }).await?;
                        if rec.state == FileState::Processed {
                            halt::point("processed");
                        }
                    }
                    None => {
                        rec.state = FileState::Delivering;
                        put_lazy(cx, rec)?;
                    }
                }
            }
            FileState::Processed => {
                if !fresh && !payload(cx, rec, entry, staged)?.ready().await {
                    // The output went missing (staging folder emptied): make it again.
                    rec.state = FileState::Staged;
                    continue;
                }
                rec.state = FileState::Delivering;
                put_lazy(cx, rec)?;
            }
            FileState::Quarantining => {
                // A file is quarantined before any delivery: it holds no `move_to` claim yet
                // (let go all the same, so that no claim is ever awaited while one is held).
                drop(moving.take());
                // The verdict stands for the bytes refused: a resumed file's source is looked
                // at again (read in place, or downloaded again when its staged copy is gone),
                // and other bytes there are taken as a new file.
                let whole = staged_complete(staged, rec.size, rec.sha256.as_deref().filter(|_| !fresh)).await;
                let resumed =
                    if fresh && whole { quarantine::Resumed::Stands } else { quarantine::resumed(cx, rec, entry, staged, whole).await? };
                match resumed {
                    quarantine::Resumed::Stands => {}
                    quarantine::Resumed::Left(f) => return Ok(f),
                    quarantine::Resumed::NewFile => {
                        // Other bytes than those refused: a file of its own, first seen now.
                        // Its record replaces the one being quarantined as a newer file's does,
                        // which keeps that one, its copy named (made from its staged copy when
                        // that was whole), listed as an earlier quarantined file
                        // (`ledger::quarantined::supersedes`): under the same record, the new
                        // file's result would replace its quarantine's, and the copy be left in
                        // the quarantine folder, named by nothing.
                        *rec = FileRecord { run: cx.run, ..new_record(cx.flow, entry, now_millis().max(rec.first_seen + 1)) };
                        continue;
                    }
                }
                let _names = claim_quarantine(cx).await;
                return quarantine::put_aside(cx, rec, entry, staged).await;
            }
            FileState::Delivering => {
                let p = payload(cx, rec, entry, staged)?;
                // Targets recorded before a crash that are there, whole, count as delivered
                // first: the last sink may have taken the staged file itself (`adopt`). A sink
                // that cannot be asked now is asked again when it is delivered to.
                for (i, sink) in cx.sinks.iter().enumerate() {
                    let rejects = p.rejects.as_ref().map(|_| REJECTS + i as u32);
                    for idx in std::iter::once(i as u32).chain(rejects) {
                        if let Err(e @ FileError::Ledger(_)) = recovered(cx, rec, &**sink, idx, &p).await {
                            return Err(e);
                        }
                    }
                }
                let confirmed = |i: u32| rec.deliveries.iter().any(|d| d.sink == i && d.done);
                let pending = (0..cx.sinks.len() as u32).any(|i| !confirmed(i) || (p.rejects.is_some() && !confirmed(REJECTS + i)));
                if pending && !fresh && !p.ready().await {
                    // The steps' output may be gone while their input is whole: made again
                    // from it, as for a file left `processed`; else downloaded again.
                    rec.state = FileState::Staged;
                    continue;
                }
                // Every sink gets its chance, whatever another one does: a partner that is
                // down does not hold back the archive copy. Only unconfirmed sinks are retried.
                let mut failed: Option<FileError> = None;
                for i in 0..cx.sinks.len() {
                    match deliver_one(cx, rec, rel, i, &p, kept.as_deref()).await {
                        Ok(Sent { took, before }) => {
                            staged_gone |= took;
                            if took {
                                *kept = None;
                            }
                            // The partner has the request: its answer may come from now on,
                            // whatever the other sinks do (idempotent; nothing for a target
                            // left as it was, which the partner did not get from us).
                            if super::awaits::answered_from(cx.flow, i) {
                                // Delivered before this call (a run killed after the rename):
                                // the partner has had it since then, not since now.
                                let sent_at = if before { found_at(rec) } else { rec.updated };
                                super::awaits::register(cx, rec, sent_at)?;
                                awaited = true;
                            }
                        }
                        // The sink's own endpoint refusing is named as the others are (a
                        // run stopped by a sink's unusable local folder says which sink); the
                        // ledger's and the staging area's trouble stays as it is, for
                        // `lifecycle::fail` to tell a full state folder.
                        Err(e @ FileError::Endpoint(_)) if e.aborts_run() => {
                            return Err(FileError::Sink { sink: cx.flow.sinks[i].endpoint.clone(), source: Box::new(e) });
                        }
                        Err(e) if e.aborts_run() => return Err(e),
                        Err(e) => {
                            let sink = cx.flow.sinks[i].endpoint.clone();
                            tracing::warn!(flow = %flow, path = %entry.path, sink, error = %e, "Delivery to a sink failed.");
                            // Every sink's trouble is told (in sink order), not only the first.
                            let this = FileError::Sink { sink, source: Box::new(e) };
                            failed = Some(match failed.take() {
                                None => this,
                                Some(first) => FileError::Sinks(Box::new(first), Box::new(this)),
                            });
                        }
                    }
                }
                if let Some(e) = failed {
                    return Err(e);
                }
                if unhashed(cx, rec) {
                    // No upload hashed it (every sink had it already).
                    rec.sha256 = pipe::sha256_of(staged.to_path_buf()).await.ok();
                }
                rec.state = FileState::Delivered;
                // Lazy: lost, every recorded target is found whole and confirmed again.
                put_lazy(cx, rec)?;
                halt::point("delivered");
            }
            FileState::Delivered => {
                // A round trip awaits the response once the request sink confirmed (above); a
                // run resumed here registers it if a crash came first (idempotent; before
                // disposition, so a crash in between registers it on resume).
                if !awaited {
                    super::awaits::register(cx, rec, found_at(rec))?;
                }
                claim_move(cx, &mut moving).await;
                let target =
                    retry(cx.flow, "plan disposition", || disposition::plan(&*cx.source, &entry.path, &cx.flow.after_success)).await?;
                rec.disposed_to = target.map(|t| t.as_str().to_string());
                rec.state = FileState::Disposing;
                // Moving or deleting the source cannot be checked afterwards without this
                // record (a source gone from the listing is finished from it); keeping it
                // changes nothing.
                if cx.flow.after_success == Disposition::Keep {
                    put_lazy(cx, rec)?;
                } else {
                    put(cx, rec).await?;
                }
            }
            FileState::Disposing => {
                claim_move(cx, &mut moving).await;
                let target = recorded_move(rec);
                let changed = match cx.flow.after_success {
                    Disposition::Keep => None,
                    _ => changed_since_read(cx, rec, &entry.path).await?,
                };
                let moved = match changed {
                    // What is there now was never delivered: it stays, and the next run takes
                    // it as the new file it is.
                    Some(_) => None,
                    None => {
                        retry(cx.flow, "dispose", || disposition::apply(&*cx.source, &entry.path, &cx.flow.after_success, target.as_ref()))
                            .await?
                    }
                };
                let disposed = if changed.is_some() { &Disposition::Keep } else { &cx.flow.after_success };
                disposition::record(rec, disposed, moved.as_ref());
                if changed.is_none() {
                    dispose_companions(cx, entry, &cx.flow.after_success).await;
                }
                halt::point("disposing");
                rec.state = FileState::Done;
                rec.updated = now_millis();
                let targets = delivered_to(cx, rec);
                let done = DoneRecord { path: rec.path.clone(), run: cx.run, at: rec.updated, targets: targets.clone() };
                cx.store(Transition::Complete { flow: flow.clone(), rec: rec.clone(), done }).await?;
                if cx.flow.steps.is_some() {
                    content::discard_with_outputs(staged).await;
                } else if !staged_gone {
                    cx.commits.discard(staged.to_path_buf()).await;
                }
                let mut detail = match &rec.disposed_to {
                    _ if changed.is_some() => {
                        format!("delivered to {}; source kept: {}", targets.join(", "), changed.as_deref().unwrap_or_default())
                    }
                    Some(t) => format!("delivered to {}; source moved to {}", targets.join(", "), source_shown(t)),
                    None if cx.flow.after_success == Disposition::Delete => format!("delivered to {}; source deleted", targets.join(", ")),
                    None if matches!(cx.flow.after_success, Disposition::MoveTo(_)) => {
                        format!("delivered to {}; source no longer there, so not moved", targets.join(", "))
                    }
                    None => format!("delivered to {}", targets.join(", ")),
                };
                let records = match &cx.flow.steps {
                    // Records only when the file was read as such (not when `command` steps alone made the output).
                    Some(s) if s.parses() => cx.ledger.file_result(flow, &rec.path)?.filter(|r| r.output.is_some()).map(|r| r.counts),
                    Some(_) => None,
                    None => None,
                };
                // Read from the record, so that a run resumed after a crash tells it too.
                let left_alone: Vec<String> = rec
                    .deliveries
                    .iter()
                    .filter(|d| d.sink < REJECTS && d.left_alone())
                    .filter_map(|d| cx.flow.sinks.get(d.sink as usize).map(|s| format!("{}:/{}", s.endpoint, d.target)))
                    .collect();
                if !left_alone.is_empty() {
                    detail.push_str(&format!("; {} was there already and left as it was (if_exists: skip)", left_alone.join(", ")));
                }
                if super::awaits::left_alone(cx.flow, rec).is_some() {
                    detail.push_str("; the request was not sent, so no response is awaited for it");
                }
                if let Some(c) = &records {
                    detail.push_str(&format!(
                        "; records: {} read, {} valid, {} rejected, {} skipped, {} written",
                        c.read, c.valid, c.rejected, c.skipped, c.written
                    ));
                }
                if let Some(w) = &warning {
                    detail.push_str(&format!("; warning: {w}"));
                }
                tracing::info!(flow = %flow, path = %entry.path, bytes = rec.size, "Delivered.");
                return Ok(FileReport {
                    path: entry.path.to_string(),
                    outcome: Outcome::Delivered,
                    detail,
                    targets,
                    bytes: rec.size,
                    error_kind: None,
                    records,
                });
            }
            FileState::Done | FileState::Failed | FileState::Duplicate | FileState::Quarantined | FileState::Vanished => {
                return Ok(report(&entry.path, Outcome::Skipped, format!("in state {}", rec.state.as_str())));
            }
        }
    }
}

/// Claims the `after.success: move_to` folder of the source (free names there are chosen one
/// file at a time).
async fn claim_move(cx: &Ctx<'_>, held: &mut Option<Claim>) {
    if let Some(key) = move_key(cx, &cx.flow.after_success)
        && held.is_none()
    {
        *held = Some(cx.claims.claim(vec![key]).await);
    }
}

/// Claims the `after.failure: move_to` folder of the source, as [`claim_move`] the success
/// one (one folder for both is one claim): `None` when failed files are not moved. Taken
/// while the file holds no other claim.
pub(super) async fn claim_failure_move(cx: &Ctx<'_>) -> Option<Claim> {
    let key = move_key(cx, &cx.flow.after_failure)?;
    Some(cx.claims.claim(vec![key]).await)
}

/// Claims the quarantine location (copies get free names there, one file at a time) and, in
/// the same claim (claims are taken all at once), the `after.failure: move_to` folder the
/// source goes to once the copy is made ([`quarantine::put_aside`]).
pub(super) async fn claim_quarantine(cx: &Ctx<'_>) -> Option<Claim> {
    let q = cx.flow.quarantine.as_ref()?;
    let mut names = vec![claims::key(&q.endpoint, &format!("{}/\u{0}quarantine", q.path))];
    names.extend(move_key(cx, &cx.flow.after_failure));
    Some(cx.claims.claim(names).await)
}

/// The claim key of a `move_to` folder of the source (`None` for another disposition).
fn move_key(cx: &Ctx<'_>, disp: &Disposition) -> Option<String> {
    match disp {
        Disposition::MoveTo(dir) => Some(claims::key(&cx.flow.source.endpoint, &format!("{dir}/\u{0}move"))),
        _ => None,
    }
}

/// Whether staging hashes the file now or leaves it to the upload: only a file that nothing
/// needs to know the hash of before its upload (no content identity, no steps) and that no
/// sink takes by renaming it (a local folder: nothing would read it) is left unhashed.
fn staging_hash(cx: &Ctx<'_>) -> stage::Hash {
    let later = cx.flow.steps.is_none() && !cx.flow.source.identity.sha256 && cx.sinks.iter().all(|s| !s.capabilities().local_files);
    if later { stage::Hash::Deferred } else { stage::Hash::Now }
}

/// Records a transition durably (in a group commit with the other files in flight).
async fn put(cx: &Ctx<'_>, rec: &mut FileRecord) -> Result<(), FileError> {
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await.map_err(FileError::from)
}

/// Records a transition whose loss in a crash the lifecycle recovers from (see the module doc).
fn put_lazy(cx: &Ctx<'_>, rec: &mut FileRecord) -> Result<(), FileError> {
    rec.updated = now_millis();
    cx.ledger.put_file_with(&cx.flow.name, rec, Durability::Lazy).map_err(FileError::from)
}

/// Whether `staged` is there, whole: `size` bytes and, for a small file with a known
/// `sha256`, that content. A small staged file is not fsynced (see [`pipe::write_whole`]):
/// after a power cut it may have its length but not its bytes. A bigger one is fsynced
/// before its download counts as done, and hashing it again would cost a read of it all.
async fn staged_complete(staged: &Path, size: u64, sha256: Option<&str>) -> bool {
    if !tokio::fs::metadata(staged).await.is_ok_and(|m| m.len() == size) {
        return false;
    }
    match sha256.filter(|_| stage::is_small(size)) {
        Some(want) => pipe::sha256_of(staged.to_path_buf()).await.is_ok_and(|got| got == want),
        None => true,
    }
}

/// Whether a run taking up `rec` finishes it without reading its source again, as
/// [`advance`] resumes it: from its staged copy (at `staged`, whole as recorded; `None`: not
/// looked at, taken as whole), or, left `delivering`, from the targets recorded before the
/// crash for every sink, found there whole on `sinks` (`recovered`; by their size: only
/// looked at, not read). Left `claimed` or `staging`, it is downloaded again. `wharf plan`
/// shows a file left so, its source gone, from this (`left_gone`).
pub(super) async fn resumable(
    flow: &Flow,
    ledger: &Ledger,
    rec: &FileRecord,
    staged: Option<&Path>,
    sinks: &[DynEndpoint],
) -> Result<bool, FileError> {
    if !matches!(rec.state, FileState::Staged | FileState::Processed | FileState::Delivering) {
        return Ok(false);
    }
    let Some(staged) = staged else { return Ok(true) };
    if staged_complete(staged, rec.size, rec.sha256.as_deref()).await {
        return Ok(true);
    }
    if rec.state != FileState::Delivering || sinks.len() != flow.sinks.len() {
        return Ok(false);
    }
    // What was delivered: the steps' output when they made one.
    let size = match flow.steps {
        Some(_) => ledger.file_result(&flow.name, &rec.path)?.and_then(|r| r.output).unwrap_or(rec.size),
        None => rec.size,
    };
    for (i, sink) in sinks.iter().enumerate() {
        let Some(d) = rec.deliveries.iter().find(|d| d.sink == i as u32) else { return Ok(false) };
        let Ok(t) = RemotePath::parse(&d.target) else { return Ok(false) };
        if !d.done && !transfer::already_delivered(&**sink, &t, size, d.replaces, transfer::Expect::Size).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Moves/deletes the files that go with a data file (its done file, the checksum and row
/// count its steps read) the same way as the data file, so that none is left to be read with
/// the next file of the same name. Best effort: the data file is what matters.
pub(super) async fn dispose_companions(cx: &Ctx<'_>, entry: &Entry, disp: &Disposition) {
    if *disp == Disposition::Keep {
        return;
    }
    let rel = entry.path.strip_prefix(&cx.flow.source.path).unwrap_or_else(|| entry.path.name());
    for c in super::discover::companions_of(&cx.flow.source, cx.flow.steps.as_ref(), entry, rel, cx.now) {
        // Under the name it has there (`source.ignore_case`: maybe in another case).
        let c = match super::discover::locate(&*cx.source, &cx.flow.source, cx.flow.steps.as_ref(), (cx.listed, &entry.path), &c, cx.now)
            .await
        {
            Ok(super::discover::Located::At(c)) => c,
            Ok(super::discover::Located::Ambiguous(names)) => {
                let names = super::ready::names_listed(&names);
                tracing::warn!(flow = %cx.flow.name, path = %c, data = %entry.path, names = %names, "Not disposing of a file that goes with a data file: more than one file is named like it ignoring case.");
                continue;
            }
            Err(e) => {
                tracing::warn!(flow = %cx.flow.name, path = %c, data = %entry.path, error = %e, "Could not dispose of a file that goes with a data file (done file, checksum or row count).");
                continue;
            }
        };
        if let Err(e) = disposition::apply(&*cx.source, &c, disp, None).await {
            tracing::warn!(flow = %cx.flow.name, path = %c, data = %entry.path, error = %e, "Could not dispose of a file that goes with a data file (done file, checksum or row count).");
        }
    }
}

/// A file whose identity was delivered before: record it, dispose of it like a success.
async fn duplicate(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry, d: DoneRecord) -> Result<(FileReport, bool), LedgerError> {
    let disposed = dispose_skipped(cx, rec, entry).await;
    rec.state = FileState::Duplicate;
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    let detail = format!("{}{disposed}", same_identity_as(&d));
    Ok((report(&entry.path, Outcome::Skipped, detail), false))
}

/// Why a file is skipped as the duplicate of `d`, the delivery of its identity before it:
/// the run's report line, and `wharf plan` for a delivery before this run.
pub(super) fn same_identity_as(d: &DoneRecord) -> String {
    format!("same identity as {} delivered in run {} on {}", source_shown(&d.path), d.run, date(d.at))
}

/// A source file named for users from the ledger's key of it (`in/a.csv`), where the key is
/// all there is (the delivery of its identity, a file no longer listed): as the listing, the
/// run's report, its log lines, `wharf files` and `wharf plan` name source files (`/in/a.csv`).
pub(super) fn source_shown(key: &str) -> String {
    RemotePath::parse(key).map_or_else(|_| format!("/{key}"), |p| p.to_string())
}

/// Disposes of a file skipped because its identity was delivered before, like a success, so
/// that re-sent files do not pile up in a drop folder, and records on `rec` what became of it
/// (for the caller to store). Best effort: what became of the source, for the report
/// (`; source moved to …`, `; source deleted`, nothing for `keep`).
async fn dispose_skipped(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry) -> String {
    let disp = &cx.flow.after_success;
    if *disp == Disposition::Keep {
        return String::new();
    }
    // Under the `move_to` folder's claim, as a delivered file: else it may take the free name
    // a delivered file of the run chose and has not moved to yet, pushing that one to the
    // next name (nothing is overwritten, but the names no longer follow the listing, as
    // `wharf plan` shows them).
    let mut moving = None;
    claim_move(cx, &mut moving).await;
    match disposition::apply(&*cx.source, &entry.path, disp, None).await {
        Ok(moved) => {
            disposition::record(rec, disp, moved.as_ref());
            dispose_companions(cx, entry, disp).await;
            match moved {
                Some(t) => format!("; source moved to {t}"),
                None if *disp == Disposition::Delete => "; source deleted".to_string(),
                // A `move_to` of a source already gone: it went nowhere wharf can name.
                None => String::new(),
            }
        }
        Err(e) => {
            tracing::warn!(flow = %cx.flow.name, path = %entry.path, error = %e, "Could not dispose of a duplicate.");
            format!("; source kept: could not dispose of it: {e}")
        }
    }
}

/// Where the file went: `endpoint:/path` of every delivery (and trigger) recorded.
fn delivered_to(cx: &Ctx<'_>, rec: &FileRecord) -> Vec<String> {
    targets_shown(cx.flow, rec.deliveries.iter())
}

/// `endpoint:/path` of each of `deliveries` of a file of `flow`.
pub(in crate::engine) fn targets_shown<'a>(flow: &Flow, deliveries: impl Iterator<Item = &'a Delivery>) -> Vec<String> {
    deliveries.filter_map(|d| flow.sinks.get(sink_of(d.sink)).map(|s| format!("{}:/{}", s.endpoint, d.target))).collect()
}

/// The move target a run that takes up `rec` moves its source to (`disposition::apply`):
/// the one recorded when a run chose it and stopped before the move was done (`disposing`
/// for `after.success`; `quarantining` for `after.failure`, recorded by
/// `quarantine::put_aside` with the source's fate not yet `moved`: a name a failure moved an
/// earlier attempt to is not this one's); `None` when the run chooses it
/// (`disposition::plan`). `wharf plan` shows it from this, and `quarantine::left_aside`
/// looks there for a source a crash left moved.
pub(super) fn recorded_move(rec: &FileRecord) -> Option<RemotePath> {
    let recorded = rec.disposed_to.as_deref().filter(|_| match rec.state {
        FileState::Disposing => true,
        FileState::Quarantining => rec.source_fate == SourceFate::Kept,
        _ => false,
    });
    recorded.and_then(|t| RemotePath::parse(t).ok())
}

/// Every sink confirmed: what is left is disposing of the source.
pub(super) fn delivered(rec: &FileRecord) -> bool {
    matches!(rec.state, FileState::Delivered | FileState::Disposing)
}
