//! The command channel: runs a program (argv, no shell) with the notice as JSON on stdin and
//! `WHARF_EVENT` (the kind) and `WHARF_FLOW` in its environment, in the flow file's folder.
//! Of wharf's environment it gets only what `crate::process::command` passes on (a short
//! allow-list and the rule's `pass_env`): the daemon's holds every flow's secrets.
//!
//! Owns what a command's end means: a timeout, after which it is killed with everything it
//! started (`crate::process`), is transient (it may be a passing hang) and quotes the end of
//! what it had written to stderr (what it was waiting for); a non-zero exit is a
//! permanent error quoting the end of its stderr (on one line: `crate::process`); a program
//! that cannot be started is a permanent error. Its stdout is ignored; processes it leaves
//! running are killed when it exits (a notification is sent in the foreground).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{Notice, Notifier, NotifyError, label};
use crate::process::{self, Unsuccessful};
use async_trait::async_trait;

/// A validated command channel.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandSpec {
    /// The program: absolute when it was written with a `/` (resolved against the flow file's
    /// folder), else looked up in `PATH`.
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables of wharf's environment it gets besides `crate::process::PASSED_ENV`.
    pub pass_env: Vec<String>,
    /// Working folder: the flow file's folder.
    pub dir: PathBuf,
    /// After this long the process is killed.
    pub timeout: Duration,
}

/// Runs a command per notice.
pub struct CommandNotifier {
    spec: CommandSpec,
    describe: String,
}

impl CommandNotifier {
    /// Runs `spec` for the rule written at `origin` ([`label`]).
    pub fn new(spec: CommandSpec, origin: &str) -> Self {
        let describe = label(origin, &format!("command {}", spec.program.display()));
        CommandNotifier { spec, describe }
    }
}

#[async_trait]
impl Notifier for CommandNotifier {
    async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), NotifyError> {
        let input = serde_json::to_vec(&notice.context(held_back)).map_err(|e| NotifyError::permanent(&self.describe, e.to_string()))?;
        let mut cmd = process::command(&self.spec.program, &self.spec.pass_env);
        cmd.args(&self.spec.args)
            .current_dir(&self.spec.dir)
            .env("WHARF_EVENT", &notice.kind)
            .env("WHARF_FLOW", &notice.flow)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let running =
            process::spawn(cmd).await.map_err(|e| NotifyError::permanent(&self.describe, cannot_start(&self.spec.program, &e)))?;
        // Killed at its limit (quoting what it had written to stderr: what it waited for) or
        // the wait failed: transient.
        let output = match running.wait(Some(input), self.spec.timeout, process::STDERR_TAIL).await.exited(self.spec.timeout) {
            Ok(output) => output,
            Err(Unsuccessful::Ended { how, stderr }) => {
                return Err(NotifyError::transient(&self.describe, Unsuccessful::ended(&how, &stderr)));
            }
            Err(Unsuccessful::Wait(e)) => {
                return Err(NotifyError::transient(
                    &self.describe,
                    format!("waiting for it failed: {}", crate::endpoint::local::io_reason(&e)),
                ));
            }
        };
        if output.lingered {
            tracing::warn!(channel = %self.describe, "The notification command left processes running when it exited; they were killed (run them in the foreground).");
        }
        if output.status.success() {
            return Ok(());
        }
        Err(NotifyError::permanent(&self.describe, Unsuccessful::ended(&process::describe(output.status), &output.stderr)))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Why `program` could not be started, and what to do: a bare name (`no-such-alert`) not
/// found is not in `PATH` (the daemon's, which a service manager sets), which "No such file
/// or directory" did not say.
fn cannot_start(program: &Path, e: &std::io::Error) -> String {
    let bare = program.components().count() == 1 && !program.is_absolute();
    if bare && e.kind() == std::io::ErrorKind::NotFound {
        return format!(
            "cannot start: `{}` is not in the daemon's PATH; install it, or give its path in `run` (relative to the flow file's folder)",
            program.display()
        );
    }
    format!("cannot start: {}", crate::endpoint::local::io_reason(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_that_cannot_be_started_is_said_so() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(
            cannot_start(Path::new("no-such-alert"), &missing),
            "cannot start: `no-such-alert` is not in the daemon's PATH; install it, or give its path in `run` (relative to the flow \
             file's folder)"
        );
        let by_path = cannot_start(Path::new("/srv/alert.sh"), &missing);
        assert!(by_path.starts_with("cannot start: ") && !by_path.contains("PATH"), "{by_path}");
    }
}
