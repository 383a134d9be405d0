//! End-to-end pull flows through the `wharf` binary against a real OpenSSH sshd: readiness
//! across runs, exactly-once delivery, re-sent files, move-to-processed collisions, bounded
//! memory for a large file, refused logins and host keys, and SIGKILL at several points of a
//! run followed by a clean recovery.

use crate::support;
use support::{counts, text, walk};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::sshd::Sshd;
use support::{TempDir, tempdir};

/// One test's world: a server, a local sink folder, a state folder and a flow file.
struct World {
    sshd: Sshd,
    dir: TempDir,
}

impl World {
    fn new() -> Option<World> {
        Self::with_server(&[])
    }

    /// [`new`](Self::new), the server started with `extra` sshd_config lines.
    fn with_server(extra: &[&str]) -> Option<World> {
        let sshd = Sshd::start_with(extra)?;
        let w = World { sshd, dir: tempdir() };
        fs::create_dir_all(w.remote("in")).unwrap();
        fs::create_dir_all(w.sink()).unwrap();
        w.sshd.give_to_user(&w.remote("in"));
        Some(w)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.sshd.data_dir().join(rel)
    }

    fn sink(&self) -> PathBuf {
        self.dir.path().join("sink")
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Puts a file on the server (owned by the SFTP user so it can be moved).
    fn put(&self, rel: &str, body: &[u8]) {
        let p = self.remote(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        self.sshd.give_to_user(self.sshd.data_dir());
    }

    /// Writes the flow file: partner (sftp) /in/*.csv → local sink, plus `extra` YAML.
    fn flow(&self, source_extra: &str, rest: &str) -> PathBuf {
        self.flow_with("", source_extra, rest)
    }

    /// [`flow`](Self::flow), with `endpoint_extra` lines (indented by 4) in the partner's
    /// endpoint.
    fn flow_with(&self, endpoint_extra: &str, source_extra: &str, rest: &str) -> PathBuf {
        let yaml = format!(
            "name: e2e\nendpoints:\n  partner:\n{ep}{endpoint_extra}  archive:\n    type: local\n    root: {sink:?}\nsource:\n  endpoint: partner\n  path: /in\n  include: [\"*.csv\"]\n{source_extra}sinks:\n  - endpoint: archive\n    path: /\n{rest}",
            ep = self.sshd.endpoint_yaml(4),
            sink = self.sink().display().to_string(),
        );
        let p = self.dir.path().join("flow.yaml");
        fs::write(&p, yaml).unwrap();
        p
    }

    fn wharf(&self) -> Command {
        support::wharf(&self.state())
    }

    fn run(&self, flow: &Path) -> Output {
        self.wharf().arg("run").arg(flow).output().unwrap()
    }

    fn run_json(&self, flow: &Path) -> (i32, serde_json::Value) {
        support::json_of(self.wharf().arg("run").arg("--json").arg(flow))
    }

    fn sink_files(&self) -> Vec<String> {
        let mut v: Vec<String> =
            walk(&self.sink()).into_iter().map(|p| p.strip_prefix(self.sink()).unwrap().display().to_string()).collect();
        v.sort();
        v
    }
}

#[test]
fn growing_file_is_skipped_then_taken_on_a_later_run() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("  ready: { stable_for: 1s }\n", "after: { success: { move_to: /in/processed } }\n");
    w.put("in/a.csv", b"first half");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (1, 0, 0, 0)), "{r:#}");
    assert!(r["files"][0]["detail"].as_str().unwrap().contains("first seen"));
    w.put("in/a.csv", b"first half, second half");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (1, 0, 0, 0), "{r:#}");
    assert!(r["files"][0]["detail"].as_str().unwrap().contains("changed"), "{r:#}");
    std::thread::sleep(Duration::from_millis(1100));
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.sink().join("a.csv")).unwrap(), b"first half, second half");
    assert!(w.remote("in/processed/a.csv").exists());
    assert!(!w.remote("in/a.csv").exists());
}

#[test]
fn same_file_is_not_delivered_twice_but_a_resent_file_is() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "    if_exists: rename\nafter: { success: keep }\n");
    w.put("in/a.csv", b"v1");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 1, 0), "{r:#}");
    assert!(r["files"][0]["detail"].as_str().unwrap().starts_with("already delivered in run 1"), "{r:#}");
    std::thread::sleep(Duration::from_millis(1100)); // SFTP mtimes have 1 s precision
    w.put("in/a.csv", b"v2, longer");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(w.sink_files(), vec!["a-1.csv", "a.csv"]);
    assert_eq!(fs::read(w.sink().join("a-1.csv")).unwrap(), b"v2, longer");
    // `wharf files` and `wharf runs` show the history.
    let files = text(&w.wharf().args(["files", "e2e"]).output().unwrap());
    assert!(files.contains("done") && files.contains("/in/a.csv"), "{files}");
    // Its second column is the runs a file failed in (none here), not a count of tries.
    let columns = |l: &str| l.split_whitespace().take(2).map(str::to_string).collect::<Vec<_>>();
    assert_eq!(columns(files.lines().next().unwrap_or_default()), ["state", "fails"], "{files}");
    assert!(files.lines().skip(1).all(|l| columns(l) == ["done", "0"]), "{files}");
    let runs = text(&w.wharf().args(["runs", "e2e"]).output().unwrap());
    assert_eq!(runs.lines().filter(|l| l.contains(" e2e ")).count(), 3, "{runs}");
}

/// A source the server will not let go (its folder read-only) after the file was delivered:
/// the report says where the file went and what failed; once the folder is writable again
/// the source is disposed of, and the file is not delivered twice.
#[test]
fn a_disposition_refused_after_delivery_says_the_file_was_delivered() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    w.put("in/a.csv", b"1,2\n");
    fs::set_permissions(w.remote("in"), fs::Permissions::from_mode(0o555)).unwrap();
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 0, 1), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("delivered to archive:/a.csv, but `after.success` failed: "), "{detail}");
    assert_eq!(r["files"][0]["targets"], serde_json::json!(["archive:/a.csv"]), "where it went, as the detail says (was [])");
    assert_eq!(fs::read(w.sink().join("a.csv")).unwrap(), b"1,2\n");
    fs::set_permissions(w.remote("in"), fs::Permissions::from_mode(0o755)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!(code, 0, "{r:#}");
    assert!(!w.remote("in/a.csv").exists());
    assert_eq!(w.sink_files(), vec!["a.csv"]);
}

/// A partner re-sending `a.csv` under its name, in a flow that keeps its sources (and so
/// their done files): the new version, half written beside the done file of the one
/// delivered yesterday, is not taken on the strength of that done file — it waits, saying
/// why — and is delivered once the partner writes its done file. Before, it was delivered
/// half written.
#[test]
fn a_done_file_left_from_an_earlier_version_does_not_make_a_new_one_ready() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("  ready: { done_file: \"{{name}}.done\" }\n", "    if_exists: rename\n");
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    let age = |rel: &str| fs::File::options().write(true).open(w.remote(rel)).unwrap().set_modified(an_hour_ago).unwrap();
    w.put("in/a.csv", b"v1 whole\n");
    w.put("in/a.csv.done", b"");
    age("in/a.csv");
    age("in/a.csv.done");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    // The next version, half written; yesterday's done file still there.
    w.put("in/a.csv", b"v2 half");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (1, 0, 0, 0), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("the done file \"a.csv.done\" (modified "), "{detail}");
    assert!(detail.contains("is older than the file"), "{detail}");
    assert_eq!(w.sink_files(), vec!["a.csv"]);
    w.put("in/a.csv", b"v2 half, then whole\n");
    w.put("in/a.csv.done", b"");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(w.sink_files(), vec!["a-1.csv", "a.csv"]);
    assert_eq!(fs::read(w.sink().join("a-1.csv")).unwrap(), b"v2 half, then whole\n");
    // A new version whose done file comes with an old time (an uploader keeping the times of a
    // stock done file): not taken at first sight, and not waited for for ever — the next poll
    // finds the file unchanged and takes it.
    w.put("in/a.csv", b"v3, whole at once\n");
    w.put("in/a.csv.done", b"");
    age("in/a.csv.done");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (1, 0, 0, 0), "{r:#}");
    assert!(r["files"][0]["detail"].as_str().unwrap().contains("taken once a later poll finds it unchanged"), "{r:#}");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(fs::read(w.sink().join("a-2.csv")).unwrap(), b"v3, whole at once\n");
}

/// A `move_to: processed/` the server refuses (the folder not writable for the login) after
/// the file was delivered: the file is not failed like one that was never delivered — not
/// moved by `after.failure` into `failed/` (where it sat recorded as failed, its delivery
/// never recorded as done), and not downloaded again by every later run only to be refused
/// again. The next run only moves it, once the folder lets it: here the source cannot even
/// be read any more, and the move still happens.
#[test]
fn a_refused_move_after_delivery_is_tried_again_without_a_second_download() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: { move_to: /in/processed }, failure: { move_to: /in/failed } }\n");
    w.put("in/a.csv", b"1,2\n");
    fs::create_dir_all(w.remote("in/processed")).unwrap();
    w.sshd.give_to_user(&w.remote("in"));
    fs::set_permissions(w.remote("in/processed"), fs::Permissions::from_mode(0o555)).unwrap();
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 0, 1), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("delivered to archive:/a.csv, but `after.success` failed: "), "{detail}");
    assert!(w.remote("in/a.csv").exists(), "a delivered file is not put with the failed ones: {detail}");
    assert!(!w.remote("in/failed").exists(), "{detail}");
    // The folder writable again; the source no longer readable (a rename does not read it).
    fs::set_permissions(w.remote("in/processed"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(w.remote("in/a.csv"), fs::Permissions::from_mode(0o000)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert!(!w.remote("in/a.csv").exists() && w.remote("in/processed/a.csv").exists(), "{r:#}");
    assert_eq!(w.sink_files(), vec!["a.csv"]);
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 0, 0), "{r:#}");
}

/// A file the login may list but not read (its permissions: a partner's uploader that opens
/// a file up once it is done), among readable ones: not ready yet, saying why — not failed,
/// not moved to `failed/` by `after.failure` (before: failed for good on the first refusal,
/// moved away at once and a `failed` event raised) — and the others are delivered and moved;
/// readable, the next run delivers it.
#[test]
fn a_file_the_login_may_not_read_yet_is_not_ready_and_delivered_once_readable() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: { move_to: /in/processed }, failure: { move_to: /in/failed } }\n");
    for name in ["a", "b", "c"] {
        w.put(&format!("in/{name}.csv"), name.as_bytes());
    }
    fs::set_permissions(w.remote("in/b.csv"), fs::Permissions::from_mode(0o000)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (1, 2, 0, 0)), "{r:#}");
    let detail = r["files"][1]["detail"].as_str().unwrap();
    assert!(detail.starts_with("the login may not read it yet: "), "{detail}");
    assert!(detail.contains("read /in/b.csv: permission denied"), "{detail}");
    assert!(detail.contains("taken once it is readable"), "{detail}");
    assert_eq!(w.sink_files(), vec!["a.csv", "c.csv"]);
    assert!(w.remote("in/b.csv").exists() && !w.remote("in/failed").exists(), "{r:#}");
    assert!(w.remote("in/processed/c.csv").exists(), "{r:#}");
    // Still refused: still not ready, still not moved.
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (1, 0, 0, 0)), "{r:#}");
    assert!(w.remote("in/b.csv").exists() && !w.remote("in/failed").exists(), "{r:#}");
    fs::set_permissions(w.remote("in/b.csv"), fs::Permissions::from_mode(0o644)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.sink().join("b.csv")).unwrap(), b"b");
    assert!(w.remote("in/processed/b.csv").exists());
}

/// A file the partner rewrites in place at the same size while it is downloaded: not
/// delivered with the old version's start and the new one's end, but not ready (its time
/// changed since the download opened it); the next run delivers the new version whole.
#[test]
fn a_file_rewritten_at_the_same_size_while_it_is_downloaded_is_not_delivered_mixed() {
    use std::io::{Seek, Write};
    use std::time::Instant;
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    let mut body: Vec<u8> = (0..64u32 << 20).map(|i| (i % 251) as u8).collect();
    w.put("in/big.csv", &body);
    // Written a minute ago: the rewrite's time differs at the server's precision (seconds).
    let f = fs::File::options().write(true).open(w.remote("in/big.csv")).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).unwrap();
    let mut child = w
        .wharf()
        .arg("run")
        .arg("--json")
        .arg(&flow)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while walk(&w.state().join("staging")).iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum::<u64>() <= 256 << 10 {
        assert!(child.try_wait().unwrap().is_none(), "wharf finished before the download was under way");
        assert!(Instant::now() < deadline, "the download never got going");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Its first bytes (downloaded already) rewritten in place: the same size.
    let mut f = fs::File::options().write(true).open(w.remote("in/big.csv")).unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&[b'N'; 4096]).unwrap();
    body[..4096].fill(b'N');
    drop(f);
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(counts(&r), (1, 0, 0, 0), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("/in/big.csv was modified while it was downloaded"), "{detail}");
    assert!(w.sink_files().is_empty(), "{r:#}");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert!(fs::read(w.sink().join("big.csv")).unwrap() == body);
}

#[test]
fn move_to_processed_with_a_name_collision_and_sftp_to_sftp_delivery() {
    let Some(w) = World::new() else { return };
    // Deliver into another folder on the same SFTP server.
    let yaml = format!(
        "name: s2s\nendpoints:\n  partner:\n{ep}source: {{ endpoint: partner, path: /in }}\nsinks:\n  - {{ endpoint: partner, path: '/out/{{{{date \"YYYY\"}}}}' }}\nafter: {{ success: {{ move_to: /in/done }} }}\n",
        ep = w.sshd.endpoint_yaml(4)
    );
    let flow = w.dir.path().join("s2s.yaml");
    fs::write(&flow, yaml).unwrap();
    w.put("in/done/a.csv", b"older");
    w.put("in/a.csv", b"newer");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    let year = chrono_year();
    assert_eq!(fs::read(w.remote(&format!("out/{year}/a.csv"))).unwrap(), b"newer");
    assert_eq!(fs::read(w.remote("in/done/a.csv")).unwrap(), b"older");
    assert_eq!(fs::read(w.remote("in/done/a-1.csv")).unwrap(), b"newer");
    assert!(!w.remote(&format!("out/{year}/.a.csv.s2s.part")).exists());
}

fn chrono_year() -> i64 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // Civil year from days since the epoch (good enough away from New Year's midnight).
    let days = secs / 86_400;
    let mut y = 1970;
    let mut d = days;
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 { 366 } else { 365 };
        if d < len {
            return y;
        }
        d -= len;
        y += 1;
    }
}

/// With `max_connections: 3`, files in flight spread over three SSH connections (three
/// logins in the server's log), and everything arrives intact.
#[test]
fn files_in_flight_spread_over_max_connections() {
    let Some(w) = World::new() else { return };
    let flow = w.flow_with("    max_connections: 3\n", "", "after: { success: delete }\n");
    let big = |i: u32| -> Vec<u8> { (0..3u32 << 20).map(|j| (j.wrapping_mul(2_654_435_761 + i) >> 13) as u8).collect() };
    for i in 0..3 {
        w.put(&format!("in/big{i}.csv"), &big(i));
    }
    for i in 0..20 {
        w.put(&format!("in/s{i:02}.csv"), format!("{i}\n").as_bytes());
    }
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 23, 0, 0)), "{r:#}");
    for i in 0..3 {
        assert!(fs::read(w.sink().join(format!("big{i}.csv"))).unwrap() == big(i), "big{i}.csv differs");
    }
    let logins = w.sshd.log().matches("Accepted password").count();
    assert_eq!(logins, 3, "{}", w.sshd.log());
}

/// A 100 MiB file moves with bounded memory: its run's peak RSS is at most [`GROWTH_KIB`]
/// above the same run's with a 64 KiB file (the reads in flight and the window; a file held
/// whole would add its 100 MiB). Absolute, under 64 MiB, in a release build only: a debug
/// build's image alone is about 40 MiB resident (`RssFile`), and grows with the code (the
/// run's own memory, `RssAnon`, was 26 MiB of a 65 MiB peak here).
#[test]
fn a_100_mib_file_moves_with_bounded_memory() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    // Halt once the file is downloaded and delivered (the peak is behind us), read the
    // process's own high-water mark, then let a second run finish the disposition.
    // (wait4's ru_maxrss would include this test process's memory from before exec.)
    let peak = |name: &str, body: &[u8]| {
        w.put(&format!("in/{name}"), body);
        let peak_kib = run_and_kill_at(&w, &flow, "delivered");
        let (code, r) = w.run_json(&flow);
        assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
        assert!(fs::read(w.sink().join(name)).unwrap() == body, "content differs");
        assert!(!w.remote(&format!("in/{name}")).exists());
        peak_kib
    };
    let small = peak("small.csv", &[b'x'; 64 << 10]);
    let body: Vec<u8> = (0..100u32 * 1024 * 1024).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let large = peak("big.csv", &body);
    eprintln!("peak RSS moving 100 MiB over SFTP: {large} KiB, against {small} KiB for 64 KiB");
    assert!(large.saturating_sub(small) < GROWTH_KIB, "peak RSS {large} KiB: {small} KiB for a 64 KiB file, and grew with the file");
    if !cfg!(debug_assertions) {
        assert!(large < 64 * 1024, "peak RSS {large} KiB >= 64 MiB");
    }
}

/// How much more a 100 MiB file's run may take than a 64 KiB file's.
const GROWTH_KIB: u64 = 32 * 1024;

#[test]
fn wrong_password_fails_clearly_and_changes_nothing() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    let yaml = fs::read_to_string(&flow).unwrap().replace(support::sshd::PASSWORD, "not-the-password");
    fs::write(&flow, yaml).unwrap();
    w.put("in/a.csv", b"x");
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("flow e2e") && t.contains("authentication failed"), "{t}");
    assert!(!t.contains("not-the-password"), "secret leaked: {t}");
    assert!(w.remote("in/a.csv").exists());
    assert!(w.sink_files().is_empty());
}

#[test]
fn unknown_and_changed_host_keys_are_refused_with_the_fingerprint() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    w.put("in/a.csv", b"x");
    // Unknown: an empty known_hosts file.
    let empty = w.dir.path().join("empty_known_hosts");
    fs::write(&empty, "").unwrap();
    let yaml = fs::read_to_string(&flow).unwrap();
    let kh = w.sshd.known_hosts().display().to_string();
    fs::write(&flow, yaml.replace(&kh, &empty.display().to_string())).unwrap();
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains(&w.sshd.fingerprint()) && t.contains("wharf trust"), "{t}");
    // Changed: known_hosts names another key for this host.
    let other = w.dir.path().join("other_known_hosts");
    let fake_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    fs::write(&other, format!("[127.0.0.1]:{} {fake_key}\n", w.sshd.port)).unwrap();
    fs::write(&flow, yaml.replace(&kh, &other.display().to_string())).unwrap();
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    assert!(t.contains("CHANGED") && t.contains(&w.sshd.fingerprint()), "{t}");
    assert!(w.remote("in/a.csv").exists());
    assert!(w.sink_files().is_empty());
}

#[test]
fn remote_names_with_control_characters_never_reach_the_sink() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    w.put("in/evil\n.csv", b"x");
    w.put("in/ok.csv", b"y");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(w.sink_files(), vec!["ok.csv"]);
    assert!(w.remote("in/evil\n.csv").exists(), "the unsafe file is left alone");
    // A flow whose sink path tries to climb out is refused before anything runs.
    let bad = fs::read_to_string(&flow).unwrap().replace("    path: /\n", "    path: /../../etc\n");
    fs::write(&flow, bad).unwrap();
    let out = w.run(&flow);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_remote_name_not_utf8_with_a_line_break_is_logged_on_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "");
    w.put("in/ok.csv", b"y");
    // A partner's name that is not UTF-8 and holds a line break: skipped, and its warning must
    // not forge a log line of its own. Before: `name = %name` wrote the line break as it was.
    let evil = w.remote("in").join(std::ffi::OsStr::from_bytes(b"bad\xff\nERROR forged line.csv"));
    fs::write(&evil, b"x").unwrap();
    w.sshd.give_to_user(w.sshd.data_dir());
    let out = w.run(&flow);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(err.contains("not UTF-8"), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("ERROR forged")), "{err}");
    assert_eq!(w.sink_files(), vec!["ok.csv"]);
    assert!(evil.exists(), "the file is left alone");
}

/// A symbolic link and a FIFO in the served folder are not regular files: never taken, told
/// in every run's report as the server's attributes say (`symlink`, `fifo`), but warned of
/// and raised as a `not_taken` event once while they stay (each run warned of them, which a
/// daemon polling every minute repeated every minute), listed by `wharf status` with why, and
/// gone from it once removed. A link the globs do not take is not told of.
#[test]
fn links_and_fifos_on_the_server_are_told_once_and_listed_by_status() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "");
    w.put("in/ok.csv", b"y");
    std::os::unix::fs::symlink("ok.csv", w.remote("in/link.csv")).unwrap();
    std::os::unix::fs::symlink("ok.csv", w.remote("in/link.txt")).unwrap();
    let made = Command::new("mkfifo").arg(w.remote("in/pipe.csv")).status().unwrap();
    assert!(made.success(), "mkfifo");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(
        r["skipped_names"],
        serde_json::json!([
            {"folder": "/in", "name": "link.csv", "reason": "symlink"},
            {"folder": "/in", "name": "pipe.csv", "reason": "fifo"},
        ]),
        "{r:#}"
    );
    // The second run says it in its summary, not in its log.
    let out = w.run(&flow);
    let (summary, log) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        summary.contains("  2 entries skipped, never taken: /in/link.csv (a symbolic link: only regular files are taken), /in/pipe.csv (a named pipe (FIFO): only regular files are taken)"),
        "{summary}"
    );
    assert!(!log.contains("link.csv") && !log.contains("pipe.csv"), "warned of again by the next run:\n{log}");
    let (code, events) = support::json_of(w.wharf().args(["events", "--json"]));
    let told: Vec<(&str, &str, &str)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["subject"].as_str().unwrap(), e["detail"].as_str().unwrap()))
        .collect();
    let expected = vec![
        ("not_taken", "/in/link.csv", "a symbolic link: only regular files are taken"),
        ("not_taken", "/in/pipe.csv", "a named pipe (FIFO): only regular files are taken"),
    ];
    assert_eq!((code, told), (0, expected), "{events:#}");
    let status = || w.wharf().arg("status").arg("--flows").arg(flow.parent().unwrap()).output().unwrap();
    let out = status();
    assert!(
        support::stdout(&out).contains("! 2 entries in the source can never be taken: /in/link.csv (a symbolic link: only regular files are taken), /in/pipe.csv (a named pipe (FIFO): only regular files are taken)"),
        "{}",
        text(&out)
    );
    fs::remove_file(w.remote("in/link.csv")).unwrap();
    fs::remove_file(w.remote("in/pipe.csv")).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, &r["skipped_names"]), (0, &serde_json::json!([])), "{r:#}");
    let out = status();
    assert!(!support::stdout(&out).contains("never be taken"), "{}", text(&out));
}

/// A recursive pull takes what it can list: a subfolder the login may not read is skipped
/// with a warning, not a reason to take nothing; `wharf status` tells it as a folder, with
/// the server's words (it said `1 file in the source can never be taken: /in/locked`).
#[test]
fn a_subfolder_the_login_may_not_read_is_skipped_by_a_recursive_pull() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    w.put("in/ok/a.csv", b"a");
    w.put("in/locked/b.csv", b"b");
    // A link to the folder above, a loop: never followed (one `a.csv`, not `ok/loop/ok/a.csv`…).
    std::os::unix::fs::symlink("..", w.remote("in/ok/loop")).unwrap();
    // Owned by root, no access for the login.
    std::os::unix::fs::chown(w.remote("in/locked"), Some(0), Some(0)).unwrap();
    fs::set_permissions(w.remote("in/locked"), fs::Permissions::from_mode(0o700)).unwrap();
    let flow = w.flow("  recursive: true\n", "");
    fs::write(&flow, fs::read_to_string(&flow).unwrap().replace("include: [\"*.csv\"]", "include: [\"**/*.csv\"]")).unwrap();
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("Skipping a subfolder that cannot be listed") && t.contains("/in/locked"), "{t}");
    assert_eq!(w.sink_files(), vec!["a.csv"], "{t}");
    // The run's summary and `wharf plan` name it too (before: the log alone, once).
    let line = "1 folder of the source not listed in whole: /in/locked (permission denied: ";
    assert!(support::stdout(&out).contains(line), "{t}");
    let plan = w.wharf().arg("plan").arg(&flow).output().unwrap();
    assert!(support::stdout(&plan).contains(&format!("note: {line}")), "{}", text(&plan));
    let out = w.wharf().arg("status").arg("--flows").arg(flow.parent().unwrap()).output().unwrap();
    let s = support::stdout(&out);
    assert!(s.contains("! 1 subfolder of the source cannot be read: /in/locked (permission denied: "), "{}", text(&out));
    assert!(s.contains("; nothing under it is taken while the listing cannot read it)") && !s.contains("never be taken"), "{}", text(&out));
}

/// A source folder the login may not read (root's, mode 700): the run stops, saying that
/// the login may not list it and what to check; nothing is taken. Before: only "list /in:
/// permission denied: Permission denied".
#[test]
fn a_source_folder_the_login_may_not_read_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    w.put("in/a.csv", b"a");
    std::os::unix::fs::chown(w.remote("in"), Some(0), Some(0)).unwrap();
    fs::set_permissions(w.remote("in"), fs::Permissions::from_mode(0o700)).unwrap();
    let (code, report) = w.run_json(&w.flow("", ""));
    let error = report["error"].as_str().unwrap_or_default();
    assert_eq!((code, report["error_kind"].as_str()), (3, Some("permission_denied")), "{report:#}");
    assert!(error.contains("list /in: permission denied"), "{error}");
    assert!(error.contains("the login may not list the source folder /in (check the folder's permissions for it)"), "{error}");
    assert!(w.sink_files().is_empty());
}

/// Starts `wharf run` halting at `point`, waits for it to get there, and SIGKILLs it.
/// Returns the process's peak RSS (KiB) up to that point.
fn run_and_kill_at(w: &World, flow: &Path, point: &str) -> u64 {
    let mut cmd = w.wharf();
    cmd.arg("run").arg(flow);
    support::halt::run_and_kill_at(cmd, point, Duration::from_secs(60))
}

fn crash_and_recover(point: &str) {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "    if_exists: rename\nafter: { success: { move_to: /in/processed } }\n");
    let bodies: Vec<(String, Vec<u8>)> = (0..3).map(|i| (format!("f{i}.csv"), vec![b'a' + i as u8; 3 * 1024 * 1024 + i])).collect();
    for (n, b) in &bodies {
        w.put(&format!("in/{n}"), b);
    }
    run_and_kill_at(&w, &flow, point);
    let (code, r) = w.run_json(&flow);
    assert_eq!(code, 0, "{r:#}");
    // Every file delivered exactly once (a second delivery would show up as NAME-1.csv).
    let mut names: Vec<String> = bodies.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(w.sink_files(), names, "after a kill at {point}: {r:#}");
    for (n, b) in &bodies {
        assert_eq!(&fs::read(w.sink().join(n)).unwrap(), b, "{n} content after a kill at {point}");
        assert!(!w.remote(&format!("in/{n}")).exists(), "{n} not disposed of");
        assert_eq!(&fs::read(w.remote(&format!("in/processed/{n}"))).unwrap(), b, "{n} not in processed/");
    }
    assert!(!w.remote("in/processed/f0-1.csv").exists());
    // A third run has nothing to do.
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 0, 0), "{r:#}");
    let files = text(&w.wharf().args(["files", "e2e"]).output().unwrap());
    assert_eq!(files.lines().filter(|l| l.starts_with("done")).count(), 3, "{files}");
}

#[test]
fn sigkill_during_download_then_rerun_delivers_everything_once() {
    crash_and_recover("staging");
}

#[test]
fn sigkill_between_delivery_and_disposition_then_rerun_delivers_everything_once() {
    crash_and_recover("delivered");
}

#[test]
fn sigkill_during_disposition_then_rerun_delivers_everything_once() {
    crash_and_recover("disposing");
}

/// SIGKILL as a file was being taken, then the partner removes its source before the rerun:
/// killed once it was delivered under its final name (`renamed`), before the ledger said so,
/// the rerun records it delivered from the target found whole (no second copy), its source
/// gone; killed while downloading (`staging`), nothing delivered, it vanished. Either way as
/// `wharf plan` says beforehand, said once, and nothing left in flight. Before, both stayed
/// in flight for ever, the first never recorded delivered.
fn crash_then_source_removed(point: &str, action: &str, outcome: (u64, u64, u64, u64), state: &str) {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { success: delete }\n");
    let body = vec![b'a'; 3 * 1024 * 1024];
    w.put("in/a.csv", &body);
    run_and_kill_at(&w, &flow, point);
    fs::remove_file(w.remote("in/a.csv")).unwrap();
    let (_, p) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
    let planned = p["files"].as_array().unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!((planned.len(), planned[0]["action"].as_str()), (1, Some(action)), "after a kill at {point}: {p:#}");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, outcome), "after a kill at {point}: {r:#}");
    if point == "renamed" {
        assert_eq!(r["files"][0]["detail"].as_str(), Some("delivered to archive:/a.csv; source deleted"), "{r:#}");
        assert_eq!(w.sink_files(), ["a.csv"]);
        assert_eq!(fs::read(w.sink().join("a.csv")).unwrap(), body);
    } else {
        assert!(w.sink_files().is_empty(), "{:?}", w.sink_files());
    }
    let files = text(&w.wharf().args(["files", "e2e"]).output().unwrap());
    let states: Vec<&str> = files.lines().filter(|l| l.contains("/in/a.csv")).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(states, [state], "{files}");
    let (_, r) = w.run_json(&flow);
    assert_eq!((counts(&r), r["files"].as_array().map(Vec::len)), ((0, 0, 0, 0), Some(0)), "{r:#}");
}

#[test]
fn sigkill_after_the_rename_then_the_source_removed_records_it_delivered_once() {
    crash_then_source_removed("renamed", "resume", (0, 1, 0, 0), "done");
}

#[test]
fn sigkill_during_download_then_the_source_removed_records_it_vanished() {
    crash_then_source_removed("staging", "skip", (0, 0, 1, 0), "vanished");
}

/// SIGKILL while downloading a file in a subfolder, which the login may then no longer read:
/// the rerun cannot list it, so it leaves the file in flight as it was (neither vanished nor
/// failed: its source may well be there), as `wharf plan` does; readable again, the file
/// is resumed and delivered.
#[test]
fn sigkill_during_download_then_its_folder_unreadable_leaves_it_in_flight() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    let flow = w.flow("  recursive: true\n", "");
    fs::write(&flow, fs::read_to_string(&flow).unwrap().replace("include: [\"*.csv\"]", "include: [\"**/*.csv\"]")).unwrap();
    let body = vec![b'b'; 3 * 1024 * 1024];
    w.put("in/locked/b.csv", &body);
    run_and_kill_at(&w, &flow, "staging");
    let mode = fs::metadata(w.remote("in/locked")).unwrap().permissions().mode();
    let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(w.remote("in/locked")).unwrap());
    std::os::unix::fs::chown(w.remote("in/locked"), Some(0), None).unwrap();
    fs::set_permissions(w.remote("in/locked"), fs::Permissions::from_mode(0o700)).unwrap();
    let (_, p) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
    assert_eq!(p["files"].as_array().map(Vec::len), Some(0), "{p:#}");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, r["files"].as_array().map(Vec::len)), (0, Some(0)), "{r:#}");
    let files = text(&w.wharf().args(["files", "e2e"]).output().unwrap());
    let states: Vec<&str> = files.lines().filter(|l| l.contains("/in/locked/b.csv")).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(states, ["staging"], "{files}");
    std::os::unix::fs::chown(w.remote("in/locked"), Some(owner), None).unwrap();
    fs::set_permissions(w.remote("in/locked"), fs::Permissions::from_mode(mode)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.sink().join("b.csv")).unwrap(), body);
}

/// SIGKILL while a file that failed for good (its name on the sink taken, `if_exists: fail`)
/// has its source moved by `after.failure: move_to` (`in/failed/a.csv` taken already, so to
/// `a-1.csv`), then a rerun: killed after the name was recorded and before the move
/// (`failure_disposing`), the rerun takes the file again and moves it; killed after the move
/// (`failure_disposed`), its source no longer listed, the rerun records it failed, moved to
/// the name recorded, as `wharf plan` says beforehand. Either way exactly one copy of the
/// source is left, in `failed/` with its done file, the file `failed` and nothing in flight.
fn failure_crash_and_recover(point: &str) {
    let Some(w) = World::new() else { return };
    let flow = w.flow("  ready: { done_file: \"{{name}}.ok\" }\n", "after: { failure: { move_to: /in/failed } }\n");
    w.put("in/a.csv", b"a,1\n");
    w.put("in/a.csv.ok", b"");
    w.put("in/failed/a.csv", b"yesterday's\n");
    fs::write(w.sink().join("a.csv"), b"someone else's\n").unwrap();
    run_and_kill_at(&w, &flow, point);
    let (_, p) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
    let planned = p["files"].as_array().unwrap_or_else(|| panic!("{p:#}"));
    assert_eq!((planned.len(), &planned[0]["action"]), (1, &serde_json::json!("fail")), "{p:#}");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 0, 1), "after a kill at {point}: {r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("; source moved to /in/failed/a-1.csv"), "after a kill at {point}: {r:#}");
    if point == "failure_disposed" {
        let why = planned[0]["why"].as_str().unwrap();
        assert!(why.ends_with("; source moved to /in/failed/a-1.csv; finished after a crash (it had failed before it)"), "{p:#}");
        assert_eq!(detail, why, "the run did what the plan said");
    }
    let mut names: Vec<String> =
        walk(&w.remote("in")).into_iter().map(|p| p.strip_prefix(w.remote("in")).unwrap().display().to_string()).collect();
    names.sort();
    assert_eq!(names, ["failed/a-1.csv", "failed/a.csv", "failed/a.csv.ok"], "after a kill at {point}");
    assert_eq!(fs::read(w.remote("in/failed/a-1.csv")).unwrap(), b"a,1\n");
    assert_eq!(fs::read(w.remote("in/failed/a.csv")).unwrap(), b"yesterday's\n");
    assert_eq!(w.sink_files(), ["a.csv"]);
    let files = text(&w.wharf().args(["files", "e2e"]).output().unwrap());
    let states: Vec<&str> = files.lines().filter(|l| l.contains("/in/a.csv")).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(states, ["failed"], "{files}");
    // A third run has nothing to do.
    let (_, r) = w.run_json(&flow);
    assert_eq!((counts(&r), r["files"].as_array().map(Vec::len)), ((0, 0, 0, 0), Some(0)), "{r:#}");
}

#[test]
fn sigkill_before_the_failure_move_then_rerun_moves_the_source_once() {
    failure_crash_and_recover("failure_disposing");
}

#[test]
fn sigkill_after_the_failure_move_then_rerun_records_it_failed_where_it_went() {
    failure_crash_and_recover("failure_disposed");
}

/// SIGKILL once a file is recorded failed for good (its name on the sink taken,
/// `if_exists: fail`; its source moved by `after.failure`), before the run's end: the next
/// run closes the killed run and raises its `failed` event, naming the file, once; the runs
/// after it raise none. Before, the event was raised only at the run's end: the kill lost
/// it, and the next run, finding the file settled, told nobody.
#[test]
fn sigkill_once_a_file_failed_for_good_then_the_next_run_raises_its_failed_event() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "after: { failure: { move_to: /in/failed } }\n");
    w.put("in/a.csv", b"a,1\n");
    fs::write(w.sink().join("a.csv"), b"someone else's\n").unwrap();
    run_and_kill_at(&w, &flow, "failed");
    assert!(w.remote("in/failed/a.csv").exists(), "after.failure was applied before the kill");
    for _ in 0..2 {
        let (code, r) = w.run_json(&flow);
        assert_eq!((code, counts(&r), r["files"].as_array().map(Vec::len)), (0, (0, 0, 0, 0), Some(0)), "{r:#}");
    }
    let (_, runs) = support::json_of(w.wharf().args(["runs", "e2e", "--json"]));
    let killed = runs.as_array().and_then(|r| r.iter().find(|r| r["status"] == "aborted")).unwrap_or_else(|| panic!("{runs:#}"));
    assert_eq!(killed["counts"]["failed"], 1, "{runs:#}");
    let (_, events) = support::json_of(w.wharf().args(["events", "e2e", "--json"]));
    let failed: Vec<&serde_json::Value> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "failed").collect();
    assert_eq!(failed.len(), 1, "one `failed` event: {events:#}");
    assert_eq!(failed[0]["run"], killed["id"], "{events:#}");
    let detail = failed[0]["detail"].as_str().unwrap();
    assert!(detail.contains("(interrupted before its end): /in/a.csv failed: ") && detail.contains("already exists"), "{events:#}");
}

/// FIPS-mode and several commercial servers offer only the NIST-curve key exchanges, CTR
/// ciphers and HMAC-SHA1 (some only an ECDSA host key); before, wharf found "no common Kex".
/// A pull from each such server delivers.
#[test]
fn a_server_with_only_nist_curves_ctr_and_hmac_sha1_is_pulled_from() {
    let servers: [&[&str]; 2] = [
        &["KexAlgorithms ecdh-sha2-nistp256", "Ciphers aes128-ctr", "MACs hmac-sha1"],
        &[
            "KexAlgorithms ecdh-sha2-nistp384,ecdh-sha2-nistp521",
            "Ciphers aes256-ctr",
            "MACs hmac-sha1-etm@openssh.com",
            "HostKeyAlgorithms ecdsa-sha2-nistp256",
        ],
    ];
    for extra in servers {
        let Some(w) = World::with_server(extra) else { return };
        let flow = w.flow("", "after: { success: delete }\n");
        w.put("in/a.csv", b"fips");
        let (code, r) = w.run_json(&flow);
        assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{extra:?}: {r:#}\n--- sshd log ---\n{}", w.sshd.log());
        assert_eq!(fs::read(w.sink().join("a.csv")).unwrap(), b"fips");
        assert!(!w.remote("in/a.csv").exists());
    }
}

/// A flow whose source path names a file instead of the folder it is in is told so, as a
/// configuration mistake (before: "not found", which sent people looking for a missing file).
#[test]
fn a_source_path_naming_a_file_says_it_is_a_file() {
    let Some(w) = World::new() else { return };
    fs::remove_dir_all(w.remote("in")).unwrap();
    w.put("in", b"a file where the folder should be");
    let flow = w.flow("", "");
    let out = w.run(&flow);
    let t = text(&out);
    assert!(t.contains("/in is a file, not a folder") && t.contains("configuration error"), "{t}");
    assert!(!t.contains("not found"), "{t}");
    assert_ne!(out.status.code(), Some(0), "{t}");
    assert!(w.sink_files().is_empty());
}

/// A file whose name is as long as names get (255 bytes) sent again under the same name: the
/// new copy is delivered beside the first and the source moved beside the first one in
/// `processed/`, each under a name shortened to fit (`…x-1.csv`), instead of failing every
/// run on a `-1` name the file system refuses as too long.
#[test]
fn a_resent_file_with_a_255_byte_name_gets_a_second_name_that_fits() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("", "    if_exists: rename\nafter: { success: { move_to: /in/processed } }\n");
    let long = format!("{}.csv", "x".repeat(251));
    let second = format!("{}-1.csv", "x".repeat(249));
    w.put(&format!("in/{long}"), b"day 1");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    std::thread::sleep(Duration::from_millis(1100)); // SFTP mtimes have 1 s precision
    w.put(&format!("in/{long}"), b"day 2, longer");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.sink().join(&long)).unwrap(), b"day 1");
    assert_eq!(fs::read(w.sink().join(&second)).unwrap(), b"day 2, longer");
    assert_eq!(fs::read(w.remote(&format!("in/processed/{second}"))).unwrap(), b"day 2, longer");
    assert!(!w.remote(&format!("in/{long}")).exists());
}

/// With `source.ignore_case: true` over SFTP, a partner varying the case of its names varies it
/// on the done file too: `X.CSV.DONE` is `X.CSV`'s `{{name}}.done`, never delivered as data
/// (`include: ["*"]`), and moved with it to `processed/` under its own name. Before, `X.CSV`
/// waited for good and `X.CSV.DONE` was delivered as a file. Two named like `z.csv.done`:
/// `z.csv` waits, its reason naming both, neither delivered; one gone, it is taken.
#[test]
fn with_ignore_case_a_done_file_in_another_case_is_taken_and_moved_with_its_file() {
    let Some(w) = World::new() else { return };
    let flow =
        w.flow("  ignore_case: true\n  ready: { done_file: \"{{name}}.done\" }\n", "after: { success: { move_to: /in/processed } }\n");
    fs::write(&flow, fs::read_to_string(&flow).unwrap().replace("include: [\"*.csv\"]", "include: [\"*\"]")).unwrap();
    for name in ["X.CSV", "X.CSV.DONE", "z.csv", "Z.CSV.DONE", "z.csv.Done"] {
        w.put(&format!("in/{name}"), name.as_bytes());
    }
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (1, 1, 0, 0), "{r:#}");
    let waits = r["files"].as_array().unwrap().iter().find(|f| f["path"] == "/in/z.csv").unwrap();
    assert_eq!(
        waits["detail"],
        "no done file \"z.csv.done\": \"Z.CSV.DONE\" and \"z.csv.Done\" are both there, named like it ignoring case (`ignore_case`), \
         so neither is taken for it; remove or rename the ones that are not it"
    );
    assert_eq!(w.sink_files(), ["X.CSV"]);
    let processed = |w: &World| {
        let mut v: Vec<String> =
            fs::read_dir(w.remote("in/processed")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(processed(&w), ["X.CSV", "X.CSV.DONE"]);
    fs::remove_file(w.remote("in/z.csv.Done")).unwrap();
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(w.sink_files(), ["X.CSV", "z.csv"]);
    assert_eq!(processed(&w), ["X.CSV", "X.CSV.DONE", "Z.CSV.DONE", "z.csv"]);
}
