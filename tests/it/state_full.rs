//! A state folder on a file system that fills up: a real tmpfs of a few MiB, mounted for the
//! test (`support::tmpfs`: skipped where this machine cannot mount).
//!
//! What a user must see: the run fails naming the flow, the file and the full state folder;
//! its staging files are removed, so the space comes back; `wharf runs` / `files` / `status`
//! read the ledger (never "a process was killed"); and once there is room, the next run
//! delivers every file exactly once.

use crate::support;
use crate::support::tmpfs::Tmpfs;

use std::path::{Path, PathBuf};

/// A flow taking `*` from `dir/outbox` to `dir/archive` (both off the tmpfs).
fn flow(dir: &Path) -> PathBuf {
    for d in ["outbox", "archive"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let file = dir.join("full.yaml");
    std::fs::write(
        &file,
        format!(
            "name: full\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n\
             source: {{ endpoint: outbox, path: / }}\nsinks:\n  - {{ endpoint: archive, path: / }}\n",
            dir.display()
        ),
    )
    .unwrap();
    file
}

fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = support::walk(dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    n.sort();
    n
}

/// Fills what is left of the file system of `dir` with a file, whose path it gives.
fn fill(dir: &Path) -> PathBuf {
    let filler = dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    filler
}

/// Runs a read command and gives its output, checking it worked.
fn reads(state: &Path, args: &[&str]) -> String {
    let out = support::wharf(state).args(args).output().unwrap();
    let text = support::text(&out);
    assert!(out.status.success(), "wharf {args:?}: {text}");
    assert!(!text.contains("killed") && !text.contains("could not be repaired"), "wharf {args:?}: {text}");
    text
}

#[test]
fn a_full_state_folder_fails_the_run_plainly_frees_its_staging_and_the_next_run_delivers_once() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let Some(fs) = Tmpfs::mount(&state, "3m") else { return };
    let flow = flow(dir.path());
    // One file at a time, so that it is big.bin's staging that finds the disk full: with
    // both in flight, small.csv's ledger commit could come after the disk filled, and the
    // run stop on the ledger (as plainly, but without naming big.bin), as it did once under
    // a loaded machine.
    let mut yaml = std::fs::read_to_string(&flow).unwrap();
    yaml.push_str("concurrency: 1\n");
    std::fs::write(&flow, yaml).unwrap();
    let big: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("outbox/big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("outbox/small.csv"), "a;b\n").unwrap();

    // 8 MiB to stage on 3 MiB: the run fails that file, plainly, and stops.
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!(code, 3, "aborted: {report}");
    let error = report["error"].as_str().unwrap_or_default();
    let expected = format!("state folder {}: no space left on device", state.display());
    assert!(error.contains("flow full") && error.contains("big.bin") && error.contains(&expected), "{report}");
    assert_eq!(report["error_kind"], "state_full", "{report}");
    // Its staging files are gone: the space is back.
    assert_eq!(support::walk(&state.join("staging")), Vec::<PathBuf>::new(), "staging files left");

    // The read commands read the ledger, and tell the run's end as it was.
    let runs: serde_json::Value = serde_json::from_str(&reads(&state, &["runs", "--json"])).unwrap();
    assert_eq!(runs[0]["status"], "aborted", "{runs}");
    assert!(runs[0]["error"].as_str().unwrap_or_default().contains(&expected), "{runs}");
    reads(&state, &["files", "full"]);
    reads(&state, &["status"]);

    // Room again: the next run delivers each file, once.
    fs.resize("32m");
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!(code, 0, "{report}");
    assert_eq!(names(&dir.path().join("archive")), ["big.bin", "small.csv"]);
    assert!(std::fs::read(dir.path().join("archive/big.bin")).unwrap() == big);
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!((code, support::counts(&report).1), (0, 0), "nothing delivered twice: {report}");
}

/// The ledger itself cannot be written (something else filled the disk): the run stops with
/// the same plain error, the read commands still read (a copy repaired in memory while the
/// disk is full), and once space is freed the next run repairs the ledger and goes on.
#[test]
fn a_ledger_that_cannot_be_written_for_lack_of_space_is_read_and_then_repaired() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let Some(_fs) = Tmpfs::mount(&state, "2m") else { return };
    let flow = flow(dir.path());
    std::fs::write(dir.path().join("outbox/a.csv"), "1\n").unwrap();
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!(code, 0, "{report}");

    // Fill what is left, then give the run work enough to need new pages in the ledger.
    let filler = fill(&state);
    for i in 0..300 {
        std::fs::write(dir.path().join(format!("outbox/f{i:03}-{}.csv", "x".repeat(100))), format!("{i}\n")).unwrap();
    }
    let out = support::wharf(&state).arg("run").arg(&flow).output().unwrap();
    let text = support::text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("flow full") && text.contains(&format!("state folder {}: no space left on device", state.display())), "{text}");
    assert!(!text.contains("panicked"), "{text}");
    reads(&state, &["runs"]);
    reads(&state, &["files", "full"]);
    reads(&state, &["status"]);

    // Space freed: the next run repairs what needs it and delivers every file, once.
    std::fs::remove_file(&filler).unwrap();
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!(code, 0, "{report}");
    assert_eq!(names(&dir.path().join("archive")).len(), 301);
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!((code, support::counts(&report).1), (0, 0), "nothing delivered twice: {report}");
}

/// A snapshot of the ledger taken before the disk filled up (another flow's readiness loop)
/// reads on after the recovery that follows, in a new read transaction (the old one ended
/// with the handle the recovery closed).
#[test]
fn a_snapshot_taken_before_the_disk_filled_up_reads_on_after_the_recovery() {
    use wharf::ledger::{FileRecord, FileState, Ledger, Transition};
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let Some(_fs) = Tmpfs::mount(&state, "2m") else { return };
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    let file =
        |i: usize| FileRecord { path: format!("in/f{i:05}-{}.csv", "x".repeat(100)), state: FileState::Staged, ..Default::default() };
    let known: Vec<Transition> = (0..1000).map(|i| Transition::File { flow: "other".into(), rec: file(i) }).collect();
    ledger.commit(&known).unwrap();
    let snapshot = ledger.snapshot().unwrap();

    // The disk fills up: a write fails. Space back, a run recovers the ledger.
    let filler = fill(&state);
    let failed = (1..100)
        .find_map(|n| {
            ledger.commit(&(0..300).map(|i| Transition::File { flow: "f".into(), rec: file(n * 1000 + i) }).collect::<Vec<_>>()).err()
        })
        .expect("a write fails on the full disk");
    assert!(failed.is_state_full(), "{failed}");
    std::fs::remove_file(&filler).unwrap();
    ledger.recover().unwrap();

    for i in [0, 777, 999] {
        assert_eq!(snapshot.file("other", &file(i).path).unwrap().map(|r| r.state), Some(FileState::Staged));
    }
    assert!(snapshot.file("other", &file(1000).path).unwrap().is_none());
}

/// A `command` step whose output fills the state folder: the run's trouble (the disk), never
/// the file's — it is not quarantined, it stays at the source with nothing of it left in the
/// staging folder, and once there is room the next run delivers it, once.
#[test]
fn a_command_step_filling_the_state_folder_is_the_run_s_trouble_not_the_file_s() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let Some(fs) = Tmpfs::mount(&state, "3m") else { return };
    let flow = flow(dir.path());
    let mut yaml = std::fs::read_to_string(&flow).unwrap();
    // 4 MB more than it reads: more than the state folder holds.
    yaml.push_str(
        "quarantine: { endpoint: outbox, path: /bad }\nsteps:\n  - command: { run: [sh, -c, 'cat; head -c 4000000 /dev/zero'] }\n",
    );
    std::fs::write(&flow, yaml).unwrap();
    std::fs::write(dir.path().join("outbox/a.csv"), "1\n").unwrap();

    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!(code, 3, "aborted: {report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(error.contains("a.csv") && error.contains(&format!("state folder {}: no space left on device", state.display())), "{report}");
    assert_eq!(report["quarantined"], 0, "{report}");
    assert!(dir.path().join("outbox/a.csv").exists() && !dir.path().join("outbox/bad").exists());
    assert_eq!(support::walk(&state.join("staging")), Vec::<PathBuf>::new(), "staging files left");

    fs.resize("32m");
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!(code, 0, "{report}");
    assert_eq!(std::fs::metadata(dir.path().join("archive/a.csv")).unwrap().len(), 4_000_002);
    let (code, report) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!((code, support::counts(&report).1), (0, 0), "nothing delivered twice: {report}");
}
