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

/// Where a host name was written: what to check when it does not resolve.
#[derive(Debug, Clone, Copy)]
pub enum Given<'a> {
    /// The `host` of the flow's endpoint with this name.
    Endpoint(&'a str),
    /// The argument of this command (`wharf trust HOST`).
    Argument(&'a str),
}

impl std::fmt::Display for Given<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Given::Endpoint(name) => write!(f, "in endpoint `{name}`"),
            Given::Argument(command) => write!(f, "given to `{command}`"),
        }
    }
}

/// The addresses of `host`, written where `given` says; a name that does not resolve is
/// said as such, naming the host and where to check it (a misspelt name stayed "failed to
/// lookup address information" alone).
pub async fn resolve(given: Given<'_>, host: &str, port: u16) -> Result<Vec<SocketAddr>, (ErrorKind, String)> {
    let unresolved = |cause: String| {
        let message = format!(
            "cannot reach {}: the host name does not resolve ({cause}); check the host name `{host}` {given} \
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

/// A TCP connection to `host:port` that could not be made (refused, a network down), said
/// without the `(os error 111)` that tells an operator nothing.
pub fn unreachable(host: &str, port: u16, e: &std::io::Error) -> (ErrorKind, String) {
    (ErrorKind::Transient, format!("cannot reach {}: {}", host_port(host, port), super::local::io_reason(e)))
}

/// A TCP connection to `host:port`, written where `given` says: [`resolve`], then each
/// address in turn.
pub async fn connect(given: Given<'_>, host: &str, port: u16) -> Result<TcpStream, (ErrorKind, String)> {
    let addrs = resolve(given, host, port).await?;
    TcpStream::connect(&addrs[..]).await.map_err(|e| unreachable(host, port, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_does_not_resolve_says_which_to_check() {
        // RFC 2606: `.invalid` never resolves, with or without a network.
        let (kind, message) = connect(Given::Endpoint("partner"), "nosuch.invalid", 22).await.unwrap_err();
        assert_eq!(kind, ErrorKind::Transient);
        assert!(message.starts_with("cannot reach nosuch.invalid:22: the host name does not resolve ("), "{message}");
        assert!(message.contains("check the host name `nosuch.invalid` in endpoint `partner` (or the DNS"), "{message}");
        let (_, message) = connect(Given::Argument("wharf trust"), "nosuch.invalid", 22).await.unwrap_err();
        assert!(message.contains("check the host name `nosuch.invalid` given to `wharf trust` (or the DNS"), "{message}");
        // A refused connection is not taken for a name to check.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (kind, message) = connect(Given::Endpoint("partner"), "127.0.0.1", port).await.unwrap_err();
        assert_eq!(kind, ErrorKind::Transient);
        assert!(message.starts_with(&format!("cannot reach 127.0.0.1:{port}: ")) && !message.contains("host name"), "{message}");
        assert!(!message.contains("os error"), "{message}");
    }
}
