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
    assert_eq!(files[0]["then"], "move the source to /in/processed/a.csv");
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

/// What a run writes beside a delivery on a partner's SFTP server (real OpenSSH), and where
/// it moves the source, are planned as the run then does them: the trigger that replaces an
/// empty one, the trigger refused by a partner's file of its name (the file fails, delivered),
/// the rejects file's free name (`if_exists: rename`), the free name in `processed/`. Before,
/// the plan showed only the target, "deliver" for the file the run fails, and
/// `processed/ (a free name if taken)`.
#[test]
fn what_a_run_writes_beside_a_delivery_and_where_it_moves_the_source_are_planned_as_it_does() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let data = sshd.data_dir();
    for d in ["out/processed", "inbox"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    let files = [
        ("out/a.csv", "id,email\n1,a@x\n2,no-at\n"),
        ("out/b.csv", "id,email\n3,b@x\n"),
        ("out/processed/a.csv", "moved before\n"),
        ("inbox/a.csv.ok", ""),
        ("inbox/a.rejects.csv", "an older rejects file\n"),
        ("inbox/b.csv.ok", "partner"),
    ];
    for (name, body) in files {
        std::fs::write(data.join(name), body).unwrap();
    }
    sshd.give_to_user(data);
    std::fs::write(
        dir.path().join("roster.schema.json"),
        r#"{ "type": "object", "required": ["id", "email"], "properties": { "email": { "type": "string", "pattern": "@" } } }"#,
    )
    .unwrap();
    let flow = dir.path().join("push.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: push\nendpoints:\n  p:\n{}source: {{ endpoint: p, path: /out, include: ['*.csv'] }}\n\
             steps:\n  - parse: {{ format: csv }}\n  - validate: {{ schema: roster.schema.json }}\n  - write: {{ format: csv, columns: [id, email] }}\n\
             on_invalid: skip\nquarantine: {{ endpoint: p, path: /out/rejected }}\nsinks: [ {{ endpoint: p, path: /inbox, if_exists: rename, trigger: \"{{{{name}}}}.ok\" }} ]\n\
             after: {{ success: {{ move_to: /out/processed }} }}\n",
            sshd.endpoint_yaml(4),
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let before = (listing(&data.join("out")), listing(&data.join("inbox")));
    let out =
        Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("plan").arg(&flow).arg("--json").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    let (a, b) = (&plan["files"][0], &plan["files"][1]);
    assert_eq!((&a["path"], &a["action"]), (&"/out/a.csv".into(), &"deliver".into()), "{plan:#}");
    assert_eq!(
        a["targets"],
        serde_json::json!([
            "p:/inbox/a.csv",
            "p:/inbox/a.rejects-1.csv (the rejects file, if records are rejected; p:/inbox/a.rejects.csv is taken)",
            "p:/inbox/a.csv.ok (trigger, replacing the empty one there)",
        ]),
        "{plan:#}"
    );
    assert_eq!(a["then"], "move the source to /out/processed/a-1.csv (/out/processed/a.csv is taken)", "{plan:#}");
    assert_eq!((&b["path"], &b["action"]), (&"/out/b.csv".into(), &"fail".into()), "{plan:#}");
    let why = b["why"].as_str().unwrap();
    assert!(
        why.contains("/inbox/b.csv.ok") && why.contains("holds 7 bytes") && why.contains("after delivering to p:/inbox/b.csv"),
        "{why}"
    );
    assert_eq!((listing(&data.join("out")), listing(&data.join("inbox"))), before, "a plan only looks");

    // The run does what the plan said.
    let run = Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("run").arg(&flow).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    let read = |p: &str| std::fs::read_to_string(data.join(p)).unwrap_or_else(|e| panic!("{p}: {e}\n{text}"));
    assert_eq!(read("inbox/a.csv"), "id,email\n1,a@x\n", "{text}");
    assert!(read("inbox/a.rejects-1.csv").contains("no-at"), "{text}");
    assert_eq!(read("inbox/a.csv.ok"), "");
    assert_eq!(read("out/processed/a-1.csv"), "id,email\n1,a@x\n2,no-at\n");
    assert_eq!(read("inbox/b.csv"), "id,email\n3,b@x\n", "delivered before the trigger failed");
    assert_eq!(read("inbox/b.csv.ok"), "partner", "never replaced");
    assert_eq!(read("out/b.csv"), "id,email\n3,b@x\n", "the failed file stays");
}

/// A run killed between a delivery and its trigger (halt point `triggering`) on a real
/// OpenSSH sshd: the next run writes only the trigger, or fails the file when the partner put
/// a file with content under the trigger's name meanwhile. The plan says which (it said only
/// `resume`, whatever was under the trigger's name).
#[test]
fn a_trigger_owed_after_a_crash_is_planned_as_the_resumed_run_writes_it() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let data = sshd.data_dir();
    for d in ["out", "inbox"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    std::fs::write(data.join("out/order.xml"), "<order/>").unwrap();
    sshd.give_to_user(data);
    let flow = dir.path().join("push.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: push\nendpoints:\n  p:\n{}source: {{ endpoint: p, path: /out }}\nsinks: [ {{ endpoint: p, path: /inbox, trigger: \"{{{{stem}}}}.ok\" }} ]\n",
            sshd.endpoint_yaml(4),
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let wharf = |what: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
        c.arg("--state-dir").arg(&state).arg(what).arg(&flow);
        c
    };
    drop(support::halt::run_until(wharf("run"), "triggering", std::time::Duration::from_secs(60)));
    assert_eq!(listing(&data.join("inbox")), ["order.xml"], "delivered, no trigger yet");
    let plan = || {
        let out = wharf("plan").arg("--json").output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{text}");
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
        plan["files"][0].clone()
    };

    let f = plan();
    assert_eq!(
        (&f["action"], &f["state"], &f["writes"]),
        (&"resume".into(), &"delivering".into(), &serde_json::json!(["p:/inbox/order.ok (trigger)"])),
        "{f:#}"
    );

    // The partner's own file under the trigger's name: the resumed run fails the file.
    std::fs::write(data.join("inbox/order.ok"), "partner").unwrap();
    let f = plan();
    assert_eq!(f["action"], "fail", "{f:#}");
    assert!(f["why"].as_str().unwrap().contains("/inbox/order.ok"), "{f:#}");
    let out = wharf("run").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 failed"), "{text}");
    assert_eq!(std::fs::read_to_string(data.join("inbox/order.ok")).unwrap(), "partner", "never replaced");

    // Gone: the file, retried, gets the trigger, and only the trigger.
    std::fs::remove_file(data.join("inbox/order.ok")).unwrap();
    let f = plan();
    assert_eq!(
        (&f["action"], &f["targets"]),
        (&"deliver".into(), &serde_json::json!(["p:/inbox/order.xml (delivered before)", "p:/inbox/order.ok (trigger)"])),
        "{f:#}"
    );
    let out = wharf("run").output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("1 delivered"), "{text}");
    assert_eq!(listing(&data.join("inbox")), ["order.ok", "order.xml"], "{text}");
    assert_eq!(std::fs::read_to_string(data.join("inbox/order.ok")).unwrap(), "");
}

/// A program still writing a file into a local outbox, pausing with the file open (no
/// readiness rule: nothing in its size or time tells it from a finished file): `wharf run`
/// does not take it (the other file goes), and `wharf plan` says why. Once the program wrote
/// the rest and closed it, the next run delivers it whole. Before, the first part was
/// delivered and counted sent.
#[test]
fn a_file_a_program_still_has_open_for_writing_waits_until_it_is_closed() {
    use std::io::{BufRead, Write};
    let dir = support::tempdir();
    let root = dir.path().join("files");
    let flow = support::local_flow(dir.path(), "push", &root);
    let state = dir.path().join("state");
    std::fs::write(root.join("outbox/b.csv"), "b\n").unwrap();
    // Writes its first part, says so, and writes the rest when told to.
    let mut writer = Command::new("sh")
        .args(["-c", "exec 3>>\"$1\"; echo part 1 >&3; echo held; read rest; echo \"$rest\" >&3", "sh"])
        .arg(root.join("outbox/a.csv"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    std::io::BufReader::new(writer.stdout.take().unwrap()).read_line(&mut said).unwrap();
    assert_eq!(said, "held\n");
    let file = |r: &serde_json::Value, path: &str| r["files"].as_array().unwrap().iter().find(|f| f["path"] == path).cloned().unwrap();
    let why = "still open for writing by another process; taken once it is closed";

    let (code, r) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!((code, support::counts(&r)), (0, (1, 1, 0, 0)), "{r:#}");
    assert_eq!((&file(&r, "/a.csv")["outcome"], file(&r, "/a.csv")["detail"].as_str()), (&"not_ready".into(), Some(why)), "{r:#}");
    assert!(!root.join("archive/a.csv").exists(), "nothing of it was delivered");
    let (code, p) = support::json_of(support::wharf(&state).args(["plan", "--json"]).arg(&flow));
    assert_eq!((code, &file(&p, "/a.csv")["action"], file(&p, "/a.csv")["why"].as_str()), (0, &"wait".into(), Some(why)), "{p:#}");
    let shown = support::stdout(&support::wharf(&state).arg("plan").arg(&flow).output().unwrap());
    assert!(shown.contains(&format!("wait      /a.csv: {why}")), "{shown}");

    writer.stdin.take().unwrap().write_all(b"part 2\n").unwrap();
    assert!(writer.wait().unwrap().success());
    let (code, r) = support::json_of(support::wharf(&state).args(["run", "--json"]).arg(&flow));
    assert_eq!((code, file(&r, "/a.csv")["outcome"].as_str()), (0, Some("delivered")), "{r:#}");
    assert_eq!(std::fs::read_to_string(root.join("archive/a.csv")).unwrap(), "part 1\npart 2\n");
}

/// `wharf plan` says when a scheduled flow runs next (in the schedule's zone, with the
/// offset; `schedule` in `--json`), and a cron without `timezone:` on a machine whose zone is
/// not UTC gets a note from `plan` and `validate` (exit 0: neither a problem nor a warning).
#[test]
fn plan_shows_the_next_scheduled_times_and_notes_a_cron_read_in_utc() {
    let dir = support::tempdir();
    let flow = support::local_flow(dir.path(), "nightly", &dir.path().join("files"));
    let text = std::fs::read_to_string(&flow).unwrap();
    let wharf = |tz: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wharf"))
            .env("TZ", tz)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .arg(&flow)
            .output()
            .unwrap()
    };
    std::fs::write(&flow, format!("{text}schedule: {{ cron: \"0 6 * * mon-fri\", timezone: Europe/Berlin }}\n")).unwrap();
    let out = wharf("Europe/Berlin", &["plan", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (plan["schedule"]["expression"].as_str(), plan["schedule"]["timezone"].as_str()),
        (Some("0 6 * * mon-fri"), Some("Europe/Berlin"))
    );
    let next: Vec<&str> = plan["schedule"]["next"].as_array().unwrap().iter().filter_map(|t| t.as_str()).collect();
    assert_eq!(next.len(), 3, "{plan}");
    assert!(next.iter().all(|t| t.contains("T06:00:00+0")), "{plan}");
    let out = wharf("Europe/Berlin", &["plan"]);
    let shown = support::stdout(&out);
    assert!(shown.contains("  schedule: 0 6 * * mon-fri (Europe/Berlin): next "), "{shown}");
    assert!(!shown.contains("set `timezone:"), "{shown}");

    // Without `timezone:`: UTC, whatever the machine's zone; said where that is not UTC.
    std::fs::write(&flow, format!("{text}schedule: {{ cron: \"0 6 * * *\" }}\n")).unwrap();
    // 07:00 here in winter, 08:00 in summer.
    let (note, here) = ("`0 6 * * *` runs at 06:00 UTC (0", " here in Europe/Berlin); set `timezone: Europe/Berlin` for local times");
    let shown = support::stdout(&wharf("Europe/Berlin", &["plan"]));
    assert!(shown.contains(&format!("  note: {note}")) && shown.contains(here), "{shown}");
    assert!(shown.contains("  schedule: 0 6 * * * (UTC): next "), "{shown}");
    let out = wharf("Europe/Berlin", &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out));
    assert!(support::stdout(&out).contains(&format!("{}: note: {note}", flow.display())), "{}", support::text(&out));
    assert!(!support::stdout(&wharf("UTC", &["plan"])).contains("note: `0 6"));
    assert!(!support::stdout(&wharf("Etc/UTC", &["validate"])).contains("note:"));
}
