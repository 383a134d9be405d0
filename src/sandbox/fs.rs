//! The served folder's file operations, as the SFTP and FTP servers need them.
//!
//! Owns what each request does on disk and which kind of failure it is: a missing file is
//! [`FsErrorKind::NotFound`], the OS's or the jail's refusal `Denied`, everything else
//! `Failure` with the OS's reason. Each protocol turns the kind into its own code (SFTP
//! `NoSuchFile`/`PermissionDenied`/`Failure`, FTP 550/553); wharf's clients decide retry or
//! fail from those codes, so they must be right. Every path goes through [`Jail`] first. All
//! functions block (std::fs): the servers run them on tokio's blocking threads. Nothing here
//! knows about sessions or handles.

use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use russh_sftp::protocol::{FileAttributes, OpenFlags};

use super::jail::{Follow, Jail, JailError};

/// Longest `Data` answer: the russh-sftp client refuses packets over 256 KiB (with the
/// length, type, id and data length fields: 13 bytes), OpenSSH's over 256 KiB too.
pub const MAX_READ: u32 = 256 * 1024 - 1024;

/// Runs blocking work (a [`Folder`] operation) on tokio's blocking threads.
pub async fn blocking<T, F>(f: F) -> Result<T, FsError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, FsError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(FsError { kind: FsErrorKind::Failure, path: None, reason: format!("internal error: {e}") }),
    }
}

/// The served folder.
#[derive(Debug, Clone)]
pub struct Folder {
    jail: Jail,
}

/// What kind of failure an operation met, for the protocol to turn into its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsErrorKind {
    /// No such file or folder (or a missing parent).
    NotFound,
    /// The OS refused, or the path leads out of the served folder.
    Denied,
    /// Anything else: exists already, not a file, the OS's other errors.
    Failure,
}

/// A failed operation: on which of the client's paths (never the one on disk), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsError {
    pub kind: FsErrorKind,
    /// The client's path (`None`: not about one path).
    pub path: Option<String>,
    /// Why, without the path: `No such file or directory`.
    pub reason: String,
}

impl FsError {
    fn at(kind: FsErrorKind, path: &str, reason: impl Into<String>) -> FsError {
        FsError { kind, path: Some(path.to_string()), reason: reason.into() }
    }

    /// The path and the reason (`/in/a.csv: No such file or directory`), for a protocol whose
    /// replies do not name the path otherwise (FTP's 550).
    pub fn message(&self) -> String {
        match &self.path {
            Some(p) => format!("{p}: {}", self.reason),
            None => self.reason.clone(),
        }
    }
}

/// A failed operation on `path` (the client's path, never the one on disk).
///
/// The kinds follow OpenSSH's `sftp-server` (`errno_to_portable`), which wharf's clients are
/// written against: a path through a file (`ENOTDIR`) or a link loop (`ELOOP`) is no such
/// file, not a bare failure (which a client reads as a full disk); a folder where a file is
/// wanted (`EISDIR`) or a folder that is not empty stays a failure. (OpenSSH's
/// `BadMessage` for `EINVAL`/`ENAMETOOLONG` has no kind here: a failure.)
fn status(path: &str, e: io::Error) -> FsError {
    let kind = match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => FsErrorKind::NotFound,
        _ if e.raw_os_error() == Some(libc::ELOOP) => FsErrorKind::NotFound,
        io::ErrorKind::PermissionDenied => FsErrorKind::Denied,
        _ => FsErrorKind::Failure,
    };
    // io::Error's text names no path; the client's own path is safe to echo.
    FsError::at(kind, path, crate::endpoint::local::io_reason(&e))
}

fn refused(path: &str, why: &str) -> FsError {
    FsError::at(FsErrorKind::Failure, path, why)
}

/// The jail's refusal of the client's `path`.
pub fn jail_error(path: &str, e: JailError) -> FsError {
    match e {
        JailError::Escape => FsError::at(FsErrorKind::Denied, path, "outside the served folder"),
        JailError::Io(e) => status(path, e),
    }
}

impl Folder {
    pub fn new(jail: Jail) -> Self {
        Folder { jail }
    }

    pub fn root(&self) -> &Path {
        self.jail.root()
    }

    /// The path on disk, or the status that refuses it.
    fn real(&self, path: &str, follow: Follow) -> Result<PathBuf, FsError> {
        self.jail.resolve(path, follow).map_err(|e| jail_error(path, e))
    }

    /// `stat` (follow) or `lstat`.
    pub fn metadata(&self, path: &str, follow: Follow) -> Result<Metadata, FsError> {
        let real = self.real(path, follow)?;
        let md = if follow == Follow::Yes { fs::metadata(&real) } else { fs::symlink_metadata(&real) };
        md.map_err(|e| status(path, e))
    }

    /// Opens a regular file as `flags` ask; `mode` for a file it creates (0666 & umask when
    /// the client sent none). Folders, devices and pipes are refused before opening (opening
    /// a pipe would block a thread until someone writes to it).
    pub fn open(&self, path: &str, flags: OpenFlags, mode: Option<u32>) -> Result<File, FsError> {
        let real = self.real(path, Follow::Yes)?;
        match fs::metadata(&real) {
            Ok(md) if md.is_dir() => return Err(refused(path, "is a folder")),
            Ok(md) if !md.is_file() => return Err(refused(path, "not a regular file")),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(status(path, e)),
        }
        let mut opts = OpenOptions::from(flags);
        if !flags.intersects(OpenFlags::READ | OpenFlags::WRITE | OpenFlags::APPEND) {
            opts.read(true);
        }
        opts.mode(mode.map_or(0o666, |m| m & 0o7777));
        opts.open(&real).map_err(|e| status(path, e))
    }

    /// The folder's entries (not `.` and `..`), read lazily.
    pub fn read_dir(&self, path: &str) -> Result<fs::ReadDir, FsError> {
        let real = self.real(path, Follow::Yes)?;
        fs::read_dir(real).map_err(|e| status(path, e))
    }

    pub fn remove_file(&self, path: &str) -> Result<(), FsError> {
        let real = self.real(path, Follow::No)?;
        if real == self.jail.root() {
            return Err(refused(path, "is the served folder"));
        }
        fs::remove_file(real).map_err(|e| status(path, e))
    }

    pub fn create_dir(&self, path: &str, mode: Option<u32>) -> Result<(), FsError> {
        let real = self.real(path, Follow::No)?;
        fs::DirBuilder::new().mode(mode.map_or(0o777, |m| m & 0o7777)).create(real).map_err(|e| status(path, e))
    }

    pub fn remove_dir(&self, path: &str) -> Result<(), FsError> {
        let real = self.real(path, Follow::No)?;
        if real == self.jail.root() {
            return Err(refused(path, "is the served folder"));
        }
        fs::remove_dir(real).map_err(|e| status(path, e))
    }

    /// SFTP v3 `RENAME` never replaces (`Failure` when `to` exists, as OpenSSH answers);
    /// `posix-rename@openssh.com` (`replace`) replaces atomically.
    pub fn rename(&self, from: &str, to: &str, replace: bool) -> Result<(), FsError> {
        let (src, dst) = (self.real(from, Follow::No)?, self.real(to, Follow::No)?);
        if src == self.jail.root() || dst == self.jail.root() {
            return Err(refused(from, "the served folder cannot be renamed"));
        }
        fs::symlink_metadata(&src).map_err(|e| status(from, e))?;
        if !replace && fs::symlink_metadata(&dst).is_ok() {
            // Checked, then renamed: a local writer could slip in between, which a test
            // server can live with.
            return Err(refused(to, "already exists"));
        }
        fs::rename(&src, &dst).map_err(|e| status(to, e))
    }

    /// `SETSTAT`: size (truncate or extend), permissions, access and modification times.
    /// Owner and group are left alone (the sandbox runs as one user).
    pub fn set_attrs(&self, path: &str, attrs: &FileAttributes) -> Result<(), FsError> {
        let real = self.real(path, Follow::Yes)?;
        if let Some(size) = attrs.size {
            let f = OpenOptions::new().write(true).open(&real).map_err(|e| status(path, e))?;
            f.set_len(size).map_err(|e| status(path, e))?;
        }
        if let Some(mode) = attrs.permissions {
            fs::set_permissions(&real, fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| status(path, e))?;
        }
        if attrs.atime.is_some() || attrs.mtime.is_some() {
            let f = File::options().write(true).open(&real).or_else(|_| File::open(&real)).map_err(|e| status(path, e))?;
            set_times(&f, attrs).map_err(|e| status(path, e))?;
        }
        Ok(())
    }

    /// `FSETSTAT` on an open file.
    pub fn set_file_attrs(file: &File, path: &str, attrs: &FileAttributes) -> Result<(), FsError> {
        if let Some(size) = attrs.size {
            file.set_len(size).map_err(|e| status(path, e))?;
        }
        if let Some(mode) = attrs.permissions {
            file.set_permissions(fs::Permissions::from_mode(mode & 0o7777)).map_err(|e| status(path, e))?;
        }
        set_times(file, attrs).map_err(|e| status(path, e))
    }

    /// The client path a symlink points to, when it points inside the folder.
    pub fn read_link(&self, path: &str) -> Result<String, FsError> {
        let real = self.real(path, Follow::No)?;
        fs::read_link(&real).map_err(|e| status(path, e))?;
        let denied = || FsError::at(FsErrorKind::Denied, path, "points outside the served folder");
        let target = real.canonicalize().map_err(|_| denied())?;
        let rel = target.strip_prefix(self.jail.root()).map_err(|_| denied())?;
        Ok(format!("/{}", rel.to_string_lossy()))
    }
}

fn set_times(file: &File, attrs: &FileAttributes) -> io::Result<()> {
    let at = |s: u32| UNIX_EPOCH + Duration::from_secs(u64::from(s));
    let mut times = fs::FileTimes::new();
    if let Some(a) = attrs.atime {
        times = times.set_accessed(at(a));
    }
    if let Some(m) = attrs.mtime {
        times = times.set_modified(at(m));
    }
    if attrs.atime.is_some() || attrs.mtime.is_some() { file.set_times(times) } else { Ok(()) }
}

/// SFTP v3 attributes of a file: size, owner, mode with the file type bits, whole-second
/// times (v3 carries u32 seconds; times outside that range are clamped).
pub fn attrs_of(md: &Metadata) -> FileAttributes {
    let secs = |t: i64| u32::try_from(t.max(0)).unwrap_or(u32::MAX);
    FileAttributes {
        size: Some(md.len()),
        uid: Some(md.uid()),
        gid: Some(md.gid()),
        permissions: Some(md.mode()),
        atime: Some(secs(md.atime())),
        mtime: Some(secs(md.mtime())),
        ..Default::default()
    }
}

/// Reads up to `len` bytes (at most [`MAX_READ`]) at `offset`; fewer only at the end of the
/// file, none at or past it. Positioned reads: requests in flight need no shared cursor.
pub fn read_at(file: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len.min(MAX_READ) as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Writes all of `data` at `offset` (positioned, like [`read_at`]).
pub fn write_at(file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    file.write_all_at(data, offset)
}

/// A failed read or write on an open file.
pub fn io_status(path: &str, e: io::Error) -> FsError {
    status(path, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> (tempfile::TempDir, Folder) {
        let dir = tempfile::tempdir().unwrap();
        let f = Folder::new(Jail::new(dir.path()).unwrap());
        (dir, f)
    }

    fn code(r: Result<impl std::fmt::Debug, FsError>) -> FsErrorKind {
        r.expect_err("an error").kind
    }

    #[test]
    fn statuses_name_the_cause() {
        let (_d, f) = folder();
        assert_eq!(code(f.metadata("/nope", Follow::Yes)), FsErrorKind::NotFound);
        assert_eq!(code(f.metadata("/../etc/passwd", Follow::Yes)), FsErrorKind::Denied);
        assert_eq!(code(f.remove_file("/nope")), FsErrorKind::NotFound);
        assert_eq!(code(f.open("/no/such/dir/x", OpenFlags::WRITE | OpenFlags::CREATE, None)), FsErrorKind::NotFound);
        f.create_dir("/d", None).unwrap();
        assert_eq!(code(f.create_dir("/d", None)), FsErrorKind::Failure, "exists");
        assert_eq!(code(f.open("/d", OpenFlags::READ, None)), FsErrorKind::Failure, "a folder is not opened as a file");
        assert_eq!(code(f.remove_file("/d")), FsErrorKind::Failure);
        assert_eq!(code(f.remove_dir("/")), FsErrorKind::Failure);
        let msg = f.metadata("/nope", Follow::Yes).unwrap_err().message();
        assert!(msg.starts_with("/nope: ") && !msg.contains(&*_d.path().to_string_lossy()), "{msg}");
        assert_eq!(msg, "/nope: No such file or directory", "the OS's reason, without Rust's \"(os error 2)\"");
    }

    #[test]
    fn statuses_follow_openssh() {
        let (d, f) = folder();
        std::fs::write(d.path().join("f"), "x").unwrap();
        // A path through a file: before, a bare Failure, read by the client as a full disk.
        assert_eq!(code(f.metadata("/f/x", Follow::Yes)), FsErrorKind::NotFound);
        assert_eq!(code(f.open("/f/x", OpenFlags::WRITE | OpenFlags::CREATE, None)), FsErrorKind::NotFound);
        assert_eq!(code(f.create_dir("/f/sub", None)), FsErrorKind::NotFound);
        assert_eq!(code(f.remove_file("/f/x")), FsErrorKind::NotFound);
        let e = f.metadata("/f/x", Follow::Yes).unwrap_err();
        assert_eq!(e.message(), "/f/x: Not a directory", "the OS's reason is kept");
        // A folder where a file is wanted, a folder not empty: failures, as OpenSSH says.
        f.create_dir("/d", None).unwrap();
        std::fs::write(d.path().join("d/in"), "x").unwrap();
        assert_eq!(code(f.open("/d", OpenFlags::WRITE, None)), FsErrorKind::Failure);
        assert_eq!(code(f.remove_dir("/d")), FsErrorKind::Failure);
    }

    #[test]
    fn rename_refuses_or_replaces() {
        let (d, f) = folder();
        std::fs::write(d.path().join("a"), "new").unwrap();
        std::fs::write(d.path().join("b"), "old").unwrap();
        assert_eq!(code(f.rename("/a", "/b", false)), FsErrorKind::Failure);
        assert_eq!(std::fs::read_to_string(d.path().join("b")).unwrap(), "old");
        f.rename("/a", "/b", true).unwrap();
        assert_eq!(std::fs::read_to_string(d.path().join("b")).unwrap(), "new");
        assert_eq!(code(f.rename("/a", "/c", false)), FsErrorKind::NotFound, "source gone");
    }

    #[test]
    fn positioned_io_and_attrs() {
        let (d, f) = folder();
        let file = f.open("/x.bin", OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE, None).unwrap();
        // Out of order, as pipelined writes may be applied.
        write_at(&file, 3, b"def").unwrap();
        write_at(&file, 0, b"abc").unwrap();
        drop(file);
        assert_eq!(std::fs::read(d.path().join("x.bin")).unwrap(), b"abcdef");
        let file = f.open("/x.bin", OpenFlags::READ, None).unwrap();
        assert_eq!(read_at(&file, 2, 100).unwrap(), b"cdef");
        assert!(read_at(&file, 6, 100).unwrap().is_empty());
        assert_eq!(read_at(&file, 0, u32::MAX).unwrap().len(), 6, "capped, never a 4 GiB buffer");
        let md = f.metadata("/x.bin", Follow::Yes).unwrap();
        let a = attrs_of(&md);
        assert_eq!(a.size, Some(6));
        assert!(a.is_regular() && !a.is_dir());
        f.set_attrs("/x.bin", &FileAttributes { size: Some(2), mtime: Some(1_000_000), atime: Some(1_000_000), ..Default::default() })
            .unwrap();
        let md = f.metadata("/x.bin", Follow::Yes).unwrap();
        assert_eq!((md.len(), md.mtime()), (2, 1_000_000));
    }
}
