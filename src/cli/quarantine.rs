//! `wharf quarantine list|show|release|reprocess`: the files a flow's content steps refused.
//!
//! `list` reads the ledger only; `show`, `release` and `reprocess` load the flow file to reach
//! the quarantine location (and, for `reprocess`, the source and sinks).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::Global;
use super::output::{errln, outln};
use super::run::{load_for, load_to_read, outcome_label, show_report};
use super::state::{no_ledger, open_for_read, open_for_write};
use crate::engine::RunOptions;
use crate::engine::quarantine::{self, QuarantineError};

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
    /// Show why a file was quarantined, with its text report (every quarantined file of the
    /// path, earlier ones a newer file replaced included, unless `--copy` names one).
    Show {
        /// Flow file (or the name of a flow in ./flows).
        flow: PathBuf,
        /// The file's source path, as `list` shows it (or its copy's, `ENDPOINT:/PATH` or the
        /// path, when no quarantined file has that source path).
        path: String,
        /// The copy of the one to show, as `list` shows it (`ENDPOINT:/PATH`, or the path).
        #[arg(long)]
        copy: Option<String>,
    },
    /// Remove the quarantined copy and its reports and forget the file: the next run takes it
    /// again if it is (still, or again) at the source. Also gives up a file a crashed run left
    /// being quarantined that no run can finish (its source, its copy and its staged copy
    /// gone), which every run fails otherwise. A path with several quarantined files (a newer
    /// file was taken under its name after one was quarantined) needs `--copy`; releasing an
    /// earlier one leaves the path's newer file as it is.
    Release {
        /// Flow file (or the name of a flow in ./flows).
        flow: PathBuf,
        /// The file's source path, as `list` shows it (or its copy's, `ENDPOINT:/PATH` or the
        /// path, when no quarantined file has that source path).
        path: String,
        /// The copy of the one to release, as `list` shows it (`ENDPOINT:/PATH`, or the path).
        #[arg(long)]
        copy: Option<String>,
        /// Release the copy also when it is the file's last (its source deleted by
        /// `after.failure: delete` and not sent again): the file is then lost.
        #[arg(long)]
        force: bool,
        /// JSON output: `path`, `copy`, `removed`, `left` (the copy left where it is, and
        /// why; `null` when none was) and `given_up` (a file left being quarantined that was
        /// given up: that nothing had been put aside, and what was forgotten; else `null`).
        #[arg(long)]
        json: bool,
    },
    /// Take the quarantined copy through the flow's current steps (after fixing the script or
    /// schema) and deliver it when it passes; on success the copy leaves quarantine. Only the
    /// file the path's record holds now: an earlier one a newer file replaced is refused.
    Reprocess {
        /// Flow file (or the name of a flow in ./flows).
        flow: PathBuf,
        /// The file's source path, as `list` shows it (or its copy's, `ENDPOINT:/PATH` or the
        /// path, when no quarantined file has that source path).
        path: String,
        /// The copy of the one to reprocess, as `list` shows it (`ENDPOINT:/PATH`, or the path).
        #[arg(long)]
        copy: Option<String>,
        /// Print the run report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::List { flow, json } => list(&flow, json, global),
        // Reads the ledger (and the report, where the copy is): the flow's secrets are needed
        // only to reach a server holding the report.
        Sub::Show { flow, path, copy } => show(&load_to_read(&flow, "nothing was shown")?, &path, copy.as_deref(), global),
        Sub::Release { flow, path, copy, force, json } => with_flow(&flow, "nothing was released", |f| {
            let ledger = open_for_write(global, &f.name, WHILE_SERVING)?;
            let staging = global.state_dir.join("staging");
            // The copy meant, for the report: given, or named by the path.
            let meant = match quarantine::resolve(&ledger, f, &path, copy.as_deref()) {
                Ok((_, c)) => c,
                Err(e) => return report_error(e),
            };
            match runtime()?.block_on(quarantine::release(f, &ledger, &path, copy.as_deref(), force, &staging)) {
                Ok(r) => {
                    show_released(&r, meant.as_deref(), json)?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => report_error(e),
            }
        }),
        Sub::Reprocess { flow, path, copy, json } => with_flow(&flow, "nothing was reprocessed", |f| {
            let ledger = open_for_write(global, &f.name, WHILE_SERVING)?;
            let opts = RunOptions::new(global.state_dir.join("staging"));
            match runtime()?.block_on(quarantine::reprocess(f, &ledger, &opts, &path, copy.as_deref())) {
                Ok(report) => show_report(&report, json),
                Err(e) => report_error(e),
            }
        }),
    }
}

/// What `release` says it did: the file, what was removed, and the copy it left (and why).
fn show_released(r: &quarantine::Released, copy: Option<&str>, json: bool) -> anyhow::Result<()> {
    if json {
        let v = serde_json::json!({ "path": format!("/{}", r.path), "copy": copy, "removed": r.removed, "left": r.left, "given_up": r.given_up });
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if let Some(g) = &r.given_up {
        outln!("released /{}: {g}", r.path);
        return Ok(());
    }
    outln!(
        "released /{}{}; removed: {}",
        r.path,
        copy.map(|c| format!(" (copy {c})")).unwrap_or_default(),
        if r.removed.is_empty() { "nothing".into() } else { r.removed.join(", ") }
    );
    if let Some(l) = &r.left {
        outln!("left {} where it is: {}", l.copy, l.why);
    }
    Ok(())
}

/// What can be done about a quarantined file (the path's newest), for `quarantine show`.
fn next_steps(flow: &str, path: &str) -> String {
    format!(
        "with the flow fixed (its steps, schema or script), `wharf quarantine reprocess {flow} /{path}` delivers this copy; \
         a corrected file sent again under this name is taken by the next run (`wharf plan {flow}` says so), this copy kept; \
         `wharf quarantine release {flow} /{path}` removes the copy and forgets the file (taken again if it is still at the source)"
    )
}

/// What `release` and `reprocess` advise while `wharf serve` holds the ledger.
const WHILE_SERVING: &str = "stop the daemon to release or reprocess quarantined files";

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?)
}

fn with_flow(flow: &Path, not_done: &str, f: impl FnOnce(&crate::config::Flow) -> anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    f(&load_for(flow, not_done)?)
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
    let rows = ledger.quarantined_files(&name, None)?;
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|f| {
                let rec = &f.rec;
                serde_json::json!({
                    "path": rec.path, "size": rec.size, "sha256": rec.sha256, "run": rec.run, "state": rec.state,
                    "copy": f.copy(), "earlier": f.earlier,
                    "quarantine": f.result.quarantine, "records": f.result.counts,
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
    let mut table = vec![["quarantined (UTC)", "run", "path", "copy", "reason"].map(String::from).to_vec()];
    for f in &rows {
        let q = f.quarantine();
        let path = match f.earlier {
            Some(_) => format!("/{} (earlier)", f.rec.path),
            None => format!("/{}", f.rec.path),
        };
        let copy = f.copy().unwrap_or_default();
        table.push(vec![super::files::when(q.at), f.rec.run.to_string(), path, copy, q.reason.clone()]);
    }
    use crate::text::Column;
    let columns = [Column::left(19), Column::right(5), Column::name(36), Column::name(36), Column::left(0)];
    for line in crate::text::table(&columns, &table) {
        outln!("{line}");
    }
    if rows.iter().any(|f| f.earlier.is_some()) {
        outln!(
            "(earlier): a newer file has been taken under its name since; `wharf quarantine release {name} PATH --copy COPY` removes its copy"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn show(flow: &crate::config::Flow, path: &str, copy: Option<&str>, global: &Global) -> anyhow::Result<ExitCode> {
    let Some(ledger) = open_for_read(global)? else {
        let key = quarantine::ledger_path(path);
        return report_error(QuarantineError::NotQuarantined { flow: flow.name.clone(), path: key });
    };
    let (key, copy) = match quarantine::resolve(&ledger, flow, path, copy) {
        Ok(r) => r,
        Err(e) => return report_error(e),
    };
    let copy = copy.as_deref();
    let files = match copy {
        Some(_) => match quarantine::pick(&ledger, flow, &key, copy) {
            Ok(f) => vec![f],
            Err(e) => return report_error(e),
        },
        None => ledger.quarantined_files(&flow.name, Some(&key))?,
    };
    if files.is_empty() {
        return report_error(QuarantineError::NotQuarantined { flow: flow.name.clone(), path: key });
    }
    // A file given up after its steps let it through with a warning, then quarantined.
    let of: Vec<_> = files.iter().map(|f| (&f.rec, f.earlier.map(|e| e.replaced))).collect();
    let warnings = ledger.warnings_of(&flow.name, &of)?;
    for (i, (f, warning)) in files.iter().zip(&warnings).enumerate() {
        if i > 0 {
            outln!();
        }
        let (rec, q, c) = (&f.rec, f.quarantine(), f.result.counts);
        outln!("file:        /{} ({} bytes, SHA-256 {})", rec.path, rec.size, rec.sha256.as_deref().unwrap_or("-"));
        if let Some(e) = f.earlier {
            outln!(
                "earlier:     a newer file was taken under this name on {} UTC (release this one with --copy)",
                super::files::when(e.replaced)
            );
        }
        outln!("quarantined: {} UTC in run {}", super::files::when(q.at), rec.run);
        outln!("reason:      {}", q.reason);
        if let Some(w) = warning {
            outln!("warning:     {}", super::files::warning(w));
        }
        outln!("copy:        {}", f.copy().unwrap_or_else(|| "-".into()));
        outln!(
            "records:     {} read, {} valid, {} rejected, {} skipped ({} errors)",
            c.read,
            c.valid,
            c.rejected,
            c.skipped,
            q.errors_total
        );
        outln!("outcome:     {}", outcome_label(crate::engine::Outcome::Quarantined));
        if f.earlier.is_none() {
            outln!("next:        {}", next_steps(&flow.name, &rec.path));
        }
        match runtime()?.block_on(quarantine::report_text(flow, &q)) {
            Ok(Some(text)) => outln!("\n{text}"),
            Ok(None) => {}
            Err(e) => errln!("warning: could not read the report: {e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
