//! What the SFTP endpoint says when OpenSSH answers a bare `SSH_FX_FAILURE`: a folder where
//! an upload's final name should go, and a full disk (a small tmpfs mounted in the server's
//! data folder; skipped where mounting is not allowed). Against a private sshd (see
//! `support::sshd`).

use crate::support;
use support::{counts, json_of};

use std::fs;

use wharf::endpoint::sftp::SftpEndpoint;
use wharf::endpoint::{Endpoint, EndpointError, ErrorKind, RemotePath};

use support::sshd::Sshd;
use support::tmpfs::Tmpfs;

async fn server() -> Option<Sshd> {
    tokio::task::spawn_blocking(Sshd::start).await.unwrap()
}

fn p(s: &str) -> RemotePath {
    RemotePath::parse(s).unwrap()
}

async fn upload(ep: &SftpEndpoint, path: &RemotePath, data: &[u8]) -> Result<(), EndpointError> {
    let mut w = ep.open_write(path).await?;
    for chunk in data.chunks(64 * 1024) {
        w.write_all(chunk).await?;
    }
    w.finish().await
}

fn assert_folder_named(res: Result<(), EndpointError>, target: &str) {
    let err = res.expect_err("a file cannot replace a folder");
    assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains(&format!("{target} is a folder on the server")), "{err}");
}

/// An upload whose final name is a folder on the server, written directly or renamed onto
/// it: each says the target is a folder (before: "protocol error: Failure").
#[tokio::test]
async fn a_folder_under_the_final_name_is_named() {
    let Some(sshd) = server().await else { return };
    fs::create_dir_all(sshd.data_dir().join("in/a.csv")).unwrap();
    sshd.give_to_user(sshd.data_dir());
    let ep = SftpEndpoint::new(sshd.sftp_spec(sshd.password_auth()));
    let target = p("in/a.csv");
    assert_folder_named(upload(&ep, &target, b"streamed").await, "/in/a.csv");
    assert_folder_named(ep.write_small(&target, b"whole").await.map(drop), "/in/a.csv");
    ep.write_small(&p("in/.a.csv.part"), b"renamed").await.unwrap();
    assert_folder_named(ep.rename(&p("in/.a.csv.part"), &target, true).await, "/in/a.csv");
    assert!(sshd.data_dir().join("in/a.csv").is_dir());
}

/// A folder that cannot be made below the one the sink names is named, not only the sink's
/// (was: `create directory /ro/a/b: permission denied: Permission denied`, the failing
/// `/ro/a` nowhere).
#[tokio::test]
async fn a_folder_that_cannot_be_made_is_named() {
    let Some(sshd) = server().await else { return };
    sshd.give_to_user(sshd.data_dir());
    fs::create_dir_all(sshd.data_dir().join("ro")).unwrap(); // root's: the login may not write in it
    let ep = SftpEndpoint::new(sshd.sftp_spec(sshd.password_auth()));
    let err = ep.create_dir_all(&p("ro/a/b")).await.expect_err("the login may not write in /ro");
    assert_eq!(err.kind, ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("create directory /ro/a/b") && err.to_string().contains("making /ro/a: "), "{err}");
    let err = ep.create_dir_all(&p("ro/c")).await.expect_err("the login may not write in /ro");
    assert!(!err.to_string().contains("making"), "the folder named is the one that failed: {err}");
}

/// A push with `if_exists: overwrite` onto a folder of the file's name fails that file for
/// good, saying why, instead of "protocol error: Failure"; it is not left to be retried.
#[test]
fn a_push_overwriting_a_folder_fails_the_file_saying_so() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    fs::create_dir_all(dir.path().join("outbox")).unwrap();
    fs::write(dir.path().join("outbox/a.csv"), b"data").unwrap();
    fs::create_dir_all(sshd.data_dir().join("inbox/a.csv")).unwrap();
    sshd.give_to_user(sshd.data_dir());
    let yaml = format!(
        "name: push\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: here\n  path: /outbox\nsinks:\n  - endpoint: partner\n    path: /inbox\n    if_exists: overwrite\n",
        ep = sshd.endpoint_yaml(4),
        root = dir.path().display().to_string(),
    );
    let flow = dir.path().join("flow.yaml");
    fs::write(&flow, yaml).unwrap();
    let (_, r) = json_of(support::wharf(&dir.path().join("state")).args(["run", "--json"]).arg(&flow));
    assert_eq!(counts(&r), (0, 0, 0, 1), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("/inbox/a.csv is a folder on the server"), "{detail}");
    assert!(!detail.contains("next run resumes it"), "not retried: {detail}");
    assert!(sshd.data_dir().join("inbox/a.csv").is_dir());
    assert!(fs::read_dir(sshd.data_dir().join("inbox")).unwrap().count() == 1, "no temp file left behind");
}

/// The server's disk full (ENOSPC, which OpenSSH answers with a bare FAILURE): the error says
/// the server refused the write and that its disk is full, with the free space it reports
/// (before: "protocol error: Failure"). Streamed and whole-file writes alike.
#[tokio::test]
async fn a_full_server_disk_is_named_with_the_free_space() {
    let Some(sshd) = server().await else { return };
    let Some(_mnt) = Tmpfs::mount(&sshd.data_dir().join("full"), "1m") else { return };
    let ep = SftpEndpoint::new(sshd.sftp_spec(sshd.password_auth()));
    let err = upload(&ep, &p("full/big.bin"), &vec![7u8; 2 << 20]).await.expect_err("2 MiB do not fit in 1 MiB");
    assert_eq!(err.kind, ErrorKind::NoSpace, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("the server refused the write (it said `Failure`): the server's disk is full ("), "{msg}");
    assert!(msg.contains("free in /") && !msg.ends_with("Failure"), "{msg}");
    // The partial file still fills the disk: a whole small file is refused the same way.
    let err = ep.write_small(&p("full/small.bin"), &[1u8; 64 * 1024]).await.expect_err("no room left");
    assert_eq!(err.kind, ErrorKind::NoSpace, "{err}");
    assert!(err.to_string().contains("the server's disk is full"), "{err}");
}

/// A push onto a partner's full disk: the file waits for the next run — not retried within
/// the run (its backoff of 30 s would show), not failed for good (`after.failure` is not
/// applied), its partial upload removed — and goes once the partner has made room.
#[test]
fn a_push_onto_a_full_disk_waits_for_the_next_run() {
    let Some(sshd) = Sshd::start() else { return };
    let Some(mnt) = Tmpfs::mount(&sshd.data_dir().join("inbox"), "1m") else { return };
    let dir = support::tempdir();
    fs::create_dir_all(dir.path().join("outbox")).unwrap();
    fs::write(dir.path().join("outbox/a.bin"), vec![7u8; 2 << 20]).unwrap();
    let yaml = format!(
        "name: push\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: here\n  path: /outbox\nsinks:\n  - endpoint: partner\n    path: /inbox\nafter:\n  failure: {{ move_to: /failed }}\nretry: {{ attempts: 3, backoff: 30s }}\n",
        ep = sshd.endpoint_yaml(4),
        root = dir.path().display().to_string(),
    );
    let flow = dir.path().join("flow.yaml");
    fs::write(&flow, yaml).unwrap();
    let started = std::time::Instant::now();
    let (_, r) = json_of(support::wharf(&dir.path().join("state")).args(["run", "--json"]).arg(&flow));
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "not retried within the run");
    assert_eq!(counts(&r), (0, 0, 0, 1), "{r:#}");
    let detail = r["files"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("the server's disk is full") && detail.contains("(failed in 1 run; the next run tries again)"), "{detail}");
    assert!(dir.path().join("outbox/a.bin").exists(), "after.failure is not applied: {detail}");
    assert_eq!(fs::read_dir(sshd.data_dir().join("inbox")).unwrap().count(), 0, "the partial upload is removed");
    mnt.resize("8m");
    let (_, r) = json_of(support::wharf(&dir.path().join("state")).args(["run", "--json"]).arg(&flow));
    assert_eq!(counts(&r), (0, 1, 0, 0), "{r:#}");
    assert_eq!(fs::read(sshd.data_dir().join("inbox/a.bin")).unwrap().len(), 2 << 20);
}
