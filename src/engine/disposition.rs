//! Disposition: what happens to the source file after delivery (or a permanent failure):
//! keep it, delete it, or move it into a folder under a collision-safe name.
//!
//! Called only after every sink confirmed (success) — the engine guarantees the order. The
//! move target is chosen first and recorded by the caller, so a resumed run can tell a move
//! that already happened (source gone, target present) from one that did not.

use crate::config::flow::Disposition;
use crate::endpoint::{Endpoint, ErrorKind, RemotePath};

use super::error::FileError;
use super::naming;

/// Chooses where a `move_to` disposition will put `source` (a free name in the folder).
/// `None` for `keep` and `delete`.
pub async fn plan(ep: &dyn Endpoint, source: &RemotePath, disp: &Disposition) -> Result<Option<RemotePath>, FileError> {
    match disp {
        Disposition::MoveTo(dir) => {
            ep.create_dir_all(dir).await?;
            Ok(Some(naming::free_name(ep, dir, source.name()).await?))
        }
        Disposition::Keep | Disposition::Delete => Ok(None),
    }
}

/// Applies `disp` to `source`; `target` is what [`plan`] chose. Idempotent: a source that is
/// already gone (moved or deleted by an earlier, interrupted attempt) counts as done.
/// Returns where the file went for a move.
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
            for _ in 0..100 {
                match ep.rename(source, &target, false).await {
                    Ok(()) => return Ok(Some(target)),
                    Err(e) if e.kind == ErrorKind::NotFound => {
                        // Moved by an earlier attempt (target present) or gone entirely.
                        return Ok(Some(target));
                    }
                    Err(e) if e.kind == ErrorKind::AlreadyExists => {
                        // Taken since we planned: choose again, never overwrite.
                        target = naming::free_name(ep, &target.parent(), source.name()).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(FileError::Name(format!("could not find a free name to move {source} to")))
        }
        (Disposition::MoveTo(dir), None) => {
            // Without the folder, the rename would fail with NotFound, which reads as "moved
            // by an earlier attempt" above: the source would silently stay.
            ep.create_dir_all(dir).await?;
            let target = naming::free_name(ep, dir, source.name()).await?;
            Box::pin(apply(ep, source, disp, Some(&target))).await
        }
    }
}
