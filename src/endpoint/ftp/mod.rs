//! `ftp`: a folder on an FTP or FTPS server, behind the same [`Endpoint`] contract as `local`
//! and `sftp`.
//!
//! Owns the mapping of [`RemotePath`]s onto the server-side root (always as absolute paths),
//! the protocol steps of each operation (MLSD/MLST where offered, else LIST refined by SIZE and
//! MDTM; RETR with REST; STOR; RNFR/RNTO; DELE; MKD; on a plain control connection a
//! listing's MDTMs, a rename's RNFR/RNTO, a download's EPSV with the MDTM or MLST that says
//! which file it opened (`opened`) and its RETR, and a small file's EPSV with its STOR are
//! pipelined, one round trip per batch), and the translation of reply codes and
//! connection failures into [`ErrorKind`]s. A reply of 550 says little, so the kind is
//! decided by looking: is the path (or its folder) there? An unexpected 5xx after which the
//! connection no longer answers is a lost session. Connections come from a small pool
//! (`pool`), are made in `connect` and trust certificates through `tls`; listings are parsed
//! in `list`; transfers in progress live in `stream`, files moved whole in `whole`. Like
//! every endpoint it has no policy: no temp names, no retries beyond one reconnect, no
//! verification.

mod connect;
mod epsv;
mod facts;
mod list;
mod opened;
mod pool;
mod stream;
mod tls;
mod tls_stream;
mod whole;

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use suppaftp::tokio::TransferStream;
use suppaftp::{FtpError, ReplyTooLarge, Status};
use tokio::io::AsyncReadExt;

pub use tls::cert_fingerprint;

use self::connect::{
    Conn, Connector, DataSetup, HashCommand, digest_in_reply, mdtm_in_reply, reply_code, reply_text, size_in_reply, wants_session_reuse,
    within,
};
use self::pool::{Lease, Pool};
use self::stream::{FtpRead, FtpWrite};
use self::tls_stream::FtpTlsStream;
use super::{
    Capabilities, Endpoint, EndpointError, Entry, EntryKind, ErrorKind, Listing, Op, ReadStream, RemotePath, ServerFacts, SkippedName,
    WriteStream, not_found_where,
};
use crate::config::flow::{FtpSpec, FtpTls, TlsVersion};
use crate::text::{Keep, SERVER_TEXT, one_line};

/// Largest directory listing read into memory (a server sending more is broken or hostile).
const MAX_LISTING: usize = 64 * 1024 * 1024;
/// How many lines pure-ftpd lists at most, by default (`LimitRecursion 10000` in its
/// configuration, `-L 10000:…`): it ends a longer listing there with a `226 Output truncated
/// to 10000 matches` that suppaftp reads and drops, so a listing of exactly this many lines
/// (`.` and `..` among them) is taken for one cut short.
const PURE_FTPD_LISTING_LIMIT: usize = 10_000;
/// Writes go to the data connection in pieces of this size, each with its own stall timeout.
const WRITE_PIECE: usize = 256 * 1024;

/// An FTP/FTPS endpoint. Cheap to create: nothing happens until the first operation (or
/// [`connect_now`](Self::connect_now)).
#[derive(Clone)]
pub struct FtpEndpoint {
    inner: Arc<Inner>,
}

struct Inner {
    label: String,
    root: Option<String>,
    pool: Arc<Pool>,
}

impl fmt::Debug for FtpEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FtpEndpoint").field("endpoint", &self.inner.label).field("root", &self.inner.root).finish_non_exhaustive()
    }
}

/// `host:port`, with IPv6 addresses in brackets.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

impl FtpEndpoint {
    /// An endpoint for `spec`; does no I/O.
    pub fn new(spec: FtpSpec) -> Self {
        let scheme = if spec.tls == FtpTls::None { "ftp" } else { "ftps" };
        let label = format!("{scheme} {}@{}", spec.user, host_port(&spec.host, spec.port));
        let root = spec.root.clone();
        let pool = Pool::new(Connector::new(spec, label.clone()), label.clone());
        FtpEndpoint { inner: Arc::new(Inner { label, root, pool }) }
    }

    /// Connects now (if no connection is open), so an unreachable host, a refused login or an
    /// untrusted certificate fails early with a clear message.
    pub async fn connect_now(&self) -> Result<(), EndpointError> {
        self.inner.pool.acquire().await.map(Lease::release)
    }

    /// Runs `f` on a pooled connection and keeps the connection for the caller (a stream).
    /// A failure that leaves the connection unusable closes it (and every idle one), and with
    /// `retry` the operation is tried once more on a new login — unless this call already made
    /// one (one reconnect per operation, then `Transient`). Without `retry` (an operation that
    /// must not run twice: the server may have run it before the connection died) it is tried
    /// again only when the server cannot have run it: a reused login it answered `421` on
    /// (closing the session, as an idle timeout does, runs no command). A login the server
    /// closed while it sat idle the pool drops before anything is sent.
    async fn attempt<T, F, Fut>(&self, op: Op, path: &RemotePath, retry: bool, f: F) -> Result<(T, Lease), EndpointError>
    where
        F: Fn(Lease) -> Fut,
        Fut: Future<Output = (Lease, Result<T, Fail>)>,
    {
        let mut reconnected = false;
        loop {
            let lease = self.inner.pool.acquire().await.map_err(|e| e.unconnected_for(op, path))?;
            reconnected |= lease.fresh;
            let (mut lease, res) = f(lease).await;
            let fail = match res {
                Ok(v) => return Ok((v, lease)),
                Err(fail) => fail,
            };
            let reuse_refused = matches!(&fail, Fail::Ftp(FtpError::UnexpectedResponse(r)) if wants_session_reuse(r));
            let unrun = closed_unrun(&fail, lease.fresh);
            let (mut kind, message, lost) = self.inner.settle(&mut lease, fail).await;
            // A login in use for a while may have outlived the server's record of its TLS
            // session (servers expire them, each on its own clock; vsftpd still resumed one
            // login's sessions after 6 minutes, over TLS 1.2 and 1.3): a new login is worth one
            // try. A new login refused alike is the configuration error.
            if reuse_refused && kind == ErrorKind::Config && !lease.fresh {
                kind = ErrorKind::Transient;
            }
            if lost {
                drop(lease);
                self.inner.pool.discard_idle();
                if (retry || unrun) && !reconnected && kind == ErrorKind::Transient {
                    tracing::info!(endpoint = %self.inner.label, op = %op, path = %path, error = %message, "Connection lost; reconnecting once.");
                    continue;
                }
            } else {
                lease.release();
            }
            return Err(self.inner.err(kind, op, path, message));
        }
    }

    /// [`attempt`](Self::attempt), giving the connection back afterwards.
    async fn run<T, F, Fut>(&self, op: Op, path: &RemotePath, retry: bool, f: F) -> Result<T, EndpointError>
    where
        F: Fn(Lease) -> Fut,
        Fut: Future<Output = (Lease, Result<T, Fail>)>,
    {
        let (v, lease) = self.attempt(op, path, retry, f).await?;
        lease.release();
        Ok(v)
    }

    /// FTP servers disagree on names ending in a space (pure-ftpd turns the spaces into `_`,
    /// Windows servers drop them), so such names are never created: refused before any I/O.
    fn creatable<'p>(&self, op: Op, path: &RemotePath, names: impl IntoIterator<Item = &'p str>) -> Result<(), EndpointError> {
        match names.into_iter().find(|n| n.ends_with(char::is_whitespace)) {
            None => Ok(()),
            Some(name) => Err(self.inner.err(
                ErrorKind::Protocol,
                op,
                path,
                format!(
                    "{name:?} ends with a space; FTP servers store such names differently (pure-ftpd replaces the spaces \
                     with `_`, Windows servers drop them), so the ftp endpoint does not create them"
                ),
            )),
        }
    }

    /// [`creatable`](Self::creatable) for a rename's new name.
    fn renamable(&self, from: &RemotePath, to: &RemotePath) -> Result<(), EndpointError> {
        self.creatable(Op::Rename, from, [to.name()])
    }

    /// A refusal (550/553) of an operation on `probe`: `NotFound` when nothing is there,
    /// `Protocol` when something of another kind is (a folder where a file was meant),
    /// `PermissionDenied` otherwise — a symlink the server would not follow included, but not
    /// one to nothing: `NotFound`, where the listing shows its target (`dangling`).
    /// Anything else keeps its own classification.
    async fn refused(&self, c: &mut Conn, e: FtpError, probe: &RemotePath, expect: EntryKind) -> Fail {
        self.refusal(c, e, probe, expect).await.0
    }

    /// [`refused`](Self::refused), and the kind of what the look found at `probe` (`None`:
    /// nothing, or no look).
    async fn refusal(&self, c: &mut Conn, e: FtpError, probe: &RemotePath, expect: EntryKind) -> (Fail, Option<EntryKind>) {
        let text = match &e {
            FtpError::UnexpectedResponse(r) if matches!(reply_code(r), 550 | 553) => reply_text(r),
            _ => return (e.into(), None),
        };
        let found = match self.stat_on(c, probe).await {
            Ok(found) => found.map(|f| f.kind),
            Err(f) => return (f, None),
        };
        let fail = match found {
            // A folder the login may not enter answers like a missing one; its parent's
            // listing tells them apart.
            None if probe.is_root() => Fail::Kind(ErrorKind::NotFound, format!("{probe} does not exist ({text})")),
            None => match self.find_in_parent(c, probe).await {
                Ok(Some(listed)) => match self.dangling(c, probe, listed.kind).await {
                    Ok(Some(target)) => {
                        Fail::Kind(ErrorKind::NotFound, format!("{probe} is a symbolic link to {target}, which does not exist ({text})"))
                    }
                    Ok(None) => Fail::Kind(
                        ErrorKind::PermissionDenied,
                        format!("{probe} is there, but the server refuses this login access to it ({text})"),
                    ),
                    Err(f) => f,
                },
                Ok(None) => Fail::Kind(ErrorKind::NotFound, format!("{probe} does not exist ({text})")),
                Err(f) => f,
            },
            Some(EntryKind::Other(_)) => {
                Fail::Kind(ErrorKind::PermissionDenied, format!("{probe} is a link or a special file the server refused ({text})"))
            }
            Some(kind) if kind != expect => {
                let what = if kind == EntryKind::Dir { "a folder" } else { "not a folder" };
                Fail::Kind(ErrorKind::Protocol, format!("{probe} is {what} ({text})"))
            }
            Some(_) => Fail::Kind(ErrorKind::PermissionDenied, text),
        };
        (fail, found)
    }

    /// The target of `link` when it is a symbolic link to nothing (dangling), which the
    /// server refused as it refuses a path the login may not use: everything but its folder's
    /// listing says "no" either way. A Unix `LIST` shows a link's target (`link -> target`),
    /// so a look at the listing of the target's folder tells them apart: the folder lists and
    /// the name is not in it. `None` when it is not such a link, or when that cannot be told
    /// (MLSD and DOS listings show no target; a target's folder the login cannot list): the
    /// refusal then stays `PermissionDenied`. Paths of targets are the server's own, as a
    /// chrooted server resolves them.
    async fn dangling(&self, c: &mut Conn, link: &RemotePath, kind: EntryKind) -> Result<Option<String>, Fail> {
        if !matches!(kind, EntryKind::Other(_)) || c.feat.mlsd {
            return Ok(None);
        }
        let folder = c.full(&link.parent());
        let Some(target) = self.listed_in(c, &folder, |raw| list::link_target(raw, link.name())).await? else {
            return Ok(None);
        };
        let trimmed = target.trim_end_matches('/');
        let (dir, name) = match trimmed.rsplit_once('/') {
            Some(("", name)) => ("/".to_string(), name),
            Some((dir, name)) if dir.starts_with('/') => (dir.to_string(), name),
            Some((dir, name)) => (format!("{}/{dir}", folder.trim_end_matches('/')), name),
            None => (folder, trimmed),
        };
        if matches!(name, "" | "." | "..") {
            return Ok(None);
        }
        let now = SystemTime::now();
        let there = self
            .listed_in(c, &dir, |raw| {
                Some(list::read(raw, false, now).into_iter().any(|l| matches!(l, list::Line::Entry(l) if l.name == name)))
            })
            .await?;
        Ok((there == Some(false)).then_some(target))
    }

    /// `read` of the `LIST` of the server folder `full`; `None` when the login cannot enter it.
    async fn listed_in<T>(&self, c: &mut Conn, full: &str, read: impl FnOnce(&[u8]) -> Option<T>) -> Result<Option<T>, Fail> {
        match within(c.timeout, c.ftp.cwd(full)).await {
            Ok(()) => Ok(read(&self.list_all(c).await?)),
            Err(e) if is_refusal(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What is at `path`, on one connection: MLST where offered; else SIZE and MDTM for a
    /// file, and the parent's listing for a folder.
    async fn stat_on(&self, c: &mut Conn, path: &RemotePath) -> Result<Option<Entry>, Fail> {
        let full = c.full(path);
        let t = c.timeout;
        let entry = |kind, size, mtime| Some(Entry { path: path.clone(), kind, size, mtime });
        if c.feat.mlst {
            return match within(t, c.ftp.mlst(Some(&full))).await {
                Ok(line) => match list::parse_mlst(&line) {
                    Some(l) => Ok(entry(l.kind, l.size, l.mtime)),
                    None => Err(Fail::Lost(ErrorKind::Protocol, format!("cannot read the MLST reply {line:?}"))),
                },
                Err(e) if is_refusal(&e) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        if path.is_root() {
            return match within(t, c.ftp.cwd(&full)).await {
                Ok(()) => Ok(entry(EntryKind::Dir, 0, None)),
                Err(e) if is_refusal(&e) => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        if c.feat.size && c.feat.mdtm && c.plain {
            return self.stat_in_one_trip(c, path).await;
        }
        if c.feat.size {
            match size_on(c, &full).await? {
                Some(size) => {
                    let mtime = match c.feat.mdtm {
                        true => mdtm(c, &full).await?,
                        false => None,
                    };
                    return match mtime {
                        Some(t) => Ok(entry(EntryKind::File, size, Some(t))),
                        None => self.file_without_mdtm(c, path, size).await.map(Some),
                    };
                }
                // Not a file: a folder, or nothing; or a server that refuses SIZE.
                None => {
                    if let Err(e) = within(t, c.ftp.cwd(&full)).await {
                        if !is_refusal(&e) {
                            return Err(e.into());
                        }
                        if c.feat.mdtm && mdtm(c, &full).await?.is_some() {
                            return self.find_in_parent(c, path).await;
                        }
                        return Ok(None);
                    }
                }
            }
        }
        self.find_in_parent(c, path).await
    }

    /// A stat without `MLST` in one round trip: `SIZE`, `MDTM` and `CWD` sent together (on a
    /// plain connection), which a file answers with the first two, a folder with the third,
    /// and nothing with none. One trip instead of two for the stat before each upload that
    /// applies the exists-policy. Paths are absolute, so the working folder `CWD` may change
    /// matters to nothing.
    async fn stat_in_one_trip(&self, c: &mut Conn, path: &RemotePath) -> Result<Option<Entry>, Fail> {
        let full = c.full(path);
        let file: &[Status] = &[Status::File];
        let commands = [
            (format!("SIZE {full}"), file),
            (format!("MDTM {full}"), file),
            (format!("CWD {full}"), &[Status::RequestedFileActionOk, Status::CommandOk][..]),
        ];
        let mut replies = c.exchange(&commands).await?.into_iter();
        let (Some(size), Some(mtime), Some(cwd)) = (replies.next(), replies.next(), replies.next()) else {
            return Err(Fail::Lost(ErrorKind::Protocol, "fewer replies than commands".into()));
        };
        match (size_reply(size)?, mdtm_time(mtime)?) {
            (Some(size), Some(mtime)) => Ok(Some(Entry { path: path.clone(), kind: EntryKind::File, size, mtime: Some(mtime) })),
            (Some(size), None) => self.file_without_mdtm(c, path, size).await.map(Some),
            // A time and no size: a server that refuses SIZE; the listing has it.
            (None, Some(_)) => self.find_in_parent(c, path).await,
            (None, None) => match cwd {
                Ok(_) => self.find_in_parent(c, path).await,
                Err(e) if is_refusal(&e) => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// A file `SIZE` answered for and `MDTM` did not (a server that refuses MDTM, or one
    /// that does not have it): there, with its time from the listing of its folder when it
    /// is in it. Never "missing": a push must not take a file it was refused a time for as
    /// absent, and write over it.
    async fn file_without_mdtm(&self, c: &mut Conn, path: &RemotePath, size: u64) -> Result<Entry, Fail> {
        let listed = self.find_in_parent(c, path).await?;
        Ok(listed.unwrap_or(Entry { path: path.clone(), kind: EntryKind::File, size, mtime: None }))
    }

    /// `path`'s entry in the listing of its folder (for what SIZE and MDTM cannot tell).
    async fn find_in_parent(&self, c: &mut Conn, path: &RemotePath) -> Result<Option<Entry>, Fail> {
        let parent = path.parent();
        match within(c.timeout, c.ftp.cwd(c.full(&parent))).await {
            Ok(()) => {}
            Err(e) if is_refusal(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        Ok(self.list_cwd(c, &parent).await?.entries.into_iter().find(|e| e.path == *path))
    }

    /// Lists `dir` on one connection.
    async fn list_on(&self, c: &mut Conn, dir: &RemotePath) -> Result<Listing, Fail> {
        // Into the folder first, then list it without an argument: servers read LIST
        // arguments as options and globs (`-a`, `*`, `[`), and a missing folder shows here.
        if let Err(e) = within(c.timeout, c.ftp.cwd(c.full(dir))).await {
            return Err(match self.refusal(c, e, dir, EntryKind::Dir).await {
                // A file where the folder to list should be: a source `path:` naming the file.
                (_, Some(EntryKind::File)) => Fail::Kind(ErrorKind::Config, crate::endpoint::file_not_folder(dir)),
                (f, _) => f,
            });
        }
        let mut listing = self.list_cwd(c, dir).await?;
        if !c.feat.mlsd && c.feat.mdtm {
            listing.entries = self.with_mdtm(c, listing.entries).await?;
        }
        listing.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(listing)
    }

    /// The files' times from `MDTM` (LIST times have minutes at best and the server's time
    /// zone; MDTM has seconds, UTC); files removed since the listing are left out. One MDTM is
    /// a round trip unless pipelined (50,000 of them took about 4 s on one login here), so a
    /// long listing is spread over the logins free right now (up to `max_connections`, which
    /// the transfers that follow use anyway): over TLS from 128 files, pipelined from 8,192.
    /// A part whose login fails is asked again on `c`.
    async fn with_mdtm(&self, c: &mut Conn, mut entries: Vec<Entry>) -> Result<Vec<Entry>, Fail> {
        let files: Vec<String> = entries.iter().filter(|e| e.kind == EntryKind::File).map(|e| c.full(&e.path)).collect();
        // Pipelined, a login asks 64 times as many in the same number of round trips.
        let per_login = if c.plain { MDTM_PER_LOGIN * MDTM_BATCH } else { MDTM_PER_LOGIN };
        let wanted = (files.len() / per_login).min(self.inner.pool.max()).saturating_sub(1);
        // Logins made side by side: one after the other, a listing waited for each (about
        // 50 ms apiece against vsftpd here, several round trips each over a long link).
        let helpers: Vec<Lease> =
            futures::future::join_all((0..wanted).map(|_| self.inner.pool.try_acquire())).await.into_iter().flatten().flatten().collect();
        let part = files.len().div_ceil(helpers.len() + 1).max(1);
        let mut parts = files.chunks(part);
        let first = parts.next().unwrap_or_default();
        let others = helpers.into_iter().zip(parts).map(|(mut lease, names)| async move {
            let r = mdtm_all(&mut lease, names).await;
            match r {
                Ok(_) => lease.release(),
                Err(_) => drop(lease),
            }
            (names, r)
        });
        let (times, others) = tokio::join!(mdtm_all(c, first), futures::future::join_all(others));
        let mut times = times?;
        for (names, r) in others {
            match r {
                Ok(t) => times.extend(t),
                Err(_) => times.extend(mdtm_all(c, names).await?),
            }
        }
        let mut times = times.into_iter();
        let mut refused = 0;
        for e in entries.iter_mut().filter(|e| e.kind == EntryKind::File) {
            match times.next().flatten() {
                Some(t) => e.mtime = Some(t),
                // Removed since the listing (its download will say so), or a server that
                // refuses MDTM: the file keeps its LIST time, never vanishes from the listing.
                None => refused += 1,
            }
        }
        if refused > 0 && refused == files.len() {
            tracing::warn!(endpoint = %self.inner.label, files = refused, "The server refuses MDTM for every file it lists; using LIST times (minutes, server time zone).");
        }
        Ok(entries)
    }

    /// The entries of the current folder (`dir`), from MLSD or LIST.
    async fn list_cwd(&self, c: &mut Conn, dir: &RemotePath) -> Result<Listing, Fail> {
        let mlsd = c.feat.mlsd;
        let raw = if mlsd { self.listing(c, "MLSD").await? } else { self.list_all(c).await? };
        let mut out = Listing::default();
        let lines = list::read(&raw, mlsd, SystemTime::now());
        if lines.len() == PURE_FTPD_LISTING_LIMIT {
            out.cut_short = Some(format!(
                "the server ended its listing at exactly {PURE_FTPD_LISTING_LIMIT} lines, pure-ftpd's limit by default: if it cut the \
                 listing there, files past them are not seen. Ask the partner to raise it (`LimitRecursion` in pure-ftpd.conf, `-L`), or let the folder hold fewer files \
                 (`after.success: delete` or `move_to`)"
            ));
        }
        for line in lines {
            let l = match line {
                list::Line::Entry(l) => l,
                list::Line::Cut(name) => {
                    // The refusal a name with a line feed gets from a CRLF listing (or SFTP), so
                    // it reads the same whichever way the server ends its lines.
                    let error = crate::endpoint::PathError::ControlChar(name.clone());
                    out.skipped.push(SkippedName::refused(dir, &name, &error));
                    continue;
                }
                list::Line::NotUtf8(name) => {
                    out.skipped.push(SkippedName::not_utf8(dir, &name));
                    continue;
                }
                list::Line::NotEntry(line) => {
                    let line = one_line(&line, SERVER_TEXT, Keep::Start);
                    tracing::debug!(endpoint = %self.inner.label, dir = %dir, line = %line, "Skipping a listing line that is not an entry.");
                    continue;
                }
                list::Line::Unread(line) => {
                    out.skipped.push(SkippedName::unread(dir, &one_line(&line, SERVER_TEXT, Keep::Start)));
                    continue;
                }
            };
            match dir.join(&l.name) {
                Ok(path) => out.entries.push(Entry { path, kind: l.kind, size: l.size, mtime: l.mtime }),
                Err(e) => out.skipped.push(SkippedName::refused(dir, &l.name, &e)),
            }
        }
        Ok(out)
    }

    /// `LIST -a` (vsftpd hides dot files without it), or a bare `LIST` on servers that take
    /// `-a` for a file name.
    async fn list_all(&self, c: &mut Conn) -> Result<Vec<u8>, Fail> {
        let refused = &self.inner.pool.connector().list_a_refused;
        if !refused.load(Ordering::Relaxed) {
            match self.listing(c, "LIST -a").await {
                Err(Fail::Ftp(FtpError::UnexpectedResponse(r))) if reply_code(&r) >= 500 => {
                    tracing::info!(endpoint = %self.inner.label, reply = %reply_text(&r), "The server refuses `LIST -a`; using `LIST`.");
                    refused.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
        self.listing(c, "LIST").await
    }

    /// Runs a listing command and reads its data connection to the end.
    async fn listing(&self, c: &mut Conn, cmd: &str) -> Result<Vec<u8>, Fail> {
        let mut data = loop {
            let r = within(c.timeout, c.ftp.custom_data_command(cmd, &[Status::AboutToSend, Status::AlreadyOpen])).await;
            match c.data_setup(&r, &self.inner.pool.connector().epsv_refused).await {
                DataSetup::Again => continue,
                DataSetup::NoPassive(why) => return Err(Fail::Kind(ErrorKind::Config, why)),
                DataSetup::Go => {}
            }
            break r?.1;
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match tokio::time::timeout(c.timeout, data.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(Fail::Io(e)),
                Err(_) => return Err(stalled(c.timeout)),
            };
            if n == 0 {
                break;
            }
            if out.len() + n > MAX_LISTING {
                return Err(Fail::Lost(ErrorKind::Protocol, format!("the listing is larger than {} MiB", MAX_LISTING >> 20)));
            }
            out.extend_from_slice(&buf[..n]);
        }
        within(c.timeout, data.finish()).await?;
        Ok(out)
    }

    /// Starts RETR at `offset`. Returns the stream and how many bytes of it to skip (when the
    /// server refuses REST, the file is read from the start).
    async fn retr(&self, c: &mut Conn, path: &RemotePath, offset: u64) -> Result<(TransferStream<FtpTlsStream>, u64), Fail> {
        let full = c.full(path);
        let mut rest = offset;
        loop {
            if rest > 0 {
                let at = usize::try_from(rest).map_err(|_| Fail::Kind(ErrorKind::Protocol, format!("offset {rest} is too large")))?;
                c.ftp.resume_transfer(at).await?;
            }
            let r = within(c.timeout, c.ftp.retr_as_stream(&full)).await;
            match c.data_setup(&r, &self.inner.pool.connector().epsv_refused).await {
                DataSetup::Again => continue,
                DataSetup::NoPassive(why) => return Err(Fail::Kind(ErrorKind::Config, why)),
                DataSetup::Go => {}
            }
            match r {
                Ok(data) => return Ok((data, offset - rest)),
                Err(FtpError::UnexpectedResponse(resp)) if rest > 0 && matches!(reply_code(&resp), 500 | 501 | 502 | 504) => {
                    tracing::info!(endpoint = %self.inner.label, path = %path, reply = %reply_text(&resp), "REST refused; reading from the start.");
                    rest = 0;
                }
                Err(e) => return Err(self.refused(c, e, path, EntryKind::File).await),
            }
        }
    }

    async fn stor(&self, c: &mut Conn, path: &RemotePath) -> Result<TransferStream<FtpTlsStream>, Fail> {
        let full = c.full(path);
        loop {
            let r = within(c.timeout, c.ftp.put_with_stream(&full)).await;
            match c.data_setup(&r, &self.inner.pool.connector().epsv_refused).await {
                DataSetup::Again => continue,
                DataSetup::NoPassive(why) => return Err(Fail::Kind(ErrorKind::Config, why)),
                DataSetup::Go => {}
            }
            return match r {
                Ok(data) => Ok(data),
                Err(e) => Err(self.refused(c, e, &path.parent(), EntryKind::Dir).await),
            };
        }
    }

    async fn rename_on(&self, c: &mut Conn, from: &RemotePath, to: &RemotePath, replace: bool) -> Result<(), Fail> {
        let (src, dst) = (c.full(from), c.full(to));
        // vsftpd and pure-ftpd (and most Unix servers) replace an existing target on RNTO: a
        // no-replace rename has to look first (not atomic: a file appearing meanwhile is lost).
        if !replace && self.stat_on(c, to).await?.is_some() {
            return Err(Fail::Kind(ErrorKind::AlreadyExists, format!("{to} already exists")));
        }
        let e = match rename_once(c, &src, &dst).await? {
            Ok(()) => return Ok(()),
            Err(e) if is_refusal(&e) => e,
            Err(e) => return Err(e.into()),
        };
        if self.stat_on(c, from).await?.is_none() {
            return Err(self.refused(c, e, from, EntryKind::File).await);
        }
        match self.stat_on(c, to).await? {
            Some(existing) if replace && existing.kind != EntryKind::Dir => {
                // This server refuses to rename onto an existing name: make room (not atomic).
                // Refused too (a sticky folder, another owner's file): the login may not
                // replace it, which no retry mends — said so, not as a bare "550 Rename failed".
                match within(c.timeout, c.ftp.rm(&dst)).await {
                    Ok(()) => {}
                    Err(FtpError::UnexpectedResponse(r)) if matches!(reply_code(&r), 550 | 553) => {
                        let why = format!("{to} exists and the server refuses to replace or remove it ({})", reply_text(&r));
                        return Err(Fail::Kind(ErrorKind::PermissionDenied, why));
                    }
                    Err(e) => return Err(e.into()),
                }
                rename_once(c, &src, &dst).await?.map_err(Fail::from)
            }
            Some(_) => Err(Fail::Kind(ErrorKind::AlreadyExists, format!("{to} already exists"))),
            None => Err(self.refused(c, e, &to.parent(), EntryKind::Dir).await),
        }
    }

    async fn create_dir_on(&self, c: &mut Conn, dir: &RemotePath) -> Result<(), Fail> {
        let t = c.timeout;
        // Usually there already (every upload into a folder asks): one CWD instead of one per level.
        match within(t, c.ftp.cwd(c.full(dir))).await {
            Ok(()) => return Ok(()),
            Err(e) if is_refusal(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let mut prefix = RemotePath::root();
        for name in std::iter::once("").chain(dir.components()) {
            if !name.is_empty() {
                prefix = prefix.join(name).map_err(|e| Fail::Kind(ErrorKind::Protocol, e.to_string()))?;
            }
            let full = c.full(&prefix);
            match within(t, c.ftp.cwd(&full)).await {
                Ok(()) => continue,
                Err(e) if is_refusal(&e) => {}
                Err(e) => return Err(e.into()),
            }
            if let Err(e) = within(t, c.ftp.mkdir(&full)).await {
                if !is_refusal(&e) {
                    return Err(e.into());
                }
                // Already there (or made by someone else meanwhile) is fine if it is a folder.
                match self.stat_on(c, &prefix).await? {
                    Some(found) if found.kind == EntryKind::Dir => {}
                    Some(_) => return Err(Fail::Kind(ErrorKind::AlreadyExists, format!("{prefix} exists and is not a folder"))),
                    None => return Err(self.refused(c, e, &prefix.parent(), EntryKind::Dir).await),
                }
            }
        }
        Ok(())
    }
}

/// `RNFR` and `RNTO` in one round trip (pipelined: a refused `RNFR` makes the server refuse
/// the `RNTO` too, as "RNFR first"). The inner error is the refusal of whichever failed first.
async fn rename_once(c: &mut Conn, src: &str, dst: &str) -> Result<Result<(), FtpError>, Fail> {
    // 200 for RNTO: some servers (bftpd) answer so.
    let commands = [
        (format!("RNFR {src}"), &[Status::RequestFilePending][..]),
        (format!("RNTO {dst}"), &[Status::RequestedFileActionOk, Status::CommandOk][..]),
    ];
    let mut replies = c.exchange(&commands).await?.into_iter();
    Ok(match (replies.next(), replies.next()) {
        (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e),
        _ => Ok(()),
    })
}

/// The server's SHA-256 of `path`, when it offers a hash command (a refusal counts as "no").
async fn hash_on(c: &mut Conn, path: &RemotePath) -> Result<Option<String>, Fail> {
    let full = c.full(path);
    let cmd = match c.feat.sha256 {
        None => return Ok(None),
        Some(HashCommand::Xsha256) => format!("XSHA256 {full}"),
        Some(HashCommand::Hash { selected }) => {
            if !selected {
                match within(c.timeout, c.ftp.custom_command("OPTS HASH SHA-256", &[Status::CommandOk])).await {
                    Ok(_) => c.feat.sha256 = Some(HashCommand::Hash { selected: true }),
                    Err(FtpError::UnexpectedResponse(_)) => {
                        c.feat.sha256 = None;
                        return Ok(None);
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            format!("HASH {full}")
        }
    };
    match within(c.timeout, c.ftp.custom_command(cmd, &[Status::File])).await {
        Ok(r) => Ok(digest_in_reply(&r)),
        Err(FtpError::UnexpectedResponse(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `SIZE`: the size of a file, `None` when the server refuses (no such file, or a folder).
async fn size_on(c: &mut Conn, full: &str) -> Result<Option<u64>, Fail> {
    size_reply(within(c.timeout, c.ftp.custom_command(format!("SIZE {full}"), &[Status::File])).await)
}

/// The size in a `SIZE` reply; `None` when the server refused (no such file, or a folder).
fn size_reply(reply: Result<suppaftp::types::Response, FtpError>) -> Result<Option<u64>, Fail> {
    match reply {
        Ok(r) => {
            let size = size_in_reply(&r);
            size.map(Some).ok_or_else(|| Fail::Kind(ErrorKind::Protocol, format!("cannot read the SIZE reply {:?}", reply_text(&r))))
        }
        Err(e) if is_refusal(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Files per extra login when a listing's MDTMs are spread (below this, one login asks all).
const MDTM_PER_LOGIN: usize = 64;
/// MDTMs sent in one write on a plain control connection (their replies, about 20 bytes
/// each, fit any socket buffer, so the server never waits for us to read).
const MDTM_BATCH: usize = 64;

/// `MDTM` of each of `names`, in order, on one connection, pipelined in batches.
async fn mdtm_all(c: &mut Conn, names: &[String]) -> Result<Vec<Option<SystemTime>>, Fail> {
    let mut times = Vec::with_capacity(names.len());
    for batch in names.chunks(MDTM_BATCH) {
        let commands: Vec<(String, &[Status])> = batch.iter().map(|n| (format!("MDTM {n}"), &[Status::File][..])).collect();
        for reply in c.exchange(&commands).await? {
            times.push(listed_mdtm(reply)?);
        }
    }
    Ok(times)
}

/// `MDTM`: the file's modification time, `None` when there is no such file.
async fn mdtm(c: &mut Conn, full: &str) -> Result<Option<SystemTime>, Fail> {
    mdtm_time(within(c.timeout, c.ftp.custom_command(format!("MDTM {full}"), &[Status::File])).await)
}

/// The time in an `MDTM` reply about a file the listing gave: `None` when the server refused
/// (removed since), and when it wrote the time in a way wharf cannot read (the `19126…` of
/// servers that write the year 2026 as 19 and 126): that file keeps its `LIST` time, and the
/// rest of the listing stands (an unreadable reply was a protocol error that stopped the
/// whole listing, every file in it untaken).
fn listed_mdtm(reply: Result<suppaftp::types::Response, FtpError>) -> Result<Option<SystemTime>, Fail> {
    match reply {
        Ok(r) => Ok(mdtm_in_reply(&r)),
        refused => mdtm_time(refused),
    }
}

/// The time in an `MDTM` reply; `None` when the server refused (no such file).
fn mdtm_time(reply: Result<suppaftp::types::Response, FtpError>) -> Result<Option<SystemTime>, Fail> {
    match reply {
        Ok(r) => {
            let t = mdtm_in_reply(&r);
            t.map(Some).ok_or_else(|| Fail::Kind(ErrorKind::Protocol, format!("cannot read the MDTM reply {:?}", reply_text(&r))))
        }
        Err(e) if is_refusal(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The server closed a reused login (`421`, by code) instead of running the command: the
/// command did not run, and may be sent once more on a new login even where running it twice
/// would do harm. On a new login a `421` is the server refusing service (shutting down, too
/// many users): nothing to try again at once.
fn closed_unrun(fail: &Fail, fresh: bool) -> bool {
    !fresh && matches!(fail, Fail::Ftp(FtpError::UnexpectedResponse(r)) if reply_code(r) == 421)
}

/// A 550 or 553: the server refused the action on this path (missing, not allowed…).
fn is_refusal(e: &FtpError) -> bool {
    matches!(e, FtpError::UnexpectedResponse(r) if matches!(reply_code(r), 550 | 553))
}

fn stalled(limit: Duration) -> Fail {
    Fail::Io(io::Error::new(io::ErrorKind::TimedOut, format!("the data connection stalled: nothing moved for {} s", limit.as_secs_f32())))
}

impl Inner {
    /// Kind, message, and whether the connection is lost (out of step or closed), decided by
    /// error variant and reply code, never by message text.
    fn classify(&self, fail: Fail) -> (ErrorKind, String, bool) {
        match fail {
            Fail::Kind(kind, message) => (kind, message, false),
            Fail::Lost(kind, message) => (kind, message, true),
            // rustls reports a missing close_notify this way: the server went away mid-transfer.
            Fail::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                (ErrorKind::Transient, "the data connection was closed before the end of the transfer".to_string(), true)
            }
            Fail::Io(e) => (ErrorKind::Transient, format!("data connection failed: {e}"), true),
            Fail::Ftp(FtpError::ConnectionError(e)) if e.get_ref().is_some_and(|i| i.is::<ReplyTooLarge>()) => {
                (ErrorKind::Protocol, e.to_string(), true)
            }
            Fail::Ftp(FtpError::ConnectionError(e)) => (ErrorKind::Transient, e.to_string(), true),
            Fail::Ftp(FtpError::SecureError(msg)) => match self.pool.connector().take_tls_refusal() {
                Some(refusal) => (ErrorKind::HostKey, refusal, true),
                None => (ErrorKind::Transient, format!("TLS failed: {msg}"), true),
            },
            // Retrying cannot help (but see `attempt`: an older login gets a new one first).
            Fail::Ftp(FtpError::UnexpectedResponse(r)) if self.pool.connector().spec().tls != FtpTls::None && wants_session_reuse(&r) => {
                let fix = match self.pool.connector().spec().tls_max_version {
                    TlsVersion::V1_3 => {
                        "set `tls_max_version: 1.2` on the endpoint (a TLS 1.2 session resumes by its ID, without the tickets a \
                         TLS 1.3 resumption needs from the server)"
                    }
                    TlsVersion::V1_2 => "the server's administrator can lift the requirement (vsftpd: `require_ssl_reuse=NO`)",
                };
                let message = format!(
                    "{}: the server requires every data connection to resume the control connection's TLS session and refused \
                     this one's; {fix}",
                    reply_text(&r)
                );
                (ErrorKind::Config, message, true)
            }
            Fail::Ftp(FtpError::UnexpectedResponse(r)) => {
                let (code, text) = (reply_code(&r), reply_text(&r));
                match code {
                    // The server closes the session (shutting down, too many users, idle).
                    421 => (ErrorKind::Transient, text, true),
                    // Logged out under us: a new login may work.
                    530 => (ErrorKind::Transient, text, true),
                    // Insufficient storage (452), storage allocation exceeded (552): the
                    // partner has to make room. (vsftpd says 451 for any failed write.)
                    452 | 552 => (ErrorKind::NoSpace, text, false),
                    400..500 => (ErrorKind::Transient, text, false),
                    _ => (ErrorKind::Protocol, text, false),
                }
            }
            Fail::Ftp(e) => (ErrorKind::Protocol, e.to_string(), true),
        }
    }

    fn err(&self, kind: ErrorKind, op: Op, path: &RemotePath, message: String) -> EndpointError {
        let message = match &self.root {
            Some(root) => not_found_where(kind, message, path, root),
            // Relative to the login folder, whose name only a connection knows.
            None => message,
        };
        EndpointError::new(kind, op, self.label.clone(), Some(path), message)
    }

    /// [`classify`](Self::classify) for a failure on `c`, where an unexpected 5xx may be the
    /// server ending the session (vsftpd's `500 OOPS: …`, as when the process serving the
    /// login dies mid-transfer: `child died`): told apart from a refusal by whether the
    /// connection still answers, not by text. Ended, it is a lost connection (`Transient`).
    async fn settle(&self, c: &mut Conn, fail: Fail) -> (ErrorKind, String, bool) {
        let server_error = matches!(&fail, Fail::Ftp(FtpError::UnexpectedResponse(r)) if reply_code(r) >= 500);
        let (kind, message, lost) = self.classify(fail);
        if server_error && !lost && !c.answers().await {
            return (ErrorKind::Transient, format!("{message} (and the server closed the session)"), true);
        }
        (kind, message, lost)
    }

    /// An error inside a stream: the stream's connection is gone (it is never reused after a
    /// failed transfer), and after a lost connection the idle ones are suspect too. `c`, the
    /// stream's control connection where it still has one, is asked whether a 5xx ended the
    /// session ([`settle`](Self::settle)).
    async fn stream_err(&self, op: Op, path: &RemotePath, c: Option<&mut Conn>, fail: Fail) -> EndpointError {
        let (kind, message, lost) = match c {
            Some(c) => self.settle(c, fail).await,
            None => self.classify(fail),
        };
        if lost {
            self.pool.discard_idle();
        }
        self.err(kind, op, path, message)
    }
}

/// A failed FTP step, before it becomes an [`EndpointError`].
enum Fail {
    Ftp(FtpError),
    /// The data connection failed or stalled.
    Io(io::Error),
    /// Decided here; the connection is still in step.
    Kind(ErrorKind, String),
    /// Decided here; the connection is out of step and must be closed.
    Lost(ErrorKind, String),
}

impl From<FtpError> for Fail {
    fn from(e: FtpError) -> Self {
        Fail::Ftp(e)
    }
}

impl FtpEndpoint {
    /// `e` with its time in UTC: moved by the endpoint's `time_offset` or `time_zone` (a
    /// server giving its times in its own zone). Every entry leaves the endpoint through here,
    /// so listings, stats and the files opened agree.
    fn in_utc(&self, mut e: Entry) -> Entry {
        let clock = self.inner.pool.connector().spec().server_clock;
        e.mtime = e.mtime.map(|t| clock.to_utc(t));
        e
    }
}

#[async_trait]
impl Endpoint for FtpEndpoint {
    fn describe(&self) -> String {
        self.inner.label.clone()
    }

    /// `mtime_precision` is 1 s where the last connection's server offered MLSD, else a minute
    /// (folders keep LIST times even where files get MDTM's seconds). `atomic_replace` is
    /// never promised: FTP cannot tell whether RNTO over an existing file is atomic.
    /// `describes_opened` where reads on the last connection asked which file they opened
    /// (`opened`).
    fn capabilities(&self) -> Capabilities {
        let connector = self.inner.pool.connector();
        Capabilities {
            mtime_precision: Duration::from_secs(if connector.mlsd.load(Ordering::Relaxed) { 1 } else { 60 }),
            atomic_replace: false,
            trailing_space_names: false,
            local_files: false,
            describes_opened: connector.describes.load(Ordering::Relaxed),
            write_replaces: false,
        }
    }

    async fn list(&self, dir: &RemotePath) -> Result<Listing, EndpointError> {
        let mut listing = self
            .run(Op::List, dir, true, |mut c| async move {
                let r = self.list_on(&mut c, dir).await;
                (c, r)
            })
            .await?;
        listing.entries = listing.entries.into_iter().map(|e| self.in_utc(e)).collect();
        Ok(listing)
    }

    async fn stat(&self, path: &RemotePath) -> Result<Option<Entry>, EndpointError> {
        let entry = self
            .run(Op::Stat, path, true, |mut c| async move {
                let r = self.stat_on(&mut c, path).await;
                (c, r)
            })
            .await?;
        Ok(entry.map(|e| self.in_utc(e)))
    }

    /// `SIZE` alone where there is no `MLST` (a stat would add `MDTM`).
    async fn size(&self, path: &RemotePath) -> Result<Option<u64>, EndpointError> {
        self.run(Op::Stat, path, true, |mut c| async move {
            let r = if c.feat.size && !c.feat.mlst {
                let full = c.full(path);
                match size_on(&mut c, &full).await {
                    // Refused: nothing there, not a file, or a server that refuses SIZE
                    // (while listing it among its features); the listing of the folder tells.
                    Ok(None) => self.find_in_parent(&mut c, path).await.map(|e| e.filter(|e| e.kind == EntryKind::File).map(|e| e.size)),
                    other => other,
                }
            } else {
                self.stat_on(&mut c, path).await.map(|e| e.map(|e| e.size))
            };
            (c, r)
        })
        .await
    }

    async fn sha256(&self, path: &RemotePath) -> Result<Option<String>, EndpointError> {
        if self.inner.pool.connector().no_hash.load(Ordering::Relaxed) {
            return Ok(None);
        }
        self.run(Op::Stat, path, true, |mut c| async move {
            let r = hash_on(&mut c, path).await;
            (c, r)
        })
        .await
    }

    async fn open_read(&self, path: &RemotePath, offset: u64) -> Result<Box<dyn ReadStream>, EndpointError> {
        let ((data, skip, facts), lease) = self
            .attempt(Op::Read, path, true, |mut c| async move {
                let r = self.start_download(&mut c, path, offset, true).await;
                (c, r)
            })
            .await?;
        let (timeout, opened) = (lease.timeout, facts.entry(path, None).map(|e| self.in_utc(e)));
        Ok(Box::new(FtpRead { data: Some(data), lease: Some(lease), skip, timeout, inner: self.inner.clone(), path: path.clone(), opened }))
    }

    /// On one login, the data connection asked for in the same write as `RETR` where it can
    /// be (`whole.rs`).
    async fn read_small(&self, path: &RemotePath, limit: usize) -> Result<(Vec<u8>, Option<Entry>), EndpointError> {
        let (data, entry) = self
            .run(Op::Read, path, true, |mut c| async move {
                let r = self.fetch_whole(&mut c, path, limit).await;
                (c, r)
            })
            .await?;
        Ok((data, entry.map(|e| self.in_utc(e))))
    }

    async fn open_write(&self, path: &RemotePath) -> Result<Box<dyn WriteStream>, EndpointError> {
        self.creatable(Op::Write, path, [path.name()])?;
        let (data, lease) = self
            .attempt(Op::Write, path, true, |mut c| async move {
                let r = self.stor(&mut c, path).await;
                (c, r)
            })
            .await?;
        let timeout = lease.timeout;
        Ok(Box::new(FtpWrite { data, lease, timeout, inner: self.inner.clone(), path: path.clone() }))
    }

    /// STOR, then SIZE on the same login: the size the server stored, for the caller's check,
    /// without taking a login again (`whole.rs`).
    async fn write_small(&self, path: &RemotePath, data: &[u8]) -> Result<Option<u64>, EndpointError> {
        self.creatable(Op::Write, path, [path.name()])?;
        // Retried on a new login: STOR to the same name starts the file again.
        self.run(Op::Write, path, true, |mut c| async move {
            let r = self.store_whole(&mut c, path, data).await;
            (c, r)
        })
        .await
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath, replace: bool) -> Result<(), EndpointError> {
        self.renamable(from, to)?;
        // Not retried: the first attempt may have happened before the connection died (but
        // see `attempt`: a `421` on a reused login is tried again).
        self.run(Op::Rename, from, false, |mut c| async move {
            let r = self.rename_on(&mut c, from, to, replace).await;
            (c, r)
        })
        .await
    }

    async fn remove(&self, path: &RemotePath) -> Result<(), EndpointError> {
        self.run(Op::Remove, path, false, |mut c| async move {
            let full = c.full(path);
            let r = match within(c.timeout, c.ftp.rm(&full)).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.refused(&mut c, e, path, EntryKind::File).await),
            };
            (c, r)
        })
        .await
    }

    async fn create_dir_all(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        self.creatable(Op::CreateDir, dir, dir.components())?;
        self.run(Op::CreateDir, dir, true, |mut c| async move {
            let r = self.create_dir_on(&mut c, dir).await;
            (c, r)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::config::flow::CertTrust;

    fn spec(tls: FtpTls) -> FtpSpec {
        FtpSpec {
            name: "server".into(),
            host: "127.0.0.1".into(),
            port: 2121,
            user: "bob".into(),
            password: Secret::new("hunter2"),
            tls,
            trust: CertTrust::SystemRoots,
            tls_max_version: TlsVersion::V1_3,
            passive: true,
            root: Some("/data".into()),
            connect_timeout: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(1),
            server_clock: Default::default(),
            use_pasv_address: false,
            max_connections: 2,
        }
    }

    #[test]
    fn describe_and_debug_hide_secrets() {
        let ep = FtpEndpoint::new(spec(FtpTls::Explicit));
        assert_eq!(ep.describe(), "ftps bob@127.0.0.1:2121");
        assert!(!format!("{ep:?}").contains("hunter2"));
        assert_eq!(FtpEndpoint::new(spec(FtpTls::None)).describe(), "ftp bob@127.0.0.1:2121");
        // Before the first connection nothing is known: the conservative precision.
        assert_eq!(ep.capabilities().mtime_precision, Duration::from_secs(60));
    }

    #[test]
    fn a_data_connection_refused_for_an_unresumed_session_is_a_configuration_error() {
        let refusal = || {
            let text = b"522 SSL connection failed: session reuse required\r\n".to_vec();
            Fail::Ftp(FtpError::UnexpectedResponse(suppaftp::types::Response::new(Status::from(522), text)))
        };
        let classify = |spec: FtpSpec| FtpEndpoint::new(spec).inner.classify(refusal());
        let (kind, message, lost) = classify(spec(FtpTls::Explicit));
        assert_eq!((kind, lost), (ErrorKind::Config, true));
        assert!(message.starts_with("522 SSL connection failed: session reuse required: ") && message.contains("`tls_max_version: 1.2`"));
        let (kind, message, _) = classify(FtpSpec { tls_max_version: TlsVersion::V1_2, ..spec(FtpTls::Explicit) });
        assert_eq!(kind, ErrorKind::Config);
        assert!(message.contains("`require_ssl_reuse=NO`") && !message.contains("tls_max_version"), "{message}");
        // Without TLS the phrase means nothing: an ordinary refusal.
        assert_eq!(classify(spec(FtpTls::None)).0, ErrorKind::Protocol);
    }

    #[test]
    fn a_server_without_room_is_no_space_not_a_transient_failure() {
        let reply = |code: u32, text: &str| {
            Fail::Ftp(FtpError::UnexpectedResponse(suppaftp::types::Response::new(
                Status::from(code),
                format!("{code} {text}\r\n").into_bytes(),
            )))
        };
        let ep = FtpEndpoint::new(spec(FtpTls::None));
        assert_eq!(ep.inner.classify(reply(452, "Insufficient storage space")).0, ErrorKind::NoSpace);
        assert_eq!(ep.inner.classify(reply(552, "Exceeded storage allocation")).0, ErrorKind::NoSpace);
        assert_eq!(ep.inner.classify(reply(451, "Failure writing to local file.")).0, ErrorKind::Transient);
    }

    #[tokio::test]
    async fn names_ending_in_a_space_are_refused_before_any_io() {
        // Port 1 is never an FTP server: an attempt to connect would fail differently.
        let ep = FtpEndpoint::new(FtpSpec { port: 1, ..spec(FtpTls::None) });
        let p = |s: &str| RemotePath::parse(s).unwrap();
        for res in [
            ep.open_write(&p("in/a.csv ")).await.err().map(|e| e.kind),
            ep.rename(&p("a"), &p("b "), true).await.err().map(|e| e.kind),
            ep.create_dir_all(&p("x /y")).await.err().map(|e| e.kind),
        ] {
            assert_eq!(res, Some(ErrorKind::Protocol));
        }
        let e = ep.open_write(&p("in/a.csv")).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::Transient, "{e}");
        // A move under the source's own name too: pure-ftpd would store `a.csv_`, over any
        // file of that name (`engine::naming::creatable` gives such a move a name it can make).
        let e = ep.rename(&p("in/a.csv "), &p("in/processed/a.csv "), false).await.err().unwrap();
        assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    }

    #[test]
    fn only_a_421_on_a_reused_login_says_the_command_did_not_run() {
        let reply = |code: u32| {
            Fail::Ftp(FtpError::UnexpectedResponse(suppaftp::types::Response::new(
                Status::from(code),
                format!("{code} Timeout.\r\n").into_bytes(),
            )))
        };
        assert!(closed_unrun(&reply(421), false));
        // A new login's 421 is a server refusing service; other codes may follow a run command.
        assert!(!closed_unrun(&reply(421), true));
        assert!(!closed_unrun(&reply(451), false));
        assert!(!closed_unrun(&Fail::Io(io::Error::from(io::ErrorKind::UnexpectedEof)), false));
    }

    /// A listed file's `MDTM` reply wharf cannot read is no time for that file (it keeps its
    /// `LIST` time), not a protocol error stopping the listing; one file's `MDTM` asked alone
    /// (a stat) still says it cannot read it.
    #[test]
    fn an_unreadable_mdtm_reply_of_a_listed_file_is_no_time() {
        let reply = |code: u32, text: &str| suppaftp::types::Response::new(Status::from(code), format!("{code} {text}\r\n").into_bytes());
        assert_eq!(listed_mdtm(Ok(reply(213, "19126120711300"))).ok(), Some(None));
        assert!(matches!(mdtm_time(Ok(reply(213, "19126120711300"))), Err(Fail::Kind(ErrorKind::Protocol, _))));
        assert!(listed_mdtm(Ok(reply(213, "20261207113000"))).is_ok_and(|t| t.is_some()));
        let refused = Err(FtpError::UnexpectedResponse(reply(550, "No such file.")));
        assert_eq!(listed_mdtm(refused).ok(), Some(None));
    }
}
