//! Discovery: list the source folder (recursively up to `max_depth` when asked), apply the
//! include/exclude globs, and set aside done/trigger files so they are never taken as data.
//!
//! Only listing and filtering; readiness is decided in `ready`.

use std::collections::BTreeSet;

use crate::config::flow::{Disposition, Source};
use crate::endpoint::{Endpoint, EndpointError, Entry, EntryKind, RemotePath};
use crate::template::{NameTemplate, NameVars};

/// A file that passed the globs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub entry: Entry,
    /// Path relative to the source folder (what globs and templates see).
    pub rel: String,
    /// The done file this candidate needs, if the flow wants one: (path, present).
    pub done_file: Option<(RemotePath, bool)>,
}

/// Lists `src` on `ep` and returns the candidates, sorted by path. Folders that are
/// disposition targets (e.g. `processed/`) are never descended into.
pub async fn discover(
    flow: &str,
    ep: &dyn Endpoint,
    src: &Source,
    skip_dirs: &[&Disposition],
    now: std::time::SystemTime,
) -> Result<Vec<Candidate>, EndpointError> {
    let skip: BTreeSet<&RemotePath> =
        skip_dirs.iter().filter_map(|d| if let Disposition::MoveTo(p) = d { Some(p) } else { None }).collect();
    let mut files = Vec::new();
    let mut dirs = vec![(src.path.clone(), 0u32)];
    while let Some((dir, depth)) = dirs.pop() {
        for e in ep.list(&dir).await? {
            match e.kind {
                EntryKind::File => files.push(e),
                EntryKind::Dir if src.recursive && depth < src.max_depth && !skip.contains(&e.path) => {
                    dirs.push((e.path.clone(), depth + 1))
                }
                EntryKind::Other => {
                    // Said only of what the flow would have taken, were it a file.
                    let rel = e.path.strip_prefix(&src.path).unwrap_or_default();
                    if src.include.is_match(rel) && !src.exclude.is_match(rel) && !crate::config::flow::is_hidden(rel) {
                        tracing::warn!(flow, path = %e.path, "Skipping an entry that is not a regular file or folder (a symbolic link, say): only regular files are taken.");
                    }
                }
                EntryKind::Dir => {}
            }
        }
    }
    let names: BTreeSet<String> = files.iter().map(|e| e.path.as_str().to_string()).collect();
    let mut out = Vec::new();
    let mut done_files = BTreeSet::new();
    for e in files {
        let Some(rel) = e.path.strip_prefix(&src.path).map(str::to_string) else { continue };
        if !src.include.is_match(&rel) || src.exclude.is_match(&rel) {
            continue;
        }
        if crate::config::flow::is_hidden(&rel) && !src.include_hidden.is_match(&rel) {
            continue;
        }
        let done_file = match &src.ready.done_file {
            Some(t) => done_path(t, &e, &rel, now).map(|p| {
                let present = names.contains(p.as_str());
                done_files.insert(p.as_str().to_string());
                (p, present)
            }),
            None => None,
        };
        out.push(Candidate { entry: e, rel, done_file });
    }
    // A done file is a signal, not data, even when the globs match it.
    out.retain(|c| !done_files.contains(c.entry.path.as_str()));
    out.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
    Ok(out)
}

fn done_path(t: &NameTemplate, e: &Entry, rel: &str, now: std::time::SystemTime) -> Option<RemotePath> {
    let rel_dir = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let name = t.render(&NameVars::new(e.path.name(), rel_dir, e.size, 0, now)).ok()?;
    e.path.parent().join(&name).ok()
}
