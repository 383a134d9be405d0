//! The sandbox's SSH server: russh's server side, accepting logins and the `sftp` subsystem
//! only.
//!
//! Owns the login rules (one user name; its password, or one of the authorized public keys),
//! handing each `sftp` channel to an [`SftpSession`], and disconnecting clients when the
//! server stops (the accept loop is `listen.rs`'s). Shells, commands and forwarding are
//! refused.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};

use super::Shared;
use super::listen::{Server, Stopped};
use super::login::Logins;
use super::sftp::SftpSession;

/// Session channels one connection may hold open (wharf uses two).
const MAX_CHANNELS: usize = 16;
/// How long a stopping server waits for a client to go after telling it to.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);

/// The login methods offered: the password, and keys when there are any.
fn methods(logins: &Logins) -> MethodSet {
    let mut m = MethodSet::empty();
    m.push(MethodKind::Password);
    if !logins.keys.is_empty() {
        m.push(MethodKind::PublicKey);
    }
    m
}

/// russh's server settings for the sandbox: the host key, the login methods, a 16 MiB
/// window (uploads, like wharf's client does for downloads), no delay on the first `none`
/// probe that OpenSSH clients send.
pub fn config(host_key: russh::keys::PrivateKey, logins: &Logins) -> russh::server::Config {
    russh::server::Config {
        methods: methods(logins),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        window_size: 16 * 1024 * 1024,
        nodelay: true,
        ..Default::default()
    }
}

/// Starts the SSH server on `listener` (already bound).
pub fn start(listener: TcpListener, config: Arc<russh::server::Config>, shared: Arc<Shared>) -> std::io::Result<Server> {
    Server::start(listener, "sftp", move |socket, peer, stopped| serve(socket, peer, config.clone(), shared.clone(), stopped))
}

/// One client connection, from the SSH handshake to its end (or the server's stop).
async fn serve(socket: TcpStream, peer: SocketAddr, config: Arc<russh::server::Config>, shared: Arc<Shared>, mut stopped: Stopped) {
    let handler = Connection { shared, peer, channels: HashMap::new() };
    let session = tokio::select! {
        s = russh::server::run_stream(config, socket, handler) => s,
        _ = stopped.wait() => return,
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
        _ = stopped.wait() => {
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
    fn keys_are_offered_only_when_there_are_some() {
        let key = russh::keys::PrivateKey::random(&mut rand::rng(), russh::keys::Algorithm::Ed25519).unwrap();
        let l = Logins { user: "sandbox".into(), password: crate::config::Secret::new("s3cret"), keys: vec![key.public_key().clone()] };
        assert!(methods(&l).contains(&MethodKind::PublicKey));
        let no_keys = Logins { keys: vec![], ..l };
        assert!(!methods(&no_keys).contains(&MethodKind::PublicKey));
        assert!(methods(&no_keys).contains(&MethodKind::Password));
    }
}
