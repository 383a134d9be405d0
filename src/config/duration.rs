//! Durations as written in flow files: `500ms`, `30s`, `2m`, `1h30m`, `1d`.
//!
//! Owns the duration syntax, its JSON-Schema pattern and the parser. It does not decide which
//! durations are sensible for a setting (that is `validate.rs`).

use std::time::Duration;

use schemars::{Schema, SchemaGenerator, json_schema};

/// JSON-Schema pattern of a duration (kept in step with [`parse`] by a unit test).
pub const PATTERN: &str = "^([0-9]+(ms|s|m|h|d))+$";

/// Units, largest first; a duration names each at most once, in this order.
const UNITS: [(&str, u64); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Parses `1h30m`, `2m`, `30s`, `500ms`, `1d`. Units go from largest to smallest, each at most
/// once; a bare number is refused (`30` could mean seconds or minutes). The error is a complete
/// sentence fit for a diagnostic.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("`{text}` is not a duration{why} (write e.g. `500ms`, `30s`, `2m`, `1h30m`, `1d`)");
    if text.is_empty() {
        return Err(bad(""));
    }
    let mut rest = text;
    let mut millis: u64 = 0;
    // Index into UNITS of the last unit seen: the next one must come later (be smaller).
    let mut last: Option<usize> = None;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad(""));
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad(": number too large"))?;
        rest = &rest[digits..];
        if rest.starts_with(['.', ',']) {
            // `1.5h` read as `1` without a unit would send the user looking for one.
            return Err(bad(": whole numbers only (`1.5h` is `1h30m`, `0.5s` is `500ms`)"));
        }
        let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..letters];
        rest = &rest[letters..];
        let Some(index) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() { bad(": a unit is missing") } else { bad(&format!(": unknown unit `{unit}`")) });
        };
        if last.is_some_and(|l| index <= l) {
            return Err(bad(": units must go from largest to smallest, each once"));
        }
        last = Some(index);
        let part = number.checked_mul(UNITS[index].1).ok_or_else(|| bad(": too large"))?;
        millis = millis.checked_add(part).ok_or_else(|| bad(": too large"))?;
    }
    Ok(Duration::from_millis(millis))
}

/// [`parse`], refusing zero: a limit or an interval of nothing (`0s`) is a mistake, said the
/// same way for every such field.
pub fn parse_positive(text: &str) -> Result<Duration, String> {
    let d = parse(text)?;
    if d.is_zero() {
        return Err(format!("`{text}` is zero; give a positive duration"));
    }
    Ok(d)
}

/// Writes `d` the way [`parse`] reads it: `1h30m`, `2m`, `30s`, `1500ms` → `1s500ms`, `0s`.
/// The one writer of a duration in flow-file syntax (schedules, limits in diagnostics,
/// response deadlines). Any `Duration` is written whole: more days than `parse` reads too
/// (`Duration::MAX` is not cut to its low 64 bits of milliseconds).
pub fn format(d: Duration) -> String {
    let mut millis = d.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS.map(|(unit, size)| (unit, u128::from(size))) {
        if millis >= size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

/// Schema of a duration field: a string with [`PATTERN`].
pub(crate) fn schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": PATTERN,
        "examples": ["500ms", "30s", "2m", "1h30m"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_what_it_parses() {
        for text in ["500ms", "30s", "2m", "1h30m", "1d2h3m4s5ms", "0s", "1s500ms", "45m", "2h"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
        let d = |ms| format(Duration::from_millis(ms));
        assert_eq!([d(0), d(500), d(30_000), d(90_000), d(86_400_000 + 1), d(3_600_000)], ["0s", "500ms", "30s", "1m30s", "1d1ms", "1h"]);
    }

    /// The schedule's writer (now this one) counted in u128 and this one cut the milliseconds
    /// to u64: `Duration::MAX` came out as some 213 billion days instead of 213 trillion.
    #[test]
    fn formats_any_duration_whole() {
        let max = Duration::from_secs(u64::MAX);
        let days = u128::from(u64::MAX) * 1000 / 86_400_000;
        assert!(format(max).starts_with(&format!("{days}d")), "{}", format(max));
        assert_eq!(format(max), "213503982334601d7h15s");
    }

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1d2h3m4s5ms"), Ok(Duration::from_millis(93_784_005)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_bare_numbers_unknown_units_and_disorder() {
        assert!(parse("30").unwrap_err().contains("unit is missing"));
        assert!(parse("1.5h").unwrap_err().contains("whole numbers only (`1.5h` is `1h30m`"), "{:?}", parse("1.5h"));
        assert!(parse("2,5m").unwrap_err().contains("whole numbers only"));
        assert!(parse("3w").unwrap_err().contains("unknown unit `w`"));
        assert!(parse("30m1h").unwrap_err().contains("largest to smallest"));
        assert!(parse("1s1s").unwrap_err().contains("largest to smallest"));
        assert!(parse("").is_err());
        assert!(parse("s").is_err());
        assert!(parse(" 1s").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("99999999999999999999d").is_err());
        assert!(parse("999999999999999d").unwrap_err().contains("too large"));
    }

    #[test]
    fn pattern_agrees_with_the_parser() {
        // The pattern cannot express the ordering rule; otherwise both accept the same texts.
        let validator = jsonschema::validator_for(&serde_json::json!({ "type": "string", "pattern": PATTERN })).unwrap();
        for text in ["500ms", "30s", "1h30m", "1d", "0s", "30", "ms", "1x", "", "1.5s", "1 s"] {
            assert_eq!(validator.is_valid(&serde_json::json!(text)), parse(text).is_ok(), "{text:?}");
        }
        assert!(validator.is_valid(&serde_json::json!("30m1h")) && parse("30m1h").is_err());
    }
}
