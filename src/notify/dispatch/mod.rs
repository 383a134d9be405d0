//! The [`Dispatcher`]: which rules a notice goes to, what is held back, and delivery with
//! retries.
//!
//! A notice goes to the matching rules of its flow and to the matching global rules. Per rule,
//! a notice with the same (flow, kind, subject) as one the rule sent less than `throttle` ago
//! is held back and counted (`recovered` is never held back). Held back is not dropped: when
//! the window ends, the latest notice held back is sent, saying how many others were
//! ([`Dispatcher::send_due`], at [`Dispatcher::next_due`]); a new notice arriving first goes
//! out instead, with the count. A reload keeps the throttle state of every rule that did not
//! change; a rule changed or removed (its flow's file changed or went away) is retired: it
//! takes no new notice, but what it held back still goes out, through it, when its window
//! ends ([`Dispatcher::set_flow`]).
//!
//! Each rule's channel has a lane of its own (`lane.rs`), which sends its notices one at a
//! time, in order, beside the other lanes: a slow channel delays its own notices only.
//! [`Dispatcher::begin`] hands a notice to its lanes and returns without waiting for the sends,
//! nor for room in a lane (a lane past its bounds refuses the notice: it fails at once);
//! [`Dispatcher::land`] records each outcome when it comes.
//!
//! The throttle does not wait for the outcome: a send under way counts as sent, so a similar
//! notice meanwhile is held back, as it would have been after the send; should the send fail,
//! the window it opened is undone, and what it held back meanwhile is due at once.
//! [`Dispatcher::dispatch`] does both and waits (for callers that send one notice at a time).
//!
//! What the throttles hold back is listed for the caller to keep across a crash, and sent by
//! a new dispatcher from that list (`held.rs`).
//!
//! Time is passed in (`now`); nothing here reads the system clock. Only the backoff between
//! attempts waits in real time. Failures are logged with fields, naming the channel by its
//! description (never a URL or secret).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, oneshot};
use tracing::{debug, error, info};

use super::{Notice, Notifier, NotifyError, RECOVERED, Rule};
pub use held::{Held, Settled};
use lane::{Job, Lane, Refused};
pub use lane::{QUEUED, RetryPolicy, SENDING, WAITING, WAITING_BYTES};

mod held;
mod lane;

/// What became of a notice on one channel.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// [`Notifier::describe`] of the channel.
    pub channel: String,
    pub outcome: Outcome,
}

/// The result of one channel's delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Sent, after this many attempts, saying that `held_back` similar notices were held back.
    Sent { attempts: u32, held_back: u32 },
    /// Held back by the throttle; `held` similar notices (this one included) are now waiting
    /// to be mentioned by the next one sent.
    HeldBack { held: u32 },
    /// Not sent: the last error, after this many attempts.
    Failed { attempts: u32, error: NotifyError },
}

/// A notice's subject as a log field: left out when it has none (a run's failure is about the
/// flow), rather than logged as `subject=` or `subject=""`.
fn subject(s: &str) -> Option<tracing::field::DisplayValue<&str>> {
    (!s.is_empty()).then(|| tracing::field::display(s))
}

/// Route and send identities (unique in the process).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// The throttle window of one (flow, kind, subject) on one rule.
#[derive(Debug, Clone)]
struct Window {
    last_sent: DateTime<Utc>,
    held: u32,
    /// The latest notice held back, sent when the window ends (when `held` > 0).
    latest: Option<Notice>,
    /// The send that opened the window, while it is under way (undone if it fails).
    by: Option<u64>,
}

impl Window {
    fn sent(at: DateTime<Utc>) -> Self {
        Window { last_sent: at, held: 0, latest: None, by: None }
    }

    /// When it ends, for a rule with this `throttle`.
    fn ends(&self, throttle: Duration) -> DateTime<Utc> {
        chrono::Duration::from_std(throttle).ok().and_then(|t| self.last_sent.checked_add_signed(t)).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// What one route does with a notice.
enum Step {
    /// Hold it back and count it.
    Hold(Notice),
    /// Send it, saying how many similar notices were held back; `flushed` when it is the
    /// latest held back, sent because its window ended.
    Send { notice: Notice, held_back: u32, flushed: bool },
}

type Key = (String, String, String);

/// Makes the notifier of a rule ([`Rule::notifier`]; tests make their own).
type MakeNotifier = dyn Fn(&Rule) -> Result<Arc<dyn Notifier>, NotifyError>;

/// A rule with its notifier and throttle state.
struct Route {
    id: u64,
    /// The rule it was made from (`None`: added with [`Dispatcher::add_global`]).
    rule: Option<Rule>,
    on: BTreeSet<String>,
    throttle: Duration,
    notifier: Arc<dyn Notifier>,
    windows: HashMap<Key, Window>,
    /// The channel's lane, started on first use.
    lane: Option<Lane>,
}

impl Route {
    fn new(on: BTreeSet<String>, throttle: Duration, notifier: Arc<dyn Notifier>) -> Self {
        Route { id: next_id(), rule: None, on, throttle, notifier, windows: HashMap::new(), lane: None }
    }

    /// The channel's lane, started on first use (again, should it have ended).
    fn lane(&mut self, sending: &Arc<Semaphore>) -> Lane {
        if let Some(lane) = self.lane.as_ref().filter(|lane| !lane.is_closed()) {
            return lane.clone();
        }
        let lane = Lane::start(Arc::clone(&self.notifier), sending);
        self.lane = Some(lane.clone());
        lane
    }

    fn from_rule(rule: &Rule, make: &MakeNotifier) -> Result<Self, NotifyError> {
        Ok(Route { rule: Some(rule.clone()), ..Route::new(rule.on.clone(), rule.throttle, make(rule)?) })
    }

    /// Some notice is held back, waiting for its window to end.
    fn holds(&self) -> bool {
        self.windows.values().any(|w| w.latest.is_some())
    }

    /// Still within the window of the last one sent for `key`.
    fn holds_back(&self, key: &Key, kind: &str, now: DateTime<Utc>) -> bool {
        kind != RECOVERED && !self.throttle.is_zero() && self.windows.get(key).is_some_and(|w| now < w.ends(self.throttle))
    }

    /// Forgets windows that are over and hold nothing back.
    fn prune(&mut self, now: DateTime<Utc>) {
        let throttle = self.throttle;
        self.windows.retain(|_, w| w.held > 0 || now < w.ends(throttle));
    }
}

/// Sends notices to the rules they match: global rules, and each flow's own.
pub struct Dispatcher {
    global: Vec<Route>,
    flows: HashMap<String, Vec<Route>>,
    /// Rules no longer in force (changed or removed by a reload) that still hold notices
    /// back: they match nothing new, and are dropped once what they held went out.
    retired: Vec<Route>,
    retry: RetryPolicy,
    /// Permits for the sends under way, shared by every lane.
    sending: Arc<Semaphore>,
    /// Held-back notices being sent (their window ended, or everything held is sent), by
    /// send: still [`held`](Self::held) until the send is over.
    flushing: HashMap<u64, Held>,
}

/// What [`Dispatcher::begin`] did with a notice on one matching rule.
pub enum Started {
    /// Already decided (held back by the throttle).
    Done(Delivery),
    /// Handed to the channel's lane: [`InFlight::land`] waits for the outcome, which goes
    /// back to [`Dispatcher::land`].
    Sending(InFlight),
}

/// A send under way on a channel's lane.
pub struct InFlight {
    flight: Flight,
    reply: oneshot::Receiver<(u32, Result<(), NotifyError>)>,
}

/// What a send was, for recording its outcome.
struct Flight {
    id: u64,
    route: u64,
    key: Key,
    channel: String,
    held_back: u32,
    flushed: bool,
    /// The window the send replaced (put back if it fails).
    before: Option<Box<Window>>,
}

/// A send that is over, to record with [`Dispatcher::land`].
pub struct Landed {
    flight: Flight,
    attempts: u32,
    result: Result<(), NotifyError>,
}

impl InFlight {
    /// Waits for the send to be over (retries included).
    pub async fn land(self) -> Landed {
        let (attempts, result) = self.reply.await.unwrap_or_else(|_| {
            (0, Err(NotifyError::permanent(&self.flight.channel, "the channel's sender stopped before sending the notice")))
        });
        Landed { flight: self.flight, attempts, result }
    }
}

impl Dispatcher {
    /// A dispatcher with the `global` rules (those of the serve configuration) and no flow
    /// rules yet. Fails when a rule's channel cannot be set up (see [`Rule::notifier`]).
    pub fn new(global: &[Rule]) -> Result<Self, NotifyError> {
        let global = global.iter().map(|r| Route::from_rule(r, &Rule::notifier)).collect::<Result<_, _>>()?;
        let sending = Arc::new(Semaphore::new(SENDING));
        Ok(Dispatcher {
            global,
            flows: HashMap::new(),
            retired: Vec::new(),
            retry: RetryPolicy::default(),
            sending,
            flushing: HashMap::new(),
        })
    }

    /// Replaces the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets (or replaces, after a reload) the rules of `flow`. A rule equal to one the flow
    /// had keeps its throttle state (a reload of an unchanged rule holds back and sends as if
    /// nothing happened); a new rule starts afresh; a rule that is gone is retired: what it
    /// held back is sent through it when its window ends. On an error (a channel that cannot
    /// be set up) nothing changes.
    pub fn set_flow(&mut self, flow: &str, rules: &[Rule]) -> Result<(), NotifyError> {
        self.set_flow_with(flow, rules, &Rule::notifier)
    }

    /// [`set_flow`](Self::set_flow), with the notifiers of new rules made by `make`.
    fn set_flow_with(&mut self, flow: &str, rules: &[Rule], make: &MakeNotifier) -> Result<(), NotifyError> {
        /// Where each new route comes from.
        enum Source {
            Kept(usize),
            New(Box<Route>),
        }
        let old = self.flows.get(flow).map(Vec::as_slice).unwrap_or_default();
        let mut taken = vec![false; old.len()];
        let mut sources = Vec::with_capacity(rules.len());
        for rule in rules {
            match (0..old.len()).find(|&i| !taken[i] && old[i].rule.as_ref() == Some(rule)) {
                Some(i) => {
                    taken[i] = true;
                    sources.push(Source::Kept(i));
                }
                None => sources.push(Source::New(Box::new(Route::from_rule(rule, make)?))),
            }
        }
        let mut old: Vec<Option<Route>> = self.flows.remove(flow).unwrap_or_default().into_iter().map(Some).collect();
        let routes: Vec<Route> = sources
            .into_iter()
            .filter_map(|s| match s {
                // Each old route is taken at most once (`taken`).
                Source::Kept(i) => old[i].take(),
                Source::New(r) => Some(*r),
            })
            .collect();
        for gone in old.into_iter().flatten() {
            self.retire(gone);
        }
        if !routes.is_empty() {
            self.flows.insert(flow.to_string(), routes);
        }
        Ok(())
    }

    /// Forgets the rules of `flow` (a flow file was removed); what they held back is still
    /// sent when its window ends.
    pub fn remove_flow(&mut self, flow: &str) {
        for gone in self.flows.remove(flow).unwrap_or_default() {
            self.retire(gone);
        }
    }

    /// Keeps a route no longer in force for as long as it holds a notice back.
    fn retire(&mut self, route: Route) {
        if route.holds() {
            self.retired.push(route);
        }
    }

    /// Adds a global route to any [`Notifier`] (for embedding and tests): notices whose kind is
    /// in `on`, throttled like a rule.
    pub fn add_global(&mut self, on: impl IntoIterator<Item = impl Into<String>>, throttle: Duration, notifier: Arc<dyn Notifier>) {
        self.global.push(Route::new(on.into_iter().map(Into::into).collect(), throttle, notifier));
    }

    /// Sends `notice` to every matching rule — `notice.flow`'s, then the global ones — and
    /// says what became of it on each (nothing when no rule matches), once every send is
    /// over. `now` is the time the throttle windows are measured with.
    pub async fn dispatch(&mut self, notice: &Notice, now: DateTime<Utc>) -> Vec<Delivery> {
        let started = self.begin(notice, now).await;
        self.finish(started, now).await
    }

    /// Like [`dispatch`](Self::dispatch), without waiting: the notice is held back or handed
    /// to each channel's lane, and the sends under way are returned to be landed.
    pub async fn begin(&mut self, notice: &Notice, now: DateTime<Utc>) -> Vec<Started> {
        let key: Key = (notice.flow.clone(), notice.kind.clone(), notice.subject.clone());
        let Dispatcher { global, flows, retry, sending, flushing, .. } = self;
        let routes: Vec<&mut Route> =
            flows.get_mut(&notice.flow).into_iter().flatten().chain(global.iter_mut()).filter(|r| r.on.contains(&notice.kind)).collect();
        let steps = routes
            .iter()
            .enumerate()
            .map(|(i, route)| {
                let step = if route.holds_back(&key, &notice.kind, now) {
                    Step::Hold(notice.clone())
                } else {
                    Step::Send { notice: notice.clone(), held_back: route.windows.get(&key).map_or(0, |w| w.held), flushed: false }
                };
                (i, key.clone(), step)
            })
            .collect();
        start(routes, steps, *retry, sending, flushing, now).await
    }

    /// Records the outcome of a send [`begin`](Self::begin) (or the `begin_` of held notices)
    /// handed to a lane: the throttle window, the log. Its rule may be gone since (a reload):
    /// then only the log.
    pub fn land(&mut self, landed: Landed, now: DateTime<Utc>) -> Delivery {
        let Landed { flight, attempts, result } = landed;
        // Sent or given up: held no more either way (a failure is logged, as any other).
        self.flushing.remove(&flight.id);
        let (flow, kind, s) = (&flight.key.0, &flight.key.1, &flight.key.2);
        let (channel, held_back, flushed) = (flight.channel.clone(), flight.held_back, flight.flushed);
        let route =
            self.flows.values_mut().flatten().chain(self.global.iter_mut()).chain(self.retired.iter_mut()).find(|r| r.id == flight.route);
        let outcome = match result {
            Ok(()) => {
                info!(flow = %flow, kind = %kind, subject = subject(s), channel = %channel, attempts, held_back, flushed, "Notice sent.");
                if let Some(w) = route.and_then(|r| r.windows.get_mut(&flight.key)).filter(|w| w.by == Some(flight.id)) {
                    w.by = None;
                }
                Outcome::Sent { attempts, held_back }
            }
            Err(e) => {
                error!(flow = %flow, kind = %kind, subject = subject(s), channel = %channel, attempts, error_kind = %e.kind, error = %e.message, "Notice not sent.");
                if let Some(route) = route {
                    undo(route, &flight, now);
                }
                Outcome::Failed { attempts, error: e }
            }
        };
        if let Some(route) = self.routes_mut().find(|r| r.id == flight.route) {
            route.prune(now);
        }
        Delivery { channel, outcome }
    }

    /// Waits for the sends of `started` and lands them: what became of each, in order.
    async fn finish(&mut self, started: Vec<Started>, now: DateTime<Utc>) -> Vec<Delivery> {
        let mut out = Vec::with_capacity(started.len());
        for s in started {
            out.push(match s {
                Started::Done(d) => d,
                Started::Sending(f) => {
                    let landed = f.land().await;
                    self.land(landed, now)
                }
            });
        }
        out
    }

    /// The end of the earliest throttle window that holds a notice back: when
    /// [`send_due`](Self::send_due) has something to send.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.routes().flat_map(|r| r.windows.values().filter(|w| w.latest.is_some()).map(|w| w.ends(r.throttle))).min()
    }

    /// Sends, for every throttle window that has ended by `now` with notices held back, the
    /// latest of them, saying how many others were.
    pub async fn send_due(&mut self, now: DateTime<Utc>) -> Vec<Delivery> {
        let started = self.begin_due(now).await;
        self.finish(started, now).await
    }

    /// Sends the latest notice held back in every window, ended or not, saying how many others
    /// were (when the daemon stops: throttle windows are not kept across a restart).
    pub async fn send_all_held(&mut self, now: DateTime<Utc>) -> Vec<Delivery> {
        let started = self.begin_all_held(now).await;
        self.finish(started, now).await
    }

    /// [`send_due`](Self::send_due) without waiting (see [`begin`](Self::begin)).
    pub async fn begin_due(&mut self, now: DateTime<Utc>) -> Vec<Started> {
        self.begin_held(now, false).await
    }

    /// [`send_all_held`](Self::send_all_held) without waiting (see [`begin`](Self::begin)).
    pub async fn begin_all_held(&mut self, now: DateTime<Utc>) -> Vec<Started> {
        self.begin_held(now, true).await
    }

    async fn begin_held(&mut self, now: DateTime<Utc>, all: bool) -> Vec<Started> {
        let Dispatcher { global, flows, retired, retry, sending, flushing } = self;
        let mut routes: Vec<&mut Route> = flows.values_mut().flatten().chain(global.iter_mut()).chain(retired.iter_mut()).collect();
        let mut steps = Vec::new();
        for (i, route) in routes.iter_mut().enumerate() {
            let throttle = route.throttle;
            for (key, w) in route.windows.iter_mut() {
                if (all || w.ends(throttle) <= now)
                    && let Some(notice) = w.latest.take()
                {
                    steps.push((i, key.clone(), Step::Send { notice, held_back: w.held.saturating_sub(1), flushed: true }));
                }
            }
        }
        let started = start(routes, steps, *retry, sending, flushing, now).await;
        // A retired rule has done its last duty once nothing is held back in it.
        self.retired.retain(Route::holds);
        started
    }

    fn routes_mut(&mut self) -> impl Iterator<Item = &mut Route> {
        self.flows.values_mut().flatten().chain(self.global.iter_mut()).chain(self.retired.iter_mut())
    }

    fn routes(&self) -> impl Iterator<Item = &Route> {
        self.flows.values().flatten().chain(self.global.iter()).chain(self.retired.iter())
    }
}

/// Carries out `steps` on `routes` (by index): a notice held back is counted in its window;
/// a notice to send opens a new window at once (see the module doc) and is handed to the
/// route's lane; a held-back one being sent is noted in `flushing` until it lands. What
/// became of each step, in order.
async fn start(
    mut routes: Vec<&mut Route>,
    steps: Vec<(usize, Key, Step)>,
    retry: RetryPolicy,
    sending: &Arc<Semaphore>,
    flushing: &mut HashMap<u64, Held>,
    now: DateTime<Utc>,
) -> Vec<Started> {
    let mut started = Vec::with_capacity(steps.len());
    for (i, key, step) in steps {
        let route = &mut *routes[i];
        let channel = route.notifier.describe();
        let (flow, kind, s) = (&key.0, &key.1, &key.2);
        match step {
            Step::Hold(notice) => {
                let window = route.windows.entry(key.clone()).or_insert_with(|| Window::sent(now));
                window.held += 1;
                window.latest = Some(notice);
                debug!(flow = %flow, kind = %kind, subject = subject(s), channel = %channel, held = window.held, "Notice held back by the throttle.");
                let held = window.held;
                route.prune(now);
                started.push(Started::Done(Delivery { channel, outcome: Outcome::HeldBack { held } }));
            }
            Step::Send { notice, held_back, flushed } => {
                let id = next_id();
                // A recovery opens no window: it is never held back, nor holds others back.
                let before = if *kind != RECOVERED {
                    route.windows.insert(key.clone(), Window { by: Some(id), ..Window::sent(now) }).map(Box::new)
                } else {
                    None
                };
                if flushed {
                    flushing.insert(id, Held::of(route, notice.clone(), held_back.saturating_add(1)));
                }
                let (reply_tx, reply) = oneshot::channel();
                let lane = route.lane(sending);
                // A full lane of a channel that is failing, or past its bounds, refuses the
                // job, which lands as failed at once; a lane that is gone drops it, and it
                // lands as failed too. Never a wait (see `lane.rs`).
                if let Err((reply_tx, refused)) = lane.queue(Job { notice, held_back, retry, reply: reply_tx }) {
                    let why = match refused {
                        Refused::Down => format!(
                            "{QUEUED} notices are already waiting for this channel, which is down or said to come back later (its last attempt failed); this one is not sent"
                        ),
                        Refused::Full { notices, bytes } => format!(
                            "{notices} notices ({} KiB) are already waiting for this channel, which takes them slower than they come (the most a channel's notices may wait: {WAITING}, {} MiB); this one is not sent — a channel this slow needs a longer `throttle` or fewer notices",
                            bytes / 1024,
                            WAITING_BYTES >> 20
                        ),
                    };
                    let _ = reply_tx.send((0, Err(NotifyError::permanent(channel.clone(), why))));
                }
                let flight = Flight { id, route: route.id, key: key.clone(), channel, held_back, flushed, before };
                started.push(Started::Sending(InFlight { flight, reply }));
            }
        }
    }
    started
}

/// Undoes the window a failed send opened, if it is still that send's: back to what it
/// replaced (none after a flushed notice: the next one is sent, not held). What it held back
/// meanwhile — notices that, had the send failed at once, would have been sent — is due now.
fn undo(route: &mut Route, flight: &Flight, now: DateTime<Utc>) {
    let Some(w) = route.windows.get_mut(&flight.key).filter(|w| w.by == Some(flight.id)) else { return };
    if w.held > 0 {
        w.by = None;
        w.last_sent = chrono::Duration::from_std(route.throttle).ok().and_then(|t| now.checked_sub_signed(t)).unwrap_or(now);
        return;
    }
    match flight.before.clone().filter(|_| !flight.flushed) {
        Some(before) => {
            route.windows.insert(flight.key.clone(), *before);
        }
        None => {
            route.windows.remove(&flight.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use async_trait::async_trait;

    /// Records what it was asked to send; fails with the queued errors first.
    #[derive(Default)]
    pub(super) struct Recorder {
        pub(super) sent: Mutex<Vec<(String, u32)>>,
        /// The detail of each notice sent.
        pub(super) details: Mutex<Vec<String>>,
        pub(super) failures: Mutex<Vec<NotifyError>>,
    }

    #[async_trait]
    impl Notifier for Recorder {
        async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), NotifyError> {
            if let Some(e) = self.failures.lock().unwrap().pop() {
                return Err(e);
            }
            self.sent.lock().unwrap().push((notice.subject.clone(), held_back));
            self.details.lock().unwrap().push(notice.detail.clone());
            Ok(())
        }
        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    pub(super) fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    pub(super) fn notice(kind: &str, subject: &str) -> Notice {
        Notice::new(kind, "f", at(0), subject, "")
    }

    pub(super) fn quick() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(1),
            attempt_timeout: Duration::from_secs(5),
            deferral: Duration::from_millis(1),
            deferrals: 2,
            rate_limit: Duration::from_millis(1),
            rate_limits: 2,
        }
    }

    #[tokio::test]
    async fn throttles_per_subject_and_counts_what_was_held_back() {
        let rec = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed", "recovered"], Duration::from_secs(3600), rec.clone());
        for s in [0, 10, 20] {
            d.dispatch(&notice("failed", "a"), at(s)).await;
        }
        let other = d.dispatch(&notice("failed", "b"), at(30)).await;
        assert!(matches!(other[0].outcome, Outcome::Sent { held_back: 0, .. }), "another subject is not held back");
        let held = d.dispatch(&notice("failed", "a"), at(40)).await;
        assert!(matches!(held[0].outcome, Outcome::HeldBack { held: 3 }), "{held:?}");
        let next = d.dispatch(&notice("failed", "a"), at(3600)).await;
        assert!(matches!(next[0].outcome, Outcome::Sent { held_back: 3, attempts: 1 }), "{next:?}");
        for s in [3601, 3602] {
            d.dispatch(&notice("recovered", "a"), at(s)).await;
        }
        let sent = rec.sent.lock().unwrap().clone();
        assert_eq!(sent, [("a".into(), 0), ("b".into(), 0), ("a".into(), 3), ("a".into(), 0), ("a".into(), 0)]);
        assert!(d.dispatch(&notice("missing", "a"), at(0)).await.is_empty(), "no rule for `missing`");
    }

    #[tokio::test]
    async fn the_latest_notice_held_back_is_sent_when_its_window_ends() {
        let rec = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::from_secs(3600), rec.clone());
        let failed = |s: i64| Notice::new("failed", "f", at(s), "a", &format!("at {s}"));
        d.dispatch(&failed(0), at(0)).await;
        assert_eq!(d.next_due(), None, "nothing held back");
        for s in [10, 20] {
            d.dispatch(&failed(s), at(s)).await;
        }
        assert_eq!(d.next_due(), Some(at(3600)));
        assert!(d.send_due(at(3599)).await.is_empty());
        let out = d.send_due(at(3600)).await;
        assert!(matches!(out[0].outcome, Outcome::Sent { held_back: 1, .. }), "{out:?}");
        assert_eq!(d.next_due(), None);
        assert!(d.send_due(at(7200)).await.is_empty(), "sent once");
        // It opened a window of its own.
        let held = d.dispatch(&failed(3601), at(3601)).await;
        assert!(matches!(held[0].outcome, Outcome::HeldBack { held: 1 }), "{held:?}");

        // A failed send at the window's end is not tried again; the next notice goes out.
        rec.failures.lock().unwrap().push(NotifyError::permanent("recorder", "404"));
        assert!(matches!(d.send_due(at(7200)).await[0].outcome, Outcome::Failed { .. }));
        assert_eq!(d.next_due(), None);
        assert!(matches!(d.dispatch(&failed(7201), at(7201)).await[0].outcome, Outcome::Sent { held_back: 0, .. }));

        assert_eq!(*rec.sent.lock().unwrap(), [("a".into(), 0), ("a".into(), 1), ("a".into(), 0)]);
        assert_eq!(*rec.details.lock().unwrap(), ["at 0", "at 20", "at 7201"]);
    }

    /// A rule for `f` on `failed` with this throttle; its channel is never used (the tests
    /// make its notifier).
    fn rule(throttle_s: u64) -> Rule {
        let spec = super::super::CommandSpec {
            program: "notify".into(),
            args: vec![],
            pass_env: vec![],
            dir: "/".into(),
            timeout: Duration::from_secs(1),
        };
        let on = ["failed".to_string()].into();
        Rule {
            on,
            throttle: Duration::from_secs(throttle_s),
            channel: super::super::Channel::Command(spec),
            origin: "f.yaml notify[0]".into(),
        }
    }

    fn set(d: &mut Dispatcher, flow: &str, rules: &[Rule], rec: &Arc<Recorder>) {
        let rec = Arc::clone(rec);
        d.set_flow_with(flow, rules, &move |_| Ok(rec.clone() as Arc<dyn Notifier>)).unwrap();
    }

    #[tokio::test]
    async fn a_reload_keeps_what_an_unchanged_rule_held_back() {
        let rec = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        set(&mut d, "f", &[rule(3600)], &rec);
        let failed = |s: i64| Notice::new("failed", "f", at(s), "a", &format!("at {s}"));
        d.dispatch(&failed(0), at(0)).await;
        d.dispatch(&failed(10), at(10)).await;
        // A reload (any flow file changed): the same rules are set again.
        let other = Arc::new(Recorder::default());
        set(&mut d, "f", &[rule(3600)], &other);
        set(&mut d, "g", &[rule(60)], &other);
        assert_eq!(d.next_due(), Some(at(3600)), "the window and what it holds are kept");
        let held = d.dispatch(&failed(20), at(20)).await;
        assert!(matches!(held[0].outcome, Outcome::HeldBack { held: 2 }), "{held:?}");
        let out = d.send_due(at(3600)).await;
        assert!(matches!(out[0].outcome, Outcome::Sent { held_back: 1, .. }), "{out:?}");
        assert_eq!(*rec.details.lock().unwrap(), ["at 0", "at 20"]);
        assert!(other.sent.lock().unwrap().is_empty(), "the unchanged rule kept its channel");
    }

    #[tokio::test]
    async fn a_changed_or_removed_rule_still_sends_what_it_held_back() {
        let (old, new) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        set(&mut d, "f", &[rule(3600)], &old);
        set(&mut d, "g", &[rule(3600)], &old);
        for s in [0, 10] {
            d.dispatch(&Notice::new("failed", "f", at(s), "a", &format!("f at {s}")), at(s)).await;
            d.dispatch(&Notice::new("failed", "g", at(s), "a", &format!("g at {s}")), at(s)).await;
        }
        // f's rule changes (another throttle), g's file is removed.
        set(&mut d, "f", &[rule(60)], &new);
        d.remove_flow("g");
        assert_eq!(d.next_due(), Some(at(3600)), "both still hold a notice back");
        // The new rule starts afresh.
        let out = d.dispatch(&Notice::new("failed", "f", at(20), "a", "f at 20"), at(20)).await;
        assert_eq!(out.len(), 1, "the retired rule takes nothing new: {out:?}");
        assert!(matches!(out[0].outcome, Outcome::Sent { held_back: 0, .. }), "{out:?}");
        assert!(d.send_due(at(3599)).await.is_empty());
        let out = d.send_due(at(3600)).await;
        assert_eq!(out.len(), 2, "{out:?}");
        let mut sent = old.details.lock().unwrap().clone();
        sent.sort();
        assert_eq!(sent, ["f at 0", "f at 10", "g at 0", "g at 10"]);
        assert_eq!(*new.details.lock().unwrap(), ["f at 20"]);
        assert_eq!(d.next_due(), None, "the retired rules are gone");
    }

    /// Sends only when let through ([`Gate::open`]); records the detail of each notice it was
    /// asked to send, and fails the first `failures` of them.
    pub(super) struct Gate {
        permits: tokio::sync::Semaphore,
        pub(super) asked: Mutex<Vec<String>>,
        failures: Mutex<u32>,
    }

    impl Gate {
        pub(super) fn new(failures: u32) -> Arc<Self> {
            Arc::new(Gate { permits: tokio::sync::Semaphore::new(0), asked: Mutex::new(Vec::new()), failures: Mutex::new(failures) })
        }

        pub(super) fn open(&self, sends: usize) {
            self.permits.add_permits(sends);
        }
    }

    #[async_trait]
    impl Notifier for Gate {
        async fn send(&self, notice: &Notice, _: u32) -> Result<(), NotifyError> {
            self.permits.acquire().await.unwrap().forget();
            self.asked.lock().unwrap().push(notice.detail.clone());
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(NotifyError::permanent("gate", "refused"));
            }
            Ok(())
        }
        fn describe(&self) -> String {
            "gate".into()
        }
    }

    pub(super) fn sending(started: Vec<Started>) -> Vec<InFlight> {
        started.into_iter().filter_map(|s| if let Started::Sending(f) = s { Some(f) } else { None }).collect()
    }

    #[tokio::test]
    async fn a_send_under_way_holds_similar_notices_back_until_it_fails() {
        let slow = Gate::new(1);
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::from_secs(3600), slow.clone());
        let failed = |s: i64| Notice::new("failed", "f", at(s), "a", &format!("at {s}"));
        let first = sending(d.begin(&failed(0), at(0)).await);
        // As if the first had been sent: the throttle does not wait for the outcome.
        for s in [10, 20] {
            let held = d.begin(&failed(s), at(s)).await;
            assert!(matches!(&held[..], [Started::Done(Delivery { outcome: Outcome::HeldBack { .. }, .. })]));
        }
        slow.open(10);
        let [first] = <[InFlight; 1]>::try_from(first).ok().unwrap();
        let landed = first.land().await;
        assert!(matches!(d.land(landed, at(30)).outcome, Outcome::Failed { .. }));
        // It failed: what it held back is due at once, not at the end of its window.
        assert_eq!(d.next_due(), Some(at(30)));
        let out = d.send_due(at(30)).await;
        assert!(matches!(out[0].outcome, Outcome::Sent { held_back: 1, .. }), "{out:?}");
        assert_eq!(*slow.asked.lock().unwrap(), ["at 0", "at 20"]);
        // That one went out: its window holds the next back.
        assert!(matches!(d.dispatch(&failed(40), at(40)).await[0].outcome, Outcome::HeldBack { held: 1 }));

        // A failed send that held nothing back leaves no window: the next one is sent.
        let gate = Gate::new(1);
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::from_secs(3600), gate.clone());
        gate.open(10);
        assert!(matches!(d.dispatch(&failed(0), at(0)).await[0].outcome, Outcome::Failed { .. }));
        assert_eq!(d.next_due(), None);
        assert!(matches!(d.dispatch(&failed(10), at(10)).await[0].outcome, Outcome::Sent { held_back: 0, .. }));
    }

    #[tokio::test]
    async fn everything_held_back_can_be_sent_before_its_window_ends() {
        let rec = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::from_secs(3600), rec.clone());
        for s in [0, 10, 20] {
            d.dispatch(&Notice::new("failed", "f", at(s), "a", &format!("at {s}")), at(s)).await;
        }
        let out = d.send_all_held(at(30)).await;
        assert!(matches!(out[0].outcome, Outcome::Sent { held_back: 1, .. }), "{out:?}");
        assert_eq!(*rec.details.lock().unwrap(), ["at 0", "at 20"]);
        assert!(d.send_all_held(at(40)).await.is_empty(), "nothing held back any more");
    }
}
