//! `wharf files FLOW`: every file the ledger knows for a flow, with its lifecycle state.

use std::process::ExitCode;

use super::Global;
use super::output::outln;
use super::state::{no_ledger, open_for_read};
use crate::ledger::Millis;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow name.
    pub flow: String,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`).
    #[arg(long)]
    pub json: bool,
}

/// `2026-11-25 10:00:00` for ms since the epoch (UTC).
pub fn when(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, args.json);
    };
    let flow = super::state::flow_name(&args.flow);
    let files = ledger.files(&flow)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&files)?);
        return Ok(ExitCode::SUCCESS);
    }
    if files.is_empty() {
        let never = super::state::never_ran(&ledger, &flow)?;
        outln!("{}", never.unwrap_or_else(|| format!("no files recorded for flow {flow}")));
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{:<11} {:>4} {:>12}  {:<19}  {:<40}  detail", "state", "try", "bytes", "updated (UTC)", "path");
    for f in files {
        let detail = match (&f.last_error, f.state.in_flight() || f.state == crate::ledger::FileState::Failed) {
            (Some(e), true) => format!("{}: {}", e.kind, e.message),
            _ => f.deliveries.iter().map(|d| format!("/{}", d.target)).collect::<Vec<_>>().join(", "),
        };
        outln!(
            "{:<11} {:>4} {:>12}  {:<19}  {:<40}  {}",
            f.state.as_str(),
            f.attempts,
            f.size,
            when(f.updated),
            format!("/{}", f.path),
            detail
        );
    }
    Ok(ExitCode::SUCCESS)
}
