//! One file's rendered output: the contexts the templates see, the running count and sums,
//! and the output file (buffered, flushed and fsynced by `write.rs`'s helpers).
//!
//! Contexts (docs/templates.md):
//! - header `{ file }`; row `{ record, row, file }` (`row` counts from 1); footer `{ count, sums, file }`;
//! - whole document `{ records, count, sums, file }`.
//!
//! A record is rendered completely (its sums added, its text made) before anything of it is
//! written, so a record that fails leaves no trace in the output. It decides nothing about
//! what a failure does to the file.

use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::Path;

use handlebars::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use super::decimal::Decimal;
use super::numbers::add_field;
use super::{Mode, Render};
use crate::steps::{Cause, write};
use crate::template::{NameVars, format_time};

/// Why rendering did not go through.
#[derive(Debug)]
pub enum Failure {
    /// A template cannot be rendered with the record (a missing field, a helper error, a sum that
    /// is not a number): from [`Renderer::records`], this record's problem; from
    /// [`Renderer::create`] and [`Renderer::end`] (header, footer, document), the file's.
    /// `cause` says whose: [`Cause::Template`] when the template reads a field no valid record has.
    /// `index`: which record of the set given to [`Renderer::records`] (0-based), when one of
    /// them is the problem.
    Record { index: Option<usize>, field: Option<String>, message: String, cause: Cause },
    /// The file cannot be rendered (too many records for a document, the run's date).
    File(String),
    /// Writing the local output failed.
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// `file` in every context: the source file and the run.
#[derive(Debug, Clone, Serialize)]
struct FileVars<'a> {
    /// File name with extension (`prices_0105.csv`).
    name: &'a str,
    /// Without the last extension (`prices_0105`).
    stem: &'a str,
    /// The source's last extension (`csv`).
    ext: &'a str,
    size: u64,
    run: u64,
    /// The run's start date, `YYYY-MM-DD` (UTC).
    date: String,
    /// The run's start, seconds since the epoch (what `now` formats).
    now: i64,
}

/// Renders one file's records into its output.
pub struct Renderer {
    spec: Render,
    out: BufWriter<File>,
    file: Value,
    count: u64,
    sums: Vec<Decimal>,
    /// Whole-document mode: every record so far.
    records: Vec<Value>,
}

impl Renderer {
    /// Creates the output at `path` and renders the header, if any.
    pub fn create(path: &Path, spec: &Render, vars: &NameVars) -> Result<Renderer, Failure> {
        let started = chrono::DateTime::from_timestamp(vars.now, 0).unwrap_or_default();
        let file = FileVars {
            name: &vars.name,
            stem: &vars.stem,
            ext: &vars.ext,
            size: vars.size,
            run: vars.run,
            date: format_time(&started, "YYYY-MM-DD").map_err(Failure::File)?,
            now: vars.now,
        };
        let file = serde_json::to_value(file).map_err(|e| Failure::Io(e.into()))?;
        let mut r = Renderer {
            spec: spec.clone(),
            out: write::create(path)?,
            file,
            count: 0,
            sums: vec![Decimal::ZERO; spec.sums.len()],
            records: Vec::new(),
        };
        if let Mode::Rows { header: Some(h), .. } = &spec.mode {
            let text = r.render(h, [])?;
            r.out.write_all(text.as_bytes())?;
        }
        Ok(r)
    }

    /// Renders the records one input record became (usually one): all of them, or none.
    /// Returns how many were written.
    pub fn records(&mut self, set: Vec<Value>) -> Result<u64, Failure> {
        let mut sums = self.sums.clone();
        for (i, r) in set.iter().enumerate() {
            for (total, path) in sums.iter_mut().zip(&self.spec.sums) {
                *total = add_field(*total, r, path).map_err(|e| Failure::Record {
                    index: Some(i),
                    field: Some(path.clone()),
                    message: format!("{e} (a field in `sums`)"),
                    cause: Cause::Data,
                })?;
            }
        }
        let n = set.len() as u64;
        match &self.spec.mode {
            Mode::Document(_) => {
                if self.records.len() as u64 + n > self.spec.max_records {
                    return Err(Failure::File(format!(
                        "more than {} records: a whole-document `template` holds every record in memory; use `header`/`row`/`footer` \
                         templates, which take one record at a time, or raise `max_records`",
                        self.spec.max_records
                    )));
                }
                self.records.extend(set);
            }
            Mode::Rows { row, .. } => {
                let mut text = String::new();
                for (i, record) in set.into_iter().enumerate() {
                    let number = Value::from(self.count + i as u64 + 1);
                    let rendered = self.render(row, [("record", record), ("row", number)]).map_err(|f| match f {
                        Failure::Record { field, message, cause, .. } => Failure::Record { index: Some(i), field, message, cause },
                        other => other,
                    })?;
                    text.push_str(&rendered);
                }
                self.out.write_all(text.as_bytes())?;
            }
        }
        self.sums = sums;
        self.count += n;
        Ok(n)
    }

    /// Renders the footer or the whole document, after the last record.
    pub fn end(&mut self) -> Result<(), Failure> {
        let (count, sums) = (Value::from(self.count), self.sums_value());
        let text = match &self.spec.mode {
            Mode::Rows { footer: Some(f), .. } => self.render(f, [("count", count), ("sums", sums)])?,
            Mode::Rows { footer: None, .. } => return Ok(()),
            Mode::Document(t) => {
                let records = Value::Array(std::mem::take(&mut self.records));
                self.render(t, [("records", records), ("count", count), ("sums", sums)])?
            }
        };
        self.out.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Flushes, fsyncs and returns the output's size.
    pub fn finish(self) -> io::Result<u64> {
        write::finish(self.out)
    }

    /// `sums` as the templates see it: `{ "price": { "net": "12.30" } }` for `price.net`.
    fn sums_value(&self) -> Value {
        let mut root = Map::new();
        for (path, total) in self.spec.sums.iter().zip(&self.sums) {
            let mut node = &mut root;
            let mut keys = path.split('.').peekable();
            while let Some(key) = keys.next() {
                if keys.peek().is_none() {
                    node.insert(key.to_string(), Value::String(total.to_string()));
                    break;
                }
                // `build` refuses a field that is also a group, so this is a map or absent.
                let entry = node.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
                let Value::Object(next) = entry else { break };
                node = next;
            }
        }
        Value::Object(root)
    }

    /// Renders template `name` with `file` and `vars` as the root context.
    fn render<const N: usize>(&self, name: &str, vars: [(&str, Value); N]) -> Result<String, Failure> {
        let mut root = Map::with_capacity(N + 1);
        for (k, v) in vars {
            root.insert(k.to_string(), v);
        }
        root.insert("file".to_string(), self.file.clone());
        let ctx = Context::from(Value::Object(root));
        self.spec.registry().render_with_context(name, &ctx).map_err(|e| {
            let (message, cause) = self.spec.failure(&e);
            // The flow's own error already lists the schema's fields.
            let close = if matches!(cause, Cause::Data) { close_fields(&e, ctx.data()) } else { String::new() };
            let message = format!("{message}{close}");
            Failure::Record { index: None, field: None, message, cause }
        })
    }
}

/// For a field `e` found missing (`record.curency`), the fields beside it in `root` that are
/// close to its name: `` (did you mean `record.currency`?)``, or nothing.
fn close_fields(e: &handlebars::RenderError, root: &Value) -> String {
    let handlebars::RenderErrorReason::MissingVariable(Some(path)) = e.reason() else { return String::new() };
    let Some((parent, last)) = path.rsplit_once('.') else { return String::new() };
    let Some(Value::Object(beside)) = parent.split('.').try_fold(root, |node, key| node.get(key)) else { return String::new() };
    let close: Vec<String> =
        crate::suggest::close(last, beside.keys().map(String::as_str), |_| false).into_iter().map(|k| format!("{parent}.{k}")).collect();
    crate::suggest::did_you_mean(&close.iter().map(String::as_str).collect::<Vec<_>>())
}
