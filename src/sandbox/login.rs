//! Who may log in to the sandbox: one user name, with its password (SFTP and FTP) or one of
//! the authorized public keys (SFTP only). The checks; each server asks them its own way.

use russh::keys::PublicKey;

use crate::config::Secret;

/// Who may log in.
pub struct Logins {
    pub user: String,
    pub password: Secret,
    pub keys: Vec<PublicKey>,
}

impl Logins {
    pub fn password_ok(&self, user: &str, password: &str) -> bool {
        // Both compared in full, so the time taken says nothing about which one was wrong.
        let user_ok = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let pass_ok = constant_time_eq(password.as_bytes(), self.password.expose().as_bytes());
        user_ok & pass_ok
    }

    pub fn key_ok(&self, user: &str, key: &PublicKey) -> bool {
        user == self.user && self.keys.iter().any(|k| k.key_data() == key.key_data())
    }
}

/// Equal lengths are compared without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
    }
}
