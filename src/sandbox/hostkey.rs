//! The sandbox's SSH host key: an Ed25519 key generated on first start and kept in a file,
//! so the known_hosts line a flow was set up with stays valid across restarts.
//!
//! Owns generating, storing (mode 0600, never overwritten) and loading that key, and the
//! fingerprint and known_hosts line printed for it. It does not decide where the file lives
//! (the caller does) and never accepts another key type.

use std::fs;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey};

use crate::endpoint::sftp::known_hosts_name;

/// The host key could not be made, stored or read.
#[derive(Debug, thiserror::Error)]
#[error("host key {}: {message}", path.display())]
pub struct HostKeyError {
    pub path: PathBuf,
    pub message: String,
}

/// Loads the key at `path`, or generates one there when the file does not exist.
/// Returns the key and whether it was generated now.
pub fn load_or_generate(path: &Path) -> Result<(PrivateKey, bool), HostKeyError> {
    let err = |message: String| HostKeyError { path: path.to_path_buf(), message };
    match fs::read_to_string(path) {
        Ok(text) => {
            let key = PrivateKey::from_openssh(text.as_bytes()).map_err(|e| err(format!("not an unencrypted OpenSSH private key: {e}")))?;
            if key.algorithm() != Algorithm::Ed25519 {
                return Err(err(format!("is a {} key; the sandbox uses ssh-ed25519 (delete the file to generate one)", key.algorithm())));
            }
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|e| err(format!("cannot generate: {e}")))?;
            store(path, &key).map_err(err)?;
            Ok((key, true))
        }
        Err(e) => Err(err(format!("cannot read: {e}"))),
    }
}

/// Writes the private key (0600, refusing to replace a file that appeared meanwhile) and
/// its `.pub` beside it.
fn store(path: &Path, key: &PrivateKey) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let pem = key.to_openssh(LineEnding::LF).map_err(|e| format!("cannot encode: {e}"))?;
    let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(|e| format!("cannot create: {e}"))?;
    f.write_all(pem.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| format!("cannot write: {e}"))?;
    let public = format!("{} wharf-sandbox\n", openssh_public(key.public_key()));
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    fs::write(&pub_path, public).map_err(|e| format!("cannot write {}: {e}", Path::new(&pub_path).display()))?;
    Ok(())
}

/// `ssh-ed25519 AAAA…` without a comment.
pub fn openssh_public(key: &PublicKey) -> String {
    // Encoding a key that was just decoded or generated cannot fail; fall back to the
    // algorithm name rather than panic.
    let text = key.to_openssh().unwrap_or_else(|_| key.algorithm().to_string());
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

/// `SHA256:…`, as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The known_hosts line for the key served at `ip:port` (`[127.0.0.1]:2222 ssh-ed25519 …`).
pub fn known_hosts_line(ip: IpAddr, port: u16, key: &PublicKey) -> String {
    format!("{} {}", known_hosts_name(&ip.to_string(), port), openssh_public(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::sftp::{KnownHostsFile, Verdict};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/host_ed25519");
        let (a, new) = load_or_generate(&path).unwrap();
        assert!(new);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (b, new) = load_or_generate(&path).unwrap();
        assert!(!new);
        assert_eq!(fingerprint(a.public_key()), fingerprint(b.public_key()), "same key after a restart");
        let line = known_hosts_line("127.0.0.1".parse().unwrap(), 2222, a.public_key());
        assert!(line.starts_with("[127.0.0.1]:2222 ssh-ed25519 AAAA"), "{line}");
        let kh = KnownHostsFile::parse(&line);
        assert!(matches!(kh.check("127.0.0.1", 2222, a.public_key()), Verdict::Known { .. }));
        let pubfile = fs::read_to_string(dir.path().join("keys/host_ed25519.pub")).unwrap();
        assert!(pubfile.starts_with(&openssh_public(a.public_key())));
    }

    #[test]
    fn a_broken_key_file_is_an_error_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        fs::write(&path, "garbage").unwrap();
        let e = load_or_generate(&path).unwrap_err();
        assert!(e.to_string().contains("not an unencrypted OpenSSH private key"), "{e}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "garbage");
    }
}
