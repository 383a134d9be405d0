//! Connections that break or go idle in the middle of a run: a login the FTP server timed
//! out (vsftpd's `idle_session_timeout`), sessions killed (a server restart, an administrator,
//! a firewall resetting them) or frozen (a firewall silently dropping them, seen as a
//! connection that never answers) while a long content step keeps the source idle between
//! the download and the move to `processed/`. Each is noticed and replaced by a new login
//! without a failed file, even with `retry: { attempts: 1 }`; a server gone for good is a
//! clear error naming the flow, the endpoint and the cause, and the file stays where it was
//! for the next run.

use crate::support;
use support::{counts, text};

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wharf::config::flow::FtpTls;
use wharf::endpoint::ftp::FtpEndpoint;
use wharf::endpoint::sftp::SftpEndpoint;
use wharf::endpoint::{Endpoint, RemotePath};

use support::ftpd::Ftpd;
use support::sshd::Sshd;
use support::{TempDir, tempdir};

/// The partner's server of a test.
enum Server {
    Ftp(Ftpd),
    Sftp(Sshd),
}

impl Server {
    fn data_dir(&self) -> &Path {
        match self {
            Server::Ftp(s) => s.data_dir(),
            Server::Sftp(s) => s.data_dir(),
        }
    }

    fn give_to_user(&self, p: &Path) {
        match self {
            Server::Ftp(s) => s.give_to_user(p),
            Server::Sftp(s) => s.give_to_user(p),
        }
    }

    fn endpoint_yaml(&self) -> String {
        match self {
            Server::Ftp(s) => s.endpoint_yaml(FtpTls::Explicit, 4).replace("operation_timeout: 10s", "operation_timeout: 2s"),
            Server::Sftp(s) => s.endpoint_yaml(4) + "    operation_timeout: 2s\n",
        }
    }

    fn label(&self) -> String {
        match self {
            Server::Ftp(s) => format!("ftps wharftest@127.0.0.1:{}", s.port()),
            Server::Sftp(s) => format!("sftp wharftest@127.0.0.1:{}", s.port),
        }
    }

    fn kill_sessions(&self) {
        match self {
            Server::Ftp(s) => s.kill_sessions(),
            Server::Sftp(s) => s.kill_sessions(),
        }
    }

    fn freeze_sessions(&self) {
        match self {
            Server::Ftp(s) => s.freeze_sessions(),
            Server::Sftp(s) => s.freeze_sessions(),
        }
    }

    fn stop(&self) {
        match self {
            Server::Ftp(s) => s.stop(),
            Server::Sftp(s) => s.stop(),
        }
    }

    fn restart(&self) {
        match self {
            Server::Ftp(s) => s.restart(),
            Server::Sftp(s) => s.restart(),
        }
    }
}

/// One test's world: the partner's server with `/in/orders.csv`, a local sink, a state
/// folder, and a pull flow whose map step takes [`STEP`] per record.
struct World {
    server: Server,
    dir: TempDir,
    flow: PathBuf,
}

/// How long the content step keeps the source endpoint idle.
const STEP: &str = "2.5";
const ORDERS: &[u8] = b"id,qty\n1,5\n";

impl World {
    fn new(server: Option<Server>) -> Option<World> {
        let server = server?;
        let dir = tempdir();
        fs::create_dir_all(server.data_dir().join("in")).unwrap();
        fs::write(server.data_dir().join("in/orders.csv"), ORDERS).unwrap();
        server.give_to_user(server.data_dir());
        fs::create_dir_all(dir.path().join("sink")).unwrap();
        // The script tells the test it started (the test breaks the connections then), and
        // keeps the run busy for STEP seconds while the source's connections sit idle.
        let script = dir.path().join("slow.rhai");
        fs::write(
            &script,
            format!(
                "fn map(record) {{\n    print(\"mapping\");\n    let t = timestamp();\n    while t.elapsed < {STEP} {{}}\n    record\n}}\n"
            ),
        )
        .unwrap();
        let yaml = format!(
            "name: orders\nendpoints:\n  partner:\n{ep}  archive:\n    type: local\n    root: {sink:?}\n\
             source:\n  endpoint: partner\n  path: /in\n  include: [\"*.csv\"]\n\
             steps:\n  - parse: {{ format: csv }}\n  - map: {{ script: {script:?}, max_operations: 1000000000000, timeout: 1m }}\n  - write: {{ format: csv }}\n\
             quarantine: {{ endpoint: archive, path: /rejected }}\nsinks:\n  - endpoint: archive\n    path: /\n\
             after: {{ success: {{ move_to: /in/processed }} }}\nretry: {{ attempts: 1, backoff: 100ms }}\n",
            ep = server.endpoint_yaml(),
            sink = dir.path().join("sink").display().to_string(),
            script = script.display().to_string(),
        );
        let flow = dir.path().join("orders.yaml");
        fs::write(&flow, yaml).unwrap();
        Some(World { server, dir, flow })
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.server.data_dir().join(rel)
    }

    fn sink(&self, rel: &str) -> PathBuf {
        self.dir.path().join("sink").join(rel)
    }

    /// `wharf run --json` of the flow, started; the script's `print` logged.
    fn start(&self) -> Child {
        support::wharf(&self.dir.path().join("state"))
            .env("RUST_LOG", "wharf=warn,wharf::script=info")
            .args(["run", "--json"])
            .arg(&self.flow)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs the flow, calling `mid_step` once the content step started; the exit code, the
    /// JSON report and the log.
    fn run(&self, mid_step: impl FnOnce()) -> (i32, serde_json::Value, String) {
        let mut child = self.start();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.contains("mapping") {
                break;
            }
        }
        assert!(log.contains("mapping"), "the content step never started:\n{log}");
        mid_step();
        log.extend(lines.map_while(Result::ok).map(|l| l + "\n"));
        let out = child.wait_with_output().unwrap();
        let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{log}", text(&out)));
        (out.status.code().unwrap_or(-1), report, log)
    }

    /// Delivered and moved to `processed/`.
    fn assert_delivered(&self, code: i32, report: &serde_json::Value, log: &str) {
        assert_eq!((code, counts(report)), (0, (0, 1, 0, 0)), "{report:#}\n{log}");
        assert_eq!(fs::read(self.sink("orders.csv")).unwrap(), ORDERS);
        assert_eq!(fs::read(self.remote("in/processed/orders.csv")).unwrap(), ORDERS, "{report:#}");
        assert!(!self.remote("in/orders.csv").exists());
    }
}

fn vsftpd(config: &'static [&'static str]) -> Option<Server> {
    Ftpd::vsftpd_with(config).map(Server::Ftp)
}

fn sshd() -> Option<Server> {
    Sshd::start().map(Server::Sftp)
}

#[test]
fn a_login_the_ftp_server_timed_out_during_a_long_content_step_is_replaced() {
    // vsftpd says `421 Timeout.` and hangs up on a login idle for a second.
    let Some(w) = World::new(vsftpd(&["idle_session_timeout=1"])) else { return };
    let (code, report, log) = w.run(|| {});
    w.assert_delivered(code, &report, &log);
}

#[test]
fn ftp_logins_killed_during_a_long_content_step_are_replaced() {
    let Some(w) = World::new(vsftpd(&[])) else { return };
    let (code, report, log) = w.run(|| w.server.kill_sessions());
    w.assert_delivered(code, &report, &log);
}

#[test]
fn ftp_logins_gone_silent_during_a_long_content_step_are_replaced() {
    let Some(w) = World::new(vsftpd(&[])) else { return };
    let (code, report, log) = w.run(|| w.server.freeze_sessions());
    w.assert_delivered(code, &report, &log);
}

#[test]
fn sftp_connections_killed_during_a_long_content_step_are_replaced() {
    let Some(w) = World::new(sshd()) else { return };
    let (code, report, log) = w.run(|| w.server.kill_sessions());
    w.assert_delivered(code, &report, &log);
}

#[test]
fn sftp_connections_gone_silent_during_a_long_content_step_are_replaced() {
    let Some(w) = World::new(sshd()) else { return };
    let (code, report, log) = w.run(|| w.server.freeze_sessions());
    w.assert_delivered(code, &report, &log);
}

/// The server goes away for good while the step runs: the file is delivered but its move
/// cannot be made; the run says which flow, server and why, the source stays where it was
/// (not moved, not marked done), and the next run, with the server back, moves it.
fn a_server_gone_during_the_step_keeps_the_file_for_the_next_run(w: World) {
    let (code, report, log) = w.run(|| w.server.stop());
    assert_ne!(code, 0, "{report:#}\n{log}");
    let all = format!("{report}\n{log}");
    assert!(all.contains("orders") && all.contains(&w.server.label()) && all.contains("/in/orders.csv"), "{report:#}\n{log}");
    assert_eq!(fs::read(w.remote("in/orders.csv")).unwrap(), ORDERS, "the source stays: {report:#}");
    assert!(!w.remote("in/processed/orders.csv").exists());
    w.server.restart();
    // Staged and mapped already: the next run only moves the source.
    let (code, report) = support::json_of(support::wharf(&w.dir.path().join("state")).args(["run", "--json"]).arg(&w.flow));
    assert_eq!((code, counts(&report)), (0, (0, 1, 0, 0)), "{report:#}");
    assert_eq!(fs::read(w.remote("in/processed/orders.csv")).unwrap(), ORDERS, "{report:#}");
    assert!(!w.remote("in/orders.csv").exists());
}

#[test]
fn an_ftp_server_gone_during_a_long_content_step_keeps_the_file_for_the_next_run() {
    let Some(w) = World::new(vsftpd(&[])) else { return };
    a_server_gone_during_the_step_keeps_the_file_for_the_next_run(w);
}

#[test]
fn an_sftp_server_gone_during_a_long_content_step_keeps_the_file_for_the_next_run() {
    let Some(w) = World::new(sshd()) else { return };
    a_server_gone_during_the_step_keeps_the_file_for_the_next_run(w);
}

/// The source's server gone for good in the middle of a run, its port now held by something
/// that takes connections and never answers (a host behind a dead load balancer): the run
/// stops taking files once one could not even connect, instead of waiting out the connect
/// timeout (and its retries) for each file after it — at the default 20 s and three attempts
/// a minute per file, hours for a folder of a few hundred. The run is aborted as unreachable
/// (the daemon tries it again with backoff); the files not started are left as they were, and
/// the next run, with the server back, takes them all.
#[test]
fn a_source_server_gone_mid_run_stops_the_run_instead_of_timing_out_each_file() {
    let Some(sshd) = Sshd::start() else { return };
    let port = sshd.port;
    let Some(w) = World::new(Some(Server::Sftp(sshd))) else { return };
    // Only a header: no record for the slow step to map.
    for i in 0..20 {
        fs::write(w.remote(&format!("in/p{i:02}.csv")), b"id,qty\n").unwrap();
    }
    w.server.give_to_user(w.server.data_dir());
    let yaml = fs::read_to_string(&w.flow).unwrap();
    let yaml = yaml.replace("    operation_timeout: 2s\n", "    operation_timeout: 2s\n    connect_timeout: 1s\n") + "concurrency: 1\n";
    fs::write(&w.flow, yaml).unwrap();
    let mut hole = None;
    let t = Instant::now();
    let (code, report, log) = w.run(|| {
        w.server.stop();
        hole = Some(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap());
    });
    let took = t.elapsed();
    assert_ne!(code, 0, "{report:#}\n{log}");
    assert_eq!(report["status"], "aborted", "{report:#}\n{log}");
    assert!(took < Duration::from_secs(12), "{took:?}: each file waited for its connection\n{report:#}");
    let all = format!("{report}\n{log}");
    assert!(all.contains("orders") && all.contains(&w.server.label()), "{report:#}\n{log}");
    drop(hole);
    w.server.restart();
    let (code, report) = support::json_of(support::wharf(&w.dir.path().join("state")).args(["run", "--json"]).arg(&w.flow));
    assert_eq!((code, counts(&report)), (0, (0, 21, 0, 0)), "{report:#}");
    assert_eq!(fs::read_dir(w.remote("in/processed")).unwrap().count(), 21);
}

/// Small files go whole over extra SFTP channels of the connection, opened on first use: on
/// a connection gone silent (a firewall dropped it) opening them gives up after the
/// operation timeout and the file is read or written on a new connection — not after the
/// SSH keepalives give up, about a minute later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sftp_small_files_on_a_connection_gone_silent_move_within_the_operation_timeout() {
    let Some(sshd) = tokio::task::spawn_blocking(Sshd::start).await.unwrap() else { return };
    let sshd = Arc::new(sshd);
    let mut spec = sshd.sftp_spec(sshd.password_auth());
    spec.operation_timeout = Duration::from_secs(2);
    let ep = SftpEndpoint::new(spec);
    let p = |s: &str| RemotePath::parse(s).unwrap();
    fs::write(sshd.data_dir().join("a.csv"), b"a,b\n").unwrap();
    sshd.give_to_user(sshd.data_dir());
    assert!(ep.stat(&p("a.csv")).await.unwrap().is_some());
    let s = sshd.clone();
    tokio::task::spawn_blocking(move || s.freeze_sessions()).await.unwrap();
    let t = Instant::now();
    let (data, _) = ep.read_small(&p("a.csv"), 1024).await.unwrap();
    assert_eq!((data.as_slice(), t.elapsed() < Duration::from_secs(10)), (&b"a,b\n"[..], true), "{:?}", t.elapsed());
    let s = sshd.clone();
    tokio::task::spawn_blocking(move || s.freeze_sessions()).await.unwrap();
    let t = Instant::now();
    assert_eq!(ep.write_small(&p("b.csv"), b"b").await.unwrap(), Some(1));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(fs::read(sshd.data_dir().join("b.csv")).unwrap(), b"b");
}

/// A rename or remove is never sent twice blindly (the server may have run the first), but on
/// a pooled login the server timed out while it sat idle (vsftpd's `421 Timeout.` and close)
/// nothing ran: it goes to a new login. Both failed as "Transient: 421 Timeout." and were
/// never tried again — a move to `processed/` or a delete after delivery on a login idle for
/// longer than the server allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_or_remove_on_a_login_the_ftp_server_timed_out_goes_to_a_new_login() {
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::vsftpd_with(&["idle_session_timeout=1"])).await.unwrap() else { return };
    let p = |s: &str| RemotePath::parse(s).unwrap();
    for tls in [FtpTls::None, FtpTls::Explicit] {
        let data = ftpd.data_dir();
        fs::create_dir_all(data.join("in/processed")).unwrap();
        fs::write(data.join("in/a.csv"), b"a").unwrap();
        fs::write(data.join("in/b.csv"), b"b").unwrap();
        ftpd.give_to_user(data);
        let ep = FtpEndpoint::new(ftpd.spec(tls));
        let idle = || tokio::time::sleep(Duration::from_millis(2500));
        assert!(ep.stat(&p("in/a.csv")).await.unwrap().is_some());
        idle().await;
        ep.rename(&p("in/a.csv"), &p("in/processed/a.csv"), false).await.unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        assert_eq!(fs::read(data.join("in/processed/a.csv")).unwrap(), b"a");
        idle().await;
        ep.remove(&p("in/b.csv")).await.unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        assert!(!data.join("in/b.csv").exists());
        idle().await;
        ep.rename_plain(&p("in/processed/a.csv"), &p("in/a.csv")).await.unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        assert!(data.join("in/a.csv").exists());
        fs::remove_dir_all(data.join("in")).unwrap();
    }
}
