//! The local control interface of `wharf serve`: what the daemon exposes and how the CLI
//! reaches it.
//!
//! The daemon implements [`Daemon`]; [`server`] serves it over HTTP/1 on a Unix socket
//! (`<state_dir>/wharf.sock`, mode 0600: the same user only) and, optionally, on a loopback
//! TCP address for Prometheus. [`discovery`] is how the CLI finds a running daemon
//! (`<state_dir>/serve.json`); [`client`] is the CLI's side of the conversation; [`metrics`]
//! is the Prometheus registry the daemon records into.
//!
//! This module owns the wire format (the serde types below) and the endpoints. It knows
//! nothing about how flows are scheduled or run: that is the daemon behind the trait.

pub mod client;
pub mod discovery;
pub mod metrics;
pub mod overdue;
pub mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use metrics::Metrics;
pub use server::{Server, serve};

use crate::ledger::{Millis, RunContent, RunRecord};

/// File name of the control socket in the state folder.
pub const SOCKET_NAME: &str = "wharf.sock";

/// What a running daemon offers to the control interface.
#[async_trait]
pub trait Daemon: Send + Sync + 'static {
    /// The daemon and every flow it knows, now.
    fn status(&self) -> Status;
    /// Asks for a run of `flow` now (outside its schedule).
    async fn trigger(&self, flow: &str) -> Result<Triggered, TriggerError>;
    /// The metrics the daemon records into.
    fn metrics(&self) -> &Metrics;
}

/// Where the control interface listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenConfig {
    /// The Unix socket the CLI talks to, normally `<state_dir>/wharf.sock`. The discovery file
    /// (`serve.json`) is written beside it, so it belongs in the state folder.
    pub socket: PathBuf,
    /// Plain HTTP on this address too (for Prometheus): health, metrics and status only.
    pub tcp: Option<SocketAddr>,
    /// Allow `tcp` to be other than a loopback address (anyone who reaches it reads the
    /// metrics and the status of every flow).
    pub allow_remote: bool,
}

impl ListenConfig {
    /// The socket in `state_dir`, and `tcp` if given.
    pub fn in_state_dir(state_dir: &Path, tcp: Option<SocketAddr>, allow_remote: bool) -> Self {
        ListenConfig { socket: state_dir.join(SOCKET_NAME), tcp, allow_remote }
    }

    /// Checks what can be checked before binding: a TCP address off the loopback interface
    /// needs `allow_remote`.
    pub fn check(&self) -> Result<(), ControlError> {
        match self.tcp {
            Some(addr) if !addr.ip().is_loopback() && !self.allow_remote => Err(ControlError::RemoteNotAllowed(addr)),
            _ => Ok(()),
        }
    }
}

/// The daemon and its flows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// wharf's version.
    pub version: String,
    pub pid: u32,
    #[serde(with = "crate::timestamp::utc")]
    pub started_at: DateTime<Utc>,
    /// Every flow the daemon knows, by name.
    pub flows: Vec<FlowStatus>,
}

/// One flow as the daemon (or, without one, the ledger) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowStatus {
    pub name: String,
    /// The flow file; `None` for a flow known only from the ledger.
    pub file: Option<PathBuf>,
    /// The schedule as text (e.g. `cron */30 * * * * (Europe/Berlin), jitter 30s`); `None`:
    /// runs only when triggered.
    pub schedule: Option<String>,
    /// When the next scheduled run is due.
    #[serde(with = "crate::timestamp::utc_opt")]
    pub next_due: Option<DateTime<Utc>>,
    /// Without a daemon (`wharf status` from the ledger): when the next scheduled run would
    /// be due if the flow were served, computed from its schedule (`next_due` stays null: no
    /// run is due). Left out of the JSON when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::utc_opt")]
    pub next_due_if_served: Option<DateTime<Utc>>,
    /// A run is going now.
    pub running: bool,
    /// That run waits for a slot under the run limits (`max_runs`, per server).
    #[serde(default)]
    pub waiting: bool,
    /// A run is queued behind the running one.
    pub queued: bool,
    /// Runs skipped (`overlap: skip`, or `queue` with one run waiting already) while the run
    /// going goes on, so far (0 when none goes).
    #[serde(default)]
    pub skipped: u64,
    /// Runs skipped (as `skipped`) in all, as the ledger counts them: across restarts,
    /// until `wharf forget` (`wharf_runs_skipped_total` counts from the daemon's start).
    #[serde(default)]
    pub skipped_total: u64,
    /// When the last run was skipped.
    #[serde(default, with = "crate::timestamp::utc_opt")]
    pub last_skipped: Option<DateTime<Utc>>,
    pub last_run: Option<RunSummary>,
    /// When the last successful run finished.
    #[serde(with = "crate::timestamp::utc_opt")]
    pub last_success: Option<DateTime<Utc>>,
    /// Finished runs in a row that failed or were aborted.
    pub failing_streak: u32,
    /// Something the operator should know, e.g. "invalid flow file: kept the previous version".
    pub problem: Option<String>,
    /// Entries in the source folder that can never be taken (a line break in the name, `..`…;
    /// a symbolic link, a FIFO…), as the last listing showed them, by path; then the files
    /// the login may not read yet (`unreadable`), by path.
    #[serde(default)]
    pub not_taken: Vec<NotTaken>,
    /// The responses (round trips) past their deadline and not answered yet: how many, and
    /// the first few.
    #[serde(default)]
    pub overdue: overdue::Overdue,
}

/// An entry of a flow's source folder that is not taken: never (its name, its kind), or not
/// while the listing cannot read its folder, or not while the login may not read it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotTaken {
    /// `/in/a\nb.csv`: control characters written as escapes, safe to print.
    pub path: String,
    /// Why, and what would get it taken: `a symbolic link: only regular files are taken`.
    pub reason: String,
    /// A subfolder the listing could not read (`path` is the folder; `reason` says why):
    /// nothing under it is taken. `false` for an entry (a file, a link…).
    #[serde(default)]
    pub folder: bool,
    /// A listed file the login may not read yet (its permissions; `reason` gives the refusal):
    /// not ready, taken once it is readable (`engine::lifecycle::unreadable`).
    #[serde(default)]
    pub unreadable: bool,
    /// Since when: the listing first showed it so, or (`unreadable`) its read was first refused.
    #[serde(default, with = "crate::timestamp::utc_opt")]
    pub since: Option<DateTime<Utc>>,
}

impl NotTaken {
    /// What `flow`'s source holds that is not taken: what its last listing showed that can
    /// never be taken, then the files the login may not read yet (the in-flight records a
    /// refused read left, `engine::unreadable_refusal`).
    pub fn of(ledger: &crate::ledger::Ledger, flow: &str) -> Result<Vec<NotTaken>, crate::ledger::LedgerError> {
        let taken = |n: crate::ledger::UnsafeName| {
            let since = Some(utc(n.first_seen));
            match crate::endpoint::listing::as_unreadable_folder(&n.path) {
                Some(folder) => NotTaken { path: folder.to_string(), reason: n.reason, folder: true, unreadable: false, since },
                None => NotTaken { path: n.path, reason: n.reason, folder: false, unreadable: false, since },
            }
        };
        let mut out: Vec<NotTaken> = ledger.unsafe_names(flow)?.into_iter().map(taken).collect();
        for rec in ledger.in_flight_files(flow)? {
            if let Some(refused) = crate::engine::unreadable_refusal(&rec) {
                let (reason, since) = (refused.message.clone(), Some(utc(refused.at)));
                // As its run reports it (`/in/a.csv`); a name a listing gave is safe to print.
                let path = crate::endpoint::RemotePath::parse(&rec.path).map_or_else(|_| rec.path.clone(), |p| p.to_string());
                out.push(NotTaken { path, reason, folder: false, unreadable: true, since });
            }
        }
        Ok(out)
    }
}

impl FlowStatus {
    /// A flow with nothing known yet but its name and file.
    pub fn new(name: impl Into<String>, file: Option<PathBuf>) -> Self {
        FlowStatus {
            name: name.into(),
            file,
            schedule: None,
            next_due: None,
            next_due_if_served: None,
            running: false,
            waiting: false,
            queued: false,
            skipped: 0,
            skipped_total: 0,
            last_skipped: None,
            last_run: None,
            last_success: None,
            failing_streak: 0,
            problem: None,
            not_taken: Vec::new(),
            overdue: Default::default(),
        }
    }
}

/// One run, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The run number (ledger-wide).
    pub run: u64,
    /// `running`, `ok`, `failed` or `aborted`.
    pub status: String,
    #[serde(with = "crate::timestamp::utc")]
    pub started: DateTime<Utc>,
    #[serde(with = "crate::timestamp::utc_opt")]
    pub finished: Option<DateTime<Utc>>,
    pub delivered: u64,
    pub failed: u64,
    pub quarantined: u64,
    pub bytes: u64,
    /// Why the run was aborted.
    pub error: Option<String>,
}

impl RunSummary {
    /// The summary of a ledger run record (and its content-step totals, if it had steps).
    pub fn from_record(run: &RunRecord, content: Option<&RunContent>) -> Self {
        RunSummary {
            run: run.id,
            status: run.status.as_str().to_string(),
            started: utc(run.started),
            finished: run.finished.map(utc),
            delivered: run.counts.delivered.into(),
            failed: run.counts.failed.into(),
            quarantined: content.map_or(0, |c| c.quarantined.into()),
            bytes: run.counts.bytes,
            error: run.error.clone(),
        }
    }
}

/// Ledger milliseconds as a UTC time (the epoch for a value chrono cannot hold).
pub fn utc(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The answer to `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    pub version: String,
    pub pid: u32,
    /// Seconds since the control interface started.
    pub uptime_seconds: u64,
}

/// The body of every error reply: a stable code (`unknown_flow`, `refused_flow`,
/// `already_running`, `shutting_down`, `not_found`, `method_not_allowed`, `forbidden`,
/// `too_large`, `timeout`) and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
    pub message: String,
    /// `refused_flow`: the refused flow file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// `refused_flow`: why it is refused (the first problem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The body of `202 Accepted` from `POST /flows/NAME/trigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerReply {
    pub flow: String,
    pub result: Triggered,
}

/// What a trigger did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Triggered {
    /// A run started now.
    Started,
    /// The flow is running and queues a run (overlap: queue), or has one queued already: it
    /// starts right after.
    Queued,
}

/// Why a trigger was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerError {
    #[error("no flow named {0}")]
    UnknownFlow(String),
    /// No flow of that name is in force, and a flow file of that name is refused (it never
    /// loaded): why, so that the user is not told the flow does not exist.
    #[error(
        "flow {flow}: its file {} is refused by the daemon, so the flow is not served: {problem}; `wharf validate {}` lists every problem",
        .file.display(),
        crate::text::shell_word(&.file.display().to_string())
    )]
    Refused { flow: String, file: PathBuf, problem: String },
    /// The flow is running and skips overlapping runs (overlap: skip).
    #[error("flow {0} is running already")]
    AlreadyRunning(String),
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

/// The control interface failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control interface: {0} is not a loopback address; set allow_remote to listen there")]
    RemoteNotAllowed(SocketAddr),
    #[error("control socket {path}: {source}")]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("control socket {0}: path too long for a Unix socket ({1} bytes, at most 107); use a shorter state folder")]
    SocketPathTooLong(PathBuf, usize),
    #[error("control socket {0}: another `wharf serve` answers there (same state folder?)")]
    AlreadyServing(PathBuf),
    #[error("control interface: cannot listen on {addr}: {source}")]
    Tcp {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("discovery file {path}: {source}")]
    Discovery {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("discovery file {path}: not what `wharf serve` writes: {source}")]
    DiscoveryInvalid {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The daemon could not be reached or answered out of protocol (client side).
    #[error("wharf serve at {at}: {message}")]
    Client { at: String, message: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Counts, RunStatus};

    #[test]
    fn listening_off_loopback_needs_allow_remote() {
        let dir = Path::new("/state");
        let local = ListenConfig::in_state_dir(dir, Some("127.0.0.1:9464".parse().unwrap()), false);
        assert_eq!(local.socket, Path::new("/state/wharf.sock"));
        assert!(local.check().is_ok());
        assert!(ListenConfig::in_state_dir(dir, Some("[::1]:9464".parse().unwrap()), false).check().is_ok());
        let remote = ListenConfig::in_state_dir(dir, Some("0.0.0.0:9464".parse().unwrap()), false);
        let err = remote.check().unwrap_err();
        assert!(err.to_string().contains("0.0.0.0:9464 is not a loopback address"), "{err}");
        assert!(ListenConfig { allow_remote: true, ..remote }.check().is_ok());
    }

    #[test]
    fn run_summaries_come_from_ledger_records() {
        let rec = RunRecord {
            id: 7,
            flow: "f".into(),
            started: 1_764_064_800_000,
            finished: Some(1_764_064_801_500),
            status: RunStatus::Failed,
            counts: Counts { delivered: 3, failed: 1, bytes: 42, ..Default::default() },
            error: None,
        };
        let s = RunSummary::from_record(&rec, Some(&RunContent { quarantined: 2, ..Default::default() }));
        assert_eq!((s.run, s.status.as_str(), s.delivered, s.failed, s.quarantined, s.bytes), (7, "failed", 3, 1, 2, 42));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["started"], "2025-11-25T10:00:00.000Z");
        assert_eq!(json["finished"], "2025-11-25T10:00:01.500Z");
        assert_eq!(serde_json::to_value(Triggered::Queued).unwrap(), "queued");
    }
}
