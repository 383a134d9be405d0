//! `wharf validate [PATH…]`: check flow files and print every problem as
//! `file:line:col: message (at /yaml/path)`, then a count; exit 2 when there is any problem.
//! A flow's test file (`*.test.yaml`, see `wharf test`) named on the command line is checked
//! as a test file, with the flow it tests; a folder's are left to `wharf test`. The daemon's
//! settings (`serve.yaml`) named on the command line are checked as those, as `wharf serve
//! --config` reads them; found in a folder, such a file is refused as a flow (it does not
//! belong among the flows).
//!
//! Warnings (`file:line:col: warning: …`) are printed after the problems and never change
//! the exit code: the loader's (a setting that has no effect, see [`crate::config::Flow`]'s
//! `warnings`; also for a file with problems), and a key, known_hosts or CA file a valid flow names that is not on this
//! machine — validate also runs where the keys are not (CI), and a run checks them again
//! before it connects — and a program a valid flow runs (`source.command`, a notification
//! `command`) that is not on this machine or not executable; and two flows checked together
//! that await their responses in one folder of one server under names that may be alike
//! (see [`crate::config::across`]). A note (`file: note: …`, text output only, counted
//! nowhere) tells of a cron without `timezone:` on a machine whose zone is not UTC: it runs
//! in UTC ([`crate::schedule::upcoming::utc_note`]). `--json` prints the array of problems it always printed; with
//! `--with-warnings` the warnings are appended to it and every entry says its `severity`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::output::outln;
use crate::config::diagnostic::{Rated, Severity};
use crate::config::{self, Diagnostic};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow files, or folders whose `*.yaml` / `*.yml` files are checked (not `*.test.yaml`).
    /// A flow's test file (`*.test.yaml`) named here is checked as one, with its flow, and
    /// the settings of `wharf serve` (`serve.yaml`) as those.
    #[arg(default_value = "flows")]
    pub paths: Vec<PathBuf>,
    /// Print the problems as a JSON array of {file, line, col, message, yaml_path} instead.
    /// Warnings are left out unless `--with-warnings` is given.
    #[arg(long)]
    pub json: bool,
    /// With `--json`: append the warnings to the array, and give every entry a `severity`
    /// (`"error"` or `"warning"`). The exit code still counts only the errors.
    #[arg(long, requires = "json")]
    pub with_warnings: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut warnings: Vec<Diagnostic> = Vec::new();
    let mut checked = 0usize;
    let mut tests = 0usize;
    let mut serve_configs = 0usize;
    let mut names: HashMap<String, PathBuf> = HashMap::new();
    // The flows loaded, for the checks across them.
    let mut flows: Vec<config::Flow> = Vec::new();
    // Neither problems nor warnings (text output only): a cron read in UTC on a machine whose
    // zone is another.
    let mut notes: Vec<String> = Vec::new();
    let (local, now) = (crate::schedule::local_zone(), chrono::Utc::now());
    for path in &args.paths {
        let files = config::find_flows(std::slice::from_ref(path));
        if files.is_empty() {
            // An empty folder is almost always the wrong folder: say so rather than pass.
            problems.push(Diagnostic {
                file: path.clone(),
                line: 1,
                col: 1,
                message: "no flow files (*.yaml, *.yml) in this folder".into(),
                yaml_path: "/".into(),
            });
        }
        // The daemon's settings, named on the command line (`wharf validate /etc/wharf/serve.yaml`):
        // checked as `wharf serve --config` reads them, not as a flow missing every field.
        if path.is_file() && config::stray::is_serve_config_name(path) {
            serve_configs += 1;
            if let Err(diagnostics) = crate::serve::config::load(path) {
                problems.extend(diagnostics);
            }
            continue;
        }
        for file in files {
            // A flow's test cases (`wharf test`), named on the command line (`flows/*.yaml`):
            // checked as what they are, not as a flow missing every field.
            if file.file_name().and_then(|n| n.to_str()).is_some_and(crate::flowtest::is_test_file) {
                tests += 1;
                if let Err(diagnostics) = crate::flowtest::load_suite(&file) {
                    problems.extend(diagnostics);
                }
                continue;
            }
            // A path that names nothing is a problem, not a flow that was checked.
            if file.exists() {
                checked += 1;
            }
            let (loaded, file_warnings) = config::load_flow_with_warnings(&file);
            warnings.extend(file_warnings);
            match loaded {
                Ok(flow) => {
                    let note = flow.schedule.as_ref().and_then(|s| crate::schedule::upcoming::utc_note(s, &flow.name, local, now));
                    notes.extend(note.map(|n| format!("{}: note: {n}", file.display())));
                    warnings.extend(config::key_files::check(&flow, flow.endpoints.keys().map(String::as_str)));
                    warnings.extend(config::programs::check(&flow));
                    match names.get(&flow.name) {
                        // The name keys the ledger: two flows with one name would share its records.
                        Some(first) => problems.push(name_clash(&file, &flow.name, first)),
                        None => {
                            names.insert(flow.name.clone(), file);
                            flows.push(flow);
                        }
                    }
                }
                Err(diagnostics) => problems.extend(diagnostics),
            }
        }
    }
    // Two flows awaiting their responses in one folder under names that may be alike.
    // A warning: whether they meet depends on the names of the requests.
    warnings.extend(config::across::response_clashes(&flows.iter().collect::<Vec<_>>()).iter().map(|c| c.diagnostic()));
    if args.json && args.with_warnings {
        let rate = |severity| move |diagnostic| Rated { diagnostic, severity };
        let all: Vec<Rated> = problems.iter().map(rate(Severity::Error)).chain(warnings.iter().map(rate(Severity::Warning))).collect();
        outln!("{}", serde_json::to_string_pretty(&all).context("writing diagnostics as JSON")?);
    } else if args.json {
        outln!("{}", serde_json::to_string_pretty(&problems).context("writing diagnostics as JSON")?);
    } else {
        for d in &problems {
            outln!("{d}");
        }
        for w in &warnings {
            outln!("{}", w.warning_text());
        }
        for n in &notes {
            outln!("{n}");
        }
        let warned = if warnings.is_empty() { String::new() } else { format!(", {} warning(s)", warnings.len()) };
        let tests = if tests == 0 { String::new() } else { format!(" and {tests} test file(s)") };
        let serve = if serve_configs == 0 { String::new() } else { format!(" and {serve_configs} serve config(s)") };
        outln!("{checked} flow(s){tests}{serve} checked, {} problem(s){warned}", problems.len());
    }
    Ok(if problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(super::EXIT_INVALID) })
}

/// A diagnostic at the `name:` of `file`, whose flow name `first` already uses.
fn name_clash(file: &Path, name: &str, first: &Path) -> Diagnostic {
    // The file was just loaded, so it parses; should it have changed since, 1:1 will do.
    let pos = std::fs::read_to_string(file)
        .ok()
        .and_then(|text| config::locate::parse(&text).0)
        .map_or(config::locate::Pos::START, |parsed| parsed.positions.node("/name"));
    Diagnostic {
        file: file.to_path_buf(),
        line: pos.line,
        col: pos.col,
        message: config::name_taken(name, first),
        yaml_path: "/name".into(),
    }
}
