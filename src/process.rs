//! Programs wharf runs for a flow (`source.command` exports, `command` content steps, command
//! notifiers): started in a process group of their own and waited for under a time limit.
//!
//! Owns what happens to everything such a program started: the whole group is killed when
//! the limit passes, when the wait is abandoned (a run cancelled, `wharf serve` stopping; a
//! wait on a blocking thread, which a cancelled run does not stop, through [`Abandon`]) and
//! when the program itself exits while something it started in the background still runs
//! (`sh -c 'export &'`). Killing only the program left such processes running, writing into
//! a file wharf had already taken, and holding the program's stderr open so the wait lasted
//! until the limit. The caller learns that the program left something behind
//! ([`Exited::lingered`]): its output may be incomplete.
//!
//! Owns too what survives wharf itself. A daemon killed outright (`kill -9`, the OOM killer)
//! runs no drop and no `kill_all`; on Linux each program is started with the parent-death
//! signal set (`PR_SET_PDEATHSIG`, SIGKILL), so it dies with wharf. The kernel sends that
//! signal when the *thread* that started the program ends, not the process: under
//! `wharf serve` every run has a thread of its own that ends with the run
//! (`crate::serve::runner`), and tokio's worker threads may be replaced. So programs are
//! started from one thread kept for the whole life of the process ([`spawn`]). What the
//! program starts in turn (a script's commands) gets no such signal: it is orphaned, not
//! killed, when wharf is killed outright (a service manager killing the whole control group,
//! as systemd does, takes it; docs/operations.md).
//!
//! And owns the programs' environment ([`command`]): a short documented allow-list of
//! wharf's own (`PATH`, `HOME`, locale, …) plus the names the flow passes on, never the
//! whole of it, which holds every flow's secrets.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, Command};

/// How a program ended.
#[derive(Debug)]
pub enum Waited {
    Exited(Exited),
    /// Still running at the limit: it and its group were killed. The end of what it had
    /// written to stderr (what it was waiting for: a password prompt, a lock, a host name), as
    /// [`Exited::stderr`].
    TimedOut {
        stderr: String,
    },
    /// Stopped by its caller ([`Running::wait_unless`]: its output past its limit): it and its
    /// group were killed. The end of what it had written to stderr, as [`Exited::stderr`].
    Stopped {
        stderr: String,
    },
    /// Waiting for it failed (the operating system's error).
    Failed(io::Error),
}

/// A program that exited by itself.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    /// The end of what it wrote to stderr, on one line (`crate::text::one_line`: its lines
    /// joined with ` ⏎ `, control characters made spaces), at most the characters asked for.
    pub stderr: String,
    /// Processes it started were still running in its group when it exited (now killed).
    pub lingered: bool,
}

/// How long the stderr of a program killed before it exited (at its limit, or stopped) is
/// still read after its group was killed: enough for what it wrote to be read, not waited for
/// longer when something of it outlives the kill (a process stuck in the kernel, or one that
/// left the group, holding stderr open).
const STOPPED_GRACE: Duration = Duration::from_secs(2);

/// How much of the end of a program's stderr (its lines joined into one) a message quotes,
/// in characters.
pub const STDERR_TAIL: usize = 500;

/// How a program that did not succeed ended (see [`Waited::success`]).
#[derive(Debug)]
pub enum Unsuccessful {
    /// It ended badly: how, in words (`exited with status 2`), and the end of its stderr.
    Ended { how: String, stderr: String },
    /// Waiting for it failed (the operating system's error).
    Wait(io::Error),
}

impl Unsuccessful {
    /// `how`, and the end of stderr when it wrote any: `exited with status 2; its stderr
    /// ends: …`.
    pub fn ended(how: &str, stderr: &str) -> String {
        if stderr.is_empty() { how.to_string() } else { format!("{how}; its stderr ends: {stderr}") }
    }
}

impl Waited {
    /// Whether the program succeeded: exited with status 0 within `limit` (the limit it was
    /// waited for), leaving nothing running in the background, which may still have been
    /// writing its output. Otherwise how it ended.
    pub fn success(self, limit: Duration) -> Result<(), Unsuccessful> {
        let e = self.exited(limit)?;
        let how = if !e.status.success() {
            describe(e.status)
        } else if e.lingered {
            "exited but left processes running in the background (killed, since they may have been writing its output)".to_string()
        } else {
            return Ok(());
        };
        Err(Unsuccessful::Ended { how, stderr: e.stderr })
    }

    /// How the program exited by itself, whatever its status; otherwise (killed at `limit`,
    /// the limit it was waited for, or stopped; the wait failed) how it ended.
    pub fn exited(self, limit: Duration) -> Result<Exited, Unsuccessful> {
        let killed = |how: String, stderr: String| Err(Unsuccessful::Ended { how, stderr });
        match self {
            Waited::Exited(e) => Ok(e),
            Waited::TimedOut { stderr } => killed(format!("did not finish within {limit:?} and was killed"), stderr),
            Waited::Stopped { stderr } => killed("was stopped and killed".to_string(), stderr),
            Waited::Failed(e) => Err(Unsuccessful::Wait(e)),
        }
    }

    /// The end of what the program wrote to stderr (empty when the wait failed).
    pub fn stderr(&self) -> &str {
        match self {
            Waited::Exited(Exited { stderr, .. }) | Waited::TimedOut { stderr } | Waited::Stopped { stderr } => stderr,
            Waited::Failed(_) => "",
        }
    }
}

/// A started program and its process group.
pub struct Running {
    child: Child,
    group: Group,
}

/// Variables of wharf's environment every program gets (when set): where programs are, the
/// user, the locale and time zone. Everything else only when the flow names it (`pass_env`).
pub const PASSED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_*", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL"];

/// A command for `program` whose environment holds only [`PASSED_ENV`] and the variables
/// named in `pass_env` that wharf's environment has. Add wharf's own variables (`WHARF_*`)
/// after: they win over a passed variable of the same name.
pub fn command(program: impl AsRef<std::ffi::OsStr>, pass_env: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    cmd.envs(std::env::vars_os().filter(|(name, _)| name.to_str().is_some_and(|name| passed(name, pass_env))));
    cmd
}

/// A flow's program (`source.command`, a `command` step): what starts it and what bounds it.
#[derive(Debug, Clone)]
pub struct FlowProgram {
    /// Program (absolute when written with a `/`, else looked up in `PATH`) and arguments.
    pub path: PathBuf,
    pub args: Vec<String>,
    /// Variables of wharf's environment it gets besides [`PASSED_ENV`].
    pub pass_env: Vec<String>,
    /// Working folder: the flow file's folder.
    pub dir: PathBuf,
    /// Longest it may run.
    pub timeout: Duration,
    /// Most bytes its output may have.
    pub max_output: crate::steps::check::MaxOutput,
}

impl FlowProgram {
    /// Its [`command`], with its arguments, run in its folder, told its flow and run
    /// (`WHARF_FLOW`, `WHARF_RUN`).
    pub fn command(&self, flow: &str, run: u64) -> Command {
        let mut cmd = command(&self.path, &self.pass_env);
        cmd.args(&self.args).current_dir(&self.dir).env("WHARF_FLOW", flow).env("WHARF_RUN", run.to_string());
        cmd
    }

    /// The program as messages show it (`gpg`, `/flows/decrypt.sh`).
    pub fn shown(&self) -> String {
        self.path.display().to_string()
    }
}

/// Whether the variable `name` is given to programs.
fn passed(name: &str, pass_env: &[String]) -> bool {
    let allowed = |pattern: &str| match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    };
    PASSED_ENV.iter().any(|p| allowed(p)) || pass_env.iter().any(|p| p == name)
}

/// Starts `cmd` as the leader of a new process group, dying with wharf (see the module
/// comment). Build it with [`command`], and set stdin, stdout and stderr first; stderr should
/// be piped to be reported. Must be called within a tokio runtime, which then owns the child.
pub async fn spawn(mut cmd: Command) -> io::Result<Running> {
    cmd.process_group(0).kill_on_drop(true);
    die_with_wharf(&mut cmd);
    let child = spawner::spawn(cmd).await?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(pgid) = pgid {
        live().insert(pgid);
    }
    Ok(Running { child, group: Group(pgid) })
}

/// Kills every program started by [`spawn`] that is still running, with everything it
/// started: for a process about to exit on a signal (`wharf run` interrupted), whose
/// programs' groups would not get the terminal's Ctrl-C and would outlive it.
pub fn kill_all() {
    for pgid in std::mem::take(&mut *live()) {
        // SAFETY: kill(2) of a group one of our programs leads (see `Group::kill_leftovers`).
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Has the program killed when wharf dies (Linux). Checks for the race where wharf died
/// between the fork and the `prctl`: the program then already has another parent.
#[cfg(target_os = "linux")]
fn die_with_wharf(cmd: &mut Command) {
    let wharf = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec, and calls only
    // async-signal-safe functions (prctl, getppid, _exit); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if u32::try_from(libc::getppid()).ok() != Some(wharf) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_wharf(_cmd: &mut Command) {}

/// The thread that starts every program: the parent-death signal is tied to the thread that
/// forked, so it must be one that lasts as long as wharf (see the module comment).
mod spawner {
    use std::io;
    use std::sync::mpsc;

    use tokio::process::{Child, Command};
    use tokio::runtime::Handle;
    use tokio::sync::oneshot;

    /// A program to start in the runtime `Handle`, and where to send the result.
    type Job = (Command, Handle, oneshot::Sender<io::Result<Child>>);

    /// Starts `cmd` on the spawner thread; the child belongs to the caller's runtime.
    pub(super) async fn spawn(cmd: Command) -> io::Result<Child> {
        let jobs = thread().map_err(|e| io::Error::other(format!("cannot start wharf's program-starting thread: {e}")))?;
        let (tx, rx) = oneshot::channel();
        crate::sync::lock(jobs)
            .send((cmd, Handle::current(), tx))
            .map_err(|_| io::Error::other("wharf's program-starting thread has stopped"))?;
        rx.await.map_err(|_| io::Error::other("wharf's program-starting thread has stopped"))?
    }

    /// The thread's queue, the thread started at the first call. Never dropped: the thread
    /// waits for jobs until the process exits.
    fn thread() -> Result<&'static std::sync::Mutex<mpsc::Sender<Job>>, &'static str> {
        static JOBS: std::sync::OnceLock<Result<std::sync::Mutex<mpsc::Sender<Job>>, String>> = std::sync::OnceLock::new();
        JOBS.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("wharf-spawner".into())
                .spawn(move || {
                    for (mut cmd, runtime, reply) in rx {
                        let _in = runtime.enter();
                        if let Err(Ok(child)) = reply.send(cmd.spawn()) {
                            // The caller went away (a cancelled run): its program goes, with
                            // its group (dropping the child kills only the program).
                            if let Some(pgid) = child.id().and_then(|id| i32::try_from(id).ok()) {
                                // SAFETY: kill(2) of the group the program just started leads.
                                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                            }
                        }
                    }
                })
                .map(|_| std::sync::Mutex::new(tx))
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(String::as_str)
    }
}

/// Held by a run while blocking code waits for a program on its behalf (a `command` content
/// step on a blocking thread, which a cancelled run does not stop): dropping it — the run
/// cut off at `wharf serve`'s shutdown — abandons those waits, and so kills the programs
/// with their groups ([`Abandoned::or_abandoned`]).
#[derive(Debug)]
pub struct Abandon {
    _held: tokio::sync::watch::Sender<()>,
}

/// The blocking side of an [`Abandon`].
#[derive(Debug, Clone)]
pub struct Abandoned(tokio::sync::watch::Receiver<()>);

/// A new [`Abandon`] guard and its blocking side.
pub fn abandonment() -> (Abandon, Abandoned) {
    let (tx, rx) = tokio::sync::watch::channel(());
    (Abandon { _held: tx }, Abandoned(rx))
}

impl Abandoned {
    /// Runs `wait` (a program's whole wait: its output copied, its end awaited) unless the
    /// guard is dropped first: then `wait` is dropped, which kills the program and its group
    /// ([`Running`]'s group is killed on drop), and `None` is returned. Checked first at every
    /// wake-up: after a cut-off run's runtime has shut its timers down, `wait` must not be
    /// polled again (a timer polled then panics).
    pub async fn or_abandoned<T>(&self, wait: impl std::future::Future<Output = T>) -> Option<T> {
        let mut rx = self.0.clone();
        let gone = async move { while rx.changed().await.is_ok() {} };
        tokio::select! {
            biased;
            () = gone => None,
            v = wait => Some(v),
        }
    }
}

/// The groups of the programs running now.
fn live() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<i32>> {
    static LIVE: std::sync::Mutex<std::collections::BTreeSet<i32>> = std::sync::Mutex::new(std::collections::BTreeSet::new());
    // A poisoned lock only means a panic between two plain updates; the set is whole.
    crate::sync::lock(&LIVE)
}

impl Running {
    /// Its stdout, when piped (once): to be read while [`Running::wait`] waits.
    pub fn take_stdout(&mut self) -> Option<tokio::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// Writes `input` to the program's stdin (when piped; a program that does not read it is
    /// fine) and closes it, keeps the last `chars` characters of its stderr (on one line), and
    /// waits for it to exit, at most `limit`.
    pub async fn wait(self, input: Option<Vec<u8>>, limit: Duration, chars: usize) -> Waited {
        self.wait_unless(input, limit, chars, std::future::pending()).await
    }

    /// [`Running::wait`], unless `stop` ends first (its caller saw its output pass its limit):
    /// then the program is killed with its group at once ([`Waited::Stopped`]). A program
    /// killed, stopped or at its limit ([`Waited::TimedOut`]), has what it had written to
    /// stderr still read, for at most [`STOPPED_GRACE`].
    pub async fn wait_unless(
        mut self,
        input: Option<Vec<u8>>,
        limit: Duration,
        chars: usize,
        stop: impl std::future::Future<Output = ()>,
    ) -> Waited {
        let stdin = self.child.stdin.take();
        let stderr = self.child.stderr.take();
        let write = async move {
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                // A broken pipe only means the program did not read its input.
                let _ = stdin.write_all(&input).await;
            }
        };
        // Kept outside the wait: a killed program's stderr read so far outlives it.
        let mut kept = Vec::new();
        let mut reaped = false;
        let waited = {
            let (child, group, reaped) = (&mut self.child, &self.group, &mut reaped);
            let exit = async move {
                let status = child.wait().await;
                // What is left in the group may hold stderr open: the tail below ends with them.
                let lingered = group.kill_leftovers();
                *reaped = true;
                (status, lingered)
            };
            let all = async { tokio::join!(write, exit, tail(stderr, chars, &mut kept)) };
            tokio::pin!(all);
            let waited = tokio::select! {
                r = tokio::time::timeout(limit, &mut all) => match r {
                    Err(_) => Waited::TimedOut { stderr: String::new() },
                    Ok((_, (Err(e), _), ())) => Waited::Failed(e),
                    Ok((_, (Ok(status), lingered), ())) => Waited::Exited(Exited { status, stderr: String::new(), lingered }),
                },
                () = stop => Waited::Stopped { stderr: String::new() },
            };
            if matches!(waited, Waited::TimedOut { .. } | Waited::Stopped { .. }) {
                // Killed, then what it wrote to stderr (why it hung, what it was stopped
                // writing) read while its pipe drains.
                group.kill_leftovers();
                let _ = tokio::time::timeout(STOPPED_GRACE, &mut all).await;
            }
            waited
        };
        let flat = || crate::text::one_line(&String::from_utf8_lossy(&kept), chars, crate::text::Keep::End);
        let waited = match waited {
            Waited::Exited(e) => Waited::Exited(Exited { stderr: flat(), ..e }),
            Waited::TimedOut { .. } => Waited::TimedOut { stderr: flat() },
            Waited::Stopped { .. } => Waited::Stopped { stderr: flat() },
            other => other,
        };
        if reaped && !matches!(waited, Waited::Failed(_)) {
            // It exited (by itself, or killed at its limit or when stopped), its leftovers
            // killed then: nothing to do on drop.
            self.group.forget();
        }
        // Otherwise dropping `self` kills the group, the program included.
        waited
    }
}

/// Reads `stderr` to its end, keeping in `kept` enough of its last bytes for `chars`
/// characters on one line.
async fn tail(stderr: Option<ChildStderr>, chars: usize, kept: &mut Vec<u8>) {
    let Some(mut stderr) = stderr else { return };
    // Enough bytes for `chars` characters of any width, and for the blank lines and spaces
    // the flattening drops.
    let keep = chars.saturating_mul(8);
    let mut buf = [0u8; 4096];
    loop {
        match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                let excess = kept.len().saturating_sub(keep);
                kept.drain(..excess);
            }
        }
    }
}

/// "exited with status N", "was killed by signal N".
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "failed".to_string(),
    }
}

/// A process group, killed when dropped. `None` when the program had already been reaped.
struct Group(Option<i32>);

impl Group {
    /// Kills what is left in the group; whether anything was.
    fn kill_leftovers(&self) -> bool {
        let Some(pgid) = self.0 else { return false };
        // SAFETY: kill(2) with a negative pid addresses the group `pgid`, which the program
        // started by `spawn` leads; signal 0 only checks that a member exists.
        let any = unsafe { libc::kill(-pgid, 0) } == 0;
        if any {
            // SAFETY: as above.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
        any
    }

    /// No longer ours to kill.
    fn forget(&mut self) {
        if let Some(pgid) = self.0.take() {
            live().remove(&pgid);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill_leftovers();
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;
    use std::time::Instant;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }

    /// Waits up to 2 s for the process `pid` (as `$!` printed it) to be gone (or a zombie).
    fn gone(pid: &str) {
        let stat = format!("/proc/{}/stat", pid.trim());
        for _ in 0..100 {
            if std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z ")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the background process {pid} still runs");
    }

    /// Set in a copy of this test binary running one of the `in_a_copy_*` tests.
    const COPY: &str = "WHARF_TEST_PROCESS_COPY";

    /// Runs the test `name` in a copy of this test binary, with `envs`; stdout piped.
    fn copy_running(name: &str, envs: &[(&str, &str)]) -> std::process::Child {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("process::tests::{name}"), "--nocapture", "--test-threads=1"])
            .env(COPY, "1")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
    }

    /// In the copy: starts `sleep` from a thread that then ends, prints its pid, and waits
    /// to be killed.
    #[test]
    fn in_a_copy_a_program_started_from_a_thread_that_ends() {
        if std::env::var_os(COPY).is_none() {
            return;
        }
        let pid = std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let mut sleep = Command::new("sleep");
                sleep.arg("60").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
                let running = spawn(sleep).await.unwrap();
                let pid = running.child.id().unwrap();
                // Not killed on drop: it is to outlive this thread.
                std::mem::forget(running);
                pid
            })
        })
        .join()
        .unwrap();
        println!("PID={pid}");
        std::thread::sleep(Duration::from_secs(60));
    }

    /// `kill -9` of wharf (a `wharf serve` whose run started an export) kills the program it
    /// started, though the run's thread that started it had ended long before.
    #[test]
    fn a_program_dies_with_wharf_killed_outright() {
        use std::io::BufRead;
        let mut copy = copy_running("in_a_copy_a_program_started_from_a_thread_that_ends", &[]);
        let mut lines = std::io::BufReader::new(copy.stdout.take().unwrap()).lines();
        let pid = lines.find_map(|l| l.unwrap().split_once("PID=").map(|(_, pid)| pid.to_string())).expect("the copy printed the pid");
        std::thread::sleep(Duration::from_millis(300));
        let stat = format!("/proc/{pid}/stat");
        let alive = std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z "));
        // SAFETY: kill(2) of the copy this test started.
        unsafe { libc::kill(copy.id() as i32, libc::SIGKILL) };
        let _ = copy.wait();
        assert!(alive, "the program died with the thread that started it");
        gone(&pid);
    }

    /// In the copy: what a program sees of the environment.
    #[tokio::test]
    async fn in_a_copy_the_environment_a_program_gets() {
        if std::env::var_os(COPY).is_none() {
            return;
        }
        let out = command("env", &["NAMED_TOKEN".into()]).env("WHARF_FLOW", "f").output().await.unwrap();
        let env = String::from_utf8(out.stdout).unwrap();
        let mut names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=')).map(|(n, _)| n).collect();
        names.sort();
        assert!(env.contains("NAMED_TOKEN=t0k\n") && env.contains("WHARF_FLOW=f\n") && env.contains("LC_TIME=C\n"), "{env}");
        assert!(!env.contains("s3cret"), "a variable the flow did not name was passed: {env}");
        let allowed = |n: &str| passed(n, &["NAMED_TOKEN".into()]) || n == "WHARF_FLOW";
        assert!(names.iter().all(|n| allowed(n)), "{names:?}");
    }

    /// A program gets the allow-list, the names the flow passes and wharf's `WHARF_*`
    /// variables; never the rest of wharf's environment (another flow's password).
    #[test]
    fn a_program_gets_only_the_variables_passed_on() {
        let copy = copy_running(
            "in_a_copy_the_environment_a_program_gets",
            &[("NAMED_TOKEN", "t0k"), ("OTHER_FLOW_PASSWORD", "s3cret"), ("LC_TIME", "C"), ("WHARF_RUN", "s3cret")],
        );
        let out = copy.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    #[tokio::test]
    async fn exit_status_stdin_and_the_end_of_stderr() {
        let r = spawn(sh("cat >&2; echo >&2; echo more >&2; exit 3")).await.unwrap();
        let Waited::Exited(e) = r.wait(Some(b"abcdef".to_vec()), Duration::from_secs(10), 9).await else { panic!() };
        assert_eq!(describe(e.status), "exited with status 3");
        assert_eq!(e.stderr, "…ef ⏎ more", "the end, on one line");
        assert!(!e.lingered);
    }

    #[tokio::test]
    async fn a_background_process_left_behind_is_killed_and_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The background `sleep` holds stderr: waiting for it to close would last 30 s.
        let script = format!("sleep 30 & echo $! > {}; exit 0", pidfile.display());
        let started = Instant::now();
        let Waited::Exited(e) = spawn(sh(&script)).await.unwrap().wait(None, Duration::from_secs(20), 100).await else { panic!() };
        assert!(e.status.success() && e.lingered, "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        gone(&std::fs::read_to_string(&pidfile).unwrap());
    }

    #[tokio::test]
    async fn at_the_limit_the_whole_group_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; echo 'waiting for lock on /var/db' >&2; wait", pidfile.display());
        let started = Instant::now();
        let r = spawn(sh(&script)).await.unwrap();
        let waited = r.wait(None, Duration::from_millis(300), 100).await;
        assert!(matches!(&waited, Waited::TimedOut { stderr } if stderr == "waiting for lock on /var/db"), "what it wrote: {waited:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "the killed group's stderr closes at once");
        gone(&std::fs::read_to_string(&pidfile).unwrap());
    }
}
