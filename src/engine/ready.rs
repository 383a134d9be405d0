//! Readiness: is a file complete enough to take?
//!
//! Decided from data, never by sleeping: the file's age (`min_age`), whether its size and
//! mtime stayed the same across polls for `stable_for` (observations kept in the ledger),
//! and whether a done/trigger file exists; and, on a local source whatever the rules, whether
//! another process still has the file open for writing ([`unless_being_written`]). Every
//! "not ready" carries a reason a person can act on. This is the only place readiness rules
//! are evaluated.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::config::flow::{Ready, fold_case};
use crate::endpoint::{Endpoint, Entry, RemotePath, Writing};
use crate::ledger::{Millis, Observation};

use super::identity::mtime_millis;

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(String),
}

impl Readiness {
    /// This verdict with `more` reasons the file is not ready (none: as it is).
    pub fn and(self, more: &[String]) -> Readiness {
        match (self, more) {
            (verdict, []) => verdict,
            (Readiness::Ready, more) => Readiness::NotReady(more.join("; ")),
            (Readiness::NotReady(why), more) => Readiness::NotReady(format!("{why}; {}", more.join("; "))),
        }
    }
}

/// What the source folder shows of a file's done file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoneFile {
    /// Not there (yet).
    Missing,
    /// Not there by its name, but a listed file's path equals it ignoring case (`X.CSV.DONE`
    /// for `X.CSV.done`), its flow without `source.ignore_case`: done-file names are matched
    /// exactly, so it does not count; named in the reason (the name shown, or the path when
    /// its folder differs), else the file would wait for good with no hint.
    OtherCase(String),
    /// Not there by its name, and (`source.ignore_case`) more than one file in its folder is
    /// named like it ignoring case (`x.csv.done` and `X.CSV.DONE`): which one is meant cannot
    /// be told, so neither counts; all named in the reason.
    Ambiguous(Vec<String>),
    /// There, written after the file (or at about the same time).
    Present,
    /// There, but modified more than [`DONE_SLACK`] before the file: what it says is that an
    /// earlier version of the file was complete (a flow that keeps its sources keeps their
    /// done files too, and a partner re-sending a file under its name writes the file first).
    Older { done: Millis, data: Millis },
}

/// How much older than its file a done file may look and still count: the listing may give
/// them times of different precision (an FTP `LIST` time, in minutes, beside an `MDTM` one).
pub const DONE_SLACK: Millis = 60_000;

/// What a listing shows of a file that goes with a data file (its done file, checksum or row
/// count), looked for by the name its template gives ([`Listed::find`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// There: by its name, or (`ignore_case`) the one file in its folder named like it
    /// ignoring case. The listed entry, under its real name.
    There(Entry),
    /// Not there in any case.
    Missing,
    /// Not matched: without `ignore_case`, a file whose path equals it ignoring case (shown as
    /// [`DoneFile::OtherCase`] says).
    OtherCase(String),
    /// Not there by its name, and (`ignore_case`) more than one file in its folder named like
    /// it ignoring case: neither is taken for it. Their names, sorted.
    Ambiguous(Vec<String>),
}

/// The files of a listing, where the files that go with a data file are looked for: by path,
/// and (only once one is missing; built once) by path ignoring case — with `ignore_case`
/// (`source.ignore_case`), to take the one named so, else to say so of one there in another
/// case.
pub struct Listed {
    by_path: BTreeMap<String, Entry>,
    folded: OnceCell<BTreeMap<String, Vec<RemotePath>>>,
    ignore_case: bool,
    /// Listed files named exactly as a companion of some data file ([`Listed::claim`]).
    claimed: BTreeSet<String>,
}

impl Listed {
    pub fn new(files: &[Entry], ignore_case: bool) -> Self {
        Listed {
            by_path: files.iter().map(|e| (e.path.as_str().to_string(), e.clone())).collect(),
            folded: OnceCell::new(),
            ignore_case,
            claimed: BTreeSet::new(),
        }
    }

    /// Marks the listed ones of `companions` (the data file `data`'s done file, checksum and
    /// row count, by the exact names their templates give) as its: [`Listed::find`] then
    /// never takes one for another file's companion named like it but for case. `x.csv.done`
    /// is `x.csv`'s beside `X.CSV`, whose done file `X.CSV.done` is then `X.CSV.DONE`, not
    /// ambiguous between the two. Never `data` itself (`odd.count`, taken by `*`, is its own
    /// `{{stem}}.count`, and stays another file's row count in another case).
    pub fn claim(&mut self, data: &RemotePath, companions: impl IntoIterator<Item = RemotePath>) {
        for p in companions.into_iter().filter(|p| p != data) {
            if self.by_path.contains_key(p.as_str()) {
                self.claimed.insert(p.as_str().to_string());
            }
        }
    }

    /// The file listed at `path`, exactly.
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.by_path.get(path)
    }

    /// What the listing shows under `wanted`, the one rule for names that go with a data file:
    /// the file of that name, exactly, when it is there; else, with `ignore_case`, the one
    /// file in the same folder whose name equals it ignoring case — none, or more than one
    /// (neither is taken), says so. (Exact first: `x.csv.done` stays `x.csv`'s beside
    /// `X.CSV` and `X.CSV.DONE`; and a file another data file's companion is named exactly,
    /// [`Listed::claim`]ed, is never one named like it: `X.CSV.done` is `X.CSV.DONE` beside
    /// `x.csv`'s `x.csv.done`.)
    pub fn find(&self, wanted: &RemotePath) -> Found {
        if let Some(found) = self.by_path.get(wanted.as_str()) {
            return Found::There(found.clone());
        }
        let folded = self.folded.get_or_init(|| {
            let mut folded: BTreeMap<String, Vec<RemotePath>> = BTreeMap::new();
            for path in self.by_path.values().map(|e| &e.path) {
                folded.entry(fold_case(path.as_str())).or_default().push(path.clone());
            }
            folded
        });
        let like: Vec<&RemotePath> = folded
            .get(&fold_case(wanted.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|p| !self.claimed.contains(p.as_str()))
            .collect();
        if !self.ignore_case {
            return match like.first() {
                Some(other) if other.parent() == wanted.parent() => Found::OtherCase(other.name().to_string()),
                Some(other) => Found::OtherCase(other.to_string()),
                None => Found::Missing,
            };
        }
        // Folders named alike ignoring case are still two folders.
        let beside: Vec<&RemotePath> = like.into_iter().filter(|p| p.parent() == wanted.parent()).collect();
        match beside.as_slice() {
            [] => Found::Missing,
            [one] => self.by_path.get(one.as_str()).map_or(Found::Missing, |e| Found::There(e.clone())),
            many => Found::Ambiguous(many.iter().map(|p| p.name().to_string()).collect()),
        }
    }

    /// What the listing shows of `data`'s done file `done` ([`Listed::find`]), and its path:
    /// the listed one when it is there (in another case, with `ignore_case`), else `done`.
    /// Never `data` itself (`{{stem}}.CSV` of `a.csv`, ignoring case).
    pub fn done_file(&self, data: &Entry, done: &RemotePath) -> (RemotePath, DoneFile) {
        match self.find(done) {
            Found::There(found) if found.path == data.path => (done.clone(), DoneFile::Missing),
            Found::There(found) => (found.path.clone(), done_file(data, Some(&found))),
            Found::Missing => (done.clone(), DoneFile::Missing),
            Found::OtherCase(other) => (done.clone(), DoneFile::OtherCase(other)),
            Found::Ambiguous(names) => (done.clone(), DoneFile::Ambiguous(names)),
        }
    }
}

/// `"a", "b" and "c"`: the names a reason lists.
pub fn names_listed(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    crate::text::and_list(&quoted)
}

/// Why a file that goes with a data file (`what`: `done file`, `checksum file`…), named
/// `name` by its template, is not taken: [`Found::Ambiguous`] `names` in its folder.
pub fn ambiguous(what: &str, name: &str, names: &[String]) -> String {
    format!("no {what} {name:?}: {}", alike(names))
}

/// What [`Found::Ambiguous`] `names` mean, in words: `"x.csv.done" and "X.CSV.DONE" are both
/// there, …`.
pub fn alike(names: &[String]) -> String {
    let all = if names.len() == 2 { "both" } else { "all" };
    format!(
        "{} are {all} there, named like it ignoring case (`ignore_case`), so neither is taken for it; remove or rename the ones that are not it",
        names_listed(names)
    )
}

/// What `done` (the done file's entry in the listing, if there) says about `data`.
pub fn done_file(data: &Entry, done: Option<&Entry>) -> DoneFile {
    let Some(done) = done else { return DoneFile::Missing };
    match (mtime_millis(done), mtime_millis(data)) {
        (Some(d), Some(f)) if d.saturating_add(DONE_SLACK) < f => DoneFile::Older { done: d, data: f },
        _ => DoneFile::Present,
    }
}

/// Judges `entry` at time `now`. `prev` is the last observation of this path;
/// `done_file` is `Some((name, what the listing shows of it))` when the flow wants a done
/// file. Returns the verdict and the observation to store for the next poll.
pub fn assess(
    rules: &Ready,
    entry: &Entry,
    prev: Option<&Observation>,
    now: Millis,
    done_file: Option<(&str, &DoneFile)>,
) -> (Readiness, Observation) {
    let mtime = mtime_millis(entry);
    let obs = match prev {
        Some(p) if p.size == entry.size && p.mtime == mtime => p.clone(),
        _ => Observation { size: entry.size, mtime, since: now },
    };
    let mut reasons = Vec::new();
    if let Some(min_age) = rules.min_age {
        let need = Millis::try_from(min_age.as_millis()).unwrap_or(Millis::MAX);
        // Seen by this machine's clock with this size and time since `obs.since`: not written
        // since then, so at least that old, whatever the server's clock says. It decides only
        // for a server clock ahead of this one (a file seen before its own time), which would
        // otherwise hold the file until this clock caught up: for ever, were it years ahead;
        // and for a file the server gives no time for, which would otherwise never be ready.
        let seen_for = now.saturating_sub(obs.since);
        match mtime {
            Some(m) if now.saturating_sub(m).max(seen_for) >= need => {}
            None if seen_for >= need => {}
            // More than a minute ahead of this clock: the server's clock or time zone is off
            // (`wharf probe` measures it).
            Some(m) if m > now.saturating_add(60_000) => reasons.push(format!(
                "modified {} in the future by this machine's clock (is the server's clock or time zone off? `wharf probe` checks), \
                 needs {} ago; taken once seen unchanged for {} (so far {})",
                human(m - now),
                human(need),
                human(need),
                human(seen_for)
            )),
            // Up to a minute ahead: a clock a little off, or times of another precision.
            Some(m) if m > now => {
                reasons.push(format!("modified just now ({} ahead of this machine's clock), needs {} ago", human(m - now), human(need)))
            }
            Some(m) => reasons.push(format!("modified {} ago, needs {} ago", human(now.saturating_sub(m).max(seen_for)), human(need))),
            None => reasons.push(format!(
                "the server gives no modification time: taken once seen unchanged in size for {} (so far {})",
                human(need),
                human(seen_for)
            )),
        }
    }
    if let Some(stable) = rules.stable_for {
        let need = stable.as_millis() as Millis;
        match prev {
            None => reasons.push(format!("first seen now; size and mtime must stay unchanged for {}", human(need))),
            Some(p) if p.size != entry.size || p.mtime != mtime => reasons.push(format!(
                "size or mtime changed since the last poll ({} → {} bytes); needs {} stable",
                p.size,
                entry.size,
                human(need)
            )),
            Some(_) => {
                let stable_since = now.saturating_sub(obs.since);
                if stable_since < need {
                    reasons.push(format!("unchanged for {}, needs {}", human(stable_since), human(need)));
                }
            }
        }
    }
    match done_file {
        Some((name, DoneFile::Missing)) => reasons.push(format!("no done file {name:?} yet")),
        Some((name, DoneFile::OtherCase(other))) => reasons.push(format!(
            "no done file {name:?} yet ({other:?} is there: done-file names are matched exactly; `source.ignore_case: true` matches them ignoring case)"
        )),
        Some((name, DoneFile::Ambiguous(names))) => reasons.push(ambiguous("done file", name, names)),
        // Maybe left from an earlier version (a flow that keeps its sources keeps their done
        // files), maybe a new one written with an old time (an uploader that keeps the times of
        // the files it sends, and a stock empty done file): not trusted alone, and not waited
        // for for ever either — the file is taken once a later poll finds it unchanged.
        Some((name, DoneFile::Older { done, data })) if !prev.is_some_and(|p| p.size == entry.size && p.mtime == mtime) => {
            reasons.push(format!(
                "the done file {name:?} (modified {}) is older than the file (modified {}), maybe left from an earlier version: the file is taken once a later poll finds it unchanged",
                super::lifecycle::date(*done),
                super::lifecycle::date(*data)
            ))
        }
        Some((_, DoneFile::Older { .. } | DoneFile::Present)) | None => {}
    }
    let verdict = if reasons.is_empty() { Readiness::Ready } else { Readiness::NotReady(reasons.join("; ")) };
    (verdict, obs)
}

/// Why a file some process has open for writing is not ready.
pub const BEING_WRITTEN: &str = "still open for writing by another process; taken once it is closed";

/// `verdicts` (of the files at `paths`, in the same order), each file otherwise ready that
/// `source` says some process has open for writing ([`Endpoint::writing`]: a local folder
/// tells, a server never) made not ready: a writer pausing leaves a file whose size and time
/// say nothing, and taken then it would be delivered half-written and counted sent. Asked
/// of the files otherwise ready only (one open and close each, all in one trip); what
/// cannot be told changes nothing.
pub async fn unless_being_written<'a>(source: &dyn Endpoint, paths: impl Iterator<Item = &'a RemotePath>, verdicts: &mut [Readiness]) {
    let (at, asked): (Vec<usize>, Vec<RemotePath>) =
        paths.zip(verdicts.iter()).enumerate().filter(|(_, (_, v))| **v == Readiness::Ready).map(|(i, (p, _))| (i, p.clone())).unzip();
    if asked.is_empty() {
        return;
    }
    for (i, writing) in at.into_iter().zip(source.writing(&asked).await) {
        if writing == Writing::Open {
            verdicts[i] = Readiness::NotReady(BEING_WRITTEN.to_string());
        }
    }
}

fn human(ms: Millis) -> String {
    let d = Duration::from_millis(ms.max(0) as u64);
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{}s", s / 60, s % 60)
    } else if s >= 1 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EntryKind, RemotePath};
    use std::time::UNIX_EPOCH;

    fn entry(size: u64, mtime_ms: u64) -> Entry {
        Entry {
            path: RemotePath::parse("a").unwrap(),
            kind: EntryKind::File,
            size,
            mtime: Some(UNIX_EPOCH + Duration::from_millis(mtime_ms)),
        }
    }

    #[test]
    fn no_rules_means_ready() {
        let (r, o) = assess(&Ready::default(), &entry(1, 0), None, 100, None);
        assert_eq!(r, Readiness::Ready);
        assert_eq!(o.since, 100);
    }

    #[test]
    fn min_age() {
        let rules = Ready { min_age: Some(Duration::from_secs(60)), ..Default::default() };
        let (r, _) = assess(&rules, &entry(1, 100_000), None, 130_000, None);
        assert_eq!(r, Readiness::NotReady("modified 30s ago, needs 1m0s ago".into()));
        assert_eq!(assess(&rules, &entry(1, 100_000), None, 160_000, None).0, Readiness::Ready);
        let (r, _) = assess(&rules, &entry(1, 3_700_000), None, 100_000, None);
        let Readiness::NotReady(why) = r else { panic!("{r:?}") };
        assert!(why.starts_with("modified 1h0m in the future by this machine's clock"), "{why}");
    }

    /// A server clock ahead of this one (or times in a zone east of UTC, not corrected by
    /// `time_offset`) makes a file look written in the future: it is taken once this machine
    /// has seen it unchanged for `min_age`. Before, it waited until this clock caught up with
    /// its time (for ever, a server a year ahead). A file still being written (its size or
    /// time changing) starts its count again; one seen for a while with a time a little
    /// ahead is no younger than that.
    #[test]
    fn min_age_of_a_file_from_a_clock_ahead_counts_from_when_it_was_first_seen() {
        let rules = Ready { min_age: Some(Duration::from_secs(60)), ..Default::default() };
        let year: u64 = 365 * 86_400_000;
        let ahead = entry(1, year);
        let (r, seen) = assess(&rules, &ahead, None, 100_000, None);
        let Readiness::NotReady(why) = r else { panic!("{r:?}") };
        assert!(why.ends_with("needs 1m0s ago; taken once seen unchanged for 1m0s (so far 0ms)"), "{why}");
        let (r, seen) = assess(&rules, &ahead, Some(&seen), 130_000, None);
        assert!(matches!(r, Readiness::NotReady(ref why) if why.ends_with("(so far 30s)")), "{r:?}");
        assert_eq!(assess(&rules, &ahead, Some(&seen), 160_000, None).0, Readiness::Ready);
        // Written to meanwhile: counted again from when it changed.
        let grown = entry(2, year + 1000);
        let (r, grown_seen) = assess(&rules, &grown, Some(&seen), 160_000, None);
        assert!(matches!(r, Readiness::NotReady(_)), "{r:?}");
        assert_eq!(assess(&rules, &grown, Some(&grown_seen), 220_000, None).0, Readiness::Ready);
        // A little ahead, seen for a minute: ready; and `min_age: 0s` holds nothing back.
        let (_, seen) = assess(&rules, &entry(1, 130_000), None, 100_000, None);
        assert_eq!(assess(&rules, &entry(1, 130_000), Some(&seen), 160_000, None).0, Readiness::Ready);
        let zero = Ready { min_age: Some(Duration::ZERO), ..Default::default() };
        assert_eq!(assess(&zero, &ahead, None, 100_000, None).0, Readiness::Ready);
        // A clock behind cannot be seen from a file: it looks older than it is (`wharf probe`
        // measures the offset).
        assert_eq!(assess(&rules, &entry(1, 100_000), None, 160_000, None).0, Readiness::Ready);
    }

    /// A file the server gives no time for (a listing without times) waits `min_age` from
    /// when a run first sees it, as one from a clock ahead does. Before, it was never ready.
    /// A file still growing starts its count again.
    #[test]
    fn min_age_of_a_file_without_a_time_counts_from_when_it_was_first_seen() {
        let rules = Ready { min_age: Some(Duration::from_secs(60)), ..Default::default() };
        let timeless = |size| Entry { mtime: None, ..entry(size, 0) };
        let (r, seen) = assess(&rules, &timeless(1), None, 100_000, None);
        assert_eq!(
            r,
            Readiness::NotReady("the server gives no modification time: taken once seen unchanged in size for 1m0s (so far 0ms)".into())
        );
        let (r, seen) = assess(&rules, &timeless(1), Some(&seen), 130_000, None);
        assert!(matches!(r, Readiness::NotReady(ref why) if why.ends_with("(so far 30s)")), "{r:?}");
        assert_eq!(assess(&rules, &timeless(1), Some(&seen), 160_000, None).0, Readiness::Ready);
        // Grown meanwhile: counted again from when it changed.
        let (r, grown) = assess(&rules, &timeless(2), Some(&seen), 160_000, None);
        assert!(matches!(r, Readiness::NotReady(ref why) if why.ends_with("(so far 0ms)")), "{r:?}");
        assert_eq!(grown.since, 160_000);
        assert!(matches!(assess(&rules, &timeless(2), Some(&grown), 219_000, None).0, Readiness::NotReady(_)));
        assert_eq!(assess(&rules, &timeless(2), Some(&grown), 220_000, None).0, Readiness::Ready);
        // `min_age: 0s` holds nothing back, with or without a time.
        let zero = Ready { min_age: Some(Duration::ZERO), ..Default::default() };
        assert_eq!(assess(&zero, &timeless(1), None, 100_000, None).0, Readiness::Ready);
    }

    /// On a local source, a file otherwise ready that a process still has open for writing
    /// (no rule could tell: its writer pauses) is not ready, saying why; one closed, or not
    /// ready anyway (keeping its own reason), is as it was.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_file_still_open_for_writing_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["a.csv", "b.csv", "c.csv"] {
            std::fs::write(dir.path().join(name), "1\n").unwrap();
        }
        let open = |name: &str| std::fs::OpenOptions::new().append(true).open(dir.path().join(name)).unwrap();
        let (_a, _c) = (open("a.csv"), open("c.csv"));
        let source = crate::endpoint::local::LocalEndpoint::new(dir.path());
        let paths: Vec<RemotePath> = ["a.csv", "b.csv", "c.csv"].map(|n| RemotePath::parse(n).unwrap()).into();
        let mut verdicts = vec![Readiness::Ready, Readiness::Ready, Readiness::NotReady("first seen now".into())];
        unless_being_written(&source, paths.iter(), &mut verdicts).await;
        assert_eq!(
            verdicts,
            [
                Readiness::NotReady("still open for writing by another process; taken once it is closed".into()),
                Readiness::Ready,
                Readiness::NotReady("first seen now".into())
            ]
        );
    }

    #[test]
    fn stable_for_needs_two_polls_with_same_size() {
        let rules = Ready { stable_for: Some(Duration::from_secs(30)), ..Default::default() };
        let (r1, o1) = assess(&rules, &entry(10, 5), None, 1_000, None);
        assert!(matches!(r1, Readiness::NotReady(ref s) if s.starts_with("first seen")));
        let (r2, o2) = assess(&rules, &entry(20, 6), Some(&o1), 20_000, None);
        assert!(matches!(r2, Readiness::NotReady(ref s) if s.contains("changed")));
        assert_eq!(o2.since, 20_000);
        let (r3, o3) = assess(&rules, &entry(20, 6), Some(&o2), 40_000, None);
        assert!(matches!(r3, Readiness::NotReady(ref s) if s.contains("unchanged for 20s")));
        assert_eq!(o3.since, 20_000);
        assert_eq!(assess(&rules, &entry(20, 6), Some(&o3), 50_000, None).0, Readiness::Ready);
    }

    /// A time a little ahead of this clock is said so, not "modified 0ms ago".
    #[test]
    fn a_time_a_little_ahead_says_so() {
        let rules = Ready { min_age: Some(Duration::from_secs(60)), ..Ready::default() };
        let (r, _) = assess(&rules, &entry(1, 130_000), None, 100_000, None);
        assert_eq!(r, Readiness::NotReady("modified just now (30s ahead of this machine's clock), needs 1m0s ago".into()));
    }

    #[test]
    fn done_file() {
        let r = assess(&Ready::default(), &entry(1, 0), None, 0, Some(("a.done", &DoneFile::Missing))).0;
        assert_eq!(r, Readiness::NotReady("no done file \"a.done\" yet".into()));
        assert_eq!(assess(&Ready::default(), &entry(1, 0), None, 0, Some(("a.done", &DoneFile::Present))).0, Readiness::Ready);
    }

    /// A done file missing by its name but listed in another case is named (by its name, or
    /// by its path when its folder differs only in case too); there by its name, it counts
    /// whatever else is listed; none in any case: missing.
    #[test]
    fn a_done_file_there_only_in_another_case_is_named() {
        let at = |path: &str| Entry { path: RemotePath::parse(path).unwrap(), ..entry(0, 2_000) };
        let p = |path: &str| RemotePath::parse(path).unwrap();
        let data = at("in/X.CSV");
        let listed = Listed::new(&[data.clone(), at("in/X.CSV.DONE"), at("in/y.csv.done"), at("IN/z.done"), at("in/z.done.x")], false);
        let shows = |done: &str| listed.done_file(&data, &p(done)).1;
        assert_eq!(shows("in/X.CSV.done"), DoneFile::OtherCase("X.CSV.DONE".into()));
        assert_eq!(listed.done_file(&data, &p("in/X.CSV.DONE")), (p("in/X.CSV.DONE"), DoneFile::Present));
        assert_eq!(shows("in/Y.CSV.done"), DoneFile::OtherCase("y.csv.done".into()));
        assert_eq!(shows("in/z.done"), DoneFile::OtherCase("/IN/z.done".into()));
        assert_eq!(shows("in/w.done"), DoneFile::Missing);
        let other = DoneFile::OtherCase("X.CSV.DONE".into());
        let r = assess(&Ready::default(), &data, None, 0, Some(("X.CSV.done", &other))).0;
        assert_eq!(
            r,
            Readiness::NotReady(
                "no done file \"X.CSV.done\" yet (\"X.CSV.DONE\" is there: done-file names are matched exactly; `source.ignore_case: true` matches them ignoring case)".into()
            )
        );
    }

    /// With `source.ignore_case`, a partner varying the case of its names varies it on the
    /// done file too: `X.CSV.DONE` is `X.CSV`'s done file `X.CSV.done` (under its listed name,
    /// which is what is moved with the file). Before, `X.CSV` waited for good. Two named like
    /// it (`x.csv.done` and `X.CSV.DONE`): neither is taken, and the reason names both. Its
    /// exact name is taken first (`x.csv.done` stays `x.csv`'s beside `X.CSV.DONE`); a folder
    /// named alike is another folder.
    #[test]
    fn with_ignore_case_the_one_done_file_named_like_it_is_taken_and_two_are_not() {
        let at = |path: &str| Entry { path: RemotePath::parse(path).unwrap(), ..entry(0, 2_000) };
        let p = |path: &str| RemotePath::parse(path).unwrap();
        let data = at("in/X.CSV");
        let listed = Listed::new(&[data.clone(), at("in/X.CSV.DONE"), at("in/y.csv.done"), at("in/Y.CSV.DONE"), at("IN/z.done")], true);
        assert_eq!(listed.done_file(&data, &p("in/X.CSV.done")), (p("in/X.CSV.DONE"), DoneFile::Present));
        let two = vec!["Y.CSV.DONE".to_string(), "y.csv.done".to_string()];
        assert_eq!(listed.done_file(&data, &p("in/Y.CSV.done")), (p("in/Y.CSV.done"), DoneFile::Ambiguous(two.clone())));
        assert_eq!(listed.done_file(&data, &p("in/y.csv.done")), (p("in/y.csv.done"), DoneFile::Present));
        assert_eq!(listed.done_file(&data, &p("in/z.done")).1, DoneFile::Missing);
        assert_eq!(listed.find(&p("in/Z.DONE")), Found::Missing);
        let r = assess(&Ready::default(), &data, None, 0, Some(("Y.CSV.done", &DoneFile::Ambiguous(two)))).0;
        assert_eq!(
            r,
            Readiness::NotReady(
                "no done file \"Y.CSV.done\": \"Y.CSV.DONE\" and \"y.csv.done\" are both there, named like it ignoring case (`ignore_case`), so neither is taken for it; remove or rename the ones that are not it".into()
            )
        );
        assert_eq!(names_listed(&["a".into(), "b".into(), "c".into()]), "\"a\", \"b\" and \"c\"");
        assert_eq!(Readiness::Ready.and(&["x".into()]), Readiness::NotReady("x".into()));
        assert_eq!(Readiness::NotReady("w".into()).and(&["x".into()]), Readiness::NotReady("w; x".into()));
        assert_eq!(Readiness::Ready.and(&[]), Readiness::Ready);
    }

    /// A done file older than its file may be left from an earlier version: a flow that keeps
    /// its sources keeps their done files, and a partner re-sending `prices.csv` writes it
    /// (for minutes) beside yesterday's `prices.csv.done`. Before, the half-written file was
    /// ready at once. It may also be a new one with an old time (an uploader keeping the
    /// times of a stock done file): the file is taken once a later poll finds it unchanged.
    #[test]
    fn a_done_file_older_than_its_file_is_left_from_an_earlier_version() {
        let day = 86_400_000;
        let data = entry(10, 2 * day);
        assert_eq!(super::done_file(&data, None), DoneFile::Missing);
        assert_eq!(super::done_file(&data, Some(&entry(0, 2 * day + 1_000))), DoneFile::Present);
        // Times of another precision (a minute) are not told apart from an earlier version.
        assert_eq!(super::done_file(&data, Some(&entry(0, 2 * day - 59_000))), DoneFile::Present);
        let old = super::done_file(&data, Some(&entry(0, day)));
        let ms = |d: u64| d as Millis;
        assert_eq!(old, DoneFile::Older { done: ms(day), data: ms(2 * day) });
        let Readiness::NotReady(why) = assess(&Ready::default(), &data, None, ms(3 * day), Some(("a.done", &old))).0 else { panic!() };
        assert_eq!(
            why,
            "the done file \"a.done\" (modified 1970-01-02 00:00:00 UTC) is older than the file (modified 1970-01-03 00:00:00 UTC), maybe left from an earlier version: the file is taken once a later poll finds it unchanged"
        );
        let (_, seen) = assess(&Ready::default(), &data, None, ms(3 * day), Some(("a.done", &old)));
        assert_eq!(assess(&Ready::default(), &data, Some(&seen), ms(3 * day) + 60_000, Some(("a.done", &old))).0, Readiness::Ready);
        let grown = entry(11, 2 * day);
        assert!(matches!(
            assess(&Ready::default(), &grown, Some(&seen), ms(3 * day) + 60_000, Some(("a.done", &old))).0,
            Readiness::NotReady(_)
        ));
        // No time on either side: there is all it can say.
        let timeless = Entry { mtime: None, ..entry(0, 0) };
        assert_eq!(super::done_file(&data, Some(&timeless)), DoneFile::Present);
    }
}
