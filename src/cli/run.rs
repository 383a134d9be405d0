//! `wharf run FLOW`: run a flow once now and print what happened to every file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::failure::{Failure, Kind};
use super::output::{errln, outln};
use super::{EXIT_ABORTED, EXIT_FILES_FAILED, EXIT_INVALID, Global};
use crate::config;
use crate::endpoint::SkippedName;
use crate::engine::{self, FileReport, Outcome, RunOptions, RunReport, nonzero};
use crate::ledger::RunStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow file (or the name of a flow in ./flows).
    pub flow: PathBuf,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Resolves `FLOW` to a file: a path as given, else `flows/FLOW.yaml` (or `.yml`), else the
/// flow file in ./flows whose `name:` is `FLOW` (`wharf quarantine show acme-orders` for
/// flows/acme.yaml with `name: acme-orders`: wharf names flows by their `name:` in what it
/// prints); a folder only when none of them is a file (`wharf run orders` beside a folder
/// `orders/` means `flows/orders.yaml`); the path as given when none of them exists. The one
/// place a command turns `FLOW` into a file. Refused (the message says why) when two flow
/// files in ./flows give that `name:`.
pub fn resolve_flow_path(flow: &Path) -> Result<PathBuf, String> {
    resolve_in(Path::new(FLOWS), flow)
}

/// [`resolve_flow_path`] with the flows folder `dir`.
fn resolve_in(dir: &Path, flow: &Path) -> Result<PathBuf, String> {
    let candidates = candidates_in(dir, flow);
    if let Some(file) = candidates.iter().find(|p| p.is_file()) {
        return Ok(file.clone());
    }
    if let Some(name) = flow.to_str().filter(|_| flow.components().count() == 1) {
        match named_in(dir, name).as_slice() {
            [] => {}
            [file] => return Ok(file.clone()),
            files => {
                let listed: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
                return Err(format!(
                    "flow `{name}`: {} flow files in {} give `name: {name}` ({}); give the file of the one meant",
                    files.len(),
                    dir.display(),
                    crate::text::and_list(&listed)
                ));
            }
        }
    }
    Ok(first_file(candidates).unwrap_or_else(|| flow.to_path_buf()))
}

/// The folder a flow's name is looked for in (`FLOW` given as a name).
const FLOWS: &str = "flows";

/// The first of `candidates` that is a file, else the first that exists.
fn first_file(candidates: Vec<PathBuf>) -> Option<PathBuf> {
    let file = candidates.iter().position(|p| p.is_file());
    file.or_else(|| candidates.iter().position(|p| p.exists())).map(|i| candidates[i].clone())
}

/// Where `FLOW` is looked for as a file, in order: the path as given, and for a name without
/// a folder (`orders`) `flows/orders.yaml` and `.yml` too (`orders.yaml`: `flows/orders.yaml`).
/// A path with a folder (`flows/orders.yaml`) is only itself: `flows/flows/orders.yaml` is
/// nobody's flow. The extension is added to the whole name: a name with a dot (`acme.orders`,
/// a round trip's `orders.response`) is `flows/acme.orders.yaml`, never `flows/acme.yaml`.
fn candidates_in(dir: &Path, flow: &Path) -> Vec<PathBuf> {
    if flow.components().count() > 1 {
        return vec![flow.to_path_buf()];
    }
    let in_flows = dir.join(flow);
    if matches!(flow.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
        return vec![flow.to_path_buf(), in_flows];
    }
    let with = |ext: &str| {
        let mut name = in_flows.clone().into_os_string();
        name.push(ext);
        PathBuf::from(name)
    };
    vec![flow.to_path_buf(), with(".yaml"), with(".yml")]
}

/// What is said when `FLOW` is found nowhere: where it was looked for. (The loader's
/// "cannot read flow file: No such file or directory (os error 2)" at `FLOW:1:1` named only
/// the first place, and a position in a file that is not there.)
///
/// A name close to a flow file's or a flow's `name:` in ./flows (another letter case, a typing
/// mistake or two) is unknown, and the close ones are named: `unknown flow `Orders` (did you
/// mean `orders`?)`.
fn no_flow_file(flow: &Path) -> String {
    no_flow_file_in(Path::new(FLOWS), flow)
}

/// [`no_flow_file`] with the flows folder `dir`.
fn no_flow_file_in(dir: &Path, flow: &Path) -> String {
    let name = flow.to_str().filter(|_| flow.components().count() == 1);
    let looked = looked_in(dir, flow);
    let names = name.map(|name| names_in(dir, name)).unwrap_or_default();
    if let (Some(name), false) = (name, names.is_empty()) {
        let close: Vec<&str> = names.iter().map(String::as_str).collect();
        return format!("unknown flow `{name}`{}; {looked}", crate::suggest::did_you_mean(&close));
    }
    format!("{}: no such flow file ({looked}; give a flow file, or the name of one in ./flows)", flow.display())
}

/// The names a flow in `dir` is given by (its file's name without `.yaml`/`.yml`, and its
/// `name:`) close to `name` ([`crate::suggest::close`]).
fn names_in(dir: &Path, name: &str) -> Vec<String> {
    let files = config::find_flows(&[dir.to_path_buf()]);
    let mut known: Vec<String> = files.iter().filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned())).collect();
    known.extend(files.iter().filter_map(|f| config::name_in_file(f)));
    known.sort();
    known.dedup();
    crate::suggest::close(name, known.iter().map(String::as_str), |_| false).into_iter().map(str::to_string).collect()
}

/// The flow files in `dir` whose `name:` is `name` (only that field is read: a file whose
/// secrets are not set here, or with a mistake further down, still names its flow).
fn named_in(dir: &Path, name: &str) -> Vec<PathBuf> {
    config::find_flows(&[dir.to_path_buf()]).into_iter().filter(|file| config::name_in_file(file).as_deref() == Some(name)).collect()
}

/// What is said when `FLOW` names a folder (`wharf run flows`): the loader's "cannot read flow
/// file: Is a directory" did not say what to give instead.
fn a_folder(path: &Path) -> String {
    format!("{}: a folder, not a flow file: give one flow file in it (`wharf validate` and `wharf serve` take a folder)", path.display())
}

/// `looked for A, B and C, and a flow named FLOW in flows`: the places [`resolve_flow_path`]
/// looks for `FLOW`.
pub fn looked_for(flow: &Path) -> String {
    looked_in(Path::new(FLOWS), flow)
}

/// [`looked_for`] with the flows folder `dir`.
fn looked_in(dir: &Path, flow: &Path) -> String {
    let places: Vec<String> = candidates_in(dir, flow).iter().map(|p| p.display().to_string()).collect();
    let by_name = if flow.components().count() == 1 {
        format!(", and a flow with `name: {}` in {}", flow.display(), dir.display())
    } else {
        String::new()
    };
    format!("looked for {}{by_name}", crate::text::and_list(&places))
}

/// Loads the flow named by `flow` (see [`resolve_flow_path`]) and logs its warnings; the
/// failure to report when it is not found or invalid (with its problems).
pub fn load(flow: &Path) -> Result<config::Flow, Failure> {
    load_for(flow, "nothing was run")
}

/// [`load`] for a command other than `wharf run`: its failure ends with `not_done` (`nothing
/// was released`).
pub fn load_for(flow: &Path, not_done: &str) -> Result<config::Flow, Failure> {
    load_with(flow, config::load_flow, not_done)
}

/// [`load_for`] for a command that reads the ledger and never connects with the flow: a
/// credential not to be had here (`${env:…}` not set) does not refuse it
/// ([`config::load_flow_to_read`]).
pub fn load_to_read(flow: &Path, not_done: &str) -> Result<config::Flow, Failure> {
    load_with(flow, config::load_flow_to_read, not_done)
}

fn load_with(
    flow: &Path,
    loader: fn(&Path) -> Result<config::Flow, Vec<config::Diagnostic>>,
    not_done: &str,
) -> Result<config::Flow, Failure> {
    let path = resolve_flow_path(flow)
        .map_err(|message| Failure::new(Kind::Usage, EXIT_INVALID, format!("{message}; {not_done}")).unlabelled())?;
    if !path.exists() {
        return Err(Failure::new(Kind::NotFound, EXIT_INVALID, format!("{}; {not_done}", no_flow_file(flow))).unlabelled());
    }
    if path.is_dir() {
        return Err(Failure::new(Kind::Usage, EXIT_INVALID, format!("{}; {not_done}", a_folder(&path))).unlabelled());
    }
    match loader(&path) {
        Ok(f) => {
            config::diagnostic::log_warnings(&f);
            Ok(f)
        }
        Err(diags) => {
            let message = format!("{}: {} problem(s); {not_done}", path.display(), diags.len());
            Err(Failure::new(Kind::InvalidFlow, EXIT_INVALID, message).unlabelled().with_problems(diags))
        }
    }
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let flow = load(&args.flow)?;
    let instead = format!("use `wharf trigger {}` (or stop the daemon)", flow.name);
    let ledger = super::state::open_for_write(global, &flow.name, &instead)?;
    if let Some(note) = ledger.created_notice() {
        errln!("note: {note}");
    }
    let opts = RunOptions::new(global.state_dir.join("staging"));
    // One thread runs the files, the sockets and the timers; blocking file work and fsyncs
    // go to tokio's blocking pool. Measured against two worker threads (where `block_on`
    // runs the engine on this thread and every socket event crosses threads to reach it):
    // as fast or faster on every benchmark case (FTP pull of 5000 × 4 KiB 4.9 → 4.5 s, SFTP
    // 1 GiB download 2.8 → 2.6 s), with a quarter fewer context switches.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let tty = std::io::stderr().is_terminal() && !args.json;
    let mut progress = |f: &FileReport| {
        if tty {
            errln!("  {:<11} {}", outcome_label(f.outcome), f.path);
        }
    };
    let ended = rt.block_on(async {
        tokio::select! {
            report = engine::run_once(&flow, &ledger, &opts, &mut progress) => Ok(report),
            signal = interrupted() => Err(signal),
        }
    });
    match ended {
        Ok(report) => show_report(&anyhow::Context::with_context(report, || format!("flow {}", flow.name))?, args.json),
        Err(signal) => {
            // As if the signal had ended the process (every step is crash-safe; the next run
            // takes over), but the ledger is closed cleanly and the programs the run started,
            // each in a process group of its own that the terminal's Ctrl-C does not reach,
            // go with it: dropping the run killed those it was waiting for, `kill_all` the
            // rest (a notification's, say).
            crate::process::kill_all();
            let message = format!("flow {}: interrupted by {signal}", flow.name);
            Err(Failure::new(Kind::Interrupted, 128 + signal.number(), message).unlabelled().into())
        }
    }
}

/// A signal that ends `wharf run`.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    fn number(self) -> u8 {
        match self {
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        })
    }
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM; never when the handlers cannot be installed.
async fn interrupted() -> Signal {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
    }
}

/// Prints a run's report (JSON or the text summary) and gives its exit code.
pub fn show_report(report: &RunReport, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print_summary(report);
    }
    // Why the run stopped: on stderr, as every command's failure (stdout may be going to a
    // file), and only here (the log leaves its own line of it out: `logging::init`).
    if let Some(e) = &report.error {
        errln!("error: {e}");
    }
    Ok(match report.status {
        RunStatus::Aborted => ExitCode::from(EXIT_ABORTED),
        RunStatus::Failed => ExitCode::from(EXIT_FILES_FAILED),
        RunStatus::Ok | RunStatus::Running => ExitCode::SUCCESS,
    })
}

pub fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Delivered => "delivered",
        Outcome::NotReady => "not ready",
        Outcome::Skipped => "skipped",
        Outcome::Failed => "FAILED",
        Outcome::Quarantined => "QUARANTINED",
    }
}

pub fn print_summary(r: &RunReport) {
    outln!("{}", headline(r));
    if let Some(line) = content_line(r) {
        outln!("  {line}");
    }
    let (rows, more) = file_rows(&r.files);
    for line in crate::text::columns(&rows, "  ", 11) {
        outln!("{line}");
    }
    for line in more {
        outln!("  {line}");
    }
    if let Some(line) = skipped_names_line(&r.skipped_names) {
        outln!("  {line}");
    }
    if let Some(line) = crate::engine::unlisted_line(&r.unlisted_folders) {
        outln!("  {line}");
    }
    if let Some(later) = &r.later {
        outln!("  {}", later.line());
    }
    super::awaits::print_responses(&r.responses);
}

/// Past this many files skipped (or not ready) in one run, the text summary shows only the
/// first [`QUIET_SHOWN`] of them and counts the rest: a flow keeping its sources
/// (`after.success: keep`) would otherwise print a line for every file of the folder, 50,000
/// `already delivered` lines, at every run.
const QUIET_MAX: usize = 20;
const QUIET_SHOWN: usize = 10;

/// The summary's file rows (label, path, detail), and the lines counting the skipped and
/// not-ready files left out ([`QUIET_MAX`]). Delivered, failed and quarantined files are
/// always listed; `--json` lists every file.
fn file_rows(files: &[FileReport]) -> (Vec<(&str, &str, &str)>, Vec<String>) {
    let quiet = [Outcome::Skipped, Outcome::NotReady];
    let total = |o: Outcome| files.iter().filter(|f| f.outcome == o).count();
    let cut: Vec<(Outcome, usize)> = quiet.iter().map(|&o| (o, total(o))).filter(|&(_, n)| n > QUIET_MAX).collect();
    let mut seen = [0usize; 2];
    let rows = files
        .iter()
        .filter(|f| match quiet.iter().position(|&o| o == f.outcome) {
            Some(i) if cut.iter().any(|&(o, _)| o == f.outcome) => {
                seen[i] += 1;
                seen[i] <= QUIET_SHOWN
            }
            _ => true,
        })
        .map(|f| (outcome_label(f.outcome), f.path.as_str(), f.detail.as_str()))
        .collect();
    let more =
        cut.iter().map(|&(o, n)| format!("… and {} more {} (`--json` lists every file)", n - QUIET_SHOWN, outcome_label(o))).collect();
    (rows, more)
}

/// The first line of a run's summary: `flow f, run 3: failed — 5 seen, 2 delivered, 3 failed
/// (1 of them a response) (42 bytes)`; zero counts left out ([`RunReport::figures`]): `flow f, run 4: ok
/// — 0 delivered (0 bytes)` (was `0 seen, 0 not ready, 0 delivered, 0 skipped, 0 failed`).
fn headline(r: &RunReport) -> String {
    format!("flow {}, run {}: {}", r.flow, r.run, r.outcome_line(false))
}

/// The content steps' line of a run's summary: its quarantined files and its records, each
/// left out when there were none ([`nonzero`]; was: `0 quarantined; records: …` for every run
/// with records); `None` when neither.
fn content_line(r: &RunReport) -> Option<String> {
    let k = &r.records;
    let parts = [
        nonzero(r.quarantined, || r.quarantined_figure()),
        nonzero(k.read, || {
            format!("records: {} read, {} valid, {} rejected, {} skipped, {} written", k.read, k.valid, k.rejected, k.skipped, k.written)
        }),
    ];
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The entries of the source no run can take (for their names, or not being regular files),
/// in one line: `2 entries skipped, never taken: /in/a\nb.csv (…; rename it on the source to
/// have it taken), /in/link.csv (a symbolic link: only regular files are taken)`. Entries,
/// not files: a folder whose name is not safe, a link, a FIFO are among them (was: `2 files
/// skipped`).
fn skipped_names_line(skipped: &[SkippedName]) -> Option<String> {
    let names = skipped.iter().map(|s| format!("{} ({})", s.shown_path(), s.explained())).collect::<Vec<_>>().join(", ");
    match skipped.len() {
        0 => None,
        1 => Some(format!("1 entry skipped, never taken: {names}")),
        n => Some(format!("{n} entries skipped, never taken: {names}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_names_are_told_in_one_line() {
        assert_eq!(skipped_names_line(&[]), None);
        let dir = crate::endpoint::RemotePath::parse("in").unwrap();
        let bad = |name: &str| SkippedName::refused(&dir, name, &dir.join(name).unwrap_err());
        assert_eq!(
            skipped_names_line(&[bad("a\nb.csv")]).unwrap(),
            "1 entry skipped, never taken: /in/a\\nb.csv (a control character in the name; rename it on the source to have it taken)"
        );
        let line = skipped_names_line(&[bad("a\nb.csv"), bad("c\td.csv")]).unwrap();
        assert!(line.starts_with("2 entries skipped, never taken: /in/a"), "{line}");
        assert!(!line.contains('\n') && !line.contains('\t'), "{line}");
    }

    /// A round trip whose run fails for its responses (one's disposal refused by the partner's
    /// server, one refused by the response sink) as well as for a file of its own: the summary
    /// counts them all in `failed`, and says which are responses. It said `1 failed` (the
    /// flow's own file), or `0 failed` for a run that failed for its responses alone.
    #[tokio::test]
    async fn the_summary_counts_the_responses_that_failed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["outbox", "partner/inbox", "partner/outbox", "acks"] {
            std::fs::create_dir_all(d.join(f)).unwrap();
        }
        let yaml = "name: rt\nendpoints:\n  out: { type: local, root: outbox }\n  partner: { type: local, root: partner }\n  \
                    acks: { type: local, root: acks }\nsource: { endpoint: out, path: / }\nsinks: [ { endpoint: partner, path: /inbox } ]\n\
                    after: { success: delete }\nresponse: { path: /outbox, name: \"{{stem}}.ack\", deadline: 1h, sinks: [ { endpoint: acks } ], \
                    after: { move_to: /taken } }\n";
        let flow = config::load_flow_str(yaml, &d.join("rt.yaml")).unwrap();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let opts = RunOptions::new(d.join("staging"));
        let run = || async { engine::run_once(&flow, &ledger, &opts, &mut |_| {}).await.unwrap() };
        std::fs::write(d.join("partner/taken"), "in the way").unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order 1").unwrap();
        std::fs::write(d.join("outbox/o2.csv"), "order 2").unwrap();
        assert_eq!(run().await.failed_figure(), "0 failed");
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack 1").unwrap();
        std::fs::write(d.join("partner/outbox/o2.ack"), "ack 2").unwrap();
        std::fs::write(d.join("acks/o2.ack"), "somebody else's").unwrap();
        std::fs::write(d.join("outbox/o3.csv"), "order 3").unwrap();
        std::fs::write(d.join("partner/inbox/o3.csv"), "somebody else's").unwrap();
        let r = run().await;
        assert_eq!((r.status, r.counts.seen), (RunStatus::Failed, 1), "{r:#?}");
        assert_eq!(r.failed_figure(), "3 failed (2 of them responses)", "{r:#?}");
        std::fs::remove_file(d.join("partner/inbox/o3.csv")).unwrap();
        let r = run().await;
        assert_eq!((r.status, r.counts.delivered), (RunStatus::Failed, 1), "{r:#?}");
        assert_eq!(r.failed_figure(), "2 failed (responses)", "{r:#?}");
        // o1's answer may be moved away now; o2's is still refused by the response sink.
        std::fs::remove_file(d.join("partner/taken")).unwrap();
        let r = run().await;
        assert_eq!(r.failed_figure(), "1 failed (a response)", "{r:#?}");
    }

    /// A flow keeping its sources listed every file of the folder as `already delivered` at
    /// every run: past [`QUIET_MAX`] skipped (or not ready) files, the first few and a count.
    #[test]
    fn many_skipped_files_are_counted_not_listed() {
        let file = |i: usize, outcome| FileReport {
            path: format!("/in/{i}.csv"),
            outcome,
            detail: "why".into(),
            targets: vec![],
            bytes: 0,
            error_kind: None,
            records: None,
        };
        let few: Vec<FileReport> = (0..QUIET_MAX).map(|i| file(i, Outcome::Skipped)).collect();
        assert_eq!(file_rows(&few), (few.iter().map(|f| ("skipped", f.path.as_str(), "why")).collect(), vec![]));
        let mut many: Vec<FileReport> = (0..50_000).map(|i| file(i, Outcome::Skipped)).collect();
        many.insert(15, file(99_999, Outcome::Delivered));
        many.push(file(100_000, Outcome::Failed));
        many.push(file(100_001, Outcome::NotReady));
        let (rows, more) = file_rows(&many);
        let paths: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let mut want: Vec<String> = (0..QUIET_SHOWN).map(|i| format!("/in/{i}.csv")).collect();
        want.extend(["/in/99999.csv", "/in/100000.csv", "/in/100001.csv"].map(String::from));
        assert_eq!(paths, want, "delivered, failed and a few not ready always listed, in order");
        assert_eq!(more, ["… and 49990 more skipped (`--json` lists every file)"]);
    }

    /// The headline said `0 not ready, …, 0 skipped, 0 failed` where the content line below
    /// it left out `0 quarantined`: both leave out a zero count now, but `N delivered`.
    #[test]
    fn the_headline_leaves_out_zero_counts_but_delivered() {
        let mut r = RunReport::empty("f", 1);
        assert_eq!(headline(&r), "flow f, run 1: ok — 0 delivered (0 bytes)");
        r.counts = crate::ledger::Counts { seen: 5, not_ready: 1, delivered: 3, skipped: 0, failed: 1, bytes: 42 };
        r.status = RunStatus::Failed;
        assert_eq!(headline(&r), "flow f, run 1: failed — 5 seen, 1 not ready, 3 delivered, 1 failed (42 bytes)");
        r.counts = crate::ledger::Counts { seen: 2, skipped: 2, ..Default::default() };
        r.status = RunStatus::Ok;
        assert_eq!(headline(&r), "flow f, run 1: ok — 2 seen, 0 delivered, 2 skipped (0 bytes)");
        assert_eq!(serde_json::to_value(&r).unwrap()["counts"]["failed"], 0, "JSON keeps the figure");
    }

    /// A run's content line said `0 quarantined; records: …` when nothing was quarantined.
    #[test]
    fn the_content_line_leaves_out_what_there_was_none_of() {
        let mut r = RunReport::empty("f", 1);
        assert_eq!(content_line(&r), None);
        r.records = crate::ledger::RecordCounts { read: 3, valid: 2, rejected: 1, skipped: 0, written: 2 };
        assert_eq!(content_line(&r).as_deref(), Some("records: 3 read, 2 valid, 1 rejected, 0 skipped, 2 written"));
        r.quarantined = 1;
        assert_eq!(content_line(&r).as_deref(), Some("1 quarantined; records: 3 read, 2 valid, 1 rejected, 0 skipped, 2 written"));
        r.records = Default::default();
        assert_eq!(content_line(&r).as_deref(), Some("1 quarantined"));
        assert_eq!(serde_json::to_value(&r).unwrap()["quarantined"], 1, "JSON keeps the figure");
    }

    #[test]
    fn a_missing_flow_says_where_it_was_looked_for() {
        assert_eq!(
            no_flow_file(Path::new("orders")),
            "orders: no such flow file (looked for orders, flows/orders.yaml and flows/orders.yml, and a flow with `name: orders` in \
             flows; give a flow file, or the name of one in ./flows)"
        );
        // A path is only itself: it said "looked for flows/orders.yaml, flows/flows/orders.yaml and …".
        assert_eq!(
            no_flow_file(Path::new("flows/orders.yaml")),
            "flows/orders.yaml: no such flow file (looked for flows/orders.yaml; give a flow file, or the name of one in ./flows)"
        );
    }

    /// A name in another letter case or a typing mistake or two away from a flow file's (or
    /// a flow's `name:`) is named: it said "no such flow file", and the user had to find the
    /// spelling.
    #[test]
    fn a_near_miss_names_the_flow_meant() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orders.yaml"), "name: orders\n").unwrap();
        std::fs::write(dir.path().join("invoices.yml"), "name: invoices\n").unwrap();
        std::fs::write(dir.path().join("acme.yml"), "name: acme-orders\n").unwrap();
        let d = dir.path().display();
        assert_eq!(
            no_flow_file_in(dir.path(), Path::new("Orders")),
            format!(
                "unknown flow `Orders` (did you mean `orders`?); looked for Orders, {d}/Orders.yaml and {d}/Orders.yml, and a flow with `name: Orders` in {d}"
            )
        );
        assert!(no_flow_file_in(dir.path(), Path::new("invoice")).starts_with("unknown flow `invoice` (did you mean `invoices`?); "));
        assert!(
            no_flow_file_in(dir.path(), Path::new("acme-order")).starts_with("unknown flow `acme-order` (did you mean `acme-orders`?); ")
        );
        assert!(no_flow_file_in(dir.path(), Path::new("payments")).starts_with("payments: no such flow file ("));
    }

    /// A flow asked for by its `name:` whose file is named otherwise is found by it: wharf
    /// prints commands with the flow's name (`wharf quarantine show acme-orders PATH`), which
    /// said "no such flow file" for flows/acme.yaml with `name: acme-orders`. Two files giving
    /// the name are both named; a file of that name is taken first.
    #[test]
    fn a_flow_named_otherwise_than_its_file_is_found_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let (csv, broken) = (dir.path().join("csv.yaml"), dir.path().join("broken.yaml"));
        std::fs::write(&csv, "name: csv-import\nendpoints: {}\n").unwrap();
        std::fs::write(&broken, "name: [\n").unwrap();
        assert_eq!(resolve_in(dir.path(), Path::new("csv-import")), Ok(csv.clone()));
        assert_eq!(resolve_in(dir.path(), Path::new("csv")), Ok(csv.clone()), "its file's name too");
        assert_eq!(resolve_in(dir.path(), Path::new("nothing")), Ok(PathBuf::from("nothing")), "as given: not found");
        // A path is only itself.
        assert_eq!(resolve_in(dir.path(), Path::new("x/csv-import")), Ok(PathBuf::from("x/csv-import")));

        let other = dir.path().join("csv2.yml");
        std::fs::write(&other, "name: csv-import\n").unwrap();
        let d = dir.path().display();
        assert_eq!(
            resolve_in(dir.path(), Path::new("csv-import")),
            Err(format!(
                "flow `csv-import`: 2 flow files in {d} give `name: csv-import` ({d}/csv.yaml and {d}/csv2.yml); give the file of the one meant"
            ))
        );
        // A file named so is that flow, whatever other files' `name:` says.
        std::fs::write(dir.path().join("csv-import.yaml"), "name: csv-import\n").unwrap();
        assert_eq!(resolve_in(dir.path(), Path::new("csv-import")), Ok(dir.path().join("csv-import.yaml")));
    }

    /// A name with a dot is a whole name: `wharf files order-ack.response` (a round trip's
    /// responses, as docs/round-trips.md says to look at them) took `flows/order-ack.yaml`
    /// for it, and so showed the requests' files under the flow's own name.
    #[test]
    fn a_name_with_a_dot_is_looked_for_whole() {
        let looked = |f: &str| candidates_in(Path::new(FLOWS), Path::new(f)).iter().map(|p| p.display().to_string()).collect::<Vec<_>>();
        assert_eq!(looked("order-ack.response"), ["order-ack.response", "flows/order-ack.response.yaml", "flows/order-ack.response.yml"]);
        assert_eq!(looked("acme.orders"), ["acme.orders", "flows/acme.orders.yaml", "flows/acme.orders.yml"]);
        assert_eq!(looked("orders.yaml"), ["orders.yaml", "flows/orders.yaml"]);
        assert_eq!(looked("orders"), ["orders", "flows/orders.yaml", "flows/orders.yml"]);
    }

    #[test]
    fn a_folder_is_not_taken_for_a_flow_file() {
        // Before: `wharf run flows` said "flows: cannot read flow file: Is a directory", and
        // `wharf run orders` beside a folder `orders/` read the folder, not flows/orders.yaml.
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows");
        std::fs::create_dir(&flows).unwrap();
        let e = load(&flows).unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
        assert_eq!(e.message, format!("{}; nothing was run", a_folder(&flows)));
        assert!(e.message.contains("a folder, not a flow file"), "{}", e.message);
        // A name: its file in ./flows is taken over a folder of that name.
        let (folder, file) = (flows.join("orders"), flows.join("orders.yaml"));
        std::fs::create_dir(&folder).unwrap();
        assert_eq!(first_file(vec![folder.clone(), file.clone()]), Some(folder.clone()), "only a folder there");
        std::fs::write(&file, "").unwrap();
        assert_eq!(first_file(vec![folder.clone(), file.clone()]), Some(file));
        assert_eq!(first_file(vec![flows.join("nope")]), None);
    }
}
