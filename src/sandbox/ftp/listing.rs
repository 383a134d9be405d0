//! How the sandbox's FTP server shows files: `MLSD`/`MLST` facts (RFC 3659), `LIST` lines in
//! the Unix `ls -l` form, and `MDTM`/`MFMT` times. Pure functions over metadata.
//!
//! Times are UTC to the second. Names containing CR or LF cannot be carried by a listing
//! (the client would read two lines) and are left out, as the SFTP side cannot leave them out
//! (it has lengths, not lines). Symlinks are shown as symlinks (`type=OS.unix=symlink`), as
//! the SFTP side shows them.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDateTime, Utc};

/// What `FEAT` says `MLST` offers (`*`: sent by default).
pub const MLST_FACTS: &str = "type*;size*;modify*;";

/// `type=…;size=…;modify=…;` for an entry (lstat metadata).
pub fn facts(md: &Metadata) -> String {
    let ft = md.file_type();
    let modify = time(mtime(md));
    if ft.is_dir() {
        format!("type=dir;modify={modify};")
    } else if ft.is_file() {
        format!("type=file;size={};modify={modify};", md.len())
    } else if ft.is_symlink() {
        format!("type=OS.unix=symlink;modify={modify};")
    } else {
        format!("type=OS.unix=special;modify={modify};")
    }
}

/// One `MLSD` line, `facts name\r\n`; `None` for a name a line cannot carry.
pub fn mlsd_line(md: &Metadata, name: &[u8]) -> Option<Vec<u8>> {
    line(format!("{} ", facts(md)).into_bytes(), name)
}

/// One `LIST` line, `-rw-r--r-- 1 ftp ftp 12 Dec  3 18:40 name\r\n` (the year instead of the
/// time for files more than about six months from `now`, as `ls` does).
pub fn list_line(md: &Metadata, name: &[u8], now: SystemTime) -> Option<Vec<u8>> {
    let t: DateTime<Utc> = mtime(md).into();
    let now: DateTime<Utc> = now.into();
    let recent = (now - t).num_days().abs() < 180;
    let when = if recent { t.format("%b %e %H:%M") } else { t.format("%b %e  %Y") };
    let head = format!("{} {:>3} ftp ftp {:>12} {when} ", mode_string(md), md.nlink(), md.len());
    line(head.into_bytes(), name)
}

fn line(mut head: Vec<u8>, name: &[u8]) -> Option<Vec<u8>> {
    if name.contains(&b'\r') || name.contains(&b'\n') {
        return None;
    }
    head.extend_from_slice(name);
    head.extend_from_slice(b"\r\n");
    Some(head)
}

/// `drwxr-xr-x`, `-rw-r--r--`, `lrwxrwxrwx`.
fn mode_string(md: &Metadata) -> String {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        '-'
    } else {
        '?'
    };
    let mode = md.mode();
    let mut s = String::with_capacity(10);
    s.push(kind);
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// The modification time, whole seconds (before 1970: 1970).
fn mtime(md: &Metadata) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(md.mtime()).unwrap_or(0))
}

/// `YYYYMMDDHHMMSS`, UTC (MDTM, MLSx `modify`).
pub fn time(t: SystemTime) -> String {
    let t: DateTime<Utc> = t.into();
    t.format("%Y%m%d%H%M%S").to_string()
}

/// The `MDTM` reply's time for `md`.
pub fn mdtm(md: &Metadata) -> String {
    time(mtime(md))
}

/// `MFMT`'s argument: `YYYYMMDDHHMMSS[.sss] path` → the time and the path.
pub fn parse_mfmt(arg: &str) -> Option<(SystemTime, &str)> {
    let (when, path) = arg.split_once(' ')?;
    let whole = when.split('.').next()?;
    if whole.len() != 14 || path.is_empty() {
        return None;
    }
    let t = NaiveDateTime::parse_from_str(whole, "%Y%m%d%H%M%S").ok()?.and_utc();
    let secs = u64::try_from(t.timestamp()).ok()?;
    Some((UNIX_EPOCH + Duration::from_secs(secs), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &std::path::Path, name: &str, mtime: u64) -> Metadata {
        let p = dir.join(name);
        std::fs::write(&p, b"12345").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(UNIX_EPOCH + Duration::from_secs(mtime)).unwrap();
        std::fs::symlink_metadata(&p).unwrap()
    }

    #[test]
    fn mlsd_lines_carry_type_size_and_utc_time() {
        let d = tempfile::tempdir().unwrap();
        let md = file(d.path(), "a", 1_764_787_200); // 2025-12-03 18:40:00 UTC
        assert_eq!(mlsd_line(&md, b"a b.csv").unwrap(), b"type=file;size=5;modify=20251203184000; a b.csv\r\n");
        let dir = std::fs::symlink_metadata(d.path()).unwrap();
        assert!(facts(&dir).starts_with("type=dir;modify="));
        std::os::unix::fs::symlink("a", d.path().join("l")).unwrap();
        assert!(facts(&std::fs::symlink_metadata(d.path().join("l")).unwrap()).starts_with("type=OS.unix=symlink;"));
    }

    #[test]
    fn names_with_line_ends_are_left_out() {
        let d = tempfile::tempdir().unwrap();
        let md = file(d.path(), "a", 0);
        assert!(mlsd_line(&md, b"x\r\ntype=file; evil").is_none());
        assert!(list_line(&md, b"x\ny", SystemTime::now()).is_none());
    }

    #[test]
    fn list_lines_look_like_ls() {
        let d = tempfile::tempdir().unwrap();
        let md = file(d.path(), "a", 1_764_787_200);
        let now = UNIX_EPOCH + Duration::from_secs(1_764_787_200 + 3600);
        let line = String::from_utf8(list_line(&md, b"a.csv", now).unwrap()).unwrap();
        assert!(line.starts_with("-rw"), "{line}");
        assert!(line.ends_with("            5 Dec  3 18:40 a.csv\r\n"), "{line:?}");
        let later = now + Duration::from_secs(365 * 86400);
        let line = String::from_utf8(list_line(&md, b"a.csv", later).unwrap()).unwrap();
        assert!(line.ends_with("Dec  3  2025 a.csv\r\n"), "{line:?}");
    }

    #[test]
    fn mfmt_arguments() {
        let (t, p) = parse_mfmt("20251203184000 /in/a b.csv").unwrap();
        assert_eq!((time(t), p), ("20251203184000".to_string(), "/in/a b.csv"));
        assert!(parse_mfmt("20251203184000.123 x").is_some());
        assert!(parse_mfmt("2025120318 x").is_none());
        assert!(parse_mfmt("20251203184000").is_none());
        assert!(parse_mfmt("20251303184000 x").is_none());
    }
}
