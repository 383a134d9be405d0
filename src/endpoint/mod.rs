//! The endpoint contract: one trait every backend (local, sftp, ftp) implements.
//!
//! Endpoints are deliberately dumb. They list, stat, stream a file out from an offset,
//! stream a file in under exactly the name they are given, rename, remove and create
//! directories — nothing else. Temporary names, verification, exists-policies, readiness,
//! disposition and retries live in `crate::engine`, written once for all protocols.
//! All paths are [`RemotePath`]s, already jailed under the endpoint root.
//!
//! Data moves through [`ReadStream`] / [`WriteStream`] in chunks, never as whole files, so
//! memory stays bounded whatever the file size — or, into a local folder on the staging file
//! system, not at all: [`Endpoint::adopt`] renames the staged file into place.

pub mod facts;
pub mod ftp;
mod greeting;
pub mod listing;
pub mod local;
pub mod path;
pub mod reach;
pub mod sftp;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use facts::{Feature, ServerFacts, Sessions, Support, Traits};
pub use listing::{Listing, SkipReason, SkippedName};
pub use path::{PathError, RemotePath};

/// What kind of directory entry this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    File,
    Dir,
    /// Symlinks the server did not resolve, devices, sockets…: never transferred.
    Other(Special),
}

/// What an entry that is neither a regular file nor a folder is, as far as the listing says
/// (`EntryKind::Other`): told to the user, who may not know the name is not a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Special {
    /// A symbolic link (never followed).
    Symlink,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A block or character device.
    Device,
    /// Something else, or a listing that does not say what (an MLSD `type` wharf does not know).
    Unknown,
}

impl Special {
    /// The kind of a Unix file from the type bits of its mode (`st_mode & S_IFMT`, as SFTP
    /// attributes carry it); `Unknown` for anything but a link, a FIFO, a socket or a device.
    pub fn from_mode(mode: u32) -> Self {
        match mode & 0o170_000 {
            0o120_000 => Special::Symlink,
            0o010_000 => Special::Fifo,
            0o140_000 => Special::Socket,
            0o060_000 | 0o020_000 => Special::Device,
            _ => Special::Unknown,
        }
    }
}

impl fmt::Display for Special {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Special::Symlink => "a symbolic link",
            Special::Fifo => "a named pipe (FIFO)",
            Special::Socket => "a socket",
            Special::Device => "a device",
            Special::Unknown => "neither a regular file nor a folder",
        })
    }
}

/// One directory entry, protocol-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: RemotePath,
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time as the server reports it, truncated to the endpoint's precision.
    pub mtime: Option<SystemTime>,
}

/// Whether a file is open for writing, as far as its endpoint can tell
/// ([`Endpoint::writing`]): a file still being written is not ready (`engine::ready`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writing {
    /// Some process has it open for writing (or holds it under a write lease).
    Open,
    /// No process has it open for writing.
    Closed,
    /// Cannot be told: a server, a file system without leases, a file of another user's.
    Unknown,
}

/// What the engine may rely on. Cases in the conformance suite branch on these, never on
/// the backend's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Granularity of `Entry::mtime` (1 s for SFTP v3, 1 ns-ish for local, 60 s for FTP LIST).
    pub mtime_precision: Duration,
    /// `rename(.., replace = true)` atomically replaces an existing target.
    pub atomic_replace: bool,
    /// Names ending in a space can be created. Where `false`, `open_write`, `rename` and
    /// `create_dir_all` refuse such a name (`Protocol`) rather than create a different one
    /// (FTP servers replace or drop trailing spaces: pure-ftpd stores a rename's `a.csv ` as
    /// `a.csv_`, over any `a.csv_` there) — a move into another folder under the source's
    /// own name included; `engine::naming::creatable` gives such a move a name it can make.
    pub trailing_space_names: bool,
    /// A folder on this machine: [`Endpoint::link_local`] and [`Endpoint::adopt`] may spare a
    /// copy. `false` for servers (both always answer `Ok(false)` there).
    pub local_files: bool,
    /// A read says which file it opened ([`ReadStream::opened`], and with
    /// [`Endpoint::read_small`]): the open handle's size and time, or over FTP the name's,
    /// asked in the same write as the `RETR`. `false` where that would cost a round trip.
    pub describes_opened: bool,
    /// A write to a name a file already has replaces that file. `false` over FTP: a server
    /// may store an upload to a taken name under another one (pure-ftpd `-r` stores
    /// `.a.csv.part` as `.a.csv.part.1`), so the upload removes a temporary file left by an
    /// earlier attempt before it writes, or would check and rename that stale file.
    pub write_replaces: bool,
}

/// The error kinds retry / quarantine / fail decisions are made from.
///
/// In JSON (`error_kind` of `wharf run --json`, `wharf files --json`, a stored probe) a kind
/// is its snake_case name (`no_space`); probes stored before that named it as in Rust
/// (`NoSpace`), which is still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    #[serde(alias = "NotFound")]
    NotFound,
    #[serde(alias = "AlreadyExists")]
    AlreadyExists,
    #[serde(alias = "PermissionDenied")]
    PermissionDenied,
    /// Login refused (wrong password, key not accepted, wrong passphrase).
    #[serde(alias = "AuthFailed")]
    AuthFailed,
    /// The server's host key is unknown or differs from the recorded one.
    #[serde(alias = "HostKey")]
    HostKey,
    /// Worth retrying: timeouts, dropped connections, refused connects, server busy.
    #[serde(alias = "Transient")]
    Transient,
    /// The server answered something we cannot use, or an operation it refuses for good.
    #[serde(alias = "Protocol")]
    Protocol,
    /// A local configuration problem discovered when connecting (unreadable key file…).
    #[serde(alias = "Config")]
    Config,
    /// The local disk (staging, local endpoint) failed: an I/O error. (A local endpoint's
    /// full disk is `NoSpace`, its read-only file system `PermissionDenied`: what is written
    /// there is refused, not the run.)
    #[serde(alias = "LocalIo")]
    LocalIo,
    /// The state folder (ledger, staging files) has no space left: the run stops and frees
    /// its staging files; nothing is retried until a later run. (The ledger stores kinds by
    /// their index: new kinds go last.)
    #[serde(alias = "StateFull")]
    StateFull,
    /// The place the file is written to has no room: a server's disk is full (or a quota of
    /// the login is used up), or so is the disk of a local folder (a sink, the quarantine).
    /// A passing reason — someone makes room — so the file is kept for the next run and
    /// counts towards `retry.give_up_after`, but it is not retried within the run (that would
    /// only fill the disk again), its partial upload is removed, and the run goes on with the
    /// other files (those that fit are delivered).
    #[serde(alias = "NoSpace")]
    NoSpace,
}

impl ErrorKind {
    /// Whether the same operation may succeed if tried again in a moment (retried within a
    /// run, see `engine::retry`).
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Transient)
    }

    /// Whether the trouble is expected to pass by itself, so that the file is kept for a later
    /// run (and counted towards `retry.give_up_after`) rather than failed for good: transient
    /// trouble, and a server or a local folder with no room left.
    pub fn is_passing(self) -> bool {
        matches!(self, ErrorKind::Transient | ErrorKind::NoSpace)
    }

    /// Errors that make every further operation on this endpoint pointless in this run.
    pub fn is_connection_fatal(self) -> bool {
        matches!(self, ErrorKind::AuthFailed | ErrorKind::HostKey | ErrorKind::Config)
    }

    /// The kind as one word, as the JSON reports name it (`transient`, `auth_failed`): the
    /// `kind` field of the daemon's log lines, so `grep kind=auth_failed` finds them (the
    /// sentence [`fmt::Display`] gives, `authentication failed`, broke a line's `key=value`
    /// fields apart).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::AuthFailed => "auth_failed",
            ErrorKind::HostKey => "host_key",
            ErrorKind::Transient => "transient",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Config => "config",
            ErrorKind::LocalIo => "local_io",
            ErrorKind::StateFull => "state_full",
            ErrorKind::NoSpace => "no_space",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::AuthFailed => "authentication failed",
            ErrorKind::HostKey => "server not trusted (host key or certificate)",
            ErrorKind::Transient => "transient failure",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Config => "configuration error",
            ErrorKind::LocalIo => "local I/O error",
            ErrorKind::StateFull => "state folder full",
            ErrorKind::NoSpace => "no space left",
        })
    }
}

/// The operation that failed, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Connect,
    List,
    Stat,
    Read,
    Write,
    Rename,
    Remove,
    CreateDir,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Connect => "connect",
            Op::List => "list",
            Op::Stat => "stat",
            Op::Read => "read",
            Op::Write => "write",
            Op::Rename => "rename",
            Op::Remove => "remove",
            Op::CreateDir => "create directory",
        })
    }
}

/// An endpoint operation failed. `Display` gives a complete, secret-free sentence:
/// `sftp wharf@127.0.0.1:2222: read /in/a.csv: transient failure: connection reset`.
#[derive(Debug, thiserror::Error)]
#[error("{endpoint}: {op}{}: {kind}: {message}", path.as_ref().map(|p| format!(" {p}")).unwrap_or_default())]
pub struct EndpointError {
    pub kind: ErrorKind,
    pub op: Op,
    /// Which endpoint, as `Endpoint::describe` says (`sftp user@host:port`, `local /srv/x`).
    pub endpoint: String,
    pub path: Option<RemotePath>,
    /// Human detail (never contains secrets).
    pub message: String,
    /// No connection to the server could be made for this operation: nothing of it reached
    /// the server (a failed login or connect, named after the operation it was for).
    pub unconnected: bool,
}

/// `message`, and for a `NotFound` under a `root` other than the server's own, where that
/// is on the server: a flow names `/in`, the server looked in `/home/acme/in`.
fn not_found_where(kind: ErrorKind, message: String, path: &RemotePath, root: &str) -> String {
    if kind != ErrorKind::NotFound || root.trim_end_matches('/').is_empty() {
        return message;
    }
    format!("{message} (on the server: {})", path.on_server(root))
}

impl EndpointError {
    /// A failed connect or login (this error) as the failure of the operation `op` on `path`
    /// it was made for: its kind and message kept, [`unconnected`](Self::unconnected) set.
    pub fn unconnected_for(self, op: Op, path: &RemotePath) -> Self {
        EndpointError { op, path: Some(path.clone()), unconnected: true, ..self }
    }

    /// `message` often quotes the server (a reply, a status text, a greeting): its control
    /// characters become spaces, so a server cannot move the cursor or recolour a terminal
    /// that shows the error, nor start a line of its own in a log.
    pub fn new(kind: ErrorKind, op: Op, endpoint: impl Into<String>, path: Option<&RemotePath>, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if message.contains(char::is_control) {
            message = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        }
        EndpointError { kind, op, endpoint: endpoint.into(), path: path.cloned(), message, unconnected: false }
    }
}

/// What every backend says when asked to list a path that is a file (a source `path:` naming
/// the file instead of its folder): a configuration mistake no retry mends
/// ([`ErrorKind::Config`]).
pub fn file_not_folder(dir: &RemotePath) -> String {
    format!("{dir} is a file, not a folder; name the folder that holds it (and pick the file with `include`)")
}

/// What the backends say of a file that cannot be written (or renamed) under `target`
/// because a folder has that name (`place`: where, ` on the server`, or nothing).
pub fn folder_in_the_way(target: &RemotePath, place: &str) -> String {
    format!("{target} is a folder{place}, and a file cannot replace a folder; remove or rename that folder, or deliver under another name")
}

/// A file being read, in chunks. Dropping it releases the remote handle.
#[async_trait]
pub trait ReadStream: Send {
    /// Reads up to `buf.len()` bytes; `Ok(0)` at end of file.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError>;
    /// The file that was opened, as the server described it at the open (size and
    /// modification time, as a listing gives them: the open handle's, or the name's asked in
    /// the same flight right after the open): the version being read, even when another file
    /// took its name since. `None` where the endpoint does not ask (see
    /// [`Capabilities::describes_opened`]) or the server did not say.
    fn opened(&self) -> Option<&Entry> {
        None
    }
}

/// Reads from `src` until `buf` is full or the file ends; the count read.
pub async fn read_full(src: &mut dyn ReadStream, buf: &mut [u8]) -> Result<usize, EndpointError> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]).await? {
            0 => break,
            got => n += got,
        }
    }
    Ok(n)
}

/// A file being written. Nothing is guaranteed to be stored until [`finish`](Self::finish)
/// returned `Ok`: it flushes, waits for every acknowledgement and closes the handle.
/// Dropping a stream without finishing abandons the write (the partial file may remain).
#[async_trait]
pub trait WriteStream: Send {
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), EndpointError>;
    async fn finish(self: Box<Self>) -> Result<(), EndpointError>;
}

/// A place files live. See the module docs for what belongs here and what does not.
#[async_trait]
pub trait Endpoint: Send + Sync + fmt::Debug {
    /// `sftp user@host:port` / `local /abs/root`: used in every message about this endpoint.
    fn describe(&self) -> String;
    fn capabilities(&self) -> Capabilities;
    /// Entries directly inside `dir` (not recursive), excluding `.` and `..`, sorted by path.
    /// Names that cannot be represented safely as a [`RemotePath`] (they can never be
    /// processed) are left out of the entries and returned in [`Listing::skipped`]; the
    /// endpoint does not log them (the caller knows what it listed for).
    async fn list(&self, dir: &RemotePath) -> Result<Listing, EndpointError>;
    /// `Ok(None)` when nothing is at `path`.
    async fn stat(&self, path: &RemotePath) -> Result<Option<Entry>, EndpointError>;
    /// Opens `path` for reading, starting at byte `offset`.
    async fn open_read(&self, path: &RemotePath, offset: u64) -> Result<Box<dyn ReadStream>, EndpointError>;
    /// All of `path` when it holds fewer than `limit` bytes, else its first `limit` bytes (a
    /// caller expecting `n` bytes asks for `n + 1` to see the end), and the file that was
    /// read as [`ReadStream::opened`] describes it. For files read whole; an endpoint
    /// overrides it where it can do that in fewer round trips than a stream.
    async fn read_small(&self, path: &RemotePath, limit: usize) -> Result<(Vec<u8>, Option<Entry>), EndpointError> {
        let mut src = self.open_read(path, 0).await?;
        let mut buf = vec![0u8; limit];
        let n = read_full(&mut *src, &mut buf).await?;
        buf.truncate(n);
        Ok((buf, src.opened().cloned()))
    }
    /// Creates or truncates `path` for writing. Parent directories must exist.
    async fn open_write(&self, path: &RemotePath) -> Result<Box<dyn WriteStream>, EndpointError>;
    /// Writes all of `path` from `data` (created or truncated; parent directories must exist)
    /// and stores it as [`WriteStream::finish`] does. `Ok(Some(n))` when the server reported
    /// the size it stored along the way, `Ok(None)` when the caller must ask. For files
    /// written whole; an endpoint overrides it where it can do that in fewer round trips.
    async fn write_small(&self, path: &RemotePath, data: &[u8]) -> Result<Option<u64>, EndpointError> {
        let mut out = self.open_write(path).await?;
        out.write_all(data).await?;
        out.finish().await?;
        Ok(None)
    }
    /// Renames `from` to `to`. With `replace = false` an existing `to` gives `AlreadyExists`;
    /// with `replace = true` it is replaced (atomically where `atomic_replace`).
    async fn rename(&self, from: &RemotePath, to: &RemotePath, replace: bool) -> Result<(), EndpointError>;
    /// Removes a file; `NotFound` if there is none.
    async fn remove(&self, path: &RemotePath) -> Result<(), EndpointError>;
    /// Creates `dir` and its missing parents; succeeds if it already exists.
    async fn create_dir_all(&self, dir: &RemotePath) -> Result<(), EndpointError>;
    /// Removes an empty folder; `NotFound` if there is none.
    async fn remove_dir(&self, dir: &RemotePath) -> Result<(), EndpointError>;
    /// The protocol's own rename, sent once as it is: no look at `to` first, no making room.
    /// What happens to an existing `to` (replaced, refused) is the server's choice; `wharf
    /// probe` asks exactly that. Everything else uses [`rename`](Self::rename).
    async fn rename_plain(&self, from: &RemotePath, to: &RemotePath) -> Result<(), EndpointError>;
    /// What the server says about itself (version, software, features), asked read-only.
    async fn facts(&self) -> Result<ServerFacts, EndpointError>;
    /// The size of the file at `path` (`None`: nothing there), for checking an upload. Like
    /// [`stat`](Self::stat) by default; where a stat costs extra round trips for facts a size
    /// check does not need (FTP `MDTM` without `MLST`), cheaper.
    async fn size(&self, path: &RemotePath) -> Result<Option<u64>, EndpointError> {
        Ok(self.stat(path).await?.map(|e| e.size))
    }
    /// The SHA-256 (lowercase hex) of the file at `path` as the *server* computes it, when it
    /// offers that (FTP `HASH` / `XSHA256`); `None` when it does not. Uploads compare it with
    /// what was sent. Never computed by reading the file back.
    async fn sha256(&self, _path: &RemotePath) -> Result<Option<String>, EndpointError> {
        Ok(None)
    }
    /// Whether some process has each of `paths` open for writing (in the same order), asked
    /// only of files otherwise ready to take. Never fails: what cannot be told, a file gone
    /// included, is [`Writing::Unknown`], as from every server (the default).
    async fn writing(&self, paths: &[RemotePath]) -> Vec<Writing> {
        vec![Writing::Unknown; paths.len()]
    }
    /// Makes the local file `local` (which does not exist) hold `path` without copying it: a
    /// hard link, when this endpoint is a folder on the same file system (`Ok(Some(linked))`,
    /// the file linked as [`ReadStream::opened`] describes it). `Ok(None)` when it cannot (a
    /// server, another file system, links not allowed), and nothing happened. Spares staging a
    /// local source file by copying it.
    async fn link_local(&self, _path: &RemotePath, _local: &std::path::Path) -> Result<Option<Entry>, EndpointError> {
        Ok(None)
    }
    /// Takes a complete file as the final `path` by renaming it, when this endpoint is a
    /// folder on this machine: `Ok(Some(adopted))`, and `path` holds `adopted.size` bytes.
    /// What is renamed is made durable first, so `path` never holds part of a file, even after
    /// a power cut, and no temporary name of the flow's is needed for a staged file. The
    /// rename itself is durable only once `adopted.folder` has been fsynced
    /// ([`crate::durable::sync_dir`]): the caller does that before anything that relies on it
    /// (one fsync of a folder for many files). With `replace` an existing `path` is replaced,
    /// else the rename fails (`AlreadyExists`).
    ///
    /// - [`Adoptee::Staged`]: the staged file itself, on the same file system (it need not
    ///   have been fsynced; it is gone afterwards). Spares copying a staged file that is not
    ///   needed any more. `Ok(None)` when it cannot (a server, another file system, a file with
    ///   other links, which must not become a delivered file), and nothing happened. When the
    ///   file is gone already (an earlier attempt took it), the size is that of whatever
    ///   `path` holds (0 when nothing): the caller compares it with the size expected.
    /// - [`Adoptee::Bytes`]: a file held in memory, written under its temporary name here,
    ///   fsynced and renamed, in one step (removed again when the rename fails). `Ok(None)`
    ///   from a server.
    async fn adopt(&self, _file: Adoptee<'_>, _path: &RemotePath, _replace: bool) -> Result<Option<Adopted>, EndpointError> {
        Ok(None)
    }
}

/// What [`Endpoint::adopt`] takes.
#[derive(Debug, Clone, Copy)]
pub enum Adoptee<'a> {
    /// A staged file on this machine.
    Staged(&'a std::path::Path),
    /// A file's bytes, and the temporary name (on the endpoint) they are written under.
    Bytes(&'a [u8], &'a RemotePath),
}

/// A file an endpoint took by renaming it ([`Endpoint::adopt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adopted {
    /// What the final name holds.
    pub size: u64,
    /// The folder to fsync to make the rename durable.
    pub folder: std::path::PathBuf,
}

/// Shared handle to an endpoint.
pub type DynEndpoint = Arc<dyn Endpoint>;

#[cfg(test)]
mod tests {
    use super::{EndpointError, ErrorKind, Op, RemotePath, Special, not_found_where};

    #[test]
    fn the_kind_of_a_special_file_is_read_from_its_mode() {
        let kinds = [0o120_777, 0o010_644, 0o140_755, 0o060_660, 0o020_666, 0o100_644, 0o644].map(Special::from_mode);
        use Special::*;
        assert_eq!(kinds, [Symlink, Fifo, Socket, Device, Device, Unknown, Unknown]);
    }

    #[test]
    fn a_missing_path_says_where_the_server_looked_under_a_root_of_its_own() {
        let p = RemotePath::parse("/in").unwrap();
        assert_eq!(
            not_found_where(ErrorKind::NotFound, "No such file".into(), &p, "/home/acme/"),
            "No such file (on the server: /home/acme/in)"
        );
        assert_eq!(not_found_where(ErrorKind::NotFound, "No such file".into(), &p, "/"), "No such file");
        assert_eq!(not_found_where(ErrorKind::PermissionDenied, "denied".into(), &p, "/home/acme"), "denied");
    }

    #[test]
    fn what_a_server_says_cannot_steer_a_terminal() {
        let e = EndpointError::new(ErrorKind::Protocol, Op::List, "ftp x", None, "550 \x1b[31mred\r\nfake line");
        assert_eq!(e.message, "550  [31mred  fake line");
    }

    #[test]
    fn json_names_kinds_in_snake_case_and_still_reads_the_rust_names() {
        assert_eq!(serde_json::to_value(ErrorKind::NoSpace).unwrap(), "no_space");
        assert_eq!(serde_json::to_value(ErrorKind::AuthFailed).unwrap(), "auth_failed");
        // The log's one-word name is the JSON one, for every kind.
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::PermissionDenied,
            ErrorKind::AuthFailed,
            ErrorKind::HostKey,
            ErrorKind::Transient,
            ErrorKind::Protocol,
            ErrorKind::Config,
            ErrorKind::LocalIo,
            ErrorKind::StateFull,
            ErrorKind::NoSpace,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        // A probe stored by an earlier wharf (`RenameBehaviour::Refuses`) named it `Protocol`.
        let old: ErrorKind = serde_json::from_value(serde_json::json!("Protocol")).unwrap();
        let new: ErrorKind = serde_json::from_value(serde_json::json!("local_io")).unwrap();
        assert_eq!((old, new), (ErrorKind::Protocol, ErrorKind::LocalIo));
    }
}
