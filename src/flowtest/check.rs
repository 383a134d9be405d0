//! Judging what a case produced against what it expects: one [`Failure`] per difference, with
//! a unified diff for text and the field paths for records.
//!
//! Owns the comparison rules: outputs are an exact set of delivered files; row and error
//! lists match in count and order, each entry by row, field and a piece of the message;
//! counts and texts compare only what the case gives. It reads the files a run left in the
//! scratch folders, and the reports the engine wrote; it runs nothing.

use std::collections::BTreeMap;

use serde_json::Value;

use super::run::Failure;
use super::{Content, Exact, Expect, Outcome, RawRowError, diff};
use crate::endpoint::RemotePath;
use crate::endpoint::local::LocalEndpoint;
use crate::engine::{self, FileReport};
use crate::ledger::{FileResult, QuarantineRecord};
use crate::steps::RecordError;
use crate::steps::parse::csv_cause;

/// What a file case left behind.
pub struct Found<'a> {
    /// The run's line for the input (`None`: the source did not pick it up).
    pub file: Option<FileReport>,
    /// Why the run's listing told of the input as never taken (`SkippedName::explained`: a
    /// name taken only ignoring case, a link…), when it did.
    pub not_taken: Option<String>,
    /// The content steps' result in the ledger.
    pub result: Option<FileResult>,
    /// `kept`, `deleted`, or the path the source was moved to.
    pub source: String,
    /// Each endpoint's folder.
    pub folders: &'a BTreeMap<String, LocalEndpoint>,
}

impl Found<'_> {
    /// The bytes of `ENDPOINT:/PATH` in the scratch folders.
    fn read(&self, place: &str) -> Result<Vec<u8>, String> {
        let (ep, path) = place.split_once(':').ok_or_else(|| format!("{place} names no endpoint"))?;
        let folder = self.folders.get(ep).ok_or_else(|| format!("no endpoint {ep}"))?;
        let path = RemotePath::parse(path).map_err(|e| e.to_string())?;
        let local = folder.full(&path);
        std::fs::read(&local).map_err(|e| format!("cannot read {place}: {e}"))
    }
}

/// Whether `place` is the rejects file of another delivered output: beside it, named after
/// it (`out:/x/roster-1.csv` → `out:/x/roster-1.rejects.csv`). Not any `.rejects.` in the
/// path: a folder or an output named so is not one.
fn is_rejects_of_another(place: &str, delivered: &[String]) -> bool {
    let split = |p: &str| p.rsplit_once('/').map(|(dir, name)| (dir.to_string(), name.to_string())).unwrap_or_default();
    let (dir, name) = split(place);
    delivered.iter().filter(|other| other.as_str() != place).any(|other| {
        let (odir, oname) = split(other);
        // As the run names it: the output's `{{stem}}`, shortened past 255 bytes.
        let ext = name.rsplit_once('.').map_or("", |(_, ext)| ext);
        odir == dir && name == crate::engine::naming::rejects(&oname, ext)
    })
}

/// Judges a file case.
pub fn file(expect: &Expect, found: &Found<'_>) -> Vec<Failure> {
    let mut out = Vec::new();
    let outcome = found.file.as_ref().map_or("ignored", |f| outcome_name(f.outcome));
    let detail = match (&found.file, &found.not_taken) {
        (Some(f), _) => f.detail.clone(),
        (None, Some(why)) => format!("the source's include/exclude did not pick it up: {why}"),
        (None, None) => "the source's include/exclude did not pick it up".to_string(),
    };
    if let Some(want) = expect.outcome
        && want.as_str() != outcome
    {
        let msg = format!("outcome: expected {}, found {outcome} ({detail})", want.as_str());
        // A file quarantined unexpectedly: the report says for which records, and why.
        let rec = found.result.as_ref().and_then(|r| r.quarantine.as_ref());
        out.push(match rec.map(|rec| report_errors(rec, found)) {
            Some(Ok(errs)) if !errs.is_empty() => {
                const SHOWN: usize = 20;
                let mut lines: Vec<String> = errs.iter().take(SHOWN).map(|e| format!("  {e}")).collect();
                if errs.len() > SHOWN {
                    lines.push(format!("  … and {} more in the report", errs.len() - SHOWN));
                }
                Failure::with_diff(msg, format!("the quarantine report's errors:\n{}\n", lines.join("\n")))
            }
            _ => Failure::new(msg),
        });
    }
    if let Some(want) = &expect.detail
        && !detail.contains(want.as_str())
    {
        out.push(Failure::new(format!("detail: expected it to contain {want:?}, found {detail:?}")));
    }
    counts(expect, found.result.as_ref(), &mut out);
    // What the sinks received: the run's targets, less a quarantine copy (`quarantine.copy`).
    let copy =
        found.result.as_ref().and_then(|r| r.quarantine.as_ref()).and_then(|q| q.copy.as_ref().map(|c| format!("{}:/{c}", q.endpoint)));
    let delivered: Vec<String> = found.file.iter().flat_map(|f| f.targets.iter()).filter(|t| Some(*t) != copy.as_ref()).cloned().collect();
    if let Some(outputs) = &expect.outputs {
        for (place, want) in outputs {
            if !delivered.contains(place) {
                out.push(Failure::new(format!("output {place} was not delivered (delivered: {})", list(&delivered))));
                continue;
            }
            match found.read(place) {
                Ok(bytes) => content(&format!("output {place}"), want, &bytes, place, &mut out),
                Err(e) => out.push(Failure::new(e)),
            }
        }
        for place in delivered.iter().filter(|p| !outputs.contains_key(*p)) {
            out.push(Failure::new(format!("output {place} was delivered but is not expected")));
        }
    }
    if let Some(want) = &expect.rejected {
        let rows = match delivered.iter().find(|p| is_rejects_of_another(p, &delivered)) {
            Some(place) => found.read(place).and_then(|b| rejects(place, &b)),
            None => Ok(vec![]),
        };
        match rows {
            Ok(rows) => errors("rejected rows", want, &rows, true, &mut out),
            Err(e) => out.push(Failure::new(format!("rejected rows: {e}"))),
        }
    }
    if let Some(q) = &expect.quarantine {
        quarantine(q, found, &mut out);
    }
    if let Some(want) = &expect.source {
        let want = if matches!(want.as_str(), "kept" | "deleted") || want.starts_with('/') { want.clone() } else { format!("/{want}") };
        if want != found.source {
            out.push(Failure::new(format!("source: expected {want}, found {}", found.source)));
        }
    }
    out
}

fn outcome_name(o: engine::Outcome) -> &'static str {
    match o {
        engine::Outcome::Delivered => Outcome::Delivered.as_str(),
        engine::Outcome::Quarantined => Outcome::Quarantined.as_str(),
        engine::Outcome::Failed => Outcome::Failed.as_str(),
        engine::Outcome::NotReady => "not ready",
        engine::Outcome::Skipped => "skipped",
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".into() } else { items.join(", ") }
}

fn counts(expect: &Expect, result: Option<&FileResult>, out: &mut Vec<Failure>) {
    let w = expect.counts;
    let wanted = [("read", w.read), ("valid", w.valid), ("rejected", w.rejected), ("skipped", w.skipped), ("written", w.written)];
    if wanted.iter().all(|(_, v)| v.is_none()) {
        return;
    }
    let Some(r) = result else {
        out.push(Failure::new("counts: the content steps did not run on the file"));
        return;
    };
    let c = r.counts;
    let have = [c.read, c.valid, c.rejected, c.skipped, c.written];
    let wrong: Vec<String> = wanted
        .iter()
        .zip(have)
        .filter_map(|((name, want), got)| want.filter(|w| *w != got).map(|w| format!("{name}: expected {w}, found {got}")))
        .collect();
    if !wrong.is_empty() {
        let all = format!("{} read, {} valid, {} rejected, {} skipped, {} written", c.read, c.valid, c.rejected, c.skipped, c.written);
        out.push(Failure::new(format!("counts: {} (all: {all})", wrong.join("; "))));
    }
}

/// The rows of a rejects file: (row, every error text of the row), in file order.
fn rejects(place: &str, bytes: &[u8]) -> Result<Vec<RecordError>, String> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    if place.ends_with(".jsonl") {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).map_err(|e| format!("{place}: {e}"))?;
            let row = v["row"].as_u64();
            for e in v["errors"].as_array().into_iter().flatten() {
                out.push(RecordError {
                    row,
                    line: None,
                    returned: None,
                    field: None,
                    message: e.as_str().unwrap_or_default().to_string(),
                    source: None,
                    cause: Default::default(),
                });
            }
        }
        return Ok(out);
    }
    // CSV: `_row`, `_line`, `_errors` (joined by "; "), then the input's columns; the
    // delimiter is the one after `_row` in the header.
    let header = text.lines().next().unwrap_or_default();
    let delimiter = header.strip_prefix("_row").and_then(|rest| rest.chars().next()).unwrap_or(',');
    let mut r = csv::ReaderBuilder::new().delimiter(delimiter as u8).flexible(true).from_reader(text.as_bytes());
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("{place}: {}", csv_cause(e.kind())))?;
        let row = rec.get(0).and_then(|s| s.parse().ok());
        for e in rec.get(2).unwrap_or_default().split("; ") {
            out.push(RecordError {
                row,
                line: None,
                returned: None,
                field: None,
                message: e.to_string(),
                source: None,
                cause: Default::default(),
            });
        }
    }
    Ok(out)
}

/// Compares expected errors with found ones. With `by_row`, an expected entry is a row (its
/// field and message may be any of the row's errors, as `FIELD: MESSAGE`); otherwise an entry
/// is one error.
fn errors(what: &str, want: &[RawRowError], found: &[RecordError], by_row: bool, out: &mut Vec<Failure>) {
    // Group by row when rows are expected; keep each error otherwise.
    let mut groups: Vec<(Option<u64>, Vec<&RecordError>)> = Vec::new();
    for e in found {
        match groups.last_mut() {
            Some((row, list)) if by_row && *row == e.row => list.push(e),
            _ => groups.push((e.row, vec![e])),
        }
    }
    let shown = || groups.iter().flat_map(|(_, es)| es.iter().map(|e| format!("  {e}"))).collect::<Vec<_>>().join("\n");
    if want.len() != groups.len() {
        let unit = if by_row { "row(s)" } else { "error(s)" };
        out.push(Failure::with_diff(
            format!("{what}: expected {} {unit}, found {}", want.len(), groups.len()),
            format!("found:\n{}\n", shown()),
        ));
        return;
    }
    for (i, (w, (row, es))) in want.iter().zip(&groups).enumerate() {
        let row_ok = w.row.is_none_or(|r| Some(r) == *row);
        let fits = |e: &RecordError| {
            let text = e.in_row();
            let field_ok = w.field.as_ref().is_none_or(|f| e.field.as_ref() == Some(f) || text.starts_with(&format!("{f}: ")));
            field_ok && w.message.as_ref().is_none_or(|m| text.contains(m.as_str()))
        };
        // A message holding "; " itself (a script's `throw`) was split with the rejects
        // file's errors: a message alone may match the row's errors as one text too.
        let joined = es.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ");
        let whole = w.field.is_none() && w.message.as_ref().is_some_and(|m| joined.contains(m.as_str()));
        if !row_ok || !(es.iter().any(|e| fits(e)) || whole) {
            let mut want_text = Vec::new();
            if let Some(r) = w.row {
                want_text.push(format!("row {r}"));
            }
            if let Some(f) = &w.field {
                want_text.push(format!("field {f}"));
            }
            if let Some(m) = &w.message {
                want_text.push(format!("a message containing {m:?}"));
            }
            let got: Vec<String> = es.iter().map(|e| e.to_string()).collect();
            out.push(Failure::with_diff(
                format!("{what}, entry {}: expected {}, found {}", i + 1, want_text.join(", "), got.join(" / ")),
                format!("found:\n{}\n", shown()),
            ));
        }
    }
}

fn quarantine(q: &super::QuarantineExpect, found: &Found<'_>, out: &mut Vec<Failure>) {
    let Some(rec) = found.result.as_ref().and_then(|r| r.quarantine.as_ref()) else {
        out.push(Failure::new("quarantine: the file was not quarantined"));
        return;
    };
    if let Some(r) = &q.reason
        && !rec.reason.contains(r.as_str())
    {
        out.push(Failure::new(format!("quarantine reason: expected it to contain {r:?}, found {:?}", rec.reason)));
    }
    let copy = rec.copy.as_ref().map(|c| format!("{}:/{c}", rec.endpoint));
    if let Some(want) = &q.copy
        && copy.as_ref() != Some(want)
    {
        out.push(Failure::new(format!("quarantine copy: expected {want}, found {}", copy.as_deref().unwrap_or("none"))));
    }
    if let Some(want) = &q.errors {
        if !rec.reports {
            out.push(Failure::new("quarantine errors: the flow writes no report (`quarantine.report: false`), so there are none to check"));
            return;
        }
        match report_errors(rec, found) {
            Ok(errs) => errors("quarantine errors", want, &errs, false, out),
            Err(e) => out.push(Failure::new(format!("quarantine errors: cannot read the report: {e}"))),
        }
    }
}

/// The errors of the JSON report of the quarantined copy `rec`.
fn report_errors(rec: &QuarantineRecord, found: &Found<'_>) -> Result<Vec<RecordError>, String> {
    let copy = rec.copy.as_ref().map(|c| format!("{}:/{c}", rec.endpoint)).ok_or_else(|| "no copy was made".to_string())?;
    let bytes = found.read(&report_of(&copy))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    serde_json::from_value::<Vec<RecordError>>(v["errors"].clone()).map_err(|e| e.to_string())
}

/// Where the JSON report of the quarantined copy `copy` (`ENDPOINT:/PATH`) is.
fn report_of(copy: &str) -> String {
    let (dir, name) = copy.rsplit_once('/').unwrap_or(("", copy));
    format!("{dir}/{}", crate::engine::naming::beside(name, "report.json"))
}

/// Compares `actual` (the bytes of `name`) with the expected content.
fn content(what: &str, want: &Content, actual: &[u8], name: &str, out: &mut Vec<Failure>) {
    match &want.exact {
        Some(Exact::Bytes { bytes, fixture }) if bytes != actual => {
            let from = fixture.as_ref().map_or_else(|| "the expected content".to_string(), |f| format!("fixture {}", f.display()));
            let label = fixture.as_ref().map_or_else(|| "expected".to_string(), |f| format!("expected ({})", f.display()));
            out.push(Failure::with_diff(
                format!("{what} differs from {from}"),
                diff::unified(bytes, actual, &label, &format!("actual ({name})")),
            ));
        }
        Some(Exact::Records(records)) => match read_records(name, actual) {
            Ok(found) => {
                let diffs = diff::records(records, &found);
                if !diffs.is_empty() {
                    out.push(Failure::with_diff(format!("{what}: the records differ"), diffs.join("\n") + "\n"));
                }
            }
            Err(e) => out.push(Failure::new(format!("{what}: cannot be read as records: {e}"))),
        },
        _ => {}
    }
    let text = String::from_utf8_lossy(actual);
    for c in want.contains.iter().filter(|c| !text.contains(c.as_str())) {
        out.push(Failure::with_diff(format!("{what} does not contain {c:?}"), excerpt(&text)));
    }
}

/// The start of a text, for a message.
fn excerpt(text: &str) -> String {
    const LINES: usize = 20;
    let mut s: String = text.lines().take(LINES).map(|l| format!("  {l}\n")).collect();
    if text.lines().count() > LINES {
        s.push_str("  …\n");
    }
    format!("found:\n{s}")
}

/// Reads a file as records, by its extension: a JSON array, JSON Lines, or CSV with a header
/// (cells as strings; the delimiter is the most frequent of `,` `;` tab `|` in the header).
fn read_records(name: &str, bytes: &[u8]) -> Result<Vec<Value>, String> {
    let ext = name.rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
    match ext.as_str() {
        "json" => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
        "jsonl" | "ndjson" => String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).map_err(|e| e.to_string()))
            .collect(),
        _ => {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim_start_matches('\u{feff}');
            let header = text.lines().next().unwrap_or_default();
            let delimiter = [b',', b';', b'\t', b'|'].into_iter().max_by_key(|d| header.bytes().filter(|b| b == d).count()).unwrap_or(b',');
            let mut r = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(text.as_bytes());
            let cols: Vec<String> = r.headers().map_err(|e| csv_cause(e.kind()))?.iter().map(str::to_string).collect();
            r.records()
                .map(|rec| {
                    let rec = rec.map_err(|e| csv_cause(e.kind()))?;
                    Ok(Value::Object(cols.iter().cloned().zip(rec.iter().map(|c| Value::String(c.to_string()))).collect()))
                })
                .collect()
        }
    }
}

/// Judges a `map` case: the records the script returned, or its error.
pub fn records_or_error(expect: &Expect, got: Result<Vec<Value>, String>) -> Vec<Failure> {
    let mut out = Vec::new();
    match (got, &expect.records, &expect.error) {
        (Ok(found), Some(want), _) => {
            let diffs = diff::records(want, &found);
            if !diffs.is_empty() {
                out.push(Failure::with_diff("the script's records differ", diffs.join("\n") + "\n"));
            }
        }
        (Ok(found), None, Some(e)) => {
            let shown: Vec<String> = found.iter().map(Value::to_string).collect();
            out.push(Failure::new(format!("expected an error containing {e:?}, but the script returned [{}]", shown.join(", "))));
        }
        (Err(msg), Some(_), _) => out.push(Failure::new(format!("the script failed: {msg}"))),
        (Err(msg), None, Some(e)) if !msg.contains(e.as_str()) => {
            out.push(Failure::new(format!("error: expected it to contain {e:?}, found {msg:?}")));
        }
        _ => {}
    }
    out
}

/// Judges a `render` case: the rendered text, or the rendering error.
pub fn rendered(expect: &Expect, got: Result<Vec<u8>, String>, name: &str) -> Vec<Failure> {
    let mut out = Vec::new();
    match (got, &expect.output, &expect.error) {
        (Ok(text), Some(want), _) => content("the rendered text", want, &text, name, &mut out),
        (Ok(text), None, Some(e)) => out.push(Failure::with_diff(
            format!("expected an error containing {e:?}, but the templates rendered"),
            excerpt(&String::from_utf8_lossy(&text)),
        )),
        (Err(msg), Some(_), _) => out.push(Failure::new(format!("rendering failed: {msg}"))),
        (Err(msg), None, Some(e)) if !msg.contains(e.as_str()) => {
            out.push(Failure::new(format!("error: expected it to contain {e:?}, found {msg:?}")));
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {

    use super::*;
    use serde_json::json;

    /// The rejects file is told by its name beside an output, not by `.rejects.` anywhere.
    #[test]
    fn the_rejects_file_is_the_one_named_after_an_output_beside_it() {
        let d = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let delivered = d(&["out:/a.rejects.x/roster.csv", "out:/a.rejects.x/roster.rejects.csv"]);
        assert!(!is_rejects_of_another(&delivered[0], &delivered));
        assert!(is_rejects_of_another(&delivered[1], &delivered));
        let alone = d(&["out:/x/summary.rejects.csv"]);
        assert!(!is_rejects_of_another(&alone[0], &alone));
        // An output of a long name: its rejects file's name is shortened, and found so.
        let long = format!("{}.csv", "r".repeat(246));
        let delivered = d(&[&format!("out:/x/{long}"), &format!("out:/x/{}", crate::engine::naming::rejects(&long, "csv"))]);
        assert!(is_rejects_of_another(&delivered[1], &delivered));
    }

    #[test]
    fn reads_csv_json_and_jsonl_records() {
        let csv = read_records("a.csv", "\u{feff}id;name\r\n1;\"x;y\"\r\n".as_bytes()).unwrap();
        assert_eq!(csv, [json!({"id": "1", "name": "x;y"})]);
        assert_eq!(read_records("a.json", b"[{\"a\":1}]").unwrap(), [json!({"a": 1})]);
        assert_eq!(read_records("a.jsonl", b"{\"a\":1}\n\n{\"a\":2}\n").unwrap(), [json!({"a": 1}), json!({"a": 2})]);
    }

    #[test]
    fn rejects_rows_are_read_back_with_their_errors() {
        // A ragged row (one field too many) does not move `_row` or `_errors`.
        let text = "_row;_line;_errors;id;email\n3;4;\"email: not an email; id: too small\";7;bad;extra\n";
        let rows = rejects("hr:/r.rejects.csv", text.as_bytes()).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].row, rows[1].message.as_str()), (Some(3), "id: too small"));
        let want =
            |row, field: &str, message: &str| RawRowError { row: Some(row), field: Some(field.into()), message: Some(message.into()) };
        let mut out = Vec::new();
        errors("rejected rows", &[want(3, "id", "too small")], &rows, true, &mut out);
        assert!(out.is_empty(), "{out:?}");
        errors("rejected rows", &[want(3, "id", "not an email")], &rows, true, &mut out);
        assert_eq!(out.len(), 1, "field and message must fit the same error");
        out.clear();
        let msg = RawRowError { row: Some(3), field: None, message: Some("not an email; id".into()) };
        errors("rejected rows", &[msg], &rows, true, &mut out);
        assert!(out.is_empty(), "a message with \"; \" in it: {out:?}");
        errors("rejected rows", &[], &rows, true, &mut out);
        assert!(out[0].message.starts_with("rejected rows: expected 0 row(s), found 1"), "{out:?}");
    }

    #[test]
    fn map_and_render_expectations() {
        let e = Expect { records: Some(vec![json!({"a": 1})]), ..Default::default() };
        assert!(records_or_error(&e, Ok(vec![json!({"a": 1})])).is_empty());
        let f = records_or_error(&e, Ok(vec![json!({"a": 2})]));
        assert_eq!(f[0].diff.as_deref(), Some("record 1, field a: expected 1, found 2\n"));
        let e = Expect { error: Some("line 3".into()), ..Default::default() };
        assert!(records_or_error(&e, Err("s.rhai line 3: boom".into())).is_empty());
        assert_eq!(records_or_error(&e, Err("s.rhai line 4: boom".into())).len(), 1);
        let e = Expect { output: Some(Content { exact: None, contains: vec!["T;5".into()] }), ..Default::default() };
        assert!(rendered(&e, Ok(b"H\r\nT;5;1\r\n".to_vec()), "r.csv").is_empty());
        assert_eq!(rendered(&e, Ok(b"H\r\n".to_vec()), "r.csv").len(), 1);
    }
}
