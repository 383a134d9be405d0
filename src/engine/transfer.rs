//! Transfer safety: deliver a staged file to a sink so that the final name only ever holds
//! a complete, verified file.
//!
//! Upload under the temporary name, verify the size the sink reports (and the SHA-256, when
//! the server can compute one), then rename to the final name — written once here for every
//! protocol. The exists-policy (`fail`, `overwrite`, `rename`, `skip`) is decided in
//! [`choose_target`] *before* the upload, and
//! the chosen target (with the file it replaces, for `overwrite`) is recorded in the ledger
//! by the caller, so a run resumed after a crash checks that exact target instead of
//! uploading again ([`already_delivered`]). A local folder on the staging
//! folder's file system takes the staged file (complete, fsynced) by one rename straight to
//! the final name instead ([`Endpoint::adopt`]): a rename is atomic, so the final name still
//! never holds part of a file, and the temporary name, the size check and the second
//! rename (a folder fsync each) are spared. A sink with `direct: true` (a server that
//! refuses renames) is given its final name as the temporary one: written there, verified,
//! not renamed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::config::flow::IfExists;
use crate::endpoint::{Adoptee, Endpoint, EndpointError, ErrorKind, Op, RemotePath};
use crate::ledger::{Replaced, to_millis};

use super::budget::Budget;
use super::error::FileError;
use super::pipe::{self, HashReader};
use super::stage::CHUNK;
use super::{halt, naming};

/// The folders a run has made sure of, by endpoint: each is created (or found) once per run
/// instead of once per upload (a round trip per file, `CWD` over FTP). A folder removed
/// behind the run's back is made again: an upload that cannot open its file forgets its
/// folder, so the retry creates it.
#[derive(Default)]
pub struct Folders(Mutex<HashSet<(String, String)>>);

impl Folders {
    async fn ensure(&self, ep: &dyn Endpoint, dir: &RemotePath) -> Result<(), FileError> {
        let key = (ep.describe(), dir.to_string());
        if self.lock().contains(&key) {
            return Ok(());
        }
        ep.create_dir_all(dir).await?;
        self.lock().insert(key);
        Ok(())
    }

    fn forget(&self, ep: &dyn Endpoint, dir: &RemotePath) {
        self.lock().remove(&(ep.describe(), dir.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        // A poisoned lock only means a panic elsewhere during one insert or look-up.
        crate::sync::lock(&self.0)
    }
}

/// Where a file will go on a sink.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    /// Upload and rename to this path, replacing the file it holds now, if any (only with
    /// `overwrite`).
    Upload(RemotePath, Option<Replaced>),
    /// The target exists and the policy is `skip`: count as delivered, upload nothing. With
    /// the size and time of the file kept there.
    Skip(RemotePath, Replaced),
}

/// Applies the exists-policy to `dir/name` on `ep`; a `name` longer than a file system takes
/// is refused first ([`naming::check_target_name`]).
pub async fn choose_target(ep: &dyn Endpoint, dir: &RemotePath, name: &str, policy: IfExists) -> Result<Target, FileError> {
    choose_target_within(ep, dir, name, policy, naming::NAME_MAX).await
}

/// [`choose_target`] where a free name `rename` chooses has at most `room` bytes: room left
/// for a trigger named after it (`naming::candidate_within`).
pub async fn choose_target_within(
    ep: &dyn Endpoint,
    dir: &RemotePath,
    name: &str,
    policy: IfExists,
    room: usize,
) -> Result<Target, FileError> {
    naming::check_target_name(name)?;
    let path = dir.join(name).map_err(|e| FileError::TargetName(format!("target name {name:?}: {e}")))?;
    // `overwrite` looks too: what it replaces is recorded with the target, so that a run
    // resumed after a crash (or after a failed upload) does not take the old file, still
    // there under the final name, for its own delivery when the sizes happen to match.
    let there = match ep.stat(&path).await {
        Ok(there) => there,
        // An upload-only folder (write, no look) takes an overwrite as before; a resumed run
        // cannot look either, so there is nothing to protect it from.
        Err(e) if policy == IfExists::Overwrite && e.kind == ErrorKind::PermissionDenied => None,
        Err(e) => return Err(e.into()),
    };
    let Some(there) = there else { return Ok(Target::Upload(path, None)) };
    let held = Replaced { size: there.size, mtime: there.mtime.map(to_millis) };
    match policy {
        IfExists::Fail => Err(FileError::TargetExists { endpoint: ep.describe(), target: path.to_string(), why: "sink if_exists: fail" }),
        IfExists::Overwrite => Ok(Target::Upload(path, Some(held))),
        IfExists::Skip => Ok(Target::Skip(path, held)),
        IfExists::Rename => Ok(Target::Upload(naming::free_name_within(ep, dir, name, room, |_| false).await?, None)),
    }
}

/// True when `target` holds a file of `size` bytes that is not the file the delivery
/// `replaces`: a delivery that completed before a crash (the rename only happens after the
/// size was verified). The replaced file unchanged (same size and time) means the rename
/// did not happen; so does a replaced file of the same size without times to tell them
/// apart (uploading again writes the same bytes over it, where taking it would lose them).
///
/// With a known content (`expect`) a file of the right size is also hashed ([`hash_remote`]):
/// somebody else's file of the same size that took the name meanwhile (the crash left it
/// free) is not taken for this delivery — the caller then chooses the target again, by the
/// sink's `if_exists`. Only a delivery found unconfirmed after a crash pays this read.
pub async fn already_delivered(
    ep: &dyn Endpoint,
    target: &RemotePath,
    size: u64,
    replaces: Option<Replaced>,
    expect: Expect<'_>,
) -> Result<bool, FileError> {
    let Some(there) = ep.stat(target).await? else { return Ok(false) };
    let old = replaces.is_some_and(|r| {
        let mtime = there.mtime.map(to_millis);
        r.size == there.size && (r.mtime.is_none() || mtime.is_none() || r.mtime == mtime)
    });
    if there.size != size || old {
        return Ok(false);
    }
    let want = match expect {
        Expect::Sha256(h) => h.to_string(),
        // Gone (a local sink took it by renaming): the size tells, as without a hash.
        Expect::File(f) => match pipe::hash_file(f.to_path_buf()).await {
            Ok((_, h)) => hex::encode(h.finalize()),
            Err(_) => return Ok(true),
        },
        Expect::Size => return Ok(true),
    };
    let got = hash_remote(ep, target).await?;
    if got != want {
        tracing::warn!(
            endpoint = %ep.describe(),
            target = %target,
            "The recorded target holds a file of the right size but other content (somebody else's); it is not taken for this delivery."
        );
    }
    Ok(got == want)
}

/// What a delivered target holds, for [`already_delivered`] to recognise it by.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// This SHA-256 (lowercase hex): the staged original's, recorded.
    Sha256(&'a str),
    /// What this local file holds (a steps' output, a rejects file), hashed when needed.
    File(&'a Path),
    /// Only the size is known.
    Size,
}

/// The SHA-256 (lowercase hex) of `path` on `ep`: the server's checksum where it offers one
/// ([`Endpoint::sha256`], as an upload is verified by), else read whole (streamed: bounded
/// memory).
pub(super) async fn hash_remote(ep: &dyn Endpoint, path: &RemotePath) -> Result<String, FileError> {
    if let Some(h) = ep.sha256(path).await? {
        return Ok(h);
    }
    let mut src = ep.open_read(path, 0).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        match src.read(&mut buf).await? {
            0 => return Ok(hex::encode(hasher.finalize())),
            n => hasher.update(&buf[..n]),
        }
    }
}

/// Uploads `staged` (`size` bytes) to `temp`, verifies it, and renames it to `target`.
/// With `data`, the staged file is held in memory instead (see `stage::INLINE_MAX`): those
/// bytes are sent (a local sink writes them under `temp` and renames them in one step).
/// `replace` allows replacing an existing target (the `overwrite` policy). With `last_use`
/// (nothing needs `staged` afterwards) a sink that can take the file by renaming it
/// ([`Endpoint::adopt`]: a local folder on the same file system) does, instead of copying it.
/// With `hash`, what is read is hashed on the way (a staging file not hashed yet). A staged
/// file read into memory whole takes its bytes from `budget` until the upload is done.
///
/// A staged file that is not `size` bytes long (a linked local source that changed since it
/// was listed) is not uploaded: [`FileError::Changed`]. With `stale_temp` (an earlier attempt
/// of this delivery, in this run or a crashed one, may have left `temp`), a server where a
/// write does not replace a file (`Capabilities::write_replaces`) has `temp` removed first.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    ep: &dyn Endpoint,
    folders: &Folders,
    budget: &Budget,
    staged: &Path,
    data: Option<&[u8]>,
    size: u64,
    temp: &RemotePath,
    target: &RemotePath,
    replace: bool,
    last_use: bool,
    hash: bool,
    stale_temp: bool,
) -> Result<Uploaded, FileError> {
    if last_use && ep.capabilities().local_files {
        folders.ensure(ep, &target.parent()).await?;
        // Renamed straight to the final name (atomic: it never holds part of a file). Taken
        // now, or by an earlier attempt of this upload (or the size says it was not, and the
        // file is staged again).
        let file = match data {
            Some(d) => Adoptee::Bytes(d, temp),
            None => Adoptee::Staged(staged),
        };
        match ep.adopt(file, target, replace).await {
            Ok(Some(a)) if a.size == size => return Ok(Uploaded { sha256: None, took: Some(a.folder) }),
            Ok(Some(a)) => {
                return Err(FileError::SizeMismatch {
                    endpoint: ep.describe(),
                    target: target.to_string(),
                    expected: size,
                    actual: a.size,
                });
            }
            Ok(None) => {}
            Err(e) => return Err(renamed(ep, target, replace, e)),
        }
    }
    let staging_err = |source| FileError::Staging { path: staged.to_path_buf(), source };
    let (read, hasher, _bytes);
    let body = if let Some(data) = data {
        Body::Small(data, None)
    } else if super::stage::is_small(size) {
        _bytes = budget.hold(size).await;
        (read, hasher) = pipe::read_whole(staged.to_path_buf(), size).await.map_err(staging_err)?;
        Body::Small(&read, Some(hasher))
    } else {
        let input = tokio::fs::File::open(staged).await.map_err(staging_err)?;
        Body::File(input.into_std().await, staged, hash)
    };
    let sent = upload_from(ep, folders, body, size, temp, target, replace, stale_temp).await?;
    Ok(Uploaded { sha256: sent.filter(|_| hash), took: None })
}

/// What [`upload`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The hex SHA-256 of what was sent, when it was hashed on the way.
    pub sha256: Option<String>,
    /// The sink took the staged file itself (renamed it into place): it is gone, and this
    /// folder's fsync makes the rename durable (see [`Endpoint::adopt`]).
    pub took: Option<std::path::PathBuf>,
}

/// Which attempt of a retried delivery an upload is.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// Not the first: an earlier one failed.
    pub again: bool,
    /// The file the target held when it was chosen (see [`already_delivered`]).
    pub replaces: Option<Replaced>,
}

/// Whether an attempt of a retried delivery finds it done already: from the second attempt
/// on, a target that holds the file is this delivery's — the failure was reported after the
/// server renamed, its reply lost with the connection — and uploading again would find the
/// delivery in its own way (`TargetExists`, the file failed though delivered). A resumed run
/// decides the same way ([`already_delivered`]).
pub async fn done_before(attempt: Attempt, ep: &dyn Endpoint, target: &RemotePath, size: u64) -> Result<bool, FileError> {
    // Seconds after the attempt that failed, the size tells (a content check is for the
    // long window a crash leaves).
    if attempt.again && already_delivered(ep, target, size, attempt.replaces, Expect::Size).await? {
        tracing::info!(endpoint = %ep.describe(), target = %target, "The target holds the file after a failed attempt: delivered.");
        return Ok(true);
    }
    Ok(false)
}

/// What an upload sends.
enum Body<'a> {
    /// A file of at most `stage::WHOLE_MAX`, in memory, with its hash when it was hashed as
    /// it was read (else hashed only if the server offers a checksum).
    Small(&'a [u8], Option<Sha256>),
    /// A file (and its path), read a few chunks ahead; hashed on the way when asked.
    File(std::fs::File, &'a Path, bool),
}

/// What was sent, for comparing with a checksum the server computes.
enum Sent<'a> {
    Hash(String),
    /// Sent from memory, hashed only if the server offers a checksum.
    Bytes(&'a [u8]),
    /// Not hashed on the way (most servers compute no checksum, and hashing a big file costs
    /// about as much CPU as sending it): hashed from this file if the server offers one.
    File(&'a Path),
}

impl Sent<'_> {
    /// The hex SHA-256 of what was sent (hashing the file now if it was not on the way).
    async fn hash(self) -> Result<String, FileError> {
        match self {
            Sent::Hash(h) => Ok(h),
            Sent::Bytes(data) => Ok(hex::encode(Sha256::digest(data))),
            Sent::File(path) => {
                pipe::sha256_of(path.to_path_buf()).await.map_err(|source| FileError::Staging { path: path.to_path_buf(), source })
            }
        }
    }
}

/// Writes an empty trigger file at `target` through `temp`: an older trigger (empty) is
/// replaced, a file with content never is.
pub async fn put_trigger(ep: &dyn Endpoint, folders: &Folders, temp: &RemotePath, target: &RemotePath) -> Result<(), FileError> {
    trigger_room(ep, target).await?;
    // An empty trigger: a stale temporary one holds the same (nothing); not worth a round trip.
    upload_from(ep, folders, Body::Small(&[], None), 0, temp, target, true, false).await.map(drop)
}

/// Whether a trigger may be written at `target`: nothing there, or an older (empty) trigger,
/// which it replaces (`Ok(true)`); never a file with content (`TriggerWouldReplace`). Only
/// looks: what [`put_trigger`] checks first, and what `wharf plan` shows.
pub async fn trigger_room(ep: &dyn Endpoint, target: &RemotePath) -> Result<bool, FileError> {
    match ep.stat(target).await? {
        Some(there) if there.size > 0 => {
            Err(FileError::TriggerWouldReplace { endpoint: ep.describe(), target: target.to_string(), size: there.size })
        }
        there => Ok(there.is_some()),
    }
}

/// Whether the trigger at `trigger` of the file delivered as `target`, written by a run that
/// crashed before recording it, needs no writing: it is there (empty, as written), or the
/// file is gone from the server too (the partner took the delivery at its trigger).
pub async fn trigger_written(ep: &dyn Endpoint, trigger: &RemotePath, target: &RemotePath) -> Result<bool, FileError> {
    if ep.stat(trigger).await?.is_some_and(|e| e.size == 0) {
        return Ok(true);
    }
    if ep.stat(target).await?.is_none() {
        tracing::info!(endpoint = %ep.describe(), target = %target, "The delivered file is gone from the server: taken by the partner at its trigger; the trigger is not written again.");
        return Ok(true);
    }
    Ok(false)
}

/// Removes an empty trigger left at `trigger` by an earlier delivery, before a file is
/// written in place beside it (`direct`). A trigger with content is somebody else's file:
/// left alone (writing the new trigger refuses to replace it).
pub async fn remove_old_trigger(ep: &dyn Endpoint, trigger: &RemotePath) -> Result<(), FileError> {
    if ep.stat(trigger).await?.is_some_and(|e| e.size == 0) {
        match ep.remove(trigger).await {
            Err(e) if e.kind != ErrorKind::NotFound => return Err(e.into()),
            _ => {
                tracing::info!(endpoint = %ep.describe(), trigger = %trigger, "Removed an earlier delivery's trigger before writing in place.")
            }
        }
    }
    Ok(())
}

/// The one upload path: `body` (`size` bytes) to `temp`, size verified, then renamed to
/// `target`. Missing folders are created first. Returns the hex SHA-256 of what was sent,
/// when it was hashed on the way.
#[allow(clippy::too_many_arguments)]
async fn upload_from(
    ep: &dyn Endpoint,
    folders: &Folders,
    body: Body<'_>,
    size: u64,
    temp: &RemotePath,
    target: &RemotePath,
    replace: bool,
    stale_temp: bool,
) -> Result<Option<String>, FileError> {
    let dir = target.parent();
    folders.ensure(ep, &dir).await?;
    if stale_temp && temp != target && !ep.capabilities().write_replaces {
        // A temporary file left by an earlier attempt (a crash, a refused removal) would take
        // this upload's name on a server storing uploads to taken names under others: the
        // check and the rename would then act on the stale file, and the upload stay behind
        // as `.NAME.part.1`. Best effort: a server that refuses the removal is told by the
        // write, and one that refuses removals altogether must not stop uploads. Only after
        // an earlier attempt (`stale_temp`): a first one costs no extra round trip.
        let _ = ep.remove(temp).await;
    }
    // A folder removed behind the run's back is made again by the retry.
    let forget = |e| {
        folders.forget(ep, &dir);
        FileError::from(temp_refused(e, temp, target))
    };
    let (sent, stored) = match body {
        Body::Small(data, hasher) => {
            check_read(temp, data.len() as u64, size)?;
            let stored = or_abandon(ep, temp, ep.write_small(temp, data).await.map_err(forget)).await?;
            halt::point("uploading");
            (hasher.map_or(Sent::Bytes(data), |h| Sent::Hash(hex::encode(h.finalize()))), stored)
        }
        Body::File(file, origin, hash) => {
            let out = ep.open_write(temp).await.map_err(forget)?;
            let hasher = or_abandon(ep, temp, send_file(out, file, origin, hash, size, temp).await).await?;
            (if hash { Sent::Hash(hex::encode(hasher.finalize())) } else { Sent::File(origin) }, None)
        }
    };
    let hash = match &sent {
        Sent::Hash(h) => Some(h.clone()),
        Sent::Bytes(_) | Sent::File(_) => None,
    };
    or_abandon(ep, temp, verify_and_rename(ep, size, stored, sent, temp, target, replace).await).await?;
    Ok(hash)
}

/// A write refused under the temporary name. The refusal alone does not say why, and two
/// causes answer the same (`permission denied` over SFTP, a `55x` over FTP): most often the
/// login may not create files in the folder at all (its permissions), which no name helps;
/// some servers take only some names (no hidden ones, no `.part`, known extensions only).
/// Both are said, the folder first: this is the create step, before any rename (a refused
/// rename has its own hint, in [`renamed`]).
fn temp_refused(mut e: EndpointError, temp: &RemotePath, target: &RemotePath) -> EndpointError {
    if e.kind == ErrorKind::PermissionDenied && e.op == Op::Write && temp != target {
        e.message = format!(
            "{}; the login may not create files in {} (check the folder's permissions for it, and that the server lets this \
             login write at all), or the server refuses such names (hidden ones, `.part`): if it takes `{}` there, set the sink's `temp_name` to a name it takes, or \
             `direct: true`",
            e.message,
            target.parent(),
            target.name()
        );
    }
    e
}

/// Streams `file` (`size` bytes, else [`FileError::Changed`]) into `out`, a few chunks read
/// ahead, hashed on the way when `hash`; returns the hasher.
async fn send_file(
    mut out: Box<dyn crate::endpoint::WriteStream>,
    file: std::fs::File,
    origin: &Path,
    hash: bool,
    size: u64,
    temp: &RemotePath,
) -> Result<Sha256, FileError> {
    let mut reader = HashReader::start(file, CHUNK, hash);
    let mut first = true;
    let mut read = 0u64;
    while let Some(chunk) = reader.next().await {
        read += chunk.len() as u64;
        // Not a byte more than the listing said: the temp file is abandoned.
        if read > size {
            break;
        }
        out.write_all(&chunk).await?;
        reader.give_back(chunk);
        if std::mem::take(&mut first) {
            halt::point("uploading");
        }
    }
    // Before `finish`: a read error must not end the upload as if the file ended.
    let hasher = reader.finish().await.map_err(|source| FileError::Staging { path: origin.to_path_buf(), source })?;
    check_read(temp, read, size)?;
    out.finish().await?;
    Ok(hasher)
}

/// After an upload that failed part-way, or whose check or rename failed, its temp file holds
/// part of the file, or all of it under a name it will not get: removed (best effort), so
/// that it neither keeps a full disk full nor stays behind on the partner's server when the
/// file is never tried again. After transient trouble too: a server may say no more than
/// that (vsftpd resets the data connection and answers `451` when its disk is full), and a
/// temp file left for the next attempt would keep that disk full until then; the removal
/// takes the new connection the next attempt needs anyway. Only an upload for which no
/// connection could be made at all ([`EndpointError::unconnected`]) wrote nothing, and a
/// removal would only wait for one again (a server that is down: one more connect timeout).
///
/// A removal the server refuses too (a login that may write but not delete) is said in the
/// error: the partner's folder keeps that temporary file, and only the partner can remove it.
async fn or_abandon<T>(ep: &dyn Endpoint, temp: &RemotePath, result: Result<T, FileError>) -> Result<T, FileError> {
    let mut result = result;
    if let Err(e) = &mut result
        && !matches!(e, FileError::Endpoint(x) if x.unconnected)
        && let Err(r) = ep.remove(temp).await
        && r.kind != ErrorKind::NotFound
        // A server refusing every change (OpenSSH's read-only `sftp-server -R`) refuses to
        // remove a file it never let the upload make: nothing is left there.
        && !matches!(ep.stat(temp).await, Ok(None))
        && let FileError::Endpoint(e) = e
    {
        e.message = format!("{}; the temporary file {temp} is left there: removing it failed too ({})", e.message, r.message);
    }
    result
}

/// The staged file's length against the size the upload was asked to send.
fn check_read(temp: &RemotePath, read: u64, size: u64) -> Result<(), FileError> {
    if read == size {
        return Ok(());
    }
    Err(FileError::Changed(format!(
        "the file to upload as {temp} has {}{read} bytes, but {size} were expected; it changed since it was listed",
        if read > size { "at least " } else { "" }
    )))
}

/// Checks what `temp` holds (its size — `stored`, when the write reported it — and the
/// server's SHA-256 against `sent` where both are known), then renames it to `target`.
async fn verify_and_rename(
    ep: &dyn Endpoint,
    size: u64,
    stored: Option<u64>,
    sent: Sent<'_>,
    temp: &RemotePath,
    target: &RemotePath,
    replace: bool,
) -> Result<(), FileError> {
    let actual = match stored {
        Some(n) => n,
        None => ep.size(temp).await?.unwrap_or(0),
    };
    if actual != size {
        let _ = ep.remove(temp).await;
        return Err(FileError::SizeMismatch { endpoint: ep.describe(), target: temp.to_string(), expected: size, actual });
    }
    // A checksum, where the server offers one (most do not; the size is always checked).
    if let Some(remote) = ep.sha256(temp).await?
        && let sent = sent.hash().await?
        && remote != sent
    {
        let _ = ep.remove(temp).await;
        return Err(FileError::ChecksumMismatch { endpoint: ep.describe(), target: temp.to_string(), sent, remote });
    }
    halt::point("uploaded");
    if temp == target {
        // Written straight under the final name (`direct`).
        return Ok(());
    }
    match ep.rename(temp, target, replace).await {
        Ok(()) => Ok(()),
        Err(e) => {
            if e.kind == ErrorKind::AlreadyExists {
                let _ = ep.remove(temp).await;
            }
            Err(renamed(ep, target, replace, e))
        }
    }
}

/// The error of a rename onto `target` that failed.
fn renamed(ep: &dyn Endpoint, target: &RemotePath, replace: bool, e: crate::endpoint::EndpointError) -> FileError {
    if e.kind == ErrorKind::AlreadyExists && !replace {
        // Someone created the target between our check and the rename.
        return FileError::TargetExists {
            endpoint: ep.describe(),
            target: target.to_string(),
            why: "created by somebody else while the file was uploaded",
        };
    }
    // The endpoint names the temporary file; the name it was to take is what the user knows.
    let mut e = e;
    if e.path.as_ref() != Some(target) && !e.message.contains(&target.to_string()) {
        e.message = format!("{} (renaming it to {target})", e.message);
    }
    // Nothing had the name (else `AlreadyExists`), and the folder took the temporary file: the
    // server may refuse renames altogether, which the refusal alone does not say.
    if e.kind == ErrorKind::PermissionDenied && !replace {
        e.message = format!("{}; if the server refuses renames, `direct: true` on the sink writes the final name directly", e.message);
    }
    e.into()
}

#[cfg(test)]
pub(super) mod tests {
    /// A file streamed in chunks, not moved whole.
    const BIG: usize = super::super::stage::WHOLE_MAX as usize + 2 * CHUNK + 1;
    use super::*;
    use crate::endpoint::local::LocalEndpoint;
    use crate::endpoint::{Capabilities, DynEndpoint, EndpointError, Entry, ReadStream, WriteStream};
    use async_trait::async_trait;
    use std::sync::Arc;

    /// A local folder whose "server" reports a fixed SHA-256 (as an FTP `HASH` would).
    #[derive(Debug)]
    /// A local folder that computes a checksum (`sha256`) or refuses every stat.
    pub(in crate::engine) struct Tweaked {
        ep: LocalEndpoint,
        sha256: Option<String>,
        stat_denied: bool,
        /// Every read is refused (permission denied), as a server does for a file its login
        /// may list but not read: root, running the tests, reads any local file.
        reads_denied: bool,
        /// Every write stores its first bytes, then fails as a dropped connection would.
        writes_break: bool,
        /// Every write fails as a server that cannot be reached does: no connection made.
        unreachable: bool,
        /// The next rename is made, then reported failed (its reply lost with the connection).
        rename_lies: std::sync::atomic::AtomicBool,
    }

    impl Tweaked {
        /// `ep` as it is: no tweak.
        fn plain(ep: LocalEndpoint) -> Tweaked {
            Tweaked {
                ep,
                sha256: None,
                stat_denied: false,
                reads_denied: false,
                writes_break: false,
                unreachable: false,
                rename_lies: Default::default(),
            }
        }

        /// `ep`, every read of which is refused for good.
        pub(in crate::engine) fn denying_reads(ep: LocalEndpoint) -> Tweaked {
            Tweaked { reads_denied: true, ..Tweaked::plain(ep) }
        }

        fn hashing(ep: LocalEndpoint, sha256: String) -> Tweaked {
            Tweaked { sha256: Some(sha256), ..Tweaked::plain(ep) }
        }
    }

    /// A write that stores what it is given up to 2 bytes, then fails transiently.
    struct Breaking(Box<dyn WriteStream>);

    #[async_trait]
    impl WriteStream for Breaking {
        async fn write_all(&mut self, buf: &[u8]) -> Result<(), EndpointError> {
            self.0.write_all(&buf[..buf.len().min(2)]).await?;
            Err(EndpointError::new(ErrorKind::Transient, crate::endpoint::Op::Write, "test", None, "connection reset"))
        }
        async fn finish(self: Box<Self>) -> Result<(), EndpointError> {
            self.0.finish().await
        }
    }

    #[async_trait]
    impl Endpoint for Tweaked {
        fn describe(&self) -> String {
            self.ep.describe()
        }
        fn capabilities(&self) -> Capabilities {
            self.ep.capabilities()
        }
        async fn list(&self, d: &RemotePath) -> Result<crate::endpoint::Listing, EndpointError> {
            self.ep.list(d).await
        }
        async fn stat(&self, p: &RemotePath) -> Result<Option<Entry>, EndpointError> {
            if self.stat_denied {
                return Err(EndpointError::new(ErrorKind::PermissionDenied, crate::endpoint::Op::Stat, self.describe(), Some(p), "denied"));
            }
            self.ep.stat(p).await
        }
        async fn open_read(&self, p: &RemotePath, o: u64) -> Result<Box<dyn ReadStream>, EndpointError> {
            if self.reads_denied {
                return Err(EndpointError::new(ErrorKind::PermissionDenied, crate::endpoint::Op::Read, self.describe(), Some(p), "denied"));
            }
            self.ep.open_read(p, o).await
        }
        async fn open_write(&self, p: &RemotePath) -> Result<Box<dyn WriteStream>, EndpointError> {
            if self.unreachable {
                let e = EndpointError::new(ErrorKind::Transient, crate::endpoint::Op::Write, "test", Some(p), "connection refused");
                return Err(EndpointError { unconnected: true, ..e });
            }
            let out = self.ep.open_write(p).await?;
            Ok(if self.writes_break { Box::new(Breaking(out)) } else { out })
        }
        async fn rename(&self, f: &RemotePath, t: &RemotePath, r: bool) -> Result<(), EndpointError> {
            self.ep.rename(f, t, r).await?;
            if self.rename_lies.swap(false, std::sync::atomic::Ordering::Relaxed) {
                return Err(EndpointError::new(ErrorKind::Transient, crate::endpoint::Op::Rename, "test", Some(t), "connection reset"));
            }
            Ok(())
        }
        async fn remove(&self, p: &RemotePath) -> Result<(), EndpointError> {
            self.ep.remove(p).await
        }
        async fn create_dir_all(&self, d: &RemotePath) -> Result<(), EndpointError> {
            self.ep.create_dir_all(d).await
        }
        async fn remove_dir(&self, d: &RemotePath) -> Result<(), EndpointError> {
            self.ep.remove_dir(d).await
        }
        async fn rename_plain(&self, f: &RemotePath, t: &RemotePath) -> Result<(), EndpointError> {
            self.ep.rename_plain(f, t).await
        }
        async fn facts(&self) -> Result<crate::endpoint::ServerFacts, EndpointError> {
            self.ep.facts().await
        }
        async fn sha256(&self, _: &RemotePath) -> Result<Option<String>, EndpointError> {
            Ok(self.sha256.clone())
        }
    }

    /// An upload that breaks off (transient trouble: all some servers say when their disk is
    /// full) leaves no partial file: not under the final name (a partner would take it for
    /// the whole file), nor under the temporary one (it would keep a full disk full until
    /// the next attempt).
    #[tokio::test]
    async fn a_broken_upload_leaves_no_partial_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"hello").unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = Tweaked { writes_break: true, ..Tweaked::plain(LocalEndpoint::new(dir.path().join("sink"))) };
        for (temp, target) in [("/in/a", "/in/a"), ("/in/.b.part", "/in/b")] {
            let e =
                upload(&ep, &Folders::default(), &Budget::default(), &staged, None, 5, &p(temp), &p(target), false, false, false, false)
                    .await
                    .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
        }
        assert!(!dir.path().join("sink/in/a").exists(), "a partial file under the final name");
        assert!(!dir.path().join("sink/in/.b.part").exists(), "a partial file under the temporary name");
        assert!(!dir.path().join("sink/in/b").exists());
    }

    /// An upload for which no connection could be made wrote nothing: nothing is removed (a
    /// removal would wait for a connection to a server that is down once more), neither a
    /// file under the final name (a direct upload) nor under the temporary one.
    #[tokio::test]
    async fn an_upload_that_never_connected_removes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, vec![7u8; 100 * 1024]).unwrap();
        std::fs::create_dir_all(dir.path().join("sink/in")).unwrap();
        std::fs::write(dir.path().join("sink/in/a"), b"the partner's").unwrap();
        std::fs::write(dir.path().join("sink/in/.b.part"), b"an earlier attempt's").unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = Tweaked { unreachable: true, ..Tweaked::plain(LocalEndpoint::new(dir.path().join("sink"))) };
        for (temp, target) in [("/in/a", "/in/a"), ("/in/.b.part", "/in/b")] {
            let e = upload(
                &ep,
                &Folders::default(),
                &Budget::default(),
                &staged,
                None,
                100 * 1024,
                &p(temp),
                &p(target),
                true,
                false,
                false,
                false,
            )
            .await
            .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Transient, "{e}");
        }
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"the partner's");
        assert!(dir.path().join("sink/in/.b.part").exists());
    }

    /// A rename made on the server but reported failed (its reply lost): the retry finds the
    /// target holding the file and counts it delivered, instead of uploading again and
    /// failing on its own delivery (`TargetExists`).
    #[tokio::test]
    async fn a_retry_after_a_rename_that_was_made_finds_the_delivery() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, vec![7u8; 100 * 1024]).unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = Tweaked { rename_lies: true.into(), ..Tweaked::plain(LocalEndpoint::new(dir.path().join("sink"))) };
        let policy = crate::config::flow::Retry { attempts: 3, backoff: std::time::Duration::from_millis(1), give_up_after: 0 };
        let tried = std::sync::atomic::AtomicBool::new(false);
        let (folders, budget) = (Folders::default(), Budget::default());
        let (temp, target) = (p("/in/.b.part"), p("/in/b"));
        let (ep, folders, budget, staged, temp, target) = (&ep, &folders, &budget, &staged, &temp, &target);
        crate::engine::retry::retry_as("f", policy, "upload", || {
            let attempt = Attempt { again: tried.swap(true, std::sync::atomic::Ordering::Relaxed), replaces: None };
            async move {
                if done_before(attempt, ep, target, 100 * 1024).await? {
                    return Ok(());
                }
                upload(ep, folders, budget, staged, None, 100 * 1024, temp, target, false, false, false, false).await.map(drop)
            }
        })
        .await
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/b")).unwrap().len(), 100 * 1024);
        assert!(!dir.path().join("sink/in/.b.part").exists());
    }

    #[tokio::test]
    async fn a_server_checksum_is_compared_with_what_was_sent() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"hello").unwrap();
        let good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824".to_string();
        let ep: DynEndpoint = Arc::new(Tweaked::hashing(LocalEndpoint::new(dir.path().join("sink")), good));
        put(&*ep, &Folders::default(), &staged, "a").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"hello");

        let ep: DynEndpoint = Arc::new(Tweaked::hashing(LocalEndpoint::new(dir.path().join("sink")), "0".repeat(64)));
        let e = put(&*ep, &Folders::default(), &staged, "b").await.unwrap_err();
        assert!(matches!(e, FileError::ChecksumMismatch { .. }), "{e}");
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert!(!dir.path().join("sink/in/.b.part").exists() && !dir.path().join("sink/in/b").exists());
    }

    #[tokio::test]
    async fn a_file_read_whole_for_its_upload_waits_until_its_bytes_fit_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"hello").unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = LocalEndpoint::new(dir.path().join("sink"));
        let (folders, budget) = (Folders::default(), Budget::new(1 << 20));
        let spent = budget.hold(1 << 20).await;
        let (temp, target) = (p("/in/.a.part"), p("/in/a"));
        let up = upload(&ep, &folders, &budget, &staged, None, 5, &temp, &target, false, false, false, false);
        tokio::pin!(up);
        assert!(tokio::time::timeout(std::time::Duration::from_millis(100), &mut up).await.is_err(), "no room: it waits");
        assert!(!dir.path().join("sink/in/a").exists());
        drop(spent);
        up.await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"hello");
        let _all = tokio::time::timeout(std::time::Duration::from_millis(100), budget.hold(1 << 20)).await.expect("given back when done");
    }

    #[tokio::test]
    async fn a_folder_is_made_once_per_run_and_again_when_it_went_away() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        std::fs::write(&staged, b"hello").unwrap();
        let ep = LocalEndpoint::new(dir.path().join("sink"));
        let folders = Folders::default();
        put(&ep, &folders, &staged, "a").await.unwrap();
        // Removed behind the run's back: the next upload fails once, and its retry makes it again.
        std::fs::remove_dir_all(dir.path().join("sink/in")).unwrap();
        assert!(put(&ep, &folders, &staged, "b").await.is_err());
        put(&ep, &folders, &staged, "b").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/b")).unwrap(), b"hello");
    }

    #[tokio::test]
    async fn overwrite_notes_what_it_replaces_and_a_resumed_run_does_not_take_that_for_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let ep = LocalEndpoint::new(dir.path());
        let p = |s: &str| RemotePath::parse(s).unwrap();
        assert_eq!(choose_target(&ep, &p("/"), "a", IfExists::Overwrite).await.unwrap(), Target::Upload(p("/a"), None));
        std::fs::write(dir.path().join("a"), b"old").unwrap();
        let Target::Upload(t, Some(replaces)) = choose_target(&ep, &p("/"), "a", IfExists::Overwrite).await.unwrap() else {
            panic!("the file there is noted")
        };
        assert_eq!(replaces.size, 3);
        // Crashed before the rename: the old file, of the same size, is still there.
        assert!(!already_delivered(&ep, &t, 3, Some(replaces), Expect::Size).await.unwrap());
        // Without times to tell them apart, same size means "upload again" too.
        assert!(!already_delivered(&ep, &t, 3, Some(Replaced { mtime: None, ..replaces }), Expect::Size).await.unwrap());
        // The rename happened: another time (or another size) is the new file.
        assert!(
            already_delivered(&ep, &t, 3, Some(Replaced { mtime: replaces.mtime.map(|m| m - 1000), ..replaces }), Expect::Size)
                .await
                .unwrap()
        );
        std::fs::write(dir.path().join("a"), b"new!").unwrap();
        assert!(already_delivered(&ep, &t, 4, Some(replaces), Expect::Size).await.unwrap());
        assert!(!already_delivered(&ep, &t, 3, None, Expect::Size).await.unwrap(), "a file of another size is not the delivery");
        // An upload-only folder (a stat is refused) still takes an overwrite.
        let no_look = Tweaked { stat_denied: true, ..Tweaked::plain(ep) };
        assert_eq!(choose_target(&no_look, &p("/"), "a", IfExists::Overwrite).await.unwrap(), Target::Upload(p("/a"), None));
        assert!(choose_target(&no_look, &p("/"), "a", IfExists::Fail).await.is_err());
    }

    #[tokio::test]
    async fn a_big_file_not_hashed_on_the_way_is_hashed_when_the_server_offers_a_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged");
        let data: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
        std::fs::write(&staged, &data).unwrap();
        let size = data.len() as u64;
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let good = hex::encode(Sha256::digest(&data));
        let ep = Tweaked::hashing(LocalEndpoint::new(dir.path().join("sink")), good);
        upload(
            &ep,
            &Folders::default(),
            &Budget::default(),
            &staged,
            None,
            size,
            &p("/in/.a.part"),
            &p("/in/a"),
            false,
            false,
            false,
            false,
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), data);

        let ep = Tweaked::hashing(LocalEndpoint::new(dir.path().join("sink")), "0".repeat(64));
        let e = upload(
            &ep,
            &Folders::default(),
            &Budget::default(),
            &staged,
            None,
            size,
            &p("/in/.b.part"),
            &p("/in/b"),
            false,
            false,
            false,
            false,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, FileError::ChecksumMismatch { .. }), "{e}");
    }

    #[tokio::test]
    async fn asked_to_hash_an_upload_returns_the_hash_of_what_it_sent() {
        let dir = tempfile::tempdir().unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = LocalEndpoint::new(dir.path().join("sink"));
        for (name, len) in [("small", 5), ("big", BIG)] {
            let staged = dir.path().join(name);
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            std::fs::write(&staged, &data).unwrap();
            let (temp, target) = (p(&format!("/in/.{name}.part")), p(&format!("/in/{name}")));
            let got =
                upload(&ep, &Folders::default(), &Budget::default(), &staged, None, len as u64, &temp, &target, false, false, true, false)
                    .await
                    .unwrap();
            assert_eq!(got.sha256, Some(hex::encode(Sha256::digest(&data))), "{name}");
            assert_eq!(std::fs::read(dir.path().join("sink/in").join(name)).unwrap(), data);
        }
    }

    #[tokio::test]
    async fn a_file_of_another_length_than_expected_is_not_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = LocalEndpoint::new(dir.path().join("sink"));
        // Grown or shrunk since it was listed (a linked local source): small and big files.
        for (name, len, expected) in [("grown", 6, 5), ("shrunk", 4, 5), ("big", BIG, BIG as u64 - 1)] {
            let staged = dir.path().join(name);
            std::fs::write(&staged, vec![7u8; len]).unwrap();
            let (temp, target) = (p(&format!("/in/.{name}.part")), p(&format!("/in/{name}")));
            let e =
                upload(&ep, &Folders::default(), &Budget::default(), &staged, None, expected, &temp, &target, false, false, true, false)
                    .await
                    .unwrap_err();
            assert!(matches!(e, FileError::Changed(_)), "{name}: {e}");
            assert!(!dir.path().join("sink/in").join(name).exists(), "{name}");
            // The part already sent is not left behind under the temp name.
            assert!(!dir.path().join(format!("sink/in/.{name}.part")).exists(), "{name}");
        }
    }

    #[tokio::test]
    async fn a_local_sink_takes_the_staged_file_straight_under_its_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let ep = LocalEndpoint::new(dir.path().join("sink"));
        let staged = dir.path().join("staged");
        let put = |data: &[u8]| std::fs::write(&staged, data).unwrap();
        let up = |target: &'static str, size: u64, replace: bool| {
            let (ep, staged) = (&ep, &staged);
            async move {
                upload(
                    ep,
                    &Folders::default(),
                    &Budget::default(),
                    staged,
                    None,
                    size,
                    &p("/in/.t.part"),
                    &p(target),
                    replace,
                    true,
                    false,
                    false,
                )
                .await
            }
        };
        put(b"hello");
        assert_eq!(up("/in/a", 5, false).await.unwrap(), Uploaded { sha256: None, took: Some(dir.path().join("sink/in")) });
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"hello");
        assert!(!staged.exists(), "renamed, not copied");
        assert_eq!(names(&dir.path().join("sink/in")), ["a"], "no temporary name");
        // No replacing without `overwrite`: the staged file stays for the next attempt.
        put(b"world");
        assert!(matches!(up("/in/a", 5, false).await.unwrap_err(), FileError::TargetExists { .. }));
        assert!(staged.exists());
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"hello");
        up("/in/a", 5, true).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"world");
        // Taken by an earlier attempt: the target's size tells whether it holds the file.
        up("/in/a", 5, true).await.unwrap();
        assert!(matches!(up("/in/a", 6, true).await.unwrap_err(), FileError::SizeMismatch { .. }));
    }

    #[tokio::test]
    async fn a_file_held_in_memory_is_written_once_straight_into_place() {
        let dir = tempfile::tempdir().unwrap();
        let ep = LocalEndpoint::new(dir.path().join("sink"));
        let staged = dir.path().join("staging/x.part");
        // Taken by a local sink: written under the temporary name, fsynced, renamed.
        let got = held(&ep, &staged, b"hello", 5, "a", true).await;
        assert_eq!(got.unwrap(), Uploaded { sha256: None, took: Some(dir.path().join("sink/in")) });
        assert_eq!(std::fs::read(dir.path().join("sink/in/a")).unwrap(), b"hello");
        assert!(!staged.exists());
        assert_eq!(names(&dir.path().join("sink/in")), ["a"], "no temporary name");
        // Sent to a sink that does not take it: the bytes, through the temporary name. The
        // staging file is never made.
        held(&ep, &staged, b"world", 5, "b", false).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("sink/in/b")).unwrap(), b"world");
        assert!(!staged.exists());
        // A server's checksum is compared with the bytes sent.
        let ep = Tweaked::hashing(LocalEndpoint::new(dir.path().join("sink")), "0".repeat(64));
        let e = held(&ep, &staged, b"hello", 5, "c", false).await;
        assert!(matches!(e.unwrap_err(), FileError::ChecksumMismatch { .. }));
        // Bytes of another length than expected are not sent.
        let e = held(&ep, &staged, b"hello!", 5, "d", false).await;
        assert!(matches!(e.unwrap_err(), FileError::Changed(_)));
        assert!(!dir.path().join("sink/in/d").exists());
    }

    /// [`upload`] of `data`, held in memory, to `/in/NAME` through `/in/.NAME.part`.
    /// Uploads the 5-byte `staged` file as `/in/NAME` (through `/in/.NAME.part`).
    async fn put(ep: &dyn Endpoint, folders: &Folders, staged: &Path, name: &str) -> Result<Uploaded, FileError> {
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let (temp, target) = (p(&format!("/in/.{name}.part")), p(&format!("/in/{name}")));
        upload(ep, folders, &Budget::default(), staged, None, 5, &temp, &target, false, false, false, false).await
    }

    async fn held(ep: &dyn Endpoint, staged: &Path, data: &[u8], size: u64, name: &str, last_use: bool) -> Result<Uploaded, FileError> {
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let (temp, target) = (p(&format!("/in/.{name}.part")), p(&format!("/in/{name}")));
        upload(ep, &Folders::default(), &Budget::default(), staged, Some(data), size, &temp, &target, false, last_use, false, false).await
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}
