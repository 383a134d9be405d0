//! `check`: file-level checks before anything is parsed — size bounds, a name pattern,
//! non-empty, leading magic bytes, and a companion checksum file.
//!
//! Owns the size syntax (`100MB`, `5MiB`), the magic signatures and the checksum comparison.
//! It reads the staged file (for magic bytes and an MD5) but never the source: the companion
//! checksum's text is fetched by the engine and handed in.

use std::io::Read;
use std::path::Path;

use regex::Regex;

use crate::config::raw_steps::{ChecksumAlgo, MagicType, RawCheck, RawSize};

/// A built `check` step.
#[derive(Debug, Clone)]
pub struct Check {
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub name: Option<Regex>,
    pub non_empty: bool,
    pub magic: Vec<MagicType>,
    pub checksum: Option<ChecksumAlgo>,
}

/// Why `pattern` does not compile, in one line: what is wrong and where. (regex's own text
/// spreads over four lines — the pattern, a caret under it, the cause — and broke the
/// one-line `file:line:col: message` of `wharf validate`.)
fn bad_regex(pattern: &str, e: &regex::Error) -> String {
    let at = |what: &dyn std::fmt::Display, span: &regex_syntax::ast::Span| {
        let line = if span.start.line > 1 { format!("line {}, ", span.start.line) } else { String::new() };
        format!("bad regular expression: {what} (at {line}character {} of the pattern)", span.start.column)
    };
    match regex_syntax::Parser::new().parse(pattern) {
        Err(regex_syntax::Error::Parse(p)) => at(p.kind(), p.span()),
        Err(regex_syntax::Error::Translate(t)) => at(t.kind(), t.span()),
        // Parsed, but refused later (too big once compiled): regex's text is one line then.
        _ => {
            format!("bad regular expression: {}", crate::text::one_line(&e.to_string(), crate::text::SERVER_TEXT, crate::text::Keep::Start))
        }
    }
}

/// What the checks look at.
pub struct Subject<'a> {
    pub path: &'a Path,
    pub name: &'a str,
    pub size: u64,
    pub sha256: &'a str,
    /// The companion checksum file's text (or why it could not be read), when `checksum` is set.
    pub checksum_text: Option<&'a Result<String, String>>,
}

impl Check {
    pub fn build(raw: &RawCheck) -> Result<Check, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut size = |field: &'static str, s: &Option<RawSize>| match s.as_ref().map(parse_size) {
            Some(Err(e)) => {
                problems.push((field, e));
                None
            }
            Some(Ok(n)) => Some(n),
            None => None,
        };
        let min_size = size("min_size", &raw.min_size);
        let max_size = size("max_size", &raw.max_size);
        if let (Some(lo), Some(hi)) = (min_size, max_size)
            && lo > hi
        {
            problems.push(("max_size", format!("is smaller than min_size ({hi} < {lo} bytes)")));
        }
        let name = match raw.name.as_deref().map(|p| (p, Regex::new(p))) {
            Some((pattern, Err(e))) => {
                problems.push(("name", bad_regex(pattern, &e)));
                None
            }
            Some((_, Ok(r))) => Some(r),
            None => None,
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Check { min_size, max_size, name, non_empty: raw.non_empty, magic: raw.magic.clone(), checksum: raw.checksum })
    }

    /// The companion file's name for `name`, if a checksum is required.
    pub fn companion(&self, name: &str) -> Option<String> {
        self.checksum.map(|a| format!("{name}.{}", algo_name(a)))
    }

    /// Runs every check; returns each failure as a sentence. Errors reading the staged file are `Err`.
    /// The checks a listing can answer (emptiness, size bounds, name pattern), without the
    /// content: what `run` checks first, and what `wharf plan` can tell before a download.
    pub fn listing_problems(&self, name: &str, size: u64) -> Vec<String> {
        let mut out = Vec::new();
        if self.non_empty && size == 0 {
            out.push("the file is empty".to_string());
        }
        if let Some(min) = self.min_size.filter(|m| size < *m) {
            out.push(format!("the file has {size} bytes, less than the minimum of {min}"));
        }
        if let Some(max) = self.max_size.filter(|m| size > *m) {
            out.push(format!("the file has {size} bytes, more than the maximum of {max}"));
        }
        if let Some(re) = self.name.as_ref().filter(|re| !re.is_match(name)) {
            out.push(format!("the name `{name}` does not match the pattern `{}`", re.as_str()));
        }
        out
    }

    pub fn run(&self, s: &Subject<'_>) -> std::io::Result<Vec<String>> {
        let mut out = self.listing_problems(s.name, s.size);
        if !self.magic.is_empty() {
            let mut head = [0u8; 16];
            let n = read_prefix(s.path, &mut head)?;
            if !self.magic.iter().any(|m| matches_magic(*m, &head[..n])) {
                let names: Vec<&str> = self.magic.iter().map(|m| magic_name(*m)).collect();
                out.push(format!(
                    "the content does not start like {} (first bytes: {})",
                    names.join(" or "),
                    hex::encode(&head[..n.min(8)])
                ));
            }
        }
        if let Some(algo) = self.checksum {
            let companion = self.companion(s.name).unwrap_or_default();
            match s.checksum_text {
                None | Some(Err(_)) => {
                    let why = s.checksum_text.and_then(|r| r.as_ref().err()).map(|e| format!(": {e}")).unwrap_or_default();
                    out.push(format!("the checksum file {companion} is missing{why}"));
                }
                Some(Ok(text)) => match expected_digest(text, s.name, algo) {
                    Err(e) => out.push(format!("the checksum file {companion} {e}")),
                    Ok(want) => {
                        let have = match algo {
                            ChecksumAlgo::Sha256 => s.sha256.to_string(),
                            ChecksumAlgo::Md5 => md5_of(s.path)?,
                        };
                        if want != have {
                            out.push(format!("the {} checksum is {have}, but {companion} says {want}", algo_name(algo)));
                        }
                    }
                },
            }
        }
        Ok(out)
    }
}

/// The digest a checksum file gives for the file `name`, lower case. Takes what `sha256sum` /
/// `md5sum` write (`HEX  NAME`, `HEX *NAME`, one line per file), their `--tag` (BSD) form
/// (`SHA256 (NAME) = HEX`), and a bare `HEX`. A line naming files is used only for `name`
/// (compared without folders), so a checksum meant for another file is never taken for this
/// one. The error completes "the checksum file X …".
fn expected_digest(text: &str, name: &str, algo: ChecksumAlgo) -> Result<String, String> {
    let (tag, hex_len) = match algo {
        ChecksumAlgo::Sha256 => ("SHA256", 64),
        ChecksumAlgo::Md5 => ("MD5", 32),
    };
    let is_digest = |h: &str| h.len() == hex_len && h.bytes().all(|b| b.is_ascii_hexdigit());
    let base = |n: &str| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut named = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (digest, file) = if let Some((head, digest)) = line.rsplit_once(" = ")
            && let Some(file) =
                head.strip_prefix(tag).map(str::trim_start).and_then(|h| h.strip_prefix('(')).and_then(|h| h.strip_suffix(')'))
        {
            (digest.trim(), Some(file))
        } else {
            match line.split_once(char::is_whitespace) {
                Some((digest, rest)) => (digest, Some(rest.trim_start().trim_start_matches('*'))),
                None => (line, None),
            }
        };
        if !is_digest(digest) {
            let shown: String = line.chars().take(80).collect();
            return Err(format!(
                "is not in a form wharf reads (a {hex_len}-digit {tag} digest, as `sha256sum`/`md5sum` write it, or their `--tag` form): {shown:?}"
            ));
        }
        match file {
            None => return Ok(digest.to_ascii_lowercase()),
            Some(f) if base(f) == name => return Ok(digest.to_ascii_lowercase()),
            Some(f) => named.push(base(f)),
        }
    }
    match named.is_empty() {
        true => Err("is empty".into()),
        false => Err(format!("has no line for {name} (it names {})", named.join(", "))),
    }
}

fn algo_name(a: ChecksumAlgo) -> &'static str {
    match a {
        ChecksumAlgo::Sha256 => "sha256",
        ChecksumAlgo::Md5 => "md5",
    }
}

fn magic_name(m: MagicType) -> &'static str {
    match m {
        MagicType::Pdf => "PDF",
        MagicType::Zip => "ZIP",
        MagicType::Gzip => "gzip",
        MagicType::Png => "PNG",
        MagicType::Jpeg => "JPEG",
        MagicType::Xml => "XML",
    }
}

fn matches_magic(m: MagicType, head: &[u8]) -> bool {
    match m {
        MagicType::Pdf => head.starts_with(b"%PDF-"),
        MagicType::Zip => head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06"),
        MagicType::Gzip => head.starts_with(b"\x1f\x8b"),
        MagicType::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        MagicType::Jpeg => head.starts_with(b"\xff\xd8\xff"),
        MagicType::Xml => head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head).starts_with(b"<?xml"),
    }
}

/// What a file given to `parse` is when its first bytes are those of a packed or binary
/// format — an Excel workbook or a gzip file renamed `.csv` — as `(what, advice)`: such a
/// file is no text in any encoding. Read as Windows-1252 (where every byte is a character) it
/// was a CSV of garbage — delivered as a file of no records, as "read"; read as UTF-8 it was
/// refused as "not valid UTF-8" or "may be UTF-16", hints that lead nowhere.
pub(crate) fn not_text(head: &[u8]) -> Option<(&'static str, &'static str)> {
    const SPREADSHEET: &str = "a spreadsheet is no CSV: ask for it exported as CSV";
    const PACKED: &str = "a packed file is unpacked by a `command` step before `parse` (`run: [gunzip, -c]` for gzip)";
    const NO_RECORDS: &str = "it holds no records to read";
    let signed: [(MagicType, &str, &str); 5] = [
        (MagicType::Zip, "a ZIP archive (an Excel .xlsx workbook is one)", SPREADSHEET),
        (MagicType::Gzip, "a gzip archive", PACKED),
        (MagicType::Pdf, "a PDF document", NO_RECORDS),
        (MagicType::Png, "a PNG image", NO_RECORDS),
        (MagicType::Jpeg, "a JPEG image", NO_RECORDS),
    ];
    if let Some(&(_, what, advice)) = signed.iter().find(|(m, ..)| matches_magic(*m, head)) {
        return Some((what, advice));
    }
    let others: [(&[u8], &str, &str); 5] = [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel .xls workbook (or another old Microsoft Office file)", SPREADSHEET),
        (b"\xfd7zXZ\x00", "an xz archive", PACKED),
        (b"\x28\xb5\x2f\xfd", "a zstd archive", PACKED),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive", PACKED),
        (b"Rar!\x1a\x07", "a RAR archive", PACKED),
    ];
    // `BZh`, the block size (a digit) and the block magic (π's digits): `BZh` alone may begin a text.
    if head.len() >= 10 && head.starts_with(b"BZh") && head[3].is_ascii_digit() && head[4..10] == *b"\x31\x41\x59\x26\x53\x59" {
        return Some(("a bzip2 archive", PACKED));
    }
    others.iter().find(|(magic, ..)| head.starts_with(magic)).map(|&(_, what, advice)| (what, advice))
}

pub(crate) fn read_prefix(path: &Path, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut f = std::fs::File::open(path)?;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn md5_of(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut ctx = md5::Context::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => ctx.consume(&buf[..n]),
        }
    }
    Ok(format!("{:x}", ctx.finalize()))
}

/// A program's `max_output` (a `command` step's, `source.command`'s): most bytes it may
/// write, never zero, and the limit as the flow writes it, for messages (`1MiB`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxOutput {
    pub bytes: u64,
    pub shown: String,
}

impl MaxOutput {
    /// Parses the field; a zero limit is refused (no program could write anything).
    pub fn parse(raw: &RawSize) -> Result<MaxOutput, String> {
        match parse_size(raw)? {
            0 => Err("is zero: no program could write anything; give a size such as `10GiB`".to_string()),
            bytes => Ok(MaxOutput {
                bytes,
                shown: match raw {
                    RawSize::Bytes(n) => format!("{n} bytes"),
                    RawSize::Text(t) => t.trim().to_string(),
                },
            }),
        }
    }
}

/// Parses a size: bytes, or a number with `B`, `KB`/`MB`/`GB`/`TB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB`/`TiB` (powers of 1024).
pub fn parse_size(s: &RawSize) -> Result<u64, String> {
    let text = match s {
        RawSize::Bytes(n) => return Ok(*n),
        RawSize::Text(t) => t.trim(),
    };
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (num, unit) = (&text[..split], text[split..].trim());
    let factor: u64 = match unit {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1000_u64.pow(2),
        "GB" => 1000_u64.pow(3),
        "TB" => 1000_u64.pow(4),
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB; upper and lower case as written here)"
            ));
        }
    };
    let n: f64 = num.parse().map_err(|_| format!("`{text}` is not a size (write e.g. `1024`, `10KB`, `5MiB`)"))?;
    Ok((n * factor as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn a_bad_name_pattern_is_told_in_one_line_with_its_place() {
        let problem = |pattern: &str| bad_regex(pattern, &Regex::new(pattern).unwrap_err());
        // Before: "bad regular expression: regex parse error:\n    ^(ROSTER…\n     ^\nerror: unclosed group".
        assert_eq!(problem(r"^(ROSTER_\d{8}\.csv$"), "bad regular expression: unclosed group (at character 2 of the pattern)");
        assert_eq!(problem(r"^INV_\q"), "bad regular expression: unrecognized escape sequence (at character 6 of the pattern)");
        assert_eq!(problem("a\n(b"), "bad regular expression: unclosed group (at line 2, character 1 of the pattern)");
        let too_big = format!("a{{{}}}{{1000}}", 1000);
        assert!(!problem(&too_big).contains('\n'), "{}", problem(&too_big));
    }

    #[test]
    fn checksum_files_in_every_common_form_and_only_for_their_own_file() {
        let d = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let up = d.to_ascii_uppercase();
        let sha = ChecksumAlgo::Sha256;
        for text in [
            d.to_string(),
            format!("{d}\n"),
            format!("{d}  a.csv\n"),
            format!("{d} *a.csv\r\n"),
            format!("{up}  ./in/a.csv"),
            format!("SHA256 (a.csv) = {d}"),
            format!("{}  b.csv\n{d}  a.csv\n", "0".repeat(64)),
        ] {
            assert_eq!(expected_digest(&text, "a.csv", sha).as_deref(), Ok(d), "{text:?}");
        }
        let e = expected_digest(&format!("{d}  other.csv"), "a.csv", sha).unwrap_err();
        assert_eq!(e, "has no line for a.csv (it names other.csv)");
        let e = expected_digest("MD5 (a.csv) = 0cc175b9c0f1b6a831c399e269772661", "a.csv", sha).unwrap_err();
        assert!(e.starts_with("is not in a form wharf reads (a 64-digit SHA256 digest"), "{e}");
        assert!(expected_digest("sha256", "a.csv", sha).is_err());
        assert_eq!(expected_digest(" \n", "a.csv", sha).unwrap_err(), "is empty");
        let md5 = "0cc175b9c0f1b6a831c399e269772661";
        assert_eq!(expected_digest(&format!("MD5 (a.csv) = {md5}"), "a.csv", ChecksumAlgo::Md5).as_deref(), Ok(md5));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(&RawSize::Bytes(5)), Ok(5));
        assert_eq!(parse_size(&RawSize::Text("100MB".into())), Ok(100_000_000));
        assert_eq!(parse_size(&RawSize::Text("1.5 KiB".into())), Ok(1536));
        assert!(parse_size(&RawSize::Text("3 parsecs".into())).unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn every_check_reports_what_failed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"%PDF-1.7 hello").unwrap();
        let sha = hex::encode(sha2::Sha256::digest(b"%PDF-1.7 hello"));
        let raw = RawCheck {
            min_size: Some(RawSize::Bytes(1)),
            max_size: Some(RawSize::Text("10B".into())),
            name: Some(r"^INV_\d+\.pdf$".into()),
            non_empty: true,
            magic: vec![MagicType::Pdf],
            checksum: Some(ChecksumAlgo::Sha256),
        };
        let c = Check::build(&raw).unwrap();
        let good = Ok(format!("{sha}  INV_1.pdf\n"));
        let s = Subject { path: &path, name: "INV_1.pdf", size: 14, sha256: &sha, checksum_text: Some(&good) };
        assert_eq!(c.run(&s).unwrap(), ["the file has 14 bytes, more than the maximum of 10"]);
        let bad = Ok(format!("{}  inv.pdf", "00ff".repeat(16)));
        let s = Subject { name: "inv.pdf", checksum_text: Some(&bad), ..s };
        let got = c.run(&s).unwrap();
        assert!(
            got[1].contains("does not match the pattern") && got[2].ends_with(&format!("but inv.pdf.sha256 says {}", "00ff".repeat(16))),
            "{got:?}"
        );
        let missing = Err("not found".to_string());
        let s = Subject { checksum_text: Some(&missing), ..s };
        assert!(c.run(&s).unwrap()[2].contains("inv.pdf.sha256 is missing: not found"));

        std::fs::write(&path, b"PK\x03\x04rest").unwrap();
        let c = Check::build(&RawCheck {
            magic: vec![MagicType::Pdf, MagicType::Gzip],
            checksum: Some(ChecksumAlgo::Md5),
            ..Default::default()
        })
        .unwrap();
        let md5 = Ok("b9b2a1eb2b0d2b4fcdd8fe1fc8c25b79".to_string());
        let s = Subject { path: &path, name: "a.zip", size: 8, sha256: "", checksum_text: Some(&md5) };
        let got = c.run(&s).unwrap();
        assert_eq!(got[0], "the content does not start like PDF or gzip (first bytes: 504b030472657374)");
        assert_eq!(got.len(), 2, "md5 of the bytes differs from the companion: {got:?}");
        let real = Ok(format!("{:x}", md5::compute(b"PK\x03\x04rest")));
        let s = Subject { checksum_text: Some(&real), ..s };
        assert_eq!(c.run(&s).unwrap().len(), 1);
        assert!(Check::build(&RawCheck { name: Some("(".into()), ..Default::default() }).is_err());
    }
}
