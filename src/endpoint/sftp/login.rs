//! The SSH login: the method the flow's credentials call for, and how a refusal is told.
//!
//! A password goes by the `password` method, and, when the server takes passwords only
//! through `keyboard-interactive` (PAM with `PasswordAuthentication no`, common on appliances
//! and hardened hosts), as the answer to its one hidden prompt — what OpenSSH's `sftp`,
//! rclone and WinSCP do. A server asking for anything else (a second factor, a prompt that
//! echoes) is not answered: the password is never given to a prompt that may not be asking
//! for it. A refusal names the methods the server still accepts, so that a password sent to
//! a server that takes keys only says so.

use std::sync::Arc;

use russh::MethodKind;
use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use super::connect::{ClientHandler, ssh_error_kind};
use crate::config::flow::{SftpSpec, SshAuth};
use crate::endpoint::ErrorKind;

/// Rounds of keyboard-interactive questions answered before giving up (PAM may send an
/// empty round first, with a banner).
const ROUNDS: usize = 4;

/// Logs in with the flow's credentials (`key`: the private key, loaded). `Err`: the kind and
/// a message that never holds a secret.
pub(super) async fn login(
    handle: &mut Handle<ClientHandler>,
    spec: &SftpSpec,
    key: Option<Arc<PrivateKey>>,
) -> Result<(), (ErrorKind, String)> {
    let ssh = |what: &str, e: russh::Error| (ssh_error_kind(&e), format!("{what}: {e}"));
    let (result, method) = match (&spec.auth, key) {
        (SshAuth::Password(p), _) => {
            let mut result = handle.authenticate_password(&spec.user, p.expose()).await.map_err(|e| ssh("login failed", e))?;
            if let AuthResult::Failure { remaining_methods, .. } = &result
                && remaining_methods.contains(&MethodKind::KeyboardInteractive)
            {
                result = interactive(handle, &spec.user, p.expose()).await.map_err(|e| ssh("login failed", e))?.unwrap_or(result);
            }
            (result, "password".to_string())
        }
        (SshAuth::Key { path, .. }, Some(key)) => {
            // RSA signs with rsa-sha2-512/256 when the server says it accepts them; OpenSSH
            // >= 8.8 refuses the SHA-1 `ssh-rsa` default.
            let hash = if key.algorithm().is_rsa() {
                handle.best_supported_rsa_hash().await.map_err(|e| ssh("login failed", e))?.flatten()
            } else {
                None
            };
            let res = handle
                .authenticate_publickey(&spec.user, PrivateKeyWithHashAlg::new(key, hash))
                .await
                .map_err(|e| ssh("login failed", e))?;
            (res, format!("key {}", path.display()))
        }
        (SshAuth::Key { path, .. }, None) => {
            return Err((ErrorKind::Config, format!("private key {} was not loaded", path.display())));
        }
    };
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { remaining_methods, .. } => {
            Err((ErrorKind::AuthFailed, format!("login as {} with {method} refused{}", spec.user, accepts(&remaining_methods))))
        }
    }
}

/// Answers keyboard-interactive rounds with the password: `None` when the server asks for
/// something else than one hidden answer (the password's refusal then stands).
async fn interactive(handle: &mut Handle<ClientHandler>, user: &str, password: &str) -> Result<Option<AuthResult>, russh::Error> {
    let mut reply = handle.authenticate_keyboard_interactive_start(user, None).await?;
    for _ in 0..ROUNDS {
        reply = match reply {
            KeyboardInteractiveAuthResponse::Success => return Ok(Some(AuthResult::Success)),
            KeyboardInteractiveAuthResponse::Failure { remaining_methods, partial_success } => {
                return Ok(Some(AuthResult::Failure { remaining_methods, partial_success }));
            }
            KeyboardInteractiveAuthResponse::InfoRequest { prompts, .. } => match prompts.as_slice() {
                [] => handle.authenticate_keyboard_interactive_respond(vec![]).await?,
                [one] if !one.echo => handle.authenticate_keyboard_interactive_respond(vec![password.to_string()]).await?,
                _ => {
                    let asked: Vec<&str> = prompts.iter().map(|p| p.prompt.trim()).collect();
                    tracing::warn!(user, prompts = ?asked, "The server asks more than a password by keyboard-interactive; not answered.");
                    return Ok(None);
                }
            },
        };
    }
    Ok(None)
}

/// ` (the server accepts: publickey, password)`, or nothing when it named none.
fn accepts(methods: &[MethodKind]) -> String {
    let names: Vec<&str> = methods.iter().filter(|m| **m != MethodKind::None).map(<&str>::from).collect();
    if names.is_empty() { String::new() } else { format!(" (the server accepts: {})", names.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_what_the_server_accepts() {
        assert_eq!(
            accepts(&[MethodKind::PublicKey, MethodKind::KeyboardInteractive]),
            " (the server accepts: publickey, keyboard-interactive)"
        );
        assert_eq!(accepts(&[]), "");
    }
}
