//! The records the ledger stores. Field changes need a new table version (see `codec`).

use serde::{Deserialize, Serialize};

use crate::endpoint::ErrorKind;

/// Milliseconds since the Unix epoch. A stored field of this type carries
/// `#[serde(with = "crate::timestamp::millis")]` (`millis_opt` for an `Option`): an RFC 3339
/// string in JSON, the plain `i64` in the ledger's postcard, as before.
pub type Millis = i64;

/// Where a file is in its lifecycle (design §5). Each transition is one durable write.
///
/// JSON (`wharf files --json`) names a state as [`FileState::as_str`] does; the ledger
/// (postcard) stores the variant index, not the name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    // Content steps. Appended after the original variants: postcard stores the variant
    // index, so records written before these existed still read the same.
    /// The content steps ran and accepted the file; the output (and rejects) file is ready
    /// beside the staging file (`file_results_v1` holds sizes and counts).
    Processed,
    /// The content steps refused the file: it is being copied to the quarantine location
    /// (`file_results_v1` names the copy once chosen).
    Quarantining,
    /// Copied to quarantine with its reports, `after.failure` applied. `wharf quarantine`
    /// releases or reprocesses it; a re-sent file with new content is taken afresh, and this
    /// record is kept as an earlier quarantined file (`ledger::quarantined`).
    Quarantined,
    /// Gone from the source between its listing and its download (the partner removed or
    /// moved it): nothing was delivered, and nothing failed. Reported "skipped" by its run;
    /// a file that comes back under the name is taken like any other. Appended last, like
    /// the content steps' states.
    Vanished,
}

impl FileState {
    /// States from which the next run resumes the work.
    pub fn in_flight(self) -> bool {
        !matches!(self, FileState::Done | FileState::Failed | FileState::Duplicate | FileState::Quarantined | FileState::Vanished)
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
            FileState::Processed => "processed",
            FileState::Quarantining => "quarantining",
            FileState::Quarantined => "quarantined",
            FileState::Vanished => "vanished",
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
    /// The sink confirmed (size verified, renamed to the final name), or the target was left
    /// as it was (see [`Delivery::left_alone`]).
    pub done: bool,
    /// The file the target held when it was chosen. Pending (`!done`): the file this delivery
    /// replaces (`if_exists: overwrite`), which a resumed run must not take for its own
    /// upload. Done: the file kept in its place (`if_exists: skip`, nothing was uploaded) —
    /// a confirmed upload always clears it, so the two cannot be confused after a resume.
    pub replaces: Option<Replaced>,
}

impl Delivery {
    /// The target was there already and left as it was (`if_exists: skip`): nothing was
    /// sent to it — no trigger is owed, no response awaited.
    pub fn left_alone(&self) -> bool {
        self.done && self.replaces.is_some()
    }
}

/// Size and time of a file a delivery replaces (see [`Delivery::replaces`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replaced {
    pub size: u64,
    /// Modification time in ms, if the server reported one.
    #[serde(with = "crate::timestamp::millis_opt")]
    pub mtime: Option<Millis>,
}

/// The last error a file hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(with = "crate::timestamp::millis")]
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
    #[serde(with = "crate::timestamp::millis_opt")]
    pub mtime: Option<Millis>,
    pub sha256: Option<String>,
    pub state: FileState,
    /// Failed attempts across runs.
    pub attempts: u32,
    pub last_error: Option<ErrorRecord>,
    #[serde(with = "crate::timestamp::millis")]
    pub first_seen: Millis,
    #[serde(with = "crate::timestamp::millis")]
    pub updated: Millis,
    /// The run that last touched the record.
    pub run: u64,
    pub deliveries: Vec<Delivery>,
    /// Where the source was moved (for `move_to` dispositions): while `disposing`, where it
    /// is to go.
    pub disposed_to: Option<String>,
    /// What wharf did with the source once it was finished with it: what tells history
    /// whether the file may still be in the folder (see `ledger::prune`).
    pub source_fate: SourceFate,
}

/// What wharf did with a file's source once it was finished with it. Appended to
/// [`FileRecord`] in `files_v3`; records of older layouts are converted as `moved` when they
/// name where, else `unknown`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFate {
    /// Left where it was (`keep`; a new version found at its name; not finished yet).
    #[default]
    Kept,
    /// Moved away (`disposed_to` names where).
    Moved,
    /// Deleted (by wharf, or already gone when it came to delete it).
    Deleted,
    /// Finished by a wharf that did not record it (a ledger older than `files_v3`).
    Unknown,
}

/// A delivered identity; consulted to never deliver the same file twice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneRecord {
    pub path: String,
    pub run: u64,
    #[serde(with = "crate::timestamp::millis")]
    pub at: Millis,
    pub targets: Vec<String>,
}

/// The last size/mtime seen for a path, and since when (readiness across polls).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub size: u64,
    #[serde(with = "crate::timestamp::millis_opt")]
    pub mtime: Option<Millis>,
    /// When this size/mtime was first seen.
    #[serde(with = "crate::timestamp::millis")]
    pub since: Millis,
}

/// How a run ended. JSON (`wharf run --json`, `wharf runs --json`, a `summary` notice's
/// `facts`) names it as [`RunStatus::as_str`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Files that failed in the run: its own, and its responses' (a round trip's response
    /// that could not be taken, or whose disposal on the partner's server failed) — every
    /// file that makes the run fail. Not counted in `seen`, which counts the flow's source.
    pub failed: u32,
    pub bytes: u64,
}

/// One run of one flow.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub flow: String,
    #[serde(with = "crate::timestamp::millis")]
    pub started: Millis,
    #[serde(with = "crate::timestamp::millis_opt")]
    pub finished: Option<Millis>,
    pub status: RunStatus,
    pub counts: Counts,
    /// Why the run was aborted, if it was.
    pub error: Option<String>,
}

/// A flow's recent history, for status displays (see `Ledger::last_runs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRuns {
    /// The newest run, whatever its status.
    pub last: Option<RunRecord>,
    /// The newest run with status ok.
    pub last_ok: Option<RunRecord>,
    /// Finished runs since `last_ok` (or ever) that failed or were aborted.
    pub failing_streak: u32,
}

/// Record counts of a file or a run (content steps). `read = valid + rejected + skipped`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCounts {
    /// Records in the file (header and trailer rows are not records; malformed rows are).
    pub read: u64,
    /// Records that passed every step and were kept.
    pub valid: u64,
    /// Malformed records, records that failed validation, and records the script failed on.
    pub rejected: u64,
    /// Records the script dropped on purpose (returned `()`).
    pub skipped: u64,
    /// Records written to the output (a record the script split counts once per part); 0
    /// for a quarantined file.
    pub written: u64,
}

impl RecordCounts {
    pub fn add(&mut self, o: &RecordCounts) {
        self.read += o.read;
        self.valid += o.valid;
        self.rejected += o.rejected;
        self.skipped += o.skipped;
        self.written += o.written;
    }
}

/// What the content steps made of one file (table `file_results_v1`, keyed like `files_v3`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileResult {
    /// The run that processed the file.
    pub run: u64,
    pub counts: RecordCounts,
    /// Size of the output file beside the staging file; `None` when the original is delivered.
    pub output: Option<u64>,
    /// Size of the rejects file, when rows were skipped.
    pub rejects: Option<u64>,
    pub quarantine: Option<QuarantineRecord>,
}

/// The warning of the content steps about a file they let through (every record rejected, a
/// CSV read as one column that looks split on another delimiter): what its run's report said
/// after `warning: `. Table `file_warnings_v1`, keyed like `files_v3`, beside its content
/// result (`file_results_v1`, which it was not added to: that table's records would need a new
/// version): written with the result by the content steps (none: removed), and removed with
/// the result or the file's record (pruning, `wharf forget`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWarning {
    /// The run whose content steps gave it (the content result's).
    pub run: u64,
    #[serde(with = "crate::timestamp::millis")]
    pub at: Millis,
    /// The warning (several joined by `; `).
    pub text: String,
}

impl FileWarning {
    /// Whether it was given to the file `rec` is a record of (the path's record, or a
    /// quarantined file of an earlier generation that a newer file under its path `replaced`
    /// at that time): after that file was first seen, and before a newer one took its place.
    /// Not by its run: a record's `run` is the last that touched it (a delivery retried by a
    /// later run), while a newer file keeps the path's warning of the one before it until its
    /// own steps run (a new generation's record is first seen when it is taken).
    pub fn is_of(&self, rec: &FileRecord, replaced: Option<Millis>) -> bool {
        self.at >= rec.first_seen && replaced.is_none_or(|r| self.at < r)
    }
}

/// Where and why a file was quarantined.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineRecord {
    pub reason: String,
    #[serde(with = "crate::timestamp::millis")]
    pub at: Millis,
    /// The quarantine endpoint's name in the flow.
    pub endpoint: String,
    /// The copy's path on that endpoint, chosen (and recorded) before the upload.
    pub copy: Option<String>,
    /// `NAME.report.json` / `.report.txt` were written beside the copy.
    pub reports: bool,
    /// Errors found (the report lists them).
    pub errors_total: u64,
}

impl QuarantineRecord {
    /// Its copy as commands show it, `endpoint:/path` (`None` when none was named).
    pub fn shown_copy(&self) -> Option<String> {
        self.copy.as_ref().map(|c| format!("{}:/{}", self.endpoint, c.trim_start_matches('/')))
    }
}

/// A quarantined file whose path a newer file has been taken under since (a partner's
/// corrected file sent under the same name): its record and content result as they were when
/// the newer file's record replaced them (table `quarantined_earlier_v1`, see
/// `ledger::quarantined`). Kept until `wharf quarantine release` removes its copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierQuarantine {
    /// Its record as it was: `quarantined`, or `quarantining` when a run stopped before it was
    /// recorded quarantined (its copy then may not have been made whole).
    pub rec: FileRecord,
    /// Its content result; `quarantine` names its copy.
    pub result: FileResult,
    /// When the newer file's record replaced it.
    #[serde(with = "crate::timestamp::millis")]
    pub replaced: Millis,
}

/// Content-step totals of one run (table `run_content_v1`, keyed like `runs_v1`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContent {
    pub quarantined: u32,
    pub records: RecordCounts,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `RunRecord` and `FileRecord` as they were stored before their times were RFC 3339 in
    /// JSON: the same fields, times as plain integers.
    #[derive(Serialize)]
    struct PlainRun<'a> {
        id: u64,
        flow: &'a str,
        started: i64,
        finished: Option<i64>,
        status: RunStatus,
        counts: Counts,
        error: Option<&'a str>,
    }

    #[derive(Serialize)]
    struct PlainFile<'a> {
        path: &'a str,
        identity: &'a str,
        size: u64,
        mtime: Option<i64>,
        sha256: Option<&'a str>,
        state: FileState,
        attempts: u32,
        last_error: Option<(ErrorKind, &'a str, i64)>,
        first_seen: i64,
        updated: i64,
        run: u64,
        deliveries: Vec<PlainDelivery<'a>>,
        disposed_to: Option<&'a str>,
        source_fate: SourceFate,
    }

    /// `Delivery`: sink, target, done, and what it replaces (size, mtime).
    type PlainDelivery<'a> = (u32, &'a str, bool, Option<(u64, Option<i64>)>);

    #[test]
    fn the_ledger_stores_times_as_the_integers_it_always_did() {
        let run = RunRecord {
            id: 7,
            flow: "f".into(),
            started: 1_764_064_800_123,
            finished: Some(1_764_064_801_500),
            status: RunStatus::Failed,
            counts: Counts { delivered: 3, bytes: 42, ..Default::default() },
            error: None,
        };
        let plain = PlainRun {
            id: 7,
            flow: "f",
            started: run.started,
            finished: run.finished,
            status: run.status,
            counts: run.counts,
            error: None,
        };
        let bytes = postcard::to_allocvec(&run).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap());
        assert_eq!(postcard::from_bytes::<RunRecord>(&bytes).unwrap(), run);

        let file = FileRecord {
            path: "in/a.csv".into(),
            mtime: Some(-1_000),
            state: FileState::Delivering,
            last_error: Some(ErrorRecord { kind: ErrorKind::Transient, message: "x".into(), at: 5 }),
            first_seen: 1,
            updated: i64::MAX,
            deliveries: vec![Delivery {
                target: "out/a.csv".into(),
                replaces: Some(Replaced { size: 9, mtime: Some(3) }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let plain = PlainFile {
            path: "in/a.csv",
            identity: "",
            size: 0,
            mtime: Some(-1_000),
            sha256: None,
            state: FileState::Delivering,
            attempts: 0,
            last_error: Some((ErrorKind::Transient, "x", 5)),
            first_seen: 1,
            updated: i64::MAX,
            run: 0,
            deliveries: vec![(0, "out/a.csv", false, Some((9, Some(3))))],
            disposed_to: None,
            source_fate: SourceFate::Kept,
        };
        let bytes = postcard::to_allocvec(&file).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&plain).unwrap());
        assert_eq!(postcard::from_bytes::<FileRecord>(&bytes).unwrap(), file);
    }

    #[test]
    fn json_shows_the_times_in_rfc3339_utc_with_milliseconds() {
        let run = RunRecord { started: 1_764_064_800_000, finished: Some(1_764_064_801_500), ..Default::default() };
        let json = serde_json::to_value(&run).unwrap();
        assert_eq!((&json["started"], &json["finished"]), (&"2025-11-25T10:00:00.000Z".into(), &"2025-11-25T10:00:01.500Z".into()));
        assert_eq!(serde_json::from_value::<RunRecord>(json).unwrap(), run);
        let json = serde_json::to_value(RunRecord { finished: None, ..run }).unwrap();
        assert_eq!(json["finished"], serde_json::Value::Null);
    }
}
