//! The commands' output when its reader goes away (`wharf run … | head` and the like), and
//! what `--json` prints when a command fails.
//!
//! `wharf run` keeps SIGPIPE ignored (a run must not die mid-transfer of a closed pipe), so a
//! write to a pipe closed early fails; the run must still finish, and exit with its own code.
//!
//! With `--json`, a command that fails prints one `{"error": {…}}` object on stdout (a script
//! parsing stdout got nothing before), its text on stderr, and keeps its exit code.

use crate::support;

use std::path::Path;
use std::process::{Output, Stdio};

/// A flow moving `*.csv` from `dir/outbox` to `dir/archive`, with `n` files waiting.
pub(crate) fn local_flow(dir: &Path, n: usize) -> std::path::PathBuf {
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

/// A run that makes the ledger (a first run, or a lost state folder) says so once, on stderr:
/// every file at the sources is new to it. `--json` keeps stdout one JSON document.
#[test]
fn a_run_making_a_new_state_folder_notes_it_on_stderr_once() {
    let dir = support::tempdir();
    let flow = local_flow(dir.path(), 1);
    let state = dir.path().join("state");
    let run = || support::wharf(&state).args(["run".as_ref(), flow.as_os_str(), "--json".as_ref()]).output().unwrap();
    let first = run();
    let err = String::from_utf8_lossy(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{err}");
    let note = format!("note: new state folder {}: no file has been seen yet, so every file at the sources is new", state.display());
    assert_eq!(err.lines().filter(|l| l.starts_with(&note)).count(), 1, "{err}");
    assert!(err.contains("\"The state folder: damaged, lost, moved\""), "{err}");
    serde_json::from_slice::<serde_json::Value>(&first.stdout).expect("stdout is the run's JSON alone");
    let again = run();
    assert!(!String::from_utf8_lossy(&again.stderr).contains("new state folder"), "{}", support::text(&again));
}

/// Runs `wharf ARGS`: exit code, stdout parsed as one JSON document, stderr.
fn failing_json(state: &Path, args: &[&std::ffi::OsStr]) -> (i32, serde_json::Value, String) {
    let out = support::wharf(state).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: stdout is not one JSON document ({e}): {}", support::text(&out)));
    (out.status.code().unwrap_or(-1), v, err)
}

#[test]
fn run_json_of_an_invalid_flow_prints_the_problems_as_json_and_exits_2() {
    let dir = support::tempdir();
    let flow = dir.path().join("broken.yaml");
    std::fs::write(&flow, "name: broken\nbogus: 1\n").unwrap();
    let state = dir.path().join("state");
    let (code, v, err) = failing_json(&state, &["run".as_ref(), flow.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, 2, "{err}");
    let e = &v["error"];
    assert_eq!((e["kind"].as_str(), e["flow"].as_str()), (Some("invalid_flow"), Some("broken")), "{v:#}");
    assert!(e["message"].as_str().unwrap().ends_with("problem(s); nothing was run"), "{v:#}");
    let bogus = e["problems"].as_array().unwrap().iter().find(|p| p["yaml_path"] == "/bogus").unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!((bogus["line"].as_u64(), bogus["col"].as_u64()), (Some(2), Some(1)), "{v:#}");
    assert_eq!(bogus["file"].as_str(), flow.to_str());
    // The text is on stderr as before.
    assert!(err.contains(":2:1: unknown field `bogus`") && err.contains("nothing was run"), "{err}");

    // A flow that is not there: `not_found`, exit 2.
    let (code, v, _) = failing_json(&state, &["run".as_ref(), "nowhere".as_ref(), "--json".as_ref()]);
    assert_eq!((code, v["error"]["kind"].as_str(), v["error"]["flow"].as_str()), (2, Some("not_found"), Some("nowhere")), "{v:#}");
}

#[test]
fn read_commands_with_a_state_folder_that_is_a_file_print_a_json_error_and_exit_3() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    std::fs::write(&state, "not a folder").unwrap();
    for args in [
        &["runs", "--json"][..],
        &["files", "demo", "--json"],
        &["events", "--json"],
        &["awaits", "--json"],
        &["awaits", "close", "demo", "/a.csv", "--json"],
        &["quarantine", "list", "demo", "--json"],
        &["status", "--json"],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        let (code, v, err) = failing_json(&state, &args);
        assert_eq!((code, v["error"]["kind"].as_str()), (3, Some("state")), "{args:?}: {v:#} {err}");
        assert!(err.starts_with("error: "), "{args:?}: the text stays on stderr: {err}");
    }
    // Without `--json`, stdout stays empty.
    let out = support::wharf(&state).args(["runs"]).output().unwrap();
    assert!(out.stdout.is_empty() && out.status.code() == Some(3), "{}", support::text(&out));
}

#[test]
fn plan_json_of_an_unreachable_server_says_connect_and_why() {
    let dir = support::tempdir();
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    let flow = dir.path().join("far.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: far\nendpoints:\n  s: {{ type: sftp, host: 127.0.0.1, port: {}, user: u, auth: {{ password: x }}, host_key: {{ known_hosts: ./known_hosts }} }}\n  \
             l: {{ type: local, root: ./out }}\nsource: {{ endpoint: s, path: /in }}\nsinks: [ {{ endpoint: l }} ]\n",
            support::free_port()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let (code, v, err) = failing_json(&state, &["plan".as_ref(), flow.as_os_str(), "--json".as_ref()]);
    assert_eq!(code, 3, "{err}");
    let e = &v["error"];
    assert_eq!((e["kind"].as_str(), e["cause"].as_str(), e["flow"].as_str()), (Some("connect"), Some("transient"), Some("far")), "{v:#}");
    // The run report's hint, which plan's message lacked.
    let hint = "(the server may be down, unreachable or busy; the next run tries again)";
    assert!(e["message"].as_str().is_some_and(|m| m.starts_with("flow far: ") && m.ends_with(hint)), "{v:#}");
    assert!(err.contains(hint), "{err}");
    // (After validation's warning of the password written in the flow.)
    assert!(err.lines().find(|l| !l.contains("in clear")).is_some_and(|l| l.starts_with("error: flow far: sftp u@127.0.0.1:")), "{err}");
    // `run --json` of it ran, and says so in its report (not as an error object).
    let (code, v, _) = failing_json(&state, &["run".as_ref(), flow.as_os_str(), "--json".as_ref()]);
    assert_eq!((code, v["status"].as_str(), v["error_kind"].as_str()), (3, Some("aborted"), Some("transient")), "{v:#}");
}

/// An aborted run says why once at a terminal: an `error:` line on stderr (stdout may be going
/// to a file), not again as the engine's "Run aborted." and `failed` event log lines (before:
/// three times, the first on stdout). `--json` keeps it in the report; a JSON log keeps the
/// log lines, for whatever collects them.
#[test]
fn an_aborted_run_says_why_once() {
    let dir = support::tempdir();
    let flow = local_flow(dir.path(), 1);
    std::fs::remove_dir_all(dir.path().join("outbox")).unwrap();
    let state = dir.path().join("state");
    let why = "list /: not found";
    let run = |args: &[&str]| {
        let out = support::wharf(&state).env_remove("RUST_LOG").args(args).arg(&flow).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
        assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
        (stdout, stderr)
    };

    let (stdout, stderr) = run(&["run"]);
    assert!(stdout.starts_with("flow pipe, run 1: aborted") && !stdout.contains(why), "{stdout}");
    assert_eq!(stderr.matches(why).count(), 1, "{stderr}");
    // A first run: the new state folder is noted first.
    let mut lines = stderr.lines();
    assert!(lines.next().is_some_and(|l| l.starts_with("note: new state folder ")), "{stderr}");
    assert!(lines.next().is_some_and(|l| l.starts_with("error: flow pipe: local ")), "{stderr}");

    let (stdout, stderr) = run(&["run", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(report["error"].as_str().is_some_and(|e| e.contains(why)), "{report:#}");
    assert_eq!(stderr.matches(why).count(), 1, "{stderr}");

    let (_, stderr) = run(&["--log-format", "json", "run"]);
    let logged: Vec<serde_json::Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let messages: Vec<_> = logged.iter().filter_map(|l| l["message"].as_str()).collect();
    assert_eq!(messages, ["Run aborted.", "Event."], "{stderr}");
}

/// The run summary lines up its details by the width a terminal gives the paths (Japanese
/// ideographs two columns, an NFD accent none), and a path too long for the column goes on a
/// line of its own, the detail under the others; `--json` keeps every path whole. Was: paths
/// padded by characters to the longest one, so the details of CJK and NFD names were out of
/// line, and one deep path made every line over a hundred and fifty characters wide.
#[test]
fn the_run_summary_lines_up_by_display_width_and_keeps_lines_short() {
    let dir = support::tempdir();
    let d = dir.path();
    let deep: String = (1..=12).map(|i| format!("level-{i:02}/")).collect();
    for f in ["archive".to_string(), format!("outbox/{deep}")] {
        std::fs::create_dir_all(d.join(f)).unwrap();
    }
    for (i, name) in [format!("{deep}deep.csv"), "受注.csv".into(), "cafe\u{301}.csv".into(), "a.csv".into()].iter().enumerate() {
        std::fs::write(d.join("outbox").join(name), format!("{i}\n")).unwrap();
    }
    let flow = d.join("pipe.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: pipe\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n\
             source: {{ endpoint: outbox, path: /, include: [\"**/*.csv\"], recursive: true, max_depth: 20 }}\n\
             sinks:\n  - {{ endpoint: archive, path: / }}\n",
            d.display()
        ),
    )
    .unwrap();
    let out = support::wharf(&d.join("state")).arg("run").arg(&flow).output().unwrap();
    let text = support::stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("  ")).collect();
    // Where the detail starts, in terminal columns (ideographs two, the combining accent none).
    let columns = |s: &str| {
        s.chars()
            .map(|c| {
                if ('\u{4e00}'..='\u{9fff}').contains(&c) {
                    2
                } else if c == '\u{301}' {
                    0
                } else {
                    1
                }
            })
            .sum::<usize>()
    };
    let at = |line: &str| columns(&line[..line.find("delivered to").unwrap()]);
    let short: Vec<&&str> =
        lines.iter().filter(|l| ["/a.csv", "/受注.csv", "/cafe\u{301}.csv"].iter().any(|p| l.contains(&format!(" {p} ")))).collect();
    assert_eq!(short.len(), 3, "{text}");
    assert!(short.iter().all(|l| at(l) == at(short[0])), "{text}");
    let long = lines.iter().position(|l| l.contains("deep.csv") && !l.contains("delivered to")).expect(&text);
    assert_eq!(at(lines[long + 1]), at(short[0]), "its detail under the others: {text}");
    assert!(lines[long + 1].trim_start().starts_with("delivered to"), "{text}");
    assert!(lines.iter().filter(|l| !l.contains("level-")).all(|l| columns(l) < 110), "{text}");

    std::fs::write(d.join("outbox").join(format!("{deep}again.csv")), "x\n").unwrap();
    let out = support::wharf(&d.join("state")).arg("run").arg(&flow).arg("--json").output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let paths: Vec<&str> = v["files"].as_array().unwrap().iter().filter_map(|f| f["path"].as_str()).collect();
    assert!(paths.contains(&format!("/{deep}again.csv").as_str()), "whole in JSON: {paths:?}");
}

/// A file that fails, or is quarantined, is said once at a terminal: by its line in the run
/// summary, not again by the engine's "File failed.", "File refused by its content steps;
/// quarantining." and "Quarantined." log lines (before: twice). A JSON log keeps them.
#[test]
fn a_failed_or_quarantined_file_is_said_once() {
    let run = |log_json: bool| {
        let dir = support::tempdir();
        let d = dir.path();
        for f in ["outbox", "archive", "rejected"] {
            std::fs::create_dir_all(d.join(f)).unwrap();
        }
        std::fs::write(d.join("outbox/bad.csv"), "").unwrap();
        std::fs::write(d.join("outbox/clash.csv"), "a\n1\n").unwrap();
        // Taken in the archive: `if_exists: fail` (the default) fails the file.
        std::fs::write(d.join("archive/clash.csv"), "a\n0\n").unwrap();
        let flow = d.join("pipe.yaml");
        std::fs::write(
            &flow,
            format!(
                "name: pipe\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n  \
                 rejected: {{ type: local, root: {0}/rejected }}\nsource: {{ endpoint: outbox, path: /, include: [\"*.csv\"] }}\n\
                 steps:\n  - parse: {{ format: csv }}\nquarantine: {{ endpoint: rejected, path: / }}\nsinks:\n  - {{ endpoint: archive, path: / }}\n",
                d.display()
            ),
        )
        .unwrap();
        let mut cmd = support::wharf(&d.join("state"));
        cmd.env_remove("RUST_LOG");
        if log_json {
            cmd.args(["--log-format", "json"]);
        }
        let out = cmd.arg("run").arg(&flow).output().unwrap();
        (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let lines = ["File failed.", "File refused by its content steps; quarantining.", "Quarantined."];

    let (stdout, stderr) = run(false);
    assert!(stdout.contains("FAILED") && stdout.contains("clash.csv"), "{stdout}");
    assert!(stdout.contains("QUARANTINED") && stdout.contains("bad.csv"), "{stdout}");
    for l in lines {
        assert!(!stderr.contains(l), "{l}: {stderr}");
    }

    let (_, stderr) = run(true);
    let messages: Vec<String> =
        stderr.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["message"].as_str().map(String::from)).collect();
    for l in lines {
        assert!(messages.iter().any(|m| m == l), "{l}: {stderr}");
    }
}

/// Every aborted run logs one "Run aborted." line, with its flow, run, kind and reason: a
/// failing `source.command` too (before: only an endpoint's or the state folder's abort, so a
/// daemon's log showed a failing command only by its event line). `wharf run` leaves it out
/// of its text log (the `error:` line says it).
#[test]
fn every_aborted_run_logs_run_aborted_once() {
    let dir = support::tempdir();
    let d = dir.path();
    for f in ["outbox", "archive"] {
        std::fs::create_dir_all(d.join(f)).unwrap();
    }
    let flow = d.join("pipe.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: pipe\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n\
             source:\n  endpoint: outbox\n  path: /\n  command:\n    run: [sh, -c, 'echo no export today >&2; exit 1']\n    name: x.csv\n\
             sinks:\n  - {{ endpoint: archive, path: / }}\n",
            d.display()
        ),
    )
    .unwrap();
    let state = d.join("state");
    let out = support::wharf(&state).env_remove("RUST_LOG").args(["--log-format", "json", "run"]).arg(&flow).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{}", support::text(&out));
    let logged: Vec<serde_json::Value> = stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let aborted: Vec<_> = logged.iter().filter(|l| l["message"] == "Run aborted.").collect();
    assert_eq!(aborted.len(), 1, "{stderr}");
    let a = aborted[0];
    assert_eq!((a["flow"].as_str(), a["run"].as_u64(), a["kind"].as_str()), (Some("pipe"), Some(1), Some("transient")), "{a}");
    assert!(a["reason"].as_str().is_some_and(|r| r.contains("no export today")), "{a}");

    let out = support::wharf(&state).env_remove("RUST_LOG").arg("run").arg(&flow).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Run aborted.") && stderr.matches("no export today").count() == 1, "{stderr}");
}
