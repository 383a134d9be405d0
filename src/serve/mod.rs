//! `wharf serve`: every flow of a folder on its schedule, in one long-running process that
//! owns the ledger.
//!
//! - `registry`: the flow files, reloaded on change or SIGHUP (a broken file keeps the previous
//!   version running);
//! - `supervisor`: the loop — when each flow is due (`schedule`), no two runs of one flow at
//!   once (`overlap: skip | queue`), retries with backoff of runs that could not reach a
//!   server, triggers from the CLI, expected-file deadlines (`expect`), graceful shutdown;
//! - `limits`: concurrent runs overall and per server;
//! - `runner`: each run on a thread of its own, as `wharf run` runs it;
//! - `behind`: the ledger writes the loop decides, made off it (in order, by one blocking
//!   task): `skips`, the runs skipped (`overlap:`); `expect`'s marks; the run summaries;
//! - `notifier`: the event log (`events_v2`) and run summaries to the `notify:` rules;
//! - `daemon`: what the control interface (`control`) asks of it: status, trigger, metrics;
//! - `config`: `serve.yaml`.
//!
//! Time and shutdown are injected ([`crate::schedule::Clock`], a future), so tests drive the
//! whole daemon in-process without sleeping. Runs themselves are [`crate::engine::run_once`],
//! exactly what `wharf run` does.

mod behind;
pub mod config;
mod daemon;
mod expect;
pub mod limits;
mod notifier;
pub mod registry;
mod runner;
mod skips;
mod supervisor;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

pub use config::ServeConfig;
pub use supervisor::{Finished, Handle};

use crate::ledger::{Ledger, LedgerError};
use crate::schedule::Clock;

/// What `wharf serve` serves.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The folder of flow files.
    pub flows_dir: PathBuf,
    /// The state folder: ledger, staging, control socket.
    pub state_dir: PathBuf,
    pub config: ServeConfig,
}

/// The daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("flows folder {0}: {1}")]
    Flows(PathBuf, std::io::Error),
    /// The control interface could not start (its own message names the socket or address).
    #[error("{0}")]
    Control(String),
}

/// Runs the daemon until `shutdown` completes, then stops it gracefully: no new run or file
/// is started, in-flight files get `shutdown_grace` to finish, and what is cut off resumes at
/// the next start.
pub async fn serve(opts: ServeOptions, clock: Arc<dyn Clock>, shutdown: impl Future<Output = ()> + Send) -> Result<(), ServeError> {
    let handle = start(opts, clock)?;
    if let Err(e) = handle.serve_control().await {
        handle.shutdown().await;
        return Err(e);
    }
    // The flows it serves (a refused file, invalid or with a taken name, is not one), and
    // which build serves them.
    tracing::info!(flows = handle.served(), version = crate::VERSION, "wharf serve started.");
    shutdown.await;
    handle.shutdown().await;
    Ok(())
}

/// Opens the ledger (as its one writer) and starts the scheduler, without the control
/// interface (see [`Handle::serve_control`]). Tests drive the daemon through the handle.
pub fn start(opts: ServeOptions, clock: Arc<dyn Clock>) -> Result<Handle, ServeError> {
    // SIGHUP's default action ends the process: it is taken over before anything slow (opening
    // and repairing the ledger, loading every flow), so a reload asked for meanwhile is one.
    let hup = supervisor::Hangup::listen();
    let ledger = Arc::new(Ledger::open(&opts.state_dir.join("ledger.redb"))?);
    if let Some(note) = ledger.created_notice() {
        tracing::warn!("{note}");
    }
    supervisor::start(opts, ledger, clock, hup)
}
