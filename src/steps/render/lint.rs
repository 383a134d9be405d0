//! Checks of compiled `render` templates beyond their syntax, at load time: every helper a
//! template calls exists (a misspelt one would refuse every record at run time) and gets at
//! least the arguments it needs, settings written as literals (a date format, a width,
//! decimals) that the helper refuses whatever the record, and no partial is used (none can
//! be registered); and whether a template writes anything at all.

use handlebars::Handlebars;
use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};
use serde_json::{Value, json};

use super::registry;

/// Handlebars' own helpers.
pub(super) const BUILT_IN: &[&str] =
    &["if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len"];

/// Every problem of template `name`, as `NAME line L, col C: …`. `hb`: the step's registry,
/// whose helpers judge literal settings.
pub fn problems(hb: &Handlebars<'_>, name: &str, t: &Template) -> Vec<String> {
    let mut out = Vec::new();
    Lint { hb, name, out: &mut out }.walk(t, None);
    out
}

/// wharf's helpers whose arguments from this position on are settings rather than the value
/// (`{{date record.d "DD.MM.YYYY"}}`, `{{pad record.sku 10 fill="0"}}`, `{{now "YYYY"}}`),
/// with their `name=value` arguments.
const SETTINGS_FROM: &[(&str, usize)] = &[("number", 1), ("date", 1), ("now", 0), ("pad", 1), ("lpad", 1), ("truncate", 1), ("csv", 1)];

/// Why helper `n` refuses the settings `h` gives it as literals, whatever the value: the
/// helper called on `"1"` (a number, text and a date in epoch seconds alike) with them.
/// `None` when they are fine, or when one of them is read from the data.
fn refused_settings(hb: &Handlebars<'_>, n: &str, h: &HelperTemplate) -> Option<String> {
    let from = SETTINGS_FROM.iter().find(|(name, _)| *name == n)?.1;
    let literal = |p: &Parameter| match p {
        Parameter::Literal(v) => Some(v.clone()),
        _ => None,
    };
    let params: Vec<Value> = h.params.iter().skip(from).map(literal).collect::<Option<_>>()?;
    let hash: Vec<(&String, Value)> = h.hash.iter().map(|(k, p)| literal(p).map(|v| (k, v))).collect::<Option<_>>()?;
    if params.is_empty() && hash.is_empty() {
        return None;
    }
    let mut data = json!({ "file": { "now": 0 }, "value": "1" });
    let mut call = format!("{{{{{n}{}", if from > 0 { " value" } else { "" });
    for (i, v) in params.into_iter().enumerate() {
        data[format!("p{i}")] = v;
        call.push_str(&format!(" p{i}"));
    }
    for (k, v) in hash {
        data[format!("h_{k}")] = v;
        call.push_str(&format!(" {k}=h_{k}"));
    }
    call.push_str("}}");
    hb.render_template(&call, &data).err().map(|e| crate::template::render_reason(e.reason()))
}

/// Whether `t` writes nothing but whitespace, whatever it is given: an empty file (saved
/// empty, or cut short), or only comments.
pub fn blank(t: &Template) -> bool {
    t.elements.iter().all(|e| match e {
        TemplateElement::RawString(s) => s.trim().is_empty(),
        TemplateElement::Comment(_) => true,
        _ => false,
    })
}

/// One template's walk: the registry, its name, and the problems found so far.
struct Lint<'a, 'r> {
    hb: &'a Handlebars<'r>,
    name: &'a str,
    out: &'a mut Vec<String>,
}

impl Lint<'_, '_> {
    fn walk(&mut self, t: &Template, at: Option<(usize, usize)>) {
        for (i, e) in t.elements.iter().enumerate() {
            // Nested blocks have positions of their own; else the enclosing element's.
            let pos = t.mapping.get(i).map(|m| (m.0, m.1)).or(at);
            self.element(e, pos);
        }
    }

    fn here(&mut self, pos: Option<(usize, usize)>, msg: String) {
        let name = self.name;
        self.out.push(match pos {
            Some((l, c)) => format!("{name} line {l}, col {c}: {msg}"),
            None => format!("{name}: {msg}"),
        });
    }

    fn element(&mut self, e: &TemplateElement, pos: Option<(usize, usize)>) {
        match e {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) | TemplateElement::HelperBlock(h) => self.helper(h, pos),
            TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
                self.here(pos, "partials (`{{> name}}`) are not available: put the text in the template itself".into());
            }
            _ => {}
        }
    }

    fn helper(&mut self, h: &HelperTemplate, pos: Option<(usize, usize)>) {
        if let Parameter::Name(n) = &h.name {
            let called = !h.params.is_empty() || !h.hash.is_empty();
            let min = registry::min_args(n);
            if called && min.is_none() && !BUILT_IN.contains(&n.as_str()) {
                self.here(pos, format!("there is no helper `{n}` (see docs/templates.md for the helpers there are)"));
            }
            if let Some(min) = min.filter(|m| h.params.len() < *m) {
                self.here(pos, format!("`{n}` needs {min} argument(s), given {}", h.params.len()));
            } else if let Some(why) = refused_settings(self.hb, n, h) {
                self.here(pos, format!("{why} (whatever the value: it would fail each time it is rendered)"));
            }
        }
        for p in h.params.iter().chain(h.hash.values()) {
            if let Parameter::Subexpression(s) = p {
                self.element(&s.element, pos);
            }
        }
        for t in h.template.iter().chain(h.inverse.iter()) {
            self.walk(t, pos);
        }
    }
}
