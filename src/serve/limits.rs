//! Limits on concurrent runs: one global semaphore and one per server (`host:port`).
//!
//! A run holds one connection per endpoint for its whole length, so limiting the runs that
//! touch a server limits the connections that server sees from wharf. Permits are taken in
//! a fixed order (servers sorted by name, then the global one), so two runs waiting for each
//! other's servers cannot deadlock, and a run holds a global permit only once it has all its
//! servers': the runs queued behind a busy (or hung) server wait without taking the global
//! permits that runs on other servers need.

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
        // mean "no limit" here. The global permit last: a run that holds one never waits
        // (it has all it needs), so the runs that hold global permits are runs that run.
        for server in servers(flow) {
            let sem = {
                let mut map = crate::sync::lock(&self.servers);
                map.entry(server).or_insert_with(|| Arc::new(Semaphore::new(self.per_server))).clone()
            };
            if let Ok(p) = sem.acquire_owned().await {
                held.push(p);
            }
        }
        if let Ok(p) = self.runs.clone().acquire_owned().await {
            held.push(p);
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

    /// A flow taking from an SFTP server at `host` into a local folder.
    fn flow_on(name: &str, host: &str) -> Flow {
        let yaml = format!(
            "name: {name}\nendpoints:\n  s: {{ type: sftp, host: {host}, user: u, auth: {{ password: p }}, host_key: {{ known_hosts: k }} }}\n  l: {{ type: local, root: /tmp/l }}\nsource: {{ endpoint: s, path: /in }}\nsinks: [ {{ endpoint: l, path: /out }} ]\n"
        );
        crate::config::load_flow_str(&yaml, std::path::Path::new("/flows/f.yaml")).unwrap()
    }

    /// Was: a run waiting for its server's permit held a global one meanwhile, so the runs
    /// queued behind one busy (or hung) partner's server took every global permit and the
    /// flows of every other server stopped running until that partner's runs ended.
    #[tokio::test]
    async fn runs_waiting_for_a_busy_server_do_not_hold_up_other_servers() {
        let limits = Arc::new(Limits::new(2, 1));
        let (a1, a2, b) = (flow_on("a1", "a.example.com"), flow_on("a2", "a.example.com"), flow_on("b", "b.example.com"));
        // a1 runs (hung, say) on server a; a2 waits for a's only permit.
        let _a1 = limits.acquire(&a1).await;
        let l2 = limits.clone();
        let waiting = tokio::spawn(async move { l2.acquire(&a2).await });
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished(), "server a's one permit is taken");
        // A flow on server b has a global permit free and its server idle: it runs now.
        let b_runs = tokio::time::timeout(std::time::Duration::from_secs(5), limits.acquire(&b)).await;
        assert!(b_runs.is_ok(), "a run on an idle server waited for another server's runs");
        waiting.abort();
    }
}
