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
//! fails it until it is traced.

use std::collections::BTreeSet;
use std::fmt::Debug;

use redb::{TableDefinition, TableHandle};
use serde::Serialize;
use serde::de::DeserializeOwned;
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
    let gone: Vec<&str> = old.difference(&new).copied().collect();
    let file = format!("src/ledger/layout/{LAYOUT}.txt");
    let diff = diff(recorded, now);
    Some(if gone.is_empty() {
        format!(
            "The ledger stores more than the record of layout {LAYOUT} says, or calls a type inside a stored one by \
             another name; a build of layout {LAYOUT} still reads all of it (every table it knows is written as it \
             was; new tables it leaves alone), so LAYOUT stays {LAYOUT}. Record it: write {file} as below.\n\
             {diff}\n--- {file}:\n{now}"
        )
    } else {
        let next = LAYOUT + 1;
        format!(
            "A build of layout {LAYOUT} cannot read what this one stores: these tables of its record are gone or \
             written otherwise:\n  {}\n{diff}\nRaise LAYOUT to {next} in src/ledger/layout.rs (and say what changed in \
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
