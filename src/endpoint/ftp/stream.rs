//! Transfers in progress: a download ([`FtpRead`]) and an upload ([`FtpWrite`]), each on a
//! connection of its own from the pool.
//!
//! Owns the rule that a transfer counts only when the server confirmed it: a download ends
//! (`Ok(0)`) only after the 226 was read, an upload is stored only when `finish` read it. Each
//! read or written piece has a stall timeout. A transfer that fails or is abandoned closes its
//! connection instead of returning it to the pool.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use suppaftp::tokio::TransferStream;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::connect::within;
use super::pool::Lease;
use super::tls_stream::FtpTlsStream;
use super::{Fail, Inner, WRITE_PIECE, stalled};
use crate::endpoint::{EndpointError, Op, ReadStream, RemotePath, WriteStream};

/// A download. The file is complete only when the server confirmed the transfer (226), which
/// is read when the data runs out: `read` returns `Ok(0)` only after that.
pub(super) struct FtpRead {
    pub(super) data: Option<TransferStream<FtpTlsStream>>,
    /// The connection, returned to the pool after a confirmed transfer, closed otherwise.
    pub(super) lease: Option<Lease>,
    /// Bytes still to drop from the start (a server that refused REST).
    pub(super) skip: u64,
    pub(super) timeout: Duration,
    pub(super) inner: Arc<Inner>,
    pub(super) path: RemotePath,
}

impl FtpRead {
    fn fail(&mut self, fail: Fail) -> EndpointError {
        self.data = None;
        self.lease = None;
        self.inner.stream_err(Op::Read, &self.path, fail)
    }
}

#[async_trait]
impl ReadStream for FtpRead {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, EndpointError> {
        loop {
            let Some(data) = self.data.as_mut() else { return Ok(0) };
            let n = match timed(self.timeout, data.read(buf)).await {
                Ok(n) => n,
                Err(f) => return Err(self.fail(f)),
            };
            if n == 0 {
                if let Some(data) = self.data.take()
                    && let Err(e) = within(self.timeout, data.finish()).await
                {
                    return Err(self.fail(e.into()));
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
        send(&mut self.data, buf, self.timeout).await.map_err(|f| self.inner.stream_err(Op::Write, &self.path, f))?;
        self.inner.pool.moved();
        Ok(())
    }

    async fn finish(self: Box<Self>) -> Result<(), EndpointError> {
        let FtpWrite { data, lease, timeout, inner, path } = *self;
        match close_upload(data, timeout).await {
            Ok(()) => {
                lease.release();
                Ok(())
            }
            Err(f) => Err(inner.stream_err(Op::Write, &path, f)),
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
