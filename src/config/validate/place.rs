//! Where an endpoint's folders really are, so that rules about "the same folder" compare
//! locations rather than endpoint names: two endpoints with different names may describe
//! one place (`a: { type: local, root: ./data }` and `b: { type: local, root: ./data/in }`,
//! or two `sftp` entries for one host, port and user).
//!
//! A server folder is located by protocol, host, port and user, then the path under the
//! endpoint's `root`. Hosts are compared as spelt, up to what cannot make them differ: case,
//! a final dot, the brackets and spelling of an IP address, and the loopback names
//! (`localhost`, `127.0.0.1`, `::1`, `[::1]` are one host) — never by looking a name up; an
//! FTP endpoint without `root` starts in the login's home folder, which is only known to equal another such endpoint's. A local folder is located by
//! its absolute path, with symlinks resolved where the folder (or its root) exists — the one
//! place validation looks at the filesystem, and only to compare — and `..` resolved by name
//! where it does not. Nothing here reports a problem; the callers do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};

use crate::config::flow::EndpointSpec;
use crate::endpoint::RemotePath;

/// What a path on an endpoint is relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    Local,
    Sftp {
        host: String,
        port: u16,
        user: String,
    },
    /// `home`: paths start in the login's home folder (no `root`), not at `/`.
    Ftp {
        host: String,
        port: u16,
        user: String,
        home: bool,
    },
}

/// Where an endpoint's root is.
#[derive(Debug, Clone)]
pub(super) struct Place {
    base: Base,
    /// The root: an absolute local path, or the server path (`/` for an FTP home).
    root: PathBuf,
}

/// A folder's real location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Location {
    base: Base,
    parts: Vec<String>,
}

impl Location {
    /// `self` lies strictly inside `other`.
    pub(super) fn inside(&self, other: &Location) -> bool {
        self.base == other.base && self.parts.len() > other.parts.len() && self.parts.starts_with(&other.parts)
    }
}

impl Place {
    /// The place of a built endpoint.
    pub(super) fn of(spec: &EndpointSpec) -> Place {
        match spec {
            EndpointSpec::Local { root } => Place { base: Base::Local, root: root.clone() },
            EndpointSpec::Sftp(s) => {
                Place { base: Base::Sftp { host: same_host(&s.host), port: s.port, user: s.user.clone() }, root: PathBuf::from(&s.root) }
            }
            EndpointSpec::Ftp(f) => Place {
                base: Base::Ftp { host: same_host(&f.host), port: f.port, user: f.user.clone(), home: f.root.is_none() },
                root: PathBuf::from(f.root.as_deref().unwrap_or("/")),
            },
        }
    }

    /// Where `folder` (relative to the endpoint root) is.
    pub(super) fn locate(&self, folder: &RemotePath) -> Location {
        let mut path = self.root.clone();
        path.extend(folder.components());
        if self.base == Base::Local {
            path = real(&path);
        }
        Location { base: self.base.clone(), parts: normal_parts(&path) }
    }
}

/// `host` spelt so that two spellings of one host are equal: lower case, without a final dot,
/// an IP address without brackets in its canonical form, and the loopback address (by name,
/// IPv4, IPv6 or IPv4-mapped) as `localhost`. Nothing is looked up: other names for one
/// machine stay different.
fn same_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
    let loopback = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => *v4 == Ipv4Addr::LOCALHOST,
        IpAddr::V6(v6) => *v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST),
    };
    match bare.parse::<IpAddr>() {
        Ok(ip) if loopback(&ip) => "localhost".to_string(),
        Ok(ip) => ip.to_string(),
        Err(_) => host,
    }
}

/// `path` with symlinks resolved as far as it exists: the longest existing ancestor is
/// canonicalized and the rest appended.
fn real(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        if let Ok(canonical) = std::fs::canonicalize(at) {
            return rest.iter().rev().fold(canonical, |p, part| p.join(part));
        }
        match (at.parent(), at.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                at = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// The normal components of `path`, `.` dropped and `..` taking off the one before.
fn normal_parts(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(root: &Path) -> Place {
        Place::of(&EndpointSpec::Local { root: root.to_path_buf() })
    }

    fn at(p: &str) -> RemotePath {
        RemotePath::parse(p).unwrap()
    }

    #[test]
    fn local_folders_are_compared_by_real_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data/in")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("data"), dir.path().join("link")).unwrap();
        let data = local(&dir.path().join("data"));
        assert_eq!(data.locate(&at("/in")), local(&dir.path().join("data/in")).locate(&at("/")));
        assert_eq!(data.locate(&at("/in")), local(&dir.path().join("link")).locate(&at("/in")), "through a symlink");
        assert_eq!(data.locate(&at("/in")), local(&dir.path().join("x/../data")).locate(&at("/in")), "`..` by name");
        assert_eq!(data.locate(&at("/new/sub")), local(&dir.path().join("link/new")).locate(&at("/sub")), "not there yet");
        assert!(data.locate(&at("/in/bad")).inside(&data.locate(&at("/in"))));
        assert!(!data.locate(&at("/in")).inside(&data.locate(&at("/in"))));
        assert_ne!(data.locate(&at("/in")), data.locate(&at("/out")));
    }

    #[test]
    fn spellings_of_one_host_are_one_host_without_a_lookup() {
        for loopback in ["localhost", "LocalHost", "localhost.", "127.0.0.1", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"] {
            assert_eq!(same_host(loopback), "localhost", "{loopback}");
        }
        assert_eq!(same_host("SFTP.Example.com."), "sftp.example.com");
        assert_eq!(same_host("[2001:DB8:0::1]"), same_host("2001:db8::1"));
        // Other addresses of this machine, and other names, are not assumed to be it.
        for other in ["127.0.0.2", "localhost.localdomain", "sftp.example.com", "[::2]"] {
            assert_ne!(same_host(other), "localhost", "{other}");
        }
    }
}
