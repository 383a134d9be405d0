//! `wharf runs [FLOW]`: run history from the ledger, newest first.

use std::process::ExitCode;

use super::Global;
use super::output::outln;
use super::state::{no_ledger, open_for_read};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this flow's runs (a flow name, or its file).
    pub flow: Option<String>,
    /// How many runs to show.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`). A run's `counts` are
    /// recorded when it ends: one with no `finished` (still going, or cut off) has 0s there.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, args.json);
    };
    let flow = args.flow.as_deref().map(super::state::flow_name);
    let runs = ledger.runs(flow.as_deref(), args.limit)?;
    let mut content = Vec::with_capacity(runs.len());
    for r in &runs {
        content.push(ledger.run_content(&r.flow, r.id)?);
    }
    if args.json {
        // Each run as stored, with its content-step totals (`quarantined`, `records`) when it had
        // steps; one cut off (no end time) has its `quarantined` alone (its records unknown).
        let rows: Vec<serde_json::Value> = runs
            .iter()
            .zip(&content)
            .map(|(r, c)| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let (Some(c), Some(obj)) = (c, v.as_object_mut()) {
                    obj.insert("quarantined".into(), c.quarantined.into());
                    if r.finished.is_some() {
                        obj.insert("records".into(), serde_json::to_value(c.records).unwrap_or_default());
                    }
                }
                v
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if let (true, Some(flow)) = (runs.is_empty(), &flow)
        && let Some(never) = super::state::never_ran(&ledger, flow)?
    {
        outln!("{never}");
        return Ok(ExitCode::SUCCESS);
    }
    let header = [
        "run",
        "flow",
        "started (UTC)",
        "took",
        "status",
        "seen",
        "wait",
        "deliv",
        "skip",
        "fail",
        "quar",
        "records read/valid/rej/skip/wrote",
        "error",
    ];
    let mut rows = vec![header.map(String::from).to_vec()];
    for (r, content) in runs.into_iter().zip(content) {
        // A run's counts are recorded when it ends: one still going, or cut off (it has no
        // end time), shows "-" (not known), not the 0s it started with.
        let ended = r.finished.is_some();
        let count = |n: u32| if ended { n.to_string() } else { "-".to_string() };
        let (quarantined, records) = match content {
            // Cut off: what the run that closed it counted of its files (`close_interrupted`);
            // its records are not known.
            Some(c) if !ended => (c.quarantined.to_string(), "-".to_string()),
            Some(c) => {
                let k = c.records;
                (c.quarantined.to_string(), format!("{}/{}/{}/{}/{}", k.read, k.valid, k.rejected, k.skipped, k.written))
            }
            // Only a run of a flow with content steps records them, when it ends: a run that
            // ended without them had none, so nothing was quarantined ("-" said unknown). One
            // still going may have quarantined files (one cut off has them counted, above).
            None if ended => ("0".to_string(), "-".to_string()),
            None => ("-".to_string(), "-".to_string()),
        };
        let took = r.finished.map(|f| format!("{:.1}s", (f - r.started) as f64 / 1000.0)).unwrap_or_else(|| "-".into());
        let c = r.counts;
        rows.push(vec![
            r.id.to_string(),
            r.flow,
            super::files::when(r.started),
            took,
            r.status.as_str().to_string(),
            count(c.seen),
            count(c.not_ready),
            count(c.delivered),
            count(c.skipped),
            count(c.failed),
            quarantined,
            records,
            r.error.unwrap_or_default(),
        ]);
    }
    use crate::text::Column;
    let count = |min| Column::right(min).gap(1);
    let columns = [
        Column::right(5),
        Column::left(24),
        Column::left(20),
        Column::right(8),
        Column::left(8),
        Column::right(4),
        count(5),
        count(5),
        count(4),
        count(4),
        count(4),
        Column::left(32),
        Column::left(0),
    ];
    for line in crate::text::table(&columns, &rows) {
        outln!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}
