//! `wharf files FLOW --path PATH`: everything the ledger holds of the file at one source path,
//! however long ago it changed: what an on-call engineer needs when a partner asks about a file
//! ("we sent X on Monday"): when it was first seen, its size, time and checksum, its state, the
//! run that last changed it, where it was delivered, what became of its source, its last error,
//! and the quarantined files an earlier file under the name left.
//!
//! The ledger keeps one record per path, of the newest file seen there (and the quarantined
//! earlier ones): an earlier file delivered under the same name is not kept, and the output
//! says so.

use std::process::ExitCode;

use super::{json_row, when, with_warning};
use crate::cli::output::outln;
use crate::ledger::quarantined::QuarantinedFile;
use crate::ledger::{FileRecord, FileWarning, Ledger, SourceFate};

/// Prints the records of `path` (with or without its leading `/`) of `flow`.
pub(super) fn run(ledger: &Ledger, flow: &str, path: &str, json: bool) -> anyhow::Result<ExitCode> {
    let key = path.trim_start_matches('/');
    let current = ledger.file(flow, key)?;
    let earlier: Vec<QuarantinedFile> = ledger.quarantined_files(flow, Some(key))?.into_iter().filter(|f| f.earlier.is_some()).collect();
    let mut rows: Vec<(&FileRecord, Option<&QuarantinedFile>)> = earlier.iter().map(|f| (&f.rec, Some(f))).collect();
    rows.extend(current.iter().map(|r| (r, None)));
    let of: Vec<_> = rows.iter().map(|(r, e)| (*r, e.and_then(|q| q.earlier).map(|e| e.replaced))).collect();
    let warnings = ledger.warnings_of(flow, &of)?;
    if json {
        let v = rows.iter().zip(&warnings).map(|((r, e), w)| json_row(r, *e, w.as_ref())).collect::<Result<Vec<_>, _>>()?;
        outln!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        let never = crate::cli::state::never_ran(ledger, flow)?;
        outln!(
            "{}",
            never.unwrap_or_else(|| format!(
                "flow {flow}: no file /{key} recorded: no run listed it at the source (check the path, and the flow's source path and include), or its record expired (the flow's `history`)"
            ))
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (i, ((rec, q), warning)) in rows.iter().zip(&warnings).enumerate() {
        if i > 0 {
            outln!();
        }
        for line in describe(rec, *q, warning.as_ref()) {
            outln!("{line}");
        }
    }
    outln!(
        "(the ledger keeps the newest file seen at a path, and quarantined earlier ones; `wharf runs {flow}` and `wharf events {flow}` have the runs and what they raised)"
    );
    Ok(ExitCode::SUCCESS)
}

/// The lines of one record, `label: value`.
fn describe(rec: &FileRecord, q: Option<&QuarantinedFile>, warning: Option<&FileWarning>) -> Vec<String> {
    let mtime = rec.mtime.map(|m| format!(", modified {} UTC", when(m))).unwrap_or_default();
    let sha = rec.sha256.as_deref().map(|s| format!(", SHA-256 {s}")).unwrap_or_default();
    let mut out = vec![format!("file:        /{} ({} bytes{mtime}{sha})", rec.path, rec.size)];
    out.push(format!("first seen:  {} UTC", when(rec.first_seen)));
    out.push(format!("state:       {} since {} UTC (run {})", rec.state.as_str(), when(rec.updated), rec.run));
    if let Some(e) = q.and_then(|q| q.earlier) {
        let copy = q.and_then(QuarantinedFile::copy).unwrap_or_else(|| "-".into());
        out.push(format!("earlier:     in quarantine as {copy}; a newer file was taken under its name on {} UTC", when(e.replaced)));
    }
    let delivered: Vec<String> = rec
        .deliveries
        .iter()
        .map(|d| format!("sink {}: /{}{}", d.sink + 1, d.target, if d.done { "" } else { " (not confirmed)" }))
        .collect();
    if !delivered.is_empty() {
        out.push(format!("delivered:   {}", delivered.join(", ")));
    }
    let source = match (rec.source_fate, rec.disposed_to.as_deref()) {
        (SourceFate::Moved, Some(to)) => format!("moved to /{}", to.trim_start_matches('/')),
        (SourceFate::Moved, None) => "moved".into(),
        (SourceFate::Deleted, _) => "deleted".into(),
        (SourceFate::Kept, _) => "left at the source".into(),
        (SourceFate::Unknown, _) => "not recorded (an older wharf finished it)".into(),
    };
    out.push(format!("source:      {source}"));
    match &rec.last_error {
        Some(e) => out.push(format!("failed runs: {}; last error ({} UTC): {}: {}", rec.attempts, when(e.at), e.kind, e.message)),
        None if rec.attempts > 0 => out.push(format!("failed runs: {}", rec.attempts)),
        None => {}
    }
    if let Some(w) = warning {
        out.push(with_warning(String::new(), w));
    }
    out
}
