//! `wharf sandbox`: real SFTP and FTP servers on 127.0.0.1 serving one folder, in-process,
//! so a flow can be tried end to end on one machine without an sshd, a vsftpd, root, or a
//! partner.
//!
//! Owns starting and stopping the servers ([`Sandbox::start`] / [`Sandbox::stop`]) and what
//! a client needs to reach them: the bound addresses, the login, the host key's fingerprint
//! and known_hosts line. The pieces: `ssh.rs` (russh server), `sftp.rs` (russh-sftp's server
//! handler), `ftp/` (a plain FTP server), `listen.rs` (the accept loop and stop both share),
//! `login.rs` (the one login both accept), `fs.rs` (each request on disk),
//! `jail.rs` (client paths onto the folder, no escapes), `hostkey.rs` (the persisted key).
//! It listens on loopback addresses only and refuses anything else: it is a test server.
//! Printing and signal handling are `cli/sandbox.rs`'s.

mod fs;
mod ftp;
mod hostkey;
mod jail;
mod listen;
mod login;
mod sftp;
mod ssh;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use rand::Rng as _;
use russh::keys::PublicKey;

pub use hostkey::HostKeyError;

use crate::config::Secret;

/// What every connection of both servers shares.
struct Shared {
    logins: login::Logins,
    folder: Arc<fs::Folder>,
}

/// What to serve and how.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// The folder clients see as `/`. Must exist.
    pub root: PathBuf,
    /// A loopback address (127.0.0.1 by default).
    pub bind: IpAddr,
    /// SFTP port; 0 picks a free one.
    pub sftp_port: u16,
    /// FTP port (0: a free one); `None` starts no FTP server.
    pub ftp_port: Option<u16>,
    pub user: String,
    pub password: Secret,
    /// Public keys that may log in as `user` besides the password.
    pub authorized_keys: Vec<PublicKey>,
    /// The Ed25519 host key file, generated there on first start and kept.
    pub host_key: PathBuf,
}

impl SandboxOptions {
    /// Serve `root` over SFTP on 127.0.0.1 (a free port, no FTP) as user `sandbox` with a
    /// generated password, the host key kept at `host_key`.
    pub fn new(root: impl Into<PathBuf>, host_key: impl Into<PathBuf>) -> Self {
        SandboxOptions {
            root: root.into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sftp_port: 0,
            ftp_port: None,
            user: "sandbox".to_string(),
            password: generate_password(),
            authorized_keys: Vec::new(),
            host_key: host_key.into(),
        }
    }
}

/// Why the sandbox did not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{}: no such folder", .0.display())]
    RootMissing(PathBuf),
    #[error("{}: not a folder", .0.display())]
    RootNotFolder(PathBuf),
    #[error("{}: cannot serve this folder: {source}", path.display())]
    Root { path: PathBuf, source: io::Error },
    #[error("{0} is not a loopback address; the sandbox only listens on 127.0.0.1 or ::1")]
    NotLoopback(IpAddr),
    #[error("{0}: port already in use; pick another port, or 0 for any free one")]
    PortInUse(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: io::Error },
    #[error(transparent)]
    HostKey(#[from] HostKeyError),
}

impl SandboxError {
    /// The options themselves are wrong (a bad folder or address), as opposed to the machine
    /// refusing (a port in use, an unreadable key file).
    pub fn is_usage(&self) -> bool {
        matches!(self, SandboxError::RootMissing(_) | SandboxError::RootNotFolder(_) | SandboxError::NotLoopback(_))
    }
}

/// A running sandbox. Stop it with [`stop`](Self::stop); dropping it leaves the server
/// running until the runtime ends.
pub struct Sandbox {
    sftp: listen::Server,
    ftp: Option<listen::Server>,
    root: PathBuf,
    host_key: PublicKey,
    host_key_generated: bool,
}

impl Sandbox {
    /// Checks the options, loads or generates the host key, binds and starts serving.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        if !opts.bind.is_loopback() {
            return Err(SandboxError::NotLoopback(opts.bind));
        }
        let folder = open_folder(&opts.root)?;
        let key_path = opts.host_key.clone();
        let (key, generated) = tokio::task::spawn_blocking(move || hostkey::load_or_generate(&key_path))
            .await
            .map_err(|e| HostKeyError { path: opts.host_key.clone(), message: format!("key task failed: {e}") })??;
        let host_key = key.public_key().clone();
        let sftp_addr = SocketAddr::new(opts.bind, opts.sftp_port);
        let sftp_listener = bind(sftp_addr).await?;
        let ftp_listener = match opts.ftp_port {
            Some(port) => {
                let addr = SocketAddr::new(opts.bind, port);
                Some((bind(addr).await?, addr))
            }
            None => None,
        };
        let logins = login::Logins { user: opts.user, password: opts.password, keys: opts.authorized_keys };
        let config = Arc::new(ssh::config(key, &logins));
        let root = folder.root().to_path_buf();
        let shared = Arc::new(Shared { logins, folder: Arc::new(folder) });
        let sftp = ssh::start(sftp_listener, config, shared.clone()).map_err(|e| SandboxError::Listen { addr: sftp_addr, source: e })?;
        tracing::info!(addr = %sftp.addr(), root = %root.display(), "Sandbox SFTP server started.");
        let ftp = match ftp_listener {
            None => None,
            Some((listener, addr)) => {
                let ftp = ftp::start(listener, shared).map_err(|e| SandboxError::Listen { addr, source: e })?;
                tracing::info!(addr = %ftp.addr(), root = %root.display(), "Sandbox FTP server started.");
                Some(ftp)
            }
        };
        Ok(Sandbox { sftp, ftp, root, host_key, host_key_generated: generated })
    }

    /// Where the SFTP server listens (the real port when 0 was asked for).
    pub fn sftp_addr(&self) -> SocketAddr {
        self.sftp.addr()
    }

    /// Where the FTP server listens, when there is one.
    pub fn ftp_addr(&self) -> Option<SocketAddr> {
        self.ftp.as_ref().map(listen::Server::addr)
    }

    /// The served folder, canonical.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    pub fn host_key(&self) -> &PublicKey {
        &self.host_key
    }

    /// Whether the host key was generated by this start (there was no key file).
    pub fn host_key_generated(&self) -> bool {
        self.host_key_generated
    }

    /// `SHA256:…`
    pub fn fingerprint(&self) -> String {
        hostkey::fingerprint(&self.host_key)
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 AAAA…`
    pub fn known_hosts_line(&self) -> String {
        let addr = self.sftp_addr();
        hostkey::known_hosts_line(addr.ip(), addr.port(), &self.host_key)
    }

    /// Stops accepting, frees the ports and disconnects every client.
    pub async fn stop(self) {
        if let Some(ftp) = self.ftp {
            ftp.stop().await;
        }
        self.sftp.stop().await;
        tracing::info!("Sandbox stopped.");
    }
}

async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, SandboxError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => SandboxError::PortInUse(addr),
        _ => SandboxError::Listen { addr, source: e },
    })
}

fn open_folder(root: &std::path::Path) -> Result<fs::Folder, SandboxError> {
    match std::fs::metadata(root) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => return Err(SandboxError::RootNotFolder(root.to_path_buf())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(SandboxError::RootMissing(root.to_path_buf())),
        Err(e) => return Err(SandboxError::Root { path: root.to_path_buf(), source: e }),
    }
    let jail = jail::Jail::new(root).map_err(|e| SandboxError::Root { path: root.to_path_buf(), source: e })?;
    Ok(fs::Folder::new(jail))
}

/// 24 hex characters from the thread's CSPRNG (96 bits).
pub fn generate_password() -> Secret {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}
