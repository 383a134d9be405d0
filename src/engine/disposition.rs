//! Disposition: what happens to the source file after delivery (or a permanent failure):
//! keep it, delete it, or move it into a folder under a collision-safe name.
//!
//! Called only after every sink confirmed (success) — the engine guarantees the order. The
//! move target is chosen first and recorded by the caller, so a resumed run can tell a move
//! that already happened (source gone, target present) from one that did not. For
//! `after.failure` (a file quarantined or failed for good) that choosing, recording and moving
//! is one function, [`after_failure`].

use crate::config::flow::Disposition;
use crate::endpoint::{Endpoint, Entry, EntryKind, ErrorKind, RemotePath};
use crate::ledger::{FileRecord, FileState, LedgerError, SourceFate, Transition, now_millis};

use super::error::FileError;
use super::lifecycle::Ctx;
use super::naming;
use super::retry::retry;

/// Chooses where a `move_to` disposition will put `source` (a free name in the folder).
/// `None` for `keep` and `delete`.
pub async fn plan(ep: &dyn Endpoint, source: &RemotePath, disp: &Disposition) -> Result<Option<RemotePath>, FileError> {
    match disp {
        Disposition::MoveTo(dir) => {
            ep.create_dir_all(dir).await?;
            Ok(Some(move_target(ep, source, dir, |_| false).await?))
        }
        Disposition::Keep | Disposition::Delete => Ok(None),
    }
}

/// Where a move of `source` into `dir` goes: the first free name for its name there,
/// passing over the names `taken` says are spoken for besides what `ep` holds (`wharf plan`:
/// where earlier files of the same run will have been moved). Only looks.
pub async fn move_target(
    ep: &dyn Endpoint,
    source: &RemotePath,
    dir: &RemotePath,
    taken: impl Fn(&RemotePath) -> bool,
) -> Result<RemotePath, FileError> {
    naming::free_name_but(ep, dir, &naming::creatable(ep, source.name()), taken).await
}

/// What [`apply`] will do with a source, told by looking only (`wharf plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// `keep`: left where it is.
    Kept,
    /// `delete`: removed (`there`), or found gone already.
    Deleted { there: bool },
    /// Moved to `to`; `instead_of`: the name it would have taken there (its own name, or the
    /// target recorded before a crash), taken by then.
    Moved { to: RemotePath, instead_of: Option<RemotePath> },
    /// Gone from the source and at `target`, the recorded move target: moved by an earlier
    /// attempt.
    MovedBefore(RemotePath),
    /// `move_to` of a source gone, and not at its recorded target: not moved.
    Gone,
}

/// What [`apply`] will do with `source` (`there`: whether it is there, when a listing just
/// said so; else looked at): `target` is the move target recorded before a crash (a run
/// chose it, [`plan`], and stopped before the move was done), else the move goes to the
/// first free name, as [`plan`] (or [`apply`] without a target) chooses it; a recorded target
/// taken meanwhile makes [`apply`] choose again in its folder. `taken`: names spoken for
/// besides what `ep` holds (where earlier files of the same run will have been moved).
/// Only looks.
pub(crate) async fn foresee(
    ep: &dyn Endpoint,
    source: &RemotePath,
    disp: &Disposition,
    target: Option<&RemotePath>,
    there: Option<bool>,
    taken: impl Fn(&RemotePath) -> bool,
) -> Result<Fate, FileError> {
    let dir = match disp {
        Disposition::Keep => return Ok(Fate::Kept),
        Disposition::Delete => None,
        Disposition::MoveTo(dir) => Some(dir),
    };
    let there = match there {
        Some(there) => there,
        None => ep.stat(source).await?.is_some(),
    };
    let Some(dir) = dir else { return Ok(Fate::Deleted { there }) };
    Ok(match target {
        // The rename finds no source: moved by an earlier attempt if it is at the target.
        Some(t) if !there => {
            if ep.stat(t).await?.is_some() {
                Fate::MovedBefore(t.clone())
            } else {
                Fate::Gone
            }
        }
        None if !there => Fate::Gone,
        Some(t) if !taken(t) && ep.stat(t).await?.is_none() => Fate::Moved { to: t.clone(), instead_of: None },
        // Taken since it was chosen: chosen again, never overwritten.
        Some(t) => Fate::Moved { to: move_target(ep, source, &t.parent(), taken).await?, instead_of: Some(t.clone()) },
        None => {
            let to = move_target(ep, source, dir, taken).await?;
            let own = dir.join(&naming::creatable(ep, source.name())).ok().filter(|own| *own != to);
            Fate::Moved { to, instead_of: own }
        }
    })
}

/// Records on `rec` what applying `disp` did with its source: moved to `moved` (what
/// [`apply`] returned), deleted, or kept. What history later reads to tell whether the file
/// may still be in the folder (`ledger::prune`).
pub fn record(rec: &mut FileRecord, disp: &Disposition, moved: Option<&RemotePath>) {
    rec.disposed_to = moved.map(|t| t.as_str().to_string());
    rec.source_fate = match (disp, moved) {
        (_, Some(_)) => SourceFate::Moved,
        (Disposition::Delete, None) => SourceFate::Deleted,
        (Disposition::Keep | Disposition::MoveTo(_), None) => SourceFate::Kept,
    };
}

/// What to look at when the server refused to apply `disp` to `source` (permission denied),
/// to follow the error in a report: the login may not remove or rename files in the folder,
/// or (`move_to`) create them in the one it moves to; or the server refuses the command to
/// this login whatever the folder (a drop box: vsftpd `cmds_denied`, pure-ftpd `-K`/`-R`),
/// which only the partner can change, and `keep` is what works meanwhile.
pub fn refused_hint(disp: &Disposition, source: &RemotePath) -> String {
    const WHOLE: &str = "or the server lets this login delete or rename nothing at all (a drop box): then `keep` leaves the files \
                         there, not taken again";
    match disp {
        Disposition::Keep => String::new(),
        Disposition::Delete => {
            format!("; the login may not delete files in {} (check the folder's permissions for it), {WHOLE}", source.parent())
        }
        Disposition::MoveTo(dir) => {
            format!(
                "; the login may not move files out of {} or into {dir} (check the folders' permissions for it), {WHOLE}",
                source.parent()
            )
        }
    }
}

/// Applies `disp` to `source`; `target` is what [`plan`] chose. Idempotent: a source that is
/// already gone (moved or deleted by an earlier, interrupted attempt) counts as done.
/// Returns where the file went for a move: `None` when the source was gone and not at the
/// target either (taken away by someone else: never said to be moved where it is not).
pub async fn apply(
    ep: &dyn Endpoint,
    source: &RemotePath,
    disp: &Disposition,
    target: Option<&RemotePath>,
) -> Result<Option<RemotePath>, FileError> {
    match (disp, target) {
        (Disposition::Keep, _) => Ok(None),
        (Disposition::Delete, _) => match ep.remove(source).await {
            Ok(()) => Ok(None),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        },
        (Disposition::MoveTo(_), Some(target)) => {
            let mut target = target.clone();
            let mut folder_made = false;
            for _ in 0..100 {
                match ep.rename(source, &target, false).await {
                    Ok(()) => return Ok(Some(target)),
                    Err(e) if e.kind == ErrorKind::NotFound => {
                        // The source still there: it is the folder that is missing (removed
                        // since it was made, by the partner's clean-up say): made again, once.
                        // Else moved by an earlier attempt (target present) or gone entirely.
                        if ep.stat(source).await?.is_some() {
                            if folder_made {
                                // Still "not found" with the source there and the folder made:
                                // not moved, whatever the server means by it.
                                return Err(e.into());
                            }
                            ep.create_dir_all(&target.parent()).await?;
                            folder_made = true;
                            continue;
                        }
                        // Moved by an earlier attempt if it is where that attempt put it; else
                        // it went elsewhere (the partner took it back or deleted it): not moved.
                        return Ok(ep.stat(&target).await?.map(|_| target));
                    }
                    Err(e) if e.kind == ErrorKind::AlreadyExists => {
                        // Taken since we planned: choose again, never overwrite.
                        target = move_target(ep, source, &target.parent(), |_| false).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(FileError::Name(format!("could not find a free name to move {source} to")))
        }
        (Disposition::MoveTo(dir), None) => {
            // No target was planned, so a source already gone was not moved by an earlier
            // attempt at this one: it went elsewhere (moved when the file was first
            // quarantined, and now reprocessed). Below, its rename would fail with NotFound and
            // read as "moved" to a free name chosen just now, where it never went.
            // Nor is what took its name since (a folder, a link: the partner replaced the file,
            // as a download that found a folder reports) the flow's to move: the file is gone.
            if ep.stat(source).await?.is_none_or(|e| e.kind != EntryKind::File) {
                return Ok(None);
            }
            // Without the folder, the rename would fail with NotFound, which reads as "moved
            // by an earlier attempt" above: the source would silently stay.
            ep.create_dir_all(dir).await?;
            let target = move_target(ep, source, dir, |_| false).await?;
            Box::pin(apply(ep, source, disp, Some(&target))).await
        }
    }
}

/// Applies `after.failure` to the source of a file put aside in quarantine or failed for
/// good, a `move_to`'s target chosen and recorded first, as a delivered file's (`disposing`):
/// stored on `rec` as `disposed_to` with the source `Kept` (not moved yet), then the halt
/// point `point`, then the move. A crash after the move leaves a record naming where the
/// source went, and a resumed run moves it to the same name. `recorded`: the target an
/// earlier, interrupted attempt recorded. A source gone already (moved when the file was first
/// quarantined, and now reprocessed) gets no target: what the record says of where it went
/// stays. The outer error is the ledger's; the inner one what applying it met.
pub(super) async fn after_failure(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    recorded: Option<RemotePath>,
    point: &str,
) -> Result<Result<Option<RemotePath>, FileError>, LedgerError> {
    let disp = &cx.flow.after_failure;
    let target = match recorded {
        Some(t) => Ok(Some(t)),
        None if !matches!(disp, Disposition::MoveTo(_)) => Ok(None),
        None => {
            retry(cx.flow, "plan after.failure", || async {
                match cx.source.stat(&entry.path).await? {
                    Some(e) if e.kind == EntryKind::File => plan(&*cx.source, &entry.path, disp).await,
                    _ => Ok(None),
                }
            })
            .await
        }
    };
    if let Ok(Some(t)) = &target
        && rec.disposed_to.as_deref() != Some(t.as_str())
    {
        rec.disposed_to = Some(t.as_str().to_string());
        // Not moved yet: what `lifecycle::recorded_move` and [`failing_move`] read as a target
        // still to move to.
        rec.source_fate = SourceFate::Kept;
        rec.updated = now_millis();
        cx.store(Transition::File { flow: cx.flow.name.clone(), rec: rec.clone() }).await?;
    }
    super::halt::point(point);
    let applied = match target {
        Ok(t) => apply(&*cx.source, &entry.path, disp, t.as_ref()).await,
        Err(e) => Err(e),
    };
    if !matches!(applied, Ok(Some(_))) && rec.source_fate != SourceFate::Moved {
        // A target chosen and not moved to (the source gone elsewhere, or the move refused).
        rec.disposed_to = None;
    }
    Ok(applied)
}

/// Disposes of a quarantined or failed file's source as `after.failure` says
/// ([`after_failure`]), records on `rec` what became of it, disposes of the files that go
/// with it (done file, checksum, row count) alike, and returns what the file's report line
/// says of it (`None`: nothing was done, the source stays). As before a delivered file's
/// source is disposed of, what is there now, written to or replaced since it was read (the
/// partner's new version, in the window before the move or after a crash), is not what
/// failed: it stays where it is (`lifecycle::changed_since_read`), and the next run takes it
/// as the new file it is (another size or time than the version recorded).
pub(super) async fn dispose_failed(
    cx: &Ctx<'_>,
    rec: &mut FileRecord,
    entry: &Entry,
    recorded: Option<RemotePath>,
    point: &str,
) -> Result<Option<String>, LedgerError> {
    let disp = &cx.flow.after_failure;
    let changed = match disp {
        Disposition::Keep => Ok(None),
        _ => super::lifecycle::changed_since_read(cx, rec, &entry.path).await,
    };
    let applied = match changed {
        Ok(Some(why)) => {
            // A `move_to` target recorded before a crash is not where it went.
            record(rec, &Disposition::Keep, None);
            return Ok(Some(format!("; source kept: {why}")));
        }
        Ok(None) => after_failure(cx, rec, entry, recorded, point).await?,
        Err(e) => Err(e),
    };
    Ok(match applied {
        Ok(Some(t)) => {
            record(rec, disp, Some(&t));
            super::lifecycle::dispose_companions(cx, entry, disp).await;
            Some(format!("; source moved to {t}"))
        }
        Ok(None) if *disp == Disposition::Delete => {
            record(rec, disp, None);
            super::lifecycle::dispose_companions(cx, entry, disp).await;
            Some("; source deleted".into())
        }
        Ok(None) => None,
        Err(e) => Some(format!("; after.failure could not be applied: {e}")),
    })
}

/// The `after.failure: move_to` target recorded for a file failing for good before its
/// source was moved ([`after_failure`] from `lifecycle::fail`), the file still in flight in
/// the state it failed in: what a run finishing it after a crash looks for (`left_failing`),
/// its source no longer listed. Listed again, the source was never moved: the name is dropped
/// when the file is taken again (`lifecycle::process`). Files being delivered or quarantined
/// record theirs otherwise (`lifecycle::recorded_move`).
pub(super) fn failing_move(rec: &FileRecord) -> Option<RemotePath> {
    let failing = rec.state.in_flight()
        && !matches!(rec.state, FileState::Delivered | FileState::Disposing | FileState::Quarantining)
        && rec.source_fate == SourceFate::Kept
        && rec.last_error.is_some();
    rec.disposed_to.as_deref().filter(|_| failing).and_then(|t| RemotePath::parse(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::local::LocalEndpoint;

    fn p(s: &str) -> RemotePath {
        RemotePath::parse(s).unwrap()
    }

    /// A `move_to` folder removed between the plan and the move (a partner's clean-up of
    /// `processed/`) is made again and the file moved — not read as "moved by an earlier
    /// attempt" while the source stays where it was.
    #[tokio::test]
    async fn a_move_to_folder_removed_since_the_plan_is_made_again() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("in")).unwrap();
        std::fs::write(d.path().join("in/a.csv"), "a").unwrap();
        let ep = LocalEndpoint::new(d.path().to_path_buf());
        let disp = Disposition::MoveTo(p("in/processed"));
        let target = plan(&ep, &p("in/a.csv"), &disp).await.unwrap();
        std::fs::remove_dir(d.path().join("in/processed")).unwrap();
        let moved = apply(&ep, &p("in/a.csv"), &disp, target.as_ref()).await.unwrap();
        assert_eq!(moved, Some(p("in/processed/a.csv")));
        assert!(!d.path().join("in/a.csv").exists(), "moved, not left behind");
        assert_eq!(std::fs::read(d.path().join("in/processed/a.csv")).unwrap(), b"a");
        // Moved by an earlier attempt: the source gone, the target there, counts as done.
        let again = apply(&ep, &p("in/a.csv"), &disp, moved.as_ref()).await.unwrap();
        assert_eq!(again, Some(p("in/processed/a.csv")));
        // Gone from both (a crash before the move, then the partner deleted the file): not
        // moved. Before, recorded as moved to where it never went.
        std::fs::remove_file(d.path().join("in/processed/a.csv")).unwrap();
        let gone = apply(&ep, &p("in/a.csv"), &disp, moved.as_ref()).await.unwrap();
        assert_eq!(gone, None);
    }

    /// `after.failure: move_to` of a file a folder took the name of (the partner replaced
    /// it between the listing and the download, which failed saying so): the folder is not
    /// the flow's, and stays where it is with what it holds; the file is gone, not moved.
    #[tokio::test]
    async fn a_folder_that_took_a_failed_file_s_name_is_not_moved() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("in/a.csv")).unwrap();
        std::fs::write(d.path().join("in/a.csv/inside.txt"), "theirs").unwrap();
        let ep = LocalEndpoint::new(d.path().to_path_buf());
        let moved = apply(&ep, &p("in/a.csv"), &Disposition::MoveTo(p("in/failed")), None).await.unwrap();
        assert_eq!(moved, None);
        assert_eq!(std::fs::read(d.path().join("in/a.csv/inside.txt")).unwrap(), b"theirs");
        assert!(!d.path().join("in/failed/a.csv").exists());
    }
}
