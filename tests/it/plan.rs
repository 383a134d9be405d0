//! `wharf plan` against a real OpenSSH sshd: what a run would do with each file, read-only —
//! the partner's folder and the state folder are exactly as before.

use crate::support;

use std::process::Command;

use support::sshd::Sshd;

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[test]
fn plan_lists_each_file_with_its_action_and_touches_nothing() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let inbox = sshd.data_dir().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    for (name, body) in [("a.csv", "1\n"), ("a.csv.done", ""), ("b.csv", "2\n")] {
        std::fs::write(inbox.join(name), body).unwrap();
    }
    sshd.give_to_user(&inbox);
    let flow = dir.path().join("partner.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: partner\nendpoints:\n  p:\n{}  l: {{ type: local, root: {} }}\nsource:\n  endpoint: p\n  path: /in\n  include: ['*.csv']\n  ready: {{ done_file: \"{{{{name}}}}.done\" }}\nsinks: [ {{ endpoint: l, path: /inbox, name: \"{{{{stem}}}}-{{{{run}}}}.csv\" }} ]\nafter: {{ success: {{ move_to: /in/processed }} }}\n",
            sshd.endpoint_yaml(4),
            dir.path().join("local").display()
        ),
    )
    .unwrap();
    let before = listing(&inbox);
    let state = dir.path().join("state");
    let out =
        Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("plan").arg(&flow).arg("--json").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    let files = plan["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{plan}");
    assert_eq!(files[0]["path"], "/in/a.csv");
    assert_eq!(files[0]["action"], "deliver");
    assert_eq!(files[0]["targets"][0], "l:/inbox/a-1.csv", "{plan}");
    assert_eq!(files[0]["then"], "move the source to /in/processed/ (a free name if taken)");
    assert_eq!(files[1]["action"], "wait");
    assert_eq!(files[1]["why"], "no done file \"b.csv.done\" yet");

    assert_eq!(listing(&inbox), before, "the partner's folder is untouched");
    assert!(!state.join("ledger.redb").exists(), "no ledger was created");
    assert!(!dir.path().join("local").exists(), "nothing was delivered");

    // The text form says the same for people.
    let out = Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("plan").arg(&flow).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deliver   /in/a.csv (2 bytes) → l:/inbox/a-1.csv; then move the source"), "{text}");
    assert!(text.contains("wait      /in/b.csv: no done file"), "{text}");
}

/// `{{run}}` in a planned name is the number the next run gets, whatever flow had the runs
/// before it: with the newest run's flow forgotten (`wharf forget`), it was that run's number
/// again (taken from the runs left, not the ledger's numbering).
#[test]
fn the_planned_run_number_is_the_next_one_after_a_forgotten_flow() {
    let dir = support::tempdir();
    let root = dir.path().join("files");
    for d in ["outbox", "archive"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("outbox/a.csv"), "1\n").unwrap();
    let flow = dir.path().join("partner.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: partner\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n\
             source: {{ endpoint: outbox, path: /, include: [\"*.csv\"] }}\nsinks:\n  - {{ endpoint: archive, path: /, name: \"{{{{stem}}}}-{{{{run}}}}.csv\" }}\n",
            root.display()
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let ledger = wharf::ledger::Ledger::open(&state.join("ledger.redb")).unwrap();
    for f in ["kept", "gone", "gone"] {
        ledger.begin_run(f, wharf::ledger::now_millis()).unwrap();
    }
    while ledger.forget("gone", 100).unwrap().more {}
    drop(ledger);
    let out =
        Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("plan").arg(&flow).arg("--json").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(plan["files"][0]["targets"][0], "archive:/a-4.csv", "{plan}");
}

/// A target already on a partner's SFTP server (real OpenSSH): the plan says the run would
/// fail the file (`if_exists: fail`, the default) or take the next free name (`rename`), as a
/// run then does — and only looked: the server's folder is as it was.
#[test]
fn a_target_already_on_an_sftp_sink_is_planned_as_the_run_treats_it() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let out = sshd.data_dir().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("a.csv"), "theirs\n").unwrap();
    sshd.give_to_user(&out);
    let outbox = dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    std::fs::write(outbox.join("a.csv"), "ours\n").unwrap();
    let flow = dir.path().join("push.yaml");
    let write_flow = |if_exists: &str| {
        std::fs::write(
            &flow,
            format!(
                "name: push\nendpoints:\n  p:\n{}  l: {{ type: local, root: {} }}\nsource: {{ endpoint: l, path: /, include: ['*.csv'] }}\nsinks: [ {{ endpoint: p, path: /out, if_exists: {if_exists} }} ]\n",
                sshd.endpoint_yaml(4),
                outbox.display()
            ),
        )
        .unwrap()
    };
    let state = dir.path().join("state");
    let plan = || {
        let out =
            Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("plan").arg(&flow).arg("--json").output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{text}");
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    write_flow("fail");
    let p = plan();
    assert_eq!(p["files"][0]["action"], "fail", "{p}");
    assert!(p["files"][0]["why"].as_str().unwrap().starts_with("p:/out/a.csv exists already (sink if_exists: fail)"), "{p}");
    write_flow("rename");
    let p = plan();
    assert_eq!(p["files"][0]["action"], "deliver", "{p}");
    assert_eq!(p["files"][0]["targets"][0], "p:/out/a-1.csv (p:/out/a.csv is taken)", "{p}");
    assert_eq!(listing(&out), ["a.csv"], "only looked");
    assert_eq!(std::fs::read_to_string(out.join("a.csv")).unwrap(), "theirs\n");
    // The run takes the name the plan showed.
    let run = Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("run").arg(&flow).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read_to_string(out.join("a-1.csv")).unwrap(), "ours\n");
}
