//! The sandbox's FTP server: plain FTP (RFC 959 with EPSV, MLSD/MLST, SIZE, MDTM, MFMT and
//! REST STREAM) over the same served folder and login as the SFTP side.
//!
//! Written here rather than taken from a library: the maintained Rust FTP server (libunftp)
//! would add about fifty crates for what the sandbox needs, which is a few hundred lines
//! (docs/architecture.md). Passive mode only, no TLS: it listens on loopback addresses for
//! trying flows, not for partners. The pieces: `command.rs` (reading a command line),
//! `session.rs` (one control connection), `data.rs` (passive data connections),
//! `listing.rs` (MLSD/LIST lines and times).

mod command;
mod data;
mod listing;
mod session;

use std::sync::Arc;

use tokio::net::TcpListener;

use super::Shared;
use super::listen::Server;

/// Starts the FTP server on `listener` (already bound).
pub(super) fn start(listener: TcpListener, shared: Arc<Shared>) -> std::io::Result<Server> {
    Server::start(listener, "ftp", move |socket, peer, stopped| session::serve(socket, peer, shared.clone(), stopped))
}

/// One reply: a code and its text, on one line or several (`211-…` … `211 End`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    first: String,
    /// Lines between the first and the last, sent with a leading space.
    middle: Vec<String>,
    last: Option<String>,
}

impl Reply {
    fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply { code, first: text.into(), middle: Vec::new(), last: None }
    }

    fn multi<I, S>(code: u16, first: impl Into<String>, middle: I, last: &str) -> Reply
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply { code, first: first.into(), middle: middle.into_iter().map(Into::into).collect(), last: Some(last.to_string()) }
    }

    /// As sent: CRLF line ends; a line break inside a text (never expected) becomes a space,
    /// so a reply cannot be split into two by what it quotes.
    fn wire(&self) -> String {
        let clean = |s: &str| s.replace(['\r', '\n'], " ");
        match &self.last {
            None => format!("{} {}\r\n", self.code, clean(&self.first)),
            Some(last) => {
                let mut out = format!("{}-{}\r\n", self.code, clean(&self.first));
                for line in &self.middle {
                    out.push_str(&format!(" {}\r\n", clean(line)));
                }
                out.push_str(&format!("{} {}\r\n", self.code, clean(last)));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_on_the_wire() {
        assert_eq!(Reply::new(220, "ready").wire(), "220 ready\r\n");
        assert_eq!(Reply::multi(211, "Features:", ["EPSV", "MLSD"], "End").wire(), "211-Features:\r\n EPSV\r\n MLSD\r\n211 End\r\n");
        assert_eq!(Reply::new(550, "/a\r\n230 b: no").wire(), "550 /a  230 b: no\r\n");
    }
}
