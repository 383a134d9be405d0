//! Reaching a server over TCP, for SFTP and FTP alike (and `wharf trust`'s scan): the host
//! name is resolved first, so a name that does not resolve is told as such, with what to
//! check, and a connection that cannot be made is said one way for every protocol.
//!
//! Both are passing trouble (`Transient`: the DNS or the network may be down) and retried as
//! such. This module speaks no protocol and keeps no connection.

use std::net::SocketAddr;

use tokio::net::TcpStream;

use super::ErrorKind;

/// `host:port`, an IPv6 address in brackets (`[::1]:22`).
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The addresses of `host`, the `host` of the flow's endpoint `endpoint`; a name that does
/// not resolve is said as such, naming the host and the endpoint to check (a misspelt name
/// stayed "failed to lookup address information" alone).
pub async fn resolve(endpoint: &str, host: &str, port: u16) -> Result<Vec<SocketAddr>, (ErrorKind, String)> {
    let unresolved = |cause: String| {
        let message = format!(
            "cannot reach {}: the host name does not resolve ({cause}); check the host name `{host}` in endpoint `{endpoint}` \
             (or the DNS, if the name is right)",
            host_port(host, port)
        );
        (ErrorKind::Transient, message)
    };
    match tokio::net::lookup_host((host, port)).await {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() { Err(unresolved("no address".into())) } else { Ok(addrs) }
        }
        Err(e) => Err(unresolved(e.to_string())),
    }
}

/// A TCP connection to `host:port` that could not be made (refused, a network down).
pub fn unreachable(host: &str, port: u16, e: &std::io::Error) -> (ErrorKind, String) {
    (ErrorKind::Transient, format!("cannot reach {}: {e}", host_port(host, port)))
}

/// A TCP connection to `host:port` of endpoint `endpoint`: [`resolve`], then each address
/// in turn.
pub async fn connect(endpoint: &str, host: &str, port: u16) -> Result<TcpStream, (ErrorKind, String)> {
    let addrs = resolve(endpoint, host, port).await?;
    TcpStream::connect(&addrs[..]).await.map_err(|e| unreachable(host, port, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_does_not_resolve_says_which_to_check() {
        // RFC 2606: `.invalid` never resolves, with or without a network.
        let (kind, message) = connect("partner", "nosuch.invalid", 22).await.unwrap_err();
        assert_eq!(kind, ErrorKind::Transient);
        assert!(message.starts_with("cannot reach nosuch.invalid:22: the host name does not resolve ("), "{message}");
        assert!(message.contains("check the host name `nosuch.invalid` in endpoint `partner` (or the DNS"), "{message}");
        // A refused connection is not taken for a name to check.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (kind, message) = connect("partner", "127.0.0.1", port).await.unwrap_err();
        assert_eq!(kind, ErrorKind::Transient);
        assert!(message.starts_with(&format!("cannot reach 127.0.0.1:{port}: ")) && !message.contains("host name"), "{message}");
    }
}
