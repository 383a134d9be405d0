//! Round trips: awaiting the partner's response to every delivered file.
//!
//! Owns both ends of an await:
//! - [`held_back`], called by a run (and `wharf plan`) before its files start: which requests
//!   must not be sent yet because another open request awaits the response name they would
//!   (matched by name, the two could not be told apart once sent);
//! - [`register`], called by the lifecycle when the request sink confirmed a request (the
//!   partner has it; a run resumed in `delivered` calls it again before the source is disposed
//!   of): it renders the expected response name over the name the request was delivered under
//!   and records the await — idempotently, keyed by the request's identity, so a resumed run
//!   never registers it twice nor loses it (nothing for a target left as it was by
//!   `if_exists: skip`: that request was not sent);
//! - [`poll`], called once at the end of a run: when any await is open it lists the response
//!   folder *once*, takes every expected response that is there through
//!   [`lifecycle::process`] with the derived response flow (staging, steps, quarantine,
//!   delivery, disposition and crash safety exactly as for any file — there is no second
//!   per-file loop), and moves each await along: answered, late, rejected, overdue, expired;
//! - [`send_after_look`], called right after `poll`: sends, in the same run, the requests
//!   [`held_back`] kept back for an await that `poll` closed (their awaits answerable from
//!   the next run's look on, so the answer just taken is never theirs);
//! - [`foresee`], for `wharf plan`: what `poll` would do with each open await, from the same
//!   listing and the same judgement, taking nothing.
//!
//! Every state change is one ledger write together with its event (overdue, late, expired),
//! so an event is recorded exactly once. Whether a response was taken is read back from the
//! response flow's own file record, not from this run's outcome: a crash between the response
//! reaching `done` and the await being updated is repaired by the next poll, even when the
//! response was deleted from the server meanwhile. It does not decide readiness, retry or
//! delivery (the lifecycle does), nor send notifications (a notifier reads `events_v2`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::error::FileError;
use super::lifecycle::{self, Ctx, date};
use super::retry::retry;
use super::{FileReport, Outcome, RunAbort, from_millis};
use crate::config::Flow;
use crate::config::flow::Response;
use crate::endpoint::{DynEndpoint, Entry, ErrorKind, RemotePath};
use crate::ledger::{
    AwaitRecord, AwaitState, Delivery, EventKind, FileRecord, FileState, Ledger, LedgerError, Millis, Registered, to_millis,
};
use crate::template::NameVars;

use super::ready::{Found, Listed};

/// One await's line in the run summary.
#[derive(Debug, Clone, Serialize)]
pub struct ResponseReport {
    /// The request's source path.
    pub request: String,
    /// The expected response's path on the response endpoint.
    pub expected: String,
    pub state: AwaitState,
    /// Due by when, where the response went, or why it is not there.
    pub detail: String,
    /// The response file's own report, when this run processed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileReport>,
}

impl ResponseReport {
    /// The response was there but could not be taken in this run (it is retried next run).
    pub fn failed(&self) -> bool {
        self.file.as_ref().is_some_and(|f| f.outcome == Outcome::Failed)
    }

    /// The response was taken in this run and refused by the response's steps: put aside in
    /// quarantine.
    pub fn quarantined(&self) -> bool {
        self.file.as_ref().is_some_and(|f| f.outcome == Outcome::Quarantined)
    }
}

/// The endpoints the flow's response needs, to be opened with the flow's own.
pub(super) fn endpoint_names(flow: &Flow) -> Vec<&str> {
    let Some(r) = flow.response.as_deref() else { return Vec::new() };
    let f = &r.flow;
    let mut names = vec![f.source.endpoint.as_str()];
    names.extend(f.sinks.iter().map(|s| s.endpoint.as_str()));
    names.extend(f.quarantine.as_ref().map(|q| q.endpoint.as_str()));
    names
}

/// Whether sink `i` of `flow` is the one its requests are answered from (the first sink on
/// the response endpoint): once it confirmed a request, the request awaits its response.
pub(super) fn answered_from(flow: &Flow, i: usize) -> bool {
    flow.response.as_deref().is_some_and(|r| r.request_sink == i)
}

/// Records that the request `rec`, confirmed by the request sink at `sent_at`, awaits its
/// response (no-op for flows without `response`, and for a request registered before).
/// Called as soon as that sink confirmed, not once every sink did: the partner may answer
/// from then on, and an await dated from a later run (another sink failing meanwhile, or a
/// run killed after the rename, resumed later) would take the answer for an earlier
/// exchange's and leave it.
pub(super) fn register(cx: &Ctx<'_>, rec: &FileRecord, sent_at: Millis) -> Result<(), FileError> {
    let Some(resp) = cx.flow.response.as_deref() else { return Ok(()) };
    let flow = &cx.flow.name;
    if let Some(d) = left_alone(cx.flow, rec) {
        // Somebody else's file (or an earlier one) is there under the request's name: the
        // partner did not get this request from us, and an answer to that file is not its.
        tracing::info!(flow = %flow, request = %lifecycle::source_shown(&rec.path), target = %d.target, "Request target left as it was (if_exists: skip); no response awaited.");
        return Ok(());
    }
    let sink = cx.flow.sinks.get(resp.request_sink).map(|s| s.endpoint.as_str()).unwrap_or_default();
    // Called once the request sink confirmed (or in `delivered`, where every sink has).
    let target = rec
        .deliveries
        .iter()
        .find(|d| d.sink as usize == resp.request_sink && d.done)
        .and_then(|d| RemotePath::parse(&d.target).ok())
        .ok_or_else(|| {
            FileError::Name(format!(
                "flow {flow}: {}: no confirmed delivery to sink {sink} to name the response after",
                lifecycle::source_shown(&rec.path)
            ))
        })?;
    let expected = expected_path(resp, target.name(), rec.size, cx.run, sent_at)?;
    // Sent after this run looked for responses (see [`send_after_look`]): what that look took
    // under this name, recorded by this run, answered an earlier request, not this one.
    let looked = cx.ledger.file(&resp.flow.name, expected.as_str())?.is_some_and(|r| r.run >= cx.run);
    let a = AwaitRecord {
        flow: flow.clone(),
        request: rec.path.clone(),
        request_identity: rec.identity.clone(),
        request_target: format!("{sink}:/{}", target.as_str()),
        request_run: cx.run,
        expected: expected.as_str().to_string(),
        sent_at,
        deadline_at: sent_at.saturating_add(millis(resp.deadline)),
        expire_at: resp.expire_after.map(|e| sent_at.saturating_add(millis(e))),
        answerable_from: if looked { cx.run + 1 } else { cx.run },
        ..Default::default()
    };
    match cx.ledger.register_await(&a)? {
        Registered::New => {
            tracing::info!(flow = %flow, request = %lifecycle::source_shown(&rec.path), expected = %expected, "Awaiting the response.")
        }
        Registered::Existing => {}
        Registered::Replaced(old) if old.state.is_open() => tracing::warn!(
            flow = %flow,
            request = %lifecycle::source_shown(&rec.path),
            previous = %lifecycle::source_shown(&old.request),
            expected = %expected,
            "A new request awaits the same response name as an unanswered one (a name not foreseen before its delivery); only the new one is awaited."
        ),
        Registered::Replaced(_) => {}
    }
    Ok(())
}

/// The record of a response under `a`'s expected name that a run has begun to take and not
/// finished (staged, delivered to some sinks and failed on others, being disposed of): the
/// answer came, and the
/// next look for responses finishes taking it — for `a` while it is open. `wharf awaits
/// close` refuses to close such an await: expired, it would leave that response half taken
/// for good (or, under a request sent later for the name, taken as its answer).
pub fn response_being_taken(ledger: &Ledger, flow: &str, a: &AwaitRecord) -> Result<Option<FileRecord>, LedgerError> {
    let name = crate::config::flow::response_flow_name(flow);
    // A response some sink refused after another confirmed it is recorded failed, half
    // delivered: the next look takes it up again too.
    let half = |r: &FileRecord| r.state == FileState::Failed && r.deliveries.iter().any(|d| d.done);
    Ok(ledger.file(&name, &a.expected)?.filter(|r| r.state.in_flight() || half(r)))
}

/// The request sink's delivery of `rec` when it left the target as it was (`if_exists:
/// skip`): the request was not sent, and no response is awaited for it.
pub(super) fn left_alone<'r>(flow: &Flow, rec: &'r FileRecord) -> Option<&'r Delivery> {
    let resp = flow.response.as_deref()?;
    rec.deliveries.iter().find(|d| d.sink as usize == resp.request_sink && d.left_alone())
}

/// Why a request is not sent in this run (see [`held_back`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    /// The reason, for the run's report and `wharf plan`.
    pub why: String,
    /// The expected response of the await open in the ledger that is in the way: the run's
    /// look for responses may close it, and let the request go in the same run
    /// ([`send_after_look`]). `None` for a request held back by another of the run's
    /// requests, or whose response cannot be named.
    pub awaited: Option<String>,
    /// What is in the way is an earlier exchange's answer every sink has, still on the server
    /// (its disposal refused): the run's look tries again to dispose of it ([`dispose_left`]),
    /// and may let the request go in the same run, as for an await it closes.
    pub undisposed: bool,
    /// Its expected response, when it could be named, as shown (`/out/r1.ack`: for the log).
    expected: Option<String>,
    /// The run before held it back for the same reason already: logged at debug level.
    told: bool,
}

impl Held {
    /// Says in the log that the request at `path` is held back: at info level (warn, for a
    /// response that cannot be named) the first time, at debug level when the run before
    /// held it back for the same reason already.
    pub fn log(&self, flow: &Flow, path: &RemotePath) {
        let (flow, why) = (&flow.name, &self.why);
        // Shown as the run's report shows it (`/out/a.csv`), not as the ledger keys it.
        let shown = path.to_string();
        let path = shown.as_str();
        match (&self.expected, self.told) {
            (None, true) => tracing::debug!(flow = %flow, path, why = %why, "Request still held back: its response cannot be named."),
            (None, false) => tracing::warn!(flow = %flow, path, why = %why, "Request held back: its response cannot be named."),
            (Some(expected), true) => {
                tracing::debug!(flow = %flow, path, expected = %expected, why = %why, "Request still held back: its response name is awaited.")
            }
            (Some(expected), false) => {
                tracing::info!(flow = %flow, path, expected = %expected, why = %why, "Request held back: its response name is awaited.")
            }
        }
    }
}

/// Why each of `requests` (entry, path relative to the source folder, what the ledger knew
/// of the path) must not be sent in this run, if it must not: the response it would await
/// is awaited already, for another open request (among the flow's `awaits` in the ledger, or
/// one sent first in this run, in listing order). Responses are matched by name: sent, the
/// two requests could not be told apart — one would lose its await, and take the other's
/// answer. The name is rendered as it will be at delivery (a request sink with `if_exists:
/// rename` may choose another name then; [`register`] warns of a clash this could not
/// foresee). Pure: the caller logs each hold ([`Held::log`]).
///
/// Each request comes with the run before this one that listed it, ready, as it is now
/// ([`seen_ready`]): a hold that run made already (the same await in the way, opened by that
/// run or an earlier one) is logged at debug level, so that a request held for days is told
/// of once at info level, not at every poll; every run's report (and `wharf plan`) still
/// gives the reason.
///
/// Nor is a request sent whose response name still holds an earlier exchange's answer that
/// every sink has but that could not be disposed of on the server (`undisposed`, by response
/// path: [`undisposed`]): that await is answered, but the partner's answer to this request
/// would come under the name of a file wharf is still to delete or move — and a later look,
/// finishing that disposal, would take it for this request's answer.
pub(super) fn held_back<'e>(
    flow: &Flow,
    awaits: Vec<AwaitRecord>,
    undisposed: &BTreeMap<String, FileRecord>,
    requests: impl Iterator<Item = (&'e Entry, &'e str, Option<&'e FileRecord>, Option<u64>)>,
    run: u64,
    now: SystemTime,
) -> Vec<Option<Held>> {
    let Some(resp) = flow.response.as_deref() else { return requests.map(|_| None).collect() };
    let (open, closed): (Vec<AwaitRecord>, Vec<AwaitRecord>) = awaits.into_iter().partition(|a| a.state.is_open());
    // Response names as the response folder tells them apart: with `response.ignore_case`,
    // `x.ack` and `X.ACK` are one name (either answers both).
    let key = |path: &str| resp.flow.source.name_key(path).into_owned();
    let open: BTreeMap<String, AwaitRecord> = open.into_iter().map(|a| (key(&a.expected), a)).collect();
    // The awaits the undisposed responses answered, to name their requests.
    let answered: BTreeMap<String, &AwaitRecord> =
        closed.iter().filter(|a| undisposed.contains_key(&a.expected)).map(|a| (key(&a.expected), a)).collect();
    let undisposed: BTreeMap<String, &FileRecord> = undisposed.iter().map(|(path, r)| (key(path), r)).collect();
    let until = if resp.expire_after.is_some() { "answered or expires" } else { "answered (it has no expire_after)" };
    // Expected response → the request of this run that goes first.
    let mut first: BTreeMap<String, &str> = BTreeMap::new();
    let mut out = Vec::new();
    for (entry, rel, prev, seen) in requests {
        let path = entry.path.as_str();
        // Sent already (this is its await), or not to be sent at all: nothing to hold back.
        let settled = prev.filter(|p| lifecycle::same_version(flow, entry, p)).is_some_and(|p| {
            matches!(p.state, FileState::Done | FileState::Duplicate | FileState::Quarantined)
                || p.deliveries.iter().any(|d| d.sink as usize == resp.request_sink && d.done)
        });
        let resumed = prev.filter(|p| lifecycle::same_version(flow, entry, p) && p.state.in_flight());
        let expected = match (!settled).then(|| predicted(flow, resp, entry, rel, resumed, run, now)) {
            Some(Ok(Some(expected))) => expected,
            // Sent, it could not be awaited (its answer never taken, the file failing after
            // its delivery and aborting the run, run after run): not sent.
            Some(Err(e)) => {
                let why = format!("its response could not be named ({e}): not sent, as no answer to it could be awaited");
                out.push(Some(Held { why, awaited: None, undisposed: false, expected: None, told: seen.is_some() }));
                continue;
            }
            _ => {
                out.push(None);
                continue;
            }
        };
        let id = super::identity::key(flow.source.identity, entry);
        // This very version's await (a run resumed after it was sent): by its identity, or
        // under a content identity the listing cannot tell, by the ledger's record of the
        // version sent (the same size and time).
        let own = |a: &AwaitRecord| {
            a.request == path
                && match &id {
                    Some(k) => *k == a.request_identity,
                    None => prev.is_some_and(|p| lifecycle::same_version(flow, entry, p) && p.identity == a.request_identity),
                }
        };
        let held = |why: String, awaited: Option<&AwaitRecord>, told: bool| Held {
            why,
            awaited: awaited.map(|a| a.expected.clone()),
            undisposed: false,
            expected: Some(expected.to_string()),
            told,
        };
        let name = key(expected.as_str());
        let left = undisposed.get(&name).filter(|_| !open.contains_key(&name));
        let why = match (open.get(&name).filter(|a| !own(a)), first.get(&name)) {
            (None, _) if let Some(r) = left => {
                let answered = answered.get(&name);
                let of = answered.map(|a| format!(" to {}", lifecycle::source_shown(&a.request))).unwrap_or_default();
                let then = match &resp.flow.after_success {
                    crate::config::flow::Disposition::MoveTo(_) => "moved away from",
                    _ => "deleted from",
                };
                let cause = r.last_error.as_ref().map(|e| format!(" ({})", e.message)).unwrap_or_default();
                let why = format!(
                    "its response name {expected} still holds the answer{of}, taken in run {} and not {then} the server yet{cause}; sent \
                     once it is (the partner's answer to this request could not be told from it)",
                    answered.and_then(|a| a.response_run).unwrap_or(r.run),
                );
                // Held by the run before already: the answer was taken by then.
                let told = seen.is_some_and(|earlier| answered.and_then(|a| a.response_run).is_some_and(|taken| taken <= earlier));
                Some(Held {
                    why,
                    awaited: Some(expected.as_str().to_string()),
                    undisposed: true,
                    expected: Some(expected.to_string()),
                    told,
                })
            }
            (Some(a), _) => {
                // Held by the run before already: that await was open then (opened by it, or
                // before it; awaits never reopen), and the request there, ready.
                let told = seen.is_some_and(|earlier| a.request_run <= earlier);
                let earlier = if a.request == path { "an earlier version of " } else { "" };
                let sent = date(a.sent_at);
                // Nothing ends an await without expiry but its answer, or the operator.
                let by_hand = if resp.expire_after.is_some() {
                    String::new()
                } else {
                    let request = format!("/{}", a.request);
                    format!("; `wharf awaits close {} {}` gives up waiting", flow.name, crate::text::shell_word(&request))
                };
                let why = format!(
                    "its response {expected} is awaited for {earlier}{} (sent {sent}); sent once that is {until}{by_hand}",
                    lifecycle::source_shown(&a.request)
                );
                Some(held(why, Some(a), told))
            }
            (None, Some(other)) => {
                let other = lifecycle::source_shown(other);
                let why = format!("its response {expected} would also answer {other}, sent first in this run; sent once that is {until}");
                Some(held(why, None, false))
            }
            (None, None) => {
                first.insert(name, path);
                None
            }
        };
        out.push(why);
    }
    out
}

/// A request held back by an await open in the ledger when the run began ([`Held::awaited`]):
/// the run's look for responses may close that await, and let it go in the same run.
pub(super) struct AfterLook<'c> {
    pub candidate: &'c super::discover::Candidate,
    pub known: lifecycle::Known,
    /// The run before that listed it ready, as it is now ([`seen_ready`]).
    pub seen: Option<u64>,
    /// Why the run held it back before its look.
    pub held: Held,
}

/// Sends, in this run, the requests of `waiting` whose await in the way the run's look for
/// responses (just done: [`poll`]) closed — answered, late, rejected or expired — instead of
/// holding them back until the next run (a day later, on a daily schedule). Safe because
/// the look recorded what it took before any of them is sent: an await registered now is
/// answerable from the next run's look on ([`register`]), so the answer this run took for
/// the earlier request is never taken for the new one. So are the requests held back by an
/// earlier exchange's answer left on the server whose disposal the look did this time
/// ([`dispose_left`]): what is under the name now is a new file.
///
/// Judged again as before the files started ([`held_back`], with the ledger as the look left
/// it: of two requests held back for one response name, the first in listing order goes),
/// then against the names the files sent first took on the sinks ([`shared_targets`]); the
/// others stay held back, their report lines saying why now. Then they take what is left of
/// the run's places under `source.max_files` (`places`: those the files sent first took are
/// gone; one a stopped run left in flight keeps its priority only among these, see
/// `cap::Places`), the others left for the next run as the files over the cap before them. `sent`:
/// the files the run took before its look, in listing order. The awaits registered here are
/// added to the run's responses, as every open await is.
#[allow(clippy::too_many_arguments)]
pub(super) async fn send_after_look(
    cx: &Ctx<'_>,
    waiting: Vec<AfterLook<'_>>,
    sent: &[&super::discover::Candidate],
    places: &mut super::cap::Places,
    names: &[&str],
    stop: &super::Stop,
    report: &mut super::RunReport,
    on_file: &mut (dyn FnMut(&FileReport) + Send),
) -> Result<(), RunAbort> {
    let flow = cx.flow;
    let awaits = cx.ledger.awaits(Some(&flow.name))?;
    let open = |expected: &str| awaits.iter().any(|a| a.expected == expected && a.state.is_open());
    if waiting.iter().all(|w| w.held.awaited.as_deref().is_none_or(open)) {
        return Ok(());
    }
    // Judged again also for an answer left on the server: the look may have disposed of it,
    // or (taking it just now, and refused) be what holds the request back now.
    let left = undisposed(cx.ledger, flow, &awaits)?;
    let requests = waiting.iter().map(|w| (&w.candidate.entry, w.candidate.rel.as_str(), w.known.prev(), w.seen));
    let again = held_back(flow, awaits.clone(), &left, requests, cx.run, cx.now);
    let mut free = Vec::new();
    for (w, held) in waiting.into_iter().zip(again) {
        let path = &w.candidate.entry.path;
        match held {
            // Told already in this run, unless the reason changed (another request took the
            // name in its turn).
            Some(h) if h.why != w.held.why => {
                h.log(flow, path);
                super::reword_not_ready(report, path, h.why);
            }
            Some(_) => {}
            None => free.push(w),
        }
    }
    let first = sent.iter().map(|c| Some(super::shared_targets::Contender { entry: &c.entry, rel: &c.rel, resumed: true, seen: false }));
    let then = free.iter().map(|w| {
        let c = w.candidate;
        w.known.contends(flow, &c.entry).map(|resumed| super::shared_targets::Contender {
            entry: &c.entry,
            rel: &c.rel,
            resumed,
            seen: w.seen.is_some(),
        })
    });
    let named = super::shared_targets::held_back(flow, first.chain(then), cx.run, cx.now);
    let mut going = Vec::new();
    for (w, why) in free.into_iter().zip(named.into_iter().skip(sent.len())) {
        let path = &w.candidate.entry.path;
        if let Some(why) = why {
            super::reword_not_ready(report, path, why);
            continue;
        }
        // Sent, or left by the cap: its report line is not `not ready` either way.
        super::unrecord_not_ready(report, path);
        going.push((w.candidate, w.known, w.held.awaited));
    }
    let awaited: BTreeMap<&str, Option<String>> = going.iter().map(|(c, _, a)| (c.entry.path.as_str(), a.clone())).collect();
    let going = going.into_iter().map(|(c, k, _)| (c, k)).collect();
    let going = super::leave_for_later(flow, cx.run, going, places, report);
    for (c, _) in &going {
        let awaited = awaited.get(c.entry.path.as_str()).cloned().flatten();
        tracing::info!(flow = %flow.name, path = %c.entry.path, awaited = awaited.as_deref().map(lifecycle::source_shown).unwrap_or_default(), "Request sent after all: the run took what it waited for.");
    }
    if going.is_empty() {
        return Ok(());
    }
    super::take_turns(cx, going, names, stop, report, on_file).await?;
    // Their awaits, as the run reports every open one: those it registered that its look did
    // not report (a look reports every await open before it).
    let looked: Vec<(String, String)> = report.responses.iter().map(|r| (r.request.clone(), r.expected.clone())).collect();
    let new = cx.ledger.awaits(Some(&flow.name))?.into_iter().filter(|a| a.state.is_open() && a.request_run == cx.run);
    for a in new.filter(|a| !looked.iter().any(|(request, expected)| *request == a.request && *expected == a.expected)) {
        report.responses.push(ResponseReport {
            detail: describe(&a, None),
            request: a.request,
            expected: a.expected,
            state: a.state,
            file: None,
        });
    }
    Ok(())
}

/// The flow's latest run before `run` that got as far as listing its source (not aborted):
/// its number and start, for [`seen_ready`].
pub(super) fn earlier_run(ledger: &Ledger, flow: &str, run: u64) -> Result<Option<(u64, Millis)>, LedgerError> {
    let runs = ledger.runs(Some(flow), 16)?;
    Ok(runs.iter().find(|r| r.id < run && r.status != crate::ledger::RunStatus::Aborted).map(|r| (r.id, r.started)))
}

/// The run `earlier` (see [`earlier_run`]) when it listed `c` as it is now and found it
/// ready: `obs` is the ledger's observation of it from before this run.
pub(super) fn seen_ready(
    flow: &Flow,
    c: &super::discover::Candidate,
    obs: Option<&crate::ledger::Observation>,
    earlier: Option<(u64, Millis)>,
) -> Option<u64> {
    let (run, started) = earlier?;
    let obs = obs.filter(|o| o.size == c.entry.size && o.mtime == super::identity::mtime_millis(&c.entry) && o.since <= started)?;
    matches!(c.assess(&flow.source.ready, Some(obs), started).0, super::ready::Readiness::Ready).then_some(run)
}

/// The response `entry` will await once delivered in this run, as far as it can be told
/// before: `None` when the request's own target cannot be named (its delivery reports that);
/// an error when the response's name cannot be rendered over it. `resumed`: the record of
/// this very version a run left in flight; a request-sink target it recorded (a run stopped
/// during the upload, or killed after the rename before it knew) is the name a resumed
/// delivery keeps when it finds the request there whole (`lifecycle::recovered`), and the
/// response is named after it.
fn predicted(
    flow: &Flow,
    resp: &Response,
    entry: &Entry,
    rel: &str,
    resumed: Option<&FileRecord>,
    run: u64,
    now: SystemTime,
) -> Result<Option<RemotePath>, FileError> {
    let recorded = resumed
        .and_then(|r| r.deliveries.iter().find(|d| d.sink as usize == resp.request_sink))
        .and_then(|d| RemotePath::parse(&d.target).ok());
    let target = match recorded {
        Some(t) => t,
        None => {
            let Some(Ok((dir, name))) =
                flow.sinks.get(resp.request_sink).map(|_| lifecycle::wanted_for(flow, resp.request_sink, entry, rel, run, now))
            else {
                return Ok(None);
            };
            let Ok(target) = dir.join(&name) else { return Ok(None) };
            target
        }
    };
    expected_path(resp, target.name(), entry.size, run, to_millis(now)).map(Some)
}

/// The response a request the next run sends will await once sent, for `wharf plan`'s line
/// of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedAwait {
    /// Where the run looks for it, named as the run names it ([`predicted`], as [`held_back`]
    /// does): `partner:/outbox/a.ack`.
    pub response: String,
    /// Due this long after the request is sent (`response.deadline`): `1h`.
    pub deadline: String,
    /// No longer awaited this long after it is sent (`response.expire_after`; none: awaited
    /// until answered, or closed by hand).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_after: Option<String>,
}

impl PlannedAwait {
    /// `awaits partner:/outbox/a.ack, due within 1h of sending (until 1d after)`: the words of
    /// an await's line ([`describe`]), before it is sent.
    pub fn shown(&self) -> String {
        let until = match &self.expire_after {
            Some(e) => format!("until {e} after"),
            None => "until answered: no expire_after".to_string(),
        };
        format!("awaits {}, due within {} of sending ({until})", self.response, self.deadline)
    }
}

/// What the request `entry` (`rel`: its path relative to the source folder) awaits once the
/// run numbered `run` sends it at `now`, for `wharf plan`: its response named as the run
/// names it before sending ([`predicted`], as [`held_back`] does; `resumed`: this version's
/// record a run left in flight). `None` for a flow without `response`; for a request the
/// request sink confirmed already (its await is open, and is shown with the plan's
/// responses) or left as it was (`if_exists: skip`: not sent, nothing awaited); or when the
/// name cannot be told (the file's line says why elsewhere: its target cannot be named; a
/// response name that cannot be rendered holds the request back).
pub(super) fn planned(
    flow: &Flow,
    entry: &Entry,
    rel: &str,
    resumed: Option<&FileRecord>,
    run: u64,
    now: SystemTime,
) -> Option<PlannedAwait> {
    let resp = flow.response.as_deref()?;
    if resumed.is_some_and(|r| r.deliveries.iter().any(|d| d.sink as usize == resp.request_sink && d.done)) {
        return None;
    }
    let expected = predicted(flow, resp, entry, rel, resumed, run, now).ok()??;
    Some(PlannedAwait {
        response: format!("{}:{expected}", resp.flow.source.endpoint),
        deadline: crate::config::duration::format(resp.deadline),
        expire_after: resp.expire_after.map(crate::config::duration::format),
    })
}

/// The expected response path for a request of `size` bytes delivered under `target_name`.
fn expected_path(resp: &Response, target_name: &str, size: u64, run: u64, sent_at: Millis) -> Result<RemotePath, FileError> {
    let vars = NameVars::new(target_name, "", size, run, from_millis(sent_at));
    let name = resp.name.render(&vars).map_err(FileError::Name)?;
    resp.flow.source.path.join(&name).map_err(|e| FileError::Name(format!("response name {name:?}: {e}")))
}

fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// Checks the response folder for every open await of the flow, takes the responses that are
/// there, and moves the awaits along. `eps` holds the opened endpoints (see [`endpoint_names`]).
///
/// Once a stop is asked (`wharf serve` shutting down) it starts nothing more: not the look, if
/// asked before it; no further response, if asked during it (the one being taken finishes).
/// The awaits it did not get to are reported as they are, not judged: an await marked overdue
/// unseen would make an answer written in time late. The next run looks.
pub(super) async fn poll(cx: &Ctx<'_>, eps: &BTreeMap<String, DynEndpoint>, stop: &super::Stop) -> Result<Vec<ResponseReport>, RunAbort> {
    let Some(resp) = cx.flow.response.as_deref() else { return Ok(Vec::new()) };
    let awaits = cx.ledger.awaits(Some(&cx.flow.name))?;
    let left = left_undisposed(cx.ledger, cx.flow, &awaits)?;
    let open: Vec<AwaitRecord> = awaits.into_iter().filter(|a| a.state.is_open()).collect();
    if open.is_empty() && left.is_empty() {
        return Ok(Vec::new());
    }
    if stop.requested() {
        tracing::info!(flow = %cx.flow.name, awaits = open.len(), "Shutting down: the responses are looked for by the next run.");
        return Ok(open.into_iter().chain(left.into_iter().map(|(a, _)| a)).map(not_looked).collect());
    }
    let rflow = &resp.flow;
    let get = |n: &str| {
        eps.get(n).cloned().ok_or_else(|| RunAbort::File(format!("flow {}: endpoint {n} is not open", rflow.name), ErrorKind::Config))
    };
    let source = get(&rflow.source.endpoint)?;
    let rcx = Ctx {
        commits: Default::default(),
        flow: rflow,
        events_flow: &cx.flow.name,
        ledger: cx.ledger,
        source: source.clone(),
        sinks: rflow.sinks.iter().map(|s| get(&s.endpoint)).collect::<Result<_, _>>()?,
        quarantine: rflow.quarantine.as_ref().map(|q| get(&q.endpoint)).transpose()?,
        run: cx.run,
        now: cx.now,
        staging_dir: cx.staging_dir,
        claims: cx.claims.clone(),
        folders: Default::default(),
        budget: Default::default(),
        listed: &[],
    };
    // Listed for the open awaits only: a response left undisposed is finished from its record.
    let listing = if open.is_empty() { Ok(Listed::new(&[], false)) } else { list(&source, rflow).await };
    let listed = match listing {
        Ok(l) => l,
        // Said as what it is: the end of a run whose files are done (and reported as they are),
        // not a run that could not start.
        Err(RunAbort::Endpoint(e)) => {
            let msg = format!(
                "flow {}: could not look for the responses of {} open await(s) in {}: {e}{}; the run's files are done as \
                 reported, the awaits stay open and the next run looks again",
                cx.flow.name,
                open.len(),
                rflow.source.path,
                super::hint(&e)
            );
            return Err(RunAbort::File(msg, e.kind));
        }
        Err(other) => return Err(other),
    };
    let slack = slack(&source);
    let now = to_millis(cx.now);
    let mut out = Vec::with_capacity(open.len());
    let mut open = open.into_iter();
    while let Some(mut a) = open.next() {
        if stop.requested() {
            let rest: Vec<ResponseReport> = std::iter::once(a).chain(open.by_ref()).map(not_looked).collect();
            tracing::info!(flow = %cx.flow.name, awaits = rest.len(), "Shutting down: the other responses are looked for by the next run.");
            out.extend(rest);
            break;
        }
        let mut file = None;
        // When the response that is there but was not taken in this run was written.
        let mut there = None;
        // Whether this look tried to take the response (there, or finished from its record).
        let mut tried = false;
        let found = match response_for(&listed, &a) {
            // Named like the expected one but for case (`response.ignore_case`): its answer is
            // recorded under the name it has, and so is the await from now on (what finds it
            // again after a crash). Not when that name is another open await's own, nor for a
            // file older than the request (left from an earlier exchange: not its answer).
            Ok(Some(entry)) if entry.path.as_str() != a.expected && !older_than_request(&entry, &a, slack) => {
                match cx.ledger.move_await(&a, entry.path.as_str())? {
                    Some(moved) => {
                        a = moved;
                        Ok(Some(entry))
                    }
                    None => Ok(None),
                }
            }
            other => other,
        };
        match found.as_ref().map(Option::as_ref) {
            Err(why) => file = Some(not_named_so(&a, why)),
            Ok(Some(entry)) if older_than_request(entry, &a, slack) => file = Some(stale(entry, &a)),
            Ok(Some(entry)) => {
                tried = true;
                let earlier = cx.ledger.file(&rflow.name, &a.expected)?;
                let known = earlier.filter(|r| taken_away(r, &a)).map(|_| lifecycle::Known::anew());
                let f = take(&rcx, entry, entry.path.name(), known).await?;
                if matches!(f.outcome, Outcome::Failed | Outcome::NotReady) {
                    // Listed by now: a later time is a server clock (or zone) ahead of ours.
                    let listed_by = crate::ledger::now_millis();
                    there = Some(super::identity::mtime_millis(entry).map_or(to_millis(cx.now), |m| m.min(listed_by)));
                }
                // "Already delivered" is an earlier round trip's response kept on the server.
                file = Some(f).filter(|f| f.outcome != Outcome::Skipped);
            }
            Ok(None) => {
                // Gone from the server, but a crashed run left it delivered or being disposed
                // of (deleted or moved before the ledger said so): finished from its record,
                // as a run finishes its own files left so. Only the look comes back to the
                // response flow's files.
                if let Some(r) = left_by_crash(cx.ledger, rflow, &a)? {
                    tried = true;
                    file = take_from_record(&rcx, &r).await?;
                }
            }
        }
        let taken = taken_for(cx.ledger, rflow, &a)?;
        // Begun and not finished (a sink has it): the await does not expire. Asked only of a
        // response this look tried to take: one gone from the server half taken (and not left
        // by a crash to finish from its record) holds nothing open for ever.
        let begun = tried && taken.is_none() && response_being_taken(cx.ledger, &cx.flow.name, &a)?.is_some();
        let seen = Seen { there, begun };
        // Each change is stored with its event: an await that passed its deadline and its
        // expiry while no run looked becomes overdue, then expired (two events).
        for (next, event) in changes(&a, taken.as_ref(), file.as_ref(), seen, now) {
            a = next;
            if let Some(ev) = cx.ledger.update_await(&a, event, now, cx.run)? {
                tracing::warn!(flow = %cx.flow.name, request = %lifecycle::source_shown(&a.request), expected = %lifecycle::source_shown(&a.expected), kind = ev.kind.as_str(), detail = %ev.detail, "Response event.");
            }
        }
        out.push(ResponseReport { detail: describe(&a, file.as_ref()), request: a.request, expected: a.expected, state: a.state, file });
    }
    dispose_left(cx, &rcx, left, stop, &mut out).await?;
    Ok(out)
}

/// Tries again to dispose of each response of `left` ([`left_undisposed`]: answered, every
/// response sink has it, its `after` not done on the partner's server), as a run finishes a
/// delivered file of its own: through the lifecycle from the response's record (`rcx`), which
/// resumes it at its disposal and delivers nothing again. Its await stays answered (or late);
/// its detail says what became of the response, and the run reports it with the response's
/// own report: failed again, the run fails (exit 1), as for a flow's file. Once a stop is
/// asked, the others are left for the next run.
async fn dispose_left(
    cx: &Ctx<'_>,
    rcx: &Ctx<'_>,
    left: Vec<(AwaitRecord, FileRecord)>,
    stop: &super::Stop,
    out: &mut Vec<ResponseReport>,
) -> Result<(), RunAbort> {
    let mut left = left.into_iter();
    while let Some((mut a, r)) = left.next() {
        if stop.requested() {
            out.extend(std::iter::once(a).chain(left.by_ref().map(|(a, _)| a)).map(not_looked));
            break;
        }
        let Some(f) = take_from_record(rcx, &r).await? else { continue };
        if a.detail.as_deref() != Some(f.detail.as_str()) {
            a.detail = Some(f.detail.clone());
            cx.ledger.update_await(&a, None, to_millis(cx.now), cx.run)?;
        }
        out.push(ResponseReport {
            detail: describe(&a, Some(&f)),
            request: a.request,
            expected: a.expected,
            state: a.state,
            file: Some(f),
        });
    }
    Ok(())
}

/// What is left of a response every sink has: its disposal on the server, and why it is not
/// done when a run tried (`r`'s last error).
fn not_disposed(r: &FileRecord) -> String {
    match &r.last_error {
        Some(e) => format!("not disposed of on the server yet: {}", e.message),
        None => "not disposed of on the server yet".to_string(),
    }
}

/// Takes the response `entry` through the lifecycle of the response flow (`rcx`); a failure
/// that stops the run aborts it.
async fn take(rcx: &Ctx<'_>, entry: &Entry, rel: &str, known: Option<lifecycle::Known>) -> Result<FileReport, RunAbort> {
    let (f, abort) = lifecycle::process(rcx, entry, rel, known).await?;
    if abort {
        let msg = format!("flow {}: {}: {}", rcx.flow.name, f.path, f.detail);
        return Err(RunAbort::File(msg, f.error_kind.unwrap_or(ErrorKind::Protocol)));
    }
    Ok(f)
}

/// Takes up the response whose record `r` says every sink has it, from that record: its
/// disposition is what is left ([`take`]). `None` for a record whose path is not one.
async fn take_from_record(rcx: &Ctx<'_>, r: &FileRecord) -> Result<Option<FileReport>, RunAbort> {
    let Ok(path) = RemotePath::parse(&r.path) else { return Ok(None) };
    let entry = Entry { path, kind: crate::endpoint::EntryKind::File, size: r.size, mtime: r.mtime.map(from_millis) };
    take(rcx, &entry, "", None).await.map(Some)
}

/// The report of an open await the run did not look at, for a stop was asked.
fn not_looked(a: AwaitRecord) -> ResponseReport {
    let detail = format!("{}; not looked for: wharf is shutting down, the next run looks", describe(&a, None));
    ResponseReport { detail, request: a.request, expected: a.expected, state: a.state, file: None }
}

/// How much older than its request a file named like the response on `ep` may look and still
/// answer it. Times a minute coarse may come from an FTP LIST in the server's own time zone
/// (hours off ours): only a response older by more than a day is then known to be stale.
fn slack(ep: &DynEndpoint) -> Millis {
    if ep.capabilities().mtime_precision < Duration::from_secs(60) { CLOCK_SLACK } else { DAY_SLACK }
}

/// The response flow's record of `a`'s response when it was taken for *this* request: done or
/// quarantined by the run that registered it (its poll comes after the run's requests; for a
/// request sent after that poll, the next run: `answerable_from`) or a later one. Told by
/// run, not by the clock: an earlier exchange's response touched again
/// (kept on the server, deleted now that `after` says `delete`) is not this request's answer,
/// and a clock set back between the request and its answer does not leave the answer
/// unrecorded.
/// Whether `r`, the record of the response path, is of an earlier exchange's response that
/// was taken and then deleted or moved away from the server: whatever is there now is a new
/// file, though it may list as that one did (the same size, written in the same minute, on a
/// server listing times to the minute) — taken for the await, never disposed of unseen as
/// "already delivered". (A response kept on the server cannot be told from a new one so.)
fn taken_away(r: &FileRecord, a: &AwaitRecord) -> bool {
    r.state == FileState::Done
        && matches!(r.source_fate, crate::ledger::SourceFate::Moved | crate::ledger::SourceFate::Deleted)
        && r.run < a.answerable_from
}

fn taken_for(ledger: &Ledger, rflow: &Flow, a: &AwaitRecord) -> Result<Option<FileRecord>, LedgerError> {
    Ok(ledger.file(&rflow.name, &a.expected)?.filter(|r| r.run >= a.answerable_from && answers(r)))
}

/// Whether the response flow's record `r` is an answer taken: done, refused by the response's
/// steps (quarantined), or delivered to every response sink with only its disposal on the
/// partner's server left (`delivered`, `disposing`: refused there, or a crash before it was
/// done). The partner answered, and every sink has the answer: that is what the await
/// records. A disposal that fails is the response file's own failure, which later runs try
/// again as a flow's ([`dispose_left`]), never delivering it again.
fn answers(r: &FileRecord) -> bool {
    matches!(r.state, FileState::Done | FileState::Quarantined) || lifecycle::delivered(r)
}

/// The flow's responses every response sink has whose disposal on the partner's server is
/// not done (refused there; or a crash before it was done, the await closed since): each with
/// its await, answered or late by them. Read through the ledger's in-flight index (cheap).
/// While one is there, a request awaiting its name is not sent ([`held_back`]), and every
/// look tries its disposal again ([`dispose_left`]).
fn left_undisposed(ledger: &Ledger, flow: &Flow, awaits: &[AwaitRecord]) -> Result<Vec<(AwaitRecord, FileRecord)>, LedgerError> {
    let Some(resp) = flow.response.as_deref() else { return Ok(Vec::new()) };
    let closed: BTreeMap<&str, &AwaitRecord> =
        awaits.iter().filter(|a| matches!(a.state, AwaitState::Answered | AwaitState::Late)).map(|a| (a.expected.as_str(), a)).collect();
    let left = ledger.in_flight_files(&resp.flow.name)?.into_iter().filter(lifecycle::delivered);
    Ok(left.filter_map(|r| closed.get(r.path.as_str()).map(|a| ((*a).clone(), r))).collect())
}

/// [`left_undisposed`] of the ledger's awaits of `flow`, by response path: what
/// [`held_back`] is given.
pub(super) fn undisposed(ledger: &Ledger, flow: &Flow, awaits: &[AwaitRecord]) -> Result<BTreeMap<String, FileRecord>, LedgerError> {
    Ok(left_undisposed(ledger, flow, awaits)?.into_iter().map(|(_, r)| (r.path.clone(), r)).collect())
}

/// The response flow's record of `a`'s response when a run that stopped (a crash) left it
/// delivered or being disposed of for this request: gone from the server (deleted or moved
/// before the ledger said so), the run finishes it from this record ([`poll`]), and `wharf
/// plan` says so ([`foresee`]).
fn left_by_crash(ledger: &Ledger, rflow: &Flow, a: &AwaitRecord) -> Result<Option<FileRecord>, LedgerError> {
    Ok(ledger.file(&rflow.name, &a.expected)?.filter(|r| lifecycle::delivered(r) && r.run >= a.answerable_from))
}

/// The states `a` goes through in one look ([`judge`] until nothing changes), each with the
/// event it causes: overdue then expired, for an await that passed its deadline and its expiry
/// while no run looked. Judged again only while it stays open: a closed await is final.
fn changes(
    a: &AwaitRecord,
    taken: Option<&FileRecord>,
    file: Option<&FileReport>,
    seen: Seen,
    now: Millis,
) -> Vec<(AwaitRecord, Option<(EventKind, String)>)> {
    let mut a = a.clone();
    let mut out = Vec::new();
    for _ in 0..3 {
        let before = a.clone();
        let event = judge(&mut a, taken, file, seen, now);
        if a == before {
            break;
        }
        out.push((a.clone(), event));
        if !a.state.is_open() {
            break;
        }
    }
    out
}

/// What the next run's look at the responses would do with one open await (`wharf plan`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedResponse {
    /// The request's source path.
    pub request: String,
    /// The expected response's path on the response endpoint.
    pub expected: String,
    /// Its state now, as the ledger has it.
    pub state: AwaitState,
    /// Its state once the run looked (a response taken may yet be refused by its steps:
    /// `rejected`).
    pub becomes: AwaitState,
    /// The states it passes through on the way to `becomes`, in order (`overdue`, for an
    /// await past its deadline and its expiry that no run looked at meanwhile: the run
    /// records it overdue, then expired).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub through: Vec<AwaitState>,
    /// The events the run records for it (`overdue`, `late`, `expired`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventKind>,
    /// What the run does, in words.
    pub detail: String,
    /// Where a response taken goes: `endpoint:/path` per sink, as the run's exists-policy
    /// chooses it on the sink as it is (`(replacing the file there)`, `(… is taken)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

impl PlannedResponse {
    /// Its states now and after the run's look, with the events the run records:
    /// `waiting → overdue → expired (events overdue, expired)`, `waiting` when it stays.
    pub fn states_shown(&self) -> String {
        let mut s = self.state.as_str().to_string();
        for state in self.through.iter().chain((self.becomes != self.state).then_some(&self.becomes)) {
            s.push_str(" → ");
            s.push_str(state.as_str());
        }
        if !self.events.is_empty() {
            let events: Vec<&str> = self.events.iter().map(|e| e.as_str()).collect();
            s.push_str(&format!(" (event{} {})", if events.len() == 1 { "" } else { "s" }, events.join(", ")));
        }
        s
    }
}

/// What the next run (number `run`, at `now`) would do with each open await of `flow` when it
/// looks for the responses at its end, from the same listing and the same decisions as
/// [`poll`], taking nothing (`wharf plan`). Nothing, and no connection, when no await is open.
/// The second value says why the responses could not be looked at (the endpoint unreachable,
/// the folder not listed: a run would stop there).
pub(super) async fn foresee(
    flow: &Flow,
    ledger: &Ledger,
    run: u64,
    now: SystemTime,
) -> Result<(Vec<PlannedResponse>, Option<String>), LedgerError> {
    let Some(resp) = flow.response.as_deref() else { return Ok((Vec::new(), None)) };
    let awaits = ledger.awaits(Some(&flow.name))?;
    let undisposed = left_undisposed(ledger, flow, &awaits)?;
    let open: Vec<AwaitRecord> = awaits.into_iter().filter(|a| a.state.is_open()).collect();
    if open.is_empty() && undisposed.is_empty() {
        return Ok((Vec::new(), None));
    }
    let rflow = &resp.flow;
    let ep = &rflow.source.endpoint;
    let not_looked = |why: String| match undisposed.len() {
        0 => format!("the responses of the {} open await(s) were not looked for: {why}", open.len()),
        n => format!(
            "the responses of the {} open await(s), and the {n} answered whose response is not disposed of on the server yet, were \
             not looked for: {why}",
            open.len()
        ),
    };
    let source = match super::endpoints::open_all(flow, &[ep.as_str()]).await {
        Ok(eps) => match eps.get(ep) {
            Some(e) => e.clone(),
            None => return Ok((Vec::new(), Some(not_looked(format!("endpoint {ep} is not defined"))))),
        },
        Err(e) => {
            return Ok((
                Vec::new(),
                Some(not_looked(format!("endpoint {ep} could not be reached ({e}); a run now would stop before taking any file"))),
            ));
        }
    };
    let listed = match list(&source, rflow).await {
        Ok(l) => l,
        Err(e) => {
            let why = match e {
                RunAbort::Ledger(e) => return Err(e),
                RunAbort::Endpoint(e) => format!("{e}{}", super::hint(&e)),
                RunAbort::File(msg, _) => msg,
                RunAbort::Command(e) => e.to_string(),
            };
            return Ok((Vec::new(), Some(not_looked(format!("{why}; a run now would fail at its end")))));
        }
    };
    let slack = slack(&source);
    let now_ms = to_millis(now);
    // The response sinks, opened for the first response that would be taken.
    let mut sinks = None;
    let mut out = Vec::with_capacity(open.len());
    for mut a in open {
        let mut targets = Vec::new();
        // A response a crashed run left delivered or being disposed of: what is left is its
        // disposition.
        let mut finishing = false;
        let found = response_for(&listed, &a);
        // Named like the expected one but for case: looked at as the run records it, under
        // the name it has (`poll`).
        if let Ok(Some(e)) = &found
            && !older_than_request(e, &a, slack)
        {
            a.expected = e.path.as_str().to_string();
        }
        let (taken, what, seen) = match found.as_ref().map(Option::as_ref) {
            Err(why) => (taken_for(ledger, rflow, &a)?, Some(not_named_so(&a, why).detail), Seen::default()),
            Ok(Some(entry)) if older_than_request(entry, &a, slack) => {
                (taken_for(ledger, rflow, &a)?, Some(stale(entry, &a).detail), Seen::default())
            }
            Ok(Some(entry)) => {
                let prev =
                    ledger.file(&rflow.name, &a.expected)?.filter(|p| lifecycle::same_version(rflow, entry, p) && !taken_away(p, &a));
                // Left delivered or being disposed of by a run that stopped (its `move_to`
                // not done): the run resumes it there, as it finishes one gone ([`poll`]).
                let left = left_by_crash(ledger, rflow, &a)?.filter(|r| prev.as_ref() == Some(r));
                match prev.as_ref().and_then(lifecycle::Settled::of) {
                    None if let Some(r) = left => {
                        finishing = true;
                        let (what, taken) = finished(rflow, &source, r, Some(entry), (run, now_ms), &mut targets).await;
                        (Some(taken), Some(what), Seen::default())
                    }
                    // "Already delivered": an earlier round trip's response kept on the server
                    // (disposed of now, as any file delivered before).
                    Some(settled) => {
                        let then = match (&settled, &rflow.after_success) {
                            (lifecycle::Settled::Quarantined(_), _) | (_, crate::config::flow::Disposition::Keep) => "left there",
                            (_, crate::config::flow::Disposition::Delete) => "deleted from the server now",
                            (_, crate::config::flow::Disposition::MoveTo(_)) => "moved away now",
                        };
                        // Unless it was taken for this very request (a run stopped before it
                        // recorded so): then the run only records it.
                        let taken = taken_for(ledger, rflow, &a)?;
                        let what = taken.is_none().then(|| {
                            format!("there, but an earlier exchange's response, taken before: not this request's answer ({then})")
                        });
                        (taken, what, Seen::default())
                    }
                    None => {
                        let refused = look_at_targets(flow, rflow, &mut sinks, (entry, prev.as_ref()), run, now, &mut targets).await;
                        let written = super::identity::mtime_millis(entry).map(|m| format!(" (written {})", date(m))).unwrap_or_default();
                        if !refused.is_empty() {
                            // The run fails it (and tries again next run): there, not taken.
                            let at = super::identity::mtime_millis(entry).map_or(now_ms, |m| m.min(now_ms));
                            let why = format!(
                                "there{written}, but not taken: {}; the run fails, and the next one tries again",
                                refused.join("; ")
                            );
                            // Half taken by an earlier run, it does not expire (see `poll`).
                            let begun = response_being_taken(ledger, &flow.name, &a)?.is_some();
                            (None, Some(why), Seen { there: Some(at), begun })
                        } else {
                            let then = match &rflow.after_success {
                                crate::config::flow::Disposition::Keep => String::new(),
                                crate::config::flow::Disposition::Delete => "; then deleted from the server".to_string(),
                                crate::config::flow::Disposition::MoveTo(p) => format!("; then moved to {p}/ on the server"),
                            };
                            let steps = if rflow.steps.is_some() { "; its steps may yet refuse it (rejected)" } else { "" };
                            // As the run records it once taken now.
                            let taken = FileRecord {
                                path: a.expected.clone(),
                                state: FileState::Done,
                                mtime: super::identity::mtime_millis(entry),
                                updated: now_ms,
                                run,
                                ..Default::default()
                            };
                            let to = if targets.is_empty() { String::new() } else { format!(" to {}", targets.join(", ")) };
                            (Some(taken), Some(format!("there{written}: taken{to}{then}{steps}")), Seen::default())
                        }
                    }
                }
            }
            // Gone, but left delivered or being disposed of by a run that stopped: the run
            // finishes it from its record, as `poll` does.
            Ok(None) => match left_by_crash(ledger, rflow, &a)?.filter(|r| RemotePath::parse(&r.path).is_ok()) {
                Some(r) => {
                    finishing = true;
                    let (what, taken) = finished(rflow, &source, r, None, (run, now_ms), &mut targets).await;
                    (Some(taken), Some(what), Seen::default())
                }
                None => (taken_for(ledger, rflow, &a)?, None, Seen::default()),
            },
        };
        let changed = changes(&a, taken.as_ref(), None, seen, now_ms);
        let events = changed.iter().filter_map(|(_, e)| e.as_ref().map(|e| e.0)).collect();
        let after = changed.last().map_or_else(|| a.clone(), |(a, _)| a.clone());
        let through = changed[..changed.len().saturating_sub(1)].iter().map(|(a, _)| a.state).collect();
        // Finishing a response left by a crash may fail too (the move refused, the server
        // gone): the await is answered all the same, every sink having the answer.
        let once = if finishing {
            ": every sink has it (should that fail, the response's failure fails the run, and the next run tries again)"
        } else {
            ""
        };
        let detail = match (what, after.state) {
            (Some(what), AwaitState::Answered) => format!("{what}; answered in time (due by {}){once}", date(a.deadline_at)),
            (Some(what), AwaitState::Late) => format!("{what}; answered LATE (due by {}){once}", date(a.deadline_at)),
            (Some(what), _) => format!("{what}; {}", describe(&after, None)),
            (None, _) if after.state.is_open() => format!("not there; {}", describe(&after, None)),
            (None, _) => describe(&after, None),
        };
        out.push(PlannedResponse {
            request: a.request,
            expected: a.expected,
            state: a.state,
            becomes: after.state,
            through,
            events,
            detail,
            targets,
        });
    }
    // Answered, every sink has the response, its disposal refused: tried again ([`dispose_left`]).
    for (a, r) in undisposed {
        let mut targets = Vec::new();
        let (what, _) = finished(rflow, &source, r, listed.get(&a.expected), (run, now_ms), &mut targets).await;
        let answered = if a.state == AwaitState::Late { "answered LATE" } else { "answered" };
        let taken = a.response_run.map(|r| format!(" in run {r}")).unwrap_or_default();
        out.push(PlannedResponse {
            detail: format!("{answered}{taken}; {what}"),
            request: a.request,
            expected: a.expected,
            state: a.state,
            becomes: a.state,
            through: Vec::new(),
            events: Vec::new(),
            targets,
        });
    }
    Ok((out, None))
}

/// What the run does with the response `r` a crashed run left delivered or being disposed of
/// ([`left_by_crash`]), or whose disposal the server refused ([`left_undisposed`]), `listed`
/// in the response folder or gone from it, for `wharf plan`: the plan's words, and the record
/// as the run leaves it once that succeeds (taken, in run `run` at `now`). Its targets
/// (delivered before) go into `targets`. What is left is its disposition, as
/// `disposition::foresee` sees the response folder.
async fn finished(
    rflow: &Flow,
    source: &DynEndpoint,
    r: FileRecord,
    listed: Option<&Entry>,
    (run, now): (u64, Millis),
    targets: &mut Vec<String>,
) -> (String, FileRecord) {
    *targets = lifecycle::targets_shown(rflow, r.deliveries.iter());
    let recorded = lifecycle::recorded_move(&r);
    let fate = match RemotePath::parse(&r.path) {
        Ok(path) => {
            super::disposition::foresee(&**source, &path, &rflow.after_success, recorded.as_ref(), Some(listed.is_some()), |_| false).await
        }
        Err(e) => Err(FileError::Name(e.to_string())),
    };
    let left = super::plan::fate_shown(rflow, fate, recorded.as_ref());
    let there = match listed {
        Some(entry) => {
            let written = super::identity::mtime_millis(entry).map(|m| format!(" (written {})", date(m))).unwrap_or_default();
            format!("there{written}")
        }
        None => "no longer there".to_string(),
    };
    let what = match &r.last_error {
        // Its disposal refused (or failing) when a run tried.
        Some(_) => {
            format!("{there}: delivered to {}, {}; the run tries again, from its record: {left}", targets.join(", "), not_disposed(&r))
        }
        None => format!(
            "{there}: delivered to {} by run {}, which stopped before it was done (left {}); the run finishes it from its record: {left}",
            targets.join(", "),
            r.run,
            r.state.as_str()
        ),
    };
    (what, FileRecord { state: FileState::Done, updated: now, run, ..r })
}

/// Where the run delivers the response `entry` on each response sink, as its exists-policy
/// chooses on the sink as it is (`transfer::choose_target`), into `targets`; returns what a
/// sink refuses (its target there, `if_exists: fail`): the run fails the response. A sink
/// that confirmed it before (`prev`, the record of this version: a response some sink
/// refused after another had it) is not delivered to again, and its target there is ours.
/// `sinks`: the sinks' endpoints, opened on the first call (`Err`: why they could not be,
/// and the targets are shown as named).
async fn look_at_targets(
    flow: &Flow,
    rflow: &Flow,
    sinks: &mut Option<Result<BTreeMap<String, DynEndpoint>, String>>,
    (entry, prev): (&Entry, Option<&FileRecord>),
    run: u64,
    now: SystemTime,
    targets: &mut Vec<String>,
) -> Vec<String> {
    if sinks.is_none() {
        let names: Vec<&str> = rflow.sinks.iter().map(|s| s.endpoint.as_str()).collect();
        *sinks = Some(super::endpoints::open_all(flow, &names).await.map_err(|e| e.to_string()));
    }
    let mut refused = Vec::new();
    for (i, sink) in rflow.sinks.iter().enumerate() {
        match prev.and_then(|r| r.deliveries.iter().find(|d| d.sink as usize == i)) {
            Some(d) if d.done => {
                targets.push(format!("{}:/{} (delivered before)", sink.endpoint, d.target));
                continue;
            }
            // Left unconfirmed by an earlier run, as an ordinary file's.
            Some(d) => {
                targets.push(super::plan::unconfirmed_shown(&sink.endpoint, &d.target));
                continue;
            }
            None => {}
        }
        let Ok((dir, name)) = lifecycle::wanted_for(rflow, i, entry, entry.path.name(), run, now) else { continue };
        let Ok(wanted) = dir.join(&name).map(|t| format!("{}:{t}", sink.endpoint)) else { continue };
        let ep = match sinks.as_ref().map(|s| s.as_ref().map(|eps| eps.get(&sink.endpoint))) {
            Some(Ok(Some(ep))) => ep,
            Some(Err(e)) => {
                targets.push(format!("{wanted} (not looked at: {e})"));
                continue;
            }
            _ => {
                targets.push(wanted);
                continue;
            }
        };
        let chosen = super::transfer::choose_target(&**ep, &dir, &name, sink.if_exists).await;
        match super::plan::chosen_shown(&sink.endpoint, wanted, &name, chosen) {
            Ok(shown) => targets.push(shown),
            Err(why) => refused.push(why),
        }
    }
    refused
}

/// Lists the response folder once, its files to be found by path ([`response_for`]). A folder
/// that does not exist (yet) holds no responses.
async fn list(ep: &DynEndpoint, rflow: &Flow) -> Result<Listed, RunAbort> {
    let dir = &rflow.source.path;
    let listing = retry(rflow, "list responses", || async {
        match ep.list(dir).await {
            Err(e) if e.kind == ErrorKind::NotFound => Ok(Default::default()),
            other => other.map_err(FileError::from),
        }
    })
    .await
    .map_err(|e| match e {
        FileError::Endpoint(e) => RunAbort::Endpoint(e),
        other => RunAbort::File(format!("flow {}: {other}", rflow.name), other.kind()),
    })?;
    // Never a response this flow expects (those are named by its templates, safely).
    for s in &listing.skipped {
        tracing::debug!(flow = %rflow.name, folder = %s.folder, name = %s.name, reason = %s.reason, "Skipping a file whose name is not safe to use.");
    }
    let files: Vec<Entry> = listing.entries.into_iter().filter(|e| e.kind == crate::endpoint::EntryKind::File).collect();
    Ok(Listed::new(&files, rflow.source.ignore_case))
}

/// The response `listed` holds for `a`: the file at its expected path; with
/// `response.ignore_case`, else the one file in its folder named like it ignoring case (the
/// rule a data file's done file is found by, [`Listed::find`]). `Err`: files named like it
/// but for case are there and none answers, and why ([`not_named_so`] reports it): more than
/// one, or (without `response.ignore_case`) one, which would answer with it. The one place
/// responses meet awaits by name.
fn response_for(listed: &Listed, a: &AwaitRecord) -> Result<Option<Entry>, String> {
    let Ok(expected) = RemotePath::parse(&a.expected) else { return Ok(listed.get(&a.expected).cloned()) };
    match listed.find(&expected) {
        Found::There(e) => Ok(Some(e)),
        Found::Ambiguous(names) => Err(super::ready::alike(&names)),
        // As a done file in another case is told ([`super::ready::DoneFile::OtherCase`]): else
        // the await would go overdue, then expire, with no hint.
        Found::OtherCase(other) => {
            Err(format!("{other:?} is there: response names are matched exactly; `response.ignore_case: true` matches them ignoring case"))
        }
        Found::Missing => Ok(None),
    }
}

/// The report of the responses named like `a`'s but for case, none taken as its answer
/// ([`response_for`]), and `why`.
fn not_named_so(a: &AwaitRecord, why: &str) -> FileReport {
    FileReport {
        path: format!("/{}", a.expected),
        outcome: Outcome::Skipped,
        detail: format!("no response /{}: {why}", a.expected),
        targets: vec![],
        bytes: 0,
        error_kind: None,
        records: None,
    }
}

/// Moves an open await along, given the response's record when it was taken for this request
/// (`taken`), this run's report of it (`file`), when the response this run found but could
/// not take was written (`there`), and the time. Returns the event the change causes. Pure:
/// the caller stores the result.
///
/// A response counts as late when the await was already overdue, or when it arrived after the
/// deadline — arrival being its modification time on the server when known (a response
/// written in time but first seen by a later run is not late), else when it was taken. One
/// there by the deadline but not taken yet (its sink refusing it, retried by the next run)
/// keeps the await waiting: the partner answered in time; one there by the expiry keeps it
/// from expiring. So does one a run has begun to take (`begun`: [`response_being_taken`]),
/// whenever it was written: once a sink has it, the answer is ours to finish.
fn judge(
    a: &mut AwaitRecord,
    taken: Option<&FileRecord>,
    file: Option<&FileReport>,
    seen: Seen,
    now: Millis,
) -> Option<(EventKind, String)> {
    let Seen { there, begun } = seen;
    if let Some(r) = taken {
        a.response_run = Some(r.run);
        a.answered_at = Some(r.updated);
        if r.state == FileState::Quarantined {
            a.state = AwaitState::Rejected;
            // With why, when this run refused it (a partner's NAK a step turned down says so).
            a.detail = Some(match file {
                Some(f) => format!("refused by the response's steps in run {}: {}", r.run, f.detail),
                None => format!("refused by the response's steps and quarantined in run {}", r.run),
            });
            return None;
        }
        a.detail = Some(match file {
            Some(f) => f.detail.clone(),
            // Taken by an earlier run (a crash, or a run that stopped before this await was
            // judged): every sink has it, its disposal is not done.
            None if lifecycle::delivered(r) => format!("taken in run {}; {}", r.run, not_disposed(r)),
            None => format!("taken in run {}", r.run),
        });
        // It was there no later than when it was taken: a later time on the server is its clock
        // (or, for an FTP LIST, its time zone) ahead of ours, and would make an answer in time late.
        let arrived = r.mtime.map_or(r.updated, |m| m.min(r.updated));
        if a.state == AwaitState::Overdue || arrived > a.deadline_at {
            a.state = AwaitState::Late;
            let detail = format!("{} arrived on {}, after its deadline {}", subject(a), date(arrived), date(a.deadline_at));
            return Some((EventKind::Late, detail));
        }
        a.state = AwaitState::Answered;
        return None;
    }
    if a.state == AwaitState::Waiting && there.is_some_and(|t| t <= a.deadline_at) {
        return None;
    }
    // Overdue first, also when the expiry has passed too (no run looked meanwhile): a rule
    // on `overdue` hears of every await that missed its deadline.
    if a.state == AwaitState::Waiting && now > a.deadline_at {
        a.state = AwaitState::Overdue;
        let detail = format!("{} was due by {}", subject(a), date(a.deadline_at));
        return Some((EventKind::Overdue, detail));
    }
    // Not expired while a response written before its expiry is there but not taken yet
    // (its sink refusing it): the partner answered, the trouble is ours, and a later run
    // takes it — given up, it would be left on the server for good. Nor, whenever it was
    // written, while a run has begun to take it (a sink has it): expired, it would stay half
    // delivered, and a later request awaiting the name would take it as its answer.
    if let Some(expire_at) = a.expire_at.filter(|&e| now >= e && !begun && there.is_none_or(|t| t > e)) {
        a.state = AwaitState::Expired;
        let detail = format!("no {} by {}; no longer awaited", subject(a), date(expire_at));
        return Some((EventKind::Expired, detail));
    }
    None
}

/// What a look found of a response it did not take, for [`judge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Seen {
    /// When the response that is there but was not taken was written.
    there: Option<Millis>,
    /// A run has begun to take it and not finished ([`response_being_taken`]: staged,
    /// delivered to some sinks and refused by another, being disposed of).
    begun: bool,
}

#[cfg(test)]
impl Seen {
    /// A response written at `t`, there but not taken.
    fn there(t: Millis) -> Self {
        Seen { there: Some(t), begun: false }
    }
}

/// How much older than its request a response may look and still answer it: the server's
/// clock may be somewhat behind ours (see [`slack`]).
const CLOCK_SLACK: Millis = 10 * 60 * 1000;

/// The same where the server's times may be in its own time zone (FTP LIST).
const DAY_SLACK: Millis = 26 * 60 * 60 * 1000;

/// Whether the file named like the response was last written well (`slack`) before the
/// request was sent: it is not the answer to it (left over from an earlier exchange, or there
/// before the flow started), and is never taken for it.
fn older_than_request(entry: &Entry, a: &AwaitRecord, slack: Millis) -> bool {
    super::identity::mtime_millis(entry).is_some_and(|m| m.saturating_add(slack) < a.sent_at)
}

/// The report of a response file too old to answer its request.
fn stale(entry: &Entry, a: &AwaitRecord) -> FileReport {
    let written = super::identity::mtime_millis(entry).map(date).unwrap_or_default();
    FileReport {
        path: entry.path.to_string(),
        outcome: Outcome::Skipped,
        detail: format!(
            "{} was last written on {written}, before the request was sent ({}): not taken as its answer (remove or move it; a server clock far behind ours shows as this too)",
            entry.path,
            date(a.sent_at)
        ),
        targets: vec![],
        bytes: entry.size,
        error_kind: None,
        records: None,
    }
}

/// The summary line's words for an await after this run.
fn describe(a: &AwaitRecord, file: Option<&FileReport>) -> String {
    let run = a.response_run.map(|r| format!(" in run {r}")).unwrap_or_default();
    match a.state {
        AwaitState::Waiting | AwaitState::Overdue => {
            let mut s = match a.state {
                AwaitState::Waiting => format!("waiting; due by {}", date(a.deadline_at)),
                _ => format!("OVERDUE since {}; still awaited", date(a.deadline_at)),
            };
            if let Some(e) = a.expire_at {
                s.push_str(&format!(" (until {})", date(e)));
            }
            if let Some(f) = file.filter(|f| f.outcome != Outcome::Delivered) {
                s.push_str(&format!("; the response is there but was not taken: {}", f.detail));
            }
            s
        }
        AwaitState::Answered => format!("answered{run}: {}", a.detail.as_deref().unwrap_or_default()),
        AwaitState::Late => format!("answered LATE{run} (due by {}): {}", date(a.deadline_at), a.detail.as_deref().unwrap_or_default()),
        AwaitState::Rejected => format!("REJECTED{run}: {}", a.detail.as_deref().unwrap_or_default()),
        AwaitState::Expired => format!("EXPIRED: no response by {}", a.expire_at.map(date).unwrap_or_default()),
    }
}

/// `response /outbox/a.ack to /a.csv`, for event details: both named as the run's report
/// names them.
fn subject(a: &AwaitRecord) -> String {
    format!("response /{} to {}", a.expected, lifecycle::source_shown(&a.request))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Millis = 60_000;

    fn open() -> AwaitRecord {
        AwaitRecord {
            flow: "f".into(),
            request: "a.csv".into(),
            expected: "outbox/a.ack".into(),
            sent_at: 0,
            deadline_at: 30 * MIN,
            expire_at: Some(60 * MIN),
            ..Default::default()
        }
    }

    fn taken(state: FileState, mtime: Option<Millis>, updated: Millis) -> FileRecord {
        FileRecord { path: "outbox/a.ack".into(), state, mtime, updated, run: 7, ..Default::default() }
    }

    #[test]
    fn waits_then_is_overdue_once_then_expires() {
        let mut a = open();
        assert_eq!(judge(&mut a, None, None, Seen::default(), 10 * MIN), None);
        assert_eq!(a.state, AwaitState::Waiting);
        let (kind, detail) = judge(&mut a, None, None, Seen::default(), 31 * MIN).unwrap();
        assert_eq!((kind, a.state), (EventKind::Overdue, AwaitState::Overdue));
        assert!(detail.contains("response /outbox/a.ack to /a.csv was due by"), "{detail}");
        // Overdue is recorded once: later polls change nothing until it expires.
        assert_eq!(judge(&mut a, None, None, Seen::default(), 45 * MIN), None);
        assert_eq!(a.state, AwaitState::Overdue);
        assert_eq!(judge(&mut a, None, None, Seen::default(), 60 * MIN).map(|e| e.0), Some(EventKind::Expired));
        assert_eq!(a.state, AwaitState::Expired);
        // No run looked between the deadline and the expiry: overdue first, then expired.
        let mut a = open();
        assert_eq!(judge(&mut a, None, None, Seen::default(), 90 * MIN).map(|e| e.0), Some(EventKind::Overdue));
        assert_eq!(judge(&mut a, None, None, Seen::default(), 90 * MIN).map(|e| e.0), Some(EventKind::Expired));
        assert_eq!(a.state, AwaitState::Expired);
        // A response there (written by the deadline) but not taken yet: still waiting, not
        // expired; one written after the deadline does not hold the deadline back.
        let mut a = open();
        assert_eq!(judge(&mut a, None, None, Seen::there(29 * MIN), 90 * MIN), None);
        assert_eq!(a.state, AwaitState::Waiting);
        assert_eq!(judge(&mut a, None, None, Seen::there(31 * MIN), 45 * MIN).map(|e| e.0), Some(EventKind::Overdue));
    }

    #[test]
    fn a_response_in_time_is_answered_and_a_late_one_is_late() {
        let mut a = open();
        assert_eq!(judge(&mut a, Some(&taken(FileState::Done, Some(20 * MIN), 21 * MIN)), None, Seen::default(), 21 * MIN), None);
        assert_eq!((a.state, a.response_run, a.answered_at), (AwaitState::Answered, Some(7), Some(21 * MIN)));
        // Written in time, first seen by a run after the deadline: not late.
        let mut a = open();
        assert_eq!(judge(&mut a, Some(&taken(FileState::Done, Some(29 * MIN), 40 * MIN)), None, Seen::default(), 40 * MIN), None);
        assert_eq!(a.state, AwaitState::Answered);
        // Written after the deadline (no run looked in between): late, without an overdue.
        let mut a = open();
        let ev = judge(&mut a, Some(&taken(FileState::Done, Some(35 * MIN), 40 * MIN)), None, Seen::default(), 40 * MIN).unwrap();
        assert_eq!((ev.0, a.state), (EventKind::Late, AwaitState::Late));
        // Already overdue: late whatever its time says (a server clock behind ours).
        let mut a = AwaitRecord { state: AwaitState::Overdue, ..open() };
        let ev = judge(&mut a, Some(&taken(FileState::Done, Some(MIN), 50 * MIN)), None, Seen::default(), 50 * MIN).unwrap();
        assert_eq!((ev.0, a.state), (EventKind::Late, AwaitState::Late));
        // No mtime from the server: when it was taken decides.
        let mut a = open();
        assert!(judge(&mut a, Some(&taken(FileState::Done, None, 31 * MIN)), None, Seen::default(), 31 * MIN).is_some());
        // The server's clock (or zone) an hour ahead of ours: taken at 25 minutes, it was there
        // by then, whatever its time says.
        let mut a = open();
        assert_eq!(judge(&mut a, Some(&taken(FileState::Done, Some(85 * MIN), 25 * MIN)), None, Seen::default(), 25 * MIN), None);
        assert_eq!(a.state, AwaitState::Answered);
        // Found past expiry: a response wins over giving up.
        let mut a = AwaitRecord { state: AwaitState::Overdue, ..open() };
        judge(&mut a, Some(&taken(FileState::Done, None, 90 * MIN)), None, Seen::default(), 90 * MIN);
        assert_eq!(a.state, AwaitState::Late);
    }

    /// The flow `yaml` (local endpoints, their roots relative to a new folder), with `folders`
    /// made in that folder.
    fn with_folders(folders: &[&str], yaml: &str) -> (tempfile::TempDir, Flow) {
        let dir = tempfile::tempdir().unwrap();
        for f in folders {
            std::fs::create_dir_all(dir.path().join(f)).unwrap();
        }
        let flow = crate::config::load_flow_str(yaml, &dir.path().join("rt.yaml")).unwrap();
        (dir, flow)
    }

    /// A local round trip: outbox → partner/inbox, acks awaited in partner/outbox → acks.
    fn round_trip(deadline: &str) -> (tempfile::TempDir, Flow) {
        round_trip_with(deadline, "")
    }

    /// The same, with `sink` added to the partner sink's settings (`, if_exists: skip`).
    fn round_trip_with(deadline: &str, sink: &str) -> (tempfile::TempDir, Flow) {
        round_trip_answered(deadline, sink, "")
    }

    /// The same, with `response` added to the response's settings (`, steps: [...]`).
    fn round_trip_answered(deadline: &str, sink: &str, response: &str) -> (tempfile::TempDir, Flow) {
        // `after: delete` unless `response` says otherwise.
        let after = if response.contains("after:") { "" } else { ", after: delete" };
        let yaml = format!(
            "name: rt\nendpoints:\n  out: {{ type: local, root: outbox }}\n  partner: {{ type: local, root: partner }}\n  acks: {{ type: local, root: acks }}\n\
             source: {{ endpoint: out, path: / }}\nsinks: [ {{ endpoint: partner, path: /inbox{sink} }} ]\nafter: {{ success: delete }}\n\
             response: {{ path: /outbox, name: \"{{{{stem}}}}.ack\", deadline: {deadline}, sinks: [ {{ endpoint: acks }} ]{after}{response} }}\n"
        );
        with_folders(&["outbox", "partner/inbox", "partner/outbox", "acks"], &yaml)
    }

    async fn run(flow: &Flow, ledger: &crate::ledger::Ledger, dir: &std::path::Path) -> super::super::RunReport {
        let opts = super::super::RunOptions::new(dir.join("staging"));
        super::super::run_once(flow, ledger, &opts, &mut |_| {}).await.unwrap()
    }

    /// With `response.ignore_case: true`, a partner answering `x.csv` with `X.ACK` answers the
    /// request awaiting `x.ack` (before, it waited until it expired), the await recorded under
    /// the name the answer has. Two named like `y.ack` (`Y.ACK`, `y.Ack`): neither answers, and
    /// the report says why; one gone, the other answers. A request whose response would be
    /// named like an open await's but for case (`Z.CSV` beside `z.csv`'s) waits its turn.
    /// Without the option, `X.ACK` answers nothing, and the report and the plan say it is
    /// there and which option takes it (before: waiting, with no hint, until it expired).
    #[tokio::test]
    async fn with_ignore_case_a_response_in_another_case_answers_its_request() {
        let (dir, flow) = round_trip_answered("1h", "", ", ignore_case: true");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        for n in ["x.csv", "y.csv", "z.csv", "w.csv"] {
            std::fs::write(d.join("outbox").join(n), n).unwrap();
        }
        assert_eq!(run(&flow, &ledger, d).await.counts.delivered, 4);
        for (n, body) in [("X.ACK", "ack x"), ("Y.ACK", "ack y"), ("y.Ack", "ack y again"), ("W.ACK", "an old ack")] {
            std::fs::write(d.join("partner/outbox").join(n), body).unwrap();
        }
        // Written before its request was sent: not its answer, in any case; the await keeps
        // its name.
        let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86_400);
        std::fs::File::options().write(true).open(d.join("partner/outbox/W.ACK")).unwrap().set_modified(two_days_ago).unwrap();
        std::fs::write(d.join("outbox/Z.CSV"), "z again").unwrap();
        let r = run(&flow, &ledger, d).await;
        let state = |r: &crate::engine::RunReport, request: &str| {
            let resp = r.responses.iter().find(|x| x.request == request).unwrap();
            (resp.state, resp.expected.clone(), resp.detail.clone())
        };
        let (x, expected, _) = state(&r, "x.csv");
        assert_eq!((x, expected.as_str()), (AwaitState::Answered, "outbox/X.ACK"), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/X.ACK")).unwrap(), "ack x");
        assert!(!d.join("partner/outbox/X.ACK").exists());
        assert_eq!(ledger.awaited("rt", "outbox/X.ACK").unwrap().map(|a| a.request), Some("x.csv".to_string()));
        assert_eq!(ledger.awaited("rt", "outbox/x.ack").unwrap(), None);
        let (y, _, why) = state(&r, "y.csv");
        assert_eq!(y, AwaitState::Waiting);
        assert!(
            why.ends_with(
                "the response is there but was not taken: no response /outbox/y.ack: \"Y.ACK\" and \"y.Ack\" are both there, named like it \
                 ignoring case (`ignore_case`), so neither is taken for it; remove or rename the ones that are not it"
            ),
            "{why}"
        );
        let (w, expected, why) = state(&r, "w.csv");
        assert_eq!((w, expected.as_str()), (AwaitState::Waiting, "outbox/w.ack"), "{r:#?}");
        assert!(why.contains("before the request was sent"), "{why}");
        let held = r.files.iter().find(|f| f.path == "/Z.CSV").unwrap();
        assert_eq!(held.outcome, Outcome::NotReady, "{r:#?}");
        assert!(held.detail.contains("is awaited for /z.csv"), "{}", held.detail);
        std::fs::remove_file(d.join("partner/outbox/y.Ack")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(state(&r, "y.csv").0, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/Y.ACK")).unwrap(), "ack y");

        // Without the option: the case must match.
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/x.csv"), "x").unwrap();
        run(&flow, &ledger, d).await;
        std::fs::write(d.join("partner/outbox/X.ACK"), "ack x").unwrap();
        let hint = "no response /outbox/x.ack: \"X.ACK\" is there: response names are matched exactly; \
                    `response.ignore_case: true` matches them ignoring case";
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!(planned.becomes, AwaitState::Waiting, "{p:#?}");
        assert!(planned.detail.starts_with(&format!("{hint}; waiting; due by ")), "{}", planned.detail);
        let r = run(&flow, &ledger, d).await;
        let resp = &r.responses[0];
        assert_eq!((resp.state, resp.file.as_ref().map(|f| f.outcome)), (AwaitState::Waiting, Some(Outcome::Skipped)), "{r:#?}");
        assert!(resp.detail.ends_with(&format!("; the response is there but was not taken: {hint}")), "{}", resp.detail);
        assert!(d.join("partner/outbox/X.ACK").exists() && !d.join("acks/X.ACK").exists());
    }

    #[tokio::test]
    async fn a_local_round_trip_registers_waits_and_matches() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert_eq!(r.responses.len(), 1, "{r:#?}");
        assert_eq!((r.responses[0].state, r.responses[0].expected.as_str()), (AwaitState::Waiting, "outbox/o1.ack"));
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.responses.len(), r.responses[0].state), (1, AwaitState::Waiting));
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        let r = run(&flow, &ledger, d).await;
        let resp = &r.responses[0];
        assert_eq!(resp.state, AwaitState::Answered, "{r:#?}");
        assert_eq!(resp.file.as_ref().map(|f| f.outcome), Some(Outcome::Delivered));
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
        assert!(!d.join("partner/outbox/o1.ack").exists());
        let a = ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap();
        assert_eq!((a.request.as_str(), a.request_target.as_str(), a.response_run), ("o1.csv", "partner:/inbox/o1.csv", Some(r.run)));
        // Answered awaits are not polled again.
        assert!(run(&flow, &ledger, d).await.responses.is_empty());
        assert!(ledger.events(None, 0, 10).unwrap().is_empty());

        // A crash after the response was done but before its await was updated: the next poll
        // repairs it from the response's record, although the response is gone from the server.
        let mut a = a;
        a.state = AwaitState::Waiting;
        ledger.update_await(&a, None, 0, 0).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert!(r.responses[0].file.is_none());
    }

    /// Killed while the response was being disposed of, after it was deleted from the server
    /// (`after: delete`) and before the ledger said so: the next run finishes it from its
    /// record (done) and the await is answered. Before, no run went back to it — the response
    /// flow's files are finished only by its look, and the look found nothing there — so the
    /// await stayed open with its answer delivered (and went overdue at its deadline).
    #[tokio::test]
    async fn a_response_left_being_disposed_of_by_a_crash_is_finished_and_answers_its_await() {
        let (dir, flow, ledger) = left_being_disposed_of_by_a_crash().await;
        let d = dir.path();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses.len(), 1, "{r:#?}");
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(ledger.file("rt.response", "outbox/o1.ack").unwrap().unwrap().state, FileState::Done);
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
    }

    /// A response every sink has whose disposal the partner's server refuses (here the
    /// `move_to` folder cannot be made: a file holds its name) answers its await: the partner
    /// answered, in time. The refusal is the response file's failure (the run fails), tried
    /// again by later runs without delivering the response again; a request awaiting the same
    /// name is not sent while the answer is still there, and goes in the run whose look
    /// finally moves it — never taking it as its own answer. Before, the await stayed open
    /// (waiting, then overdue) for as long as the server refused.
    #[tokio::test]
    async fn a_response_whose_disposal_is_refused_answers_its_await_and_is_disposed_of_later() {
        let (dir, flow) = round_trip_answered("1h", "", ", after: { move_to: /taken }");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("partner/taken"), "in the way").unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        std::fs::write(d.join("outbox/o1.xml"), "order, again").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses.iter().map(|r| r.request.as_str()).collect::<Vec<_>>(), ["o1.csv"], "{r:#?}");
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        let held = |r: &super::super::RunReport| r.files.iter().find(|f| f.path == "/o1.xml").map(|f| (f.outcome, f.detail.clone()));
        for _ in 0..2 {
            let r = run(&flow, &ledger, d).await;
            assert_eq!(r.status, crate::ledger::RunStatus::Failed, "{r:#?}");
            let [resp] = &r.responses[..] else { panic!("{r:#?}") };
            assert_eq!((resp.request.as_str(), resp.state), ("o1.csv", AwaitState::Answered), "{r:#?}");
            assert!(resp.failed(), "{r:#?}");
            let detail = &resp.file.as_ref().unwrap().detail;
            assert!(detail.starts_with("delivered to acks:/o1.ack, but `response.after` failed: "), "{detail}");
            assert!(resp.detail.starts_with("answered in run "), "{}", resp.detail);
            let (outcome, why) = held(&r).unwrap();
            assert_eq!(outcome, Outcome::NotReady, "{r:#?}");
            assert!(why.starts_with("its response name /outbox/o1.ack still holds the answer to /o1.csv, taken in run 2 and not moved away from the server yet ("), "{why}");
            assert_eq!(ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap().state, AwaitState::Answered);
            assert_eq!(std::fs::read_dir(d.join("acks")).unwrap().count(), 1, "delivered once");
        }
        // `wharf plan` says what the next run does with it.
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!((planned.state, planned.becomes), (AwaitState::Answered, AwaitState::Answered), "{p:#?}");
        assert!(planned.detail.starts_with("answered in run 2; there ("), "{}", planned.detail);
        assert!(planned.detail.contains("; the run tries again, from its record: "), "{}", planned.detail);
        // The folder can be made: the answer is moved, and the request held back goes after
        // the look; the answer moved is not its own.
        std::fs::remove_file(d.join("partner/taken")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.status, crate::ledger::RunStatus::Ok, "{r:#?}");
        assert_eq!(
            r.responses.iter().map(|r| (r.request.as_str(), r.state)).collect::<Vec<_>>(),
            [("o1.csv", AwaitState::Answered), ("o1.xml", AwaitState::Waiting)],
            "{r:#?}"
        );
        assert_eq!(held(&r).map(|(o, _)| o), Some(Outcome::Delivered), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/taken/o1.ack")).unwrap(), "ack");
        let r = run(&flow, &ledger, d).await;
        assert_eq!(
            r.responses.iter().map(|r| (r.request.as_str(), r.state)).collect::<Vec<_>>(),
            [("o1.xml", AwaitState::Waiting)],
            "{r:#?}"
        );
        assert_eq!(std::fs::read_dir(d.join("acks")).unwrap().count(), 1);
    }

    /// A run that fails only for its responses — one whose disposal the partner's server
    /// refuses, one a response sink refuses (a file of its name is there) — counts them in
    /// `failed`: the run's report (its JSON, its summary, the metrics) and its stored record
    /// (`wharf runs`) say `2 failed`, as its status and exit code say it failed. Before, they
    /// said `0 failed` for a run that exited 1.
    #[tokio::test]
    async fn a_run_failed_by_its_responses_counts_them_failed() {
        let (dir, flow) = round_trip_answered("1h", "", ", after: { move_to: /taken }");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("partner/taken"), "in the way").unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order 1").unwrap();
        std::fs::write(d.join("outbox/o2.csv"), "order 2").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.status, r.counts.delivered, r.counts.failed), (crate::ledger::RunStatus::Ok, 2, 0), "{r:#?}");
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack 1").unwrap();
        std::fs::write(d.join("partner/outbox/o2.ack"), "ack 2").unwrap();
        std::fs::write(d.join("acks/o2.ack"), "somebody else's").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.status, crate::ledger::RunStatus::Failed, "{r:#?}");
        assert_eq!(r.responses.iter().filter(|r| r.failed()).count(), 2, "{r:#?}");
        assert_eq!((r.counts.seen, r.counts.delivered, r.counts.failed), (0, 0, 2), "{r:#?}");
        let stored = ledger.runs(Some("rt"), 1).unwrap();
        assert_eq!((stored[0].id, stored[0].status, stored[0].counts), (r.run, r.status, r.counts), "{stored:#?}");
    }

    /// The same, with a request whose response name could not be foreseen (its sink renamed
    /// it, `if_exists: rename`) landing on the name of an answer still not disposed of: that
    /// answer, tried again by every look, is not taken for the new request — its await stays
    /// waiting until the partner writes a new answer. Before, the look that tried the old
    /// answer's disposal again recorded it as taken by that run, the new await's.
    #[tokio::test]
    async fn an_answer_not_disposed_of_does_not_answer_a_request_renamed_onto_its_name() {
        let (dir, flow) = round_trip_answered("1h", ", if_exists: rename", ", after: { move_to: /taken }");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("partner/taken"), "in the way").unwrap();
        std::fs::write(d.join("outbox/o1-1.csv"), "order 1").unwrap();
        run(&flow, &ledger, d).await;
        std::fs::write(d.join("partner/outbox/o1-1.ack"), "ack 1").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses.iter().map(|r| r.state).collect::<Vec<_>>(), [AwaitState::Answered], "{r:#?}");
        // The partner took o1-1.csv; somebody's o1.csv is in its inbox: o1.csv goes as o1-1.csv.
        std::fs::remove_file(d.join("partner/inbox/o1-1.csv")).unwrap();
        std::fs::write(d.join("partner/inbox/o1.csv"), "somebody's").unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order 2").unwrap();
        let waiting = |ledger: &crate::ledger::Ledger| {
            let a = ledger.awaited("rt", "outbox/o1-1.ack").unwrap().unwrap();
            (a.request, a.state)
        };
        for _ in 0..2 {
            let r = run(&flow, &ledger, d).await;
            assert_eq!(waiting(&ledger), ("o1.csv".to_string(), AwaitState::Waiting), "{r:#?}");
        }
        // The old answer moved away at last: still not the new request's.
        std::fs::remove_file(d.join("partner/taken")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(waiting(&ledger), ("o1.csv".to_string(), AwaitState::Waiting), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/taken/o1-1.ack")).unwrap(), "ack 1");
        // The partner's answer to it is (the first one read and removed from `acks`, whose sink
        // does not overwrite).
        std::fs::remove_file(d.join("acks/o1-1.ack")).unwrap();
        std::fs::write(d.join("partner/outbox/o1-1.ack"), "ack 2").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(waiting(&ledger), ("o1.csv".to_string(), AwaitState::Answered), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1-1.ack")).unwrap(), "ack 2");
    }

    /// `wharf plan` says so too (before: "not there; waiting", while the run answers it).
    #[tokio::test]
    async fn plan_foresees_a_response_left_being_disposed_of_by_a_crash_answering_its_await() {
        let (dir, flow, ledger) = left_being_disposed_of_by_a_crash().await;
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!((planned.state, planned.becomes, planned.events.as_slice()), (AwaitState::Waiting, AwaitState::Answered, &[][..]));
        assert_eq!(planned.targets, ["acks:/o1.ack"]);
        let due = date(ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap().deadline_at);
        assert_eq!(
            planned.detail,
            format!(
                "no longer there: delivered to acks:/o1.ack by run 2, which stopped before it was done (left disposing); the run finishes it from its record: delete the source (gone already); answered in time (due by {due}): every sink has it (should that fail, the response's failure fails the run, and the next run tries again)"
            )
        );
        // Read-only; and the run does as foreseen.
        assert_eq!(ledger.file("rt.response", "outbox/o1.ack").unwrap().unwrap().state, FileState::Disposing);
        let r = run(&flow, &ledger, dir.path()).await;
        assert_eq!(r.responses.iter().map(|r| r.state).collect::<Vec<_>>(), [planned.becomes], "{r:#?}");
    }

    /// A response a crash left `disposing` before its `move_to` was done, still in the
    /// response folder: the plan says what is left (the move, to the name chosen before the
    /// crash) and that the await is answered, every sink having it — not that the response is
    /// taken to sinks that have it already (nor refused by them). The run does as foreseen.
    #[tokio::test]
    async fn plan_says_a_response_left_being_moved_by_a_crash_is_finished_then_answers() {
        let (dir, flow) = round_trip_answered("1h", "", ", after: { move_to: /taken }");
        let d = dir.path();
        // The move to /taken/o1.ack chosen, not done.
        let ledger =
            left_disposing(&flow, d, |d| std::fs::rename(d.join("partner/taken/o1.ack"), d.join("partner/outbox/o1.ack")).unwrap()).await;
        let rec = ledger.file("rt.response", "outbox/o1.ack").unwrap().unwrap();
        assert_eq!(rec.disposed_to.as_deref(), Some("taken/o1.ack"));
        let a = ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap();
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!((planned.becomes, planned.events.as_slice()), (AwaitState::Answered, &[][..]), "{p:#?}");
        assert_eq!(planned.targets, ["acks:/o1.ack"]);
        let written = date(rec.mtime.unwrap());
        let due = date(a.deadline_at);
        assert_eq!(
            planned.detail,
            format!(
                "there (written {written}): delivered to acks:/o1.ack by run 2, which stopped before it was done (left disposing); the run finishes it from its record: move the source to /taken/o1.ack (the name chosen before the crash); answered in time (due by {due}): every sink has it (should that fail, the response's failure fails the run, and the next run tries again)"
            )
        );
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses.iter().map(|r| r.state).collect::<Vec<_>>(), [planned.becomes], "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/taken/o1.ack")).unwrap(), "ack");
        assert!(!d.join("partner/outbox/o1.ack").exists());
    }

    /// A response a crash left `delivering`, its delivery to the sink recorded and not
    /// confirmed: the plan says so as it says it for an ordinary file (the run takes it as
    /// delivered if it is there whole, else sends it again) — before, it showed the target as
    /// one a fresh delivery writes. The run does as foreseen.
    #[tokio::test]
    async fn plan_says_a_response_delivery_left_unconfirmed_by_a_crash_is_recorded_not_confirmed() {
        let (dir, flow) = round_trip_answered("1h", "", ", after: keep");
        let d = dir.path();
        // As a crash during the upload left it: the delivery chosen, not confirmed.
        let ledger = left_by_crash_as(
            &flow,
            d,
            |_| {},
            |rec| {
                rec.state = FileState::Delivering;
                rec.deliveries[0].done = false;
            },
        )
        .await;
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!(planned.targets, [super::super::plan::unconfirmed_shown("acks", "o1.ack")], "{p:#?}");
        assert_eq!(
            planned.targets[0],
            "acks:/o1.ack (recorded by an earlier run: taken as delivered if found there whole, else sent again)"
        );
        assert_eq!(planned.becomes, AwaitState::Answered, "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses.iter().map(|r| r.state).collect::<Vec<_>>(), [planned.becomes], "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
    }

    /// A round trip whose response a crash left deleted from the server with its record still
    /// `disposing` and its await open.
    async fn left_being_disposed_of_by_a_crash() -> (tempfile::TempDir, Flow, crate::ledger::Ledger) {
        let (dir, flow) = round_trip("1h");
        let ledger = left_disposing(&flow, dir.path(), |_| {}).await;
        assert!(!dir.path().join("partner/outbox/o1.ack").exists());
        (dir, flow, ledger)
    }

    /// The round trip `flow` in `d` with its response taken, then as a crash left it: its
    /// record still `disposing` (`undo` puts back on the server what the crash left undone),
    /// the await open.
    async fn left_disposing(flow: &Flow, d: &std::path::Path, undo: impl FnOnce(&std::path::Path)) -> crate::ledger::Ledger {
        left_by_crash_as(flow, d, undo, |rec| rec.state = FileState::Disposing).await
    }

    /// The same, with the response's record as `left` makes it.
    async fn left_by_crash_as(
        flow: &Flow,
        d: &std::path::Path,
        undo: impl FnOnce(&std::path::Path),
        left: impl FnOnce(&mut FileRecord),
    ) -> crate::ledger::Ledger {
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        run(flow, &ledger, d).await;
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        let r = run(flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        undo(d);
        let mut rec = ledger.file("rt.response", "outbox/o1.ack").unwrap().unwrap();
        rec.source_fate = Default::default();
        left(&mut rec);
        ledger.put_file_with("rt.response", &rec, crate::ledger::Durability::Durable).unwrap();
        let mut a = ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap();
        (a.state, a.response_run, a.answered_at) = (AwaitState::Waiting, None, None);
        ledger.update_await(&a, None, 0, 0).unwrap();
        ledger
    }

    /// The partner has the request once its sink confirmed: the await starts then, also when
    /// another sink (an archive) fails and confirms only in a later run. Started by that later
    /// run, the partner's answer, written meanwhile, would look older than its request (more
    /// than the ten minutes' slack) and never be taken, and the deadline would run late.
    #[tokio::test]
    async fn a_request_is_awaited_from_its_delivery_to_the_partner_while_another_sink_lags() {
        let (dir, flow) = with_folders(
            &["outbox", "partner/inbox", "partner/outbox", "acks", "archive"],
            "name: rt\nendpoints:\n  out: { type: local, root: outbox }\n  partner: { type: local, root: partner }\n  \
             acks: { type: local, root: acks }\n  archive: { type: local, root: archive }\n\
             source: { endpoint: out, path: / }\nsinks: [ { endpoint: partner, path: /inbox }, { endpoint: archive } ]\n\
             after: { success: delete }\n\
             response: { endpoint: partner, path: /outbox, name: \"{{stem}}.ack\", deadline: 1h, sinks: [ { endpoint: acks } ] }\n",
        );
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        // The archive refuses it this time (a file of that name is in the way).
        std::fs::write(d.join("archive/o1.csv"), "in the way").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.failed, r.counts.delivered), (1, 0), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/inbox/o1.csv")).unwrap(), "order");
        let mut a = ledger.awaited("rt", "outbox/o1.ack").unwrap().expect("awaited from the partner's delivery on");
        assert_eq!(a.state, AwaitState::Waiting);
        // That run was 40 minutes ago; the partner answered five minutes after it.
        let (before, ago) = (40 * MIN, |m: Millis| std::time::SystemTime::now() - Duration::from_millis(m as u64));
        (a.sent_at, a.deadline_at) = (a.sent_at - before, a.deadline_at - before);
        ledger.update_await(&a, None, 0, 0).unwrap();
        let ack = d.join("partner/outbox/o1.ack");
        std::fs::write(&ack, "ack").unwrap();
        std::fs::File::options().write(true).open(&ack).unwrap().set_modified(ago(35 * MIN)).unwrap();
        std::fs::remove_file(d.join("archive/o1.csv")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
        assert_eq!(ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap().sent_at, a.sent_at, "registered once");
    }

    /// Sends `o1.csv` in a first run of `flow` in `d`, and dates its await back by `ago` (its
    /// deadline and expiry with it).
    async fn sent_ago(flow: &Flow, ledger: &crate::ledger::Ledger, d: &std::path::Path, ago: Millis) {
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        run(flow, ledger, d).await;
        let mut a = ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap();
        (a.sent_at, a.deadline_at, a.expire_at) = (a.sent_at - ago, a.deadline_at - ago, a.expire_at.map(|e| e - ago));
        ledger.update_await(&a, None, 0, 0).unwrap();
    }

    /// The partner answered in time, but the response could not be taken (its sink refused
    /// it) until after the deadline: the partner is not overdue, nor its answer late.
    #[tokio::test]
    async fn a_response_there_in_time_but_not_taken_yet_is_neither_overdue_nor_late() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        // Sent two hours ago (due one hour ago); answered five minutes after it was sent.
        sent_ago(&flow, &ledger, d, 120 * MIN).await;
        let ack = d.join("partner/outbox/o1.ack");
        std::fs::write(&ack, "ack").unwrap();
        let written = std::time::SystemTime::now() - Duration::from_secs(115 * 60);
        std::fs::File::options().write(true).open(&ack).unwrap().set_modified(written).unwrap();
        // The acks folder refuses it (a file of that name is in the way): `wharf plan` says so.
        std::fs::write(d.join("acks/o1.ack"), "in the way").unwrap();
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let planned = &p.responses[0];
        assert_eq!((planned.becomes, planned.events.len()), (AwaitState::Waiting, 0), "{p:#?}");
        assert!(planned.detail.contains("but not taken: acks:/o1.ack exists already ("), "{}", planned.detail);
        assert!(planned.detail.contains("the run fails, and the next one tries again; waiting; due by"), "{}", planned.detail);
        let r = run(&flow, &ledger, d).await;
        let resp = &r.responses[0];
        assert!(resp.failed(), "{r:#?}");
        assert_eq!(resp.state, AwaitState::Waiting, "{r:#?}");
        assert!(resp.detail.contains("the response is there but was not taken"), "{}", resp.detail);
        std::fs::remove_file(d.join("acks/o1.ack")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        // The run that could not take it failed (and the next recovered): nothing else.
        let kinds: Vec<EventKind> = ledger.events(Some("rt"), 0, 10).unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Failed, EventKind::Recovered]);
    }

    /// The partner answered late but before the await's expiry, and the response could not be
    /// taken (its sink refused it) until after the expiry: the await is not given up under
    /// it — expired, the answer would be left on the server for good and an `expired` event
    /// would say no answer came. A response written after the expiry does not hold it open.
    #[test]
    fn an_await_whose_answer_is_there_does_not_expire_until_it_is_taken() {
        let mut a = AwaitRecord { state: AwaitState::Overdue, ..open() };
        assert_eq!(judge(&mut a, None, None, Seen::there(45 * MIN), 90 * MIN), None);
        assert_eq!(a.state, AwaitState::Overdue);
        assert_eq!(judge(&mut a, None, None, Seen::there(61 * MIN), 90 * MIN).map(|e| e.0), Some(EventKind::Expired));
        // No run looked since the deadline: overdue (it is), but not expired.
        let mut a = open();
        assert_eq!(judge(&mut a, None, None, Seen::there(45 * MIN), 90 * MIN).map(|e| e.0), Some(EventKind::Overdue));
        assert_eq!(judge(&mut a, None, None, Seen::there(45 * MIN), 90 * MIN), None);
        assert_eq!(a.state, AwaitState::Overdue);
        // Written after the expiry, but a run began to take it (a sink has it): not expired.
        let mut a = AwaitRecord { state: AwaitState::Overdue, ..open() };
        assert_eq!(judge(&mut a, None, None, Seen { there: Some(61 * MIN), begun: true }, 90 * MIN), None);
        assert_eq!(a.state, AwaitState::Overdue);
        // However it is left, the next look that takes it ends the await late, not expired.
        assert_eq!(
            judge(&mut a, Some(&taken(FileState::Done, Some(61 * MIN), 95 * MIN)), None, Seen::default(), 95 * MIN).map(|e| e.0),
            Some(EventKind::Late)
        );
    }

    /// The partner answered after the await's expiry, before any run looked; the run that
    /// looks delivers the answer to one response sink and another refuses it. The response is
    /// ours to finish: the await is not expired under it (before, it was — the answer left
    /// half delivered for good, and a later request awaiting the same name would take it),
    /// and the next run finishes taking it: late. `wharf plan` says so meanwhile.
    #[tokio::test]
    async fn a_response_half_taken_after_the_expiry_holds_its_await_until_it_is_taken() {
        let (dir, flow) = with_folders(
            &["outbox", "partner/inbox", "partner/outbox", "acks", "copies"],
            "name: rt\nendpoints:\n  out: { type: local, root: outbox }\n  partner: { type: local, root: partner }\n  \
             acks: { type: local, root: acks }\n  copies: { type: local, root: copies }\n\
             source: { endpoint: out, path: / }\nsinks: [ { endpoint: partner, path: /inbox } ]\nafter: { success: delete }\n\
             response: { path: /outbox, name: \"{{stem}}.ack\", deadline: 1h, expire_after: 2h, after: delete, \
             sinks: [ { endpoint: acks }, { endpoint: copies } ] }\n",
        );
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        // Sent three hours ago: due two hours ago, given up an hour ago; no run looked since.
        sent_ago(&flow, &ledger, d, 180 * MIN).await;
        // Answered just now; the second response sink refuses it (a file in the way).
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        std::fs::write(d.join("copies/o1.ack"), "in the way").unwrap();
        let r = run(&flow, &ledger, d).await;
        let [resp] = &r.responses[..] else { panic!("{r:#?}") };
        assert!(resp.failed(), "{r:#?}");
        assert_eq!(resp.state, AwaitState::Overdue, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
        assert!(response_being_taken(&ledger, "rt", &ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap()).unwrap().is_some());
        // Still not expired when only looked at.
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!((planned.becomes, planned.events.as_slice()), (AwaitState::Overdue, &[][..]), "{p:#?}");
        std::fs::remove_file(d.join("copies/o1.ack")).unwrap();
        // The plan foresees the run: the sink that has it is not delivered to again.
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let [planned] = &p.responses[..] else { panic!("{p:#?}") };
        assert_eq!((planned.becomes, planned.events.as_slice()), (AwaitState::Late, &[EventKind::Late][..]), "{p:#?}");
        assert_eq!(planned.targets, ["acks:/o1.ack (delivered before)", "copies:/o1.ack"]);
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Late, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("copies/o1.ack")).unwrap(), "ack");
        assert!(!d.join("partner/outbox/o1.ack").exists());
        let kinds: Vec<EventKind> = ledger.events(Some("rt"), 0, 10).unwrap().into_iter().map(|e| e.kind).collect();
        assert!(!kinds.contains(&EventKind::Expired) && kinds.contains(&EventKind::Late), "{kinds:?}");
    }

    #[tokio::test]
    async fn a_late_answer_there_before_the_expiry_is_taken_after_it() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        // Sent three hours ago, due two hours ago, seen overdue; given up half an hour ago.
        let mut a = ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap();
        (a.sent_at, a.deadline_at) = (a.sent_at - 180 * MIN, a.deadline_at - 180 * MIN);
        (a.expire_at, a.state) = (Some(crate::ledger::now_millis() - 30 * MIN), AwaitState::Overdue);
        ledger.update_await(&a, None, 0, 0).unwrap();
        // Answered an hour ago (late, before the expiry); the acks folder refuses it.
        let ack = d.join("partner/outbox/o1.ack");
        std::fs::write(&ack, "ack").unwrap();
        let written = std::time::SystemTime::now() - Duration::from_secs(60 * 60);
        std::fs::File::options().write(true).open(&ack).unwrap().set_modified(written).unwrap();
        std::fs::write(d.join("acks/o1.ack"), "in the way").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert!(r.responses[0].failed(), "{r:#?}");
        assert_eq!(r.responses[0].state, AwaitState::Overdue, "{r:#?}");
        std::fs::remove_file(d.join("acks/o1.ack")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Late, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
        assert!(!ack.exists());
        let kinds: Vec<EventKind> = ledger.events(Some("rt"), 0, 10).unwrap().into_iter().map(|e| e.kind).collect();
        assert!(!kinds.contains(&EventKind::Expired) && kinds.contains(&EventKind::Late), "{kinds:?}");
    }

    /// An earlier exchange's answer kept on the server (`after: keep`) is deleted by the first
    /// run after `after` became `delete`, the run that sent a new request awaiting the same
    /// name: touched in that run, it is still not the new request's answer.
    #[tokio::test]
    async fn an_earlier_answer_disposed_of_now_does_not_answer_a_new_request() {
        let (dir, mut flow) = round_trip("1h");
        let after = |f: &mut Flow, disp| f.response.as_mut().unwrap().flow.after_success = disp;
        after(&mut flow, crate::config::flow::Disposition::Keep);
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        std::fs::write(d.join("partner/outbox/a.ack"), "ack 1").unwrap();
        assert_eq!(run(&flow, &ledger, d).await.responses[0].state, AwaitState::Answered);
        assert!(d.join("partner/outbox/a.ack").exists(), "kept");
        // The partner took the request; a corrected one goes out, awaiting a.ack again.
        std::fs::remove_file(d.join("partner/inbox/a.csv")).unwrap();
        std::fs::write(d.join("outbox/a.csv"), "corrected order").unwrap();
        after(&mut flow, crate::config::flow::Disposition::Delete);
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert_eq!(r.responses[0].state, AwaitState::Waiting, "{r:#?}");
        assert!(!d.join("partner/outbox/a.ack").exists(), "delivered before, so deleted now");
        // Its own answer is taken.
        std::fs::remove_file(d.join("acks/a.ack")).unwrap();
        std::fs::write(d.join("partner/outbox/a.ack"), "ack 2").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack 2");
    }

    /// A server listing times to the minute (FTP LIST): the answer to a new request, of the
    /// same size as the previous answer under the name and written in the same minute, lists
    /// exactly as the previous one did. That one was deleted from the server when taken
    /// (`after: delete`), so this is a new file: it answers the new request, and is not
    /// deleted unseen as "already delivered".
    #[tokio::test]
    async fn a_new_answer_listed_like_an_earlier_one_taken_and_deleted_is_taken() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let minute = std::time::SystemTime::now();
        let answer = |text: &str| {
            let p = d.join("partner/outbox/a.ack");
            std::fs::write(&p, text).unwrap();
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(minute).unwrap();
        };
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        answer("ack 1");
        assert_eq!(run(&flow, &ledger, d).await.responses[0].state, AwaitState::Answered);
        assert!(!d.join("partner/outbox/a.ack").exists(), "deleted once taken");
        std::fs::remove_file(d.join("acks/a.ack")).unwrap();
        // A corrected request goes out, and its answer lists as the first one did.
        std::fs::remove_file(d.join("partner/inbox/a.csv")).unwrap();
        std::fs::write(d.join("outbox/a.csv"), "corrected order").unwrap();
        assert_eq!(run(&flow, &ledger, d).await.counts.delivered, 1);
        answer("ack 2");
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        assert_eq!(plan.responses[0].becomes, AwaitState::Answered, "{:#?}", plan.responses);
        assert!(plan.responses[0].detail.contains(": taken to acks:"), "{:#?}", plan.responses);
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack 2");
        assert!(!d.join("partner/outbox/a.ack").exists());
    }

    /// An earlier exchange's answer kept on the server (`after: keep`) is not the new request's:
    /// the plan says so, and so does the run, which leaves it.
    #[tokio::test]
    async fn plan_and_run_leave_an_earlier_exchanges_kept_answer() {
        let (dir, mut flow) = round_trip("1h");
        flow.response.as_mut().unwrap().flow.after_success = crate::config::flow::Disposition::Keep;
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        std::fs::write(d.join("partner/outbox/a.ack"), "ack 1").unwrap();
        run(&flow, &ledger, d).await;
        std::fs::remove_file(d.join("partner/inbox/a.csv")).unwrap();
        std::fs::write(d.join("outbox/a.csv"), "corrected order").unwrap();
        assert_eq!(run(&flow, &ledger, d).await.responses[0].state, AwaitState::Waiting);
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let r = &p.responses[0];
        assert_eq!((r.state, r.becomes, r.targets.len()), (AwaitState::Waiting, AwaitState::Waiting, 0), "{p:#?}");
        assert!(
            r.detail
                .starts_with("there, but an earlier exchange's response, taken before: not this request's answer (left there); waiting"),
            "{}",
            r.detail
        );
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Waiting, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/outbox/a.ack")).unwrap(), "ack 1");
    }

    /// Our clock was ahead when the request went out and was set back before its answer was
    /// taken (in the same run): the answer still closes the await — by the clock it was taken
    /// "before" the request was sent, and the await stayed open, to go overdue with the answer
    /// gone from the server.
    #[tokio::test]
    async fn an_answer_taken_after_the_clock_was_set_back_closes_its_await() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        let mut a = ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap();
        (a.sent_at, a.deadline_at) = (a.sent_at + 5 * MIN, a.deadline_at + 5 * MIN);
        ledger.update_await(&a, None, 0, 0).unwrap();
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
    }

    /// A response its steps refuse closes its await as rejected: quarantined (with its reports),
    /// left where the partner put it, not delivered, with the `quarantined` event that names
    /// it; a request held back for the same response name goes out next.
    #[tokio::test]
    async fn a_response_its_steps_refuse_rejects_its_await_and_says_so() {
        let steps = ", steps: [ { check: { non_empty: true } } ], quarantine: { endpoint: partner, path: /refused }";
        let (dir, flow) = round_trip_answered("1h", "", steps);
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        std::fs::write(d.join("outbox/a.xml"), "<order/>").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.not_ready), (1, 1), "{r:#?}");
        std::fs::write(d.join("partner/outbox/a.ack"), "").unwrap();
        let r = run(&flow, &ledger, d).await;
        let resp = &r.responses[0];
        assert_eq!(resp.state, AwaitState::Rejected, "{r:#?}");
        assert!(resp.detail.starts_with(&format!("REJECTED in run {}: refused by the response's steps", r.run)), "{}", resp.detail);
        // With the cause: a partner's NAK refused by a step was told without why.
        assert!(resp.detail.contains("empty"), "{}", resp.detail);
        assert_eq!(resp.file.as_ref().map(|f| f.outcome), Some(Outcome::Quarantined), "{r:#?}");
        // Counted as the run's files are: the summary, `wharf runs` and the metrics say it.
        assert_eq!((r.quarantined, r.counts.failed), (1, 0), "{r:#?}");
        assert!(d.join("partner/outbox/a.ack").exists(), "kept where the partner put it");
        assert!(d.join("partner/refused/a.ack").exists() && !d.join("acks/a.ack").exists());
        let events = ledger.events(Some("rt"), 0, 10).unwrap();
        assert!(
            events.iter().any(|e| e.kind == EventKind::Quarantined
                && e.subject == "/outbox/a.ack"
                && e.detail.starts_with(super::super::RESPONSE_REFUSED)),
            "{events:#?}"
        );
        // Not looked for again; the request held back for a.ack goes out in the same run, and
        // the refused response left there does not answer it.
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        let a = ledger.awaited("rt", "outbox/a.ack").unwrap().unwrap();
        assert_eq!((a.request.as_str(), a.state), ("a.xml", AwaitState::Waiting), "{r:#?}");
        let r = run(&flow, &ledger, d).await;
        let a = ledger.awaited("rt", "outbox/a.ack").unwrap().unwrap();
        assert_eq!((a.request.as_str(), a.state), ("a.xml", AwaitState::Waiting), "{r:#?}");
    }

    /// `wharf plan` says what the run's look for responses will do with each open await, from
    /// the same listing and decisions, and changes nothing: an answer there is taken (to the
    /// sinks, as named), one missed deadline is overdue once, an old file is not an answer.
    #[tokio::test]
    async fn plan_foresees_what_the_run_does_with_each_open_await() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        for o in ["a", "b", "c"] {
            std::fs::write(d.join(format!("outbox/{o}.csv")), "order").unwrap();
        }
        let plan = || async { super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap() };
        assert!(plan().await.responses.is_empty(), "nothing awaited yet");
        run(&flow, &ledger, d).await;
        // b.csv went out two hours ago (due an hour ago); c.ack is an old file, not an answer.
        let mut b = ledger.awaited("rt", "outbox/b.ack").unwrap().unwrap();
        (b.sent_at, b.deadline_at) = (b.sent_at - 120 * MIN, b.deadline_at - 120 * MIN);
        ledger.update_await(&b, None, 0, 0).unwrap();
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a").unwrap();
        let old = d.join("partner/outbox/c.ack");
        std::fs::write(&old, "yesterday's").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(86_400))
            .unwrap();

        let p = plan().await;
        let planned: Vec<(&str, AwaitState, AwaitState, &[EventKind])> =
            p.responses.iter().map(|r| (r.expected.as_str(), r.state, r.becomes, r.events.as_slice())).collect();
        assert_eq!(
            planned,
            [
                ("outbox/a.ack", AwaitState::Waiting, AwaitState::Answered, &[][..]),
                ("outbox/b.ack", AwaitState::Waiting, AwaitState::Overdue, &[EventKind::Overdue][..]),
                ("outbox/c.ack", AwaitState::Waiting, AwaitState::Waiting, &[][..]),
            ],
            "{p:#?}"
        );
        assert_eq!(p.responses[0].targets, ["acks:/a.ack"]);
        assert!(p.responses[0].detail.starts_with("there (written "), "{}", p.responses[0].detail);
        assert!(
            p.responses[0].detail.contains(": taken to acks:/a.ack; then deleted from the server; answered in time"),
            "{}",
            p.responses[0].detail
        );
        assert!(p.responses[1].detail.starts_with("not there; OVERDUE since "), "{}", p.responses[1].detail);
        assert!(p.responses[2].detail.contains("before the request was sent"), "{}", p.responses[2].detail);
        // Read-only: nothing taken, nothing recorded.
        assert!(d.join("partner/outbox/a.ack").exists() && !d.join("acks/a.ack").exists());
        assert!(ledger.events(Some("rt"), 0, 10).unwrap().is_empty());

        let r = run(&flow, &ledger, d).await;
        let ran: Vec<(&str, AwaitState)> = r.responses.iter().map(|r| (r.expected.as_str(), r.state)).collect();
        let foreseen: Vec<(&str, AwaitState)> = p.responses.iter().map(|r| (r.expected.as_str(), r.becomes)).collect();
        assert_eq!(ran, foreseen, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack a");
        // Overdue once: the next plan foresees no new event.
        let p = plan().await;
        assert_eq!(
            p.responses.iter().map(|r| (r.becomes, r.events.len())).collect::<Vec<_>>(),
            [(AwaitState::Overdue, 0), (AwaitState::Waiting, 0)]
        );
    }

    /// `wharf plan` says, under each request the run delivers, the response it then awaits:
    /// named as the run names it (where: the response endpoint and folder), due and given up
    /// when, relative to its sending — what the run then records.
    #[tokio::test]
    async fn plan_says_what_each_request_it_delivers_awaits() {
        let (dir, flow) = round_trip_answered("1h", "", ", expire_after: 1d");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let (super::super::plan::Action::Deliver { .. }, Some(a)) = (&p.files[0].action, &p.files[0].awaits) else { panic!("{p:#?}") };
        let want = PlannedAwait { response: "partner:/outbox/a.ack".into(), deadline: "1h".into(), expire_after: Some("1d".into()) };
        assert_eq!(a, &want);
        assert_eq!(a.shown(), "awaits partner:/outbox/a.ack, due within 1h of sending (until 1d after)");
        let none = PlannedAwait { expire_after: None, ..want };
        assert_eq!(none.shown(), "awaits partner:/outbox/a.ack, due within 1h of sending (until answered: no expire_after)");

        run(&flow, &ledger, d).await;
        let rec = ledger.awaited("rt", "outbox/a.ack").unwrap().expect("awaited as the plan said");
        assert_eq!((rec.deadline_at - rec.sent_at, rec.expire_at.map(|e| e - rec.sent_at)), (60 * MIN, Some(24 * 60 * MIN)));
        // Sent: the file's line is gone, the await has its own.
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        assert!(p.files.is_empty(), "{p:#?}");
        assert_eq!(p.responses[0].states_shown(), "waiting", "{p:#?}");
        assert!(p.responses[0].detail.starts_with("not there; waiting; due by "), "{}", p.responses[0].detail);
    }

    /// An await past its deadline and its expiry that no run looked at: the run records it
    /// overdue, then expired (two events); the plan said `waiting → expired` without the
    /// overdue. It says what the run does, from the same judgement.
    #[tokio::test]
    async fn plan_foresees_overdue_then_expired_as_the_run_records_them() {
        let (dir, flow) = round_trip_answered("1h", "", ", expire_after: 2h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        // Sent three hours ago: due two hours ago, given up an hour ago, and no run looked.
        let mut a = ledger.awaited("rt", "outbox/a.ack").unwrap().unwrap();
        (a.sent_at, a.deadline_at, a.expire_at) = (a.sent_at - 180 * MIN, a.deadline_at - 180 * MIN, a.expire_at.map(|e| e - 180 * MIN));
        ledger.update_await(&a, None, 0, 0).unwrap();

        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let planned = &p.responses[0];
        assert_eq!(
            (planned.state, planned.through.as_slice(), planned.becomes, planned.events.as_slice()),
            (AwaitState::Waiting, &[AwaitState::Overdue][..], AwaitState::Expired, &[EventKind::Overdue, EventKind::Expired][..]),
            "{p:#?}"
        );
        assert_eq!(planned.states_shown(), "waiting → overdue → expired (events overdue, expired)");

        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses.iter().map(|r| r.state).collect::<Vec<_>>(), [planned.becomes], "{r:#?}");
        let kinds: Vec<EventKind> = ledger.events(Some("rt"), 0, 10).unwrap().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, planned.events, "the events the plan foresaw");
    }

    /// Killed right after the request's rename, before the ledger knew; the next run, half
    /// an hour later, finds it delivered. The partner answered a minute after it got the
    /// request: that answer is not older than the request, and is taken.
    #[tokio::test]
    async fn a_request_found_delivered_after_a_crash_is_awaited_from_before_the_crash() {
        use sha2::Digest;
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        std::fs::write(d.join("partner/inbox/o1.csv"), "order").unwrap();
        let mtime = to_millis(std::fs::metadata(d.join("outbox/o1.csv")).unwrap().modified().unwrap());
        let crashed = crate::ledger::now_millis() - 30 * MIN;
        let rec = FileRecord {
            path: "o1.csv".into(),
            identity: format!("p=o1.csv|s=5|m={mtime}"),
            size: 5,
            mtime: Some(mtime),
            sha256: Some(hex::encode(sha2::Sha256::digest(b"order"))),
            state: FileState::Delivering,
            first_seen: crashed,
            updated: crashed,
            run: 1,
            deliveries: vec![crate::ledger::Delivery { sink: 0, target: "inbox/o1.csv".into(), done: false, replaces: None }],
            ..Default::default()
        };
        ledger.put_file_with("rt", &rec, crate::ledger::Durability::Durable).unwrap();
        let ack = d.join("partner/outbox/o1.ack");
        std::fs::write(&ack, "ack").unwrap();
        let written = std::time::SystemTime::now() - Duration::from_secs(29 * 60);
        std::fs::File::options().write(true).open(&ack).unwrap().set_modified(written).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert_eq!(std::fs::read_dir(d.join("partner/inbox")).unwrap().count(), 1, "delivered once");
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
    }

    /// `wharf plan` says what a request a crashed run left before the partner had it awaits
    /// once the run resumes it (its line said nothing): `o1.csv`, whose upload was recorded
    /// to `o1-1.csv` (the free name `if_exists: rename` chose) and is there whole, awaits the
    /// response named after that name, as the run then records it; `o2.csv`, left before
    /// anything was downloaded, the one named after the name it gets now. In `--json` too.
    #[tokio::test]
    async fn plan_says_what_a_resumed_request_awaits() {
        use sha2::Digest;
        let (dir, flow) = round_trip_answered("1h", "", ", expire_after: 1d");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let crashed = crate::ledger::now_millis() - 30 * MIN;
        for (name, state, target) in [("o1", FileState::Delivering, Some("inbox/o1-1.csv")), ("o2", FileState::Claimed, None)] {
            let path = d.join(format!("outbox/{name}.csv"));
            std::fs::write(&path, "order").unwrap();
            let mtime = to_millis(std::fs::metadata(&path).unwrap().modified().unwrap());
            let deliveries: Vec<_> =
                target.map(|t| crate::ledger::Delivery { sink: 0, target: t.into(), done: false, replaces: None }).into_iter().collect();
            let rec = FileRecord {
                path: format!("{name}.csv"),
                identity: format!("p={name}.csv|s=5|m={mtime}"),
                size: 5,
                mtime: Some(mtime),
                // Hashed when staged (what a found delivery is checked against).
                sha256: target.map(|_| hex::encode(sha2::Sha256::digest(b"order"))),
                state,
                first_seen: crashed,
                updated: crashed,
                run: 1,
                deliveries,
                ..Default::default()
            };
            ledger.put_file_with("rt", &rec, crate::ledger::Durability::Durable).unwrap();
        }
        std::fs::write(d.join("partner/inbox/o1-1.csv"), "order").unwrap();
        let p = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let planned: Vec<(&str, bool, Option<&str>)> = p
            .files
            .iter()
            .map(|f| {
                (
                    f.path.as_str(),
                    matches!(f.action, super::super::plan::Action::Resume { .. }),
                    f.awaits.as_ref().map(|a| a.response.as_str()),
                )
            })
            .collect();
        assert_eq!(
            planned,
            [("/o1.csv", true, Some("partner:/outbox/o1-1.ack")), ("/o2.csv", true, Some("partner:/outbox/o2.ack"))],
            "{p:#?}"
        );
        assert_eq!(
            p.files[0].awaits.as_ref().map(PlannedAwait::shown).as_deref(),
            Some("awaits partner:/outbox/o1-1.ack, due within 1h of sending (until 1d after)")
        );
        let json = serde_json::to_value(&p.files[1]).unwrap();
        assert_eq!(
            (&json["action"], &json["awaits"]),
            (
                &serde_json::json!("resume"),
                &serde_json::json!({ "response": "partner:/outbox/o2.ack", "deadline": "1h", "expire_after": "1d" })
            ),
            "{json:#}"
        );
        let r = run(&flow, &ledger, d).await;
        let awaited: Vec<(String, String)> = ledger.awaits(Some("rt")).unwrap().into_iter().map(|a| (a.request, a.expected)).collect();
        assert_eq!(awaited, [("o1.csv".into(), "outbox/o1-1.ack".into()), ("o2.csv".into(), "outbox/o2.ack".into())], "{r:#?}");
    }

    /// `a.csv` and `a.xml` both expect `a.ack`: sent, they could not be told apart (one
    /// would lose its await, and take the other's answer). The first in listing order goes;
    /// the other stays in the source, not ready, until that await closes — also in a later
    /// run while it is still open.
    #[tokio::test]
    async fn a_request_whose_response_name_is_awaited_waits_until_that_await_closes() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        std::fs::write(d.join("outbox/a.xml"), "<order/>").unwrap();
        // `wharf plan` tells it beforehand.
        let why = |p: super::super::plan::Plan| match &p.files.iter().find(|f| f.path.ends_with("a.xml")).unwrap().action {
            super::super::plan::Action::Wait { why } => why.clone(),
            other => panic!("{other:?}"),
        };
        let plan = super::super::plan::plan(&flow, None, std::time::SystemTime::now(), None).await.unwrap();
        assert!(why(plan).contains("would also answer /a.csv"));
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.not_ready), (1, 1), "{r:#?}");
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let xml_awaits = |p: &super::super::plan::Plan| p.files.iter().find(|f| f.path.ends_with("a.xml")).unwrap().awaits.clone();
        assert_eq!(xml_awaits(&plan), None, "held back, not sent in this run: {plan:#?}");
        assert!(why(plan).contains("is awaited for /a.csv"));
        let held = r.files.iter().find(|f| f.path.ends_with("a.xml")).unwrap();
        assert_eq!(held.outcome, Outcome::NotReady);
        assert!(held.detail.contains("its response /outbox/a.ack would also answer /a.csv, sent first in this run"), "{}", held.detail);
        assert!(d.join("outbox/a.xml").exists() && !d.join("partner/inbox/a.xml").exists());
        let awaits = ledger.awaits(Some("rt")).unwrap();
        assert_eq!((awaits.len(), awaits[0].request.as_str()), (1, "a.csv"), "{awaits:#?}");
        // Still awaited in the next run: a.xml still waits, and says for what.
        let r = run(&flow, &ledger, d).await;
        let held = r.files.iter().find(|f| f.path.ends_with("a.xml")).unwrap();
        assert_eq!(held.outcome, Outcome::NotReady, "{r:#?}");
        assert!(held.detail.starts_with("its response /outbox/a.ack is awaited for /a.csv (sent "), "{}", held.detail);
        assert!(
            held.detail.ends_with("sent once that is answered (it has no expire_after); `wharf awaits close rt /a.csv` gives up waiting"),
            "{}",
            held.detail
        );
        // Answered: the run that takes the answer sends a.xml after it (was: the run after),
        // which awaits a.ack in its turn — and not the answer that run took for a.csv.
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.csv").unwrap();
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        // Sent after the look, it then awaits a.ack in its turn: said under it, as for a request
        // delivered straight away (it said nothing).
        let after = xml_awaits(&plan).map(|a| a.shown());
        assert_eq!(after.as_deref(), Some("awaits partner:/outbox/a.ack, due within 1h of sending (until answered: no expire_after)"));
        let why = why(plan);
        assert!(why.starts_with("its response /outbox/a.ack is awaited for /a.csv"), "{why}");
        assert!(why.contains("closes that await (see responses), and sends this request after it, in the same run"), "{why}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack a.csv");
        assert_eq!((r.counts.delivered, r.counts.not_ready), (1, 0), "{r:#?}");
        let sent = r.files.iter().find(|f| f.path.ends_with("a.xml")).unwrap();
        assert_eq!(sent.outcome, Outcome::Delivered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/inbox/a.xml")).unwrap(), "<order/>");
        assert!(!d.join("outbox/a.xml").exists());
        let a = ledger.awaited("rt", "outbox/a.ack").unwrap().unwrap();
        assert_eq!((a.request.as_str(), a.state, a.request_run, a.answerable_from), ("a.xml", AwaitState::Waiting, r.run, r.run + 1));
        // The run's report has its await, as every open one.
        let waiting = r.responses.iter().find(|x| x.request == "a.xml").expect("reported");
        assert_eq!(waiting.state, AwaitState::Waiting, "{r:#?}");
        // The next runs do not take the answer to a.csv, recorded by the run that sent a.xml,
        // for a.xml's: it stays awaited until the partner answers it.
        for _ in 0..2 {
            let r = run(&flow, &ledger, d).await;
            assert_eq!(r.responses.iter().map(|x| (x.request.as_str(), x.state)).collect::<Vec<_>>(), [("a.xml", AwaitState::Waiting)]);
        }
        std::fs::remove_file(d.join("acks/a.ack")).unwrap();
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.xml").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack a.xml");
    }

    /// The same with the answers kept on the server (`after: keep`) and three requests for one
    /// name: the run that takes an answer sends the next request (the first in listing order;
    /// the other's reason now names it), whose await takes neither the answer kept there nor
    /// its record.
    #[tokio::test]
    async fn a_request_held_back_goes_in_the_run_that_takes_the_answer_in_its_way() {
        let (dir, flow) = round_trip_answered("1h", "", ", after: keep");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        for f in ["a.csv", "a.json", "a.xml"] {
            std::fs::write(d.join("outbox").join(f), f).unwrap();
        }
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.not_ready), (1, 2), "{r:#?}");
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.csv").unwrap();
        let r = run(&flow, &ledger, d).await;
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert!(outcomes.contains(&("/a.json", Outcome::Delivered)) && outcomes.contains(&("/a.xml", Outcome::NotReady)), "{r:#?}");
        assert_eq!((r.counts.delivered, r.counts.not_ready), (1, 1), "{r:#?}");
        let held = r.files.iter().find(|f| f.path == "/a.xml").unwrap();
        assert!(held.detail.contains("would also answer /a.json, sent first in this run"), "{}", held.detail);
        let states: Vec<_> = r.responses.iter().map(|x| (x.request.as_str(), x.state)).collect();
        assert_eq!(states, [("a.csv", AwaitState::Answered), ("a.json", AwaitState::Waiting)]);
        // The answer to a.csv, kept on the server, is not a.json's.
        let r = run(&flow, &ledger, d).await;
        let states: Vec<_> = r.responses.iter().map(|x| (x.request.as_str(), x.state)).collect();
        assert_eq!(states, [("a.json", AwaitState::Waiting)], "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack a.csv");
        // Its own answer is: a.xml goes in the run that takes it.
        std::fs::remove_file(d.join("acks/a.ack")).unwrap();
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.json, longer").unwrap();
        let r = run(&flow, &ledger, d).await;
        let states: Vec<_> = r.responses.iter().map(|x| (x.request.as_str(), x.state)).collect();
        assert_eq!(states, [("a.json", AwaitState::Answered), ("a.xml", AwaitState::Waiting)], "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/a.ack")).unwrap(), "ack a.json, longer");
        assert_eq!(std::fs::read_to_string(d.join("partner/inbox/a.xml")).unwrap(), "a.xml");
    }

    /// A round trip with `source.max_files: 1`, and in its outbox a.csv, a.json (whose
    /// response is a.csv's, a.ack) and b.csv, modified in that order.
    fn capped_round_trip() -> (tempfile::TempDir, Flow) {
        let (dir, mut flow) = round_trip("1h");
        flow.source.max_files = Some(1);
        for (f, secs) in [("a.csv", 100), ("a.json", 200), ("b.csv", 300)] {
            let p = dir.path().join("outbox").join(f);
            std::fs::write(&p, f).unwrap();
            let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            std::fs::File::options().write(true).open(&p).unwrap().set_modified(at).unwrap();
        }
        (dir, flow)
    }

    /// `source.max_files` of a round trip: a request held back (its response name awaited
    /// by another) does not count; the files left for the next run are the others over the
    /// cap, the oldest taken first.
    #[tokio::test]
    async fn a_request_held_back_does_not_count_for_max_files() {
        let (dir, flow) = capped_round_trip();
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let r = run(&flow, &ledger, d).await;
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(outcomes, [("/a.json", Outcome::NotReady), ("/a.csv", Outcome::Delivered)], "{r:#?}");
        assert_eq!(r.later, Some(crate::engine::Later { files: 1, max_files: 1 }), "b.csv only: {r:#?}");
    }

    /// `source.max_files` counts a request sent after the run's look for responses too: a
    /// run whose places the files it started first took leaves it for the next run (was: sent
    /// all the same, so the run started more than `max_files`), and `wharf plan` says so.
    #[tokio::test]
    async fn a_request_sent_after_the_look_takes_a_place_under_max_files() {
        let (dir, flow) = capped_round_trip();
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "a.csv: {r:#?}");
        // a.csv answered: a.json, held back for a.ack, could go after the look; but b.csv,
        // not held back, took the run's one place.
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.csv").unwrap();
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let actions: Vec<_> = plan.files.iter().map(|f| (f.path.as_str(), f.action.clone())).collect();
        let later = super::super::plan::Action::Wait { why: "later: max_files 1 reached".into() };
        assert!(actions.contains(&("/a.json", later)), "{actions:#?}");
        let json = plan.files.iter().find(|f| f.path == "/a.json").unwrap();
        assert_eq!(json.awaits, None, "not sent by this run: {plan:#?}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(outcomes, [("/b.csv", Outcome::Delivered)], "{r:#?}");
        assert_eq!(r.later, Some(crate::engine::Later { files: 1, max_files: 1 }), "a.json: {r:#?}");
        assert!(!d.join("partner/inbox/a.json").exists());
        // The next run takes it.
        let r = run(&flow, &ledger, d).await;
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(outcomes, [("/a.json", Outcome::Delivered)], "{r:#?}");
        assert_eq!(r.later, None);
    }

    /// A request a stopped run left in flight, held back by another's await until the run's
    /// look closes it, keeps its turn (resumed) only among the requests sent after that look:
    /// the files the run started before the look, new ones too, took the places first (the
    /// look comes after them, and a place kept for it would be lost whenever the look does not
    /// let it go: `cap::Places`). With none left it waits one run; the next, where it is held
    /// back no more, takes it first, before a new file older than it. `wharf plan` says both.
    #[tokio::test]
    async fn a_resumed_request_held_back_until_the_look_waits_one_run_then_goes_first() {
        let (dir, flow) = capped_round_trip();
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "a.csv: {r:#?}");
        // A crash left a.json claimed (sent after an earlier look, say).
        let rec = FileRecord {
            path: "a.json".into(),
            identity: "p=a.json|s=6|m=200000".into(),
            size: 6,
            mtime: Some(200_000),
            state: FileState::Claimed,
            run: 1,
            ..Default::default()
        };
        ledger.put_file_with("rt", &rec, crate::ledger::Durability::Durable).unwrap();
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.csv").unwrap();
        let actions = |p: &super::super::plan::Plan| -> Vec<(String, super::super::plan::Action)> {
            p.files.iter().map(|f| (f.path.clone(), f.action.clone())).collect()
        };
        let later = super::super::plan::Action::Wait { why: "later: max_files 1 reached".into() };
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        assert!(actions(&plan).contains(&("/a.json".into(), later.clone())), "{plan:#?}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(outcomes, [("/b.csv", Outcome::Delivered)], "{r:#?}");
        assert_eq!(r.later, Some(crate::engine::Later { files: 1, max_files: 1 }), "a.json: {r:#?}");
        assert!(ledger.file("rt", "a.json").unwrap().unwrap().state.in_flight(), "still in flight");
        // A new file, older than every other: the resumed request goes first all the same.
        let c = d.join("outbox/c.csv");
        std::fs::write(&c, "c.csv").unwrap();
        let at = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(50);
        std::fs::File::options().write(true).open(&c).unwrap().set_modified(at).unwrap();
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        assert!(actions(&plan).contains(&("/c.csv".into(), later)), "{plan:#?}");
        let r = run(&flow, &ledger, d).await;
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(outcomes, [("/a.json", Outcome::Delivered)], "{r:#?}");
        assert_eq!(r.later, Some(crate::engine::Later { files: 1, max_files: 1 }), "c.csv: {r:#?}");
    }

    /// A request whose response name cannot be rendered over the name it is delivered under
    /// (`{{ext}}` of a file without one gives no name) is not sent: sent, no answer to it could
    /// be awaited, and the file failed after its delivery, aborting the run (no response of the
    /// flow looked for), run after run. `wharf plan` says the same.
    /// A request held back for days by a flow polled every minute: told at info level by the
    /// run that holds it back first, at debug level by the later ones (was one INFO line a
    /// run, 1,440 a day); every run's report still gives the reason. A request that turns up
    /// while the await is open is told once alike, and so is a hold by another await.
    #[test]
    fn a_held_back_request_is_logged_once_not_at_every_run() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let log = crate::log_capture::Log::default();
        let run_logged = || {
            let (r, lines) = log.of(|| rt.block_on(run(&flow, &ledger, d)));
            let held: Vec<String> = lines.into_iter().filter(|l| l.contains("Request held back")).collect();
            let reasons: Vec<String> =
                r.files.iter().filter(|f| f.outcome == Outcome::NotReady).map(|f| format!("{} {}", f.path, f.detail)).collect();
            (held, reasons)
        };
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        std::fs::write(d.join("outbox/a.xml"), "<order/>").unwrap();
        let (held, reasons) = run_logged();
        assert!(held.len() == 1 && held[0].contains("a.xml") && held[0].contains("would also answer /a.csv"), "{held:#?}");
        assert_eq!(reasons.len(), 1, "{reasons:#?}");
        for _ in 0..3 {
            let (held, reasons) = run_logged();
            assert_eq!(held, Vec::<String>::new(), "told once");
            assert!(reasons.len() == 1 && reasons[0].contains("is awaited for /a.csv"), "{reasons:#?}");
        }
        // A request that turns up now is told of once.
        std::fs::write(d.join("outbox/a.json"), "{}").unwrap();
        let (held, reasons) = run_logged();
        assert!(held.len() == 1 && held[0].contains("a.json"), "{held:#?}");
        assert_eq!(reasons.len(), 2, "{reasons:#?}");
        let (held, _) = run_logged();
        assert_eq!(held, Vec::<String>::new(), "told once");
        // Answered (taken at the end of a run): a.json goes in that run, after the answer was
        // taken, and a.xml, held now by a.json, is told of again, once.
        std::fs::write(d.join("partner/outbox/a.ack"), "ack a.csv").unwrap();
        let (held, reasons) = run_logged();
        assert!(held.len() == 1 && held[0].contains("a.xml") && held[0].contains("would also answer /a.json"), "{held:#?} {reasons:#?}");
        assert!(reasons.len() == 1 && reasons[0].contains("would also answer /a.json"), "{reasons:#?}");
        let (held, reasons) = run_logged();
        assert_eq!(held, Vec::<String>::new(), "told once");
        assert!(reasons.len() == 1 && reasons[0].contains("is awaited for /a.json"), "{reasons:#?}");
    }

    #[tokio::test]
    async fn a_request_whose_response_cannot_be_named_is_not_sent() {
        let (dir, mut flow) = round_trip("1h");
        flow.response.as_mut().unwrap().name = crate::template::NameTemplate::new("{{ext}}").unwrap();
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/README"), "order").unwrap();
        std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
        let plan = super::super::plan::plan(&flow, Some(&ledger), std::time::SystemTime::now(), None).await.unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.not_ready, r.counts.failed), (1, 1, 0), "{r:#?}");
        let held = r.files.iter().find(|f| f.path == "/README").unwrap();
        assert!(held.detail.starts_with("its response could not be named ("), "{}", held.detail);
        assert!(held.detail.ends_with("not sent, as no answer to it could be awaited"), "{}", held.detail);
        assert!(!d.join("partner/inbox/README").exists() && d.join("outbox/README").exists());
        assert_eq!(ledger.awaits(Some("rt")).unwrap().iter().map(|a| a.expected.as_str()).collect::<Vec<_>>(), ["outbox/csv"]);
        let planned = plan.files.iter().find(|f| f.path == "/README").unwrap();
        assert_eq!(planned.action, super::super::plan::Action::Wait { why: held.detail.clone() });
    }

    /// A new version of a request, sent while the old one's answer is awaited, would take
    /// that answer for its own: it waits too.
    #[tokio::test]
    async fn a_new_version_of_a_request_waits_for_the_answer_to_the_old_one() {
        use crate::config::flow::Identity;
        // Also under a content identity, which the listing cannot tell (it was sent).
        let sha256 = Identity { path: false, size: false, mtime: false, sha256: true };
        for identity in [None, Some(sha256), Some(Identity { path: true, ..sha256 })] {
            let (dir, mut flow) = round_trip("1h");
            if let Some(id) = identity {
                flow.source.identity = id;
            }
            let d = dir.path();
            let ledger = crate::ledger::Ledger::in_memory().unwrap();
            std::fs::write(d.join("outbox/a.csv"), "order").unwrap();
            run(&flow, &ledger, d).await;
            std::fs::write(d.join("outbox/a.csv"), "corrected order").unwrap();
            let r = run(&flow, &ledger, d).await;
            assert_eq!(r.files[0].outcome, Outcome::NotReady, "{identity:?}: {r:#?}");
            assert!(r.files[0].detail.contains("is awaited for an earlier version of /a.csv (sent "), "{}", r.files[0].detail);
            assert_eq!(std::fs::read_to_string(d.join("partner/inbox/a.csv")).unwrap(), "order");
        }
    }

    /// The request's target is there already and left as it was (`if_exists: skip`): the
    /// partner did not get the request, so no response is awaited — no false `overdue`, and
    /// an answer to the file left there is not taken for it. A run resumed after a crash
    /// tells the skip from a delivery too (nor does it write the trigger of a delivery).
    #[tokio::test]
    async fn a_request_left_alone_by_if_exists_skip_is_not_awaited() {
        let (dir, flow) = round_trip_with("1ms", ", if_exists: skip, trigger: \"{{name}}.ok\"");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("partner/inbox/o1.csv"), "somebody's").unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        let detail = &r.files[0].detail;
        assert!(detail.contains("partner:/inbox/o1.csv was there already and left as it was"), "{detail}");
        assert!(detail.contains("the request was not sent, so no response is awaited"), "{detail}");
        assert!(r.responses.is_empty() && ledger.awaits(Some("rt")).unwrap().is_empty(), "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("partner/inbox/o1.csv")).unwrap(), "somebody's");
        assert!(!d.join("partner/inbox/o1.csv.ok").exists());
        // An answer to the file left there is not this request's; nothing goes overdue.
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack to somebody's").unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = run(&flow, &ledger, d).await;
        assert!(r.responses.is_empty(), "{r:#?}");
        assert!(d.join("partner/outbox/o1.ack").exists() && !d.join("acks/o1.ack").exists());
        assert!(ledger.events(Some("rt"), 0, 10).unwrap().is_empty());

        // Killed after the skip was recorded, before the file was done: the resumed run
        // neither awaits a response nor writes a trigger for it.
        std::fs::write(d.join("outbox/o2.csv"), "order").unwrap();
        std::fs::write(d.join("partner/inbox/o2.csv"), "somebody's").unwrap();
        let mtime = to_millis(std::fs::metadata(d.join("outbox/o2.csv")).unwrap().modified().unwrap());
        let kept = crate::ledger::Replaced { size: 10, mtime: None };
        let rec = FileRecord {
            path: "o2.csv".into(),
            identity: format!("p=o2.csv|s=5|m={mtime}"),
            size: 5,
            mtime: Some(mtime),
            state: FileState::Delivered,
            first_seen: 1,
            updated: 1,
            run: 1,
            deliveries: vec![crate::ledger::Delivery { sink: 0, target: "inbox/o2.csv".into(), done: true, replaces: Some(kept) }],
            ..Default::default()
        };
        ledger.put_file_with("rt", &rec, crate::ledger::Durability::Durable).unwrap();
        let r = run(&flow, &ledger, d).await;
        let f = r.files.iter().find(|f| f.path.ends_with("o2.csv")).expect("o2.csv reported");
        assert!(f.detail.contains("no response is awaited"), "{r:#?}");
        assert!(ledger.awaits(Some("rt")).unwrap().is_empty(), "{r:#?}");
        // Resumed before its deliveries were through: the trigger is not owed either.
        let rec = FileRecord { path: "o3.csv".into(), state: FileState::Delivering, ..rec };
        std::fs::write(d.join("outbox/o3.csv"), "order").unwrap();
        std::fs::write(d.join("partner/inbox/o3.csv"), "somebody's").unwrap();
        let mtime = to_millis(std::fs::metadata(d.join("outbox/o3.csv")).unwrap().modified().unwrap());
        let rec = FileRecord {
            identity: format!("p=o3.csv|s=5|m={mtime}"),
            mtime: Some(mtime),
            deliveries: vec![crate::ledger::Delivery { target: "inbox/o3.csv".into(), ..rec.deliveries[0].clone() }],
            ..rec
        };
        ledger.put_file_with("rt", &rec, crate::ledger::Durability::Durable).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert!(ledger.awaits(Some("rt")).unwrap().is_empty(), "{r:#?}");
        assert!(!d.join("partner/inbox/o3.csv.ok").exists(), "no trigger for a target left alone");
    }

    /// A run asked to stop (`wharf serve` shutting down) starts no response work: the answer
    /// stays on the server, the await is not judged (no `overdue` for an await no one looked
    /// at), and the report says the next run looks — which takes it.
    #[tokio::test]
    async fn a_run_asked_to_stop_does_not_look_for_responses() {
        let (dir, flow) = round_trip("1ms");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        let opts = super::super::RunOptions::new(d.join("staging"));
        opts.stop.request();
        let r = super::super::run_once(&flow, &ledger, &opts, &mut |_| {}).await.unwrap();
        assert_eq!(r.responses.len(), 1, "{r:#?}");
        assert_eq!((r.responses[0].state, r.responses[0].file.is_none()), (AwaitState::Waiting, true), "{r:#?}");
        assert!(r.responses[0].detail.ends_with("not looked for: wharf is shutting down, the next run looks"), "{}", r.responses[0].detail);
        assert!(d.join("partner/outbox/o1.ack").exists() && !d.join("acks/o1.ack").exists());
        assert_eq!(ledger.awaited("rt", "outbox/o1.ack").unwrap().unwrap().state, AwaitState::Waiting);
        assert!(ledger.events(Some("rt"), 0, 10).unwrap().is_empty());
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Late, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
    }

    #[tokio::test]
    async fn an_overdue_response_is_recorded_once_and_a_late_one_matched() {
        let (dir, flow) = round_trip("1ms");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        run(&flow, &ledger, d).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let log = crate::log_capture::Log::default();
        let capture = log.capture();
        let mut runs = Vec::new();
        for _ in 0..2 {
            let r = run(&flow, &ledger, d).await;
            assert_eq!((r.status, r.responses[0].state), (crate::ledger::RunStatus::Ok, AwaitState::Overdue), "{r:#?}");
            runs.push(r.run);
        }
        // Each event names the run that found it (the notice's `run`).
        let events =
            |l: &crate::ledger::Ledger| l.events(Some("rt"), 0, 10).unwrap().into_iter().map(|e| (e.kind, e.run)).collect::<Vec<_>>();
        assert_eq!(events(&ledger), [(EventKind::Overdue, Some(runs[0]))]);
        drop(capture);
        // The log names the response as the event does (was: `expected=outbox/o1.ack`).
        let text = log.text();
        let line = text.lines().find(|l| l.contains("Response event.")).unwrap_or_else(|| panic!("{text}"));
        assert!(line.contains("expected=/outbox/o1.ack") && line.contains("request=/o1.csv"), "{line}");
        std::fs::write(d.join("partner/outbox/o1.ack"), "ack").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Late, "{r:#?}");
        assert_eq!(events(&ledger), [(EventKind::Overdue, Some(runs[0])), (EventKind::Late, Some(r.run))]);
    }

    #[test]
    fn a_response_is_stale_only_beyond_the_slack_of_its_server_times() {
        let a = AwaitRecord { sent_at: 48 * 60 * MIN, ..open() };
        let at = |m: Millis| Entry {
            path: RemotePath::parse("outbox/a.ack").unwrap(),
            kind: crate::endpoint::EntryKind::File,
            size: 1,
            mtime: Some(from_millis(m)),
        };
        // Precise times: ten minutes.
        assert!(!older_than_request(&at(a.sent_at - 5 * MIN), &a, CLOCK_SLACK));
        assert!(older_than_request(&at(a.sent_at - 60 * MIN), &a, CLOCK_SLACK));
        // Times that may be in the server's zone (FTP LIST): only a day and more.
        assert!(!older_than_request(&at(a.sent_at - 5 * 60 * MIN), &a, DAY_SLACK));
        assert!(older_than_request(&at(a.sent_at - 27 * 60 * MIN), &a, DAY_SLACK));
    }

    /// A file named like the response that was there long before the request was sent (an
    /// earlier exchange's ack, kept) is not its answer.
    #[tokio::test]
    async fn a_response_older_than_its_request_is_not_taken() {
        let (dir, flow) = round_trip("1h");
        let d = dir.path();
        let ledger = crate::ledger::Ledger::in_memory().unwrap();
        let old = d.join("partner/outbox/o1.ack");
        std::fs::write(&old, "yesterday's ack").unwrap();
        let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
        std::fs::File::options().write(true).open(&old).unwrap().set_modified(two_days_ago).unwrap();
        std::fs::write(d.join("outbox/o1.csv"), "order").unwrap();
        let r = run(&flow, &ledger, d).await;
        let resp = &r.responses[0];
        assert_eq!(resp.state, AwaitState::Waiting, "{r:#?}");
        assert!(resp.detail.contains("before the request was sent") && resp.detail.contains("not taken as its answer"), "{}", resp.detail);
        assert!(old.exists() && !d.join("acks/o1.ack").exists());
        // The partner's answer replaces it: taken.
        std::fs::write(&old, "ack").unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.responses[0].state, AwaitState::Answered, "{r:#?}");
        assert_eq!(std::fs::read_to_string(d.join("acks/o1.ack")).unwrap(), "ack");
    }

    #[test]
    fn a_refused_response_rejects_the_await_without_an_event() {
        let mut a = open();
        assert_eq!(judge(&mut a, Some(&taken(FileState::Quarantined, Some(MIN), 2 * MIN)), None, Seen::default(), 2 * MIN), None);
        assert_eq!((a.state, a.response_run), (AwaitState::Rejected, Some(7)));
        assert!(describe(&a, None).starts_with("REJECTED in run 7"));
    }
}
