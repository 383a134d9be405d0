//! Programs wharf runs for a flow (`source.command` exports, command notifiers): started in
//! a process group of their own and waited for under a time limit.
//!
//! Owns what happens to everything such a program started: the whole group is killed when
//! the limit passes, when the wait is abandoned (a run cancelled, `wharf serve` stopping) and
//! when the program itself exits while something it started in the background still runs
//! (`sh -c 'export &'`). Killing only the program left such processes running, writing into
//! a file wharf had already taken, and holding the program's stderr open so the wait lasted
//! until the limit. The caller learns that the program left something behind
//! ([`Exited::lingered`]): its output may be incomplete.

use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, Command};

/// How a program ended.
#[derive(Debug)]
pub enum Waited {
    Exited(Exited),
    /// Still running at the limit: it and its group were killed.
    TimedOut,
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

/// A started program and its process group.
pub struct Running {
    child: Child,
    group: Group,
}

/// Starts `cmd` as the leader of a new process group. Set stdin, stdout and stderr on `cmd`
/// first; stderr should be piped to be reported.
pub fn spawn(cmd: &mut Command) -> io::Result<Running> {
    let child = cmd.process_group(0).kill_on_drop(true).spawn()?;
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

/// The groups of the programs running now.
fn live() -> std::sync::MutexGuard<'static, std::collections::BTreeSet<i32>> {
    static LIVE: std::sync::Mutex<std::collections::BTreeSet<i32>> = std::sync::Mutex::new(std::collections::BTreeSet::new());
    // A poisoned lock only means a panic between two plain updates; the set is whole.
    crate::sync::lock(&LIVE)
}

impl Running {
    /// Writes `input` to the program's stdin (when piped; a program that does not read it is
    /// fine) and closes it, keeps the last `chars` characters of its stderr (on one line), and
    /// waits for it to exit, at most `limit`.
    pub async fn wait(mut self, input: Option<Vec<u8>>, limit: Duration, chars: usize) -> Waited {
        let stdin = self.child.stdin.take();
        let stderr = self.child.stderr.take();
        let write = async move {
            if let (Some(mut stdin), Some(input)) = (stdin, input) {
                // A broken pipe only means the program did not read its input.
                let _ = stdin.write_all(&input).await;
            }
        };
        let (child, group) = (&mut self.child, &self.group);
        let exit = async move {
            let status = child.wait().await;
            // What is left in the group may hold stderr open: the tail below ends with them.
            let lingered = group.kill_leftovers();
            (status, lingered)
        };
        let waited = match tokio::time::timeout(limit, async { tokio::join!(write, exit, tail(stderr, chars)) }).await {
            Err(_) => Waited::TimedOut,
            Ok((_, (Err(e), _), _)) => Waited::Failed(e),
            Ok((_, (Ok(status), lingered), stderr)) => Waited::Exited(Exited { status, stderr, lingered }),
        };
        if matches!(waited, Waited::Exited(_)) {
            // Its leftovers were killed when it exited; nothing to do on drop.
            self.group.forget();
        }
        // Otherwise dropping `self` kills the group, the program included.
        waited
    }
}

/// The end of `stderr`, lossily decoded, on one line, at most `chars` characters.
async fn tail(stderr: Option<ChildStderr>, chars: usize) -> String {
    let Some(mut stderr) = stderr else { return String::new() };
    // Enough bytes for `chars` characters of any width, and for the blank lines and spaces
    // the flattening drops.
    let keep = chars.saturating_mul(8);
    let mut kept = Vec::new();
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
    crate::text::one_line(&String::from_utf8_lossy(&kept), chars, crate::text::Keep::End)
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

    #[tokio::test]
    async fn exit_status_stdin_and_the_end_of_stderr() {
        let r = spawn(&mut sh("cat >&2; echo >&2; echo more >&2; exit 3")).unwrap();
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
        let Waited::Exited(e) = spawn(&mut sh(&script)).unwrap().wait(None, Duration::from_secs(20), 100).await else { panic!() };
        assert!(e.status.success() && e.lingered, "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        gone(&std::fs::read_to_string(&pidfile).unwrap());
    }

    #[tokio::test]
    async fn at_the_limit_the_whole_group_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let r = spawn(&mut sh(&script)).unwrap();
        assert!(matches!(r.wait(None, Duration::from_millis(300), 100).await, Waited::TimedOut));
        gone(&std::fs::read_to_string(&pidfile).unwrap());
    }
}
