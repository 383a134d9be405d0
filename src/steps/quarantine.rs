//! Quarantine reports: `NAME.report.json` (for machines) and `NAME.report.txt` (for the
//! partner), written locally beside the staging file when a file is put aside.
//!
//! Owns the report formats only. Where the quarantined copy and its reports go, and when, is
//! the engine's business (`engine/lifecycle/`).

use std::io::{self, Write as _};
use std::path::Path;

use serde::Serialize;

use super::{Cause, Causes, RecordCounts, RecordError};

/// Everything a report says.
#[derive(Debug, Clone, Serialize)]
pub struct Report<'a> {
    pub flow: &'a str,
    pub run: u64,
    /// Source path (relative to the source endpoint's root).
    pub file: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    /// RFC 3339, UTC, with milliseconds (see `crate::timestamp`).
    pub quarantined_at: String,
    pub reason: &'a str,
    /// What the steps made of the file's records; `null` when the flow reads no records (no
    /// `parse` step: `check` or `command` steps only), and the text report has no
    /// `Records:` line.
    pub counts: Option<RecordCounts>,
    /// Errors in file order (at most [`super::MAX_REPORTED_ERRORS`]).
    pub errors: &'a [RecordError],
    /// How many errors there were in all (more than `errors` holds when the list was cut).
    pub errors_total: u64,
    /// Whose problem the errors are: `data` (the sender corrects the file), `script` (the
    /// flow's mapping script failed; its owner looks first), `template` (a template reads a
    /// field no valid record has; its owner corrects it) or `mixed`.
    pub cause: Causes,
}

/// Writes `base.report.json` and `base.report.txt` (fsynced); returns their paths.
pub fn write(report: &Report<'_>, json: &Path, txt: &Path) -> io::Result<()> {
    let mut f = io::BufWriter::new(std::fs::File::create(json)?);
    serde_json::to_writer_pretty(&mut f, report)?;
    f.write_all(b"\n")?;
    sync(f)?;
    let mut f = io::BufWriter::new(std::fs::File::create(txt)?);
    f.write_all(text(report).as_bytes())?;
    sync(f)
}

fn sync(f: io::BufWriter<std::fs::File>) -> io::Result<()> {
    f.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// The plain-text report.
pub fn text(r: &Report<'_>) -> String {
    let mut s = format!(
        "File {} was not accepted.\n\nReason:   {}\nFile:     {} ({} bytes, SHA-256 {})\nReceived: {} (flow {}, run {})\n",
        name_of(r.file),
        r.reason,
        r.file,
        r.size,
        r.sha256,
        r.quarantined_at,
        r.flow,
        r.run,
    );
    if let Some(c) = &r.counts {
        s.push_str(&format!(
            "Records:  {} read, {} valid, {} rejected, {} skipped, {} written\n",
            c.read, c.valid, c.rejected, c.skipped, c.written
        ));
    }
    if !r.errors.is_empty() {
        s.push_str(&format!("\nErrors ({}):\n", r.errors_total));
        for e in r.errors {
            let mark = match e.cause {
                Cause::Data => "",
                Cause::Script => "[script] ",
                Cause::Template => "[template] ",
            };
            s.push_str(&format!("  {mark}{e}\n"));
        }
        if r.errors_total > r.errors.len() as u64 {
            s.push_str(&format!("  … and {} more\n", r.errors_total - r.errors.len() as u64));
        }
    }
    s.push('\n');
    // The flow's own parts the errors come from (those listed; the cause when none is).
    let (script, template) = match (r.errors.iter().any(|e| e.cause == Cause::Script), r.errors.iter().any(|e| e.cause == Cause::Template))
    {
        (false, false) => (r.cause != Causes::Template, r.cause == Causes::Template),
        found => found,
    };
    let (own, marks) = match (script, template) {
        (true, false) => ("mapping script", "[script]"),
        (false, true) => ("templates", "[template]"),
        _ => ("mapping script and templates", "[script] and [template]"),
    };
    s.push_str(&match r.cause {
        Causes::Data => "Please correct the file and send it again.\n".to_string(),
        Causes::Script | Causes::Template => format!(
            "These errors come from the flow's {own}, not from a check of the file's content: the file\nmay well be correct. It is held in quarantine for the flow's owner to look at; there is no need\nto send it again unless they ask.\n"
        ),
        Causes::Mixed => format!(
            "Please correct the file and send it again. The errors marked {marks} come from the flow's\n{own}, not from a check of the file's content: they are for the flow's owner to look at.\n"
        ),
    });
    s
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::Source;

    fn report<'a>(errors: &'a [RecordError], cause: Causes) -> Report<'a> {
        Report {
            flow: "roster",
            run: 7,
            file: "in/roster.csv",
            size: 120,
            sha256: "ab",
            quarantined_at: "2026-01-02T03:04:05Z".into(),
            reason: "2 problems",
            counts: Some(RecordCounts { read: 4, valid: 3, rejected: 1, skipped: 0, written: 0 }),
            errors,
            errors_total: errors.len() as u64 + 1,
            cause,
        }
    }

    fn error(row: Option<u64>, field: Option<&str>, message: &str, source: Source, cause: Cause) -> RecordError {
        RecordError {
            row,
            line: row.map(|r| r + 1),
            returned: None,
            field: field.map(String::from),
            message: message.into(),
            source: Some(source),
            cause,
        }
    }

    #[test]
    fn reports_list_every_error_with_row_field_and_message() {
        let errors = vec![
            error(Some(2), Some("email"), "\"x\" is not a \"email\"", Source::Validate, Cause::Data),
            error(None, None, "the trailer says 5 records, the file has 4", Source::Parse, Cause::Data),
        ];
        let r = report(&errors, Causes::Data);
        let t = text(&r);
        assert!(t.starts_with("File roster.csv was not accepted."), "{t}");
        assert!(t.contains("  row 2 (line 3), field email: \"x\" is not a \"email\"\n"), "{t}");
        assert!(t.contains("  file: the trailer says 5 records, the file has 4\n"), "{t}");
        assert!(t.contains("… and 1 more"), "{t}");
        assert!(t.ends_with("\nPlease correct the file and send it again.\n"), "{t}");
        let dir = tempfile::tempdir().unwrap();
        let (j, x) = (dir.path().join("r.json"), dir.path().join("r.txt"));
        write(&r, &j, &x).unwrap();
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&j).unwrap()).unwrap();
        assert_eq!(
            v["errors"][0],
            serde_json::json!({"row": 2, "line": 3, "field": "email", "message": "\"x\" is not a \"email\"", "source": "validate", "cause": "data"})
        );
        assert_eq!(v["errors"][1]["source"], "parse");
        assert_eq!(v["cause"], "data");
        assert_eq!(v["counts"]["rejected"], 1);
        assert_eq!(std::fs::read_to_string(&x).unwrap(), t);
        // Reports written before `source` and `cause` existed read back as the content's.
        let old: RecordError = serde_json::from_value(serde_json::json!({"row": 1, "line": 2, "field": null, "message": "m"})).unwrap();
        assert_eq!((old.source, old.cause), (None, Cause::Data));
    }

    /// A flow that reads no records (a `check` or `command` step refused the file) says
    /// nothing of records: no `Records:` line (was `0 read, 0 valid, …`, as if the file were
    /// empty), and `counts` is `null` in the JSON.
    #[test]
    fn a_report_of_a_flow_that_reads_no_records_has_no_records_line() {
        let errors = [error(None, None, "the file is empty", Source::Check, Cause::Data)];
        let with = report(&errors, Causes::Data);
        assert!(text(&with).contains("\nRecords:  4 read, 3 valid, 1 rejected, 0 skipped, 0 written\n"), "{}", text(&with));
        let without = Report { counts: None, ..with };
        let t = text(&without);
        assert!(!t.contains("Records"), "{t}");
        assert!(t.contains("Received: 2026-01-02T03:04:05Z (flow roster, run 7)\n\nErrors (2):\n"), "{t}");
        let v = serde_json::to_value(&without).unwrap();
        assert_eq!(v["counts"], serde_json::Value::Null, "{v:#}");
    }

    /// The sender is not asked to correct a file the flow's own script failed on.
    #[test]
    fn a_script_failure_is_the_flows_owners_to_look_at_not_the_senders() {
        let script = error(Some(1), None, "m.rhai line 3: Function not found: trimm (string)", Source::Map, Cause::Script);
        let errors = vec![script.clone()];
        let t = text(&report(&errors, Causes::Script));
        assert!(t.contains("  [script] row 1 (line 2): m.rhai line 3: Function not found: trimm"), "{t}");
        assert!(!t.contains("Please correct"), "{t}");
        assert!(t.contains("These errors come from the flow's mapping script") && t.contains("for the flow's owner to look at"), "{t}");
        let json = serde_json::to_value(report(&errors, Causes::Script)).unwrap();
        assert_eq!(
            (&json["cause"], &json["errors"][0]["source"], &json["errors"][0]["cause"]),
            (&"script".into(), &"map".into(), &"script".into())
        );

        let errors = vec![error(Some(1), Some("id"), "\"x\" is not of type \"integer\"", Source::Validate, Cause::Data), script];
        let t = text(&report(&errors, Causes::Mixed));
        assert!(t.contains("  row 2 (line 3), field id:") || t.contains("  row 1 (line 2), field id:"), "{t}");
        assert!(t.contains("Please correct the file and send it again. The errors marked [script] come from the flow's"), "{t}");
    }

    /// Nor one whose every record failed on a field the flow's template reads and no valid record has.
    #[test]
    fn a_template_reading_a_field_no_record_has_is_the_flows_owners_to_correct() {
        let template = error(
            Some(1),
            None,
            "row.hbs line 3, col 5: `record.curency` is not a property of the schema orders.schema.json (declared: currency, sku), so …",
            Source::Render,
            Cause::Template,
        );
        let t = text(&report(std::slice::from_ref(&template), Causes::Template));
        assert!(t.contains("  [template] row 1 (line 2): row.hbs line 3, col 5: `record.curency`"), "{t}");
        assert!(!t.contains("Please correct"), "{t}");
        assert!(
            t.contains(
                "These errors come from the flow's templates, not from a check of the file's content: the file\nmay well be correct."
            ),
            "{t}"
        );
        assert_eq!(serde_json::to_value(report(&[], Causes::Template)).unwrap()["cause"], "template");

        let data = error(Some(2), Some("sku"), "\"\" is shorter than 1 character", Source::Validate, Cause::Data);
        let script = error(Some(3), None, "m.rhai line 1: Function not found: x ()", Source::Map, Cause::Script);
        let t = text(&report(&[data, template.clone(), script.clone()], Causes::Mixed));
        assert!(
            t.contains("Please correct the file and send it again. The errors marked [script] and [template] come from the flow's\nmapping script and templates,"),
            "{t}"
        );
        let t = text(&report(&[template, script], Causes::Script));
        assert!(t.contains("These errors come from the flow's mapping script and templates, not from"), "{t}");
    }
}
