//! `sftp`: a folder on an SSH server, behind the same [`Endpoint`] contract as `local`.
//!
//! Owns the mapping of [`RemotePath`]s onto the server-side root, lazily made SSH
//! connections (re-made once, transparently, when one died; up to `max_connections`, spread
//! by `pool`), and the translation of SFTP status codes and connection failures into
//! [`ErrorKind`]s. Connecting and host-key trust live in `connect` and `hostkey`. Like every
//! endpoint it has no policy: no temp names, no retries beyond one reconnect, no
//! verification.

mod algorithms;
mod behind;
mod connect;
mod facts;
mod hostkey;
mod login;
mod pool;
mod refusal;
mod small;
mod start;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use russh::keys::PrivateKey;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::fs::{File, Metadata};
use russh_sftp::protocol::{FileType, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

pub use hostkey::{
    KnownHostsFile, ScannedKey, Verdict, add_to_known_hosts, default_known_hosts, known_hosts_name, replace_in_known_hosts, scan_host_key,
    trust_command,
};

use self::behind::WriteBehind;
use self::connect::Conn;
pub use self::connect::KeyProblem;
use self::pool::{Busy, Pool, Use};
use super::{
    Capabilities, Endpoint, EndpointError, Entry, EntryKind, ErrorKind, Listing, Op, ReadStream, RemotePath, ServerFacts, SkippedName,
    Special, WriteStream, not_found_where,
};
use crate::config::flow::SftpSpec;
use crate::text::{Keep, SERVER_TEXT, one_line};

/// An SFTP endpoint. Cheap to create: nothing happens until the first operation (or
/// [`connect_now`](Self::connect_now)).
#[derive(Clone)]
pub struct SftpEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    spec: SftpSpec,
    label: String,
    pool: Arc<Pool>,
    key: tokio::sync::OnceCell<Option<Arc<PrivateKey>>>,
    /// Learnt at connect time; `false` until the first connection.
    atomic_replace: AtomicBool,
    /// The type of the server key a pinned fingerprint matched, once a connection had to
    /// look past the first key shown: offered first from then on.
    pinned_type: std::sync::Mutex<Option<russh::keys::Algorithm>>,
}

impl fmt::Debug for SftpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SftpEndpoint").field("endpoint", &self.inner.label).field("root", &self.inner.spec.root).finish_non_exhaustive()
    }
}

/// `host:port`, with IPv6 addresses in brackets.
fn host_port(host: &str, port: u16) -> String {
    super::reach::host_port(host, port)
}

impl SftpEndpoint {
    /// An endpoint for `spec`; does no I/O.
    pub fn new(spec: SftpSpec) -> Self {
        let label = format!("sftp {}@{}", spec.user, host_port(&spec.host, spec.port));
        SftpEndpoint {
            inner: Arc::new(Inner {
                pool: Pool::new(label.clone(), spec.max_connections),
                spec,
                label,
                key: tokio::sync::OnceCell::new(),
                atomic_replace: AtomicBool::new(false),
                pinned_type: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Loads the private key now (once; connections use it), so a wrong passphrase or a key
    /// that cannot be read is told before anything connects, at its field of the flow file
    /// (`engine::endpoints::open_all`). Nothing to do for password logins.
    pub async fn load_key_now(&self) -> Result<(), KeyProblem> {
        self.inner.key.get_or_try_init(|| connect::load_key(&self.inner.spec)).await.map(drop)
    }

    /// Connects now (if not connected), so an unreachable host, a refused login or an
    /// untrusted host key fails early with a clear message.
    pub async fn connect_now(&self) -> Result<(), EndpointError> {
        self.inner.connection(&self.inner.pool.pick(Use::Brief)).await.map(drop)
    }

    /// `{root}/{path}` on the server.
    fn full(&self, p: &RemotePath) -> String {
        p.on_server(&self.inner.spec.root)
    }

    /// Runs `f` on a connection (see `pool`). A failure that means the connection is gone
    /// drops it, and with `retry` the operation is tried once more on a fresh connection —
    /// unless this call already made one (one reconnect per operation, then `Transient`).
    async fn run<T, F, Fut>(&self, op: Op, path: &RemotePath, retry: bool, f: F) -> Result<T, EndpointError>
    where
        F: Fn(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        self.attempt(op, path, retry, Use::Brief, f).await.map(|(v, _)| v)
    }

    /// [`run`](Self::run), keeping the connection's slot busy for the caller (an open file).
    async fn attempt<T, F, Fut>(&self, op: Op, path: &RemotePath, retry: bool, usage: Use, f: F) -> Result<(T, Busy), EndpointError>
    where
        F: Fn(Arc<Conn>) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        let mut reconnected = false;
        loop {
            let busy = self.inner.pool.pick(usage);
            let (conn, fresh) = match self.inner.connection(&busy).await {
                Ok(c) => c,
                Err(e) if self.inner.pool.give_up(&busy, &e) => continue,
                Err(e) => return Err(e.unconnected_for(op, path)),
            };
            reconnected |= fresh;
            match f(conn.clone()).await {
                Ok(v) => return Ok((v, busy)),
                Err(fail) => {
                    let (kind, message) = fail.classify();
                    if kind == ErrorKind::Transient {
                        self.inner.pool.forget(&conn).await;
                        if retry && !reconnected {
                            tracing::info!(endpoint = %self.inner.label, op = %op, path = %path, error = %message, "Connection lost; reconnecting once.");
                            continue;
                        }
                    }
                    let mut e = self.inner.err(kind, op, path, message);
                    if kind == ErrorKind::NotFound
                        && matches!(op, Op::List | Op::CreateDir)
                        && let Some(hint) = refusal::root_missing(&conn, &self.inner.spec.root).await
                    {
                        e.message = format!("{}; {hint}", e.message);
                    }
                    return Err(e);
                }
            }
        }
    }

    async fn lstat(&self, c: &Conn, full: &str) -> Result<Option<Metadata>, Fail> {
        missing_is_none(c.sftp.symlink_metadata(full).await)
    }

    /// Whether `full` is a folder, or a symbolic link to one (an admin's link to another disk
    /// is a folder to write into like any other).
    async fn is_dir(&self, c: &Conn, full: &str) -> Result<Option<bool>, Fail> {
        Ok(missing_is_none(c.sftp.metadata(full).await)?.map(|md| md.file_type() == FileType::Dir))
    }
}

fn missing_is_none(r: Result<Metadata, SftpError>) -> Result<Option<Metadata>, Fail> {
    match r {
        Ok(md) => Ok(Some(md)),
        Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Inner {
    async fn key(&self) -> Result<Option<Arc<PrivateKey>>, EndpointError> {
        self.key.get_or_try_init(|| connect::load_key(&self.spec)).await.cloned().map_err(|p| {
            let msg = format!("cannot load private key {}: {}", p.path.display(), p.cause);
            EndpointError::new(ErrorKind::Config, Op::Connect, &self.label, None, msg)
        })
    }

    /// The live connection of `busy`'s slot, made (again) when there is none or it died; and
    /// whether it was made just now.
    async fn connection(&self, busy: &Busy) -> Result<(Arc<Conn>, bool), EndpointError> {
        let slot = busy.slot();
        let mut conn = slot.conn.lock().await;
        if let Some(c) = conn.as_ref() {
            if !c.is_closed() {
                return Ok((c.clone(), false));
            }
            tracing::info!(endpoint = %self.label, "SSH connection closed; reconnecting.");
        }
        *conn = None;
        slot.set_up(false);
        let key = self.key().await?;
        let c = Arc::new(connect::connect(&self.spec, key, &self.label, &self.pinned_type).await?);
        self.atomic_replace.store(c.posix_rename, Ordering::Relaxed);
        tracing::debug!(endpoint = %self.label, "Connected.");
        *conn = Some(c.clone());
        slot.set_up(true);
        Ok((c, true))
    }

    fn err(&self, kind: ErrorKind, op: Op, path: &RemotePath, message: String) -> EndpointError {
        EndpointError::new(kind, op, self.label.clone(), Some(path), not_found_where(kind, message, path, &self.spec.root))
    }
}

/// A failed SFTP step, before it becomes an [`EndpointError`].
enum Fail {
    Sftp(SftpError),
    Io(io::Error),
    Kind(ErrorKind, String),
}

impl From<SftpError> for Fail {
    fn from(e: SftpError) -> Self {
        Fail::Sftp(e)
    }
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        Fail::Io(e)
    }
}

impl Fail {
    /// Decided by status code and error variant, never by message text.
    fn classify(self) -> (ErrorKind, String) {
        match self {
            Fail::Kind(k, m) => (k, m),
            Fail::Sftp(e) => sftp_kind(e),
            Fail::Io(e) => {
                // `File` wraps russh-sftp errors in io::Error; look inside to keep the kind.
                if let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<SftpError>()) {
                    return sftp_kind(inner.clone());
                }
                match e.kind() {
                    io::ErrorKind::TimedOut
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof => (ErrorKind::Transient, e.to_string()),
                    // A server status on a file handle (disk full, quota…): the server refused.
                    _ => (ErrorKind::Protocol, e.to_string()),
                }
            }
        }
    }
}

fn sftp_kind(e: SftpError) -> (ErrorKind, String) {
    let kind = match &e {
        SftpError::Status(s) => match s.status_code {
            StatusCode::NoSuchFile => ErrorKind::NotFound,
            StatusCode::PermissionDenied => ErrorKind::PermissionDenied,
            StatusCode::NoConnection | StatusCode::ConnectionLost => ErrorKind::Transient,
            _ => ErrorKind::Protocol,
        },
        // Timeouts, a broken transport, and "session closed" / "sender dropped" (the
        // channel went away under a request) all mean the connection is gone.
        SftpError::Timeout | SftpError::IO(_) | SftpError::UnexpectedBehavior(_) => ErrorKind::Transient,
        SftpError::UnexpectedPacket | SftpError::Limited(_) => ErrorKind::Protocol,
    };
    let msg = match &e {
        SftpError::Timeout => "no answer from the server in time".to_string(),
        SftpError::Status(s) if s.error_message.is_empty() || s.error_message == s.status_code.to_string() => s.status_code.to_string(),
        // The server's own words, on one line: they reach logs, run reports and notices.
        SftpError::Status(s) => format!("{} ({})", one_line(&s.error_message, SERVER_TEXT, Keep::Start), s.status_code),
        e => e.to_string(),
    };
    (kind, msg)
}

fn entry_from(path: RemotePath, md: &Metadata) -> Entry {
    let kind = match md.file_type() {
        FileType::File => EntryKind::File,
        FileType::Dir => EntryKind::Dir,
        FileType::Symlink => EntryKind::Other(Special::Symlink),
        FileType::Other => EntryKind::Other(md.permissions.map_or(Special::Unknown, Special::from_mode)),
    };
    Entry {
        path,
        kind,
        size: if kind == EntryKind::File { md.size.unwrap_or(0) } else { 0 },
        mtime: md.mtime.map(|s| UNIX_EPOCH + Duration::from_secs(u64::from(s))),
    }
}

/// The file an open handle reads, from its `FSTAT` attributes: `None` when the server left
/// the size out (SFTP makes every attribute optional), since a guessed size would read as
/// another version. The kind is a file: it was opened for reading.
fn opened_from(path: &RemotePath, md: &Metadata) -> Option<Entry> {
    Some(Entry {
        path: path.clone(),
        kind: EntryKind::File,
        size: md.size?,
        mtime: md.mtime.map(|s| UNIX_EPOCH + Duration::from_secs(u64::from(s))),
    })
}

#[async_trait]
impl Endpoint for SftpEndpoint {
    fn describe(&self) -> String {
        self.inner.label.clone()
    }

    /// `atomic_replace` is what the server offered on the last connection (`false` before the
    /// first one: call [`SftpEndpoint::connect_now`] first to know).
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            mtime_precision: Duration::from_secs(1),
            atomic_replace: self.inner.atomic_replace.load(Ordering::Relaxed),
            trailing_space_names: true,
            local_files: false,
            describes_opened: true,
            write_replaces: true,
        }
    }

    async fn list(&self, dir: &RemotePath) -> Result<Listing, EndpointError> {
        let full = &self.full(dir);
        let rd = self
            .run(Op::List, dir, true, |c| async move {
                match c.sftp.read_dir(full).await {
                    Ok(rd) => Ok(rd),
                    Err(e) => Err(refusal::listing(&c, full, dir, e.into()).await),
                }
            })
            .await?;
        let mut out = Listing::default();
        for de in rd {
            let name = de.file_name();
            if name == "." || name == ".." {
                continue;
            }
            if name.contains(char::REPLACEMENT_CHARACTER) {
                // russh-sftp decodes non-UTF-8 names lossily: such a name cannot be opened again.
                out.skipped.push(SkippedName::not_utf8(dir, &name));
                continue;
            }
            match dir.join(&name) {
                Ok(path) => out.entries.push(entry_from(path, &de.metadata())),
                Err(e) => out.skipped.push(SkippedName::refused(dir, &name, &e)),
            }
        }
        out.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    async fn stat(&self, path: &RemotePath) -> Result<Option<Entry>, EndpointError> {
        let full = &self.full(path);
        let md = self.run(Op::Stat, path, true, |c| async move { self.lstat(&c, full).await }).await?;
        Ok(md.map(|md| entry_from(path.clone(), &md)))
    }

    async fn open_read(&self, path: &RemotePath, offset: u64) -> Result<Box<dyn ReadStream>, EndpointError> {
        let full = &self.full(path);
        let ((file, conn), busy) = self
            .attempt(Op::Read, path, true, Use::Stream, |c| async move {
                // The file's attributes asked in the same flight as the OPEN, right after it
                // (the server answers in order): no round trip of their own. Replaced in
                // between, the file reads as replaced, and waits for the next run — never the
                // other way round. Not having them only means not knowing.
                let (f, md) = futures::join!(c.sftp.open(full), c.sftp.metadata(full));
                let md = md.ok();
                if md.as_ref().is_some_and(|md| md.file_type() == FileType::Dir) {
                    // OpenSSH opens a folder, and refuses its first read with a bare FAILURE.
                    return Err(refusal::a_folder(path));
                }
                let mut f = f?;
                if offset > 0 {
                    f.seek(io::SeekFrom::Start(offset)).await?;
                }
                Ok(((f, md), c))
            })
            .await?;
        let (file, md) = file;
        let opened = md.and_then(|md| opened_from(path, &md));
        Ok(Box::new(SftpRead { file, conn, inner: self.inner.clone(), path: path.clone(), opened, _busy: busy }))
    }

    async fn read_small(&self, path: &RemotePath, limit: usize) -> Result<(Vec<u8>, Option<Entry>), EndpointError> {
        let full = &self.full(path);
        let (data, md) = self
            .run(Op::Read, path, true, |c| async move {
                match small::read_small(c.file_channel().await?, full, limit).await {
                    Ok(read) => Ok(read),
                    Err(e) => Err(refusal::read(&c, full, path, e.into()).await),
                }
            })
            .await?;
        Ok((data, md.and_then(|md| opened_from(path, &md))))
    }

    async fn write_small(&self, path: &RemotePath, data: &[u8]) -> Result<Option<u64>, EndpointError> {
        let full = &self.full(path);
        self.run(Op::Write, path, true, |c| async move {
            match small::write_small(c.file_channel().await?, full, data, c.fsync).await {
                Ok(stored) => Ok(stored),
                Err(e) => Err(refusal::write(&c, full, path, e.into()).await),
            }
        })
        .await
    }

    async fn open_write(&self, path: &RemotePath) -> Result<Box<dyn WriteStream>, EndpointError> {
        let full = &self.full(path);
        let ((file, conn), busy) = self
            .attempt(Op::Write, path, true, Use::Stream, |c| async move {
                match c.sftp.create(full).await {
                    Ok(f) => Ok((f, c)),
                    Err(e) => Err(refusal::write(&c, full, path, e.into()).await),
                }
            })
            .await?;
        let behind = WriteBehind::new(&conn, full);
        Ok(Box::new(SftpWrite { file, conn, inner: self.inner.clone(), path: path.clone(), full: full.clone(), behind, _busy: busy }))
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath, replace: bool) -> Result<(), EndpointError> {
        let (src, dst) = (&self.full(from), &self.full(to));
        // Not retried: the first attempt may have happened before the connection died.
        self.run(Op::Rename, from, false, |c| async move {
            if replace {
                if c.posix_rename {
                    return match connect::posix_rename(c.file_channel().await?, src, dst).await {
                        Ok(()) => Ok(()),
                        Err(e) => Err(refusal::folder_in_the_way(&c, dst, to, e.into()).await),
                    };
                }
                // No atomic replace on this server: make room, then rename.
                match c.sftp.remove_file(dst).await {
                    Ok(()) => {}
                    Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {}
                    Err(e) => return Err(refusal::folder_in_the_way(&c, dst, to, e.into()).await),
                }
            }
            match c.sftp.rename(src, dst).await {
                Ok(()) => Ok(()),
                // OpenSSH refuses to rename onto an existing name with a bare FAILURE.
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Failure && self.lstat(&c, dst).await?.is_some() => {
                    Err(Fail::Kind(ErrorKind::AlreadyExists, format!("{to} already exists")))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn remove(&self, path: &RemotePath) -> Result<(), EndpointError> {
        let full = &self.full(path);
        self.run(Op::Remove, path, false, |c| async move { Ok(c.sftp.remove_file(full).await?) }).await
    }

    async fn create_dir_all(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        self.run(Op::CreateDir, dir, true, |c| async move {
            if self.is_dir(&c, &self.full(dir)).await? == Some(true) {
                return Ok(());
            }
            let mut prefix = RemotePath::root();
            for name in dir.components() {
                prefix = prefix.join(name).map_err(|e| Fail::Kind(ErrorKind::Protocol, e.to_string()))?;
                let full = self.full(&prefix);
                if let Err(e) = c.sftp.create_dir(full.as_str()).await {
                    // Already there (or made by someone else meanwhile) is fine if it is a folder.
                    match self.is_dir(&c, &full).await? {
                        Some(true) => {}
                        Some(false) => return Err(Fail::Kind(ErrorKind::AlreadyExists, format!("{prefix} exists and is not a folder"))),
                        // The error is told under `dir`: name the folder that could not be made.
                        None if prefix != *dir => {
                            let (kind, message) = Fail::from(e).classify();
                            return Err(Fail::Kind(kind, format!("making {prefix}: {message}")));
                        }
                        None => return Err(e.into()),
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn remove_dir(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        self.remove_dir_at(dir).await
    }

    async fn rename_plain(&self, from: &RemotePath, to: &RemotePath) -> Result<(), EndpointError> {
        self.rename_plain_at(from, to).await
    }

    async fn facts(&self) -> Result<ServerFacts, EndpointError> {
        self.server_facts().await
    }
}

struct SftpRead {
    file: File,
    /// Keeps the connection alive while the stream is in use.
    conn: Arc<Conn>,
    inner: Arc<Inner>,
    path: RemotePath,
    /// The file's attributes asked right behind the `OPEN`, when the server gave them.
    opened: Option<Entry>,
    /// The connection counts as busy while the file is open.
    _busy: Busy,
}

#[async_trait]
impl ReadStream for SftpRead {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError> {
        match self.file.read(buf).await {
            Ok(n) => Ok(n),
            Err(e) => Err(stream_err(&self.inner, &self.conn, Op::Read, &self.path, e.into()).await),
        }
    }

    fn opened(&self) -> Option<&Entry> {
        self.opened.as_ref()
    }
}

struct SftpWrite {
    file: File,
    conn: Arc<Conn>,
    inner: Arc<Inner>,
    path: RemotePath,
    /// `path` on the server.
    full: String,
    /// Gets the server to write the file to disk while it is still being sent.
    behind: Option<WriteBehind>,
    _busy: Busy,
}

#[async_trait]
impl WriteStream for SftpWrite {
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), EndpointError> {
        // Pipelined: returns once the data is queued; errors surface here later or in finish.
        match self.file.write_all(buf).await {
            Ok(()) => {
                if let Some(b) = &mut self.behind {
                    b.sent(buf.len());
                }
                Ok(())
            }
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn finish(mut self: Box<Self>) -> Result<(), EndpointError> {
        // flush = wait for every WRITE ack, then one fsync@openssh.com (when offered);
        // shutdown = CLOSE and wait for its status. Dropping the File would lose both.
        if let Some(b) = &mut self.behind {
            b.settle().await;
        }
        let res = match self.file.flush().await {
            Ok(()) => self.file.shutdown().await,
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => Ok(()),
            Err(e) => Err(self.failed(e).await),
        }
    }
}

impl SftpWrite {
    /// The error of a write or close that failed, its cause named where the server was vague.
    async fn failed(&self, e: io::Error) -> EndpointError {
        let fail = refusal::write(&self.conn, &self.full, &self.path, e.into()).await;
        stream_err(&self.inner, &self.conn, Op::Write, &self.path, fail).await
    }
}

async fn stream_err(inner: &Inner, conn: &Arc<Conn>, op: Op, path: &RemotePath, fail: Fail) -> EndpointError {
    let (kind, message) = fail.classify();
    if kind == ErrorKind::Transient {
        inner.pool.forget(conn).await;
    }
    inner.err(kind, op, path, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::config::flow::{HostKeyPolicy, SshAuth};

    #[test]
    fn a_servers_error_message_is_quoted_on_one_line() {
        // Before: "Failure\nERROR forged (Failure)", a second line in a text log.
        let status = |m: &str| {
            SftpError::Status(russh_sftp::protocol::Status {
                id: 1,
                status_code: StatusCode::Failure,
                error_message: m.into(),
                language_tag: "en".into(),
            })
        };
        let (_, msg) = sftp_kind(status("quota exceeded\r\nERROR forged\x1b[2K"));
        assert_eq!(msg, "quota exceeded ⏎ ERROR forged [2K (Failure)");
        let (_, long) = sftp_kind(status(&"x".repeat(1000)));
        assert!(long.len() < 400, "{long}");
    }

    fn spec(root: &str) -> SftpSpec {
        SftpSpec {
            name: "server".into(),
            host: "127.0.0.1".into(),
            port: 2222,
            user: "bob".into(),
            auth: SshAuth::Password(Secret::new("hunter2")),
            host_key: HostKeyPolicy::Fingerprint("SHA256:x".into()),
            root: root.into(),
            connect_timeout: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(1),
            max_connections: 1,
        }
    }

    #[test]
    fn maps_paths_under_the_root() {
        let ep = SftpEndpoint::new(spec("/data/"));
        assert_eq!(ep.full(&RemotePath::root()), "/data");
        assert_eq!(ep.full(&RemotePath::parse("in/a b.csv").unwrap()), "/data/in/a b.csv");
        let ep = SftpEndpoint::new(spec("/"));
        assert_eq!(ep.full(&RemotePath::root()), "/");
        assert_eq!(ep.full(&RemotePath::parse("x").unwrap()), "/x");
    }

    #[test]
    fn describe_and_debug_hide_secrets() {
        let ep = SftpEndpoint::new(spec("/"));
        assert_eq!(ep.describe(), "sftp bob@127.0.0.1:2222");
        assert!(!format!("{ep:?}").contains("hunter2"));
    }
}
