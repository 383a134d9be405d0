//! Transfer safety: deliver a staged file to a sink so that the final name only ever holds
//! a complete, verified file.
//!
//! Upload under the temporary name, verify the size the sink reports, then rename to the
//! final name — written once here for every protocol. The exists-policy (`fail`,
//! `overwrite`, `rename`, `skip`) is decided in [`choose_target`] *before* the upload, and
//! the chosen target is recorded in the ledger by the caller, so a run resumed after a crash
//! checks that exact target instead of uploading again.

use std::path::Path;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::flow::IfExists;
use crate::endpoint::{Endpoint, ErrorKind, RemotePath};

use super::error::FileError;
use super::stage::CHUNK;
use super::{halt, naming};

/// Where a file will go on a sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Upload and rename to this path.
    Upload(RemotePath),
    /// The target exists and the policy is `skip`: count as delivered, upload nothing.
    Skip(RemotePath),
}

/// Applies the exists-policy to `dir/name` on `ep`.
pub async fn choose_target(ep: &dyn Endpoint, dir: &RemotePath, name: &str, policy: IfExists) -> Result<Target, FileError> {
    let path = dir.join(name).map_err(|e| FileError::Name(format!("target name {name:?}: {e}")))?;
    if ep.stat(&path).await?.is_none() {
        return Ok(Target::Upload(path));
    }
    match policy {
        IfExists::Fail => Err(FileError::TargetExists { endpoint: ep.describe(), target: path.to_string() }),
        IfExists::Overwrite => Ok(Target::Upload(path)),
        IfExists::Skip => Ok(Target::Skip(path)),
        IfExists::Rename => Ok(Target::Upload(naming::free_name(ep, dir, name).await?)),
    }
}

/// True when `target` already holds a file of `size` bytes: a delivery that completed before a
/// crash (the rename only happens after the size was verified).
pub async fn already_delivered(ep: &dyn Endpoint, target: &RemotePath, size: u64) -> Result<bool, FileError> {
    Ok(ep.stat(target).await?.is_some_and(|e| e.size == size))
}

/// Uploads `staged` (`size` bytes) to `temp`, verifies it, and renames it to `target`.
/// `replace` allows replacing an existing target (the `overwrite` policy).
pub async fn upload(
    ep: &dyn Endpoint,
    staged: &Path,
    size: u64,
    temp: &RemotePath,
    target: &RemotePath,
    replace: bool,
) -> Result<(), FileError> {
    let input = tokio::fs::File::open(staged).await.map_err(|source| FileError::Staging { path: staged.to_path_buf(), source })?;
    upload_from(ep, input, staged, size, temp, target, replace).await
}

/// Writes an empty trigger file at `target` through `temp` (replacing an older trigger).
pub async fn put_trigger(ep: &dyn Endpoint, temp: &RemotePath, target: &RemotePath) -> Result<(), FileError> {
    upload_from(ep, tokio::io::empty(), Path::new("(empty trigger file)"), 0, temp, target, true).await
}

/// The one upload path: `input` (`size` bytes, read from `origin`, named in errors) to
/// `temp`, size verified, then renamed to `target`. Missing folders are created first.
async fn upload_from(
    ep: &dyn Endpoint,
    mut input: impl AsyncRead + Unpin,
    origin: &Path,
    size: u64,
    temp: &RemotePath,
    target: &RemotePath,
    replace: bool,
) -> Result<(), FileError> {
    ep.create_dir_all(&target.parent()).await?;
    let mut out = ep.open_write(temp).await?;
    let mut buf = vec![0u8; CHUNK];
    let mut first = true;
    loop {
        let n = input.read(&mut buf).await.map_err(|source| FileError::Staging { path: origin.to_path_buf(), source })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).await?;
        if std::mem::take(&mut first) {
            halt::point("uploading");
        }
    }
    out.finish().await?;
    let actual = ep.stat(temp).await?.map(|e| e.size).unwrap_or(0);
    if actual != size {
        let _ = ep.remove(temp).await;
        return Err(FileError::SizeMismatch { endpoint: ep.describe(), target: temp.to_string(), expected: size, actual });
    }
    halt::point("uploaded");
    match ep.rename(temp, target, replace).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            // Someone created the target between our check and the rename.
            let _ = ep.remove(temp).await;
            Err(FileError::TargetExists { endpoint: ep.describe(), target: target.to_string() })
        }
        Err(e) => Err(e.into()),
    }
}
