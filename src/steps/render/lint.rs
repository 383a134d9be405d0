//! Checks of compiled `render` templates beyond their syntax, at load time: every helper a
//! template calls exists (a misspelt one would refuse every record at run time) and gets at
//! least the arguments it needs, and no partial is used (none can be registered); and whether
//! a template writes anything at all.

use handlebars::template::{HelperTemplate, Parameter, Template, TemplateElement};

use super::registry;

/// Handlebars' own helpers.
pub(super) const BUILT_IN: &[&str] =
    &["if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and", "or", "not", "len"];

/// Every problem of template `name`, as `NAME line L, col C: …`.
pub fn problems(name: &str, t: &Template) -> Vec<String> {
    let mut out = Vec::new();
    walk(name, t, None, &mut out);
    out
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

fn walk(name: &str, t: &Template, at: Option<(usize, usize)>, out: &mut Vec<String>) {
    for (i, e) in t.elements.iter().enumerate() {
        // Nested blocks have positions of their own; else the enclosing element's.
        let pos = t.mapping.get(i).map(|m| (m.0, m.1)).or(at);
        element(name, e, pos, out);
    }
}

fn element(name: &str, e: &TemplateElement, pos: Option<(usize, usize)>, out: &mut Vec<String>) {
    let here = |msg: String| match pos {
        Some((l, c)) => format!("{name} line {l}, col {c}: {msg}"),
        None => format!("{name}: {msg}"),
    };
    match e {
        TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) | TemplateElement::HelperBlock(h) => {
            helper(name, h, pos, out, &here);
        }
        TemplateElement::PartialExpression(_) | TemplateElement::PartialBlock(_) => {
            out.push(here("partials (`{{> name}}`) are not available: put the text in the template itself".into()));
        }
        _ => {}
    }
}

fn helper(name: &str, h: &HelperTemplate, pos: Option<(usize, usize)>, out: &mut Vec<String>, here: &dyn Fn(String) -> String) {
    if let Parameter::Name(n) = &h.name {
        let called = !h.params.is_empty() || !h.hash.is_empty();
        let min = registry::min_args(n);
        if called && min.is_none() && !BUILT_IN.contains(&n.as_str()) {
            out.push(here(format!("there is no helper `{n}` (see docs/templates.md for the helpers there are)")));
        }
        if let Some(min) = min.filter(|m| h.params.len() < *m) {
            out.push(here(format!("`{n}` needs {min} argument(s), given {}", h.params.len())));
        }
    }
    for p in h.params.iter().chain(h.hash.values()) {
        if let Parameter::Subexpression(s) = p {
            element(name, &s.element, pos, out);
        }
    }
    for t in h.template.iter().chain(h.inverse.iter()) {
        walk(name, t, pos, out);
    }
}
