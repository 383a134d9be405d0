//! `wharf runs [FLOW]`: run history from the ledger, newest first.

use std::process::ExitCode;

use super::Global;
use super::run::open_ledger;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this flow's runs.
    pub flow: Option<String>,
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let ledger = open_ledger(global)?;
    let runs = ledger.runs(args.flow.as_deref(), args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>5}  {:<24}  {:<20}  {:>8}  {:<8}  {:>4} {:>5} {:>5} {:>4} {:>4}  error",
        "run", "flow", "started (UTC)", "took", "status", "seen", "wait", "deliv", "skip", "fail"
    );
    for r in runs {
        let took = r.finished.map(|f| format!("{:.1}s", (f - r.started) as f64 / 1000.0)).unwrap_or_else(|| "-".into());
        let c = r.counts;
        println!(
            "{:>5}  {:<24}  {:<20}  {:>8}  {:<8}  {:>4} {:>5} {:>5} {:>4} {:>4}  {}",
            r.id,
            r.flow,
            super::files::when(r.started),
            took,
            r.status.as_str(),
            c.seen,
            c.not_ready,
            c.delivered,
            c.skipped,
            c.failed,
            r.error.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}
