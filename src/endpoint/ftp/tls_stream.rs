//! The TLS stream under every FTPS control and data connection: tokio-rustls's client stream,
//! which never leaves an encrypted record waiting in its buffer while the connection waits
//! for the server's answer.
//!
//! Why it exists: tokio-rustls accepts a whole write into the TLS session and returns
//! `Ok(n)` even when the socket could not take the record yet (tokio returns `Pending` for a
//! socket that has room whenever the task used up its cooperative budget, as a run of
//! commands on one connection does). The record then goes out only on the next write or
//! flush. suppaftp writes a command and goes on to read the reply without a flush, so the
//! command sat in the buffer, the server waited for it, and the connection stalled until the
//! operation timeout (seen: 1 run in 5 of the FTPS conformance tests stalled 30 s after a
//! `SIZE` or before an `EPSV`). Here a read first sends what is buffered, and so does a
//! write, which keeps request and reply in step whatever the caller does.
//!
//! And under the TLS session, the socket is read through a buffer ([`READ_AHEAD`]): rustls
//! asks the socket for at most 4 KiB at a time, so a GiB downloaded over FTPS cost a quarter
//! of a million `read`s (and a buffer shrunk and grown again after each record).

use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use suppaftp::tokio::{AsyncTlsConnector, TokioTlsStream};
use suppaftp::tokio_rustls::TlsConnector;
use suppaftp::tokio_rustls::client::TlsStream;
use suppaftp::{FtpError, FtpResult};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio::net::TcpStream;

/// The socket read ahead of rustls's 4 KiB reads by this much (as the SSH socket is; writes
/// pass straight through).
const READ_AHEAD: usize = 256 * 1024;

/// Makes [`FtpTlsStream`]s; one per connection, all sharing one client configuration (and so
/// one session cache, for `require_ssl_reuse`).
#[derive(Clone)]
pub(super) struct FtpTlsConnector(pub TlsConnector);

impl std::fmt::Debug for FtpTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FtpTlsConnector")
    }
}

#[async_trait]
impl AsyncTlsConnector for FtpTlsConnector {
    type Stream = FtpTlsStream;

    async fn connect(&self, domain: &str, stream: TcpStream) -> FtpResult<FtpTlsStream> {
        let name = rustls::pki_types::ServerName::try_from(domain.to_owned()).map_err(|e| FtpError::SecureError(e.to_string()))?;
        let stream = BufReader::with_capacity(READ_AHEAD, stream);
        // The text is what `tls::Tls` reads a refused certificate from (as suppaftp's own
        // connector words it).
        let inner = self.0.connect(name, stream).await.map_err(|e| FtpError::SecureError(handshake_failure(&e)))?;
        Ok(FtpTlsStream { inner })
    }
}

/// Why a handshake failed, in words: an answer that is not TLS at all (a plain FTP greeting,
/// on the port of plain FTP or explicit FTPS reached with `tls: implicit`) says so instead of
/// rustls's "received corrupt message of type InvalidContentType".
fn handshake_failure(e: &std::io::Error) -> String {
    let rustls = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match rustls {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            "the server answered in plain text, not TLS (a plain FTP or explicit FTPS port?)".to_string()
        }
        _ => e.to_string(),
    }
}

/// A client TLS stream that sends its buffered records before it reads (see the module doc).
#[derive(Debug)]
pub struct FtpTlsStream {
    inner: TlsStream<BufReader<TcpStream>>,
}

impl FtpTlsStream {
    /// Sends what the session holds. `Pending` leaves the waker registered for the socket.
    fn poll_send_buffered(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.inner.get_ref().1.wants_write() { Pin::new(&mut self.inner).poll_flush(cx) } else { Poll::Ready(Ok(())) }
    }
}

impl AsyncRead for FtpTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        // A reply cannot come before its command has left; a send that cannot go on yet
        // (`Pending`) wakes this task when it can, and the read below is tried meanwhile.
        // A send that failed is left for the next write to report: the read still gets what
        // the server said before it closed (a 421), or the connection's end.
        let _ = this.poll_send_buffered(cx);
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FtpTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_send_buffered(cx))?;
        let written = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        // Sent now if the socket takes it, else before the next read or write; the bytes are
        // taken either way, and a failure is reported by the next write.
        let _ = this.poll_send_buffered(cx);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl TokioTlsStream for FtpTlsStream {
    type InnerStream = TlsStream<BufReader<TcpStream>>;

    /// The socket without TLS (for `CCC`, which wharf does not send): refused while bytes the
    /// server sent are still in the read-ahead buffer, which the socket no longer has.
    fn tcp_stream(self) -> FtpResult<TcpStream> {
        let (tcp, _) = self.inner.into_inner();
        if !tcp.buffer().is_empty() {
            let e = std::io::Error::other("bytes read ahead on the TLS connection would be lost");
            return Err(FtpError::ConnectionError(e));
        }
        Ok(tcp.into_inner())
    }

    fn get_ref(&self) -> &TcpStream {
        self.inner.get_ref().0.get_ref()
    }

    fn mut_ref(&mut self) -> &mut Self::InnerStream {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use suppaftp::tokio::AsyncTlsConnector;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use crate::config::flow::{CertTrust, TlsVersion};
    use crate::config::validate::parse_cert_fingerprint;
    use crate::endpoint::ftp::tls::Tls;

    /// Self-signed for `localhost` and 127.0.0.1, valid until 2126; only for this test.
    const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUZqSRACdpiQ/s9pQCiOW/kMj2YLowCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNTA5MDI1N1oYDzIxMjYxMTEx
MDkwMjU3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ6Fo1qHJK+OUoayngv3DZ3c0kz7ezzjzttg+xr5EsY6nzr3rJx0cRv
K4Xa8RWIHmr2DIv83/XUwgxRh87YQEMKo28wbTAdBgNVHQ4EFgQUF1CTM2KQDVXu
1GDK5625PM6BvUMwHwYDVR0jBBgwFoAUF1CTM2KQDVXu1GDK5625PM6BvUMwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSAAwRQIgMo7kw7uv7nMNzi2UXIDQ2Qy8UIPVmTy0L0G3KsuODNUCIQDy
Q9F93Z7lFNHOFfv/5ZkQsaaSX5E3VLO8gv9IMcycww==
-----END CERTIFICATE-----
";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1uoc836bETdYCOKv
aqSn8iDS/cYsXJd979kIFjz5ZfOhRANCAAQ6Fo1qHJK+OUoayngv3DZ3c0kz7ezz
jzttg+xr5EsY6nzr3rJx0cRvK4Xa8RWIHmr2DIv83/XUwgxRh87YQEMK
-----END PRIVATE KEY-----
";
    const FINGERPRINT: &str = "SHA256:7A:D8:B6:F3:EF:96:4C:92:01:1F:6B:A9:03:B8:EE:16:22:C1:66:F0:54:C4:65:AE:68:8E:61:CA:BE:A7:EB:71";

    /// A TLS server on 127.0.0.1 that answers each line with `ok <line>`.
    async fn echo_server() -> std::net::SocketAddr {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certs = vec![CertificateDer::from_pem_slice(CERT.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = BufReader::new(acceptor.accept(tcp).await.unwrap());
            let mut line = String::new();
            while tls.read_line(&mut line).await.unwrap() > 0 {
                tls.get_mut().write_all(format!("ok {line}").as_bytes()).await.unwrap();
                tls.get_mut().flush().await.unwrap();
                line.clear();
            }
        });
        addr
    }

    /// What stalled FTPS sessions for the operation timeout: a command written while the
    /// task's cooperative budget is spent stays in the TLS buffer (tokio-rustls reports it
    /// written), and reading the reply must send it first.
    #[tokio::test]
    async fn a_command_written_when_the_socket_is_not_ready_goes_out_before_the_reply_is_read() {
        let addr = echo_server().await;
        let trust = CertTrust::Fingerprint(parse_cert_fingerprint(FINGERPRINT).unwrap());
        let tls = Tls::new(&trust, TlsVersion::V1_3).unwrap();
        let stream = tls.connector().connect("localhost", TcpStream::connect(addr).await.unwrap()).await.unwrap();
        let mut stream = BufReader::new(stream);
        for i in 0..3 {
            // Spend the budget, so that the socket write below is refused for now.
            while tokio::task::coop::has_budget_remaining() {
                tokio::task::coop::consume_budget().await;
            }
            stream.get_mut().write_all(format!("NOOP {i}\r\n").as_bytes()).await.unwrap();
            let mut reply = String::new();
            let read = tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut reply)).await;
            assert!(read.is_ok(), "the command never left: no reply within 10 s");
            assert_eq!(reply, format!("ok NOOP {i}\r\n"));
        }
    }
}
