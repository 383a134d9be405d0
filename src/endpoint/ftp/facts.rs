//! What an FTP server says about itself, for `wharf probe`: the welcome line, `SYST`, every
//! `FEAT` line with its meaning for wharf, whether a listing of the root works over the data
//! connection mode in use (EPSV, PASV or active), and for FTPS the negotiated TLS version and
//! cipher suite (from a separate handshake: suppaftp does not expose its TLS session), and how
//! many logins the server accepts at once (up to `max_connections`). Also the
//! two plain operations the probe needs (`RMD`, and `RNFR`/`RNTO` without looking first),
//! which `mod.rs` forwards to.
//!
//! Only asks: nothing here writes on the server. What a missing feature means for a flow is
//! decided in `crate::probe`, not here.

use std::time::Duration;

use suppaftp::{FtpError, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::connect::{Conn, HashCommand, feat_reply, reply_text, within};
use super::tls::Tls;
use super::{EntryKind, Fail, FtpEndpoint};
use crate::config::flow::{FtpSpec, FtpTls};
use crate::endpoint::{EndpointError, Feature, Op, RemotePath, ServerFacts, Sessions, Support, Traits};
use crate::text::{Keep, SERVER_TEXT, one_line};

impl FtpEndpoint {
    /// How many logins the server accepts at once: `max_connections` of them asked for side
    /// by side (the pool's idle one among them). A server at its limit turns the rest away.
    async fn sessions_at_once(&self) -> Sessions {
        let asked = self.inner.pool.max();
        let leases: Vec<_> =
            futures::future::join_all((0..asked).map(|_| self.inner.pool.try_acquire())).await.into_iter().flatten().flatten().collect();
        let accepted = leases.len();
        leases.into_iter().for_each(|l| l.release());
        Sessions { asked, accepted }
    }
}

/// What a `FEAT` name means for wharf (unknown ones are listed without a meaning).
fn meaning(name: &str) -> &'static str {
    match name {
        "MLST" | "MLSD" => "listings carry exact sizes and UTC times to the second",
        "MDTM" => "a file's modification time in UTC, to the second",
        "SIZE" => "a file's exact size (uploads are verified by it)",
        "EPSV" => "passive data connections by port only (works through NAT)",
        "EPRT" => "active data connections over IPv6",
        "UTF8" => "file names in UTF-8",
        "AUTH" => "TLS can be started on this connection (explicit FTPS)",
        "PBSZ" | "PROT" => "data connections can be encrypted",
        "REST" => "downloads resume where they stopped",
        "HASH" => "the server computes checksums (uploads verified by SHA-256 when offered)",
        "XSHA256" => "the server computes SHA-256 (uploads verified by it)",
        "MFMT" => "modification times can be set",
        "TVFS" => "Unix-style paths",
        "CCC" => "the control connection can drop TLS after login",
        _ => "",
    }
}

/// Features whose absence matters, with what is lost (checked by name in `FEAT`).
const WANTED: [(&str, &str); 5] = [
    ("MLSD", "listings fall back to LIST: sizes may be rounded, times to the minute in the server's time zone"),
    ("MDTM", "no exact modification times: LIST times only (minutes, server time zone)"),
    ("SIZE", "sizes come from listings only"),
    ("EPSV", "passive mode uses PASV (the address it names is ignored: the server's own is used)"),
    ("UTF8", "non-ASCII file names may be garbled"),
];

impl FtpEndpoint {
    /// [`Endpoint::facts`](crate::endpoint::Endpoint::facts) for FTP.
    pub(super) async fn server_facts(&self) -> Result<ServerFacts, EndpointError> {
        let root = RemotePath::root();
        let ((mut facts, in_step), lease) = self
            .attempt(Op::Connect, &root, true, |mut c| async move {
                let r = self.facts_on(&mut c).await;
                (c, r)
            })
            .await?;
        // After a failed data connection the control connection's state is unknown: close it.
        if in_step {
            lease.release();
        }
        facts.traits.sessions = Some(self.sessions_at_once().await);
        let connector = self.inner.pool.connector();
        let spec = connector.spec();
        if let Some(tls) = connector.tls().await? {
            match tls_session(spec, &tls).await {
                Ok(session) => {
                    facts.features.insert(0, Feature::offered("TLS", &session, "negotiated on a separate control connection"));
                    facts.traits.encrypted.why = format!("{}, {session}", facts.traits.encrypted.why);
                }
                Err(e) => facts.problems.push(format!("could not read the TLS version and cipher: {e}")),
            }
        }
        Ok(facts)
    }

    /// The facts, and whether the connection is still in step.
    async fn facts_on(&self, c: &mut Conn) -> Result<(ServerFacts, bool), Fail> {
        let spec = self.inner.pool.connector().spec();
        let welcome = c.ftp.get_welcome_msg().map(|w| one_line(w, SERVER_TEXT, Keep::Start));
        let syst = match within(c.timeout, c.ftp.custom_command("SYST", &[Status::Name])).await {
            Ok(r) => Some(reply_text(&r)),
            Err(FtpError::UnexpectedResponse(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let software = match (welcome, syst) {
            (Some(w), Some(s)) => Some(format!("{w} · {s}")),
            (w, s) => w.or(s),
        };
        let feat = within(c.timeout, feat_reply(&mut c.ftp)).await?;
        let mut features = Vec::new();
        let mut listed = Vec::new();
        for line in feat.as_deref().unwrap_or("").lines().filter(|l| l.starts_with(' ')) {
            let line = line.trim();
            let (name, value) = line.split_once(' ').unwrap_or((line, ""));
            let name = name.to_ascii_uppercase();
            features.push(Feature::offered(&name, value.trim(), meaning(&name)));
            listed.push(name);
        }
        if feat.is_none() {
            features.push(Feature::missing("FEAT", "the server lists no features"));
        }
        for (name, lost) in WANTED {
            let offered = listed.iter().any(|n| n == name) || (name == "MLSD" && c.feat.mlsd);
            if !offered {
                features.push(Feature::missing(name, lost));
            }
        }

        // The data connection, tried the way every listing does it.
        let mut problems = Vec::new();
        let root = RemotePath::root();
        let listing = match within(c.timeout, c.ftp.cwd(c.full(&root))).await {
            Ok(()) => self
                .list_cwd(c, &root)
                .await
                .map(|listing| listing.entries.iter().filter(|e| !matches!(e.kind, EntryKind::Other(_))).count()),
            Err(e) => Err(e.into()),
        };
        let mode = if !spec.passive {
            "active (PORT)"
        } else if c.epsv {
            "passive (EPSV)"
        } else {
            "passive (PASV)"
        };
        // A failing data connection is a finding here, not a reason to fail the probe.
        let in_step = match listing {
            Ok(n) => {
                features.push(Feature::offered("data connection", mode, format!("a listing of the root worked ({n} entries)")));
                true
            }
            Err(Fail::Ftp(FtpError::UnexpectedResponse(r))) => {
                problems.push(format!("listing the root {} over {mode} was refused: {}", c.full(&root), reply_text(&r)));
                true
            }
            Err(Fail::Io(e)) => {
                problems.push(format!("listing the root {} over {mode} failed: {e}", c.full(&root)));
                false
            }
            Err(Fail::Ftp(FtpError::ConnectionError(e))) => {
                problems.push(format!("listing the root {} over {mode} failed: {e}", c.full(&root)));
                false
            }
            Err(other) => return Err(other),
        };

        let (mtime_precision, mtime_source) = if c.feat.mlsd {
            (Duration::from_secs(1), "MLSD: UTC, seconds")
        } else if c.feat.mdtm {
            (Duration::from_secs(1), "LIST refined by MDTM: files UTC to the second (folders: LIST, minutes)")
        } else {
            (Duration::from_secs(60), "LIST only: minutes at best, in the server's time zone")
        };
        let traits = Traits {
            atomic_replace: Support::no("FTP cannot promise that RNTO over an existing file is atomic"),
            durable_writes: Support::no("FTP has no command to flush a file to disk"),
            server_sha256: match c.feat.sha256 {
                Some(HashCommand::Hash { .. }) => Support::yes("HASH with SHA-256"),
                Some(HashCommand::Xsha256) => Support::yes("XSHA256"),
                None => Support::no("no HASH SHA-256 or XSHA256 in FEAT"),
            },
            encrypted: match spec.tls {
                FtpTls::None => Support::no("plain FTP: the password and the files cross the network unencrypted"),
                FtpTls::Explicit => Support::yes("explicit FTPS"),
                FtpTls::Implicit => Support::yes("implicit FTPS"),
            },
            mtime_precision,
            mtime_source: mtime_source.into(),
            sessions: None,
        };
        let protocol = match spec.tls {
            FtpTls::None => "FTP (no TLS)",
            FtpTls::Explicit => "FTPS (explicit)",
            FtpTls::Implicit => "FTPS (implicit)",
        };
        Ok((ServerFacts { protocol: protocol.into(), software, features, traits, problems }, in_step))
    }

    /// [`Endpoint::remove_dir`](crate::endpoint::Endpoint::remove_dir) for FTP: `RMD`.
    pub(super) async fn remove_dir_at(&self, dir: &RemotePath) -> Result<(), EndpointError> {
        self.run(Op::Remove, dir, false, |mut c| async move {
            let full = c.full(dir);
            let r = match within(c.timeout, c.ftp.rmdir(&full)).await {
                Ok(()) => Ok(()),
                Err(e) => Err(self.refused(&mut c, e, dir, EntryKind::Dir).await),
            };
            (c, r)
        })
        .await
    }

    /// [`Endpoint::rename_plain`](crate::endpoint::Endpoint::rename_plain): `RNFR`/`RNTO`.
    pub(super) async fn rename_plain_at(&self, from: &RemotePath, to: &RemotePath) -> Result<(), EndpointError> {
        self.renamable(from, to)?;
        self.run(Op::Rename, from, false, |mut c| async move {
            let (src, dst) = (c.full(from), c.full(to));
            let r = within(c.timeout, c.ftp.rename(&src, &dst)).await.map_err(Fail::from);
            (c, r)
        })
        .await
    }
}

/// `TLSv1_3 TLS13_AES_256_GCM_SHA384`, from a handshake of our own on a new control connection
/// (checked against the same trust as every connection), closed again with `QUIT`.
async fn tls_session(spec: &FtpSpec, tls: &Tls) -> Result<String, String> {
    let connector = suppaftp::tokio_rustls::TlsConnector::from(tls.config());
    let name = rustls::pki_types::ServerName::try_from(spec.host.clone()).map_err(|e| format!("{}: {e}", spec.host))?;
    let work = async {
        let mut tcp = TcpStream::connect((spec.host.as_str(), spec.port)).await.map_err(|e| e.to_string())?;
        if spec.tls == FtpTls::Explicit {
            read_reply(&mut tcp).await?;
            tcp.write_all(b"AUTH TLS\r\n").await.map_err(|e| e.to_string())?;
            let reply = read_reply(&mut tcp).await?;
            if !reply.starts_with("234") {
                return Err(format!("AUTH TLS refused: {}", reply.trim()));
            }
        }
        let mut stream = connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
        let (_, session) = stream.get_ref();
        let version = session.protocol_version().map(|v| format!("{v:?}")).unwrap_or_else(|| "TLS".into());
        let suite = session.negotiated_cipher_suite().map(|s| format!(" {:?}", s.suite())).unwrap_or_default();
        // Best effort: the server closes the connection either way.
        let _ = stream.write_all(b"QUIT\r\n").await;
        let _ = stream.shutdown().await;
        Ok(format!("{version}{suite}"))
    };
    tokio::time::timeout(spec.connect_timeout + spec.operation_timeout, work).await.map_err(|_| "no answer in time".to_string())?
}

/// Reads one (possibly multi-line) reply on a plain control connection: up to the line that
/// starts with three digits and a space.
async fn read_reply(tcp: &mut TcpStream) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = tcp.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if text.ends_with('\n') && text.lines().any(is_last_line) {
            return Ok(text.lines().rfind(|l| is_last_line(l)).unwrap_or_default().to_string());
        }
        if buf.len() > 64 * 1024 {
            return Err("the reply is too long".into());
        }
    }
}

fn is_last_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' '
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_ends_at_the_line_with_code_and_space() {
        assert!(is_last_line("220 (vsFTPd 3.0.3)"));
        assert!(!is_last_line("220-Welcome"));
        assert!(!is_last_line(" 220 x"));
        assert!(!meaning("MLST").is_empty());
        assert_eq!(meaning("XYZ"), "");
    }
}
