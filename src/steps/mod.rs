//! Content steps (design §6): what happens to a file's *content* between staging and delivery.
//!
//! A flow's `steps:` list is built once, when the flow is validated, into [`Steps`]: checks,
//! then `parse`, then any `validate`/`map` steps in order, then `write` or `render` — schemas
//! compiled, the script and the templates compiled, look-up tables loaded. [`Steps::run`] then
//! takes one staged file through them, streaming record by record (parse → validate → map →
//! write/render) into an output file beside the staging file, so memory is bounded by one
//! record, not by the file (a whole-document `render` template is the one, capped, exception).
//!
//! The result is a verdict — pass (deliver the output) or quarantine (with every error and a
//! reason) — plus the record counts. Which invalid rows are tolerated is decided here, by
//! [`Policy`]; what a verdict does to the file (delivery, quarantine copy, disposition, ledger)
//! is the engine's business (`engine/lifecycle/`). Everything here is synchronous: the
//! engine runs it on a blocking thread. It never touches an endpoint.

pub mod check;
pub mod command;
pub mod map;
mod map_fields;
pub mod parse;
pub mod quarantine;
pub mod render;
mod unique_keys;
pub mod validate;
pub mod write;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Problem;
use crate::config::duration;
use crate::config::raw_steps::{OnInvalid, ParseFormat, RawMaxInvalid, RawStep, RawWrite, WriteFormat};
use crate::template::NameVars;
use render::{Failure, Render, Renderer};

pub use crate::ledger::RecordCounts;
use check::Check;
use map::{MapError, MapFailure, Mapper};
use parse::{Event, Parse, Raw, Row, Stop};
use validate::Validate;
use write::{Rejects, Write, WriteError, Writer};

/// Errors kept for a report; the count of all is kept besides. Bounds memory on a file whose
/// every one of millions of rows is wrong.
pub const MAX_REPORTED_ERRORS: usize = 10_000;

/// The most characters of a value an error message quotes.
pub const QUOTED_CHARS: usize = 100;

/// The longest error message kept, in bytes (a backstop for messages that quote values
/// themselves: a script's `throw`, a template's error). With [`MAX_REPORTED_ERRORS`], this
/// bounds the memory and the report a file's errors take.
pub const MAX_MESSAGE_BYTES: usize = 1000;

/// `text` quoted for a message (`"abc"`), or its first [`QUOTED_CHARS`] characters and its size
/// when it is longer (`"abc…"… (1048576 bytes)`).
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
    }
}

/// `value` as JSON for a message when it is longer than [`QUOTED_CHARS`] characters: the start
/// and the size (`None`: short enough to quote whole). Never serialises more than the start.
pub fn excerpt_json(value: &serde_json::Value) -> Option<String> {
    if let serde_json::Value::String(s) = value {
        return (s.chars().nth(QUOTED_CHARS).is_some()).then(|| excerpt(s));
    }
    /// Keeps the first `keep` bytes written and counts them all.
    struct Head {
        kept: Vec<u8>,
        keep: usize,
        total: usize,
    }
    impl std::io::Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = self.keep.saturating_sub(self.kept.len());
            self.kept.extend_from_slice(&buf[..room.min(buf.len())]);
            self.total += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    // A character is at most 4 bytes: this many bytes hold QUOTED_CHARS characters.
    let mut head = Head { kept: Vec::new(), keep: QUOTED_CHARS * 4, total: 0 };
    // Serialising a `Value` fails only when the writer does, and `Head` never does.
    serde_json::to_writer(&mut head, value).ok()?;
    let text = match std::str::from_utf8(&head.kept) {
        Ok(t) => t,
        // Cut inside a character: the valid start.
        Err(e) => std::str::from_utf8(&head.kept[..e.valid_up_to()]).ok()?,
    };
    let cut = text.char_indices().nth(QUOTED_CHARS).map_or(text.len(), |(i, _)| i);
    if cut == head.total {
        return None;
    }
    Some(format!("{}… ({} bytes)", &text[..cut], head.total))
}

/// `message` cut to [`MAX_MESSAGE_BYTES`] (at a character boundary), with its size.
fn capped(mut message: String) -> String {
    if message.len() > MAX_MESSAGE_BYTES {
        let total = message.len();
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(&format!("… (message cut: {total} bytes)"));
    }
    message
}

/// The step that found a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Check,
    Parse,
    Validate,
    Map,
    Write,
    Render,
    Command,
}

/// Whose problem an error is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cause {
    /// The file's content: a check, the format, a schema, or the script refusing a record
    /// (its `throw`, a helper refusing a value). The sender corrects the file.
    #[default]
    Data,
    /// The flow's mapping script failed (an unknown function or variable, a type mismatch, a
    /// runaway loop, its time limit): a fault of the script, or records it was not written
    /// for. The flow's owner looks first; the file may be fine.
    Script,
    /// A `render` template reads a field that no record valid by the flow's schema has (a typo
    /// like `record.curency`: see `render/fields.rs`). The flow's owner corrects the template.
    Template,
}

/// Whose problem a quarantined file's errors are, all told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Causes {
    /// Every error is the content's.
    Data,
    /// Every error is the flow's own, and some (or all) of them the mapping script's.
    Script,
    /// Every error is a template's (see [`Cause::Template`]).
    Template,
    /// Some of the content's, some the flow's own.
    Mixed,
}

impl Causes {
    /// From the count of all errors and of the script's and the templates' among them.
    fn of(total: u64, script: u64, template: u64) -> Causes {
        match (script, template) {
            (0, 0) => Causes::Data,
            (s, t) if s + t < total => Causes::Mixed,
            (0, _) => Causes::Template,
            _ => Causes::Script,
        }
    }
}

/// Which of the records a mapping script returned for one row a problem is about, when it
/// returned several (an order split into its lines): `record 3 of the 5 the script returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    /// 1-based, in the order the script returned them.
    pub record: u64,
    /// How many records the script returned for the row.
    pub of: u64,
}

impl Returned {
    /// The record at 0-based `index` of `count`; `None` when there is only one, which its row
    /// names well enough.
    pub fn at(index: usize, count: usize) -> Option<Returned> {
        (count > 1).then_some(Returned { record: index as u64 + 1, of: count as u64 })
    }
}

impl fmt::Display for Returned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} of the {} the script returned", self.record, self.of)
    }
}

/// One problem found in a file: with a row (and line, when known), or about the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    /// 1-based record number; `None` for a problem with the whole file.
    pub row: Option<u64>,
    /// 1-based line where the record starts, when known.
    pub line: Option<u64>,
    /// Which of the records the mapping script returned for the row the problem is in, when it
    /// returned several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned: Option<Returned>,
    /// The field (dotted path), when the problem is one field's.
    pub field: Option<String>,
    pub message: String,
    /// The step that found it (`None`: not known, as for errors read back from a rejects file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Whose problem it is (reports written before this field: the content's).
    #[serde(default)]
    pub cause: Cause,
}

impl RecordError {
    /// A problem with the file as a whole.
    fn file(source: Source, cause: Cause, message: String) -> RecordError {
        RecordError { row: None, line: None, returned: None, field: None, message: capped(message), source: Some(source), cause }
    }

    /// The problem as told within its row, as a rejects file lists it: `FIELD: MESSAGE`, and
    /// which of the records the script returned (`price: … (record 3 of the 5 the script
    /// returned)`).
    pub fn in_row(&self) -> String {
        let mut text = match &self.field {
            Some(f) => format!("{f}: {}", self.message),
            None => self.message.clone(),
        };
        if let Some(r) = self.returned {
            text.push_str(&format!(" ({r})"));
        }
        text
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, self.line) {
            (Some(r), Some(l)) => write!(f, "row {r} (line {l})")?,
            (Some(r), None) => write!(f, "row {r}")?,
            (None, _) => f.write_str("file")?,
        }
        if let Some(r) = self.returned {
            write!(f, ", {r}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// One built step (the closed set a flow can use).
#[derive(Debug, Clone)]
pub enum Step {
    Check(Check),
    Parse(Parse),
    Validate(Validate),
    Map(Mapper),
    Write(Write),
    Render(Render),
    Command(command::Command),
}

/// How many invalid records a file may have before it is quarantined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxInvalid {
    Count(u64),
    Percent(f64),
}

/// What invalid records do to their file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub on_invalid: OnInvalid,
    /// With `skip`: the most tolerated (`None`: no limit).
    pub max_invalid: Option<MaxInvalid>,
}

impl Policy {
    /// How many of `read` records may be invalid.
    fn allowed(&self, read: u64) -> u64 {
        match (self.on_invalid, self.max_invalid) {
            (OnInvalid::Quarantine, _) => 0,
            (OnInvalid::Skip, None) => u64::MAX,
            (OnInvalid::Skip, Some(MaxInvalid::Count(n))) => n,
            (OnInvalid::Skip, Some(MaxInvalid::Percent(p))) => percent_of(read, p),
        }
    }

    fn describe(&self) -> String {
        match (self.on_invalid, self.max_invalid) {
            (OnInvalid::Quarantine, _) => "on_invalid: quarantine".into(),
            (OnInvalid::Skip, Some(MaxInvalid::Count(n))) => format!("more than max_invalid: {n}"),
            (OnInvalid::Skip, Some(MaxInvalid::Percent(p))) => format!("more than max_invalid: {p}%"),
            (OnInvalid::Skip, None) => "on_invalid: skip".into(),
        }
    }
}

/// `p`% of `read`, rounded down: computed on the decimal the percentage was written as
/// (`4.6` is 46/10), so that exactly `p`% is allowed. In floating point, 1500 × 4.6 / 100 is
/// 68.99999999999999: a file with exactly 4.6% invalid records (69 of 1500) was quarantined.
fn percent_of(read: u64, p: f64) -> u64 {
    // The shortest decimal that reads back as `p` (Display never uses an exponent): what was
    // written, for any percentage written with up to 15 significant digits.
    let text = p.to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let exact = (frac.len() <= 15)
        .then(|| format!("{int}{frac}").parse::<u128>().ok())
        .flatten()
        .and_then(|num| Some((u128::from(read) * num) / (100 * 10u128.checked_pow(frac.len() as u32)?)));
    // `p` is at most 100 (checked when built), so the result is at most `read`.
    exact.map_or_else(|| (read as f64 * p / 100.0).floor() as u64, |n| n as u64)
}

/// A flow's built content steps. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Steps {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    steps: Vec<Step>,
    policy: Policy,
    /// The output format: the `write` step, or the parsed format (`None` with `render`).
    write: Option<Write>,
    /// The `render` step, which writes the output instead of `write`.
    render: Option<Render>,
}

/// The companion files a file's steps need from the source (beside the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Companions {
    pub checksum: Option<String>,
    pub row_count: Option<String>,
}

/// Which companion file a step reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanionKind {
    /// `check.checksum`'s `NAME.sha256` (or `.md5`).
    Checksum,
    /// `validate.row_count_file`.
    RowCount,
}

impl CompanionKind {
    /// `checksum file`, `row-count file`.
    pub fn what(self) -> &'static str {
        match self {
            CompanionKind::Checksum => "checksum file",
            CompanionKind::RowCount => "row-count file",
        }
    }
}

/// One companion file a step reads, as a data file names it ([`Steps::companion_names`]).
#[derive(Debug, Clone)]
pub struct CompanionName {
    /// Where the flow sets it, as its step's index gives it: `/steps/0/check/checksum`
    /// (built steps are the flow's, one for one).
    pub at: String,
    pub kind: CompanionKind,
    /// As written: the template (`{{stem}}.count`), or `{{name}}.sha256` for a checksum.
    pub written: String,
    /// Its name for the data file (`Err`: the template cannot be rendered for it).
    pub name: Result<String, String>,
}

/// One staged file to take through the steps.
pub struct Input<'a> {
    /// The flow (for `command` steps' programs: `WHARF_FLOW`).
    pub flow: &'a str,
    pub staged: &'a Path,
    /// Source path (for messages) and file name (for `check.name`).
    pub name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    /// The text of the companions named by [`Steps::companions`] (or why it could not be read).
    pub checksum_text: Option<Result<String, String>>,
    pub row_count_text: Option<Result<String, String>>,
    /// The file's name variables (name, size, run, run start), for `render` templates.
    pub vars: &'a NameVars,
    /// Where the output and the rejects go.
    pub output: &'a Path,
    pub rejects: &'a Path,
    /// Where the `command` steps before `parse` leave the bytes it reads, and where a
    /// `command` step writes its output until it succeeded (both removed when done).
    pub bytes: &'a Path,
    pub piped: &'a Path,
    /// The run's side giving up on the file (cut off at `wharf serve`'s shutdown): a
    /// `command` step's program is killed at once (`None`: never).
    pub abandoned: Option<&'a crate::process::Abandoned>,
}

/// Why a file could not be taken through its steps when it is not the file's fault.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The local disk: reading the staged file, writing the outputs (a full disk).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A `command` step's program could not be started (missing, not executable): the
    /// flow's setup, or this machine's.
    #[error("{0}")]
    Program(String),
    /// A `command` step's `name` gives no usable name for this file.
    #[error("{0}")]
    Name(String),
}

/// What the steps made of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub counts: RecordCounts,
    /// Size of the output file (`None`: no records were parsed and no `command` step ran; the
    /// original is delivered).
    pub output: Option<u64>,
    /// Size of the rejects file, if rows were skipped.
    pub rejects: Option<u64>,
    /// Set when the file must be quarantined.
    pub quarantine: Option<Verdict>,
    /// The CSV header (or first record) was one column holding another separator
    /// (`parse::delimiter_hint`): said with whatever the file is refused for, and as a
    /// warning when it is delivered.
    pub delimiter_hint: Option<String>,
}

/// Why a file is quarantined, with every error found (up to [`MAX_REPORTED_ERRORS`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub reason: String,
    pub errors: Vec<RecordError>,
    pub errors_total: u64,
    /// Whose problem the errors are (of all of them, not only those kept).
    pub cause: Causes,
}

impl Steps {
    /// The `check` steps, in order.
    pub fn checks(&self) -> impl Iterator<Item = &Check> {
        self.inner.steps.iter().filter_map(|s| if let Step::Check(c) = s { Some(c) } else { None })
    }

    /// The output's file extension when records are written (`None`: the original is delivered).
    pub fn output_ext(&self) -> Option<&str> {
        match &self.inner.render {
            Some(r) => Some(r.ext()),
            None => self.inner.write.as_ref().map(Write::ext),
        }
    }

    /// The rejects file's extension.
    pub fn rejects_ext(&self) -> &'static str {
        Rejects::ext(matches!(self.parse(), Some(p) if p.format == ParseFormat::Csv))
    }

    pub fn policy(&self) -> Policy {
        self.inner.policy
    }

    pub fn steps(&self) -> &[Step] {
        &self.inner.steps
    }

    fn parse(&self) -> Option<&Parse> {
        self.inner.steps.iter().find_map(|s| if let Step::Parse(p) = s { Some(p) } else { None })
    }

    /// The flow's `map` step (one at most).
    fn mapper(&self) -> Option<&Mapper> {
        self.inner.steps.iter().find_map(|s| if let Step::Map(m) = s { Some(m) } else { None })
    }

    /// Whether the file is read as records (its counts mean something).
    pub fn parses(&self) -> bool {
        self.parse().is_some()
    }

    /// The positions of the first and after the last step on records (`parse` … `write`):
    /// `command` steps stand before or after them, or alone (`None`: no `parse`).
    fn records(&self) -> Option<(usize, usize)> {
        let on_records = |s: &Step| !matches!(s, Step::Check(_) | Step::Command(_));
        let steps = &self.inner.steps;
        Some((steps.iter().position(on_records)?, steps.iter().rposition(on_records)? + 1))
    }

    /// The name the sinks' `name` template sees for a file named `source_name`: with the
    /// output's extension when the steps write another format (`roster.csv` →
    /// `roster.jsonl`) or render templates with another extension (`prices.csv` →
    /// `prices.xml`), and as each `command` step's `name` makes it (`orders.csv.gpg` →
    /// `orders.csv`).
    pub fn delivered_name(&self, source_name: &str) -> Result<String, String> {
        self.name_at(source_name, self.inner.steps.len())
    }

    /// Whether a `command` step renames the file (its `name`).
    pub fn renames(&self) -> bool {
        self.inner.steps.iter().any(|s| matches!(s, Step::Command(c) if c.name.is_some()))
    }

    /// The file's name as the step at position `n` gets it.
    fn name_at(&self, source_name: &str, n: usize) -> Result<String, String> {
        let written = self.records().map(|(_, end)| end);
        let mut name = source_name.to_string();
        for i in 0..=n.min(self.inner.steps.len()) {
            if written == Some(i) {
                name = self.with_output_ext(name);
            }
            if let Some(Step::Command(c)) = self.inner.steps.get(i).filter(|_| i < n) {
                name = c.rename(&name)?;
            }
        }
        Ok(name)
    }

    /// `name` with the output's extension, when records are written in another format.
    fn with_output_ext(&self, name: String) -> String {
        let Some(ext) = self.output_ext() else { return name };
        let vars = NameVars::new(&name, "", 0, 0, std::time::UNIX_EPOCH);
        if vars.ext.eq_ignore_ascii_case(ext) { name } else { format!("{}.{ext}", vars.stem) }
    }

    /// What is legal but surely wrong in the steps, as (YAML path, message): a template reading
    /// a record field that no record valid by the flow's schema has, or testing a name its
    /// context does not have (always false); a CSV output with a header
    /// whose columns are only known from a record (after a `map`, or from JSON input), which
    /// a file of no records leaves without its header line.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mapped = self.inner.steps.iter().any(|s| matches!(s, Step::Map(_)));
        let csv_input = matches!(self.parse(), Some(p) if p.format == ParseFormat::Csv);
        for (i, s) in self.inner.steps.iter().enumerate() {
            match s {
                Step::Render(r) => {
                    out.extend(r.escape_warning().map(|w| (format!("/steps/{i}/render"), w)));
                    out.extend(r.stranger_tests().iter().map(|(setting, w)| (format!("/steps/{i}/render/{setting}"), w.clone())));
                    out.extend(r.undeclared().iter().map(|u| (format!("/steps/{i}/render/{}", u.read.setting), u.warning())))
                }
                Step::Write(w) if w.format == WriteFormat::Csv && w.header && w.columns.is_empty() && (mapped || !csv_input) => {
                    let whence = if mapped { "the `map` step decides them" } else { "the input has no header" };
                    out.push((
                        format!("/steps/{i}/write"),
                        format!(
                            "the CSV output's columns are the keys of its first record ({whence}): a file of no records gives an \
                             empty output, with no header line; list them in `columns` to always write the header"
                        ),
                    ));
                }
                _ => {}
            }
        }
        out
    }

    /// Names of the companion files (beside the data file on the source) the steps read: the
    /// first step's checksum, the last one's row count ([`Steps::companion_names`]).
    pub fn companions(&self, vars: &NameVars) -> Result<Companions, String> {
        let mut c = Companions::default();
        for n in self.companion_names(vars) {
            let name = n.name?;
            match n.kind {
                CompanionKind::Checksum => c.checksum = c.checksum.or(Some(name)),
                CompanionKind::RowCount => c.row_count = Some(name),
            }
        }
        Ok(c)
    }

    /// Every companion file a step reads, in step order, as the data file of `vars` names it,
    /// with where it is set: what [`Steps::companions`] reads, and what validation checks
    /// (a row count named as the data file itself).
    pub fn companion_names(&self, vars: &NameVars) -> Vec<CompanionName> {
        let named = |i: usize, kind: CompanionKind, written: String, name: Result<String, String>| {
            let field = match kind {
                CompanionKind::Checksum => "check/checksum",
                CompanionKind::RowCount => "validate/row_count_file",
            };
            CompanionName { at: format!("/steps/{i}/{field}"), kind, written, name }
        };
        let mut out = Vec::new();
        for (i, s) in self.inner.steps.iter().enumerate() {
            match s {
                // `{{name}}.sha256`: the name `checksum: sha256` gives, as a template.
                Step::Check(ch) => out.extend(
                    ch.companion("{{name}}").zip(ch.companion(&vars.name)).map(|(w, n)| named(i, CompanionKind::Checksum, w, Ok(n))),
                ),
                Step::Validate(v) => {
                    out.extend(v.row_count_file.as_ref().map(|t| named(i, CompanionKind::RowCount, t.source().to_string(), t.render(vars))))
                }
                _ => {}
            }
        }
        out
    }

    /// Takes one staged file through the steps. Only what is not the file's fault is `Err`
    /// (local I/O, a program that cannot be started); everything wrong with the file itself
    /// is in the returned verdict.
    pub fn run(&self, input: &Input<'_>) -> Result<Processed, RunError> {
        let mut run = FileRun::new(self, input);
        let result = run.go();
        for p in [input.bytes, input.piped] {
            let _ = std::fs::remove_file(p);
        }
        if result.is_err() || run.out.quarantine.is_some() {
            // Partial outputs of a failed or quarantined file are never delivered.
            for p in [input.output, input.rejects] {
                let _ = std::fs::remove_file(p);
            }
        }
        result.map(|()| run.out)
    }
}

/// One file's pass through the steps.
struct FileRun<'s, 'i> {
    steps: &'s Steps,
    input: &'i Input<'i>,
    out: Processed,
    errors: Vec<RecordError>,
    errors_total: u64,
    /// How many of `errors_total` are the script's ([`Cause::Script`]).
    script_errors: u64,
    /// How many of the rejected records were rejected for a script error.
    script_rejected: u64,
    /// The same two for the templates' own errors ([`Cause::Template`]).
    template_errors: u64,
    template_rejected: u64,
    /// Problems with the file as a whole (row `None`), in the order found.
    file_problems: Vec<RecordError>,
    header: Option<Vec<String>>,
    /// JSON input: its records' keys in the order the file gives them ([`Event::Keys`]).
    keys: Vec<String>,
    writer: Option<Output>,
    rejects: Option<Rejects>,
    /// Quarantine is certain (a count limit was passed): stop writing outputs, keep reporting.
    doomed: bool,
    /// The name variables for templates when a `command` step before `parse` renamed the file.
    renamed: Option<NameVars>,
}

/// One record on its way through the steps.
enum Stage {
    /// As parsed, with the copy converted to the schemas' types once a `validate` converted a
    /// CSV cell: the schemas and the script see `typed`, the output gets `original`.
    Parsed { original: serde_json::Value, typed: Option<serde_json::Value> },
    /// What the script returned: zero, one or several records.
    Mapped(Vec<serde_json::Value>),
}

/// Where the records go: serialised (`write`, or the parsed format) or rendered (`render`).
enum Output {
    Records(Writer),
    Rendered(Box<Renderer>),
}

impl Output {
    /// Flushes, fsyncs and returns the size.
    fn finish(self) -> std::io::Result<u64> {
        match self {
            Output::Records(w) => w.finish(),
            Output::Rendered(r) => r.finish(),
        }
    }
}

/// A rendering failure outside any one record (the header, footer or whole document) is the
/// file's (the cause is lost: see `complete_output` for where it can be the flow's own).
fn output_stop(f: Failure) -> Stop {
    match f {
        Failure::Io(e) => Stop::Io(e),
        Failure::File(msg) | Failure::Record { message: msg, .. } => Stop::File(msg),
    }
}

/// Clears a map step's clock when a file is done, however it ends.
struct Clock<'a>(Option<&'a Mapper>);

impl Drop for Clock<'_> {
    fn drop(&mut self) {
        if let Some(m) = self.0 {
            m.end_file();
        }
    }
}

impl<'s, 'i> FileRun<'s, 'i> {
    fn new(steps: &'s Steps, input: &'i Input<'i>) -> Self {
        FileRun {
            steps,
            input,
            out: Processed { counts: RecordCounts::default(), output: None, rejects: None, quarantine: None, delimiter_hint: None },
            errors: Vec::new(),
            errors_total: 0,
            script_errors: 0,
            script_rejected: 0,
            template_errors: 0,
            template_rejected: 0,
            file_problems: Vec::new(),
            header: None,
            keys: Vec::new(),
            writer: None,
            rejects: None,
            doomed: false,
            renamed: None,
        }
    }

    /// The file's name (without its folder).
    fn file_name(&self) -> &'i str {
        self.input.name.rsplit('/').next().unwrap_or(self.input.name)
    }

    /// The name variables templates see.
    fn vars(&self) -> &NameVars {
        self.renamed.as_ref().unwrap_or(self.input.vars)
    }

    /// Runs the `command` step `c` on the bytes of `from`, its output moved to `to` when it
    /// succeeded (`from` and `to` may be the same). `false`: it failed, and said why in the
    /// file's problems.
    fn command(&mut self, c: &command::Command, from: &Path, to: &Path) -> Result<bool, RunError> {
        let name = self.steps.name_at(self.file_name(), c.at).map_err(RunError::Name)?;
        let env = command::Env { flow: self.input.flow, run: self.input.vars.run, file: &name, abandoned: self.input.abandoned };
        match c.run(&env, from, self.input.piped) {
            Err(command::Trouble::NotStarted(m)) => Err(RunError::Program(m)),
            Err(command::Trouble::Io(e)) => Err(RunError::Io(e)),
            Ok(Err(why)) => {
                self.file_problems.push(RecordError::file(Source::Command, Cause::Data, why));
                Ok(false)
            }
            Ok(Ok(())) => {
                std::fs::rename(self.input.piped, to)?;
                Ok(true)
            }
        }
    }

    fn go(&mut self) -> Result<(), RunError> {
        let steps = self.steps;
        for s in &steps.inner.steps {
            if let Step::Check(c) = s {
                let subject = check::Subject {
                    path: self.input.staged,
                    name: self.file_name(),
                    size: self.input.size,
                    sha256: self.input.sha256,
                    checksum_text: self.input.checksum_text.as_ref(),
                };
                self.file_problems.extend(c.run(&subject)?.into_iter().map(|m| RecordError::file(Source::Check, Cause::Data, m)));
            }
        }
        if !self.file_problems.is_empty() {
            // A file that fails its checks goes no further.
            self.decide();
            return Ok(());
        }
        // The `command` steps before the records (all of them, when none are read): the
        // bytes they leave are parsed, or delivered.
        let records = steps.records();
        let (parse, before) = match (steps.parse(), records) {
            (Some(p), Some((start, _))) => (Some(p), start),
            _ => (None, steps.inner.steps.len()),
        };
        let bytes = if parse.is_some() { self.input.bytes } else { self.input.output };
        let mut current = self.input.staged;
        for s in &steps.inner.steps[..before] {
            if let Step::Command(c) = s {
                if !self.command(c, current, bytes)? {
                    self.decide();
                    return Ok(());
                }
                current = bytes;
            }
        }
        let Some(parse) = parse else {
            if current != self.input.staged {
                self.out.output = Some(std::fs::metadata(current)?.len());
            }
            self.decide();
            return Ok(());
        };
        let name = steps.name_at(self.file_name(), before).map_err(RunError::Name)?;
        if name != self.file_name() {
            let v = self.input.vars;
            self.renamed = Some(NameVars { now: v.now, ..NameVars::new(&name, &v.rel_dir, v.size, v.run, std::time::UNIX_EPOCH) });
        }
        let mapper = steps.mapper();
        let _clock = Clock(mapper);
        if let Some(m) = mapper {
            m.start_file();
        }
        let result = parse::read(parse, current, &mut |ev| match ev {
            Event::Header(h) => self.header(h),
            Event::Keys(k) => self.keys(k),
            Event::Row(row) => self.row(row),
        });
        match result {
            Ok(summary) => {
                if let Some(n) = summary.trailer_count.filter(|n| *n != self.out.counts.read) {
                    let msg = format!("the trailer announces {n} records, but the file has {}", self.out.counts.read);
                    self.file_problems.push(RecordError::file(Source::Parse, Cause::Data, msg));
                }
            }
            // The consumer (`header`, `row`) records its own reasons and stops with `Consumer`:
            // a `File` stop is the parser's.
            Err(Stop::File(msg)) => self.file_problems.push(RecordError::file(Source::Parse, Cause::Data, msg)),
            Err(Stop::Io(e)) => return Err(e.into()),
            Err(Stop::Consumer) => {}
        }
        self.row_count();
        if self.file_problems.is_empty() && !self.doomed {
            // A file with no records still gets its output (a header, a trailer, `[]`); the
            // footer or document is rendered before the verdict, since it can fail.
            match self.complete_output() {
                Ok(()) | Err(Stop::Consumer) => {}
                Err(Stop::File(msg)) => self.file_problems.push(RecordError::file(Source::Render, Cause::Data, msg)),
                Err(Stop::Io(e)) => return Err(e.into()),
            }
        }
        self.decide();
        if self.out.quarantine.is_none() {
            if let Some(w) = self.writer.take() {
                self.out.output = Some(w.finish()?);
            }
            if let Some(r) = self.rejects.take() {
                self.out.rejects = Some(r.finish()?);
            }
        }
        // The `command` steps after the records: on what was written.
        let after = records.map_or(steps.inner.steps.len(), |(_, end)| end);
        for s in &steps.inner.steps[after..] {
            if let (Step::Command(c), Some(_)) = (s, self.out.output) {
                let output = self.input.output;
                if !self.command(c, output, output)? {
                    (self.out.output, self.out.rejects) = (None, None);
                    self.decide();
                    return Ok(());
                }
                self.out.output = Some(std::fs::metadata(output)?.len());
            }
        }
        Ok(())
    }

    fn header(&mut self, header: Vec<String>) -> Result<(), Stop> {
        if let Some(p) = self.steps.parse().filter(|p| p.format == ParseFormat::Csv && p.header) {
            self.out.delimiter_hint = parse::delimiter_hint("header", &header, p.delimiter);
        }
        for s in &self.steps.inner.steps {
            if let Step::Validate(v) = s
                && let Some(msg) = v.missing_columns(&header)
            {
                self.file_problems.push(RecordError::file(Source::Validate, Cause::Data, msg));
                return Err(Stop::Consumer);
            }
        }
        if let Some(m) = self.steps.mapper() {
            m.file_columns(&header);
        }
        self.header = Some(header);
        Ok(())
    }

    /// JSON input's keys no record before gave: the output's keys follow their order, as
    /// they follow a CSV input's header.
    fn keys(&mut self, new: Vec<String>) -> Result<(), Stop> {
        let follows = self.follows_input();
        if let (true, Some(Output::Records(w))) = (follows, self.writer.as_mut()) {
            w.input_keys(&new);
        }
        self.keys.extend(new);
        Ok(())
    }

    /// Whether the output's keys follow the input's order (a CSV input's header, a JSON
    /// input's keys). CSV output after a map script takes its columns from the first record;
    /// JSON output orders every record's keys so, mapped or not (`write::Writer::create`).
    fn follows_input(&self) -> bool {
        let mapped = self.steps.inner.steps.iter().any(|s| matches!(s, Step::Map(_)));
        !(mapped && self.steps.inner.write.as_ref().is_some_and(|w| w.format == WriteFormat::Csv))
    }

    /// The CSV columns of the output when they are known before the first record.
    fn known_columns(&self) -> Option<Vec<String>> {
        let w = self.steps.inner.write.as_ref()?;
        if !w.columns.is_empty() {
            return Some(w.columns.clone());
        }
        if self.follows_input() { self.header.clone() } else { None }
    }

    fn open_output(&mut self) -> Result<(), Stop> {
        if let Some(r) = &self.steps.inner.render {
            let renderer = Renderer::create(self.input.output, r, self.vars()).map_err(output_stop)?;
            self.writer = Some(Output::Rendered(Box::new(renderer)));
        } else if let Some(w) = &self.steps.inner.write {
            let mut writer = Writer::create(self.input.output, w, self.known_columns()).map_err(Stop::Io)?;
            if self.follows_input() {
                writer.input_keys(&self.keys);
            }
            self.writer = Some(Output::Records(writer));
        }
        Ok(())
    }

    /// Opens the output if no record did, and renders the footer or the whole document.
    fn complete_output(&mut self) -> Result<(), Stop> {
        if self.writer.is_none() {
            self.open_output()?;
        }
        if let Some(Output::Rendered(r)) = self.writer.as_mut() {
            match r.end() {
                // A document template reading a field no valid record has: the flow's own.
                Err(Failure::Record { message, cause, .. }) => {
                    self.file_problems.push(RecordError::file(Source::Render, cause, message));
                    return Err(Stop::Consumer);
                }
                other => other.map_err(output_stop)?,
            }
        }
        Ok(())
    }

    fn row(&mut self, mut row: Row) -> Result<(), Stop> {
        self.out.counts.read += 1;
        if let (1, Raw::Fields(fields)) = (self.out.counts.read, &row.raw)
            && let Some(p) = self.steps.parse().filter(|p| !p.header)
        {
            self.out.delimiter_hint = parse::delimiter_hint("first record", fields, p.delimiter);
        }
        let mut errs: Vec<RecordError> = Vec::new();
        // Set when the script's time ran out at this record: it is invalid, and the file stops here.
        let mut timeout: Option<String> = None;
        // The record is taken, not cloned (per record); a rejected row is written from `row.raw`.
        let value = std::mem::replace(&mut row.value, Ok(serde_json::Value::Null));
        // `returned`: which of the records a script returned the problem is in, when several.
        let at = |source: Source, cause: Cause, returned: Option<Returned>, field: Option<String>, message: String| RecordError {
            row: Some(row.number),
            line: row.line,
            returned,
            field,
            message: capped(message),
            source: Some(source),
            cause,
        };
        // Schema errors in column order where there are columns (the schema reports in its own order).
        let header = self.header.as_deref();
        let in_column_order = |found: &mut Vec<validate::FieldError>| {
            if let Some(h) = header {
                found.sort_by_key(|fe| fe.field.as_ref().and_then(|f| h.iter().position(|c| f == c || f.starts_with(&format!("{c}.")))));
            }
        };
        match value {
            Err(msg) => errs.push(at(Source::Parse, Cause::Data, None, None, msg)),
            Ok(v) => {
                let mut stage = Stage::Parsed { original: v, typed: None };
                // CSV text is converted to schema types only before a script reshapes records.
                let textual = self.header.is_some();
                for s in &self.steps.inner.steps {
                    match s {
                        Step::Validate(val) => match &mut stage {
                            Stage::Parsed { original, typed } => {
                                let current = Cow::Borrowed(typed.as_ref().unwrap_or(original));
                                let checked = if textual { val.typed(current) } else { current };
                                let mut found = val.check(&checked);
                                if let Cow::Owned(t) = checked {
                                    *typed = Some(t);
                                }
                                in_column_order(&mut found);
                                errs.extend(found.into_iter().map(|fe| at(Source::Validate, Cause::Data, None, fe.field, fe.message)));
                            }
                            Stage::Mapped(set) => {
                                for (i, r) in set.iter().enumerate() {
                                    let mut found = val.check(r);
                                    in_column_order(&mut found);
                                    let returned = Returned::at(i, set.len());
                                    errs.extend(
                                        found.into_iter().map(|fe| at(Source::Validate, Cause::Data, returned, fe.field, fe.message)),
                                    );
                                }
                            }
                        },
                        Step::Map(m) => {
                            // The script sees the converted values (the docs promise it); what
                            // it returns is what is written, numbers it passed on as their cells
                            // were written.
                            let (inputs, written) = match std::mem::replace(&mut stage, Stage::Mapped(Vec::new())) {
                                Stage::Parsed { original, typed: Some(typed) } => (vec![typed], Some(original)),
                                Stage::Parsed { original, typed: None } => (vec![original], None),
                                Stage::Mapped(set) => (set, None),
                            };
                            let mut next = Vec::with_capacity(inputs.len());
                            for (i, r) in inputs.iter().enumerate() {
                                // Where a script's `print` and `debug` lines come from.
                                let _at = tracing::info_span!("script", flow = self.input.flow, path = self.input.name, row = row.number)
                                    .entered();
                                match m.map(r) {
                                    Ok(mut out) => {
                                        if let Some(w) = &written {
                                            out.iter_mut().for_each(|o| map::keep_as_written(o, r, w));
                                        }
                                        next.extend(out)
                                    }
                                    Err(MapFailure { error, returned }) => {
                                        // Of the records this script returned (a flow has one
                                        // `map` step: it is given the parsed record alone).
                                        let returned = returned.or(Returned::at(i, inputs.len()));
                                        let (cause, msg) = match error {
                                            MapError::Record(msg) => (Cause::Data, msg),
                                            MapError::Script(msg) => (Cause::Script, msg),
                                            MapError::Timeout(msg) => {
                                                timeout = Some(msg.clone());
                                                (Cause::Script, msg)
                                            }
                                        };
                                        errs.push(at(Source::Map, cause, returned, None, msg));
                                        break;
                                    }
                                }
                            }
                            stage = Stage::Mapped(next);
                        }
                        _ => {}
                    }
                    if !errs.is_empty() {
                        break;
                    }
                }
                if errs.is_empty() {
                    // Without a script, the record as parsed: the cells as they were written.
                    let set = match stage {
                        Stage::Parsed { original, .. } => vec![original],
                        Stage::Mapped(set) => set,
                    };
                    if set.is_empty() {
                        self.out.counts.skipped += 1;
                        return Ok(());
                    }
                    let count = set.len();
                    // Rendering goes on when the file is doomed: it is what finds the records a
                    // template cannot render, for the report (the output is discarded anyway).
                    if !self.doomed || self.steps.inner.render.is_some() {
                        if self.writer.is_none() {
                            self.open_output()?;
                        }
                        match self.writer.as_mut() {
                            // CSV output can find the record invalid too (a key outside the columns).
                            Some(Output::Records(w)) => match w.records(&set) {
                                Ok(n) => self.out.counts.written += n,
                                Err(WriteError::Record { index, message }) => {
                                    errs.push(at(Source::Write, Cause::Data, Returned::at(index, count), None, message))
                                }
                                Err(WriteError::Io(e)) => return Err(Stop::Io(e)),
                            },
                            // Rendering can still find the record invalid (strict templates, sums).
                            Some(Output::Rendered(r)) => match r.records(set) {
                                Ok(n) => self.out.counts.written += n,
                                Err(Failure::Record { index, field, message, cause }) => {
                                    errs.push(at(Source::Render, cause, index.and_then(|i| Returned::at(i, count)), field, message))
                                }
                                Err(Failure::File(msg)) => {
                                    self.file_problems.push(RecordError::file(Source::Render, Cause::Data, msg));
                                    return Err(Stop::Consumer);
                                }
                                Err(Failure::Io(e)) => return Err(Stop::Io(e)),
                            },
                            None => {}
                        }
                    }
                    if errs.is_empty() {
                        self.out.counts.valid += 1;
                        return Ok(());
                    }
                }
            }
        }
        self.out.counts.rejected += 1;
        let script = errs.iter().filter(|e| e.cause == Cause::Script).count() as u64;
        self.script_errors += script;
        if script > 0 {
            self.script_rejected += 1;
        }
        let template = errs.iter().filter(|e| e.cause == Cause::Template).count() as u64;
        self.template_errors += template;
        if template > 0 {
            self.template_rejected += 1;
        }
        let messages: Vec<String> = errs.iter().map(RecordError::in_row).collect();
        self.errors_total += errs.len() as u64;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors.extend(errs.into_iter().take(room));
        let policy = self.steps.inner.policy;
        if !self.doomed && self.out.counts.rejected > policy.allowed(u64::MAX) {
            // Past a fixed limit: the file will be quarantined whatever follows.
            self.doomed = true;
        }
        if policy.on_invalid == OnInvalid::Skip && !self.doomed {
            if self.rejects.is_none() {
                let delimiter = self.steps.parse().map_or(b',', |p| p.delimiter);
                self.rejects = Some(Rejects::create(self.input.rejects, self.header.as_deref(), delimiter).map_err(Stop::Io)?);
            }
            if let Some(r) = self.rejects.as_mut() {
                r.write(row.number, row.line, &row.raw, &messages).map_err(Stop::Io)?;
            }
        }
        if let Some(msg) = timeout {
            // Counted above as rejected (read = valid + rejected + skipped holds); the file
            // stops here, and the reason says where.
            let line = row.line.map(|l| format!(" (line {l})")).unwrap_or_default();
            let msg = format!("{msg}, at row {}{line}", row.number);
            self.file_problems.push(RecordError::file(Source::Map, Cause::Script, msg));
            return Err(Stop::Consumer);
        }
        Ok(())
    }

    /// Compares the record count with the companion row-count file, when configured.
    fn row_count(&mut self) {
        let Some(text) = &self.input.row_count_text else { return };
        let problem = match text {
            Err(e) => format!("the row count file is missing: {e}"),
            Ok(t) => match t.split_whitespace().next().map(str::parse::<u64>) {
                Some(Ok(n)) if n == self.out.counts.read => return,
                Some(Ok(n)) => format!("the row count file announces {n} records, but the file has {}", self.out.counts.read),
                _ => format!("the row count file does not start with a number: {:?}", t.trim()),
            },
        };
        self.file_problems.push(RecordError::file(Source::Validate, Cause::Data, problem));
    }

    /// The mapping script as the flow names it (for reasons).
    fn script(&self) -> &str {
        self.steps.mapper().map_or("", |m| m.script.as_str())
    }

    /// The row or document template as the flow names it (for reasons).
    fn template(&self) -> &str {
        match self.steps.inner.render.as_ref().map(|r| &r.mode) {
            Some(render::Mode::Rows { row, .. }) => row,
            Some(render::Mode::Document(t)) => t,
            None => "",
        }
    }

    /// Pass or quarantine, from the file problems and the invalid-record policy.
    fn decide(&mut self) {
        let c = self.out.counts;
        let policy = self.steps.inner.policy;
        let reason = if let Some(first) = self.file_problems.first() {
            let more = self.file_problems.len() - 1;
            let text = if more > 0 { format!("{} (and {more} more problem(s))", first.message) } else { first.message.clone() };
            Some(match first.cause {
                Cause::Script => format!("the flow's mapping script failed: {text}"),
                Cause::Template => format!("the flow's template failed: {text}"),
                Cause::Data => text,
            })
        } else if c.rejected > policy.allowed(c.read) {
            let policy = policy.describe();
            let own = [
                (self.script_rejected, format!("mapping script {}", self.script())),
                (self.template_rejected, format!("template {}", self.template())),
            ];
            Some(match own.iter().find(|(n, _)| *n > 0) {
                None => format!("{} of {} records are invalid ({policy})", c.rejected, c.read),
                Some((n, what)) if *n == c.rejected => format!("the flow's {what} failed on {n} of {} records ({policy})", c.read),
                Some(_) => {
                    let mut reason = format!("{} of {} records are invalid ({policy})", c.rejected, c.read);
                    for (n, what) in own.iter().filter(|(n, _)| *n > 0) {
                        reason.push_str(&format!("; on {n} of them, the flow's {what} failed"));
                    }
                    reason
                }
            })
        } else {
            None
        };
        let Some(mut reason) = reason else { return };
        if let Some(hint) = &self.out.delimiter_hint {
            reason.push_str(&format!("; {hint}"));
        }
        let mut errors = std::mem::take(&mut self.file_problems);
        let total = self.errors_total + errors.len() as u64;
        let script = self.script_errors + errors.iter().filter(|e| e.cause == Cause::Script).count() as u64;
        let template = self.template_errors + errors.iter().filter(|e| e.cause == Cause::Template).count() as u64;
        errors.extend(std::mem::take(&mut self.errors));
        errors.truncate(MAX_REPORTED_ERRORS);
        self.writer = None;
        self.rejects = None;
        self.out.counts.written = 0;
        self.out.quarantine = Some(Verdict { reason, errors, errors_total: total, cause: Causes::of(total, script, template) });
    }
}

/// Builds a flow's steps (`steps:` with `on_invalid` / `max_invalid`); relative paths resolve
/// against `base` (the flow file's folder). Reports every problem with its YAML path.
pub fn build(raw: &[RawStep], on_invalid: OnInvalid, max_invalid: Option<&RawMaxInvalid>, base: &Path) -> Result<Steps, Vec<Problem>> {
    let raw: Vec<Option<&RawStep>> = raw.iter().map(Some).collect();
    build_partial(&raw, "steps", on_invalid, max_invalid, base)
}

/// [`build`] for a list in which some steps are malformed (`None`, already reported by the
/// caller): every well-formed step is still checked — its schema compiled, its script parsed,
/// its look-up tables read — so one bad step does not hide the problems of the others. Order
/// rules that a malformed step could satisfy (a `parse` before `map`) are not judged. The
/// result is an error whenever a step is missing, possibly with no problem of its own.
/// `list` is what the steps' own messages at run time call the list (`steps`, a round trip's
/// `response.steps`); problems found here are at `/steps/…` whichever it is.
pub fn build_partial(
    raw: &[Option<&RawStep>],
    list: &'static str,
    on_invalid: OnInvalid,
    max_invalid: Option<&RawMaxInvalid>,
    base: &Path,
) -> Result<Steps, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut steps = Vec::new();
    let (mut parsed, mut mapped) = (None::<ParseFormat>, false);
    // The step that writes the output (`write` or `render`), once seen: it must be the last.
    let mut written: Option<&'static str> = None;
    // A malformed step may have been the `parse` the later steps need.
    let mut malformed = false;
    // A `command` step was seen: the bytes are no longer the file as received.
    let mut commanded = false;
    for (i, s) in raw.iter().enumerate() {
        let Some(s) = *s else {
            malformed = true;
            continue;
        };
        let (kind, built) = match s {
            RawStep::Check(c) => ("check", Check::build(c).map(Step::Check)),
            RawStep::Parse(p) => ("parse", Parse::build(p).map(Step::Parse)),
            RawStep::Validate(v) => ("validate", Validate::build(v, base).map(Step::Validate)),
            RawStep::Map(m) => ("map", build_map(m, base).map(Step::Map)),
            RawStep::Write(w) => ("write", Write::build(w).map(Step::Write)),
            RawStep::Render(r) => ("render", Render::build(r, base).map(Step::Render)),
            RawStep::Command(c) => ("command", command::Command::build(c, (list, i), base).map(Step::Command)),
        };
        let at = format!("/steps/{i}/{kind}");
        let mut order = |msg: &str| problems.push(Problem::new(at.clone(), msg.to_string()));
        let output = matches!(s, RawStep::Write(_) | RawStep::Render(_));
        match written {
            // It encodes what was written (`gzip`, `gpg --encrypt`).
            Some(_) if matches!(s, RawStep::Command(_)) => {}
            Some(prev) if output && prev != kind => order("the output is written once: use either `write` or `render`, not both"),
            Some(prev) if commanded => order(&format!("`{prev}` must be the last step (but for `command` steps)")),
            Some(prev) => order(&format!("`{prev}` must be the last step")),
            None => {}
        }
        match s {
            RawStep::Check(_) if parsed.is_some() => order("`check` looks at the file as a whole: put it before `parse`"),
            RawStep::Check(_) if commanded => {
                order("`check` looks at the file as received (a checksum is of the bytes sent): put it before any `command` step")
            }
            RawStep::Command(_) if parsed.is_some() && written.is_none() && !malformed => order(
                "a `command` step works on the file's bytes, not on records: put it before `parse` (to decode what arrives) or \
                 after a `write` or `render` step (to encode what is sent)",
            ),
            RawStep::Command(_) => commanded = true,
            RawStep::Parse(_) if parsed.is_some() => order("a file is parsed once: there is already a `parse` step"),
            RawStep::Parse(p) => parsed = Some(p.format),
            RawStep::Validate(_) | RawStep::Map(_) | RawStep::Write(_) | RawStep::Render(_) if parsed.is_none() && !malformed => {
                order(&format!("`{kind}` works on records: put a `parse` step before it"))
            }
            RawStep::Map(_) if mapped => order("there is already a `map` step (one script per flow)"),
            RawStep::Map(_) => mapped = true,
            _ => {}
        }
        if output {
            written = written.or(Some(kind));
        }
        if let RawStep::Validate(v) = s
            && (!v.required_columns.is_empty())
            && parsed.is_some_and(|f| f != ParseFormat::Csv)
        {
            problems.push(Problem::new(format!("{at}/required_columns"), "applies to CSV files only".to_string()));
        }
        // CSV's own settings written on `json` / `jsonl` are judged by the flow's validation
        // (`config::validate`), which can also warn.
        match built {
            Ok(step) => steps.push(step),
            Err(errs) => problems.extend(errs.into_iter().map(|(field, msg)| Problem::new(format!("{at}/{field}"), msg))),
        }
    }
    let max = match max_invalid {
        None => None,
        Some(_) if on_invalid == OnInvalid::Quarantine => {
            problems.push(Problem::new(
                "/max_invalid",
                "applies with `on_invalid: skip` (with `quarantine`, any invalid record quarantines the file)".to_string(),
            ));
            None
        }
        Some(RawMaxInvalid::Count(n)) => Some(MaxInvalid::Count(*n)),
        Some(RawMaxInvalid::Percent(p)) => match p.trim_end_matches('%').parse::<f64>() {
            Ok(v) if (0.0..=100.0).contains(&v) => Some(MaxInvalid::Percent(v)),
            _ => {
                problems.push(Problem::new("/max_invalid", format!("`{p}` is not a percentage from 0% to 100%")));
                None
            }
        },
    };
    if !problems.is_empty() || malformed {
        return Err(problems);
    }
    close_render(&mut steps);
    let render = steps.iter().find_map(|s| if let Step::Render(r) = s { Some(r.clone()) } else { None });
    let write = steps.iter().find_map(|s| if let Step::Write(w) = s { Some(w.clone()) } else { None }).or_else(|| {
        if render.is_some() {
            return None;
        }
        // No `write` step: the parsed format, in the parsed dialect.
        steps.iter().find_map(|s| match s {
            Step::Parse(p) => {
                let format = match p.format {
                    ParseFormat::Csv => WriteFormat::Csv,
                    ParseFormat::Json => WriteFormat::Json,
                    ParseFormat::Jsonl => WriteFormat::Jsonl,
                };
                let raw = RawWrite { format, columns: None, delimiter: None, header: None };
                Write::build(&raw).ok().map(|w| Write { delimiter: p.delimiter, header: p.header, ..w })
            }
            _ => None,
        })
    });
    Ok(Steps { inner: Arc::new(Inner { steps, policy: Policy { on_invalid, max_invalid: max }, write, render }) })
}

/// Tells the `render` step the closed record schemas every record it renders has passed: those
/// of the `validate` steps after the last `map` (a script reshapes records, so a schema before
/// it says nothing of what is rendered). A template reading a field outside one of them has
/// made a mistake (`render/fields.rs`).
fn close_render(steps: &mut [Step]) {
    let after_map = steps.iter().rposition(|s| matches!(s, Step::Map(_))).map_or(0, |i| i + 1);
    let closed: Vec<(String, std::collections::BTreeSet<String>)> = steps[after_map..]
        .iter()
        .filter_map(|s| match s {
            Step::Validate(v) => {
                let (_, path) = v.schema.as_ref()?;
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                Some((name, v.closed.clone()?))
            }
            _ => None,
        })
        .collect();
    for s in steps.iter_mut() {
        if let Step::Render(r) = s {
            r.set_closed(&closed);
        }
    }
}

fn build_map(raw: &crate::config::raw_steps::RawMap, base: &Path) -> Result<Mapper, Vec<(&'static str, String)>> {
    let mut problems = Vec::new();
    let timeout = duration::parse(&raw.timeout).map_err(|e| problems.push(("timeout", e))).ok();
    if raw.max_operations == 0 {
        problems.push(("max_operations", "must be at least 1".to_string()));
    }
    let mut tables = BTreeMap::new();
    for (name, l) in &raw.lookups {
        match map::load_table(&crate::config::paths::resolve(base, &l.file), l) {
            Ok(t) => {
                tables.insert(name.clone(), t);
            }
            Err(e) => problems.push(("lookups", format!("`{name}`: {e}"))),
        }
    }
    let path = crate::config::paths::resolve(base, &raw.script);
    let text = crate::config::inputs::read_code(&path)
        .map_err(|e| problems.push(("script", format!("cannot read script {}: {}", path.display(), crate::endpoint::local::io_reason(&e)))))
        .ok();
    // The script is compiled whatever else is wrong, so its syntax errors are reported with the
    // others (a bad timeout or look-up table does not change what the script says).
    let built = text.map(|text| {
        Mapper::build(&raw.script, &text, tables, raw.max_operations, timeout.unwrap_or(Duration::ZERO))
            .map_err(|e| problems.push(("script", e)))
    });
    match (built, timeout) {
        (Some(Ok(mapper)), Some(_)) if problems.is_empty() => Ok(mapper),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod command_tests;
#[cfg(test)]
mod tests;
