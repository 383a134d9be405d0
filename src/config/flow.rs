//! The built flow: what `validate` produces from a `RawFlow` and the engine consumes.
//!
//! Everything here is already checked — paths are jailed [`RemotePath`]s, globs and templates
//! are compiled, durations parsed, secrets resolved — so the engine never re-validates and
//! never sees raw YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use globset::GlobSet;

pub use super::raw::{IfExists, OnError};
use super::secret::Secret;
use crate::endpoint::RemotePath;
use crate::template::NameTemplate;

/// A validated flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    /// The file it was loaded from (for messages).
    pub file: PathBuf,
    pub endpoints: BTreeMap<String, EndpointSpec>,
    pub source: Source,
    pub sinks: Vec<Sink>,
    pub after_success: Disposition,
    pub after_failure: Disposition,
    pub on_error: OnError,
    pub retry: Retry,
}

/// How to reach an endpoint.
#[derive(Debug, Clone)]
pub enum EndpointSpec {
    Local { root: PathBuf },
    Sftp(SftpSpec),
}

/// SFTP connection settings, resolved.
#[derive(Debug, Clone)]
pub struct SftpSpec {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    pub host_key: HostKeyPolicy,
    /// Absolute folder on the server that `RemotePath`s are relative to (e.g. `/` or `/data`).
    pub root: String,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
}

/// SSH credentials.
#[derive(Debug, Clone)]
pub enum SshAuth {
    Password(Secret),
    Key { path: PathBuf, passphrase: Option<Secret> },
}

/// How a server's host key is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// An OpenSSH known_hosts file (absolute path).
    KnownHosts(PathBuf),
    /// A pinned `SHA256:…` fingerprint.
    Fingerprint(String),
}

/// Where files are picked up.
#[derive(Debug, Clone)]
pub struct Source {
    pub endpoint: String,
    pub path: RemotePath,
    /// Matched against the path relative to `path`.
    pub include: GlobSet,
    pub exclude: GlobSet,
    pub recursive: bool,
    pub max_depth: u32,
    pub ready: Ready,
    pub identity: Identity,
}

/// Readiness rules.
#[derive(Debug, Clone, Default)]
pub struct Ready {
    pub min_age: Option<Duration>,
    pub stable_for: Option<Duration>,
    pub done_file: Option<NameTemplate>,
}

/// What makes two sightings of a file the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub path: bool,
    pub size: bool,
    pub mtime: bool,
    pub sha256: bool,
}

impl Identity {
    /// `[path, size, mtime]`.
    pub const DEFAULT: Identity = Identity { path: true, size: true, mtime: true, sha256: false };
}

/// A delivery target.
#[derive(Debug, Clone)]
pub struct Sink {
    pub endpoint: String,
    pub path: NameTemplate,
    pub name: NameTemplate,
    pub temp_name: NameTemplate,
    pub if_exists: IfExists,
}

/// What happens to a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    Keep,
    Delete,
    MoveTo(RemotePath),
}

/// Retry of transient errors inside one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
}
