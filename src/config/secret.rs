//! `Secret`: a credential resolved from `${env:NAME}` / `${file:PATH}` or given inline.
//!
//! Owns the rule that secrets never reach logs, errors or `Debug` output: `Debug` and
//! `Display` print `***`, and the only way to the value is [`Secret::expose`], which call
//! sites use at the moment they hand the value to a protocol library (or, for a raw flow's
//! field, to interpolation). A raw flow's secret fields are `Secret`s too, read from the flow
//! file as plain strings: a `{:?}` of a raw flow shows no inline password either.

use std::fmt;

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize, Serializer};

/// A secret value. Prints as `***`; read (and described in the schema) as a plain string;
/// written as `***`, so no serialized form holds it either.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself. Only for handing to the protocol layer; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A plain string in the flow schema (no definition of its own: the file holds a string).
impl JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        String::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?} {s:#?}"), "*** Secret(***) Secret(***)");
        assert_eq!(s.expose(), "hunter2");
        let read: Secret = serde_json::from_str("\"hunter2\"").unwrap();
        assert_eq!((read.expose(), serde_json::to_string(&read).unwrap().as_str()), ("hunter2", "\"***\""));
    }
}
