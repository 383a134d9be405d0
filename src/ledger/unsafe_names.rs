//! The entries in a flow's source folder that can never be taken (a line feed in the name,
//! `..`, bytes that are not UTF-8; a symbolic link, a FIFO: `endpoint::listing::SkippedName`),
//! while they are there (table `unsafe_names_v1`, named when only unsafe names were kept;
//! keyed by flow and the path as shown).
//!
//! Owns the rule that each is told once: [`Ledger::note_unsafe_names`] records what a run's
//! listing left out, raises a `not_taken` event for a path not there before (in the same
//! transaction), and forgets the paths no longer listed — so a file that leaves and comes
//! back is told again. A record keeps the reason of the last listing (a folder's cause may
//! change) without telling it again. `wharf status` reads them ([`Ledger::unsafe_names`]). A restart or a
//! one-shot `wharf run` does not tell a name again: the record is the memory, not the process.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use super::codec::Postcard;
use super::events::{EventKind, NewEvent, append};
use super::forget::named;
use super::{Ledger, LedgerError, Millis};

pub(super) const UNSAFE_NAMES: TableDefinition<(&str, &str), Postcard<UnsafeName>> = TableDefinition::new("unsafe_names_v1");

/// An entry of the flow's source that can never be taken (an unsafe name, or not a regular file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsafeName {
    /// `/folder/name`, its control characters written as escapes: safe to print.
    pub path: String,
    /// Why it cannot be taken, and what would get it taken
    /// (`endpoint::SkipReason::explained`): `a symbolic link: only regular files are taken`.
    pub reason: String,
    /// When a listing first showed it (since it last appeared).
    #[serde(with = "crate::timestamp::millis")]
    pub first_seen: Millis,
    /// The run whose listing first showed it.
    pub run: u64,
}

/// What one run's listing left out.
#[derive(Debug, Clone, Copy)]
pub struct Noted<'a> {
    pub flow: &'a str,
    pub run: u64,
    pub at: Millis,
    /// `(path as shown, reason)` of every entry left out, the reason as the event's detail
    /// says it.
    pub names: &'a [(String, String)],
    /// Folders the listing could not read (`/in/sub`): names under them may still be there.
    pub unlisted: &'a [String],
}

impl Noted<'_> {
    fn may_have(&self, path: &str) -> bool {
        self.names.iter().any(|(p, _)| p == path)
            || self.unlisted.iter().any(|f| path.strip_prefix(f.as_str()).is_some_and(|r| r.starts_with('/')))
    }
}

impl Ledger {
    pub(super) fn init_unsafe_names(tx: &redb::WriteTransaction) -> Result<(), redb::Error> {
        tx.open_table(UNSAFE_NAMES)?;
        Ok(())
    }

    /// Records what `noted`'s listing left out: a name not recorded before gets its record and
    /// an [`EventKind::NotTaken`] event (its detail: the reason); a recorded name the listing no longer shows (and
    /// that is not under a folder it could not read) is forgotten. One transaction, none when
    /// there is nothing to record or forget. Returns the names that are new.
    pub fn note_unsafe_names(&self, noted: &Noted<'_>) -> Result<Vec<String>, LedgerError> {
        let recorded = self.unsafe_names(noted.flow)?;
        // Once each: names that are not UTF-8 may show alike (both `caf�.csv`), one record.
        let mut seen = std::collections::BTreeSet::new();
        let new: Vec<&(String, String)> =
            noted.names.iter().filter(|(p, _)| !recorded.iter().any(|r| &r.path == p) && seen.insert(p.as_str())).collect();
        let gone: Vec<&UnsafeName> = recorded.iter().filter(|r| !noted.may_have(&r.path)).collect();
        // Known, but said otherwise now (a folder's cause, or an older wharf's words): the
        // record says it as today's run does, without a second event.
        let reworded: Vec<UnsafeName> = recorded
            .iter()
            .filter_map(|r| {
                let (_, reason) = noted.names.iter().find(|(p, _)| p == &r.path)?;
                (reason != &r.reason).then(|| UnsafeName { reason: reason.clone(), ..r.clone() })
            })
            .collect();
        if new.is_empty() && gone.is_empty() && reworded.is_empty() {
            return Ok(Vec::new());
        }
        self.write(|tx| {
            let mut table = tx.open_table(UNSAFE_NAMES)?;
            for r in &gone {
                table.remove((noted.flow, r.path.as_str()))?;
            }
            for r in &reworded {
                table.insert((noted.flow, r.path.as_str()), r)?;
            }
            for (path, reason) in &new {
                let rec = UnsafeName { path: path.clone(), reason: reason.clone(), first_seen: noted.at, run: noted.run };
                table.insert((noted.flow, path.as_str()), &rec)?;
            }
            drop(table);
            for (path, reason) in &new {
                let ev = NewEvent {
                    flow: noted.flow.to_string(),
                    at: noted.at,
                    kind: EventKind::NotTaken,
                    subject: path.clone(),
                    detail: reason.clone(),
                    run: Some(noted.run),
                };
                append(tx, &ev)?;
            }
            Ok(())
        })?;
        Ok(new.into_iter().map(|(p, _)| p.clone()).collect())
    }

    /// What `flow`'s last listing showed that can never be taken, by path. None from a ledger an
    /// older wharf wrote last (no table yet).
    pub fn unsafe_names(&self, flow: &str) -> Result<Vec<UnsafeName>, LedgerError> {
        self.read(|tx| {
            let table = match tx.open_table(UNSAFE_NAMES) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e.into()),
            };
            let next = format!("{flow}\0");
            table.range(named(flow, &next))?.map(|row| Ok(row?.1.value())).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<(String, String)> {
        list.iter()
            .map(|p| (p.to_string(), "a control character in the name; rename it on the source to have it taken".to_string()))
            .collect()
    }

    fn note(l: &Ledger, flow: &str, run: u64, list: &[&str], unlisted: &[&str]) -> Vec<String> {
        let names = names(list);
        let unlisted: Vec<String> = unlisted.iter().map(|s| s.to_string()).collect();
        l.note_unsafe_names(&Noted { flow, run, at: run as i64 * 1000, names: &names, unlisted: &unlisted }).unwrap()
    }

    fn events(l: &Ledger) -> Vec<(String, String, Option<u64>)> {
        l.events(None, 0, 100).unwrap().into_iter().map(|e| (e.flow, e.subject, e.run)).collect()
    }

    #[test]
    fn a_name_is_told_once_while_it_stays_and_again_when_it_comes_back() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(note(&l, "f", 1, &["/in/a\\nb.csv"], &[]), ["/in/a\\nb.csv"]);
        assert_eq!(note(&l, "f", 2, &["/in/a\\nb.csv", "/in/c\\td.csv"], &[]), ["/in/c\\td.csv"]);
        assert_eq!(note(&l, "f", 3, &["/in/a\\nb.csv", "/in/c\\td.csv"], &[]), Vec::<String>::new());
        let kept = l.unsafe_names("f").unwrap();
        assert_eq!(
            kept.iter().map(|r| (r.path.as_str(), r.run, r.first_seen)).collect::<Vec<_>>(),
            [("/in/a\\nb.csv", 1, 1000), ("/in/c\\td.csv", 2, 2000)]
        );
        // Renamed on the source: forgotten; sent again: told again.
        assert_eq!(note(&l, "f", 4, &["/in/c\\td.csv"], &[]), Vec::<String>::new());
        assert_eq!(l.unsafe_names("f").unwrap().len(), 1);
        assert_eq!(note(&l, "f", 5, &["/in/a\\nb.csv", "/in/c\\td.csv"], &[]), ["/in/a\\nb.csv"]);
        assert_eq!(
            events(&l),
            [
                ("f".to_string(), "/in/a\\nb.csv".to_string(), Some(1)),
                ("f".to_string(), "/in/c\\td.csv".to_string(), Some(2)),
                ("f".to_string(), "/in/a\\nb.csv".to_string(), Some(5)),
            ]
        );
        let ev = &l.events(None, 0, 1).unwrap()[0];
        assert_eq!(
            (ev.kind, ev.detail.as_str()),
            (EventKind::NotTaken, "a control character in the name; rename it on the source to have it taken")
        );
    }

    #[test]
    fn a_folder_that_could_not_be_listed_forgets_nothing_under_it() {
        let l = Ledger::in_memory().unwrap();
        note(&l, "f", 1, &["/in/sub/a\\nb.csv", "/in/subway\\n.csv"], &[]);
        note(&l, "f", 2, &[], &["/in/sub"]);
        let kept: Vec<String> = l.unsafe_names("f").unwrap().into_iter().map(|r| r.path).collect();
        assert_eq!(kept, ["/in/sub/a\\nb.csv"], "`/in/subway…` is not under `/in/sub`");
        assert_eq!(note(&l, "f", 3, &["/in/sub/a\\nb.csv"], &[]), Vec::<String>::new(), "still known");
    }

    /// Two names that are not UTF-8 may show alike (`caf\xE9.csv` and `caf\xE8.csv` are both
    /// `caf\u{fffd}.csv`): one record, one event (it was two events at once, for one record).
    #[test]
    fn names_that_show_alike_are_told_once() {
        let l = Ledger::in_memory().unwrap();
        assert_eq!(note(&l, "f", 1, &["/in/caf\u{fffd}.csv", "/in/caf\u{fffd}.csv"], &[]), ["/in/caf\u{fffd}.csv"]);
        assert_eq!(events(&l).len(), 1);
        assert_eq!(l.unsafe_names("f").unwrap().len(), 1);
        assert_eq!(note(&l, "f", 2, &["/in/caf\u{fffd}.csv"], &[]), Vec::<String>::new(), "one of them renamed: the other stays");
    }

    #[test]
    fn flows_keep_their_own_names() {
        let l = Ledger::in_memory().unwrap();
        note(&l, "a", 1, &["/x\\n"], &[]);
        note(&l, "ab", 2, &["/y\\n"], &[]);
        note(&l, "a", 3, &[], &[]);
        assert!(l.unsafe_names("a").unwrap().is_empty());
        assert_eq!(l.unsafe_names("ab").unwrap().len(), 1);
    }
}
