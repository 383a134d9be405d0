//! `source.command`: run an export command and turn its standard output into a file in the
//! (local) source folder, before the folder is listed.
//!
//! Owns the file's safe arrival: stdout streams straight into a dot-prefixed temporary file
//! in the source folder (bounded memory, however large the export), which is fsynced and
//! renamed to its final name only when the command succeeded — exited with 0 within its
//! timeout, leaving nothing running in the background that may still have been writing it
//! (the process group and the timeout are `crate::process`'s). From then on the file is an
//! ordinary outbox file: the lifecycle takes it, and a file a failed delivery left behind is
//! retried on the next run. A crash mid-export leaves only a temporary file, removed by the
//! next run.
//!
//! Owns too the output's bound (`max_output`): the program writes the file itself, so its
//! size is looked at while it runs ([`SIZE_CHECK`]) and when it ends; past the limit the
//! program is stopped (`process::Running::wait_unless`: killed with its group, the end of its
//! stderr still read) and the file removed, so an export writing without end never fills the
//! source folder's disk.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use crate::config::flow::Command;
use crate::endpoint::ErrorKind;
use crate::process::{self, Unsuccessful, Waited};
use crate::template::NameVars;

/// Prefix of the temporary output files (never matched by a completed export's name).
const TEMP_PREFIX: &str = ".wharf-command-";

/// Why the command produced no file.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("source command `{program}` could not be started: {}", crate::endpoint::local::io_reason(.source))]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// Started, but waiting for it failed (the operating system's error; it was killed).
    #[error("source command `{program}`: waiting for it failed: {}", crate::endpoint::local::io_reason(.source))]
    Wait {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("source command `{program}` {}", process::Unsuccessful::ended(.status, .stderr))]
    Failed { program: String, status: String, stderr: String },
    #[error("source command `{program}`: its output file {}: {source}", path.display())]
    Output {
        program: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("source command `{program}`: output name: {message}")]
    Name { program: String, message: String },
}

impl CommandError {
    /// A command that did not start is a configuration problem; one that failed or timed out
    /// may succeed on the next run; a local file problem is the disk's.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommandError::Spawn { source, .. } if source.kind() == std::io::ErrorKind::NotFound => ErrorKind::Config,
            CommandError::Spawn { .. } | CommandError::Wait { .. } | CommandError::Output { .. } => ErrorKind::LocalIo,
            CommandError::Failed { .. } => ErrorKind::Transient,
            CommandError::Name { .. } => ErrorKind::Config,
        }
    }
}

/// Runs `cmd` and writes its output into `folder` (the source folder on the local disk).
/// Returns the new file's name, or `None` when the command printed nothing (and
/// `keep_empty` is off).
pub async fn produce(cmd: &Command, folder: &Path, flow: &str, run: u64, now: SystemTime) -> Result<Option<String>, CommandError> {
    let program = cmd.program.shown();
    let output_err = |path: &Path| {
        let program = program.clone();
        let path = path.to_path_buf();
        move |source| CommandError::Output { program, path, source }
    };
    tokio::fs::create_dir_all(folder).await.map_err(output_err(folder))?;
    remove_stale_temps(folder, flow).await;
    let name =
        cmd.name.render(&NameVars::new("", "", 0, run, now)).map_err(|message| CommandError::Name { program: program.clone(), message })?;
    let temp = folder.join(format!("{TEMP_PREFIX}{flow}-{run}.part"));
    let file = std::fs::File::create(&temp).map_err(output_err(&temp))?;
    // The same file, to watch its size while the program writes it.
    let watched = tokio::fs::File::from_std(file.try_clone().map_err(output_err(&temp))?);
    let mut child = cmd.program.command(flow, run);
    child.stdin(Stdio::null()).stdout(Stdio::from(file)).stderr(Stdio::piped());
    let running = process::spawn(child).await.map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        CommandError::Spawn { program: program.clone(), source }
    })?;
    let failed = |status: String, stderr: String| CommandError::Failed { program: program.clone(), status, stderr };
    let max = &cmd.program.max_output;
    let waited = running.wait_unless(None, cmd.program.timeout, process::STDERR_TAIL, past(&watched, max.bytes)).await;
    // Its final size too: a program that wrote past the limit and exited between two checks.
    let written = size(&watched).await;
    let result = if matches!(waited, Waited::Stopped { .. }) || written > max.bytes {
        let how = match waited {
            Waited::Stopped { .. } => format!(
                "wrote more than its max_output of {} ({} by the time it was killed with every process it started); its partial output was removed",
                max.shown,
                crate::text::bytes(written)
            ),
            _ => format!("wrote more than its max_output of {} ({}); its output was removed", max.shown, crate::text::bytes(written)),
        };
        Err(failed(how, waited.stderr().to_string()))
    } else {
        // Something it started may still have been writing the output: not a whole export.
        match waited.success(cmd.program.timeout) {
            Err(Unsuccessful::Ended { how, stderr }) => Err(failed(how, stderr)),
            Err(Unsuccessful::Wait(e)) => Err(CommandError::Wait { program: program.clone(), source: e }),
            Ok(()) => Ok(()),
        }
    };
    drop(watched);
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    let file = std::fs::OpenOptions::new().read(true).open(&temp).map_err(output_err(&temp))?;
    file.sync_all().map_err(output_err(&temp))?;
    let size = file.metadata().map_err(output_err(&temp))?.len();
    if size == 0 && !cmd.keep_empty {
        let _ = tokio::fs::remove_file(&temp).await;
        // At debug: an export polled every minute with nothing new says this 1,440 times a day.
        tracing::debug!(flow = %flow, program = %program, "The source command printed nothing; no file to send.");
        return Ok(None);
    }
    let target = free_name(folder, &name);
    tokio::fs::rename(&temp, folder.join(&target)).await.map_err(output_err(&temp))?;
    tracing::info!(flow = %flow, program = %program, file = %target, bytes = size, "The source command wrote a file to send.");
    Ok(Some(target))
}

/// How often the output file's size is checked against `max_output` while the program runs.
const SIZE_CHECK: Duration = Duration::from_millis(100);

/// Ends once `file` (the output, as the program writes it) is larger than `max` bytes,
/// checked every [`SIZE_CHECK`].
async fn past(file: &tokio::fs::File, max: u64) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + SIZE_CHECK, SIZE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if size(file).await > max {
            return;
        }
    }
}

/// The size of `file`; 0 when it cannot be read (the output's own checks then tell).
async fn size(file: &tokio::fs::File) -> u64 {
    file.metadata().await.map_or(0, |m| m.len())
}

/// `name`, or `stem-1.ext`, `stem-2.ext`, … when a file of that name is already waiting
/// (`naming::candidate`: a name at the length limit loses the end of its stem, not the
/// rename to ENAMETOOLONG).
fn free_name(folder: &Path, name: &str) -> String {
    (0..).map(|n| crate::engine::naming::candidate(name, n)).find(|c| !folder.join(c).exists()).unwrap_or_else(|| name.to_string())
}

/// Removes temporary outputs a crashed run of `flow` left behind. Only this flow's: another
/// flow exporting into the same folder may be writing its own right now (`wharf serve` runs
/// flows side by side).
async fn remove_stale_temps(folder: &Path, flow: &str) {
    let Ok(mut dir) = tokio::fs::read_dir(folder).await else { return };
    let ours = format!("{TEMP_PREFIX}{flow}-");
    while let Ok(Some(e)) = dir.next_entry().await {
        let name = e.file_name().to_string_lossy().into_owned();
        let run = name.strip_prefix(&ours).and_then(|rest| rest.strip_suffix(".part"));
        if run.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit())) {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw_steps::RawSize;
    use crate::steps::check::MaxOutput;
    use crate::template::NameTemplate;

    fn cmd(run: &[&str], name: &str) -> Command {
        let program = process::FlowProgram {
            path: PathBuf::from(run[0]),
            args: run[1..].iter().map(|s| s.to_string()).collect(),
            pass_env: Vec::new(),
            dir: std::env::temp_dir(),
            timeout: Duration::from_secs(10),
            max_output: MaxOutput::parse(&RawSize::Text("10GiB".into())).unwrap(),
        };
        Command { program, name: NameTemplate::new(name).unwrap(), keep_empty: false }
    }

    #[tokio::test]
    async fn output_becomes_a_file_and_names_never_clash() {
        let dir = tempfile::tempdir().unwrap();
        let c = cmd(&["sh", "-c", "echo \"$WHARF_FLOW $WHARF_RUN\""], "export-{{run}}.csv");
        std::fs::write(dir.path().join(".wharf-command-f-1.part"), "stale").unwrap();
        // Another flow's output in progress, in the same folder: left alone.
        std::fs::write(dir.path().join(".wharf-command-f-b-2.part"), "busy").unwrap();
        assert_eq!(produce(&c, dir.path(), "f", 7, SystemTime::now()).await.unwrap().as_deref(), Some("export-7.csv"));
        assert!(!dir.path().join(".wharf-command-f-1.part").exists());
        std::fs::remove_file(dir.path().join(".wharf-command-f-b-2.part")).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("export-7.csv")).unwrap(), "f 7\n");
        assert_eq!(produce(&c, dir.path(), "f", 7, SystemTime::now()).await.unwrap().as_deref(), Some("export-7-1.csv"));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    /// A name at the file-name limit taken already: the next export's name is shortened to
    /// fit, not refused by the file system run after run.
    #[tokio::test]
    async fn a_second_export_of_a_name_at_the_limit_still_fits() {
        let dir = tempfile::tempdir().unwrap();
        let long = format!("{}.csv", "x".repeat(251));
        let c = cmd(&["echo", "a"], &long);
        assert_eq!(produce(&c, dir.path(), "f", 1, SystemTime::now()).await.unwrap(), Some(long.clone()));
        let second = produce(&c, dir.path(), "f", 2, SystemTime::now()).await.unwrap().unwrap();
        assert_eq!(second, format!("{}-1.csv", "x".repeat(249)));
    }

    /// An export with nothing new, polled every minute: nothing in the log at info level.
    #[test]
    fn an_export_with_nothing_to_send_logs_nothing_at_info_level() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (out, lines) =
            crate::log_capture::Log::default().of(|| rt.block_on(produce(&cmd(&["true"], "x.csv"), dir.path(), "f", 1, SystemTime::now())));
        assert_eq!(out.unwrap(), None);
        assert_eq!(lines, Vec::<String>::new());
    }

    #[tokio::test]
    async fn failure_empty_output_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let c = cmd(&["sh", "-c", "echo partial; printf 'connecting\\n\\nERROR:  db down\\r\\n' >&2; exit 3"], "x.csv");
        let e = produce(&c, dir.path(), "f", 1, SystemTime::now()).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "source command `sh` exited with status 3; its stderr ends: connecting ⏎ ERROR:  db down",
            "stderr quoted on one line"
        );
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no partial output is left");

        assert_eq!(produce(&cmd(&["true"], "x.csv"), dir.path(), "f", 1, SystemTime::now()).await.unwrap(), None);
        let mut keep = cmd(&["true"], "x.csv");
        keep.keep_empty = true;
        assert_eq!(produce(&keep, dir.path(), "f", 1, SystemTime::now()).await.unwrap().as_deref(), Some("x.csv"));

        let mut slow = cmd(&["sh", "-c", "echo 'waiting for lock on /var/db' >&2; sleep 30"], "y.csv");
        slow.program.timeout = Duration::from_millis(200);
        let e = produce(&slow, dir.path(), "f", 1, SystemTime::now()).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "source command `sh` did not finish within 200ms and was killed; its stderr ends: waiting for lock on /var/db",
            "what it wrote before it hung"
        );
        assert!(!dir.path().join("y.csv").exists());

        let e = produce(&cmd(&["/nonexistent/export"], "z.csv"), dir.path(), "f", 1, SystemTime::now()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{e}");
        // The OS's reason without its number (was "… (os error 2)").
        assert_eq!(e.to_string(), "source command `/nonexistent/export` could not be started: No such file or directory");
    }

    /// `cmd` whose output may be at most `max`.
    fn bounded(run: &[&str], max: &str) -> Command {
        let mut c = cmd(run, "x.csv");
        c.program.max_output = MaxOutput::parse(&RawSize::Text(max.into())).unwrap();
        c
    }

    /// An export writing without end is stopped at `max_output`, not at its timeout: killed
    /// with everything it started, its partial output removed, the run's error naming the
    /// command, the limit, what it wrote and the end of its stderr. No file is left to send.
    #[tokio::test]
    async fn an_export_past_max_output_is_killed_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (out, pids) = (dir.path().join("out"), dir.path().join("pids"));
        let script = format!("sleep 60 & echo $! >> {p}; echo $$ >> {p}; echo 'exporting orders' >&2; exec yes", p = pids.display());
        let started = std::time::Instant::now();
        let e = produce(&bounded(&["sh", "-c", &script], "1MiB"), &out, "f", 1, SystemTime::now()).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let text = e.to_string();
        assert!(text.starts_with("source command `sh` wrote more than its max_output of 1MiB ("), "{text}");
        assert!(
            text.ends_with(" by the time it was killed with every process it started); its partial output was removed; its stderr ends: exporting orders"),
            "{text}"
        );
        assert_eq!(e.kind(), ErrorKind::Transient);
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0, "no partial output is left");
        for pid in std::fs::read_to_string(&pids).unwrap().lines() {
            let stat = format!("/proc/{pid}/stat");
            let gone = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                std::fs::read_to_string(&stat).map_or(true, |s| s.contains(") Z "))
            });
            assert!(gone, "process {pid} still runs");
        }

        // Past the limit and exited before the size was looked at (the first look is after
        // 100 ms): refused all the same.
        let e = produce(&bounded(&["head", "-c", "4096", "/dev/zero"], "1KiB"), &out, "f", 2, SystemTime::now()).await.unwrap_err();
        assert!(e.to_string().starts_with("source command `head` wrote more than its max_output of 1KiB (4.0 KiB"), "{e}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);

        // Exactly the limit passes.
        let name = produce(&bounded(&["head", "-c", "1048576", "/dev/zero"], "1MiB"), &out, "f", 3, SystemTime::now()).await.unwrap();
        assert_eq!(std::fs::metadata(out.join(name.unwrap())).unwrap().len(), 1 << 20);
    }

    #[tokio::test]
    async fn an_export_still_writing_in_the_background_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        // The shell exits at once; the rest of the export would arrive a second later.
        let c = cmd(&["sh", "-c", "echo head; (sleep 1; echo tail) & exit 0"], "x.csv");
        let e = produce(&c, dir.path(), "f", 1, SystemTime::now()).await.unwrap_err();
        assert!(e.to_string().contains("left processes running in the background"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Transient);
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no output, and nothing wrote one later");
    }
}
