//! Claims on names while several files are in flight in one run.
//!
//! Files of one run overlap (`concurrency`), and two of them may want the same name on an
//! endpoint: the same target (a name template that does not use `{{name}}`), the same
//! temporary name, the same trigger file, or a free name in the same `move_to` folder. A
//! file claims every name it is about to write before it chooses or writes any of them, and
//! holds them until its rename is done; a second file wanting one of them waits. Claims are
//! taken all at once (never one after another), so two files can never wait for each other.
//!
//! Only names written within this run are claimed: other processes and servers are what the
//! exists-policy and the no-replace renames are for.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// The names claimed by files in flight.
#[derive(Debug, Default, Clone)]
pub(super) struct Claims {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    held: Mutex<HashSet<String>>,
    released: Notify,
}

/// Names held until dropped.
#[derive(Debug)]
pub(super) struct Claim {
    inner: Arc<Inner>,
    names: Vec<String>,
}

/// The claim key of `name` on endpoint `endpoint` (a path, or a folder-wide marker).
pub(super) fn key(endpoint: &str, name: &str) -> String {
    format!("{endpoint}\u{0}{name}")
}

impl Claims {
    /// Waits until none of `names` is claimed by another file, then claims them all.
    pub async fn claim(&self, mut names: Vec<String>) -> Claim {
        names.sort();
        names.dedup();
        loop {
            let released = self.inner.released.notified();
            tokio::pin!(released);
            {
                // A poisoned lock only means another file panicked while holding it; the set
                // itself is always consistent (one insert or remove at a time).
                let mut held = crate::sync::lock(&self.inner.held);
                if names.iter().all(|n| !held.contains(n)) {
                    held.extend(names.iter().cloned());
                    return Claim { inner: self.inner.clone(), names };
                }
                // Registered before the lock is let go: a release after it wakes us.
                released.as_mut().enable();
            }
            released.await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut held = crate::sync::lock(&self.inner.held);
        for n in &self.names {
            held.remove(n);
        }
        drop(held);
        self.inner.released.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_claimed_name_waits_for_its_release_and_others_do_not() {
        let claims = Claims::default();
        let a = claims.claim(vec![key("sink", "/x"), key("sink", "/.x.part")]).await;
        // A disjoint set is granted at once.
        let b = tokio::time::timeout(Duration::from_secs(1), claims.claim(vec![key("sink", "/y")])).await.expect("not blocked");
        // An overlapping one waits…
        let waiting = tokio::spawn({
            let claims = claims.clone();
            async move { claims.claim(vec![key("sink", "/z"), key("sink", "/.x.part")]).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        // …without holding its other names meanwhile.
        drop(tokio::time::timeout(Duration::from_secs(1), claims.claim(vec![key("sink", "/z")])).await.expect("z is free"));
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(1), waiting).await.expect("granted after the release").unwrap();
        drop((b, c));
        drop(tokio::time::timeout(Duration::from_secs(1), claims.claim(vec![key("sink", "/.x.part")])).await.expect("all released"));
    }
}
