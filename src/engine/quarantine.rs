//! Quarantine: putting a refused file aside (the `quarantining` → `quarantined` transition),
//! and the operator's ways back — release and reprocess (`wharf quarantine …`).
//!
//! Putting aside follows the delivery rules: the copy's name is chosen and recorded before the
//! upload, the upload goes through a temporary name and is verified, so a resumed run checks
//! the recorded copy instead of uploading again. Reports go beside the copy as
//! `NAME.report.json` / `NAME.report.txt` ([`naming::beside`]: shortened past 255 bytes). Only then is the source disposed of, as
//! `after.failure` says, and the file recorded as quarantined. The recorded verdict stands
//! across a crash for the bytes refused: a resumed file's source is read again (downloaded
//! again when its staged copy is gone), the steps are not run on the bytes they refused, and
//! other bytes found there are taken as a new file, never disposed of on account of the old
//! verdict; a source that cannot be read again is left as it is for the next run
//! ([`resumed`]); a source gone with its copy lost is put aside from
//! its staged copy when that is whole ([`finish_left_aside`]), and given up by `release` when
//! nothing is left to put aside.

use std::path::Path;

use crate::config::Flow;
use crate::config::flow::Disposition;
use crate::endpoint::{DynEndpoint, Endpoint, EndpointError, Entry, EntryKind, ErrorKind, RemotePath};
use crate::ledger::quarantined::{Earlier, QuarantinedFile};
use crate::ledger::{
    ErrorRecord, EventKind, FileRecord, FileResult, FileState, Ledger, LedgerError, Millis, QuarantineRecord, SourceFate, Transition,
    now_millis, to_millis,
};

use super::error::FileError;
use super::lifecycle::{self, Ctx};
use super::retry::retry;
use super::{
    FileReport, Outcome, REPORT_LOG_TARGET, RunOptions, RunReport, alerts, content, disposition, endpoints, naming, stage, transfer,
};

/// A quarantine command could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum QuarantineError {
    #[error("flow {flow}: {path} is not quarantined (see `wharf quarantine list {flow}`)")]
    NotQuarantined { flow: String, path: String },
    #[error(
        "flow {flow}: the quarantined copy of /{path}, {copy}, is gone: nothing to reprocess (`wharf quarantine release {flow} /{path}` forgets the file, and a run takes it again if it is at the source)"
    )]
    CopyGone { flow: String, path: String, copy: String },
    #[error("flow {flow}: {path}: {source}")]
    File {
        flow: String,
        path: String,
        #[source]
        source: Box<FileError>,
    },
    #[error(
        "flow {flow}: the quarantined copy of /{path}, {copy}, is the only copy left (`after.failure: delete` deleted the source): releasing it would lose the file; `wharf quarantine reprocess {flow} /{path}` delivers it once the flow is fixed, or pass `--force` to release it all the same"
    )]
    LastCopy { flow: String, path: String, copy: String },
    #[error(
        "flow {flow}: /{path} was left being quarantined by a run that stopped, and the next run finishes it ({what}; `wharf plan {flow}` shows how): nothing to give up"
    )]
    BeingQuarantined { flow: String, path: String, what: String },
    #[error(
        "flow {flow}: /{path} has {n} quarantined files (a newer file was taken under its name after each but the last): {copies}; say which with `--copy COPY`"
    )]
    Ambiguous { flow: String, path: String, n: usize, copies: String },
    #[error("flow {flow}: no quarantined file of /{path} has the copy {copy} (its copies: {copies}; see `wharf quarantine list {flow}`)")]
    NoSuchCopy { flow: String, path: String, copy: String, copies: String },
    #[error(
        "flow {flow}: the quarantined copy {copy} is of an earlier file under /{path}: a newer file has been taken under that name since ({now}), so it cannot be reprocessed as /{path}; `wharf quarantine release {flow} /{path} --copy {copy}` removes it from quarantine (fetch it from there first to keep it)"
    )]
    Superseded { flow: String, path: String, copy: String, now: String },
    #[error(
        "flow {flow}: the quarantined copy {copy} of an earlier file under /{path} is the only copy of it left (`after.failure: delete` deleted its source, and a newer file has been taken under the name since): releasing it would lose it; fetch it from the quarantine folder first, then pass `--force`"
    )]
    EarlierLastCopy { flow: String, path: String, copy: String },
    #[error(
        "flow {flow}: {copy} names the copy of several quarantined files: {files}; give the copy as `ENDPOINT:/PATH`, or the file's source path with `--copy`"
    )]
    AmbiguousCopy { flow: String, copy: String, files: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The temporary name of a copy into the quarantine location: hidden, and flow `flow`'s own
/// (two flows may share a quarantine folder, and find the same free name at once).
fn temp_for(target: &RemotePath, flow: &str) -> Result<RemotePath, FileError> {
    let name = naming::fit(&format!(".{}.{flow}.part", target.name()));
    target.parent().join(&name).map_err(|e| FileError::Name(format!("temporary name for {target}: {e}")))
}

/// The name a copy of `source` takes in the quarantine folder `dir` on `ep`: the first free
/// name for the source's name as `ep` can create it ([`naming::creatable`]: over FTP, `a.csv `
/// is put aside as `a.csv_`, a name wharf chose and records, not one the server made up or
/// refused), passing over the names `taken` says are spoken for besides what `ep` holds
/// (`wharf plan`: the copies earlier files of the same run make): the name a `move_to` of it
/// into `dir` takes (`disposition::move_target`). Only looks: what [`put_aside`] chooses and
/// `wharf plan` shows.
pub(super) async fn copy_name(
    ep: &dyn Endpoint,
    dir: &RemotePath,
    source: &RemotePath,
    taken: impl Fn(&RemotePath) -> bool,
) -> Result<RemotePath, FileError> {
    disposition::move_target(ep, source, dir, taken).await
}

fn beside(copy: &RemotePath, ext: &str) -> Result<RemotePath, FileError> {
    copy.parent().join(&naming::beside(copy.name(), ext)).map_err(|e| FileError::Name(format!("report name for {copy}: {e}")))
}

/// The copy a run putting `source` aside in the quarantine folder `dir` on `ep` confirms or
/// writes, as [`put_aside`] does: the copy recorded before a crash (`recorded`) when it holds
/// the file already (`true`: confirmed by its `size` and `expect`, not uploaded again) or is
/// not there (written under that name); else (none recorded, or the name taken by another
/// file since) the first free name ([`copy_name`], passing over `taken`). Only looks: `wharf
/// plan` names from it the copy of a file left `quarantining`.
pub(super) async fn resumed_copy(
    ep: &dyn Endpoint,
    dir: &RemotePath,
    source: &RemotePath,
    recorded: Option<&RemotePath>,
    size: u64,
    expect: transfer::Expect<'_>,
    taken: impl Fn(&RemotePath) -> bool,
) -> Result<(RemotePath, bool), FileError> {
    if let Some(c) = recorded.filter(|c| !taken(c)) {
        if ep.stat(c).await?.is_none() {
            return Ok((c.clone(), false));
        }
        if transfer::already_delivered(ep, c, size, None, expect).await? {
            return Ok((c.clone(), true));
        }
    }
    Ok((copy_name(ep, dir, source, taken).await?, false))
}

/// Makes the quarantine copy of `staged` (and its reports beside it), as [`resumed_copy`]
/// names it, the name recorded before the upload: the copy a resumed run finds made is not
/// made again. Returns the copy, the file's quarantine record and its result (stored with the
/// name). The caller holds the claim on the quarantine location.
async fn make_copy(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    staged: &Path,
) -> Result<(RemotePath, QuarantineRecord, FileResult), FileError> {
    let flow = &cx.flow.name;
    let (Some(q), Some(ep)) = (cx.flow.quarantine.as_ref(), cx.quarantine.as_ref()) else {
        return Err(FileError::Name(format!("flow {flow}: {} must be quarantined, but the flow has no `quarantine` location", entry.path)));
    };
    let ep: &dyn Endpoint = &**ep;
    let mut result = cx.ledger.file_result(flow, &rec.path)?.unwrap_or_default();
    let mut qr = result.quarantine.clone().unwrap_or_else(|| QuarantineRecord {
        reason: "refused by its content steps".into(),
        at: now_millis(),
        endpoint: q.endpoint.clone(),
        reports: q.report,
        ..Default::default()
    });
    // The quarantine's own trouble (a full disk there) says what was being put aside, and where.
    let reason = qr.reason.clone();
    let aside = |e: FileError| match e {
        FileError::Ledger(_) => e,
        e => FileError::Quarantine { endpoint: q.endpoint.clone(), reason: reason.clone(), source: Box::new(e) },
    };
    // A copy recorded on another endpoint (the flow's quarantine moved since) is not looked
    // for here: the copy is made where the flow quarantines now, and recorded so.
    let mut recorded = qr.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()).filter(|_| qr.endpoint == q.endpoint);
    qr.endpoint = q.endpoint.clone();
    let sha256 = rec.sha256.clone();
    let expect = match sha256.as_deref() {
        Some(h) => transfer::Expect::Sha256(h),
        None => transfer::Expect::File(staged),
    };
    // Free names taken by somebody else (another flow sharing the folder, a person) between
    // the choice and the rename: the rename never replaces a file, another name is chosen.
    let mut raced = 0;
    let copy = loop {
        let (c, made) = retry(cx.flow, "check the quarantine copy", || async {
            ep.create_dir_all(&q.path).await?;
            resumed_copy(ep, &q.path, &entry.path, recorded.as_ref(), rec.size, expect, |_| false).await
        })
        .await
        .map_err(aside)?;
        if recorded.as_ref() != Some(&c) {
            // Durable before the copy is made: a resumed run checks this name.
            qr.copy = Some(c.as_str().to_string());
            result.quarantine = Some(qr.clone());
            rec.updated = now_millis();
            cx.store(Transition::Result { flow: flow.clone(), rec: rec.clone(), result: result.clone() }).await?;
            recorded = Some(c.clone());
        }
        super::halt::point("quarantining");
        if made {
            break c;
        }
        let temp = temp_for(&c, flow)?;
        let sent = retry(cx.flow, "quarantine upload", || {
            transfer::upload(ep, &cx.folders, &cx.budget, staged, None, rec.size, &temp, &c, false, false, false, true)
        })
        .await;
        match sent {
            Err(FileError::TargetExists { .. }) if raced < naming::MAX_NAME_RACES => {
                raced += 1;
                tracing::info!(flow = %flow, copy = %c, "Quarantine name taken by somebody else before the rename; choosing another.");
            }
            sent => {
                sent.map_err(aside)?;
                break c;
            }
        }
    };
    if qr.reports {
        let (json, txt) = content::report_paths(staged);
        for (local, ext) in [(json, "report.json"), (txt, "report.txt")] {
            let Ok(meta) = tokio::fs::metadata(&local).await else {
                // Only possible when the staging folder was emptied after the verdict was recorded.
                tracing::warn!(flow = %flow, path = %entry.path, report = %local.display(), "Quarantine report missing; not uploaded.");
                continue;
            };
            let (target, size) = (beside(&copy, ext)?, meta.len());
            let temp = temp_for(&target, flow)?;
            retry(cx.flow, "upload the quarantine report", || {
                transfer::upload(ep, &cx.folders, &cx.budget, &local, None, size, &temp, &target, true, false, false, true)
            })
            .await
            .map_err(aside)?;
        }
    }
    Ok((copy, qr, result))
}

/// Copies the staged original (and its reports) to the quarantine location ([`make_copy`]),
/// disposes of the source as `after.failure` says, and records the file as quarantined. The
/// caller holds the claim on both the quarantine location and the `after.failure: move_to`
/// folder (`lifecycle::claim_quarantine`), taken at once.
pub(super) async fn put_aside(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry, staged: &Path) -> Result<FileReport, FileError> {
    let flow = &cx.flow.name;
    let (copy, qr, mut result) = make_copy(cx, rec, entry, staged).await?;
    let mut detail = format!("quarantined to {}:{copy}: {}", qr.endpoint, qr.reason);
    // Where `move_to` puts the source is recorded before the move: a crash after it leaves a
    // record naming where it went ([`left_aside`]).
    let recorded = lifecycle::recorded_move(rec);
    if let Some(said) = disposition::dispose_failed(cx, rec, entry, recorded, "quarantine_disposing").await? {
        detail.push_str(&said);
    }
    // A crash here leaves the file `quarantining`, its source no longer listed: the next run
    // finishes it from the copy ([`finish_left_aside`]).
    super::halt::point("quarantine_disposed");
    rec.state = FileState::Quarantined;
    rec.updated = now_millis();
    let target = format!("{}:{copy}", qr.endpoint);
    result.quarantine = Some(qr);
    let t = Transition::Result { flow: flow.clone(), rec: rec.clone(), result: result.clone() };
    store_quarantined(cx, t, &entry.path, &detail, rec.updated).await?;
    content::discard_with_outputs(staged).await;
    // The file's line in the report says where it went: `wharf run` leaves this one out.
    tracing::warn!(target: REPORT_LOG_TARGET, flow = %flow, path = %entry.path, copy = %copy, "Quarantined.");
    // A kill here leaves the file recorded quarantined with its event: the next run finds it
    // settled, and raises nothing more.
    super::halt::point("quarantined");
    Ok(FileReport {
        path: entry.path.to_string(),
        outcome: Outcome::Quarantined,
        detail,
        targets: vec![target],
        bytes: rec.size,
        error_kind: None,
        records: Some(result.counts),
    })
}

/// Stores `t`, which records the file at `path` quarantined, with its `quarantined` event
/// (`detail`: its report line's) in the same transaction, and logs the event.
async fn store_quarantined(cx: &Ctx<'_>, t: Transition, path: &RemotePath, detail: &str, at: Millis) -> Result<(), LedgerError> {
    let detail = if cx.is_response() { format!("{}{detail}", alerts::RESPONSE_REFUSED) } else { detail.to_string() };
    let event = alerts::quarantined(cx.events_flow, cx.run, &path.to_string(), &detail, at);
    cx.store(Transition::WithEvent { transition: Box::new(t), event }).await?;
    alerts::log(cx.events_flow, EventKind::Quarantined, &path.to_string(), &detail);
    Ok(())
}

/// What became of the copy a quarantine given up had made ([`abandon`]).
pub(super) struct Abandoned {
    /// For the file's report line: `; ` and what became of the copy, or empty when none of
    /// it was made.
    pub said: String,
    /// No copy of the file is left at the name recorded (removed, or never made): the name
    /// is dropped from the file's record.
    pub gone: bool,
}

/// Removes (best effort, through the quarantine endpoint, logged) the copy a quarantine that
/// is given up had made (`qr`, recorded before its upload), and its reports: the file is not
/// quarantined, so a copy left in the quarantine folder would be an orphan nothing lists or
/// removes (`wharf quarantine list` shows quarantined files only). The source stays where
/// `after.failure` leaves it, so nothing is lost. Only a copy that holds the file's very
/// bytes (its size and SHA-256, else its staged copy) is removed: a file that took the name
/// meanwhile is somebody else's.
pub(super) async fn abandon(cx: &Ctx<'_>, rec: &FileRecord, staged: &Path, qr: Option<&QuarantineRecord>) -> Abandoned {
    let flow = &cx.flow.name;
    let none = Abandoned { said: String::new(), gone: true };
    let Some(qr) = qr.filter(|q| q.copy.is_some()) else { return none };
    // A copy recorded on another endpoint than the flow's quarantine now is not looked for
    // (as `make_copy`): it is not this run's.
    let here = cx.flow.quarantine.as_ref().is_some_and(|q| q.endpoint == qr.endpoint);
    let (Some(ep), Some(copy), true) = (cx.quarantine.as_ref(), qr.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()), here) else {
        return Abandoned { gone: false, ..none };
    };
    let shown = format!("{}:{copy}", qr.endpoint);
    let expect = match rec.sha256.as_deref() {
        Some(h) => transfer::Expect::Sha256(h),
        None if tokio::fs::metadata(staged).await.is_ok() => transfer::Expect::File(staged),
        None => transfer::Expect::Size,
    };
    let left = |e: &dyn std::fmt::Display| {
        tracing::warn!(flow = %flow, path = %rec.path, copy = %shown, error = %e, "Could not remove the copy of a file whose quarantine was given up; remove it by hand.");
        Abandoned { said: format!("; its copy {shown} is left in quarantine (removing it failed: {e}; remove it by hand)"), gone: false }
    };
    match transfer::already_delivered(&**ep, &copy, rec.size, None, expect).await {
        Ok(false) => return none,
        Ok(true) => {}
        Err(e) => return left(&e),
    }
    match remove_copy(&**ep, qr).await {
        Ok(_) => {
            tracing::info!(flow = %flow, path = %rec.path, copy = %shown, "Removed the copy of a file whose quarantine was given up.");
            Abandoned { said: format!("; its copy {shown} was removed from quarantine"), gone: true }
        }
        Err(e) => left(&e),
    }
}

/// What a run resuming a file left `quarantining` with its source listed does with it
/// ([`resumed`]).
pub(super) enum Resumed {
    /// The source holds the bytes refused, staged at `staged`: they are put aside as decided.
    Stands,
    /// The source holds other bytes: nothing refused them, and the caller takes them as a new
    /// file, which the steps judge, under a record of its own; the file refused stays listed
    /// as an earlier quarantined file with the copy named for it (`wharf quarantine list`,
    /// `release`), made from its staged copy when that was whole.
    NewFile,
    /// The source could not be read again (nor downloaded again), or holds other bytes and
    /// putting the bytes refused aside from the staged copy failed: left as it is for the
    /// next run, `after.failure` not applied to bytes nobody judged (its line in the report,
    /// [`left_unjudged`]).
    Left(FileReport),
}

/// Whether the source of a file an earlier run left `quarantining` (listed again, the same
/// version by its size and time) still holds the bytes refused: the verdict stands across a
/// crash, whatever the steps would say now, but only for those bytes (the one rule:
/// [`refused_bytes`]). `whole`: its staged copy holds them; then the source is read again
/// ([`at_source`]) before `after.failure` acts on it or the record says it is the file
/// quarantined (the partner may have rewritten it with the same size and time: FTP's
/// coarse times make that likelier); else the source is downloaded again into `staged`
/// ([`restage`]). Other bytes are never deleted, moved or recorded quarantined on account
/// of the old verdict ([`Resumed::NewFile`]), nor are bytes that could not be read again
/// (a read refused for good, say): the file is left as it is for the next run
/// ([`Resumed::Left`]).
pub(super) async fn resumed(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry, staged: &Path, whole: bool) -> Result<Resumed, FileError> {
    let looked = if whole { at_source(cx, rec, &entry.path).await } else { restage(cx, rec, entry, staged).await };
    match looked {
        Ok(true) => return Ok(Resumed::Stands),
        Ok(false) => {}
        Err(e) => {
            if !whole {
                // Part of a download: the next run downloads it again from the start.
                stage::discard(staged).await;
            }
            let why = format!(
                "left quarantining by an earlier run; reading its source again, to confirm it still holds the bytes refused before `after.failure` acts on it, failed: {e}; the source is left as it is (the next run tries again)"
            );
            return left_unjudged(cx, entry, e, why);
        }
    }
    if whole {
        // The bytes refused are only in the staged copy, which the new file's download
        // replaces: put aside first (the source untouched), under the name recorded.
        let _names = lifecycle::claim_quarantine(cx).await;
        if let Err(e) = make_copy(cx, rec, entry, staged).await {
            let why = format!(
                "left quarantining by an earlier run, and the source holds other bytes now than those refused (the same size and time); putting the bytes refused aside from its staged copy {} failed: {e}; the source is left as it is (the next run tries again)",
                staged.display()
            );
            return left_unjudged(cx, entry, e, why);
        }
    }
    content::discard_with_outputs(staged).await;
    let qr = cx.ledger.file_result(&cx.flow.name, &rec.path)?.and_then(|r| r.quarantine);
    match qr.and_then(|q| q.shown_copy()) {
        Some(copy) => tracing::warn!(
            flow = %cx.flow.name, path = %entry.path, copy = %copy,
            "The source no longer holds the bytes refused; taking it as a new file. The file refused stays quarantined as an earlier file, its copy named (`wharf quarantine list`)."
        ),
        None => {
            tracing::info!(flow = %cx.flow.name, path = %entry.path, "The source no longer holds the bytes refused; taking it as a new file.")
        }
    }
    Ok(Resumed::NewFile)
}

/// A file left `quarantining` whose source holds bytes nobody judged this run (it could not
/// be read again, or holds other bytes and the ones refused could not be put aside first):
/// failed for this run (`e`; `why` says it), the source left as it is — no `after.failure`,
/// no attempt counted towards giving up, which would act on it — for the next run to try
/// again ([`Resumed::Left`]). An error that stops the run goes to the caller, which leaves
/// the file as it is too (`lifecycle::fail`).
fn left_unjudged(cx: &Ctx<'_>, entry: &Entry, e: FileError, why: String) -> Result<Resumed, FileError> {
    if e.stops_run() {
        return Err(e);
    }
    Ok(Resumed::Left(FileReport::left_unjudged(&cx.flow.name, &entry.path, &e, why).0))
}

/// Whether `got`, the SHA-256 of what the source of a file being quarantined holds now, is
/// of the bytes refused: the SHA-256 recorded with the verdict. A file given up without one,
/// whose staged copy was a link to a local source, is this version whatever its bytes.
fn refused_bytes(rec: &FileRecord, got: Option<&str>) -> bool {
    rec.sha256.is_none() || got == rec.sha256.as_deref()
}

/// Whether the source at `path` holds the bytes refused ([`refused_bytes`]), read again in
/// place (or the server's checksum, where it offers one: `transfer::hash_remote`). Gone since
/// it was listed, nothing else is there: the quarantine goes on, and finds nothing to dispose
/// of.
async fn at_source(cx: &Ctx<'_>, rec: &FileRecord, path: &RemotePath) -> Result<bool, FileError> {
    if rec.sha256.is_none() {
        return Ok(refused_bytes(rec, None));
    }
    retry(cx.flow, "read the source again", || async {
        Ok(match cx.source.stat(path).await? {
            None => true,
            Some(e) if e.kind != EntryKind::File || e.size != rec.size => false,
            Some(_) => refused_bytes(rec, Some(&transfer::hash_remote(&*cx.source, path).await?)),
        })
    })
    .await
}

/// Downloads the source of a file left `quarantining` again into `staged`, its staged copy
/// gone since the verdict was recorded (the staging folder emptied, or cleared when the state
/// folder was full). `true` when `staged` now holds the very bytes put aside
/// ([`refused_bytes`]): they are quarantined as refused, as they are when the staged copy
/// stays and as `wharf plan` says (`wharf quarantine reprocess` takes a quarantined file
/// through the steps again). `false` when the source holds other bytes (rewritten with the
/// same size and time, or changed while read).
async fn restage(cx: &Ctx<'_>, rec: &FileRecord, entry: &Entry, staged: &Path) -> Result<bool, FileError> {
    tracing::info!(flow = %cx.flow.name, path = %entry.path, "The staged copy of a file being quarantined is gone; downloading it again.");
    let st = retry(cx.flow, "download again for the quarantine", || {
        stage::stage(&*cx.source, &entry.path, entry.size, staged, false, stage::Hash::Now, false, &cx.budget)
    })
    .await;
    match st {
        Err(FileError::Changed(_)) => Ok(false),
        Err(e) => Err(e),
        Ok(st) => Ok(refused_bytes(rec, st.sha256.as_deref())),
    }
}

/// What a file an earlier run left `quarantining` becomes once its source is no longer at
/// its path, judged from what the ledger recorded, the quarantine location and its staged
/// copy alone ([`left_aside`]): the run records it ([`finish_left_aside`]), `wharf plan` shows
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LeftAside {
    /// Its recorded copy is there, whole (`endpoint:/path`): the crash came after the copy was
    /// made and `after.failure` applied, before the file was recorded quarantined. `detail`:
    /// its report line; `moved`: where `after.failure: move_to` put the source (the target
    /// recorded before the move, and found there).
    Confirmed { copy: String, detail: String, moved: Option<RemotePath> },
    /// No copy of it can be confirmed, but its staged copy holds the very bytes refused (the
    /// size and SHA-256 recorded with the verdict): it is put aside from that, as `copy` in
    /// the quarantine folder ([`resumed_copy`]), and recorded quarantined. `reason`: why it
    /// was refused; `fate`: what `after.failure` made of the source; `moved`: as above. Its
    /// report line: [`from_staged`].
    FromStaged { copy: RemotePath, reason: String, fate: String, moved: Option<RemotePath> },
    /// No copy of it can be confirmed, nor made, and the source is gone.
    Unconfirmed(Unconfirmed),
}

/// A file left `quarantining` whose source is gone and of which no copy can be confirmed nor
/// made ([`LeftAside::Unconfirmed`]): its situation is worded once ([`situation`]) for what
/// the run fails it with (and `wharf plan` shows), [`failure`], and for what `wharf
/// quarantine release` says once it gave the file up, [`given_up`].
///
/// [`situation`]: Unconfirmed::situation
/// [`failure`]: Unconfirmed::failure
/// [`given_up`]: Unconfirmed::given_up
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unconfirmed {
    flow: String,
    path: RemotePath,
    /// Why no copy of it can be confirmed: none recorded, not there, or not to be looked at.
    why: String,
    /// Where else the file may be (`; look for it in …`; empty: nowhere known).
    places: String,
    /// The copy recorded for it on an endpoint the flow no longer quarantines to: that
    /// endpoint, and the copy as `endpoint:/path`. Not looked at, it may have been made.
    elsewhere: Option<(String, String)>,
}

impl Unconfirmed {
    /// What happened to it, and why nothing of it can be confirmed in quarantine.
    fn situation(&self) -> String {
        format!(
            "left quarantining by a run that stopped before it was recorded quarantined, and the source is no longer at {}, but {}",
            self.path, self.why
        )
    }

    /// Why the run fails it (every run, the file staying in flight), where else it may be,
    /// and what the operator can do: the run's report line and error, and `wharf plan`'s.
    pub(super) fn failure(&self) -> String {
        let (path, flow) = (&self.path, &self.flow);
        format!(
            "{}: the file may be lost{}; it stays in flight: put back at {path}, it is taken by the next run; its copy put back, it is recorded quarantined; else `wharf quarantine release {flow} {path}` gives it up (forgets it)",
            self.situation(),
            self.places
        )
    }

    /// What `wharf quarantine release` says once it gave the file up, `rec` its record
    /// forgotten as the file at its path: a copy recorded where the flow no longer quarantines
    /// is named, as kept listed as an earlier quarantined file (`kept`, [`give_up`]), and how
    /// to remove it; `flow` says whether its endpoint is defined to open.
    fn given_up(&self, flow: &Flow, rec: &FileRecord, kept: bool) -> String {
        let aside = match &self.elsewhere {
            None => "nothing had been put aside in quarantine".to_string(),
            Some((endpoint, copy)) if kept => {
                let (name, path) = (&self.flow, &self.path);
                let when = if flow.endpoints.contains_key(endpoint) {
                    String::new()
                } else {
                    format!(" once the flow defines endpoint {endpoint} again")
                };
                format!(
                    "its copy {copy}, if it was made, stays listed as an earlier quarantined file (`wharf quarantine list {name}`): `wharf quarantine release {name} {path} --copy {copy}` removes it{when}"
                )
            }
            Some((_, copy)) => format!("its copy {copy}, if it was made, is left where it is: remove it by hand if it is not wanted"),
        };
        format!(
            "given up: {}: {aside}; forgotten as the file at {}: its record ({} bytes{}); put back there, the next run takes it as a new file",
            self.situation(),
            self.path,
            rec.size,
            rec.sha256.as_deref().map(|h| format!(", SHA-256 {h}")).unwrap_or_default(),
        )
    }
}

/// The report line of a file put aside after a crash from its staged copy
/// ([`LeftAside::FromStaged`]), its copy `endpoint:copy`.
pub(super) fn from_staged(endpoint: &str, copy: &RemotePath, reason: &str, fate: &str) -> String {
    format!(
        "quarantined to {endpoint}:{copy}: {reason}; {fate}; finished after a crash from its staged copy (no copy made before it was found)"
    )
}

/// Whether `staged` holds the very bytes refused: the size and SHA-256 recorded with the
/// verdict (none recorded: not known to). Hashed whatever its size, where a resumed file's
/// staged copy is trusted by its size when big (`lifecycle::staged_complete`): here it is the
/// only copy of the file known to be left, and what is put aside as the file refused.
async fn holds_refused(staged: &Path, rec: &FileRecord) -> bool {
    let Some(want) = rec.sha256.as_deref() else { return false };
    tokio::fs::metadata(staged).await.is_ok_and(|m| m.is_file() && m.len() == rec.size)
        && super::pipe::sha256_of(staged.to_path_buf()).await.is_ok_and(|got| got == want)
}

/// What `after.failure` made of a source no longer at `path` (a crash lost the record of it
/// being done), and where it was moved: to the target recorded before the move
/// ([`put_aside`]) when it is there (`disposition::foresee`, as for a delivered file's).
async fn gone_source(
    flow: &Flow,
    source: &dyn Endpoint,
    rec: &FileRecord,
    path: &RemotePath,
) -> Result<(String, Option<RemotePath>), FileError> {
    let target = lifecycle::recorded_move(rec);
    let Disposition::MoveTo(dir) = &flow.after_failure else {
        return Ok((
            match &flow.after_failure {
                Disposition::Delete => "source deleted".to_string(),
                _ => format!("source no longer at {path} (removed by someone else: `after.failure: keep`)"),
            },
            None,
        ));
    };
    Ok(match (&target, disposition::foresee(source, path, &flow.after_failure, target.as_ref(), Some(false), |_| false).await?) {
        (_, disposition::Fate::MovedBefore(t)) => (format!("source moved to {t}"), Some(t)),
        (Some(t), _) => {
            (format!("source moved to {dir}/, but not found at {t}, the name recorded for it there (moved or removed since)"), None)
        }
        (None, _) => (format!("source moved to {dir}/ (its name there was not recorded)"), None),
    })
}

/// Judges a file the ledger has `quarantining` whose source is not listed: `None` while the
/// source is still at its path (a run that lists it again resumes it); else whether the copy
/// recorded before `after.failure` was applied ([`put_aside`]) is there, whole, and if not,
/// whether its staged copy (`staged`, its path in the staging folder; `None`: not looked at)
/// can be put aside instead. Only looks: the run, `wharf plan` and `wharf quarantine release`
/// call it alike. `quarantine`: the flow's quarantine endpoint.
pub(super) async fn left_aside(
    flow: &Flow,
    source: &dyn Endpoint,
    quarantine: Option<&dyn Endpoint>,
    rec: &FileRecord,
    path: &RemotePath,
    qr: Option<&QuarantineRecord>,
    staged: Option<&Path>,
) -> Result<Option<LeftAside>, FileError> {
    if source.stat(path).await?.is_some() {
        return Ok(None);
    }
    let q = flow.quarantine.as_ref();
    let recorded = qr.and_then(|r| r.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()).map(|c| (r, c)));
    let staged_whole = match staged {
        Some(s) => holds_refused(s, rec).await,
        None => false,
    };
    let lost = |why: String, elsewhere: Option<(String, String)>| {
        let mut places: Vec<String> = Vec::new();
        if let Disposition::MoveTo(dir) = &flow.after_failure {
            let name = lifecycle::recorded_move(rec).map(|t| format!(" (as {t}, the name recorded for it)")).unwrap_or_default();
            places.push(format!("the after.failure folder {dir}/{name}"));
        }
        if let Some(q) = q {
            // A copy cut short keeps its temporary name (`put_aside`'s upload).
            let own = quarantine.map_or(path.name().into(), |ep| naming::creatable(ep, path.name()));
            let copy = recorded.as_ref().map(|(_, c)| c.clone()).or_else(|| q.path.join(&own).ok());
            let partial = copy.and_then(|c| temp_for(&c, &flow.name).ok()).map(|t| format!(" (a copy cut short is {})", t.name()));
            places.push(format!("the quarantine folder {}:{}{}", q.endpoint, q.path, partial.unwrap_or_default()));
        }
        if let Some(s) = staged.filter(|s| s.exists()) {
            places.push(format!(
                "its staged copy {} (kept while the file is in flight; not the bytes refused, by the size and SHA-256 recorded)",
                s.display()
            ));
        }
        let places = if places.is_empty() { String::new() } else { format!("; look for it in {}", places.join(" and ")) };
        Some(LeftAside::Unconfirmed(Unconfirmed { flow: flow.name.clone(), path: path.clone(), why, places, elsewhere }))
    };
    // A copy recorded where the flow no longer quarantines (its quarantine moved, or gone).
    let elsewhere = |r: &QuarantineRecord, c: &RemotePath| {
        let why = format!("its quarantine copy {}:{c} cannot be looked at: the flow no longer quarantines to {}", r.endpoint, r.endpoint);
        lost(why, r.shown_copy().map(|c| (r.endpoint.clone(), c)))
    };
    let (Some(q), Some(ep)) = (q, quarantine) else {
        return Ok(match &recorded {
            None => lost("no quarantine copy of it was recorded".to_string(), None),
            Some((r, c)) => elsewhere(r, c),
        });
    };
    // The recorded copy, where the flow quarantines now.
    let mine = recorded.as_ref().filter(|(r, _)| r.endpoint == q.endpoint).map(|(_, c)| c);
    let expect = rec.sha256.as_deref().map_or(transfer::Expect::Size, transfer::Expect::Sha256);
    let (copy, made) = resumed_copy(ep, &q.path, path, mine, rec.size, expect, |_| false).await?;
    let reason = || qr.map_or_else(|| "refused by its content steps".to_string(), |r| r.reason.clone());
    if made || staged_whole {
        let (fate, moved) = gone_source(flow, source, rec, path).await?;
        if !made {
            return Ok(Some(LeftAside::FromStaged { copy, reason: reason(), fate, moved }));
        }
        let shown = format!("{}:{copy}", q.endpoint);
        let detail = format!("quarantined to {shown}: {}; {fate}; finished after a crash (the copy had been made before it)", reason());
        return Ok(Some(LeftAside::Confirmed { copy: shown, detail, moved }));
    }
    Ok(match &recorded {
        None => lost("no quarantine copy of it was recorded".to_string(), None),
        Some((r, c)) if mine.is_none() => elsewhere(r, c),
        Some((r, c)) => lost(format!("its quarantine copy {}:{c} is not there (or holds another file)", r.endpoint), None),
    })
}

/// Why a file left `quarantining` with its source gone was not judged now: its quarantine
/// copy could not be looked at (the run's report line, and `wharf plan`'s).
pub(super) fn left_aside_unjudged(e: &dyn std::fmt::Display) -> String {
    format!(
        "left quarantining by an earlier run, its source gone; its quarantine copy could not be looked at: {e} (the next run looks again)"
    )
}

/// Finishes a file an earlier run left `quarantining` whose source is no longer listed, as
/// [`left_aside`] judges it: its copy confirmed, or made from its staged copy, it is recorded
/// quarantined (what `wharf quarantine list`/`reprocess` read), with what `after.failure` made
/// of the source (and of the files that go with it: done file, checksum, row count, as
/// [`put_aside`] does); else it fails loudly and stays in flight, its staged copy (if any) kept and
/// named. `None` while the source is still at its path. The `bool`: whether the run must stop.
pub(super) async fn finish_left_aside(cx: &Ctx<'_>, mut rec: FileRecord, entry: &Entry) -> Result<Option<(FileReport, bool)>, LedgerError> {
    let flow = &cx.flow.name;
    let result = cx.ledger.file_result(flow, &rec.path)?.unwrap_or_default();
    let staged = stage::staging_path(cx.staging_dir, flow, &entry.path);
    let judged = retry(cx.flow, "check the quarantine copy", || {
        left_aside(cx.flow, &*cx.source, cx.quarantine.as_deref(), &rec, &entry.path, result.quarantine.as_ref(), Some(&staged))
    })
    .await;
    match judged {
        Ok(None) => Ok(None),
        Ok(Some(LeftAside::Confirmed { copy, detail, moved })) => {
            Ok(Some(record_left_aside(cx, rec, entry, copy, detail, moved, result.counts).await?))
        }
        Ok(Some(LeftAside::FromStaged { fate, moved, .. })) => {
            let _names = lifecycle::claim_quarantine(cx).await;
            match make_copy(cx, &mut rec, entry, &staged).await {
                Ok((copy, qr, result)) => {
                    let detail = from_staged(&qr.endpoint, &copy, &qr.reason, &fate);
                    let copy = format!("{}:{copy}", qr.endpoint);
                    Ok(Some(record_left_aside(cx, rec, entry, copy, detail, moved, result.counts).await?))
                }
                Err(FileError::Ledger(e)) => Err(e),
                Err(e) => {
                    let why = format!(
                        "left quarantining by an earlier run, its source gone and no copy of it confirmed; putting it aside from its staged copy {} failed: {e} (the next run tries again)",
                        staged.display()
                    );
                    Ok(Some(FileReport::left_unjudged(flow, &entry.path, &e, why)))
                }
            }
        }
        Ok(Some(LeftAside::Unconfirmed(u))) => {
            let why = u.failure();
            let kind = ErrorKind::NotFound;
            tracing::error!(target: REPORT_LOG_TARGET, flow = %flow, path = %entry.path, kind = %kind.name(), error = %why, "File failed.");
            rec.attempts += 1;
            rec.last_error = Some(ErrorRecord { kind, message: why.clone(), at: now_millis() });
            rec.run = cx.run;
            rec.updated = now_millis();
            cx.store(Transition::File { flow: flow.clone(), rec }).await?;
            Ok(Some((FileReport::failed(&entry.path, why, kind), false)))
        }
        Err(FileError::Ledger(e)) => Err(e),
        Err(e) => Ok(Some(FileReport::left_unjudged(flow, &entry.path, &e, left_aside_unjudged(&e)))),
    }
}

/// What a file left `quarantining` whose source is gone is recorded to have become of its
/// source: moved by `after.failure: move_to`, else deleted (by `delete`, or by someone else
/// under `keep`): its copy may be the last one left (`release` then takes `--force`).
fn gone_fate(flow: &Flow) -> SourceFate {
    match flow.after_failure {
        Disposition::MoveTo(_) => SourceFate::Moved,
        Disposition::Delete | Disposition::Keep => SourceFate::Deleted,
    }
}

/// Records quarantined a file left `quarantining` whose source is gone, its copy `copy`
/// (`endpoint:/path`) confirmed or just made ([`finish_left_aside`]), with what
/// `after.failure` made of the source (`moved`: where it went), and removes its staged copy.
async fn record_left_aside(
    cx: &Ctx<'_>,
    mut rec: FileRecord,
    entry: &Entry,
    copy: String,
    detail: String,
    moved: Option<RemotePath>,
    counts: crate::ledger::RecordCounts,
) -> Result<(FileReport, bool), LedgerError> {
    let flow = &cx.flow.name;
    rec.source_fate = gone_fate(cx.flow);
    rec.disposed_to = moved.map(|t| t.as_str().to_string());
    // Its done file, checksum, row count go as the data file went ([`put_aside`]): the
    // crash may have come before they did (one already gone is passed over).
    lifecycle::dispose_companions(cx, entry, &cx.flow.after_failure).await;
    rec.state = FileState::Quarantined;
    rec.run = cx.run;
    rec.updated = now_millis();
    store_quarantined(cx, Transition::File { flow: flow.clone(), rec: rec.clone() }, &entry.path, &detail, rec.updated).await?;
    content::discard_with_outputs(&stage::staging_path(cx.staging_dir, flow, &entry.path)).await;
    tracing::warn!(target: REPORT_LOG_TARGET, flow = %flow, path = %entry.path, copy = %copy, "Quarantined (finished after a crash).");
    let f = FileReport {
        path: entry.path.to_string(),
        outcome: Outcome::Quarantined,
        detail,
        targets: vec![copy],
        bytes: rec.size,
        error_kind: None,
        records: Some(counts),
    };
    Ok((f, false))
}

/// The quarantined file of `path` that `copy` names (as `wharf quarantine list` shows it,
/// `endpoint:/path`, or its path alone), or, without `copy`, the only one there is: a path a
/// newer file was taken under after its file was quarantined has one per generation
/// ([`Ledger::quarantined_files`]), and naming one of several is refused, listing them.
pub fn pick(ledger: &Ledger, flow: &Flow, path: &str, copy: Option<&str>) -> Result<QuarantinedFile, QuarantineError> {
    let mut all = ledger.quarantined_files(&flow.name, Some(path))?;
    let (flow, path) = (flow.name.clone(), path.to_string());
    let copies = |all: &[QuarantinedFile]| {
        all.iter()
            .map(|f| {
                let which = if f.earlier.is_some() { "an earlier file" } else { "the file recorded now" };
                format!("{} (quarantined {}, {which})", f.copy().unwrap_or_else(|| "-".into()), lifecycle::date(f.quarantine().at))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    match copy {
        Some(c) => match all.iter().position(|f| names_copy(f, c)) {
            Some(i) => Ok(all.swap_remove(i)),
            None if all.is_empty() => Err(QuarantineError::NotQuarantined { flow, path }),
            None => Err(QuarantineError::NoSuchCopy { flow, path, copy: c.to_string(), copies: copies(&all) }),
        },
        None => match all.len() {
            0 => Err(QuarantineError::NotQuarantined { flow, path }),
            1 => Ok(all.remove(0)),
            n => Err(QuarantineError::Ambiguous { flow, path, n, copies: copies(&all) }),
        },
    }
}

/// Whether `given` (`endpoint:/path`, or the path alone) names `f`'s copy.
fn names_copy(f: &QuarantinedFile, given: &str) -> bool {
    let Some(q) = f.result.quarantine.as_ref() else { return false };
    let given = given.strip_prefix(&format!("{}:", q.endpoint)).unwrap_or(given);
    q.copy.as_deref().is_some_and(|c| ledger_path(c) == ledger_path(given))
}

/// The source path and copy a quarantine command means by `path` and `copy`: `path` as given
/// when it is a source path the ledger has a quarantined file (or one being quarantined) of,
/// or when `copy` is given; else, when it names the copy of exactly one quarantined file
/// (`endpoint:/path`, or the path alone, as `wharf quarantine list` shows it), that file's
/// source path and that copy. A copy path two quarantined files share (on two endpoints) is
/// refused, listing them; one naming none is left to the command to refuse as its path.
pub fn resolve(ledger: &Ledger, flow: &Flow, path: &str, copy: Option<&str>) -> Result<(String, Option<String>), QuarantineError> {
    let key = ledger_path(path);
    let as_given = Ok((key.clone(), copy.map(str::to_string)));
    if copy.is_some()
        || !ledger.quarantined_files(&flow.name, Some(&key))?.is_empty()
        || ledger.file(&flow.name, &key)?.is_some_and(|r| r.state == FileState::Quarantining)
    {
        return as_given;
    }
    let mut of: Vec<QuarantinedFile> = ledger.quarantined_files(&flow.name, None)?.into_iter().filter(|f| names_copy(f, path)).collect();
    match of.len() {
        0 => as_given,
        1 => {
            let f = of.remove(0);
            Ok((f.rec.path.clone(), f.copy()))
        }
        _ => Err(QuarantineError::AmbiguousCopy {
            flow: flow.name.clone(),
            copy: path.to_string(),
            files: of.iter().map(|f| format!("{} of /{}", f.copy().unwrap_or_default(), f.rec.path)).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// The quarantined file of `path` the record holds now (`wharf quarantine reprocess`), `copy`
/// naming which when given; one of an earlier generation is refused, saying what the path's
/// record holds now.
fn current(ledger: &Ledger, flow: &Flow, path: &str, copy: Option<&str>) -> Result<(FileRecord, QuarantineRecord), QuarantineError> {
    let all = ledger.quarantined_files(&flow.name, Some(path))?;
    let chosen = match copy {
        Some(_) => pick(ledger, flow, path, copy)?,
        // Only the file recorded now can be reprocessed: when it is quarantined, it is meant.
        None => match all.iter().find(|f| f.earlier.is_none()) {
            Some(f) => f.clone(),
            None => pick(ledger, flow, path, None)?,
        },
    };
    if chosen.earlier.is_some() {
        let now = match ledger.file(&flow.name, path)? {
            Some(r) => format!("recorded {} in run {} on {}", r.state.as_str(), r.run, lifecycle::date(r.updated)),
            None => "no longer recorded".to_string(),
        };
        let copy = chosen.copy().unwrap_or_default();
        return Err(QuarantineError::Superseded { flow: flow.name.clone(), path: path.to_string(), copy, now });
    }
    let q = chosen.result.quarantine.ok_or_else(|| QuarantineError::NotQuarantined { flow: flow.name.clone(), path: path.to_string() })?;
    Ok((chosen.rec, q))
}

/// Normalises a user-given source path (`/in/a.csv` or `in/a.csv`) to the ledger's form.
pub fn ledger_path(path: &str) -> String {
    RemotePath::parse(path).map(|p| p.as_str().to_string()).unwrap_or_else(|_| path.trim_start_matches('/').to_string())
}

/// Removes the quarantined copy and its reports (best effort; a missing one is fine).
async fn remove_copy(ep: &dyn Endpoint, q: &QuarantineRecord) -> Result<Vec<String>, EndpointError> {
    let mut removed = Vec::new();
    let Some(copy) = q.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()) else { return Ok(removed) };
    // The copy first: while it stays (the login may not remove it, say), so do its reports.
    match ep.remove(&copy).await {
        Ok(()) => removed.push(copy.to_string()),
        Err(e) if e.kind == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let reports = if q.reports { ["report.json", "report.txt"].iter().filter_map(|e| beside(&copy, e).ok()).collect() } else { vec![] };
    for t in reports {
        match ep.remove(&t).await {
            Ok(()) => removed.push(t.to_string()),
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(target_path = %t, error = %e, "Could not remove a quarantine report."),
        }
    }
    Ok(removed)
}

async fn quarantine_endpoint(flow: &Flow, q: &QuarantineRecord) -> Result<DynEndpoint, FileError> {
    let eps = endpoints::open_all(flow, &[q.endpoint.as_str()]).await?;
    eps.get(&q.endpoint).cloned().ok_or_else(|| FileError::Name(format!("endpoint {} is not defined in the flow", q.endpoint)))
}

/// What `wharf quarantine release` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Released {
    /// The file's source path (ledger form: no leading `/`).
    pub path: String,
    /// What was removed from the quarantine location: the copy, its reports.
    pub removed: Vec<String>,
    /// The recorded copy, left where it is, and why (`None`: removed, or none recorded).
    pub left: Option<LeftCopy>,
    /// A file a crashed run left being quarantined that no run could finish, given up
    /// ([`give_up`]): that nothing had been put aside, and what was forgotten.
    pub given_up: Option<String>,
}

/// A quarantined file's copy that `release` left where it is ([`Released::left`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftCopy {
    /// `endpoint:/path`, as `wharf quarantine list` shows it.
    pub copy: String,
    /// Why it was left, and what the operator may do.
    pub why: String,
}

impl LeftCopy {
    /// The copy `copy` was not there to remove.
    fn gone(copy: String) -> Self {
        LeftCopy { copy, why: "it is not there (removed or moved since): nothing to remove".into() }
    }
}

/// `wharf quarantine release`: removes the quarantined copy and its reports and forgets the
/// file, so a run takes it again if it is (still, or again) at the source. Returns what was
/// removed, and the copy left (and why) when it was not removed. Refuses, unless `force`,
/// when the copy is the file's last: its source deleted (`after.failure: delete`) and not
/// sent again. A file a crashed run left `quarantining` that no run can finish is given up
/// ([`give_up`]); `staging_dir`: the runs' staging folder. `path` may be the copy's instead
/// of the source's ([`resolve`]).
pub async fn release(
    flow: &Flow,
    ledger: &Ledger,
    path: &str,
    copy: Option<&str>,
    force: bool,
    staging_dir: &Path,
) -> Result<Released, QuarantineError> {
    let (path, copy) = resolve(ledger, flow, path, copy)?;
    let copy = copy.as_deref();
    if copy.is_none()
        && let Some(rec) = ledger.file(&flow.name, &path)?.filter(|r| r.state == FileState::Quarantining)
    {
        let given_up = give_up(flow, ledger, rec, staging_dir).await?;
        return Ok(Released { path, given_up: Some(given_up), ..Default::default() });
    }
    let picked = pick(ledger, flow, &path, copy)?;
    let file_err = |source| QuarantineError::File { flow: flow.name.clone(), path: path.clone(), source: Box::new(source) };
    if let Some(earlier) = picked.earlier {
        // Its source deleted, the copy is all that is left of it (the file at the path is
        // the newer one).
        if !force && picked.rec.source_fate == SourceFate::Deleted {
            let copy = picked.copy().unwrap_or_default();
            return Err(QuarantineError::EarlierLastCopy { flow: flow.name.clone(), path, copy });
        }
        let (removed, left) = release_earlier(flow, ledger, &picked, &earlier).await.map_err(|e| match e {
            FileError::Ledger(e) => e.into(),
            e => file_err(e),
        })?;
        return Ok(Released { path, removed, left, given_up: None });
    }
    let (q, shown) = (picked.quarantine(), picked.copy());
    let rec = picked.rec;
    if !force && rec.source_fate == SourceFate::Deleted {
        let source = RemotePath::parse(&rec.path).map_err(|e| file_err(FileError::Name(e.to_string())))?;
        let eps = endpoints::open_all(flow, &[flow.source.endpoint.as_str()]).await.map_err(|e| file_err(e.into()))?;
        let ep = eps
            .get(&flow.source.endpoint)
            .ok_or_else(|| file_err(FileError::Name(format!("endpoint {} is not defined in the flow", flow.source.endpoint))))?;
        if ep.stat(&source).await.map_err(|e| file_err(e.into()))?.is_none() {
            let copy = format!("{}:/{}", q.endpoint, q.copy.as_deref().unwrap_or_default());
            return Err(QuarantineError::LastCopy { flow: flow.name.clone(), path, copy });
        }
    }
    let ep = quarantine_endpoint(flow, &q).await.map_err(file_err)?;
    // A copy that could not be removed stays quarantined: forgotten, it would be left behind
    // where nothing lists it any more.
    let removed = remove_copy(&*ep, &q).await.map_err(|e| file_err(e.into()))?;
    ledger.forget_file(&flow.name, &path)?;
    // The copy itself is the first removed; not among them, it was not there.
    let left = match (shown, q.copy.as_deref().map(ledger_path)) {
        (Some(shown), Some(c)) if removed.first().is_none_or(|r| ledger_path(r) != c) => Some(LeftCopy::gone(shown)),
        _ => None,
    };
    Ok(Released { path, removed, left, given_up: None })
}

/// `wharf quarantine release` of a quarantined file of an earlier generation (`f`, kept as
/// `earlier`: a newer file has been taken under its path since): removes its copy and reports
/// when the copy still holds its very bytes (its SHA-256, else its size: the name may have
/// been taken by another file since, whose copy is not this one's to remove), and forgets it.
/// The path's record (the newer file) is not touched. Returns what was removed, and the copy
/// left (and why) when it no longer holds the file.
async fn release_earlier(
    flow: &Flow,
    ledger: &Ledger,
    f: &QuarantinedFile,
    earlier: &Earlier,
) -> Result<(Vec<String>, Option<LeftCopy>), FileError> {
    let (rec, q) = (&f.rec, f.quarantine());
    let shown = f.copy().unwrap_or_default();
    let (mut removed, mut left) = (Vec::new(), None);
    if let Some(copy) = q.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()) {
        let ep = quarantine_endpoint(flow, &q).await?;
        let expect = rec.sha256.as_deref().map_or(transfer::Expect::Size, transfer::Expect::Sha256);
        if transfer::already_delivered(&*ep, &copy, rec.size, None, expect).await? {
            removed = remove_copy(&*ep, &q).await?;
        } else {
            let l = match ep.stat(&copy).await? {
                None => LeftCopy::gone(shown),
                Some(_) => LeftCopy {
                    copy: shown,
                    why: format!(
                        "it holds another file now (not the {} bytes{} quarantined): not this file's to remove; remove it by hand if it is not wanted",
                        rec.size,
                        if rec.sha256.is_some() { " and SHA-256" } else { "" }
                    ),
                },
            };
            tracing::warn!(flow = %flow.name, path = %rec.path, copy = %l.copy, why = %l.why, "The copy of an earlier quarantined file was left as it is, and the file forgotten.");
            left = Some(l);
        }
    }
    ledger.forget_earlier_quarantine(&flow.name, &rec.path, earlier)?;
    Ok((removed, left))
}

/// `wharf quarantine release` of a file a crashed run left `quarantining` whose source is
/// gone and of which no copy can be confirmed or made ([`LeftAside::Unconfirmed`]: the run
/// fails it every time, saying so): forgets it, so that runs no longer fail it (its staged
/// copy, if any, is no longer kept: the next run sweeps it). Refused while a run finishes it
/// (its source at its path, its copy there, its staged copy whole), as [`left_aside`] judges
/// it for the run and `wharf plan`. Returns what `release` says of it
/// ([`Unconfirmed::given_up`]: what happened, in the run's words, and what was forgotten).
async fn give_up(flow: &Flow, ledger: &Ledger, rec: FileRecord, staging_dir: &Path) -> Result<String, QuarantineError> {
    let file_err = |source| QuarantineError::File { flow: flow.name.clone(), path: rec.path.clone(), source: Box::new(source) };
    let path = RemotePath::parse(&rec.path).map_err(|e| file_err(FileError::Name(e.to_string())))?;
    let mut names = vec![flow.source.endpoint.as_str()];
    names.extend(flow.quarantine.as_ref().map(|q| q.endpoint.as_str()));
    let eps = endpoints::open_all(flow, &names).await.map_err(|e| file_err(e.into()))?;
    let get = |n: &str| eps.get(n).cloned().ok_or_else(|| file_err(FileError::Name(format!("endpoint {n} is not defined in the flow"))));
    let source = get(&flow.source.endpoint)?;
    let quarantine = flow.quarantine.as_ref().map(|q| get(&q.endpoint)).transpose()?;
    let qr = ledger.file_result(&flow.name, &rec.path)?.and_then(|r| r.quarantine);
    let staged = stage::staging_path(staging_dir, &flow.name, &path);
    let judged = left_aside(flow, &*source, quarantine.as_deref(), &rec, &path, qr.as_ref(), Some(&staged)).await.map_err(file_err)?;
    let what = match judged {
        Some(LeftAside::Unconfirmed(u)) => {
            // A copy that may have been made where the flow no longer quarantines stays
            // listed (its source gone, as the run would have recorded it quarantined), so
            // that `release --copy` can remove it once that endpoint can be opened: forgotten
            // with the file, nothing would list it.
            let kept = match &u.elsewhere {
                Some(_) => ledger.forget_file_keeping_copy(&flow.name, &FileRecord { source_fate: gone_fate(flow), ..rec.clone() })?,
                None => {
                    ledger.forget_file(&flow.name, &rec.path)?;
                    false
                }
            };
            return Ok(u.given_up(flow, &rec, kept));
        }
        None => format!("its source is at {path}: it is put aside"),
        Some(LeftAside::Confirmed { copy, .. }) => format!("its copy {copy} is there: it is recorded quarantined"),
        Some(LeftAside::FromStaged { .. }) => format!("its staged copy {} is whole: it is put aside from it", staged.display()),
    };
    Err(QuarantineError::BeingQuarantined { flow: flow.name.clone(), path: rec.path.clone(), what })
}

/// `wharf quarantine reprocess`: takes the quarantined copy through the flow's current steps
/// (a fixed script or schema) and, when accepted, delivers it like any file; on success the
/// copy and its reports are removed from quarantine. Recorded as a run of its own. `path`
/// may be the copy's instead of the source's ([`resolve`]).
pub async fn reprocess(
    flow: &Flow,
    ledger: &Ledger,
    opts: &RunOptions,
    path: &str,
    copy: Option<&str>,
) -> Result<RunReport, QuarantineError> {
    let (path, copy) = resolve(ledger, flow, path, copy)?;
    let (mut rec, q) = current(ledger, flow, &path, copy.as_deref())?;
    // A copy someone removed is the operator's business, not a failed run of the flow.
    if let Some(copy) = q.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()) {
        let file_err = |source| QuarantineError::File { flow: flow.name.clone(), path: path.clone(), source: Box::new(source) };
        let ep = quarantine_endpoint(flow, &q).await.map_err(file_err)?;
        if ep.stat(&copy).await.map_err(|e| file_err(e.into()))?.is_none() {
            return Err(QuarantineError::CopyGone { flow: flow.name.clone(), path, copy: format!("{}:{copy}", q.endpoint) });
        }
    }
    let now = opts.now.unwrap_or_else(std::time::SystemTime::now);
    let mut run = ledger.begin_run(&flow.name, to_millis(now))?;
    let mut report = RunReport::new(flow, run.id);
    let outcome = async {
        let mut names: Vec<&str> = vec![flow.source.endpoint.as_str(), q.endpoint.as_str()];
        names.extend(flow.sinks.iter().map(|s| s.endpoint.as_str()));
        let eps = endpoints::open_all(flow, &names).await?;
        let get = |n: &str| eps.get(n).cloned().ok_or_else(|| FileError::Name(format!("endpoint {n} is not defined in the flow")));
        let source_path = RemotePath::parse(&rec.path).map_err(|e| FileError::Name(e.to_string()))?;
        // A source moved or deleted when the file was quarantined is not at its path (unless
        // sent again): `after.success` has nothing there to dispose of, and a move planned for
        // it would be recorded, and reported, as where it went.
        let disposed = matches!(rec.source_fate, SourceFate::Moved | SourceFate::Deleted)
            && get(&flow.source.endpoint)?.stat(&source_path).await?.is_none();
        let kept;
        let flow = if disposed {
            kept = Flow { after_success: Disposition::Keep, ..flow.clone() };
            &kept
        } else {
            flow
        };
        let cx = Ctx {
            commits: Default::default(),
            flow,
            events_flow: &flow.name,
            ledger,
            source: get(&flow.source.endpoint)?,
            sinks: flow.sinks.iter().map(|s| get(&s.endpoint)).collect::<Result<Vec<_>, _>>()?,
            quarantine: Some(get(&q.endpoint)?),
            run: run.id,
            now,
            staging_dir: &opts.staging_dir,
            claims: Default::default(),
            folders: Default::default(),
            budget: Default::default(),
            listed: &[],
        };
        let copy = q
            .copy
            .as_deref()
            .and_then(|c| RemotePath::parse(c).ok())
            .ok_or_else(|| FileError::Name("no quarantined copy recorded".into()))?;
        let staged = stage::staging_path(&opts.staging_dir, &flow.name, &source_path);
        stage::discard(&staged).await;
        let qep = get(&q.endpoint)?;
        let st = retry(flow, "download the quarantined copy", || {
            stage::stage(&*qep, &copy, rec.size, &staged, true, stage::Hash::Now, false, &cx.budget)
        })
        .await?;
        if rec.sha256.is_some() && rec.sha256 != st.sha256 {
            stage::discard(&staged).await;
            return Err(FileError::Changed(format!("the quarantined copy {copy} differs from the file that was quarantined (SHA-256)")));
        }
        rec.state = FileState::Staged;
        rec.run = run.id;
        ledger.put_file(&flow.name, &rec)?;
        let entry = Entry { path: source_path.clone(), kind: EntryKind::File, size: rec.size, mtime: rec.mtime.map(super::from_millis) };
        let rel = source_path.strip_prefix(&flow.source.path).unwrap_or(source_path.name()).to_string();
        let (f, _) = lifecycle::process(&cx, &entry, &rel, None).await?;
        if f.outcome == Outcome::Delivered
            && let Err(e) = remove_copy(&*qep, &q).await
        {
            // Delivered all the same: the copy left behind is named, for removing by hand.
            tracing::warn!(flow = %flow.name, path = %source_path, error = %e, "Could not remove the quarantined copy of a file reprocessed and delivered.");
        }
        Ok::<_, FileError>(f)
    }
    .await;
    match outcome {
        Ok(f) => super::record(&mut report, f, &mut |_| {}),
        Err(FileError::Ledger(e)) => return Err(e.into()),
        Err(e) => {
            report.error_kind = Some(e.kind());
            report.error = Some(format!("flow {}: {path}: {e}", flow.name));
        }
    }
    report.conclude();
    super::finish(ledger, flow, &mut run, &report)?;
    Ok(report)
}

/// The text report of a quarantined file, read from beside its copy (`None` without reports).
pub async fn report_text(flow: &Flow, q: &QuarantineRecord) -> Result<Option<String>, FileError> {
    let Some(copy) = q.copy.as_deref().and_then(|c| RemotePath::parse(c).ok()).filter(|_| q.reports) else { return Ok(None) };
    let ep = quarantine_endpoint(flow, q).await?;
    let path = beside(&copy, "report.txt")?;
    let mut src = match ep.open_read(&path, 0).await {
        Ok(s) => s,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let (mut out, mut buf) = (Vec::new(), vec![0u8; 64 * 1024]);
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(Some(String::from_utf8_lossy(&out).into_owned()))
}
