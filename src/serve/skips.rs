//! Runs skipped (`overlap:`), counted in the ledger off the daemon's loop.
//!
//! The loop decides a skip with the plans held; writing it to the ledger there (a durable
//! commit: some 10 ms here, at worst over 100 ms, and longer while a run's group commit holds
//! the ledger's one write transaction) held the plans, and a worker of the runtime, that
//! long — every second on a `1s` schedule during a long run. Now the loop only counts in
//! memory ([`Skips::count`]); a blocking task writes the counts in order, in batches, and a
//! total read meanwhile ([`Skips::total`]) adds the ones not written yet, so a status that
//! shows a skip counts it in the total, and never twice. At shutdown the daemon waits for
//! the writes ([`Skips::written`]) before it lets the ledger go.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use crate::ledger::{Ledger, Millis};

/// Skipped runs, written to the ledger in the background.
pub(super) struct Skips {
    ledger: Arc<Ledger>,
    unwritten: Mutex<Unwritten>,
    /// Held by a write and the bookkeeping after it, and by [`Skips::total`]: a total reads
    /// the ledger and the unwritten counts either both before a write or both after it.
    writing: Mutex<()>,
}

#[derive(Default)]
struct Unwritten {
    /// Per flow: how many, and when the last one was.
    counts: BTreeMap<String, (u64, Millis)>,
    /// The writer task, while one is going (it ends when nothing is left to write).
    writer: Option<JoinHandle<()>>,
    active: bool,
}

impl Skips {
    pub fn new(ledger: Arc<Ledger>) -> Arc<Skips> {
        Arc::new(Skips { ledger, unwritten: Mutex::default(), writing: Mutex::new(()) })
    }

    /// Counts a run of `flow` skipped at `at`, and has it written to the ledger (by a
    /// blocking task; inline without a runtime). Never waits for the ledger.
    pub fn count(self: &Arc<Self>, flow: &str, at: Millis) {
        let mut u = crate::sync::lock(&self.unwritten);
        let c = u.counts.entry(flow.to_string()).or_insert((0, at));
        *c = (c.0.saturating_add(1), at);
        if u.active {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            drop(u);
            return self.write_all();
        };
        u.active = true;
        let me = self.clone();
        u.writer = Some(rt.spawn_blocking(move || me.write_all()));
    }

    /// How many runs of `flow` were skipped in all, and when the last one was: the ledger's
    /// count and the ones not written yet (`(0, None)` for none; the ledger's part is 0 when
    /// it cannot say).
    pub fn total(&self, flow: &str) -> (u64, Option<Millis>) {
        let _writing = crate::sync::lock(&self.writing);
        let (mut n, mut last) = self.ledger.skipped_runs(flow).unwrap_or_default();
        if let Some((more, at)) = crate::sync::lock(&self.unwritten).counts.get(flow) {
            n = n.saturating_add(*more);
            last = Some(*at);
        }
        (n, last)
    }

    /// Waits until every skip counted so far is written (or failed and logged).
    pub async fn written(&self) {
        let writer = crate::sync::lock(&self.unwritten).writer.take();
        if let Some(w) = writer {
            let _ = w.await;
        }
    }

    /// Writes the counts, batch after batch, until none is left (then the task ends).
    fn write_all(&self) {
        loop {
            let _writing = crate::sync::lock(&self.writing);
            let batch = {
                let mut u = crate::sync::lock(&self.unwritten);
                if u.counts.is_empty() {
                    u.active = false;
                    return;
                }
                u.counts.clone()
            };
            for (flow, (n, at)) in &batch {
                if let Err(e) = self.ledger.count_skipped_runs(flow, *n, *at) {
                    tracing::error!(flow = %flow, skipped = n, error = %e, "Could not count skipped runs in the ledger; `wharf status` will not count them.");
                }
            }
            // Written (or given up): no longer added to the ledger's count by `total`.
            let mut u = crate::sync::lock(&self.unwritten);
            for (flow, (n, _)) in batch {
                if let Some(c) = u.counts.get_mut(&flow) {
                    c.0 = c.0.saturating_sub(n);
                    if c.0 == 0 {
                        u.counts.remove(&flow);
                    }
                }
            }
        }
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
}
