//! SFTP login, host-key trust (known_hosts, a pin of any of the server's keys) and `wharf
//! trust`, algorithms in common or not, a server that refuses more connections,
//! and the wrong port (an FTP server where SSH was meant, and the reverse), against a private
//! sshd and vsftpd (skipped where none can run; see `support::sshd`).

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use wharf::config::Secret;
use wharf::config::flow::{HostKeyPolicy, SftpSpec, SshAuth};
use wharf::endpoint::reach::Given;
use wharf::endpoint::sftp::{SftpEndpoint, add_to_known_hosts, scan_host_key};
use wharf::endpoint::{Endpoint, EndpointError, ErrorKind, RemotePath};

use support::sshd::{Sshd, client_keys, fingerprint_of, keygen};

async fn server() -> Option<Sshd> {
    tokio::task::spawn_blocking(Sshd::start).await.unwrap()
}

async fn connect(spec: SftpSpec) -> Result<SftpEndpoint, EndpointError> {
    let ep = SftpEndpoint::new(spec);
    ep.connect_now().await?;
    Ok(ep)
}

/// Connects and proves the session works by listing the root.
async fn login_ok(sshd: &Sshd, auth: SshAuth) {
    let ep = connect(sshd.sftp_spec(auth)).await.unwrap_or_else(|e| panic!("{e}\n--- sshd log ---\n{}", sshd.log()));
    ep.list(&RemotePath::root()).await.unwrap();
}

async fn refused(spec: SftpSpec) -> EndpointError {
    match connect(spec).await {
        Ok(_) => panic!("connection should have been refused"),
        Err(e) => e,
    }
}

fn with_host_key(mut spec: SftpSpec, policy: HostKeyPolicy) -> SftpSpec {
    spec.host_key = policy;
    spec
}

#[tokio::test]
async fn password_login() {
    let Some(sshd) = server().await else { return };
    login_ok(&sshd, sshd.password_auth()).await;
}

#[tokio::test]
async fn wrong_password_is_auth_failed_and_not_echoed() {
    let Some(sshd) = server().await else { return };
    let err = refused(sshd.sftp_spec(SshAuth::Password(Secret::new("not-the-pass-Zq9")))).await;
    assert_eq!(err.kind, ErrorKind::AuthFailed, "{err}");
    assert!(err.kind.is_connection_fatal());
    let all = format!("{err} {err:?}");
    assert!(!all.contains("not-the-pass-Zq9"), "secret leaked: {all}");
    assert!(all.contains(&format!("sftp wharftest@127.0.0.1:{}", sshd.port)), "names the endpoint: {all}");
}

#[tokio::test]
async fn ed25519_key_login() {
    let Some(sshd) = server().await else { return };
    login_ok(&sshd, sshd.key_auth(&client_keys().unwrap().ed25519, None)).await;
}

#[tokio::test]
async fn rsa_key_login_uses_rsa_sha2() {
    // OpenSSH 8.8+ refuses SHA-1 `ssh-rsa` signatures, so success means rsa-sha2-256/512.
    let Some(sshd) = server().await else { return };
    login_ok(&sshd, sshd.key_auth(&client_keys().unwrap().rsa, None)).await;
    login_ok(&sshd, sshd.key_auth(&client_keys().unwrap().rsa_pem, None)).await;
}

#[tokio::test]
async fn ecdsa_key_login() {
    let Some(sshd) = server().await else { return };
    login_ok(&sshd, sshd.key_auth(&client_keys().unwrap().ecdsa, None)).await;
}

#[tokio::test]
async fn encrypted_key_with_passphrase() {
    let Some(sshd) = server().await else { return };
    let keys = client_keys().unwrap();
    login_ok(&sshd, sshd.key_auth(&keys.ed25519_encrypted, Some(keys.passphrase))).await;
}

#[tokio::test]
async fn wrong_or_missing_passphrase_and_missing_key_are_config_errors() {
    let Some(sshd) = server().await else { return };
    let keys = client_keys().unwrap();
    let err = refused(sshd.sftp_spec(sshd.key_auth(&keys.ed25519_encrypted, Some("wrong-phrase-K7")))).await;
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    let all = format!("{err} {err:?}");
    assert!(all.contains(&keys.ed25519_encrypted.display().to_string()), "names the key file: {all}");
    assert!(!all.contains("wrong-phrase-K7"), "passphrase leaked: {all}");

    let err = refused(sshd.sftp_spec(sshd.key_auth(&keys.ed25519_encrypted, None))).await;
    assert_eq!(err.kind, ErrorKind::Config, "{err}");

    let err = refused(sshd.sftp_spec(sshd.key_auth(Path::new("/nonexistent/id_ed25519"), None))).await;
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("/nonexistent/id_ed25519"), "{err}");

    // The public half given instead: said so.
    let public = keys.ed25519.with_extension("pub");
    let err = refused(sshd.sftp_spec(sshd.key_auth(&public, None))).await;
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("it is a public key; give the private key file"), "{err}");
}

#[tokio::test]
async fn unknown_host_key_is_refused_with_fingerprint_and_trust_hint() {
    let Some(sshd) = server().await else { return };
    let dir = support::tempdir();
    for kh in [dir.path().join("empty_known_hosts"), dir.path().join("missing_known_hosts")] {
        if kh.ends_with("empty_known_hosts") {
            std::fs::write(&kh, "").unwrap();
        }
        let err = refused(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh.clone()))).await;
        assert_eq!(err.kind, ErrorKind::HostKey, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&sshd.fingerprint()), "{msg}");
        assert!(msg.contains(&format!("[127.0.0.1]:{}", sshd.port)), "{msg}");
        assert!(msg.contains(&format!("wharf trust 127.0.0.1:{} --known-hosts {}", sshd.port, kh.display())), "{msg}");
    }
}

#[tokio::test]
async fn changed_host_key_is_refused_loudly() {
    let Some(sshd) = server().await else { return };
    let dir = support::tempdir();
    let other = dir.path().join("other");
    keygen(&["-t", "ed25519", "-N", "", "-f"], &other).unwrap();
    let other_pub = std::fs::read_to_string(dir.path().join("other.pub")).unwrap();
    let kh = dir.path().join("known_hosts");
    let fields: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    std::fs::write(&kh, format!("# a comment\n[127.0.0.1]:{} {}\n", sshd.port, fields.join(" "))).unwrap();
    let err = refused(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh.clone()))).await;
    assert_eq!(err.kind, ErrorKind::HostKey, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("HOST KEY CHANGED"), "{msg}");
    assert!(msg.contains("known_hosts line 2"), "{msg}");
    assert!(msg.contains(&sshd.fingerprint()), "{msg}");
    // The command that replaces the line (it said "remove that line and run `wharf trust …`").
    assert!(
        msg.ends_with(&format!("replace that line with `wharf trust 127.0.0.1:{} --known-hosts {} --yes`", sshd.port, kh.display())),
        "{msg}"
    );
}

#[tokio::test]
async fn fingerprint_pin() {
    let Some(sshd) = server().await else { return };
    let spec = with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::Fingerprint(sshd.fingerprint()));
    connect(spec).await.unwrap();
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string();
    let err = refused(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::Fingerprint(wrong.clone()))).await;
    assert_eq!(err.kind, ErrorKind::HostKey, "{err}");
    assert!(err.to_string().contains(&wrong) && err.to_string().contains(&sshd.fingerprint()), "{err}");
}

/// sshd's log lines for the TCP connections it accepted so far.
fn connections(sshd: &Sshd) -> usize {
    sshd.log().matches("Connection from 127.0.0.1").count()
}

/// A pin names one of the server's keys — whichever the partner sent — not the type wharf
/// prefers: with the server's RSA or ECDSA key pinned (it has ed25519 too, which both sides
/// prefer), the connection is made; the endpoint's next connection offers the pinned type
/// first (one handshake, not three). A pin that matches none of the keys names every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_of_any_of_the_servers_keys_is_accepted() {
    let Some(sshd) = server().await else { return };
    for alg in ["rsa", "ecdsa"] {
        let pin = fingerprint_of(&sshd.host_key_pub(alg)).unwrap();
        let spec = with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::Fingerprint(pin));
        let ep = connect(spec).await.unwrap_or_else(|e| panic!("{alg} pinned: {e}\n--- sshd log ---\n{}", sshd.log()));
        ep.list(&RemotePath::root()).await.unwrap();
        if alg == "rsa" {
            tokio::task::block_in_place(|| sshd.restart());
            let before = connections(&sshd);
            ep.list(&RemotePath::root()).await.unwrap();
            assert_eq!(connections(&sshd) - before, 1, "the reconnect offers RSA first\n{}", sshd.log());
        }
    }
    let wrong = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let err = refused(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::Fingerprint(wrong.into()))).await;
    assert_eq!(err.kind, ErrorKind::HostKey, "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("matches the pinned fingerprint {wrong}")), "{msg}");
    for alg in ["ed25519", "rsa", "ecdsa"] {
        assert!(msg.contains(&fingerprint_of(&sshd.host_key_pub(alg)).unwrap()), "names the {alg} key: {msg}");
    }
}

/// A server whose algorithms wharf does not have is a configuration error (no retry mends
/// it) naming what the server offers and what wharf does, so the partner can be asked.
#[tokio::test]
async fn no_common_algorithm_names_what_each_side_offers() {
    let cases: [(&'static [&'static str], &str, &str, &str); 2] = [
        (&["KexAlgorithms diffie-hellman-group1-sha1"], "key exchange", "diffie-hellman-group1-sha1", "ecdh-sha2-nistp256"),
        (&["Ciphers aes128-ctr", "MACs hmac-md5"], "MAC", "hmac-md5", "hmac-sha1"),
    ];
    for (extra, what, theirs, ours) in cases {
        let Some(sshd) = tokio::task::spawn_blocking(move || Sshd::start_with(extra)).await.unwrap() else { return };
        let err = refused(sshd.sftp_spec(sshd.password_auth())).await;
        assert_eq!(err.kind, ErrorKind::Config, "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("no common {what} with the server: it offers {theirs}; wharf offers ")), "{msg}");
        assert!(msg.contains(ours) && !msg.contains("kex-strict"), "{msg}");
    }
}

#[tokio::test]
async fn hashed_known_hosts() {
    let Some(sshd) = server().await else { return };
    let dir = support::tempdir();
    let kh = dir.path().join("known_hosts");
    std::fs::copy(sshd.known_hosts(), &kh).unwrap();
    let out = Command::new("ssh-keygen").arg("-H").arg("-f").arg(&kh).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&kh).unwrap();
    assert!(text.starts_with("|1|") && !text.contains("127.0.0.1"), "hashed: {text}");
    connect(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh))).await.unwrap();
}

#[tokio::test]
async fn only_rsa_recorded_still_connects() {
    // The algorithms recorded for the host are offered first, as OpenSSH does.
    let Some(sshd) = server().await else { return };
    let dir = support::tempdir();
    let kh = dir.path().join("known_hosts");
    let rsa = std::fs::read_to_string(sshd.host_key_pub("rsa")).unwrap();
    let fields: Vec<&str> = rsa.split_whitespace().take(2).collect();
    std::fs::write(&kh, format!("[127.0.0.1]:{} {}\n", sshd.port, fields.join(" "))).unwrap();
    connect(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh))).await.unwrap();
}

#[tokio::test]
async fn scan_matches_ssh_keygen_and_records() {
    let Some(sshd) = server().await else { return };
    let scanned = scan_host_key(Given::Argument("wharf trust"), "127.0.0.1", sshd.port, Duration::from_secs(10)).await.unwrap();
    assert_eq!(scanned.fingerprint, fingerprint_of(&sshd.host_key_pub("ed25519")).unwrap());
    assert_eq!(scanned.algorithm, "ssh-ed25519");
    let prefix = format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port);
    assert!(scanned.known_hosts_line.starts_with(&prefix), "{}", scanned.known_hosts_line);
    let dir = support::tempdir();
    let kh = dir.path().join("new/known_hosts");
    add_to_known_hosts(&kh, &scanned.known_hosts_line).unwrap();
    add_to_known_hosts(&kh, &scanned.known_hosts_line).unwrap();
    assert_eq!(std::fs::read_to_string(&kh).unwrap().lines().count(), 1, "no duplicate");
    connect(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh))).await.unwrap();
}

#[tokio::test]
async fn unreachable_port_is_transient() {
    // Needs no server: nothing listens on a port that was just free.
    let port = support::free_port();
    let spec = SftpSpec {
        name: "server".into(),
        host: "127.0.0.1".into(),
        port,
        user: "nobody".into(),
        auth: SshAuth::Password(Secret::new("x")),
        host_key: HostKeyPolicy::Fingerprint("SHA256:x".into()),
        root: "/".into(),
        connect_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(5),
        max_connections: 1,
    };
    let err = refused(spec).await;
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    let reach = format!("cannot reach 127.0.0.1:{port}: ");
    assert!(err.to_string().contains(&reach), "{err}");
    // `wharf trust`'s scan says it as a flow's connection does (it said only "Connection
    // refused", or "failed to lookup address information" for a host name that does not resolve).
    let err = scan_host_key(Given::Argument("wharf trust"), "127.0.0.1", port, Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains(&reach), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_cut_by_server_restart_fails_transient_then_recovers() {
    let Some(sshd) = server().await else { return };
    let ep = connect(sshd.sftp_spec(sshd.password_auth())).await.unwrap();
    let path = RemotePath::parse("cut.bin").unwrap();
    let mut w = ep.open_write(&path).await.unwrap();
    w.write_all(&[1u8; 64 * 1024]).await.unwrap();
    tokio::task::block_in_place(|| sshd.restart());
    let res = async {
        for _ in 0..64 {
            w.write_all(&[2u8; 64 * 1024]).await?;
        }
        w.finish().await
    }
    .await;
    let err = res.expect_err("a write on a killed session cannot succeed");
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    // The next operation reconnects.
    ep.list(&RemotePath::root()).await.unwrap();
}

fn wharf() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
}

#[test]
fn trust_of_a_host_name_that_does_not_resolve_says_what_to_check() {
    // Needs no server nor network: `.invalid` never resolves (RFC 6761). The scan said
    // "failed to lookup address information" alone.
    let dir = support::tempdir();
    let out = wharf().arg("trust").arg("nosuch.invalid:2222").arg("--known-hosts").arg(dir.path().join("kh")).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("cannot reach nosuch.invalid:2222: the host name does not resolve ("), "{err}");
    assert!(err.contains("check the host name `nosuch.invalid` given to `wharf trust` (or the DNS"), "{err}");
    assert!(!dir.path().join("kh").exists(), "nothing recorded");
}

fn trust(sshd: &Sshd, kh: &Path, extra: &[&str], stdin: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = wharf()
        .arg("trust")
        .arg(format!("127.0.0.1:{}", sshd.port))
        .arg("--known-hosts")
        .arg(kh)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[tokio::test]
async fn trust_cli_asks_records_and_refuses_changed_keys() {
    let Some(sshd) = server().await else { return };
    let dir = support::tempdir();
    let kh = dir.path().join("ssh/known_hosts");

    let (code, out, _) = trust(&sshd, &kh, &[], "n\n");
    assert_eq!(code, 1, "declined: {out}");
    assert!(out.contains(&format!("127.0.0.1:{} ssh-ed25519 {}", sshd.port, sshd.fingerprint())), "{out}");
    assert!(out.contains("Record this key in"), "{out}");
    assert!(!kh.exists(), "nothing recorded when declined");

    let (code, out, err) = trust(&sshd, &kh, &[], "y\n");
    assert_eq!(code, 0, "{out}{err}");
    connect(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh.clone()))).await.unwrap();
    let (code, out, _) = trust(&sshd, &kh, &["--yes"], "");
    assert_eq!((code, out.contains("Already recorded")), (0, true), "{out}");

    // Another key recorded for this host: refused without --yes, recorded with it.
    let other_dir = support::tempdir();
    keygen(&["-t", "ed25519", "-N", "", "-f"], &other_dir.path().join("k")).unwrap();
    let other = std::fs::read_to_string(other_dir.path().join("k.pub")).unwrap();
    let fields: Vec<&str> = other.split_whitespace().take(2).collect();
    let kh2 = dir.path().join("known_hosts2");
    std::fs::write(&kh2, format!("[127.0.0.1]:{} {}\n", sshd.port, fields.join(" "))).unwrap();
    let (code, _, err) = trust(&sshd, &kh2, &[], "y\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("HOST KEY CHANGED"), "{err}");
    // What to do next is the `--yes` below (it said "remove line 1 … and run this again").
    assert!(err.contains(&format!("run this again with --yes to replace line 1 of {}.", kh2.display())), "{err}");
    assert_eq!(std::fs::read_to_string(&kh2).unwrap().lines().count(), 1, "unchanged");
    let (code, out, err) = trust(&sshd, &kh2, &["--yes"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Replaced line 1"), "{out}");
    let recorded = std::fs::read_to_string(&kh2).unwrap();
    assert!(recorded.lines().count() == 1 && !recorded.contains(fields[1]), "the old key is no longer trusted: {recorded}");
    connect(with_host_key(sshd.sftp_spec(sshd.password_auth()), HostKeyPolicy::KnownHosts(kh2))).await.unwrap();
}

/// A server that stops taking connections while one of ours is open (a limit of sessions
/// per user or address, MaxStartups): with `max_connections: 2`, a second file opened
/// beside the first goes to the open connection instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_extra_connection_leaves_the_work_to_the_open_one() {
    let Some(sshd) = server().await else { return };
    for name in ["a.txt", "b.txt"] {
        std::fs::write(sshd.data_dir().join(name), name.repeat(1000)).unwrap();
    }
    let spec = sshd.sftp_spec(sshd.password_auth());
    assert_eq!(spec.max_connections, 2);
    let ep = connect(spec).await.unwrap_or_else(|e| panic!("{e}"));
    tokio::task::block_in_place(|| sshd.stop_listening());
    let mut a = ep.open_read(&RemotePath::parse("a.txt").unwrap(), 0).await.unwrap();
    let mut b = ep.open_read(&RemotePath::parse("b.txt").unwrap(), 0).await.expect("the second file shares the open connection");
    for (stream, name) in [(&mut a, "a.txt"), (&mut b, "b.txt")] {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, name.repeat(1000).into_bytes());
    }
}

/// An SFTP endpoint pointed at an FTP server, and an FTP endpoint at an SSH server: each is
/// told at once, with what the server said, which `type` or port was meant (before: the SFTP
/// side waited out its connect timeout and called it transient, the FTP side said "invalid
/// syntax").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wrong_protocol_on_a_port_is_named() {
    let Some(sshd) = server().await else { return };
    let Some(ftpd) = tokio::task::spawn_blocking(support::ftpd::Ftpd::vsftpd).await.unwrap() else { return };
    let mut spec = sshd.sftp_spec(sshd.password_auth());
    spec.port = ftpd.port();
    let started = std::time::Instant::now();
    let err = refused(spec).await;
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("greeted with `220 (vsFTPd") && err.to_string().contains("type: ftp"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "not the connect timeout: {:?}", started.elapsed());

    let mut spec = ftpd.spec(wharf::config::flow::FtpTls::None);
    spec.port = sshd.port;
    let err = wharf::endpoint::ftp::FtpEndpoint::new(spec).connect_now().await.expect_err("no FTP there");
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("greeted with `SSH-2.0-") && err.to_string().contains("type: sftp"), "{err}");
}

/// A server that takes passwords only through keyboard-interactive (PAM; `PasswordAuthentication
/// no`, common on appliances and hardened hosts): the password answers its one hidden prompt,
/// as OpenSSH's `sftp`, rclone and WinSCP do.
#[tokio::test]
async fn a_password_is_given_to_a_server_that_asks_for_it_by_keyboard_interactive() {
    let extra = ["PasswordAuthentication no", "KbdInteractiveAuthentication yes", "UsePAM yes"];
    let Some(sshd) = tokio::task::spawn_blocking(move || Sshd::start_with(&extra)).await.unwrap() else { return };
    if let Err(e) = connect(sshd.sftp_spec(sshd.password_auth())).await {
        // PAM itself unusable here: the password taken but the session refused (a container
        // refusing pam_loginuid), or PAM not starting at all — the machine's, not the
        // login's; said, not failed. A refused password is a failure.
        let log = sshd.log();
        if log.contains("Accepted keyboard-interactive") || log.contains("pam_start") {
            eprintln!("skipped: sshd's PAM does not work on this machine ({e})\n{log}");
            return;
        }
        panic!("{e}\n--- sshd log ---\n{log}");
    }
    login_ok(&sshd, sshd.password_auth()).await;
    let err = refused(sshd.sftp_spec(SshAuth::Password(Secret::new("not-the-pass-Zq9")))).await;
    assert_eq!(err.kind, ErrorKind::AuthFailed, "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-pass-Zq9"), "{err}");
}

/// A password refused by a server that does not take passwords at all says so: the methods
/// the server offers are named.
#[tokio::test]
async fn a_refused_login_names_the_methods_the_server_accepts() {
    let extra = ["PasswordAuthentication no", "KbdInteractiveAuthentication no"];
    let Some(sshd) = tokio::task::spawn_blocking(move || Sshd::start_with(&extra)).await.unwrap() else { return };
    let err = refused(sshd.sftp_spec(sshd.password_auth())).await;
    assert_eq!(err.kind, ErrorKind::AuthFailed, "{err}");
    assert!(err.to_string().contains("the server accepts: publickey"), "{err}");
}

/// A server that wants a key and a password (`AuthenticationMethods publickey,password`, as
/// some banks' do): the key alone is told to be not enough, the key with a password beside it
/// logs in.
#[tokio::test]
async fn a_server_asking_for_a_key_and_a_password_gets_both() {
    let extra = ["AuthenticationMethods publickey,password"];
    let Some(sshd) = tokio::task::spawn_blocking(move || Sshd::start_with(&extra)).await.unwrap() else { return };
    let key = client_keys().unwrap().ed25519.clone();
    let err = refused(sshd.sftp_spec(sshd.key_auth(&key, None))).await;
    assert_eq!(err.kind, ErrorKind::AuthFailed, "{err}");
    assert!(err.to_string().contains("asks for more (the server accepts: password)"), "{err}");
    let both = SshAuth::Key { path: key.clone(), passphrase: None, password: Some(Secret::new(sshd.password())) };
    login_ok(&sshd, both).await;
    // A wrong password after the key: refused, the password not shown.
    let wrong = SshAuth::Key { path: key, passphrase: None, password: Some(Secret::new("not-the-pass-Zq9")) };
    let err = refused(sshd.sftp_spec(wrong)).await;
    assert_eq!(err.kind, ErrorKind::AuthFailed, "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-pass-Zq9"), "{err}");
}
