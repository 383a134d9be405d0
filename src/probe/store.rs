//! The last probe of each (flow, endpoint), kept as `STATE/probes/FLOW.ENDPOINT.json`.
//!
//! A plain JSON file, not the ledger: `wharf serve` holds the ledger as its single writer,
//! and a probe must work beside it. Written to a temporary name and renamed, so a reader
//! (`wharf plan`) never sees half a file. Reading never creates anything.

use std::io;
use std::path::{Path, PathBuf};

use super::ProbeReport;

/// Storing or reading a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a stored probe ({source}); run the probe again", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// A name part safe in a file name (flow and endpoint names are already tame; this is a guard).
fn part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' }).collect()
}

/// Where the probe of `endpoint` in `flow` is kept.
pub fn path(state_dir: &Path, flow: &str, endpoint: &str) -> PathBuf {
    state_dir.join("probes").join(format!("{}.{}.json", part(flow), part(endpoint)))
}

/// Stores `report`, replacing the earlier one. Returns the file written.
pub fn save(state_dir: &Path, report: &ProbeReport) -> Result<PathBuf, StoreError> {
    let file = path(state_dir, &report.flow, &report.endpoint);
    let write = |source| StoreError::Write { path: file.clone(), source };
    let dir = file.parent().unwrap_or(state_dir);
    std::fs::create_dir_all(dir).map_err(write)?;
    let json = serde_json::to_vec_pretty(report).map_err(|e| write(io::Error::other(e)))?;
    let tmp = file.with_extension("json.part");
    std::fs::write(&tmp, json).map_err(write)?;
    std::fs::rename(&tmp, &file).map_err(write)?;
    Ok(file)
}

/// The stored probe of `endpoint` in `flow`; `None` when there is none.
pub fn load(state_dir: &Path, flow: &str, endpoint: &str) -> Result<Option<ProbeReport>, StoreError> {
    let file = path(state_dir, flow, endpoint);
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Read { path: file, source }),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|source| StoreError::Format { path: file, source })
}

/// The stored probes of `flow`'s endpoints (what `wharf forget` removes with its records).
/// Their file names alone cannot say (`a_b.c.json` is flow `a_b` or flow `a.b`, endpoint `c`;
/// an endpoint's name may have dots too): each candidate's own `flow` decides. One that cannot be read is
/// not `flow`'s.
pub fn of_flow(state_dir: &Path, flow: &str) -> Vec<PathBuf> {
    #[derive(serde::Deserialize)]
    struct Named {
        flow: String,
    }
    let Ok(entries) = std::fs::read_dir(state_dir.join("probes")) else { return Vec::new() };
    let prefix = format!("{}.", part(flow));
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".json")))
        .filter(|p| std::fs::read(p).ok().and_then(|b| serde_json::from_slice::<Named>(&b).ok()).is_some_and(|n| n.flow == flow))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::endpoint::{Feature, ServerFacts, Support, Traits};
    use crate::probe::Promised;

    #[test]
    fn saved_reports_load_back_and_missing_ones_are_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path(), "f", "p").unwrap().is_none());
        assert!(!dir.path().join("probes").exists(), "reading creates nothing");
        let report = ProbeReport {
            flow: "f".into(),
            endpoint: "p".into(),
            target: "local /x".into(),
            // Whole milliseconds: what the file keeps (`crate::timestamp`).
            probed_at: Utc.timestamp_millis_opt(1_764_064_800_123).unwrap(),
            facts: ServerFacts {
                protocol: "local".into(),
                software: None,
                features: vec![Feature::offered("rename(2)", "POSIX", "atomic")],
                traits: Traits {
                    atomic_replace: Support::yes("a"),
                    durable_writes: Support::yes("b"),
                    server_sha256: Support::no("c"),
                    encrypted: Support::yes("d"),
                    mtime_precision: Duration::from_secs(1),
                    mtime_source: "stat".into(),
                    sessions: None,
                },
                problems: vec![],
            },
            promised: Promised { mtime_precision: Duration::from_secs(1), atomic_replace: true },
            write: None,
            write_error: None,
            findings: vec![],
        };
        let file = save(dir.path(), &report).unwrap();
        assert_eq!(file, dir.path().join("probes/f.p.json"));
        assert_eq!(load(dir.path(), "f", "p").unwrap(), Some(report));
        assert_eq!(path(dir.path(), "a/b", "c.d"), dir.path().join("probes/a_b.c_d.json"));
        std::fs::write(&file, "{").unwrap();
        assert!(matches!(load(dir.path(), "f", "p"), Err(StoreError::Format { .. })));
    }

    #[test]
    fn a_flows_probes_are_told_apart_by_what_they_say() {
        let dir = tempfile::tempdir().unwrap();
        assert!(of_flow(dir.path(), "a").is_empty(), "no probes folder");
        let probes = dir.path().join("probes");
        std::fs::create_dir_all(&probes).unwrap();
        let stored = |flow: &str, endpoint: &str| {
            let file = path(dir.path(), flow, endpoint);
            std::fs::write(&file, format!(r#"{{"flow": "{flow}", "endpoint": "{endpoint}"}}"#)).unwrap();
            file
        };
        // Flows `a.b` and `a_b` share the file name prefix `a_b.`.
        let dotted = stored("a.b", "c");
        let underscored = stored("a_b", "d");
        let a = stored("a", "partner");
        stored("ab", "partner");
        std::fs::write(probes.join("a.broken.json"), "{").unwrap();
        assert_eq!(of_flow(dir.path(), "a"), [a]);
        assert_eq!(of_flow(dir.path(), "a.b"), [dotted]);
        assert_eq!(of_flow(dir.path(), "a_b"), [underscored]);
    }
}
