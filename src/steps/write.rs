//! `write`: serialise records for the sinks (CSV, a JSON array, or JSON Lines), and the
//! rejects file that invalid rows go to under `on_invalid: skip`. Its output file handling
//! (`create`, `finish`) and cell text (`cell`) are shared with `render`.
//!
//! Owns the output formats and their file handling: written one record at a time through a
//! buffer, flushed and fsynced before the engine records the output as ready. It decides
//! nothing about which records are written.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::parse::Raw;
use crate::config::raw_steps::{RawWrite, WriteFormat};

/// A built `write` step.
#[derive(Debug, Clone)]
pub struct Write {
    pub format: WriteFormat,
    pub columns: Vec<String>,
    pub delimiter: u8,
    pub header: bool,
}

impl Write {
    pub fn build(raw: &RawWrite) -> Result<Write, Vec<(&'static str, String)>> {
        // CSV settings on `json` / `jsonl` output are judged by the flow's validation (`config::validate`).
        let delimiter = super::parse::csv_char(raw.delimiter()).map_err(|e| vec![("delimiter", e)])?;
        if delimiter == b'"' {
            // The quote of written CSV: fields holding it could not be told apart.
            return Err(vec![("delimiter", "`\"` is the quote of written CSV: give the delimiter another character".to_string())]);
        }
        Ok(Write { format: raw.format, columns: raw.columns().to_vec(), delimiter, header: raw.header() })
    }

    /// The file extension of this output.
    pub fn ext(&self) -> &'static str {
        match self.format {
            WriteFormat::Csv => "csv",
            WriteFormat::Json => "json",
            WriteFormat::Jsonl => "jsonl",
        }
    }
}

/// A buffered output file (shared with `render`).
pub(super) fn create(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(256 * 1024, File::create(path)?))
}

/// Flushes, fsyncs and returns the size of an output made by [`create`].
pub(super) fn finish(w: BufWriter<File>) -> io::Result<u64> {
    let f = w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(f.metadata()?.len())
}

/// Why a set of records was not written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The record cannot be written without losing a value: it is invalid. `index`: which
    /// of the set given to [`Writer::records`] (0-based).
    #[error("{message}")]
    Record { index: usize, message: String },
    /// Writing the local output failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Where the CSV output's columns come from: what a record that does not fit them is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Columns {
    /// The write step's `columns`: a deliberate choice, so other keys are left out.
    Declared,
    /// The input's header.
    Header,
    /// The first record written.
    FirstRecord,
}

/// Writes the output records.
pub struct Writer {
    path: PathBuf,
    inner: Inner,
}

enum Inner {
    // Boxed: the csv writer carries its own buffers (hundreds of bytes), the others are small.
    /// `known`: the columns as a set, for the check of every record's keys (a search of the
    /// list for each key took minutes per record of a file with 50,000 columns).
    Csv {
        w: Box<csv::Writer<BufWriter<File>>>,
        columns: Option<Vec<String>>,
        known: HashSet<String>,
        from: Columns,
        header: bool,
        /// A JSON input's keys ([`Writer::input_keys`]): the order of the columns taken from
        /// the first record.
        order: Order,
    },
    Json {
        w: BufWriter<File>,
        first: bool,
        order: Order,
    },
    Jsonl(BufWriter<File>, Order),
}

/// The order of a record's keys: the input's, in its order — a CSV input's header, or a JSON
/// input's keys as its records give them ([`Writer::input_keys`]) — then any other key (a map
/// script's) alphabetically, as a JSON object (`serde_json::Map`, sorted) keeps them.
/// `named`: the input's keys as a set.
#[derive(Default)]
struct Order {
    header: Vec<String>,
    named: HashSet<String>,
}

impl Order {
    fn new(header: Option<Vec<String>>) -> Order {
        let header = header.unwrap_or_default();
        Order { named: header.iter().cloned().collect(), header }
    }

    /// Adds `keys` not named yet, after those that are.
    fn extend(&mut self, keys: &[String]) {
        for k in keys {
            if self.named.insert(k.clone()) {
                self.header.push(k.clone());
            }
        }
    }

    /// The entries of `obj` in this order.
    fn arranged<'v>(&'v self, obj: &'v Map<String, Value>) -> impl Iterator<Item = (&'v String, &'v Value)> {
        let named = self.header.iter().filter_map(|k| obj.get_key_value(k));
        named.chain(obj.iter().filter(|(k, _)| !self.named.contains(*k)))
    }

    /// The keys of `rec` in this order (none for a record that is not an object).
    fn keys_of(&self, rec: &Value) -> Vec<String> {
        rec.as_object().map(|o| self.arranged(o).map(|(k, _)| k.clone()).collect()).unwrap_or_default()
    }

    /// Writes `rec` as compact JSON with its keys in this order.
    fn write(&self, w: &mut impl io::Write, rec: &Value) -> io::Result<()> {
        let Some(obj) = rec.as_object().filter(|_| !self.header.is_empty()) else {
            return Ok(serde_json::to_writer(w, rec)?);
        };
        w.write_all(b"{")?;
        for (i, (k, v)) in self.arranged(obj).enumerate() {
            if i > 0 {
                w.write_all(b",")?;
            }
            serde_json::to_writer(&mut *w, k)?;
            w.write_all(b":")?;
            serde_json::to_writer(&mut *w, v)?;
        }
        w.write_all(b"}")
    }
}

impl Writer {
    /// Creates the output at `path`. `columns` (CSV): known column order (the step's
    /// `columns`, else the input header), else taken from the first record. JSON and JSON
    /// Lines: the input header, whose order the keys of each record follow ([`Order`]).
    pub fn create(path: &Path, spec: &Write, columns: Option<Vec<String>>) -> io::Result<Writer> {
        let inner = match spec.format {
            WriteFormat::Csv => {
                let w = csv::WriterBuilder::new().delimiter(spec.delimiter).flexible(true).from_writer(create(path)?);
                let from = match &columns {
                    _ if !spec.columns.is_empty() => Columns::Declared,
                    Some(_) => Columns::Header,
                    None => Columns::FirstRecord,
                };
                let mut inner =
                    Inner::Csv { w: Box::new(w), columns: None, known: HashSet::new(), from, header: spec.header, order: Order::default() };
                if let Some(c) = columns {
                    inner.set_columns(c)?;
                }
                inner
            }
            WriteFormat::Json => {
                let mut w = create(path)?;
                w.write_all(b"[")?;
                Inner::Json { w, first: true, order: Order::new(columns) }
            }
            WriteFormat::Jsonl => Inner::Jsonl(create(path)?, Order::new(columns)),
        };
        Ok(Writer { path: path.to_path_buf(), inner })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A JSON input's keys no record before gave, in the order the file gives them: the keys
    /// of the records written follow that order (CSV: the columns taken from the first record
    /// written), as they follow a CSV input's header.
    pub fn input_keys(&mut self, keys: &[String]) {
        match &mut self.inner {
            Inner::Csv { order, .. } | Inner::Json { order, .. } | Inner::Jsonl(_, order) => order.extend(keys),
        }
    }

    /// Writes the records one input record became (a script may split it), all or none:
    /// in CSV, a key outside the columns (unless they are the step's declared `columns`)
    /// makes the whole set invalid instead of losing the value. Returns how many were written.
    pub fn records(&mut self, set: &[Value]) -> Result<u64, WriteError> {
        if let Inner::Csv { columns, known, from, order, .. } = &self.inner {
            // Until the first record is written, its keys are the candidate columns.
            let candidate = columns.is_none().then(|| {
                let keys = set.first().map(|r| order.keys_of(r)).unwrap_or_default();
                let known = keys.iter().cloned().collect::<HashSet<_>>();
                (keys, known)
            });
            if *from != Columns::Declared {
                let (cols, known) = match (&candidate, columns) {
                    (Some((keys, set)), _) => (keys.as_slice(), set),
                    (None, cols) => (cols.as_deref().unwrap_or_default(), known),
                };
                for (index, rec) in set.iter().enumerate() {
                    outside_columns(rec, cols, known, *from).map_err(|message| WriteError::Record { index, message })?;
                }
            }
            if let Some((keys, _)) = candidate {
                self.inner.set_columns(keys)?;
            }
        }
        for rec in set {
            self.write(rec)?;
        }
        Ok(set.len() as u64)
    }

    fn write(&mut self, rec: &Value) -> io::Result<()> {
        match &mut self.inner {
            Inner::Csv { columns: None, order, .. } => {
                let keys = order.keys_of(rec);
                self.inner.set_columns(keys)?;
                self.write(rec)
            }
            Inner::Csv { w, columns: Some(cols), .. } => {
                w.write_record(cols.iter().map(|c| cell(rec.get(c))))?;
                Ok(())
            }
            Inner::Json { w, first, order } => {
                w.write_all(if *first { b"\n" } else { b",\n" })?;
                *first = false;
                order.write(w, rec)
            }
            Inner::Jsonl(w, order) => {
                order.write(w, rec)?;
                w.write_all(b"\n")
            }
        }
    }

    /// Flushes, fsyncs and returns the size.
    pub fn finish(self) -> io::Result<u64> {
        match self.inner {
            Inner::Csv { w, .. } => finish((*w).into_inner().map_err(|e| io::Error::other(e.to_string()))?),
            Inner::Json { mut w, first, .. } => {
                w.write_all(if first { b"]\n" } else { b"\n]\n" })?;
                finish(w)
            }
            Inner::Jsonl(w, _) => finish(w),
        }
    }
}

/// A record's keys that are not among `cols` (`known`, as a set), as the reason the record is
/// invalid (a [`WriteError::Record`]'s message).
fn outside_columns(rec: &Value, cols: &[String], known: &HashSet<String>, from: Columns) -> Result<(), String> {
    let Some(obj) = rec.as_object() else { return Ok(()) };
    let extra: Vec<&str> = obj.keys().filter(|k| !known.contains(*k)).map(String::as_str).collect();
    if extra.is_empty() {
        return Ok(());
    }
    let (noun, verb) = if extra.len() == 1 { ("key", "is") } else { ("keys", "are") };
    let whence = match from {
        Columns::Header => "the input's header",
        _ => "the keys of the first record written",
    };
    let all: Vec<&str> = cols.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    Err(format!(
        "{noun} {} {verb} not among the CSV output's columns ({}), which are {whence}, and would be lost; \
         list every column in the write step's `columns` (e.g. `columns: [{}]`), or give the first record every key",
        ticked(&extra),
        ticked(cols),
        all.join(", ")
    ))
}

fn ticked<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|n| format!("`{}`", n.as_ref())).collect::<Vec<_>>().join(", ")
}

impl Inner {
    fn set_columns(&mut self, cols: Vec<String>) -> io::Result<()> {
        if let Inner::Csv { w, columns, known, header, .. } = self {
            if *header {
                w.write_record(&cols)?;
            }
            *known = cols.iter().cloned().collect();
            *columns = Some(cols);
        }
        Ok(())
    }
}

/// A CSV cell: text as is, numbers and booleans as JSON writes them, null as empty, nested
/// values as JSON text.
pub(super) fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The rejects file: invalid rows as they came in, with their row, line and errors. CSV input
/// gives a CSV file: `_row`, `_line`, `_errors`, then the input columns. The three come first
/// so they stay under their names whatever the row's width: a row with too few or too many
/// fields is copied as read, its cells under the input's columns from the left (extra cells
/// past the last column). JSON input gives JSON Lines.
pub struct Rejects {
    path: PathBuf,
    inner: RejectsInner,
}

enum RejectsInner {
    Csv(Box<csv::Writer<BufWriter<File>>>),
    Jsonl(BufWriter<File>),
}

impl Rejects {
    /// The extension for input parsed as CSV (`csv`) or JSON (`jsonl`).
    pub fn ext(csv_input: bool) -> &'static str {
        if csv_input { "csv" } else { "jsonl" }
    }

    /// Creates the file; `header` is the CSV input's header (`None` for JSON input).
    pub fn create(path: &Path, header: Option<&[String]>, delimiter: u8) -> io::Result<Rejects> {
        let inner = match header {
            Some(h) => {
                let mut w = csv::WriterBuilder::new().delimiter(delimiter).flexible(true).from_writer(create(path)?);
                w.write_record(["_row", "_line", "_errors"].into_iter().chain(h.iter().map(String::as_str)))?;
                RejectsInner::Csv(Box::new(w))
            }
            None => RejectsInner::Jsonl(create(path)?),
        };
        Ok(Rejects { path: path.to_path_buf(), inner })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, row: u64, line: Option<u64>, raw: &Raw, errors: &[String]) -> io::Result<()> {
        let line_text = line.map(|l| l.to_string()).unwrap_or_default();
        match &mut self.inner {
            RejectsInner::Csv(w) => {
                let fields: Vec<String> = match raw {
                    Raw::Fields(f) => f.clone(),
                    Raw::Json(v) => vec![v.to_string()],
                    Raw::Text(t) => vec![t.clone()],
                };
                let (row, joined) = (row.to_string(), errors.join("; "));
                w.write_record([row.as_str(), line_text.as_str(), joined.as_str()].into_iter().chain(fields.iter().map(String::as_str)))?;
                Ok(())
            }
            RejectsInner::Jsonl(w) => {
                let record = match raw {
                    Raw::Json(v) => v.clone(),
                    Raw::Text(t) => Value::String(t.clone()),
                    Raw::Fields(f) => Value::from(f.clone()),
                };
                let v = serde_json::json!({ "row": row, "line": line, "errors": errors, "record": record });
                serde_json::to_writer(&mut *w, &v)?;
                w.write_all(b"\n")
            }
        }
    }

    pub fn finish(self) -> io::Result<u64> {
        match self.inner {
            RejectsInner::Csv(w) => finish((*w).into_inner().map_err(|e| io::Error::other(e.to_string()))?),
            RejectsInner::Jsonl(w) => finish(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(format: WriteFormat) -> Write {
        Write { format, columns: vec![], delimiter: b',', header: true }
    }

    fn written(w: &mut Writer, set: &[Value]) -> Result<u64, String> {
        w.records(set).map_err(|e| match e {
            WriteError::Record { message, .. } => message,
            WriteError::Io(e) => panic!("{e}"),
        })
    }

    #[test]
    fn csv_json_and_jsonl_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let recs = [json!({"b": "x,y", "a": 1, "n": null}), json!({"a": true, "b": "line\nbreak", "extra": [1]})];
        let p = dir.path().join("o.csv");
        // Declared columns choose what is written: other keys are left out on purpose.
        let declared = Write { columns: vec!["b".into(), "a".into()], ..spec(WriteFormat::Csv) };
        let mut w = Writer::create(&p, &declared, Some(declared.columns.clone())).unwrap();
        assert_eq!(written(&mut w, &recs), Ok(2));
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b,a\n\"x,y\",1\n\"line\nbreak\",true\n");
        // Columns from the first record (sorted keys); a later record may leave some out.
        let mut w = Writer::create(&p, &spec(WriteFormat::Csv), None).unwrap();
        assert_eq!(written(&mut w, &recs[..1]), Ok(1));
        assert_eq!(written(&mut w, &[json!({"b": "line\nbreak", "a": true})]), Ok(1));
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b,n\n1,\"x,y\",\ntrue,\"line\nbreak\",\n");
        let p = dir.path().join("o.json");
        let mut w = Writer::create(&p, &spec(WriteFormat::Json), None).unwrap();
        written(&mut w, &recs).unwrap();
        w.finish().unwrap();
        let back: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(back, recs);
        let w = Writer::create(&p, &spec(WriteFormat::Json), None).unwrap();
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "[]\n");
        let p = dir.path().join("o.jsonl");
        let mut w = Writer::create(&p, &spec(WriteFormat::Jsonl), None).unwrap();
        written(&mut w, &recs).unwrap();
        assert_eq!(w.finish().unwrap(), std::fs::metadata(&p).unwrap().len());
        assert_eq!(std::fs::read_to_string(&p).unwrap().lines().count(), 2);
    }

    /// JSON output keeps the input header's order (it was alphabetical): `id` before `name`
    /// and `email`; a key the header does not name (a map script's) follows, alphabetically.
    #[test]
    fn json_keys_follow_the_input_header() {
        let dir = tempfile::tempdir().unwrap();
        let header = Some(vec!["id".to_string(), "name".into(), "email".into()]);
        let recs = [
            json!({"email": "a@x", "name": "Ann", "id": "1", "z": 1, "dept": {"b": 1, "a": [2]}}),
            json!({"name": "Bo", "id": "2"}),
            json!([1]),
        ];
        let p = dir.path().join("o.jsonl");
        let mut w = Writer::create(&p, &spec(WriteFormat::Jsonl), header.clone()).unwrap();
        written(&mut w, &recs).unwrap();
        w.finish().unwrap();
        let lines = r#"{"id":"1","name":"Ann","email":"a@x","dept":{"a":[2],"b":1},"z":1}
{"id":"2","name":"Bo"}
[1]
"#;
        assert_eq!(std::fs::read_to_string(&p).unwrap(), lines);
        let p = dir.path().join("o.json");
        let mut w = Writer::create(&p, &spec(WriteFormat::Json), header).unwrap();
        written(&mut w, &recs[..2]).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, format!("[\n{}\n]\n", lines.lines().take(2).collect::<Vec<_>>().join(",\n")));
        assert_eq!(serde_json::from_str::<Vec<Value>>(&text).unwrap(), recs[..2]);
    }

    #[test]
    fn csv_output_never_drops_a_key_outside_its_columns() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("o.csv");
        // The QA case: `c` of the second record was silently lost.
        let mut w = Writer::create(&p, &spec(WriteFormat::Csv), None).unwrap();
        assert_eq!(written(&mut w, &[json!({"a": 1, "b": "x"})]), Ok(1));
        let e = written(&mut w, &[json!({"a": 2, "c": "LOST"})]).unwrap_err();
        assert_eq!(
            e,
            "key `c` is not among the CSV output's columns (`a`, `b`), which are the keys of the first record written, \
             and would be lost; list every column in the write step's `columns` (e.g. `columns: [a, b, c]`), or give the \
             first record every key"
        );
        // A record split into parts is written whole or not at all.
        let e = written(&mut w, &[json!({"a": 3}), json!({"a": 4, "part": 2, "extra": true})]).unwrap_err();
        assert!(e.starts_with("keys `extra`, `part` are not among"), "{e}");
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a,b\n1,x\n");
        // A rejected first record does not choose the columns.
        let mut w = Writer::create(&p, &spec(WriteFormat::Csv), None).unwrap();
        assert!(written(&mut w, &[json!({"a": 1}), json!({"b": 2})]).is_err());
        assert_eq!(written(&mut w, &[json!({"b": 1}), json!({"b": 2})]), Ok(2));
        w.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b\n1\n2\n");
        // Columns from the input header say so.
        let mut w = Writer::create(&p, &spec(WriteFormat::Csv), Some(vec!["id".into()])).unwrap();
        let e = written(&mut w, &[json!({"id": 1, "z": 2})]).unwrap_err();
        assert!(e.contains("(`id`), which are the input's header"), "{e}");
    }

    #[test]
    fn rejects_keep_the_original_row_and_the_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        let mut r = Rejects::create(&p, Some(&["id".into(), "email".into()]), b',').unwrap();
        r.write(2, Some(3), &Raw::Fields(vec!["1".into(), "bad".into()]), &["e".into()]).unwrap();
        // Ragged rows: `_row`, `_line` and `_errors` stay under their names (they were shifted
        // left or right by the row's own width); the cells line up from the left.
        r.write(3, Some(4), &Raw::Fields(vec!["7".into(), "bad".into(), "extra".into()]), &["a".into(), "b".into()]).unwrap();
        r.write(4, Some(6), &Raw::Fields(vec!["8".into()]), &["c".into()]).unwrap();
        r.finish().unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text, "_row,_line,_errors,id,email\n2,3,e,1,bad\n3,4,a; b,7,bad,extra\n4,6,c,8\n");
        let mut rd = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let head = rd.headers().unwrap().clone();
        for rec in rd.records() {
            let rec = rec.unwrap();
            let named = |n: &str| rec.get(head.iter().position(|h| h == n).unwrap()).unwrap().to_string();
            assert!(named("_row").parse::<u64>().is_ok() && named("_line").parse::<u64>().is_ok(), "{rec:?}");
            assert!(["e", "a; b", "c"].contains(&named("_errors").as_str()), "{rec:?}");
            assert!(named("id").parse::<u64>().is_ok(), "{rec:?}");
        }
        let p = dir.path().join("r.jsonl");
        let mut r = Rejects::create(&p, None, b',').unwrap();
        r.write(2, None, &Raw::Json(json!({"id": 1})), &["x".into()]).unwrap();
        r.finish().unwrap();
        let v: Value = serde_json::from_str(std::fs::read_to_string(&p).unwrap().trim()).unwrap();
        assert_eq!(v, json!({"row": 2, "line": null, "errors": ["x"], "record": {"id": 1}}));
    }
}
