//! The control interface and ledger sharing, across real processes:
//! - a writer in this process and `wharf runs` / `wharf files` processes reading beside it;
//!   `wharf run` refused while `wharf serve` holds the ledger;
//! - the HTTP server (over the Unix socket and loopback TCP) against a test `Daemon`;
//! - `wharf status` / `wharf trigger` processes against that server.

use crate::support::{self, stderr, stdout};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use hyper::{Method, StatusCode};
use wharf::control::client::Client;
use wharf::control::discovery::ServeInfo;
use wharf::control::{
    ControlError, Daemon, FlowStatus, Health, ListenConfig, Metrics, RunSummary, Server, Status, TriggerError, Triggered,
};
use wharf::ledger::{AwaitRecord, EventKind, FileRecord, FileState, Ledger, NewEvent, RunRecord, RunStatus};

fn wharf(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(state).args(args).output().expect("run wharf")
}

/// A flow file moving `*.csv` between two local folders under `dir`.
fn local_flow(dir: &Path, name: &str) -> PathBuf {
    support::local_flow(dir, name, dir)
}

/// A finished run, recorded as a run records itself: with the flow's health (its failing
/// streak) updated.
fn finished_run(ledger: &Ledger, flow: &str, status: RunStatus, delivered: u32) -> u64 {
    let mut run = ledger.begin_run(flow, wharf::ledger::now_millis()).unwrap();
    run.status = status;
    run.finished = Some(run.started + 1500);
    run.counts.delivered = delivered;
    ledger
        .finish_run_with(&run, |h| {
            let mut h = h.clone();
            h.failing_streak = if status == RunStatus::Ok { 0 } else { h.failing_streak + 1 };
            (h, vec![])
        })
        .unwrap();
    run.id
}

// ---- (a) two processes on one ledger ----

#[test]
fn read_commands_follow_the_writer_in_another_process_and_run_is_refused_while_serve_holds_it() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flow_file = local_flow(dir.path(), "demo");

    let none = wharf(&state, &["runs"]);
    assert!(none.status.success(), "{}", stderr(&none));
    assert!(stdout(&none).contains("no ledger yet at"), "{}", stdout(&none));
    assert_eq!(stdout(&wharf(&state, &["files", "demo", "--json"])).trim(), "[]");
    assert!(!state.join("ledger.redb").exists(), "reading creates no ledger");

    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    let first = finished_run(&ledger, "demo", RunStatus::Ok, 2);
    let rec =
        FileRecord { path: "in/a.csv".into(), identity: "p=in/a.csv".into(), state: FileState::Done, run: first, ..Default::default() };
    ledger.put_file("demo", &rec).unwrap();

    let runs = wharf(&state, &["runs", "--json"]);
    assert!(runs.status.success(), "{}", stderr(&runs));
    let v: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!((v[0]["id"].as_u64(), v[0]["flow"].as_str(), v[0]["status"].as_str()), (Some(first), Some("demo"), Some("ok")));
    // Times as `status --json` has them: RFC 3339, UTC, with milliseconds.
    let time = |v: &serde_json::Value| {
        let s = v.as_str().unwrap_or_else(|| panic!("a time as a string: {v}"));
        assert!(s.len() == 24 && s.ends_with('Z'), "{s}");
        chrono::DateTime::parse_from_rfc3339(s).unwrap()
    };
    assert_eq!((time(&v[0]["finished"]) - time(&v[0]["started"])).num_milliseconds(), 1500);
    let files: serde_json::Value = serde_json::from_slice(&wharf(&state, &["files", "demo", "--json"]).stdout).unwrap();
    assert_eq!((files[0]["updated"].as_str(), &files[0]["mtime"]), (Some("1970-01-01T00:00:00.000Z"), &serde_json::Value::Null));
    let files = wharf(&state, &["files", "demo"]);
    assert!(files.status.success(), "{}", stderr(&files));
    assert!(stdout(&files).contains("/in/a.csv") && stdout(&files).contains("done"), "{}", stdout(&files));

    // A second commit of the writer, still open: a new reader process sees it.
    let second = finished_run(&ledger, "demo", RunStatus::Failed, 0);
    let v: serde_json::Value = serde_json::from_slice(&wharf(&state, &["runs", "demo", "--json"]).stdout).unwrap();
    let ids: Vec<u64> = v.as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [second, first]);

    // `wharf run` cannot be a second writer: another process, no daemon.
    let busy = wharf(&state, &["run", flow_file.to_str().unwrap()]);
    assert_eq!(busy.status.code(), Some(3), "{}", stderr(&busy));
    assert!(stderr(&busy).contains("is in use by another wharf process"), "{}", stderr(&busy));

    // The writer is `wharf serve`: its discovery file names a socket that answers.
    let socket = state.join("wharf.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let info = ServeInfo { pid: std::process::id(), socket: socket.clone(), http: None, started_at: Utc::now(), version: "test".into() };
    info.write(&ServeInfo::path_in(&state)).unwrap();
    let held = wharf(&state, &["run", flow_file.to_str().unwrap()]);
    assert_eq!(held.status.code(), Some(3), "{}", stderr(&held));
    let expected = format!(
        "flow demo: the ledger at {} is held by `wharf serve` (pid {}, control at {}); use `wharf trigger demo` (or stop the daemon)",
        state.join("ledger.redb").display(),
        std::process::id(),
        socket.display()
    );
    assert!(stderr(&held).contains(&expected), "{}", stderr(&held));
    // A second daemon is told which one holds the folder.
    let second_serve = wharf(&state, &["serve", "--flows", flow_file.parent().unwrap().to_str().unwrap()]);
    assert_eq!(second_serve.status.code(), Some(3), "{}", stderr(&second_serve));
    let who = format!("is held by another `wharf serve` (pid {}, control at {})", std::process::id(), socket.display());
    assert!(stderr(&second_serve).contains(&who), "{}", stderr(&second_serve));
    let release = wharf(&state, &["quarantine", "release", flow_file.to_str().unwrap(), "in/a.csv"]);
    assert_eq!(release.status.code(), Some(3), "{}", stderr(&release));
    assert!(stderr(&release).contains("stop the daemon to release or reprocess"), "{}", stderr(&release));
    let list = wharf(&state, &["quarantine", "list", "demo"]);
    assert!(list.status.success() && stdout(&list).contains("no quarantined files for flow demo"), "{}", stderr(&list));

    // Once the writer is gone, `wharf run` runs.
    drop(ledger);
    let ran = wharf(&state, &["run", flow_file.to_str().unwrap()]);
    assert_eq!(ran.status.code(), Some(0), "{}{}", stdout(&ran), stderr(&ran));
}

#[test]
fn serve_without_a_flows_folder_is_a_command_line_error() {
    // Was exit 3, "flows folder nope: not a folder", after creating the state folder and its
    // ledger.
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let missing = wharf(&state, &["serve", "--flows", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "{}", stderr(&missing));
    let expected =
        format!("error: wharf serve: --flows {}: no such folder; give the folder of flow files", dir.path().join("nope").display());
    assert!(stderr(&missing).starts_with(&expected), "{}", stderr(&missing));
    let flow_file = local_flow(dir.path(), "demo");
    let file = wharf(&state, &["serve", "--flows", flow_file.to_str().unwrap()]);
    assert_eq!(file.status.code(), Some(2), "{}", stderr(&file));
    assert!(stderr(&file).contains(": is a file, not a folder; give the folder of flow files"), "{}", stderr(&file));
    assert!(!state.exists(), "nothing was created");
}

#[test]
fn a_state_folder_that_is_a_file_stops_every_command_that_opens_the_ledger() {
    // It used to read as "no ledger yet (nothing has run)", exit 0, for the read commands,
    // and as "cannot create its folder: File exists" for `wharf run`; `wharf status` and
    // `wharf trigger`, which look for a daemon first, said "discovery file …/serve.json: Not a
    // directory (os error 20)".
    let dir = support::tempdir();
    let flow_file = local_flow(dir.path(), "demo");
    std::fs::write(dir.path().join("outbox/a.csv"), "a\n").unwrap();
    let state = dir.path().join("state");
    std::fs::write(&state, "").unwrap();
    let want = format!("{} is a file, not a folder; give --state-dir (or WHARF_STATE_DIR) a folder", state.display());
    for args in [
        vec!["run", flow_file.to_str().unwrap()],
        vec!["runs"],
        vec!["files", "demo", "--json"],
        vec!["events"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["trigger", "demo"],
    ] {
        let out = wharf(&state, &args);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(&want), "{args:?}: {}", stderr(&out));
        if args.contains(&"--json") {
            // The failure as JSON on stdout (see output::read_commands_with_a_state_folder_…).
            let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            assert_eq!(v["error"]["kind"], "state", "{v}");
        } else {
            assert_eq!(stdout(&out), "", "{args:?}");
        }
    }
    assert!(stderr(&wharf(&state, &["run", flow_file.to_str().unwrap()])).starts_with("error: flow demo: "));
    assert!(dir.path().join("outbox/a.csv").exists() && !dir.path().join("archive/a.csv").exists());
}

#[test]
fn a_flow_name_the_ledger_has_never_seen_is_told_apart_from_a_flow_with_nothing_to_show() {
    // A misspelt name printed "no files recorded for flow demx", as for a flow that ran and
    // had no files, and `wharf runs demx` a bare header; `wharf events demx` and `wharf awaits
    // demx` "no events for flow demx", "no awaited responses recorded for flow demx".
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    finished_run(&ledger, "demo", RunStatus::Ok, 0);
    finished_run(&ledger, "other", RunStatus::Ok, 0);
    // A typing mistake away from `demo`: named.
    let never = format!(
        "unknown flow `demx` (did you mean `demo`?): it has never run with the ledger at {} (flows that have: demo, other)\n",
        state.join("ledger.redb").display()
    );
    for args in [
        &["files", "demx"][..],
        &["runs", "demx"],
        &["quarantine", "list", "demx"],
        &["events", "demx"],
        &["awaits", "demx"],
        &["awaits", "demx", "--open"],
    ] {
        let out = wharf(&state, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), never, "{args:?}");
    }
    assert_eq!(stdout(&wharf(&state, &["files", "demo"])), "no files recorded for flow demo\n");
    assert_eq!(stdout(&wharf(&state, &["quarantine", "list", "demo"])), "no quarantined files for flow demo\n");
    assert_eq!(stdout(&wharf(&state, &["events", "demo"])), "no events for flow demo\n");
    assert_eq!(stdout(&wharf(&state, &["awaits", "demo"])), "no awaited responses recorded for flow demo\n");
    for args in [&["files", "demx", "--json"][..], &["events", "demx", "--json"], &["awaits", "demx", "--json"]] {
        assert_eq!(stdout(&wharf(&state, args)).trim(), "[]", "JSON is unchanged: {args:?}");
    }
    // Nothing close: the flows there are.
    assert_eq!(
        stdout(&wharf(&state, &["runs", "payments"])),
        format!("flow payments has never run with the ledger at {} (flows that have: demo, other)\n", state.join("ledger.redb").display())
    );
}

/// On call, `wharf events` is asked what happened lately. It showed the oldest 100 events
/// of the ledger's history (90 days by default), and nothing said that newer ones were left
/// out. Without `--since` it shows the newest, and says what it left out; a consumer's
/// `--since SEQ` still reads on from its cursor, oldest first.
#[test]
fn events_without_since_are_the_newest_and_say_what_was_left_out() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    finished_run(&ledger, "demo", RunStatus::Ok, 0);
    let event = |flow: &str, i: usize| NewEvent {
        flow: flow.into(),
        at: 1_764_064_800_000 + i as i64,
        kind: EventKind::Failed,
        subject: String::new(),
        detail: format!("failure {i}"),
        run: None,
    };
    ledger.record_events(&(1..=150).map(|i| event(if i % 3 == 0 { "other" } else { "demo" }, i)).collect::<Vec<_>>()).unwrap();
    drop(ledger);

    let seqs = |args: &[&str]| -> Vec<u64> {
        let out = wharf(&state, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v.as_array().unwrap().iter().map(|e| e["seq"].as_u64().unwrap()).collect()
    };
    assert_eq!(seqs(&["events", "--json"]), (51..=150).collect::<Vec<_>>(), "the newest 100, oldest first");
    assert_eq!(seqs(&["events", "--json", "--limit", "3"]), [148, 149, 150]);
    assert_eq!(seqs(&["events", "demo", "--json", "--limit", "3"]), [146, 148, 149]);
    assert_eq!(seqs(&["events", "--json", "--since", "0", "--limit", "3"]), [1, 2, 3], "a consumer reads on from its cursor");
    assert_eq!(seqs(&["events", "--json", "--since", "148"]), [149, 150]);

    let text = stdout(&wharf(&state, &["events", "--limit", "2"]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].trim_start().starts_with("149 ") && lines[2].trim_start().starts_with("150 "), "{text}");
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[3], "(the newest 2 events; earlier ones: --limit N, or --since SEQ to list from an event on)");
    let all = stdout(&wharf(&state, &["events", "other", "--limit", "50"]));
    assert!(!all.contains("earlier ones"), "all of them shown: {all}");
}

/// `wharf files FLOW` of a flow with 100,000 file records printed every one of them (by
/// path), and `wharf awaits` every await. Like `wharf events`, they show the newest (files
/// changed last, awaits sent last), oldest first, and say what they left out.
#[test]
fn files_and_awaits_show_the_newest_and_say_what_was_left_out() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    finished_run(&ledger, "demo", RunStatus::Ok, 0);
    // Changed in the reverse order of their paths: the newest are not the last by path.
    for i in 0..150i64 {
        let path = format!("in/{:03}.csv", 149 - i);
        let rec = FileRecord { identity: path.clone(), path, state: FileState::Done, updated: 1_764_064_800_000 + i, ..Default::default() };
        ledger.put_file("demo", &rec).unwrap();
    }
    for i in 0..5i64 {
        let rec = AwaitRecord {
            flow: if i == 2 { "other".into() } else { "demo".into() },
            request: format!("out/{i}.csv"),
            request_identity: format!("r{i}"),
            expected: format!("ack/{}.ack", 4 - i),
            sent_at: 1_764_064_800_000 + i,
            deadline_at: 1_764_068_400_000,
            ..Default::default()
        };
        ledger.register_await(&rec).unwrap();
    }
    drop(ledger);

    let json = |args: &[&str], field: &str| -> Vec<String> {
        let out = wharf(&state, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        v.as_array().unwrap().iter().map(|e| e[field].as_str().unwrap().to_string()).collect()
    };
    let files = json(&["files", "demo", "--json"], "path");
    assert_eq!(files.len(), 100);
    assert_eq!((files[0].as_str(), files[99].as_str()), ("in/099.csv", "in/000.csv"), "the 100 changed last, oldest first");
    assert_eq!(json(&["files", "demo", "--json", "--limit", "2"], "path"), ["in/001.csv", "in/000.csv"]);
    assert_eq!(json(&["files", "demo", "--json", "--limit", "150"], "path").len(), 150);

    let text = stdout(&wharf(&state, &["files", "demo", "--limit", "2"]));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].contains("/in/001.csv") && lines[2].contains("/in/000.csv"), "{text}");
    assert_eq!(lines[3], "(the newest 2 of 150 files; earlier ones: --limit N, --limit 150 for all)");
    let all = stdout(&wharf(&state, &["files", "demo", "--limit", "150"]));
    assert!(!all.contains("earlier ones") && all.lines().count() == 151, "all of them shown: {all}");

    assert_eq!(json(&["awaits", "--json", "--limit", "2"], "expected"), ["ack/1.ack", "ack/0.ack"], "sent last, oldest first");
    assert_eq!(json(&["awaits", "demo", "--json", "--limit", "3"], "expected"), ["ack/3.ack", "ack/1.ack", "ack/0.ack"]);
    let text = stdout(&wharf(&state, &["awaits", "--limit", "3"]));
    assert_eq!(text.lines().last(), Some("(the newest 3 of 5 awaited responses; earlier ones: --limit N, --limit 5 for all)"), "{text}");
    let all = stdout(&wharf(&state, &["awaits"]));
    assert!(!all.contains("earlier ones") && all.lines().count() == 6, "all of them shown: {all}");
}

// ---- (b) the HTTP server against a test daemon ----

/// Flows `demo` (idle), `busy` (running, overlap skip) and `queue` (running, overlap queue).
struct TestDaemon {
    metrics: Metrics,
    triggered: Mutex<Vec<String>>,
}

impl TestDaemon {
    fn new() -> Arc<Self> {
        let metrics = Metrics::new();
        metrics.run_started("busy");
        metrics.run_finished(
            "demo",
            "ok",
            std::time::Duration::from_millis(1200),
            &[("delivered", 2)],
            2048,
            chrono::DateTime::from_timestamp(1_764_064_800, 0).unwrap(),
        );
        metrics.register_flow("we\"ird\\name");
        metrics.notification("webhook", true);
        Arc::new(TestDaemon { metrics, triggered: Mutex::new(Vec::new()) })
    }
}

#[async_trait]
impl Daemon for TestDaemon {
    fn status(&self) -> Status {
        let mut demo = FlowStatus::new("demo", Some("flows/demo.yaml".into()));
        demo.schedule = Some("every 5m".into());
        demo.next_due = chrono::DateTime::from_timestamp(1_764_065_100, 0);
        demo.last_run = Some(RunSummary {
            run: 4,
            status: "ok".into(),
            started: chrono::DateTime::from_timestamp(1_764_064_798, 0).unwrap(),
            finished: chrono::DateTime::from_timestamp(1_764_064_800, 0),
            delivered: 2,
            failed: 0,
            quarantined: 0,
            bytes: 2048,
            error: None,
        });
        let mut busy = FlowStatus::new("busy", Some("flows/busy.yaml".into()));
        busy.running = true;
        busy.problem = Some("invalid flow file: kept the previous version".into());
        Status { version: "test".into(), pid: std::process::id(), started_at: Utc::now(), flows: vec![demo, busy] }
    }

    async fn trigger(&self, flow: &str) -> Result<Triggered, TriggerError> {
        self.triggered.lock().unwrap().push(flow.to_string());
        match flow {
            "demo" => Ok(Triggered::Started),
            "queue" => Ok(Triggered::Queued),
            "busy" => Err(TriggerError::AlreadyRunning(flow.into())),
            "broken" => Err(TriggerError::Refused {
                flow: flow.into(),
                file: "flows/broken file.yaml".into(),
                problem: "1 problem(s), first: flows/broken file.yaml:2:9: expected a mapping".into(),
            }),
            _ => Err(TriggerError::UnknownFlow(flow.into())),
        }
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// A server for `daemon` on `state/wharf.sock` and 127.0.0.1:0, running on the test's runtime.
struct Running {
    info: ServeInfo,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), ControlError>>,
}

fn start(state: &Path, daemon: Arc<TestDaemon>) -> Running {
    let listen = ListenConfig::in_state_dir(state, Some("127.0.0.1:0".parse().unwrap()), false);
    let server = Server::bind(&listen).unwrap();
    let info = server.info().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let daemon: Arc<dyn Daemon> = daemon;
    let task = tokio::spawn(server.run(daemon, async move {
        let _ = stopped.await;
    }));
    Running { info, stop, task }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// One sample of a text exposition: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the text exposition format 0.0.4 strictly enough to catch what Prometheus rejects:
/// every sample's family has exactly one `# HELP` and one `# TYPE` line before it; label
/// values are quoted with `\\`, `\"` and `\n` escapes; values are numbers.
fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    let mut types = BTreeMap::new();
    let mut helps = BTreeSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap();
            assert!(helps.insert(name.to_string()), "second HELP for {name}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helps.contains(name), "TYPE before HELP: {line}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "second TYPE for {name}");
            continue;
        }
        assert!(!line.is_empty() && !line.starts_with('#'), "unexpected line {line:?}");
        let name_end = line.find(['{', ' ']).unwrap();
        let name = &line[..name_end];
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            let mut key = String::new();
            loop {
                let (i, c) = chars.next().expect("unterminated labels");
                match c {
                    '}' => {
                        rest = &r[i + 1..];
                        break;
                    }
                    ',' => {}
                    '=' => {
                        assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                        let mut value = String::new();
                        loop {
                            match chars.next().expect("unterminated value").1 {
                                '"' => break,
                                '\\' => match chars.next().unwrap().1 {
                                    'n' => value.push('\n'),
                                    c @ ('\\' | '"') => value.push(c),
                                    c => panic!("bad escape \\{c} in {line}"),
                                },
                                c => value.push(c),
                            }
                        }
                        labels.insert(std::mem::take(&mut key), value);
                    }
                    c => key.push(c),
                }
            }
        }
        let value: f64 = rest.trim_start_matches(' ').parse().unwrap_or_else(|e| panic!("{line}: {e}"));
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|t| t == "histogram")))
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        samples.push((name.to_string(), labels, value));
    }
    (types, samples)
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l.len() == labels.len() && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .map(|s| s.2)
}

/// Connections held open on the TCP port, which any local user may open, do not lock the
/// owner out of the socket. Before, 64 of them (a request never finished, opened again
/// every 10 s) made the daemon close every new connection, `wharf status` and `wharf
/// trigger` included.
#[tokio::test]
async fn idle_tcp_connections_do_not_crowd_the_owner_out_of_the_socket() {
    use tokio::io::AsyncWriteExt;
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let server = start(&state, TestDaemon::new());
    let tcp_addr = server.info.http.unwrap();
    let mut held = Vec::new();
    for _ in 0..80 {
        let mut s = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    // Let the server accept them all.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let health = Client::unix(&state.join("wharf.sock")).health().await;
    assert!(health.is_ok(), "the socket still answers: {health:?}");
    drop(held);
    server.shutdown().await;
}

#[tokio::test]
async fn the_control_interface_answers_over_the_socket_and_loopback_tcp() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let daemon = TestDaemon::new();
    let server = start(&state, daemon.clone());
    let socket = state.join("wharf.sock");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(ServeInfo::read(&ServeInfo::path_in(&state)).unwrap(), Some(server.info.clone()));
    let tcp_addr = server.info.http.unwrap();
    assert!(tcp_addr.ip().is_loopback() && tcp_addr.port() != 0);

    for client in [Client::unix(&socket), Client::tcp(tcp_addr)] {
        let health: Health = client.health().await.unwrap();
        assert_eq!((health.status.as_str(), health.pid, health.version.as_str()), ("ok", std::process::id(), wharf::VERSION));

        let reply = client.request(Method::GET, "/metrics").await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
        let (types, samples) = parse_exposition(std::str::from_utf8(&reply.body).unwrap());
        assert_eq!(types.get("wharf_run_duration_seconds").map(String::as_str), Some("histogram"));
        assert_eq!(types.get("wharf_runs_total").map(String::as_str), Some("counter"));
        assert_eq!(value_of(&samples, "wharf_up", &[]), Some(1.0));
        assert_eq!(value_of(&samples, "wharf_build_info", &[("version", wharf::VERSION)]), Some(1.0));
        assert_eq!(value_of(&samples, "wharf_runs_total", &[("flow", "demo"), ("status", "ok")]), Some(1.0));
        assert_eq!(value_of(&samples, "wharf_files_total", &[("flow", "demo"), ("outcome", "delivered")]), Some(2.0));
        assert_eq!(value_of(&samples, "wharf_bytes_total", &[("flow", "demo")]), Some(2048.0));
        assert_eq!(value_of(&samples, "wharf_flow_running", &[("flow", "busy")]), Some(1.0));
        assert_eq!(value_of(&samples, "wharf_flow_running", &[("flow", "we\"ird\\name")]), Some(0.0));
        assert_eq!(value_of(&samples, "wharf_run_duration_seconds_bucket", &[("flow", "demo"), ("le", "1")]), Some(0.0));
        assert_eq!(value_of(&samples, "wharf_run_duration_seconds_bucket", &[("flow", "demo"), ("le", "2.5")]), Some(1.0));
        assert_eq!(value_of(&samples, "wharf_run_duration_seconds_bucket", &[("flow", "demo"), ("le", "+Inf")]), Some(1.0));
        assert_eq!(value_of(&samples, "wharf_last_success_timestamp_seconds", &[("flow", "demo")]), Some(1_764_064_800.0));
        assert_eq!(value_of(&samples, "wharf_notifications_total", &[("channel", "webhook"), ("result", "ok")]), Some(1.0));

        let status = client.status().await.unwrap();
        assert_eq!(status.flows.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["demo", "busy"]);
        assert_eq!(status.flows[0].last_run.as_ref().map(|r| r.run), Some(4));
        let raw = client.request(Method::GET, "/status").await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
        assert_eq!(json["flows"][0]["next_due"], "2025-11-25T10:05:00.000Z");
        assert_eq!(json["flows"][1]["running"], true);

        let not_found = client.request(Method::GET, "/nope").await.unwrap();
        assert_eq!(not_found.status, StatusCode::NOT_FOUND);
        let wrong = client.request(Method::POST, "/status").await.unwrap();
        assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
        let wrong = client.request(Method::GET, "/flows/demo/trigger").await.unwrap();
        assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    }

    // Triggers: the owner's socket only.
    let unix = Client::unix(&socket);
    assert_eq!(unix.trigger("demo").await.unwrap(), Ok(Triggered::Started));
    assert_eq!(unix.trigger("queue").await.unwrap(), Ok(Triggered::Queued));
    assert_eq!(unix.trigger("busy").await.unwrap(), Err(TriggerError::AlreadyRunning("busy".into())));
    assert_eq!(unix.trigger("nope").await.unwrap(), Err(TriggerError::UnknownFlow("nope".into())));
    for bad in ["bad name", "a/b", "x?y", "%41"] {
        assert_eq!(unix.trigger(bad).await.unwrap(), Err(TriggerError::UnknownFlow(bad.into())), "not asked: {bad}");
    }
    // What the daemon said of a refused file comes across whole.
    let refused = TriggerError::Refused {
        flow: "broken".into(),
        file: "flows/broken file.yaml".into(),
        problem: "1 problem(s), first: flows/broken file.yaml:2:9: expected a mapping".into(),
    };
    assert_eq!(unix.trigger("broken").await.unwrap(), Err(refused));
    for (flow, code) in [
        ("demo", StatusCode::ACCEPTED),
        ("busy", StatusCode::CONFLICT),
        ("nope", StatusCode::NOT_FOUND),
        ("broken", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(unix.request(Method::POST, &format!("/flows/{flow}/trigger")).await.unwrap().status, code, "{flow}");
    }
    let tcp = Client::tcp(tcp_addr).request(Method::POST, "/flows/demo/trigger").await.unwrap();
    assert_eq!(tcp.status, StatusCode::FORBIDDEN);
    assert_eq!(*daemon.triggered.lock().unwrap(), ["demo", "queue", "busy", "nope", "broken", "demo", "busy", "nope", "broken"]);

    // A second server on the same state folder is refused while this one answers.
    let again = Server::bind(&ListenConfig::in_state_dir(&state, None, false)).unwrap_err();
    assert!(matches!(again, ControlError::AlreadyServing(_)), "{again}");

    server.shutdown().await;
    assert!(!socket.exists(), "socket removed");
    assert!(!ServeInfo::path_in(&state).exists(), "discovery file removed");
    assert!(Client::unix(&socket).probe().await.is_err());
}

#[test]
fn a_non_loopback_listener_needs_allow_remote() {
    let dir = support::tempdir();
    let listen = ListenConfig::in_state_dir(dir.path(), Some("0.0.0.0:0".parse().unwrap()), false);
    let err = Server::bind(&listen).unwrap_err();
    assert!(err.to_string().contains("not a loopback address"), "{err}");
    assert!(!dir.path().join("wharf.sock").exists());
}

// ---- (c) `wharf status` / `wharf trigger` processes ----

async fn wharf_async(state: &Path, args: &[&str]) -> Output {
    let state = state.to_path_buf();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || wharf(&state, &args.iter().map(String::as_str).collect::<Vec<_>>())).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_trigger_talk_to_the_running_daemon_and_say_when_there_is_none() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let daemon = TestDaemon::new();
    let server = start(&state, daemon.clone());

    let json = wharf_async(&state, &["status", "--json"]).await;
    assert!(json.status.success(), "{}", stderr(&json));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["daemon"]["pid"], std::process::id());
    assert_eq!(v["daemon"]["version"], "test");
    assert_eq!(v["flows"][0]["name"], "demo");
    assert_eq!(v["flows"][0]["last_run"]["delivered"], 2);
    let text = wharf_async(&state, &["status"]).await;
    let out = stdout(&text);
    assert!(out.contains("wharf serve test since") && out.contains(&format!("pid {}", std::process::id())), "{out}");
    assert!(out.lines().any(|l| l.starts_with("demo ") && l.contains("idle") && l.contains("#4 ok") && l.contains("every 5m")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("busy ") && l.contains("running")), "{out}");
    assert!(out.contains("! invalid flow file: kept the previous version"), "{out}");

    for (flow, code, says) in [
        ("demo", 0, "flow demo: run started"),
        ("queue", 0, "another run is queued"),
        ("busy", 1, "flow busy is running already"),
        ("nope", 2, "has no flow named nope"),
        // Names are case-sensitive: the flow meant is named (it said "has no flow named Demo").
        ("Demo", 2, "error: unknown flow `Demo` (did you mean `demo`?): the running `wharf serve` has no flow by that name"),
        // Was "error: control socket …: invalid uri character": the name went into the
        // request's path as it was. No flow can have it; the daemon is not asked.
        (
            "bad name",
            2,
            "error: `bad name` is not a valid flow name (letters, digits, `-`, `_` and `.`, starting with a letter or digit), \
             so the running `wharf serve` has no flow by it; `wharf status` lists its flows",
        ),
        // Was "has no flow named broken" for a file the daemon refused.
        (
            "broken",
            2,
            "error: flow broken: its file flows/broken file.yaml is refused by the daemon, so the flow is not served: 1 problem(s), \
             first: flows/broken file.yaml:2:9: expected a mapping; `wharf validate 'flows/broken file.yaml'` lists every problem",
        ),
    ] {
        let o = wharf_async(&state, &["trigger", flow]).await;
        assert_eq!(o.status.code(), Some(code), "{flow}: {}{}", stdout(&o), stderr(&o));
        assert!(format!("{}{}", stdout(&o), stderr(&o)).contains(says), "{flow}: {}{}", stdout(&o), stderr(&o));
    }
    assert_eq!(*daemon.triggered.lock().unwrap(), ["demo", "queue", "busy", "nope", "Demo", "broken"]);
    server.shutdown().await;

    // No daemon: trigger says so, and how to run the flow here, when there is one (it said
    // `wharf run nosuch` of a flow that does not exist either); status reads the flows folder
    // and the ledger.
    let flows = dir.path().join("flows");
    let demo = local_flow(dir.path(), "demo");
    let o = wharf_async(&state, &["trigger", demo.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(3));
    let none = format!("error: no `wharf serve` is running for state dir {}", state.display());
    assert_eq!(stderr(&o), format!("{none}; run the flow once with `wharf run {}`\n", demo.display()));
    let o = wharf_async(&state, &["trigger", "nosuch"]).await;
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(
        stderr(&o),
        format!(
            "{none}, and there is no flow nosuch here either (looked for nosuch, flows/nosuch.yaml and flows/nosuch.yml, and a flow with \
             `name: nosuch` in flows); nothing was run\n"
        )
    );
    std::fs::write(flows.join("broken.yaml"), "name: broken\nsource: 3\n").unwrap();
    {
        let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
        finished_run(&ledger, "demo", RunStatus::Ok, 3);
        finished_run(&ledger, "demo", RunStatus::Aborted, 0);
        // A run cut off by a shutdown is closed without judging the flow: no failure of it.
        ledger.begin_run("demo", wharf::ledger::now_millis()).unwrap();
        wharf::engine::close_interrupted("demo", &ledger, "cut off").unwrap();
    }
    let o = wharf_async(&state, &["status", "--flows", flows.to_str().unwrap()]).await;
    let out = stdout(&o);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains(&format!("no `wharf serve` is running for state dir {}", state.display())), "{out}");
    assert!(out.lines().any(|l| l.starts_with("demo ") && l.contains("failing 1") && l.contains("#3 aborted")), "{out}");
    assert!(out.lines().any(|l| l.starts_with("broken ")), "{out}");
    assert!(out.contains("! invalid flow file:"), "{out}");
    let o = wharf_async(&state, &["status", "--json", "--flows", flows.to_str().unwrap()]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["daemon"].is_null());
    let demo = v["flows"].as_array().unwrap().iter().find(|f| f["name"] == "demo").unwrap();
    assert_eq!((demo["failing_streak"].as_u64(), demo["last_run"]["run"].as_u64()), (Some(1), Some(3)));
    assert!(demo["last_success"].is_string());
    assert_eq!(v["flows_without_file"], serde_json::json!([]));

    // A flow the ledger has runs of and the daemon has no file for: named, for `wharf forget`.
    finished_run(&Ledger::open(&state.join("ledger.redb")).unwrap(), "gone", RunStatus::Ok, 1);
    let server = start(&state, daemon.clone());
    let o = wharf_async(&state, &["status", "--json"]).await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["flows_without_file"], serde_json::json!(["gone"]), "{v}");
    let out = stdout(&wharf_async(&state, &["status"]).await);
    assert!(out.ends_with("records of flows with no flow file: gone (`wharf forget gone` removes them)\n"), "{out}");
    server.shutdown().await;
}

#[test]
fn runs_shows_zero_quarantined_for_a_finished_run_without_steps_and_dashes_for_one_still_going() {
    // The quar column showed "-" for every run of a flow without content steps, as if unknown;
    // and a run still going (or cut off) showed 0 seen, 0 delivered… before it had counted.
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    let done = finished_run(&ledger, "demo", RunStatus::Ok, 2);
    let cut = ledger.begin_run("demo", wharf::ledger::now_millis()).unwrap();
    // As `wharf serve` records a run it cut off: aborted, with no end time.
    ledger.finish_run(&RunRecord { status: RunStatus::Aborted, error: Some("cut off".into()), ..cut.clone() }).unwrap();
    let going = ledger.begin_run("demo", wharf::ledger::now_millis()).unwrap().id;
    drop(ledger);
    let out = wharf(&state, &["runs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    // seen wait deliv skip fail quar records
    let columns = |id: u64| -> Vec<String> {
        let line = text.lines().find(|l| l.split_whitespace().next() == Some(&id.to_string())).unwrap_or_else(|| panic!("{text}"));
        // run flow date time took status, then the counts
        line.split_whitespace().skip(6).take(7).map(str::to_string).collect()
    };
    assert_eq!(columns(done), ["0", "0", "2", "0", "0", "0", "-"], "{text}");
    assert_eq!(columns(cut.id), ["-"; 7], "{text}");
    assert_eq!(columns(going), ["-"; 7], "{text}");
    // JSON keeps its numbers (`finished` null says they are not final).
    let out = wharf(&state, &["runs", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = v.as_array().unwrap().iter().find(|r| r["id"] == going).unwrap();
    assert_eq!(
        (run["status"].as_str(), run["finished"].is_null(), run["counts"]["seen"].as_u64()),
        (Some("running"), true, Some(0)),
        "{v}"
    );
}

#[test]
fn status_outside_a_project_says_so_in_one_sentence() {
    // Said "no flows folder flows (see --flows); flows from the ledger:", then "no flows".
    let dir = support::tempdir();
    let state = dir.path().join(".wharf");
    let status = |state: &Path| {
        let out =
            Command::new(env!("CARGO_BIN_EXE_wharf")).current_dir(dir.path()).arg("--state-dir").arg(state).arg("status").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let ledger = state.join("ledger.redb");
    let text = status(&state);
    assert!(
        text.ends_with(&format!("no flows folder here (./flows; see --flows) and no ledger ({}: nothing has run)\n", ledger.display())),
        "{text}"
    );
    assert!(!text.contains("no flows\n") && !text.contains("no ledger yet"), "{text}");
    drop(Ledger::open(&ledger).unwrap());
    let text = status(&state);
    assert!(
        text.ends_with(&format!("no flows folder here (./flows; see --flows) and no flows in the ledger ({})\n", ledger.display())),
        "{text}"
    );
    let l = Ledger::open(&ledger).unwrap();
    finished_run(&l, "demo", RunStatus::Ok, 1);
    drop(l);
    let text = status(&state);
    assert!(text.contains("no flows folder here (./flows; see --flows); the flows the ledger knows:\nflow "), "{text}");
}
