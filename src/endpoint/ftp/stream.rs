//! Transfers in progress: a download ([`FtpRead`]) and an upload ([`FtpWrite`]), each on a
//! connection of its own from the pool; and how a download starts ([`Download`]), with the
//! questions that say which file it opened (`super::opened`).
//!
//! Owns the rule that a transfer counts only when the server confirmed it: a download ends
//! (`Ok(0)`) only after the 226 was read, an upload is stored only when `finish` read it. Each
//! read or written piece has a stall timeout. A transfer that fails or is abandoned closes its
//! connection instead of returning it to the pool.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use suppaftp::tokio::TransferStream;
use suppaftp::{FtpError, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::connect::{Conn, reply_text, within};
use super::epsv::{self, DONE, Opened};
use super::opened::{self, Facts};
use super::pool::Lease;
use super::tls_stream::FtpTlsStream;
use super::{Fail, FtpEndpoint, Inner, WRITE_PIECE, stalled};
use crate::endpoint::{EndpointError, Entry, EntryKind, Op, ReadStream, RemotePath, WriteStream};

/// A download's data connection: suppaftp's, or one opened beside it in the same write as its
/// `RETR` (`super::epsv`), whose end is read here.
pub(super) enum Download {
    Transfer(TransferStream<FtpTlsStream>),
    Socket(TcpStream),
}

impl Download {
    /// Closes the data connection and reads the server's reply to the transfer on `c`, the
    /// connection it was started on.
    pub async fn finish(self, c: &mut Conn) -> Result<(), FtpError> {
        match self {
            Download::Transfer(data) => within(c.timeout, data.finish()).await,
            Download::Socket(data) => {
                drop(data);
                within(c.timeout, c.ftp.read_response_in(DONE)).await.map(drop)
            }
        }
    }
}

impl AsyncRead for Download {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Download::Transfer(data) => Pin::new(data).poll_read(cx, buf),
            Download::Socket(data) => Pin::new(data).poll_read(cx, buf),
        }
    }
}

impl FtpEndpoint {
    /// Starts downloading `path` from `offset`: on a plain connection in EPSV mode with the
    /// questions that say which file it opened (its time; its size too with `size`) and any
    /// `REST` in the same write as `EPSV` and `RETR`. The data connection, how many of its
    /// bytes to skip (a server that refused `REST` sends the file from its start), and what
    /// the server said of the file.
    pub(super) async fn start_download(
        &self,
        c: &mut Conn,
        path: &RemotePath,
        offset: u64,
        size: bool,
    ) -> Result<(Download, u64, Facts), Fail> {
        if !(c.plain && c.epsv) {
            // suppaftp's way (TLS, PASV, active mode): nothing asked (`opened::describes`).
            let (data, skip) = self.retr(c, path, offset).await?;
            return Ok((Download::Transfer(data), skip, Facts::default()));
        }
        let full = c.full(path);
        let asks = opened::asks(c, &full, size);
        let mut commands = asks.commands.clone();
        if offset > 0 {
            // Right before the RETR, as it must be.
            commands.push((format!("REST {offset}"), &[Status::RequestFilePending]));
        }
        let (data, replies) = epsv::open(c, &commands, &format!("RETR {full}")).await?;
        let facts = asks.facts(&replies);
        match data {
            Opened::Data(data) => {
                let skip = match replies.get(asks.commands.len()) {
                    Some(Err(FtpError::UnexpectedResponse(r))) => {
                        tracing::info!(endpoint = %self.inner.label, path = %path, reply = %reply_text(r), "REST refused; reading from the start.");
                        offset
                    }
                    _ => 0,
                };
                Ok((Download::Socket(data), skip, facts))
            }
            Opened::Refused(e) => Err(self.refused(c, e, path, EntryKind::File).await),
            Opened::NoEpsv => {
                let (data, skip) = self.retr(c, path, offset).await?;
                Ok((Download::Transfer(data), skip, facts))
            }
        }
    }
}

/// A download. The file is complete only when the server confirmed the transfer (226), which
/// is read when the data runs out: `read` returns `Ok(0)` only after that.
pub(super) struct FtpRead {
    pub(super) data: Option<Download>,
    /// The connection, returned to the pool after a confirmed transfer, closed otherwise.
    pub(super) lease: Option<Lease>,
    /// Bytes still to drop from the start (a server that refused REST).
    pub(super) skip: u64,
    pub(super) timeout: Duration,
    pub(super) inner: Arc<Inner>,
    pub(super) path: RemotePath,
    /// The file opened, as the server described it in the same write as the `RETR`.
    pub(super) opened: Option<Entry>,
}

impl FtpRead {
    async fn fail(&mut self, fail: Fail) -> EndpointError {
        self.data = None;
        let err = self.inner.stream_err(Op::Read, &self.path, self.lease.as_deref_mut(), fail).await;
        self.lease = None;
        err
    }
}

#[async_trait]
impl ReadStream for FtpRead {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError> {
        loop {
            let Some(data) = self.data.as_mut() else { return Ok(0) };
            let n = match timed(self.timeout, data.read(buf)).await {
                Ok(n) => n,
                Err(f) => return Err(self.fail(f).await),
            };
            if n == 0 {
                // Invariant: the lease is there as long as the data connection is.
                if let (Some(data), Some(lease)) = (self.data.take(), self.lease.as_mut())
                    && let Err(e) = data.finish(lease).await
                {
                    return Err(self.fail(e.into()).await);
                }
                if let Some(lease) = self.lease.take() {
                    lease.release();
                }
                return Ok(0);
            }
            self.inner.pool.moved();
            if self.skip == 0 {
                return Ok(n);
            }
            let dropped = usize::try_from(self.skip).unwrap_or(usize::MAX).min(n);
            self.skip -= dropped as u64;
            if dropped < n {
                buf.copy_within(dropped..n, 0);
                return Ok(n - dropped);
            }
        }
    }

    fn opened(&self) -> Option<&Entry> {
        self.opened.as_ref()
    }
}

/// An upload. Stored only when [`finish`](WriteStream::finish) read the server's 226.
pub(super) struct FtpWrite {
    pub(super) data: TransferStream<FtpTlsStream>,
    pub(super) lease: Lease,
    pub(super) timeout: Duration,
    pub(super) inner: Arc<Inner>,
    pub(super) path: RemotePath,
}

#[async_trait]
impl WriteStream for FtpWrite {
    async fn write_all(&mut self, buf: &[u8]) -> Result<(), EndpointError> {
        if let Err(f) = send(&mut self.data, buf, self.timeout).await {
            let f = why_the_upload_failed(&mut self.lease, f).await;
            return Err(self.inner.stream_err(Op::Write, &self.path, Some(&mut self.lease), f).await);
        }
        self.inner.pool.moved();
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), EndpointError> {
        let FtpWrite { data, mut lease, timeout, inner, path } = *self;
        match close_upload(data, timeout).await {
            Ok(()) => {
                lease.release();
                Ok(())
            }
            Err(f) => Err(inner.stream_err(Op::Write, &path, Some(&mut lease), f).await),
        }
    }
}

/// Writes `buf` to an upload's data connection, each piece within `timeout`.
pub(super) async fn send<W: AsyncWrite + Unpin>(data: &mut W, buf: &[u8], timeout: Duration) -> Result<(), Fail> {
    for piece in buf.chunks(WRITE_PIECE) {
        timed(timeout, data.write_all(piece)).await?;
    }
    Ok(())
}

/// How long the server's reply is waited for after an upload's data connection failed.
const REPLY_AFTER_FAILURE: Duration = Duration::from_secs(2);

/// `fail`, an upload's data connection failing while it was sent, as the server explains it
/// on the control connection `c` when it does (vsftpd: `451 Failure writing to local file.`;
/// other servers say `452` of a full disk): that reply, read within a short wait, stands for
/// the bare reset, so the error quotes the server and its kind follows the reply code (452:
/// `NoSpace`). No reply in time, or a stall: `fail` as it was.
pub(super) async fn why_the_upload_failed(c: &mut Conn, fail: Fail) -> Fail {
    if !matches!(fail, Fail::Io(_)) {
        return fail;
    }
    match tokio::time::timeout(REPLY_AFTER_FAILURE.min(c.timeout), c.ftp.read_response_in(DONE)).await {
        Ok(Err(e @ FtpError::UnexpectedResponse(_))) => Fail::Ftp(e),
        _ => fail,
    }
}

/// Ends an upload: what is buffered goes out, closing the data connection ends the file, and
/// the 226 on the control connection says the server stored all of it.
pub(super) async fn close_upload(mut data: TransferStream<FtpTlsStream>, timeout: Duration) -> Result<(), Fail> {
    timed(timeout, data.flush()).await?;
    within(timeout, data.finish()).await.map_err(Fail::from)
}

/// One step on a data connection, within the stall timeout.
pub(super) async fn timed<T>(timeout: Duration, step: impl Future<Output = std::io::Result<T>>) -> Result<T, Fail> {
    match tokio::time::timeout(timeout, step).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Fail::Io(e)),
        Err(_) => Err(stalled(timeout)),
    }
}
