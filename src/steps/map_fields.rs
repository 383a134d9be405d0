//! A map script reading a field its record does not have: a misspelt name (`r.titel` for
//! `title`) read as `()` gave every row an empty column, the file counted good.
//!
//! Owns the rule for a read of a name a map lacks, called by the script engine for it
//! (Rhai's missing-property callback, for `m.name` and `m["name"]` alike): on a CSV record
//! (a map holding every column of the file) it fails; on any other map it reads as `()`, an
//! optional field of a JSON record, and a name close to one the map has (`suggest::close`) is
//! warned of, once per file. Which names the script reads and which it assigns is found once, in the compiled
//! script: the engine's callback is called for an assignment of a new field too (`r.new = 1`)
//! without saying which it is, and such a field is made as Rhai makes it.
//!
//! Not checked: names given by a computed index (`r[name]`), and, in a script that assigns
//! by a computed index anywhere (`m[k] = …`, `a[i] = …`), names close to others (such an
//! assignment may be making a field of any name, a neighbour's too).

use std::cell::RefCell;
use std::collections::HashSet;

use rhai::{AST, ASTFlags, ASTNode, Dynamic, Engine, Expr, Map, Stmt, Target};

use super::map::{Fallible, misuse};
use crate::suggest;

thread_local! {
    /// The columns of the CSV file being mapped on this thread (empty for JSON input): set
    /// when its header is read, cleared when the file is done.
    static COLUMNS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

thread_local! {
    /// The names this thread warned of in the file being mapped ([`missing`]): once each.
    static WARNED: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// The columns of the CSV file this thread maps next: every record has every one of them.
pub fn set_columns(columns: &[String]) {
    COLUMNS.with(|c| columns.clone_into(&mut c.borrow_mut()));
}

/// Done with a file: the records that follow are not known to have any column.
pub fn clear_columns() {
    COLUMNS.with(|c| c.borrow_mut().clear());
    WARNED.with(|w| w.borrow_mut().clear());
}

/// The field names a script names literally: read (`m.name`, `m["name"]`), assigned
/// (`m.name = …`, `m["name"] += …`), and whether it assigns by a computed index anywhere.
#[derive(Debug, Default)]
struct Names {
    read: HashSet<String>,
    assigned: HashSet<String>,
    computed: bool,
}

impl Names {
    fn of(ast: &AST) -> Names {
        let mut names = Names::default();
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Assignment(x))) => match assigned(&x.1.lhs) {
                    Assigned::Name(n) => {
                        names.assigned.insert(n);
                    }
                    Assigned::Computed => names.computed = true,
                    Assigned::Variable => {}
                },
                Some(ASTNode::Expr(Expr::Property(p, _))) => {
                    names.read.insert(p.2.to_string());
                }
                Some(ASTNode::Expr(Expr::Index(x, ..))) => {
                    if let Expr::StringConstant(s, _) = &x.rhs {
                        names.read.insert(s.to_string());
                    }
                }
                _ => {}
            }
            true
        });
        names
    }
}

/// What an assignment's target is, at the end of its chain.
#[derive(Debug, PartialEq)]
enum Assigned {
    /// A field named in the script: `m.a.name = …`, `m["name"] = …`.
    Name(String),
    /// An item or field by an index computed when it runs: `m[k] = …`, `a[i] = …`.
    Computed,
    /// A variable, or an array item by a number written in the script.
    Variable,
}

/// The last step of an assignment's target chain (`a.b[k].c` ends with `c`). Rhai nests a
/// chain to the right; a node flagged `BREAK` ends it (its right side is an index
/// expression of its own: `a[b.c]`).
fn assigned(target: &Expr) -> Assigned {
    let (x, flags, index) = match target {
        Expr::Dot(x, flags, _) => (x, flags, false),
        Expr::Index(x, flags, _) => (x, flags, true),
        _ => return Assigned::Variable,
    };
    match &x.rhs {
        rest @ (Expr::Dot(..) | Expr::Index(..)) if !flags.intersects(ASTFlags::BREAK) => assigned(rest),
        Expr::Property(p, _) => Assigned::Name(p.2.to_string()),
        Expr::StringConstant(s, _) if index => Assigned::Name(s.to_string()),
        Expr::IntegerConstant(..) => Assigned::Variable,
        _ if index => Assigned::Computed,
        _ => Assigned::Variable,
    }
}

/// Has `engine` apply the rule (see the module's doc) to the names `ast` reads.
pub fn check_reads(engine: &mut Engine, ast: &AST) {
    let names = Names::of(ast);
    engine.on_map_missing_property(move |map, prop, _| {
        if names.assigned.contains(prop) {
            return made(map, prop);
        }
        if names.read.contains(prop)
            && let Some(msg) = missing(map, prop, names.computed)
        {
            return misuse(msg);
        }
        // A computed index may be an assignment: the field is made, as Rhai would.
        if names.computed { made(map, prop) } else { Ok(Target::from(Dynamic::UNIT)) }
    });
}

/// The field `prop` made in `map`, `()` until assigned (Rhai's own way for `m.new = …`).
fn made<'a>(map: &'a mut Map, prop: &str) -> Fallible<Target<'a>> {
    map.entry(prop.into()).or_insert(Dynamic::UNIT).try_into()
}

/// Why reading `prop`, which `map` lacks, is refused, if it is: on a CSV record. On any other
/// map a name close to one it has is warned of, once per file, and read as `()`: a JSON
/// record's optional field may well be close to one it has (`address2` beside `address1`),
/// and failing it would quarantine the files of a correct script the first time a record
/// lacks it.
fn missing(map: &Map, prop: &str, computed: bool) -> Option<String> {
    let record = COLUMNS.with(|c| {
        let columns = c.borrow();
        (!columns.is_empty() && columns.iter().all(|col| map.contains_key(col.as_str())))
            .then(|| suggest::did_you_mean(&suggest::close(prop, columns.iter().map(String::as_str), |_| false)))
    });
    if let Some(hint) = record {
        return Some(format!(
            "`{prop}` is not a column of this file{hint} (a column only some files have is read with `.get(\"{prop}\")`, `()` where it is missing)"
        ));
    }
    if computed {
        return None;
    }
    if WARNED.with(|w| w.borrow().contains(prop)) {
        return None;
    }
    let close = suggest::close(prop, map.keys().map(|k| k.as_str()), |_| false);
    if !close.is_empty() {
        WARNED.with(|w| w.borrow_mut().insert(prop.to_string()));
        tracing::warn!(
            field = prop,
            "A map script read `{prop}`, which the record or map lacks{}: read as `()`. If it is a misspelt name, correct it; a field only some records have is read with `.get(\"{prop}\")`, which says so.",
            suggest::did_you_mean(&close)
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::steps::map::{MapError, Mapper};

    fn mapper(script: &str) -> Mapper {
        Mapper::build("t.rhai", script, Default::default(), 100_000, Duration::from_secs(5)).unwrap()
    }

    /// Maps `record` as a row of a CSV file with `columns`, or as a JSON record (no columns).
    fn map(m: &Mapper, columns: &[&str], record: Value) -> Result<Vec<Value>, MapError> {
        m.start_file();
        if !columns.is_empty() {
            m.file_columns(&columns.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        }
        let out = m.map(&record).map_err(|f| f.error);
        m.end_file();
        out
    }

    /// The hint ending a CSV column's message: how a column only some files have is read.
    fn get(name: &str) -> String {
        format!(" (a column only some files have is read with `.get(\"{name}\")`, `()` where it is missing)")
    }

    #[test]
    fn a_csv_record_has_no_field_but_its_columns() {
        let csv = ["id", "title"];
        let row = || json!({"id": "1", "title": "Dune"});
        for script in ["fn map(r) {\n  #{ id: r.id, name: r.titel }\n}", "fn map(r) {\n  #{ id: r.id, name: r[\"titel\"] }\n}"] {
            assert_eq!(
                map(&mapper(script), &csv, row()),
                Err(MapError::Script(format!(
                    "t.rhai line 2: `titel` is not a column of this file (did you mean `title`?){}",
                    get("titel")
                ))),
                "{script}"
            );
        }
        // Not close to any column: said all the same.
        let e = map(&mapper("fn map(r) { r.price }"), &csv, row()).unwrap_err();
        assert_eq!(e, MapError::Script(format!("t.rhai line 1: `price` is not a column of this file{}", get("price"))));
        // A copy of the record is the record.
        assert!(map(&mapper("fn map(r) { let c = r; c.price }"), &csv, row()).is_err());
        // New fields are made, read back, returned; an optional read is `get` or `in`.
        let m = mapper(
            "fn map(r) {\n  r.name = r.title;\n  r.name += \"!\";\n  r[\"n\"] = 1;\n  r.x = r.get(\"price\") ?? \"none\";\n  r.y = \"price\" in r;\n  r\n}",
        );
        assert_eq!(map(&m, &csv, row()), Ok(vec![json!({"id": "1", "title": "Dune", "name": "Dune!", "n": 1, "x": "none", "y": false})]));
        // The script's own maps keep Rhai's way: a field they lack is `()`.
        let m = mapper("fn map(r) { let out = #{ a: 1 }; #{ id: r.id, b: out.zzz ?? 2 } }");
        assert_eq!(map(&m, &csv, row()), Ok(vec![json!({"id": "1", "b": 2})]));
    }

    /// A JSON record's optional field may be close to one it has (`addr2` beside `addr1`):
    /// read as `()` whatever its name, a close one warned of once per file.
    #[test]
    fn a_json_record_may_lack_a_field_and_a_close_one_is_warned_of() {
        let m = mapper("fn map(r) {\n  #{ id: r.id, note: r.note ?? \"-\" }\n}");
        assert_eq!(map(&m, &[], json!({"id": 1})), Ok(vec![json!({"id": 1, "note": "-"})]));
        let m = mapper("fn map(r) {\n  #{ id: r.id,\n    name: r.titel }\n}");
        let log = crate::log_capture::Log::default();
        let (out, lines) = log.of(|| {
            m.start_file();
            let out: Vec<_> = (0..3).map(|i| m.map(&json!({"id": i, "title": "Dune"})).map_err(|f| f.error)).collect();
            m.end_file();
            out
        });
        assert_eq!(out[2], Ok(vec![json!({"id": 2, "name": null})]));
        assert_eq!(lines.len(), 1, "once per file: {lines:?}");
        assert!(
            lines[0].contains("A map script read `titel`, which the record or map lacks (did you mean `title`?): read as `()`."),
            "{lines:?}"
        );
        assert!(lines[0].contains(".get(\"titel\")"), "{lines:?}");
        // The next file is told again.
        let ((), lines) = log.of(|| {
            map(&m, &[], json!({"id": 1, "title": "Dune"})).unwrap();
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        // An optional field beside its neighbour is no failure; nor in a nested object.
        let m = mapper("fn map(r) { #{ a: r.addr1, b: r.addr2 ?? \"\" } }");
        assert_eq!(map(&m, &[], json!({"addr1": "x"})), Ok(vec![json!({"a": "x", "b": ""})]));
        let m = mapper("fn map(r) { #{ n: r.customer.nmae } }");
        assert_eq!(map(&m, &[], json!({"customer": {"name": "A"}})), Ok(vec![json!({"n": null})]));
        let m = mapper("fn map(r) { #{ n: r.get(\"titel\") } }");
        assert_eq!(map(&m, &[], json!({"title": "Dune"})), Ok(vec![json!({"n": null})]));
    }

    /// A script assigning by a computed index may be making any field: its writes are kept
    /// (a loop copying fields read by name later), only a CSV record's columns are checked.
    #[test]
    fn assignments_by_a_computed_index_are_kept() {
        let m =
            mapper("fn map(r) {\n  let out = #{};\n  for k in r.keys() { out[k] = r[k]; }\n  out.full = out.addr1 + out.addr2;\n  out\n}");
        let row = json!({"addr1": "a", "addr2": "b"});
        assert_eq!(map(&m, &["addr1", "addr2"], row), Ok(vec![json!({"addr1": "a", "addr2": "b", "full": "ab"})]));
        let m = mapper("fn map(r) { let k = \"x\"; r[k] = 1; r.adr1 }");
        assert!(map(&m, &["addr1"], json!({"addr1": "a"})).is_err());
    }

    #[test]
    fn assignment_targets_are_found_at_the_end_of_their_chain() {
        let names = |script: &str| Names::of(&Engine::new().compile(script).unwrap());
        let n = names("let m = #{}; let a = [1]; let k = \"z\"; m.a.b = 1; m[\"c\"] = 2; m.d += 1; a[0] = 2; m.e[k].f = 3; let v = m.g;");
        assert_eq!(n.assigned, ["b", "c", "d", "f"].map(String::from).into());
        assert!(!n.computed, "{n:?}");
        assert!(n.read.contains("g") && n.read.contains("a") && n.read.contains("e"), "{n:?}");
        assert!(names("let m = #{}; let k = \"x\"; m[k] = 1;").computed);
        assert!(names("let m = #{}; let k = #{x: 1}; m[k.x] = 1;").computed);
    }
}
