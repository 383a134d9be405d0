//! `FileError`: why one file could not be taken further, with the kind that decides
//! retry (transient), failure disposition (permanent) or aborting the run (connection-fatal).

use std::path::{Path, PathBuf};

use crate::endpoint::{EndpointError, ErrorKind};
use crate::ledger::LedgerError;

/// An error while processing one file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The source file listed could not be read for the login's rights (a partner's upload
    /// left readable to its owner only until it is done, most often): not ready yet, never
    /// failed (`lifecycle::unreadable`). Only a read of the source's own file, refused
    /// (`stage`); a sink's refusal stays an `Endpoint` error.
    #[error(transparent)]
    Unreadable(EndpointError),
    /// The local staging area failed (disk full, permissions…).
    #[error("staging file {}: {source}", path.display())]
    Staging {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The source changed while it was being read.
    #[error("{0}")]
    Changed(String),
    /// A name could not be built (no free name to move to, a response name, a quarantine
    /// copy's name): trouble of the flow's setup, which stops the run.
    #[error("{0}")]
    Name(String),
    /// A delivery's folder, name, temporary name or trigger name that one file's variables
    /// render into something unusable (`{{rel_dir}}_{{name}}` of a file in a subfolder):
    /// that file fails, the others go on. (A template bad for every file is refused by
    /// `validate` before any run.)
    #[error("{0}")]
    TargetName(String),
    /// A content step's program could not be started (missing, not executable): trouble of
    /// the flow's setup or of this machine, which stops the run; the file stays at the
    /// source for the next run.
    #[error("{0}")]
    Program(String),
    /// The target exists and the sink's `if_exists` is `fail`, or somebody else created it
    /// between its choice and the rename (`why` says which).
    #[error("{target} already exists on {endpoint} ({why})")]
    TargetExists { endpoint: String, target: String, why: &'static str },
    /// A trigger file would replace a file with content (a delivered file, most likely).
    #[error(
        "{target} on {endpoint} holds {size} bytes: the trigger file would replace it (a trigger's name must be one no delivered file has)"
    )]
    TriggerWouldReplace { endpoint: String, target: String, size: u64 },
    /// The delivered size does not match the staged size.
    #[error("{endpoint}: {target} has {actual} bytes after upload, expected {expected}")]
    SizeMismatch { endpoint: String, target: String, expected: u64, actual: u64 },
    /// The server's checksum of the upload differs from what was sent.
    #[error("{endpoint}: {target} has SHA-256 {remote} after upload, sent {sent}")]
    ChecksumMismatch { endpoint: String, target: String, sent: String, remote: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The state folder's file system is full (a staging file or the ledger could not be
    /// written): the run stops, and removes its staging files so the space comes back.
    #[error("state folder {}: no space left on device; free space there, then the next run takes the file again", folder.display())]
    StateFull { folder: PathBuf },
    /// Delivery to one sink failed (the other sinks were still tried).
    #[error("sink {sink}: {source}")]
    Sink { sink: String, source: Box<FileError> },
    /// A file refused by its content steps (for `reason`) could not be put aside in the
    /// quarantine endpoint: it stays at the source, and the next run puts it aside.
    #[error("{reason}; putting it aside in quarantine {endpoint} failed: {source}")]
    Quarantine { endpoint: String, reason: String, source: Box<FileError> },
    /// Delivery failed on more than one sink: the first's trouble, then the others'. The
    /// kind is the first passing one (see [`FileError::kind`]), else the first.
    #[error("{0}; {1}")]
    Sinks(Box<FileError>, Box<FileError>),
}

impl FileError {
    /// The kind that drives the decision.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FileError::Endpoint(e) | FileError::Unreadable(e) => e.kind,
            FileError::Ledger(e) if e.is_state_full() => ErrorKind::StateFull,
            FileError::Staging { .. } | FileError::Ledger(_) => ErrorKind::LocalIo,
            FileError::StateFull { .. } => ErrorKind::StateFull,
            FileError::Changed(_) | FileError::SizeMismatch { .. } | FileError::ChecksumMismatch { .. } => ErrorKind::Transient,
            FileError::Name(_) | FileError::TargetName(_) | FileError::Program(_) => ErrorKind::Config,
            FileError::TargetExists { .. } | FileError::TriggerWouldReplace { .. } => ErrorKind::AlreadyExists,
            FileError::Sink { source, .. } | FileError::Quarantine { source, .. } => source.kind(),
            // A file stays for the next run while any sink may still take it: passing trouble
            // (a server down, a full disk) of one sink wins over another's lasting refusal,
            // whatever their order; the refusal decides once it is the only trouble left.
            FileError::Sinks(first, other) => match (first.kind(), other.kind()) {
                (a, b) if a.is_passing() || !b.is_passing() => a,
                (_, b) => b,
            },
        }
    }

    /// Whether trying again within the run may help: a passing (transient) trouble, but not
    /// a source that differs from its listing — the listing is what is stale, and trying
    /// again a second later gets the same answer; the next run lists the file again.
    pub fn retried_in_run(&self) -> bool {
        self.kind().is_transient() && !matches!(self, FileError::Changed(_))
    }

    /// Errors after which the run cannot go on with any file: the ledger or the local disk
    /// is unusable (full, read-only), or an endpoint refuses us entirely. They are never the
    /// file's fault, so the file is left in place, resumable, and `after.failure` not applied.
    pub fn aborts_run(&self) -> bool {
        match self {
            FileError::Sink { source, .. } | FileError::Quarantine { source, .. } => return source.aborts_run(),
            FileError::Sinks(first, other) => return first.aborts_run() || other.aborts_run(),
            FileError::Ledger(_) => return true,
            FileError::TargetName(_) => return false,
            _ => {}
        }
        self.kind().is_connection_fatal() || matches!(self.kind(), ErrorKind::LocalIo | ErrorKind::StateFull)
    }

    /// Whether the run stops on this error (and the file is left as it was, `after.failure`
    /// not applied: `lifecycle::fail`): it [aborts the run](Self::aborts_run), or no
    /// connection to the source could be made at all, even after the run's retries — the
    /// server is down or unreachable, and every file after this one would wait out the same
    /// timeouts (a minute per file at the defaults); the run stops as unreachable (retried
    /// with backoff by the daemon), the files not started left as they were. A sink's trouble
    /// (wrapped in `Sink`) does not stop the others: each sink gets its chance.
    pub fn stops_run(&self) -> bool {
        self.aborts_run() || matches!(self, FileError::Endpoint(x) if x.unconnected && x.kind == ErrorKind::Transient)
    }

    /// This error as [`FileError::StateFull`] when it is a full state folder (`state`): a
    /// staging file that could not be written for lack of space, or a ledger that could not
    /// be. Any other error as it is.
    pub fn in_state_folder(self, state: &Path) -> FileError {
        let full = match &self {
            FileError::Staging { source, .. } => crate::durable::no_space(source),
            FileError::Ledger(e) => e.is_state_full(),
            _ => false,
        };
        if full { FileError::StateFull { folder: state.to_path_buf() } } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(name: &str, e: FileError) -> FileError {
        FileError::Sink { sink: name.into(), source: Box::new(e) }
    }

    /// One sink refusing for good and another with passing trouble: the file stays for the
    /// next run (where the second may take it), whichever sink comes first.
    #[test]
    fn two_failing_sinks_keep_the_file_while_one_trouble_is_passing() {
        let refused =
            || sink("partner", FileError::TargetExists { endpoint: "e".into(), target: "/a".into(), why: "sink if_exists: fail" });
        let passing = || sink("archive", FileError::Changed("moved".into()));
        let named = || sink("other", FileError::Name("bad".into()));
        assert_eq!(FileError::Sinks(Box::new(refused()), Box::new(passing())).kind(), ErrorKind::Transient);
        assert_eq!(FileError::Sinks(Box::new(passing()), Box::new(refused())).kind(), ErrorKind::Transient);
        assert_eq!(FileError::Sinks(Box::new(refused()), Box::new(named())).kind(), ErrorKind::AlreadyExists);
        let three = FileError::Sinks(Box::new(FileError::Sinks(Box::new(refused()), Box::new(named()))), Box::new(passing()));
        assert_eq!(three.kind(), ErrorKind::Transient);
    }
}
