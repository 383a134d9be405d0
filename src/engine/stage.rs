//! Staging: download a source file into a local file, resumably, fsynced and hashed.
//!
//! The staged file is both the copy every sink is fed from (the source is read once, however
//! many sinks) and the resume point: a download interrupted at byte N continues at N on the
//! next attempt or run. This module owns the staging file layout and the read loop.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::endpoint::{Endpoint, RemotePath};

use super::error::FileError;
use super::halt;

/// Size of each read from the source (and of the one reusable buffer).
pub const CHUNK: usize = 256 * 1024;

/// A completely staged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    pub size: u64,
    pub sha256: String,
}

/// The staging file for `path` of `flow` under `dir`: stable across runs, so a crashed
/// download is found again; named by a hash so any source name maps to a safe local name.
pub fn staging_path(dir: &Path, flow: &str, path: &RemotePath) -> PathBuf {
    let h = hex::encode(Sha256::digest(path.as_str().as_bytes()));
    dir.join(flow).join(format!("{}.part", &h[..32]))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> FileError + '_ {
    move |source| FileError::Staging { path: path.to_path_buf(), source }
}

/// Downloads `path` (expected to be `size` bytes) from `ep` into `file`, continuing after
/// whatever a previous attempt left there.
pub async fn stage(ep: &dyn Endpoint, path: &RemotePath, size: u64, file: &Path) -> Result<Staged, FileError> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io(file))?;
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let existing = tokio::fs::metadata(file).await.map(|m| m.len()).unwrap_or(0);
    let mut offset = 0;
    if existing > 0 && existing <= size {
        // Resume: hash what is already there, then append.
        let mut f = tokio::fs::File::open(file).await.map_err(io(file))?;
        loop {
            let n = f.read(&mut buf).await.map_err(io(file))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        tracing::info!(path = %path, offset, "Resuming download.");
    }
    let mut out = tokio::fs::OpenOptions::new().create(true).write(true).truncate(offset == 0).open(file).await.map_err(io(file))?;
    if offset > 0 {
        out.set_len(offset).await.map_err(io(file))?;
        tokio::io::AsyncSeekExt::seek(&mut out, std::io::SeekFrom::Start(offset)).await.map_err(io(file))?;
    }
    if offset < size {
        let mut src = ep.open_read(path, offset).await?;
        let mut first = true;
        loop {
            let n = src.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).await.map_err(io(file))?;
            offset += n as u64;
            if offset > size {
                return Err(FileError::Changed(format!(
                    "{path} grew past {size} bytes while it was downloaded; it will be taken once it is stable"
                )));
            }
            if first {
                first = false;
                if std::env::var_os("WHARF_TEST_HALT_AT").is_some() {
                    out.sync_all().await.map_err(io(file))?;
                    halt::point("staging");
                }
            }
        }
    }
    out.sync_all().await.map_err(io(file))?;
    if offset != size {
        return Err(FileError::Changed(format!(
            "{path} has {offset} bytes, but the listing said {size}; it changed while it was downloaded"
        )));
    }
    Ok(Staged { size, sha256: hex::encode(hasher.finalize()) })
}

/// Removes a staging file; a missing one is fine.
pub async fn discard(file: &Path) {
    if let Err(e) = tokio::fs::remove_file(file).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %file.display(), error = %e, "Could not remove a staging file.");
    }
}
