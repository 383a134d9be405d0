//! `Secret`: a credential resolved from `${env:NAME}` / `${file:PATH}` or given inline.
//!
//! Owns the rule that secrets never reach logs, errors or `Debug` output: `Debug` and
//! `Display` print `***`, and the only way to the value is [`Secret::expose`], which call
//! sites use at the moment they hand the value to a protocol library.

use std::fmt;

/// A secret value. Prints as `***`.
#[derive(Clone, PartialEq, Eq)]
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
    }
}
