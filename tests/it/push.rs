//! End-to-end push flows through the `wharf` binary, from a local outbox to a real OpenSSH
//! sshd and a real vsftpd (explicit FTPS): a file is never visible under its final name while
//! it is being uploaded (checked from a second connection), the trigger file appears only
//! after the data file is complete, a push SIGKILLed between upload and rename leaves exactly
//! one copy, every sink is tried and only unconfirmed ones are retried, and a command's output
//! is sent.

use crate::support;
use support::text;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::ftpd::Ftpd;
use support::halt::run_until;
use support::partner::Partner;
use support::sshd::Sshd;
use support::{TempDir, tempdir};
use wharf::config::flow::FtpTls;
use wharf::endpoint::RemotePath;

struct World {
    partner: Partner,
    dir: TempDir,
}

impl World {
    fn new(partner: Option<Partner>) -> Option<World> {
        let w = World { partner: partner?, dir: tempdir() };
        let inbox = w.remote("inbox");
        fs::create_dir_all(&inbox).unwrap();
        w.partner.give_to_user(&inbox);
        fs::create_dir_all(w.local("outbox")).unwrap();
        Some(w)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.partner.data_dir().join(rel)
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Names in a server folder, sorted.
    fn remote_names(&self, rel: &str) -> Vec<String> {
        names(&self.remote(rel))
    }

    /// local outbox → partner /inbox (with `sink_extra` lines under the sink), outbox files
    /// moved to `sent/` after success; `rest` is appended.
    fn flow(&self, source_extra: &str, sink_extra: &str, rest: &str) -> PathBuf {
        let yaml = format!(
            "name: push\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: here\n  path: /outbox\n{source_extra}sinks:\n  - endpoint: partner\n    path: /inbox\n{sink_extra}{rest}after:\n  success: {{ move_to: /sent }}\n",
            ep = self.partner.yaml(),
            root = self.dir.path().display().to_string(),
        );
        let p = self.local("flow.yaml");
        fs::write(&p, yaml).unwrap();
        p
    }

    fn wharf(&self, flow: &Path) -> Command {
        let mut c = support::wharf(&self.local("state"));
        c.arg("run").arg(flow);
        c
    }

    fn run(&self, flow: &Path) -> Output {
        self.wharf(flow).output().unwrap()
    }

    /// The SHA-256 the ledger recorded for each source file of the flow, by path.
    fn recorded_hashes(&self) -> Vec<(String, Option<String>)> {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--state-dir")
            .arg(self.local("state"))
            .args(["files", "push", "--json"])
            .output()
            .unwrap();
        let files: serde_json::Value = serde_json::from_slice(&ok(&out).into_bytes()).unwrap();
        let mut v: Vec<(String, Option<String>)> = files
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["path"].as_str().unwrap().to_string(), f["sha256"].as_str().map(str::to_string)))
            .collect();
        v.sort();
        v
    }
}

fn sha256_hex(data: &[u8]) -> Option<String> {
    use sha2::Digest;
    Some(hex::encode(sha2::Sha256::digest(data)))
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()).unwrap_or_default();
    v.sort();
    v
}

fn ok(out: &Output) -> String {
    let t = text(out);
    assert!(out.status.success(), "{t}");
    t
}

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| b"0123456789abcdef\n"[i % 17]).collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

const HALT: Duration = Duration::from_secs(60);

/// While an upload is in progress the final name does not exist on the server (seen from a
/// second connection), only the temporary one; the re-run after a SIGKILL delivers once.
fn upload_in_progress_is_invisible(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let data = body(3 * 1024 * 1024);
    fs::write(w.local("outbox/prices.csv"), &data).unwrap();
    let flow = w.flow("", "    trigger: \"{{name}}.done\"\n", "");
    let halted = run_until(w.wharf(&flow), "uploading", HALT);
    rt().block_on(async {
        let second = w.partner.connect().await;
        let at = |p: &str| RemotePath::parse(p).unwrap();
        assert!(second.stat(&at("/inbox/prices.csv")).await.unwrap().is_none(), "final name visible mid-upload");
        assert!(second.stat(&at("/inbox/prices.csv.done")).await.unwrap().is_none(), "trigger visible mid-upload");
        assert!(second.stat(&at("/inbox/.prices.csv.push.part")).await.unwrap().is_some(), "the temporary name holds the upload");
    });
    drop(halted);
    ok(&w.run(&flow));
    assert_eq!(fs::read(w.remote("inbox/prices.csv")).unwrap(), data);
    assert_eq!(w.remote_names("inbox"), ["prices.csv", "prices.csv.done"]);
    assert_eq!(names(&w.local("sent")), ["prices.csv"]);
    // Hashed on its way out (not read before the upload), and recorded.
    assert_eq!(w.recorded_hashes(), [("outbox/prices.csv".to_string(), sha256_hex(&data))]);
}

/// The trigger file appears only once the data file is complete under its final name; a
/// crash between the two writes the trigger on the next run without uploading again.
fn trigger_only_after_complete_data(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let data = body(600 * 1024);
    fs::write(w.local("outbox/order.xml"), &data).unwrap();
    let flow = w.flow("", "    trigger: \"{{stem}}.ok\"\n    if_exists: rename\n", "");
    let halted = run_until(w.wharf(&flow), "uploaded", HALT);
    assert_eq!(w.remote_names("inbox"), [".order.xml.push.part"], "verified temp, no final name, no trigger");
    assert_eq!(fs::read(w.remote("inbox/.order.xml.push.part")).unwrap(), data);
    drop(halted);
    // Next run: the killed upload is redone under the temp name; halt before the trigger.
    let halted = run_until(w.wharf(&flow), "triggering", HALT);
    assert_eq!(w.remote_names("inbox"), ["order.xml"], "data complete, trigger not yet there");
    assert_eq!(fs::read(w.remote("inbox/order.xml")).unwrap(), data);
    drop(halted);
    let t = ok(&w.run(&flow));
    assert!(t.contains("1 delivered"), "{t}");
    assert_eq!(w.remote_names("inbox"), ["order.ok", "order.xml"], "exactly one copy (no order-1.xml) and its trigger");
    assert_eq!(fs::read(w.remote("inbox/order.ok")).unwrap(), b"");
    assert_eq!(names(&w.local("sent")), ["order.xml"]);
}

/// SIGKILL just after the trigger file was renamed into place, before the ledger noted it,
/// and the partner, told by the trigger, took both files meanwhile: the next run must not
/// deliver the file a second time (the partner would process it twice), nor leave a trigger
/// without its file.
fn a_delivery_taken_at_its_trigger_is_not_sent_again_after_a_crash(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    fs::write(w.local("outbox/order.xml"), b"<order/>").unwrap();
    let flow = w.flow("", "    trigger: \"{{stem}}.ok\"\n", "");
    let halted = run_until(w.wharf(&flow), "triggered", HALT);
    assert_eq!(w.remote_names("inbox"), ["order.ok", "order.xml"]);
    drop(halted);
    // The partner acts on the trigger: it takes the file and removes both.
    for f in ["inbox/order.ok", "inbox/order.xml"] {
        fs::remove_file(w.remote(f)).unwrap();
    }
    let t = ok(&w.run(&flow));
    assert!(t.contains("1 delivered"), "{t}");
    assert_eq!(w.remote_names("inbox"), Vec::<String>::new(), "sent once: nothing written again");
    assert_eq!(names(&w.local("sent")), ["order.xml"]);
}

/// SIGKILL after the upload was verified, before the rename, then a re-run: exactly one copy
/// under the final name (with `if_exists: rename`, a second upload would show as `a-1.csv`).
fn killed_before_rename_leaves_one_copy(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    fs::write(w.local("outbox/a.csv"), b"sku;price\n1;9.99\n").unwrap();
    let flow = w.flow("", "    if_exists: rename\n", "");
    drop(run_until(w.wharf(&flow), "uploaded", HALT));
    ok(&w.run(&flow));
    assert_eq!(w.remote_names("inbox"), ["a.csv"]);
    assert_eq!(fs::read(w.remote("inbox/a.csv")).unwrap(), b"sku;price\n1;9.99\n");
    // After the rename, before the ledger noted it: the target is found complete.
    fs::write(w.local("outbox/b.csv"), b"b").unwrap();
    drop(run_until(w.wharf(&flow), "renamed", HALT));
    ok(&w.run(&flow));
    // Every sink confirmed, the source not yet moved.
    fs::write(w.local("outbox/c.csv"), b"c").unwrap();
    drop(run_until(w.wharf(&flow), "delivered", HALT));
    ok(&w.run(&flow));
    assert_eq!(w.remote_names("inbox"), ["a.csv", "b.csv", "c.csv"]);
    assert_eq!(names(&w.local("sent")), ["a.csv", "b.csv", "c.csv"]);
    // Every file's hash is recorded, also where the resumed run uploaded nothing.
    let hashes: Vec<_> = [&b"sku;price\n1;9.99\n"[..], b"b", b"c"].iter().map(|d| sha256_hex(d)).collect();
    assert_eq!(w.recorded_hashes().into_iter().map(|(_, h)| h).collect::<Vec<_>>(), hashes);
}

/// `if_exists: overwrite` onto a file of the same size (a fixed-width price list, sent daily
/// under one name): killed mid-upload, the re-run must not take yesterday's file, still
/// under the final name, for its own delivery.
fn overwrite_killed_mid_upload_replaces_an_old_file_of_the_same_size(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let old = vec![b'o'; 3 * 1024 * 1024];
    fs::create_dir_all(w.remote("inbox")).unwrap();
    fs::write(w.remote("inbox/prices.txt"), &old).unwrap();
    let data = body(old.len());
    fs::write(w.local("outbox/prices.txt"), &data).unwrap();
    let flow = w.flow("", "    if_exists: overwrite\n", "");
    drop(run_until(w.wharf(&flow), "uploading", HALT));
    assert!(fs::read(w.remote("inbox/prices.txt")).unwrap() == old, "not replaced before the rename");
    let t = ok(&w.run(&flow));
    assert!(t.contains("1 delivered"), "{t}");
    assert!(fs::read(w.remote("inbox/prices.txt")).unwrap() == data, "the old file was taken for the delivery");
    assert_eq!(w.remote_names("inbox"), ["prices.txt"]);
    assert_eq!(names(&w.local("sent")), ["prices.txt"]);
}

/// `direct: true`: straight under the final name, for servers that refuse renames — no
/// temporary name on the server at any time. Killed mid-upload, the part left under the
/// final name is written over by the next run (the default `fail` policy does not take it
/// for somebody else's file), once, and the trigger follows the complete file.
fn direct_upload_writes_the_final_name_and_recovers_its_own_part(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let data = body(3 * 1024 * 1024);
    fs::write(w.local("outbox/prices.csv"), &data).unwrap();
    let flow = w.flow("", "    direct: true\n    trigger: \"{{name}}.done\"\n", "");
    let halted = run_until(w.wharf(&flow), "uploading", HALT);
    assert_eq!(w.remote_names("inbox"), ["prices.csv"], "no temporary name, no trigger yet");
    drop(halted);
    let t = ok(&w.run(&flow));
    assert!(t.contains("1 delivered"), "{t}");
    assert!(fs::read(w.remote("inbox/prices.csv")).unwrap() == data, "the whole file under the final name");
    assert_eq!(w.remote_names("inbox"), ["prices.csv", "prices.csv.done"]);
    assert_eq!(names(&w.local("sent")), ["prices.csv"]);
}

/// `direct: true` with `if_exists: overwrite`: the file is rewritten in place, so the empty
/// trigger an earlier delivery left beside it would tell the partner to take a part. It is
/// removed before the first byte is written, and written again once the file is whole.
fn direct_overwrite_removes_the_old_trigger_first(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let data = body(3 * 1024 * 1024);
    fs::write(w.local("outbox/prices.csv"), &data).unwrap();
    fs::write(w.remote("inbox/prices.csv"), b"last week's prices").unwrap();
    fs::write(w.remote("inbox/prices.csv.done"), b"").unwrap();
    w.partner.give_to_user(&w.remote("inbox"));
    let flow = w.flow("", "    direct: true\n    if_exists: overwrite\n    trigger: \"{{name}}.done\"\n", "");
    let halted = run_until(w.wharf(&flow), "uploading", HALT);
    assert_eq!(w.remote_names("inbox"), ["prices.csv"], "the old trigger is gone while the file is written");
    drop(halted);
    let t = ok(&w.run(&flow));
    assert!(t.contains("1 delivered"), "{t}");
    assert!(fs::read(w.remote("inbox/prices.csv")).unwrap() == data, "the whole file under the final name");
    assert_eq!(w.remote_names("inbox"), ["prices.csv", "prices.csv.done"]);
}

/// `if_exists: overwrite` onto a file the login may not replace (another user's file in a
/// shared folder with the sticky bit): the file fails for good as permission denied — over
/// FTP it was a protocol error quoting a bare "550 Rename failed." — naming the file it was
/// to replace, not only the temporary one; the old file is untouched, no temporary file is
/// left, and the source stays in the outbox.
fn an_overwrite_the_server_refuses_is_permission_denied_naming_the_target(partner: Option<Partner>) {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new(partner) else { return };
    fs::write(w.remote("inbox/a.csv"), b"somebody else's").unwrap();
    std::os::unix::fs::chown(w.remote("inbox"), Some(0), Some(0)).unwrap();
    fs::set_permissions(w.remote("inbox"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::write(w.local("outbox/a.csv"), b"ours").unwrap();
    let flow = w.flow("", "    if_exists: overwrite\n", "");
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("permission denied") && t.contains("/inbox/a.csv") && !t.contains("retrying"), "{t}");
    assert_eq!(fs::read(w.remote("inbox/a.csv")).unwrap(), b"somebody else's");
    assert_eq!(w.remote_names("inbox"), ["a.csv"], "no temporary file left");
    assert!(w.local("outbox/a.csv").exists());
}

macro_rules! on_both_servers {
    ($($name:ident),*) => {
        mod sftp { $( #[test] fn $name() { super::$name(super::Partner::sftp()) } )* }
        mod ftps { $( #[test] fn $name() { super::$name(super::Partner::ftp()) } )* }
    };
}

on_both_servers!(
    upload_in_progress_is_invisible,
    trigger_only_after_complete_data,
    killed_before_rename_leaves_one_copy,
    overwrite_killed_mid_upload_replaces_an_old_file_of_the_same_size,
    direct_upload_writes_the_final_name_and_recovers_its_own_part,
    direct_overwrite_removes_the_old_trigger_first,
    a_delivery_taken_at_its_trigger_is_not_sent_again_after_a_crash,
    an_overwrite_the_server_refuses_is_permission_denied_naming_the_target
);

/// Two sinks (the partner and a local archive): when the partner refuses, the archive still
/// gets the file, the outbox file stays, and the next run delivers only to the partner.
#[test]
fn failed_sink_is_retried_alone() {
    let Some(w) = World::new(Partner::sftp()) else { return };
    fs::write(w.local("outbox/a.csv"), b"new").unwrap();
    fs::write(w.remote("inbox/a.csv"), b"old, not yet collected by the partner").unwrap();
    let archive = "  - endpoint: here\n    path: /archive\n    if_exists: rename\n";
    let flow = w.flow("", "", archive);
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("sink partner: /inbox/a.csv already exists"), "{t}");
    assert_eq!(names(&w.local("archive")), ["a.csv"]);
    assert_eq!(names(&w.local("outbox")), ["a.csv"], "the source stays until every sink confirmed");

    fs::remove_file(w.remote("inbox/a.csv")).unwrap();
    ok(&w.run(&flow));
    assert_eq!(fs::read(w.remote("inbox/a.csv")).unwrap(), b"new");
    assert_eq!(names(&w.local("archive")), ["a.csv"], "the archive is not written twice");
    assert_eq!(names(&w.local("sent")), ["a.csv"]);
}

/// A recursive push whose sinks put `{{rel_dir}}` into their folder keeps the tree, on the
/// partner's SFTP server and in a local folder: sub-folders are made as needed, files at the
/// top go into the folder itself. The same flow with a plain folder and no `name` is warned of
/// by `wharf validate` at the line of `recursive`.
#[test]
fn a_recursive_push_keeps_its_tree_with_rel_dir_in_the_sink_folder() {
    let Some(w) = World::new(Partner::sftp()) else { return };
    for (rel, body) in [("x.csv", "top"), ("a/x.csv", "a"), ("b/x.csv", "b"), ("a/deep/y.csv", "deep")] {
        let p = w.local(&format!("outbox/{rel}"));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, body).unwrap();
    }
    let flow = |sinks: &str| {
        let yaml = format!(
            "name: tree\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: here\n  path: /outbox\n  recursive: true\nsinks:\n{sinks}",
            ep = w.partner.yaml(),
            root = w.dir.path().display().to_string(),
        );
        let p = w.local("flow.yaml");
        fs::write(&p, yaml).unwrap();
        p
    };
    let flat = flow("  - endpoint: partner\n    path: /inbox\n");
    let out = support::wharf(&w.local("state")).arg("validate").arg(&flat).output().unwrap();
    let t = ok(&out);
    let line = fs::read_to_string(&flat).unwrap().lines().position(|l| l.contains("recursive: true")).unwrap() + 1;
    assert!(
        t.contains(&format!(
            "{}:{line}:14: warning: files of sub-folders are delivered by sink 0 (`partner`) side by side",
            flat.display()
        )) && t.contains("give the sink `path: \"/inbox/{{rel_dir}}\"`"),
        "{t}"
    );

    let tree = flow("  - endpoint: partner\n    path: \"/inbox/{{rel_dir}}\"\n  - endpoint: here\n    path: \"/archive/{{rel_dir}}\"\n");
    let out = support::wharf(&w.local("state")).arg("validate").arg(&tree).output().unwrap();
    // (The harness's partner logs in with a password written in the flow: warned of, not this.)
    let warned: Vec<String> = ok(&out).lines().filter(|l| l.contains("warning") && !l.contains("in clear")).map(String::from).collect();
    assert_eq!(warned, ["1 flow(s) checked, 0 problem(s), 1 warning(s)"], "{}", text(&out));
    ok(&w.run(&tree));
    for root in [w.remote("inbox"), w.local("archive")] {
        assert_eq!(names(&root), ["a", "b", "x.csv"], "{}", root.display());
        assert_eq!(names(&root.join("a")), ["deep", "x.csv"]);
        let read = |rel: &str| fs::read_to_string(root.join(rel)).unwrap();
        assert_eq!([read("x.csv"), read("a/x.csv"), read("b/x.csv"), read("a/deep/y.csv")], ["top", "a", "b", "deep"]);
    }
}

/// `source.command`: the export's output is sent; a failing export aborts the run with its
/// exit status and stderr, and leaves nothing behind.
#[test]
fn command_output_is_pushed() {
    let Some(w) = World::new(Partner::sftp()) else { return };
    let source =
        "  include: [\"*.csv\"]\n  command:\n    run: [sh, -c, \"printf 'sku;price\\\\n1;2.50\\\\n'\"]\n    name: \"prices-{{run}}.csv\"\n";
    let flow = w.flow(source, "", "");
    ok(&w.run(&flow));
    assert_eq!(fs::read(w.remote("inbox/prices-1.csv")).unwrap(), b"sku;price\n1;2.50\n");
    assert_eq!(names(&w.local("sent")), ["prices-1.csv"]);

    let failing = "  command:\n    run: [sh, -c, \"echo partial; echo 'ERP unreachable' >&2; exit 4\"]\n    name: \"x.csv\"\n";
    let flow = w.flow(failing, "", "");
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("flow push: source command `sh` exited with status 4; its stderr ends: ERP unreachable"), "{t}");
    assert!(names(&w.local("outbox")).is_empty(), "no partial export is left: {:?}", names(&w.local("outbox")));

    // An export writing without end: killed at its `max_output`, not at its timeout; nothing
    // of it is left or sent.
    let endless =
        "  command:\n    run: [sh, -c, \"echo 'query without WHERE' >&2; exec yes\"]\n    name: \"x.csv\"\n    max_output: 1MiB\n";
    let flow = w.flow(endless, "", "");
    let started = Instant::now();
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(t.contains("flow push: source command `sh` wrote more than its max_output of 1MiB ("), "{t}");
    assert!(t.contains("its partial output was removed; its stderr ends: query without WHERE"), "{t}");
    assert!(names(&w.local("outbox")).is_empty(), "no partial export is left: {:?}", names(&w.local("outbox")));
    assert!(!w.remote("inbox/x.csv").exists());
}

/// `wharf run` stopped by Ctrl-C or SIGTERM while its export runs: the export and whatever it
/// started go with it (they run in a process group of their own, which the terminal's Ctrl-C
/// does not reach), and nothing half-written is sent by the next run.
#[test]
fn an_interrupted_run_takes_its_export_with_it() {
    let Some(w) = World::new(Partner::sftp()) else { return };
    let pids = w.local("pids");
    let script = format!("echo $$ > {p}; (sleep 60; echo late) & echo $! >> {p}; echo part; wait", p = pids.display());
    let source = format!("  command:\n    run: [sh, -c, {script:?}]\n    name: \"x.csv\"\n");
    let flow = w.flow(&source, "", "");
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let _ = fs::remove_file(&pids);
        let child = w.wharf(&flow).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let started = Instant::now();
        while fs::read_to_string(&pids).map_or(true, |p| p.lines().count() < 2) {
            assert!(started.elapsed() < Duration::from_secs(20), "the export did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill(2) of the child this test started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(128 + signal), "{}", text(&out));
        for pid in fs::read_to_string(&pids).unwrap().lines() {
            let stat = format!("/proc/{pid}/stat");
            let gone = (0..100).any(|_| {
                let gone = fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "));
                std::thread::sleep(Duration::from_millis(20));
                gone
            });
            assert!(gone, "process {pid} of the export outlived wharf");
        }
    }
    assert!(names(&w.local("outbox")).iter().all(|n| n.starts_with(".wharf-command-")), "{:?}", names(&w.local("outbox")));
    assert!(w.remote_names("inbox").is_empty());
    // The next run takes over: the ledger was left in order, the stale output is cleared.
    let flow = w.flow("  command:\n    run: [sh, -c, \"echo whole\"]\n    name: \"x.csv\"\n", "", "");
    ok(&w.run(&flow));
    assert_eq!(fs::read(w.remote("inbox/x.csv")).unwrap(), b"whole\n");
    assert!(names(&w.local("outbox")).is_empty(), "{:?}", names(&w.local("outbox")));
}

/// A round trip in one flow: pull orders from one partner's SFTP server, map them with a
/// script, render them in the other partner's fixed-width layout, and push them to its FTPS
/// server; the source moves to `processed/` on the first partner only after the push.
#[test]
fn pull_map_render_push_between_two_partners() {
    let (Some(sshd), Some(ftpd)) = (Sshd::start(), Ftpd::vsftpd()) else { return };
    let dir = tempdir();
    let out = sshd.data_dir().join("out");
    fs::create_dir_all(&out).unwrap();
    fs::write(out.join("orders-1.csv"), "order,sku,qty\nA-1,X100,3\nA-2,Y7,12\n").unwrap();
    sshd.give_to_user(sshd.data_dir());
    let inbox = ftpd.data_dir().join("inbox");
    fs::create_dir_all(&inbox).unwrap();
    ftpd.give_to_user(&inbox);
    fs::write(dir.path().join("map.rhai"), "fn map(record) { #{ id: record.order, article: record.sku, units: parse_int(record.qty) } }\n")
        .unwrap();
    fs::write(dir.path().join("head.txt.hbs"), "H{{lpad file.stem 12}}\n").unwrap();
    fs::write(dir.path().join("row.txt.hbs"), "D{{pad record.id 6}}{{pad record.article 6}}{{lpad record.units 4 fill=\"0\"}}\n").unwrap();
    fs::write(dir.path().join("foot.txt.hbs"), "T{{lpad count 6 fill=\"0\"}}{{lpad sums.units 8 fill=\"0\"}}\n").unwrap();
    let yaml = format!(
        "name: relay\nendpoints:\n  buyer:\n{a}  supplier:\n{b}  here:\n    type: local\n    root: {here:?}\nsource:\n  endpoint: buyer\n  path: /out\n  include: [\"*.csv\"]\nsteps:\n  - parse: {{ format: csv }}\n  - map: {{ script: map.rhai }}\n  - render: {{ header: head.txt.hbs, row: row.txt.hbs, footer: foot.txt.hbs, sums: [units] }}\nquarantine: {{ endpoint: here, path: /rejected }}\nsinks:\n  - endpoint: supplier\n    path: /inbox\n    trigger: \"{{{{stem}}}}.rdy\"\nafter:\n  success: {{ move_to: /out/processed }}\n",
        a = sshd.endpoint_yaml(4),
        b = ftpd.endpoint_yaml(FtpTls::Explicit, 4),
        here = dir.path().display().to_string(),
    );
    let flow = dir.path().join("relay.yaml");
    fs::write(&flow, yaml).unwrap();
    let out_run = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "wharf=warn")
        .arg("run")
        .arg(&flow)
        .output()
        .unwrap();
    let t = ok(&out_run);
    assert!(t.contains("1 delivered"), "{t}");
    assert_eq!(
        fs::read_to_string(inbox.join("orders-1.txt")).unwrap(),
        "H    orders-1\nDA-1   X100  0003\nDA-2   Y7    0012\nT00000200000015\n"
    );
    assert_eq!(names(&inbox), ["orders-1.rdy", "orders-1.txt"]);
    assert_eq!(names(&sshd.data_dir().join("out/processed")), ["orders-1.csv"]);
}
