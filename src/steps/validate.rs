//! `validate`: every record against a JSON Schema (draft 2020-12), and the file against its
//! completeness rules (required CSV columns, an expected record count from a companion file).
//!
//! Owns schema loading and compiling (once, when the flow is validated), the conversion of
//! CSV text to the types the schema declares, and turning jsonschema errors into
//! (field, message) pairs. It does not decide what an invalid record does to its file.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jsonschema::JsonType;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::LocationSegment;
use serde_json::Value;

use crate::config::raw_steps::RawValidate;
use crate::template::NameTemplate;

/// A built `validate` step.
#[derive(Clone)]
pub struct Validate {
    /// The compiled schema and the file it came from.
    pub schema: Option<(Arc<jsonschema::Validator>, PathBuf)>,
    /// Top-level properties whose declared type a CSV text value is converted to.
    pub coerce: BTreeMap<String, Coerce>,
    /// The only top-level properties a valid record can have, when the schema allows no others
    /// (`additionalProperties: false` beside `properties`, no `patternProperties`): a template
    /// reading another field has made a mistake (see `render/fields.rs`). `None`: open.
    pub closed: Option<BTreeSet<String>>,
    pub required_columns: Vec<String>,
    pub row_count_file: Option<NameTemplate>,
}

impl std::fmt::Debug for Validate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validate")
            .field("schema", &self.schema.as_ref().map(|(_, p)| p))
            .field("required_columns", &self.required_columns)
            .finish_non_exhaustive()
    }
}

/// What a CSV text value may be converted to (from the schema's `type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coerce {
    pub integer: bool,
    pub number: bool,
    pub boolean: bool,
    pub null: bool,
}

/// One problem with one record: the field (a dotted path; `None` for the record as a whole) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Option<String>,
    pub message: String,
}

impl Coerce {
    /// What `text` becomes: `Some(Some(value))` converted, `Some(None)` dropped (an empty
    /// cell), `None` left as it is.
    fn convert(&self, text: &str) -> Option<Option<Value>> {
        let t = text.trim();
        if t.is_empty() {
            Some(None)
        } else if self.integer
            && let Ok(i) = t.parse::<i64>()
        {
            Some(Some(Value::from(i)))
        } else if self.integer
            && let Some(n) = big_integer(t)
        {
            // Beyond i64: as a float it would lose its last digits (a 20-digit order number).
            Some(Some(Value::Number(n)))
        } else if self.integer
            && !self.number
            && let Some(n) = whole(t)
        {
            // An integer written as a whole float (`3.0`, `1e3`, a 20-digit `….00`): an
            // integer property gives a script an integer, as `3` would (`r.qty / 2` divides
            // integers for both).
            Some(Some(Value::Number(n)))
        } else if (self.number || self.integer)
            && let Some(n) = t.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(serde_json::Number::from_f64)
        {
            // A `number` is a float, `5` too: a script dividing it divides floats, as the
            // schema's type says (`r.qty / 2` is 2.5). A value the script passes on unchanged
            // is written as its cell was (`1`, not `1.0`: `map::keep_as_written`). An integer
            // property given `3.0` still validates (2020-12 counts it as an integer).
            Some(Some(Value::Number(n)))
        } else if self.boolean && matches!(t, "true" | "false") {
            Some(Some(Value::Bool(t == "true")))
        } else if self.null && t == "null" {
            Some(Some(Value::Null))
        } else {
            None
        }
    }
}

/// `text` as an exact JSON integer when it is one (`-`, then digits; leading zeros and a `+`
/// are dropped, as `parse::<i64>` does).
fn big_integer(text: &str) -> Option<serde_json::Number> {
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    format!("{sign}{digits}").parse().ok()
}

/// `text` as an exact JSON integer when it writes a whole number as a float: a fraction of
/// zeros (`3.0`, `-12345678901234567890.00`, exact whatever its length), or an exponent whose
/// value is whole and exact as a float (`1e3`, `2.5E2`; not `1e30`).
fn whole(text: &str) -> Option<serde_json::Number> {
    if let Some((int, frac)) = text.split_once('.')
        && !frac.is_empty()
        && frac.bytes().all(|b| b == b'0')
    {
        return big_integer(int);
    }
    let f = text.parse::<f64>().ok().filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)?;
    // Invariant: whole and within ±2^53 (checked above), so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    Some(serde_json::Number::from(f as i64))
}

impl Validate {
    /// Builds the step; relative paths resolve against `base`. Errors name the field.
    pub fn build(raw: &RawValidate, base: &Path) -> Result<Validate, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let schema = raw.schema.as_ref().and_then(|rel| match load_schema(&crate::config::paths::resolve(base, rel)) {
            Ok((v, coerce, closed)) => Some((Arc::new(v), crate::config::paths::absolute(&base.join(rel)), coerce, closed)),
            Err(e) => {
                problems.push(("schema", e));
                None
            }
        });
        let row_count_file = match raw.row_count_file.as_deref().map(NameTemplate::new) {
            Some(Ok(t)) => match t.check().and_then(|()| t.per_file()) {
                Ok(()) => Some(t),
                Err(e) => {
                    problems.push(("row_count_file", e));
                    None
                }
            },
            Some(Err(e)) => {
                problems.push(("row_count_file", e));
                None
            }
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let (schema, coerce, closed) = match schema {
            Some((v, p, c, closed)) => (Some((v, p)), c, closed),
            None => (None, BTreeMap::new(), None),
        };
        Ok(Validate { schema, coerce, closed, required_columns: raw.required_columns.clone(), row_count_file })
    }

    /// `record` with its CSV text values converted to the types the schema declares: `"42"` →
    /// 42 for an `integer` property, `"true"` → true for a `boolean`. An empty cell of a
    /// declared property is dropped: in CSV an empty cell is how "no value" is written, so
    /// `required` reports it and an optional property passes (a `minLength` or `pattern` would
    /// otherwise refuse it).
    ///
    /// The record itself is never changed: the conversion is made on a copy, taken only when
    /// some value is converted, so what is delivered keeps the cells as written (`007`, `12.10`).
    pub fn typed<'a>(&self, mut record: Cow<'a, Value>) -> Cow<'a, Value> {
        for (field, c) in &self.coerce {
            let Some(Value::String(text)) = record.get(field) else { continue };
            // `None`: leave it, and the schema reports the type error with the original text.
            let Some(converted) = c.convert(text) else { continue };
            let Some(obj) = record.to_mut().as_object_mut() else { break };
            match converted {
                Some(v) => obj.insert(field.clone(), v),
                None => obj.remove(field),
            };
        }
        record
    }

    /// Every schema error of `record`.
    pub fn check(&self, record: &Value) -> Vec<FieldError> {
        let Some((v, _)) = &self.schema else { return vec![] };
        v.iter_errors(record)
            .map(|e| {
                let mut segments: Vec<String> = e
                    .instance_path()
                    .iter()
                    .map(|s| match s {
                        LocationSegment::Property(p) => p.to_string(),
                        LocationSegment::Index(i) => i.to_string(),
                    })
                    .collect();
                match e.kind() {
                    ValidationErrorKind::Required { property } => segments.push(property.as_str().unwrap_or_default().to_string()),
                    ValidationErrorKind::AdditionalProperties { unexpected } if unexpected.len() == 1 => {
                        segments.push(unexpected[0].clone())
                    }
                    _ => {}
                }
                let field = (!segments.is_empty()).then(|| segments.join("."));
                // A message quotes the value it is about: a 1 MB cell would make a 1 MB message
                // (and report line), so a long value is quoted in part.
                let shown = super::excerpt_json(e.instance());
                let mut message = match (e.kind(), shown) {
                    // jsonschema says `"x" is not a "email"`.
                    (ValidationErrorKind::Format { format }, shown) => {
                        format!("{} is not a valid {format}", shown.unwrap_or_else(|| e.instance().to_string()))
                    }
                    (_, Some(short)) => e.masked_with(short).to_string(),
                    (_, None) => e.to_string(),
                };
                message.push_str(written_as(e.kind(), e.instance()));
                // A header `Order_ID` for the schema's `order_id` made every row "lack" it.
                if let (ValidationErrorKind::Required { property }, Some(given)) = (e.kind(), e.instance().as_object()) {
                    let near = written_otherwise(property.as_str().unwrap_or_default(), given.keys().map(String::as_str));
                    if !near.is_empty() {
                        message.push_str(&format!(" (the record has {}: names are matched exactly, letter case included)", quoted(&near)));
                    }
                }
                FieldError { field, message }
            })
            .collect()
    }

    /// Required CSV columns missing from `header`, as one sentence (or `None`).
    /// A column the header has in another letter case or spelling (`Order_ID`, `Order ID`
    /// for `order_id`) is named beside the one it lacks.
    pub fn missing_columns(&self, header: &[String]) -> Option<String> {
        let mut near_any = false;
        let missing: Vec<String> = self
            .required_columns
            .iter()
            .filter(|c| !header.contains(c))
            .map(|c| {
                let near = written_otherwise(c, header.iter().map(String::as_str));
                near_any |= !near.is_empty();
                if near.is_empty() { format!("`{c}`") } else { format!("`{c}` (the header has {})", quoted(&near)) }
            })
            .collect();
        if missing.is_empty() {
            return None;
        }
        let exactly = if near_any { "; column names are matched exactly, letter case included" } else { "" };
        // A header of one column holding another separator gets the pipeline's delimiter
        // hint (`parse::delimiter_hint`), as every reason a file is refused for does.
        Some(format!("the header lacks required column(s) {}{exactly}", missing.join(", ")))
    }
}

/// What a value the schema refused for its type or format is to be written like, when it is
/// written the way a partner's locale writes it: `12,50` or `1.234,56` for a `number` (read
/// with a decimal point only), `03.01.2026` for a `date` (ISO 8601). Nothing otherwise.
fn written_as(kind: &ValidationErrorKind, value: &Value) -> &'static str {
    let Value::String(text) = value else { return "" };
    match kind {
        ValidationErrorKind::Type { kind } if numeric(kind) && decimal_comma(text) => {
            " (a decimal comma: a number is written with a decimal point, as in 12.5)"
        }
        ValidationErrorKind::Format { format } if format == "date" => " (a date is written YYYY-MM-DD, as in 2026-01-31)",
        ValidationErrorKind::Format { format } if format == "date-time" => " (a date-time is written as in 2026-01-31T14:30:00Z)",
        _ => "",
    }
}

/// Whether a type error's expected types hold `number` or `integer`.
fn numeric(kind: &TypeKind) -> bool {
    let numbers = [JsonType::Number, JsonType::Integer];
    match kind {
        TypeKind::Single(t) => numbers.contains(t),
        TypeKind::Multiple(set) => numbers.iter().any(|t| set.contains(*t)),
    }
}

/// Whether `text` is a number written with a decimal comma (`12,50`, `-0,5`, `1.234,56`,
/// `1 234,5`).
fn decimal_comma(text: &str) -> bool {
    let t = text.trim();
    let t = t.strip_prefix(['-', '+']).unwrap_or(t);
    let Some((whole, fraction)) = t.split_once(',') else { return false };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut groups = whole.split(['.', ' ']);
    let first = groups.next().unwrap_or_default();
    let grouped = groups.all(|g| g.len() == 3 && digits(g));
    digits(fraction) && digits(first) && grouped && (first.len() <= 3 || !whole.contains(['.', ' ']))
}

/// The names among `names` that were most likely meant for `wanted`: it in other letter case
/// or with other separators (`Order ID`, `ORDER-ID` for `order_id`), or a typing mistake
/// away ([`crate::suggest::close`]).
fn written_otherwise<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let bare = |s: &str| s.chars().filter(|c| !matches!(c, ' ' | '_' | '-' | '.')).collect::<String>().to_lowercase();
    let wanted_bare = bare(wanted);
    crate::suggest::close(wanted, names, |lower| bare(lower) == wanted_bare)
}

/// `a`, `b` quoted and joined, for a message.
fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

/// A compiled record schema, the CSV conversions derived from it and its closed set of
/// properties (see [`Validate::closed`]).
type Loaded = (jsonschema::Validator, BTreeMap<String, Coerce>, Option<BTreeSet<String>>);

/// Reads and compiles a record schema; also derives the CSV conversions from it.
fn load_schema(path: &Path) -> Result<Loaded, String> {
    let text = crate::config::inputs::read_code(path)
        .map_err(|e| format!("cannot read schema {}: {}", path.display(), crate::endpoint::local::io_reason(&e)))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| format!("schema {} is not JSON: {e}", path.display()))?;
    let validator =
        jsonschema::options().with_draft(jsonschema::Draft::Draft202012).should_validate_formats(true).build(&value).map_err(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() { String::new() } else { format!(" (at {at})") };
            // Before: "Resource '…' is not present in a registry and retrieving it failed: No
            // base URI is available", jsonschema's words for a reference wharf never fetches.
            if let ValidationErrorKind::Referencing(jsonschema::ReferencingError::Unretrievable { uri, .. }) = e.kind() {
                return format!(
                    "schema {} refers to `{uri}`{at}, outside the file: a record schema is self-contained (other files and URLs are not fetched); copy what it refers to into the schema's `$defs` and refer to it as `#/$defs/NAME`",
                    path.display()
                );
            }
            format!("schema {} does not compile: {e}{at}", path.display())
        })?;
    Ok((validator, coercions(&value), closed(&value)))
}

/// The top-level properties of a schema that allows no others. Only `additionalProperties:
/// false` closes a schema for sure: whatever `allOf` or `$ref` add beside it, a property
/// outside `properties` (and `patternProperties`, which would need matching, so it opens the
/// set here) is refused. `unevaluatedProperties` can be satisfied by other keywords: open.
fn closed(schema: &Value) -> Option<BTreeSet<String>> {
    let props = schema.get("properties")?.as_object()?;
    let patterns = schema.get("patternProperties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
    (schema.get("additionalProperties") == Some(&Value::Bool(false)) && !patterns).then(|| props.keys().cloned().collect())
}

/// The properties a record schema declares, with the types each may have: written on the
/// property (`"type"`), or reached through a local `$ref` (`#/$defs/…`, `#/definitions/…`) or
/// the branches of `anyOf` / `oneOf` / `allOf` — on the property and on the record itself. A
/// type any branch declares is worth trying: the schema still decides.
fn coercions(schema: &Value) -> BTreeMap<String, Coerce> {
    let mut out: BTreeMap<String, Coerce> = BTreeMap::new();
    walk(schema, schema, &mut Vec::new(), &mut |record| {
        let Some(props) = record.get("properties").and_then(Value::as_object) else { return };
        for (name, p) in props {
            let c = out.entry(name.clone()).or_default();
            walk(schema, p, &mut Vec::new(), &mut |s| {
                let types: Vec<&str> = match s.get("type") {
                    Some(Value::String(t)) => vec![t.as_str()],
                    Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                c.integer |= types.contains(&"integer");
                c.number |= types.contains(&"number");
                c.boolean |= types.contains(&"boolean");
                c.null |= types.contains(&"null");
            });
        }
    });
    out
}

/// Calls `visit` on `schema` and on what it defers to: the target of a local `$ref` (`#…`;
/// other files and URLs are not fetched) and the branches of `anyOf`, `oneOf` and `allOf`,
/// recursively. `following` holds the references being followed: one met again is a cycle
/// (`"$ref": "#"`) and is not followed again.
fn walk<'a>(root: &'a Value, schema: &'a Value, following: &mut Vec<&'a str>, visit: &mut dyn FnMut(&'a Value)) {
    visit(schema);
    if let Some(r) = schema.get("$ref").and_then(Value::as_str)
        && !following.contains(&r)
        && let Some(target) = r.strip_prefix('#').and_then(|pointer| root.pointer(pointer))
    {
        following.push(r);
        walk(root, target, following, visit);
        following.pop();
    }
    for branch in ["anyOf", "oneOf", "allOf"].into_iter().filter_map(|k| schema.get(k).and_then(Value::as_array)).flatten() {
        walk(root, branch, following, visit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn step(schema: Value) -> (tempfile::TempDir, Validate) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.json"), schema.to_string()).unwrap();
        let raw = RawValidate { schema: Some("s.json".into()), ..Default::default() };
        let v = Validate::build(&raw, dir.path()).unwrap();
        (dir, v)
    }

    fn roster_schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "required": ["employee_id", "email"],
            "properties": {
                "employee_id": { "type": "integer", "minimum": 1 },
                "email": { "type": "string", "format": "email" },
                "active": { "type": "boolean" },
                "salary": { "type": ["number", "null"] },
                "name": { "type": "string", "minLength": 1 }
            }
        })
    }

    #[test]
    fn errors_name_the_field_and_the_reason() {
        let (_d, v) = step(roster_schema());
        let rec = json!({ "employee_id": "0", "email": "not-an-email", "active": "yes", "name": "" });
        let rec = v.typed(Cow::Borrowed(&rec)).into_owned();
        assert_eq!(rec["employee_id"], 0, "converted to the declared integer");
        let mut errs = v.check(&rec);
        errs.sort_by(|a, b| a.field.cmp(&b.field));
        let got: Vec<(Option<&str>, &str)> = errs.iter().map(|e| (e.field.as_deref(), e.message.as_str())).collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0], (Some("active"), r#""yes" is not of type "boolean""#));
        assert_eq!(got[1], (Some("email"), r#""not-an-email" is not a valid email"#), "was: is not a \"email\"");
        assert_eq!(got[2].0, Some("employee_id"));
        assert!(got[2].1.contains("less than the minimum of 1"), "{got:#?}");
        assert!(rec.get("name").is_none(), "an empty cell is no value");
    }

    #[test]
    fn empty_cells_count_as_absent() {
        let (_d, v) = step(roster_schema());
        let parsed = json!({ "employee_id": "", "email": "a@b.example", "salary": " 1234.50 ", "active": "true", "name": "", "other": "" });
        let rec = v.typed(Cow::Borrowed(&parsed)).into_owned();
        assert_eq!(
            rec,
            json!({ "email": "a@b.example", "salary": 1234.5, "active": true, "other": "" }),
            "undeclared columns are left alone"
        );
        let errs = v.check(&rec);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs.iter().any(|e| e.field.as_deref() == Some("employee_id") && e.message.contains("required")), "{errs:?}");
    }

    #[test]
    fn the_conversion_is_a_copy_and_only_made_when_a_value_changes() {
        let (_d, v) = step(roster_schema());
        let parsed = json!({ "employee_id": "007", "email": "a@b.example", "salary": "12.10", "name": "" });
        let typed = v.typed(Cow::Borrowed(&parsed));
        assert_eq!(*typed, json!({ "employee_id": 7, "email": "a@b.example", "salary": 12.1 }));
        assert_eq!(parsed["employee_id"], "007", "the record as parsed keeps its text");
        let plain = json!({ "email": "a@b.example", "other": "x" });
        assert!(matches!(v.typed(Cow::Borrowed(&plain)), Cow::Borrowed(_)), "nothing to convert: no copy");
    }

    /// A converted number compares by value (`enum`, `const`, `multipleOf`).
    #[test]
    fn numbers_as_written_compare_by_value() {
        let (_d, v) = step(json!({
            "type": "object",
            "properties": {
                "price": { "type": "number", "enum": [12.1, 3] },
                "step": { "type": "number", "multipleOf": 0.05, "maximum": 12.1 }
            }
        }));
        let typed = v.typed(Cow::Owned(json!({ "price": "12.10", "step": "12.10" })));
        assert_eq!(v.check(&typed), vec![]);
        let typed = v.typed(Cow::Owned(json!({ "price": "3.0", "step": "12.15" })));
        let fields: Vec<_> = v.check(&typed).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, [Some("step".to_string())], "3.0 is 3; 12.15 is above the maximum");
    }

    /// A cell beyond i64 keeps every digit (it was converted through a float:
    /// `12345678901234567890` → `1.2345678901234567e19`, which a script then wrote out).
    #[test]
    fn integers_beyond_i64_are_converted_exactly() {
        let (_d, v) = step(roster_schema());
        for (cell, exact) in [
            ("12345678901234567890", "12345678901234567890"),
            ("98765432109876543210123", "98765432109876543210123"),
            (" -00098765432109876543210 ", "-98765432109876543210"),
            ("+12345678901234567890", "12345678901234567890"),
        ] {
            let parsed = json!({ "employee_id": cell, "email": "a@b.example" });
            let typed = v.typed(Cow::Borrowed(&parsed));
            assert_eq!(typed["employee_id"].to_string(), exact, "{cell}");
        }
        let typed = v.typed(Cow::Owned(json!({ "employee_id": "1234567890123456789012", "email": "a@b.example" })));
        assert!(v.check(&typed).is_empty(), "an integer for the schema");
        for not in ["1-2", "-", "12345678901234567890x", "1234567890123456789.5"] {
            assert_eq!(big_integer(not), None, "{not}");
        }
    }

    #[test]
    fn an_integer_property_written_as_a_whole_float_is_an_integer() {
        let (_d, v) = step(roster_schema());
        for (cell, exact) in [("3.0", "3"), ("1e3", "1000"), ("2.5E2", "250"), ("-12345678901234567890.00", "-12345678901234567890")] {
            let typed = v.typed(Cow::Owned(json!({ "employee_id": cell, "email": "a@b.example" })));
            assert_eq!(typed["employee_id"].to_string(), exact, "{cell}");
        }
        // Not whole, or not exact as a float: a number, as before (the schema then decides).
        for (cell, float) in [("2.5", "2.5"), ("1e30", "1e+30")] {
            let typed = v.typed(Cow::Owned(json!({ "employee_id": cell, "email": "a@b.example" })));
            assert_eq!(typed["employee_id"].to_string(), float, "{cell}");
        }
    }

    #[test]
    fn types_declared_through_refs_and_combinators_are_converted() {
        let (_d, v) = step(json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": { "id": { "type": "integer", "minimum": 1 }, "loop": { "$ref": "#/$defs/loop" } },
            "definitions": { "flag": { "type": "boolean" } },
            "properties": {
                "id": { "$ref": "#/$defs/id" },
                "n": { "anyOf": [{ "type": "number" }, { "type": "null" }] },
                "ok": { "oneOf": [{ "$ref": "#/definitions/flag" }] },
                "qty": { "allOf": [{ "type": "integer" }, { "maximum": 99 }] },
                "cyc": { "$ref": "#/$defs/loop" }
            },
            "allOf": [{ "properties": { "extra": { "type": "integer" } } }]
        }));
        let rec = json!({ "id": "42", "n": "1.5", "ok": "true", "qty": "3", "extra": "5", "cyc": "x" });
        let typed = v.typed(Cow::Borrowed(&rec)).into_owned();
        assert_eq!(typed, json!({ "id": 42, "n": 1.5, "ok": true, "qty": 3, "extra": 5, "cyc": "x" }));
        assert_eq!(v.check(&typed), vec![], "valid once converted");
        let typed = v.typed(Cow::Borrowed(&json!({ "n": "null", "id": "0" }))).into_owned();
        assert_eq!(typed, json!({ "n": null, "id": 0 }));
        let errs = v.check(&typed);
        assert!(errs.len() == 1 && errs[0].message.contains("less than the minimum of 1"), "{errs:?}");
    }

    #[test]
    fn a_long_value_is_quoted_in_part() {
        let (_d, v) = step(json!({ "properties": { "b": { "type": "string", "maxLength": 10 }, "o": { "type": "string" } } }));
        let big = "é".repeat(500_000);
        let errs = v.check(&json!({ "b": big }));
        assert_eq!(errs.len(), 1);
        let m = &errs[0].message;
        assert!(m.starts_with(&format!("\"{}\"… (1000000 bytes) is longer than 10 characters", "é".repeat(100))), "{}", &m[..300]);
        assert!(m.len() < 400, "{} bytes", m.len());
        // Not only strings: a large object is quoted in part too.
        let errs = v.check(&json!({ "o": { "list": vec![1; 10_000] } }));
        assert!(
            errs[0].message.starts_with("{\"list\":[1,1,") && errs[0].message.ends_with(" bytes) is not of type \"string\""),
            "{errs:?}"
        );
        assert!(errs[0].message.len() < 200);
        // Short values are quoted whole, as before.
        assert_eq!(v.check(&json!({ "b": "elevenchars" }))[0].message, r#""elevenchars" is longer than 10 characters"#);
    }

    /// Only `additionalProperties: false` closes the set of fields a record can have.
    #[test]
    fn a_schema_is_closed_only_when_it_refuses_other_properties() {
        let closed = |extra: Value| {
            let mut schema = roster_schema();
            schema.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            step(schema).1.closed.map(|c| c.into_iter().collect::<Vec<_>>())
        };
        let all = ["active", "email", "employee_id", "name", "salary"].map(String::from).to_vec();
        assert_eq!(closed(json!({"additionalProperties": false})), Some(all.clone()));
        assert_eq!(closed(json!({"additionalProperties": false, "allOf": [{"required": ["name"]}]})), Some(all));
        assert_eq!(closed(json!({})), None);
        assert_eq!(closed(json!({"additionalProperties": {"type": "string"}})), None);
        assert_eq!(closed(json!({"additionalProperties": false, "patternProperties": {"^x_": {}}})), None);
        assert_eq!(closed(json!({"unevaluatedProperties": false})), None);
        assert_eq!(step(json!({"additionalProperties": false})).1.closed, None);
    }

    #[test]
    fn a_schema_that_does_not_compile_is_refused_with_where() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.json"), r#"{ "type": "object", "properties": { "a": { "type": "integr" } } }"#).unwrap();
        std::fs::write(dir.path().join("notjson.json"), "{ nope").unwrap();
        let build = |f: &str| Validate::build(&RawValidate { schema: Some(f.into()), ..Default::default() }, dir.path()).unwrap_err();
        let e = &build("bad.json")[0];
        assert_eq!(e.0, "schema");
        assert!(e.1.contains("does not compile") && e.1.contains("/properties/a/type"), "{e:?}");
        std::fs::write(dir.path().join("ref.json"), r##"{ "properties": { "a": { "$ref": "#/$defs/nope" } } }"##).unwrap();
        let e = &build("ref.json")[0].1;
        assert!(e.contains("does not compile") && !e.contains("(at )"), "{e}");
        assert!(build("notjson.json")[0].1.contains("is not JSON"));
        // A reference to another file or a URL, which is never fetched.
        std::fs::write(dir.path().join("other.json"), r#"{ "properties": { "a": { "$ref": "common.json#/$defs/id" } } }"#).unwrap();
        let e = build("other.json")[0].1.replace(&dir.path().display().to_string(), "DIR");
        assert_eq!(
            e,
            "schema DIR/other.json refers to `common.json#/$defs/id`, outside the file: a record schema is self-contained (other files and URLs are not fetched); copy what it refers to into the schema's `$defs` and refer to it as `#/$defs/NAME`"
        );
        std::fs::write(dir.path().join("url.json"), r#"{ "properties": { "a": { "$ref": "https://example.com/id.json" } } }"#).unwrap();
        assert!(build("url.json")[0].1.contains("refers to `https://example.com/id.json`, outside the file"));
        assert!(build("missing.json")[0].1.contains("cannot read schema"));
    }

    /// Before: `cannot read schema DIR/flows/../schemas/records/x.json`, the path as joined.
    #[test]
    fn a_schema_path_is_shown_without_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let flows = dir.path().join("flows");
        std::fs::create_dir_all(dir.path().join("schemas/records")).unwrap();
        std::fs::create_dir(&flows).unwrap();
        let raw = RawValidate { schema: Some("../schemas/records/./x.json".into()), ..Default::default() };
        let e = Validate::build(&raw, &flows).unwrap_err();
        let shown = e[0].1.replace(&dir.path().display().to_string(), "DIR");
        assert_eq!(shown, "cannot read schema DIR/schemas/records/x.json: No such file or directory");
        // The step's own record of it, too (its `Debug`, the report's schema).
        std::fs::write(dir.path().join("schemas/records/x.json"), "{}").unwrap();
        let step = Validate::build(&raw, &flows).unwrap();
        assert_eq!(step.schema.map(|s| s.1), Some(dir.path().join("schemas/records/x.json")));
    }

    #[test]
    fn required_columns() {
        let v = Validate {
            schema: None,
            coerce: BTreeMap::new(),
            closed: None,
            required_columns: vec!["id".into(), "email".into()],
            row_count_file: None,
        };
        assert_eq!(v.missing_columns(&["id".into(), "name".into()]).unwrap(), "the header lacks required column(s) `email`");
        assert!(v.missing_columns(&["email".into(), "id".into()]).is_none());
        // A header written in other letter case or spelling: before, "lacks `id`, `email`"
        // beside a header that plainly has them, and nothing said why.
        let header = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(
            v.missing_columns(&header(&["ID", "E-Mail", "name"])).unwrap(),
            "the header lacks required column(s) `id` (the header has `ID`), `email` (the header has `E-Mail`); column names are matched exactly, letter case included"
        );
        assert_eq!(v.missing_columns(&header(&["id", "phone"])).unwrap(), "the header lacks required column(s) `email`");
    }

    /// A number with a decimal comma, a date written dd.mm.yyyy: the schema's words alone
    /// (`"12,50" is not of type "number"`) did not say what was wrong with them.
    #[test]
    fn values_written_the_locale_s_way_are_told_how_to_be_written() {
        let (_dir, v) = step(json!({ "properties": {
            "amount": { "type": "number" }, "b": { "type": ["boolean", "null"] }, "d": { "type": "string", "format": "date" }, "t": { "type": "string", "format": "date-time" }
        } }));
        let message = |record: Value| v.check(&record).into_iter().map(|e| e.message).collect::<Vec<_>>();
        assert_eq!(
            message(json!({ "amount": "12,50" })),
            ["\"12,50\" is not of type \"number\" (a decimal comma: a number is written with a decimal point, as in 12.5)"]
        );
        for comma in ["-0,5", "1.234,56", "1 234,5", "+12,0"] {
            assert!(
                message(json!({ "amount": comma }))[0].ends_with("(a decimal comma: a number is written with a decimal point, as in 12.5)"),
                "{comma}"
            );
        }
        for other in ["12,50,1", "1.23,4", "x,5", "1,", ",5", "12"] {
            assert!(!message(json!({ "amount": other }))[0].contains("decimal comma"), "{other}");
        }
        assert!(!message(json!({ "b": "1,5" }))[0].contains("decimal comma"));
        assert_eq!(
            message(json!({ "d": "03.01.2026" })),
            ["\"03.01.2026\" is not a valid date (a date is written YYYY-MM-DD, as in 2026-01-31)"]
        );
        assert_eq!(
            message(json!({ "t": "03.01.2026 12:00" })),
            ["\"03.01.2026 12:00\" is not a valid date-time (a date-time is written as in 2026-01-31T14:30:00Z)"]
        );
    }

    /// A CSV header `Order_ID` for the schema's `order_id`: every row "lacked" it, and no
    /// message said the record has it in other letter case.
    #[test]
    fn a_required_property_written_otherwise_is_named() {
        let (_dir, v) =
            step(json!({ "type": "object", "required": ["order_id", "email"], "properties": { "n": { "required": ["code"] } } }));
        let errors = v.check(&json!({ "Order ID": "1", "email": "a@b", "n": { "Code": 1 } }));
        let messages: Vec<_> = errors.iter().map(|e| (e.field.as_deref().unwrap_or_default(), e.message.as_str())).collect();
        assert_eq!(
            messages,
            [
                (
                    "order_id",
                    "\"order_id\" is a required property (the record has `Order ID`: names are matched exactly, letter case included)"
                ),
                ("n.code", "\"code\" is a required property (the record has `Code`: names are matched exactly, letter case included)"),
            ]
        );
        assert_eq!(v.check(&json!({ "email": "a@b", "total": 1 }))[0].message, "\"order_id\" is a required property");
    }
}
