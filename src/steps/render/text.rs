//! Text helpers for templates: CSV quoting, fixed-width fields, escaping, case, trimming and
//! fallbacks. Widths count characters, not bytes, so `Müller` is six wide in any encoding.
//!
//! Pure functions of their arguments; registered by `registry.rs`.

use handlebars::{Context, Helper, RenderError};
use serde_json::Value;

use super::registry::{HelperFn, arg, char_arg, count_arg, fail, text};

/// Name, body, whether the output is escaped already, and the fewest arguments it takes.
pub const HELPERS: &[(&str, HelperFn, bool, usize)] = &[
    ("csv", csv, false, 1),
    ("pad", pad, false, 2),
    ("lpad", lpad, false, 2),
    ("truncate", truncate, false, 2),
    ("xml", xml, true, 1),
    ("html", html, true, 1),
    ("upper", upper, false, 1),
    ("lower", lower, false, 1),
    ("trim", trim, false, 1),
    ("default", default, false, 2),
];

/// XML escaping: `& < > " '` as entities (also the `escape: xml` setting).
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

/// `{{csv value}}`, `{{csv value delimiter=";"}}`: the value as one CSV field — in quotes,
/// with quotes doubled, when it holds the delimiter, a quote, CR or LF.
fn csv(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let s = text(arg(h, 0, "a value")?);
    let delimiter = char_arg(h, "delimiter", ',')?;
    let quoted = s.contains([delimiter, '"', '\r', '\n']);
    Ok(Value::String(if quoted { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }))
}

/// The first `width` characters of `s`, and how many characters are missing to fill `width`.
fn fit(s: &str, width: usize) -> (&str, usize) {
    match s.char_indices().nth(width) {
        Some((i, _)) => (&s[..i], 0),
        None => (s, width - s.chars().count()),
    }
}

/// Arguments of `pad` / `lpad`: the value's text, the width and the fill character.
fn pad_args(h: &Helper<'_>) -> Result<(String, usize, char), RenderError> {
    let s = text(arg(h, 0, "a value and a width")?);
    let width = count_arg(h, arg(h, 1, "a width")?, "the width")?;
    Ok((s, width, char_arg(h, "fill", ' ')?))
}

/// `{{pad value 10}}`: left-aligned in exactly 10 characters — filled on the right (with
/// spaces, or `fill="."`), or cut to the first 10.
fn pad(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let (s, width, fill) = pad_args(h)?;
    let (kept, missing) = fit(&s, width);
    Ok(Value::String(format!("{kept}{}", fill.to_string().repeat(missing))))
}

/// `{{lpad value 8 fill="0"}}`: right-aligned in exactly 8 characters — filled on the left,
/// or cut to the first 8.
fn lpad(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let (s, width, fill) = pad_args(h)?;
    let (kept, missing) = fit(&s, width);
    Ok(Value::String(format!("{}{kept}", fill.to_string().repeat(missing))))
}

/// `{{truncate value 35}}`: at most the first 35 characters.
fn truncate(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let s = text(arg(h, 0, "a value and a length")?);
    let n = count_arg(h, arg(h, 1, "a length")?, "the length")?;
    Ok(Value::String(fit(&s, n).0.to_string()))
}

/// `{{xml value}}`: escaped for XML text and attributes.
fn xml(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    Ok(Value::String(escape_xml(&text(arg(h, 0, "a value")?))))
}

/// `{{html value}}`: escaped for HTML.
fn html(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    Ok(Value::String(handlebars::html_escape(&text(arg(h, 0, "a value")?))))
}

fn upper(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    Ok(Value::String(text(arg(h, 0, "a value")?).to_uppercase()))
}

fn lower(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    Ok(Value::String(text(arg(h, 0, "a value")?).to_lowercase()))
}

fn trim(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    Ok(Value::String(text(arg(h, 0, "a value")?).trim().to_string()))
}

/// `{{default value "n/a"}}`: the value, or the fallback when it is absent, null or empty
/// text. The one helper that accepts a field a record lacks (strict mode's way out).
fn default(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let p = h.param(0).ok_or_else(|| fail(h, "needs a value and a fallback"))?;
    let empty = p.is_value_missing() || matches!(p.value(), Value::Null) || p.value().as_str() == Some("");
    if empty { arg(h, 1, "a fallback").cloned() } else { Ok(p.value().clone()) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::registry;
    use crate::config::raw_steps::RenderEscape;

    fn render(t: &str, data: serde_json::Value) -> Result<String, String> {
        registry::new(RenderEscape::None).render_template(t, &data).map_err(|e| e.to_string())
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let d = json!({"a": "plain", "b": "x,y", "c": "say \"hi\"", "d": "two\nlines", "e": "a;b", "n": 4.5});
        assert_eq!(
            render("{{csv a}}|{{csv b}}|{{csv c}}|{{csv d}}|{{csv n}}", d.clone()).unwrap(),
            "plain|\"x,y\"|\"say \"\"hi\"\"\"|\"two\nlines\"|4.5"
        );
        assert_eq!(render("{{csv e delimiter=\";\"}}|{{csv b delimiter=\";\"}}", d.clone()).unwrap(), "\"a;b\"|x,y");
        assert!(render("{{csv e delimiter=\";;\"}}", d).unwrap_err().contains("`csv`: delimiter must be one character"));
    }

    #[test]
    fn fixed_width_counts_characters_and_truncates() {
        let d = json!({"name": "Müller", "n": 42, "long": "abcdefghij", "none": null});
        assert_eq!(render("[{{pad name 8}}][{{lpad name 8}}][{{lpad n 5 fill=\"0\"}}]", d.clone()).unwrap(), "[Müller  ][  Müller][00042]");
        assert_eq!(
            render("[{{pad long 4}}][{{lpad long 4}}][{{truncate long 3}}][{{truncate name 10}}]", d.clone()).unwrap(),
            "[abcd][abcd][abc][Müller]"
        );
        assert_eq!(render("[{{pad none 3 fill=\".\"}}][{{pad name \"3\"}}][{{pad name 0}}]", d.clone()).unwrap(), "[...][Mül][]");
        let e = render("{{pad name -1}}", d.clone()).unwrap_err();
        assert!(e.contains("line 1, col 1") && e.contains("`pad`: the width must be a whole number from 0 to 65536, not -1"), "{e}");
        // A width from the data is bounded (a huge one would make a record of gigabytes).
        let e = render("{{lpad n big}}", json!({"n": 1, "big": 99_999_999_999u64})).unwrap_err();
        assert!(e.contains("`lpad`: the width must be a whole number from 0 to 65536, not 99999999999"), "{e}");
        assert!(render("{{pad name}}", d.clone()).unwrap_err().contains("`pad`: needs a width"));
        assert!(render("{{lpad n 3 fill=\"\"}}", d).unwrap_err().contains("fill must be one character"));
    }

    #[test]
    fn escaping_case_trim_and_default() {
        let d = json!({"s": "<a href='x'>Tom & \"Jerry\"</a>", "w": "  Mixed Case  ", "e": "", "z": null, "v": 0});
        assert_eq!(render("{{xml s}}", d.clone()).unwrap(), "&lt;a href=&apos;x&apos;&gt;Tom &amp; &quot;Jerry&quot;&lt;/a&gt;");
        assert_eq!(render("{{html s}}", d.clone()).unwrap(), "&lt;a href&#x3D;&#x27;x&#x27;&gt;Tom &amp; &quot;Jerry&quot;&lt;/a&gt;");
        assert_eq!(
            render("[{{upper w}}][{{lower w}}][{{trim w}}][{{upper (trim w)}}]", d.clone()).unwrap(),
            "[  MIXED CASE  ][  mixed case  ][Mixed Case][MIXED CASE]"
        );
        assert_eq!(
            render("{{default e \"-\"}}{{default z \"-\"}}{{default nosuch \"-\"}}{{default v \"-\"}}{{default w \"-\"}}", d.clone())
                .unwrap(),
            "---0  Mixed Case  "
        );
        // Strict mode: any other helper names the missing field.
        let e = render("{{upper nosuch}}", d.clone()).unwrap_err();
        assert!(e.contains("strict mode") && e.contains("nosuch"), "{e}");
        assert!(render("{{default nosuch other}}", d).unwrap_err().contains("other"));
    }

    #[test]
    fn escape_setting_applies_to_double_braces_only() {
        let d = json!({"s": "a<b & 'c'"});
        let xml = registry::new(RenderEscape::Xml);
        assert_eq!(
            xml.render_template("{{s}}|{{{s}}}|{{xml s}}|{{upper s}}", &d).unwrap(),
            "a&lt;b &amp; &apos;c&apos;|a<b & 'c'|a&lt;b &amp; &apos;c&apos;|A&lt;B &amp; &apos;C&apos;"
        );
        let html = registry::new(RenderEscape::Html);
        assert_eq!(html.render_template("{{s}}|{{{s}}}", &d).unwrap(), "a&lt;b &amp; &#x27;c&#x27;|a<b & 'c'");
        assert_eq!(render("{{s}}", d).unwrap(), "a<b & 'c'", "no escaping by default");
    }
}
