//! Files of one run that a sink would deliver under the same name (a sink `name:` every file
//! shares, such as `import.csv`, or one that only uses the date): one of them per run, the
//! oldest first.
//!
//! The files of a run go side by side. Without this rule, which of two such files got the
//! name first was chance (whichever finished its download first), and the other one then
//! replaced it within the same second (`if_exists: overwrite`: delivered, then gone before
//! the partner could take it), was dropped (`skip`: its source disposed of as if delivered),
//! or failed (`fail`). Held back here, the others stay in the source folder like a file not
//! ready yet, and take the name in later runs, one per run: by modification time, the oldest
//! first (so that with `overwrite` the newest is what stays), then by path. A file a crashed
//! run left half-way goes before them all (it may hold the name already).
//!
//! The rejects file delivered beside a file's output (steps with `on_invalid: skip`, when
//! records are rejected) counts as a name the file takes: two files whose rejects files a
//! sink names alike (`orders.{{stem}}` delivers `orders.a` and `orders.b`, both with
//! `orders.rejects.csv` beside them) go one per run too, although only one may reject records.
//!
//! Under `wharf serve` a backlog of such files takes one poll each, on purpose: the poll
//! interval is the partner's time to take the file before the next one is given its name
//! (going again at once would replace it unread, or fail on it).
//!
//! `if_exists: rename` needs none of this (every file gets a free name of its own). Names are
//! predicted as the delivery makes them (`lifecycle::wanted_for`), from the listed size: a
//! name using `{{size}}` after steps that change the size may be predicted wrong, which at
//! worst holds a file back one run, or lets two files meet the exists-policy as before.
//!
//! A file that delivers nothing in the run takes no name: one settled before, one skipped as a
//! duplicate of a delivery before it, one a `check` step refuses from the listing
//! (`lifecycle::Known::contends`).
//!
//! A file held back is logged at info level by the run that first holds it back, at debug
//! level by the runs after it that find it unchanged and hold it back again (the run before
//! found it ready, `awaits::seen_ready`), as a request held back for its response name is.
//!
//! `wharf plan` holds back the same files with the same words.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Flow;
use crate::config::flow::IfExists;
use crate::endpoint::Entry;

use super::lifecycle;

/// A file of the run that may deliver to the sinks.
pub(in crate::engine) struct Contender<'a> {
    pub entry: &'a Entry,
    /// Its path relative to the source folder.
    pub rel: &'a str,
    /// A crashed run started it (it may hold its names already).
    pub resumed: bool,
    /// The run before listed it as it is now and found it ready (`awaits::seen_ready`), and
    /// it is still waiting: held back then already, and told of then.
    pub seen: bool,
}

/// Whether some sink of `flow` may give two files of one run the same name (and [`held_back`]
/// may hold one back).
pub(in crate::engine) fn may_hold_back(flow: &Flow) -> bool {
    (0..flow.sinks.len()).any(|s| !gives_free_names(flow, s))
}

/// Whether sink `s` never gives two files of one run the same name: it renames, or gives
/// each file a name of its own.
fn gives_free_names(flow: &Flow, s: usize) -> bool {
    flow.sinks[s].if_exists == IfExists::Rename || names_of_their_own(flow, s)
}

/// For each file (in listing order; `None`: a file that delivers nothing in this run), why it
/// waits for a later run: another file of the run takes the name a sink would give it.
pub(in crate::engine) fn held_back<'a>(
    flow: &Flow,
    files: impl IntoIterator<Item = Option<Contender<'a>>>,
    run: u64,
    now: SystemTime,
) -> Vec<Option<String>> {
    let files: Vec<Option<Contender<'a>>> = files.into_iter().collect();
    let mut why: Vec<Option<String>> = files.iter().map(|_| None).collect();
    for (s, sink) in flow.sinks.iter().enumerate() {
        if gives_free_names(flow, s) {
            continue;
        }
        // Target → the files of the run that would deliver there (and whether as their rejects file).
        let mut wanting: HashMap<String, Vec<(usize, bool)>> = HashMap::new();
        for (i, c) in files.iter().enumerate() {
            let Some(c) = c else { continue };
            // A name that cannot be made is the delivery's failure to report.
            let Ok(target) = lifecycle::wanted_for(flow, s, c.entry, c.rel, run, now).and_then(|(dir, name)| {
                dir.join(&name).map_err(|e| super::error::FileError::TargetName(format!("target name {name:?}: {e}")))
            }) else {
                continue;
            };
            let rejects = lifecycle::rejects_ext(flow).and_then(|ext| target.parent().join(&lifecycle::rejects_name(&target, ext)).ok());
            wanting.entry(target.to_string()).or_default().push((i, false));
            if let Some(r) = rejects {
                wanting.entry(r.to_string()).or_default().push((i, true));
            }
        }
        for (target, mut group) in wanting.into_iter().filter(|(_, g)| g.len() > 1) {
            group.sort_by_key(|&(i, _)| order(files[i].as_ref()));
            let first = group[0].0;
            let Some(taker) = files[first].as_ref() else { continue };
            for &(i, rejects) in group[1..].iter().filter(|(i, _)| *i != first) {
                let Some(c) = files[i].as_ref() else { continue };
                let what = if rejects { "its rejects file (if records are rejected)" } else { "it" };
                let text = format!(
                    "waits for a later run: sink {} delivers {what} as {target}, the name {} takes in this run (files given one name go one per run, the oldest first)",
                    sink.endpoint, taker.entry.path
                );
                // Once per hold: a backlog of files given one name goes one per poll, and the
                // daemon's log would get a line per file waiting at every poll.
                if why[i].is_none() {
                    if c.seen {
                        tracing::debug!(flow = %flow.name, path = %c.entry.path, target = %target, first = %taker.entry.path, "File still held back: another file of the run takes its target name.");
                    } else {
                        tracing::info!(flow = %flow.name, path = %c.entry.path, target = %target, first = %taker.entry.path, "File held back: another file of the run takes its target name.");
                    }
                }
                why[i].get_or_insert(text);
            }
        }
    }
    why
}

/// Whether sink `s` gives every file of one listing a name of its own, seen from the flow
/// alone: the source's own name (`{{name}}`, the default) for files of one folder, delivered
/// as they are. Saves rendering every name twice per run (a few percent of a run of thousands
/// of small files).
fn names_of_their_own(flow: &Flow, s: usize) -> bool {
    !flow.source.recursive && flow.steps.is_none() && flow.sinks[s].name.source().trim() == "{{name}}"
}

/// The order in which files wanting one name take it: resumed first, then the oldest, then by
/// path (a file without a time after those with one).
fn order<'a>(c: Option<&Contender<'a>>) -> (bool, bool, std::time::Duration, &'a str) {
    let Some(c) = c else { return (true, true, std::time::Duration::MAX, "") };
    let age = c.entry.mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    (!c.resumed, age.is_none(), age.unwrap_or_default(), c.entry.path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EntryKind, RemotePath};
    use std::time::Duration;

    fn flow(sink: &str) -> Flow {
        let text = format!(
            "name: t\nendpoints:\n  a: {{ type: local, root: /tmp/a }}\n  b: {{ type: local, root: /tmp/b }}\n\
             source: {{ endpoint: a, path: /in, include: ['*.csv'] }}\nsinks:\n  - {{ endpoint: b, path: /out, {sink} }}\n"
        );
        crate::config::load_flow_str(&text, std::path::Path::new("/tmp/t.yaml")).unwrap()
    }

    fn entry(path: &str, secs: u64) -> Entry {
        Entry {
            path: RemotePath::parse(path).unwrap(),
            kind: EntryKind::File,
            size: 1,
            mtime: Some(UNIX_EPOCH + Duration::from_secs(secs)),
        }
    }

    fn held(flow: &Flow, files: &[(Entry, bool)]) -> Vec<Option<String>> {
        let rels: Vec<String> = files.iter().map(|(e, _)| e.path.name().to_string()).collect();
        let it = files.iter().zip(&rels).map(|((entry, resumed), rel)| Some(Contender { entry, rel, resumed: *resumed, seen: false }));
        held_back(flow, it, 1, UNIX_EPOCH)
    }

    #[test]
    fn files_given_one_name_go_one_per_run_the_oldest_first() {
        let f = flow("name: import.csv, if_exists: overwrite");
        let why = held(&f, &[(entry("/in/a.csv", 300), false), (entry("/in/b.csv", 100), false), (entry("/in/c.csv", 200), false)]);
        assert!(why[1].is_none(), "the oldest takes the name: {why:?}");
        let a = why[0].as_deref().unwrap();
        assert!(a.contains("sink b delivers it as /out/import.csv, the name /in/b.csv takes in this run"), "{a}");
        assert!(why[2].is_some());
    }

    #[test]
    fn a_resumed_file_goes_first_and_names_of_their_own_hold_nothing_back() {
        let f = flow("name: import.csv");
        let why = held(&f, &[(entry("/in/a.csv", 100), false), (entry("/in/b.csv", 200), true)]);
        assert!(why[0].is_some() && why[1].is_none(), "{why:?}");
        let own = flow("name: '{{stem}}.txt'");
        assert!(held(&own, &[(entry("/in/a.csv", 1), false), (entry("/in/b.csv", 2), false)]).iter().all(Option::is_none));
        let default = flow("if_exists: overwrite");
        assert!(names_of_their_own(&default, 0));
        assert!(held(&default, &[(entry("/in/a.csv", 1), false), (entry("/in/b.csv", 2), false)]).iter().all(Option::is_none));
        let renamed = flow("name: import.csv, if_exists: rename");
        assert!(held(&renamed, &[(entry("/in/a.csv", 1), false), (entry("/in/b.csv", 2), false)]).iter().all(Option::is_none));
    }

    #[test]
    fn a_file_that_delivers_nothing_takes_no_name() {
        let f = flow("name: import.csv");
        let b = entry("/in/b.csv", 2);
        let why = held_back(&f, [None, Some(Contender { entry: &b, rel: "b.csv", resumed: false, seen: false })], 1, UNIX_EPOCH);
        assert_eq!(why, vec![None, None]);
    }
}
