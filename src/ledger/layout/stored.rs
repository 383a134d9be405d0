//! Tests only: what the ledger stores, pinned per [`LAYOUT`], so that a change a build of
//! the same layout would misread cannot go in without raising it (see `layout.rs`, "What a
//! layout pins").
//!
//! Derived from the code, not kept by hand: every table of [`TABLES`] with its key and value
//! types as redb names them (what redb checks on open), and for a postcard value the shape
//! postcard writes — each struct's fields in order, each enum's variants by the index
//! postcard writes as their tag — read from the types' serde derives by `serde-reflection`.
//! A table added to `init` fails `tables_lists_what_init_creates` until it is in [`TABLES`],
//! and then the test below until it is described here; an enum reached from a stored type
//! fails it until it is traced. The notifier's JSON kept in `notify_held_v1` is recorded as
//! a JSON reader sees it ([`json_lines`]): JSON is read by names, so only what an older
//! reader would refuse asks for a new layout ([`json_misread`]).

use std::collections::BTreeSet;
use std::fmt::Debug;

use redb::{TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_reflection::{ContainerFormat, Format, Named, Registry, Tracer, TracerConfig, VariantFormat};
use sha2::{Digest, Sha256};

use super::LAYOUT;
use crate::ledger::codec::Postcard;
use crate::ledger::{TABLES, awaits, events, quarantined, store, unsafe_names};

/// What each layout stores, as [`described`] writes it: `(layout, record)`, one per layout
/// since the marker, the last one [`LAYOUT`]'s.
const RECORDS: &[(u64, &str)] = &[(1, include_str!("1.txt"))];

/// A table's value type: its postcard format when it is one (traced), else `None` (a redb
/// type, which its name says all of).
trait Stored {
    fn trace(tracer: &mut Tracer) -> Option<Format>;
}

impl<T: Debug + Serialize + DeserializeOwned> Stored for Postcard<T> {
    fn trace(tracer: &mut Tracer) -> Option<Format> {
        match tracer.trace_simple_type::<T>() {
            Ok((format, _)) => Some(format),
            Err(e) => panic!("{} cannot be traced: {e}", std::any::type_name::<T>()),
        }
    }
}

macro_rules! plain {
    ($($t:ty),*) => {$(impl Stored for $t { fn trace(_: &mut Tracer) -> Option<Format> { None } })*};
}
plain!(&'static str, &'static [u8], u64, ());

/// One table as traced: its name, key and value type names, value format.
struct Table {
    name: String,
    key: String,
    value: String,
    format: Option<Format>,
}

fn table<K: redb::Key + 'static, V: redb::Value + Stored + 'static>(tracer: &mut Tracer, def: TableDefinition<K, V>) -> Table {
    Table {
        name: def.name().to_string(),
        key: K::type_name().name().to_string(),
        value: V::type_name().name().to_string(),
        format: V::trace(tracer),
    }
}

/// The ledger's tables (every one of [`TABLES`]; the test says which is missing) and the
/// registry of the types their values hold.
fn traced() -> (Vec<Table>, Registry) {
    let mut t = Tracer::new(TracerConfig::default());
    // Enums inside stored types: each traced on its own first, so that all its variants are
    // seen (the registry refuses an enum traced in part, naming it: add it here).
    t.trace_simple_type::<crate::ledger::FileState>().unwrap();
    t.trace_simple_type::<crate::ledger::SourceFate>().unwrap();
    t.trace_simple_type::<crate::ledger::RunStatus>().unwrap();
    t.trace_simple_type::<crate::endpoint::ErrorKind>().unwrap();
    t.trace_simple_type::<crate::ledger::AwaitState>().unwrap();
    t.trace_simple_type::<crate::ledger::EventKind>().unwrap();
    let tables = vec![
        table(&mut t, crate::ledger::FILES),
        table(&mut t, store::IN_FLIGHT),
        table(&mut t, store::DELIVERED),
        table(&mut t, crate::ledger::DONE),
        table(&mut t, crate::ledger::OBSERVATIONS),
        table(&mut t, crate::ledger::RUNS),
        table(&mut t, crate::ledger::COUNTERS),
        table(&mut t, crate::ledger::FILE_RESULTS),
        table(&mut t, crate::ledger::FILE_WARNINGS),
        table(&mut t, crate::ledger::RUN_CONTENT),
        table(&mut t, awaits::AWAITS),
        table(&mut t, awaits::AWAIT_REQUESTS),
        table(&mut t, events::EVENTS),
        table(&mut t, events::HEALTH),
        table(&mut t, unsafe_names::UNSAFE_NAMES),
        table(&mut t, events::NOTIFY_HELD),
        table(&mut t, quarantined::EARLIER),
        table(&mut t, super::META),
    ];
    let registry = t.registry().unwrap_or_else(|e| panic!("{e}: trace each enum named in `traced` (src/ledger/layout/stored.rs)"));
    (tables, registry)
}

/// A format as written in a record: by the names of its types.
fn named(f: &Format) -> String {
    let list = |fs: &[Format]| fs.iter().map(named).collect::<Vec<_>>().join(", ");
    match f {
        Format::TypeName(n) => n.clone(),
        Format::Option(f) => format!("option<{}>", named(f)),
        Format::Seq(f) => format!("seq<{}>", named(f)),
        Format::Map { key, value } => format!("map<{}, {}>", named(key), named(value)),
        Format::Tuple(fs) => format!("({})", list(fs)),
        Format::TupleArray { content, size } => format!("[{}; {size}]", named(content)),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A type of the registry as written in a record: `FileState = enum { 0 Claimed, 1 Staging }`.
fn container(name: &str, c: &ContainerFormat) -> String {
    let fields = |fs: &[Named<Format>]| fs.iter().map(|f| format!("{}: {}", f.name, named(&f.value))).collect::<Vec<_>>().join(", ");
    let list = |fs: &[Format]| fs.iter().map(named).collect::<Vec<_>>().join(", ");
    let body = match c {
        ContainerFormat::UnitStruct => "unit struct".to_string(),
        ContainerFormat::NewTypeStruct(f) => format!("newtype({})", named(f)),
        ContainerFormat::TupleStruct(fs) => format!("tuple({})", list(fs)),
        ContainerFormat::Struct(fs) => format!("struct {{ {} }}", fields(fs)),
        ContainerFormat::Enum(vs) => {
            let variant = |(i, v): (&u32, &Named<VariantFormat>)| match &v.value {
                VariantFormat::NewType(f) => format!("{i} {}({})", v.name, named(f)),
                VariantFormat::Tuple(fs) => format!("{i} {}({})", v.name, list(fs)),
                VariantFormat::Struct(fs) => format!("{i} {} {{ {} }}", v.name, fields(fs)),
                _ => format!("{i} {}", v.name),
            };
            format!("enum {{ {} }}", vs.iter().map(variant).collect::<Vec<_>>().join(", "))
        }
    };
    format!("type {name} = {body}")
}

/// A format as postcard reads it: every type inside written out, each struct's fields in
/// order and each enum's variants by their tags, with the serde names of both (postcard writes
/// no names, but two fields of one type swapped, or a variant's meaning given to another, read
/// back wrong: so a name changed counts as a change; `#[serde(rename)]` keeps the old one).
/// Only the names of the types themselves are left out (the table's value type is named by
/// its line, as redb checks it).
fn shape(f: &Format, registry: &Registry, depth: usize) -> String {
    assert!(depth < 32, "a stored type holds itself: describe it by hand in src/ledger/layout/stored.rs");
    let list = |fs: &[Format]| fs.iter().map(|f| shape(f, registry, depth + 1)).collect::<Vec<_>>().join(", ");
    let fields = |fs: &[Named<Format>]| {
        fs.iter().map(|f| format!("{}: {}", f.name, shape(&f.value, registry, depth + 1))).collect::<Vec<_>>().join(", ")
    };
    match f {
        Format::TypeName(n) => match &registry[n] {
            ContainerFormat::UnitStruct => "()".into(),
            ContainerFormat::NewTypeStruct(f) => shape(f, registry, depth + 1),
            ContainerFormat::TupleStruct(fs) => format!("({})", list(fs)),
            ContainerFormat::Struct(fs) => format!("{{{}}}", fields(fs)),
            ContainerFormat::Enum(vs) => {
                let variants = vs.iter().map(|(i, v)| match &v.value {
                    VariantFormat::NewType(f) => format!("{i} {}({})", v.name, shape(f, registry, depth + 1)),
                    VariantFormat::Tuple(fs) => format!("{i} {}({})", v.name, list(fs)),
                    VariantFormat::Struct(fs) => format!("{i} {}{{{}}}", v.name, fields(fs)),
                    _ => format!("{i} {}", v.name),
                });
                format!("enum[{}]", variants.collect::<Vec<_>>().join(", "))
            }
        },
        Format::Option(f) => format!("option<{}>", shape(f, registry, depth + 1)),
        Format::Seq(f) => format!("seq<{}>", shape(f, registry, depth + 1)),
        Format::Map { key, value } => format!("map<{}, {}>", shape(key, registry, depth + 1), shape(value, registry, depth + 1)),
        Format::Tuple(fs) => format!("({})", list(fs)),
        Format::TupleArray { content, size } => format!("[{}; {size}]", shape(content, registry, depth + 1)),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The strings of the notifier's JSON a reader refuses some values of (an enum, a time): what
/// each takes, by its path in a stored value. A new one fails the test until it is described
/// here; for an enum, write its variants (a new variant is read by no older build: the
/// record's line changes, and the test asks for a new layout).
const CLOSED: &[(&str, &str)] = &[("notify_held_v1[held] [].notice.at", TIME), ("notify_held_v1[summary/RUN] .at", TIME)];

/// A time in the notifier's JSON ([`CLOSED`]).
const TIME: &str = "a time, RFC 3339 (as crate::timestamp::utc writes it)";

/// What the ledger keeps as the notifier's JSON in `notify_held_v1` (opaque bytes to redb,
/// JSON to the notifier, `src/notify/dispatch/held.rs`), one line per value of it: under the
/// key `held` the notices a throttle holds back (a list of [`Held`](crate::notify::Held)),
/// under `summary/RUN` a run summary not sent yet (a [`Notice`](crate::notify::Notice)).
///
/// JSON is read by names, not by places: a reader skips a field it does not know, and takes
/// a missing `Option` as `None`. So each line says what a reader of this build asks of a
/// value (`read required`: refused when missing; `null`: takes `null`) and what this build
/// writes (`written always`, `may be null`, `may be absent`), with the value's JSON type
/// (integers with the range the reader takes, strings it refuses some values of as
/// [`CLOSED`] says). Derived by asking the readers themselves: each field of a full sample
/// left out, set to `null`, to other numbers or to an odd string, then read back.
fn json_lines() -> Vec<String> {
    use crate::notify::{Held, Notice};
    let full = || {
        let mut n = Notice::new("failed", "f", chrono::DateTime::from_timestamp_millis(0).unwrap_or_default(), "in/a.csv", "why");
        (n.seq, n.run) = (Some(1), Some(2));
        n
    };
    let held = |identity: Option<&str>, notice: Notice| Held {
        rule: "r".into(),
        identity: identity.map(Into::into),
        channel: identity.map(Into::into),
        notice,
        held: 1,
    };
    let bare = Notice { seq: None, run: None, ..full() };
    let mut out = Vec::new();
    json_shape(
        "notify_held_v1[held]",
        &json(&vec![held(Some("i"), full())]),
        &json(&vec![held(None, bare.clone())]),
        &|v| Held::decode(v.to_string().as_bytes()).is_ok(),
        &mut out,
    );
    json_shape(
        "notify_held_v1[summary/RUN]",
        &json(&full()),
        &json(&bare),
        &|v| Notice::decode(v.to_string().as_bytes()).is_ok(),
        &mut out,
    );
    out
}

/// A sample of [`json_lines`] as JSON.
fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|e| panic!("a sample does not serialize: {e}"))
}

/// One step of a path into a JSON value: a field, or a list's element.
#[derive(Clone)]
enum Step {
    Field(String),
    Element,
}

fn path_text(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Field(f) => format!(".{f}"),
            Step::Element => "[]".into(),
        })
        .collect()
}

/// The value at `path` in `v` (a list's first element for [`Step::Element`]).
fn at<'a>(v: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, s| match s {
        Step::Field(f) => v.get_mut(f.as_str()),
        Step::Element => v.get_mut(0),
    })
}

/// The lines of [`json_lines`] for one stored value: `full` every field set, `bare` what this
/// build writes when the optional ones are not, `reads` whether this build's reader takes a value.
fn json_shape(place: &str, full: &Value, bare: &Value, reads: &dyn Fn(&Value) -> bool, out: &mut Vec<String>) {
    assert!(reads(full), "{place}: the full sample is not read back");
    walk(place, full, bare, reads, &mut Vec::new(), out);
}

fn walk(place: &str, full: &Value, bare: &Value, reads: &dyn Fn(&Value) -> bool, path: &mut Vec<Step>, out: &mut Vec<String>) {
    let probe = |change: &dyn Fn(&mut Value)| {
        let mut v = full.clone();
        let Some(at) = at(&mut v, path) else { return false };
        change(at);
        reads(&v)
    };
    let here = at(&mut full.clone(), path).cloned().unwrap_or(Value::Null);
    let ty = match &here {
        Value::Null => "null".to_string(),
        Value::Bool(_) => "bool".into(),
        Value::Number(n) if n.is_f64() => "number".into(),
        Value::Number(_) => {
            let max = [u64::MAX, u32::MAX.into(), u16::MAX.into(), u8::MAX.into()].into_iter().find(|&m| probe(&|v| *v = m.into()));
            let min = [i64::MIN, -1].into_iter().find(|&m| probe(&|v| *v = m.into())).unwrap_or(0);
            format!("integer {min}..={}", max.map_or("?".into(), |m| m.to_string()))
        }
        Value::String(_) => {
            let name = format!("{place} {}", path_text(path));
            if probe(&|v| *v = "\u{1}odd".into()) {
                "string".into()
            } else {
                let what = CLOSED.iter().find(|(p, _)| *p == name).map(|(_, w)| *w).unwrap_or_else(|| {
                    panic!("{name}: a string the reader refuses some values of: say what it takes in CLOSED (src/ledger/layout/stored.rs)")
                });
                format!("string, {what}")
            }
        }
        Value::Array(_) => "list".into(),
        Value::Object(_) => "object".into(),
    };
    let mut line = format!(
        "json {place} {}= {ty}",
        match path_text(path) {
            p if p.is_empty() => String::new(),
            p => format!("{p} "),
        }
    );
    if let Some(Step::Field(name)) = path.last() {
        let (parent, name) = (&path[..path.len() - 1], name.clone());
        let required = !probe_parent(full, parent, &name, reads);
        let null = probe(&|v| *v = Value::Null);
        let mut bare = bare.clone();
        let written = match at(&mut bare, path) {
            None => "may be absent",
            Some(Value::Null) => "may be null",
            Some(_) => "always",
        };
        line +=
            &format!("; read {}{}; written {written}", if required { "required" } else { "optional" }, if null { ", null" } else { "" });
    }
    out.push(line);
    match &here {
        Value::Object(fields) => {
            for name in fields.keys() {
                path.push(Step::Field(name.clone()));
                walk(place, full, bare, reads, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            path.push(Step::Element);
            walk(place, full, bare, reads, path, out);
            path.pop();
        }
        _ => {}
    }
}

/// Whether the reader takes `full` with the field `name` of the object at `parent` left out.
fn probe_parent(full: &Value, parent: &[Step], name: &str, reads: &dyn Fn(&Value) -> bool) -> bool {
    let mut v = full.clone();
    at(&mut v, parent).and_then(Value::as_object_mut).map(|o| o.remove(name));
    reads(&v)
}

/// One line of [`json_lines`] read back: where (place and path), type, whether a reader
/// requires it, takes `null`, and how it is written.
struct JsonLine<'a> {
    at: &'a str,
    ty: &'a str,
    required: bool,
    null: bool,
    written: &'a str,
}

fn json_of(record: &str) -> std::collections::BTreeMap<&str, JsonLine<'_>> {
    record
        .lines()
        .filter_map(|l| l.strip_prefix("json "))
        .filter_map(|l| {
            let (at, rest) = l.split_once("= ")?;
            let mut parts = rest.split("; ");
            let ty = parts.next()?;
            let read = parts.next().unwrap_or("read optional");
            let written = parts.next().and_then(|w| w.strip_prefix("written ")).unwrap_or("always");
            Some((
                at.trim_end(),
                JsonLine { at: at.trim_end(), ty, required: read.contains("required"), null: read.ends_with(", null"), written },
            ))
        })
        .collect()
}

/// The values of the notifier's JSON a reader of the `recorded` build refuses in what `now`
/// writes, each with why: a field it requires that is gone or not always written, `null`
/// where it takes none, another type (a new variant, a time written otherwise, a wider
/// integer). A field added, or one it does not require gone, it reads as before.
fn json_misread(recorded: &str, now: &str) -> Vec<String> {
    let (old, new) = (json_of(recorded), json_of(now));
    let mut out = Vec::new();
    for (at, o) in &old {
        let why = match new.get(at) {
            None if o.required => "a field it requires is no longer written".to_string(),
            None => continue,
            Some(n) if n.ty != o.ty => format!("written as {} now", n.ty),
            Some(n) if o.required && n.written == "may be absent" => "a field it requires is left out at times now".into(),
            Some(n) if !o.null && n.written == "may be null" => "null at times now, which it does not take".into(),
            Some(_) => continue,
        };
        out.push(format!("json {}: {why}", o.at));
    }
    out
}

/// What the ledger stores, one line each: its tables, with their key and value types and, for
/// a postcard value, a digest of its [`shape`] (`written as …`); then the stored types by
/// name. The tables' lines are what a build reads; the types' lines say it in words.
fn described() -> String {
    let (tables, registry) = traced();
    let mut lines =
        vec![format!("# What the ledger stores at layout {LAYOUT}: see \"What a layout pins\" in src/ledger/layout.rs before changing.")];
    for t in &tables {
        let written = t.format.as_ref().map(|f| {
            let digest = Sha256::digest(shape(f, &registry, 0).as_bytes());
            format!(", written as {}", &hex::encode(digest)[..16])
        });
        lines.push(format!("table {}: {} -> {}{}", t.name, t.key, t.value, written.unwrap_or_default()));
    }
    lines.extend(registry.iter().map(|(name, c)| container(name, c)));
    lines.extend(json_lines());
    lines.join("\n") + "\n"
}

/// The lines of a record that start with `table `.
fn tables_of(record: &str) -> BTreeSet<&str> {
    record.lines().filter(|l| l.starts_with("table ")).collect()
}

/// What to do when the ledger's stored form is not the one recorded for its layout: `None`
/// when it is.
fn verdict(recorded: &str, now: &str) -> Option<String> {
    if recorded == now {
        return None;
    }
    let (old, new) = (tables_of(recorded), tables_of(now));
    let mut gone: Vec<String> = old.difference(&new).map(|l| l.to_string()).collect();
    gone.extend(json_misread(recorded, now));
    let file = format!("src/ledger/layout/{LAYOUT}.txt");
    let diff = diff(recorded, now);
    Some(if gone.is_empty() {
        format!(
            "The ledger stores more than the record of layout {LAYOUT} says, or calls a type inside a stored one by \
             another name, or writes the notifier's JSON in a way its reader still takes; a build of layout {LAYOUT} \
             still reads all of it (every table it knows is written as it was; new tables it leaves alone, new JSON \
             fields it skips), so LAYOUT stays {LAYOUT}. Record it: write {file} as below.\n\
             {diff}\n--- {file}:\n{now}"
        )
    } else {
        let next = LAYOUT + 1;
        format!(
            "A build of layout {LAYOUT} cannot read what this one stores: these tables of its record are gone or \
             written otherwise, or these values of the notifier's JSON are written so that its reader refuses \
             them:\n  {}\n{diff}\nRaise LAYOUT to {next} in src/ledger/layout.rs (and say what changed in \
             its doc), record src/ledger/layout/{next}.txt as below, and add it to RECORDS in \
             src/ledger/layout/stored.rs as layout {next}; leave {file} as it is. A table converted and renamed \
             `*_v(N+1)` needs its conversion in src/ledger/migrate.rs too.\n--- src/ledger/layout/{next}.txt:\n{}",
            gone.join("\n  "),
            now.replace(&format!("at layout {LAYOUT}:"), &format!("at layout {next}:"))
        )
    })
}

/// The lines only one of `a` and `b` holds, `-` and `+`.
fn diff(a: &str, b: &str) -> String {
    let (a_lines, b_lines): (BTreeSet<&str>, BTreeSet<&str>) = (a.lines().collect(), b.lines().collect());
    let minus = a.lines().filter(|l| !b_lines.contains(l)).map(|l| format!("- {l}"));
    let plus = b.lines().filter(|l| !a_lines.contains(l)).map(|l| format!("+ {l}"));
    minus.chain(plus).collect::<Vec<_>>().join("\n")
}

#[test]
fn what_the_ledger_stores_is_what_its_layout_recorded() {
    let (tables, _) = traced();
    let described_tables: BTreeSet<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let listed: BTreeSet<&str> = TABLES.iter().copied().collect();
    assert_eq!(
        described_tables, listed,
        "every table of TABLES (src/ledger/mod.rs) is described in `traced` (src/ledger/layout/stored.rs), and no other"
    );
    let Some(&(last, recorded)) = RECORDS.last() else { panic!("no record") };
    assert!(
        RECORDS.windows(2).all(|w| w[0].0 < w[1].0) && last == LAYOUT,
        "LAYOUT is {LAYOUT}, and the last of RECORDS (src/ledger/layout/stored.rs) is layout {last}: record what layout \
         {LAYOUT} stores as src/ledger/layout/{LAYOUT}.txt (the test says what it holds when it is missing)"
    );
    let now = described();
    if let Some(what) = verdict(recorded, &now) {
        panic!("{what}");
    }
}

/// What the test says of the changes it guards against, on the record of this layout.
#[test]
fn a_change_a_build_of_the_layout_would_misread_asks_for_a_new_layout() {
    let now = described();
    assert_eq!(verdict(&now, &now), None);
    assert!(now.contains("type FileState = enum { 0 claimed, 1 staging,"), "{now}");
    // A new variant of a stored enum: the tables holding it are written otherwise.
    let files = now.lines().find(|l| l.starts_with("table files_v3:")).unwrap();
    let changed = verdict(&now.replace(files, &files.replace("written as ", "written as 0")), &now).unwrap();
    assert!(changed.contains(&format!("Raise LAYOUT to {}", LAYOUT + 1)), "{changed}");
    assert!(changed.contains(&format!("  {}", files.replace("written as ", "written as 0"))), "names the table: {changed}");
    // A table the record does not have: the same layout, recorded anew.
    let fewer: String = now.lines().filter(|l| !l.starts_with("table health_v1:")).map(|l| format!("{l}\n")).collect();
    let more = verdict(&fewer, &now).unwrap();
    assert!(more.contains(&format!("so LAYOUT stays {LAYOUT}")) && more.contains("+ table health_v1:"), "{more}");
    // A type inside a stored one called by another name (the table's written as it was).
    let renamed = verdict(&now.replace("type Replaced =", "type Replacement ="), &now).unwrap();
    assert!(renamed.contains("LAYOUT stays") && renamed.contains("- type Replacement"), "{renamed}");
}

/// The shape a digest is taken of: what postcard reads, with the fields' and variants' names,
/// not the types'.
#[test]
fn the_written_shape_leaves_out_names_and_follows_tags() {
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    enum E {
        A,
        B(u32),
    }
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    struct S {
        x: Option<E>,
        y: Vec<String>,
    }
    let mut t = Tracer::new(TracerConfig::default());
    t.trace_simple_type::<E>().unwrap();
    let (f, _) = t.trace_simple_type::<S>().unwrap();
    let registry = t.registry().unwrap();
    assert_eq!(shape(&f, &registry, 0), "{x: option<enum[0 A, 1 B(u32)]>, y: seq<str>}");
    assert_eq!(container("E", &registry["E"]), "type E = enum { 0 A, 1 B(u32) }");
    assert_eq!(container("S", &registry["S"]), "type S = struct { x: option<E>, y: seq<str> }");
}

/// The notifier's JSON (`notify_held_v1`): what a reader of the recorded build would refuse
/// asks for a new layout; what it reads as before (a field added, one it does not require
/// gone) only for the record to be written anew.
#[test]
fn a_change_of_the_notifiers_json_an_older_reader_refuses_asks_for_a_new_layout() {
    let now = described();
    let line = |path: &str| now.lines().find(|l| l.starts_with(&format!("json notify_held_v1[held] {path} ="))).unwrap().to_string();
    let raise = format!("Raise LAYOUT to {}", LAYOUT + 1);
    let stays = format!("so LAYOUT stays {LAYOUT}");
    let with = |from: &str, to: &str| now.replace(&line(from), to);
    // Each change as the code would make it, `recorded` the record before it.
    let cases: [(&str, String, &str); 7] = [
        ("a required field renamed", with("[].rule", &line("[].rule").replace(".rule =", ".rule_name =")), &raise),
        (
            "a required field left out at times",
            with("[].notice.detail", &line("[].notice.detail").replace("written always", "written may be absent")),
            &raise,
        ),
        ("null where the reader takes none", with("[].held", &line("[].held").replace("written always", "written may be null")), &raise),
        ("a wider integer", with("[].held", &line("[].held").replace("4294967295", "18446744073709551615")), &raise),
        (
            "a time written otherwise",
            with("[].notice.at", &line("[].notice.at").replace("= string, a time, RFC 3339", "= integer 0..=1")),
            &raise,
        ),
        (
            "a field added",
            format!("{now}json notify_held_v1[held] [].notice.tag = string; read optional, null; written may be absent\n"),
            &stays,
        ),
        ("an optional field gone", with("[].identity", ""), &stays),
    ];
    for (what, changed, expected) in cases {
        let Some(v) = verdict(&now, &changed) else { panic!("{what}: no verdict") };
        assert!(v.contains(expected), "{what}: {v}");
    }
    // Said so: which value, and why.
    let renamed = verdict(&now, &with("[].rule", "")).unwrap();
    assert!(renamed.contains("json notify_held_v1[held] [].rule: a field it requires is no longer written"), "{renamed}");
}

/// What the record says of the readers is what they do: a newer wharf's list, with a field
/// this one does not know and a notice kind it does not know, is read; one without a field
/// it requires is not.
#[test]
fn the_record_says_what_the_notifiers_reader_takes() {
    use crate::notify::Held;
    let now = described();
    assert!(now.contains("json notify_held_v1[held] [].rule = string; read required; written always"), "{now}");
    assert!(now.contains("json notify_held_v1[held] [].identity = string; read optional, null; written may be absent"), "{now}");
    let newer = r#"[{"rule":"r","held":2,"since":"2026","notice":{"kind":"brand_new","flow":"f","at":"2026-12-07T10:00:00Z",
        "subject":"","detail":"","seq":null,"run":null,"facts":{},"priority":"high"}}]"#;
    let read = Held::decode(newer.as_bytes()).unwrap();
    assert_eq!((read[0].notice.kind.as_str(), read[0].held), ("brand_new", 2));
    assert!(Held::decode(newer.replace(r#""rule":"r","#, "").as_bytes()).is_err());
}
