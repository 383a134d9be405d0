//! `source.max_files`: which of the files a run would start it starts, and which it leaves
//! for the next run.
//!
//! Only the choice: what counts (a file the run would start, [`Turn`]) is the lifecycle's
//! ([`super::lifecycle::Known::turn`]), said the same way to a run and to `wharf plan`. The
//! files left are neither touched nor recorded: the next run lists them again.

use std::time::SystemTime;

use serde::Serialize;

use crate::endpoint::Entry;

/// Where a file the run would start stands in the queue for the run's places: files a
/// stopped run left in flight first, then the files not tried yet, then those tried before
/// (failed, or refused for the login's rights), so that a few files failing at every run do
/// not hold a backlog up for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Turn {
    Resumed,
    New,
    Retried,
}

/// What a run left for the next one by its cap, in its report (`--json`: `later`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Later {
    /// The files left.
    pub files: u32,
    /// The flow's `source.max_files`.
    pub max_files: u32,
}

impl Later {
    /// The run summary's line: `3 left for the next run (max_files 2)`.
    pub fn line(&self) -> String {
        format!("{} left for the next run (max_files {})", self.files, self.max_files)
    }

    /// Why a file is left, as `wharf plan` says it.
    pub fn why(max_files: u32) -> String {
        format!("later: max_files {max_files} reached")
    }
}

/// For each of `files` (in order; `None`: a file the run does not start, which does not
/// count), whether the cap `max` leaves it for the next run: all but the first `max` by
/// [`Turn`], then the oldest modification time (a file whose time is not listed after those
/// whose time is), then the path.
pub(super) fn left<'a>(max: u32, files: impl IntoIterator<Item = Option<(Turn, &'a Entry)>>) -> Vec<bool> {
    let files: Vec<_> = files.into_iter().collect();
    let mut left = vec![false; files.len()];
    let mut counted: Vec<(usize, Turn, &Entry)> = files.iter().enumerate().filter_map(|(i, f)| f.map(|(t, e)| (i, t, e))).collect();
    let key =
        |&(_, turn, e): &(usize, Turn, &'a Entry)| (turn, e.mtime.is_none(), e.mtime.unwrap_or(SystemTime::UNIX_EPOCH), e.path.as_str());
    counted.sort_by(|a, b| key(a).cmp(&key(b)));
    for &(i, _, _) in counted.iter().skip(usize::try_from(max).unwrap_or(usize::MAX)) {
        left[i] = true;
    }
    left
}

/// A run's places under `source.max_files`, taken in turns: the files a stopped run left in
/// flight whose source is no longer listed (`left_unlisted`: resumed work, finished after
/// the listing's files but counted first), the listing's files the run starts before its look
/// for responses, then a round trip's requests it sends after that look
/// (`awaits::send_after_look`), so that the run starts at most `max_files` in all. As a run
/// takes them and as `wharf plan` says it does.
///
/// A request of the last turn keeps its [`Turn`] only among that turn: one a stopped run left
/// in flight, held back until the look let it go, gets only the places the listing's files,
/// new ones too, left. It cannot go before them: the look comes after they started, and a
/// place kept for it before the look would be lost whenever the look does not let it go (its
/// answer not come yet: for days, a backlog under `max_files: 1` would not move). With no
/// place left it waits one run: the next one, no longer held back, takes it first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Places {
    /// The flow's `source.max_files`; `None`: no cap.
    max: Option<u32>,
    /// The places taken so far.
    taken: u32,
}

impl Places {
    pub fn new(max: Option<u32>) -> Places {
        Places { max, taken: 0 }
    }

    /// For each of `files` (as [`left`] takes them), whether it is left for the next run: all
    /// but as many as the places not taken yet. The others take their places.
    pub fn take<'a>(&mut self, files: impl IntoIterator<Item = Option<(Turn, &'a Entry)>>) -> Vec<bool> {
        let files: Vec<_> = files.into_iter().collect();
        let Some(max) = self.max else { return vec![false; files.len()] };
        let left = left(max.saturating_sub(self.taken), files.iter().copied());
        let took = files.iter().zip(&left).filter(|(f, l)| f.is_some() && !**l).count();
        self.taken = self.taken.saturating_add(u32::try_from(took).unwrap_or(u32::MAX));
        left
    }

    /// The flow's `source.max_files`, when it has one.
    pub fn max(&self) -> Option<u32> {
        self.max
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::endpoint::{EntryKind, RemotePath};

    fn entry(path: &str, mtime: Option<u64>) -> Entry {
        let mtime = mtime.map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        Entry { path: RemotePath::parse(path).unwrap(), kind: EntryKind::File, size: 1, mtime }
    }

    /// The files taken, in listing order, of `files` under `max`.
    fn taken(max: u32, files: &[(Option<Turn>, Entry)]) -> Vec<&str> {
        let left = left(max, files.iter().map(|(t, e)| t.map(|t| (t, e))));
        files.iter().zip(left).filter(|(_, l)| !l).map(|((_, e), _)| e.path.as_str()).collect()
    }

    /// The oldest first, whatever the listing's (path) order; the same time, by path.
    #[test]
    fn the_oldest_files_are_taken_first() {
        let files = [
            (Some(Turn::New), entry("in/a.csv", Some(500))),
            (Some(Turn::New), entry("in/b.csv", Some(100))),
            (Some(Turn::New), entry("in/c.csv", Some(300))),
            (Some(Turn::New), entry("in/d.csv", Some(100))),
            (Some(Turn::New), entry("in/e.csv", None)),
        ];
        assert_eq!(taken(2, &files), ["in/b.csv", "in/d.csv"]);
        assert_eq!(taken(3, &files), ["in/b.csv", "in/c.csv", "in/d.csv"]);
        assert_eq!(taken(4, &files), ["in/a.csv", "in/b.csv", "in/c.csv", "in/d.csv"], "a time not listed goes last");
        assert_eq!(taken(9, &files).len(), 5);
    }

    /// What the run does not start (a file delivered before, a duplicate, a companion never
    /// listed as a candidate) is not counted and never left: the run skips it as before.
    #[test]
    fn files_the_run_does_not_start_do_not_count() {
        let files = [
            (None, entry("in/a.csv", Some(1))),
            (Some(Turn::New), entry("in/b.csv", Some(2))),
            (None, entry("in/c.csv", Some(3))),
            (Some(Turn::New), entry("in/d.csv", Some(4))),
            (Some(Turn::New), entry("in/e.csv", Some(5))),
        ];
        assert_eq!(taken(1, &files), ["in/a.csv", "in/b.csv", "in/c.csv"]);
    }

    /// Places taken in turns: the second turn gets only what the first left, and a file
    /// the run does not start takes none.
    #[test]
    fn places_taken_in_turns_add_up_to_the_cap() {
        let first = [(Some(Turn::New), entry("in/a.csv", Some(1))), (None, entry("in/b.csv", Some(2)))];
        let then = [(Some(Turn::New), entry("in/c.csv", Some(3))), (Some(Turn::New), entry("in/d.csv", Some(4)))];
        fn turns(files: &[(Option<Turn>, Entry)]) -> impl Iterator<Item = Option<(Turn, &Entry)>> {
            files.iter().map(|(t, e)| t.map(|t| (t, e)))
        }
        let (first, then) = (&first, &then);
        let mut places = Places::new(Some(2));
        assert_eq!(places.take(turns(first)), [false, false]);
        assert_eq!(places.take(turns(then)), [false, true], "one place was left");
        assert_eq!(places.take(turns(then)), [true, true], "none is left");
        let mut none = Places::new(None);
        assert_eq!(none.take(turns(then)), [false, false]);
        assert_eq!(none.take(turns(then)), [false, false]);
    }

    /// Files a stopped run left in flight whose source is no longer listed (`left_unlisted`)
    /// are resumed work taken first, in a turn of their own: they take the places before any
    /// listed file, even one resumed too, and those the places do not reach are left; the
    /// listed files get what they leave, the listed resumed first.
    #[test]
    fn files_left_unlisted_take_the_places_before_the_listed_ones() {
        let unlisted = [entry("in/x.csv", Some(9)), entry("in/y.csv", None), entry("in/w.csv", Some(8))];
        let listed = [(Some(Turn::New), entry("in/a.csv", Some(1))), (Some(Turn::Resumed), entry("in/b.csv", Some(2)))];
        let resumed = || unlisted.iter().map(|e| Some((Turn::Resumed, e)));
        let listed_turns = || listed.iter().map(|(t, e)| t.map(|t| (t, e)));
        let mut places = Places::new(Some(2));
        assert_eq!(places.take(resumed()), [false, true, false], "the oldest two; a time not listed last");
        assert_eq!(places.take(listed_turns()), [true, true], "none left, a resumed listed file waits too");
        let mut places = Places::new(Some(4));
        assert_eq!(places.take(resumed()), [false, false, false]);
        assert_eq!(places.take(listed_turns()), [true, false], "the listed resumed file first");
    }

    /// Files a stopped run left in flight come first, however new; files tried before
    /// (failed) last, however old.
    #[test]
    fn resumed_files_first_and_failed_ones_after_the_new() {
        let files = [
            (Some(Turn::Retried), entry("in/a.csv", Some(1))),
            (Some(Turn::New), entry("in/b.csv", Some(2))),
            (Some(Turn::New), entry("in/c.csv", Some(3))),
            (Some(Turn::Resumed), entry("in/d.csv", Some(9))),
        ];
        assert_eq!(taken(1, &files), ["in/d.csv"]);
        assert_eq!(taken(2, &files), ["in/b.csv", "in/d.csv"]);
        assert_eq!(taken(3, &files), ["in/b.csv", "in/c.csv", "in/d.csv"]);
        assert_eq!(taken(4, &files).len(), 4);
    }
}
