//! The local paths a flow names (schemas, templates, scripts, key files, local roots…), once
//! resolved against the flow file's folder: written without `.` and `name/..` pairs, so messages,
//! `Debug` and `describe()` show `/srv/wharf/schemas/x.json`, not
//! `/srv/wharf/flows/../schemas/x.json`.
//!
//! Cleaning never changes which file is opened, and follows no symbolic link: a `name/..` pair is
//! taken out only when `name` is a folder here and not a symbolic link. After a link, `..` is the
//! parent of the link's target, not the folder holding the link (a flows folder linked from a
//! checkout elsewhere); after a name that is not a folder, the system refuses the path, and the
//! run shall say so of the path as written.

use std::path::{Component, Path, PathBuf};

/// `rel` resolved against `base` (the flow file's folder), cleaned; an absolute `rel` as it is,
/// cleaned.
pub fn resolve(base: &Path, rel: impl AsRef<Path>) -> PathBuf {
    clean(&base.join(rel))
}

/// `path` made absolute against the current folder, cleaned.
pub fn absolute(path: &Path) -> PathBuf {
    clean(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// `path` without `.` components, and without the `name/..` pairs that surely name the same
/// folder (see the module's doc); `/..` is `/`. A leading `..` of a relative path stays.
pub fn clean(path: &Path) -> PathBuf {
    clean_with(path, |p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
}

/// [`clean`], asking `is_folder(p)` whether `p` is a folder and no symbolic link.
fn clean_with(path: &Path, is_folder: impl Fn(&Path) -> bool) -> PathBuf {
    let mut out = PathBuf::new();
    // The names at the end of `out` that a `..` may take back: none before the root, nor before
    // a `..` that stays (what precedes it is unknown).
    let mut names = 0usize;
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if names > 0 && is_folder(&out) => {
                out.pop();
                names -= 1;
            }
            Component::ParentDir if out.has_root() && out.parent().is_none() => {}
            Component::Normal(_) => {
                out.push(c);
                names += 1;
            }
            _ => {
                out.push(c);
                names = 0;
            }
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexical(p: &str) -> String {
        clean_with(Path::new(p), |_| true).display().to_string()
    }

    #[test]
    fn dot_and_name_dot_dot_pairs_go() {
        assert_eq!(lexical("/tmp/x/flows/../out"), "/tmp/x/out");
        assert_eq!(lexical("flows/../schemas/records/./x.json"), "schemas/records/x.json");
        assert_eq!(lexical("./a/b/../../c/"), "c");
        assert_eq!(lexical("a/.."), ".");
        assert_eq!(lexical("/../a/../../b"), "/b");
        // Nothing before them to take back.
        assert_eq!(lexical("../../a/../b"), "../../b");
        assert_eq!(lexical("a/../../b/.."), "..");
    }

    /// A link's `..` is its target's parent: kept, and so is what follows it; so is a name that
    /// is not a folder (the path names nothing).
    #[test]
    fn a_symbolic_link_or_a_missing_folder_keeps_its_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("real/flows")).unwrap();
        std::fs::create_dir_all(d.join("checkout/flows")).unwrap();
        std::fs::create_dir(d.join("checkout/a")).unwrap();
        std::os::unix::fs::symlink(d.join("checkout/flows"), d.join("real/linked")).unwrap();
        let shown = |p: &str| clean(&d.join(p)).strip_prefix(d).unwrap().display().to_string();
        assert_eq!(shown("real/flows/../schemas/x.json"), "real/schemas/x.json");
        assert_eq!(shown("real/linked/../schemas/x.json"), "real/linked/../schemas/x.json");
        // After it, a real folder's `..` goes (`checkout/a/..` is `checkout`).
        assert_eq!(shown("real/linked/../a/../x"), "real/linked/../x");
        assert_eq!(shown("real/missing/../x"), "real/missing/../x");
        // What is cleaned names the same file as what was written.
        std::fs::write(d.join("checkout/x"), "linked").unwrap();
        std::fs::write(d.join("real/x"), "real").unwrap();
        for p in ["real/linked/../x", "real/flows/../x"] {
            assert_eq!(std::fs::read(clean(&d.join(p))).unwrap(), std::fs::read(d.join(p)).unwrap(), "{p}");
        }
    }
}
