//! The Handlebars registry of one `render` step: strict mode, the chosen escaping, no
//! indentation of partials, and every template helper registered (`text`, `numbers`, `dates`).
//!
//! Owns how a helper is wired into Handlebars ([`ValueHelper`]: a plain function from the
//! helper's arguments to a JSON value, usable directly and as a subexpression) and how helpers
//! read their arguments ([`arg`], [`hash`], [`text`]): a missing field is the strict-mode
//! error naming it, whatever the helper. It does not know any template.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, HelperResult, JsonRender, Output, RenderContext, RenderError, RenderErrorReason, ScopedJson,
};
use serde_json::Value;

use super::{dates, numbers, text};
use crate::config::raw_steps::RenderEscape;

/// A helper's body: its arguments (and the root context, for the run time) to a value.
pub type HelperFn = fn(&Helper<'_>, &Context) -> Result<Value, RenderError>;

/// A helper computed by a [`HelperFn`]. Its value is inserted like `{{value}}` (escaped as the
/// step's `escape` says, raw in `{{{…}}}`), unless it is `escaped` already (`xml`, `html`),
/// which is inserted as is so that it is not escaped twice.
pub struct ValueHelper {
    pub f: HelperFn,
    pub escaped: bool,
}

impl HelperDef for ValueHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        (self.f)(h, ctx).map(ScopedJson::Derived)
    }

    fn call<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        rc: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let rendered = (self.f)(h, ctx)?.render();
        let rendered = if self.escaped || rc.is_disable_escape() { rendered } else { r.get_escape_fn()(&rendered) };
        out.write(&rendered)?;
        Ok(())
    }
}

/// A registry for one step's templates, every helper registered.
pub fn new(escape: RenderEscape) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    // Fixed-width layouts must come out exactly as written.
    hb.set_prevent_indent(true);
    match escape {
        RenderEscape::None => hb.register_escape_fn(handlebars::no_escape),
        RenderEscape::Html => hb.register_escape_fn(handlebars::html_escape),
        RenderEscape::Xml => hb.register_escape_fn(text::escape_xml),
    }
    let mut add = |name: &str, f: HelperFn, escaped: bool| hb.register_helper(name, Box::new(ValueHelper { f, escaped }));
    for (name, f, escaped, _) in all() {
        add(name, *f, *escaped);
    }
    hb
}

/// Every helper: name, body, escaped already, fewest arguments.
fn all() -> impl Iterator<Item = &'static (&'static str, HelperFn, bool, usize)> {
    text::HELPERS.iter().chain(numbers::HELPERS).chain(dates::HELPERS)
}

/// The fewest arguments wharf's helper `name` takes; `None` for no such helper.
pub fn min_args(name: &str) -> Option<usize> {
    all().find(|(n, ..)| *n == name).map(|h| h.3)
}

/// A helper error (shown with the template's line by the caller).
pub fn fail(h: &Helper<'_>, msg: impl std::fmt::Display) -> RenderError {
    RenderErrorReason::Other(format!("`{}`: {msg}", h.name())).into()
}

/// Argument `i` (0-based) of `h`, described as `what` when it is not given. A field that does
/// not exist is the strict-mode error, naming it.
pub fn arg<'a>(h: &'a Helper<'_>, i: usize, what: &str) -> Result<&'a Value, RenderError> {
    let p = h.param(i).ok_or_else(|| fail(h, format!("needs {what}")))?;
    if p.is_value_missing() {
        return Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into());
    }
    Ok(p.value())
}

/// The hash argument `key=…` of `h`, if given.
pub fn hash<'a>(h: &'a Helper<'_>, key: &str) -> Result<Option<&'a Value>, RenderError> {
    match h.hash_get(key) {
        None => Ok(None),
        Some(p) if p.is_value_missing() => Err(RenderErrorReason::MissingVariable(p.relative_path().cloned()).into()),
        Some(p) => Ok(Some(p.value())),
    }
}

/// The text of a value as a template shows it: a string as is, null as nothing, numbers and
/// booleans as JSON writes them, arrays and objects as JSON text — the same as a `write` CSV cell.
pub fn text(v: &Value) -> String {
    crate::steps::write::cell(Some(v))
}

/// The largest width or length a helper takes: a field is a line's part, and a width read
/// from the data (`{{lpad sku record.width}}`) must not make a record of gigabytes.
pub const MAX_COUNT: u64 = 65_536;

/// A whole number argument from 0 to [`MAX_COUNT`] (a width, a count of digits), from a
/// number or text.
pub fn count_arg(h: &Helper<'_>, v: &Value, what: &str) -> Result<usize, RenderError> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.filter(|n| *n <= MAX_COUNT)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| fail(h, format!("{what} must be a whole number from 0 to {MAX_COUNT}, not {v}")))
}

/// A string hash argument of exactly one character (`fill="0"`, `delimiter=";"`).
pub fn char_arg(h: &Helper<'_>, key: &str, default: char) -> Result<char, RenderError> {
    let Some(v) = hash(h, key)? else { return Ok(default) };
    let s = v.as_str().unwrap_or_default();
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(fail(h, format!("{key} must be one character, not {v}"))),
    }
}
