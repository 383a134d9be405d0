//! Host-key trust: known_hosts files read with OpenSSH semantics, pinned fingerprints (of
//! any of the server's keys: which types to offer on the next try is decided here, the
//! retrying in `connect`), and the key scan behind `wharf trust`.
//!
//! Owns the rule that a server key is never accepted silently: every verdict other than
//! "recorded for this host" or "matches the pin" is an error whose message says what to do.
//! It does not decide *whether* to trust a new key — that is the user's call, via `wharf trust`.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use russh::client;
use russh::keys::ssh_key::known_hosts::{Entry as HostEntry, HostPatterns, Marker};
use russh::keys::{Algorithm, HashAlg, PublicKey, PublicKeyOrCertificate};
use sha1::Sha1;

use crate::config::flow::HostKeyPolicy;
use crate::endpoint::greeting::{Sniff, not_ssh};
use crate::endpoint::reach::{self, Given};
use crate::endpoint::{EndpointError, ErrorKind, Op};

/// The name a host's keys are recorded under: `host` for port 22, `[host]:port` otherwise
/// (lower-cased, as OpenSSH does).
pub fn known_hosts_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 { host } else { format!("[{host}]:{port}") }
}

/// `SHA256:…` as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// What a known_hosts file says about one host's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Recorded for this host (1-based line number).
    Known { line: usize },
    /// This host has a key of the same type recorded, and it is a different one.
    Changed { line: usize },
    /// The key is marked `@revoked`.
    Revoked { line: usize },
    /// Nothing of this key's type is recorded for this host.
    Unknown,
}

/// A parsed known_hosts file. Lines that do not parse (unsupported key types, garbage) are
/// skipped, as OpenSSH does.
#[derive(Debug, Clone, Default)]
pub struct KnownHostsFile {
    entries: Vec<(usize, HostEntry)>,
}

impl KnownHostsFile {
    /// Reads `path`; a missing file is an empty one.
    pub fn read(path: &Path) -> io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.parse::<HostEntry>() {
                Ok(e) => entries.push((i + 1, e)),
                Err(e) => tracing::debug!(line = i + 1, error = %e, "Skipping a known_hosts line that does not parse."),
            }
        }
        KnownHostsFile { entries }
    }

    /// Checks `key` for `host:port`. `@revoked` wins over everything, then a recorded match,
    /// then a different recorded key of the same type.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> Verdict {
        let name = known_hosts_name(host, port);
        let (mut known, mut changed) = (None, None);
        for (line, e) in self.entries.iter().filter(|(_, e)| host_matches(e.host_patterns(), &name)) {
            let same_key = e.public_key().key_data() == key.key_data();
            match e.marker() {
                Some(Marker::Revoked) if same_key => return Verdict::Revoked { line: *line },
                Some(_) => {}
                None if same_key => known = known.or(Some(*line)),
                None if e.public_key().algorithm() == key.algorithm() => changed = changed.or(Some(*line)),
                None => {}
            }
        }
        match (known, changed) {
            (Some(line), _) => Verdict::Known { line },
            (None, Some(line)) => Verdict::Changed { line },
            (None, None) => Verdict::Unknown,
        }
    }

    /// Key algorithms recorded for `host:port`, in file order, without duplicates.
    pub fn algorithms_for(&self, host: &str, port: u16) -> Vec<Algorithm> {
        let name = known_hosts_name(host, port);
        let mut out: Vec<Algorithm> = Vec::new();
        for (_, e) in &self.entries {
            if e.marker().is_none() && host_matches(e.host_patterns(), &name) {
                let alg = e.public_key().algorithm();
                if !out.contains(&alg) {
                    out.push(alg);
                }
            }
        }
        out
    }
}

/// OpenSSH `match_hostname`: a hashed name matches by HMAC-SHA1; a pattern list matches when
/// some pattern matches and no negated (`!`) pattern does.
fn host_matches(patterns: &HostPatterns, name: &str) -> bool {
    match patterns {
        HostPatterns::HashedName { salt, hash } => match <Hmac<Sha1> as KeyInit>::new_from_slice(salt) {
            Ok(mac) => mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok(),
            Err(_) => false,
        },
        HostPatterns::Patterns(list) => {
            let mut positive = false;
            for p in list {
                let (negated, p) = match p.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, p.as_str()),
                };
                if glob_match(&p.to_ascii_lowercase(), name) {
                    if negated {
                        return false;
                    }
                    positive = true;
                }
            }
            positive
        }
    }
}

/// `*` and `?` wildcards over the whole string (OpenSSH `match_pattern`).
fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The `wharf trust` command that records this host in `file`.
pub fn trust_command(host: &str, port: u16, file: &Path) -> String {
    let target = if port == 22 { host.to_string() } else { format!("{host}:{port}") };
    format!("wharf trust {target} --known-hosts {}", crate::text::shell_word(&file.display().to_string()))
}

/// How one connection checks the server key: the policy plus, for known_hosts, the file as
/// read when the connection started (so `wharf trust` takes effect on the next connect).
#[derive(Debug)]
pub(super) struct HostKeyCheck {
    pub host: String,
    pub port: u16,
    pub policy: HostKeyPolicy,
    pub known: KnownHostsFile,
}

impl HostKeyCheck {
    /// Reads the known_hosts file the policy names (an unreadable file is a `Config` error).
    pub fn load(host: &str, port: u16, policy: &HostKeyPolicy, endpoint: &str) -> Result<Self, EndpointError> {
        let known = match policy {
            HostKeyPolicy::KnownHosts(file) => KnownHostsFile::read(file).map_err(|e| {
                EndpointError::new(
                    ErrorKind::Config,
                    Op::Connect,
                    endpoint,
                    None,
                    format!("cannot read known_hosts file {}: {e}", file.display()),
                )
            })?,
            HostKeyPolicy::Fingerprint(_) => KnownHostsFile::default(),
        };
        Ok(HostKeyCheck { host: host.to_string(), port, policy: policy.clone(), known })
    }

    /// Host-key algorithms to offer, most preferred first: `first` (the type a pinned
    /// fingerprint matched on an earlier connection) leads, then those recorded for this
    /// host, so the server proves the key we know rather than another one we would call
    /// "unknown"; then the others. Types of the `skip` keys (shown already, and refused) are
    /// left out, so the server has to show another key.
    pub fn preferred_algorithms(&self, first: Option<&Algorithm>, skip: &[Algorithm]) -> Vec<Algorithm> {
        let defaults = russh::Preferred::DEFAULT.key.to_vec();
        let mut out = Vec::new();
        for wanted in first.into_iter().cloned().chain(self.known.algorithms_for(&self.host, self.port)) {
            for d in &defaults {
                if same_key_type(&wanted, d) && !out.contains(d) {
                    out.push(d.clone());
                }
            }
        }
        for d in defaults {
            if !out.contains(&d) {
                out.push(d);
            }
        }
        out.retain(|a| !skip.iter().any(|s| same_key_type(s, a)));
        out
    }

    /// A fingerprint is pinned (rather than a known_hosts file consulted).
    pub fn is_pin(&self) -> bool {
        matches!(self.policy, HostKeyPolicy::Fingerprint(_))
    }

    /// The message when none of the server's keys (`shown`, each refused) matches the pin.
    pub fn pin_matches_none(&self, shown: &[PublicKey]) -> String {
        let name = known_hosts_name(&self.host, self.port);
        let pin = match &self.policy {
            HostKeyPolicy::Fingerprint(pin) => pin.as_str(),
            HostKeyPolicy::KnownHosts(_) => "",
        };
        let keys: Vec<String> = shown.iter().map(|k| format!("{} {}", k.algorithm(), fingerprint(k))).collect();
        format!(
            "no host key of {name} matches the pinned fingerprint {pin}: the server has {}; this may be an attack. \
             If the partner really replaced its key, pin the fingerprint they send you for the new one",
            keys.join(", ")
        )
    }

    /// `Ok` when the key is trusted; otherwise the message for a `HostKey` error.
    pub fn verify(&self, key: &PublicKey) -> Result<(), String> {
        let name = known_hosts_name(&self.host, self.port);
        let (alg, fp) = (key.algorithm(), fingerprint(key));
        match &self.policy {
            HostKeyPolicy::Fingerprint(pin) => {
                if normalise_fingerprint(pin) == normalise_fingerprint(&fp) {
                    Ok(())
                } else {
                    Err(format!("host key {alg} {fp} for {name} does not match the pinned fingerprint {pin}"))
                }
            }
            HostKeyPolicy::KnownHosts(file) => match self.known.check(&self.host, self.port, key) {
                Verdict::Known { .. } => Ok(()),
                Verdict::Unknown => Err(format!(
                    "unknown host key {alg} {fp} for {name} ({} {}); if it is right, run `{}`",
                    if file.exists() { "not in" } else { "there is no known_hosts file" },
                    file.display(),
                    trust_command(&self.host, self.port, file)
                )),
                Verdict::Changed { line } => Err(format!(
                    "HOST KEY CHANGED for {name}: the server offers {alg} {fp}, but {} (known_hosts line {line}) records another key; \
                     this may be an attack. If the server's key was really replaced (check the new fingerprint with the partner), \
                     replace that line with `{} --yes`",
                    file.display(),
                    trust_command(&self.host, self.port, file)
                )),
                Verdict::Revoked { line } => {
                    Err(format!("host key {alg} {fp} for {name} is marked @revoked in {} (known_hosts line {line})", file.display()))
                }
            },
        }
    }
}

/// The same kind of key: every RSA signature variant (`rsa-sha2-512`, `ssh-rsa`…) is one.
fn same_key_type(a: &Algorithm, b: &Algorithm) -> bool {
    match (a, b) {
        (Algorithm::Rsa { .. }, Algorithm::Rsa { .. }) => true,
        (a, b) => a == b,
    }
}

/// `SHA256:abc=` and `abc` compare equal.
fn normalise_fingerprint(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix("SHA256:").unwrap_or(s).trim_end_matches('=')
}

/// A server key as seen by [`scan_host_key`].
#[derive(Debug, Clone)]
pub struct ScannedKey {
    pub host: String,
    pub port: u16,
    pub key: PublicKey,
    /// The key type as recorded in known_hosts: `ssh-ed25519`, `ssh-rsa`, `ecdsa-sha2-nistp256`…
    pub algorithm: String,
    /// `SHA256:…`.
    pub fingerprint: String,
    /// `[host]:port alg base64` (`host alg base64` for port 22), ready for a known_hosts file.
    pub known_hosts_line: String,
}

/// Captures the server key and refuses it, so the scan never gets past key exchange.
struct ScanHandler {
    seen: Arc<Mutex<Option<PublicKey>>>,
}

impl client::Handler for ScanHandler {
    type Error = russh::Error;

    async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(key.public_key());
        }
        Ok(false)
    }
}

/// Connects to `host:port` (written where `given` says: a name that does not resolve says
/// what to check), reads the server's host key during key exchange and hangs up (nothing is
/// authenticated). For `wharf trust`. `timeout` bounds the TCP connect and the key exchange
/// together.
pub async fn scan_host_key(given: Given<'_>, host: &str, port: u16, timeout: Duration) -> Result<ScannedKey, EndpointError> {
    let endpoint = format!("sftp {}", super::host_port(host, port));
    let seen = Arc::new(Mutex::new(None));
    // The algorithms a flow's connection offers: a server `wharf trust` can read is one a
    // flow can reach.
    let preferred = super::algorithms::preferred(russh::Preferred::DEFAULT.key.to_vec());
    let config = Arc::new(client::Config { nodelay: true, preferred, ..Default::default() });
    let handler = ScanHandler { seen: seen.clone() };
    // What the server said first, to name a port that is not SSH's, as a flow's connection
    // does (was: an FTP port waited out the whole timeout, "no SSH key exchange within 10 s").
    let first = Arc::new(Mutex::new(Vec::new()));
    // TCP through `reach`, as a flow's connection: the same words for a name that does not
    // resolve or a server that cannot be reached.
    let scan = async {
        let tcp = reach::connect(given, host, port).await?;
        client::connect_stream(config, Sniff::new(tcp, first.clone()), handler).await.map_err(|e| {
            if let Some(msg) = first.lock().ok().and_then(|f| not_ssh(&f)) {
                return (ErrorKind::Config, msg);
            }
            match e {
                russh::Error::IO(e) => reach::unreachable(host, port, &e),
                e => (super::connect::ssh_error_kind(&e), e.to_string()),
            }
        })
    };
    let res = tokio::time::timeout(timeout, scan).await;
    let captured = seen.lock().ok().and_then(|mut s| s.take());
    let Some(key) = captured else {
        let (kind, message) = match res {
            Err(_) => (ErrorKind::Transient, format!("no SSH key exchange within {} s", timeout.as_secs_f32())),
            Ok(Err(failed)) => failed,
            Ok(Ok(_)) => (ErrorKind::Protocol, "the server never showed a host key".to_string()),
        };
        return Err(EndpointError::new(kind, Op::Connect, endpoint, None, message));
    };
    let bare = PublicKey::new(key.key_data().clone(), "");
    let openssh = bare
        .to_openssh()
        .map_err(|e| EndpointError::new(ErrorKind::Protocol, Op::Connect, &endpoint, None, format!("cannot encode the host key: {e}")))?;
    Ok(ScannedKey {
        host: host.to_string(),
        port,
        fingerprint: fingerprint(&key),
        known_hosts_line: format!("{} {}", known_hosts_name(host, port), openssh.trim()),
        algorithm: key.algorithm().as_str().to_string(),
        key,
    })
}

/// Replaces line `line_no` (1-based) of the known_hosts `file` — a host's old key — by `line`:
/// the old key is no longer trusted. Written beside the file and renamed over it, with the
/// file's permissions.
pub fn replace_in_known_hosts(file: &Path, line_no: usize, line: &str) -> io::Result<()> {
    let existing = std::fs::read_to_string(file)?;
    let mut lines: Vec<&str> = existing.lines().collect();
    let Some(slot) = line_no.checked_sub(1).and_then(|i| lines.get_mut(i)) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no line {line_no}", file.display())));
    };
    *slot = line.trim();
    let tmp = file.with_extension("wharf-new");
    std::fs::write(&tmp, format!("{}\n", lines.join("\n")))?;
    std::fs::set_permissions(&tmp, std::fs::metadata(file)?.permissions())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, file)
}

/// Appends `line` to the known_hosts `file` (creating it and its folders), unless the same
/// host and key are already recorded there.
pub fn add_to_known_hosts(file: &Path, line: &str) -> io::Result<()> {
    let line = line.trim();
    let entry: HostEntry = line.parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("not a known_hosts line: {e}")))?;
    let existing = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let known = KnownHostsFile::parse(&existing);
    let duplicate = match entry.host_patterns() {
        HostPatterns::Patterns(names) => names.iter().any(|n| {
            let name = n.to_ascii_lowercase();
            known.entries.iter().any(|(_, e)| {
                e.marker().is_none() && e.public_key().key_data() == entry.public_key().key_data() && host_matches(e.host_patterns(), &name)
            })
        }),
        HostPatterns::HashedName { .. } => existing.lines().any(|l| l.trim() == line),
    };
    if duplicate {
        return Ok(());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    let sep = if existing.is_empty() || existing.ends_with('\n') { "" } else { "\n" };
    writeln!(f, "{sep}{line}")?;
    f.sync_all()
}

/// `~/.ssh/known_hosts`, when a home folder is known.
pub fn default_known_hosts() -> Option<PathBuf> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(".ssh").join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `wharf trust` pointed at an FTP port says so at once, as a flow's connection does
    /// (was: the whole timeout waited out, then "no SSH key exchange within 10 s").
    #[tokio::test]
    async fn the_scan_of_a_port_that_is_not_ssh_names_what_answered_at_once() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            sock.write_all(b"220 (vsFTPd 3.0.3)\r\n").await.unwrap();
            // An FTP server waits for a command: it says nothing more, nor hangs up.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let started = std::time::Instant::now();
        let err = scan_host_key(Given::Argument("wharf trust"), "127.0.0.1", port, Duration::from_secs(20)).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10), "waited {:?}", started.elapsed());
        assert_eq!(err.kind, ErrorKind::Config, "{err}");
        assert!(err.to_string().contains("greeted with `220 (vsFTPd 3.0.3)`, which is not SSH: an FTP server?"), "{err}");
        server.abort();
    }

    /// The command a message suggests runs on the right file when pasted into a shell.
    #[test]
    fn the_trust_command_quotes_a_path_a_shell_would_split() {
        assert_eq!(trust_command("h", 22, Path::new("/srv/kh")), "wharf trust h --known-hosts /srv/kh");
        assert_eq!(trust_command("h", 2222, Path::new("/srv/My Flows/kh")), "wharf trust h:2222 --known-hosts '/srv/My Flows/kh'");
    }

    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9dG4kjRhQTtWTVzd2t27+t0DEHBPW7iOD23TUiYLio";
    const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE5jCCqyB4lB0pIrkNH2CkHQoSwxCeb5/S/T6n2yQ4xb";

    fn key(s: &str) -> PublicKey {
        s.parse().unwrap()
    }

    #[test]
    fn glob_and_negation() {
        assert!(glob_match("*.example.com", "a.example.com"));
        assert!(glob_match("[10.0.0.?]:2222", "[10.0.0.7]:2222"));
        assert!(!glob_match("*.example.com", "example.com"));
        let p: HostPatterns = "*.example.com,!bad.example.com".parse().unwrap();
        assert!(host_matches(&p, "good.example.com"));
        assert!(!host_matches(&p, "bad.example.com"));
    }

    #[test]
    fn an_unknown_key_says_whether_the_known_hosts_file_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let check = |file: &Path| HostKeyCheck::load("127.0.0.1", 22, &HostKeyPolicy::KnownHosts(file.to_path_buf()), "e").unwrap();
        let missing = check(&file).verify(&key(ED)).unwrap_err();
        assert!(missing.contains("(there is no known_hosts file "), "{missing}");
        std::fs::write(&file, format!("other.example {ED2}\n")).unwrap();
        let unknown = check(&file).verify(&key(ED)).unwrap_err();
        assert!(unknown.contains("(not in "), "{unknown}");
    }

    #[test]
    fn port_naming_and_verdicts() {
        let kh = KnownHostsFile::parse(&format!("# c\n\n[127.0.0.1]:2222 {ED}\nexample.com {ED2}\n"));
        assert_eq!(kh.check("127.0.0.1", 2222, &key(ED)), Verdict::Known { line: 3 });
        assert_eq!(kh.check("127.0.0.1", 22, &key(ED)), Verdict::Unknown);
        assert_eq!(kh.check("127.0.0.1", 2222, &key(ED2)), Verdict::Changed { line: 3 });
        assert_eq!(kh.check("EXAMPLE.com", 22, &key(ED2)), Verdict::Known { line: 4 });
        // A later matching line wins over an earlier different key (OpenSSH semantics).
        let kh = KnownHostsFile::parse(&format!("h {ED2}\nh {ED}\n@revoked h {ED2}\n"));
        assert_eq!(kh.check("h", 22, &key(ED)), Verdict::Known { line: 2 });
        assert_eq!(kh.check("h", 22, &key(ED2)), Verdict::Revoked { line: 3 });
    }

    #[test]
    fn hashed_names() {
        // `ssh-keygen -H` of "[127.0.0.1]:2222": HMAC-SHA1 with the salt as key.
        let salt = [7u8; 20];
        let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt).unwrap();
        mac.update(b"[127.0.0.1]:2222");
        let hash: [u8; 20] = mac.finalize().into_bytes().into();
        let p = HostPatterns::HashedName { salt: salt.to_vec(), hash };
        let line = format!("{} {ED}", p.to_string());
        let kh = KnownHostsFile::parse(&line);
        assert_eq!(kh.check("127.0.0.1", 2222, &key(ED)), Verdict::Known { line: 1 });
        assert_eq!(kh.check("127.0.0.2", 2222, &key(ED)), Verdict::Unknown);
    }

    #[test]
    fn fingerprint_pin_normalises() {
        assert_eq!(normalise_fingerprint("SHA256:abc="), "abc");
        assert_eq!(normalise_fingerprint(" abc "), "abc");
    }

    #[test]
    fn add_appends_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/known_hosts");
        add_to_known_hosts(&f, &format!("[h]:2222 {ED}")).unwrap();
        add_to_known_hosts(&f, &format!("[h]:2222 {ED}")).unwrap();
        add_to_known_hosts(&f, &format!("[h]:2222 {ED2}")).unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
    }
}
