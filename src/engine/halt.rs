//! Test-only halt points for crash-safety tests.
//!
//! When the environment variable `WHARF_TEST_HALT_AT` names a point, the process prints
//! `wharf: halted at POINT` to stderr and stops making progress there, so a test can kill it
//! with SIGKILL at exactly that moment and check that the next run recovers. Points:
//! `staging` (part of a file downloaded and fsynced), `processed` (the content steps' output
//! written and the verdict recorded, nothing delivered), `quarantining` (quarantine decided and
//! the copy's name recorded, the copy not made), `uploading` (the first chunk of an upload
//! written under the temporary name), `uploaded` (the upload verified under the temporary
//! name, not yet renamed), `renamed` (the file is under its final name, the ledger does not
//! know yet), `triggering` (a data file delivered under its final name, its
//! trigger file not yet written), `triggered` (the trigger file written, the ledger does not
//! know yet), `delivered` (every sink confirmed, source not
//! yet disposed of), `disposing` (source moved/deleted, ledger not yet updated),
//! `quarantine_disposing` (a file's quarantine copy and reports made and its `after.failure:
//! move_to` name recorded, the source not moved yet), `quarantine_disposed` (a file's quarantine copy and reports made and its source disposed
//! of per `after.failure`, the ledger not yet updated), `quarantined` (a file recorded
//! quarantined with its event, the run not finished), `failure_disposing` (a file failed for
//! good, its `after.failure: move_to` name recorded while it is still in flight, the source
//! not moved yet), `failure_disposed` (a file failed for good and its source moved per
//! `after.failure`, the ledger not yet updated: still in flight there), `failed` (a file recorded
//! failed for good, `after.failure` applied, the run not finished).
//! Unset in normal use; the check is one environment lookup per point reached.

use std::io::Write;

/// Halts forever if `WHARF_TEST_HALT_AT` equals `point`.
pub fn point(point: &str) {
    #[cfg(test)]
    hook::call(point);
    if std::env::var("WHARF_TEST_HALT_AT").is_ok_and(|p| p == point) {
        let _ = writeln!(std::io::stderr(), "wharf: halted at {point}");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// A unit test's hook at the halt points reached on its own thread (a `#[tokio::test]` runs
/// its tasks there): to act at exactly one moment of a run (somebody else's file appearing
/// between an upload and its rename) instead of racing it from another thread.
#[cfg(test)]
pub mod hook {
    use std::cell::RefCell;

    type Hook = Box<dyn FnMut(&str)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Calls `f` with every halt point this thread reaches until the guard is dropped.
    pub fn set(f: impl FnMut(&str) + 'static) -> Guard {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
        Guard(())
    }

    pub(super) fn call(point: &str) {
        HOOK.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(point);
            }
        });
    }

    /// Removes the hook when dropped.
    pub struct Guard(());

    impl Drop for Guard {
        fn drop(&mut self) {
            HOOK.with(|h| *h.borrow_mut() = None);
        }
    }
}
