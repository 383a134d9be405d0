//! Every example flow in flows/ (and the serve.yaml in docs/examples/), and every whole flow
//! shown in the docs, validates without a warning; the examples also run: the local one on temp folders, the
//! SFTP demo against a real sshd, the FTPS example and the rendered price list against a real
//! vsftpd (with ports, certificates and folders pointed at the test server).

use crate::support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::ftpd::Ftpd;
use support::sshd::Sshd;

fn wharf(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.arg("--state-dir").arg(state).env("RUST_LOG", "wharf=warn");
    c
}

fn repo(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Every example — the flows in flows/ with their test files, and the daemon settings in
/// docs/examples/ — passes `wharf validate` without a problem or a warning: a newcomer
/// copying one starts from a file that is right as it stands.
#[test]
fn every_example_validates_without_a_warning() {
    let dir = support::tempdir();
    let mut examples: Vec<std::path::PathBuf> = Vec::new();
    for folder in ["flows", "docs/examples"] {
        for e in fs::read_dir(repo(folder)).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                examples.push(e.path());
            }
        }
    }
    examples.sort();
    assert!(examples.len() >= 10, "{examples:?}");
    let out = wharf(dir.path())
        .arg("validate")
        .args(&examples)
        .env("WHARF_DEMO_PASSWORD", "x")
        .env("WHARF_FTP_PASSWORD", "x")
        .env("WHARF_ALERT_HOOK", "https://hooks.example.com/x")
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    // The SFTP examples trust the key tests/demo.sh records in its folder: on a machine where
    // the demo has not run, that file's absence is the one warning they get (and should).
    let demo_keys = "/tmp/wharf-demo/known_hosts";
    let demo_ran = Path::new(demo_keys).exists();
    let warnings: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("warning: "))
        .filter(|l| demo_ran || !l.contains(&format!("known_hosts {demo_keys} does not exist")))
        .collect();
    let last = text.lines().last().unwrap_or_default();
    assert!(last.contains("checked, 0 problem(s)") && warnings.is_empty(), "{text}");
}

/// Every whole flow shown in the docs — a ```yaml block of README.md or docs/*.md with `name:`
/// and `endpoints:` at its top level — passes `wharf validate` without a problem or a warning,
/// checked as a file in flows/ (so `../templates/…` is the repository's): a newcomer copying
/// one starts from a flow that loads. The files it names (keys, known_hosts, a CA file, an
/// export program) are made as dummies and the `${env:…}` it reads are set, as a reader
/// would have them. Partial snippets are skipped.
#[test]
fn every_whole_flow_in_the_docs_validates() {
    let dir = support::tempdir();
    let flows = dir.path().join("flows");
    fs::create_dir_all(&flows).unwrap();
    for shared in ["templates", "schemas"] {
        std::os::unix::fs::symlink(repo(shared), dir.path().join(shared)).unwrap();
    }
    let mut docs = vec![repo("README.md")];
    docs.extend(fs::read_dir(repo("docs")).unwrap().flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "md")));
    docs.sort();
    let (mut files, mut env) = (Vec::new(), std::collections::BTreeSet::new());
    for doc in &docs {
        let stem = doc.file_stem().unwrap().to_string_lossy().to_string();
        for (line, block) in whole_flows(&fs::read_to_string(doc).unwrap()) {
            let yaml: serde_yaml::Value = serde_yaml::from_str(&block).unwrap_or_else(|e| panic!("{}:{line}: {e}", doc.display()));
            let mut named = Vec::new();
            files_named(&yaml, &mut named);
            for (path, program) in named {
                let file = flows.join(&path);
                fs::create_dir_all(file.parent().unwrap()).unwrap();
                fs::write(&file, if program { "#!/bin/sh\n" } else { "dummy\n" }).unwrap();
                if program {
                    use std::os::unix::fs::PermissionsExt;
                    fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
                }
            }
            env.extend(block.split("${env:").skip(1).filter_map(|s| s.split_once('}')).map(|(name, _)| name.to_string()));
            let file = flows.join(format!("{stem}-line{line}.yaml"));
            fs::write(&file, &block).unwrap();
            files.push(file);
        }
    }
    // README's, getting-started's and pushing's at least.
    assert!(files.len() >= 3, "{files:?}");
    let mut validate = wharf(dir.path());
    validate.current_dir(dir.path()).arg("validate").args(&files);
    for name in &env {
        validate.env(name, "https://hooks.example.com/x");
    }
    let out = validate.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success() && !text.contains("warning"),
        "a flow in the docs does not validate (FILE-lineN: the doc and the line its block starts at):\n{text}"
    );
    assert!(text.contains(&format!("{} flow(s) checked, 0 problem(s)", files.len())), "{text}");
}

/// The ```yaml blocks of a Markdown text that are whole flows (`name:` and `endpoints:` at the
/// block's top level), with the line each block's first line is on.
fn whole_flows(markdown: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```yaml" {
            let start = i + 1;
            let end = (start..lines.len()).find(|&j| lines[j].trim() == "```").unwrap_or(lines.len());
            let block = &lines[start..end];
            let top = |key: &str| block.iter().any(|l| l.starts_with(&format!("{key}:")));
            if top("name") && top("endpoints") {
                out.push((start + 1, block.join("\n") + "\n"));
            }
            i = end;
        }
        i += 1;
    }
    out
}

/// The relative paths a flow names for files that must be on this machine (`private_key`,
/// `known_hosts`, `ca_file`, and a `command`'s program given as a path), each with whether it
/// is a program to run.
fn files_named(v: &serde_yaml::Value, out: &mut Vec<(String, bool)>) {
    let relative = |s: &str| !s.starts_with('/') && !s.starts_with('~') && !s.contains("${");
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    (Some("private_key" | "known_hosts" | "ca_file"), serde_yaml::Value::String(s)) if relative(s) => {
                        out.push((s.clone(), false))
                    }
                    (Some("run"), serde_yaml::Value::Sequence(args)) => {
                        if let Some(program) = args.first().and_then(|p| p.as_str()).filter(|p| p.contains('/') && relative(p)) {
                            out.push((program.to_string(), true));
                        }
                    }
                    _ => files_named(v, out),
                }
            }
        }
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|v| files_named(v, out)),
        _ => {}
    }
}

#[test]
fn example_local_flow_runs() {
    let dir = support::tempdir();
    let flows = dir.path().join("flows");
    fs::create_dir_all(&flows).unwrap();
    fs::copy(repo("flows/example-local.yaml"), flows.join("example-local.yaml")).unwrap();
    let outbox = dir.path().join("demo-work/outbox");
    fs::create_dir_all(outbox.join("eu")).unwrap();
    fs::write(outbox.join("a.csv"), "x\n").unwrap();
    fs::write(outbox.join("eu/b.xml"), "<b/>").unwrap();
    fs::write(outbox.join("ignored.txt"), "no").unwrap();
    let state = dir.path().join("state");
    let out = wharf(&state).arg("run").arg(flows.join("example-local.yaml")).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 delivered"), "{text}");
    let year = text.lines().find_map(|l| l.split("archive:/").nth(1)).map(|s| s[..4].to_string()).expect("target in summary");
    assert_eq!(fs::read_to_string(dir.path().join(format!("demo-work/archive/{year}/a.csv"))).unwrap(), "x\n");
    assert_eq!(fs::read_to_string(dir.path().join(format!("demo-work/archive/{year}/eu/b.xml"))).unwrap(), "<b/>");
    assert!(!outbox.join("a.csv").exists() && outbox.join("ignored.txt").exists());
}

#[test]
fn demo_sftp_flow_runs_against_a_real_sshd() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let yaml = fs::read_to_string(repo("flows/demo-pull.yaml")).unwrap();
    let sink = dir.path().join("erp");
    let yaml = yaml
        .replace("port: 2299", &format!("port: {}", sshd.port))
        .replace("user: wharfdemo", &format!("user: {}", sshd.user()))
        .replace("/tmp/wharf-demo/known_hosts", &sshd.known_hosts().display().to_string())
        .replace("/tmp/wharf-demo/partner", &sshd.data_dir().display().to_string())
        .replace("/tmp/wharf-demo/erp-inbox", &sink.display().to_string());
    let flow = dir.path().join("demo-pull.yaml");
    fs::write(&flow, yaml).unwrap();
    let out_dir = sshd.data_dir().join("outgoing");
    fs::create_dir_all(&out_dir).unwrap();
    for f in ["orders_0001.csv", "orders_0002.csv"] {
        fs::copy(repo(&format!("flows/demo-data/{f}")), out_dir.join(f)).unwrap();
    }
    // Old enough for `min_age: 1s`.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    sshd.give_to_user(&out_dir);
    let state = dir.path().join("state");
    let run = || wharf(&state).arg("run").arg(&flow).env("WHARF_DEMO_PASSWORD", sshd.password()).output().unwrap();
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(out.status.success() && text.contains("2 delivered"), "{text}");
    assert!(out_dir.join("processed/orders_0001.csv").exists());
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("0 delivered"), "{text}");
}

#[test]
fn order_ack_round_trip_runs_against_a_real_sshd() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let work = dir.path().join("demo-work");
    let yaml = fs::read_to_string(repo("flows/order-ack-sftp.yaml"))
        .unwrap()
        .replace("port: 2299", &format!("port: {}", sshd.port))
        .replace("user: wharfdemo", &format!("user: {}", sshd.user()))
        .replace("/tmp/wharf-demo/known_hosts", &sshd.known_hosts().display().to_string())
        .replace("/tmp/wharf-demo/partner", &sshd.data_dir().display().to_string());
    let flows = dir.path().join("flows");
    fs::create_dir_all(&flows).unwrap();
    let flow = flows.join("order-ack-sftp.yaml");
    fs::write(&flow, yaml).unwrap();
    fs::create_dir_all(work.join("orders-outbox")).unwrap();
    for f in ["orders_0001.csv", "orders_0002.csv"] {
        fs::copy(repo(&format!("flows/demo-data/{f}")), work.join("orders-outbox").join(f)).unwrap();
    }
    let state = dir.path().join("state");
    let run = || {
        let out = wharf(&state).arg("run").arg(&flow).env("WHARF_DEMO_PASSWORD", sshd.password()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref();
        assert!(out.status.success(), "{text}");
        text
    };
    let text = run();
    assert!(text.contains("2 delivered") && text.matches("waiting; due by").count() == 2, "{text}");
    assert!(sshd.data_dir().join("inbox/orders_0002.csv").exists() && work.join("orders-outbox/sent/orders_0001.csv").exists());
    // The partner acknowledges one order.
    let outbox = sshd.data_dir().join("outbox");
    fs::create_dir_all(&outbox).unwrap();
    fs::write(outbox.join("orders_0001.ack"), "OK 0001\n").unwrap();
    sshd.give_to_user(sshd.data_dir());
    let text = run();
    assert!(text.contains("0 delivered") && text.contains("answered in run 2") && text.contains("waiting; due by"), "{text}");
    let month = fs::read_dir(work.join("acks")).unwrap().flatten().next().expect("a month folder").path();
    assert_eq!(fs::read_to_string(month.join("orders_0001.ack")).unwrap(), "OK 0001\n");
    assert!(!outbox.join("orders_0001.ack").exists());
    let out = wharf(&state).args(["awaits", "order-ack-sftp"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut states: Vec<&str> = text.lines().skip(1).filter_map(|l| l.split_whitespace().nth(1)).collect();
    states.sort();
    assert_eq!(states, ["answered", "waiting"], "{text}");
}

#[test]
fn example_ftps_flow_runs_against_a_real_vsftpd() {
    let Some(ftpd) = Ftpd::vsftpd() else { return };
    let dir = support::tempdir();
    let yaml = fs::read_to_string(repo("flows/example-ftps-pull.yaml")).unwrap();
    let inbox = dir.path().join("inbox");
    let yaml = yaml
        .replace("host: ftp.partner.example", "host: 127.0.0.1")
        .replace("port: 21", &format!("port: {}", ftpd.port()))
        .replace("user: acme", "user: wharftest")
        .replace("    tls: explicit\n", &format!("    tls: explicit\n    ca_file: {:?}\n", ftpd.certs().ca.display().to_string()))
        .replace("    root: /\n", &format!("    root: {:?}\n", ftpd.data_dir().display().to_string()))
        .replace("../demo-work/ftps-inbox", &inbox.display().to_string())
        .replace("min_age: 2m", "min_age: 1s");
    let flow = dir.path().join("example-ftps-pull.yaml");
    fs::write(&flow, yaml).unwrap();
    let out_dir = ftpd.data_dir().join("outgoing");
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(out_dir.join("a.csv"), "id;qty\r\n1;2\r\n").unwrap();
    fs::write(out_dir.join("b.xml"), "<b/>\n").unwrap();
    fs::write(out_dir.join("c.txt"), "not taken").unwrap();
    ftpd.give_to_user(&out_dir);
    std::thread::sleep(std::time::Duration::from_millis(1100)); // min_age: 1s
    let state = dir.path().join("state");
    let run = || wharf(&state).arg("run").arg(&flow).env("WHARF_FTP_PASSWORD", support::ftpd::PASSWORD).output().unwrap();
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(out.status.success() && text.contains("2 delivered"), "{text}");
    let month = fs::read_dir(inbox.join("orders")).unwrap().flatten().next().expect("a month folder").path();
    assert_eq!(fs::read_to_string(month.join("a.csv")).unwrap(), "id;qty\r\n1;2\r\n");
    assert!(out_dir.join("processed/b.xml").exists() && out_dir.join("c.txt").exists());
    let out = run();
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 delivered"));
}

/// Copies the files of `rel` (not sub-folders) from the repository to the same place under `to`.
fn copy_files(rel: &str, to: &Path) {
    fs::create_dir_all(to.join(rel)).unwrap();
    for e in fs::read_dir(repo(rel)).unwrap().flatten().filter(|e| e.path().is_file()) {
        fs::copy(e.path(), to.join(rel).join(e.file_name())).unwrap();
    }
}

#[test]
fn price_list_flow_renders_and_uploads_to_a_real_vsftpd() {
    let Some(ftpd) = Ftpd::vsftpd() else { return };
    let dir = support::tempdir();
    // The flow with its templates, schema and sample outbox, in the same relative layout.
    for rel in ["flows", "flows/demo-data/prices", "templates", "templates/pricelist", "schemas/records"] {
        copy_files(rel, dir.path());
    }
    let yaml = fs::read_to_string(repo("flows/price-list-ftp.yaml")).unwrap();
    let yaml = yaml
        .replace("port: 21", &format!("port: {}", ftpd.port()))
        .replace("user: acme-prices", "user: wharftest")
        .replace("    tls: explicit\n", &format!("    tls: explicit\n    ca_file: {:?}\n", ftpd.certs().ca.display().to_string()))
        .replace("    root: /\n", &format!("    root: {:?}\n", ftpd.data_dir().display().to_string()));
    let flow = dir.path().join("flows/price-list-ftp.yaml");
    fs::write(&flow, yaml).unwrap();
    ftpd.give_to_user(ftpd.data_dir());
    let state = dir.path().join("state");
    let out = wharf(&state).arg("run").arg(&flow).env("WHARF_FTP_PASSWORD", support::ftpd::PASSWORD).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + String::from_utf8_lossy(&out.stderr).as_ref();
    assert!(out.status.success() && text.contains("1 delivered"), "{text}");
    let sent = fs::read_to_string(ftpd.data_dir().join("incoming/prices/ACME_PRICES_20260105.csv")).unwrap();
    assert!(sent.starts_with("H;PRICELIST;WHARF-DEMO;PRICES_20260105;"), "{sent}");
    assert!(sent.contains("\r\nD;B-200;\"Mutter M6; verzinkt\";0,05;EUR;20260105\r\n"), "{sent}");
    assert!(sent.ends_with("\r\nT;5;152,76\r\n"), "a trailer with the count and the exact sum: {sent}");
    let outbox = dir.path().join("flows/demo-data/prices");
    assert!(outbox.join("sent/PRICES_20260105.csv").exists() && !outbox.join("PRICES_20260105.csv").exists());
}
