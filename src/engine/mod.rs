//! The engine: one run of one flow, and the one per-file lifecycle every file goes through.
//!
//! A run: connect the endpoints → list the source (`discover`) → judge readiness (`ready`,
//! observations stored in one ledger write) → leave what is over `source.max_files` for the
//! next run (`cap`) → take each ready file through `lifecycle`
//! (claim → stage → deliver to every sink → dispose of the source → done) → finish any file a
//! crashed run left between delivery and disposition → check for awaited responses (`awaits`,
//! round trips), then send the requests held back for an await that check closed → record
//! the run.
//!
//! Crash safety rests on one rule: every lifecycle transition is a durable ledger write made
//! *before* the side effect it announces is relied on, and every side effect is idempotent
//! or checkable (a staged prefix is resumed, a recorded delivery target is stat-ed before any
//! re-upload, a recorded move target tells a done move from a pending one). See
//! docs/architecture.md for the argument.

mod alerts;
pub use alerts::RESPONSE_REFUSED;
mod awaits;
mod budget;
mod cap;
pub use cap::Later;
mod claims;
mod command;
mod commits;
mod content;
mod discover;
mod figures;
pub(crate) use discover::done_path;
pub use discover::{NotListed, Unlisted, unlisted_line};
pub use figures::nonzero;
mod disposition;
pub mod endpoints;
pub mod error;
mod halt;
mod history;
pub mod identity;
mod left_failing;
mod left_gone;
mod left_unlisted;
mod lifecycle;
pub(crate) use lifecycle::unreadable::refused as unreadable_refusal;
pub(crate) mod naming;
mod pipe;
pub mod plan;
pub mod quarantine;
pub mod ready;
mod retry;
mod shared_targets;
pub mod stage;
mod transfer;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::SystemTime;

use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde::Serialize;

use crate::config::Flow;
use crate::endpoint::{DynEndpoint, EndpointError, ErrorKind, RemotePath, SkippedName};
use crate::ledger::{
    Counts, FileRecord, FileState, Ledger, LedgerError, RecordCounts, RunContent, RunRecord, RunStatus, now_millis, to_millis,
};

pub use awaits::{ResponseReport, response_being_taken};
pub use error::FileError;

/// The log target of the lines that restate a run's report: why it was aborted, a file's
/// failure or quarantine, and the events that say the same (`failed`, `quarantined`). A daemon's log is all there is of its
/// runs; `wharf run` prints the report itself, and leaves these out (`cli::logging`).
pub const REPORT_LOG_TARGET: &str = "wharf::engine::report";

/// Options for one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Folder for staging files (kept across runs: it holds resumable downloads).
    pub staging_dir: PathBuf,
    /// The run's notion of "now" (tests inject it); `None` = the system clock.
    pub now: Option<SystemTime>,
    /// Asked to stop (shutdown): no new file is started; the files not started are reported
    /// as skipped and taken by the next run.
    pub stop: Stop,
}

impl RunOptions {
    /// Options with staging in `staging_dir`, the system clock, and no stop requested.
    pub fn new(staging_dir: PathBuf) -> Self {
        RunOptions { staging_dir, now: None, stop: Stop::default() }
    }
}

/// The state folder a staging folder is in (`<state folder>/staging`), for messages.
fn state_folder(staging_dir: &std::path::Path) -> &std::path::Path {
    staging_dir.parent().unwrap_or(staging_dir)
}

/// A shared "please stop" flag: set once by whoever shuts down, read between files.
#[derive(Debug, Clone, Default)]
pub struct Stop(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Stop {
    /// Asks every run holding a clone to stop starting files.
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What happened to one file in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Delivered to every sink and disposed of.
    Delivered,
    /// Seen but not complete yet; a later run takes it.
    NotReady,
    /// Not processed: already delivered, a duplicate, vanished, or the run stopped.
    Skipped,
    /// Could not be delivered in this run.
    Failed,
    /// Refused by the flow's content steps: copied to the quarantine location with reports.
    Quarantined,
}

/// One file's line in the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub path: String,
    pub outcome: Outcome,
    /// Why (not ready because…, skipped because…, failed because…) or where it went.
    pub detail: String,
    pub targets: Vec<String>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Record counts, when the flow's content steps ran on the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<RecordCounts>,
}

impl FileReport {
    /// The failed line of a file an earlier run left in flight whose source is gone, and
    /// which the run finishing it could not judge now (`e`: why; `detail` says it): logged
    /// as the run's report line; the `bool` is whether the run must stop.
    fn left_unjudged(flow: &str, path: &RemotePath, e: &error::FileError, detail: String) -> (FileReport, bool) {
        tracing::error!(target: REPORT_LOG_TARGET, flow = %flow, path = %path, kind = %e.kind().name(), error = %detail, "File failed.");
        (FileReport::failed(path, detail, e.kind()), e.aborts_run())
    }

    /// A failed file's line: `detail` says why; nothing delivered.
    fn failed(path: &RemotePath, detail: String, kind: ErrorKind) -> FileReport {
        FileReport {
            path: path.to_string(),
            outcome: Outcome::Failed,
            detail,
            targets: vec![],
            bytes: 0,
            error_kind: Some(kind),
            records: None,
        }
    }
}

/// The result of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub flow: String,
    pub run: u64,
    pub status: RunStatus,
    pub counts: Counts,
    /// Files refused by the content steps (not counted in `counts.failed`).
    pub quarantined: u32,
    /// Record counts over every file the content steps ran on.
    pub records: RecordCounts,
    pub files: Vec<FileReport>,
    /// Awaited responses (round trips): every open await, and every one that changed in this run.
    pub responses: Vec<ResponseReport>,
    /// Files in the source folder the flow would take but cannot, for their names are not safe
    /// to use (a line feed, `..`, bytes that are not UTF-8) or they are not regular files (a
    /// symbolic link, a FIFO), or its patterns take only ignoring case (`ORDERS_1.CSV` beside
    /// `*.csv`, without `source.ignore_case`): not counted as seen, not a failure; they wait
    /// there until renamed or replaced.
    pub skipped_names: Vec<SkippedName>,
    /// Folders of the source the run's listing did not list in whole, nothing under them taken
    /// (nor taken for gone): a subfolder the login may not read (`unreadable`), a folder whose
    /// listing the server cut short (`cut_short`), a subfolder deeper than `source.max_depth`
    /// (`too_deep`). Not a failure.
    pub unlisted_folders: Vec<Unlisted>,
    /// The files the run left for the next one by the flow's `source.max_files` (listed, and
    /// counted in `seen`, but neither reported one by one nor touched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub later: Option<Later>,
    /// Why the run was aborted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// The run was aborted by the flow's `source.command` (it failed, or timed out), not by
    /// an endpoint: see [`RunReport::unreachable`].
    #[serde(skip)]
    pub(crate) aborted_by_command: bool,
}

/// Runs `flow` once. `on_file` sees each file's report as soon as it is known (progress).
/// Endpoint trouble aborts the run and is reported in the returned [`RunReport`]; only a
/// ledger failure is an `Err`.
pub async fn run_once(
    flow: &Flow,
    ledger: &Ledger,
    opts: &RunOptions,
    on_file: &mut (dyn FnMut(&FileReport) + Send),
) -> Result<RunReport, LedgerError> {
    let now = opts.now.unwrap_or_else(SystemTime::now);
    // A write failed before (the state folder was full, in a daemon's earlier run): the
    // ledger is opened again, and repaired, before it is relied on.
    ledger.recover()?;
    close_interrupted(&flow.name, ledger, "interrupted: wharf stopped before this run finished; a later run resumed its files")?;
    for name in flow_names(flow) {
        stage::sweep(&opts.staging_dir, name, ledger).await?;
    }
    let mut rec = ledger.begin_run(&flow.name, to_millis(now))?;
    // At debug: a daemon polls every flow every few minutes, and a run that finds nothing to
    // do must not add lines to its log (`Run finished.` says the rest, when there is any).
    tracing::debug!(flow = %flow.name, run = rec.id, "Run started.");
    let mut report = RunReport::new(flow, rec.id);
    let result = run_files(flow, ledger, opts, now, rec.id, &mut report, on_file).await;
    let full = match &result {
        Err(RunAbort::File(_, kind)) => *kind == ErrorKind::StateFull,
        Err(RunAbort::Ledger(e)) => e.is_state_full(),
        _ => false,
    };
    // Whether the run can still be recorded after the state folder was full.
    let recorded = !full || free_state_folder(flow, ledger, opts).await.is_ok();
    match result {
        Ok(()) => {}
        Err(RunAbort::Endpoint(e)) => {
            report.error_kind = Some(e.kind);
            report.error = Some(format!("flow {}: {e}{}", flow.name, hint(&e)));
        }
        Err(RunAbort::File(msg, kind)) => {
            report.error_kind = Some(kind);
            report.error = Some(msg);
        }
        Err(RunAbort::Command(e)) => {
            report.error_kind = Some(e.kind());
            report.error = Some(format!("flow {}: {e}", flow.name));
            report.aborted_by_command = true;
        }
        Err(RunAbort::Ledger(e)) if full && recorded => {
            report.error_kind = Some(ErrorKind::StateFull);
            report.error = Some(format!("flow {}: {e}", flow.name));
        }
        Err(RunAbort::Ledger(e)) => {
            let kind = if e.is_state_full() { ErrorKind::StateFull } else { ErrorKind::LocalIo };
            tracing::error!(target: REPORT_LOG_TARGET, flow = %flow.name, run = rec.id, kind = %kind.name(), reason = %e, "Run aborted.");
            rec.status = RunStatus::Aborted;
            rec.error = Some(e.to_string());
            let _ = ledger.finish_run(&rec);
            return Err(e);
        }
    }
    // Every abort, whatever stopped it, in one line: a daemon's log is all there is of its runs.
    if let (Some(reason), Some(kind)) = (&report.error, report.error_kind) {
        tracing::error!(target: REPORT_LOG_TARGET, flow = %flow.name, run = rec.id, kind = %kind.name(), reason = %reason, "Run aborted.");
    }
    report.conclude();
    finish(ledger, flow, &mut rec, &report)?;
    log_finished(&flow.name, &rec, report.idle());
    Ok(report)
}

/// `Run finished.`: at info for a run that did something, at debug for an idle one (a flow
/// polled every minute makes 1,440 runs a day; `wharf runs` and the metrics count them).
/// Displayed, not debugged: `flow=a`, not `flow="a"`.
fn log_finished(flow: &str, rec: &RunRecord, idle: bool) {
    let (status, delivered, failed) = (rec.status.as_str(), rec.counts.delivered, rec.counts.failed);
    if idle {
        tracing::debug!(flow = %flow, run = rec.id, status = %status, delivered, failed, "Run finished.");
    } else {
        tracing::info!(flow = %flow, run = rec.id, status = %status, delivered, failed, "Run finished.");
    }
}

impl RunReport {
    /// Ends the report of a run whose files (and responses) are all in it: counts its
    /// responses that failed or were quarantined and gives it its status. A response that
    /// could not be taken (or disposed of) is a file of the run that failed, as
    /// [`close_interrupted`] counts it: in `failed`, so the summary, `wharf runs`, the run's
    /// JSON and the metrics say the run failed for it, as its status and exit code do. One
    /// its steps refused is in `quarantined` (and its records in `records`) the same way.
    fn conclude(&mut self) {
        let responses = |of: fn(&ResponseReport) -> bool| count(self.responses.iter().filter(|r| of(r)).count());
        let (failed, quarantined) = (responses(ResponseReport::failed), responses(ResponseReport::quarantined));
        for r in self.responses.iter().filter_map(|r| r.file.as_ref()?.records.as_ref()) {
            self.records.add(r);
        }
        self.counts.failed = self.counts.failed.saturating_add(failed);
        self.quarantined = self.quarantined.saturating_add(quarantined);
        self.status = if self.error.is_some() {
            RunStatus::Aborted
        } else if self.counts.failed > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Ok
        };
    }

    /// Whether the run changed nothing: it ended `ok` and delivered, failed, quarantined and
    /// took no file or response (files not ready yet, or delivered before, do not count).
    fn idle(&self) -> bool {
        self.status == RunStatus::Ok
            && self.counts.delivered == 0
            && self.counts.failed == 0
            && self.quarantined == 0
            && self.responses.iter().all(|r| r.file.is_none())
    }

    /// An empty report for run `run` of `flow`.
    fn new(flow: &Flow, run: u64) -> Self {
        RunReport {
            flow: flow.name.clone(),
            run,
            status: RunStatus::Running,
            counts: Counts::default(),
            quarantined: 0,
            records: RecordCounts::default(),
            files: Vec::new(),
            responses: Vec::new(),
            skipped_names: Vec::new(),
            unlisted_folders: Vec::new(),
            later: None,
            error: None,
            error_kind: None,
            aborted_by_command: false,
        }
    }

    /// Whether the run was aborted because an endpoint could not be reached: transient
    /// trouble (a refused connection, a timeout, a dropped link) of a server, or of a file's
    /// transfer with one. Not a `source.command` that failed: that is transient too (the next
    /// run may succeed) but no server is down.
    pub fn unreachable(&self) -> bool {
        self.status == RunStatus::Aborted && !self.aborted_by_command && self.error_kind.is_some_and(ErrorKind::is_transient)
    }
}

/// The names the flow's files are recorded and staged under: its own, and its response
/// flow's.
fn flow_names(flow: &Flow) -> impl Iterator<Item = &String> {
    std::iter::once(&flow.name).chain(flow.response.as_ref().map(|r| &r.flow.name))
}

/// After the state folder was found full: removes the flow's staging files, so the space they
/// held comes back, and opens the ledger again if a write to it failed. `Err`: the ledger is
/// still unusable (no space even now).
async fn free_state_folder(flow: &Flow, ledger: &Ledger, opts: &RunOptions) -> Result<(), LedgerError> {
    for name in flow_names(flow) {
        stage::clear(&opts.staging_dir, name).await;
    }
    ledger.recover()
}

/// Marks the flow's runs that never finished (the process was killed, or cut off at shutdown)
/// as aborted, with `reason`. Only call it when no run of the flow can be going: when a run
/// of it is starting (one process writes the ledger, and it runs one run of a flow at a
/// time), or when `wharf serve` has stopped every run. Their files are resumed by the
/// lifecycle.
///
/// Each is judged as its end would have judged it, from what the ledger holds: the files it
/// recorded failed for good (its own, and its responses', `after.failure` applied or given
/// up) raise its `failed` event and count for the flow's health
/// ([`alerts::judge_interrupted`]), stored with its record in one transaction. Else a kill
/// after such a file's commit lost the event: the next run found the file settled and told
/// nobody. (Its `quarantined` files raised theirs with their records.)
///
/// Its files (and responses) quarantined are counted in its `quarantined`, as its end would
/// have counted them ([`RunReport::conclude`]): `wharf runs`, its JSON and `wharf status`
/// show them. Before, a killed run that quarantined files said it quarantined none.
pub fn close_interrupted(flow: &str, ledger: &Ledger, reason: &str) -> Result<(), LedgerError> {
    let mut left: Vec<RunRecord> = ledger.runs(Some(flow), 20)?.into_iter().filter(|r| r.status == RunStatus::Running).collect();
    if left.is_empty() {
        return Ok(());
    }
    left.reverse();
    let ids: Vec<u64> = left.iter().map(|r| r.id).collect();
    let (failed, quarantined): (Vec<FileRecord>, Vec<FileRecord>) =
        left_in(ledger, flow, &ids)?.into_iter().partition(|f| f.state == FileState::Failed);
    for mut r in left {
        r.status = RunStatus::Aborted;
        r.error = Some(reason.to_string());
        let theirs: Vec<(String, String)> = failed.iter().filter(|f| f.run == r.id).map(failed_line).collect();
        r.counts.failed = count(theirs.len());
        let quarantined = count(quarantined.iter().filter(|f| f.run == r.id).count());
        if quarantined > 0 {
            // Its record counts are not known (its delivered files' are not kept): none said.
            ledger.put_run_content(flow, r.id, &RunContent { quarantined, records: RecordCounts::default() })?;
        }
        let now = now_millis();
        for e in ledger.finish_run_with(&r, |health| alerts::judge_interrupted(flow, health, r.id, &theirs, now))? {
            alerts::log(&e.flow, e.kind, &e.subject, &e.detail);
        }
    }
    Ok(())
}

/// The files of `flow` and of its responses (its response flow's) that one of the runs `ids`
/// left failed or quarantined: what [`close_interrupted`] counts of the runs it closes, as
/// [`RunReport::conclude`] counts them from a run's report. One read of each flow's records.
fn left_in(ledger: &Ledger, flow: &str, ids: &[u64]) -> Result<Vec<FileRecord>, LedgerError> {
    const LEFT: &[FileState] = &[FileState::Failed, FileState::Quarantined];
    let mut files = ledger.left_in(flow, ids, LEFT)?;
    files.extend(ledger.left_in(&crate::config::flow::response_flow_name(flow), ids, LEFT)?);
    Ok(files)
}

/// `n` things as a run's count (`u32::MAX` past it).
fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A file recorded failed: its path as a report names it, and why it failed.
fn failed_line(rec: &crate::ledger::FileRecord) -> (String, String) {
    let path = RemotePath::parse(&rec.path).map_or_else(|_| rec.path.clone(), |p| p.to_string());
    let why = rec.last_error.as_ref().map_or_else(|| "no cause recorded".to_string(), |e| e.message.clone());
    (path, why)
}

/// Records the end of a run: its status and counts, and its content-step totals.
fn finish(ledger: &Ledger, flow: &Flow, rec: &mut RunRecord, report: &RunReport) -> Result<(), LedgerError> {
    rec.status = report.status;
    rec.counts = report.counts;
    rec.error = report.error.clone();
    rec.finished = Some(now_millis());
    // A flow whose responses alone have steps has content totals too (its responses').
    if flow.steps.is_some() || flow.response.as_ref().is_some_and(|r| r.flow.steps.is_some()) {
        ledger.put_run_content(&flow.name, rec.id, &RunContent { quarantined: report.quarantined, records: report.records })?;
    }
    let now = now_millis();
    for e in ledger.finish_run_with(rec, |health| alerts::judge(flow, health, report, now))? {
        alerts::log(&e.flow, e.kind, &e.subject, &e.detail);
    }
    Ok(())
}

/// What to do about an endpoint error that stops a run (or a plan): appended to its message.
fn hint(e: &EndpointError) -> &'static str {
    match e.kind {
        ErrorKind::AuthFailed => " (check the user and credentials in the flow)",
        ErrorKind::Transient => " (the server may be down, unreachable or busy; the next run tries again)",
        _ => "",
    }
}

enum RunAbort {
    Endpoint(EndpointError),
    File(String, ErrorKind),
    /// The flow's `source.command` produced no file.
    Command(command::CommandError),
    Ledger(LedgerError),
}

impl From<EndpointError> for RunAbort {
    fn from(e: EndpointError) -> Self {
        RunAbort::Endpoint(e)
    }
}

impl From<LedgerError> for RunAbort {
    fn from(e: LedgerError) -> Self {
        RunAbort::Ledger(e)
    }
}

fn record(report: &mut RunReport, f: FileReport, on_file: &mut (dyn FnMut(&FileReport) + Send)) {
    match f.outcome {
        Outcome::Delivered => {
            report.counts.delivered += 1;
            report.counts.bytes += f.bytes;
        }
        Outcome::NotReady => report.counts.not_ready += 1,
        Outcome::Skipped => report.counts.skipped += 1,
        Outcome::Failed => report.counts.failed += 1,
        Outcome::Quarantined => report.quarantined += 1,
    }
    if let Some(r) = &f.records {
        report.records.add(r);
    }
    on_file(&f);
    report.files.push(f);
}

async fn run_files(
    flow: &Flow,
    ledger: &Ledger,
    opts: &RunOptions,
    now: SystemTime,
    run: u64,
    report: &mut RunReport,
    on_file: &mut (dyn FnMut(&FileReport) + Send),
) -> Result<(), RunAbort> {
    let mut names: Vec<&str> = vec![flow.source.endpoint.as_str()];
    names.extend(flow.sinks.iter().map(|s| s.endpoint.as_str()));
    names.extend(flow.quarantine.as_ref().map(|q| q.endpoint.as_str()));
    names.extend(awaits::endpoint_names(flow));
    let eps = endpoints::open_all(flow, &names).await?;
    let get = |n: &str| -> Result<DynEndpoint, RunAbort> {
        eps.get(n).cloned().ok_or_else(|| RunAbort::File(format!("flow {}: endpoint {n} is not defined", flow.name), ErrorKind::Config))
    };
    let source = get(&flow.source.endpoint)?;
    let sinks = flow.sinks.iter().map(|s| get(&s.endpoint)).collect::<Result<Vec<_>, _>>()?;
    let quarantine = flow.quarantine.as_ref().map(|q| get(&q.endpoint)).transpose()?;

    if let Some(cmd) = &flow.source.command {
        let Some(crate::config::flow::EndpointSpec::Local { root }) = flow.endpoints.get(&flow.source.endpoint) else {
            // Invariant kept by validation: a command source is on a local endpoint.
            return Err(RunAbort::File(format!("flow {}: source.command needs a local source endpoint", flow.name), ErrorKind::Config));
        };
        let folder = crate::endpoint::local::LocalEndpoint::new(root.clone()).full(&flow.source.path);
        command::produce(cmd, &folder, &flow.name, run, now).await.map_err(RunAbort::Command)?;
    }

    let skip = [&flow.after_success, &flow.after_failure];
    let discover::Discovered { candidates, skipped, unlisted } = retry::retry(flow, "list", || async {
        discover::discover(&flow.name, &*source, &flow.source, flow.steps.as_ref(), &skip, now).await.map_err(FileError::from)
    })
    .await
    .map_err(|e| match e {
        FileError::Endpoint(e) => RunAbort::Endpoint(e),
        other => RunAbort::File(format!("flow {}: {other}", flow.name), other.kind()),
    })?;
    discover::note_skipped(ledger, (&flow.name, run, &source.describe()), &skipped, &unlisted, now)?;
    report.skipped_names = skipped;
    report.unlisted_folders = unlisted.clone();
    report.counts.seen = candidates.len() as u32;
    history::prune_after_listing(flow, ledger, &candidates, &unlisted, now)?;

    // Readiness, with all observations stored in one write.
    let now_ms = to_millis(now);
    let mut observations = Vec::new();
    let mut ready = Vec::new();
    let snapshot = ledger.snapshot()?; // one read transaction for the whole listing
    // The run before, to tell a file it held back already (logged once).
    let earlier = if looks_back(flow) { awaits::earlier_run(ledger, &flow.name, run)? } else { None };
    let mut prevs = Vec::with_capacity(candidates.len());
    let mut verdicts = Vec::with_capacity(candidates.len());
    for c in &candidates {
        let prev = snapshot.observation(&flow.name, c.entry.path.as_str())?;
        let (verdict, obs) = c.assess(&flow.source.ready, prev.as_ref(), now_ms);
        if prev.as_ref() != Some(&obs) {
            observations.push((c.entry.path.as_str().to_string(), obs));
        }
        prevs.push(prev);
        verdicts.push(verdict);
    }
    ready::unless_being_written(&*source, candidates.iter().map(|c| &c.entry.path), &mut verdicts).await;
    for ((c, prev), verdict) in candidates.iter().zip(prevs).zip(verdicts) {
        match verdict {
            ready::Readiness::Ready => {
                let seen = awaits::seen_ready(flow, c, prev.as_ref(), earlier);
                ready.push((c, (lifecycle::Known::read(&snapshot, flow, &c.entry)?, seen)))
            }
            // A file already delivered is "skipped", not "not ready", whatever its age.
            ready::Readiness::NotReady(why) => record(report, not_ready(&c.entry.path, why), on_file),
        }
    }
    drop(snapshot);
    ledger.put_observations(&flow.name, &observations)?;
    // Round trips: a request whose response name another open request awaits waits its turn;
    // one an await of the ledger holds back may go after the run's look for responses, if
    // that closes the await (`awaits::send_after_look`).
    let requests = ready.iter().map(|(c, (k, seen))| (&c.entry, c.rel.as_str(), k.prev(), *seen));
    let open = if flow.response.is_some() { ledger.awaits(Some(&flow.name))? } else { Vec::new() };
    let undisposed = awaits::undisposed(ledger, flow, &open)?;
    let held = awaits::held_back(flow, open, &undisposed, requests, run, now);
    let mut after_look = Vec::new();
    let mut going = Vec::with_capacity(ready.len());
    for ((c, (known, seen)), held) in ready.into_iter().zip(held) {
        let Some(held) = held else {
            going.push((c, (known, seen)));
            continue;
        };
        held.log(flow, &c.entry.path);
        record(report, not_ready(&c.entry.path, held.why.clone()), on_file);
        if held.awaited.is_some() {
            after_look.push(awaits::AfterLook { candidate: c, known, seen, held });
        }
    }
    let mut ready = going;
    // A name a sink gives several files of the run goes to one of them per run.
    let contenders = ready.iter().map(|(c, (k, seen))| {
        k.contends(flow, &c.entry).map(|resumed| shared_targets::Contender { entry: &c.entry, rel: &c.rel, resumed, seen: seen.is_some() })
    });
    let held = shared_targets::held_back(flow, contenders, run, now);
    hold_back(&mut ready, held, report, on_file);
    let ready: Vec<_> = ready.into_iter().map(|(c, (known, _))| (c, known)).collect();
    let mut places = cap::Places::new(flow.source.max_files);
    // Files a crashed run left in flight whose source is no longer listed (finished after the
    // listing's files, below) are resumed work: they take the run's places first.
    let listed: BTreeSet<&str> = candidates.iter().map(|c| c.entry.path.as_str()).collect();
    let left = left_unlisted::taken_up(flow, &*source, ledger, &listed, &unlisted).await?;
    let later = leave(flow, run, left.iter().map(|l| Some((cap::Turn::Resumed, &l.entry))), &mut places, report);
    let left: Vec<_> = left.into_iter().zip(later).filter(|(_, l)| !l).map(|(l, _)| l).collect();
    let ready = leave_for_later(flow, run, ready, &mut places, report);

    let cx = lifecycle::Ctx {
        flow,
        events_flow: &flow.name,
        ledger,
        source: source.clone(),
        sinks,
        quarantine,
        run,
        now,
        staging_dir: &opts.staging_dir,
        claims: Default::default(),
        folders: Default::default(),
        budget: Default::default(),
        listed: &candidates,
        commits: Default::default(),
    };
    if ready.iter().any(|(c, _)| flow.steps.is_some() || !stage::is_inline(c.entry.size)) {
        // The flow's staging folder, once, before the first wave of files would each find it
        // missing (a local source's hard link fails, and is made again after a mkdir). A
        // failure here is left to the files, which report it with their own path.
        let _ = tokio::fs::create_dir_all(stage::staging_folder(&opts.staging_dir, &flow.name)).await;
    }
    // Round trips: what the first files take (a sink's name) the requests sent after the look
    // for responses must not take again.
    let sent: Vec<&discover::Candidate> = ready.iter().filter(|(c, k)| k.contends(flow, &c.entry).is_some()).map(|(c, _)| *c).collect();
    let mut stopped = take_turns(&cx, ready, &names, &opts.stop, report, on_file).await?;

    // Files a crashed run left whose source is no longer listed, as the source was being
    // moved or deleted: after delivery (finished by the lifecycle), once put aside in
    // quarantine (recorded quarantined if its copy is there; else said loudly), or once failed
    // for good (recorded failed, with where `after.failure` moved it); or before delivery was
    // done, the partner removing it since (finished by the lifecycle from what the crash left,
    // when its source is gone: `left_gone`).
    // Finishing one can be a whole delivery (from a staged copy) or a quarantine: none is
    // started once a stop is asked (`wharf serve` shutting down), as no listed file is; the
    // ones left stay in flight, for the next run to finish.
    // After a failure with `on_error: stop` (a listed file's, or one of these), nothing more
    // is delivered: a file left before its delivery was done (`left_gone`, which may deliver
    // it from its staged copy) waits for a run that does not stop. The others go on: every
    // sink has confirmed them, or their verdict (failed, quarantined) was reached before the
    // failure; finishing them puts nothing on a sink, and leaving them would keep them in
    // flight for as long as the failure repeats (every such run stops before here).
    // Those `source.max_files` left for the next run stay in flight (`left_unlisted`).
    let mut undelivered = 0;
    let mut left = left.into_iter();
    while let Some(left_unlisted::Left { rec: r, entry }) = left.next() {
        if opts.stop.requested() {
            let n = 1 + left.by_ref().count();
            tracing::info!(flow = %flow.name, files = n, "Shutting down: files an earlier run left unfinished are left for the next run.");
            break;
        }
        if stopped && left_gone::undelivered(&r) {
            undelivered += 1;
            continue;
        }
        let finished = match r.state {
            crate::ledger::FileState::Delivered | crate::ledger::FileState::Disposing => {
                Some(lifecycle::process(&cx, &entry, "", None).await?)
            }
            crate::ledger::FileState::Quarantining => quarantine::finish_left_aside(&cx, r, &entry).await?,
            _ if disposition::failing_move(&r).is_some() => left_failing::finish(&cx, r, &entry).await?,
            _ => left_gone::finish(&cx, &r, &entry, &unlisted).await?,
        };
        let Some((f, abort)) = finished else { continue };
        // Not in this run's listing, but one of its files all the same: counted as seen, so
        // that every file reported is counted once and `delivered` never exceeds `seen`.
        report.counts.seen += 1;
        let msg = format!("flow {}: {}: {}", flow.name, f.path, f.detail);
        let kind = f.error_kind;
        stopped |= stops(flow, &f);
        record(report, f, on_file);
        if abort {
            return Err(RunAbort::File(msg, kind.unwrap_or(ErrorKind::Protocol)));
        }
    }
    if undelivered > 0 {
        tracing::info!(
            flow = %flow.name,
            files = undelivered,
            "Stopped at an earlier failure (on_error: stop): files an earlier run left before their delivery was done are left for the next run."
        );
    }
    report.responses = awaits::poll(&cx, &eps, &opts.stop).await?;
    // Not after a stop was asked, nor after a failure stopped the run: the next run sends them.
    if !after_look.is_empty() && !stopped && !opts.stop.requested() {
        awaits::send_after_look(&cx, after_look, &sent, &mut places, &names, &opts.stop, report, on_file).await?;
    }
    Ok(())
}

/// Whether a run of `flow` looks at the run before it ([`awaits::earlier_run`]), to tell the
/// files it held back already ([`awaits::seen_ready`]): held again, they are logged at debug
/// level (a daemon polling every minute would log them 1,440 times a day). Only a flow that
/// may hold files back: a round trip, or a sink that may give files one name.
fn looks_back(flow: &Flow) -> bool {
    flow.response.is_some() || shared_targets::may_hold_back(flow)
}

/// Whether `f`, just reported, stops the run from starting any more files: it failed, and
/// the flow says `on_error: stop`.
fn stops(flow: &Flow, f: &FileReport) -> bool {
    f.outcome == Outcome::Failed && flow.on_error == crate::config::flow::OnError::Stop
}

/// Gives the not-ready line of the file at `path` a new reason (`why`).
fn reword_not_ready(report: &mut RunReport, path: &RemotePath, why: String) {
    let path = path.to_string();
    if let Some(f) = report.files.iter_mut().find(|f| f.outcome == Outcome::NotReady && f.path == path) {
        f.detail = why;
    }
}

/// Takes back the not-ready line of the file at `path` (held back at first, the run sends it
/// after all): the line it gets now says what became of it. `on_file` saw the first one.
fn unrecord_not_ready(report: &mut RunReport, path: &RemotePath) {
    let path = path.to_string();
    if let Some(i) = report.files.iter().position(|f| f.outcome == Outcome::NotReady && f.path == path) {
        report.files.remove(i);
        report.counts.not_ready = report.counts.not_ready.saturating_sub(1);
    }
}

/// Leaves out of `ready` the files over the places the run has left under the flow's
/// `source.max_files` ([`cap::Places`]: the files it starts first, then the requests it sends
/// after its look for responses), untouched for the next run, and counts them in the report
/// (`later`): not one line per file (a backlog of 50,000 would make a report of 50,000
/// lines), and not `not ready`.
fn leave_for_later<'c>(
    flow: &Flow,
    run: u64,
    ready: Vec<(&'c discover::Candidate, lifecycle::Known)>,
    places: &mut cap::Places,
    report: &mut RunReport,
) -> Vec<(&'c discover::Candidate, lifecycle::Known)> {
    if places.max().is_none() {
        return ready;
    }
    let left = leave(flow, run, ready.iter().map(|(c, k)| k.turn(flow, &c.entry).map(|t| (t, &c.entry))), places, report);
    ready.into_iter().zip(left).filter(|(_, l)| !l).map(|(f, _)| f).collect()
}

/// For each of `files` (as [`cap::Places::take`] takes them), whether the run leaves it for
/// the next one: those over its places, counted in the report (`later`) and logged.
fn leave<'e>(
    flow: &Flow,
    run: u64,
    files: impl IntoIterator<Item = Option<(cap::Turn, &'e crate::endpoint::Entry)>>,
    places: &mut cap::Places,
    report: &mut RunReport,
) -> Vec<bool> {
    let left = places.take(files);
    let files = count(left.iter().filter(|l| **l).count());
    if let Some(max_files) = places.max().filter(|_| files > 0) {
        tracing::info!(flow = %flow.name, run, files, max_files, "Leaving files for the next run (source.max_files).");
        let before = report.later.map_or(0, |l| l.files);
        report.later = Some(cap::Later { files: before.saturating_add(files), max_files });
    }
    left
}

/// Leaves out of `ready` the files `held` gives a reason (one per file, in order), reported
/// not ready with it.
fn hold_back<T>(
    ready: &mut Vec<(&discover::Candidate, T)>,
    held: Vec<Option<String>>,
    report: &mut RunReport,
    on_file: &mut (dyn FnMut(&FileReport) + Send),
) {
    let mut held = held.into_iter();
    ready.retain(|(c, _)| match held.next().flatten() {
        Some(why) => {
            record(report, not_ready(&c.entry.path, why), on_file);
            false
        }
        None => true,
    });
}

/// Takes each of `ready` through its lifecycle, several at a time, recording their reports in
/// listing order. Returns whether a failure stopped the run (`on_error: stop`).
async fn take_turns(
    cx: &lifecycle::Ctx<'_>,
    ready: Vec<(&discover::Candidate, lifecycle::Known)>,
    names: &[&str],
    stop: &Stop,
    report: &mut RunReport,
    on_file: &mut (dyn FnMut(&FileReport) + Send),
) -> Result<bool, RunAbort> {
    // Several files in flight, each through its own lifecycle; reports come in listing order.
    // A file is started only when it is its turn, so a stop (shutdown, `on_error: stop`, a run
    // aborted) keeps the files not started yet untouched; the ones in flight finish.
    let (flow, ledger) = (cx.flow, cx.ledger);
    let largest = ready.iter().map(|(c, _)| c.entry.size).max().unwrap_or(0);
    let concurrency = endpoints::concurrency(flow, names, largest);
    let turns = Turns { stop, stopped: AtomicBool::new(false), aborted: AtomicBool::new(false) };
    let mut abort: Option<RunAbort> = None;
    let mut waiting = ready.into_iter().enumerate();
    let mut in_flight = futures::stream::FuturesUnordered::new();
    // A finished file frees its place at once, so a slow one (backing off before a retry,
    // waiting for a login) does not hold back the files after it; its report waits here for
    // the reports of the files before it. `None`: a file not reported (the run was aborted).
    let mut finished: BTreeMap<usize, Option<FileReport>> = BTreeMap::new();
    let mut next_report = 0;
    // The files' durable transitions are stored in group commits, driven beside them.
    cx.commits.set_driven(ledger, true);
    let drive = cx.commits.drive(ledger);
    tokio::pin!(drive);
    loop {
        while in_flight.len() < concurrency
            && let Some((i, (c, known))) = waiting.next()
        {
            let turn = take_turn(cx, c, known, &turns);
            in_flight.push(async move { (i, turn.await) });
        }
        cx.commits.set_in_flight(in_flight.len());
        let next = tokio::select! {
            biased;
            next = in_flight.next() => next,
            never = &mut drive => match never {},
        };
        let Some((i, done)) = next else { break };
        cx.commits.set_in_flight(in_flight.len());
        let f = match done {
            None => None,
            Some(Err(e)) => {
                turns.aborted.store(true, Ordering::SeqCst);
                abort.get_or_insert(RunAbort::Ledger(e));
                None
            }
            Some(Ok((f, abort_run))) => {
                if abort_run {
                    turns.aborted.store(true, Ordering::SeqCst);
                    let msg = format!("flow {}: {}: {}", flow.name, f.path, f.detail);
                    abort.get_or_insert(RunAbort::File(msg, f.error_kind.unwrap_or(ErrorKind::Protocol)));
                }
                if stops(flow, &f) {
                    turns.stopped.store(true, Ordering::SeqCst);
                }
                Some(f)
            }
        };
        finished.insert(i, f);
        while let Some(f) = finished.remove(&next_report) {
            next_report += 1;
            if let Some(f) = f {
                record(report, f, on_file);
            }
        }
    }
    drop(in_flight);
    cx.commits.set_driven(ledger, false);
    match abort {
        Some(e) => Err(e),
        None => Ok(turns.stopped.load(Ordering::SeqCst)),
    }
}

/// Whether the files still waiting may start.
struct Turns<'a> {
    /// Shutdown asked for.
    stop: &'a Stop,
    /// A file failed with `on_error: stop`.
    stopped: AtomicBool,
    /// The run is being aborted: files not started are not reported at all.
    aborted: AtomicBool,
}

/// One file's turn: its lifecycle, unless the run stopped before the file started. `None`
/// when the run is being aborted.
async fn take_turn(
    cx: &lifecycle::Ctx<'_>,
    c: &discover::Candidate,
    known: lifecycle::Known,
    turns: &Turns<'_>,
) -> Option<Result<(FileReport, bool), LedgerError>> {
    if turns.aborted.load(Ordering::SeqCst) {
        return None;
    }
    let stopped = turns.stopped.load(Ordering::SeqCst);
    if stopped || turns.stop.requested() {
        let detail =
            if stopped { "run stopped at an earlier failure (on_error: stop)" } else { "wharf is shutting down; the next run takes it" };
        return Some(Ok((skipped(&c.entry.path, detail), false)));
    }
    Some(lifecycle::process(cx, &c.entry, &c.rel, Some(known)).await)
}

/// The report of a file not ready to be taken (it stays, for a later run).
fn not_ready(path: &RemotePath, why: String) -> FileReport {
    FileReport { outcome: Outcome::NotReady, detail: why, ..skipped(path, "") }
}

/// The report of a file that was not started.
fn skipped(path: &RemotePath, detail: &str) -> FileReport {
    FileReport {
        path: path.to_string(),
        outcome: Outcome::Skipped,
        detail: detail.into(),
        targets: vec![],
        bytes: 0,
        error_kind: None,
        records: None,
    }
}

fn from_millis(ms: crate::ledger::Millis) -> SystemTime {
    if ms >= 0 {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64)
    } else {
        SystemTime::UNIX_EPOCH - std::time::Duration::from_millis(ms.unsigned_abs())
    }
}

#[cfg(test)]
pub(crate) mod tests;
