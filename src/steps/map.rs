//! `map`: records through a Rhai script's `fn map(record)`, sandboxed.
//!
//! Owns the script engine's sandbox (operation, depth, size limits; no module loading from
//! disk; `eval` disabled; `print` goes to the log; a wall-clock limit per file), the helper
//! functions scripts may call (dates, numbers, trimming, CSV look-up tables), and turning
//! script errors into messages with the script line. The script is compiled once, when the
//! flow is validated, and called per record without re-running its top level.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, ImmutableString, Map, Scope};
use serde_json::Value;

use super::parse::csv_cause;
use super::render::decimal::Decimal;
use super::{Returned, excerpt};
use crate::config::raw_steps::RawLookup;

/// The largest look-up table file accepted (tables are held in memory).
const MAX_LOOKUP_BYTES: u64 = 64 * 1024 * 1024;
/// A script's limits: how deep functions may call one another, and the largest string
/// (bytes), array (items) and map (fields) it may build.
const MAX_CALL_LEVELS: usize = 32;
const MAX_STRING: usize = 1 << 20;
const MAX_ARRAY: usize = 100_000;
const MAX_MAP: usize = 10_000;

thread_local! {
    /// When the current file's script time is up (set per file by [`Mapper::start_file`]).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A compiled mapping script with its engine.
#[derive(Clone)]
pub struct Mapper {
    engine: Arc<Engine>,
    ast: Arc<AST>,
    /// The script as named in the flow (for messages).
    pub script: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper").field("script", &self.script).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// Why a record could not be mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MapError {
    /// The script refused this record: its own `throw`, or a helper refusing one of the
    /// record's values (`integer("x")`). The record's problem; the others may pass.
    Record(String),
    /// The script failed on this record: a function or variable that does not exist, a field
    /// read that is not a column of the CSV file (`r.titel`), values of the wrong type for an
    /// operator, a helper called
    /// wrongly, a bad return value, a runaway loop. A fault of the script, or a record it was
    /// not written for (a missing field read as `()`): which one, only the flow's owner can
    /// tell.
    Script(String),
    /// The file's time is up: no more records can be mapped.
    Timeout(String),
}

/// A record not mapped: why, and which of the records the script returned for it was the
/// problem, when it returned several (a value no record can hold in the third of five).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFailure {
    pub error: MapError,
    pub returned: Option<Returned>,
}

impl From<MapError> for MapFailure {
    fn from(error: MapError) -> Self {
        MapFailure { error, returned: None }
    }
}

/// A CSV look-up table: key → row (column → value).
type Table = HashMap<String, BTreeMap<String, String>>;

impl Mapper {
    /// Loads look-up tables and compiles `script_text` (named `script` in messages).
    pub fn build(
        script: &str,
        script_text: &str,
        lookups: BTreeMap<String, Table>,
        max_operations: u64,
        timeout: Duration,
    ) -> Result<Mapper, String> {
        let mut engine = sandbox(script, Arc::new(lookups), max_operations);
        let ast = engine.compile(script_text).map_err(|e| {
            let line = match (e.1.line(), e.1.position()) {
                (Some(l), Some(c)) => format!(" line {l}, col {c}"),
                (Some(l), None) => format!(" line {l}"),
                _ => String::new(),
            };
            // `record` outside a function: the script was written as a body to run per record.
            let hint = match &*e.0 {
                // Rhai stops at the token after the statement, often the next line's first.
                rhai::ParseErrorType::MissingToken(t, _) if t == ";" => {
                    " (the statement before this point lacks its `;`: at the end of the line above?)".to_string()
                }
                rhai::ParseErrorType::VariableUndefined(v) if v == "record" => {
                    " (a map script's code goes in `fn map(record) { … }`, which is called once per record)".to_string()
                }
                rhai::ParseErrorType::VariableUndefined(v) if declared_at_top(script_text, v) => top_level_hint(v),
                _ => String::new(),
            };
            format!("{script}{line}: {}{hint}", e.0)
        })?;
        // Read as `global::NAME`, a top-level constant compiles, and is missing from every call.
        if let Some((name, ..)) = ast.iter_literal_variables(true, true).next() {
            return Err(format!("{script}: `{name}` is declared at the script's top level{}", top_level_hint(name)));
        }
        if !ast.iter_functions().any(|f| f.name == "map" && f.params.len() == 1) {
            // A `map` of another arity is never called: said so, not "defines no map".
            return Err(match ast.iter_functions().find(|f| f.name == "map") {
                Some(f) => format!(
                    "{script} defines `fn map({})` with {} parameters where 1 is expected: `fn map(record)`, called with each record",
                    f.params.join(", "),
                    f.params.len()
                ),
                None => format!("{script} defines no `fn map(record)`"),
            });
        }
        super::map_fields::check_reads(&mut engine, &ast);
        Ok(Mapper { engine: Arc::new(engine), ast: Arc::new(ast), script: script.to_string(), timeout })
    }

    /// Starts the wall-clock limit for one file on this thread.
    pub fn start_file(&self) {
        DEADLINE.with(|d| d.set(Some(Instant::now() + self.timeout)));
        super::map_fields::clear_columns();
    }

    /// The file's records are CSV rows with these columns: a script reading a field that is
    /// none of them fails (see [`map_fields`](super::map_fields)).
    pub fn file_columns(&self, columns: &[String]) {
        super::map_fields::set_columns(columns);
    }

    /// Ends the limit started by [`start_file`](Self::start_file).
    pub fn end_file(&self) {
        DEADLINE.with(|d| d.set(None));
        super::map_fields::clear_columns();
    }

    /// Maps one record: zero, one or several records come out.
    pub fn map(&self, record: &Value) -> Result<Vec<Value>, MapFailure> {
        let arg = to_dynamic(record).map_err(|e| {
            if let Some(bytes) = e.text_bytes {
                return MapError::Record(format!(
                    "{}: `{}` holds {bytes} bytes of text, more than the {} MiB a script's string may have: the record is not mapped",
                    self.script,
                    e.at,
                    MAX_STRING >> 20
                ));
            }
            MapError::Record(format!(
                "{}: `{}` is {}, a number a script cannot hold (beyond ±1.8e308, or so close to 0 that it would be 0): the record is not mapped",
                self.script, e.at, e.number
            ))
        })?;
        let mut scope = Scope::new();
        // eval_ast(false): otherwise every call re-runs the script's top level (~60x slower).
        let opts = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let out: Dynamic = self.engine.call_fn_with_options(opts, &mut scope, &self.ast, "map", (arg,)).map_err(|e| self.error(&e))?;
        let one = |d: &Dynamic| -> Result<Value, MapError> {
            if !d.is_map() {
                return Err(MapError::Script(format!(
                    "{}: `map` must return a map, an array of maps or `()`, not {}",
                    self.script,
                    d.type_name()
                )));
            }
            from_dynamic(d).map_err(|e| match e {
                Unwritable::NotFinite(e) => MapError::Record(format!(
                    "{}: the returned `{}` is {}, which no record can hold (a division by zero, or a number grown beyond ±1.8e308?): the record is not mapped",
                    self.script, e.at, e.number
                )),
                Unwritable::Type(e) => MapError::Script(format!("{}: cannot read the returned record: {e}", self.script)),
            })
        };
        if out.is_unit() {
            Ok(vec![])
        } else if out.is_array() {
            let arr = out.cast::<rhai::Array>();
            let count = arr.len();
            arr.iter().enumerate().map(|(i, d)| one(d).map_err(|error| MapFailure { error, returned: Returned::at(i, count) })).collect()
        } else {
            Ok(vec![one(&out)?])
        }
    }

    fn error(&self, e: &EvalAltResult) -> MapError {
        let inner = e.unwrap_inner();
        let pos = if inner.position().is_none() { e.position() } else { inner.position() };
        let mut msg = match inner {
            EvalAltResult::ErrorRuntime(d, _) if d.is::<Misuse>() => d.clone().cast::<Misuse>().0,
            _ => inner.to_string(),
        };
        // Display appends " (line L, position P)"; the line is put first instead.
        if let Some(i) = msg.rfind(" (line ") {
            msg.truncate(i);
        }
        // Errors raised by the helpers are runtime errors carrying a finished sentence.
        if let Some(rest) = msg.strip_prefix("Runtime error: ") {
            msg = rest.to_string();
        }
        let at = pos.line().map(|l| format!(" line {l}")).unwrap_or_default();
        if let EvalAltResult::ErrorFunctionNotFound(..) = inner {
            msg = function_not_found(&msg);
        }
        match inner {
            EvalAltResult::ErrorTerminated(..) => {
                MapError::Timeout(format!("{}: stopped after the time limit of {:?} for one file", self.script, self.timeout))
            }
            EvalAltResult::ErrorTooManyOperations(..) => MapError::Script(format!(
                "{}{at}: too many operations for one record (a runaway loop?); the limit is `max_operations`",
                self.script
            )),
            // Rhai's own words ("Length of string too large", "Stack overflow") say neither
            // which limit nor how big it is. (Where in the script: Rhai stamps these errors
            // with the position of the call of each function they leave, and the call of
            // `map` has none; a position is shown when one is given.)
            EvalAltResult::ErrorDataTooLarge(what, _) => {
                let limit = match what.as_str() {
                    "Length of string" => format!("a string grew past the {} MiB a script's string may have", MAX_STRING >> 20),
                    "Size of array/BLOB" => format!("an array grew past the {MAX_ARRAY} items a script's array may have"),
                    "Size of object map" => format!("a map grew past the {MAX_MAP} fields a script's map may have"),
                    _ => msg,
                };
                MapError::Script(format!("{}{at}: {limit} (mapping one record)", self.script))
            }
            EvalAltResult::ErrorStackOverflow(..) => MapError::Script(format!(
                "{}{at}: functions called one another more than {MAX_CALL_LEVELS} deep (a runaway recursion?)",
                self.script
            )),
            EvalAltResult::ErrorRuntime(d, _) if d.is::<Misuse>() => MapError::Script(format!("{}{at}: {msg}", self.script)),
            // A `throw`, or a helper's verdict on a value: the script's way to refuse a record.
            EvalAltResult::ErrorRuntime(..) => MapError::Record(format!("{}{at}: {msg}", self.script)),
            _ => MapError::Script(format!("{}{at}: {msg}", self.script)),
        }
    }
}

/// Rhai's `Function not found: trim (())` in plainer words: a text argument is a `string`
/// (Rhai writes `&str | ImmutableString | String`), and a `()` among the arguments is said to
/// be, most likely, a field the record lacks — how a misspelt field name (`r.nmae.trim()`)
/// or a partner's missing column shows in a script.
fn function_not_found(msg: &str) -> String {
    let plain = msg.replace("&str | ImmutableString | String", "string");
    // `NAME (T1, T2)`: the arguments' types are after the first ` (`.
    let args = plain.find(" (").and_then(|i| plain[i + 2..].strip_suffix(')')).unwrap_or_default();
    let unit = args.split(", ").any(|a| a == "()");
    if unit {
        format!(
            "{plain} (`()` is no value: a field the record does not have (a misspelt name?), or a function that returned nothing; test it first: `if r.note != () {{ … }}`)"
        )
    } else {
        plain
    }
}

/// An integer beyond a script integer's range (±9.2×10^18): a 20-digit order number. It
/// reaches the script as this opaque value, not as a float that would lose its last digits
/// (`12345678901234567890` came out as `1.2345678901234567e19`): returned, it is written
/// exactly as it came in; `to_string()` and `${}` give its digits; arithmetic is refused
/// (`Function not found: + (big integer, i64)`), not done approximately.
#[derive(Debug, Clone)]
struct BigInteger(serde_json::Number);

/// Whether a JSON number is written as an integer (no fraction, no exponent).
fn is_integer(n: &serde_json::Number) -> bool {
    !n.to_string().contains(['.', 'e', 'E'])
}

/// `out`'s top-level numbers the script passed on unchanged, written as their cells were:
/// a field that the script was given as a converted cell (`given`: a number from the CSV text
/// in `written`, the record as parsed) and returns with the same value. A `number` cell reaches
/// a script as a float, and one passed on came back as `1.0` for the cell `1` (`12.1` for
/// `12.10`, `1.2345678901234567e19` for a 20-digit number). A value the script changed, or
/// made from text itself (`number(r.hours, ",")`), is written as it is.
pub fn keep_as_written(out: &mut Value, given: &Value, written: &Value) {
    let Some(fields) = out.as_object_mut() else { return };
    for (name, value) in fields.iter_mut() {
        let (Value::Number(n), Some(Value::Number(was)), Some(Value::String(cell))) = (&*value, given.get(name), written.get(name)) else {
            continue;
        };
        if was.as_f64() == n.as_f64()
            && let Some(as_written) = number_as_written(cell).filter(|w| w.as_f64() == n.as_f64())
            && as_written != *n
        {
            *value = Value::Number(as_written);
        }
    }
}

/// A cell's number as written (`12.10`, `1`; `+5` and `007`, which JSON cannot write, as `5`
/// and `7`).
fn number_as_written(cell: &str) -> Option<serde_json::Number> {
    let t = cell.trim();
    t.parse::<serde_json::Number>().ok().or_else(|| t.parse::<i64>().ok().map(serde_json::Number::from))
}

/// A number of the record that no script float holds (`1e400`, `1e-400`): where it is
/// (`price`, `lines[2].qty`) and as written.
#[derive(Debug)]
struct OutOfRange {
    at: String,
    number: String,
    /// Set instead for a text longer than a script's string may be: its length in bytes.
    /// (Before, the script failed on it with "a string grew past the 1 MiB a script's string
    /// may have", as if the script had made it.)
    text_bytes: Option<usize>,
}

impl OutOfRange {
    /// The same number, seen from the record holding it under `key` (`qty` → `lines.qty`,
    /// `[2].qty` → `lines[2].qty`).
    fn under(mut self, key: &str) -> Self {
        self.at = if self.at.is_empty() || self.at.starts_with('[') { format!("{key}{}", self.at) } else { format!("{key}.{}", self.at) };
        self
    }
}

/// A script's value that cannot become a record field.
#[derive(Debug)]
enum Unwritable {
    /// A float the script computed that is no number (`1.0 / 0.0`, `0.0 / 0.0`): where it
    /// is in the returned record, and as the script shows it (`inf`, `NaN`). The record's
    /// problem: the same script computes finite values from other records.
    NotFinite(OutOfRange),
    /// A script type no record holds (`timestamp()`): the script's fault.
    Type(String),
}

impl Unwritable {
    fn under(self, key: &str) -> Self {
        match self {
            Unwritable::NotFinite(e) => Unwritable::NotFinite(e.under(key)),
            other => other,
        }
    }
}

/// A record as a script value, built directly (the serde round trip through
/// `rhai::serde::to_dynamic` costs about as much as the script itself, once per record).
/// A JSON number beyond a float (`1e400`) is refused: as NaN it came out as `null`, and
/// `1e-400` as `0.0`, the record passed with its value lost.
fn to_dynamic(v: &Value) -> Result<Dynamic, OutOfRange> {
    Ok(match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None if is_integer(n) => Dynamic::from(BigInteger(n.clone())),
            None => match n.as_f64() {
                // A zero is read as 0 only when it was written as one (`0.0`, `0e5`).
                Some(f) if f.is_finite() && (f != 0.0 || !has_nonzero_digit(n)) => Dynamic::from_float(f),
                _ => return Err(OutOfRange { at: String::new(), number: n.to_string(), text_bytes: None }),
            },
        },
        Value::String(s) if s.len() > MAX_STRING => {
            return Err(OutOfRange { at: String::new(), number: String::new(), text_bytes: Some(s.len()) });
        }
        Value::String(s) => Dynamic::from(ImmutableString::from(s.as_str())),
        Value::Array(a) => Dynamic::from_array(
            a.iter().enumerate().map(|(i, v)| to_dynamic(v).map_err(|e| e.under(&format!("[{i}]")))).collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Dynamic::from_map(
            o.iter().map(|(k, v)| Ok((k.as_str().into(), to_dynamic(v).map_err(|e| e.under(k))?))).collect::<Result<Map, OutOfRange>>()?,
        ),
    })
}

/// Whether the digits of `n` before its exponent are not all zeros.
fn has_nonzero_digit(n: &serde_json::Number) -> bool {
    let text = n.to_string();
    text.split(['e', 'E']).next().is_some_and(|m| m.bytes().any(|b| (b'1'..=b'9').contains(&b)))
}

/// A script's value as a record field, read directly (see [`to_dynamic`]). Characters become
/// strings; non-finite floats and other script types are refused (a computed infinity or NaN
/// was written `null`, the record passing with its value lost).
fn from_dynamic(d: &Dynamic) -> Result<Value, Unwritable> {
    if d.is_unit() {
        Ok(Value::Null)
    } else if let Ok(b) = d.as_bool() {
        Ok(Value::Bool(b))
    } else if let Ok(i) = d.as_int() {
        Ok(Value::from(i))
    } else if let Ok(f) = d.as_float() {
        serde_json::Number::from_f64(f)
            .map(Value::Number)
            .ok_or_else(|| Unwritable::NotFinite(OutOfRange { at: String::new(), number: f.to_string(), text_bytes: None }))
    } else if let Ok(c) = d.as_char() {
        Ok(Value::String(c.to_string()))
    } else if let Some(b) = d.read_lock::<BigInteger>() {
        Ok(Value::Number(b.0.clone()))
    } else if let Some(s) = d.read_lock::<ImmutableString>() {
        Ok(Value::String(s.as_str().to_owned()))
    } else if let Some(a) = d.read_lock::<rhai::Array>() {
        a.iter()
            .enumerate()
            .map(|(i, v)| from_dynamic(v).map_err(|e| e.under(&format!("[{i}]"))))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array)
    } else if let Some(m) = d.read_lock::<Map>() {
        m.iter()
            .map(|(k, v)| Ok((k.to_string(), from_dynamic(v).map_err(|e| e.under(k))?)))
            .collect::<Result<serde_json::Map<_, _>, Unwritable>>()
            .map(Value::Object)
    } else {
        Err(Unwritable::Type(format!("a value of type `{}` cannot be written", d.type_name())))
    }
}

/// The sandboxed engine: limits, no module loading, no `eval`, print to the log, a wall clock.
fn sandbox(script: &str, tables: Arc<BTreeMap<String, Table>>, max_operations: u64) -> Engine {
    let mut e = Engine::new();
    e.set_max_operations(max_operations)
        .set_max_expr_depths(64, 32)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_ARRAY)
        .set_max_map_size(MAX_MAP)
        .set_strict_variables(true);
    // The default resolver reads `import`ed files from disk.
    e.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
    e.disable_symbol("eval");
    // Which record printed it comes from the caller's `script` span (flow, file, row).
    let name: Arc<str> = script.into();
    let n = name.clone();
    e.on_print(move |s| tracing::info!(target: "wharf::script", script = &*n, "{s}"));
    e.on_debug(move |s, _, pos| tracing::debug!(target: "wharf::script", script = &*name, line = pos.line(), "{s}"));
    e.on_progress(|ops| {
        // The callback sees only the operation count; the clock is read every 1024 operations.
        if ops % 1024 == 0 && DEADLINE.with(|d| d.get()).is_some_and(|d| Instant::now() > d) {
            return Some("time limit".into());
        }
        None
    });
    register_helpers(&mut e, tables);
    e
}

pub(super) type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// A helper refusing a value of the record (`integer("x")`): the record is invalid.
fn fail<T>(msg: String) -> Fallible<T> {
    Err(msg.into())
}

/// A helper called wrongly whatever the record (an unknown table, a bad format), or a field
/// read that the record cannot have (see [`map_fields`](super::map_fields)): the script's
/// fault, reported as such ([`MapError::Script`]). Raised as a runtime error (so it gets the
/// line of the call) carrying a [`Misuse`], a value no script can make or `throw` itself.
pub(super) fn misuse<T>(msg: String) -> Fallible<T> {
    Err(Box::new(EvalAltResult::ErrorRuntime(Dynamic::from(Misuse(msg)), rhai::Position::NONE)))
}

/// The message of a helper called wrongly (see [`misuse`]).
#[derive(Debug, Clone)]
struct Misuse(String);

fn register_helpers(e: &mut Engine, tables: Arc<BTreeMap<String, Table>>) {
    e.register_type_with_name::<BigInteger>("big integer");
    e.register_fn("to_string", |b: &mut BigInteger| b.0.to_string());
    e.register_fn("to_debug", |b: &mut BigInteger| b.0.to_string());
    e.register_fn("==", |a: BigInteger, b: BigInteger| a.0 == b.0);
    e.register_fn("!=", |a: BigInteger, b: BigInteger| a.0 != b.0);
    // Dates: chrono format strings (`%d.%m.%Y`, `%Y-%m-%d`).
    e.register_fn("date", |text: &str, from: &str, to: &str| -> Fallible<String> { reformat_date(text.trim(), from, to) });
    e.register_fn("is_date", |text: &str, fmt: &str| parse_date(text.trim(), fmt).is_ok());
    // Numbers.
    e.register_fn("number", |text: &str| -> Fallible<f64> { number(text, '.') });
    e.register_fn("number", |text: &str, decimal: &str| -> Fallible<f64> {
        match decimal {
            "." => number(text, '.'),
            "," => number(text, ','),
            other => misuse(format!("number(): the decimal separator must be \".\" or \",\", not {other:?}")),
        }
    });
    e.register_fn("integer", |text: &str| -> Fallible<i64> {
        text.trim().parse::<i64>().or_else(|_| fail(format!("integer(): {} is not an integer", excerpt(text))))
    });
    e.register_fn("round_to", |x: f64, places: i64| rounded(&x.to_string(), places).and_then(|t| t.parse().ok()).unwrap_or(x));
    e.register_fn("round_to", |x: i64, _places: i64| x as f64);
    e.register_fn("fixed", |x: f64, places: i64| {
        rounded(&x.to_string(), places).unwrap_or_else(|| format!("{x:.*}", places.clamp(0, 15) as usize))
    });
    e.register_fn("fixed", |x: i64, places: i64| {
        rounded(&x.to_string(), places).unwrap_or_else(|| format!("{:.*}", places.clamp(0, 15) as usize, x as f64))
    });
    // Text.
    e.register_fn("trimmed", |s: &str| s.trim().to_string());
    e.register_fn("squish", |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" "));
    e.register_fn("trimmed", |_: ()| String::new());
    e.register_fn("squish", |_: ()| String::new());
    // Look-ups.
    let t = tables.clone();
    e.register_fn("lookup", move |table: &str, key: &str| -> Fallible<Dynamic> {
        let Some(rows) = t.get(table) else { return misuse(unknown_table(table, &t)) };
        Ok(rows
            .get(key)
            .map(|row| Dynamic::from_map(row.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone()))).collect::<Map>()))
            .unwrap_or(Dynamic::UNIT))
    });
    let t = tables;
    e.register_fn("lookup", move |table: &str, key: &str, column: &str| -> Fallible<Dynamic> {
        let Some(rows) = t.get(table) else { return misuse(unknown_table(table, &t)) };
        match rows.get(key) {
            None => Ok(Dynamic::UNIT),
            Some(row) => match row.get(column) {
                Some(v) => Ok(Dynamic::from(ImmutableString::from(v.as_str()))),
                None => misuse(format!("lookup(): table `{table}` has no column `{column}`")),
            },
        }
    });
}

/// A number as a script shows it (`2.345`: a float's shortest form, not its binary expansion
/// 2.34499…) rounded half away from zero to `places` (0 to 15) decimals, as the template
/// helper `number` rounds: `fixed(1.005, 2)` is `1.01` and `fixed(2.5, 0)` is `3` (Rust's
/// formatting gave `1.00` and `2`, a cent off in a price list). `None` for a number no
/// decimal holds exactly (NaN, infinity, beyond 10^30), formatted as before.
fn rounded(shown: &str, places: i64) -> Option<String> {
    let places = u32::try_from(places.clamp(0, 15)).ok()?;
    Some(Decimal::parse(shown).ok()?.rescale(places)?.to_string())
}

fn unknown_table(table: &str, tables: &BTreeMap<String, Table>) -> String {
    let known: Vec<&str> = tables.keys().map(String::as_str).collect();
    format!("lookup(): no table `{table}` (the flow's map step names: {})", if known.is_empty() { "none".into() } else { known.join(", ") })
}

fn parse_date(text: &str, fmt: &str) -> Result<chrono::NaiveDateTime, String> {
    chrono::NaiveDateTime::parse_from_str(text, fmt)
        .or_else(|_| chrono::NaiveDate::parse_from_str(text, fmt).map(|d| d.and_time(chrono::NaiveTime::MIN)))
        .map_err(|e| format!("{} is not a date in the format {fmt:?}: {e}", excerpt(text)))
}

fn reformat_date(text: &str, from: &str, to: &str) -> Fallible<String> {
    let d = parse_date(text, from).map_err(|e| -> Box<EvalAltResult> { format!("date(): {e}").into() })?;
    let mut out = String::new();
    // A bad output format is a formatting error, not a panic (chrono's Display would panic in to_string).
    write!(out, "{}", d.format(to)).or_else(|_| misuse(format!("date(): bad output format {to:?}")))?;
    Ok(out)
}

fn number(text: &str, decimal: char) -> Fallible<f64> {
    let grouping = if decimal == ',' { '.' } else { ',' };
    let t: String = text.trim().chars().filter(|c| !matches!(c, ' ' | '\u{a0}' | '\'')).collect();
    let (int, frac) = match t.split_once(decimal) {
        Some((i, f)) => (i, Some(f)),
        None => (t.as_str(), None),
    };
    // A grouping mark is taken only between groups of three digits: `1,5` read with a decimal
    // point is not 15, it is a decimal comma the script did not ask for.
    let digits = int.trim_start_matches(['-', '+']);
    let groups: Vec<&str> = digits.split(grouping).collect();
    let grouped = groups.len() == 1
        || (matches!(groups[0].len(), 1..=3)
            && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
            && groups[1..].iter().all(|g| g.len() == 3));
    if !grouped || frac.is_some_and(|f| f.contains(grouping)) {
        let other = if decimal == ',' { "number(value)" } else { "number(value, \",\")" };
        return fail(format!(
            "number(): {} has `{grouping}` where no thousands separator can be (groups of three digits); for the other decimal mark write {other}",
            excerpt(text)
        ));
    }
    let cleaned = format!("{}{}", int.replace(grouping, ""), frac.map(|f| format!(".{f}")).unwrap_or_default());
    match cleaned.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => fail(format!("number(): {} is not a number", excerpt(text))),
    }
}

/// Whether `script` declares `name` at its top level (`const RATE = …` on a line of its own).
fn declared_at_top(script: &str, name: &str) -> bool {
    script.lines().any(|l| {
        let words: Vec<&str> = l.split(|c: char| c.is_whitespace() || c == '=' || c == ';').filter(|w| !w.is_empty()).take(2).collect();
        matches!(words[..], ["const" | "let", n] if n == name)
    })
}

/// Why a script's top-level variable `name` is no use to `fn map`, and what to write instead.
fn top_level_hint(name: &str) -> String {
    format!(
        " (the top level is never run: only `fn map` is called, once per record, and a function sees no variable from outside it; declare `{name}` inside `fn map`, or make it a function: `fn {}() {{ … }}`)",
        name.to_lowercase()
    )
}

/// Loads a look-up table (CSV with a header row) keyed by `key`; errors are sentences.
pub fn load_table(path: &Path, raw: &RawLookup) -> Result<Table, String> {
    let cannot_read =
        |e: std::io::Error| format!("cannot read look-up table {}: {}", path.display(), crate::endpoint::local::io_reason(&e));
    // Opened first: a missing table is noted as one of the flow's files all the same.
    let file = crate::config::inputs::open(path).map_err(cannot_read)?;
    if file.metadata().map_err(cannot_read)?.len() > MAX_LOOKUP_BYTES {
        return Err(format!("look-up table {} is larger than {} MiB", path.display(), MAX_LOOKUP_BYTES >> 20));
    }
    let delimiter = super::parse::csv_char(&raw.delimiter)?;
    let text = super::parse::Decoded::table(file);
    let mut rdr = csv::ReaderBuilder::new().delimiter(delimiter).from_reader(text);
    let mut header: Vec<String> = rdr
        .headers()
        .map_err(|e| format!("look-up table {}: {}", path.display(), csv_cause(e.kind())))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    // As in a parsed file: a trailing blank cell is no column, another one is refused (it was
    // a column named ``).
    crate::steps::parse::settle_header(&mut header).map_err(|e| format!("look-up table {}: {e}", path.display()))?;
    // A column named twice: a row's map would keep the later one's value, silently.
    if let Some((a, b)) = crate::steps::parse::repeated(&header).map(|(j, i)| (j + 1, i + 1)) {
        return Err(format!(
            "look-up table {}: the header names column `{}` twice (columns {a} and {b}): `lookup` would give the later one's value only",
            path.display(),
            header[b - 1]
        ));
    }
    let key_at = header
        .iter()
        .position(|h| *h == raw.key)
        .ok_or_else(|| format!("look-up table {} has no column `{}` (columns: {})", path.display(), raw.key, header.join(", ")))?;
    let mut table = Table::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| format!("look-up table {}: {}", path.display(), csv_cause(e.kind())))?;
        let key = rec.get(key_at).unwrap_or_default().to_string();
        let row: BTreeMap<String, String> = header.iter().cloned().zip(rec.iter().map(str::to_string)).collect();
        // A key on two rows that differ: `lookup` would silently give the last one, and which
        // one the table's author meant is theirs to say. Rows repeated as they are do no harm.
        if let Some(before) = table.get(&key)
            && *before != row
        {
            // Rows count from 1 with the header, as the csv errors above say them.
            let at = rec.position().map(|p| format!("row {}: ", p.record() + 1)).unwrap_or_default();
            return Err(format!(
                "look-up table {}: {at}key {} is on an earlier row too, with other values: `lookup` would take one of them silently; keep one row per key",
                path.display(),
                super::excerpt(&key)
            ));
        }
        table.insert(key, row);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapper(script: &str) -> Result<Mapper, String> {
        let mut depts = Table::new();
        depts.insert("FIN".into(), [("code".to_string(), "FIN".to_string()), ("name".to_string(), "Finance".to_string())].into());
        Mapper::build("t.rhai", script, [("depts".to_string(), depts)].into(), 100_000, Duration::from_secs(5))
    }

    #[test]
    fn returns_one_many_or_none() {
        let m = mapper(
            r#"
            fn map(r) {
                if r.kind == "drop" { return (); }
                if r.kind == "two" { return [#{ n: 1 }, #{ n: 2 }]; }
                #{ id: integer(r.id), name: squish(r.name), dept: lookup("depts", r.dept, "name") }
            }"#,
        )
        .unwrap();
        assert_eq!(
            m.map(&json!({"kind": "one", "id": " 7 ", "name": "  Anna   M ", "dept": "FIN"})).unwrap(),
            [json!({"id": 7, "name": "Anna M", "dept": "Finance"})]
        );
        assert_eq!(m.map(&json!({"kind": "two"})).unwrap().len(), 2);
        assert!(m.map(&json!({"kind": "drop"})).unwrap().is_empty());
        let e = m.map(&json!({"kind": "one", "id": "x", "name": "", "dept": "FIN"})).unwrap_err().error;
        assert_eq!(e, MapError::Record("t.rhai line 5: integer(): \"x\" is not an integer".into()));
    }

    /// Grouping marks only between groups of three digits; no NaN or infinity.
    #[test]
    fn numbers_are_read_strictly() {
        for (text, dec, want) in [
            ("1,234.50", '.', 1234.5),
            ("-1.234.567,5", ',', -1_234_567.5),
            ("1 234,50", ',', 1234.5),
            ("12", '.', 12.0),
            ("1e3", '.', 1000.0),
            (" 0,5 ", ',', 0.5),
        ] {
            assert_eq!(number(text, dec).unwrap(), want, "{text}");
        }
        for (text, dec) in
            [("1,5", '.'), ("1.5", ','), ("12,34.5", '.'), ("1.234,5,6", ','), ("1,23.4,5", '.'), ("NaN", '.'), ("inf", '.'), ("", '.')]
        {
            assert!(number(text, dec).is_err(), "{text} with {dec}");
        }
        let e = number("1,5", '.').unwrap_err().to_string();
        assert!(e.contains("has `,` where no thousands separator can be") && e.contains("number(value, \",\")"), "{e}");
    }

    #[test]
    fn fixed_and_round_to_round_half_away_from_zero_on_the_number_as_written() {
        // Half away from zero, on the number as written, as the template helper `number`:
        // not the binary expansion (1.00499…) nor round-half-even (2.5 → 2).
        let m = mapper(
            r#"fn map(r) { #{
                a: fixed(1.005, 2), b: fixed(2.5, 0), c: fixed(-2.5, 0), d: fixed(0.125, 2), e: fixed(7, 2),
                f: round_to(1.005, 2), g: round_to(-0.125, 2), h: fixed(1e300, 1), i: fixed(1.0 / 0.0, 2),
            } }"#,
        )
        .unwrap();
        let out = &m.map(&json!({})).unwrap()[0];
        assert_eq!(
            [&out["a"], &out["b"], &out["c"], &out["d"], &out["e"]].map(|v| v.as_str().unwrap_or_default()),
            ["1.01", "3", "-3", "0.13", "7.00"]
        );
        assert_eq!((out["f"].as_f64(), out["g"].as_f64()), (Some(1.01), Some(-0.13)));
        assert!(out["h"].as_str().is_some_and(|h| h.starts_with("1000") && h.ends_with(".0")), "{}", out["h"]);
        assert_eq!(out["i"], "inf");
    }

    #[test]
    fn helpers_for_dates_numbers_and_lookups() {
        let m = mapper(
            r#"fn map(r) { #{
                d: date(r.d, "%d.%m.%Y", "%Y-%m-%d"),
                ok: is_date("2024-02-30", "%Y-%m-%d"),
                p: number("1.234,50", ","),
                q: fixed(number("3.14159"), 2),
                r: round_to(2.675, 1),
                dept: lookup("depts", "FIN"),
                none: lookup("depts", "XX") == (),
            } }"#,
        )
        .unwrap();
        let out = &m.map(&json!({"d": "31.12.2024"})).unwrap()[0];
        assert_eq!(out["d"], "2024-12-31");
        assert_eq!(out["ok"], false);
        assert_eq!(out["p"], 1234.5);
        assert_eq!(out["q"], "3.14");
        assert_eq!(out["r"], 2.7);
        assert_eq!(out["dept"]["name"], "Finance");
        assert_eq!(out["none"], true);
        let m = mapper(r#"fn map(r) { #{ d: date(r.d, "%d.%m.%Y", "%Y") } }"#).unwrap();
        let e = m.map(&json!({"d": "2024-12-31"})).unwrap_err().error;
        assert!(matches!(&e, MapError::Record(s) if s.starts_with("t.rhai line 1: date(): \"2024-12-31\" is not a date")), "{e:?}");
        let m = mapper(r#"fn map(r) { lookup("nope", "x") }"#).unwrap();
        assert!(
            matches!(m.map(&json!({})).unwrap_err().error, MapError::Script(s) if s.contains("no table `nope` (the flow's map step names: depts)"))
        );
    }

    /// A record holding a cell longer than a script's string may be (a 2 MB note): before,
    /// the script "failed" on every such record with "a string grew past the 1 MiB…", as if it
    /// had made the string. Now the record is refused as the data's, naming the field.
    #[test]
    fn a_record_with_text_too_long_for_a_script_names_the_field() {
        let m = Mapper::build("t.rhai", "fn map(r) { r }", BTreeMap::new(), 1_000_000, Duration::from_secs(5)).unwrap();
        let long = "x".repeat(MAX_STRING + 1);
        assert_eq!(
            m.map(&json!({ "id": 1, "lines": [{ "note": long }] })).unwrap_err().error,
            MapError::Record(format!(
                "t.rhai: `lines[0].note` holds {} bytes of text, more than the 1 MiB a script's string may have: the record is not mapped",
                MAX_STRING + 1
            ))
        );
        assert!(m.map(&json!({ "note": "x".repeat(MAX_STRING) })).is_ok());
    }

    /// A script over one of its size limits is told which limit, and how big it is
    /// (before: Rhai's "Length of string too large", "Stack overflow").
    #[test]
    fn a_script_over_a_limit_is_told_which() {
        let err = |body: &str| {
            let m = Mapper::build("t.rhai", body, BTreeMap::new(), 1_000_000, Duration::from_secs(5)).unwrap();
            match m.map(&json!({})).unwrap_err().error {
                MapError::Script(s) => s,
                e => panic!("{e:?}"),
            }
        };
        assert_eq!(
            err("fn map(r) {\n  let s = \"x\";\n  loop { s += s; }\n}"),
            "t.rhai: a string grew past the 1 MiB a script's string may have (mapping one record)"
        );
        assert_eq!(
            err("fn map(r) {\n  let a = [];\n  loop { a.push(1); }\n}"),
            "t.rhai: an array grew past the 100000 items a script's array may have (mapping one record)"
        );
        assert_eq!(
            err("fn f(n) { f(n + 1) }\nfn map(r) { f(0) }"),
            "t.rhai: functions called one another more than 32 deep (a runaway recursion?)"
        );
    }

    #[test]
    fn runaway_loops_are_stopped_by_the_operation_limit_and_the_clock() {
        let m = mapper("fn map(r) { loop { } }").unwrap();
        let t = Instant::now();
        let e = m.map(&json!({})).unwrap_err().error;
        assert!(matches!(&e, MapError::Script(s) if s.contains("too many operations")), "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(5));
        // Without an operation limit, the wall clock stops it.
        let m =
            Mapper::build("t.rhai", "fn map(r) { let x = 0; loop { x += 1; } }", BTreeMap::new(), 0, Duration::from_millis(200)).unwrap();
        m.start_file();
        let t = Instant::now();
        let e = m.map(&json!({})).unwrap_err().error;
        m.end_file();
        assert!(matches!(&e, MapError::Timeout(s) if s.contains("time limit of 200ms")), "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }

    #[test]
    fn syntax_errors_name_the_line_and_modules_and_eval_are_refused() {
        let e = mapper("fn map(r) {\n  let x = ;\n}").unwrap_err();
        assert!(e.starts_with("t.rhai line 2, col 11: "), "{e}");
        assert_eq!(mapper("fn transform(r) { r }").unwrap_err(), "t.rhai defines no `fn map(record)`");
        // Before: "defines no `fn map(record)`", of a script that plainly defines a `map`.
        assert_eq!(
            mapper("fn map(r, x) { r }").unwrap_err(),
            "t.rhai defines `fn map(r, x)` with 2 parameters where 1 is expected: `fn map(record)`, called with each record"
        );
        assert_eq!(
            mapper("fn map() { #{} }").unwrap_err(),
            "t.rhai defines `fn map()` with 0 parameters where 1 is expected: `fn map(record)`, called with each record"
        );
        assert_eq!(
            mapper("let n = record.amount;\n#{ n: n }").unwrap_err(),
            "t.rhai line 1, col 9: Undefined variable: record (a map script's code goes in `fn map(record) { … }`, which is called once per record)"
        );
        // Before: valid, then every record failed with "Variable not found: global::RATE".
        assert_eq!(
            mapper("const RATE = 2;\nfn map(r) { r.x = global::RATE; r }").unwrap_err(),
            "t.rhai: `RATE` is declared at the script's top level (the top level is never run: only `fn map` is called, once per record, and a function sees no variable from outside it; declare `RATE` inside `fn map`, or make it a function: `fn rate() { … }`)"
        );
        let e = mapper("let rate = 2;\nfn map(r) { r.x = rate; r }").unwrap_err();
        assert!(e.starts_with("t.rhai line 2, col 19: Undefined variable: rate (the top level is never run"), "{e}");
        // Syntax errors name the column, and a missing `;` where a person looks for it.
        let e = mapper("fn map(r) {\n    let x = r.a +* 2;\n    x\n}").unwrap_err();
        assert_eq!(e, "t.rhai line 2, col 18: Unexpected '*'");
        let e = mapper("fn map(r) {\n    let x = r.a\n    #{ x: x }\n}").unwrap_err();
        assert!(e.starts_with("t.rhai line 3, col 5: Expecting ';' to terminate this statement (the statement before this point lacks its `;`: at the end of the line above?)"), "{e}");
        let e = mapper("fn map(r) { eval(\"1\") }").unwrap_err();
        assert!(e.contains("eval"), "{e}");
        let m = mapper("fn map(r) { import \"/etc/passwd\" as m; r }").unwrap();
        let e = m.map(&json!({})).unwrap_err().error;
        assert!(matches!(&e, MapError::Script(s) if s.contains("line 1") && s.contains("Module not found")), "{e:?}");
        let e = mapper("fn map(r) { undefined_var }").unwrap_err();
        assert!(e.contains("line 1") && e.contains("undefined_var"), "{e}");
    }

    #[test]
    fn bad_return_values_and_size_limits() {
        let m = mapper("fn map(r) { 42 }").unwrap();
        assert!(matches!(m.map(&json!({})).unwrap_err().error, MapError::Script(s) if s.contains("not i64")));
        let m = mapper("fn map(r) { let s = \"x\"; for i in 0..30 { s += s; } #{ s: s } }").unwrap();
        assert!(matches!(m.map(&json!({})).unwrap_err().error, MapError::Script(s) if s.contains("a string grew past")));
    }

    /// A `throw` or a helper refusing a value is the record's problem; an error of the script
    /// itself (whatever the record) is the script's, with its line.
    #[test]
    fn script_faults_are_told_from_records_the_script_refuses() {
        let m = mapper(
            "fn map(r) {\n  if r.k == \"throw\" { throw `bad code ${r.c}`; }\n  if r.k == \"int\" { return #{ n: integer(r.c) }; }\n  if r.k == \"fn\" { return #{ n: r.c.trimm() }; }\n  if r.k == \"var\" { return #{ n: nope }; }\n  if r.k == \"args\" { return #{ n: integer(r.c, 2) }; }\n  if r.k == \"type\" { return #{ n: r.c - 1 }; }\n  if r.k == \"table\" { return lookup(\"nope\", r.c); }\n  if r.k == \"column\" { return #{ n: lookup(\"depts\", \"FIN\", \"nope\") }; }\n  if r.k == \"sep\" { return #{ n: number(r.c, \";\") }; }\n  r\n}",
        );
        // `nope` is not a variable: refused when the script is compiled (strict variables).
        assert!(matches!(&m, Err(e) if e.contains("line 5") && e.contains("nope")), "{m:?}");
        let m = mapper(
            "fn map(r) {\n  if r.k == \"throw\" { throw `bad code ${r.c}`; }\n  if r.k == \"int\" { return #{ n: integer(r.c) }; }\n  if r.k == \"fn\" { return #{ n: r.c.trimm() }; }\n  if r.k == \"args\" { return #{ n: integer(r.c, 2) }; }\n  if r.k == \"type\" { return #{ n: r.c - 1 }; }\n  if r.k == \"table\" { return lookup(\"nope\", r.c); }\n  if r.k == \"column\" { return #{ n: lookup(\"depts\", \"FIN\", \"nope\") }; }\n  if r.k == \"sep\" { return #{ n: number(r.c, \";\") }; }\n  if r.k == \"field\" { return #{ n: r.missing.trim() }; }\n  r\n}",
        )
        .unwrap();
        let err = |k: &str| m.map(&json!({ "k": k, "c": "x" })).unwrap_err().error;
        assert_eq!(err("throw"), MapError::Record("t.rhai line 2: bad code x".into()));
        assert_eq!(err("int"), MapError::Record("t.rhai line 3: integer(): \"x\" is not an integer".into()));
        let m = mapper("fn map(r) { #{ n: r.qty + 1 } }").unwrap();
        assert!(matches!(m.map(&json!({})).unwrap_err().error, MapError::Script(s) if s.contains("+ ((), i64) (`()` is no value")));
        for (k, line, text) in [
            ("fn", 4, "Function not found: trimm (string)"),
            ("args", 5, "Function not found: integer (string, i64)"),
            ("type", 6, "Function not found: - (string, i64)"),
            ("table", 7, "lookup(): no table `nope` (the flow's map step names: depts)"),
            ("column", 8, "lookup(): table `depts` has no column `nope`"),
            ("sep", 9, "number(): the decimal separator must be \".\" or \",\", not \";\""),
            // A missing field reads as `()`: told from a script fault by the owner, not here.
            (
                "field",
                10,
                "Function not found: trim (()) (`()` is no value: a field the record does not have (a misspelt name?), or a function that returned nothing; test it first: `if r.note != () { … }`)",
            ),
        ] {
            assert_eq!(err(k), MapError::Script(format!("t.rhai line {line}: {text}")), "{k}");
        }
    }

    #[test]
    fn look_up_tables_load_from_csv() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        std::fs::write(&p, "code,name\nFIN,Finance\nHR,People\n").unwrap();
        let raw = RawLookup { file: "d.csv".into(), key: "code".into(), delimiter: ",".into() };
        let t = load_table(&p, &raw).unwrap();
        assert_eq!(t["HR"]["name"], "People");
        // A key on two rows that differ is refused (before: the last row won, silently); a
        // row repeated as it is, is fine.
        std::fs::write(&p, "code,name\nFIN,Finance\nHR,People\nHR,People\nFIN,Finanzen\n").unwrap();
        assert_eq!(
            load_table(&p, &raw).unwrap_err(),
            format!(
                "look-up table {}: row 5: key \"FIN\" is on an earlier row too, with other values: `lookup` would take one of them silently; keep one row per key",
                p.display()
            )
        );
        std::fs::write(&p, "code,name\nFIN,Finance\nHR,People\nHR,People\n").unwrap();
        assert_eq!(load_table(&p, &raw).unwrap().len(), 2);
        // A blank header cell is refused, a trailing one is no column (before: a column ``).
        std::fs::write(&p, "code,,name\nFIN,x,Finance\n").unwrap();
        assert_eq!(
            load_table(&p, &raw).unwrap_err(),
            format!(
                "look-up table {}: column 2 of the header has no name (a blank header cell): its values could not be named",
                p.display()
            )
        );
        std::fs::write(&p, "code,name,\nFIN,Finance,\n").unwrap();
        assert_eq!(load_table(&p, &raw).unwrap()["FIN"].keys().collect::<Vec<_>>(), ["code", "name"]);
        // A column named twice is refused (before: the later one's value, silently).
        std::fs::write(&p, "code,name, name\nFIN,Finance,Finanzen\n").unwrap();
        assert_eq!(
            load_table(&p, &raw).unwrap_err(),
            format!(
                "look-up table {}: the header names column `name` twice (columns 2 and 3): `lookup` would give the later one's value only",
                p.display()
            )
        );
        std::fs::write(&p, "code,name\nFIN,Finance\nHR,People\n").unwrap();
        let raw = RawLookup { key: "id".into(), ..raw };
        assert!(load_table(&p, &raw).unwrap_err().contains("has no column `id` (columns: code, name)"));
        // Before: "CSV error: record 2 (line: 3, byte: 24): found record with 1 fields, but …".
        std::fs::write(&p, "code,name\nFIN,Finance\nHR\n").unwrap();
        let raw = RawLookup { key: "code".into(), ..raw };
        assert_eq!(
            load_table(&p, &raw).unwrap_err(),
            format!("look-up table {}: row 3: 1 field where the first row has 2 fields", p.display())
        );
        // The OS's reason, as the rest of wharf says it (before: "… (os error 2)"); and the
        // missing table is one of the flow's files, so that `wharf serve` loads the flow again
        // when it appears.
        let gone = dir.path().join("gone.csv");
        let (e, noted) = crate::config::inputs::recording(|| load_table(&gone, &raw).unwrap_err());
        assert_eq!(e, format!("cannot read look-up table {}: No such file or directory", gone.display()));
        assert_eq!(noted, [gone].into());
    }

    /// A table that is not UTF-8 says to save it as UTF-8 (before: to "set `encoding` in the
    /// parse step", which a look-up table does not have).
    #[test]
    fn a_look_up_table_that_is_not_utf8_says_to_save_it_as_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.csv");
        let raw = RawLookup { file: "d.csv".into(), key: "code".into(), delimiter: ",".into() };
        std::fs::write(&p, b"code,name\nFIN,Financ\xe9\n").unwrap();
        assert_eq!(
            load_table(&p, &raw).unwrap_err(),
            format!(
                "look-up table {}: the file is not valid UTF-8 on line 2 (byte offset 20); save the table as UTF-8 (a look-up table has no `encoding` setting)",
                p.display()
            )
        );
        std::fs::write(&p, b"c\0o\0d\0e\0\n\0").unwrap();
        assert_eq!(
            load_table(&p, &raw).unwrap_err(),
            format!(
                "look-up table {}: the file holds NUL bytes (the first on line 1): it may be UTF-16 without a byte-order mark; save the table as UTF-8 (a look-up table has no `encoding` setting)",
                p.display()
            )
        );
    }

    /// A JSON number no script float holds makes its record invalid, naming where it is
    /// (before: `1e400` reached the script as NaN and was written `null`; `1e-400` as `0.0`).
    #[test]
    fn a_number_beyond_a_float_is_the_record_s_problem() {
        let m = mapper("fn map(r) { r }").unwrap();
        let big: Value = serde_json::from_str(r#"{"id": 1, "lines": [{"qty": 2}, {"qty": 1e400}]}"#).unwrap();
        assert_eq!(
            m.map(&big).unwrap_err().error,
            MapError::Record(
                "t.rhai: `lines[1].qty` is 1e+400, a number a script cannot hold (beyond ±1.8e308, or so close to 0 that it would be 0): the record is not mapped"
                    .into()
            )
        );
        let tiny: Value = serde_json::from_str(r#"{"p": -1e-400}"#).unwrap();
        assert!(matches!(m.map(&tiny).unwrap_err().error, MapError::Record(s) if s.contains("`p` is -1e-400")));
        let zeros: Value = serde_json::from_str(r#"{"a": 0.0, "b": 0e7, "c": 1e300, "d": 2.5e-300}"#).unwrap();
        assert_eq!(m.map(&zeros).unwrap().len(), 1, "zeros and large or small floats that fit pass");
    }

    #[test]
    fn records_convert_to_and_from_script_values() {
        let rec = serde_json::json!({ "s": "x", "i": -3, "f": 1.5, "b": true, "n": null, "a": [1, "y"], "o": { "k": 2 } });
        assert_eq!(from_dynamic(&to_dynamic(&rec).unwrap()).unwrap(), rec);
        let m = mapper(r#"fn map(r) { #{ c: 'z', big: r.big } }"#).unwrap();
        let out = m.map(&serde_json::json!({ "big": u64::MAX })).unwrap();
        assert_eq!(out, [serde_json::json!({ "c": "z", "big": u64::MAX })]);
    }

    /// An infinity or NaN the script computes makes its record invalid, naming the field and
    /// the script (before: written `null`, this test's earlier expectation for `1.0 / 0.0`).
    #[test]
    fn a_computed_infinity_or_nan_is_the_record_s_problem() {
        let m = mapper(
            "fn map(r) { #{ id: r.id, rate: r.total / r.hours, lines: [#{ q: 1.0 }, #{ q: r.total / r.hours - r.total / r.hours }] } }",
        )
        .unwrap();
        assert_eq!(
            m.map(&json!({ "id": 1, "total": 5.0, "hours": 0.0 })).unwrap_err().error,
            MapError::Record(
                "t.rhai: the returned `lines[1].q` is NaN, which no record can hold (a division by zero, or a number grown beyond ±1.8e308?): the record is not mapped"
                    .into()
            )
        );
        // Of several records returned, the failure says which (the field path alone does not).
        let m = mapper("fn map(r) { [#{ id: r.id }, #{ rate: r.total / r.hours }, #{ id: r.id }] }").unwrap();
        let e = m.map(&json!({ "id": 1, "total": -5.0, "hours": 0.0 })).unwrap_err();
        assert!(matches!(&e.error, MapError::Record(s) if s.contains("the returned `rate` is -inf")), "{e:?}");
        assert_eq!(e.returned, Some(Returned { record: 2, of: 3 }));
        let m = mapper("fn map(r) { [#{ rate: r.total / r.hours }] }").unwrap();
        assert_eq!(m.map(&json!({ "total": 1.0, "hours": 0.0 })).unwrap_err().returned, None, "one returned: its row says which");
        let m = mapper("fn map(r) { [#{ id: r.id }, #{ rate: r.total / r.hours }] }").unwrap();
        assert_eq!(m.map(&json!({ "id": 1, "total": 5.0, "hours": 2.0 })).unwrap(), [json!({ "id": 1 }), json!({ "rate": 2.5 })]);
    }

    /// Integers beyond i64 pass through a script digit for digit (they became floats:
    /// `12345678901234567890` was written `1.2345678901234567e19`).
    #[test]
    fn big_integers_pass_through_unchanged_and_refuse_arithmetic() {
        let rec: Value =
            serde_json::from_str(r#"{"u": 12345678901234567890, "b": -98765432109876543210123, "f": 12.10, "x": 1e2}"#).unwrap();
        let m = mapper(
            r#"fn map(r) { #{ u: r.u, b: r.b, f: r.f, x: r.x, t: `${r.u}`, s: r.b.to_string(), k: type_of(r.u), same: r.u == r.u } }"#,
        )
        .unwrap();
        let out = serde_json::to_string(&m.map(&rec).unwrap()[0]).unwrap();
        assert_eq!(
            out,
            r#"{"b":-98765432109876543210123,"f":12.1,"k":"big integer","s":"-98765432109876543210123","same":true,"t":"12345678901234567890","u":12345678901234567890,"x":100.0}"#
        );
        let m = mapper("fn map(r) { #{ u: r.u + 1 } }").unwrap();
        assert!(
            matches!(m.map(&rec).map_err(|f| f.error), Err(MapError::Script(e)) if e.contains("+ (big integer, i64)")),
            "{:?}",
            m.map(&rec)
        );
        let m = mapper(r#"fn map(r) { #{ t: timestamp() } }"#).unwrap();
        assert!(
            matches!(m.map(&serde_json::json!({})).map_err(|f| f.error), Err(MapError::Script(e)) if e.contains("cannot be written")),
            "timestamp"
        );
    }
}
