//! What a file that fails becomes: kept for the next run (passing trouble), failed for good
//! with `after.failure` applied, quarantined once given up, or `vanished` when the partner
//! removed it before it could be taken.

use super::*;

/// Records a failure and applies `after.failure` when it is permanent, or when the file has
/// failed transiently in `retry.give_up_after` runs (then it is quarantined instead when it
/// was downloaded whole and the flow has a quarantine).
pub(super) async fn fail(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    e: FileError,
    staged: &Path,
    kept: Option<Vec<u8>>,
) -> Result<(FileReport, bool), LedgerError> {
    let e = e.in_state_folder(crate::engine::state_folder(cx.staging_dir));
    let kind = e.kind();
    if kind == ErrorKind::NotFound && !delivered(rec) && matches!(cx.source.stat(&entry.path).await, Ok(None)) {
        if rec.deliveries.iter().all(|d| !d.done) {
            return vanished(cx, rec, entry, staged).await;
        }
        return source_lost(cx, rec, entry, e, staged).await;
    }
    let message = e.to_string();
    rec.attempts += 1;
    rec.last_error = Some(ErrorRecord { kind, message: message.clone(), at: now_millis() });
    let abort = e.stops_run();
    // Delivered, and only its disposal failed: where it went, in the detail and the report,
    // and what to look at when the server refused it.
    let targets = if delivered(rec) { delivered_to(cx, rec) } else { Vec::new() };
    let mut detail = if targets.is_empty() {
        message
    } else {
        let refused = if kind == ErrorKind::PermissionDenied {
            disposition::refused_hint(&cx.flow.after_success, &entry.path)
        } else {
            String::new()
        };
        format!("delivered to {}, but {} failed: {message}{refused}", targets.join(", "), cx.disposal_setting())
    };
    let limit = cx.flow.retry.give_up_after;
    // Only a file's own passing trouble counts towards giving up; a run-wide problem (local
    // disk, ledger) is not the file's fault, and a delivered file only waits for disposal.
    let give_up = kind.is_passing() && !abort && limit > 0 && rec.attempts >= limit && !delivered(rec);
    // Delivered to every sink, only its disposal refused (a `processed/` the login may not
    // write to, a delete the server refuses): it stays delivered, and the next run only
    // disposes of it. Failed, it was downloaded again by every later run only to be refused
    // again, and `after.failure` moved a delivered file in with the failed ones.
    let disposal_only = delivered(rec);
    if disposal_only {
        // Nothing reads the staged copy again.
        content::discard_with_outputs(staged).await;
    } else if kind == ErrorKind::StateFull {
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
        if let Some(f) = quarantine_given_up(cx, rec, entry, staged, &mut detail).await? {
            return Ok((f, false));
        }
    }
    if kind == ErrorKind::StateFull {
        // Its message says what to do; the file stays where it was, to be taken again.
    } else if (kind.is_passing() || abort || disposal_only) && !give_up {
        // Counted in runs (`give_up_after`), not in the tries within one (`retry.attempts`).
        let runs = if rec.attempts == 1 { "1 run".to_string() } else { format!("{} runs", rec.attempts) };
        detail.push_str(&format!(" (failed in {runs}; the next run tries again)"));
    } else {
        if rec.state == FileState::Quarantining && !give_up {
            // Refused by its steps, its quarantine failed for good: a copy made before the
            // trouble is removed (given up, `quarantine_given_up` did), its name dropped.
            abandon_quarantine(cx, rec, staged, &mut detail).await?;
        }
        content::discard_with_outputs(staged).await;
        if cx.flow.after_failure == Disposition::Delete {
            // Nothing of this file was kept anywhere (a quarantined file goes another way):
            // deleting the source now would lose it.
            detail.push_str("; source kept, retried next run (`after.failure: delete` deletes a file only once a copy is in quarantine)");
        } else {
            // Under the `move_to` folder's claim, as a delivered file's move: else it may take
            // the free name a delivered file of the run chose and has not moved to yet. No
            // other claim is held here (the quarantine's was let go with its attempt).
            let _moving = claim_failure_move(cx).await;
            // The target is recorded while the file is still in flight, in the state it failed
            // in: a crash after the move leaves a record naming where the source went, which
            // the next run finishes (`left_failing`); one before it, a source still listed,
            // which the next run takes again, the name dropped (`process`): failing again, it
            // chooses one afresh. So no name is recorded before this one: none is passed.
            // A file whose quarantine failed for good is recorded as a failing one, back in
            // the state its steps judged it in: `quarantining` with a move target reads as a
            // quarantine's move (`recorded_move`), which a crash would leave for the next run
            // to finish from a copy that was never made (`quarantine::finish_left_aside`).
            if rec.state == FileState::Quarantining {
                rec.state = FileState::Staged;
            }
            match disposition::dispose_failed(cx, rec, entry, None, "failure_disposing").await? {
                Some(said) => detail.push_str(&said),
                None => detail.push_str("; source kept, retried next run"),
            }
            // A crash here leaves the file in flight, its source no longer listed: the next
            // run records it failed, moved where recorded (`left_failing::finish`).
            halt::point("failure_disposed");
        }
        rec.state = FileState::Failed;
    }
    // Its line in the run's report says the same: `wharf run` leaves this one out.
    tracing::error!(target: REPORT_LOG_TARGET, flow = %cx.flow.name, path = %entry.path, kind = %kind.name(), error = %detail, "File failed.");
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    if rec.state == FileState::Failed {
        // A kill here leaves the file settled, failed, before the run's end: the next run
        // raises the run's `failed` event as it closes the run (`close_interrupted`).
        halt::point("failed");
    }
    let mut f = report(&entry.path, Outcome::Failed, detail);
    f.error_kind = Some(kind);
    f.targets = targets;
    Ok((f, abort))
}

/// The report line of a file that [`vanished`] (`wharf plan`'s too).
pub(in crate::engine) const VANISHED: &str = "disappeared from the source before it could be taken";

/// A file the partner removed (or moved away) between its listing and its download, before
/// anything was delivered: not a failure of the flow. Skipped in the run's report and
/// `vanished` in the ledger alike; no attempt is counted, no `after.failure` applied (there
/// is nothing to apply it to), and no event raised.
async fn vanished(cx: &Ctx<'_>, rec: &mut FileRecord, entry: &Entry, staged: &Path) -> Result<(FileReport, bool), LedgerError> {
    let detail = VANISHED;
    tracing::info!(flow = %cx.flow.name, path = %entry.path, "Skipped: the file disappeared from the source before it could be taken.");
    content::discard_with_outputs(staged).await;
    rec.state = FileState::Vanished;
    rec.last_error = None;
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    Ok((report(&entry.path, Outcome::Skipped, detail), false))
}

/// Why a file some sinks confirmed cannot be delivered to the others: its source is gone
/// (removed or moved away by the partner) and no whole staged copy of it is left (the run's
/// report line, and `wharf plan`'s).
pub(in crate::engine) fn lost_source(flow: &Flow, rec: &FileRecord) -> String {
    let confirmed = |i: usize| rec.deliveries.iter().any(|d| sink_of(d.sink) == i && d.done);
    let to = |keep: bool| -> Vec<String> {
        flow.sinks
            .iter()
            .enumerate()
            .filter(|(i, _)| confirmed(*i) == keep)
            .map(|(_, s)| format!("{}:{}", s.endpoint, s.path.source()))
            .collect()
    };
    format!(
        "delivered to {} only: its source is gone (removed or moved away since) and no whole staged copy of it is left, so it \
         cannot be delivered to {}; not retried (sent again, the next run delivers it there)",
        confirmed_targets(flow, rec).join(", "),
        to(false).join(", ")
    )
}

/// `endpoint:/path` of every delivery of `rec` a sink confirmed.
fn confirmed_targets(flow: &Flow, rec: &FileRecord) -> Vec<String> {
    targets_shown(flow, rec.deliveries.iter().filter(|d| d.done))
}

/// A file some sinks confirmed whose source is gone with no whole staged copy left: failed
/// for good ([`lost_source`]), not retried by every run for ever; no `after.failure` (there
/// is no source to apply it to).
async fn source_lost(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    e: FileError,
    staged: &Path,
) -> Result<(FileReport, bool), LedgerError> {
    let kind = e.kind();
    let detail = lost_source(cx.flow, rec);
    tracing::error!(target: REPORT_LOG_TARGET, flow = %cx.flow.name, path = %entry.path, kind = %kind.name(), error = %detail, "File failed.");
    content::discard_with_outputs(staged).await;
    rec.attempts += 1;
    rec.last_error = Some(ErrorRecord { kind, message: format!("{detail} ({e})"), at: now_millis() });
    rec.state = FileState::Failed;
    rec.disposed_to = None;
    rec.source_fate = SourceFate::Unknown;
    rec.updated = now_millis();
    cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    let mut f = report(&entry.path, Outcome::Failed, detail);
    f.error_kind = Some(kind);
    f.targets = confirmed_targets(cx.flow, rec);
    Ok((f, false))
}

/// Removes the copy a quarantine that failed for good had made ([`quarantine::abandon`]),
/// saying so in `detail`, and drops its name from the file's content result (the verdict
/// stays in it).
async fn abandon_quarantine(cx: &Ctx<'_>, rec: &mut FileRecord, staged: &Path, detail: &mut String) -> Result<(), LedgerError> {
    let Some(mut result) = cx.ledger.file_result(&cx.flow.name, &rec.path)? else { return Ok(()) };
    let abandoned = quarantine::abandon(cx, rec, staged, result.quarantine.as_ref()).await;
    detail.push_str(&abandoned.said);
    if abandoned.gone
        && let Some(q) = result.quarantine.as_mut().filter(|q| q.copy.is_some())
    {
        q.copy = None;
        rec.updated = now_millis();
        cx.store(Transition::Result { flow: cx.flow.name.clone(), rec: rec.clone(), result }).await?;
    }
    Ok(())
}

/// Quarantines a given-up file when its staged copy is whole and the flow has a quarantine;
/// `None` when it cannot be (then it fails for good). A quarantine that fails itself is
/// logged, said in `detail` (the file's report line), and undone in the ledger: the record
/// back in the state it had, its content result as it was (no quarantine claimed for a file
/// that is not in quarantine), before the file fails for good and `after.failure` records
/// where it moves the source (`fail`).
async fn quarantine_given_up(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    staged: &Path,
    detail: &mut String,
) -> Result<Option<FileReport>, LedgerError> {
    let whole = matches!(rec.state, FileState::Staged | FileState::Processed | FileState::Delivering | FileState::Quarantining);
    let Some(q) = cx.flow.quarantine.as_ref().filter(|_| whole && cx.quarantine.is_some()) else {
        return Ok(None);
    };
    let before = cx.ledger.file_result(&cx.flow.name, &rec.path)?;
    let mut result = before.clone().unwrap_or_default();
    if result.quarantine.is_none() {
        result.quarantine =
            Some(QuarantineRecord { reason: detail.clone(), at: now_millis(), endpoint: q.endpoint.clone(), ..Default::default() });
    }
    let was = rec.state;
    rec.state = FileState::Quarantining;
    rec.updated = now_millis();
    cx.store(Transition::Result { flow: cx.flow.name.clone(), rec: rec.clone(), result }).await?;
    let _names = claim_quarantine(cx).await;
    match quarantine::put_aside(cx, rec, entry, staged).await {
        Ok(f) => Ok(Some(f)),
        Err(FileError::Ledger(e)) => Err(e),
        Err(e) => {
            tracing::error!(flow = %cx.flow.name, path = %entry.path, error = %e, "Could not quarantine a given-up file.");
            // The reason is the detail already: only what the quarantine met is added.
            let why = match &e {
                FileError::Quarantine { endpoint, source, .. } => format!("putting it aside in quarantine {endpoint} failed: {source}"),
                e => format!("it could not be put aside in quarantine: {e}"),
            };
            detail.push_str(&format!("; {why}"));
            // A copy made before the trouble (the upload of its reports failed, say) is
            // removed: the file is not quarantined, and the copy would be left where nothing
            // lists it; one that cannot be removed is named, for removing by hand.
            let qr = cx.ledger.file_result(&cx.flow.name, &rec.path)?.and_then(|r| r.quarantine);
            let abandoned = quarantine::abandon(cx, rec, staged, qr.as_ref()).await;
            detail.push_str(&abandoned.said);
            rec.state = was;
            rec.updated = now_millis();
            let flow = cx.flow.name.clone();
            let undone = match before {
                Some(mut result) => {
                    if abandoned.gone
                        && let Some(q) = result.quarantine.as_mut()
                    {
                        q.copy = None;
                    }
                    Transition::Result { flow, rec: rec.clone(), result }
                }
                None => Transition::NoResult { flow, rec: rec.clone() },
            };
            cx.store(undone).await?;
            Ok(None)
        }
    }
}
