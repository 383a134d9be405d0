//! The state folder from the CLI's side: which ledger handle a command opens, and what it says
//! when `wharf serve` (or another `wharf run`) holds the ledger.
//!
//! Commands that only read open the ledger read-only, whether or not another process writes
//! it (they follow its commits). Commands that write need to be the one writer; while a daemon
//! is, they refuse with a hint (exit 3, like any run that cannot start).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use super::failure::{Failure, Kind};
use super::output::outln;
use super::{EXIT_ABORTED, Global};
use crate::control::discovery::{self, Found, ServeInfo};
use crate::ledger::{Ledger, LedgerError};

/// The ledger file of the state folder.
pub fn ledger_path(global: &Global) -> PathBuf {
    global.state_dir.join("ledger.redb")
}

/// A read-only handle for commands that only read; `None` when nothing has run yet (no
/// ledger file; see [`no_ledger`]).
pub fn open_for_read(global: &Global) -> anyhow::Result<Option<Ledger>> {
    let path = ledger_path(global);
    let ledger = match Ledger::open_read_only(&path) {
        Ok(l) => l,
        Err(LedgerError::Missing(_)) => return Ok(None),
        Err(e) => return Err(e).context("cannot open the ledger"),
    };
    if ledger.missing_tables()?.is_empty() {
        return Ok(Some(ledger));
    }
    // Last written by an older wharf: opening it as the writer once creates this version's
    // tables. Someone writing it now is running this version's writer (or will fail the same).
    drop(ledger);
    match Ledger::open(&path) {
        Ok(writer) => drop(writer),
        Err(LedgerError::Busy(_)) => {}
        Err(e) => return Err(e).context("cannot open the ledger"),
    }
    Ok(Some(Ledger::open_read_only(&path).context("cannot open the ledger")?))
}

/// What a read command prints when there is no ledger: `[]` for JSON, a sentence otherwise.
pub fn no_ledger(global: &Global, json: bool) -> anyhow::Result<ExitCode> {
    if json {
        outln!("[]");
    } else {
        outln!("{}", LedgerError::Missing(ledger_path(global)));
    }
    Ok(ExitCode::SUCCESS)
}

/// The writer's handle, for a command working on `flow`. While another process holds the
/// ledger the error says who: a running `wharf serve` (then `instead` is the advice, e.g. "use
/// `wharf trigger X` (or stop the daemon)"), or some other wharf process.
pub fn open_for_write(global: &Global, flow: &str, instead: &str) -> anyhow::Result<Ledger> {
    open_for_write_as(global, &format!("flow {flow}"), instead)
}

/// [`open_for_write`] for a command about the ledger as a whole: its messages begin with
/// `what` (`compact`) instead of a flow.
pub fn open_for_write_as(global: &Global, what: &str, instead: &str) -> anyhow::Result<Ledger> {
    let path = ledger_path(global);
    match Ledger::open(&path) {
        Ok(l) => Ok(l),
        Err(LedgerError::Busy(_)) => {
            let message = match serving(&global.state_dir) {
                Some(info) => {
                    format!("{what}: the ledger at {} is held by `wharf serve` ({}); {instead}", path.display(), info.describe())
                }
                None => format!(
                    "{what}: the ledger at {} is in use by another wharf process (a `wharf run`?); try again when it has finished",
                    path.display()
                ),
            };
            Err(Failure::new(Kind::Busy, EXIT_ABORTED, message).into())
        }
        Err(e) => Err(e).with_context(|| format!("{what}: cannot open the ledger")),
    }
}

/// Whether a `wharf serve` runs for the state folder (see [`discovery::find`]). A state folder
/// that is a file is refused first, in the ledger commands' words, not as a discovery file
/// that is "Not a directory".
pub fn find_daemon(rt: &tokio::runtime::Runtime, global: &Global) -> anyhow::Result<Found> {
    Ledger::check_folder(&ledger_path(global))?;
    Ok(rt.block_on(discovery::find(&global.state_dir))?)
}

/// The daemon serving `state_dir`, if its discovery file names a socket that answers.
pub fn serving(state_dir: &Path) -> Option<ServeInfo> {
    let info = ServeInfo::read(&ServeInfo::path_in(state_dir)).ok()??;
    std::os::unix::net::UnixStream::connect(&info.socket).ok()?;
    Some(info)
}

/// The flow an argument names: a flow file (its `name`, read without checking the rest of
/// the file, so a file whose secrets are not set here still names its flow), or a name (also
/// when two flow files give it: it names their flow all the same).
pub fn flow_name(arg: &str) -> String {
    let file = super::run::resolve_flow_path(std::path::Path::new(arg)).ok();
    let named = file.filter(|f| f.is_file()).and_then(|f| crate::config::name_in_file(&f));
    named.unwrap_or_else(|| arg.to_string())
}

/// Every flow with a run in the ledger, sorted.
pub fn flows_with_runs(ledger: &Ledger) -> anyhow::Result<Vec<String>> {
    Ok(ledger.flows()?.into_iter().collect())
}

/// For a command that found nothing for `flow`: when the ledger has no run of it at all (a
/// misspelt name, a flow file's name taken for the flow's), the sentence that says so and
/// names the flows it does know; `None` when the flow has run.
pub fn never_ran(ledger: &Ledger, flow: &str) -> anyhow::Result<Option<String>> {
    if !ledger.runs(Some(flow), 1)?.is_empty() {
        return Ok(None);
    }
    let known = flows_with_runs(ledger)?;
    let close = crate::suggest::close(flow, known.iter().map(String::as_str), |_| false);
    let at = ledger.path().display();
    let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
    if close.is_empty() {
        return Ok(Some(format!("flow {flow} has never run with the ledger at {at} (flows that have: {known})")));
    }
    // A flow name in another letter case, or a typing mistake or two away (names are
    // case-sensitive): the close ones are named first.
    let hint = crate::suggest::did_you_mean(&close);
    Ok(Some(format!("unknown flow `{flow}`{hint}: it has never run with the ledger at {at} (flows that have: {known})")))
}
