//! What a folder listing returns: its entries, and the names it had to leave out.
//!
//! A name a [`RemotePath`] cannot hold (a line feed or another control character, `..`, a
//! `\` or `/`, bytes that are not UTF-8) can never be read, moved or deleted through an
//! endpoint. Backends leave such an entry out of [`Listing::entries`] and say so in
//! [`Listing::skipped`], never in a log of their own: only the caller knows the flow and the
//! run it listed for (`engine::discover` logs and reports them once).

use std::fmt;

use super::{Entry, PathError, RemotePath};

/// The entries of one folder ([`super::Endpoint::list`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The entries that can be named, sorted by path.
    pub entries: Vec<Entry>,
    /// The names left out, in the order listed.
    pub skipped: Vec<SkippedName>,
}

/// An entry left out of a listing because its name is not safe to use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedName {
    /// The folder listed.
    #[serde(serialize_with = "as_display")]
    pub folder: RemotePath,
    /// The name, its control characters written as escapes (`bad\nname.csv`) and bytes that
    /// are not UTF-8 as `�`: safe to print, one line. Never a name to use on the endpoint.
    pub name: String,
    pub reason: SkipReason,
}

/// Why a name was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A control character (a line feed, a tab, an escape…) in the name.
    ControlChar,
    /// `.`, `..`, or a `/` or `\` in the name.
    NotAName,
    /// The name is not UTF-8.
    NotUtf8,
}

impl SkippedName {
    /// `name` in `folder`, refused by [`RemotePath::join`] with `e`.
    pub fn refused(folder: &RemotePath, name: &str, e: &PathError) -> Self {
        let reason = match e {
            PathError::ControlChar(_) => SkipReason::ControlChar,
            PathError::NotAName(_) | PathError::ParentDir(_) => SkipReason::NotAName,
        };
        SkippedName { folder: folder.clone(), name: crate::text::visible(name), reason }
    }

    /// `name` in `folder`, as decoded lossily from bytes that are not UTF-8.
    pub fn not_utf8(folder: &RemotePath, lossy: &str) -> Self {
        SkippedName { folder: folder.clone(), name: crate::text::visible(lossy), reason: SkipReason::NotUtf8 }
    }

    /// `/folder/name`, safe to print.
    pub fn shown_path(&self) -> String {
        if self.folder.is_root() { format!("/{}", self.name) } else { format!("{}/{}", self.folder, self.name) }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::ControlChar => "a control character in the name",
            SkipReason::NotAName => "not a plain file name (`.`, `..`, or a `/` or `\\` in it)",
            SkipReason::NotUtf8 => "the name is not UTF-8",
        })
    }
}

/// `/in/bad\nname.csv (a control character in the name)`.
impl fmt::Display for SkippedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.shown_path(), self.reason)
    }
}

fn as_display<S: serde::Serializer>(p: &RemotePath, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_name_prints_on_one_line_and_says_why() {
        let dir = RemotePath::parse("in").unwrap();
        let e = dir.join("bad\nname.csv").unwrap_err();
        let s = SkippedName::refused(&dir, "bad\nname.csv", &e);
        assert_eq!(s.to_string(), "/in/bad\\nname.csv (a control character in the name)");
        let e = RemotePath::root().join("..\\x").unwrap_err();
        let s = SkippedName::refused(&RemotePath::root(), "..\\x", &e);
        assert_eq!((s.shown_path().as_str(), s.reason), ("/..\\x", SkipReason::NotAName));
        let json = serde_json::to_value(SkippedName::not_utf8(&dir, "caf\u{fffd}.csv")).unwrap();
        assert_eq!(json, serde_json::json!({"folder": "/in", "name": "caf\u{fffd}.csv", "reason": "not_utf8"}));
    }
}
