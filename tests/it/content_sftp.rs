//! Content steps end to end through the `wharf` binary: the roster-import example flow against
//! a real OpenSSH sshd (rejects beside the output, a bad file quarantined on the partner's
//! server with its reports, `wharf quarantine` and `wharf runs`), partner files in other
//! encodings and CSV dialects, broken scripts and schemas, a script that never ends, and the
//! memory bound on a large CSV.

use crate::support;
use support::{text, wharf};

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::sshd::Sshd;
use support::{TempDir, tempdir};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// The roster-import example, copied with its script, look-up table and schema into a temp
/// folder (keeping their relative layout) and pointed at `sshd` and a local HR inbox.
struct Example {
    sshd: Sshd,
    dir: TempDir,
}

impl Example {
    fn new() -> Option<Example> {
        let sshd = Sshd::start()?;
        let dir = tempdir();
        let flows = dir.path().join("flows");
        for sub in ["scripts", "lookups"] {
            fs::create_dir_all(flows.join(sub)).unwrap();
            for e in fs::read_dir(repo(&format!("flows/{sub}"))).unwrap() {
                let e = e.unwrap();
                fs::copy(e.path(), flows.join(sub).join(e.file_name())).unwrap();
            }
        }
        fs::create_dir_all(dir.path().join("schemas/records")).unwrap();
        fs::copy(repo("schemas/records/roster.schema.json"), dir.path().join("schemas/records/roster.schema.json")).unwrap();
        let ex = Example { sshd, dir };
        ex.write_flow(|y| y);
        fs::create_dir_all(ex.remote("incoming")).unwrap();
        ex.sshd.give_to_user(ex.sshd.data_dir());
        Some(ex)
    }

    fn flow(&self) -> PathBuf {
        self.dir.path().join("flows/roster-import.yaml")
    }

    /// Writes the example flow pointed at the test server, after `edit`.
    fn write_flow(&self, edit: impl Fn(String) -> String) {
        let yaml = fs::read_to_string(repo("flows/roster-import.yaml"))
            .unwrap()
            .replace("port: 2299", &format!("port: {}", self.sshd.port))
            .replace("user: wharfdemo", &format!("user: {}", self.sshd.user()))
            .replace("/tmp/wharf-demo/known_hosts", &self.sshd.known_hosts().display().to_string())
            .replace("/tmp/wharf-demo/partner", &self.sshd.data_dir().display().to_string())
            .replace("/tmp/wharf-demo/hr-inbox", &self.hr().display().to_string());
        fs::write(self.flow(), edit(yaml)).unwrap();
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.sshd.data_dir().join(rel)
    }

    fn hr(&self) -> PathBuf {
        self.dir.path().join("hr")
    }

    fn put_fixture(&self, name: &str) {
        fs::copy(repo(&format!("flows/fixtures/roster/{name}")), self.remote(&format!("incoming/{name}"))).unwrap();
        self.sshd.give_to_user(&self.remote("incoming"));
    }

    fn wharf(&self) -> Command {
        let mut c = wharf(&self.dir.path().join("state"));
        c.env("WHARF_DEMO_PASSWORD", self.sshd.password());
        c
    }
}

#[test]
fn roster_import_example_runs_over_sftp_with_rejects_and_quarantine() {
    let Some(ex) = Example::new() else { return };
    ex.put_fixture("ROSTER_20260105.csv");
    ex.put_fixture("ROSTER_20260106.csv");
    let out = ex.wharf().arg("run").arg("--json").arg(ex.flow()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = json(&out);
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(1)), "{r:#}");
    assert_eq!(r["records"], serde_json::json!({"read": 17, "valid": 11, "rejected": 5, "skipped": 1, "written": 10}), "{r:#}");

    // The good file: mapped output, and its one bad row beside it.
    let csv = fs::read_to_string(ex.hr().join("roster/ROSTER_20260105.csv")).unwrap();
    assert!(csv.starts_with("id,name,email,department,cost_center,start_date,weekly_hours\nE1001,Anna Müller,anna.mueller@example.com,Finance,4100,2019-02-01,38.5\n"), "{csv}");
    assert_eq!(csv.lines().count(), 11, "header + 10 records (1 rejected, 1 leaver dropped): {csv}");
    assert!(!csv.contains("E1007"), "the leaver is skipped");
    let rejects = fs::read_to_string(ex.hr().join("roster/ROSTER_20260105.rejects.csv")).unwrap();
    assert!(rejects.starts_with("_row;_line;_errors;") && rejects.contains("\n6;7;"), "{rejects}");
    assert!(rejects.ends_with(";1006;Frank;Weber;frank.weber(at)example.com;FIN;01.06.2020;40;active\n"), "{rejects}");
    assert!(ex.remote("incoming/processed/ROSTER_20260105.csv").exists());

    // The bad file: quarantined on the partner's server with its reports; source in failed/.
    let copy = ex.remote("incoming/rejected/ROSTER_20260106.csv");
    assert_eq!(fs::read(&copy).unwrap(), fs::read(repo("flows/fixtures/roster/ROSTER_20260106.csv")).unwrap());
    let report: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(ex.remote("incoming/rejected/ROSTER_20260106.csv.report.json")).unwrap()).unwrap();
    assert_eq!(report["flow"], "roster-import");
    assert_eq!(report["file"], "/incoming/ROSTER_20260106.csv");
    assert_eq!(report["counts"]["rejected"], 4);
    assert_eq!(
        report["errors"][0],
        serde_json::json!({"row": 2, "line": 3, "field": "employee_id", "message": "\"x2002\" is not of type \"integer\"", "source": "validate", "cause": "data"})
    );
    let txt = fs::read_to_string(ex.remote("incoming/rejected/ROSTER_20260106.csv.report.txt")).unwrap();
    assert!(txt.contains("row 4 (line 5): 6 fields, expected 8 (as in the header): too few"), "{txt}");
    assert!(txt.contains("row 5 (line 6): 9 fields, expected 8 (as in the header): too many"), "{txt}");
    assert!(ex.remote("incoming/failed/ROSTER_20260106.csv").exists() && !ex.remote("incoming/ROSTER_20260106.csv").exists());

    // `wharf runs` and `wharf quarantine list|show`.
    let runs = text(&ex.wharf().args(["runs", "roster-import"]).output().unwrap());
    assert!(runs.contains("17/11/5/1/10"), "{runs}");
    let list = text(&ex.wharf().args(["quarantine", "list", "roster-import"]).output().unwrap());
    assert!(list.contains("/incoming/ROSTER_20260106.csv") && list.contains("4 of 5 records are invalid"), "{list}");
    // In JSON, when as the report says it: RFC 3339, UTC, with milliseconds.
    let listed = json(&ex.wharf().args(["quarantine", "list", "roster-import", "--json"]).output().unwrap());
    let at = listed[0]["quarantine"]["at"].as_str().unwrap_or_else(|| panic!("a time: {listed:#}"));
    assert!(at.len() == 24 && at.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert_eq!(report["quarantined_at"], at);
    let show = ex.wharf().arg("quarantine").arg("show").arg(ex.flow()).arg("/incoming/ROSTER_20260106.csv").output().unwrap();
    assert!(show.status.success() && text(&show).contains("field email: \"olga.ivanova\" is not a valid email"), "{}", text(&show));

    // The partner's format is accepted as it is after all: allow every invalid row, reprocess.
    ex.write_flow(|y| y.replace("max_invalid: 10%", "max_invalid: 100%"));
    let out =
        ex.wharf().arg("quarantine").arg("reprocess").arg("--json").arg(ex.flow()).arg("incoming/ROSTER_20260106.csv").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = json(&out);
    assert_eq!(r["counts"]["delivered"], 1, "{r:#}");
    assert_eq!(fs::read_to_string(ex.hr().join("roster/ROSTER_20260106.csv")).unwrap().lines().count(), 2, "one good record");
    assert!(ex.hr().join("roster/ROSTER_20260106.rejects.csv").exists());
    assert!(!copy.exists(), "the copy left quarantine");
    let list = text(&ex.wharf().args(["quarantine", "list", "roster-import"]).output().unwrap());
    assert!(list.contains("no quarantined files"), "{list}");
    // Nothing is delivered twice.
    let r = json(&ex.wharf().arg("run").arg("--json").arg(ex.flow()).output().unwrap());
    assert_eq!(r["counts"]["delivered"], 0, "{r:#}");
}

/// The partner's bad file is quarantined, and another sent under the same name: each newer
/// file's record replaced the quarantined one, and `wharf quarantine` lost the earlier copy
/// (left in the quarantine folder on the partner's server, listed and released by nothing).
/// Now `list` shows every quarantined file of the name, a release by the name alone is
/// refused (exit 2) naming each copy, the earlier one cannot be reprocessed, `--copy`
/// releases one, and the corrected file is delivered meanwhile.
#[test]
fn a_quarantined_file_sent_again_under_its_name_stays_listed_and_releasable() {
    let Some(ex) = Example::new() else { return };
    let flow = ex.flow();
    let path = "/incoming/ROSTER_20260106.csv";
    let run = || {
        let out = ex.wharf().arg("run").arg("--json").arg(&flow).output().unwrap();
        json(&out)
    };
    let listed = || json(&ex.wharf().args(["quarantine", "list", "roster-import", "--json"]).output().unwrap());
    let q = |args: &[&str]| ex.wharf().arg("quarantine").arg(args[0]).arg(&flow).args(&args[1..]).output().unwrap();
    ex.put_fixture("ROSTER_20260106.csv");
    assert_eq!(run()["quarantined"], 1);
    // Sent again, still bad (one more bad row).
    let mut bad = fs::read(repo("flows/fixtures/roster/ROSTER_20260106.csv")).unwrap();
    bad.extend_from_slice(b"2009;Ida;Roth;ida.roth;XX;01.01.2023;40;active\n");
    fs::write(ex.remote("incoming/ROSTER_20260106.csv"), &bad).unwrap();
    ex.sshd.give_to_user(&ex.remote("incoming"));
    assert_eq!(run()["quarantined"], 1);
    let l = listed();
    let rows = l.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{l:#}");
    let copy = |i: usize| rows[i]["copy"].as_str().unwrap().to_string();
    let (first, second) = (copy(0), copy(1));
    assert_eq!(first, "partner:/incoming/rejected/ROSTER_20260106.csv", "{l:#}");
    assert!(rows[0]["earlier"]["replaced"].is_string() && rows[1]["earlier"].is_null(), "{l:#}");
    let second_file = ex.remote(&second["partner:/".len()..]);
    assert_eq!(fs::read(&second_file).unwrap(), bad);

    // Which one? Refused, naming both.
    let out = q(&["release", path]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains(&first) && text(&out).contains(&second) && text(&out).contains("--copy"), "{}", text(&out));
    // The earlier one is not what the name holds now.
    let out = q(&["reprocess", path, "--copy", &first]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("a newer file has been taken under that name since"), "{}", text(&out));
    assert!(ex.remote("incoming/rejected/ROSTER_20260106.csv").exists());

    // The corrected file: delivered, and both bad ones are earlier files now.
    fs::copy(repo("flows/fixtures/roster/ROSTER_20260105.csv"), ex.remote("incoming/ROSTER_20260106.csv")).unwrap();
    ex.sshd.give_to_user(&ex.remote("incoming"));
    assert_eq!(run()["counts"]["delivered"], 1);
    assert!(ex.hr().join("roster/ROSTER_20260106.csv").exists());
    let list = text(&ex.wharf().args(["quarantine", "list", "roster-import"]).output().unwrap());
    assert_eq!(list.matches("/incoming/ROSTER_20260106.csv (earlier)").count(), 2, "{list}");
    assert!(list.contains(&first) && list.contains(&second), "{list}");

    // Released by its copy: that copy and its reports go, the other stays.
    let out = q(&["release", path, "--copy", &first]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for gone in ["", ".report.json", ".report.txt"] {
        assert!(!ex.remote(&format!("incoming/rejected/ROSTER_20260106.csv{gone}")).exists(), "{gone}");
    }
    assert!(second_file.exists());
    // One left: the name alone says which.
    let out = q(&["release", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!second_file.exists());
    let list = text(&ex.wharf().args(["quarantine", "list", "roster-import"]).output().unwrap());
    assert!(list.contains("no quarantined files"), "{list}");
    // The delivered file's record is untouched: nothing is delivered again.
    assert_eq!(run()["counts"]["delivered"], 0);
}

/// A generic flow over the test server: `/in/*` parsed with `parse` and written as JSON Lines.
fn dialect_flow(sshd: &Sshd, dir: &Path, name: &str, parse: &str) -> PathBuf {
    let yaml = format!(
        "name: {name}\nendpoints:\n  partner:\n{ep}  out: {{ type: local, root: {out:?} }}\nsource: {{ endpoint: partner, path: /in/{name} }}\nsteps:\n  - parse: {parse}\n  - write: {{ format: jsonl }}\nquarantine: {{ endpoint: out, path: /rejected }}\nsinks: [ {{ endpoint: out, path: /{name} }} ]\n",
        ep = sshd.endpoint_yaml(4),
        out = dir.join("out").display().to_string(),
    );
    let p = dir.join(format!("{name}.yaml"));
    fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn partner_files_in_other_encodings_and_csv_dialects() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = tempdir();
    let put = |rel: &str, body: &[u8]| {
        let p = sshd.data_dir().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    };
    // A supplier list: quoted delimiters, quotes and line breaks inside fields.
    put(
        "in/suppliers/suppliers.csv",
        b"supplier_no,name,address,notes\n\
          S-100,\"Acme, Inc.\",\"12 Main St\nSuite 400\nSpringfield\",\"says \"\"hi\"\"\"\n\
          S-101,Globex,\"1 Globex Way\",\n",
    );
    // A Latin-1 price list from an old ERP: `;`, decimal commas, umlauts, a Windows-1252 euro sign.
    put("in/prices/preisliste.csv", b"Artikel;Bezeichnung;Preis\nA-1;K\xE4se \xAB Gouda \xBB;3,50 \x80\nA-2;Stra\xDFenkarte;12,00 \x80\n");
    sshd.give_to_user(sshd.data_dir());
    let state = dir.path().join("state");
    let run = |flow: &Path| {
        let out = wharf(&state).arg("run").arg("--json").arg(flow).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        json(&out)
    };
    let read_jsonl = |rel: &str| -> Vec<serde_json::Value> {
        fs::read_to_string(dir.path().join("out").join(rel)).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let r = run(&dialect_flow(&sshd, dir.path(), "suppliers", "{ format: csv }"));
    assert_eq!(r["records"]["written"], 2, "{r:#}");
    let recs = read_jsonl("suppliers/suppliers.jsonl");
    assert_eq!(recs[0]["name"], "Acme, Inc.");
    assert_eq!(recs[0]["address"], "12 Main St\nSuite 400\nSpringfield");
    assert_eq!(recs[0]["notes"], "says \"hi\"");
    let r = run(&dialect_flow(&sshd, dir.path(), "prices", "{ format: csv, delimiter: ';', encoding: latin1 }"));
    assert_eq!(r["records"]["written"], 2, "{r:#}");
    let recs = read_jsonl("prices/preisliste.jsonl");
    assert_eq!(recs[0]["Bezeichnung"], "Käse « Gouda »");
    assert_eq!(recs[0]["Preis"], "3,50 €");
    assert_eq!(recs[1]["Bezeichnung"], "Straßenkarte");
    // The same price list declared as UTF-8 is quarantined with a hint at `encoding`.
    put("in/prices2/preisliste.csv", b"Artikel;Preis\nK\xE4se;1\n");
    sshd.give_to_user(sshd.data_dir());
    let r = run(&dialect_flow(&sshd, dir.path(), "prices2", "{ format: csv, delimiter: ';' }"));
    assert_eq!(r["quarantined"], 1, "{r:#}");
    assert!(r["files"][0]["detail"].as_str().unwrap().contains("not valid UTF-8 on line 2 (byte offset 15); if it is Latin-1"), "{r:#}");
    let report = fs::read_to_string(dir.path().join("out/rejected/preisliste.csv.report.txt")).unwrap();
    assert!(report.contains("not valid UTF-8"), "{report}");
    // JSON Lines keeps the partner's key order (it was alphabetical), a new key where it
    // first appears.
    put("in/orders/orders.jsonl", b"{\"zeta\":1,\"id\":2}\n{\"id\":3,\"note\":\"x\",\"zeta\":4}\n");
    // Two files joined: the inner trailer is not taken for a record.
    put("in/joined/joined.csv", b"id,qty\n1,5\nTRL,1\nid,qty\n2,7\nTRL,1\n");
    sshd.give_to_user(sshd.data_dir());
    let r = run(&dialect_flow(&sshd, dir.path(), "orders", "{ format: jsonl }"));
    assert_eq!(r["records"]["written"], 2, "{r:#}");
    let text = fs::read_to_string(dir.path().join("out/orders/orders.jsonl")).unwrap();
    assert_eq!(text, "{\"zeta\":1,\"id\":2}\n{\"zeta\":4,\"id\":3,\"note\":\"x\"}\n");
    let r = run(&dialect_flow(&sshd, dir.path(), "joined", "{ format: csv, trailer: { marker: TRL, count_column: 2 } }"));
    assert_eq!(r["quarantined"], 1, "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("line 3 is a trailer row (`TRL,1`) but not the last row: two files joined?"), "{r:#}");
}

/// A local-only flow (no server) with the given steps, over `dir/in` → `dir/out`.
fn local_flow(dir: &Path, steps: &str) -> PathBuf {
    fs::create_dir_all(dir.join("in")).unwrap();
    let yaml = format!(
        "name: local\nendpoints:\n  in: {{ type: local, root: in }}\n  out: {{ type: local, root: out }}\nsource: {{ endpoint: in, path: / }}\nsteps:\n{steps}quarantine: {{ endpoint: out, path: /rejected }}\nsinks: [ {{ endpoint: out, path: / }} ]\n"
    );
    let p = dir.join("local.yaml");
    fs::write(&p, yaml).unwrap();
    p
}

#[test]
fn broken_scripts_and_schemas_are_caught_by_validate() {
    let dir = tempdir();
    fs::write(dir.path().join("syntax.rhai"), "// roster mapping\nfn map(r) {\n  let x = r.a +;\n  x\n}\n").unwrap();
    fs::write(dir.path().join("bad.schema.json"), r#"{ "type": "object", "properties": { "id": { "type": "integr" } } }"#).unwrap();
    let flow =
        local_flow(dir.path(), "  - parse: { format: csv }\n  - validate: { schema: bad.schema.json }\n  - map: { script: syntax.rhai }\n");
    let out = wharf(&dir.path().join("state")).arg("validate").arg(&flow).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    let f = flow.display().to_string();
    let line = |n: usize, rest: &str| t.lines().any(|l| l.starts_with(&format!("{f}:{n}:")) && l.contains(rest));
    assert!(line(8, "does not compile") && t.contains("(at /steps/1/validate/schema)"), "{t}");
    assert!(line(9, ": syntax.rhai line 3, col ") && t.contains("(at /steps/2/map/script)"), "{t}");
    // `wharf run` refuses the flow before touching anything.
    let out = wharf(&dir.path().join("state")).arg("run").arg(&flow).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_script_that_loops_forever_quarantines_its_file_and_the_run_goes_on() {
    let dir = tempdir();
    fs::write(dir.path().join("loop.rhai"), "fn map(r) {\n  if r.id == \"2\" { while true { } }\n  r\n}\n").unwrap();
    let flow =
        local_flow(dir.path(), "  - parse: { format: csv }\n  - map: { script: loop.rhai, timeout: 2s, max_operations: 1000000000000 }\n");
    fs::write(dir.path().join("in/a.csv"), "id\n1\n2\n3\n").unwrap();
    fs::write(dir.path().join("in/b.csv"), "id\n4\n").unwrap();
    let t = Instant::now();
    let out = wharf(&dir.path().join("state")).arg("run").arg("--json").arg(&flow).output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(30), "took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = json(&out);
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(1)), "{r:#}");
    let a = r["files"].as_array().unwrap().iter().find(|f| f["path"] == "/a.csv").unwrap();
    assert!(a["detail"].as_str().unwrap().contains("loop.rhai: stopped after the time limit of 2s for one file"), "{r:#}");
    assert_eq!(fs::read_to_string(dir.path().join("out/b.csv")).unwrap(), "id\n4\n");
    assert!(dir.path().join("out/rejected/a.csv.report.txt").exists());
}

/// A bug in the flow's own script does not ask the partner to correct a file that is fine; a
/// record its schema refuses does.
#[test]
fn a_script_bug_is_reported_as_the_flows_and_bad_data_as_the_partners() {
    let dir = tempdir();
    fs::write(dir.path().join("id.schema.json"), r#"{ "type": "object", "properties": { "id": { "type": "integer" } } }"#).unwrap();
    fs::write(dir.path().join("bug.rhai"), "fn map(r) {\n  #{ id: r.id, name: r.name.trimm() }\n}\n").unwrap();
    let flow = local_flow(
        dir.path(),
        "  - parse: { format: csv }\n  - validate: { schema: id.schema.json }\n  - map: { script: bug.rhai }\n  - write: { format: jsonl }\n",
    );
    fs::write(dir.path().join("in/fine.csv"), "id,name\n1,Anna\n2,Bob\n").unwrap();
    fs::write(dir.path().join("in/bad.csv"), "id,name\nx,Anna\n").unwrap();
    let out = wharf(&dir.path().join("state")).arg("run").arg("--json").arg(&flow).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = json(&out);
    assert_eq!(r["quarantined"], 2, "{r:#}");
    let detail =
        |path: &str| r["files"].as_array().unwrap().iter().find(|f| f["path"] == path).unwrap()["detail"].as_str().unwrap().to_string();
    assert!(detail("/fine.csv").contains("the flow's mapping script bug.rhai failed on 2 of 2 records"), "{r:#}");
    assert!(detail("/bad.csv").contains("1 of 1 records are invalid"), "{r:#}");

    let report = |name: &str| {
        let txt = fs::read_to_string(dir.path().join(format!("out/rejected/{name}.report.txt"))).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.path().join(format!("out/rejected/{name}.report.json"))).unwrap()).unwrap();
        (txt, json)
    };
    let (txt, json) = report("fine.csv");
    assert!(txt.contains("Reason:   the flow's mapping script bug.rhai failed on 2 of 2 records (on_invalid: quarantine)"), "{txt}");
    assert!(txt.contains("  [script] row 1 (line 2): bug.rhai line 2: Function not found: trimm"), "{txt}");
    assert!(!txt.contains("Please correct"), "{txt}");
    assert!(txt.contains("the file\nmay well be correct. It is held in quarantine for the flow's owner to look at"), "{txt}");
    assert_eq!(json["cause"], "script", "{json:#}");
    assert_eq!((&json["errors"][0]["source"], &json["errors"][0]["cause"]), (&"map".into(), &"script".into()), "{json:#}");

    let (txt, json) = report("bad.csv");
    assert!(txt.contains("  row 1 (line 2), field id: \"x\" is not of type \"integer\""), "{txt}");
    assert!(txt.ends_with("\nPlease correct the file and send it again.\n"), "{txt}");
    assert_eq!(json["cause"], "data", "{json:#}");
    assert_eq!((&json["errors"][0]["source"], &json["errors"][0]["cause"]), (&"validate".into(), &"data".into()), "{json:#}");
}

/// Runs a roster CSV of `bytes` through parse → validate → map → write over SFTP, and checks
/// that the peak RSS does not grow with the file: against the same run of a file of 64 KiB,
/// at most [`GROWTH_KIB`] more (a file read whole, or its records held, would add several
/// times the file's size). A release build, as `--long` runs the 1 GiB case, also stays under
/// 64 MiB in all; a debug build's image alone is ~37 MiB resident, so there the absolute
/// figure says nothing (it sat at 64–65 MiB for the 100 MiB file, whatever the file did).
fn large_csv_with_bounded_memory(bytes: u64, pad: usize) {
    let Some(small) = roster_run(64 << 10, pad) else { return };
    let Some(large) = roster_run(bytes, pad) else { return };
    eprintln!("peak RSS {large} KiB against {small} KiB for 64 KiB of the same records");
    assert!(large.saturating_sub(small) < GROWTH_KIB, "peak RSS {large} KiB: {small} KiB for a 64 KiB file, and grew with the file");
    if !cfg!(debug_assertions) {
        assert!(large < 64 * 1024, "peak RSS {large} KiB >= 64 MiB");
    }
}

/// How much more memory a large file may take than a small one through the same steps.
const GROWTH_KIB: u64 = 32 * 1024;

/// Generates a roster CSV of at least `bytes` on the server (streaming to disk), runs it
/// through the example's steps, checks every record arrived, and returns the run's peak RSS
/// in KiB. Each last name is padded with `pad` more letters: long records keep the record
/// count (and so the time the script takes) down where only the bytes matter.
fn roster_run(bytes: u64, pad: usize) -> Option<u64> {
    let ex = Example::new()?;
    let name = "ROSTER_20260107.csv";
    let path = ex.remote(&format!("incoming/{name}"));
    let mut rows = 0u64;
    {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(&path).unwrap());
        f.write_all(b"employee_id;first_name;last_name;email;department;start_date;weekly_hours;status\r\n").unwrap();
        let depts = ["FIN", "HR", "IT", "OPS", "SAL"];
        let padding = "x".repeat(pad);
        let mut written = 0u64;
        while written < bytes {
            rows += 1;
            let line = format!(
                "{rows};Vorname{rows};Nachname{rows}{padding};person.{rows}@example.com;{};{:02}.{:02}.20{:02};{},5;active\r\n",
                depts[(rows % 5) as usize],
                1 + rows % 28,
                1 + rows % 12,
                rows % 25,
                20 + rows % 20
            );
            f.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
        }
    }
    ex.sshd.give_to_user(&ex.remote("incoming"));
    // The size check of the example allows 100 MB; this test is about memory.
    ex.write_flow(|y| y.replace("max_size: 100MB", "max_size: 2GiB"));
    let t = Instant::now();
    let mut cmd = ex.wharf();
    cmd.arg("run").arg(ex.flow());
    // Halted once the file is delivered: the steps are behind us.
    let peak_kib = support::halt::run_and_kill_at(cmd, "delivered", Duration::from_secs(1800));
    let took = t.elapsed();
    let out = ex.wharf().arg("run").arg("--json").arg(ex.flow()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let delivered = ex.hr().join(format!("roster/{name}"));
    let lines = BufReader::new(fs::File::open(&delivered).unwrap()).lines().count() as u64;
    assert_eq!(lines, rows + 1, "every record mapped and written");
    eprintln!(
        "{} KiB CSV ({rows} records) through check, parse, validate, map, write over SFTP: {took:?}, peak RSS {peak_kib} KiB",
        bytes >> 10
    );
    Some(peak_kib)
}

/// Records of ~400 bytes (~260,000 of them): the file is larger than the memory bound, and
/// the test stays quick in a debug build (the dev profile compiles wharf at opt-level 0).
#[test]
fn a_100_mib_csv_streams_through_the_steps_with_bounded_memory() {
    large_csv_with_bounded_memory(100 << 20, 300);
}

/// The issue's 1 GiB case. Ignored by default: in a debug build it takes several minutes
/// (~7 minutes at opt-level 1: the script runs ~12 million times); `tests/run-all.sh --long`
/// runs it in a release build (`cargo test --release --test it content_sftp:: -- --ignored`).
#[test]
#[ignore]
fn a_1_gib_csv_streams_through_the_steps_with_bounded_memory() {
    large_csv_with_bounded_memory(1 << 30, 0);
}

/// SIGKILL at a content halt point, then a rerun: the good file's output and rejects are
/// delivered exactly once, the bad file is quarantined exactly once with one pair of reports,
/// and both sources are disposed of.
fn content_crash_and_recover(point: &str) {
    let Some(ex) = Example::new() else { return };
    ex.put_fixture("ROSTER_20260105.csv");
    ex.put_fixture("ROSTER_20260106.csv");
    let mut cmd = ex.wharf();
    cmd.arg("run").arg(ex.flow());
    support::halt::run_and_kill_at(cmd, point, Duration::from_secs(120));
    let out = ex.wharf().arg("run").arg("--json").arg(ex.flow()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "after a kill at {point}: {}", text(&out));
    if point.starts_with("quarantine_dispos") {
        // The `move_to` name was recorded before the move: the rerun says where the source went.
        let r = json(&out);
        let files = r["files"].as_array().unwrap();
        let f = files.iter().find(|f| f["outcome"] == "quarantined").unwrap_or_else(|| panic!("{r:#}"));
        assert!(f["detail"].as_str().unwrap().contains("; source moved to /incoming/failed/ROSTER_20260106.csv"), "{r:#}");
    }
    let names = |dir: PathBuf| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    };
    // A second delivery would fail (`if_exists: fail`) or show up under another name.
    assert_eq!(names(ex.hr().join("roster")), ["ROSTER_20260105.csv", "ROSTER_20260105.rejects.csv"], "after a kill at {point}");
    assert_eq!(fs::read_to_string(ex.hr().join("roster/ROSTER_20260105.csv")).unwrap().lines().count(), 11);
    assert_eq!(
        names(ex.remote("incoming/rejected")),
        ["ROSTER_20260106.csv", "ROSTER_20260106.csv.report.json", "ROSTER_20260106.csv.report.txt"],
        "one copy, one report, after a kill at {point}"
    );
    assert_eq!(
        fs::read(ex.remote("incoming/rejected/ROSTER_20260106.csv")).unwrap(),
        fs::read(repo("flows/fixtures/roster/ROSTER_20260106.csv")).unwrap()
    );
    assert!(ex.remote("incoming/processed/ROSTER_20260105.csv").exists() && !ex.remote("incoming/ROSTER_20260105.csv").exists());
    assert!(ex.remote("incoming/failed/ROSTER_20260106.csv").exists() && !ex.remote("incoming/ROSTER_20260106.csv").exists());
    let list = text(&ex.wharf().args(["quarantine", "list", "roster-import"]).output().unwrap());
    assert_eq!(list.matches("/incoming/ROSTER_20260106.csv").count(), 1, "{list}");
    // A third run has nothing to do.
    let r = json(&ex.wharf().arg("run").arg("--json").arg(ex.flow()).output().unwrap());
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(0), Some(0)), "{r:#}");
    // Whoever is told about quarantined files is told once, whichever run recorded it.
    let events = json(&ex.wharf().args(["events", "roster-import", "--json"]).output().unwrap());
    let told: Vec<&str> =
        events.as_array().unwrap().iter().filter(|e| e["kind"] == "quarantined").map(|e| e["subject"].as_str().unwrap()).collect();
    assert_eq!(told, ["/incoming/ROSTER_20260106.csv"], "one `quarantined` event after a kill at {point}: {events:#}");
}

#[test]
fn sigkill_after_processing_then_rerun_delivers_every_output_once() {
    content_crash_and_recover("processed");
}

#[test]
fn sigkill_while_quarantining_then_rerun_quarantines_once_with_one_report() {
    content_crash_and_recover("quarantining");
}

/// Killed once the copy is made and the source moved to `failed/` (`after.failure`), before
/// the file was recorded quarantined: the source is no longer listed, and the rerun records
/// it quarantined from its copy (`wharf quarantine list` shows it). Before, it stayed
/// `quarantining` for ever, seen by no run and no `wharf quarantine` command.
#[test]
fn sigkill_after_quarantine_disposal_then_rerun_records_it_quarantined() {
    content_crash_and_recover("quarantine_disposed");
}

/// Killed once the file is recorded quarantined, before the run's end: its `quarantined`
/// event was stored with that record. Before, the event was stored with the run's record at
/// its end: this kill lost it, and the rerun, finding the file settled, raised none (found by
/// tests/soak.sh).
#[test]
fn sigkill_once_quarantined_then_its_event_is_recorded_all_the_same() {
    content_crash_and_recover("quarantined");
}

/// Killed once the copy is made and the `after.failure: move_to` name recorded, before the
/// source was moved: the rerun moves it to that name and records it quarantined, once.
#[test]
fn sigkill_before_the_quarantine_disposal_then_rerun_moves_the_source_to_the_name_recorded() {
    content_crash_and_recover("quarantine_disposing");
}
