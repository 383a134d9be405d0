//! The clock every wait of the serve loop goes through: [`SystemClock`] in production,
//! [`ManualClock`] in tests, both usable as `Arc<dyn Clock>`.
//!
//! Owns "what time is it" and "wake me at". It does not know about schedules.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

/// Wall-clock time and waiting for it.
#[async_trait]
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Returns once [`Clock::now`] is at or past `t` (at once when it already is), or
    /// earlier when the clock is set back meanwhile: times planned from the clock as it was
    /// may then lie too far ahead, and the caller plans them again.
    async fn sleep_until(&self, t: DateTime<Utc>);
}

/// The system's wall clock.
///
/// Sleeps in chunks of at most [`SystemClock::CHUNK`] and looks at the wall clock after each,
/// so a suspended laptop or a clock set forward is noticed within a minute (a monotonic sleep
/// alone would wake hours late after a suspend). A clock set back (by more than
/// [`SystemClock::SET_BACK`] within one chunk) ends the sleep early, so the caller can plan
/// again from the corrected time: before, it slept on to a time planned from the clock as it
/// was, a day late after a clock a day ahead was corrected.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The longest single sleep.
    pub const CHUNK: Duration = Duration::from_secs(60);
    /// How much less than a chunk's length the wall clock may move over it before the clock is
    /// taken as set back (NTP slews a clock far slower than this; it steps it further).
    pub const SET_BACK: Duration = Duration::from_secs(5);
}

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut before = Utc::now();
        while let Some(chunk) = next_chunk(before, t) {
            tokio::time::sleep(chunk).await;
            let now = Utc::now();
            if set_back(before, now, chunk) {
                return;
            }
            before = now;
        }
    }
}

/// How long to sleep next when it is `now` and the wake-up time is `t`: `None` when reached.
fn next_chunk(now: DateTime<Utc>, t: DateTime<Utc>) -> Option<Duration> {
    let left = (t - now).to_std().ok().filter(|d| !d.is_zero())?;
    Some(left.min(SystemClock::CHUNK))
}

/// Whether the wall clock, at `before` when a sleep of `slept` began and at `after` when it
/// ended, was set back meanwhile.
fn set_back(before: DateTime<Utc>, after: DateTime<Utc>, slept: Duration) -> bool {
    let moved = after - before;
    TimeDelta::from_std(slept.saturating_sub(SystemClock::SET_BACK)).is_ok_and(|least| moved < least)
}

/// A clock that moves only when told to ([`ManualClock::advance`], [`ManualClock::set`]); its
/// sleepers wake as soon as the time they wait for is reached, without real sleeping.
///
/// [`ManualClock::sleepers`] / [`ManualClock::until_sleepers`] tell a test when the code under
/// test has gone to sleep, so it can advance the clock at the right moment instead of guessing
/// with a real delay.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
    sleepers: watch::Sender<usize>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> ManualClock {
        ManualClock { now: watch::Sender::new(start), sleepers: watch::Sender::new(0) }
    }

    /// Moves the clock forward by `by` and wakes every sleeper whose time has come.
    pub fn advance(&self, by: Duration) {
        let by = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        self.now.send_modify(|now| *now = now.checked_add_signed(by).unwrap_or(DateTime::<Utc>::MAX_UTC));
    }

    /// Sets the clock to `t` (also backwards, like a wall clock being corrected).
    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }

    /// How many [`Clock::sleep_until`] calls are waiting right now.
    pub fn sleepers(&self) -> usize {
        *self.sleepers.borrow()
    }

    /// Returns once at least `n` calls to [`Clock::sleep_until`] are waiting.
    pub async fn until_sleepers(&self, n: usize) {
        let mut rx = self.sleepers.subscribe();
        // The sender lives in `self`, which outlives this borrow: `wait_for` cannot fail.
        let _ = rx.wait_for(|count| *count >= n).await;
    }
}

/// Counts a sleeper while it waits, also when its future is dropped (a cancelled `select!`).
struct Sleeping<'a>(&'a watch::Sender<usize>);

impl<'a> Sleeping<'a> {
    fn new(count: &'a watch::Sender<usize>) -> Self {
        count.send_modify(|n| *n += 1);
        Sleeping(count)
    }
}

impl Drop for Sleeping<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut rx = self.now.subscribe();
        let start = *rx.borrow_and_update();
        if start >= t {
            return;
        }
        let _counted = Sleeping::new(&self.sleepers);
        // The sender lives in `self`, which outlives this borrow: `wait_for` cannot fail.
        let _ = rx.wait_for(|now| *now >= t || *now < start).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_on_advance() {
        let clock = Arc::new(ManualClock::new(utc("2026-03-02T10:00:00Z")));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let early = tokio::spawn({
            let c = dyn_clock.clone();
            async move { c.sleep_until(utc("2026-03-02T10:05:00Z")).await }
        });
        let late = tokio::spawn({
            let c = dyn_clock.clone();
            async move { c.sleep_until(utc("2026-03-02T10:30:00Z")).await }
        });
        clock.until_sleepers(2).await;
        assert_eq!(clock.sleepers(), 2);

        clock.advance(Duration::from_secs(4 * 60));
        tokio::task::yield_now().await;
        assert!(!early.is_finished(), "10:04 is not 10:05");

        clock.advance(Duration::from_secs(60));
        early.await.unwrap();
        assert_eq!(dyn_clock.now(), utc("2026-03-02T10:05:00Z"));
        clock.until_sleepers(1).await;
        assert!(!late.is_finished());

        clock.set(utc("2026-03-02T11:00:00Z"));
        late.await.unwrap();
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn manual_clock_past_times_return_at_once() {
        let clock = ManualClock::new(utc("2026-03-02T10:00:00Z"));
        clock.sleep_until(utc("2026-03-02T10:00:00Z")).await;
        clock.sleep_until(utc("2020-01-01T00:00:00Z")).await;
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn a_dropped_sleep_is_no_longer_counted() {
        let clock = Arc::new(ManualClock::new(utc("2026-03-02T10:00:00Z")));
        let sleeper = tokio::spawn({
            let c = clock.clone();
            async move { c.sleep_until(utc("2026-03-03T00:00:00Z")).await }
        });
        clock.until_sleepers(1).await;
        sleeper.abort();
        assert!(sleeper.await.unwrap_err().is_cancelled());
        assert_eq!(clock.sleepers(), 0);
    }

    #[tokio::test]
    async fn system_clock_now_and_past_wakeups() {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let before = Utc::now();
        let now = clock.now();
        assert!(now >= before && now - before < TimeDelta::seconds(5));
        // Already due: returns without sleeping.
        clock.sleep_until(now - TimeDelta::hours(1)).await;
    }

    #[test]
    fn system_clock_sleeps_in_chunks_of_a_minute() {
        let now = utc("2026-03-02T10:00:00Z");
        assert_eq!(next_chunk(now, now + TimeDelta::hours(3)), Some(Duration::from_secs(60)));
        assert_eq!(next_chunk(now, now + TimeDelta::seconds(12)), Some(Duration::from_secs(12)));
        assert_eq!(next_chunk(now, now + TimeDelta::milliseconds(1)), Some(Duration::from_millis(1)));
        assert_eq!(next_chunk(now, now), None);
        assert_eq!(next_chunk(now, now - TimeDelta::hours(1)), None, "the clock jumped past it");
    }

    #[test]
    fn a_clock_set_back_during_a_sleep_is_noticed() {
        let before = utc("2026-03-02T10:00:00Z");
        let minute = Duration::from_secs(60);
        assert!(!set_back(before, before + TimeDelta::seconds(60), minute));
        assert!(!set_back(before, before + TimeDelta::seconds(57), minute), "a little slow: not set back");
        assert!(set_back(before, before + TimeDelta::seconds(50), minute));
        assert!(set_back(before, before - TimeDelta::days(1), minute), "a clock a day ahead, corrected");
        assert!(!set_back(before, before + TimeDelta::hours(3), minute), "a suspend, or a clock set forward");
        assert!(!set_back(before, before, Duration::from_secs(2)), "a sleep shorter than the margin");
    }

    #[tokio::test]
    async fn manual_clock_set_back_wakes_sleepers() {
        let clock = Arc::new(ManualClock::new(utc("2026-03-02T10:00:00Z")));
        let sleeper = tokio::spawn({
            let c = clock.clone();
            async move { c.sleep_until(utc("2026-03-02T11:00:00Z")).await }
        });
        clock.until_sleepers(1).await;
        clock.set(utc("2026-03-02T09:00:00Z"));
        sleeper.await.unwrap();
        assert_eq!(clock.sleepers(), 0);
    }
}
