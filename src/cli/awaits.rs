//! `wharf awaits [FLOW]`: the awaited responses (round trips) whose request went out last
//! (`--limit`, saying when older ones were left out), oldest first, with their request,
//! deadline and state; and the response lines of `wharf run`'s summary. `wharf awaits close`
//! (closing an await by hand) is in `close`.

pub mod close;

use std::process::ExitCode;

use super::Global;
use super::files::when;
use super::output::outln;
use super::state::{no_ledger, open_for_read};
use crate::engine::ResponseReport;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, disable_help_subcommand = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Sub>,
    /// Only this flow's awaits (a flow named `close`: `wharf awaits -- close`).
    pub flow: Option<String>,
    /// Only awaits still open (waiting or overdue).
    #[arg(long)]
    pub open: bool,
    /// Most awaits to show: those whose request was sent last, oldest first. Older ones are
    /// left out, and a last line says so.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Give up by hand the open await of a request whose answer will never come: it becomes
    /// `expired` (no event), and a request held back for the same response name goes out on
    /// the next run. Refused while its response is half taken (the next run finishes it).
    /// Without --yes, only say what would be closed.
    // `wharf awaits close` is this command, also for a user who has a flow named `close`: the
    // usage every error of it shows says how to list that flow's awaits.
    #[command(override_usage = CLOSE_USAGE)]
    Close(close::Args),
}

/// The usage of `wharf awaits close`, shown with its errors (`wharf awaits close` alone).
const CLOSE_USAGE: &str = "wharf awaits close <FLOW> <REQUEST> [--yes] [--json]\n       \
    wharf awaits -- close   (the awaits of a flow named `close`: `--` before its name)";

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    if let Some(Sub::Close(a)) = args.command {
        return close::run(a, global);
    }
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, args.json);
    };
    let flow = args.flow.as_deref().map(super::state::flow_name);
    let awaits = ledger.latest_awaits(flow.as_deref(), args.limit, |a| !args.open || a.state.is_open())?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&awaits.items)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let (true, Some(flow)) = (awaits.total == 0, &flow)
        && let Some(never) = super::state::never_ran(&ledger, flow)?
    {
        outln!("{never}");
        return Ok(ExitCode::SUCCESS);
    }
    if awaits.total == 0 {
        let what = if args.open { "no open awaited responses (waiting or overdue)" } else { "no awaited responses recorded" };
        outln!("{what}{}", flow.map(|f| format!(" for flow {f}")).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    let header = ["flow", "state", "sent (UTC)", "deadline (UTC)", "answered (UTC)", "run", "request", "expected response"];
    let mut rows = vec![header.map(String::from).to_vec()];
    for a in &awaits.items {
        rows.push(vec![
            a.flow.clone(),
            a.state.as_str().to_string(),
            when(a.sent_at),
            when(a.deadline_at),
            a.answered_at.map(when).unwrap_or_else(|| "-".into()),
            a.response_run.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
            format!("/{}", a.request),
            format!("/{}", a.expected),
        ]);
    }
    use crate::text::Column;
    let columns = [
        Column::left(20),
        Column::left(8).gap(1),
        Column::left(19).gap(1),
        Column::left(19),
        Column::left(19),
        Column::right(5),
        Column::name(32),
        Column::left(0),
    ];
    for line in crate::text::table(&columns, &rows) {
        outln!("{line}");
    }
    if awaits.left_out() {
        outln!("{}", super::files::left_out(awaits.items.len(), awaits.total, "awaited responses"));
    }
    for (a, why) in not_disposed_of(&ledger, &awaits.items)? {
        outln!(
            "note: flow {}: the response /{} answered request /{}, but is not disposed of on the server yet: {why}; every run of \
             the flow tries again (`wharf files {}`)",
            a.flow,
            a.expected,
            a.request,
            crate::config::flow::response_flow_name(&a.flow)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The answered (or late) awaits of `items` whose response every sink has but whose disposal
/// on the partner's server is not done (refused, run after run), each with why (the last
/// error, when a run tried): the table says `answered`, and this says what is left.
fn not_disposed_of<'a>(
    ledger: &crate::ledger::Ledger,
    items: &'a [crate::ledger::AwaitRecord],
) -> anyhow::Result<Vec<(&'a crate::ledger::AwaitRecord, String)>> {
    use crate::ledger::{AwaitState, FileState};
    let mut left: std::collections::BTreeMap<&str, std::collections::BTreeMap<String, String>> = Default::default();
    let mut out = Vec::new();
    for a in items.iter().filter(|a| matches!(a.state, AwaitState::Answered | AwaitState::Late)) {
        if !left.contains_key(a.flow.as_str()) {
            let files = ledger.in_flight_files(&crate::config::flow::response_flow_name(&a.flow))?;
            let why =
                |r: &crate::ledger::FileRecord| r.last_error.as_ref().map_or_else(|| "not tried yet".to_string(), |e| e.message.clone());
            let undisposed = files.iter().filter(|r| matches!(r.state, FileState::Delivered | FileState::Disposing));
            left.insert(&a.flow, undisposed.map(|r| (r.path.clone(), why(r))).collect());
        }
        if let Some(why) = left.get(a.flow.as_str()).and_then(|l| l.get(&a.expected)) {
            out.push((a, why.clone()));
        }
    }
    Ok(out)
}

/// The response lines of a run summary (nothing for a flow without awaits).
pub fn print_responses(responses: &[ResponseReport]) {
    if responses.is_empty() {
        return;
    }
    outln!("  responses:");
    let cells: Vec<(String, String)> =
        responses.iter().map(|r| (format!("/{}", r.expected), format!("{} (request /{})", r.detail, r.request))).collect();
    let rows: Vec<(&str, &str, &str)> =
        responses.iter().zip(&cells).map(|(r, (name, detail))| (r.state.as_str(), name.as_str(), detail.as_str())).collect();
    for line in crate::text::columns(&rows, "  ", 11) {
        outln!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    /// `wharf awaits close` is the command that closes an await; asked for alone (meant as
    /// the awaits of a flow named `close`), its error says how to list those. It said only
    /// that FLOW and REQUEST were missing.
    #[test]
    fn awaits_close_alone_says_how_to_list_a_flow_named_close() {
        let e = Cli::try_parse_from(["wharf", "awaits", "close"]).unwrap_err().to_string();
        assert!(e.contains("<FLOW>") && e.contains("wharf awaits -- close   (the awaits of a flow named `close`"), "{e}");
        let e = Cli::try_parse_from(["wharf", "awaits", "close", "--open"]).unwrap_err().to_string();
        assert!(e.contains("wharf awaits -- close"), "{e}");
        // Both still mean what they meant.
        let Command::Awaits(a) = Cli::try_parse_from(["wharf", "awaits", "--", "close"]).unwrap().command else { panic!() };
        assert_eq!((a.flow.as_deref(), a.command.is_none()), (Some("close"), true));
        let Command::Awaits(a) = Cli::try_parse_from(["wharf", "awaits", "close", "f", "/a.csv"]).unwrap().command else { panic!() };
        assert!(matches!(a.command, Some(super::Sub::Close(c)) if c.flow == "f" && c.request == "/a.csv"));
    }
}
