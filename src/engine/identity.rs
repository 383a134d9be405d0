//! Identity keys: what makes two sightings of a source file "the same file".
//!
//! The ledger's `done` table is keyed by these strings, so their format is part of the
//! on-disk format: change it only together with a table version.

use crate::config::flow::Identity;
use crate::endpoint::Entry;
use crate::ledger::{Millis, to_millis};

/// The key for `entry` under `identity`, or `None` when the identity needs the content
/// (`[sha256]`) and can only be computed after staging.
pub fn key(identity: Identity, entry: &Entry) -> Option<String> {
    if identity.sha256 {
        return None;
    }
    let mut parts = Vec::with_capacity(3);
    if identity.path {
        parts.push(format!("p={}", entry.path.as_str()));
    }
    if identity.size {
        parts.push(format!("s={}", entry.size));
    }
    if identity.mtime {
        parts.push(format!("m={}", mtime_millis(entry).map(|m| m.to_string()).unwrap_or_default()));
    }
    Some(parts.join("|"))
}

/// The key of a content identity.
pub fn content_key(sha256_hex: &str) -> String {
    format!("sha256={sha256_hex}")
}

/// An entry's mtime in ms, as stored in the ledger.
pub fn mtime_millis(entry: &Entry) -> Option<Millis> {
    entry.mtime.map(to_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EntryKind, RemotePath};
    use std::time::{Duration, UNIX_EPOCH};

    fn entry(size: u64, secs: u64) -> Entry {
        Entry {
            path: RemotePath::parse("in/a.csv").unwrap(),
            kind: EntryKind::File,
            size,
            mtime: Some(UNIX_EPOCH + Duration::from_secs(secs)),
        }
    }

    #[test]
    fn default_identity_changes_with_size_or_mtime() {
        let k = key(Identity::DEFAULT, &entry(5, 10)).unwrap();
        assert_eq!(k, "p=in/a.csv|s=5|m=10000");
        assert_ne!(k, key(Identity::DEFAULT, &entry(6, 10)).unwrap());
        assert_ne!(k, key(Identity::DEFAULT, &entry(5, 11)).unwrap());
        let path_only = Identity { path: true, size: false, mtime: false, sha256: false };
        assert_eq!(key(path_only, &entry(5, 10)), key(path_only, &entry(6, 11)));
        assert_eq!(key(Identity { sha256: true, ..path_only }, &entry(5, 10)), None);
    }
}
