//! `Diagnostic`: one problem or warning in a flow file, located by file, line, column and
//! YAML path.
//!
//! Owns the printed forms (`file:line:col: message (at /yaml/path)`; `file: message` for a
//! problem with the file as a whole, such as a file that does not exist; and
//! `file:line:col: warning: message (at /yaml/path)` for a warning), the JSON form of
//! `wharf validate --json` and the log line of a warning, and which names a parse problem
//! may not show (a duplicate key that may be a secret). It does not find problems or
//! positions.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Flow;

/// One problem (or warning) in a flow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The flow file, as it was named to the loader.
    pub file: PathBuf,
    /// 1-based line; 0 when the problem is with the file as a whole, not a place in it (it
    /// does not exist, or cannot be read): then it is printed without a position.
    pub line: usize,
    /// 1-based column (in characters); 0 with `line` 0.
    pub col: usize,
    /// What is wrong, and where useful what would be right. Never contains a secret value.
    pub message: String,
    /// JSON-pointer-style path of the offending node: `/sinks/0/endpoint`; `/` is the document.
    pub yaml_path: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            return write!(f, "{}: {}", self.file.display(), self.message);
        }
        write!(f, "{}:{}:{}: {} (at {})", self.file.display(), self.line, self.col, self.message, self.yaml_path)
    }
}

impl Diagnostic {
    /// `found` problems (`(yaml_path, message)`) of the flow file `file`, each at its field
    /// (`file:line:col`; 1:1 when the file cannot be read again): for checks made on a loaded
    /// flow, which no longer knows where its fields were written.
    pub fn at_fields(file: &Path, found: Vec<(String, String)>) -> Vec<Diagnostic> {
        if found.is_empty() {
            return Vec::new();
        }
        let positions = std::fs::read_to_string(file).ok().and_then(|text| super::locate::parse(&text).0).map(|p| p.positions);
        found
            .into_iter()
            .map(|(yaml_path, message)| {
                let pos = positions.as_ref().map_or(super::locate::Pos::START, |p| p.node(&yaml_path));
                Diagnostic { file: file.to_path_buf(), line: pos.line, col: pos.col, message, yaml_path }
            })
            .collect()
    }

    /// A problem found while parsing `file` ([`locate::parse`](super::locate::parse)), as it
    /// may be shown: a duplicate key in a secret's mapping ([`schema::is_sensitive`](super::schema::is_sensitive):
    /// `auth: { hunter2, hunter2 }`) is not named, in the message or the path.
    pub fn of_parse(file: &Path, located: super::locate::Located) -> Diagnostic {
        let hidden = located.duplicate.as_ref().is_some_and(|d| super::schema::is_sensitive(&d.mapping));
        let l = if hidden { located.without_key() } else { located };
        Diagnostic { file: file.to_path_buf(), line: l.pos.line, col: l.pos.col, message: l.message, yaml_path: l.yaml_path }
    }

    /// The printed form of a warning: `file:line:col: warning: message (at /yaml/path)`.
    pub fn warning_text(&self) -> String {
        format!("{}:{}:{}: warning: {} (at {})", self.file.display(), self.line, self.col, self.message, self.yaml_path)
    }
}

/// Logs each of `flow`'s warnings (a `tracing` warning naming the flow and the file). Whoever
/// loads a flow to run it calls this once per load.
pub fn log_warnings(flow: &Flow) {
    for w in &flow.warnings {
        tracing::warn!(
            flow = %flow.name,
            file = %w.file.display(),
            line = w.line,
            col = w.col,
            at = %w.yaml_path,
            warning = %w.message,
            "Flow file warning; the flow runs as written."
        );
    }
}

/// How much a diagnostic matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A problem: the flow is refused.
    Error,
    /// A warning: the flow runs as written.
    Warning,
}

/// A diagnostic with its severity, as `wharf validate --json --with-warnings` lists it: the
/// fields of [`Diagnostic`] and `"severity": "error"` or `"warning"`.
#[derive(Debug, Clone, Serialize)]
pub struct Rated<'a> {
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
    pub severity: Severity,
}

/// A problem found by validation before it is given a position: a YAML path and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: `/source/include/0`; `/` for the document.
    pub yaml_path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    pub fn new(yaml_path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem { yaml_path: yaml_path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at {})", self.message, self.yaml_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_file_line_col_message_and_path() {
        let d = Diagnostic {
            file: "flows/a.yaml".into(),
            line: 3,
            col: 9,
            message: "unknown field `prot`".into(),
            yaml_path: "/endpoints/acme/prot".into(),
        };
        assert_eq!(d.to_string(), "flows/a.yaml:3:9: unknown field `prot` (at /endpoints/acme/prot)");
        let whole =
            Diagnostic { file: "nothing-here".into(), line: 0, col: 0, message: "no such file or folder".into(), yaml_path: "/".into() };
        assert_eq!(whole.to_string(), "nothing-here: no such file or folder", "no place in the file: no line:col");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["line"], 3);
        assert_eq!(json["yaml_path"], "/endpoints/acme/prot");
        assert_eq!(json["file"], "flows/a.yaml");
        assert_eq!(d.warning_text(), "flows/a.yaml:3:9: warning: unknown field `prot` (at /endpoints/acme/prot)");
        let rated = serde_json::to_value(Rated { diagnostic: &d, severity: Severity::Warning }).unwrap();
        assert_eq!((&rated["severity"], &rated["line"], &rated["message"]), (&"warning".into(), &3.into(), &"unknown field `prot`".into()));
    }
}
