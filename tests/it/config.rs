//! Flow files end to end: loading a full flow, reporting every problem with its position,
//! secrets, the `wharf validate` / `wharf schema` commands, and the generated files.

use std::env::VarError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use wharf::config::flow::{Disposition, EndpointSpec, HostKeyPolicy, Identity, OnError, Retry, SshAuth};
use wharf::config::raw::IfExists;
use wharf::config::{Diagnostic, find_flows, flow_reference_markdown, flow_schema, load_flow_str_with_env};
use wharf::endpoint::RemotePath;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/flows")
}

fn env(name: &str) -> Result<String, VarError> {
    match name {
        "ACME_PASS" => Ok("correct horse battery".into()),
        _ => Err(VarError::NotPresent),
    }
}

fn load(name: &str) -> Result<wharf::config::Flow, Vec<Diagnostic>> {
    let file = fixtures().join(name);
    load_flow_str_with_env(&std::fs::read_to_string(&file).unwrap(), &file, &env)
}

/// `line:col: message (at path)` without the file name.
fn short(d: &Diagnostic) -> String {
    format!("{}:{}: {} (at {})", d.line, d.col, d.message, d.yaml_path)
}

#[test]
fn full_flow_loads_into_the_expected_flow() {
    let flow = load("acme-orders.yaml").unwrap_or_else(|e| panic!("{e:#?}"));
    let dir = std::path::absolute(fixtures()).unwrap();
    assert_eq!(flow.name, "acme-orders");
    assert_eq!(flow.file, fixtures().join("acme-orders.yaml"));

    let EndpointSpec::Sftp(acme) = &flow.endpoints["acme"] else { panic!("acme is not sftp: {:?}", flow.endpoints["acme"]) };
    assert_eq!((acme.host.as_str(), acme.port, acme.user.as_str(), acme.root.as_str()), ("127.0.0.1", 2222, "wharftest", "/srv/acme"));
    assert!(matches!(&acme.auth, SshAuth::Password(p) if p.expose() == "correct horse battery"));
    // `../keys` of the flow's folder, written without `..` (the folder is no symbolic link).
    assert_eq!(acme.host_key, HostKeyPolicy::KnownHosts(dir.parent().unwrap().join("keys/known_hosts")));
    assert_eq!((acme.connect_timeout, acme.operation_timeout), (Duration::from_secs(20), Duration::from_secs(60)));
    assert!(matches!(&flow.endpoints["erp"], EndpointSpec::Local { root } if *root == dir.join("out")), "{:?}", flow.endpoints["erp"]);

    let src = &flow.source;
    assert_eq!((src.endpoint.as_str(), src.path.as_str(), src.recursive), ("acme", "outbox", false));
    assert!(src.include.is_match("orders.csv") && !src.include.is_match("orders.xml") && !src.include.is_match("sub/orders.csv"));
    assert!(src.exclude.is_match("orders.csv.tmp") && !src.exclude.is_match("orders.csv"));
    assert_eq!((src.ready.min_age, src.ready.stable_for), (Some(Duration::from_secs(120)), Some(Duration::from_secs(30))));
    assert_eq!(src.ready.done_file.as_ref().map(|t| t.source()), Some("{{name}}.done"));
    assert_eq!(src.identity, Identity::DEFAULT);

    let [sink] = flow.sinks.as_slice() else { panic!("one sink expected") };
    assert_eq!(sink.endpoint, "erp");
    assert_eq!(sink.path.source(), "/inbox/{{date \"YYYY\"}}");
    let vars = wharf::template::NameVars::new("orders.csv", "", 10, 7, std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    assert_eq!(sink.name.render(&vars).unwrap(), "orders-20231114.csv");
    assert_eq!(sink.temp_name.as_ref().expect("a temporary name").render(&vars).unwrap(), ".orders.csv.acme-orders.part");
    assert_eq!(sink.if_exists, IfExists::Rename);

    assert_eq!(flow.after_success, Disposition::MoveTo(RemotePath::parse("outbox/processed").unwrap()));
    assert_eq!(flow.after_failure, Disposition::Keep);
    assert_eq!(flow.on_error, OnError::Continue);
    assert_eq!(flow.retry, Retry { attempts: 3, backoff: Duration::from_secs(2), give_up_after: 10 });
}

#[test]
fn every_problem_is_reported_at_its_line_and_column() {
    let diagnostics = load("broken.yaml").unwrap_err();
    let got: Vec<String> = diagnostics.iter().map(short).collect();
    let want = [
        "6:11: expected an integer, found the string `22` (at /endpoints/acme/port)",
        "13:9: `..` is not allowed in \"/outbox/../etc\" (paths may not leave the endpoint root) (at /source/path)",
        "14:22: bad glob `[a`: unclosed character class; missing ']' (at /source/include/1)",
        "15:3: unknown field `recursve` (did you mean `recursive`?), expected one of `command`, `endpoint`, `exclude`, `identity`, `ignore_case`, `include`, `max_depth`, `max_files`, `path`, \
         `ready`, `recursive` (at /source/recursve)",
        "17:15: unknown endpoint `nowhere` (defined: `acme`, `erp`) (at /sinks/0/endpoint)",
    ];
    assert_eq!(got[..5], want, "{got:#?}");
    assert!(
        got[5].starts_with("18:11: template \"{{stm}}.csv\": ") && got[5].contains("stm") && got[5].ends_with("(at /sinks/0/name)"),
        "{got:#?}"
    );
    assert_eq!(got[6], "19:5: duplicate key `name` (the first occurrence is used) (at /sinks/0/name)");
    assert_eq!(got[7], "20:20: the number 0 is too small: the least allowed is 1 (at /retry/attempts)");
    assert_eq!(got.len(), 8, "{got:#?}");
    let file = fixtures().join("broken.yaml");
    assert_eq!(
        diagnostics[0].to_string(),
        format!("{}:6:11: expected an integer, found the string `22` (at /endpoints/acme/port)", file.display())
    );
}

#[test]
fn every_step_is_checked_even_when_another_step_is_malformed() {
    // One step of the wrong shape (an unknown `parse` format), one with an unknown key in a
    // look-up table, a schema that does not compile and a script with a syntax error: all four
    // are reported in one pass, each where it is written.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/steps/broken-steps.yaml");
    let got: Vec<String> =
        load_flow_str_with_env(&std::fs::read_to_string(&file).unwrap(), &file, &env).unwrap_err().iter().map(short).collect();
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[0].starts_with("7:22: ") && got[0].contains("xlsx") && got[0].ends_with("(at /steps/0/parse/format)"), "{got:#?}");
    assert!(
        got[1].starts_with("8:25: ") && got[1].contains("does not compile") && got[1].ends_with("(at /steps/1/validate/schema)"),
        "{got:#?}"
    );
    assert!(
        got[2].starts_with("10:15: ") && got[2].contains("syntax.rhai line 3, col ") && got[2].ends_with("(at /steps/2/map/script)"),
        "{got:#?}"
    );
    assert!(got[3].starts_with("12:46: unknown field `sheet`") && got[3].ends_with("(at /steps/2/map/lookups/depts/sheet)"), "{got:#?}");
}

#[test]
fn a_missing_environment_variable_is_named_at_its_use() {
    let file = fixtures().join("acme-orders.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("${env:ACME_PASS}", "${env:WHARF_TEST_UNSET_VAR}");
    let diagnostics = load_flow_str_with_env(&text, &file, &env).unwrap_err();
    let got: Vec<String> = diagnostics.iter().map(short).collect();
    assert_eq!(got, ["4:87: environment variable `WHARF_TEST_UNSET_VAR` is not set (at /endpoints/acme/auth/password)"]);
}

#[test]
fn resolved_secrets_never_show_in_debug_output() {
    let flow = load("acme-orders.yaml").unwrap();
    let EndpointSpec::Sftp(acme) = &flow.endpoints["acme"] else { panic!() };
    assert!(matches!(&acme.auth, SshAuth::Password(p) if p.expose() == "correct horse battery"));
    let debug = format!("{flow:?} {flow:#?}");
    assert!(!debug.contains("correct horse battery"), "{debug}");
    assert!(debug.contains("***"));
}

#[test]
fn secret_values_are_not_quoted_in_diagnostics() {
    let file = fixtures().join("acme-orders.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("\"${env:ACME_PASS}\"", "[hunter2]");
    let diagnostics = load_flow_str_with_env(&text, &file, &env).unwrap_err();
    let got: Vec<String> = diagnostics.iter().map(short).collect();
    assert_eq!(got, ["4:87: expected a string, found a list (at /endpoints/acme/auth/password)"]);
    let text = std::fs::read_to_string(&file).unwrap().replace("\"${env:ACME_PASS}\"", "123456");
    let diagnostics = load_flow_str_with_env(&text, &file, &env).unwrap_err();
    assert!(!diagnostics[0].message.contains("123456"), "{:?}", diagnostics[0]);
}

/// A password written as the key of `auth` (`auth: { hunter2 }`) is an unknown field whose
/// name is not shown, in the message or the path (before: "unknown field `hunter2`" at
/// `/endpoints/acme/auth/hunter2`); it is still placed at its line and column.
#[test]
fn an_unknown_field_under_auth_is_not_named() {
    let file = fixtures().join("acme-orders.yaml");
    let text = std::fs::read_to_string(&file).unwrap().replace("{ password: \"${env:ACME_PASS}\" }", "{ hunter2 }");
    let diagnostics = load_flow_str_with_env(&text, &file, &env).unwrap_err();
    let got: Vec<String> = diagnostics.iter().map(|d| format!("{d} {}", serde_json::to_string(d).unwrap())).collect();
    assert!(!got.concat().contains("hunter2"), "{got:#?}");
    let unknown = diagnostics.iter().find(|d| d.message.starts_with("an unknown field under `auth`")).expect("reported");
    assert_eq!(
        short(unknown),
        "4:77: an unknown field under `auth` (name not shown: it may be a secret), expected one of `passphrase`, `password`, \
         `private_key` (at /endpoints/acme/auth)"
    );
}

/// A password written twice as a key of `auth` (`auth: { hunter2, hunter2 }`) is a duplicate
/// key whose name `wharf validate` does not show, in text or JSON (before: "duplicate key
/// `hunter2` (the first occurrence is used) (at /endpoints/acme/auth/hunter2)"); it is still
/// placed at its line and column.
#[test]
fn a_duplicate_key_under_auth_is_not_named_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acme-orders.yaml");
    let text = std::fs::read_to_string(fixtures().join("acme-orders.yaml")).unwrap();
    std::fs::write(&file, text.replace("{ password: \"${env:ACME_PASS}\" }", "{ hunter2, hunter2 }")).unwrap();
    let file = file.to_str().unwrap();

    let (code, out) = wharf(&["validate", file]);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    let want = format!(
        "{file}:4:86: a duplicate key under `auth` (name not shown: it may be a secret; the first occurrence is used) (at \
         /endpoints/acme/auth)"
    );
    assert!(out.lines().any(|l| l == want), "{want} missing in:\n{out}");

    let (code, out) = wharf(&["validate", "--json", file]);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let duplicate = json.as_array().unwrap().iter().find(|d| d["message"].as_str().unwrap().contains("duplicate key")).expect(&out);
    assert_eq!((&duplicate["line"], &duplicate["col"], &duplicate["yaml_path"]), (&4.into(), &86.into(), &"/endpoints/acme/auth".into()));

    // Under a second `auth:` too (before: named, at `/endpoints/acme/\u{e000}uth/hunter2`).
    let file = dir.path().join("twice.yaml");
    std::fs::write(&file, text.replace("{ password: \"${env:ACME_PASS}\" }", "{ password: x }, auth: { hunter2, hunter2 }")).unwrap();
    let (code, out) = wharf(&["validate", file.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(!out.contains("hunter2") && !out.contains('\u{e000}'), "{out}");
    assert!(out.contains(": duplicate key `auth` (the first occurrence is used) (at /endpoints/acme/auth)\n"), "{out}");
}

#[test]
fn find_flows_expands_folders() {
    let found = find_flows(&[fixtures()]);
    assert_eq!(found, [fixtures().join("acme-orders.yaml"), fixtures().join("broken.yaml")]);
}

fn wharf(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .env("ACME_PASS", "from the environment")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).unwrap())
}

/// `wharf validate flows/*.yaml` names the flows' test files too: each is checked as a test
/// file, with its flow (before: as a flow, "missing field `name`", "unknown field `cases`").
#[test]
fn validate_checks_a_test_file_named_on_the_command_line_as_one() {
    let (code, out) = wharf(&["validate", "flows/example-local.yaml", "flows/example-local.test.yaml"]);
    assert_eq!((code, out.as_str()), (0, "1 flow(s) and 1 test file(s) checked, 0 problem(s)\n"));

    let dir = tempfile::tempdir().unwrap();
    let flow = std::path::absolute("flows/example-local.yaml").unwrap();
    let broken = dir.path().join("x.test.yaml");
    std::fs::write(&broken, format!("flow: {}\ncases:\n  - name: one\n    inptu: {{ name: a.csv }}\n", flow.display())).unwrap();
    let (code, out) = wharf(&["validate", broken.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(code, 2, "{out}");
    assert!(lines.iter().any(|l| l.starts_with(&format!("{}:4:5: ", broken.display())) && l.contains("inptu")), "{out}");
    assert!(!out.contains("missing field `name`"), "not read as a flow: {out}");
    assert!(lines.last().unwrap().starts_with("0 flow(s) and 1 test file(s) checked, "), "{out}");
}

/// `wharf validate /etc/wharf/serve.yaml` checks the daemon's settings as `wharf serve
/// --config` reads them (before: as a flow, "missing field `name`", "unknown field `listen`");
/// in a flows folder the file is still refused, as the one thing that does not belong there.
#[test]
fn validate_checks_the_daemon_settings_named_on_the_command_line_as_those() {
    let dir = tempfile::tempdir().unwrap();
    let serve = dir.path().join("serve.yaml");
    std::fs::write(&serve, "limits: { runs: 2 }\nrescan: 5s\n").unwrap();
    let (code, out) = wharf(&["validate", serve.to_str().unwrap(), "flows/example-local.yaml"]);
    assert_eq!((code, out.as_str()), (0, "1 flow(s) and 1 serve config(s) checked, 0 problem(s)\n"));

    std::fs::write(&serve, "listen: 0.0.0.0:9464\nrescan: 1ms\n").unwrap();
    let (code, out) = wharf(&["validate", serve.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(code, 2, "{out}");
    let at = |line: &str| lines.iter().any(|l| l.starts_with(&format!("{}:{line}: ", serve.display())));
    assert!(at("1:9") && out.contains("is not a loopback address"), "{out}");
    assert!(at("2:9") && out.contains("must be at least 100ms"), "{out}");
    assert!(!out.contains("missing field `name`"), "not read as a flow: {out}");
    assert_eq!(*lines.last().unwrap(), "0 flow(s) and 1 serve config(s) checked, 2 problem(s)", "{out}");

    std::fs::write(&serve, "limits: { runs: 2 }\nbogus: 1\n").unwrap();
    let (code, out) = wharf(&["validate", serve.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.starts_with(&format!("{}:2:1: unknown field `bogus`", serve.display())), "{out}");

    // Among the flows it is refused, saying what it is.
    let (code, out) = wharf(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("this looks like the settings of `wharf serve` (serve.yaml), not a flow"), "{out}");
}

#[test]
fn validate_command_prints_problems_and_sets_the_exit_code() {
    let good = "tests/fixtures/flows/acme-orders.yaml";
    // Its known_hosts file is not in the repository, as keys are not where CI validates: a
    // warning, not a problem.
    let (code, out) = wharf(&["validate", good]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!((code, lines.len()), (0, 2), "{out}");
    assert!(
        lines[0].starts_with("tests/fixtures/flows/acme-orders.yaml:4:") && lines[0].contains(": warning: endpoint `acme`: known_hosts /"),
        "{out}"
    );
    // It says how to make the file (it said "put the file there").
    assert!(
        lines[0]
            .contains("keys/known_hosts does not exist (record the server's key in it with `wharf trust 127.0.0.1:2222 --known-hosts /"),
        "{out}"
    );
    assert!(lines[0].ends_with("keys/known_hosts`, or correct `known_hosts`) (at /endpoints/acme/host_key/known_hosts)"), "{out}");
    assert_eq!(lines[1], "1 flow(s) checked, 0 problem(s), 1 warning(s)");

    let (code, out) = wharf(&["validate", "tests/fixtures/flows"]);
    assert_eq!(code, 2, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    assert_eq!(lines[0], "tests/fixtures/flows/broken.yaml:6:11: expected an integer, found the string `22` (at /endpoints/acme/port)");
    assert!(lines[1..8].iter().all(|l| l.starts_with("tests/fixtures/flows/broken.yaml:")), "{out}");
    assert!(lines[8].contains(": warning: "), "{out}");
    assert_eq!(lines[9], "2 flow(s) checked, 8 problem(s), 1 warning(s)");

    let (code, out) = wharf(&["validate", "--json", "tests/fixtures/flows/broken.yaml"]);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(8));
    assert_eq!(
        json[0],
        serde_json::json!({
            "file": "tests/fixtures/flows/broken.yaml", "line": 6, "col": 11,
            "message": "expected an integer, found the string `22`", "yaml_path": "/endpoints/acme/port",
        })
    );
    let (code, out) = wharf(&["validate", "--json", good]);
    assert_eq!((code, out.trim()), (0, "[]"));

    let (code, out) = wharf(&["validate", "tests/fixtures/no-such-folder"]);
    assert_eq!(code, 2);
    // Was 'cannot read flow file: No such file or directory', and counted as a flow checked.
    assert_eq!(
        out,
        "tests/fixtures/no-such-folder: no such file or folder (give a flow file, or a folder of flow files)\n0 flow(s) checked, 1 problem(s)\n"
    );
}

/// A key or known_hosts file that is not there: `wharf validate` warns (it also runs where
/// the keys are not) and passes; `wharf run` stops before connecting, naming the flow file's
/// line, the endpoint, the field and the path (not an unreachable server: nothing listens on
/// the flow's port, and that is not what it says).
#[test]
fn a_missing_key_file_is_a_warning_in_validate_and_stops_a_run_before_it_connects() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    let flow = dir.path().join("keyed.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: keyed\nendpoints:\n  partner:\n    type: sftp\n    host: 127.0.0.1\n    port: {port}\n    user: u\n    auth: {{ private_key: keys/id_ed25519 }}\n    host_key: {{ known_hosts: known_hosts }}\n  here: {{ type: local, root: out }}\nsource: {{ endpoint: partner, path: /in }}\nsinks: [ {{ endpoint: here }} ]\n"
        ),
    )
    .unwrap();
    let key = dir.path().join("keys/id_ed25519");
    let (code, out) = wharf(&["validate", flow.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        format!(
            "{}:8:26: warning: endpoint `partner`: private_key {} does not exist (put the file there, or correct `private_key`) (at /endpoints/partner/auth/private_key)\n\
             1 flow(s) checked, 0 problem(s), 1 warning(s)\n",
            flow.display(),
            key.display()
        )
    );

    let state = dir.path().join("state");
    let run = Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).arg("run").arg(&flow).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(!run.status.success(), "{text}");
    let want = format!(
        "flow keyed: {}:8:26: connect: configuration error: endpoint `partner`: private_key {} does not exist (put the file there, or correct `private_key`) (at /endpoints/partner/auth/private_key)",
        flow.display(),
        key.display()
    );
    assert!(text.contains(&want), "{text}");
}

/// A CSV setting at its default value on a `jsonl` step: `wharf validate` warns and passes;
/// `--json` keeps its array of problems, `--json --with-warnings` appends the warnings with a
/// `severity`; `wharf run` logs the warning and runs the flow.
#[test]
fn a_pointless_setting_is_a_warning_in_validate_json_and_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/in")).unwrap();
    let flow = |name: &str, delimiter: &str| {
        format!(
            "name: {name}\nendpoints:\n  here: {{ type: local, root: data }}\nsource: {{ endpoint: here, path: /in }}\nsinks: [ {{ endpoint: here, path: /out }} ]\nquarantine: {{ endpoint: here, path: /bad }}\nsteps:\n  - parse: {{ format: jsonl, delimiter: \"{delimiter}\" }}\n"
        )
    };
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, flow("jsonish", ",")).unwrap();
    let warning = format!(
        "{}:8:40: warning: `delimiter` only applies to csv; it has no effect on a `jsonl` parse step — remove it (at /steps/0/parse/delimiter)",
        good.display()
    );
    let (code, out) = wharf(&["validate", good.to_str().unwrap()]);
    assert_eq!((code, out), (0, format!("{warning}\n1 flow(s) checked, 0 problem(s), 1 warning(s)\n")));
    let (code, out) = wharf(&["validate", "--json", good.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (0, "[]"));
    let (code, out) = wharf(&["validate", "--json", "--with-warnings", good.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        json,
        serde_json::json!([{
            "file": good, "line": 8, "col": 40, "severity": "warning", "yaml_path": "/steps/0/parse/delimiter",
            "message": "`delimiter` only applies to csv; it has no effect on a `jsonl` parse step — remove it",
        }])
    );

    // Beside a flow with a problem: the problems first, the exit code theirs.
    std::fs::write(dir.path().join("bad.yaml"), flow("semicolon", ";")).unwrap();
    let folder = dir.path().to_str().unwrap();
    let (code, out) = wharf(&["validate", "--json", folder]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, json.as_array().map(Vec::len)), (2, Some(1)), "{out}");
    assert_eq!(json[0]["message"], "applies to `csv` only (this file is read as `jsonl`)");
    assert!(json[0].get("severity").is_none(), "{out}");
    let (code, out) = wharf(&["validate", "--json", "--with-warnings", folder]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rated: Vec<(&str, &str)> =
        json.as_array().unwrap().iter().map(|e| (e["severity"].as_str().unwrap(), e["yaml_path"].as_str().unwrap())).collect();
    assert_eq!((code, rated), (2, vec![("error", "/steps/0/parse/delimiter"), ("warning", "/steps/0/parse/delimiter")]), "{out}");
    let (code, _) = wharf(&["validate", "--with-warnings", folder]);
    assert_eq!(code, 2, "--with-warnings without --json is a usage error");

    // A file with a problem shows its warnings too, after the problems.
    let both = dir.path().join("both").join("both.yaml");
    std::fs::create_dir_all(both.parent().unwrap()).unwrap();
    std::fs::write(&both, format!("{}bogus: 1\n", flow("both", ","))).unwrap();
    let (code, out) = wharf(&["validate", both.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(code, 2, "{out}");
    assert!(lines[0].contains(":9:1: ") && lines[0].contains("bogus"), "{out}");
    assert!(lines[1].contains(":8:40: warning: `delimiter` only applies to csv"), "{out}");
    assert_eq!(lines[2], "1 flow(s) checked, 1 problem(s), 1 warning(s)", "{out}");

    let run = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("run")
        .arg(&good)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let logged: Vec<&str> = stderr.lines().filter(|l| l.contains("Flow file warning")).collect();
    assert_eq!(logged.len(), 1, "{stderr}");
    assert!(
        logged[0].contains("flow=jsonish") && logged[0].contains("line=8") && logged[0].contains("at=/steps/0/parse/delimiter"),
        "{stderr}"
    );
}

/// `wharf test` and `wharf status` log a flow's warnings on stderr as `wharf run` does
/// (before: only `validate` and `run` said anything), with their exit codes and stdout
/// (text or JSON) as they were.
#[test]
fn a_flow_warning_is_logged_by_test_and_status_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data/in")).unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    std::fs::write(
        flows.join("jsonish.yaml"),
        "name: jsonish\nendpoints:\n  here: { type: local, root: ../data }\nsource: { endpoint: here, path: /in }\nsinks: [ { endpoint: here, path: /out } ]\nquarantine: { endpoint: here, path: /bad }\nsteps:\n  - parse: { format: jsonl, delimiter: \",\" }\n",
    )
    .unwrap();
    std::fs::write(
        flows.join("jsonish.test.yaml"),
        "flow: jsonish.yaml\ncases:\n  - name: a file is delivered\n    input: { name: a.jsonl, content: \"{}\\n\" }\n    expect: { outcome: delivered }\n",
    )
    .unwrap();
    let wharf = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let warned = |stderr: &str| {
        let logged: Vec<&str> = stderr.lines().filter(|l| l.contains("Flow file warning")).collect();
        logged.len() == 1 && logged[0].contains("flow=jsonish") && logged[0].contains("at=/steps/0/parse/delimiter")
    };
    let folder = flows.to_str().unwrap();
    for args in [vec!["test", folder], vec!["status", "--flows", folder]] {
        let (code, out, err) = wharf(&args);
        assert_eq!(code, Some(0), "{args:?}: {out}{err}");
        assert!(warned(&err), "{args:?}: {err}");
        assert!(!out.contains("warning"), "{args:?}: stdout as it was: {out}");
        let mut json = args.clone();
        json.push("--json");
        let (code, out, err) = wharf(&json);
        assert_eq!(code, Some(0), "{json:?}: {out}{err}");
        assert!(warned(&err), "{json:?}: {err}");
        serde_json::from_str::<serde_json::Value>(&out).unwrap_or_else(|e| panic!("{json:?}: {e}: {out}"));
    }
}

#[test]
fn schema_command_prints_the_schema() {
    let (code, out) = wharf(&["schema"]);
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&out).unwrap(), flow_schema());
    let (code, out) = wharf(&["schema", "--markdown"]);
    assert_eq!((code, out), (0, flow_reference_markdown()));
}

#[test]
fn generated_schema_and_reference_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema = serde_json::to_string_pretty(&flow_schema()).unwrap() + "\n";
    let on_disk = std::fs::read_to_string(root.join("schemas/flow.schema.json")).unwrap_or_default();
    assert!(on_disk == schema, "schemas/flow.schema.json is out of date: run `cargo run -- schema --write schemas/flow.schema.json`");
    let on_disk = std::fs::read_to_string(root.join("docs/flow-reference.md")).unwrap_or_default();
    assert!(
        on_disk == flow_reference_markdown(),
        "docs/flow-reference.md is out of date: run `cargo run -- schema --markdown --write docs/flow-reference.md`"
    );
}

#[test]
fn validate_command_refuses_shared_flow_names_and_empty_folders() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(fixtures().join("acme-orders.yaml")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), &text).unwrap();
    std::fs::write(dir.path().join("b.yml"), &text).unwrap();
    let (code, out) = wharf(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    let b = dir.path().join("b.yml");
    let a = dir.path().join("a.yaml");
    // Besides: a warning for each, about the known_hosts file that is not there.
    let problems: Vec<&str> = out.lines().filter(|l| !l.contains(": warning: ")).collect();
    assert_eq!(
        problems,
        [
            format!(
                "{}:2:7: flow name `acme-orders` is already used by {}; flow names must be unique (they key the ledger) (at /name)",
                b.display(),
                a.display()
            )
            .as_str(),
            "2 flow(s) checked, 1 problem(s), 2 warning(s)"
        ]
    );

    let empty = tempfile::tempdir().unwrap();
    let (code, out) = wharf(&["validate", empty.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no flow files (*.yaml, *.yml) in this folder"), "{out}");
}

#[test]
fn a_flow_that_is_not_found_says_where_it_was_looked_for() {
    // Every command taking FLOW (a file, or a name in ./flows) said "FLOW:1:1: cannot read
    // flow file: No such file or directory (os error 2) (at /)".
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for (args, not_done) in [
        (&["run", "orders"][..], "nothing was run"),
        // Each in its own words (it said "nothing was run" for every command).
        (&["plan", "orders", "--json"], "nothing was planned"),
        (&["probe", "orders"], "nothing was probed"),
        (&["quarantine", "reprocess", "orders", "/a.csv"], "nothing was reprocessed"),
        (&["quarantine", "show", "orders", "/a.csv"], "nothing was shown"),
    ] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).args(args).current_dir(dir.path()).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "orders: no such flow file (looked for orders, flows/orders.yaml and flows/orders.yml, and a flow with `name: \
                 orders` in flows; give a flow file, or the name of one in ./flows); {not_done}\n"
            ),
            "{args:?}"
        );
        if args.contains(&"--json") {
            // With `--json`, stdout holds the failure as JSON (nothing before).
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!((v["error"]["kind"].as_str(), v["error"]["flow"].as_str()), (Some("not_found"), Some("orders")), "{v}");
        } else {
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
    assert!(!state.exists(), "nothing was created");
}

/// `FLOW` given by the flow's `name:` finds its file in ./flows when the file is named
/// otherwise (wharf prints commands with the flow's name: `wharf quarantine show acme-orders
/// PATH`); two files giving that name are both named, and nothing is done.
#[test]
fn a_flow_is_found_by_its_name_when_its_file_is_named_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let file = crate::support::local_flow(dir.path(), "acme-orders", &dir.path().join("files"));
    let acme = dir.path().join("flows/acme.yaml");
    std::fs::rename(&file, &acme).unwrap();
    std::fs::write(dir.path().join("files/outbox/a.csv"), "1\n").unwrap();
    let state = dir.path().join("state");
    let wharf_here = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(&state).args(args).current_dir(dir.path()).output().unwrap()
    };
    let out = wharf_here(&["plan", "acme-orders", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["files"][0]["path"], "/a.csv", "{plan}");

    std::fs::copy(&acme, dir.path().join("flows/acme-copy.yml")).unwrap();
    let out = wharf_here(&["run", "acme-orders"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "flow `acme-orders`: 2 flow files in flows give `name: acme-orders` (flows/acme-copy.yml and flows/acme.yaml); give the \
         file of the one meant; nothing was run\n"
    );
    assert!(!state.join("ledger.redb").exists(), "nothing was run");
}

/// Every kind of secret a flow can hold, in one flow: none of them shows in its `Debug`.
#[test]
fn no_secret_of_any_kind_shows_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pass.txt"), "Fi1e-Secret\n").unwrap();
    std::fs::write(dir.path().join("id_ed25519"), "not read at load time").unwrap();
    let yaml = "name: all-secrets
endpoints:
  f: { type: ftp, host: 127.0.0.1, user: u, password: Inline-Ftp-Pw, tls: explicit }
  s: { type: sftp, host: 127.0.0.1, user: u, auth: { private_key: id_ed25519, passphrase: \"${env:ACME_PASS}\" }, host_key: { known_hosts: kh } }
  l: { type: local, root: ./out }
source: { endpoint: f, path: /in }
sinks: [ { endpoint: s, path: / }, { endpoint: l, path: / } ]
notify:
  - on: [failed]
    webhook: { url: \"https://hooks.example.com/services/T0/Hook-Path-Token?token=Hook-Query-Token\", headers: { Authorization: \"Bearer Header-Token\" } }
  - on: [failed]
    email: { server: smtp.example.com, username: ops, password: \"${file:pass.txt}\", from: wharf@example.com, to: [ops@example.com] }
";
    let file = dir.path().join("all.yaml");
    let flow = load_flow_str_with_env(yaml, &file, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let debug = format!("{flow:?} {flow:#?}");
    for secret in ["Inline-Ftp-Pw", "correct horse battery", "Hook-Path-Token", "Hook-Query-Token", "Header-Token", "Fi1e-Secret"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert_eq!(flow.notify.len(), 2, "both rules are in the flow, and in its Debug");
    assert!(debug.contains("***"), "{debug}");
}

/// A raw flow (the flow file as read, before validation) holds inline secrets as they were
/// written: its `Debug` shows none of them either (before: every one, as a plain `String`).
#[test]
fn no_inline_secret_shows_in_the_debug_output_of_a_raw_flow() {
    let yaml = "name: raw-secrets
endpoints:
  f: { type: ftp, host: 127.0.0.1, user: u, password: Inline-Ftp-Pw }
  s: { type: sftp, host: 127.0.0.1, user: u, auth: { password: Inline-Sftp-Pw }, host_key: { known_hosts: kh } }
  k: { type: sftp, host: 127.0.0.1, user: u, auth: { private_key: id, passphrase: Inline-Phrase }, host_key: { known_hosts: kh } }
source: { endpoint: f, path: /in }
sinks: [ { endpoint: s, path: / } ]
notify:
  - on: [failed]
    webhook: { url: \"https://hooks.example.com/T0/Hook-Path-Token\", headers: { Authorization: \"Bearer Header-Token\" } }
  - on: [failed]
    email: { server: smtp.example.com, username: ops, password: Inline-Mail-Pw, from: wharf@example.com, to: [ops@example.com] }
";
    let raw: wharf::config::raw::RawFlow = serde_yaml::from_str(yaml).unwrap();
    let debug = format!("{raw:?} {raw:#?}");
    for secret in ["Inline-Ftp-Pw", "Inline-Sftp-Pw", "Inline-Phrase", "Hook-Path-Token", "Header-Token", "Inline-Mail-Pw"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    assert!(debug.contains("Authorization") && debug.contains("ops@example.com"), "the rest is shown: {debug}");
    // And the flow built from it still has them, for the protocols.
    let flow = load_flow_str_with_env(yaml, Path::new("raw.yaml"), &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
    assert!(matches!(&s.auth, SshAuth::Password(p) if p.expose() == "Inline-Sftp-Pw"));
}

/// Two flows of a folder awaiting their responses in one folder of one server under names
/// that may be alike would take each other's answers: `wharf validate` of the folder warns,
/// at the second flow's `response.name`, naming both flows and the first one's file (a
/// warning: the names of their requests may keep them apart). Checked one by one, neither
/// shows it; responses told apart by their fixed text are not warned of.
#[test]
fn two_flows_that_may_take_each_others_responses_are_warned_of_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let round_trip = |name: &str, answer: &str| {
        format!(
            "name: {name}\nendpoints:\n  here: {{ type: local, root: data }}\n  partner: {{ type: sftp, host: sftp.example.com, user: acme, auth: {{ password: x }}, host_key: {{ known_hosts: /etc/ssh/ssh_known_hosts }} }}\n\
             source: {{ endpoint: here, path: /out }}\nsinks: [ {{ endpoint: partner, path: /inbox }} ]\n\
             response: {{ path: /outbox, name: \"{answer}\", deadline: 1h, sinks: [ {{ endpoint: here, path: /acks }} ] }}\n"
        )
    };
    let (a, b) = (dir.path().join("a-orders.yaml"), dir.path().join("b-invoices.yaml"));
    std::fs::write(&a, round_trip("orders", "{{stem}}.ack")).unwrap();
    std::fs::write(&b, round_trip("invoices", "{{name}}.ack")).unwrap();
    let (code, out) = wharf(&["validate", "--json", "--with-warnings", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let clash: Vec<&serde_json::Value> =
        json.as_array().unwrap().iter().filter(|d| d["message"].as_str().unwrap().contains("would take the other's")).collect();
    assert_eq!(clash.len(), 1, "{out}");
    let d = clash[0];
    assert_eq!(
        (&d["file"], &d["line"], &d["yaml_path"], &d["severity"]),
        (&b.to_str().into(), &7.into(), &"/response/name".into(), &"warning".into()),
        "{d:#}"
    );
    let message = d["message"].as_str().unwrap();
    let want = format!(
        "flow `invoices` awaits responses named `{{{{name}}}}.ack` in /outbox on sftp acme@sftp.example.com:22, where flow `orders` ({}) awaits `{{{{stem}}}}.ack`",
        a.display()
    );
    assert!(message.starts_with(&want), "{message}");
    // One at a time, neither shows it.
    let (_, out) = wharf(&["validate", b.to_str().unwrap()]);
    assert!(!out.contains("would take the other's"), "{out}");
    // Told apart by their fixed text: no warning.
    std::fs::write(&b, round_trip("invoices", "INV-{{name}}.ack")).unwrap();
    std::fs::write(&a, round_trip("orders", "ORD-{{stem}}.ack")).unwrap();
    let (code, out) = wharf(&["validate", dir.path().to_str().unwrap()]);
    assert!(code == 0 && !out.contains("would take the other's"), "{out}");
}
