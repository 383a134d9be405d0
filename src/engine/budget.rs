//! The memory a run's files moved whole may hold at once.
//!
//! A file of at most [`stage::WHOLE_MAX`](super::stage::WHOLE_MAX) is read into memory in one
//! piece: downloaded whole and then written to staging, or read whole from staging and then
//! uploaded. Its bytes are held only for that stretch; before and after it (waiting for a
//! login, the fsync of its delivered copy, the ledger's group commit) the file holds none.
//! So the number of files in flight is not what bounds memory: [`Budget`] is. A file takes
//! its size from the budget before it reads and gives it back once its bytes are written
//! ([`Budget::hold`]), and a file that does not fit waits, holding nothing.
//!
//! This is what lets a run of middle-sized files keep many of them in flight (their fsyncs
//! and commits overlap) with memory bounded by the budget, not by their number. Streamed
//! (bigger) files are not counted: each moves through a few chunks of its own, and how many
//! of them move at once is capped by `endpoints::concurrency`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::stage;

/// What the budget counts in: 4 KiB (a page), so a MiB is 256 permits.
const UNIT: u64 = 4096;

/// Bytes the files moved whole may hold at once: 8 MiB. Measured on the benchmark's runs of
/// 200 × 1 MiB (64 files in flight): with 12 MiB no faster, and the SFTP push peaked at
/// 56 MiB of RSS instead of 49 (over SFTP a file's bytes are also in the SSH channel's
/// buffers while they go); with 4 MiB 5–10 % slower.
pub const DEFAULT_BYTES: u64 = 8 << 20;

/// A run's budget for bytes held by files moved whole.
pub struct Budget {
    permits: Arc<Semaphore>,
    total: u32,
}

/// Bytes taken from a [`Budget`], given back when dropped.
#[must_use = "the bytes are given back when this is dropped"]
pub struct Held {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `bytes` (at least one file of [`stage::WHOLE_MAX`] fits).
    pub fn new(bytes: u64) -> Self {
        let total = u32::try_from(bytes.max(stage::WHOLE_MAX).div_ceil(UNIT)).unwrap_or(u32::MAX);
        Budget { permits: Arc::new(Semaphore::new(total as usize)), total }
    }

    /// Takes `size` bytes for a file about to be read into memory whole, waiting until they
    /// fit. A file bigger than [`stage::WHOLE_MAX`] is streamed, not held: it takes nothing.
    pub async fn hold(&self, size: u64) -> Held {
        if !stage::is_small(size) {
            return Held { _permit: None };
        }
        // Invariant: size <= WHOLE_MAX, so the count fits a u32 and never exceeds `total`
        // (`new` makes room for a whole file); an empty file takes one unit like any other.
        let n = u32::try_from(size.div_ceil(UNIT).max(1)).unwrap_or(self.total).min(self.total);
        // The semaphore is never closed, so acquiring only fails if it were.
        Held { _permit: Arc::clone(&self.permits).acquire_many_owned(n).await.ok() }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(DEFAULT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn files_moved_whole_wait_until_their_bytes_fit_and_big_ones_take_nothing() {
        let budget = Budget::new(3 << 20);
        let a = budget.hold(1 << 20).await;
        let b = budget.hold(1 << 20).await;
        let _c = budget.hold(1 << 20).await;
        let _streamed = budget.hold(1 << 30).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), budget.hold(1)).await;
        assert!(waiting.is_err(), "the budget is spent: a fourth file waits");
        drop(a);
        let _d = tokio::time::timeout(Duration::from_millis(50), budget.hold(1 << 20)).await.expect("a MiB given back fits a MiB");
        drop(b);
        let _e = budget.hold(0).await;
    }

    #[tokio::test]
    async fn a_budget_smaller_than_one_file_still_lets_one_through() {
        let budget = Budget::new(1);
        let _one = tokio::time::timeout(Duration::from_millis(50), budget.hold(stage::WHOLE_MAX)).await.expect("one file fits");
    }
}
