//! The event log and each flow's health, in the ledger.
//!
//! Tables:
//! - `events_v2`: (flow, seq) → [`Event`]: things someone should hear about — a failed run, a
//!   quarantined file, an endpoint unreachable several runs in a row and its recovery, an
//!   expected file missing at its deadline, an overdue/late/expired response — with the run
//!   that raised it, numbered by one ledger-wide sequence so a notifier reads "every event
//!   after N" and remembers N (`notify_cursor` in `counters_v1`): a crash between sending and
//!   remembering sends again, never loses a notice. (`events_v1`, without the run, is
//!   converted by `migrate`.)
//! - `notify_held_v1`: `"held"` → what the notifier's throttles hold back (the notifier's own
//!   encoding, opaque here), written in the same transaction as the cursor
//!   ([`Ledger::set_notify_state`]): a held-back notice whose event the cursor passed is in
//!   it, so a crash does not lose it (see `serve::notifier`). And `"summary/<run>"` → a run
//!   summary not sent yet (the notifier's encoding): stored as the run is reported finished,
//!   removed in the transaction that stores the cursor once its sends are over (or it is held
//!   back, and so in `"held"`), so a crash or a cut-off stop does not lose it either.
//! - `health_v1`: flow → [`FlowHealth`]: the streaks the engine's alert rules need across runs
//!   (runs in a row that could not reach an endpoint, that failed) and whether a problem was
//!   announced (so its recovery is announced once). Beside it in `counters_v1`, per flow: how
//!   many runs `overlap: skip` skipped, and when the last was ([`Ledger::skipped_runs`]), and
//!   when a daemon first served the flow ([`Ledger::served_since`]).
//!
//! An event is appended in the same transaction as the state change it reports, so it is
//! recorded exactly once. This module stores and lists; *when* an event happens is decided in
//! `engine/alerts.rs` and `engine/awaits.rs`.

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::codec::Postcard;
use super::{COUNTERS, Ledger, LedgerError, Millis, RUNS, RunRecord};

pub(super) const EVENTS: TableDefinition<(&str, u64), Postcard<Event>> = TableDefinition::new("events_v2");
pub(super) const HEALTH: TableDefinition<&str, Postcard<FlowHealth>> = TableDefinition::new("health_v1");

/// The `counters_v1` key of the last event sequence number the notifier has handled.
pub(super) const NOTIFY_CURSOR: &str = "notify_cursor";

/// The `counters_v1` key of the newest event pruning forgot before the notifier sent it (a
/// ledger whose daemon stopped, run from cron since: `ledger::prune`).
pub(super) const UNSENT_FORGOTTEN_UPTO: &str = "unsent_forgotten_upto";

/// The `counters_v1` key of how many events pruning forgot unsent, up to
/// [`UNSENT_FORGOTTEN_UPTO`], since the notifier's cursor last passed the one before.
pub(super) const UNSENT_FORGOTTEN: &str = "unsent_forgotten";

/// What the notifier's throttles hold back, under the key [`HELD`] (see the module doc).
pub(super) const NOTIFY_HELD: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_held_v1");

/// The key of [`NOTIFY_HELD`] for what the throttles hold back.
const HELD: &str = "held";

/// The key of [`NOTIFY_HELD`] for the summary of run `run` not sent yet (zero-padded: the
/// keys order by run).
fn summary_key(run: u64) -> String {
    format!("{SUMMARY}{run:020}")
}

/// The prefix of [`summary_key`].
const SUMMARY: &str = "summary/";

/// The key of [`NOTIFY_HELD`] for the `n`th list of notices held back set aside unread (a
/// list this build's notifier could not read: see [`settle_notify_held`](Ledger::settle_notify_held)).
fn set_aside_key(n: u64) -> String {
    format!("{SET_ASIDE}{n:020}")
}

/// The prefix of [`set_aside_key`].
const SET_ASIDE: &str = "unread/";

/// The values of [`NOTIFY_HELD`] under `prefix` followed by a number ([`summary_key`],
/// [`set_aside_key`]), by that number, in its order. Keys written by those only: another one
/// is skipped, not misread.
fn numbered(table: &impl ReadableTable<&'static str, &'static [u8]>, prefix: &str) -> Result<Vec<(u64, Vec<u8>)>, redb::StorageError> {
    let mut out = Vec::new();
    for item in table.range(prefix..)? {
        let (k, v) = item?;
        let Some(n) = k.value().strip_prefix(prefix) else { break };
        if let Ok(n) = n.parse() {
            out.push((n, v.value().to_vec()));
        }
    }
    Ok(out)
}

/// What the notifier makes of the stored list of notices held back and of those set aside
/// ([`Ledger::settle_notify_held`]).
pub struct Settle<T> {
    /// The list to store instead of the one stored (`None`: leave it as it is).
    pub held: Option<Vec<u8>>,
    /// The stored list is set aside (under a key of its own) before `held` is stored.
    pub set_aside: bool,
    /// The lists set aside to drop (by their number): read now, and in `held`.
    pub adopted: Vec<u64>,
    /// What to answer.
    pub answer: T,
}

/// The `counters_v1` key of the fingerprint of the `expect:` rules the flow's
/// `expect_checked` mark was made for (a separate key: [`FlowHealth`] is stored with
/// postcard, which cannot take a new field without a new table).
pub(super) fn expect_rules_key(flow: &str) -> String {
    format!("expect_rules/{flow}")
}

/// The `counters_v1` key of how many runs of `flow` were skipped (`overlap: skip`).
pub(super) fn skipped_runs_key(flow: &str) -> String {
    format!("runs_skipped/{flow}")
}

/// The `counters_v1` key of when the last run of `flow` was skipped (milliseconds).
pub(super) fn skipped_at_key(flow: &str) -> String {
    format!("run_skipped_at/{flow}")
}

/// The `counters_v1` key of when a daemon first served `flow` (milliseconds).
pub(super) fn served_since_key(flow: &str) -> String {
    format!("served_since/{flow}")
}

/// What an [`Event`] is about. New kinds are appended (postcard stores the variant index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An awaited response was not there at its deadline.
    Overdue,
    /// An awaited response arrived after its deadline.
    Late,
    /// An awaited response was given up (`expire_after`).
    Expired,
    /// A run failed (a file could not be delivered) or was aborted for a reason other than an
    /// unreachable endpoint.
    Failed,
    /// A file was put aside in the quarantine (subject: its path; detail: why).
    Quarantined,
    /// An endpoint could not be reached `alerts.unreachable_after` runs in a row.
    Unreachable,
    /// The first good run after a `failed` or `unreachable` event.
    Recovered,
    /// No file was delivered in an `expect:` window by its deadline.
    Missing,
    /// A listing of the source showed an entry the flow's globs match that can never be taken:
    /// a name that is not safe to use, or not a regular file (subject: the path as shown;
    /// detail: why). Once while it stays (`ledger::unsafe_names`). Also a listed file the login
    /// has not been allowed to read for `engine::alerts::UNREADABLE_AFTER` (once, with its
    /// record: `engine::lifecycle::unreadable`). Was `UnsafeName` (index 8):
    /// stored events read the same.
    NotTaken,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 9] = [
        EventKind::Overdue,
        EventKind::Late,
        EventKind::Expired,
        EventKind::Failed,
        EventKind::Quarantined,
        EventKind::Unreachable,
        EventKind::Recovered,
        EventKind::Missing,
        EventKind::NotTaken,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Overdue => "overdue",
            EventKind::Late => "late",
            EventKind::Expired => "expired",
            EventKind::Failed => "failed",
            EventKind::Quarantined => "quarantined",
            EventKind::Unreachable => "unreachable",
            EventKind::Recovered => "recovered",
            EventKind::Missing => "missing",
            EventKind::NotTaken => "not_taken",
        }
    }
}

/// Something worth telling someone about (table `events_v2`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Ledger-wide sequence number (increasing; never reused).
    pub seq: u64,
    pub flow: String,
    #[serde(with = "crate::timestamp::millis")]
    pub at: Millis,
    pub kind: EventKind,
    /// What it is about: a file's or request's path; empty for a run-level event.
    pub subject: String,
    pub detail: String,
    /// The run that raised it; `None` when no run is behind it (an `expect:` deadline judged
    /// by the daemon's clock) or it was recorded before events knew their run.
    pub run: Option<u64>,
}

/// An event to append (the ledger numbers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub flow: String,
    pub at: Millis,
    pub kind: EventKind,
    pub subject: String,
    pub detail: String,
    /// The run that raised it (see [`Event::run`]).
    pub run: Option<u64>,
}

/// A flow's alerting state across runs (table `health_v1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowHealth {
    /// Runs in a row that could not reach an endpoint.
    pub unreachable_streak: u32,
    /// Runs in a row that failed or were aborted (unreachable ones included).
    pub failing_streak: u32,
    /// A `failed` or `unreachable` event was recorded and no `recovered` since.
    pub alerting: bool,
    /// When the last run with status ok finished.
    #[serde(with = "crate::timestamp::millis_opt")]
    pub last_ok: Option<Millis>,
    /// The last `expect:` deadline that was checked (so a restart does not check it again).
    #[serde(with = "crate::timestamp::millis_opt")]
    pub expect_checked: Option<Millis>,
}

/// Appends one event inside `tx`, numbering it.
pub(super) fn append(tx: &redb::WriteTransaction, ev: &NewEvent) -> Result<Event, redb::Error> {
    let mut counters = tx.open_table(COUNTERS)?;
    let seq = super::next_number(&counters, "event")?;
    counters.insert("event", seq)?;
    let out =
        Event { seq, flow: ev.flow.clone(), at: ev.at, kind: ev.kind, subject: ev.subject.clone(), detail: ev.detail.clone(), run: ev.run };
    tx.open_table(EVENTS)?.insert((ev.flow.as_str(), seq), &out)?;
    Ok(out)
}

fn update_health(
    tx: &redb::WriteTransaction,
    flow: &str,
    change: impl FnOnce(&FlowHealth) -> (FlowHealth, Vec<NewEvent>),
) -> Result<Vec<Event>, redb::Error> {
    let mut table = tx.open_table(HEALTH)?;
    let old = table.get(flow)?.map(|v| v.value()).unwrap_or_default();
    let (new, events) = change(&old);
    table.insert(flow, &new)?;
    drop(table);
    events.iter().map(|e| append(tx, e)).collect()
}

impl Ledger {
    /// Creates the tables (called by `init`).
    pub(super) fn init_events(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
        tx.open_table(EVENTS)?;
        tx.open_table(HEALTH)?;
        tx.open_table(NOTIFY_HELD)?;
        Ok(())
    }

    /// Appends events in one transaction; returns them numbered.
    pub fn record_events(&self, events: &[NewEvent]) -> Result<Vec<Event>, LedgerError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| events.iter().map(|e| append(tx, e)).collect())
    }

    /// Stores the final state of a run together with the flow's new health and the events the
    /// run caused, in one transaction: `judge` gets the health as stored and returns the new
    /// one with the events.
    pub fn finish_run_with(
        &self,
        rec: &RunRecord,
        judge: impl FnOnce(&FlowHealth) -> (FlowHealth, Vec<NewEvent>),
    ) -> Result<Vec<Event>, LedgerError> {
        self.write(|tx| {
            tx.open_table(RUNS)?.insert((rec.flow.as_str(), rec.id), rec)?;
            update_health(tx, &rec.flow, judge)
        })
    }

    /// A flow's health (the default for a flow that never ran).
    pub fn health(&self, flow: &str) -> Result<FlowHealth, LedgerError> {
        self.read(|tx| Ok(tx.open_table(HEALTH)?.get(flow)?.map(|v| v.value()).unwrap_or_default()))
    }

    /// Updates a flow's health and appends the events `change` returns, in one transaction.
    pub fn update_health(
        &self,
        flow: &str,
        change: impl FnOnce(&FlowHealth) -> (FlowHealth, Vec<NewEvent>),
    ) -> Result<Vec<Event>, LedgerError> {
        self.write(|tx| update_health(tx, flow, change))
    }

    /// The flow's `expect_checked` mark and the fingerprint of the `expect:` rules it was made
    /// for (`None`: not recorded; an older wharf kept only the mark).
    pub fn expect_mark(&self, flow: &str) -> Result<(Option<Millis>, Option<u64>), LedgerError> {
        self.read(|tx| {
            let mark = tx.open_table(HEALTH)?.get(flow)?.and_then(|v| v.value().expect_checked);
            let rules = tx.open_table(COUNTERS)?.get(expect_rules_key(flow).as_str())?.map(|v| v.value());
            Ok((mark, rules))
        })
    }

    /// Sets the flow's `expect_checked` mark, made for the rules of fingerprint `rules`
    /// (`None` for both: the flow no longer expects files), and appends `events`, in one
    /// transaction.
    pub fn set_expect_mark(&self, flow: &str, mark: Option<(Millis, u64)>, events: Vec<NewEvent>) -> Result<Vec<Event>, LedgerError> {
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            match mark {
                Some((_, rules)) => counters.insert(expect_rules_key(flow).as_str(), rules)?,
                None => counters.remove(expect_rules_key(flow).as_str())?,
            };
            drop(counters);
            update_health(tx, flow, |h| (FlowHealth { expect_checked: mark.map(|(at, _)| at), ..h.clone() }, events))
        })
    }

    /// Counts `n` runs of `flow` that were due while its previous run was still going, and
    /// were skipped (`overlap:`; the daemon decides, `serve::supervisor`, and writes them
    /// off its loop, `serve::skips`), the last at `at`: kept with the flow (`counters_v1`,
    /// until `wharf forget`), so `wharf status` counts skips across restarts. Returns the
    /// count so far.
    pub fn count_skipped_runs(&self, flow: &str, n: u64, at: Millis) -> Result<u64, LedgerError> {
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let n = counters.get(skipped_runs_key(flow).as_str())?.map_or(0, |v| v.value()).saturating_add(n);
            counters.insert(skipped_runs_key(flow).as_str(), n)?;
            // Stored as the bits of the (non-negative) time: the table holds `u64`s.
            counters.insert(skipped_at_key(flow).as_str(), at.max(0) as u64)?;
            Ok(n)
        })
    }

    /// How many runs of `flow` were skipped ([`count_skipped_runs`](Self::count_skipped_runs)),
    /// and when the last one was; `(0, None)` for none.
    pub fn skipped_runs(&self, flow: &str) -> Result<(u64, Option<Millis>), LedgerError> {
        self.read(|tx| {
            let counters = tx.open_table(COUNTERS)?;
            let n = counters.get(skipped_runs_key(flow).as_str())?.map_or(0, |v| v.value());
            let at = counters.get(skipped_at_key(flow).as_str())?.map(|v| Millis::try_from(v.value()).unwrap_or(Millis::MAX));
            Ok((n, at))
        })
    }

    /// When a daemon first served `flow` with this ledger: the time stored the first time it
    /// was asked for, `now` then (`counters_v1`, until `wharf forget`). What a stale-flow alert
    /// measures a flow that never succeeded from, across restarts (`control::metrics`).
    pub fn served_since(&self, flow: &str, now: Millis) -> Result<Millis, LedgerError> {
        let key = served_since_key(flow);
        let stored = |v: u64| Millis::try_from(v).unwrap_or(Millis::MAX);
        if let Some(v) = self.read(|tx| Ok(tx.open_table(COUNTERS)?.get(key.as_str())?.map(|v| v.value())))? {
            return Ok(stored(v));
        }
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            // Read again in the write: another writer cannot have stored one in between (there
            // is one writer), but this keeps the first time whatever calls this.
            if let Some(v) = counters.get(key.as_str())?.map(|v| v.value()) {
                return Ok(stored(v));
            }
            // Stored as the bits of the (non-negative) time: the table holds `u64`s.
            counters.insert(key.as_str(), now.max(0) as u64)?;
            Ok(now.max(0))
        })
    }

    /// The sequence number of the last event the notifier handled; `None` before any notifier
    /// ever ran (it then starts from the newest event instead of replaying history).
    pub fn notify_cursor(&self) -> Result<Option<u64>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(COUNTERS)?.get(NOTIFY_CURSOR)?.map(|v| v.value())))
    }

    /// Events the notifier never sent that pruning forgot, when there are such events after
    /// its cursor `after`: how many, and the newest one's sequence number. A notifier
    /// resuming there skips them (they are gone) and says so.
    pub fn forgotten_unsent(&self, after: u64) -> Result<Option<(u64, u64)>, LedgerError> {
        self.read(|tx| {
            let counters = tx.open_table(COUNTERS)?;
            let Some(upto) = counters.get(UNSENT_FORGOTTEN_UPTO)?.map(|v| v.value()) else { return Ok(None) };
            let count = counters.get(UNSENT_FORGOTTEN)?.map_or(0, |v| v.value());
            Ok((upto > after).then_some((count, upto)))
        })
    }

    /// The sequence number of the newest event (0: none yet).
    pub fn last_event_seq(&self) -> Result<u64, LedgerError> {
        self.read(|tx| Ok(tx.open_table(COUNTERS)?.get("event")?.map(|v| v.value()).unwrap_or(0)))
    }

    /// Remembers that every event up to `seq` was handled. Never moves backwards.
    pub fn set_notify_cursor(&self, seq: u64) -> Result<(), LedgerError> {
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let old = counters.get(NOTIFY_CURSOR)?.map(|v| v.value());
            // Absent is not 0: it means "no notifier yet" (see `notify_cursor`).
            if old.is_none_or(|old| seq > old) {
                counters.insert(NOTIFY_CURSOR, seq)?;
            }
            Ok(())
        })
    }

    /// What the notifier's throttles held back when it last stored its state
    /// ([`set_notify_state`](Self::set_notify_state)), in its own encoding; `None`: never
    /// stored.
    pub fn notify_held(&self) -> Result<Option<Vec<u8>>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(NOTIFY_HELD)?.get(HELD)?.map(|v| v.value().to_vec())))
    }

    /// Remembers, in one transaction, that every event up to `seq` was handled (the cursor
    /// never moves backwards) and what the throttles hold back now (`held`, the notifier's
    /// encoding): a notice held back is never only in memory once its event is passed.
    /// The run summaries in `summaries_over` (run numbers) are no longer pending: their sends
    /// are over, or they are held back (in `held`).
    pub fn set_notify_state(&self, seq: u64, held: &[u8], summaries_over: &[u64]) -> Result<(), LedgerError> {
        self.write(|tx| {
            let mut counters = tx.open_table(COUNTERS)?;
            let old = counters.get(NOTIFY_CURSOR)?.map(|v| v.value());
            if old.is_none_or(|old| seq > old) {
                counters.insert(NOTIFY_CURSOR, seq)?;
            }
            let mut table = tx.open_table(NOTIFY_HELD)?;
            table.insert(HELD, held)?;
            for &run in summaries_over {
                table.remove(summary_key(run).as_str())?;
            }
            Ok(())
        })
    }

    /// Keeps the summary of run `run` (the notifier's encoding, opaque here) until the
    /// notifier says it is sent ([`set_notify_state`](Self::set_notify_state)): a crash
    /// before then finds it in [`notify_summaries`](Self::notify_summaries).
    pub fn put_notify_summary(&self, run: u64, summary: &[u8]) -> Result<(), LedgerError> {
        self.write(|tx| {
            tx.open_table(NOTIFY_HELD)?.insert(summary_key(run).as_str(), summary)?;
            Ok(())
        })
    }

    /// Drops the run summaries not sent yet that `pick` picks (given each one as stored), in
    /// one transaction; how many went (`wharf forget` drops a flow's).
    pub fn drop_notify_summaries(&self, pick: impl Fn(&[u8]) -> bool) -> Result<usize, LedgerError> {
        self.write(|tx| {
            let mut table = tx.open_table(NOTIFY_HELD)?;
            let mut picked = Vec::new();
            for item in table.range(SUMMARY..)? {
                let (k, v) = item?;
                if !k.value().starts_with(SUMMARY) {
                    break;
                }
                if pick(v.value()) {
                    picked.push(k.value().to_string());
                }
            }
            for k in &picked {
                table.remove(k.as_str())?;
            }
            Ok(picked.len())
        })
    }

    /// The run summaries not sent yet ([`put_notify_summary`](Self::put_notify_summary)), by
    /// run, oldest first.
    pub fn notify_summaries(&self) -> Result<Vec<(u64, Vec<u8>)>, LedgerError> {
        self.read(|tx| Ok(numbered(&tx.open_table(NOTIFY_HELD)?, SUMMARY)?))
    }

    /// Changes what the notifier's throttles hold back, in one transaction: `edit` gets the
    /// stored list (`None`: never stored) and returns the one to store instead (`None`: leave
    /// it as it is) with what to answer. The list stays opaque here: whoever edits it knows
    /// the notifier's encoding (`wharf forget` drops a flow's notices, see
    /// [`Held::without_flows`](crate::notify::Held::without_flows)). The cursor is not moved.
    pub fn edit_notify_held<T>(&self, edit: impl FnOnce(Option<&[u8]>) -> (Option<Vec<u8>>, T)) -> Result<T, LedgerError> {
        self.write(|tx| {
            let mut table = tx.open_table(NOTIFY_HELD)?;
            let old = table.get(HELD)?.map(|v| v.value().to_vec());
            let (new, answer) = edit(old.as_deref());
            if let Some(new) = new {
                table.insert(HELD, new.as_slice())?;
            }
            Ok(answer)
        })
    }

    /// Settles, in one transaction, the notifier's stored list of notices held back and the
    /// lists set aside before: `settle` gets the stored list (`None`: never stored) and those
    /// set aside (by number, oldest first) and says what becomes of them ([`Settle`]). A list
    /// the notifier cannot read (a newer wharf's) is set aside rather than written over: kept
    /// for the wharf that reads it, while the notifier stores a list of its own under the key
    /// it reads. Opaque here, as the stored list.
    pub fn settle_notify_held<T>(&self, settle: impl FnOnce(Option<&[u8]>, &[(u64, Vec<u8>)]) -> Settle<T>) -> Result<T, LedgerError> {
        self.write(|tx| {
            let mut table = tx.open_table(NOTIFY_HELD)?;
            let held = table.get(HELD)?.map(|v| v.value().to_vec());
            let aside = numbered(&table, SET_ASIDE)?;
            let s = settle(held.as_deref(), &aside);
            if let (true, Some(old)) = (s.set_aside, &held) {
                let next = aside.last().map_or(1, |(n, _)| n + 1);
                table.insert(set_aside_key(next).as_str(), old.as_slice())?;
                table.remove(HELD)?;
            }
            for &n in &s.adopted {
                table.remove(set_aside_key(n).as_str())?;
            }
            if let Some(new) = &s.held {
                table.insert(HELD, new.as_slice())?;
            }
            Ok(s.answer)
        })
    }

    /// The newest `limit` events, oldest first; all flows when `flow` is `None`. What someone
    /// asking "what happened lately" wants (a notifier reads on with [`events`](Self::events)).
    pub fn latest_events(&self, flow: Option<&str>, limit: usize) -> Result<Vec<Event>, LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(EVENTS)?;
            let mut out = match flow {
                Some(f) => {
                    t.range((f, 0)..=(f, u64::MAX))?.rev().take(limit).map(|item| item.map(|(_, v)| v.value())).collect::<Result<_, _>>()?
                }
                None => last_of_all_flows(&t, limit)?,
            };
            out.reverse();
            Ok(out)
        })
    }

    /// Events with a sequence number above `since_seq`, oldest first, at most `limit`; all
    /// flows when `flow` is `None`. A notifier remembers the last `seq` it handled.
    pub fn events(&self, flow: Option<&str>, since_seq: u64, limit: usize) -> Result<Vec<Event>, LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(EVENTS)?;
            let mut out = Vec::new();
            match flow {
                Some(f) => {
                    // Keys order by flow, then seq: this flow's newer events are one range.
                    for item in t.range((f, since_seq.saturating_add(1))..=(f, u64::MAX))? {
                        if out.len() >= limit {
                            break;
                        }
                        out.push(item?.1.value());
                    }
                }
                None => out = first_of_all_flows(&t, since_seq, limit)?,
            }
            Ok(out)
        })
    }
}

/// The newest `limit` events of all flows, newest first: [`first_of_all_flows`] the other way
/// round (each flow's older events as one range, none before the oldest kept so far).
fn last_of_all_flows(t: &redb::ReadOnlyTable<(&'static str, u64), Postcard<Event>>, limit: usize) -> Result<Vec<Event>, redb::Error> {
    use std::ops::Bound;
    let mut out: Vec<Event> = Vec::new();
    let mut flow = t.first()?.map(|(k, _)| k.value().0.to_string());
    while let Some(f) = flow {
        // Once `limit` are kept, only events after the oldest of them can still be taken.
        let from = if out.len() >= limit { out.last().map_or(u64::MAX, |e| e.seq.saturating_add(1)) } else { 0 };
        for item in t.range((f.as_str(), from)..=(f.as_str(), u64::MAX))?.rev().take(limit) {
            out.push(item?.1.value());
        }
        out.sort_by_key(|e| std::cmp::Reverse(e.seq));
        out.truncate(limit);
        let next = (Bound::Excluded((f.as_str(), u64::MAX)), Bound::Unbounded);
        flow = t.range::<(&str, u64)>(next)?.next().transpose()?.map(|(k, _)| k.value().0.to_string());
    }
    Ok(out)
}

/// The first `limit` events above `since_seq` of all flows, oldest first. Keys order by flow,
/// then seq: a skip-scan reads each flow's newer events as one range (at most `limit` of
/// them, none past the newest kept so far) and jumps to the next flow's first key. It costs
/// O(flows × limit) reads however long the history, not a scan of every event stored.
fn first_of_all_flows(
    t: &redb::ReadOnlyTable<(&'static str, u64), Postcard<Event>>,
    since_seq: u64,
    limit: usize,
) -> Result<Vec<Event>, redb::Error> {
    use std::ops::Bound;
    let mut out: Vec<Event> = Vec::new();
    let mut flow = t.first()?.map(|(k, _)| k.value().0.to_string());
    while let Some(f) = flow {
        // Once `limit` are kept, only events before the newest of them can still be taken.
        let upto = if out.len() >= limit { out.last().map_or(since_seq, |e| e.seq) } else { u64::MAX };
        if since_seq < upto {
            for item in t.range((f.as_str(), since_seq + 1)..=(f.as_str(), upto))?.take(limit) {
                out.push(item?.1.value());
            }
            out.sort_by_key(|e| e.seq);
            out.truncate(limit);
        }
        let next = (Bound::Excluded((f.as_str(), u64::MAX)), Bound::Unbounded);
        flow = t.range::<(&str, u64)>(next)?.next().transpose()?.map(|(k, _)| k.value().0.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expect_mark_is_kept_with_its_rules_and_forgotten_with_the_flow() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(l.expect_mark("f").unwrap(), (None, None));
        l.update_health("f", |h| (FlowHealth { alerting: true, ..h.clone() }, Vec::new())).unwrap();
        l.set_expect_mark("f", Some((5, 42)), Vec::new()).unwrap();
        assert_eq!(l.expect_mark("f").unwrap(), (Some(5), Some(42)));
        assert!(l.health("f").unwrap().alerting, "the rest of the health is kept");
        l.set_expect_mark("f", None, Vec::new()).unwrap();
        assert_eq!(l.expect_mark("f").unwrap(), (None, None));
        l.set_expect_mark("f", Some((6, 43)), Vec::new()).unwrap();
        assert!(!l.forget("f", 100).unwrap().more);
        assert_eq!(l.expect_mark("f").unwrap(), (None, None), "forgotten with the flow");
    }

    /// Runs skipped by `overlap: skip` were counted in the daemon's memory only: a restart
    /// lost them from `wharf status`. Counted in the ledger now, per flow, with the time of
    /// the last; forgotten with the flow.
    #[test]
    fn skipped_runs_are_counted_per_flow_and_kept_until_the_flow_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.skipped_runs("f").unwrap(), (0, None));
        assert_eq!(l.count_skipped_runs("f", 1, 1_000).unwrap(), 1);
        assert_eq!(l.count_skipped_runs("f", 2, 2_000).unwrap(), 3);
        l.count_skipped_runs("fg", 1, 3_000).unwrap();
        drop(l);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.skipped_runs("f").unwrap(), (3, Some(2_000)), "kept across a restart");
        assert_eq!(l.skipped_runs("fg").unwrap(), (1, Some(3_000)));
        assert!(!l.forget("f", 100).unwrap().more);
        assert_eq!(l.skipped_runs("f").unwrap(), (0, None), "forgotten with the flow");
        assert_eq!(l.skipped_runs("fg").unwrap(), (1, Some(3_000)));
    }

    /// When a daemon first served a flow is stored the first time it is asked for and kept
    /// across restarts (a stale-flow alert measures a flow that never succeeded from it),
    /// until the flow is forgotten.
    #[test]
    fn the_time_a_flow_was_first_served_is_kept_until_the_flow_is_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.served_since("f", 1_000).unwrap(), 1_000);
        assert_eq!(l.served_since("f", 5_000).unwrap(), 1_000, "the first time stays");
        assert_eq!(l.served_since("fg", 2_000).unwrap(), 2_000);
        drop(l);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.served_since("f", 9_000).unwrap(), 1_000, "kept across a restart");
        assert!(!l.forget("f", 100).unwrap().more);
        assert_eq!(l.served_since("f", 9_000).unwrap(), 9_000, "forgotten with the flow");
        assert_eq!(l.served_since("fg", 9_000).unwrap(), 2_000);
    }

    /// `NotTaken` was `UnsafeName`: postcard stores the variant's index (8), not its name, so
    /// events recorded under the old name read as `not_taken`. Renaming a variant is safe;
    /// moving one is not.
    #[test]
    fn an_event_recorded_as_unsafe_name_reads_as_not_taken() {
        // `Event { seq: 1, flow: "f", at: 1000, kind: UnsafeName, subject: "/in/l", detail: "d",
        // run: Some(3) }` as the build that named the kind `UnsafeName` stored it.
        let stored = [1, 1, b'f', 208, 15, 8, 5, b'/', b'i', b'n', b'/', b'l', 1, b'd', 1, 3];
        let ev = Event {
            seq: 1,
            flow: "f".into(),
            at: 1000,
            kind: EventKind::NotTaken,
            subject: "/in/l".into(),
            detail: "d".into(),
            run: Some(3),
        };
        assert_eq!(postcard::from_bytes::<Event>(&stored).unwrap(), ev);
        assert_eq!(postcard::to_allocvec(&ev).unwrap(), stored, "written as before");
        assert_eq!(EventKind::ALL.iter().position(|k| *k == EventKind::NotTaken), Some(8));
        assert_eq!(EventKind::NotTaken.as_str(), "not_taken");
    }

    fn ev(flow: &str, kind: EventKind) -> NewEvent {
        NewEvent { flow: flow.into(), at: 5, kind, subject: String::new(), detail: "d".into(), run: None }
    }

    #[test]
    fn kinds_keep_their_stored_index() {
        // postcard stores the variant index: appending is fine, reordering breaks old ledgers.
        for (i, kind) in EventKind::ALL.iter().enumerate() {
            assert_eq!(postcard::to_allocvec(kind).unwrap(), [i as u8], "{kind:?}");
        }
    }

    /// The events of all flows after a cursor (the notifier's read, skip-scanning the flows)
    /// are the first after it of every event stored, in order, whatever the flows, how their
    /// events interleave, the cursor and the limit.
    #[test]
    fn events_of_all_flows_are_the_first_after_the_cursor_in_order() {
        let l = Ledger::in_memory().unwrap();
        // Names that sort apart from the order their events come in, a prefix of another, the
        // empty one; one flow with most of the history.
        let flows = ["b", "a", "ab", "", "zz", "a", "a", "c"];
        let events: Vec<NewEvent> = (0..300).map(|i| ev(flows[(i * 7 + i / 13) % flows.len()], EventKind::Failed)).collect();
        l.record_events(&events[..150]).unwrap();
        l.record_events(&[ev("m", EventKind::Missing)]).unwrap();
        l.record_events(&events[150..]).unwrap();
        let mut all: Vec<Event> =
            ["", "a", "ab", "b", "c", "m", "zz"].iter().flat_map(|f| l.events(Some(f), 0, usize::MAX).unwrap()).collect();
        all.sort_by_key(|e| e.seq);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=301).collect::<Vec<_>>(), "every event, once");
        for since in [0, 1, 17, 150, 151, 299, 301, 400] {
            for limit in [0, 1, 2, 5, 100, 1000] {
                let expected: Vec<Event> = all.iter().filter(|e| e.seq > since).take(limit).cloned().collect();
                assert_eq!(l.events(None, since, limit).unwrap(), expected, "since {since}, limit {limit}");
            }
        }
    }

    /// The newest events of all flows (what `wharf events` shows without `--since`) are the
    /// last of every event stored, in order, whatever the flows and the limit.
    #[test]
    fn the_latest_events_are_the_last_stored_in_order() {
        let l = Ledger::in_memory().unwrap();
        let flows = ["b", "a", "ab", "", "zz", "a", "a", "c"];
        let events: Vec<NewEvent> = (0..300).map(|i| ev(flows[(i * 7 + i / 13) % flows.len()], EventKind::Failed)).collect();
        l.record_events(&events).unwrap();
        let all = l.events(None, 0, usize::MAX).unwrap();
        for limit in [0, 1, 2, 5, 100, 299, 300, 1000] {
            let expected: Vec<Event> = all[all.len().saturating_sub(limit)..].to_vec();
            assert_eq!(l.latest_events(None, limit).unwrap(), expected, "limit {limit}");
            let of_a: Vec<Event> = all.iter().filter(|e| e.flow == "a").cloned().collect();
            assert_eq!(l.latest_events(Some("a"), limit).unwrap(), of_a[of_a.len().saturating_sub(limit)..], "flow a, limit {limit}");
        }
        assert!(l.latest_events(Some("nope"), 10).unwrap().is_empty());
    }

    #[test]
    fn events_health_and_cursor_round_trip() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(l.health("f").unwrap(), FlowHealth::default());
        let h = FlowHealth { unreachable_streak: 2, failing_streak: 2, alerting: true, last_ok: Some(1), expect_checked: None };
        let evs = l.update_health("f", |_| (h.clone(), vec![ev("f", EventKind::Unreachable)])).unwrap();
        assert_eq!(evs[0].seq, 1);
        assert_eq!(l.health("f").unwrap(), h);
        let more = l.record_events(&[ev("g", EventKind::Failed), ev("f", EventKind::Recovered)]).unwrap();
        assert_eq!(more.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(l.events(None, 1, 10).unwrap().len(), 2);
        assert_eq!(l.notify_cursor().unwrap(), None);
        assert_eq!(l.last_event_seq().unwrap(), 3);
        l.set_notify_cursor(0).unwrap();
        assert_eq!(l.notify_cursor().unwrap(), Some(0), "a notifier that started before any event");
        l.set_notify_cursor(3).unwrap();
        l.set_notify_cursor(2).unwrap();
        assert_eq!(l.notify_cursor().unwrap(), Some(3));
        // With what the throttles hold back, in one transaction; the cursor still never
        // moves backwards, what is held is replaced.
        assert_eq!(l.notify_held().unwrap(), None);
        l.set_notify_state(2, b"[1]", &[]).unwrap();
        assert_eq!((l.notify_cursor().unwrap(), l.notify_held().unwrap()), (Some(3), Some(b"[1]".to_vec())));
        l.put_notify_summary(12, b"s12").unwrap();
        l.put_notify_summary(7, b"s7").unwrap();
        assert_eq!(l.notify_summaries().unwrap(), [(7, b"s7".to_vec()), (12, b"s12".to_vec())], "by run");
        l.set_notify_state(4, b"[]", &[7]).unwrap();
        assert_eq!((l.notify_cursor().unwrap(), l.notify_held().unwrap()), (Some(4), Some(b"[]".to_vec())));
        assert_eq!(l.notify_summaries().unwrap(), [(12, b"s12".to_vec())], "sent: no longer pending");
        let seen = l.edit_notify_held(|old| (Some(b"[2]".to_vec()), old.map(<[u8]>::to_vec))).unwrap();
        assert_eq!(seen.as_deref(), Some(&b"[]"[..]));
        assert_eq!(l.edit_notify_held(|_| (None, ())).map(|()| l.notify_held().unwrap()).unwrap(), Some(b"[2]".to_vec()), "left as is");
        assert_eq!(l.notify_cursor().unwrap(), Some(4), "the cursor does not move");
    }
}
