//! A channel's lane: a task that sends the channel's notices one at a time, in the order they
//! were dispatched, each send in a task of its own (a panicking channel fails that notice, not
//! the lane). Lanes run side by side, at most [`SENDING`] sends at once, so a slow channel (a
//! webhook that takes its full timeout) delays its own notices only, not those of other
//! channels, nor later notices to them. Transient failures are retried a few times with a
//! short, doubling backoff — or after as long as the channel asked (`Retry-After`, up to
//! [`RETRY_AFTER_MAX`]) — each attempt under a timeout.
//!
//! A rate limit (HTTP 429: the channel is up, asking to slow down) is waited out apart from
//! those attempts: after its `Retry-After` when it gives one, else after
//! [`RetryPolicy::rate_limit`], doubled before each further one, [`RetryPolicy::rate_limits`]
//! times at most (15, 30, 60 and 120 seconds by default: nearly four minutes, past the
//! one-minute windows Slack, Teams and PagerDuty count requests in). Asked again within the
//! short backoff, a rate-limited channel only refuses again, and the notice was lost.
//!
//! A deferral (an SMTP server saying "not now, come back later": 421, 450, 451, 452) is retried
//! as a mail transfer agent would, after minutes: [`RetryPolicy::deferral`], doubled before
//! each further one, [`RetryPolicy::deferrals`] times at most (1, 2, 4 and 8 minutes by default:
//! a notice is given up within a quarter of an hour, never held for hours). The wait holds no
//! send slot and, the lane being the channel's own, holds up only this channel's later notices
//! (which its server would refuse as well), never another rule's. A notice that ran out of
//! deferrals (or of rate-limit waits) leaves its lane *without* them until the channel takes a
//! notice again: each of the notices queued behind it is tried once, not a quarter of an hour
//! each, so a backlog behind a server refusing for hours is bounded by attempts, not by hours
//! of waiting.
//!
//! Queuing a notice never waits: the caller (the daemon's notifier, and so every other channel
//! and the cursor) is never held up by one channel. A lane takes [`QUEUED`] notices whatever
//! the channel does. Past that, a notice for a channel sending fine — slowly, or asking to
//! slow down (HTTP 429: it is up) — still joins the lane, waiting beside the first ones, in
//! order, up to [`WAITING`] notices and [`WAITING_BYTES`] of them: a burst goes out at the
//! channel's pace, none lost, memory bounded. A notice past those bounds, or past [`QUEUED`]
//! for a channel that is down or deferring (its last attempt failed with a transient error
//! other than a rate limit: it would make no room for minutes), is not queued: it fails at
//! once, saying why (logged as not sent, and counted). Which notice goes to which lane, and
//! what became of it, is the [`Dispatcher`](super::Dispatcher)'s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tracing::warn;

use super::{Notice, Notifier, NotifyError, subject};
use crate::notify::{ErrorKind, RETRY_AFTER_MAX};

/// How failed sends are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1 is made).
    pub attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub backoff: Duration,
    /// The longest one attempt may take, whatever the channel's own timeouts.
    pub attempt_timeout: Duration,
    /// Wait after the first deferral ([`ErrorKind::Deferred`]: "come back later"); doubled
    /// before each further one.
    pub deferral: Duration,
    /// Deferrals waited out at most for one notice (besides `attempts`, which count the other
    /// transient failures).
    pub deferrals: u32,
    /// Wait after the first rate limit ([`ErrorKind::RateLimited`]) that does not say how long
    /// to wait (no `Retry-After`); doubled before each further one.
    pub rate_limit: Duration,
    /// Rate limits waited out at most for one notice (besides `attempts` and `deferrals`).
    pub rate_limits: u32,
}

impl Default for RetryPolicy {
    /// 3 attempts, 500 ms then 1 s apart, 2 minutes each at most; a deferral is waited out
    /// 4 times, 1, 2, 4 then 8 minutes later (15 minutes in all); a rate limit 4 times, after
    /// its `Retry-After` or else 15, 30, 60 then 120 seconds later (under 4 minutes in all).
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            backoff: Duration::from_millis(500),
            attempt_timeout: Duration::from_secs(120),
            deferral: Duration::from_secs(60),
            deferrals: 4,
            rate_limit: Duration::from_secs(15),
            rate_limits: 4,
        }
    }
}

/// Sends under way at once, over all channels.
pub const SENDING: usize = 8;

/// Notices waiting in one channel's lane whatever the channel does; past that, a notice for a
/// channel that is failing is not sent (it lands as failed, saying so) rather than kept for
/// minutes: memory stays bounded, and the others go on.
pub const QUEUED: usize = 256;

/// Notices waiting in one channel's lane at most while it sends fine (slowly, or rate-limited).
pub const WAITING: usize = 4096;

/// The size of the notices waiting in one channel's lane past [`QUEUED`] at most (their
/// subject, detail and facts): 16 MiB.
pub const WAITING_BYTES: usize = 16 << 20;

/// Why [`Lane::queue`] gave a job back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// [`QUEUED`] notices wait and the channel is down or deferring (its last attempt failed
    /// transiently, not by a rate limit).
    Down,
    /// [`WAITING`] notices, or [`WAITING_BYTES`] of them, wait already: this many, of this size.
    Full { notices: usize, bytes: usize },
}

/// What waits in a lane (queued, not yet taken by its task).
#[derive(Default)]
struct Waiting {
    notices: AtomicUsize,
    bytes: AtomicUsize,
}

/// About the size a notice takes in memory while it waits (what grows with it).
fn weight(notice: &Notice) -> usize {
    let facts = if notice.facts.is_null() { 0 } else { notice.facts.to_string().len() };
    notice.subject.len() + notice.detail.len() + notice.flow.len() + notice.kind.len() + facts + 128
}

/// The way into a channel's lane.
#[derive(Clone)]
pub(super) struct Lane {
    jobs: mpsc::UnboundedSender<(usize, Job)>,
    waiting: Arc<Waiting>,
    /// Whether the channel's last attempt failed with a transient error other than a rate
    /// limit — the channel is down, too slow to answer within `attempt_timeout`, or said to
    /// come back later (set by the lane after each attempt).
    failing: watch::Receiver<bool>,
}

impl Lane {
    /// Starts a channel's lane: a task sending its jobs one after the other, in order, with at
    /// most [`SENDING`] sends of all lanes under way, saying after each attempt whether the
    /// channel is failing. It ends when the last way into it is dropped and its queue is empty;
    /// a job nobody waits for any more (the daemon stopped) is skipped.
    pub(super) fn start(notifier: Arc<dyn Notifier>, sending: &Arc<Semaphore>) -> Lane {
        let (tx, mut rx) = mpsc::unbounded_channel::<(usize, Job)>();
        let (failing_tx, failing) = watch::channel(false);
        let failing_tx = Arc::new(failing_tx);
        let sending = Arc::clone(sending);
        let waiting = Arc::new(Waiting::default());
        let taken = Arc::clone(&waiting);
        tokio::spawn(async move {
            // Off once a notice ran out of deferrals or rate-limit waits, until the channel
            // takes one again (see the module doc).
            let mut may_wait = true;
            while let Some((size, job)) = rx.recv().await {
                taken.notices.fetch_sub(1, Ordering::Relaxed);
                taken.bytes.fetch_sub(size, Ordering::Relaxed);
                if job.reply.is_closed() {
                    continue;
                }
                let (n, s, f) = (Arc::clone(&notifier), Arc::clone(&sending), Arc::clone(&failing_tx));
                let Job { notice, held_back, mut retry, reply } = job;
                if !may_wait {
                    (retry.deferrals, retry.rate_limits) = (0, 0);
                }
                let task = tokio::spawn(async move { send_with_retry(n.as_ref(), &notice, held_back, retry, &s, &f).await });
                let result = task
                    .await
                    .unwrap_or_else(|e| (1, Err(NotifyError::permanent(notifier.describe(), format!("the channel panicked: {e}")))));
                may_wait = !matches!(&result.1, Err(e) if matches!(e.kind, ErrorKind::Deferred | ErrorKind::RateLimited));
                let _ = reply.send(result);
            }
        });
        Lane { jobs: tx, waiting, failing }
    }

    /// The lane's task has ended.
    pub(super) fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }

    /// Queues `job` at the end of the lane, without waiting (see the module doc); gives its
    /// reply back (not queued), saying why, when [`QUEUED`] wait and the channel is failing, or when
    /// [`WAITING`] or [`WAITING_BYTES`] would be passed. A lane that is gone drops the job (it
    /// lands as failed).
    pub(super) fn queue(&self, job: Job) -> Result<(), (Reply, Refused)> {
        let size = weight(&job.notice);
        let notices = self.waiting.notices.load(Ordering::Relaxed);
        let bytes = self.waiting.bytes.load(Ordering::Relaxed);
        if notices >= QUEUED {
            if *self.failing.borrow() {
                return Err((job.reply, Refused::Down));
            }
            if notices >= WAITING || bytes.saturating_add(size) > WAITING_BYTES {
                return Err((job.reply, Refused::Full { notices, bytes }));
            }
        }
        // Counted before it is sent: the lane's task takes it off when it receives it.
        self.waiting.notices.fetch_add(1, Ordering::Relaxed);
        self.waiting.bytes.fetch_add(size, Ordering::Relaxed);
        if self.jobs.send((size, job)).is_err() {
            self.waiting.notices.fetch_sub(1, Ordering::Relaxed);
            self.waiting.bytes.fetch_sub(size, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Where a lane says what became of a job: the attempts made and the result.
pub(super) type Reply = oneshot::Sender<(u32, Result<(), NotifyError>)>;

/// One notice for a lane to send.
pub(super) struct Job {
    pub(super) notice: Notice,
    pub(super) held_back: u32,
    pub(super) retry: RetryPolicy,
    pub(super) reply: Reply,
}

/// Sends with retries of transient failures; the number of attempts made and the result.
/// Each attempt holds one of the `sending` permits (shared by every lane), the waits between
/// attempts none: a channel that is down does not keep the others from sending. A deferral
/// waits [`RetryPolicy::deferral`], doubling, up to [`RetryPolicy::deferrals`] times; a rate
/// limit its `Retry-After`, else [`RetryPolicy::rate_limit`], doubling, up to
/// [`RetryPolicy::rate_limits`] times; other transient failures count against
/// [`RetryPolicy::attempts`]. After each attempt, `failing`
/// says whether it failed with a transient error other than a rate limit (a channel asking to
/// slow down is up; one that is down, or said to come back later, makes no room soon).
async fn send_with_retry(
    notifier: &dyn Notifier,
    notice: &Notice,
    held_back: u32,
    retry: RetryPolicy,
    sending: &Semaphore,
    failing: &watch::Sender<bool>,
) -> (u32, Result<(), NotifyError>) {
    let attempts = retry.attempts.max(1);
    let (mut delay, mut deferral, mut pause) = (retry.backoff, retry.deferral, retry.rate_limit);
    // All attempts made; those counted against `attempts`; deferrals and rate limits waited out.
    let (mut attempt, mut counted, mut deferred, mut limited) = (1, 1, 0, 0);
    loop {
        // The semaphore is never closed; should it be, sending goes on unbounded.
        let permit = sending.acquire().await.ok();
        let result = match tokio::time::timeout(retry.attempt_timeout, notifier.send(notice, held_back)).await {
            Ok(r) => r,
            Err(_) => Err(NotifyError::transient(notifier.describe(), format!("no answer within {:?}", retry.attempt_timeout))),
        };
        drop(permit);
        // Down, rather than refusing this notice or asking to slow down: refused connections,
        // timeouts, 5xx… A notice refused for good says nothing of the next one.
        failing.send_replace(result.as_ref().is_err_and(|e| e.says_down() || e.kind == ErrorKind::Deferred));
        let wait = match &result {
            // "Come back later": minutes, as a mail transfer agent waits, a bounded number of
            // times; asked again within seconds, the server only refuses again.
            Err(e) if e.kind == ErrorKind::Deferred => (deferred < retry.deferrals).then(|| {
                deferred += 1;
                let doubled = deferral.saturating_mul(2);
                std::mem::replace(&mut deferral, doubled)
            }),
            // "Slow down" (HTTP 429): the channel is up and counts requests over a window
            // (a second for Slack, a minute for PagerDuty); asked again within the short
            // backoff it refuses again. Its `Retry-After` when it gives one (no sooner than
            // the backoff), else a pause long enough for the window to pass, a bounded
            // number of times.
            Err(e) if e.kind == ErrorKind::RateLimited => (limited < retry.rate_limits).then(|| {
                limited += 1;
                let doubled = pause.saturating_mul(2);
                let pause = std::mem::replace(&mut pause, doubled);
                e.retry_after.filter(|asked| !asked.is_zero()).map_or(pause, |asked| asked.max(retry.backoff)).min(RETRY_AFTER_MAX)
            }),
            // A channel that says how long to wait (HTTP `Retry-After`) is waited for: asked
            // again sooner, it refuses again, and the notice runs out of attempts.
            Err(e) if e.is_transient() && counted < attempts => {
                counted += 1;
                let wait = e.retry_after.map_or(delay, |asked| asked.min(RETRY_AFTER_MAX).max(delay));
                delay = delay.saturating_mul(2);
                Some(wait)
            }
            _ => None,
        };
        let (Some(wait), Err(e)) = (wait, &result) else { return (attempt, result) };
        warn!(flow = %notice.flow, kind = %notice.kind, subject = subject(&notice.subject), channel = %e.target, attempt, error_kind = %e.kind, error = %e.message, retry_in = ?wait, "Notice not sent; retrying.");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Gate, Recorder, at, notice, quick, sending};
    use super::super::{Dispatcher, InFlight, Outcome};
    use super::*;
    use std::sync::Mutex;

    use async_trait::async_trait;

    struct Panics;

    #[async_trait]
    impl Notifier for Panics {
        async fn send(&self, _: &Notice, _: u32) -> Result<(), NotifyError> {
            panic!("boom")
        }
        fn describe(&self) -> String {
            "panics".into()
        }
    }

    #[tokio::test]
    async fn retries_transient_failures_only() {
        let rec = Arc::new(Recorder::default());
        rec.failures.lock().unwrap().extend([NotifyError::transient("recorder", "503"), NotifyError::transient("recorder", "503")]);
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::ZERO, rec.clone());
        let out = d.dispatch(&notice("failed", "a"), at(0)).await;
        assert!(matches!(out[0].outcome, Outcome::Sent { attempts: 3, .. }), "{out:?}");

        rec.failures.lock().unwrap().extend([NotifyError::permanent("recorder", "404"), NotifyError::transient("recorder", "503")]);
        let out = d.dispatch(&notice("failed", "a"), at(1)).await;
        let Outcome::Failed { attempts: 2, error } = &out[0].outcome else { panic!("{out:?}") };
        assert_eq!(error.to_string(), "recorder: 404");
        assert_eq!(rec.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_panicking_channel_does_not_stop_the_others() {
        let rec = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::ZERO, Arc::new(Panics));
        d.add_global(["failed"], Duration::ZERO, rec.clone());
        let out = d.dispatch(&notice("failed", "a"), at(0)).await;
        assert!(matches!(&out[0].outcome, Outcome::Failed { error, .. } if error.message.contains("panicked")), "{out:?}");
        assert!(matches!(out[1].outcome, Outcome::Sent { .. }));
    }

    #[tokio::test]
    async fn a_slow_channel_delays_only_its_own_notices_which_keep_their_order() {
        let (slow, rec) = (Gate::new(0), Arc::new(Recorder::default()));
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::ZERO, slow.clone());
        d.add_global(["failed"], Duration::ZERO, rec.clone());
        let mut flying = Vec::new();
        for s in 0..3 {
            flying.extend(sending(d.begin(&Notice::new("failed", "f", at(s), "", &format!("at {s}")), at(s)).await));
        }
        assert_eq!(flying.len(), 6);
        let waiting = std::time::Instant::now();
        while rec.details.lock().unwrap().len() < 3 && waiting.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*rec.details.lock().unwrap(), ["at 0", "at 1", "at 2"], "the other channel did not wait");
        assert!(slow.asked.lock().unwrap().is_empty());
        slow.open(3);
        for f in flying {
            let landed = f.land().await;
            assert!(matches!(d.land(landed, at(3)).outcome, Outcome::Sent { attempts: 1, .. }));
        }
        assert_eq!(*slow.asked.lock().unwrap(), ["at 0", "at 1", "at 2"], "one channel's notices in order");
    }

    /// A channel refusing its first `refusing` attempts with `refusal` (a transient error:
    /// an SMTP "come back later", an HTTP 429 without `Retry-After`), then taking every
    /// notice; records when each attempt came.
    struct Refusing {
        name: &'static str,
        refusing: usize,
        refusal: fn(&str) -> NotifyError,
        asked: Mutex<Vec<(String, std::time::Instant)>>,
    }

    impl Refusing {
        /// An SMTP server saying "service shutting down, try later" (421) to its first `n`.
        fn closing(n: usize) -> Arc<Self> {
            let refusal = |name: &str| NotifyError::deferred(name, "421 4.3.2 Service shutting down, try later");
            Arc::new(Refusing { name: "closing", refusing: n, refusal, asked: Mutex::default() })
        }

        /// A webhook answering 429 without `Retry-After` to its first `n`.
        fn limiting(n: usize) -> Arc<Self> {
            let refusal = |name: &str| NotifyError::rate_limited(name, "answered HTTP 429 Too Many Requests");
            Arc::new(Refusing { name: "limiting", refusing: n, refusal, asked: Mutex::default() })
        }
    }

    #[async_trait]
    impl Notifier for Refusing {
        async fn send(&self, notice: &Notice, _: u32) -> Result<(), NotifyError> {
            let mut asked = self.asked.lock().unwrap();
            asked.push((notice.detail.clone(), std::time::Instant::now()));
            if asked.len() <= self.refusing {
                return Err((self.refusal)(self.name));
            }
            Ok(())
        }
        fn describe(&self) -> String {
            self.name.into()
        }
    }

    /// A deferral is asked again after `deferral`, doubled each time — not after the short
    /// backoff meant for network blips (before, the three attempts came within milliseconds,
    /// each refused). A notice that ran out of deferrals fails, and the channel's next one is
    /// tried once, not deferred again, until one goes through; another channel does not wait
    /// meanwhile.
    #[tokio::test]
    async fn a_deferral_is_asked_again_after_the_deferral_not_the_backoff() {
        let closing = Refusing::closing(4);
        let rec = Arc::new(Recorder::default());
        let retry = RetryPolicy { deferral: Duration::from_millis(300), ..quick() };
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(retry);
        d.add_global(["failed"], Duration::ZERO, closing.clone());
        d.add_global(["failed"], Duration::ZERO, rec.clone());
        let mut flying = Vec::new();
        for s in ["a", "b", "c"] {
            flying.extend(sending(d.begin(&Notice::new("failed", "f", at(0), "", s), at(0)).await));
        }
        let waiting = std::time::Instant::now();
        while rec.details.lock().unwrap().len() < 3 && waiting.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let others_done = std::time::Instant::now();
        let mut outcomes = Vec::new();
        for f in flying.into_iter().filter(|f| f.flight.channel == "closing") {
            let landed = f.land().await;
            outcomes.push(d.land(landed, at(1)).outcome);
        }
        assert!(
            matches!(
                &outcomes[..],
                [
                    Outcome::Failed { attempts: 3, error: NotifyError { kind: ErrorKind::Deferred, .. } },
                    Outcome::Failed { attempts: 1, .. },
                    Outcome::Sent { attempts: 1, .. },
                ]
            ),
            "{outcomes:?}"
        );
        let asked = closing.asked.lock().unwrap().clone();
        let who: Vec<&str> = asked.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(who, ["a", "a", "a", "b", "c"]);
        assert!(others_done < asked[1].1, "the other channel did not wait for the deferral");
        let gaps: Vec<Duration> = asked.windows(2).map(|w| w[1].1 - w[0].1).collect();
        assert!(gaps[0] >= Duration::from_millis(300) && gaps[1] >= Duration::from_millis(600), "deferred 300 ms then 600 ms: {gaps:?}");
        assert!(gaps[2] < Duration::from_millis(300) && gaps[3] < Duration::from_millis(300), "not deferred again: {gaps:?}");
    }

    /// A 429 without `Retry-After` is asked again after `rate_limit`, doubled each time, and
    /// does not use up the notice's attempts (before: three attempts within the short backoff,
    /// 1.5 s in all by default, each refused, and the notice was dropped); a notice that runs
    /// out of rate-limit waits fails, and the channel's next one is tried without waits until
    /// one goes through. Another channel does not wait meanwhile.
    #[tokio::test]
    async fn a_rate_limit_without_retry_after_waits_longer_than_the_backoff() {
        let limiting = Refusing::limiting(3);
        let rec = Arc::new(Recorder::default());
        let retry = RetryPolicy { rate_limit: Duration::from_millis(150), rate_limits: 3, ..quick() };
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(retry);
        d.add_global(["failed"], Duration::ZERO, limiting.clone());
        d.add_global(["failed"], Duration::ZERO, rec.clone());
        let flying = sending(d.begin(&Notice::new("failed", "f", at(0), "", "a"), at(0)).await);
        let waiting = std::time::Instant::now();
        while rec.details.lock().unwrap().is_empty() && waiting.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let others_done = std::time::Instant::now();
        let mut outcomes = Vec::new();
        for f in flying.into_iter().filter(|f| f.flight.channel == "limiting") {
            let landed = f.land().await;
            outcomes.push(d.land(landed, at(1)).outcome);
        }
        assert!(matches!(&outcomes[..], [Outcome::Sent { attempts: 4, .. }]), "{outcomes:?}");
        let asked = limiting.asked.lock().unwrap().clone();
        assert!(others_done < asked[1].1, "the other channel did not wait for the rate limit");
        let gaps: Vec<Duration> = asked.windows(2).map(|w| w[1].1 - w[0].1).collect();
        assert!(
            gaps[0] >= Duration::from_millis(150) && gaps[1] >= Duration::from_millis(300) && gaps[2] >= Duration::from_millis(600),
            "waited 150, 300 then 600 ms: {gaps:?}"
        );

        // Rate-limited for good: the notice fails after its waits; the next is tried once.
        let limiting = Refusing::limiting(5);
        let retry = RetryPolicy { rate_limit: Duration::from_millis(1), rate_limits: 3, ..quick() };
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(retry);
        d.add_global(["failed"], Duration::ZERO, limiting.clone());
        let mut out = Vec::new();
        for s in ["a", "b", "c"] {
            out.extend(d.dispatch(&Notice::new("failed", "f", at(0), "", s), at(0)).await.into_iter().map(|d| d.outcome));
        }
        assert!(
            matches!(
                &out[..],
                [
                    Outcome::Failed { attempts: 4, error: NotifyError { kind: ErrorKind::RateLimited, .. } },
                    Outcome::Failed { attempts: 1, .. },
                    Outcome::Sent { attempts: 1, .. },
                ]
            ),
            "{out:?}"
        );
    }

    /// Sends each notice after `pace`, and records its detail. `rate_limits`: answers each
    /// notice's first attempt "slow down" (HTTP 429) instead, after `pace` too.
    struct Slow {
        pace: Duration,
        rate_limits: bool,
        asked: Mutex<std::collections::HashSet<String>>,
        details: Mutex<Vec<String>>,
    }

    impl Slow {
        fn new(pace: Duration, rate_limits: bool) -> Arc<Self> {
            Arc::new(Slow { pace, rate_limits, asked: Mutex::default(), details: Mutex::default() })
        }
    }

    #[async_trait]
    impl Notifier for Slow {
        async fn send(&self, notice: &Notice, _: u32) -> Result<(), NotifyError> {
            tokio::time::sleep(self.pace).await;
            if self.rate_limits && self.asked.lock().unwrap().insert(notice.detail.clone()) {
                return Err(NotifyError::rate_limited("slow", "answered HTTP 429 Too Many Requests"));
            }
            self.details.lock().unwrap().push(notice.detail.clone());
            Ok(())
        }
        fn describe(&self) -> String {
            "slow".into()
        }
    }

    /// Sends a backlog over twice as long as a lane holds to `slow`: every notice is sent, in
    /// order, none failed.
    async fn backlog_loses_nothing(slow: Arc<Slow>) {
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::ZERO, slow.clone());
        let mut flying = Vec::new();
        for s in 0..600 {
            flying.extend(sending(d.begin(&Notice::new("failed", "f", at(s), "", &format!("at {s}")), at(s)).await));
        }
        let mut failed = Vec::new();
        for f in flying {
            let landed = f.land().await;
            if let Outcome::Failed { error, .. } = d.land(landed, at(600)).outcome {
                failed.push(error.message);
            }
        }
        assert!(failed.is_empty(), "{} failed, first: {:?}", failed.len(), failed.first());
        let expected: Vec<String> = (0..600).map(|s| format!("at {s}")).collect();
        assert_eq!(*slow.details.lock().unwrap(), expected);
    }

    /// A backlog to a channel that sends fine but slowly (an SMTP server taking its time):
    /// the notices past the lane's 256 wait beside it (before: each failed at once).
    #[tokio::test]
    async fn a_backlog_to_a_slow_channel_waits_for_it_and_loses_nothing() {
        backlog_loses_nothing(Slow::new(Duration::from_millis(1), false)).await;
    }

    /// A backlog to a channel that asks to slow down (429 on every first attempt): it is up,
    /// so the notices past a full lane wait beside it instead of failing as if it were down
    /// (before: once an attempt was rate-limited, every notice finding the lane full failed).
    #[tokio::test]
    async fn a_backlog_to_a_rate_limiting_channel_waits_for_it_and_loses_nothing() {
        backlog_loses_nothing(Slow::new(Duration::from_micros(200), true)).await;
    }

    /// A channel that keeps its lane full without being down (each notice rate-limited for
    /// three slow attempts): handing it notices never waits (before: one `attempt_timeout` per
    /// notice past the lane's [`QUEUED`], holding up the caller and every other channel); they
    /// wait beside the lane up to [`WAITING`], and the one past that fails at once, saying why.
    #[tokio::test]
    async fn a_full_lane_of_a_rate_limited_channel_never_holds_up_the_caller() {
        struct Limited;
        #[async_trait]
        impl Notifier for Limited {
            async fn send(&self, _: &Notice, _: u32) -> Result<(), NotifyError> {
                tokio::time::sleep(Duration::from_millis(400)).await;
                Err(NotifyError::rate_limited("limited", "answered HTTP 429"))
            }
            fn describe(&self) -> String {
                "limited".into()
            }
        }
        let retry = RetryPolicy { attempt_timeout: Duration::from_millis(500), ..quick() };
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(retry);
        d.add_global(["failed"], Duration::ZERO, Arc::new(Limited));
        let mut flying = Vec::new();
        let waiting = std::time::Instant::now();
        // One being sent (taken off the queue) and WAITING waiting.
        for s in 0..WAITING as i64 + 1 {
            flying.extend(sending(d.begin(&Notice::new("failed", "f", at(s), "", ""), at(s)).await));
            tokio::task::yield_now().await;
        }
        let last = sending(d.begin(&Notice::new("failed", "f", at(0), "", "last"), at(0)).await);
        let waited = waiting.elapsed();
        // The first notice takes 3 × 400 ms to fail: nothing waited for it.
        assert!(waited < Duration::from_millis(1000), "waited {waited:?}");
        let [last] = <[InFlight; 1]>::try_from(last).ok().unwrap();
        let landed = tokio::time::timeout(Duration::from_millis(100), last.land()).await.expect("refused at once");
        let Outcome::Failed { error, attempts: 0 } = d.land(landed, at(0)).outcome else { panic!("not refused") };
        assert!(error.message.starts_with("4096 notices ("), "{}", error.message);
        assert!(
            error.message.contains("are already waiting for this channel, which takes them slower than they come"),
            "{}",
            error.message
        );
        drop(flying);
    }

    /// A channel that does not answer, its lane full: once its attempt fails
    /// (`attempt_timeout`: the channel is down) its next notices fail at once, saying why,
    /// rather than wait beside the lane for minutes; handing them out never waits. The other
    /// channel gets every notice.
    #[tokio::test]
    async fn a_full_lane_of_a_channel_that_is_down_fails_its_next_notices_at_once() {
        let (dead, rec) = (Gate::new(0), Arc::new(Recorder::default()));
        let retry = RetryPolicy { attempts: 1, backoff: Duration::ZERO, attempt_timeout: Duration::from_secs(1), ..quick() };
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(retry);
        d.add_global(["failed"], Duration::ZERO, dead.clone());
        d.add_global(["failed"], Duration::ZERO, rec.clone());
        let mut flying = Vec::new();
        let mut begin = async |d: &mut Dispatcher, s: i64| {
            let notice = Notice::new("failed", "f", at(s), "", &format!("at {s}"));
            let waiting = std::time::Instant::now();
            let began = tokio::time::timeout(Duration::from_secs(5), d.begin(&notice, at(s))).await;
            flying.extend(sending(began.expect("begin waits for at most one attempt")));
            tokio::task::yield_now().await;
            waiting.elapsed()
        };
        // One being sent (taken off the queue), QUEUED waiting, and one beside them (the
        // channel is not known to be down yet): none waits.
        for s in 0..QUEUED as i64 + 2 {
            assert!(begin(&mut d, s).await < Duration::from_millis(500));
        }
        // Down once the first attempt fails: these do not wait either, and are refused.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        for s in QUEUED as i64 + 2..QUEUED as i64 + 4 {
            assert!(begin(&mut d, s).await < Duration::from_millis(500));
        }
        let waiting = std::time::Instant::now();
        while rec.details.lock().unwrap().len() < QUEUED + 4 && waiting.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(rec.details.lock().unwrap().len(), QUEUED + 4, "the other channel got every notice");
        // Of the last notices' sends to the dead channel, those refused are refused at once.
        let last: Vec<InFlight> = flying.split_off(flying.len() - 4);
        let mut refused = Vec::new();
        for f in last.into_iter().filter(|f| f.flight.channel == "gate") {
            if let Ok(landed) = tokio::time::timeout(Duration::from_millis(100), f.land()).await
                && let Outcome::Failed { error, .. } = d.land(landed, at(0)).outcome
            {
                refused.push(error.message);
            }
        }
        assert!(!refused.is_empty(), "a notice for the dead channel was refused");
        assert!(refused.iter().all(|m| m.contains("notices are already waiting for this channel, which is down")), "{refused:?}");
        drop(dead);
    }
}
