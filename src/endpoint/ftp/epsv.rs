//! A data connection asked for with `EPSV` in the same write as its transfer command (`RETR`,
//! `STOR`), on a plain control connection: the server answers `EPSV` with its port, then
//! waits for the data connection to answer the transfer command, so the client connects as
//! soon as it reads the port and the command's reply is already on its way — one round trip
//! per file fewer than suppaftp's `EPSV`, connect, command. Questions about the file (`MDTM`,
//! `SIZE`, `REST`: `super::opened`) ride in the same write, between the two, as curl sends
//! its `SIZE` between `EPSV` and `RETR`.
//!
//! Every reply is read, whatever happens, so the login stays in step: a command refused before
//! or after its data connection was made, and `EPSV` itself refused (then the caller takes
//! suppaftp's way, which falls back to PASV).

use std::time::Duration;

use suppaftp::types::Response;
use suppaftp::{FtpError, FtpResult, Status};
use tokio::net::TcpStream;

use super::connect::{Conn, checked, within};
use super::{Fail, stalled};
use crate::endpoint::ErrorKind;

/// The replies that end a transfer well.
pub(super) const DONE: &[Status] = &[Status::ClosingDataConnection, Status::RequestedFileActionOk];
/// The replies that start one.
const STARTED: &[Status] = &[Status::AboutToSend, Status::AlreadyOpen];

/// What came of `EPSV` and a transfer command sent in one write.
pub(super) enum Opened {
    Data(TcpStream),
    /// The command was refused (its data connection, if made, is closed).
    Refused(FtpError),
    /// `EPSV` was refused (the command's own refusal read too): use the regular way, which
    /// falls back to PASV.
    NoEpsv,
}

/// Sends `EPSV`, `asks` and `cmd` in one write and opens the data connection the reply to
/// `EPSV` names (on the control connection's address, as EPSV means). Also returns the
/// replies to `asks`, one each, in order (a refusal is an `Err` there, not a failure).
pub(super) async fn open(c: &mut Conn, asks: &[(String, &[Status])], cmd: &str) -> Result<(Opened, Vec<FtpResult<Response>>), Fail> {
    let lines: Vec<&str> = std::iter::once("EPSV").chain(asks.iter().map(|(ask, _)| ask.as_str())).chain([cmd]).collect();
    c.send_pipelined(&lines).await?;
    let port = match within(c.timeout, c.ftp.read_response_in(&[Status::ExtendedPassiveMode])).await {
        Ok(reply) => epsv_port(&String::from_utf8_lossy(&reply.body)),
        Err(refusal @ FtpError::UnexpectedResponse(_)) => {
            // A server that ends the session with its refusal (vsftpd's `500 OOPS` when no
            // passive port is free) closes the connection on the replies still to come: its
            // own words are the error, and the caller finds the connection closed.
            let Ok(answers) = answers(c, asks).await else { return Err(refusal.into()) };
            // The command's own reply ("use PASV first") keeps the login in step.
            return match within(c.timeout, c.ftp.read_response_in(STARTED)).await {
                Ok(_) => Err(Fail::Lost(ErrorKind::Protocol, format!("the server refused EPSV but accepted `{cmd}`"))),
                Err(FtpError::UnexpectedResponse(_)) => Ok((Opened::NoEpsv, answers)),
                Err(_) => Err(refusal.into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    let Some(port) = port else {
        return Err(Fail::Lost(ErrorKind::Protocol, "the server's EPSV reply names no port".to_string()));
    };
    let peer = c.ftp.get_ref().await.peer_addr().map_err(Fail::Io)?;
    let target = std::net::SocketAddr::new(peer.ip(), port);
    // Connected before the questions' replies are read: the server answers them while the
    // connection is made (its `RETR` waits for it), so they cost no wait of their own.
    let connected = tokio::time::timeout(c.timeout, TcpStream::connect(target)).await;
    let answers = answers(c, asks).await?;
    let data = match connected {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            // A server that refuses the command at once may close its port before the client
            // connects: the command's reply says so. Otherwise the connect failure stands.
            let failure = Fail::Io(std::io::Error::new(e.kind(), format!("cannot open the data connection to {target}: {e}")));
            return match within(c.timeout.min(Duration::from_secs(10)), c.ftp.read_response_in(STARTED)).await {
                Err(e @ FtpError::UnexpectedResponse(_)) => Ok((Opened::Refused(e), answers)),
                _ => Err(failure),
            };
        }
        Err(_) => return Err(stalled(c.timeout)),
    };
    let _ = data.set_nodelay(true);
    match within(c.timeout, c.ftp.read_response_in(STARTED)).await {
        Ok(_) => Ok((Opened::Data(data), answers)),
        Err(e @ FtpError::UnexpectedResponse(_)) => Ok((Opened::Refused(e), answers)),
        Err(e) => Err(e.into()),
    }
}

/// The replies to `asks`, one each, in order: a refusal is an `Err` of its own, any other
/// failure (the connection is out of step) the outer one.
async fn answers(c: &mut Conn, asks: &[(String, &[Status])]) -> Result<Vec<FtpResult<Response>>, Fail> {
    let mut answers = Vec::with_capacity(asks.len());
    for (_, expected) in asks {
        answers.push(checked(within(c.timeout, c.ftp.read_response_in(expected)).await)?);
    }
    Ok(answers)
}

/// The port in an EPSV reply: `229 Entering Extended Passive Mode (|||6446|)`.
fn epsv_port(reply: &str) -> Option<u16> {
    let inside = &reply[reply.find('(')? + 1..];
    let inside = &inside[..inside.find(')')?];
    let mut fields = inside.split(inside.chars().next()?);
    // `(|||port|)`: empty, empty, empty, port, empty.
    fields.nth(3)?.parse().ok()
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
