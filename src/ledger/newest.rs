//! The newest `limit` of a stream of records, by a key, in memory bounded by `limit`: what
//! `wharf files` and `wharf awaits` show of tables keyed by path, not by time (a bounded
//! newest-first read of them is not possible; holding every record to sort it is not needed).
//! It only selects and counts; which key is "newest" is its callers'.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// The newest `limit` records of those offered, and how many were offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest<T> {
    /// The newest, oldest first (by key; a key is unique per record).
    pub items: Vec<T>,
    /// How many there were in all (`items.len()` when none was left out).
    pub total: usize,
}

impl<T> Newest<T> {
    /// Whether older records were left out.
    pub fn left_out(&self) -> bool {
        self.total > self.items.len()
    }
}

/// Keeps the `limit` greatest keys seen: a min-heap whose top is the oldest kept.
pub(super) struct Keep<K: Ord, T> {
    limit: usize,
    heap: BinaryHeap<Reverse<Entry<K, T>>>,
    total: usize,
}

struct Entry<K, T>(K, T);

impl<K: Ord, T> PartialEq for Entry<K, T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<K: Ord, T> Eq for Entry<K, T> {}
impl<K: Ord, T> PartialOrd for Entry<K, T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord, T> Ord for Entry<K, T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp(&other.0)
    }
}

impl<K: Ord, T> Keep<K, T> {
    pub(super) fn new(limit: usize) -> Self {
        // Not `with_capacity(limit)`: a huge `--limit` must not allocate up front.
        Keep { limit, heap: BinaryHeap::new(), total: 0 }
    }

    /// Offers one record: kept if it is among the `limit` newest so far.
    pub(super) fn offer(&mut self, key: K, item: T) {
        self.total += 1;
        if self.heap.len() < self.limit {
            self.heap.push(Reverse(Entry(key, item)));
        } else if let Some(mut oldest) = self.heap.peek_mut()
            && key > oldest.0.0
        {
            *oldest = Reverse(Entry(key, item));
        }
    }

    pub(super) fn finish(self) -> Newest<T> {
        // `into_sorted_vec` of a heap of `Reverse` is newest first.
        let mut items: Vec<T> = self.heap.into_sorted_vec().into_iter().map(|Reverse(Entry(_, t))| t).collect();
        items.reverse();
        Newest { items, total: self.total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_greatest_keys_oldest_first_and_counts_all() {
        for limit in [0, 1, 3, 10, 20] {
            let mut keep = Keep::new(limit);
            // Offered out of order, as a table keyed by path yields them.
            for k in [7, 3, 9, 1, 10, 4, 8, 2, 6, 5] {
                keep.offer(k, format!("r{k}"));
            }
            let newest = keep.finish();
            let expected: Vec<String> = (1..=10).skip(10usize.saturating_sub(limit)).map(|k| format!("r{k}")).collect();
            assert_eq!(newest, Newest { items: expected, total: 10 }, "limit {limit}");
            assert_eq!(newest.left_out(), limit < 10, "limit {limit}");
        }
    }
}
