//! Runs skipped (`overlap:`), counted in the ledger off the daemon's loop ([`Behind`]).
//!
//! The loop decides a skip with the plans held; writing it to the ledger there (a durable
//! commit) held the plans, and a worker of the runtime, that long — every second on a `1s`
//! schedule during a long run. Now the loop only counts in memory ([`Skips::count`]); a
//! blocking task writes the counts in order, in batches.
//!
//! **A total never waits for a write, and is exact** ([`Skips::total`]: `wharf status`). It
//! is read under the cheap lock only, from memory: the flow's count in the ledger as of the
//! last write this daemon made of it (`known`: read from the ledger once, while no write of
//! the flow had begun — the daemon is the ledger's one writer — then kept up to date by each
//! write), the batch being written (`writing`: until its write is over, then in `known`) and
//! the counts not taken yet (`pending`). A skip is in exactly one of the three at any time, so
//! a status that shows a skip counts it in the total, and never twice. (Was: a total took a
//! lock held across the write, and so waited for the commit.) A write that fails is logged and
//! not counted (as before); a flow whose count the ledger could not read is read again, and
//! then only while none of its writes is under way.
//!
//! At shutdown the daemon waits for the writes ([`Skips::written`]) before it lets the ledger
//! go.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::behind::{Behind, Writes};
use crate::ledger::{Ledger, LedgerError, Millis};

/// How many runs, and when the last one was.
type Count = (u64, Option<Millis>);

/// Skipped runs, written to the ledger in the background.
pub(super) struct Skips(Arc<Behind<Counts>>);

#[derive(Default)]
struct Counts {
    /// Per flow: counted, not taken to be written yet.
    pending: BTreeMap<String, (u64, Millis)>,
    /// The batch being written, until its write is over.
    writing: BTreeMap<String, (u64, Millis)>,
    /// Per flow: the ledger's count as of this daemon's last write of it.
    known: BTreeMap<String, Count>,
}

impl Writes for Counts {
    type Batch = BTreeMap<String, (u64, Millis)>;
    type Out = Vec<Result<u64, LedgerError>>;

    fn take(&mut self, ledger: &Ledger) -> Option<Self::Batch> {
        if self.pending.is_empty() {
            return None;
        }
        let batch = std::mem::take(&mut self.pending);
        for flow in batch.keys() {
            // Before its first write: then the ledger's count is still the one to add to.
            self.known_of(flow, ledger);
        }
        self.writing = batch.clone();
        Some(batch)
    }

    fn write(ledger: &Ledger, batch: &Self::Batch) -> Self::Out {
        batch
            .iter()
            .map(|(flow, (n, at))| {
                let total = ledger.count_skipped_runs(flow, *n, *at);
                if let Err(e) = &total {
                    tracing::error!(flow = %flow, skipped = n, error = %e, "Could not count skipped runs in the ledger; `wharf status` will not count them.");
                }
                total
            })
            .collect()
    }

    fn done(&mut self, batch: Self::Batch, out: Self::Out) {
        for ((flow, (_, at)), total) in batch.into_iter().zip(out) {
            // Written: the ledger's count now (given up: not counted, as the ledger does not).
            if let Ok(n) = total {
                self.known.insert(flow, (n, Some(at)));
            }
        }
        self.writing.clear();
    }
}

impl Counts {
    /// The ledger's count of `flow` as of this daemon's last write of it, read from the
    /// ledger the first time (`None` when it cannot say).
    fn known_of(&mut self, flow: &str, ledger: &Ledger) -> Option<Count> {
        if let Some(k) = self.known.get(flow) {
            return Some(*k);
        }
        // Not while a write of it is under way (its first, after a read that failed): its
        // commit may or may not be in what is read.
        if self.writing.contains_key(flow) {
            return None;
        }
        let read = ledger.skipped_runs(flow).ok()?;
        self.known.insert(flow.to_string(), read);
        Some(read)
    }
}

impl Skips {
    pub fn new(ledger: Arc<Ledger>) -> Skips {
        Skips(Behind::new(ledger, Counts::default()))
    }

    /// Counts a run of `flow` skipped at `at`, and has it written to the ledger (by a
    /// blocking task; inline without a runtime). Never waits for the ledger.
    pub fn count(&self, flow: &str, at: Millis) {
        self.0.change(|c| {
            let p = c.pending.entry(flow.to_string()).or_insert((0, at));
            *p = (p.0.saturating_add(1), at);
        });
    }

    /// How many runs of `flow` were skipped in all, and when the last one was: the ledger's
    /// count and the ones not written yet (`(0, None)` for none; the ledger's part is 0 when
    /// it cannot say). Never waits for a write.
    pub fn total(&self, flow: &str) -> Count {
        self.0.read(|c, ledger| {
            let (mut n, mut last) = c.known_of(flow, ledger).unwrap_or_default();
            for (more, at) in [c.writing.get(flow), c.pending.get(flow)].into_iter().flatten() {
                n = n.saturating_add(*more);
                last = Some(*at);
            }
            (n, last)
        })
    }

    /// Waits until every skip counted so far is written (or failed and logged).
    pub async fn written(&self) {
        self.0.written().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counted on the loop, written by a blocking task: the total counts each skip once,
    /// before and after it is written, and the ledger has them all once written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn skips_are_counted_at_once_and_written_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("ledger.redb")).unwrap());
        ledger.count_skipped_runs("f", 2, 500).unwrap();
        let skips = Skips::new(ledger.clone());
        for at in 1..=50 {
            skips.count("f", at * 1_000);
            // Whether written yet or not: every one so far, once.
            assert_eq!(skips.total("f"), (2 + at as u64, Some(at * 1_000)));
        }
        skips.count("g", 7);
        skips.written().await;
        assert_eq!(ledger.skipped_runs("f").unwrap(), (52, Some(50_000)));
        assert_eq!(ledger.skipped_runs("g").unwrap(), (1, Some(7)));
        assert_eq!(skips.total("f"), (52, Some(50_000)));
        assert_eq!(skips.total("h"), (0, None));
        // A later skip starts a writer again.
        skips.count("g", 8);
        skips.written().await;
        assert_eq!(ledger.skipped_runs("g").unwrap(), (2, Some(8)));
    }

    /// A total read while a write is under way (here held up behind another write
    /// transaction, as a run's group commit holds it) does not wait for it, and counts every
    /// skip once: the one being written, the ones counted since, and the ledger's. Before, it
    /// waited for the commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_total_never_waits_for_a_write_and_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("ledger.redb")).unwrap());
        ledger.count_skipped_runs("f", 2, 500).unwrap();
        let skips = Skips::new(ledger.clone());
        // Another write holds the ledger's one write transaction until released.
        let held = super::super::behind::HeldWrite::hold(&ledger);
        skips.count("f", 1_000);
        // The writer has taken it, and waits for the transaction.
        let taken = || skips.0.read(|c, _| c.writing.contains_key("f"));
        for _ in 0..500 {
            if taken() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(taken(), "the writer took the skip");
        skips.count("f", 2_000);
        skips.count("g", 3_000);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| tx.send((skips.total("f"), skips.total("g"), skips.total("h"))).unwrap());
            let totals = rx.recv_timeout(std::time::Duration::from_secs(5));
            // Released first: a total that waits would otherwise wait for ever.
            held.release();
            assert_eq!(totals.expect("a total does not wait for the write"), ((4, Some(2_000)), (1, Some(3_000)), (0, None)));
        });
        skips.written().await;
        assert_eq!(ledger.skipped_runs("f").unwrap(), (4, Some(2_000)));
        assert_eq!(ledger.skipped_runs("g").unwrap(), (1, Some(3_000)));
        assert_eq!((skips.total("f"), skips.total("g")), ((4, Some(2_000)), (1, Some(3_000))));
    }
}
