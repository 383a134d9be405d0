//! Alert rules: which events a finished run raises, from its report and the flow's health.
//!
//! The only place that decides `failed`, `quarantined`, `unreachable` and `recovered` events
//! (awaited responses raise theirs in `awaits.rs`, expected files in `serve`). Pure: the
//! caller stores the new health and the events with the run record in one transaction
//! (`Ledger::finish_run_with`), so a run's events are recorded exactly once. A `quarantined`
//! event ([`quarantined`]) is stored with the file's `quarantined` record instead
//! (`Transition::WithEvent`, by `quarantine.rs`): a run killed after that commit, before its
//! end, would otherwise leave the file quarantined and nobody told, and the next run, finding
//! it settled, would not tell either. A run interrupted before its end (killed, cut off at a
//! stop) is judged when it is closed ([`judge_interrupted`], by `engine::close_interrupted`):
//! its `failed` event from the files the ledger records failed for good in it, with its
//! record. Delivering them is the notifier's business (`notify`, driven by `wharf serve`).
//!
//! - A run aborted because an endpoint could not be reached (`RunReport::unreachable`:
//!   connection refused, timeout, dropped link) counts towards the unreachable streak; the
//!   run that makes it `alerts.unreachable_after` raises one `unreachable` event, later ones
//!   in the same outage raise nothing.
//! - A run that failed (a file could not be delivered, a response was refused) or was aborted
//!   for another reason (refused login, changed host key, a `source.command` that exited
//!   non-zero) raises `failed`, each time: repeats are held back by the notifier's throttle,
//!   not here.
//! - A run interrupted before its end raises `failed` when files of it failed for good, and
//!   counts as failing then; else nothing, its health as it was.
//! - Each quarantined file raises `quarantined`, with the reason.
//! - A listed file the login may not read yet raises `not_taken` once it has been refused for
//!   [`UNREADABLE_AFTER`] ([`unreadable`], stored with the file's record), once.
//! - The first good run after a `failed` or `unreachable` event raises `recovered`, once.
//!
//! Every event names the run that raised it (`Event::run`, the notice's `run`).

use crate::config::Flow;
use crate::ledger::{EventKind, FlowHealth, Millis, NewEvent, RunStatus};

use super::{Outcome, REPORT_LOG_TARGET, RunReport};

/// The `quarantined` event of a file put aside by run `run` of `flow` (a response's file: its
/// request flow's): `path` as its report line names it, `detail` that line's detail (where the
/// copy is, why, what became of the source). Stored with the file's record, not at the run's end.
pub(super) fn quarantined(flow: &str, run: u64, path: &str, detail: &str, at: Millis) -> NewEvent {
    NewEvent {
        flow: flow.to_string(),
        at,
        kind: EventKind::Quarantined,
        subject: path.to_string(),
        detail: detail.to_string(),
        run: Some(run),
    }
}

/// How the detail of a response's `quarantined` event begins (a round trip's response refused
/// by the response's steps, its await `rejected`): its notice then points at what there is for
/// a response (`wharf quarantine show FLOW PATH` knows only the flow's own files).
pub const RESPONSE_REFUSED: &str = "a response, refused by the response's steps (its await is rejected); ";

/// How long a listed file may stay unreadable to the login before it raises a `not_taken`
/// event ([`unreadable`]): an hour. An uploader that opens a file up once it is done does so
/// within seconds or minutes of its last byte; a file still refused an hour after the first
/// refusal is one nobody will open up without being asked.
pub const UNREADABLE_AFTER: Millis = 60 * 60 * 1000;

/// Whether a file first found unreadable at `first`, last found so at `last` (before this
/// run), and again now (`now`), has just stayed so past [`UNREADABLE_AFTER`]: once, by the
/// first run that finds it refused that long (its record keeps `first` and `last`).
pub(super) fn unreadable_too_long(first: Millis, last: Millis, now: Millis) -> bool {
    last.saturating_sub(first) < UNREADABLE_AFTER && now.saturating_sub(first) >= UNREADABLE_AFTER
}

/// The `not_taken` event of a file of `flow` the login has not been allowed to read for
/// [`UNREADABLE_AFTER`] (run `run`; `path` as its report line names it, `detail` that line's
/// detail). Stored with the file's record (`lifecycle::unreadable`), once.
pub(super) fn unreadable(flow: &str, run: u64, path: &str, detail: &str, at: Millis) -> NewEvent {
    NewEvent {
        flow: flow.to_string(),
        at,
        kind: EventKind::NotTaken,
        subject: path.to_string(),
        detail: detail.to_string(),
        run: Some(run),
    }
}

/// The daemon's log line of an event that was just recorded.
pub(super) fn log(flow: &str, kind: EventKind, subject: &str, detail: &str) {
    let subject = (!subject.is_empty()).then(|| tracing::field::display(subject));
    // `unreachable` and `recovered` say what the report does not (runs in a row).
    if matches!(kind, EventKind::Failed | EventKind::Quarantined) {
        tracing::warn!(target: REPORT_LOG_TARGET, flow = %flow, event = %kind.as_str(), subject, detail = %detail, "Event.");
    } else {
        tracing::warn!(flow = %flow, event = %kind.as_str(), subject, detail = %detail, "Event.");
    }
}

/// The flow's health after `report`, and the events the run raises.
pub(super) fn judge(flow: &Flow, prev: &FlowHealth, report: &RunReport, now: Millis) -> (FlowHealth, Vec<NewEvent>) {
    let mut health = prev.clone();
    let mut events = Vec::new();
    let event = |kind: EventKind, subject: &str, detail: String| NewEvent {
        flow: flow.name.clone(),
        at: now,
        kind,
        subject: subject.to_string(),
        detail,
        run: Some(report.run),
    };
    // Quarantined files (the run's own, and responses refused by the response's steps) raised
    // theirs as they were recorded ([`quarantined`]).
    let unreachable = report.unreachable();
    match report.status {
        RunStatus::Ok => {
            if health.alerting {
                let detail = format!("run {} succeeded after {} failing run(s)", report.run, health.failing_streak);
                events.push(event(EventKind::Recovered, "", detail));
            }
            health.unreachable_streak = 0;
            health.failing_streak = 0;
            health.alerting = false;
            health.last_ok = Some(now);
        }
        _ if unreachable => {
            health.unreachable_streak += 1;
            health.failing_streak += 1;
            if health.unreachable_streak == flow.alerts.unreachable_after || past_an_untold_threshold(prev, flow.alerts.unreachable_after) {
                let why = report.error.clone().unwrap_or_default();
                let detail = format!("{} runs in a row could not reach an endpoint; last: {why}", health.unreachable_streak);
                events.push(event(EventKind::Unreachable, "", detail));
                health.alerting = true;
            }
        }
        _ => {
            failing(&mut health);
            events.push(event(EventKind::Failed, "", failure_detail(report)));
        }
    }
    (health, events)
}

/// The flow's health after run `run`, interrupted (the process killed, or the run cut off at
/// a daemon's stop) after `failed` (path, why) failed for good in it, and the events that
/// raises: judged from the ledger by the run that closes it (`engine::close_interrupted`),
/// as its own end would have. Files that failed for good raise `failed` and count as a
/// failing run, as they would have at the run's end: the interruption does not make the
/// partner's trouble any less real. Nothing failed for good: health as it was, no event;
/// the interruption is wharf's, not the partner's, and the files it left are resumed and
/// judged by the next run (one that failed only for a passing reason included: failing
/// again, that run tells).
pub(super) fn judge_interrupted(
    flow: &str,
    prev: &FlowHealth,
    run: u64,
    failed: &[(String, String)],
    now: Millis,
) -> (FlowHealth, Vec<NewEvent>) {
    let mut health = prev.clone();
    if failed.is_empty() {
        return (health, Vec::new());
    }
    failing(&mut health);
    let files = failed.iter().map(|(path, why)| (path.as_str(), why.as_str()));
    let detail = files_failed(&format!("run {run} (interrupted before its end)"), files);
    let event = NewEvent { flow: flow.to_string(), at: now, kind: EventKind::Failed, subject: String::new(), detail, run: Some(run) };
    (health, vec![event])
}

/// A run that raises `failed`: the flow is alerting, one more run failing, and no longer
/// unreachable (something answered).
fn failing(health: &mut FlowHealth) {
    health.unreachable_streak = 0;
    health.failing_streak += 1;
    health.alerting = true;
}

/// Whether an outage under way is already past `threshold` runs with nothing told: the
/// threshold was lowered during it (from 5 to 2 at the fourth run, which used to raise
/// nothing for the whole outage). Told or not is known only when no `failed` event came
/// since the last good run (the streaks are then equal, and `alerting` means this outage's
/// `unreachable` was raised); otherwise the threshold itself decides, as before.
fn past_an_untold_threshold(prev: &FlowHealth, threshold: u32) -> bool {
    prev.unreachable_streak >= threshold && prev.failing_streak == prev.unreachable_streak && !prev.alerting
}

/// The run's files, then the response files it took (or tried to).
fn all_files(report: &RunReport) -> impl Iterator<Item = &super::FileReport> {
    report.files.iter().chain(report.responses.iter().filter_map(|r| r.file.as_ref()))
}

/// Why a run failed, in one line: the abort reason, or the failed files.
fn failure_detail(report: &RunReport) -> String {
    if let Some(e) = &report.error {
        return format!("run {} aborted: {e}", report.run);
    }
    let failed = all_files(report).filter(|f| f.outcome == Outcome::Failed).map(|f| (f.path.as_str(), f.detail.as_str()));
    files_failed(&format!("run {}", report.run), failed)
}

/// `RUN: PATH failed: WHY`, or `RUN: N files failed; first PATH: WHY` (`RUN failed` for none),
/// of `failed` (path, why), `run` saying which run.
fn files_failed<'a>(run: &str, mut failed: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let Some((path, why)) = failed.next() else { return format!("{run} failed") };
    match failed.count() {
        0 => format!("{run}: {path} failed: {why}"),
        rest => format!("{run}: {} files failed; first {path}: {why}", rest + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::ErrorKind;
    use crate::engine::FileReport;

    fn flow() -> Flow {
        crate::engine::tests::sample_flow()
    }

    fn report(status: RunStatus, kind: Option<ErrorKind>, files: &[(Outcome, &str)]) -> RunReport {
        let mut r = RunReport::new(&flow(), 7);
        r.status = status;
        r.error_kind = kind;
        r.error = kind.map(|k| format!("boom ({k})"));
        r.files = files
            .iter()
            .map(|(o, p)| FileReport {
                path: p.to_string(),
                outcome: *o,
                detail: "why".into(),
                targets: vec![],
                bytes: 0,
                error_kind: None,
                records: None,
            })
            .collect();
        r
    }

    fn kinds(evs: &[NewEvent]) -> Vec<EventKind> {
        evs.iter().map(|e| e.kind).collect()
    }

    #[test]
    fn unreachable_is_raised_once_at_the_threshold_and_recovery_once() {
        let f = flow();
        let down = report(RunStatus::Aborted, Some(ErrorKind::Transient), &[]);
        let mut h = FlowHealth::default();
        let mut raised = Vec::new();
        for _ in 0..5 {
            let (next, evs) = judge(&f, &h, &down, 1);
            raised.extend(kinds(&evs));
            h = next;
        }
        assert_eq!(raised, [EventKind::Unreachable], "threshold 3: one event in five runs");
        assert_eq!(h.unreachable_streak, 5);
        let ok = report(RunStatus::Ok, None, &[]);
        let (h, evs) = judge(&f, &h, &ok, 2);
        assert_eq!(kinds(&evs), [EventKind::Recovered]);
        assert!(evs[0].detail.contains("after 5 failing run(s)"), "{}", evs[0].detail);
        assert_eq!(evs[0].run, Some(7));
        let (_, evs) = judge(&f, &h, &ok, 3);
        assert!(evs.is_empty(), "recovery is announced once");
    }

    #[test]
    fn a_threshold_lowered_during_an_outage_raises_its_event_at_the_next_run() {
        let mut f = flow();
        f.alerts.unreachable_after = 5;
        let down = report(RunStatus::Aborted, Some(ErrorKind::Transient), &[]);
        let mut h = FlowHealth::default();
        for _ in 0..3 {
            let (next, evs) = judge(&f, &h, &down, 1);
            assert!(evs.is_empty());
            h = next;
        }
        // Was: the streak never equalled the new threshold again, so the outage went untold.
        f.alerts.unreachable_after = 2;
        let mut raised = Vec::new();
        for _ in 0..3 {
            let (next, evs) = judge(&f, &h, &down, 1);
            raised.extend(kinds(&evs));
            h = next;
        }
        assert_eq!(raised, [EventKind::Unreachable], "once, at the next run");

        // After a `failed` event, an outage is told at its threshold, as before.
        let failed = report(RunStatus::Failed, None, &[]);
        let (mut h, _) = judge(&f, &FlowHealth::default(), &failed, 1);
        let mut raised = Vec::new();
        for _ in 0..4 {
            let (next, evs) = judge(&f, &h, &down, 1);
            raised.extend(kinds(&evs));
            h = next;
        }
        assert_eq!(raised, [EventKind::Unreachable]);
    }

    #[test]
    fn a_short_outage_raises_nothing() {
        let f = flow();
        let down = report(RunStatus::Aborted, Some(ErrorKind::Transient), &[]);
        let (h, a) = judge(&f, &FlowHealth::default(), &down, 1);
        let (h, b) = judge(&f, &h, &down, 1);
        let (h, c) = judge(&f, &h, &report(RunStatus::Ok, None, &[]), 1);
        assert!(a.is_empty() && b.is_empty() && c.is_empty());
        assert_eq!(h, FlowHealth { last_ok: Some(1), ..Default::default() });
    }

    #[test]
    fn failures_and_quarantines_raise_events_every_time() {
        let f = flow();
        let refused = report(RunStatus::Aborted, Some(ErrorKind::AuthFailed), &[]);
        let (h, evs) = judge(&f, &FlowHealth::default(), &refused, 1);
        assert_eq!(kinds(&evs), [EventKind::Failed]);
        assert!(evs[0].detail.contains("aborted: boom"), "{}", evs[0].detail);
        assert_eq!(evs[0].run, Some(7), "the run that failed");
        // A quarantined file's event was stored with its record: the run's end adds none.
        let mixed = report(RunStatus::Failed, None, &[(Outcome::Quarantined, "in/a.csv"), (Outcome::Failed, "in/b.csv")]);
        let (h, evs) = judge(&f, &h, &mixed, 2);
        assert_eq!(kinds(&evs), [EventKind::Failed]);
        assert_eq!(evs[0].run, Some(7), "the run that failed");
        assert!(evs[0].detail.contains("in/b.csv failed: why"), "{}", evs[0].detail);
        assert_eq!(h.failing_streak, 2);
        let (_, evs) = judge(&f, &h, &report(RunStatus::Ok, None, &[(Outcome::Quarantined, "in/c.csv")]), 3);
        assert_eq!(kinds(&evs), [EventKind::Recovered]);
    }

    /// A run interrupted before its end (killed, cut off at a stop) is judged from the files
    /// it failed for good: some, a `failed` event naming them, counted as a failing run; none,
    /// nothing (the interruption is wharf's; its files are judged by the run resuming them).
    #[test]
    fn an_interrupted_run_fails_by_its_files_failed_for_good_only() {
        let unreachable = FlowHealth { unreachable_streak: 2, failing_streak: 2, ..Default::default() };
        let (h, evs) = judge_interrupted("t", &unreachable, 7, &[], 1);
        assert_eq!((h, evs), (unreachable.clone(), vec![]));
        let one = [("/in/a.csv".to_string(), "why".to_string())];
        let (h, evs) = judge_interrupted("t", &unreachable, 7, &one, 1);
        assert_eq!(kinds(&evs), [EventKind::Failed]);
        assert_eq!((evs[0].flow.as_str(), evs[0].run, evs[0].subject.as_str()), ("t", Some(7), ""));
        assert_eq!(evs[0].detail, "run 7 (interrupted before its end): /in/a.csv failed: why");
        assert_eq!(h, FlowHealth { unreachable_streak: 0, failing_streak: 3, alerting: true, ..Default::default() });
        let two = [one[0].clone(), ("/in/b.csv".to_string(), "other".to_string())];
        let (_, evs) = judge_interrupted("t", &h, 8, &two, 1);
        assert_eq!(evs[0].detail, "run 8 (interrupted before its end): 2 files failed; first /in/a.csv: why");
        // The next good run recovers from it, as from any failed run.
        let (h, _) = judge_interrupted("t", &FlowHealth::default(), 7, &one, 1);
        let (_, evs) = judge(&flow(), &h, &report(RunStatus::Ok, None, &[]), 2);
        assert_eq!(kinds(&evs), [EventKind::Recovered]);
    }

    /// A `source.command` that exits non-zero is transient (the next run may succeed), but no
    /// endpoint is down: each run raises `failed` with the command's message, never
    /// `unreachable`.
    #[test]
    fn a_failing_source_command_is_a_failure_not_an_unreachable_endpoint() {
        let f = flow();
        let mut export = report(RunStatus::Aborted, Some(ErrorKind::Transient), &[]);
        export.aborted_by_command = true;
        export.error = Some("flow t: source command `export.sh` exited with status 1".into());
        let mut h = FlowHealth::default();
        let mut raised = Vec::new();
        for _ in 0..4 {
            let (next, evs) = judge(&f, &h, &export, 1);
            raised.extend(evs);
            h = next;
        }
        assert_eq!(kinds(&raised), [EventKind::Failed; 4]);
        assert!(raised[0].detail.contains("source command `export.sh` exited with status 1"), "{}", raised[0].detail);
        assert_eq!((h.unreachable_streak, h.failing_streak), (0, 4));
    }

    /// Responses are files too: one that could not be taken is named in `failed` (one refused
    /// by the response's steps raised `quarantined` when it was recorded, not here).
    #[test]
    fn responses_raise_the_events_of_their_files() {
        use crate::engine::awaits::ResponseReport;
        use crate::ledger::AwaitState;
        let f = flow();
        let resp = |path: &str, outcome: Outcome, detail: &str, state: AwaitState| ResponseReport {
            request: "a.csv".into(),
            expected: path.into(),
            state,
            detail: String::new(),
            file: Some(FileReport {
                path: format!("/{path}"),
                outcome,
                detail: detail.into(),
                targets: vec![],
                bytes: 0,
                error_kind: None,
                records: None,
            }),
        };
        let mut r = report(RunStatus::Failed, None, &[]);
        r.responses = vec![
            resp("out/a.ack", Outcome::Quarantined, "the file is empty", AwaitState::Rejected),
            resp("out/b.ack", Outcome::Failed, "sink acks: /b.ack already exists", AwaitState::Waiting),
        ];
        let (_, evs) = judge(&f, &FlowHealth::default(), &r, 1);
        assert_eq!(kinds(&evs), [EventKind::Failed]);
        assert!(evs[0].detail.contains("/out/b.ack failed: sink acks: /b.ack already exists"), "{}", evs[0].detail);
    }
}
