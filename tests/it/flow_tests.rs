//! `wharf test` through the binary: every example flow's tests pass (without secrets and
//! without servers), a wrong expectation fails with exit 1 and a diff, an invalid test file
//! exits 2 with `file:line:col`, and no network is touched.

use crate::support;

use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// Runs `wharf test ARGS` in `cwd` without any secret in the environment: (exit code, stdout + stderr).
fn wharf_test(cwd: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .current_dir(cwd)
        .arg("test")
        .args(args)
        .env_remove("WHARF_DEMO_PASSWORD")
        .env_remove("WHARF_FTP_PASSWORD")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The summary line `N passed, N failed`, parsed.
fn summary(text: &str) -> (usize, usize) {
    let line = text.lines().rev().find(|l| l.contains(" passed, ")).unwrap_or_else(|| panic!("no summary line in:\n{text}"));
    let n: Vec<usize> = line.split([' ', ',']).filter_map(|w| w.parse().ok()).collect();
    assert_eq!(n.len(), 2, "{line}");
    (n[0], n[1])
}

#[test]
fn every_example_flow_passes_its_tests() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, text) = wharf_test(repo, &["flows/"]);
    assert_eq!(code, 0, "{text}");
    let (passed, failed) = summary(&text);
    assert_eq!(failed, 0, "{text}");
    assert!(passed >= 25, "{text}");
    // Every example flow ships with tests.
    for entry in fs::read_dir(repo.join("flows")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".yaml").filter(|s| !s.ends_with(".test")) {
            assert!(text.contains(&format!("flows/{stem}.test.yaml\n")), "flows/{name} has no tests run:\n{text}");
        }
    }
    assert!(text.lines().any(|l| l == format!("{passed} passed, 0 failed")), "the summary is alone on its line:\n{text}");
}

/// A local flow with content steps, in `dir`.
fn local_flow(dir: &Path) {
    fs::write(
        dir.join("orders.yaml"),
        "name: orders\nendpoints:\n  in: { type: local, root: in }\n  out: { type: local, root: out }\nsource: { endpoint: in, path: /, include: ['*.csv'] }\nsteps:\n  - parse: { format: csv }\n  - write: { format: jsonl }\nquarantine: { endpoint: in, path: /bad }\nsinks: [ { endpoint: out, path: /x } ]\n",
    )
    .unwrap();
}

#[test]
fn a_wrong_expectation_fails_with_exit_1_and_a_diff() {
    let dir = support::tempdir();
    local_flow(dir.path());
    fs::write(
        dir.path().join("orders.test.yaml"),
        "flow: orders.yaml\ncases:\n  - name: right\n    input: { name: a.csv, content: \"id,qty\\n1,2\\n\" }\n    expect:\n      outputs: { out:/x/a.jsonl: { content: \"{\\\"id\\\":\\\"1\\\",\\\"qty\\\":\\\"2\\\"}\\n\" } }\n  - name: wrong\n    input: { name: b.csv, content: \"id,qty\\n1,2\\n3,4\\n\" }\n    expect:\n      outputs: { out:/x/b.jsonl: { content: \"{\\\"id\\\":\\\"1\\\",\\\"qty\\\":\\\"2\\\"}\\n{\\\"id\\\":\\\"3\\\",\\\"qty\\\":\\\"5\\\"}\\n\" } }\n  - name: wrong records\n    input: { name: c.csv, content: \"id,qty\\n1,2\\n\" }\n    expect:\n      outputs: { out:/x/c.jsonl: { records: [ { id: \"1\", qty: \"3\" } ] } }\n",
    )
    .unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("  ok      right\n") && text.contains("  FAILED  wrong\n"), "{text}");
    assert!(text.contains("output out:/x/b.jsonl differs from the expected content"), "{text}");
    assert!(
        text.contains("    --- expected\n    +++ actual (out:/x/b.jsonl)\n    @@ -1,2 +1,2 @@\n     {\"id\":\"1\",\"qty\":\"2\"}\n    -{\"id\":\"3\",\"qty\":\"5\"}\n    +{\"id\":\"3\",\"qty\":\"4\"}\n"),
        "{text}"
    );
    assert!(text.contains("record 1, field qty: expected \"3\", found \"2\""), "{text}");
    assert_eq!(summary(&text), (1, 2), "{text}");
}

/// An input the flow takes only ignoring case (`ORDERS_1.CSV` beside `*.csv`) fails its
/// case saying so and how to take it (was: "did not pick it up", with no why); with
/// `ignore_case: true` it is taken.
#[test]
fn an_input_taken_only_ignoring_case_says_so() {
    let dir = support::tempdir();
    local_flow(dir.path());
    let case = "flow: orders.yaml\ncases:\n  - name: upper\n    input: { name: ORDERS_1.CSV, content: \"id\\n1\\n\" }\n    expect: { outcome: delivered }\n";
    fs::write(dir.path().join("orders.test.yaml"), case).unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("outcome: expected delivered, found ignored (the source's include/exclude did not pick it up: `ORDERS_1.CSV` does not match `*.csv`, but would ignoring case: set `source.ignore_case: true` to take it)"),
        "{text}"
    );
    let flow =
        fs::read_to_string(dir.path().join("orders.yaml")).unwrap().replace("include: ['*.csv']", "include: ['*.csv'], ignore_case: true");
    fs::write(dir.path().join("orders.yaml"), flow).unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!((code, summary(&text)), (0, (1, 0)), "{text}");
}

/// A file quarantined where the case expects it delivered lists the report's errors (it said
/// only `2 of 3 records are invalid`: which, and why, took a second case to find out).
#[test]
fn an_unexpected_quarantine_shows_the_report_s_errors() {
    let dir = support::tempdir();
    local_flow(dir.path());
    let case = "flow: orders.yaml\ncases:\n  - name: bad rows\n    input: { name: a.csv, content: \"id,qty\\n1,2,3\\n4,5\\n6\\n\" }\n    expect: { outcome: delivered }\n";
    fs::write(dir.path().join("orders.test.yaml"), case).unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("outcome: expected delivered, found quarantined ("), "{text}");
    assert!(
        text.contains("    the quarantine report's errors:\n      row 1 (line 2): 3 fields, expected 2 (as in the header): too many\n      row 3 (line 4): 1 field, expected 2 (as in the header): too few\n"),
        "{text}"
    );
}

/// JSON → CSV keeps the partner's key order as the header (it was alphabetical).
#[test]
fn json_input_converted_to_csv_keeps_the_partner_s_key_order() {
    let dir = support::tempdir();
    fs::write(
        dir.path().join("orders.yaml"),
        "name: orders\nendpoints:\n  in: { type: local, root: in }\n  out: { type: local, root: out }\nsource: { endpoint: in, path: / }\nsteps:\n  - parse: { format: json }\n  - write: { format: csv, header: true }\nquarantine: { endpoint: in, path: /bad }\nsinks: [ { endpoint: out, path: /x } ]\n",
    )
    .unwrap();
    let case = "flow: orders.yaml\ncases:\n  - name: order kept\n    input: { name: a.json, content: '[{\"zeta\":1,\"id\":2,\"alpha\":\"x\"}]' }\n    expect:\n      outputs: { out:/x/a.csv: { content: \"zeta,id,alpha\\n1,2,x\\n\" } }\n";
    fs::write(dir.path().join("orders.test.yaml"), case).unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!((code, summary(&text)), (0, (1, 0)), "{text}");
}

#[test]
fn an_invalid_test_file_exits_2_with_file_line_and_column() {
    let dir = support::tempdir();
    local_flow(dir.path());
    fs::write(
        dir.path().join("orders.test.yaml"),
        "flow: orders.yaml\ncases:\n  - name: a\n    input: { name: a.csv, content: x }\n    expect: { outcom: delivered }\n",
    )
    .unwrap();
    let (code, text) = wharf_test(dir.path(), &["orders.test.yaml"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("orders.test.yaml:5:15: unknown field `outcom` (did you mean `outcome`?), expected one of"), "{text}");
    assert!(text.contains("0 passed, 0 failed"), "{text}");
    // A folder without tests is a mistake too.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let (code, text) = wharf_test(dir.path(), &["empty"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.starts_with(
            "empty: no test files (*.test.yaml, *.test.yml) here (give a test file, or a folder holding them: `wharf test flows/`)\n"
        ),
        "no line:col for a folder: {text}"
    );
    // No file was left unrun: it said "1 problem(s) in test files or their flows; those files
    // were not run".
    assert!(!text.contains("not run") && text.ends_with("0 passed, 0 failed\n"), "{text}");
    // A path that names nothing says so, without a line:col (was `nothing-here:1:1: cannot
    // read test file: No such file or directory (os error 2) (at /)`).
    let (code, text) = wharf_test(dir.path(), &["nothing-here"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.starts_with("nothing-here: no such file or folder (give a test file, or a folder holding `*.test.yaml` files)\n"),
        "{text}"
    );
}

#[test]
fn no_server_is_contacted() {
    let dir = support::tempdir();
    // A listener on loopback that the flow's SFTP and FTP endpoints point at: a test that
    // connected would show up as an accepted connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    fs::write(
        dir.path().join("remote.yaml"),
        format!(
            "name: remote\nendpoints:\n  partner: {{ type: sftp, host: 127.0.0.1, port: {port}, user: u, auth: {{ password: \"${{env:NOT_SET_ANYWHERE}}\" }}, host_key: {{ known_hosts: known_hosts }} }}\n  erp: {{ type: ftp, host: 127.0.0.1, port: {port}, user: u, password: p, tls: none }}\nsource: {{ endpoint: partner, path: /out, include: ['*.csv'] }}\nsinks: [ {{ endpoint: erp, path: /in, name: \"{{{{stem}}}}-{{{{date 'YYYYMMDD'}}}}.csv\" }} ]\nafter: {{ success: delete }}\n"
        ),
    )
    .unwrap();
    fs::write(
        dir.path().join("remote.test.yaml"),
        "flow: remote.yaml\nnow: 2026-02-03T04:05:06Z\ncases:\n  - name: pulled and pushed\n    input: { name: a.csv, content: \"x\\n\" }\n    expect: { outcome: delivered, source: deleted, outputs: { erp:/in/a-20260203.csv: { content: \"x\\n\" } } }\n",
    )
    .unwrap();
    let (code, text) = wharf_test(dir.path(), &["."]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(summary(&text), (1, 0), "{text}");
    assert!(matches!(listener.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock), "a connection was made");
}

#[test]
fn generated_serve_schema_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = serde_json::to_string_pretty(&wharf::serve::config::serve_schema()).unwrap() + "\n";
    let on_disk = fs::read_to_string(root.join("schemas/serve.schema.json")).unwrap_or_default();
    assert!(
        on_disk == schema,
        "schemas/serve.schema.json is out of date: run `cargo run -- schema --serve --write schemas/serve.schema.json`"
    );
}

#[test]
fn generated_test_schema_is_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = serde_json::to_string_pretty(&wharf::flowtest::test_schema()).unwrap() + "\n";
    let on_disk = fs::read_to_string(root.join("schemas/flow-test.schema.json")).unwrap_or_default();
    assert!(
        on_disk == schema,
        "schemas/flow-test.schema.json is out of date: run `cargo run -- schema --test --write schemas/flow-test.schema.json`"
    );
}

/// A flow with a done file: the done file given beside the input is a companion, never data
/// (not delivered, moved with its file), and a case that gives none gets one (what the flow
/// does with a file is tested, not when it is ready). Before, a test dropped `done_file`: the
/// done file matched `*` and was delivered as data, and stayed behind when the file moved.
#[test]
fn a_flow_s_done_file_is_a_companion_in_its_tests() {
    let dir = support::tempdir();
    fs::write(
        dir.path().join("orders.yaml"),
        "name: orders\nendpoints:\n  in: { type: local, root: in }\n  out: { type: local, root: out }\nsource: { endpoint: in, path: /, include: ['*'], ready: { done_file: '{{name}}.done' } }\nsinks: [ { endpoint: out, path: /x } ]\nafter: { success: { move_to: /done } }\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("orders.test.yaml"),
        "flow: orders.yaml\ncases:\n  - name: given\n    input: { name: a.csv, content: \"1\\n\", beside: { a.csv.done: \"\" } }\n    expect: { outcome: delivered, outputs: { out:/x/a.csv: { content: \"1\\n\" } }, source: /done/a.csv }\n  - name: not given\n    input: { name: b.csv, content: \"2\\n\" }\n    expect: { outcome: delivered, outputs: { out:/x/b.csv: { content: \"2\\n\" } } }\n",
    )
    .unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(summary(&text), (2, 0), "{text}");
}

/// `wharf test` runs a flow's `command` steps too: the program's output, under the name the
/// step gives it, is what the case sees delivered; a program's failure quarantines the input.
#[test]
fn a_test_case_runs_the_flow_s_command_steps() {
    let dir = support::tempdir();
    fs::write(
        dir.path().join("shout.yaml"),
        "name: shout\nendpoints:\n  in: { type: local, root: in }\n  out: { type: local, root: out }\nsource: { endpoint: in, path: / }\nsteps:\n  - command: { run: [tr, a-z, A-Z], name: '{{stem}}.upper.{{ext}}' }\n  - parse: { format: csv }\n  - write: { format: csv }\n  - command: { run: [sh, -c, 'cat; test \"$WHARF_FILE\" = a.upper.csv || exit 4'] }\nquarantine: { endpoint: in, path: /bad }\nsinks: [ { endpoint: out, path: /x } ]\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("shout.test.yaml"),
        "flow: shout.yaml\ncases:\n  - name: shouted\n    input: { name: a.csv, content: \"id,qty\\nab,2\\n\" }\n    expect:\n      outputs: { out:/x/a.upper.csv: { content: \"ID,QTY\\nAB,2\\n\" } }\n  - name: refused by the program\n    input: { name: b.csv, content: \"id\\nb\\n\" }\n    expect: { outcome: quarantined, detail: \"(`sh`) exited with status 4\" }\n",
    )
    .unwrap();
    let (code, text) = wharf_test(dir.path(), &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(summary(&text), (2, 0), "{text}");
}
