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
