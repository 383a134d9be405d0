//! `command` content steps end to end through the `wharf` binary against a real OpenSSH
//! sshd: a partner's gzipped CSV pulled, gunzipped, checked against a schema and delivered
//! under its plain name; a file gzipped before it is pushed; a partner's PGP file decrypted
//! with a throw-away key; a file a program refuses quarantined with the program's words; a
//! program that cannot be started stopping the run with the file kept at the source.

use crate::support;
use support::text;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::sshd::Sshd;
use support::{TempDir, tempdir};

struct World {
    sshd: Sshd,
    dir: TempDir,
}

impl World {
    fn new() -> Option<World> {
        let w = World { sshd: Sshd::start()?, dir: tempdir() };
        for d in ["incoming", "inbox"] {
            fs::create_dir_all(w.remote(d)).unwrap();
            w.sshd.give_to_user(&w.remote(d));
        }
        fs::create_dir_all(w.local("outbox")).unwrap();
        Some(w)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.sshd.data_dir().join(rel)
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A flow `name` from `source` to `sink` (each `partner:/…` or `here:/…`) with `steps`.
    fn flow(&self, name: &str, (source, sink): (&str, &str), steps: &str) -> PathBuf {
        let (src_ep, src_path) = source.split_once(':').unwrap();
        let (sink_ep, sink_path) = sink.split_once(':').unwrap();
        let yaml = format!(
            "name: {name}\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\n\
             source: {{ endpoint: {src_ep}, path: {src_path} }}\nsinks:\n  - {{ endpoint: {sink_ep}, path: {sink_path} }}\n\
             quarantine: {{ endpoint: here, path: /quarantine }}\nsteps:\n{steps}\n",
            ep = self.sshd.endpoint_yaml(4),
            root = self.dir.path().display().to_string(),
        );
        let p = self.local(&format!("{name}.yaml"));
        fs::write(&p, yaml).unwrap();
        p
    }

    fn run(&self, flow: &Path, env: &[(&str, &Path)]) -> (Output, serde_json::Value) {
        let mut c = support::wharf(&self.local("state"));
        c.arg("run").arg("--json").arg(flow);
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
        (out, json)
    }
}

/// `program args…` with `input` on stdin: its stdout.
fn pipe(program: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{program} {args:?}");
    out.stdout
}

const CSV: &[u8] = b"id,name\n1,Anna\n2,Bob\n";

#[test]
fn a_gzipped_csv_is_pulled_gunzipped_checked_and_delivered_under_its_plain_name() {
    let Some(w) = World::new() else { return };
    fs::write(w.local("orders.schema.json"), r#"{"type":"object","required":["id","name"],"properties":{"id":{"type":"integer"}}}"#)
        .unwrap();
    fs::write(w.remote("incoming/x.csv.gz"), pipe("gzip", &["-c"], CSV)).unwrap();
    fs::write(w.remote("incoming/bad.csv.gz"), "not gzip at all\n").unwrap();
    w.sshd.give_to_user(&w.remote("incoming"));
    let flow = w.flow(
        "orders",
        ("partner:/incoming", "here:/out"),
        "  - command: { run: [gunzip, -c], name: '{{stem}}' }\n  - parse: { format: csv }\n  - validate: { schema: orders.schema.json }",
    );
    let (out, r) = w.run(&flow, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(1)), "{r:#}");
    assert_eq!(fs::read(w.local("out/x.csv")).unwrap(), CSV, "delivered gunzipped, as x.csv");
    assert!(!w.local("out/x.csv.gz").exists());
    let report = fs::read_to_string(w.local("quarantine/bad.csv.gz.report.txt")).unwrap();
    assert!(report.contains("the `command` step steps[0] (`gunzip`) exited with status 1; its stderr ends: gzip: "), "{report}");
    assert_eq!(fs::read(w.local("quarantine/bad.csv.gz")).unwrap(), b"not gzip at all\n", "the file as received is kept");
}

#[test]
fn a_file_is_gzipped_before_it_is_pushed() {
    let Some(w) = World::new() else { return };
    fs::write(w.local("outbox/prices.csv"), CSV).unwrap();
    let flow = w.flow(
        "push",
        ("here:/outbox", "partner:/inbox"),
        "  - parse: { format: csv }\n  - write: { format: csv, delimiter: ';' }\n  - command: { run: [gzip, -c, -n], name: '{{name}}.gz' }",
    );
    let (out, r) = w.run(&flow, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(r["counts"]["delivered"].as_u64(), Some(1), "{r:#}");
    let sent = fs::read(w.remote("inbox/prices.csv.gz")).unwrap();
    assert_eq!(pipe("gunzip", &["-c"], &sent), b"id;name\n1;Anna\n2;Bob\n");
}

#[test]
fn a_partner_s_pgp_file_is_decrypted_with_a_throw_away_key() {
    if Command::new("gpg").arg("--version").output().is_err() {
        assert!(!support::servers_required(), "WHARF_REQUIRE_SERVERS=1 but gpg is missing (apt-get install gnupg)");
        eprintln!("note: gpg is not installed; skipping the PGP test");
        return;
    }
    let Some(w) = World::new() else { return };
    let home = w.local("gnupg");
    fs::create_dir_all(&home).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg").arg("--homedir").arg(&home).arg("--batch").args(args).output().unwrap();
        assert!(out.status.success(), "gpg {args:?}: {}", text(&out));
    };
    gpg(&["--passphrase", "", "--quick-gen-key", "wharf test <partner@example.com>", "default", "default", "never"]);
    fs::write(w.local("orders.csv"), CSV).unwrap();
    let (plain, sealed) = (w.local("orders.csv"), w.remote("incoming/orders.csv.gpg"));
    gpg(&[
        "--trust-model",
        "always",
        "--recipient",
        "partner@example.com",
        "--output",
        sealed.to_str().unwrap(),
        "--encrypt",
        plain.to_str().unwrap(),
    ]);
    fs::write(w.remote("incoming/forged.csv.gpg"), "-----BEGIN PGP MESSAGE-----\nnonsense\n-----END PGP MESSAGE-----\n").unwrap();
    w.sshd.give_to_user(&w.remote("incoming"));
    let flow = w.flow(
        "pgp",
        ("partner:/incoming", "here:/out"),
        "  - command: { run: [gpg, --batch, --decrypt], pass_env: [GNUPGHOME], name: '{{stem}}' }\n  - parse: { format: csv }",
    );
    let (out, r) = w.run(&flow, &[("GNUPGHOME", &home)]);
    let _ = Command::new("gpgconf").arg("--homedir").arg(&home).args(["--kill", "gpg-agent"]).output();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(1)), "{r:#}");
    assert_eq!(fs::read(w.local("out/orders.csv")).unwrap(), CSV);
    let report = fs::read_to_string(w.local("quarantine/forged.csv.gpg.report.txt")).unwrap();
    assert!(report.contains("the `command` step steps[0] (`gpg`) exited with status 2; its stderr ends: "), "{report}");
    assert!(report.contains("gpg: no valid OpenPGP data found."), "the end of stderr: {report}");
}

#[test]
fn a_program_that_cannot_start_stops_the_run_and_the_file_stays() {
    let Some(w) = World::new() else { return };
    fs::write(w.remote("incoming/x.csv.gz"), pipe("gzip", &["-c"], CSV)).unwrap();
    w.sshd.give_to_user(&w.remote("incoming"));
    let flow = w.flow("missing", ("partner:/incoming", "here:/out"), "  - command: { run: [./unzip-it.sh] }");
    let validate = support::wharf(&w.local("state")).arg("validate").arg(&flow).output().unwrap();
    assert!(text(&validate).contains("unzip-it.sh does not exist"), "{}", text(&validate));
    let (out, r) = w.run(&flow, &[]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let all = r.to_string();
    assert!(all.contains("the `command` step steps[0]: program ") && all.contains("unzip-it.sh` could not be started"), "{r:#}");
    assert!(w.remote("incoming/x.csv.gz").exists(), "kept at the source for the next run");
    assert!(!w.local("quarantine").exists(), "not quarantined");
}

/// A decompression bomb (20 MiB of zeros, gzipped to some 20 KiB) gunzipped under
/// `max_output: 1MiB`: gunzip is stopped at the limit, the file quarantined as received with
/// the reason naming the step, the program and the limit, nothing of it delivered and nothing
/// left in the staging folder; its source deleted as `after.failure` says; the other file of
/// the run delivered.
#[test]
fn a_decompression_bomb_is_stopped_at_max_output_and_quarantined() {
    let Some(w) = World::new() else { return };
    let bomb = pipe("gzip", &["-c"], &vec![0u8; 20 << 20]);
    assert!(bomb.len() < 100 << 10, "{} bytes", bomb.len());
    fs::write(w.remote("incoming/bomb.csv.gz"), &bomb).unwrap();
    fs::write(w.remote("incoming/x.csv.gz"), pipe("gzip", &["-c"], CSV)).unwrap();
    w.sshd.give_to_user(&w.remote("incoming"));
    let flow = w.flow(
        "bombs",
        ("partner:/incoming", "here:/out"),
        "  - command: { run: [gunzip, -c], name: '{{stem}}', max_output: 1MiB }\n  - parse: { format: csv }",
    );
    fs::write(&flow, fs::read_to_string(&flow).unwrap() + "after: { failure: delete }\n").unwrap();
    let started = std::time::Instant::now();
    let (out, r) = w.run(&flow, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(1)), "{r:#}");
    assert_eq!(fs::read(w.local("out/x.csv")).unwrap(), CSV);
    assert_eq!(fs::read_dir(w.local("out")).unwrap().count(), 1, "nothing of the bomb delivered");
    let report = fs::read_to_string(w.local("quarantine/bomb.csv.gz.report.txt")).unwrap();
    assert!(report.contains("the `command` step steps[0] (`gunzip`) wrote more than its max_output of 1MiB and was killed"), "{report}");
    assert_eq!(fs::read(w.local("quarantine/bomb.csv.gz")).unwrap(), bomb, "quarantined as received");
    assert!(!w.remote("incoming/bomb.csv.gz").exists(), "deleted at the source (after.failure: delete)");
    assert_eq!(files_under(&w.local("state/staging")), Vec::<PathBuf>::new(), "nothing left in the staging folder");
}

/// The files under `dir` and its folders (none when it is missing).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries.map(|e| e.unwrap().path()).flat_map(|p| if p.is_dir() { files_under(&p) } else { vec![p] }).collect()
}

/// `wharf run` killed outright (`kill -9`) while a `command` step's program runs, after an
/// earlier step's output (`.bytes`) and part of this one's (`.piped`) were written: the
/// program dies with wharf (the parent-death signal), and the next run takes the file
/// through its steps again, delivers it once and leaves nothing in the staging folder.
#[test]
fn a_run_killed_during_a_command_step_is_redone_once_by_the_next() {
    let Some(w) = World::new() else { return };
    fs::write(w.remote("incoming/x.csv.gz"), pipe("gzip", &["-c"], CSV)).unwrap();
    w.sshd.give_to_user(&w.remote("incoming"));
    let pids = w.local("pids");
    let steps = |second: &str| {
        format!(
            "  - command: {{ run: [gunzip, -c], name: '{{{{stem}}}}' }}\n  - command: {{ run: {second} }}\n  - parse: {{ format: csv }}"
        )
    };
    let flow = w.flow(
        "killed",
        ("partner:/incoming", "here:/out"),
        &steps(&format!("[sh, -c, 'cat; echo $$ >> {}; exec sleep 600']", pids.display())),
    );
    let mut run = support::wharf(&w.local("state")).arg("run").arg(&flow).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let pid = || fs::read_to_string(&pids).unwrap_or_default().trim().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pid().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the step's program did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let staged: Vec<String> =
        files_under(&w.local("state/staging")).iter().filter_map(|p| p.extension()).map(|e| e.to_string_lossy().into_owned()).collect();
    run.kill().unwrap();
    let _ = run.wait();
    let stat = format!("/proc/{}/stat", pid());
    let gone = (0..250).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "))
    });
    assert!(gone, "the step's program {} outlived wharf", pid());
    assert!(staged.iter().any(|e| e == "bytes") && staged.iter().any(|e| e == "piped"), "killed mid-steps: {staged:?}");

    fs::write(
        &flow,
        fs::read_to_string(&flow)
            .unwrap()
            .replace(&steps(&format!("[sh, -c, 'cat; echo $$ >> {}; exec sleep 600']", pids.display())), &steps("[cat]")),
    )
    .unwrap();
    let (out, r) = w.run(&flow, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!((r["counts"]["delivered"].as_u64(), r["quarantined"].as_u64()), (Some(1), Some(0)), "{r:#}");
    assert_eq!(fs::read(w.local("out/x.csv")).unwrap(), CSV);
    assert_eq!(fs::read_dir(w.local("out")).unwrap().count(), 1, "delivered once");
    assert_eq!(files_under(&w.local("state/staging")), Vec::<PathBuf>::new(), "nothing left in the staging folder");
    let (_, again) = w.run(&flow, &[]);
    assert_eq!(again["counts"]["delivered"].as_u64(), Some(0), "not delivered a second time: {again:#}");
}

/// A round trip whose response steps gunzip the partner's `.ack.gz`: a gzipped response is
/// delivered unpacked under its plain name; one that is not gzip is rejected (quarantined)
/// with gunzip's words, the step named `response.steps[0]`. Local folders only.
#[test]
fn a_response_s_command_step_gunzips_the_acknowledgement() {
    let dir = tempdir();
    let d = dir.path();
    for sub in ["src/out", "partner/in", "partner/acks", "home"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::write(d.join("src/out/o1.csv"), "a\n").unwrap();
    fs::write(d.join("src/out/o2.csv"), "b\n").unwrap();
    let flow = d.join("rt.yaml");
    fs::write(
        &flow,
        format!(
            "name: rt\nendpoints:\n  here: {{ type: local, root: {r}/src }}\n  partner: {{ type: local, root: {r}/partner }}\n  \
             home: {{ type: local, root: {r}/home }}\nsource: {{ endpoint: here, path: /out }}\nsinks: [ {{ endpoint: partner, path: /in }} ]\n\
             response:\n  path: /acks\n  name: '{{{{stem}}}}.ack.gz'\n  deadline: 1h\n  steps:\n    - command: {{ run: [gunzip, -c], name: '{{{{stem}}}}' }}\n  \
             quarantine: {{ endpoint: home, path: /q }}\n  sinks: [ {{ endpoint: home, path: /acks }} ]\n",
            r = d.display()
        ),
    )
    .unwrap();
    let state = d.join("state");
    let validate = support::wharf(&state).arg("validate").arg(&flow).output().unwrap();
    assert_eq!(validate.status.code(), Some(0), "{}", text(&validate));
    let run = || {
        let (code, r) = support::json_of(support::wharf(&state).arg("run").arg("--json").arg(&flow));
        assert_eq!(code, 0, "{r:#}");
        r
    };
    run();
    fs::write(d.join("partner/acks/o1.ack.gz"), pipe("gzip", &["-c"], b"ACK o1\n")).unwrap();
    fs::write(d.join("partner/acks/o2.ack.gz"), "not gzip\n").unwrap();
    let r = run();
    assert_eq!(fs::read_to_string(d.join("home/acks/o1.ack")).unwrap(), "ACK o1\n", "{r:#}");
    assert!(!d.join("home/acks/o2.ack").exists() && !d.join("home/acks/o2.ack.gz").exists(), "{r:#}");
    let report = fs::read_to_string(d.join("home/q/o2.ack.gz.report.txt")).unwrap();
    // Named in its list: a round trip's response steps (was `steps[0]`, the request's list).
    assert!(report.contains("the `command` step response.steps[0] (`gunzip`) exited with status 1"), "{report}");
    let awaits = support::wharf(&state).args(["awaits", "rt"]).output().unwrap();
    assert!(text(&awaits).contains("rejected") && text(&awaits).contains("answered"), "{}", text(&awaits));
}

/// `wharf run` stopped by SIGTERM while a `command` step's program runs: it exits at once
/// (128 + 15), cleanly (before: a panic of the step's wait, its timers gone with the run's
/// runtime), with the program and what it started killed, the file left at the source.
#[test]
fn sigterm_during_a_command_step_stops_wharf_run_cleanly() {
    let dir = tempdir();
    let d = dir.path();
    for sub in ["src/in", "dst"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::write(d.join("src/in/a.csv"), "id\n").unwrap();
    let pids = d.join("pids");
    let flow = d.join("slow.yaml");
    fs::write(
        &flow,
        format!(
            "name: slow\nendpoints:\n  a: {{ type: local, root: {r}/src }}\n  b: {{ type: local, root: {r}/dst }}\n\
             source: {{ endpoint: a, path: /in }}\nsinks: [ {{ endpoint: b, path: / }} ]\nquarantine: {{ endpoint: b, path: /q }}\n\
             steps:\n  - command: {{ run: [sh, -c, 'sleep 600 & echo $! >> {p}; echo $$ >> {p}; wait'], timeout: 1h }}\n",
            r = d.display(),
            p = pids.display()
        ),
    )
    .unwrap();
    let child = support::wharf(&d.join("state")).arg("run").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let read_pids = || fs::read_to_string(&pids).unwrap_or_default().lines().map(str::to_string).collect::<Vec<_>>();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read_pids().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "the step's program did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = std::time::Instant::now();
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    assert!(!text(&out).contains("panicked"), "{}", text(&out));
    for pid in read_pids() {
        let stat = format!("/proc/{pid}/stat");
        let gone = (0..250).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(20));
            fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "))
        });
        assert!(gone, "the step's process {pid} still runs");
    }
    assert!(d.join("src/in/a.csv").exists() && !d.join("dst/q").exists());
}

/// A step's program named from the flow file's folder (`./up.sh`), the flow given by a
/// relative path (`wharf run flows/t.yaml`): the program runs in that folder, so its path must
/// not be relative to it again (before: `flows/up.sh` looked for in `flows/`, "could not be
/// started", although `wharf validate` had found it).
#[test]
fn a_step_program_beside_a_flow_given_by_a_relative_path_runs() {
    let dir = tempdir();
    let at = |rel: &str| dir.path().join(rel);
    for d in ["flows", "in", "out"] {
        fs::create_dir_all(at(d)).unwrap();
    }
    fs::write(at("flows/up.sh"), "#!/bin/sh\ntr a-z A-Z\n").unwrap();
    fs::set_permissions(at("flows/up.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    fs::write(at("in/x.txt"), "abc\n").unwrap();
    fs::write(
        at("flows/t.yaml"),
        "name: t\nendpoints:\n  a: { type: local, root: ../in }\n  b: { type: local, root: ../out }\n\
         source: { endpoint: a, path: /, include: ['*.txt'] }\nsinks: [ { endpoint: b } ]\n\
         quarantine: { endpoint: b, path: /q }\nsteps:\n  - command: { run: [./up.sh] }\n",
    )
    .unwrap();
    let out = support::wharf(&at("state")).current_dir(dir.path()).args(["run", "flows/t.yaml"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read_to_string(at("out/x.txt")).unwrap(), "ABC\n");
}
