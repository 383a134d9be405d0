//! `wharf quarantine` and `wharf files` through the binary, over a local-only flow (no
//! server): what they say of an earlier quarantined file (one a newer file under its name
//! replaced), named by its source path or by its copy's.

use crate::support;
use support::{text, wharf};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::tempdir;

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// A local flow `local` over `dir/in` → `dir/out` whose schema wants an integer `id`: a file
/// with another is quarantined to `out:/rejected`.
fn flow(dir: &Path) -> PathBuf {
    fs::create_dir_all(dir.join("in")).unwrap();
    fs::write(dir.join("id.schema.json"), r#"{ "type": "object", "properties": { "id": { "type": "integer" } } }"#).unwrap();
    let yaml = "name: local\nendpoints:\n  in: { type: local, root: in }\n  out: { type: local, root: out }\nsource: { endpoint: in, path: / }\nsteps:\n  - parse: { format: csv }\n  - validate: { schema: id.schema.json }\n  - write: { format: csv }\nquarantine: { endpoint: out, path: /rejected }\nsinks: [ { endpoint: out, path: /inbox } ]\n";
    let p = dir.join("local.yaml");
    fs::write(&p, yaml).unwrap();
    p
}

/// A bad `a.csv` is quarantined, then a corrected one sent under its name delivered: the bad
/// one is an earlier quarantined file. `wharf files` shows it (before: only `wharf quarantine
/// list` did), `show` and `release` take its copy's path as the path (before: only through
/// `--copy`), and a release of it whose copy no longer holds its bytes says so, and where the
/// copy is, in its own output (before: "removed: nothing", and only a log line said why).
#[test]
fn an_earlier_quarantined_file_is_seen_by_files_and_named_by_its_copy() {
    let dir = tempdir();
    let flow = flow(dir.path());
    let state = dir.path().join("state");
    let run = || {
        let out = wharf(&state).arg("run").arg("--json").arg(&flow).output().unwrap();
        json(&out)
    };
    fs::write(dir.path().join("in/a.csv"), "id\nx\n").unwrap();
    assert_eq!(run()["quarantined"], 1);
    // `show` of the path's file says what can be done about it.
    let out = wharf(&state).args(["quarantine", "show"]).arg(&flow).arg("/a.csv").output().unwrap();
    let t = text(&out);
    assert!(t.contains("next:        with the flow fixed (its steps, schema or script), `wharf quarantine reprocess local /a.csv`"), "{t}");
    assert!(t.contains("`wharf quarantine release local /a.csv` removes the copy"), "{t}");
    fs::write(dir.path().join("in/a.csv"), "id\n7\n").unwrap();
    assert_eq!(run()["counts"]["delivered"], 1);

    // `wharf files`: the delivered file, and the earlier one marked so.
    let out = wharf(&state).args(["files", "local"]).output().unwrap();
    let t = text(&out);
    let earlier = t.lines().find(|l| l.contains("/a.csv (earlier)")).unwrap_or_else(|| panic!("{t}"));
    assert!(earlier.starts_with("quarantined") && earlier.contains("in quarantine as out:/rejected/a.csv"), "{t}");
    assert!(t.lines().any(|l| l.starts_with("done") && l.contains("/a.csv ")), "{t}");
    let out = wharf(&state).args(["files", "local", "--json"]).output().unwrap();
    let v = json(&out);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{v:#}");
    let old = rows.iter().find(|r| r["state"] == "quarantined").unwrap();
    assert_eq!(old["copy"], "out:/rejected/a.csv", "{v:#}");
    assert!(old["earlier"]["replaced"].is_string(), "{v:#}");
    let now = rows.iter().find(|r| r["state"] == "done").unwrap();
    assert!(now.get("earlier").is_none() && now["path"] == "a.csv", "{v:#}");

    // `show` by the copy's path, with or without its endpoint.
    for given in ["out:/rejected/a.csv", "/rejected/a.csv"] {
        let out = wharf(&state).args(["quarantine", "show"]).arg(&flow).arg(given).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{given}: {}", text(&out));
        assert!(text(&out).contains("file:        /a.csv (5 bytes"), "{}", text(&out));
        assert!(!text(&out).contains("next:"), "an earlier file is only released: {}", text(&out));
    }

    // Its copy replaced by somebody else's file: left alone, and the release says so.
    fs::write(dir.path().join("out/rejected/a.csv"), "somebody else's").unwrap();
    let out = wharf(&state).args(["quarantine", "release", "--json"]).arg(&flow).arg("out:/rejected/a.csv").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!((&v["path"], &v["copy"]), (&"/a.csv".into(), &"out:/rejected/a.csv".into()), "{v:#}");
    assert_eq!(v["removed"], serde_json::json!([]), "{v:#}");
    assert_eq!(v["left"]["copy"], "out:/rejected/a.csv", "{v:#}");
    assert!(v["left"]["why"].as_str().unwrap().starts_with("it holds another file now"), "{v:#}");
    assert_eq!(fs::read_to_string(dir.path().join("out/rejected/a.csv")).unwrap(), "somebody else's");
    let out = wharf(&state).args(["quarantine", "list", "local"]).output().unwrap();
    assert!(text(&out).contains("no quarantined files"), "{}", text(&out));
}

/// The text of a release whose earlier file's copy is gone says it was not there, and names it.
#[test]
fn releasing_an_earlier_file_whose_copy_is_gone_says_so_in_text() {
    let dir = tempdir();
    let flow = flow(dir.path());
    let state = dir.path().join("state");
    let run = || json(&wharf(&state).arg("run").arg("--json").arg(&flow).output().unwrap());
    fs::write(dir.path().join("in/a.csv"), "id\nx\n").unwrap();
    assert_eq!(run()["quarantined"], 1);
    fs::write(dir.path().join("in/a.csv"), "id\n7\n").unwrap();
    assert_eq!(run()["counts"]["delivered"], 1);
    fs::remove_file(dir.path().join("out/rejected/a.csv")).unwrap();
    let out = wharf(&state).args(["quarantine", "release"]).arg(&flow).arg("/a.csv").output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("released /a.csv; removed: nothing"), "{t}");
    assert!(t.contains("left out:/rejected/a.csv where it is: it is not there (removed or moved since)"), "{t}");
}

/// A file its content steps let through with a warning (a `;`-separated CSV read as one
/// column) has it in `wharf files`, after its detail and as `"warning"` in `--json` (before:
/// only its run's report said it); a file without one has `null`, and a newer file under the
/// name, delivered without one, has none. A file given up and quarantined after its steps
/// warned has it in `wharf quarantine show`.
#[test]
fn files_shows_the_content_warning_of_a_file_let_through() {
    let dir = tempdir();
    let flow = flow(dir.path());
    let state = dir.path().join("state");
    let run = || json(&wharf(&state).arg("run").arg("--json").arg(&flow).output().unwrap());
    fs::write(dir.path().join("in/a.csv"), "id;email\n1;a@x\n").unwrap();
    fs::write(dir.path().join("in/b.csv"), "id\n7\n").unwrap();
    let r = run();
    assert_eq!(r["counts"]["delivered"], 2, "{r:#}");
    let hint = "the header is one column `id;email`: is the delimiter `;`?";

    let out = wharf(&state).args(["files", "local"]).output().unwrap();
    let t = text(&out);
    let a = t.lines().find(|l| l.contains("/a.csv ")).unwrap_or_else(|| panic!("{t}"));
    assert!(a.contains("/inbox/a.csv; warning: ") && a.contains(hint) && a.contains("(run 1, "), "{t}");
    let b = t.lines().find(|l| l.contains("/b.csv ")).unwrap_or_else(|| panic!("{t}"));
    assert!(!b.contains("warning"), "{t}");

    let v = json(&wharf(&state).args(["files", "local", "--json"]).output().unwrap());
    let row = |p: &str| v.as_array().unwrap().iter().find(|r| r["path"] == p).cloned().unwrap_or_else(|| panic!("{v:#}"));
    let w = &row("a.csv")["warning"];
    assert!(w["text"].as_str().unwrap().starts_with(hint), "{v:#}");
    assert_eq!(w["run"], 1, "{v:#}");
    assert!(w["at"].as_str().unwrap().ends_with('Z'), "{v:#}");
    assert!(row("b.csv")["warning"].is_null(), "{v:#}");
    assert_eq!(row("a.csv")["state"], "done", "the record's fields are as they were: {v:#}");

    // Given up after its steps let it through (its deliveries failing), then quarantined, as
    // `retry.give_up_after` leaves it: `wharf quarantine show` says the warning too.
    {
        use wharf::ledger::{FileRecord, FileState, Ledger, QuarantineRecord};
        let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
        let rec = ledger.file("local", "a.csv").unwrap().unwrap();
        let before = ledger.file_result("local", "a.csv").unwrap().unwrap_or_default();
        let mut result = before.clone();
        let reason = "gave up after failing in 10 runs".to_string();
        result.quarantine = Some(QuarantineRecord { reason, at: rec.updated, endpoint: "out".into(), ..Default::default() });
        ledger.put_file_and_result("local", &FileRecord { state: FileState::Quarantined, ..rec.clone() }, &result).unwrap();
        drop(ledger);
        let out = wharf(&state).args(["quarantine", "show"]).arg(&flow).arg("/a.csv").output().unwrap();
        let t = text(&out);
        assert!(t.lines().any(|l| l.starts_with("warning:     the header is one column `id;email`") && l.contains("(run 1, ")), "{t}");
        // Back as it was: delivered.
        Ledger::open(&state.join("ledger.redb")).unwrap().put_file_and_result("local", &rec, &before).unwrap();
    }

    fs::write(dir.path().join("in/a.csv"), "id\n8\n").unwrap();
    fs::remove_file(dir.path().join("out/inbox/a.csv")).unwrap();
    let r = run();
    assert_eq!(r["counts"]["delivered"], 1, "{r:#}");
    let v = json(&wharf(&state).args(["files", "local", "--json"]).output().unwrap());
    let a = v.as_array().unwrap().iter().find(|r| r["path"] == "a.csv").unwrap();
    assert!(a["warning"].is_null(), "{v:#}");
}

/// A file a crashed run left being quarantined, its source gone and no copy of it made:
/// `release` gives it up and says so, in text and JSON (before: "removed: nothing", as if a
/// quarantined file's copy had been released).
#[test]
fn releasing_a_file_left_quarantining_with_nothing_aside_says_it_was_given_up() {
    let dir = tempdir();
    let flow = flow(dir.path());
    let state = dir.path().join("state");
    fs::write(dir.path().join("in/a.csv"), "id\nx\n").unwrap();
    let out = wharf(&state).arg("run").arg("--json").arg(&flow).output().unwrap();
    assert_eq!(json(&out)["quarantined"], 1);
    // As a crash before the copy was made leaves it, its source gone since.
    let left_quarantining = || {
        let ledger = wharf::ledger::Ledger::open(&state.join("ledger.redb")).unwrap();
        let mut rec = ledger.file("local", "a.csv").unwrap().unwrap();
        rec.state = wharf::ledger::FileState::Quarantining;
        ledger.put_file("local", &rec).unwrap();
        fs::remove_dir_all(dir.path().join("out/rejected")).unwrap();
        fs::remove_file(dir.path().join("in/a.csv")).unwrap();
    };
    left_quarantining();
    let out = wharf(&state).args(["quarantine", "release", "--json"]).arg(&flow).arg("/a.csv").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v = json(&out);
    assert_eq!((&v["path"], &v["removed"]), (&"/a.csv".into(), &serde_json::json!([])), "{v:#}");
    let given_up = v["given_up"].as_str().unwrap_or_else(|| panic!("{v:#}"));
    assert!(
        given_up.contains("nothing had been put aside") && given_up.contains("forgotten as the file at /a.csv: its record (5 bytes"),
        "{v:#}"
    );
    let out = wharf(&state).args(["files", "local"]).output().unwrap();
    assert!(text(&out).contains("no files recorded"), "{}", text(&out));

    // In text, the same (put back in the same state first).
    fs::write(dir.path().join("in/a.csv"), "id\nx\n").unwrap();
    assert_eq!(json(&wharf(&state).arg("run").arg("--json").arg(&flow).output().unwrap())["quarantined"], 1);
    left_quarantining();
    let out = wharf(&state).args(["quarantine", "release"]).arg(&flow).arg("/a.csv").output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.starts_with("released /a.csv: given up: left quarantining by a run that stopped before it was recorded quarantined"), "{t}");
    assert!(t.contains("nothing had been put aside"), "{t}");
    assert!(!t.contains("removed: nothing"), "{t}");
}

/// `show` and `status` read the ledger: a flow whose secrets are not set where they are used
/// (the run has them) is shown, not refused with "1 problem(s); nothing was run". Commands
/// that reach endpoints still need them, and say what was not done.
#[test]
fn show_and_status_need_no_secrets_and_release_says_what_was_not_done() {
    let dir = tempdir();
    let flow = flow(dir.path());
    let text_of = fs::read_to_string(&flow).unwrap().replace(
        "endpoints:\n",
        "endpoints:\n  partner: { type: sftp, host: 127.0.0.1, user: u, auth: { password: \"${env:WHARF_TEST_PARTNER_PW}\" }, host_key: { known_hosts: kh } }\n",
    );
    fs::write(&flow, text_of).unwrap();
    let state = dir.path().join("state");
    fs::write(dir.path().join("in/a.csv"), "id\nx\n").unwrap();
    let out = wharf(&state).env("WHARF_TEST_PARTNER_PW", "pw").arg("run").arg("--json").arg(&flow).output().unwrap();
    assert_eq!(json(&out)["quarantined"], 1, "{}", text(&out));

    let out = wharf(&state).env_remove("WHARF_TEST_PARTNER_PW").args(["quarantine", "show"]).arg(&flow).arg("/a.csv").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("file:        /a.csv (5 bytes"), "{}", text(&out));

    let out = wharf(&state).env_remove("WHARF_TEST_PARTNER_PW").current_dir(dir.path()).args(["status", "--flows", "."]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("local ") && !text(&out).contains("invalid flow file"), "{}", text(&out));

    let out = wharf(&state).env_remove("WHARF_TEST_PARTNER_PW").args(["quarantine", "release"]).arg(&flow).arg("/a.csv").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("environment variable `WHARF_TEST_PARTNER_PW` is not set") && t.contains("1 problem(s); nothing was released"),
        "{t}"
    );
    assert!(!t.contains("nothing was run"), "{t}");
}
