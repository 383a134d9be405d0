//! Number helpers for templates (`number`, `sum`, `count`) and the exact field sums behind
//! them and behind the step's `sums:` setting.
//!
//! Owns what counts as a summable value: a number or text holding one; absent, null or empty
//! text adds nothing; anything else is an error. Arithmetic is [`Decimal`]'s, never `f64`.

use handlebars::{Context, Helper, RenderError, RenderErrorReason};
use serde_json::Value;

use super::decimal::{Decimal, DecimalError};
use super::registry::{HelperFn, arg, count_arg, fail, hash};

/// Name, body, and whether the output is escaped already.
/// As in `text::HELPERS`: `{{count}}` alone counts its context.
pub const HELPERS: &[(&str, HelperFn, bool, usize)] = &[("number", number, false, 1), ("sum", sum, false, 2), ("count", count, false, 0)];

/// The value at a dotted path (`price.net`; `lines.0.qty` for an array element), if present.
pub fn field<'a>(record: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(record, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// `total` plus the value at `path` of `record`. Absent, null and empty text add nothing.
pub fn add_field(total: Decimal, record: &Value, path: &str) -> Result<Decimal, DecimalError> {
    let v = match field(record, path) {
        None | Some(Value::Null) => return Ok(total),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(total),
        Some(v) => v,
    };
    let d = Decimal::from_json(v)?;
    total.checked_add(d).ok_or_else(|| DecimalError::TooLarge(format!("the sum with {v}")))
}

/// `{{number value}}` (2 decimals), `{{number value decimals=0}}` or `{{number value 3}}`,
/// with `decimal=","` and `thousands="."`: exact, rounded half up, from a number or text.
fn number(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let v = arg(h, 0, "a value")?;
    let places = match (h.param(1), hash(h, "decimals")?) {
        (Some(_), _) => count_arg(h, arg(h, 1, "decimals")?, "decimals")?,
        (None, Some(d)) => count_arg(h, d, "decimals")?,
        (None, None) => 2,
    };
    let sep = |key: &str, default: &str| -> Result<String, RenderError> {
        match hash(h, key)? {
            None => Ok(default.to_string()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(fail(h, format!("{key} must be text, not {other}"))),
        }
    };
    let (decimal, thousands) = (sep("decimal", ".")?, sep("thousands", "")?);
    let d = Decimal::from_json(v).map_err(|e| fail(h, e))?;
    let places = u32::try_from(places).ok().filter(|p| *p <= 18).ok_or_else(|| fail(h, "decimals must be at most 18"))?;
    let d = d.rescale(places).ok_or_else(|| fail(h, format!("{v} is too large")))?;
    Ok(Value::String(d.format(&decimal, &thousands)))
}

/// `{{sum records "price"}}`: the exact sum of a field (dotted path) over an array of records,
/// as text (`"0"` for none).
fn sum(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let items = arg(h, 0, "an array and a field name")?;
    let path = arg(h, 1, "a field name")?.as_str().ok_or_else(|| fail(h, "the field name must be text, like \"price\""))?;
    let items = items.as_array().ok_or_else(|| fail(h, format!("needs an array, not {items}")))?;
    let mut total = Decimal::ZERO;
    for (i, item) in items.iter().enumerate() {
        total = add_field(total, item, path).map_err(|e| fail(h, format!("item {}, field {path}: {e}", i + 1)))?;
    }
    Ok(Value::String(total.to_string()))
}

/// `{{count records}}`: the number of items of an array. `{{count}}` alone is the `count` of
/// the footer's or document's context (a helper's name hides a variable of the same name).
fn count(h: &Helper<'_>, ctx: &Context) -> Result<Value, RenderError> {
    if h.params().is_empty() {
        return ctx.data().get("count").cloned().ok_or_else(|| RenderErrorReason::MissingVariable(Some("count".into())).into());
    }
    let v = arg(h, 0, "an array")?;
    let n = v.as_array().map(Vec::len).ok_or_else(|| fail(h, format!("needs an array, not {v}")))?;
    Ok(Value::from(n))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::registry;
    use super::*;
    use crate::config::raw_steps::RenderEscape;

    fn render(t: &str, data: Value) -> Result<String, String> {
        registry::new(RenderEscape::None).render_template(t, &data).map_err(|e| e.to_string())
    }

    #[test]
    fn number_rounds_half_up_exactly_with_separators() {
        let d = json!({"a": "1234567.125", "b": 2.675, "c": 7, "t": "abc", "neg": "-0.5"});
        // 2.675 is 2.67499999… as an f64; read from its text it is 2.675.
        assert_eq!(
            render("{{number a}}|{{number b}}|{{number c}}|{{number neg decimals=0}}", d.clone()).unwrap(),
            "1234567.13|2.68|7.00|-1"
        );
        assert_eq!(render("{{number a decimals=1 decimal=\",\" thousands=\".\"}}|{{number c 3}}", d.clone()).unwrap(), "1.234.567,1|7.000");
        let e = render("\n  {{number t}}", d).unwrap_err();
        assert!(e.contains("line 2, col 3") && e.contains("`number`: \"abc\" is not a number"), "{e}");
    }

    #[test]
    fn sum_and_count_over_arrays() {
        let d = json!({"records": [{"p": "12.10", "q": {"n": 1}}, {"p": 0.2, "q": {"n": 2}}, {"p": "", "q": {}}, {"q": {"n": "3"}}], "bad": [{"p": "x"}]});
        assert_eq!(render("{{sum records \"p\"}}|{{sum records \"q.n\"}}|{{count records}}", d.clone()).unwrap(), "12.30|6|4");
        assert_eq!(render("{{number (sum records \"p\") decimals=1}}|{{#if (count records)}}some{{/if}}", d.clone()).unwrap(), "12.3|some");
        assert!(render("{{sum bad \"p\"}}", d.clone()).unwrap_err().contains("`sum`: item 1, field p: \"x\" is not a number"));
        assert!(render("{{count records.0}}", d).unwrap_err().contains("`count`: needs an array"));
        assert_eq!(render("{{count}}", json!({"count": 3})).unwrap(), "3", "without an argument: the context's count");
        assert!(render("{{count}}", json!({})).unwrap_err().contains("strict mode Some(\"count\")"));
    }

    #[test]
    fn fields_by_dotted_path() {
        let r = json!({"a": {"b": [10, {"c": "x"}]}});
        assert_eq!(field(&r, "a.b.1.c"), Some(&json!("x")));
        assert_eq!(field(&r, "a.b.0"), Some(&json!(10)));
        assert_eq!(field(&r, "a.x"), None);
        assert_eq!(add_field(Decimal::ZERO, &r, "a.b.0").unwrap().to_string(), "10");
        assert_eq!(add_field(Decimal::ZERO, &r, "missing").unwrap(), Decimal::ZERO);
        assert!(add_field(Decimal::ZERO, &r, "a.b.1.c").is_err());
    }
}
