//! The daemon's loop: which flow runs when.
//!
//! One task owns the schedule state (`Plan` per flow) and reacts to four things: the clock
//! reaching the earliest due time, a command (trigger, reload, a run finished), and shutdown.
//! Runs are spawned tasks that report back over the command channel, so the loop never waits
//! for a transfer. Each decision is made here and only here:
//! - due: start the run, or — while the previous one is still going — skip it (`overlap:
//!   skip`; each counted in the ledger, the first logged at once, the count when the run
//!   ends; a trigger is refused, not counted) or queue one (`overlap: queue`, at most one: a
//!   due time while one waits is skipped and counted as above, a trigger then is answered
//!   "queued", not counted); a run of a flow file whose
//!   `name:` changed while its run under the old name goes on waits for that run to end;
//! - a run that left files for the next one by its flow's `source.max_files` (and ended
//!   `ok`, having delivered some) is followed at once by the next, not at the next time; the
//!   due times that passed during it (`overlap: skip`) are then not skipped runs: that run
//!   takes their place (counted as skipped when the run ends, if it is not followed so);
//! - missed times (the machine slept, the daemon was down) are not caught up one by one: the
//!   next time is computed from now; times planned from a clock since set back are planned
//!   again from now;
//! - a run aborted because a server could not be reached is retried with exponential backoff
//!   and jitter (`serve.yaml` `retry`), never later than the flow's next scheduled time (a
//!   flow without a schedule until a run gets through);
//! - expected-file deadlines (`expect:`) are checked when they pass (`expect.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::limits::Limits;
use super::registry::Registry;
use super::skips::Skips;
use super::{ServeError, ServeOptions, expect, notifier, runner};
use crate::config::Flow;
use crate::control::{self, Metrics, TriggerError, Triggered};
use crate::endpoint::ErrorKind;
use crate::engine::{self, RunOptions, RunReport, Stop};
use crate::ledger::{Ledger, RunStatus};
use crate::schedule::{Clock, Overlap, Schedule};

/// A finished run, as broadcast to watchers (tests, the notifier).
#[derive(Debug, Clone)]
pub struct Finished {
    pub flow: String,
    /// The run's report, or why the run could not be recorded (a ledger failure).
    pub report: Result<Arc<RunReport>, String>,
}

/// Commands to the loop.
pub(super) enum Cmd {
    Trigger(String, oneshot::Sender<Result<Triggered, TriggerError>>),
    /// Look at the flow files again: the changed ones (`all: false`, the periodic rescan) or
    /// every one (SIGHUP, [`Supervisor::reload`]).
    Reload {
        all: bool,
    },
    Done(String, Result<Arc<RunReport>, String>, Duration),
    /// Look again: a write made off the loop is over (an expected-file check, `expect.rs`).
    Wake,
    /// Shutdown: every run has stopped (finished or cut off); the loop answers and ends.
    Stop(oneshot::Sender<()>),
}

/// What the loop knows of one flow between runs.
#[derive(Debug, Default, Clone)]
pub(super) struct Plan {
    /// The next scheduled (or retry) time; `None`: only by trigger.
    pub next_due: Option<DateTime<Utc>>,
    pub running: bool,
    /// Started, but waiting for a slot under the run limits (`max_runs`, per server).
    pub waiting: bool,
    pub queued: bool,
    /// Retries so far of a run that could not reach a server.
    pub retry_attempt: u32,
    pub last: Option<Arc<RunReport>>,
    pub last_started: Option<DateTime<Utc>>,
    pub last_finished: Option<DateTime<Utc>>,
    /// The schedule `next_due` was planned by: a reload plans a flow again only when it
    /// changed.
    pub schedule: Option<Schedule>,
    /// The flow file of the run going (or last run).
    pub file: Option<PathBuf>,
    /// A run asked for while its flow file's run under an earlier name (its `name:` changed
    /// meanwhile) was still going: it starts when that one ends (the two would take the same
    /// files).
    pub waits_for: Option<String>,
    /// Runs skipped (`overlap: skip`, or `queue` with one waiting) while the run going goes
    /// on: the first is logged when
    /// it is skipped, the count when the run ends ([`Plan::skip`], [`Plan::ended`]). Was one
    /// WARN per skipped time: a 1 s schedule during an hour-long run logged 3,600 lines.
    /// Each is also counted in the ledger, which `wharf status` reads for the total
    /// ([`Skips`]: written off the loop).
    pub skipped: u64,
    /// Due times passed under `overlap: skip` while a run of a flow with `source.max_files`
    /// went on, not counted yet ([`Overlapping::Deferred`]): when it ends, the next run
    /// starting at once takes their place (they were not skipped), or else they are counted
    /// as skipped then.
    pub deferred: u64,
    /// The files the last run followed at once by the next ([`goes_on`]) left: the next is
    /// followed so only if it left fewer. `None`: the last run was not followed so.
    pub went_on_with: Option<u32>,
}

/// Who asks for a run of a flow: what a refusal, the previous run still going, counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// Its scheduled or retry time came, or a run held back (queued, waiting for a renamed
    /// flow's run) is let go.
    Due,
    /// `wharf trigger` (the control interface): a refusal is answered to the caller at once
    /// (409 `already_running`), so it is not one of the schedule's skipped runs.
    Trigger,
}

/// What becomes of a run asked for while the flow's previous run still goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlapping {
    /// `overlap: queue`, none waiting yet: it runs when the current run ends.
    Queued,
    /// `overlap: queue`, asked for by a trigger while one waits: answered "queued" (that run
    /// is the one asked for), not counted.
    AlreadyQueued,
    /// At a due time, under `overlap: skip`, or `overlap: queue` with one waiting already:
    /// dropped and counted; `first`: the first of the run going (the one to log).
    Skipped { first: bool },
    /// `overlap: skip`, asked for by a trigger: refused, not counted.
    Refused,
    /// At a due time, under `overlap: skip`, while a run of a flow with `source.max_files`
    /// goes on: not counted yet. If that run leaves files and is followed at once by the next
    /// ([`goes_on`]), that run takes this time's place, and nothing was skipped (before, a
    /// backlog drained run after run counted, logged and showed each time that passed as a
    /// skipped run); if not, it is counted as skipped when the run ends.
    Deferred,
}

impl Plan {
    /// Applies `overlap` to a run asked for (`asked`) while the previous one goes on;
    /// `capped`: the flow has `source.max_files` (its run may be followed at once by the next).
    fn overlapping(&mut self, overlap: Overlap, asked: Asked, capped: bool) -> Overlapping {
        match (overlap, asked) {
            (Overlap::Skip, Asked::Due) if capped => {
                self.deferred += 1;
                Overlapping::Deferred
            }
            (Overlap::Queue, _) if !self.queued => {
                self.queued = true;
                Overlapping::Queued
            }
            (Overlap::Queue, Asked::Trigger) => Overlapping::AlreadyQueued,
            (Overlap::Skip, Asked::Trigger) => Overlapping::Refused,
            (_, Asked::Due) => Overlapping::Skipped { first: self.skip() },
        }
    }

    /// The flow's `overlap` as last planned (the default for a flow without a schedule).
    fn overlap(&self) -> Overlap {
        self.schedule.as_ref().map(|s| s.overlap).unwrap_or_default()
    }

    /// Counts a run skipped because the previous one still goes on; `true` for the first
    /// one of that run (the one to log).
    fn skip(&mut self) -> bool {
        self.skipped += 1;
        self.skipped == 1
    }

    /// The run going has ended: how many runs were skipped while it went (then none).
    fn ended(&mut self) -> u64 {
        self.running = false;
        std::mem::take(&mut self.skipped)
    }
}

/// Logs, when a run ends, the runs skipped while it went (by `overlap`), if any.
fn log_skipped(name: &str, skipped: u64, overlap: Overlap) {
    if skipped > 0 {
        let overlap = overlap.as_str();
        tracing::warn!(flow = %name, skipped, "The run that was going has ended; {skipped} run(s) were skipped while it went (overlap: {overlap}).");
    }
}

/// Ends, at shutdown, the runs still going (cut off after `shutdown_grace`): they send no
/// `Cmd::Done`, so the runs skipped while they went are logged here, as [`finished`] logs
/// them (was: not at all).
fn cut_off(plans: &mut BTreeMap<String, Plan>) {
    for (name, plan) in plans.iter_mut().filter(|(_, p)| p.running) {
        log_skipped(name, plan.ended(), plan.overlap());
    }
}

/// Waits for the runs until `deadline`, then cuts off those still going, naming each one's
/// flow (was: "cutting off a run", with no flow: an operator could not tell which flow's
/// files were left in flight).
async fn cut_off_after(runs: Vec<(String, JoinHandle<()>)>, deadline: Instant, grace: Duration) {
    for (flow, mut run) in runs {
        let left = deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, &mut run).await.is_err() {
            tracing::warn!(
                %flow,
                grace_s = grace.as_secs(),
                "Shutdown grace over: cutting off the flow's run; it is recorded as aborted, and its files in flight resume at its next run."
            );
            run.abort();
            // Cancelled at its next await; wait for that so nothing of it runs below.
            let _ = run.await;
        }
    }
}

/// State shared by the loop, the runs, the notifier and the control interface.
pub(super) struct Shared {
    pub opts: ServeOptions,
    pub ledger: Arc<Ledger>,
    pub clock: Arc<dyn Clock>,
    pub registry: Mutex<Registry>,
    pub plans: Mutex<BTreeMap<String, Plan>>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub stop: Stop,
    pub cmd: mpsc::UnboundedSender<Cmd>,
    pub finished: broadcast::Sender<Finished>,
    pub started_at: DateTime<Utc>,
    pub notifier: notifier::Notifier,
    /// Runs skipped, counted here and written to the ledger off the loop.
    pub skips: Skips,
    /// The expected-file marks, written to the ledger off the loop.
    pub marks: expect::Marks,
    /// The runs' tasks, by flow name (the shutdown names the flow of each it cuts off).
    runs: Mutex<Vec<(String, JoinHandle<()>)>>,
}

impl Shared {
    pub fn plans(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Plan>> {
        // A panic while holding the lock leaves plain data behind: keep going with it.
        crate::sync::lock(&self.plans)
    }

    pub fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        crate::sync::lock(&self.registry)
    }
}

/// A running daemon.
pub struct Handle {
    pub(super) shared: Arc<Shared>,
    main: JoinHandle<()>,
    control: Mutex<Option<JoinHandle<()>>>,
    control_stop: Mutex<Option<oneshot::Sender<()>>>,
}

/// SIGHUP, listened for (`None`: not on this platform, or no runtime to listen with).
pub(super) struct Hangup(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

impl Hangup {
    /// Takes SIGHUP over from its default action (ending the process) now; the signals that
    /// come before the rescan task runs are seen by it then.
    pub fn listen() -> Hangup {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            // `signal` needs a runtime's context (it panics without one).
            Hangup(tokio::runtime::Handle::try_current().ok().and_then(|_| signal(SignalKind::hangup()).ok()))
        }
        #[cfg(not(unix))]
        Hangup()
    }
}

/// Starts the loop (and the notifier) over the flows in `opts.flows_dir`.
pub(super) fn start(opts: ServeOptions, ledger: Arc<Ledger>, clock: Arc<dyn Clock>, hup: Hangup) -> Result<Handle, ServeError> {
    if !opts.flows_dir.is_dir() {
        let e = std::io::Error::new(std::io::ErrorKind::NotFound, "not a folder");
        return Err(ServeError::Flows(opts.flows_dir.clone(), e));
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let (finished, _) = broadcast::channel(256);
    let mut registry = Registry::new(&opts.flows_dir);
    registry.rescan();
    let metrics = Arc::new(Metrics::new());
    let notifier = notifier::Notifier::start(ledger.clone(), opts.config.notify.clone(), clock.clone(), metrics.clone());
    let shared = Arc::new(Shared {
        limits: Limits::new(opts.config.max_runs, opts.config.per_server),
        started_at: clock.now(),
        opts,
        skips: Skips::new(ledger.clone()),
        marks: expect::Marks::new(ledger.clone(), tx.clone()),
        ledger,
        clock,
        registry: Mutex::new(registry),
        plans: Mutex::new(BTreeMap::new()),
        metrics,
        stop: Stop::default(),
        cmd: tx,
        finished,
        notifier,
        runs: Mutex::new(Vec::new()),
    });
    plan_all(&shared, shared.clock.now());
    let main = tokio::spawn(run_loop(shared.clone(), rx));
    spawn_rescan(&shared, hup);
    Ok(Handle { shared, main, control: Mutex::new(None), control_stop: Mutex::new(None) })
}

impl Handle {
    /// Starts the control interface (Unix socket in the state folder, and HTTP when
    /// configured) and writes the discovery file the CLI reads.
    pub async fn serve_control(&self) -> Result<(), ServeError> {
        let cfg = &self.shared.opts.config;
        let listen = control::ListenConfig::in_state_dir(&self.shared.opts.state_dir, cfg.listen, cfg.allow_remote);
        let daemon: Arc<dyn control::Daemon> = Arc::new(super::daemon::DaemonView(self.shared.clone()));
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = control::Server::bind(&listen).map_err(|e| ServeError::Control(e.to_string()))?;
        if let Some(addr) = server.tcp_addr() {
            tracing::info!(%addr, "Health, metrics and status over HTTP.");
        }
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = server.run(daemon, stopped).await {
                tracing::error!(error = %e, "Control interface stopped.");
            }
        });
        *crate::sync::lock(&self.control) = Some(task);
        *crate::sync::lock(&self.control_stop) = Some(stop_tx);
        Ok(())
    }

    /// Asks for a run of `flow` now (as `wharf trigger` does).
    pub async fn trigger(&self, flow: &str) -> Result<Triggered, TriggerError> {
        trigger(&self.shared, flow).await
    }

    /// Re-reads the flows folder now, loading every flow again (as SIGHUP does).
    pub fn reload(&self) {
        let _ = self.shared.cmd.send(Cmd::Reload { all: true });
    }

    /// Finished runs from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Finished> {
        self.shared.finished.subscribe()
    }

    /// The daemon's status, as `wharf status` shows it.
    /// How many flows are served (loaded from valid files).
    pub fn served(&self) -> usize {
        self.shared.registry().flows().len()
    }

    pub fn status(&self) -> control::Status {
        super::daemon::status(&self.shared)
    }

    /// The daemon's metrics, as `/metrics` renders them.
    pub fn metrics(&self) -> &control::Metrics {
        &self.shared.metrics
    }

    pub fn ledger(&self) -> Arc<Ledger> {
        self.shared.ledger.clone()
    }

    /// Waits until the notifier has handled every recorded event (tests), the expected-file
    /// checks decided so far written first.
    pub async fn notified(&self) {
        self.shared.marks.written().await;
        self.shared.notifier.flush().await;
    }

    /// Stops: no new run or file starts; running files get `shutdown_grace`, then the runs
    /// are cut off (their files resume at the next start). Removes the control socket.
    pub async fn shutdown(mut self) {
        let grace = self.shared.opts.config.shutdown_grace;
        self.shared.stop.request();
        let runs = std::mem::take(&mut *crate::sync::lock(&self.shared.runs));
        // Checked although serve.yaml bounds the grace: a panic here would skip the cleanup.
        let now = Instant::now();
        let deadline = now.checked_add(grace).unwrap_or(now + Duration::from_secs(24 * 3600));
        cut_off_after(runs, deadline, grace).await;
        // The loop has been told of every run that finished (in the grace too): it records
        // them — metrics, summary notice — once it reaches this, and ends.
        let (tx, rx) = oneshot::channel();
        if self.shared.cmd.send(Cmd::Stop(tx)).is_ok() {
            // Recording is quick (no I/O but the ledger); the bound is against a stuck loop.
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        self.main.abort();
        let _ = (&mut self.main).await;
        // What the loop wrote off it (skips, expected-file marks, run summaries) is in the ledger before it is
        // let go, and the summaries with the notifier before it stops.
        self.shared.skips.written().await;
        self.shared.marks.written().await;
        self.shared.notifier.stored().await;
        // Every run has stopped: close the ones cut off now, so `wharf runs` does not show
        // them running while the daemon is down. Also those of flows whose file was removed
        // or renamed during the run: no later run of theirs would close them.
        let mut names: BTreeSet<String> = self.shared.registry().flows().iter().map(|f| f.name.clone()).collect();
        names.extend(self.shared.plans().iter().filter(|(_, p)| p.running).map(|(name, _)| name.clone()));
        cut_off(&mut self.shared.plans());
        for name in names {
            let reason = "cut off: wharf serve stopped (shutdown_grace over) before this run finished; the next run resumes its files";
            if let Err(e) = engine::close_interrupted(&name, &self.shared.ledger, reason) {
                tracing::error!(flow = %name, error = %e, "Could not record a cut-off run as aborted; the next run of the flow does.");
            }
        }
        // Notices get what is left of the grace: a slow or dead channel cannot hold the stop
        // up (events not sent stay in the ledger for the next start).
        self.shared.notifier.stop(deadline.saturating_duration_since(Instant::now())).await;
        if let Some(tx) = crate::sync::lock(&self.control_stop).take() {
            let _ = tx.send(());
        }
        let control = crate::sync::lock(&self.control).take();
        if let Some(task) = control {
            let _ = task.await;
        }
        tracing::info!("wharf serve stopped.");
    }
}

/// Asks the loop for a run.
pub(super) async fn trigger(shared: &Arc<Shared>, flow: &str) -> Result<Triggered, TriggerError> {
    if shared.stop.requested() {
        return Err(TriggerError::ShuttingDown);
    }
    let (tx, rx) = oneshot::channel();
    shared.cmd.send(Cmd::Trigger(flow.to_string(), tx)).map_err(|_| TriggerError::ShuttingDown)?;
    rx.await.unwrap_or(Err(TriggerError::ShuttingDown))
}

/// When `flow`'s newest finished run and newest successful run ended, as the ledger says
/// (`None` for what it cannot say: the gauges then appear at the flow's next run).
fn last_times(ledger: &Ledger, flow: &str) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let at = |ms: Option<i64>| ms.and_then(DateTime::from_timestamp_millis);
    // The newest may be one a killed daemon left running (closed by the flow's next run).
    let last_run = ledger.runs(Some(flow), 2).ok().and_then(|runs| runs.iter().find_map(|r| r.finished));
    let last_success = ledger.health(flow).ok().and_then(|h| h.last_ok);
    (at(last_run), at(last_success))
}

/// When a daemon first served `flow` with this ledger, `now` the first time (kept in the
/// ledger: a restart does not make a flow that never succeeded look new to a stale-flow
/// alert); `now` when the ledger cannot say or keep it (said in the log).
fn served_since(ledger: &Ledger, flow: &str, now: DateTime<Utc>) -> DateTime<Utc> {
    match ledger.served_since(flow, now.timestamp_millis()) {
        Ok(ms) => DateTime::from_timestamp_millis(ms).unwrap_or(now),
        Err(e) => {
            tracing::warn!(flow, error = %e, "Could not keep when the flow was first served; its metrics count from now.");
            now
        }
    }
}

/// Plans every flow: a new one, or one whose schedule changed, from `now`; the others keep
/// their next time, also one that has just passed (its run is started next time round; was:
/// planned again from now, a reload coming with a due time skipped that run). Keeps what runs.
fn plan_all(shared: &Arc<Shared>, now: DateTime<Utc>) {
    let flows = shared.registry().flows();
    shared.notifier.set_rules(&flows);
    for f in &flows {
        if shared.metrics.register_flow(&f.name) {
            let (last_run, last_success) = last_times(&shared.ledger, &f.name);
            shared.metrics.last_times(&f.name, last_run, last_success);
            shared.metrics.served_since(&f.name, served_since(&shared.ledger, &f.name, now));
        }
    }
    let mut plans = shared.plans();
    plans.retain(|name, p| p.running || flows.iter().any(|f| &f.name == name));
    // A flow no longer served has no series left once its last run ended (the next reload).
    shared.metrics.keep_flows(|name| plans.contains_key(name) || flows.iter().any(|f| f.name == name));
    for (name, plan) in plans.iter_mut() {
        if !flows.iter().any(|f| &f.name == name) {
            // Kept only while its run goes on: nothing is due for a flow no longer served
            // (`due` would never move the time on, and `earliest` would wake the loop for ever).
            plan.next_due = None;
            plan.queued = false;
        }
    }
    for flow in flows {
        let plan = plans.entry(flow.name.clone()).or_default();
        let changed = plan.schedule != flow.schedule;
        if (plan.retry_attempt == 0 && changed) || plan.next_due.is_none() {
            plan.next_due = flow.schedule.as_ref().and_then(|s| s.next_after(&flow.name, now));
        }
        plan.schedule = flow.schedule.clone();
    }
}

fn spawn_rescan(shared: &Arc<Shared>, hup: Hangup) {
    let weak = Arc::downgrade(shared);
    let every = shared.opts.config.rescan;
    tokio::spawn(async move {
        #[cfg(unix)]
        let Hangup(mut hup) = hup;
        #[cfg(not(unix))]
        let _ = hup;
        loop {
            #[cfg(unix)]
            let hup_recv = async {
                match hup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let hup_recv = std::future::pending::<()>();
            let all = tokio::select! {
                _ = tokio::time::sleep(every) => false,
                _ = hup_recv => {
                    tracing::info!("SIGHUP: loading every flow again.");
                    true
                }
            };
            let Some(shared) = weak.upgrade() else { return };
            if shared.stop.requested() || shared.cmd.send(Cmd::Reload { all }).is_err() {
                return;
            }
        }
    });
}

async fn run_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Cmd>) {
    let mut expects = expect::Watch::new(&shared);
    loop {
        let now = shared.clock.now();
        after_a_set_back(&shared, now);
        let due_runs = due(&shared, now);
        for flow in due_runs {
            // A skipped (overlapping) run is logged where it is decided.
            let _ = start_or_defer(&shared, flow, Asked::Due, now);
        }
        expects.check(&shared, now);
        let next = earliest(&shared).into_iter().chain(expects.next(&shared, now)).min();
        let sleep = async {
            match next {
                Some(t) => shared.clock.sleep_until(t).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            cmd = rx.recv() => match cmd {
                None => return,
                Some(Cmd::Stop(done)) => {
                    let _ = done.send(());
                    return;
                }
                Some(cmd) => handle(&shared, cmd),
            },
        }
        if shared.stop.requested() {
            return drain(&shared, &mut rx).await;
        }
    }
}

/// After shutdown was asked for: nothing new starts, but runs that finish in the grace are
/// recorded (metrics, summary), until [`Cmd::Stop`].
async fn drain(shared: &Arc<Shared>, rx: &mut mpsc::UnboundedReceiver<Cmd>) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Stop(done) => {
                let _ = done.send(());
                return;
            }
            Cmd::Trigger(_, reply) => {
                let _ = reply.send(Err(TriggerError::ShuttingDown));
            }
            Cmd::Reload { .. } | Cmd::Wake => {}
            Cmd::Done(name, report, took) => finished(shared, &name, report, took, shared.clock.now()),
        }
    }
}

/// The flows whose time has come (their next time is moved on).
fn due(shared: &Arc<Shared>, now: DateTime<Utc>) -> Vec<Arc<Flow>> {
    let registry = shared.registry();
    let mut plans = shared.plans();
    let mut out = Vec::new();
    for flow in registry.flows() {
        let Some(plan) = plans.get_mut(&flow.name) else { continue };
        if plan.next_due.is_none_or(|t| t > now) {
            continue;
        }
        // Not caught up one by one: the next time is the first one after now.
        plan.next_due = flow.schedule.as_ref().and_then(|s| s.next_after(&flow.name, now));
        out.push(flow);
    }
    out
}

/// Plans again from `now` the flows whose next time lies beyond their first scheduled time
/// after `now`, or a retry beyond `now` plus the longest retry wait (`retry.max`): planned
/// from a clock that was ahead, since set back. (Planned from a time at or before `now`, as
/// every time is while the clock only moves forward, a next time is never beyond them.)
/// Before, a clock a day ahead, once corrected, held every flow back for a day.
fn after_a_set_back(shared: &Arc<Shared>, now: DateTime<Utc>) {
    let registry = shared.registry();
    let mut plans = shared.plans();
    let longest_retry = chrono::Duration::from_std(shared.opts.config.retry_max).ok().and_then(|max| now.checked_add_signed(max));
    let mut moved = Vec::new();
    for flow in registry.flows() {
        let Some(plan) = plans.get_mut(&flow.name) else { continue };
        let first = flow.schedule.as_ref().and_then(|s| s.next_after(&flow.name, now));
        let retry = longest_retry.filter(|_| plan.retry_attempt > 0);
        let Some(latest) = first.into_iter().chain(retry).min() else { continue };
        if plan.next_due.is_some_and(|t| t > latest) {
            plan.next_due = Some(latest);
            moved.push(flow.name.clone());
        }
    }
    if !moved.is_empty() {
        tracing::warn!(flows = %moved.join(", "), "The clock was set back; the next runs of these flows are planned again from now.");
    }
}

/// The earliest next time of any flow, running ones included: a time that passes while the
/// flow runs is decided at that time (skipped or queued), not when the run ends.
fn earliest(shared: &Arc<Shared>) -> Option<DateTime<Utc>> {
    shared.plans().values().filter_map(|p| p.next_due).min()
}

/// Starts a run of `flow`, or applies its overlap policy when one is going.
fn start_or_defer(shared: &Arc<Shared>, flow: Arc<Flow>, asked: Asked, now: DateTime<Utc>) -> Result<Triggered, TriggerError> {
    if shared.stop.requested() {
        return Err(TriggerError::ShuttingDown);
    }
    {
        let mut plans = shared.plans();
        // Overlap is judged by flow file too: a run of this file under the flow's earlier name
        // (renamed while it ran) takes the same files as this one would.
        let earlier = plans
            .iter()
            .find(|(name, p)| p.running && **name != flow.name && p.file.as_deref() == Some(flow.file.as_path()))
            .map(|(name, _)| name.clone());
        let plan = plans.entry(flow.name.clone()).or_default();
        if let Some(earlier) = earlier {
            if plan.waits_for.is_none() {
                tracing::info!(flow = %flow.name, previous = %earlier, "The run of this flow file under its previous name is still going; this run starts when it ends.");
            }
            plan.waits_for = Some(earlier);
            return Ok(Triggered::Queued);
        }
        if plan.running {
            let overlap = flow.schedule.as_ref().map(|s| s.overlap).unwrap_or_default();
            return match plan.overlapping(overlap, asked, flow.source.max_files.is_some()) {
                Overlapping::Queued => {
                    tracing::info!(flow = %flow.name, "Previous run still going; one run queued.");
                    Ok(Triggered::Queued)
                }
                Overlapping::AlreadyQueued => Ok(Triggered::Queued),
                Overlapping::Skipped { first } => {
                    // Counted with the plans held: a status that shows this skip
                    // (`Plan::skipped`) counts it in the total too.
                    skipped(shared, &flow.name, overlap, first, now);
                    Err(TriggerError::AlreadyRunning(flow.name.clone()))
                }
                Overlapping::Refused => {
                    tracing::info!(flow = %flow.name, "Previous run still going; the run triggered is refused (overlap: skip).");
                    Err(TriggerError::AlreadyRunning(flow.name.clone()))
                }
                Overlapping::Deferred => Err(TriggerError::AlreadyRunning(flow.name.clone())),
            };
        }
        plan.running = true;
        plan.waiting = true;
        plan.last_started = Some(now);
        plan.file = Some(flow.file.clone());
    }
    shared.metrics.run_started(&flow.name);
    let name = flow.name.clone();
    let s = shared.clone();
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let _permits = s.limits.acquire(&flow).await;
        if let Some(p) = s.plans().get_mut(&flow.name) {
            p.waiting = false;
        }
        let mut opts = RunOptions::new(s.opts.state_dir.join("staging"));
        opts.now = Some(s.clock.now().into());
        opts.stop = s.stop.clone();
        let report = if s.stop.requested() {
            Err("wharf is shutting down".to_string())
        } else {
            let (run, f) = (s.clone(), flow.clone());
            runner::on_own_thread(format!("run {}", flow.name), move || async move {
                engine::run_once(&f, &run.ledger, &opts, &mut |_| {}).await.map(Arc::new).map_err(|e| e.to_string())
            })
            .await
            .and_then(|r| r)
        };
        let _ = s.cmd.send(Cmd::Done(flow.name.clone(), report, started.elapsed()));
    });
    let mut runs = crate::sync::lock(&shared.runs);
    runs.retain(|(_, r)| !r.is_finished());
    runs.push((name, task));
    Ok(Triggered::Started)
}

/// Counts a run of `name` skipped at `now` (by `overlap`): in the metrics, and in the
/// ledger, where `wharf status` reads the total (it survives a restart; the metric counts
/// from the daemon's start, as Prometheus counters do). The ledger is written off the loop
/// ([`Skips::count`]). The first skip of a run is logged.
fn skipped(shared: &Shared, name: &str, overlap: Overlap, first: bool, now: DateTime<Utc>) {
    shared.metrics.run_skipped(name);
    shared.skips.count(name, crate::ledger::to_millis(now.into()));
    if first {
        let why = match overlap {
            Overlap::Skip => "Previous run still going; this run is skipped (overlap: skip)",
            Overlap::Queue => "Previous run still going and one run already queued; this run is skipped (overlap: queue)",
        };
        tracing::warn!(flow = %name, "{why}, and so is every run due before it ends (counted when it does).");
    }
}

/// Why `name` is not served when a flow file of that name is refused.
fn refused(shared: &Arc<Shared>, name: &str) -> Option<TriggerError> {
    let registry = shared.registry();
    let slot = registry.refused(name)?;
    Some(TriggerError::Refused { flow: name.to_string(), file: slot.file.clone(), problem: slot.problem.clone().unwrap_or_default() })
}

fn handle(shared: &Arc<Shared>, cmd: Cmd) {
    let now = shared.clock.now();
    match cmd {
        Cmd::Reload { all } => {
            let changes = if all { shared.registry().reload_all() } else { shared.registry().rescan() };
            if !changes.is_empty() {
                plan_all(shared, now);
            }
        }
        Cmd::Trigger(name, reply) => {
            let flow = shared.registry().flow(&name);
            let result = match flow {
                None => Err(refused(shared, &name).unwrap_or_else(|| TriggerError::UnknownFlow(name.clone()))),
                Some(flow) => start_or_defer(shared, flow, Asked::Trigger, now),
            };
            let _ = reply.send(result);
        }
        Cmd::Done(name, report, took) => finished(shared, &name, report, took, now),
        // Looked at by the loop at once (`expect::Watch::check`).
        Cmd::Wake => {}
        // Handled by the loop itself (it ends there).
        Cmd::Stop(done) => {
            let _ = done.send(());
        }
    }
}

/// Bookkeeping after a run: metrics, summary, retry or queued run.
fn finished(shared: &Arc<Shared>, name: &str, report: Result<Arc<RunReport>, String>, took: Duration, now: DateTime<Utc>) {
    let flow = shared.registry().flow(name);
    if let Ok(r) = &report {
        let outcomes = [
            ("delivered", r.counts.delivered as u64),
            ("failed", r.counts.failed as u64),
            ("skipped", r.counts.skipped as u64),
            ("not_ready", r.counts.not_ready as u64),
            ("quarantined", r.quarantined as u64),
        ];
        shared.metrics.run_finished(name, r.status.as_str(), took, &outcomes, r.counts.bytes, now);
        shared.notifier.run_finished(flow.as_deref(), r);
    } else {
        shared.metrics.run_finished(name, "aborted", took, &[], 0, now);
    }
    // Passing trouble that stopped the run (a server out of reach, or a `source.command`
    // that failed, whose next run may succeed): tried again on the backoff schedule.
    let passing = report.as_ref().is_ok_and(|r| r.status == RunStatus::Aborted && r.error_kind.is_some_and(ErrorKind::is_transient));
    let what = if report.as_ref().is_ok_and(|r| r.aborted_by_command) { "The source command failed" } else { "Could not reach a server" };
    let queued = {
        let mut plans = shared.plans();
        let Some(flow) = &flow else {
            // Its file was removed, or its flow renamed, while it ran: nothing more is planned
            // for it (a retry or queued run would be due for a flow `due` never looks at, and
            // `earliest` would wake the loop for it without end).
            let (skipped, overlap) = plans.remove(name).map_or((0, Overlap::default()), |mut p| (p.ended(), p.overlap()));
            drop(plans);
            log_skipped(name, skipped, overlap);
            // No longer served: its series go now (a reload did not drop them while it ran).
            shared.metrics.keep_flows(|n| n != name);
            let _ = shared.finished.send(Finished { flow: name.to_string(), report });
            start_waiting(shared, name, now);
            return;
        };
        let plan = plans.entry(name.to_string()).or_default();
        log_skipped(name, plan.ended(), plan.overlap());
        let deferred = std::mem::take(&mut plan.deferred);
        let mut went_on = false;
        plan.last_finished = Some(now);
        if let Ok(r) = &report {
            plan.last = Some(r.clone());
        }
        let schedule = flow.schedule.as_ref();
        // A flow without a schedule (run by `wharf trigger`) is retried too: the run was
        // asked for, and nothing else would run it again once the server is back.
        if passing {
            plan.retry_attempt += 1;
            let cfg = &shared.opts.config;
            let wait = crate::schedule::backoff(plan.retry_attempt, cfg.retry_backoff, cfg.retry_max);
            // Checked: `+` panics past chrono's range, and a panic here would end the loop.
            let retry_at =
                chrono::Duration::from_std(wait).ok().and_then(|w| now.checked_add_signed(w)).unwrap_or(DateTime::<Utc>::MAX_UTC);
            let regular = schedule.and_then(|s| s.next_after(name, now)).filter(|t| *t < retry_at);
            plan.next_due = Some(regular.unwrap_or(retry_at));
            // Said as it will happen: a schedule more frequent than the backoff runs first.
            let attempt = plan.retry_attempt;
            match regular {
                Some(t) => {
                    let next_in_s = (t - now).num_seconds().max(0);
                    tracing::warn!(flow = %name, attempt, next_in_s, "{what}; trying again at the next scheduled run.");
                }
                None => tracing::warn!(flow = %name, attempt, retry_in_s = wait.as_secs(), "{what}; retrying."),
            }
        } else {
            plan.retry_attempt = 0;
            // (A run queued meanwhile starts at once anyway, below: not a second one.)
            let went_on_with = std::mem::take(&mut plan.went_on_with);
            if let Ok(r) = &report
                && !plan.queued
                && let Some(later) = goes_on(r, went_on_with)
            {
                // A backlog taken `source.max_files` at a time: the next run at once, not at
                // the next scheduled time (which `due` plans again when it starts it).
                tracing::info!(flow = %name, files = later.files, max_files = later.max_files, "Files left for the next run (source.max_files); it starts now.");
                plan.next_due = Some(now);
                plan.went_on_with = Some(later.files);
                went_on = true;
            }
        }
        if deferred > 0 && went_on {
            tracing::debug!(flow = %name, times = deferred, "Scheduled times passed during the run; the next run, starting now, takes their place.");
        } else if deferred > 0 {
            // Not followed at once: they were skipped runs after all, counted now.
            for _ in 0..deferred {
                skipped(shared, name, plan.overlap(), false, now);
            }
            log_skipped(name, deferred, plan.overlap());
        }
        std::mem::take(&mut plan.queued)
    };
    let _ = shared.finished.send(Finished { flow: name.to_string(), report });
    if queued && let Some(flow) = flow {
        let _ = start_or_defer(shared, flow, Asked::Due, now);
    }
    start_waiting(shared, name, now);
}

/// What a run that ended left for the next one by its `source.max_files`, when the next run
/// is to start at once: the run ended `ok` (a file failing at every run would otherwise have
/// the flow run without a pause) and delivered or quarantined some file (it got on with the
/// backlog: files the login cannot read yet, taking the run's places, do not make it go on),
/// and, when the run before was followed so too (`before`: the files that one left), left
/// fewer files than it: a backlog that does not shrink waits for the schedule. Else a flow
/// whose `source.command` makes a file at every run, with `max_files: 1`, ran without a
/// pause for ever (each run took one file and its command made one), running its command
/// as fast as it could.
fn goes_on(r: &RunReport, before: Option<u32>) -> Option<engine::Later> {
    let moved = r.counts.delivered > 0 || r.quarantined > 0;
    r.later.filter(|l| r.status == RunStatus::Ok && moved && before.is_none_or(|b| l.files < b))
}

/// Starts the runs that waited for the run of `name` to end (see [`Plan::waits_for`]).
fn start_waiting(shared: &Arc<Shared>, name: &str, now: DateTime<Utc>) {
    let waiting: Vec<String> = shared
        .plans()
        .iter_mut()
        .filter(|(_, p)| p.waits_for.as_deref() == Some(name))
        .map(|(waiting, p)| {
            p.waits_for = None;
            waiting.clone()
        })
        .collect();
    for waiting in waiting {
        let flow = shared.registry().flow(&waiting);
        if let Some(flow) = flow {
            let _ = start_or_defer(shared, flow, Asked::Due, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `overlap: skip` with a 1 s schedule during an hour-long run: one line when skipping
    /// starts, one with the count when the run ends (was 3,600 WARN lines).
    #[test]
    fn skipped_runs_are_told_once_and_counted_when_the_run_ends() {
        let mut plan = Plan { running: true, ..Plan::default() };
        let told: Vec<bool> = (0..3600).map(|_| plan.skip()).collect();
        assert_eq!(told.iter().filter(|t| **t).count(), 1, "only the first skip is logged");
        assert!(told[0]);
        let (skipped, lines) = crate::log_capture::Log::default().of(|| {
            let skipped = plan.ended();
            log_skipped("f", skipped, Overlap::Skip);
            skipped
        });
        assert_eq!(skipped, 3600);
        assert!(!plan.running);
        assert_eq!(plan.skipped, 0);
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("3600 run(s) were skipped while it went (overlap: skip)"), "{lines:#?}");
        // The next run starts counting afresh, and a run with no skips says nothing.
        assert!(plan.skip());
        assert_eq!(plan.ended(), 1);
        let ((), lines) = crate::log_capture::Log::default().of(|| log_skipped("f", plan.ended(), Overlap::Skip));
        assert!(lines.is_empty(), "{lines:#?}");
    }

    /// A `wharf trigger` refused because the run goes on is answered to its caller, and is
    /// not one of the schedule's skipped runs (before: counted in `wharf status` and
    /// `wharf_runs_skipped_total`, and logged as "skipped (overlap: skip)").
    #[test]
    fn a_trigger_refused_while_the_flow_runs_is_not_a_skipped_run() {
        let mut plan = Plan { running: true, ..Plan::default() };
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Trigger, false), Overlapping::Refused);
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Trigger, false), Overlapping::Refused);
        assert_eq!(plan.skipped, 0);
        // The schedule's times are: the first one is the one logged.
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Due, false), Overlapping::Skipped { first: true });
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Trigger, false), Overlapping::Refused);
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Due, false), Overlapping::Skipped { first: false });
        assert_eq!(plan.skipped, 2);
        // `overlap: queue` queues one, whoever asks.
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Trigger, false), Overlapping::Queued);
        assert!(plan.queued);
    }

    /// `overlap: skip` with `source.max_files`: a due time while the run goes on is not
    /// counted (nor logged) as a skipped run when it passes: the run may be followed at once
    /// by the next, which takes its place (before: a backlog drained run after run showed
    /// every time that passed as a skipped run in `wharf status` and the metrics).
    #[test]
    fn a_due_time_during_a_capped_run_is_not_counted_skipped_when_it_passes() {
        let mut plan = Plan { running: true, ..Plan::default() };
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Due, true), Overlapping::Deferred);
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Due, true), Overlapping::Deferred);
        assert_eq!((plan.skipped, plan.deferred), (0, 2));
        assert_eq!(plan.ended(), 0, "nothing to log as skipped when the run ends");
        // A trigger is refused as before; `overlap: queue` queues as before.
        let mut plan = Plan { running: true, ..Plan::default() };
        assert_eq!(plan.overlapping(Overlap::Skip, Asked::Trigger, true), Overlapping::Refused);
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Due, true), Overlapping::Queued);
        assert_eq!(plan.deferred, 0);
    }

    /// A run cut off at shutdown sent no `Done`: the runs skipped while it went were never
    /// logged. Now said as at the end of a run; runs not going say nothing.
    #[test]
    fn the_skips_of_a_run_cut_off_at_shutdown_are_logged() {
        let mut plans = BTreeMap::new();
        let mut cut = Plan { running: true, ..Plan::default() };
        for _ in 0..5 {
            cut.skip();
        }
        plans.insert("cut".to_string(), cut);
        plans.insert("idle".to_string(), Plan { skipped: 0, ..Plan::default() });
        plans.insert("quiet".to_string(), Plan { running: true, ..Plan::default() });
        let ((), lines) = crate::log_capture::Log::default().of(|| cut_off(&mut plans));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("flow=cut") && lines[0].contains("5 run(s) were skipped while it went (overlap: skip)"), "{lines:#?}");
        assert_eq!(plans["cut"].skipped, 0);
    }

    /// A run still going when the grace is over is cut off with its flow named (before: "cutting
    /// off a run", which did not say whose files were left in flight); one that ends within
    /// the grace says nothing.
    #[test]
    fn a_run_cut_off_at_shutdown_is_named() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let ((), lines) = crate::log_capture::Log::default().of(|| {
            rt.block_on(async {
                let quick = tokio::spawn(async {});
                let hung = tokio::spawn(std::future::pending::<()>());
                let runs = vec![("quick".to_string(), quick), ("hung".to_string(), hung)];
                let grace = Duration::from_millis(50);
                cut_off_after(runs, Instant::now() + grace, grace).await;
            })
        });
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("flow=hung") && lines[0].contains("cutting off the flow's run"), "{lines:#?}");
    }

    /// `overlap: queue` with one run waiting: a further due time is skipped and counted as
    /// `overlap: skip` counts (before: answered "queued" and counted nowhere, so `wharf
    /// status` and `/metrics` never showed it, and the doc said it was skipped); a trigger is
    /// answered "queued" and not counted.
    #[test]
    fn due_times_while_a_run_is_queued_are_skipped_runs() {
        let mut plan = Plan { running: true, ..Plan::default() };
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Due, false), Overlapping::Queued);
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Trigger, false), Overlapping::AlreadyQueued);
        assert_eq!(plan.skipped, 0, "a trigger is not a skipped run");
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Due, false), Overlapping::Skipped { first: true });
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Due, false), Overlapping::Skipped { first: false });
        assert_eq!(plan.overlapping(Overlap::Queue, Asked::Trigger, false), Overlapping::AlreadyQueued);
        assert_eq!((plan.skipped, plan.queued), (2, true));
        // Said when the run ends, with the policy that skipped them.
        let (skipped, lines) = crate::log_capture::Log::default().of(|| {
            let skipped = plan.ended();
            log_skipped("f", skipped, Overlap::Queue);
            skipped
        });
        assert_eq!(skipped, 2);
        assert!(lines[0].contains("2 run(s) were skipped while it went (overlap: queue)"), "{lines:#?}");
    }
}
