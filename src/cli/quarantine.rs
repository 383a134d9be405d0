//! `wharf quarantine list|show|release|reprocess`: the files a flow's content steps refused.
//!
//! `list` reads the ledger only; `show`, `release` and `reprocess` load the flow file to reach
//! the quarantine location (and, for `reprocess`, the source and sinks).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::Global;
use super::output::{errln, outln};
use super::run::{load, outcome_label, show_report};
use super::state::{no_ledger, open_for_read, open_for_write};
use crate::engine::RunOptions;
use crate::engine::quarantine::{self, QuarantineError};
use crate::ledger::FileState;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Subcommand)]
pub enum Sub {
    /// List a flow's quarantined files: when, why, where the copy is.
    List {
        /// Flow name, or flow file.
        flow: String,
        /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`).
        #[arg(long)]
        json: bool,
    },
    /// Show why a file was quarantined, with its text report.
    Show {
        /// Flow file (or the name of a flow in ./flows).
        flow: PathBuf,
        /// The file's source path, as `list` shows it.
        path: String,
    },
    /// Remove the quarantined copy and its reports and forget the file: the next run takes it
    /// again if it is (still, or again) at the source. Also gives up a file a crashed run left
    /// being quarantined that no run can finish (its source, its copy and its staged copy
    /// gone), which every run fails otherwise.
    Release {
        /// Flow file (or the name of a flow in ./flows).
        flow: PathBuf,
        /// The file's source path, as `list` shows it.
        path: String,
        /// Release the copy also when it is the file's last (its source deleted by
        /// `after.failure: delete` and not sent again): the file is then lost.
        #[arg(long)]
        force: bool,
    },
    /// Take the quarantined copy through the flow's current steps (after fixing the script or
    /// schema) and deliver it when it passes; on success the copy leaves quarantine.
    Reprocess {
        /// Flow file (or the name of a flow in ./flows).
        flow: PathBuf,
        /// The file's source path, as `list` shows it.
        path: String,
        /// Print the run report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::List { flow, json } => list(&flow, json, global),
        Sub::Show { flow, path } => with_flow(&flow, |f| show(f, &path, global)),
        Sub::Release { flow, path, force } => with_flow(&flow, |f| {
            let ledger = open_for_write(global, &f.name, WHILE_SERVING)?;
            let staging = global.state_dir.join("staging");
            let removed = runtime()?.block_on(quarantine::release(f, &ledger, &path, force, &staging));
            match removed {
                Ok(removed) => {
                    outln!(
                        "released {}; removed: {}",
                        quarantine::ledger_path(&path),
                        if removed.is_empty() { "nothing".into() } else { removed.join(", ") }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => report_error(e),
            }
        }),
        Sub::Reprocess { flow, path, json } => with_flow(&flow, |f| {
            let ledger = open_for_write(global, &f.name, WHILE_SERVING)?;
            let opts = RunOptions::new(global.state_dir.join("staging"));
            match runtime()?.block_on(quarantine::reprocess(f, &ledger, &opts, &path)) {
                Ok(report) => show_report(&report, json),
                Err(e) => report_error(e),
            }
        }),
    }
}

/// What `release` and `reprocess` advise while `wharf serve` holds the ledger.
const WHILE_SERVING: &str = "stop the daemon to release or reprocess quarantined files";

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn with_flow(flow: &Path, f: impl FnOnce(&crate::config::Flow) -> anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    f(&load(flow)?)
}

/// A quarantine command that could not be carried out (`cli::failure` gives the exit code:
/// 2 for a file that is not quarantined, else 3).
fn report_error(e: QuarantineError) -> anyhow::Result<ExitCode> {
    Err(e.into())
}

fn list(flow: &str, json: bool, global: &Global) -> anyhow::Result<ExitCode> {
    let name = super::state::flow_name(flow);
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, json);
    };
    let mut rows = Vec::new();
    for rec in ledger.files(&name)?.into_iter().filter(|r| r.state == FileState::Quarantined) {
        let result = ledger.file_result(&name, &rec.path)?.unwrap_or_default();
        rows.push((rec, result));
    }
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(rec, res)| {
                serde_json::json!({
                    "path": rec.path, "size": rec.size, "sha256": rec.sha256, "run": rec.run,
                    "quarantine": res.quarantine, "records": res.counts,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        let never = super::state::never_ran(&ledger, &name)?;
        outln!("{}", never.unwrap_or_else(|| format!("no quarantined files for flow {name}")));
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{:<19}  {:>5}  {:<36}  {:<36}  reason", "quarantined (UTC)", "run", "path", "copy");
    for (rec, res) in rows {
        let q = res.quarantine.unwrap_or_default();
        let copy = q.copy.map(|c| format!("{}:/{c}", q.endpoint)).unwrap_or_default();
        outln!("{:<19}  {:>5}  {:<36}  {:<36}  {}", super::files::when(q.at), rec.run, format!("/{}", rec.path), copy, q.reason);
    }
    Ok(ExitCode::SUCCESS)
}

fn show(flow: &crate::config::Flow, path: &str, global: &Global) -> anyhow::Result<ExitCode> {
    let key = quarantine::ledger_path(path);
    let Some(ledger) = open_for_read(global)? else {
        return report_error(QuarantineError::NotQuarantined { flow: flow.name.clone(), path: key });
    };
    let rec = ledger.file(&flow.name, &key)?.filter(|r| r.state == FileState::Quarantined);
    let (Some(rec), Some(res)) = (rec, ledger.file_result(&flow.name, &key)?) else {
        return report_error(QuarantineError::NotQuarantined { flow: flow.name.clone(), path: key });
    };
    let q = res.quarantine.clone().unwrap_or_default();
    let c = res.counts;
    outln!("file:        /{} ({} bytes, SHA-256 {})", rec.path, rec.size, rec.sha256.as_deref().unwrap_or("-"));
    outln!("quarantined: {} UTC in run {}", super::files::when(q.at), rec.run);
    outln!("reason:      {}", q.reason);
    outln!("copy:        {}", q.copy.as_ref().map(|c| format!("{}:/{c}", q.endpoint)).unwrap_or_else(|| "-".into()));
    outln!("records:     {} read, {} valid, {} rejected, {} skipped ({} errors)", c.read, c.valid, c.rejected, c.skipped, q.errors_total);
    outln!("outcome:     {}", outcome_label(crate::engine::Outcome::Quarantined));
    match runtime()?.block_on(quarantine::report_text(flow, &q)) {
        Ok(Some(text)) => outln!("\n{text}"),
        Ok(None) => {}
        Err(e) => errln!("warning: could not read the report: {e}"),
    }
    Ok(ExitCode::SUCCESS)
}
