//! Files an earlier run left in flight before their delivery was done (`claimed`, `staging`,
//! `staged`, `processed`, `delivering`: a crash) whose source the partner removed since: no
//! longer listed, nothing else would take them up, and they stayed in flight for ever. The
//! run finishes each through the lifecycle, as it resumes any file ([`finish`]): from its
//! staged copy when it is whole (targets recorded before the crash found whole count as
//! delivered; no second copy), else it `vanished` (nothing delivered) or failed for good
//! (some sinks confirmed: where it went, and that its source is gone). `wharf plan` says it
//! beforehand ([`judge`]).
//!
//! Only a source really gone: one still at its path (the flow now excludes it, or its
//! readiness keeps it out of the listing) or under a subfolder the listing could not read
//! (`unlisted`) is left as it is. Files left failing, delivered or being quarantined are
//! finished elsewhere (`left_failing`, the lifecycle, `quarantine::finish_left_aside`).

use std::path::Path;

use crate::config::Flow;
use crate::endpoint::{Endpoint, EndpointError, Entry, RemotePath};
use crate::ledger::{FileRecord, FileState, Ledger, LedgerError};

use super::discover::Unlisted;
use super::error::FileError;
use super::lifecycle::{self, Ctx};
use super::{FileReport, disposition, endpoints, stage};

/// Whether `rec` is a file left in flight before its delivery was done (see the module
/// doc), not one left failing (`left_failing`).
pub(super) fn undelivered(rec: &FileRecord) -> bool {
    matches!(rec.state, FileState::Claimed | FileState::Staging | FileState::Staged | FileState::Processed | FileState::Delivering)
        && disposition::failing_move(rec).is_none()
}

/// Where the file of `rec` is under the flow's source folder (`rel`, what templates see),
/// when its source is gone: `None` while it is still at its path, when it is under a
/// subfolder the listing could not read (`unlisted`), or no longer under the source folder
/// (the flow was edited).
pub(super) async fn gone<'a>(
    flow: &Flow,
    source: &dyn Endpoint,
    path: &'a RemotePath,
    unlisted: &[Unlisted],
) -> Result<Option<&'a str>, EndpointError> {
    let Some(rel) = path.strip_prefix(&flow.source.path) else { return Ok(None) };
    if unlisted.iter().any(|u| u.holds(path)) {
        return Ok(None);
    }
    Ok(source.stat(path).await?.is_none().then_some(rel))
}

/// Why such a file was not judged now: whether its source is still there could not be looked
/// at (the run's report line, and `wharf plan`'s). Its record is left as it is.
fn unjudged(state: FileState, e: &dyn std::fmt::Display) -> String {
    format!(
        "left {} by an earlier run and no longer listed; whether its source is still there could not be looked at: {e} (the next run looks again)",
        state.as_str()
    )
}

/// Finishes a file of `rec` (see the module doc) through the lifecycle, when its source is
/// gone; `None` when it is not one or its source is not gone. The `bool`: whether the run
/// must stop.
pub(super) async fn finish(
    cx: &Ctx<'_>,
    rec: &FileRecord,
    entry: &Entry,
    unlisted: &[Unlisted],
) -> Result<Option<(FileReport, bool)>, LedgerError> {
    if !undelivered(rec) {
        return Ok(None);
    }
    match gone(cx.flow, &*cx.source, &entry.path, unlisted).await {
        Ok(Some(rel)) => Ok(Some(lifecycle::process(cx, entry, rel, None).await?)),
        Ok(None) => Ok(None),
        Err(e) => {
            let e = FileError::from(e);
            Ok(Some(FileReport::left_unjudged(&cx.flow.name, &entry.path, &e, unjudged(rec.state, &e))))
        }
    }
}

/// What the run does with such a file, as [`finish`] does it, judged by looking only.
pub(super) enum Judged {
    /// Finished from what the crashed run left (its staged copy, or targets it recorded).
    Resume,
    /// Nothing delivered: it vanished (the run's words).
    Vanish(String),
    /// Some sinks confirmed, the rest cannot be: failed for good (the run's words).
    Fail(String),
    /// Not judged: why.
    Unjudged(String),
}

/// What the run does with the file of `rec` (see the module doc): `None` when it is not one
/// or its source is not gone. `staging`: the staging folder, to look at the staged copy
/// (`None`: not looked at, a file that may be finished from it is shown resumed); left
/// `delivering` without one, the targets recorded are looked at on the sinks (opened then).
pub(super) async fn judge(
    flow: &Flow,
    source: &dyn Endpoint,
    ledger: &Ledger,
    rec: &FileRecord,
    unlisted: &[Unlisted],
    staging: Option<&Path>,
) -> Result<Option<Judged>, LedgerError> {
    if !undelivered(rec) {
        return Ok(None);
    }
    let Ok(path) = RemotePath::parse(&rec.path) else { return Ok(None) };
    match gone(flow, source, &path, unlisted).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(None),
        Err(e) => return Ok(Some(Judged::Unjudged(unjudged(rec.state, &FileError::from(e))))),
    }
    let staged = staging.map(|d| stage::staging_path(d, &flow.name, &path));
    let sinks = match rec.state {
        FileState::Delivering if rec.deliveries.iter().any(|d| !d.done) => {
            let names: Vec<&str> = flow.sinks.iter().map(|s| s.endpoint.as_str()).collect();
            match endpoints::open_all(flow, &names).await {
                Ok(eps) => flow.sinks.iter().filter_map(|s| eps.get(&s.endpoint).cloned()).collect(),
                Err(e) => return Ok(Some(Judged::Unjudged(unjudged(rec.state, &e)))),
            }
        }
        _ => Vec::new(),
    };
    Ok(Some(match lifecycle::resumable(flow, ledger, rec, staged.as_deref(), &sinks).await {
        Ok(true) => Judged::Resume,
        Ok(false) if rec.deliveries.iter().any(|d| d.done) => Judged::Fail(lifecycle::lost_source(flow, rec)),
        Ok(false) => Judged::Vanish(lifecycle::VANISHED.to_string()),
        Err(FileError::Ledger(e)) => return Err(e),
        Err(e) => Judged::Unjudged(unjudged(rec.state, &e)),
    }))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::SystemTime;

    use crate::config::Flow;
    use crate::endpoint::RemotePath;
    use crate::engine::plan::{Action, Plan, PlannedFile, plan};
    use crate::engine::{Outcome, RunOptions, RunReport, halt, run_once, stage};
    use crate::ledger::{Durability, FileRecord, FileState, Ledger, SourceFate};

    /// Bigger than what is downloaded in one piece: its download is recorded `staging`.
    fn body() -> Vec<u8> {
        vec![b'x'; stage::WHOLE_MAX as usize + 1]
    }

    /// A flow from `d/src/in` to `d/dst/inbox` and `d/dst/archive`, the source moved to
    /// `/done` once delivered, with `extra`.
    fn flow(d: &Path, extra: &str) -> Flow {
        let (src, dst) = (d.join("src"), d.join("dst"));
        std::fs::create_dir_all(src.join("in")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, include: ['*.csv'] }}\n\
             sinks:\n  - {{ endpoint: erp, path: /inbox }}\n  - {{ endpoint: erp, path: /archive }}\n\
             after: {{ success: {{ move_to: /done }} }}\n{extra}",
            src.display(),
            dst.display()
        );
        crate::config::load_flow_str(&text, &d.join("t.yaml")).unwrap()
    }

    async fn run(flow: &Flow, ledger: &Ledger, d: &Path) -> RunReport {
        run_once(flow, ledger, &RunOptions::new(d.join("staging")), &mut |_| {}).await.unwrap()
    }

    async fn planned(flow: &Flow, ledger: &Ledger, d: &Path) -> Plan {
        plan(flow, Some(ledger), SystemTime::now(), Some(&d.join("staging"))).await.unwrap()
    }

    /// Where the staged copy of `in/a.csv` is.
    fn staged(d: &Path) -> std::path::PathBuf {
        stage::staging_path(&d.join("staging"), "t", &RemotePath::parse("in/a.csv").unwrap())
    }

    /// What the ledger held of `in/a.csv` at each halt point a run on this thread reached,
    /// the last time it reached it.
    type Held = Rc<RefCell<BTreeMap<String, FileRecord>>>;

    /// Runs `flow` once over `d/src/in/a.csv` (delivered), recording what the ledger held at
    /// each halt point; then leaves the source gone (the partner removed it, or `after.success`
    /// moved it: put back nowhere) and no staged copy.
    async fn first_run(flow: &Flow, ledger: &Arc<Ledger>, d: &Path) -> Held {
        let held: Held = Default::default();
        let (l, at) = (ledger.clone(), held.clone());
        let hook = halt::hook::set(move |p| {
            if let Some(rec) = l.file("t", "in/a.csv").unwrap() {
                at.borrow_mut().insert(p.to_string(), rec);
            }
        });
        let r = run(flow, ledger, d).await;
        drop(hook);
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        std::fs::remove_file(d.join("src/done/a.csv")).unwrap();
        assert!(!staged(d).exists());
        held
    }

    /// Puts back the record held at `point` as a crash there leaves it (`edit` changes it).
    fn crash_at(held: &Held, ledger: &Ledger, point: &str, edit: impl FnOnce(&mut FileRecord)) -> FileRecord {
        let mut rec = held.borrow().get(point).cloned().unwrap_or_else(|| panic!("halt point {point} not reached"));
        edit(&mut rec);
        ledger.put_file_with("t", &rec, Durability::Durable).unwrap();
        rec
    }

    /// `in/a.csv` left as a run killed while uploading it to the second sink leaves it (the
    /// first confirmed), its source then gone and its staged copy whole.
    async fn left_delivering(flow: &Flow, d: &Path) -> Arc<Ledger> {
        std::fs::write(d.join("src/in/a.csv"), body()).unwrap();
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let held = first_run(flow, &ledger, d).await;
        crash_at(&held, &ledger, "uploading", |_| {});
        std::fs::remove_file(d.join("dst/archive/a.csv")).unwrap();
        std::fs::write(staged(d), body()).unwrap();
        ledger
    }

    fn one(p: &Plan) -> &Action {
        let [PlannedFile { action, .. }] = &p.files[..] else { panic!("{p:#?}") };
        action
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    /// Killed while downloading (`staging`), or with the download done but not yet recorded
    /// (`staged` and no staged copy left), then the partner removes the file: the next run
    /// records it vanished, once, as the plan says. Before, it stayed in flight for ever.
    #[tokio::test]
    async fn a_file_left_before_its_delivery_with_its_source_and_staged_copy_gone_vanished() {
        for state in [FileState::Staging, FileState::Staged] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let flow = flow(d, "");
            std::fs::write(d.join("src/in/a.csv"), body()).unwrap();
            let ledger = Arc::new(Ledger::in_memory().unwrap());
            let held = first_run(&flow, &ledger, d).await;
            crash_at(&held, &ledger, "staging", |r| r.state = state);
            std::fs::remove_dir_all(d.join("dst")).unwrap();
            let p = planned(&flow, &ledger, d).await;
            assert!(matches!(one(&p), Action::Skip { why } if why == crate::engine::lifecycle::VANISHED), "{state:?}: {p:#?}");
            let r = run(&flow, &ledger, d).await;
            let [f] = &r.files[..] else { panic!("{state:?}: {r:#?}") };
            assert_eq!((f.outcome, f.detail.as_str()), (Outcome::Skipped, crate::engine::lifecycle::VANISHED), "{state:?}");
            assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Vanished, "{state:?}");
            assert!(!d.join("dst/inbox").exists(), "{state:?}: nothing delivered");
            // Said once.
            assert!(run(&flow, &ledger, d).await.files.is_empty(), "{state:?}");
            assert!(planned(&flow, &ledger, d).await.files.is_empty(), "{state:?}");
        }
    }

    /// Killed once the first sink confirmed, as the second was uploading, then the partner
    /// removes the file: with its staged copy whole, the next run finishes it from it (the
    /// first sink not written again), the source recorded gone as after any delivery; as the
    /// plan says. Before, it stayed `delivering` for ever, never recorded delivered.
    #[tokio::test]
    async fn a_file_left_delivering_with_its_source_gone_is_finished_from_its_staged_copy() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "");
        std::fs::write(d.join("src/in/a.csv"), body()).unwrap();
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let held = first_run(&flow, &ledger, d).await;
        let rec = crash_at(&held, &ledger, "uploading", |_| {});
        assert_eq!(rec.state, FileState::Delivering);
        assert_eq!(rec.deliveries.iter().filter(|d| d.done).count(), 1, "{rec:?}");
        std::fs::remove_file(d.join("dst/archive/a.csv")).unwrap();
        let inbox = std::fs::metadata(d.join("dst/inbox/a.csv")).unwrap().modified().unwrap();
        std::fs::write(staged(d), body()).unwrap();
        let p = planned(&flow, &ledger, d).await;
        assert!(
            matches!(one(&p), Action::Resume { state: FileState::Delivering, then: Some(then), .. } if then == "the source is no longer there: not moved"),
            "{p:#?}"
        );
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, Outcome::Delivered, "{r:#?}");
        assert_eq!(f.detail, "delivered to erp:/inbox/a.csv, erp:/archive/a.csv; source no longer there, so not moved");
        assert_eq!(std::fs::read(d.join("dst/archive/a.csv")).unwrap(), body());
        assert_eq!(files(&d.join("dst/inbox")), ["a.csv"]);
        assert_eq!(std::fs::metadata(d.join("dst/inbox/a.csv")).unwrap().modified().unwrap(), inbox, "delivered twice");
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!((rec.state, rec.source_fate), (FileState::Done, SourceFate::Kept));
        assert!(!staged(d).exists());
        assert!(run(&flow, &ledger, d).await.files.is_empty());
    }

    /// A run asked to stop (`wharf serve` shutting down) before it comes to the files an
    /// earlier run left whose source is gone starts none of them: the one left delivering
    /// stays so, nothing written to the sink it had not confirmed, and the next run
    /// finishes it. Before, a whole delivery was started from its staged copy after the stop.
    #[tokio::test]
    async fn a_run_asked_to_stop_leaves_a_file_left_in_flight_for_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "");
        let ledger = left_delivering(&flow, d).await;
        let opts = RunOptions::new(d.join("staging"));
        opts.stop.request();
        let r = run_once(&flow, &ledger, &opts, &mut |_| {}).await.unwrap();
        assert!(r.files.is_empty(), "{r:#?}");
        assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Delivering);
        assert!(!d.join("dst/archive/a.csv").exists(), "started after the stop");
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, Outcome::Delivered, "{r:#?}");
        assert_eq!(std::fs::read(d.join("dst/archive/a.csv")).unwrap(), body());
    }

    /// With `on_error: stop`, a run whose listed file failed delivers nothing more: the file
    /// an earlier run left delivering (its source gone, its staged copy whole) waits for a run
    /// that does not stop, nothing written to the sink it had not confirmed; one every sink
    /// had confirmed, left as its source was being moved, is finished all the same (nothing
    /// is delivered). Before, the end-of-run sweep delivered the first after the failure.
    #[tokio::test]
    async fn a_run_stopped_by_a_failure_delivers_no_file_left_in_flight_but_finishes_a_delivered_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "on_error: stop\n");
        let ledger = left_delivering(&flow, d).await;
        // Left as its move to /done was done but not recorded.
        std::fs::write(d.join("src/done/c.csv"), b"c").unwrap();
        let done = |sink| crate::ledger::Delivery { sink, target: "inbox/c.csv".into(), done: true, replaces: None };
        let moving = FileRecord {
            path: "in/c.csv".into(),
            identity: "p=in/c.csv|s=1|m=5".into(),
            size: 1,
            mtime: Some(5),
            state: FileState::Disposing,
            disposed_to: Some("done/c.csv".into()),
            deliveries: vec![done(0), done(1)],
            ..Default::default()
        };
        ledger.put_file("t", &moving).unwrap();
        // A listed file the sink refuses: its name is taken there.
        std::fs::write(d.join("src/in/b.csv"), b"b").unwrap();
        std::fs::write(d.join("dst/inbox/b.csv"), b"theirs").unwrap();
        let r = run(&flow, &ledger, d).await;
        let outcomes: Vec<_> = r.files.iter().map(|f| (f.path.as_str(), f.outcome)).collect();
        assert_eq!(outcomes, [("/in/b.csv", Outcome::Failed), ("/in/c.csv", Outcome::Delivered)], "{r:#?}");
        assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Delivering);
        assert!(!d.join("dst/archive/a.csv").exists(), "delivered after the failure");
        assert_eq!(ledger.file("t", "in/c.csv").unwrap().unwrap().state, FileState::Done);
        // The name freed, the next run delivers both.
        std::fs::remove_file(d.join("dst/inbox/b.csv")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!((r.counts.delivered, r.counts.failed), (2, 0), "{r:#?}");
        assert_eq!(std::fs::read(d.join("dst/archive/a.csv")).unwrap(), body());
    }

    /// The same in a flow with content steps, their output gone with the crash (a staging
    /// folder emptied of it) and the original staged whole: the output is made again from it
    /// and delivered to the second sink. Before, it was downloaded again, its source gone: failed.
    #[tokio::test]
    async fn a_file_left_delivering_whose_steps_output_is_gone_is_finished_from_its_staged_copy() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "steps:\n  - parse: { format: csv }\nquarantine: { endpoint: erp, path: /rejected }\n");
        let body = b"a,b\n1,2\n";
        std::fs::write(d.join("src/in/a.csv"), body).unwrap();
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let held = first_run(&flow, &ledger, d).await;
        crash_at(&held, &ledger, "uploading", |_| {});
        let delivered = std::fs::read(d.join("dst/inbox/a.csv")).unwrap();
        std::fs::remove_file(d.join("dst/archive/a.csv")).unwrap();
        std::fs::create_dir_all(staged(d).parent().unwrap()).unwrap();
        std::fs::write(staged(d), body).unwrap();
        assert!(matches!(one(&planned(&flow, &ledger, d).await), Action::Resume { state: FileState::Delivering, .. }));
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, Outcome::Delivered, "{r:#?}");
        assert_eq!(std::fs::read(d.join("dst/archive/a.csv")).unwrap(), delivered);
        assert_eq!(files(&d.join("dst/inbox")), ["a.csv"]);
    }

    /// The same with no staged copy left: the second sink cannot be delivered to. Recorded
    /// failed for good, saying where it went and why the rest cannot be, as the plan says;
    /// not retried by every run. Before, it stayed `delivering` for ever.
    #[tokio::test]
    async fn a_file_left_half_delivered_with_its_source_and_staged_copy_gone_fails_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "");
        std::fs::write(d.join("src/in/a.csv"), body()).unwrap();
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let held = first_run(&flow, &ledger, d).await;
        crash_at(&held, &ledger, "uploading", |_| {});
        std::fs::remove_file(d.join("dst/archive/a.csv")).unwrap();
        let p = planned(&flow, &ledger, d).await;
        let Action::Fail { why } = one(&p) else { panic!("{p:#?}") };
        assert_eq!(
            why,
            "delivered to erp:/inbox/a.csv only: its source is gone (removed or moved away since) and no whole staged copy of it \
             is left, so it cannot be delivered to erp:/archive; not retried (sent again, the next run delivers it there)"
        );
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!((f.outcome, &f.detail), (Outcome::Failed, why), "{r:#?}");
        assert_eq!(f.targets, ["erp:/inbox/a.csv"]);
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!((rec.state, rec.source_fate, rec.disposed_to), (FileState::Failed, SourceFate::Unknown, None));
        assert!(!d.join("dst/archive/a.csv").exists());
        assert!(run(&flow, &ledger, d).await.files.is_empty());
    }

    /// A file left in flight that is not listed while its source is still there (the flow
    /// now takes other names) is left as it is, by the run and the plan.
    #[tokio::test]
    async fn a_file_left_in_flight_whose_source_is_still_there_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, "");
        std::fs::write(d.join("src/in/a.csv"), body()).unwrap();
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let held = first_run(&flow, &ledger, d).await;
        let rec = crash_at(&held, &ledger, "staging", |_| {});
        std::fs::write(d.join("src/in/a.csv"), body()).unwrap();
        let mut narrower = flow.clone();
        narrower.source.include = globset::GlobSetBuilder::new().add(globset::Glob::new("*.txt").unwrap()).build().unwrap();
        assert!(planned(&narrower, &ledger, d).await.files.is_empty());
        assert!(run(&narrower, &ledger, d).await.files.is_empty());
        assert_eq!(ledger.file("t", "in/a.csv").unwrap().unwrap(), rec);
        assert!(d.join("src/in/a.csv").exists());
    }
}
