//! `wharf forget FLOW [--yes]`: every record the ledger keeps of a flow that no longer has a
//! flow file (removed from the flows folder, or renamed), its staging folder and the probes
//! stored of its endpoints (`wharf probe`). Such a flow
//! never runs again, so its own history pruning never removes them.
//!
//! Without `--yes` it only says what it would remove (read-only, beside a daemon too); with
//! it, it removes them as the ledger's one writer (refused while `wharf serve` holds the
//! ledger, like the other commands that write). A round trip's response flow (`FLOW.response`)
//! goes with its flow. So do the flow's notices a throttle held back when the daemon last
//! stored them (a crash, a stop whose grace ran out): the next start would send them, through
//! a global rule or a rule at the same place of another flow's file. That list is the
//! notifier's, opaque to the ledger: it is edited here, where both are known (the ledger's
//! one transaction, the notifier's encoding in `notify::Held`), rather than teaching the
//! ledger a flow key inside it.
//!
//! It refuses a flow that still has a file in the flows folder (`--flows`), or may have (a
//! file there whose `name:` cannot be read): forgotten, a live flow's delivered identities
//! would make every file still at its source new, and send it again. There is no way around
//! that on purpose: remove or rename the file first (or point `--flows` elsewhere, which says
//! the same thing more loudly). The dry run says so too: the name added again later delivers
//! everything at its source again.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::failure::{Failure, Kind};
use super::output::{errln, outln};
use super::state::{ledger_path, open_for_read, open_for_write};
use super::{EXIT_INVALID, Global};
use crate::config::name_in_file;
use crate::ledger::forget::FlowRecords;
use crate::ledger::{Ledger, LedgerError};
use crate::notify::{Held, Notice};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The flow's name (the `name:` its file had).
    pub flow: String,
    /// Folder of flow files: a flow that still has a file there is not forgotten.
    #[arg(long, default_value = "flows")]
    pub flows: PathBuf,
    /// Remove the records (without it: only say what would be removed).
    #[arg(long)]
    pub yes: bool,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    flow: &'a str,
    /// Whether they were removed (`--yes`), or only counted.
    removed: bool,
    records: FlowRecords,
    /// Notices of the flow held back by a throttle, in the daemon's stored list.
    held_notices: usize,
    /// Summaries of the flow's runs not sent yet (a daemon stopped before their sends were over).
    pending_summaries: usize,
    staging_files: usize,
    /// Stored probes of the flow's endpoints (`STATE/probes/`).
    probes: usize,
}

/// Records removed in one write transaction at most (each chunk is its own commit; a command
/// interrupted half way is run again to go on).
const CHUNK: usize = 20_000;

/// What is advised while `wharf serve` holds the ledger.
const WHILE_SERVING: &str = "stop the daemon to forget a flow";

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let flow = args.flow.as_str();
    if !crate::config::raw::is_flow_name(flow) {
        let message = format!(
            "`{flow}` is not a flow name (letters, digits, `-`, `_` and `.`, starting with a letter or digit); give the flow's name, not its file"
        );
        return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
    }
    refuse_a_flow_with_a_file(&args.flows, flow)?;
    // The flow and its round trip's responses, recorded under a name of their own.
    let mut names = vec![flow.to_string()];
    if !flow.ends_with(".response") {
        names.push(format!("{flow}.response"));
    }
    let staging: Vec<PathBuf> = names.iter().map(|n| crate::engine::stage::staging_folder(&global.state_dir.join("staging"), n)).collect();
    let in_staging: Vec<usize> = staging.iter().map(|d| files_under(d)).collect();
    let staging_files = in_staging.iter().sum();
    let probes: Vec<PathBuf> = names.iter().flat_map(|n| crate::probe::store::of_flow(&global.state_dir, n)).collect();
    let path = ledger_path(global);
    let (records, held_notices, pending_summaries) = if !args.yes {
        count(global, &names)?
    } else {
        // Without a ledger: not created by a command that has nothing to remove there, but
        // what a killed run left in the staging folder still goes. With one, held while the
        // staging folders go: no run of the flow can start meanwhile.
        let ledger = if path.exists() { Some(open_for_write(global, flow, WHILE_SERVING)?) } else { None };
        let removed = match &ledger {
            Some(l) => {
                let held =
                    forget_held(l, &names).with_context(|| format!("flow {flow}: cannot forget its held notices in {}", path.display()))?;
                let summaries = l
                    .drop_notify_summaries(|b| summary_of(b, &names))
                    .with_context(|| format!("flow {flow}: cannot forget its run summaries not sent yet in {}", path.display()))?;
                (
                    forget(l, &names).with_context(|| format!("flow {flow}: cannot forget its records in {}", path.display()))?,
                    held,
                    summaries,
                )
            }
            None => (FlowRecords::default(), 0, 0),
        };
        for dir in &staging {
            remove_folder(dir).with_context(|| format!("flow {flow}: cannot remove its staging folder {}", dir.display()))?;
        }
        for p in &probes {
            remove_file(p).with_context(|| format!("flow {flow}: cannot remove its stored probe {}", p.display()))?;
        }
        removed
    };
    if args.json {
        let report = Report { flow, removed: args.yes, records, held_notices, pending_summaries, staging_files, probes: probes.len() };
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if records.is_empty() && held_notices == 0 && pending_summaries == 0 && staging_files == 0 && probes.is_empty() {
        // A misspelt name (or one in another letter case: names are case-sensitive) also
        // lands here: the flows the ledger does hold say so.
        let known = match super::state::open_for_read(global) {
            Ok(Some(ledger)) => super::state::flows_with_runs(&ledger).unwrap_or_default(),
            _ => Vec::new(),
        };
        let hint = crate::suggest::did_you_mean(&crate::suggest::close(flow, known.iter().map(String::as_str), |_| false));
        let known = if known.is_empty() { String::new() } else { format!(" (flows it has runs of: {})", known.join(", ")) };
        outln!("flow {flow} has no records in the ledger at {}: nothing to forget{known}{hint}", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    if args.yes {
        outln!("forgot flow {flow}; removed from the ledger at {}:", path.display());
    } else {
        outln!("flow {flow} has in the ledger at {}:", path.display());
    }
    for (kind, n) in records.kinds() {
        if n > 0 {
            outln!("  {n:>8}  {kind}");
        }
    }
    if held_notices > 0 {
        outln!("  {held_notices:>8}  notices held back by a throttle");
    }
    if pending_summaries > 0 {
        outln!("  {pending_summaries:>8}  run summaries not sent yet");
    }
    for (dir, n) in staging.iter().zip(in_staging).filter(|(_, n)| *n > 0) {
        outln!("  {n:>8}  staging files ({})", dir.display());
    }
    if let Some(first) = probes.first() {
        let folder = first.parent().unwrap_or(first);
        outln!("  {:>8}  stored probes ({})", probes.len(), folder.display());
    }
    if !args.yes && records.deliveries > 0 {
        // What the delivered identities are for: said before they go, not after.
        outln!(
            "a flow named {flow} added again (or its old file put back) takes every file still at its source for new and delivers it again"
        );
    }
    if !args.yes {
        let daemon =
            if super::state::serving(&global.state_dir).is_some() { "; stop `wharf serve` first: it holds the ledger" } else { "" };
        outln!("run again with --yes to remove them (`wharf forget {flow} --yes`{daemon})");
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses `flow` when a file of the flows folder `dir` is that flow (or the flow whose
/// responses it names), by the `name:` it gives, or may be: a file whose `name:` cannot be
/// read (a YAML mistake half way through an edit) could be any flow, and once mended would
/// find its delivered identities gone. Refused too when there is no such folder to check.
fn refuse_a_flow_with_a_file(dir: &Path, flow: &str) -> anyhow::Result<()> {
    let Some(files) = super::status::flow_files(dir) else {
        let message = format!(
            "flow {flow}: no flows folder {} to check that the flow has no file any more; give --flows the folder of the flow files",
            dir.display()
        );
        return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
    };
    for file in files {
        let Some(name) = name_in_file(&file) else {
            let message = format!(
                "flow {flow}: cannot tell whether the flow file {0} is this flow: its `name:` cannot be read; mend it (`wharf validate {2}`) or move it out of {1} first",
                file.display(),
                dir.display(),
                crate::text::shell_word(&file.display().to_string())
            );
            return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
        };
        if name == flow || format!("{name}.response") == flow {
            let message = format!(
                "flow {flow} still has a flow file: {}; remove or rename the flow file first (forgetting a flow that runs would take every file at its source for new, and send it again)",
                file.display()
            );
            return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
        }
    }
    Ok(())
}

/// The records of `names`, their notices held back and their run summaries not sent yet,
/// counted through a read-only handle (no ledger: none).
fn count(global: &Global, names: &[String]) -> anyhow::Result<(FlowRecords, usize, usize)> {
    let mut total = FlowRecords::default();
    let (mut held, mut summaries) = (0, 0);
    if let Some(ledger) = open_for_read(global)? {
        for n in names {
            total.add(&ledger.flow_records(n)?);
        }
        if let Some(bytes) = ledger.notify_held()? {
            held = Held::count_flows(&bytes, names).unwrap_or_else(|e| unreadable_held(&names[0], &e));
        }
        summaries = ledger.notify_summaries()?.iter().filter(|(_, b)| summary_of(b, names)).count();
    }
    Ok((total, held, summaries))
}

/// Whether a run summary not sent yet (as the notifier keeps it) is of one of `names`' runs.
/// One this version cannot read is left for the daemon, which logs it whole.
fn summary_of(bytes: &[u8], names: &[String]) -> bool {
    Notice::decode(bytes).is_ok_and(|n| names.contains(&n.flow))
}

/// Drops the notices of `names` from the notifier's stored list of notices held back, in one
/// transaction; how many went. A list that cannot be read is left as it is (said on stderr):
/// it is the daemon's to read, and written over, every notice in it would be lost.
fn forget_held(ledger: &Ledger, names: &[String]) -> Result<usize, LedgerError> {
    ledger.edit_notify_held(|old| match old.map(|bytes| Held::without_flows(bytes, names)) {
        None | Some(Ok((_, 0))) => (None, 0),
        Some(Ok((left, dropped))) => (Some(left), dropped),
        Some(Err(e)) => (None, unreadable_held(&names[0], &e)),
    })
}

/// Says that the stored list of notices held back cannot be read (none counted).
fn unreadable_held(flow: &str, e: &serde_json::Error) -> usize {
    errln!(
        "flow {flow}: the notices held back by a throttle, as the daemon stored them, cannot be read ({e}); left as they are: the daemon says at its next start whether it can read them"
    );
    0
}

/// Removes every record of `names`, chunk by chunk.
fn forget(ledger: &Ledger, names: &[String]) -> Result<FlowRecords, LedgerError> {
    let mut total = FlowRecords::default();
    for n in names {
        loop {
            let chunk = ledger.forget(n, CHUNK)?;
            total.add(&chunk.removed);
            if !chunk.more {
                break;
            }
        }
    }
    Ok(total)
}

/// How many files `dir` holds, in any subfolder (0 without it).
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    // A link is one file, whatever it points at (removing the folder removes the link only).
    entries.filter_map(Result::ok).map(|e| if e.file_type().is_ok_and(|t| t.is_dir()) { files_under(&e.path()) } else { 1 }).sum()
}

/// Removes the file `p`; nothing to do without it.
fn remove_file(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes `dir` and what it holds; nothing to do without it.
fn remove_folder(dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}
