//! Files a crashed run left in flight whose source is no longer listed (it was being moved
//! or deleted): which of them a run takes up ([`taken_up`]). The run finishes those after the
//! listing's files (the lifecycle, `quarantine::finish_left_aside`, `left_failing`,
//! `left_gone`), but they are resumed work: under `source.max_files` they take the run's
//! places first (`cap::Turn::Resumed`), before any listed file; one the places do not reach
//! stays in flight for the next run. `wharf plan` takes the same places from the same list.

use std::collections::BTreeSet;

use crate::config::Flow;
use crate::endpoint::{Endpoint, Entry, EntryKind, RemotePath};
use crate::ledger::{FileRecord, FileState, Ledger, LedgerError};

use super::discover::Unlisted;
use super::{disposition, from_millis, left_gone};

/// A file left in flight, not listed, that the run takes up: its record, and its entry as
/// the ledger knows it (the time a run ordering its places sees).
pub(super) struct Left {
    pub rec: FileRecord,
    pub entry: Entry,
}

/// The files `flow`'s runs left in flight that are not among `listed` and that a run now
/// takes up, as the run's finishers judge them: one left delivered or disposing (only its
/// disposal left: its source moved or not), and one left being quarantined, failing, or before
/// its delivery was done, when its source is gone from its path (`left_gone`: nor under a
/// folder the listing could not read, `unlisted`). One whose source could not be looked at
/// counts too: the run reports it, and it never makes a run start more than `max_files`.
pub(super) async fn taken_up(
    flow: &Flow,
    source: &dyn Endpoint,
    ledger: &Ledger,
    listed: &BTreeSet<&str>,
    unlisted: &[Unlisted],
) -> Result<Vec<Left>, LedgerError> {
    let mut out = Vec::new();
    for rec in ledger.in_flight_files(&flow.name)?.into_iter().filter(|r| !listed.contains(r.path.as_str())) {
        let Ok(path) = RemotePath::parse(&rec.path) else { continue };
        let taken = match rec.state {
            FileState::Delivered | FileState::Disposing => true,
            _ if rec.state == FileState::Quarantining || disposition::failing_move(&rec).is_some() => {
                !matches!(source.stat(&path).await, Ok(Some(_)))
            }
            _ if left_gone::undelivered(&rec) => !matches!(left_gone::gone(flow, source, &path, unlisted).await, Ok(None)),
            _ => false,
        };
        if taken {
            let entry = Entry { path, kind: EntryKind::File, size: rec.size, mtime: rec.mtime.map(from_millis) };
            out.push(Left { rec, entry });
        }
    }
    Ok(out)
}
