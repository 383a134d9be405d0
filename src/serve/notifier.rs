//! Feeds the `notify:` rules: every event in the ledger's log once, in order, and run
//! summaries as runs finish.
//!
//! One task owns the dispatcher (and so the throttling state). It reads nothing before the
//! flows' own rules have arrived (the first [`Notifier::set_rules`]): an event read earlier
//! would be matched against the global rules only and then counted as handled, so events
//! recorded while the daemon was down would never reach the flows' rules. It reads the events
//! after the stored cursor and hands each to the matching rules (the flow's own and the global
//! ones) without waiting for the sends: each channel sends in a lane of its own, in order, so a
//! slow channel holds up neither the others nor the log (see `notify::dispatch`). At most
//! [`OPEN`] events are open (read, with sends under way) at once: then the reading stops, and
//! goes on as their sends land (a backlog after a restart goes out at the pace of the slowest
//! channel that works, none lost, memory bounded). Meanwhile the task keeps landing sends and
//! answering (a stop is answered at once). The stored cursor only passes an event once every
//! send of it is over, and moves as they land: a crash or stop in between sends a notice again
//! rather than losing it, and only those of the events still open. The very first daemon on a ledger starts from the newest event
//! instead of replaying history. When a throttle window with notices held back ends, the task
//! sends the latest of them (the dispatcher says when). Failed deliveries are logged and
//! counted in the metrics; they do not hold the log back (the dispatcher already retried them).
//!
//! When the daemon stops ([`Notifier::stop`]), the task sends what it still has — queued
//! summaries, notices held back by a throttle (early: windows are not kept across a restart),
//! the events not read yet (unless it is working through a backlog: the rest of that waits for
//! the next start), the sends under way — for as long as the caller allows, then ends. Events
//! it had no time for stay after the cursor and are sent at the next start, and so do the
//! notices held back that it had no time for (below).
//!
//! **Held-back notices survive a crash.** A notice a throttle holds back is the only trace of
//! its event once the cursor passes that event, and the throttle may hold it for an hour. So
//! the cursor is never stored alone: every store writes, in the same ledger transaction, the
//! list of notices held back at that moment ([`Dispatcher::held`]: a window's latest notice
//! and its count, or a flushing send not over yet). The argument:
//! - *None lost.* An event at or before the stored cursor was read before the store; if its
//!   notice was held back then, it is in the list stored with that cursor, or it left the list
//!   since — sent (its send over), or replaced by a later notice of the same flow, kind and
//!   subject, itself held (in the list) or sent with the count. A crash loses only what came
//!   after the last store: events after the stored cursor, read again at the next start.
//!   Summaries held back are in the list too (they have no event to read again).
//! - *Nothing sent twice in the normal case.* A notice leaves the list only when its send is
//!   over, and the list is stored again as soon as the task is idle: a clean stop sends what
//!   is held back (as before) and stores the empty list; a stop cut off by the grace leaves the
//!   rest in the list. At the start, the stored list is sent at once (as a clean stop would
//!   have), each notice through the rule written at the same place ([`Dispatcher::begin_restored`]),
//!   before any event is read, and leaves the list once sent. A crash between a send and the
//!   next store sends that notice again — the same trade as for events: twice rather than never.
//! - *A list the ledger fails to read is not written over.* Should the stored list not be
//!   read at the start (a ledger read error), it is kept as it is, and nothing is stored — the
//!   cursor neither: stored alone, it would pass events whose notices this daemon holds back
//!   in memory only. The read is tried again whenever the task has something to do; once it
//!   succeeds, the list is sent as at a start and storing resumes. Meanwhile the log says so
//!   (once, then at debug level); a crash in between reads this daemon's events again (twice
//!   rather than never). A list read but not in a form this version reads (written by another
//!   version, or damaged) is logged whole and written over instead: kept, it would stop the
//!   cursor for good and every start would send every event again, whereas what a throttle
//!   holds back are repeats of notices sent already.
//! - *No extra commits.* The list rides on the cursor's stores (at most every
//!   [`CURSOR_EVERY`], at once when idle), and is written only when it or the cursor changed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::Flow;
use crate::control::Metrics;
use crate::engine::RunReport;
use crate::ledger::{Event, EventKind, Ledger};
use crate::notify::{Dispatcher, Held, Landed, Notice, Outcome, QUEUED, Rule, Started};
use crate::schedule::Clock;

/// Events read per batch.
const BATCH: usize = 100;

/// The stored cursor is written at most this often while events are being read or sent
/// (each write is a durable ledger commit), and always once the pump is idle: a crash
/// re-sends at most the notices of this long, where a write per event cost a commit each.
const CURSOR_EVERY: Duration = Duration::from_millis(500);

/// Events open (read, with sends under way) at most; the reading goes on once half of them
/// are over. Below a lane's [`QUEUED`]: the events alone never fill a channel's lane, so the
/// reading does not wait for room in one, and the task keeps landing sends (moving the
/// cursor) and answering messages however long a backlog takes.
const OPEN: usize = QUEUED / 2;

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
    /// Sends under way, with the sequence number of the event they are for.
    flying: FuturesUnordered<BoxFuture<'static, (Option<u64>, Landed)>>,
    /// Events read with sends still under way: how many, by sequence number.
    open: BTreeMap<u64, usize>,
    /// The last event read (`None`: not read yet; the stored cursor is where to start).
    read: Option<u64>,
    /// The reading stopped with [`OPEN`] events open: the log may have more.
    behind: bool,
    /// The cursor as stored.
    stored: u64,
    /// The notices held back as stored with it ([`Held::encode`] of [`Dispatcher::held`]).
    stored_held: Vec<u8>,
    /// The stored list of notices held back could not be read at the start: it is not written
    /// over (nothing is stored) until a read succeeds (see the module doc).
    held_unread: bool,
    /// When it was stored last.
    stored_at: Option<std::time::Instant>,
    /// A ledger never served before (no stored cursor): the last event recorded when the
    /// notifier started. What came before is history, not news; what comes after (this
    /// daemon's first runs, which may finish before the flows' rules arrive) is sent.
    history_ends: Option<u64>,
}

impl Notifier {
    pub fn start(ledger: Arc<Ledger>, global: Vec<Rule>, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let dispatcher = Dispatcher::new(&global).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Global notifications cannot be set up; only the flows' own rules are used.");
            // No rules cannot fail to set up.
            Dispatcher::new(&[]).unwrap_or_else(|_| unreachable!("a dispatcher without rules sets nothing up"))
        });
        // Taken here, before any run of this daemon can record an event (see `history_ends`).
        let history_ends = match ledger.notify_cursor() {
            Ok(None) => ledger.last_event_seq().ok(),
            _ => None,
        };
        let mut pump = Pump {
            ledger: ledger.clone(),
            dispatcher,
            clock,
            metrics,
            flows: BTreeSet::new(),
            ready: false,
            flying: FuturesUnordered::new(),
            open: BTreeMap::new(),
            read: None,
            behind: false,
            stored: 0,
            stored_held: Vec::new(),
            held_unread: false,
            stored_at: None,
            history_ends,
        };
        let task = tokio::spawn(async move {
            // The backlog (events recorded while the daemon was down) is read once the flows'
            // rules are known: at the first `Msg::Rules`.
            loop {
                if pump.held_unread {
                    pump.restore().await;
                }
                let due = pump.dispatcher.next_due();
                let clock = Arc::clone(&pump.clock);
                let msg = tokio::select! {
                    msg = rx.recv() => msg,
                    Some((seq, landed)) = pump.flying.next(), if !pump.flying.is_empty() => {
                        pump.landed(seq, landed);
                        if pump.may_read_on() {
                            pump.events().await;
                        }
                        continue;
                    }
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
                            // Before anything is stored: the list stored last is replaced
                            // at the first store.
                            pump.restore().await;
                            pump.events().await;
                        }
                    }
                    Msg::Summary(notice) => {
                        pump.send(&notice, None).await;
                        // Held back, it is only in memory: stored at once when idle.
                        pump.store_cursor(pump.flying.is_empty());
                    }
                    Msg::Flush(done) => {
                        pump.catch_up().await;
                        let _ = done.send(());
                    }
                    Msg::Stop(done) => {
                        // What is only in memory first: the events wait in the ledger anyway.
                        pump.send_all_held().await;
                        // New events, not the rest of a backlog: that waits for the next start.
                        if !pump.behind {
                            pump.events().await;
                        }
                        pump.drain().await;
                        pump.send_all_held().await;
                        pump.drain().await;
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

    /// Waits until every event recorded so far was handled, its sends over.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Sends what is still pending (summaries, notices held back, events not read yet unless
    /// a backlog is under way, the sends under way) within `within`, then ends the task. What
    /// had no time stays unsent: events remain after the cursor and notices held back in the
    /// stored list, both sent at the next start (logged); summaries are lost (logged).
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
                "Shutdown grace over before every notice was sent: the events and throttled notices not sent yet are sent at the next start; pending run summaries are not."
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

    /// Hands `notice` (of event `seq`, if it is one) to its rules, without waiting for the sends.
    async fn send(&mut self, notice: &Notice, seq: Option<u64>) {
        let started = self.dispatcher.begin(notice, self.clock.now()).await;
        tracing::debug!(flow = %notice.flow, kind = %notice.kind, rules = started.len(), "Notice dispatched.");
        self.fly(started, seq);
    }

    /// Sends what the throttle held back in windows that have ended.
    async fn send_due(&mut self) {
        let started = self.dispatcher.begin_due(self.clock.now()).await;
        self.fly(started, None);
        self.store_cursor(self.flying.is_empty());
    }

    /// Sends the notices held back before the last stop or crash, from the stored list (see
    /// the module doc). A list that cannot be read is kept, and nothing is stored, until a
    /// read succeeds (the main loop calls this again meanwhile).
    async fn restore(&mut self) {
        let read = self.ledger.notify_held().map_err(|e| e.to_string());
        let held = read.map(|bytes| match bytes.as_deref().map(Held::decode).transpose() {
            Ok(held) => (bytes, held),
            // Not a list this version reads (written by another version, or damaged): told
            // whole in the log and written over. Kept, it would keep the cursor from being
            // stored for good, and every start would send every event again; what a throttle
            // holds back are repeats of notices already sent.
            Err(e) => {
                let text = String::from_utf8_lossy(bytes.as_deref().unwrap_or_default()).chars().take(4096).collect::<String>();
                tracing::error!(error = %e, list = %text, "The notices a throttle held back before the restart are not in a form this version reads; they are not sent (the list is in this line), and the list is written over.");
                (None, None)
            }
        });
        let (bytes, held) = match held {
            Ok(read) => read,
            Err(e) if self.held_unread => {
                return tracing::debug!(error = %e, "The notices held back before the restart still cannot be read.");
            }
            Err(e) => {
                self.held_unread = true;
                return tracing::error!(
                    error = %e,
                    "Notifier cannot read the notices a throttle held back before the restart; they are kept in the ledger, not sent yet, and nothing is stored (the cursor neither: events are read again at the next start) until they can be read, tried again as notices come. If this lasts: a ledger that fails to read (its disk, its permissions)."
                );
            }
        };
        if std::mem::take(&mut self.held_unread) {
            tracing::info!("The notices held back before the restart can be read now; the notifier stores its state again.");
        }
        let Some(held) = held else { return };
        self.stored_held = bytes.unwrap_or_default();
        if held.is_empty() {
            return;
        }
        tracing::info!(notices = held.len(), "Sending the notices a throttle held back before the restart.");
        let started = self.dispatcher.begin_restored(held, self.clock.now()).await;
        self.fly(started, None);
    }

    /// Sends what the throttle holds back, window ended or not (the daemon is stopping).
    async fn send_all_held(&mut self) {
        let started = self.dispatcher.begin_all_held(self.clock.now()).await;
        self.fly(started, None);
    }

    /// Keeps the sends under way (those of event `seq` keep the cursor before it).
    fn fly(&mut self, started: Vec<Started>, seq: Option<u64>) {
        let mut flying = 0;
        for s in started {
            match s {
                Started::Done(d) => self.count(&d),
                Started::Sending(f) => {
                    flying += 1;
                    self.flying.push(Box::pin(async move { (seq, f.land().await) }));
                }
            }
        }
        if let Some(seq) = seq.filter(|_| flying > 0) {
            self.open.insert(seq, flying);
        }
    }

    /// A send is over: records it, and moves the cursor past the events whose sends are all over.
    fn landed(&mut self, seq: Option<u64>, landed: Landed) {
        let d = self.dispatcher.land(landed, self.clock.now());
        self.count(&d);
        if let Some(seq) = seq
            && let Some(left) = self.open.get_mut(&seq)
        {
            *left -= 1;
            if *left == 0 {
                self.open.remove(&seq);
            }
        }
        // The last send over: the pump is idle, the cursor (and what is held back: a flushed
        // notice sent is held no more) is stored now.
        self.store_cursor(self.flying.is_empty());
    }

    /// The reading stopped at [`OPEN`] events open, and half of them are over since.
    fn may_read_on(&self) -> bool {
        self.behind && self.open.len() <= OPEN / 2
    }

    /// Reads the whole log, landing sends as they end, until every event recorded so far was
    /// handled and every send is over.
    async fn catch_up(&mut self) {
        self.events().await;
        loop {
            if let Some((seq, landed)) = self.flying.next().await {
                self.landed(seq, landed);
            } else if !self.behind {
                return;
            }
            if self.may_read_on() {
                self.events().await;
            }
        }
    }

    /// Waits for every send under way.
    async fn drain(&mut self) {
        while let Some((seq, landed)) = self.flying.next().await {
            self.landed(seq, landed);
        }
    }

    /// Stores the cursor — the last event read, or just before the first with sends under
    /// way — with the notices held back now, in one transaction (see the module doc), when
    /// either changed; at once with `now`, else only when last stored [`CURSOR_EVERY`] ago.
    /// Nothing before the first reading: the list stored by the last daemon is not replaced
    /// before it was read ([`restore`](Self::restore)).
    fn store_cursor(&mut self, now: bool) {
        let Some(read) = self.read.filter(|_| !self.held_unread) else { return };
        let done = self.open.keys().next().map_or(read, |first| first.saturating_sub(1));
        let due = now || self.stored_at.is_none_or(|t| t.elapsed() >= CURSOR_EVERY);
        if !due {
            return;
        }
        let held = match Held::encode(&self.dispatcher.held()) {
            Ok(held) => held,
            // Plain structs and JSON values: not expected; the list stored last stays.
            Err(e) => return tracing::error!(error = %e, "Notifier cannot encode the notices held back."),
        };
        if done > self.stored || held != self.stored_held {
            self.stored_at = Some(std::time::Instant::now());
            match self.ledger.set_notify_state(done, &held) {
                Ok(()) => (self.stored, self.stored_held) = (done.max(self.stored), held),
                Err(e) => tracing::error!(error = %e, "Notifier cannot store its cursor."),
            }
        }
    }

    fn count(&self, d: &crate::notify::Delivery) {
        match d.outcome {
            Outcome::Sent { .. } => self.metrics.notification(&d.channel, true),
            Outcome::Failed { .. } => self.metrics.notification(&d.channel, false),
            Outcome::HeldBack { .. } => {}
        }
    }

    /// Hands the events not read yet to their rules, moving the cursor past each whose sends
    /// are over, until the log is read or [`OPEN`] events are open (`behind`: the main loop
    /// reads on as their sends land). Nothing before the flows' rules are known: those events
    /// wait in the log (the cursor does not move). With nothing in flight afterwards, the
    /// cursor is stored at once (else the last send to land stores it).
    async fn events(&mut self) {
        self.read_events().await;
        if self.flying.is_empty() {
            self.store_cursor(true);
        }
    }

    /// The reading itself (see [`events`](Self::events)).
    async fn read_events(&mut self) {
        if !self.ready {
            return;
        }
        let ledger = self.ledger.clone();
        let mut cursor = match self.read {
            Some(read) => read,
            None => match ledger.notify_cursor() {
                Ok(Some(c)) => c,
                Ok(None) => match self
                    .history_ends
                    .map_or_else(|| ledger.last_event_seq(), Ok)
                    .and_then(|last| ledger.set_notify_cursor(last).map(|_| last))
                {
                    Ok(last) => last,
                    Err(e) => return tracing::error!(error = %e, "Notifier cannot read the ledger."),
                },
                Err(e) => return tracing::error!(error = %e, "Notifier cannot read the ledger."),
            },
        };
        if self.read.is_none() {
            (self.read, self.stored) = (Some(cursor), cursor);
        }
        tracing::debug!(cursor, "Notifier reading the event log.");
        loop {
            // Not behind on an error either: the next wake reads again (no busy loop).
            self.behind = false;
            if self.open.len() >= OPEN {
                self.behind = true;
                return;
            }
            let events = match ledger.events(None, cursor, BATCH) {
                Ok(e) => e,
                Err(e) => return tracing::error!(error = %e, "Notifier cannot read the event log."),
            };
            if events.is_empty() {
                return;
            }
            for ev in events {
                if self.open.len() >= OPEN {
                    self.behind = true;
                    return tracing::debug!(cursor, open = OPEN, "Notifier waits for sends to land before reading on.");
                }
                let mut n = notice(&ev);
                if ev.kind == EventKind::Quarantined {
                    n.facts = quarantine_facts(&ledger, &ev);
                }
                self.send(&n, Some(ev.seq)).await;
                cursor = ev.seq;
                self.read = Some(cursor);
                self.store_cursor(false);
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
        run: ev.run,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::NewEvent;
    use crate::schedule::SystemClock;

    /// A stored list of held notices in a form this version does not read (another version's,
    /// or damaged) is logged and written over: kept, it would keep the cursor from being stored
    /// for good, and every start would send every event again.
    #[tokio::test]
    async fn a_held_list_this_version_cannot_read_does_not_stop_the_cursor() {
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let ev = |kind| NewEvent { flow: "f".into(), at: 5, kind, subject: String::new(), detail: "d".into(), run: None };
        ledger.record_events(&[ev(EventKind::Failed), ev(EventKind::Failed)]).unwrap();
        ledger.set_notify_state(0, b"[{\"written by\": \"another version\"}]").unwrap();
        let n = Notifier::start(ledger.clone(), Vec::new(), Arc::new(SystemClock), Arc::new(Metrics::new()));
        n.set_rules(&[]);
        n.flush().await;
        assert_eq!(ledger.notify_cursor().unwrap(), Some(2), "the cursor goes on");
        assert_eq!(ledger.notify_held().unwrap(), Some(Held::encode(&[]).unwrap()), "written over");
        n.stop(Duration::from_secs(5)).await;
    }
}
