//! Discovery: list the source folder (recursively up to `max_depth` when asked), apply the
//! include/exclude globs, and set aside the files that go with a data file (its done/trigger
//! file, the checksum and row-count files its steps read) so they are never taken as data.
//!
//! Also the one place that tells of what a flow's source folder holds that it can never take:
//! the names its listing had to leave out (a line feed or `..` in a partner's file name, bytes
//! that are not UTF-8) and the entries that are not regular files (a symbolic link, a FIFO)
//! that its globs match. They are returned with the candidates, and [`note_skipped`] records
//! them in the ledger and logs each once while it stays, with the flow and the run.
//!
//! Only listing and filtering; readiness is decided in `ready`.

use std::collections::BTreeSet;

use crate::config::flow::{Disposition, Ready, Source};
use crate::endpoint::listing::unreadable_folder;
use crate::endpoint::{Endpoint, EndpointError, Entry, EntryKind, ErrorKind, RemotePath, SkipReason, SkippedName};
use crate::ledger::{Ledger, LedgerError, Millis, Noted, Observation, to_millis};
use crate::steps::Steps;
use crate::template::{NameTemplate, NameVars};

use super::ready::{self, DoneFile, Found};

/// A file that passed the globs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub entry: Entry,
    /// Path relative to the source folder (what globs and templates see).
    pub rel: String,
    /// The done file this candidate needs, if the flow wants one: its path (as listed, when
    /// there), and what the listing shows of it.
    pub done_file: Option<(RemotePath, DoneFile)>,
    /// Why the companions its steps read (checksum, row count) cannot be told
    /// (`source.ignore_case`: more than one file named like one ignoring case); it is not
    /// ready while any is.
    pub unclear: Vec<String>,
    /// Where the run's listing shows each file that goes with it (done file, checksum, row
    /// count), by the name its template gives: what its lifecycle reads, moves or deletes
    /// ([`locate`]), never decided again from a later listing.
    pub companions: Vec<(RemotePath, Located)>,
}

impl Candidate {
    /// Whether the file is ready ([`ready::assess`], with its done file), its companions told
    /// apart: the verdict and the observation to store.
    pub fn assess(&self, rules: &Ready, prev: Option<&Observation>, now: Millis) -> (ready::Readiness, Observation) {
        let done = self.done_file.as_ref().map(|(p, shows)| (p.name(), shows));
        let (verdict, obs) = ready::assess(rules, &self.entry, prev, now, done);
        (verdict.and(&self.unclear), obs)
    }
}

/// What [`discover`] found.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// The files that passed the globs, sorted by path.
    pub candidates: Vec<Candidate>,
    /// What can never be taken that the globs would have taken (or, for a name a glob cannot
    /// be tried on faithfully, might have): the names the listing left out as unsafe, and the
    /// entries that are not regular files (symbolic links, FIFOs…), in the order listed.
    pub skipped: Vec<SkippedName>,
    /// Subfolders that could not be listed (permission denied, or gone): the run takes the
    /// rest, and the flow's history forgets nothing that may be under them.
    pub unlisted: Vec<Unlisted>,
}

/// A folder of the source not listed in whole, and why: a subfolder a recursive listing could
/// not read, a folder whose listing the server cut short
/// ([`Listing::cut_short`](crate::endpoint::Listing::cut_short)), or a subfolder deeper than
/// `source.max_depth`. Nothing under it is taken for gone.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unlisted {
    #[serde(serialize_with = "crate::endpoint::listing::as_display")]
    pub folder: RemotePath,
    /// Why, as `wharf status` and the `not_taken` event say it: `permission denied: …`.
    pub cause: String,
    #[serde(rename = "reason")]
    pub why: NotListed,
}

/// Why a folder is not listed in whole ([`Unlisted`]). In JSON one word: `unreadable`,
/// `gone`, `cut_short`, `too_deep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotListed {
    /// The login may not read it.
    Unreadable,
    /// Gone since its parent folder was listed (a partner clearing its emptied folders while
    /// wharf lists): not recorded in the ledger, nor a `not_taken` event — a folder that is
    /// not there is not one wharf cannot read; the next run lists it if it is back.
    Gone,
    /// Listed in part: its listed files are taken, those past the cut are not seen.
    CutShort,
    /// Deeper than `source.max_depth`: never listed, so nothing under it is seen. Not recorded
    /// in the ledger (not a `not_taken` event): it is the flow's own setting, told by `wharf
    /// plan` and every run's report.
    TooDeep,
}

impl Unlisted {
    fn new(folder: RemotePath, e: &EndpointError) -> Self {
        // Only these two come here (`discover`); the server's own words say the rest.
        match e.kind {
            ErrorKind::NotFound => Unlisted { folder, cause: "gone since its parent folder was listed".into(), why: NotListed::Gone },
            kind => Unlisted { folder, cause: format!("{kind}: {}", e.message), why: NotListed::Unreadable },
        }
    }

    /// The subfolder `folder`, deeper than `max_depth`, not listed.
    fn too_deep(folder: RemotePath, max_depth: u32) -> Self {
        let cause = format!("deeper than `source.max_depth` ({max_depth}): not listed; raise `max_depth` to take the files under it");
        Unlisted { folder, cause, why: NotListed::TooDeep }
    }

    /// Whether `path` is under this folder.
    pub fn holds(&self, path: &RemotePath) -> bool {
        path.strip_prefix(&self.folder).is_some()
    }
}

/// The folders of the source not listed in whole, in one line, the first few named: `2
/// subfolders not listed in whole: /in/locked (permission denied: …; nothing under it is taken
/// while the listing cannot read it), /in/a/b/c (deeper than `source.max_depth` (2): …)`.
/// What a run's summary and `wharf plan` say of them; `None` when there are none.
pub fn unlisted_line(unlisted: &[Unlisted]) -> Option<String> {
    const SHOWN: usize = 3;
    let shown: Vec<String> = unlisted.iter().take(SHOWN).map(|u| format!("{} ({})", u.folder, unlisted_reason(u))).collect();
    let more = match unlisted.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!(", and {n} more"),
    };
    let what = if unlisted.len() == 1 { "1 folder of the source".to_string() } else { format!("{} folders of the source", unlisted.len()) };
    (!unlisted.is_empty()).then(|| format!("{what} not listed in whole: {}{more}", shown.join(", ")))
}

/// Lists `src` on `ep` and returns the candidates, sorted by path, and the names left out.
/// Folders that are disposition targets (e.g. `processed/`) are never descended into.
/// Logs nothing of the names left out: a listing may be retried (see [`note_skipped`]).
pub async fn discover(
    flow: &str,
    ep: &dyn Endpoint,
    src: &Source,
    steps: Option<&Steps>,
    skip_dirs: &[&Disposition],
    now: std::time::SystemTime,
) -> Result<Discovered, EndpointError> {
    let skip: BTreeSet<&RemotePath> =
        skip_dirs.iter().filter_map(|d| if let Disposition::MoveTo(p) = d { Some(p) } else { None }).collect();
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let mut unlisted = Vec::new();
    let mut too_deep = Vec::new();
    let mut dirs = vec![(src.path.clone(), 0u32)];
    while let Some((dir, depth)) = dirs.pop() {
        let listed = match ep.list(&dir).await {
            Ok(l) => l,
            // A subfolder the login may not read, or one gone since its parent was listed,
            // holds nothing for this run; the others are still taken. (The source folder
            // itself failing stops the run.)
            Err(e) if depth > 0 && matches!(e.kind, ErrorKind::PermissionDenied | ErrorKind::NotFound) => {
                // Told once while it stays so (`note_skipped`), not at every poll.
                tracing::debug!(flow = %flow, folder = %dir, error = %e, "Skipping a subfolder that cannot be listed.");
                unlisted.push(Unlisted::new(dir, &e));
                continue;
            }
            Err(mut e) => {
                if e.kind == ErrorKind::PermissionDenied {
                    e.message =
                        format!("{}; the login may not list the source folder {dir} (check the folder's permissions for it)", e.message);
                }
                return Err(e);
            }
        };
        skipped.extend(listed.skipped.into_iter().filter(|s| told(src, s)));
        if let Some(cause) = listed.cut_short {
            unlisted.push(Unlisted { folder: dir.clone(), cause, why: NotListed::CutShort });
        }
        for e in listed.entries {
            match e.kind {
                EntryKind::File => files.push(e),
                EntryKind::Dir if src.recursive && !skip.contains(&e.path) => {
                    if depth < src.max_depth {
                        dirs.push((e.path.clone(), depth + 1))
                    } else if told_too_deep(src, &e.path) {
                        too_deep.push(Unlisted::too_deep(e.path, src.max_depth));
                    }
                }
                // Told only of what the flow would have taken, were it a file; not the flow's
                // own `move_to` folder, a link to a folder elsewhere (moves go through it).
                EntryKind::Other(kind) if !skip.contains(&e.path) && e.path.strip_prefix(&src.path).is_some_and(|rel| wanted(src, rel)) => {
                    skipped.push(SkippedName::not_a_file(&e, kind))
                }
                EntryKind::Other(_) => {}
                EntryKind::Dir => {}
            }
        }
    }
    let files = once_each(files);
    // The unreadable first, each kind in path order.
    too_deep.sort_by(|a: &Unlisted, b| a.folder.cmp(&b.folder));
    unlisted.sort_by(|a, b| a.folder.cmp(&b.folder));
    unlisted.append(&mut too_deep);
    // What the done files are judged by, and (`ignore_case`) the step companions looked for
    // in: only a flow with done files, or ignoring case, needs it.
    let mut listed = ready::Listed::new(if src.ready.done_file.is_some() || src.ignore_case { &files } else { &[] }, src.ignore_case);
    let mut out = Vec::new();
    let mut companions = BTreeSet::new();
    let mut case_only = Vec::new();
    // First the names each data file's companions have by their templates: a file listed
    // under one of them exactly is that data file's, never taken for another's in another case.
    let mut data = Vec::new();
    for e in files {
        let Some(rel) = e.path.strip_prefix(&src.path).map(str::to_string) else { continue };
        if !wanted(src, &rel) {
            // `ORDERS_1.CSV` beside `*.csv`: left for its case alone, it would wait unseen.
            if let Some(pattern) = src.taken_ignoring_case(&rel) {
                case_only.push((e.path.as_str().to_string(), SkippedName::case_only(&e, pattern)));
            }
            continue;
        }
        let done = src.ready.done_file.as_ref().and_then(|t| done_path(t, &e, &rel, now));
        let read = step_companions(steps, &e, now);
        data.push((e, rel, done, read));
    }
    for (e, _, done, read) in &data {
        listed.claim(&e.path, done.iter().chain(read.iter().map(|(_, p)| p)).cloned());
    }
    for (e, rel, done, read) in data {
        let done_file = done.as_ref().map(|p| listed.done_file(&e, p));
        // Each where this listing shows it, once: what the file's lifecycle uses (`locate`).
        let at = |p: &RemotePath| located(listed.find(p), p, &e.path);
        let mut found: Vec<(RemotePath, Located)> = done.iter().map(|p| (p.clone(), at(p))).collect();
        let mut unclear = Vec::new();
        // Never the file itself (`{{stem}}.CSV` of `a.csv`, ignoring case): it would be left
        // as its own companion, without a word.
        let own = src.name_key(e.path.as_str()).into_owned();
        let mut goes_with = |p: &RemotePath| {
            let key = src.name_key(p.as_str()).into_owned();
            if key != own {
                companions.insert(key);
            }
        };
        for (what, p) in read {
            let there = at(&p);
            if let Located::Ambiguous(names) = &there {
                unclear.push(ready::ambiguous(what, p.name(), names));
            }
            goes_with(&p);
            found.push((p, there));
        }
        done.iter().for_each(&mut goes_with);
        out.push(Candidate { entry: e, rel, done_file, unclear, companions: found });
    }
    // A done file, a checksum or a row count is a signal about a data file, not data, even
    // when the globs match it; whatever its case, with `ignore_case` (`Source::name_key`).
    out.retain(|c| !companions.contains(src.name_key(c.entry.path.as_str()).as_ref()));
    skipped.extend(case_only.into_iter().filter(|(path, _)| !companions.contains(src.name_key(path).as_ref())).map(|(_, s)| s));
    out.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(Discovered { candidates: out, skipped, unlisted })
}

/// `files` with each path once, sorted by path. A server may list a name twice (a folder
/// changing while its listing is read in pieces, as SFTP reads it: POSIX leaves `readdir`
/// free to); two candidates for one path would be two files in flight at once, each
/// delivered (a second copy under `if_exists: rename`). The first listed is kept.
fn once_each(mut files: Vec<Entry>) -> Vec<Entry> {
    // Stable: of two entries for one path, the first listed stays first.
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|later, first| later.path == first.path);
    files
}

/// Whether a name the listing left out is told of: when the flow would have taken it by its
/// name; a listing line that could not be read at all, always (its name is not known, so
/// the globs cannot be tried on it: the whole line fails `ORDERS_*.csv`).
fn told(src: &Source, s: &SkippedName) -> bool {
    if s.reason == SkipReason::Unread {
        return true;
    }
    let folder = s.folder.strip_prefix(&src.path).unwrap_or_default();
    wanted(src, &if folder.is_empty() { s.name.clone() } else { format!("{folder}/{}", s.name) })
}

/// Whether the flow takes a file at `rel` (under the source folder) by its name: the globs,
/// and hidden files ([`Source::takes`]).
fn wanted(src: &Source, rel: &str) -> bool {
    src.takes(rel)
}

/// Whether a subfolder deeper than `max_depth` is told of: not a hidden one the flow's
/// patterns leave whatever is in it (`.git`, `.tmp`: no `include` names hidden files).
fn told_too_deep(src: &Source, folder: &RemotePath) -> bool {
    let rel = folder.strip_prefix(&src.path).unwrap_or_default();
    !crate::config::flow::is_hidden(rel) || !src.include_hidden.is_empty()
}

/// Why nothing under a folder not listed in whole is taken, as `wharf status`, the
/// `not_taken` event, `wharf plan` and the run's summary say it: `permission denied: …;
/// nothing under it is taken while the listing cannot read it`.
fn unlisted_reason(u: &Unlisted) -> String {
    match u.why {
        NotListed::CutShort => format!("{}; none of its files not listed is taken for gone while it stays so", u.cause),
        NotListed::Unreadable => format!("{}; nothing under it is taken while the listing cannot read it", u.cause),
        NotListed::TooDeep | NotListed::Gone => u.cause.clone(),
    }
}

/// Records `skipped` in the ledger (`ledger::unsafe_names`: a `not_taken` event for each new
/// one) and logs each with the flow, the run and the endpoint: a file a partner named so that
/// it can never be taken (or a link where a file was expected) waits there, unseen, until
/// somebody renames or replaces it. An entry is warned of once while it stays in the flow's
/// listings, across runs and restarts (a daemon polling every minute would otherwise repeat
/// it every minute; later runs say it at debug level, and every run's report lists it); one
/// that left and came back is warned of again. Nothing under a folder the listing could not
/// read (`unlisted`) is taken to have left; such a folder is recorded, and warned of, once
/// alike.
pub fn note_skipped(
    ledger: &Ledger,
    (flow, run, endpoint): (&str, u64, &str),
    skipped: &[SkippedName],
    unlisted: &[Unlisted],
    now: std::time::SystemTime,
) -> Result<(), LedgerError> {
    let mut names: Vec<(String, String)> = skipped.iter().map(|s| (s.shown_path(), s.explained())).collect();
    // A subfolder the login may not read is recorded beside them, as a folder: told once (a
    // warning, a `not_taken` event, `wharf status`) while it stays so, not at every poll. One
    // deeper than `max_depth` is the flow's own choice, one gone meanwhile no longer there:
    // told by the run's report alone.
    let recorded = || unlisted.iter().filter(|u| matches!(u.why, NotListed::Unreadable | NotListed::CutShort));
    names.extend(recorded().map(|u| (unreadable_folder(&u.folder), unlisted_reason(u))));
    let folders: Vec<String> = unlisted.iter().map(|u| u.folder.to_string()).collect();
    let new = ledger.note_unsafe_names(&Noted { flow, run, at: to_millis(now), names: &names, unlisted: &folders })?;
    for u in unlisted.iter().filter(|u| matches!(u.why, NotListed::TooDeep | NotListed::Gone)) {
        tracing::debug!(flow = %flow, run, endpoint = %endpoint, folder = %u.folder, cause = %u.cause, "Not listing a subfolder.");
    }
    for u in recorded() {
        let (folder, cause) = (&u.folder, &u.cause);
        let message = match u.why {
            NotListed::CutShort => "The server listed part of a folder only; its files past the cut are not taken.",
            _ => "Skipping a subfolder that cannot be listed.",
        };
        if new.contains(&unreadable_folder(folder)) {
            tracing::warn!(flow = %flow, run, endpoint = %endpoint, folder = %folder, cause = %cause, "{message}");
        } else {
            tracing::debug!(flow = %flow, run, endpoint = %endpoint, folder = %folder, cause = %cause, "{message}");
        }
    }
    for s in skipped {
        let message = match s.reason {
            SkipReason::NotAFile(_) => {
                "Skipping an entry that is not a regular file: only regular files are taken (a link is never followed)."
            }
            SkipReason::Unread => "Skipping a line of the server's listing in a format wharf cannot read: a file it lists is never taken.",
            SkipReason::CaseOnly => {
                "Skipping a file the source's patterns take only ignoring case; set `source.ignore_case: true` to take it."
            }
            _ => "Skipping a file whose name is not safe to use; rename it on the source to have it taken.",
        };
        let (folder, name, reason) = (&s.folder, &s.name, s.reason);
        if new.contains(&s.shown_path()) {
            tracing::warn!(target: super::REPORT_LOG_TARGET, flow = %flow, run, endpoint = %endpoint, folder = %folder, name = %name, reason = %reason, "{message}");
        } else {
            tracing::debug!(target: super::REPORT_LOG_TARGET, flow = %flow, run, endpoint = %endpoint, folder = %folder, name = %name, reason = %reason, "{message}");
        }
    }
    Ok(())
}

/// The files that go with the data file `e` (at `rel` under the source folder) on the source,
/// by the names their templates give: its done file and the companions its steps read
/// (checksum, row count). They are never data themselves, and are moved or deleted with it
/// (under the name each has there: [`locate`]).
pub fn companions_of(src: &Source, steps: Option<&Steps>, e: &Entry, rel: &str, now: std::time::SystemTime) -> Vec<RemotePath> {
    let mut out: Vec<RemotePath> = src.ready.done_file.as_ref().and_then(|t| done_path(t, e, rel, now)).into_iter().collect();
    out.extend(step_companions(steps, e, now).into_iter().map(|(_, p)| p));
    out
}

/// The companions `e`'s steps read beside it (checksum, row count), each with what it is.
fn step_companions(steps: Option<&Steps>, e: &Entry, now: std::time::SystemTime) -> Vec<(&'static str, RemotePath)> {
    let Some(c) = steps.and_then(|s| s.companions(&companion_vars(e.path.name(), e.size, now)).ok()) else { return Vec::new() };
    [("checksum file", c.checksum), ("row-count file", c.row_count)]
        .into_iter()
        .filter_map(|(what, n)| Some((what, e.path.parent().join(&n?).ok()?)))
        .collect()
}

/// Where a file that goes with a data file is on the source, after the run's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// At this path: the name its template gives, or (`source.ignore_case`) the one file in
    /// its folder named like it ignoring case. (Also the name looked for when it is not there
    /// at all: what is done with it finds it missing.)
    At(RemotePath),
    /// Not there by its name, and more than one file in its folder is named like it ignoring
    /// case ([`ready::Found::Ambiguous`]): none is it.
    Ambiguous(Vec<String>),
}

/// Where `wanted` (a done file, checksum or row count of the data file at `data`, by the name
/// its template gives) is on `ep`, by the rule discovery judged it by ([`ready::Listed::find`]).
/// For what is done with a companion after discovery: reading it, moving or deleting it with
/// its data file. Where the run's listing (`listed`, its candidates) has `data` with `wanted`,
/// as that listing showed it ([`Candidate::companions`]): nothing is looked at again, so a
/// file of the run moved away meanwhile with its own companions changes nothing of another's
/// (`x.csv` moved before `x.csv.done`, `X.CSV`'s `X.CSV.DONE` is still its). Else (a file a
/// crashed run left, no longer listed; a folder its companions were moved to): itself,
/// without `source.ignore_case` (not looked at); with it, itself when there, else its folder
/// is listed for the one named like it ignoring case — as discovery, a file its folder holds
/// named exactly as another data file's companion is that file's, not this one (`steps`,
/// `now`: what the companions' names are rendered with).
pub async fn locate(
    ep: &dyn Endpoint,
    src: &Source,
    steps: Option<&Steps>,
    (listed, data): (&[Candidate], &RemotePath),
    wanted: &RemotePath,
    now: std::time::SystemTime,
) -> Result<Located, EndpointError> {
    let known = listed.binary_search_by(|c| c.entry.path.cmp(data)).ok().map(|i| &listed[i].companions);
    if let Some((_, found)) = known.and_then(|known| known.iter().find(|(p, _)| p == wanted)) {
        return Ok(found.clone());
    }
    if !src.ignore_case || ep.stat(wanted).await?.is_some() {
        return Ok(Located::At(wanted.clone()));
    }
    let listing = match ep.list(&wanted.parent()).await {
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(Located::At(wanted.clone())),
        other => other?,
    };
    let files: Vec<Entry> = listing.entries.into_iter().filter(|e| e.kind == EntryKind::File).collect();
    let mut listed = ready::Listed::new(&files, true);
    for (e, rel) in files.iter().filter_map(|e| Some((e, e.path.strip_prefix(&src.path)?))).filter(|(_, rel)| self::wanted(src, rel)) {
        listed.claim(&e.path, companions_of(src, steps, e, rel, now));
    }
    Ok(located(listed.find(wanted), wanted, data))
}

/// Where `found` (what a listing shows under `wanted`, a companion of the data file at
/// `data`) says it is: the listed file, never `data` itself (`{{stem}}.CSV` of `a.csv`,
/// ignoring case); else the name looked for, which what is done with it finds missing.
fn located(found: Found, wanted: &RemotePath, data: &RemotePath) -> Located {
    match found {
        Found::There(e) if e.path != *data => Located::At(e.path),
        Found::Ambiguous(names) => Located::Ambiguous(names),
        Found::There(_) | Found::Missing | Found::OtherCase(_) => Located::At(wanted.clone()),
    }
}

/// The variables the names of a data file's step companions (checksum, row count) are
/// rendered with, wherever they are: no run number (discovery has none yet).
pub fn companion_vars(name: &str, size: u64, now: std::time::SystemTime) -> NameVars {
    NameVars::new(name, "", size, 0, now)
}

/// The done file `t` names for the file `e` (at `rel` under the source folder).
pub(crate) fn done_path(t: &NameTemplate, e: &Entry, rel: &str, now: std::time::SystemTime) -> Option<RemotePath> {
    let rel_dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let name = t.render(&NameVars::new(e.path.name(), rel_dir, e.size, 0, now)).ok()?;
    e.path.parent().join(&name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::Special;
    use crate::log_capture::Log;

    /// A name listed twice (a folder changing while it is listed) is one candidate, not two
    /// files in flight delivered twice.
    #[test]
    fn a_name_listed_twice_is_taken_once() {
        let e = |name: &str, size: u64| Entry { path: RemotePath::parse(name).unwrap(), kind: EntryKind::File, size, mtime: None };
        let once = once_each(vec![e("in/b.csv", 1), e("in/a.csv", 2), e("in/b.csv", 3)]);
        let got: Vec<(&str, u64)> = once.iter().map(|x| (x.path.as_str(), x.size)).collect();
        assert_eq!(got, [("in/a.csv", 2), ("in/b.csv", 1)]);
    }

    /// A listing line in a format not read is told of whatever the globs: its name is not
    /// known (before, the whole line was tried on them, and only a pattern starting with `*`
    /// could match it).
    #[test]
    fn a_listing_line_not_read_is_told_whatever_the_globs() {
        let globs = |patterns: &[&str]| {
            let mut set = globset::GlobSetBuilder::new();
            for p in patterns {
                set.add(globset::GlobBuilder::new(p).literal_separator(true).build().unwrap());
            }
            set.build().unwrap()
        };
        let dir = RemotePath::parse("in").unwrap();
        let src = Source {
            endpoint: "partner".into(),
            path: dir.clone(),
            include: globs(&["ORDERS_*.csv"]),
            include_patterns: vec!["ORDERS_*.csv".into()],
            include_hidden: globs(&[]),
            exclude: globs(&[]),
            ignore_case: false,
            any_case: None,
            recursive: false,
            max_depth: 0,
            max_files: None,
            ready: Default::default(),
            identity: crate::config::flow::Identity::DEFAULT,
            command: None,
        };
        assert!(told(&src, &SkippedName::unread(&dir, "-rw-r--r-- 1 u g 5 6 Dez 10:00 ORDERS_1.csv")));
        assert!(told(&src, &SkippedName::unread(&dir, "06/12/2026 10:00 5 x.txt")));
        let bad = |name: &str| SkippedName::refused(&dir, name, &dir.join(name).unwrap_err());
        assert!(told(&src, &bad("ORDERS_\n1.csv")));
        assert!(!told(&src, &bad("other\n.csv")), "a name the flow does not take is not told of");
    }

    /// A subfolder the login may not read, under a flow polled every minute: warned of (with
    /// a `not_taken` event) once while it stays so, not at every poll; again once it was
    /// readable and is not any more. What was recorded under it stays recorded meanwhile.
    #[test]
    fn a_subfolder_that_cannot_be_listed_is_warned_of_once_while_it_stays() {
        let denied =
            EndpointError::new(ErrorKind::PermissionDenied, crate::endpoint::Op::List, "local /x", None, "Permission denied (os error 13)");
        let locked = [Unlisted::new(RemotePath::parse("in/locked").unwrap(), &denied)];
        let (log, ledger) = (Log::default(), Ledger::in_memory().unwrap());
        let now = std::time::SystemTime::now();
        let noted = |unlisted: &[Unlisted]| {
            let (_, lines) = log.of(|| note_skipped(&ledger, ("f", 1, "local /x"), &[], unlisted, now).unwrap());
            lines
        };
        let first = noted(&locked);
        assert_eq!(first.len(), 1, "{first:?}");
        assert!(
            first[0].contains("WARN") && first[0].contains("Skipping a subfolder that cannot be listed") && first[0].contains("/in/locked")
        );
        for _ in 0..3 {
            assert_eq!(noted(&locked), Vec::<String>::new(), "said at debug level on the next polls");
        }
        let events = ledger.events(None, 0, 10).unwrap();
        assert_eq!(events.len(), 1);
        // Recorded as a folder, with why: `wharf status` tells it apart from a file.
        assert_eq!((events[0].kind, events[0].subject.as_str()), (crate::ledger::EventKind::NotTaken, "/in/locked/"));
        assert_eq!(
            ledger.unsafe_names("f").unwrap()[0].reason,
            "permission denied: Permission denied (os error 13); nothing under it is taken while the listing cannot read it"
        );
        // One gone since its parent was listed (a partner clearing emptied folders) is no
        // folder wharf cannot read: in the run's report, not warned of, no event.
        let gone = EndpointError::new(ErrorKind::NotFound, crate::endpoint::Op::List, "local /x", None, "No such file or directory");
        let gone = [Unlisted::new(RemotePath::parse("in/old").unwrap(), &gone)];
        assert_eq!((gone[0].cause.as_str(), gone[0].why), ("gone since its parent folder was listed", NotListed::Gone));
        assert_eq!(noted(&[locked[0].clone(), gone[0].clone()]), Vec::<String>::new(), "nothing new to warn of");
        assert_eq!(ledger.unsafe_names("f").unwrap().len(), 1, "the locked folder alone");
        assert_eq!(ledger.events(None, 0, 10).unwrap().len(), 1);
        assert_eq!(noted(&[]).len(), 0, "readable again: forgotten");
        assert!(ledger.unsafe_names("f").unwrap().is_empty());
        assert_eq!(noted(&locked).len(), 1, "locked again: warned of again");
    }

    /// Many folders not listed: the first few named, the rest counted, so that a tree of a
    /// thousand dated folders under too small a `max_depth` is one line of the report.
    #[test]
    fn folders_not_listed_are_told_in_one_line_the_first_few_named() {
        assert_eq!(unlisted_line(&[]), None);
        let deep: Vec<Unlisted> = (0..5).map(|i| Unlisted::too_deep(RemotePath::parse(&format!("in/d{i}/x")).unwrap(), 1)).collect();
        let line = unlisted_line(&deep).unwrap();
        assert!(line.starts_with("5 folders of the source not listed in whole: /in/d0/x (deeper than `source.max_depth` (1): "), "{line}");
        assert!(line.contains("/in/d2/x (") && !line.contains("/in/d3/x") && line.ends_with(", and 2 more"), "{line}");
        let denied = EndpointError::new(ErrorKind::PermissionDenied, crate::endpoint::Op::List, "local /x", None, "Permission denied");
        assert_eq!(
            unlisted_line(&[Unlisted::new(RemotePath::parse("in/locked").unwrap(), &denied)]).unwrap(),
            "1 folder of the source not listed in whole: /in/locked (permission denied: Permission denied; nothing under it is taken while the listing cannot read it)"
        );
    }

    #[test]
    fn a_skipped_name_is_warned_of_once_while_it_stays() {
        let dir = RemotePath::parse("in").unwrap();
        let bad = |name: &str| SkippedName::refused(&dir, name, &dir.join(name).unwrap_err());
        let (log, ledger) = (Log::default(), Ledger::in_memory().unwrap());
        let now = std::time::SystemTime::now();
        let noted = |flow: &str, skipped: &[SkippedName]| {
            log.of(|| note_skipped(&ledger, (flow, 1, "local /x"), skipped, &[], now).unwrap()).1.len()
        };
        assert_eq!(noted("f", &[bad("a\nb.csv")]), 1);
        assert_eq!(noted("f", &[bad("a\nb.csv")]), 0, "said at debug level on the next polls");
        assert_eq!(noted("f", &[bad("a\nb.csv"), bad("c\td.csv")]), 1, "a new one is warned of");
        assert_eq!(noted("f", &[]), 0);
        assert_eq!(noted("f", &[bad("a\nb.csv")]), 1, "gone and back: warned of again");
        assert_eq!(noted("another-flow", &[bad("a\nb.csv")]), 1, "per flow");
        let subjects: Vec<String> = ledger.events(None, 0, 10).unwrap().into_iter().map(|e| e.subject).collect();
        assert_eq!(subjects.len(), 4, "an event with each warning: {subjects:?}");
        assert_eq!(subjects[0], "/in/a\\nb.csv");
        // An entry that is not a regular file: the same, in its own words.
        let link = Entry { path: dir.join("link.csv").unwrap(), kind: EntryKind::Other(Special::Symlink), size: 0, mtime: None };
        let link = [SkippedName::not_a_file(&link, Special::Symlink)];
        let (_, lines) = log.of(|| note_skipped(&ledger, ("f", 2, "local /x"), &link, &[], now).unwrap());
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("WARN") && lines[0].contains("not a regular file") && lines[0].contains("name=link.csv"), "{lines:?}");
        assert_eq!(noted("f", &link), 0, "once while it stays");
    }
}
