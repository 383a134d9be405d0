//! The sandbox's SSH server: russh's server side, accepting logins and the `sftp` subsystem
//! only.
//!
//! Owns the accept loop, the login rules (one user name; its password, or one of the
//! authorized public keys), handing each `sftp` channel to an [`SftpSession`], and stopping:
//! when told to, it stops accepting, closes the listening socket (so the port can be bound
//! again at once) and disconnects every client. Shells, commands and forwarding are refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::fs::Folder;
use super::sftp::SftpSession;
use crate::config::Secret;

/// Session channels one connection may hold open (wharf uses two).
const MAX_CHANNELS: usize = 16;
/// How long a stopping server waits for a client to go after telling it to.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// Who may log in.
pub struct Logins {
    pub user: String,
    pub password: Secret,
    pub keys: Vec<PublicKey>,
}

impl Logins {
    fn password_ok(&self, user: &str, password: &str) -> bool {
        // Both compared in full, so the time taken says nothing about which one was wrong.
        let user_ok = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let pass_ok = constant_time_eq(password.as_bytes(), self.password.expose().as_bytes());
        user_ok & pass_ok
    }

    fn key_ok(&self, user: &str, key: &PublicKey) -> bool {
        user == self.user && self.keys.iter().any(|k| k.key_data() == key.key_data())
    }

    fn methods(&self) -> MethodSet {
        let mut m = MethodSet::empty();
        m.push(MethodKind::Password);
        if !self.keys.is_empty() {
            m.push(MethodKind::PublicKey);
        }
        m
    }
}

/// Equal lengths are compared without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What every connection shares.
pub struct Shared {
    pub logins: Logins,
    pub folder: Arc<Folder>,
}

/// russh's server settings for the sandbox: the host key, the login methods, a 16 MiB
/// window (uploads, like wharf's client does for downloads), no delay on the first `none`
/// probe that OpenSSH clients send.
pub fn config(host_key: russh::keys::PrivateKey, logins: &Logins) -> russh::server::Config {
    russh::server::Config {
        methods: logins.methods(),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        window_size: 16 * 1024 * 1024,
        nodelay: true,
        ..Default::default()
    }
}

/// A running SSH server.
pub struct SshServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl SshServer {
    /// Serves on `listener` (already bound) until [`stop`](Self::stop).
    pub fn start(listener: TcpListener, config: Arc<russh::server::Config>, shared: Arc<Shared>) -> std::io::Result<SshServer> {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, config, shared, stopped));
        Ok(SshServer { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, releases the port, disconnects every client; returns when done.
    pub async fn stop(self) {
        // Err only when the loop is gone already (it ended by itself).
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "The SSH accept loop ended abnormally.");
        }
    }
}

async fn accept_loop(listener: TcpListener, config: Arc<russh::server::Config>, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = until_stopped(&mut stopped) => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    sessions.spawn(serve(socket, peer, config.clone(), shared.clone(), stopped.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    while sessions.join_next().await.is_some() {}
}

/// Completes once the server is told to stop (or its handle is gone).
async fn until_stopped(stopped: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: dropped here, never held across an await.
    let _ = stopped.wait_for(|s| *s).await.map(drop);
}

/// One client connection, from the SSH handshake to its end (or the server's stop).
async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let handler = Connection { shared, peer, channels: HashMap::new() };
    let session = tokio::select! {
        s = russh::server::run_stream(config, socket, handler) => s,
        _ = until_stopped(&mut stopped) => return,
    };
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "SSH handshake failed.");
            return;
        }
    };
    let handle = session.handle();
    tokio::select! {
        res = &mut session => {
            if let Err(e) = res {
                tracing::debug!(%peer, error = %e, "SSH connection ended with an error.");
            }
        }
        _ = until_stopped(&mut stopped) => {
            let _ = handle.disconnect(Disconnect::ByApplication, "wharf sandbox stopping".into(), "en".into()).await;
            if tokio::time::timeout(DISCONNECT_GRACE, &mut session).await.is_err() {
                tracing::debug!(%peer, "Client did not go in time.");
            }
        }
    }
}

/// russh callbacks for one connection.
struct Connection {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// Session channels opened but not yet given a subsystem.
    channels: HashMap<ChannelId, Channel<Msg>>,
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.shared.logins.password_ok(user, password) {
            tracing::info!(peer = %self.peer, user, "Logged in with the password.");
            Ok(Auth::Accept)
        } else {
            tracing::info!(peer = %self.peer, user, "Login refused (password).");
            Ok(Auth::reject())
        }
    }

    async fn auth_publickey_offered(&mut self, user: &str, offer: PublicKeyOffer<'_>) -> Result<Auth, Self::Error> {
        Ok(if self.shared.logins.key_ok(user, offer.public_key) { Auth::Accept } else { Auth::reject() })
    }

    async fn auth_publickey(&mut self, user: &str, key: VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        if self.shared.logins.key_ok(user, key.public_key) {
            tracing::info!(peer = %self.peer, user, "Logged in with a key.");
            Ok(Auth::Accept)
        } else {
            Ok(Auth::reject())
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS {
            // Dropping the handle refuses the channel.
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn subsystem_request(&mut self, channel: ChannelId, name: &str, session: &mut Session) -> Result<(), Self::Error> {
        match self.channels.remove(&channel) {
            Some(ch) if name == "sftp" => {
                session.channel_success(channel)?;
                let sftp = SftpSession::new(self.shared.folder.clone());
                // Runs on its own task until the channel closes.
                russh_sftp::server::run_with_config(ch.into_stream(), sftp, sftp_config()).await;
            }
            _ => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn shell_request(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn exec_request(&mut self, channel: ChannelId, _data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        session.close(channel)
    }

    async fn channel_close(&mut self, channel: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        Ok(())
    }
}

/// Packets up to 256 KiB of data plus headers (OpenSSH clients write 32 KiB, wharf's 32 KiB;
/// some send up to 256 KiB).
fn sftp_config() -> russh_sftp::server::Config {
    russh_sftp::server::Config { max_client_packet_len: 256 * 1024 + 1024 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_need_the_right_user_and_secret() {
        let key = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
        let other = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
        let l = Logins { user: "sandbox".into(), password: Secret::new("s3cret"), keys: vec![key.public_key().clone()] };
        assert!(l.password_ok("sandbox", "s3cret"));
        assert!(!l.password_ok("sandbox", "s3cre"));
        assert!(!l.password_ok("root", "s3cret"));
        assert!(l.key_ok("sandbox", key.public_key()));
        assert!(!l.key_ok("sandbox", other.public_key()));
        assert!(!l.key_ok("root", key.public_key()));
        assert!(l.methods().contains(&MethodKind::PublicKey));
        let no_keys = Logins { keys: vec![], ..l };
        assert!(!no_keys.methods().contains(&MethodKind::PublicKey));
    }
}
