//! Content steps inside the lifecycle: run a flow's [`Steps`] on a staged file, between
//! `staged` and `delivering`, and name what the sinks then receive.
//!
//! Owns the local files the steps write beside the staging file (`<staging>.out`,
//! `<staging>.rejects`, `<staging>.report.json|txt`, and the `command` steps' `<staging>.bytes`
//! and `<staging>.piped`), fetching companion files (checksum, row
//! count) from the source, and running the synchronous pipeline on a blocking thread. The
//! verdict is recorded by the caller together with the state change, in one ledger write.

use std::path::{Path, PathBuf};

use crate::endpoint::{Endpoint, ErrorKind, RemotePath};
use crate::ledger::{FileRecord, FileResult, QuarantineRecord, SourceFate, now_millis};
use crate::steps::{self, Input, Steps};
use crate::template::NameVars;

use super::REPORT_LOG_TARGET;
use super::error::FileError;
use super::lifecycle::Ctx;
use super::retry::retry;

/// The longest companion file read (checksums and counts are a line).
const MAX_COMPANION: usize = 64 * 1024;

/// The output file for a staging file.
pub fn output_path(staged: &Path) -> PathBuf {
    staged.with_extension("out")
}

/// The rejects file for a staging file.
pub fn rejects_path(staged: &Path) -> PathBuf {
    staged.with_extension("rejects")
}

/// Where a staging file's `command` steps before `parse` leave the bytes it reads, and where
/// a `command` step writes until it succeeded.
pub fn command_paths(staged: &Path) -> (PathBuf, PathBuf) {
    (staged.with_extension("bytes"), staged.with_extension("piped"))
}

/// The local report files for a staging file (JSON, text).
pub fn report_paths(staged: &Path) -> (PathBuf, PathBuf) {
    (staged.with_extension("report.json"), staged.with_extension("report.txt"))
}

/// Removes a staging file and every file the steps wrote for it (missing ones are fine).
pub async fn discard_with_outputs(staged: &Path) {
    let (json, txt) = report_paths(staged);
    let (bytes, piped) = command_paths(staged);
    super::stage::discard_files(vec![staged.to_path_buf(), output_path(staged), rejects_path(staged), json, txt, bytes, piped]).await;
}

/// The name the sinks' `name` template sees: the source name, as the steps make it
/// ([`Steps::delivered_name`]: another format's extension, a `command` step's `name`). A
/// name a `command` step cannot make of this file's fails the file.
pub fn delivered_name(steps: Option<&Steps>, source_name: &str) -> Result<String, FileError> {
    match steps {
        Some(s) => s.delivered_name(source_name).map_err(FileError::TargetName),
        None => Ok(source_name.to_string()),
    }
}

/// The warning for a file let through (`on_invalid: skip` within `max_invalid`, or without
/// one) of which no record was valid: its output holds nothing of it, which is more often a
/// partner's changed format than a file of bad rows.
fn all_rejected(read: u64) -> String {
    let records = if read == 1 { "the file's one record was".to_string() } else { format!("all {read} records of the file were") };
    format!("{records} rejected: the output holds none, the rejects file has them (`max_invalid` quarantines such a file)")
}

/// Runs the steps on the staged file of `rec`. Returns the result to record: output sizes and
/// counts, plus a quarantine record (reports already written locally) when the file is refused;
/// and the warning for a delivered file's report, if any: every record rejected
/// ([`all_rejected`]), the CSV read as one column that looks split on another delimiter
/// (`parse::delimiter_hint`; a refused file's reason says it already); both logged here.
pub async fn process(
    cx: &Ctx<'_>,
    rec: &FileRecord,
    source: &RemotePath,
    staged: &Path,
    steps: &Steps,
) -> Result<(FileResult, Option<String>), FileError> {
    let vars = NameVars::new(source.name(), "", rec.size, cx.run, cx.now);
    // Named as discovery names them (it sets them aside and disposes of them).
    let names = steps.companions(&super::discover::companion_vars(source.name(), rec.size, cx.now)).map_err(FileError::Name)?;
    let dirs = companion_dirs(rec, source);
    let checksum_text = match &names.checksum {
        Some(n) => Some(companion(cx, source, &dirs, n).await?),
        None => None,
    };
    let row_count_text = match &names.row_count {
        Some(n) => Some(companion(cx, source, &dirs, n).await?),
        None => None,
    };
    let (out, rejects) = (output_path(staged), rejects_path(staged));
    let (bytes, piped) = command_paths(staged);
    let input_path = staged.to_path_buf();
    let (steps_c, name, sha) = (steps.clone(), source.to_string(), rec.sha256.clone().unwrap_or_default());
    let (size, flow) = (rec.size, cx.flow.name.clone());
    let (out_c, rejects_c) = (out.clone(), rejects.clone());
    // Dropped with this future when the run is cut off (`wharf serve` stopping): the blocking
    // pass, which the cut does not stop, then kills the `command` step's program at once and
    // ends; the file is left in flight for the next run.
    let (_abandon, abandoned) = crate::process::abandonment();
    let processed = tokio::task::spawn_blocking(move || {
        steps_c.run(&Input {
            flow: &flow,
            bytes: &bytes,
            piped: &piped,
            vars: &vars,
            staged: &input_path,
            name: &name,
            size,
            sha256: &sha,
            checksum_text,
            row_count_text,
            output: &out_c,
            rejects: &rejects_c,
            abandoned: Some(&abandoned),
        })
    })
    .await
    .map_err(|e| FileError::Staging { path: staged.to_path_buf(), source: std::io::Error::other(format!("content steps panicked: {e}")) })?
    .map_err(|e| match e {
        steps::RunError::Io(source) => FileError::Staging { path: out.clone(), source },
        steps::RunError::Program(m) => FileError::Program(m),
        steps::RunError::Name(m) => FileError::TargetName(m),
    })?;

    let c = processed.counts;
    tracing::info!(flow = %cx.flow.name, path = %source, read = c.read, valid = c.valid, rejected = c.rejected, skipped = c.skipped, written = c.written, "Content steps ran.");
    let mut result = FileResult { run: cx.run, counts: c, output: processed.output, rejects: processed.rejects, quarantine: None };
    let mut warnings = Vec::new();
    if processed.quarantine.is_none() {
        if c.read > 0 && c.rejected == c.read {
            tracing::warn!(flow = %cx.flow.name, path = %source, records = c.read, "Every record of the file was rejected; delivering an output without them and the rejects file.");
            warnings.push(all_rejected(c.read));
        }
        if let Some(hint) = processed.delimiter_hint {
            tracing::warn!(flow = %cx.flow.name, path = %source, hint = %hint, "The file may be split on the wrong delimiter; delivering it as read.");
            warnings.push(hint);
        }
    }
    let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
    if let Some(v) = processed.quarantine {
        let q = cx
            .flow
            .quarantine
            .as_ref()
            .ok_or_else(|| FileError::Name(format!("flow {}: steps need a `quarantine` location", cx.flow.name)))?;
        let at = now_millis();
        if q.report {
            let (json, txt) = report_paths(staged);
            // As every other output shows a source path: `/in/a.csv`.
            let shown = source.to_string();
            let report = steps::quarantine::Report {
                flow: &cx.flow.name,
                run: cx.run,
                file: &shown,
                size: rec.size,
                sha256: rec.sha256.as_deref().unwrap_or_default(),
                quarantined_at: chrono::DateTime::from_timestamp_millis(at).map(|d| crate::timestamp::rfc3339(&d)).unwrap_or_default(),
                reason: &v.reason,
                // Counts of records only when the file is read as records: a `check` or
                // `command` step's refusal read none, and `0 read` would say the file was empty.
                counts: steps.parses().then_some(c),
                errors: &v.errors,
                errors_total: v.errors_total,
                cause: v.cause,
            };
            steps::quarantine::write(&report, &json, &txt).map_err(|source| FileError::Staging { path: json.clone(), source })?;
        }
        // A file quarantined again (by `wharf quarantine reprocess`) keeps its copy.
        let copy = cx.ledger.file_result(&cx.flow.name, &rec.path)?.and_then(|r| r.quarantine).and_then(|q| q.copy);
        // The report says it (the file's `quarantined` line, or its failure to be put aside,
        // which names the reason too): `wharf run` leaves this line out.
        tracing::warn!(target: REPORT_LOG_TARGET, flow = %cx.flow.name, path = %source, reason = %v.reason, "File refused by its content steps; quarantining.");
        result.quarantine = Some(QuarantineRecord {
            reason: v.reason,
            at,
            endpoint: q.endpoint.clone(),
            copy,
            reports: q.report,
            errors_total: v.errors_total,
        });
    }
    Ok((result, warning))
}

/// The folders a data file's companions are looked for in, in order: beside the data file;
/// then, for a file whose source was already moved away (a quarantined file reprocessed after
/// `after.failure: move_to`), beside the moved file — the companions went with it. Only when
/// the move kept the file's name: a suffixed name (`r-1.csv`) means an older file of that name
/// was there, and so, likely, its older companions under the names looked for.
fn companion_dirs(rec: &FileRecord, source: &RemotePath) -> Vec<RemotePath> {
    let mut dirs = vec![source.parent()];
    let moved = rec.disposed_to.as_deref().filter(|_| rec.source_fate == SourceFate::Moved).and_then(|t| RemotePath::parse(t).ok());
    if let Some(m) = moved.filter(|m| m.name() == source.name()) {
        dirs.push(m.parent());
    }
    dirs
}

/// Reads a companion file of the data file at `source` from the first of `dirs` that has it.
/// A missing file is handed to the steps (it is the file's problem, said for the first
/// folder); any other failure is the endpoint's, and retried.
async fn companion(cx: &Ctx<'_>, source: &RemotePath, dirs: &[RemotePath], name: &str) -> Result<Result<String, String>, FileError> {
    let mut missing = None;
    for dir in dirs {
        let path = match dir.join(name) {
            Ok(p) => p,
            Err(e) => return Ok(Err(format!("{name:?} is not a usable file name: {e}"))),
        };
        // Under the name it has there (`source.ignore_case`: maybe in another case).
        let found = retry(cx.flow, "look for companion file", || async {
            let listed = (cx.listed, source);
            super::discover::locate(&*cx.source, &cx.flow.source, cx.flow.steps.as_ref(), listed, &path, cx.now)
                .await
                .map_err(FileError::from)
        })
        .await?;
        let path = match found {
            super::discover::Located::At(p) => p,
            super::discover::Located::Ambiguous(names) => return Ok(Err(super::ready::alike(&names))),
        };
        match retry(cx.flow, "read companion file", || read_small(&*cx.source, &path)).await? {
            Ok(text) => return Ok(Ok(text)),
            Err(e) => missing = missing.or(Some(e)),
        }
    }
    Ok(Err(missing.unwrap_or_else(|| format!("{name} not found"))))
}

async fn read_small(ep: &dyn Endpoint, path: &RemotePath) -> Result<Result<String, String>, FileError> {
    let mut src = match ep.open_read(path, 0).await {
        Ok(s) => s,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Err(format!("{path} not found"))),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = src.read(&mut buf).await?;
        if n == 0 || out.len() >= MAX_COMPANION {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    Ok(Ok(String::from_utf8_lossy(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_files_sit_beside_the_staging_file() {
        let staged = Path::new("/s/flow/0123.part");
        assert_eq!(output_path(staged), Path::new("/s/flow/0123.out"));
        assert_eq!(rejects_path(staged), Path::new("/s/flow/0123.rejects"));
        assert_eq!(report_paths(staged).0, Path::new("/s/flow/0123.report.json"));
        assert_eq!(delivered_name(None, "a.csv").unwrap(), "a.csv");
    }

    #[test]
    fn the_delivered_name_takes_the_rendered_extension() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pricelist.xml.hbs"), "<list>{{count}}</list>\n").unwrap();
        std::fs::write(dir.path().join("row.TXT.hbs"), "{{record.id}}\n").unwrap();
        let steps = |yaml: &str| {
            let raw: Vec<crate::config::raw_steps::RawStep> = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
            steps::build(&raw, crate::config::raw_steps::OnInvalid::Quarantine, None, dir.path()).unwrap()
        };
        let xml = steps("- parse: { format: csv }\n- render: { template: pricelist.xml.hbs }");
        assert_eq!(delivered_name(Some(&xml), "prices_0105.csv").unwrap(), "prices_0105.xml");
        let txt = steps("- parse: { format: csv }\n- render: { row: row.TXT.hbs }");
        assert_eq!(delivered_name(Some(&txt), "a.txt").unwrap(), "a.txt", "same extension, any case: the name is kept");
        let dat = steps("- parse: { format: csv }\n- render: { row: row.TXT.hbs, extension: dat }");
        assert_eq!(delivered_name(Some(&dat), "a.csv").unwrap(), "a.dat");
    }
}
