//! Awaited responses (round trips) and the event log, in the ledger.
//!
//! Tables:
//! - `awaits_v2`: (flow, expected response path) → [`AwaitRecord`]: one per request awaiting
//!   its response, with its state, deadline and the correlation once answered (`awaits_v1`
//!   records are converted by `migrate`);
//! - `await_requests_v1`: (flow, request identity) → expected response path: what makes
//!   registering idempotent (a resumed or repeated registration of the same delivered file is
//!   a no-op even if the response name template uses `run` or `date`);
//!
//! A state change and its event (`events_v2`, see `events.rs`) are one transaction: an event
//! is recorded exactly once. This
//! module stores and lists; *when* a state changes is decided in `engine/awaits.rs`, or by
//! the operator ([`Ledger::close_await`], `wharf awaits close`).

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use super::codec::Postcard;
use super::events::{Event, EventKind, NewEvent, append};
use super::newest::{Keep, Newest};
use super::{Ledger, LedgerError, Millis, flow_range};

pub(super) const AWAITS: TableDefinition<(&str, &str), Postcard<AwaitRecord>> = TableDefinition::new("awaits_v2");
pub(super) const AWAIT_REQUESTS: TableDefinition<(&str, &str), &str> = TableDefinition::new("await_requests_v1");

/// Where an awaited response stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwaitState {
    /// Not there yet; the deadline has not passed (or no run looked since it did).
    #[default]
    Waiting,
    /// A run after the deadline did not find it (an `overdue` event was recorded); still awaited.
    Overdue,
    /// Arrived by the deadline, and taken through the response's steps and sinks.
    Answered,
    /// Arrived after the deadline, and taken like an answered one (a `late` event was recorded).
    Late,
    /// Not there by `expire_after`: no longer awaited (an `expired` event was recorded).
    Expired,
    /// Arrived, but the response's content steps refused it: quarantined, with reports.
    Rejected,
}

impl AwaitState {
    /// Still awaited: the response folder is checked for it.
    pub fn is_open(self) -> bool {
        matches!(self, AwaitState::Waiting | AwaitState::Overdue)
    }

    /// Lower-case name for tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AwaitState::Waiting => "waiting",
            AwaitState::Overdue => "overdue",
            AwaitState::Answered => "answered",
            AwaitState::Late => "late",
            AwaitState::Expired => "expired",
            AwaitState::Rejected => "rejected",
        }
    }
}

/// One request awaiting its response (table `awaits_v1`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitRecord {
    pub flow: String,
    /// The request's source path.
    pub request: String,
    /// The request's identity (see `engine::identity`), which makes registering idempotent.
    pub request_identity: String,
    /// Where the request was delivered (`endpoint:/path`), the name the response is named after.
    pub request_target: String,
    /// The run that delivered the request.
    pub request_run: u64,
    /// The expected response's path on the response endpoint.
    pub expected: String,
    /// When every sink had confirmed the request.
    #[serde(with = "crate::timestamp::millis")]
    pub sent_at: Millis,
    #[serde(with = "crate::timestamp::millis")]
    pub deadline_at: Millis,
    /// When waiting stops (`None`: never).
    #[serde(with = "crate::timestamp::millis_opt")]
    pub expire_at: Option<Millis>,
    pub state: AwaitState,
    /// The run that took the response.
    pub response_run: Option<u64>,
    /// When the response was taken (delivered to its sinks, or quarantined).
    #[serde(with = "crate::timestamp::millis_opt")]
    pub answered_at: Option<Millis>,
    /// What happened last, in words (where the response went, why it was refused).
    pub detail: Option<String>,
    /// The first run whose taken response can answer this request: the run that sent it, or
    /// the one after when the request went out after its run looked for responses (what that
    /// look took, under this name, answered an earlier request). Appended in `awaits_v2`;
    /// awaits of `awaits_v1` are answerable from the run that sent them.
    pub answerable_from: u64,
}

/// What [`Ledger::register_await`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// A new await was recorded.
    New,
    /// This request was registered before (a resumed run): nothing changed.
    Existing,
    /// A new await was recorded in place of this one, which expected the same response name
    /// for another request (the same name can only answer one request).
    Replaced(Box<AwaitRecord>),
}

impl Ledger {
    /// Creates the tables (called by `init`).
    pub(super) fn init_awaits(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
        tx.open_table(AWAITS)?;
        tx.open_table(AWAIT_REQUESTS)?;
        Ok(())
    }

    /// Records that `rec.request_identity` awaits `rec.expected`, once: registering the same
    /// request again changes nothing, whatever `rec` says.
    pub fn register_await(&self, rec: &AwaitRecord) -> Result<Registered, LedgerError> {
        let flow = rec.flow.as_str();
        self.write(|tx| {
            let mut index = tx.open_table(AWAIT_REQUESTS)?;
            if index.get((flow, rec.request_identity.as_str()))?.is_some() {
                return Ok(Registered::Existing);
            }
            index.insert((flow, rec.request_identity.as_str()), rec.expected.as_str())?;
            let mut awaits = tx.open_table(AWAITS)?;
            let old = awaits.insert((flow, rec.expected.as_str()), rec)?.map(|v| v.value());
            Ok(match old {
                Some(old) => Registered::Replaced(Box::new(old)),
                None => Registered::New,
            })
        })
    }

    /// The await of `flow` for the response at `expected`.
    pub fn awaited(&self, flow: &str, expected: &str) -> Result<Option<AwaitRecord>, LedgerError> {
        self.read(|tx| Ok(tx.open_table(AWAITS)?.get((flow, expected))?.map(|v| v.value())))
    }

    /// Every await, by flow and expected path; all flows when `flow` is `None`.
    pub fn awaits(&self, flow: Option<&str>) -> Result<Vec<AwaitRecord>, LedgerError> {
        self.read(|tx| {
            let t = tx.open_table(AWAITS)?;
            let mut out = Vec::new();
            match flow {
                Some(f) => {
                    for item in t.range::<(&str, &str)>(flow_range(f))? {
                        out.push(item?.1.value());
                    }
                }
                None => {
                    for item in t.iter()? {
                        out.push(item?.1.value());
                    }
                }
            }
            Ok(out)
        })
    }

    /// The `limit` awaits sent last (by `sent_at`, then flow and expected path) of those
    /// `keep` takes, oldest first, and how many it takes; all flows when `flow` is `None`.
    /// The table is keyed by response path, so every await is read, but only `limit` are held
    /// at a time.
    pub fn latest_awaits(
        &self,
        flow: Option<&str>,
        limit: usize,
        keep: impl Fn(&AwaitRecord) -> bool,
    ) -> Result<Newest<AwaitRecord>, LedgerError> {
        let mut newest = Keep::new(limit);
        self.read(|tx| {
            let t = tx.open_table(AWAITS)?;
            let mut offer = |rec: AwaitRecord| {
                if keep(&rec) {
                    newest.offer((rec.sent_at, rec.flow.clone(), rec.expected.clone()), rec);
                }
            };
            match flow {
                Some(f) => {
                    for item in t.range::<(&str, &str)>(flow_range(f))? {
                        offer(item?.1.value());
                    }
                }
                None => {
                    for item in t.iter()? {
                        offer(item?.1.value());
                    }
                }
            }
            Ok(())
        })?;
        Ok(newest.finish())
    }

    /// Gives up the open await of `flow` for the response at `expected` by hand (`wharf awaits
    /// close`) at `at`: state `expired`, expired at `at` (what history counts its age from:
    /// without it, one with no `expire_after` would be kept for ever), with `detail` saying so,
    /// and no event (the operator acted; a page about it would tell them what they did). Read
    /// and written in one transaction, so an await that closed meanwhile stays as it is.
    /// Returns the await as closed; `None` when there is no such await or it is not open.
    pub fn close_await(&self, flow: &str, expected: &str, detail: &str, at: Millis) -> Result<Option<AwaitRecord>, LedgerError> {
        self.write(|tx| {
            let mut awaits = tx.open_table(AWAITS)?;
            let Some(mut rec) = awaits.get((flow, expected))?.map(|v| v.value()).filter(|a| a.state.is_open()) else {
                return Ok(None);
            };
            rec.state = AwaitState::Expired;
            rec.expire_at = Some(at);
            rec.detail = Some(detail.to_string());
            awaits.insert((flow, expected), &rec)?;
            Ok(Some(rec))
        })
    }

    /// Moves the await `rec` (of `rec.expected`) to the response path `to`: the response found
    /// named like it but for case (`response.ignore_case`), under whose name its answer is
    /// recorded from then on. One transaction: the request's index follows; an await there
    /// already for another request is replaced, as [`Ledger::register_await`] replaces it —
    /// unless it is still open (that name answers it): then nothing moves, and `None`.
    /// Returns the await as moved.
    pub fn move_await(&self, rec: &AwaitRecord, to: &str) -> Result<Option<AwaitRecord>, LedgerError> {
        let flow = rec.flow.as_str();
        self.write(|tx| {
            let mut awaits = tx.open_table(AWAITS)?;
            if awaits.get((flow, to))?.is_some_and(|there| there.value().state.is_open()) {
                return Ok(None);
            }
            awaits.remove((flow, rec.expected.as_str()))?;
            let moved = AwaitRecord { expected: to.to_string(), ..rec.clone() };
            awaits.insert((flow, to), &moved)?;
            tx.open_table(AWAIT_REQUESTS)?.insert((flow, rec.request_identity.as_str()), to)?;
            Ok(Some(moved))
        })
    }

    /// Stores an await's new state and, in the same transaction, the event it causes, raised
    /// by `run` (the run that looked). Returns the event as recorded (with its sequence number).
    pub fn update_await(
        &self,
        rec: &AwaitRecord,
        event: Option<(EventKind, String)>,
        at: Millis,
        run: u64,
    ) -> Result<Option<Event>, LedgerError> {
        let flow = rec.flow.as_str();
        self.write(|tx| {
            tx.open_table(AWAITS)?.insert((flow, rec.expected.as_str()), rec)?;
            let Some((kind, detail)) = event else { return Ok(None) };
            append(tx, &NewEvent { flow: flow.to_string(), at, kind, subject: rec.request.clone(), detail, run: Some(run) }).map(Some)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Newest;

    fn waiting(flow: &str, request: &str, identity: &str, expected: &str) -> AwaitRecord {
        AwaitRecord {
            flow: flow.into(),
            request: request.into(),
            request_identity: identity.into(),
            expected: expected.into(),
            sent_at: 1_000,
            deadline_at: 2_000,
            ..Default::default()
        }
    }

    #[test]
    fn registering_is_idempotent_per_request_and_replaces_per_response_name() {
        let l = Ledger::in_memory().unwrap();
        let a = waiting("f", "a.csv", "p=a.csv|s=1", "outbox/a.ack");
        assert_eq!(l.register_await(&a).unwrap(), Registered::New);
        // A resumed run renders another name (a `{{run}}` in the template): still one await.
        let again = AwaitRecord { expected: "outbox/a-run2.ack".into(), ..a.clone() };
        assert_eq!(l.register_await(&again).unwrap(), Registered::Existing);
        assert_eq!(l.awaits(Some("f")).unwrap(), std::slice::from_ref(&a));
        // The same file sent again with new content awaits the same name: it takes over.
        let resent = waiting("f", "a.csv", "p=a.csv|s=2", "outbox/a.ack");
        assert_eq!(l.register_await(&resent).unwrap(), Registered::Replaced(Box::new(a)));
        assert_eq!(l.awaited("f", "outbox/a.ack").unwrap(), Some(resent));
        // Scoped per flow.
        l.register_await(&waiting("g", "a.csv", "p=a.csv|s=1", "outbox/a.ack")).unwrap();
        assert_eq!(l.awaits(Some("f")).unwrap().len(), 1);
        assert_eq!(l.awaits(None).unwrap().len(), 2);
    }

    /// An await answered by a response named like its expected one but for case
    /// (`response.ignore_case`) moves to the response's name, with its request's index (a
    /// resumed registration finds it there); never onto another request's open await.
    #[test]
    fn an_await_moves_to_the_name_its_response_has_unless_another_open_await_is_there() {
        let l = Ledger::in_memory().unwrap();
        let a = waiting("f", "x.csv", "ix", "acks/x.ack");
        l.register_await(&a).unwrap();
        let moved = l.move_await(&a, "acks/X.ACK").unwrap().unwrap();
        assert_eq!(moved, AwaitRecord { expected: "acks/X.ACK".into(), ..a.clone() });
        assert_eq!(l.awaits(Some("f")).unwrap(), std::slice::from_ref(&moved));
        assert_eq!(l.register_await(&a).unwrap(), Registered::Existing);
        assert_eq!(l.awaits(Some("f")).unwrap(), std::slice::from_ref(&moved));
        let y = waiting("f", "y.csv", "iy", "acks/y.ack");
        l.register_await(&y).unwrap();
        assert_eq!(l.move_await(&y, "acks/X.ACK").unwrap(), None);
        assert_eq!(l.awaited("f", "acks/y.ack").unwrap(), Some(y));
    }

    #[test]
    fn state_changes_record_their_event_once_numbered_across_flows() {
        let l = Ledger::in_memory().unwrap();
        let mut a = waiting("f", "a.csv", "ia", "o/a.ack");
        let mut b = waiting("g", "b.csv", "ib", "o/b.ack");
        l.register_await(&a).unwrap();
        l.register_await(&b).unwrap();
        a.state = AwaitState::Overdue;
        let e1 = l.update_await(&a, Some((EventKind::Overdue, "due at …".into())), 5, 2).unwrap().unwrap();
        b.state = AwaitState::Overdue;
        let e2 = l.update_await(&b, Some((EventKind::Overdue, "due".into())), 6, 3).unwrap().unwrap();
        a.state = AwaitState::Late;
        a.response_run = Some(4);
        let e3 = l.update_await(&a, Some((EventKind::Late, "arrived".into())), 7, 4).unwrap().unwrap();
        assert_eq!((e1.seq, e2.seq, e3.seq), (1, 2, 3));
        assert_eq!((e3.flow.as_str(), e3.subject.as_str(), e3.kind), ("f", "a.csv", EventKind::Late));
        // Each names the run that looked.
        assert_eq!((e1.run, e2.run, e3.run), (Some(2), Some(3), Some(4)));
        // No event: only the record changes.
        a.detail = Some("x".into());
        assert_eq!(l.update_await(&a, None, 8, 4).unwrap(), None);
        assert_eq!(l.awaited("f", "o/a.ack").unwrap().unwrap().detail.as_deref(), Some("x"));

        let seqs = |evs: Vec<Event>| evs.into_iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(l.events(None, 0, 10).unwrap()), [1, 2, 3]);
        assert_eq!(seqs(l.events(Some("f"), 0, 10).unwrap()), [1, 3]);
        assert_eq!(seqs(l.events(Some("f"), 1, 10).unwrap()), [3]);
        assert_eq!(seqs(l.events(None, 1, 1).unwrap()), [2]);
        assert_eq!(seqs(l.events(Some("f"), 0, 1).unwrap()), [1]);
        assert!(l.events(Some("h"), 0, 10).unwrap().is_empty());
    }

    #[test]
    fn latest_awaits_are_those_sent_last_of_those_asked_for() {
        let l = Ledger::in_memory().unwrap();
        for (i, (flow, expected)) in [("f", "o/c.ack"), ("g", "o/b.ack"), ("f", "o/a.ack"), ("g", "o/d.ack")].into_iter().enumerate() {
            let rec = AwaitRecord { sent_at: 10 + i as Millis, ..waiting(flow, "r.csv", &format!("i{i}"), expected) };
            l.register_await(&rec).unwrap();
        }
        l.close_await("g", "o/d.ack", "closed by hand", 50).unwrap();
        let names = |n: Newest<AwaitRecord>| (n.items.into_iter().map(|a| a.expected).collect::<Vec<_>>(), n.total);
        assert_eq!(names(l.latest_awaits(None, 2, |_| true).unwrap()), (vec!["o/a.ack".to_string(), "o/d.ack".into()], 4));
        assert_eq!(names(l.latest_awaits(None, 2, |a| a.state.is_open()).unwrap()), (vec!["o/b.ack".to_string(), "o/a.ack".into()], 3));
        assert_eq!(names(l.latest_awaits(Some("f"), 9, |_| true).unwrap()), (vec!["o/c.ack".to_string(), "o/a.ack".into()], 2));
    }

    #[test]
    fn closing_by_hand_expires_an_open_await_only_and_records_no_event() {
        let l = Ledger::in_memory().unwrap();
        l.register_await(&waiting("f", "a.csv", "ia", "o/a.ack")).unwrap();
        let closed = l.close_await("f", "o/a.ack", "closed by hand", 5).unwrap().unwrap();
        assert_eq!((closed.state, closed.expire_at, closed.detail.as_deref()), (AwaitState::Expired, Some(5), Some("closed by hand")));
        assert_eq!(l.awaited("f", "o/a.ack").unwrap(), Some(closed));
        // Closed already, or none: nothing changes.
        assert_eq!(l.close_await("f", "o/a.ack", "again", 6).unwrap(), None);
        assert_eq!(l.close_await("g", "o/a.ack", "other flow", 6).unwrap(), None);
        assert_eq!(l.awaited("f", "o/a.ack").unwrap().unwrap().detail.as_deref(), Some("closed by hand"));
        assert!(l.events(None, 0, 10).unwrap().is_empty());
    }

    #[test]
    fn stored_encodings_keep_their_variant_indexes() {
        // postcard stores the variant index: new states and kinds must be appended.
        for (state, index) in [(AwaitState::Waiting, 0u8), (AwaitState::Expired, 4), (AwaitState::Rejected, 5)] {
            assert_eq!(postcard::to_allocvec(&state).unwrap(), [index], "{state:?}");
        }
        for (kind, index) in [(EventKind::Overdue, 0u8), (EventKind::Late, 1), (EventKind::Expired, 2)] {
            assert_eq!(postcard::to_allocvec(&kind).unwrap(), [index], "{kind:?}");
        }
        assert!(AwaitState::Overdue.is_open() && !AwaitState::Late.is_open() && !AwaitState::Expired.is_open());
    }
}
