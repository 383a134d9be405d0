//! The sandbox's SFTP server: russh-sftp's `server::Handler` over the served folder.
//!
//! Owns one SFTP session's open handles (files and folder listings) and the answer to every
//! request: `OPEN`/`READ`/`WRITE`/`CLOSE`, `OPENDIR`/`READDIR`, `STAT`/`LSTAT`/`FSTAT`,
//! `SETSTAT`/`FSETSTAT`, `REMOVE`, `MKDIR`/`RMDIR`, `RENAME`, `REALPATH`, `READLINK`, and the
//! extensions `posix-rename@openssh.com` and `fsync@openssh.com`. What happens on disk, and
//! which status a failure becomes, is `fs.rs`; this file is the protocol glue.
//!
//! russh-sftp hands requests over one at a time and sends answers in order; reads and writes
//! are positioned (`pread`/`pwrite`) at the offset each request names, so clients that keep
//! many requests in flight get exactly the bytes they asked for. Memory per request is
//! bounded by the packet limit (256 KiB), never by the file.

use std::collections::HashMap;
use std::fs::{File as StdFile, ReadDir};
use std::sync::Arc;

use russh_sftp::protocol::{Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version};
use russh_sftp::server::StatusReply;

use super::fs::{self, Folder, FsErrorKind};
use super::jail::{Follow, Jail};

const POSIX_RENAME: &str = "posix-rename@openssh.com";
const FSYNC: &str = "fsync@openssh.com";
/// Open handles per session; a client that leaks more gets `Failure`.
const MAX_HANDLES: usize = 256;
/// Entries per `READDIR` answer.
const DIR_BATCH: usize = 128;

/// One open handle.
enum Open {
    File {
        file: Arc<StdFile>,
        path: String,
    },
    /// `None` while a `READDIR` is reading it on a blocking thread.
    Dir {
        entries: Option<ReadDir>,
        path: String,
    },
}

/// One SFTP session (one channel).
pub struct SftpSession {
    folder: Arc<Folder>,
    handles: HashMap<String, Open>,
    next_handle: u64,
}

impl SftpSession {
    pub fn new(folder: Arc<Folder>) -> Self {
        SftpSession { folder, handles: HashMap::new(), next_handle: 0 }
    }

    fn insert(&mut self, open: Open) -> Result<String, StatusReply> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure.with_message(format!("too many open handles (at most {MAX_HANDLES})")));
        }
        self.next_handle += 1;
        let name = self.next_handle.to_string();
        self.handles.insert(name.clone(), open);
        Ok(name)
    }

    /// The open file behind `handle`, with the client path it was opened as.
    fn file(&self, handle: &str) -> Result<(Arc<StdFile>, String), StatusReply> {
        match self.handles.get(handle) {
            Some(Open::File { file, path }) => Ok((file.clone(), path.clone())),
            Some(Open::Dir { .. }) => Err(StatusCode::Failure.with_message("a folder handle, not a file handle")),
            None => Err(no_handle(handle)),
        }
    }

    /// Runs a blocking `Folder` operation on tokio's blocking threads.
    async fn on_folder<T, F>(&self, f: F) -> Result<T, StatusReply>
    where
        T: Send + 'static,
        F: FnOnce(&Folder) -> Result<T, fs::FsError> + Send + 'static,
    {
        let folder = self.folder.clone();
        blocking(move || f(&folder)).await
    }
}

/// The reply to a refused request. An SFTP client knows the path it asked about and shows it
/// with the status (`list /in: not found: …`), so the message is the reason alone; and a
/// missing file is just the status's own text, as OpenSSH sends it (the OS's `No such file or
/// directory` would only say it again: `not found: /in: No such file or directory (No such file)`).
impl From<fs::FsError> for StatusReply {
    fn from(e: fs::FsError) -> Self {
        match e.kind {
            FsErrorKind::NotFound => StatusCode::NoSuchFile.with_message(StatusCode::NoSuchFile.to_string()),
            FsErrorKind::Denied => StatusCode::PermissionDenied.with_message(e.reason),
            FsErrorKind::Failure => StatusCode::Failure.with_message(e.reason),
        }
    }
}

fn no_handle(handle: &str) -> StatusReply {
    StatusCode::Failure.with_message(format!("no open handle {handle:?}"))
}

/// [`fs::blocking`], its failure as an SFTP status.
async fn blocking<T, F>(f: F) -> Result<T, StatusReply>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, fs::FsError> + Send + 'static,
{
    fs::blocking(f).await.map_err(Into::into)
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".to_string(), language_tag: "en-US".to_string() }
}

/// `count` SSH strings (u32 big-endian length, then bytes) from an extension's data.
fn ssh_strings(mut data: &[u8], count: usize) -> Result<Vec<String>, StatusReply> {
    let bad = || StatusReply::new(StatusCode::BadMessage).with_message("malformed extension request");
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, rest) = data.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad());
        }
        let (s, rest) = rest.split_at(len);
        out.push(String::from_utf8(s.to_vec()).map_err(|_| bad())?);
        data = rest;
    }
    Ok(out)
}

impl russh_sftp::server::Handler for SftpSession {
    type Error = StatusReply;

    fn unimplemented(&self) -> Self::Error {
        StatusReply::new(StatusCode::OpUnsupported)
    }

    async fn init(&mut self, version: u32, _extensions: HashMap<String, String>) -> Result<Version, Self::Error> {
        tracing::debug!(client_version = version, "SFTP session started.");
        let mut v = Version::new();
        v.extensions.insert(POSIX_RENAME.to_string(), "1".to_string());
        v.extensions.insert(FSYNC.to_string(), "1".to_string());
        Ok(v)
    }

    async fn open(&mut self, id: u32, filename: String, pflags: OpenFlags, attrs: FileAttributes) -> Result<Handle, Self::Error> {
        let path = filename.clone();
        let file = self.on_folder(move |f| f.open(&path, pflags, attrs.permissions)).await?;
        tracing::debug!(path = %filename, write = pflags.contains(OpenFlags::WRITE), "Opened.");
        let handle = self.insert(Open::File { file: Arc::new(file), path: filename })?;
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Self::Error> {
        // Dropping the File closes it; data written with pwrite is in the page cache already
        // (fsync@openssh.com is how a client asks for it on disk).
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(no_handle(&handle)),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Self::Error> {
        let (file, path) = self.file(&handle)?;
        let data = blocking(move || fs::read_at(&file, offset, len).map_err(|e| fs::io_status(&path, e))).await?;
        if data.is_empty() && len > 0 {
            return Err(StatusReply::new(StatusCode::Eof));
        }
        Ok(Data { id, data })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, Self::Error> {
        let (file, path) = self.file(&handle)?;
        blocking(move || fs::write_at(&file, offset, &data).map_err(|e| fs::io_status(&path, e))).await?;
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let md = self.on_folder(move |f| f.metadata(&path, Follow::No)).await?;
        Ok(Attrs { id, attrs: fs::attrs_of(&md) })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Self::Error> {
        let (file, path) = self.file(&handle)?;
        let md = blocking(move || file.metadata().map_err(|e| fs::io_status(&path, e))).await?;
        Ok(Attrs { id, attrs: fs::attrs_of(&md) })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        self.on_folder(move |f| f.set_attrs(&path, &attrs)).await?;
        Ok(ok(id))
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        let (file, path) = self.file(&handle)?;
        blocking(move || Folder::set_file_attrs(&file, &path, &attrs)).await?;
        Ok(ok(id))
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Self::Error> {
        let p = path.clone();
        let entries = self.on_folder(move |f| f.read_dir(&p)).await?;
        let handle = self.insert(Open::Dir { entries: Some(entries), path })?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Self::Error> {
        let (entries, path) = match self.handles.get_mut(&handle) {
            Some(Open::Dir { entries, path }) => (entries.take(), path.clone()),
            Some(Open::File { .. }) => return Err(StatusCode::Failure.with_message("a file handle, not a folder handle")),
            None => return Err(no_handle(&handle)),
        };
        let Some(mut entries) = entries else { return Err(StatusCode::Failure.with_message("folder handle busy")) };
        let (entries, batch, failure) = blocking(move || {
            let (mut batch, mut failure) = (Vec::new(), None);
            for entry in entries.by_ref() {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        failure = Some(fs::io_status(&path, e));
                        break;
                    }
                };
                // Gone since the folder was read: not listed. Attributes are the entry's own
                // (a symlink is listed as a symlink, as OpenSSH does).
                let Ok(md) = entry.metadata() else { continue };
                // Names that are not UTF-8 go out lossily; the client cannot open them again
                // and skips them (wharf does).
                batch.push(File::new(entry.file_name().to_string_lossy(), fs::attrs_of(&md)));
                if batch.len() == DIR_BATCH {
                    break;
                }
            }
            Ok::<_, fs::FsError>((entries, batch, failure))
        })
        .await?;
        // The listing goes back into its handle even after a failure (the next READDIR may
        // get further); a failure is reported once nothing was read before it.
        if let Some(Open::Dir { entries: slot, .. }) = self.handles.get_mut(&handle) {
            *slot = Some(entries);
        }
        match (batch.is_empty(), failure) {
            (true, Some(e)) => Err(e.into()),
            (true, None) => Err(StatusReply::new(StatusCode::Eof)),
            (false, _) => Ok(Name { id, files: batch }),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Self::Error> {
        self.on_folder(move |f| f.remove_file(&filename)).await?;
        Ok(ok(id))
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Self::Error> {
        self.on_folder(move |f| f.create_dir(&path, attrs.permissions)).await?;
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Self::Error> {
        self.on_folder(move |f| f.remove_dir(&path)).await?;
        Ok(ok(id))
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let canonical = Jail::client_path(&path).map_err(|e| StatusReply::from(fs::jail_error(&path, e)))?;
        Ok(Name { id, files: vec![File::dummy(canonical)] })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Self::Error> {
        let md = self.on_folder(move |f| f.metadata(&path, Follow::Yes)).await?;
        Ok(Attrs { id, attrs: fs::attrs_of(&md) })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Self::Error> {
        self.on_folder(move |f| f.rename(&oldpath, &newpath, false)).await?;
        Ok(ok(id))
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Self::Error> {
        let target = self.on_folder(move |f| f.read_link(&path)).await?;
        Ok(Name { id, files: vec![File::dummy(target)] })
    }

    async fn symlink(&mut self, _id: u32, _linkpath: String, _targetpath: String) -> Result<Status, Self::Error> {
        Err(StatusCode::OpUnsupported.with_message("the sandbox does not create symlinks"))
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Result<Packet, Self::Error> {
        match request.as_str() {
            POSIX_RENAME => {
                let mut paths = ssh_strings(&data, 2)?.into_iter();
                let (Some(from), Some(to)) = (paths.next(), paths.next()) else { return Err(StatusReply::new(StatusCode::BadMessage)) };
                self.on_folder(move |f| f.rename(&from, &to, true)).await?;
                Ok(Packet::Status(ok(id)))
            }
            FSYNC => {
                let handle = ssh_strings(&data, 1)?.concat();
                let (file, path) = self.file(&handle)?;
                blocking(move || file.sync_all().map_err(|e| fs::io_status(&path, e))).await?;
                Ok(Packet::Status(ok(id)))
            }
            other => Err(StatusCode::OpUnsupported.with_message(format!("extension {other} is not supported"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_extension_strings() {
        let mut data = Vec::new();
        for s in ["/a b", "/ü"] {
            data.extend_from_slice(&(s.len() as u32).to_be_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        assert_eq!(ssh_strings(&data, 2).unwrap(), vec!["/a b", "/ü"]);
        assert!(ssh_strings(&data[..data.len() - 1], 2).is_err(), "truncated");
        assert!(ssh_strings(&[0, 0], 1).is_err());
    }
}
