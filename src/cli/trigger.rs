//! `wharf trigger FLOW`: ask the running `wharf serve` to run a flow now.
//!
//! Exit codes: 0 started or queued, 1 running already (overlap: skip), 2 no such flow in the
//! daemon (or its file is refused: said with the first problem), 3 no daemon (or it is
//! shutting down, or did not answer).

use std::path::Path;
use std::process::ExitCode;

use super::output::{errln, outln};
use super::{EXIT_ABORTED, EXIT_FILES_FAILED, EXIT_INVALID, Global};
use crate::control::discovery::Found;
use crate::control::{TriggerError, Triggered};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow name (or its flow file).
    pub flow: String,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let name = super::state::flow_name(&args.flow);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = match super::state::find_daemon(&rt, global)? {
        Found::Running { client, .. } => client,
        Found::NotRunning { .. } => {
            errln!("error: {}", no_daemon(&args.flow, &global.state_dir));
            return Ok(ExitCode::from(EXIT_ABORTED));
        }
    };
    match rt.block_on(client.trigger(&name))? {
        Ok(t) => {
            match t {
                Triggered::Started => outln!("flow {name}: run started"),
                Triggered::Queued => outln!("flow {name}: running now; another run is queued to start right after it"),
            }
            // An edit the daemon refused leaves the previous version in force: the run is of
            // that one, which whoever just edited the file would not guess.
            if let Ok(status) = rt.block_on(client.status())
                && let Some(note) = previous_version(&name, &status.flows)
            {
                errln!("{note}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ TriggerError::AlreadyRunning(_)) => {
            errln!("{e}; nothing queued (its overlap is `skip`)");
            Ok(ExitCode::from(EXIT_FILES_FAILED))
        }
        Err(TriggerError::UnknownFlow(_)) if !crate::config::raw::is_flow_name(&name) => {
            errln!(
                "error: `{name}` is not a valid flow name (letters, digits, `-`, `_` and `.`, starting with a letter or digit), \
                 so the running `wharf serve` has no flow by it; `wharf status` lists its flows"
            );
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(TriggerError::UnknownFlow(_)) => {
            // The daemon's flows close to the name (another letter case, a typing mistake or
            // two); none when it cannot say.
            let served: Vec<String> =
                rt.block_on(client.status()).map(|s| s.flows.into_iter().map(|f| f.name).collect()).unwrap_or_default();
            errln!("error: {}", unknown_flow(&name, &served));
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e @ TriggerError::Refused { .. }) => {
            errln!("error: {e}");
            Ok(ExitCode::from(EXIT_INVALID))
        }
        Err(e @ TriggerError::ShuttingDown) => {
            errln!("error: {e}");
            Ok(ExitCode::from(EXIT_ABORTED))
        }
    }
}

/// When `name`'s file on disk is refused while an earlier version of it is served: that the
/// run is of that version, with the file and its first problem.
fn previous_version(name: &str, served: &[crate::control::FlowStatus]) -> Option<String> {
    let flow = served.iter().find(|f| f.name == name)?;
    let (file, problem) = (flow.file.as_ref()?, flow.problem.as_ref()?);
    Some(format!(
        "note: flow {name}: its file {} is refused by the daemon ({problem}); the run uses the version loaded before; \
         `wharf validate {}` lists every problem",
        file.display(),
        crate::text::shell_word(&file.display().to_string())
    ))
}

/// What is said when the daemon has no flow `name`, with those of `served` close to it.
fn unknown_flow(name: &str, served: &[String]) -> String {
    let close = crate::suggest::close(name, served.iter().map(String::as_str), |_| false);
    if close.is_empty() {
        return format!("the running `wharf serve` has no flow named {name}; `wharf status` lists its flows");
    }
    format!("unknown flow `{name}`{}: the running `wharf serve` has no flow by that name", crate::suggest::did_you_mean(&close))
}

/// What is said when no daemon runs: how to run the flow here instead, with the argument as
/// given (`wharf run` finds it as `trigger` did: a flow file, or a name in ./flows); or, when
/// there is no such flow file either, that the flow does not exist (`wharf run` of it would
/// fail too).
fn no_daemon(flow: &str, state_dir: &Path) -> String {
    let none = format!("no `wharf serve` is running for state dir {}", state_dir.display());
    match super::run::resolve_flow_path(Path::new(flow)) {
        Ok(file) if file.is_file() => format!("{none}; run the flow once with `wharf run {flow}`"),
        Err(two) => format!("{none}; {two}"),
        Ok(_) => format!("{none}, and there is no flow {flow} here either ({}); nothing was run", super::run::looked_for(Path::new(flow))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_the_previous_version_says_so() {
        // Was only "run started": the run was of the version loaded before a refused edit.
        let mut flow = crate::control::FlowStatus::new("orders", Some("/etc/wharf/flows/orders.yaml".into()));
        assert_eq!(previous_version("orders", std::slice::from_ref(&flow)), None, "no problem: nothing to say");
        flow.problem = Some("1 problem(s), first: orders.yaml:2:20: `banana` is not a duration".into());
        let note = previous_version("orders", std::slice::from_ref(&flow)).unwrap();
        assert!(
            note.starts_with("note: flow orders: its file /etc/wharf/flows/orders.yaml is refused by the daemon (1 problem(s), first: "),
            "{note}"
        );
        assert!(
            note.contains("the run uses the version loaded before") && note.contains("`wharf validate /etc/wharf/flows/orders.yaml`"),
            "{note}"
        );
        flow.file = Some("flows/my orders.yaml".into());
        assert!(previous_version("orders", std::slice::from_ref(&flow)).unwrap().contains("`wharf validate 'flows/my orders.yaml'`"));
        assert_eq!(previous_version("invoices", &[flow]), None);
    }

    #[test]
    fn a_flow_name_close_to_a_served_one_names_it() {
        let served = ["orders".to_string(), "invoices".to_string()];
        assert_eq!(
            unknown_flow("Orders", &served),
            "unknown flow `Orders` (did you mean `orders`?): the running `wharf serve` has no flow by that name"
        );
        assert_eq!(
            unknown_flow("payments", &served),
            "the running `wharf serve` has no flow named payments; `wharf status` lists its flows"
        );
    }

    #[test]
    fn without_a_daemon_a_flow_that_does_not_exist_is_not_suggested_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let missing = dir.path().join("nosuch.yaml");
        let (s, m) = (state.display(), missing.display());
        assert_eq!(
            no_daemon(missing.to_str().unwrap(), &state),
            format!(
                "no `wharf serve` is running for state dir {s}, and there is no flow {m} here either (looked for {m}); nothing was run"
            )
        );
        let flow = dir.path().join("orders.yaml");
        std::fs::write(&flow, "name: orders\n").unwrap();
        assert_eq!(
            no_daemon(flow.to_str().unwrap(), &state),
            format!(
                "no `wharf serve` is running for state dir {}; run the flow once with `wharf run {}`",
                state.display(),
                crate::text::shell_word(&flow.display().to_string())
            )
        );
    }
}
