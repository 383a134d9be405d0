//! The records the ledger stores. Field changes need a new table version (see `codec`).

use serde::{Deserialize, Serialize};

use crate::endpoint::ErrorKind;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Where a file is in its lifecycle (design §5). Each transition is one durable write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileState {
    /// Picked for processing in a run; nothing downloaded yet.
    #[default]
    Claimed,
    /// Downloading into the staging file (resumable at the staged length).
    Staging,
    /// Completely staged, fsynced and hashed.
    Staged,
    /// Being delivered; `deliveries` says which sinks are done and their target names.
    Delivering,
    /// Every sink confirmed; the source has not been disposed of yet.
    Delivered,
    /// The source is being moved/deleted (`disposed_to` names the move target).
    Disposing,
    /// Finished: delivered and disposed of.
    Done,
    /// Failed permanently; `after.failure` was applied. A new identity starts afresh.
    Failed,
    /// Same identity as a file delivered before: not delivered again.
    Duplicate,
}

impl FileState {
    /// States from which the next run resumes the work.
    pub fn in_flight(self) -> bool {
        !matches!(self, FileState::Done | FileState::Failed | FileState::Duplicate)
    }

    /// Lower-case name for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Claimed => "claimed",
            FileState::Staging => "staging",
            FileState::Staged => "staged",
            FileState::Delivering => "delivering",
            FileState::Delivered => "delivered",
            FileState::Disposing => "disposing",
            FileState::Done => "done",
            FileState::Failed => "failed",
            FileState::Duplicate => "duplicate",
        }
    }
}

/// One sink's delivery of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Index of the sink in the flow.
    pub sink: u32,
    /// Final target path, decided before the upload starts (so a resumed run checks it).
    pub target: String,
    /// The sink confirmed (size verified, renamed to the final name).
    pub done: bool,
}

/// The last error a file hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub kind: ErrorKind,
    pub message: String,
    pub at: Millis,
}

/// The ledger's view of one source file (the latest version seen at that path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Source path relative to the source endpoint root.
    pub path: String,
    /// Identity key (see `engine::identity`); empty until known for content identities.
    pub identity: String,
    pub size: u64,
    /// Source mtime in ms, if the server reported one.
    pub mtime: Option<Millis>,
    pub sha256: Option<String>,
    pub state: FileState,
    /// Failed attempts across runs.
    pub attempts: u32,
    pub last_error: Option<ErrorRecord>,
    pub first_seen: Millis,
    pub updated: Millis,
    /// The run that last touched the record.
    pub run: u64,
    pub deliveries: Vec<Delivery>,
    /// Where the source was moved (for `move_to` dispositions).
    pub disposed_to: Option<String>,
}

/// A delivered identity; consulted to never deliver the same file twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    pub path: String,
    pub run: u64,
    pub at: Millis,
    pub targets: Vec<String>,
}

/// The last size/mtime seen for a path, and since when (readiness across polls).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub size: u64,
    pub mtime: Option<Millis>,
    /// When this size/mtime was first seen.
    pub since: Millis,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunStatus {
    /// Still running, or the process died (a crash leaves this).
    #[default]
    Running,
    /// Every file was handled (delivered, skipped or not ready).
    Ok,
    /// At least one file failed.
    Failed,
    /// The run could not list or connect; nothing was processed.
    Aborted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Failed => "failed",
            RunStatus::Aborted => "aborted",
        }
    }
}

/// Per-run counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub seen: u32,
    pub not_ready: u32,
    pub delivered: u32,
    pub skipped: u32,
    pub failed: u32,
    pub bytes: u64,
}

/// One run of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub flow: String,
    pub started: Millis,
    pub finished: Option<Millis>,
    pub status: RunStatus,
    pub counts: Counts,
    /// Why the run was aborted, if it was.
    pub error: Option<String>,
}
