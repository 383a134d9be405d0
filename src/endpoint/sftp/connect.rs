//! Making one SFTP connection: TCP, SSH handshake with host-key check, login, and the two
//! SFTP channels (one for files, one raw for `posix-rename@openssh.com`), the second over a
//! second login on a server that allows one session channel per login (`MaxSessions 1`).
//!
//! Owns the translation of connection-time failures into [`ErrorKind`]s — unreachable is
//! `Transient`, a refused login `AuthFailed`, a bad key file `Config`, an untrusted server
//! `HostKey` — with messages that name the key file but never a password or passphrase.
//! It does not keep connections alive or reconnect; `super::SftpEndpoint` does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle};
use russh::keys::{Algorithm, PrivateKey, PublicKey, PublicKeyOrCertificate};
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::client::{Config as SftpConfig, RawSftpSession, SftpSession};

use super::algorithms;
use super::facts::Handshake;
use super::hostkey::HostKeyCheck;
use crate::config::flow::{SftpSpec, SshAuth};
use crate::endpoint::greeting::{Sniff, not_ssh};
use crate::endpoint::reach::{self, Given};
use crate::endpoint::{EndpointError, ErrorKind, Op};

const POSIX_RENAME: &str = "posix-rename@openssh.com";

/// A live, logged-in connection.
pub(super) struct Conn {
    pub handle: Handle<ClientHandler>,
    /// A second login, for `raw`, on a server that allows one session channel per login.
    side: Option<Handle<ClientHandler>>,
    pub sftp: SftpSession,
    /// A second SFTP channel for extension requests `SftpSession` cannot send.
    pub raw: RawSftpSession,
    /// The server offers `posix-rename@openssh.com` (atomic replace).
    pub posix_rename: bool,
    /// The server offers `fsync@openssh.com` (a written file made durable before its close).
    pub fsync: bool,
    /// The SFTP version and extensions the server announced (for `wharf probe`).
    pub version: russh_sftp::protocol::Version,
    /// The SSH version string and negotiated algorithms (for `wharf probe`).
    pub handshake: Option<Handshake>,
    /// More raw channels for whole small files, opened when the first one is moved.
    files: tokio::sync::OnceCell<Vec<RawSftpSession>>,
    /// The channel the next whole file goes to.
    next: AtomicUsize,
    config: SftpConfig,
}

/// Raw SFTP channels whole small files are spread over, `raw` included. On an OpenSSH
/// server each channel is an `sftp-server` process of its own, which serves its requests
/// one at a time, an upload's fsync included (about 0.3 ms each here): over one channel
/// the small files in flight wait for each other's. Like `lftp --parallel=4` (four
/// connections), but over one SSH connection (one login, one key exchange).
const FILE_CHANNELS: usize = 4;

impl Conn {
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed() || self.side.as_ref().is_some_and(Handle::is_closed)
    }

    /// The raw channel for the next whole small file, in turn. The extra channels are opened
    /// on first use; a server that refuses them (a session limit) leaves `raw` alone in use.
    /// A server that does not answer the opening within the operation timeout is a
    /// connection gone silent (a firewall that dropped it): `Timeout`, so the caller
    /// reconnects, instead of waiting for the keepalives to give up (about a minute).
    pub async fn file_channel(&self) -> Result<&RawSftpSession, SftpError> {
        let limit = Duration::from_secs(self.config.request_timeout_secs);
        let files = self
            .files
            .get_or_try_init(|| async {
                let opening = futures::future::join_all((1..FILE_CHANNELS).map(|_| async {
                    let raw = RawSftpSession::new_with_config(open_subsystem(&self.handle).await?, self.config.clone());
                    raw.init().await.map_err(|e| (ErrorKind::Protocol, format!("SFTP start failed: {e}")))?;
                    Ok::<_, (ErrorKind, String)>(raw)
                }));
                let opened = tokio::time::timeout(limit, opening).await.map_err(|_| SftpError::Timeout)?;
                Ok::<_, SftpError>(
                    opened
                        .into_iter()
                        .filter_map(|r| r.inspect_err(|(_, e)| tracing::debug!(error = %e, "No extra SFTP channel.")).ok())
                        .collect(),
                )
            })
            .await?;
        Ok(match self.next.fetch_add(1, Ordering::Relaxed) % (files.len() + 1) {
            0 => &self.raw,
            i => &files[i - 1],
        })
    }
}

/// russh callbacks: only the host-key check matters.
pub(super) struct ClientHandler {
    check: Arc<HostKeyCheck>,
    /// The refusal message and the key refused, kept here too so they survive whatever
    /// error russh returns.
    verdict: Arc<Mutex<Option<(String, PublicKey)>>>,
    /// Filled in when the key exchange is done, with the host key's type.
    handshake: Arc<Mutex<Option<(Handshake, Algorithm)>>>,
}

/// Errors out of the russh session: its own, or our refusal of the host key.
#[derive(Debug)]
pub(super) enum HandlerError {
    Ssh(russh::Error),
    HostKey(String),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        // A host certificate is judged by the key it certifies (we never ask for certificates).
        let key = key.public_key();
        match self.check.verify(&key) {
            Ok(()) => Ok(true),
            Err(msg) => {
                if let Ok(mut v) = self.verdict.lock() {
                    *v = Some((msg.clone(), key));
                }
                Err(HandlerError::HostKey(msg))
            }
        }
    }

    async fn kex_done(&mut self, _secret: Option<&[u8]>, names: &russh::Names, session: &mut client::Session) -> Result<(), Self::Error> {
        if let Ok(mut h) = self.handshake.lock() {
            *h = Some((Handshake::new(session.remote_sshid(), names), names.key.clone()));
        }
        Ok(())
    }
}

/// Retry-worthy transport failures are `Transient`; anything else the server said is `Protocol`.
pub(super) fn ssh_error_kind(e: &russh::Error) -> ErrorKind {
    use russh::Error as E;
    match e {
        E::IO(_)
        | E::Disconnect
        | E::HUP
        | E::ConnectionTimeout
        | E::KeepaliveTimeout
        | E::InactivityTimeout
        | E::SendError
        | E::Pending
        | E::ChannelOpenFailure(_) => ErrorKind::Transient,
        E::UnknownKey | E::KeyChanged { .. } => ErrorKind::HostKey,
        _ => ErrorKind::Protocol,
    }
}

/// Why the private key of an endpoint could not be loaded: the field of the flow that is
/// wrong (`private_key`, or `passphrase` when the key would not open with it), the key file,
/// and the cause in words (never the passphrase, never a library's type names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// `private_key` or `passphrase`: the field under the endpoint's `auth` to correct.
    pub field: &'static str,
    pub path: std::path::PathBuf,
    pub cause: String,
}

impl KeyProblem {
    /// As a missing key file is said (`config::key_files::problem`): `endpoint `s`:
    /// private_key /k cannot be loaded: wrong passphrase, or the key is damaged`.
    pub fn describe(&self, endpoint: &str) -> String {
        format!("endpoint `{endpoint}`: private_key {} cannot be loaded: {}", self.path.display(), self.cause)
    }
}

/// Loads the private key of `SshAuth::Key`; a missing file, a wrong passphrase or an
/// unsupported format is a [`KeyProblem`] naming the file (never the passphrase).
pub(super) async fn load_key(spec: &SftpSpec) -> Result<Option<Arc<PrivateKey>>, KeyProblem> {
    let SshAuth::Key { path, passphrase, .. } = &spec.auth else { return Ok(None) };
    let (path, pass) = (path.clone(), passphrase.clone());
    let problem = |field, cause| KeyProblem { field, path: path.clone(), cause };
    // Decrypting a key runs bcrypt-pbkdf: keep it off the async workers.
    let res = tokio::task::spawn_blocking({
        let path = path.clone();
        move || {
            russh::keys::load_secret_key(&path, pass.as_ref().map(|p| p.expose())).map_err(|e| match e {
                russh::keys::Error::KeyIsEncrypted => ("private_key", "the key is encrypted and no `passphrase` is configured".to_string()),
                russh::keys::Error::IO(e) => ("private_key", crate::endpoint::local::io_reason(&e)),
                // The `.pub` half: one line `ssh-ed25519 AAAA… comment`.
                _ if std::fs::read(&path).is_ok_and(|b| b.starts_with(b"ssh-") || b.starts_with(b"ecdsa-sha2-")) => {
                    ("private_key", "it is a public key; give the private key file (the one without `.pub`)".to_string())
                }
                // What an OpenSSH key decrypted with the wrong passphrase gives (its check
                // numbers differ); a damaged file gives it too.
                russh::keys::Error::SshKey(russh::keys::ssh_key::Error::Crypto) if pass.is_some() => {
                    ("passphrase", "wrong passphrase, or the key is damaged".to_string())
                }
                // Its own words, without the wrapper's type name ("SshKey: …").
                russh::keys::Error::SshKey(e) => ("private_key", e.to_string()),
                e => ("private_key", e.to_string()),
            })
        }
    })
    .await
    .map_err(|e| problem("private_key", format!("key loading task failed: {e}")))?;
    match res {
        Ok(k) => Ok(Some(Arc::new(k))),
        Err((field, cause)) => Err(problem(field, cause)),
    }
}

/// Bytes read from the server's socket at a time.
const READ_BUFFER: usize = 256 * 1024;

/// Handshakes one connection may make to find the key a pinned fingerprint names: one per
/// host-key type wharf knows (ed25519, three ECDSA curves, RSA), and the one that finds the
/// server has no other.
const PIN_TRIES: usize = 6;

/// Connects, checks the host key, logs in and opens the SFTP channels, all within
/// `spec.connect_timeout`.
///
/// A pinned fingerprint names one of the server's keys, not its type, and the server shows
/// the one type both sides prefer. When the key shown is not the pinned one, the handshake is
/// made again offering only the types not shown yet, until a key matches or the server has
/// none left; only then is the pin refused, naming every key seen. The type that matched is
/// kept in `pinned_type`, so the endpoint's next connections offer it first (one handshake).
pub(super) async fn connect(
    spec: &SftpSpec,
    key: Option<Arc<PrivateKey>>,
    endpoint: &str,
    pinned_type: &Mutex<Option<Algorithm>>,
) -> Result<Conn, EndpointError> {
    let err = |kind, msg: String| EndpointError::new(kind, Op::Connect, endpoint, None, msg);
    let check = Arc::new(HostKeyCheck::load(&spec.host, spec.port, &spec.host_key, endpoint)?);
    let first = Arc::new(Mutex::new(Vec::new()));
    let hint = pinned_type.lock().ok().and_then(|t| t.clone()).filter(|_| check.is_pin());
    // Keys the server showed that are not the pinned one (kept outside the tries: a time-out
    // after some were refused is still the pin's refusal).
    let refused: Mutex<Vec<PublicKey>> = Mutex::new(Vec::new());
    let seen = || refused.lock().map(|r| r.clone()).unwrap_or_default();
    let tries = async {
        loop {
            let shown_before = seen();
            let skip: Vec<Algorithm> = shown_before.iter().map(PublicKey::algorithm).collect();
            let offer = check.preferred_algorithms(hint.as_ref(), &skip);
            // What the server said first matters on the first try only (a wrong port).
            let sniffed = if shown_before.is_empty() { first.clone() } else { Arc::default() };
            match handshake(spec, &check, offer, key.clone(), sniffed).await {
                Ok((conn, shown)) => {
                    if !shown_before.is_empty()
                        && let Ok(mut t) = pinned_type.lock()
                    {
                        *t = shown;
                    }
                    return Ok(conn);
                }
                Err(Failed::HostKey(msg, shown)) if check.is_pin() => {
                    tracing::debug!(host = %spec.host, port = spec.port, refused = %msg, "Not the pinned host key; asking for another.");
                    let n = refused.lock().map(|mut r| {
                        r.push(shown);
                        r.len()
                    });
                    if n.map_or(true, |n| n >= PIN_TRIES) {
                        return Err((ErrorKind::HostKey, check.pin_matches_none(&seen())));
                    }
                }
                // The server has no key of a type not shown yet; or, once a key was refused,
                // any other trouble of a later try (a server limiting quick reconnects): the
                // pin matched none of the keys seen, which is what the user must hear.
                Err(f) if !shown_before.is_empty() && !matches!(f, Failed::AfterKey(..)) => {
                    return Err((ErrorKind::HostKey, check.pin_matches_none(&shown_before)));
                }
                Err(f) => return Err(f.into()),
            }
        }
    };
    match tokio::time::timeout(spec.connect_timeout, tries).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err((kind, msg))) => Err(err(kind, msg)),
        Err(_) if !seen().is_empty() => Err(err(ErrorKind::HostKey, check.pin_matches_none(&seen()))),
        Err(_) => match first.lock().ok().and_then(|f| not_ssh(&f)) {
            // A server that is not SSH waits for what it expects, as long as russh waits for
            // an `SSH-` line: the time ran out, but the port or type is what is wrong.
            Some(msg) => Err(err(ErrorKind::Config, msg)),
            None => Err(err(
                ErrorKind::Transient,
                format!("no SFTP session within {} s (TCP connect, SSH handshake and login)", spec.connect_timeout.as_secs_f32()),
            )),
        },
    }
}

/// Why one connection attempt failed.
enum Failed {
    /// The host key shown was refused: the message, and the key.
    HostKey(String, PublicKey),
    /// Nothing in common of this kind: the message names both sides' lists.
    NoCommon(String),
    /// After the host key was accepted (the login, the SFTP start).
    AfterKey(ErrorKind, String),
    Other(ErrorKind, String),
}

impl From<(ErrorKind, String)> for Failed {
    fn from((kind, message): (ErrorKind, String)) -> Self {
        Failed::Other(kind, message)
    }
}

impl From<ChannelRefusal> for Failed {
    fn from(r: ChannelRefusal) -> Self {
        Failed::Other(r.kind, r.message)
    }
}

impl From<Failed> for (ErrorKind, String) {
    fn from(f: Failed) -> Self {
        match f {
            Failed::HostKey(msg, _) => (ErrorKind::HostKey, msg),
            // Neither a retry nor another file can help: the server and wharf disagree.
            Failed::NoCommon(msg) => (ErrorKind::Config, msg),
            Failed::AfterKey(kind, msg) | Failed::Other(kind, msg) => (kind, msg),
        }
    }
}

/// One TCP connection, SSH handshake offering the `host_keys` types, login and SFTP start;
/// the connection and the type of the key the server proved.
async fn handshake(
    spec: &SftpSpec,
    check: &Arc<HostKeyCheck>,
    host_keys: Vec<Algorithm>,
    key: Option<Arc<PrivateKey>>,
    first: Arc<Mutex<Vec<u8>>>,
) -> Result<(Conn, Option<Algorithm>), Failed> {
    let verdict = Arc::new(Mutex::new(None));
    let handshake = Arc::new(Mutex::new(None));
    let handler = ClientHandler { check: check.clone(), verdict: verdict.clone(), handshake: handshake.clone() };
    let config = client::Config {
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        // Set on the socket here (`establish`), which russh's `connect_stream` does not.
        nodelay: true,
        // The default 2 MiB window caps downloads at 2 MiB per round trip.
        window_size: 16 * 1024 * 1024,
        preferred: algorithms::preferred(host_keys),
        ..Default::default()
    };
    let res = establish(spec, Arc::new(config), handler, key, first).await;
    if let Some((msg, shown)) = verdict.lock().ok().and_then(|mut v| v.take()) {
        return Err(Failed::HostKey(msg, shown));
    }
    let key_done = handshake.lock().is_ok_and(|h| h.is_some());
    let conn = match res {
        Ok(conn) => conn,
        // The key exchange, host key check included, was done: what failed came after.
        Err(f) if key_done => {
            let (kind, msg): (ErrorKind, String) = f.into();
            return Err(Failed::AfterKey(kind, msg));
        }
        Err(f) => return Err(f),
    };
    let (handshake, key_type) = match handshake.lock().ok().and_then(|mut h| h.take()) {
        Some((h, alg)) => (Some(h), Some(alg)),
        None => (None, None),
    };
    Ok((Conn { handshake, ..conn }, key_type))
}

async fn establish(
    spec: &SftpSpec,
    config: Arc<client::Config>,
    handler: ClientHandler,
    key: Option<Arc<PrivateKey>>,
    first: Arc<Mutex<Vec<u8>>>,
) -> Result<Conn, Failed> {
    // For a second login, should the server allow one session channel per login.
    let side_handler = ClientHandler { check: handler.check.clone(), verdict: Arc::default(), handshake: Arc::default() };
    // For a login of its own that asks why SFTP did not start, should it not.
    let ask_handler = ClientHandler { check: handler.check.clone(), verdict: Arc::default(), handshake: Arc::default() };
    let (ask_config, ask_key) = (config.clone(), key.clone());
    let ask = move |e| start_failed(spec, ask_config, ask_handler, ask_key, e);
    let handle = log_in(spec, config.clone(), handler, key.clone(), first).await?;
    let sftp_config = SftpConfig {
        max_concurrent_reads: 64,
        max_concurrent_writes: 64,
        // Writes as large as the server takes (OpenSSH: 255 KiB, from limits@openssh.com)
        // instead of russh-sftp's 32 KiB: an eighth of the requests and acks for an upload.
        max_write_packet_len: 256 * 1024,
        request_timeout_secs: spec.operation_timeout.as_secs().max(1),
        ..Default::default()
    };
    let sftp = match SftpSession::new_with_config(open_subsystem(&handle).await?, sftp_config.clone()).await {
        Ok(sftp) => sftp,
        Err(e) => return Err(ask(e).await),
    };
    let (channel, side) = match open_subsystem(&handle).await {
        Ok(channel) => (channel, None),
        // One session channel per login (OpenSSH `MaxSessions 1`): the second channel, for
        // what `SftpSession` cannot send, goes over a login of its own.
        Err(r) if r.prohibited => {
            tracing::info!(host = %spec.host, port = spec.port, refused = %r.message, "The server allows one SFTP channel per login; logging in twice.");
            let side = log_in(spec, config, side_handler, key, Arc::default()).await?;
            (open_subsystem(&side).await?, Some(side))
        }
        Err(r) => return Err(r.into()),
    };
    let raw = RawSftpSession::new_with_config(channel, sftp_config.clone());
    let version = match raw.init().await {
        Ok(v) => v,
        Err(e) => return Err(ask(e).await),
    };
    let posix_rename = version.extensions.contains_key(POSIX_RENAME);
    let fsync = version.extensions.contains_key("fsync@openssh.com");
    tracing::debug!(host = %spec.host, port = spec.port, posix_rename, "SFTP session ready.");
    Ok(Conn {
        handle,
        side,
        sftp,
        raw,
        posix_rename,
        fsync,
        version,
        handshake: None,
        files: Default::default(),
        next: AtomicUsize::new(0),
        config: sftp_config,
    })
}

/// The SFTP start failed with `e` (russh-sftp's words: "sender dropped"): the cause, asked
/// of the server over a login of its own ([`super::start::why_not`]: the failed one may be gone
/// with its channel), when it can be told.
async fn start_failed(
    spec: &SftpSpec,
    config: Arc<client::Config>,
    handler: ClientHandler,
    key: Option<Arc<PrivateKey>>,
    e: SftpError,
) -> Failed {
    let cause = match log_in(spec, config, handler, key, Arc::default()).await {
        Ok(handle) => super::start::why_not(&handle).await,
        Err(_) => None,
    };
    Failed::Other(ErrorKind::Protocol, format!("SFTP start failed: {}", cause.unwrap_or_else(|| e.to_string())))
}

/// TCP connection, SSH handshake (the host key checked by `handler`) and login.
async fn log_in(
    spec: &SftpSpec,
    config: Arc<client::Config>,
    handler: ClientHandler,
    key: Option<Arc<PrivateKey>>,
    first: Arc<Mutex<Vec<u8>>>,
) -> Result<Handle<ClientHandler>, Failed> {
    let unreachable = |e: std::io::Error| reach::unreachable(&spec.host, spec.port, &e);
    let tcp = reach::connect(Given::Endpoint(&spec.name), &spec.host, spec.port).await?;
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "Cannot set TCP_NODELAY.");
    }
    // russh reads each packet in two reads (its first block, then the rest): from a buffer,
    // not the socket, that is one system call per READ_BUFFER bytes instead of two per 32 KiB
    // packet. Writes pass straight through.
    // What the server said first is kept, to name a wrong port if the handshake fails.
    let stream = Sniff::new(tokio::io::BufReader::with_capacity(READ_BUFFER, tcp), first.clone());
    let mut handle = client::connect_stream(config, stream, handler).await.map_err(|e| {
        if !matches!(e, HandlerError::HostKey(_))
            && let Some(msg) = first.lock().ok().and_then(|f| not_ssh(&f))
        {
            return Failed::Other(ErrorKind::Config, msg);
        }
        match e {
            HandlerError::HostKey(msg) => Failed::Other(ErrorKind::HostKey, msg),
            HandlerError::Ssh(russh::Error::IO(e)) => unreachable(e).into(),
            HandlerError::Ssh(russh::Error::NoCommonAlgo { kind, ours, theirs }) => {
                let msg = algorithms::no_common(&kind, &ours, &theirs);
                Failed::NoCommon(msg)
            }
            HandlerError::Ssh(e) => Failed::Other(ssh_error_kind(&e), format!("SSH handshake failed: {e}")),
        }
    })?;
    super::login::login(&mut handle, spec, key).await.map_err(|(kind, msg)| Failed::Other(kind, msg))?;
    Ok(handle)
}

/// Why a channel could not be opened: the kind and message, and whether the server refused
/// it as such (a session limit, when the login's first channel opened), which only the caller
/// can judge.
struct ChannelRefusal {
    kind: ErrorKind,
    message: String,
    prohibited: bool,
}

impl From<ChannelRefusal> for (ErrorKind, String) {
    fn from(r: ChannelRefusal) -> Self {
        (r.kind, r.message)
    }
}

async fn open_subsystem(handle: &Handle<ClientHandler>) -> Result<russh::ChannelStream<client::Msg>, ChannelRefusal> {
    let ch = handle.channel_open_session().await.map_err(|e| ChannelRefusal {
        kind: ssh_error_kind(&e),
        // OpenSSH answers a session channel beyond `MaxSessions` with "open failed".
        prohibited: matches!(
            e,
            russh::Error::ChannelOpenFailure(
                russh::ChannelOpenFailure::AdministrativelyProhibited | russh::ChannelOpenFailure::ConnectFailed
            )
        ),
        message: format!("cannot open an SSH channel: {e}"),
    })?;
    ch.request_subsystem(true, "sftp").await.map_err(|e| ChannelRefusal {
        kind: ErrorKind::Protocol,
        prohibited: false,
        message: format!("the server refused the sftp subsystem: {e}"),
    })?;
    Ok(ch.into_stream())
}

/// `posix-rename@openssh.com`: rename replacing an existing target atomically.
pub(super) async fn posix_rename(raw: &RawSftpSession, from: &str, to: &str) -> Result<(), russh_sftp::client::error::Error> {
    use russh_sftp::client::error::Error as E;
    use russh_sftp::protocol::{Packet, StatusCode};
    let mut data = Vec::with_capacity(8 + from.len() + to.len());
    for s in [from, to] {
        // SSH string: u32 big-endian length, then the bytes. Paths never approach 4 GiB.
        data.extend_from_slice(&(s.len() as u32).to_be_bytes());
        data.extend_from_slice(s.as_bytes());
    }
    match raw.extended(POSIX_RENAME, data).await? {
        Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
        Packet::Status(s) => Err(E::Status(s)),
        _ => Err(E::UnexpectedPacket),
    }
}
