//! Whether the file is still the version that was listed, or read: a file replaced between
//! its listing and its download (flows that keep their source), or written to between its
//! download and its disposal (flows that move or delete it).

use super::*;

/// Why a file just read must not be delivered: the file the endpoint opened (`opened`, the
/// open handle's attributes, which name the version read even when another file has taken
/// its name since) is not the version that was listed — another size or modification time:
/// the partner replaced it in between. Its identity is the listing's, so delivering it under
/// that identity would have the next run deliver the new version a second time. `None` when
/// it is the listed one, or the endpoint cannot say (FTPS, PASV or active mode, where asking
/// would cost a round trip: `describes_opened`; there `changed_since_read` still keeps a moved
/// or deleted source that changed).
///
/// Only in a flow that keeps its source (a moved or deleted one is checked before it is
/// moved, `changed_since_read`, which also delivers at once a version replaced before it was
/// read) and where the identity has the modification time but not the content: `[sha256]` is
/// what was read, and without the time a same-size replacement has the same identity (and a
/// size change fails the read). Costs no round trip: the attributes come with the read.
pub(super) fn replaced_since_listed(cx: &Ctx<'_>, rec: &FileRecord, opened: Option<&Entry>) -> Option<String> {
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
/// Asked before a delivered file's source is disposed of (`after.success`) and before a
/// quarantined one's is (`after.failure`, `quarantine::put_aside`).
///
/// Only another time, with the size unchanged, may also mean the partner replaced the file
/// *before* it was read (or touched it): then what is there is what was delivered, and
/// keeping it would have the next run deliver it again under its new time. The source is
/// hashed once more to tell (`transfer::hash_remote`: the server's checksum where it offers
/// one; only in that rare case: the usual file costs the one stat). The stat bounds the read:
/// the file has the size delivered, and one that grows while it is read hashes to another
/// content, as it should.
pub(in crate::engine) async fn changed_since_read(cx: &Ctx<'_>, rec: &FileRecord, path: &RemotePath) -> Result<Option<String>, FileError> {
    let Some(now) = retry(cx.flow, "stat source", || async { Ok(cx.source.stat(path).await?) }).await? else { return Ok(None) };
    let (new_size, new_time) = other_version(rec, &now);
    if !new_size
        && new_time
        && let Some(delivered) = &rec.sha256
        // Trouble reading it leaves the source where it is, as any change does.
        && retry(cx.flow, "read source", || transfer::hash_remote(&*cx.source, path)).await.ok().as_ref() == Some(delivered)
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
