//! `wharf files FLOW`: the files of a flow that changed last (`--limit`, saying when older
//! ones were left out), with their lifecycle state, oldest first.

use std::process::ExitCode;

use super::Global;
use super::output::outln;
use super::state::{no_ledger, open_for_read};
use crate::ledger::Millis;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow name.
    pub flow: String,
    /// Most files to show: those whose record changed last (taken, delivered, failed…),
    /// oldest first. Older ones are left out, and a last line says so.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`).
    #[arg(long)]
    pub json: bool,
}

/// `2026-11-25 10:00:00` for ms since the epoch (UTC).
pub fn when(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// The last line of a list that left older records out: how many it showed, of how many, and
/// how to see more (worded as `wharf events` words it).
pub fn left_out(shown: usize, total: usize, what: &str) -> String {
    format!("(the newest {shown} of {total} {what}; earlier ones: --limit N, --limit {total} for all)")
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, args.json);
    };
    let flow = super::state::flow_name(&args.flow);
    let files = ledger.latest_files(&flow, args.limit)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&files.items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if files.total == 0 {
        let never = super::state::never_ran(&ledger, &flow)?;
        outln!("{}", never.unwrap_or_else(|| format!("no files recorded for flow {flow}")));
        return Ok(ExitCode::SUCCESS);
    }
    // `fails`: the runs the file failed in so far (what `retry.give_up_after` counts), 0 for a
    // file delivered at its first try (headed `try` before, which read as "delivered at try 0").
    outln!("{:<11} {:>5} {:>12}  {:<19}  {:<40}  detail", "state", "fails", "bytes", "updated (UTC)", "path");
    for f in &files.items {
        let detail = match (&f.last_error, f.state.in_flight() || f.state == crate::ledger::FileState::Failed) {
            (Some(e), true) => format!("{}: {}", e.kind, e.message),
            _ => f.deliveries.iter().map(|d| format!("/{}", d.target)).collect::<Vec<_>>().join(", "),
        };
        outln!(
            "{:<11} {:>5} {:>12}  {:<19}  {:<40}  {}",
            f.state.as_str(),
            f.attempts,
            f.size,
            when(f.updated),
            format!("/{}", f.path),
            detail
        );
    }
    if files.left_out() {
        outln!("{}", left_out(files.items.len(), files.total, "files"));
    }
    Ok(ExitCode::SUCCESS)
}
