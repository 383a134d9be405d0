//! `RemotePath`: a path *inside* an endpoint's root, normalised and jailed.
//!
//! Every path the engine hands to an endpoint is a `RemotePath`. It can only be built by
//! [`RemotePath::parse`] or [`RemotePath::join`], which reject anything that could leave
//! the root (`..`), control characters (a newline in a partner's file name must never turn
//! into a second line in a log or a second path on disk) and NUL, and `\`: never a separator,
//! never in a name (a listed name holding one is left out, told as `not_a_name`), so that no
//! path can mean one thing here and another on a Windows server. A leading `/` means "the
//! endpoint root", so `/incoming` and `incoming` are the same path. This module owns path
//! safety; endpoints must not re-check or re-interpret paths, only map them onto their root.

use std::fmt;

/// A normalised, jailed relative path ("" is the root itself). Components are separated by `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
pub struct RemotePath(String);

/// Why a path was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// `..` would climb out of the endpoint root.
    #[error("`..` is not allowed in {0:?} (paths may not leave the endpoint root)")]
    ParentDir(String),
    /// Control characters (newline, tab, escape …) or NUL.
    #[error("control character in {0:?}")]
    ControlChar(String),
    /// A single name (not a path) contained `/` or was `.`/`..`/empty.
    #[error("{0:?} is not a plain file name")]
    NotAName(String),
    /// A `\` in a path: never a separator here, and never in a name wharf can list (a
    /// Windows server would take it for one: `out/..\..\etc` would leave the root there).
    #[error("{}", backslash(.0))]
    Backslash(String),
}

/// Why `path` with a `\` is refused, and the path written with `/` when that is one.
fn backslash(path: &str) -> String {
    let why = format!("`\\` in {path:?}: paths are written with `/` (a `\\` is never a separator, and a name holding one is never listed)");
    match RemotePath::parse(&path.replace('\\', "/")) {
        Ok(_) => format!("{why}: write {:?}", path.replace('\\', "/")),
        Err(_) => why,
    }
}

impl RemotePath {
    /// The endpoint root.
    pub fn root() -> Self {
        RemotePath(String::new())
    }

    /// Parses a path as written in a flow file or built by a template: `/a/b`, `a/b/`, `./a`
    /// all normalise to `a/b` or `a`. `..` anywhere is refused (never resolved), as are control
    /// characters, and `\` (see [`PathError::Backslash`]).
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s.chars().any(char::is_control) {
            return Err(PathError::ControlChar(s.to_string()));
        }
        if s.contains('\\') {
            return Err(PathError::Backslash(s.to_string()));
        }
        let mut parts = Vec::new();
        for c in s.split('/') {
            match c {
                "" | "." => {}
                ".." => return Err(PathError::ParentDir(s.to_string())),
                c => parts.push(c),
            }
        }
        Ok(RemotePath(parts.join("/")))
    }

    /// This path under a server-side `root` folder, as the server names it: `{root}/{path}`,
    /// `/` for the root of the server itself.
    pub fn on_server(&self, root: &str) -> String {
        let root = root.trim_end_matches('/');
        match (self.is_root(), root.is_empty()) {
            (true, true) => "/".to_string(),
            (true, false) => root.to_string(),
            (false, _) => format!("{root}/{}", self.0),
        }
    }

    /// Appends one plain name (as returned by a directory listing or a name template).
    pub fn join(&self, name: &str) -> Result<Self, PathError> {
        check_name(name)?;
        Ok(if self.0.is_empty() { RemotePath(name.to_string()) } else { RemotePath(format!("{}/{name}", self.0)) })
    }

    /// Appends a relative path (several components), with the same checks as [`parse`](Self::parse).
    pub fn join_path(&self, rel: &str) -> Result<Self, PathError> {
        let rel = RemotePath::parse(rel)?;
        Ok(match (self.0.is_empty(), rel.0.is_empty()) {
            (true, _) => rel,
            (_, true) => self.clone(),
            _ => RemotePath(format!("{}/{}", self.0, rel.0)),
        })
    }

    /// The path relative to the endpoint root, without a leading slash ("" for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the endpoint root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component ("" for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The parent directory (the root's parent is the root).
    pub fn parent(&self) -> RemotePath {
        match self.0.rfind('/') {
            Some(i) => RemotePath(self.0[..i].to_string()),
            None => RemotePath::root(),
        }
    }

    /// The components, root first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|c| !c.is_empty())
    }

    /// `self` relative to `base`, if `self` lies under it.
    pub fn strip_prefix(&self, base: &RemotePath) -> Option<&str> {
        if base.0.is_empty() {
            return Some(&self.0);
        }
        let rest = self.0.strip_prefix(&base.0)?;
        if rest.is_empty() { Some("") } else { rest.strip_prefix('/') }
    }
}

/// Checks that `name` is one plain file name: no separator, not `.`/`..`, no control chars.
pub fn check_name(name: &str) -> Result<(), PathError> {
    if name.chars().any(char::is_control) {
        return Err(PathError::ControlChar(name.to_string()));
    }
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\\') {
        return Err(PathError::NotAName(name.to_string()));
    }
    Ok(())
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", format!("/{}", self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_under_a_server_root() {
        let p = |s: &str| RemotePath::parse(s).unwrap();
        assert_eq!(p("").on_server("/"), "/");
        assert_eq!(p("x").on_server("/"), "/x");
        assert_eq!(p("").on_server("/data/"), "/data");
        assert_eq!(p("in/a b").on_server("/data/"), "/data/in/a b");
        assert_eq!(p("in").on_server(""), "/in");
    }

    #[test]
    fn normalises_slashes_and_dots() {
        assert_eq!(RemotePath::parse("/a//b/./c/").unwrap().as_str(), "a/b/c");
        assert!(RemotePath::parse("/").unwrap().is_root());
        assert_eq!(RemotePath::parse("/in").unwrap().to_string(), "/in");
    }

    #[test]
    fn refuses_escape_and_control_chars() {
        assert!(matches!(RemotePath::parse("../x"), Err(PathError::ParentDir(_))));
        assert!(matches!(RemotePath::parse("a/../../etc/passwd"), Err(PathError::ParentDir(_))));
        assert!(matches!(RemotePath::parse("a\nb"), Err(PathError::ControlChar(_))));
        let root = RemotePath::root();
        assert!(root.join("..").is_err());
        assert!(root.join("a/b").is_err());
        assert!(root.join("evil\n.csv").is_err());
        assert!(root.join("..\\x").is_err());
        // A `\\` is never a separator, and never in a path: a Windows server would read
        // `out/..\\..\\etc` as leaving the root.
        assert!(matches!(RemotePath::parse("out/..\\..\\etc"), Err(PathError::Backslash(_))));
        assert!(matches!(RemotePath::parse("\\incoming\\x.csv"), Err(PathError::Backslash(_))));
        assert!(matches!(root.join_path("a\\b"), Err(PathError::Backslash(_))));
        assert!(root.join("").is_err());
    }

    #[test]
    fn join_parent_name_and_prefix() {
        let p = RemotePath::parse("in").unwrap().join("ä b.csv").unwrap();
        assert_eq!(p.as_str(), "in/ä b.csv");
        assert_eq!(p.name(), "ä b.csv");
        assert_eq!(p.parent().as_str(), "in");
        assert_eq!(p.strip_prefix(&RemotePath::parse("in").unwrap()), Some("ä b.csv"));
        assert_eq!(p.strip_prefix(&RemotePath::parse("i").unwrap()), None);
        assert_eq!(RemotePath::root().join_path("x/y").unwrap().as_str(), "x/y");
    }
}
