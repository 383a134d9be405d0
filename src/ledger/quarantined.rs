//! The quarantined files of a flow, as `wharf quarantine` reads them: those whose record is
//! quarantined now, and those of earlier generations — a file quarantined, then a newer file
//! (a partner's corrected one) taken under the same name, whose record replaced the
//! quarantined one (records are kept by path). [`FileTables`](super::store::FileTables), the
//! one writer of file records, keeps such a replaced record with its content result in
//! `quarantined_earlier_v1` in the same transaction ([`supersedes`] says when); this module
//! reads them and removes one released. Nothing else ever changes them: history pruning keeps
//! them as it keeps quarantined records, and `wharf forget` removes them with the flow.
//!
//! It knows nothing of endpoints: removing a copy is `engine::quarantine`'s.

use redb::TableDefinition;
use serde::Serialize;

use super::codec::Postcard;
use super::records::{EarlierQuarantine, FileRecord, FileResult, FileState, Millis, QuarantineRecord};
use super::store::FileTables;
use super::{FILE_RESULTS, FILES, Ledger, LedgerError, flow_range};

/// Quarantined files a newer file under their path replaced, keyed by (flow, path, when
/// quarantined in ms: the next free one when two were at once).
pub(super) const EARLIER: TableDefinition<(&str, &str, Millis), Postcard<EarlierQuarantine>> =
    TableDefinition::new("quarantined_earlier_v1");

/// Whether `new`, written over `old` at the same path, replaces a quarantined file (or one
/// being quarantined) by another generation: a newer file taken under the name (another
/// identity, or first seen at another time). The same file moving on (`wharf quarantine
/// reprocess` takes it to `staged`; a run finishing a quarantine) is not.
pub(super) fn supersedes(old: &FileRecord, new: &FileRecord) -> bool {
    matches!(old.state, FileState::Quarantined | FileState::Quarantining)
        && (old.identity != new.identity || old.first_seen != new.first_seen)
}

/// One quarantined file of a flow (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuarantinedFile {
    pub rec: FileRecord,
    /// Its content result: `quarantine` says where its copy is, and why.
    pub result: FileResult,
    /// `None` for the file the path's record holds now; else it is of an earlier generation.
    pub earlier: Option<Earlier>,
}

/// Where a [`QuarantinedFile`] of an earlier generation is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Earlier {
    /// Its key in `quarantined_earlier_v1` (when it was quarantined, ms).
    #[serde(skip)]
    pub key: Millis,
    /// When the newer file's record replaced it.
    #[serde(with = "crate::timestamp::millis")]
    pub replaced: Millis,
}

impl QuarantinedFile {
    /// Where and why it was quarantined (a default record when none was stored).
    pub fn quarantine(&self) -> QuarantineRecord {
        self.result.quarantine.clone().unwrap_or_default()
    }

    /// Its copy as commands show it, `endpoint:/path` (`None` when none was named).
    pub fn copy(&self) -> Option<String> {
        self.result.quarantine.as_ref()?.shown_copy()
    }
}

impl Ledger {
    /// The quarantined files of `flow` (only those of `path` when given), by path and then by
    /// when they were quarantined: each record in state `quarantined`, with its content
    /// result, and each kept from an earlier generation ([`QuarantinedFile::earlier`]). One
    /// read transaction. (This process's lazy writes are not looked at: a quarantined record
    /// is written durably, and a newer file's lazy record replaces it only once stored.) A
    /// ledger an older wharf last wrote has no earlier generations.
    pub fn quarantined_files(&self, flow: &str, path: Option<&str>) -> Result<Vec<QuarantinedFile>, LedgerError> {
        let mut out = self.read(|tx| {
            let files = tx.open_table(FILES)?;
            let results = tx.open_table(FILE_RESULTS)?;
            let mut out = Vec::new();
            let mut current = |rec: FileRecord| -> Result<(), redb::Error> {
                if rec.state == FileState::Quarantined {
                    let result = results.get((flow, rec.path.as_str()))?.map(|v| v.value()).unwrap_or_default();
                    out.push(QuarantinedFile { rec, result, earlier: None });
                }
                Ok(())
            };
            match path {
                Some(p) => {
                    if let Some(rec) = files.get((flow, p))?.map(|v| v.value()) {
                        current(rec)?;
                    }
                }
                None => {
                    for item in files.range::<(&str, &str)>(flow_range(flow))? {
                        current(item?.1.value())?;
                    }
                }
            }
            let earlier = match tx.open_table(EARLIER) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(out),
                Err(e) => return Err(e.into()),
            };
            let (first, last) = match path {
                Some(p) => ((flow, p, Millis::MIN), (flow, p, Millis::MAX)),
                None => ((flow, "", Millis::MIN), (flow, "\u{10FFFF}", Millis::MAX)),
            };
            for item in earlier.range(first..=last)? {
                let (key, v) = item?;
                let e = v.value();
                out.push(QuarantinedFile {
                    rec: e.rec,
                    result: e.result,
                    earlier: Some(Earlier { key: key.value().2, replaced: e.replaced }),
                });
            }
            Ok(out)
        })?;
        out.sort_by(|a, b| (&a.rec.path, a.quarantine().at).cmp(&(&b.rec.path, b.quarantine().at)));
        Ok(out)
    }

    /// Forgets the quarantined file of an earlier generation `e` of `flow`'s `path` (its copy
    /// released); the path's current record is not touched. Whether there was one.
    pub fn forget_earlier_quarantine(&self, flow: &str, path: &str, e: &Earlier) -> Result<bool, LedgerError> {
        self.write(|tx| Ok(FileTables::open(tx)?.remove_earlier(flow, path, e.key)?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::prune::{ForgetDelivered, Listed, Prune};
    use super::super::tests::rec;
    use super::super::*;
    use super::Earlier;

    /// A quarantined record of `path` first seen at `seen`, its copy `copy` made at `at`.
    fn quarantined(l: &Ledger, path: &str, seen: Millis, at: Millis, copy: &str) {
        let rec = FileRecord { first_seen: seen, updated: at, ..rec(path, FileState::Quarantined) };
        let q = QuarantineRecord { reason: format!("bad {seen}"), at, endpoint: "q".into(), copy: Some(copy.into()), ..Default::default() };
        l.put_file_and_result("f", &rec, &FileResult { quarantine: Some(q), ..Default::default() }).unwrap();
    }

    fn copies(l: &Ledger, path: Option<&str>) -> Vec<(String, bool)> {
        l.quarantined_files("f", path).unwrap().iter().map(|q| (q.copy().unwrap(), q.earlier.is_some())).collect()
    }

    /// A partner's corrected file sent under the name of a quarantined one replaced its record,
    /// and with it the only record of the copy in quarantine: it is kept, in the same
    /// transaction as the newer record, whichever way that is written.
    #[test]
    fn a_newer_file_under_a_quarantined_name_keeps_the_quarantined_one() {
        let l = Ledger::in_memory().unwrap();
        quarantined(&l, "in/a.csv", 1, 10, "bad/a.csv");
        quarantined(&l, "in/b.csv", 1, 10, "bad/b.csv");
        // Reprocess moves the same file on: nothing kept.
        let same = FileRecord { first_seen: 1, state: FileState::Staged, ..rec("in/b.csv", FileState::Staged) };
        l.put_file("f", &same).unwrap();
        assert_eq!(copies(&l, None), [("q:/bad/a.csv".to_string(), false)]);
        // A newer file, in a group commit; then it is quarantined too, its copy another.
        let newer = FileRecord { first_seen: 20, updated: 20, ..rec("in/a.csv", FileState::Staging) };
        l.commit(&[Transition::File { flow: "f".into(), rec: newer }]).unwrap();
        let listed = l.quarantined_files("f", Some("in/a.csv")).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].earlier, Some(Earlier { key: 10, replaced: 20 }));
        assert_eq!(listed[0].rec.state, FileState::Quarantined);
        assert_eq!(listed[0].quarantine().reason, "bad 1");
        assert!(l.file_result("f", "in/a.csv").unwrap().is_none(), "its result went with it");
        quarantined(&l, "in/a.csv", 20, 30, "bad/a-1.csv");
        // A third, lazily written: the second is kept once it is stored.
        let third = FileRecord { first_seen: 40, updated: 40, ..rec("in/a.csv", FileState::Staged) };
        l.put_file_with("f", &third, Durability::Lazy).unwrap();
        assert_eq!(copies(&l, Some("in/a.csv")), [("q:/bad/a.csv".to_string(), true), ("q:/bad/a-1.csv".into(), false)]);
        l.flush().unwrap();
        assert_eq!(copies(&l, Some("in/a.csv")), [("q:/bad/a.csv".to_string(), true), ("q:/bad/a-1.csv".into(), true)]);
        assert!(copies(&l, Some("in/c.csv")).is_empty());
        // Released: that one goes, nothing else.
        let first = l.quarantined_files("f", Some("in/a.csv")).unwrap().remove(0).earlier.unwrap();
        assert!(l.forget_earlier_quarantine("f", "in/a.csv", &first).unwrap());
        assert!(!l.forget_earlier_quarantine("f", "in/a.csv", &first).unwrap());
        assert_eq!(copies(&l, None), [("q:/bad/a-1.csv".to_string(), true)]);
        assert_eq!(l.file("f", "in/a.csv").unwrap().map(|r| r.first_seen), Some(40));
    }

    /// Two earlier files quarantined in the same millisecond are both kept.
    #[test]
    fn two_earlier_files_quarantined_at_once_are_both_kept() {
        let l = Ledger::in_memory().unwrap();
        quarantined(&l, "in/a.csv", 1, 10, "bad/a.csv");
        quarantined(&l, "in/a.csv", 2, 10, "bad/a-1.csv");
        l.put_file("f", &FileRecord { first_seen: 3, ..rec("in/a.csv", FileState::Done) }).unwrap();
        let keys: Vec<Millis> = l.quarantined_files("f", None).unwrap().iter().map(|q| q.earlier.unwrap().key).collect();
        assert_eq!(keys, [10, 11]);
    }

    /// A file left being quarantined by a run that stopped, replaced by a newer one: kept when
    /// its copy was named (it may have been made), not when none was.
    #[test]
    fn a_file_being_quarantined_is_kept_once_its_copy_is_named() {
        let l = Ledger::in_memory().unwrap();
        let q = QuarantineRecord { at: 5, endpoint: "q".into(), copy: Some("bad/a.csv".into()), ..Default::default() };
        let res = |copy: bool| FileResult {
            quarantine: Some(QuarantineRecord { copy: q.copy.clone().filter(|_| copy), ..q.clone() }),
            ..Default::default()
        };
        l.put_file_and_result("f", &rec("in/a.csv", FileState::Quarantining), &res(true)).unwrap();
        l.put_file_and_result("f", &rec("in/b.csv", FileState::Quarantining), &res(false)).unwrap();
        for p in ["in/a.csv", "in/b.csv"] {
            l.put_file("f", &FileRecord { first_seen: 9, ..rec(p, FileState::Staging) }).unwrap();
        }
        let kept = l.quarantined_files("f", None).unwrap();
        assert_eq!(kept.iter().map(|q| (q.rec.path.as_str(), q.rec.state)).collect::<Vec<_>>(), [("in/a.csv", FileState::Quarantining)]);
        assert!(l.file_result("f", "in/b.csv").unwrap().is_none());
    }

    /// History pruning keeps them whatever their age; `wharf forget` removes them with the
    /// flow (and counts them first), and no other flow's.
    #[test]
    fn pruning_keeps_them_and_forgetting_the_flow_removes_them() {
        let l = Ledger::in_memory().unwrap();
        quarantined(&l, "in/a.csv", 1, 10, "bad/a.csv");
        l.put_file("f", &FileRecord { first_seen: 2, updated: 20, ..rec("in/a.csv", FileState::Done) }).unwrap();
        let listed = Listed::default();
        let p = Prune { flow: "f", cutoff: Millis::MAX, listed: Some(&listed), forget_delivered: ForgetDelivered::All, limit: 100 };
        assert_eq!(l.prune(&p, Millis::MAX).unwrap().files, 1, "the newer record goes");
        assert_eq!(copies(&l, None), [("q:/bad/a.csv".to_string(), true)], "the earlier one stays");
        quarantined(&l, "in/b.csv", 1, 10, "bad/b.csv");
        l.put_file("f", &FileRecord { first_seen: 2, ..rec("in/b.csv", FileState::Done) }).unwrap();
        // Another flow's, under a name that begins the same.
        let q = QuarantineRecord { at: 1, endpoint: "q".into(), copy: Some("x".into()), ..Default::default() };
        l.put_file_and_result("f2", &rec("in/a.csv", FileState::Quarantined), &FileResult { quarantine: Some(q), ..Default::default() })
            .unwrap();
        l.put_file("f2", &FileRecord { first_seen: 2, ..rec("in/a.csv", FileState::Done) }).unwrap();
        assert_eq!(l.flow_records("f").unwrap().earlier_quarantined, 2);
        let mut removed = 0;
        loop {
            let f = l.forget("f", 1).unwrap();
            removed += f.removed.earlier_quarantined;
            if !f.more {
                break;
            }
        }
        assert_eq!(removed, 2);
        assert!(l.quarantined_files("f", None).unwrap().is_empty());
        assert_eq!(l.quarantined_files("f2", None).unwrap().len(), 1);
    }
}
