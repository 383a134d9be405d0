//! The ledger's error type: what failed, on which ledger, and what to do about it.

use std::path::{Path, PathBuf};

/// A ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Another process holds the database for writing.
    #[error("ledger {0} is in use by another wharf process")]
    Busy(PathBuf),
    /// A read-only open found no database file: nothing has run with this state folder.
    #[error("no ledger yet at {0} (nothing has run)")]
    Missing(PathBuf),
    /// The state folder cannot be a folder: `blocker` (the folder itself, or one of its
    /// parents) is a file.
    #[error(
        "state folder {}: {} is a file, not a folder; give --state-dir (or WHARF_STATE_DIR) a folder",
        path.parent().unwrap_or(path).display(),
        blocker.display()
    )]
    NotAFolder { path: PathBuf, blocker: PathBuf },
    /// The last writer was killed and the repair redb needs could not be made here.
    #[error(
        "ledger {path} was not closed cleanly (a wharf process was killed) and could not be repaired here ({cause}); the next `wharf run` or `wharf serve` with write access to it repairs it"
    )]
    NeedsRepair { path: PathBuf, cause: String },
    /// The ledger was last opened for writing by a wharf of a newer ledger layout than this
    /// one knows (see `ledger::layout`): this wharf was rolled back after an upgrade. Nothing
    /// was written: opening it would find none of this layout's tables (the newer wharf
    /// converted them) and take every file still in a source for new.
    #[error(
        "ledger {}: last written by wharf {written_by}, of ledger layout {layout}; this wharf, {version}, knows layouts up to {ours}, and opening it could deliver files a second time; run that newer wharf again or restore the state folder's backup taken before the upgrade (nothing was written)",
        path.display()
    )]
    NewerLayout { path: PathBuf, layout: u64, written_by: String, ours: u64, version: &'static str },
    /// A write through a handle from [`Ledger::open_read_only`].
    #[error("ledger {0} is open read-only here (another process writes it)")]
    ReadOnly(PathBuf),
    /// The file is not a whole ledger (cut short, overwritten, not a redb file at all): what
    /// it recorded cannot be read, so which files were taken cannot be told. Nothing was
    /// written to it.
    #[error(
        "ledger {} is damaged ({cause}) and was left as it is: wharf cannot tell from it which files it took. Restore the state folder {} from a backup taken while no run wrote it, or move it aside to start afresh (every file still at a source is then taken as new, and a sink's `if_exists` decides what a copy there already gets)",
        path.display(),
        path.parent().unwrap_or(path).display()
    )]
    Damaged { path: PathBuf, cause: String },
    #[error("ledger {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: redb::Error,
    },
    /// A write failed on the disk earlier (`cause`); redb takes no more writes through this
    /// handle until [`Ledger::recover`] opens it again.
    #[error("ledger {path}: a write failed ({cause}); nothing more can be recorded until wharf opens it again (the next run does)")]
    Unusable { path: PathBuf, cause: String },
    /// The file system of the state folder is full (`ENOSPC`, or a quota): a write failed, or
    /// the repair after one could not be made. Nothing is lost: the ledger is as of its last
    /// commit, and the next writer with space repairs it.
    #[error(
        "ledger {}: state folder {}: no space left on device; free space there (the next run repairs the ledger and goes on)",
        path.display(),
        path.parent().unwrap_or(path).display()
    )]
    StateFull { path: PathBuf },
    /// A queued write whose commit was abandoned (the run stopped before it was stored).
    #[error("a ledger write was abandoned before it was stored")]
    Interrupted,
    #[error("ledger {path}: cannot create its folder: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LedgerError {
    /// Whether the state folder's file system is full: free space, and the next run goes on.
    pub fn is_state_full(&self) -> bool {
        match self {
            LedgerError::StateFull { .. } => true,
            LedgerError::Io { source, .. } => crate::durable::no_space(source),
            _ => false,
        }
    }
}

/// The file in the way of the ledger's folder (the folder itself or the nearest of its parents
/// that exists, when that is not a folder); `None` when the folder is there or can be made.
pub(super) fn folder_blocked_by(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?;
    let existing = dir.ancestors().find(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_ok())?;
    (!existing.is_dir()).then(|| existing.to_path_buf())
}

/// An error opening the database file at `path`, as its writer or a reader (not `Busy`).
pub(super) fn open_error(path: &Path, e: redb::DatabaseError) -> LedgerError {
    match e {
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) if crate::durable::no_space(&io) => {
            LedgerError::StateFull { path: path.to_path_buf() }
        }
        e => db_error(path, e.into()),
    }
}

/// A database error on the ledger at `path`: [`LedgerError::Damaged`] for a file that is not a
/// whole ledger (redb finds it corrupted, or it ends before what its header says it holds),
/// [`LedgerError::Db`] otherwise.
pub(super) fn db_error(path: &Path, e: redb::Error) -> LedgerError {
    let path = path.to_path_buf();
    match e {
        redb::Error::Corrupted(cause) => LedgerError::Damaged { path, cause },
        redb::Error::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            LedgerError::Damaged { path, cause: format!("the file ends early: {io}") }
        }
        source => LedgerError::Db { path, source },
    }
}
