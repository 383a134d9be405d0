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
//! A command that fails returns its error; `failure::report` alone prints it (and with
//! `--json` the `{"error": …}` object on stdout) and turns it into the exit code.
//!
//! Everything a command prints goes through `output` (`outln!`, `errln!`): `println!` and
//! `eprintln!` panic when the reader of a pipe went away, which a command that keeps SIGPIPE
//! ignored then meets.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod awaits;
mod compact;
mod events;
mod failure;
mod files;
mod forget;
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

/// Exit code: the run finished but some files failed.
pub const EXIT_FILES_FAILED: u8 = 1;
/// Exit code: invalid flow file or usage.
pub const EXIT_INVALID: u8 = 2;
/// Exit code: the run could not start or was aborted.
pub const EXIT_ABORTED: u8 = 3;

/// The first commands a newcomer types, after `wharf --help`'s list of commands.
const EXAMPLES: &str = "\
Examples (run from the folder that holds flows/; `FLOW` is a flow file, or the name of one in ./flows):
  wharf trust sftp.partner.example:22 --known-hosts flows/known_hosts   record the server's host key
  wharf validate flows/                 check every flow of the folder, without connecting
  wharf plan partner-orders             what a run would do with each file now, writing nothing
  wharf run partner-orders              run flows/partner-orders.yaml once
  wharf runs partner-orders             the runs so far, with their counts
  wharf serve --flows flows/            every flow on its schedule, until Ctrl-C

Exit codes: 0 ok, 1 some file failed, 2 invalid flow or arguments, 3 the run could not start or was aborted
(`trigger` and `probe` have their own: README.md, \"Exit codes\").
First steps: docs/getting-started.md; every field of a flow: docs/flow-reference.md.";

/// Where the options every command takes are listed in each command's help, apart from its own.
const GLOBAL: &str = "Global options";

/// wharf — declarative, crash-safe file exchange over SFTP, FTP/FTPS and local folders.
#[derive(Debug, Parser)]
#[command(name = "wharf", version = crate::VERSION, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Folder holding the ledger (ledger.redb) and staging area.
    #[arg(long, global = true, env = "WHARF_STATE_DIR", default_value = ".wharf", help_heading = GLOBAL)]
    pub state_dir: PathBuf,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, help_heading = GLOBAL)]
    pub log_format: LogFormat,
    /// More log output (-v: info, -vv: debug, -vvv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
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
    /// Show the files of a flow that changed last (`--limit`, default 100), with their state
    /// in the ledger; `--path PATH`: everything kept of one file, however old.
    Files(files::Args),
    /// Show an SSH server's host key fingerprint and record it in a known_hosts file.
    Trust(trust::Args),
    /// Inspect, release or reprocess files the content steps quarantined.
    Quarantine(quarantine::Args),
    /// Show the awaited responses (round trips) sent last (`--limit`, default 100): request,
    /// expected response, deadline, state; `awaits close FLOW REQUEST` gives up an open one by
    /// hand.
    Awaits(awaits::Args),
    /// Remove every record the ledger keeps of a flow that has no flow file any more
    /// (removed or renamed); without --yes, only say what would be removed.
    Forget(forget::Args),
    /// Give back to the file system the space the ledger no longer uses (after `forget`, or a
    /// shorter `history`); needs the ledger for itself (stop `wharf serve` first).
    Compact(compact::Args),
    /// Show recorded events (failed runs, quarantined files, unreachable endpoints, recoveries,
    /// missing files, overdue/late/expired responses, files whose names can never be taken),
    /// oldest first.
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
    logging::init(cli.log_format, verbose, cli.command.prints_report());
    if only_prints(&cli.command) {
        die_quietly_on_closed_output();
    }
    let global = Global::new(&cli.state_dir);
    let json = cli.command.json();
    let flow = cli.command.flow();
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
        Command::Forget(a) => forget::run(a, &global),
        Command::Compact(a) => compact::run(a, &global),
        Command::Status(a) => status::run(a, &global),
        Command::Trigger(a) => trigger::run(a, &global),
        Command::Serve(a) => serve::run(a, &global),
        Command::Test(a) => test::run(a, cli.verbose),
        Command::Sandbox(a) => sandbox::run(a, &global),
    };
    match res {
        Ok(code) => code,
        // Named as the ledger knows it (a flow file's `name:`).
        Err(e) => failure::report(&e, json, flow.map(|f| state::flow_name(&f)).as_deref()),
    }
}

impl Command {
    /// Whether the command was asked for JSON on stdout (`--json`).
    fn json(&self) -> bool {
        match self {
            Command::Validate(a) => a.json,
            Command::Run(a) => a.json,
            Command::Plan(a) => a.json,
            Command::Probe(a) => a.json,
            Command::Runs(a) => a.json,
            Command::Files(a) => a.json,
            Command::Quarantine(a) => match &a.command {
                quarantine::Sub::List { json, .. } | quarantine::Sub::Reprocess { json, .. } => *json,
                quarantine::Sub::Show { .. } | quarantine::Sub::Release { .. } => false,
            },
            Command::Awaits(a) => match &a.command {
                Some(awaits::Sub::Close(c)) => c.json,
                None => a.json,
            },
            Command::Events(a) => a.json,
            Command::Forget(a) => a.json,
            Command::Compact(a) => a.json,
            Command::Status(a) => a.json,
            Command::Test(a) => a.json,
            Command::Sandbox(a) => a.json,
            Command::Schema(_) | Command::Trust(_) | Command::Trigger(_) | Command::Serve(_) => false,
        }
    }

    /// Whether the command runs a flow here and prints the run's report (`run`, `quarantine
    /// reprocess`): see `logging::init`.
    fn prints_report(&self) -> bool {
        match self {
            Command::Run(_) => true,
            Command::Quarantine(a) => matches!(a.command, quarantine::Sub::Reprocess { .. }),
            _ => false,
        }
    }

    /// The flow the command is about, as given (a name, or a flow file).
    fn flow(&self) -> Option<String> {
        let path = |p: &Path| Some(p.to_string_lossy().into_owned());
        match self {
            Command::Run(a) => path(&a.flow),
            Command::Plan(a) => path(&a.flow),
            Command::Probe(a) => path(&a.flow),
            Command::Runs(a) => a.flow.clone(),
            Command::Files(a) => Some(a.flow.clone()),
            Command::Quarantine(a) => match &a.command {
                quarantine::Sub::List { flow, .. } => Some(flow.clone()),
                quarantine::Sub::Show { flow, .. } | quarantine::Sub::Release { flow, .. } | quarantine::Sub::Reprocess { flow, .. } => {
                    path(flow)
                }
            },
            Command::Awaits(a) => match &a.command {
                Some(awaits::Sub::Close(c)) => Some(c.flow.clone()),
                None => a.flow.clone(),
            },
            Command::Events(a) => a.flow.clone(),
            Command::Forget(a) => Some(a.flow.clone()),
            Command::Trigger(a) => Some(a.flow.clone()),
            _ => None,
        }
    }
}

/// Commands that only read local files and print: cut off by a closed pipe (`wharf runs |
/// head`), they may simply end, as `ls` does. The others must finish their work whatever
/// becomes of their output (they stop printing: `output`), and those that talk over a socket (`plan`, `status`, `quarantine
/// show`) must see a peer that went away as an error, not die of SIGPIPE.
fn only_prints(c: &Command) -> bool {
    match c {
        Command::Validate(_) | Command::Schema(_) | Command::Runs(_) | Command::Files(_) | Command::Events(_) => true,
        // `close` writes: it finishes whatever becomes of its output.
        Command::Awaits(a) => a.command.is_none(),
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

    /// The examples `wharf --help` ends with are command lines wharf takes, and each
    /// command's help lists the options every command takes apart from its own (they were
    /// mixed in among them: `--state-dir` between `sandbox --bind` and `--port`).
    #[test]
    fn the_help_examples_parse_and_global_options_stand_apart() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let examples: Vec<&str> = EXAMPLES.lines().filter(|l| l.starts_with("  wharf ")).collect();
        assert!(examples.len() >= 5, "{EXAMPLES}");
        for line in examples {
            // The command, then its explanation after three spaces or more.
            let command = line.trim().split("   ").next().unwrap_or_default();
            if let Err(e) = Cli::try_parse_from(command.split_whitespace()) {
                panic!("`{command}` from wharf --help does not parse: {e}");
            }
        }
        let help = Cli::try_parse_from(["wharf", "sandbox", "--help"]).unwrap_err().to_string();
        let (own, global) = help.split_once("Global options:").unwrap_or_else(|| panic!("{help}"));
        assert!(own.contains("--port") && !own.contains("--state-dir"), "{help}");
        assert!(global.contains("--state-dir") && global.contains("--log-format") && !global.contains("--port"), "{help}");
    }

    /// `--version` prints the package version, and for a build from a git checkout which
    /// commit: `wharf 0.1.0 (9edae47-dirty, 2026-12-07)` (build.rs).
    #[test]
    fn the_version_names_the_package_version_and_the_commit_if_any() {
        let printed = Cli::try_parse_from(["wharf", "--version"]).unwrap_err().to_string();
        assert_eq!(printed, format!("wharf {}\n", crate::VERSION));
        let Some(build) = crate::VERSION.strip_prefix(env!("CARGO_PKG_VERSION")) else { panic!("{printed}") };
        if build.is_empty() {
            return; // Not built from a checkout.
        }
        let (commit, date) =
            build.strip_prefix(" (").and_then(|b| b.strip_suffix(')')?.split_once(", ")).unwrap_or_else(|| panic!("{printed}"));
        let hash = commit.strip_suffix("-dirty").unwrap_or(commit);
        assert!(hash.len() >= 7 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{printed}");
        assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(), "{printed}");
    }

    #[test]
    fn the_state_folder_is_made_absolute() {
        let g = Global::new(Path::new(".wharf"));
        assert!(g.state_dir.is_absolute() && g.state_dir.ends_with(".wharf"), "{}", g.state_dir.display());
    }
}
