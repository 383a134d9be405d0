//! The command channel: runs a program (argv, no shell) with the notice as JSON on stdin and
//! `WHARF_EVENT` (the kind) and `WHARF_FLOW` in its environment, in the flow file's folder.
//!
//! Owns the process handling: a timeout after which the process is killed (transient: it may
//! be a passing hang), a non-zero exit as a permanent error quoting the end of its stderr, and
//! a program that cannot be started as a permanent error. Its stdout is ignored.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{Notice, Notifier, NotifyError};

/// How much of the end of stderr a failure quotes.
const STDERR_TAIL: usize = 500;

/// A validated command channel.
#[derive(Debug, Clone)]
pub struct CommandSpec {
    /// The program: absolute when it was written with a `/` (resolved against the flow file's
    /// folder), else looked up in `PATH`.
    pub program: PathBuf,
    pub args: Vec<String>,
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
    pub fn new(spec: CommandSpec) -> Self {
        let describe = format!("command {}", spec.program.display());
        CommandNotifier { spec, describe }
    }
}

#[async_trait]
impl Notifier for CommandNotifier {
    async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), NotifyError> {
        let input = serde_json::to_vec(&notice.context(held_back)).map_err(|e| NotifyError::permanent(&self.describe, e.to_string()))?;
        let mut child = tokio::process::Command::new(&self.spec.program)
            .args(&self.spec.args)
            .current_dir(&self.spec.dir)
            .env("WHARF_EVENT", &notice.kind)
            .env("WHARF_FLOW", &notice.flow)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Dropping the wait (the timeout) kills it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| NotifyError::permanent(&self.describe, format!("cannot start: {e}")))?;
        let stdin = child.stdin.take();
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A command that does not read its input is fine: ignore a broken pipe.
                let _ = stdin.write_all(&input).await;
            }
        };
        let run = async { tokio::join!(write, child.wait_with_output()).1 };
        let output = match tokio::time::timeout(self.spec.timeout, run).await {
            Err(_) => {
                return Err(NotifyError::transient(
                    &self.describe,
                    format!("did not finish within {:?} and was killed", self.spec.timeout),
                ));
            }
            Ok(Err(e)) => return Err(NotifyError::transient(&self.describe, format!("waiting for it failed: {e}"))),
            Ok(Ok(output)) => output,
        };
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stderr = stderr.trim();
        let start = stderr.char_indices().rev().nth(STDERR_TAIL).map_or(0, |(i, _)| i);
        let tail = if stderr.is_empty() { String::new() } else { format!(": {}{}", if start > 0 { "…" } else { "" }, &stderr[start..]) };
        Err(NotifyError::permanent(&self.describe, format!("exited with {}{tail}", output.status)))
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}
