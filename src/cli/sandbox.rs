//! `wharf sandbox FOLDER`: serve a folder over SFTP and FTP on 127.0.0.1 until stopped, and
//! print what a flow needs to use it (addresses, login, host key, known_hosts line, an
//! endpoint for each protocol).
//!
//! The server is `crate::sandbox`; this file turns arguments into options, writes the
//! known_hosts file, prints (text or `--json`), and waits for SIGINT/SIGTERM.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use russh::keys::PublicKey;
use russh::keys::ssh_key::AuthorizedKeys;

use super::failure::{Failure, Kind};
use super::output::{out, outln};
use super::{EXIT_ABORTED, EXIT_INVALID, Global};
use crate::config::Secret;
use crate::sandbox::{Sandbox, SandboxOptions, generate_password};

/// The environment variable the printed endpoint reads the password from.
const PASSWORD_ENV: &str = "WHARF_SANDBOX_PASSWORD";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to serve; clients see it as `/`.
    pub folder: PathBuf,
    /// Address to listen on: 127.0.0.1 or ::1 (nothing else is accepted).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// SFTP port; 0 picks a free one (printed). A fixed port keeps the printed endpoint and
    /// known_hosts line valid across restarts.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// FTP port (plain FTP, passive mode); 0 picks a free one (printed).
    #[arg(long, default_value_t = 0)]
    pub ftp_port: u16,
    /// Serve SFTP only.
    #[arg(long, conflicts_with = "ftp_port")]
    pub no_ftp: bool,
    /// Login name.
    #[arg(long, default_value = "sandbox")]
    pub user: String,
    /// Login password; generated (and printed) when not given.
    #[arg(long, env = PASSWORD_ENV, hide_env_values = true)]
    pub password: Option<String>,
    /// Public keys (authorized_keys format) that may log in as well.
    #[arg(long, value_name = "FILE")]
    pub authorized_keys: Option<PathBuf>,
    /// The host key file; generated on first start and kept [default:
    /// STATE_DIR/sandbox/ssh_host_ed25519_key].
    #[arg(long, value_name = "FILE")]
    pub host_key: Option<PathBuf>,
    /// known_hosts file (re)written with the sandbox's line at every start [default:
    /// STATE_DIR/sandbox/known_hosts].
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Print the details as one line of JSON (then keep serving).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let state = global.state_dir.join("sandbox");
    let host_key = absolute(args.host_key.unwrap_or_else(|| state.join("ssh_host_ed25519_key")))?;
    let known_hosts = absolute(args.known_hosts.unwrap_or_else(|| state.join("known_hosts")))?;
    let authorized_keys = match &args.authorized_keys {
        None => Vec::new(),
        Some(path) => match read_authorized_keys(path) {
            Ok(keys) => keys,
            Err(e) => {
                let message = format!("--authorized-keys {}: {e:#}", path.display());
                return Err(Failure::new(Kind::Usage, EXIT_INVALID, message).into());
            }
        },
    };
    let (password, generated) = match args.password {
        Some(p) if p.is_empty() => {
            return Err(Failure::new(Kind::Usage, EXIT_INVALID, "the password must not be empty").into());
        }
        Some(p) => (Secret::new(p), false),
        None => (generate_password(), true),
    };
    let opts = SandboxOptions {
        root: args.folder,
        bind: args.bind,
        sftp_port: args.port,
        ftp_port: (!args.no_ftp).then_some(args.ftp_port),
        user: args.user,
        password,
        authorized_keys,
        host_key,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    rt.block_on(serve(opts, known_hosts, generated, args.json))
}

async fn serve(opts: SandboxOptions, known_hosts: PathBuf, password_generated: bool, json: bool) -> anyhow::Result<ExitCode> {
    // Registered before anything is printed: a script that stops the sandbox as soon as it
    // read the details must find the handlers in place.
    let mut stop = Stop::install()?;
    let details = Details {
        user: opts.user.clone(),
        password: opts.password.clone(),
        password_generated,
        host_key_file: opts.host_key.clone(),
        known_hosts,
    };
    let sandbox = match Sandbox::start(opts).await {
        Ok(s) => s,
        Err(e) => {
            let (kind, exit) = if e.is_usage() { (Kind::Usage, EXIT_INVALID) } else { (Kind::Other, EXIT_ABORTED) };
            return Err(Failure::new(kind, exit, format!("wharf sandbox: {e}")).into());
        }
    };
    if let Err(e) = write_known_hosts(&details.known_hosts, &sandbox.known_hosts_line()) {
        sandbox.stop().await;
        let message = format!("wharf sandbox: cannot write {}: {e}", details.known_hosts.display());
        return Err(Failure::new(Kind::Other, EXIT_ABORTED, message).into());
    }
    if json {
        outln!("{}", details.json(&sandbox));
    } else {
        out!("{}", details.text(&sandbox));
    }
    stop.wait().await;
    sandbox.stop().await;
    Ok(ExitCode::SUCCESS)
}

/// SIGINT / SIGTERM, registered up front.
struct Stop {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Stop {
    fn install() -> anyhow::Result<Stop> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Stop {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM: stopping."),
            _ = self.int.recv() => tracing::info!("Ctrl-C: stopping."),
        }
    }
}

/// What is printed besides what the running sandbox knows.
struct Details {
    user: String,
    password: Secret,
    password_generated: bool,
    host_key_file: PathBuf,
    known_hosts: PathBuf,
}

impl Details {
    /// The SFTP endpoint to paste under `endpoints:` (the password comes from the environment).
    fn endpoint_yaml(&self, sandbox: &Sandbox) -> String {
        let addr = sandbox.sftp_addr();
        format!(
            "endpoints:\n  sandbox:\n    type: sftp\n    host: {}\n    port: {}\n    user: {}\n    auth: {{ password: \"${{env:{PASSWORD_ENV}}}\" }}\n    host_key: {{ known_hosts: {} }}\n    root: /\n",
            addr.ip(),
            addr.port(),
            yaml_scalar(&self.user),
            yaml_scalar(&self.known_hosts.display().to_string()),
        )
    }

    /// The FTP endpoint, when the FTP server runs.
    fn ftp_endpoint_yaml(&self, sandbox: &Sandbox) -> Option<String> {
        let addr = sandbox.ftp_addr()?;
        Some(format!(
            "endpoints:\n  sandbox_ftp:\n    type: ftp\n    host: {}\n    port: {}\n    user: {}\n    password: \"${{env:{PASSWORD_ENV}}}\"\n    tls: none  # plain FTP, on this machine only\n    root: /\n",
            addr.ip(),
            addr.port(),
            yaml_scalar(&self.user),
        ))
    }

    fn text(&self, sandbox: &Sandbox) -> String {
        let addr = sandbox.sftp_addr();
        let key_note = if sandbox.host_key_generated() { "generated now, kept in" } else { "kept in" };
        let pass_note =
            if self.password_generated { format!("  (generated; set one with --password or {PASSWORD_ENV})") } else { String::new() };
        let (ftp_line, ftp_endpoint) = match (sandbox.ftp_addr(), self.ftp_endpoint_yaml(sandbox)) {
            (Some(ftp), Some(yaml)) => (format!(" and FTP on {ftp}"), format!("\nAnd over FTP (plain, passive mode):\n\n{yaml}")),
            _ => (String::new(), String::new()),
        };
        format!(
            "wharf sandbox: serving {} over SFTP on {addr}{ftp_line} until Ctrl-C / SIGTERM\n\n\
             \x20 user         {}\n\
             \x20 password     {}{pass_note}\n\
             \x20 host key     {} {} ({key_note} {})\n\
             \x20 known_hosts  {}\n\
             \x20              {}\n\n\
             An endpoint for a flow (first: export {PASSWORD_ENV}='{}'):\n\n{}{ftp_endpoint}",
            sandbox.root().display(),
            self.user,
            self.password.expose(),
            sandbox.host_key().algorithm(),
            sandbox.fingerprint(),
            self.host_key_file.display(),
            self.known_hosts.display(),
            sandbox.known_hosts_line(),
            self.password.expose(),
            self.endpoint_yaml(sandbox),
        )
    }

    fn json(&self, sandbox: &Sandbox) -> serde_json::Value {
        let addr = sandbox.sftp_addr();
        let ftp = sandbox.ftp_addr().map(|a| serde_json::json!({ "host": a.ip().to_string(), "port": a.port() }));
        serde_json::json!({
            "folder": sandbox.root().display().to_string(),
            "sftp": { "host": addr.ip().to_string(), "port": addr.port() },
            "ftp": ftp,
            "user": self.user,
            "password": self.password.expose(),
            "password_env": PASSWORD_ENV,
            "host_key": {
                "algorithm": sandbox.host_key().algorithm().to_string(),
                "fingerprint": sandbox.fingerprint(),
                "file": self.host_key_file.display().to_string(),
                "generated": sandbox.host_key_generated(),
            },
            "known_hosts": { "file": self.known_hosts.display().to_string(), "line": sandbox.known_hosts_line() },
            "endpoint_yaml": self.endpoint_yaml(sandbox),
            "ftp_endpoint_yaml": self.ftp_endpoint_yaml(sandbox),
        })
    }
}

/// A plain YAML scalar when it is one, else double-quoted (JSON string syntax is valid YAML).
fn yaml_scalar(s: &str) -> String {
    let plain = !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "/._-".contains(c)) && !s.starts_with(['-', '.']);
    if plain { s.to_string() } else { serde_json::Value::from(s).to_string() }
}

/// The sandbox's own known_hosts file: rewritten with its one line at every start (the port
/// may have changed); another file would keep stale or foreign lines.
fn write_known_hosts(path: &Path, line: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("# written by wharf sandbox\n{line}\n"))
}

fn read_authorized_keys(path: &Path) -> anyhow::Result<Vec<PublicKey>> {
    let entries = AuthorizedKeys::read_file(path).context("cannot read it as an authorized_keys file")?;
    if entries.is_empty() {
        anyhow::bail!("no keys in it");
    }
    Ok(entries.iter().map(|e| e.public_key().clone()).collect())
}

fn absolute(path: PathBuf) -> anyhow::Result<PathBuf> {
    std::path::absolute(&path).with_context(|| format!("cannot make {} absolute", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_are_quoted_when_needed() {
        assert_eq!(yaml_scalar("/tmp/x/known_hosts"), "/tmp/x/known_hosts");
        assert_eq!(yaml_scalar("sandbox"), "sandbox");
        assert_eq!(yaml_scalar("/tmp/a b: c"), "\"/tmp/a b: c\"");
        assert_eq!(yaml_scalar("-x"), "\"-x\"");
        assert_eq!(yaml_scalar(""), "\"\"");
    }
}
