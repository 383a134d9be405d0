//! Private FTP servers on 127.0.0.1 for one test: vsftpd (plain FTP and explicit FTPS on one
//! port, implicit FTPS on another) and pure-ftpd (the one that speaks MLSD/MLST).
//!
//! ```ignore
//! let Some(ftpd) = Ftpd::vsftpd() else { return }; // prints `SKIP: …` when it cannot run
//! let ep = FtpEndpoint::new(ftpd.spec(FtpTls::Explicit));
//! std::fs::write(ftpd.data_dir().join("in.csv"), b"x")?; // server-side root, seen directly
//! ```
//!
//! Each server has its own ports (control, and a passive range no other server of this
//! process uses), config, log and data folder, so tests may run in parallel. The login is the
//! sshd harness's `wharftest` user (password [`PASSWORD`]). Certificates — a throw-away CA, a
//! `CA:FALSE` leaf for 127.0.0.1 issued by it (webpki refuses a self-signed CA certificate as
//! a server certificate), and an unrelated CA — are made once and shared. vsftpd runs with
//! `require_ssl_reuse=YES`, so data connections must resume the control connection's TLS
//! session. pure-ftpd conflicts with vsftpd as a Debian package, so unless it is installed it
//! is unpacked once from `apt-get download pure-ftpd` into a cache folder. Only processes this
//! harness started are ever signalled (by pid, with their descendants), never by name.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use wharf::config::Secret;
use wharf::config::flow::{CertTrust, FtpSpec, FtpTls, TlsVersion};

use super::sshd::{USER, chmod, chown_tree, ensure_user, kill_tree, signal_session_workers, signal_sessions};
use super::{TempDir, free_port, servers_required};

/// The FTP password of [`USER`] (the same login as the sshd harness).
pub const PASSWORD: &str = super::sshd::PASSWORD;

const VSFTPD: &str = "/usr/sbin/vsftpd";

/// Which server software.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Vsftpd,
    PureFtpd,
}

/// The shared certificates (PEM files).
#[derive(Debug)]
pub struct Certs {
    /// The CA that issued the server certificate.
    pub ca: PathBuf,
    /// A CA that did not.
    pub other_ca: PathBuf,
    /// Server certificate and key, for vsftpd.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Key and certificate in one file, for pure-ftpd.
    pub combined: PathBuf,
    /// `SHA256:AB:CD:…` of the server certificate.
    pub fingerprint: String,
}

/// One server instance (a process and what it listens on).
struct Instance {
    port: u16,
    /// Passive port range.
    pasv: (u16, u16),
    implicit: bool,
    child: Option<Child>,
}

/// A running FTP server. Dropping it kills the server and its sessions.
pub struct Ftpd {
    pub flavor: Flavor,
    /// Extra vsftpd config lines / pure-ftpd arguments.
    extra: Vec<String>,
    conf: TempDir,
    data: TempDir,
    instances: Mutex<Vec<Instance>>,
}

impl Ftpd {
    /// vsftpd: plain FTP and explicit FTPS on [`port`](Self::port), implicit FTPS on
    /// [`implicit_port`](Self::implicit_port). `None` after printing `SKIP: …` when this
    /// machine cannot run it; with `WHARF_REQUIRE_SERVERS=1` it panics instead.
    pub fn vsftpd() -> Option<Ftpd> {
        Self::start(Flavor::Vsftpd, &[])
    }

    /// [`vsftpd`](Self::vsftpd) with extra config lines (`local_max_rate=1000000`; a line
    /// `env:NAME=VALUE` sets the server's environment instead: `env:TZ=EST5`).
    pub fn vsftpd_with(config: &[&str]) -> Option<Ftpd> {
        Self::start(Flavor::Vsftpd, config)
    }

    /// pure-ftpd: plain FTP and explicit FTPS, with MLSD/MLST, on [`port`](Self::port).
    pub fn pure_ftpd() -> Option<Ftpd> {
        Self::start(Flavor::PureFtpd, &[])
    }

    /// [`pure_ftpd`](Self::pure_ftpd) with extra arguments (`-b`: no EPSV; `-P ADDR`: the
    /// address PASV answers with, replacing 127.0.0.1).
    pub fn pure_ftpd_with(args: &[&str]) -> Option<Ftpd> {
        Self::start(Flavor::PureFtpd, args)
    }

    fn start(flavor: Flavor, extra: &[&str]) -> Option<Ftpd> {
        match Self::try_start(flavor, extra) {
            Ok(s) => Some(s),
            Err(why) if servers_required() => panic!("WHARF_REQUIRE_SERVERS=1 but no {flavor:?}: {why}"),
            Err(why) => {
                eprintln!("SKIP: {why}");
                None
            }
        }
    }

    fn try_start(flavor: Flavor, extra: &[&str]) -> Result<Ftpd, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("FTP server tests need root (they use a system login and bind ports)".into());
        }
        match flavor {
            Flavor::Vsftpd if !Path::new(VSFTPD).exists() => return Err(format!("{VSFTPD} not installed (apt-get install vsftpd)")),
            Flavor::PureFtpd => {
                pure_ftpd_bin()?;
            }
            Flavor::Vsftpd => {}
        }
        let (uid, gid) = ensure_user()?;
        ensure_home(uid, gid)?;
        certs()?;
        let conf = tempfile::Builder::new().prefix("wharf-ftpd-").tempdir().map_err(|e| e.to_string())?;
        fs::create_dir_all(conf.path().join("empty")).map_err(|e| e.to_string())?;
        chmod(&conf.path().join("empty"), 0o755)?;
        let data = tempfile::Builder::new().prefix("wharf-ftp-data-").tempdir().map_err(|e| e.to_string())?;
        chmod(data.path(), 0o777)?;
        std::os::unix::fs::chown(data.path(), Some(uid), Some(gid)).map_err(|e| format!("chown data dir: {e}"))?;
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let ftpd = Ftpd { flavor, extra, conf, data, instances: Mutex::new(Vec::new()) };
        let kinds: &[bool] = if flavor == Flavor::Vsftpd { &[false, true] } else { &[false] };
        for &implicit in kinds {
            let mut last = String::new();
            let mut started = None;
            for _ in 0..8 {
                // A port free a moment ago may be taken by the time the server binds: try another.
                let mut inst = Instance { port: free_port(), pasv: pasv_range(), implicit, child: None };
                match ftpd.spawn(&mut inst) {
                    Ok(()) => {
                        started = Some(inst);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            let inst = started.ok_or_else(|| format!("{flavor:?} did not start: {last}"))?;
            ftpd.lock().push(inst);
        }
        Ok(ftpd)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Instance>> {
        self.instances.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log_path(&self, inst: &Instance) -> PathBuf {
        self.conf.path().join(format!("server-{}.log", inst.port))
    }

    /// Starts `inst`'s process and waits until it accepts connections (and, for a clear-text
    /// port, greets like an FTP server, so a port taken by another process is not mistaken
    /// for ours).
    fn spawn(&self, inst: &mut Instance) -> Result<(), String> {
        let certs = certs()?;
        let log_path = self.log_path(inst);
        let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = match self.flavor {
            Flavor::Vsftpd => {
                let conf = self.conf.path().join(format!("vsftpd-{}.conf", inst.port));
                fs::write(&conf, self.vsftpd_config(inst, certs)).map_err(|e| e.to_string())?;
                let mut c = Command::new(VSFTPD);
                c.arg(conf);
                // `env:NAME=VALUE` lines are the process's environment (`env:TZ=EST5`).
                for (k, v) in self.extra.iter().filter_map(|l| l.strip_prefix("env:")?.split_once('=')) {
                    c.env(k, v);
                }
                c
            }
            Flavor::PureFtpd => {
                // -l unix: /etc/shadow logins; -E: no anonymous; -H: no DNS; -u 1: uids from 1;
                // -D: list dot files; -Y 1: TLS optional (AUTH TLS); -2: key+cert; -P/-p:
                // passive address and ports. No -A: not chrooted, so paths are the real ones.
                let mut c = Command::new(pure_ftpd_bin()?);
                c.args(["-S", &format!("127.0.0.1,{}", inst.port), "-l", "unix", "-E", "-H", "-u", "1", "-D", "-Y", "1"])
                    .arg("-2")
                    .arg(&certs.combined)
                    .args(["-p", &format!("{}:{}", inst.pasv.0, inst.pasv.1)]);
                // The first -P wins: only ours when the test gives none.
                if !self.extra.iter().any(|a| a == "-P") {
                    c.args(["-P", "127.0.0.1"]);
                }
                c.args(&self.extra);
                c
            }
        };
        let mut child =
            cmd.stdin(Stdio::null()).stdout(log.try_clone().map_err(|e| e.to_string())?).stderr(log).spawn().map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited ({status}): {}", fs::read_to_string(&log_path).unwrap_or_default().trim()));
            }
            if greets(inst.port, inst.implicit) {
                inst.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                kill_tree(&mut child);
                return Err(format!("nothing answered on port {} within 10 s", inst.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn vsftpd_config(&self, inst: &Instance, certs: &Certs) -> String {
        let c = self.conf.path().display();
        format!(
            "listen=YES\nlisten_ipv6=NO\nlisten_address=127.0.0.1\nlisten_port={port}\nbackground=NO\n\
             anonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\nlocal_umask=022\nlocal_root={data}\n\
             chroot_local_user=NO\npasv_enable=YES\npasv_address=127.0.0.1\npasv_min_port={lo}\npasv_max_port={hi}\n\
             port_enable=YES\nconnect_from_port_20=NO\nseccomp_sandbox=NO\nisolate_network=NO\n\
             secure_chroot_dir={c}/empty\npam_service_name=vsftpd\nuserlist_enable=NO\nuse_localtime=NO\n\
             max_clients=200\nmax_per_ip=200\nxferlog_enable=YES\nlog_ftp_protocol=YES\nvsftpd_log_file={log}\n\
             ssl_enable=YES\nimplicit_ssl={implicit}\nrsa_cert_file={cert}\nrsa_private_key_file={key}\n\
             allow_anon_ssl=NO\nforce_local_logins_ssl=NO\nforce_local_data_ssl=NO\nrequire_ssl_reuse=YES\nssl_ciphers=HIGH\n{extra}",
            port = inst.port,
            data = self.data.path().display(),
            lo = inst.pasv.0,
            hi = inst.pasv.1,
            log = self.log_path(inst).display(),
            implicit = if inst.implicit { "YES" } else { "NO" },
            cert = certs.cert.display(),
            key = certs.key.display(),
            extra = self.extra.iter().filter(|l| !l.starts_with("env:")).map(|l| format!("{l}\n")).collect::<String>(),
        )
    }

    /// Port of plain FTP and explicit FTPS.
    pub fn port(&self) -> u16 {
        self.lock().iter().find(|i| !i.implicit).map(|i| i.port).unwrap_or(0)
    }

    /// Port of implicit FTPS (vsftpd only).
    pub fn implicit_port(&self) -> Option<u16> {
        self.lock().iter().find(|i| i.implicit).map(|i| i.port)
    }

    /// Local path of the server-side root: put and check files here directly.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn certs(&self) -> &'static Certs {
        certs().expect("certificates were made when the server started")
    }

    /// Library settings: this server's port for `tls`, the issuing CA, root = [`data_dir`](Self::data_dir).
    pub fn spec(&self, tls: FtpTls) -> FtpSpec {
        let port = match tls {
            FtpTls::Implicit => self.implicit_port().expect("implicit FTPS runs with vsftpd only"),
            _ => self.port(),
        };
        FtpSpec {
            name: "server".into(),
            host: "127.0.0.1".into(),
            port,
            user: USER.into(),
            password: Secret::new(PASSWORD),
            tls,
            trust: CertTrust::CaFile(self.certs().ca.clone()),
            tls_max_version: TlsVersion::V1_3,
            passive: true,
            root: Some(self.data_dir().display().to_string()),
            connect_timeout: Duration::from_secs(15),
            operation_timeout: Duration::from_secs(30),
            max_connections: 2,
            server_clock: Default::default(),
            use_pasv_address: false,
        }
    }

    /// A flow-file endpoint body (`type: ftp`, this server, the issuing CA as `ca_file`), every
    /// line indented by `indent` spaces.
    pub fn endpoint_yaml(&self, tls: FtpTls, indent: usize) -> String {
        let q = |s: &str| format!("{s:?}"); // a JSON string is a valid YAML scalar
        let spec = self.spec(tls);
        let mut lines = vec![
            "type: ftp".to_string(),
            "host: 127.0.0.1".to_string(),
            format!("port: {}", spec.port),
            format!("user: {USER}"),
            format!("password: {}", q(PASSWORD)),
            format!(
                "tls: {}",
                match tls {
                    FtpTls::None => "none",
                    FtpTls::Explicit => "explicit",
                    FtpTls::Implicit => "implicit",
                }
            ),
            format!("root: {}", q(&self.data_dir().display().to_string())),
            "operation_timeout: 10s".to_string(),
        ];
        if tls != FtpTls::None {
            lines.push(format!("ca_file: {}", q(&self.certs().ca.display().to_string())));
        }
        let pad = " ".repeat(indent);
        lines.iter().map(|l| format!("{pad}{l}\n")).collect()
    }

    /// Kills the servers and every session, then starts them again on the same ports with the
    /// same data. Connections made before are dead afterwards.
    pub fn restart(&self) {
        let mut instances = self.lock();
        for inst in instances.iter_mut() {
            if let Some(mut c) = inst.child.take() {
                kill_tree(&mut c);
            }
        }
        for inst in instances.iter_mut() {
            let mut last = String::new();
            for _ in 0..50 {
                match self.spawn(inst) {
                    Ok(()) => break,
                    Err(e) => last = e,
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            assert!(inst.child.is_some(), "{:?} restart on port {} failed: {last}", self.flavor, inst.port);
        }
    }

    /// Kills every session (the logins made so far drop, as when the partner's firewall or
    /// an administrator cuts them); the servers go on accepting new ones.
    pub fn kill_sessions(&self) {
        for inst in self.lock().iter() {
            signal_sessions(inst.child.as_ref(), libc::SIGKILL);
        }
    }

    /// Kills the process serving each login and nothing else: vsftpd's privileged process of
    /// the login sees it die and ends the login with a `500 OOPS: …` of its own.
    pub fn kill_session_workers(&self) {
        for inst in self.lock().iter() {
            signal_session_workers(inst.child.as_ref(), libc::SIGKILL);
        }
    }

    /// Freezes every session (`SIGSTOP`): the logins made so far stay open but nothing answers
    /// on them, as behind a firewall that silently dropped them; new ones work.
    pub fn freeze_sessions(&self) {
        for inst in self.lock().iter() {
            signal_sessions(inst.child.as_ref(), libc::SIGSTOP);
        }
    }

    /// Kills the servers and every session (also done on drop).
    pub fn stop(&self) {
        for inst in self.lock().iter_mut() {
            if let Some(mut c) = inst.child.take() {
                kill_tree(&mut c);
            }
        }
    }

    /// The servers' logs so far (for assertion messages).
    pub fn log(&self) -> String {
        self.lock().iter().map(|i| fs::read_to_string(self.log_path(i)).unwrap_or_default()).collect()
    }

    /// Makes `path` (recursively) owned by the FTP user, for files a test put into
    /// [`data_dir`](Self::data_dir) as root and the server must change.
    pub fn give_to_user(&self, path: &Path) {
        let (uid, gid) = ensure_user().expect("test user exists");
        chown_tree(path, uid, gid);
    }
}

impl Drop for Ftpd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True once something on 127.0.0.1:`port` accepts a connection — and on a clear-text port
/// greets with `220`.
fn greets(port: u16, tls: bool) -> bool {
    use std::io::Read;
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), Duration::from_millis(200)) else {
        return false;
    };
    if tls {
        return true;
    }
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).is_ok() && &buf[..3] == b"220"
}

/// A passive port range of 20 ports no other server of this process uses, below the
/// ephemeral range (where outgoing connections' own ports would collide with it). The start
/// differs between processes, so parallel test binaries rarely overlap; a server whose chosen
/// port is busy picks another one of its range.
fn pasv_range() -> (u16, u16) {
    const LOW: u16 = 12_000;
    const HIGH: u16 = 32_000;
    const WIDTH: u16 = 20;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    static START: OnceLock<u16> = OnceLock::new();
    let start = *START.get_or_init(|| {
        let seed = std::process::id() as u64
            ^ std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        LOW + ((seed % u64::from((HIGH - LOW) / WIDTH)) as u16) * WIDTH
    });
    for _ in 0..((HIGH - LOW) / WIDTH) {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let lo = LOW + ((u32::from(start - LOW) + u32::from(n) * u32::from(WIDTH)) % u32::from(HIGH - LOW)) as u16;
        let hi = lo + WIDTH - 1;
        if (lo..=hi).all(|p| std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, p)).is_ok()) {
            return (lo, hi);
        }
    }
    (LOW, LOW + WIDTH - 1)
}

/// vsftpd and pure-ftpd change into the user's home folder at login (then into the data
/// folder): it must exist. The sshd harness creates the user without one.
fn ensure_home(uid: u32, gid: u32) -> Result<(), String> {
    let out = Command::new("getent").args(["passwd", USER]).output().map_err(|e| format!("getent: {e}"))?;
    let line = String::from_utf8_lossy(&out.stdout);
    let home = line.trim().split(':').nth(5).filter(|h| h.starts_with('/')).ok_or_else(|| format!("no home folder for {USER}: {line}"))?;
    if !Path::new(home).is_dir() {
        fs::create_dir_all(home).map_err(|e| format!("mkdir {home}: {e}"))?;
        std::os::unix::fs::chown(home, Some(uid), Some(gid)).map_err(|e| format!("chown {home}: {e}"))?;
    }
    Ok(())
}

/// The shared certificates (also the SMTP receiver's), made on first use into `$TMP/wharf-test-ftps-certs-v1` (built in a
/// temp folder and renamed into place, so concurrent processes never see half).
pub fn certs() -> Result<&'static Certs, String> {
    static CERTS: OnceLock<Result<Certs, String>> = OnceLock::new();
    CERTS
        .get_or_init(|| {
            let dir = std::env::temp_dir().join("wharf-test-ftps-certs-v1");
            if !dir.join("complete").exists() {
                let tmp = tempfile::Builder::new().prefix("wharf-test-ftps-certs-").tempdir().map_err(|e| e.to_string())?;
                make_certs(tmp.path())?;
                let tmp = tmp.keep();
                if fs::rename(&tmp, &dir).is_err() {
                    // Someone else won the race; theirs is complete too.
                    let _ = fs::remove_dir_all(&tmp);
                }
            }
            let out = Command::new("openssl")
                .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
                .arg(dir.join("server.pem"))
                .output()
                .map_err(|e| format!("openssl: {e}"))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let fp = text.trim().split_once('=').map(|(_, fp)| fp.to_string()).ok_or_else(|| format!("openssl fingerprint: {text}"))?;
            Ok(Certs {
                ca: dir.join("ca.pem"),
                other_ca: dir.join("other-ca.pem"),
                cert: dir.join("server.pem"),
                key: dir.join("server.key"),
                combined: dir.join("combined.pem"),
                fingerprint: format!("SHA256:{fp}"),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

fn make_certs(d: &Path) -> Result<(), String> {
    let ca = |name: &str, cn: &str| {
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "3650",
                "-subj",
                cn,
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
            ],
        )
    };
    ca("ca", "/CN=wharf test CA")?;
    ca("other-ca", "/CN=some other CA")?;
    openssl(d, &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"])?;
    fs::write(
        d.join("server.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .map_err(|e| e.to_string())?;
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    )?;
    let combined = [fs::read(d.join("server.key")), fs::read(d.join("server.pem"))].into_iter().collect::<Result<Vec<_>, _>>();
    fs::write(d.join("combined.pem"), combined.map_err(|e| e.to_string())?.concat()).map_err(|e| e.to_string())?;
    for f in ["ca.pem", "other-ca.pem", "server.pem"] {
        chmod(&d.join(f), 0o644)?;
    }
    chmod(d, 0o755)?;
    fs::write(d.join("complete"), "").map_err(|e| e.to_string())
}

fn openssl(dir: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("openssl {}: {}", args[0], String::from_utf8_lossy(&out.stderr).trim())) }
}

/// The pure-ftpd binary: installed, or unpacked once (apt-get download + dpkg-deb -x) into
/// `$TMP/wharf-test-pure-ftpd-v1`; installing it would remove vsftpd (both "Provide/Conflict:
/// ftp-server").
fn pure_ftpd_bin() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(|| {
        let installed = PathBuf::from("/usr/sbin/pure-ftpd");
        if installed.exists() {
            return Ok(installed);
        }
        let dir = std::env::temp_dir().join("wharf-test-pure-ftpd-v1");
        let bin = dir.join("root/usr/sbin/pure-ftpd");
        if bin.exists() {
            return Ok(bin);
        }
        let tmp = tempfile::Builder::new().prefix("wharf-test-pure-ftpd-").tempdir().map_err(|e| e.to_string())?;
        let download = || Command::new("apt-get").args(["download", "-q", "pure-ftpd"]).current_dir(tmp.path()).output();
        let mut out = download().map_err(|e| format!("apt-get: {e}"))?;
        if !out.status.success() {
            // Fresh machines have no package lists yet.
            let _ = Command::new("apt-get").args(["update", "-qq"]).output();
            out = download().map_err(|e| format!("apt-get: {e}"))?;
        }
        if !out.status.success() {
            return Err(format!("apt-get download pure-ftpd failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let deb = fs::read_dir(tmp.path())
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "deb"))
            .ok_or("apt-get download pure-ftpd left no .deb")?;
        let out =
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(tmp.path().join("root")).output().map_err(|e| format!("dpkg-deb: {e}"))?;
        if !out.status.success() {
            return Err(format!("dpkg-deb -x: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        let tmp = tmp.keep();
        if fs::rename(&tmp, &dir).is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        if bin.exists() { Ok(bin) } else { Err(format!("{} missing after unpacking pure-ftpd", bin.display())) }
    })
    .clone()
}
