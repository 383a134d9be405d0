//! The SSH login: the method the flow's credentials call for, and how a refusal is told.
//!
//! A password goes by the `password` method, and, when the server takes passwords only
//! through `keyboard-interactive` (PAM with `PasswordAuthentication no`, common on appliances
//! and hardened hosts), as the answer to its one hidden prompt — what OpenSSH's `sftp`,
//! rclone and WinSCP do. A server asking for anything else (a second factor, a prompt that
//! echoes) is not answered: the password is never given to a prompt that may not be asking
//! for it. A refusal names the methods the server still accepts, so that a password sent to
//! a server that takes keys only says so.
//!
//! A key with a password beside it: the key first, then the password when the server asks for
//! a second step (`AuthenticationMethods publickey,password`) or refuses the key.

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
    let user = spec.user.as_str();
    let (result, method) = match (&spec.auth, key) {
        (SshAuth::Password(p), _) => {
            (with_password(handle, user, p.expose(), None).await.map_err(|e| ssh("login failed", e))?, "password".to_string())
        }
        (SshAuth::Key { path, password, .. }, Some(key)) => {
            // RSA signs with rsa-sha2-512/256 when the server says it accepts them; OpenSSH
            // >= 8.8 refuses the SHA-1 `ssh-rsa` default.
            let hash = if key.algorithm().is_rsa() {
                handle.best_supported_rsa_hash().await.map_err(|e| ssh("login failed", e))?.flatten()
            } else {
                None
            };
            let res =
                handle.authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash)).await.map_err(|e| ssh("login failed", e))?;
            let key = format!("key {}", path.display());
            match (res, password) {
                // The key taken (a second step asked for) or refused: the password as well.
                (AuthResult::Failure { remaining_methods, partial_success }, Some(p))
                    if remaining_methods.iter().any(|m| matches!(m, MethodKind::Password | MethodKind::KeyboardInteractive)) =>
                {
                    let then =
                        with_password(handle, user, p.expose(), Some(&remaining_methods)).await.map_err(|e| ssh("login failed", e))?;
                    (then, if partial_success { format!("{key} and password") } else { format!("{key}, then password") })
                }
                (AuthResult::Failure { remaining_methods, partial_success: true }, None) => {
                    let asks = accepts(&remaining_methods);
                    return Err((
                        ErrorKind::AuthFailed,
                        format!(
                            "login as {user}: the server took {key} and asks for more{asks}; a `password` beside `private_key` is given when asked"
                        ),
                    ));
                }
                (res, _) => (res, key),
            }
        }
        (SshAuth::Key { path, .. }, None) => {
            return Err((ErrorKind::Config, format!("private key {} was not loaded", path.display())));
        }
    };
    match result {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { remaining_methods, .. } => {
            Err((ErrorKind::AuthFailed, format!("login as {user} with {method} refused{}", accepts(&remaining_methods))))
        }
    }
}

/// The password by the `password` method, then (refused, and the server offering it) by
/// keyboard-interactive. `offered`: the methods the server said it takes, when known (the
/// `password` method is then tried only when among them).
async fn with_password(
    handle: &mut Handle<ClientHandler>,
    user: &str,
    password: &str,
    offered: Option<&[MethodKind]>,
) -> Result<AuthResult, russh::Error> {
    let result = match offered {
        Some(methods) if !methods.contains(&MethodKind::Password) => {
            AuthResult::Failure { remaining_methods: methods.into(), partial_success: false }
        }
        _ => handle.authenticate_password(user, password).await?,
    };
    if let AuthResult::Failure { remaining_methods, .. } = &result
        && remaining_methods.contains(&MethodKind::KeyboardInteractive)
    {
        return Ok(interactive(handle, user, password).await?.unwrap_or(result));
    }
    Ok(result)
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
                    tracing::warn!(user = %user, prompts = ?asked, "The server asks more than a password by keyboard-interactive; not answered.");
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
