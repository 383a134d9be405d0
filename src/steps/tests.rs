//! The pipeline as a whole: steps built from YAML-shaped raw config, run on files.

use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::config::raw_steps::RawStep;

/// Runs `steps` on `body` staged as `dir/staged`, writing `dir/out` and `dir/rejects`
/// (shared with the `render` tests).
pub(super) fn run_in(dir: &std::path::Path, steps: &Steps, name: &str, body: &[u8], vars: &NameVars) -> Processed {
    let staged = dir.join("staged");
    std::fs::write(&staged, body).unwrap();
    let input = Input {
        flow: "f",
        bytes: &dir.join("bytes"),
        piped: &dir.join("piped"),
        abandoned: None,
        vars,
        staged: &staged,
        name,
        size: body.len() as u64,
        sha256: "",
        checksum_text: None,
        row_count_text: None,
        output: &dir.join("out"),
        rejects: &dir.join("rejects"),
    };
    steps.run(&input).unwrap()
}

struct Bench {
    dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let b = Bench { dir: tempfile::tempdir().unwrap() };
        std::fs::write(
            b.path("roster.schema.json"),
            json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "required": ["id", "email"],
                "properties": { "id": { "type": "integer" }, "email": { "type": "string", "pattern": "@" }, "dept": { "type": "string" } }
            })
            .to_string(),
        )
        .unwrap();
        std::fs::write(b.path("depts.csv"), "code,name\nFIN,Finance\nHR,People\n").unwrap();
        std::fs::write(
            b.path("map.rhai"),
            "fn map(r) {\n  if r.dept == \"X\" { return (); }\n  #{ id: r.id, email: r.email.to_lower(), dept: lookup(\"depts\", r.dept, \"name\") }\n}\n",
        )
        .unwrap();
        b
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn steps(&self, yaml: &str, policy: &str) -> Steps {
        self.try_steps(yaml, policy).unwrap_or_else(|p| panic!("{p:#?}"))
    }

    fn try_steps(&self, yaml: &str, policy: &str) -> Result<Steps, Vec<Problem>> {
        // As the loader does: YAML → JSON value → types (serde_yaml alone wants `!tags` for enums).
        let raw: Vec<RawStep> = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
        let p: serde_json::Value = serde_yaml::from_str(if policy.is_empty() { "{}" } else { policy }).unwrap();
        let on_invalid = serde_json::from_value(p.get("on_invalid").cloned().unwrap_or(json!("quarantine"))).unwrap();
        let max: Option<RawMaxInvalid> = p.get("max_invalid").map(|v| serde_json::from_value(v.clone()).unwrap());
        build(&raw, on_invalid, max.as_ref(), self.dir.path())
    }

    fn run(&self, steps: &Steps, name: &str, body: &[u8]) -> Processed {
        let vars = NameVars::new(name.rsplit('/').next().unwrap_or(name), "", body.len() as u64, 7, std::time::UNIX_EPOCH);
        run_in(self.dir.path(), steps, name, body, &vars)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
}

const ROSTER_STEPS: &str = r#"
- parse: { format: csv }
- validate: { schema: roster.schema.json, required_columns: [id, email] }
- map: { script: map.rhai, lookups: { depts: { file: depts.csv, key: code } } }
- write: { format: csv, columns: [id, email, dept] }
"#;

#[test]
fn a_roster_goes_through_parse_validate_map_and_write() {
    let b = Bench::new();
    let steps = b.steps(ROSTER_STEPS, "");
    let p = b.run(&steps, "in/roster.csv", b"id,email,dept\r\n1,Anna@Example.com,FIN\r\n2,bob@example.com,X\r\n3,cy@example.com,HR\r\n");
    assert_eq!(p.quarantine, None);
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 2, rejected: 0, skipped: 1, written: 2 });
    assert_eq!(b.read("out"), "id,email,dept\n1,anna@example.com,Finance\n3,cy@example.com,People\n");
    assert_eq!(p.output, Some(b.read("out").len() as u64));
    assert_eq!(steps.output_ext(), Some("csv"));
}

#[test]
fn one_invalid_row_quarantines_the_file_by_default_with_every_error() {
    let b = Bench::new();
    let steps = b.steps(ROSTER_STEPS, "");
    let p = b.run(&steps, "roster.csv", b"id,email,dept\n1,a@x,FIN\nx,nomail,FIN\n3,c@x\n");
    let v = p.quarantine.expect("quarantined");
    assert_eq!(v.reason, "2 of 3 records are invalid (on_invalid: quarantine)");
    let shown: Vec<String> = v.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert_eq!(shown[0], r#"row 2 (line 3), field id: "x" is not of type "integer""#);
    assert!(shown[1].starts_with("row 2 (line 3), field email: "), "{shown:#?}");
    assert_eq!(shown[2], "row 3 (line 4): 2 fields, expected 3 (as in the header): too few");
    assert_eq!(p.counts.written, 0);
    assert!(!b.path("out").exists(), "no partial output is left");
}

/// Records the script failed on are the script's problem, in the reason and in every error;
/// records its schema or its `throw` refuse are the file's.
/// A misspelt column in the script: every record fails, naming the column meant (it gave
/// every row an empty column, the file delivered as good); `on_invalid` decides, as for any
/// failure of the script.
#[test]
fn a_script_reading_a_column_the_file_lacks_fails_its_records() {
    let b = Bench::new();
    std::fs::write(b.path("typo.rhai"), "fn map(r) {\n  #{ id: r.id, email: r.emial }\n}\n").unwrap();
    let steps = b.steps("- parse: { format: csv }\n- map: { script: typo.rhai }\n- write: { format: csv, columns: [id, email] }", "");
    let v = b.run(&steps, "a.csv", b"id,email\n1,a@x\n2,b@x\n").quarantine.unwrap();
    assert_eq!(v.reason, "the flow's mapping script typo.rhai failed on 2 of 2 records (on_invalid: quarantine)");
    assert_eq!(
        v.errors[0].message,
        "typo.rhai line 2: `emial` is not a column of this file (did you mean `email`?) (a column only some files have is read with `.get(\"emial\")`, `()` where it is missing)"
    );
    let steps = b.steps(
        "- parse: { format: csv }\n- map: { script: typo.rhai }\n- write: { format: csv, columns: [id, email] }",
        "{ on_invalid: skip }",
    );
    let p = b.run(&steps, "a.csv", b"id,email\n1,a@x\n");
    assert_eq!((p.counts.rejected, p.counts.written), (1, 0));
}

#[test]
fn a_failing_script_is_told_apart_from_invalid_data() {
    let b = Bench::new();
    std::fs::write(
        b.path("bug.rhai"),
        "fn map(r) {\n  if r.id == 0 { throw \"id 0 is not allowed\"; }\n  #{ id: r.id, email: r.email.to_lowr() }\n}\n",
    )
    .unwrap();
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: roster.schema.json }\n- map: { script: bug.rhai }", "");
    let sources = |v: &Verdict| v.errors.iter().map(|e| (e.row, e.source, e.cause)).collect::<Vec<_>>();

    // Every record fails on the script's own bug.
    let v = b.run(&steps, "a.csv", b"id,email\n1,a@x\n2,b@x\n").quarantine.unwrap();
    assert_eq!(v.reason, "the flow's mapping script bug.rhai failed on 2 of 2 records (on_invalid: quarantine)");
    assert_eq!(v.cause, Causes::Script);
    assert_eq!(sources(&v), [(Some(1), Some(Source::Map), Cause::Script), (Some(2), Some(Source::Map), Cause::Script)]);
    assert_eq!(v.errors[0].message, "bug.rhai line 3: Function not found: to_lowr (string)");

    // A schema error and the script's `throw` are the data's.
    let v = b.run(&steps, "b.csv", b"id,email\nx,a@x\n0,b@x\n").quarantine.unwrap();
    assert_eq!(v.reason, "2 of 2 records are invalid (on_invalid: quarantine)");
    assert_eq!(v.cause, Causes::Data);
    assert_eq!(sources(&v), [(Some(1), Some(Source::Validate), Cause::Data), (Some(2), Some(Source::Map), Cause::Data)]);
    assert_eq!(v.errors[1].message, "bug.rhai line 2: id 0 is not allowed");

    // Both.
    let v = b.run(&steps, "c.csv", b"id,email\nx,a@x\n1,b@x\n").quarantine.unwrap();
    assert_eq!(v.reason, "2 of 2 records are invalid (on_invalid: quarantine); on 1 of them, the flow's mapping script bug.rhai failed");
    assert_eq!(v.cause, Causes::Mixed);

    // A problem of the file as a whole says which step found it.
    let v = b.run(&steps, "d.csv", b"id,email\n1,\"a@x\n").quarantine.unwrap();
    assert_eq!((v.errors[0].row, v.errors[0].source, v.cause), (None, Some(Source::Parse), Causes::Data));
}

/// A `;`-separated file read with the default `,` is one column: whatever the file is then
/// refused for (a required column, the schema, a script that finds `()` in every field) says
/// which delimiter to set (before: only the failure, or for the schema and script nothing).
#[test]
fn a_file_read_as_one_column_is_refused_with_the_delimiter_to_set() {
    let b = Bench::new();
    let hint = "the header is one column `id;email`: is the delimiter `;`? (set `delimiter: ';'`)";
    let body = b"id;email\n1;a@x\n";
    let required = b.steps("- parse: { format: csv }\n- validate: { required_columns: [id, email] }", "");
    let v = b.run(&required, "a.csv", body).quarantine.unwrap();
    assert_eq!(v.reason, format!("the header lacks required column(s) `id`, `email`; {hint}"));
    let schema = b.steps("- parse: { format: csv }\n- validate: { schema: roster.schema.json }", "");
    let v = b.run(&schema, "a.csv", body).quarantine.unwrap();
    assert_eq!(v.reason, format!("1 of 1 records are invalid (on_invalid: quarantine); {hint}"));
    std::fs::write(b.path("amount.rhai"), "fn map(r) { #{ id: r.id + 1 } }").unwrap();
    let mapped = b.steps("- parse: { format: csv }\n- map: { script: amount.rhai }", "");
    let v = b.run(&mapped, "a.csv", body).quarantine.unwrap();
    assert!(
        v.reason.starts_with("the flow's mapping script amount.rhai failed on 1 of 1 records") && v.reason.ends_with(hint),
        "{}",
        v.reason
    );
    // Without a header: the first record.
    let headerless =
        b.steps("- parse: { format: csv, header: false, columns: [id, email] }\n- validate: { schema: roster.schema.json }", "");
    let v = b.run(&headerless, "a.csv", b"1|a@x\n").quarantine.unwrap();
    assert!(v.reason.ends_with("; the first record is one column `1|a@x`: is the delimiter `|`? (set `delimiter: '|'`)"), "{}", v.reason);
    // The right delimiter: no hint, nothing refused.
    let right = b.steps("- parse: { format: csv, delimiter: ';' }\n- validate: { required_columns: [id, email] }", "");
    assert!(b.run(&right, "a.csv", body).quarantine.is_none());
}

#[test]
fn skip_sends_bad_rows_to_rejects_until_the_threshold() {
    let b = Bench::new();
    let body = b"id,email,dept\n1,a@x,FIN\n2,bad,FIN\n3,c@x,HR\n4,d@x,HR\n";
    let steps = b.steps(ROSTER_STEPS, "{ on_invalid: skip, max_invalid: 25% }");
    let p = b.run(&steps, "r.csv", body);
    assert_eq!(p.quarantine, None, "1 of 4 is 25%");
    assert_eq!(p.counts, RecordCounts { read: 4, valid: 3, rejected: 1, skipped: 0, written: 3 });
    let rejects = b.read("rejects");
    assert!(rejects.starts_with("_row,_line,_errors,id,email,dept\n2,3,\"email: \"\"bad\"\" does not match"), "{rejects}");
    assert!(rejects.ends_with("\",2,bad,FIN\n"), "{rejects}");
    assert_eq!(p.rejects, Some(rejects.len() as u64));
    // 1 of 4 is more than 20%.
    let steps = b.steps(ROSTER_STEPS, "{ on_invalid: skip, max_invalid: 20% }");
    let p = b.run(&steps, "r.csv", body);
    assert_eq!(p.quarantine.unwrap().reason, "1 of 4 records are invalid (more than max_invalid: 20%)");
    assert!(!b.path("rejects").exists());
    let steps = b.steps(ROSTER_STEPS, "{ on_invalid: skip, max_invalid: 0 }");
    assert!(b.run(&steps, "r.csv", body).quarantine.is_some());
    let steps = b.steps(ROSTER_STEPS, "{ on_invalid: skip }");
    assert_eq!(b.run(&steps, "r.csv", body).counts.written, 3);
}

/// A header of 100,000 columns (one long line from a partner's broken export): its check for
/// a column named twice compared every name with those before it, and the CSV output searched
/// the column list for every key of every record — a hang (50,000 columns: 40 s; 3 million:
/// hours). Both are one pass now; this takes well under a second.
#[test]
fn a_header_of_very_many_columns_is_read_in_one_pass() {
    let b = Bench::new();
    let n = 100_000;
    let header: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let mut body = format!("{}\n{}\n", header.join(","), ",".repeat(n - 1));
    let started = std::time::Instant::now();
    let p = b.run(&b.steps("- parse: { format: csv }", ""), "wide.csv", body.as_bytes());
    assert_eq!((p.quarantine, p.counts.written), (None, 1));
    assert_eq!(b.read("out"), body);
    body.push_str("x\n");
    let p = b.run(&b.steps("- parse: { format: csv }", "{ on_invalid: skip }"), "wide.csv", body.as_bytes());
    assert_eq!((p.counts.written, p.counts.rejected), (1, 1));
    let dup = format!("{},c7\n", header[..n - 1].join(","));
    let p = b.run(&b.steps("- parse: { format: csv }", ""), "dup.csv", dup.as_bytes());
    assert_eq!(p.quarantine.unwrap().reason, "the header names column `c7` twice (columns 8 and 100000)");
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
}

#[test]
fn ragged_rows_line_up_in_the_rejects_file() {
    let b = Bench::new();
    let steps = b.steps("- parse: { format: csv }", "{ on_invalid: skip }");
    // `_row`, `_line` and `_errors` used to land under `name` or past the header.
    let p = b.run(&steps, "r.csv", b"id,name\n1,a\n2,b,EXTRA\n3\n");
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 1, rejected: 2, skipped: 0, written: 1 });
    assert_eq!(
        b.read("rejects"),
        "_row,_line,_errors,id,name\n\
         2,3,\"3 fields, expected 2 (as in the header): too many\",2,b,EXTRA\n\
         3,4,\"1 field, expected 2 (as in the header): too few\",3\n"
    );
}

#[test]
fn completeness_rules_quarantine_incomplete_files() {
    let b = Bench::new();
    let steps = b.steps(ROSTER_STEPS, "");
    let p = b.run(&steps, "r.csv", b"id,mail\n1,a@x\n");
    assert_eq!(
        p.quarantine.unwrap().reason,
        "the header lacks required column(s) `email` (the header has `mail`); column names are matched exactly, letter case included"
    );
    let steps = b.steps("- parse: { format: csv, trailer: { marker: TRL, count_column: 2 } }", "");
    let p = b.run(&steps, "r.csv", b"id,email\n1,a\n2,b\nTRL,3\n");
    assert_eq!(p.quarantine.unwrap().reason, "the trailer announces 3 records, but the file has 2");
    let p = b.run(&steps, "r.csv", b"id,email\n1,a\n2,b\nTRL,2\n");
    assert_eq!((p.quarantine, p.counts.written), (None, 2));
    assert_eq!(b.read("out"), "id,email\n1,a\n2,b\n", "the trailer is not copied as a record");
    // A companion row-count file.
    let steps = b.steps("- parse: { format: jsonl }\n- validate: { row_count_file: '{{stem}}.count' }", "");
    assert_eq!(steps.companions(&NameVars::new("r.jsonl", "", 0, 0, std::time::UNIX_EPOCH)).unwrap().row_count.as_deref(), Some("r.count"));
    let staged = b.path("staged");
    std::fs::write(&staged, "{\"a\":1}\n").unwrap();
    let (out, rej) = (b.path("out"), b.path("rejects"));
    let vars = NameVars::new("r.jsonl", "", 8, 1, std::time::UNIX_EPOCH);
    let (bytes, piped) = (b.path("bytes"), b.path("piped"));
    let input = |text: Option<Result<String, String>>| Input {
        flow: "f",
        bytes: &bytes,
        piped: &piped,
        abandoned: None,
        vars: &vars,
        staged: &staged,
        name: "r.jsonl",
        size: 8,
        sha256: "",
        checksum_text: None,
        row_count_text: text,
        output: &out,
        rejects: &rej,
    };
    assert!(steps.run(&input(Some(Ok("1\n".into())))).unwrap().quarantine.is_none());
    assert_eq!(
        steps.run(&input(Some(Ok("2".into())))).unwrap().quarantine.unwrap().reason,
        "the row count file announces 2 records, but the file has 1"
    );
    assert!(steps.run(&input(Some(Err("r.count not found".into())))).unwrap().quarantine.unwrap().reason.contains("missing"));
}

#[test]
fn an_unclosed_quote_quarantines_the_file_and_line_ends_are_kept() {
    let b = Bench::new();
    let steps = b.steps("- parse: { format: csv }", "{ on_invalid: skip }");
    // An unclosed quote: quarantined, not "1 read, 1 valid" with row 2 inside a cell.
    let p = b.run(&steps, "u.csv", b"id,name\n1,\"unterminated\n2,b\n");
    let v = p.quarantine.expect("quarantined");
    assert!(v.reason.contains("the quoted field opened on line 2 is never closed"), "{}", v.reason);
    assert!(!b.path("out").exists());
    // CR-only line ends: row 2 is on line 3 (it was "line 1").
    let p = b.run(&steps, "cr.csv", b"id,name\r1,a\r2\r3,c\r");
    assert_eq!(p.counts.rejected, 1);
    assert!(b.read("rejects").starts_with("_row,_line,_errors,id,name\n2,3,"), "{}", b.read("rejects"));
    // A CRLF inside a quoted cell is delivered as it came.
    let p = b.run(&steps, "q.csv", b"id,note\r\n1,\"a\r\nb\"\r\n");
    assert_eq!((p.quarantine, b.read("out")), (None, "id,note\n1,\"a\r\nb\"\n".to_string()));
}

#[test]
fn checks_refuse_a_file_before_it_is_parsed() {
    let b = Bench::new();
    let steps = b.steps("- check: { non_empty: true, name: '^R_\\d+\\.csv$' }\n- parse: { format: csv }", "");
    let p = b.run(&steps, "in/x.csv", b"");
    let v = p.quarantine.unwrap();
    assert_eq!(v.reason, "the file is empty (and 1 more problem(s))");
    assert_eq!(v.errors.len(), 2);
    assert_eq!(p.counts.read, 0);
    let p = b.run(&steps, "in/R_1.csv", b"a\n1\n");
    assert_eq!((p.quarantine, p.counts.read), (None, 1));
    // Checks alone: the original is delivered (no output file).
    let steps = b.steps("- check: { non_empty: true }", "");
    assert_eq!(steps.output_ext(), None);
    assert_eq!(b.run(&steps, "a.bin", b"x").output, None);
}

#[test]
fn a_script_that_loops_forever_quarantines_its_file_and_the_next_file_is_fine() {
    let b = Bench::new();
    std::fs::write(b.path("slow.rhai"), "fn map(r) { if r.n == \"2\" { let i = 0; loop { i += 1; } } r }").unwrap();
    let steps = b.steps("- parse: { format: csv }\n- map: { script: slow.rhai, timeout: 300ms, max_operations: 1000000000 }", "");
    let t = std::time::Instant::now();
    let p = b.run(&steps, "a.csv", b"n\n1\n2\n3\n");
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "{:?}", t.elapsed());
    let v = p.quarantine.unwrap();
    assert_eq!(
        v.reason,
        "the flow's mapping script failed: slow.rhai: stopped after the time limit of 300ms for one file, at row 2 (line 3)"
    );
    assert!(v.errors.iter().any(|e| e.row == Some(2) && e.line == Some(3) && e.message.contains("time limit")), "{:#?}", v.errors);
    // The record where the script stopped is counted: read = valid + rejected + skipped.
    assert_eq!((p.counts.read, p.counts.valid, p.counts.rejected, p.counts.skipped), (2, 1, 1, 0));
    // The clock is per file: the next file starts afresh.
    let p = b.run(&steps, "b.csv", b"n\n1\n3\n");
    assert_eq!((p.quarantine, p.counts.written), (None, 2));
}

#[test]
fn json_in_jsonl_out_and_the_rejects_are_jsonl() {
    let b = Bench::new();
    let steps = b
        .steps("- parse: { format: json }\n- validate: { schema: roster.schema.json }\n- write: { format: jsonl }", "{ on_invalid: skip }");
    let p = b.run(&steps, "a.json", br#"[{"id": 1, "email": "a@x"}, {"id": "2", "email": "b@x"}, 7]"#);
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 1, rejected: 2, skipped: 0, written: 1 });
    assert_eq!(b.read("out"), "{\"id\":1,\"email\":\"a@x\"}\n", "in the input's order");
    let rejects: Vec<serde_json::Value> = b.read("rejects").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rejects[0]["record"], json!({"id": "2", "email": "b@x"}), "JSON values are not converted like CSV text");
    assert_eq!(rejects[1]["errors"], json!(["expected an object, found a number"]));
    assert_eq!((steps.output_ext(), steps.rejects_ext()), (Some("jsonl"), "jsonl"));
}

/// CSV → JSON keeps the header's order (it was alphabetical), through a map script too:
/// the keys the header names first, in its order, then the script's own, alphabetically.
#[test]
fn json_output_keeps_the_csv_header_order() {
    let b = Bench::new();
    let steps = b.steps("- parse: { format: csv }\n- write: { format: jsonl }", "");
    b.run(&steps, "a.csv", b"id,name,email\n1,Ann,a@x\n");
    assert_eq!(b.read("out"), "{\"id\":\"1\",\"name\":\"Ann\",\"email\":\"a@x\"}\n");
    std::fs::write(b.path("order.rhai"), "fn map(r) { r.zone = \"eu\"; r.dept = \"HR\"; r }\n").unwrap();
    let steps = b.steps("- parse: { format: csv }\n- map: { script: order.rhai }\n- write: { format: json }", "");
    b.run(&steps, "a.csv", b"id,name,email\n1,Ann,a@x\n");
    assert_eq!(b.read("out"), "[\n{\"id\":\"1\",\"name\":\"Ann\",\"email\":\"a@x\",\"dept\":\"HR\",\"zone\":\"eu\"}\n]\n");
}

/// JSON input keeps its records' key order too (it was alphabetical: a JSON → CSV
/// conversion wrote the partner's columns sorted): the first record's keys, then each new
/// key where it first appears; a script's own keys after them, alphabetically.
#[test]
fn output_keeps_the_key_order_of_json_input() {
    let b = Bench::new();
    let csv = b.steps("- parse: { format: json }\n- write: { format: csv }", "");
    b.run(&csv, "a.json", br#"[{"zeta":1,"id":2,"alpha":{"k":[1]}},{"id":3,"alpha":"y","zeta":4}]"#);
    assert_eq!(b.read("out"), "zeta,id,alpha\n1,2,\"{\"\"k\"\":[1]}\"\n4,3,y\n");
    let jsonl = b.steps("- parse: { format: jsonl }\n- write: { format: json }", "");
    b.run(&jsonl, "a.jsonl", b"{\"b\":1,\"a\":2}\n\n{\"a\":3,\"c\":4,\"b\":5}\n");
    assert_eq!(b.read("out"), "[\n{\"b\":1,\"a\":2},\n{\"b\":5,\"a\":3,\"c\":4}\n]\n");
    std::fs::write(b.path("order.rhai"), "fn map(r) { r.zone = \"eu\"; r.dept = \"HR\"; r }\n").unwrap();
    let mapped = b.steps("- parse: { format: jsonl }\n- map: { script: order.rhai }\n- write: { format: jsonl }", "");
    b.run(&mapped, "a.jsonl", b"{\"name\":\"Ann\",\"id\":1}\n");
    assert_eq!(b.read("out"), "{\"name\":\"Ann\",\"id\":1,\"dept\":\"HR\",\"zone\":\"eu\"}\n");
}

/// Declared `columns` name every field: a blank name or one given twice is refused when the
/// flow is validated, not found per file.
#[test]
fn declared_columns_need_a_name_each() {
    let b = Bench::new();
    for (cols, want) in [("[id, '', qty]", "column 2 has no name"), ("[id, qty, id]", "`id` names columns 1 and 3")] {
        let e = b
            .try_steps(&format!("- parse: {{ format: csv, header: false, columns: {cols} }}\n- write: {{ format: csv }}"), "")
            .unwrap_err();
        assert!(e.iter().any(|p| p.message.starts_with(want)), "{cols}: {e:#?}");
    }
}

#[test]
fn csv_output_rejects_a_record_whose_keys_are_not_among_the_columns() {
    // JSON has no header: the columns are the first record's keys, and `c` used to vanish.
    let b = Bench::new();
    let steps = b.steps("- parse: { format: json }\n- write: { format: csv }", "{ on_invalid: skip }");
    let p = b.run(&steps, "a.json", br#"[{"a":1,"b":"x"},{"a":2,"c":"LOST"},{"a":3}]"#);
    assert_eq!(p.counts, RecordCounts { read: 3, valid: 2, rejected: 1, skipped: 0, written: 2 });
    assert_eq!(b.read("out"), "a,b\n1,x\n3,\n");
    let rejects: serde_json::Value = serde_json::from_str(b.read("rejects").trim()).unwrap();
    assert_eq!(rejects["row"], 2);
    assert!(rejects["errors"][0].as_str().unwrap().starts_with("key `c` is not among the CSV output's columns (`a`, `b`)"), "{rejects}");
    // The same from a script returning other keys; declared `columns` choose on purpose.
    std::fs::write(b.path("keys.rhai"), "fn map(r) { if r.id == \"2\" { r.note = \"more\"; } r }").unwrap();
    let mapped = "- parse: { format: csv }\n- map: { script: keys.rhai }\n- write: { format: csv }";
    let p = b.run(&b.steps(mapped, ""), "m.csv", b"id\n1\n2\n");
    let v = p.quarantine.expect("quarantined");
    assert!(v.errors[0].to_string().starts_with("row 2 (line 3): key `note` is not among"), "{:?}", v.errors);
    let declared = "- parse: { format: csv }\n- map: { script: keys.rhai }\n- write: { format: csv, columns: [id] }";
    let p = b.run(&b.steps(declared, ""), "m.csv", b"id\n1\n2\n");
    assert_eq!((p.quarantine, b.read("out")), (None, "id\n1\n2\n".to_string()));
}

#[test]
fn build_reports_order_and_configuration_problems_with_paths() {
    let b = Bench::new();
    let problems = |yaml: &str, policy: &str| -> Vec<String> {
        b.try_steps(yaml, policy).unwrap_err().into_iter().map(|p| format!("{}: {}", p.yaml_path, p.message)).collect()
    };
    assert_eq!(
        problems(
            "- map: { script: map.rhai, lookups: { depts: { file: depts.csv, key: code } } }\n- parse: { format: csv }\n- check: {}",
            ""
        ),
        [
            "/steps/0/map: `map` works on records: put a `parse` step before it",
            "/steps/2/check: `check` looks at the file as a whole: put it before `parse`"
        ]
    );
    assert_eq!(
        problems("- parse: { format: csv }\n- write: { format: csv }\n- validate: {}", ""),
        ["/steps/2/validate: `write` must be the last step"]
    );
    let got = problems("- parse: { format: csv, delimiter: ';;', encoding: klingon }\n- validate: { schema: nope.json }", "");
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[0].starts_with("/steps/0/parse/delimiter: ") && got[1].starts_with("/steps/0/parse/encoding: unknown encoding `klingon`"));
    assert!(got[2].starts_with("/steps/1/validate/schema: cannot read schema "), "{got:#?}");
    std::fs::write(b.path("bad.rhai"), "fn map(r) {\n  r.x = ;\n}\n").unwrap();
    let got = problems("- parse: { format: csv }\n- map: { script: bad.rhai, lookups: { t: { file: none.csv, key: k } } }", "");
    assert!(got[0].starts_with("/steps/1/map/lookups: `t`: cannot read look-up table"), "{got:#?}");
    let got = problems("- parse: { format: csv }\n- map: { script: bad.rhai }", "");
    assert!(got[0].starts_with("/steps/1/map/script: bad.rhai line 2, col "), "{got:#?}");
    // Named as what it is, as a schema and a look-up table are (was `cannot read DIR/none.rhai`).
    let got = problems("- parse: { format: csv }\n- map: { script: none.rhai }", "");
    assert!(got[0].starts_with("/steps/1/map/script: cannot read script ") && got[0].contains("none.rhai"), "{got:#?}");
    // One script per flow: what names a record (`record 3 of the 5 the script returned`)
    // follows it through one script only.
    std::fs::write(b.path("ok.rhai"), "fn map(r) { r }").unwrap();
    assert_eq!(
        problems("- parse: { format: csv }\n- map: { script: ok.rhai }\n- validate: {}\n- map: { script: ok.rhai }", ""),
        ["/steps/3/map: there is already a `map` step (one script per flow)"]
    );
    assert_eq!(problems("- parse: { format: csv }", "{ max_invalid: 3 }").len(), 1);
    assert_eq!(
        problems("- parse: { format: csv }", "{ on_invalid: skip, max_invalid: 140% }"),
        ["/max_invalid: `140%` is not a percentage from 0% to 100%"]
    );
}

/// A line break as a CSV delimiter read every file as a header and no records: a file of
/// 3 lines was delivered empty ("0 read, 0 written"), and with `after.success: delete` its
/// records were gone. A quote that is the delimiter mangled every field. Both are refused,
/// as is a written delimiter that is the written quote; a look-up table takes `\t` as a
/// parse step does.
#[test]
fn a_line_break_or_the_quote_as_a_delimiter_is_refused() {
    let b = Bench::new();
    let problems = |yaml: &str| -> Vec<String> {
        b.try_steps(yaml, "").unwrap_err().into_iter().map(|p| format!("{}: {}", p.yaml_path, p.message)).collect()
    };
    for d in [r#""\n""#, r#""\r""#] {
        let got = problems(&format!("- parse: {{ format: csv, delimiter: {d} }}\n- write: {{ format: csv, delimiter: {d} }}"));
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("/steps/0/parse/delimiter: `\\"), "{got:#?}");
        assert!(got[0].contains("is a line break, which ends a CSV record"), "{got:#?}");
        assert!(got[1].starts_with("/steps/1/write/delimiter: ") && got[1].contains("is a line break"), "{got:#?}");
    }
    let got = problems("- parse: { format: csv, delimiter: \"'\", quote: \"'\" }");
    assert_eq!(
        got,
        ["/steps/0/parse/quote: `'` is the delimiter too: a field could never be told from a quoted one; give the quote another character"]
    );
    let got = problems("- parse: { format: csv }\n- write: { format: csv, delimiter: '\"' }");
    assert_eq!(got, ["/steps/1/write/delimiter: `\"` is the quote of written CSV: give the delimiter another character"]);
    std::fs::write(b.path("t.tsv"), "code\tname\nA\tAlpha\n").unwrap();
    let raw = crate::config::raw_steps::RawLookup { file: "t.tsv".into(), key: "code".into(), delimiter: "\\t".into() };
    assert!(crate::steps::map::load_table(&b.path("t.tsv"), &raw).is_ok());
}

/// A script and a schema saved with a byte-order mark (Notepad's UTF-8) were refused:
/// "Unexpected '\u{feff}'" and "is not JSON: expected value at line 1 column 1".
#[test]
fn a_script_and_a_schema_with_a_byte_order_mark_are_read() {
    let b = Bench::new();
    std::fs::write(b.path("bom.rhai"), "\u{feff}fn map(r) { r.x = 1; r }\n").unwrap();
    std::fs::write(b.path("bom.schema.json"), "\u{feff}{ \"type\": \"object\", \"required\": [\"id\"] }").unwrap();
    let steps = b.steps(
        "- parse: { format: csv }\n- validate: { schema: bom.schema.json }\n- map: { script: bom.rhai }\n- write: { format: jsonl }",
        "",
    );
    let p = b.run(&steps, "a.csv", b"id\n1\n");
    assert_eq!(p.counts.written, 1, "{:?}", p.quarantine);
    assert_eq!(b.read("out"), "{\"id\":\"1\",\"x\":1}\n");
}

#[test]
fn a_large_csv_streams_with_bounded_memory_in_process() {
    // 200k rows (~10 MB): the pipeline never holds more than a record. The real bound is
    // measured on the binary (tests/it/content_sftp.rs); here: counts and output are right.
    let b = Bench::new();
    let staged = b.path("big");
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&staged).unwrap());
        writeln!(f, "id,email,dept").unwrap();
        for i in 1..=200_000u32 {
            writeln!(f, "{i},user{i}@example.com,FIN").unwrap();
        }
    }
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: roster.schema.json }", "");
    let size = std::fs::metadata(&staged).unwrap().len();
    let vars = NameVars::new("big.csv", "", size, 1, std::time::UNIX_EPOCH);
    let input = Input {
        flow: "f",
        bytes: &b.path("bytes"),
        piped: &b.path("piped"),
        abandoned: None,
        vars: &vars,
        staged: &staged,
        name: "big.csv",
        size,
        sha256: "",
        checksum_text: None,
        row_count_text: None,
        output: &b.path("out"),
        rejects: &b.path("rejects"),
    };
    let p = steps.run(&input).unwrap();
    assert_eq!((p.counts.read, p.counts.written, p.quarantine), (200_000, 200_000, None));
    assert_eq!(p.output, Some(size), "CSV in, CSV out: same bytes");
}

#[test]
fn a_timeout_keeps_the_counts_whole_with_skipped_records_and_skip_policy() {
    // The QA case: record 2 dropped on purpose, record 3 runs out of time.
    let b = Bench::new();
    std::fs::write(b.path("m.rhai"), "fn map(r) {\n  if r.id == \"3\" { loop {} }\n  if r.id == \"2\" { return (); }\n  r\n}\n").unwrap();
    let steps = b
        .steps("- parse: { format: csv }\n- map: { script: m.rhai, timeout: 300ms, max_operations: 100000000000 }", "{ on_invalid: skip }");
    let p = b.run(&steps, "a.csv", b"id\n1\n2\n3\n4\n");
    let c = p.counts;
    assert_eq!((c.read, c.valid, c.rejected, c.skipped), (3, 1, 1, 1), "{c:?}");
    assert_eq!(c.read, c.valid + c.rejected + c.skipped);
    assert!(p.quarantine.unwrap().reason.ends_with("for one file, at row 3 (line 4)"));
}

#[test]
fn validate_passes_the_cells_through_as_written_without_a_map() {
    let b = Bench::new();
    std::fs::write(
        b.path("t.schema.json"),
        json!({ "type": "object", "properties": { "id": { "type": "integer" }, "amt": { "type": "number" }, "ok": { "type": "boolean" }, "note": { "type": "string" } } })
            .to_string(),
    )
    .unwrap();
    let body = b"id,amt,ok,note,name\n007,12.10,true,,a\n12345678901234567890,1e3,false,x,b\n 42 ,+5,true,,c\n";
    // CSV in, CSV out: byte for byte.
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: t.schema.json }", "{ on_invalid: skip }");
    let p = b.run(&steps, "a.csv", body);
    assert_eq!((p.quarantine, p.counts.valid), (None, 3));
    assert_eq!(b.read("out").as_bytes(), body);
    // JSON out: the text of the cells, empty ones included.
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: t.schema.json }\n- write: { format: jsonl }", "");
    b.run(&steps, "a.csv", body);
    let first: serde_json::Value = serde_json::from_str(b.read("out").lines().next().unwrap()).unwrap();
    assert_eq!(first, json!({ "id": "007", "amt": "12.10", "ok": "true", "note": "", "name": "a" }));
    // A template gets the text too.
    std::fs::write(b.path("r.txt.hbs"), "{{record.id}}|{{record.amt}}|{{record.note}}\n").unwrap();
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: t.schema.json }\n- render: { row: r.txt.hbs }", "");
    b.run(&steps, "a.csv", body);
    assert_eq!(b.read("out"), "007|12.10|\n12345678901234567890|1e3|x\n 42 |+5|\n");
    // The script sees the converted values, as documented; what it returns is written.
    std::fs::write(b.path("t.rhai"), "fn map(r) { #{ id: r.id, t: type_of(r.id), amt: r.amt, has_note: \"note\" in r } }").unwrap();
    let steps = b.steps(
        "- parse: { format: csv }\n- validate: { schema: t.schema.json }\n- map: { script: t.rhai }\n- write: { format: jsonl }",
        "",
    );
    b.run(&steps, "a.csv", body);
    let first: serde_json::Value = serde_json::from_str(b.read("out").lines().next().unwrap()).unwrap();
    assert_eq!(first.to_string(), r#"{"amt":12.10,"has_note":false,"id":7,"t":"i64"}"#, "passed on as written");
}

#[test]
fn errors_quote_big_values_in_part_so_reports_stay_small() {
    let b = Bench::new();
    std::fs::write(b.path("b.schema.json"), json!({ "properties": { "b": { "type": "string", "maxLength": 10 } } }).to_string()).unwrap();
    let cell = "x".repeat(300_000);
    let body = format!("a,b\n1,{cell}\n2,{cell}\n3,short\n");
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: b.schema.json }", "");
    let v = b.run(&steps, "b.csv", body.as_bytes()).quarantine.unwrap();
    assert_eq!(v.errors.len(), 2);
    for e in &v.errors {
        assert!(e.message.len() < 200 && e.message.ends_with("x\"… (300000 bytes) is longer than 10 characters"), "{}", e.message);
    }
    // The rejects file's `_errors` too (the row itself is kept as read).
    let steps = b.steps("- parse: { format: csv }\n- validate: { schema: b.schema.json }", "{ on_invalid: skip }");
    let p = b.run(&steps, "b.csv", body.as_bytes());
    assert_eq!(p.counts.rejected, 2);
    assert!(b.read("rejects").len() < 2 * cell.len() + 1000, "{} bytes", b.read("rejects").len());
    // A message a script builds from the value is cut as well.
    std::fs::write(b.path("t.rhai"), "fn map(r) { throw `bad value ${r.b}`; }").unwrap();
    let steps = b.steps("- parse: { format: csv }\n- map: { script: t.rhai }", "");
    let v = b.run(&steps, "b.csv", body.as_bytes()).quarantine.unwrap();
    assert!(
        v.errors.iter().all(|e| e.message.len() <= MAX_MESSAGE_BYTES + 40),
        "{:?}",
        v.errors.iter().map(|e| e.message.len()).collect::<Vec<_>>()
    );
    assert!(
        v.errors[0].message.starts_with("t.rhai line 1: bad value xxx") && v.errors[0].message.ends_with("x… (message cut: 300025 bytes)"),
        "{}",
        &v.errors[0].message[900..]
    );
}

#[test]
fn a_map_step_reports_its_script_errors_with_its_other_problems() {
    let b = Bench::new();
    std::fs::write(b.path("bad.rhai"), "fn map(r) {\n  r.x = ;\n}\n").unwrap();
    let got: Vec<String> = b
        .try_steps(
            "- parse: { format: csv }\n- map: { script: bad.rhai, lookups: { d: { file: depts.csv, key: nokey } }, timeout: forever }",
            "",
        )
        .unwrap_err()
        .into_iter()
        .map(|p| format!("{}: {}", p.yaml_path, p.message))
        .collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert!(got[0].starts_with("/steps/1/map/timeout: "), "{got:#?}");
    assert!(got[1].starts_with("/steps/1/map/lookups: `d`: "), "{got:#?}");
    assert!(got[2].starts_with("/steps/1/map/script: bad.rhai line 2, col "), "{got:#?}");
}

#[test]
fn csv_settings_on_csv_are_taken() {
    // On `json` / `jsonl` they are judged by the flow's validation (`config::validate::content`).
    let b = Bench::new();
    // The same settings are CSV's own.
    b.steps("- parse: { format: csv, header: false, columns: [a], delimiter: ';', quote: \"'\" }", "");
    b.steps("- parse: { format: json }\n- write: { format: csv, columns: [a], delimiter: ';', header: false }", "");
}

/// Numbers in a partner's JSON are delivered as written, with or without a script: a 20-digit
/// order number was `1.2345678901234567e19` after a `map` (and lost its digits beyond u64 even
/// without one), `12.10` became `12.1`. A CSV cell declared `integer` passes a script exactly too.
/// A `number` cell reaches a script as a float, `5` too (`r.qty / 2` is 2.5, as the schema's
/// type says), and one the script passes on unchanged is written as its cell was: `1` was
/// written back as `1.0`, `12.10` as `12.1`, a 20-digit number as `1.2345678901234567e19`.
#[test]
fn numbers_passed_on_by_a_map_are_written_as_their_cells_were() {
    let b = Bench::new();
    std::fs::write(b.path("p.schema.json"), r#"{"type":"object","properties":{"qty":{"type":"number"},"price":{"type":"number"}}}"#)
        .unwrap();
    std::fs::write(b.path("same.rhai"), "fn map(r) { r.half = r.qty / 2; r.kind = type_of(r.qty); r }").unwrap();
    let steps = b.steps(
        "- parse: { format: csv }\n- validate: { schema: p.schema.json }\n- map: { script: same.rhai }\n- write: { format: csv }",
        "",
    );
    let p = b.run(&steps, "p.csv", b"qty,price\n1,12.10\n+5,12345678901234567890\n2.5,007\n");
    assert_eq!(p.quarantine, None);
    assert_eq!(
        b.read("out"),
        "half,kind,price,qty\n0.5,f64,12.10,1\n2.5,f64,12345678901234567890,5\n1.25,f64,7,2.5\n",
        "passed on as written; computed as floats"
    );
    // A value the script changed is written as it is.
    // As is a number the script made from text itself (an undeclared column).
    std::fs::write(b.path("twice.rhai"), "fn map(r) { r.qty = r.qty * 2; r.hours = number(r.hours); r }").unwrap();
    let steps = b.steps(
        "- parse: { format: csv }\n- validate: { schema: p.schema.json }\n- map: { script: twice.rhai }\n- write: { format: csv }",
        "",
    );
    b.run(&steps, "p.csv", b"qty,price,hours\n1,2,40\n");
    assert_eq!(b.read("out"), "hours,price,qty\n40.0,2,2.0\n");
}

#[test]
fn big_numbers_keep_every_digit_through_parse_map_and_write() {
    let b = Bench::new();
    std::fs::write(b.path("id.rhai"), "fn map(r) { r.seen = `${r.order}`; r }").unwrap();
    std::fs::write(b.path("order.schema.json"), r#"{"type":"object","properties":{"order":{"type":"integer"}}}"#).unwrap();
    let body = br#"[{"order": 12345678901234567890, "ref": 98765432109876543210123, "price": 12.10, "neg": -9223372036854775809}]"#;
    let plain = b.steps("- parse: { format: json }\n- write: { format: jsonl }", "");
    b.run(&plain, "o.json", body);
    assert_eq!(
        b.read("out"),
        "{\"order\":12345678901234567890,\"ref\":98765432109876543210123,\"price\":12.10,\"neg\":-9223372036854775809}\n"
    );
    let mapped = b.steps("- parse: { format: json }\n- map: { script: id.rhai }\n- write: { format: csv }", "");
    let p = b.run(&mapped, "o.json", body);
    assert_eq!(p.quarantine, None);
    assert_eq!(
        b.read("out"),
        "neg,order,price,ref,seen\n-9223372036854775809,12345678901234567890,12.1,98765432109876543210123,12345678901234567890\n"
    );
    let csv = b.steps(
        "- parse: { format: csv }\n- validate: { schema: order.schema.json }\n- map: { script: id.rhai }\n- write: { format: jsonl }",
        "",
    );
    let p = b.run(&csv, "o.csv", b"order\n98765432109876543210\n7\n");
    assert_eq!(p.quarantine, None);
    assert_eq!(b.read("out"), "{\"order\":98765432109876543210,\"seen\":\"98765432109876543210\"}\n{\"order\":7,\"seen\":\"7\"}\n");
}

#[test]
fn the_files_cause_is_the_contents_unless_every_error_is_the_flows_own() {
    assert_eq!(Causes::of(3, 0, 0), Causes::Data);
    assert_eq!(Causes::of(3, 3, 0), Causes::Script);
    assert_eq!(Causes::of(3, 0, 3), Causes::Template);
    assert_eq!(Causes::of(3, 1, 2), Causes::Script);
    assert_eq!(Causes::of(3, 0, 2), Causes::Mixed);
}

/// Exactly `max_invalid` percent of invalid records is allowed, one more is not — also for
/// percentages that floating point cannot hold exactly. Before, 69 invalid of 1500 records
/// under `max_invalid: 4.6%` quarantined the file (1500 × 4.6 / 100 = 68.99999999999999).
#[test]
fn exactly_the_max_invalid_percentage_is_allowed() {
    let b = Bench::new();
    let steps = b.steps("- parse: { format: csv }", "{ on_invalid: skip, max_invalid: 4.6% }");
    let mut body = String::from("id,email\n");
    for i in 0..1500 {
        body.push_str(if i < 69 { "1\n" } else { "1,a@x\n" });
    }
    let p = b.run(&steps, "r.csv", body.as_bytes());
    assert_eq!(p.quarantine, None, "69 of 1500 is 4.6%");
    assert_eq!((p.counts.rejected, p.counts.written), (69, 1431));
    let p = b.run(&steps, "r.csv", format!("{body}1\n").as_bytes());
    assert_eq!(p.quarantine.unwrap().reason, "70 of 1501 records are invalid (more than max_invalid: 4.6%)");
    for (read, p, allowed) in [(1500, 4.6, 69), (750, 9.2, 69), (1375, 5.6, 77), (0, 5.0, 0), (3, 100.0, 3), (7, 0.0, 0), (10, 33.3333, 3)]
    {
        assert_eq!(percent_of(read, p), allowed, "{p}% of {read}");
    }
    assert_eq!(percent_of(u64::MAX, 100.0), u64::MAX);
    assert_eq!(percent_of(1_000_000_000_000, 1e-7), 1000);
    assert_eq!(percent_of(1_000_000_000_000, 1e-20), 0, "past 15 decimals: floating point");
}

/// A CSV output of no records carries the header a partner's importer expects whenever its
/// columns are known without a record: the write step's `columns`, else (no `map`) the
/// input's header. After a `map` without `columns` they are the keys of the first record,
/// unknown when none came through: the output is empty, and the flow gets a warning at its
/// write step that says to list `columns`.
#[test]
fn a_csv_output_of_no_records_has_a_header_when_its_columns_are_known() {
    let b = Bench::new();
    let header_only = b"id,email,dept\r\n";
    let steps = b.steps("[ { parse: { format: csv } }, { write: { format: csv } } ]", "");
    let out = b.run(&steps, "a.csv", header_only);
    assert_eq!((out.output, b.read("out").as_str()), (Some(14), "id,email,dept\n"));
    let declared = "[ { parse: { format: csv } }, { map: { script: map.rhai } }, { write: { format: csv, columns: [id, email] } } ]";
    let out = b.run(&b.steps(declared, ""), "a.csv", header_only);
    assert_eq!((out.output, b.read("out").as_str()), (Some(9), "id,email\n"));
    // Every row dropped by the map: still the declared header.
    let out = b.run(&b.steps(declared, ""), "a.csv", b"id,email,dept\r\n1,a@x,X\r\n");
    assert_eq!((out.counts.written, b.read("out").as_str()), (0, "id,email\n"));
    assert!(b.steps(declared, "").warnings().is_empty());

    let mapped = "[ { parse: { format: csv } }, { map: { script: map.rhai } }, { write: { format: csv } } ]";
    let steps = b.steps(mapped, "");
    let out = b.run(&steps, "a.csv", header_only);
    assert_eq!((out.output, b.read("out").as_str()), (Some(0), ""));
    let warnings = steps.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].0, "/steps/2/write");
    assert!(warnings[0].1.contains("no header line") && warnings[0].1.contains("`columns`"), "{warnings:?}");
    // No header asked for, or JSON out: nothing to warn of.
    assert!(
        b.steps("[ { parse: { format: csv } }, { map: { script: map.rhai } }, { write: { format: csv, header: false } } ]", "")
            .warnings()
            .is_empty()
    );
    assert!(
        b.steps("[ { parse: { format: csv } }, { map: { script: map.rhai } }, { write: { format: jsonl } } ]", "").warnings().is_empty()
    );
}

/// A JSON number beyond a float (`1e400`) is a clear rejection of its record by a map step,
/// the file's problem; passed through without a map it is written as it came.
#[test]
fn a_number_beyond_a_float_is_rejected_by_a_map_and_kept_without_one() {
    let b = Bench::new();
    std::fs::write(b.path("twice.rhai"), "fn map(r) { r.twice = r.n * 2; r }").unwrap();
    let body = br#"[{"n": 1e400}, {"n": 2}]"#;
    let plain = b.steps("- parse: { format: json }\n- write: { format: jsonl }", "");
    b.run(&plain, "n.json", body);
    assert_eq!(b.read("out"), "{\"n\":1e+400}\n{\"n\":2}\n");
    let mapped = b.steps("- parse: { format: json }\n- map: { script: twice.rhai }\n- write: { format: jsonl }", "{ on_invalid: skip }");
    let p = b.run(&mapped, "n.json", body);
    assert_eq!(p.counts, RecordCounts { read: 2, valid: 1, rejected: 1, skipped: 0, written: 1 });
    assert_eq!(b.read("out"), "{\"n\":2,\"twice\":4}\n");
    assert!(b.read("rejects").contains("`n` is 1e+400, a number a script cannot hold"), "{}", b.read("rejects"));
}

/// A problem in one of several records a script returned for a row names which one, in the
/// report's text and JSON (`returned`) and in the rejects file: its value no record can hold,
/// a field the schema after the map refuses, a key the CSV output has no column for (before:
/// only the row and the field, though the row became five records).
#[test]
fn a_problem_in_one_of_the_records_a_script_returned_names_which() {
    let b = Bench::new();
    // An order of `n` lines; line `bad` gets what the test asks for.
    std::fs::write(
        b.path("lines.rhai"),
        "fn map(r) {\n  let out = [];\n  for i in 1..=r.n {\n    let l = #{ id: r.id, line: i, price: 1.0 };\n    if i == r.bad && r.how == \"inf\" { l.price = 1.0 / 0.0; }\n    if i == r.bad && r.how == \"text\" { l.price = \"x\"; }\n    if i == r.bad && r.how == \"key\" { l.extra = 1; }\n    out.push(l);\n  }\n  out\n}\n",
    )
    .unwrap();
    std::fs::write(b.path("line.schema.json"), json!({ "type": "object", "properties": { "price": { "type": "number" } } }).to_string())
        .unwrap();
    // Skipped, then quarantined at the fourth: every step sees every record.
    let steps = b.steps(
        "- parse: { format: jsonl }\n- map: { script: lines.rhai }\n- validate: { schema: line.schema.json }\n- write: { format: csv, columns: [] }",
        "{ on_invalid: skip, max_invalid: 3 }",
    );
    let body = br#"{"id": 1, "n": 1, "bad": 0, "how": ""}
{"id": 2, "n": 5, "bad": 3, "how": "inf"}
{"id": 3, "n": 4, "bad": 2, "how": "text"}
{"id": 4, "n": 3, "bad": 3, "how": "key"}
{"id": 5, "n": 1, "bad": 1, "how": "text"}
"#;
    let v = b.run(&steps, "o.jsonl", body).quarantine.expect("quarantined");
    let shown: Vec<String> = v.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        shown,
        [
            "row 2 (line 2), record 3 of the 5 the script returned: lines.rhai: the returned `price` is inf, which no record can hold (a division by zero, or a number grown beyond ±1.8e308?): the record is not mapped",
            "row 3 (line 3), record 2 of the 4 the script returned, field price: \"x\" is not of type \"number\"",
            "row 4 (line 4), record 3 of the 3 the script returned: key `extra` is not among the CSV output's columns (`id`, `line`, `price`), which are the keys of the first record written, and would be lost; list every column in the write step's `columns` (e.g. `columns: [id, line, price, extra]`), or give the first record every key",
            // One record returned: its row says which.
            "row 5 (line 5), field price: \"x\" is not of type \"number\"",
        ]
    );
    let json = serde_json::to_value(&v.errors).unwrap();
    assert_eq!(json[0]["returned"], json!({ "record": 3, "of": 5 }));
    assert_eq!(json[1]["returned"], json!({ "record": 2, "of": 4 }));
    assert!(json[3].get("returned").is_none(), "{json}");
    // Read back as reports written before it: no `returned`.
    let back: Vec<RecordError> = serde_json::from_value(json).unwrap();
    assert_eq!(back, v.errors);
    // The rejects file says it after the field and message.
    let skip = b.steps(
        "- parse: { format: jsonl }\n- map: { script: lines.rhai }\n- validate: { schema: line.schema.json }\n- write: { format: csv, columns: [] }",
        "{ on_invalid: skip }",
    );
    b.run(&skip, "o.jsonl", body);
    let rejects = b.read("rejects");
    assert!(
        rejects.contains(r#""errors":["price: \"x\" is not of type \"number\" (record 2 of the 4 the script returned)"]"#),
        "{rejects}"
    );
}
