//! What an SFTP server says about itself, for `wharf probe`: the SSH version string and the
//! negotiated algorithms, the SFTP version, every extension with its meaning for wharf, the
//! values of `limits@openssh.com` and the free space `statvfs@openssh.com` reports for the
//! root, and how many connections the server accepts at once (up to `max_connections`). Also
//! the two plain operations the probe needs (remove a folder, a rename that does not make
//! room), which `mod.rs` forwards to.
//!
//! Only asks: nothing here writes on the server. What a missing extension means for a flow
//! is decided in `crate::probe`, not here.

use std::time::Duration;

use russh_sftp::protocol::StatusCode;

use super::connect::Conn;
use super::pool::Use;
use super::{Fail, SftpEndpoint, SftpError};
use crate::endpoint::{EndpointError, Feature, Op, RemotePath, ServerFacts, Sessions, Support, Traits};

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";
const LIMITS: &str = "limits@openssh.com";
const STATVFS: &str = "statvfs@openssh.com";

/// The SSH side of a connection, recorded when the key exchange finished.
#[derive(Debug, Clone)]
pub(in crate::endpoint::sftp) struct Handshake {
    /// `SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`.
    server_id: String,
    kex: String,
    cipher: String,
    mac: String,
    host_key: String,
}

impl Handshake {
    pub fn new(server_id: &[u8], names: &russh::Names) -> Handshake {
        Handshake {
            server_id: String::from_utf8_lossy(server_id).trim().to_string(),
            kex: names.kex.as_ref().to_string(),
            cipher: names.cipher.as_ref().to_string(),
            mac: names.client_mac.as_ref().to_string(),
            host_key: names.key.as_str().to_string(),
        }
    }
}

/// What an extension means for wharf (unknown ones are listed without a meaning).
fn meaning(name: &str) -> &'static str {
    match name {
        POSIX_RENAME => "rename can replace an existing file atomically (used for `if_exists: overwrite`)",
        FSYNC => "an upload is flushed to the server's disk before it counts as written",
        LIMITS => "the largest requests the server accepts",
        STATVFS | "fstatvfs@openssh.com" => "free space can be asked for",
        "hardlink@openssh.com" => "hard links can be made",
        "copy-data" => "the server can copy files itself",
        "home-directory" | "expand-path@openssh.com" => "`~` in paths can be resolved",
        "lsetstat@openssh.com" => "attributes of symlinks can be set",
        "users-groups-by-id@openssh.com" => "owner and group names can be looked up",
        "check-file" | "check-file-name" | "check-file-handle" => "the server can compute checksums",
        _ => "",
    }
}

impl SftpEndpoint {
    /// [`Endpoint::facts`](crate::endpoint::Endpoint::facts) for SFTP.
    pub(super) async fn server_facts(&self) -> Result<ServerFacts, EndpointError> {
        let root = RemotePath::root();
        let full = &self.full(&root);
        let mut facts = self.run(Op::Connect, &root, true, |c| async move { facts_of(&c, full).await }).await?;
        facts.traits.sessions = Some(self.sessions_at_once().await);
        Ok(facts)
    }

    /// How many SSH connections the server accepts at once: `max_connections` of them made
    /// side by side (the live one among them). A server at its limit refuses the rest.
    async fn sessions_at_once(&self) -> Sessions {
        let asked = self.inner.spec.max_connections;
        let slots: Vec<_> = (0..asked).map(|_| self.inner.pool.pick(Use::Stream)).collect();
        let made = futures::future::join_all(slots.iter().map(|b| self.inner.connection(b))).await;
        let mut accepted = 0;
        for (busy, r) in slots.iter().zip(made) {
            match r {
                Ok(_) => accepted += 1,
                Err(e) => {
                    self.inner.pool.give_up(busy, &e);
                }
            }
        }
        Sessions { asked, accepted }
    }

    /// [`Endpoint::remove_dir`](crate::endpoint::Endpoint::remove_dir) for SFTP.
    pub(super) async fn remove_dir_at(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        let full = &self.full(dir);
        self.run(Op::Remove, dir, false, |c| async move { Ok(c.sftp.remove_dir(full.as_str()).await?) }).await
    }

    /// [`Endpoint::rename_plain`](crate::endpoint::Endpoint::rename_plain): `SSH_FXP_RENAME`.
    pub(super) async fn rename_plain_at(&self, from: &RemotePath, to: &RemotePath) -> Result<(), EndpointError> {
        let (src, dst) = (&self.full(from), &self.full(to));
        self.run(Op::Rename, from, false, |c| async move { Ok(c.sftp.rename(src.as_str(), dst.as_str()).await?) }).await
    }
}

async fn facts_of(c: &Conn, root: &str) -> Result<ServerFacts, Fail> {
    let mut problems = Vec::new();
    match c.sftp.metadata(root).await {
        Ok(md) if md.is_dir() => {}
        Ok(_) => problems.push(format!("the root {root} is not a folder")),
        Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {
            problems.push(format!("the root folder {root} does not exist"))
        }
        Err(e) => return Err(e.into()),
    }
    let mut features = Vec::new();
    if let Some(h) = &c.handshake {
        features.push(Feature::offered("key exchange", &h.kex, "negotiated"));
        features.push(Feature::offered("host key", &h.host_key, "the server's key type"));
        features.push(Feature::offered("cipher", &h.cipher, "negotiated"));
        features.push(Feature::offered("mac", &h.mac, "negotiated (implicit in AEAD ciphers)"));
    }
    let ext = &c.version.extensions;
    let mut names: Vec<&String> = ext.keys().collect();
    names.sort();
    for name in names {
        let value = match name.as_str() {
            LIMITS => match c.raw.limits().await {
                Ok(l) => {
                    let n = |v: u64| if v == 0 { "no limit".to_string() } else { v.to_string() };
                    format!(
                        "max packet {}, read {}, write {}, open handles {}",
                        n(l.max_packet_len),
                        n(l.max_read_len),
                        n(l.max_write_len),
                        n(l.max_open_handles)
                    )
                }
                Err(e) => {
                    problems.push(format!("{LIMITS} is offered but the request failed: {e}"));
                    format!("version {}", ext[name])
                }
            },
            STATVFS => match c.raw.statvfs(root).await {
                Ok(v) => {
                    let gib = |blocks: u64| (blocks as f64) * (v.fragment_size.max(1) as f64) / f64::from(1u32 << 30);
                    format!("{root}: {:.1} GiB free of {:.1} GiB", gib(v.blocks_avail), gib(v.blocks))
                }
                Err(e) => {
                    problems.push(format!("{STATVFS} is offered but the request for {root} failed: {e}"));
                    format!("version {}", ext[name])
                }
            },
            _ => format!("version {}", ext[name]),
        };
        features.push(Feature::offered(name.as_str(), value, meaning(name)));
    }
    for name in [POSIX_RENAME, FSYNC, LIMITS] {
        if !ext.contains_key(name) {
            features.push(Feature::missing(name, meaning(name)));
        }
    }
    let offered = |name: &str| ext.contains_key(name);
    let traits = Traits {
        atomic_replace: if offered(POSIX_RENAME) {
            Support::yes(format!("{POSIX_RENAME} offered"))
        } else {
            Support::no(format!("no {POSIX_RENAME}: a plain SFTP rename refuses an existing target"))
        },
        durable_writes: if offered(FSYNC) { Support::yes(format!("{FSYNC} offered")) } else { Support::no(format!("no {FSYNC}")) },
        server_sha256: if offered("check-file") || offered("check-file-name") {
            Support::no("check-file is offered but wharf does not use it")
        } else {
            Support::no("SFTP v3 has no checksum request")
        },
        encrypted: Support::yes(c.handshake.as_ref().map(|h| format!("SSH, {}", h.cipher)).unwrap_or_else(|| "SSH".into())),
        mtime_precision: Duration::from_secs(1),
        mtime_source: "SFTP v3 attributes: whole seconds, UTC".into(),
        sessions: None,
    };
    Ok(ServerFacts {
        protocol: format!("SFTP v{}", c.version.version),
        software: c.handshake.as_ref().map(|h| h.server_id.clone()),
        features,
        traits,
        problems,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_extensions_have_a_meaning() {
        for name in [POSIX_RENAME, FSYNC, LIMITS, STATVFS, "hardlink@openssh.com", "copy-data"] {
            assert!(!meaning(name).is_empty(), "{name}");
        }
        assert_eq!(meaning("x-vendor@example.com"), "");
    }
}
