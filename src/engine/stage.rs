//! Staging: download a source file into a local file, resumably, fsynced and hashed.
//!
//! The staged file is both the copy every sink is fed from (the source is read once, however
//! many sinks) and the resume point: a download interrupted at byte N continues at N on the
//! next attempt or run. This module owns the staging file layout and the read loop.
//!
//! A source that is a local folder on the staging folder's file system is staged by a hard
//! link instead ([`Endpoint::link_local`]): no copy, no fsync (the data is as durable as the
//! source file itself, which is not removed before its delivery is recorded), one read to
//! hash it — or none, when nothing needs the hash before the upload, which hashes what it
//! reads anyway ([`Hash::Deferred`]). Such a staging file shares the source's inode, so it is
//! never written: a staging file with more than one link is removed, never resumed or
//! truncated.
//!
//! A file of at most [`INLINE_MAX`] that nothing needs on disk (no steps) is not staged at
//! all: its bytes are held in memory until it is delivered ([`Staged::data`]).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::endpoint::{Endpoint, Entry, EntryKind, ErrorKind, Op, ReadStream, RemotePath, read_full};

use super::budget::Budget;
use super::error::FileError;
use super::halt;
use super::pipe::{self, HashWriter};

/// Size of each read from the source (and of the one reusable buffer).
pub const CHUNK: usize = 256 * 1024;

/// The largest file moved in one piece. 1 MiB: no more memory per file in flight than a
/// streamed file's chunks take (up to five of 256 KiB), and for files of this size the
/// hand-over of chunks to a blocking thread (a thread wake-up per chunk) and the durable
/// record that makes a download resumable cost more than downloading again after a crash.
/// On the benchmark's FTP pull of 200 × 1 MiB: voluntary context switches 7,900 → 6,100,
/// about 10 % less CPU.
pub const WHOLE_MAX: u64 = 1024 * 1024;

/// The largest file kept in memory from its download to its delivery when nothing needs it
/// on disk (no steps): never written to a staging file (a local sink writes it once, straight
/// into place: [`Endpoint::adopt`] with its bytes; a server is sent the bytes), so a pulled
/// or pushed file takes one trip to a blocking thread fewer, and a pulled one no staging
/// file to create and remove. Hashed on the runtime's thread, hence small: 64 KiB hash in
/// about 40 µs. Like every file of at most [`WHOLE_MAX`], never resumed: a crash before its
/// delivery is recorded downloads it again.
pub const INLINE_MAX: u64 = 64 * 1024;

/// A file of at most [`INLINE_MAX`]: held in memory instead of staged, when nothing needs it
/// on disk.
pub fn is_inline(size: u64) -> bool {
    size <= INLINE_MAX
}

/// A file of at most [`WHOLE_MAX`]: moved in one piece (read, written and hashed in one
/// trip to a blocking thread) and never resumed.
pub fn is_small(size: u64) -> bool {
    size <= WHOLE_MAX
}

/// A completely staged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub size: u64,
    /// `None` only for a linked local source staged with [`Hash::Deferred`].
    pub sha256: Option<String>,
    /// The file's bytes, when it is held in memory instead of staged on disk (see
    /// [`INLINE_MAX`]): the staging file does not exist.
    pub data: Option<Vec<u8>>,
    /// The file read, as the endpoint described the open handle (or the link): `None` where
    /// it cannot say (FTP over TLS, PASV or active mode: `endpoint::ftp::opened`), or nothing
    /// was read now (all of it staged by an earlier attempt).
    pub opened: Option<Entry>,
}

/// Whether staging must know the file's SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// Hash now (content identity, steps, a local sink that takes the file by renaming it).
    Now,
    /// A staging file linked to a local source is neither read nor hashed here: the upload
    /// reads it anyway and hashes on the way (one read of a 1 GiB file instead of two, the
    /// hash beside the network instead of before it). Its length is checked by that read.
    Deferred,
}

/// The staging file for `path` of `flow` under `dir`: stable across runs, so a crashed
/// download is found again; named by a hash so any source name maps to a safe local name.
pub fn staging_path(dir: &Path, flow: &str, path: &RemotePath) -> PathBuf {
    let h = hex::encode(Sha256::digest(path.as_str().as_bytes()));
    staging_folder(dir, flow).join(format!("{}.part", &h[..32]))
}

/// Removes what `flow`'s staging folder holds for files the ledger no longer has in flight
/// (delivered, quarantined, failed for good, or unknown), with the files the steps wrote
/// beside them. A run killed between recording a file done and removing its staging copy
/// leaves one, and nothing would ever read or remove it. Called at the start of a run, when
/// no other run of the flow can be under way. Returns how many files were removed.
pub async fn sweep(dir: &Path, flow: &str, ledger: &crate::ledger::Ledger) -> Result<usize, crate::ledger::LedgerError> {
    let folder = staging_folder(dir, flow);
    let names: Vec<String> = match std::fs::read_dir(&folder) {
        Ok(rd) => rd.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect(),
        Err(_) => return Ok(0),
    };
    if names.is_empty() {
        return Ok(0);
    }
    let stem = |p: &Path| p.file_name().and_then(|n| n.to_str()).and_then(|n| n.split('.').next()).map(str::to_string);
    let live: std::collections::BTreeSet<String> = ledger
        .in_flight_files(flow)?
        .into_iter()
        .filter_map(|r| RemotePath::parse(&r.path).ok())
        .filter_map(|p| stem(&staging_path(dir, flow, &p)))
        .collect();
    let orphans: Vec<PathBuf> =
        names.iter().filter(|n| n.split('.').next().is_some_and(|s| !live.contains(s))).map(|n| folder.join(n)).collect();
    let removed = orphans.len();
    if removed > 0 {
        tracing::info!(flow = %flow, files = removed, folder = %folder.display(), "Removing staging files no file in flight needs (left by a run that was killed).");
        discard_files(orphans).await;
    }
    Ok(removed)
}

/// Removes every file in `flow`'s staging folder, after the state folder was found full: the
/// space they take is needed more than the downloads they would spare (the next run downloads
/// the files in flight again). Returns how many were removed.
pub async fn clear(dir: &Path, flow: &str) -> usize {
    let folder = staging_folder(dir, flow);
    let files: Vec<PathBuf> = match std::fs::read_dir(&folder) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(_) => return 0,
    };
    if !files.is_empty() {
        tracing::warn!(flow = %flow, files = files.len(), folder = %folder.display(), "The state folder is full: removing the flow's staging files.");
    }
    let removed = files.len();
    discard_files(files).await;
    removed
}

/// The folder under `dir` that holds the staging files of `flow`.
pub fn staging_folder(dir: &Path, flow: &str) -> PathBuf {
    dir.join(flow)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |source| FileError::Staging { path: path.to_path_buf(), source }
}

/// Downloads `path` (expected to be `size` bytes) from `ep` into `file`, continuing after
/// whatever a previous attempt left there when `resume` (the caller knows that what is there
/// belongs to this version of the file), else starting from nothing. With `in_memory` (the
/// caller can take the bytes instead of a file), a file of at most [`INLINE_MAX`] is read
/// into [`Staged::data`] and `file` is not written. A file read into memory whole takes its
/// bytes from `budget` until they are written.
#[allow(clippy::too_many_arguments)]
pub async fn stage(
    ep: &dyn Endpoint,
    path: &RemotePath,
    size: u64,
    file: &Path,
    resume: bool,
    hash: Hash,
    in_memory: bool,
    budget: &Budget,
) -> Result<Staged, FileError> {
    // One place for what every refusal below says: a block, its `return`s included.
    async {
        if !resume && in_memory && is_inline(size) {
            return held(ep, path, size, budget).await;
        }
        if !resume && is_small(size) && !ep.capabilities().local_files {
            // Small, from a server, from nothing: the folder and any leftover are dealt with in
            // the same trip as the write.
            return stage_small(ep, path, size, file, budget).await;
        }
        // A local source, linked in one trip when nothing is in the way (the usual case: the
        // staging folder is there, no leftover); else the folder and any leftover are dealt
        // with below and the link tried again.
        if ep.capabilities().local_files
            && let Some(opened) = ep.link_local(path, file).await?
        {
            return linked(path, size, file, hash, opened).await;
        }
        // The folder, and what an earlier attempt left, in one trip to a blocking thread.
        let f = file.to_path_buf();
        let existing = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
            if let Some(dir) = f.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::metadata(&f) {
                // The source's own inode (a linked staging): never written to; linked again below.
                // Or another version's leftover.
                Ok(m) if m.nlink() > 1 || !resume => std::fs::remove_file(&f).map(|()| 0),
                Ok(m) => Ok(m.len()),
                Err(_) => Ok(0),
            }
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(io(file))?;
        if existing == 0
            && let Some(opened) = ep.link_local(path, file).await?
        {
            return linked(path, size, file, hash, opened).await;
        }
        if existing == 0 && is_small(size) {
            return stage_small(ep, path, size, file, budget).await;
        }
        let mut hasher = Sha256::new();
        let mut offset = 0;
        let mut resumed = None;
        if existing > 0 && existing <= size {
            // Resume: hash what is already there, then append — if the source still holds those
            // bytes where the download stopped (a version rewritten with the same size and time
            // would otherwise be spliced onto the old one's start).
            (offset, hasher) = pipe::hash_file(file.to_path_buf()).await.map_err(io(file))?;
            match same_tail(ep, path, size, file, offset).await? {
                Some(src) => {
                    tracing::info!(path = %path, offset, "Resuming download.");
                    resumed = Some(src);
                }
                None => {
                    tracing::info!(path = %path, offset, "The source no longer holds what was downloaded before the interruption; downloading it again.");
                    (offset, hasher) = (0, Sha256::new());
                }
            }
        }
        let mut out = tokio::fs::OpenOptions::new().create(true).write(true).truncate(offset == 0).open(file).await.map_err(io(file))?;
        if offset > 0 {
            out.set_len(offset).await.map_err(io(file))?;
            tokio::io::AsyncSeekExt::seek(&mut out, std::io::SeekFrom::Start(offset)).await.map_err(io(file))?;
        }
        // Hashing and writing happen on a blocking thread while the next chunk downloads.
        let mut writer = HashWriter::start(out.into_std().await, hasher, CHUNK);
        let mut opened = None;
        if offset < size {
            let mut src = match resumed {
                Some(src) => src,
                None => open_at(ep, path, offset, size).await?,
            };
            opened = src.opened().cloned();
            let mut first = true;
            loop {
                // Each chunk filled before it is handed over: network reads may bring a few KiB.
                let mut buf = writer.buffer();
                let n = read_full(&mut *src, &mut buf).await?;
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                writer.write(buf).await.map_err(io(file))?;
                offset += n as u64;
                if offset > size {
                    check_length(path, offset, size)?;
                }
                if first {
                    first = false;
                    // A unit test's hook acts here too (`halt::hook`).
                    if cfg!(test) || std::env::var_os("WHARF_TEST_HALT_AT").is_some() {
                        writer.sync().await.map_err(io(file))?;
                        halt::point("staging");
                    }
                }
            }
        }
        let hasher = writer.finish().await.map_err(io(file))?;
        check_length(path, offset, size)?;
        not_grown(ep, path, size, opened.as_ref()).await?;
        Ok(Staged { size, sha256: Some(hex::encode(hasher.finalize())), data: None, opened })
    }
    .await
    .map_err(|e| read_refused(e, path))
}

/// A read of the file refused for the login's rights. The folder listed it, so it is this
/// file's permissions that keep it from being taken (a partner's upload left readable to its
/// owner only until it is done, most often): [`FileError::Unreadable`], which the lifecycle
/// takes as not ready yet. Decided by the error's kind, operation and path: a refusal of
/// another file (none is read here) stays what it is.
fn read_refused(e: FileError, path: &RemotePath) -> FileError {
    match e {
        FileError::Endpoint(e) if e.kind == ErrorKind::PermissionDenied && e.op == Op::Read && e.path.as_ref() == Some(path) => {
            FileError::Unreadable(e)
        }
        e => e,
    }
}

/// `path` (listed at `size` bytes) opened to be read from `offset`. A download resumed
/// (after a dropped connection, in the same run) past the end of a file the partner cut
/// short meanwhile is refused by some servers as a protocol error (pure-ftpd: `554 Restart
/// offset … is too large for file size`), which would fail the file for good: the file is
/// looked at to tell, and one of another size than listed has changed, as a download that
/// ends early says ([`check_length`]). Another refusal stands as it is.
async fn open_at(ep: &dyn Endpoint, path: &RemotePath, offset: u64, size: u64) -> Result<Box<dyn ReadStream>, FileError> {
    match ep.open_read(path, offset).await {
        Ok(src) => Ok(src),
        Err(e) if offset > 0 && e.kind != ErrorKind::Transient => match ep.stat(path).await {
            Ok(Some(now)) if now.kind == EntryKind::File && now.size != size => {
                check_length(path, now.size, size)?;
                Err(e.into())
            }
            _ => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// Whether `path`, downloaded whole at `size` bytes, is still the file the download read:
/// no longer, and (when the download's stream said which file it opened: `opened`) modified
/// at the same time. Some servers send only the bytes a file had when the download opened it
/// (vsftpd's `RETR`): the partner appending to it meanwhile ends the download where it began,
/// at the listed size, whole by every count the stream gives; delivered, it would be the start
/// of the file passed off as all of it. And a file rewritten in place at the same size while
/// it is read is delivered with the old version's start and the new one's end, unless its
/// time tells: compared with the time the stream gave when it opened the file, which the
/// endpoint asks the way it answers this stat (SFTP attributes; over FTP the `MLST` or `MDTM`
/// sent with the download, never a listing's `LIST` time of minutes), so like is compared
/// with like. Either is not ready (`FileError::Changed`): the next run takes the file once it
/// is stable. Asked after a streamed download only (one stat, beside a transfer of more than
/// [`WHOLE_MAX`]); a file read whole is read in one go. A file gone meanwhile was read whole
/// before it went: that is left to the disposal, as for a file removed later.
async fn not_grown(ep: &dyn Endpoint, path: &RemotePath, size: u64, opened: Option<&Entry>) -> Result<(), FileError> {
    match ep.stat(path).await? {
        Some(now) if now.kind == EntryKind::File => {
            check_length(path, now.size.max(size), size)?;
            match (opened.and_then(|o| o.mtime), now.mtime) {
                (Some(then), Some(later)) if then != later => Err(FileError::Changed(format!(
                    "{path} was modified while it was downloaded (at {}, opened as modified at {}); it will be taken once it is stable",
                    super::lifecycle::date(crate::ledger::to_millis(later)),
                    super::lifecycle::date(crate::ledger::to_millis(then))
                ))),
                _ => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

/// How much of a partly staged file is read again from the source before a download resumes.
const RESUME_OVERLAP: u64 = 64 * 1024;

/// Whether the source (listed at `size` bytes) still holds, just before `offset`, the bytes the staging `file` has
/// there: then the stream to go on with, positioned at `offset`. `None`: it does not (another
/// version, or shorter now).
async fn same_tail(
    ep: &dyn Endpoint,
    path: &RemotePath,
    size: u64,
    file: &Path,
    offset: u64,
) -> Result<Option<Box<dyn ReadStream>>, FileError> {
    let start = offset - offset.min(RESUME_OVERLAP);
    let len = (offset - start) as usize;
    let staged_file = file.to_path_buf();
    let mine = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        use std::io::{Read, Seek};
        let mut f = std::fs::File::open(staged_file)?;
        f.seek(std::io::SeekFrom::Start(start))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(io(file))?;
    let mut src = open_at(ep, path, start, size).await?;
    let mut theirs = vec![0u8; len];
    let n = read_full(&mut *src, &mut theirs).await?;
    Ok((n == len && theirs == mine).then_some(src))
}

/// A staging file linked to the source: hashed (one read), its size checked against the
/// listing's, unless the upload does that ([`Hash::Deferred`]).
async fn linked(path: &RemotePath, size: u64, file: &Path, hash: Hash, opened: Entry) -> Result<Staged, FileError> {
    halt::point("staging");
    if hash == Hash::Deferred {
        return Ok(Staged { size, sha256: None, data: None, opened: Some(opened) });
    }
    let (len, hasher) = pipe::hash_file(file.to_path_buf()).await.map_err(io(file))?;
    if len != size {
        discard(file).await;
        return Err(FileError::Changed(format!(
            "{path} has {len} bytes, but the listing said {size}; it changed since it was listed, and the next run looks at it again"
        )));
    }
    Ok(Staged { size, sha256: Some(hex::encode(hasher.finalize())), data: None, opened: Some(opened) })
}

/// A file of at most [`WHOLE_MAX`], from nothing: read whole (and one byte more, to see it end),
/// then written in place of any leftover, fsynced and hashed in one trip to a blocking thread.
async fn stage_small(ep: &dyn Endpoint, path: &RemotePath, size: u64, file: &Path, budget: &Budget) -> Result<Staged, FileError> {
    let bytes = budget.hold(size).await;
    let (buf, opened) = read_whole(ep, path, size).await?;
    let hasher = pipe::write_whole(file.to_path_buf(), buf).await.map_err(io(file))?;
    drop(bytes);
    halt::point("staging");
    Ok(Staged { size, sha256: Some(hex::encode(hasher.finalize())), data: None, opened })
}

/// A file of at most [`INLINE_MAX`], read whole and kept in memory (hashed here: a few tens
/// of microseconds).
async fn held(ep: &dyn Endpoint, path: &RemotePath, size: u64, budget: &Budget) -> Result<Staged, FileError> {
    // Only while it is read: the bytes kept until delivery are at most INLINE_MAX per file
    // in flight (4 MiB with the most files in flight).
    let _bytes = budget.hold(size).await;
    let (data, opened) = read_whole(ep, path, size).await?;
    let sha256 = hex::encode(Sha256::digest(&data));
    halt::point("staging");
    Ok(Staged { size, sha256: Some(sha256), data: Some(data), opened })
}

/// All of a file of at most [`WHOLE_MAX`] (and one byte more, to see it end), its length
/// checked against the listing's, and the file read as the endpoint describes it.
async fn read_whole(ep: &dyn Endpoint, path: &RemotePath, size: u64) -> Result<(Vec<u8>, Option<Entry>), FileError> {
    // Invariant: size <= WHOLE_MAX, so it fits a usize.
    let (data, opened) = ep.read_small(path, size as usize + 1).await?;
    check_length(path, data.len() as u64, size)?;
    Ok((data, opened))
}

/// A download's length against the listing's.
fn check_length(path: &RemotePath, got: u64, size: u64) -> Result<(), FileError> {
    if got > size {
        return Err(FileError::Changed(format!(
            "{path} grew past {size} bytes while it was downloaded; it will be taken once it is stable"
        )));
    }
    if got != size {
        return Err(FileError::Changed(format!(
            "{path} has {got} bytes, but the listing said {size}; it changed while it was downloaded, and the next run looks at it again"
        )));
    }
    Ok(())
}

/// Removes a staging file; a missing one is fine.
pub async fn discard(file: &Path) {
    discard_files(vec![file.to_path_buf()]).await;
}

/// Removes local staging files (missing ones are fine), in one trip to a blocking thread.
pub async fn discard_files(files: Vec<PathBuf>) {
    let removed = tokio::task::spawn_blocking(move || remove_files(&files));
    if let Err(e) = removed.await {
        tracing::warn!(error = %e, "Could not remove staging files.");
    }
}

/// Removes local staging files (missing ones are fine), on this thread.
pub fn remove_files(files: &[PathBuf]) {
    for file in files {
        if let Err(e) = std::fs::remove_file(file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %file.display(), error = %e, "Could not remove a staging file.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::local::LocalEndpoint;

    /// [`stage`] of `name` from `ep`, with a budget of its own.
    async fn stage_file(
        ep: &LocalEndpoint,
        name: &str,
        size: u64,
        staged: &Path,
        resume: bool,
        hash: Hash,
        in_memory: bool,
    ) -> Result<Staged, FileError> {
        stage(ep, &RemotePath::parse(name).unwrap(), size, staged, resume, hash, in_memory, &Budget::default()).await
    }

    fn setup() -> (tempfile::TempDir, LocalEndpoint, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        let ep = LocalEndpoint::new(d.path().join("src"));
        let staged = d.path().join("staging/f/x.part");
        (d, ep, staged)
    }

    #[tokio::test]
    async fn a_local_source_is_linked_not_copied() {
        let (d, ep, staged) = setup();
        std::fs::write(d.path().join("src/a.csv"), "a;b\n").unwrap();
        let st = stage_file(&ep, "a.csv", 4, &staged, true, Hash::Now, false).await.unwrap();
        assert_eq!(st.sha256, Some(hex::encode(Sha256::digest(b"a;b\n"))));
        assert_eq!(std::fs::metadata(&staged).unwrap().ino(), std::fs::metadata(d.path().join("src/a.csv")).unwrap().ino());
        // Staged again (a resumed run): the link is made again, the source untouched.
        stage_file(&ep, "a.csv", 4, &staged, true, Hash::Now, false).await.unwrap();
        assert_eq!(std::fs::read(d.path().join("src/a.csv")).unwrap(), b"a;b\n");
    }

    #[tokio::test]
    async fn a_linked_source_that_changed_is_refused_and_never_truncated() {
        let (d, ep, staged) = setup();
        let src = d.path().join("src/a.csv");
        std::fs::write(&src, "a;b\n").unwrap();
        stage_file(&ep, "a.csv", 4, &staged, true, Hash::Now, false).await.unwrap();
        // The producer appended since: the staging file (the same inode) is larger than the
        // listing said. Staging again must not truncate it.
        std::fs::write(&src, "a;b\nc;d\n").unwrap();
        let err = stage_file(&ep, "a.csv", 4, &staged, true, Hash::Now, false).await.unwrap_err();
        assert!(matches!(err, FileError::Changed(_)), "{err}");
        assert_eq!(std::fs::read(&src).unwrap(), b"a;b\nc;d\n");
        assert!(!staged.exists(), "the link is dropped");
    }

    #[tokio::test]
    async fn a_linked_source_staged_with_a_deferred_hash_is_not_read() {
        let (d, ep, staged) = setup();
        std::fs::write(d.path().join("src/a.csv"), "a;b\n").unwrap();
        let st = stage_file(&ep, "a.csv", 4, &staged, true, Hash::Deferred, false).await.unwrap();
        assert_eq!((st.size, &st.sha256, &st.data), (4, &None, &None));
        assert_eq!(st.opened.map(|o| o.size), Some(4), "the linked file described");
        assert_eq!(std::fs::metadata(&staged).unwrap().nlink(), 2, "linked");
        // A file that is copied is hashed on the way, whatever was asked.
        std::fs::write(d.path().join("src/l.csv"), "r\n").unwrap();
        let other = d.path().join("staging/f/y.part");
        let st = stage_file(&ep.never_linking(), "l.csv", 2, &other, true, Hash::Deferred, false).await.unwrap();
        assert_eq!(st.sha256, Some(hex::encode(Sha256::digest(b"r\n"))));
    }

    #[tokio::test]
    async fn a_small_file_is_held_in_memory_when_the_caller_can_take_its_bytes() {
        let (d, ep, staged) = setup();
        std::fs::write(d.path().join("src/a.csv"), "a;b\n").unwrap();
        let st = stage_file(&ep, "a.csv", 4, &staged, false, Hash::Deferred, true).await.unwrap();
        assert_eq!((st.size, st.sha256, st.data), (4, Some(hex::encode(Sha256::digest(b"a;b\n"))), Some(b"a;b\n".to_vec())));
        assert_eq!(st.opened.map(|o| o.size), Some(4), "the file read described");
        assert!(!staged.exists(), "no staging file");
        // Changed since it was listed: refused, as a staged one would be.
        let err = stage_file(&ep, "a.csv", 3, &staged, false, Hash::Now, true).await.unwrap_err();
        assert!(matches!(err, FileError::Changed(_)), "{err}");
        // Bigger than INLINE_MAX: staged on disk.
        let big = vec![b'x'; INLINE_MAX as usize + 1];
        std::fs::write(d.path().join("src/big.csv"), &big).unwrap();
        let st = stage_file(&ep, "big.csv", big.len() as u64, &staged, false, Hash::Now, true).await.unwrap();
        assert_eq!(st.data, None);
        assert_eq!(std::fs::read(&staged).unwrap(), big);
    }

    /// A download interrupted at 1 MiB resumes only if the source still holds what was
    /// downloaded: a version rewritten with the same size (and time) is downloaded again, not
    /// spliced onto the old one's start.
    #[tokio::test]
    async fn a_resumed_download_starts_again_when_the_source_was_rewritten() {
        let (d, ep, staged) = setup();
        let (ep, real) = (ep.never_linking(), d.path().join("src/l.bin"));
        let size = 3 * 1024 * 1024;
        let old: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let new: Vec<u8> = (0..size).map(|i| (i % 241) as u8).collect();
        std::fs::create_dir_all(staged.parent().unwrap()).unwrap();
        // Interrupted while downloading the old version…
        std::fs::write(&staged, &old[..1024 * 1024]).unwrap();
        // …which the partner replaced by one of the same size.
        std::fs::write(&real, &new).unwrap();
        let st = stage_file(&ep, "l.bin", size as u64, &staged, true, Hash::Now, false).await.unwrap();
        assert!(std::fs::read(&staged).unwrap() == new, "not spliced");
        assert_eq!(st.sha256, Some(hex::encode(Sha256::digest(&new))));
        // The same version: resumed, and whole.
        std::fs::write(&staged, &new[..1024 * 1024 + 5]).unwrap();
        stage_file(&ep, "l.bin", size as u64, &staged, true, Hash::Now, false).await.unwrap();
        assert!(std::fs::read(&staged).unwrap() == new);
    }

    /// A file rewritten in place at the same size while it is downloaded (after its first
    /// chunk): not delivered as the old version's start and the new one's end, but not ready,
    /// told by its modification time.
    #[tokio::test]
    async fn a_file_rewritten_at_the_same_size_while_it_is_downloaded_is_not_ready() {
        let (d, ep, staged) = setup();
        let (ep, real) = (ep.never_linking(), d.path().join("src/l.bin"));
        let size = 3 * 1024 * 1024;
        std::fs::write(&real, vec![b'o'; size]).unwrap();
        let rewrite = real.clone();
        let _hook = halt::hook::set(move |p| {
            if p == "staging" {
                std::fs::write(&rewrite, vec![b'n'; size]).unwrap();
                let f = std::fs::File::options().write(true).open(&rewrite).unwrap();
                f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(10)).unwrap();
            }
        });
        let err = stage_file(&ep, "l.bin", size as u64, &staged, false, Hash::Now, false).await.unwrap_err();
        assert!(matches!(err, FileError::Changed(_)), "{err}");
        assert!(err.to_string().contains("/l.bin was modified while it was downloaded"), "{err}");
        drop(_hook);
        // Left alone, it is taken.
        let st = stage_file(&ep, "l.bin", size as u64, &staged, false, Hash::Now, false).await.unwrap();
        assert_eq!(st.sha256, Some(hex::encode(Sha256::digest(vec![b'n'; size]))));
    }

    #[tokio::test]
    async fn a_source_that_cannot_be_linked_is_copied() {
        let (d, ep, staged) = setup();
        std::fs::write(d.path().join("src/l.csv"), "r\n").unwrap();
        let st = stage_file(&ep.never_linking(), "l.csv", 2, &staged, true, Hash::Now, false).await.unwrap();
        assert_eq!(st.size, 2);
        assert_eq!(std::fs::symlink_metadata(&staged).unwrap().nlink(), 1, "a copy of its own");
        assert_eq!(std::fs::read(&staged).unwrap(), b"r\n");
    }
}
