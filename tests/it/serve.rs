//! `wharf serve` in-process: the scheduler with an injected clock (no sleeping), real local
//! folders, a real OpenSSH sshd that goes down and comes back, and notifications delivered to
//! a real local HTTP receiver.
//!
//! Every wait here is for something the daemon does (a run finishing, a request arriving),
//! never a fixed delay; the clock only moves when a test moves it.

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::broadcast;
use wharf::control::{TriggerError, Triggered};
use wharf::ledger::{EventKind, Ledger, NewEvent, RunStatus};
use wharf::schedule::ManualClock;
use wharf::serve::{self, Handle, ServeConfig, ServeOptions};

use support::http_receiver::HttpReceiver;
use support::sshd::Sshd;

/// A daemon over a temp folder: `flows/`, `state/`, `src/`, `dst/`.
struct Daemon {
    dir: support::TempDir,
    clock: Arc<ManualClock>,
    handle: Option<Handle>,
    finished: broadcast::Receiver<serve::Finished>,
}

fn root(dir: &Path) -> PathBuf {
    dir.to_path_buf()
}

impl Daemon {
    /// Writes the flow files and starts the daemon with the clock at `start`.
    fn start(flows: &[(&str, String)], start: DateTime<Utc>, config: ServeConfig) -> Daemon {
        let dir = support::tempdir();
        for d in ["flows", "state", "src/in", "dst"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        for (name, text) in flows {
            std::fs::write(dir.path().join("flows").join(name), text.replace("ROOT", &root(dir.path()).display().to_string())).unwrap();
        }
        let clock = Arc::new(ManualClock::new(start));
        let opts = ServeOptions { flows_dir: dir.path().join("flows"), state_dir: dir.path().join("state"), config };
        let handle = serve::start(opts, clock.clone()).expect("start the daemon");
        let finished = handle.subscribe();
        Daemon { dir, clock, handle: Some(handle), finished }
    }

    /// Stops the daemon gracefully, runs `while_down` (the ledger is free: a `wharf run` could
    /// write to it), then starts a new daemon on the same folders with the clock at `at`.
    async fn restart(&mut self, at: DateTime<Utc>, config: ServeConfig, while_down: impl FnOnce(&Path)) {
        self.handle.take().unwrap().shutdown().await;
        while_down(self.dir.path());
        self.clock = Arc::new(ManualClock::new(at));
        let opts = ServeOptions { flows_dir: self.path("flows"), state_dir: self.path("state"), config };
        let handle = serve::start(opts, self.clock.clone()).expect("restart the daemon");
        self.finished = handle.subscribe();
        self.handle = Some(handle);
    }

    fn handle(&self) -> &Handle {
        self.handle.as_ref().unwrap()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Waits until the loop sleeps, then moves the clock.
    async fn advance(&self, by: Duration) {
        self.clock.until_sleepers(1).await;
        self.clock.advance(by);
    }

    /// The next finished run (fails the test after 60 s of real time).
    async fn next_run(&mut self) -> Arc<wharf::engine::RunReport> {
        let f = tokio::time::timeout(Duration::from_secs(60), self.finished.recv()).await.expect("a run finishes").unwrap();
        f.report.expect("the run was recorded")
    }

    async fn stop(mut self) {
        self.handle.take().unwrap().shutdown().await;
    }
}

/// A local → local flow, `src/in/*.csv` → `dst/`, with `extra` appended (schedule, notify…).
fn local_flow(name: &str, extra: &str) -> String {
    format!(
        "name: {name}\nendpoints:\n  a: {{ type: local, root: ROOT/src }}\n  b: {{ type: local, root: ROOT/dst }}\nsource: {{ endpoint: a, path: /in, include: ['*.csv'] }}\nsinks: [ {{ endpoint: b, path: / }} ]\nafter: {{ success: delete }}\n{extra}"
    )
}

/// Now, on a whole minute (schedules are anchored to the epoch).
fn minute_now() -> DateTime<Utc> {
    let t = Utc::now().timestamp();
    DateTime::from_timestamp(t - t % 60, 0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_runs_when_due_and_not_before() {
    let mut d = Daemon::start(&[("pull.yaml", local_flow("pull", "schedule: { every: 10m }\n"))], minute_now(), ServeConfig::default());
    std::fs::write(d.path("src/in/a.csv"), "x\n").unwrap();
    let st = d.handle().status();
    assert_eq!(st.flows.len(), 1);
    assert!(st.flows[0].next_due.is_some() && st.flows[0].last_run.is_none(), "{st:?}");

    d.advance(Duration::from_secs(600)).await;
    let r = d.next_run().await;
    assert_eq!((r.status, r.counts.delivered), (RunStatus::Ok, 1));
    assert!(d.path("dst/a.csv").exists());
    assert!(!d.path("src/in/a.csv").exists(), "after.success: delete");
    let st = d.handle().status();
    assert!(st.flows[0].last_run.is_some() && !st.flows[0].running, "{st:?}");
    d.stop().await;
}

/// A source command that blocks until `ROOT/go` exists: a run that lasts as long as the test
/// wants, without sleeping in the test.
fn blocking_flow(name: &str, overlap: &str) -> String {
    format!(
        "name: {name}\nendpoints:\n  a: {{ type: local, root: ROOT/src }}\n  b: {{ type: local, root: ROOT/dst }}\nsource:\n  endpoint: a\n  path: /{name}\n  include: ['*.csv']\n  command:\n    run: [sh, -c, 'while [ ! -e ROOT/go ]; do sleep 0.02; done; echo x']\n    name: 'out-{{{{run}}}}.csv'\nsinks: [ {{ endpoint: b, path: / }} ]\nafter: {{ success: delete }}\nschedule: {{ every: 1h, overlap: {overlap} }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_skip_refuses_a_second_run_and_queue_runs_it_after() {
    let mut d = Daemon::start(
        &[("skip.yaml", blocking_flow("skip", "skip")), ("queue.yaml", blocking_flow("queue", "queue"))],
        minute_now(),
        ServeConfig::default(),
    );
    let h = d.handle();
    assert_eq!(h.trigger("skip").await, Ok(Triggered::Started));
    assert_eq!(h.trigger("skip").await, Err(TriggerError::AlreadyRunning("skip".into())));
    // Answered to the caller, not counted as a scheduled run skipped.
    let f = h.status().flows.into_iter().find(|f| f.name == "skip").unwrap();
    assert_eq!((f.skipped, f.skipped_total), (0, 0), "{f:?}");
    assert!(h.metrics().render().contains("wharf_runs_skipped_total{flow=\"skip\"} 0\n"), "{}", h.metrics().render());
    assert_eq!(h.trigger("queue").await, Ok(Triggered::Started));
    assert_eq!(h.trigger("queue").await, Ok(Triggered::Queued));
    assert_eq!(h.trigger("queue").await, Ok(Triggered::Queued), "at most one is queued");
    assert_eq!(h.trigger("nope").await, Err(TriggerError::UnknownFlow("nope".into())));
    std::fs::write(d.path("go"), "").unwrap();
    let mut flows = Vec::new();
    for _ in 0..3 {
        let r = d.next_run().await;
        assert_eq!(r.status, RunStatus::Ok, "{r:?}");
        flows.push(r.flow.clone());
    }
    flows.sort();
    assert_eq!(flows, ["queue", "queue", "skip"]);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_previous_version_running() {
    let d = Daemon::start(&[("pull.yaml", local_flow("pull", "schedule: { every: 10m }\n"))], minute_now(), ServeConfig::default());
    std::fs::write(d.path("flows/pull.yaml"), "name: pull\nendpoints: [broken\n").unwrap();
    d.handle().reload();
    // The reload is handled by the loop; status reflects it once the loop is idle again.
    let mut problem = None;
    for _ in 0..200 {
        problem = d.handle().status().flows[0].problem.clone();
        if problem.is_some() {
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let problem = problem.expect("the broken file is reported");
    assert!(problem.contains("problem(s)"), "{problem}");
    assert_eq!(d.handle().trigger("pull").await, Ok(Triggered::Started), "the previous version still runs");
    d.stop().await;
}

fn webhook(receiver: &HttpReceiver, on: &str) -> String {
    format!("notify:\n  - on: [{on}]\n    throttle: 0s\n    webhook: {{ url: \"{}\" }}\n", receiver.url("/hook"))
}

fn kinds(receiver: &HttpReceiver) -> Vec<String> {
    receiver.requests().iter().map(|r| r.json()["kind"].as_str().unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_alerts_once_and_its_recovery_once() {
    let Some(sshd) = Sshd::start() else { return };
    let receiver = HttpReceiver::start(&[]).await;
    std::fs::create_dir_all(sshd.data_dir().join("in")).unwrap();
    let flow = format!(
        "name: partner\nendpoints:\n  p:\n{}  b: {{ type: local, root: ROOT/dst }}\nsource: {{ endpoint: p, path: /in, include: ['*.csv'] }}\nsinks: [ {{ endpoint: b, path: / }} ]\nschedule: {{ every: 1m }}\nretry: {{ attempts: 1 }}\nalerts: {{ unreachable_after: 3 }}\n{}",
        sshd.endpoint_yaml(4),
        webhook(&receiver, "unreachable, recovered, failed")
    );
    let mut d = Daemon::start(&[("partner.yaml", flow)], minute_now(), ServeConfig::default());
    sshd.stop();
    let mut runs = Vec::new();
    for _ in 0..5 {
        d.advance(Duration::from_secs(60)).await;
        let r = d.next_run().await;
        assert_eq!(r.status, RunStatus::Aborted, "{r:?}");
        runs.push(r.run);
    }
    d.handle().notified().await;
    let logged = d.handle().ledger().events(None, 0, 100).unwrap();
    assert_eq!(kinds(&receiver), ["unreachable"], "one alert for five failed runs; logged: {logged:?}");
    let body = receiver.requests()[0].json();
    assert_eq!(body["flow"], "partner");
    assert!(body["detail"].as_str().unwrap().contains("3 runs in a row"), "{body}");
    assert_eq!(body["run"].as_u64(), Some(runs[2]), "the third run raised it: {body}");

    sshd.restart();
    for _ in 0..2 {
        d.advance(Duration::from_secs(60)).await;
        let r = d.next_run().await;
        assert_eq!(r.status, RunStatus::Ok, "{r:?}");
    }
    d.handle().notified().await;
    assert_eq!(kinds(&receiver), ["unreachable", "recovered"], "one recovery, announced once");
    let events: Vec<EventKind> = d.handle().ledger().events(Some("partner"), 0, 100).unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(events, [EventKind::Unreachable, EventKind::Recovered]);
    d.stop().await;
}

/// A flow without a schedule, triggered while its server is down, is retried with backoff
/// until a run gets through, and then not run again until asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_flow_is_retried_until_its_server_is_back() {
    let Some(sshd) = Sshd::start() else { return };
    std::fs::create_dir_all(sshd.data_dir().join("in")).unwrap();
    std::fs::write(sshd.data_dir().join("in/a.csv"), "x\n").unwrap();
    let flow = format!(
        "name: partner\nendpoints:\n  p:\n{}  b: {{ type: local, root: ROOT/dst }}\nsource: {{ endpoint: p, path: /in, include: ['*.csv'] }}\nsinks: [ {{ endpoint: b, path: / }} ]\nretry: {{ attempts: 1 }}\n",
        sshd.endpoint_yaml(4),
    );
    // A fixed start: the retry was compared with `minute_now()` read again after the run,
    // a minute later when the real clock had passed a minute meanwhile (then `due >` failed).
    let start = DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap().with_timezone(&Utc);
    let mut d = Daemon::start(&[("partner.yaml", flow)], start, ServeConfig::default());
    sshd.stop();
    assert_eq!(d.handle().trigger("partner").await, Ok(Triggered::Started));
    assert_eq!(d.next_run().await.status, RunStatus::Aborted);
    let due = d.handle().status().flows[0].next_due.expect("a retry is planned");
    assert!(due > start && due <= start + chrono::Duration::seconds(40), "first retry after about 30 s: {due}");
    sshd.restart();
    d.advance(Duration::from_secs(40)).await;
    let r = d.next_run().await;
    assert_eq!(r.status, RunStatus::Ok, "{r:?}");
    assert!(d.path("dst/a.csv").exists());
    assert_eq!(d.handle().status().flows[0].next_due, None, "only by trigger again");
    d.stop().await;
}

/// Failures the throttle held back are not lost: when its window ends, the latest goes out
/// with the count of the others, without waiting for another failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_held_back_by_the_throttle_are_sent_when_the_window_ends() {
    held_back_failures_are_sent_when_the_window_ends(false).await;
}

/// … also when the flows were reloaded in the window (another flow file was added).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_held_back_by_the_throttle_survive_a_reload() {
    held_back_failures_are_sent_when_the_window_ends(true).await;
}

async fn held_back_failures_are_sent_when_the_window_ends(reload: bool) {
    let receiver = HttpReceiver::start(&[]).await;
    // Scheduled hourly, so the daemon's loop sleeps on the clock; 05:00 to 05:05 has no run.
    let extra = format!(
        "schedule: {{ every: 1h }}\nretry: {{ attempts: 1 }}\nnotify:\n  - on: [failed]\n    throttle: 5m\n    webhook: {{ url: \"{}\" }}\n",
        receiver.url("/hook")
    );
    let start = DateTime::parse_from_rfc3339("2026-11-23T05:00:00Z").unwrap().with_timezone(&Utc);
    let mut d = Daemon::start(&[("f.yaml", local_flow("f", &extra))], start, ServeConfig::default());
    std::fs::write(d.path("src/in/a.csv"), "x").unwrap();
    // The sink's folder is a file: every run fails.
    std::fs::remove_dir(d.path("dst")).unwrap();
    std::fs::write(d.path("dst"), "not a folder").unwrap();
    let mut runs = Vec::new();
    for _ in 0..3 {
        assert_eq!(d.handle().trigger("f").await, Ok(Triggered::Started));
        let r = d.next_run().await;
        assert_ne!(r.status, RunStatus::Ok, "{r:?}");
        runs.push(r.run);
    }
    d.handle().notified().await;
    assert_eq!(kinds(&receiver), ["failed"], "two held back");
    // Each notice names its run (was `"run": null`, with "run 1" only in the detail).
    let body = receiver.requests()[0].json();
    assert_eq!(body["run"].as_u64(), Some(runs[0]), "{body}");
    if reload {
        std::fs::write(d.path("flows/other.yaml"), local_flow("other", "").replace("ROOT", &d.path("").display().to_string())).unwrap();
        d.handle().reload();
        for _ in 0..500 {
            if d.handle().status().flows.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(d.handle().status().flows.len(), 2, "the new flow is loaded");
        d.handle().notified().await;
    }
    d.advance(Duration::from_secs(4 * 60)).await;
    d.handle().notified().await;
    assert_eq!(kinds(&receiver), ["failed"], "the window has not ended");
    d.advance(Duration::from_secs(60)).await;
    for _ in 0..500 {
        if receiver.requests().len() > 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kinds(&receiver), ["failed", "failed"]);
    let body = receiver.requests()[1].json();
    assert_eq!(body["held_back"], 1, "{body}");
    assert_eq!(body["run"].as_u64(), Some(runs[2]), "the latest of those held back: {body}");
    assert!(body["text"].as_str().unwrap().ends_with("(1 similar notice held back)"), "{body}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_announced_at_its_deadline() {
    let receiver = HttpReceiver::start(&[]).await;
    // 05:00 UTC on a Monday; the file is expected by 06:00 on weekdays.
    let start = DateTime::parse_from_rfc3339("2026-11-23T05:00:00Z").unwrap().with_timezone(&Utc);
    let extra = format!("expect:\n  - {{ by: \"06:00\", days: mon-fri }}\n{}", webhook(&receiver, "missing"));
    let d = Daemon::start(&[("daily.yaml", local_flow("daily", &extra))], start, ServeConfig::default());
    d.advance(Duration::from_secs(30 * 60)).await;
    d.handle().notified().await;
    assert!(kinds(&receiver).is_empty(), "05:30: not due yet");
    d.advance(Duration::from_secs(31 * 60)).await;
    // The loop checks the deadline when it wakes; wait for its event to be sent.
    for _ in 0..500 {
        d.handle().notified().await;
        if !kinds(&receiver).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(kinds(&receiver), ["missing"]);
    let body = receiver.requests()[0].json();
    assert!(body["detail"].as_str().unwrap().contains("06:00"), "{body}");
    assert!(body["run"].is_null(), "judged by the daemon's clock, not by a run: {body}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_keeps_failing_is_given_up_into_the_quarantine() {
    let Some(sshd) = Sshd::start() else { return };
    let receiver = HttpReceiver::start(&[]).await;
    std::fs::create_dir_all(sshd.data_dir().join("inbox")).unwrap();
    sshd.give_to_user(&sshd.data_dir().join("inbox"));
    // The export blocks until the test says go, so the server can be stopped after the run
    // connected and before the upload: the upload then fails with a passing error.
    let flow = format!(
        "name: push\nendpoints:\n  a: {{ type: local, root: ROOT/src }}\n  q: {{ type: local, root: ROOT/quarantine }}\n  p:\n{}source:\n  endpoint: a\n  path: /out\n  include: ['*.csv']\n  command:\n    run: [sh, -c, 'while [ ! -e ROOT/go ]; do sleep 0.02; done; echo x']\n    name: out.csv\nsinks: [ {{ endpoint: p, path: /inbox }} ]\nquarantine: {{ endpoint: q, path: / }}\nretry: {{ attempts: 1, give_up_after: 1 }}\n{}",
        sshd.endpoint_yaml(4),
        webhook(&receiver, "quarantined")
    );
    let mut d = Daemon::start(&[("push.yaml", flow)], minute_now(), ServeConfig::default());
    std::fs::create_dir_all(d.path("quarantine")).unwrap();
    assert_eq!(d.handle().trigger("push").await, Ok(Triggered::Started));
    // Wait until the run has connected (the export is running), then take the server away.
    for _ in 0..500 {
        if d.handle().status().flows[0].running && std::fs::read_dir(d.path("src/out")).is_ok_and(|mut r| r.next().is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sshd.stop();
    std::fs::write(d.path("go"), "").unwrap();
    let r = d.next_run().await;
    let f = &r.files[0];
    assert_eq!(f.outcome, wharf::engine::Outcome::Quarantined, "{r:?}");
    assert!(f.detail.contains("gave up after failing in 1 runs"), "{}", f.detail);
    assert!(d.path("quarantine/out.csv").exists(), "the staged file was put aside");
    d.handle().notified().await;
    assert_eq!(kinds(&receiver), ["quarantined"]);
    let body = receiver.requests()[0].json();
    assert_eq!(body["subject"], "/out/out.csv", "{body}");
    assert_eq!(body["facts"]["quarantine"]["copy"], "out.csv", "the notice says where the file went: {body}");
    assert_eq!(body["run"].as_u64(), Some(r.run), "{body}");
    d.stop().await;
}

/// Records a `failed` event for `flow` directly in the ledger of `dir`, as a `wharf run` while
/// the daemon is down would.
fn record_failed(dir: &Path, flow: &str, detail: &str) {
    record_failures(dir, flow, &[detail.to_string()]);
}

/// Records a `failed` event for `flow` per detail, in one transaction (see [`record_failed`]).
fn record_failures(dir: &Path, flow: &str, details: &[String]) {
    let ledger = Ledger::open(&dir.join("state/ledger.redb")).expect("the ledger is free while the daemon is down");
    let events: Vec<NewEvent> = details
        .iter()
        .map(|detail| NewEvent {
            flow: flow.into(),
            at: Utc::now().timestamp_millis(),
            kind: EventKind::Failed,
            subject: String::new(),
            detail: detail.clone(),
            run: None,
        })
        .collect();
    ledger.record_events(&events).unwrap();
}

/// Reloads the flows, then waits (at most 10 s of real time) until `n` flows are served.
async fn reload_until_served(d: &Daemon, n: usize) {
    d.handle().reload();
    for _ in 0..1000 {
        if d.handle().served() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (at most 10 s of real time) until a run of `flow` is recorded in the ledger: it has
/// really started (a run asked for during shutdown would not be).
async fn until_run_recorded(d: &Daemon, flow: &str) {
    for _ in 0..1000 {
        if !d.handle().ledger().runs(Some(flow), 1).unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no run of {flow} was recorded");
}

/// Waits (at most 10 s of real time) until the receiver has `n` requests.
async fn requests(d: &Daemon, receiver: &HttpReceiver, n: usize) -> Vec<String> {
    for _ in 0..1000 {
        d.handle().notified().await;
        if receiver.requests().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    kinds(receiver)
}

/// An event recorded while the daemon was down goes to the flow's own rules when it starts
/// (its rules are known before the backlog is read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_while_down_reach_the_flows_own_rules() {
    let receiver = HttpReceiver::start(&[]).await;
    let mut d = Daemon::start(&[("f.yaml", local_flow("f", &webhook(&receiver, "failed")))], minute_now(), ServeConfig::default());
    // The first daemon stores the cursor.
    d.handle().notified().await;
    d.restart(minute_now(), ServeConfig::default(), |dir| record_failed(dir, "f", "failed while down")).await;
    assert_eq!(requests(&d, &receiver, 1).await, ["failed"]);
    assert_eq!(receiver.requests()[0].json()["detail"], "failed while down");
    d.stop().await;
}

/// A backlog over twice as long as a channel's lane holds (600 events recorded while the
/// daemon was down) to a webhook that answers slowly but fine: every notice is delivered, in
/// order, none failed — the log is read at the channel's pace (before: each notice past the
/// lane's 256 failed at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_to_a_slow_webhook_is_delivered_whole() {
    let receiver = HttpReceiver::start(&[]).await;
    receiver.set_pace(Duration::from_millis(2));
    let mut d = Daemon::start(&[("f.yaml", local_flow("f", &webhook(&receiver, "failed")))], minute_now(), ServeConfig::default());
    // The first daemon stores the cursor; the failures are recorded while it is down.
    d.handle().notified().await;
    let details: Vec<String> = (0..600).map(|i| format!("failure {i}")).collect();
    d.restart(minute_now(), ServeConfig::default(), |dir| record_failures(dir, "f", &details)).await;
    d.handle().notified().await;
    let got: Vec<String> = receiver.requests().iter().map(|r| r.json()["detail"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(got.len(), 600, "delivered");
    assert!(got == details, "in order");
    let ledger = d.handle().ledger();
    assert_eq!(ledger.notify_cursor().unwrap(), Some(ledger.last_event_seq().unwrap()), "every event handled");
    d.stop().await;
}

/// A long backlog to a slow but healthy webhook: the stored cursor follows the notices as they
/// are sent (before: it stayed at the first event of the backlog until the whole of it was
/// sent, so a crash or stop re-sent everything), and a stop mid-backlog is answered at once —
/// it waits only for the sends under way, well within its grace (before: it ran out its grace
/// every time) — leaving the cursor at the event of the last notice sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_backlog_is_prompt_and_keeps_the_cursor_at_what_was_sent() {
    let receiver = HttpReceiver::start(&[]).await;
    receiver.set_pace(Duration::from_millis(10));
    let config = ServeConfig { shutdown_grace: Duration::from_secs(20), ..ServeConfig::default() };
    let mut d = Daemon::start(&[("f.yaml", local_flow("f", &webhook(&receiver, "failed")))], minute_now(), config.clone());
    // The first daemon stores the cursor; the failures are recorded while it is down.
    d.handle().notified().await;
    let start = d.handle().ledger().last_event_seq().unwrap();
    let details: Vec<String> = (0..3000).map(|i| format!("failure {i}")).collect();
    d.restart(minute_now(), config, |dir| record_failures(dir, "f", &details)).await;
    let ledger = d.handle().ledger();
    let waiting = std::time::Instant::now();
    while receiver.requests().len() < 400 && waiting.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (sent, cursor) = (receiver.requests().len(), ledger.notify_cursor().unwrap().unwrap_or(0));
    // At most 128 events are open at once: the cursor is that close behind what was sent.
    assert!(cursor >= start + 200, "cursor {cursor} stuck near the start ({start}) with {sent} notices sent");

    let stopping = std::time::Instant::now();
    d.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(10), "stopped after {:?} (grace 20 s)", stopping.elapsed());
    let got: Vec<String> = receiver.requests().iter().map(|r| r.json()["detail"].as_str().unwrap_or_default().to_string()).collect();
    assert!(got.len() < details.len(), "stopped mid-backlog");
    assert!(got[..] == details[..got.len()], "in order");
    let events = ledger.events(None, start, details.len() + 10).unwrap();
    let last_sent = events.iter().find(|e| Some(&e.detail) == got.last()).map(|e| e.seq);
    assert_eq!(ledger.notify_cursor().unwrap(), last_sent, "the cursor is at the event of the last notice sent ({} sent)", got.len());
}

/// One slow channel delays its own notices only: while a webhook that never answers is
/// waited for (10 s an attempt, three attempts), another rule's channel gets the notices of
/// the later events too, in order, at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_channel_does_not_delay_the_notices_of_another() {
    // Accepts connections (the kernel does) and never answers.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = HttpReceiver::start(&[]).await;
    let extra = format!(
        "notify:\n  - on: [failed]\n    throttle: 0s\n    webhook: {{ url: \"http://{}/hook\" }}\n{}",
        dead.local_addr().unwrap(),
        webhook(&receiver, "failed").trim_start_matches("notify:\n")
    );
    let config = ServeConfig { shutdown_grace: Duration::from_secs(1), ..ServeConfig::default() };
    let mut d = Daemon::start(&[("f.yaml", local_flow("f", &extra))], minute_now(), config.clone());
    // The first daemon stores the cursor; the failures are recorded while it is down.
    d.handle().notified().await;
    d.restart(minute_now(), config, |dir| {
        for detail in ["first", "second", "third"] {
            record_failed(dir, "f", detail);
        }
    })
    .await;
    let waiting = std::time::Instant::now();
    while receiver.requests().len() < 3 && waiting.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let details: Vec<String> = receiver.requests().iter().map(|r| r.json()["detail"].as_str().unwrap_or_default().to_string()).collect();
    assert_eq!(details, ["first", "second", "third"], "after {:?}", waiting.elapsed());
    let ledger = d.handle().ledger();
    let last = ledger.last_event_seq().unwrap();
    d.stop().await;
    assert!(ledger.notify_cursor().unwrap().unwrap_or(0) < last, "the events the dead webhook did not get are sent at the next start");
    drop(dead);
}

/// A webhook that never answers does not hold the shutdown past `shutdown_grace`; the event
/// it could not get is still unsent in the ledger, for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_webhook_does_not_hold_the_shutdown_past_its_grace() {
    // Accepts connections (the kernel does) and never answers.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", dead.local_addr().unwrap());
    let extra = format!("retry: {{ attempts: 1 }}\nnotify:\n  - on: [failed]\n    webhook: {{ url: \"{url}\" }}\n");
    let config = ServeConfig { shutdown_grace: Duration::from_secs(1), ..ServeConfig::default() };
    let mut d = Daemon::start(&[("f.yaml", local_flow("f", &extra))], minute_now(), config);
    std::fs::write(d.path("src/in/a.csv"), "x").unwrap();
    // The sink's folder is a file: the run fails.
    std::fs::remove_dir(d.path("dst")).unwrap();
    std::fs::write(d.path("dst"), "not a folder").unwrap();
    assert_eq!(d.handle().trigger("f").await, Ok(Triggered::Started));
    assert_ne!(d.next_run().await.status, RunStatus::Ok);
    let ledger = d.handle().ledger();
    let stopping = std::time::Instant::now();
    d.stop().await;
    // Without a bound: 3 attempts of 10 s each.
    assert!(stopping.elapsed() < Duration::from_secs(5), "stopped after {:?}", stopping.elapsed());
    let last = ledger.last_event_seq().unwrap();
    assert!(last > 0, "the failure was recorded");
    assert!(ledger.notify_cursor().unwrap().unwrap_or(0) < last, "the event not sent is left for the next start");
    drop(dead);
}

/// `overlap: skip`: a time that falls due while the flow runs is skipped at that time, not run
/// late when the run ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_due_during_a_run_is_skipped_at_that_time() {
    // No periodic rescan to wake the loop by chance.
    let config = ServeConfig { rescan: Duration::from_secs(3600), ..ServeConfig::default() };
    let start = minute_now();
    let mut d = Daemon::start(&[("skip.yaml", blocking_flow("skip", "skip"))], start, config);
    let due = d.handle().status().flows[0].next_due.expect("hourly");
    assert_eq!(d.handle().trigger("skip").await, Ok(Triggered::Started));
    // The loop sleeps until the due time although the flow is running.
    let wait = tokio::time::timeout(Duration::from_secs(10), d.advance((due - start).to_std().unwrap())).await;
    assert!(wait.is_ok(), "the loop waits for the due time of a running flow");
    let mut next = None;
    for _ in 0..500 {
        let f = &d.handle().status().flows[0];
        if f.next_due != Some(due) {
            next = f.next_due;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let next = next.expect("the due time is handled while the run goes on");
    assert_eq!(next, due + chrono::Duration::hours(1), "skipped: the next time is the following hour");
    let f = &d.handle().status().flows[0];
    assert!(f.running);
    // The skip is counted where `wharf status` and `/metrics` show it (before: only logged).
    assert_eq!((f.skipped, f.skipped_total), (1, 1), "{f:?}");
    assert!(d.handle().metrics().render().contains("wharf_runs_skipped_total{flow=\"skip\"} 1\n"));
    std::fs::write(d.path("go"), "").unwrap();
    assert_eq!(d.next_run().await.status, RunStatus::Ok);
    // Once the loop sleeps again, no run was started for the skipped time.
    d.clock.until_sleepers(1).await;
    let f = &d.handle().status().flows[0];
    assert!(!f.running && f.next_due == Some(next), "{f:?}");
    assert_eq!((f.skipped, f.skipped_total), (0, 1), "the run ended: none skipped while one goes, one in all");
    assert_eq!(f.last_skipped, Some(due));
    assert_eq!(d.handle().ledger().runs(Some("skip"), 10).unwrap().len(), 1);
    // Counted in the ledger: a restart keeps it for `wharf status` (it was lost); the metric
    // counts from the daemon's start, as a Prometheus counter may.
    d.restart(next, ServeConfig::default(), |_| {}).await;
    let f = &d.handle().status().flows[0];
    assert_eq!((f.skipped, f.skipped_total, f.last_skipped), (0, 1, Some(due)), "{f:?}");
    assert!(!d.handle().metrics().render().contains("wharf_runs_skipped_total{flow=\"skip\"} 1"));
    d.stop().await;
}

/// `overlap: queue` with a run queued already: a due time is skipped and counted as `overlap:
/// skip` counts (it was answered "queued" and counted nowhere), a trigger is answered
/// "queued" and not counted, and the queued run still runs after the current one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_due_while_a_run_is_queued_is_a_skipped_run() {
    let config = ServeConfig { rescan: Duration::from_secs(3600), ..ServeConfig::default() };
    let start = minute_now();
    let mut d = Daemon::start(&[("q.yaml", blocking_flow("q", "queue"))], start, config);
    let due = d.handle().status().flows[0].next_due.expect("hourly");
    assert_eq!(d.handle().trigger("q").await, Ok(Triggered::Started));
    assert_eq!(d.handle().trigger("q").await, Ok(Triggered::Queued));
    let wait = tokio::time::timeout(Duration::from_secs(10), d.advance((due - start).to_std().unwrap())).await;
    assert!(wait.is_ok(), "the loop waits for the due time of a running flow");
    let mut seen = None;
    for _ in 0..500 {
        let f = d.handle().status().flows.remove(0);
        if f.next_due != Some(due) {
            seen = Some(f);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let f = seen.expect("the due time is handled while the run goes on");
    assert!(f.running && f.queued, "{f:?}");
    assert_eq!((f.skipped, f.skipped_total, f.last_skipped), (1, 1, Some(due)), "{f:?}");
    assert!(d.handle().metrics().render().contains("wharf_runs_skipped_total{flow=\"q\"} 1\n"));
    assert_eq!(d.handle().trigger("q").await, Ok(Triggered::Queued));
    assert_eq!(d.handle().status().flows[0].skipped_total, 1, "a trigger is not a skipped run");
    // The queued run runs once the current one ends (both pass: the file stays).
    std::fs::write(d.path("go"), "").unwrap();
    assert_eq!(d.next_run().await.status, RunStatus::Ok);
    assert_eq!(d.next_run().await.status, RunStatus::Ok);
    d.stop().await;
}

/// A run whose flow file was removed while it ran is recorded as aborted when the daemon stops
/// (no later run of the flow would close it), and is listed by status while it goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_of_a_removed_flow_is_closed_at_shutdown() {
    let config = ServeConfig { shutdown_grace: Duration::from_millis(200), ..ServeConfig::default() };
    let mut d = Daemon::start(&[("slow.yaml", blocking_flow("slow", "skip"))], minute_now(), config);
    assert_eq!(d.handle().trigger("slow").await, Ok(Triggered::Started));
    until_run_recorded(&d, "slow").await;
    std::fs::remove_file(d.path("flows/slow.yaml")).unwrap();
    d.handle().reload();
    let mut listed = None;
    for _ in 0..500 {
        let st = d.handle().status();
        if st.flows.iter().all(|f| f.file.is_none()) {
            listed = st.flows.into_iter().next();
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let listed = listed.expect("the removed file is forgotten");
    assert!(listed.name == "slow" && listed.running, "still listed while it runs: {listed:?}");
    let ledger = d.handle().ledger();
    d.handle.take().unwrap().shutdown().await;
    let runs = ledger.runs(Some("slow"), 10).unwrap();
    // Let the blocked source command end.
    std::fs::write(d.path("go"), "").unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Aborted, "{:?}", runs[0]);
    assert!(runs[0].error.as_deref().unwrap_or_default().contains("cut off"), "{:?}", runs[0]);
}

/// A deadline that passes while the daemon is down is checked at the next start, also when no
/// deadline was checked before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_missed_while_down_is_checked_at_the_next_start() {
    let receiver = HttpReceiver::start(&[]).await;
    // 05:00 UTC on a Monday; the file is expected by 06:00 on weekdays.
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    let extra = format!("expect:\n  - {{ by: \"06:00\", days: mon-fri }}\n{}", webhook(&receiver, "missing"));
    let mut d = Daemon::start(&[("daily.yaml", local_flow("daily", &extra))], at("2026-11-23T05:00:00Z"), ServeConfig::default());
    // The loop has looked at the deadlines (it sleeps until the next one).
    d.clock.until_sleepers(1).await;
    d.restart(at("2026-11-23T06:01:00Z"), ServeConfig::default(), |_| {}).await;
    assert_eq!(requests(&d, &receiver, 1).await, ["missing"]);
    d.stop().await;
}

/// After a restart, status shows each flow's last run from the ledger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_last_run_after_a_restart() {
    let mut d = Daemon::start(&[("pull.yaml", local_flow("pull", ""))], minute_now(), ServeConfig::default());
    assert_eq!(d.handle().trigger("pull").await, Ok(Triggered::Started));
    let r = d.next_run().await;
    d.restart(minute_now(), ServeConfig::default(), |_| {}).await;
    let st = d.handle().status();
    let last = st.flows[0].last_run.as_ref().expect("the last run, from the ledger");
    assert_eq!((last.run, last.status.as_str()), (r.run, "ok"));
    d.stop().await;
}

/// `wharf_last_run_timestamp_seconds` and `wharf_last_success_timestamp_seconds` are the
/// ledger's after a restart, before the flow runs again (before: absent until its next
/// success, so an alert on `time() - wharf_last_success_timestamp_seconds` went quiet at a
/// restart and stayed quiet for a flow that never succeeded again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_run_gauges_survive_a_restart() {
    let mut d = Daemon::start(&[("pull.yaml", local_flow("pull", ""))], minute_now(), ServeConfig::default());
    assert_eq!(d.handle().trigger("pull").await, Ok(Triggered::Started));
    d.next_run().await;
    let gauge = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(&format!("{name}{{flow=\"pull\"}} ")).map(|v| v.parse::<f64>().unwrap()))
    };
    d.restart(minute_now(), ServeConfig::default(), |_| {}).await;
    let after = d.handle().metrics().render();
    // The ledger's times (here the system clock's, not the test clock the daemon's own
    // runs are timed by).
    let ledger = d.handle().ledger();
    let finished = ledger.runs(Some("pull"), 1).unwrap()[0].finished.expect("the run ended") as f64 / 1000.0;
    let ok = ledger.health("pull").unwrap().last_ok.expect("a success") as f64 / 1000.0;
    assert_eq!(gauge(&after, "wharf_last_run_timestamp_seconds"), Some(finished), "{after}");
    assert_eq!(gauge(&after, "wharf_last_success_timestamp_seconds"), Some(ok), "{after}");
    d.stop().await;
}

/// A flow that never succeeded has `wharf_flow_since_timestamp_seconds`: when a daemon first
/// served it (the daemon's clock then), kept across a restart, so the documented stale-flow
/// alert `time() - (wharf_last_success_timestamp_seconds or
/// wharf_flow_since_timestamp_seconds)` covers a flow deployed broken. Was: such a flow had
/// no series the alert could age, and was never reported stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_that_never_succeeded_is_measured_from_when_it_was_first_served() {
    let start = minute_now();
    let mut d = Daemon::start(&[("pull.yaml", local_flow("pull", ""))], start, ServeConfig::default());
    assert_eq!(served_since(&d, "pull").await, Some(start.timestamp() as f64));
    let text = d.handle().metrics().render();
    assert!(!text.contains("wharf_last_success_timestamp_seconds{flow=\"pull\"}"), "it never ran: {text}");
    // Three hours later, after a restart: still measured from its first start.
    let later = start + chrono::TimeDelta::hours(3);
    d.restart(later, ServeConfig::default(), |_| {}).await;
    assert_eq!(served_since(&d, "pull").await, Some(start.timestamp() as f64));
    // A flow added now is measured from now: the alert does not fire for it.
    std::fs::write(d.path("flows/new.yaml"), local_flow("new", "").replace("ROOT", &d.dir.path().display().to_string())).unwrap();
    reload_until_served(&d, 2).await;
    assert_eq!(served_since(&d, "new").await, Some(later.timestamp() as f64));
    d.stop().await;
}

/// `wharf_flow_since_timestamp_seconds` of `flow`, once the daemon has planned it (at most
/// 10 s of real time).
async fn served_since(d: &Daemon, flow: &str) -> Option<f64> {
    let prefix = format!("wharf_flow_since_timestamp_seconds{{flow=\"{flow}\"}} ");
    for _ in 0..1000 {
        let text = d.handle().metrics().render();
        if let Some(v) = text.lines().find_map(|l| l.strip_prefix(&prefix)) {
            return v.parse().ok();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// A second file giving a served flow's name is listed by `status` under that name, with why
/// it is refused (the file it clashes with) and none of the flow's history. Was: listed under
/// its file name (`z`), with the ledger's records of a flow `z`, if any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_names_a_file_refused_for_a_taken_flow_name_by_that_name() {
    let flows = [("b.yaml", local_flow("trig", "")), ("z.yaml", local_flow("trig", "")), ("z-other.yaml", local_flow("z", ""))];
    let mut d = Daemon::start(&flows, minute_now(), ServeConfig::default());
    assert_eq!(d.handle().trigger("z").await, Ok(Triggered::Started));
    d.next_run().await;
    assert_eq!(d.handle().trigger("trig").await, Ok(Triggered::Started));
    d.next_run().await;
    let st = d.handle().status();
    let rows: Vec<_> =
        st.flows.iter().map(|f| (f.name.as_str(), f.file.as_ref().unwrap().file_name().unwrap().to_str().unwrap())).collect();
    assert_eq!(rows, [("trig", "b.yaml"), ("z", "z-other.yaml"), ("trig", "z.yaml")], "{st:#?}");
    let refused = &st.flows[2];
    let why = format!(
        "flow name `trig` is already used by {}; flow names must be unique (they key the ledger)",
        d.path("flows/b.yaml").display()
    );
    assert_eq!(refused.problem.as_deref(), Some(why.as_str()));
    assert!(refused.last_run.is_none() && refused.last_success.is_none() && refused.schedule.is_none(), "{refused:?}");
    assert!(st.flows[0].last_run.is_some() && st.flows[0].problem.is_none());
    d.stop().await;
}

/// A file that does not load giving a served flow's name is listed under that name with its
/// file and its problem, which says the name is the other file's, and none of that flow's
/// schedule, next run, runs or health. Was: shown with all of them, as if they were its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_a_file_that_does_not_load_under_a_served_flows_name_alone() {
    let flows = [("a.yaml", "name: trig\nsource: 3\n".to_string()), ("b.yaml", local_flow("trig", "schedule: { every: 5m }\n"))];
    let mut d = Daemon::start(&flows, minute_now(), ServeConfig::default());
    assert_eq!(d.handle().trigger("trig").await, Ok(Triggered::Started));
    d.next_run().await;
    let st = d.handle().status();
    let rows: Vec<_> =
        st.flows.iter().map(|f| (f.name.as_str(), f.file.as_ref().unwrap().file_name().unwrap().to_str().unwrap())).collect();
    assert_eq!(rows, [("trig", "a.yaml"), ("trig", "b.yaml")], "{st:#?}");
    let broken = &st.flows[0];
    let also = wharf::config::name_also_used("trig", &d.path("flows/b.yaml"));
    assert!(broken.problem.as_deref().is_some_and(|p| p.ends_with(&format!("; {also}"))), "{broken:?}");
    assert!(broken.last_run.is_none() && broken.last_success.is_none() && broken.schedule.is_none(), "{broken:?}");
    assert!(broken.next_due.is_none() && !broken.running, "{broken:?}");
    let served = &st.flows[1];
    assert!(served.last_run.is_some() && served.schedule.is_some() && served.next_due.is_some(), "{served:?}");
    d.stop().await;
}

/// A flow whose file is removed loses its series in `/metrics` at the reload (before: its
/// `wharf_last_success_timestamp_seconds` stayed and aged, so a stale-flow alert fired for a
/// flow no longer served until the daemon was restarted); the other flows keep theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_flow_leaves_the_metrics() {
    let flows = [("gone.yaml", local_flow("gone", "")), ("kept.yaml", local_flow("kept", ""))];
    let mut d = Daemon::start(&flows, minute_now(), ServeConfig::default());
    for flow in ["gone", "kept"] {
        assert_eq!(d.handle().trigger(flow).await, Ok(Triggered::Started));
        d.next_run().await;
    }
    assert!(d.handle().metrics().render().contains("wharf_last_success_timestamp_seconds{flow=\"gone\"}"));
    std::fs::remove_file(d.path("flows/gone.yaml")).unwrap();
    reload_until_served(&d, 1).await;
    let text = d.handle().metrics().render();
    assert!(!text.contains("flow=\"gone\""), "{text}");
    assert!(text.contains("wharf_last_success_timestamp_seconds{flow=\"kept\"}"), "{text}");
    d.stop().await;
}

/// A run that finishes within the shutdown grace still gets its summary notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_finishing_in_the_shutdown_grace_is_summarised() {
    let receiver = HttpReceiver::start(&[]).await;
    let flow = format!("{}{}", blocking_flow("slow", "skip"), webhook(&receiver, "summary"));
    let mut d = Daemon::start(&[("slow.yaml", flow)], minute_now(), ServeConfig::default());
    assert_eq!(d.handle().trigger("slow").await, Ok(Triggered::Started));
    until_run_recorded(&d, "slow").await;
    let shutdown = d.handle.take().unwrap().shutdown();
    tokio::pin!(shutdown);
    // Polled once: the stop is asked for, and it waits for the run.
    tokio::select! {
        biased;
        () = &mut shutdown => panic!("the run is still going"),
        () = std::future::ready(()) => {}
    }
    std::fs::write(d.path("go"), "").unwrap();
    shutdown.await;
    assert_eq!(kinds(&receiver), ["summary"]);
}

/// A flow with `expect:` loaded while the daemon runs is judged from when it is loaded, not
/// from when the daemon started. Was: every deadline since the daemon's start was checked at
/// once, and each one before the flow existed was reported `missing` (a burst of false
/// alerts for a flow added to a daemon that had run for days).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_added_while_serving_is_not_reported_missing_for_the_days_before() {
    let receiver = HttpReceiver::start(&[]).await;
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    // Started on a Monday at 05:00 UTC with another flow only.
    let d = Daemon::start(&[("other.yaml", local_flow("other", ""))], at("2026-11-23T05:00:00Z"), ServeConfig::default());
    // Thursday 05:00: a flow expecting a file by 06:00 on weekdays is added.
    d.clock.set(at("2026-11-26T05:00:00Z"));
    let extra = format!("expect:\n  - {{ by: \"06:00\", days: mon-fri }}\n{}", webhook(&receiver, "missing"));
    std::fs::write(d.path("flows/daily.yaml"), local_flow("daily", &extra).replace("ROOT", &d.path("").display().to_string())).unwrap();
    d.handle().reload();
    for _ in 0..1000 {
        if d.handle().served() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(d.handle().served(), 2);
    // The loop has looked at the new flow's deadlines: it sleeps until Thursday 06:00.
    d.clock.until_sleepers(1).await;
    d.handle().notified().await;
    assert!(
        kinds(&receiver).is_empty(),
        "no deadline of the flow has passed yet: {:?}",
        receiver.requests().iter().map(|r| r.json()).collect::<Vec<_>>()
    );
    d.clock.set(at("2026-11-26T06:01:00Z"));
    assert_eq!(requests(&d, &receiver, 1).await, ["missing"]);
    let detail = receiver.requests()[0].json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("Thu 2026-11-26"), "{detail}");
    d.stop().await;
}

/// Writes `flows/{file}` (ROOT filled in), reloads, and returns once the loop has taken the
/// reload in (it answers commands in order).
async fn rewrite(d: &Daemon, file: &str, text: &str) {
    std::fs::write(d.path("flows").join(file), text.replace("ROOT", &d.path("").display().to_string())).unwrap();
    d.handle().reload();
    let _ = d.handle().trigger("no-such-flow").await;
}

/// A flow whose `expect:` is taken out and later put back is judged from when it came back.
/// Was: the mark of its last check, days old, was resumed from, and every deadline while
/// `expect:` was out was reported `missing` at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expect_put_back_is_judged_from_when_it_came_back() {
    let receiver = HttpReceiver::start(&[]).await;
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    let hook = webhook(&receiver, "missing");
    let with = local_flow("daily", &format!("expect:\n  - {{ by: \"06:00\", days: mon-fri }}\n{hook}"));
    let without = local_flow("daily", &hook);
    // Monday 05:00 UTC; the file is expected by 06:00 on weekdays.
    let d = Daemon::start(&[("daily.yaml", with.clone())], at("2026-11-23T05:00:00Z"), ServeConfig::default());
    d.clock.until_sleepers(1).await;
    rewrite(&d, "daily.yaml", &without).await;
    // Thursday 05:00: put back.
    d.clock.set(at("2026-11-26T05:00:00Z"));
    rewrite(&d, "daily.yaml", &with).await;
    // The loop has looked at the deadlines again: it sleeps until Thursday 06:00.
    d.clock.until_sleepers(1).await;
    d.handle().notified().await;
    assert!(kinds(&receiver).is_empty(), "{:?}", receiver.requests().iter().map(|r| r.json()).collect::<Vec<_>>());
    d.clock.set(at("2026-11-26T06:01:00Z"));
    assert_eq!(requests(&d, &receiver, 1).await, ["missing"]);
    let detail = receiver.requests()[0].json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("Thu 2026-11-26"), "{detail}");
    d.stop().await;
}

/// `expect:` rules changed while the daemon was down are judged from its next start; rules
/// that did not change still have the deadlines passed while it was down checked (see
/// `a_deadline_missed_while_down_is_checked_at_the_next_start`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_rules_changed_while_down_are_judged_from_the_next_start() {
    let receiver = HttpReceiver::start(&[]).await;
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    let hook = webhook(&receiver, "missing");
    let flow = |by: &str| local_flow("daily", &format!("expect:\n  - {{ by: \"{by}\", days: mon-fri }}\n{hook}"));
    let mut d = Daemon::start(&[("daily.yaml", flow("06:00"))], at("2026-11-23T05:00:00Z"), ServeConfig::default());
    d.clock.until_sleepers(1).await;
    let changed = flow("06:30");
    d.restart(at("2026-11-26T05:00:00Z"), ServeConfig::default(), |dir| {
        std::fs::write(dir.join("flows/daily.yaml"), changed.replace("ROOT", &dir.display().to_string())).unwrap();
    })
    .await;
    d.clock.until_sleepers(1).await;
    d.handle().notified().await;
    assert!(kinds(&receiver).is_empty(), "{:?}", receiver.requests().iter().map(|r| r.json()).collect::<Vec<_>>());
    d.clock.set(at("2026-11-26T06:31:00Z"));
    assert_eq!(requests(&d, &receiver, 1).await, ["missing"]);
    d.stop().await;
}

/// Triggering a flow whose file the daemon refused says so, and why. Was: "no flow named
/// bad", as if there were no such file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggering_a_refused_flow_file_says_why() {
    let d = Daemon::start(&[("bad.yaml", "name: bad\nsource: 3\n".to_string())], minute_now(), ServeConfig::default());
    match d.handle().trigger("bad").await {
        Err(TriggerError::Refused { flow, file, problem }) => {
            assert_eq!((flow.as_str(), file), ("bad", d.path("flows/bad.yaml")));
            assert!(
                problem.starts_with("3 problem(s), first: ") && problem.contains("bad.yaml:1:1: missing field `endpoints`"),
                "{problem}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.handle().trigger("nope").await, Err(TriggerError::UnknownFlow("nope".into())));
    d.stop().await;
}

/// A run whose flow file was removed while it ran, and that ended on passing trouble (here its
/// source command failed), is not retried: its flow is no longer served. Was: the retry was
/// planned all the same, for a flow the loop no longer looked at, so once its time passed the
/// loop woke for it without end (a core at 100 % until the next change to the flows folder).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_flow_whose_last_run_failed_passingly_is_not_retried() {
    let failing = blocking_flow("gone", "skip").replace("done; echo x", "done; exit 3");
    let mut d = Daemon::start(
        &[("gone.yaml", failing), ("tick.yaml", local_flow("tick", "schedule: { every: 1d }\n"))],
        // At noon: the hour below does not reach `tick`'s midnight (from 23:00 UTC it did, and
        // the trigger found `tick` running).
        DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z").unwrap().with_timezone(&Utc),
        ServeConfig::default(),
    );
    std::fs::create_dir_all(d.path("src/gone")).unwrap();
    assert_eq!(d.handle().trigger("gone").await, Ok(Triggered::Started));
    until_run_recorded(&d, "gone").await;
    std::fs::remove_file(d.path("flows/gone.yaml")).unwrap();
    reload_until_served(&d, 1).await;
    assert_eq!(d.handle().served(), 1);
    std::fs::write(d.path("go"), "").unwrap();
    let r = d.next_run().await;
    assert_eq!((r.flow.as_str(), r.status), ("gone", RunStatus::Aborted), "{r:?}");
    assert!(r.error.as_deref().unwrap_or_default().contains("command"), "{r:?}");
    // Its series leave `/metrics` as its run ends (no reload comes to drop them).
    let text = d.handle().metrics().render();
    assert!(!text.contains("flow=\"gone\"") && text.contains("flow=\"tick\""), "{text}");
    // An hour on (past any retry): the loop goes back to sleep until `tick` is due.
    d.advance(Duration::from_secs(3600)).await;
    // A command answered by the loop: it has woken (no sleeper) and goes round again.
    assert_eq!(d.handle().trigger("tick").await, Ok(Triggered::Started));
    let asleep = tokio::time::timeout(Duration::from_secs(10), d.clock.until_sleepers(1)).await;
    assert!(asleep.is_ok(), "the loop never sleeps again: it keeps waking for the removed flow's retry");
    assert!(d.handle().status().flows.iter().all(|f| f.name == "tick"), "{:?}", d.handle().status());
    d.stop().await;
}

/// A deadline that passes while the state folder is full (its check cannot be recorded) is
/// checked again once there is room, and its `missing` event raised then. Was: the check was
/// counted as done anyway, so the deadline was never reported while the daemon ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_checked_while_the_state_folder_is_full_is_reported_once_there_is_room() {
    use wharf::ledger::{FileRecord, FileState, Transition};
    let receiver = HttpReceiver::start(&[]).await;
    let at = |t: &str| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc);
    let dir = support::tempdir();
    for d in ["flows", "src/in", "dst"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let state = dir.path().join("state");
    let Some(_fs) = support::tmpfs::Tmpfs::mount(&state, "2m") else { return };
    let extra = format!("expect:\n  - {{ by: \"06:00\", days: mon-fri }}\n{}", webhook(&receiver, "missing"));
    std::fs::write(dir.path().join("flows/daily.yaml"), local_flow("daily", &extra).replace("ROOT", &dir.path().display().to_string()))
        .unwrap();
    let clock = Arc::new(ManualClock::new(at("2026-11-23T05:00:00Z")));
    let opts = ServeOptions { flows_dir: dir.path().join("flows"), state_dir: state.clone(), config: ServeConfig::default() };
    let handle = serve::start(opts, clock.clone()).expect("start the daemon");
    let d = Daemon { dir, clock, finished: handle.subscribe(), handle: Some(handle) };
    // The loop has looked at the deadlines (it sleeps until 06:00).
    d.clock.until_sleepers(1).await;

    // The state folder fills up: a write fails, and the ledger takes no more until there is room.
    let filler = state.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
    let ledger = d.handle().ledger();
    let rec = |i: usize| FileRecord { path: format!("in/f{i:06}-{}.csv", "x".repeat(100)), state: FileState::Staged, ..Default::default() };
    let failed = (0..100)
        .find_map(|n| {
            ledger.commit(&(0..300).map(|i| Transition::File { flow: "junk".into(), rec: rec(n * 1000 + i) }).collect::<Vec<_>>()).err()
        })
        .expect("a write fails on the full disk");
    assert!(failed.is_state_full(), "{failed}");

    d.clock.set(at("2026-11-23T06:01:00Z"));
    // Two answers from the loop: it has woken and checked the deadline (and could not record it).
    for _ in 0..2 {
        assert_eq!(d.handle().trigger("nope").await, Err(TriggerError::UnknownFlow("nope".into())));
    }
    assert!(kinds(&receiver).is_empty());

    // Room again: the deadline is checked again within minutes, and reported.
    std::fs::remove_file(&filler).unwrap();
    d.advance(Duration::from_secs(120)).await;
    assert_eq!(requests(&d, &receiver, 1).await, ["missing"]);
    let detail = receiver.requests()[0].json()["detail"].as_str().unwrap_or_default().to_string();
    assert!(detail.contains("Mon 2026-11-23"), "{detail}");
    d.stop().await;
}

/// SIGHUP asks for a reload from the moment the daemon is started. Was: it was listened for
/// only once the rescan task first ran, after the ledger was opened and every flow loaded;
/// a SIGHUP before that (`systemctl reload` right after a start) met its default action and
/// ended the process. (A single-threaded runtime: the daemon's tasks have not run yet when
/// the signal comes.)
#[tokio::test]
async fn a_sighup_right_after_the_start_does_not_end_the_process() {
    let d = Daemon::start(&[("pull.yaml", local_flow("pull", ""))], minute_now(), ServeConfig::default());
    // SAFETY: raise has no preconditions; SIGHUP is handled by the daemon (or ends the test).
    assert_eq!(unsafe { libc::raise(libc::SIGHUP) }, 0);
    // Still here: the loop answers.
    assert_eq!(d.handle().trigger("nope").await, Err(TriggerError::UnknownFlow("nope".into())));
    d.stop().await;
}

/// A reload that comes at a flow's due time, before the loop has started that run, does not
/// skip it. Was: the reload planned every flow again from now, moving a due time that had
/// just passed on to the next one (about one time in two when both came at once; repeated
/// here so that a skip cannot go unseen).
#[tokio::test]
async fn a_reload_at_a_flows_due_time_does_not_skip_its_run() {
    let mut d = Daemon::start(&[("pull.yaml", local_flow("pull", "schedule: { every: 1h }\n"))], minute_now(), ServeConfig::default());
    for round in 0..10 {
        d.clock.until_sleepers(1).await;
        let due = d.handle().status().flows[0].next_due.expect("scheduled");
        // Both before the loop runs again (a single-threaded runtime): the time and a reload.
        d.clock.set(due);
        d.handle().reload();
        let f = tokio::time::timeout(Duration::from_secs(5), d.finished.recv()).await;
        assert!(f.is_ok(), "round {round}: the run due at {due} was skipped by the reload that came with it");
    }
    d.stop().await;
}

/// A flow whose `name:` is changed while it runs: a run under the new name waits for the run
/// under the old one to end (both would take the same files: delivered twice). Was: the
/// overlap check went by name, and the new name started at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_under_a_flows_new_name_waits_for_the_run_under_its_old_one() {
    let mut d = Daemon::start(&[("f.yaml", blocking_flow("old", "skip"))], minute_now(), ServeConfig::default());
    assert_eq!(d.handle().trigger("old").await, Ok(Triggered::Started));
    until_run_recorded(&d, "old").await;
    rewrite(&d, "f.yaml", &blocking_flow("new", "skip")).await;
    assert_eq!(d.handle().trigger("new").await, Ok(Triggered::Queued), "the old name's run is still going");
    assert_eq!(d.handle().trigger("new").await, Ok(Triggered::Queued));
    let st = d.handle().status();
    assert!(st.flows.iter().any(|f| f.name == "new" && f.queued && !f.running), "{st:?}");
    std::fs::write(d.path("go"), "").unwrap();
    let (first, second) = (d.next_run().await, d.next_run().await);
    assert_eq!((first.flow.as_str(), second.flow.as_str()), ("old", "new"));
    assert_eq!(second.status, RunStatus::Ok, "{second:?}");
    assert_eq!(d.handle().ledger().runs(Some("new"), 10).unwrap().len(), 1, "one run for the two asked for while it waited");
    d.stop().await;
}

/// A clock found a day ahead and set right: the flows run on their schedule from the
/// corrected time. Before, each one's next run stayed planned from the clock as it was, and
/// nothing ran for a day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_plans_the_next_runs_again_from_the_corrected_time() {
    // On the 10-minute grid (`every` is anchored to the epoch).
    let t = Utc::now().timestamp();
    let start = DateTime::from_timestamp(t - t % 600, 0).unwrap();
    let ahead = start + chrono::TimeDelta::days(1);
    let mut d = Daemon::start(&[("pull.yaml", local_flow("pull", "schedule: { every: 10m }\n"))], ahead, ServeConfig::default());
    let next_due = |d: &Daemon| d.handle().status().flows[0].next_due;
    assert_eq!(next_due(&d), Some(ahead + chrono::TimeDelta::minutes(10)));
    d.clock.until_sleepers(1).await;
    d.clock.set(start);
    let replanned = tokio::time::timeout(Duration::from_secs(10), async {
        while next_due(&d) != Some(start + chrono::TimeDelta::minutes(10)) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(replanned.await.is_ok(), "planned again from the corrected clock: {:?}", next_due(&d));
    std::fs::write(d.path("src/in/a.csv"), "x\n").unwrap();
    d.advance(Duration::from_secs(600)).await;
    let r = d.next_run().await;
    assert_eq!((r.status, r.counts.delivered), (RunStatus::Ok, 1));
    d.stop().await;
}

/// The same for a retry planned while the clock was ahead: after the correction it comes
/// within `retry.max` (15 minutes), not a day late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_set_back_brings_a_retry_planned_before_back_within_the_longest_wait() {
    let start = minute_now();
    let ahead = start + chrono::TimeDelta::days(1);
    let flow = "name: partner\nendpoints:\n  p: { type: sftp, host: 127.0.0.1, port: 1, user: u, auth: { password: x }, host_key: { fingerprint: \"SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\" } }\n  b: { type: local, root: ROOT/dst }\nsource: { endpoint: p, path: /in }\nsinks: [ { endpoint: b, path: / } ]\nretry: { attempts: 1 }\n";
    let mut d = Daemon::start(&[("partner.yaml", flow.to_string())], ahead, ServeConfig::default());
    assert_eq!(d.handle().trigger("partner").await, Ok(Triggered::Started));
    assert_eq!(d.next_run().await.status, RunStatus::Aborted, "port 1 refuses");
    let due = d.handle().status().flows[0].next_due.expect("a retry is planned");
    assert!(due > ahead, "{due}");
    d.clock.until_sleepers(1).await;
    d.clock.set(start);
    let latest = start + chrono::TimeDelta::minutes(15);
    let replanned = tokio::time::timeout(Duration::from_secs(10), async {
        while d.handle().status().flows[0].next_due.is_none_or(|t| t > latest) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(replanned.await.is_ok(), "planned again: {:?}", d.handle().status().flows[0].next_due);
    d.stop().await;
}

/// `source.max_files: 2` over a backlog of five files, scheduled hourly: the run that left
/// files for the next one is followed at once by the next (the clock does not move), until
/// the backlog is taken, oldest first; then the flow waits for its schedule again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_capped_by_max_files_is_taken_by_runs_one_after_the_other() {
    let flow = local_flow("pull", "schedule: { every: 1h }\n").replace("include: ['*.csv']", "include: ['*.csv'], max_files: 2");
    let mut d = Daemon::start(&[("pull.yaml", flow)], minute_now(), ServeConfig::default());
    for (i, name) in ["e", "d", "c", "b", "a"].iter().enumerate() {
        let p = d.path(&format!("src/in/{name}.csv"));
        std::fs::write(&p, "x\n").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i as u64)).unwrap();
    }
    d.advance(Duration::from_secs(3600)).await;
    let mut taken = Vec::new();
    for (delivered, later) in [(2, Some(3)), (2, Some(1)), (1, None)] {
        let r = d.next_run().await;
        assert_eq!((r.status, r.counts.delivered, r.later.map(|l| l.files)), (RunStatus::Ok, delivered, later), "{r:#?}");
        taken.extend(r.files.iter().map(|f| f.path.clone()));
    }
    assert_eq!(taken, ["/in/d.csv", "/in/e.csv", "/in/b.csv", "/in/c.csv", "/in/a.csv"], "oldest first, run by run");
    let st = d.handle().status();
    let next = st.flows[0].next_due.expect("planned by its schedule");
    assert!(next > wharf::schedule::Clock::now(&*d.clock), "back to the schedule, not at once: {st:?}");
    d.stop().await;
}

/// A backlog that does not shrink is not run at once for ever: with `source.command` making
/// a file at every run and `max_files: 1`, every run takes one file and its command makes
/// one (two left each time). The first capped run is followed at once; the second, which
/// left as many, waits for the schedule (was: runs, and the command, without a pause).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_backlog_that_does_not_shrink_waits_for_the_schedule() {
    let flow = "name: made\nendpoints:\n  a: { type: local, root: ROOT/src }\n  b: { type: local, root: ROOT/dst }\nsource:\n  endpoint: a\n  path: /in\n  include: ['*.csv']\n  max_files: 1\n  command:\n    run: [sh, -c, 'echo x']\n    name: 'out-{{run}}.csv'\nsinks: [ { endpoint: b, path: / } ]\nafter: { success: delete }\nschedule: { every: 1h }\n";
    let config = ServeConfig { rescan: Duration::from_secs(3600), ..ServeConfig::default() };
    let mut d = Daemon::start(&[("made.yaml", flow.to_string())], minute_now(), config);
    for (i, name) in ["a", "b"].iter().enumerate() {
        let p = d.path(&format!("src/in/{name}.csv"));
        std::fs::write(&p, "x\n").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + i as u64)).unwrap();
    }
    d.advance(Duration::from_secs(3600)).await;
    for _ in 0..2 {
        let r = d.next_run().await;
        assert_eq!((r.status, r.counts.delivered, r.later.map(|l| l.files)), (RunStatus::Ok, 1, Some(2)), "{r:#?}");
    }
    d.clock.until_sleepers(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = d.handle().status();
    assert!(!st.flows[0].running, "{st:?}");
    let next = st.flows[0].next_due.expect("planned by its schedule");
    assert!(next > wharf::schedule::Clock::now(&*d.clock), "back to the schedule: {st:?}");
    assert_eq!(d.handle().ledger().runs(Some("made"), 10).unwrap().len(), 2);
    d.stop().await;
}

/// A capped run that failed a file leaves the rest to the flow's next scheduled time: a file
/// failing at every run must not make the flow run without a pause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_run_that_failed_a_file_waits_for_its_schedule() {
    let flow = local_flow("pull", "schedule: { every: 1h }\n")
        .replace("include: ['*.csv']", "include: ['*.csv'], max_files: 1")
        .replace("path: / }", "path: /, if_exists: fail }");
    let mut d = Daemon::start(&[("pull.yaml", flow)], minute_now(), ServeConfig::default());
    std::fs::write(d.path("dst/a.csv"), "theirs\n").unwrap();
    for name in ["a", "b"] {
        std::fs::write(d.path(&format!("src/in/{name}.csv")), "x\n").unwrap();
    }
    d.advance(Duration::from_secs(3600)).await;
    let r = d.next_run().await;
    assert_eq!((r.status, r.counts.failed, r.later.map(|l| l.files)), (RunStatus::Failed, 1, Some(1)), "{r:#?}");
    let st = d.handle().status();
    let next = st.flows[0].next_due.expect("planned by its schedule");
    assert!(next > wharf::schedule::Clock::now(&*d.clock), "not at once: {st:?}");
    d.stop().await;
}
