//! Exact decimal numbers for trailer sums and the `number` / `sum` template helpers.
//!
//! Owns parsing a decimal from text or a JSON number, exact addition (the scale of the result
//! is the largest scale added, so `12.10 + 0.2 = 12.30`), half-up rounding and formatting with
//! chosen separators. Never goes through `f64`: a JSON number is read from its shortest text
//! form, which is exactly what the file said for every value the file could state exactly.
//! It knows nothing about templates or records.

use std::fmt;

use serde_json::Value;

/// The most digits after the point a value may carry (i128 holds 38 digits in all).
const MAX_SCALE: u32 = 30;

/// A decimal number: `units / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    units: i128,
    scale: u32,
}

/// Why a value is not a decimal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    #[error("{0} is not a number")]
    NotANumber(String),
    #[error("{0} has too many digits to add up exactly")]
    TooLarge(String),
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { units: 0, scale: 0 };

    /// Reads `-1234.50`, `+3`, `.5`, `1e3`, `2.5E-2` (surrounding spaces ignored; no grouping).
    pub fn parse(text: &str) -> Result<Decimal, DecimalError> {
        let bad = || DecimalError::NotANumber(format!("{text:?}"));
        let t = text.trim();
        let (negative, t) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (mantissa, exp) = match t.find(['e', 'E']) {
            Some(i) => (&t[..i], t[i + 1..].parse::<i32>().map_err(|_| bad())?),
            None => (t, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() && frac.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let too_large = || DecimalError::TooLarge(format!("{text:?}"));
        let mut units: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            units = units.checked_mul(10).and_then(|u| u.checked_add(i128::from(b - b'0'))).ok_or_else(too_large)?;
        }
        // The exponent moves the point: a negative one adds digits after it.
        let mut scale = frac.len() as i64 - i64::from(exp);
        while scale < 0 {
            units = units.checked_mul(10).ok_or_else(too_large)?;
            scale += 1;
        }
        let scale = u32::try_from(scale).ok().filter(|s| *s <= MAX_SCALE).ok_or_else(too_large)?;
        Ok(Decimal { units: if negative { -units } else { units }, scale })
    }

    /// A JSON number or a string holding one.
    pub fn from_json(v: &Value) -> Result<Decimal, DecimalError> {
        match v {
            // serde_json prints a float in its shortest form that reads back the same: the
            // digits the file had (`12.1`, `1e-7`), not the binary float's expansion.
            Value::Number(n) => Decimal::parse(&n.to_string()),
            Value::String(s) => Decimal::parse(s),
            other => Err(DecimalError::NotANumber(other.to_string())),
        }
    }

    /// `self + other`, exactly, at the larger of the two scales; `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let a = self.units.checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other.units.checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some(Decimal { units: a.checked_add(b)?, scale })
    }

    /// Rounded (half away from zero: 2.345 → 2.35, -2.345 → -2.35) or padded to `places`
    /// digits after the point; `None` on overflow.
    pub fn rescale(self, places: u32) -> Option<Decimal> {
        if places >= self.scale {
            let units = self.units.checked_mul(10i128.checked_pow(places - self.scale)?)?;
            return Some(Decimal { units, scale: places });
        }
        let div = 10i128.checked_pow(self.scale - places)?;
        let (q, r) = (self.units / div, self.units % div);
        let up = r.unsigned_abs() * 2 >= div.unsigned_abs();
        let units = if up { q + self.units.signum() } else { q };
        Some(Decimal { units, scale: places })
    }

    /// Formats with `decimal` as the decimal separator and `thousands` between groups of three
    /// integer digits (empty: none).
    pub fn format(&self, decimal: &str, thousands: &str) -> String {
        let digits = self.units.unsigned_abs().to_string();
        let scale = self.scale as usize;
        let digits = if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale + 1 - digits.len())) } else { digits };
        let (int, frac) = digits.split_at(digits.len() - scale);
        let mut out = String::with_capacity(digits.len() + 8);
        if self.units < 0 {
            out.push('-');
        }
        for (i, c) in int.chars().enumerate() {
            if i > 0 && (int.len() - i) % 3 == 0 {
                out.push_str(thousands);
            }
            out.push(c);
        }
        if !frac.is_empty() {
            out.push_str(decimal);
            out.push_str(frac);
        }
        out
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(".", ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn sums_are_exact_and_keep_the_largest_scale() {
        assert_eq!(d("12.10").checked_add(d("0.2")).unwrap().to_string(), "12.30");
        // 0.1 + 0.2 is 0.30000000000000004 in f64.
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(d("-5").checked_add(d("2.005")).unwrap().to_string(), "-2.995");
        assert_eq!(Decimal::ZERO.to_string(), "0");
        let mut total = Decimal::ZERO;
        for _ in 0..1000 {
            total = total.checked_add(d("0.01")).unwrap();
        }
        assert_eq!(total.to_string(), "10.00");
    }

    #[test]
    fn parses_text_and_json_numbers() {
        assert_eq!(d(" +3 ").to_string(), "3");
        assert_eq!(d(".5").to_string(), "0.5");
        assert_eq!(d("1e3").to_string(), "1000");
        assert_eq!(d("2.5E-2").to_string(), "0.025");
        assert_eq!(d("-0.007").to_string(), "-0.007");
        assert_eq!(Decimal::from_json(&json!(12.1)).unwrap().to_string(), "12.1");
        assert_eq!(Decimal::from_json(&json!(7)).unwrap().to_string(), "7");
        assert_eq!(Decimal::from_json(&json!("4.20")).unwrap().to_string(), "4.20");
        for bad in ["", "abc", "1,5", "1.2.3", "--1", "e5", "1e"] {
            assert!(matches!(Decimal::parse(bad), Err(DecimalError::NotANumber(_))), "{bad}");
        }
        assert_eq!(Decimal::from_json(&json!(true)).unwrap_err().to_string(), "true is not a number");
        assert!(matches!(Decimal::parse(&"9".repeat(40)), Err(DecimalError::TooLarge(_))));
    }

    #[test]
    fn rounds_half_up_and_formats_with_separators() {
        assert_eq!(d("2.345").rescale(2).unwrap().to_string(), "2.35");
        assert_eq!(d("-2.345").rescale(2).unwrap().to_string(), "-2.35");
        assert_eq!(d("2.344").rescale(2).unwrap().to_string(), "2.34");
        assert_eq!(d("0.5").rescale(0).unwrap().to_string(), "1");
        assert_eq!(d("7").rescale(2).unwrap().to_string(), "7.00");
        assert_eq!(d("1234567.891").rescale(2).unwrap().format(",", "."), "1.234.567,89");
        assert_eq!(d("-1234").format(".", ","), "-1,234");
        assert_eq!(d("123").format(".", ","), "123");
        assert_eq!(d("0.05").format(",", "."), "0,05");
    }
}
