//! `wharf test`: test files kept beside flows (`roster-import.test.yaml`) that give a flow
//! input files or records and say what must come out — delivered files and their names,
//! rejected rows, a quarantine and its errors, row counts, a script's records, a template's
//! text — so flows, scripts and templates are tested like code, in the user's own CI.
//!
//! A file case runs the flow through the real engine ([`crate::engine::run_once`]), the very
//! code `wharf run` uses, with every endpoint replaced by a folder in a temporary directory and
//! a fresh in-memory ledger: nothing connects anywhere, nothing of the user's state is read or
//! written, and what the test sees is what a run would do (name filters, content steps, sink
//! and rejects names, triggers, quarantine copies and reports, the source's disposition). Only
//! what depends on time across polls or on the outside world is left out: readiness rules,
//! `source.command` and awaited responses. Script and template cases call the flow's built
//! `map` and `render` steps directly.
//!
//! Modules: [`spec`] (the YAML shape and its schema), [`load`] (validation into a [`Suite`],
//! every problem positioned), [`run`] (running a case), [`check`] (judging what came out into
//! [`run::Failure`]s), [`diff`] (text and record differences), [`report`] (what is printed).
//! Nothing here changes how a flow runs.

pub mod check;
pub mod diff;
pub mod load;
pub mod report;
pub mod run;
pub mod spec;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::Value;

use crate::config::Flow;
pub use load::load_suite;
pub use spec::{Outcome, RawCounts, RawRowError, test_schema};

/// A validated test file.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The test file.
    pub file: PathBuf,
    /// The flow under test, loaded (secrets are not needed: nothing connects).
    pub flow: Flow,
    pub cases: Vec<Case>,
}

/// One validated case.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// Line of the case in the test file.
    pub line: usize,
    pub now: SystemTime,
    pub kind: CaseKind,
    pub expect: Expect,
}

/// What a case feeds the flow.
#[derive(Debug, Clone)]
pub enum CaseKind {
    /// A file arriving in the source folder.
    File(Input),
    /// One record through the `map` script.
    Map(Value),
    /// Records through the `render` templates; `name` is the source file's name.
    Render { records: Vec<Value>, name: String },
}

/// The arriving file.
#[derive(Debug, Clone)]
pub struct Input {
    /// Path relative to the source folder (`ROSTER_20260105.csv`, `eu/b.xml`).
    pub name: String,
    pub content: Vec<u8>,
    /// Files beside it: name → content.
    pub beside: BTreeMap<String, Vec<u8>>,
}

/// What a case must produce (only what is given is checked).
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub outcome: Option<Outcome>,
    pub counts: RawCounts,
    /// `ENDPOINT:/PATH` → content; exactly these files.
    pub outputs: Option<BTreeMap<String, Content>>,
    pub rejected: Option<Vec<RawRowError>>,
    pub quarantine: Option<QuarantineExpect>,
    pub source: Option<String>,
    pub detail: Option<String>,
    pub records: Option<Vec<Value>>,
    pub output: Option<Content>,
    pub error: Option<String>,
}

/// Expected content.
#[derive(Debug, Clone, Default)]
pub struct Content {
    pub exact: Option<Exact>,
    pub contains: Vec<String>,
}

/// Content compared as a whole.
#[derive(Debug, Clone)]
pub enum Exact {
    /// These bytes; `fixture` names the file they came from (for messages).
    Bytes { bytes: Vec<u8>, fixture: Option<PathBuf> },
    /// These records.
    Records(Vec<Value>),
}

/// An expected quarantine.
#[derive(Debug, Clone, Default)]
pub struct QuarantineExpect {
    pub reason: Option<String>,
    pub errors: Option<Vec<RawRowError>>,
    pub copy: Option<String>,
}

/// The test files named by `paths`: files as given; folders searched recursively for
/// `*.test.yaml` / `*.test.yml` (hidden folders skipped, symlinks not followed), sorted.
pub fn find_tests(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found);
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    out
}

/// Whether `name` is a test file's name.
pub fn is_test_file(name: &str) -> bool {
    name.ends_with(".test.yaml") || name.ends_with(".test.yml")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() && !name.starts_with('.') {
            walk(&e.path(), out);
        } else if kind.is_file() && is_test_file(&name) {
            out.push(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_test_files_recursively_and_skips_hidden_folders() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::create_dir_all(d.join(".git")).unwrap();
        for f in ["a.test.yaml", "a.yaml", "sub/b.test.yml", "sub/deeper/c.test.yaml", ".git/d.test.yaml", "sub/e.yaml"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let found = find_tests(&[d.to_path_buf(), d.join("sub/e.yaml")]);
        assert_eq!(found, [d.join("a.test.yaml"), d.join("sub/b.test.yml"), d.join("sub/deeper/c.test.yaml"), d.join("sub/e.yaml")]);
    }
}
