//! What the FTP endpoint does beyond the shared conformance suite, against real servers:
//! active mode, the EPSV → PASV fallback, certificate pinning and refusals (with the
//! fingerprint in the message), the per-endpoint connection limit, idle connections that
//! are checked before reuse, sessions the server ends with a 5xx, a plain login to a
//! server that takes only TLS ones, implicit TLS on a plain port, `tls_max_version`, and TLS
//! sessions kept apart per login.

use crate::support;

use std::time::Duration;

use wharf::config::flow::{CertTrust, FtpSpec, FtpTls, TlsVersion};
use wharf::config::validate::parse_cert_fingerprint;
use wharf::endpoint::ftp::FtpEndpoint;
use wharf::endpoint::{Endpoint, EntryKind, ErrorKind, ReadStream, RemotePath};

use support::ftpd::Ftpd;

fn p(s: &str) -> RemotePath {
    RemotePath::parse(s).unwrap()
}

async fn write(ep: &FtpEndpoint, path: &str, data: &[u8]) {
    let mut w = ep.open_write(&p(path)).await.unwrap();
    w.write_all(data).await.unwrap();
    w.finish().await.unwrap();
}

async fn read(ep: &FtpEndpoint, path: &str, offset: u64) -> Vec<u8> {
    rest_of(&mut *ep.open_read(&p(path), offset).await.unwrap()).await
}

/// What is left to read of `r`, to its confirmed end.
async fn rest_of(r: &mut dyn ReadStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf).await.unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

/// Writes, lists, stats and reads back (from an offset) through `ep`.
async fn round_trip(ep: &FtpEndpoint, ftpd: &Ftpd) {
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    ep.create_dir_all(&p("x/y")).await.unwrap();
    write(ep, "x/y/data.bin", &data).await;
    assert!(std::fs::read(ftpd.data_dir().join("x/y/data.bin")).unwrap() == data, "stored bytes differ");
    let listed = ep.list(&p("x/y")).await.unwrap().entries;
    assert_eq!(listed.iter().map(|e| (e.path.as_str(), e.kind, e.size)).collect::<Vec<_>>(), [("x/y/data.bin", EntryKind::File, 300_000)]);
    assert!(read(ep, "x/y/data.bin", 0).await == data);
    assert!(read(ep, "x/y/data.bin", 123_457).await == data[123_457..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_mode_moves_data_both_ways() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    for tls in [FtpTls::None, FtpTls::Explicit] {
        let ep = FtpEndpoint::new(FtpSpec { passive: false, ..ftpd.spec(tls) });
        round_trip(&ep, &ftpd).await;
        ep.remove(&p("x/y/data.bin")).await.unwrap();
    }
    let log = ftpd.log();
    assert!(log.contains("\"PORT ") && !log.contains("\"EPSV\"") && !log.contains("\"PASV\""), "active mode used PORT only:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_max_version_is_the_version_negotiated_on_every_connection() {
    // vsftpd here takes TLS 1.3 and requires data connections to resume the control
    // connection's session: TLS 1.2 resumption has to work as well as 1.3's. vsftpd takes the
    // client's order of cipher suites: wharf's first is AES-128-GCM (a cheaper key schedule
    // for every data connection than AES-256-GCM's SHA-384).
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    for (max, want) in [(TlsVersion::V1_2, "TLSv1_2 "), (TlsVersion::V1_3, "TLSv1_3 ")] {
        let ep = FtpEndpoint::new(FtpSpec { tls_max_version: max, ..ftpd.spec(FtpTls::Explicit) });
        let facts = ep.facts().await.unwrap();
        let tls = facts.features.iter().find(|f| f.name == "TLS").and_then(|f| f.value.clone());
        assert!(tls.as_deref().is_some_and(|v| v.starts_with(want) && v.contains("AES_128_GCM_SHA256")), "{max:?}: {tls:?}");
        round_trip(&ep, &ftpd).await;
        ep.remove(&p("x/y/data.bin")).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_resumes_its_own_tls_session() {
    // vsftpd serves each login from a process with session-ticket keys of its own and refuses
    // a data connection that did not resume (522, `require_ssl_reuse`): a data connection that
    // offered another login's session was refused.
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let ep = std::sync::Arc::new(FtpEndpoint::new(FtpSpec { max_connections: 4, ..ftpd.spec(FtpTls::Explicit) }));
    let data = vec![7u8; 64 * 1024];
    ep.create_dir_all(&p("r")).await.unwrap();
    for i in 0..8 {
        write(&ep, &format!("r/{i}.bin"), &data).await;
    }
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let ep = ep.clone();
            tokio::spawn(async move {
                for i in 0..128 {
                    assert_eq!(read(&ep, &format!("r/{}.bin", (i + t) % 8), 0).await.len(), 64 * 1024);
                }
            })
        })
        .collect();
    for r in readers {
        r.await.unwrap();
    }
    assert!(!ftpd.log().contains("session reuse required"), "a data connection was refused:\n{}", ftpd.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_epsv_gets_pasv() {
    // pure-ftpd -b answers EPSV with 500 (while FEAT still lists it).
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::pure_ftpd_with(&["-b"])).await.unwrap() else { return };
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::Explicit));
    round_trip(&ep, &ftpd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_pinned_or_refused_with_their_fingerprint() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let real = ftpd.certs().fingerprint.clone();
    let pin = |fp: &str| FtpSpec { trust: CertTrust::Fingerprint(parse_cert_fingerprint(fp).unwrap()), ..ftpd.spec(FtpTls::Explicit) };

    // The pinned certificate is accepted whoever issued it: also on the implicit port.
    FtpEndpoint::new(pin(&real)).connect_now().await.unwrap();
    let implicit = FtpSpec { tls: FtpTls::Implicit, port: ftpd.implicit_port().unwrap(), ..pin(&real) };
    round_trip(&FtpEndpoint::new(implicit), &ftpd).await;

    let wrong_pin = format!("SHA256:{}", ["AB"; 32].join(":"));
    let untrusted = [
        (pin(&wrong_pin), "does not match the pinned fingerprint"),
        (FtpSpec { trust: CertTrust::CaFile(ftpd.certs().other_ca.clone()), ..ftpd.spec(FtpTls::Explicit) }, "not trusted"),
        (FtpSpec { trust: CertTrust::SystemRoots, ..ftpd.spec(FtpTls::Implicit) }, "the system's trusted CAs"),
    ];
    for (spec, why) in untrusted {
        let ep = FtpEndpoint::new(spec);
        let e = ep.connect_now().await.unwrap_err();
        let msg = e.to_string();
        assert_eq!(e.kind, ErrorKind::HostKey, "{msg}");
        assert!(msg.contains(why) && msg.contains(&format!("fingerprint: \"{real}\"")), "{msg}");
        // Every operation says the same, with its path.
        let e = ep.stat(&p("a")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::HostKey, "{e}");
        assert!(e.to_string().contains(&real), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_auth_failed_without_the_password() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::pure_ftpd).await.unwrap() else { return };
    let secret = "not-the-password-4711";
    let ep = FtpEndpoint::new(FtpSpec { password: wharf::config::Secret::new(secret), ..ftpd.spec(FtpTls::Explicit) });
    let e = ep.connect_now().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::AuthFailed, "{e}");
    assert!(e.to_string().contains("login as wharftest refused"), "{e}");
    assert!(!format!("{e} {e:?} {ep:?}").contains(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_limit_holds() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    std::fs::write(ftpd.data_dir().join("a.bin"), vec![1u8; 4 << 20]).unwrap();
    let spec = FtpSpec {
        max_connections: 2,
        connect_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(1),
        ..ftpd.spec(FtpTls::Explicit)
    };
    let ep = FtpEndpoint::new(spec);
    // Two transfers hold both logins…
    let first = ep.open_read(&p("a.bin"), 0).await.unwrap();
    let second = ep.open_read(&p("a.bin"), 0).await.unwrap();
    // …so a third operation waits, and gives up with a retry-worthy error instead of hanging.
    let e = ep.stat(&p("a.bin")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Transient, "{e}");
    assert!(e.to_string().contains("max_connections"), "{e}");
    drop(first);
    assert_eq!(ep.stat(&p("a.bin")).await.unwrap().unwrap().size, 4 << 20);
    drop(second);
    let logins = ftpd.log().matches("OK LOGIN").count();
    assert_eq!(logins, 3, "two held, one made after the first was dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_queue_past_the_timeout_while_connections_come_back() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    std::fs::write(ftpd.data_dir().join("a.bin"), vec![1u8; 1 << 20]).unwrap();
    let spec = FtpSpec {
        max_connections: 1,
        connect_timeout: Duration::from_secs(1),
        operation_timeout: Duration::from_secs(1),
        ..ftpd.spec(FtpTls::Explicit)
    };
    let ep = std::sync::Arc::new(FtpEndpoint::new(spec));
    // Four transfers of 0.9 s each on one login: the last waits about 2.7 s, longer than a
    // wait with nothing given back may last (2 s), but a login comes back every 0.9 s.
    let holds: Vec<_> = (0..4)
        .map(|_| {
            let ep = ep.clone();
            tokio::spawn(async move {
                let stream = ep.open_read(&p("a.bin"), 0).await?;
                tokio::time::sleep(Duration::from_millis(900)).await;
                drop(stream);
                Ok::<_, wharf::endpoint::EndpointError>(())
            })
        })
        .collect();
    for h in holds {
        h.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_checked_before_reuse() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::Explicit));
    std::fs::write(ftpd.data_dir().join("a.txt"), b"a").unwrap();
    ftpd.give_to_user(&ftpd.data_dir().join("a.txt"));
    assert!(ep.stat(&p("a.txt")).await.unwrap().is_some());
    tokio::task::block_in_place(|| ftpd.restart());
    tokio::time::sleep(Duration::from_secs(6)).await;
    // A rename is never retried after a lost connection (it may have happened): it works
    // only because the dead idle connection was noticed (NOOP) before it was used.
    ep.rename(&p("a.txt"), &p("b.txt"), false).await.unwrap();
    assert!(ftpd.data_dir().join("b.txt").exists());
}

/// vsftpd ends a session it cannot serve with `500 OOPS` and closes it; here its only
/// passive port is taken. That 5xx is a lost connection (retried on a new login, then a
/// transient error the run retries later), not a refusal of the file, and not a sign that
/// the server lacks EPSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_server_ends_with_a_5xx_is_transient() {
    let taken = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let (lo, hi) = (format!("pasv_min_port={port}"), format!("pasv_max_port={port}"));
    let Some(ftpd) = tokio::task::spawn_blocking(move || Ftpd::vsftpd_with(&[&lo, &hi])).await.unwrap() else { return };
    std::fs::write(ftpd.data_dir().join("a.txt"), b"a").unwrap();
    ftpd.give_to_user(&ftpd.data_dir().join("a.txt"));
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::None));
    let err = ep.open_read(&p("a.txt"), 0).await.err().expect("no passive port to be had");
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("OOPS"), "the server's own words: {err}");
    // Read whole alike (its EPSV and RETR sent together, the server closing on the RETR).
    let err = ep.read_small(&p("a.txt"), 10).await.expect_err("no passive port to be had");
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    assert!(err.to_string().contains("OOPS"), "the server's own words: {err}");
    drop(taken);
    assert_eq!(read(&ep, "a.txt", 0).await, b"a");
    let log = ftpd.log();
    assert!(log.contains("EPSV") && !log.contains("\"PASV\""), "EPSV kept:\n{log}");
}

/// A server that takes logins only over TLS, reached with `tls: none`: the error says to set
/// `tls` (not to check the password) and quotes the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_login_to_a_server_that_wants_tls_is_told_to_set_tls() {
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::vsftpd_with(&["force_local_logins_ssl=YES"])).await.unwrap() else { return };
    let err = FtpEndpoint::new(ftpd.spec(FtpTls::None)).connect_now().await.expect_err("a plain login is refused");
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("set `tls: explicit`") && msg.contains("530 Non-anonymous sessions must use encryption"), "{msg}");
    FtpEndpoint::new(ftpd.spec(FtpTls::Explicit)).connect_now().await.expect("the same login over TLS");
}

/// `tls: implicit` on the port of explicit FTPS: the server's plain greeting is named as such
/// (not "corrupt message of type InvalidContentType"), with the ports to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_on_a_plain_port_says_the_server_answered_in_plain_text() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let mut spec = ftpd.spec(FtpTls::Implicit);
    spec.port = ftpd.spec(FtpTls::Explicit).port;
    let err = FtpEndpoint::new(spec).connect_now().await.expect_err("no TLS on that port");
    assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("answered in plain text, not TLS") && msg.contains("implicit FTPS usually listens on 990"), "{msg}");
}

/// A read over plain FTP says which file it opened, as the listing describes files: its
/// `MDTM` (and for a stream its `SIZE`) asked in the same write as `EPSV` and `RETR`. A file
/// replaced under its name since it was listed (same size, a minute later) reads as the new
/// one — what a flow keeping its source takes as "replaced since it was listed" instead of
/// delivering it under the listed version's identity. Over FTPS (no pipelining) reads say
/// nothing: the documented limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_says_which_file_it_opened() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let ftps = FtpEndpoint::new(ftpd.spec(FtpTls::Explicit));
    ftps.create_dir_all(&p("o")).await.unwrap();
    write(&ftps, "o/v.bin", b"version one").await;
    assert!(!ftps.capabilities().describes_opened);
    assert_eq!(ftps.read_small(&p("o/v.bin"), 100).await.unwrap(), (b"version one".to_vec(), None));
    assert_eq!(ftps.open_read(&p("o/v.bin"), 0).await.unwrap().opened(), None);
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::None));
    let listed = ep.list(&p("o")).await.unwrap().entries.remove(0);
    assert!(ep.capabilities().describes_opened);
    let (_, opened) = ep.read_small(&p("o/v.bin"), 100).await.unwrap();
    assert_eq!(opened.as_ref(), Some(&listed), "read whole");
    assert_eq!(ep.open_read(&p("o/v.bin"), 3).await.unwrap().opened(), Some(&listed), "streamed from an offset");

    let later = listed.mtime.unwrap() + Duration::from_secs(60);
    let new = ftpd.data_dir().join("o/v.new");
    std::fs::write(&new, b"version two").unwrap();
    std::fs::File::options().write(true).open(&new).unwrap().set_modified(later).unwrap();
    ftpd.give_to_user(&new);
    std::fs::rename(&new, ftpd.data_dir().join("o/v.bin")).unwrap();
    let (data, opened) = ep.read_small(&p("o/v.bin"), 100).await.unwrap();
    assert_eq!((&data[..], opened.map(|e| (e.size, e.mtime))), (&b"version two"[..], Some((11, Some(later)))));
    let mut stream = ep.open_read(&p("o/v.bin"), 8).await.unwrap();
    assert_eq!(stream.opened().map(|e| (e.size, e.mtime)), Some((11, Some(later))));
    assert_eq!(rest_of(&mut *stream).await, b"two", "read to its confirmed end");
    ep.remove(&p("o/v.bin")).await.unwrap();
}

/// Listing a path that names a file (a source `path:` naming the file) says so after one
/// look at what is there, not two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_a_file_looks_at_it_once() {
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::None));
    ep.create_dir_all(&p("l")).await.unwrap();
    write(&ep, "l/a.csv", b"x").await;
    let err = ep.list(&p("l/a.csv")).await.expect_err("a file is no folder");
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    let log = ftpd.log();
    let looks = log.lines().filter(|l| l.contains("\"SIZE ") && l.ends_with("/l/a.csv\"")).count();
    assert_eq!(looks, 1, "{log}");
}

/// A server that lists MDTM among its features but refuses it (vsftpd's `cmds_denied`):
/// its files are still listed (with their LIST times) and still there for a stat, so a push
/// never takes an existing file for a missing one and writes over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_mdtm_still_shows_its_files() {
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::vsftpd_with(&["cmds_denied=MDTM"])).await.unwrap() else { return };
    for tls in [FtpTls::None, FtpTls::Explicit] {
        let ep = FtpEndpoint::new(ftpd.spec(tls));
        ep.create_dir_all(&p("m")).await.unwrap();
        write(&ep, "m/a.csv", b"theirs").await;
        let listed = ep.list(&p("m")).await.unwrap().entries;
        assert_eq!(listed.iter().map(|e| (e.path.as_str(), e.size, e.mtime.is_some())).collect::<Vec<_>>(), [("m/a.csv", 6, true)]);
        let there = ep.stat(&p("m/a.csv")).await.unwrap().expect("a file SIZE answers for is there");
        assert_eq!((there.kind, there.size), (EntryKind::File, 6));
        assert_eq!(ep.stat(&p("m/b.csv")).await.unwrap(), None);
        // Reads work as ever; they only cannot say which file they opened.
        let (data, opened) = ep.read_small(&p("m/a.csv"), 100).await.unwrap();
        assert_eq!((&data[..], opened), (&b"theirs"[..], None), "{tls:?}");
        assert_eq!(ep.open_read(&p("m/a.csv"), 0).await.unwrap().opened(), None);
        assert_eq!(read(&ep, "m/a.csv", 2).await, b"eirs");
        ep.remove(&p("m/a.csv")).await.unwrap();
    }
}

/// A server that lists SIZE among its features but refuses it: an upload's size is checked
/// from the listing instead, and a file is there for a stat (so a push never writes over it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_size_still_has_uploads_checked() {
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::vsftpd_with(&["cmds_denied=SIZE"])).await.unwrap() else { return };
    for tls in [FtpTls::None, FtpTls::Explicit] {
        let ep = FtpEndpoint::new(ftpd.spec(tls));
        ep.create_dir_all(&p("s")).await.unwrap();
        write(&ep, "s/a.bin", &[7u8; 2000]).await;
        assert_eq!(ep.size(&p("s/a.bin")).await.unwrap(), Some(2000));
        assert_eq!(ep.size(&p("s/b.bin")).await.unwrap(), None);
        let there = ep.stat(&p("s/a.bin")).await.unwrap().expect("a file MDTM answers for is there");
        assert_eq!((there.kind, there.size), (EntryKind::File, 2000));
        assert_eq!(ep.stat(&p("s/b.bin")).await.unwrap(), None);
        // Over plain FTP a file read whole is as long as what came, with its time as listed;
        // a stream cannot say without SIZE.
        let listed = ep.list(&p("s")).await.unwrap().entries.remove(0);
        let (data, opened) = ep.read_small(&p("s/a.bin"), 3000).await.unwrap();
        assert_eq!((data.len(), opened), (2000, (tls == FtpTls::None).then_some(listed)), "{tls:?}");
        assert_eq!(ep.open_read(&p("s/a.bin"), 0).await.unwrap().opened(), None);
        ep.remove(&p("s/a.bin")).await.unwrap();
    }
}

/// A folder the login may not enter is told apart from a missing one (the server answers
/// both with 550).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_the_login_may_not_enter_is_not_called_missing() {
    use std::os::unix::fs::PermissionsExt;
    let Some(ftpd) = tokio::task::spawn_blocking(Ftpd::vsftpd).await.unwrap() else { return };
    let locked = ftpd.data_dir().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::None));
    let e = ep.list(&p("locked")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("refuses this login access"), "{e}");
    let e = ep.list(&p("missing")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

/// A server that allows no passive data connections (vsftpd's `pasv_enable=NO`): the error
/// says so and names `passive: false`, and it is the endpoint's configuration that is wrong
/// (the run stops; no file is failed for it), not a refusal of the folder or the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_passive_mode_is_told_to_use_active_mode() {
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::vsftpd_with(&["pasv_enable=NO"])).await.unwrap() else { return };
    std::fs::write(ftpd.data_dir().join("a.txt"), b"a").unwrap();
    ftpd.give_to_user(&ftpd.data_dir().join("a.txt"));
    let ep = FtpEndpoint::new(ftpd.spec(FtpTls::None));
    let err = ep.list(&p("")).await.expect_err("no passive data connection");
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("`passive: false`"), "{err}");
    let err = ep.open_read(&p("a.txt"), 0).await.err().expect("no passive data connection");
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    let mut spec = ftpd.spec(FtpTls::None);
    spec.passive = false;
    let active = FtpEndpoint::new(spec);
    assert_eq!(active.list(&p("")).await.unwrap().entries.len(), 1);
    assert_eq!(read(&active, "a.txt", 0).await, b"a");
}

/// A server that greets and then takes longer than `connect_timeout` to log in is called
/// slow, not an implicit-FTPS port (which would not greet at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_slower_than_the_timeout_is_not_taken_for_implicit_tls() {
    let Some(ftpd) = tokio::task::spawn_blocking(|| Ftpd::vsftpd_with(&["delay_successful_login=3"])).await.unwrap() else { return };
    let mut spec = ftpd.spec(FtpTls::None);
    spec.connect_timeout = Duration::from_secs(1);
    let err = FtpEndpoint::new(spec).connect_now().await.expect_err("the login takes 3 s");
    assert_eq!(err.kind, ErrorKind::Transient, "{err}");
    let msg = err.to_string();
    assert!(msg.contains("the server greeted, then stalled") && !msg.contains("implicit"), "{msg}");
}
