//! Group commit: the durable transitions of the files in flight share write transactions.
//!
//! Every lifecycle transition that must be on disk before a file moves on (see the module
//! doc of `lifecycle`) is a ledger commit with an fsync. With several files in flight, they
//! queue here instead ([`Commits::put`] waits until its own transition is stored), and the
//! run's loop drives [`Commits::drive`] beside the files: whenever the files have all gone as
//! far as they can, it stores everything queued in one transaction, one fsync. Nothing
//! returns before its transition is durable, so the crash-safety argument is unchanged; only
//! the number of fsyncs drops (with four files in flight, to about a quarter).
//!
//! Outside a driven loop (a single file finished after the loop, quarantine releases) a
//! transition is stored at once, as before. A failed group is stored again one transition at
//! a time, so each file gets its own error.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Notify, oneshot};

use crate::ledger::{Ledger, LedgerError, Transition};

type Waiter = oneshot::Sender<Result<(), LedgerError>>;

/// The queue of durable transitions waiting for the next group commit.
#[derive(Default)]
pub(super) struct Commits {
    queue: Mutex<Vec<(Transition, Waiter)>>,
    queued: Notify,
    /// A loop is driving [`drive`](Self::drive): queued transitions will be stored.
    driven: AtomicBool,
}

impl Commits {
    /// Stores `t` durably: in the next group commit when a loop drives one, else at once.
    pub async fn put(&self, ledger: &Ledger, t: Transition) -> Result<(), LedgerError> {
        if !self.driven.load(Ordering::SeqCst) {
            return ledger.commit(std::slice::from_ref(&t));
        }
        let (tx, rx) = oneshot::channel();
        self.lock().push((t, tx));
        self.queued.notify_one();
        // The sender is dropped unanswered only if the driving loop was dropped mid-commit,
        // which ends the run anyway.
        rx.await.unwrap_or_else(|_| Err(LedgerError::Interrupted))
    }

    /// Marks the start (`true`) or end of a loop that polls [`drive`](Self::drive) beside
    /// everything that calls [`put`](Self::put). At the end, what is still queued is stored.
    pub fn set_driven(&self, ledger: &Ledger, on: bool) {
        self.driven.store(on, Ordering::SeqCst);
        if !on {
            self.commit_queued(ledger);
        }
    }

    /// Stores what is queued, now and each time more is; never completes. Cancel-safe: a
    /// commit happens without an await in between, so dropping this future loses nothing,
    /// and a new one starts by storing what was queued meanwhile.
    pub async fn drive(&self, ledger: &Ledger) -> std::convert::Infallible {
        loop {
            self.commit_queued(ledger);
            self.queued.notified().await;
        }
    }

    fn commit_queued(&self, ledger: &Ledger) {
        let batch = std::mem::take(&mut *self.lock());
        if batch.is_empty() {
            return;
        }
        let (transitions, waiters): (Vec<Transition>, Vec<Waiter>) = batch.into_iter().unzip();
        match ledger.commit(&transitions) {
            Ok(()) => {
                for w in waiters {
                    // A waiter that went away (its file future was dropped) needs no answer.
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, transitions = transitions.len(), "A group commit failed; storing one by one.");
                for (t, w) in transitions.iter().zip(waiters) {
                    let _ = w.send(ledger.commit(std::slice::from_ref(t)));
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Transition, Waiter)>> {
        // A poisoned lock only means a panic elsewhere while pushing or taking; the queue is whole.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{FileRecord, FileState};

    fn file(path: &str) -> Transition {
        Transition::File { flow: "f".into(), rec: FileRecord { path: path.into(), state: FileState::Staging, ..Default::default() } }
    }

    #[tokio::test]
    async fn transitions_in_flight_together_share_a_commit_and_all_are_stored() {
        let ledger = Ledger::in_memory().unwrap();
        let commits = Commits::default();
        commits.set_driven(&ledger, true);
        let puts = futures::future::join_all(["a", "b", "c"].map(|p| commits.put(&ledger, file(p))));
        tokio::select! {
            results = puts => assert!(results.iter().all(Result::is_ok)),
            never = commits.drive(&ledger) => match never {},
        }
        commits.set_driven(&ledger, false);
        for p in ["a", "b", "c"] {
            assert_eq!(ledger.file("f", p).unwrap().unwrap().state, FileState::Staging);
        }
    }

    #[tokio::test]
    async fn without_a_driving_loop_a_transition_is_stored_at_once() {
        let ledger = Ledger::in_memory().unwrap();
        let commits = Commits::default();
        commits.put(&ledger, file("a")).await.unwrap();
        assert!(ledger.file("f", "a").unwrap().is_some());
    }
}
