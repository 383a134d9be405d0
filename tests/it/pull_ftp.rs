//! End-to-end flows through the `wharf` binary against real FTP servers: a pull over FTPS
//! (explicit and implicit, vsftpd) and a push to an FTPS sink (pure-ftpd), byte-exact and
//! exactly once; and the failures a partner's server produces — a wrong password, a
//! certificate that does not match, a refused data connection, a server killed mid-transfer —
//! each with a clear error naming the flow, the endpoint and the file, nothing lost, and a
//! next run that completes the work; and a server that allows fewer sessions than
//! `max_connections`, used with the ones it allows.

use crate::support;
use support::{counts, text, walk};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use wharf::config::flow::FtpTls;

use support::ftpd::{Ftpd, PASSWORD};
use support::{TempDir, tempdir};

/// One test's world: an FTP server, local folders, a state folder and flow files.
struct World {
    ftpd: Ftpd,
    dir: TempDir,
}

impl World {
    fn new(ftpd: Option<Ftpd>) -> Option<World> {
        let w = World { ftpd: ftpd?, dir: tempdir() };
        fs::create_dir_all(w.remote("in")).unwrap();
        fs::create_dir_all(w.local("sink")).unwrap();
        fs::create_dir_all(w.local("outbox")).unwrap();
        w.ftpd.give_to_user(&w.remote("in"));
        Some(w)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.ftpd.data_dir().join(rel)
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Puts a file on the server (owned by the FTP user so it can be moved).
    fn put(&self, rel: &str, body: &[u8]) {
        let p = self.remote(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        self.ftpd.give_to_user(self.ftpd.data_dir());
    }

    /// partner (ftp, `tls`) /in/*.csv → local sink, plus `extra` YAML at the end.
    fn pull_flow(&self, tls: FtpTls, extra: &str) -> PathBuf {
        let yaml = format!(
            "name: e2e\nendpoints:\n  partner:\n{ep}  archive:\n    type: local\n    root: {sink:?}\nsource:\n  endpoint: partner\n  path: /in\n  include: [\"*.csv\"]\nsinks:\n  - endpoint: archive\n    path: /\n{extra}",
            ep = self.ftpd.endpoint_yaml(tls, 4),
            sink = self.local("sink").display().to_string(),
        );
        self.write_flow("pull.yaml", &yaml)
    }

    /// local outbox → partner (ftp, `tls`) `/inbox/YEAR`, plus `extra` YAML at the end.
    fn push_flow(&self, ftpd: &Ftpd, tls: FtpTls, extra: &str) -> PathBuf {
        let yaml = format!(
            "name: push\nendpoints:\n  outbox:\n    type: local\n    root: {outbox:?}\n  partner:\n{ep}source:\n  endpoint: outbox\n  path: /\nsinks:\n  - endpoint: partner\n    path: '/inbox/{{{{date \"YYYY\"}}}}'\n{extra}",
            outbox = self.local("outbox").display().to_string(),
            ep = ftpd.endpoint_yaml(tls, 4),
        );
        self.write_flow("push.yaml", &yaml)
    }

    /// Waits until `child` (a run) has more than `bytes` in its staging folder: a download
    /// under way.
    fn wait_until_staged(&self, child: &mut std::process::Child, bytes: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let staged: u64 = walk(&self.state().join("staging")).iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
            if staged > bytes {
                return;
            }
            assert!(child.try_wait().unwrap().is_none(), "wharf finished before the download was under way");
            assert!(Instant::now() < deadline, "the download never got going\n{}", self.ftpd.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn write_flow(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::write(&p, yaml).unwrap();
        p
    }

    fn wharf(&self) -> Command {
        support::wharf(&self.state())
    }

    fn run(&self, flow: &Path) -> Output {
        self.wharf().arg("run").arg(flow).output().unwrap()
    }

    /// Runs `flow`, which must succeed; its log (standard error).
    fn run_ok(&self, flow: &Path) -> String {
        let out = self.run(flow);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    }

    fn run_json(&self, flow: &Path) -> (i32, serde_json::Value) {
        support::json_of(self.wharf().arg("run").arg("--json").arg(flow))
    }

    fn files_in(&self, dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = walk(dir).into_iter().map(|p| p.strip_prefix(dir).unwrap().display().to_string()).collect();
        v.sort();
        v
    }
}

fn year() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (mut y, mut d) = (1970, secs / 86_400);
    loop {
        let len = if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 { 366 } else { 365 };
        if d < len {
            return y.to_string();
        }
        d -= len;
        y += 1;
    }
}

/// Bytes an ASCII-mode transfer would change: LF, CRLF, a lone CR, NUL and high bytes.
fn tricky_body(n: usize) -> Vec<u8> {
    let mut v = b"id;name\nA;\xc3\xa4\r\nB;x\r\x00\xff\n".to_vec();
    v.extend((0..n).map(|i| (i * 7 % 256) as u8));
    v
}

#[test]
fn pull_over_ftps_is_byte_exact_and_exactly_once() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::Explicit, "    if_exists: rename\nafter: { success: { move_to: /in/processed } }\n");
    let (a, b) = (tricky_body(100_000), tricky_body(3));
    w.put("in/a.csv", &a);
    w.put("in/b.csv", &b);
    w.put("in/skip.txt", b"not matched");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 2, 0, 0)), "{r:#}");
    assert!(fs::read(w.local("sink/a.csv")).unwrap() == a, "a.csv changed on the way");
    assert_eq!(fs::read(w.local("sink/b.csv")).unwrap(), b);
    assert_eq!(fs::read(w.remote("in/processed/a.csv")).unwrap(), a);
    assert!(!w.remote("in/a.csv").exists() && w.remote("in/skip.txt").exists());
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 0, 0), "{r:#}");
    // The same name again, with other content: delivered again, beside the first.
    w.put("in/a.csv", b"second version");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(w.files_in(&w.local("sink")), ["a-1.csv", "a.csv", "b.csv"]);
    assert_eq!(fs::read(w.local("sink/a-1.csv")).unwrap(), b"second version");
}

#[test]
fn pull_over_implicit_ftps_with_a_pinned_certificate() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::Implicit, "after: { success: delete }\n");
    let pinned = fs::read_to_string(&flow).unwrap().replace(
        &format!("ca_file: {:?}", w.ftpd.certs().ca.display().to_string()),
        &format!("fingerprint: {:?}", w.ftpd.certs().fingerprint),
    );
    fs::write(&flow, pinned).unwrap();
    w.put("in/a.csv", &tricky_body(50_000));
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert!(fs::read(w.local("sink/a.csv")).unwrap() == tricky_body(50_000));
    assert!(!w.remote("in/a.csv").exists());
}

#[test]
fn push_from_a_local_folder_to_an_ftps_sink() {
    let Some(w) = World::new(Ftpd::pure_ftpd()) else { return };
    let flow = w.push_flow(&w.ftpd, FtpTls::Explicit, "    if_exists: rename\nafter: { success: delete }\n");
    let body = tricky_body(2 << 20);
    fs::write(w.local("outbox/a.csv"), &body).unwrap();
    fs::write(w.local("outbox/ümlaut b.csv"), b"b").unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 2, 0, 0)), "{r:#}");
    let inbox = w.remote(&format!("inbox/{}", year()));
    assert_eq!(w.files_in(&inbox), ["a.csv", "ümlaut b.csv"], "no temporary names left");
    assert!(fs::read(inbox.join("a.csv")).unwrap() == body);
    assert!(w.files_in(&w.local("outbox")).is_empty());
    // A second file of the same name does not overwrite the first.
    fs::write(w.local("outbox/a.csv"), b"again").unwrap();
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(fs::read(inbox.join("a-1.csv")).unwrap(), b"again");
    assert!(fs::read(inbox.join("a.csv")).unwrap() == body);
}

/// A server that refuses renames: the upload fails with the server's refusal named, and its
/// temporary file does not stay behind on the partner's server (a small file and a big one).
#[test]
fn a_refused_rename_leaves_no_temporary_file_behind() {
    let Some(w) = World::new(Ftpd::vsftpd_with(&["cmds_denied=RNFR,RNTO"])) else { return };
    let flow = w.push_flow(&w.ftpd, FtpTls::None, "");
    fs::write(w.local("outbox/a.csv"), b"small").unwrap();
    fs::write(w.local("outbox/b.csv"), tricky_body(2 << 20)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (1, (0, 0, 0, 2)), "{r:#}");
    assert!(r["files"][0]["detail"].as_str().unwrap().contains("rename"), "{r:#}");
    assert!(w.files_in(&w.remote(&format!("inbox/{}", year()))).is_empty(), "temporary files left");
    assert!(w.local("outbox/a.csv").exists() && w.local("outbox/b.csv").exists());
}

/// A partner's name that is not UTF-8 and holds a line break and a terminal escape: skipped,
/// and its warning stays one line. Before: `line = %line` wrote the listing line as it was,
/// so the name's second half stood in the log as a line of its own.
#[test]
fn a_remote_name_not_utf8_with_a_line_break_is_logged_on_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::Explicit, "");
    w.put("in/ok.csv", b"y");
    let evil = w.remote("in").join(std::ffi::OsStr::from_bytes(b"bad\xff\x1b[2K\nERROR forged line.csv"));
    fs::write(&evil, b"x").unwrap();
    w.ftpd.give_to_user(w.ftpd.data_dir());
    let err = w.run_ok(&flow);
    let warning = err.lines().find(|l| l.contains("not safe to use")).unwrap_or_else(|| panic!("no warning: {err}"));
    assert!(warning.contains("forged line.csv") && !warning.contains('\x1b'), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("ERROR forged")), "{err}");
    assert_eq!(w.files_in(&w.local("sink")).len(), 1, "{err}");
    assert!(evil.exists(), "the file is left alone");
}

#[test]
fn wrong_password_fails_clearly_and_changes_nothing() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::Explicit, "after: { success: delete }\n");
    fs::write(&flow, fs::read_to_string(&flow).unwrap().replace(PASSWORD, "not-the-password")).unwrap();
    w.put("in/a.csv", b"x");
    let out = w.run(&flow);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(3), "{t}");
    let endpoint = format!("ftps wharftest@127.0.0.1:{}", w.ftpd.port());
    assert!(t.contains("flow e2e") && t.contains(&endpoint) && t.contains("authentication failed"), "{t}");
    assert!(!t.contains("not-the-password"), "secret leaked: {t}");
    assert!(w.remote("in/a.csv").exists());
    assert!(w.files_in(&w.local("sink")).is_empty());
}

#[test]
fn a_certificate_that_does_not_match_is_refused_with_its_fingerprint() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::Explicit, "after: { success: delete }\n");
    let yaml = fs::read_to_string(&flow).unwrap();
    let certs = w.ftpd.certs();
    let ca_line = format!("ca_file: {:?}", certs.ca.display().to_string());
    w.put("in/a.csv", b"x");
    let wrong_pin = format!("SHA256:{}", ["0F"; 32].join(":"));
    for (replacement, why) in [
        (format!("ca_file: {:?}", certs.other_ca.display().to_string()), "is not trusted"),
        (format!("fingerprint: {wrong_pin:?}"), "does not match the pinned fingerprint"),
    ] {
        fs::write(&flow, yaml.replace(&ca_line, &replacement)).unwrap();
        let out = w.run(&flow);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(3), "{t}");
        assert!(t.contains("flow e2e") && t.contains(why), "{t}");
        assert!(t.contains(&format!("fingerprint: \"{}\"", certs.fingerprint)), "says how to pin it: {t}");
        assert!(w.remote("in/a.csv").exists());
        assert!(w.files_in(&w.local("sink")).is_empty());
    }
    // Pinned as the message says: delivered.
    fs::write(&flow, yaml.replace(&ca_line, &format!("fingerprint: {:?}", certs.fingerprint))).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
}

#[test]
fn a_refused_data_connection_fails_the_file_and_the_next_run_delivers_it() {
    // EPSV unknown (-b), and the one passive port the server may use is taken (by this test):
    // no data connection can be made. (A PASV reply naming another address is not followed:
    // the data connection goes to the server's own address, see partner_servers.rs.)
    let blocker = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blocker.local_addr().unwrap().port();
    let range = format!("{port}:{port}");
    let Some(w) = World::new(Ftpd::pure_ftpd_with(&["-b", "-p", &range])) else { return };
    let Some(good) = Ftpd::pure_ftpd() else { return };
    let extra = "after: { success: delete }\nretry: { attempts: 2, backoff: 200ms }\n";
    fs::write(w.local("outbox/a.csv"), b"payload").unwrap();
    let flow = w.push_flow(&w.ftpd, FtpTls::Explicit, extra);
    let out = w.run(&flow);
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    let endpoint = format!("ftps wharftest@127.0.0.1:{}", w.ftpd.port());
    assert!(t.contains("push") && t.contains(&endpoint) && t.contains("a.csv"), "{t}");
    assert!(t.contains("425"), "the server's refusal of the data connection: {t}");
    assert_eq!(fs::read(w.local("outbox/a.csv")).unwrap(), b"payload", "the source is kept");
    // The partner fixes the server (here: another one, same flow): the next run delivers.
    let flow = w.push_flow(&good, FtpTls::Explicit, extra);
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(good.data_dir().join(format!("inbox/{}/a.csv", year()))).unwrap(), b"payload");
    assert!(!w.local("outbox/a.csv").exists());
}

#[test]
fn a_server_killed_mid_download_then_the_next_run_resumes_and_delivers() {
    // 1 MB/s, so the kill lands in the middle of the file.
    let Some(w) = World::new(Ftpd::vsftpd_with(&["local_max_rate=1000000"])) else { return };
    let flow = w.pull_flow(FtpTls::Explicit, "after: { success: delete }\nretry: { attempts: 2, backoff: 200ms }\n");
    let body = tricky_body(5 << 20);
    w.put("in/big.csv", &body);
    let mut child = w.wharf().arg("run").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Wait until part of the file is in staging, then kill the server and its sessions.
    w.wait_until_staged(&mut child, 1 << 20);
    w.ftpd.stop();
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_ne!(out.status.code(), Some(0), "{t}");
    let endpoint = format!("ftps wharftest@127.0.0.1:{}", w.ftpd.port());
    assert!(t.contains("e2e") && t.contains(&endpoint) && t.contains("/in/big.csv"), "{t}");
    assert!(w.files_in(&w.local("sink")).is_empty(), "nothing half-delivered");
    assert!(fs::read(w.remote("in/big.csv")).unwrap() == body, "the source is untouched");
    // The server is back: the next run continues the download where it stopped.
    w.ftpd.restart();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert!(fs::read(w.local("sink/big.csv")).unwrap() == body, "content differs after the resume");
    assert!(!w.remote("in/big.csv").exists());
    assert!(w.ftpd.log().contains("\"REST "), "resumed with REST:\n{}", w.ftpd.log());
}

/// The process serving the login dies mid-download: vsftpd's privileged process of the login
/// ends it with a `500 OOPS: …` (`child died`, `priv_sock_get_cmd`). That is a lost
/// connection, retried within the run and delivered once — it was taken for a protocol error,
/// which failed the file for good and had `after.failure` move it to `failed/`.
#[test]
fn a_login_whose_server_process_dies_mid_download_is_retried_and_delivered() {
    let Some(w) = World::new(Ftpd::vsftpd_with(&["local_max_rate=1000000"])) else { return };
    let extra = "after: { success: delete, failure: { move_to: /in/failed } }\nretry: { attempts: 2, backoff: 200ms }\n";
    let flow = w.pull_flow(FtpTls::None, extra);
    let body = tricky_body(3 << 20);
    w.put("in/big.csv", &body);
    let mut child = w.wharf().arg("run").arg("--json").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    w.wait_until_staged(&mut child, 1 << 20);
    w.ftpd.kill_session_workers();
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!((out.status.code(), counts(&r)), (Some(0), (0, 1, 0, 0)), "{r:#}\n{}", text(&out));
    assert!(text(&out).contains("(and the server closed the session)"), "the kill landed mid-download: {}", text(&out));
    assert!(fs::read(w.local("sink/big.csv")).unwrap() == body, "content differs after the retry");
    assert!(!w.remote("in/big.csv").exists() && !w.remote("in/failed").exists(), "{r:#}");
}

/// The partner puts a new file in place of one while it is downloaded, one the download cannot
/// tell from the one it read (smaller, with the same time to the second; one with a later
/// time or more bytes makes the file not ready: `stage::not_grown`): the old one is
/// delivered, the new one is not deleted with it (`after: delete`), and the next run delivers
/// it.
#[test]
fn a_source_replaced_while_it_is_downloaded_is_not_deleted() {
    // 1 MB/s: the 2 MB file takes about two seconds.
    let Some(w) = World::new(Ftpd::vsftpd_with(&["local_max_rate=1000000"])) else { return };
    let flow = w.pull_flow(FtpTls::None, "    if_exists: rename\nafter: { success: delete }\n");
    let old = tricky_body(2 << 20);
    w.put("in/orders.csv", &old);
    let mut child = w.wharf().arg("run").arg("--json").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    w.wait_until_staged(&mut child, 256 << 10);
    let listed = fs::metadata(w.remote("in/orders.csv")).unwrap().modified().unwrap();
    w.put("in/orders.new", b"new,orders\n");
    fs::File::options().write(true).open(w.remote("in/orders.new")).unwrap().set_modified(listed).unwrap();
    fs::rename(w.remote("in/orders.new"), w.remote("in/orders.csv")).unwrap();
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("source kept: it changed while it was moved"), "{detail}");
    assert!(fs::read(w.local("sink/orders.csv")).unwrap() == old);
    assert_eq!(fs::read(w.remote("in/orders.csv")).unwrap(), b"new,orders\n");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.local("sink/orders-1.csv")).unwrap(), b"new,orders\n");
    assert!(!w.remote("in/orders.csv").exists());
}

/// A file the partner appends to while it is downloaded: vsftpd sends only the bytes it had
/// when the download opened it, so the download ends at the listed size, whole by every count
/// the stream gives. Not taken (before: the first 2 MiB were delivered as the file, and the
/// whole file failed every later run on `if_exists: fail`); the next run delivers all of it.
#[test]
fn a_file_appended_to_while_it_is_downloaded_is_not_delivered_cut_short() {
    // 1 MB/s: the 2 MiB file takes about two seconds.
    let Some(w) = World::new(Ftpd::vsftpd_with(&["local_max_rate=1000000"])) else { return };
    let flow = w.pull_flow(FtpTls::None, "after: { success: delete }\n");
    let mut body = tricky_body(2 << 20);
    w.put("in/orders.csv", &body);
    let mut child = w.wharf().arg("run").arg("--json").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    w.wait_until_staged(&mut child, 256 << 10);
    use std::io::Write;
    let more = b"the,last,rows\n".repeat(10);
    fs::OpenOptions::new().append(true).open(w.remote("in/orders.csv")).unwrap().write_all(&more).unwrap();
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(counts(&r), (1, 0, 0, 0), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("/in/orders.csv grew past {} bytes while it was downloaded", body.len())), "{detail}");
    assert!(w.files_in(&w.local("sink")).is_empty(), "{r:#}");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    body.extend_from_slice(&more);
    assert!(fs::read(w.local("sink/orders.csv")).unwrap() == body);
    assert!(!w.remote("in/orders.csv").exists());
}

/// A file the partner rewrites in place at the same size while it is downloaded: not
/// delivered with the old version's start and the new one's end, but not ready — its `MDTM`
/// now is not the one sent with the download (like with like: never a `LIST` time); the next
/// run delivers the new version whole.
#[test]
fn a_file_rewritten_at_the_same_size_while_it_is_downloaded_is_not_delivered_mixed() {
    use std::io::{Seek, Write};
    // 1 MB/s: the 2 MiB file takes about two seconds.
    let Some(w) = World::new(Ftpd::vsftpd_with(&["local_max_rate=1000000"])) else { return };
    let flow = w.pull_flow(FtpTls::None, "after: { success: delete }\n");
    let mut body = tricky_body(2 << 20);
    w.put("in/orders.csv", &body);
    // Written a minute ago: the rewrite's time differs at MDTM's precision (seconds).
    let f = fs::File::options().write(true).open(w.remote("in/orders.csv")).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(60)).unwrap();
    drop(f);
    let mut child = w.wharf().arg("run").arg("--json").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    w.wait_until_staged(&mut child, 256 << 10);
    let mut f = fs::File::options().write(true).open(w.remote("in/orders.csv")).unwrap();
    f.seek(std::io::SeekFrom::Start(0)).unwrap();
    f.write_all(&[b'N'; 4096]).unwrap();
    body[..4096].fill(b'N');
    drop(f);
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!(counts(&r), (1, 0, 0, 0), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("/in/orders.csv was modified while it was downloaded"), "{detail}");
    assert!(w.files_in(&w.local("sink")).is_empty(), "{r:#}");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert!(fs::read(w.local("sink/orders.csv")).unwrap() == body);
}

/// A file the partner cuts short while it is downloaded, and the connection lost: the retry
/// resumes where the download stopped, past the file's new end, which pure-ftpd refuses
/// (`554 Restart offset … is too large for file size`). The file changed: not taken in this
/// run, as any file found changed (before: failed, with a `failed` event and exit 1), and
/// the next run takes what is there.
#[test]
fn a_file_cut_short_while_it_is_downloaded_is_not_ready_not_failed() {
    // 1000 KB/s: the 2 MiB file takes about two seconds.
    let Some(w) = World::new(Ftpd::pure_ftpd_with(&["-T", "1000"])) else { return };
    let flow = w.pull_flow(FtpTls::None, "");
    w.put("in/orders.csv", &tricky_body(2 << 20));
    let mut child = w.wharf().arg("run").arg("--json").arg(&flow).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    w.wait_until_staged(&mut child, 256 << 10);
    fs::OpenOptions::new().write(true).open(w.remote("in/orders.csv")).unwrap().set_len(1000).unwrap();
    w.ftpd.kill_sessions();
    let out = child.wait_with_output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", text(&out)));
    assert_eq!((out.status.code(), counts(&r)), (Some(0), (1, 0, 0, 0)), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("/in/orders.csv has 1000 bytes, but the listing said"), "{detail}");
    assert!(w.files_in(&w.local("sink")).is_empty(), "{r:#}");
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.local("sink/orders.csv")).unwrap(), tricky_body(2 << 20)[..1000]);
}

/// A partner's file dated before 1970 (an old archive's date kept by its upload): vsftpd's
/// `MDTM` says `19600101000000`, which wharf could not read, and the whole listing failed
/// with it: the run aborted (exit 3), no file taken. It is taken like the others.
#[test]
fn a_file_dated_before_1970_is_taken_with_the_others() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::None, "");
    w.put("in/old.csv", b"old");
    w.put("in/new.csv", b"new");
    let old = std::time::UNIX_EPOCH - Duration::from_secs(315_619_200); // 1960-01-01
    fs::File::options().write(true).open(w.remote("in/old.csv")).unwrap().set_modified(old).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 2, 0, 0)), "{r:#}");
    assert_eq!(fs::read(w.local("sink/old.csv")).unwrap(), b"old");
}

/// A slow file keeps its own place in flight, not the places of the files after it: with
/// two files in flight, twenty small files all arrive while a big one (3 MB at the server's
/// 1 MB/s) is still on its way. The report keeps the listing order.
#[test]
fn a_slow_file_does_not_hold_back_the_files_after_it() {
    let Some(w) = World::new(Ftpd::vsftpd_with(&["local_max_rate=1000000"])) else { return };
    let flow = w.pull_flow(FtpTls::None, "concurrency: 2\n");
    w.put("in/a-big.csv", &tricky_body(3 << 20));
    for i in 0..20 {
        w.put(&format!("in/b{i:02}.csv"), b"x\n");
    }
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 21, 0, 0)), "{r:#}");
    let paths: Vec<&str> = r["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    assert_eq!(paths, sorted, "reported in listing order");
    let modified = |name: &str| fs::metadata(w.local("sink").join(name)).unwrap().modified().unwrap();
    let big = modified("a-big.csv");
    for i in 0..20 {
        let name = format!("b{i:02}.csv");
        assert!(modified(&name) < big, "{name} arrived after the big file");
    }
}

/// A partner's server that allows fewer sessions than `max_connections` (4 by default):
/// vsftpd's `max_per_ip=2` turns the third login away at the greeting (421). The run goes on
/// with the two logins it has — one warning, no file failed or retried — big files included,
/// which hold a login for their whole transfer.
#[test]
fn a_server_allowing_fewer_sessions_than_max_connections_is_used_with_the_ones_it_allows() {
    let Some(w) = World::new(Ftpd::vsftpd_with(&["max_per_ip=2"])) else { return };
    let flow = w.pull_flow(FtpTls::None, "");
    for i in 0..40 {
        w.put(&format!("in/b{i:02}.csv"), b"x\n");
    }
    for i in 0..3 {
        w.put(&format!("in/big{i}.csv"), &tricky_body(3 << 20));
    }
    let stderr = w.run_ok(&flow);
    assert_eq!(w.files_in(&w.local("sink")).len(), 43);
    assert_eq!(stderr.matches("turned away a login").count(), 1, "{stderr}");
    assert!(!stderr.contains("retrying"), "no file failed for want of a login: {stderr}");
}

/// A file waiting for a login behind transfers longer than `connect_timeout` +
/// `operation_timeout` (1 + 2 s here; each file takes about 4 s at the server's 1 MB/s)
/// keeps waiting while they move data, instead of failing with "stayed busy" into retries.
#[test]
fn a_file_waiting_behind_long_transfers_waits_while_they_move() {
    let Some(w) = World::new(Ftpd::vsftpd_with(&["max_per_ip=2", "local_max_rate=1000000"])) else { return };
    let ep = w.ftpd.endpoint_yaml(FtpTls::None, 4).replace("operation_timeout: 10s", "operation_timeout: 2s\n    connect_timeout: 1s");
    let yaml = format!(
        "name: e2e\nendpoints:\n  partner:\n{ep}  archive:\n    type: local\n    root: {sink:?}\nsource:\n  endpoint: partner\n  path: /in\n  include: [\"*.csv\"]\nsinks:\n  - endpoint: archive\n    path: /\n",
        sink = w.local("sink").display().to_string(),
    );
    let flow = w.write_flow("slow.yaml", &yaml);
    for i in 0..3 {
        w.put(&format!("in/big{i}.csv"), &tricky_body(4 << 20));
    }
    let stderr = w.run_ok(&flow);
    assert_eq!(w.files_in(&w.local("sink")).len(), 3);
    assert!(!stderr.contains("retrying"), "no file gave up waiting for a login: {stderr}");
}

/// The same for a push to pure-ftpd with two sessions at once (`-c 2`; its per-user limit,
/// `-y`, would count the sessions of every test on this machine).
#[test]
fn a_push_to_a_server_allowing_two_sessions_delivers_everything() {
    let Some(w) = World::new(Ftpd::pure_ftpd_with(&["-c", "2"])) else { return };
    let flow = w.push_flow(&w.ftpd, FtpTls::None, "after: { success: delete }\n");
    for i in 0..30 {
        fs::write(w.local(&format!("outbox/s{i:02}.csv")), b"x\n").unwrap();
    }
    fs::write(w.local("outbox/big.csv"), tricky_body(3 << 20)).unwrap();
    let stderr = w.run_ok(&flow);
    assert_eq!(w.files_in(&w.remote(&format!("inbox/{}", year()))).len(), 31);
    assert!(stderr.contains("turned away a login") && !stderr.contains("retrying"), "{stderr}");
}

/// A partner's file whose name ends in a space is delivered and moved to `processed/` under
/// its name with the spaces as `_`, on every server. The ftp endpoint creates no names ending
/// in a space; it once made an exception for a move under the source's own name, which
/// vsftpd stores as it is, but pure-ftpd stores as `a.csv_`: the run reported a name that was
/// not there, and the next day's `a.csv ` was moved over the first one's `a.csv_`.
#[test]
fn a_source_whose_name_ends_in_a_space_is_moved_to_processed() {
    for ftpd in [Ftpd::vsftpd(), Ftpd::pure_ftpd()] {
        let Some(w) = World::new(ftpd) else { return };
        let flow = w.pull_flow(FtpTls::Explicit, "    if_exists: rename\nafter: { success: { move_to: /in/processed } }\n");
        fs::write(&flow, fs::read_to_string(&flow).unwrap().replace("include: [\"*.csv\"]", "include: [\"*.csv*\"]")).unwrap();
        for (day, body, moved) in [(1, &b"a"[..], "a.csv_"), (2, b"bb", "a-1.csv_")] {
            w.put("in/a.csv ", body);
            let (code, r) = w.run_json(&flow);
            assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "day {day}: {r:#}");
            assert!(r["files"][0]["detail"].as_str().unwrap().ends_with(&format!("moved to /in/processed/{moved}")), "{r:#}");
            assert_eq!(fs::read(w.remote(&format!("in/processed/{moved}"))).unwrap(), body, "{r:#}");
            assert!(!w.remote("in/a.csv ").exists());
        }
        assert_eq!(w.files_in(&w.remote("in/processed")), ["a-1.csv_", "a.csv_"], "the first day's file kept");
        assert_eq!(w.files_in(&w.local("sink")), ["a-1.csv ", "a.csv "]);
        let (code, r) = w.run_json(&flow);
        assert_eq!((code, counts(&r)), (0, (0, 0, 0, 0)), "{r:#}");
    }
}

/// A refused file whose name ends in a space is quarantined over FTP under the name wharf
/// chose and records (`a.csv_`, then `a-1.csv_`), as `wharf plan` says beforehand, and its
/// source moved to `after.failure`'s folder likewise. Before, the copy kept the source's name:
/// vsftpd refused it (the quarantine failed), and pure-ftpd stored it as `a.csv_` behind
/// wharf's back while the ledger named `a.csv `, which `wharf quarantine` could not find.
#[test]
fn a_refused_file_whose_name_ends_in_a_space_is_quarantined_under_a_name_wharf_chose() {
    for ftpd in [Ftpd::vsftpd(), Ftpd::pure_ftpd()] {
        let Some(w) = World::new(ftpd) else { return };
        let extra = "steps:\n  - check: { min_size: 10 }\nquarantine: { endpoint: partner, path: /rejected, report: false }\n\
                     after: { failure: { move_to: /in/failed } }\n";
        let flow = w.pull_flow(FtpTls::Explicit, extra);
        fs::write(&flow, fs::read_to_string(&flow).unwrap().replace("include: [\"*.csv\"]", "include: [\"*.csv*\"]")).unwrap();
        for (day, body, named) in [(1, &b"a"[..], "a.csv_"), (2, b"bb", "a-1.csv_")] {
            w.put("in/a.csv ", body);
            let (code, p) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
            assert_eq!(code, 0, "{p:#}");
            let why = p["files"][0]["why"].as_str().unwrap_or_default();
            assert!(why.starts_with(&format!("would be quarantined to partner:/rejected/{named} by a check step")), "day {day}: {p:#}");
            let (code, r) = w.run_json(&flow);
            assert_eq!((code, r["quarantined"].as_u64()), (0, Some(1)), "day {day}: {r:#}");
            let detail = r["files"][0]["detail"].as_str().unwrap();
            assert!(detail.starts_with(&format!("quarantined to partner:/rejected/{named}: ")), "day {day}: {r:#}");
            assert!(detail.ends_with(&format!("; source moved to /in/failed/{named}")), "day {day}: {r:#}");
            assert_eq!(fs::read(w.remote(&format!("rejected/{named}"))).unwrap(), body, "{r:#}");
            assert_eq!(fs::read(w.remote(&format!("in/failed/{named}"))).unwrap(), body, "{r:#}");
            assert!(!w.remote("in/a.csv ").exists());
        }
        assert_eq!(w.files_in(&w.remote("rejected")), ["a-1.csv_", "a.csv_"], "the first day's copy kept");
        // What the ledger recorded is where the copy is: `wharf quarantine` finds it (the
        // first day's too, an earlier file under the name: `--copy` says which).
        let out =
            w.wharf().arg("quarantine").arg("release").arg(&flow).arg("/in/a.csv ").arg("--copy=/rejected/a-1.csv_").output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(w.files_in(&w.remote("rejected")), ["a.csv_"], "the second day's copy released");
        let out = w.wharf().arg("quarantine").arg("release").arg(&flow).arg("/in/a.csv ").output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        assert!(w.files_in(&w.remote("rejected")).is_empty(), "the first day's copy released");
    }
}

/// A partner's file named so that wharf cannot use the name (a line feed in it, bytes that are
/// not UTF-8) was left out of the listing with a warning naming neither flow nor run, and the
/// run said `ok` with nothing seen, every time. It is in the run's report now (JSON and text),
/// and in one log line naming the flow and the run; the run is still `ok`, and a name the
/// globs do not take is not told of.
#[test]
fn a_file_skipped_for_its_name_is_in_the_report_and_the_log_names_the_flow() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.pull_flow(FtpTls::None, "");
    w.put("in/good.csv", b"ok");
    w.put("in/bad\nname.csv", b"x");
    let not_utf8 = w.remote("in").join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xc3.csv"));
    fs::write(&not_utf8, b"x").unwrap();
    w.ftpd.give_to_user(&not_utf8);
    w.put("in/other\n.txt", b"not matched");
    let out = w.wharf().arg("run").arg("--json").arg(&flow).output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!((out.status.code(), r["status"].as_str(), counts(&r)), (Some(0), Some("ok"), (0, 1, 0, 0)), "{r:#}");
    assert_eq!(
        r["skipped_names"],
        serde_json::json!([
            {"folder": "/in", "name": "bad\\nname.csv", "reason": "control_char"},
            {"folder": "/in", "name": "caf\u{fffd}.csv", "reason": "not_utf8"},
        ]),
        "{r:#}"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log.lines().find(|l| l.contains("bad\\nname.csv")).unwrap_or_else(|| panic!("no log line for it:\n{log}"));
    assert!(
        line.contains("flow=e2e") && line.contains("run=1") && line.contains("folder=/in") && line.contains("control character"),
        "{line}"
    );
    assert!(!log.contains("other\\n.txt"), "a name the globs do not take is not told of: {log}");
    // The text summary says it in one line.
    let out = w.run(&flow);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        summary.contains("  2 entries skipped, never taken: /in/bad\\nname.csv (a control character in the name; rename it on the source to have it taken), /in/caf\u{fffd}.csv (the name is not UTF-8; rename it on the source to have it taken)"),
        "{summary}"
    );
    // Warned of once, not by every run (each `wharf run` is a process of its own): the ledger
    // keeps the names, with a `not_taken` event each, and `wharf status` shows them.
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("bad\\nname.csv"), "warned of again by the next run:\n{log}");
    let (code, events) = support::json_of(w.wharf().args(["events", "--json"]));
    let told: Vec<(&str, &str)> =
        events.as_array().unwrap().iter().map(|e| (e["kind"].as_str().unwrap(), e["subject"].as_str().unwrap())).collect();
    assert_eq!((code, told), (0, vec![("not_taken", "/in/bad\\nname.csv"), ("not_taken", "/in/caf\u{fffd}.csv")]), "{events:#}");
    let out = w.wharf().arg("status").arg("--flows").arg(flow.parent().unwrap()).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "! 2 entries in the source can never be taken: /in/bad\\nname.csv (a control character in the name; rename it on the source to have it taken), /in/caf\u{fffd}.csv (the name is not UTF-8; rename it on the source to have it taken)"
        ),
        "{}",
        text(&out)
    );
}

/// A source path that is a symbolic link to nothing is not found, as over SFTP; it read
/// "permission denied: /dang is there, but the server refuses this login access to it". A
/// link to a folder the login may not enter is still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dangling_symlink_is_not_found_and_a_link_to_a_locked_folder_is_refused() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    use wharf::endpoint::ftp::FtpEndpoint;
    use wharf::endpoint::{Endpoint, ErrorKind, RemotePath};
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let data = ftpd.data_dir();
    fs::create_dir_all(data.join("in")).unwrap();
    fs::create_dir_all(data.join("private")).unwrap();
    ftpd.give_to_user(data);
    symlink("nowhere", data.join("dang")).unwrap();
    symlink(data.join("in/gone.csv"), data.join("in/dang.csv")).unwrap();
    symlink("private", data.join("locked")).unwrap();
    fs::set_permissions(data.join("private"), fs::Permissions::from_mode(0o000)).unwrap();
    std::os::unix::fs::chown(data.join("private"), Some(0), Some(0)).unwrap();
    let p = |s: &str| RemotePath::parse(s).unwrap();
    for tls in [FtpTls::None, FtpTls::Explicit] {
        let ep = FtpEndpoint::new(ftpd.spec(tls));
        let err = ep.list(&p("dang")).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::NotFound, "{tls:?}: {err}");
        assert!(err.to_string().contains("/dang is a symbolic link to nowhere, which does not exist"), "{err}");
        let err = ep.open_read(&p("in/dang.csv"), 0).await.err().expect("not found");
        assert_eq!(err.kind, ErrorKind::NotFound, "{tls:?}: {err}");
        let err = ep.list(&p("locked")).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::PermissionDenied, "{tls:?}: {err}");
    }
}

/// A file the login may not read yet (a partner's upload left readable to its owner only until
/// it is done), small (read whole) and large (streamed), among a readable one, on `ftpd`, over
/// a plain connection (`EPSV` and `RETR` in one write) and over FTPS (suppaftp's `RETR`): not
/// ready, saying why with the file's path — not failed, not moved to `failed/` by
/// `after.failure`, and `wharf status` lists it — and delivered once readable. vsftpd refuses
/// it as it refuses a missing file (`550 Failed to open file.`), pure-ftpd in its own words:
/// the file still there tells them apart (`FtpEndpoint::refusal`), never the reply's text.
fn a_file_the_login_may_not_read_yet_waits_on(ftpd: fn() -> Option<Ftpd>) {
    use std::os::unix::fs::PermissionsExt;
    for tls in [FtpTls::None, FtpTls::Explicit] {
        let Some(w) = World::new(ftpd()) else { return };
        let flow = w.pull_flow(tls, "after: { success: { move_to: /in/processed }, failure: { move_to: /in/failed } }\n");
        let big: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        w.put("in/a.csv", b"a");
        w.put("in/b.csv", b"b");
        w.put("in/big.csv", &big);
        for name in ["b.csv", "big.csv"] {
            fs::set_permissions(w.remote(&format!("in/{name}")), fs::Permissions::from_mode(0o000)).unwrap();
        }
        for run in 1..=2 {
            let (code, r) = w.run_json(&flow);
            let delivered = if run == 1 { 1 } else { 0 };
            assert_eq!((code, counts(&r)), (0, (2, delivered, 0, 0)), "{tls:?}, run {run}: {r:#}\n{}", w.ftpd.log());
            let waiting: Vec<&serde_json::Value> = r["files"].as_array().unwrap().iter().filter(|f| f["outcome"] == "not_ready").collect();
            assert_eq!(waiting.len(), 2, "{r:#}");
            for f in waiting {
                let (path, detail) = (f["path"].as_str().unwrap(), f["detail"].as_str().unwrap());
                assert!(detail.starts_with("the login may not read it yet: "), "{tls:?}: {detail}");
                assert!(detail.contains(&format!("read {path}: permission denied")), "{tls:?}: {detail}");
                assert!(detail.contains("taken once it is readable"), "{tls:?}: {detail}");
            }
            assert!(!w.remote("in/failed").exists(), "{tls:?}, run {run}: {r:#}");
            assert!(w.remote("in/b.csv").exists() && w.remote("in/big.csv").exists(), "{tls:?}, run {run}");
        }
        assert_eq!(w.files_in(&w.local("sink")), ["a.csv"], "{tls:?}");
        let status = w.wharf().arg("status").arg("--flows").arg(w.dir.path()).output().unwrap();
        let shown = String::from_utf8_lossy(&status.stdout);
        assert!(shown.contains("2 files in the source not taken yet: /in/b.csv (the login may not read it yet: "), "{tls:?}: {shown}");
        for name in ["b.csv", "big.csv"] {
            fs::set_permissions(w.remote(&format!("in/{name}")), fs::Permissions::from_mode(0o644)).unwrap();
        }
        let (code, r) = w.run_json(&flow);
        assert_eq!((code, counts(&r)), (0, (0, 2, 0, 0)), "{tls:?}: {r:#}");
        assert_eq!(fs::read(w.local("sink/b.csv")).unwrap(), b"b");
        assert!(fs::read(w.local("sink/big.csv")).unwrap() == big, "{tls:?}");
        assert!(w.remote("in/processed/big.csv").exists() && !w.remote("in/failed").exists(), "{tls:?}");
    }
}

#[test]
fn a_file_the_login_may_not_read_yet_is_not_ready_over_vsftpd() {
    a_file_the_login_may_not_read_yet_waits_on(Ftpd::vsftpd);
}

#[test]
fn a_file_the_login_may_not_read_yet_is_not_ready_over_pure_ftpd() {
    a_file_the_login_may_not_read_yet_waits_on(Ftpd::pure_ftpd);
}

/// With `source.ignore_case: true` over FTP (vsftpd), a partner varying the case of its names
/// varies it on the done file too: `X.CSV.DONE` is `X.CSV`'s `{{name}}.done`, never delivered
/// as data (`include: ["*"]`), and moved with it to `processed/` under its own name (found by
/// listing its folder). Before, `X.CSV` waited for good and `X.CSV.DONE` was delivered as a
/// file. Two named like `z.csv.done`: `z.csv` waits, its reason naming both; one gone, it is
/// taken.
#[test]
fn with_ignore_case_a_done_file_in_another_case_is_taken_and_moved_with_its_file() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let extra = "after: { success: { move_to: /in/processed } }\n";
    let flow = w.pull_flow(FtpTls::Explicit, extra);
    let text = fs::read_to_string(&flow)
        .unwrap()
        .replace("include: [\"*.csv\"]\n", "include: [\"*\"]\n  ignore_case: true\n  ready: { done_file: \"{{name}}.done\" }\n");
    fs::write(&flow, text).unwrap();
    for name in ["X.CSV", "X.CSV.DONE", "z.csv", "Z.CSV.DONE", "z.csv.Done"] {
        w.put(&format!("in/{name}"), name.as_bytes());
    }
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (1, 1, 0, 0), "{r:#}");
    let waits = r["files"].as_array().unwrap().iter().find(|f| f["path"] == "/in/z.csv").unwrap();
    assert!(
        waits["detail"].as_str().unwrap().starts_with("no done file \"z.csv.done\": \"Z.CSV.DONE\" and \"z.csv.Done\" are both there"),
        "{r:#}"
    );
    assert_eq!(w.files_in(&w.local("sink")), ["X.CSV"]);
    assert_eq!(w.files_in(&w.remote("in/processed")), ["X.CSV", "X.CSV.DONE"]);
    fs::remove_file(w.remote("in/z.csv.Done")).unwrap();
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(w.files_in(&w.local("sink")), ["X.CSV", "z.csv"]);
    assert_eq!(w.files_in(&w.remote("in/processed")), ["X.CSV", "X.CSV.DONE", "Z.CSV.DONE", "z.csv"]);
}

/// A recursive pull over `ftpd` takes the tree it can list and tells the rest: a subfolder
/// the login may not read and one deeper than `max_depth` are named in the run's report; a
/// symbolic link to a folder above (a loop) is never followed, whatever the server's listing
/// makes of it, so no file is taken twice under another path.
fn a_recursive_pull_takes_the_tree_and_tells_what_it_cannot_list(ftpd: fn() -> Option<Ftpd>) {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new(ftpd()) else { return };
    let flow = w.pull_flow(FtpTls::None, "");
    let yaml =
        fs::read_to_string(&flow).unwrap().replace("include: [\"*.csv\"]", "include: [\"**/*.csv\"]\n  recursive: true\n  max_depth: 2");
    fs::write(&flow, yaml.replace("    path: /\n", "    path: \"/{{rel_dir}}\"\n")).unwrap();
    w.put("in/top.csv", b"t");
    w.put("in/a/x.csv", b"x");
    w.put("in/b/c/y.csv", b"y");
    w.put("in/b/c/d/deep.csv", b"d");
    w.put("in/locked/z.csv", b"z");
    std::os::unix::fs::symlink("..", w.remote("in/a/loop")).unwrap();
    std::os::unix::fs::chown(w.remote("in/locked"), Some(0), Some(0)).unwrap();
    fs::set_permissions(w.remote("in/locked"), fs::Permissions::from_mode(0o700)).unwrap();
    let (code, r) = w.run_json(&flow);
    assert_eq!((code, counts(&r)), (0, (0, 3, 0, 0)), "{r:#}\n{}", w.ftpd.log());
    assert_eq!(w.files_in(&w.local("sink")), ["a/x.csv", "b/c/y.csv", "top.csv"], "{r:#}");
    let told: Vec<(&str, &str)> =
        r["unlisted_folders"].as_array().unwrap().iter().map(|u| (u["folder"].as_str().unwrap(), u["reason"].as_str().unwrap())).collect();
    assert_eq!(told, [("/in/locked", "unreadable"), ("/in/b/c/d", "too_deep")], "{r:#}");
    let (_, r) = w.run_json(&flow);
    assert_eq!(counts(&r), (0, 0, 3, 0), "the three skipped as delivered, nothing taken twice: {r:#}");
}

#[test]
fn a_recursive_pull_over_vsftpd_takes_the_tree_and_tells_what_it_cannot_list() {
    a_recursive_pull_takes_the_tree_and_tells_what_it_cannot_list(Ftpd::vsftpd);
}

#[test]
fn a_recursive_pull_over_pure_ftpd_takes_the_tree_and_tells_what_it_cannot_list() {
    a_recursive_pull_takes_the_tree_and_tells_what_it_cannot_list(Ftpd::pure_ftpd);
}
