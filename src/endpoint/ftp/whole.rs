//! Files moved whole (at most a MiB, `Endpoint::read_small` / `write_small`) on one login,
//! in as few round trips as the connection allows.
//!
//! On a plain control connection in EPSV mode, `EPSV` and the transfer command (`RETR`,
//! `STOR`) go out in one write (`super::epsv`), a download's `MDTM` with them
//! (`super::opened`). Everywhere else (TLS, PASV, active mode) the transfer goes through
//! suppaftp as a stream. Either way every reply is read, so the login stays in step: a
//! transfer command refused before or after its data connection was made, and a download
//! stopped at its limit (the file grew), whose end the server reports as 426 or 226.

use std::time::Duration;

use suppaftp::FtpError;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::connect::{Conn, within};
use super::epsv::{self, DONE, Opened};
use super::stream::{self, timed};
use super::{Fail, FtpEndpoint};
use crate::endpoint::{Entry, EntryKind, RemotePath};

impl FtpEndpoint {
    /// `RETR` of `path`, at most `limit` bytes of it (fewer when the file ends first), and the
    /// file opened as the server described it (`super::opened`): as long as what came.
    pub(super) async fn fetch_whole(&self, c: &mut Conn, path: &RemotePath, limit: usize) -> Result<(Vec<u8>, Option<Entry>), Fail> {
        let (mut data, _, facts) = self.start_download(c, path, 0, false).await?;
        let (buf, ended) = read_up_to(&mut data, limit, c.timeout).await?;
        let buf = confirmed(data.finish(c).await, buf, ended)?;
        let opened = facts.entry(path, Some(buf.len() as u64));
        Ok((buf, opened))
    }

    /// [`Endpoint::write_small`](crate::endpoint::Endpoint::write_small) on one connection:
    /// `STOR`, then `SIZE` (the size the server stored) where the server has it.
    pub(super) async fn store_whole(&self, c: &mut Conn, path: &RemotePath, bytes: &[u8]) -> Result<Option<u64>, Fail> {
        let full = c.full(path);
        let mut stored = false;
        if c.plain && c.epsv {
            match epsv::open(c, &[], &format!("STOR {full}")).await?.0 {
                Opened::Data(mut data) => {
                    if let Err(f) = stream::send(&mut data, bytes, c.timeout).await {
                        drop(data);
                        return Err(stream::why_the_upload_failed(c, f).await);
                    }
                    timed(c.timeout, data.shutdown()).await?;
                    drop(data);
                    within(c.timeout, c.ftp.read_response_in(DONE)).await?;
                    stored = true;
                }
                Opened::Refused(e) => return Err(self.refused(c, e, &path.parent(), EntryKind::Dir).await),
                Opened::NoEpsv => {}
            }
        }
        if !stored {
            let mut upload = self.stor(c, path).await?;
            if let Err(f) = stream::send(&mut upload, bytes, c.timeout).await {
                drop(upload);
                return Err(stream::why_the_upload_failed(c, f).await);
            }
            stream::close_upload(upload, c.timeout).await?;
        }
        if !c.feat.size {
            return Ok(None);
        }
        super::size_on(c, &full).await
    }
}

/// Reads until `limit` bytes or the end of the data; the bytes, and whether the end came.
async fn read_up_to<R: AsyncRead + Unpin>(data: &mut R, limit: usize, timeout: Duration) -> Result<(Vec<u8>, bool), Fail> {
    let mut buf = vec![0u8; limit];
    let mut n = 0;
    while n < limit {
        match timed(timeout, data.read(&mut buf[n..])).await? {
            0 => {
                buf.truncate(n);
                return Ok((buf, true));
            }
            got => n += got,
        }
    }
    Ok((buf, false))
}

/// A download's bytes, given the reply that ended it: a download that `ended` must be
/// confirmed; one stopped at its limit is over whatever the server says (426 or 226), and
/// the login is in step either way.
fn confirmed<T>(reply: Result<T, FtpError>, buf: Vec<u8>, ended: bool) -> Result<Vec<u8>, Fail> {
    match reply {
        Ok(_) => Ok(buf),
        Err(FtpError::UnexpectedResponse(_)) if !ended => Ok(buf),
        Err(e) => Err(e.into()),
    }
}
