//! `command` steps in the pipeline: where they may stand, what they do to the bytes parsed
//! and delivered, to the file's name, and to a file whose program fails.

use super::*;
use crate::config::raw_steps::RawStep;

fn try_steps(dir: &Path, yaml: &str) -> Result<Steps, Vec<String>> {
    let raw: Vec<RawStep> = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
    build(&raw, OnInvalid::Quarantine, None, dir).map_err(|p| p.into_iter().map(|p| format!("{}: {}", p.yaml_path, p.message)).collect())
}

fn steps(dir: &Path, yaml: &str) -> Steps {
    try_steps(dir, yaml).unwrap_or_else(|p| panic!("{p:#?}"))
}

/// `program -c` (gzip, gunzip) on `body`: its stdout.
fn zip(program: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body).unwrap();
    child.wait_with_output().unwrap().stdout
}

fn gzip(body: &[u8]) -> Vec<u8> {
    zip("gzip", body)
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    zip("gunzip", body)
}

fn run(dir: &Path, steps: &Steps, name: &str, body: &[u8]) -> Processed {
    let vars = NameVars::new(name, "", body.len() as u64, 7, std::time::UNIX_EPOCH);
    let p = tests::run_in(dir, steps, name, body, &vars);
    for left in ["bytes", "piped"] {
        assert!(!dir.join(left).exists(), "{left} is removed when done");
    }
    p
}

#[test]
fn command_steps_stand_before_parse_after_the_output_or_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ok in [
        "- command: { run: [gunzip, -c] }",
        "- check: { non_empty: true }\n- command: { run: [gunzip, -c] }\n- command: { run: [cat] }\n- parse: { format: csv }",
        "- parse: { format: csv }\n- write: { format: jsonl }\n- command: { run: [gzip, -c] }\n- command: { run: [cat] }",
        "- command: { run: [gunzip, -c] }\n- parse: { format: csv }\n- validate: {}\n- write: { format: csv }\n- command: { run: [gzip] }",
    ] {
        assert!(try_steps(d, ok).is_ok(), "{ok}: {:?}", try_steps(d, ok).err());
    }
    assert_eq!(
        try_steps(d, "- parse: { format: csv }\n- command: { run: [cat] }\n- write: { format: csv }").unwrap_err(),
        ["/steps/1/command: a `command` step works on the file's bytes, not on records: put it before `parse` (to decode what \
             arrives) or after a `write` or `render` step (to encode what is sent)"]
    );
    assert_eq!(
        try_steps(d, "- parse: { format: csv }\n- command: { run: [cat] }").unwrap_err().len(),
        1,
        "without a `write`, the records are written last: a command among them is refused"
    );
    assert_eq!(
        try_steps(d, "- command: { run: [gunzip] }\n- check: { non_empty: true }").unwrap_err(),
        ["/steps/1/check: `check` looks at the file as received (a checksum is of the bytes sent): put it before any `command` \
             step"]
    );
    assert_eq!(
        try_steps(d, "- parse: { format: csv }\n- write: { format: csv }\n- command: { run: [gzip] }\n- validate: {}").unwrap_err(),
        ["/steps/3/validate: `write` must be the last step (but for `command` steps)"]
    );
    assert_eq!(
        try_steps(d, "- command: { run: [gpg], name: '{{run}}-{{name}}', timeout: 1x }").unwrap_err(),
        [
            "/steps/0/command/timeout: `1x` is not a duration: unknown unit `x` (write e.g. `500ms`, `30s`, `2m`, `1h30m`, `1d`)"
                .to_string(),
            "/steps/0/command/name: `{{run}}-{{name}}` reads more than the file's name: a step's `name` knows `name`, `stem` and \
             `ext` (not `rel_dir`, `size`, `run` or `date`)"
                .to_string()
        ]
    );
}

#[test]
fn a_gzipped_file_is_parsed_and_a_written_one_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = steps(
        d,
        "- command: { run: [gunzip, -c], name: '{{stem}}' }\n- parse: { format: csv }\n- write: { format: jsonl }\n\
         - command: { run: [gzip, -c], name: '{{name}}.gz' }",
    );
    let p = run(d, &s, "in/x.csv.gz", &gzip(b"id,name\n1,a\n2,b\n"));
    assert_eq!((p.quarantine, p.counts.read, p.counts.written), (None, 2, 2));
    let out = std::fs::read(d.join("out")).unwrap();
    assert_eq!(p.output, Some(out.len() as u64));
    assert_eq!(gunzip(&out), b"{\"id\":\"1\",\"name\":\"a\"}\n{\"id\":\"2\",\"name\":\"b\"}\n");
    assert_eq!(s.delivered_name("x.csv.gz").unwrap(), "x.jsonl.gz", "unzipped x.csv, written x.jsonl, zipped");
    assert!(s.parses() && s.renames());
}

#[test]
fn command_steps_alone_deliver_what_the_program_made() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = steps(d, "- command: { run: [gunzip, -c], name: '{{stem}}' }\n- command: { run: [tr, a-z, A-Z] }");
    let p = run(d, &s, "x.txt.gz", &gzip(b"hello\n"));
    assert_eq!((p.quarantine, p.output, p.counts), (None, Some(6), RecordCounts::default()));
    assert_eq!(std::fs::read(d.join("out")).unwrap(), b"HELLO\n");
    assert_eq!(s.delivered_name("x.txt.gz").unwrap(), "x.txt");
    assert!(!s.parses());
    // An empty output is an empty file.
    let p = run(d, &steps(d, "- command: { run: ['true'] }"), "x.txt", b"abc");
    assert_eq!((p.quarantine, p.output), (None, Some(0)));
    // Only checks: the original is delivered, as before.
    assert_eq!(run(d, &steps(d, "- check: { non_empty: true }"), "x.txt", b"abc").output, None);
}

#[test]
fn a_failing_program_quarantines_the_file_naming_the_step_and_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = steps(d, "- check: { non_empty: true }\n- command: { run: [gunzip, -c] }\n- parse: { format: csv }");
    let p = run(d, &s, "x.csv.gz", b"id\n1\n");
    let v = p.quarantine.expect("quarantined");
    assert!(v.reason.starts_with("the `command` step steps[1] (`gunzip`) exited with status 1; its stderr ends: gzip: "), "{}", v.reason);
    assert_eq!((v.errors[0].source, v.cause), (Some(Source::Command), Causes::Data));
    assert_eq!((p.output, d.join("out").exists()), (None, false));

    let s = steps(
        d,
        "- parse: { format: csv }\n- write: { format: csv }\n- command: { run: [sh, -c, 'echo \"waiting for lock on /var/db\" >&2; sleep 5'], timeout: 200ms }",
    );
    let v = run(d, &s, "x.csv", b"id\n1\n").quarantine.expect("quarantined");
    assert_eq!(
        v.reason,
        "the `command` step steps[2] (`sh`) did not finish within 200ms and was killed; its stderr ends: waiting for lock on /var/db"
    );
    assert!(!d.join("out").exists(), "no partial output");

    // A decompression bomb: stopped at `max_output`, quarantined for the data it is.
    let s = steps(d, "- command: { run: [gunzip, -c], max_output: 1MiB }\n- parse: { format: csv }");
    let bomb = gzip(&vec![b'0'; 5 << 20]);
    let v = run(d, &s, "x.csv.gz", &bomb).quarantine.expect("quarantined");
    assert_eq!(v.reason, "the `command` step steps[0] (`gunzip`) wrote more than its max_output of 1MiB and was killed");
    assert_eq!((v.errors[0].source, v.cause), (Some(Source::Command), Causes::Data));
    assert!(!d.join("out").exists(), "no partial output");
}

#[test]
fn a_program_that_cannot_start_is_not_the_file_s_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = steps(d, "- command: { run: [./missing.sh] }");
    match s.run(&Input {
        flow: "f",
        staged: &d.join("nothing-needed"),
        name: "x",
        size: 0,
        sha256: "",
        checksum_text: None,
        row_count_text: None,
        vars: &NameVars::new("x", "", 0, 1, std::time::UNIX_EPOCH),
        output: &d.join("out"),
        rejects: &d.join("rejects"),
        bytes: &d.join("bytes"),
        piped: &d.join("piped"),
        abandoned: None,
    }) {
        // The staged file is opened first: missing here, the local disk's trouble.
        Err(RunError::Io(_)) => {}
        other => panic!("{other:?}"),
    }
    std::fs::write(d.join("staged"), "x").unwrap();
    let vars = NameVars::new("x", "", 1, 1, std::time::UNIX_EPOCH);
    let input = Input {
        flow: "f",
        staged: &d.join("staged"),
        name: "x",
        size: 1,
        sha256: "",
        checksum_text: None,
        row_count_text: None,
        vars: &vars,
        output: &d.join("out"),
        rejects: &d.join("rejects"),
        bytes: &d.join("bytes"),
        piped: &d.join("piped"),
        abandoned: None,
    };
    match s.run(&input) {
        Err(RunError::Program(m)) => assert!(m.contains("missing.sh` could not be started"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_render_after_a_renaming_command_sees_the_new_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("doc.txt.hbs"), "{{file.name}} {{file.stem}} {{file.ext}}: {{count}}\n").unwrap();
    let s = steps(d, "- command: { run: [gunzip, -c], name: '{{stem}}' }\n- parse: { format: csv }\n- render: { template: doc.txt.hbs }");
    let p = run(d, &s, "prices.csv.gz", &gzip(b"id\n1\n2\n"));
    assert_eq!(p.quarantine, None);
    assert_eq!(std::fs::read_to_string(d.join("out")).unwrap(), "prices.csv prices csv: 2\n");
    assert_eq!(s.delivered_name("prices.csv.gz").unwrap(), "prices.txt");
}
