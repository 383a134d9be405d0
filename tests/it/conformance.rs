//! The endpoint conformance suite: every case runs against every backend, as `local::CASE`,
//! `sftp::CASE`, `ftp_plain::CASE`, `ftps_explicit::CASE`, `ftps_implicit::CASE` (vsftpd),
//! `ftp_mlsd::CASE` (pure-ftpd), `sandbox_sftp::CASE` and `sandbox_ftp::CASE` (`wharf
//! sandbox`'s in-process SFTP and FTP servers). Cases branch on `capabilities()`, never on
//! the backend.
//! Server backends use private servers (`support::sshd`, `support::ftpd`) and are skipped
//! where none can run; the sandbox needs nothing and always runs.

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wharf::config::flow::FtpTls;
use wharf::endpoint::ftp::FtpEndpoint;
use wharf::endpoint::local::LocalEndpoint;
use wharf::endpoint::sftp::SftpEndpoint;
use wharf::endpoint::{DynEndpoint, Entry, EntryKind, ErrorKind, PathError, RemotePath, SkipReason, Special};
use wharf::sandbox::{Sandbox, SandboxOptions};

use support::ftpd::{Flavor, Ftpd};
use support::sshd::Sshd;

/// One backend under test.
struct Backend {
    ep: DynEndpoint,
    /// The endpoint root as a folder on this machine (the truth cases compare against).
    root: PathBuf,
    /// Restarts the server (drops every connection); a no-op where there is none.
    restart: Box<dyn Fn() + Send + Sync>,
    /// Hands a file put directly under `root` to the account the endpoint acts as.
    own: Box<dyn Fn(&Path) + Send + Sync>,
    _keep: Box<dyn std::any::Any + Send + Sync>,
}

fn p(s: &str) -> RemotePath {
    RemotePath::parse(s).unwrap()
}

impl Backend {
    fn local(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Puts a file straight into the root (parents created), bypassing the endpoint.
    fn put(&self, rel: &str, data: &[u8]) {
        let path = self.local(rel);
        let mut made = Vec::new();
        let mut dir = path.parent().unwrap().to_path_buf();
        while !dir.exists() {
            made.push(dir.clone());
            dir = dir.parent().unwrap().to_path_buf();
        }
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        for d in made {
            (self.own)(&d);
        }
        (self.own)(&path);
    }

    fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.local(rel)).unwrap();
        (self.own)(&self.local(rel));
    }

    async fn write(&self, rel: &str, data: &[u8], chunk: usize) {
        let mut w = self.ep.open_write(&p(rel)).await.unwrap();
        for c in data.chunks(chunk.max(1)) {
            w.write_all(c).await.unwrap();
        }
        w.finish().await.unwrap();
    }

    async fn read(&self, rel: &str, offset: u64) -> Vec<u8> {
        let mut r = self.ep.open_read(&p(rel), offset).await.unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

fn local_backend() -> Backend {
    let dir = support::tempdir();
    Backend {
        ep: Arc::new(LocalEndpoint::new(dir.path())),
        root: dir.path().to_path_buf(),
        restart: Box::new(|| {}),
        own: Box::new(|_| {}),
        _keep: Box::new(dir),
    }
}

async fn sftp_backend() -> Option<Backend> {
    let sshd = Arc::new(tokio::task::spawn_blocking(Sshd::start).await.unwrap()?);
    let ep = SftpEndpoint::new(sshd.sftp_spec(sshd.password_auth()));
    if let Err(e) = ep.connect_now().await {
        panic!("connect: {e}\n--- sshd log ---\n{}", sshd.log());
    }
    let (s1, s2) = (sshd.clone(), sshd.clone());
    Some(Backend {
        ep: Arc::new(ep),
        root: sshd.data_dir().to_path_buf(),
        restart: Box::new(move || s1.restart()),
        own: Box::new(move |path| s2.give_to_user(path)),
        _keep: Box::new(sshd),
    })
}

async fn ftp_backend(flavor: Flavor, tls: FtpTls) -> Option<Backend> {
    let ftpd = tokio::task::spawn_blocking(move || match flavor {
        Flavor::Vsftpd => Ftpd::vsftpd(),
        Flavor::PureFtpd => Ftpd::pure_ftpd(),
    });
    let ftpd = Arc::new(ftpd.await.unwrap()?);
    let ep = FtpEndpoint::new(ftpd.spec(tls));
    if let Err(e) = ep.connect_now().await {
        panic!("connect: {e}\n--- server log ---\n{}", ftpd.log());
    }
    let (s1, s2) = (ftpd.clone(), ftpd.clone());
    Some(Backend {
        ep: Arc::new(ep),
        root: ftpd.data_dir().to_path_buf(),
        restart: Box::new(move || s1.restart()),
        own: Box::new(move |path| s2.give_to_user(path)),
        _keep: Box::new(ftpd),
    })
}

/// `wharf sandbox` in this process, over a temp folder, reached over SFTP or (`ftp`) FTP.
/// `restart` stops it (every client disconnected, the ports released) and starts it again on
/// the same ports with the same host key.
async fn sandbox_backend(ftp: bool) -> Option<Backend> {
    let dir = support::tempdir();
    let root = dir.path().join("served");
    std::fs::create_dir(&root).unwrap();
    let mut opts = SandboxOptions::new(&root, dir.path().join("state/ssh_host_ed25519_key"));
    opts.ftp_port = ftp.then_some(0);
    let sandbox = Sandbox::start(opts.clone()).await.expect("start the sandbox");
    opts.sftp_port = sandbox.sftp_addr().port();
    opts.ftp_port = sandbox.ftp_addr().map(|a| a.port());
    let ep: DynEndpoint = if ftp {
        let ep = FtpEndpoint::new(wharf::config::flow::FtpSpec {
            name: "server".into(),
            host: "127.0.0.1".into(),
            port: opts.ftp_port.unwrap(),
            user: opts.user.clone(),
            password: opts.password.clone(),
            tls: FtpTls::None,
            trust: wharf::config::flow::CertTrust::SystemRoots,
            tls_max_version: wharf::config::flow::TlsVersion::V1_3,
            passive: true,
            root: Some("/".into()),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_connections: 2,
            server_clock: Default::default(),
            use_pasv_address: false,
        });
        ep.connect_now().await.expect("connect to the sandbox over FTP");
        Arc::new(ep)
    } else {
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, sandbox.known_hosts_line()).unwrap();
        let ep = SftpEndpoint::new(wharf::config::flow::SftpSpec {
            name: "server".into(),
            host: "127.0.0.1".into(),
            port: opts.sftp_port,
            user: opts.user.clone(),
            auth: wharf::config::flow::SshAuth::Password(opts.password.clone()),
            host_key: wharf::config::flow::HostKeyPolicy::KnownHosts(known_hosts),
            root: "/".into(),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_connections: 1,
        });
        ep.connect_now().await.expect("connect to the sandbox over SFTP");
        Arc::new(ep)
    };
    let running = Arc::new(std::sync::Mutex::new(Some(sandbox)));
    let slot = running.clone();
    Some(Backend {
        ep,
        root: root.canonicalize().unwrap(),
        restart: Box::new(move || {
            tokio::runtime::Handle::current().block_on(async {
                let old = slot.lock().unwrap().take();
                if let Some(s) = old {
                    s.stop().await;
                }
                let new = Sandbox::start(opts.clone()).await.expect("restart on the same ports");
                *slot.lock().unwrap() = Some(new);
            })
        }),
        own: Box::new(|_| {}),
        _keep: Box::new((dir, running)),
    })
}

/// Expands each case into `BACKEND::CASE` for every backend.
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        conformance!(@backend local, Some(super::local_backend()); $($case),*);
        conformance!(@backend sftp, super::sftp_backend().await; $($case),*);
        conformance!(@backend ftp_plain, super::ftp_backend(super::Flavor::Vsftpd, super::FtpTls::None).await; $($case),*);
        conformance!(@backend ftps_explicit, super::ftp_backend(super::Flavor::Vsftpd, super::FtpTls::Explicit).await; $($case),*);
        conformance!(@backend ftps_implicit, super::ftp_backend(super::Flavor::Vsftpd, super::FtpTls::Implicit).await; $($case),*);
        conformance!(@backend ftp_mlsd, super::ftp_backend(super::Flavor::PureFtpd, super::FtpTls::Explicit).await; $($case),*);
        conformance!(@backend sandbox_sftp, super::sandbox_backend(false).await; $($case),*);
        conformance!(@backend sandbox_ftp, super::sandbox_backend(true).await; $($case),*);
    };
    (@backend $backend:ident, $make:expr; $($case:ident),*) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    if let Some(b) = $make {
                        super::$case(b).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    list_empty_dir,
    list_shows_files_and_dirs,
    list_skips_unrepresentable_names,
    list_says_what_an_entry_that_is_not_a_file_is,
    list_many_files_with_times,
    list_of_a_file_says_it_is_a_file,
    stat_missing_is_none,
    write_read_empty,
    write_read_all_byte_values,
    write_read_8_mib,
    read_at_offset,
    read_small_whole_and_cut,
    reads_describe_the_file_opened,
    reading_a_folder_says_it_is_a_folder,
    write_small_stores_and_reports,
    write_over_a_taken_name_replaces_where_declared,
    abandoned_write_leaves_endpoint_usable,
    two_files_open_at_once,
    rename_without_replace_refuses_existing,
    rename_replaces_existing,
    rename_into_other_dir,
    remove_and_remove_missing,
    create_dir_all_nested_and_idempotent,
    a_file_where_a_folder_should_be,
    create_dir_all_through_a_link_to_a_folder,
    unicode_and_spaces_in_names,
    parent_dir_refused_before_io,
    root_jail,
    reconnect_after_server_restart,
);

/// Listing a path that names a file (a source `path: /in/a.csv`) is a configuration mistake
/// no retry mends, and says so — not "not found", not an empty folder, not the file itself.
async fn list_of_a_file_says_it_is_a_file(b: Backend) {
    b.put("in/a.csv", b"x");
    let err = b.ep.list(&p("in/a.csv")).await.expect_err("a file is no folder");
    assert_eq!(err.kind, ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("/in/a.csv is a file, not a folder"), "{err}");
}

async fn list_empty_dir(b: Backend) {
    assert_eq!(b.ep.list(&RemotePath::root()).await.unwrap().entries, vec![], "a fresh root is empty");
    b.ep.create_dir_all(&p("empty")).await.unwrap();
    assert_eq!(b.ep.list(&p("empty")).await.unwrap().entries, vec![]);
    let err = b.ep.list(&p("missing")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    // Where the server looked, for a root of the endpoint's own (the local endpoint's label
    // names its folder; the sandbox serves its folder as `/`).
    let (shown, full) = (err.to_string(), b.root.join("missing").display().to_string());
    assert!(shown.contains(&format!("(on the server: {full})")) || shown.starts_with("local ") || shown.contains("sandbox@"), "{shown}");
}

fn abs_diff(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).or_else(|_| b.duration_since(a)).unwrap()
}

async fn list_shows_files_and_dirs(b: Backend) {
    b.put("d/a.txt", b"abc");
    b.put("d/b.bin", &[7u8; 1000]);
    b.mkdir("d/sub");
    let entries = b.ep.list(&p("d")).await.unwrap().entries;
    let got: Vec<(&str, EntryKind, u64)> = entries.iter().map(|e| (e.path.as_str(), e.kind, e.size)).collect();
    assert_eq!(got, vec![("d/a.txt", EntryKind::File, 3), ("d/b.bin", EntryKind::File, 1000), ("d/sub", EntryKind::Dir, 0)]);
    let precision = b.ep.capabilities().mtime_precision;
    for e in &entries {
        let truth = std::fs::metadata(b.local(e.path.as_str())).unwrap().modified().unwrap();
        let mtime = e.mtime.expect("mtime reported");
        assert!(abs_diff(mtime, truth) < precision, "{}: {mtime:?} vs {truth:?} (precision {precision:?})", e.path);
        assert_eq!(b.ep.stat(&e.path).await.unwrap().as_ref(), Some(e), "stat agrees with list");
    }
}

async fn list_skips_unrepresentable_names(b: Backend) {
    use std::os::unix::ffi::OsStrExt;
    b.put("odd/good.txt", b"ok");
    for bad in [&b"not-utf8-\xff.txt"[..], b"line\nbreak.txt", b"back\\slash.txt"] {
        let path = b.local("odd").join(std::ffi::OsStr::from_bytes(bad));
        std::fs::write(&path, b"x").unwrap();
        (b.own)(&path);
    }
    let listing = b.ep.list(&p("odd")).await.unwrap();
    let names: Vec<String> = listing.entries.into_iter().map(|e| e.path.as_str().to_string()).collect();
    assert_eq!(names, vec!["odd/good.txt"], "names no RemotePath can carry are skipped, the rest listed");
    // …and returned as skipped, printable, with the reason: the caller tells the flow's user.
    let mut skipped: Vec<(String, String, SkipReason)> =
        listing.skipped.into_iter().map(|s| (s.folder.to_string(), s.name, s.reason)).collect();
    skipped.sort();
    let odd = |name: &str, reason| ("/odd".to_string(), name.to_string(), reason);
    let line_break = odd("line\\nbreak.txt", SkipReason::ControlChar);
    // Some FTP servers (pure-ftpd, the sandbox's) leave a name with a line break out of their
    // listings: nobody can know of it then. Every other server shows it, and it is told.
    skipped.retain(|s| *s != line_break);
    assert_eq!(skipped, vec![odd("back\\slash.txt", SkipReason::NotAName), odd("not-utf8-\u{fffd}.txt", SkipReason::NotUtf8)]);
}

/// A symbolic link (to a file or to nothing) and a FIFO are listed, never as files (a link
/// is not followed), and say what they are, from what the listing carries anyway: a flow's
/// user is told "a symbolic link", not "not a regular file". An MLSD listing has no word
/// for a FIFO: it is then only not a file.
async fn list_says_what_an_entry_that_is_not_a_file_is(b: Backend) {
    b.put("sp/real.csv", b"x");
    std::os::unix::fs::symlink("real.csv", b.local("sp/link.csv")).unwrap();
    std::os::unix::fs::symlink("nowhere", b.local("sp/dangling.csv")).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(b.local("sp/pipe")).status().unwrap().success(), "mkfifo");
    let listing = b.ep.list(&p("sp")).await.unwrap();
    let mut kinds: Vec<(String, EntryKind)> = listing.entries.iter().map(|e| (e.path.name().to_string(), e.kind)).collect();
    let pipe = kinds.iter().position(|(n, _)| n == "pipe").expect("the FIFO is listed");
    let (_, fifo) = kinds.remove(pipe);
    assert!(matches!(fifo, EntryKind::Other(Special::Fifo | Special::Unknown)), "{fifo:?}");
    let link = EntryKind::Other(Special::Symlink);
    assert_eq!(kinds, [("dangling.csv".into(), link), ("link.csv".into(), link), ("real.csv".into(), EntryKind::File)]);
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
}

/// A listing long enough that an FTP server without MLSD has its MDTMs spread over several
/// logins: every file, each with its own time, in order.
async fn list_many_files_with_times(b: Backend) {
    let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for i in 0..300u64 {
        let rel = format!("many/f{i:03}.txt");
        b.put(&rel, b"x");
        let f = std::fs::File::options().write(true).open(b.local(&rel)).unwrap();
        f.set_modified(base + Duration::from_secs(i * 61)).unwrap();
    }
    let listed = b.ep.list(&p("many")).await.unwrap().entries;
    assert_eq!(listed.len(), 300);
    for (i, e) in listed.iter().enumerate() {
        assert_eq!(e.path, p(&format!("many/f{i:03}.txt")));
        let t = e.mtime.expect("a time");
        // LIST alone (minutes) where a server has neither MLSD nor MDTM.
        assert!(abs_diff(t, base + Duration::from_secs(i as u64 * 61)) < Duration::from_secs(60), "{e:?}");
    }
}

async fn stat_missing_is_none(b: Backend) {
    assert_eq!(b.ep.stat(&p("nope.txt")).await.unwrap(), None);
    assert_eq!(b.ep.stat(&p("no/such/dir/file")).await.unwrap(), None);
    let root = b.ep.stat(&RemotePath::root()).await.unwrap().expect("root exists");
    assert_eq!(root.kind, EntryKind::Dir);
    b.put("f.txt", b"12345");
    let f = b.ep.stat(&p("f.txt")).await.unwrap().unwrap();
    assert_eq!((f.kind, f.size, f.path.as_str()), (EntryKind::File, 5, "f.txt"));
}

async fn roundtrip(b: &Backend, rel: &str, data: &[u8], chunk: usize) {
    b.write(rel, data, chunk).await;
    assert!(std::fs::read(b.local(rel)).unwrap() == data, "stored bytes differ for {rel}");
    assert_eq!(b.ep.stat(&p(rel)).await.unwrap().unwrap().size, data.len() as u64);
    assert!(b.read(rel, 0).await == data, "read-back bytes differ for {rel}");
}

async fn write_read_empty(b: Backend) {
    roundtrip(&b, "empty.bin", &[], 1).await;
}

async fn write_read_all_byte_values(b: Backend) {
    let data: Vec<u8> = (0..=255u8).collect();
    roundtrip(&b, "bytes.bin", &data, 100).await;
    // Overwriting truncates: a shorter file replaces a longer one completely.
    roundtrip(&b, "bytes.bin", b"short", 5).await;
}

async fn write_read_8_mib(b: Backend) {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let data: Vec<u8> = (0..8 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    roundtrip(&b, "big.bin", &data, 64 * 1024 + 3).await;
}

async fn read_at_offset(b: Backend) {
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    b.put("o.bin", &data);
    assert!(b.read("o.bin", 99_990).await == data[99_990..]);
    assert!(b.read("o.bin", 12_345).await == data[12_345..]);
    assert!(b.read("o.bin", 100_000).await.is_empty(), "offset at the end reads nothing");
    let err = b.ep.open_read(&p("missing.bin"), 0).await.err().expect("missing file");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

/// `read_small`: the whole file when it is shorter than the limit (empty, a few bytes, several
/// reads' worth), else the first `limit` bytes; a missing file is NotFound.
async fn read_small_whole_and_cut(b: Backend) {
    let data: Vec<u8> = (0..700_001u32).map(|i| (i % 251) as u8).collect();
    b.put("s.bin", &data);
    b.put("e.bin", b"");
    b.put("t.bin", b"tiny");
    let read = |rel: &'static str, limit: usize| {
        let ep = b.ep.clone();
        async move { ep.read_small(&p(rel), limit).await.unwrap().0 }
    };
    assert!(read("s.bin", data.len() + 1).await == data, "whole, the end seen");
    assert!(read("s.bin", data.len()).await == data, "exactly the limit");
    assert!(read("s.bin", 300_000).await == data[..300_000], "cut at the limit");
    assert!(read("e.bin", 1).await.is_empty());
    assert_eq!(read("t.bin", 5).await, b"tiny");
    assert_eq!(read("t.bin", 3).await, b"tin");
    let err = b.ep.read_small(&p("missing.bin"), 10).await.expect_err("missing file");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

/// Where the backend says it can, a read (whole or streamed) describes the file it opened as
/// the listing does (size and time), and a stream keeps describing that file after another
/// took its name: what the engine compares with the listing to see a file replaced between
/// its listing and its download.
async fn reads_describe_the_file_opened(b: Backend) {
    b.put("v.bin", b"version one");
    let listed = b.ep.stat(&p("v.bin")).await.unwrap().unwrap();
    let (_, opened) = b.ep.read_small(&p("v.bin"), 100).await.unwrap();
    let stream = b.ep.open_read(&p("v.bin"), 0).await.unwrap();
    if !b.ep.capabilities().describes_opened {
        assert_eq!((opened, stream.opened()), (None, None));
        return;
    }
    let seen = |e: &Entry| (e.size, e.mtime);
    assert_eq!(opened.as_ref().map(seen), Some(seen(&listed)), "read whole");
    assert_eq!(stream.opened().map(seen), Some(seen(&listed)), "streamed");
    // Replaced under its name: same size, a minute later.
    let replacement = b.local("v.new");
    std::fs::write(&replacement, b"version two").unwrap();
    std::fs::File::options().write(true).open(&replacement).unwrap().set_modified(listed.mtime.unwrap() + Duration::from_secs(60)).unwrap();
    (b.own)(&replacement);
    std::fs::rename(&replacement, b.local("v.bin")).unwrap();
    assert_eq!(stream.opened().map(seen), Some(seen(&listed)), "the file opened, not the name's new one");
    let (data, opened) = b.ep.read_small(&p("v.bin"), 100).await.unwrap();
    assert_eq!(data, b"version two");
    assert_eq!(opened.map(|e| e.mtime), Some(Some(listed.mtime.unwrap() + Duration::from_secs(60))), "the new one read now");
}

/// A listed file that a folder took the name of before its download: reading it (whole or
/// streamed) fails for good (`Protocol`, not retried) and says it is a folder, not a bare
/// "Failure" or "Is a directory".
async fn reading_a_folder_says_it_is_a_folder(b: Backend) {
    b.mkdir("in/d.csv");
    let err = b.ep.read_small(&p("in/d.csv"), 100).await.expect_err("a folder is no file");
    assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("/in/d.csv is a folder"), "{err}");
    let err = match b.ep.open_read(&p("in/d.csv"), 0).await {
        Ok(mut stream) => stream.read(&mut [0u8; 1024]).await.expect_err("a folder is no file"),
        Err(err) => err,
    };
    assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
    assert!(err.to_string().contains("/in/d.csv is a folder"), "{err}");
}

/// `write_small`: creates or truncates, stores everything (several writes' worth too), and
/// a size it reports is the stored one; a missing folder is NotFound.
async fn write_small_stores_and_reports(b: Backend) {
    let big: Vec<u8> = (0..600_001u32).map(|i| (i % 253) as u8).collect();
    for (rel, data) in [("w/big.bin", &big[..]), ("w/big.bin", b"shorter now"), ("w/empty.bin", b"")] {
        b.ep.create_dir_all(&p("w")).await.unwrap();
        let reported = b.ep.write_small(&p(rel), data).await.unwrap();
        assert!(reported.is_none_or(|n| n == data.len() as u64), "{rel}: {reported:?}");
        assert!(std::fs::read(b.local(rel)).unwrap() == data, "{rel}");
    }
    let err = b.ep.write_small(&p("nowhere/x.bin"), b"x").await.expect_err("missing folder");
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
}

/// `write_replaces`: a streamed write to a name a longer file has leaves exactly the new
/// bytes there, under that name (the upload relies on it to skip removing a stale temporary
/// file first). Where not declared, nothing is promised (pure-ftpd `-r` stores it elsewhere).
async fn write_over_a_taken_name_replaces_where_declared(b: Backend) {
    b.ep.create_dir_all(&p("over")).await.unwrap();
    b.write("over/taken.bin", &[7u8; 100_000], 64 * 1024).await;
    b.write("over/taken.bin", b"new", 3).await;
    if b.ep.capabilities().write_replaces {
        assert_eq!(std::fs::read(b.local("over/taken.bin")).unwrap(), b"new");
        let names: Vec<String> = b.ep.list(&p("over")).await.unwrap().entries.into_iter().map(|e| e.path.name().to_string()).collect();
        assert_eq!(names, ["taken.bin"]);
    }
}

async fn abandoned_write_leaves_endpoint_usable(b: Backend) {
    {
        let mut w = b.ep.open_write(&p("part.bin")).await.unwrap();
        w.write_all(&vec![1u8; 1024 * 1024]).await.unwrap();
        // dropped without finish: nothing is promised about part.bin
    }
    let left = b.ep.stat(&p("part.bin")).await.unwrap();
    assert!(left.as_ref().is_none_or(|e| e.size <= 1024 * 1024), "never more than was written: {left:?}");
    // The endpoint (for sftp: the session the write was pipelined on) still works. A rewrite
    // of the *same* name is not part of the contract: local's abandoned write may still be
    // in flight (tokio runs it in the background) and land after a new write to that name.
    roundtrip(&b, "next.bin", b"complete", 8).await;
    b.ep.remove(&p("next.bin")).await.unwrap();
}

/// Two files open at once, as files in flight are (over SFTP with `max_connections: 2`,
/// each on a connection of its own; over FTP each holds a login).
async fn two_files_open_at_once(b: Backend) {
    let (x, y) = (p("x.bin"), p("y.bin"));
    let (mut wx, mut wy) = (b.ep.open_write(&x).await.unwrap(), b.ep.open_write(&y).await.unwrap());
    wx.write_all(b"first").await.unwrap();
    wy.write_all(b"second").await.unwrap();
    wy.finish().await.unwrap();
    wx.finish().await.unwrap();
    let (mut rx, mut ry) = (b.ep.open_read(&x, 0).await.unwrap(), b.ep.open_read(&y, 0).await.unwrap());
    let mut buf = [0u8; 16];
    let n = ry.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"second");
    let n = rx.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"first");
}

async fn rename_without_replace_refuses_existing(b: Backend) {
    b.put("a.txt", b"new");
    b.put("b.txt", b"old");
    let err = b.ep.rename(&p("a.txt"), &p("b.txt"), false).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(b.local("b.txt")).unwrap(), b"old", "target unchanged");
    assert_eq!(std::fs::read(b.local("a.txt")).unwrap(), b"new", "source kept");
    // Onto a free name it works.
    b.ep.rename(&p("a.txt"), &p("c.txt"), false).await.unwrap();
    assert_eq!(std::fs::read(b.local("c.txt")).unwrap(), b"new");
    assert!(!b.local("a.txt").exists());
}

async fn rename_replaces_existing(b: Backend) {
    b.put("a.txt", b"new");
    b.put("b.txt", b"old contents");
    b.ep.rename(&p("a.txt"), &p("b.txt"), true).await.unwrap();
    assert_eq!(std::fs::read(b.local("b.txt")).unwrap(), b"new");
    assert!(!b.local("a.txt").exists());
    // With nothing to replace it is a plain rename.
    b.put("x.txt", b"x");
    b.ep.rename(&p("x.txt"), &p("y.txt"), true).await.unwrap();
    assert_eq!(std::fs::read(b.local("y.txt")).unwrap(), b"x");
}

async fn rename_into_other_dir(b: Backend) {
    b.put("x/f.txt", b"f");
    b.mkdir("y");
    b.ep.rename(&p("x/f.txt"), &p("y/g.txt"), false).await.unwrap();
    assert_eq!(std::fs::read(b.local("y/g.txt")).unwrap(), b"f");
    assert!(!b.local("x/f.txt").exists());
    let err = b.ep.rename(&p("x/f.txt"), &p("y/h.txt"), false).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    // The refusal left the connection in step (FTP pipelines RNFR and RNTO: the refused
    // RNFR's RNTO is refused too, and both replies are read).
    for _ in 0..3 {
        assert_eq!(b.ep.stat(&p("y/g.txt")).await.unwrap().map(|e| e.size), Some(1));
        assert!(b.ep.rename(&p("y/g.txt"), &p("y/nowhere/g.txt"), true).await.is_err());
    }
    b.ep.rename(&p("y/g.txt"), &p("y/h.txt"), true).await.unwrap();
    assert_eq!(std::fs::read(b.local("y/h.txt")).unwrap(), b"f");
}

async fn remove_and_remove_missing(b: Backend) {
    b.put("gone.txt", b"x");
    b.ep.remove(&p("gone.txt")).await.unwrap();
    assert!(!b.local("gone.txt").exists());
    let err = b.ep.remove(&p("gone.txt")).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("/gone.txt"), "message names the path: {err}");
}

async fn create_dir_all_nested_and_idempotent(b: Backend) {
    b.ep.create_dir_all(&p("a/b/c")).await.unwrap();
    assert!(b.local("a/b/c").is_dir());
    b.ep.create_dir_all(&p("a/b/c")).await.unwrap();
    b.ep.create_dir_all(&p("a/b")).await.unwrap();
    b.ep.create_dir_all(&RemotePath::root()).await.unwrap();
    // Concurrent creators of the same tree all succeed.
    let (u, v) = (p("r/s/t/u"), p("r/s/t/v"));
    let (x, y) = tokio::join!(b.ep.create_dir_all(&u), b.ep.create_dir_all(&v));
    x.unwrap();
    y.unwrap();
    assert!(b.local("r/s/t/u").is_dir() && b.local("r/s/t/v").is_dir());
}

/// A file where a folder should be (a sink's folder, or one above it; a `move_to: processed`
/// where `processed` is a file): a target in it is not there, and the folder cannot be made —
/// no retry mends it, and the message names the file, not a bare "File exists". (The local
/// endpoint called the first a "protocol error", and so failed the delivery with another
/// kind and message than the servers.)
async fn a_file_where_a_folder_should_be(b: Backend) {
    b.put("file", b"x");
    for target in ["file/a.csv", "file/sub/a.csv"] {
        assert_eq!(b.ep.stat(&p(target)).await.unwrap(), None, "nothing at {target}");
        let err = b.ep.create_dir_all(&p(target).parent()).await.expect_err("a file is no folder");
        assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");
        assert!(err.to_string().contains("/file exists and is not a folder"), "{err}");
    }
    let err = b.ep.create_dir_all(&p("file")).await.expect_err("a file is no folder");
    assert_eq!(err.kind, ErrorKind::AlreadyExists, "{err}");
}

/// A link to a folder (an admin's link to another disk, say) is a folder to write into.
async fn create_dir_all_through_a_link_to_a_folder(b: Backend) {
    b.mkdir("real");
    std::os::unix::fs::symlink("real", b.local("link")).unwrap();
    b.ep.create_dir_all(&p("link")).await.unwrap();
    b.ep.create_dir_all(&p("link/sub")).await.unwrap();
    assert!(b.local("real/sub").is_dir());
}

async fn unicode_and_spaces_in_names(b: Backend) {
    let mut names = vec!["ä ö ü.csv", "日本語 file.txt", "  padded  ", "  leading", "emoji 🚀.bin", "semi;colon's \"q\".txt"];
    b.ep.create_dir_all(&p("spaced dir")).await.unwrap();
    if !b.ep.capabilities().trailing_space_names {
        // Refused before anything is created, rather than created under another name.
        for n in names.iter().filter(|n| n.ends_with(' ')) {
            let err = b.ep.open_write(&p(&format!("spaced dir/{n}"))).await.err().expect("a name ending in a space is refused");
            assert_eq!(err.kind, ErrorKind::Protocol, "{err}");
            let renamed = b.ep.rename(&p("spaced dir/x"), &p(&format!("spaced dir/{n}")), false).await.unwrap_err();
            assert_eq!(renamed.kind, ErrorKind::Protocol, "{renamed}");
        }
        assert_eq!(b.ep.list(&p("spaced dir")).await.unwrap().entries, vec![], "nothing was created");
        names.retain(|n| !n.ends_with(' '));
    }
    for (i, n) in names.iter().enumerate() {
        b.write(&format!("spaced dir/{n}"), n.as_bytes(), 3 + i).await;
        assert_eq!(std::fs::read(b.local(&format!("spaced dir/{n}"))).unwrap(), n.as_bytes(), "stored under its exact name");
    }
    let listed: Vec<String> = b.ep.list(&p("spaced dir")).await.unwrap().entries.into_iter().map(|e| e.path.name().to_string()).collect();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(listed, want);
    for n in names {
        assert_eq!(b.read(&format!("spaced dir/{n}"), 0).await, n.as_bytes());
    }
    b.ep.rename(&p("spaced dir/emoji 🚀.bin"), &p("spaced dir/ümlaut 🚀.bin"), false).await.unwrap();
    assert!(b.local("spaced dir/ümlaut 🚀.bin").exists());
}

async fn parent_dir_refused_before_io(b: Backend) {
    assert!(matches!(RemotePath::parse("../etc/passwd"), Err(PathError::ParentDir(_))));
    assert!(matches!(RemotePath::parse("in/../../x"), Err(PathError::ParentDir(_))));
    assert!(RemotePath::root().join("..").is_err());
    assert!(RemotePath::root().join("a/b").is_err());
    // What does parse stays under the root.
    b.write("/in.txt", b"x", 1).await;
    assert!(b.local("in.txt").exists());
    assert_eq!(b.ep.list(&RemotePath::root()).await.unwrap().entries.len(), 1, "nothing else was touched");
}

async fn root_jail(b: Backend) {
    let name = format!(
        "wharf-jail-probe-{}-{}.txt",
        std::process::id(),
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos()
    );
    b.write(&format!("/{name}"), b"jailed", 2).await;
    assert_eq!(std::fs::read(b.local(&name)).unwrap(), b"jailed", "landed inside the root");
    assert!(!Path::new("/").join(&name).exists(), "not at the server's /");
    b.ep.create_dir_all(&p("/deep/er")).await.unwrap();
    assert!(b.local("deep/er").is_dir());
}

async fn reconnect_after_server_restart(b: Backend) {
    b.put("r.txt", b"still here");
    assert!(b.ep.stat(&p("r.txt")).await.unwrap().is_some());
    tokio::task::block_in_place(|| (b.restart)());
    // The first operation either reconnects transparently or fails as retry-worthy…
    match b.ep.stat(&p("r.txt")).await {
        Ok(e) => assert!(e.is_some()),
        Err(e) => assert_eq!(e.kind, ErrorKind::Transient, "{e}"),
    }
    // …and from then on everything works again.
    assert!(b.ep.stat(&p("r.txt")).await.unwrap().is_some());
    assert_eq!(b.read("r.txt", 0).await, b"still here");
    roundtrip(&b, "after.bin", b"after restart", 4).await;
}
