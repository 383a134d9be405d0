//! `local`: a folder on this machine, behind the same [`Endpoint`] contract as the servers.
//!
//! Owns the mapping of [`RemotePath`]s onto the root folder and the translation of
//! `std::io` errors into [`ErrorKind`]s, as the servers' backends give them for the same
//! trouble (the conformance suite checks them all). Symlinks are listed as `Other` and never
//! followed when listing, so a link inside the root cannot lead the engine outside it.
//!
//! A file where a folder should be (a sink's folder, a folder above it, the root itself) is
//! named as what it is: a path through it is not found (OpenSSH's `sftp-server` says so of
//! `ENOTDIR`; a sink's target is then free), and making the folder is refused as already
//! existing, `/out exists and is not a folder`, as every server backend says it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::durable::{sync_dir, sync_file};

use super::{
    Adopted, Adoptee, Capabilities, Endpoint, EndpointError, Entry, EntryKind, ErrorKind, Feature, Listing, Op, ReadStream, RemotePath,
    ServerFacts, SkippedName, Special, Support, Traits, WriteStream, Writing,
};

/// A local folder endpoint.
#[derive(Debug, Clone)]
pub struct LocalEndpoint {
    root: PathBuf,
    /// A hard link from here to the staging folder failed for being on another file system:
    /// [`Endpoint::link_local`] says no at once from then on.
    cross_device: Arc<AtomicBool>,
}

impl LocalEndpoint {
    /// An endpoint rooted at `root` (should be absolute; it need not exist yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalEndpoint { root: root.into(), cross_device: Arc::default() }
    }

    /// This endpoint, linking nothing (as across file systems): every file staged is copied.
    #[cfg(test)]
    pub(crate) fn never_linking(self) -> Self {
        self.cross_device.store(true, Ordering::Relaxed);
        self
    }

    /// Where `p` is on the local disk.
    pub fn full(&self, p: &RemotePath) -> PathBuf {
        let mut out = self.root.clone();
        out.extend(p.components());
        out
    }

    fn err(&self, op: Op, path: &RemotePath, e: io::Error) -> EndpointError {
        self.err_on(op, path, &[path], e)
    }

    /// [`Self::err`] for an operation on `path` that went through each of `ways` (a rename:
    /// to its target, from its source): a file in the way is looked for on each.
    fn err_on(&self, op: Op, path: &RemotePath, ways: &[&RemotePath], e: io::Error) -> EndpointError {
        let kind = io_kind(&e);
        let message = match kind {
            // Said where, and what to do: the file waits for the next run (see `ErrorKind::NoSpace`).
            ErrorKind::NoSpace if e.raw_os_error() == Some(libc::EDQUOT) => {
                format!("{}: this user's quota on the disk holding {} is used up; make room there", io_reason(&e), self.root.display())
            }
            ErrorKind::NoSpace => format!("{}: the disk holding {} is full; make room there", io_reason(&e), self.root.display()),
            // The root's trouble alone: the OS's "No such file or directory" before it said
            // the same again.
            _ if e.kind() == io::ErrorKind::IsADirectory => crate::endpoint::folder_in_the_way(ways[0], ""),
            _ if e.kind() == io::ErrorKind::InvalidFilename => too_long(ways).unwrap_or_else(|| io_reason(&e)),
            _ => match self.root_trouble(&e) {
                Some(trouble) => trouble.to_string(),
                None => match ways.iter().find_map(|way| self.file_on_the_way(way, &e)) {
                    Some(file) => format!("{file} is a file, not a folder"),
                    None => io_reason(&e),
                },
            },
        };
        EndpointError::new(kind, op, self.describe(), Some(path), message)
    }

    /// A file to read that is not one (any more): a folder, a link, a FIFO took its name.
    /// Refused for good (`Protocol`), saying what is there.
    fn not_a_file(&self, path: &RemotePath, found: &Entry) -> EndpointError {
        let what = match found.kind {
            EntryKind::Other(kind) => kind.to_string(),
            EntryKind::Dir | EntryKind::File => "a folder".to_string(),
        };
        EndpointError::new(ErrorKind::Protocol, Op::Read, self.describe(), Some(path), format!("{path} is {what}, not a file"))
    }

    /// For a path that is missing, runs through a file or (a folder to make) is a file:
    /// whether the endpoint's root itself is the reason (it is missing, or a file is in its
    /// way), which the path alone does not say.
    fn root_trouble(&self, e: &io::Error) -> Option<RootTrouble> {
        if !matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::AlreadyExists) {
            return None;
        }
        if std::fs::metadata(&self.root).is_ok_and(|m| m.is_dir()) {
            return None;
        }
        Some(match blocked_root(&self.root) {
            Some(blocked) => RootTrouble::Blocked(blocked),
            None => RootTrouble::Missing(self.root.clone()),
        })
    }

    /// For a path that runs through a file (ENOTDIR, the root being a folder): the first
    /// folder on its way that is a file, which the OS's bare "Not a directory" does not name.
    /// The path's own last name is no folder on its way (a rename's source is a file).
    fn file_on_the_way(&self, path: &RemotePath, e: &io::Error) -> Option<RemotePath> {
        if e.raw_os_error() != Some(libc::ENOTDIR) {
            return None;
        }
        let mut on_the_way = RemotePath::root();
        for name in path.parent().components() {
            on_the_way = on_the_way.join(name).ok()?;
            if std::fs::metadata(self.full(&on_the_way)).is_ok_and(|m| !m.is_dir()) {
                return Some(on_the_way);
            }
        }
        None
    }
}

/// Why the endpoint's root is no folder to work in.
enum RootTrouble {
    /// A file is in its way ([`blocked_root`]'s words).
    Blocked(String),
    /// It does not exist (it is made by the first delivery).
    Missing(PathBuf),
}

impl std::fmt::Display for RootTrouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootTrouble::Blocked(blocked) => f.write_str(blocked),
            RootTrouble::Missing(root) => write!(f, "the endpoint's root {} does not exist", root.display()),
        }
    }
}

/// What keeps a local endpoint's `root` from being a folder, in words: a file at it (`the
/// endpoint's root /srv/out is a file, not a folder`), or a file where a folder above it
/// should be, under which it can never be made (`… cannot be made: /srv is a file, not a
/// folder`). `None` when it is a folder or can be made (it or folders above it missing).
pub fn blocked_root(root: &Path) -> Option<String> {
    // The nearest that exists of the root and the folders above it.
    let file = root.ancestors().find_map(|p| match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => Some(None),
        Ok(_) => Some(Some(p)),
        Err(_) => None,
    })??;
    Some(if file == root {
        format!("the endpoint's root {} is a file, not a folder", root.display())
    } else {
        format!("the endpoint's root {} cannot be made: {} is a file, not a folder", root.display(), file.display())
    })
}

/// The most bytes a name (one path component) may have: Linux's `NAME_MAX`, the limit of
/// ext4, XFS, Btrfs and most others.
const NAME_MAX: usize = 255;

/// Which name of `ways` is too long (ENAMETOOLONG), and the limit: the OS says only "File
/// name too long".
fn too_long(ways: &[&RemotePath]) -> Option<String> {
    let name = ways.iter().flat_map(|w| w.components()).find(|n| n.len() > NAME_MAX)?;
    let shown = crate::text::one_line(name, 40, crate::text::Keep::Start);
    Some(format!("the name `{shown}` is {} bytes long, more than the {NAME_MAX} bytes a file system allows for a name", name.len()))
}

/// An I/O error's text for a message: the OS's reason ("Permission denied"), without the
/// " (os error 13)" Rust's `Display` appends to it (the number tells a user nothing more).
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text.strip_suffix(&format!(" (os error {code})")).map_or_else(|| text.clone(), str::to_string),
        None => text,
    }
}

/// Maps an I/O error to an [`ErrorKind`] by its `io::ErrorKind` (or errno), never by its text.
pub fn io_kind(e: &io::Error) -> ErrorKind {
    // A full disk (or a used-up quota) under this folder: the place files go has no room,
    // as when a server's disk is full. Not `LocalIo`, which stops the run: the files that
    // fit are still taken, and the others wait until there is room.
    if crate::durable::no_space(e) {
        return ErrorKind::NoSpace;
    }
    match e.kind() {
        // A path through a file ("Not a directory") names nothing there, as OpenSSH's
        // `sftp-server` (and `wharf sandbox`) say of it: a sink's target is free, a source file
        // gone. The message names the file in the way (`LocalEndpoint::err`).
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => ErrorKind::NotFound,
        // A read-only file system refuses writes as a folder the user may not write to does:
        // the trouble of what is written there (a sink, a quarantine folder, a source's
        // disposal), not of the run, whose other sinks and files go on.
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
        io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
        io::ErrorKind::TimedOut | io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => ErrorKind::Transient,
        // A folder where a file should be (a file written, or renamed, onto a folder's name):
        // the name is taken, as a file in the way of a folder is (`create_dir_all`), and as
        // FTP servers answer a rename onto a folder; a move picks another free name.
        io::ErrorKind::IsADirectory => ErrorKind::AlreadyExists,
        // A name too long: refused for good (as the servers' bare refusals of it are), but this
        // file's (or this sink's) trouble, not a disk the run cannot go on with.
        io::ErrorKind::InvalidFilename => ErrorKind::Protocol,
        _ => ErrorKind::LocalIo,
    }
}

fn entry_from(path: RemotePath, md: &std::fs::Metadata) -> Entry {
    let ft = md.file_type();
    let kind = if ft.is_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::Other(special(ft))
    };
    Entry { path, kind, size: if kind == EntryKind::File { md.len() } else { 0 }, mtime: md.modified().ok() }
}

/// What a file that is neither a regular file nor a folder is.
fn special(ft: std::fs::FileType) -> Special {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_symlink() {
        Special::Symlink
    } else if ft.is_fifo() {
        Special::Fifo
    } else if ft.is_socket() {
        Special::Socket
    } else if ft.is_block_device() || ft.is_char_device() {
        Special::Device
    } else {
        Special::Unknown
    }
}

/// `opened`, unless it is a folder (one took a listed file's name): Linux opens a folder for
/// reading and refuses the first read with a bare "Is a directory", which names nothing.
/// Opens `full` (`p`) to read: the file and what it is. Never through a symbolic link and
/// never waiting on a FIFO: the listing took a file, and what took its name since (a link to
/// `/etc/shadow`, which would be read and delivered; a FIFO, which an open for reading waits
/// on for a writer, for ever) is not one. `Err(entry)`: what is there instead of a file
/// (a folder too), for [`LocalEndpoint::not_a_file`].
fn open_file(full: &Path, p: RemotePath) -> io::Result<Result<(std::fs::File, Entry), Entry>> {
    use std::os::unix::fs::OpenOptionsExt;
    let opened = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(full);
    let f = match opened {
        Ok(f) => f,
        // O_NOFOLLOW refusing a link (ELOOP): said as what it is.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(Err(entry_from(p, &std::fs::symlink_metadata(full)?))),
        Err(e) => return Err(e),
    };
    let entry = entry_from(p, &f.metadata()?);
    Ok(if entry.kind == EntryKind::File { Ok((f, entry)) } else { Err(entry) })
}

/// Whether any process has the file at `full` open for writing. Linux tells it by whether it
/// grants a read lease on the file (fcntl(2), "Leases"; Samba asks the same way): refused
/// with `EAGAIN` exactly while someone has it open for writing. No size or time can tell a
/// writer pausing from a finished file; this can, for a writer that keeps the file open.
///
/// What must hold, each for a reason:
/// - Opened `O_RDONLY` (a read lease needs a read-only descriptor) `| O_NONBLOCK` (a FIFO
///   put in the file's place does not block the open, and a file under someone else's write
///   lease answers `EWOULDBLOCK` at once instead of waiting for the break it starts) `|
///   O_CLOEXEC | O_NOFOLLOW` (a link in its place is not followed).
/// - `F_SETSIG` to `SIGURG` *before* the lease is taken: a writer opening the file while it
///   is held breaks the lease, and the kernel signals the holder — by default with `SIGIO`,
///   whose default action terminates wharf. `SIGURG`'s default action is to ignore it. Not
///   set, no lease is taken.
/// - The lease is given back at once (`F_UNLCK`, then the close): a writer opening the file
///   meanwhile waits only that long.
/// - `EAGAIN`/`EWOULDBLOCK`: open for writing. Granted: not. Anything else is
///   [`Writing::Unknown`] and the file is judged as before: `EACCES` (a file of another user
///   and no `CAP_LEASE`), `EINVAL` (a file system without leases: NFS, some FUSE; not a
///   regular file), `ENOLCK`, leases off (`/proc/sys/fs/leases-enable` 0), a file gone since
///   the listing (its read says so, as before).
///
/// It counts wharf's own descriptors too; wharf holds none of a source's files open for
/// writing when readiness is judged (a `source.command`'s output is closed before it is
/// renamed into the folder; a local sink's file is closed once written, before its rename).
#[cfg(target_os = "linux")]
fn open_for_writing(full: &Path) -> Writing {
    leased(full, || ())
}

/// [`open_for_writing`], running `meanwhile` while the lease is held (a test has a writer
/// open the file then).
#[cfg(target_os = "linux")]
fn leased(full: &Path, meanwhile: impl FnOnce()) -> Writing {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    // The libc crate has `F_SETLEASE` but not `F_SETSIG` (only for one musl target): 10 on
    // every Linux architecture (`asm-generic/fcntl.h`; glibc's `__F_SETSIG`).
    const F_SETSIG: libc::c_int = 10;
    // `EAGAIN`, which is `EWOULDBLOCK` on Linux.
    let would_block = |e: &io::Error| e.kind() == io::ErrorKind::WouldBlock;
    let flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    let f = match std::fs::OpenOptions::new().read(true).custom_flags(flags).open(full) {
        Ok(f) => f,
        Err(e) if would_block(&e) => return Writing::Open,
        Err(_) => return Writing::Unknown,
    };
    let fd = f.as_raw_fd();
    // SAFETY: fcntl(2) on a descriptor `f` owns and keeps open for these calls; no memory is
    // passed.
    unsafe {
        if libc::fcntl(fd, F_SETSIG, libc::SIGURG) != 0 {
            return Writing::Unknown;
        }
        if libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) != 0 {
            return if would_block(&io::Error::last_os_error()) { Writing::Open } else { Writing::Unknown };
        }
        meanwhile();
        // Closing `f` below gives it back too; this says so before anything else can happen.
        libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
    }
    Writing::Closed
}

/// Elsewhere there is no telling (see the Linux one).
#[cfg(not(target_os = "linux"))]
fn open_for_writing(_full: &Path) -> Writing {
    Writing::Unknown
}

#[async_trait]
impl Endpoint for LocalEndpoint {
    fn describe(&self) -> String {
        format!("local {}", self.root.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtime_precision: Duration::from_micros(1),
            atomic_replace: true,
            trailing_space_names: true,
            local_files: true,
            describes_opened: true,
            write_replaces: true,
        }
    }

    async fn list(&self, dir: &RemotePath) -> Result<Listing, EndpointError> {
        // One trip to a blocking thread for the whole folder (one per entry took a tenth of a
        // second for 5,000 files here).
        let (full, d) = (self.full(dir), dir.clone());
        let listed = blocking(move || {
            let mut out = Listing::default();
            for de in std::fs::read_dir(&full)? {
                let de = de?;
                let Some(name) = de.file_name().to_str().map(str::to_owned) else {
                    out.skipped.push(SkippedName::not_utf8(&d, &de.file_name().to_string_lossy()));
                    continue;
                };
                let path = match d.join(&name) {
                    Ok(p) => p,
                    Err(e) => {
                        out.skipped.push(SkippedName::refused(&d, &name, &e));
                        continue;
                    }
                };
                // Not through a symlink (lstat): a link is listed as Other, never followed.
                match de.metadata() {
                    Ok(md) => out.entries.push(entry_from(path, &md)),
                    // Removed since the folder was read: not there.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        });
        let mut out = match listed.await {
            Ok(out) => out,
            // The path itself a file (not one of its parents): a source `path:` naming the file.
            Err(e) if e.kind() == io::ErrorKind::NotADirectory && std::fs::metadata(self.full(dir)).is_ok_and(|m| m.is_file()) => {
                return Err(EndpointError::new(
                    ErrorKind::Config,
                    Op::List,
                    self.describe(),
                    Some(dir),
                    crate::endpoint::file_not_folder(dir),
                ));
            }
            Err(e) => return Err(self.err(Op::List, dir, e)),
        };
        out.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn stat(&self, path: &RemotePath) -> Result<Option<Entry>, EndpointError> {
        match tokio::fs::symlink_metadata(self.full(path)).await {
            Ok(md) => Ok(Some(entry_from(path.clone(), &md))),
            // Nothing there, as the servers say (see `io_kind`).
            Err(e) if io_kind(&e) == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(Op::Stat, path, e)),
        }
    }

    async fn open_read(&self, path: &RemotePath, offset: u64) -> Result<Box<dyn ReadStream>, EndpointError> {
        // The open, the open file's metadata and the seek in one trip to a blocking thread.
        let (full, p) = (self.full(path), path.clone());
        let opened = blocking(move || {
            let (mut f, opened) = match open_file(&full, p)? {
                Ok(file) => file,
                Err(other) => return Ok(Err(other)),
            };
            if offset > 0 {
                io::Seek::seek(&mut f, io::SeekFrom::Start(offset))?;
            }
            Ok(Ok((f, opened)))
        });
        let (f, opened) = opened.await.map_err(|e| self.err(Op::Read, path, e))?.map_err(|other| self.not_a_file(path, &other))?;
        Ok(Box::new(LocalRead { f: tokio::fs::File::from_std(f), ep: self.clone(), path: path.clone(), opened }))
    }

    async fn read_small(&self, path: &RemotePath, limit: usize) -> Result<(Vec<u8>, Option<Entry>), EndpointError> {
        // One trip to a blocking thread (a stream takes one for the open and one per read).
        let (full, p) = (self.full(path), path.clone());
        let read = blocking(move || {
            let mut data = Vec::with_capacity(limit.min(1024 * 1024));
            let (f, opened) = match open_file(&full, p)? {
                Ok(file) => file,
                Err(other) => return Ok(Err(other)),
            };
            io::Read::read_to_end(&mut io::Read::take(f, limit as u64), &mut data)?;
            Ok(Ok((data, Some(opened))))
        });
        read.await.map_err(|e| self.err(Op::Read, path, e))?.map_err(|other| self.not_a_file(path, &other))
    }

    async fn open_write(&self, path: &RemotePath) -> Result<Box<dyn WriteStream>, EndpointError> {
        let f = tokio::fs::File::create(self.full(path)).await.map_err(|e| self.err(Op::Write, path, e))?;
        Ok(Box::new(LocalWrite { f, ep: self.clone(), path: path.clone() }))
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath, replace: bool) -> Result<(), EndpointError> {
        let (src, dst) = (self.full(from), self.full(to));
        blocking(move || {
            if replace {
                std::fs::rename(&src, &dst)?;
            } else {
                // No-replace rename: hard_link fails atomically when the target exists.
                no_replace_rename(&src, &dst)?;
            }
            sync_dir(dst.parent());
            Ok(())
        })
        .await
        .map_err(|e| self.err_on(Op::Rename, from, &[to, from], e))
    }

    async fn remove(&self, path: &RemotePath) -> Result<(), EndpointError> {
        self.remove_synced(path, |p| std::fs::remove_file(p)).await
    }

    async fn create_dir_all(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        let Err(e) = tokio::fs::create_dir_all(self.full(dir)).await else { return Ok(()) };
        // A file in the way (`move_to: processed` where `processed` is a file, a sink's
        // folder, the root or a folder above it): named, and refused as already existing, as
        // the servers' backends do, rather than the OS's bare "File exists".
        let refused = |message: String| EndpointError::new(ErrorKind::AlreadyExists, Op::CreateDir, self.describe(), Some(dir), message);
        if let Some(RootTrouble::Blocked(blocked)) = self.root_trouble(&e) {
            return Err(refused(blocked));
        }
        let mut prefix = RemotePath::root();
        for name in dir.components() {
            prefix = prefix
                .join(name)
                .map_err(|e| EndpointError::new(ErrorKind::Protocol, Op::CreateDir, self.describe(), Some(dir), e.to_string()))?;
            if std::fs::metadata(self.full(&prefix)).is_ok_and(|m| !m.is_dir()) {
                return Err(refused(format!("{prefix} exists and is not a folder")));
            }
        }
        Err(self.err(Op::CreateDir, dir, e))
    }

    async fn remove_dir(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        self.remove_synced(dir, |p| std::fs::remove_dir(p)).await
    }

    async fn rename_plain(&self, from: &RemotePath, to: &RemotePath) -> Result<(), EndpointError> {
        tokio::fs::rename(self.full(from), self.full(to)).await.map_err(|e| self.err_on(Op::Rename, from, &[to, from], e))
    }

    async fn facts(&self) -> Result<ServerFacts, EndpointError> {
        let root = RemotePath::root();
        let mut features = vec![
            Feature::offered("rename(2)", "POSIX", "renaming onto an existing file replaces it atomically"),
            Feature::offered("fsync(2)", "yes", "files and folders are flushed to disk after a write"),
        ];
        let mut problems = Vec::new();
        match tokio::fs::metadata(&self.root).await {
            Ok(md) if md.is_dir() => {}
            Ok(_) => problems.push(format!("the root {} is not a folder", self.root.display())),
            // A sink's folders are made on the first delivery.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                features.push(Feature::missing("root folder", format!("{} does not exist yet", self.root.display())));
            }
            Err(e) => return Err(self.err(Op::Stat, &root, e)),
        }
        Ok(ServerFacts {
            protocol: "local".into(),
            software: Some(format!("{} file system", std::env::consts::OS)),
            features,
            traits: Traits {
                atomic_replace: Support::yes("rename(2) replaces atomically"),
                durable_writes: Support::yes("fsync(2)"),
                server_sha256: Support::no("no server to compute one"),
                encrypted: Support::yes("no network involved"),
                mtime_precision: self.capabilities().mtime_precision,
                mtime_source: "stat(2)".into(),
                sessions: None,
            },
            problems,
        })
    }

    async fn writing(&self, paths: &[RemotePath]) -> Vec<Writing> {
        // One trip to a blocking thread for them all: an open, three fcntl and a close each.
        let full: Vec<PathBuf> = paths.iter().map(|p| self.full(p)).collect();
        let unknown = vec![Writing::Unknown; paths.len()];
        blocking(move || Ok(full.iter().map(|f| open_for_writing(f)).collect())).await.unwrap_or(unknown)
    }

    async fn link_local(&self, path: &RemotePath, local: &Path) -> Result<Option<Entry>, EndpointError> {
        if self.cross_device.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let (full, local, cross_device, p) = (self.full(path), local.to_path_buf(), Arc::clone(&self.cross_device), path.clone());
        let linked = blocking(move || -> io::Result<Result<Entry, io::Error>> {
            // link(2) would link a symlink itself, not its target: read through it instead.
            if !std::fs::symlink_metadata(&full)?.is_file() {
                return Ok(Err(io::Error::other("not a regular file")));
            }
            if let Err(e) = std::fs::hard_link(&full, &local) {
                if e.kind() == io::ErrorKind::CrossesDevices {
                    cross_device.store(true, Ordering::Relaxed);
                }
                return Ok(Err(e));
            }
            // The link's inode is the file linked, whatever has the source's name now.
            Ok(Ok(entry_from(p, &std::fs::metadata(&local)?)))
        });
        match linked.await {
            Ok(Ok(linked)) => Ok(Some(linked)),
            // Another file system, links refused (fs.protected_hardlinks for another user's
            // file, a file system without them), a symlink: the caller copies instead.
            Ok(Err(e)) => {
                tracing::debug!(path = %path, error = %e, "Cannot link the source file (the caller makes room and links again, or copies it).");
                Ok(None)
            }
            Err(e) => Err(self.err(Op::Read, path, e)),
        }
    }

    async fn adopt(&self, file: Adoptee<'_>, path: &RemotePath, replace: bool) -> Result<Option<Adopted>, EndpointError> {
        let full = self.full(path);
        let folder = full.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        let rename = move |from: &Path, full: &Path| if replace { std::fs::rename(from, full) } else { no_replace_rename(from, full) };
        let adopted = match file {
            Adoptee::Bytes(data, temp) => {
                let (data, temp) = (data.to_vec(), self.full(temp));
                blocking(move || {
                    let mut file = crate::durable::create_fresh(&temp)?;
                    // Whatever fails from here (a full disk while writing or syncing, the
                    // rename) leaves no partial temp file behind.
                    let written = std::io::Write::write_all(&mut file, &data)
                        .and_then(|()| crate::durable::sync_open(file))
                        .and_then(|()| rename(&temp, &full));
                    if let Err(e) = written {
                        let _ = std::fs::remove_file(&temp);
                        return Err(e);
                    }
                    Ok(Some(Adopted { size: data.len() as u64, folder }))
                })
                .await
            }
            Adoptee::Staged(local) => {
                let (local, staging) = (local.to_path_buf(), local.to_path_buf());
                let adopted = tokio::task::spawn_blocking(move || {
                    let size = match std::fs::metadata(&local) {
                        // Taken by an earlier attempt: what is there now.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {
                            let size = std::fs::metadata(&full).map(|m| m.len()).unwrap_or(0);
                            return Ok(Some(Adopted { size, folder }));
                        }
                        Err(e) => return Err(Adoption::Sink(e)),
                        // A staging file linked to a source file: renaming it here would make
                        // the delivered file and the source one inode (an edit of either would
                        // change both).
                        Ok(m) if std::os::unix::fs::MetadataExt::nlink(&m) > 1 => return Ok(None),
                        Ok(m) => m.len(),
                    };
                    // On disk before it has its final name (staging leaves small files unsynced
                    // for this fsync, which the files in flight share). Its failure is the
                    // staging folder's disk, which need not be this folder's.
                    sync_file(&local).map_err(Adoption::Staging)?;
                    match rename(&local, &full) {
                        // The folder's fsync is the caller's (see `Endpoint::adopt`).
                        Ok(()) => Ok(Some(Adopted { size, folder })),
                        // Another file system: the caller copies instead.
                        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => Ok(None),
                        Err(e) => Err(Adoption::Sink(e)),
                    }
                })
                .await
                .unwrap_or_else(|e| Err(Adoption::Sink(io::Error::other(e))));
                return adopted.map_err(|failed| match failed {
                    Adoption::Sink(e) => self.err(Op::Write, path, e),
                    Adoption::Staging(e) => staging_err(self.describe(), path, &staging, e),
                });
            }
        };
        adopted.map_err(|e| self.err(Op::Write, path, e))
    }
}

/// Where adopting a staged file failed: in this folder, or in writing the staging file
/// itself to disk (in the state folder, possibly on another disk).
enum Adoption {
    Sink(io::Error),
    Staging(io::Error),
}

/// The error for a staging file (`staging`, to be adopted as `path`) that could not be
/// written to disk: `StateFull` when its disk is full (the state folder's, not the sink's:
/// the run stops and frees its staging files), else `LocalIo`.
fn staging_err(endpoint: String, path: &RemotePath, staging: &Path, e: io::Error) -> EndpointError {
    let (kind, what) = if crate::durable::no_space(&e) {
        (ErrorKind::StateFull, "the state folder's disk is full; make room there")
    } else {
        (ErrorKind::LocalIo, "the state folder's disk failed")
    };
    EndpointError::new(
        kind,
        Op::Write,
        endpoint,
        Some(path),
        format!("the staging file {} could not be written to disk: {}; {what}", staging.display(), io_reason(&e)),
    )
}

impl LocalEndpoint {
    /// Removes `path` with `remove` (a file or an empty folder), then fsyncs its folder: one
    /// trip to a blocking thread.
    async fn remove_synced(&self, path: &RemotePath, remove: fn(&Path) -> io::Result<()>) -> Result<(), EndpointError> {
        let full = self.full(path);
        blocking(move || {
            remove(&full)?;
            sync_dir(full.parent());
            Ok(())
        })
        .await
        .map_err(|e| self.err(Op::Remove, path, e))
    }
}

fn no_replace_rename(src: &Path, dst: &Path) -> io::Result<()> {
    if src.is_dir() {
        if dst.exists() {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "target exists"));
        }
        return std::fs::rename(src, dst);
    }
    std::fs::hard_link(src, dst)?;
    std::fs::remove_file(src)
}

/// Runs `f` on a blocking thread: one trip there and back (each costs two thread wake-ups),
/// however many system calls `f` makes.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(io::Error::other(e)))
}

struct LocalRead {
    f: tokio::fs::File,
    ep: LocalEndpoint,
    path: RemotePath,
    opened: Entry,
}

#[async_trait]
impl ReadStream for LocalRead {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError> {
        self.f.read(buf).await.map_err(|e| self.ep.err(Op::Read, &self.path, e))
    }

    fn opened(&self) -> Option<&Entry> {
        Some(&self.opened)
    }
}

struct LocalWrite {
    f: tokio::fs::File,
    ep: LocalEndpoint,
    path: RemotePath,
}

#[async_trait]
impl WriteStream for LocalWrite {
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), EndpointError> {
        self.f.write_all(buf).await.map_err(|e| self.ep.err(Op::Write, &self.path, e))?;
        // tokio runs the write in the background; wait for it, so an abandoned stream can
        // never land bytes after a later write to the same name (flush does not fsync).
        self.f.flush().await.map_err(|e| self.ep.err(Op::Write, &self.path, e))
    }

    async fn finish(mut self: Box<Self>) -> Result<(), EndpointError> {
        self.f.flush().await.map_err(|e| self.ep.err(Op::Write, &self.path, e))?;
        self.f.sync_all().await.map_err(|e| self.ep.err(Op::Write, &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staging_file_that_cannot_reach_its_disk_is_the_state_folders_trouble_not_the_sinks() {
        let path = RemotePath::parse("/out/a.csv").unwrap();
        let staging = Path::new("/state/staging/f/0123.part");
        let full = staging_err("local /sink".into(), &path, staging, io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(full.kind, ErrorKind::StateFull);
        assert!(full.message.contains("/state/staging/f/0123.part") && full.message.contains("state folder"), "{}", full.message);
        let broken = staging_err("local /sink".into(), &path, staging, io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(broken.kind, ErrorKind::LocalIo);
    }

    /// A name holding `\` (a file a partner's Windows habit named `..\..\etc\x.csv`) is one
    /// name, never a path: left out of the listing as not a plain name, told once; no path
    /// can carry it to a sink, where a Windows server would read it as leaving the folder.
    #[tokio::test]
    async fn a_name_with_backslashes_is_left_out_and_no_path_can_carry_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("in")).unwrap();
        for name in ["..\\..\\etc\\x.csv", "ok.csv"] {
            std::fs::write(dir.path().join("in").join(name), "x").unwrap();
        }
        let ep = LocalEndpoint::new(dir.path().to_path_buf());
        let listing = ep.list(&RemotePath::parse("in").unwrap()).await.unwrap();
        let names: Vec<&str> = listing.entries.iter().map(|e| e.path.name()).collect();
        assert_eq!(names, ["ok.csv"]);
        let skipped: Vec<(&str, &str)> = listing.skipped.iter().map(|s| (s.name.as_str(), s.reason.as_str())).collect();
        assert_eq!(skipped, [("..\\..\\etc\\x.csv", "not_a_name")]);
        assert!(RemotePath::parse("in/..\\..\\etc\\x.csv").is_err() && RemotePath::root().join("..\\x.csv").is_err());
    }

    #[tokio::test]
    async fn a_missing_root_or_a_root_that_is_a_file_is_named_as_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let p = RemotePath::parse("/in").unwrap();
        let missing = LocalEndpoint::new(dir.path().join("nope"));
        let e = missing.list(&p).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        // One sentence (before: "No such file or directory: the endpoint's root … does not exist").
        let root = dir.path().join("nope");
        assert_eq!(e.to_string(), format!("local {0}: list /in: not found: the endpoint's root {0} does not exist", root.display()));
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let file = LocalEndpoint::new(dir.path().join("file"));
        let e = file.list(&p).await.unwrap_err();
        let blocked = format!("the endpoint's root {} is a file, not a folder", dir.path().join("file").display());
        assert_eq!((e.kind, &e.message), (ErrorKind::NotFound, &blocked));
        // A sink's: nothing is there, and its folder cannot be made (was a "protocol error").
        assert_eq!(file.stat(&RemotePath::parse("/a.csv").unwrap()).await.unwrap(), None);
        for folder in ["/", "/out"] {
            let e = file.create_dir_all(&RemotePath::parse(folder).unwrap()).await.unwrap_err();
            assert_eq!((e.kind, &e.message), (ErrorKind::AlreadyExists, &blocked));
        }
        // Below a file (was: "does not exist", which sent the reader looking for a folder).
        let under = LocalEndpoint::new(dir.path().join("file/in"));
        let e = under.list(&p).await.unwrap_err();
        let (root, file) = (dir.path().join("file/in"), dir.path().join("file"));
        let blocked = format!("the endpoint's root {} cannot be made: {} is a file, not a folder", root.display(), file.display());
        assert_eq!(e.message, blocked);
        let e = under.create_dir_all(&RemotePath::root()).await.unwrap_err();
        assert_eq!((e.kind, &e.message), (ErrorKind::AlreadyExists, &blocked));
        let fine = LocalEndpoint::new(dir.path());
        let e = fine.list(&p).await.unwrap_err();
        assert!(!e.message.contains("root"), "the root is fine: {}", e.message);
    }

    #[tokio::test]
    async fn a_file_where_a_folder_should_be_is_named() {
        // Before: "stat /copied/a.csv: protocol error: Not a directory", naming no culprit;
        // then "protocol error: /copied is a file, not a folder", where a local folder has no
        // protocol and the servers find nothing there.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("copied"), "x").unwrap();
        std::fs::write(dir.path().join("a.csv"), "x").unwrap();
        let ep = LocalEndpoint::new(dir.path());
        assert_eq!(ep.stat(&RemotePath::parse("/copied/sub/a.csv").unwrap()).await.unwrap(), None);
        let e = ep.open_write(&RemotePath::parse("/copied/sub/a.csv").unwrap()).await.err().unwrap();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::NotFound, "/copied is a file, not a folder"));
        // A rename names the file on its target's way (was: its source, a file as it should be).
        let e = ep.rename(&RemotePath::parse("/a.csv").unwrap(), &RemotePath::parse("/copied/a.csv").unwrap(), false).await.unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::NotFound, "/copied is a file, not a folder"));
        // As the server backends say it (the conformance suite checks them all).
        let e = ep.create_dir_all(&RemotePath::parse("/copied/sub").unwrap()).await.unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::AlreadyExists, "/copied exists and is not a folder"));
    }

    /// What took a listed file's name since the listing is not read: a link (here to a file
    /// outside the root) is not followed — it was, and its target delivered — and a FIFO is
    /// not waited on — an open for reading waits for a writer, and the run hung for ever.
    #[tokio::test]
    async fn a_link_or_a_fifo_in_a_file_s_place_is_refused_not_followed_or_waited_on() {
        let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir(dir.path().join("in")).unwrap();
        std::fs::write(outside.path().join("secret"), "not the partner's").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("in/link.csv")).unwrap();
        assert!(std::process::Command::new("mkfifo").arg(dir.path().join("in/fifo.csv")).status().unwrap().success());
        let ep = LocalEndpoint::new(dir.path());
        let within = std::time::Duration::from_secs(5);
        for (name, what) in [("link.csv", "a symbolic link"), ("fifo.csv", "a named pipe (FIFO)")] {
            let path = RemotePath::parse(&format!("in/{name}")).unwrap();
            let small = tokio::time::timeout(within, ep.read_small(&path, 100)).await.expect("not waited on");
            let streamed = tokio::time::timeout(within, ep.open_read(&path, 0)).await.expect("not waited on");
            for e in [small.unwrap_err(), streamed.err().unwrap()] {
                assert_eq!((e.kind, e.message), (ErrorKind::Protocol, format!("/in/{name} is {what}, not a file")));
            }
        }
    }

    /// A child that opens `file` as `redirect` (`>>` to write, `<` to read) and holds it until
    /// killed; returned once it has.
    fn holding(file: &Path, redirect: &str) -> std::process::Child {
        let script = format!("exec 3{redirect}\"$1\"; echo held; exec sleep 30");
        let mut child =
            std::process::Command::new("sh").args(["-c", &script, "sh"]).arg(file).stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        io::BufRead::read_line(&mut io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line, "held\n");
        child
    }

    /// A file another process still writes into (a writer pausing between writes, its size and
    /// time saying nothing) is told from a finished one: open for writing while a process
    /// holds it so, this one's descriptor included; not once it closed it, nor while it is
    /// only read. A file gone, or not a file (a FIFO: not waited on), cannot be told.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_file_some_process_has_open_for_writing_is_told_from_a_closed_one() {
        let dir = tempfile::tempdir().unwrap();
        let ep = LocalEndpoint::new(dir.path());
        let p = |name: &str| RemotePath::parse(name).unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "1\n").unwrap();
        assert_eq!(ep.writing(&[p("a.csv")]).await, [Writing::Closed]);
        let mut writer = holding(&file, ">>");
        let mut gone = holding(&dir.path().join("b.csv"), ">>");
        gone.kill().unwrap();
        gone.wait().unwrap();
        assert_eq!(ep.writing(&[p("a.csv"), p("b.csv")]).await, [Writing::Open, Writing::Closed]);
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert_eq!(ep.writing(&[p("a.csv")]).await, [Writing::Closed]);
        let mut reader = holding(&file, "<");
        assert_eq!(ep.writing(&[p("a.csv")]).await, [Writing::Closed]);
        reader.kill().unwrap();
        reader.wait().unwrap();
        // This process's own descriptor counts as any other's.
        let ours = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        assert_eq!(ep.writing(&[p("a.csv")]).await, [Writing::Open]);
        drop(ours);
        assert!(std::process::Command::new("mkfifo").arg(dir.path().join("fifo")).status().unwrap().success());
        let told = tokio::time::timeout(Duration::from_secs(5), ep.writing(&[p("a.csv"), p("gone.csv"), p("fifo")])).await;
        assert_eq!(told.expect("a FIFO is not waited on"), [Writing::Closed, Writing::Unknown, Writing::Unknown]);
    }

    /// A writer opening the file while it is being checked breaks the lease held for that
    /// moment: it waits only that long (not the kernel's 45 s lease-break time), and the
    /// signal the kernel sends this process (`SIGURG`, ignored; not `SIGIO`, which would end
    /// it) harms nothing. Then checked over and over while a writer opens it over and over.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_writer_opening_the_file_while_it_is_checked_neither_waits_nor_kills_the_checker() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.csv");
        std::fs::write(&file, "").unwrap();
        let started = std::time::Instant::now();
        let mut writer = None;
        let told = leased(&file, || {
            let child = std::process::Command::new("sh").args(["-c", "echo 1 >> \"$1\"", "sh"]).arg(&file).spawn().unwrap();
            // Its open waits for the lease to be given back (the kernel signalled us).
            std::thread::sleep(Duration::from_millis(300));
            writer = Some(child);
        });
        assert_eq!(told, Writing::Closed);
        let waited = writer.unwrap().wait().unwrap();
        assert!(waited.success() && started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n");
        std::fs::write(&file, "").unwrap();
        let mut writer = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300 ]; do echo $i >> \"$1\"; i=$((i+1)); done", "sh"])
            .arg(&file)
            .spawn()
            .unwrap();
        let (mut open, mut closed) = (0, 0);
        let done = loop {
            match open_for_writing(&file) {
                Writing::Open => open += 1,
                Writing::Closed => closed += 1,
                Writing::Unknown => panic!("leases work here"),
            }
            if let Some(status) = writer.try_wait().unwrap() {
                break status;
            }
            assert!(started.elapsed() < Duration::from_secs(20), "the writer waited on the checks ({open} open, {closed} closed)");
        };
        assert!(done.success());
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 300);
        assert!(open + closed > 0);
        // Our own writer thread too: its opens break leases this very process holds.
        let writing = std::thread::spawn({
            let file = file.clone();
            move || (0..300).for_each(|_| drop(std::fs::OpenOptions::new().append(true).open(&file).unwrap()))
        });
        while !writing.is_finished() {
            open_for_writing(&file);
            assert!(started.elapsed() < Duration::from_secs(40), "the writer thread waited on the checks");
        }
        writing.join().unwrap();
    }

    /// A file written or renamed onto a folder's name, and a name longer than a file system
    /// allows: said so, with the limit, not as the OS's bare "Is a directory" or "File name
    /// too long" with the kind `protocol`.
    #[tokio::test]
    async fn a_folder_in_a_file_s_place_and_a_name_too_long_are_said_so() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a.csv")).unwrap();
        std::fs::write(dir.path().join("t.tmp"), "x").unwrap();
        let ep = LocalEndpoint::new(dir.path());
        let p = |s: &str| RemotePath::parse(s).unwrap();
        let folder = "/a.csv is a folder, and a file cannot replace a folder; remove or rename that folder, or deliver under another name";
        let e = ep.open_write(&p("/a.csv")).await.err().unwrap();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::AlreadyExists, folder));
        let e = ep.write_small(&p("/a.csv"), b"x").await.unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::AlreadyExists, folder));
        let e = ep.rename(&p("/t.tmp"), &p("/a.csv"), true).await.unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::AlreadyExists, folder));
        let long = "n".repeat(300);
        let e = ep.open_write(&p(&format!("/{long}.csv"))).await.err().unwrap();
        let said = format!("the name `{}…` is 304 bytes long, more than the 255 bytes a file system allows for a name", "n".repeat(40));
        assert_eq!((e.kind, e.message), (ErrorKind::Protocol, said.clone()));
        let e = ep.rename(&p("/t.tmp"), &p(&format!("/{long}.csv")), false).await.unwrap_err();
        assert_eq!((e.kind, e.message), (ErrorKind::Protocol, said));
        assert!(dir.path().join("t.tmp").exists(), "nothing moved");
    }

    #[test]
    fn messages_give_the_os_reason_without_its_number() {
        assert_eq!(io_reason(&io::Error::from_raw_os_error(libc::ENOTDIR)), "Not a directory");
        assert_eq!(io_reason(&io::Error::other("not a regular file")), "not a regular file");
    }

    #[test]
    fn a_name_too_long_or_a_folder_for_a_file_is_the_file_s_trouble_not_the_disk_s() {
        let kind = |errno| io_kind(&io::Error::from_raw_os_error(errno));
        assert_eq!(kind(libc::ENAMETOOLONG), ErrorKind::Protocol);
        // Through a file: nothing there, as the servers say.
        assert_eq!(kind(libc::ENOTDIR), ErrorKind::NotFound);
        // A folder in a file's place: the name is taken (was `Protocol`, "Is a directory").
        assert_eq!(kind(libc::EISDIR), ErrorKind::AlreadyExists);
        assert_eq!(kind(libc::ENOSPC), ErrorKind::NoSpace);
        assert_eq!(kind(libc::EDQUOT), ErrorKind::NoSpace);
        assert_eq!(kind(libc::EIO), ErrorKind::LocalIo);
        assert_eq!(kind(libc::EACCES), ErrorKind::PermissionDenied);
        // Was `LocalIo`: a sink on a read-only mount stopped the whole run, its other sinks
        // and files included.
        assert_eq!(kind(libc::EROFS), ErrorKind::PermissionDenied);
    }
}
