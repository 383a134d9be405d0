//! `wharf sandbox` as a real process: a pull flow built from an endpoint it prints runs end
//! to end against it over SFTP and over FTP (and a second run delivers nothing), SIGTERM
//! stops it with exit 0, its host key survives restarts while a regenerated one is refused by
//! the client, clear errors for bad arguments; and, in-process, both protocols refusing
//! symlinks that lead out of the folder, and the FTP side refusing TLS and wrong passwords.

use crate::support;
use support::text;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use wharf::config::flow::{CertTrust, FtpSpec, FtpTls, HostKeyPolicy, SftpSpec, SshAuth, TlsVersion};
use wharf::endpoint::ftp::FtpEndpoint;
use wharf::endpoint::sftp::SftpEndpoint;
use wharf::endpoint::{Endpoint, EntryKind, ErrorKind, RemotePath};
use wharf::sandbox::{Sandbox, SandboxOptions};

fn wharf(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.arg("--state-dir").arg(state).env("RUST_LOG", "wharf=warn");
    c
}

/// A `wharf sandbox --json` process and the details it printed; SIGKILLed if the test ends
/// while it lives.
struct Running {
    child: Child,
    details: serde_json::Value,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(state: &Path, folder: &Path, extra: &[&str]) -> Running {
        let log =
            state.with_extension(format!("sandbox-{}.log", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos()));
        let mut child = wharf(state)
            .arg("sandbox")
            .arg(folder)
            .arg("--json")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn wharf sandbox");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line.is_empty() {
            let status = child.wait().unwrap();
            panic!("wharf sandbox printed nothing ({status}):\n{}", std::fs::read_to_string(&log).unwrap());
        }
        let details = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        Running { child, details }
    }

    fn port(&self) -> u16 {
        self.details["sftp"]["port"].as_u64().unwrap() as u16
    }

    fn str(&self, pointer: &str) -> String {
        self.details.pointer(pointer).and_then(|v| v.as_str()).unwrap_or_else(|| panic!("{pointer} in {}", self.details)).to_string()
    }

    /// SIGTERM, then the exit status (within 10 s).
    fn terminate(mut self) -> ExitStatus {
        // SAFETY: kill(2) on a child we own; no memory is shared.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "wharf sandbox did not stop within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A pull flow from the sandbox's `/outgoing` into `erp`, its endpoint pasted from what the
/// sandbox printed (the SFTP one; [`write_ftp_flow`] for FTP).
fn write_flow(dir: &Path, endpoint_yaml: &str, erp: &Path) -> PathBuf {
    write_flow_from(dir, "sandbox", endpoint_yaml, erp)
}

fn write_ftp_flow(dir: &Path, endpoint_yaml: &str, erp: &Path) -> PathBuf {
    write_flow_from(dir, "sandbox_ftp", endpoint_yaml, erp)
}

fn write_flow_from(dir: &Path, endpoint: &str, endpoint_yaml: &str, erp: &Path) -> PathBuf {
    let flow = format!(
        "name: sandbox-pull\n{endpoint_yaml}  erp:\n    type: local\n    root: {erp:?}\n\
         source:\n  endpoint: {endpoint}\n  path: /outgoing\n  include: [\"*.csv\"]\n  ready: {{ min_age: 1s }}\n\
         sinks:\n  - endpoint: erp\n    path: /orders\n\
         after:\n  success: {{ move_to: /outgoing/processed }}\n",
        erp = erp.display().to_string()
    );
    std::fs::create_dir_all(erp).unwrap();
    let path = dir.join("sandbox-pull.yaml");
    std::fs::write(&path, flow).unwrap();
    path
}

/// Puts `name` into `folder/outgoing`, a minute old (past `min_age`).
fn drop_file(folder: &Path, name: &str, data: &str) {
    let out = folder.join("outgoing");
    std::fs::create_dir_all(&out).unwrap();
    let f = std::fs::File::create(out.join(name)).unwrap();
    std::io::Write::write_all(&mut &f, data.as_bytes()).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
}

#[test]
fn a_pull_flow_runs_end_to_end_against_the_sandbox() {
    let dir = support::tempdir();
    let (folder, erp, state) = (dir.path().join("partner"), dir.path().join("erp"), dir.path().join("state"));
    std::fs::create_dir_all(&folder).unwrap();
    drop_file(&folder, "orders_1.csv", "id;qty\n1;5\n");
    drop_file(&folder, "orders_2.csv", "id;qty\n2;7\n");
    drop_file(&folder, "notes.txt", "not taken");
    let sandbox = Running::start(&state, &folder, &[]);
    assert_eq!(sandbox.str("/sftp/host"), "127.0.0.1");
    assert!(sandbox.str("/host_key/fingerprint").starts_with("SHA256:"));
    let kh = std::fs::read_to_string(sandbox.str("/known_hosts/file")).unwrap();
    assert!(kh.contains(&format!("[127.0.0.1]:{} ssh-ed25519 ", sandbox.port())), "{kh}");
    assert!(kh.contains(&sandbox.str("/known_hosts/line")));

    let flow = write_flow(dir.path(), &sandbox.str("/endpoint_yaml"), &erp);
    let password = sandbox.str("/password");
    let run = || wharf(&state).arg("run").arg(&flow).env("WHARF_SANDBOX_PASSWORD", &password).output().unwrap();
    let out = run();
    assert!(out.status.success() && text(&out).contains("2 delivered"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(erp.join("orders/orders_1.csv")).unwrap(), "id;qty\n1;5\n");
    assert_eq!(std::fs::read_to_string(erp.join("orders/orders_2.csv")).unwrap(), "id;qty\n2;7\n");
    assert!(folder.join("outgoing/processed/orders_2.csv").exists() && !folder.join("outgoing/orders_2.csv").exists());
    assert!(folder.join("outgoing/notes.txt").exists());
    let out = run();
    assert!(out.status.success() && text(&out).contains("0 delivered"), "nothing twice: {}", text(&out));

    let status = sandbox.terminate();
    assert_eq!(status.code(), Some(0), "SIGTERM stops the sandbox cleanly: {status}");
}

#[test]
fn a_pull_flow_runs_end_to_end_over_the_sandbox_ftp() {
    let dir = support::tempdir();
    let (folder, erp, state) = (dir.path().join("partner"), dir.path().join("erp"), dir.path().join("state"));
    std::fs::create_dir_all(&folder).unwrap();
    drop_file(&folder, "orders 1.csv", "id;qty\n1;5\n");
    drop_file(&folder, "orders_2.csv", "id;qty\n2;7\n");
    // A link to nothing, in an MLSD listing (`type=OS.unix=symlink`): told once, not taken,
    // the listing and the other files unharmed.
    std::os::unix::fs::symlink("gone.csv", folder.join("outgoing/dangling.csv")).unwrap();
    let sandbox = Running::start(&state, &folder, &[]);
    assert_eq!(sandbox.str("/ftp/host"), "127.0.0.1");
    let flow = write_ftp_flow(dir.path(), &sandbox.str("/ftp_endpoint_yaml"), &erp);
    let password = sandbox.str("/password");
    let run = || wharf(&state).arg("run").arg(&flow).env("WHARF_SANDBOX_PASSWORD", &password).output().unwrap();
    let out = run();
    assert!(out.status.success() && text(&out).contains("2 delivered"), "{}", text(&out));
    assert!(text(&out).contains("/outgoing/dangling.csv (a symbolic link"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(erp.join("orders/orders 1.csv")).unwrap(), "id;qty\n1;5\n");
    assert!(folder.join("outgoing/processed/orders_2.csv").exists() && !folder.join("outgoing/orders_2.csv").exists());
    let out = run();
    assert!(out.status.success() && text(&out).contains("0 delivered"), "nothing twice: {}", text(&out));
    let (_, events) = support::json_of(wharf(&state).args(["events", "--json"]));
    let told: Vec<&serde_json::Value> = events.as_array().unwrap().iter().filter(|e| e["kind"] == "not_taken").collect();
    assert_eq!(told.len(), 1, "told once: {events:#}");
    assert_eq!(told[0]["subject"], "/outgoing/dangling.csv", "{events:#}");

    // --no-ftp: no FTP server, and nothing printed for it.
    assert_eq!(sandbox.terminate().code(), Some(0));
    let sftp_only = Running::start(&state, &folder, &["--no-ftp"]);
    assert!(sftp_only.details["ftp"].is_null() && sftp_only.details["ftp_endpoint_yaml"].is_null(), "{}", sftp_only.details);
    assert_eq!(sftp_only.terminate().code(), Some(0));
}

#[test]
fn the_host_key_is_kept_and_a_new_one_is_refused() {
    let dir = support::tempdir();
    let (folder, erp, state) = (dir.path().join("partner"), dir.path().join("erp"), dir.path().join("state"));
    std::fs::create_dir_all(&folder).unwrap();
    drop_file(&folder, "a.csv", "a\n");
    let port = support::free_port().to_string();
    let first = Running::start(&state, &folder, &["--port", &port, "--password", "pw-1"]);
    assert_eq!(first.details["host_key"]["generated"], true);
    let (fingerprint, endpoint) = (first.str("/host_key/fingerprint"), first.str("/endpoint_yaml"));
    // The flow keeps its own copy of the known_hosts file, as a user's flow would.
    let trusted = dir.path().join("trusted_known_hosts");
    std::fs::copy(first.str("/known_hosts/file"), &trusted).unwrap();
    let flow = write_flow(dir.path(), &endpoint.replace(&first.str("/known_hosts/file"), &trusted.display().to_string()), &erp);
    let key_file = PathBuf::from(first.str("/host_key/file"));
    assert_eq!(first.terminate().code(), Some(0));

    // Restarted: the same key, so the recorded line still holds.
    let second = Running::start(&state, &folder, &["--port", &port, "--password", "pw-1"]);
    assert_eq!(
        (second.str("/host_key/fingerprint"), &second.details["host_key"]["generated"]),
        (fingerprint.clone(), &serde_json::json!(false))
    );
    let out = wharf(&state).arg("run").arg(&flow).env("WHARF_SANDBOX_PASSWORD", "pw-1").output().unwrap();
    assert!(out.status.success() && text(&out).contains("1 delivered"), "{}", text(&out));
    assert_eq!(second.terminate().code(), Some(0));

    // The key file gone: a new key is generated, and the client refuses it.
    std::fs::remove_file(&key_file).unwrap();
    drop_file(&folder, "b.csv", "b\n");
    let third = Running::start(&state, &folder, &["--port", &port, "--password", "pw-1"]);
    assert_ne!(third.str("/host_key/fingerprint"), fingerprint);
    let out = wharf(&state).arg("run").arg(&flow).env("WHARF_SANDBOX_PASSWORD", "pw-1").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("HOST KEY CHANGED"), "{}", text(&out));
    assert!(folder.join("outgoing/b.csv").exists() && !erp.join("orders/b.csv").exists());
    assert_eq!(third.terminate().code(), Some(0));
}

#[test]
fn bad_arguments_are_refused_with_the_cause() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let run = |args: &[&str]| wharf(&state).arg("sandbox").args(args).output().unwrap();
    let missing = dir.path().join("missing");
    let out = run(&[missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no such folder"), "{}", text(&out));

    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    let out = run(&[file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("not a folder"), "{}", text(&out));

    let folder = dir.path().to_str().unwrap();
    let out = run(&[folder, "--bind", "0.0.0.0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("0.0.0.0 is not a loopback address"), "{}", text(&out));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(&[folder, "--port", &port]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains(&format!("127.0.0.1:{port}: port already in use")), "{}", text(&out));

    let out = run(&[folder, "--port", "not-a-port"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error: {}", text(&out));
}

/// An endpoint on an in-process sandbox over `root`, over SFTP or (`ftp`) FTP.
async fn endpoint(dir: &Path, root: &Path, ftp: bool) -> (Sandbox, Arc<dyn Endpoint>) {
    let mut opts = SandboxOptions::new(root, dir.join("host_key"));
    opts.ftp_port = Some(0);
    let sandbox = Sandbox::start(opts.clone()).await.unwrap();
    if ftp {
        let ep = FtpEndpoint::new(ftp_spec(&sandbox, &opts, FtpTls::None));
        return (sandbox, Arc::new(ep));
    }
    let kh = dir.join("known_hosts");
    std::fs::write(&kh, sandbox.known_hosts_line()).unwrap();
    let ep = SftpEndpoint::new(SftpSpec {
        name: "server".into(),
        host: "127.0.0.1".into(),
        port: sandbox.sftp_addr().port(),
        user: opts.user,
        auth: SshAuth::Password(opts.password),
        host_key: HostKeyPolicy::KnownHosts(kh),
        root: "/".into(),
        connect_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_connections: 1,
    });
    (sandbox, Arc::new(ep))
}

fn ftp_spec(sandbox: &Sandbox, opts: &SandboxOptions, tls: FtpTls) -> FtpSpec {
    FtpSpec {
        name: "server".into(),
        host: "127.0.0.1".into(),
        port: sandbox.ftp_addr().expect("the FTP side runs").port(),
        user: opts.user.clone(),
        password: opts.password.clone(),
        tls,
        trust: CertTrust::SystemRoots,
        tls_max_version: TlsVersion::V1_3,
        passive: true,
        root: Some("/".into()),
        connect_timeout: Duration::from_secs(10),
        operation_timeout: Duration::from_secs(30),
        max_connections: 2,
        server_clock: Default::default(),
        use_pasv_address: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_folder_are_refused_over_sftp() {
    symlinks_out_of_the_folder_are_refused(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_folder_are_refused_over_ftp() {
    symlinks_out_of_the_folder_are_refused(true).await;
}

async fn symlinks_out_of_the_folder_are_refused(ftp: bool) {
    use std::os::unix::fs::symlink;
    let dir = support::tempdir();
    let (root, outside) = (dir.path().join("served"), dir.path().join("outside"));
    std::fs::create_dir_all(root.join("in")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.csv"), "secret").unwrap();
    std::fs::write(root.join("in/ok.csv"), "ok").unwrap();
    symlink(&outside, root.join("out-dir")).unwrap();
    symlink(outside.join("secret.csv"), root.join("in/out-file.csv")).unwrap();
    symlink("ok.csv", root.join("in/inside.csv")).unwrap();
    symlink("gone.csv", root.join("in/dangling.csv")).unwrap();
    let (sandbox, ep) = endpoint(dir.path(), &root, ftp).await;
    let p = |s: &str| RemotePath::parse(s).unwrap();

    let err = ep.open_read(&p("in/out-file.csv"), 0).await.err().expect("refused");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    let err = ep.list(&p("out-dir")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    let err = ep.open_write(&p("out-dir/planted.csv")).await.err().expect("refused");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    assert!(!outside.join("planted.csv").exists());
    // A link that stays inside is followed.
    let mut r = ep.open_read(&p("in/inside.csv"), 0).await.unwrap();
    let mut buf = [0u8; 16];
    let n = r.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"ok");
    // Listing shows links as what they are (not followed), like OpenSSH; one to nothing too
    // (over FTP an MLSD listing), without failing the listing.
    let listing = ep.list(&p("in")).await.unwrap();
    let names: Vec<(String, EntryKind)> = listing.entries.into_iter().map(|e| (e.path.name().to_string(), e.kind)).collect();
    let link = EntryKind::Other(wharf::endpoint::Special::Symlink);
    let expected = [("dangling.csv", link), ("inside.csv", link), ("ok.csv", EntryKind::File), ("out-file.csv", link)];
    assert_eq!(names, expected.map(|(n, k)| (n.to_string(), k)));
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    drop(r);
    sandbox.stop().await;
}

/// A refusal over SFTP names the path once and says why once (it read `list /nope: not found:
/// /nope: No such file or directory (No such file)`); FTP's 550, which names no request, keeps
/// the path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_the_path_and_the_reason_once() {
    let dir = support::tempdir();
    let root = dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("afile"), "x").unwrap();
    let p = |s: &str| RemotePath::parse(s).unwrap();
    let (sandbox, ep) = endpoint(dir.path(), &root, false).await;
    let err = ep.list(&p("nope")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert_eq!(text.matches("/nope").count(), 1, "{text}");
    assert!(text.ends_with("list /nope: not found: No such file"), "{text}");
    // A path through a file is no such file, as OpenSSH answers (ENOTDIR): it read `Failure`,
    // which a client takes for a full disk.
    assert_eq!(ep.stat(&p("afile/sub.csv")).await.unwrap(), None);
    let err = ep.list(&p("afile/sub")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert_eq!(text.matches("afile/sub").count(), 1, "{text}");
    assert!(text.ends_with("list /afile/sub: not found: No such file"), "{text}");
    sandbox.stop().await;

    let (sandbox, ep) = endpoint(dir.path(), &root, true).await;
    let err = ep.open_read(&p("nope.csv"), 0).await.err().expect("refused");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ftp_side_refuses_tls_and_wrong_passwords_with_the_cause() {
    let dir = support::tempdir();
    let root = dir.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let mut opts = SandboxOptions::new(&root, dir.path().join("host_key"));
    opts.ftp_port = Some(0);
    let sandbox = Sandbox::start(opts.clone()).await.unwrap();

    let err = FtpEndpoint::new(ftp_spec(&sandbox, &opts, FtpTls::Explicit)).connect_now().await.unwrap_err();
    assert!(err.to_string().contains("refused TLS") && err.to_string().contains("tls: none"), "{err}");

    let mut wrong = ftp_spec(&sandbox, &opts, FtpTls::None);
    wrong.password = wharf::config::Secret::new("not-the-password");
    let err = FtpEndpoint::new(wrong).connect_now().await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AuthFailed, "{err}");
    assert!(err.to_string().contains("login as sandbox refused"), "{err}");
    sandbox.stop().await;
}
