//! What a vague answer from the server meant. OpenSSH's `sftp-server` answers an errno it
//! has no SFTP code for with a bare `SSH_FX_FAILURE` — a full disk or a quota (ENOSPC,
//! EDQUOT), a folder where a file should go (EISDIR) — and `opendir` on a file with
//! `NO_SUCH_FILE` (ENOTDIR), and a read of a folder (EISDIR) with a bare FAILURE too. After such an answer, and only then, one more question to the
//! server names the cause: is the path a file, a folder; how much space is left.
//!
//! Only asks: the kinds are decided here from what the server answered (status codes, file
//! types, free space), never from message text. Nothing here retries or removes anything.

use std::io;

use russh_sftp::protocol::{FileType, StatusCode};

use super::connect::Conn;
use super::{Fail, SftpError};
use crate::endpoint::{ErrorKind, RemotePath};

const STATVFS: &str = "statvfs@openssh.com";

/// Less free space than this after a refused write is a full disk.
const FULL_BELOW: u64 = 1 << 20;

impl Fail {
    /// The SFTP status code the server answered, if this is a status.
    fn status(&self) -> Option<StatusCode> {
        let code = |e: &SftpError| match e {
            SftpError::Status(s) => Some(s.status_code),
            _ => None,
        };
        match self {
            Fail::Sftp(e) => code(e),
            // `File` wraps russh-sftp errors in io::Error.
            Fail::Io(e) => e.get_ref().and_then(|i| i.downcast_ref::<SftpError>()).and_then(code),
            Fail::Kind(..) => None,
        }
    }

    /// The server answered a write with a status other than OK: a FAILURE, or any status
    /// that reached us through russh-sftp's `File`, which keeps a status's text but not its
    /// code (an I/O error of its own, not one wrapping a transport failure). With the text,
    /// as the server put it.
    fn write_refused(&self) -> Option<String> {
        match self {
            Fail::Sftp(SftpError::Status(s)) if s.status_code == StatusCode::Failure => Some(s.status_code.to_string()),
            Fail::Io(e) if self.status() == Some(StatusCode::Failure) => Some(e.to_string()),
            Fail::Io(e) if e.kind() == io::ErrorKind::Other && e.get_ref().is_some_and(|i| !i.is::<SftpError>()) => Some(e.to_string()),
            _ => None,
        }
    }
}

/// `fail` of listing `dir` (at `full` on the server): "no such file" (OpenSSH) or a bare
/// FAILURE (servers passing ENOTDIR on) for a path that is a file is a path that names the
/// wrong thing, a configuration mistake no retry mends.
pub(super) async fn listing(c: &Conn, full: &str, dir: &RemotePath, fail: Fail) -> Fail {
    if !matches!(fail.status(), Some(StatusCode::NoSuchFile | StatusCode::Failure)) {
        return fail;
    }
    match c.sftp.metadata(full).await {
        // A file for sure (a server that leaves the type out says nothing here).
        Ok(md) if md.file_type() == FileType::File => Fail::Kind(ErrorKind::Config, crate::endpoint::file_not_folder(dir)),
        _ => fail,
    }
}

/// After a folder was not found: when the endpoint's `root` itself is not on the server, said
/// so, with the folder the login starts in. A server may show a login only a folder of its
/// own (OpenSSH `ChrootDirectory`), where paths start at `/`: a `root` written as the path on
/// the server's own disk is not there. `None` when the root is there, or cannot be told.
pub(super) async fn root_missing(c: &Conn, root: &str) -> Option<String> {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        return None;
    }
    match c.sftp.metadata(root).await {
        Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => {}
        _ => return None,
    }
    let start = match c.sftp.canonicalize(".").await {
        Ok(home) => format!(" (it starts in {home})"),
        Err(_) => String::new(),
    };
    Some(format!(
        "the endpoint's `root` {root} is not there for this login{start}; a server may show a login only a folder of its own \
         (a chroot), where paths start at `/`: set `root` to the folder as the login sees it (`sftp` to the server and `pwd`, `ls` \
         show it)"
    ))
}

/// `fail` of reading `path` (at `full` on the server): OpenSSH opens a folder for reading and
/// answers the first read with a bare FAILURE (EISDIR). A folder that took a listed file's
/// name is said so (see [`a_folder`]).
pub(super) async fn read(c: &Conn, full: &str, path: &RemotePath, fail: Fail) -> Fail {
    if fail.status() != Some(StatusCode::Failure) {
        return fail;
    }
    match c.sftp.metadata(full).await {
        Ok(md) if md.file_type() == FileType::Dir => a_folder(path),
        _ => fail,
    }
}

/// A file to read that is a folder (one took its name since the listing): this file's
/// trouble for good (`Protocol`: not retried), as an FTP server's refusal of it reads.
pub(super) fn a_folder(path: &RemotePath) -> Fail {
    Fail::Kind(ErrorKind::Protocol, format!("{path} is a folder, not a file"))
}

/// `fail` of writing `target` (at `full` on the server), or of renaming a file onto it:
/// a bare FAILURE because a folder has that name is said so, and is this file's trouble for
/// good (`Protocol`: not retried, and the file fails rather than waits).
pub(super) async fn folder_in_the_way(c: &Conn, full: &str, target: &RemotePath, fail: Fail) -> Fail {
    if fail.write_refused().is_none() {
        return fail;
    }
    match c.sftp.metadata(full).await {
        Ok(md) if md.file_type() == FileType::Dir => {
            Fail::Kind(ErrorKind::Protocol, crate::endpoint::folder_in_the_way(target, " on the server"))
        }
        _ => fail,
    }
}

/// `fail` of writing to `full`: a folder in the way (see [`folder_in_the_way`]), else, when
/// the server refused the data, said so, with the free space it reports when it can
/// (`statvfs@openssh.com`). The kind is `NoSpace` (the file waits for the next run, the
/// partner makes room, and its partial upload is removed rather than left to keep a full
/// disk full) unless the server reports room on its disk: then the cause is only a guess (a
/// quota, or another refusal a bare `Failure` stands for), and the file fails as before
/// (`Protocol`), for someone to look at.
pub(super) async fn write(c: &Conn, full: &str, target: &RemotePath, fail: Fail) -> Fail {
    let fail = folder_in_the_way(c, full, target, fail).await;
    let Some(said) = fail.write_refused() else { return fail };
    let dir = full.rsplit_once('/').map(|(d, _)| if d.is_empty() { "/" } else { d }).unwrap_or(".");
    let space = if c.version.extensions.contains_key(STATVFS) { c.raw.statvfs(dir).await.ok() } else { None };
    let (kind, cause) = match space {
        Some(v) => {
            let free = v.blocks_avail.saturating_mul(v.fragment_size.max(1));
            if free < FULL_BELOW {
                (
                    ErrorKind::NoSpace,
                    format!("the server's disk is full ({} free in {dir}); the partner has to make room", crate::text::bytes(free)),
                )
            } else if v.inodes > 0 && v.inodes_avail == 0 {
                let cause =
                    format!("the server's disk has no room for another file (no free inodes in {dir}); ask the partner to clean up");
                (ErrorKind::NoSpace, cause)
            } else {
                (
                    ErrorKind::Protocol,
                    format!("{} is free in {dir}, so a quota of this login is the likely cause; ask the partner", crate::text::bytes(free)),
                )
            }
        }
        None => (ErrorKind::NoSpace, "a full disk or a quota is the usual cause; ask the partner".to_string()),
    };
    Fail::Kind(kind, format!("the server refused the write (it said `{said}`): {cause}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh_sftp::protocol::Status;

    fn sftp_status(code: StatusCode) -> SftpError {
        SftpError::Status(Status { id: 1, status_code: code, error_message: code.to_string(), language_tag: "en".into() })
    }

    #[test]
    fn status_is_found_through_the_io_wrapper() {
        assert_eq!(Fail::Sftp(sftp_status(StatusCode::Failure)).status(), Some(StatusCode::Failure));
        let wrapped = Fail::Io(std::io::Error::other(sftp_status(StatusCode::NoSuchFile)));
        assert_eq!(wrapped.status(), Some(StatusCode::NoSuchFile));
        assert_eq!(Fail::Kind(ErrorKind::Protocol, "x".into()).status(), None);
    }

    #[test]
    fn a_refused_write_is_told_from_a_lost_connection() {
        assert_eq!(Fail::Sftp(sftp_status(StatusCode::Failure)).write_refused().as_deref(), Some("Failure"));
        // What russh-sftp's `File` makes of a write's FAILURE: the text alone.
        assert_eq!(Fail::Io(std::io::Error::other("Failure")).write_refused().as_deref(), Some("Failure"));
        assert_eq!(Fail::Io(std::io::Error::other(SftpError::Timeout)).write_refused(), None);
        assert_eq!(Fail::Io(std::io::ErrorKind::BrokenPipe.into()).write_refused(), None);
        assert_eq!(Fail::Sftp(sftp_status(StatusCode::NoSuchFile)).write_refused(), None);
    }
}
