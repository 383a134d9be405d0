//! `wharf plan FLOW`: what a run would do with each file now, and why — read-only.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Global;
use super::output::outln;
use super::run::load_for;
use super::state::open_for_read;
use crate::engine::plan::{self, Action};
use crate::schedule::upcoming::{self, Upcoming};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow file (or the name of a flow in ./flows).
    pub flow: PathBuf,
    /// Print the plan as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let flow = load_for(&args.flow, "nothing was planned")?;
    // Read-only beside a running daemon too; a ledger that does not exist yet means nothing ran.
    let ledger = open_for_read(global)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let staging = global.state_dir.join("staging");
    let mut planned = rt.block_on(plan::plan(&flow, ledger.as_ref(), std::time::SystemTime::now(), Some(&staging)))?;
    plan::add_probes(&mut planned, &flow, &global.state_dir, chrono::Utc::now());
    if let Some(note) = first_run(global, ledger.as_ref(), &flow.name)? {
        planned.caveats.insert(0, note);
    }
    let now = chrono::Utc::now();
    let schedule = flow.schedule.as_ref().map(|s| Upcoming::of(s, &flow.name, now));
    if let Some(note) = flow.schedule.as_ref().and_then(|s| upcoming::utc_note(s, &flow.name, crate::schedule::local_zone(), now)) {
        planned.caveats.push(note);
    }
    if args.json {
        // `schedule`: null for a flow without one (runs only when run or triggered).
        let mut json = serde_json::to_value(&planned)?;
        if let Some(fields) = json.as_object_mut() {
            fields.insert("schedule".into(), serde_json::to_value(&schedule)?);
        }
        outln!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(ExitCode::SUCCESS);
    }
    outln!("flow {}: {} file(s) listed; nothing was written anywhere", planned.flow, planned.files.len());
    if let Some(s) = &schedule {
        outln!("  {}", s.line());
    }
    for f in &planned.files {
        match &f.action {
            Action::Wait { why } => outln!("  wait      {}: {why}", f.path),
            Action::AlreadyDone { why, then } => outln!("  skip      {}: {why}{}", f.path, then_shown(then)),
            Action::Skip { why } => outln!("  skip      {}: {why}", f.path),
            Action::Fail { why } => outln!("  fail      {}: {why}", f.path),
            Action::Resume { state, writes, then, copy } => {
                let writes = if writes.is_empty() { String::new() } else { format!("; then writes {}", writes.join(", ")) };
                let quarantined = plan::resumed_quarantine(&flow, *state, copy.as_ref()).map(|q| format!("; {q}")).unwrap_or_default();
                outln!("  resume    {}: left {} by an earlier run{quarantined}{writes}{}", f.path, state.as_str(), then_shown(then));
            }
            Action::Quarantine { why } => outln!("  refuse    {}: {why}", f.path),
            Action::Deliver { targets, then } => {
                outln!("  deliver   {} ({} bytes) → {}; then {then}", f.path, f.size, targets.join(", "));
            }
        }
        // Under a request the run sends (delivered, resumed, or sent after its look).
        if let Some(a) = &f.awaits {
            outln!("            {}", a.shown());
        }
    }
    // Looked for at the end of the run, after its files.
    for r in &planned.responses {
        outln!("  response  /{} (request /{}), {}: {}", r.expected, r.request, r.states_shown(), r.detail);
    }
    for c in &planned.caveats {
        outln!("  note: {c}");
    }
    for p in &planned.probes {
        let what = if p.findings.is_empty() { ": nothing that matters to this flow" } else { ":" };
        outln!("  probe of {} ({}), {}{what}", p.endpoint, p.target, p.age);
        for f in &p.findings {
            outln!("    {:<8} {}", f.severity.as_str(), f.text);
        }
    }
    if let Some(hint) = &planned.probe_hint {
        outln!("  hint: {hint}");
    }
    Ok(ExitCode::SUCCESS)
}

/// When the ledger has no run of `flow` (no ledger yet, a new state folder, a renamed flow):
/// the note that every file listed is new to it, and what that means after a state folder was
/// lost or left behind. `None` when the flow has run.
fn first_run(global: &Global, ledger: Option<&crate::ledger::Ledger>, flow: &str) -> anyhow::Result<Option<String>> {
    let path = super::state::ledger_path(global);
    let held = match ledger {
        None => format!("there is no ledger at {} yet", path.display()),
        Some(l) if l.runs(Some(flow), 1)?.is_empty() => format!("the ledger at {} has no run of flow {flow}", path.display()),
        Some(_) => return Ok(None),
    };
    Ok(Some(format!(
        "{held}: every file listed is new to wharf. If the flow ran before with another state folder (deleted, or left behind when the project was moved), \
         the files it delivered then are delivered again, as the sinks' `if_exists` allows: run with that state folder (--state-dir) instead"
    )))
}

/// `; then move the source to …`, or nothing (the source is kept).
fn then_shown(then: &Option<String>) -> String {
    then.as_ref().map(|t| format!("; then {t}")).unwrap_or_default()
}
