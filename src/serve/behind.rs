//! Ledger writes made behind the daemon's loop: what the loop decides is kept in memory at
//! once, and one blocking task writes it to the ledger after.
//!
//! A durable ledger commit takes some 10 ms here, at worst over 100 ms, and longer while a
//! run's group commit holds the ledger's one write transaction. Made on the loop, it held the
//! loop (and the plans, and a worker of the runtime) that long. The three writes the loop
//! (and its `finished`) made are made here now: the runs skipped (`skips.rs`), the
//! expected-file marks (`expect.rs`) and the run summaries (`notifier.rs`).
//!
//! What each keeps and how it writes it is its own ([`Writes`]); the order is kept here: one
//! writer at a time, taking batch after batch until nothing is left, then ending (a later
//! change starts one again). What is not written yet stays in the state until its write is
//! over (`done`), so a read under the lock ([`Behind::read`]) sees it, and never waits for a
//! commit: the lock is held while a batch is taken and after its write, never across one. At
//! shutdown the daemon waits for the writes ([`Behind::written`]) before it lets the ledger
//! go.

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use crate::ledger::Ledger;

/// What is kept in memory until written, and how it is written.
pub(super) trait Writes: Send + 'static {
    /// What one write takes.
    type Batch: Send;
    /// What a write gives back.
    type Out: Send;
    /// The next batch to write, still seen by reads until [`Writes::done`]; `None`: all
    /// written. Called with the lock held (a ledger read here is cheap: it never waits for a
    /// write).
    fn take(&mut self, ledger: &Ledger) -> Option<Self::Batch>;
    /// Writes `batch`, without the lock.
    fn write(ledger: &Ledger, batch: &Self::Batch) -> Self::Out;
    /// The write of `batch` is over (`out`): it leaves what reads add to the ledger's.
    /// Called with the lock held.
    fn done(&mut self, batch: Self::Batch, out: Self::Out);
}

/// A [`Writes`] state, and its writer.
pub(super) struct Behind<W: Writes> {
    ledger: Arc<Ledger>,
    state: Mutex<State<W>>,
}

struct State<W> {
    writes: W,
    /// The writer task, while one is going (it ends when nothing is left to write).
    writer: Option<JoinHandle<()>>,
    active: bool,
}

impl<W: Writes> Behind<W> {
    pub fn new(ledger: Arc<Ledger>, writes: W) -> Arc<Self> {
        Arc::new(Behind { ledger, state: Mutex::new(State { writes, writer: None, active: false }) })
    }

    /// Changes what is to be written (`f`, under the lock), and has it written: by a blocking
    /// task, inline without a runtime. Never waits for the ledger.
    pub fn change<R>(self: &Arc<Self>, f: impl FnOnce(&mut W) -> R) -> R {
        let mut s = crate::sync::lock(&self.state);
        let out = f(&mut s.writes);
        if s.active {
            return out;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            drop(s);
            self.write_all();
            return out;
        };
        s.active = true;
        let me = self.clone();
        s.writer = Some(rt.spawn_blocking(move || me.write_all()));
        out
    }

    /// Reads (`f`, under the lock) what is kept, written or not; the ledger is there to read
    /// what was written before. Never waits for a write.
    pub fn read<R>(&self, f: impl FnOnce(&mut W, &Ledger) -> R) -> R {
        let mut s = crate::sync::lock(&self.state);
        f(&mut s.writes, &self.ledger)
    }

    /// Waits until everything changed so far is written (or failed and logged).
    pub async fn written(&self) {
        loop {
            let (writer, active) = {
                let mut s = crate::sync::lock(&self.state);
                (s.writer.take(), s.active)
            };
            match writer {
                Some(w) => {
                    let _ = w.await;
                }
                // Another caller waits for this writer: until it is over.
                None if active => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
                None => return,
            }
        }
    }

    /// Writes batch after batch, in order, until none is left (then the task ends).
    fn write_all(&self) {
        // A write that panics ends this writer: the next change starts another, and
        // `written` does not wait for one that will never end. (What the panicking batch
        // held may stay in the state as being written: read, never written.)
        struct Ends<'a, W: Writes>(&'a Mutex<State<W>>);
        impl<W: Writes> Drop for Ends<'_, W> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    crate::sync::lock(self.0).active = false;
                }
            }
        }
        let _ends = Ends(&self.state);
        loop {
            let batch = {
                let mut s = crate::sync::lock(&self.state);
                match s.writes.take(&self.ledger) {
                    Some(b) => b,
                    None => {
                        s.active = false;
                        return;
                    }
                }
            };
            let out = W::write(&self.ledger, &batch);
            crate::sync::lock(&self.state).writes.done(batch, out);
        }
    }
}

/// Tests: the ledger's one write transaction, held by another thread (as a run's group commit
/// holds it) until [`HeldWrite::release`].
#[cfg(test)]
pub(super) struct HeldWrite {
    release: std::sync::mpsc::Sender<()>,
    holder: std::thread::JoinHandle<()>,
}

#[cfg(test)]
impl HeldWrite {
    /// Returns once the transaction is held.
    pub fn hold(ledger: &Arc<Ledger>) -> HeldWrite {
        let (entered, holding) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let l = ledger.clone();
        let holder = std::thread::spawn(move || {
            l.update_health("held-by-a-test", |h| {
                entered.send(()).unwrap();
                let _ = released.recv();
                (h.clone(), Vec::new())
            })
            .unwrap();
        });
        holding.recv().unwrap();
        HeldWrite { release, holder }
    }

    pub fn release(self) {
        let _ = self.release.send(());
        self.holder.join().unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes the numbers it is given; panics on a 13.
    #[derive(Default)]
    struct Numbers {
        pending: Vec<u32>,
        written: Vec<u32>,
    }

    impl Writes for Numbers {
        type Batch = Vec<u32>;
        type Out = ();
        fn take(&mut self, _: &Ledger) -> Option<Vec<u32>> {
            (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
        }
        fn write(_: &Ledger, batch: &Vec<u32>) {
            assert!(!batch.contains(&13), "a write that panics");
        }
        fn done(&mut self, batch: Vec<u32>, _: ()) {
            self.written.extend(batch);
        }
    }

    /// A write that panics ends its writer, not the writes: waiting for them returns, and
    /// the next change is written by a new writer (was: `active` left set, `written` waiting
    /// for ever and nothing written again).
    #[tokio::test]
    async fn a_write_that_panics_does_not_stop_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("state.redb")).unwrap());
        let behind = Behind::new(ledger, Numbers::default());
        behind.change(|w| w.pending.push(13));
        tokio::time::timeout(std::time::Duration::from_secs(10), behind.written()).await.expect("written() returns");
        behind.change(|w| w.pending.push(1));
        tokio::time::timeout(std::time::Duration::from_secs(10), behind.written()).await.expect("written() returns");
        assert_eq!(behind.read(|w, _| w.written.clone()), vec![1]);
    }
}
