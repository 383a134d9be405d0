//! The record fields a `render` template reads, found in its compiled form (never in its text),
//! and those of them no valid record can have: a field outside the closed set of properties of
//! a record schema checked before rendering. Such a field is the template's mistake (a typo like
//! `record.curency` for `currency`): every record would fail on it, and the partner's file is not
//! to blame. The flow's validation warns of it; a record failing on it is the flow's own error.
//!
//! Only paths that surely start at a record are taken: `record.X` / `this.record.X` in a row
//! template outside blocks that change the context (`#each`, `#with`, any other block but
//! `#if` / `#unless`), and `X` / `this.X` directly inside `{{#each records}}` of a whole-document
//! template. Anything else (`../`, `@root`, nested `#each`, block parameters) is left alone. Which
//! schemas are closed is `validate.rs`'s business; which of them apply, `steps/mod.rs`'s.

use std::collections::BTreeSet;

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use handlebars::{Path, PathSeg, RenderError, RenderErrorReason};

use super::registry;

/// Handlebars' block helpers that render their body in the same context.
const SAME_CONTEXT: &[&str] = &["if", "unless"];

/// The most declared properties a message lists.
const LISTED: usize = 10;

/// Where a template is: which records its paths start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A header template's context: `{ file }`.
    Header,
    /// A row template's context: `{ record, row, file }`.
    Row,
    /// A footer template's context: `{ count, sums, file }`.
    Footer,
    /// A whole-document template's context: `{ records, count, sums, file }`.
    Document,
    /// Inside `{{#each records}}`: one record.
    Record,
}

impl Scope {
    /// The names the template's context has (`output.rs` gives it them), when it is closed: a
    /// record's context is not.
    fn context(self) -> Option<&'static [&'static str]> {
        match self {
            Scope::Header => Some(&["file"]),
            Scope::Row => Some(&["record", "row", "file"]),
            Scope::Footer => Some(&["count", "sums", "file"]),
            Scope::Document => Some(&["records", "count", "sums", "file"]),
            Scope::Record => None,
        }
    }
}

/// A read, at the top of a template, of a name its context does not have (`{{sku}}` in a row
/// template, for `{{record.sku}}`): strict, it fails on every record whatever the file holds —
/// the template's mistake, told when the flow is loaded rather than blamed on every file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stranger {
    /// The path as written (`sku`).
    pub path: String,
    /// Line and column of the expression.
    pub at: Option<(usize, usize)>,
    scope: Scope,
    /// The read fails (`{{sku}}`), rather than being a test that is always false
    /// (`{{#if sku}}`, `{{default sku "-"}}`).
    pub strict: bool,
}

impl Stranger {
    /// What is wrong, as `NAME line L, col C: …` (template `name`): a problem when the read is
    /// strict, a warning when it is a test.
    pub fn message(&self, name: &str) -> String {
        let at = match self.at {
            Some((l, c)) => format!("{name} line {l}, col {c}"),
            None => name.to_string(),
        };
        let has = self.scope.context().unwrap_or_default().iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
        let (what, hint, fails) = match self.scope {
            Scope::Header => ("a header", String::new(), "file"),
            Scope::Row => ("a row", format!("; a field of the record is `record.{}`", self.path), "record"),
            Scope::Footer => ("a footer", String::new(), "file"),
            Scope::Document | Scope::Record => {
                ("a whole-document", "; a record's fields are read inside `{{#each records}}`".to_string(), "file")
            }
        };
        let then = if self.strict {
            format!("every {fails} would fail to render")
        } else {
            "it is never there (a test of it is always false, `default` gives its default)".to_string()
        };
        format!("{at}: `{}` is not a name {what} template is given (it has {has}{hint}): {then}", self.path)
    }
}

/// The reads of template `t` (of context `scope`) of names its context does not have.
pub fn strangers(t: &Template, scope: Scope) -> Vec<Stranger> {
    let mut w = Walk { setting: "", name: "", out: Vec::new(), strangers: Vec::new() };
    w.template(t, scope, None);
    w.strangers
}

/// One read of a record field by a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    /// The `render` setting naming the template (`row`, `template`).
    pub setting: &'static str,
    /// The template, as the flow names it.
    pub template: String,
    /// Line and column of the expression (as Handlebars reports its errors).
    pub at: Option<(usize, usize)>,
    /// The path as written (`record.curency`).
    pub path: String,
    /// The record's top-level field it reads (`curency`).
    pub field: String,
    /// What a record without the field makes of the read.
    pub missing: Missing,
}

/// What a record without the field makes of a read (templates are strict).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// A false test or a value left out: `{{#if record.x}}`, `and` / `or`, `default`'s value.
    Tested,
    /// Handlebars' strict-mode error naming the path (`MissingVariable`): `{{record.x}}`, an
    /// argument of wharf's helpers, `{{#each record.x}}` / `{{#with record.x}}` without `{{else}}`.
    Fails,
    /// Argument `index` refused by Handlebars' own helper `helper`, whose error names the
    /// helper and the argument, not the path: `ParamNotFoundForIndex` from `eq`, `ne`, `gt`,
    /// `gte`, `lt`, `lte`, `not`; `ParamNotFoundForName` from `len`.
    Refused { helper: String, index: usize },
}

impl FieldRef {
    /// A record without the field fails to render, rather than the test being false.
    pub fn strict(&self) -> bool {
        self.missing != Missing::Tested
    }

    /// Whether render error `e` may be this read failing: at its template, line and column, the
    /// strict-mode error naming its path, or its helper refusing its argument. (Two reads of one
    /// expression by the same helper at the same argument, `(or (eq record.a 1) (eq record.b 2))`,
    /// cannot be told apart.)
    pub fn failed(&self, e: &RenderError) -> bool {
        let this = match (&self.missing, e.reason()) {
            (Missing::Fails, RenderErrorReason::MissingVariable(Some(path))) => *path == self.path,
            (Missing::Refused { helper, index }, RenderErrorReason::ParamNotFoundForIndex(h, i)) => h == helper && i == index,
            // `len`'s one argument, named by Handlebars' `handlebars_helper!` macro.
            (Missing::Refused { helper, index: 0 }, RenderErrorReason::ParamNotFoundForName(h, _)) => h == helper && *h == "len",
            _ => false,
        };
        this && e.template_name.as_deref() == Some(self.template.as_str()) && e.line_no.zip(e.column_no) == self.at
    }
}

/// Every record field template `name` (set as `setting`) reads, from its context `scope`.
pub fn refs(setting: &'static str, name: &str, t: &Template, scope: Scope) -> Vec<FieldRef> {
    let mut w = Walk { setting, name, out: Vec::new(), strangers: Vec::new() };
    w.template(t, scope, None);
    w.out
}

/// A field read by a template that no valid record has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undeclared {
    pub read: FieldRef,
    /// The file name of the schema that does not declare it.
    pub schema: String,
    /// Its properties (sorted).
    pub declared: Vec<String>,
}

impl Undeclared {
    /// The reads of `refs` outside some closed schema of `closed` (schema file name, properties).
    pub fn find(refs: &[FieldRef], closed: &[(String, BTreeSet<String>)]) -> Vec<Undeclared> {
        refs.iter()
            .filter_map(|r| {
                let (schema, props) = closed.iter().find(|(_, props)| !props.contains(&r.field))?;
                Some(Undeclared { read: r.clone(), schema: schema.clone(), declared: props.iter().cloned().collect() })
            })
            .collect()
    }

    /// `row.txt.hbs line 3, col 5`.
    fn place(&self) -> String {
        match self.read.at {
            Some((l, c)) => format!("{} line {l}, col {c}", self.read.template),
            None => self.read.template.clone(),
        }
    }

    /// Why no record has it: `` `record.curency` is not a property of the schema s.json (declared: …) ``.
    fn why(&self) -> String {
        let mut listed = self.declared.iter().take(LISTED).map(String::as_str).collect::<Vec<_>>().join(", ");
        if self.declared.len() > LISTED {
            listed.push_str(", …");
        }
        format!("`{}` is not a property of the schema {} (declared: {listed})", self.read.path, self.schema)
    }

    /// The flow validation's warning.
    pub fn warning(&self) -> String {
        let then = if self.read.strict() { "every record will fail to render" } else { "no valid record has it" };
        format!("template {}: {}; {then}", self.place(), self.why())
    }

    /// What a record failing on it is told: the template is wrong, not the file.
    pub fn message(&self) -> String {
        format!("{}: {}, so no valid record has it: the template is to be corrected, not the file", self.place(), self.why())
    }

    /// Whether render error `e` is this read failing. When it may be another read of the same
    /// expression as well ([`FieldRef::failed`]), that expression fails on every record anyway:
    /// the template's mistake either way.
    pub fn is(&self, e: &RenderError) -> bool {
        self.read.failed(e)
    }
}

struct Walk<'a> {
    setting: &'static str,
    name: &'a str,
    out: Vec<FieldRef>,
    strangers: Vec<Stranger>,
}

impl Walk<'_> {
    fn template(&mut self, t: &Template, scope: Scope, at: Option<(usize, usize)>) {
        for (i, e) in t.elements.iter().enumerate() {
            // Nested blocks have positions of their own; else the enclosing element's (as in
            // Handlebars' errors and `lint.rs`).
            let pos = t.mapping.get(i).map(|m| (m.0, m.1)).or(at);
            self.element(e, scope, pos);
        }
    }

    fn element(&mut self, e: &TemplateElement, scope: Scope, pos: Option<(usize, usize)>) {
        match e {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => self.call(h, scope, pos),
            TemplateElement::HelperBlock(h) => {
                self.call(h, scope, pos);
                let Parameter::Name(n) = &h.name else { return };
                let body = if SAME_CONTEXT.contains(&n.as_str()) {
                    Some(scope)
                } else if n == "each" && scope == Scope::Document && h.block_param.is_none() && is_records(h) {
                    Some(Scope::Record)
                } else {
                    None
                };
                if let (Some(s), Some(t)) = (body, &h.template) {
                    self.template(t, s, pos);
                }
                // `{{else}}` is rendered in the block's own context.
                if (body.is_some() || n == "each" || n == "with")
                    && let Some(t) = &h.inverse
                {
                    self.template(t, scope, pos);
                }
            }
            _ => {}
        }
    }

    /// An expression, a block's opening or a subexpression: its value or its arguments.
    fn call(&mut self, h: &HelperTemplate, scope: Scope, pos: Option<(usize, usize)>) {
        let bare = !h.block && h.params.is_empty() && h.hash.is_empty();
        match &h.name {
            // `{{record.x}}`, `{{this.x}}`, `{{x}}` — unless `x` alone names a helper, which it calls.
            Parameter::Path(p) if bare && !matches!(p, Path::Relative((_, raw)) if is_helper(raw)) => {
                self.path(p, scope, pos, Missing::Fails)
            }
            Parameter::Name(n) => {
                // wharf's helpers refuse a missing argument (`default` exists for a value that
                // may be missing); Handlebars' own, each its own way.
                let ours = registry::min_args(n).is_some();
                for (i, p) in h.params.iter().enumerate() {
                    let missing = match n.as_str() {
                        "default" if i == 0 => Missing::Tested,
                        _ if ours => Missing::Fails,
                        _ => built_in(n, i, h),
                    };
                    self.param(p, scope, pos, missing);
                }
                for p in h.hash.values() {
                    self.param(p, scope, pos, if ours { Missing::Fails } else { Missing::Tested });
                }
            }
            _ => {}
        }
    }

    fn param(&mut self, p: &Parameter, scope: Scope, pos: Option<(usize, usize)>, missing: Missing) {
        match p {
            Parameter::Path(path) => self.path(path, scope, pos, missing),
            Parameter::Subexpression(s) => {
                if let TemplateElement::Expression(h) = s.element.as_ref() {
                    self.call(h, scope, pos);
                }
            }
            _ => {}
        }
    }

    fn path(&mut self, p: &Path, scope: Scope, pos: Option<(usize, usize)>, missing: Missing) {
        // `Local` paths are `@index` and the like; a `Ruled` segment is `../` or `@root`.
        let Path::Relative((segs, raw)) = p else { return };
        if let (Some(has), Some(PathSeg::Named(first))) = (scope.context(), segs.first())
            && !has.contains(&first.as_str())
        {
            self.strangers.push(Stranger { path: raw.clone(), at: pos, scope, strict: missing != Missing::Tested });
        }
        let field = match (scope, segs.as_slice()) {
            (Scope::Row, [PathSeg::Named(r), PathSeg::Named(x), ..]) if r == "record" => x,
            (Scope::Record, [PathSeg::Named(x), ..]) => x,
            _ => return,
        };
        self.push(raw.clone(), field.clone(), pos, missing);
    }

    fn push(&mut self, path: String, field: String, at: Option<(usize, usize)>, missing: Missing) {
        self.out.push(FieldRef { setting: self.setting, template: self.name.to_string(), at, path, field, missing });
    }
}

/// What argument `i` of Handlebars' helper `n` (called as `h`) makes of a missing value
/// (handlebars 6.4: `helpers/helper_extras.rs`, `helper_each.rs`, `helper_with.rs`).
fn built_in(n: &str, i: usize, h: &HelperTemplate) -> Missing {
    match n {
        "eq" | "ne" | "gt" | "gte" | "lt" | "lte" if i < 2 => Missing::Refused { helper: n.to_string(), index: i },
        "not" | "len" if i == 0 => Missing::Refused { helper: n.to_string(), index: 0 },
        // An `{{else}}` is rendered instead of failing.
        "each" | "with" if i == 0 && h.block && h.inverse.is_none() => Missing::Fails,
        // `if`, `unless`, `and`, `or` test it; `lookup`'s strict error names no path.
        _ => Missing::Tested,
    }
}

/// `{{#each records}}` (or `this.records`).
fn is_records(h: &HelperTemplate) -> bool {
    matches!(h.params.as_slice(), [Parameter::Path(Path::Relative((segs, _)))] if matches!(segs.as_slice(), [PathSeg::Named(r)] if r == "records"))
}

/// A name `{{name}}` calls rather than reads.
fn is_helper(name: &str) -> bool {
    registry::min_args(name).is_some() || super::lint::BUILT_IN.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw_steps::RenderEscape;

    /// `(path, field, line, strict)` of every read found in `text`.
    fn found(text: &str, scope: Scope) -> Vec<(String, String, usize, bool)> {
        let mut hb = registry::new(RenderEscape::None);
        hb.register_template_string("t.hbs", text).unwrap();
        refs("row", "t.hbs", hb.get_template("t.hbs").unwrap(), scope)
            .into_iter()
            .map(|r| (r.path.clone(), r.field.clone(), r.at.map_or(0, |a| a.0), r.strict()))
            .collect()
    }

    fn read(path: &str, field: &str, line: usize, strict: bool) -> (String, String, usize, bool) {
        (path.into(), field.into(), line, strict)
    }

    #[test]
    fn a_row_template_reads_record_fields_at_its_top_and_in_if_blocks() {
        let text = "{{record.sku}}{{this.record.price.net}}\n{{pad record.name 10 fill=record.fill}}{{lpad (upper record.city) 3}}\n\
                    {{#if record.note}}{{{record.note}}}{{else}}{{default record.remark \"-\"}}{{/if}}{{#unless (eq record.kind \"x\")}}{{row}}{{/unless}}";
        assert_eq!(
            found(text, Scope::Row),
            [
                read("record.sku", "sku", 1, true),
                read("this.record.price.net", "price", 1, true),
                read("record.name", "name", 2, true),
                read("record.fill", "fill", 2, true),
                read("record.city", "city", 2, true),
                read("record.note", "note", 3, false),
                read("record.note", "note", 3, true),
                read("record.remark", "remark", 3, false),
                read("record.kind", "kind", 3, true),
            ]
        );
    }

    /// Handlebars' own helpers: the comparisons, `not` and `len` refuse a missing argument
    /// (naming the helper, not the path); `and`, `or`, `if` test it; `each` / `with` fail on it
    /// unless they have an `{{else}}`.
    #[test]
    fn handlebars_helpers_refuse_or_test_a_missing_argument() {
        let mut hb = registry::new(RenderEscape::None);
        let text = "{{#if (and (eq record.a 1) (not record.b))}}{{len record.c}}{{/if}}{{or record.d (gt 1 record.e)}}\n\
                    {{#each record.f}}.{{else}}-{{/each}}{{#with record.g}}{{/with}}{{lookup record.h \"k\"}}";
        hb.register_template_string("t.hbs", text).unwrap();
        let refused = |helper: &str, index| Missing::Refused { helper: helper.into(), index };
        let got: Vec<_> = refs("row", "t.hbs", hb.get_template("t.hbs").unwrap(), Scope::Row)
            .into_iter()
            .map(|r| (r.field, r.at.map_or(0, |a| a.0), r.missing))
            .collect();
        let want = [
            ("a", 1, refused("eq", 0)),
            ("b", 1, refused("not", 0)),
            ("c", 1, refused("len", 0)),
            ("d", 1, Missing::Tested),
            ("e", 1, refused("gt", 1)),
            ("f", 2, Missing::Tested),
            ("g", 2, Missing::Fails),
            ("h", 2, Missing::Tested),
        ];
        assert_eq!(got, want.map(|(f, l, m)| (f.to_string(), l, m)));
    }

    /// Where the context may be something else than the row's, nothing is taken.
    #[test]
    fn blocks_that_change_the_context_and_other_roots_are_left_alone() {
        let text = "{{#each record.items}}{{record.x}}{{this.y}}{{../record.z}}{{/each}}{{#with record}}{{record.w}}{{sku}}{{/with}}\
                    {{@root.record.v}}{{file.name}}{{row}}{{record}}";
        assert_eq!(found(text, Scope::Row), [read("record.items", "items", 1, true)]);
        // A header or footer has no record; a document's records are inside `#each records`.
        let text = "{{count}} {{#each records}}{{sku}}{{this.price}} {{pad name 3}}{{@index}}{{#if @first}}{{city}}{{/if}}\
                    {{#each lines}}{{qty}}{{/each}}{{count}}{{/each}}{{record.x}}{{#each records as |r|}}{{r.sku}}{{/each}}";
        assert_eq!(
            found(text, Scope::Document),
            [
                read("sku", "sku", 1, true),
                read("this.price", "price", 1, true),
                read("name", "name", 1, true),
                read("city", "city", 1, true),
                read("lines", "lines", 1, true),
            ]
        );
    }
}
