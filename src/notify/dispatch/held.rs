//! What the throttles hold back, as [`Held`] notices the caller keeps across a crash (the
//! daemon's notifier stores them in the ledger with its cursor), and how they are sent when
//! a new dispatcher starts from them ([`Dispatcher::begin_restored`]).
//!
//! A notice counts as held from the moment the throttle holds it back until the send that
//! flushes it (its window's end, or a stop) is over: while that send is under way it is still
//! reported, so a crash in between sends it again rather than never. Restored notices are
//! sent at once, as a clean stop sends what is held back early: throttle windows themselves
//! are not kept across a restart. Each goes through its rule as found again after an edit of
//! the flow file: a rule is known by what it is (its kinds, throttle and channel: the
//! [`Held::identity`], a digest with every secret left out) in its file, not by where it is
//! written — a rule inserted above it moves it, and the notice still goes through it, not the
//! rule now at its old position. Its position decides only between rules of the file written
//! alike, or when no rule is written as it was (the rule itself was edited): then the rule
//! now at its position takes it if it sends to the same channel ([`Held::channel`]). A notice
//! whose rule is not found so, or no longer takes its kind, is logged as not sent, naming the
//! notice and the rule, never dropped without a word; so is one whose rule cannot be told
//! apart from others written alike.
//!
//! The stored form of a list ([`Held::encode`], JSON) is known here only: the ledger keeps it
//! as opaque bytes, the daemon's notifier stores and reads it, and `wharf forget` drops a
//! flow's notices from it ([`Held::without_flows`]) through the ledger's
//! [`edit_notify_held`](crate::ledger::Ledger::edit_notify_held).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::error;

use super::{Dispatcher, Key, Route, Started, Step, start, subject};
use crate::ledger::Settle;
use crate::notify::Notice;

/// What the notifier found of the notices held back before its start ([`Held::settle`]).
#[derive(Debug)]
pub struct Settled {
    /// The notices to send: the stored list's, and those of lists set aside that are read now.
    pub list: Vec<Held>,
    /// The stored list as it is now (empty: none).
    pub stored: Vec<u8>,
    /// Why the stored list could not be read, when it could not: it is set aside.
    pub unreadable: Option<serde_json::Error>,
    /// The lists set aside before that are read now (in `list`), by number.
    pub adopted: Vec<u64>,
    /// The lists set aside that still cannot be read (kept), by number.
    pub unread: Vec<u64>,
}

/// A notice a rule's throttle holds back (or is flushing, its send under way).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    /// The rule holding it back: where it is written (`flows/orders.yaml notify[1]`), or its
    /// channel's description for a rule made outside a file.
    pub rule: String,
    /// What the rule is, wherever it is written: a digest of its kinds, throttle and channel
    /// with every secret left out (see the module doc). `None` for a rule made outside a file,
    /// and in lists stored by an older wharf (matched by `rule` alone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The rule's channel as logs name it, without its position (`webhook to 127.0.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The latest notice held back: the one to send.
    pub notice: Notice,
    /// Similar notices held back, this one included (the one sent says how many others).
    pub held: u32,
}

impl Held {
    /// `held` notices held back by `route`, `notice` the latest.
    pub(super) fn of(route: &Route, notice: Notice, held: u32) -> Self {
        Held { rule: route.name(), identity: route.identity(), channel: route.channel(), notice, held }
    }

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

    /// What becomes of the stored list `held` and of the lists set aside before (`aside`, by
    /// number) at the notifier's start, for
    /// [`settle_notify_held`](crate::ledger::Ledger::settle_notify_held): a stored list this
    /// version cannot read (a newer wharf's) is set aside, not written over; a list set aside
    /// that it reads now (stored by this version, set aside by an older one after a rollback)
    /// joins the stored list, to be sent. The answer says what was found.
    pub fn settle(held: Option<&[u8]>, aside: &[(u64, Vec<u8>)]) -> Settle<Settled> {
        let (mut list, unreadable) = match held.map(Held::decode).transpose() {
            Ok(list) => (list.unwrap_or_default(), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (mut adopted, mut unread) = (Vec::new(), Vec::new());
        for (n, bytes) in aside {
            match Held::decode(bytes) {
                Ok(more) => {
                    list.extend(more);
                    adopted.push(*n);
                }
                Err(_) => unread.push(*n),
            }
        }
        let set_aside = unreadable.is_some();
        let new = (set_aside || !adopted.is_empty()).then(|| Held::encode(&list)).transpose();
        // Plain structs and JSON values encode; were one not to, nothing is changed.
        let (new, adopted) = match new {
            Ok(new) => (new, adopted),
            Err(_) => (None, Vec::new()),
        };
        let stored = new.clone().or_else(|| held.filter(|_| !set_aside).map(<[u8]>::to_vec)).unwrap_or_default();
        let answer = Settled { list, stored, unreadable, adopted: adopted.clone(), unread };
        Settle { held: new, set_aside, adopted, answer }
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

    /// How [`Held::identity`] names this route's rule: a digest of what the rule says — its
    /// kinds, throttle and channel as `Debug` writes them, which shows every secret as `***` —
    /// not of where it is written.
    fn identity(&self) -> Option<String> {
        let rule = self.rule.as_ref().filter(|r| !r.origin.is_empty())?;
        let digest = Sha256::digest(format!("{:?}|{:?}|{:?}", rule.on, rule.throttle, rule.channel).as_bytes());
        Some(hex::encode(&digest[..12]))
    }

    /// How [`Held::channel`] names this route's channel: its description without the origin.
    fn channel(&self) -> Option<String> {
        let origin = self.rule.as_ref().map(|r| r.origin.as_str()).filter(|o| !o.is_empty())?;
        let describe = self.notifier.describe();
        describe.strip_prefix(origin)?.strip_prefix(" (")?.strip_suffix(')').map(str::to_string)
    }
}

/// The file part of a rule's origin (`flows/orders.yaml` of `flows/orders.yaml notify[1]`).
fn file(origin: &str) -> &str {
    origin.rsplit_once(" notify[").map_or(origin, |(file, _)| file)
}

/// The route (index in `routes`) a restored notice goes through, or why none (see the module doc).
fn pick(routes: &[&mut Route], h: &Held) -> Result<usize, &'static str> {
    let takes = |r: &Route| r.on.contains(&h.notice.kind);
    if let Some(identity) = &h.identity {
        let alike: Vec<usize> = (0..routes.len())
            .filter(|&i| takes(routes[i]) && routes[i].identity().as_ref() == Some(identity) && file(&routes[i].name()) == file(&h.rule))
            .collect();
        match alike[..] {
            [i] => return Ok(i),
            [] => {}
            _ => {
                return alike
                    .into_iter()
                    .find(|&i| routes[i].name() == h.rule)
                    .ok_or("several rules of its file are written as it was, none at its place: which one it was cannot be told");
            }
        }
    }
    // Not found by what it is (written by an older wharf, or the rule itself was edited): the
    // rule now at its place, if it sends to the same channel.
    (0..routes.len())
        .find(|&i| routes[i].name() == h.rule && (h.channel.is_none() || routes[i].channel() == h.channel))
        .filter(|&i| takes(routes[i]))
        .ok_or(if crate::notify::KINDS.contains(&h.notice.kind.as_str()) {
            "its rule is gone, or takes this kind no more"
        } else {
            "its kind is not one this version knows (a newer wharf held it back): no rule takes it"
        })
}

impl Dispatcher {
    /// Every notice held back now, in every rule (retired ones included), with those whose
    /// flushing send is under way; in a stable order.
    pub fn held(&self) -> Vec<Held> {
        let mut out: Vec<Held> = self
            .routes()
            .flat_map(|r| r.windows.values().filter_map(move |w| w.latest.clone().map(|notice| Held::of(r, notice, w.held))))
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
        for h in held {
            match pick(&routes, &h) {
                Ok(i) => {
                    let Held { notice, held, .. } = h;
                    let key: Key = (notice.flow.clone(), notice.kind.clone(), notice.subject.clone());
                    steps.push((i, key, Step::Send { notice, held_back: held.saturating_sub(1), flushed: true }));
                }
                Err(why) => {
                    let (n, rule, held) = (&h.notice, &h.rule, h.held);
                    error!(
                        flow = %n.flow, kind = %n.kind, subject = subject(&n.subject), rule = %rule, held, why,
                        "A notice held back by a throttle before the restart is not sent."
                    );
                }
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

    /// A rule `on: [failed]` written at `f.yaml notify[at]`, throttled for `throttle_s`, sending
    /// with the command `program` (never run: the tests make its notifier).
    fn rule(program: &str, at: usize, throttle_s: u64) -> crate::notify::Rule {
        let spec = crate::notify::CommandSpec {
            program: program.into(),
            args: vec![],
            pass_env: vec![],
            dir: "/".into(),
            timeout: Duration::from_secs(1),
        };
        crate::notify::Rule {
            on: ["failed".to_string()].into(),
            throttle: Duration::from_secs(throttle_s),
            channel: crate::notify::Channel::Command(spec),
            origin: format!("f.yaml notify[{at}]"),
        }
    }

    /// A dispatcher with the flow `f`'s `rules`, each sending to the recorder of its program,
    /// described as the real channel is (`f.yaml notify[0] (command a)`).
    fn with_rules(rules: &[crate::notify::Rule], recorders: &[(&str, Arc<Recorder>)]) -> Dispatcher {
        struct Named(Arc<Recorder>, String);
        #[async_trait::async_trait]
        impl crate::notify::Notifier for Named {
            async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), crate::notify::NotifyError> {
                self.0.send(notice, held_back).await
            }
            fn describe(&self) -> String {
                self.1.clone()
            }
        }
        let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
        let recorders: Vec<(String, Arc<Recorder>)> = recorders.iter().map(|(p, r)| (p.to_string(), r.clone())).collect();
        d.set_flow_with("f", rules, &move |rule| {
            let crate::notify::Channel::Command(spec) = &rule.channel else { unreachable!() };
            let program = spec.program.display().to_string();
            let rec = recorders.iter().find(|(p, _)| *p == program).map(|(_, r)| r.clone()).unwrap();
            let describe = crate::notify::label(&rule.origin, &format!("command {program}"));
            Ok(Arc::new(Named(rec, describe)) as Arc<dyn crate::notify::Notifier>)
        })
        .unwrap();
        d
    }

    async fn send_restored(d: &mut Dispatcher, held: Vec<Held>) {
        for s in d.begin_restored(held, at(100)).await {
            if let Started::Sending(f) = s {
                let landed = f.land().await;
                d.land(landed, at(100));
            }
        }
    }

    /// A restored notice goes through its rule wherever the rule is now written, not through
    /// the rule now written at its old place (before: a rule inserted above it sent it to
    /// another channel). Its place still decides between rules written alike, and for a rule
    /// edited in place that sends to the same channel.
    #[tokio::test]
    async fn a_restored_notice_goes_through_its_rule_after_an_edit_moved_it() {
        let (a, b) = (Arc::new(Recorder::default()), Arc::new(Recorder::default()));
        let recs = [("a", a.clone()), ("b", b.clone())];
        let mut d = with_rules(&[rule("a", 0, 3600)], &recs);
        for s in [0, 10] {
            d.dispatch(&Notice::new("failed", "f", at(s), "x", &format!("at {s}")), at(s)).await;
        }
        let held = Held::decode(&Held::encode(&d.held()).unwrap()).unwrap();
        assert_eq!((held[0].rule.as_str(), held[0].channel.as_deref()), ("f.yaml notify[0]", Some("command a")));
        assert!(!held[0].identity.as_deref().unwrap_or_default().is_empty());

        // A rule inserted above it: `a` is now notify[1].
        let mut d = with_rules(&[rule("b", 0, 3600), rule("a", 1, 3600)], &recs);
        send_restored(&mut d, held.clone()).await;
        assert_eq!(*a.details.lock().unwrap(), ["at 0", "at 10"], "through its own rule");
        assert!(b.sent.lock().unwrap().is_empty(), "not through the rule now at its old place");

        // The rule itself edited (another throttle), at the same place, same channel: it.
        let mut d = with_rules(&[rule("a", 0, 60)], &recs);
        send_restored(&mut d, held.clone()).await;
        assert_eq!(a.details.lock().unwrap().len(), 3);
        // Edited and another rule at its place, to another channel: not sent (logged).
        let mut d = with_rules(&[rule("b", 0, 60), rule("a", 1, 60)], &recs);
        send_restored(&mut d, held.clone()).await;
        assert_eq!((a.details.lock().unwrap().len(), b.sent.lock().unwrap().len()), (3, 0));

        // Two rules written alike: the one at its place.
        let mut d = with_rules(&[rule("a", 0, 3600), rule("a", 1, 3600)], &recs);
        let mut second = held[0].clone();
        second.rule = "f.yaml notify[1]".into();
        assert_eq!(d.begin_restored(vec![second], at(100)).await.len(), 1);
        // Alike, neither at its place: which one cannot be told, not sent.
        let mut d = with_rules(&[rule("b", 0, 3600), rule("a", 1, 3600), rule("a", 2, 3600)], &recs);
        assert!(d.begin_restored(held.clone(), at(100)).await.is_empty());

        // A list stored by an older wharf (no identity): by its place, as before.
        let mut old = held[0].clone();
        (old.identity, old.channel) = (None, None);
        let text = String::from_utf8(Held::encode(&[old]).unwrap()).unwrap();
        assert!(!text.contains("identity") && !text.contains("channel"), "{text}");
        let old = Held::decode(text.as_bytes()).unwrap();
        let mut d = with_rules(&[rule("a", 0, 3600)], &recs);
        send_restored(&mut d, old).await;
        assert_eq!(a.details.lock().unwrap().len(), 4);
    }

    /// A list a newer wharf stored, rolled back from: a field this version does not know is
    /// skipped, and a notice of a kind it does not know is read, and logged as not sent (no
    /// rule takes it), the others sent.
    #[test]
    fn a_notice_of_a_kind_this_version_does_not_know_is_read_and_not_sent() {
        let rec = Arc::new(Recorder::default());
        let stored = r#"[{"rule":"recorder","held":1,"since":1,"notice":{"kind":"brand_new","flow":"f","at":"2026-12-07T10:00:00Z","subject":"a","detail":"new","seq":null,"run":null,"facts":{}}},
            {"rule":"recorder","held":1,"notice":{"kind":"failed","flow":"f","at":"2026-12-07T10:00:00Z","subject":"b","detail":"old","seq":null,"run":null,"facts":{},"tag":"x"}}]"#;
        let held = Held::decode(stored.as_bytes()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let ((), lines) = crate::log_capture::Log::default().of(|| {
            rt.block_on(async {
                let mut d = Dispatcher::new(&[]).unwrap().with_retry(quick());
                d.add_global(["failed"], Duration::from_secs(3600), rec.clone());
                send_restored(&mut d, held).await;
            })
        });
        assert_eq!(*rec.details.lock().unwrap(), ["old"]);
        assert!(lines.iter().any(|l| l.contains("brand_new") && l.contains("not one this version knows")), "{lines:#?}");
    }

    /// `wharf forget` drops the notices of the flow (and of its responses) from the stored
    /// list, and only those; a list that is not one is an error, not written over.
    #[test]
    fn the_notices_of_forgotten_flows_are_dropped_from_the_stored_list() {
        let held = |flow: &str| Held {
            rule: "serve.yaml notify[0]".into(),
            identity: None,
            channel: None,
            notice: Notice::new("failed", flow, at(0), "", ""),
            held: 2,
        };
        let stored = Held::encode(&[held("old"), held("old2"), held("old.response"), held("")]).unwrap();
        let flows = ["old".to_string(), "old.response".to_string()];
        assert_eq!(Held::count_flows(&stored, &flows).unwrap(), 2);
        let (left, dropped) = Held::without_flows(&stored, &flows).unwrap();
        assert_eq!(dropped, 2);
        assert_eq!(Held::decode(&left).unwrap(), [held("old2"), held("")]);
        assert!(Held::without_flows(b"not a list", &flows).is_err());
    }
}
