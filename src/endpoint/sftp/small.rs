//! Whole small files read or written in one round trip after the open, on one of the
//! connection's raw SFTP channels (`Conn::file_channel`).
//!
//! russh-sftp's `File` probes with one read; after a short read (every file smaller than
//! the probe) it takes that length for the server's read size and queues
//! `max_concurrent_reads` (64) more reads of it: 65 READ requests and answers for a 4 KiB
//! file (OpenSSH's `sftp-server` made 65 `lseek`s per file of the benchmark's 5000 × 4 KiB),
//! and a second round trip to see the end. Here the reads a length needs are sent together:
//! pieces of up to 255 KiB (what OpenSSH serves per read) for all but the last byte, and
//! one byte at the offset where the file should end, which comes back empty (end of file)
//! when the file has the length the listing said. A server that answers a piece short
//! (before the end) is read on from the gap, one read at a time.
//!
//! A write sends its pieces, `fsync@openssh.com`, an `FSTAT` (the size the server stored)
//! and the `CLOSE` together, where `File` waits for the writes' acknowledgements, then the
//! fsync, then the close (four round trips), and the caller's size check is one more. A
//! server handles the requests on one handle in the order they were sent (SFTP drafts,
//! "requests relating to the same file"), so the fsync follows the writes.

use std::future::Future;
use std::pin::Pin;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};

/// Bytes asked for in one read: OpenSSH's limit (255 KiB).
const PIECE: u64 = 255 * 1024;

/// All of `full` when it holds fewer than `limit` bytes, else its first `limit` bytes, and
/// the open handle's attributes (`FSTAT`, sent with the reads: no round trip of its own),
/// which describe the version read even when another file took its name since.
/// An FSTAT the server refuses only means not knowing (`None`).
pub(super) async fn read_small(raw: &RawSftpSession, full: &str, limit: usize) -> Result<(Vec<u8>, Option<FileAttributes>), SftpError> {
    let handle = raw.open(full, OpenFlags::READ, FileAttributes::empty()).await?.handle;
    // `join!` polls the reads first: their requests go out, then the FSTAT's.
    let (read, attrs) = futures::join!(read_all(raw, &handle, limit as u64), raw.fstat(handle.clone()));
    let closed = raw.close(handle).await;
    let data = read?;
    let attrs = attrs.ok().map(|a| a.attrs);
    closed?;
    Ok((data, attrs))
}

async fn read_all(raw: &RawSftpSession, handle: &str, limit: u64) -> Result<Vec<u8>, SftpError> {
    let mut buf = Vec::with_capacity(usize::try_from(limit).unwrap_or(0));
    let last = limit.saturating_sub(1);
    let mut pieces: Vec<(u64, u64)> = (0..last).step_by(PIECE as usize).map(|o| (o, (last - o).min(PIECE))).collect();
    if limit > 0 {
        pieces.push((last, 1));
    }
    let answers = futures::future::join_all(pieces.iter().map(|&(offset, len)| piece(raw, handle, offset, len))).await;
    for ((offset, len), answer) in pieces.into_iter().zip(answers) {
        let data = answer?;
        let whole = data.len() as u64 == len;
        buf.extend_from_slice(&data);
        if !whole || buf.len() as u64 != offset + len {
            break;
        }
    }
    // Short before the end (the server serves less per read, or the file shrank): on from
    // the gap, until the end of the file or `limit`.
    while (buf.len() as u64) < limit {
        let data = piece(raw, handle, buf.len() as u64, (limit - buf.len() as u64).min(PIECE)).await?;
        if data.is_empty() {
            break;
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf)
}

/// One read; empty at the end of the file.
async fn piece(raw: &RawSftpSession, handle: &str, offset: u64, len: u64) -> Result<Vec<u8>, SftpError> {
    // Invariant: len <= PIECE, so it fits a u32.
    match raw.read(handle, offset, len as u32).await {
        Ok(d) => Ok(d.data),
        Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Creates or truncates `full`, writes `data`, fsyncs it (with `fsync`), closes it; the size
/// the server reports for it before the close (`None` if it reports none, or refuses to).
pub(super) async fn write_small(raw: &RawSftpSession, full: &str, data: &[u8], fsync: bool) -> Result<Option<u64>, SftpError> {
    let flags = OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE;
    let handle = raw.open(full, flags, FileAttributes::empty()).await?.handle;
    type Answer<'a> = Pin<Box<dyn Future<Output = Result<Option<u64>, SftpError>> + Send + 'a>>;
    // Sent in this order: each request goes out when first polled, and join_all polls its
    // futures in order the first time (a whole small file is a few pieces, so this stays
    // well under the size where join_all switches to an unordered set).
    let mut requests: Vec<Answer<'_>> = Vec::new();
    for (i, piece) in data.chunks(PIECE as usize).enumerate() {
        let (h, offset) = (handle.clone(), i as u64 * PIECE);
        requests.push(Box::pin(async move { raw.write(h, offset, piece.to_vec()).await.map(|_| None) }));
    }
    if fsync {
        let h = handle.clone();
        requests.push(Box::pin(async move { raw.fsync(h).await.map(|_| None) }));
    }
    let h = handle.clone();
    // Only a shortcut: a server refusing FSTAT (OpenSSH `sftp-server -P fstat`) leaves the
    // caller to ask for the size.
    requests.push(Box::pin(async move {
        match raw.fstat(h).await {
            Ok(a) => Ok(a.attrs.size),
            Err(SftpError::Status(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }));
    requests.push(Box::pin(async move { raw.close(handle).await.map(|_| None) }));
    let mut size = None;
    for answer in futures::future::join_all(requests).await {
        size = size.or(answer?);
    }
    Ok(size)
}
