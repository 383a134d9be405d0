//! Files an earlier run left failing for good, its source moved by `after.failure: move_to`
//! before the failure was recorded (a crash between the two): the record still in flight,
//! with the move's target recorded before the move (`disposition::after_failure`), and the
//! source no longer listed. The run finishes such a file ([`finish`]) and `wharf plan` shows
//! it, both from [`judge`]. Only for those: files left being delivered or quarantined are
//! finished by the lifecycle and `quarantine::finish_left_aside`, files left before their
//! delivery was done by `left_gone`.

use crate::config::Flow;
use crate::endpoint::{Endpoint, Entry, ErrorKind, RemotePath};
use crate::ledger::{FileRecord, FileState, LedgerError, SourceFate, Transition, now_millis};

use super::disposition::{self, Fate};
use super::error::FileError;
use super::lifecycle::{Ctx, dispose_companions};
use super::retry::retry;
use super::{FileReport, REPORT_LOG_TARGET, content, stage};

/// What the next run records of a file left failing (see the module doc), judged by looking
/// only: `None` when it is not one, or while its source is still at `path` (a run that lists
/// it again takes it again); else its report line and where its source was found moved (the
/// name recorded before the move, when it is there).
pub(super) async fn judge(
    flow: &Flow,
    source: &dyn Endpoint,
    rec: &FileRecord,
    path: &RemotePath,
) -> Result<Option<(String, Option<RemotePath>)>, FileError> {
    let Some(target) = disposition::failing_move(rec) else { return Ok(None) };
    if source.stat(path).await?.is_some() {
        return Ok(None);
    }
    let why = rec.last_error.as_ref().map_or("failed", |e| e.message.as_str());
    let (fate, moved) = match disposition::foresee(source, path, &flow.after_failure, Some(&target), Some(false), |_| false).await? {
        Fate::MovedBefore(t) => (format!("source moved to {t}"), Some(t)),
        _ => (
            format!(
                "source no longer at {path}, nor at {target}, the name recorded for it in the after.failure folder (moved or removed since)"
            ),
            None,
        ),
    };
    Ok(Some((format!("{why}; {fate}; finished after a crash (it had failed before it)"), moved)))
}

/// Why a file left failing was not judged now: where its source went could not be looked at
/// (the run's report line, and `wharf plan`'s).
pub(super) fn unjudged(e: &dyn std::fmt::Display) -> String {
    format!(
        "left failing by an earlier run, its source gone; where after.failure moved it could not be looked at: {e} (the next run looks again)"
    )
}

/// Finishes a file left failing (see the module doc), as [`judge`] says: recorded `failed`,
/// its source `Moved` to the name recorded when found there (else its fate `Unknown`), the
/// files that go with it (done file, checksum, row count) disposed of per `after.failure`
/// as `fail` does, its staged copy (if any) discarded. `None` when it is not one or its source is still at its
/// path. The `bool`: whether the run must stop.
pub(super) async fn finish(cx: &Ctx<'_>, mut rec: FileRecord, entry: &Entry) -> Result<Option<(FileReport, bool)>, LedgerError> {
    let flow = &cx.flow.name;
    let judged = retry(cx.flow, "check the after.failure move", || judge(cx.flow, &*cx.source, &rec, &entry.path)).await;
    let kind = rec.last_error.as_ref().map_or(ErrorKind::Protocol, |e| e.kind);
    match judged {
        Ok(None) => Ok(None),
        Ok(Some((detail, moved))) => {
            match &moved {
                Some(t) => disposition::record(&mut rec, &cx.flow.after_failure, Some(t)),
                None => {
                    rec.disposed_to = None;
                    rec.source_fate = SourceFate::Unknown;
                }
            }
            // Its done file, checksum, row count go as the data file went: the crash may have
            // come before they did (one already gone is passed over).
            dispose_companions(cx, entry, &cx.flow.after_failure).await;
            rec.state = FileState::Failed;
            rec.run = cx.run;
            rec.updated = now_millis();
            cx.store(Transition::File { flow: flow.clone(), rec }).await?;
            content::discard_with_outputs(&stage::staging_path(cx.staging_dir, flow, &entry.path)).await;
            tracing::error!(target: REPORT_LOG_TARGET, flow = %flow, path = %entry.path, kind = %kind.name(), error = %detail, "File failed.");
            Ok(Some((FileReport::failed(&entry.path, detail, kind), false)))
        }
        Err(FileError::Ledger(e)) => Err(e),
        Err(e) => Ok(Some(FileReport::left_unjudged(flow, &entry.path, &e, unjudged(&e)))),
    }
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
    use crate::engine::plan::{Action, PlannedFile, plan};
    use crate::engine::{Outcome, RunOptions, RunReport, halt, run_once};
    use crate::ledger::{Durability, FileRecord, FileResult, FileState, Ledger, SourceFate};

    /// A flow from `d/src/in` to `d/dst/inbox` (and `/archive` with `archive`), with `extra`.
    fn flow(d: &Path, archive: bool, extra: &str) -> Flow {
        let (src, dst) = (d.join("src"), d.join("dst"));
        std::fs::create_dir_all(src.join("in")).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        let archive = if archive { "  - { endpoint: erp, path: /archive }\n" } else { "" };
        let text = format!(
            "name: t\nendpoints:\n  partner: {{ type: local, root: {} }}\n  erp: {{ type: local, root: {} }}\n\
             source: {{ endpoint: partner, path: /in, include: ['*.csv'] }}\n\
             sinks:\n  - {{ endpoint: erp, path: /inbox }}\n{archive}retry: {{ attempts: 1, give_up_after: 1 }}\n{extra}",
            src.display(),
            dst.display()
        );
        crate::config::load_flow_str(&text, &d.join("t.yaml")).unwrap()
    }

    fn put(d: &Path, files: &[(&str, &[u8])]) {
        for (p, body) in files {
            let p = d.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
    }

    async fn run(flow: &Flow, ledger: &Ledger, d: &Path) -> RunReport {
        run_once(flow, ledger, &RunOptions::new(d.join("staging")), &mut |_| {}).await.unwrap()
    }

    /// What the ledger held of `in/a.csv` (its record and content result) at each halt point
    /// a run on this thread reached, the last time it reached it.
    type Held = Rc<RefCell<BTreeMap<String, (FileRecord, Option<FileResult>)>>>;

    /// Records what the ledger holds at every halt point (see [`Held`]) until the guard is
    /// dropped; at `uploading`, removes what is being uploaded to `d/dst/inbox` when `spoil`
    /// (the upload then finds its temporary file gone: passing trouble, as a dropped upload).
    fn held(ledger: &Arc<Ledger>, d: &Path, spoil: bool) -> (Held, halt::hook::Guard) {
        held_of(ledger, d, "in/a.csv", spoil)
    }

    /// [`held`], of the file `path`.
    fn held_of(ledger: &Arc<Ledger>, d: &Path, path: &'static str, spoil: bool) -> (Held, halt::hook::Guard) {
        let left: Held = Default::default();
        let (l, at, inbox) = (ledger.clone(), left.clone(), d.join("dst/inbox"));
        let hook = halt::hook::set(move |p| {
            if spoil && p == "uploading" {
                for e in std::fs::read_dir(&inbox).unwrap() {
                    std::fs::remove_file(e.unwrap().path()).unwrap();
                }
            }
            if let Some(rec) = l.file("t", path).unwrap() {
                at.borrow_mut().insert(p.to_string(), (rec, l.file_result("t", path).unwrap()));
            }
        });
        (left, hook)
    }

    fn at(held: &Held, point: &str) -> (FileRecord, Option<FileResult>) {
        held.borrow().get(point).cloned().unwrap_or_else(|| panic!("halt point {point} not reached"))
    }

    /// A run killed in `lifecycle::fail` between recording the `after.failure: move_to` name
    /// and the move (`failure_disposing`) leaves the source listed; the next run takes it
    /// again, and its target freed meanwhile, delivers it. Before, the name recorded stayed
    /// on the record while it was delivered: killed then (`renamed`), with the partner
    /// removing the source, the run after it recorded the file failed, "nor at
    /// /failed/a-1.csv", when it was being delivered — and the plan said so too.
    #[tokio::test]
    async fn a_failing_move_name_is_dropped_when_the_file_is_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, false, "after: { success: keep, failure: { move_to: /failed } }\n");
        put(d, &[("src/in/a.csv", b"a,1\n"), ("src/failed/a.csv", b"yesterday's\n"), ("dst/inbox/a.csv", b"someone else's\n")]);
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let (left, hook) = held(&ledger, d, false);
        assert_eq!(run(&flow, &ledger, d).await.counts.failed, 1);
        drop(hook);
        let (rec, _) = at(&left, "failure_disposing");
        assert_eq!(rec.disposed_to.as_deref(), Some("failed/a-1.csv"));
        // Killed before the move: the source is still where it was.
        ledger.put_file_with("t", &rec, Durability::Durable).unwrap();
        std::fs::rename(d.join("src/failed/a-1.csv"), d.join("src/in/a.csv")).unwrap();
        std::fs::remove_file(d.join("dst/inbox/a.csv")).unwrap();
        let (left, hook) = held(&ledger, d, false);
        assert_eq!(run(&flow, &ledger, d).await.counts.delivered, 1);
        drop(hook);
        let (rec, _) = at(&left, "renamed");
        assert_eq!((rec.state, rec.disposed_to.as_deref(), rec.source_fate), (FileState::Delivering, None, SourceFate::Kept));
        // Killed once delivered under its final name; the partner removes the source then.
        ledger.put_file_with("t", &rec, Durability::Durable).unwrap();
        std::fs::remove_file(d.join("src/in/a.csv")).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), Some(&d.join("staging"))).await.unwrap();
        assert!(p.files.iter().all(|f| !matches!(f.action, Action::Fail { .. })), "{p:#?}");
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.failed, 0, "{r:#?}");
        assert_ne!(ledger.file("t", "in/a.csv").unwrap().unwrap().state, FileState::Failed);
    }

    /// The same crash before the move, then the name recorded freed meanwhile (`done/x.csv`
    /// removed): the file taken again fails again and moves to the first free name then,
    /// `x.csv`, and another file of that name, delivered after it in the same run into the
    /// same folder, gets the next one — as the plan says beforehand. Before, the plan kept the
    /// name recorded for the failing file and gave the other file `done/x.csv`.
    #[tokio::test]
    async fn a_file_failing_again_takes_a_name_afresh_as_planned() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut flow = flow(d, false, "after: { success: { move_to: /done }, failure: { move_to: /done } }\n");
        flow.source.recursive = true;
        let glob = globset::GlobBuilder::new("**/*.csv").literal_separator(true).build().unwrap();
        flow.source.include = globset::GlobSetBuilder::new().add(glob).build().unwrap();
        flow.sinks[0].name = crate::template::NameTemplate::new("{{rel_dir}}-{{name}}").unwrap();
        flow.concurrency = Some(1);
        put(d, &[("src/in/a/x.csv", b"a\n"), ("src/done/x.csv", b"yesterday's\n"), ("dst/inbox/a-x.csv", b"someone else's\n")]);
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let (left, hook) = held_of(&ledger, d, "in/a/x.csv", false);
        assert_eq!(run(&flow, &ledger, d).await.counts.failed, 1);
        drop(hook);
        let (rec, _) = at(&left, "failure_disposing");
        assert_eq!(rec.disposed_to.as_deref(), Some("done/x-1.csv"));
        ledger.put_file_with("t", &rec, Durability::Durable).unwrap();
        std::fs::rename(d.join("src/done/x-1.csv"), d.join("src/in/a/x.csv")).unwrap();
        std::fs::remove_file(d.join("src/done/x.csv")).unwrap();
        put(d, &[("src/in/b/x.csv", b"b\n")]);
        let p = plan(&flow, Some(&ledger), SystemTime::now(), Some(&d.join("staging"))).await.unwrap();
        let [a, b] = &p.files[..] else { panic!("{p:#?}") };
        assert!(matches!(&a.action, Action::Fail { why } if why.ends_with("the source is moved to /done/")), "{p:#?}");
        assert!(
            matches!(&b.action, Action::Deliver { then, .. } if then == "move the source to /done/x-1.csv (/done/x.csv is taken)"),
            "{p:#?}"
        );
        let r = run(&flow, &ledger, d).await;
        let [a, b] = &r.files[..] else { panic!("{r:#?}") };
        assert!(a.outcome == Outcome::Failed && a.detail.ends_with("; source moved to /done/x.csv"), "{r:#?}");
        assert!(b.outcome == Outcome::Delivered && b.detail.ends_with("; source moved to /done/x-1.csv"), "{r:#?}");
        assert_eq!(std::fs::read(d.join("src/done/x.csv")).unwrap(), b"a\n");
        assert_eq!(std::fs::read(d.join("src/done/x-1.csv")).unwrap(), b"b\n");
    }

    /// A file whose quarantine itself fails (its location cannot be made) fails for good, its
    /// source moved by `after.failure`: killed between recording the move's name and the move
    /// (`failure_disposing`), and after the move (`failure_disposed`), the record is one of a
    /// file failing, in the state it was in before the quarantine (`state`), with no
    /// quarantine claimed in its content result; the next run records it failed, moved where
    /// recorded, as the plan says. Before, it was left `quarantining` with a move target: the
    /// next run took it for a quarantine left aside and failed it on every run, "no
    /// quarantine copy of it was recorded", keeping it in flight for ever.
    async fn a_failed_quarantine_leaves_a_failing_file(flow: Flow, d: &Path, body: &[u8], spoil: bool, state: FileState) {
        put(d, &[("src/in/a.csv", body), ("dst/rejected", b"a file where the quarantine folder should be")]);
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let (left, hook) = held(&ledger, d, spoil);
        let r = run(&flow, &ledger, d).await;
        drop(hook);
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, Outcome::Failed, "{r:#?}");
        for point in ["failure_disposing", "failure_disposed"] {
            let (rec, result) = at(&left, point);
            assert_eq!(
                (rec.state, rec.source_fate, rec.disposed_to.as_deref()),
                (state, SourceFate::Kept, Some("failed/a.csv")),
                "{point}"
            );
            // Given up, the file had no content result: none is left claiming a quarantine.
            // (Refused by its steps, the verdict stays in it, as for any file refused.)
            if spoil {
                assert_eq!(result, None, "{point}");
            }
        }
        // The report line says why it was not quarantined (and not twice why it was to be).
        assert!(f.detail.contains("putting it aside in quarantine erp failed: "), "{}", f.detail);
        assert_eq!(f.detail.matches("last error").count(), usize::from(spoil), "{}", f.detail);
        assert_eq!(std::fs::read(d.join("src/failed/a.csv")).unwrap(), body);
        // Killed after the move, before the failure was recorded.
        let (rec, _) = at(&left, "failure_disposed");
        ledger.put_file_with("t", &rec, Durability::Durable).unwrap();
        let p = plan(&flow, Some(&ledger), SystemTime::now(), Some(&d.join("staging"))).await.unwrap();
        let [PlannedFile { action: Action::Fail { why }, .. }] = &p.files[..] else { panic!("{p:#?}") };
        assert!(why.ends_with("; source moved to /failed/a.csv; finished after a crash (it had failed before it)"), "{why}");
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!((f.outcome, &f.detail), (Outcome::Failed, why), "{r:#?}");
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!((rec.state, rec.source_fate, rec.disposed_to.as_deref()), (FileState::Failed, SourceFate::Moved, Some("failed/a.csv")));
        assert!(run(&flow, &ledger, d).await.files.is_empty());
    }

    /// Given up (an upload that keeps failing: its temporary file taken away each time) in
    /// a flow whose quarantine cannot be made: back to `delivering`, its content result gone.
    #[tokio::test]
    async fn a_given_up_file_whose_quarantine_fails_is_left_failing_not_quarantining() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(d, true, "quarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n");
        // Bigger than what is held in memory: uploaded from its staged copy, through `uploading`.
        let body = vec![b'x'; crate::engine::stage::INLINE_MAX as usize + 1];
        a_failed_quarantine_leaves_a_failing_file(flow, d, &body, true, FileState::Delivering).await;
    }

    /// Refused by its steps, its quarantine failing for good: recorded failing as `staged`.
    #[tokio::test]
    async fn a_refused_file_whose_quarantine_fails_is_left_failing_not_quarantining() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(
            d,
            false,
            "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
        );
        a_failed_quarantine_leaves_a_failing_file(flow, d, b"a,1\n", false, FileState::Staged).await;
    }

    /// A run killed after `after.failure: move_to` moved a file's source but before its done
    /// file went with it (`failure_disposed` or `quarantine_disposed`, the done file put back
    /// as if the crash came before its move): the next run, finishing the file, moves the
    /// done file too. Before, it stayed in the drop folder for ever.
    #[tokio::test]
    async fn a_file_finished_after_a_crash_takes_its_done_file_along() {
        for (point, extra) in [
            ("failure_disposed", ""),
            ("quarantine_disposed", "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\n"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            let mut flow = flow(d, false, &format!("{extra}after: {{ failure: {{ move_to: /failed }} }}\n"));
            flow.source.ready.done_file = Some(crate::template::NameTemplate::new("{{name}}.ok").unwrap());
            put(d, &[("src/in/a.csv", b"a,1\n"), ("src/in/a.csv.ok", b""), ("dst/inbox/a.csv", b"someone else's\n")]);
            let ledger = Arc::new(Ledger::in_memory().unwrap());
            let (left, hook) = held(&ledger, d, false);
            run(&flow, &ledger, d).await;
            drop(hook);
            let (rec, _) = at(&left, point);
            ledger.put_file_with("t", &rec, Durability::Durable).unwrap();
            std::fs::rename(d.join("src/failed/a.csv.ok"), d.join("src/in/a.csv.ok")).unwrap();
            let r = run(&flow, &ledger, d).await;
            let [f] = &r.files[..] else { panic!("{point}: {r:#?}") };
            assert!(f.detail.contains("; source moved to /failed/a.csv; finished after a crash"), "{point}: {r:#?}");
            assert!(!d.join("src/in/a.csv.ok").exists(), "{point}: the done file is left behind");
            assert!(d.join("src/failed/a.csv.ok").exists(), "{point}");
            assert!(!ledger.file("t", "in/a.csv").unwrap().unwrap().state.in_flight(), "{point}");
        }
    }

    /// A file failing for good (its sink's name taken by someone else's file) whose source the
    /// partner replaced after it was read: the new version is not what failed, so
    /// `after.failure: move_to` leaves it where it is, and the next run takes it. Before, it
    /// was moved into `failed/` as the file that failed, unread.
    #[tokio::test]
    async fn a_new_version_written_while_a_file_fails_stays_for_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(
            d,
            false,
            "steps:\n  - check: { non_empty: true }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
        );
        put(d, &[("src/in/a.csv", b"a,1\n"), ("dst/inbox/a.csv", b"someone else's\n")]);
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let source = d.join("src/in/a.csv");
        let partner = source.clone();
        let hook = halt::hook::set(move |p| {
            if p == "processed" {
                std::fs::write(&partner, b"b,22\n").unwrap();
            }
        });
        let r = run(&flow, &ledger, d).await;
        drop(hook);
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, Outcome::Failed, "{r:#?}");
        assert!(
            f.detail
                .ends_with("; source kept: it changed while it was moved (5 bytes now, 4 when read); the next run takes it as a new file"),
            "{}",
            f.detail
        );
        assert_eq!(std::fs::read(&source).unwrap(), b"b,22\n");
        assert!(!d.join("src/failed").exists(), "not moved as the file that failed");
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!((rec.state, rec.source_fate, rec.disposed_to), (FileState::Failed, SourceFate::Kept, None));
        std::fs::remove_file(d.join("dst/inbox/a.csv")).unwrap();
        let r = run(&flow, &ledger, d).await;
        assert_eq!(r.counts.delivered, 1, "{r:#?}");
        assert_eq!(std::fs::read(d.join("dst/inbox/a.csv")).unwrap(), b"b,22\n");
    }
    /// Refused by its steps, its copy made but its report not (a folder where the report
    /// goes): the quarantine is given up, and the copy it had made is removed from the
    /// quarantine folder (said in the report line, its name dropped from the record), the
    /// source moved by `after.failure`. Before, the copy stayed there, named by nothing
    /// (`wharf quarantine list` shows quarantined files only) and removed by nobody.
    #[tokio::test]
    async fn a_copy_made_by_a_quarantine_given_up_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let flow = flow(
            d,
            false,
            "steps:\n  - check: { magic: [zip] }\nquarantine: { endpoint: erp, path: /rejected }\nafter: { failure: { move_to: /failed } }\n",
        );
        assert!(flow.quarantine.as_ref().unwrap().report);
        put(d, &[("src/in/a.csv", b"a,1\n"), ("dst/rejected/a.csv.report.json/x", b"in the way")]);
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let r = run(&flow, &ledger, d).await;
        let [f] = &r.files[..] else { panic!("{r:#?}") };
        assert_eq!(f.outcome, Outcome::Failed, "{r:#?}");
        assert!(f.detail.contains("; its copy erp:/rejected/a.csv was removed from quarantine"), "{}", f.detail);
        assert!(f.detail.ends_with("; source moved to /failed/a.csv"), "{}", f.detail);
        let left: Vec<_> = std::fs::read_dir(d.join("dst/rejected")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["a.csv.report.json"], "only what was in the way is left");
        assert_eq!(std::fs::read(d.join("src/failed/a.csv")).unwrap(), b"a,1\n");
        let rec = ledger.file("t", "in/a.csv").unwrap().unwrap();
        assert_eq!(rec.state, FileState::Failed);
        let q = ledger.file_result("t", "in/a.csv").unwrap().and_then(|r| r.quarantine);
        assert_eq!(q.and_then(|q| q.copy), None);
    }
}
