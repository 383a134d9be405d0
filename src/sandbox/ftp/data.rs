//! The sandbox FTP server's data connections: passive listeners (`PASV`/`EPSV`) and moving
//! bytes between a data connection and a file or listing.
//!
//! Owns the rules a data connection lives by: it is accepted only from the control
//! connection's own address (no third party can take a transfer), within
//! [`ACCEPT_TIMEOUT`], and every read or write on it that stalls for [`STALL_TIMEOUT`] ends
//! the transfer. Active mode (`PORT`/`EPRT`) is not offered.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to open the data connection after the command.
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest one read or write on a data connection may take.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes moved per read: large enough that loopback transfers are not bound by syscalls.
const CHUNK: usize = 256 * 1024;

/// A passive data port, opened by `PASV`/`EPSV` and used by the next transfer.
pub struct Passive {
    listener: TcpListener,
}

impl Passive {
    /// A new listener on `ip` (the control connection's local address), any free port.
    pub async fn open(ip: IpAddr) -> io::Result<Passive> {
        Ok(Passive { listener: TcpListener::bind(SocketAddr::new(ip, 0)).await? })
    }

    pub fn addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The client's data connection: the first one from `client` (connections from anywhere
    /// else are closed at once), within [`ACCEPT_TIMEOUT`].
    pub async fn accept(self, client: IpAddr) -> io::Result<TcpStream> {
        let wait = async {
            loop {
                let (socket, peer) = self.listener.accept().await?;
                if peer.ip() == client {
                    let _ = socket.set_nodelay(true);
                    return Ok(socket);
                }
                tracing::warn!(%peer, expected = %client, "Refused a data connection from another address.");
            }
        };
        match tokio::time::timeout(ACCEPT_TIMEOUT, wait).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no data connection was opened")),
        }
    }
}

/// Which side of a transfer failed: the data connection (the client's side) or the file.
#[derive(Debug)]
pub enum PumpError {
    Connection(io::Error),
    File(io::Error),
}

/// Copies `from` to `to` until `from` ends, then flushes `to`. `from_is_file` says which side
/// an error belongs to.
pub async fn pump<R, W>(mut from: R, mut to: W, from_is_file: bool) -> Result<u64, PumpError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    type Side = fn(io::Error) -> PumpError;
    let (read_err, write_err): (Side, Side) =
        if from_is_file { (PumpError::File, PumpError::Connection) } else { (PumpError::Connection, PumpError::File) };
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = within(from.read(&mut buf)).await.map_err(read_err)?;
        if n == 0 {
            break;
        }
        within(to.write_all(&buf[..n])).await.map_err(write_err)?;
        total += n as u64;
    }
    within(to.flush()).await.map_err(write_err)?;
    Ok(total)
}

/// Sends `bytes` (a listing) and closes the connection.
pub async fn send(mut data: TcpStream, bytes: &[u8]) -> io::Result<()> {
    within(data.write_all(bytes)).await?;
    within(data.shutdown()).await
}

async fn within<T>(f: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(STALL_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("stalled for {} s", STALL_TIMEOUT.as_secs()))),
    }
}
