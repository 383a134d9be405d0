//! `wharf compact`: gives back to the file system the space the ledger no longer uses (what
//! history pruning and `wharf forget` freed). redb reuses freed pages, so a ledger whose flows
//! prune keeps its size without this; it is for a ledger that shrank for good — a large flow
//! forgotten, a `history` made shorter. Offline: it needs the ledger for itself (refused while
//! `wharf serve` holds it, like the other commands that write).

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::Global;
use super::output::outln;
use super::state::{ledger_path, open_for_write_as};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report {
    ledger: String,
    /// The file's size before and after, in bytes (both 0 when there is no ledger yet).
    bytes_before: u64,
    bytes_after: u64,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let path = ledger_path(global);
    let size = || std::fs::metadata(&path).map(|m| m.len());
    let (before, after) = if path.exists() {
        let ledger = open_for_write_as(global, "compact", "stop the daemon to compact the ledger")?;
        let before = size().with_context(|| format!("compact: cannot read the size of {}", path.display()))?;
        ledger.compact().with_context(|| format!("compact: cannot compact the ledger at {}", path.display()))?;
        drop(ledger);
        (before, size().with_context(|| format!("compact: cannot read the size of {}", path.display()))?)
    } else {
        (0, 0)
    };
    if args.json {
        let report = Report { ledger: path.display().to_string(), bytes_before: before, bytes_after: after };
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else if before == 0 {
        outln!("no ledger at {}: nothing to compact", path.display());
    } else {
        outln!("compacted the ledger at {}: {} → {}", path.display(), crate::text::bytes(before), crate::text::bytes(after));
    }
    Ok(ExitCode::SUCCESS)
}
