//! Which file a download opened: its time (and, for a streamed read, its size) asked in the
//! same write as the download's `RETR` — `MLST` where the server offers it (the facts its
//! `MLSD` listing gives), else `MDTM` (the time a listing is refined with) and `SIZE`. A flow
//! that keeps its source compares them with the listing to see a file replaced between its
//! listing and its download (`crate::engine`); the window left is the server's handling of
//! the commands between `MDTM` and `RETR`, microseconds, instead of listing to download.
//!
//! Only where the questions cost no round trip of their own ([`describes`]): elsewhere a
//! read is undescribed, and a replacement between listing and download goes unseen.
//!
//! Owns which commands to send and how their replies read. It never fails a read: a server
//! that refuses them (500, 502, 550…) or answers something unreadable leaves the read
//! undescribed (`None`), as a server without `MDTM` does.

use std::time::SystemTime;

use suppaftp::types::Response;
use suppaftp::{FtpResult, Status};

use super::connect::{Conn, Feat, mdtm_in_reply, size_in_reply};
use super::list;
use crate::endpoint::{Entry, EntryKind, RemotePath};

/// One question about the file to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Mlst,
    Size,
    Mdtm,
}

/// The questions to send with one download, in order.
#[derive(Debug, Default)]
pub(super) struct Asks {
    asks: Vec<Ask>,
    /// The commands, with the replies each expects.
    pub commands: Vec<(String, &'static [Status])>,
}

/// What the server said about the file a download opened.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Facts {
    size: Option<u64>,
    mtime: Option<SystemTime>,
}

/// Whether reads on `c` describe the file they open
/// ([`Capabilities::describes_opened`](crate::endpoint::Capabilities::describes_opened)): where
/// the questions ride in the `EPSV` write of a plain control connection, and the server tells
/// a file's time and size. Not over TLS, where suppaftp holds the TLS stream and commands
/// cannot be pipelined (one `MDTM` before each `RETR` cost the FTPS pull of 5000 × 4 KiB
/// about 4 % of wharf's CPU time and more of its wall time: docs/performance.md), nor with
/// PASV or in active mode: there each question would be a round trip of its own. And only
/// where the answer comes from the command the listing's time came from (`MLST` for an
/// `MLSD` listing, `MDTM` for a `LIST` one): a server whose `MDTM` gave local time while
/// `MLSD` gives UTC would make every file look replaced, and never be taken.
pub(super) fn describes(c: &Conn) -> bool {
    c.plain && c.epsv && same_source(&c.feat)
}

/// Whether a server offering `feat` can tell a file's time the way its listing does.
fn same_source(feat: &Feat) -> bool {
    if feat.mlsd { feat.mlst } else { feat.mdtm && feat.size }
}

/// The questions to send with the download of `full` on `c`: its time, and its size too
/// when `size` (a streamed read; a file read whole is as long as what came). None where
/// reads are not described ([`describes`]).
pub(super) fn asks(c: &Conn, full: &str, size: bool) -> Asks {
    let asks = if !describes(c) {
        vec![]
    } else if c.feat.mlst {
        vec![Ask::Mlst]
    } else if size {
        vec![Ask::Size, Ask::Mdtm]
    } else {
        vec![Ask::Mdtm]
    };
    let commands = asks
        .iter()
        .map(|ask| match ask {
            Ask::Mlst => (format!("MLST {full}"), &[Status::RequestedFileActionOk][..]),
            Ask::Size => (format!("SIZE {full}"), &[Status::File][..]),
            Ask::Mdtm => (format!("MDTM {full}"), &[Status::File][..]),
        })
        .collect();
    Asks { asks, commands }
}

impl Asks {
    /// The facts in `replies` (one for each command, in order; a refusal is an `Err`).
    pub fn facts(&self, replies: &[FtpResult<Response>]) -> Facts {
        let mut facts = Facts::default();
        for (ask, reply) in self.asks.iter().zip(replies) {
            let Ok(reply) = reply else { continue };
            match ask {
                Ask::Mlst => {
                    // `250-Listing /x`, ` type=file;size=…;modify=…; /x`, `250 End`.
                    let body = String::from_utf8_lossy(&reply.body);
                    if let Some(l) = body.lines().nth(1).and_then(list::parse_mlst).filter(|l| l.kind == EntryKind::File) {
                        (facts.size, facts.mtime) = (Some(l.size), l.mtime);
                    }
                }
                Ask::Size => facts.size = size_in_reply(reply),
                Ask::Mdtm => facts.mtime = mdtm_in_reply(reply),
            }
        }
        facts
    }
}

impl Facts {
    /// The file opened at `path`, `received` bytes long when the read was whole (else the
    /// size the server gave): `None` without a time or a size.
    pub fn entry(self, path: &RemotePath, received: Option<u64>) -> Option<Entry> {
        Some(Entry { path: path.clone(), kind: EntryKind::File, size: received.or(self.size)?, mtime: Some(self.mtime?) })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use suppaftp::FtpError;

    use super::*;

    fn reply(code: u32, text: &str) -> Response {
        Response::new(Status::from(code), text.as_bytes().to_vec())
    }

    fn asked(asks: &[Ask]) -> Asks {
        Asks { asks: asks.to_vec(), commands: vec![] }
    }

    #[test]
    fn the_time_and_size_of_the_file_opened() {
        let p = RemotePath::parse("in/a.csv").unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let f = asked(&[Ask::Size, Ask::Mdtm]).facts(&[Ok(reply(213, "213 11\r\n")), Ok(reply(213, "213 20261118110640\r\n"))]);
        assert_eq!(f.entry(&p, None), Some(Entry { path: p.clone(), kind: EntryKind::File, size: 11, mtime: Some(at) }));
        // A file read whole is as long as what came.
        assert_eq!(f.entry(&p, Some(4)).map(|e| e.size), Some(4));
        let mlst = "250-Listing /srv/in/a.csv\r\n type=file;size=11;modify=20261118110640; /srv/in/a.csv\r\n250 End\r\n";
        assert_eq!(asked(&[Ask::Mlst]).facts(&[Ok(reply(250, mlst))]), f);
    }

    #[test]
    fn reads_are_described_only_from_the_command_the_listing_took_its_times_from() {
        let feat = |mlsd, mlst, mdtm, size| Feat { mlsd, mlst, mdtm, size, ..Feat::default() };
        assert!(same_source(&feat(true, true, true, true)), "MLSD listing, MLST description");
        assert!(same_source(&feat(false, false, true, true)), "LIST listing, MDTM and SIZE");
        assert!(!same_source(&feat(true, false, true, true)), "MLSD listing, but only MDTM to ask");
        assert!(!same_source(&feat(false, false, true, false)), "no SIZE");
        assert!(!same_source(&feat(false, false, false, true)), "no MDTM");
    }

    #[test]
    fn a_refused_or_unreadable_answer_leaves_the_read_undescribed() {
        let p = RemotePath::parse("a").unwrap();
        let refused = |code| Err(FtpError::UnexpectedResponse(reply(code, &format!("{code} no\r\n"))));
        for mdtm in [refused(500), refused(502), refused(550), Ok(reply(213, "213 yesterday\r\n"))] {
            assert_eq!(asked(&[Ask::Size, Ask::Mdtm]).facts(&[Ok(reply(213, "213 11\r\n")), mdtm]).entry(&p, None), None);
        }
        // A time without a size: only a whole read (which knows its length) is described.
        let f = asked(&[Ask::Size, Ask::Mdtm]).facts(&[refused(550), Ok(reply(213, "213 20261118110640\r\n"))]);
        assert_eq!((f.entry(&p, None), f.entry(&p, Some(3)).map(|e| e.size)), (None, Some(3)));
        let folder = "250-Listing /srv\r\n type=cdir;modify=20261118110640; /srv\r\n250 End\r\n";
        assert_eq!(asked(&[Ask::Mlst]).facts(&[Ok(reply(250, folder))]).entry(&p, Some(1)), None);
    }
}
