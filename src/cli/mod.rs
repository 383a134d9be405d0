//! The command line: argument parsing and the mapping of outcomes to exit codes.
//!
//! One file per subcommand. This is the only place (with `main.rs`) that uses `anyhow`;
//! the library below returns typed errors.
//!
//! Exit codes (documented in README and docs/getting-started.md):
//! - 0: success;
//! - 1: the run finished but at least one file failed;
//! - 2: invalid flow file or command-line usage;
//! - 3: the run could not start or was aborted (endpoint unreachable, login refused,
//!   server not trusted, ledger unusable).
//!
//! Everything a command prints goes through `output` (`outln!`, `errln!`): `println!` and
//! `eprintln!` panic when the reader of a pipe went away, which a command that keeps SIGPIPE
//! ignored then meets.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod awaits;
mod events;
mod files;
mod logging;
mod output;
mod plan;
mod probe;
mod quarantine;
mod run;
mod runs;
mod sandbox;
mod schema;
mod serve;
mod state;
mod status;
mod test;
mod trigger;
mod trust;
mod validate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use output::errln;

/// Exit code: the run finished but some files failed.
pub const EXIT_FILES_FAILED: u8 = 1;
/// Exit code: invalid flow file or usage.
pub const EXIT_INVALID: u8 = 2;
/// Exit code: the run could not start or was aborted.
pub const EXIT_ABORTED: u8 = 3;

/// wharf — declarative, crash-safe file exchange over SFTP and local folders.
#[derive(Debug, Parser)]
#[command(name = "wharf", version, about)]
pub struct Cli {
    /// Folder holding the ledger (ledger.redb) and staging area.
    #[arg(long, global = true, env = "WHARF_STATE_DIR", default_value = ".wharf")]
    pub state_dir: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log output (-v: info, -vv: debug, -vvv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check flow files and report every problem as file:line:col.
    Validate(validate::Args),
    /// Print the JSON Schema of flow files.
    Schema(schema::Args),
    /// Run a flow once now.
    Run(run::Args),
    /// Show what a run would do with each file now, and why, without writing anything.
    Plan(plan::Args),
    /// Ask a flow's servers what they support and how they behave (`--write`: also test
    /// rename and the clock in a scratch folder), and say what it means for the flow.
    Probe(probe::Args),
    /// Show run history.
    Runs(runs::Args),
    /// Show each file's state in the ledger for a flow.
    Files(files::Args),
    /// Show an SSH server's host key fingerprint and record it in a known_hosts file.
    Trust(trust::Args),
    /// Inspect, release or reprocess files the content steps quarantined.
    Quarantine(quarantine::Args),
    /// Show awaited responses (round trips): request, expected response, deadline, state.
    Awaits(awaits::Args),
    /// Show recorded events (failed runs, quarantined files, unreachable endpoints, recoveries,
    /// missing files, overdue/late/expired responses), oldest first.
    Events(events::Args),
    /// Show the flows of the running `wharf serve` (without one: each flow's last run).
    Status(status::Args),
    /// Ask the running `wharf serve` to run a flow now.
    Trigger(trigger::Args),
    /// Run every flow of a folder on its schedule until stopped (SIGTERM / Ctrl-C).
    Serve(serve::Args),
    /// Run the tests kept beside flows (`*.test.yaml`): fixtures in, expected outputs out,
    /// without connecting anywhere; exit 1 when a case fails, 2 when a test file is invalid.
    Test(test::Args),
    /// Serve a folder over SFTP and plain FTP on 127.0.0.1 to try flows locally, until stopped.
    Sandbox(sandbox::Args),
}

/// Parses arguments, runs the command, and maps the result to an exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    // A daemon's log is its output: info by default.
    let verbose = if matches!(cli.command, Command::Serve(_)) { cli.verbose.max(1) } else { cli.verbose };
    logging::init(cli.log_format, verbose);
    if only_prints(&cli.command) {
        die_quietly_on_closed_output();
    }
    let global = Global::new(&cli.state_dir);
    let res = match cli.command {
        Command::Validate(a) => validate::run(a),
        Command::Schema(a) => schema::run(a),
        Command::Run(a) => run::run(a, &global),
        Command::Plan(a) => plan::run(a, &global),
        Command::Probe(a) => probe::run(a, &global),
        Command::Runs(a) => runs::run(a, &global),
        Command::Files(a) => files::run(a, &global),
        Command::Trust(a) => trust::run(a),
        Command::Quarantine(a) => quarantine::run(a, &global),
        Command::Awaits(a) => awaits::run(a, &global),
        Command::Events(a) => events::run(a, &global),
        Command::Status(a) => status::run(a, &global),
        Command::Trigger(a) => trigger::run(a, &global),
        Command::Serve(a) => serve::run(a, &global),
        Command::Test(a) => test::run(a, cli.verbose),
        Command::Sandbox(a) => sandbox::run(a, &global),
    };
    match res {
        Ok(code) => code,
        Err(e) => {
            errln!("error: {}", causes(&e));
            ExitCode::from(EXIT_ABORTED)
        }
    }
}

/// Commands that only read local files and print: cut off by a closed pipe (`wharf runs |
/// head`), they may simply end, as `ls` does. The others must finish their work whatever
/// becomes of their output (they stop printing: `output`), and those that talk over a socket (`plan`, `status`, `quarantine
/// show`) must see a peer that went away as an error, not die of SIGPIPE.
fn only_prints(c: &Command) -> bool {
    match c {
        Command::Validate(_) | Command::Schema(_) | Command::Runs(_) | Command::Files(_) | Command::Awaits(_) | Command::Events(_) => true,
        Command::Quarantine(q) => matches!(q.command, quarantine::Sub::List { .. }),
        _ => false,
    }
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it, so that a write to a
/// closed pipe fails instead, and `println!` then panics).
fn die_quietly_on_closed_output() {
    // SAFETY: called at start-up, before any thread writes to a pipe; only changes the
    // disposition of one signal to its default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes, `: `-separated (as `{:#}` prints them), leaving out a cause
/// whose text an outer message already holds: the library's errors name their cause in
/// their own message and also expose it as their `source`.
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Options every subcommand may use.
#[derive(Debug, Clone)]
pub struct Global {
    /// Absolute: `wharf serve` records its control socket's path from it, and `wharf status`
    /// or `trigger` run from another folder must find that socket.
    pub state_dir: PathBuf,
}

impl Global {
    pub fn new(state_dir: &Path) -> Self {
        Global { state_dir: std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_folder_is_made_absolute() {
        let g = Global::new(Path::new(".wharf"));
        assert!(g.state_dir.is_absolute() && g.state_dir.ends_with(".wharf"), "{}", g.state_dir.display());
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("ledger /x: cannot create its folder: {source}")]
        struct Named {
            #[source]
            source: std::io::Error,
        }
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = anyhow::Error::new(Named { source: denied() }).context("cannot open the ledger");
        assert_eq!(causes(&e), "cannot open the ledger: ledger /x: cannot create its folder: permission denied");
        // A cause the message does not name is still printed.
        let e = anyhow::Error::new(denied()).context("cannot open the ledger");
        assert_eq!(causes(&e), "cannot open the ledger: permission denied");
    }
}
