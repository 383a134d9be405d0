//! Endpoint checks: `sftp`, `ftp` and `local` settings, credentials and their secrets,
//! host keys and certificate trust — the part of validation that knows about servers.

use crate::config::flow::ServerClock;

use super::*;

impl Checker<'_, '_> {
    /// The spec of endpoint `name` (its key under `endpoints:`).
    pub(super) fn endpoint(&mut self, name: &str, ep: RawEndpoint) -> Option<EndpointSpec> {
        let at = &format!("/endpoints/{}", escape(name));
        match ep {
            RawEndpoint::Local { root } => {
                if root.is_empty() {
                    self.problem(format!("{at}/root"), "must not be empty");
                    return None;
                }
                let root = self.lookup.resolve_path(&root);
                if let Some(blocked) = crate::endpoint::local::blocked_root(&root) {
                    self.warning(format!("{at}/root"), format!("{blocked}; name a folder (one that does not exist yet is created)"));
                }
                Some(EndpointSpec::Local { root })
            }
            RawEndpoint::Sftp(sftp) => self.sftp(name, at, sftp).map(EndpointSpec::Sftp),
            RawEndpoint::Ftp(ftp) => self.ftp(name, at, ftp).map(EndpointSpec::Ftp),
        }
    }

    fn ftp(&mut self, name: &str, at: &str, raw: RawFtp) -> Option<FtpSpec> {
        let host = self.credential(&format!("{at}/host"), &raw.host, true);
        let user = self.credential(&format!("{at}/user"), &raw.user, true);
        let password = self.secret(&format!("{at}/password"), raw.password.expose(), Some(&raw.user));
        let trust = self.cert_trust(at, raw.tls, raw.ca_file, raw.fingerprint);
        if raw.tls == FtpTls::None && raw.tls_max_version.is_some() {
            self.problem(format!("{at}/tls_max_version"), "`tls_max_version` has no effect with `tls: none` (plain FTP has no TLS)");
        }
        let root = match &raw.root {
            Some(r) => self.server_root(&format!("{at}/root"), r).map(Some),
            None => Some(None),
        };
        let connect_timeout = self.positive_duration(&format!("{at}/connect_timeout"), &raw.connect_timeout);
        let operation_timeout = self.positive_duration(&format!("{at}/operation_timeout"), &raw.operation_timeout);
        let max_connections = self.connections(&format!("{at}/max_connections"), raw.max_connections);
        let server_clock = match (&raw.time_offset, &raw.time_zone) {
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{at}/time_zone"),
                    "set `time_offset` (a fixed distance from UTC) or `time_zone` (a zone with summer time), not both",
                );
                None
            }
            (Some(t), None) => self.ok(&format!("{at}/time_offset"), time_offset(t)).map(ServerClock::Offset),
            (None, Some(z)) => self.ok(&format!("{at}/time_zone"), time_zone(z)).map(ServerClock::Zone),
            (None, None) => Some(ServerClock::Utc),
        };
        if raw.use_pasv_address && !raw.passive {
            self.problem(
                format!("{at}/use_pasv_address"),
                "`use_pasv_address` is for passive data connections; with `passive: false` the server connects to wharf",
            );
        }
        let default_port = if raw.tls == FtpTls::Implicit { 990 } else { 21 };
        Some(FtpSpec {
            name: name.to_string(),
            host: host?,
            port: raw.port.unwrap_or(default_port),
            user: user?,
            password: Secret::new(password?),
            tls: raw.tls,
            trust: trust?,
            tls_max_version: raw.tls_max_version.unwrap_or_default(),
            passive: raw.passive,
            root: root?,
            connect_timeout: connect_timeout?,
            operation_timeout: operation_timeout?,
            max_connections: max_connections?,
            server_clock: server_clock?,
            use_pasv_address: raw.use_pasv_address,
        })
    }

    /// How an FTPS certificate is checked: system CAs, a CA file, or a pinned fingerprint.
    fn cert_trust(&mut self, at: &str, tls: FtpTls, ca_file: Option<String>, fingerprint: Option<String>) -> Option<CertTrust> {
        if tls == FtpTls::None {
            for (field, set) in [("ca_file", ca_file.is_some()), ("fingerprint", fingerprint.is_some())] {
                if set {
                    self.problem(
                        format!("{at}/{field}"),
                        format!("`{field}` has no effect with `tls: none` (plain FTP has no certificate)"),
                    );
                }
            }
            return (ca_file.is_none() && fingerprint.is_none()).then_some(CertTrust::SystemRoots);
        }
        match (ca_file, fingerprint) {
            (Some(_), Some(_)) => {
                self.problem(at, "set either `ca_file` or `fingerprint`, not both");
                None
            }
            (None, None) => Some(CertTrust::SystemRoots),
            (Some(file), None) if file.is_empty() => {
                self.problem(format!("{at}/ca_file"), "must not be empty");
                None
            }
            (Some(file), None) => Some(CertTrust::CaFile(self.lookup.resolve_path(&file))),
            (None, Some(fp)) => {
                let r = parse_cert_fingerprint(&fp);
                self.ok(&format!("{at}/fingerprint"), r).map(CertTrust::Fingerprint)
            }
        }
    }

    fn sftp(&mut self, name: &str, at: &str, raw: RawSftp) -> Option<SftpSpec> {
        let host = self.credential(&format!("{at}/host"), &raw.host, true);
        let user = self.credential(&format!("{at}/user"), &raw.user, true);
        let auth = self.auth(at, raw.auth);
        let host_key = self.host_key(&format!("{at}/host_key"), raw.host_key);
        let root = self.server_root(&format!("{at}/root"), &raw.root);
        let connect_timeout = self.positive_duration(&format!("{at}/connect_timeout"), &raw.connect_timeout);
        let operation_timeout = self.positive_duration(&format!("{at}/operation_timeout"), &raw.operation_timeout);
        let max_connections = self.connections(&format!("{at}/max_connections"), raw.max_connections);
        Some(SftpSpec {
            name: name.to_string(),
            host: host?,
            port: raw.port,
            user: user?,
            auth: auth?,
            host_key: host_key?,
            root: root?,
            connect_timeout: connect_timeout?,
            operation_timeout: operation_timeout?,
            max_connections: max_connections?,
        })
    }

    /// `max_connections` of a server endpoint: at least 1.
    fn connections(&mut self, path: &str, n: u32) -> Option<usize> {
        if n == 0 {
            self.problem(path, "must be at least 1");
        }
        usize::try_from(n).ok().filter(|&n| n > 0)
    }

    /// Interpolates a credential field; `required` ones must not come out empty.
    pub(super) fn credential(&mut self, path: &str, text: &str, required: bool) -> Option<String> {
        match resolve(text, self.lookup) {
            Ok(value) if required && value.is_empty() => {
                // Quoting `text` shows no secret, even in a sensitive field (a webhook `url`):
                // interpolation keeps every character outside a `${…}`, so only a text made of
                // references alone resolves to nothing, and the quote names just the references
                // that did (`notify::tests::a_secret_mixed_with_a_reference_is_never_quoted`).
                self.problem(
                    path,
                    if text.is_empty() { "must not be empty".to_string() } else { format!("`{text}` resolves to an empty value") },
                );
                None
            }
            // An inline value (a `${…}` value was checked as it was read); not quoted.
            Ok(value) if !crate::config::interpolate::is_one_line(&value) => {
                self.problem(path, "holds a line break or NUL character; a credential is one line");
                None
            }
            Ok(value) => Some(value),
            // Kept as written, for a command that never connects with it.
            Err(errors) if self.keep_unavailable && errors.iter().all(|e| e.unavailable) => {
                self.unresolved.extend(errors.into_iter().map(|e| Problem::new(path, e.message)));
                Some(text.to_string())
            }
            Err(errors) => {
                errors.into_iter().for_each(|e| self.problem(path, e.message));
                None
            }
        }
    }

    /// A password or passphrase: a [`credential`](Self::credential), and a warning when it is
    /// written in the flow file itself rather than taken from `${env:…}` or `${file:…}` (flow
    /// files are read, copied and committed; the value is never quoted). Not for the password
    /// of an anonymous FTP login (`user` `anonymous` or `ftp`), which is no secret.
    pub(super) fn secret(&mut self, path: &str, text: &str, ftp_user: Option<&str>) -> Option<String> {
        let anonymous = ftp_user.is_some_and(|u| u.eq_ignore_ascii_case("anonymous") || u.eq_ignore_ascii_case("ftp"));
        if !text.is_empty() && !anonymous && !crate::config::interpolate::has_reference(text) {
            let field = path.rsplit('/').next().unwrap_or("password");
            self.warning(
                path,
                format!(
                    "the {field} is written in the flow file, in clear: whoever reads the file (or its history in version \
                     control) has it; take it from the environment, `{field}: \"${{env:NAME}}\"`, or from a file only wharf may \
                     read, `{field}: \"${{file:PATH}}\"`"
                ),
            );
        }
        self.credential(path, text, false)
    }

    fn auth(&mut self, at: &str, auth: crate::config::raw::RawSshAuth) -> Option<SshAuth> {
        let at = format!("{at}/auth");
        match (auth.password, auth.private_key) {
            (None, None) => {
                self.problem(&at, "set `password` or `private_key`");
                None
            }
            (Some(password), None) => {
                if auth.passphrase.is_some() {
                    self.problem(format!("{at}/passphrase"), "`passphrase` unlocks a `private_key`; with `password` login it is not used");
                }
                let password = self.secret(&format!("{at}/password"), password.expose(), None)?;
                auth.passphrase.is_none().then(|| SshAuth::Password(Secret::new(password)))
            }
            (password, Some(key)) => {
                let password = match password {
                    Some(p) => Some(Secret::new(self.secret(&format!("{at}/password"), p.expose(), None)?)),
                    None => None,
                };
                if key.is_empty() {
                    self.problem(format!("{at}/private_key"), "must not be empty");
                    return None;
                }
                let passphrase = match auth.passphrase {
                    Some(p) => Some(Secret::new(self.secret(&format!("{at}/passphrase"), p.expose(), None)?)),
                    None => None,
                };
                Some(SshAuth::Key { path: self.lookup.resolve_path(&key), passphrase, password })
            }
        }
    }

    fn host_key(&mut self, at: &str, hk: crate::config::raw::RawHostKey) -> Option<HostKeyPolicy> {
        match (hk.known_hosts, hk.fingerprint) {
            (Some(_), Some(_)) => {
                self.problem(at, "set either `known_hosts` or `fingerprint`, not both");
                None
            }
            (None, None) => {
                self.problem(at, "set `known_hosts` (a file) or `fingerprint` (`SHA256:…`); wharf never trusts an unknown host key");
                None
            }
            (Some(file), None) if file.is_empty() => {
                self.problem(format!("{at}/known_hosts"), "must not be empty");
                None
            }
            (Some(file), None) => Some(HostKeyPolicy::KnownHosts(self.lookup.resolve_path(&file))),
            (None, Some(fp)) => {
                let r = check_fingerprint(&fp);
                self.ok(&format!("{at}/fingerprint"), r).map(|()| HostKeyPolicy::Fingerprint(fp))
            }
        }
    }

    /// An SFTP root: absolute, normalised, no `..`.
    fn server_root(&mut self, path: &str, root: &str) -> Option<String> {
        if !root.starts_with('/') {
            self.problem(path, format!("`{root}` must be an absolute path on the server (start with `/`)"));
            return None;
        }
        let parsed = self.ok(path, RemotePath::parse(root).map_err(|e| e.to_string()))?;
        Some(parsed.to_string())
    }
}

/// `SHA256:` followed by the base64 of 32 bytes, as `ssh-keygen -l` prints it (unpadded).
fn check_fingerprint(fp: &str) -> Result<(), String> {
    let bad = || format!("`{fp}` is not a key fingerprint: expected `SHA256:` and 43 base64 characters, as `ssh-keygen -lf KEY` prints");
    let b64 = fp.strip_prefix("SHA256:").ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.trim_end_matches('=')).map_err(|_| bad())?;
    if bytes.len() != 32 {
        return Err(bad());
    }
    Ok(())
}

/// A certificate fingerprint: `SHA256:` and 64 hex digits (colons allowed, any case), as
/// `openssl x509 -noout -fingerprint -sha256` prints it, or the 64 hex digits alone (what
/// follows its `=`, copied).
pub fn parse_cert_fingerprint(fp: &str) -> Result<[u8; 32], String> {
    let bad = || {
        format!(
            "`{fp}` is not a certificate fingerprint: expected `SHA256:` and 64 hex digits (colons allowed), as \
             `openssl x509 -noout -fingerprint -sha256 -in CERT` prints"
        )
    };
    // `SHA256:AB:…` as wharf prints it; `sha256 Fingerprint=ab:…` as OpenSSL 3 does (any case);
    // `ab:…` alone, as copied from after OpenSSL's `=`.
    let lower = fp.trim().to_ascii_lowercase();
    let bare = || Some(lower.as_str()).filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
    let digits = lower.strip_prefix("sha256:").or_else(|| lower.strip_prefix("sha256 fingerprint=")).or_else(bare).ok_or_else(bad)?;
    let hex_digits: String = digits.chars().filter(|&c| c != ':').collect();
    let bytes = hex::decode(&hex_digits).map_err(|_| bad())?;
    // 20 bytes is SHA-1's, what `-fingerprint` without `-sha256` prints.
    if bytes.len() == 20 {
        return Err(format!("{}; this one has 40, a SHA-1 fingerprint: add `-sha256`", bad()));
    }
    bytes.try_into().map_err(|_| bad())
}

/// A time zone's distance from UTC as `time_offset` writes it (`-5h`, `+5h30m`, `1h`), in
/// seconds: at most 14 hours either way, as time zones are.
fn time_offset(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let d = super::duration::parse(rest.trim())
        .map_err(|e| format!("{e}; a time zone's distance from UTC is written with a sign: `-5h`, `+1h`, `+5h30m`"))?;
    if d > std::time::Duration::from_secs(14 * 3600) {
        return Err(format!("`{t}` is more than 14 hours: no time zone is that far from UTC"));
    }
    Ok(sign * d.as_secs() as i64)
}

/// A zone by its IANA name (`Europe/Berlin`), as `time_zone` writes it: read as a schedule's
/// `timezone` is, with the same suggestions for a name mistyped (`Europe/Berln`).
fn time_zone(text: &str) -> Result<chrono_tz::Tz, String> {
    crate::schedule::parse_timezone(text.trim())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::{BASE, problems, run};
    use super::*;

    /// Before, found by the first run only ("the endpoint's root … is a file, not a folder").
    #[test]
    fn a_local_root_that_is_a_file_is_a_warning_at_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data"), "x").unwrap();
        let warnings = |root: &str| {
            let yaml = format!(
                "name: f\nendpoints:\n  a: {{ type: local, root: ./in }}\n  b:\n    type: local\n    root: {root}\n\
                 source: {{ endpoint: a, path: / }}\nsinks: [ {{ endpoint: b }} ]\n"
            );
            std::fs::write(dir.path().join("f.yaml"), yaml).unwrap();
            let (flow, warnings) = crate::config::load_flow_with_warnings(&dir.path().join("f.yaml"));
            assert!(flow.is_ok(), "{flow:?}");
            warnings.into_iter().map(|w| w.warning_text().replace(&dir.path().display().to_string(), "DIR")).collect::<Vec<_>>()
        };
        assert_eq!(
            warnings("data"),
            ["DIR/f.yaml:6:11: warning: the endpoint's root DIR/data is a file, not a folder; name a folder (one that does not \
              exist yet is created) (at /endpoints/b/root)"]
        );
        assert_eq!(
            warnings("data/out/x"),
            ["DIR/f.yaml:6:11: warning: the endpoint's root DIR/data/out/x cannot be made: DIR/data is a file, not a folder; name \
              a folder (one that does not exist yet is created) (at /endpoints/b/root)"]
        );
        // A folder that does not exist yet is created by the first run.
        assert_eq!(warnings("out/new"), Vec::<String>::new());
    }

    /// Before, a password written in the flow file passed without a word, though every page
    /// says to take it from `${env:…}` or `${file:…}`.
    #[test]
    fn a_password_written_in_clear_is_a_warning_that_never_quotes_it() {
        use super::super::tests::warnings;
        let clear = |field: &str, at: &str| {
            format!(
                "the {field} is written in the flow file, in clear: whoever reads the file (or its history in version control) has \
                 it; take it from the environment, `{field}: \"${{env:NAME}}\"`, or from a file only wharf may read, `{field}: \
                 \"${{file:PATH}}\"` (at {at})"
            )
        };
        let sftp = |auth: &str| warnings(&BASE.replace("auth: { password: \"${env:PASS}\" }", &format!("auth: {{ {auth} }}")));
        assert_eq!(sftp("password: hunter2"), [clear("password", "/endpoints/s/auth/password")]);
        assert_eq!(
            sftp("private_key: k, passphrase: hunter2, password: \"${env:PASS}\""),
            [clear("passphrase", "/endpoints/s/auth/passphrase")]
        );
        assert_eq!(sftp("password: \"${file:secret.txt}x\""), Vec::<String>::new(), "a reference, even one not resolved here");
        assert_eq!(warnings(&ftp("password: hunter2")), [clear("password", "/endpoints/l/password")]);
        // An anonymous FTP login's password is no secret.
        let anonymous = BASE.replace("l: { type: local, root: ./out }", "l: { type: ftp, host: h, user: Anonymous, password: guest@ }");
        assert_eq!(warnings(&anonymous), Vec::<String>::new());
        assert!(!sftp("password: hunter2").concat().contains("hunter2"));
    }

    #[test]
    fn ftp_time_zone_is_an_iana_name() {
        assert_eq!(time_zone(" Europe/Berlin "), Ok(chrono_tz::Europe::Berlin));
        assert!(time_zone("CEST").unwrap_err().contains("unknown time zone `CEST`: give an IANA name"));
        // Before, no suggestion here, as there was for a schedule's `timezone`.
        assert_eq!(
            time_zone("America/New_Yrok").unwrap_err(),
            "unknown time zone `America/New_Yrok`: give an IANA name such as `Europe/Berlin` or `UTC` (did you mean `America/New_York`?)"
        );
        let clock = |fields: &str| {
            let flow = run(&ftp(&format!("password: x, {fields}"))).unwrap();
            let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
            f.server_clock
        };
        assert_eq!(clock("time_zone: Asia/Kolkata"), ServerClock::Zone(chrono_tz::Asia::Kolkata));
        assert_eq!(clock("time_offset: +5h30m"), ServerClock::Offset(19_800));
        assert_eq!(clock("passive: true"), ServerClock::Utc);
        assert_eq!(
            problems(&ftp("password: x, time_offset: -5h, time_zone: America/New_York")),
            [
                "set `time_offset` (a fixed distance from UTC) or `time_zone` (a zone with summer time), not both (at /endpoints/l/time_zone)"
            ]
        );
    }

    #[test]
    fn ftp_time_offset_is_a_signed_zone_distance() {
        assert_eq!((time_offset("-5h"), time_offset("+5h30m"), time_offset("1h")), (Ok(-18_000), Ok(19_800), Ok(3_600)));
        assert!(time_offset("-15h").unwrap_err().contains("more than 14 hours"));
        assert!(time_offset("five").unwrap_err().contains("written with a sign"));
    }

    #[test]
    fn sftp_max_connections() {
        let with = |n: &str| BASE.replace("known_hosts } }", &format!("known_hosts }}, max_connections: {n} }}"));
        let EndpointSpec::Sftp(s) = &run(&with("3")).unwrap().endpoints["s"] else { panic!() };
        assert_eq!(s.max_connections, 3);
        assert_eq!(problems(&with("0")), ["must be at least 1 (at /endpoints/s/max_connections)"]);
    }

    #[test]
    fn credentials_and_host_keys() {
        // Both: the key, then the password when the server asks for it too.
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: \"${env:NOPE}\", private_key: k"));
        assert_eq!(p, ["environment variable `NOPE` is not set (at /endpoints/s/auth/password)"]);
        let flow = run(&BASE.replace("password: \"${env:PASS}\"", "password: \"${env:PASS}\", private_key: keys/id")).unwrap();
        let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
        assert!(matches!(&s.auth, SshAuth::Key { password: Some(p), passphrase: None, .. } if p.expose() == "s3cret"));
        // Before: accepted, and sent as two protocol lines.
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: \"hunter2\\r\\nDELE x\""));
        assert_eq!(p, ["holds a line break or NUL character; a credential is one line (at /endpoints/s/auth/password)"]);
        let p = problems(&BASE.replace("user: u", "user: \"u\\nx\""));
        assert_eq!(p, ["holds a line break or NUL character; a credential is one line (at /endpoints/s/user)"]);
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: \"${env:NOPE}\""));
        assert_eq!(p, ["environment variable `NOPE` is not set (at /endpoints/s/auth/password)"]);
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "passphrase: x"));
        assert_eq!(p, ["set `password` or `private_key` (at /endpoints/s/auth)"]);
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: x, passphrase: y"));
        assert_eq!(p, ["`passphrase` unlocks a `private_key`; with `password` login it is not used (at /endpoints/s/auth/passphrase)"]);
        let flow = run(&BASE.replace("password: \"${env:PASS}\"", "private_key: keys/id, passphrase: \"${env:PASS}\"")).unwrap();
        let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
        assert!(
            matches!(&s.auth, SshAuth::Key { path, passphrase: Some(p), .. } if path == Path::new("/flows/keys/id") && p.expose() == "s3cret")
        );

        let p = problems(&BASE.replace("known_hosts: ../k/known_hosts", "known_hosts: k, fingerprint: x"));
        assert_eq!(p, ["set either `known_hosts` or `fingerprint`, not both (at /endpoints/s/host_key)"]);
        let p = problems(&BASE.replace("known_hosts: ../k/known_hosts", "fingerprint: \"SHA256:abc\""));
        assert!(
            p[0].starts_with("`SHA256:abc` is not a key fingerprint") && p[0].ends_with("(at /endpoints/s/host_key/fingerprint)"),
            "{p:?}"
        );
        let fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
        let flow = run(&BASE.replace("known_hosts: ../k/known_hosts", &format!("fingerprint: \"{fp}\""))).unwrap();
        let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
        assert_eq!(s.host_key, HostKeyPolicy::Fingerprint(fp.into()));
        let p = problems(&BASE.replace("host: h", "host: \"\", root: srv"));
        assert_eq!(
            p,
            [
                "must not be empty (at /endpoints/s/host)",
                "`srv` must be an absolute path on the server (start with `/`) (at /endpoints/s/root)"
            ]
        );
    }

    #[test]
    fn ftp_endpoints() {
        let flow = run(&ftp("password: \"${env:PASS}\"")).unwrap();
        let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
        assert_eq!((f.port, f.tls, &f.trust, f.passive, f.root.as_deref()), (21, FtpTls::Explicit, &CertTrust::SystemRoots, true, None));
        assert_eq!((f.max_connections, f.operation_timeout), (4, Duration::from_secs(60)));
        assert_eq!(f.password.expose(), "s3cret");
        assert!(!format!("{flow:?}").contains("s3cret"));

        let fp = "SHA256:0a:1B:2c:3D:4e:5F:60:71:82:93:a4:b5:c6:d7:e8:f9:0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9";
        let flow = run(&ftp(&format!("password: x, tls: implicit, fingerprint: \"{fp}\", root: /srv/"))).unwrap();
        let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
        assert_eq!((f.port, f.root.as_deref()), (990, Some("/srv")));
        assert!(matches!(f.trust, CertTrust::Fingerprint(d) if d[0] == 0x0a && d[31] == 0xf9));
        let flow = run(&ftp("password: x, ca_file: certs/ca.pem, port: 2121, passive: false")).unwrap();
        let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
        assert_eq!((f.port, &f.trust, f.passive), (2121, &CertTrust::CaFile(PathBuf::from("/flows/certs/ca.pem")), false));

        let p = problems(&ftp("password: x, ca_file: c.pem, fingerprint: \"SHA256:00\""));
        assert_eq!(p, ["set either `ca_file` or `fingerprint`, not both (at /endpoints/l)"]);
        let p = problems(&ftp("password: x, fingerprint: \"SHA256:abc\""));
        assert!(
            p[0].starts_with("`SHA256:abc` is not a certificate fingerprint") && p[0].ends_with("(at /endpoints/l/fingerprint)"),
            "{p:?}"
        );
        let p = problems(&ftp("password: x, tls: none, ca_file: c.pem, max_connections: 0, root: rel"));
        assert_eq!(
            p,
            [
                "`ca_file` has no effect with `tls: none` (plain FTP has no certificate) (at /endpoints/l/ca_file)",
                "`rel` must be an absolute path on the server (start with `/`) (at /endpoints/l/root)",
                "must be at least 1 (at /endpoints/l/max_connections)",
            ]
        );
        let p = problems(&ftp("password: \"${env:NOPE}\""));
        assert_eq!(p, ["environment variable `NOPE` is not set (at /endpoints/l/password)"]);
    }

    /// [`BASE`] with endpoint `l` an FTP server with `fields`.
    fn ftp(fields: &str) -> String {
        BASE.replace("l: { type: local, root: ./out }", &format!("l: {{ type: ftp, host: h, user: u, {fields} }}"))
    }

    #[test]
    fn tls_max_version_is_taken_quoted_or_not() {
        use crate::config::flow::TlsVersion;
        let version = |extra: &str| {
            let flow = run(&ftp(&format!("password: x{extra}"))).unwrap();
            let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
            f.tls_max_version
        };
        assert_eq!(version(""), TlsVersion::V1_3);
        assert_eq!(version(", tls_max_version: 1.2"), TlsVersion::V1_2);
        assert_eq!(version(", tls_max_version: \"1.2\""), TlsVersion::V1_2);
        assert_eq!(version(", tls_max_version: 1.3"), TlsVersion::V1_3);
        let yaml = ftp("password: x, tls_max_version: 1.1").replace("${env:PASS}", "p");
        let err = crate::config::load::load_flow_str(&yaml, Path::new("/flows/f.yaml")).unwrap_err();
        let err: Vec<String> = err.iter().map(|d| d.to_string()).collect();
        assert_eq!(err, ["/flows/f.yaml:4:67: unknown value `1.1`, expected `1.2` or `1.3` (at /endpoints/l/tls_max_version)"]);
        let p = problems(&ftp("password: x, tls: none, tls_max_version: 1.2"));
        assert_eq!(p, ["`tls_max_version` has no effect with `tls: none` (plain FTP has no TLS) (at /endpoints/l/tls_max_version)"]);
    }
}
