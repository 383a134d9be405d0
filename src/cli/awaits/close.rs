//! `wharf awaits close FLOW REQUEST [--yes]`: gives up by hand the open await of a request
//! (round trips), for an answer that will never come to a flow without `expire_after`.
//!
//! The await becomes `expired`, as if its `expire_after` had passed, with a detail saying it
//! was closed by hand: a request held back because it would await the same response name goes
//! out on the next run, and a response arriving later is not looked for (as for any expired
//! await). No `expired` event is recorded: the operator acted, a notice would only tell them.
//!
//! An await whose response a run has begun to take (half delivered: staged, delivered to some
//! sinks) is not closed (exit 2): the answer came, and the next run finishes taking it and
//! closes the await; closed, the response would stay half taken for good.
//!
//! Without `--yes` it only says what it would close (read-only, beside a daemon too); with it,
//! it writes as the ledger's one writer (refused while `wharf serve` holds the ledger, like
//! the other commands that write). It must not decide anything else about an await: that is
//! `engine/awaits.rs`.

use std::process::ExitCode;

use serde::Serialize;

use super::super::failure::{Failure, Kind};
use super::super::files::when;
use super::super::output::outln;
use super::super::state::{flow_name, ledger_path, never_ran, open_for_read, open_for_write, serving};
use super::super::{EXIT_INVALID, Global};
use crate::ledger::{AwaitRecord, Ledger};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow name, or flow file.
    pub flow: String,
    /// The request's source path, as `wharf awaits` lists it (with or without the leading `/`).
    pub request: String,
    /// Close it (without it: only say what would be closed).
    #[arg(long)]
    pub yes: bool,
    /// JSON output (times in RFC 3339, UTC).
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Report<'a> {
    flow: &'a str,
    request: &'a str,
    /// Whether they were closed (`--yes`), or only found.
    closed: bool,
    /// The open awaits of the request: as closed with `--yes`, as they are without.
    awaits: Vec<AwaitRecord>,
}

/// Open awaits of a flow listed in full in the error for a request that has none.
const LISTED: usize = 10;

/// What is advised while `wharf serve` holds the ledger.
const WHILE_SERVING: &str = "stop the daemon to close an await by hand";

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let flow = flow_name(&args.flow);
    let request = args.request.trim_start_matches('/');
    let awaits = if args.yes {
        let Some(ledger) = ledger_path(global).exists().then(|| open_for_write(global, &flow, WHILE_SERVING)).transpose()? else {
            return Err(no_await(None, &flow, request).into());
        };
        let open = open_awaits(&ledger, &flow, request)?;
        let now = crate::ledger::now_millis();
        let detail = format!("closed by hand (`wharf awaits close`) on {} UTC; no longer awaited", when(now));
        let mut closed = Vec::with_capacity(open.len());
        for a in open {
            // Read again in the write: `None` only if it closed since (not while we write).
            if let Some(c) = ledger.close_await(&flow, &a.expected, &detail, now)? {
                // Named as the table and the run's report name them (`/a.csv`).
                let (request, expected) = (format!("/{}", c.request), format!("/{}", c.expected));
                tracing::info!(flow = %flow, request = %request, expected = %expected, was = a.state.as_str(), "Await closed by hand.");
                closed.push(c);
            }
        }
        closed
    } else {
        let Some(ledger) = open_for_read(global)? else { return Err(no_await(None, &flow, request).into()) };
        open_awaits(&ledger, &flow, request)?
    };
    if args.json {
        let report = Report { flow: &flow, request, closed: args.yes, awaits };
        outln!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.yes { "closed" } else { "would close" };
    for a in &awaits {
        let was = if args.yes { String::new() } else { format!("{}, ", a.state.as_str()) };
        outln!(
            "flow {flow}: {verb} the await of request /{} ({was}sent {} UTC, due by {} UTC) for response /{}",
            a.request,
            when(a.sent_at),
            when(a.deadline_at),
            a.expected
        );
    }
    if args.yes {
        outln!("it is now expired (no event recorded); a request held back for the same response name goes out on the next run");
    } else {
        let daemon = if serving(&global.state_dir).is_some() { "; stop `wharf serve` first: it holds the ledger" } else { "" };
        let word = |s: &str| crate::text::shell_word(s).into_owned();
        outln!("run again with --yes to close it (`wharf awaits close {} {} --yes`{daemon})", word(&args.flow), word(&args.request));
    }
    Ok(ExitCode::SUCCESS)
}

/// The open awaits of `request` in `flow`; an error naming the flow's open awaits when there
/// are none.
fn open_awaits(ledger: &Ledger, flow: &str, request: &str) -> anyhow::Result<Vec<AwaitRecord>> {
    let all = ledger.awaits(Some(flow))?;
    let open: Vec<AwaitRecord> = all.iter().filter(|a| a.request == request && a.state.is_open()).cloned().collect();
    if !open.is_empty() {
        for a in &open {
            if let Some(r) = crate::engine::response_being_taken(ledger, flow, a)? {
                return Err(being_taken(flow, a, &r).into());
            }
        }
        return Ok(open);
    }
    if all.is_empty()
        && let Some(never) = never_ran(ledger, flow)?
    {
        return Err(Failure::new(Kind::NotFound, EXIT_INVALID, format!("no await of request /{request} to close: {never}")).into());
    }
    Err(no_await(Some(&all), flow, request).into())
}

/// The error for an await whose response a run has begun to take (`r`, its record): the
/// answer came, so it is not given up; the next run finishes taking it and closes the await.
fn being_taken(flow: &str, a: &AwaitRecord, r: &crate::ledger::FileRecord) -> Failure {
    let response = crate::config::flow::response_flow_name(flow);
    Failure::new(
        Kind::Usage,
        EXIT_INVALID,
        format!(
            "flow {flow}: the await of request /{} is not closed: its response /{} came, and run {} began to take it ({}, {} of its deliveries confirmed, since {} UTC); the next run of the flow finishes taking it and closes the await (answered, or late) — `wharf files {response}` shows how far it got, and why if it keeps failing",
            a.request,
            a.expected,
            r.run,
            r.state.as_str(),
            r.deliveries.iter().filter(|d| d.done).count(),
            when(r.updated)
        ),
    )
}

/// The error for a request with no open await: closed already (how), or not awaited at all;
/// with the flow's open awaits when few (`awaits`: every await of the flow; `None`: no ledger).
fn no_await(awaits: Option<&[AwaitRecord]>, flow: &str, request: &str) -> Failure {
    let awaits = awaits.unwrap_or_default();
    let closed: Vec<String> = awaits
        .iter()
        .filter(|a| a.request == request)
        .map(|a| {
            format!("{} (response /{}{})", a.state.as_str(), a.expected, a.detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())
        })
        .collect();
    let what = if closed.is_empty() {
        format!("flow {flow}: request /{request} has no await")
    } else {
        format!("flow {flow}: the await of request /{request} is not open, nothing to close: {}", closed.join("; "))
    };
    let open: Vec<&AwaitRecord> = awaits.iter().filter(|a| a.state.is_open()).collect();
    let others = match open.len() {
        0 => "the flow has no open await".to_string(),
        n if n <= LISTED => {
            let list: Vec<String> =
                open.iter().map(|a| format!("/{} ({}, response /{})", a.request, a.state.as_str(), a.expected)).collect();
            format!("open awaits of the flow: {}", list.join(", "))
        }
        n => format!("the flow has {n} open awaits (`wharf awaits {flow} --open` lists them)"),
    };
    Failure::new(Kind::NotFound, EXIT_INVALID, format!("{what}; {others}"))
}
