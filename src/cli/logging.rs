//! Logging setup: `tracing` to stderr as text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use super::LogFormat;
use crate::engine::REPORT_LOG_TARGET;

/// Installs the global subscriber. `RUST_LOG` overrides the level chosen by `-v`.
/// `prints_report`: the command prints a run's report itself (`wharf run`), so the text log
/// leaves out the lines that restate it ([`REPORT_LOG_TARGET`]: why the run was aborted, the
/// files that failed or were quarantined, its `failed` and `quarantined` events): said once, by the report. A JSON log keeps them, for
/// whatever collects it; `RUST_LOG` brings them back too.
pub fn init(format: LogFormat, verbose: u8, prints_report: bool) {
    // The run summary goes to stdout; logs add detail: warnings by default, more with -v.
    let level = match verbose {
        0 => "wharf=warn",
        1 => "wharf=info",
        2 => "wharf=debug",
        _ => "wharf=trace",
    };
    let directives = match format {
        LogFormat::Text if prints_report => format!("{level},{REPORT_LOG_TARGET}=off"),
        _ => level.to_string(),
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}
