//! `wharf forget FLOW`: the records of a flow that has no flow file any more go, and only
//! those; a flow that still has a file, or any flow while `wharf serve` holds the ledger, is
//! refused; `wharf status` names the flows it is for.

use crate::support::{self, stderr, stdout};

use std::path::{Path, PathBuf};
use std::process::Output;

use chrono::Utc;
use wharf::control::discovery::ServeInfo;
use wharf::ledger::{Ledger, RunStatus};

fn wharf(state: &Path, args: &[&str]) -> Output {
    support::wharf(state).args(args).output().expect("run wharf")
}

/// A flow file `dir/flows/NAME.yaml` moving `*.csv` between two local folders of its own
/// under `dir/NAME`, with one file waiting.
fn local_flow(dir: &Path, name: &str) -> PathBuf {
    let file = support::local_flow(dir, name, &dir.join(name));
    std::fs::write(dir.join(name).join("outbox/a.csv"), "1\n").unwrap();
    file
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(o), stderr(o)))
}

#[test]
fn forget_removes_the_records_of_a_flow_without_a_file_and_no_others() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    // `partner` is a prefix of `partner2`: forgetting it leaves the other whole.
    let gone = local_flow(dir.path(), "partner");
    let kept = local_flow(dir.path(), "partner2");
    let flows = dir.path().join("flows");
    let flows = flows.to_str().unwrap();
    for f in [&gone, &kept] {
        let ran = wharf(&state, &["run", f.to_str().unwrap()]);
        assert_eq!(ran.status.code(), Some(0), "{}{}", stdout(&ran), stderr(&ran));
    }
    // What a killed run of the flow left in its staging folder.
    std::fs::create_dir_all(state.join("staging/partner")).unwrap();
    std::fs::write(state.join("staging/partner/x.part"), "half").unwrap();
    // Probes stored of each flow's endpoint (`wharf probe`; only `flow` is read here).
    std::fs::create_dir_all(state.join("probes")).unwrap();
    for f in ["partner", "partner2"] {
        std::fs::write(state.join(format!("probes/{f}.src.json")), format!(r#"{{"flow": "{f}", "endpoint": "src"}}"#)).unwrap();
    }

    // Still a flow: refused, its own name or its responses', and nothing is removed.
    for name in ["partner", "partner.response"] {
        let refused = wharf(&state, &["forget", name, "--flows", flows, "--yes"]);
        assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
        let expected = format!("flow {name} still has a flow file: {}; remove or rename the flow file first", gone.display());
        assert!(stderr(&refused).contains(&expected), "{}", stderr(&refused));
    }
    let path = wharf(&state, &["forget", "flows/partner.yaml", "--flows", flows]);
    assert_eq!(path.status.code(), Some(2), "{}", stderr(&path));
    assert!(stderr(&path).contains("is not a flow name"), "{}", stderr(&path));
    let no_folder = wharf(&state, &["forget", "partner", "--flows", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(no_folder.status.code(), Some(2), "{}", stderr(&no_folder));
    assert!(stderr(&no_folder).contains("no flows folder"), "{}", stderr(&no_folder));
    assert_eq!(json(&wharf(&state, &["runs", "--json"])).as_array().unwrap().len(), 2);

    // Renamed out of the folder: `wharf status` says what is left of it.
    std::fs::rename(&gone, gone.with_extension("yaml.off")).unwrap();
    let status = wharf(&state, &["status", "--flows", flows]);
    // The command to run checks the same flows folder (`wharf forget partner` alone would
    // check `./flows`, another folder, or none).
    let hint = format!("records of flows with no flow file: partner (`wharf forget partner --flows {flows}` removes them)");
    assert!(stdout(&status).contains(&hint), "{}", stdout(&status));
    assert_eq!(json(&wharf(&state, &["status", "--flows", flows, "--json"]))["flows_without_file"], serde_json::json!(["partner"]));

    // Without --yes: what would go, and nothing goes.
    let dry = wharf(&state, &["forget", "partner", "--flows", flows]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let text = stdout(&dry);
    for line in [
        "flow partner has in the ledger at",
        "       1  runs\n",
        "       1  delivered identities\n",
        "1  staging files",
        "1  stored probes",
        "--yes",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    // Said before `--yes`: the name's delivered identities are what keep a flow file added
    // again under it (or the old one put back) from sending every file at its source again.
    let again =
        "a flow named partner added again (or its old file put back) takes every file still at its source for new and delivers it again";
    assert!(text.contains(again), "{text}");
    assert_eq!(json(&wharf(&state, &["runs", "--json"])).as_array().unwrap().len(), 2);
    assert!(state.join("staging/partner/x.part").exists());

    let done = wharf(&state, &["forget", "partner", "--flows", flows, "--yes", "--json"]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    let v = json(&done);
    assert_eq!((v["flow"].as_str(), v["removed"].as_bool(), v["staging_files"].as_u64()), (Some("partner"), Some(true), Some(1)));
    assert_eq!(v["probes"].as_u64(), Some(1), "{v}");
    assert!(!state.join("probes/partner.src.json").exists() && state.join("probes/partner2.src.json").exists());
    let r = &v["records"];
    assert_eq!((r["runs"].as_u64(), r["files"].as_u64(), r["deliveries"].as_u64()), (Some(1), Some(1), Some(1)), "{v}");
    assert!(!state.join("staging/partner").exists());

    let runs = json(&wharf(&state, &["runs", "--json"]));
    assert_eq!(runs.as_array().unwrap().iter().map(|r| r["flow"].as_str().unwrap()).collect::<Vec<_>>(), ["partner2"]);
    assert_eq!(json(&wharf(&state, &["files", "partner2", "--json"])).as_array().unwrap().len(), 1);
    let again = wharf(&state, &["forget", "partner", "--flows", flows, "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(stdout(&again).contains("flow partner has no records in the ledger at"), "{}", stdout(&again));
    assert!(!stdout(&wharf(&state, &["status", "--flows", flows])).contains("no flow file"));
}

#[test]
fn forget_is_refused_while_serve_holds_the_ledger_but_counts_beside_it() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let flows = flows.to_str().unwrap();
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    let mut run = ledger.begin_run("gone", wharf::ledger::now_millis()).unwrap();
    run.status = RunStatus::Ok;
    ledger.finish_run(&run).unwrap();
    // The writer is `wharf serve`: its discovery file names a socket that answers.
    let socket = state.join("wharf.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let info = ServeInfo { pid: std::process::id(), socket: socket.clone(), http: None, started_at: Utc::now(), version: "test".into() };
    info.write(&ServeInfo::path_in(&state)).unwrap();

    let dry = wharf(&state, &["forget", "gone", "--flows", flows]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert!(stdout(&dry).contains("       1  runs\n"), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("--yes`; stop `wharf serve` first: it holds the ledger)"), "{}", stdout(&dry));
    let held = wharf(&state, &["forget", "gone", "--flows", flows, "--yes"]);
    assert_eq!(held.status.code(), Some(3), "{}", stderr(&held));
    let expected = format!("flow gone: the ledger at {} is held by `wharf serve`", state.join("ledger.redb").display());
    assert!(stderr(&held).contains(&expected) && stderr(&held).contains("; stop the daemon to forget a flow"), "{}", stderr(&held));
    assert_eq!(ledger.runs(Some("gone"), 10).unwrap().len(), 1);
}

/// A flow file whose `name:` cannot be read (a YAML mistake half way through an edit) may be
/// the flow: forgotten, it would deliver every file at its source again once the file is
/// mended. Refused, naming the file; `wharf status` lists the flow as one without a file.
#[test]
fn forget_is_refused_while_a_flow_file_of_the_folder_cannot_be_read_for_its_name() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let broken = flows.join("orders.yaml");
    std::fs::write(&broken, "name: orders-eu\nsource: { endpoint: partner, path: /out\n").unwrap();
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    let mut run = ledger.begin_run("orders-eu", wharf::ledger::now_millis()).unwrap();
    run.status = RunStatus::Ok;
    ledger.finish_run(&run).unwrap();
    drop(ledger);
    let flows = flows.to_str().unwrap();

    let refused = wharf(&state, &["forget", "orders-eu", "--flows", flows, "--yes"]);
    assert_eq!(refused.status.code(), Some(2), "{}{}", stdout(&refused), stderr(&refused));
    let expected =
        format!("flow orders-eu: cannot tell whether the flow file {} is this flow: its `name:` cannot be read", broken.display());
    assert!(stderr(&refused).contains(&expected), "{}", stderr(&refused));
    assert_eq!(json(&wharf(&state, &["runs", "--json"])).as_array().unwrap().len(), 1);

    // Mended (and another flow's): the flow is no longer refused for it.
    std::fs::write(&broken, "name: orders-us\n").unwrap();
    let done = wharf(&state, &["forget", "orders-eu", "--flows", flows, "--yes"]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(json(&wharf(&state, &["runs", "--json"])).as_array().unwrap().is_empty());
}

/// Without a ledger (removed by hand, say), `--yes` still removes what a killed run left in
/// the flow's staging folder: it said it had, and left the files there.
#[test]
fn forget_without_a_ledger_removes_the_staging_folder_it_names() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::create_dir_all(state.join("staging/gone")).unwrap();
    std::fs::write(state.join("staging/gone/x.part"), "half").unwrap();
    let done = wharf(&state, &["forget", "gone", "--flows", flows.to_str().unwrap(), "--yes"]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(stdout(&done).contains("1  staging files"), "{}", stdout(&done));
    assert!(!state.join("staging/gone").exists(), "{}", stdout(&done));
    assert!(!state.join("ledger.redb").exists(), "no ledger is made for nothing");
}

/// The notices of a forgotten flow that a throttle held back, and the summaries of its runs
/// not sent yet, stored by the daemon before a crash, go with it (before: the next start sent
/// them through a global rule); the other flows' stay.
#[test]
fn forget_drops_the_flows_notices_held_back_by_a_throttle() {
    use wharf::notify::{Held, Notice};
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let held = |flow: &str| Held {
        rule: "serve.yaml notify[0]".into(),
        identity: None,
        channel: None,
        notice: Notice::new("failed", flow, Utc::now(), "", "d"),
        held: 3,
    };
    {
        let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
        ledger.set_notify_state(0, &Held::encode(&[held("old"), held("old.response"), held("kept")]).unwrap(), &[]).unwrap();
        for (run, flow) in [(7, "old"), (8, "kept"), (9, "old")] {
            ledger.put_notify_summary(run, &Notice::new("summary", flow, Utc::now(), "", "").encode().unwrap()).unwrap();
        }
    }
    let flows = flows.to_str().unwrap();
    let dry = wharf(&state, &["forget", "old", "--flows", flows, "--json"]);
    assert_eq!(
        (&json(&dry)["held_notices"], &json(&dry)["pending_summaries"]),
        (&serde_json::json!(2), &serde_json::json!(2)),
        "{}",
        stdout(&dry)
    );
    let done = wharf(&state, &["forget", "old", "--flows", flows, "--yes"]);
    assert_eq!(done.status.code(), Some(0), "{}", stderr(&done));
    assert!(stdout(&done).contains("       2  notices held back by a throttle"), "{}", stdout(&done));
    let ledger = Ledger::open_read_only(&state.join("ledger.redb")).unwrap();
    let left = Held::decode(&ledger.notify_held().unwrap().unwrap()).unwrap();
    assert_eq!(left.iter().map(|h| h.notice.flow.as_str()).collect::<Vec<_>>(), ["kept"]);
    assert!(stdout(&done).contains("       2  run summaries not sent yet"), "{}", stdout(&done));
    let summaries = ledger.notify_summaries().unwrap();
    assert_eq!(summaries.iter().map(|(run, b)| (*run, Notice::decode(b).unwrap().flow)).collect::<Vec<_>>(), [(8, "kept".to_string())]);
}

/// `wharf compact` gives back to the file system what `forget` freed (redb only reuses it),
/// keeping every other record; it needs the ledger for itself, as `forget --yes` does.
#[test]
fn compact_gives_back_what_forget_freed_and_is_refused_while_serve_holds_the_ledger() {
    use wharf::ledger::{FileRecord, FileState, Transition};
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    let flows = flows.to_str().unwrap();
    let none = wharf(&state, &["compact"]);
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(stdout(&none).starts_with("no ledger at "), "{}", stdout(&none));
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    for (flow, n) in [("gone", 20_000), ("kept", 10)] {
        let t: Vec<Transition> = (0..n)
            .map(|i| Transition::File {
                flow: flow.into(),
                rec: FileRecord {
                    path: format!("in/{i:06}.csv"),
                    identity: format!("in/{i:06}.csv|1|1"),
                    state: FileState::Done,
                    ..Default::default()
                },
            })
            .collect();
        ledger.commit(&t).unwrap();
    }
    drop(ledger);
    let forgot = wharf(&state, &["forget", "gone", "--flows", flows, "--yes"]);
    assert_eq!(forgot.status.code(), Some(0), "{}", stderr(&forgot));
    let compacted = wharf(&state, &["compact", "--json"]);
    assert_eq!(compacted.status.code(), Some(0), "{}", stderr(&compacted));
    let (before, after) = (json(&compacted)["bytes_before"].as_u64().unwrap(), json(&compacted)["bytes_after"].as_u64().unwrap());
    assert!(after * 4 < before, "{before} bytes, then {after}");
    assert_eq!(std::fs::metadata(state.join("ledger.redb")).unwrap().len(), after);
    let text = wharf(&state, &["compact"]);
    assert!(stdout(&text).starts_with(&format!("compacted the ledger at {}: ", state.join("ledger.redb").display())), "{}", stdout(&text));
    assert_eq!(Ledger::open_read_only(&state.join("ledger.redb")).unwrap().files("kept").unwrap().len(), 10);

    let _held = Ledger::open(&state.join("ledger.redb")).unwrap();
    let socket = state.join("wharf.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let info = ServeInfo { pid: std::process::id(), socket: socket.clone(), http: None, started_at: Utc::now(), version: "test".into() };
    info.write(&ServeInfo::path_in(&state)).unwrap();
    let refused = wharf(&state, &["compact"]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    let expected = format!("compact: the ledger at {} is held by `wharf serve`", state.join("ledger.redb").display());
    assert!(
        stderr(&refused).contains(&expected) && stderr(&refused).contains("; stop the daemon to compact the ledger"),
        "{}",
        stderr(&refused)
    );
}

/// A name the ledger has nothing of (misspelt, or in another letter case: names are
/// case-sensitive) says which flows it does have runs of (before: only "nothing to forget",
/// exit 0, which read as done).
#[test]
fn forget_of_a_name_with_no_records_names_the_flows_the_ledger_has() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let file = local_flow(dir.path(), "partner");
    let ran = wharf(&state, &["run", file.to_str().unwrap()]);
    assert_eq!(ran.status.code(), Some(0), "{}{}", stdout(&ran), stderr(&ran));
    std::fs::remove_file(&file).unwrap();
    let flows = dir.path().join("flows");
    let out = wharf(&state, &["forget", "Partner", "--flows", flows.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("flow Partner has no records")
            && stdout(&out).contains("(flows it has runs of: partner) (did you mean `partner`?)"),
        "{}",
        stdout(&out)
    );
}
