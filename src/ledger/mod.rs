//! The ledger: wharf's state in one embedded redb database.
//!
//! It records every file seen (its identity and lifecycle state), every delivered identity,
//! readiness observations across polls, every run, awaited responses of round trips and the
//! event log (`awaits`). Each engine transition is one durable
//! (fsynced) write transaction, which is what makes a crash at any point resumable: the next
//! run reads where each file stood and carries on from there.
//!
//! This module owns the table layout and the typed API over it; it knows nothing about
//! endpoints or flows beyond their names. redb allows one process per database file: a second
//! `wharf run` on the same state folder gets [`LedgerError::Busy`].

pub mod awaits;
mod codec;
pub mod events;
pub mod records;

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

pub use awaits::{AwaitRecord, AwaitState, Registered};
use codec::Postcard;
pub use events::{Event, EventKind, FlowHealth, NewEvent};
pub use records::*;

const FILES: TableDefinition<(&str, &str), Postcard<FileRecord>> = TableDefinition::new("files_v1");
const DONE: TableDefinition<(&str, &str), Postcard<DoneRecord>> = TableDefinition::new("done_v1");
const OBSERVATIONS: TableDefinition<(&str, &str), Postcard<Observation>> = TableDefinition::new("observations_v1");
const RUNS: TableDefinition<(&str, u64), Postcard<RunRecord>> = TableDefinition::new("runs_v1");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters_v1");
const FILE_RESULTS: TableDefinition<(&str, &str), Postcard<FileResult>> = TableDefinition::new("file_results_v1");
const RUN_CONTENT: TableDefinition<(&str, u64), Postcard<RunContent>> = TableDefinition::new("run_content_v1");

/// A ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another process holds the database.
    #[error("ledger {0} is in use by another wharf process")]
    Busy(PathBuf),
    #[error("ledger {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    #[error("ledger {path}: cannot create its folder: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Handle to the ledger database.
pub struct Ledger {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.path.display())
    }
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
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| LedgerError::Io { path: path.to_path_buf(), source })?;
        }
        let db = match Database::create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(LedgerError::Busy(path.to_path_buf())),
            Err(e) => return Err(LedgerError::Db { path: path.to_path_buf(), source: e.into() }),
        };
        let ledger = Ledger { db, path: path.to_path_buf() };
        ledger.init()?;
        Ok(ledger)
    }

    /// An in-memory ledger, for tests.
    pub fn in_memory() -> Result<Self, LedgerError> {
        let path = PathBuf::from(":memory:");
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(|e| LedgerError::Db { path: path.clone(), source: e.into() })?;
        let ledger = Ledger { db, path };
        ledger.init()?;
        Ok(ledger)
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl Into<redb::Error>) -> LedgerError {
        LedgerError::Db { path: self.path.clone(), source: e.into() }
    }

    /// Creates the tables so read transactions never see a missing table.
    fn init(&self) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(FILES)?;
            tx.open_table(DONE)?;
            tx.open_table(OBSERVATIONS)?;
            tx.open_table(RUNS)?;
            tx.open_table(COUNTERS)?;
            tx.open_table(FILE_RESULTS)?;
            tx.open_table(RUN_CONTENT)?;
            Self::init_awaits(tx)?;
            Self::init_events(tx)
        })
    }

    /// Runs `f` in one durable write transaction.
    fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>) -> Result<T, LedgerError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let out = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>) -> Result<T, LedgerError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        f(&tx).map_err(|e| self.err(e))
    }

    // ---- runs ----

    /// Starts a run: allocates its number and records it as running.
    pub fn begin_run(&self, flow: &str, started: Millis) -> Result<RunRecord, LedgerError> {
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let id = counters.get("run")?.map(|v| v.value()).unwrap_or(0) + 1;
            counters.insert("run", id)?;
            let rec = RunRecord { id, flow: flow.to_string(), started, ..Default::default() };
            tx.open_table(RUNS)?.insert((flow, id), &rec)?;
            Ok(rec)
        })
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
            for item in t.iter()? {
                let (k, v) = item?;
                if flow.is_none_or(|f| f == k.value().0) {
                    out.push(v.value());
                }
            }
            out.sort_by_key(|r| std::cmp::Reverse(r.id));
            out.truncate(limit);
            Ok(out)
        })
    }

    // ---- files ----

    /// The record for `path` in `flow`, if any.
    pub fn file(&self, flow: &str, path: &str) -> Result<Option<FileRecord>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(FILES)?.get((flow, path))?.map(|v| v.value())))
    }

    /// Every file record of `flow`, by path.
    pub fn files(&self, flow: &str) -> Result<Vec<FileRecord>, LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(FILES)?;
            let mut out = Vec::new();
            for item in t.range::<(&str, &str)>(flow_range(flow))? {
                out.push(item?.1.value());
            }
            Ok(out)
        })
    }

    /// Durably stores a file record (one lifecycle transition).
    pub fn put_file(&self, flow: &str, rec: &FileRecord) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(FILES)?.insert((flow, rec.path.as_str()), rec)?;
            Ok(())
        })
    }

    /// Marks a file done and records its identity as delivered, in one transaction, and
    /// forgets its readiness observation.
    pub fn complete(&self, flow: &str, rec: &FileRecord, done: &DoneRecord) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(FILES)?.insert((flow, rec.path.as_str()), rec)?;
            tx.open_table(DONE)?.insert((flow, rec.identity.as_str()), done)?;
            tx.open_table(OBSERVATIONS)?.remove((flow, rec.path.as_str()))?;
            Ok(())
        })
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

    /// Stores a file record and its content result in one transaction (one transition).
    pub fn put_file_and_result(&self, flow: &str, rec: &FileRecord, result: &FileResult) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(FILES)?.insert((flow, rec.path.as_str()), rec)?;
            tx.open_table(FILE_RESULTS)?.insert((flow, rec.path.as_str()), result)?;
            Ok(())
        })
    }

    /// Forgets a file entirely (record, content result, observation): the next run treats it as new.
    pub fn forget_file(&self, flow: &str, path: &str) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(FILES)?.remove((flow, path))?;
            tx.open_table(FILE_RESULTS)?.remove((flow, path))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str, state: FileState) -> FileRecord {
        FileRecord { path: path.into(), identity: format!("id:{path}"), state, ..Default::default() }
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
        for (state, index) in
            [(FileState::Claimed, 0u8), (FileState::Duplicate, 8), (FileState::Processed, 9), (FileState::Quarantined, 11)]
        {
            assert_eq!(postcard::to_allocvec(&state).unwrap(), [index], "{state:?}");
        }
    }

    #[test]
    fn a_second_open_reports_busy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let _l = Ledger::open(&p).unwrap();
        assert!(matches!(Ledger::open(&p), Err(LedgerError::Busy(_))));
    }
}
