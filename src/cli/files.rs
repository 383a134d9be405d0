//! `wharf files FLOW`: the files of a flow that changed last (`--limit`, saying when older
//! ones were left out), with their lifecycle state, oldest first; and, marked `(earlier)`,
//! every quarantined file a newer file under its name replaced (`wharf quarantine list`).
//! A file its content steps let through with a warning (every record rejected, a CSV read as
//! one column) has it after its detail, as its run's report had it.

mod one;

use std::process::ExitCode;

use super::Global;
use super::output::outln;
use super::state::{no_ledger, open_for_read};
use crate::ledger::quarantined::QuarantinedFile;
use crate::ledger::{FileRecord, FileWarning, Millis};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow name (or its flow file).
    pub flow: String,
    /// Most files to show: those whose record changed last (taken, delivered, failed…),
    /// oldest first. Older ones are left out, and a last line says so.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Only the file at this source path (`/in/X.csv`), however long ago it changed, in full:
    /// first seen, size, time and SHA-256, state and run, where it was delivered, what became
    /// of its source, its last error.
    #[arg(long)]
    pub path: Option<String>,
    /// JSON output (times in RFC 3339, UTC: `2026-12-06T07:18:42.123Z`).
    #[arg(long)]
    pub json: bool,
}

/// `2026-11-25 10:00:00` for ms since the epoch (UTC).
pub fn when(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()
}

/// The last line of a list that left older records out: how many it showed, of how many, and
/// how to see more (worded as `wharf events` words it).
pub fn left_out(shown: usize, total: usize, what: &str) -> String {
    format!("(the newest {shown} of {total} {what}; earlier ones: --limit N, --limit {total} for all)")
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let Some(ledger) = open_for_read(global)? else {
        return no_ledger(global, args.json);
    };
    let flow = super::state::flow_name(&args.flow);
    if let Some(path) = &args.path {
        return one::run(&ledger, &flow, path, args.json);
    }
    let files = ledger.latest_files(&flow, args.limit)?;
    // Quarantined files a newer file under their name replaced (`wharf quarantine list`):
    // each is shown, whatever `--limit`, where its record falls in time, marked as earlier.
    let earlier: Vec<QuarantinedFile> = ledger.quarantined_files(&flow, None)?.into_iter().filter(|f| f.earlier.is_some()).collect();
    let mut rows: Vec<(&FileRecord, Option<&QuarantinedFile>)> = files.items.iter().map(|r| (r, None)).collect();
    rows.extend(earlier.iter().map(|f| (&f.rec, Some(f))));
    // Stable: the records keep their order; an earlier file goes after those of its time.
    rows.sort_by_key(|(r, _)| r.updated);
    let of: Vec<_> = rows.iter().map(|(r, e)| (*r, e.and_then(|q| q.earlier).map(|e| e.replaced))).collect();
    let warnings = ledger.warnings_of(&flow, &of)?;
    if args.json {
        let v = rows.iter().zip(&warnings).map(|((r, e), w)| json_row(r, *e, w.as_ref())).collect::<Result<Vec<_>, _>>()?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if files.total == 0 && earlier.is_empty() {
        let never = super::state::never_ran(&ledger, &flow)?;
        outln!("{}", never.unwrap_or_else(|| format!("no files recorded for flow {flow}")));
        return Ok(ExitCode::SUCCESS);
    }
    // `fails`: the runs the file failed in so far (what `retry.give_up_after` counts), 0 for a
    // file delivered at its first try (headed `try` before, which read as "delivered at try 0").
    let mut table = vec![["state", "fails", "bytes", "updated (UTC)", "path", "detail"].map(String::from).to_vec()];
    for ((f, earlier), warning) in rows.iter().zip(&warnings) {
        let (path, mut detail) = match earlier {
            Some(q) => (
                format!("/{} (earlier)", f.path),
                format!(
                    "in quarantine as {}; a newer file was taken under its name on {} UTC",
                    q.copy().unwrap_or_else(|| "-".into()),
                    q.earlier.map(|e| when(e.replaced)).unwrap_or_default()
                ),
            ),
            None => (format!("/{}", f.path), detail(f)),
        };
        if let Some(w) = warning {
            detail = with_warning(detail, w);
        }
        table.push(vec![f.state.as_str().to_string(), f.attempts.to_string(), f.size.to_string(), when(f.updated), path, detail]);
    }
    use crate::text::Column;
    let columns =
        [Column::left(11), Column::right(5).gap(1), Column::right(12).gap(1), Column::left(19), Column::name(40), Column::left(0)];
    for line in crate::text::table(&columns, &table) {
        outln!("{line}");
    }
    if files.left_out() {
        outln!("{}", left_out(files.items.len(), files.total, "files"));
    }
    if !earlier.is_empty() {
        outln!(
            "(earlier): a quarantined file a newer file under its name replaced; `wharf quarantine list {flow}` lists them, `wharf quarantine release {flow} COPY` removes one"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A file's detail: its error while in flight or failed, else where it was delivered.
fn detail(f: &FileRecord) -> String {
    match (&f.last_error, f.state.in_flight() || f.state == crate::ledger::FileState::Failed) {
        (Some(e), true) => format!("{}: {}", e.kind, e.message),
        _ => f.deliveries.iter().map(|d| format!("/{}", d.target)).collect::<Vec<_>>().join(", "),
    }
}

/// A file's detail with its content steps' warning after it, as its run's report had it
/// (`…; warning: TEXT (run N, TIME UTC)`).
fn with_warning(detail: String, w: &FileWarning) -> String {
    if detail.is_empty() { format!("warning: {}", warning(w)) } else { format!("{detail}; warning: {}", warning(w)) }
}

/// The content steps' warning about a file, and when they gave it: `TEXT (run N, TIME UTC)`.
pub fn warning(w: &FileWarning) -> String {
    format!("{} (run {}, {} UTC)", w.text, w.run, when(w.at))
}

/// A file's JSON: its record as it is stored, with `"warning"`: its content steps' warning
/// (`{"run", "at", "text"}`, else `null`); an earlier quarantined file's (`earlier`) with
/// `"earlier": {"replaced": TIME}` and `"copy": "ENDPOINT:/PATH"` added, as `wharf quarantine
/// list --json` has them.
fn json_row(rec: &FileRecord, earlier: Option<&QuarantinedFile>, warning: Option<&FileWarning>) -> serde_json::Result<serde_json::Value> {
    let mut v = serde_json::to_value(rec)?;
    if let serde_json::Value::Object(map) = &mut v {
        map.insert("warning".into(), serde_json::to_value(warning)?);
        if let Some(q) = earlier {
            map.insert("earlier".into(), serde_json::to_value(q.earlier)?);
            map.insert("copy".into(), serde_json::to_value(q.copy())?);
        }
    }
    Ok(v)
}
