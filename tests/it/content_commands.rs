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
