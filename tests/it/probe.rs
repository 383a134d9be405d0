//! `wharf probe` against real servers (OpenSSH sshd, vsftpd, pure-ftpd) and against `wharf
//! sandbox` (both protocols): the facts each server gives, the `--write` checks (clock offset
//! near zero on loopback, rename semantics, the scratch folder gone afterwards), a read-only
//! probe leaving the server untouched, and `wharf plan` showing what a stored probe found.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use wharf::config::flow::FtpTls;

use support::ftpd::Ftpd;
use support::sshd::Sshd;

/// Every file and folder under `dir` with its size and mtime, sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            if md.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path().strip_prefix(dir).unwrap().to_path_buf(), md.len(), md.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// A flow with the server as endpoint `p` (source `/in`, and a sink `/out` with `if_exists`)
/// and a local endpoint `l`.
fn flow_file(dir: &Path, server_yaml: &str, ready: &str, if_exists: &str) -> PathBuf {
    let flow = dir.join("partner.yaml");
    std::fs::write(
        &flow,
        format!(
            "name: partner\nendpoints:\n  p:\n{server_yaml}  l: {{ type: local, root: {} }}\nsource: {{ endpoint: p, path: /in, ready: {ready} }}\nsinks: [ {{ endpoint: p, path: /out, if_exists: {if_exists} }} ]\n",
            dir.join("local").display()
        ),
    )
    .unwrap();
    flow
}

/// Runs `wharf --state-dir STATE ARGS…`: exit code, stdout, stdout + stderr for messages.
fn wharf(state: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(state).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    (out.status.code(), stdout, all)
}

fn json(stdout: &str, all: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {all}"))
}

/// The report of endpoint `name` in a `probe --json` answer.
fn report<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["endpoints"].as_array().unwrap().iter().find(|r| r["endpoint"] == name).unwrap_or_else(|| panic!("no {name} in {v}"))
}

fn feature<'a>(r: &'a Value, name: &str) -> Option<&'a Value> {
    r["facts"]["features"].as_array().unwrap().iter().find(|f| f["name"] == name)
}

/// Asserts the `--write` clock estimate is near zero (the same machine's clock).
fn assert_clock_near_zero(w: &Value) {
    let (off, unc) = (w["clock"]["offset_ms"].as_i64().unwrap(), w["clock"]["uncertainty_ms"].as_i64().unwrap());
    // File times come from the kernel's coarse clock, a few ms behind the precise one.
    assert!(off.abs() <= unc + 50, "{w}");
    assert!(unc <= 1000, "1 s mtimes and 4 samples: {w}");
}

#[test]
fn sftp_facts_and_write_checks_against_openssh() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let inbox = sshd.data_dir().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("a.csv"), "1\n").unwrap();
    sshd.give_to_user(&inbox);
    let flow = flow_file(dir.path(), &sshd.endpoint_yaml(4), "{ min_age: 30s }", "overwrite");
    let state = dir.path().join("state");
    let flow = flow.to_str().unwrap();

    // Read-only: facts for every endpoint; the server is untouched.
    let before = tree(sshd.data_dir());
    let (code, out, all) = wharf(&state, &["probe", flow, "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let v = json(&out, &all);
    let p = report(&v, "p");
    assert_eq!(p["facts"]["protocol"], "SFTP v3", "{p}");
    assert_eq!(p["facts"]["traits"]["sessions"], serde_json::json!({ "asked": 2, "accepted": 2 }), "{p}");
    assert!(p["facts"]["software"].as_str().unwrap().contains("OpenSSH"), "{p}");
    assert_eq!(feature(p, "posix-rename@openssh.com").unwrap()["value"], "version 1", "{p}");
    let limits = feature(p, "limits@openssh.com").unwrap()["value"].as_str().unwrap();
    assert!(limits.starts_with("max packet ") && limits.contains("read ") && limits.contains("open handles"), "{limits}");
    assert!(feature(p, "fsync@openssh.com").unwrap()["value"].is_string(), "{p}");
    assert!(feature(p, "cipher").is_some(), "{p}");
    assert_eq!(p["facts"]["traits"]["atomic_replace"]["yes"], true);
    assert_eq!(p["promised"]["atomic_replace"], true);
    assert!(p["write"].is_null());
    assert_eq!(report(&v, "l")["facts"]["protocol"], "local");
    let clock: Vec<&Value> = p["findings"].as_array().unwrap().iter().filter(|f| f["topic"] == "clock").collect();
    assert!(clock[0]["text"].as_str().unwrap().contains("was not measured"), "{p}");
    assert_eq!(tree(sshd.data_dir()), before, "a read-only probe changes nothing");
    assert!(state.join("probes/partner.p.json").exists());
    assert!(!state.join("ledger.redb").exists(), "the probe does not touch the ledger");

    // --write: rename semantics, precision and clock; the scratch folder is gone afterwards.
    let (code, out, all) = wharf(&state, &["probe", flow, "--endpoint", "p", "--write", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let v = json(&out, &all);
    assert_eq!(v["endpoints"].as_array().unwrap().len(), 1);
    let w = &report(&v, "p")["write"];
    // OpenSSH's plain SFTP rename refuses an existing target; wharf's replace uses posix-rename.
    assert_eq!(w["plain_rename"]["result"], "refuses", "{w}");
    assert!(w["replace_problem"].is_null() && w["no_replace_problem"].is_null(), "{w}");
    assert_eq!(w["mtime_precision"], 1000.0, "{w}");
    assert!(w["cleanup_problem"].is_null(), "{w}");
    assert!(w["scratch"].as_str().unwrap().starts_with("/.wharf-probe-"), "{w}");
    assert_clock_near_zero(w);
    assert_eq!(tree(sshd.data_dir()), before, "the scratch folder was removed");

    // The text form, and a later read-only probe keeps the measured clock.
    let (code, out, all) = wharf(&state, &["probe", flow, "--endpoint", "p"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(out.contains("flow partner, endpoint p: sftp "), "{out}");
    assert!(out.contains("posix-rename@openssh.com"), "{out}");
    assert!(out.contains("server clock") && out.contains("from the probe of"), "{out}");
    assert!(out.contains("the clocks agree"), "{out}");
}

#[test]
fn ftp_facts_from_vsftpd_and_pure_ftpd() {
    let Some(vsftpd) = Ftpd::vsftpd() else { return };
    let dir = support::tempdir();
    std::fs::create_dir_all(vsftpd.data_dir().join("in")).unwrap();
    vsftpd.give_to_user(&vsftpd.data_dir().join("in"));
    let state = dir.path().join("state");

    // Explicit FTPS: FEAT lines, the TLS session, and a listing over EPSV.
    let flow = flow_file(dir.path(), &vsftpd.endpoint_yaml(FtpTls::Explicit, 4), "{ stable_for: 30s }", "fail");
    let before = tree(vsftpd.data_dir());
    let (code, out, all) = wharf(&state, &["probe", flow.to_str().unwrap(), "--endpoint", "p", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let v = json(&out, &all);
    let p = report(&v, "p");
    assert_eq!(p["facts"]["protocol"], "FTPS (explicit)");
    assert_eq!(p["facts"]["traits"]["sessions"], serde_json::json!({ "asked": 4, "accepted": 4 }), "{p}");
    assert!(p["facts"]["software"].as_str().unwrap().contains("vsFTPd"), "{p}");
    for name in ["MDTM", "SIZE", "EPSV", "REST"] {
        assert!(feature(p, name).unwrap()["value"].is_string(), "{name}: {p}");
    }
    assert_eq!(feature(p, "AUTH").unwrap()["value"], "TLS", "{p}");
    assert!(feature(p, "MLSD").unwrap()["value"].is_null(), "vsftpd has no MLSD: {p}");
    assert!(feature(p, "TLS").unwrap()["value"].as_str().unwrap().starts_with("TLSv1_"), "{p}");
    assert_eq!(feature(p, "data connection").unwrap()["value"], "passive (EPSV)", "{p}");
    assert!(p["facts"]["problems"].as_array().unwrap().is_empty(), "{p}");
    assert_eq!(tree(vsftpd.data_dir()), before, "a read-only probe changes nothing");

    // Plain FTP with --write: RNTO replaces; the clock agrees; the scratch folder is gone.
    let flow = flow_file(dir.path(), &vsftpd.endpoint_yaml(FtpTls::None, 4), "{ min_age: 30s }", "overwrite");
    let (code, out, all) = wharf(&state, &["probe", flow.to_str().unwrap(), "--endpoint", "p", "--write", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let v = json(&out, &all);
    let p = report(&v, "p");
    assert_eq!(p["facts"]["protocol"], "FTP (no TLS)");
    let w = &p["write"];
    assert_eq!(w["plain_rename"]["result"], "replaces", "{w}");
    assert!(w["replace_problem"].is_null() && w["no_replace_problem"].is_null(), "{w}");
    assert_eq!(w["mtime_precision"], 1000.0, "MDTM gives seconds: {w}");
    assert_clock_near_zero(w);
    assert!(w["cleanup_problem"].is_null(), "{w}");
    let warnings: Vec<&str> =
        p["findings"].as_array().unwrap().iter().filter(|f| f["severity"] == "warning").map(|f| f["text"].as_str().unwrap()).collect();
    assert!(warnings.iter().any(|t| t.contains("unencrypted")), "{warnings:?}");
    assert_eq!(tree(vsftpd.data_dir()), before, "the scratch folder was removed");
    drop(vsftpd);

    // pure-ftpd: MLSD.
    let Some(pure) = Ftpd::pure_ftpd() else { return };
    std::fs::create_dir_all(pure.data_dir().join("in")).unwrap();
    pure.give_to_user(&pure.data_dir().join("in"));
    let flow = flow_file(dir.path(), &pure.endpoint_yaml(FtpTls::Explicit, 4), "{ stable_for: 30s }", "fail");
    let before = tree(pure.data_dir());
    let (code, out, all) = wharf(&state, &["probe", flow.to_str().unwrap(), "--endpoint", "p", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let v = json(&out, &all);
    let p = report(&v, "p");
    assert!(feature(p, "MLST").unwrap()["value"].as_str().unwrap().contains("modify"), "{p}");
    assert!(feature(p, "MLSD").is_some_and(|f| f["value"].is_string()), "{p}");
    assert!(p["facts"]["traits"]["mtime_source"].as_str().unwrap().starts_with("MLSD"), "{p}");
    assert_eq!(tree(pure.data_dir()), before, "a read-only probe changes nothing");
}

/// A server that allows fewer sessions than `max_connections` (vsftpd's `max_per_ip=2`
/// against the default 4): the probe counts the logins it accepted and says what to set.
#[test]
fn a_session_limit_is_measured_and_the_setting_named() {
    let Some(vsftpd) = Ftpd::vsftpd_with(&["max_per_ip=2"]) else { return };
    let dir = support::tempdir();
    let flow = flow_file(dir.path(), &vsftpd.endpoint_yaml(FtpTls::None, 4), "{ min_age: 30s }", "fail");
    let (code, out, all) = wharf(&dir.path().join("state"), &["probe", flow.to_str().unwrap(), "--endpoint", "p", "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let v = json(&out, &all);
    let p = report(&v, "p");
    assert_eq!(p["facts"]["traits"]["sessions"], serde_json::json!({ "asked": 4, "accepted": 2 }), "{p}");
    let connection: Vec<&str> =
        p["findings"].as_array().unwrap().iter().filter(|f| f["topic"] == "connection").map(|f| f["text"].as_str().unwrap()).collect();
    assert!(connection.iter().any(|t| t.contains("set `max_connections: 2` on endpoint p")), "{connection:?}");
}

/// A server that refuses renames (vsftpd's `cmds_denied=RNFR,RNTO`): the probe says so and
/// names `direct: true` for the sink that writes through a temporary name.
#[test]
fn a_server_refusing_renames_is_told_to_use_direct() {
    let Some(vsftpd) = Ftpd::vsftpd_with(&["cmds_denied=RNFR,RNTO"]) else { return };
    let dir = support::tempdir();
    let flow = flow_file(dir.path(), &vsftpd.endpoint_yaml(FtpTls::None, 4), "{ min_age: 30s }", "fail");
    let (_, out, all) = wharf(&dir.path().join("state"), &["probe", flow.to_str().unwrap(), "--endpoint", "p", "--write", "--json"]);
    let v = json(&out, &all);
    let p = report(&v, "p");
    assert!(p["write"]["rename_problem"].is_string(), "{p}");
    let rename: Vec<&str> =
        p["findings"].as_array().unwrap().iter().filter(|f| f["topic"] == "rename").map(|f| f["text"].as_str().unwrap()).collect();
    assert!(
        rename.iter().any(|t| t.contains("refuses to rename a file") && t.contains("sink 1 (p)") && t.contains("`direct: true`")),
        "{rename:?}"
    );
    // With `direct: true` there is nothing to say about it.
    std::fs::write(&flow, std::fs::read_to_string(&flow).unwrap().replace("if_exists: fail", "if_exists: fail, direct: true")).unwrap();
    let (_, out, all) = wharf(&dir.path().join("state"), &["probe", flow.to_str().unwrap(), "--endpoint", "p", "--write", "--json"]);
    let v = json(&out, &all);
    let texts = report(&v, "p")["findings"].to_string();
    assert!(!texts.contains("refuses to rename a file"), "{texts}");
}

#[test]
fn probe_and_plan_against_the_sandbox_over_sftp_and_ftp() {
    let dir = support::tempdir();
    let served = dir.path().join("served");
    std::fs::create_dir_all(served.join("in")).unwrap();
    std::fs::write(served.join("in/a.csv"), "1\n").unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut opts = wharf::sandbox::SandboxOptions::new(&served, dir.path().join("host_key"));
    opts.ftp_port = Some(0);
    let password = opts.password.expose().to_string();
    let sandbox = rt.block_on(wharf::sandbox::Sandbox::start(opts)).unwrap();
    let kh = dir.path().join("known_hosts");
    std::fs::write(&kh, sandbox.known_hosts_line()).unwrap();
    let sftp = format!(
        "    type: sftp\n    host: 127.0.0.1\n    port: {}\n    user: sandbox\n    auth: {{ password: {password:?} }}\n    host_key: {{ known_hosts: {kh:?} }}\n    root: /\n",
        sandbox.sftp_addr().port()
    );
    let ftp = format!(
        "    type: ftp\n    host: 127.0.0.1\n    port: {}\n    user: sandbox\n    password: {password:?}\n    tls: none\n    root: /\n",
        sandbox.ftp_addr().unwrap().port()
    );
    let state = dir.path().join("state");
    let before = tree(&served);
    for (server, protocol, plain_rename) in [(&sftp, "SFTP v3", "refuses"), (&ftp, "FTP (no TLS)", "replaces")] {
        let flow = flow_file(dir.path(), server, "{ min_age: 1s }", "overwrite");
        let flow = flow.to_str().unwrap();
        let (code, out, all) = wharf(&state, &["probe", flow, "--endpoint", "p", "--write", "--json"]);
        assert_eq!(code, Some(0), "{all}");
        let v = json(&out, &all);
        let p = report(&v, "p");
        assert_eq!(p["facts"]["protocol"], protocol, "{p}");
        if protocol.starts_with("FTP") {
            assert!(feature(p, "MLSD").is_some_and(|f| f["value"].is_string()), "{p}");
        }
        let w = &p["write"];
        assert_eq!(w["plain_rename"]["result"], plain_rename, "{w}");
        assert!(w["replace_problem"].is_null() && w["no_replace_problem"].is_null() && w["cleanup_problem"].is_null(), "{w}");
        assert_clock_near_zero(w);
        assert_eq!(tree(&served), before, "the scratch folder was removed");

        // plan: the file would be delivered; nothing is written.
        let (code, out, all) = wharf(&state, &["plan", flow]);
        assert_eq!(code, Some(0), "{all}");
        assert!(out.contains("/in/a.csv"), "{out}");
        assert!(out.contains(&format!("probe of p ({}", if protocol == "SFTP v3" { "sftp" } else { "ftp" })), "{out}");
    }
    rt.block_on(sandbox.stop());
}

#[test]
fn plan_shows_what_the_stored_probe_found_and_writes_nothing() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    std::fs::create_dir_all(sshd.data_dir().join("in")).unwrap();
    sshd.give_to_user(&sshd.data_dir().join("in"));
    let flow = flow_file(dir.path(), &sshd.endpoint_yaml(4), "{ min_age: 30s }", "fail");
    let flow = flow.to_str().unwrap();
    let state = dir.path().join("state");

    // Never probed: one hint line.
    let (code, out, all) = wharf(&state, &["plan", flow]);
    assert_eq!(code, Some(0), "{all}");
    assert!(out.contains("hint: the source endpoint p was never probed: `wharf probe"), "{out}");
    assert!(!state.exists(), "plan wrote nothing");

    let (code, _, all) = wharf(&state, &["probe", flow, "--endpoint", "p", "--write"]);
    assert_eq!(code, Some(0), "{all}");
    // Pretend the server's clock is 42 s behind: plan judges the stored probe against min_age.
    let stored = state.join("probes/partner.p.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&stored).unwrap()).unwrap();
    v["write"]["clock"]["offset_ms"] = (-18_000).into();
    v["write"]["clock"]["uncertainty_ms"] = 1000.into();
    std::fs::write(&stored, serde_json::to_string(&v).unwrap()).unwrap();
    let before = tree(&state);

    let (code, out, all) = wharf(&state, &["plan", flow]);
    assert_eq!(code, Some(0), "{all}");
    assert!(out.contains("probe of p (sftp "), "{out}");
    assert!(out.contains("just now"), "{out}");
    assert!(
        out.contains("warning  server clock is 18 s behind ours (±1 s): `min_age: 30s` would let a file through 12 s after its last write"),
        "{out}"
    );
    assert!(!out.contains("hint:"), "{out}");
    let (code, out, all) = wharf(&state, &["plan", flow, "--json"]);
    assert_eq!(code, Some(0), "{all}");
    let plan = json(&out, &all);
    let probes = plan["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 1, "only p was probed: {plan}");
    assert_eq!(probes[0]["endpoint"], "p");
    assert_eq!(probes[0]["findings"][0]["topic"], "clock", "{plan}");
    assert_eq!(tree(&state), before, "plan wrote nothing");
}

#[test]
fn bad_arguments_and_unreachable_servers_have_their_exit_codes() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let port = support::free_port();
    let server = format!(
        "    type: sftp\n    host: 127.0.0.1\n    port: {port}\n    user: x\n    auth: {{ password: y }}\n    host_key: {{ fingerprint: \"SHA256:{}\" }}\n    connect_timeout: 2s\n",
        "A".repeat(43)
    );
    let flow = flow_file(dir.path(), &server, "{}", "fail");
    let flow = flow.to_str().unwrap();
    let (code, _, all) = wharf(&state, &["probe", flow, "--endpoint", "nope"]);
    assert_eq!(code, Some(2), "{all}");
    assert!(all.contains("flow partner: no endpoint named \"nope\" (it has: l, p)"), "{all}");
    let (code, _, all) = wharf(&state, &["probe", flow, "--endpoint", "p"]);
    assert_eq!(code, Some(3), "{all}");
    assert!(all.contains("flow partner: endpoint p: sftp x@127.0.0.1:"), "{all}");
    // The local endpoint of the same flow still probes (and checks writing) fine.
    std::fs::create_dir_all(dir.path().join("local")).unwrap();
    let (code, out, all) = wharf(&state, &["probe", flow, "--endpoint", "l", "--write"]);
    assert_eq!(code, Some(0), "{all}");
    assert!(out.contains("server's rename onto an existing file") && out.contains("replaces it"), "{out}");
    assert_eq!(std::fs::read_dir(dir.path().join("local")).unwrap().count(), 0, "scratch folder removed");
}

/// Ctrl-C while `--write` checks run on a partner's server: the scratch folder is removed
/// before wharf exits (130), not left in the partner's folder. Before, the process stopped at
/// once and `.wharf-probe-…` stayed there with the probe's files in it.
#[test]
fn ctrl_c_during_the_write_checks_still_removes_the_scratch_folder() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let inbox = sshd.data_dir().join("in");
    std::fs::create_dir_all(&inbox).unwrap();
    sshd.give_to_user(&inbox);
    let flow = flow_file(dir.path(), &sshd.endpoint_yaml(4), "{}", "fail");
    let before = tree(sshd.data_dir());
    let child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(["probe", flow.to_str().unwrap(), "--endpoint", "p", "--write"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the scratch folder is there (the clock samples take over a second), then Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let scratch_made =
        || std::fs::read_dir(sshd.data_dir()).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with(".wharf-probe-"));
    while !scratch_made() {
        assert!(std::time::Instant::now() < deadline, "no scratch folder was made");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: a plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(130), "{all}");
    assert!(all.contains("interrupted: removing the scratch folder first"), "{all}");
    assert!(all.contains("write checks failed: interrupted (Ctrl-C): the checks were not finished"), "{all}");
    assert_eq!(tree(sshd.data_dir()), before, "the scratch folder was removed: {all}");
}
