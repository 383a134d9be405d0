//! Moves records an older wharf stored into the tables this version reads, once, when the
//! writer opens the ledger (in the same transaction that creates the new tables). Each
//! older layout is kept here, frozen, beside its conversion; nothing else reads it.
//!
//! A conversion raises `layout::LAYOUT`, so that the wharf before it refuses the ledger
//! instead of finding its tables gone. The converted tables are dropped, not kept for such a
//! rollback: frozen at the upgrade, they would show the older wharf files delivered since as
//! new and files finished since as still in flight (delivered again either way), and hold a
//! second copy of every record; the way back is a copy of the state folder taken before the
//! upgrade (docs/operations.md, "Rolling back").

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::FILES;
use super::awaits::{AWAITS, AwaitRecord};
use super::codec::Postcard;
use super::events::{EVENTS, Event};
use super::records::{Delivery, FileRecord, SourceFate};
use super::unsafe_names::{UNSAFE_NAMES, UnsafeName};
use crate::endpoint::RemotePath;
use crate::endpoint::listing::unreadable_folder;

/// Converts what the ledger holds in older layouts, then drops the older tables.
pub(super) fn run(tx: &WriteTransaction) -> Result<(), redb::Error> {
    files_to_v3(tx, v1::FILES)?;
    files_to_v3(tx, v2::FILES)?;
    events_v1_to_v2(tx)?;
    awaits_v1_to_v2(tx)?;
    unreadable_folders_as_folders(tx)
}

/// Why a subfolder the listing could not read was recorded in `unsafe_names_v1` by wharf
/// before it keyed the record as a folder (`/in/locked`, not `/in/locked/`). No record
/// written since has this reason: today's name the server's cause.
const UNREADABLE_FOLDER_BEFORE: &str = "a subfolder the listing could not read (permission denied, or gone): nothing under it is taken";

/// `unsafe_names_v1` keeps its layout, but a subfolder the listing could not read is keyed
/// as a folder now (`endpoint::listing::unreadable_folder`: `/in/locked/`). A record under
/// the folder's path, written before, is moved to that key, its first sighting and run
/// kept: the next run knows the folder (no second warning and `not_taken` event; it
/// refreshes the reason) and `wharf status` tells it as a folder. The table holds only what
/// a source can never take (a few names), so looking through it at each open costs nothing.
fn unreadable_folders_as_folders(tx: &WriteTransaction) -> Result<(), redb::Error> {
    if !tx.list_tables()?.any(|t| t.name() == UNSAFE_NAMES.name()) {
        return Ok(());
    }
    let mut table = tx.open_table(UNSAFE_NAMES)?;
    let mut old = Vec::new();
    for row in table.iter()? {
        let (key, rec) = row?;
        let (flow, path) = key.value();
        let rec = rec.value();
        if rec.reason == UNREADABLE_FOLDER_BEFORE
            && let Ok(folder) = RemotePath::parse(path)
        {
            old.push((flow.to_string(), path.to_string(), unreadable_folder(&folder), rec));
        }
    }
    for (flow, path, folder, rec) in old {
        table.remove((flow.as_str(), path.as_str()))?;
        table.insert((flow.as_str(), folder.as_str()), &UnsafeName { path: folder.clone(), ..rec })?;
    }
    Ok(())
}

/// `awaits_v2`: an await records the first run whose response can answer it
/// (`AwaitRecord::answerable_from`). Awaits recorded before were all sent before their run
/// looked for responses: the run that sent them.
fn awaits_v1_to_v2(tx: &WriteTransaction) -> Result<(), redb::Error> {
    if !tx.list_tables()?.any(|t| t.name() == v1::AWAITS.name()) {
        return Ok(());
    }
    {
        let old = tx.open_table(v1::AWAITS)?;
        let mut new = tx.open_table(AWAITS)?;
        for row in old.iter()? {
            let (key, a) = row?;
            let (flow, expected) = key.value();
            new.insert((flow, expected), &AwaitRecord::from(a.value()))?;
        }
    }
    tx.delete_table(v1::AWAITS)?;
    Ok(())
}

/// `files_v2`: a delivery records the file its target held before (`Delivery::replaces`).
/// Deliveries recorded before did not look, so they say nothing.
///
/// `files_v3`: a record says what became of its source (`FileRecord::source_fate`). Records
/// before said only where a moved one went; the others are `unknown` (history then judges
/// them by what the flow does now, as it did before).
fn files_to_v3<T>(tx: &WriteTransaction, old: redb::TableDefinition<(&str, &str), Postcard<T>>) -> Result<(), redb::Error>
where
    T: std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned + Into<FileRecord>,
{
    if !tx.list_tables()?.any(|t| t.name() == old.name()) {
        return Ok(());
    }
    {
        let from = tx.open_table(old)?;
        let mut new = tx.open_table(FILES)?;
        for row in from.iter()? {
            let (key, rec) = row?;
            let (flow, path) = key.value();
            new.insert((flow, path), &rec.value().into())?;
        }
    }
    tx.delete_table(old)?;
    Ok(())
}

/// What an older layout's record says of its source: moved when it names where.
fn fate_of(disposed_to: &Option<String>) -> SourceFate {
    if disposed_to.is_some() { SourceFate::Moved } else { SourceFate::Unknown }
}

/// `events_v2`: an event records the run that raised it (`Event::run`). Events recorded
/// before did not, so they name none. Their sequence numbers are kept, and with them the
/// notifier's cursor (`notify_cursor` counts in the same sequence).
fn events_v1_to_v2(tx: &WriteTransaction) -> Result<(), redb::Error> {
    if !tx.list_tables()?.any(|t| t.name() == v1::EVENTS.name()) {
        return Ok(());
    }
    {
        let old = tx.open_table(v1::EVENTS)?;
        let mut new = tx.open_table(EVENTS)?;
        for row in old.iter()? {
            let (key, ev) = row?;
            let (flow, seq) = key.value();
            new.insert((flow, seq), &Event::from(ev.value()))?;
        }
    }
    tx.delete_table(v1::EVENTS)?;
    Ok(())
}

/// The `files_v2` layout: today's without `source_fate`.
mod v2 {
    use redb::TableDefinition;
    use serde::{Deserialize, Serialize};

    use super::Postcard;
    use crate::ledger::records::{Delivery, ErrorRecord, FileState, Millis};

    pub const FILES: TableDefinition<(&str, &str), Postcard<FileRecord>> = TableDefinition::new("files_v2");

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FileRecord {
        pub path: String,
        pub identity: String,
        pub size: u64,
        pub mtime: Option<Millis>,
        pub sha256: Option<String>,
        pub state: FileState,
        pub attempts: u32,
        pub last_error: Option<ErrorRecord>,
        pub first_seen: Millis,
        pub updated: Millis,
        pub run: u64,
        pub deliveries: Vec<Delivery>,
        pub disposed_to: Option<String>,
    }
}

/// The `files_v1`, `events_v1` and `awaits_v1` layouts. The struct names are part of the stored type name
/// (see `codec`).
mod v1 {
    use redb::TableDefinition;
    use serde::{Deserialize, Serialize};

    use super::Postcard;
    use crate::ledger::awaits::AwaitState;
    use crate::ledger::events::EventKind;
    use crate::ledger::records::{ErrorRecord, FileState, Millis};

    pub const FILES: TableDefinition<(&str, &str), Postcard<FileRecord>> = TableDefinition::new("files_v1");
    pub const EVENTS: TableDefinition<(&str, u64), Postcard<Event>> = TableDefinition::new("events_v1");
    pub const AWAITS: TableDefinition<(&str, &str), Postcard<AwaitRecord>> = TableDefinition::new("awaits_v1");

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct AwaitRecord {
        pub flow: String,
        pub request: String,
        pub request_identity: String,
        pub request_target: String,
        pub request_run: u64,
        pub expected: String,
        #[serde(with = "crate::timestamp::millis")]
        pub sent_at: Millis,
        #[serde(with = "crate::timestamp::millis")]
        pub deadline_at: Millis,
        #[serde(with = "crate::timestamp::millis_opt")]
        pub expire_at: Option<Millis>,
        pub state: AwaitState,
        pub response_run: Option<u64>,
        #[serde(with = "crate::timestamp::millis_opt")]
        pub answered_at: Option<Millis>,
        pub detail: Option<String>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct FileRecord {
        pub path: String,
        pub identity: String,
        pub size: u64,
        pub mtime: Option<Millis>,
        pub sha256: Option<String>,
        pub state: FileState,
        pub attempts: u32,
        pub last_error: Option<ErrorRecord>,
        pub first_seen: Millis,
        pub updated: Millis,
        pub run: u64,
        pub deliveries: Vec<Delivery>,
        pub disposed_to: Option<String>,
    }

    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Delivery {
        pub sink: u32,
        pub target: String,
        pub done: bool,
    }

    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Event {
        pub seq: u64,
        pub flow: String,
        pub at: Millis,
        pub kind: EventKind,
        pub subject: String,
        pub detail: String,
    }
}

/// `files_v1` → `files_v2`: deliveries say nothing of what their target held before.
impl From<v1::FileRecord> for v2::FileRecord {
    fn from(r: v1::FileRecord) -> v2::FileRecord {
        let v1::FileRecord {
            path,
            identity,
            size,
            mtime,
            sha256,
            state,
            attempts,
            last_error,
            first_seen,
            updated,
            run,
            deliveries,
            disposed_to,
        } = r;
        let deliveries =
            deliveries.into_iter().map(|d| Delivery { sink: d.sink, target: d.target, done: d.done, replaces: None }).collect();
        v2::FileRecord {
            path,
            identity,
            size,
            mtime,
            sha256,
            state,
            attempts,
            last_error,
            first_seen,
            updated,
            run,
            deliveries,
            disposed_to,
        }
    }
}

/// `files_v1` → today's, through `files_v2`.
impl From<v1::FileRecord> for FileRecord {
    fn from(r: v1::FileRecord) -> FileRecord {
        v2::FileRecord::from(r).into()
    }
}

impl From<v2::FileRecord> for FileRecord {
    fn from(r: v2::FileRecord) -> FileRecord {
        FileRecord {
            path: r.path,
            identity: r.identity,
            size: r.size,
            mtime: r.mtime,
            sha256: r.sha256,
            state: r.state,
            attempts: r.attempts,
            last_error: r.last_error,
            first_seen: r.first_seen,
            updated: r.updated,
            run: r.run,
            deliveries: r.deliveries,
            source_fate: fate_of(&r.disposed_to),
            disposed_to: r.disposed_to,
        }
    }
}

impl From<v1::Event> for Event {
    fn from(e: v1::Event) -> Event {
        Event { seq: e.seq, flow: e.flow, at: e.at, kind: e.kind, subject: e.subject, detail: e.detail, run: None }
    }
}

impl From<v1::AwaitRecord> for AwaitRecord {
    fn from(a: v1::AwaitRecord) -> AwaitRecord {
        AwaitRecord {
            answerable_from: a.request_run,
            flow: a.flow,
            request: a.request,
            request_identity: a.request_identity,
            request_target: a.request_target,
            request_run: a.request_run,
            expected: a.expected,
            sent_at: a.sent_at,
            deadline_at: a.deadline_at,
            expire_at: a.expire_at,
            state: a.state,
            response_run: a.response_run,
            answered_at: a.answered_at,
            detail: a.detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{EventKind, FileState, Ledger, NewEvent};

    #[test]
    fn files_written_by_the_previous_layout_are_read_after_an_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let old = v1::FileRecord {
            path: "in/a.csv".into(),
            size: 5,
            state: FileState::Delivering,
            deliveries: vec![v1::Delivery { sink: 0, target: "out/a.csv".into(), done: false }],
            ..Default::default()
        };
        {
            // What an older wharf left: its tables, files in the old layout.
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(v1::FILES).unwrap().insert(("f", "in/a.csv"), &old).unwrap();
            tx.commit().unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        let rec = l.file("f", "in/a.csv").unwrap().expect("migrated");
        assert_eq!((rec.size, rec.state), (5, FileState::Delivering));
        assert_eq!(rec.deliveries, [Delivery { sink: 0, target: "out/a.csv".into(), done: false, replaces: None }]);
        drop(l);
        // The old table is gone, so the next open has nothing to convert.
        let r = Ledger::open_read_only(&p).unwrap();
        assert_eq!(r.missing_tables().unwrap(), Vec::<&str>::new());
        let tables: Vec<String> = r.read(|tx| Ok(tx.list_tables()?.map(|t| t.name().to_string()).collect())).unwrap();
        assert!(!tables.iter().any(|t| t == "files_v1"), "{tables:?}");
    }

    #[test]
    fn files_of_the_v2_layout_say_moved_or_unknown_after_an_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let done = |path: &str, disposed_to: Option<&str>| v2::FileRecord {
            path: path.into(),
            state: FileState::Done,
            deliveries: vec![Delivery { sink: 0, target: "out/x".into(), done: true, replaces: None }],
            disposed_to: disposed_to.map(str::to_string),
            ..Default::default()
        };
        {
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(v2::FILES).unwrap();
                t.insert(("f", "in/moved.csv"), &done("in/moved.csv", Some("in/processed/moved.csv"))).unwrap();
                t.insert(("f", "in/other.csv"), &done("in/other.csv", None)).unwrap();
            }
            tx.commit().unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        let moved = l.file("f", "in/moved.csv").unwrap().expect("migrated");
        assert_eq!((moved.source_fate, moved.disposed_to.as_deref()), (SourceFate::Moved, Some("in/processed/moved.csv")));
        assert_eq!(moved.deliveries.len(), 1);
        // Kept or deleted: the old layout did not say.
        assert_eq!(l.file("f", "in/other.csv").unwrap().unwrap().source_fate, SourceFate::Unknown);
        drop(l);
        let r = Ledger::open_read_only(&p).unwrap();
        assert_eq!(r.missing_tables().unwrap(), Vec::<&str>::new());
        let tables: Vec<String> = r.read(|tx| Ok(tx.list_tables()?.map(|t| t.name().to_string()).collect())).unwrap();
        assert!(!tables.iter().any(|t| t == "files_v2"), "{tables:?}");
    }

    #[test]
    fn events_written_by_the_previous_layout_are_read_after_an_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let old = |seq: u64, flow: &str| v1::Event {
            seq,
            flow: flow.into(),
            at: 1_000 + seq as i64,
            kind: EventKind::Failed,
            subject: String::new(),
            detail: format!("run {seq} failed"),
        };
        {
            // What an older wharf left: its events, numbered, and the notifier's cursor.
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(v1::EVENTS).unwrap();
                t.insert(("b", 1), &old(1, "b")).unwrap();
                t.insert(("a", 2), &old(2, "a")).unwrap();
                let mut counters = tx.open_table(crate::ledger::COUNTERS).unwrap();
                counters.insert("event", 2).unwrap();
                counters.insert("notify_cursor", 1).unwrap();
            }
            tx.commit().unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        let events = l.events(None, 0, 10).unwrap();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(
            events[1],
            Event {
                seq: 2,
                flow: "a".into(),
                at: 1_002,
                kind: EventKind::Failed,
                subject: String::new(),
                detail: "run 2 failed".into(),
                run: None
            }
        );
        // The sequence and the cursor go on where they were: nothing is sent twice or skipped.
        assert_eq!((l.notify_cursor().unwrap(), l.last_event_seq().unwrap()), (Some(1), 2));
        assert_eq!(l.events(None, 1, 10).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
        let new = NewEvent { flow: "a".into(), at: 5, kind: EventKind::Failed, subject: String::new(), detail: "d".into(), run: Some(3) };
        assert_eq!(l.record_events(&[new]).unwrap()[0].seq, 3);
        drop(l);
        let r = Ledger::open_read_only(&p).unwrap();
        assert_eq!(r.missing_tables().unwrap(), Vec::<&str>::new());
        let tables: Vec<String> = r.read(|tx| Ok(tx.list_tables()?.map(|t| t.name().to_string()).collect())).unwrap();
        assert!(!tables.iter().any(|t| t == "events_v1"), "{tables:?}");
        assert_eq!(r.events(Some("a"), 0, 10).unwrap().iter().map(|e| e.run).collect::<Vec<_>>(), [None, Some(3)]);
    }

    #[test]
    fn awaits_of_the_v1_layout_are_answerable_from_the_run_that_sent_them_after_an_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let old = v1::AwaitRecord {
            flow: "f".into(),
            request: "a.csv".into(),
            request_identity: "ia".into(),
            request_run: 7,
            expected: "outbox/a.ack".into(),
            sent_at: 1_000,
            deadline_at: 2_000,
            state: crate::ledger::AwaitState::Overdue,
            ..Default::default()
        };
        {
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(v1::AWAITS).unwrap().insert(("f", "outbox/a.ack"), &old).unwrap();
            tx.commit().unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        let a = l.awaited("f", "outbox/a.ack").unwrap().expect("migrated");
        assert_eq!((a.request.as_str(), a.request_run, a.answerable_from, a.state), ("a.csv", 7, 7, crate::ledger::AwaitState::Overdue));
        drop(l);
        let r = Ledger::open_read_only(&p).unwrap();
        assert_eq!(r.missing_tables().unwrap(), Vec::<&str>::new());
        let tables: Vec<String> = r.read(|tx| Ok(tx.list_tables()?.map(|t| t.name().to_string()).collect())).unwrap();
        assert!(!tables.iter().any(|t| t == "awaits_v1"), "{tables:?}");
    }

    /// A subfolder the listing could not read, recorded by an older wharf under its path
    /// (`/in/locked`): after the upgrade it is the folder's record (`/in/locked/`), so the
    /// next run neither warns of it again nor raises a second `not_taken` event, and it
    /// takes the reason that run gives. Before, the old record was dropped as gone and the
    /// folder told of again. A file of that name with another reason is left alone.
    #[test]
    fn a_folder_recorded_under_its_path_by_an_older_wharf_is_the_folders_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let rec = |path: &str, reason: &str| UnsafeName { path: path.into(), reason: reason.into(), first_seen: 1_000, run: 3 };
        let link = rec("/in/link.csv", "a symbolic link: only regular files are taken (a link is never followed)");
        {
            let db = redb::Database::create(&p).unwrap();
            let tx = db.begin_write().unwrap();
            let mut t = tx.open_table(UNSAFE_NAMES).unwrap();
            t.insert(("f", "/in/locked"), &rec("/in/locked", UNREADABLE_FOLDER_BEFORE)).unwrap();
            t.insert(("f", "/in/link.csv"), &link).unwrap();
            drop(t);
            tx.commit().unwrap();
        }
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.unsafe_names("f").unwrap(), [rec("/in/link.csv", &link.reason), rec("/in/locked/", UNREADABLE_FOLDER_BEFORE)]);
        let why = "permission denied: Permission denied; nothing under it is taken while the listing cannot read it";
        let names = [("/in/link.csv".to_string(), link.reason.clone()), ("/in/locked/".to_string(), why.to_string())];
        let noted = crate::ledger::Noted { flow: "f", run: 4, at: 2_000, names: &names, unlisted: &["/in/locked".to_string()] };
        assert_eq!(l.note_unsafe_names(&noted).unwrap(), Vec::<String>::new(), "known: not told again");
        assert!(l.events(None, 0, 10).unwrap().is_empty());
        assert_eq!(l.unsafe_names("f").unwrap()[1], rec("/in/locked/", why), "the reason of today, first seen as recorded");
        // Converted once: the next open finds nothing to move.
        drop(l);
        let l = Ledger::open(&p).unwrap();
        assert_eq!(l.unsafe_names("f").unwrap().len(), 2);
    }
}
