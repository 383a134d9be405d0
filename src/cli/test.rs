//! `wharf test [PATH…]`: run the test files kept beside flows (`*.test.yaml`) and print one
//! line per case, each failure with its difference, and `N passed, N failed`. Exit 0 when every
//! case passed, 1 when one failed, 2 when a test file (or its flow) is invalid — printed as
//! `file:line:col` like `wharf validate`. Nothing connects anywhere (docs/authoring.md). A
//! flow's warnings (a setting with no effect) are logged on stderr, as `wharf run` logs them;
//! they change no exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use super::output::outln;
use super::{EXIT_FILES_FAILED, EXIT_INVALID};
use crate::config::Diagnostic;
use crate::flowtest::report::{self, CaseResult, Results};
use crate::flowtest::{self, run};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Test files, or folders searched recursively for `*.test.yaml` / `*.test.yml`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, verbose: u8) -> anyhow::Result<ExitCode> {
    let files = flowtest::find_tests(&args.paths);
    let mut invalid: Vec<Diagnostic> = Vec::new();
    let no_tests = files.is_empty();
    if no_tests {
        // A CI step that finds nothing to test is almost always pointed at the wrong folder.
        let at: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        invalid.push(Diagnostic {
            file: PathBuf::from(at.join(" ")),
            // About the paths as a whole: no place in a file (printed without `line:col`).
            line: 0,
            col: 0,
            message: "no test files (*.test.yaml, *.test.yml) here (give a test file, or a folder holding them: `wharf test flows/`)"
                .into(),
            yaml_path: "/".into(),
        });
        if !args.json {
            outln!("{}", invalid[0]);
        }
    }
    // One thread: the engine's log lines are silenced on it below (a quarantine case warns).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut results: Vec<CaseResult> = Vec::new();
    for file in files {
        let suite = match flowtest::load_suite(&file) {
            Ok(s) => s,
            Err(diags) => {
                if !args.json {
                    diags.iter().for_each(|d| outln!("{d}"));
                }
                invalid.extend(diags);
                continue;
            }
        };
        // As `wharf run` logs them: on stderr, the results (text or JSON) untouched.
        crate::config::diagnostic::log_warnings(&suite.flow);
        if !args.json {
            outln!("{}", file.display());
        }
        for case in &suite.cases {
            let failures = if verbose == 0 {
                tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || run::run_case(&suite, case, &rt))
            } else {
                run::run_case(&suite, case, &rt)
            };
            let r = CaseResult { file: file.clone(), case: case.name.clone(), line: case.line, failures };
            if !args.json {
                outln!("{}", report::case_line(&r));
            }
            results.push(r);
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let passed = results.len() - failed;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&Results { passed, failed, cases: &results, invalid: &invalid })?);
    } else {
        if failed > 0 {
            outln!("\nfailures:\n");
            for r in results.iter().filter(|r| !r.passed()) {
                outln!("{}", report::failure_block(r));
            }
        }
        // Not when the one problem is that there were no test files: no file was left unrun.
        if !invalid.is_empty() && !no_tests {
            outln!("{} problem(s) in test files or their flows; those files were not run", invalid.len());
        }
        outln!("{}", report::summary_line(passed, failed));
    }
    Ok(if !invalid.is_empty() {
        ExitCode::from(EXIT_INVALID)
    } else if failed > 0 {
        ExitCode::from(EXIT_FILES_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
