//! What a folder listing returns: its entries, and the names it had to leave out; and
//! [`SkippedName`], an entry of a source folder a flow can never take, with why.
//!
//! A name a [`RemotePath`] cannot hold (a line feed or another control character, `..`, a
//! `\` or `/`, bytes that are not UTF-8) can never be read, moved or deleted through an
//! endpoint. Backends leave such an entry out of [`Listing::entries`] and say so in
//! [`Listing::skipped`], never in a log of their own: only the caller knows the flow and the
//! run it listed for (`engine::discover` logs and reports them once). An entry that is not a
//! regular file (a symbolic link, a FIFO…) is listed, as [`super::EntryKind::Other`]; the
//! caller makes it a [`SkippedName`] when a flow would have taken it
//! ([`SkippedName::not_a_file`]).

use std::fmt;

use super::{Entry, PathError, RemotePath, Special};

/// The entries of one folder ([`super::Endpoint::list`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The entries that can be named, sorted by path.
    pub entries: Vec<Entry>,
    /// The names left out, in the order listed.
    pub skipped: Vec<SkippedName>,
    /// Why the listing may hold only part of the folder (the server stops listing at a limit
    /// of its own): its entries are there, but a name not among them may be there too, so the
    /// caller takes nothing for gone from it.
    pub cut_short: Option<String>,
}

/// An entry of a source folder that can never be taken: left out of a listing because its
/// name is not safe to use, or not a regular file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedName {
    /// The folder listed.
    #[serde(serialize_with = "as_display")]
    pub folder: RemotePath,
    /// The name, its control characters written as escapes (`bad\nname.csv`) and bytes that
    /// are not UTF-8 as `�`: safe to print, one line. Never a name to use on the endpoint.
    pub name: String,
    pub reason: SkipReason,
    /// For a name left only for its case ([`SkipReason::CaseOnly`]): the `include` pattern
    /// that takes it ignoring case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

/// Why an entry was left out. In JSON one word: `control_char`, `not_a_name`, `not_utf8`,
/// `unread` (a listing line not understood), `case_only` (a file the source's patterns take
/// only ignoring case), or, for an entry that is not a regular file, its kind: `symlink`,
/// `fifo`, `socket`, `device`, `not_a_file` (a kind the endpoint did not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SkipReason {
    /// A control character (a line feed, a tab, an escape…) in the name.
    ControlChar,
    /// `.`, `..`, or a `/` or `\` in the name.
    NotAName,
    /// The name is not UTF-8.
    NotUtf8,
    /// Not a regular file: only regular files are taken (a link is never followed).
    NotAFile(Special),
    /// A line of an FTP server's `LIST` in a format wharf does not read: what it lists is
    /// not known, so never taken.
    Unread,
    /// A regular file with a safe name that the source's patterns take only ignoring case
    /// (`ORDERS_1.CSV` beside `*.csv`), its flow without `source.ignore_case`.
    CaseOnly,
}

impl SkipReason {
    /// The word the run report's JSON uses.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::ControlChar => "control_char",
            SkipReason::NotAName => "not_a_name",
            SkipReason::NotUtf8 => "not_utf8",
            SkipReason::NotAFile(Special::Symlink) => "symlink",
            SkipReason::NotAFile(Special::Fifo) => "fifo",
            SkipReason::NotAFile(Special::Socket) => "socket",
            SkipReason::NotAFile(Special::Device) => "device",
            SkipReason::NotAFile(Special::Unknown) => "not_a_file",
            SkipReason::Unread => "unread",
            SkipReason::CaseOnly => "case_only",
        }
    }

    /// Why, and what would get it taken: `a control character in the name; rename it on the
    /// source to have it taken`, `a symbolic link: only regular files are taken`. What the
    /// ledger keeps, `wharf status` shows and a `not_taken` notice says.
    pub fn explained(self) -> String {
        match self {
            SkipReason::NotAFile(_) => format!("{self}: only regular files are taken"),
            SkipReason::Unread => format!("{self}: a file it lists is never taken"),
            SkipReason::CaseOnly => format!("{self}: set `source.ignore_case: true` to take it"),
            _ => format!("{self}; rename it on the source to have it taken"),
        }
    }
}

impl serde::Serialize for SkipReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl SkippedName {
    /// `name` in `folder`, refused by [`RemotePath::join`] with `e`.
    pub fn refused(folder: &RemotePath, name: &str, e: &PathError) -> Self {
        let reason = match e {
            PathError::ControlChar(_) => SkipReason::ControlChar,
            PathError::NotAName(_) | PathError::ParentDir(_) | PathError::Backslash(_) => SkipReason::NotAName,
        };
        SkippedName { folder: folder.clone(), name: crate::text::visible(name), reason, pattern: None }
    }

    /// `name` in `folder`, as decoded lossily from bytes that are not UTF-8.
    pub fn not_utf8(folder: &RemotePath, lossy: &str) -> Self {
        SkippedName { folder: folder.clone(), name: crate::text::visible(lossy), reason: SkipReason::NotUtf8, pattern: None }
    }

    /// A line of `folder`'s listing that could not be read (made one line, of a bounded
    /// length, by the caller): the whole line stands for the name.
    pub fn unread(folder: &RemotePath, line: &str) -> Self {
        SkippedName { folder: folder.clone(), name: crate::text::visible(line), reason: SkipReason::Unread, pattern: None }
    }

    /// The listed entry `e`, which is `kind` rather than a regular file or a folder.
    pub fn not_a_file(e: &Entry, kind: Special) -> Self {
        SkippedName {
            folder: e.path.parent(),
            name: crate::text::visible(e.path.name()),
            reason: SkipReason::NotAFile(kind),
            pattern: None,
        }
    }

    /// The regular file `e`, left for the case of its name alone: `pattern`, of the source's
    /// `include`, takes it ignoring case.
    pub fn case_only(e: &Entry, pattern: &str) -> Self {
        SkippedName {
            folder: e.path.parent(),
            name: crate::text::visible(e.path.name()),
            reason: SkipReason::CaseOnly,
            pattern: Some(pattern.to_string()),
        }
    }

    /// Why it is never taken, and what would get it taken, as the ledger keeps it, `wharf
    /// status` and `wharf plan` show it and a `not_taken` notice says it
    /// ([`SkipReason::explained`], naming the pattern of a name left for its case).
    pub fn explained(&self) -> String {
        match (self.reason, &self.pattern) {
            (SkipReason::CaseOnly, Some(p)) => {
                format!("`{}` does not match `{p}`, but would ignoring case: set `source.ignore_case: true` to take it", self.name)
            }
            (reason, _) => reason.explained(),
        }
    }

    /// `/folder/name`, safe to print.
    pub fn shown_path(&self) -> String {
        if self.folder.is_root() { format!("/{}", self.name) } else { format!("{}/{}", self.folder, self.name) }
    }
}

/// How a subfolder a recursive listing could not read is recorded beside the names left out
/// (`ledger::unsafe_names`, a `not_taken` event's subject): its path with a trailing `/`,
/// `/in/locked/`, so that it reads, and is told, as a folder.
pub fn unreadable_folder(folder: &RemotePath) -> String {
    format!("{folder}/")
}

/// The folder of a path [`unreadable_folder`] made (`/in/locked/` → `/in/locked`); `None` for
/// an entry's path. A name a listing refused for a `/` in it could end so too; told of as a
/// folder then, its reason still says what it is.
pub fn as_unreadable_folder(shown: &str) -> Option<&str> {
    shown.strip_suffix('/').filter(|f| !f.is_empty())
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::ControlChar => "a control character in the name",
            SkipReason::NotAName => "not a plain file name (`.`, `..`, or a `/` or `\\` in it)",
            SkipReason::NotUtf8 => "the name is not UTF-8",
            SkipReason::NotAFile(kind) => return kind.fmt(f),
            SkipReason::Unread => "a line of the server's listing in a format wharf cannot read",
            SkipReason::CaseOnly => "its name matches the source's patterns only ignoring case",
        })
    }
}

/// `/in/bad\nname.csv (a control character in the name)`, `/in/link.csv (a symbolic link)`.
impl fmt::Display for SkippedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.shown_path(), self.reason)
    }
}

/// Serializes a path as it prints (`/in/locked`).
pub(crate) fn as_display<S: serde::Serializer>(p: &RemotePath, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EntryKind;

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
        assert_eq!(
            s.reason.explained(),
            "not a plain file name (`.`, `..`, or a `/` or `\\` in it); rename it on the source to have it taken"
        );
    }

    #[test]
    fn an_entry_that_is_not_a_file_says_what_it_is() {
        let link =
            Entry { path: RemotePath::parse("in/link.csv").unwrap(), kind: EntryKind::Other(Special::Symlink), size: 0, mtime: None };
        let s = SkippedName::not_a_file(&link, Special::Symlink);
        assert_eq!(s.to_string(), "/in/link.csv (a symbolic link)");
        assert_eq!(s.reason.explained(), "a symbolic link: only regular files are taken");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json, serde_json::json!({"folder": "/in", "name": "link.csv", "reason": "symlink"}));
        let at_root = Entry { path: RemotePath::parse("p").unwrap(), ..link };
        let s = SkippedName::not_a_file(&at_root, Special::Unknown);
        assert_eq!((s.shown_path().as_str(), s.reason.as_str()), ("/p", "not_a_file"));
        assert_eq!(s.to_string(), "/p (neither a regular file nor a folder)");
    }

    /// A file left for its case alone names the pattern that would take it, and the option.
    #[test]
    fn a_name_left_for_its_case_names_the_pattern() {
        let e = Entry { path: RemotePath::parse("in/ORDERS_1.CSV").unwrap(), kind: EntryKind::File, size: 3, mtime: None };
        let s = SkippedName::case_only(&e, "*.csv");
        assert_eq!(s.to_string(), "/in/ORDERS_1.CSV (its name matches the source's patterns only ignoring case)");
        assert_eq!(
            s.explained(),
            "`ORDERS_1.CSV` does not match `*.csv`, but would ignoring case: set `source.ignore_case: true` to take it"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json, serde_json::json!({"folder": "/in", "name": "ORDERS_1.CSV", "reason": "case_only", "pattern": "*.csv"}));
    }

    #[test]
    fn a_listing_line_not_understood_is_told_whole() {
        let dir = RemotePath::parse("in").unwrap();
        let s = SkippedName::unread(&dir, "-rw-r--r-- 1 u g 5 6 Dez 10:00 b.csv");
        assert_eq!(
            s.to_string(),
            "/in/-rw-r--r-- 1 u g 5 6 Dez 10:00 b.csv (a line of the server's listing in a format wharf cannot read)"
        );
        assert_eq!(s.reason.explained(), "a line of the server's listing in a format wharf cannot read: a file it lists is never taken");
        assert_eq!(serde_json::to_value(&s).unwrap()["reason"], "unread");
    }
}
