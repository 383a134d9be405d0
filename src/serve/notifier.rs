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
//! When the daemon stops ([`Notifier::stop`]), the task sends what it still has — run
//! summaries, notices held back by a throttle (early: windows are not kept across a restart),
//! the events not read yet (unless it is working through a backlog: the rest of that waits for
//! the next start), the sends under way — for as long as the caller allows, then ends. Events
//! it had no time for stay after the cursor and are sent at the next start, and so do the
//! notices held back and the run summaries that it had no time for (below).
//!
//! **Run summaries survive a crash.** A summary has no event in the log to read again: it is
//! built from the run's report, which only the daemon that ran it has. So
//! [`Notifier::run_finished`] has it stored in the ledger as *pending*, and only then handed
//! to the task (one commit per run, and only for a flow some rule takes `summary` for). The
//! store is made off the daemon's loop, by the blocking writer of `behind.rs` (a durable
//! commit held the loop up to 100 ms and more); at shutdown the daemon waits for these stores
//! ([`Notifier::stored`]) before it stops the task, whose drain then sends them. It leaves
//! the pending ones only in a store of the cursor (below) made once its sends are over — sent
//! or given up, as for events — or once a throttle holds it back, in the same transaction as
//! the list that then holds it. At the start, once the flows' rules are known, the pending
//! summaries are sent (after the notices held back, before any event is read), each once
//! (summaries that came before the rules wait for them, and go out with these). A crash
//! between a send and the next store sends that summary again: twice rather than never. What
//! is left: a crash between the run's end in the ledger and this store (the report crossing
//! from the run to the supervisor, and waiting for the writer) — a moment, not a send.
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
//!   Summaries held back are in the list too (they have no event to read again), stored in
//!   the transaction that takes them out of the pending ones.
//! - *Nothing sent twice in the normal case.* A notice leaves the list only when its send is
//!   over, and the list is stored again as soon as the task is idle: a clean stop sends what
//!   is held back (as before) and stores the empty list; a stop cut off by the grace leaves the
//!   rest in the list. At the start, the stored list is sent at once (as a clean stop would
//!   have), each notice through its rule as found again in the rules now set (by what it
//!   says, not where: [`Dispatcher::begin_restored`]), before any event is read, and leaves
//!   the list once sent. A crash between a send and the
//!   next store sends that notice again — the same trade as for events: twice rather than never.
//! - *A list the ledger fails to read is not written over.* Should the stored list not be
//!   read at the start (a ledger read error), it is kept as it is, and nothing is stored — the
//!   cursor neither: stored alone, it would pass events whose notices this daemon holds back
//!   in memory only. The read is tried again whenever the task has something to do; once it
//!   succeeds, the list is sent as at a start and storing resumes. Meanwhile the log says so
//!   (once, then at debug level); a crash in between reads this daemon's events again (twice
//!   rather than never). A list read but not in a form this version reads (written by another
//!   version — a newer one, rolled back from — or damaged) is set aside in the ledger, under a
//!   key of its own, and the log says so: not sent, but not lost for the version that wrote
//!   it, which sends it at its start (rolled forward again); the notifier stores its own list
//!   meanwhile, so the cursor goes on (kept where it was, the list would stop the cursor for
//!   good and every start would send every event again). Before, it was written over. A run
//!   summary pending that this version does not read is kept pending so, and said at each
//!   start (before, it was dropped).
//! - *No extra commits.* The list rides on the cursor's stores (at most every
//!   [`CURSOR_EVERY`], at once when idle), and is written only when it or the cursor changed
//!   (or a summary is no longer pending).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::behind::{Behind, Writes};
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
/// are over. Below a lane's [`QUEUED`]: the events alone never fill a channel's lane, so a
/// channel that is down does not fail them for want of room (and handing a notice to a lane
/// never waits in any case); the task keeps landing sends (moving the cursor) and answering
/// messages however long a backlog takes.
const OPEN: usize = QUEUED / 2;

enum Msg {
    Wake,
    Rules(Vec<(String, Vec<Rule>)>),
    /// A run's summary (its run number), stored in the ledger as pending.
    Summary(u64, Box<Notice>),
    Flush(oneshot::Sender<()>),
    /// Send everything still pending, answer, and end.
    Stop(oneshot::Sender<()>),
}

/// What a send under way is for: what the cursor or the pending summaries wait on.
#[derive(Debug, Clone, Copy)]
enum Of {
    /// The event of this sequence number.
    Event(u64),
    /// The summary of this run.
    Summary(u64),
    /// A notice held back (its send over, it leaves the stored list).
    Held,
}

/// The handle of the notifier task.
pub(super) struct Notifier {
    tx: mpsc::UnboundedSender<Msg>,
    task: Mutex<Option<JoinHandle<()>>>,
    ledger: Arc<Ledger>,
    /// Which flows' runs have a summary to send (`None`: not known yet, every run's is kept).
    summaries: Mutex<Option<Summaries>>,
    /// Run summaries to store as pending, then hand to the task (off the loop).
    stores: Arc<Behind<Stores>>,
}

/// Run summaries to store in the ledger as pending, in order, each handed to the task once
/// stored (or its store failed: then it is still sent, from memory).
struct Stores {
    queue: VecDeque<(String, u64, Notice)>,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Writes for Stores {
    /// The flow, the run, its summary.
    type Batch = (String, u64, Notice);
    type Out = ();

    fn take(&mut self, _: &Ledger) -> Option<Self::Batch> {
        self.queue.pop_front()
    }

    fn write(ledger: &Ledger, (flow, run, notice): &Self::Batch) {
        let stored =
            notice.encode().map_err(|e| e.to_string()).and_then(|bytes| ledger.put_notify_summary(*run, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = stored {
            // Still sent from memory; only a crash before then loses it.
            tracing::error!(flow = %flow, run, error = %e, "Notifier cannot store the run's summary; it is sent, but a crash before then loses it.");
        }
    }

    fn done(&mut self, (_, run, notice): Self::Batch, (): ()) {
        // Its events are in the log too: read after the summary, as the run left them.
        let _ = self.tx.send(Msg::Summary(run, Box::new(notice)));
        let _ = self.tx.send(Msg::Wake);
    }
}

/// Which flows have a rule taking `summary`.
struct Summaries {
    /// A global rule takes it: every flow.
    global: bool,
    flows: BTreeSet<String>,
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
    /// Sends under way, with what they are for.
    flying: FuturesUnordered<BoxFuture<'static, (Of, Landed)>>,
    /// Events read with sends still under way: how many, by sequence number.
    open: BTreeMap<u64, usize>,
    /// The last event read (`None`: not read yet; the stored cursor is where to start).
    read: Option<u64>,
    /// Run summaries with sends under way: how many, by run.
    summaries: BTreeMap<u64, usize>,
    /// Run summaries no longer pending (sent, failed, held back, or for no rule), to be
    /// removed from the ledger at the next store.
    summaries_over: BTreeSet<u64>,
    /// Summaries that came before the flows' rules: sent with the ledger's pending ones once
    /// the rules are known (through the flows' rules, not the global ones only).
    early: Vec<(u64, Notice)>,
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
    /// The newest event forgotten unsent that the log has told of (see
    /// [`note_forgotten`](Pump::note_forgotten)): told once.
    forgotten_told: u64,
}

impl Notifier {
    pub fn start(ledger: Arc<Ledger>, global: Vec<Rule>, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let global_summary = global.iter().any(|r| r.on.contains("summary"));
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
            summaries: BTreeMap::new(),
            summaries_over: BTreeSet::new(),
            early: Vec::new(),
            read: None,
            behind: false,
            stored: 0,
            stored_held: Vec::new(),
            held_unread: false,
            stored_at: None,
            history_ends,
            forgotten_told: 0,
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
                    Some((of, landed)) = pump.flying.next(), if !pump.flying.is_empty() => {
                        pump.landed(of, landed);
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
                            pump.restore_summaries().await;
                            pump.events().await;
                        }
                    }
                    Msg::Summary(run, notice) if !pump.ready => pump.early.push((run, *notice)),
                    Msg::Summary(run, notice) => {
                        pump.send(&notice, Of::Summary(run)).await;
                        // Over (held back, or no rule): no longer pending, stored when idle.
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
        let summaries = Mutex::new(global_summary.then(|| Summaries { global: true, flows: BTreeSet::new() }));
        let stores = Behind::new(ledger.clone(), Stores { queue: VecDeque::new(), tx: tx.clone() });
        Notifier { tx, task: Mutex::new(Some(task)), ledger, summaries, stores }
    }

    /// New events may be in the log.
    pub fn wake(&self) {
        let _ = self.tx.send(Msg::Wake);
    }

    /// Sets the flows' own rules (at start: no event is read before this), or replaces them
    /// after a reload.
    pub fn set_rules(&self, flows: &[Arc<Flow>]) {
        {
            let mut summaries = crate::sync::lock(&self.summaries);
            let global = summaries.as_ref().is_some_and(|s| s.global);
            let flows = flows.iter().filter(|f| f.notify.iter().any(|r| r.on.contains("summary"))).map(|f| f.name.clone()).collect();
            *summaries = Some(Summaries { global, flows });
        }
        let rules = flows.iter().map(|f| (f.name.clone(), f.notify.clone())).collect();
        let _ = self.tx.send(Msg::Rules(rules));
    }

    /// A run finished: its events are in the log; its summary goes to rules that want one,
    /// stored in the ledger first (pending until its sends are over: a crash or a stop cut
    /// off before then sends it at the next start). The store is made off the caller (the
    /// daemon's loop): never waits for the ledger.
    pub fn run_finished(&self, flow: Option<&Flow>, report: &RunReport) {
        match flow.filter(|f| self.wants_summary(&f.name)) {
            // Woken once it is handed over.
            Some(flow) => self.stores.change(|s| s.queue.push_back((flow.name.clone(), report.run, summary(report, flow)))),
            None => self.wake(),
        }
    }

    /// Waits until every run summary so far is stored (or failed and logged) and handed to
    /// the task: before [`Notifier::stop`], whose drain then sends them.
    pub async fn stored(&self) {
        self.stores.written().await;
    }

    /// Some rule takes the summaries of `flow`'s runs (or the rules are not known yet).
    fn wants_summary(&self, flow: &str) -> bool {
        crate::sync::lock(&self.summaries).as_ref().is_none_or(|s| s.global || s.flows.contains(flow))
    }

    /// Waits until every event recorded so far, and every run summary handed over, was
    /// handled, its sends over.
    pub async fn flush(&self) {
        self.stored().await;
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Sends what is still pending (summaries, notices held back, events not read yet unless
    /// a backlog is under way, the sends under way) within `within`, then ends the task. What
    /// had no time stays unsent: events remain after the cursor, notices held back in the
    /// stored list and summaries in the ledger's pending ones, all sent at the next start
    /// (logged).
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
        // Cut off with nothing left (a grace a run had used up): nothing to warn of.
        if let Some(Left { unsent, held, summaries }) = cut_off.then(|| Left::in_ledger(&self.ledger)).flatten() {
            tracing::warn!(
                within_s = within.as_secs_f64(),
                unsent,
                held,
                summaries,
                "Shutdown grace over before every notice was sent: the events, throttled notices and run summaries not sent yet are sent at the next start."
            );
        }
    }
}

/// What a notifier stopped before it was done left to send at the next start.
#[derive(Debug, PartialEq, Eq)]
struct Left {
    /// Events after the cursor.
    unsent: u64,
    /// Notices held back by throttles.
    held: usize,
    /// Run summaries not sent yet.
    summaries: usize,
}

impl Left {
    /// What `ledger` holds unsent; `None` when nothing. A list or store it cannot read counts
    /// as one: something may be in it.
    fn in_ledger(ledger: &Ledger) -> Option<Left> {
        let cursor = ledger.notify_cursor().ok().flatten().unwrap_or(0);
        let unsent = ledger.last_event_seq().map(|last| last.saturating_sub(cursor)).unwrap_or(0);
        let held = ledger.notify_held().map_or(1, |b| b.map_or(0, |b| Held::decode(&b).map_or(1, |h| h.len())));
        let summaries = ledger.notify_summaries().map_or(1, |s| s.len());
        (unsent > 0 || held > 0 || summaries > 0).then_some(Left { unsent, held, summaries })
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

    /// Hands `notice` (`of` an event or a run's summary) to its rules, without waiting for the sends.
    async fn send(&mut self, notice: &Notice, of: Of) {
        let started = self.dispatcher.begin(notice, self.clock.now()).await;
        tracing::debug!(flow = %notice.flow, kind = %notice.kind, rules = started.len(), "Notice dispatched.");
        self.fly(started, of);
    }

    /// Sends what the throttle held back in windows that have ended.
    async fn send_due(&mut self) {
        let started = self.dispatcher.begin_due(self.clock.now()).await;
        self.fly(started, Of::Held);
        self.store_cursor(self.flying.is_empty());
    }

    /// Sends the notices held back before the last stop or crash, from the stored list (see
    /// the module doc). A list that cannot be read from the ledger is kept, and nothing is
    /// stored, until a read succeeds (the main loop calls this again meanwhile). A list this
    /// version does not read (a newer wharf's, after a rollback) is set aside in the ledger,
    /// not written over, and said; one set aside before that it reads now is sent.
    async fn restore(&mut self) {
        let settled = self.ledger.settle_notify_held(Held::settle).map_err(|e| e.to_string());
        let settled = match settled {
            Ok(settled) => settled,
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
        if let Some(e) = &settled.unreadable {
            // Written over, they would be lost to the wharf that wrote them (rolled forward
            // again); what a throttle holds back are repeats of notices already sent.
            tracing::warn!(error = %e, "The notices a throttle held back before the restart are not in a form this version reads (written by another version); they are not sent, and are kept in the ledger, set aside: the version that wrote them sends them at its start.");
        }
        if !settled.unread.is_empty() {
            tracing::warn!(
                lists = settled.unread.len(),
                "Lists of notices held back that this version does not read are kept in the ledger, set aside at an earlier start; the version that wrote them sends them at its start."
            );
        }
        if !settled.adopted.is_empty() {
            tracing::info!(
                lists = settled.adopted.len(),
                "Lists of notices held back, set aside by another version at an earlier start, are read now and sent."
            );
        }
        self.stored_held = settled.stored;
        if settled.list.is_empty() {
            return;
        }
        tracing::info!(notices = settled.list.len(), "Sending the notices a throttle held back before the restart.");
        let started = self.dispatcher.begin_restored(settled.list, self.clock.now()).await;
        self.fly(started, Of::Held);
    }

    /// Sends the run summaries pending in the ledger (those of runs that finished before the
    /// last crash or stop without their sends being over) and those that came before the
    /// flows' rules, once each, oldest run first. Each stays pending in the ledger until its
    /// sends are over (see the module doc). A pending summary this version cannot read is
    /// said and kept pending in the ledger.
    async fn restore_summaries(&mut self) {
        let mut pending: BTreeMap<u64, Notice> = BTreeMap::new();
        match self.ledger.notify_summaries() {
            Ok(stored) => {
                for (run, bytes) in stored {
                    match Notice::decode(&bytes) {
                        Ok(notice) => {
                            pending.insert(run, notice);
                        }
                        // Kept pending in the ledger (not dropped): the version that wrote
                        // it sends it at its start.
                        Err(e) => {
                            tracing::warn!(run, error = %e, "A run summary pending before the restart is not in a form this version reads (written by another version); it is not sent, and is kept in the ledger: the version that wrote it sends it at its start.");
                        }
                    }
                }
            }
            // Left in the ledger: sent at the next start.
            Err(e) => {
                tracing::error!(error = %e, "Notifier cannot read the run summaries pending before the restart; they are sent at the next start.")
            }
        }
        for (run, notice) in std::mem::take(&mut self.early) {
            pending.entry(run).or_insert(notice);
        }
        if !pending.is_empty() {
            tracing::info!(summaries = pending.len(), "Sending the run summaries not sent before the restart.");
        }
        for (run, notice) in pending {
            self.send(&notice, Of::Summary(run)).await;
        }
    }

    /// Sends what the throttle holds back, window ended or not (the daemon is stopping).
    async fn send_all_held(&mut self) {
        let started = self.dispatcher.begin_all_held(self.clock.now()).await;
        self.fly(started, Of::Held);
    }

    /// Keeps the sends under way (those of event `seq` keep the cursor before it; those of a
    /// summary keep it pending).
    fn fly(&mut self, started: Vec<Started>, of: Of) {
        let mut flying = 0;
        for s in started {
            match s {
                Started::Done(d) => self.count(&d),
                Started::Sending(f) => {
                    flying += 1;
                    self.flying.push(Box::pin(async move { (of, f.land().await) }));
                }
            }
        }
        match of {
            Of::Event(seq) if flying > 0 => {
                self.open.insert(seq, flying);
            }
            Of::Summary(run) if flying > 0 => {
                self.summaries.insert(run, flying);
            }
            // Held back (then in the list stored with it) or for no rule.
            Of::Summary(run) => {
                self.summaries_over.insert(run);
            }
            Of::Event(_) | Of::Held => {}
        }
    }

    /// A send is over: records it, and moves the cursor past the events whose sends are all
    /// over (a summary whose sends are all over is no longer pending).
    fn landed(&mut self, of: Of, landed: Landed) {
        let d = self.dispatcher.land(landed, self.clock.now());
        self.count(&d);
        let (open, key) = match of {
            Of::Event(seq) => (&mut self.open, seq),
            Of::Summary(run) => (&mut self.summaries, run),
            Of::Held => return self.store_cursor(self.flying.is_empty()),
        };
        if let Some(left) = open.get_mut(&key) {
            *left -= 1;
            if *left == 0 {
                open.remove(&key);
                if let Of::Summary(run) = of {
                    self.summaries_over.insert(run);
                }
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
            if let Some((of, landed)) = self.flying.next().await {
                self.landed(of, landed);
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
        while let Some((of, landed)) = self.flying.next().await {
            self.landed(of, landed);
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
        if done > self.stored || held != self.stored_held || !self.summaries_over.is_empty() {
            self.stored_at = Some(std::time::Instant::now());
            let over: Vec<u64> = self.summaries_over.iter().copied().collect();
            match self.ledger.set_notify_state(done, &held, &over) {
                Ok(()) => {
                    (self.stored, self.stored_held) = (done.max(self.stored), held);
                    self.summaries_over.clear();
                }
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
        self.note_forgotten(cursor);
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
                self.send(&n, Of::Event(ev.seq)).await;
                cursor = ev.seq;
                self.read = Some(cursor);
                self.store_cursor(false);
            }
        }
    }
}

impl Pump {
    /// Says once that events after `cursor` were forgotten before any daemon sent them (a
    /// ledger run from cron while no daemon served it, for longer than the flows' `history`
    /// and a week: `ledger::prune`). They are skipped: the log reads on from those left.
    fn note_forgotten(&mut self, cursor: u64) {
        match self.ledger.forgotten_unsent(cursor.max(self.forgotten_told)) {
            Ok(Some((count, upto))) => {
                self.forgotten_told = upto;
                tracing::warn!(
                    cursor,
                    forgotten = count,
                    upto,
                    "Notifier skips events recorded while no daemon sent them and since forgotten (older than their flow's `history` and a week); it goes on with the events left."
                );
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "Notifier cannot read the ledger."),
        }
    }
}

/// What the ledger knows of a quarantined file: where the copy and its reports went, why, and
/// its record counts (`facts` of a `quarantined` notice).
/// The file of the event's run, when a newer file was taken under its name since (the notice
/// sent late, held back by a throttle): its own copy, not the newer file's.
fn quarantine_facts(ledger: &Ledger, ev: &Event) -> serde_json::Value {
    // Reports show paths as `/in/a.csv`; the ledger keys them without the leading slash.
    let path = ev.subject.trim_start_matches('/');
    let of_run = ledger
        .quarantined_files(&ev.flow, Some(path))
        .ok()
        .and_then(|all| all.into_iter().rev().find(|f| ev.run.is_none_or(|run| f.result.run == run)))
        .map(|f| f.result);
    match of_run.or_else(|| ledger.file_result(&ev.flow, path).ok().flatten()) {
        Some(r) => serde_json::json!({ "quarantine": r.quarantine, "records": r.counts, "run": r.run }),
        None => serde_json::json!({}),
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
    // Reads as `wharf run`'s summary: zero counts left out, but `N delivered`.
    let detail = format!("run {}: {}", report.run, report.outcome_line(true));
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

    /// A `quarantined` notice sent after a newer file was taken under the name (and
    /// quarantined too) gives the copy of the file of its run, not the newer one's.
    #[test]
    fn a_late_quarantined_notice_names_the_copy_of_its_own_file() {
        use crate::ledger::{FileRecord, FileResult, FileState, QuarantineRecord};
        let ledger = Ledger::in_memory().unwrap();
        for (run, seen) in [(1, 10), (2, 20)] {
            let rec = FileRecord {
                path: "in/a.csv".into(),
                identity: format!("id{run}"),
                first_seen: seen,
                state: FileState::Quarantined,
                run,
                ..Default::default()
            };
            let q = QuarantineRecord { endpoint: "q".into(), copy: Some(format!("bad/a-{run}.csv")), at: seen, ..Default::default() };
            ledger.put_file_and_result("f", &rec, &FileResult { run, quarantine: Some(q), ..Default::default() }).unwrap();
        }
        let ev = |run| Event {
            seq: 1,
            flow: "f".into(),
            at: 1,
            kind: EventKind::Quarantined,
            subject: "/in/a.csv".into(),
            detail: String::new(),
            run,
        };
        assert_eq!(quarantine_facts(&ledger, &ev(Some(1)))["quarantine"]["copy"], "bad/a-1.csv");
        assert_eq!(quarantine_facts(&ledger, &ev(Some(2)))["quarantine"]["copy"], "bad/a-2.csv");
        assert_eq!(quarantine_facts(&ledger, &ev(None))["quarantine"]["copy"], "bad/a-2.csv");
        let other = Event { subject: "/in/b.csv".into(), ..ev(Some(1)) };
        assert_eq!(quarantine_facts(&ledger, &other), serde_json::json!({}));
    }

    /// A stored list of held notices in a form this version does not read (another version's,
    /// or damaged) does not stop the cursor, and is not lost: set aside in the ledger (before,
    /// it was written over), and sent by a version that reads it at its start (here, read
    /// again once it reads). A run summary it does not read stays pending (it was dropped).
    #[tokio::test]
    async fn a_held_list_this_version_cannot_read_does_not_stop_the_cursor_and_is_kept() {
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let ev = |kind| NewEvent { flow: "f".into(), at: 5, kind, subject: String::new(), detail: "d".into(), run: None };
        ledger.record_events(&[ev(EventKind::Failed), ev(EventKind::Failed)]).unwrap();
        let newer = b"[{\"written by\": \"another version\"}]";
        ledger.set_notify_state(0, newer, &[]).unwrap();
        ledger.put_notify_summary(3, b"{\"a summary\": \"of another version\"}").unwrap();
        let aside = || {
            ledger
                .settle_notify_held(|_, aside| crate::ledger::Settle {
                    held: None,
                    set_aside: false,
                    adopted: vec![],
                    answer: aside.to_vec(),
                })
                .unwrap()
        };
        let n = Notifier::start(ledger.clone(), Vec::new(), Arc::new(SystemClock), Arc::new(Metrics::new()));
        n.set_rules(&[]);
        n.flush().await;
        assert_eq!(ledger.notify_cursor().unwrap(), Some(2), "the cursor goes on");
        assert_eq!(ledger.notify_held().unwrap(), Some(Held::encode(&[]).unwrap()), "its own list stored");
        assert_eq!(aside(), [(1, newer.to_vec())], "the other version's list is kept");
        n.stop(Duration::from_secs(5)).await;
        assert_eq!(ledger.notify_summaries().unwrap().len(), 1, "the summary it does not read is kept");

        // The list set aside, in a form read now: sent at the start (no rule here: logged),
        // and set aside no more.
        let h = Held { rule: "r".into(), identity: None, channel: None, notice: crate::notify::sample_notice(), held: 1 };
        let readable = Held::encode(&[h]).unwrap();
        ledger.set_notify_state(0, &readable, &[]).unwrap();
        ledger.settle_notify_held(|_, _| crate::ledger::Settle { held: None, set_aside: true, adopted: vec![1], answer: () }).unwrap();
        assert_eq!(aside(), [(2, readable)]);
        let n = Notifier::start(ledger.clone(), Vec::new(), Arc::new(SystemClock), Arc::new(Metrics::new()));
        n.set_rules(&[]);
        n.flush().await;
        assert!(aside().is_empty(), "read and sent");
        assert_eq!(ledger.notify_held().unwrap(), Some(Held::encode(&[]).unwrap()));
        n.stop(Duration::from_secs(5)).await;
    }

    /// A ledger served once, then run from cron for months: the events after the daemon's
    /// cursor that pruning forgot unsent are skipped, the log says so once, and the events
    /// left are sent.
    #[test]
    fn a_notifier_resuming_after_unsent_events_were_forgotten_skips_them_and_says_so() {
        use crate::ledger::prune::{ForgetDelivered, Prune};
        const DAY: i64 = 86_400_000;
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let ev = |at| NewEvent { flow: "f".into(), at, kind: EventKind::Failed, subject: String::new(), detail: "d".into(), run: None };
        ledger.record_events(&[ev(DAY), ev(2 * DAY), ev(3 * DAY), ev(150 * DAY)]).unwrap();
        ledger.set_notify_cursor(1).unwrap();
        let p = Prune { flow: "f", cutoff: 100 * DAY, listed: None, forget_delivered: ForgetDelivered::Never, limit: 100 };
        assert_eq!(ledger.prune(&p, 190 * DAY).unwrap().events, 3);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ((), lines) = crate::log_capture::Log::default().of(|| {
            rt.block_on(async {
                let n = Notifier::start(ledger.clone(), Vec::new(), Arc::new(SystemClock), Arc::new(Metrics::new()));
                n.set_rules(&[]);
                n.flush().await;
                ledger.record_events(&[ev(151 * DAY)]).unwrap();
                n.wake();
                n.flush().await;
                n.stop(Duration::from_secs(5)).await;
            })
        });
        assert_eq!(ledger.notify_cursor().unwrap(), Some(5), "the events left are read");
        let told: Vec<&String> = lines.iter().filter(|l| l.contains("Notifier skips events")).collect();
        assert_eq!(told.len(), 1, "{lines:#?}");
        assert!(told[0].contains("forgotten=2") && told[0].contains("upto=3"), "{}", told[0]);
    }

    /// A stop with no grace left (a run had used it up) warns of unsent notices only when
    /// something is left to send (was: always, `unsent=0`).
    #[test]
    fn a_stop_cut_off_warns_only_of_what_is_left_to_send() {
        let ledger = Ledger::in_memory().unwrap();
        assert_eq!(Left::in_ledger(&ledger), None);
        let ev = NewEvent { flow: "f".into(), at: 5, kind: EventKind::Failed, subject: String::new(), detail: "d".into(), run: None };
        ledger.record_events(&[ev]).unwrap();
        ledger.put_notify_summary(3, b"{}").unwrap();
        assert_eq!(Left::in_ledger(&ledger), Some(Left { unsent: 1, held: 0, summaries: 1 }));
        ledger.set_notify_state(1, &Held::encode(&[]).unwrap(), &[3]).unwrap();
        assert_eq!(Left::in_ledger(&ledger), None, "read, sent, none held");
    }

    /// A run summary is stored off the caller (the daemon's loop): handing it over never
    /// waits for the ledger, here held by another write as a run's group commit holds it; the
    /// task gets it only once it is stored, then a wake for the run's events. Before, the loop
    /// made the commit itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_summary_is_stored_off_the_loop_and_handed_over_once_stored() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Arc::new(Ledger::open(&dir.path().join("ledger.redb")).unwrap());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let stores = Behind::new(ledger.clone(), Stores { queue: VecDeque::new(), tx });
        let held = super::super::behind::HeldWrite::hold(&ledger);
        let notice = Notice { kind: "summary".into(), run: Some(7), ..crate::notify::sample_notice() };
        let (done, handed) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Handle::current();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _rt = rt.enter();
                stores.change(|s| s.queue.push_back(("f".into(), 7, notice.clone())));
                done.send(()).unwrap();
            });
            let returned = handed.recv_timeout(std::time::Duration::from_secs(5));
            // Not handed to the task before it is stored.
            let early = rx.try_recv().is_ok();
            held.release();
            returned.expect("handing a summary over does not wait for the ledger");
            assert!(!early, "handed to the task before it was stored");
        });
        stores.written().await;
        assert_eq!(ledger.notify_summaries().unwrap(), [(7, notice.encode().unwrap())]);
        assert!(matches!(rx.recv().await, Some(Msg::Summary(7, n)) if *n == notice));
        assert!(matches!(rx.recv().await, Some(Msg::Wake)));
    }

    /// A run's `summary` notice said every count (`0 failed, 0 quarantined, 0 not ready, 0
    /// skipped, 0 bytes`) where `wharf run` leaves zero ones out: its text reads as the run's
    /// summary now; its facts, what templates read, keep every figure.
    #[test]
    fn the_summary_notice_reads_like_the_run_summary() {
        let yaml = "name: f\nendpoints:\n  a: { type: local, root: /tmp }\nsource: { endpoint: a, path: / }\nsinks: [ { endpoint: a, path: /out } ]\n";
        let flow = crate::config::load_flow_str(yaml, std::path::Path::new("f.yaml")).unwrap();
        let mut report = RunReport::empty("f", 4);
        assert_eq!(summary(&report, &flow).detail, "run 4: ok — 0 delivered (0 bytes)");
        report.counts = crate::ledger::Counts { seen: 3, delivered: 2, failed: 1, bytes: 42, ..Default::default() };
        (report.quarantined, report.status) = (1, crate::ledger::RunStatus::Failed);
        let notice = summary(&report, &flow);
        assert_eq!(notice.detail, "run 4: failed — 3 seen, 2 delivered, 1 failed, 1 quarantined (42 bytes)");
        assert_eq!((notice.facts["counts"]["skipped"].as_u64(), notice.facts["counts"]["not_ready"].as_u64()), (Some(0), Some(0)));
    }
}
