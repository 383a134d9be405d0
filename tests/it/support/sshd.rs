//! A private OpenSSH sshd on 127.0.0.1 for one test.
//!
//! ```ignore
//! let Some(sshd) = Sshd::start() else { return }; // prints `SKIP: …` when not root / no sshd
//! let ep = SftpEndpoint::new(sshd.sftp_spec(sshd.password_auth()));
//! std::fs::write(sshd.data_dir().join("in.csv"), b"x")?; // server-side root, seen directly
//! ```
//!
//! Each server has its own port, fresh host keys (ed25519, rsa, ecdsa), config and data folder, so
//! tests may run in parallel. The login user `wharftest` (password [`PASSWORD`]) is created on
//! first use; client keys ([`client_keys`]) are generated once and shared. Only processes this
//! harness started are ever signalled (the sshd and its descendants, by pid), never by name.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use wharf::config::Secret;
use wharf::config::flow::{HostKeyPolicy, SftpSpec, SshAuth};

use super::{TempDir, free_port, servers_required};

/// The SSH login created for tests.
pub const USER: &str = "wharftest";
/// Its password.
pub const PASSWORD: &str = "wharf-pass-123";
/// Passphrase of [`ClientKeys::ed25519_encrypted`].
pub const KEY_PASSPHRASE: &str = "wharf-key-pass";

const SSHD: &str = "/usr/sbin/sshd";

/// Client key pairs accepted by every [`Sshd`] (private key paths; `.pub` beside them).
#[derive(Debug)]
pub struct ClientKeys {
    pub ed25519: PathBuf,
    pub rsa: PathBuf,
    /// RSA in the old PEM (`BEGIN RSA PRIVATE KEY`) format.
    pub rsa_pem: PathBuf,
    pub ecdsa: PathBuf,
    /// Ed25519 encrypted with [`KEY_PASSPHRASE`].
    pub ed25519_encrypted: PathBuf,
    pub passphrase: &'static str,
}

/// A running sshd. Dropping it kills the server and its sessions.
pub struct Sshd {
    pub port: u16,
    conf: TempDir,
    data: TempDir,
    child: Mutex<Option<Child>>,
    fingerprint: String,
    /// sshd_config lines before the harness's own (sshd takes a keyword's first value).
    extra: Vec<String>,
}

impl Sshd {
    /// Starts a server, or returns `None` after printing `SKIP: …` when this machine cannot
    /// run one (not root, no sshd). With `WHARF_REQUIRE_SERVERS=1` it panics instead.
    pub fn start() -> Option<Sshd> {
        Self::start_with(&[])
    }

    /// [`start`](Self::start) with `extra` sshd_config lines, which win over the harness's
    /// own (e.g. `MaxSessions 1`).
    pub fn start_with(extra: &[&str]) -> Option<Sshd> {
        match Self::try_start(extra) {
            Ok(s) => Some(s),
            Err(why) if servers_required() => panic!("WHARF_REQUIRE_SERVERS=1 but no sshd: {why}"),
            Err(why) => {
                eprintln!("SKIP: {why}");
                None
            }
        }
    }

    fn try_start(extra: &[&str]) -> Result<Sshd, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("sshd tests need root (they create a login and run sshd)".into());
        }
        if !Path::new(SSHD).exists() {
            return Err(format!("{SSHD} not installed (apt-get install openssh-server)"));
        }
        let (uid, gid) = ensure_user()?;
        let keys = client_keys()?;
        fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;

        let conf = tempfile::Builder::new().prefix("wharf-sshd-").tempdir().map_err(|e| e.to_string())?;
        // sshd reads authorized_keys as the user: the folder must be traversable.
        chmod(conf.path(), 0o755)?;
        let c = conf.path();
        keygen(&["-t", "ed25519", "-N", "", "-C", "host-ed25519", "-f"], &c.join("ssh_host_ed25519_key"))?;
        keygen(&["-t", "rsa", "-b", "2048", "-N", "", "-C", "host-rsa", "-f"], &c.join("ssh_host_rsa_key"))?;
        keygen(&["-t", "ecdsa", "-b", "256", "-N", "", "-C", "host-ecdsa", "-f"], &c.join("ssh_host_ecdsa_key"))?;
        let mut auth = String::new();
        for k in [&keys.ed25519, &keys.rsa, &keys.rsa_pem, &keys.ecdsa, &keys.ed25519_encrypted] {
            auth += &read(&pub_path(k))?;
        }
        fs::write(c.join("authorized_keys"), auth).map_err(|e| e.to_string())?;
        chmod(&c.join("authorized_keys"), 0o644)?;
        let fingerprint = fingerprint_of(&c.join("ssh_host_ed25519_key.pub"))?;

        let data = tempfile::Builder::new().prefix("wharf-sftp-data-").tempdir().map_err(|e| e.to_string())?;
        chmod(data.path(), 0o777)?;
        std::os::unix::fs::chown(data.path(), Some(uid), Some(gid)).map_err(|e| format!("chown data dir: {e}"))?;

        let extra = extra.iter().map(|l| l.to_string()).collect();
        let mut sshd = Sshd { port: 0, conf, data, child: Mutex::new(None), fingerprint, extra };
        let mut last = String::new();
        for _ in 0..8 {
            // A port free a moment ago may be taken by the time sshd binds: then try another.
            sshd.port = free_port();
            sshd.write_config()?;
            match sshd.spawn() {
                Ok(child) => {
                    *sshd.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
                    sshd.write_known_hosts()?;
                    return Ok(sshd);
                }
                Err(e) => last = e,
            }
        }
        Err(format!("sshd did not start: {last}"))
    }

    fn write_config(&self) -> Result<(), String> {
        let c = self.conf.path().display();
        let sftp = if Path::new("/usr/lib/openssh/sftp-server").exists() { "/usr/lib/openssh/sftp-server" } else { "internal-sftp" };
        let extra: String = self.extra.iter().map(|l| format!("{l}\n")).collect();
        // sshd refuses a second `Subsystem sftp`: a test's own (server flags) replaces ours.
        let subsystem = match self.extra.iter().any(|l| l.starts_with("Subsystem sftp ")) {
            true => String::new(),
            false => format!("Subsystem sftp {sftp}\n"),
        };
        let cfg = format!(
            "{extra}Port {port}\nListenAddress 127.0.0.1\nHostKey {c}/ssh_host_ed25519_key\nHostKey {c}/ssh_host_rsa_key\nHostKey {c}/ssh_host_ecdsa_key\n\
             PidFile {c}/sshd.pid\nAuthorizedKeysFile {c}/authorized_keys\nPubkeyAuthentication yes\n\
             PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin no\nAllowUsers {USER}\nMaxStartups 100:30:200\nMaxSessions 100\nMaxAuthTries 20\n\
             ClientAliveInterval 0\nLogLevel VERBOSE\n{subsystem}",
            port = self.port
        );
        fs::write(self.conf.path().join("sshd_config"), cfg).map_err(|e| e.to_string())
    }

    fn write_known_hosts(&self) -> Result<(), String> {
        let mut out = String::new();
        for k in ["ssh_host_ed25519_key.pub", "ssh_host_rsa_key.pub", "ssh_host_ecdsa_key.pub"] {
            let text = read(&self.conf.path().join(k))?;
            let fields: Vec<&str> = text.split_whitespace().take(2).collect();
            out += &format!("[127.0.0.1]:{} {}\n", self.port, fields.join(" "));
        }
        fs::write(self.known_hosts(), out).map_err(|e| e.to_string())
    }

    /// Launches sshd and waits until it logs that it listens (so a port stolen by another
    /// process is never mistaken for ours).
    fn spawn(&self) -> Result<Child, String> {
        let log_path = self.conf.path().join("sshd.log");
        let before = fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0) as usize;
        let log = fs::OpenOptions::new().create(true).append(true).open(&log_path).map_err(|e| e.to_string())?;
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.conf.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn {SSHD}: {e}"))?;
        let want = format!("Server listening on 127.0.0.1 port {}.", self.port);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = fs::read(&log_path).unwrap_or_default();
            if String::from_utf8_lossy(text.get(before..).unwrap_or_default()).contains(&want) {
                return Ok(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("sshd exited ({status}): {}", String::from_utf8_lossy(text.get(before..).unwrap_or_default()).trim()));
            }
            if Instant::now() > deadline {
                kill_tree(&mut child);
                return Err("sshd did not report listening within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Local path of the server-side root: put and check files here directly.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// A known_hosts file with this server's keys as `[127.0.0.1]:PORT …`.
    pub fn known_hosts(&self) -> PathBuf {
        self.conf.path().join("known_hosts")
    }

    /// `SHA256:…` of the server's ed25519 host key (what russh negotiates by default).
    pub fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }

    /// The server's ed25519 / rsa / ecdsa public host key files.
    pub fn host_key_pub(&self, alg: &str) -> PathBuf {
        self.conf.path().join(format!("ssh_host_{alg}_key.pub"))
    }

    pub fn user(&self) -> &'static str {
        USER
    }

    pub fn password(&self) -> &'static str {
        PASSWORD
    }

    pub fn password_auth(&self) -> SshAuth {
        SshAuth::Password(Secret::new(PASSWORD))
    }

    /// Key login with one of [`client_keys`]; `passphrase` only for the encrypted one.
    pub fn key_auth(&self, key: &Path, passphrase: Option<&str>) -> SshAuth {
        SshAuth::Key { path: key.to_path_buf(), passphrase: passphrase.map(Secret::new), password: None }
    }

    /// Library settings for this server: known_hosts policy, root = [`data_dir`](Self::data_dir).
    pub fn sftp_spec(&self, auth: SshAuth) -> SftpSpec {
        SftpSpec {
            name: "server".into(),
            host: "127.0.0.1".into(),
            port: self.port,
            user: USER.into(),
            auth,
            host_key: HostKeyPolicy::KnownHosts(self.known_hosts()),
            root: self.data_dir().display().to_string(),
            connect_timeout: Duration::from_secs(15),
            operation_timeout: Duration::from_secs(30),
            max_connections: 2,
        }
    }

    /// A flow-file endpoint body (`type: sftp`, password login, known_hosts, root), every line
    /// indented by `indent` spaces, e.g. under `endpoints:\n  partner:\n` use `indent = 4`.
    pub fn endpoint_yaml(&self, indent: usize) -> String {
        let q = |s: &str| format!("{s:?}"); // a JSON string is a valid YAML scalar
        let lines = [
            "type: sftp".to_string(),
            "host: 127.0.0.1".to_string(),
            format!("port: {}", self.port),
            format!("user: {USER}"),
            "auth:".to_string(),
            format!("  password: {}", q(PASSWORD)),
            "host_key:".to_string(),
            format!("  known_hosts: {}", q(&self.known_hosts().display().to_string())),
            format!("root: {}", q(&self.data_dir().display().to_string())),
        ];
        let pad = " ".repeat(indent);
        lines.iter().map(|l| format!("{pad}{l}\n")).collect()
    }

    /// Kills the server and every session, then starts it again on the same port with the
    /// same keys and data. Connections made before are dead afterwards.
    pub fn restart(&self) {
        let mut slot = self.child.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut c) = slot.take() {
            kill_tree(&mut c);
        }
        let mut last = String::new();
        for _ in 0..50 {
            match self.spawn() {
                Ok(c) => {
                    *slot = Some(c);
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sshd restart on port {} failed: {last}", self.port);
    }

    /// Kills the listening server but not the sessions it started (each runs in a process
    /// of its own): connections made before keep working, new ones are refused.
    pub fn stop_listening(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills every session (the connections made so far drop, as when the partner's
    /// firewall or an administrator cuts them); the server goes on accepting new ones.
    pub fn kill_sessions(&self) {
        signal_sessions(self.child.lock().unwrap_or_else(|p| p.into_inner()).as_ref(), libc::SIGKILL);
    }

    /// Freezes every session (`SIGSTOP`): the connections made so far stay open but nothing
    /// answers on them, as behind a firewall that silently dropped them; new ones work.
    pub fn freeze_sessions(&self) {
        signal_sessions(self.child.lock().unwrap_or_else(|p| p.into_inner()).as_ref(), libc::SIGSTOP);
    }

    /// Kills the server and every session (also done on drop).
    pub fn stop(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(|p| p.into_inner()).take() {
            kill_tree(&mut c);
        }
    }

    /// The server's log so far (for assertion messages).
    pub fn log(&self) -> String {
        fs::read_to_string(self.conf.path().join("sshd.log")).unwrap_or_default()
    }

    /// Makes `path` (recursively) owned by the SFTP user, for files a test put into
    /// [`data_dir`](Self::data_dir) as root and the server must change.
    pub fn give_to_user(&self, path: &Path) {
        let (uid, gid) = ensure_user().expect("test user exists");
        chown_tree(path, uid, gid);
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(super) fn chown_tree(path: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(path, Some(uid), Some(gid));
    if path.is_dir() && !path.is_symlink() {
        for e in fs::read_dir(path).into_iter().flatten().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// Kills `child` and every process descending from it (sshd forks one process tree per
/// session and each calls setsid, so a process-group kill would miss them).
pub(super) fn kill_tree(child: &mut Child) {
    let pids = descendants(child.id());
    let _ = child.kill();
    let _ = child.wait();
    for pid in pids {
        // SAFETY: plain syscall on a pid we just found below our own child.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    }
}

/// Sends `signal` to every process below `child` (the sessions a server forked), not to
/// `child` itself: its connections drop (`SIGKILL`) or stop answering (`SIGSTOP`) while it
/// goes on accepting new ones.
pub(super) fn signal_sessions(child: Option<&Child>, signal: libc::c_int) {
    let Some(child) = child else { return };
    for pid in descendants(child.id()) {
        // SAFETY: plain syscall on a pid we just found below our own child.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// Sends `signal` to the processes below `child` that have none of their own: for vsftpd,
/// each login's unprivileged process, whose privileged parent then ends the login itself.
pub(super) fn signal_session_workers(child: Option<&Child>, signal: libc::c_int) {
    let Some(child) = child else { return };
    let below = descendants(child.id());
    for &pid in &below {
        if below.iter().any(|&other| parent_of(other) == Some(pid)) {
            continue;
        }
        // SAFETY: plain syscall on a pid we just found below our own child.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// The parent of process `pid`, from `/proc`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rfind(')').map(|i| &stat[i + 1..])?.split_whitespace().nth(1)?.parse().ok()
}

fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else { continue };
        // "pid (comm) state ppid …": comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) {
            parent_of.push((pid, ppid));
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &parent_of {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Creates the test login (once per process; tolerant of other processes doing the same).
pub(super) fn ensure_user() -> Result<(u32, u32), String> {
    static USER_IDS: OnceLock<Result<(u32, u32), String>> = OnceLock::new();
    USER_IDS
        .get_or_init(|| {
            if id_of("-u").is_none() {
                let out = Command::new("useradd").args(["-M", "-s", "/bin/bash", USER]).output().map_err(|e| format!("useradd: {e}"))?;
                // Another test process may have created it meanwhile.
                if !out.status.success() && id_of("-u").is_none() {
                    return Err(format!("useradd {USER} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
                }
            }
            let mut last = String::new();
            for _ in 0..20 {
                match run_with_stdin("chpasswd", &[], &format!("{USER}:{PASSWORD}\n")) {
                    Ok(()) => {
                        let uid = id_of("-u").ok_or("no uid")?;
                        let gid = id_of("-g").ok_or("no gid")?;
                        return Ok((uid, gid));
                    }
                    // /etc/shadow is locked by a concurrent chpasswd.
                    Err(e) => last = e,
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(format!("chpasswd failed: {last}"))
        })
        .clone()
}

fn id_of(flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, USER]).stderr(Stdio::null()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn run_with_stdin(cmd: &str, args: &[&str], input: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{cmd}: {e}"))?;
    child.stdin.take().ok_or("no stdin")?.write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_string()) }
}

/// The shared client keys, generated on first use into `$TMP/wharf-test-client-keys-v1`
/// (built in a temp folder and renamed into place, so concurrent processes never see half).
pub fn client_keys() -> Result<&'static ClientKeys, String> {
    static KEYS: OnceLock<Result<ClientKeys, String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = std::env::temp_dir().join("wharf-test-client-keys-v1");
        let keys = |d: &Path| ClientKeys {
            ed25519: d.join("id_ed25519"),
            rsa: d.join("id_rsa"),
            rsa_pem: d.join("id_rsa_pem"),
            ecdsa: d.join("id_ecdsa"),
            ed25519_encrypted: d.join("id_ed25519_enc"),
            passphrase: KEY_PASSPHRASE,
        };
        if !dir.join("complete").exists() {
            let tmp = tempfile::Builder::new().prefix("wharf-test-client-keys-").tempdir().map_err(|e| e.to_string())?;
            let k = keys(tmp.path());
            keygen(&["-t", "ed25519", "-N", "", "-C", "wharf-ed25519", "-f"], &k.ed25519)?;
            keygen(&["-t", "rsa", "-b", "2048", "-N", "", "-C", "wharf-rsa", "-f"], &k.rsa)?;
            keygen(&["-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", "wharf-rsa-pem", "-f"], &k.rsa_pem)?;
            keygen(&["-t", "ecdsa", "-b", "256", "-N", "", "-C", "wharf-ecdsa", "-f"], &k.ecdsa)?;
            keygen(&["-t", "ed25519", "-N", KEY_PASSPHRASE, "-C", "wharf-enc", "-f"], &k.ed25519_encrypted)?;
            fs::write(tmp.path().join("complete"), "").map_err(|e| e.to_string())?;
            let tmp = tmp.keep();
            if fs::rename(&tmp, &dir).is_err() {
                // Someone else won the race; theirs is complete too.
                let _ = fs::remove_dir_all(&tmp);
            }
        }
        Ok(keys(&dir))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Runs `ssh-keygen -q ARGS… FILE`.
pub fn keygen(args: &[&str], file: &Path) -> Result<(), String> {
    let out =
        Command::new("ssh-keygen").arg("-q").args(args).arg(file).stdin(Stdio::null()).output().map_err(|e| format!("ssh-keygen: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(format!("ssh-keygen {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())) }
}

/// `SHA256:…` of a public key file, as `ssh-keygen -lf` prints it.
pub fn fingerprint_of(pub_file: &Path) -> Result<String, String> {
    let out = Command::new("ssh-keygen").arg("-lf").arg(pub_file).output().map_err(|e| format!("ssh-keygen -lf: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().nth(1).map(str::to_string).ok_or_else(|| format!("ssh-keygen -lf {}: {text}", pub_file.display()))
}

fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn read(p: &Path) -> Result<String, String> {
    fs::read_to_string(p).map_err(|e| format!("read {}: {e}", p.display()))
}

pub(super) fn chmod(p: &Path, mode: u32) -> Result<(), String> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).map_err(|e| format!("chmod {}: {e}", p.display()))
}
