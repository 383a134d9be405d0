//! The sandbox's jail: maps the paths an SFTP client sends onto the served folder.
//!
//! Owns the rule that nothing outside the folder is ever touched: `..` cannot climb above
//! the folder's root (the request is refused, not clamped), and a symlink — in a parent
//! folder, or as the last component of an operation that follows links — is followed only
//! when it resolves inside the folder. Dangling symlinks are not followed at all, since
//! creating through one could place a file anywhere.
//!
//! Checks happen before each operation (check, then use): the sandbox is a local tool that
//! serves your own folder to your own flows, and this keeps clients in it; it is not a
//! boundary against another local user racing to swap folders for symlinks.

use std::io;
use std::path::{Path, PathBuf};

/// Why a client path was not mapped.
#[derive(Debug)]
pub enum JailError {
    /// The path leads outside the folder (`..` above the root, or a symlink pointing out).
    Escape,
    /// Looking at the path failed (a missing parent folder: `NotFound`).
    Io(io::Error),
}

impl From<io::Error> for JailError {
    fn from(e: io::Error) -> Self {
        JailError::Io(e)
    }
}

/// Whether the last component may be a symlink that is followed (`open`, `stat`, `opendir`)
/// or is taken as it is (`lstat`, `remove`, `rename`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// The served folder, canonical.
#[derive(Debug, Clone)]
pub struct Jail {
    root: PathBuf,
}

impl Jail {
    /// A jail over `root`, which must exist (it is canonicalised: symlinks in its own path
    /// are fine).
    pub fn new(root: &Path) -> io::Result<Jail> {
        Ok(Jail { root: root.canonicalize()? })
    }

    /// The folder as it is on disk.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The client's path as names below the root, `.` and `..` applied. Absolute and
    /// relative paths are both taken from the root (the client's home is the root).
    pub fn components(client: &str) -> Result<Vec<&str>, JailError> {
        let mut out: Vec<&str> = Vec::new();
        for c in client.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if out.pop().is_none() {
                        return Err(JailError::Escape);
                    }
                }
                // A NUL cannot be in a file name; refusing it here keeps it out of syscalls.
                c if c.contains('\0') => return Err(JailError::Escape),
                c => out.push(c),
            }
        }
        Ok(out)
    }

    /// The client-visible canonical form, `/a/b` (`/` for the root).
    pub fn client_path(client: &str) -> Result<String, JailError> {
        Ok(format!("/{}", Self::components(client)?.join("/")))
    }

    /// The path on disk for the client's `client` path, after checking that it stays inside.
    pub fn resolve(&self, client: &str, follow: Follow) -> Result<PathBuf, JailError> {
        let names = Self::components(client)?;
        let Some((last, parents)) = names.split_last() else { return Ok(self.root.clone()) };
        let mut real = self.root.clone();
        for name in parents {
            real.push(name);
        }
        // The parent, with every symlink in it resolved, must still be inside.
        if !parents.is_empty() {
            self.inside(&real.canonicalize()?)?;
        }
        real.push(last);
        if follow == Follow::Yes {
            let is_link = match real.symlink_metadata() {
                Ok(md) => md.file_type().is_symlink(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(e.into()),
            };
            if is_link {
                // Dangling (canonicalize fails) or pointing out: not followed.
                match real.canonicalize() {
                    Ok(target) => self.inside(&target)?,
                    Err(_) => return Err(JailError::Escape),
                }
            }
        }
        Ok(real)
    }

    fn inside(&self, canonical: &Path) -> Result<(), JailError> {
        if canonical.starts_with(&self.root) { Ok(()) } else { Err(JailError::Escape) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Jail) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/in")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "s").unwrap();
        std::fs::write(dir.path().join("root/in/a.csv"), "a").unwrap();
        let jail = Jail::new(&dir.path().join("root")).unwrap();
        (dir, jail)
    }

    #[test]
    fn components_apply_dots_and_refuse_climbing_out() {
        assert_eq!(Jail::components("/in/./x/../a.csv").unwrap(), vec!["in", "a.csv"]);
        assert_eq!(Jail::components("in//a").unwrap(), vec!["in", "a"]);
        assert!(Jail::components("/").unwrap().is_empty());
        assert!(Jail::components("").unwrap().is_empty());
        assert!(matches!(Jail::components("/.."), Err(JailError::Escape)));
        assert!(matches!(Jail::components("in/../../etc/passwd"), Err(JailError::Escape)));
        assert!(matches!(Jail::components("a\0b"), Err(JailError::Escape)));
        assert_eq!(Jail::client_path("in/x/..").unwrap(), "/in");
        assert_eq!(Jail::client_path(".").unwrap(), "/");
    }

    #[test]
    fn resolves_inside_the_root() {
        let (_d, jail) = setup();
        assert_eq!(jail.resolve("/", Follow::Yes).unwrap(), jail.root());
        assert_eq!(jail.resolve("/in/a.csv", Follow::Yes).unwrap(), jail.root().join("in/a.csv"));
        // Not there yet (a file about to be created) is fine; a missing parent is NotFound.
        assert_eq!(jail.resolve("/in/new.csv", Follow::Yes).unwrap(), jail.root().join("in/new.csv"));
        match jail.resolve("/no/such/file", Follow::No) {
            Err(JailError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn symlinks_out_are_not_followed() {
        let (d, jail) = setup();
        let out = d.path().join("outside");
        symlink(&out, jail.root().join("out-dir")).unwrap();
        symlink(out.join("secret"), jail.root().join("out-file")).unwrap();
        symlink(d.path().join("nowhere/x"), jail.root().join("dangling")).unwrap();
        symlink("in", jail.root().join("in-link")).unwrap();
        // Through a parent that points out: refused whatever the mode.
        assert!(matches!(jail.resolve("/out-dir/secret", Follow::No), Err(JailError::Escape)));
        assert!(matches!(jail.resolve("/out-dir/new", Follow::No), Err(JailError::Escape)));
        // As the last component: refused when followed, the link itself otherwise.
        assert!(matches!(jail.resolve("/out-file", Follow::Yes), Err(JailError::Escape)));
        assert_eq!(jail.resolve("/out-file", Follow::No).unwrap(), jail.root().join("out-file"));
        assert!(matches!(jail.resolve("/dangling", Follow::Yes), Err(JailError::Escape)));
        // Links that stay inside work.
        assert_eq!(jail.resolve("/in-link/a.csv", Follow::Yes).unwrap(), jail.root().join("in-link/a.csv"));
        assert_eq!(jail.resolve("/in-link", Follow::Yes).unwrap(), jail.root().join("in-link"));
    }
}
