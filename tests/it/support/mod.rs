//! Shared test harness: temp dirs, free ports, and throw-away servers on 127.0.0.1.
//!
//! Declared once in `tests/it/main.rs`; a test module brings it in with `use crate::support;`.
//! Main pieces:
//! - [`sshd::Sshd`]: a private OpenSSH sshd per test (`Sshd::start()` → `None` + `SKIP:` when
//!   not root or sshd is missing; panics instead when `WHARF_REQUIRE_SERVERS=1`).
//! - [`ftpd::Ftpd`]: private vsftpd (plain FTP and explicit FTPS on one port, implicit FTPS on
//!   another) or pure-ftpd (MLSD) servers, with the same skip/panic rule.
//! - [`halt::run_and_kill_at`]: `wharf` run up to a test halt point, its peak RSS, SIGKILL.
//! - [`http_receiver::HttpReceiver`] / [`smtp_receiver::SmtpReceiver`]: in-process HTTP and
//!   SMTP (STARTTLS, AUTH) servers recording what notifications deliver.
//! - [`TempDir`] / [`tempdir`], [`wait_for_port`], [`free_port`].
//! - [`wharf`] (the binary on a state folder), [`json_of`] (its `--json` output), [`text`]
//!   (a command's stdout and stderr), [`walk`] (files under a folder), [`counts`] (a JSON
//!   run report's counts).
#![allow(dead_code)]

pub mod ftpd;
pub mod halt;
pub mod http_receiver;
pub mod partner;
pub mod smtp_receiver;
pub mod sshd;
pub mod tmpfs;

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub use tempfile::TempDir;

/// A fresh temporary directory, deleted on drop.
pub fn tempdir() -> TempDir {
    tempfile::tempdir().expect("create a temp dir")
}

/// A port on 127.0.0.1 that was free a moment ago (bind to 0, read it, release it).
/// Another process may take it before you do: callers retry on a bind failure.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`. False on timeout.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_millis(200)).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True when tests must not skip for lack of servers (CI sets `WHARF_REQUIRE_SERVERS=1`).
pub fn servers_required() -> bool {
    std::env::var("WHARF_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// A TLS acceptor for test servers on 127.0.0.1: the test CA's server certificate (for
/// `127.0.0.1` and `localhost`, see [`ftpd::certs`]) over aws-lc-rs. Panics when the
/// certificates cannot be made (the `openssl` CLI is needed).
pub fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = ftpd::certs().expect("test certificates (openssl)");
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(&certs.cert).expect("server.pem").collect::<Result<_, _>>().expect("server.pem");
    let key = PrivateKeyDer::from_pem_file(&certs.key).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
}

/// A finished command's stdout and stderr, as text (for assertions and their messages).
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A command's standard output, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A command's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `dir/flows/NAME.yaml`: a flow moving `*.csv` from `root/outbox` to `root/archive`
/// (both made here), local folders only.
pub fn local_flow(dir: &Path, name: &str, root: &Path) -> PathBuf {
    let flows = dir.join("flows");
    std::fs::create_dir_all(&flows).unwrap();
    for d in ["outbox", "archive"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let file = flows.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            "name: {name}\nendpoints:\n  outbox: {{ type: local, root: {0}/outbox }}\n  archive: {{ type: local, root: {0}/archive }}\n\
             source: {{ endpoint: outbox, path: /, include: [\"*.csv\"] }}\nsinks:\n  - {{ endpoint: archive, path: / }}\n",
            root.display()
        ),
    )
    .unwrap();
    file
}

/// Every file below `p`, at any depth (none when `p` is missing).
pub fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// `(not_ready, delivered, skipped, failed)` of a `wharf run --json` report.
pub fn counts(v: &serde_json::Value) -> (u64, u64, u64, u64) {
    let c = &v["counts"];
    (c["not_ready"].as_u64().unwrap(), c["delivered"].as_u64().unwrap(), c["skipped"].as_u64().unwrap(), c["failed"].as_u64().unwrap())
}

/// `wharf --state-dir STATE`, logging warnings only, with no test halt point set.
pub fn wharf(state: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
    c.arg("--state-dir").arg(state).env_remove("WHARF_TEST_HALT_AT").env("RUST_LOG", "wharf=warn");
    c
}

/// Runs `cmd` (a `wharf … --json` command line): its exit code and the JSON it printed.
pub fn json_of(cmd: &mut Command) -> (i32, serde_json::Value) {
    let out = cmd.output().unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), v)
}
