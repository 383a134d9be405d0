//! `wharf trust HOST[:PORT]`: shows an SSH server's host key and records it in a known_hosts
//! file after the user confirmed it (or with `--yes`).
//!
//! The scan and the file handling live in `endpoint::sftp`; this file only talks to the user.
//! A key that differs from the one already recorded is never recorded without `--yes`; with
//! it, the new key replaces the old one's line (the old key is no longer trusted).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};

use super::output::{errln, out, outln};
use crate::endpoint::reach::Given;
use crate::endpoint::sftp::{
    KnownHostsFile, Verdict, add_to_known_hosts, default_known_hosts, known_hosts_name, replace_in_known_hosts, scan_host_key,
};

/// How long to wait for the server's key.
const SCAN_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server: HOST, HOST:PORT or [IPV6]:PORT (port 22 when omitted).
    #[arg(value_name = "HOST[:PORT]")]
    pub target: String,
    /// known_hosts file to record the key in.
    #[arg(long, value_name = "FILE", default_value_os_t = default_known_hosts().unwrap_or_else(|| PathBuf::from(".ssh/known_hosts")))]
    pub known_hosts: PathBuf,
    /// Record without asking, even when another key is already recorded for this host.
    #[arg(long)]
    pub yes: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some((host, port)) = parse_target(&args.target) else {
        errln!("error: {:?} is not HOST, HOST:PORT or [IPV6]:PORT", args.target);
        return Ok(ExitCode::from(super::EXIT_INVALID));
    };
    let file = args.known_hosts;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let scanned = rt.block_on(scan_host_key(Given::Argument("wharf trust"), &host, port, SCAN_TIMEOUT))?;
    let shown = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    outln!("{shown} {} {}", scanned.algorithm, scanned.fingerprint);

    let known = KnownHostsFile::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    match known.check(&host, port, &scanned.key) {
        Verdict::Known { line } => {
            outln!("Already recorded in {} (line {line}).", file.display());
            return Ok(ExitCode::SUCCESS);
        }
        Verdict::Revoked { line } => {
            bail!("this key is marked @revoked in {} (line {line}); not recording it", file.display())
        }
        Verdict::Changed { line } => {
            errln!(
                "WARNING: HOST KEY CHANGED! {} line {line} records a different {} key for {}.\n\
                 Someone may be intercepting the connection, or the server's key was replaced.",
                file.display(),
                scanned.algorithm,
                known_hosts_name(&host, port)
            );
            if !args.yes {
                // `--yes` replaces the line (the old key must not stay trusted), so say that,
                // not "edit the file".
                errln!(
                    "Not recorded. If the change is expected (check the new fingerprint with the partner), run this again with \
                     --yes to replace line {line} of {}.",
                    file.display()
                );
                return Ok(ExitCode::from(1));
            }
            // The old key must not stay trusted beside the new one.
            replace_in_known_hosts(&file, line, &scanned.known_hosts_line).with_context(|| format!("cannot write {}", file.display()))?;
            outln!("Replaced line {line} of {} with the new key of {}.", file.display(), known_hosts_name(&host, port));
            return Ok(ExitCode::SUCCESS);
        }
        Verdict::Unknown => {}
    }
    if !args.yes && !confirm(&format!("Record this key in {}? [y/N] ", file.display()))? {
        outln!("Not recorded.");
        return Ok(ExitCode::from(1));
    }
    add_to_known_hosts(&file, &scanned.known_hosts_line).with_context(|| format!("cannot write {}", file.display()))?;
    outln!("Recorded {} in {}.", known_hosts_name(&host, port), file.display());
    Ok(ExitCode::SUCCESS)
}

/// Asks on stdout, reads one line from stdin; only `y`/`yes` agree (end of input declines).
fn confirm(prompt: &str) -> anyhow::Result<bool> {
    out!("{prompt}");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

/// `host`, `host:port`, `[v6]:port`, `[v6]` or a bare IPv6 address.
fn parse_target(s: &str) -> Option<(String, u16)> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => 22,
            p => p.strip_prefix(':')?.parse().ok()?,
        };
        return (!host.is_empty()).then(|| (host.to_string(), port));
    }
    match s.matches(':').count() {
        0 => (!s.is_empty()).then(|| (s.to_string(), 22)),
        1 => {
            let (host, port) = s.split_once(':')?;
            (!host.is_empty()).then_some(())?;
            Some((host.to_string(), port.parse().ok()?))
        }
        _ => Some((s.to_string(), 22)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("example.com"), Some(("example.com".into(), 22)));
        assert_eq!(parse_target("127.0.0.1:2222"), Some(("127.0.0.1".into(), 2222)));
        assert_eq!(parse_target("[::1]:2222"), Some(("::1".into(), 2222)));
        assert_eq!(parse_target("::1"), Some(("::1".into(), 22)));
        assert_eq!(parse_target("host:notaport"), None);
        assert_eq!(parse_target(":22"), None);
        assert_eq!(parse_target(""), None);
    }
}
