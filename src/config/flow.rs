//! The built flow: what `validate` produces from a `RawFlow` and the engine consumes.
//!
//! Everything here is already checked — paths are jailed [`RemotePath`]s, globs and templates
//! are compiled, durations parsed, secrets resolved — so the engine never re-validates and
//! never sees raw YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use globset::GlobSet;

pub use super::raw::{FtpTls, IfExists, OnError, TlsVersion};
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
    /// Files in flight at once in a run, as the flow set it (1 with `on_error: stop`); `None`
    /// leaves it to each run ([`crate::engine::endpoints::concurrency`]).
    pub concurrency: Option<usize>,
    pub retry: Retry,
    pub alerts: Alerts,
    /// How long the ledger remembers the flow's past (`None`: forever; see
    /// [`crate::ledger::prune`]).
    pub history: Option<Duration>,
    /// Content steps (`None`: files are delivered as they are).
    pub steps: Option<crate::steps::Steps>,
    /// Where refused files go (always set when `steps` is).
    pub quarantine: Option<Quarantine>,
    /// The awaited response to every delivered file (a round trip), when configured.
    pub response: Option<Box<Response>>,
    /// When `wharf serve` runs the flow (`None`: only when triggered).
    pub schedule: Option<crate::schedule::Schedule>,
    /// Deliveries due by a time of day; empty when none are expected.
    pub expect: Vec<crate::schedule::Expect>,
    /// Notification rules of this flow (global ones come from the serve configuration).
    pub notify: Vec<crate::notify::Rule>,
    /// What validation warned about in the flow file (pointless but harmless settings), each
    /// at its line; the flow runs as written. Empty for a flow not loaded from a file.
    pub warnings: Vec<super::Diagnostic>,
    /// Credentials whose values were not to be had where the flow was loaded to be read, not
    /// run ([`load_flow_to_read`](super::load::load_flow_to_read)), each at its field: kept as
    /// written, and an endpoint that needs one refuses to connect, saying so. Always empty
    /// for a flow loaded to run.
    pub unresolved: Vec<super::Diagnostic>,
}

/// The name of the derived flow that takes the responses of `flow` (its files are in the
/// ledger under it: `wharf files orders.response`).
pub fn response_flow_name(flow: &str) -> String {
    format!("{flow}.response")
}

/// An awaited response (round trip): which file answers a delivered request, by when, and the
/// derived flow that takes a matched response through the same lifecycle as any file.
#[derive(Debug, Clone)]
pub struct Response {
    /// The response's name, rendered over the delivered request's name.
    pub name: NameTemplate,
    /// Due this long after the delivery.
    pub deadline: Duration,
    /// Given up this long after the delivery (`None`: waited for for ever).
    pub expire_after: Option<Duration>,
    /// The sink whose delivered name `name` is rendered over: the first sink on the response
    /// endpoint, else the first sink.
    pub request_sink: usize,
    /// The response flow, named `<flow>.response`: source = the response endpoint and folder,
    /// the response's steps, quarantine and sinks, `after` as its success disposition (failure:
    /// keep), identity `[path, size, mtime]`, the parent's retry. Its `response` is `None`.
    pub flow: Flow,
}

/// The quarantine location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    pub endpoint: String,
    pub path: RemotePath,
    /// Write `NAME.report.json` and `NAME.report.txt` beside the copy.
    pub report: bool,
}

/// How to reach an endpoint.
#[derive(Debug, Clone)]
pub enum EndpointSpec {
    Local { root: PathBuf },
    Sftp(SftpSpec),
    Ftp(FtpSpec),
}

/// SFTP connection settings, resolved.
#[derive(Debug, Clone)]
pub struct SftpSpec {
    /// The flow's name for this endpoint (its key under `endpoints:`), for messages.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SshAuth,
    pub host_key: HostKeyPolicy,
    /// Absolute folder on the server that `RemotePath`s are relative to (e.g. `/` or `/data`).
    pub root: String,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// Most SSH connections open at once to this server.
    pub max_connections: usize,
}

/// SSH credentials.
#[derive(Debug, Clone)]
pub enum SshAuth {
    Password(Secret),
    /// A key; with `password`, the password too when the server asks for both
    /// (`AuthenticationMethods publickey,password`) or refuses the key.
    Key {
        path: PathBuf,
        passphrase: Option<Secret>,
        password: Option<Secret>,
    },
}

/// How a server's host key is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// An OpenSSH known_hosts file (absolute path).
    KnownHosts(PathBuf),
    /// A pinned `SHA256:…` fingerprint.
    Fingerprint(String),
}

/// FTP / FTPS connection settings, resolved.
#[derive(Debug, Clone)]
pub struct FtpSpec {
    /// The flow's name for this endpoint (its key under `endpoints:`), for messages.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub tls: FtpTls,
    /// How the server certificate is checked (unused with `FtpTls::None`).
    pub trust: CertTrust,
    /// Highest TLS version offered (unused with `FtpTls::None`).
    pub tls_max_version: TlsVersion,
    /// Passive data connections (EPSV, then PASV); `false` = active (PORT/EPRT).
    pub passive: bool,
    /// Absolute folder on the server that `RemotePath`s are relative to; `None` = the login folder.
    pub root: Option<String>,
    pub connect_timeout: Duration,
    /// Reply timeout, and the longest a data connection may stall.
    pub operation_timeout: Duration,
    /// Most control connections (logins) at once; at least 1.
    pub max_connections: usize,
    /// The zone of the times the server gives (`time_offset`, `time_zone`): UTC unless the
    /// server gives its times in its own zone. Times read are moved to UTC by it.
    pub server_clock: ServerClock,
    /// Open passive data connections to the address a `PASV` reply names (`use_pasv_address`),
    /// not the control connection's.
    pub use_pasv_address: bool,
}

/// The zone an FTP server's times are in. `MDTM` and `MLSD` are UTC by the standard (RFC
/// 3659), but vsftpd with `use_localtime=YES` and many Windows servers give their own wall
/// clock, and `LIST` times are the server's wall clock anyway.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServerClock {
    /// Times are UTC.
    #[default]
    Utc,
    /// Times are this many seconds ahead of UTC, all year (`time_offset`).
    Offset(i64),
    /// Times are the wall clock of this zone, summer time included (`time_zone`).
    Zone(chrono_tz::Tz),
}

impl ServerClock {
    /// `t`, a time the server gave (its wall clock written as if it were UTC), in UTC.
    ///
    /// A wall time a zone goes through twice (the hour summer time ends) is taken as the
    /// later of the two: a file then looks younger, never older, so `min_age` may wait an
    /// hour longer but never takes a file early. A wall time a zone skips (the hour summer
    /// time begins; only a wrong clock gives one) is read the same way: with the smaller of
    /// the offsets on either side, the later instant.
    pub fn to_utc(self, t: SystemTime) -> SystemTime {
        let ahead = match self {
            ServerClock::Utc => return t,
            ServerClock::Offset(ahead) => ahead,
            ServerClock::Zone(zone) => zone_ahead(zone, t),
        };
        let by = Duration::from_secs(ahead.unsigned_abs());
        let moved = if ahead > 0 { t.checked_sub(by) } else { t.checked_add(by) };
        // Invariant-free fallback: a time that far from the epoch is kept as given.
        moved.unwrap_or(t)
    }
}

/// How far ahead of UTC `zone` was when its wall clock showed `wall` (written as if UTC).
fn zone_ahead(zone: chrono_tz::Tz, wall: SystemTime) -> i64 {
    use chrono::{LocalResult, Offset, TimeZone};
    let secs = match wall.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let Some(naive) = chrono::DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()) else { return 0 };
    let ahead = |d: chrono::DateTime<chrono_tz::Tz>| i64::from(d.offset().fix().local_minus_utc());
    match zone.from_local_datetime(&naive) {
        LocalResult::Single(d) => ahead(d),
        // The later instant is the one with the smaller offset.
        LocalResult::Ambiguous(a, b) => ahead(a).min(ahead(b)),
        // Zones change their offset months apart: a day either side is on either side.
        LocalResult::None => [naive - chrono::Days::new(1), naive + chrono::Days::new(1)]
            .map(|n| i64::from(zone.offset_from_utc_datetime(&n).fix().local_minus_utc()))
            .into_iter()
            .min()
            .unwrap_or(0),
    }
}

/// How a TLS server certificate is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertTrust {
    /// Against the system's trusted CAs, for the configured host name.
    SystemRoots,
    /// Against the CAs in this PEM file (absolute path), for the configured host name.
    CaFile(PathBuf),
    /// Only the certificate with this SHA-256 digest (of its DER encoding) is accepted.
    Fingerprint([u8; 32]),
}

/// Where files are picked up.
#[derive(Debug, Clone)]
pub struct Source {
    pub endpoint: String,
    pub path: RemotePath,
    /// Matched against the path relative to `path`.
    pub include: GlobSet,
    /// The text of the patterns `include` is compiled from (`["orders_*.csv"]`), for checks
    /// that reason about the names a flow takes (`config::across`). Empty: not known (any
    /// name).
    pub include_patterns: Vec<String>,
    /// The `include` patterns that name hidden files (a part starting with `.`): only they
    /// take a file with a hidden name or in a hidden folder (see [`is_hidden`]).
    pub include_hidden: GlobSet,
    pub exclude: GlobSet,
    /// `include`, `include_hidden` and `exclude` match names whatever their case
    /// (`source.ignore_case`): they were compiled from their [`fold_case`]d text, and a
    /// name is folded alike before it meets them.
    pub ignore_case: bool,
    /// The same patterns compiled ignoring case, when `ignore_case` is off: to tell of a file
    /// left only for the case of its name (`ORDERS_1.CSV` beside `*.csv`). `None` with
    /// `ignore_case` (nothing to tell), or for a source built without it.
    pub any_case: Option<Box<AnyCase>>,
    pub recursive: bool,
    pub max_depth: u32,
    /// The most files one run starts (`source.max_files`); `None`: no cap.
    pub max_files: Option<u32>,
    pub ready: Ready,
    pub identity: Identity,
    /// A command whose output is written into the source folder at the start of each run.
    pub command: Option<Command>,
}

/// A source's patterns compiled ignoring case ([`Source::any_case`]), from their
/// [`fold_case`]d text.
#[derive(Debug, Clone)]
pub struct AnyCase {
    pub include: GlobSet,
    pub include_hidden: GlobSet,
    pub exclude: GlobSet,
}

impl Source {
    /// Whether the source takes a file at `rel` (under its folder) by its name: its globs, and
    /// hidden files ([`left_by`]).
    pub fn takes(&self, rel: &str) -> bool {
        left_by(&self.include, &self.include_hidden, &self.exclude, self.ignore_case, rel).is_none()
    }

    /// What tells the source's names apart: `path` itself, or, with `ignore_case`, its
    /// [`fold_case`]d text (`X.CSV.DONE` is `x.csv.done`). What the files that go with a data
    /// file (done file, checksum, row count) are set aside by, so that none is taken as data.
    pub fn name_key<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        if self.ignore_case { fold_case(path).into() } else { path.into() }
    }

    /// The `include` pattern a file at `rel` that [`Source::takes`] leaves would be taken by
    /// were case ignored (`source.ignore_case: true`); `None` when case is not why it is left.
    pub fn taken_ignoring_case(&self, rel: &str) -> Option<&str> {
        let any = self.any_case.as_deref()?;
        if self.takes(rel) || left_by(&any.include, &any.include_hidden, &any.exclude, true, rel).is_some() {
            return None;
        }
        let i = any.include.matches(fold_case(rel)).into_iter().next()?;
        self.include_patterns.get(i).map(String::as_str)
    }
}

/// Which of a source's pattern lists leaves a name ([`left_by`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftBy {
    /// No `include` pattern takes it (or none that names hidden files, for a hidden one).
    Include,
    /// An `exclude` pattern matches it.
    Exclude,
}

/// What leaves a file at `rel` (under the source folder) untaken by its name, `None` when it
/// is taken: `include` (with `include_hidden` for a hidden path), then `exclude`. Sets
/// compiled ignoring case ([`fold_case`]d) meet the name folded alike. The one place a listed
/// name meets a source's patterns ([`Source::takes`]; validation reads it of a command's
/// output before the source is whole).
pub fn left_by(include: &GlobSet, include_hidden: &GlobSet, exclude: &GlobSet, ignore_case: bool, rel: &str) -> Option<LeftBy> {
    let folded;
    let rel = if ignore_case {
        folded = fold_case(rel);
        &folded
    } else {
        rel
    };
    if !include.is_match(rel) || (is_hidden(rel) && !include_hidden.is_match(rel)) {
        Some(LeftBy::Include)
    } else if exclude.is_match(rel) {
        Some(LeftBy::Exclude)
    } else {
        None
    }
}

/// `text` with each character lower-cased (Unicode: `ÄPFEL.CSV` → `äpfel.csv`), the same
/// whatever comes next (a final `Σ` is `σ`): patterns and names folded so meet whatever
/// their case. globset's own `case_insensitive` folds ASCII letters only.
pub fn fold_case(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).collect()
}

/// A command producing a file to send (`source.command`).
#[derive(Debug, Clone)]
pub struct Command {
    /// The program, how it is started and bounded.
    pub program: crate::process::FlowProgram,
    /// Name of the file written (a plain file name).
    pub name: NameTemplate,
    pub keep_empty: bool,
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
    /// `None`: written straight under the final name (`direct: true`).
    pub temp_name: Option<NameTemplate>,
    pub if_exists: IfExists,
    /// Trigger file written after the data file is complete.
    pub trigger: Option<NameTemplate>,
}

impl Sink {
    /// Writes straight under the final name (`direct: true`): no temporary name, no rename.
    pub fn direct(&self) -> bool {
        self.temp_name.is_none()
    }
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
    /// Runs a file may fail transiently before it is given up (0: never).
    pub give_up_after: u32,
}

/// When problems become events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alerts {
    /// Runs in a row that cannot reach an endpoint before `unreachable` is raised.
    pub unreachable_after: u32,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts { unreachable_after: 3 }
    }
}

/// Whether `rel` (a path relative to the polled folder) is hidden: its name or one of its
/// folders starts with `.`. Uploads in progress are written under such names (wharf's
/// `.NAME.FLOW.part`, and many other tools'), so a default pattern never takes them.
pub fn is_hidden(rel: &str) -> bool {
    rel.split('/').any(|part| part.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `2026-MM-DD hh:mm` as a `SystemTime` (written as if UTC).
    fn at(text: &str) -> SystemTime {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        SystemTime::UNIX_EPOCH + Duration::from_secs(naive.and_utc().timestamp() as u64)
    }

    #[test]
    fn a_servers_wall_clock_is_read_in_utc_summer_time_included() {
        let ny = ServerClock::Zone(chrono_tz::America::New_York);
        assert_eq!(ny.to_utc(at("2026-01-15 12:00")), at("2026-01-15 17:00"), "winter: 5 h behind");
        assert_eq!(ny.to_utc(at("2026-07-01 12:00")), at("2026-07-01 16:00"), "summer: 4 h behind");
        // 01:30 comes twice on 1 November: the later one, so a file never looks older.
        assert_eq!(ny.to_utc(at("2026-11-01 01:30")), at("2026-11-01 06:30"));
        // 02:30 never comes on 8 March: the later reading too.
        assert_eq!(ny.to_utc(at("2026-03-08 02:30")), at("2026-03-08 07:30"));
        // East of UTC: 02:30 in Berlin never comes on 29 March; it twice comes on 25 October.
        let berlin = ServerClock::Zone(chrono_tz::Europe::Berlin);
        assert_eq!(berlin.to_utc(at("2026-03-29 02:30")), at("2026-03-29 01:30"));
        assert_eq!(berlin.to_utc(at("2026-10-25 02:30")), at("2026-10-25 01:30"));
        assert_eq!(berlin.to_utc(at("2026-12-06 18:00")), at("2026-12-06 17:00"));
        assert_eq!(ServerClock::Offset(19_800).to_utc(at("2026-12-06 18:00")), at("2026-12-06 12:30"));
        assert_eq!(ServerClock::Offset(-18_000).to_utc(at("2026-12-06 18:00")), at("2026-12-06 23:00"));
        assert_eq!(ServerClock::Utc.to_utc(at("2026-12-06 18:00")), at("2026-12-06 18:00"));
    }
}
