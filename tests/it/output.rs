//! The commands' output when its reader goes away: `wharf run … | head` and the like.
//!
//! `wharf run` keeps SIGPIPE ignored (a run must not die mid-transfer of a closed pipe), so a
//! write to a pipe closed early fails; the run must still finish, and exit with its own code.

use crate::support;

use std::path::Path;
use std::process::{Output, Stdio};

/// A flow moving `*.csv` from `dir/outbox` to `dir/archive`, with `n` files waiting.
fn local_flow(dir: &Path, n: usize) -> std::path::PathBuf {
    for d in ["outbox", "archive"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    for i in 0..n {
        std::fs::write(dir.join(format!("outbox/f{i}.csv")), format!("{i}\n")).unwrap();
    }
    let file = dir.join("pipe.yaml");
    std::fs::write(
        &file,
        format!(
            "name: pipe\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n\
             source: {{ endpoint: outbox, path: /, include: [\"*.csv\"] }}\nsinks:\n  - {{ endpoint: archive, path: / }}\n",
            dir.display()
        ),
    )
    .unwrap();
    file
}

/// Runs `wharf ARGS` with its stdout a pipe whose reading end is closed before it prints.
fn with_stdout_closed(state: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut child = support::wharf(state).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn run_into_a_closed_pipe_finishes_the_run_and_exits_with_its_code() {
    let dir = support::tempdir();
    let flow = local_flow(dir.path(), 3);
    let state = dir.path().join("state");
    let out = with_stdout_closed(&state, &["run".as_ref(), flow.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert_eq!(out.status.code(), Some(0), "the run's own exit code: {err}");
    assert_eq!(support::walk(&dir.path().join("archive")).len(), 3, "every file delivered");

    // The same with a run that has nothing to do, as JSON, and with `plan` (which keeps SIGPIPE
    // ignored too).
    for args in [&["run".as_ref(), flow.as_os_str(), "--json".as_ref()][..], &["plan".as_ref(), flow.as_os_str()]] {
        let out = with_stdout_closed(&state, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    let runs = support::wharf(&state).args(["runs", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "both runs recorded: {runs}");
    assert!(runs.as_array().unwrap().iter().all(|r| r["status"] == "ok"), "{runs}");
}
