//! What the throttles hold back, as [`Held`] notices the caller keeps across a crash (the
//! daemon's notifier stores them in the ledger with its cursor), and how they are sent when
//! a new dispatcher starts from them ([`Dispatcher::begin_restored`]).
//!
//! A notice counts as held from the moment the throttle holds it back until the send that
//! flushes it (its window's end, or a stop) is over: while that send is under way it is still
//! reported, so a crash in between sends it again rather than never. Restored notices are
//! sent at once, as a clean stop sends what is held back early: throttle windows themselves
//! are not kept across a restart. Each goes through the rule written where its rule was (its
//! origin: file and position) when that rule still takes its kind; otherwise it is logged as
//! not sent, naming the notice and the rule, never dropped without a word.
//!
//! The stored form of a list ([`Held::encode`], JSON) is known here only: the ledger keeps it
//! as opaque bytes, the daemon's notifier stores and reads it, and `wharf forget` drops a
//! flow's notices from it ([`Held::without_flows`]) through the ledger's
//! [`edit_notify_held`](crate::ledger::Ledger::edit_notify_held).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::error;

use super::{Dispatcher, Key, Route, Started, Step, start, subject};
use crate::notify::Notice;

/// A notice a rule's throttle holds back (or is flushing, its send under way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The rule holding it back: where it is written (`flows/orders.yaml notify[1]`), or its
    /// channel's description for a rule made outside a file.
    pub rule: String,
    /// The latest notice held back: the one to send.
    pub notice: Notice,
    /// Similar notices held back, this one included (the one sent says how many others).
    pub held: u32,
}

impl Held {
    /// The stored form of a list of held notices (what the ledger keeps, opaque to it).
    pub fn encode(held: &[Held]) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(held)
    }

    /// A list read back from its stored form ([`encode`](Self::encode)).
    pub fn decode(bytes: &[u8]) -> Result<Vec<Held>, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The stored list `bytes` without the notices about `flows`: the list left (stored form)
    /// and how many notices went. An error when `bytes` is not such a list (then nothing is
    /// to be written over it).
    pub fn without_flows(bytes: &[u8], flows: &[String]) -> Result<(Vec<u8>, usize), serde_json::Error> {
        let mut held = Held::decode(bytes)?;
        let before = held.len();
        held.retain(|h| !flows.contains(&h.notice.flow));
        Ok((Held::encode(&held)?, before - held.len()))
    }

    /// How many notices of the stored list `bytes` are about `flows`.
    pub fn count_flows(bytes: &[u8], flows: &[String]) -> Result<usize, serde_json::Error> {
        Ok(Held::decode(bytes)?.iter().filter(|h| flows.contains(&h.notice.flow)).count())
    }

    /// The order [`Dispatcher::held`] lists them in (stable, so equal sets encode equally).
    fn order(&self) -> (&str, &str, &str, &str, Option<u64>, u32) {
        let n = &self.notice;
        (&self.rule, &n.flow, &n.kind, &n.subject, n.seq, self.held)
    }
}

impl Route {
    /// How [`Held::rule`] names this route.
    pub(super) fn name(&self) -> String {
        self.rule.as_ref().map(|r| r.origin.clone()).filter(|o| !o.is_empty()).unwrap_or_else(|| self.notifier.describe())
    }
}

impl Dispatcher {
    /// Every notice held back now, in every rule (retired ones included), with those whose
    /// flushing send is under way; in a stable order.
    pub fn held(&self) -> Vec<Held> {
        let mut out: Vec<Held> = self
            .routes()
            .flat_map(|r| {
                let rule = r.name();
                r.windows.values().filter_map(move |w| w.latest.clone().map(|notice| Held { rule: rule.clone(), notice, held: w.held }))
            })
            .chain(self.flushing.values().cloned())
            .collect();
        out.sort_by(|a, b| a.order().cmp(&b.order()));
        out
    }

    /// Sends notices held back before a restart ([`held`](Self::held) of the dispatcher
    /// before it), each through the rule of the same name that takes its kind, saying how
    /// many others were held back — without waiting, like [`begin`](Self::begin). One whose
    /// rule is gone is logged, not sent.
    pub async fn begin_restored(&mut self, held: Vec<Held>, now: DateTime<Utc>) -> Vec<Started> {
        let Dispatcher { global, flows, retry, sending, flushing, .. } = self;
        let routes: Vec<&mut Route> = flows.values_mut().flatten().chain(global.iter_mut()).collect();
        let mut steps = Vec::new();
        for Held { rule, notice, held } in held {
            let (flow, kind, s) = (&notice.flow, &notice.kind, &notice.subject);
            match routes.iter().position(|r| r.name() == rule && r.on.contains(kind)) {
                Some(i) => {
                    let key: Key = (flow.clone(), kind.clone(), s.clone());
                    steps.push((i, key, Step::Send { notice, held_back: held.saturating_sub(1), flushed: true }));
                }
                None => error!(
                    flow = %flow, kind = %kind, subject = subject(s), rule = %rule, held,
                    "A notice held back by a throttle before the restart is not sent: its rule is gone, or takes this kind no more."
                ),
            }
        }
        start(routes, steps, *retry, sending, flushing, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Recorder, at, quick};
    use super::super::{Dispatcher, Outcome};
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// What one dispatcher holds back, read back into a new one (a restart), is sent at once
    /// through the rule of the same name, with its count — and only once; a notice whose rule
    /// is gone is not sent (logged).
    #[tokio::test]
    async fn notices_held_back_are_listed_and_sent_by_a_new_dispatcher() {
        let rec = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::from_secs(3600), rec.clone());
        for s in [0, 10, 20] {
            d.dispatch(&Notice::new("failed", "f", at(s), "a", &format!("at {s}")), at(s)).await;
        }
        d.dispatch(&Notice::new("failed", "f", at(30), "b", "b at 30"), at(30)).await;
        let held = d.held();
        assert_eq!(held.len(), 1, "{held:?}");
        assert_eq!((held[0].rule.as_str(), held[0].notice.detail.as_str(), held[0].held), ("recorder", "at 20", 2));
        // Through the stored form, as the ledger keeps it.
        let held = Held::decode(&Held::encode(&held).unwrap()).unwrap();

        let after = Arc::new(Recorder::default());
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        d.add_global(["failed"], Duration::from_secs(3600), after.clone());
        let mut gone = held[0].clone();
        gone.rule = "serve.yaml notify[9]".into();
        let started = d.begin_restored(vec![held[0].clone(), gone], at(40)).await;
        assert_eq!(started.len(), 1, "the notice of a rule that is gone is not sent");
        // Under way, it is still held (a crash now sends it again).
        assert_eq!(d.held().len(), 1);
        let mut out = Vec::new();
        for s in started {
            if let Started::Sending(f) = s {
                let landed = f.land().await;
                out.push(d.land(landed, at(40)).outcome);
            }
        }
        assert!(matches!(out[..], [Outcome::Sent { held_back: 1, .. }]), "{out:?}");
        assert_eq!(*after.sent.lock().unwrap(), [("a".into(), 1)]);
        assert!(d.held().is_empty(), "sent: held no more");
        // It opened a window, as a flush at a window's end does.
        let next = d.dispatch(&Notice::new("failed", "f", at(50), "a", "at 50"), at(50)).await;
        assert!(matches!(next[0].outcome, Outcome::HeldBack { held: 1 }), "{next:?}");
    }

    /// `wharf forget` drops the notices of the flow (and of its responses) from the stored
    /// list, and only those; a list that is not one is an error, not written over.
    #[test]
    fn the_notices_of_forgotten_flows_are_dropped_from_the_stored_list() {
        let held = |flow: &str| Held { rule: "serve.yaml notify[0]".into(), notice: Notice::new("failed", flow, at(0), "", ""), held: 2 };
        let stored = Held::encode(&[held("old"), held("old2"), held("old.response"), held("")]).unwrap();
        let flows = ["old".to_string(), "old.response".to_string()];
        assert_eq!(Held::count_flows(&stored, &flows).unwrap(), 2);
        let (left, dropped) = Held::without_flows(&stored, &flows).unwrap();
        assert_eq!(dropped, 2);
        assert_eq!(Held::decode(&left).unwrap(), [held("old2"), held("")]);
        assert!(Held::without_flows(b"not a list", &flows).is_err());
    }
}
