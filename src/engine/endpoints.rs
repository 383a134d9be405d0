//! Builds live endpoints from a flow's endpoint specs, one instance per name per run.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Flow;
use crate::config::flow::EndpointSpec;
use crate::config::validate::{DEFAULT_CONCURRENCY, MAX_CONCURRENCY};
use crate::endpoint::ftp::FtpEndpoint;
use crate::endpoint::local::LocalEndpoint;
use crate::endpoint::sftp::SftpEndpoint;
use crate::endpoint::{DynEndpoint, EndpointError, ErrorKind, Op};

/// How many files of `flow` may be in flight at once, for a run whose biggest ready file has
/// `largest` bytes: the flow's `concurrency`; when it sets none, [`MAX_CONCURRENCY`] for
/// files moved whole (up to [`stage::WHOLE_MAX`](super::stage::WHOLE_MAX)), whose memory the
/// run's byte budget bounds (see `budget`: a file waiting for a login, an fsync or a commit
/// holds no bytes, so more in flight overlap those waits — FTP pull of 200 × 1 MiB with 12
/// in flight 0.47–0.50 s, with 32 or 64 0.42–0.45 s, RSS 33 → 35–38 MiB), and
/// [`DEFAULT_CONCURRENCY`] for bigger (streamed) ones. Small files spend most of their time
/// being written, fsynced and recorded rather than on the network, and more of them in
/// flight share each group commit (FTP pull of 5000 × 4 KiB with 64 instead of 16: 12–20 %
/// faster).
///
/// One at a time with `on_error: stop` (files in order), and when the identity leaves out
/// the path (content, or size and time): two files of one run may then be the same file,
/// and the second must see the first one delivered.
///
/// With a file bigger than [`stage::WHOLE_MAX`](super::stage::WHOLE_MAX), no more than any
/// FTP endpoint it uses has logins (`max_connections`): such a file holds a login for its
/// whole transfer, however long, and a file waiting for a login behind it could wait longer
/// than any timeout. Files of at most that size hold a login for one bounded operation at a
/// time, so more of them than logins may be in flight: they take turns (FTP pull of 5000 ×
/// 4 KiB with 4 logins, 16 files in flight instead of 4: about 25 % faster, the logins no
/// longer idle while their files are written and recorded).
pub fn concurrency(flow: &Flow, names: &[&str], largest: u64) -> usize {
    let id = flow.source.identity;
    if flow.on_error == crate::config::flow::OnError::Stop || !id.path || id.sha256 {
        return 1;
    }
    let files = flow.concurrency.unwrap_or(if super::stage::is_small(largest) { MAX_CONCURRENCY as usize } else { DEFAULT_CONCURRENCY });
    if super::stage::is_small(largest) {
        return files.max(1);
    }
    let ftp_logins = names.iter().filter_map(|n| match flow.endpoints.get(*n) {
        Some(EndpointSpec::Ftp(s)) => Some(s.max_connections),
        _ => None,
    });
    ftp_logins.fold(files, usize::min).max(1)
}

/// Opens (and for servers, connects and authenticates) every endpoint in `names`, so an
/// unreachable server, a refused login or an untrusted host key fails before any file is
/// touched. A key, known_hosts or CA file that is not there fails first, before anything
/// connects, at its line of the flow file.
pub async fn open_all(flow: &Flow, names: &[&str]) -> Result<BTreeMap<String, DynEndpoint>, EndpointError> {
    if let Some(e) = at_fields(crate::config::key_files::check(flow, names.iter().copied())) {
        return Err(e);
    }
    // A flow loaded to be read, not run: never connect with a credential kept as written.
    let unresolved = flow.unresolved.iter().filter(|d| {
        names.iter().any(|n| crate::config::load::within(&d.yaml_path, &format!("/endpoints/{}", crate::config::locate::escape(n))))
    });
    if let Some(e) = at_fields(unresolved.cloned().collect()) {
        return Err(e);
    }
    let mut out: BTreeMap<String, DynEndpoint> = BTreeMap::new();
    for &name in names {
        if out.contains_key(name) {
            continue;
        }
        let spec = flow.endpoints.get(name).ok_or_else(|| {
            // Invariant kept by validation: every referenced endpoint exists. Report, don't panic.
            EndpointError::new(ErrorKind::Config, Op::Connect, name, None, "endpoint is not defined in the flow")
        })?;
        let ep: DynEndpoint = match spec {
            EndpointSpec::Local { root } => Arc::new(LocalEndpoint::new(root.clone())),
            EndpointSpec::Sftp(s) => {
                let ep = SftpEndpoint::new(s.clone());
                // A key that will not open is said as a missing one is, at its field.
                if let Err(p) = ep.load_key_now().await {
                    let at = format!("/endpoints/{}/auth/{}", crate::config::locate::escape(name), p.field);
                    let found = crate::config::Diagnostic::at_fields(&flow.file, vec![(at, p.describe(name))]);
                    return Err(at_fields(found)
                        .unwrap_or_else(|| EndpointError::new(ErrorKind::Config, Op::Connect, name, None, p.describe(name))));
                }
                ep.connect_now().await?;
                Arc::new(ep)
            }
            EndpointSpec::Ftp(s) => {
                let ep = FtpEndpoint::new(s.clone());
                ep.connect_now().await?;
                Arc::new(ep)
            }
        };
        out.insert(name.to_string(), ep);
    }
    Ok(out)
}

/// The configuration error of problems found in the flow file before connecting, each at its
/// field: `flows/f.yaml:5:30: connect: configuration error: endpoint `s`: private_key … (at
/// …)`; `None` when there are none.
fn at_fields(found: Vec<crate::config::Diagnostic>) -> Option<EndpointError> {
    let (first, more) = found.split_first()?;
    let at = format!("{}:{}:{}", first.file.display(), first.line, first.col);
    let mut message = format!("{} (at {})", first.message, first.yaml_path);
    for d in more {
        message.push_str(&format!("; and {d}"));
    }
    Some(EndpointError::new(ErrorKind::Config, Op::Connect, at, None, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn flow(extra: &str, identity: &str) -> Flow {
        let yaml = format!(
            "name: f
endpoints:
  ftp: {{ type: ftp, host: h, user: u, password: p, tls: none, max_connections: 3 }}
  here: {{ type: local, root: /tmp }}
source: {{ endpoint: ftp, path: /in {identity} }}
sinks: [ {{ endpoint: here }} ]
{extra}"
        );
        crate::config::load::load_flow_str(&yaml, Path::new("/flows/f.yaml")).expect("a valid flow")
    }

    #[test]
    fn runs_of_small_files_get_more_in_flight_unless_the_flow_says() {
        let names = ["ftp", "here"];
        let auto = flow("", "");
        let cases = [(0, 64), (4096, 64), (192 << 10, 64), (512 << 10, 64), (1 << 20, 64), (8 << 20, 3)];
        for (largest, files) in cases {
            assert_eq!(concurrency(&auto, &names, largest), files, "largest file {largest} bytes");
        }
        let set = flow("concurrency: 8\n", "");
        assert_eq!(concurrency(&set, &names, 4096), 8);
        assert_eq!(concurrency(&set, &names, 8 << 20), 3, "a big file holds a login: capped by max_connections");
        assert_eq!(concurrency(&flow("on_error: stop\n", ""), &names, 4096), 1);
        assert_eq!(concurrency(&flow("", ", identity: [size, mtime]"), &names, 4096), 1, "two files may be the same");
        assert_eq!(concurrency(&flow("", ", identity: [path, size]"), &names, 4096), 64);
    }

    #[tokio::test]
    async fn a_wrong_passphrase_is_said_at_its_line_as_a_missing_key_is() {
        // Said "cannot load private key …: SshKey: cryptographic error (wrong passphrase?)",
        // without the flow file or the setting.
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        let made = std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "right-phrase", "-C", "k", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(made.success());
        std::fs::write(dir.path().join("kh"), "").unwrap();
        let yaml = "name: f
endpoints:
  s:
    type: sftp
    host: 127.0.0.1
    port: 1
    user: u
    auth: { private_key: id, passphrase: \"${env:PHRASE}\" }
    host_key: { known_hosts: kh }
  l: { type: local, root: out }
source: { endpoint: s, path: /in }
sinks: [ { endpoint: l } ]
";
        let file = dir.path().join("f.yaml");
        std::fs::write(&file, yaml).unwrap();
        let env = |n: &str| if n == "PHRASE" { Ok("Wrong-Phrase-Q8".to_string()) } else { Err(std::env::VarError::NotPresent) };
        let flow = crate::config::load_flow_str_with_env(yaml, &file, &env).unwrap();
        let Err(e) = open_all(&flow, &["s"]).await else { panic!("opened with a wrong passphrase") };
        assert_eq!(e.kind, ErrorKind::Config, "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{}:8:42: connect: configuration error: endpoint `s`: private_key {} cannot be loaded: wrong passphrase, or the key is \
                 damaged (at /endpoints/s/auth/passphrase)",
                file.display(),
                key.display()
            )
        );
        let all = format!("{e} {e:?}");
        assert!(!all.contains("Wrong-Phrase-Q8") && !all.contains("SshKey"), "{all}");
    }

    #[tokio::test]
    async fn a_flow_loaded_to_be_read_never_connects_with_a_credential_it_could_not_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.yaml");
        let yaml = "name: f
endpoints:
  s: { type: ftp, host: 127.0.0.1, port: 1, user: u, password: \"${env:WHARF_TEST_NEVER_SET_PW}\", tls: none }
  l: { type: local, root: out }
source: { endpoint: s, path: /in }
sinks: [ { endpoint: l } ]
";
        std::fs::write(&file, yaml).unwrap();
        assert!(crate::config::load_flow(&file).is_err(), "refused to run");
        let flow = crate::config::load_flow_to_read(&file).unwrap();
        assert_eq!(flow.unresolved.len(), 1, "{:?}", flow.unresolved);
        assert!(open_all(&flow, &["l"]).await.is_ok(), "what needs no secret opens");
        let Err(e) = open_all(&flow, &["s"]).await else { panic!("connected with a credential kept as written") };
        assert_eq!(e.kind, ErrorKind::Config, "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "{}:3:64: connect: configuration error: environment variable `WHARF_TEST_NEVER_SET_PW` is not set (at /endpoints/s/password)",
                file.display()
            )
        );
    }

    #[tokio::test]
    async fn a_host_that_does_not_resolve_names_the_flow_endpoint_to_check() {
        // Said "check the host name `…` in the endpoint's `host`": which endpoint, in a flow
        // with several on servers, was left to guess.
        let yaml = "name: f
endpoints:
  partner: { type: ftp, host: nosuch.invalid, user: u, password: p, tls: none }
  backup: { type: sftp, host: nosuch.invalid, user: u, auth: { password: p }, host_key: { fingerprint: \"SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\" } }
  l: { type: local, root: /tmp }
source: { endpoint: partner, path: /in }
sinks: [ { endpoint: backup }, { endpoint: l } ]
";
        let flow = crate::config::load::load_flow_str(yaml, Path::new("/flows/f.yaml")).expect("a valid flow");
        for (name, port) in [("partner", 21), ("backup", 22)] {
            let Err(e) = open_all(&flow, &[name]).await else { panic!("{name}: reached nosuch.invalid") };
            assert_eq!(e.kind, ErrorKind::Transient, "{e}");
            assert!(e.message.contains(&format!("cannot reach nosuch.invalid:{port}: the host name does not resolve")), "{name}: {e}");
            assert!(e.message.contains(&format!("check the host name `nosuch.invalid` in endpoint `{name}` (or the DNS")), "{e}");
        }
    }
}
