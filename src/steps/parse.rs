//! `parse`: read a staged file as records, one at a time — CSV, a JSON array of objects, or
//! JSON Lines — in any text encoding, handing each to a callback.
//!
//! Owns text decoding ([`Decoded`]), CSV dialects, trailer rows and the positions (record
//! number, line) every later error is reported with. Memory is bounded by the largest single
//! record, never by the file: nothing here collects records. It knows nothing of schemas,
//! scripts or policies.

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use encoding_rs::{DecoderResult, Encoding};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::unique_keys;
use crate::config::raw_steps::{ParseFormat, RawParse};

/// The longest JSON Lines line or CSV record accepted (a bound on memory per record).
const MAX_LINE: u64 = 64 * 1024 * 1024;

/// The most fields a CSV record may have: each costs ~100 bytes once read (its text, its name
/// and value in the record's map), so 64 MiB of delimiters took gigabytes. Spreadsheets stop
/// at 16,384 columns.
const MAX_FIELDS: u64 = 100_000;

/// A built `parse` step.
#[derive(Debug, Clone)]
pub struct Parse {
    pub format: ParseFormat,
    pub header: bool,
    pub columns: Vec<String>,
    pub delimiter: u8,
    pub quote: u8,
    pub encoding: &'static Encoding,
    pub trailer: Option<Trailer>,
}

/// A CSV trailer row: `marker` in the first field, the expected record count in `count_column` (0-based).
#[derive(Debug, Clone)]
pub struct Trailer {
    pub marker: String,
    pub count_column: usize,
}

/// The original form of a record, for the rejects file.
#[derive(Debug, Clone)]
pub enum Raw {
    /// CSV fields as read (after decoding).
    Fields(Vec<String>),
    /// A JSON value (a JSON array element or a JSON Lines line that parsed).
    Json(Value),
    /// A JSON Lines line that did not parse.
    Text(String),
}

/// One record as read.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based record number (the header and trailer are not records).
    pub number: u64,
    /// 1-based line where the record starts (JSON arrays: not known).
    pub line: Option<u64>,
    /// The record as a JSON object, or why the row is malformed.
    pub value: Result<Value, String>,
    pub raw: Raw,
}

/// What the parser hands to its consumer.
pub enum Event {
    /// The CSV column names (from the header row or `columns`), before any row.
    Header(Vec<String>),
    /// JSON input: keys no record before gave, in the order the record holding them gives
    /// them, before that record's row: the first record's keys, then each new one as it
    /// appears ([`KeyOrder`]). The partner's column order, which a record (a `Map`) loses.
    Keys(Vec<String>),
    Row(Row),
}

/// The order of the keys of a JSON input's records, as the file gives them: those of the first
/// record, then each key a later one adds, where it first appears.
#[derive(Default)]
struct KeyOrder {
    seen: std::collections::HashSet<String>,
}

impl KeyOrder {
    /// Hands `keys` (a record's, in its order) not seen before to `each` as [`Event::Keys`].
    fn note(&mut self, keys: Vec<String>, each: &mut dyn FnMut(Event) -> Result<(), Stop>) -> Result<(), Stop> {
        let new: Vec<String> = keys.into_iter().filter(|k| !self.seen.contains(k)).collect();
        if new.is_empty() {
            return Ok(());
        }
        self.seen.extend(new.iter().cloned());
        each(Event::Keys(new))
    }
}

/// Why reading stopped early: the consumer asked to, or the file is unreadable as configured.
#[derive(Debug)]
pub enum Stop {
    /// The consumer stopped (its reason is its own business).
    Consumer,
    /// The file cannot be read as records: bad encoding, broken JSON, a missing trailer…
    File(String),
    /// Reading the local staging file failed.
    Io(io::Error),
}

/// What a completed read learned about the file as a whole.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The count a trailer row announced.
    pub trailer_count: Option<u64>,
}

/// Reads `path` as records, calling `each` for the header (CSV) and every record, in order.
/// A file that starts like a packed or binary format (an Excel workbook, a gzip file:
/// [`super::check::not_text`]) is refused before anything is decoded, in every encoding.
pub fn read(p: &Parse, path: &Path, each: &mut dyn FnMut(Event) -> Result<(), Stop>) -> Result<Summary, Stop> {
    let mut head = [0u8; 16];
    let n = super::check::read_prefix(path, &mut head).map_err(Stop::Io)?;
    if let Some((what, advice)) = super::check::not_text(&head[..n]) {
        let first = hex::encode(&head[..n.min(8)]);
        return Err(Stop::File(format!("the file is {what}, not text (its first bytes are {first}): {advice}")));
    }
    let file = std::fs::File::open(path).map_err(Stop::Io)?;
    let text = BufReader::with_capacity(256 * 1024, Decoded::new(file, p.encoding));
    match p.format {
        ParseFormat::Csv => read_csv(p, text, each),
        ParseFormat::Json => read_json(text, MAX_LINE, each).map(|()| Summary::default()),
        ParseFormat::Jsonl => read_jsonl(text, each).map(|()| Summary::default()),
    }
}

/// Turns an I/O error from the decoded stream into a file problem (bad encoding) or an I/O stop.
fn io_stop(e: io::Error) -> Stop {
    if e.kind() == io::ErrorKind::InvalidData { Stop::File(e.to_string()) } else { Stop::Io(e) }
}

/// Plain words for what the csv crate reports (its own `Debug` and `Display` forms read `Utf8 {
/// pos: Some(Position { … }) … }` and `CSV parse error: record 2 (line 3, field: 1, byte: 40)`),
/// as they may reach a partner's quarantine report. Rows (a header row included) and fields
/// count from 1; rows, not lines, as the crate counts a record's line from any blank lines
/// before it.
pub(crate) fn csv_cause(kind: &csv::ErrorKind) -> String {
    let at = |pos: &Option<csv::Position>| pos.as_ref().map(|p| format!("row {}: ", p.record() + 1)).unwrap_or_default();
    match kind {
        csv::ErrorKind::Io(e) => e.to_string(),
        csv::ErrorKind::Utf8 { pos, err } => format!("{}field {} is not UTF-8 text", at(pos), err.field() + 1),
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            let fields = |n: u64| if n == 1 { "1 field".to_string() } else { format!("{n} fields") };
            format!("{}{} where the first row has {}", at(pos), fields(*len), fields(*expected_len))
        }
        csv::ErrorKind::Seek => "the header row cannot be read after jumping into the file".into(),
        csv::ErrorKind::Serialize(why) => format!("cannot write the row as CSV: {why}"),
        csv::ErrorKind::Deserialize { pos, err } => {
            let field = err.field().map(|f| format!("field {}: ", f + 1)).unwrap_or_default();
            format!("{}{field}{}", at(pos), err.kind())
        }
        // A kind added by a later csv release: its shape is better than nothing.
        other => format!("unreadable CSV ({other:?})"),
    }
}

fn read_csv(p: &Parse, text: impl Read, each: &mut dyn FnMut(Event) -> Result<(), Stop>) -> Result<Summary, Stop> {
    // `flexible(true)`: a row with the wrong number of fields is then still handed over whole,
    // so it can be reported with its line *and* copied to the rejects file; the length rule
    // is enforced below, per row, against the header.
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(p.delimiter)
        .quote(p.quote)
        .double_quote(true)
        .from_reader(Scan::new(text, p.delimiter, p.quote));
    let mut record = csv::StringRecord::new();
    let csv_stop = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) => io_stop(e),
        other => Stop::File(csv_cause(&other)),
    };
    // Reads the next record and its line; an unclosed quote at the end of the input fails the
    // file: the csv crate would hand out the rest of the file as one cell.
    let mut next = |record: &mut csv::StringRecord| -> Result<Option<(u64, Option<u64>)>, Stop> {
        let more = rdr.read_record(record).map_err(csv_stop)?;
        if let Some(line) = rdr.get_ref().unclosed_quote() {
            return Err(Stop::File(format!(
                "the quoted field opened on line {line} is never closed: a closing `{}` is missing or the file is cut off",
                char::from(p.quote)
            )));
        }
        Ok(more.then(|| rdr.get_mut().line_of(record.position().map_or(0, csv::Position::byte))))
    };
    // The first line with something on it is the header, or the first record of a file
    // without one: the csv crate skips empty lines, and lines of nothing but spaces are passed
    // over too (they read as one blank column: a header of it made a file of them delivered as
    // no records, and in a header-less file each was a rejected row). Without such a line the
    // file is empty, with a header row or without, as a JSON file of nothing but whitespace.
    let start = loop {
        let Some(at) = next(&mut record)? else {
            return Err(empty_file());
        };
        if !(record.len() == 1 && record[0].trim().is_empty()) {
            break at;
        }
    };
    // A pending row's fields, line, and line of a quoted field with text after its quote.
    type Pending = (Vec<String>, (u64, Option<u64>));
    let (mut header, mut pending): (Vec<String>, Option<Pending>) = if p.header {
        (record.iter().map(|h| h.trim().to_string()).collect(), None)
    } else {
        (p.columns.clone(), Some((record.iter().map(str::to_string).collect(), start)))
    };
    // Declared `columns` (no header) are checked when the flow is loaded.
    let width = header.len();
    let trailing = p.header && settle_header(&mut header).map_err(Stop::File)?;
    if let Some((first, again)) = repeated(&header) {
        let (a, b) = (first + 1, again + 1);
        return Err(Stop::File(format!("the header names column `{}` twice (columns {a} and {b})", header[again])));
    }
    each(Event::Header(header.clone()))?;
    let mut number = 0u64;
    // One row of look-ahead (`pending`): only at the end is it known which row is the last
    // (the trailer).
    // A line of nothing but spaces is a blank line too when the header has several columns
    // (it cannot be a row of them): passed over as the csv crate passes over empty lines, not
    // a rejected row — nor, after a trailer, the "last row" that is not one.
    let blank = |r: &csv::StringRecord| width > 1 && r.len() == 1 && r[0].trim().is_empty();
    loop {
        let mut line = next(&mut record)?;
        while line.is_some() && blank(&record) {
            line = next(&mut record)?;
        }
        if let Some((fields, (at, stray))) = pending.take() {
            if line.is_none()
                && let Some(t) = &p.trailer
            {
                return trailer(t, &fields, at);
            }
            if let Some(t) = p.trailer.as_ref().filter(|t| announces(t, &fields).is_some()) {
                return Err(Stop::File(trailer_inside(&fields, at, p.delimiter, &t.marker)));
            }
            number += 1;
            let mut row = csv_row(&header, trailing, fields, number, at);
            if let Some(opened) = stray.filter(|_| row.value.is_ok()) {
                row.value = Err(text_after_quote(opened, p.quote));
            }
            each(Event::Row(row))?;
        }
        let Some(line) = line else { break };
        pending = Some((record.iter().map(str::to_string).collect(), line));
    }
    match &p.trailer {
        Some(t) => Err(Stop::File(format!("the file has no trailer row (a last row starting with `{}`): it may be incomplete", t.marker))),
        None => Ok(Summary::default()),
    }
}

/// A header read from a file, its blank cells settled: a blank cell names nothing (it was a
/// column named ``, a `""` key in JSON output that no schema names well). The last one is a
/// trailing delimiter (`a,b,` on every line, as some exports write): it is no column (popped
/// here), and a row's blank cell under it no value. Anywhere else the header is broken:
/// [`blank_header_cell`] names the column. Returns whether a trailing one was popped.
pub(crate) fn settle_header(header: &mut Vec<String>) -> Result<bool, String> {
    let trailing = header.len() > 1 && header.last().is_some_and(String::is_empty);
    if trailing {
        header.pop();
    }
    match header.iter().position(String::is_empty) {
        Some(i) => Err(blank_header_cell(i)),
        None => Ok(trailing),
    }
}

/// Why a header with a blank cell at (0-based) `i` is refused.
fn blank_header_cell(i: usize) -> String {
    format!("column {} of the header has no name (a blank header cell): its values could not be named", i + 1)
}

/// The first name given again in `names`: where it was first and where again (0-based). In
/// one pass: comparing each name with those before it took hours on a header of a million
/// columns (a partner file of one very long line, say), a hang.
pub(crate) fn repeated(names: &[String]) -> Option<(usize, usize)> {
    let mut seen = std::collections::HashMap::with_capacity(names.len());
    names.iter().enumerate().find_map(|(i, name)| seen.insert(name.as_str(), i).map(|first| (first, i)))
}

/// The record count a row announces when it is a trailer row by `t`: the marker in its first
/// field and a count in its count column.
fn announces(t: &Trailer, fields: &[String]) -> Option<u64> {
    marked(t, fields).then(|| fields.get(t.count_column)?.trim().parse().ok()).flatten()
}

/// Whether `fields` start with `t`'s marker.
fn marked(t: &Trailer, fields: &[String]) -> bool {
    fields.first().map(|f| f.trim()) == Some(t.marker.as_str())
}

/// Why a file with a trailer row (`fields`, on `line`) before its last row is refused: its
/// records after it would be counted against the trailer at the end, the rows before it
/// against none, and the trailer itself taken for a record. Two files joined (`cat a b`), or
/// one appended to twice.
fn trailer_inside(fields: &[String], line: u64, delimiter: u8, marker: &str) -> String {
    let row = fields.join(&char::from(delimiter).to_string());
    let shown = crate::text::one_line(&crate::text::visible(&row), 60, crate::text::Keep::Start);
    format!(
        "line {line} is a trailer row (`{shown}`) but not the last row: two files joined? A file has one trailer (a row starting with `{marker}`), at its end"
    )
}

fn trailer(t: &Trailer, fields: &[String], line: u64) -> Result<Summary, Stop> {
    if !marked(t, fields) {
        return Err(Stop::File(format!(
            "line {line}: the last row is not a trailer (its first field is not `{}`): the file may be incomplete",
            t.marker
        )));
    }
    let text = fields.get(t.count_column).map(|f| f.trim()).unwrap_or("");
    let count = text
        .parse::<u64>()
        .map_err(|_| Stop::File(format!("line {line}: the trailer's field {} is `{text}`, not a record count", t.count_column + 1)))?;
    Ok(Summary { trailer_count: Some(count) })
}

/// Why a row is invalid whose quoted field (opened on line `opened`) has text after its closing
/// quote (`"Quoted" tail`): the csv crate reads it as `Quoted tail`, its quotes dropped.
fn text_after_quote(opened: u64, quote: u8) -> String {
    let q = char::from(quote);
    format!(
        "the quoted field opened on line {opened} has text after its closing `{q}`, and would be read without its quotes: \
         a field holding a `{q}` is quoted whole, each `{q}` inside doubled (`{q}{q}{q}Quoted{q}{q} tail{q}` for `{q}Quoted{q} tail`)"
    )
}

/// A CSV row as a record under `header`. `trailing`: the header line ended in a delimiter
/// (a blank last cell, not among `header`): a row may have one cell more, if it is blank.
fn csv_row(header: &[String], trailing: bool, fields: Vec<String>, number: u64, line: u64) -> Row {
    let (n, h) = (fields.len(), header.len());
    let value = if trailing && n == h + 1 && !fields[h].trim().is_empty() {
        Err(format!("field {n} holds {}, but the header gives it no column name (a blank header cell)", super::excerpt(&fields[h])))
    } else if n != h && !(trailing && n == h + 1) {
        let fields = if n == 1 { "field" } else { "fields" };
        Err(format!("{n} {fields}, expected {h} (as in the header): {}", if n > h { "too many" } else { "too few" }))
    } else {
        let map: Map<String, Value> = header.iter().cloned().zip(fields.iter().cloned().map(Value::String)).collect();
        Ok(Value::Object(map))
    };
    Row { number, line: Some(line), value, raw: Raw::Fields(fields) }
}

/// Reads a JSON array element by element; an element longer than `max` bytes ([`MAX_LINE`];
/// smaller in tests) stops the file, as a CSV record or JSON line that long does: an element
/// is held whole in memory (several times its size, as a `Value`), so one 1 GiB object would
/// otherwise take gigabytes.
fn read_json(text: impl Read, max: u64, each: &mut dyn FnMut(Event) -> Result<(), Stop>) -> Result<(), Stop> {
    let mut stopped: Option<Stop> = None;
    // The first byte that is not JSON whitespace, once read.
    let first = Cell::new(None);
    let at =
        Position { offset: Cell::new(0), start: Cell::new(0), number: Cell::new(0), max, lines: Cell::new(1), first_line: Cell::new(None) };
    let mut de = serde_json::Deserializer::from_reader(Blank { inner: text, first: &first, at: &at });
    let seed = Elements { each, stopped: &mut stopped, at: &at, order: KeyOrder::default() };
    let result = seed.deserialize(&mut de).and_then(|()| de.end());
    if let Some(s) = stopped {
        return Err(s);
    }
    result.map_err(|e| match e.classify() {
        serde_json::error::Category::Io => io_stop(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        // Said plainly: serde's "EOF while parsing a value at line 1 column 0" reached
        // partners' quarantine reports.
        serde_json::error::Category::Eof if first.get().is_none() => empty_file(),
        // Not an array at all, so the error is about its start: two common shapes, said so.
        _ if first.get() == Some(b'{') => Stop::File(format!(
            "not a JSON array of objects: the file starts with an object ({e}); a file of one object per line is \
             JSON Lines (`format: jsonl`), and records wrapped in an object (`{{\"items\": [...]}}`) cannot be read"
        )),
        _ => Stop::File(format!("not a JSON array of objects: {e}")),
    })
}

/// Where reading a JSON array is: shared by the reader (which counts) and the visitor (which
/// marks where each element starts).
struct Position {
    /// Bytes passed on so far.
    offset: Cell<u64>,
    /// Offset where the element being read started.
    start: Cell<u64>,
    /// The number of the element being read (1-based).
    number: Cell<u64>,
    max: u64,
    /// The line the reader is on (1-based).
    lines: Cell<u64>,
    /// The line the element being read begins on, once its first byte was passed on (the
    /// whitespace and comma before it do not count).
    first_line: Cell<Option<u64>>,
}

/// Passes text on, noting in `first` the first byte that is not JSON whitespace, and
/// refusing to pass on more than `at.max` bytes of one element.
struct Blank<'a, R> {
    inner: R,
    first: &'a Cell<Option<u8>>,
    at: &'a Position,
}

impl<R: Read> Read for Blank<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.at;
        if at.offset.get() - at.start.get() > at.max {
            let size = if at.max >= 1 << 20 { format!("{} MiB", at.max >> 20) } else { format!("{} KiB", at.max >> 10) };
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                // serde_json adds where it stopped: ` at line 1 column 67108866`.
                format!("record {} of the array is longer than {size}", at.number.get()),
            ));
        }
        let n = self.inner.read(buf)?;
        at.offset.set(at.offset.get() + n as u64);
        for &b in &buf[..n] {
            if at.first_line.get().is_none() && !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | b'[') {
                at.first_line.set(Some(at.lines.get()));
            }
            if b == b'\n' {
                at.lines.set(at.lines.get() + 1);
            }
        }
        if self.first.get().is_none() {
            self.first.set(buf[..n].iter().copied().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r')));
        }
        Ok(n)
    }
}

/// Streams the elements of a top-level JSON array into the consumer, one at a time.
struct Elements<'a, 'b> {
    each: &'a mut dyn FnMut(Event) -> Result<(), Stop>,
    stopped: &'b mut Option<Stop>,
    at: &'a Position,
    order: KeyOrder,
}

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of objects")
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut number = 0;
        loop {
            self.at.start.set(self.at.offset.get());
            self.at.number.set(number + 1);
            self.at.first_line.set(None);
            let mut tally = unique_keys::Tally::default();
            let Some(v) = seq.next_element_seed(unique_keys::Checked { tally: &mut tally })? else { break };
            number += 1;
            if let Err(s) = self.order.note(std::mem::take(&mut tally.keys), self.each) {
                *self.stopped = Some(s);
                return Err(serde::de::Error::custom("stopped"));
            }
            let value = match tally.twice {
                Some(t) => Err(t.to_string()),
                None if v.is_object() => Ok(v.clone()),
                None => Err(format!("expected an object, found {}", kind(&v))),
            };
            let line = self.at.first_line.get();
            if let Err(s) = (self.each)(Event::Row(Row { number, line, value, raw: Raw::Json(v) })) {
                *self.stopped = Some(s);
                return Err(serde::de::Error::custom("stopped"));
            }
        }
        Ok(())
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A hint when the first line of a CSV file (`what`: `header` or `first record`) was read as
/// one column holding another common separator than `delimiter`: the usual first mistake (a
/// `;`-separated file read with the default `,`), after which every field but one is missing
/// and a script sees `()` for each. Appended to whatever the file is refused for.
pub(crate) fn delimiter_hint(what: &str, fields: &[String], delimiter: u8) -> Option<String> {
    let [only] = fields else { return None };
    let sep = [';', '\t', '|', ','].into_iter().find(|&c| c != char::from(delimiter) && only.contains(c))?;
    let shown = crate::text::one_line(&crate::text::visible(only), 60, crate::text::Keep::Start);
    let set = sep.escape_default();
    Some(format!("the {what} is one column `{shown}`: is the delimiter `{set}`? (set `delimiter: '{set}'`)"))
}

/// Why a file with nothing but blanks on it (or nothing at all) is refused, in every format.
fn empty_file() -> Stop {
    Stop::File("the file is empty".into())
}

fn read_jsonl(mut text: impl BufRead, each: &mut dyn FnMut(Event) -> Result<(), Stop>) -> Result<(), Stop> {
    let mut buf = Vec::new();
    let (mut line, mut number) = (0u64, 0u64);
    let mut order = KeyOrder::default();
    loop {
        buf.clear();
        let n = (&mut text).take(MAX_LINE + 1).read_until(b'\n', &mut buf).map_err(io_stop)?;
        if n == 0 {
            // No line with something on it: empty, as a CSV or JSON file of nothing but blanks
            // (before: delivered as a file of no records).
            return if number == 0 { Err(empty_file()) } else { Ok(()) };
        }
        line += 1;
        if buf.len() as u64 > MAX_LINE {
            return Err(Stop::File(format!("line {line} is longer than {} MiB", MAX_LINE >> 20)));
        }
        // Decoded text is UTF-8 by construction.
        let text = String::from_utf8_lossy(&buf);
        let s = text.trim();
        if s.is_empty() {
            continue;
        }
        let lead = text.len() - text.trim_start().len();
        number += 1;
        // A first line that opens an array: the file is likely one JSON array, not JSON Lines.
        let hint = if number == 1 && s.starts_with('[') { "; the file may be one JSON array (`format: json`), not JSON Lines" } else { "" };
        let mut tally = unique_keys::Tally::default();
        let mut de = serde_json::Deserializer::from_str(s);
        let read = unique_keys::read(&mut de, &mut tally).and_then(|v| de.end().map(|()| v));
        if read.is_ok() {
            order.note(std::mem::take(&mut tally.keys), each)?;
        }
        let row = match (read, tally.twice) {
            // The line as written: the value kept only one of the key's values.
            (Ok(_), Some(t)) => Row { number, line: Some(line), value: Err(t.to_string()), raw: Raw::Text(s.to_string()) },
            (Ok(v), None) if v.is_object() => Row { number, line: Some(line), value: Ok(v.clone()), raw: Raw::Json(v) },
            (Ok(v), None) => {
                Row { number, line: Some(line), value: Err(format!("expected an object, found {}{hint}", kind(&v))), raw: Raw::Json(v) }
            }
            (Err(e), _) => {
                // serde counts in the one line it was given: "at line 1 column 8" of line 5.
                let why = e.to_string();
                let why = why.strip_suffix(&format!(" at line {} column {}", e.line(), e.column())).unwrap_or(&why);
                let value = Err(format!("not JSON: {why} at column {}{hint}", e.column() + lead));
                Row { number, line: Some(line), value, raw: Raw::Text(s.to_string()) }
            }
        };
        each(Event::Row(row))?;
    }
}

/// Follows the bytes the CSV reader takes in, by the same RFC 4180 rules as the csv crate
/// (a quote opens a quoted field only at the start of a field; `""` inside one is a quote;
/// CR, LF and CRLF end a record; blank lines are not records), to learn what the crate does
/// not say:
///
/// - the line each record starts on. The crate counts LF only, so every record of a file
///   with old-Mac CR line ends would be on line 1, and it counts a CRLF's LF on the next
///   record. Lines here end at LF, CR or CRLF, inside quoted fields too. The bytes are passed
///   on unchanged, so a CRLF inside a quoted cell stays a CRLF;
/// - whether the input ended inside a quoted field (the crate accepts that, and the rest of
///   the file becomes one cell), and on which line that field opened;
/// - a record longer than [`MAX_LINE`]: reading stops there, so memory stays bounded even
///   when a missing quote would make the rest of a 1 GiB file one field.
///
/// Memory: the start of every record read ahead but not yet handed out (the csv reader's
/// buffer holds a few KiB).
struct Scan<R> {
    inner: R,
    delimiter: u8,
    quote: u8,
    /// The longest record ([`MAX_LINE`]; smaller in tests).
    max: u64,
    state: State,
    /// Offset (in the bytes passed on) of the next byte.
    offset: u64,
    /// The line of the next byte (1-based).
    line: u64,
    prev_cr: bool,
    /// Where every record seen and not yet asked for starts: its first byte's offset and line,
    /// and the line of a quoted field of it with text after its closing quote ([`State::AfterQuoted`]).
    starts: VecDeque<(u64, u64, Option<u64>)>,
    /// Offset of the current record's first byte.
    record_at: u64,
    /// Line of the current record's first byte.
    record_line: u64,
    /// Line where the current quoted field opened.
    quote_line: u64,
    /// Delimiters of the current record so far (its fields, less one).
    delimiters: u64,
    eof: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a record: line ends here are blank lines.
    RecordStart,
    FieldStart,
    Field,
    Quoted,
    /// A quote inside a quoted field: the field's end, or the first half of `""`.
    QuoteInQuoted,
    /// Spaces or tabs after a quoted field's closing quote (`"a" ;`): harmless, the csv crate
    /// keeps them. Other text there (`"Quoted" tail`) is read as `Quoted tail`, its quotes
    /// lost: the record is marked.
    AfterQuoted,
}

impl<R: Read> Scan<R> {
    fn new(inner: R, delimiter: u8, quote: u8) -> Self {
        Scan {
            inner,
            delimiter,
            quote,
            max: MAX_LINE,
            state: State::RecordStart,
            offset: 0,
            line: 1,
            prev_cr: false,
            starts: VecDeque::new(),
            record_at: 0,
            record_line: 1,
            quote_line: 0,
            delimiters: 0,
            eof: false,
        }
    }

    /// The line of the record the csv reader reports at byte offset `at` (its position: where
    /// it stopped after the previous record, possibly before line ends it skips). Records are
    /// asked for in order.
    /// Also the line of a quoted field of the record with text after its closing quote.
    fn line_of(&mut self, at: u64) -> (u64, Option<u64>) {
        while self.starts.front().is_some_and(|(o, ..)| *o < at) {
            self.starts.pop_front();
        }
        // The csv reader returns a record only after reading all of it through `self`.
        self.starts.pop_front().map_or((self.line, None), |(_, line, stray)| (line, stray))
    }

    /// The line of a quoted field still open at the end of the input.
    fn unclosed_quote(&self) -> Option<u64> {
        (self.eof && self.state == State::Quoted).then_some(self.quote_line)
    }

    fn scan(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &b in bytes {
            let end = b == b'\n' || b == b'\r';
            if self.state == State::RecordStart && !end {
                self.starts.push_back((self.offset, self.line, None));
                (self.record_at, self.record_line) = (self.offset, self.line);
                self.state = State::FieldStart;
                self.delimiters = 0;
            }
            self.state = match self.state {
                State::RecordStart => State::RecordStart,
                State::FieldStart if b == self.quote => {
                    self.quote_line = self.line;
                    State::Quoted
                }
                State::Quoted if b == self.quote => State::QuoteInQuoted,
                State::Quoted => State::Quoted,
                State::QuoteInQuoted if b == self.quote => State::Quoted,
                State::FieldStart | State::Field | State::QuoteInQuoted | State::AfterQuoted if b == self.delimiter => State::FieldStart,
                State::FieldStart | State::Field | State::QuoteInQuoted | State::AfterQuoted if end => State::RecordStart,
                State::QuoteInQuoted | State::AfterQuoted if b == b' ' || b == b'\t' => State::AfterQuoted,
                State::QuoteInQuoted | State::AfterQuoted => {
                    // The current record is the last one seen.
                    if let Some((.., stray @ None)) = self.starts.back_mut() {
                        *stray = Some(self.quote_line);
                    }
                    State::Field
                }
                State::FieldStart | State::Field => State::Field,
            };
            if b == self.delimiter && self.state == State::FieldStart {
                self.delimiters += 1;
                if self.delimiters >= MAX_FIELDS {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("the record on line {} has more than {MAX_FIELDS} fields", self.record_line),
                    ));
                }
            }
            if b == b'\r' || (b == b'\n' && !self.prev_cr) {
                self.line += 1;
            }
            self.prev_cr = b == b'\r';
            self.offset += 1;
            if self.state != State::RecordStart && self.offset - self.record_at > self.max {
                let mib = self.max >> 20;
                let why = if matches!(self.state, State::Quoted | State::QuoteInQuoted) {
                    format!(
                        "the quoted field opened on line {} runs on for more than {mib} MiB: a closing `{}` is probably missing",
                        self.quote_line,
                        char::from(self.quote)
                    )
                } else {
                    format!("the record on line {} is longer than {mib} MiB", self.record_line)
                };
                return Err(io::Error::new(io::ErrorKind::InvalidData, why));
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Scan<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(out)?;
        if n == 0 && !out.is_empty() {
            self.eof = true;
        }
        self.scan(&out[..n])?;
        Ok(n)
    }
}

/// A reader that decodes `inner` from `encoding` to UTF-8 as it goes.
///
/// Input is checked strictly in every encoding: bytes it cannot map are an error naming the
/// line and byte offset, with a hint at `encoding` (they were replaced by U+FFFD in encodings
/// other than UTF-8, and the file delivered so: a UTF-16 file with half a character, a
/// Shift_JIS one cut in a character). Under UTF-8, NUL bytes — UTF-16 without a byte-order
/// mark, most likely — are an error too. In every encoding a byte-order mark switches to the
/// encoding it announces, and is dropped.
pub struct Decoded<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    /// What the errors tell the reader to do.
    fix: Fix,
    input: Box<[u8]>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    output: Box<[u8]>,
    out_pos: usize,
    out_len: usize,
    done: bool,
    consumed: u64,
    /// The line ends (LF, CR, CRLF) decoded so far, to say where invalid bytes are.
    line_ends: u64,
    prev_cr: bool,
}

/// What to do about a file that is not UTF-8: depends on who reads it.
#[derive(Debug, Clone, Copy)]
enum Fix {
    /// A parse step's input: its `encoding` can be set.
    EncodingSetting,
    /// A look-up table: read as UTF-8 only, it has no `encoding` to set.
    SaveAsUtf8,
}

impl Fix {
    /// Advice for a file holding NUL bytes (UTF-16 without a byte-order mark, most likely).
    fn for_nul(self) -> &'static str {
        match self {
            Fix::EncodingSetting => "set `encoding` in the parse step (`utf-16le` or `utf-16be`)",
            Fix::SaveAsUtf8 => "save the table as UTF-8 (a look-up table has no `encoding` setting)",
        }
    }

    /// Advice for a file with bytes that are not valid in its encoding (`utf8`: read as UTF-8).
    fn for_invalid(self, utf8: bool) -> &'static str {
        match self {
            Fix::EncodingSetting if utf8 => "if it is Latin-1 or Windows-1252, set `encoding` in the parse step",
            Fix::EncodingSetting => "it may be in another encoding, or cut off",
            Fix::SaveAsUtf8 => "save the table as UTF-8 (a look-up table has no `encoding` setting)",
        }
    }
}

impl<R: Read> Decoded<R> {
    /// A look-up table's reader: UTF-8, whose errors say to save the table as UTF-8.
    pub fn table(inner: R) -> Self {
        Decoded { fix: Fix::SaveAsUtf8, ..Decoded::new(inner, encoding_rs::UTF_8) }
    }

    pub fn new(inner: R, encoding: &'static Encoding) -> Self {
        // BOM sniffing for every encoding: a UTF-16 file with its byte-order mark is read as
        // UTF-16 even where `encoding` is left at `utf-8` (it was refused as "not valid UTF-8
        // (byte offset 0)"); a UTF-8 mark is dropped.
        let decoder = encoding.new_decoder();
        Decoded {
            inner,
            decoder,
            fix: Fix::EncodingSetting,
            input: vec![0; 64 * 1024].into_boxed_slice(),
            in_pos: 0,
            in_len: 0,
            eof: false,
            // Room for the worst case of one input buffer (3 bytes of UTF-8 per input byte) + slack.
            output: vec![0; 3 * 64 * 1024 + 16].into_boxed_slice(),
            out_pos: 0,
            out_len: 0,
            done: false,
            consumed: 0,
            line_ends: 0,
            prev_cr: false,
        }
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_pos < self.out_len {
                let n = buf.len().min(self.out_len - self.out_pos);
                buf[..n].copy_from_slice(&self.output[self.out_pos..self.out_pos + n]);
                self.out_pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            if self.in_pos == self.in_len && !self.eof {
                let n = self.inner.read(&mut self.input)?;
                self.in_pos = 0;
                self.in_len = n;
                self.eof = n == 0;
            }
            let src = &self.input[self.in_pos..self.in_len];
            let (input_empty, read, written) = {
                let (r, read, written) = self.decoder.decode_to_utf8_without_replacement(src, &mut self.output, self.eof);
                let out = &self.output[..written];
                // Valid UTF-8, but no text file holds NULs: ASCII written as UTF-16 without a
                // byte-order mark has one in every other byte. (A byte-order mark may have
                // switched to UTF-16, where a NUL is a character.)
                let nul = if self.decoder.encoding() == encoding_rs::UTF_8 { memchr::memchr(0, out) } else { None };
                // Counted in the decoded text (the same in any encoding), as `Scan` counts lines;
                // found with `memchr` (a byte-by-byte loop cost as much as the parsing).
                let counted = &out[..nul.unwrap_or(out.len())];
                for i in memchr::memchr2_iter(b'\r', b'\n', counted) {
                    let after_cr = if i == 0 { self.prev_cr } else { counted[i - 1] == b'\r' };
                    if counted[i] == b'\r' || !after_cr {
                        self.line_ends += 1;
                    }
                }
                if nul.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the file holds NUL bytes (the first on line {}): it may be UTF-16 without a byte-order mark; {}",
                            self.line_ends + 1,
                            self.fix.for_nul()
                        ),
                    ));
                }
                if let Some(&last) = out.last() {
                    self.prev_cr = last == b'\r';
                }
                match r {
                    DecoderResult::Malformed(bad, extra) => {
                        let at = self.consumed + read as u64 - bad as u64 - extra as u64;
                        // A byte-order mark may have switched to UTF-16.
                        let name = self.decoder.encoding().name();
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "the file is not valid {name} on line {} (byte offset {at}); {}",
                                self.line_ends + 1,
                                self.fix.for_invalid(self.decoder.encoding() == encoding_rs::UTF_8)
                            ),
                        ));
                    }
                    DecoderResult::InputEmpty => (true, read, written),
                    DecoderResult::OutputFull => (false, read, written),
                }
            };
            self.in_pos += read;
            self.consumed += read as u64;
            self.out_pos = 0;
            self.out_len = written;
            if input_empty && self.eof {
                self.done = true;
            }
        }
    }
}

impl Parse {
    /// Builds the step; errors are sentences naming the field (relative to the step).
    pub fn build(raw: &RawParse) -> Result<Parse, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let one_byte = |field: &'static str, text: &str, problems: &mut Vec<(&'static str, String)>| -> Option<u8> {
            csv_char(text).map_err(|e| problems.push((field, e))).ok()
        };
        let delimiter = one_byte("delimiter", raw.delimiter(), &mut problems);
        let quote = one_byte("quote", raw.quote(), &mut problems);
        if let (Some(d), Some(q)) = (delimiter, quote)
            && d == q
        {
            problems.push((
                "quote",
                format!(
                    "`{}` is the delimiter too: a field could never be told from a quoted one; give the quote another character",
                    crate::text::visible(raw.quote())
                ),
            ));
        }
        let encoding = Encoding::for_label(raw.encoding.trim().as_bytes()).unwrap_or_else(|| {
            problems.push(("encoding", format!("unknown encoding `{}` (use e.g. `utf-8`, `windows-1252`, `latin1`)", raw.encoding)));
            encoding_rs::UTF_8
        });
        // CSV settings on `json` / `jsonl` are judged by the flow's validation (`config::validate`).
        let csv = raw.format == ParseFormat::Csv;
        let (header, columns) = (raw.header(), raw.columns());
        if csv && !header && columns.is_empty() {
            problems.push(("columns", "a CSV file without a header row needs `columns` (the column names, in order)".to_string()));
        }
        if csv && !header {
            // Declared columns name every field: one without a name, or one name twice, would
            // lose or hide a value in every record.
            if let Some(i) = columns.iter().position(|c| c.trim().is_empty()) {
                problems.push(("columns", format!("column {} has no name: give every column one", i + 1)));
            } else if let Some((a, b)) = repeated(columns) {
                problems.push((
                    "columns",
                    format!("`{}` names columns {} and {}: give every column a name of its own", columns[b], a + 1, b + 1),
                ));
            }
        }
        if csv && header && !columns.is_empty() {
            problems.push((
                "columns",
                "`columns` names the columns of a file without a header row; set `header: false` or drop it".to_string(),
            ));
        }
        let trailer =
            raw.trailer.as_ref().map(|t| Trailer { marker: t.marker.clone(), count_column: t.count_column.saturating_sub(1) as usize });
        if !problems.is_empty() {
            return Err(problems);
        }
        let (Some(delimiter), Some(quote)) = (delimiter, quote) else { return Err(problems) };
        Ok(Parse { format: raw.format, header, columns: columns.to_vec(), delimiter, quote, encoding, trailer })
    }
}

/// A CSV delimiter or quote character as a flow writes it (`;`, `\t` for tab): one ASCII
/// character, not a line break. A line break ends a record: a file split on one is read as
/// a header and no records, and delivered empty. Used by `parse`, `write` and look-up tables.
pub fn csv_char(text: &str) -> Result<u8, String> {
    let byte = if text == "\\t" { "\t" } else { text };
    match byte.as_bytes() {
        [b'\n' | b'\r'] => Err(format!(
            "`{}` is a line break, which ends a CSV record: give the character between the fields of a line (`,`, `;`, `\\t` for tab)",
            crate::text::visible(text)
        )),
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!("`{}` must be one ASCII character (`\\t` for tab)", crate::text::visible(text))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(format: ParseFormat) -> Parse {
        Parse { format, header: true, columns: vec![], delimiter: b',', quote: b'"', encoding: encoding_rs::UTF_8, trailer: None }
    }

    /// Reads `bytes` with `p`; returns the header, the rows, and the result.
    fn run(p: &Parse, bytes: &[u8]) -> (Vec<String>, Vec<Row>, Result<Summary, String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        let (mut header, mut rows) = (vec![], vec![]);
        let r = read(p, &path, &mut |e| {
            match e {
                Event::Header(h) => header = h,
                // JSON input's keys, in their order: the header it has not.
                Event::Keys(k) => header.extend(k),
                Event::Row(r) => rows.push(r),
            }
            Ok(())
        });
        let r = r.map_err(|s| match s {
            Stop::File(m) => m,
            other => format!("{other:?}"),
        });
        (header, rows, r)
    }

    fn get<'a>(r: &'a Row, k: &str) -> &'a str {
        r.value.as_ref().unwrap()[k].as_str().unwrap()
    }

    #[test]
    fn csv_errors_read_as_plain_words() {
        let kind = |e: &csv::Error| csv_cause(e.kind());
        let reader = |text: &'static str| csv::ReaderBuilder::new().has_headers(false).from_reader(text.as_bytes());
        // Before: `UnequalLengths { pos: Some(Position { byte: 4, line: 2, record: 1 }), … }`.
        let e = reader("a,b\n1\n").records().nth(1).unwrap().unwrap_err();
        assert_eq!(kind(&e), "row 2: 1 field where the first row has 2 fields");
        let e = reader("a\nb,c,d\n").records().nth(1).unwrap().unwrap_err();
        assert_eq!(kind(&e), "row 2: 3 fields where the first row has 1 field");
        let mut bytes = csv::ReaderBuilder::new().has_headers(false).from_reader(&b"a,b\n\n\nok,\xff\n"[..]);
        let e = bytes.records().nth(1).unwrap().unwrap_err();
        assert_eq!(kind(&e), "row 2: field 2 is not UTF-8 text");
        let e = reader("x,y\n").deserialize::<(String, u32)>().next().unwrap().unwrap_err();
        assert_eq!(kind(&e), "row 1: field 2: invalid digit found in string");
        // (`Seek` is never raised by csv 1.4.)
        #[derive(serde::Serialize)]
        enum Pair {
            Two(u8, u8),
        }
        let e = csv::Writer::from_writer(vec![]).serialize(Pair::Two(1, 2)).unwrap_err();
        assert_eq!(kind(&e), "cannot write the row as CSV: serializing enum tuple variants is not supported");
        let e = csv::ReaderBuilder::new().from_reader(Broken).records().next().unwrap().unwrap_err();
        assert_eq!(kind(&e), "the disk is gone");
    }

    /// A reader whose every read fails.
    struct Broken;

    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("the disk is gone"))
        }
    }

    #[test]
    fn roster_with_bom_and_crlf() {
        let bytes =
            b"\xEF\xBB\xBFemployee_id,name,email\r\n1001,Anna M\xC3\xBCller,anna@example.com\r\n1002,Bj\xC3\xB6rn,bjorn@example.com\r\n";
        let (header, rows, r) = run(&parse(ParseFormat::Csv), bytes);
        r.unwrap();
        assert_eq!(header, ["employee_id", "name", "email"], "the BOM is not part of the first column name");
        assert_eq!(rows.len(), 2);
        assert_eq!(get(&rows[0], "name"), "Anna Müller");
        assert_eq!(get(&rows[1], "email"), "bjorn@example.com", "no trailing \\r");
        assert_eq!((rows[1].number, rows[1].line), (2, Some(3)));
    }

    #[test]
    fn quoted_commas_and_newlines() {
        let bytes = b"id,name,address\n1,\"Acme, Inc.\",\"Main St 1\nSuite 5\"\n2,\"Say \"\"hi\"\"\",x\n3,last,y\n";
        let (_, rows, r) = run(&parse(ParseFormat::Csv), bytes);
        r.unwrap();
        assert_eq!(get(&rows[0], "name"), "Acme, Inc.");
        assert_eq!(get(&rows[0], "address"), "Main St 1\nSuite 5");
        assert_eq!(get(&rows[1], "name"), "Say \"hi\"");
        assert_eq!(rows[2].line, Some(5), "the quoted newline counts as a line");
    }

    #[test]
    fn latin1_and_windows_1252() {
        let mut p = parse(ParseFormat::Csv);
        p.delimiter = b';';
        p.encoding = Encoding::for_label(b"latin1").unwrap();
        let bytes = b"artikel;preis\nK\xE4se;3,50 \x80\nStra\xDFe;1\n";
        let (_, rows, r) = run(&p, bytes);
        r.unwrap();
        assert_eq!(get(&rows[0], "artikel"), "Käse");
        assert_eq!(get(&rows[0], "preis"), "3,50 €");
        assert_eq!(get(&rows[1], "artikel"), "Straße");
        // The same bytes read as UTF-8 are refused with a hint.
        let (_, _, r) = run(&parse(ParseFormat::Csv), bytes);
        let e = r.unwrap_err();
        assert!(e.contains("not valid UTF-8 on line 2 (byte offset 15)") && e.contains("encoding"), "{e}");
    }

    /// Invalid UTF-8 deep in a file is reported with its line (it had only a byte offset, of
    /// no use in an editor), across buffer boundaries and quoted line breaks.
    #[test]
    fn invalid_utf8_names_its_line_and_byte_offset() {
        let mut text = b"id,note\r\n".to_vec();
        for i in 0..50_000 {
            text.extend_from_slice(format!("{i},\"two\nlines\"\r").as_bytes());
        }
        let at = text.len() + 2;
        text.extend_from_slice(b"x,\xE4\n1,ok\n");
        let (_, rows, r) = run(&parse(ParseFormat::Csv), &text);
        assert_eq!(
            r.unwrap_err(),
            format!(
                "the file is not valid UTF-8 on line 100002 (byte offset {at}); if it is Latin-1 or Windows-1252, set `encoding` in the parse step"
            )
        );
        assert!(rows.len() < 50_000, "the file stops there");
    }

    /// A UTF-16 file with its byte-order mark is read whatever `encoding` says (UTF-8 by
    /// default: it was refused as "not valid UTF-8 (byte offset 0)").
    #[test]
    fn utf16_with_a_byte_order_mark_is_read_as_utf16() {
        let utf16 = |bom: &[u8], text: &str, le: bool| -> Vec<u8> {
            let mut out = bom.to_vec();
            for u in text.encode_utf16() {
                out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
            }
            out
        };
        for (bom, le) in [(&b"\xFF\xFE"[..], true), (b"\xFE\xFF", false)] {
            let (header, rows, r) = run(&parse(ParseFormat::Csv), &utf16(bom, "id,name\r\n1,Zoë €\r\n", le));
            r.unwrap();
            assert_eq!(header, ["id", "name"]);
            assert_eq!((get(&rows[0], "name"), rows[0].line), ("Zoë €", Some(2)));
        }
        // Broken UTF-16 (a lone surrogate) says which encoding it broke.
        let mut bad = utf16(b"\xFF\xFE", "id\n1\n", true);
        bad.extend_from_slice(&0xD800u16.to_le_bytes());
        bad.extend_from_slice(&utf16(b"", "x\n", true));
        let (_, _, r) = run(&parse(ParseFormat::Csv), &bad);
        assert_eq!(r.unwrap_err(), "the file is not valid UTF-16LE on line 3 (byte offset 12); it may be in another encoding, or cut off");
    }

    /// Under an `encoding` other than UTF-8, bytes it cannot map became U+FFFD and the file was
    /// delivered so (its source then deleted): a lone surrogate or a last half character in
    /// UTF-16, a Shift_JIS character cut off. They quarantine the file, as under UTF-8.
    #[test]
    fn bytes_invalid_in_any_encoding_are_refused_not_replaced() {
        let with = |label: &str| Parse { encoding: Encoding::for_label(label.as_bytes()).unwrap(), ..parse(ParseFormat::Csv) };
        let mut utf16: Vec<u8> = "id\n1\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        let (_, rows, r) = run(&with("utf-16le"), &utf16);
        assert_eq!((r.is_ok(), get(&rows[0], "id")), (true, "1"));
        utf16.push(b'2');
        let (_, _, r) = run(&with("utf-16le"), &utf16);
        assert_eq!(r.unwrap_err(), "the file is not valid UTF-16LE on line 3 (byte offset 10); it may be in another encoding, or cut off");
        let sjis = b"id\n\x82\xa0\n\x82\n";
        let (_, _, r) = run(&with("shift_jis"), sjis);
        assert_eq!(r.unwrap_err(), "the file is not valid Shift_JIS on line 3 (byte offset 6); it may be in another encoding, or cut off");
        let (_, rows, r) = run(&with("shift_jis"), &sjis[..6]);
        assert_eq!((r.is_ok(), get(&rows[0], "id")), (true, "あ"));
        // Every byte is a character in Windows-1252 (and Latin-1, read as it): nothing refused.
        let all: Vec<u8> = b"id\n".iter().copied().chain(0x80..=0xFFu8).chain(*b"\n").collect();
        let (_, rows, r) = run(&with("latin1"), &all);
        assert_eq!((r.is_ok(), get(&rows[0], "id").chars().count()), (true, 128));
    }

    /// UTF-16 without a byte-order mark, under the default encoding (UTF-8): every other byte
    /// of ASCII text is NUL, which is valid UTF-8, so the file was read as text full of NULs
    /// (a header `i\0d\0`, records that fail the schema for no visible reason). Refused,
    /// naming the line, with what to do.
    #[test]
    fn nul_bytes_under_utf8_are_refused_as_probably_utf16() {
        let le: Vec<u8> = "id,name\r\n1,Zoe\r\n".encode_utf16().flat_map(u16::to_le_bytes).collect();
        for format in [ParseFormat::Csv, ParseFormat::Json, ParseFormat::Jsonl] {
            let (header, rows, r) = run(&parse(format), &le);
            assert_eq!(
                r.unwrap_err(),
                "the file holds NUL bytes (the first on line 1): it may be UTF-16 without a byte-order mark; set `encoding` in the parse step (`utf-16le` or `utf-16be`)",
                "{format:?}"
            );
            assert!(header.is_empty() && rows.is_empty(), "{format:?}: nothing is handed on");
        }
        // Deeper in a file: its line.
        let (_, rows, r) = run(&parse(ParseFormat::Csv), b"id,name\n1,a\n2,b\0\n");
        assert!(r.unwrap_err().starts_with("the file holds NUL bytes (the first on line 3)"));
        assert!(rows.len() < 2);
        // Read as the UTF-16 it is, the same file is fine.
        let mut p = parse(ParseFormat::Csv);
        p.encoding = encoding_rs::UTF_16LE;
        let (header, rows, r) = run(&p, &le);
        r.unwrap();
        assert_eq!((header, get(&rows[0], "name")), (vec!["id".to_string(), "name".into()], "Zoe"));
    }

    /// An Excel workbook or a gzip file renamed `.csv`: before, read as Windows-1252 (where
    /// every byte is a character) it was a CSV of garbage, delivered as a file of no records;
    /// read as UTF-8 it was "not valid UTF-8 …: if it is Latin-1, set `encoding`" (or "may be
    /// UTF-16"), advice that leads nowhere. Now it is refused as what it is, in every format
    /// and encoding.
    #[test]
    fn a_packed_or_binary_file_is_refused_as_what_it_is() {
        let xlsx = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml";
        let gzip = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03K\xcc";
        let xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00";
        let latin1 = Parse { encoding: encoding_rs::WINDOWS_1252, delimiter: b';', ..parse(ParseFormat::Csv) };
        for p in [&latin1, &parse(ParseFormat::Csv), &parse(ParseFormat::Json), &parse(ParseFormat::Jsonl)] {
            let (_, rows, r) = run(p, xlsx);
            assert!(rows.is_empty());
            assert_eq!(
                r.unwrap_err(),
                "the file is a ZIP archive (an Excel .xlsx workbook is one), not text (its first bytes are 504b030414000600): a spreadsheet is no CSV: ask for it exported as CSV"
            );
        }
        assert_eq!(
            run(&latin1, gzip).2.unwrap_err(),
            "the file is a gzip archive, not text (its first bytes are 1f8b080000000000): a packed file is unpacked by a `command` step before `parse` (`run: [gunzip, -c]` for gzip)"
        );
        assert!(run(&latin1, xls).2.unwrap_err().starts_with("the file is an Excel .xls workbook"));
        assert!(run(&latin1, b"BZh91AY&SY\x00").2.unwrap_err().starts_with("the file is a bzip2 archive"));
        // Text that merely starts with such letters is text.
        for text in [&b"BZh;PK\nx;y\n"[..], b"%PDF;b\n1;2\n"] {
            let (header, rows, r) = run(&latin1, text);
            assert!(r.is_ok() && rows.len() == 1, "{header:?}");
        }
    }

    /// `"Quoted" tail`: the csv crate reads `Quoted tail`, its quotes silently dropped, and
    /// so the row was delivered. Now it is an invalid record naming the line; spaces after the
    /// closing quote (`"a" ,`) are harmless, and a quote inside an unquoted field is kept.
    #[test]
    fn text_after_a_closing_quote_makes_the_row_invalid() {
        let p = Parse { delimiter: b';', ..parse(ParseFormat::Csv) };
        let (_, rows, r) = run(&p, b"id;name\n1;\"Quoted\" tail\n2;\"a\" \n3;Foo \"Bar\"\n4;\"two\nlines\"x\n5;\"ok \"\"q\"\"\"\n");
        r.unwrap();
        assert_eq!(
            rows[0].value.as_ref().unwrap_err(),
            "the quoted field opened on line 2 has text after its closing `\"`, and would be read without its quotes: \
             a field holding a `\"` is quoted whole, each `\"` inside doubled (`\"\"\"Quoted\"\" tail\"` for `\"Quoted\" tail`)"
        );
        assert_eq!(get(&rows[1], "name"), "a ");
        assert_eq!(get(&rows[2], "name"), "Foo \"Bar\"");
        assert!(rows[3].value.as_ref().unwrap_err().starts_with("the quoted field opened on line 5 has text"));
        assert_eq!((rows[3].line, rows[4].line), (Some(5), Some(7)));
        assert_eq!(get(&rows[4], "name"), "ok \"q\"");
    }

    #[test]
    fn ragged_rows_are_reported_with_their_line() {
        let bytes = b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n\"x\ny\",2,3\n";
        let (_, rows, r) = run(&parse(ParseFormat::Csv), bytes);
        r.unwrap();
        assert_eq!(rows.len(), 4);
        assert!(rows[0].value.is_ok());
        assert_eq!(rows[1].value.as_ref().unwrap_err(), "2 fields, expected 3 (as in the header): too few");
        assert_eq!(rows[1].line, Some(3));
        assert_eq!(rows[2].value.as_ref().unwrap_err(), "4 fields, expected 3 (as in the header): too many");
        assert_eq!(rows[2].line, Some(4));
        assert!(matches!(&rows[2].raw, Raw::Fields(f) if f.len() == 4));
        assert_eq!((rows[3].line, rows[3].value.is_ok()), (Some(5), true));
    }

    #[test]
    fn headerless_files_trailers_and_duplicate_columns() {
        let mut p = parse(ParseFormat::Csv);
        p.header = false;
        p.columns = vec!["id".into(), "qty".into()];
        p.trailer = Some(Trailer { marker: "TRL".into(), count_column: 1 });
        let (header, rows, r) = run(&p, b"1,5\n2,7\nTRL,2\n");
        assert_eq!(r.unwrap().trailer_count, Some(2));
        assert_eq!((header.len(), rows.len()), (2, 2));
        // Lines of spaces are blank lines, between rows and after the trailer alike (before:
        // a rejected row "1 field, expected 2", and a trailer that was not the last row).
        let (_, rows, r) = run(&p, b"1,5\n   \n2,7\nTRL,2\n \t \n\n");
        assert_eq!(r.unwrap().trailer_count, Some(2));
        assert_eq!(rows.iter().map(|r| (r.line, r.value.is_ok())).collect::<Vec<_>>(), [(Some(1), true), (Some(3), true)]);
        let (_, rows, r) = run(&p, b"1,5\n2,7\n");
        assert!(r.unwrap_err().contains("last row is not a trailer"));
        assert_eq!(rows.len(), 1);
        let (_, _, r) = run(&Parse { header: true, columns: vec![], ..p.clone() }, b"id,qty\n");
        assert!(r.unwrap_err().contains("no trailer row"));
        let (_, _, r) = run(&p, b"1,5\nTRL,many\n");
        assert!(r.unwrap_err().contains("`many`, not a record count"));
        // Two files joined: the inner trailer was read as a record (`TRL` under `id`), and
        // the file delivered as one of 3 records announced 1.
        let (_, rows, r) = run(&p, b"1,5\nTRL,1\n2,7\nTRL,1\n");
        assert_eq!(
            r.unwrap_err(),
            "line 2 is a trailer row (`TRL,1`) but not the last row: two files joined? A file has one trailer (a row starting with `TRL`), at its end"
        );
        assert_eq!(rows.len(), 1, "the rows before it were read");
        // A record whose first field is the marker but without a count is a record.
        let (_, rows, r) = run(&p, b"1,5\nTRL,x\nTRL,2\n");
        assert_eq!((r.unwrap().trailer_count, rows.len()), (Some(2), 2));
        let (_, _, r) = run(&parse(ParseFormat::Csv), b"a,b,a\n1,2,3\n");
        assert_eq!(r.unwrap_err(), "the header names column `a` twice (columns 1 and 3)");
        let (_, _, r) = run(&parse(ParseFormat::Csv), b"a,b,,\n1,2,,\n");
        assert_eq!(r.unwrap_err(), "column 3 of the header has no name (a blank header cell): its values could not be named");
        // A blank header cell but the last is a broken header (it was a column named ``).
        let (header, rows, r) = run(&parse(ParseFormat::Csv), b"id,,name\n1,x,Ann\n");
        assert_eq!(r.unwrap_err(), "column 2 of the header has no name (a blank header cell): its values could not be named");
        assert!(header.is_empty() && rows.is_empty());
        // The last one is a trailing delimiter: no column (it was one named ``, a `""` key in
        // JSON output); a row's blank cell under it is no value, and a row may lack it.
        let (header, rows, r) = run(&parse(ParseFormat::Csv), b"a,b,\n1,2,\n3,4\n   \n5,6,x\n7,8,,\n");
        r.unwrap();
        assert_eq!(header, ["a", "b"]);
        assert_eq!(rows[0].value.as_ref().unwrap(), &serde_json::json!({"a": "1", "b": "2"}));
        assert_eq!(rows[1].value.as_ref().unwrap(), &serde_json::json!({"a": "3", "b": "4"}));
        assert!(matches!(&rows[0].raw, Raw::Fields(f) if f.len() == 3), "the rejects file gets the row as read");
        assert_eq!(rows.len(), 4, "a line of spaces is still a blank line");
        assert_eq!(
            rows[2].value.as_ref().unwrap_err(),
            "field 3 holds \"x\", but the header gives it no column name (a blank header cell)"
        );
        assert_eq!(rows[3].value.as_ref().unwrap_err(), "4 fields, expected 2 (as in the header): too many");
    }

    /// A CSV file with nothing on it but blanks is empty, as a JSON file is (before: a file of
    /// spaces was one blank column and no records, delivered; an empty one "has no header row").
    #[test]
    fn a_csv_file_of_blanks_is_empty() {
        for blank in [&b""[..], b"   ", b"  \n\t\n\r\n \n", b"\xef\xbb\xbf \n"] {
            let (header, rows, r) = run(&parse(ParseFormat::Csv), blank);
            assert_eq!(r.unwrap_err(), "the file is empty", "{blank:?}");
            assert!(header.is_empty() && rows.is_empty(), "{blank:?}");
        }
        // Blank lines before the header are passed over, and counted in the lines.
        let (header, rows, r) = run(&parse(ParseFormat::Csv), b" \n\na,b\n1,2\n");
        r.unwrap();
        assert_eq!((header, rows.len(), rows[0].line), (vec!["a".to_string(), "b".into()], 1, Some(4)));
        assert_eq!(get(&rows[0], "b"), "2");
    }

    /// Without a header row alike (before: a file of blank lines was one rejected row per
    /// line, "1 field, expected 2", and an empty one a file of no records, delivered).
    #[test]
    fn a_headerless_csv_file_of_blanks_is_empty() {
        let mut p = parse(ParseFormat::Csv);
        p.header = false;
        p.columns = vec!["id".into(), "qty".into()];
        for blank in [&b""[..], b"   ", b"  \n\t\n\r\n \n", b"\xef\xbb\xbf \n"] {
            let (_, rows, r) = run(&p, blank);
            assert_eq!(r.unwrap_err(), "the file is empty", "{blank:?}");
            assert!(rows.is_empty(), "{blank:?}");
        }
        // Blank lines before the first record are passed over, and counted in the lines.
        let (header, rows, r) = run(&p, b" \n\n1,2\n3,4\n");
        r.unwrap();
        assert_eq!((header.len(), rows.len(), rows[0].line, rows[1].number), (2, 2, Some(3), 2));
        assert_eq!((get(&rows[0], "id"), get(&rows[1], "qty")), ("1", "4"));
    }

    #[test]
    fn json_arrays_stream_and_jsonl_reports_lines() {
        let (_, rows, r) = run(&parse(ParseFormat::Json), br#"[{"a":1},{"a":2}, 5]"#);
        r.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[1].value.as_ref().unwrap()["a"], 2);
        assert_eq!(rows[2].value.as_ref().unwrap_err(), "expected an object, found a number");
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [Some(1); 3]);
        // Each element's line is where it begins (before: none, so rejects named no line).
        let pretty = b"[\n  {\n    \"a\": 1\n  },\n  {\"a\": 2},\n\n  7\n  ,{\"a\":\n3}\n]\n";
        let (_, rows, r) = run(&parse(ParseFormat::Json), pretty);
        r.unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [Some(2), Some(5), Some(7), Some(8)]);
        // An object where the array should be: JSON Lines, or records wrapped in an object. Before,
        // only serde's "invalid type: map, expected an array of objects at line 1 column 1".
        for object in [&br#"{"a":1}"#[..], b"\n {\"a\":1}\n{\"a\":2}\n", br#"{"items": [{"a":1}]}"#] {
            let (_, _, r) = run(&parse(ParseFormat::Json), object);
            let e = r.unwrap_err();
            assert!(e.starts_with("not a JSON array of objects: the file starts with an object (invalid type: map"), "{e}");
            assert!(e.contains("JSON Lines (`format: jsonl`)"), "{e}");
        }
        let (_, _, r) = run(&parse(ParseFormat::Json), b"\"x\"");
        assert_eq!(
            r.unwrap_err(),
            "not a JSON array of objects: invalid type: string \"x\", expected an array of objects at line 1 column 3"
        );
        let (_, rows, r) = run(&parse(ParseFormat::Json), br#"[{"a":1},{"a":"#);
        assert!(r.is_err() && rows.len() == 1);
        // Before: "not a JSON array of objects: EOF while parsing a value at line 1 column 0".
        for blank in [&b""[..], b" \r\n\t\n"] {
            let (_, _, r) = run(&parse(ParseFormat::Json), blank);
            assert_eq!(r.unwrap_err(), "the file is empty", "{blank:?}");
        }
        // JSON Lines too (before: a file of no records, delivered).
        for blank in [&b""[..], b" \r\n\t\n", b"\n\n"] {
            let (_, rows, r) = run(&parse(ParseFormat::Jsonl), blank);
            assert_eq!(r.unwrap_err(), "the file is empty", "{blank:?}");
            assert!(rows.is_empty(), "{blank:?}");
        }
        // Cut off is not empty.
        for cut in [&b"  ["[..], b"\n\"a"] {
            let (_, _, r) = run(&parse(ParseFormat::Json), cut);
            assert!(r.unwrap_err().starts_with("not a JSON array of objects: EOF while parsing"), "{cut:?}");
        }
        let (_, rows, r) = run(&parse(ParseFormat::Jsonl), b"{\"a\":1}\n\n{\"a\":\nnull\n");
        r.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!((rows[1].line, rows[1].value.as_ref().unwrap_err().starts_with("not JSON")), (Some(3), true));
        assert_eq!((rows[2].number, rows[2].line), (3, Some(4)));
        // The column is the line's (before: serde's "at line 1 column 8" for every line), and a
        // JSON array read as JSON Lines says so on its first record.
        let (_, rows, r) = run(&parse(ParseFormat::Jsonl), b"[\n  {\"a\":1},\n  {\"a\":2}\n]\n");
        r.unwrap();
        let errors: Vec<_> = rows.iter().map(|r| r.value.as_ref().err().map(String::as_str)).collect();
        assert_eq!(
            errors,
            [
                Some("not JSON: EOF while parsing a list at column 1; the file may be one JSON array (`format: json`), not JSON Lines"),
                Some("not JSON: trailing characters at column 10"),
                None,
                Some("not JSON: expected value at column 1"),
            ]
        );
        let (_, rows, _) = run(&parse(ParseFormat::Jsonl), b"[{\"a\":1}]\n");
        assert!(
            rows[0]
                .value
                .as_ref()
                .unwrap_err()
                .ends_with("found an array; the file may be one JSON array (`format: json`), not JSON Lines")
        );
    }

    #[test]
    fn a_first_line_of_one_column_holding_another_separator_gets_a_hint() {
        let one = |t: &str| vec![t.to_string()];
        assert_eq!(
            delimiter_hint("header", &one("a;b;c"), b','),
            Some("the header is one column `a;b;c`: is the delimiter `;`? (set `delimiter: ';'`)".into())
        );
        assert_eq!(
            delimiter_hint("first record", &one("1\t2"), b','),
            Some("the first record is one column `1\\t2`: is the delimiter `\\t`? (set `delimiter: '\\t'`)".into())
        );
        assert_eq!(
            delimiter_hint("header", &one("a,b|c"), b';').unwrap(),
            "the header is one column `a,b|c`: is the delimiter `|`? (set `delimiter: '|'`)"
        );
        assert_eq!(delimiter_hint("header", &one("a;b"), b';'), None, "the delimiter it has");
        assert_eq!(delimiter_hint("header", &one("name"), b','), None);
        assert_eq!(delimiter_hint("header", &["a;b".to_string(), "c".to_string()], b','), None);
    }

    /// `{"a":1,"a":2}` was read as `{"a":2}` and delivered so: the 1 was lost without a word.
    #[test]
    fn a_json_key_given_twice_makes_its_record_invalid() {
        let twice = "key `a` is given twice in one object (1, then 2): a record holds one value per key, so one of them would be lost";
        let (_, rows, r) = run(&parse(ParseFormat::Json), br#"[{"a":1},{"a":1,"a":2},{"b":{"c":[{"a":1,"a":2}]}}]"#);
        r.unwrap();
        assert!(rows[0].value.is_ok());
        assert_eq!(rows[1].value.as_ref().unwrap_err(), twice);
        assert!(rows[2].value.as_ref().unwrap_err().starts_with("key `b.c.0.a` is given twice"));
        let (_, rows, r) = run(&parse(ParseFormat::Jsonl), b"{\"a\":1,\"a\":2}\n{\"a\":3}\n");
        r.unwrap();
        assert_eq!(rows[0].value.as_ref().unwrap_err(), twice);
        assert!(matches!(&rows[0].raw, Raw::Text(t) if t == r#"{"a":1,"a":2}"#), "the rejects file gets the line as written");
        assert_eq!(rows[1].value.as_ref().unwrap()["a"], 3);
    }

    /// 20 MiB of delimiters on one line took 770 MB to read (a field costs ~40 bytes in the
    /// reader, more in the record); now the file stops at the 100,001st field.
    #[test]
    fn a_record_of_too_many_fields_stops_the_file() {
        let most = format!("a,b\n1,2\n{}\n", ",".repeat(MAX_FIELDS as usize - 1));
        let (_, rows, r) = run(&parse(ParseFormat::Csv), most.as_bytes());
        r.unwrap();
        assert_eq!(rows[1].value.as_ref().unwrap_err(), "100000 fields, expected 2 (as in the header): too many");
        // Line 4's delimiters are inside a quoted cell: not fields. Line 5's are.
        let (_, _, r) =
            run(&parse(ParseFormat::Csv), format!("{most}3,\"{}\"\n4,{}", ",".repeat(200_000), ",".repeat(20 << 20)).as_bytes());
        assert_eq!(r.unwrap_err(), "the record on line 5 has more than 100000 fields");
    }

    #[test]
    fn an_unclosed_quote_fails_the_file_with_the_line_it_opened_on() {
        // Without the check, row 2 ended up inside row 1's `name` and the file passed.
        let (_, rows, r) = run(&parse(ParseFormat::Csv), b"id,name\n1,\"unterminated\n2,b\n");
        let e = r.unwrap_err();
        assert!(e.contains("the quoted field opened on line 2 is never closed"), "{e}");
        assert!(rows.is_empty(), "no record of the broken file is handed on");
        let (_, _, r) = run(&parse(ParseFormat::Csv), b"id,name\n1,a\n2,\"b\n\"\"c\"\n3,\"d");
        assert!(r.unwrap_err().contains("opened on line 5"));
        // Closed quotes, quoted line breaks, `""` and quotes inside unquoted cells are fine.
        for ok in [&b"id,name\n1,\"x\ny\"\n2,\"\"\"\"\n3,ab\"c\n4,\"e\""[..], b"id,name\n1,\"a\"\"\"\r\n", b"id\n\"\"\n"] {
            let (_, rows, r) = run(&parse(ParseFormat::Csv), ok);
            r.unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(ok)));
            assert!(rows.iter().all(|r| r.value.is_ok()));
        }
        let mut p = parse(ParseFormat::Csv);
        (p.delimiter, p.quote) = (b';', b'\'');
        let (_, _, r) = run(&p, b"id;name\n1;\"open\n2;'x\n");
        assert!(r.unwrap_err().contains("opened on line 3 is never closed: a closing `'`"));
    }

    #[test]
    fn an_overlong_record_stops_reading() {
        let mut scan = Scan::new(&b"a,b\n1,\"xxxxxxxxxxxxxxxxxxxx"[..], b',', b'"');
        scan.max = 10;
        let e = io::read_to_string(&mut scan).unwrap_err();
        assert!(e.to_string().contains("the quoted field opened on line 2 runs on for more than"), "{e}");
        let mut scan = Scan::new(&b"a,b\n\n1,xxxxxxxxxxxxxxxxxxxx\n"[..], b',', b'"');
        scan.max = 10;
        assert!(io::read_to_string(&mut scan).unwrap_err().to_string().contains("the record on line 3 is longer"));
    }

    #[test]
    fn lines_of_cr_only_files_blank_lines_and_crlf_in_quoted_cells() {
        let p = parse(ParseFormat::Csv);
        // Old-Mac line ends: the csv crate counts LF only, so every row was "line 1".
        let (_, rows, r) = run(&p, b"id,name\r1,a\r2\r3,c\r");
        r.unwrap();
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [Some(2), Some(3), Some(4)]);
        assert!(rows[1].value.is_err());
        // A CRLF inside a quoted cell is kept as it was; the record after it is on line 4.
        let (_, rows, r) = run(&p, b"id,note\r\n1,\"a\r\nb\"\r\n2,c\r\n");
        r.unwrap();
        assert_eq!(get(&rows[0], "note"), "a\r\nb");
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [Some(2), Some(4)]);
        // Blank lines are not records, but they are lines.
        let (_, rows, r) = run(&p, b"\nid\n\n1\r\n\r\n\n2\n\n");
        r.unwrap();
        assert_eq!(rows.iter().map(|r| (r.number, r.line)).collect::<Vec<_>>(), [(1, Some(4)), (2, Some(7))]);
    }

    #[test]
    fn line_numbers_hold_across_buffer_boundaries() {
        let mut text = b"n,text\r\n".to_vec();
        for i in 0..30_000 {
            let row = match i % 3 {
                0 => format!("{i},plain\r\n"),
                1 => format!("{i},\"two\r\nlines\"\r"),
                _ => format!("{i},x\n\n"),
            };
            text.extend_from_slice(row.as_bytes());
        }
        let (_, rows, r) = run(&parse(ParseFormat::Csv), &text);
        r.unwrap();
        assert_eq!(rows.len(), 30_000);
        let mut line = 2;
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row.line, Some(line), "row {}", i + 1);
            line += if i % 3 == 0 { 1 } else { 2 };
        }
        assert_eq!(get(&rows[29_998], "text"), "two\r\nlines");
    }

    #[test]
    fn decoder_handles_small_reads_and_multibyte_boundaries() {
        // A reader returning one byte at a time splits every multi-byte character.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0[0];
                self.0 = &self.0[1..];
                Ok(1)
            }
        }
        let text = "\u{feff}äöü€ – ok".as_bytes();
        let mut out = String::new();
        Decoded::new(Trickle(text), encoding_rs::UTF_8).read_to_string(&mut out).unwrap();
        assert_eq!(out, "äöü€ – ok");
        let mut out = String::new();
        Decoded::new(Trickle(b"\xFF\xFEa\x00"), encoding_rs::WINDOWS_1252).read_to_string(&mut out).unwrap();
        assert_eq!(out, "a", "a UTF-16 byte-order mark switches the decoder");
    }

    /// One element of a JSON array is held whole in memory (as a `Value`, several times its
    /// size): one longer than the limit stops the file, as a CSV record or a JSON line that
    /// long does. Before, a 200 MB object took gigabytes; the elements before it still count.
    #[test]
    fn a_json_element_longer_than_the_limit_stops_the_file() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(5000));
        let text = format!("[{{\"a\":1}},\n {big}, {{\"a\":3}}]");
        let mut rows = 0;
        let r = read_json(text.as_bytes(), 4096, &mut |e| {
            rows += u32::from(matches!(e, Event::Row(_)));
            Ok(())
        });
        let Err(Stop::File(msg)) = r else { panic!("{r:?}") };
        assert_eq!(msg, "record 2 of the array is longer than 4 KiB at line 2 column 4095");
        assert_eq!(rows, 1);
        // Just under the limit: read.
        let mut rows = 0;
        read_json(text.as_bytes(), 8192, &mut |e| {
            rows += u32::from(matches!(e, Event::Row(_)));
            Ok(())
        })
        .unwrap();
        assert_eq!(rows, 3);
    }
}
