//! [`Snapshot`]: the ledger as of one moment, for many look-ups in one read transaction
//! (readiness and identity for a whole listing), and how it reads on after a recovery (the
//! rules are in the ledger's module doc).

use std::collections::BTreeMap;
use std::sync::Arc;

#[cfg(doc)]
use super::Ledger;
use super::codec::Postcard;
use super::store::{Core, Handle};
use super::{DONE, DoneRecord, FILES, FileRecord, LedgerError, OBSERVATIONS, Observation};

/// The ledger as of one moment, for many look-ups ([`Ledger::snapshot`]). Writes made after it
/// was taken are not seen — unless the ledger is opened again meanwhile ([`Ledger::recover`]):
/// then it reads on as of the reopening (see the module doc).
pub struct Snapshot {
    core: Arc<Core>,
    /// Replaced (a new read transaction) when the handle they came from was closed.
    tables: std::sync::Mutex<Tables>,
    /// The writer's lazy writes when the snapshot was taken.
    pending: BTreeMap<(String, String), FileRecord>,
}

/// The tables of one read transaction, for a [`Snapshot`].
struct Tables {
    /// `Core::reopened` when they were opened.
    reopened: u64,
    files: redb::ReadOnlyTable<(&'static str, &'static str), Postcard<FileRecord>>,
    done: redb::ReadOnlyTable<(&'static str, &'static str), Postcard<DoneRecord>>,
    observations: redb::ReadOnlyTable<(&'static str, &'static str), Postcard<Observation>>,
}

impl Snapshot {
    /// A new one, of the latest commit and the lazy writes as they are now.
    pub(super) fn take(core: &Arc<Core>) -> Result<Snapshot, LedgerError> {
        let pending = core.pending().clone();
        let tables = core.tables()?;
        Ok(Snapshot { core: Arc::clone(core), tables: std::sync::Mutex::new(tables), pending })
    }

    /// Runs `get` on the tables; when it fails because the ledger was opened again since they
    /// were (their handle is closed), once more in a new read transaction.
    fn look<T>(&self, get: impl Fn(&Tables) -> Result<T, redb::StorageError>) -> Result<T, LedgerError> {
        let mut tables = crate::sync::lock(&self.tables);
        match get(&tables) {
            Err(_) if self.core.reopened_since(tables.reopened) => {
                *tables = self.core.tables()?;
                get(&tables).map_err(|e| self.core.err(e))
            }
            other => other.map_err(|e| self.core.err(e)),
        }
    }

    /// Like [`Ledger::file`].
    pub fn file(&self, flow: &str, path: &str) -> Result<Option<FileRecord>, LedgerError> {
        if let Some(rec) = self.pending.get(&(flow.to_string(), path.to_string())) {
            return Ok(Some(rec.clone()));
        }
        self.look(|t| Ok(t.files.get((flow, path))?.map(|v| v.value())))
    }

    /// Like [`Ledger::done`].
    pub fn done(&self, flow: &str, identity: &str) -> Result<Option<DoneRecord>, LedgerError> {
        self.look(|t| Ok(t.done.get((flow, identity))?.map(|v| v.value())))
    }

    /// Like [`Ledger::observation`].
    pub fn observation(&self, flow: &str, path: &str) -> Result<Option<Observation>, LedgerError> {
        self.look(|t| Ok(t.observations.get((flow, path))?.map(|v| v.value())))
    }
}

impl Core {
    /// The tables a [`Snapshot`] reads, in a new read transaction.
    fn tables(&self) -> Result<Tables, LedgerError> {
        self.read(|tx| {
            Ok(Tables {
                // Read under the handle's lock: no recovery can come in between.
                reopened: self.reopened.load(std::sync::atomic::Ordering::Acquire),
                files: tx.open_table(FILES)?,
                done: tx.open_table(DONE)?,
                observations: tx.open_table(OBSERVATIONS)?,
            })
        })
    }

    /// Whether the database was opened again since `reopened` (a count of reopens) — tried
    /// now, if a recovery left it closed.
    fn reopened_since(&self, reopened: u64) -> bool {
        let closed = matches!(*self.handle(), Handle::Closed);
        if closed {
            // Its failure is the reader's to report (the look-up that failed).
            let _ = self.recover();
        }
        self.reopened.load(std::sync::atomic::Ordering::Acquire) != reopened
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rec;
    use super::super::*;

    /// A snapshot taken before a recovery (another flow's run, after a full disk) reads on
    /// after it, in a new read transaction: redb ends its own with the handle that is closed.
    #[test]
    fn a_snapshot_taken_before_a_recovery_reads_on_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let l = Ledger::open(&dir.path().join("ledger.redb")).unwrap();
        // Enough records that a look-up reads pages from the file, not only the table's root.
        let files: Vec<Transition> =
            (0..2000).map(|i| Transition::File { flow: "f".into(), rec: rec(&format!("in/{i:04}.csv"), FileState::Staged) }).collect();
        l.commit(&files).unwrap();
        let snapshot = l.snapshot().unwrap();
        // A write failed for lack of space (as far as the ledger knows); a run recovers.
        let _ = l.core.err(redb::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)));
        l.recover().unwrap();
        for i in [0, 777, 1999] {
            let path = format!("in/{i:04}.csv");
            assert_eq!(snapshot.file("f", &path).unwrap().map(|r| r.state), Some(FileState::Staged), "{path}");
        }
        assert!(snapshot.done("f", "id:in/0001.csv").unwrap().is_none());
        assert!(snapshot.observation("f", "in/0001.csv").unwrap().is_none());
    }
}
