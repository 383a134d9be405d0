//! Telling a wrong port from a broken server: what a server said first, when it is not the
//! protocol the flow expects (an SFTP endpoint pointed at an FTP port, or the reverse).
//!
//! Owns the recognition, and [`Sniff`], the stream under the SSH client that applies it. SSH
//! and FTP servers both speak first (`SSH-2.0-…`, `220 …`), so the first line names the
//! protocol; a recognised mismatch becomes a `Config` error that says which `type` or port
//! was meant, instead of a timeout or "invalid syntax".

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much of what the server sends first is kept for [`not_ssh`].
const KEPT: usize = 512;

/// What a server that is not an SSH server said first, as a sentence for the error, or
/// `None` when `first` is empty, holds an SSH identification line, or is not recognisably
/// another protocol (RFC 4253 lets a server send other lines before its `SSH-` line).
pub fn not_ssh(first: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(first);
    if text.lines().any(|l| l.starts_with("SSH-")) {
        return None;
    }
    let line = first_line(&text)?;
    let b = line.as_bytes();
    let reply_code = b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && matches!(b[3], b' ' | b'-');
    let lower = line.to_ascii_lowercase();
    let guess = if reply_code && lower.contains("ftp") {
        "an FTP server? (`type: ftp`, or the SSH port, usually 22)"
    } else if reply_code && (lower.contains("smtp") || lower.contains("mail")) {
        "a mail server? (check `port`: SSH is usually on 22)"
    } else if reply_code {
        "an FTP or mail server? (`type: ftp`, or the SSH port, usually 22)"
    } else if line.starts_with("HTTP/") {
        "a web server? (check `port`: SSH is usually on 22)"
    } else {
        return None;
    };
    Some(format!("the server greeted with `{line}`, which is not SSH: {guess}"))
}

/// The same for an FTP endpoint: `Some` when the server introduced itself as an SSH server.
pub fn not_ftp(first: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(first);
    let line = first_line(&text)?;
    line.starts_with("SSH-")
        .then(|| format!("the server greeted with `{line}`, which is not FTP: an SSH server? (`type: sftp`, or the FTP port, usually 21)"))
}

/// The first line, trimmed, without control characters (it is the server's text, shown in a
/// terminal) and cut to 80 characters; `None` when there is none yet.
fn first_line(text: &str) -> Option<String> {
    let line: String = text.lines().next()?.trim().chars().filter(|c| !c.is_control()).take(80).collect();
    (!line.is_empty()).then_some(line)
}

/// The stream under an SSH client: keeps a copy of the first [`KEPT`] bytes read through it
/// (for [`not_ssh`] after a failed handshake), and ends the connection with an error as soon
/// as the first line is another protocol's greeting (else the client would wait for an `SSH-`
/// line until its timeout, while the server waits for a command of its own protocol).
/// Otherwise it is the stream it wraps.
pub struct Sniff<S> {
    inner: S,
    kept: Arc<Mutex<Vec<u8>>>,
    first_line_checked: bool,
}

impl<S> Sniff<S> {
    /// Wraps `inner`; the bytes read go to `kept` too, up to [`KEPT`].
    pub fn new(inner: S, kept: Arc<Mutex<Vec<u8>>>) -> Sniff<S> {
        Sniff { inner, kept, first_line_checked: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Sniff<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        // Once the first line is in, what `not_ssh` says is settled: nothing more to keep.
        if this.first_line_checked {
            return res;
        }
        if let Ok(mut kept) = this.kept.lock() {
            let new = &buf.filled()[before..];
            let take = new.len().min(KEPT.saturating_sub(kept.len()));
            kept.extend_from_slice(&new[..take]);
            if kept.contains(&b'\n') || kept.len() >= KEPT {
                this.first_line_checked = true;
                if not_ssh(&kept).is_some() {
                    return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not an SSH server")));
                }
            }
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Sniff<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::{not_ftp, not_ssh};

    #[test]
    fn an_ftp_greeting_is_not_ssh_and_an_ssh_one_is_not_ftp() {
        let ftp = not_ssh(b"220 (vsFTPd 3.0.3)\r\n").unwrap();
        assert!(ftp.contains("`220 (vsFTPd 3.0.3)`") && ftp.contains("type: ftp"), "{ftp}");
        assert!(not_ssh(b"220-Welcome\r\n220 ready\r\n").unwrap().contains("type: ftp"));
        assert!(not_ssh(b"220 mx.example.com ESMTP Postfix\r\n").unwrap().contains("a mail server"));
        assert!(not_ssh(b"HTTP/1.1 400 Bad Request\r\n").unwrap().contains("web server"));
        let ssh = not_ftp(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n").unwrap();
        assert!(ssh.contains("`SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3`") && ssh.contains("type: sftp"), "{ssh}");
    }

    #[test]
    fn ssh_and_what_may_come_before_it_are_left_alone() {
        assert_eq!(not_ssh(b"SSH-2.0-OpenSSH_9.2p1\r\n"), None);
        // RFC 4253 4.2: other lines may come before the identification line.
        assert_eq!(not_ssh(b"Authorised users only\r\nSSH-2.0-X\r\n"), None);
        assert_eq!(not_ssh(b"Authorised users only\r\n"), None);
        assert_eq!(not_ssh(b""), None);
        assert_eq!(not_ftp(b"220 ready\r\n"), None);
        assert_eq!(not_ftp(b""), None);
    }

    #[test]
    fn the_servers_words_are_shown_without_control_characters() {
        let shown = not_ssh(b"220 evil\x1b[2J ftp\r\n").unwrap();
        assert!(shown.contains("`220 evil[2J ftp`"), "{shown}");
    }
}
