//! How wharf writes a point in time for scripts: RFC 3339, UTC, with milliseconds
//! (`2026-12-06T07:18:42.123Z`), in every JSON document it prints, serves or sends (`--json`,
//! the control interface, notices, stored probes).
//!
//! The serde `with` modules below use that form only where the format is human-readable
//! ([`serde::Serializer::is_human_readable`]). The ledger stores its records with postcard,
//! which is not: there a time in ms since the epoch (the ledger's `Millis`) stays the `i64` it
//! always was, and existing ledgers read back unchanged.
//!
//! This module formats and parses times; which times a record holds is its owner's business.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// `2026-12-06T07:18:42.123Z`: the form of every time in wharf's JSON.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Milliseconds since the epoch (`i64`): the RFC 3339 string in JSON, the number in the
/// ledger's postcard. A time before year -262143 or after 262142 (nothing wharf records
/// comes near) is written as its number, rather than failing the whole document. Reads the
/// string, or a number of ms.
pub mod millis {
    use super::*;

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        match DateTime::from_timestamp_millis(*ms) {
            Some(t) if s.is_human_readable() => s.serialize_str(&rfc3339(&t)),
            _ => s.serialize_i64(*ms),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if d.is_human_readable() { d.deserialize_any(MillisVisitor) } else { i64::deserialize(d) }
    }
}

/// [`millis`] for an `Option<i64>` (`null` in JSON for `None`).
pub mod millis_opt {
    use super::*;

    pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        ms.map(AsMillis).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(Option::<AsMillis>::deserialize(d)?.map(|m| m.0))
    }
}

/// A `DateTime<Utc>` in the RFC 3339 form above when human-readable (chrono's own encoding
/// otherwise). Reads any RFC 3339 time (another precision or offset too).
pub mod utc {
    use super::*;

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { s.serialize_str(&rfc3339(t)) } else { t.serialize(s) }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// [`utc`] for an `Option<DateTime<Utc>>` (`null` in JSON for `None`).
pub mod utc_opt {
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        t.map(AsUtc).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(d)
    }
}

/// An `i64` of ms through [`millis`] (for the `Option`).
#[derive(Serialize, Deserialize)]
struct AsMillis(#[serde(with = "millis")] i64);

/// A time through [`utc`] (for the `Option`).
#[derive(Serialize)]
struct AsUtc(#[serde(with = "utc")] DateTime<Utc>);

/// Reads a time in ms from an RFC 3339 string or a number of ms.
struct MillisVisitor;

impl Visitor<'_> for MillisVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 time (2026-12-06T07:18:42.123Z) or milliseconds since the epoch")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        DateTime::parse_from_rfc3339(v).map(|t| t.timestamp_millis()).map_err(|e| E::custom(format_args!("time {v:?}: {e}")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct With {
        #[serde(with = "millis")]
        at: i64,
        #[serde(with = "millis_opt")]
        mtime: Option<i64>,
        #[serde(with = "millis_opt")]
        gone: Option<i64>,
    }

    /// The same fields as the ledger stored them before this module existed.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        at: i64,
        mtime: Option<i64>,
        gone: Option<i64>,
    }

    #[test]
    fn postcard_bytes_are_the_plain_numbers_as_before() {
        for (at, mtime) in [(1_764_064_800_123, Some(-1)), (0, None), (i64::MIN, Some(i64::MAX)), (-86_400_000, Some(7))] {
            let with = With { at, mtime, gone: None };
            let bytes = postcard::to_allocvec(&with).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(&Plain { at, mtime, gone: None }).unwrap(), "{with:?}");
            assert_eq!(postcard::from_bytes::<With>(&bytes).unwrap(), with);
        }
    }

    #[test]
    fn json_has_rfc3339_utc_with_milliseconds_and_reads_it_back() {
        let with = With { at: 1_764_064_800_000, mtime: Some(1_764_064_800_015), gone: None };
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json, serde_json::json!({"at": "2025-11-25T10:00:00.000Z", "mtime": "2025-11-25T10:00:00.015Z", "gone": null}));
        assert_eq!(serde_json::from_value::<With>(json).unwrap(), with);
        // Numbers (JSON written before) and other offsets and precisions are read too.
        let old = serde_json::json!({"at": 1_764_064_800_000_i64, "mtime": "2025-11-25T11:00:00.0151+01:00", "gone": null});
        assert_eq!(serde_json::from_value::<With>(old).unwrap(), with);
        let bad = serde_json::from_value::<With>(serde_json::json!({"at": "yesterday", "mtime": null, "gone": null})).unwrap_err();
        assert!(bad.to_string().contains("time \"yesterday\""), "{bad}");
    }

    #[test]
    fn a_time_chrono_cannot_hold_is_written_as_its_number() {
        let json = serde_json::to_value(With { at: i64::MAX, mtime: None, gone: None }).unwrap();
        assert_eq!(json["at"], i64::MAX);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "utc")]
        at: DateTime<Utc>,
        #[serde(with = "utc_opt")]
        due: Option<DateTime<Utc>>,
    }

    #[test]
    fn date_times_have_milliseconds_whatever_their_precision() {
        let at = DateTime::from_timestamp(1_764_064_800, 123_456_789).unwrap();
        let json = serde_json::to_value(Times { at, due: Some(DateTime::from_timestamp(1_764_064_800, 0).unwrap()) }).unwrap();
        assert_eq!(json, serde_json::json!({"at": "2025-11-25T10:00:00.123Z", "due": "2025-11-25T10:00:00.000Z"}));
        let back: Times = serde_json::from_value(json).unwrap();
        assert_eq!(back.at.timestamp_millis(), at.timestamp_millis());
        let none = serde_json::to_value(Times { at, due: None }).unwrap();
        assert_eq!(none["due"], serde_json::Value::Null);
    }
}
