//! `wharf probe FLOW`: asks each endpoint's server what it supports and how it behaves, prints
//! it with the findings for the flow, and stores it for `wharf plan`.
//!
//! The probing lives in `crate::probe`; this file picks the endpoints, prints, stores, and maps
//! the outcome to an exit code: 0 probed; 1 a `--write` check could not be done (or its
//! scratch folder not removed); 2 bad flow or arguments; 3 a server could not be reached,
//! logged in to, or trusted; 130 Ctrl-C during `--write` (after the scratch folder was removed).

use std::path::PathBuf;
use std::process::ExitCode;

use super::failure::{Failure, Kind};
use super::output::{errln, outln};
use super::run::load_for;
use super::{EXIT_ABORTED, EXIT_FILES_FAILED, EXIT_INVALID, Global};
use crate::endpoint::RemotePath;
use crate::engine::endpoints;
use crate::probe::clock::{human_ms, human_precision};
use crate::probe::{self, Interrupt, Options, ProbeReport, RenameBehaviour, store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Flow file (or the name of a flow in ./flows).
    pub flow: PathBuf,
    /// Probe only this endpoint of the flow (repeatable); default: every endpoint.
    #[arg(long = "endpoint", value_name = "NAME")]
    pub endpoints: Vec<String>,
    /// Also check what needs writing — rename onto an existing file, mtime precision, the
    /// server's clock — in a scratch folder that is created and removed again.
    #[arg(long)]
    pub write: bool,
    /// The folder (relative to the endpoint root) to make the scratch folder in; default: the
    /// root. Must exist.
    #[arg(long, value_name = "PATH", requires = "write")]
    pub scratch: Option<String>,
    /// Print the reports as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let flow = load_for(&args.flow, "nothing was probed")?;
    let names: Vec<String> = if args.endpoints.is_empty() { flow.endpoints.keys().cloned().collect() } else { args.endpoints.clone() };
    if let Some(unknown) = names.iter().find(|n| !flow.endpoints.contains_key(*n)) {
        let known: Vec<&str> = flow.endpoints.keys().map(String::as_str).collect();
        let message = format!("flow {}: no endpoint named {unknown:?} (it has: {})", flow.name, known.join(", "));
        return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
    }
    let scratch_parent = match args.scratch.as_deref().map(RemotePath::parse).transpose() {
        Ok(p) => p,
        Err(e) => {
            let message = format!("--scratch {:?}: {e}", args.scratch.unwrap_or_default());
            return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let interrupt = if args.write { on_ctrl_c(&rt) } else { Interrupt::default() };
    let opts = Options { write: args.write, scratch_parent, interrupt: interrupt.clone() };

    let mut reports = Vec::new();
    let mut errors = Vec::new();
    for name in &names {
        if interrupt.is_set() {
            // Ctrl-C: the scratch folder of the endpoint being probed is removed; no other
            // endpoint is started.
            break;
        }
        let probed = rt.block_on(async {
            let eps = endpoints::open_all(&flow, &[name.as_str()]).await.map_err(|source| probe::ProbeError {
                flow: flow.name.clone(),
                endpoint: name.clone(),
                source,
            })?;
            let ep = eps.get(name).ok_or_else(|| probe::ProbeError {
                flow: flow.name.clone(),
                endpoint: name.clone(),
                source: crate::endpoint::EndpointError::new(
                    crate::endpoint::ErrorKind::Config,
                    crate::endpoint::Op::Connect,
                    name.clone(),
                    None,
                    "endpoint is not defined in the flow",
                ),
            })?;
            probe::probe(&flow, name, &**ep, &opts).await
        });
        match probed {
            Ok(mut report) => {
                // An unreadable earlier probe is simply replaced.
                let earlier = store::load(&global.state_dir, &flow.name, name).ok().flatten();
                report.carry_over(earlier, &flow);
                let stored = store::save(&global.state_dir, &report)?;
                if !args.json {
                    print_report(&report, args.write);
                    outln!("  stored in {}", stored.display());
                }
                reports.push(report);
            }
            Err(e) => {
                errln!("error: {e}");
                errors.push(serde_json::json!({ "endpoint": name, "kind": e.source.kind, "error": e.to_string() }));
            }
        }
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&serde_json::json!({ "flow": flow.name, "endpoints": reports, "errors": errors }))?);
    }
    if interrupt.is_set() {
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    let write_failed = reports.iter().any(|r| r.write_error.is_some() || r.write.as_ref().is_some_and(|w| w.cleanup_problem.is_some()));
    Ok(if !errors.is_empty() {
        ExitCode::from(EXIT_ABORTED)
    } else if write_failed {
        ExitCode::from(EXIT_FILES_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The exit code after Ctrl-C, as a shell reports a process it stopped with SIGINT.
const EXIT_INTERRUPTED: u8 = 130;

/// With `--write`, Ctrl-C stops the write checks, which then remove their scratch folder on
/// the server (the default, stopping at once, would leave it there); a second Ctrl-C stops at
/// once all the same.
fn on_ctrl_c(rt: &tokio::runtime::Runtime) -> Interrupt {
    let (set, interrupt) = Interrupt::new();
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        errln!("interrupted: removing the scratch folder first (Ctrl-C again to stop at once)");
        let _ = set.send(true);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(EXIT_INTERRUPTED.into());
        }
    });
    interrupt
}

/// Rows of `(name, value, meaning)` with aligned columns.
fn table(rows: &[(String, String, String)], indent: &str) {
    let w0 = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0).min(48);
    for (a, b, c) in rows {
        let line = format!("{indent}{a:<w0$}  {b:<w1$}  {c}");
        outln!("{}", line.trim_end());
    }
}

fn print_report(r: &ProbeReport, wrote_now: bool) {
    let f = &r.facts;
    outln!("flow {}, endpoint {}: {}", r.flow, r.endpoint, r.target);
    let mut head = vec![("protocol".to_string(), f.protocol.clone(), String::new())];
    if let Some(s) = &f.software {
        head.push(("software".into(), s.clone(), String::new()));
    }
    head.push(("mtimes".into(), human_precision(f.traits.mtime_precision), f.traits.mtime_source.clone()));
    table(&head, "  ");
    outln!("  features");
    let rows: Vec<(String, String, String)> = f
        .features
        .iter()
        .map(|ft| (ft.name.clone(), ft.value.clone().unwrap_or_else(|| "(not offered)".into()), ft.meaning.clone()))
        .collect();
    table(&rows, "    ");
    if let Some(e) = &r.write_error {
        outln!("  write checks failed: {e}");
    }
    if let Some(w) = &r.write {
        let when = if wrote_now && r.write_error.is_none() {
            String::new()
        } else {
            format!(", from the probe of {}", w.at.format("%Y-%m-%d %H:%M UTC"))
        };
        let removed = match &w.cleanup_problem {
            None => "removed again".to_string(),
            Some(p) => format!("NOT removed: {p}"),
        };
        outln!("  write checks in {} ({removed}{when})", w.scratch);
        let plain = match &w.plain_rename {
            RenameBehaviour::Replaces => "replaces it".to_string(),
            RenameBehaviour::Refuses { kind, message } => format!("refused ({kind}: {message})"),
            RenameBehaviour::Odd { what } => what.clone(),
        };
        let ok = |p: &Option<String>, good: &str| p.clone().unwrap_or_else(|| good.to_string());
        let clock = match &w.clock {
            Some(c) => format!(
                "{} {} ours (±{}, {} samples)",
                human_ms(c.offset_ms.unsigned_abs()),
                if c.offset_ms < 0 { "behind" } else { "ahead of" },
                human_ms(c.uncertainty_ms),
                c.samples
            ),
            None => "not measured: the listing has no modification times".into(),
        };
        let rows = vec![
            ("server's rename onto an existing file".to_string(), plain, String::new()),
            ("rename with replace".into(), ok(&w.replace_problem, "ok: replaced"), String::new()),
            ("rename without replace".into(), ok(&w.no_replace_problem, "ok: refused, target kept"), String::new()),
            ("mtime precision observed".into(), human_precision(w.mtime_precision), String::new()),
            ("server clock".into(), clock, String::new()),
        ];
        table(&rows, "    ");
    }
    if r.findings.is_empty() {
        outln!("  findings: none");
    } else {
        outln!("  findings");
        for fd in &r.findings {
            outln!("    {:<8} {}", fd.severity.as_str(), fd.text);
        }
    }
}
