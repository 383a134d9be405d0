//! Making one logged-in FTP control connection: TCP, TLS (explicit `AUTH TLS` or implicit),
//! login, binary type, what the server offers (`FEAT`), the root folder, and the data-connection
//! mode (EPSV, PASV on the server's own address whatever its reply names, or active).
//!
//! Owns the translation of connection-time failures into [`ErrorKind`]s — unreachable or slow
//! is `Transient`, a refused login `AuthFailed`, an untrusted certificate `HostKey`, an
//! unreadable CA file `Config` — with messages that never contain the password. It does not
//! keep connections or reconnect; `super::pool` does.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use suppaftp::tokio::ImplAsyncFtpStream;
use suppaftp::types::FileType;
use suppaftp::types::Response;
use suppaftp::{FtpError, FtpResult, Mode, Status};
use tokio::net::TcpStream;

use super::tls::Tls;
use crate::config::flow::{FtpSpec, FtpTls};
use crate::endpoint::greeting::not_ftp;
use crate::endpoint::reach::{self, Given};
use crate::endpoint::{EndpointError, ErrorKind, Op, RemotePath};
use crate::text::{Keep, SERVER_TEXT, one_line};

/// The control connection. One type for every mode: without TLS it simply never upgrades.
pub(super) type Ftp = ImplAsyncFtpStream<super::tls_stream::FtpTlsStream>;

/// What the server offers, from `FEAT`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Feat {
    /// `MLSD` (listed as `MLST`, which implies it, or on its own).
    pub mlsd: bool,
    pub mlst: bool,
    pub mdtm: bool,
    pub size: bool,
    pub epsv: bool,
    pub utf8: bool,
    /// How the server computes a file's SHA-256, if it can.
    pub sha256: Option<HashCommand>,
}

/// A server-side SHA-256 command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HashCommand {
    /// `HASH` (draft-bryan-ftpext-hash), SHA-256 listed; `selected`: already the current one.
    Hash { selected: bool },
    /// `XSHA256` (a common non-standard command).
    Xsha256,
}

impl Feat {
    /// From the lines of a `FEAT` reply (features are the lines starting with a space).
    pub fn parse(reply: &str) -> Feat {
        let names: Vec<String> = reply
            .lines()
            .filter(|l| l.starts_with(' '))
            .filter_map(|l| l.split_whitespace().next())
            .map(|n| n.to_ascii_uppercase())
            .collect();
        let has = |f: &str| names.iter().any(|n| n == f);
        Feat {
            mlsd: has("MLST") || has("MLSD"),
            mlst: has("MLST"),
            mdtm: has("MDTM"),
            size: has("SIZE"),
            epsv: has("EPSV"),
            utf8: has("UTF8"),
            sha256: hash_command(reply),
        }
    }
}

/// `HASH SHA-1;SHA-256*;MD5` (the `*` marks the selected algorithm) or `XSHA256`.
fn hash_command(reply: &str) -> Option<HashCommand> {
    let mut xsha = false;
    for line in reply.lines().filter(|l| l.starts_with(' ')) {
        let mut words = line.split_whitespace();
        match words.next().map(str::to_ascii_uppercase).as_deref() {
            Some("HASH") => {
                let algos = words.next().unwrap_or("");
                if let Some(a) = algos.split(';').find(|a| a.trim_end_matches('*').eq_ignore_ascii_case("SHA-256")) {
                    return Some(HashCommand::Hash { selected: a.ends_with('*') });
                }
            }
            Some("XSHA256") => xsha = true,
            _ => {}
        }
    }
    xsha.then_some(HashCommand::Xsha256)
}

/// The hex digest in a `HASH` reply (`213 SHA-256 0-49 <hex> name`) or an `XSHA256` reply
/// (`213 <hex>`): the first word of 64 hex digits, on any line.
pub(super) fn digest_in_reply(r: &Response) -> Option<String> {
    let lines = reply_lines(r);
    let mut words = lines.iter().flat_map(|l| l.split_whitespace());
    words.find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit())).map(str::to_ascii_lowercase)
}

/// The size in a `SIZE` reply (`213 1234`): the first line that is a number.
pub(super) fn size_in_reply(r: &Response) -> Option<u64> {
    reply_lines(r).iter().find_map(|l| l.trim().parse().ok())
}

/// The time in an `MDTM` reply (`213 20261118110640`): the first line that is one.
pub(super) fn mdtm_in_reply(r: &Response) -> Option<SystemTime> {
    reply_lines(r).iter().find_map(|l| super::list::parse_mdtm(l))
}

/// A live, logged-in control connection in binary mode.
pub(super) struct Conn {
    pub ftp: Ftp,
    /// The server's host name, for log fields.
    pub host: String,
    pub feat: Feat,
    /// Absolute folder on the server that `RemotePath`s are relative to.
    pub root: String,
    /// Longest wait for a reply or for a stalled data connection.
    pub timeout: Duration,
    /// Data connections use EPSV (else PASV, or active mode).
    pub epsv: bool,
    /// The control connection is not encrypted: commands can be pipelined ([`Conn::exchange`]).
    pub plain: bool,
    /// Data connections are passive (the client connects), not active.
    pub passive: bool,
}

impl Conn {
    /// `{root}/{path}` on the server.
    pub fn full(&self, p: &RemotePath) -> String {
        p.on_server(&self.root)
    }

    /// Whether the connection is still in step and open after an unexpected reply: `NOOP`
    /// answered 200. A server that ends a session it cannot serve says so with a 5xx of its
    /// own and closes the connection (vsftpd: `500 OOPS: …`, sometimes two of them), so what
    /// comes back is the rest of that, or nothing.
    pub async fn answers(&mut self) -> bool {
        within(self.timeout.min(Duration::from_secs(10)), self.ftp.noop()).await.is_ok()
    }

    /// Whether the server spoke or hung up while the connection sat idle (nothing is pending
    /// on a connection in step): the `421` and close of an idle timeout (vsftpd's
    /// `idle_session_timeout`), or a session killed. Looks without writing anything, so no
    /// command is sent on a login that is already gone. Reads what the socket holds as far
    /// as the runtime has seen it (one poll): a close it has not seen yet shows as the
    /// `421` reply to the next command instead (see `FtpEndpoint::attempt`).
    pub async fn spoke_while_idle(&self) -> bool {
        let socket = self.ftp.get_ref().await;
        let mut byte = [0u8; 1];
        // Ready: bytes (a reply nobody asked for), the end of the stream, or an error.
        socket.peek(&mut byte).now_or_never().is_some()
    }

    /// Sends `commands` and reads one reply for each, in order, each checked against its
    /// expected codes. On a plain control connection the commands go out in one write before
    /// any reply is read (pipelining: RFC 959 servers read commands one at a time and answer in
    /// order), so a batch costs one round trip instead of one per command; over TLS the
    /// socket is inside suppaftp's TLS stream and they are sent one by one.
    ///
    /// A refused command (`UnexpectedResponse`) is its own entry of the result, and the replies
    /// after it are still read, so the connection stays in step; any other failure (the
    /// connection broke, timed out, or sent nonsense) is the outer error, after which the
    /// connection is out of step and must be dropped. A `421` is an outer error too: the
    /// server closes the session, and the code is what tells the caller the command was not
    /// run (not the end of the stream a next read would find). Use it only for commands whose later
    /// ones are harmless when an earlier one failed (`RNTO` after a refused `RNFR` is
    /// refused in turn).
    pub async fn exchange(&mut self, commands: &[(String, &[Status])]) -> FtpResult<Vec<FtpResult<Response>>> {
        let mut replies = Vec::with_capacity(commands.len());
        if !self.plain {
            for (cmd, expected) in commands {
                replies.push(closing(checked(within(self.timeout, self.ftp.custom_command(cmd.as_str(), expected)).await)?)?);
            }
            return Ok(replies);
        }
        let lines: Vec<&str> = commands.iter().map(|(cmd, _)| cmd.as_str()).collect();
        self.send_pipelined(&lines).await?;
        for (_, expected) in commands {
            replies.push(closing(checked(within(self.timeout, self.ftp.read_response_in(expected)).await)?)?);
        }
        Ok(replies)
    }

    /// Writes `commands` to a plain control connection in one write, without reading any
    /// reply: the caller reads one for each, in order.
    pub async fn send_pipelined(&mut self, commands: &[&str]) -> FtpResult<()> {
        let mut bytes = Vec::new();
        for cmd in commands {
            // Checked here as suppaftp checks what it sends: a line end would start a command
            // of the caller's making. (No IAC to escape: 0xFF never occurs in UTF-8.)
            if cmd.contains(['\r', '\n']) {
                let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "FTP command must not contain CR or LF");
                return Err(FtpError::ConnectionError(e));
            }
            bytes.extend_from_slice(cmd.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        within(self.timeout, send_raw(&self.ftp, &bytes)).await
    }

    /// After a command that opens a data connection: whether to send it again (the server did
    /// not understand EPSV: this connection, and through `epsv_refused` future ones, switch
    /// to PASV), to report that the server allows no passive data connections at all, or to
    /// go on with the result. A server that ended the session with its 500 (vsftpd's
    /// `500 OOPS`) did not refuse EPSV: the connection no longer answers, and nothing is
    /// switched.
    pub async fn data_setup<T>(&mut self, res: &FtpResult<T>, epsv_refused: &AtomicBool) -> DataSetup {
        let code = match res {
            Err(FtpError::UnexpectedResponse(r)) => reply_code(r),
            _ => return DataSetup::Go,
        };
        // RETR/STOR/LIST/MLSD are never "not understood"; EPSV is, on old servers.
        if self.epsv && (500..=502).contains(&code) && self.answers().await {
            tracing::info!(host = %self.host, "The server does not understand EPSV; using PASV.");
            self.epsv = false;
            self.ftp.set_mode(Mode::Passive);
            epsv_refused.store(true, Ordering::Relaxed);
            return DataSetup::Again;
        }
        // The same 550 answers a refused passive request and a refused file: asking for
        // the passive connection alone tells which (round trips on failures only). A login
        // the server dropped (421, 530) is not a refusal of passive mode.
        if code >= 500 && code != 530 && self.passive {
            if self.epsv {
                match self.passive_refusal("EPSV", Status::ExtendedPassiveMode).await {
                    None => return DataSetup::Go,
                    // EPSV refused outright, but PASV may do (as for a server that does not
                    // understand EPSV).
                    Some(_) if self.passive_refusal("PASV", Status::PassiveMode).await.is_none() => {
                        tracing::info!(host = %self.host, "The server refuses EPSV; using PASV.");
                        self.epsv = false;
                        self.ftp.set_mode(Mode::Passive);
                        epsv_refused.store(true, Ordering::Relaxed);
                        return DataSetup::Again;
                    }
                    Some(why) => return DataSetup::NoPassive(why),
                }
            }
            if let Some(why) = self.passive_refusal("PASV", Status::PassiveMode).await {
                return DataSetup::NoPassive(why);
            }
        }
        DataSetup::Go
    }

    /// Asks for a passive data connection alone (`EPSV` or `PASV`): why the server refuses
    /// passive mode, or `None` when it does not (or answers something else: not a refusal).
    async fn passive_refusal(&mut self, cmd: &str, ok: Status) -> Option<String> {
        match within(self.timeout, self.ftp.custom_command(cmd, &[ok])).await {
            Err(FtpError::UnexpectedResponse(r)) if reply_code(&r) >= 500 && reply_code(&r) != 530 => Some(format!(
                "the server refuses passive data connections ({cmd}: {}): set `passive: false` on the endpoint for active mode (the server then connects back to this machine), or ask the partner to allow passive mode",
                reply_text(&r)
            )),
            _ => None,
        }
    }
}

/// What [`Conn::data_setup`] found.
pub(super) enum DataSetup {
    /// Send the command again.
    Again,
    /// The server allows no passive data connections: why, for the error.
    NoPassive(String),
    /// Go on with the command's result.
    Go,
}

/// The three-digit code of a reply (suppaftp maps codes it does not know to `Unknown`).
pub(super) fn reply_code(r: &suppaftp::types::Response) -> u32 {
    r.body.get(..3).and_then(|c| std::str::from_utf8(c).ok()).and_then(|c| c.parse().ok()).unwrap_or_else(|| r.status.code())
}

/// Each line of a reply as the server sent it, after its code (`1234` of `213 1234`): what
/// parsing reads. Uncapped and with nothing replaced, unlike [`reply_text`], which is what
/// messages and logs quote (a long path in a reply would push a digest past its cap).
pub(super) fn reply_lines(r: &Response) -> Vec<String> {
    let after_code = |line: &str| {
        let b = line.as_bytes();
        let coded = b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b.get(3), None | Some(b' ' | b'-'));
        // The code and its separator are ASCII: slicing after them stays on a char boundary.
        if coded { line.get(4..).unwrap_or("").to_string() } else { line.to_string() }
    };
    String::from_utf8_lossy(&r.body).lines().map(after_code).collect()
}

/// A reply as one line of text for messages and logs: `550 Failed to open file.` The server's
/// text as [`one_line`] makes it: its control characters (a line break, a terminal escape)
/// never forge a log line or reach a terminal.
pub(super) fn reply_text(r: &suppaftp::types::Response) -> String {
    one_line(&String::from_utf8_lossy(&r.body), SERVER_TEXT, Keep::Start)
}

/// A login refused because it was not encrypted: 534 (RFC 2228, "policy requires SSL"), or a
/// refusal that says so (vsftpd: "Non-anonymous sessions must use encryption", ProFTPD:
/// "SSL/TLS required", FileZilla Server: "does not allow plain FTP … use FTP over TLS",
/// pure-ftpd: "cleartext sessions … are not accepted"). Phrases, not bare words: a reply may
/// echo the user name. Decides the kind and wording of the error only: refused either way.
fn wants_tls(r: &suppaftp::types::Response) -> bool {
    const SAYS_SO: [&str; 11] = [
        "encrypt",
        "ssl/tls",
        "tls required",
        "ssl required",
        "requires tls",
        "requires ssl",
        "over tls",
        "auth tls",
        "ftps",
        "cleartext",
        "plain ftp",
    ];
    let text = reply_lines(r).join(" ").to_ascii_lowercase();
    reply_code(r) == 534 || SAYS_SO.iter().any(|w| text.contains(w))
}

/// A data connection refused because its TLS session did not resume the control connection's
/// (vsftpd's `require_ssl_reuse`: "522 SSL connection failed: session reuse required";
/// FileZilla Server: "TLS session of data connection not resumed"). Phrases, as for
/// [`wants_tls`]; decides the kind and wording of the error only.
pub(super) fn wants_session_reuse(r: &suppaftp::types::Response) -> bool {
    const SAYS_SO: [&str; 3] = ["session reuse", "reuse required", "not resumed"];
    let text = reply_lines(r).join(" ").to_ascii_lowercase();
    reply_code(r) >= 400 && SAYS_SO.iter().any(|w| text.contains(w))
}

/// Runs `fut` within `limit`; running out is a `TimedOut` connection error (the reply may still
/// arrive later, so the connection is out of step and must be dropped).
pub(super) async fn within<T>(limit: Duration, fut: impl Future<Output = FtpResult<T>>) -> FtpResult<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(FtpError::ConnectionError(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no answer from the server within {} s", limit.as_secs_f32()),
        ))),
    }
}

/// Writes `bytes` to the control socket directly, beside suppaftp, which writes each command
/// straight to the socket too (no buffer of its own to overtake). The caller makes sure no
/// transfer's reply is pending: a transfer that failed or was dropped closes its connection.
async fn send_raw(ftp: &Ftp, bytes: &[u8]) -> FtpResult<()> {
    let socket = ftp.get_ref().await;
    let mut rest = bytes;
    while !rest.is_empty() {
        socket.writable().await.map_err(FtpError::ConnectionError)?;
        match socket.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(FtpError::ConnectionError(e)),
        }
    }
    Ok(())
}

/// A reply for [`Conn::exchange`]: a refusal is a result, any other failure ends the batch.
pub(super) fn checked(r: FtpResult<Response>) -> FtpResult<FtpResult<Response>> {
    match r {
        Ok(r) => Ok(Ok(r)),
        Err(FtpError::UnexpectedResponse(r)) => Ok(Err(FtpError::UnexpectedResponse(r))),
        Err(e) => Err(e),
    }
}

/// A reply for [`Conn::exchange`], unless it is a `421`: the server closes the session and
/// runs nothing more, so the reply ends the batch (the connection is gone) instead of the end
/// of the stream the next read would find, and the caller sees the code.
fn closing(r: FtpResult<Response>) -> FtpResult<FtpResult<Response>> {
    match r {
        Err(FtpError::UnexpectedResponse(r)) if reply_code(&r) == 421 => Err(FtpError::UnexpectedResponse(r)),
        r => Ok(r),
    }
}

/// A connection that could not be made.
pub(super) struct ConnectError {
    pub error: EndpointError,
    /// The server answered the greeting or the login with 421 or 530: a refusal, or a server
    /// at its limit of sessions (vsftpd's `max_per_ip` and pure-ftpd's `-y` answer with 421,
    /// ProFTPD's `MaxClientsPerUser` answers the password with 530). Only the pool can tell
    /// the two apart, by whether logins of its own are live.
    pub turned_away: bool,
}

/// A failed session set-up, before it becomes a [`ConnectError`].
struct Setup {
    kind: ErrorKind,
    message: String,
    turned_away: bool,
}

impl From<(ErrorKind, String)> for Setup {
    fn from((kind, message): (ErrorKind, String)) -> Self {
        Setup { kind, message, turned_away: false }
    }
}

/// A greeting or a login answered with 421 or 530 (see [`ConnectError::turned_away`]).
fn turned_away(e: &FtpError) -> bool {
    matches!(e, FtpError::UnexpectedResponse(r) if matches!(reply_code(r), 421 | 530))
}

/// Makes connections for one endpoint and remembers what it learnt about the server.
pub(super) struct Connector {
    spec: FtpSpec,
    label: String,
    tls: tokio::sync::OnceCell<Option<Arc<Tls>>>,
    /// The server answered EPSV with "not understood": new connections use PASV.
    pub epsv_refused: AtomicBool,
    /// `LIST -a` was refused: list with a bare `LIST`.
    pub list_a_refused: AtomicBool,
    /// The last connection's server offered MLSD (second-precision listings).
    pub mlsd: AtomicBool,
    /// Reads on the last connection said which file they opened (`super::opened`).
    pub describes: AtomicBool,
    /// A connection was made and its server offered no hash command: a checksum is not worth
    /// taking a login for (one per upload, otherwise).
    pub no_hash: AtomicBool,
}

impl Connector {
    pub fn new(spec: FtpSpec, label: String) -> Self {
        Connector {
            spec,
            label,
            tls: tokio::sync::OnceCell::new(),
            epsv_refused: AtomicBool::new(false),
            list_a_refused: AtomicBool::new(false),
            mlsd: AtomicBool::new(false),
            describes: AtomicBool::new(false),
            no_hash: AtomicBool::new(false),
        }
    }

    pub fn spec(&self) -> &FtpSpec {
        &self.spec
    }

    /// Why the server certificate was refused, if it was since the last call.
    pub fn take_tls_refusal(&self) -> Option<String> {
        self.tls.get().and_then(|t| t.as_ref()).and_then(|t| t.take_refusal())
    }

    pub(super) async fn tls(&self) -> Result<Option<Arc<Tls>>, EndpointError> {
        self.tls
            .get_or_try_init(|| async {
                if self.spec.tls == FtpTls::None {
                    return Ok(None);
                }
                Tls::new(&self.spec.trust, self.spec.tls_max_version)
                    .map(|t| Some(Arc::new(t)))
                    .map_err(|msg| EndpointError::new(ErrorKind::Config, Op::Connect, self.label.clone(), None, msg))
            })
            .await
            .cloned()
    }

    /// Connects and logs in within `connect_timeout`.
    pub async fn connect(&self) -> Result<Conn, ConnectError> {
        let err = |kind, msg: String| ConnectError {
            error: EndpointError::new(kind, Op::Connect, self.label.clone(), None, msg),
            turned_away: false,
        };
        let tls = self.tls().await.map_err(|error| ConnectError { error, turned_away: false })?;
        let greeted = AtomicBool::new(false);
        let res = tokio::time::timeout(self.spec.connect_timeout, self.establish(tls.as_deref(), &greeted)).await;
        if let Some(refusal) = self.take_tls_refusal() {
            return Err(err(ErrorKind::HostKey, refusal));
        }
        match res {
            Ok(Ok(conn)) => {
                self.mlsd.store(conn.feat.mlsd, Ordering::Relaxed);
                self.describes.store(super::opened::describes(&conn), Ordering::Relaxed);
                self.no_hash.store(conn.feat.sha256.is_none(), Ordering::Relaxed);
                Ok(conn)
            }
            Ok(Err(Setup { kind, message, turned_away })) => Err(ConnectError { turned_away, ..err(kind, message) }),
            Err(_) => {
                let hint = match self.spec.tls {
                    _ if greeted.load(Ordering::Relaxed) => " (the server greeted, then stalled: it is slow or overloaded)",
                    // An implicit-TLS port waits silently for a TLS hello.
                    FtpTls::Explicit | FtpTls::None => " (no greeting: if this port speaks implicit FTPS, set `tls: implicit`)",
                    FtpTls::Implicit => "",
                };
                Err(err(
                    ErrorKind::Transient,
                    format!("no FTP session within {} s (TCP connect, TLS and login){hint}", self.spec.connect_timeout.as_secs_f32()),
                ))
            }
        }
    }

    /// Sets up a session; `greeted` is set once the server has greeted us (what a timeout's
    /// message needs to know).
    async fn establish(&self, tls: Option<&Tls>, greeted: &AtomicBool) -> Result<Conn, Setup> {
        let spec = &self.spec;
        let (host, port) = (spec.host.as_str(), spec.port);
        let unreachable = |e: std::io::Error| reach::unreachable(host, port, &e);
        let mut ftp = match (spec.tls, tls) {
            (FtpTls::Implicit, Some(tls)) => {
                let addrs = reach::resolve(Given::Endpoint(&spec.name), host, port).await?;
                let mut ftp = Ftp::connect_secure_implicit(&addrs[..], tls.connector(), host).await.map_err(|e| match e {
                    FtpError::ConnectionError(e) => unreachable(e).into(),
                    e if turned_away(&e) => Setup { turned_away: true, ..classify_connect(e, "greeting").into() },
                    e => Setup::from(self.tls_failure(e)),
                })?;
                greeted.store(true, Ordering::Relaxed);
                // Not sent by suppaftp for implicit TLS: without PROT P the server would keep
                // the data connections in clear text while we speak TLS on them.
                for cmd in ["PBSZ 0", "PROT P"] {
                    ftp.custom_command(cmd, &[Status::CommandOk]).await.map_err(|e| classify_connect(e, cmd))?;
                }
                ftp
            }
            (_, tls) => {
                let tcp = reach::connect(Given::Endpoint(&spec.name), host, port).await?;
                let _ = tcp.set_nodelay(true);
                // The server speaks first: an SSH server there means the wrong port or type,
                // which suppaftp would only call "invalid syntax".
                let mut first = [0u8; 128];
                if let Ok(n) = tcp.peek(&mut first).await
                    && let Some(msg) = not_ftp(&first[..n])
                {
                    return Err((ErrorKind::Config, msg).into());
                }
                let ftp = Ftp::connect_with_stream(tcp)
                    .await
                    .map_err(|e| Setup { turned_away: turned_away(&e), ..classify_connect(e, "greeting").into() })?;
                greeted.store(true, Ordering::Relaxed);
                match tls {
                    // AUTH TLS, then PBSZ 0 and PROT P.
                    Some(tls) => ftp.into_secure(tls.connector(), host).await.map_err(|e| match e {
                        FtpError::UnexpectedResponse(r) => (
                            ErrorKind::Protocol,
                            format!(
                                "the server refused TLS (AUTH TLS: {}); if it only speaks plain FTP and sending the password \
                                 unencrypted is acceptable, set `tls: none`",
                                reply_text(&r)
                            ),
                        ),
                        e => self.tls_failure(e),
                    })?,
                    None => ftp,
                }
            }
        };
        match ftp.login(spec.user.as_str(), spec.password.expose()).await {
            Ok(()) => {}
            Err(FtpError::UnexpectedResponse(r)) if tls.is_none() && wants_tls(&r) => {
                let message = format!(
                    "the server takes logins only over TLS (login as {} refused: {}); set `tls: explicit` (or `implicit`, \
                     usually on port 990)",
                    spec.user,
                    reply_text(&r)
                );
                // The flow's `tls` is wrong for this server: every login of the run would be.
                return Err(Setup { kind: ErrorKind::Config, message, turned_away: false });
            }
            Err(FtpError::UnexpectedResponse(r)) if matches!(reply_code(&r), 530 | 430 | 332) => {
                let message = format!("login as {} refused ({})", spec.user, reply_text(&r));
                return Err(Setup { kind: ErrorKind::AuthFailed, message, turned_away: reply_code(&r) == 530 });
            }
            Err(e) => return Err(Setup { turned_away: turned_away(&e), ..classify_connect(e, "login").into() }),
        }
        // The default type is ASCII, which rewrites line ends: always binary.
        ftp.transfer_type(FileType::Binary).await.map_err(|e| classify_connect(e, "TYPE I"))?;
        let feat = read_feat(&mut ftp).await?;
        if feat.utf8 {
            // Some servers (IIS, FileZilla Server) use UTF-8 names only when asked to.
            match ftp.custom_command("OPTS UTF8 ON", &[Status::CommandOk]).await {
                Ok(_) | Err(FtpError::UnexpectedResponse(_)) => {}
                Err(e) => return Err(classify_connect(e, "OPTS UTF8 ON").into()),
            }
        }
        let root = match &spec.root {
            Some(root) => root.clone(),
            None => ftp.pwd().await.map_err(|e| classify_connect(e, "PWD"))?.replace("\"\"", "\""),
        };
        let peer = ftp.get_ref().await.peer_addr().map_err(unreachable)?.ip();
        let epsv = spec.passive && feat.epsv && !self.epsv_refused.load(Ordering::Relaxed);
        let follow = spec.use_pasv_address;
        let ftp = if spec.passive {
            ftp.set_mode(if epsv { Mode::ExtendedPassive } else { Mode::Passive });
            ftp.passive_stream_builder(move |offered| {
                let target = if follow { offered } else { passive_target(offered, peer) };
                Box::pin(async move {
                    let s = TcpStream::connect(target).await.map_err(|e| {
                        FtpError::ConnectionError(std::io::Error::new(
                            e.kind(),
                            format!("cannot open the data connection to {target}: {e}"),
                        ))
                    })?;
                    let _ = s.set_nodelay(true);
                    Ok(s)
                }) as Pin<Box<dyn Future<Output = FtpResult<TcpStream>> + Send + Sync>>
            })
        } else {
            // The server connects back to us; it must do so within the operation timeout.
            ftp.active_mode(spec.operation_timeout)
        };
        tracing::debug!(host = %host, port, ?feat, root = %root, epsv, "FTP session ready.");
        let plain = tls.is_none();
        Ok(Conn { ftp, host: spec.host.clone(), feat, root, timeout: spec.operation_timeout, epsv, plain, passive: spec.passive })
    }

    /// A TLS handshake failed: a refused certificate is `HostKey` (reported by the caller from
    /// the verifier's record), anything else means the two sides do not agree on TLS.
    fn tls_failure(&self, e: FtpError) -> (ErrorKind, String) {
        match e {
            FtpError::SecureError(msg) => (
                ErrorKind::Protocol,
                format!("TLS handshake failed: {msg} (check `tls` and `port`: implicit FTPS usually listens on 990, explicit on 21)"),
            ),
            e => classify_connect(e, "TLS"),
        }
    }
}

/// `FEAT`, read as one whole reply: suppaftp's own parser stops at the first line it does not
/// understand and would leave the rest of the reply unread.
async fn read_feat(ftp: &mut Ftp) -> Result<Feat, (ErrorKind, String)> {
    match feat_reply(ftp).await {
        Ok(reply) => Ok(reply.map(|r| Feat::parse(&r)).unwrap_or_default()),
        Err(e) => Err(classify_connect(e, "FEAT")),
    }
}

/// The whole `FEAT` reply as text; `None` when the server has no `FEAT`.
pub(super) async fn feat_reply(ftp: &mut Ftp) -> FtpResult<Option<String>> {
    // Asking for a code FEAT never answers makes suppaftp read the complete multi-line reply
    // and hand it back as "unexpected".
    match ftp.custom_command("FEAT", &[Status::Help]).await {
        Ok(r) | Err(FtpError::UnexpectedResponse(r)) if reply_code(&r) == 211 => Ok(Some(String::from_utf8_lossy(&r.body).into_owned())),
        Ok(_) | Err(FtpError::UnexpectedResponse(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A failure while setting up a session, by error variant and reply code.
fn classify_connect(e: FtpError, step: &str) -> (ErrorKind, String) {
    match e {
        FtpError::ConnectionError(io) => (ErrorKind::Transient, format!("connection lost during {step}: {io}")),
        FtpError::UnexpectedResponse(r) => {
            let code = reply_code(&r);
            let kind = if (400..500).contains(&code) { ErrorKind::Transient } else { ErrorKind::Protocol };
            (kind, format!("{step} refused: {}", reply_text(&r)))
        }
        e => (ErrorKind::Protocol, format!("{step} failed: {e}")),
    }
}

/// Where to open a passive data connection: the port the server offers, on the address the
/// control connection goes to — never the address in a `PASV` reply, as `EPSV` has none.
/// A server behind NAT or in a container names an address that cannot be reached from here
/// (its own private one, a stale public one, or 127.0.0.1), and a hostile one could name any
/// host to have the file sent there (curl ignores it too since 7.74, CVE-2020-8284).
pub(super) fn passive_target(offered: SocketAddr, control_peer: IpAddr) -> SocketAddr {
    if offered.ip() != control_peer {
        tracing::debug!(%offered, %control_peer, "PASV named another address than the server's; using the server's.");
    }
    SocketAddr::new(control_peer, offered.port())
}

#[cfg(test)]
mod tests {

    #[test]
    fn hash_commands_from_feat_and_digests_from_replies() {
        let feat = |lines: &str| Feat::parse(&format!("211-Features:\n{lines}\n211 End"));
        assert_eq!(feat(" HASH SHA-1;SHA-256*;MD5").sha256, Some(HashCommand::Hash { selected: true }));
        assert_eq!(feat(" HASH SHA-1*;SHA-256").sha256, Some(HashCommand::Hash { selected: false }));
        assert_eq!(feat(" HASH SHA-1*;MD5\n XSHA256").sha256, Some(HashCommand::Xsha256));
        assert_eq!(feat(" MDTM\n SIZE").sha256, None);
        let hex = "2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824";
        assert_eq!(digest_in_reply(&reply(213, &format!("SHA-256 0-5 {hex} /in/a"))).as_deref(), Some(hex.to_ascii_lowercase().as_str()));
        assert_eq!(digest_in_reply(&reply(213, hex)).as_deref(), Some(hex.to_ascii_lowercase().as_str()));
        assert_eq!(digest_in_reply(&reply(213, "nonsense")), None);
    }

    #[test]
    fn replies_are_parsed_from_what_the_server_sent_not_from_their_display_form() {
        assert_eq!(size_in_reply(&reply(213, "1234")), Some(1234));
        assert_eq!(size_in_reply(&reply(213, "many")), None);
        let at = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        assert_eq!(mdtm_in_reply(&reply(213, "20261118110640")), Some(at));
        assert_eq!(mdtm_in_reply(&reply(213, "20261118110640.123")), Some(at));
        assert_eq!(mdtm_in_reply(&reply(213, "yesterday")), None);
        // Before: digests were read from `reply_text`, which stops at `SERVER_TEXT` characters:
        // a digest after a long path (or a long first line) was cut off, and the file's
        // server-side check silently skipped.
        let hex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        let path = format!("/in/{}", "deep/".repeat(80));
        let long = Response::new(Status::from(213), format!("213-{path}\r\n213 SHA-256 0-5 {hex} {path}\r\n").into_bytes());
        assert!(reply_text(&long).chars().count() > SERVER_TEXT && !reply_text(&long).contains(hex), "the display form is cut");
        assert_eq!(digest_in_reply(&long).as_deref(), Some(hex));
        // A multi-line reply: each line read after its code, the number found on its own line.
        let multi = Response::new(Status::from(213), b"213-Status follows\r\n213 4096\r\n".to_vec());
        assert_eq!(size_in_reply(&multi), Some(4096));
        assert_eq!(reply_lines(&multi), ["Status follows", "4096"]);
    }

    use super::*;

    #[test]
    fn feat_replies() {
        let pure = "211-Extensions supported:\r\n UTF8\r\n MDTM\r\n SIZE\r\n MLST type*;size*;modify*;\r\n MLSD\r\n EPSV\r\n211 End.";
        assert_eq!(Feat::parse(pure), Feat { mlsd: true, mlst: true, mdtm: true, size: true, epsv: true, utf8: true, sha256: None });
        let vsftpd = "211-Features:\n AUTH TLS\n EPRT\n EPSV\n MDTM\n PASV\n REST STREAM\n SIZE\n TVFS\n211 End";
        assert_eq!(Feat::parse(vsftpd), Feat { mlsd: false, mlst: false, mdtm: true, size: true, epsv: true, utf8: false, sha256: None });
        assert_eq!(Feat::parse("211 No features"), Feat::default());
    }

    #[test]
    fn a_passive_data_connection_goes_to_the_server_whatever_address_pasv_names() {
        let public: IpAddr = "203.0.113.7".parse().unwrap();
        let offer = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(passive_target(offer("10.0.0.5:50000"), public), offer("203.0.113.7:50000"));
        assert_eq!(passive_target(offer("0.0.0.0:50000"), public), offer("203.0.113.7:50000"));
        // Before: a routable address was taken as is (a hostile server could name any host).
        assert_eq!(passive_target(offer("198.51.100.9:50000"), public), offer("203.0.113.7:50000"));
        // Before: on a private network (a VPN) the offer was taken, a container's own address too.
        let lan: IpAddr = "192.168.1.10".parse().unwrap();
        assert_eq!(passive_target(offer("172.17.0.2:50000"), lan), offer("192.168.1.10:50000"));
        assert_eq!(passive_target(offer("127.0.0.1:50000"), lan), offer("192.168.1.10:50000"));
    }

    fn reply(code: u32, text: &str) -> Response {
        Response::new(Status::from(code), format!("{code} {text}\r\n").into_bytes())
    }

    #[test]
    fn refusals_that_ask_for_tls_are_told_from_wrong_passwords() {
        assert!(wants_tls(&reply(530, "Non-anonymous sessions must use encryption.")));
        assert!(wants_tls(&reply(550, "SSL/TLS required on the control channel")));
        assert!(wants_tls(&reply(530, "This server does not allow plain FTP. You have to use FTP over TLS.")));
        assert!(wants_tls(&reply(534, "Policy requires SSL.")));
        assert!(!wants_tls(&reply(530, "Login incorrect.")));
        // The user name echoed back is not a reason.
        assert!(!wants_tls(&reply(530, "User tlsadmin cannot log in.")));
    }

    #[test]
    fn data_connections_refused_for_want_of_a_resumed_session_are_recognised() {
        assert!(wants_session_reuse(&reply(522, "SSL connection failed: session reuse required")));
        assert!(wants_session_reuse(&reply(450, "TLS session of data connection not resumed.")));
        assert!(!wants_session_reuse(&reply(425, "Can't open data connection.")));
        assert!(!wants_session_reuse(&reply(226, "Transfer complete; session reuse required next time")));
    }

    #[test]
    fn a_reply_is_quoted_on_one_line_without_control_characters() {
        // Before: a reply's `\r` and terminal escapes went into logs and messages as they were.
        let forged = Response::new(Status::from(550), b"550-No.\r\n550 \x1b[2K\rERROR forged\r\n".to_vec());
        assert_eq!(reply_text(&forged), "550-No. ⏎ 550  [2K ERROR forged");
        let long = Response::new(Status::from(550), format!("550 {}\r\n", "x".repeat(1000)).into_bytes());
        assert_eq!(reply_text(&long).chars().count(), SERVER_TEXT + 1, "capped, with an ellipsis");
    }
}
