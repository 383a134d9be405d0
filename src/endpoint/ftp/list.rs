//! Reading FTP directory listings: `MLSD`/`MLST` facts (RFC 3659) and `LIST` lines in the Unix
//! (`ls -l`) and Windows/IIS (DOS) formats.
//!
//! Owns the parsing only, as pure functions over the listing text. Lines are split on `\r\n`
//! (the protocol's line end), so a name containing a bare `\n` stays in one line and is later
//! refused as a name, instead of turning into two entries. A server that ends lines with a bare
//! `\n` cuts such a name in two: the entry before a line that does not parse is then reported
//! as cut ([`Line::Cut`]) rather than listed under the first half of its name. Which command to
//! send, logging, and refining `LIST` times with `MDTM`, is `super`'s business.
//!
//! Times: MLSD/MLST/MDTM are UTC with second precision. `LIST` shows minutes (or only the day,
//! for files older than about six months), in the server's time zone, without a year for recent
//! files; it is read as UTC and the year is guessed as the latest one not in the future.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike, NaiveDate};

use crate::endpoint::{EntryKind, Special};

/// One listed entry, before its name is checked and joined to a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Listed {
    pub name: String,
    pub kind: EntryKind,
    pub size: u64,
    pub mtime: Option<SystemTime>,
}

/// One line of a listing, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line {
    /// A listed entry.
    Entry(Listed),
    /// The whole name (as far as the listing shows it, lines joined with `\n`) of an entry that
    /// a bare `\n` in its name cut across lines; only seen in bare-`\n` listings.
    Cut(String),
    /// A line that is not UTF-8: the entry's name where the line, decoded lossily, is one;
    /// else the whole line, lossily.
    NotUtf8(String),
    /// A line a listing holds besides its entries: `total 12`, `.`/`..`.
    NotEntry(String),
    /// A line in a format not understood (a localized month, another date format, a kind of
    /// server not known here): whatever file it lists can never be taken, so it is told of,
    /// not passed over.
    Unread(String),
}

/// Reads a whole `MLSD` (`mlsd`) or `LIST` listing. In a bare-`\n` listing, a line that does
/// not parse right after an entry is taken for the rest of that entry's name (a name containing
/// `\n`): the entry turns into [`Line::Cut`], so a file named after the first half, which does
/// not exist, is never listed.
pub(super) fn read(raw: &[u8], mlsd: bool, now: SystemTime) -> Vec<Line> {
    let bare_lf = !uses_crlf(raw);
    let mut out: Vec<Line> = Vec::new();
    for bytes in split_lines(raw) {
        let text = std::str::from_utf8(bytes);
        let parsed = match text {
            Ok(line) if mlsd => mlsx_line(line, false),
            Ok(line) => list_line(line, now),
            Err(_) => None,
        };
        let cut_so_far = match out.last() {
            Some(Line::Entry(l)) => Some(l.name.as_str()),
            Some(Line::Cut(name)) => Some(name.as_str()),
            _ => None,
        };
        if parsed.is_none()
            && bare_lf
            && let Some(start) = cut_so_far
        {
            let cut = Line::Cut(format!("{start}\n{}", String::from_utf8_lossy(bytes)));
            out.pop();
            out.push(cut);
            continue;
        }
        out.push(match (parsed, text) {
            (Some(Some(l)), _) => Line::Entry(l),
            (Some(None), Ok(line)) => Line::NotEntry(line.to_string()),
            (None, Ok(line)) if is_total(line) => Line::NotEntry(line.to_string()),
            (None, Ok(line)) => Line::Unread(line.to_string()),
            (_, Err(_)) => {
                let lossy = String::from_utf8_lossy(bytes);
                let parsed = if mlsd { mlsx_line(&lossy, false) } else { list_line(&lossy, now) };
                Line::NotUtf8(parsed.flatten().map_or_else(|| lossy.into_owned(), |l| l.name))
            }
        });
    }
    out
}

/// `total 12`: the blocks `ls -l` (and servers that write its format) count before the entries.
fn is_total(line: &str) -> bool {
    line.strip_prefix("total ").is_some_and(|n| !n.trim().is_empty() && n.trim().bytes().all(|b| b.is_ascii_digit()))
}

/// Whether a listing ends its lines with `\r\n` (as it should) rather than a bare `\n`.
fn uses_crlf(raw: &[u8]) -> bool {
    raw.windows(2).any(|w| w == b"\r\n")
}

/// The lines of a listing: split on `\r\n`, or on `\n` for servers that send bare line feeds
/// (then a name containing `\n` cannot be told apart, and is cut). Empty lines are dropped.
fn split_lines(raw: &[u8]) -> Vec<&[u8]> {
    let crlf = uses_crlf(raw);
    let mut out = Vec::new();
    let mut rest = raw;
    loop {
        let end = if crlf { rest.windows(2).position(|w| w == b"\r\n") } else { rest.iter().position(|&b| b == b'\n') };
        let (line, next) = match end {
            Some(i) => (&rest[..i], &rest[i + if crlf { 2 } else { 1 }..]),
            None => (rest, &rest[rest.len()..]),
        };
        if !line.is_empty() {
            out.push(line);
        }
        if next.is_empty() {
            return out;
        }
        rest = next;
    }
}

/// Parses the entry line of an `MLST` reply (leading space optional). The name is whatever
/// the server echoes; callers know which path they asked about. Here `cdir` (the folder
/// itself) is a folder.
pub(super) fn parse_mlst(line: &str) -> Option<Listed> {
    mlsx_line(line.strip_prefix(' ').unwrap_or(line), true).flatten()
}

/// An `MLSD` line (`fact=value;…; name`), or with `mlst` the entry line of an `MLST` reply:
/// `None` if it is not one, `Some(None)` for the `.`/`..` entries (`cdir`, `pdir`) of `MLSD`.
/// Types other than file and dir (symlinks, devices) are `Other`.
fn mlsx_line(line: &str, mlst: bool) -> Option<Option<Listed>> {
    // RFC 3659 §7.2: facts end with ";", then one space, then the name (which may contain
    // ";" and spaces, at either end too).
    let (facts, name) = match line.strip_prefix(' ') {
        Some(name) => ("", name),
        None => {
            let end = line.find("; ")?;
            (&line[..=end], &line[end + 2..])
        }
    };
    let mut kind = None;
    let mut size = None;
    let mut mtime = None;
    // After a link's `type=OS.unix=slink:TARGET`, pieces without `=` are the rest of a target
    // holding `;` (ProFTPD writes it raw): never a reason to leave the line unread.
    let mut in_target = false;
    for fact in facts.split(';').filter(|f| !f.is_empty()) {
        let Some((key, value)) = fact.split_once('=') else {
            if in_target {
                continue;
            }
            return None;
        };
        in_target = false;
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                kind = Some(match value.to_ascii_lowercase().as_str() {
                    "cdir" | "pdir" if mlst => EntryKind::Dir,
                    "cdir" | "pdir" => return Some(None),
                    "file" => EntryKind::File,
                    "dir" => EntryKind::Dir,
                    // `OS.unix=slink:/target` (ProFTPD), `OS.unix=symlink` (Pure-FTPd).
                    t if t.starts_with("os.unix=slink") || t.starts_with("os.unix=symlink") => {
                        in_target = t.starts_with("os.unix=slink:");
                        EntryKind::Other(Special::Symlink)
                    }
                    _ => EntryKind::Other(Special::Unknown),
                })
            }
            "size" => size = value.parse::<u64>().ok(),
            "modify" => mtime = parse_mdtm(value),
            _ => {}
        }
    }
    if !mlst && (name.is_empty() || name == "." || name == "..") {
        return Some(None);
    }
    let kind = kind.unwrap_or(EntryKind::Other(Special::Unknown));
    let size = if kind == EntryKind::File { size.unwrap_or(0) } else { 0 };
    Some(Some(Listed { name: name.to_string(), kind, size, mtime }))
}

/// `YYYYMMDDHHMMSS[.fff]` (MLSx `modify`, MDTM replies), UTC, to whole seconds.
pub(super) fn parse_mdtm(text: &str) -> Option<SystemTime> {
    let digits = text.trim().split('.').next()?;
    if digits.len() != 14 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<u32>().ok();
    let date = NaiveDate::from_ymd_opt(i32::try_from(n(0..4)?).ok()?, n(4..6)?, n(6..8)?)?;
    let at = date.and_hms_opt(n(8..10)?, n(10..12)?, n(12..14)?)?;
    from_unix(at.and_utc().timestamp())
}

/// A `LIST` line, Unix format first, then DOS: `None` for anything else (`total 12`, unknown
/// formats), `Some(None)` for the `.`/`..` entries.
fn list_line(line: &str, now: SystemTime) -> Option<Option<Listed>> {
    let listed = parse_unix(line, now).or_else(|| parse_dos(line))?;
    Some((listed.name != "." && listed.name != "..").then_some(listed))
}

/// The target of the symbolic link `name` as a Unix `LIST` shows it (`lrwx… name -> target`,
/// as `ls -l` and vsftpd write it); `None` when the listing has no such link or does not say
/// (MLSD, DOS listings).
pub(super) fn link_target(raw: &[u8], name: &str) -> Option<String> {
    let now = SystemTime::now();
    split_lines(raw).into_iter().filter_map(|bytes| std::str::from_utf8(bytes).ok()).find_map(|line| {
        let listed = parse_unix(line, now).filter(|l| line.starts_with('l') && l.name == name)?;
        // The columns before the name hold no arrow: the first ` name -> ` is the name's.
        let arrow = format!(" {} -> ", listed.name);
        let at = line.find(&arrow)?;
        Some(line[at + arrow.len()..].to_string()).filter(|t| !t.is_empty())
    })
}

/// Words of a line with their byte offsets, split on runs of spaces.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c == ' ', start) {
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &line[s..]));
    }
    out
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// `drwxr-xr-x 2 owner group 4096 Nov 25 02:08 name`: found by its date (month, day, time or
/// year) after a size; the owner/group columns may be missing. The name is everything after
/// the one space that follows the date, so leading spaces survive.
fn parse_unix(line: &str, now: SystemTime) -> Option<Listed> {
    let w = words(line);
    let perms = w.first()?.1;
    if perms.len() < 10 || !"-dlbcps".contains(perms.chars().next()?) {
        return None;
    }
    let kind = match perms.as_bytes()[0] {
        b'-' => EntryKind::File,
        b'd' => EntryKind::Dir,
        b'l' => EntryKind::Other(Special::Symlink),
        b'p' => EntryKind::Other(Special::Fifo),
        b's' => EntryKind::Other(Special::Socket),
        b'b' | b'c' => EntryKind::Other(Special::Device),
        _ => EntryKind::Other(Special::Unknown),
    };
    // The date: the first month name (from the 3rd word on) that is followed by a day and a
    // time or year, and preceded by a size.
    let i = (2..w.len().saturating_sub(3)).find(|&i| {
        month(w[i].1).is_some()
            && w[i + 1].1.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d))
            && (is_clock(w[i + 2].1) || is_year(w[i + 2].1))
            && w[i - 1].1.bytes().all(|b| b.is_ascii_digit())
    })?;
    let size: u64 = w[i - 1].1.parse().ok()?;
    let (at, text) = w[i + 2];
    let name_start = at + text.len() + 1;
    let mut name = line.get(name_start..)?;
    if kind == EntryKind::Other(Special::Symlink) {
        // `link -> target`: the link's own name.
        name = name.split(" -> ").next().unwrap_or(name);
    }
    if name.is_empty() {
        return None;
    }
    let mtime = unix_time(month(w[i].1)?, w[i + 1].1.parse().ok()?, text, now);
    Some(Listed { name: name.to_string(), kind, size: if kind == EntryKind::File { size } else { 0 }, mtime })
}

fn month(word: &str) -> Option<u32> {
    let lower = word.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == lower).map(|i| i as u32 + 1)
}

fn is_clock(word: &str) -> bool {
    word.split_once(':').is_some_and(|(h, m)| {
        h.len() <= 2 && m.len() == 2 && h.parse::<u32>().is_ok_and(|h| h < 24) && m.parse::<u32>().is_ok_and(|m| m < 60)
    })
}

fn is_year(word: &str) -> bool {
    word.len() == 4 && word.parse::<i32>().is_ok_and(|y| y > 1900)
}

/// `Nov 25 02:08` (the year is the latest one that does not put the time more than a day in
/// the future) or `Nov 25 2024` (midnight).
fn unix_time(month: u32, day: u32, time_or_year: &str, now: SystemTime) -> Option<SystemTime> {
    if is_year(time_or_year) {
        let date = NaiveDate::from_ymd_opt(time_or_year.parse().ok()?, month, day)?;
        return from_unix(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp());
    }
    let (h, m) = time_or_year.split_once(':')?;
    let (h, m) = (h.parse().ok()?, m.parse().ok()?);
    let now_secs = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    let this_year = chrono::DateTime::from_timestamp(now_secs, 0)?.year();
    for year in [this_year, this_year - 1] {
        // Feb 29 of a non-leap year does not exist: try the year before.
        let Some(at) = NaiveDate::from_ymd_opt(year, month, day).and_then(|d| d.and_hms_opt(h, m, 0)) else { continue };
        let secs = at.and_utc().timestamp();
        if secs <= now_secs + 86_400 {
            return from_unix(secs);
        }
    }
    None
}

/// `10-19-20  03:19PM       <DIR>          name` / `04-08-2014  15:09    1403 name` (IIS, 2-
/// or 4-digit years, 12- or 24-hour clock). IIS writes the size (right-aligned) or `<DIR>` in
/// a field of [`DOS_FIELD`] characters after the time, then one space, so that the name
/// starts at a fixed column: read from there, a name's leading spaces are kept. A line laid
/// out otherwise (another server's) has the spaces after its size or `<DIR>` taken as the
/// separator, a name's own leading spaces with them.
fn parse_dos(line: &str) -> Option<Listed> {
    let w = words(line);
    let (date, mut i) = (w.first()?.1, 1);
    let mut parts = date.split('-');
    let (mo, d, y) = (parts.next()?.parse::<u32>().ok()?, parts.next()?.parse::<u32>().ok()?, parts.next()?);
    let year: i32 = match (y.len(), y.parse::<i32>().ok()?) {
        // Two digits: 00–69 are 20xx, 70–99 are 19xx.
        (2, yy) if yy < 70 => 2000 + yy,
        (2, yy) => 1900 + yy,
        (4, yyyy) => yyyy,
        _ => return None,
    };
    let clock = w.get(i)?.1.to_ascii_uppercase();
    let mut clock_end = w[i].0 + w[i].1.len();
    i += 1;
    let (clock, pm) = match (clock.strip_suffix("AM"), clock.strip_suffix("PM")) {
        (Some(c), _) => (c.to_string(), Some(false)),
        (_, Some(c)) => (c.to_string(), Some(true)),
        _ => match w.get(i).map(|x| x.1.to_ascii_uppercase()) {
            Some(s) if s == "AM" || s == "PM" => {
                clock_end = w[i].0 + w[i].1.len();
                i += 1;
                (clock, Some(s == "PM"))
            }
            _ => (clock, None),
        },
    };
    let (h, m) = clock.split_once(':')?;
    let (mut h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    if let Some(pm) = pm {
        h = h % 12 + if pm { 12 } else { 0 };
    }
    let (at, what) = *w.get(i)?;
    let (kind, size) = if what.eq_ignore_ascii_case("<DIR>") {
        (EntryKind::Dir, 0)
    } else {
        (EntryKind::File, what.replace(',', "").parse::<u64>().ok()?)
    };
    let end = at + what.len();
    let field_end = clock_end + DOS_FIELD;
    // IIS: the size ends where the field does; `<DIR>` starts 7 columns into it, and spaces
    // fill the rest (the field is all in one piece: `end` is at most `field_end`).
    let iis = line.as_bytes().get(field_end) == Some(&b' ')
        && match kind {
            EntryKind::File => end == field_end,
            _ => at == clock_end + 7 && line.get(end..field_end).is_some_and(|pad| pad.bytes().all(|b| b == b' ')),
        };
    let name = if iis { line.get(field_end + 1..)? } else { line.get(end..)?.trim_start_matches(' ') };
    if name.is_empty() {
        return None;
    }
    let mtime = NaiveDate::from_ymd_opt(year, mo, d).and_then(|d| d.and_hms_opt(h, m, 0)).and_then(|t| from_unix(t.and_utc().timestamp()));
    Some(Listed { name: name.to_string(), kind, size, mtime })
}

/// The width of the size or `<DIR>` field IIS writes after the time, before the one space
/// that ends it.
const DOS_FIELD: usize = 21;

/// `secs` after (or, negative, before) 1970 as a time. A partner's file dated before 1970 (an
/// archive's old date kept by its upload) has a time like any other: `None` made the `MDTM`
/// reply unreadable, which stopped the whole listing, every other file with it.
fn from_unix(secs: i64) -> Option<SystemTime> {
    match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH.checked_add(Duration::from_secs(s)),
        Err(_) => UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_mlsx(line: &str) -> Option<Listed> {
        mlsx_line(line, false).flatten()
    }

    fn parse_list(line: &str, now: SystemTime) -> Option<Listed> {
        list_line(line, now).flatten()
    }

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<SystemTime> {
        from_unix(NaiveDate::from_ymd_opt(y, mo, d).unwrap().and_hms_opt(h, mi, s).unwrap().and_utc().timestamp())
    }

    #[test]
    fn splits_on_crlf_and_keeps_bare_line_feeds_inside_names() {
        let raw = b"a\r\nline\nbreak\r\n\r\nb";
        assert_eq!(split_lines(raw), vec![&b"a"[..], b"line\nbreak", b"b"]);
        assert_eq!(split_lines(b"a\nb\n"), vec![&b"a"[..], b"b"]);
        assert!(split_lines(b"").is_empty());
    }

    #[test]
    fn a_line_that_is_not_utf8_gives_the_name_it_lists() {
        let now = at(2026, 11, 25, 12, 0, 0).unwrap();
        // Before: the whole line, lossily (`-rw-r--r-- 1 u g 1 Nov 25 02:08 caf�.csv`), was
        // what a warning showed of it.
        let raw = b"-rw-r--r-- 1 u g 1 Nov 25 02:08 caf\xc3.csv\r\ntype=file;size=1; x\xff\r\n\xff\r\n";
        assert_eq!(
            read(raw, false, now),
            // A line that is no entry (an MLSD line in a LIST listing) stays whole.
            vec![
                Line::NotUtf8("caf\u{fffd}.csv".into()),
                Line::NotUtf8("type=file;size=1; x\u{fffd}".into()),
                Line::NotUtf8("\u{fffd}".into())
            ]
        );
        assert_eq!(read(b"type=file;size=1; x\xff\r\n", true, now), vec![Line::NotUtf8("x\u{fffd}".into())]);
    }

    #[test]
    fn a_name_cut_by_a_bare_line_feed_is_not_listed_under_its_first_half() {
        let now = at(2026, 11, 25, 12, 0, 0).unwrap();
        let file = |name: &str| Line::Entry(Listed { name: name.into(), kind: EntryKind::File, size: 1, mtime: at(2026, 11, 25, 2, 8, 0) });
        // Before: `a` (no such file) was listed and `b.txt` logged at debug level only.
        let raw = b"total 8\n-rw-r--r-- 1 u g 1 Nov 25 02:08 a\nb.txt\n-rw-r--r-- 1 u g 1 Nov 25 02:08 c\n";
        assert_eq!(read(raw, false, now), vec![Line::NotEntry("total 8".into()), Line::Cut("a\nb.txt".into()), file("c")]);
        // Two line feeds in one name; a non-UTF-8 rest of the name.
        let raw = b"-rw-r--r-- 1 u g 1 Nov 25 02:08 a\nb\nc\xff\n-rw-r--r-- 1 u g 1 Nov 25 02:08 d";
        assert_eq!(read(raw, false, now), vec![Line::Cut("a\nb\nc\u{fffd}".into()), file("d")]);
        // MLSD too; its `.`/`..` lines parse, so they cut nothing.
        let raw = b"type=file;size=1; a\nb\ntype=cdir; .\ntype=file;size=1;modify=20261125020800; c\ntype=pdir; ..\n";
        assert_eq!(
            read(raw, true, now),
            vec![Line::Cut("a\nb".into()), Line::NotEntry("type=cdir; .".into()), file("c"), Line::NotEntry("type=pdir; ..".into())]
        );
        // With CRLF line ends the name stays whole (and is refused later, as a name).
        let raw = b"-rw-r--r-- 1 u g 1 Nov 25 02:08 a\nb\r\nnot an entry\r\n";
        assert_eq!(read(raw, false, now), vec![file("a\nb"), Line::Unread("not an entry".into())]);
    }

    /// A line in a format not read here lists a file that can never be taken: it is told of
    /// (`Unread`), where it was passed over as not an entry — a server listing in a format
    /// not known here showed an empty folder, run after run, while files piled up in it.
    #[test]
    fn a_line_in_a_format_not_understood_is_told_apart_from_what_is_not_an_entry() {
        let now = at(2026, 12, 6, 12, 0, 0).unwrap();
        let raw = b"total 16\r\n\
            drwxr-xr-x 2 u g 4096 Dec  6 10:00 .\r\n\
            -rw-r--r-- 1 u g 5 Dec  6 10:00 a.csv\r\n\
            -rw-r--r-- 1 u g 5 6 Dez 10:00 b.csv\r\n\
            -rw-r--r-- 1 u g 5 2026-12-06 10:00 c.csv\r\n\
            06.12.2026  10:00  5 d.csv\r\n";
        let lines = read(raw, false, now);
        assert_eq!(lines[..2], [Line::NotEntry("total 16".into()), Line::NotEntry("drwxr-xr-x 2 u g 4096 Dec  6 10:00 .".into())]);
        assert!(matches!(&lines[2], Line::Entry(l) if l.name == "a.csv"), "{lines:?}");
        assert_eq!(
            lines[3..],
            [
                Line::Unread("-rw-r--r-- 1 u g 5 6 Dez 10:00 b.csv".into()),
                Line::Unread("-rw-r--r-- 1 u g 5 2026-12-06 10:00 c.csv".into()),
                Line::Unread("06.12.2026  10:00  5 d.csv".into()),
            ]
        );
        assert_eq!(read(b"type=file;size=1; a\r\ngarbage\r\n", true, now)[1], Line::Unread("garbage".into()));
        assert!(!is_total("total") && !is_total("total x") && is_total("total 0"));
    }

    #[test]
    fn mlsd_lines() {
        let l = parse_mlsx("type=file;size=3;modify=20261125020853;UNIX.mode=0644; a;b c.txt").unwrap();
        assert_eq!(l, Listed { name: "a;b c.txt".into(), kind: EntryKind::File, size: 3, mtime: at(2026, 11, 25, 2, 8, 53) });
        let l = parse_mlsx("type=file;size=1;modify=20261125020853.123;unique=fe;   padded  ").unwrap();
        assert_eq!((l.name.as_str(), l.mtime), ("  padded  ", at(2026, 11, 25, 2, 8, 53)));
        let l = parse_mlsx("type=dir;sizd=4096;modify=20261125020853; sub").unwrap();
        assert_eq!((l.kind, l.size), (EntryKind::Dir, 0));
        assert_eq!(parse_mlsx("type=OS.unix=slink:/x;modify=20260101000000; ln").unwrap().kind, EntryKind::Other(Special::Symlink));
        assert_eq!(parse_mlsx("type=OS.unix=chr-1/3;modify=20260101000000; null").unwrap().kind, EntryKind::Other(Special::Unknown));
        assert_eq!(parse_mlsx("type=cdir;modify=20261125020912; ."), None);
        assert_eq!(parse_mlsx("type=pdir;modify=20261125020912; .."), None);
        assert_eq!(parse_mlsx("garbage"), None);
        let l = parse_mlst(" type=cdir;sizd=4096;modify=20261125020912; /srv/data").unwrap();
        assert_eq!((l.kind, l.mtime), (EntryKind::Dir, at(2026, 11, 25, 2, 9, 12)));
        assert_eq!(parse_mdtm("19991231235959"), at(1999, 12, 31, 23, 59, 59));
        assert_eq!(parse_mdtm("2026"), None);
    }

    /// A file dated before 1970 (vsftpd's `MDTM` gives `19600101000000`, a `LIST` line `Jan  1
    /// 1960`, pure-ftpd's MLSD `modify=19600101000000`) has its time. Before, none: the
    /// unreadable MDTM reply stopped vsftpd's whole listing (the run aborted, no file taken),
    /// and pure-ftpd's file had no time at all.
    #[test]
    fn a_time_before_1970_is_read() {
        let old = UNIX_EPOCH - Duration::from_secs(315_619_200);
        assert_eq!(parse_mdtm("19600101000000"), Some(old));
        assert_eq!(parse_mlsx("type=file;size=1;modify=19600101000000; old.csv").unwrap().mtime, Some(old));
        let now = at(2026, 11, 25, 12, 0, 0).unwrap();
        assert_eq!(parse_list("-rw-r--r--    1 1000     1000            1 Jan 01  1960 old.csv", now).unwrap().mtime, Some(old));
    }

    /// A symbolic link in an MLSD listing is an entry of its own (never taken, told once as
    /// `not_taken` by the engine), whatever its target: a dangling one included, and one whose
    /// target ProFTPD writes raw into the `type` fact with a `;` in it (`slink:/a;b`), which
    /// made the whole line unreadable (`unread`, as if the server's format were unknown).
    #[test]
    fn a_symbolic_link_in_mlsd_is_a_link_whatever_its_target() {
        let link = |line: &str| parse_mlsx(line).map(|l| (l.name, l.kind));
        let symlink = EntryKind::Other(Special::Symlink);
        assert_eq!(link("type=OS.unix=symlink;modify=20260101000000; dang.csv"), Some(("dang.csv".into(), symlink)));
        assert_eq!(link("type=OS.unix=slink:;modify=20260101000000; dang.csv"), Some(("dang.csv".into(), symlink)));
        assert_eq!(link("type=OS.unix=slink:/gone/x.csv;modify=20260101000000; dang.csv"), Some(("dang.csv".into(), symlink)));
        assert_eq!(link("type=OS.unix=slink:/gone/a;b.csv;modify=20260101000000; l;x.csv"), Some(("l;x.csv".into(), symlink)));
        assert_eq!(link("modify=20260101000000;type=OS.unix=slink:a;b;c;UNIX.mode=0777; l"), Some(("l".into(), symlink)));
        // Elsewhere a fact without `=` is still a line not understood.
        assert_eq!(parse_mlsx("type=file;size=1;junk; x"), None);
    }

    #[test]
    fn unix_list_lines() {
        let now = at(2026, 11, 25, 12, 0, 0).unwrap();
        let l = parse_list("-rw-r--r--    1 1001     1001            1 Nov 25 02:08   padded  ", now).unwrap();
        assert_eq!(l, Listed { name: "  padded  ".into(), kind: EntryKind::File, size: 1, mtime: at(2026, 11, 25, 2, 8, 0) });
        let l = parse_list("drwxr-xr-x    2 wharftest  wharftest        4096 Nov 25 02:08 sub dir", now).unwrap();
        assert_eq!((l.name.as_str(), l.kind, l.size), ("sub dir", EntryKind::Dir, 0));
        // A recent date later in the year than today belongs to last year.
        let l = parse_list("-rw-r--r-- 1 u g 10 Dec 24 18:00 x", now).unwrap();
        assert_eq!(l.mtime, at(2025, 12, 24, 18, 0, 0));
        let l = parse_list("-rw-r--r-- 1 u g 5 Jan  3  2020 old file", now).unwrap();
        assert_eq!((l.name.as_str(), l.mtime), ("old file", at(2020, 1, 3, 0, 0, 0)));
        // No group column; a month-like word in the owner column.
        let l = parse_list("-rw-r--r-- 1 may 5 Mar 1 09:15 m", now).unwrap();
        assert_eq!((l.name.as_str(), l.size), ("m", 5));
        let l = parse_list("lrwxrwxrwx 1 u g 7 Nov 25 02:08 link -> target", now).unwrap();
        assert_eq!((l.name.as_str(), l.kind), ("link", EntryKind::Other(Special::Symlink)));
        let l = parse_list("prw-r--r-- 1 u g 0 Nov 25 02:08 pipe", now).unwrap();
        assert_eq!((l.name.as_str(), l.kind), ("pipe", EntryKind::Other(Special::Fifo)));
        let raw = b"-rw-r--r-- 1 u g 1 Nov 25 02:08 link\r\nlrwxrwxrwx 1 u g 7 Nov 25 02:08 dang -> ../gone/x\r\n";
        assert_eq!(link_target(raw, "dang").as_deref(), Some("../gone/x"));
        assert_eq!(link_target(raw, "link"), None);
        assert_eq!(link_target(raw, "x"), None);
        assert_eq!(parse_list("drwxr-xr-x 3 u g 4096 Nov 25 02:09 .", now), None);
        assert_eq!(parse_list("total 28", now), None);
    }

    #[test]
    fn dos_list_lines() {
        let now = at(2026, 1, 1, 0, 0, 0).unwrap();
        let l = parse_list("10-19-20  03:19PM       <DIR>          pub", now).unwrap();
        assert_eq!(l, Listed { name: "pub".into(), kind: EntryKind::Dir, size: 0, mtime: at(2020, 10, 19, 15, 19, 0) });
        let l = parse_list("04-08-14  12:09AM                 1,403 read me.txt", now).unwrap();
        assert_eq!(l, Listed { name: "read me.txt".into(), kind: EntryKind::File, size: 1403, mtime: at(2014, 4, 8, 0, 9, 0) });
        let l = parse_list("04-08-2014  15:09 403 a.txt", now).unwrap();
        assert_eq!((l.size, l.mtime), (403, at(2014, 4, 8, 15, 9, 0)));
        let l = parse_list("12-31-99  11:59 PM  7 y2k", now).unwrap();
        assert_eq!(l.mtime, at(1999, 12, 31, 23, 59, 0));
    }

    /// IIS lays its listing out in columns: the name starts one space after a field of fixed
    /// width, so a name's leading spaces are the name's. They were taken for the separator
    /// (` lead.csv` listed as `lead.csv`, a file that does not exist: its download failed).
    #[test]
    fn iis_list_lines_keep_the_leading_spaces_of_a_name() {
        let now = at(2027, 1, 1, 0, 0, 0).unwrap();
        let name = |line: &str| parse_list(line, now).map(|l| (l.name, l.kind, l.size));
        let (file, dir) = (EntryKind::File, EntryKind::Dir);
        // As IIS writes them: 2- and 4-digit years, 12- and 24-hour clocks.
        assert_eq!(name("06-29-95  03:05PM       <DIR>          muntemp"), Some(("muntemp".into(), dir, 0)));
        assert_eq!(name("05-02-95  10:03AM               961590 naxp11e.zip"), Some(("naxp11e.zip".into(), file, 961590)));
        assert_eq!(name("05-17-2007  07:58PM       <DIR>          muntemp"), Some(("muntemp".into(), dir, 0)));
        assert_eq!(name("09-09-2008  03:50AM                 1506 naxp11e.zip"), Some(("naxp11e.zip".into(), file, 1506)));
        assert_eq!(name("05-27-11  09:31       <DIR>          3"), Some(("3".into(), dir, 0)));
        // Names beginning with spaces, kept whole (and trailing ones, as ever).
        assert_eq!(name("12-01-26  10:15AM                 1234  lead.csv"), Some((" lead.csv".into(), file, 1234)));
        assert_eq!(name("12-01-2026  10:15AM                 1234   two.csv "), Some(("  two.csv ".into(), file, 1234)));
        assert_eq!(name("12-01-26  10:15                    7  h24.csv"), Some((" h24.csv".into(), file, 7)));
        assert_eq!(name("12-01-26  10:15AM       <DIR>           sub"), Some((" sub".into(), dir, 0)));
        assert_eq!(name("12-01-26  10:15AM 18446744073709551615  max.csv"), Some((" max.csv".into(), file, u64::MAX)));
        // Laid out otherwise: the spaces after the size or `<DIR>` separate, however many.
        assert_eq!(name("12-01-26  10:15AM       1234 name"), Some(("name".into(), file, 1234)));
        assert_eq!(name("12-01-26  10:15AM  <DIR>  sub"), Some(("sub".into(), dir, 0)));
        assert_eq!(name("12-01-26  10:15AM                 1234 "), None, "no name");
    }
}
