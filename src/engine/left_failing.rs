//! Files an earlier run left failing for good, its source moved by `after.failure: move_to`
//! before the failure was recorded (a crash between the two): the record still in flight,
//! with the move's target recorded before the move (`disposition::after_failure`), and the
//! source no longer listed. The run finishes such a file ([`finish`]) and `wharf plan` shows
//! it, both from [`judge`]. Only for those: files left being delivered or quarantined are
//! finished by the lifecycle and `quarantine::finish_left_aside`.

use crate::config::Flow;
use crate::endpoint::{Endpoint, Entry, ErrorKind, RemotePath};
use crate::ledger::{FileRecord, FileState, LedgerError, SourceFate, Transition, now_millis};

use super::disposition::{self, Fate};
use super::error::FileError;
use super::lifecycle::Ctx;
use super::retry::retry;
use super::{FileReport, REPORT_LOG_TARGET, content, stage};

/// What the next run records of a file left failing (see the module doc), judged by looking
/// only: `None` when it is not one, or while its source is still at `path` (a run that lists
/// it again takes it again); else its report line and where its source was found moved (the
/// name recorded before the move, when it is there).
pub(super) async fn judge(
    flow: &Flow,
    source: &dyn Endpoint,
    rec: &FileRecord,
    path: &RemotePath,
) -> Result<Option<(String, Option<RemotePath>)>, FileError> {
    let Some(target) = disposition::failing_move(rec) else { return Ok(None) };
    if source.stat(path).await?.is_some() {
        return Ok(None);
    }
    let why = rec.last_error.as_ref().map_or("failed", |e| e.message.as_str());
    let (fate, moved) = match disposition::foresee(source, path, &flow.after_failure, Some(&target), Some(false), |_| false).await? {
        Fate::MovedBefore(t) => (format!("source moved to {t}"), Some(t)),
        _ => (
            format!(
                "source no longer at {path}, nor at {target}, the name recorded for it in the after.failure folder (moved or removed since)"
            ),
            None,
        ),
    };
    Ok(Some((format!("{why}; {fate}; finished after a crash (it had failed before it)"), moved)))
}

/// Why a file left failing was not judged now: where its source went could not be looked at
/// (the run's report line, and `wharf plan`'s).
pub(super) fn unjudged(e: &dyn std::fmt::Display) -> String {
    format!(
        "left failing by an earlier run, its source gone; where after.failure moved it could not be looked at: {e} (the next run looks again)"
    )
}

/// Finishes a file left failing (see the module doc), as [`judge`] says: recorded `failed`,
/// its source `Moved` to the name recorded when found there (else its fate `Unknown`), its
/// staged copy (if any) discarded. `None` when it is not one or its source is still at its
/// path. The `bool`: whether the run must stop.
pub(super) async fn finish(cx: &Ctx<'_>, mut rec: FileRecord, entry: &Entry) -> Result<Option<(FileReport, bool)>, LedgerError> {
    let flow = &cx.flow.name;
    let judged = retry(cx.flow.retry, "check the after.failure move", || judge(cx.flow, &*cx.source, &rec, &entry.path)).await;
    let kind = rec.last_error.as_ref().map_or(ErrorKind::Protocol, |e| e.kind);
    match judged {
        Ok(None) => Ok(None),
        Ok(Some((detail, moved))) => {
            match &moved {
                Some(t) => disposition::record(&mut rec, &cx.flow.after_failure, Some(t)),
                None => {
                    rec.disposed_to = None;
                    rec.source_fate = SourceFate::Unknown;
                }
            }
            rec.state = FileState::Failed;
            rec.run = cx.run;
            rec.updated = now_millis();
            cx.store(Transition::File { flow: flow.clone(), rec }).await?;
            content::discard_with_outputs(&stage::staging_path(cx.staging_dir, flow, &entry.path)).await;
            tracing::error!(target: REPORT_LOG_TARGET, flow = %flow, path = %entry.path, kind = %kind, error = %detail, "File failed.");
            Ok(Some((FileReport::failed(&entry.path, detail, kind), false)))
        }
        Err(FileError::Ledger(e)) => Err(e),
        Err(e) => Ok(Some(FileReport::left_unjudged(flow, &entry.path, &e, unjudged(&e)))),
    }
}
