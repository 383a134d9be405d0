//! Builds live endpoints from a flow's endpoint specs, one instance per name per run.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Flow;
use crate::config::flow::EndpointSpec;
use crate::endpoint::ftp::FtpEndpoint;
use crate::endpoint::local::LocalEndpoint;
use crate::endpoint::sftp::SftpEndpoint;
use crate::endpoint::{DynEndpoint, EndpointError, ErrorKind, Op};

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
