//! What `wharf test` prints: one line per case (`ok` / `FAILED`), then each failure with its
//! message and difference, then the summary `N passed, N failed` alone on a line (the form CI
//! tools read); or all of it as JSON.
//!
//! Owns the text and JSON forms only; deciding pass or fail is `check.rs`'s.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use super::run::Failure;
use crate::config::Diagnostic;

/// One case's result.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The test file.
    pub file: PathBuf,
    pub case: String,
    /// Line of the case in the test file.
    pub line: usize,
    pub failures: Vec<Failure>,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Everything `--json` prints.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    pub passed: usize,
    pub failed: usize,
    pub cases: &'a [CaseResult],
    /// Problems in test files (or their flows); such files were not run.
    pub invalid: &'a [Diagnostic],
}

/// `  ok      NAME` or `  FAILED  NAME`.
pub fn case_line(r: &CaseResult) -> String {
    format!("  {:<7} {}", if r.passed() { "ok" } else { "FAILED" }, r.case)
}

/// A failed case in full: where it is, each failure, each difference indented.
pub fn failure_block(r: &CaseResult) -> String {
    let mut s = format!("---- {}:{}: {}\n", r.file.display(), r.line, r.case);
    for f in &r.failures {
        let _ = writeln!(s, "  {}", f.message);
        if let Some(d) = &f.diff {
            for line in d.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    s
}

/// The closing line.
pub fn summary_line(passed: usize, failed: usize) -> String {
    format!("{passed} passed, {failed} failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_blocks_and_summary() {
        let ok = CaseResult { file: "f.test.yaml".into(), case: "good".into(), line: 3, failures: vec![] };
        let bad = CaseResult {
            file: "f.test.yaml".into(),
            case: "bad".into(),
            line: 9,
            failures: vec![Failure::with_diff("output x differs", "--- expected\n+++ actual\n-a\n+b\n".into()), Failure::new("counts: …")],
        };
        assert_eq!(case_line(&ok), "  ok      good");
        assert_eq!(case_line(&bad), "  FAILED  bad");
        assert_eq!(
            failure_block(&bad),
            "---- f.test.yaml:9: bad\n  output x differs\n    --- expected\n    +++ actual\n    -a\n    +b\n  counts: …\n"
        );
        assert_eq!(summary_line(3, 1), "3 passed, 1 failed");
    }
}
