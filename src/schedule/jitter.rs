//! The stable per-flow jitter offset: where in `[0, jitter)` a flow's runs are shifted to.
//!
//! Derived from a SHA-256 of the flow name, so a hundred flows on one cron spread out, and a
//! flow keeps its offset across restarts, machines and wharf versions (unlike std's hasher).

use std::time::Duration;

use sha2::{Digest, Sha256};

/// The offset of `flow_name`'s runs in `[0, jitter)`, in whole milliseconds. Zero when
/// `jitter` is under a millisecond.
pub fn offset(flow_name: &str, jitter: Duration) -> Duration {
    let span = jitter.as_millis();
    if span == 0 {
        return Duration::ZERO;
    }
    let digest = Sha256::digest(flow_name.as_bytes());
    let mut head = [0u8; 16];
    head.copy_from_slice(&digest[..16]);
    let millis = u128::from_be_bytes(head) % span;
    // `millis < span = jitter.as_millis()`, which came from a Duration: it fits.
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_in_range_and_spread() {
        let jitter = Duration::from_secs(30);
        assert_eq!(offset("orders", jitter), offset("orders", jitter));
        // Pinned: the offset must not change between releases (runs would move).
        assert_eq!(offset("orders", jitter), Duration::from_millis(27_068));
        let offsets: Vec<Duration> = (0..100).map(|i| offset(&format!("flow-{i}"), jitter)).collect();
        assert!(offsets.iter().all(|o| *o < jitter));
        let mut distinct = offsets.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 90, "100 flows get (nearly) 100 different offsets: {}", distinct.len());
        // Spread over the whole range, not bunched at one end.
        assert!(offsets.iter().any(|o| *o < Duration::from_secs(5)) && offsets.iter().any(|o| *o > Duration::from_secs(25)));
        assert_ne!(offset("orders", jitter), offset("invoices", jitter));
    }

    #[test]
    fn zero_jitter_is_no_offset() {
        assert_eq!(offset("orders", Duration::ZERO), Duration::ZERO);
        assert_eq!(offset("orders", Duration::from_micros(900)), Duration::ZERO);
        assert!(offset("orders", Duration::from_millis(1)).is_zero());
    }
}
