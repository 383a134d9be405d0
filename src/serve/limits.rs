//! Limits on concurrent runs: one global semaphore and one per server (`host:port`).
//!
//! A run holds one connection per endpoint for its whole length, so limiting the runs that
//! touch a server limits the connections that server sees from wharf. Permits are taken in
//! a fixed order (the global one, then servers sorted by name), so two runs waiting for each
//! other's servers cannot deadlock.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Flow;
use crate::config::flow::EndpointSpec;

/// The semaphores.
#[derive(Debug)]
pub struct Limits {
    runs: Arc<Semaphore>,
    per_server: usize,
    servers: Mutex<BTreeMap<String, Arc<Semaphore>>>,
}

/// Permits held by one run; dropped when the run ends.
#[derive(Debug)]
pub struct Permits {
    _held: Vec<OwnedSemaphorePermit>,
}

impl Limits {
    pub fn new(max_runs: usize, per_server: usize) -> Self {
        Limits { runs: Arc::new(Semaphore::new(max_runs.max(1))), per_server: per_server.max(1), servers: Mutex::new(BTreeMap::new()) }
    }

    /// Waits until `flow` may run.
    pub async fn acquire(&self, flow: &Flow) -> Permits {
        let mut held = Vec::new();
        // The semaphores are never closed, so acquiring cannot fail; a closed one would only
        // mean "no limit" here.
        if let Ok(p) = self.runs.clone().acquire_owned().await {
            held.push(p);
        }
        for server in servers(flow) {
            let sem = {
                let mut map = crate::sync::lock(&self.servers);
                map.entry(server).or_insert_with(|| Arc::new(Semaphore::new(self.per_server))).clone()
            };
            if let Ok(p) = sem.acquire_owned().await {
                held.push(p);
            }
        }
        Permits { _held: held }
    }
}

/// The servers a flow connects to, sorted and without repeats.
pub fn servers(flow: &Flow) -> BTreeSet<String> {
    flow.endpoints
        .values()
        .filter_map(|e| match e {
            EndpointSpec::Local { .. } => None,
            EndpointSpec::Sftp(s) => Some(format!("{}:{}", s.host, s.port)),
            EndpointSpec::Ftp(f) => Some(format!("{}:{}", f.host, f.port)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_run_waits_for_the_global_permit() {
        let limits = Arc::new(Limits::new(1, 1));
        let flow = crate::engine::tests::sample_flow();
        let first = limits.acquire(&flow).await;
        let l2 = limits.clone();
        let f2 = flow.clone();
        let waiting = tokio::spawn(async move { l2.acquire(&f2).await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
    }
}
