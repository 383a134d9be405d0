//! Builds live endpoints from a flow's endpoint specs, one instance per name per run.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Flow;
use crate::config::flow::EndpointSpec;
use crate::endpoint::ftp::FtpEndpoint;
use crate::endpoint::local::LocalEndpoint;
use crate::endpoint::sftp::SftpEndpoint;
use crate::endpoint::{DynEndpoint, EndpointError, ErrorKind, Op};

/// How many files of `flow` may be in flight at once: its `concurrency`. One at a time with
/// `on_error: stop` (files in order), and when the identity leaves out the path (content,
/// or size and time): two files of one run may then be the same file, and the second must
/// see the first one delivered.
///
/// With `streams` (some file of the run is bigger than [`stage::WHOLE_MAX`](super::stage::WHOLE_MAX)),
/// no more than any FTP endpoint it uses has logins (`max_connections`): such a file holds a
/// login for its whole transfer, however long, and a file waiting for a login behind it
/// could wait longer than any timeout. Files of at most that size hold a login for one
/// bounded operation at a time, so more of them than logins may be in flight: they take
/// turns (FTP pull of 5000 × 4 KiB with 4 logins, 16 files in flight instead of 4: about
/// 25 % faster, the logins no longer idle while their files are written and recorded).
pub fn concurrency(flow: &Flow, names: &[&str], streams: bool) -> usize {
    let id = flow.source.identity;
    if flow.on_error == crate::config::flow::OnError::Stop || !id.path || id.sha256 {
        return 1;
    }
    if !streams {
        return flow.concurrency.max(1);
    }
    let ftp_logins = names.iter().filter_map(|n| match flow.endpoints.get(*n) {
        Some(EndpointSpec::Ftp(s)) => Some(s.max_connections),
        _ => None,
    });
    ftp_logins.fold(flow.concurrency, usize::min).max(1)
}

/// Opens (and for servers, connects and authenticates) every endpoint in `names`, so an
/// unreachable server, a refused login or an untrusted host key fails before any file is
/// touched.
pub async fn open_all(flow: &Flow, names: &[&str]) -> Result<BTreeMap<String, DynEndpoint>, EndpointError> {
    let mut out: BTreeMap<String, DynEndpoint> = BTreeMap::new();
    for &name in names {
        if out.contains_key(name) {
            continue;
        }
        let spec = flow.endpoints.get(name).ok_or_else(|| {
            // Invariant kept by validation: every referenced endpoint exists. Report, don't panic.
            EndpointError::new(ErrorKind::Config, Op::Connect, name, None, "endpoint is not defined in the flow")
        })?;
        let ep: DynEndpoint = match spec {
            EndpointSpec::Local { root } => Arc::new(LocalEndpoint::new(root.clone())),
            EndpointSpec::Sftp(s) => {
                let ep = SftpEndpoint::new(s.clone());
                ep.connect_now().await?;
                Arc::new(ep)
            }
            EndpointSpec::Ftp(s) => {
                let ep = FtpEndpoint::new(s.clone());
                ep.connect_now().await?;
                Arc::new(ep)
            }
        };
        out.insert(name.to_string(), ep);
    }
    Ok(out)
}
