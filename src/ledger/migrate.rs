//! Moves records an older wharf stored into the tables this version reads, once, when the
//! writer opens the ledger (in the same transaction that creates the new tables). Each
//! older layout is kept here, frozen, beside its conversion; nothing else reads it.

use redb::{ReadableTable, TableHandle, WriteTransaction};

use super::FILES;
use super::codec::Postcard;
use super::records::{Delivery, FileRecord};

/// Converts what the ledger holds in older layouts, then drops the older tables.
pub(super) fn run(tx: &WriteTransaction) -> Result<(), redb::Error> {
    files_v1_to_v2(tx)
}

/// `files_v2`: a delivery records the file its target held before (`Delivery::replaces`).
/// Deliveries recorded before did not look, so they say nothing.
fn files_v1_to_v2(tx: &WriteTransaction) -> Result<(), redb::Error> {
    if !tx.list_tables()?.any(|t| t.name() == v1::FILES.name()) {
        return Ok(());
    }
    {
        let old = tx.open_table(v1::FILES)?;
        let mut new = tx.open_table(FILES)?;
        for row in old.iter()? {
            let (key, rec) = row?;
            let (flow, path) = key.value();
            new.insert((flow, path), &FileRecord::from(rec.value()))?;
        }
    }
    tx.delete_table(v1::FILES)?;
    Ok(())
}

/// The `files_v1` layout. The struct names are part of the stored type name (see `codec`).
mod v1 {
    use redb::TableDefinition;
    use serde::{Deserialize, Serialize};

    use super::Postcard;
    use crate::ledger::records::{ErrorRecord, FileState, Millis};

    pub const FILES: TableDefinition<(&str, &str), Postcard<FileRecord>> = TableDefinition::new("files_v1");

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
}

impl From<v1::FileRecord> for FileRecord {
    fn from(r: v1::FileRecord) -> FileRecord {
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
            deliveries: r
                .deliveries
                .into_iter()
                .map(|d| Delivery { sink: d.sink, target: d.target, done: d.done, replaces: None })
                .collect(),
            disposed_to: r.disposed_to,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{FileState, Ledger};

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
}
