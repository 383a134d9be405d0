//! `wharf status`: what the running `wharf serve` says about its flows; without a daemon, each
//! flow of the flows folder with its last run from the ledger (read-only); the warnings of
//! those flow files are logged on stderr, as `wharf run` logs them.
//!
//! Either way it names the flows that have runs in the ledger but no flow file any more
//! (removed or renamed), whose records stay until `wharf forget` removes them.
//!
//! `--json` prints `{"daemon": null | {pid, socket, http, started_at, version}, "flows":
//! [FlowStatus…], "flows_without_file": [name…], "ledger": null | {path, layout,
//! written_by}}` either way (see `control::FlowStatus`; `ledger` is null when there is none
//! yet or it cannot be read beside a daemon).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::Global;
use super::output::outln;
use super::state::open_for_read;
use crate::control::discovery::{self, Found, ServeInfo};
use crate::control::{FlowStatus, NotTaken, RunSummary};
use crate::engine::nonzero;
use crate::ledger::Ledger;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of flow files (used when no daemon is running).
    #[arg(long, default_value = FLOWS)]
    pub flows: PathBuf,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`).
    #[arg(long)]
    pub json: bool,
}

/// The default flows folder.
const FLOWS: &str = "flows";

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report {
    daemon: Option<ServeInfo>,
    flows: Vec<FlowStatus>,
    /// Flows with runs in the ledger but no flow file (removed or renamed): `wharf forget`.
    flows_without_file: Vec<String>,
    ledger: Option<LedgerInfo>,
}

/// The ledger file and its layout marker (`ledger::layout`): which layout and wharf version
/// opened it for writing last (both null before a wharf that records them did).
#[derive(Debug, Serialize)]
struct LedgerInfo {
    path: PathBuf,
    layout: Option<u64>,
    written_by: Option<String>,
}

impl LedgerInfo {
    fn of(ledger: &Ledger) -> anyhow::Result<Self> {
        let marker = ledger.layout()?;
        Ok(LedgerInfo {
            path: ledger.path().to_path_buf(),
            layout: marker.as_ref().map(|m| m.layout),
            written_by: marker.map(|m| m.written_by),
        })
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (daemon, flows, ledger, notes, said_none) = match super::state::find_daemon(&rt, global)? {
        Found::Running { info, client } => {
            let status = rt.block_on(client.status())?;
            let info = ServeInfo { version: status.version, pid: status.pid, started_at: status.started_at, ..info };
            // Only for the flows without a file: the daemon's answer stands without it.
            let ledger = open_for_read(global).unwrap_or_else(|e| {
                tracing::warn!(error = %format!("{e:#}"), "Cannot read the ledger; the flows without a flow file are not listed.");
                None
            });
            (Some(info), status.flows, ledger, Vec::new(), false)
        }
        Found::NotRunning { stale } => {
            let mut notes = vec![format!("no `wharf serve` is running for state dir {}", global.state_dir.display())];
            if let Some(s) = stale {
                notes.push(format!("(a daemon, pid {}, did not shut down cleanly: {} is left over)", s.pid, discovery::INFO_NAME));
            }
            let ledger = open_for_read(global)?;
            let (flows, more) = from_ledger(&args.flows, global, ledger.as_ref())?;
            notes.extend(more);
            // `no_flows_folder` said there are none.
            let said_none = flows.is_empty() && flow_files(&args.flows).is_none();
            (None, flows, ledger, notes, said_none)
        }
    };
    let flows_without_file = match &ledger {
        Some(l) => without_file(l, &flows)?,
        None => Vec::new(),
    };
    let ledger = ledger.as_ref().map(LedgerInfo::of).transpose()?;
    let report = Report { daemon, flows, flows_without_file, ledger };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(d) = &report.daemon {
        outln!("wharf serve {} since {} UTC ({})", d.version, d.started_at.format("%Y-%m-%d %H:%M:%S"), d.describe());
    }
    for n in &notes {
        outln!("{n}");
    }
    // Without a flows folder and without flows, a note has said so in one sentence.
    if !said_none {
        print_table(&report.flows, report.daemon.is_some());
    }
    if let Some(line) = forget_hint(&report.flows_without_file, &args.flows) {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The flows with runs in the ledger that are not among `flows` (no flow file any more):
/// their records stay until `wharf forget`. One look-up per flow in the ledger.
fn without_file(ledger: &Ledger, flows: &[FlowStatus]) -> anyhow::Result<Vec<String>> {
    let known: std::collections::HashSet<&str> = flows.iter().map(|f| f.name.as_str()).collect();
    Ok(ledger.flows()?.into_iter().filter(|n| !known.contains(n.as_str())).collect())
}

/// `records of flows with no flow file: old-partner (`wharf forget old-partner` removes them)`,
/// with `--flows DIR` when the flows folder is not the default one: `wharf forget` checks that
/// folder for a file of the flow, and without it would check `./flows` (another folder, or
/// none).
fn forget_hint(names: &[String], flows: &Path) -> Option<String> {
    let flows = if flows == Path::new(FLOWS) {
        String::new()
    } else {
        format!(" --flows {}", crate::text::shell_word(&flows.display().to_string()))
    };
    let command = match names {
        [] => return None,
        [one] => format!("wharf forget {one}{flows}"),
        _ => format!("wharf forget NAME{flows}"),
    };
    Some(format!("records of flows with no flow file: {} (`{command}` removes them)", names.join(", ")))
}

/// Each flow of `dir` (flows known only from the ledger when there is no such folder), with
/// its history from the ledger; and notes for the reader.
fn from_ledger(dir: &Path, global: &Global, ledger: Option<&Ledger>) -> anyhow::Result<(Vec<FlowStatus>, Vec<String>)> {
    let mut notes = Vec::new();
    let ledger_path = super::state::ledger_path(global);
    let mut flows = match flow_files(dir) {
        Some(files) => {
            if ledger.is_none() {
                notes.push(format!("no ledger yet at {} (nothing has run)", ledger_path.display()));
            }
            files.into_iter().map(|f| flow_of_file(&f)).collect()
        }
        None => {
            let names = match ledger {
                Some(l) => super::state::flows_with_runs(l)?,
                None => Vec::new(),
            };
            notes.push(no_flows_folder(dir, &ledger_path, ledger.is_some(), !names.is_empty()));
            names.into_iter().map(|n| FlowStatus::new(n, None)).collect::<Vec<_>>()
        }
    };
    let mut alone = refuse_name_clashes(&mut flows);
    alone.extend(name_also_used(&mut flows, &alone));
    if let Some(l) = ledger {
        for (i, f) in flows.iter_mut().enumerate() {
            // The history of a clashing file's name is the first file's flow's; so is that of
            // the name a file that does not load gives, when another file's flow has it.
            if !alone.contains(&i) {
                fill_history(f, l)?;
            }
        }
    }
    Ok((flows, notes))
}

/// Refuses each flow file whose flow name an earlier file's flow gives, as `wharf serve` and
/// `wharf validate` do (the first in the folder's order keeps it; was: both listed, with one
/// history and no problem), and says which: their indexes.
fn refuse_name_clashes(flows: &mut [FlowStatus]) -> Vec<usize> {
    let mut first: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    let mut clashes = Vec::new();
    for (i, f) in flows.iter_mut().enumerate() {
        let (Some(file), None) = (&f.file, &f.problem) else { continue };
        match first.get(&f.name) {
            Some(other) => {
                f.problem = Some(crate::config::name_taken(&f.name, other));
                (f.schedule, f.next_due_if_served) = (None, None);
                clashes.push(i);
            }
            None => {
                first.insert(f.name.clone(), file.clone());
            }
        }
    }
    clashes
}

/// Says of each flow file that does not load (not among `clashes`) whose `name:` a loaded
/// file's flow has ([`crate::config::name_owner`], as `wharf serve` does) that the name is
/// that file's, and says which: their indexes. Their rows show no schedule or history: those
/// are the other flow's (was: shown as theirs).
fn name_also_used(flows: &mut [FlowStatus], clashes: &[usize]) -> Vec<usize> {
    let with_file = |f: &FlowStatus| Some((f.file.clone()?, f.name.clone()));
    let loaded: Vec<(PathBuf, String)> = flows.iter().filter(|f| f.problem.is_none()).filter_map(with_file).collect();
    // The files that do not load: of those giving one name no flow has, the first by path
    // shows its history (`config::name_shown_by`).
    let broken: Vec<(PathBuf, String)> =
        flows.iter().enumerate().filter(|(i, f)| f.problem.is_some() && !clashes.contains(i)).filter_map(|(_, f)| with_file(f)).collect();
    let mut alone = Vec::new();
    for (i, f) in flows.iter_mut().enumerate() {
        let (Some(file), Some(problem)) = (&f.file, &f.problem) else { continue };
        if clashes.contains(&i) {
            continue;
        }
        let why = match crate::config::name_owner(file, &f.name, pairs(&loaded)) {
            Some(owner) => crate::config::name_also_used(&f.name, owner),
            None => match crate::config::name_shown_by(file, &f.name, pairs(&broken)) {
                Some(first) => crate::config::name_shown_beside(&f.name, first),
                None => continue,
            },
        };
        f.problem = Some(format!("{problem}; {why}"));
        alone.push(i);
    }
    alone
}

/// Each file with the name its flow gives, as [`crate::config::name_owner`] takes them.
fn pairs(v: &[(PathBuf, String)]) -> impl Iterator<Item = (&Path, &str)> {
    v.iter().map(|(p, n)| (p.as_path(), n.as_str()))
}

/// What `status` says without a flows folder `dir`, in one sentence: the flows the ledger
/// knows follow it when `listed`; else that there are none anywhere (it said "no flows folder
/// flows (see --flows); flows from the ledger:", then "no flows").
fn no_flows_folder(dir: &Path, ledger: &Path, has_ledger: bool, listed: bool) -> String {
    let folder = if dir.is_relative() && !dir.starts_with(".") { format!("./{}", dir.display()) } else { dir.display().to_string() };
    match (listed, has_ledger) {
        (true, _) => format!("no flows folder here ({folder}; see --flows); the flows the ledger knows:"),
        (false, true) => format!("no flows folder here ({folder}; see --flows) and no flows in the ledger ({})", ledger.display()),
        (false, false) => format!("no flows folder here ({folder}; see --flows) and no ledger ({}: nothing has run)", ledger.display()),
    }
}

/// The flow files of `dir` as `wharf serve` and `wharf validate` take them (`*.yaml` /
/// `*.yml`, sorted, test files skipped); `None` without such a folder.
pub(super) fn flow_files(dir: &Path) -> Option<Vec<PathBuf>> {
    // Checked here: `find_flows` hands back a folder it cannot read, for its loader to report.
    std::fs::read_dir(dir).ok()?;
    Some(crate::config::find_flows(&[dir.to_path_buf()]))
}

fn flow_of_file(file: &Path) -> FlowStatus {
    // Its secrets are not needed to show it (a run elsewhere has them).
    match crate::config::load_flow_to_read(file) {
        Ok(flow) => {
            // As `wharf run` and `wharf serve` log them: on stderr, the table or JSON untouched.
            crate::config::diagnostic::log_warnings(&flow);
            let mut f = FlowStatus::new(flow.name.clone(), Some(file.to_path_buf()));
            f.schedule = flow.schedule.as_ref().map(|s| s.to_string());
            f.next_due_if_served = flow.schedule.as_ref().and_then(|s| s.next_after(&flow.name, chrono::Utc::now()));
            f
        }
        Err(diags) => {
            // As `wharf serve` lists it: by the name the ledger knows it by, when the file
            // still gives one.
            let mut f = FlowStatus::new(crate::config::unloaded_name(file), Some(file.to_path_buf()));
            f.problem = Some(format!(
                "invalid flow file: {} problem(s); see `wharf validate {}`",
                diags.len(),
                crate::text::shell_word(&file.display().to_string())
            ));
            f
        }
    }
}

fn fill_history(f: &mut FlowStatus, ledger: &Ledger) -> anyhow::Result<()> {
    let h = ledger.last_runs(&f.name)?;
    if let Some(last) = &h.last {
        let content = ledger.run_content(&f.name, last.id)?;
        f.last_run = Some(RunSummary::from_record(last, content.as_ref()));
    }
    f.last_success = h.last_ok.and_then(|r| r.finished).map(crate::control::utc);
    // As the daemon counts it (the alert rules' health): runs cut off by a shutdown are not
    // failures of the flow.
    f.failing_streak = ledger.health(&f.name)?.failing_streak;
    f.not_taken = crate::control::NotTaken::of(ledger, &f.name)?;
    f.overdue = crate::control::overdue::Overdue::of(ledger, &f.name, crate::ledger::now_millis())?;
    let (skipped, last) = ledger.skipped_runs(&f.name)?;
    (f.skipped_total, f.last_skipped) = (skipped, last.map(crate::control::utc));
    Ok(())
}

fn print_table(flows: &[FlowStatus], live: bool) {
    if flows.is_empty() {
        outln!("no flows");
        return;
    }
    // The flow column's width also indents the lines under a flow.
    let width = flows.iter().map(|f| crate::text::width(&f.name)).max().unwrap_or(0).max(4);
    let now = chrono::Utc::now();
    let time =
        |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_else(|| "-".into());
    // Without a daemon no run is due: the time one would be, were the flow served.
    let due = if live { "next due (UTC)" } else { "next due (UTC, if served)" };
    let header = ["flow", "state", "last run", "last success (UTC)", due, "schedule"];
    let mut rows = vec![header.map(String::from).to_vec()];
    rows.extend(flows.iter().map(|f| {
        vec![
            f.name.clone(),
            state(f, live),
            f.last_run.as_ref().map(last_run).unwrap_or_else(|| "-".into()),
            time(f.last_success),
            time(f.next_due.or(f.next_due_if_served)),
            f.schedule.clone().unwrap_or_else(|| "-".into()),
        ]
    }));
    use crate::text::Column;
    let columns = [Column::left(width), Column::left(10), Column::left(48), Column::left(19), Column::left(19), Column::left(0)];
    let mut lines = crate::text::table(&columns, &rows).into_iter();
    outln!("{}", lines.next().unwrap_or_default());
    for (f, line) in flows.iter().zip(lines) {
        outln!("{line}");
        if let Some(p) = &f.problem {
            outln!("{:<width$}  ! {p}", "");
        }
        if let Some(e) = f.last_run.as_ref().and_then(|r| r.error.as_ref()) {
            outln!("{:<width$}  last error: {e}", "");
        }
        for line in not_taken_lines(&f.not_taken) {
            outln!("{:<width$}  ! {line}", "");
        }
        if let Some(line) = f.overdue.line(&f.name) {
            outln!("{:<width$}  ! {line}", "");
        }
        if let Some((current, line)) = skipped_line(f, now) {
            let mark = if current { '!' } else { ' ' };
            outln!("{:<width$}  {mark} {line}", "");
        }
    }
}

/// How long after the last skipped run the skip line is still a warning (`!`).
const SKIPS_CURRENT: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// The runs skipped (`overlap: skip`, or `queue` with one queued), the previous run still
/// going: while it goes, how many so far; and how many in all, as the ledger counts them
/// (across restarts), with when the last was. `None` when none was. With whether it is a
/// warning (`!`): while the run going skips, and for a day after the last skip; later it is
/// history (the total is kept until `wharf forget`), shown without the mark. Was: `!` for
/// ever once a run was skipped.
fn skipped_line(f: &FlowStatus, now: chrono::DateTime<chrono::Utc>) -> Option<(bool, String)> {
    let current = (f.running && f.skipped > 0) || f.last_skipped.is_some_and(|t| t + SKIPS_CURRENT > now);
    skipped_text(f).map(|line| (current, line))
}

/// What [`skipped_line`] says.
fn skipped_text(f: &FlowStatus) -> Option<String> {
    let runs = |n: u64| if n == 1 { "1 run".to_string() } else { format!("{n} runs") };
    let last = f.last_skipped.map(|t| format!(", the last {}", t.format("%Y-%m-%d %H:%M:%S UTC"))).unwrap_or_default();
    match (f.running && f.skipped > 0, f.skipped_total) {
        (_, 0) => None,
        (true, total) => {
            Some(format!("{} skipped while this run goes on (each was due before it ended); {total} in all{last}", runs(f.skipped)))
        }
        (false, total) => Some(format!("{} skipped (each was due while the previous run was still going){last}", runs(total))),
    }
}

/// What the source holds that is not taken, a line for the entries that can never be taken,
/// one for the files the login may not read yet (taken once readable), and one for the
/// subfolders the listing could not read (nothing under them is taken; not files, nor for
/// ever): `2 entries in the source can never be taken: /in/a\nb.csv (a control character in
/// the name; rename it on the source to have it taken), /in/link.csv (a symbolic link: only
/// regular files are taken)`, `1 file in the source not taken yet: /in/a.csv (the login
/// may not read it yet: …; taken once it is readable; refused since 2026-12-07 10:00:00
/// UTC)`, `1 subfolder of the source cannot be read: /in/locked (permission denied: …;
/// nothing under it is taken while the listing cannot read it)`, the first few of each.
/// Entries, as in the run report: a folder whose name is not safe, a link, a FIFO are among
/// those never taken (was: `2 files`).
fn not_taken_lines(names: &[NotTaken]) -> Vec<String> {
    let of = |pick: fn(&NotTaken) -> bool| names.iter().filter(|n| pick(n)).collect::<Vec<_>>();
    let mut lines = Vec::new();
    lines.extend(listed(&of(|n| !n.folder && !n.unreadable), ("entry", "entries"), "in the source can never be taken"));
    lines.extend(listed(&of(|n| n.unreadable), ("file", "files"), "in the source not taken yet"));
    lines.extend(listed(&of(|n| n.folder), ("subfolder", "subfolders"), "of the source cannot be read"));
    lines
}

/// `{count} {what} {says}: {path} ({reason}), …`, the first few of `names` (`what`: the word
/// for one, for several); a file the login may not read yet with since when.
fn listed(names: &[&NotTaken], what: (&str, &str), says: &str) -> Option<String> {
    const SHOWN: usize = 3;
    if names.is_empty() {
        return None;
    }
    let count = if names.len() == 1 { format!("1 {}", what.0) } else { format!("{} {}", names.len(), what.1) };
    let since = |n: &NotTaken| match n.since.filter(|_| n.unreadable) {
        Some(t) => format!("; refused since {}", t.format("%Y-%m-%d %H:%M:%S UTC")),
        None => String::new(),
    };
    let shown: Vec<String> = names.iter().take(SHOWN).map(|n| format!("{} ({}{})", n.path, n.reason, since(n))).collect();
    Some(format!("{count} {says}: {}", crate::text::first_few(&shown, names.len())))
}

/// `running`, `waiting` (for a slot under the run limits), `running+1` (one queued),
/// `failing 3`, `idle` (or `-` when no daemon says).
fn state(f: &FlowStatus, live: bool) -> String {
    let now = if f.waiting { "waiting" } else { "running" };
    match (f.running, f.queued) {
        (true, true) => format!("{now}+1"),
        (true, false) => now.into(),
        _ if f.failing_streak > 0 => format!("failing {}", f.failing_streak),
        _ if live => "idle".into(),
        _ => "-".into(),
    }
}

/// `#12 ok 2026-11-25 10:00:00, 3 delivered, 1 failed`: zero counts left out as a run's
/// summary leaves them out ([`nonzero`]).
fn last_run(r: &RunSummary) -> String {
    let figures = [
        Some(format!("{} delivered", r.delivered)),
        nonzero(r.failed, || format!("{} failed", r.failed)),
        nonzero(r.quarantined, || format!("{} quarantined", r.quarantined)),
    ];
    let started = r.started.format("%Y-%m-%d %H:%M:%S");
    format!("#{} {} {started}, {}", r.run, r.status, figures.into_iter().flatten().collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn summary(status: &str, failed: u64) -> RunSummary {
        RunSummary {
            run: 12,
            status: status.into(),
            started: DateTime::<Utc>::from_timestamp(1_764_064_800, 0).unwrap(),
            finished: None,
            delivered: 3,
            failed,
            quarantined: 0,
            bytes: 10,
            error: None,
        }
    }

    #[test]
    fn a_flow_line_says_what_an_operator_looks_for() {
        assert_eq!(last_run(&summary("ok", 0)), "#12 ok 2025-11-25 10:00:00, 3 delivered");
        assert_eq!(last_run(&summary("failed", 1)), "#12 failed 2025-11-25 10:00:00, 3 delivered, 1 failed");
        let nothing = RunSummary { delivered: 0, quarantined: 2, ..summary("failed", 0) };
        assert_eq!(last_run(&nothing), "#12 failed 2025-11-25 10:00:00, 0 delivered, 2 quarantined");
        let mut f = FlowStatus::new("a", None);
        assert_eq!((state(&f, true), state(&f, false)), ("idle".to_string(), "-".to_string()));
        f.failing_streak = 3;
        assert_eq!(state(&f, false), "failing 3");
        f.running = true;
        assert_eq!(state(&f, true), "running");
        f.queued = true;
        assert_eq!(state(&f, true), "running+1");
        f.waiting = true;
        assert_eq!(state(&f, true), "waiting+1");
        f.waiting = false;
    }

    /// `overlap: skip` skips were only logged: `wharf status` says them, while the run goes
    /// and after it ended; in all, as the ledger counts them (they were counted since the
    /// daemon started), with when the last was.
    #[test]
    fn skipped_runs_are_said() {
        let mut f = FlowStatus::new("a", None);
        let now = DateTime::<Utc>::from_timestamp(1_764_064_800, 0).unwrap();
        let skipped_line = |f: &FlowStatus| skipped_line(f, now).map(|(_, line)| line);
        assert_eq!(skipped_line(&f), None);
        (f.running, f.skipped, f.skipped_total) = (true, 3, 5);
        f.last_skipped = DateTime::<Utc>::from_timestamp(1_764_064_800, 0);
        assert_eq!(
            skipped_line(&f).unwrap(),
            "3 runs skipped while this run goes on (each was due before it ended); 5 in all, the last 2025-11-25 10:00:00 UTC"
        );
        (f.running, f.skipped, f.skipped_total) = (false, 0, 1);
        assert_eq!(
            skipped_line(&f).unwrap(),
            "1 run skipped (each was due while the previous run was still going), the last 2025-11-25 10:00:00 UTC"
        );
    }

    /// The skip line is a warning (`!`) while the run going skips and for a day after the
    /// last skip; after that the total is history, shown without the mark (was: `!` for ever
    /// once any run was skipped).
    #[test]
    fn the_skip_line_warns_only_while_skips_are_recent() {
        let last = DateTime::<Utc>::from_timestamp(1_764_064_800, 0).unwrap();
        let mut f = FlowStatus::new("a", None);
        (f.skipped_total, f.last_skipped) = (5, Some(last));
        let current = |f: &FlowStatus, now| skipped_line(f, now).map(|(current, _)| current);
        assert_eq!(current(&f, last), Some(true));
        assert_eq!(current(&f, last + chrono::TimeDelta::hours(23)), Some(true));
        assert_eq!(current(&f, last + chrono::TimeDelta::hours(24)), Some(false));
        assert_eq!(current(&f, last + chrono::TimeDelta::days(30)), Some(false));
        // Skipping now: a warning whenever the last one was (a clock set back, say).
        (f.running, f.skipped) = (true, 2);
        assert_eq!(current(&f, last + chrono::TimeDelta::days(30)), Some(true));
        // A total without a time (none recorded): history.
        (f.running, f.skipped, f.last_skipped) = (false, 0, None);
        assert_eq!(current(&f, last), Some(false));
        f.skipped_total = 0;
        assert_eq!(current(&f, last), None);
    }

    /// Without a daemon, `wharf status` reads the skips from the ledger too.
    #[test]
    fn skipped_runs_are_read_from_the_ledger() {
        let ledger = Ledger::in_memory().unwrap();
        ledger.count_skipped_runs("a", 1, 1_764_064_800_000).unwrap();
        let mut f = FlowStatus::new("a", None);
        fill_history(&mut f, &ledger).unwrap();
        assert_eq!((f.skipped_total, f.last_skipped), (1, DateTime::<Utc>::from_timestamp(1_764_064_800, 0)));
    }

    #[test]
    fn files_never_taken_are_counted_and_the_first_few_shown_with_why() {
        let (unsafe_name, link) =
            ("a control character in the name; rename it on the source to have it taken", "a symbolic link: only regular files are taken");
        let names = |n: usize| {
            (0..n)
                .map(|i| NotTaken { path: format!("/in/{i}\\n.csv"), reason: unsafe_name.into(), ..NotTaken::default() })
                .collect::<Vec<_>>()
        };
        assert_eq!(not_taken_lines(&[]), Vec::<String>::new());
        assert_eq!(not_taken_lines(&names(1)), [format!("1 entry in the source can never be taken: /in/0\\n.csv ({unsafe_name})")]);
        let mut five = names(4);
        five.insert(1, NotTaken { path: "/in/link.csv".into(), reason: link.into(), ..NotTaken::default() });
        assert_eq!(
            not_taken_lines(&five),
            [format!(
                "5 entries in the source can never be taken: /in/0\\n.csv ({unsafe_name}), /in/link.csv ({link}), /in/1\\n.csv ({unsafe_name}) and 2 more"
            )]
        );
    }

    /// A subfolder the listing could not read is told as what it is, with why. It was counted
    /// among the files: `1 file in the source can never be taken: /in/locked (…)`.
    #[test]
    fn a_subfolder_that_cannot_be_read_is_told_as_a_folder_with_its_cause() {
        let ledger = Ledger::in_memory().unwrap();
        // As a run records it (`engine::discover::note_skipped`).
        let folder = crate::endpoint::RemotePath::parse("in/locked").unwrap();
        let why = "permission denied: Permission denied (os error 13); nothing under it is taken while the listing cannot read it";
        let names = [(crate::endpoint::listing::unreadable_folder(&folder), why.to_string())];
        let noted = crate::ledger::Noted { flow: "f", run: 1, at: 0, names: &names, unlisted: &[folder.to_string()] };
        ledger.note_unsafe_names(&noted).unwrap();
        let got = NotTaken::of(&ledger, "f").unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!((got[0].path.as_str(), got[0].folder), ("/in/locked", true));
        assert_eq!(
            not_taken_lines(&got),
            ["1 subfolder of the source cannot be read: /in/locked (permission denied: Permission denied (os error 13); nothing under it \
              is taken while the listing cannot read it)"]
        );
        let file =
            NotTaken { path: "/in/link.csv".into(), reason: "a symbolic link: only regular files are taken".into(), ..NotTaken::default() };
        let both = not_taken_lines(&[got[0].clone(), file]);
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both[0].starts_with("1 entry in the source can never be taken: /in/link.csv"), "{both:?}");
        assert!(both[1].starts_with("1 subfolder of the source cannot be read: /in/locked ("), "{both:?}");
    }

    /// A file the login may not read yet (its record left `claimed` with the refusal, as
    /// `engine::lifecycle::unreadable` leaves it) is listed under its flow, with why and since
    /// when, apart from what can never be taken. It was not listed at all (only `wharf files`
    /// showed it). A file in flight for another reason, or refused for another cause, is not.
    #[test]
    fn a_file_the_login_may_not_read_yet_is_listed_with_why_and_since_when() {
        use crate::endpoint::ErrorKind;
        use crate::ledger::{ErrorRecord, FileRecord, FileState};
        let ledger = Ledger::in_memory().unwrap();
        let (first, why) =
            (1_764_064_800_000, "the login may not read it yet: read /in/a.csv: permission denied; taken once it is readable");
        let error = |kind, message: &str| Some(ErrorRecord { kind, message: message.into(), at: first });
        let rec = |path: &str, state, last_error| FileRecord {
            path: path.into(),
            state,
            last_error,
            updated: first + 7_200_000,
            ..Default::default()
        };
        ledger.put_file("f", &rec("in/a.csv", FileState::Claimed, error(ErrorKind::PermissionDenied, why))).unwrap();
        ledger.put_file("f", &rec("in/b.csv", FileState::Staging, None)).unwrap();
        ledger.put_file("f", &rec("in/c.csv", FileState::Claimed, error(ErrorKind::Transient, "connection reset"))).unwrap();
        ledger.put_file("f", &rec("in/d.csv", FileState::Failed, error(ErrorKind::PermissionDenied, "refused by the sink"))).unwrap();
        let link = [("/in/link.csv".to_string(), "a symbolic link: only regular files are taken".to_string())];
        ledger.note_unsafe_names(&crate::ledger::Noted { flow: "f", run: 1, at: first, names: &link, unlisted: &[] }).unwrap();
        let mut f = FlowStatus::new("f", None);
        fill_history(&mut f, &ledger).unwrap();
        let got: Vec<(&str, bool)> = f.not_taken.iter().map(|n| (n.path.as_str(), n.unreadable)).collect();
        assert_eq!(got, [("/in/link.csv", false), ("/in/a.csv", true)]);
        assert_eq!(f.not_taken[1].since, DateTime::<Utc>::from_timestamp_millis(first));
        assert_eq!(
            not_taken_lines(&f.not_taken),
            [
                "1 entry in the source can never be taken: /in/link.csv (a symbolic link: only regular files are taken)".to_string(),
                format!("1 file in the source not taken yet: /in/a.csv ({why}; refused since 2025-11-25 10:00:00 UTC)"),
            ]
        );
        // As the daemon gives it to `wharf status` (`--json`): read back the same.
        let json = serde_json::to_string(&f.not_taken).unwrap();
        assert_eq!(serde_json::from_str::<Vec<NotTaken>>(&json).unwrap(), f.not_taken);
    }

    #[test]
    fn flows_without_a_file_are_named_with_the_command_that_forgets_them() {
        let default = Path::new("flows");
        assert_eq!(forget_hint(&[], default), None);
        let one = forget_hint(&["old".into()], default).unwrap();
        assert_eq!(one, "records of flows with no flow file: old (`wharf forget old` removes them)");
        let two = forget_hint(&["a".into(), "b".into()], default).unwrap();
        assert_eq!(two, "records of flows with no flow file: a, b (`wharf forget NAME` removes them)");
        let elsewhere = forget_hint(&["old".into()], Path::new("/etc/wharf/flows")).unwrap();
        assert_eq!(elsewhere, "records of flows with no flow file: old (`wharf forget old --flows /etc/wharf/flows` removes them)");
    }

    /// Two files giving one flow name: the second is refused, named by that name and in
    /// `wharf validate`'s words, as `wharf serve` refuses it (was: both listed as the flow,
    /// with one history and no problem).
    #[test]
    fn a_second_file_giving_a_flow_name_is_refused_as_serve_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let flow = |name: &str| {
            format!(
                "name: {name}\nendpoints:\n  a: {{ type: local, root: /tmp }}\nsource: {{ endpoint: a, path: /in }}\nsinks: [ {{ endpoint: a, path: /out }} ]\n"
            )
        };
        std::fs::write(dir.path().join("b.yaml"), flow("trig")).unwrap();
        std::fs::write(dir.path().join("z.yaml"), flow("trig")).unwrap();
        std::fs::write(dir.path().join("other.yaml"), flow("other")).unwrap();
        let mut flows: Vec<FlowStatus> = flow_files(dir.path()).unwrap().iter().map(|f| flow_of_file(f)).collect();
        assert_eq!(refuse_name_clashes(&mut flows), [2]);
        let names: Vec<(&str, Option<&str>)> = flows.iter().map(|f| (f.name.as_str(), f.problem.as_deref())).collect();
        let why = format!(
            "flow name `trig` is already used by {}; flow names must be unique (they key the ledger)",
            dir.path().join("b.yaml").display()
        );
        assert_eq!(names, [("trig", None), ("other", None), ("trig", Some(why.as_str()))]);
        assert_eq!(flows[2].file.as_deref(), Some(dir.path().join("z.yaml").as_path()));
    }

    /// A file that does not load giving the name of another file's loaded flow (in either
    /// order in the folder): its row shows only its file and its problem, saying the name is
    /// the other file's, never that flow's schedule or runs (was: shown as its own). A broken
    /// file whose name no loaded flow has keeps the history of that name; of two such files,
    /// the first by path (the other says so: both showed it).
    #[test]
    fn a_file_that_does_not_load_under_a_loaded_flows_name_shows_none_of_its_history() {
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).unwrap();
        let good = |name: &str| {
            format!(
                "name: {name}
schedule: {{ every: 5m }}
endpoints:
  a: {{ type: local, root: /tmp }}
source: {{ endpoint: a, path: /in }}
sinks: [ {{ endpoint: a, path: /out }} ]
"
            )
        };
        std::fs::write(
            flows.join("a-broken.yaml"),
            "name: orders
source: 3
",
        )
        .unwrap();
        std::fs::write(flows.join("orders.yaml"), good("orders")).unwrap();
        std::fs::write(
            flows.join("z-broken.yaml"),
            "name: orders
source: 3
",
        )
        .unwrap();
        std::fs::write(
            flows.join("lone.yaml"),
            "name: lone
source: 3
",
        )
        .unwrap();
        // Another broken file giving `lone`: the history is shown once, beside lone.yaml.
        std::fs::write(
            flows.join("m-lone.yaml"),
            "name: lone
source: 4
",
        )
        .unwrap();
        let global = Global::new(&dir.path().join("state"));
        std::fs::create_dir(&global.state_dir).unwrap();
        let ledger = Ledger::open(&super::super::state::ledger_path(&global)).unwrap();
        for flow in ["orders", "lone"] {
            let mut run = ledger.begin_run(flow, crate::ledger::now_millis()).unwrap();
            run.status = crate::ledger::RunStatus::Ok;
            run.finished = Some(run.started + 1);
            ledger.finish_run_with(&run, |h| (h.clone(), vec![])).unwrap();
        }
        let (rows, _) = from_ledger(&flows, &global, Some(&ledger)).unwrap();
        let row = |file: &str| rows.iter().find(|f| f.file.as_deref() == Some(flows.join(file).as_path())).unwrap();
        let owner = crate::config::name_also_used("orders", &flows.join("orders.yaml"));
        for broken in ["a-broken.yaml", "z-broken.yaml"] {
            let f = row(broken);
            assert_eq!(f.name, "orders");
            assert!(f.problem.as_deref().unwrap().starts_with("invalid flow file: "), "{f:?}");
            assert!(f.problem.as_deref().unwrap().ends_with(&format!("; {owner}")), "{f:?}");
            assert!(f.last_run.is_none() && f.last_success.is_none() && f.schedule.is_none(), "{f:?}");
        }
        let good = row("orders.yaml");
        assert!(good.last_run.is_some() && good.problem.is_none() && good.schedule.is_some(), "{good:?}");
        // No daemon: no run is due, but when one would be is computed from the schedule (in
        // the JSON beside a `next_due` left null; left out for a flow with none).
        let (due, now) = (good.next_due_if_served.unwrap(), chrono::Utc::now());
        assert!(
            good.next_due.is_none() && due > now - chrono::TimeDelta::seconds(5) && due <= now + chrono::TimeDelta::minutes(5),
            "{good:?}"
        );
        let json = serde_json::to_value(good).unwrap();
        assert!(json["next_due"].is_null() && json["next_due_if_served"].is_string(), "{json}");
        assert!(serde_json::to_value(row("lone.yaml")).unwrap().get("next_due_if_served").is_none());
        assert!(row("a-broken.yaml").next_due_if_served.is_none());
        let lone = row("lone.yaml");
        assert!(lone.last_run.is_some() && !lone.problem.as_deref().unwrap().contains("also"), "{lone:?}");
        let other = row("m-lone.yaml");
        let beside = crate::config::name_shown_beside("lone", &flows.join("lone.yaml"));
        assert!(other.last_run.is_none() && other.problem.as_deref().unwrap().ends_with(&format!("; {beside}")), "{other:?}");
    }

    /// A flow file that does not load is named as `wharf serve` names it, and its history
    /// looked up so: by the `name:` it gives when its YAML got that far, else by its file
    /// name (the daemon used the file name for both, `wharf status` the `name:`).
    #[test]
    fn a_file_that_does_not_load_is_named_as_serve_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orders-v2.yaml"), "name: orders\nsource: 3\n").unwrap();
        std::fs::write(dir.path().join("broken.yaml"), "name: [\n").unwrap();
        let here: Vec<(String, Option<PathBuf>)> =
            flow_files(dir.path()).unwrap().iter().map(|f| flow_of_file(f)).map(|f| (f.name, f.file)).collect();
        let mut registry = crate::serve::registry::Registry::new(dir.path());
        registry.rescan();
        let served: Vec<(String, Option<PathBuf>)> = registry.slots().map(|s| (s.name(), Some(s.file.clone()))).collect();
        assert_eq!(here, served);
        assert_eq!(here.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["broken", "orders"]);
    }

    #[test]
    fn the_flows_folder_is_read_as_serve_reads_it_test_files_left_out() {
        // Listed `roster-import.test.yaml` as a flow with "invalid flow file: 7 problem(s)".
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yaml", "a.yml", "a.test.yaml", "b.test.yml", "notes.txt"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        let names: Vec<String> =
            flow_files(dir.path()).unwrap().iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a.yml", "b.yaml"]);
        assert_eq!(flow_files(&dir.path().join("nope")), None);
    }
}
