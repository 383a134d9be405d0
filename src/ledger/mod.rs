//! The ledger: wharf's state in one embedded redb database.
//!
//! It records every file seen (its identity and lifecycle state), every delivered identity,
//! readiness observations across polls, every run, awaited responses of round trips, the
//! event log (`awaits`, `events`) and what a source listing showed that can never be taken
//! (`unsafe_names`). Each engine transition is one write transaction, which is what makes
//! a crash at any point resumable: the next run reads where each file stood and carries on
//! from there. Most are durable (fsynced); the engine may write a transition
//! [`Durability::Lazy`] when losing it in a crash only sends the file back to an earlier
//! state it resumes from (docs/architecture.md, "Why it is crash-safe"). A lazy write is kept
//! in this process and seen by its reads at once; the next durable write stores it in the same
//! transaction (at the latest the run's record at its end), and other processes see it from
//! then on. (redb's own non-durable commits are refused in single-writer mode, because
//! readers in other processes could not see them; this buffer is what stands in for them.)
//!
//! This module owns the table layout and the typed API over it; it knows nothing about
//! endpoints or flows beyond their names.
//!
//! Sharing between processes: the database is opened in redb's `SingleWriter` mode. One
//! process writes ([`Ledger::open`]: `wharf run`, or `wharf serve` for as long as it runs); a
//! second writer gets [`LedgerError::Busy`]. Any number of other processes may meanwhile
//! read through [`Ledger::open_read_only`] (`wharf runs`, `wharf files`, `wharf status`…):
//! each read transaction sees the writer's latest commit.
//!
//! After a failed write (a full state folder) redb takes nothing more through the handle that
//! met it, reads included: [`Ledger::recover`] closes it and opens the file again, which
//! repairs it. The rules around that: a recovery waits for the reads and writes under way
//! (they hold the handle); a reopen that fails (still no space) leaves the handle closed, and
//! every later read or write tries the reopen again first — the ledger is never left closed
//! once there is space, whoever asks first. A [`Snapshot`] is one read transaction, and redb
//! ends a read transaction with the handle it came from (its reads fail as "database
//! closed"): a snapshot taken before a recovery (another flow's readiness loop, say) goes on,
//! from its first look-up after it, in a new read transaction on the reopened handle — the
//! ledger as of its last commit, which is all that is left of the old one. It does not hold
//! the recovery up: a snapshot lives across awaits, and a recovery waiting for it could wait
//! for a task that is waiting for the recovery.

pub mod awaits;
mod codec;
mod error;
pub mod events;
pub mod forget;
pub mod layout;
mod migrate;
pub mod newest;
pub mod prune;
pub mod quarantined;
pub mod records;
mod snapshot;
mod store;
pub mod unsafe_names;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableTable, TableDefinition, TableHandle};

pub use awaits::{AwaitRecord, AwaitState, Registered};
use codec::Postcard;
pub use error::LedgerError;
pub use events::{Event, EventKind, FlowHealth, NewEvent, Settle};
pub use layout::Marker;
pub use newest::Newest;
pub use records::*;
pub use snapshot::Snapshot;
pub use store::{Committer, Transition};
use store::{Core, DELIVERED, FileTables, Handle, IN_FLIGHT, Pending, apply_complete, apply_file, apply_result, builder};
pub use unsafe_names::{Noted, UnsafeName};

const FILES: TableDefinition<(&str, &str), Postcard<FileRecord>> = TableDefinition::new("files_v3");
const DONE: TableDefinition<(&str, &str), Postcard<DoneRecord>> = TableDefinition::new("done_v1");
const OBSERVATIONS: TableDefinition<(&str, &str), Postcard<Observation>> = TableDefinition::new("observations_v1");
const RUNS: TableDefinition<(&str, u64), Postcard<RunRecord>> = TableDefinition::new("runs_v1");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters_v1");
const FILE_RESULTS: TableDefinition<(&str, &str), Postcard<FileResult>> = TableDefinition::new("file_results_v1");
const FILE_WARNINGS: TableDefinition<(&str, &str), Postcard<FileWarning>> = TableDefinition::new("file_warnings_v1");
const RUN_CONTENT: TableDefinition<(&str, u64), Postcard<RunContent>> = TableDefinition::new("run_content_v1");

/// Every table `init` creates (a test keeps the list in step): what a reader checks for, and
/// what the layout's record describes (`layout/stored.rs`).
const TABLES: &[&str] = &[
    "files_v3",
    "in_flight_v1",
    "delivered_at_v1",
    "done_v1",
    "observations_v1",
    "runs_v1",
    "counters_v1",
    "file_results_v1",
    "file_warnings_v1",
    "run_content_v1",
    "awaits_v2",
    "await_requests_v1",
    "events_v2",
    "health_v1",
    "unsafe_names_v1",
    "notify_held_v1",
    "quarantined_earlier_v1",
    "meta",
];

/// Whether a write must be on disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsynced before the call returns (the default for every write).
    Durable,
    /// Visible to this process at once, on disk with the next durable write. A crash (even
    /// SIGKILL) before that loses it, cleanly: the ledger is as of the last durable write.
    Lazy,
}

/// Handle to the ledger database.
pub struct Ledger {
    core: Arc<Core>,
    /// Whether opening it made the file (see [`Ledger::created`]).
    created: bool,
}

impl Drop for Ledger {
    /// Stores what was written lazily (best effort: a failure here is a crash's outcome).
    fn drop(&mut self) {
        if self.is_writer() {
            let _ = self.flush();
        }
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.core.path.display())
    }
}

/// The number after the last one the ledger-wide `counter` (`run`, `event`) gave out; 1 for
/// the first. Numbers are never reused.
fn next_number(counters: &impl ReadableTable<&'static str, u64>, counter: &str) -> Result<u64, redb::StorageError> {
    Ok(counters.get(counter)?.map(|v| v.value()).unwrap_or(0) + 1)
}

/// Current time in ms since the epoch.
pub fn now_millis() -> Millis {
    to_millis(SystemTime::now())
}

/// A `SystemTime` in ms since the epoch (negative before 1970).
pub fn to_millis(t: SystemTime) -> Millis {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as Millis,
        Err(e) => -(e.duration().as_millis() as Millis),
    }
}

type KeyBound<'a> = std::ops::Bound<(&'a str, &'a str)>;

fn flow_range(flow: &str) -> (KeyBound<'_>, KeyBound<'_>) {
    // Tuple keys order by flow, then by path: every (flow, _) key lies in [(flow, ""), (flow, MAX)).
    (std::ops::Bound::Included((flow, "")), std::ops::Bound::Included((flow, "\u{10FFFF}")))
}

impl Ledger {
    /// Refuses a ledger at `path` whose folder (the state folder) cannot be one: it, or the
    /// nearest of its parents that exists, is a file ([`LedgerError::NotAFolder`]). Commands
    /// that read the state folder without opening the ledger ask this first, so they say the
    /// same as those that do.
    pub fn check_folder(path: &Path) -> Result<(), LedgerError> {
        match error::folder_blocked_by(path) {
            Some(blocker) => Err(LedgerError::NotAFolder { path: path.to_path_buf(), blocker }),
            None => Ok(()),
        }
    }

    /// Opens (creating if needed) the ledger at `path` as its one writer. Another process
    /// writing it already: [`LedgerError::Busy`]; readers do not get in the way. A ledger a
    /// newer wharf wrote: [`LedgerError::NewerLayout`], nothing written.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        Ledger::check_folder(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_folder(dir).map_err(|source| LedgerError::Io { path: path.to_path_buf(), source })?;
        }
        let (db, created) = store::open_writer(path)?;
        let mut ledger = Ledger::new(Handle::Write(db), path.to_path_buf());
        ledger.created = created;
        ledger.init()?;
        Ok(ledger)
    }

    /// Whether [`Ledger::open`] made the ledger file: a first run, or a state folder that was
    /// lost, deleted or left behind when the project moved (see [`Ledger::created_notice`]).
    pub fn created(&self) -> bool {
        self.created
    }

    /// What `wharf run` and `wharf serve` say when they made the ledger (see
    /// [`Ledger::created`]): every file at the sources is new to it, which after a lost state
    /// folder means files delivered before are taken again. `None` for a ledger that was there.
    pub fn created_notice(&self) -> Option<String> {
        let folder = self.path().parent().unwrap_or(self.path());
        self.created.then(|| {
            format!(
                "new state folder {}: no file has been seen yet, so every file at the sources is new (if this project ran before from another state folder, see docs/operations.md, \"The state folder: damaged, lost, moved\")",
                folder.display()
            )
        })
    }

    /// The ledger's layout marker: the layout and version of the wharf that opened it for
    /// writing last; `None` before any wharf that writes it did (see [`layout`]).
    pub fn layout(&self) -> Result<Option<Marker>, LedgerError> {
        self.read(layout::read)
    }

    /// After a write failed on the disk (redb takes no more through the handle that met it),
    /// opens the database again, which repairs it: the ledger is as of its last commit, with
    /// the lazy writes of this process still to be stored. Nothing to do when no write failed.
    /// Still no space: [`LedgerError::StateFull`], and the handle stays closed: the next read
    /// or write tries again (see the module doc). Opened again as [`Ledger::open`] opens it:
    /// a newer wharf that wrote the file while it was closed (a rollback's daemon and an
    /// upgrade's `wharf run` a moment apart) has it refused ([`LedgerError::NewerLayout`],
    /// nothing written, the handle still closed), as is another process writing it now
    /// ([`LedgerError::Busy`]).
    pub fn recover(&self) -> Result<(), LedgerError> {
        self.core.recover()
    }

    /// Opens the ledger at `path` for reading only, whether or not another process writes
    /// it; every read sees the writer's latest commit. Write methods of the handle return
    /// [`LedgerError::ReadOnly`]. No file: [`LedgerError::Missing`] (the writer creates it).
    /// A ledger a newer wharf wrote: [`LedgerError::NewerLayout`].
    ///
    /// A ledger last written by an older wharf may lack tables this version reads: see
    /// [`Ledger::missing_tables`].
    pub fn open_read_only(path: &Path) -> Result<Self, LedgerError> {
        Ledger::check_folder(path)?;
        if !path.exists() {
            return Err(LedgerError::Missing(path.to_path_buf()));
        }
        let db = match builder().open_read_only(path) {
            Ok(db) => db,
            // The last writer was killed: redb repairs the file only for a writer, and refuses
            // readers until then. Repair it as the next `wharf run` would (nothing committed is
            // lost), unless a writer has it open — which repaired it when it opened.
            Err(redb::DatabaseError::RepairAborted) => {
                match Ledger::open(path) {
                    Ok(writer) => {
                        tracing::info!(ledger = %path.display(), "The ledger was not closed cleanly (a wharf process was killed); repaired.");
                        drop(writer);
                    }
                    Err(LedgerError::Busy(_)) => {}
                    Err(e @ (LedgerError::NewerLayout { .. } | LedgerError::Damaged { .. })) => return Err(e),
                    // A write failed for lack of space (that, not a kill, left it unclean), and
                    // the repair needs some too: read a copy repaired in memory.
                    Err(e) if e.is_state_full() => {
                        tracing::warn!(ledger = %path.display(), "{e}; reading a copy repaired in memory.");
                        return Ledger::read_copy(path);
                    }
                    Err(e) => return Err(LedgerError::NeedsRepair { path: path.to_path_buf(), cause: e.to_string() }),
                }
                builder().open_read_only(path).map_err(|e| error::open_error(path, e))?
            }
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LedgerError::Missing(path.to_path_buf()));
            }
            Err(e) => return Err(error::open_error(path, e)),
        };
        layout::check(path, &db)?;
        Ok(Ledger::new(Handle::Read(db), path.to_path_buf()))
    }

    /// A read-only handle on a copy in memory of the file at `path`, repaired there.
    fn read_copy(path: &Path) -> Result<Self, LedgerError> {
        use redb::StorageBackend as _;
        let db_err = |e: redb::Error| LedgerError::Db { path: path.to_path_buf(), source: e };
        let bytes = std::fs::read(path).map_err(|e| db_err(e.into()))?;
        let backend = redb::backends::InMemoryBackend::new();
        backend.set_len(bytes.len() as u64).and_then(|()| backend.write(0, &bytes)).map_err(|e| db_err(e.into()))?;
        let db = Database::builder().create_with_backend(backend).map_err(|e| db_err(e.into()))?;
        layout::check(path, &db)?;
        Ok(Ledger::new(Handle::Copy(db), path.to_path_buf()))
    }

    /// Whether this handle may write (it came from [`Ledger::open`] or [`Ledger::in_memory`]).
    pub fn is_writer(&self) -> bool {
        // Closed: a writer's, until it is opened again.
        matches!(*self.core.handle(), Handle::Write(_) | Handle::Closed)
    }

    /// Names of the tables this version uses that the database does not have yet (a ledger
    /// last opened for writing by an older wharf). Empty for a writer's handle, which creates
    /// them on open.
    pub fn missing_tables(&self) -> Result<Vec<&'static str>, LedgerError> {
        let present: Vec<String> = self.read(|tx| Ok(tx.list_tables()?.map(|t| t.name().to_string()).collect()))?;
        Ok(TABLES.iter().copied().filter(|t| !present.iter().any(|p| p == t)).collect())
    }

    /// An in-memory ledger, for tests.
    pub fn in_memory() -> Result<Self, LedgerError> {
        let path = PathBuf::from(":memory:");
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| LedgerError::Db { path: path.clone(), source: e.into() })?;
        let ledger = Ledger::new(Handle::Write(db), path);
        ledger.init()?;
        Ok(ledger)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.core.path
    }

    /// A handle for storing group commits from another thread (see [`Committer`]).
    pub fn committer(&self) -> Committer {
        Committer { core: Arc::clone(&self.core) }
    }

    fn new(db: Handle, path: PathBuf) -> Self {
        Ledger { core: Arc::new(Core::new(db, path)), created: false }
    }

    /// Creates the tables so read transactions never see a missing table, and converts
    /// records an older wharf stored (`migrate`), and stores this build's layout marker
    /// ([`layout`]), all in one transaction.
    fn init(&self) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(FILES)?;
            tx.open_table(DONE)?;
            tx.open_table(OBSERVATIONS)?;
            tx.open_table(RUNS)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(FILE_RESULTS)?;
            tx.open_table(FILE_WARNINGS)?;
            tx.open_table(RUN_CONTENT)?;
            tx.open_table(quarantined::EARLIER)?;
            migrate::run(tx)?;
            store::build_indexes(tx)?;
            Self::init_awaits(tx)?;
            Self::init_unsafe_names(tx)?;
            Self::init_events(tx)?;
            layout::write(tx)
        })
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.core.pending()
    }

    fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>) -> Result<T, LedgerError> {
        self.core.write(f)
    }

    /// Gives the pages pruning and forgetting freed back to the file system: the file is
    /// rewritten in place to hold only what the ledger keeps. redb reuses freed pages without
    /// it; this is for a ledger that shrank for good (a large flow forgotten, a shorter
    /// `history`). Only the writer may (offline: `wharf compact`, with no daemon holding the
    /// ledger).
    pub fn compact(&self) -> Result<(), LedgerError> {
        self.core.compact()
    }

    /// Stores the lazy writes now (one durable transaction; nothing when there are none).
    pub fn flush(&self) -> Result<(), LedgerError> {
        self.core.flush()
    }

    /// Runs `f` in a read transaction: a snapshot of the latest commit (of whichever process).
    fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>) -> Result<T, LedgerError> {
        self.core.read(f)
    }

    /// A consistent view for many look-ups at once (one read transaction): deciding readiness
    /// and identity for a whole listing. Taken before a recovery, it reads on after it (see the
    /// module doc).
    pub fn snapshot(&self) -> Result<Snapshot, LedgerError> {
        Snapshot::take(&self.core)
    }

    // ---- runs ----

    /// Starts a run: allocates its number and records it as running.
    pub fn begin_run(&self, flow: &str, started: Millis) -> Result<RunRecord, LedgerError> {
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let id = next_number(&counters, "run")?;
            counters.insert("run", id)?;
            let rec = RunRecord { id, flow: flow.to_string(), started, ..Default::default() };
            tx.open_table(RUNS)?.insert((flow, id), &rec)?;
            Ok(rec)
        })
    }

    /// The number the next run will get (ledger-wide, never reused: the runs of a forgotten
    /// flow keep theirs). Another run may take it first.
    pub fn next_run_id(&self) -> Result<u64, LedgerError> {
        self.read(|tx| Ok(next_number(&tx.open_table(COUNTERS)?, "run")?))
    }

    /// Stores the final state of a run.
    pub fn finish_run(&self, rec: &RunRecord) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(RUNS)?.insert((rec.flow.as_str(), rec.id), rec)?;
            Ok(())
        })
    }

    /// Runs, newest first; all flows when `flow` is `None`.
    pub fn runs(&self, flow: Option<&str>, limit: usize) -> Result<Vec<RunRecord>, LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(RUNS)?;
            let mut out = Vec::new();
            match flow {
                // One flow's keys are contiguous and ordered by run number.
                Some(f) => {
                    for item in t.range((f, 0)..=(f, u64::MAX))?.rev().take(limit) {
                        out.push(item?.1.value());
                    }
                }
                None => {
                    for item in t.iter()? {
                        out.push(item?.1.value());
                    }
                    out.sort_by_key(|r| std::cmp::Reverse(r.id));
                    out.truncate(limit);
                }
            }
            Ok(out)
        })
    }

    /// A flow's latest run, its latest successful run, and how many finished runs in a row
    /// (newest first, runs still going not counted) failed or were aborted.
    pub fn last_runs(&self, flow: &str) -> Result<LastRuns, LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(RUNS)?;
            let mut out = LastRuns::default();
            for item in t.range((flow, 0)..=(flow, u64::MAX))?.rev() {
                let run = item?.1.value();
                let status = run.status;
                if matches!(status, RunStatus::Failed | RunStatus::Aborted) {
                    out.failing_streak += 1;
                }
                if status == RunStatus::Ok {
                    out.last.get_or_insert_with(|| run.clone());
                    out.last_ok = Some(run);
                    break;
                }
                out.last.get_or_insert(run);
            }
            Ok(out)
        })
    }

    // ---- files ----

    /// The record for `path` in `flow`, if any.
    pub fn file(&self, flow: &str, path: &str) -> Result<Option<FileRecord>, LedgerError> {
        if let Some(rec) = self.pending().get(&(flow.to_string(), path.to_string())) {
            return Ok(Some(rec.clone()));
        }
        self.read(|tx| Ok(tx.open_table(FILES)?.get((flow, path))?.map(|v| v.value())))
    }

    /// Every file record of `flow`, by path.
    pub fn files(&self, flow: &str) -> Result<Vec<FileRecord>, LedgerError> {
        self.files_where(flow, |_| true)
    }

    /// The file records of `flow` still in flight ([`FileState::in_flight`]), by path: what a
    /// run resumes or finishes. Read through the in-flight index (`in_flight_v1`): a flow
    /// with a long `history` holds hundreds of thousands of finished records, and every run
    /// asks. (A reader of a ledger no wharf with the index has written yet reads them all.)
    pub fn in_flight_files(&self, flow: &str) -> Result<Vec<FileRecord>, LedgerError> {
        let stored = self.read(|tx| {
            let index = match tx.open_table(IN_FLIGHT) {
                Ok(index) => index,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let files = tx.open_table(FILES)?;
            let mut out = BTreeMap::new();
            for item in index.range::<(&str, &str)>(flow_range(flow))? {
                let (key, _) = item?;
                if let Some(rec) = files.get(key.value())?.map(|v| v.value()).filter(|r| r.state.in_flight()) {
                    out.insert(rec.path.clone(), rec);
                }
            }
            Ok(Some(out))
        })?;
        match stored {
            Some(stored) => Ok(self.with_pending(flow, stored, |r| r.state.in_flight())),
            None => self.files_where(flow, |r| r.state.in_flight()),
        }
    }

    /// The file records of `flow` left in one of `states` (failed for good, quarantined) by
    /// one of `runs` (the run that last touched each), by path: what a run interrupted before
    /// its end failed or quarantined (`engine::close_interrupted`). Every record of the flow is
    /// read (none is indexed by run), once for all the states: asked only when a run was
    /// interrupted.
    pub fn left_in(&self, flow: &str, runs: &[u64], states: &[FileState]) -> Result<Vec<FileRecord>, LedgerError> {
        self.files_where(flow, |r| states.contains(&r.state) && runs.contains(&r.run))
    }

    /// The file records of `flow` that `keep` takes, by path.
    fn files_where(&self, flow: &str, keep: impl Fn(&FileRecord) -> bool) -> Result<Vec<FileRecord>, LedgerError> {
        let stored: BTreeMap<String, FileRecord> = self.read(|tx| {
            let t = tx.open_table(FILES)?;
            let mut out = BTreeMap::new();
            for item in t.range::<(&str, &str)>(flow_range(flow))? {
                let rec = item?.1.value();
                if keep(&rec) {
                    out.insert(rec.path.clone(), rec);
                }
            }
            Ok(out)
        })?;
        Ok(self.with_pending(flow, stored, keep))
    }

    /// `stored`, the records of `flow` that `keep` takes as stored, with this process's lazy
    /// writes standing in for their stored records, either way.
    fn with_pending(&self, flow: &str, mut stored: BTreeMap<String, FileRecord>, keep: impl Fn(&FileRecord) -> bool) -> Vec<FileRecord> {
        for ((f, path), rec) in self.pending().iter() {
            if f != flow {
                continue;
            }
            if keep(rec) {
                stored.insert(path.clone(), rec.clone());
            } else {
                stored.remove(path);
            }
        }
        stored.into_values().collect()
    }

    /// The `limit` file records of `flow` changed last (by `updated`, then path), oldest
    /// first, and how many it has: what someone asking "what happened lately" wants. The table
    /// is keyed by path, so every record is read, but only `limit` are held at a time.
    pub fn latest_files(&self, flow: &str, limit: usize) -> Result<Newest<FileRecord>, LedgerError> {
        // This process's lazy writes stand in for their stored records (taken first: a record
        // stored meanwhile is the same or newer, and is shown as it was a moment earlier).
        let pending: BTreeMap<String, FileRecord> =
            self.pending().iter().filter(|((f, _), _)| f == flow).map(|((_, path), rec)| (path.clone(), rec.clone())).collect();
        let mut keep = newest::Keep::new(limit);
        self.read(|tx| {
            let t = tx.open_table(FILES)?;
            for item in t.range::<(&str, &str)>(flow_range(flow))? {
                let (key, value) = item?;
                if !pending.contains_key(key.value().1) {
                    let rec = value.value();
                    keep.offer((rec.updated, rec.path.clone()), rec);
                }
            }
            Ok(())
        })?;
        for (path, rec) in pending {
            keep.offer((rec.updated, path), rec);
        }
        Ok(keep.finish())
    }

    /// For each window (`from..=to`, ms), whether a file of `flow` whose record is `done` was
    /// last changed in it (delivered then): what `expect:` asks at a deadline. Read through
    /// the delivery index (`delivered_at_v1`, by flow and time): a look-up per window, however
    /// many records the flow holds, a missed deadline included. This process's lazy writes
    /// stand in for their stored records. (A reader of a ledger no wharf with the index has
    /// written yet reads every record instead.)
    pub fn delivered_in(&self, flow: &str, windows: &[(Millis, Millis)]) -> Result<Vec<bool>, LedgerError> {
        let pending: BTreeMap<String, FileRecord> =
            self.pending().iter().filter(|((f, _), _)| f == flow).map(|((_, path), rec)| (path.clone(), rec.clone())).collect();
        let mut found = vec![false; windows.len()];
        for rec in pending.values() {
            mark_delivery(&mut found, windows, rec);
        }
        let indexed = self.read(|tx| {
            let index = match tx.open_table(DELIVERED) {
                Ok(index) => index,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
                Err(e) => return Err(e.into()),
            };
            for (hit, (from, to)) in found.iter_mut().zip(windows) {
                if *hit {
                    continue;
                }
                for item in index.range((flow, *from, "")..)? {
                    let (key, _) = item?;
                    let (f, at, path) = key.value();
                    if f != flow || at > *to {
                        break;
                    }
                    // A lazy write (marked above) stands in for the stored record.
                    if !pending.contains_key(path) {
                        *hit = true;
                        break;
                    }
                }
            }
            Ok(true)
        })?;
        if !indexed {
            self.scan_deliveries(flow, windows, &pending, &mut found)?;
        }
        Ok(found)
    }

    /// [`Ledger::delivered_in`] without the index: the records of `flow` read in turn (but
    /// those of `pending`), none kept, and no further than it takes to find a delivery in
    /// every window.
    fn scan_deliveries(
        &self,
        flow: &str,
        windows: &[(Millis, Millis)],
        pending: &BTreeMap<String, FileRecord>,
        found: &mut [bool],
    ) -> Result<(), LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(FILES)?;
            for item in t.range::<(&str, &str)>(flow_range(flow))? {
                let (key, value) = item?;
                if !pending.contains_key(key.value().1) {
                    mark_delivery(found, windows, &value.value());
                }
                if found.iter().all(|hit| *hit) {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Durably stores a file record (one lifecycle transition).
    pub fn put_file(&self, flow: &str, rec: &FileRecord) -> Result<(), LedgerError> {
        self.put_file_with(flow, rec, Durability::Durable)
    }

    /// Stores a file record (one lifecycle transition) with the given durability.
    pub fn put_file_with(&self, flow: &str, rec: &FileRecord, durability: Durability) -> Result<(), LedgerError> {
        if durability == Durability::Lazy {
            if !self.is_writer() {
                return Err(LedgerError::ReadOnly(self.core.path.clone()));
            }
            self.pending().insert((flow.to_string(), rec.path.clone()), rec.clone());
            return Ok(());
        }
        self.write(|tx| apply_file(&mut FileTables::open(tx)?, flow, rec))
    }

    /// Marks a file done and records its identity as delivered, in one transaction, and
    /// forgets its readiness observation.
    pub fn complete(&self, flow: &str, rec: &FileRecord, done: &DoneRecord) -> Result<(), LedgerError> {
        self.write(|tx| apply_complete(tx, &mut FileTables::open(tx)?, flow, rec, done))
    }

    /// Stores several durable transitions (of different files) in one transaction: one fsync
    /// for all of them (group commit, `engine::commits`). All or none are stored.
    pub fn commit(&self, transitions: &[Transition]) -> Result<(), LedgerError> {
        self.core.commit(transitions)
    }

    /// The delivery of an identity, if it was delivered before.
    pub fn done(&self, flow: &str, identity: &str) -> Result<Option<DoneRecord>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(DONE)?.get((flow, identity))?.map(|v| v.value())))
    }

    // ---- content steps ----

    /// What the content steps made of `path`, if they ran.
    pub fn file_result(&self, flow: &str, path: &str) -> Result<Option<FileResult>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(FILE_RESULTS)?.get((flow, path))?.map(|v| v.value())))
    }

    /// The content steps' warning about `path`, a file they let through, if they gave one
    /// (see [`FileWarning`]; none in a ledger no wharf that keeps them has written).
    pub fn file_warning(&self, flow: &str, path: &str) -> Result<Option<FileWarning>, LedgerError> {
        self.read(|tx| match tx.open_table(FILE_WARNINGS) {
            Ok(t) => Ok(t.get((flow, path))?.map(|v| v.value())),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(e.into()),
        })
    }

    /// The content steps' warning about each file of `flow` in `files` (a record, and when a
    /// newer file replaced it: `None` for the path's record), if they gave that very file one
    /// ([`FileWarning::is_of`]: not a warning the path keeps of an earlier file). One read
    /// transaction.
    pub fn warnings_of(&self, flow: &str, files: &[(&FileRecord, Option<Millis>)]) -> Result<Vec<Option<FileWarning>>, LedgerError> {
        self.read(|tx| {
            let t = match tx.open_table(FILE_WARNINGS) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![None; files.len()]),
                Err(e) => return Err(e.into()),
            };
            let mut out = Vec::with_capacity(files.len());
            for (rec, replaced) in files {
                let w = t.get((flow, rec.path.as_str()))?.map(|v| v.value());
                out.push(w.filter(|w| w.is_of(rec, *replaced)));
            }
            Ok(out)
        })
    }

    /// Stores a file record and its content result in one transaction (one transition).
    pub fn put_file_and_result(&self, flow: &str, rec: &FileRecord, result: &FileResult) -> Result<(), LedgerError> {
        self.write(|tx| apply_result(&mut FileTables::open(tx)?, flow, rec, result))
    }

    /// Forgets the file `rec` names, as [`forget_file`](Self::forget_file) does, except that
    /// `rec` (as given) is kept with its content result as a quarantined file of an earlier
    /// generation when that result names a quarantine copy (`wharf quarantine list` shows it,
    /// `release --copy` removes it): a file given up being quarantined, whose copy may have
    /// been made where no run looks. Whether it was kept.
    pub fn forget_file_keeping_copy(&self, flow: &str, rec: &FileRecord) -> Result<bool, LedgerError> {
        self.write(|tx| {
            let kept = FileTables::open(tx)?.remove_keeping_copy(flow, rec.clone(), now_millis())?;
            tx.open_table(OBSERVATIONS)?.remove((flow, rec.path.as_str()))?;
            Ok(kept)
        })
    }

    /// Forgets a file entirely (record, content result, observation): the next run treats it as
    /// new. The quarantined files of earlier generations under its path stay
    /// ([`Ledger::forget_earlier_quarantine`]).
    pub fn forget_file(&self, flow: &str, path: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            FileTables::open(tx)?.remove(flow, path)?;
            tx.open_table(OBSERVATIONS)?.remove((flow, path))?;
            Ok(())
        })
    }

    /// Stores a run's content-step totals.
    pub fn put_run_content(&self, flow: &str, run: u64, content: &RunContent) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(RUN_CONTENT)?.insert((flow, run), content)?;
            Ok(())
        })
    }

    /// A run's content-step totals, if it had any.
    pub fn run_content(&self, flow: &str, run: u64) -> Result<Option<RunContent>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(RUN_CONTENT)?.get((flow, run))?.map(|v| v.value())))
    }

    // ---- readiness observations ----

    /// The last observation of `path`.
    pub fn observation(&self, flow: &str, path: &str) -> Result<Option<Observation>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(OBSERVATIONS)?.get((flow, path))?.map(|v| v.value())))
    }

    /// Stores observations for many paths in one transaction (one per poll, not per file).
    pub fn put_observations(&self, flow: &str, obs: &[(String, Observation)]) -> Result<(), LedgerError> {
        if obs.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut t = tx.open_table(OBSERVATIONS)?;
            for (path, o) in obs {
                t.insert((flow, path.as_str()), o)?;
            }
            Ok(())
        })
    }
}

/// Marks the windows (`from..=to`) `rec` was delivered in, if it is `done` (see
/// [`Ledger::delivered_in`]).
fn mark_delivery(found: &mut [bool], windows: &[(Millis, Millis)], rec: &FileRecord) {
    if rec.state == FileState::Done {
        for (hit, (from, to)) in found.iter_mut().zip(windows) {
            *hit |= (*from..=*to).contains(&rec.updated);
        }
    }
}

/// Makes the state folder `dir` when missing, private (0700) whatever the umask lets others
/// read: it holds partners' files in flight (`staging/`) and what the ledger knows of them
/// (a daemon started by hand; systemd's `StateDirectoryMode` does the same). The folders
/// above it are made as any folder is; a state folder that exists keeps its permissions.
fn private_folder(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(up) = dir.parent().filter(|u| !u.as_os_str().is_empty()) {
        std::fs::create_dir_all(up)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opening makes the file once: the first handle says so, the next one does not.
    #[test]
    fn open_says_whether_it_made_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/ledger.redb");
        let first = Ledger::open(&path).unwrap();
        assert!(first.created());
        let note = first.created_notice().unwrap();
        assert!(note.starts_with(&format!("new state folder {}: ", dir.path().join("state").display())), "{note}");
        drop(first);
        let again = Ledger::open(&path).unwrap();
        assert!(!again.created() && again.created_notice().is_none());
        assert!(!Ledger::in_memory().unwrap().created());
    }

    /// A file record of `path` in `state` (for the ledger's tests).
    pub(super) fn rec(path: &str, state: FileState) -> FileRecord {
        FileRecord { path: path.into(), identity: format!("id:{path}"), state, ..Default::default() }
    }

    /// The state folder full, the repair a reader would make cannot be made: it reads a copy
    /// repaired in memory, and writes nothing.
    #[test]
    fn a_copy_of_a_ledger_needing_repair_is_repaired_in_memory_and_read() {
        let dir = tempfile::tempdir().unwrap();
        let (live, crashed) = (dir.path().join("live.redb"), dir.path().join("ledger.redb"));
        let w = Ledger::open(&live).unwrap();
        w.begin_run("a", 1).unwrap();
        std::fs::copy(&live, &crashed).unwrap();
        let before = std::fs::read(&crashed).unwrap();
        let r = Ledger::read_copy(&crashed).unwrap();
        assert_eq!(r.runs(None, 10).unwrap().len(), 1);
        assert!(!r.is_writer() && matches!(r.begin_run("a", 2), Err(LedgerError::ReadOnly(_))));
        drop(r);
        assert!(std::fs::read(&crashed).unwrap() == before, "the file is untouched");
    }

    /// A ledger file cut short (a copy that stopped, a disk that lost its end) is refused as
    /// damaged, by the writer and by a reader alike, with the way out; nothing is written to it.
    #[test]
    fn a_ledger_cut_short_is_refused_as_damaged_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let w = Ledger::open(&path).unwrap();
        w.begin_run("a", 1).unwrap();
        drop(w);
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(20_000).unwrap();
        drop(file);
        let before = std::fs::read(&path).unwrap();
        for e in [Ledger::open(&path).err(), Ledger::open_read_only(&path).err()] {
            let e = e.expect("refused");
            assert!(matches!(e, LedgerError::Damaged { .. }), "{e:?}");
            let text = e.to_string();
            assert!(text.contains("is damaged") && text.contains("Restore the state folder"), "{text}");
            assert!(text.contains(&dir.path().display().to_string()), "{text}");
        }
        assert!(std::fs::read(&path).unwrap() == before, "the file is untouched");
    }

    /// The state folder wharf makes is private: partners' files in flight are staged in it.
    /// One that exists is left as it is.
    #[test]
    fn the_state_folder_is_made_private_and_an_existing_one_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("var/wharf");
        drop(Ledger::open(&state.join("ledger.redb")).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state), 0o700);
        assert_ne!(mode(&dir.path().join("var")), 0o700, "the folders above it are made as any folder is");
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o750)).unwrap();
        drop(Ledger::open(&shared.join("ledger.redb")).unwrap());
        assert_eq!(mode(&shared), 0o750);
    }

    #[test]
    fn runs_are_numbered_and_listed_newest_first() {
        let l = Ledger::in_memory().unwrap();
        let a = l.begin_run("a", 1).unwrap();
        let b = l.begin_run("b", 2).unwrap();
        let mut a2 = l.begin_run("a", 3).unwrap();
        assert_eq!((a.id, b.id, a2.id), (1, 2, 3));
        a2.status = RunStatus::Ok;
        l.finish_run(&a2).unwrap();
        let runs = l.runs(Some("a"), 10).unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(runs[0].status, RunStatus::Ok);
        assert_eq!(l.runs(None, 2).unwrap().len(), 2);
    }

    #[test]
    fn files_are_scoped_per_flow_and_complete_records_identity() {
        let l = Ledger::in_memory().unwrap();
        l.put_file("f", &rec("in/a.csv", FileState::Staged)).unwrap();
        l.put_file("f", &rec("in/b.csv", FileState::Claimed)).unwrap();
        l.put_file("g", &rec("in/a.csv", FileState::Claimed)).unwrap();
        l.put_observations("f", &[("in/a.csv".into(), Observation { size: 1, mtime: None, since: 5 })]).unwrap();
        assert_eq!(l.files("f").unwrap().len(), 2);
        let mut r = rec("in/a.csv", FileState::Done);
        r.identity = "p=in/a.csv".into();
        l.complete("f", &r, &DoneRecord { path: r.path.clone(), run: 7, at: 9, targets: vec!["/x".into()] }).unwrap();
        assert_eq!(l.file("f", "in/a.csv").unwrap().unwrap().state, FileState::Done);
        assert_eq!(l.done("f", "p=in/a.csv").unwrap().unwrap().run, 7);
        assert!(l.done("g", "p=in/a.csv").unwrap().is_none());
        assert!(l.observation("f", "in/a.csv").unwrap().is_none());
    }

    /// `wharf files` of a flow with 100,000 records printed all of them; it shows the
    /// records changed last, and a lazy write stands in for the record it replaces.
    #[test]
    fn latest_files_are_those_changed_last_oldest_first_with_lazy_writes() {
        let l = Ledger::in_memory().unwrap();
        let at = |path: &str, updated: Millis| FileRecord { updated, ..rec(path, FileState::Done) };
        // Paths order against time: the newest are not the last keys.
        for (i, path) in ["e", "d", "c", "b", "a"].into_iter().enumerate() {
            l.put_file("f", &at(path, 10 + i as Millis)).unwrap();
        }
        l.put_file("g", &at("z", 99)).unwrap();
        let paths = |n: Newest<FileRecord>| (n.items.into_iter().map(|r| r.path).collect::<Vec<_>>(), n.total);
        assert_eq!(paths(l.latest_files("f", 2).unwrap()), (vec!["b".to_string(), "a".into()], 5));
        assert_eq!(paths(l.latest_files("f", 9).unwrap()).0, ["e", "d", "c", "b", "a"]);
        // Same time: by path.
        l.put_file("f", &at("y", 14)).unwrap();
        assert_eq!(paths(l.latest_files("f", 2).unwrap()), (vec!["a".to_string(), "y".into()], 6));
        // "e" touched again, not stored yet: once, as it is now.
        l.put_file_with("f", &at("e", 20), Durability::Lazy).unwrap();
        assert_eq!(paths(l.latest_files("f", 2).unwrap()), (vec!["y".to_string(), "e".into()], 6));
        assert_eq!(paths(l.latest_files("nope", 2).unwrap()), (vec![], 0));
    }

    /// `expect:` asks whether each window saw a delivery: only `done` records count, by when
    /// they were last changed; a lazy write stands in for the record it replaces.
    #[test]
    fn deliveries_are_found_by_window() {
        let l = Ledger::in_memory().unwrap();
        let at = |path: &str, state, updated: Millis| FileRecord { updated, ..rec(path, state) };
        l.put_file("f", &at("a", FileState::Done, 10)).unwrap();
        l.put_file("f", &at("b", FileState::Failed, 20)).unwrap();
        l.put_file("f", &at("c", FileState::Done, 30)).unwrap();
        l.put_file("g", &at("z", FileState::Done, 40)).unwrap();
        let windows = [(0, 9), (5, 15), (16, 29), (30, 30), (35, 50)];
        assert_eq!(l.delivered_in("f", &windows).unwrap(), [false, true, false, true, false]);
        // `c` sent again under its name, in flight: its earlier delivery no longer shows (as
        // `wharf files` has it), and a lazily written one does.
        l.put_file_with("f", &at("c", FileState::Staging, 31), Durability::Lazy).unwrap();
        l.put_file_with("f", &at("d", FileState::Done, 45), Durability::Lazy).unwrap();
        assert_eq!(l.delivered_in("f", &windows).unwrap(), [false, true, false, false, true]);
        assert_eq!(l.delivered_in("nope", &windows[..1]).unwrap(), [false]);
    }

    #[test]
    fn content_results_are_stored_beside_files_and_runs() {
        let l = Ledger::in_memory().unwrap();
        let mut r = rec("in/a.csv", FileState::Processed);
        let res = FileResult {
            run: 3,
            counts: RecordCounts { read: 5, valid: 4, rejected: 1, ..Default::default() },
            output: Some(9),
            ..Default::default()
        };
        l.put_file_and_result("f", &r, &res).unwrap();
        assert_eq!(l.file_result("f", "in/a.csv").unwrap(), Some(res));
        r.state = FileState::Quarantined;
        assert!(!r.state.in_flight());
        l.put_run_content("f", 3, &RunContent { quarantined: 1, records: RecordCounts { read: 5, ..Default::default() } }).unwrap();
        assert_eq!(l.run_content("f", 3).unwrap().unwrap().records.read, 5);
        assert!(l.run_content("f", 4).unwrap().is_none());
        l.forget_file("f", "in/a.csv").unwrap();
        assert!(l.file("f", "in/a.csv").unwrap().is_none() && l.file_result("f", "in/a.csv").unwrap().is_none());
    }

    #[test]
    fn states_appended_for_content_steps_keep_the_old_encodings() {
        // postcard stores the variant index: the original nine must keep theirs.
        for (state, index) in [
            (FileState::Claimed, 0u8),
            (FileState::Duplicate, 8),
            (FileState::Processed, 9),
            (FileState::Quarantined, 11),
            (FileState::Vanished, 12),
        ] {
            assert_eq!(postcard::to_allocvec(&state).unwrap(), [index], "{state:?}");
        }
    }

    #[test]
    fn error_kinds_keep_their_stored_index() {
        // A file record stores its last error's kind by variant index: new kinds go last.
        use crate::endpoint::ErrorKind as K;
        let kinds = [
            K::NotFound,
            K::AlreadyExists,
            K::PermissionDenied,
            K::AuthFailed,
            K::HostKey,
            K::Transient,
            K::Protocol,
            K::Config,
            K::LocalIo,
            K::StateFull,
            K::NoSpace,
        ];
        for (index, kind) in kinds.iter().enumerate() {
            assert_eq!(postcard::to_allocvec(kind).unwrap(), [index as u8], "{kind:?}");
        }
    }

    #[test]
    fn json_names_states_and_statuses_as_the_text_output_does() {
        // Before, JSON had the Rust names (`"Aborted"`, `"Done"`) where the tables say `aborted`.
        let states = [
            FileState::Claimed,
            FileState::Staging,
            FileState::Staged,
            FileState::Delivering,
            FileState::Delivered,
            FileState::Disposing,
            FileState::Done,
            FileState::Failed,
            FileState::Duplicate,
            FileState::Processed,
            FileState::Quarantining,
            FileState::Quarantined,
            FileState::Vanished,
        ];
        for s in states {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str(), "{s:?}");
        }
        for s in [RunStatus::Running, RunStatus::Ok, RunStatus::Failed, RunStatus::Aborted] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str(), "{s:?}");
        }
    }

    #[test]
    fn a_second_open_reports_busy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let _l = Ledger::open(&p).unwrap();
        assert!(matches!(Ledger::open(&p), Err(LedgerError::Busy(_))));
    }

    #[test]
    fn tables_lists_what_init_creates() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        drop(Ledger::open(&p).unwrap());
        let r = Ledger::open_read_only(&p).unwrap();
        assert_eq!(r.missing_tables().unwrap(), Vec::<&str>::new());
        let mut created: Vec<String> = r.read(|tx| Ok(tx.list_tables()?.map(|t| t.name().to_string()).collect())).unwrap();
        let mut listed: Vec<String> = TABLES.iter().map(|t| t.to_string()).collect();
        created.sort();
        listed.sort();
        assert_eq!(created, listed);
    }

    /// A writer killed (SIGKILL, power cut) leaves a file redb repairs only for a writer: a
    /// read-only command (`wharf runs` right after the crash) repairs it when no writer has it
    /// open, and reads what was committed.
    #[test]
    fn a_reader_after_a_killed_writer_repairs_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (live, crashed) = (dir.path().join("live.redb"), dir.path().join("ledger.redb"));
        let w = Ledger::open(&live).unwrap();
        w.begin_run("a", 1).unwrap();
        // The file as a killed writer leaves it: copied while the writer has it open.
        std::fs::copy(&live, &crashed).unwrap();
        let r = Ledger::open_read_only(&crashed).unwrap();
        assert_eq!(r.runs(None, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_reader_beside_the_writer_follows_its_commits_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let w = Ledger::open(&p).unwrap();
        w.begin_run("a", 1).unwrap();
        let r = Ledger::open_read_only(&p).unwrap();
        assert!(!r.is_writer() && w.is_writer());
        assert_eq!(r.runs(None, 10).unwrap().len(), 1);
        let mut run = w.begin_run("a", 2).unwrap();
        run.status = RunStatus::Ok;
        w.finish_run(&run).unwrap();
        let seen = r.runs(Some("a"), 10).unwrap();
        assert_eq!(seen.iter().map(|r| (r.id, r.status)).collect::<Vec<_>>(), vec![(2, RunStatus::Ok), (1, RunStatus::Running)]);
        assert!(matches!(r.begin_run("a", 3), Err(LedgerError::ReadOnly(_))));
        assert!(matches!(Ledger::open(&p), Err(LedgerError::Busy(_))));
        // The reader does not keep a writer out once the first is gone.
        drop(w);
        let w2 = Ledger::open(&p).unwrap();
        w2.begin_run("b", 4).unwrap();
        assert_eq!(r.runs(Some("b"), 10).unwrap().len(), 1);
    }

    #[test]
    fn reading_a_ledger_that_does_not_exist_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nothing").join("ledger.redb");
        let err = Ledger::open_read_only(&p).unwrap_err();
        assert!(matches!(err, LedgerError::Missing(_)));
        assert_eq!(err.to_string(), format!("no ledger yet at {} (nothing has run)", p.display()));
        assert!(!p.exists(), "a read-only open creates nothing");
    }

    #[test]
    fn a_state_folder_that_is_a_file_is_named_as_such() {
        // `--state-dir` pointing at a file (or below one): the writer said "cannot create its
        // folder: File exists", and the readers "no ledger yet (nothing has run)", exit 0.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state");
        std::fs::write(&file, "not a folder").unwrap();
        let want = format!(
            "state folder {}: {} is a file, not a folder; give --state-dir (or WHARF_STATE_DIR) a folder",
            file.display(),
            file.display()
        );
        let p = file.join("ledger.redb");
        for err in [Ledger::open(&p).err().unwrap(), Ledger::open_read_only(&p).err().unwrap()] {
            assert!(matches!(err, LedgerError::NotAFolder { .. }), "{err:?}");
            assert_eq!(err.to_string(), want);
        }
        let below = file.join("deeper").join("ledger.redb");
        let err = Ledger::open(&below).err().unwrap();
        assert!(matches!(&err, LedgerError::NotAFolder { blocker, .. } if *blocker == file), "{err:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a folder", "the file is left alone");
    }

    #[test]
    fn last_runs_gives_latest_latest_ok_and_failing_streak() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(l.last_runs("f").unwrap(), LastRuns::default());
        let finish = |status, started| {
            let mut r = l.begin_run("f", started).unwrap();
            r.status = status;
            l.finish_run(&r).unwrap();
            r
        };
        finish(RunStatus::Failed, 1);
        let ok = finish(RunStatus::Ok, 2);
        finish(RunStatus::Aborted, 3);
        l.begin_run("other", 4).unwrap();
        finish(RunStatus::Failed, 5);
        let running = l.begin_run("f", 6).unwrap();
        let h = l.last_runs("f").unwrap();
        assert_eq!(h.last.map(|r| r.id), Some(running.id));
        assert_eq!(h.last_ok.map(|r| r.id), Some(ok.id));
        assert_eq!(h.failing_streak, 2);
        assert_eq!(l.runs(Some("f"), 2).unwrap().iter().map(|r| r.started).collect::<Vec<_>>(), vec![6, 5]);
    }
}
