//! Pipelined file I/O beside a transfer: a blocking thread hashes and writes the staging file
//! ([`HashWriter`]) or reads (and, when asked, hashes) it ([`HashReader`]) while the run's task moves the
//! previous or next chunk over the network.
//!
//! Owns the chunk hand-over: at most [`DEPTH`] chunks wait between the two sides (bounded
//! memory: a few chunks per file in flight, whatever the file's size), and buffers go back to
//! the side that fills them instead of being allocated again. The SHA-256 is computed where
//! the bytes are touched anyway, so hashing a 1 GiB file no longer holds up the network side.
//!
//! Files of at most [`WHOLE_MAX`](super::stage::WHOLE_MAX) skip the hand-over: [`write_whole`], [`read_whole`] and
//! [`hash_file`] do all their file work in one trip to a blocking thread (each trip costs a
//! thread wake-up both ways, which is most of the local work for a 4 KiB file).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::stage::CHUNK;

/// Chunks in flight between the network side and the file side.
pub const DEPTH: usize = 4;

/// How much a [`HashWriter`] writes before it asks the kernel to start writing it to disk.
const WRITE_BEHIND: usize = 8 * 1024 * 1024;

enum ToFile {
    Data(Vec<u8>),
    /// fsync what was written so far, then answer (the test halt points need it).
    Sync(oneshot::Sender<io::Result<()>>),
}

/// Writes and hashes chunks on a blocking thread; [`finish`](Self::finish) fsyncs the file
/// and returns the hash of everything written (after what the hasher was given already).
pub struct HashWriter {
    tx: mpsc::Sender<ToFile>,
    spare: mpsc::Receiver<Vec<u8>>,
    task: JoinHandle<io::Result<Sha256>>,
    chunk: usize,
}

impl HashWriter {
    /// Starts the file side: `file` positioned where the next byte goes, `hasher` holding
    /// what is already in it.
    pub fn start(mut file: File, mut hasher: Sha256, chunk: usize) -> HashWriter {
        let (tx, mut rx) = mpsc::channel::<ToFile>(DEPTH);
        let (spare_tx, spare) = mpsc::channel(DEPTH + 1);
        let task = tokio::task::spawn_blocking(move || {
            let mut unflushed = 0usize;
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    ToFile::Data(mut buf) => {
                        hasher.update(&buf);
                        file.write_all(&buf)?;
                        unflushed += buf.len();
                        if unflushed >= WRITE_BEHIND {
                            crate::durable::start_writeback(&file);
                            unflushed = 0;
                        }
                        buf.resize(chunk, 0);
                        // Full: the network side has enough buffers.
                        let _ = spare_tx.try_send(buf);
                    }
                    ToFile::Sync(done) => {
                        let _ = done.send(file.sync_all());
                    }
                }
            }
            file.sync_all()?;
            Ok(hasher)
        });
        HashWriter { tx, spare, task, chunk }
    }

    /// A buffer of the chunk size to fill (a used one when there is one).
    pub fn buffer(&mut self) -> Vec<u8> {
        self.spare.try_recv().unwrap_or_else(|_| vec![0u8; self.chunk])
    }

    /// Hands over `buf` (its length is what was filled). Waits while [`DEPTH`] chunks are
    /// waiting already.
    pub async fn write(&mut self, buf: Vec<u8>) -> io::Result<()> {
        if self.tx.send(ToFile::Data(buf)).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// fsyncs what was handed over so far.
    pub async fn sync(&mut self) -> io::Result<()> {
        let (done, answer) = oneshot::channel();
        if self.tx.send(ToFile::Sync(done)).await.is_err() {
            return Err(self.failure().await);
        }
        answer.await.unwrap_or_else(|_| Err(io::Error::other("the staging writer stopped")))
    }

    /// Waits for everything to be written, fsyncs, and returns the hasher.
    pub async fn finish(self) -> io::Result<Sha256> {
        drop(self.tx);
        joined(self.task).await
    }

    /// Why the file side stopped (it only stops early on an error).
    async fn failure(&mut self) -> io::Error {
        match (&mut self.task).await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => io::Error::other("the staging writer stopped early"),
            Err(e) => io::Error::other(format!("the staging writer failed: {e}")),
        }
    }
}

/// Reads and hashes a file on a blocking thread, a chunk ahead of the network side.
pub struct HashReader {
    rx: mpsc::Receiver<Vec<u8>>,
    spare: mpsc::Sender<Vec<u8>>,
    task: JoinHandle<io::Result<Sha256>>,
}

impl HashReader {
    /// Starts reading `file` from where it is positioned, hashing what it reads when `hash`
    /// (else [`finish`](Self::finish) gives the hash of nothing).
    pub fn start(mut file: File, chunk: usize, hash: bool) -> HashReader {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(DEPTH);
        let (spare, mut spare_rx) = mpsc::channel::<Vec<u8>>(DEPTH + 1);
        let task = tokio::task::spawn_blocking(move || {
            let mut hasher = Sha256::new();
            loop {
                let mut buf = spare_rx.try_recv().unwrap_or_else(|_| vec![0u8; chunk]);
                buf.resize(chunk, 0);
                let n = fill(&mut file, &mut buf)?;
                if n == 0 {
                    return Ok(hasher);
                }
                buf.truncate(n);
                if hash {
                    hasher.update(&buf);
                }
                if tx.blocking_send(buf).is_err() {
                    // The network side gave up; its error is the one reported.
                    return Ok(hasher);
                }
            }
        });
        HashReader { rx, spare, task }
    }

    /// The next chunk; `None` at the end of the file (then [`finish`](Self::finish)).
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }

    /// Returns a chunk's buffer for reuse.
    pub fn give_back(&self, buf: Vec<u8>) {
        let _ = self.spare.try_send(buf);
    }

    /// The hash of the whole file, or the read error that ended it early.
    pub async fn finish(self) -> io::Result<Sha256> {
        drop(self.rx);
        joined(self.task).await
    }
}

/// Creates `path` (and its folder; in place of a leftover, which is removed, not truncated),
/// writes `data`: one trip to a blocking thread. Returns the SHA-256 of `data`.
///
/// Not fsynced: a small staged file is never resumed, so only its delivered copies need to
/// be on disk, and they are made so where they are delivered (a local sink's
/// [`Endpoint::adopt`](crate::endpoint::Endpoint::adopt) fsyncs it before renaming, together
/// with the other files in flight; a server has its own copy). Files that would otherwise
/// stay in the page cache until they are removed again are never written to disk at all. A
/// run resumed after a crash checks such a file's SHA-256 before it uses it.
pub async fn write_whole(path: PathBuf, data: Vec<u8>) -> io::Result<Sha256> {
    blocking(move || {
        let mut file = crate::durable::create_fresh(&path)?;
        file.write_all(&data)?;
        let mut hasher = Sha256::new();
        hasher.update(&data);
        Ok(hasher)
    })
    .await
}

/// Reads all of `path` (expected to be about `size` bytes) and hashes it: one trip to a
/// blocking thread.
pub async fn read_whole(path: PathBuf, size: u64) -> io::Result<(Vec<u8>, Sha256)> {
    blocking(move || {
        let mut file = File::open(&path)?;
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
        file.read_to_end(&mut data)?;
        let mut hasher = Sha256::new();
        hasher.update(&data);
        Ok((data, hasher))
    })
    .await
}

/// The length and hash of everything in `path`, read on one blocking thread.
pub async fn hash_file(path: PathBuf) -> io::Result<(u64, Sha256)> {
    blocking(move || {
        let mut file = File::open(&path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut len = 0u64;
        loop {
            let n = fill(&mut file, &mut buf)?;
            if n == 0 {
                return Ok((len, hasher));
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
    })
    .await
}

/// The hex SHA-256 of everything in `path`.
pub async fn sha256_of(path: PathBuf) -> io::Result<String> {
    let (_, hasher) = hash_file(path).await?;
    Ok(hex::encode(hasher.finalize()))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    joined(tokio::task::spawn_blocking(f)).await
}

async fn joined<T>(task: JoinHandle<io::Result<T>>) -> io::Result<T> {
    task.await.unwrap_or_else(|e| Err(io::Error::other(format!("the file task failed: {e}"))))
}

/// Reads until `buf` is full or the file ends; the count read.
fn fill(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(got) => n += got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn written_then_read_back_with_the_same_hash() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x");
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        let mut w = HashWriter::start(File::create(&path).unwrap(), Sha256::new(), 64 * 1024);
        for piece in data.chunks(50_000) {
            let mut buf = w.buffer();
            buf.truncate(piece.len());
            buf.copy_from_slice(piece);
            w.write(buf).await.unwrap();
        }
        w.sync().await.unwrap();
        let written = w.finish().await.unwrap().finalize();
        assert_eq!(written, Sha256::digest(&data));
        assert_eq!(std::fs::read(&path).unwrap(), data);

        let mut r = HashReader::start(File::open(&path).unwrap(), 64 * 1024, true);
        let mut back = Vec::new();
        while let Some(chunk) = r.next().await {
            back.extend_from_slice(&chunk);
            r.give_back(chunk);
        }
        assert_eq!(r.finish().await.unwrap().finalize(), written);
        assert_eq!(back, data);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_given_up_early_finishes_without_reading_on() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x");
        let data = vec![7u8; 64 * 1024 * (DEPTH * 4)];
        std::fs::write(&path, &data).unwrap();
        let mut r = HashReader::start(File::open(&path).unwrap(), 64 * 1024, true);
        let first = r.next().await.unwrap();
        assert_eq!(&first[..], &data[..64 * 1024]);
        r.give_back(first);
        // The upload stops (the file grew, say): no chunk is taken any more.
        let hashed = r.finish().await.unwrap().finalize();
        assert_ne!(hashed, Sha256::digest(&data), "read on to the end after it was given up");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_file_is_reported_to_the_writer() {
        // /dev/full: every write fails with "no space left on device".
        let Ok(full) = File::options().write(true).open("/dev/full") else { return };
        let mut w = HashWriter::start(full, Sha256::new(), 1024);
        let mut err = None;
        for _ in 0..(DEPTH + 3) {
            let buf = w.buffer();
            if let Err(e) = w.write(buf).await {
                err = Some(e);
                break;
            }
        }
        let e = match err {
            Some(e) => e,
            None => w.finish().await.unwrap_err(),
        };
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
    }
}
