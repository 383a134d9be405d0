//! Server-side write-behind for a streamed upload.
//!
//! An upload ends with `fsync@openssh.com` (a file is on the server's disk before it gets
//! its final name). Without help the server's kernel keeps the whole file dirty in memory
//! until then, so the end of a big upload waits for all of it to reach the disk (0.42 s of
//! a GiB's 2.5 s here) while the disk sat idle during the transfer. Every [`EVERY`] bytes
//! sent, [`WriteBehind`] asks another SFTP channel (another `sftp-server` process on
//! OpenSSH, so the writes go on beside it) to fsync the same file through a handle of its
//! own: what was written so far goes to disk during the transfer, and the final fsync has
//! only the rest to write. One at a time; a failure only costs the head start (the final
//! fsync is what the guarantee rests on), so it is logged and no more are asked for that
//! file.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::task::JoinHandle;

use super::connect::Conn;

/// Bytes sent between two early fsyncs. Measured on the GiB upload (eight alternating runs
/// each, seconds): none 2.33–2.90, every 4 MiB 1.73–2.82, 8 MiB 1.89–2.60, 16 MiB 2.21–2.68,
/// 32 MiB 2.46–2.87, 128 MiB 2.56–3.04 (six runs for the last two).
const EVERY: u64 = 8 << 20;

pub(super) struct WriteBehind {
    conn: Arc<Conn>,
    full: String,
    sent: u64,
    /// `sent` when the last early fsync was asked for.
    asked_at: u64,
    running: Option<JoinHandle<()>>,
    /// An early fsync failed (the server may refuse reading an upload): no more are asked.
    failed: Arc<AtomicBool>,
}

impl WriteBehind {
    /// `None` when the server cannot fsync (nothing to get ahead of).
    pub fn new(conn: &Arc<Conn>, full: &str) -> Option<WriteBehind> {
        conn.fsync.then(|| WriteBehind {
            conn: conn.clone(),
            full: full.to_string(),
            sent: 0,
            asked_at: 0,
            running: None,
            failed: Arc::default(),
        })
    }

    /// `n` more bytes were sent; starts an early fsync when [`EVERY`] more were sent since
    /// the last one and that one is done.
    pub fn sent(&mut self, n: usize) {
        self.sent += n as u64;
        let busy = self.running.as_ref().is_some_and(|r| !r.is_finished());
        if self.sent - self.asked_at < EVERY || busy || self.failed.load(Ordering::Relaxed) {
            return;
        }
        self.asked_at = self.sent;
        let (conn, full, failed) = (self.conn.clone(), self.full.clone(), self.failed.clone());
        self.running = Some(tokio::spawn(async move {
            if let Err(e) = fsync_by_name(&conn, &full).await {
                failed.store(true, Ordering::Relaxed);
                tracing::debug!(file = %full, error = %e, "An early fsync of an upload failed; the final one will do it all.");
            }
        }));
    }

    /// Waits for an early fsync still running (the final one would wait for it anyway).
    /// Dropped without this (an abandoned upload), a running one finishes on its own and
    /// closes its handle.
    pub async fn settle(&mut self) {
        if let Some(r) = self.running.take() {
            let _ = r.await;
        }
    }
}

/// Opens `full` for reading on one of the connection's other channels, fsyncs it, closes it.
async fn fsync_by_name(conn: &Conn, full: &str) -> Result<(), SftpError> {
    let raw = conn.file_channel().await?;
    let handle = raw.open(full, OpenFlags::READ, FileAttributes::empty()).await?.handle;
    let synced = raw.fsync(handle.clone()).await;
    let closed = raw.close(handle).await;
    synced?;
    closed?;
    Ok(())
}
