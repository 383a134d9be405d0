//! One FTP control connection of the sandbox: login, the current folder, and every command's
//! effect and reply.
//!
//! Owns the session's state (logged in or not, the current folder, a pending `REST` offset or
//! `RNFR` name, the passive port for the next transfer) and which reply each outcome gets:
//! 550 for a refused or missing path (wharf's client reads 550/553 as "refused, not
//! retried"), 425/426 when the data connection fails (transient), 451/452 when the disk does.
//! File operations are `fs::Folder`'s, so the FTP and SFTP sides refuse the same paths.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Reply;
use super::command::{Command, parse_offset};
use super::data::{self, Passive, PumpError};
use super::listing;
use crate::sandbox::Shared;
use crate::sandbox::fs::{self, Folder, FsError, FsErrorKind};
use crate::sandbox::jail::{Follow, Jail};
use crate::sandbox::listen::Stopped;

/// Longest command line accepted (a path of 4 KiB and the verb).
const MAX_LINE: usize = 4096 + 16;
/// A session with no command for this long is closed (vsftpd's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Wrong passwords before the connection is closed.
const MAX_FAILED_LOGINS: u32 = 3;
/// Pause before answering a wrong password.
const LOGIN_DELAY: Duration = Duration::from_millis(500);

/// Serves one control connection until QUIT, the client leaves, it idles out, or the server
/// stops.
pub async fn serve(socket: TcpStream, peer: SocketAddr, shared: Arc<Shared>, mut stopped: Stopped) {
    let local = match socket.local_addr() {
        Ok(a) => a.ip(),
        Err(e) => {
            tracing::debug!(%peer, error = %e, "FTP connection gone before the greeting.");
            return;
        }
    };
    let _ = socket.set_nodelay(true);
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let mut session = Session::new(shared, peer.ip(), local);
    if send(&mut write, &Reply::new(220, "wharf sandbox FTP server ready")).await.is_err() {
        return;
    }
    loop {
        let line = tokio::select! {
            line = tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut read)) => line,
            _ = stopped.wait() => {
                let _ = send(&mut write, &Reply::new(421, "wharf sandbox stopping")).await;
                return;
            }
        };
        let line = match line {
            Err(_) => {
                let _ = send(&mut write, &Reply::new(421, "idle for too long; closing")).await;
                return;
            }
            Ok(Ok(Line::Text(line))) => line,
            Ok(Ok(Line::End)) => return,
            Ok(Ok(Line::TooLong)) => {
                let _ = send(&mut write, &Reply::new(500, "command line too long; closing")).await;
                return;
            }
            Ok(Ok(Line::NotUtf8)) => {
                if send(&mut write, &Reply::new(501, "the command is not UTF-8")).await.is_err() {
                    return;
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "FTP control connection failed.");
                return;
            }
        };
        let command = Command::parse(&line);
        match &command {
            Command::Pass(_) => tracing::debug!(%peer, "FTP: PASS ****"),
            _ => tracing::debug!(%peer, line, "FTP command."),
        }
        let outcome = tokio::select! {
            outcome = session.handle(command, &mut write) => outcome,
            _ = stopped.wait() => {
                let _ = send(&mut write, &Reply::new(421, "wharf sandbox stopping")).await;
                return;
            }
        };
        match outcome {
            Ok(Next::Continue) => {}
            Ok(Next::Close) => return,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "FTP control connection failed.");
                return;
            }
        }
    }
}

enum Line {
    Text(String),
    End,
    TooLong,
    NotUtf8,
}

/// One command line without its line end (CRLF, or a bare LF from lenient clients).
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(read: &mut R) -> io::Result<Line> {
    let mut buf = Vec::new();
    let n = (&mut *read).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() != Some(&b'\n') {
        return Ok(if buf.len() > MAX_LINE { Line::TooLong } else { Line::End });
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(String::from_utf8(buf).map_or(Line::NotUtf8, Line::Text))
}

async fn send<W: AsyncWrite + Unpin>(write: &mut W, reply: &Reply) -> io::Result<()> {
    write.write_all(reply.wire().as_bytes()).await?;
    write.flush().await
}

/// What the connection does after a command.
enum Next {
    Continue,
    Close,
}

struct Session {
    shared: Arc<Shared>,
    /// The client's address: data connections are accepted from it only.
    client: IpAddr,
    /// Our address on the control connection: passive ports open there.
    local: IpAddr,
    user: Option<String>,
    logged_in: bool,
    failed_logins: u32,
    /// The current folder, as the client sees it (`/` is the served folder).
    cwd: String,
    /// `REST`: where the next transfer starts.
    rest: u64,
    /// `RNFR`: what the next `RNTO` renames.
    rename_from: Option<String>,
    passive: Option<Passive>,
}

impl Session {
    fn new(shared: Arc<Shared>, client: IpAddr, local: IpAddr) -> Self {
        Session {
            shared,
            client,
            local,
            user: None,
            logged_in: false,
            failed_logins: 0,
            cwd: "/".to_string(),
            rest: 0,
            rename_from: None,
            passive: None,
        }
    }

    /// The client path `arg` names: absolute, or from the current folder.
    fn path(&self, arg: &str) -> String {
        if arg.starts_with('/') { arg.to_string() } else { format!("{}/{arg}", self.cwd.trim_end_matches('/')) }
    }

    /// Runs a blocking folder operation on tokio's blocking threads.
    async fn on_folder<T, F>(&self, f: F) -> Result<T, FsError>
    where
        T: Send + 'static,
        F: FnOnce(&Folder) -> Result<T, FsError> + Send + 'static,
    {
        let folder = self.shared.folder.clone();
        fs::blocking(move || f(&folder)).await
    }

    async fn handle<W: AsyncWrite + Unpin>(&mut self, command: Command, write: &mut W) -> io::Result<Next> {
        if !self.logged_in && !command.before_login() {
            send(write, &Reply::new(530, "log in with USER and PASS first")).await?;
            return Ok(Next::Continue);
        }
        // REST applies to the command right after it only.
        let rest = if matches!(command, Command::Rest(_)) { 0 } else { std::mem::take(&mut self.rest) };
        if !matches!(command, Command::Rnto(_)) {
            // RNFR too: a new one replaces the old.
            self.rename_from = None;
        }
        let reply = match command {
            Command::User(user) => {
                self.logged_in = false;
                self.user = Some(user.clone());
                Reply::new(331, format!("password required for {user}"))
            }
            Command::Pass(password) => return self.login(&password, write).await,
            Command::Quit => {
                send(write, &Reply::new(221, "goodbye")).await?;
                return Ok(Next::Close);
            }
            Command::Noop => Reply::new(200, "NOOP ok"),
            Command::Syst => Reply::new(215, "UNIX Type: L8"),
            Command::Feat => Reply::multi(
                211,
                "Features:",
                ["EPSV", "PASV", "MDTM", "MFMT", "SIZE", "REST STREAM", &format!("MLST {}", listing::MLST_FACTS), "MLSD", "UTF8", "TVFS"],
                "End",
            ),
            Command::Opts(arg) => {
                let upper = arg.to_ascii_uppercase();
                if upper == "UTF8 ON" || upper == "UTF8" {
                    Reply::new(200, "always in UTF-8 mode")
                } else if upper.starts_with("MLST") {
                    Reply::new(200, format!("MLST OPTS {}", listing::MLST_FACTS))
                } else {
                    Reply::new(501, format!("OPTS {arg}: not understood"))
                }
            }
            Command::Type(t) => match t.to_ascii_uppercase().as_str() {
                "I" | "L 8" => Reply::new(200, "binary mode"),
                "A" | "A N" => Reply::new(200, "ASCII mode accepted; files are sent as they are, without rewriting line ends"),
                _ => Reply::new(504, format!("TYPE {t} is not supported")),
            },
            Command::Mode(m) if m.eq_ignore_ascii_case("S") => Reply::new(200, "stream mode"),
            Command::Mode(m) => Reply::new(504, format!("MODE {m} is not supported; only S")),
            Command::Stru(s) if s.eq_ignore_ascii_case("F") => Reply::new(200, "file structure"),
            Command::Stru(s) => Reply::new(504, format!("STRU {s} is not supported; only F")),
            Command::Pwd => Reply::new(257, format!("{} is the current folder", quote(&self.cwd))),
            Command::Cwd(arg) => self.cwd(&arg).await,
            Command::Cdup => self.cwd("..").await,
            Command::Pasv => self.pasv().await,
            Command::Epsv(arg) => self.epsv(arg.as_deref()).await,
            Command::Active => Reply::new(502, "active mode (PORT/EPRT) is not offered; use passive mode"),
            Command::List(arg) => return self.listing(arg, ListKind::List, write).await,
            Command::Nlst(arg) => return self.listing(arg, ListKind::Names, write).await,
            Command::Mlsd(arg) => return self.listing(arg, ListKind::Mlsd, write).await,
            Command::Mlst(arg) => self.mlst(arg.as_deref()).await,
            Command::Size(arg) => self.file_fact(&arg, |md| md.len().to_string()).await,
            Command::Mdtm(arg) => self.file_fact(&arg, listing::mdtm).await,
            Command::Mfmt(arg) => self.mfmt(&arg).await,
            Command::Rest(arg) => match parse_offset(&arg) {
                Some(offset) => {
                    self.rest = offset;
                    Reply::new(350, format!("restarting at {offset}; send RETR or STOR"))
                }
                None => Reply::new(501, format!("REST {arg}: not a byte offset")),
            },
            Command::Retr(arg) => return self.retr(&arg, rest, write).await,
            Command::Stor(arg) => return self.stor(&arg, rest, false, write).await,
            Command::Appe(arg) => return self.stor(&arg, 0, true, write).await,
            Command::Dele(arg) => self.act(&arg, Reply::new(250, "deleted"), Folder::remove_file).await,
            Command::Mkd(arg) => {
                let path = self.path(&arg);
                let shown = Jail::client_path(&path).unwrap_or(path);
                self.act(&arg, Reply::new(257, format!("{} created", quote(&shown))), |f, p| f.create_dir(p, None)).await
            }
            Command::Rmd(arg) => self.act(&arg, Reply::new(250, "folder removed"), Folder::remove_dir).await,
            Command::Rnfr(arg) => {
                let path = self.path(&arg);
                let p = path.clone();
                match self.on_folder(move |f| f.metadata(&p, Follow::No)).await {
                    Ok(_) => {
                        self.rename_from = Some(path);
                        Reply::new(350, "ready for RNTO")
                    }
                    Err(e) => refusal(e),
                }
            }
            Command::Rnto(arg) => match self.rename_from.take() {
                None => Reply::new(503, "send RNFR first"),
                Some(from) => {
                    let to = self.path(&arg);
                    // Replaces an existing file, as rename(2) and vsftpd do.
                    match self.on_folder(move |f| f.rename(&from, &to, true)).await {
                        Ok(()) => Reply::new(250, "renamed"),
                        Err(e) => refusal(e),
                    }
                }
            },
            Command::Abor => Reply::new(225, "no transfer to abort"),
            Command::Tls => Reply::new(502, "TLS is not offered: the sandbox speaks plain FTP on a loopback address (use `tls: none`)"),
            Command::MissingArgument(verb) => Reply::new(501, format!("{verb} needs an argument")),
            Command::Unknown(verb) => Reply::new(502, format!("{verb} is not implemented")),
        };
        send(write, &reply).await?;
        Ok(Next::Continue)
    }

    /// A folder operation on the path `arg` names, answered with `done` or the refusal.
    async fn act(&self, arg: &str, done: Reply, op: fn(&Folder, &str) -> Result<(), FsError>) -> Reply {
        let path = self.path(arg);
        match self.on_folder(move |f| op(f, &path)).await {
            Ok(()) => done,
            Err(e) => refusal(e),
        }
    }

    async fn login<W: AsyncWrite + Unpin>(&mut self, password: &str, write: &mut W) -> io::Result<Next> {
        let Some(user) = self.user.clone() else {
            send(write, &Reply::new(503, "send USER first")).await?;
            return Ok(Next::Continue);
        };
        if self.shared.logins.password_ok(&user, password) {
            self.logged_in = true;
            tracing::info!(peer = %self.client, user, "FTP login.");
            send(write, &Reply::new(230, "logged in")).await?;
            return Ok(Next::Continue);
        }
        tracing::info!(peer = %self.client, user, "FTP login refused.");
        self.failed_logins += 1;
        tokio::time::sleep(LOGIN_DELAY).await;
        if self.failed_logins >= MAX_FAILED_LOGINS {
            send(write, &Reply::new(530, "login incorrect; closing")).await?;
            return Ok(Next::Close);
        }
        send(write, &Reply::new(530, "login incorrect")).await?;
        Ok(Next::Continue)
    }

    async fn cwd(&mut self, arg: &str) -> Reply {
        let path = self.path(arg);
        let canonical = match Jail::client_path(&path) {
            Ok(p) => p,
            Err(e) => return refusal(fs::jail_error(&path, e)),
        };
        let p = canonical.clone();
        match self.on_folder(move |f| f.metadata(&p, Follow::Yes)).await {
            Ok(md) if md.is_dir() => {
                self.cwd = canonical;
                Reply::new(250, format!("now in {}", quote(&self.cwd)))
            }
            Ok(_) => Reply::new(550, format!("{canonical}: not a folder")),
            Err(e) => refusal(e),
        }
    }

    async fn pasv(&mut self) -> Reply {
        let IpAddr::V4(ip) = self.local else {
            return Reply::new(522, "PASV is IPv4 only; use EPSV");
        };
        match self.open_passive().await {
            Ok(port) => {
                let [a, b, c, d] = ip.octets();
                Reply::new(227, format!("Entering Passive Mode ({a},{b},{c},{d},{},{})", port >> 8, port & 0xff))
            }
            Err(r) => r,
        }
    }

    async fn epsv(&mut self, arg: Option<&str>) -> Reply {
        match arg.map(str::to_ascii_uppercase).as_deref() {
            None | Some("1") | Some("2") => {}
            Some("ALL") => return Reply::new(200, "EPSV ALL ok"),
            Some(other) => return Reply::new(522, format!("network protocol {other} not supported; use (1,2)")),
        }
        match self.open_passive().await {
            Ok(port) => Reply::new(229, format!("Entering Extended Passive Mode (|||{port}|)")),
            Err(r) => r,
        }
    }

    async fn open_passive(&mut self) -> Result<u16, Reply> {
        self.passive = None;
        let passive = Passive::open(self.local).await.map_err(|e| Reply::new(425, format!("cannot open a passive port: {e}")))?;
        let port = passive.addr().map_err(|e| Reply::new(425, format!("cannot open a passive port: {e}")))?.port();
        self.passive = Some(passive);
        Ok(port)
    }

    /// Takes the passive port for a transfer, or the reply that says there is none.
    fn take_passive(&mut self) -> Result<Passive, Reply> {
        self.passive.take().ok_or_else(|| Reply::new(425, "use PASV or EPSV first"))
    }

    /// `150`, the data connection, then `f` with it; the final reply is `f`'s.
    async fn transfer<W, F, Fut>(&mut self, passive: Passive, what: &str, write: &mut W, f: F) -> io::Result<Next>
    where
        W: AsyncWrite + Unpin,
        F: FnOnce(TcpStream) -> Fut,
        Fut: Future<Output = Reply>,
    {
        send(write, &Reply::new(150, format!("opening the data connection for {what}"))).await?;
        let reply = match passive.accept(self.client).await {
            Ok(data) => f(data).await,
            Err(e) => Reply::new(425, format!("no data connection: {e}")),
        };
        send(write, &reply).await?;
        Ok(Next::Continue)
    }

    async fn listing<W: AsyncWrite + Unpin>(&mut self, arg: Option<String>, kind: ListKind, write: &mut W) -> io::Result<Next> {
        let passive = match self.take_passive() {
            Ok(p) => p,
            Err(r) => return send(write, &r).await.map(|()| Next::Continue),
        };
        let path = self.path(arg.as_deref().unwrap_or("."));
        let p = path.clone();
        let bytes = match self.on_folder(move |f| list(f, &p, kind)).await {
            Ok(bytes) => bytes,
            Err(e) => return send(write, &refusal(e)).await.map(|()| Next::Continue),
        };
        self.transfer(passive, &format!("the listing of {path}"), write, |data| async move {
            match data::send(data, &bytes).await {
                Ok(()) => Reply::new(226, "listing sent"),
                Err(e) => Reply::new(426, format!("listing not sent: {e}")),
            }
        })
        .await
    }

    async fn mlst(&self, arg: Option<&str>) -> Reply {
        let path = self.path(arg.unwrap_or("."));
        let shown = match Jail::client_path(&path) {
            Ok(p) => p,
            Err(e) => return refusal(fs::jail_error(&path, e)),
        };
        let p = shown.clone();
        match self.on_folder(move |f| f.metadata(&p, Follow::No)).await {
            Ok(md) => Reply::multi(250, format!("listing {shown}"), [format!("{} {shown}", listing::facts(&md))], "End"),
            Err(e) => refusal(e),
        }
    }

    /// `SIZE`/`MDTM`: a fact of a regular file.
    async fn file_fact(&self, arg: &str, fact: fn(&std::fs::Metadata) -> String) -> Reply {
        let path = self.path(arg);
        let p = path.clone();
        match self.on_folder(move |f| f.metadata(&p, Follow::Yes)).await {
            Ok(md) if md.is_file() => Reply::new(213, fact(&md)),
            Ok(_) => Reply::new(550, format!("{path}: not a regular file")),
            Err(e) => refusal(e),
        }
    }

    async fn mfmt(&self, arg: &str) -> Reply {
        let Some((time, name)) = listing::parse_mfmt(arg) else {
            return Reply::new(501, "MFMT needs YYYYMMDDHHMMSS and a path");
        };
        let path = self.path(name);
        let secs = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let Ok(secs) = u32::try_from(secs) else { return Reply::new(501, "MFMT: time out of range") };
        let p = path.clone();
        match self.on_folder(move |f| f.set_attrs(&p, &FileAttributes { mtime: Some(secs), ..Default::default() })).await {
            Ok(()) => Reply::new(213, format!("Modify={}; {name}", listing::time(time))),
            Err(e) => refusal(e),
        }
    }

    /// Opens `path` as `flags` say, positioned at `offset`.
    async fn open_at(&self, path: &str, flags: OpenFlags, offset: u64) -> Result<tokio::fs::File, FsError> {
        let p = path.to_string();
        let file = self
            .on_folder(move |f| {
                let mut file = f.open(&p, flags, None)?;
                seek(&mut file, offset).map_err(|e| fs::io_status(&p, e))?;
                Ok(file)
            })
            .await?;
        Ok(tokio::fs::File::from_std(file))
    }

    async fn retr<W: AsyncWrite + Unpin>(&mut self, arg: &str, offset: u64, write: &mut W) -> io::Result<Next> {
        let passive = match self.take_passive() {
            Ok(p) => p,
            Err(r) => return send(write, &r).await.map(|()| Next::Continue),
        };
        let path = self.path(arg);
        let file = match self.open_at(&path, OpenFlags::READ, offset).await {
            Ok(file) => file,
            Err(e) => return send(write, &refusal(e)).await.map(|()| Next::Continue),
        };
        let what = path.clone();
        self.transfer(passive, &what, write, |mut data| async move {
            match data::pump(file, &mut data, true).await {
                Ok(n) => match data.shutdown().await {
                    Ok(()) => Reply::new(226, format!("sent {n} bytes")),
                    Err(e) => Reply::new(426, format!("transfer aborted: {e}")),
                },
                Err(PumpError::Connection(e)) => Reply::new(426, format!("transfer aborted: {e}")),
                Err(PumpError::File(e)) => Reply::new(451, format!("{path}: cannot read: {e}")),
            }
        })
        .await
    }

    /// `STOR` (from `offset`, after a `REST`) or `APPE`.
    async fn stor<W: AsyncWrite + Unpin>(&mut self, arg: &str, offset: u64, append: bool, write: &mut W) -> io::Result<Next> {
        let passive = match self.take_passive() {
            Ok(p) => p,
            Err(r) => return send(write, &r).await.map(|()| Next::Continue),
        };
        let path = self.path(arg);
        let flags = OpenFlags::WRITE
            | OpenFlags::CREATE
            | if append {
                OpenFlags::APPEND
            } else if offset == 0 {
                OpenFlags::TRUNCATE
            } else {
                OpenFlags::empty()
            };
        let file = match self.open_at(&path, flags, offset).await {
            Ok(file) => file,
            Err(e) => return send(write, &refusal(e)).await.map(|()| Next::Continue),
        };
        let what = path.clone();
        self.transfer(passive, &what, write, |data| async move {
            match data::pump(data, file, false).await {
                Ok(n) => Reply::new(226, format!("stored {n} bytes")),
                Err(PumpError::Connection(e)) => Reply::new(426, format!("transfer aborted: {e}")),
                Err(PumpError::File(e)) if e.kind() == io::ErrorKind::StorageFull => Reply::new(452, format!("{path}: not stored: {e}")),
                Err(PumpError::File(e)) => Reply::new(451, format!("{path}: not stored: {e}")),
            }
        })
        .await
    }
}

fn seek(file: &mut std::fs::File, offset: u64) -> io::Result<()> {
    use std::io::Seek as _;
    if offset > 0 {
        file.seek(io::SeekFrom::Start(offset))?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum ListKind {
    /// `LIST`: `ls -l` lines.
    List,
    /// `NLST`: names only.
    Names,
    /// `MLSD`: facts.
    Mlsd,
}

/// The whole listing of `path` (a folder; for `LIST`/`NLST` a file lists itself).
fn list(folder: &Folder, path: &str, kind: ListKind) -> Result<Vec<u8>, FsError> {
    use std::os::unix::ffi::OsStrExt as _;
    let md = folder.metadata(path, Follow::Yes)?;
    let now = SystemTime::now();
    let line = |md: &std::fs::Metadata, name: &[u8]| match kind {
        ListKind::List => listing::list_line(md, name, now),
        ListKind::Mlsd => listing::mlsd_line(md, name),
        ListKind::Names => (!name.contains(&b'\r') && !name.contains(&b'\n')).then(|| [name, b"\r\n"].concat()),
    };
    if !md.is_dir() {
        return match kind {
            ListKind::Mlsd => Err(FsError { kind: FsErrorKind::Failure, path: Some(path.to_string()), reason: "not a folder".into() }),
            _ => {
                let name = path.rsplit('/').next().unwrap_or(path);
                Ok(line(&md, name.as_bytes()).unwrap_or_default())
            }
        };
    }
    let mut out = Vec::new();
    for entry in folder.read_dir(path)? {
        let entry = entry.map_err(|e| fs::io_status(path, e))?;
        // Gone since the folder was read: not listed.
        let Ok(md) = entry.metadata() else { continue };
        if let Some(l) = line(&md, entry.file_name().as_bytes()) {
            out.extend_from_slice(&l);
        }
    }
    Ok(out)
}

/// A refused file operation: 550 with the reason (which names the client's path).
fn refusal(e: FsError) -> Reply {
    Reply::new(550, e.message())
}

/// A path in a 257 reply: in double quotes, a quote inside doubled (RFC 959).
fn quote(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_taken_from_the_current_folder() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Arc::new(Shared {
            logins: crate::sandbox::login::Logins { user: "u".into(), password: crate::config::Secret::new("p"), keys: vec![] },
            folder: Arc::new(Folder::new(Jail::new(dir.path()).unwrap())),
        });
        let mut s = Session::new(shared, IpAddr::from([127, 0, 0, 1]), IpAddr::from([127, 0, 0, 1]));
        assert_eq!(s.path("a.csv"), "/a.csv");
        assert_eq!(s.path("/in/a.csv"), "/in/a.csv");
        s.cwd = "/in".into();
        assert_eq!(s.path("a.csv"), "/in/a.csv");
        assert_eq!(s.path("../x"), "/in/../x");
        assert_eq!(quote("/a \"b\""), "\"/a \"\"b\"\"\"");
    }

    #[tokio::test]
    async fn lines_end_at_crlf_or_lf_and_are_bounded() {
        let mut r: &[u8] = b"USER a\r\nPASS b\nNOOP";
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::Text(l) if l == "USER a"));
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::Text(l) if l == "PASS b"));
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::End), "no line end: the client left mid-line");
        let long = vec![b'a'; MAX_LINE + 10];
        let mut r: &[u8] = &long;
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::TooLong));
        let mut r: &[u8] = b"RETR \xff\r\n";
        assert!(matches!(read_line(&mut r).await.unwrap(), Line::NotUtf8));
    }
}
