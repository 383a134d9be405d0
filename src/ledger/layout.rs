//! The ledger's layout marker: which layout of tables wrote it, and which wharf opened it for
//! writing last. Every writer stores it when it opens the ledger (in the transaction that
//! creates the tables and converts older ones, `Ledger::init`); every open — the writer's and
//! read-only ones — first refuses a ledger whose layout is newer than this build's
//! ([`LedgerError::NewerLayout`]), before anything is written or created.
//!
//! Why: a newer wharf converts the tables an older one reads and drops them (`migrate`). An
//! older wharf opening that ledger (a rollback after a bad upgrade) would find none of its
//! tables, create them empty and take every file still in a source for new: delivered twice.
//! With the marker, a wharf that knows of it stops instead and says what to do. A wharf built
//! before the marker existed cannot be stopped this way (docs/operations.md, "Upgrading and
//! rolling back").
//!
//! Its own table, `meta`, not a row of `counters_v1`: the marker is what every later version
//! reads first, so its table's name and types must never change, whereas `counters_v1` is a
//! versioned table a future layout may convert and drop like any other; and a counter holds a
//! number where the marker also holds the wharf version. So `meta` is `&str` → `&str`
//! forever, with `layout` written as a decimal number; a later version may add keys, never
//! change these.

use redb::{ReadTransaction, ReadableDatabase, TableDefinition, TableError, WriteTransaction};

use super::LedgerError;
#[cfg(doc)]
use super::{Ledger, TABLES, store};

/// The marker's table. Never renamed, never given other key or value types (see the module
/// doc).
pub(super) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// The layout of tables this build reads and writes.
///
/// Raise it with every change a build before it would misread: a table converted and dropped
/// in `migrate` (a table of [`TABLES`] renamed `*_v(N+1)`), or a value in a table the previous
/// build reads that it cannot decode (a new variant of a stored enum). Adding a table the
/// previous build does not know is not such a change (it leaves it alone).
///
/// # What a layout pins
///
/// A test holds this to it (`stored.rs` beside this file): each layout has a record,
/// `src/ledger/layout/N.txt`, of what the ledger stores — every table of [`TABLES`] with its
/// key and value types as redb names them and, for a postcard value, a digest of what
/// postcard reads (each struct's fields in order, each enum's variants with the index postcard
/// writes as their tag, with their serde names: fields swapped read back wrong), then the
/// stored types in words. It is derived from the code (the tables' definitions, the types'
/// serde derives), so a new variant, a field added, removed, retyped or moved, a key changed or
/// a table dropped fails the test until LAYOUT is raised and the new layout recorded; the
/// message says what changed and what to write. A table added, or a type inside a stored one
/// called by another name, keeps the layout: the test then asks for its record to be
/// written anew. A record of an earlier layout is never changed.
///
/// The notifier's own JSON kept in `notify_held_v1` (opaque bytes to redb: the notices a
/// throttle holds back, the run summaries not sent yet) is recorded too, one `json` line per
/// value, as a JSON reader sees it: by names, skipping fields it does not know and taking a
/// missing `Option` as `None`. Each line says whether this build's reader requires the value
/// and takes `null`, and whether this build always writes it, with its JSON type (integers
/// with the range read, strings the reader refuses some values of, like a time, described).
/// A new layout is asked for only for what a reader of the recorded build would refuse: a
/// field it requires gone, renamed or left out at times, `null` where it takes none, a value
/// of another type (a wider integer, a time written otherwise, a new variant of an enum). A
/// field added, or one it does not require gone, keeps the layout. A notice of a kind an
/// older build does not know is read (`kind` is a string) and logged as not sent (no rule of
/// it takes that kind). Not covered: the meaning of what is stored (a counter's key, a
/// state's sense), and what a free-form value holds (a notice's `facts`).
///
/// 1 — files_v3, awaits_v2, events_v2, done_v1 and the other tables of [`TABLES`]
///     (2026-12-07, the first layout with the marker).
pub const LAYOUT: u64 = 1;

/// This build's version, stored as `written_by` (the one constant is [`crate::VERSION`]).
pub use crate::VERSION;

const LAYOUT_KEY: &str = "layout";
const WRITTEN_BY_KEY: &str = "written_by";

/// What the marker of a ledger says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Marker {
    /// The layout of the wharf that opened it for writing last ([`LAYOUT`] is this build's).
    pub layout: u64,
    /// That wharf's version (as its `wharf --version` printed it).
    pub written_by: String,
}

/// The marker a read transaction sees; `None` for a ledger no wharf with the marker has
/// opened for writing yet (new, or last written by an older wharf).
pub(super) fn read(tx: &ReadTransaction) -> Result<Option<Marker>, redb::Error> {
    let table = match tx.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let Some(layout) = table.get(LAYOUT_KEY)?.map(|v| v.value().to_string()) else { return Ok(None) };
    let written_by = table.get(WRITTEN_BY_KEY)?.map(|v| v.value().to_string()).unwrap_or_default();
    // A layout that is not a number was written by a build that changed what this module
    // says never changes: newer than any this build knows.
    Ok(Some(Marker { layout: layout.parse().unwrap_or(u64::MAX), written_by }))
}

/// Refuses the ledger at `path`, open as `db`, when a newer layout than this build's wrote
/// it ([`LedgerError::NewerLayout`]). Every open asks it, the writer's ([`store::open_writer`],
/// a recovery's reopen too) and the readers'.
pub(super) fn check(path: &std::path::Path, db: &impl ReadableDatabase) -> Result<(), LedgerError> {
    let found = db.begin_read().map_err(redb::Error::from).and_then(|tx| read(&tx));
    match found.map_err(|e| super::error::db_error(path, e))? {
        Some(m) if m.layout > LAYOUT => Err(LedgerError::NewerLayout {
            path: path.to_path_buf(),
            layout: m.layout,
            written_by: m.written_by,
            ours: LAYOUT,
            version: VERSION,
        }),
        _ => Ok(()),
    }
}

/// Stores this build's marker (in the writer's opening transaction, after the check).
pub(super) fn write(tx: &WriteTransaction) -> Result<(), redb::Error> {
    let mut table = tx.open_table(META)?;
    table.insert(LAYOUT_KEY, LAYOUT.to_string().as_str())?;
    table.insert(WRITTEN_BY_KEY, VERSION)?;
    Ok(())
}

#[cfg(test)]
mod stored;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    /// A ledger file whose marker says `layout`, written by `version`, as a newer wharf leaves
    /// it: its own tables only (this build's `files_v3` dropped by its conversion).
    fn written_by_newer(p: &std::path::Path, layout: &str, version: &str) {
        let db = redb::Database::create(p).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            meta.insert(LAYOUT_KEY, layout).unwrap();
            meta.insert(WRITTEN_BY_KEY, version).unwrap();
            let files: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("files_v4");
            tx.open_table(files).unwrap().insert(("f", "in/a.csv"), b"delivered".as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_writer_stores_the_layout_and_its_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        drop(Ledger::open(&p).unwrap());
        let r = Ledger::open_read_only(&p).unwrap();
        assert_eq!(r.layout().unwrap(), Some(Marker { layout: LAYOUT, written_by: VERSION.to_string() }));
        assert_eq!(Ledger::in_memory().unwrap().layout().unwrap().map(|m| m.layout), Some(LAYOUT));
    }

    /// A ledger an older wharf wrote (no marker) is opened and marked; one an older wharf
    /// with the marker wrote (a lower layout) is taken over, the marker raised.
    #[test]
    fn an_older_or_unmarked_ledger_is_opened_and_marked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        drop(redb::Database::create(&p).unwrap());
        assert_eq!(Ledger::open_read_only(&p).unwrap().layout().unwrap(), None);
        drop(Ledger::open(&p).unwrap());
        assert_eq!(Ledger::open_read_only(&p).unwrap().layout().unwrap().map(|m| m.layout), Some(LAYOUT));
        if LAYOUT > 0 {
            let older = dir.path().join("older.redb");
            written_by_newer(&older, &(LAYOUT - 1).to_string(), "0.0.1");
            drop(Ledger::open(&older).unwrap());
            let m = Ledger::open_read_only(&older).unwrap().layout().unwrap();
            assert_eq!(m, Some(Marker { layout: LAYOUT, written_by: VERSION.to_string() }));
        }
    }

    /// Rolled back after an upgrade, this build finds a ledger a newer layout wrote: every
    /// open refuses it, saying who wrote it and what to do, and the file is left as it was —
    /// no empty tables of this build's that would make every kept source file look new.
    #[test]
    fn a_ledger_of_a_newer_layout_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.redb");
        let newer = (LAYOUT + 1).to_string();
        written_by_newer(&p, &newer, "9.9.9");
        let before = std::fs::read(&p).unwrap();
        let refused = |r: Result<Ledger, LedgerError>| match r {
            Err(e @ LedgerError::NewerLayout { .. }) => e.to_string(),
            other => panic!("not refused: {other:?}"),
        };
        for message in [refused(Ledger::open(&p)), refused(Ledger::open_read_only(&p)), refused(Ledger::read_copy(&p))] {
            for part in [&p.display().to_string(), "wharf 9.9.9", &format!("layout {newer}"), VERSION, "restore the state folder's backup"]
            {
                assert!(message.contains(part), "{part:?} not in {message}");
            }
        }
        assert!(std::fs::read(&p).unwrap() == before, "the file is byte-identical");
        // Whatever the layout says that is not a number: newer than this build knows.
        let odd = dir.path().join("odd.redb");
        written_by_newer(&odd, "2b", "9.9.9");
        assert!(matches!(Ledger::open(&odd), Err(LedgerError::NewerLayout { .. })));
    }

    /// A newer wharf killed while writing leaves a file only a writer can repair: the reader's
    /// repair opens it as the writer, which refuses it as it is (the repair is redb's own, of
    /// what that wharf committed), and the reader says so rather than "could not be repaired".
    #[test]
    fn a_newer_ledger_left_by_a_killed_writer_is_refused_as_newer() {
        let dir = tempfile::tempdir().unwrap();
        let (live, crashed) = (dir.path().join("live.redb"), dir.path().join("ledger.redb"));
        written_by_newer(&live, &(LAYOUT + 1).to_string(), "9.9.9");
        let db = redb::Database::builder().create(&live).unwrap();
        // The file as a killed writer leaves it: copied while the writer has it open.
        std::fs::copy(&live, &crashed).unwrap();
        drop(db);
        let unrepaired = crate::ledger::store::builder().open_read_only(&crashed);
        assert!(matches!(unrepaired, Err(redb::DatabaseError::RepairAborted)), "needs the writer's repair");
        assert!(matches!(Ledger::open_read_only(&crashed), Err(LedgerError::NewerLayout { .. })));
    }
}
