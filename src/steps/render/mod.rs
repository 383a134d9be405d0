//! `render`: the records written through Handlebars templates, in the layout a partner
//! demands — a terminal step, instead of `write`.
//!
//! Owns building the step (templates read relative to the flow file and compiled once, at
//! validation, so a syntax error is a validation problem naming the template's line; the mode;
//! the output's extension; the fields to sum) and the message a render error becomes. Writing
//! a file is `output.rs`; the helpers are `text.rs`, `numbers.rs` and `dates.rs`, wired up by
//! `registry.rs`; exact arithmetic is `decimal.rs`; the record fields the templates read (and
//! those no valid record has) are `fields.rs`. Which records reach it, and what an error does
//! to the file, is the pipeline's business (`steps/mod.rs`).

mod dates;
pub(crate) mod decimal;
pub mod fields;
mod lint;
mod numbers;
mod output;
mod registry;
mod text;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use handlebars::{Handlebars, RenderError, RenderErrorReason};

use crate::config::raw_steps::{LineEnding, RawRender, RenderEscape};
use fields::{FieldRef, Missing, Scope, Undeclared};

pub use output::{Failure, Renderer};

/// Records a whole-document template may hold when `max_records` is not set.
pub const DEFAULT_MAX_RECORDS: u64 = 100_000;

/// Which templates make the output. Templates are named by their path as written in the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// One template, rendered once with every record.
    Document(String),
    /// Header once, row per record, footer once.
    Rows { header: Option<String>, row: String, footer: Option<String> },
}

/// A built `render` step. Cheap to clone (the compiled templates are shared).
#[derive(Clone)]
pub struct Render {
    pub mode: Mode,
    /// Fields summed exactly (dotted paths), in the order configured.
    pub sums: Vec<String>,
    pub max_records: u64,
    ext: String,
    escape: RenderEscape,
    registry: Arc<Handlebars<'static>>,
    /// The record fields the row or document template reads.
    refs: Arc<Vec<FieldRef>>,
    /// Those no valid record has (set by the pipeline, which knows the schemas).
    undeclared: Arc<Vec<Undeclared>>,
    /// Tests of names a template's context does not have (`{{#if sku}}` in a row template):
    /// (setting, warning).
    tests: Arc<Vec<(&'static str, String)>>,
}

impl fmt::Debug for Render {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Render").field("mode", &self.mode).field("sums", &self.sums).field("ext", &self.ext).finish_non_exhaustive()
    }
}

impl Render {
    /// Reads and compiles the templates (relative to `base`, the flow file's folder) and checks
    /// the settings; every problem with the field it belongs to.
    pub fn build(raw: &RawRender, base: &Path) -> Result<Render, Vec<(&'static str, String)>> {
        let mut problems: Vec<(&'static str, String)> = Vec::new();
        let mut hb = registry::new(raw.escape);
        // Tests of names a template's context does not have: always false, warned of.
        let mut tests: Vec<(&'static str, String)> = Vec::new();
        // Every template given is compiled, even when the combination is wrong, so that all
        // problems show at once.
        for (field, file, scope) in [
            ("template", &raw.template, Scope::Document),
            ("header", &raw.header, Scope::Header),
            ("row", &raw.row, Scope::Row),
            ("footer", &raw.footer, Scope::Footer),
        ] {
            if let Some(name) = file {
                match load(&mut hb, name, base, raw.line_ending, matches!(scope, Scope::Document | Scope::Header)) {
                    Err(e) => problems.push((field, e)),
                    Ok(()) => {
                        let Some(t) = hb.get_template(name) else { continue };
                        problems.extend(lint::problems(&hb, name, t).into_iter().map(|p| (field, p)));
                        for s in fields::strangers(t, scope) {
                            if s.strict {
                                problems.push((field, s.message(name)));
                            } else {
                                tests.push((field, s.message(name)));
                            }
                        }
                    }
                }
            }
        }
        let streamed = raw.header.is_some() || raw.row.is_some() || raw.footer.is_some();
        let mode = match (&raw.template, &raw.row) {
            (Some(_), _) if streamed => {
                problems.push((
                    "template",
                    "use either `template` (one document from all records) or `header`/`row`/`footer` (one record at a time), not both"
                        .into(),
                ));
                None
            }
            (Some(t), _) => Some(Mode::Document(t.clone())),
            (None, Some(r)) => Some(Mode::Rows { header: raw.header.clone(), row: r.clone(), footer: raw.footer.clone() }),
            (None, None) => {
                let msg = if streamed {
                    "`header` and `footer` go with a `row` template (rendered for every record)"
                } else {
                    "needs `template` (one document from all records) or `row` (one per record, with optional `header` and `footer`)"
                };
                problems.push(("row", msg.into()));
                None
            }
        };
        // A template that writes nothing would deliver every file empty, its source then
        // disposed of as delivered. A blank row between a header and a footer that write
        // something is a summary (a count, a total) and fine.
        let blank = |name: &String| hb.get_template(name).is_some_and(lint::blank);
        match &mode {
            Some(Mode::Document(t)) if blank(t) => problems.push((
                "template",
                format!("{t} is empty: every file would be delivered as an empty document, without any of its records"),
            )),
            Some(Mode::Rows { header, row, footer }) if blank(row) && header.iter().chain(footer).all(blank) => {
                let also = if header.is_some() || footer.is_some() { " (and so are the header and footer)" } else { "" };
                problems.push(("row", format!("{row} is empty{also}: every file would be delivered empty, without any of its records")))
            }
            _ => {}
        }
        match raw.max_records {
            Some(0) => problems.push(("max_records", "must be at least 1".into())),
            Some(_) if matches!(mode, Some(Mode::Rows { .. })) => {
                problems.push(("max_records", "applies to a whole-document `template`; a `row` template holds one record at a time".into()))
            }
            _ => {}
        }
        let ext = extension(raw).map_err(|e| problems.push(("extension", e))).ok();
        if let Err(e) = check_sums(&raw.sums) {
            problems.push(("sums", e));
        }
        let refs = match &mode {
            Some(Mode::Rows { row, .. }) => hb.get_template(row).map(|t| fields::refs("row", row, t, Scope::Row)),
            Some(Mode::Document(name)) => hb.get_template(name).map(|t| fields::refs("template", name, t, Scope::Document)),
            None => None,
        };
        match (mode, ext) {
            (Some(mode), Some(ext)) if problems.is_empty() => Ok(Render {
                mode,
                sums: raw.sums.clone(),
                max_records: raw.max_records.unwrap_or(DEFAULT_MAX_RECORDS),
                ext,
                escape: raw.escape,
                registry: Arc::new(hb),
                refs: Arc::new(refs.unwrap_or_default()),
                undeclared: Arc::new(Vec::new()),
                tests: Arc::new(tests),
            }),
            _ => Err(problems),
        }
    }

    /// The output file's extension.
    pub fn ext(&self) -> &str {
        &self.ext
    }

    /// A warning when the output is XML or HTML (by its extension) and `{{value}}` escapes
    /// nothing: a `&` or `<` in a record would make the document broken. Not a problem: a
    /// template may escape each value itself (`{{xml value}}`).
    pub fn escape_warning(&self) -> Option<String> {
        let ext = self.ext.to_ascii_lowercase();
        let (kind, escape) = match ext.as_str() {
            "xml" => ("XML", "xml"),
            "html" | "htm" => ("HTML", "html"),
            _ => return None,
        };
        (self.escape == RenderEscape::None).then(|| {
            format!(
                "the output is `.{}` but `escape` is `none`: a `&` or `<` in a value would make broken {kind}; set `escape: {escape}` \
                 (`{{{{{{value}}}}}}` still writes a value as it is)",
                self.ext
            )
        })
    }

    fn registry(&self) -> &Handlebars<'static> {
        &self.registry
    }

    /// Tests of names a template's context does not have, always false: (setting, warning).
    pub fn stranger_tests(&self) -> &[(&'static str, String)] {
        &self.tests
    }

    /// The fields read that no valid record has.
    pub fn undeclared(&self) -> &[Undeclared] {
        &self.undeclared
    }

    /// Sets [`Render::undeclared`], from the closed record schemas (schema file name,
    /// properties) every rendered record has passed.
    pub fn set_closed(&mut self, closed: &[(String, std::collections::BTreeSet<String>)]) {
        self.undeclared = Arc::new(Undeclared::find(&self.refs, closed));
    }

    /// What render error `e` says, and whose problem it is: the flow's own when it is a read
    /// of a field no valid record has.
    fn failure(&self, e: &RenderError) -> (String, crate::steps::Cause) {
        match self.undeclared.iter().find(|u| u.is(e)) {
            Some(u) => (u.message(), crate::steps::Cause::Template),
            None => {
                // Handlebars' `eq` and the like name themselves, not the missing field: the read
                // it is, when only one can be.
                let mut reads = self.refs.iter().filter(|r| matches!(r.missing, Missing::Refused { .. }) && r.failed(e));
                let read = reads.next().filter(|_| reads.next().is_none());
                (render_message(e, read.map(|r| r.path.as_str())), crate::steps::Cause::Data)
            }
        }
    }
}

/// Reads a template file and registers it under its name as written. `starts_file`: its
/// output starts the file (a header, a whole document), where a byte-order mark its editor
/// saved is written as the file's own; a row or footer template drops it, as it would land
/// before every record, inside the file.
fn load(hb: &mut Handlebars<'static>, name: &str, base: &Path, line_ending: LineEnding, starts_file: bool) -> Result<(), String> {
    let path = crate::config::paths::resolve(base, name);
    let read = if starts_file { crate::config::inputs::read_to_string(&path) } else { crate::config::inputs::read_code(&path) };
    let text = read.map_err(|e| format!("cannot read template {}: {}", path.display(), crate::endpoint::local::io_reason(&e)))?;
    // Line breaks of the template's own text, whatever the editor (or git) saved.
    let text = text.replace("\r\n", "\n");
    let text = match line_ending {
        LineEnding::Lf => text,
        LineEnding::Crlf => text.replace('\n', "\r\n"),
    };
    // `pricelist.xml.hbs line 3, col 7: …`
    hb.register_template_string(name, &text).map_err(|e| crate::template::syntax_error(name, &text, &e))
}

/// What a render error tells the partner: the template, line and column, and why. `refused`:
/// the field path a helper's refused argument is known to read.
pub fn render_message(e: &RenderError, refused: Option<&str>) -> String {
    let template = e.template_name.as_deref().unwrap_or("template");
    let at = match (e.line_no, e.column_no) {
        (Some(l), Some(c)) => format!("{template} line {l}, col {c}"),
        _ => template.to_string(),
    };
    let missing = match (e.reason(), refused) {
        (RenderErrorReason::MissingVariable(Some(field)), _) => Some(field.as_str()),
        (RenderErrorReason::ParamNotFoundForIndex(..) | RenderErrorReason::ParamNotFoundForName(..), Some(field)) => Some(field),
        _ => None,
    };
    let why = match (missing, e.reason()) {
        (Some(field), _) => format!(
            "`{field}` is missing (templates are strict: write `{{{{#if {field}}}}}…{{{{/if}}}}` or `{{{{default {field} \"\"}}}}` for an optional field)"
        ),
        (None, RenderErrorReason::MissingVariable(None)) => "a value is missing (templates are strict)".to_string(),
        (None, other) => crate::template::render_reason(other),
    };
    format!("{at}: {why}")
}

/// The default extension: the template's name without `.hbs` (`pricelist.xml.hbs` → `xml`).
fn extension(raw: &RawRender) -> Result<String, String> {
    if let Some(given) = &raw.extension {
        let e = given.trim_start_matches('.');
        return if !e.is_empty() && e.len() <= 16 && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            Ok(e.to_string())
        } else {
            Err(format!("`{given}` is not a file extension (letters, digits, `_` or `-`, like `txt`)"))
        };
    }
    let Some(file) = raw.template.as_deref().or(raw.row.as_deref()) else { return Ok("txt".into()) };
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let stem = name.strip_suffix(".hbs").or_else(|| name.strip_suffix(".handlebars")).unwrap_or(name);
    match stem.rsplit_once('.') {
        Some((s, ext)) if !s.is_empty() && !ext.is_empty() => Ok(ext.to_string()),
        _ => Err(format!("cannot tell the output's extension from `{name}`: name the template like `row.txt.hbs`, or set `extension`")),
    }
}

/// Sum fields are dotted paths; one may not be a group of another (`a` and `a.b`).
fn check_sums(sums: &[String]) -> Result<(), String> {
    for (i, s) in sums.iter().enumerate() {
        if s.split('.').any(str::is_empty) {
            return Err(format!("`{s}` is not a field name (dotted paths like `price.net` are fine)"));
        }
        for other in &sums[..i] {
            if other == s {
                return Err(format!("`{s}` is listed twice"));
            }
            let (short, long) = if other.len() < s.len() { (other, s) } else { (s, other) };
            if long.starts_with(&format!("{short}.")) {
                return Err(format!("`{short}` and `{long}` cannot both be summed: `sums.{short}` would be a number and a group"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
