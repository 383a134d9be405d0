//! `wharf probe`: what a partner's server supports and how it behaves, and what that means
//! for a flow.
//!
//! The protocol facts come from each backend ([`Endpoint::facts`]); everything else is
//! written once here, over the trait: the checks that need a scratch folder (`scratch`: rename
//! semantics, mtime precision, the clock offset computed in `clock`), the rules that turn
//! facts and measurements into findings about the flow's own settings (`rules`), and the
//! report stored per flow and endpoint in the state folder (`store`), which `wharf plan`
//! shows. It never touches the ledger.

pub mod clock;
pub mod rules;
pub mod scratch;
pub mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Flow;
use crate::endpoint::{Endpoint, EndpointError, RemotePath, ServerFacts};

pub use rules::{Finding, Severity, Topic, findings};
pub use scratch::{Interrupt, RenameBehaviour, WriteCheckError, WriteChecks};

/// What the endpoint itself promised at probe time (`Endpoint::capabilities`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promised {
    #[serde(with = "crate::endpoint::facts::millis")]
    pub mtime_precision: Duration,
    pub atomic_replace: bool,
}

/// Everything one probe of one endpoint learnt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub flow: String,
    /// The endpoint's name in the flow.
    pub endpoint: String,
    /// `sftp user@host:port`.
    pub target: String,
    #[serde(with = "crate::timestamp::utc")]
    pub probed_at: DateTime<Utc>,
    pub facts: ServerFacts,
    pub promised: Promised,
    /// The `--write` checks: this probe's, or the last earlier probe's that ran them.
    pub write: Option<WriteChecks>,
    /// Why this probe's `--write` checks could not be done.
    pub write_error: Option<String>,
    /// Judged against the flow as it was at probe time (`wharf plan` judges again).
    pub findings: Vec<Finding>,
}

/// How to probe.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Run the checks that write in a scratch folder.
    pub write: bool,
    /// The folder (relative to the endpoint root) to make the scratch folder in; the root
    /// when `None`.
    pub scratch_parent: Option<RemotePath>,
    /// Stops the write checks (Ctrl-C), which still remove their scratch folder.
    pub interrupt: Interrupt,
}

/// The server could not be asked at all.
#[derive(Debug, thiserror::Error)]
#[error("flow {flow}: endpoint {endpoint}: {source}")]
pub struct ProbeError {
    pub flow: String,
    pub endpoint: String,
    #[source]
    pub source: EndpointError,
}

/// Probes endpoint `name` of `flow` through `ep` (already connected). A failed `--write` check
/// is reported in the result (`write_error`), not as an error.
pub async fn probe(flow: &Flow, name: &str, ep: &dyn Endpoint, opts: &Options) -> Result<ProbeReport, ProbeError> {
    let facts = ep.facts().await.map_err(|source| ProbeError { flow: flow.name.clone(), endpoint: name.to_string(), source })?;
    // After `facts`: an SFTP endpoint knows what its server offers once connected.
    let caps = ep.capabilities();
    let promised = Promised { mtime_precision: caps.mtime_precision, atomic_replace: caps.atomic_replace };
    let (write, write_error) = if opts.write {
        let parent = opts.scratch_parent.clone().unwrap_or_else(RemotePath::root);
        match scratch::run(ep, &parent, &opts.interrupt).await {
            Ok(w) => (Some(w), None),
            Err(e) => (None, Some(e.to_string())),
        }
    } else {
        (None, None)
    };
    let mut report = ProbeReport {
        flow: flow.name.clone(),
        endpoint: name.to_string(),
        target: ep.describe(),
        probed_at: Utc::now(),
        facts,
        promised,
        write,
        write_error,
        findings: Vec::new(),
    };
    report.findings = findings(flow, &report);
    Ok(report)
}

impl ProbeReport {
    /// Keeps `earlier`'s write checks when this probe ran none and the endpoint still points
    /// at the same server (a read-only probe does not forget a measured clock offset), then
    /// judges the findings again.
    pub fn carry_over(&mut self, earlier: Option<ProbeReport>, flow: &Flow) {
        if self.write.is_none()
            && let Some(w) = earlier.filter(|e| e.target == self.target).and_then(|e| e.write)
        {
            self.write = Some(w);
            self.findings = findings(flow, self);
        }
    }
}
