//! Name templates: Handlebars strings that compute file and folder names
//! (`{{stem}}-{{date "YYYYMMDD"}}.csv`, `{{name}}.done`, `.{{name}}.part`).
//!
//! Owns the variables a name template sees ([`NameVars`]), the `date` helper and the date
//! format tokens ([`format_time`], shared with the `render` step's helpers), and how any
//! template that does not compile is reported ([`syntax_error`]). Templates
//! are compiled once when the flow is validated; a render error (unknown variable in strict
//! mode) names the template. Rendered names are *not* trusted: callers turn them into
//! [`crate::endpoint::RemotePath`]s, which refuse `..` and control characters.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason, TemplateError, TemplateErrorReason};
use serde::Serialize;

const NAME: &str = "t";

/// A template that does not compile, on one line and in plain words: `WHAT line 1, col 7: why`.
/// (Handlebars' own text spans six lines, draws a caret under the source, calls the template
/// by the name it was registered under, and speaks of its grammar's rules: `expected
/// identifier, helper_parameter, or trailing_tilde_to_omit_whitespace`.) `source` is the
/// template's text.
pub fn syntax_error(what: &str, source: &str, e: &TemplateError) -> String {
    let why = match e.reason() {
        TemplateErrorReason::InvalidSyntax(_) => invalid_syntax(source, e.pos()),
        TemplateErrorReason::MismatchingClosedHelper(open, close) | TemplateErrorReason::MismatchingClosedDecorator(open, close) => {
            format!("`{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`: close it with `{{{{/{open}}}}}`")
        }
        TemplateErrorReason::InvalidParam(p) => format!("`{p}` is not a valid argument"),
        TemplateErrorReason::NestedSubexpression => "a `( … )` inside another `( … )` is not supported".to_string(),
        other => other.to_string(),
    };
    match e.pos() {
        Some((line, col)) => format!("{what} line {line}, col {col}: {why}"),
        None => format!("{what}: {why}"),
    }
}

/// Why a template could not be rendered, in plain words for the reasons a flow's author meets
/// (Handlebars says `Helper/Decorator if param at index 0 required but not found`). A missing
/// variable is worded by the caller, who knows what the template could have used.
pub fn render_reason(reason: &RenderErrorReason) -> String {
    match reason {
        // Strict mode: also an argument reading a value that is not there (`eq record.x 1`).
        RenderErrorReason::ParamNotFoundForIndex(helper, 0) => {
            format!("`{helper}` needs an argument (none was given, or it reads a value that is not there)")
        }
        RenderErrorReason::ParamNotFoundForIndex(helper, i) => {
            format!("`{helper}` needs {} arguments (only {i} were given, or argument {} reads a value that is not there)", i + 1, i + 1)
        }
        RenderErrorReason::ParamNotFoundForName(helper, name) => format!("`{helper}` needs the argument `{name}=…`"),
        RenderErrorReason::ParamTypeMismatchForName(helper, name, want)
        | RenderErrorReason::HashTypeMismatchForName(helper, name, want) => {
            format!("`{helper}`: `{name}` must be {want}")
        }
        RenderErrorReason::InvalidParamType("string") => "an argument must be text in quotes (like `\"YYYYMMDD\"`)".to_string(),
        RenderErrorReason::InvalidParamType(want) => format!("an argument must be a {want}"),
        RenderErrorReason::HelperNotFound(name) => format!("there is no helper `{name}`"),
        RenderErrorReason::PartialNotFound(name) | RenderErrorReason::TemplateNotFound(name) => format!("there is no template `{name}`"),
        RenderErrorReason::BlockContentRequired => "this block needs content between its opening and closing tags".to_string(),
        RenderErrorReason::InvalidJsonPath(path) => format!("`{path}` is not a field path"),
        RenderErrorReason::InvalidJsonIndex(path) => format!("`{path}`: a list is indexed by a number, like `items.[0]`"),
        RenderErrorReason::Other(msg) => msg.clone(),
        other => other.to_string(),
    }
}

/// Why `source` does not parse at `pos` (1-based line and column, in characters): the likely
/// mistake when it is a common one, else what goes between `{{` and `}}`.
fn invalid_syntax(source: &str, pos: Option<(usize, usize)>) -> String {
    let at = pos.and_then(|(l, c)| offset(source, l, c)).unwrap_or(source.len());
    let place = |i: usize| {
        let (l, c) = line_col(source, i);
        format!("line {l}, col {c}")
    };
    if let Some(open) = source[..at].rfind("{{") {
        let tag = &source[open..];
        match tag.find('}') {
            None => return format!("the `{{{{` at {} is not closed with `}}}}`", place(open)),
            Some(i) if !tag[i + 1..].starts_with('}') => {
                return format!("`{}` is closed with one `}}`: write `}}}}`", &tag[..=i]);
            }
            _ => {}
        }
        let name = |t: &str| t.split(|c: char| c.is_whitespace() || c == '}' || c == '~').next().unwrap_or("").to_string();
        if let Some(rest) = tag.strip_prefix("{{/") {
            let n = name(rest);
            return format!("`{{{{/{n}}}}}` closes a block that was not opened (with `{{{{#{n} …}}}}`)");
        }
    }
    if source[at..].trim().is_empty()
        && let Some((open, n)) = unclosed_block(source)
    {
        return format!("`{{{{#{n} …}}}}` at {} is not closed with `{{{{/{n}}}}}`", place(open));
    }
    "not valid template syntax: between `{{` and `}}` goes a field name (`{{stem}}`), a helper and its arguments (`{{date \"YYYYMMDD\"}}`), or a block (`{{#if x}}…{{/if}}`)".to_string()
}

/// The byte offset of 1-based `line` and `col` (characters), if inside `text` or just past its end.
fn offset(text: &str, line: usize, col: usize) -> Option<usize> {
    let start = if line <= 1 { 0 } else { text.match_indices('\n').nth(line - 2)?.0 + 1 };
    let rest = &text[start..];
    rest.char_indices().map(|(i, _)| start + i).chain([text.len()]).nth(col.saturating_sub(1))
}

/// The 1-based line and column (characters) of byte offset `i`.
fn line_col(text: &str, i: usize) -> (usize, usize) {
    let before = &text[..i];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// The innermost `{{#name …}}` block left open at the end of `text`, with its offset.
fn unclosed_block(text: &str) -> Option<(usize, String)> {
    let mut open: Vec<(usize, String)> = Vec::new();
    let mut i = 0;
    while let Some(found) = text[i..].find("{{") {
        let start = i + found;
        let tag = text[start + 2..].trim_start_matches('~');
        let name = |t: &str| t.split(|c: char| c.is_whitespace() || c == '}' || c == '~').next().unwrap_or("").to_string();
        if let Some(rest) = tag.strip_prefix('#') {
            open.push((start, name(rest)));
        } else if tag.starts_with('/') {
            open.pop();
        }
        i = start + 2;
    }
    open.pop()
}

/// A compiled name template.
#[derive(Clone)]
pub struct NameTemplate {
    source: String,
    registry: Arc<Handlebars<'static>>,
}

/// The variables available to name templates.
#[derive(Debug, Clone, Serialize)]
pub struct NameVars {
    /// File name with extension: `orders_1.csv`.
    pub name: String,
    /// File name without the last extension: `orders_1`.
    pub stem: String,
    /// Last extension without the dot: `csv` ("" when none; a template's `.` right before
    /// `{{ext}}` is then left out too).
    pub ext: String,
    /// Folder of the file relative to the source path ("" at top level).
    pub rel_dir: String,
    /// Size in bytes.
    pub size: u64,
    /// Run number.
    pub run: u64,
    /// Run start, seconds since the epoch (read by the `date` helper).
    pub now: i64,
}

impl NameVars {
    /// Variables for a file called `name` in `rel_dir`.
    pub fn new(name: &str, rel_dir: &str, size: u64, run: u64, now: SystemTime) -> Self {
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
            _ => (name, ""),
        };
        let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        NameVars { name: name.into(), stem: stem.into(), ext: ext.into(), rel_dir: rel_dir.into(), size, run, now }
    }
}

impl NameTemplate {
    /// Compiles `source`; the error message is fit for a validation diagnostic.
    pub fn new(source: &str) -> Result<Self, String> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.register_helper("date", Box::new(date_helper));
        hb.register_template_string(NAME, source).map_err(|e| syntax_error(&format!("bad template {source:?}"), source, &e))?;
        // Compiled as written first, so that a syntax error's column is the user's.
        let dotted = dot_with_ext(source);
        if dotted != source {
            hb.register_template_string(NAME, &dotted).map_err(|e| syntax_error(&format!("bad template {source:?}"), source, &e))?;
        }
        Ok(NameTemplate { source: source.to_string(), registry: Arc::new(hb) })
    }

    /// Renders with `vars`.
    pub fn render(&self, vars: &NameVars) -> Result<String, String> {
        self.registry.render(NAME, vars).map_err(|e| match e.reason() {
            RenderErrorReason::MissingVariable(Some(v)) => format!(
                "template {:?}: unknown variable `{v}` (a name template knows name, stem, ext, rel_dir, size, run and the `date` helper)",
                self.source
            ),
            reason => format!("template {:?}: {}", self.source, render_reason(reason)),
        })
    }

    /// The template text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The template text as it is rendered: each `.` right before `{{ext}}` written only when
    /// there is an extension (`{{#if ext}}.{{/if}}{{ext}}`).
    pub fn rendered_text(&self) -> String {
        dot_with_ext(&self.source)
    }

    /// Renders with sample values, to catch unknown variables at validation time.
    pub fn check(&self) -> Result<(), String> {
        self.render(&NameVars::new("sample.csv", "", 1, 1, UNIX_EPOCH)).map(|_| ())
    }

    /// Checks that the name depends on the file's: the name of a file that goes with one data
    /// file (its done file, its row count), which is moved or deleted with it, cannot be one
    /// every file shares, nor the data file's own name (`{{name}}`, `{{stem}}.{{ext}}`): every
    /// file would be its own companion, and a companion is never taken as data, so no file
    /// would ever be taken, without a word.
    pub fn per_file(&self) -> Result<(), String> {
        let of = |n: &str| self.render(&NameVars::new(n, "", 1, 1, UNIX_EPOCH));
        match (of("a.csv")?, of("b.xml")?) {
            (a, b) if a == b => Err(format!(
                "`{}` gives `{a}` for every file: a file that goes with one data file is named after it (e.g. `{{{{name}}}}.done`, `{{{{stem}}}}.count`)",
                self.source
            )),
            (a, b) if a == "a.csv" && b == "b.xml" => Err(format!(
                "`{}` gives the name of the data file itself (`a.csv` for `a.csv`): a file that goes with a data file is never taken as data, so no file would ever be taken; name it apart (e.g. `{{{{name}}}}.done`, `{{{{stem}}}}.count`)",
                self.source
            )),
            _ => Ok(()),
        }
    }

    /// Whether the text changes with the sub-folder the file is in (`{{rel_dir}}`): a sink
    /// folder that does keeps a recursive source's tree.
    pub fn varies_by_folder(&self) -> bool {
        let of = |rel_dir| self.render(&NameVars::new("a.csv", rel_dir, 1, 1, UNIX_EPOCH)).ok();
        of("a") != of("b")
    }

    /// Whether the name changes from one run to the next for the same file (`{{run}}`, the
    /// `date` helper).
    pub fn varies_by_run(&self) -> bool {
        let day = std::time::Duration::from_secs(90_000);
        let of = |run, now| self.render(&NameVars::new("a.csv", "", 1, run, now)).ok();
        of(1, UNIX_EPOCH) != of(2, UNIX_EPOCH + day)
    }
}

/// `source` with each `.` written right before `{{ext}}` written only when there is an
/// extension: `{{stem}}-1.{{ext}}` of `README` is `README-1`, not `README-1.` (a name
/// Windows cannot even open).
fn dot_with_ext(source: &str) -> String {
    static DOT_EXT: std::sync::LazyLock<regex::Regex> =
        // A constant pattern: compiling it cannot fail.
        std::sync::LazyLock::new(|| regex::Regex::new(r"\.(\{\{~?\s*ext\s*~?\}\})").expect("a valid pattern"));
    DOT_EXT.replace_all(source, "{{#if ext}}.{{/if}}$1").into_owned()
}

impl fmt::Debug for NameTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NameTemplate({:?})", self.source)
    }
}

/// `{{date "YYYYMMDD"}}` (tokens YYYY YY MM DD HH mm ss) or `{{date "%Y-%m-%d"}}` (strftime);
/// no argument gives `YYYYMMDD`. Uses the run start time in UTC.
fn date_helper(h: &Helper, _: &Handlebars, ctx: &Context, _: &mut RenderContext, out: &mut dyn Output) -> HelperResult {
    let fmt = match h.param(0) {
        Some(p) => p.value().as_str().ok_or_else(|| RenderErrorReason::InvalidParamType("string"))?.to_string(),
        None => "YYYYMMDD".to_string(),
    };
    let secs = ctx.data().get("now").and_then(|v| v.as_i64()).unwrap_or(0);
    let t = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    out.write(&format_time(&t, &fmt).map_err(RenderErrorReason::Other)?)?;
    Ok(())
}

/// Formats a time with a date format: the tokens `YYYY YY MM DD HH mm ss`
/// (`"YYYY-MM-DD_HHmmss"`), or a chrono strftime string when it contains `%` (`"%d.%m.%Y"`).
/// The error (an unknown `%` specifier) is a message naming the format.
pub fn format_time<Tz: chrono::TimeZone>(t: &chrono::DateTime<Tz>, fmt: &str) -> Result<String, String>
where
    Tz::Offset: fmt::Display,
{
    use fmt::Write as _;
    if !fmt.contains('%')
        && let Some((theirs, ours, what)) = FOREIGN_TOKENS.iter().find(|(theirs, ..)| fmt.contains(theirs))
    {
        // Java's and .NET's `yyyyMMdd` was written out as `yyyy01dd`, a name no run could fix.
        return Err(format!(
            "`{fmt}`: `{theirs}` is not a date token here, and would be written as it is: the {what} is `{ours}` (tokens `YYYY` `YY` `MM` `DD` `HH` `mm` `ss`, or a strftime format with `%`)"
        ));
    }
    let mut out = String::new();
    // `to_string()` would panic on an invalid specifier; `write!` reports it.
    write!(out, "{}", t.format(&to_strftime(fmt))).map_err(|_| format!("`{fmt}` is not a valid date format"))?;
    Ok(out)
}

/// Tokens of other date formats (Java's, .NET's `yyyyMMdd`, `hh`) that [`to_strftime`] does
/// not know, and would leave in the output as letters: with the token meant and what it is.
const FOREIGN_TOKENS: [(&str, &str, &str); 4] = [("yyyy", "YYYY", "year"), ("yy", "YY", "year"), ("dd", "DD", "day"), ("hh", "HH", "hour")];

fn to_strftime(fmt: &str) -> String {
    if fmt.contains('%') {
        return fmt.to_string();
    }
    fmt.replace("YYYY", "%Y")
        .replace("YY", "%y")
        .replace("MM", "%m")
        .replace("DD", "%d")
        .replace("HH", "%H")
        .replace("mm", "%M")
        .replace("ss", "%S")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_name_shared_by_every_file_is_not_per_file() {
        assert!(NameTemplate::new("{{name}}.done").unwrap().per_file().is_ok());
        let e = NameTemplate::new("_SUCCESS").unwrap().per_file().unwrap_err();
        assert!(e.starts_with("`_SUCCESS` gives `_SUCCESS` for every file"), "{e}");
    }

    /// A done file (or row count file) named as the data file itself made every file its own
    /// companion: never taken, and no run said why.
    #[test]
    fn the_data_file_own_name_is_not_per_file() {
        for t in ["{{name}}", "{{stem}}.{{ext}}"] {
            let e = NameTemplate::new(t).unwrap().per_file().unwrap_err();
            assert!(e.contains("gives the name of the data file itself (`a.csv` for `a.csv`)"), "{e}");
        }
        assert!(NameTemplate::new("{{stem}}").unwrap().per_file().is_ok());
    }

    #[test]
    fn a_template_that_does_not_compile_is_one_line_with_its_column() {
        let e = NameTemplate::new("{{stem}-{{date 'YYYY'}}.csv").err().unwrap();
        assert_eq!(e, "bad template \"{{stem}-{{date 'YYYY'}}.csv\" line 1, col 7: `{{stem}` is closed with one `}`: write `}}`");
        assert!(!e.contains('\n') && !e.contains("Template error"), "{e}");
    }

    /// Syntax and render errors say what is wrong in the template's terms, not in the names
    /// of Handlebars' grammar rules (`expected identifier, helper_parameter, or …`).
    #[test]
    fn template_errors_are_in_plain_words() {
        let syntax = |t: &str| NameTemplate::new(t).err().unwrap();
        for (t, want) in [
            ("{{name", "line 1, col 7: the `{{` at line 1, col 1 is not closed with `}}`"),
            ("a\n{{!-- x", "line 2, col 3: the `{{` at line 2, col 1 is not closed with `}}`"),
            ("{{name}}{{/each}}", "line 1, col 11: `{{/each}}` closes a block that was not opened (with `{{#each …}}`)"),
            ("{{#each x}}", "line 1, col 12: `{{#each …}}` at line 1, col 1 is not closed with `{{/each}}`"),
            ("{{#if name}}{{/each}}", "line 1, col 13: `{{#if}}` is closed by `{{/each}}`: close it with `{{/if}}`"),
            ("é{{#if name}", "line 1, col 12: `{{#if name}` is closed with one `}`: write `}}`"),
        ] {
            let e = syntax(t);
            assert!(e.ends_with(want), "{t}: {e}");
            assert!(!e.contains("expected") && !e.contains("handlebars"), "{t}: {e}");
        }
        let render = |t: &str| NameTemplate::new(t).unwrap().check().unwrap_err();
        assert_eq!(
            render("{{#if}}x{{/if}}"),
            "template \"{{#if}}x{{/if}}\": `if` needs an argument (none was given, or it reads a value that is not there)"
        );
        assert_eq!(render("{{date 5}}"), "template \"{{date 5}}\": an argument must be text in quotes (like `\"YYYYMMDD\"`)");
        assert_eq!(render("{{na me}}"), "template \"{{na me}}\": there is no helper `na`");
    }

    #[test]
    fn a_name_with_the_run_or_the_date_varies_by_run() {
        assert!(NameTemplate::new(".{{name}}.{{run}}.part").unwrap().varies_by_run());
        assert!(NameTemplate::new("{{name}}-{{date}}.tmp").unwrap().varies_by_run());
        assert!(!NameTemplate::new(".{{name}}.f.part").unwrap().varies_by_run());
        assert!(!NameTemplate::new("{{stem}}.{{size}}.tmp").unwrap().varies_by_run());
    }

    #[test]
    fn an_unknown_variable_is_named_with_the_known_ones() {
        let e = NameTemplate::new("{{nme}}.csv").unwrap().check().unwrap_err();
        assert_eq!(
            e,
            "template \"{{nme}}.csv\": unknown variable `nme` (a name template knows name, stem, ext, rel_dir, size, run and the `date` helper)"
        );
    }

    #[test]
    fn renders_variables_and_dates() {
        let t = NameTemplate::new("{{stem}}-{{date \"YYYY-MM-DD_HHmmss\"}}.{{ext}}").unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let v = NameVars::new("orders.1.csv", "", 10, 3, now);
        assert_eq!(t.render(&v).unwrap(), "orders.1-2023-11-14_221320.csv");
        assert_eq!(NameTemplate::new("{{name}}.done").unwrap().render(&v).unwrap(), "orders.1.csv.done");
    }

    /// The dot before `{{ext}}` goes with the extension: a file without one gets no
    /// trailing dot.
    #[test]
    fn the_dot_before_an_empty_ext_is_left_out() {
        let of = |t: &str, name: &str| NameTemplate::new(t).unwrap().render(&NameVars::new(name, "", 0, 7, UNIX_EPOCH)).unwrap();
        assert_eq!(of("{{stem}}.{{ext}}", "README"), "README");
        assert_eq!(of("{{stem}}.{{ext}}", "a.csv"), "a.csv");
        assert_eq!(of("{{stem}}-{{run}}.{{ ext }}.done", "README"), "README-7.done");
        assert_eq!(of("{{stem}}-{{run}}.{{ ext }}.done", "a.csv"), "a-7.csv.done");
        assert_eq!(of("{{stem}}.{{ext}}", ".profile"), ".profile", "a hidden name is all stem");
        assert_eq!(of("x.{{stem}}", "README"), "x.README", "only the dot before `ext`");
        let e = NameTemplate::new("{{stem}.{{ext}}").err().unwrap();
        assert!(e.contains("line 1, col 7"), "the column as written: {e}");
    }

    #[test]
    fn format_time_takes_tokens_or_strftime_and_refuses_bad_specifiers() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(format_time(&t, "DD.MM.YY HH:mm:ss").unwrap(), "14.11.23 22:13:20");
        assert_eq!(format_time(&t, "%Y/%j").unwrap(), "2023/318");
        assert_eq!(format_time(&t, "%Q").unwrap_err(), "`%Q` is not a valid date format");
        // Before: "yyyy11dd", as a file name in every run.
        assert_eq!(
            format_time(&t, "yyyyMMdd").unwrap_err(),
            "`yyyyMMdd`: `yyyy` is not a date token here, and would be written as it is: the year is `YYYY` (tokens `YYYY` `YY` `MM` `DD` `HH` `mm` `ss`, or a strftime format with `%`)"
        );
        assert!(
            format_time(&t, "dd.MM.YYYY")
                .unwrap_err()
                .contains("`dd` is not a date token here, and would be written as it is: the day is `DD`")
        );
        assert!(format_time(&t, "YYYYMMDD-hhmm").unwrap_err().contains("the hour is `HH`"));
        assert_eq!(format_time(&t, "YYYYMMDDTHHmmss").unwrap(), "20231114T221320");
    }

    #[test]
    fn strict_mode_and_syntax_errors() {
        assert!(NameTemplate::new("{{#if}}").is_err());
        let t = NameTemplate::new("{{nosuch}}").unwrap();
        assert!(t.check().unwrap_err().contains("nosuch"));
    }

    #[test]
    fn no_html_escaping() {
        let t = NameTemplate::new("{{name}}").unwrap();
        assert_eq!(t.render(&NameVars::new("a&b.csv", "", 0, 0, UNIX_EPOCH)).unwrap(), "a&b.csv");
    }
}
