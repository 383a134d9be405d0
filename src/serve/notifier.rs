//! Feeds the `notify:` rules: every event in the ledger's log once, in order, and run
//! summaries as runs finish.
//!
//! One task owns the dispatcher (and so the throttling state). It reads nothing before the
//! flows' own rules have arrived (the first [`Notifier::set_rules`]): an event read earlier
//! would be matched against the global rules only and then counted as handled, so events
//! recorded while the daemon was down would never reach the flows' rules. It reads the events
//! after the stored cursor, sends each to the matching rules (the flow's own and the global ones), and
//! only then moves the cursor: a crash in between sends a notice again rather than losing it.
//! The very first daemon on a ledger starts from the newest event instead of replaying
//! history. When a throttle window with notices held back ends, the task sends the latest of
//! them (the dispatcher says when). Failed deliveries are logged and counted in the metrics; they do not hold the log
//! back (the dispatcher already retried them).
//!
//! When the daemon stops ([`Notifier::stop`]), the task sends what it still has — queued
//! summaries, notices held back by a throttle (early: windows are not kept across a restart),
//! the events not sent yet — for as long as the caller allows, then ends. Events it had no
//! time for stay after the cursor and are sent at the next start.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::Flow;
use crate::control::Metrics;
use crate::engine::RunReport;
use crate::ledger::{Event, EventKind, Ledger};
use crate::notify::{Dispatcher, Notice, Outcome, Rule};
use crate::schedule::Clock;

/// Events read per batch.
const BATCH: usize = 100;

enum Msg {
    Wake,
    Rules(Vec<(String, Vec<Rule>)>),
    Summary(Box<Notice>),
    Flush(oneshot::Sender<()>),
    /// Send everything still pending, answer, and end.
    Stop(oneshot::Sender<()>),
}

/// The handle of the notifier task.
pub(super) struct Notifier {
    tx: mpsc::UnboundedSender<Msg>,
    task: Mutex<Option<JoinHandle<()>>>,
    ledger: Arc<Ledger>,
}

/// The notifier task's state.
struct Pump {
    ledger: Arc<Ledger>,
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// The flows whose rules the dispatcher has.
    flows: BTreeSet<String>,
    /// The flows' rules have arrived: events may be read (and the cursor moved).
    ready: bool,
}

impl Notifier {
    pub fn start(ledger: Arc<Ledger>, global: Vec<Rule>, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher::new(&global).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Global notifications cannot be set up; only the flows' own rules are used.");
            // No rules cannot fail to set up.
            Dispatcher::new(&[]).unwrap_or_else(|_| unreachable!("a dispatcher without rules sets nothing up"))
        });
        let mut pump = Pump { ledger: ledger.clone(), dispatcher, clock, metrics, flows: BTreeSet::new(), ready: false };
        let task = tokio::spawn(async move {
            // The backlog (events recorded while the daemon was down) is read once the flows'
            // rules are known: at the first `Msg::Rules`.
            loop {
                let due = pump.dispatcher.next_due();
                let clock = Arc::clone(&pump.clock);
                let msg = tokio::select! {
                    msg = rx.recv() => msg,
                    () = async move {
                        match due {
                            Some(t) => clock.sleep_until(t).await,
                            None => std::future::pending().await,
                        }
                    } => {
                        pump.send_due().await;
                        continue;
                    }
                };
                let Some(msg) = msg else { break };
                match msg {
                    Msg::Wake => pump.events().await,
                    Msg::Rules(rules) => {
                        let first = !pump.ready;
                        pump.set_rules(rules);
                        if first {
                            pump.events().await;
                        }
                    }
                    Msg::Summary(notice) => pump.send(&notice).await,
                    Msg::Flush(done) => {
                        pump.events().await;
                        let _ = done.send(());
                    }
                    Msg::Stop(done) => {
                        // What is only in memory first: the events wait in the ledger anyway.
                        pump.send_all_held().await;
                        pump.events().await;
                        pump.send_all_held().await;
                        let _ = done.send(());
                        break;
                    }
                }
            }
        });
        Notifier { tx, task: Mutex::new(Some(task)), ledger }
    }

    /// New events may be in the log.
    pub fn wake(&self) {
        let _ = self.tx.send(Msg::Wake);
    }

    /// Sets the flows' own rules (at start: no event is read before this), or replaces them
    /// after a reload.
    pub fn set_rules(&self, flows: &[Arc<Flow>]) {
        let rules = flows.iter().map(|f| (f.name.clone(), f.notify.clone())).collect();
        let _ = self.tx.send(Msg::Rules(rules));
    }

    /// A run finished: its events are in the log; its summary goes to rules that want one.
    pub fn run_finished(&self, flow: Option<&Flow>, report: &RunReport) {
        if let Some(flow) = flow {
            let _ = self.tx.send(Msg::Summary(Box::new(summary(report, flow))));
        }
        self.wake();
    }

    /// Waits until every event recorded so far was handled.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Sends what is still pending (summaries, notices held back, events) within `within`,
    /// then ends the task. What had no time stays unsent: events remain after the cursor and
    /// are sent at the next start (logged); summaries and held-back notices are lost (logged).
    pub async fn stop(&self, within: Duration) {
        let Some(task) = crate::sync::lock(&self.task).take() else { return };
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Stop(tx));
        let cut_off = tokio::time::timeout(within, rx).await.is_err();
        if cut_off {
            task.abort();
        }
        // Wait for the task to be over (or cancelled): nothing of it uses the ledger after.
        let _ = task.await;
        if cut_off {
            let cursor = self.ledger.notify_cursor().ok().flatten().unwrap_or(0);
            let unsent = self.ledger.last_event_seq().map(|last| last.saturating_sub(cursor)).unwrap_or(0);
            tracing::warn!(
                within_s = within.as_secs_f64(),
                unsent,
                "Shutdown grace over before every notice was sent: the events not sent yet are sent at the next start; pending run summaries and throttled notices are not."
            );
        }
    }
}

impl Pump {
    fn set_rules(&mut self, rules: Vec<(String, Vec<Rule>)>) {
        let now: BTreeSet<String> = rules.iter().map(|(f, _)| f.clone()).collect();
        for gone in self.flows.difference(&now) {
            self.dispatcher.remove_flow(gone);
        }
        for (flow, rules) in rules {
            if let Err(e) = self.dispatcher.set_flow(&flow, &rules) {
                tracing::error!(flow = %flow, error = %e, "The flow's notifications cannot be set up.");
            }
        }
        self.flows = now;
        self.ready = true;
    }

    async fn send(&mut self, notice: &Notice) {
        let deliveries = self.dispatcher.dispatch(notice, self.clock.now()).await;
        tracing::debug!(flow = %notice.flow, kind = %notice.kind, deliveries = deliveries.len(), "Notice dispatched.");
        self.count(deliveries);
    }

    /// Sends what the throttle held back in windows that have ended.
    async fn send_due(&mut self) {
        let deliveries = self.dispatcher.send_due(self.clock.now()).await;
        self.count(deliveries);
    }

    /// Sends what the throttle holds back, window ended or not (the daemon is stopping).
    async fn send_all_held(&mut self) {
        let deliveries = self.dispatcher.send_all_held(self.clock.now()).await;
        self.count(deliveries);
    }

    fn count(&self, deliveries: Vec<crate::notify::Delivery>) {
        for d in deliveries {
            match d.outcome {
                Outcome::Sent { .. } => self.metrics.notification(&d.channel, true),
                Outcome::Failed { .. } => self.metrics.notification(&d.channel, false),
                Outcome::HeldBack { .. } => {}
            }
        }
    }

    /// Sends every event after the cursor, moving the cursor after each. Nothing before the
    /// flows' rules are known: those events wait in the log (the cursor does not move).
    async fn events(&mut self) {
        if !self.ready {
            return;
        }
        let ledger = self.ledger.clone();
        let mut cursor = match ledger.notify_cursor() {
            Ok(Some(c)) => c,
            Ok(None) => match ledger.last_event_seq().and_then(|last| ledger.set_notify_cursor(last).map(|_| last)) {
                Ok(last) => last,
                Err(e) => return tracing::error!(error = %e, "Notifier cannot read the ledger."),
            },
            Err(e) => return tracing::error!(error = %e, "Notifier cannot read the ledger."),
        };
        tracing::debug!(cursor, "Notifier reading the event log.");
        loop {
            let events = match ledger.events(None, cursor, BATCH) {
                Ok(e) => e,
                Err(e) => return tracing::error!(error = %e, "Notifier cannot read the event log."),
            };
            if events.is_empty() {
                return;
            }
            for ev in events {
                let mut n = notice(&ev);
                if ev.kind == EventKind::Quarantined {
                    n.facts = quarantine_facts(&ledger, &ev);
                }
                self.send(&n).await;
                cursor = ev.seq;
                if let Err(e) = ledger.set_notify_cursor(cursor) {
                    return tracing::error!(error = %e, "Notifier cannot store its cursor.");
                }
            }
        }
    }
}

/// What the ledger knows of a quarantined file: where the copy and its reports went, why, and
/// its record counts (`facts` of a `quarantined` notice).
fn quarantine_facts(ledger: &Ledger, ev: &Event) -> serde_json::Value {
    // Reports show paths as `/in/a.csv`; the ledger keys them without the leading slash.
    match ledger.file_result(&ev.flow, ev.subject.trim_start_matches('/')) {
        Ok(Some(r)) => serde_json::json!({ "quarantine": r.quarantine, "records": r.counts, "run": r.run }),
        _ => serde_json::json!({}),
    }
}

/// The notice for a logged event.
pub(super) fn notice(ev: &Event) -> Notice {
    Notice {
        kind: ev.kind.as_str().to_string(),
        flow: ev.flow.clone(),
        at: DateTime::<Utc>::from_timestamp_millis(ev.at).unwrap_or_default(),
        subject: ev.subject.clone(),
        detail: ev.detail.clone(),
        seq: Some(ev.seq),
        run: None,
        facts: serde_json::json!({}),
    }
}

/// The `summary` notice of a run.
fn summary(report: &RunReport, flow: &Flow) -> Notice {
    let c = &report.counts;
    let detail = format!(
        "run {}: {} — {} delivered, {} failed, {} quarantined, {} not ready, {} skipped, {} bytes",
        report.run,
        report.status.as_str(),
        c.delivered,
        c.failed,
        report.quarantined,
        c.not_ready,
        c.skipped,
        c.bytes
    );
    Notice {
        kind: "summary".into(),
        flow: flow.name.clone(),
        at: Utc::now(),
        subject: String::new(),
        detail,
        seq: None,
        run: Some(report.run),
        facts: serde_json::to_value(report).unwrap_or_default(),
    }
}
