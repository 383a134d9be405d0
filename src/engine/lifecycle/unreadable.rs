//! A listed file the login may not read yet: a partner's uploader that writes a file readable
//! to its owner only and opens it up once it is done (a common way of hiding an upload in
//! progress). Its read refused for the login's rights ([`FileError::Unreadable`], decided by
//! the error's kind in `stage`) is not a failure of the file: it is not ready, as a file still
//! growing is, for as long as it stays listed — never failed, no `after.failure`, no attempt
//! counted towards `retry.give_up_after`.
//!
//! Told as other lasting conditions of a source are: the run's report (and `wharf plan`) give
//! the reason at every run; the log warns once while it stays (later runs at debug level), the
//! file's record being the memory (its `last_error`, kind `permission denied`, since the first
//! refusal); and a file still refused [`alerts::UNREADABLE_AFTER`] after the first refusal
//! raises one `not_taken` event ([`alerts::unreadable`]), stored with the record, so that
//! someone looks. Readable again, it is taken as any file.

use super::*;
use crate::endpoint::EndpointError;
use crate::engine::alerts;
use crate::ledger::{EventKind, to_millis};

/// The record's refusal, when the last look at this version of the file (`rec`) found it
/// unreadable: when that was first found (`at`), and why (`message`, without the `(refused
/// since …)` the report line adds). `wharf plan` and `wharf status` tell it from this.
pub(crate) fn refused(rec: &FileRecord) -> Option<&ErrorRecord> {
    rec.last_error.as_ref().filter(|e| e.kind == ErrorKind::PermissionDenied && rec.state == FileState::Claimed)
}

/// When the record of the file as its turn found it (`rec`) says the last look found it
/// unreadable ([`refused`]): since when, and when it was last refused.
pub(super) fn refused_before(rec: &FileRecord) -> Option<(Millis, Millis)> {
    refused(rec).map(|r| (r.at, rec.updated))
}

/// Records that the login may not read `entry` (run `cx.run`), leaves it for a later run
/// (`staged`, a partial download, removed) and says so: the report line (not ready), the
/// warning the first time, the event past the bound. `e`: the refusal; `before`: what
/// [`refused_before`] said of the record before this turn.
pub(super) async fn not_yet(
    cx: &Ctx<'_>,
    (rec, entry, staged): (&mut FileRecord, &Entry, &Path),
    e: EndpointError,
    before: Option<(Millis, Millis)>,
) -> Result<(FileReport, bool), LedgerError> {
    stage::discard(staged).await;
    let (flow, now) = (&cx.flow.name, to_millis(cx.now));
    let first = before.map_or(now, |(first, _)| first);
    let cause = format!(
        "the login may not read it yet: {e} (the folder lists it, but the file's permissions do not let the login read it); taken once it is readable"
    );
    // The record keeps the cause, its `at` saying since when: `wharf status` and `wharf plan`
    // add the time as they show it.
    let why = match before {
        Some(_) => format!("{cause} (refused since {})", date(first)),
        None => cause.clone(),
    };
    // Nothing staged is kept (a large file's durable `staging` record is taken back): the
    // next run starts it afresh.
    rec.state = FileState::Claimed;
    rec.last_error = Some(ErrorRecord { kind: ErrorKind::PermissionDenied, message: cause, at: first });
    rec.updated = now;
    match before {
        None => {
            tracing::warn!(flow = %flow, run = cx.run, path = %entry.path, cause = %e, "Not taken yet: the login may not read the file; taken once it is readable.");
            cx.ledger.put_file_with(flow, rec, Durability::Lazy)?;
        }
        Some((_, last)) if alerts::unreadable_too_long(first, last, now) => {
            let event = alerts::unreadable(cx.events_flow, cx.run, &entry.path.to_string(), &why, now);
            let record = Transition::File { flow: flow.clone(), rec: rec.clone() };
            cx.store(Transition::WithEvent { transition: Box::new(record), event }).await?;
            alerts::log(cx.events_flow, EventKind::NotTaken, &entry.path.to_string(), &why);
        }
        Some(_) => {
            tracing::debug!(flow = %flow, run = cx.run, path = %entry.path, cause = %e, "Not taken yet: the login may still not read the file.");
            cx.ledger.put_file_with(flow, rec, Durability::Lazy)?;
        }
    }
    Ok((report(&entry.path, Outcome::NotReady, why), false))
}
