//! `wharf trigger FLOW`: ask the running `wharf serve` to run a flow now.
//!
//! Exit codes: 0 started or queued, 1 running already (overlap: skip), 2 no such flow in the
//! daemon, 3 no daemon (or it is shutting down, or did not answer).

use std::process::ExitCode;

use super::output::{errln, outln};
use super::{EXIT_ABORTED, EXIT_FILES_FAILED, EXIT_INVALID, Global};
use crate::control::discovery::Found;
use crate::control::{TriggerError, Triggered};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow name (or its flow file).
    pub flow: String,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let name = super::state::flow_name(&args.flow);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = match super::state::find_daemon(&rt, global)? {
        Found::Running { client, .. } => client,
        Found::NotRunning { .. } => {
            errln!(
                "error: no `wharf serve` is running for state dir {}; run the flow once with `wharf run {name}`",
                global.state_dir.display()
            );
            return Ok(ExitCode::from(EXIT_ABORTED));
        }
    };
    match rt.block_on(client.trigger(&name))? {
        Ok(Triggered::Started) => {
            outln!("flow {name}: run started");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Triggered::Queued) => {
            outln!("flow {name}: running now; another run is queued to start right after it");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ TriggerError::AlreadyRunning(_)) => {
            errln!("{e}; nothing queued (its overlap is `skip`)");
            Ok(ExitCode::from(EXIT_FILES_FAILED))
        }
        Err(TriggerError::UnknownFlow(_)) => {
            errln!("error: the running `wharf serve` has no flow named {name}; `wharf status` lists its flows");
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e @ TriggerError::ShuttingDown) => {
            errln!("error: {e}");
            Ok(ExitCode::from(EXIT_ABORTED))
        }
    }
}
