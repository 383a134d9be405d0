//! Date helpers for templates: `date` formats a value from a record, `now` the run's start.
//!
//! Formats are those of name templates (`YYYY MM DD HH mm ss` tokens, or strftime with `%`),
//! through the one shared [`crate::template::format_time`]. A value with a UTC offset is shown
//! in its own offset; dates, epoch seconds and the run time are UTC.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime};
use handlebars::{Context, Helper, RenderError};
use serde_json::Value;

use super::registry::{HelperFn, arg, fail};
use crate::template::format_time;

/// Name, body, and whether the output is escaped already.
/// As in `text::HELPERS`: `{{now}}` alone is the run's start time.
pub const HELPERS: &[(&str, HelperFn, bool, usize)] = &[("date", date, false, 1), ("now", now, false, 0)];

/// The format when a template gives none.
const DEFAULT_FORMAT: &str = "YYYY-MM-DD";

/// Reads RFC 3339 (`2026-01-05T14:30:00+01:00`), `2026-01-05T14:30:00` (UTC), `2026-01-05`
/// (midnight UTC) or seconds since the epoch (a number, or digits).
fn parse(v: &Value) -> Option<DateTime<FixedOffset>> {
    let utc = FixedOffset::east_opt(0)?;
    let epoch = |secs: i64| DateTime::from_timestamp(secs, 0).map(|t| t.with_timezone(&utc));
    match v {
        Value::Number(n) => epoch(n.as_i64()?),
        Value::String(s) => {
            let s = s.trim();
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
                return epoch(s.parse().ok()?);
            }
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Some(t);
            }
            let naive = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .or_else(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().and_then(|d| d.and_hms_opt(0, 0, 0)))?;
            Some(naive.and_utc().with_timezone(&utc))
        }
        _ => None,
    }
}

/// The format argument at `i`, or the default.
fn format_arg<'a>(h: &'a Helper<'_>, i: usize) -> Result<&'a str, RenderError> {
    match h.param(i) {
        None => Ok(DEFAULT_FORMAT),
        Some(_) => arg(h, i, "a format")?.as_str().ok_or_else(|| fail(h, "the format must be text, like \"DD.MM.YYYY\"")),
    }
}

/// `{{date record.shipped "DD.MM.YYYY"}}`.
fn date(h: &Helper<'_>, _: &Context) -> Result<Value, RenderError> {
    let v = arg(h, 0, "a value and a format (for the run's date: `now \"FORMAT\"`)")?;
    let t = parse(v).ok_or_else(|| {
        fail(h, format!("{v} is not a date (RFC 3339, YYYY-MM-DD or epoch seconds; for the run's date use `now \"FORMAT\"`)"))
    })?;
    format_time(&t, format_arg(h, 1)?).map(Value::String).map_err(|e| fail(h, e))
}

/// `{{now "YYYYMMDDHHmmss"}}`: the run's start time (UTC), the same for every record of a run.
fn now(h: &Helper<'_>, ctx: &Context) -> Result<Value, RenderError> {
    // Every render context has `file.now` (see `output.rs`); helpers always get the root context.
    let secs = ctx.data().pointer("/file/now").and_then(Value::as_i64).unwrap_or(0);
    let t = DateTime::from_timestamp(secs, 0).unwrap_or_default();
    format_time(&t, format_arg(h, 0)?).map(Value::String).map_err(|e| fail(h, e))
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
    fn dates_from_rfc3339_dates_and_epoch_seconds() {
        let d = json!({"r": "2026-01-05T23:30:00+01:00", "d": "2026-01-05", "n": "2026-01-05 08:09:10", "e": 1_700_000_000, "s": "1700000000", "x": "05.01.2026"});
        assert_eq!(
            render("{{date r \"DD.MM.YYYY HH:mm\"}}|{{date d}}|{{date n \"HHmmss\"}}", d.clone()).unwrap(),
            "05.01.2026 23:30|2026-01-05|080910"
        );
        assert_eq!(render("{{date e \"YYYYMMDD\"}}|{{date s \"%d/%m/%y\"}}", d.clone()).unwrap(), "20231114|14/11/23");
        let e = render("{{date x \"YYYY\"}}", d.clone()).unwrap_err();
        assert!(e.contains("`date`: \"05.01.2026\" is not a date"), "{e}");
        assert!(render("{{date d \"%Q\"}}", d).unwrap_err().contains("`%Q` is not a valid date format"));
    }

    #[test]
    fn now_is_the_run_start_from_the_file_context() {
        let d = json!({"file": {"now": 1_700_000_000}});
        assert_eq!(render("{{now \"YYYY-MM-DD HH:mm:ss\"}}|{{now}}", d).unwrap(), "2023-11-14 22:13:20|2023-11-14");
    }
}
