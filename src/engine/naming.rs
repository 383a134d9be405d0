//! Collision-safe names: `report.csv`, then `report-1.csv`, `report-2.csv`, …; and
//! temporary names that fit a file system's name limit.
//!
//! Used by every place that must not overwrite (move-to-processed, the `rename` exists-policy);
//! the actual no-replace guarantee comes from `Endpoint::rename(.., replace = false)`, this
//! only proposes candidates.

use sha2::{Digest, Sha256};

use crate::endpoint::{Endpoint, RemotePath};

use super::error::FileError;

/// The `n`-th candidate for `name` (0 = the name itself). A name near [`NAME_MAX`] loses the
/// end of its stem to the `-n`, so that a re-sent file with a long name still gets a name the
/// file system takes (`name-1.csv` of a 255-byte name would be refused as too long, every run).
pub fn candidate(name: &str, n: u32) -> String {
    candidate_within(name, n, NAME_MAX)
}

/// [`candidate`] for a name that must leave room for more: at most `max` bytes (a sink's
/// trigger `{{name}}.done` is 5 bytes longer than the name it is made from, so a free name
/// for such a sink has at most 250). The name itself (`n` = 0) is returned as it is.
pub fn candidate_within(name: &str, n: u32, max: usize) -> String {
    if n == 0 {
        return name.to_string();
    }
    let (stem, ext) = match name.rfind('.') {
        // An "extension" too long to keep beside a number is part of the stem.
        Some(i) if i > 0 && name.len() - i <= max / 2 => name.split_at(i),
        _ => (name, ""),
    };
    let suffix = format!("-{n}{ext}");
    let room = max.saturating_sub(suffix.len()).min(stem.len());
    let end = (0..=room).rev().find(|&i| stem.is_char_boundary(i)).unwrap_or(0);
    format!("{}{suffix}", &stem[..end])
}

/// `name` as `ep` can create it: where the endpoint creates no names ending in a space
/// ([`Capabilities::trailing_space_names`](crate::endpoint::Capabilities), FTP), the trailing
/// spaces (and other white space) become `_`, as pure-ftpd stores them. Moving a partner's
/// `a.csv ` into `processed/` as `a.csv ` would leave the name to the server: pure-ftpd made
/// it `a.csv_` behind wharf's back, over yesterday's `a.csv_`, and the run reported a name
/// that was not there.
pub fn creatable<'n>(ep: &dyn Endpoint, name: &'n str) -> std::borrow::Cow<'n, str> {
    let kept = name.trim_end_matches(char::is_whitespace);
    if ep.capabilities().trailing_space_names || kept.len() == name.len() {
        return name.into();
    }
    format!("{kept}{}", "_".repeat(name[kept.len()..].chars().count())).into()
}

/// The first candidate for `name` in `dir` that does not exist on `ep`, passing over the
/// names `taken` says are spoken for besides what `ep` holds (`wharf plan`: names earlier
/// files of the same run will have delivered to).
pub async fn free_name_but(
    ep: &dyn Endpoint,
    dir: &RemotePath,
    name: &str,
    taken: impl Fn(&RemotePath) -> bool,
) -> Result<RemotePath, FileError> {
    free_name_within(ep, dir, name, NAME_MAX, taken).await
}

/// [`free_name_but`] whose numbered candidates have at most `max` bytes
/// ([`candidate_within`]).
pub async fn free_name_within(
    ep: &dyn Endpoint,
    dir: &RemotePath,
    name: &str,
    max: usize,
    taken: impl Fn(&RemotePath) -> bool,
) -> Result<RemotePath, FileError> {
    for n in 0..10_000 {
        let path = dir.join(&candidate_within(name, n, max)).map_err(|e| FileError::Name(e.to_string()))?;
        if !taken(&path) && ep.stat(&path).await?.is_none() {
            return Ok(path);
        }
    }
    Err(FileError::Name(format!("no free name for {name:?} in {dir} after 10000 tries")))
}

/// How many times a free name is chosen again when somebody else (another process, a
/// person) takes the chosen one before the rename that would make it ours; then the
/// file fails (`TargetExists`) for this run.
pub const MAX_NAME_RACES: u32 = 3;

/// The longest file name (in bytes) most file systems take (Linux's `NAME_MAX`, and so
/// OpenSSH's and vsftpd's on Linux).
pub const NAME_MAX: usize = 255;

/// `Ok` when `name`, a delivery's target name as the flow makes it (a sink's `name`
/// template, the steps' output extension), fits [`NAME_MAX`].
/// Else a [`FileError::TargetName`]: the file fails before anything is uploaded (the server
/// would refuse the name at the rename, after the whole upload, in every run), and the
/// message says what to shorten.
pub fn check_target_name(name: &str) -> Result<(), FileError> {
    fits(name, "target name", "name")
}

/// [`check_target_name`] for a trigger's name (a sink's `trigger` template rendered from the
/// delivered name): refused before the data file is uploaded, so that a file whose trigger
/// the server would refuse is not delivered without it.
pub fn check_trigger_name(name: &str) -> Result<(), FileError> {
    fits(name, "trigger name", "trigger")
}

/// `Ok` when `name` fits [`NAME_MAX`], else the error naming `what` it is and the sink's
/// `template` to shorten.
fn fits(name: &str, what: &str, template: &str) -> Result<(), FileError> {
    if name.len() <= NAME_MAX {
        return Ok(());
    }
    Err(FileError::TargetName(format!(
        "{what} {name:?} is {} bytes, more than the {NAME_MAX} a file name may have; shorten the sink's `{template}` template (or the file's name at the source)",
        name.len()
    )))
}

/// The name of a file written beside the file `name`, told apart by `ext` (a quarantine
/// report: `a.csv` → `a.csv.report.json`), shortened as [`fit`] shortens (its start, a hash,
/// its end: `….csv.report.json`) when it would be longer than [`NAME_MAX`]: the copy of a
/// partner's file with a 250-byte name is put aside with its reports, not refused every run
/// for the name of its report. The same `name` always gives the same result, so the report is
/// found again from the copy's name (`wharf quarantine show`, `release`).
pub fn beside(name: &str, ext: &str) -> String {
    fit(&format!("{name}.{ext}"))
}

/// The name of the rejects file delivered beside the output named `output` (`ext`: `csv` or
/// `jsonl`): `roster-1.csv` → `roster-1.rejects.csv`, shortened past [`NAME_MAX`] as
/// [`beside`] shortens, so that an output whose name fits is not failed for the name of its
/// rejects file. Flow tests find the rejects file by it.
pub fn rejects(output: &str, ext: &str) -> String {
    let stem = crate::template::NameVars::new(output, "", 0, 0, std::time::UNIX_EPOCH).stem;
    beside(&stem, &format!("rejects.{ext}"))
}

/// `name` when it fits [`NAME_MAX`]; else its start and its end (where a temporary name's
/// `.part` is) around a hash of the whole, so that a file whose own name fits is never
/// refused for the few bytes its temporary name adds. The same name always gives the same
/// result (a resumed run finds its temporary file again).
pub fn fit(name: &str) -> String {
    if name.len() <= NAME_MAX {
        return name.to_string();
    }
    let hash = &hex::encode(Sha256::digest(name.as_bytes()))[..12];
    let tail_at = (name.len() - 16..=name.len()).find(|&i| name.is_char_boundary(i)).unwrap_or(name.len());
    let tail = &name[tail_at..];
    let room = NAME_MAX - 1 - hash.len() - tail.len();
    let head_end = (0..=room).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
    format!("{}~{hash}{tail}", &name[..head_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_before_the_extension() {
        assert_eq!(candidate("a.csv", 0), "a.csv");
        assert_eq!(candidate("a.csv", 2), "a-2.csv");
        assert_eq!(candidate("a.tar.gz", 1), "a.tar-1.gz");
        assert_eq!(candidate("README", 1), "README-1");
        assert_eq!(candidate(".hidden", 1), ".hidden-1");
    }

    #[test]
    fn a_candidate_for_a_name_at_the_limit_still_fits() {
        let long = format!("{}.csv", "x".repeat(251));
        assert_eq!(candidate(&long, 0), long);
        let c1 = candidate(&long, 1);
        assert_eq!(c1, format!("{}-1.csv", "x".repeat(249)));
        assert_eq!(candidate(&long, 12).len(), NAME_MAX);
        let wide = format!("{}.csv", "é".repeat(125));
        let c = candidate(&wide, 3);
        assert!(c.len() <= NAME_MAX && c.starts_with("éé") && c.ends_with("é-3.csv"), "{c}");
        let no_ext = "y".repeat(255);
        assert_eq!(candidate(&no_ext, 1), format!("{}-1", "y".repeat(253)));
        let long_ext = format!("a.{}", "z".repeat(253));
        assert!(candidate(&long_ext, 1).len() <= NAME_MAX && candidate(&long_ext, 1).ends_with("-1"));
    }

    #[test]
    fn a_target_name_over_the_limit_is_refused_with_its_length() {
        let at_limit = format!("{}.csv", "x".repeat(251));
        assert!(check_target_name(&at_limit).is_ok());
        let over = format!("{}.jsonl", "x".repeat(251));
        let e = check_target_name(&over).unwrap_err();
        assert!(matches!(e, FileError::TargetName(_)));
        assert_eq!(e.kind(), crate::endpoint::ErrorKind::Config);
        let text = e.to_string();
        assert!(text.contains(&over) && text.contains("is 257 bytes, more than the 255"), "{text}");
        // Bytes, not characters: 128 two-byte characters are 256 bytes.
        assert!(check_target_name(&"é".repeat(128)).is_err());
        let trigger = check_trigger_name(&format!("{over}.done")).unwrap_err().to_string();
        assert!(trigger.starts_with("trigger name") && trigger.contains("the sink's `trigger` template"), "{trigger}");
    }

    #[test]
    fn a_name_too_long_keeps_its_start_and_end_and_fits() {
        assert_eq!(fit(".a.csv.part"), ".a.csv.part");
        let long = format!(".{}.csv.part", "é".repeat(130));
        let short = fit(&long);
        assert!(short.len() <= NAME_MAX && short.starts_with(".éé") && short.ends_with(".csv.part"), "{short}");
        assert_eq!(fit(&long), short, "the same every time");
        assert_ne!(fit(&format!(".{}.csv.part", "é".repeat(131))), short);
    }
}
