//! `wharf serve`: run every flow of a folder on its schedule until stopped.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::output::errln;
use super::{EXIT_ABORTED, EXIT_INVALID, Global};
use crate::schedule::SystemClock;
use crate::serve::{self, ServeConfig, ServeOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of flow files (`*.yaml`, `*.yml`; `*.test.yaml` are skipped).
    #[arg(long, default_value = "flows")]
    pub flows: PathBuf,
    /// The daemon's settings: a `serve.yaml` (listen address, limits, retries, global
    /// notifications; docs/examples/serve.yaml is one, `wharf validate serve.yaml` checks it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Serve health, metrics and status over HTTP on this loopback address too (overrides
    /// `listen` in the config), e.g. 127.0.0.1:9464.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    // A command-line mistake: said before the state folder and its ledger are created.
    if let Some(why) = not_a_flows_folder(&args.flows) {
        errln!("error: wharf serve: --flows {}: {why}", args.flows.display());
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    let mut config = match &args.config {
        None => ServeConfig::default(),
        Some(path) => match serve::config::load(path) {
            Ok(c) => c,
            Err(diags) => {
                for d in &diags {
                    errln!("{d}");
                }
                errln!("{}: {} problem(s); not started", path.display(), diags.len());
                return Ok(ExitCode::from(EXIT_INVALID));
            }
        },
    };
    if let Some(addr) = args.listen {
        if !addr.ip().is_loopback() && !config.allow_remote {
            errln!(
                "--listen {addr}: not a loopback address; the control interface has no authentication (set `allow_remote: true` in the config to allow it)"
            );
            return Ok(ExitCode::from(EXIT_INVALID));
        }
        config.listen = Some(addr);
    }
    let opts = ServeOptions { flows_dir: args.flows, state_dir: global.state_dir.clone(), config };
    let started = args.config.as_deref().map(serve::config::Started::new);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = rt.block_on(async {
        if let Some(started) = started {
            tell_of_config_at_reload(started);
        }
        serve::serve(opts, Arc::new(SystemClock), shutdown_signal()).await
    });
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(serve::ServeError::Ledger(crate::ledger::LedgerError::Busy(path))) => {
            let who = match super::state::serving(&global.state_dir) {
                Some(info) => format!("another `wharf serve` ({})", info.describe()),
                None => "another wharf process (a `wharf run`?)".to_string(),
            };
            errln!("error: wharf serve: the ledger at {} is held by {who}; one daemon per state folder", path.display());
            Ok(ExitCode::from(EXIT_ABORTED))
        }
        Err(e) => {
            errln!("error: wharf serve: {e}");
            Ok(ExitCode::from(EXIT_ABORTED))
        }
    }
}

/// Why `path` cannot be the folder of flow files, if it cannot.
fn not_a_flows_folder(path: &std::path::Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some("is a file, not a folder; give the folder of flow files (one flow is run with `wharf run FILE`)".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some("no such folder; give the folder of flow files (default: `flows` in the current folder)".into())
        }
        Err(e) => Some(format!("cannot be read: {e}")),
    }
}

/// At each SIGHUP (which reloads the flows), says whether `serve.yaml` changed since the
/// start, and so needs a restart (see [`serve::config::Started`]).
fn tell_of_config_at_reload(started: serve::config::Started) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hup) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    started.reloaded();
                }
            });
        }
    }
    #[cfg(not(unix))]
    let _ = started;
}

/// Completes on SIGTERM or Ctrl-C (SIGINT). A second one while the daemon stops gracefully
/// ends the process at once, with the programs it started (exports, command notifiers): what
/// is in flight resumes at the next start, as after a crash.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down (send it again to stop at once)."),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down (press it again to stop at once)."),
                }
                tokio::spawn(async move {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                    tracing::warn!("Second signal: stopping now; files in flight resume at the next start.");
                    // The programs runs and notifiers started lead process groups of their
                    // own, which neither this exit nor the terminal's Ctrl-C reaches: left
                    // running, an export would go on writing while the next start runs it again.
                    crate::process::kill_all();
                    std::process::exit(i32::from(EXIT_ABORTED));
                });
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
