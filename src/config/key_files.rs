//! The local files a flow's endpoints read when they connect — SSH private keys, known_hosts
//! files, FTPS CA files — and whether they are there.
//!
//! Validation does not require them: `wharf validate` and `wharf test` run where the keys
//! are not (CI, a laptop), and a flow file is valid whatever the machine. They are checked
//! where they are needed instead: before a run connects (`engine::endpoints::open_all`, an
//! error naming the flow file's line, the field and the path, so a missing key is not taken
//! for a server problem) and by `wharf validate` as a warning. This module finds them and
//! describes what is wrong; it never reads a key.

use std::path::{Path, PathBuf};

use super::Flow;
use super::diagnostic::Diagnostic;
use super::flow::{CertTrust, EndpointSpec, HostKeyPolicy, SshAuth};
use super::locate::escape;

/// A file an endpoint reads when it connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    /// The endpoint's name in the flow.
    pub endpoint: String,
    /// The field that names it: `private_key`, `known_hosts`, `ca_file`.
    pub field: &'static str,
    /// Where that field is: `/endpoints/partner/auth/private_key`.
    pub yaml_path: String,
    /// The file, resolved (absolute).
    pub path: PathBuf,
    /// What makes the file when it is missing, where wharf can: for a known_hosts file, the
    /// `wharf trust HOST:PORT --known-hosts PATH` that records the server's key in it.
    pub make: Option<String>,
}

/// The files the endpoints `names` of `flow` read when they connect (each endpoint once).
pub fn key_files<'a>(flow: &Flow, names: impl IntoIterator<Item = &'a str>) -> Vec<KeyFile> {
    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for name in names {
        if seen.contains(&name) {
            continue;
        }
        seen.push(name);
        let at = format!("/endpoints/{}", escape(name));
        let mut add = |field: &'static str, yaml_path: String, path: &Path, make: Option<String>| {
            out.push(KeyFile { endpoint: name.to_string(), field, yaml_path, path: path.to_path_buf(), make });
        };
        match flow.endpoints.get(name) {
            Some(EndpointSpec::Sftp(s)) => {
                if let SshAuth::Key { path, .. } = &s.auth {
                    add("private_key", format!("{at}/auth/private_key"), path, None);
                }
                if let HostKeyPolicy::KnownHosts(path) = &s.host_key {
                    let trust = crate::endpoint::sftp::trust_command(&s.host, s.port, path);
                    add("known_hosts", format!("{at}/host_key/known_hosts"), path, Some(trust));
                }
            }
            Some(EndpointSpec::Ftp(f)) => {
                if let CertTrust::CaFile(path) = &f.trust
                    && f.tls != super::flow::FtpTls::None
                {
                    add("ca_file", format!("{at}/ca_file"), path, None);
                }
            }
            Some(EndpointSpec::Local { .. }) | None => {}
        }
    }
    out
}

/// What is wrong with `file` on this machine, if anything: missing, a folder, unreadable.
pub fn problem(file: &KeyFile) -> Option<String> {
    let what = format!("endpoint `{}`: {} {}", file.endpoint, file.field, file.path.display());
    match std::fs::File::open(&file.path).and_then(|f| f.metadata()) {
        Ok(m) if m.is_dir() => Some(format!("{what} is a folder, not a file")),
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(match &file.make {
            Some(make) => format!("{what} does not exist (record the server's key in it with `{make}`, or correct `{}`)", file.field),
            None => format!("{what} does not exist (put the file there, or correct `{}`)", file.field),
        }),
        Err(e) => Some(format!("{what} cannot be read: {e}")),
    }
}

/// The problems of the files the endpoints `names` of `flow` read when they connect, each at
/// its field in the flow file (`file:line:col`; 1:1 when the file cannot be read again).
pub fn check<'a>(flow: &Flow, names: impl IntoIterator<Item = &'a str>) -> Vec<Diagnostic> {
    let bad = key_files(flow, names).into_iter().filter_map(|f| problem(&f).map(|p| (f.yaml_path, p))).collect();
    Diagnostic::at_fields(&flow.file, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_missing_file_at_its_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("known_hosts"), "").unwrap();
        std::fs::create_dir(dir.path().join("keys")).unwrap();
        let yaml = "name: f
endpoints:
  s: { type: sftp, host: h, user: u, auth: { private_key: keys/id }, host_key: { known_hosts: known_hosts } }
  t: { type: sftp, host: h, user: u, auth: { private_key: keys }, host_key: { known_hosts: nope } }
  f: { type: ftp, host: h, user: u, password: p, ca_file: ca.pem }
  l: { type: local, root: out }
source: { endpoint: s, path: /in }
sinks: [ { endpoint: l } ]
";
        let file = dir.path().join("f.yaml");
        std::fs::write(&file, yaml).unwrap();
        let flow = crate::config::load_flow(&file).unwrap();
        let got: Vec<String> = check(&flow, ["s", "l", "s"]).iter().map(|d| d.to_string()).collect();
        let key = dir.path().join("keys/id");
        assert_eq!(
            got,
            [format!(
                "{}:3:59: endpoint `s`: private_key {} does not exist (put the file there, or correct `private_key`) (at /endpoints/s/auth/private_key)",
                file.display(),
                key.display()
            )]
        );
        let got: Vec<String> = check(&flow, ["t", "f"]).into_iter().map(|d| format!("{}:{} {}", d.line, d.col, d.message)).collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("4:59 endpoint `t`: private_key ") && got[0].ends_with("keys is a folder, not a file"), "{got:#?}");
        // A missing known_hosts file says how to make it: it said only "put the file there".
        let nope = dir.path().join("nope");
        assert_eq!(
            got[1],
            format!(
                "4:92 endpoint `t`: known_hosts {0} does not exist (record the server's key in it with `wharf trust h --known-hosts {0}`, or correct `known_hosts`)",
                nope.display()
            )
        );
        assert!(got[2].starts_with("5:59 endpoint `f`: ca_file ") && got[2].contains("ca.pem does not exist"), "{got:#?}");
        std::fs::write(&key, "").unwrap();
        assert!(check(&flow, ["s", "l"]).is_empty());
    }
}
