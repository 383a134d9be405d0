//! The per-file lifecycle (design §5): the only per-file loop in wharf.
//!
//! ```text
//! claimed ─► staging ─► staged ─┬──────────────────────────► delivering{targets} ─► delivered ─► disposing ─► done
//!                               └─(steps)─► processed ───────┘
//!                                        └► quarantining{copy} ─► quarantined (copy + reports, after.failure)
//!    any step ─► (transient) stays put, retried next run │ (permanent) failed + after.failure
//!    before delivery, the source gone ─► vanished (skipped, not failed)
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

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config::Flow;
use crate::config::flow::{Disposition, IfExists};
use crate::endpoint::{DynEndpoint, Endpoint, Entry, ErrorKind, RemotePath};
use crate::ledger::{
    Delivery, DoneRecord, Durability, ErrorRecord, FileRecord, FileState, Ledger, LedgerError, QuarantineRecord, Replaced, Snapshot,
    Transition, now_millis,
};
use crate::template::NameVars;

use super::budget::Budget;
use super::claims::{self, Claim, Claims};
use super::commits::Commits;
use super::error::FileError;
use super::identity::{self, mtime_millis};
use super::retry::retry;
use super::transfer::{self, Target};
use super::{FileReport, Outcome, content, disposition, halt, pipe, quarantine, stage};

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
}

impl Ctx<'_> {
    /// Stores a transition durably: returns once it is on disk.
    pub async fn store(&self, t: Transition) -> Result<(), LedgerError> {
        self.commits.put(self.ledger, t).await
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
    /// The delivery of its identity, when the identity names the path: only this file can
    /// have written it, so it cannot change before the file's turn. `None` when it must be
    /// read at its turn (an earlier file of the run may be the same file).
    done: Option<Option<DoneRecord>>,
}

impl Known {
    pub fn read(snapshot: &Snapshot, flow: &Flow, entry: &Entry) -> Result<Known, LedgerError> {
        let prev = snapshot.file(&flow.name, entry.path.as_str())?;
        let id = flow.source.identity;
        let done = match identity::key(id, entry) {
            Some(k) if id.path => Some(snapshot.done(&flow.name, &k)?),
            _ => None,
        };
        Ok(Known { prev, done })
    }
}

/// Takes one ready file as far as it can go. Returns its report and whether the run must
/// stop (the ledger or an endpoint became unusable). Only ledger errors are `Err`. What the
/// ledger knows of it is read now unless `known` brings it.
pub(super) async fn process(cx: &Ctx<'_>, entry: &Entry, rel: &str, known: Option<Known>) -> Result<(FileReport, bool), LedgerError> {
    let flow = &cx.flow.name;
    let path = entry.path.as_str();
    let id_pre = identity::key(cx.flow.source.identity, entry);
    let same_version = |r: &FileRecord| match &id_pre {
        Some(k) => &r.identity == k,
        None => r.size == entry.size && r.mtime == mtime_millis(entry),
    };
    let Known { prev, done: done_before } = match known {
        Some(k) => k,
        None => Known { prev: cx.ledger.file(flow, path)?, done: None },
    };
    if let Some(p) = prev.as_ref().filter(|p| same_version(p)) {
        match p.state {
            FileState::Done => {
                return Ok((
                    report(&entry.path, Outcome::Skipped, format!("already delivered in run {} on {}", p.run, date(p.updated))),
                    false,
                ));
            }
            FileState::Duplicate => return Ok((report(&entry.path, Outcome::Skipped, "duplicate of a file delivered before"), false)),
            FileState::Quarantined => {
                let detail = format!(
                    "quarantined in run {} on {} (see `wharf quarantine show`; a corrected file sent again is taken)",
                    p.run,
                    date(p.updated)
                );
                return Ok((report(&entry.path, Outcome::Skipped, detail), false));
            }
            _ => {}
        }
    }
    let now = now_millis();
    let mut rec = match prev.filter(|p| same_version(p)) {
        Some(p) => p,
        None => FileRecord {
            path: path.to_string(),
            identity: id_pre.clone().unwrap_or_default(),
            size: entry.size,
            mtime: mtime_millis(entry),
            first_seen: now,
            ..Default::default()
        },
    };
    if matches!(rec.state, FileState::Failed | FileState::Vanished) {
        // Retried after a permanent failure that left the file in place (or back after it
        // vanished): start again, keeping the sinks that already confirmed.
        rec.state = FileState::Claimed;
    }
    rec.run = cx.run;
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
    let policy = cx.flow.retry;
    // Held from choosing a `move_to` name until the move is done.
    let mut moving: Option<Claim> = None;
    // The staged file and the steps' outputs were made by this call: whole, not checked again.
    let mut fresh = false;
    // A sink took the staged file by renaming it: nothing left to remove.
    let mut staged_gone = false;
    // Targets this run found there already and left alone (`if_exists: skip`), for the report.
    let mut left_alone: Vec<String> = Vec::new();
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
                let st = retry(policy, "download", || {
                    stage::stage(&*cx.source, &entry.path, entry.size, staged, resume, hash, in_memory, &cx.budget)
                })
                .await?;
                if let Some(why) = replaced_since_listed(cx, rec, st.opened.as_ref()) {
                    // What was read is not the version listed (and judged ready): nothing is
                    // delivered or recorded for it; the next run lists the new version and
                    // takes it as the new file it is.
                    stage::discard(staged).await;
                    tracing::info!(flow, path = %entry.path, reason = %why, "Not taken: the file was replaced since it was listed.");
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
                    rec.state = FileState::Claimed;
                    continue;
                }
                match &cx.flow.steps {
                    Some(steps) => {
                        let result = content::process(cx, rec, &entry.path, staged, steps).await?;
                        rec.state = if result.quarantine.is_some() { FileState::Quarantining } else { FileState::Processed };
                        rec.updated = now_millis();
                        cx.store(Transition::Result { flow: flow.clone(), rec: rec.clone(), result }).await?;
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
                if !staged_complete(staged, rec.size, rec.sha256.as_deref().filter(|_| !fresh)).await {
                    rec.state = FileState::Claimed;
                    continue;
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
                    let rejects = p.rejects.as_ref().map(|(_, n)| (REJECTS + i as u32, *n));
                    for (idx, size) in std::iter::once((i as u32, p.size)).chain(rejects) {
                        if let Err(e @ FileError::Ledger(_)) = recovered(cx, rec, &**sink, idx, size).await {
                            return Err(e);
                        }
                    }
                }
                let confirmed = |i: u32| rec.deliveries.iter().any(|d| d.sink == i && d.done);
                let pending = (0..cx.sinks.len() as u32).any(|i| !confirmed(i) || (p.rejects.is_some() && !confirmed(REJECTS + i)));
                if pending && !fresh && !p.ready().await {
                    tracing::warn!(flow, path = %entry.path, "Staging file missing; downloading again.");
                    rec.state = FileState::Claimed;
                    continue;
                }
                // Every sink gets its chance, whatever another one does: a partner that is
                // down does not hold back the archive copy. Only unconfirmed sinks are retried.
                let mut failed: Option<FileError> = None;
                for i in 0..cx.sinks.len() {
                    match deliver_one(cx, rec, rel, i, &p, kept.as_deref()).await {
                        Ok(Sent { took, skipped }) => {
                            left_alone.extend(skipped.map(|t| format!("{}:{t}", cx.flow.sinks[i].endpoint)));
                            staged_gone |= took;
                            if took {
                                *kept = None;
                            }
                        }
                        Err(e) if e.aborts_run() => return Err(e),
                        Err(e) => {
                            let sink = cx.flow.sinks[i].endpoint.clone();
                            tracing::warn!(flow, path = %entry.path, sink, error = %e, "Delivery to a sink failed.");
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
                // A round trip awaits the response from here on (idempotent; before disposition,
                // so a crash in between registers it on resume).
                super::awaits::register(cx, rec)?;
                claim_move(cx, &mut moving).await;
                let target =
                    retry(policy, "plan disposition", || disposition::plan(&*cx.source, &entry.path, &cx.flow.after_success)).await?;
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
                let target = rec.disposed_to.as_deref().and_then(|t| RemotePath::parse(t).ok());
                let changed = match cx.flow.after_success {
                    Disposition::Keep => None,
                    _ => changed_since_read(cx, rec, &entry.path).await?,
                };
                let moved = match changed {
                    // What is there now was never delivered: it stays, and the next run takes
                    // it as the new file it is.
                    Some(_) => None,
                    None => {
                        retry(policy, "dispose", || disposition::apply(&*cx.source, &entry.path, &cx.flow.after_success, target.as_ref()))
                            .await?
                    }
                };
                rec.disposed_to = moved.map(|t| t.as_str().to_string());
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
                    Some(t) => format!("delivered to {}; source moved to /{t}", targets.join(", ")),
                    None if cx.flow.after_success == Disposition::Delete => format!("delivered to {}; source deleted", targets.join(", ")),
                    None => format!("delivered to {}", targets.join(", ")),
                };
                let records = match &cx.flow.steps {
                    Some(_) => cx.ledger.file_result(flow, &rec.path)?.filter(|r| r.output.is_some()).map(|r| r.counts),
                    None => None,
                };
                if !left_alone.is_empty() {
                    detail.push_str(&format!("; {} was there already and left as it was (if_exists: skip)", left_alone.join(", ")));
                }
                if let Some(c) = &records {
                    detail.push_str(&format!(
                        "; records: {} read, {} valid, {} rejected, {} skipped, {} written",
                        c.read, c.valid, c.rejected, c.skipped, c.written
                    ));
                }
                tracing::info!(flow, path = %entry.path, bytes = rec.size, "Delivered.");
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

/// Claims the `move_to` folder of the source (free names there are chosen one file at a time).
async fn claim_move(cx: &Ctx<'_>, held: &mut Option<Claim>) {
    if let Disposition::MoveTo(dir) = &cx.flow.after_success
        && held.is_none()
    {
        *held = Some(cx.claims.claim(vec![claims::key(&cx.flow.source.endpoint, &format!("{dir}/\u{0}move"))]).await);
    }
}

/// Claims the quarantine location (copies get free names there, one file at a time).
async fn claim_quarantine(cx: &Ctx<'_>) -> Option<Claim> {
    let q = cx.flow.quarantine.as_ref()?;
    Some(cx.claims.claim(vec![claims::key(&q.endpoint, &format!("{}/\u{0}quarantine", q.path))]).await)
}

/// What the sinks receive: the staged original, or the steps' output (and a rejects file).
struct Payload {
    file: PathBuf,
    size: u64,
    /// The name the sink templates see (`{{name}}`).
    name: String,
    rejects: Option<(PathBuf, u64)>,
    rejects_ext: &'static str,
    /// The SHA-256 `file` must have, when it is the staged file (a steps' output is fsynced
    /// when it is written: its size tells).
    sha256: Option<String>,
}

impl Payload {
    /// Whether the local files are all there, whole.
    async fn ready(&self) -> bool {
        staged_complete(&self.file, self.size, self.sha256.as_deref()).await
            && (match &self.rejects {
                Some((p, n)) => staged_complete(p, *n, None).await,
                None => true,
            })
    }
}

fn payload(cx: &Ctx<'_>, rec: &FileRecord, entry: &Entry, staged: &Path) -> Result<Payload, FileError> {
    let steps = cx.flow.steps.as_ref();
    let result = match steps {
        Some(_) => cx.ledger.file_result(&cx.flow.name, &rec.path)?,
        None => None,
    };
    let rejects_ext = steps.map_or("csv", |s| s.rejects_ext());
    Ok(match result.and_then(|r| r.output.map(|size| (size, r.rejects))) {
        Some((size, rejects)) => Payload {
            file: content::output_path(staged),
            size,
            name: content::delivered_name(steps, entry.path.name()),
            rejects: rejects.map(|n| (content::rejects_path(staged), n)),
            rejects_ext,
            sha256: None,
        },
        None => Payload {
            file: staged.to_path_buf(),
            size: rec.size,
            name: entry.path.name().to_string(),
            rejects: None,
            rejects_ext,
            sha256: rec.sha256.clone(),
        },
    })
}

/// What [`deliver_one`] did.
struct Sent {
    /// The sink took the payload's file itself (it is gone).
    took: bool,
    /// The target was there already and left as it was (`if_exists: skip`).
    skipped: Option<RemotePath>,
}

/// Delivers the payload (and its rejects file) to sink `i`, except what that sink already
/// confirmed; `data`: the payload's bytes, when it is held in memory.
async fn deliver_one(cx: &Ctx<'_>, rec: &mut FileRecord, rel: &str, i: usize, p: &Payload, data: Option<&[u8]>) -> Result<Sent, FileError> {
    let sink = &cx.flow.sinks[i];
    let ep = &*cx.sinks[i];
    let idx = i as u32;
    let rel_dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let (mut took, mut skipped) = (false, None);
    let target = match recovered(cx, rec, ep, idx, p.size).await? {
        Some(t) => {
            // Delivered before a crash; its trigger may not have been written yet.
            if sink.trigger.is_some() && !rec.deliveries.iter().any(|d| d.sink == TRIGGERS + idx && d.done) {
                trigger(cx, rec, i, &t, rel_dir).await?;
            }
            t
        }
        None => {
            let vars = NameVars::new(&p.name, rel_dir, p.size, cx.run, cx.now);
            let dir = sink.path.render(&vars).map_err(FileError::TargetName)?;
            let dir = RemotePath::parse(&dir).map_err(|e| FileError::TargetName(format!("sink {} path: {e}", sink.endpoint)))?;
            let name = sink.name.render(&vars).map_err(FileError::TargetName)?;
            // The last sink to need the payload may take it by renaming (a local folder).
            let last_use = (0..cx.sinks.len() as u32).filter(|&j| j != idx).all(|j| rec.deliveries.iter().any(|d| d.sink == j && d.done));
            // A staged file not hashed yet is hashed on its way out.
            let hash = unhashed(cx, rec);
            let (t, uploaded, taken) = send(cx, rec, i, idx, &dir, &name, rel_dir, (&p.file, data), p.size, last_use, hash).await?;
            took = taken;
            if uploaded && sink.trigger.is_some() {
                trigger(cx, rec, i, &t, rel_dir).await?;
            }
            if !uploaded {
                skipped = Some(t.clone());
            }
            t
        }
    };
    if let Some((file, size)) = &p.rejects {
        // Beside the delivered output, named after it: `roster-1.csv` → `roster-1.rejects.csv`.
        let ridx = REJECTS + idx;
        if recovered(cx, rec, ep, ridx, *size).await?.is_none() {
            let stem = NameVars::new(target.name(), "", 0, 0, cx.now).stem;
            let name = format!("{stem}.rejects.{}", p.rejects_ext);
            send(cx, rec, i, ridx, &target.parent(), &name, rel_dir, (file, None), *size, false, false).await?;
        }
    }
    Ok(Sent { took, skipped })
}

/// The recorded target of delivery `idx` when that delivery is complete: confirmed, or found
/// whole after a crash (the rename only happens after verification, so it happened).
async fn recovered(cx: &Ctx<'_>, rec: &mut FileRecord, ep: &dyn Endpoint, idx: u32, size: u64) -> Result<Option<RemotePath>, FileError> {
    let Some(d) = rec.deliveries.iter().find(|d| d.sink == idx) else { return Ok(None) };
    let Ok(t) = RemotePath::parse(&d.target) else { return Ok(None) };
    if d.done {
        return Ok(Some(t));
    }
    if transfer::already_delivered(ep, &t, size, d.replaces).await? {
        mark(rec, idx, &t, true, None);
        put_lazy(cx, rec)?;
        return Ok(Some(t));
    }
    Ok(None)
}

/// Writes sink `i`'s trigger file beside its delivered `target` and records it, so a resumed
/// run neither forgets it nor writes it twice.
async fn trigger(cx: &Ctx<'_>, rec: &mut FileRecord, i: usize, target: &RemotePath, rel_dir: &str) -> Result<(), FileError> {
    let sink = &cx.flow.sinks[i];
    let Some(template) = &sink.trigger else { return Ok(()) };
    let vars = NameVars::new(target.name(), rel_dir, 0, cx.run, cx.now);
    let name = template.render(&vars).map_err(FileError::TargetName)?;
    let path = target.parent().join(&name).map_err(|e| FileError::TargetName(format!("trigger name {name:?}: {e}")))?;
    if &path == target {
        return Err(FileError::Name(format!("the trigger name {name:?} is the delivered file's own: writing the trigger would empty it")));
    }
    let temp = temp_path(cx, i, &path, rel_dir, 0)?;
    let ep = &*cx.sinks[i];
    let _names = cx.claims.claim(vec![claims::key(&sink.endpoint, path.as_str()), claims::key(&sink.endpoint, temp.as_str())]).await;
    halt::point("triggering");
    retry(cx.flow.retry, "write trigger", || transfer::put_trigger(ep, &cx.folders, &temp, &path)).await?;
    mark(rec, TRIGGERS + i as u32, &path, true, None);
    put(cx, rec).await
}

/// Chooses the target for `dir/name` on sink `i` (exists-policy), records it, uploads `file`
/// (from `data`, its bytes, when it is held in memory) through the temporary name (taking
/// it by rename with `last_use`, where the sink can) and records the confirmation (and,
/// with `hash`, the SHA-256 of the file as read on its way out in `rec.sha256`). Returns
/// the final target, whether it was uploaded (not skipped by `if_exists: skip`), and whether
/// the sink took `file` itself (it is gone).
#[allow(clippy::too_many_arguments)]
async fn send(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    i: usize,
    idx: u32,
    dir: &RemotePath,
    name: &str,
    rel_dir: &str,
    (file, data): (&Path, Option<&[u8]>),
    size: u64,
    last_use: bool,
    hash: bool,
) -> Result<(RemotePath, bool, bool), FileError> {
    let sink = &cx.flow.sinks[i];
    let ep = &*cx.sinks[i];
    // Every name this delivery may write, claimed before the target is chosen: with `rename`
    // the folder (free names are chosen one file at a time), else the target and its temp name.
    let names = match sink.if_exists {
        IfExists::Rename => vec![claims::key(&sink.endpoint, &format!("{dir}/\u{0}rename"))],
        _ => {
            let wanted = dir.join(name).map_err(|e| FileError::TargetName(format!("target name {name:?}: {e}")))?;
            let temp = temp_path(cx, i, &wanted, rel_dir, size)?;
            vec![claims::key(&sink.endpoint, wanted.as_str()), claims::key(&sink.endpoint, temp.as_str())]
        }
    };
    let _names = cx.claims.claim(names).await;
    // Written straight under the final name (`direct`), an interrupted delivery left part of
    // the file there: its recorded target is written again rather than chosen anew (the
    // exists-policy would take that part for somebody else's file).
    let unfinished = rec.deliveries.iter().find(|d| d.sink == idx && !d.done).filter(|_| sink.direct());
    let target = match unfinished.and_then(|d| RemotePath::parse(&d.target).ok().map(|t| Target::Upload(t, d.replaces))) {
        Some(t) => t,
        None => retry(cx.flow.retry, "check target", || transfer::choose_target(ep, dir, name, sink.if_exists)).await?,
    };
    match target {
        Target::Skip(t) => {
            tracing::info!(flow = %cx.flow.name, target = %t, "Target exists; skipped (if_exists: skip).");
            mark(rec, idx, &t, true, None);
            // Lazy: lost, the policy finds the target again and skips again.
            put_lazy(cx, rec)?;
            Ok((t, false, false))
        }
        Target::Upload(t, replaces) => {
            // Durable before the rename can make `t` final: a resumed run checks this target
            // (against the file it replaces) instead of choosing one again (which would
            // deliver twice).
            mark(rec, idx, &t, false, replaces);
            put(cx, rec).await?;
            let temp = temp_path(cx, i, &t, rel_dir, size)?;
            let replace = sink.if_exists == IfExists::Overwrite;
            let sent = retry(cx.flow.retry, "upload", || {
                transfer::upload(ep, &cx.folders, &cx.budget, file, data, size, &temp, &t, replace, last_use, hash)
            })
            .await?;
            halt::point("renamed");
            if hash && rec.sha256.is_none() {
                rec.sha256 = sent.sha256;
            }
            mark(rec, idx, &t, true, None);
            // Lazy: lost, the recorded target is found whole and confirmed then.
            put_lazy(cx, rec)?;
            // The rename becomes durable with the next commit (before this file's next
            // durable transition, `done` at the latest): one folder fsync for many files.
            let took = sent.took.is_some();
            if let Some(folder) = sent.took {
                cx.commits.sync_first(folder);
            }
            Ok((t, true, took))
        }
    }
}

/// Whether staging hashes the file now or leaves it to the upload: only a file that nothing
/// needs to know the hash of before its upload (no content identity, no steps) and that no
/// sink takes by renaming it (a local folder: nothing would read it) is left unhashed.
fn staging_hash(cx: &Ctx<'_>) -> stage::Hash {
    let later = cx.flow.steps.is_none() && !cx.flow.source.identity.sha256 && cx.sinks.iter().all(|s| !s.capabilities().local_files);
    if later { stage::Hash::Deferred } else { stage::Hash::Now }
}

/// Whether the payload is the staged file and it was staged unhashed ([`stage::Hash::Deferred`]).
fn unhashed(cx: &Ctx<'_>, rec: &FileRecord) -> bool {
    rec.sha256.is_none() && cx.flow.steps.is_none()
}

/// The temporary name sink `i` uploads `target` under: `target` itself for a sink that
/// writes straight under the final name (`direct`).
fn temp_path(cx: &Ctx<'_>, i: usize, target: &RemotePath, rel_dir: &str, size: u64) -> Result<RemotePath, FileError> {
    let Some(template) = &cx.flow.sinks[i].temp_name else { return Ok(target.clone()) };
    let vars = NameVars::new(target.name(), rel_dir, size, cx.run, cx.now);
    let temp_name = super::naming::fit(&template.render(&vars).map_err(FileError::TargetName)?);
    target.parent().join(&temp_name).map_err(|e| FileError::TargetName(format!("temp name {temp_name:?}: {e}")))
}

fn mark(rec: &mut FileRecord, sink: u32, target: &RemotePath, done: bool, replaces: Option<Replaced>) {
    rec.deliveries.retain(|d| d.sink != sink);
    rec.deliveries.push(Delivery { sink, target: target.as_str().to_string(), done, replaces });
    rec.deliveries.sort_by_key(|d| d.sink);
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

/// Moves/deletes the files that go with a data file (its done file, the checksum and row
/// count its steps read) the same way as the data file, so that none is left to be read with
/// the next file of the same name. Best effort: the data file is what matters.
pub(super) async fn dispose_companions(cx: &Ctx<'_>, entry: &Entry, disp: &Disposition) {
    if *disp == Disposition::Keep {
        return;
    }
    let rel = entry.path.strip_prefix(&cx.flow.source.path).unwrap_or_else(|| entry.path.name());
    for c in super::discover::companions_of(&cx.flow.source, cx.flow.steps.as_ref(), entry, rel, cx.now) {
        if let Err(e) = disposition::apply(&*cx.source, &c, disp, None).await {
            tracing::warn!(flow = %cx.flow.name, path = %c, data = %entry.path, error = %e, "Could not dispose of a file that goes with a data file (done file, checksum or row count).");
        }
    }
}

/// A file whose identity was delivered before: record it, dispose of it like a success.
async fn duplicate(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry, d: DoneRecord) -> Result<(FileReport, bool), LedgerError> {
    let disp = &cx.flow.after_success;
    match disposition::apply(&*cx.source, &entry.path, disp, None).await {
        Ok(_) => dispose_companions(cx, entry, disp).await,
        Err(e) => tracing::warn!(flow = %cx.flow.name, path = %entry.path, error = %e, "Could not dispose of a duplicate."),
    }
    rec.state = FileState::Duplicate;
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    let detail = format!("same identity as {} delivered in run {} on {}", d.path, d.run, date(d.at));
    Ok((report(&entry.path, Outcome::Skipped, detail), false))
}

/// Records a failure and applies `after.failure` when it is permanent, or when the file has
/// failed transiently in `retry.give_up_after` runs (then it is quarantined instead when it
/// was downloaded whole and the flow has a quarantine).
async fn fail(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    e: FileError,
    staged: &Path,
    kept: Option<Vec<u8>>,
) -> Result<(FileReport, bool), LedgerError> {
    let e = e.in_state_folder(super::state_folder(cx.staging_dir));
    let kind = e.kind();
    if kind == ErrorKind::NotFound && rec.deliveries.iter().all(|d| !d.done) && matches!(cx.source.stat(&entry.path).await, Ok(None)) {
        return vanished(cx, rec, entry, staged).await;
    }
    let message = e.to_string();
    rec.attempts += 1;
    rec.last_error = Some(ErrorRecord { kind, message: message.clone(), at: now_millis() });
    let abort = e.aborts_run();
    let mut detail = if delivered(rec) {
        format!("delivered to {}, but `after.success` failed: {message}", delivered_to(cx, rec).join(", "))
    } else {
        message
    };
    let limit = cx.flow.retry.give_up_after;
    // Only a file's own passing trouble counts towards giving up; a run-wide problem (local
    // disk, ledger) is not the file's fault, and a delivered file only waits for disposal.
    let give_up = kind.is_passing() && !abort && limit > 0 && rec.attempts >= limit && !delivered(rec);
    if kind == ErrorKind::StateFull {
        // The space back first (this file's staging copy and the steps' outputs: the next run
        // downloads it again), so the failure can be recorded and the next run has room.
        content::discard_with_outputs(staged).await;
    } else if let Some(data) = kept.filter(|_| kind.is_passing() || abort) {
        // A file held in memory is staged on disk after all, where what comes next (the
        // next run, or the quarantine of a given-up file) looks for it.
        if let Err(we) = pipe::write_whole(staged.to_path_buf(), data).await {
            tracing::warn!(flow = %cx.flow.name, path = %entry.path, file = %staged.display(), error = %we, "Could not write a failed file's staging copy; the next run downloads it again.");
        }
    }
    if give_up {
        detail = format!("gave up after failing in {} runs; last error: {detail}", rec.attempts);
        if let Some(f) = quarantine_given_up(cx, rec, entry, staged, &detail).await? {
            return Ok((f, false));
        }
    }
    if kind == ErrorKind::StateFull {
        // Its message says what to do; the file stays where it was, to be taken again.
    } else if (kind.is_passing() || abort) && !give_up {
        detail.push_str(&format!(" (attempt {}; the next run resumes it)", rec.attempts));
    } else {
        rec.state = FileState::Failed;
        content::discard_with_outputs(staged).await;
        if cx.flow.after_failure == Disposition::Delete {
            // Nothing of this file was kept anywhere (a quarantined file goes another way):
            // deleting the source now would lose it.
            detail.push_str("; source kept, retried next run (`after.failure: delete` deletes a file only once a copy is in quarantine)");
        } else {
            match disposition::apply(&*cx.source, &entry.path, &cx.flow.after_failure, None).await {
                Ok(Some(t)) => {
                    detail.push_str(&format!("; source moved to {t}"));
                    rec.disposed_to = Some(t.as_str().to_string());
                    dispose_companions(cx, entry, &cx.flow.after_failure).await;
                }
                Ok(None) => detail.push_str("; source kept, retried next run"),
                Err(de) => detail.push_str(&format!("; after.failure could not be applied: {de}")),
            }
        }
    }
    tracing::error!(flow = %cx.flow.name, path = %entry.path, kind = %kind, error = %detail, "File failed.");
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    let mut f = report(&entry.path, Outcome::Failed, detail);
    f.error_kind = Some(kind);
    Ok((f, abort))
}

/// A file the partner removed (or moved away) between its listing and its download, before
/// anything was delivered: not a failure of the flow. Skipped in the run's report and
/// `vanished` in the ledger alike; no attempt is counted, no `after.failure` applied (there
/// is nothing to apply it to), and no event raised.
async fn vanished(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry, staged: &Path) -> Result<(FileReport, bool), LedgerError> {
    let detail = "disappeared from the source before it could be taken";
    tracing::info!(flow = %cx.flow.name, path = %entry.path, "Skipped: the file disappeared from the source before it could be taken.");
    content::discard_with_outputs(staged).await;
    rec.state = FileState::Vanished;
    rec.last_error = None;
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    Ok((report(&entry.path, Outcome::Skipped, detail), false))
}

/// Why a file just read must not be delivered: the file the endpoint opened (`opened`, the
/// open handle's attributes, which name the version read even when another file has taken
/// its name since) is not the version that was listed — another size or modification time:
/// the partner replaced it in between. Its identity is the listing's, so delivering it under
/// that identity would have the next run deliver the new version a second time. `None` when
/// it is the listed one, or the endpoint cannot say (FTP: `RETR` has no handle to ask; there
/// `changed_since_read` still keeps a moved or deleted source that changed).
///
/// Only in a flow that keeps its source (a moved or deleted one is checked before it is
/// moved, `changed_since_read`, which also delivers at once a version replaced before it was
/// read) and where the identity has the modification time but not the content: `[sha256]` is
/// what was read, and without the time a same-size replacement has the same identity (and a
/// size change fails the read). Costs no round trip: the attributes come with the read.
fn replaced_since_listed(cx: &Ctx<'_>, rec: &FileRecord, opened: Option<&Entry>) -> Option<String> {
    let id = cx.flow.source.identity;
    let opened = opened.filter(|_| cx.flow.after_success == Disposition::Keep && id.mtime && !id.sha256)?;
    if other_version(rec, opened) == (false, false) {
        return None;
    }
    let mtime = mtime_millis(opened);
    let when = |m: Option<crate::ledger::Millis>| m.map(date).unwrap_or_else(|| "no time".into());
    Some(format!(
        "replaced since it was listed ({} bytes, modified {} then; {} bytes, modified {} when read); the next run takes the new version",
        rec.size,
        when(rec.mtime),
        opened.size,
        when(mtime)
    ))
}

/// Why the source must not be moved or deleted: it is no longer what was read (another
/// size or time than the listing's: the partner wrote to it, or put a new file in its place,
/// while it was moved). `None` when it is unchanged, or gone (moved by an earlier attempt).
///
/// Only another time, with the size unchanged, may also mean the partner replaced the file
/// *before* it was read (or touched it): then what is there is what was delivered, and
/// keeping it would have the next run deliver it again under its new time. The source is
/// read once more to tell (only in that rare case: the usual file costs the one stat).
async fn changed_since_read(cx: &Ctx<'_>, rec: &FileRecord, path: &RemotePath) -> Result<Option<String>, FileError> {
    let Some(now) = retry(cx.flow.retry, "stat source", || async { Ok(cx.source.stat(path).await?) }).await? else { return Ok(None) };
    let (new_size, new_time) = other_version(rec, &now);
    if !new_size
        && new_time
        && let Some(delivered) = &rec.sha256
        // Trouble reading it leaves the source where it is, as any change does.
        && retry(cx.flow.retry, "read source", || source_sha256(&*cx.source, path, rec.size)).await.ok().flatten().as_ref()
            == Some(delivered)
    {
        tracing::info!(flow = %cx.flow.name, path = %path, "The source has another time than when it was listed, and the content that was delivered.");
        return Ok(None);
    }
    if new_size || new_time {
        let what = if new_size { format!("{} bytes now, {} when read", now.size, rec.size) } else { "another time than when read".into() };
        return Ok(Some(format!("it changed while it was moved ({what}); the next run takes it as a new file")));
    }
    Ok(None)
}

/// Whether `e` has another size, and another modification time, than the version `rec`
/// describes (the listed one). A time one side does not have tells nothing.
fn other_version(rec: &FileRecord, e: &Entry) -> (bool, bool) {
    let mtime = mtime_millis(e);
    (e.size != rec.size, mtime.is_some() && rec.mtime.is_some() && mtime != rec.mtime)
}

/// The SHA-256 of what `path` on `ep` holds now, when it has `size` bytes (`None` otherwise).
async fn source_sha256(ep: &dyn Endpoint, path: &RemotePath, size: u64) -> Result<Option<String>, FileError> {
    use sha2::Digest as _;
    let mut src = ep.open_read(path, 0).await?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; stage::CHUNK];
    let mut read = 0u64;
    loop {
        let n = crate::endpoint::read_full(&mut *src, &mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        read += n as u64;
        if read > size {
            return Ok(None);
        }
    }
    Ok((read == size).then(|| hex::encode(hasher.finalize())))
}

/// Where the file went: `endpoint:/path` of every delivery (and trigger) recorded.
fn delivered_to(cx: &Ctx<'_>, rec: &FileRecord) -> Vec<String> {
    rec.deliveries.iter().filter_map(|d| cx.flow.sinks.get(sink_of(d.sink)).map(|s| format!("{}:/{}", s.endpoint, d.target))).collect()
}

/// Every sink confirmed: what is left is disposing of the source.
fn delivered(rec: &FileRecord) -> bool {
    matches!(rec.state, FileState::Delivered | FileState::Disposing)
}

/// Quarantines a given-up file when its staged copy is whole and the flow has a quarantine;
/// `None` when it cannot be (then it fails for good). A quarantine that fails itself is
/// logged and the file fails for good too: the source stays where `after.failure` puts it.
async fn quarantine_given_up(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    staged: &Path,
    reason: &str,
) -> Result<Option<FileReport>, LedgerError> {
    let whole = matches!(rec.state, FileState::Staged | FileState::Processed | FileState::Delivering | FileState::Quarantining);
    let Some(q) = cx.flow.quarantine.as_ref().filter(|_| whole && cx.quarantine.is_some()) else {
        return Ok(None);
    };
    let mut result = cx.ledger.file_result(&cx.flow.name, &rec.path)?.unwrap_or_default();
    if result.quarantine.is_none() {
        result.quarantine =
            Some(QuarantineRecord { reason: reason.to_string(), at: now_millis(), endpoint: q.endpoint.clone(), ..Default::default() });
    }
    rec.state = FileState::Quarantining;
    rec.updated = now_millis();
    cx.store(Transition::Result { flow: cx.flow.name.clone(), rec: rec.clone(), result }).await?;
    let _names = claim_quarantine(cx).await;
    match quarantine::put_aside(cx, rec, entry, staged).await {
        Ok(f) => Ok(Some(f)),
        Err(FileError::Ledger(e)) => Err(e),
        Err(e) => {
            tracing::error!(flow = %cx.flow.name, path = %entry.path, error = %e, "Could not quarantine a given-up file.");
            Ok(None)
        }
    }
}
