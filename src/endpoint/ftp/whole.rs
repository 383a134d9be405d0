//! Files moved whole (at most a MiB, `Endpoint::read_small` / `write_small`) on one login,
//! in as few round trips as the connection allows.
//!
//! On a plain control connection in EPSV mode, `EPSV` and the transfer command (`RETR`,
//! `STOR`) go out in one write: the server answers `EPSV` with its port, then waits for the
//! data connection to answer the transfer command, so the client connects as soon as it reads
//! the port and the command's reply is already on its way — one round trip per file fewer
//! than suppaftp's `EPSV`, connect, command. Everywhere else (TLS, PASV, active mode) the
//! transfer goes through suppaftp as a stream. Either way every reply is read, so the login
//! stays in step: a transfer command refused before or after its data connection was made,
//! and a download stopped at its limit (the file grew), whose end the server reports as 426
//! or 226.

use std::time::Duration;

use suppaftp::{FtpError, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::connect::{Conn, within};
use super::stream::{self, timed};
use super::{Fail, FtpEndpoint, stalled};
use crate::endpoint::{EntryKind, RemotePath};

/// The replies that end a transfer well.
const DONE: &[Status] = &[Status::ClosingDataConnection, Status::RequestedFileActionOk];
/// The replies that start one.
const STARTED: &[Status] = &[Status::AboutToSend, Status::AlreadyOpen];

/// A data connection asked for with `EPSV` sent in the same write as its command.
enum Opened {
    Data(TcpStream),
    /// The command was refused (its data connection, if made, is closed).
    Refused(FtpError),
    /// `EPSV` was refused (the command's own refusal read too): use the regular way, which
    /// falls back to PASV.
    NoEpsv,
}

impl FtpEndpoint {
    /// `RETR` of `path`, at most `limit` bytes of it: fewer when the file ends first.
    pub(super) async fn fetch_whole(&self, c: &mut Conn, path: &RemotePath, limit: usize) -> Result<Vec<u8>, Fail> {
        let full = c.full(path);
        if c.plain && c.epsv {
            match open(c, &format!("RETR {full}")).await? {
                Opened::Data(mut data) => {
                    let (buf, ended) = read_up_to(&mut data, limit, c.timeout).await?;
                    drop(data);
                    return confirmed(within(c.timeout, c.ftp.read_response_in(DONE)).await, buf, ended);
                }
                Opened::Refused(e) => return Err(self.refused(c, e, path, EntryKind::File).await),
                Opened::NoEpsv => {}
            }
        }
        let (mut data, _) = self.retr(c, path, 0).await?;
        let (buf, ended) = read_up_to(&mut data, limit, c.timeout).await?;
        confirmed(within(c.timeout, data.finish()).await, buf, ended)
    }

    /// [`Endpoint::write_small`](crate::endpoint::Endpoint::write_small) on one connection:
    /// `STOR`, then `SIZE` (the size the server stored) where the server has it.
    pub(super) async fn store_whole(&self, c: &mut Conn, path: &RemotePath, bytes: &[u8]) -> Result<Option<u64>, Fail> {
        let full = c.full(path);
        let mut stored = false;
        if c.plain && c.epsv {
            match open(c, &format!("STOR {full}")).await? {
                Opened::Data(mut data) => {
                    stream::send(&mut data, bytes, c.timeout).await?;
                    timed(c.timeout, data.shutdown()).await?;
                    drop(data);
                    within(c.timeout, c.ftp.read_response_in(DONE)).await?;
                    stored = true;
                }
                Opened::Refused(e) => return Err(self.refused(c, e, &path.parent(), EntryKind::Dir).await),
                Opened::NoEpsv => {}
            }
        }
        if !stored {
            let mut upload = self.stor(c, path).await?;
            stream::send(&mut upload, bytes, c.timeout).await?;
            stream::close_upload(upload, c.timeout).await?;
        }
        if !c.feat.size {
            return Ok(None);
        }
        super::size_on(c, &full).await
    }
}

/// Sends `EPSV` and `cmd` in one write and opens the data connection the reply to `EPSV`
/// names (on the control connection's address, as EPSV means).
async fn open(c: &mut Conn, cmd: &str) -> Result<Opened, Fail> {
    c.send_pipelined(&["EPSV", cmd]).await?;
    let port = match within(c.timeout, c.ftp.read_response_in(&[Status::ExtendedPassiveMode])).await {
        Ok(reply) => epsv_port(&String::from_utf8_lossy(&reply.body)),
        Err(FtpError::UnexpectedResponse(_)) => {
            // The command's own reply ("use PASV first") keeps the login in step.
            return match within(c.timeout, c.ftp.read_response_in(STARTED)).await {
                Ok(_) => Err(Fail::Lost(crate::endpoint::ErrorKind::Protocol, format!("the server refused EPSV but accepted `{cmd}`"))),
                Err(FtpError::UnexpectedResponse(_)) => Ok(Opened::NoEpsv),
                Err(e) => Err(e.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let Some(port) = port else {
        return Err(Fail::Lost(crate::endpoint::ErrorKind::Protocol, "the server's EPSV reply names no port".to_string()));
    };
    let peer = c.ftp.get_ref().await.peer_addr().map_err(Fail::Io)?;
    let target = std::net::SocketAddr::new(peer.ip(), port);
    let data = match tokio::time::timeout(c.timeout, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            // A server that refuses the command at once may close its port before the client
            // connects: the command's reply says so. Otherwise the connect failure stands.
            let failure = Fail::Io(std::io::Error::new(e.kind(), format!("cannot open the data connection to {target}: {e}")));
            return match within(c.timeout.min(Duration::from_secs(10)), c.ftp.read_response_in(STARTED)).await {
                Err(e @ FtpError::UnexpectedResponse(_)) => Ok(Opened::Refused(e)),
                _ => Err(failure),
            };
        }
        Err(_) => return Err(stalled(c.timeout)),
    };
    let _ = data.set_nodelay(true);
    match within(c.timeout, c.ftp.read_response_in(STARTED)).await {
        Ok(_) => Ok(Opened::Data(data)),
        Err(e @ FtpError::UnexpectedResponse(_)) => Ok(Opened::Refused(e)),
        Err(e) => Err(e.into()),
    }
}

/// The port in an EPSV reply: `229 Entering Extended Passive Mode (|||6446|)`.
fn epsv_port(reply: &str) -> Option<u16> {
    let inside = &reply[reply.find('(')? + 1..];
    let inside = &inside[..inside.find(')')?];
    let mut fields = inside.split(inside.chars().next()?);
    // `(|||port|)`: empty, empty, empty, port, empty.
    fields.nth(3)?.parse().ok()
}

/// Reads until `limit` bytes or the end of the data; the bytes, and whether the end came.
async fn read_up_to<R: AsyncRead + Unpin>(data: &mut R, limit: usize, timeout: Duration) -> Result<(Vec<u8>, bool), Fail> {
    let mut buf = vec![0u8; limit];
    let mut n = 0;
    while n < limit {
        match timed(timeout, data.read(&mut buf[n..])).await? {
            0 => {
                buf.truncate(n);
                return Ok((buf, true));
            }
            got => n += got,
        }
    }
    Ok((buf, false))
}

/// A download's bytes, given the reply that ended it: a download that `ended` must be
/// confirmed; one stopped at its limit is over whatever the server says (426 or 226), and
/// the login is in step either way.
fn confirmed<T>(reply: Result<T, FtpError>, buf: Vec<u8>, ended: bool) -> Result<Vec<u8>, Fail> {
    match reply {
        Ok(_) => Ok(buf),
        Err(FtpError::UnexpectedResponse(_)) if !ended => Ok(buf),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::epsv_port;

    #[test]
    fn the_port_of_an_epsv_reply() {
        assert_eq!(epsv_port("229 Entering Extended Passive Mode (|||6446|)"), Some(6446));
        assert_eq!(epsv_port("229 Entering Extended Passive Mode (!!!20401!)."), Some(20401));
        assert_eq!(epsv_port("229 Entering Extended Passive Mode"), None);
        assert_eq!(epsv_port("229 (|||x|)"), None);
    }
}
