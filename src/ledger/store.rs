//! The database handle a [`Ledger`] and its [`Committer`]s share: reads and writes through
//! it, the lazy writes stored with the next durable one, and its recovery after a failed write
//! (the rules are in the ledger's module doc). It stores file transitions, and is the one place
//! file records are written or removed ([`FileTables`], which keeps the in-flight and delivery
//! indexes in step); every other record is the typed API's (`ledger/mod.rs` and its siblings).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use redb::{ConcurrencyMode, Database, ReadOnlyDatabase, ReadableDatabase};

use redb::{ReadableTable, TableDefinition, TableHandle};

use super::codec::Postcard;
use super::error::{db_error, open_error};
use super::forget::Span;
use super::layout;
use super::quarantined::{self, EARLIER};
use super::{
    DONE, DoneRecord, EarlierQuarantine, FILE_RESULTS, FILE_WARNINGS, FILES, FileRecord, FileResult, FileState, FileWarning, LedgerError,
    Millis, OBSERVATIONS,
};
#[cfg(doc)]
use super::{Ledger, Snapshot};

/// What a [`Ledger`] and its [`Committer`]s share.
pub(super) struct Core {
    /// Replaced only by [`Ledger::recover`], which waits for the transactions under way.
    db: std::sync::RwLock<Handle>,
    /// How many times the database was opened again ([`Ledger::recover`]): a [`Snapshot`]
    /// taken before the last time reads on in a new transaction.
    pub(super) reopened: std::sync::atomic::AtomicU64,
    pub(super) path: PathBuf,
    /// File records written lazily and not stored yet, by (flow, path).
    pending: std::sync::Mutex<Pending>,
    /// The first I/O error a write met: after it redb only says "previous I/O error", and
    /// the cause (a full disk, say) belongs in every message that follows.
    first_io: std::sync::Mutex<Option<FirstIo>>,
}

/// The I/O error after which redb takes no more writes through a handle.
#[derive(Debug, Clone)]
struct FirstIo {
    text: String,
    no_space: bool,
}

pub(super) type Pending = BTreeMap<(String, String), FileRecord>;

/// Stores group commits from another thread than the [`Ledger`]'s own (`engine::commits` runs
/// them on tokio's blocking pool so the files in flight keep moving during the fsyncs). It
/// shares the ledger's database and lazy writes: a commit through it is exactly
/// [`Ledger::commit`].
#[derive(Clone)]
pub struct Committer {
    pub(super) core: Arc<Core>,
}

impl Committer {
    /// Like [`Ledger::commit`].
    pub fn commit(&self, transitions: &[Transition]) -> Result<(), LedgerError> {
        self.core.commit(transitions)
    }
}

/// The writer's handle, or a reader's beside another process's writer.
pub(super) enum Handle {
    Write(Database),
    Read(ReadOnlyDatabase),
    /// A reader's copy in memory of a file that needs a repair no one could make on disk
    /// (the state folder is full): repaired there, read there, never written back.
    Copy(Database),
    /// Between closing a database that failed and opening it again ([`Ledger::recover`]).
    Closed,
}

/// The most memory redb's page cache takes (per open ledger file). redb's own default is 1
/// GiB, and a cache fills with whatever is read: `wharf files` reads all of a
/// flow's file records, the daily pruning every record, so a daemon's memory would grow with its ledger, for
/// months, to the whole file. The system's page cache still holds the file; the 64 MiB hold
/// every table of a ledger of some 300,000 file records. (Tests use a small one, so that
/// one of a few MiB shows the bound.)
pub(super) const CACHE_BYTES: usize = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// redb's builder in the mode every wharf process uses (see the ledger's module doc).
pub(super) fn builder() -> redb::Builder {
    let mut b = Database::builder();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    b.set_cache_size(CACHE_BYTES);
    b
}

/// Opens the file at `path` as its one writer (creating it if needed: then `true`), for
/// [`Ledger::open`] and for a recovery's reopen: another process writing it already is
/// [`LedgerError::Busy`]; a ledger a newer layout wrote is refused
/// ([`LedgerError::NewerLayout`]) before anything is written.
pub(super) fn open_writer(path: &std::path::Path) -> Result<(Database, bool), LedgerError> {
    // A look at the marker without writing first: opening as the writer writes the file's
    // header, even to refuse it then, and a refused file is left as it was. (A file this
    // cannot open, one needing a repair say, is checked below, after the writer's repair.)
    if let Ok(db) = builder().open_read_only(path)
        && let Err(e @ LedgerError::NewerLayout { .. }) = layout::check(path, &db)
    {
        return Err(e);
    }
    // Whether this makes the file: none there yet (a file that cannot be looked at is opened,
    // or refused, below as before).
    let created = matches!(std::fs::symlink_metadata(path), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
    let db = match builder().create(path) {
        Ok(db) => db,
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(LedgerError::Busy(path.to_path_buf())),
        Err(e) => return Err(open_error(path, e)),
    };
    // Checked as the writer, before anything is written: no other process can write the file
    // from here on, so what the marker says stays true.
    layout::check(path, &db)?;
    Ok((db, created))
}

impl Core {
    pub(super) fn new(db: Handle, path: PathBuf) -> Self {
        let db = std::sync::RwLock::new(db);
        Core { db, reopened: Default::default(), path, pending: Default::default(), first_io: Default::default() }
    }

    pub(super) fn err(&self, e: impl Into<redb::Error>) -> LedgerError {
        let e = e.into();
        let mut first = crate::sync::lock(&self.first_io);
        match &e {
            redb::Error::Io(io) => {
                let no_space = crate::durable::no_space(io);
                first.get_or_insert_with(|| FirstIo { text: io.to_string(), no_space });
                if no_space {
                    return LedgerError::StateFull { path: self.path.clone() };
                }
            }
            redb::Error::PreviousIo => match first.as_ref() {
                Some(f) if f.no_space => return LedgerError::StateFull { path: self.path.clone() },
                Some(f) => return LedgerError::Unusable { path: self.path.clone(), cause: f.text.clone() },
                None => {}
            },
            _ => {}
        }
        db_error(&self.path, e)
    }

    /// The database handle (a poisoned lock only means a panic elsewhere while it was held:
    /// the handle is whole, replaced in one assignment).
    pub(super) fn handle(&self) -> std::sync::RwLockReadGuard<'_, Handle> {
        self.db.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The handle to read or write through: opened again first when a recovery left it
    /// closed (its reopen failed for lack of space, which may be back by now).
    pub(super) fn open_handle(&self) -> Result<std::sync::RwLockReadGuard<'_, Handle>, LedgerError> {
        let handle = self.handle();
        if !matches!(*handle, Handle::Closed) {
            return Ok(handle);
        }
        // Not held across the reopen, which takes the lock for writing.
        drop(handle);
        self.recover()?;
        Ok(self.handle())
    }

    /// How many bytes redb's page cache holds now (0 for a closed handle).
    #[cfg(test)]
    pub(super) fn cache_used(&self) -> usize {
        use redb::ReadableDatabase as _;
        match &*self.handle() {
            Handle::Write(db) | Handle::Copy(db) => db.cache_stats().used_bytes(),
            Handle::Read(db) => db.cache_stats().used_bytes(),
            Handle::Closed => 0,
        }
    }

    /// Runs `f` in a read transaction (see [`Ledger::read`]).
    pub(super) fn read<T>(&self, f: impl FnOnce(&redb::ReadTransaction) -> Result<T, redb::Error>) -> Result<T, LedgerError> {
        // Held until `f` is done: a `recover` (another flow's run, after a full disk) waits
        // for it instead of closing the database under the transaction. `f` never calls back
        // into the ledger, so the lock is not taken twice.
        let handle = self.open_handle()?;
        let tx = match &*handle {
            Handle::Write(db) | Handle::Copy(db) => db.begin_read(),
            Handle::Read(db) => db.begin_read(),
            // Closed again by a recovery that failed since `open_handle` reopened it.
            Handle::Closed => Err(redb::TransactionError::Storage(redb::StorageError::PreviousIo)),
        }
        .map_err(|e| self.err(e))?;
        f(&tx).map_err(|e| self.err(e))
    }

    pub(super) fn recover(&self) -> Result<(), LedgerError> {
        if crate::sync::lock(&self.first_io).is_none() {
            return Ok(());
        }
        let mut db = self.db.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !matches!(*db, Handle::Write(_) | Handle::Closed) {
            return Ok(());
        }
        // Closed first: redb lets one handle of a process have the file. Closing a database
        // after a failed write leaves it marked for repair, which opening it again makes.
        *db = Handle::Closed;
        let (reopened, _) = open_writer(&self.path)?;
        *db = Handle::Write(reopened);
        self.reopened.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        *crate::sync::lock(&self.first_io) = None;
        tracing::info!(ledger = %self.path.display(), "The ledger was opened again after a failed write, and repaired.");
        Ok(())
    }

    /// The lazily written records not stored yet. A poisoned lock only means a panic elsewhere
    /// while it was held; the map itself is always whole (one insert or take at a time).
    pub(super) fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        crate::sync::lock(&self.pending)
    }

    /// Runs `f` in one durable write transaction, after storing every lazy write before it.
    ///
    /// The lazy writes are copied once the transaction has begun (redb lets one write
    /// transaction in at a time, so they are copied in the order the transactions commit) and
    /// dropped after the commit unless rewritten meanwhile. The lock on them is never held
    /// across the commit's fsyncs: the run's task keeps reading and writing lazily while a
    /// group commit is stored on another thread.
    pub(super) fn write<T>(&self, f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>) -> Result<T, LedgerError> {
        let handle = self.open_handle()?;
        let db = match &*handle {
            Handle::Write(db) => db,
            Handle::Closed => return Err(self.err(redb::Error::PreviousIo)),
            Handle::Read(_) | Handle::Copy(_) => return Err(LedgerError::ReadOnly(self.path.clone())),
        };
        let tx = db.begin_write().map_err(|e| self.err(e))?;
        let stored = self.pending().clone();
        if !stored.is_empty() {
            store_pending(&tx, &stored).map_err(|e| self.err(e))?;
        }
        let out = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        if !stored.is_empty() {
            self.pending().retain(|k, v| stored.get(k) != Some(v));
        }
        Ok(out)
    }

    /// Compacts the file (see [`Ledger::compact`]): the lazy writes stored first, then redb's
    /// compaction, repeated until it has nothing more to move, under the handle's write lock
    /// (no read or write of this process meanwhile).
    pub(super) fn compact(&self) -> Result<(), LedgerError> {
        self.flush()?;
        let mut db = self.db.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Handle::Write(db) = &mut *db else { return Err(LedgerError::ReadOnly(self.path.clone())) };
        while db.compact().map_err(|e| self.err(e))? {}
        Ok(())
    }

    pub(super) fn flush(&self) -> Result<(), LedgerError> {
        if self.pending().is_empty() {
            return Ok(());
        }
        self.write(|_| Ok(()))
    }

    pub(super) fn commit(&self, transitions: &[Transition]) -> Result<(), LedgerError> {
        self.write(|tx| {
            // Opened once for the whole group (a commit may hold thousands of transitions).
            let files = &mut FileTables::open(tx)?;
            for t in transitions {
                apply(tx, files, t)?;
            }
            Ok(())
        })
    }
}

/// Stores one transition inside `tx`.
fn apply(tx: &redb::WriteTransaction, files: &mut FileTables<'_>, t: &Transition) -> Result<(), redb::Error> {
    match t {
        Transition::File { flow, rec } => apply_file(files, flow, rec),
        Transition::Complete { flow, rec, done } => apply_complete(tx, files, flow, rec, done),
        Transition::Result { flow, rec, result } => apply_result(files, flow, rec, result),
        Transition::NoResult { flow, rec } => apply_no_result(files, flow, rec),
        Transition::Processed { flow, rec, result, warning } => {
            apply_result(files, flow, rec, result)?;
            Ok(files.set_warning(flow, &rec.path, warning.as_ref())?)
        }
        Transition::WithEvent { transition, event } => {
            apply(tx, files, transition)?;
            super::events::append(tx, event).map(drop)
        }
    }
}

/// One durable transition of a file, for [`Ledger::commit`]: what `put_file`, `complete` and
/// `put_file_and_result` store. `NoResult` stores the record and removes its content result
/// (a quarantine of a given-up file that failed, undone: the file had no result before).
/// `Processed` is the content steps' verdict: a `Result` with their warning about a file they
/// let through, which replaces (`None`: removes) the one an earlier run gave. `WithEvent` is
/// a transition and the event it raises, stored in one transaction (a file recorded
/// quarantined and its `quarantined` event: a process killed after the commit leaves both, a
/// process killed before it neither).
#[derive(Debug, Clone)]
pub enum Transition {
    File { flow: String, rec: FileRecord },
    Complete { flow: String, rec: FileRecord, done: DoneRecord },
    Result { flow: String, rec: FileRecord, result: FileResult },
    NoResult { flow: String, rec: FileRecord },
    Processed { flow: String, rec: FileRecord, result: FileResult, warning: Option<FileWarning> },
    WithEvent { transition: Box<Transition>, event: super::NewEvent },
}

/// The in-flight index: (flow, path) of every file record in flight ([`FileState::in_flight`]),
/// so that a run finds what it resumes without reading all its flow's records (a flow with a
/// long `history` holds hundreds of thousands of finished ones). Kept in step with `files_v3`
/// by [`FileTables`], the one way file records are written or removed; built on open for a
/// ledger an older wharf wrote ([`index_in_flight`]).
///
/// [`FileState::in_flight`]: super::FileState::in_flight
pub(super) const IN_FLIGHT: TableDefinition<(&str, &str), ()> = TableDefinition::new("in_flight_v1");

/// The delivery index: (flow, when, path) of every file record `done`, `when` being its
/// `updated` (when it was delivered), so that `expect:` finds the deliveries of a time window
/// without reading all its flow's records ([`Ledger::delivered_in`]). Kept in step with
/// `files_v3` as [`IN_FLIGHT`] is, by [`FileTables`]; built on open for a ledger an older wharf
/// wrote ([`build_indexes`]).
pub(super) const DELIVERED: TableDefinition<(&str, Millis, &str), ()> = TableDefinition::new("delivered_at_v1");

/// When `rec` was delivered, if it is `done`: its key in [`DELIVERED`].
fn delivered_at(rec: &FileRecord) -> Option<Millis> {
    (rec.state == FileState::Done).then_some(rec.updated)
}

type FilesTable<'tx> = redb::Table<'tx, (&'static str, &'static str), Postcard<FileRecord>>;
type ResultsTable<'tx> = redb::Table<'tx, (&'static str, &'static str), Postcard<FileResult>>;
type WarningsTable<'tx> = redb::Table<'tx, (&'static str, &'static str), Postcard<FileWarning>>;
type EarlierTable<'tx> = redb::Table<'tx, (&'static str, &'static str, Millis), Postcard<EarlierQuarantine>>;

/// The file records of one write transaction with their indexes (in flight, delivered), their
/// content results and the quarantined files of earlier generations: every write or removal of
/// a file record goes through here, which keeps the indexes in step and keeps a quarantined
/// file a newer file replaces ([`quarantined::supersedes`]).
pub(super) struct FileTables<'tx> {
    /// For reading; writes go through [`put`](Self::put) and [`remove`](Self::remove).
    pub(super) files: FilesTable<'tx>,
    indexes: Indexes<'tx>,
    results: ResultsTable<'tx>,
    /// The content steps' warnings, which go with their results.
    warnings: WarningsTable<'tx>,
    earlier: EarlierTable<'tx>,
}

impl<'tx> FileTables<'tx> {
    pub(super) fn open(tx: &'tx redb::WriteTransaction) -> Result<Self, redb::TableError> {
        Ok(FileTables {
            files: tx.open_table(FILES)?,
            indexes: Indexes { in_flight: tx.open_table(IN_FLIGHT)?, delivered: tx.open_table(DELIVERED)? },
            results: tx.open_table(FILE_RESULTS)?,
            warnings: tx.open_table(FILE_WARNINGS)?,
            earlier: tx.open_table(EARLIER)?,
        })
    }

    /// Stores `rec` as `flow`'s record of its path. A quarantined file (or one being
    /// quarantined, its copy named) that `rec`, a newer file under its path, replaces is kept
    /// in `quarantined_earlier_v1` with its content result, in this same transaction:
    /// `wharf quarantine` still lists and releases it.
    pub(super) fn put(&mut self, flow: &str, rec: &FileRecord) -> Result<(), redb::StorageError> {
        let old = self.files.insert((flow, rec.path.as_str()), rec)?.map(|v| v.value());
        self.indexes.update(flow, &rec.path, old.as_ref(), Some(rec))?;
        if let Some(old) = old.filter(|old| quarantined::supersedes(old, rec)) {
            self.keep_earlier(flow, old, rec.updated)?;
        }
        Ok(())
    }

    /// Removes `flow`'s record of `rec`'s path with its content result and warning, as
    /// [`remove`](Self::remove) does, keeping `rec` (the record as it is to be kept) with its
    /// content result in `quarantined_earlier_v1` when its result names a quarantine copy:
    /// a file given up whose copy, if made, is where nothing else would list it. Whether it
    /// was kept.
    pub(super) fn remove_keeping_copy(&mut self, flow: &str, rec: FileRecord, at: Millis) -> Result<bool, redb::StorageError> {
        let path = rec.path.clone();
        let old = self.files.remove((flow, path.as_str()))?.map(|v| v.value());
        self.indexes.update(flow, &path, old.as_ref(), None)?;
        self.keep_earlier(flow, rec, at)
    }

    /// Moves `old`, a quarantined record replaced at `replaced`, with its content result into
    /// `quarantined_earlier_v1`, keyed by when it was quarantined (the next free millisecond
    /// when two were at once). One with no copy named (being quarantined, the copy not chosen
    /// yet: nothing was put aside) is not kept. Whether it was kept.
    fn keep_earlier(&mut self, flow: &str, old: FileRecord, replaced: Millis) -> Result<bool, redb::StorageError> {
        let path = old.path.clone();
        self.warnings.remove((flow, path.as_str()))?;
        let Some(result) = self.results.remove((flow, path.as_str()))?.map(|v| v.value()) else { return Ok(false) };
        let Some(q) = result.quarantine.as_ref().filter(|q| q.copy.is_some()) else { return Ok(false) };
        let mut at = q.at;
        while self.earlier.get((flow, path.as_str(), at))?.is_some() {
            at += 1;
        }
        let kept = EarlierQuarantine { rec: old, result, replaced };
        self.earlier.insert((flow, path.as_str(), at), &kept)?;
        Ok(true)
    }

    /// Stores `flow`'s content result of `path`.
    pub(super) fn put_result(&mut self, flow: &str, path: &str, result: &FileResult) -> Result<(), redb::StorageError> {
        self.results.insert((flow, path), result)?;
        Ok(())
    }

    /// Removes `flow`'s content result of `path`, and its warning.
    pub(super) fn remove_result(&mut self, flow: &str, path: &str) -> Result<(), redb::StorageError> {
        self.results.remove((flow, path))?;
        self.warnings.remove((flow, path))?;
        Ok(())
    }

    /// Stores (`None`: removes) the content steps' warning about `flow`'s `path`.
    pub(super) fn set_warning(&mut self, flow: &str, path: &str, warning: Option<&FileWarning>) -> Result<(), redb::StorageError> {
        match warning {
            Some(w) => self.warnings.insert((flow, path), w)?,
            None => self.warnings.remove((flow, path))?,
        };
        Ok(())
    }

    /// Removes up to `budget` records of `range` (a flow's: `forget::named`) with their
    /// warnings, lowering the budget by as many.
    pub(super) fn drain(&mut self, range: Span<(&str, &str)>, budget: &mut usize) -> Result<usize, redb::StorageError> {
        let mut n = 0;
        for item in self.files.extract_from_if(range, |_, _| true)?.take(*budget) {
            let (key, rec) = item?;
            let (flow, path) = key.value();
            self.indexes.update(flow, path, Some(&rec.value()), None)?;
            self.warnings.remove((flow, path))?;
            n += 1;
        }
        *budget -= n;
        Ok(n)
    }

    /// Removes `flow`'s record of `path` with its content result and warning (and says whether
    /// there was a record). The quarantined files of earlier generations under the path stay.
    pub(super) fn remove(&mut self, flow: &str, path: &str) -> Result<bool, redb::StorageError> {
        self.remove_result(flow, path)?;
        let old = self.files.remove((flow, path))?.map(|v| v.value());
        self.indexes.update(flow, path, old.as_ref(), None)?;
        Ok(old.is_some())
    }

    /// Removes the quarantined file of an earlier generation of `flow`'s `path` kept under
    /// `at` (and says whether there was one).
    pub(super) fn remove_earlier(&mut self, flow: &str, path: &str, at: Millis) -> Result<bool, redb::StorageError> {
        Ok(self.earlier.remove((flow, path, at))?.is_some())
    }
}

/// The indexes of the file records of one write transaction (see [`FileTables`]).
struct Indexes<'tx> {
    in_flight: redb::Table<'tx, (&'static str, &'static str), ()>,
    delivered: redb::Table<'tx, (&'static str, Millis, &'static str), ()>,
}

impl Indexes<'_> {
    /// Keeps the indexes in step with `flow`'s record of `path` going from `old` to `new`
    /// (`None`: no record).
    fn update(&mut self, flow: &str, path: &str, old: Option<&FileRecord>, new: Option<&FileRecord>) -> Result<(), redb::StorageError> {
        if new.is_some_and(|r| r.state.in_flight()) {
            self.in_flight.insert((flow, path), ())?;
        } else {
            self.in_flight.remove((flow, path))?;
        }
        let (was, is) = (old.and_then(delivered_at), new.and_then(delivered_at));
        if was != is {
            if let Some(at) = was {
                self.delivered.remove((flow, at, path))?;
            }
            if let Some(at) = is {
                self.delivered.insert((flow, at, path), ())?;
            }
        }
        Ok(())
    }
}

/// Builds the indexes ([`IN_FLIGHT`], [`DELIVERED`]) the ledger has none of yet (last written
/// by a wharf without them) from the file records: one read of every record, once.
pub(super) fn build_indexes(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
    let present: Vec<String> = tx.list_tables()?.map(|t| t.name().to_string()).collect();
    let missing = |name: &str| !present.iter().any(|p| p == name);
    let (in_flight, delivered) = (missing(IN_FLIGHT.name()), missing(DELIVERED.name()));
    if !in_flight && !delivered {
        return Ok(());
    }
    let files = tx.open_table(FILES)?;
    let (mut in_flight_index, mut delivered_index) = (tx.open_table(IN_FLIGHT)?, tx.open_table(DELIVERED)?);
    for row in files.iter()? {
        let (key, rec) = row?;
        let ((flow, path), rec) = (key.value(), rec.value());
        if in_flight && rec.state.in_flight() {
            in_flight_index.insert((flow, path), ())?;
        }
        if let Some(at) = delivered_at(&rec).filter(|_| delivered) {
            delivered_index.insert((flow, at, path), ())?;
        }
    }
    Ok(())
}

pub(super) fn apply_file(t: &mut FileTables, flow: &str, rec: &FileRecord) -> Result<(), redb::Error> {
    t.put(flow, rec)?;
    Ok(())
}

pub(super) fn apply_complete(
    tx: &redb::WriteTransaction,
    t: &mut FileTables,
    flow: &str,
    rec: &FileRecord,
    done: &DoneRecord,
) -> Result<(), redb::Error> {
    t.put(flow, rec)?;
    tx.open_table(DONE)?.insert((flow, rec.identity.as_str()), done)?;
    tx.open_table(OBSERVATIONS)?.remove((flow, rec.path.as_str()))?;
    Ok(())
}

pub(super) fn apply_result(t: &mut FileTables, flow: &str, rec: &FileRecord, result: &FileResult) -> Result<(), redb::Error> {
    t.put(flow, rec)?;
    t.put_result(flow, &rec.path, result)?;
    Ok(())
}

pub(super) fn apply_no_result(t: &mut FileTables, flow: &str, rec: &FileRecord) -> Result<(), redb::Error> {
    t.put(flow, rec)?;
    t.remove_result(flow, &rec.path)?;
    Ok(())
}

fn store_pending(tx: &redb::WriteTransaction, pending: &BTreeMap<(String, String), FileRecord>) -> Result<(), redb::Error> {
    let mut t = FileTables::open(tx)?;
    for ((flow, _), rec) in pending {
        t.put(flow, rec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::super::*;
    use super::*;

    /// A file recorded quarantined and its event are one commit: both stored, in a group
    /// commit as alone, or (the commit failing) neither.
    #[test]
    fn a_transition_with_its_event_is_stored_in_one_commit() {
        let l = Ledger::in_memory().unwrap();
        let event = |path: &str| NewEvent {
            flow: "f".into(),
            at: 5,
            kind: EventKind::Quarantined,
            subject: format!("/{path}"),
            detail: "why".into(),
            run: Some(3),
        };
        let quarantined = |path: &str| Transition::WithEvent {
            transition: Box::new(Transition::Result {
                flow: "f".into(),
                rec: rec(path, FileState::Quarantined),
                result: FileResult::default(),
            }),
            event: event(path),
        };
        l.commit(&[Transition::File { flow: "f".into(), rec: rec("a", FileState::Staged) }, quarantined("b")]).unwrap();
        l.commit(&[quarantined("c")]).unwrap();
        assert_eq!(l.file("f", "b").unwrap().map(|r| r.state), Some(FileState::Quarantined));
        assert_eq!(l.file("f", "c").unwrap().map(|r| r.state), Some(FileState::Quarantined));
        let told: Vec<_> = l.events(Some("f"), 0, 10).unwrap().into_iter().map(|e| (e.subject, e.run, e.kind)).collect();
        assert_eq!(told, [("/b".to_string(), Some(3), EventKind::Quarantined), ("/c".to_string(), Some(3), EventKind::Quarantined)]);
    }

    /// The paths of `flow` in the in-flight index, as stored.
    fn indexed(l: &Ledger, flow: &str) -> Vec<String> {
        l.read(|tx| {
            let t = tx.open_table(IN_FLIGHT)?;
            let mut out = Vec::new();
            for item in t.range::<(&str, &str)>(flow_range(flow))? {
                out.push(item?.0.value().1.to_string());
            }
            Ok(out)
        })
        .unwrap()
    }

    /// The (time, path) of `flow` in the delivery index, as stored.
    fn delivered(l: &Ledger, flow: &str) -> Vec<(Millis, String)> {
        l.read(|tx| {
            let t = tx.open_table(DELIVERED)?;
            let mut out = Vec::new();
            for item in t.range((flow, Millis::MIN, "")..=(flow, Millis::MAX, "\u{10FFFF}"))? {
                let (key, _) = item?;
                let (_, at, path) = key.value();
                out.push((at, path.to_string()));
            }
            Ok(out)
        })
        .unwrap()
    }

    fn at(path: &str, state: FileState, updated: Millis) -> FileRecord {
        FileRecord { updated, ..rec(path, state) }
    }

    fn in_flight(l: &Ledger, flow: &str) -> Vec<String> {
        l.in_flight_files(flow).unwrap().into_iter().map(|r| r.path).collect()
    }

    /// Every run asks for its flow's files in flight: the index that answers lists exactly
    /// them, whichever way a record was written (one transition, a group commit, a lazy
    /// write once stored, a completion, a content result) or removed (`forget_file`,
    /// pruning, `wharf forget`).
    #[test]
    fn the_in_flight_index_follows_every_write_of_a_file_record() {
        use super::super::prune::{ForgetDelivered, Listed, Prune};
        let l = Ledger::in_memory().unwrap();
        l.put_file("f", &rec("a", FileState::Staged)).unwrap();
        l.put_file("f", &rec("b", FileState::Claimed)).unwrap();
        l.put_file("f", &rec("c", FileState::Failed)).unwrap();
        l.put_file("g", &rec("x", FileState::Staging)).unwrap();
        assert_eq!(indexed(&l, "f"), ["a", "b"]);
        let done = DoneRecord { path: "a".into(), run: 1, at: 1, targets: vec![] };
        l.commit(&[
            Transition::Complete { flow: "f".into(), rec: rec("a", FileState::Done), done },
            Transition::Result { flow: "f".into(), rec: rec("c", FileState::Processed), result: FileResult::default() },
            Transition::NoResult { flow: "f".into(), rec: rec("b", FileState::Quarantined) },
            Transition::File { flow: "f".into(), rec: rec("d", FileState::Delivering) },
        ])
        .unwrap();
        assert_eq!(indexed(&l, "f"), ["c", "d"]);
        // A lazy write counts at once, and is indexed when stored.
        l.put_file_with("f", &rec("e", FileState::Staging), Durability::Lazy).unwrap();
        l.put_file_with("f", &rec("d", FileState::Done), Durability::Lazy).unwrap();
        assert_eq!(in_flight(&l, "f"), ["c", "e"]);
        l.flush().unwrap();
        assert_eq!(indexed(&l, "f"), ["c", "e"]);
        l.forget_file("f", "c").unwrap();
        assert_eq!(indexed(&l, "f"), ["e"]);
        // Pruning forgets finished records only; what it leaves in flight stays indexed.
        let listed = Listed::default();
        let p = Prune { flow: "f", cutoff: Millis::MAX, listed: Some(&listed), forget_delivered: ForgetDelivered::Never, limit: 100 };
        assert_eq!(l.prune(&p, 5).unwrap().files, 2);
        assert_eq!((in_flight(&l, "f"), indexed(&l, "f")), (vec!["e".to_string()], vec!["e".to_string()]));
        // `wharf forget`, a chunk at a time.
        for i in 0..5 {
            l.put_file("g", &rec(&format!("y{i}"), FileState::Staged)).unwrap();
        }
        while l.forget("g", 2).unwrap().more {}
        assert!(indexed(&l, "g").is_empty() && in_flight(&l, "g").is_empty());
        assert_eq!(in_flight(&l, "f"), ["e"]);
    }

    /// `expect:` asks for a flow's deliveries by time: the index that answers holds exactly its
    /// `done` records by when they were last changed, whichever way a record was written or
    /// removed (forgotten, pruned, `wharf forget`), and no other flow's.
    #[test]
    fn the_delivery_index_follows_every_write_of_a_file_record() {
        use super::super::prune::{ForgetDelivered, Listed, Prune};
        let l = Ledger::in_memory().unwrap();
        l.put_file("f", &at("a", FileState::Done, 10)).unwrap();
        l.put_file("f", &at("b", FileState::Staged, 20)).unwrap();
        l.put_file("g", &at("x", FileState::Done, 15)).unwrap();
        assert_eq!(delivered(&l, "f"), [(10, "a".to_string())]);
        // Delivered again later (a new version under its name), one taken anew, one completed.
        let done = DoneRecord { path: "b".into(), run: 1, at: 30, targets: vec![] };
        l.commit(&[
            Transition::File { flow: "f".into(), rec: at("a", FileState::Claimed, 25) },
            Transition::Complete { flow: "f".into(), rec: at("b", FileState::Done, 30), done },
            Transition::Result { flow: "f".into(), rec: at("c", FileState::Processed, 31), result: FileResult::default() },
        ])
        .unwrap();
        assert_eq!(delivered(&l, "f"), [(30, "b".to_string())]);
        l.put_file("f", &at("a", FileState::Done, 40)).unwrap();
        l.put_file("f", &at("b", FileState::Done, 41)).unwrap();
        // A lazy write is indexed when stored.
        l.put_file_with("f", &at("c", FileState::Done, 42), Durability::Lazy).unwrap();
        assert_eq!(delivered(&l, "f"), [(40, "a".to_string()), (41, "b".to_string())]);
        l.flush().unwrap();
        assert_eq!(delivered(&l, "f").len(), 3);
        l.forget_file("f", "b").unwrap();
        assert_eq!(delivered(&l, "f"), [(40, "a".to_string()), (42, "c".to_string())]);
        // Pruning forgets the finished records with their index entries; listed ones stay.
        let listed = Listed::of(["c".to_string()]);
        let p = Prune { flow: "f", cutoff: Millis::MAX, listed: Some(&listed), forget_delivered: ForgetDelivered::Never, limit: 100 };
        assert_eq!(l.prune(&p, 50).unwrap().files, 1);
        assert_eq!(delivered(&l, "f"), [(42, "c".to_string())]);
        assert_eq!(l.delivered_in("f", &[(0, 41), (42, 42)]).unwrap(), [false, true]);
        // `wharf forget`, a chunk at a time.
        for i in 0..5 {
            l.put_file("g", &at(&format!("y{i}"), FileState::Done, 100 + i)).unwrap();
        }
        while l.forget("g", 2).unwrap().more {}
        assert!(delivered(&l, "g").is_empty());
        assert_eq!(l.delivered_in("g", &[(0, Millis::MAX)]).unwrap(), [false]);
        assert_eq!(delivered(&l, "f"), [(42, "c".to_string())]);
    }

    /// The content steps' warning about a file they let through is recorded with their result
    /// and replaced by the next verdict; it goes wherever the result or the record goes
    /// (a result removed, the record forgotten, pruned, `wharf forget`), and no other flow's.
    #[test]
    fn a_content_warning_is_kept_with_its_result_and_goes_with_it() {
        use super::super::prune::{ForgetDelivered, Listed, Prune};
        let l = Ledger::in_memory().unwrap();
        let warned = |run: u64| Some(FileWarning { run, at: 5, text: "the header is one column `id;email`".into() });
        let processed = |flow: &str, path: &str, warning: Option<FileWarning>| Transition::Processed {
            flow: flow.into(),
            rec: at(path, FileState::Processed, 5),
            result: FileResult::default(),
            warning,
        };
        let warning = |flow: &str, path: &str| l.file_warning(flow, path).unwrap().map(|w| w.run);
        l.commit(&[processed("f", "a", warned(1)), processed("f", "b", warned(1)), processed("g", "a", warned(2))]).unwrap();
        assert_eq!((warning("f", "a"), warning("g", "a"), warning("f", "c")), (Some(1), Some(2), None));
        // Processed again without one (`wharf quarantine reprocess`, a new version): gone.
        l.commit(&[processed("f", "a", None)]).unwrap();
        assert_eq!(warning("f", "a"), None);
        // Other transitions keep it; one that removes the result takes it along.
        l.commit(&[Transition::File { flow: "f".into(), rec: at("b", FileState::Done, 6) }]).unwrap();
        assert_eq!(warning("f", "b"), Some(1));
        l.commit(&[Transition::NoResult { flow: "f".into(), rec: at("b", FileState::Failed, 7) }]).unwrap();
        assert_eq!(warning("f", "b"), None);
        // Forgotten with the record, pruned with it, and by `wharf forget`.
        l.commit(&[processed("f", "a", warned(3)), processed("f", "b", warned(3)), processed("f", "c", warned(3))]).unwrap();
        l.forget_file("f", "a").unwrap();
        assert_eq!(warning("f", "a"), None);
        l.put_file("f", &at("b", FileState::Done, 8)).unwrap();
        let listed = Listed::default();
        let p = Prune { flow: "f", cutoff: Millis::MAX, listed: Some(&listed), forget_delivered: ForgetDelivered::Never, limit: 100 };
        assert_eq!(l.prune(&p, 9).unwrap().files, 1);
        assert_eq!((warning("f", "b"), warning("f", "c")), (None, Some(3)), "c is in flight: kept");
        while l.forget("f", 1).unwrap().more {}
        assert_eq!((warning("f", "c"), warning("g", "a")), (None, Some(2)));
        use redb::ReadableTableMetadata as _;
        let left = l.read(|tx| Ok(tx.open_table(FILE_WARNINGS)?.len()?)).unwrap();
        assert_eq!(left, 1);
    }

    /// A path's warning is shown for the file it was given to: a newer file under the path
    /// keeps the warning of the one before it until its own steps run, and that is not its
    /// own; a file retried by later runs (its `run` moved on) keeps its own.
    #[test]
    fn a_warning_is_of_the_file_it_was_given_to_not_of_a_newer_one() {
        let l = Ledger::in_memory().unwrap();
        let given = FileWarning { run: 1, at: 5, text: "the header is one column `id;email`".into() };
        let processed = Transition::Processed {
            flow: "f".into(),
            rec: FileRecord { first_seen: 2, ..at("a", FileState::Processed, 5) },
            result: FileResult::default(),
            warning: Some(given.clone()),
        };
        l.commit(&[processed]).unwrap();
        let retried = FileRecord { first_seen: 2, run: 3, ..at("a", FileState::Done, 9) };
        let newer = FileRecord { first_seen: 10, run: 4, ..at("a", FileState::Staging, 10) };
        let other = FileRecord { first_seen: 1, ..at("b", FileState::Done, 9) };
        let got =
            l.warnings_of("f", &[(&retried, None), (&newer, None), (&retried, Some(10)), (&retried, Some(4)), (&other, None)]).unwrap();
        assert_eq!(got, [Some(given.clone()), None, Some(given), None, None]);
        assert_eq!(l.warnings_of("g", &[(&retried, None)]).unwrap(), [None]);
    }

    /// A ledger an older wharf wrote has no indexes: the writer builds them on open, and a
    /// reader before that reads every record instead.
    #[test]
    fn a_ledger_without_the_indexes_gets_them_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let l = Ledger::open(&path).unwrap();
        l.put_file("f", &rec("a", FileState::Staged)).unwrap();
        l.put_file("f", &at("b", FileState::Done, 7)).unwrap();
        l.put_file("g", &rec("c", FileState::Delivered)).unwrap();
        l.write(|tx| Ok(tx.delete_table(IN_FLIGHT).map(drop)?)).unwrap();
        l.write(|tx| Ok(tx.delete_table(DELIVERED).map(drop)?)).unwrap();
        drop(l);
        let r = Ledger::open_read_only(&path).unwrap();
        assert_eq!(r.missing_tables().unwrap(), ["in_flight_v1", "delivered_at_v1"]);
        assert_eq!(in_flight(&r, "f"), ["a"], "read from the records");
        assert_eq!(r.delivered_in("f", &[(0, 6), (7, 7)]).unwrap(), [false, true], "read from the records");
        drop(r);
        let l = Ledger::open(&path).unwrap();
        assert_eq!((indexed(&l, "f"), indexed(&l, "g")), (vec!["a".to_string()], vec!["c".to_string()]));
        assert_eq!(in_flight(&l, "f"), ["a"]);
        assert_eq!((delivered(&l, "f"), delivered(&l, "g")), (vec![(7, "b".to_string())], vec![]));
        // One index missing: that one is built, the other left as it is.
        l.write(|tx| Ok(tx.delete_table(DELIVERED).map(drop)?)).unwrap();
        drop(l);
        let l = Ledger::open(&path).unwrap();
        assert_eq!((indexed(&l, "f"), delivered(&l, "f")), (vec!["a".to_string()], vec![(7, "b".to_string())]));
    }

    /// A ledger in `dir` with 200,000 records of flow `f`, `of(n, path)` the `n`th (for the
    /// figures tests).
    fn ledger_of_200k(dir: &tempfile::TempDir, of: impl Fn(i64, &str) -> FileRecord) -> Ledger {
        let l = Ledger::open(&dir.path().join("ledger.redb")).unwrap();
        for chunk in 0..20 {
            let t: Vec<Transition> = (0..10_000)
                .map(|i| {
                    let n = chunk * 10_000 + i;
                    Transition::File { flow: "f".into(), rec: of(n, &format!("in/file-{n:07}.csv")) }
                })
                .collect();
            l.commit(&t).unwrap();
        }
        l
    }

    /// `l` opened again without its index `table`, and how long the open (building it) took.
    fn rebuilt(l: Ledger, table: impl TableHandle) -> (Ledger, std::time::Duration) {
        let path = l.path().to_path_buf();
        l.write(|tx| Ok(tx.delete_table(table).map(drop)?)).unwrap();
        drop(l);
        let t = std::time::Instant::now();
        let l = Ledger::open(&path).unwrap();
        (l, t.elapsed())
    }

    /// Figures for `expect:`'s look-up of a missed deadline (no delivery in the window) in a
    /// flow with 200,000 delivered records (run by hand:
    /// `cargo test --lib -- --ignored delivery_look_up_figures --nocapture`).
    #[test]
    #[ignore]
    fn delivery_look_up_figures() {
        let dir = tempfile::tempdir().unwrap();
        // One delivery a minute, for 200,000 minutes (some four and a half months).
        let l = ledger_of_200k(&dir, |n, path| at(path, FileState::Done, n * 60_000));
        // A day's windows, one missed (nothing after the last delivery), one met.
        let end = 200_000 * 60_000;
        let windows = [(end, end + 86_400_000), (end - 3_600_000, end)];
        let mut scanned = vec![false; 2];
        let t = std::time::Instant::now();
        l.scan_deliveries("f", &windows, &BTreeMap::new(), &mut scanned).unwrap();
        let scan = t.elapsed();
        let t = std::time::Instant::now();
        let found = l.delivered_in("f", &windows).unwrap();
        let index = t.elapsed();
        assert_eq!((found.clone(), scanned), (vec![false, true], vec![false, true]));
        let (l, built) = rebuilt(l, DELIVERED);
        assert_eq!(l.delivered_in("f", &windows).unwrap(), found);
        println!("200,000 delivered records, a missed deadline: full scan {scan:?}, index {index:?}; index built on open in {built:?}");
    }

    /// Figures for the in-flight look-up of a flow with 200,000 finished records (run by hand:
    /// `cargo test --lib -- --ignored in_flight_look_up_figures --nocapture`).
    #[test]
    #[ignore]
    fn in_flight_look_up_figures() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger_of_200k(&dir, |n, path| rec(path, if n % 50_000 == 7 { FileState::Staged } else { FileState::Done }));
        let t = std::time::Instant::now();
        let scan = l.files_where("f", |r| r.state.in_flight()).unwrap();
        let scanned = t.elapsed();
        let t = std::time::Instant::now();
        let index = l.in_flight_files("f").unwrap();
        let indexed = t.elapsed();
        assert_eq!(scan, index);
        let (l, built) = rebuilt(l, IN_FLIGHT);
        assert_eq!(l.in_flight_files("f").unwrap(), scan);
        println!("200,000 records, {} in flight: full scan {scanned:?}, index {indexed:?}; index built on open in {built:?}", index.len());
    }

    /// A flow forgotten (or a shorter `history`) leaves the file its size, its pages free for
    /// redb to reuse; compacting gives them back, and keeps every other record.
    #[test]
    fn compacting_gives_back_what_a_forgotten_flow_took() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let l = Ledger::open(&path).unwrap();
        let files = |flow: &str, n: usize| -> Vec<Transition> {
            (0..n).map(|i| Transition::File { flow: flow.into(), rec: rec(&format!("in/file-{i:06}.csv"), FileState::Done) }).collect()
        };
        l.commit(&files("old", 20_000)).unwrap();
        l.commit(&files("kept", 100)).unwrap();
        while l.forget("old", usize::MAX).unwrap().more {}
        let size = || std::fs::metadata(&path).unwrap().len();
        let before = size();
        l.compact().unwrap();
        assert!(size() * 4 < before, "{before} bytes, then {}", size());
        assert_eq!(l.files("kept").unwrap().len(), 100);
        assert!(l.files("old").unwrap().is_empty());
        // Still the writer, and a reader finds it whole.
        l.put_file("kept", &rec("in/new.csv", FileState::Done)).unwrap();
        drop(l);
        assert_eq!(Ledger::open_read_only(&path).unwrap().files("kept").unwrap().len(), 101);
        let r = Ledger::open_read_only(&path).unwrap();
        assert!(matches!(r.compact(), Err(LedgerError::ReadOnly(_))));
    }

    /// A daemon reads every file record of its flows (each run, and the daily pruning): what
    /// redb keeps of them in memory stays within [`CACHE_BYTES`], however large the ledger
    /// grows, in the writer and in a reader alike.
    #[test]
    fn the_page_cache_stays_within_its_bound_as_the_ledger_grows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let l = Ledger::open(&path).unwrap();
        for chunk in 0..5 {
            let t: Vec<Transition> = (0..5_000)
                .map(|i| Transition::File {
                    flow: "f".into(),
                    rec: FileRecord {
                        identity: format!("{chunk}-{i}|1234|1765000000000"),
                        ..rec(&format!("in/orders-{chunk}-{i:06}.csv"), FileState::Done)
                    },
                })
                .collect();
            l.commit(&t).unwrap();
        }
        assert!(std::fs::metadata(&path).unwrap().len() > 2 * CACHE_BYTES as u64, "the ledger outgrows the cache");
        assert_eq!(l.files("f").unwrap().len(), 25_000);
        assert!(l.core.cache_used() <= CACHE_BYTES, "{} bytes cached", l.core.cache_used());
        let r = Ledger::open_read_only(&path).unwrap();
        assert_eq!(r.files("f").unwrap().len(), 25_000);
        assert!(r.core.cache_used() <= CACHE_BYTES, "{} bytes cached by a reader", r.core.cache_used());
    }

    /// After a failed write redb only says "previous I/O error": the first error's cause
    /// (a full disk) is what every later message gives.
    #[test]
    fn errors_after_a_failed_write_keep_its_cause() {
        let l = Ledger::in_memory().unwrap();
        assert!(matches!(l.core.err(redb::Error::PreviousIo), LedgerError::Db { .. }), "nothing to tell yet");
        let broken = std::io::Error::from_raw_os_error(libc::EIO);
        assert!(l.core.err(redb::Error::Io(broken)).to_string().contains("Input/output error"));
        let later = l.core.err(redb::Error::PreviousIo).to_string();
        assert!(later.contains("a write failed (Input/output error"), "{later}");
    }

    /// A full disk is its own error, every time after too: the state folder is named, and
    /// what to do.
    #[test]
    fn a_write_that_found_the_disk_full_says_so_and_so_do_the_next() {
        let l = Ledger::in_memory().unwrap();
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        for e in [l.core.err(redb::Error::Io(full)), l.core.err(redb::Error::PreviousIo)] {
            assert!(e.is_state_full(), "{e:?}");
            assert_eq!(
                e.to_string(),
                "ledger :memory:: state folder : no space left on device; free space there (the next run repairs the ledger and goes on)"
            );
        }
    }

    /// Leaves `l` as a recovery whose reopen failed (no space) does: its handle closed.
    fn closed_by_a_failed_reopen(l: &Ledger) {
        let _ = l.core.err(redb::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        *l.core.db.write().unwrap() = Handle::Closed;
    }

    /// A newer wharf that opened the ledger while a recovery had it closed (a rolled-back
    /// daemon's disk full, an upgraded `wharf run` meanwhile) has it refused by the reopen as
    /// by any open: nothing written, and every read or write after says so.
    #[test]
    fn a_reopen_refuses_a_ledger_a_newer_wharf_wrote_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let l = Ledger::open(&p).unwrap();
        l.begin_run("a", 1).unwrap();
        closed_by_a_failed_reopen(&l);
        {
            let newer = Database::create(&p).unwrap();
            let tx = newer.begin_write().unwrap();
            tx.open_table(layout::META).unwrap().insert("layout", (layout::LAYOUT + 1).to_string().as_str()).unwrap();
            tx.commit().unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        assert!(matches!(l.recover(), Err(LedgerError::NewerLayout { .. })));
        assert!(matches!(l.begin_run("a", 2), Err(LedgerError::NewerLayout { .. })));
        assert!(matches!(l.runs(None, 10), Err(LedgerError::NewerLayout { .. })));
        assert!(std::fs::read(&p).unwrap() == before, "the file is byte-identical");
    }

    /// A recovery whose reopen failed leaves the ledger closed: the next read, write or
    /// snapshot look-up opens it again (there is space by then), whoever makes it — not only
    /// the next run's recovery.
    #[test]
    fn after_a_failed_reopen_the_next_read_or_write_opens_the_ledger_again() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.redb")).unwrap();
        l.begin_run("a", 1).unwrap();
        l.put_file("f", &rec("in/a.csv", FileState::Staged)).unwrap();
        let snapshot = l.snapshot().unwrap();
        closed_by_a_failed_reopen(&l);
        assert!(l.is_writer(), "still the writer");
        assert_eq!(snapshot.file("f", "in/a.csv").unwrap().map(|r| r.state), Some(FileState::Staged));
        closed_by_a_failed_reopen(&l);
        l.begin_run("a", 2).unwrap();
        closed_by_a_failed_reopen(&l);
        assert_eq!(l.runs(None, 10).unwrap().len(), 2);
        closed_by_a_failed_reopen(&l);
        l.put_file_with("f", &rec("in/b.csv", FileState::Staged), Durability::Lazy).unwrap();
        l.flush().unwrap();
    }

    #[test]
    fn a_lazy_write_is_seen_here_at_once_and_elsewhere_after_the_next_durable_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let w = Ledger::open(&p).unwrap();
        let r = Ledger::open_read_only(&p).unwrap();
        w.put_file_with("f", &rec("in/a.csv", FileState::Staged), Durability::Lazy).unwrap();
        assert_eq!(w.file("f", "in/a.csv").unwrap().map(|f| f.state), Some(FileState::Staged));
        // Not on disk yet: another process (a read-only handle) does not see it…
        assert!(r.file("f", "in/a.csv").unwrap().is_none());
        // …until a durable write carries it along.
        w.put_file("f", &rec("in/b.csv", FileState::Staging)).unwrap();
        assert_eq!(r.file("f", "in/a.csv").unwrap().map(|f| f.state), Some(FileState::Staged));
    }

    #[test]
    fn a_committer_on_another_thread_stores_the_lazy_writes_and_keeps_the_newer_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let w = Ledger::open(&p).unwrap();
        let r = Ledger::open_read_only(&p).unwrap();
        w.put_file_with("f", &rec("in/a.csv", FileState::Staged), Durability::Lazy).unwrap();
        let c = w.committer();
        let b = Transition::File { flow: "f".into(), rec: rec("in/b.csv", FileState::Staging) };
        std::thread::spawn(move || c.commit(&[b])).join().unwrap().unwrap();
        // Both on disk, and the stored lazy write is no longer held back.
        assert_eq!(r.file("f", "in/a.csv").unwrap().map(|f| f.state), Some(FileState::Staged));
        assert_eq!(r.file("f", "in/b.csv").unwrap().map(|f| f.state), Some(FileState::Staging));
        assert!(w.pending().is_empty());
        // A lazy write rewritten after a commit copied it stays held back.
        w.put_file_with("f", &rec("in/a.csv", FileState::Staged), Durability::Lazy).unwrap();
        w.core
            .write(|_| {
                w.pending().insert(("f".into(), "in/a.csv".into()), rec("in/a.csv", FileState::Processed));
                Ok(())
            })
            .unwrap();
        assert_eq!(r.file("f", "in/a.csv").unwrap().map(|f| f.state), Some(FileState::Staged));
        assert_eq!(w.file("f", "in/a.csv").unwrap().map(|f| f.state), Some(FileState::Processed));
    }
}
