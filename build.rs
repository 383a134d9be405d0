//! Sets `WHARF_VERSION`, the version wharf reports as its own (`wharf::VERSION`): the
//! package version, and when built from a git checkout of wharf the commit and its date, with
//! `-dirty` when what is compiled differs from that commit:
//! `0.1.0 (9edae47-dirty, 2026-12-07)`. Without git, or outside a checkout (a crate tarball,
//! `cargo package`'s copy under `target/`), just the package version: nothing here ever fails
//! the build.
//!
//! It runs again when HEAD or the branch it points to moves (a commit, a checkout) and when a
//! compiled input changes ([`INPUTS`]: so `-dirty` is right), never on a `cargo build` with
//! nothing changed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What goes into the program besides the dependencies: a change to them is what `-dirty`
/// reports, and what makes this script run again. A file `include_str!`-ed from outside these
/// belongs here (a test says which: `src/build_inputs.rs`).
const INPUTS: &[&str] = &["src", "build.rs", "Cargo.toml", "Cargo.lock", "docs/examples"];

fn main() {
    let package = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Only what exists: cargo runs a script again on every build for a watched path missing
    // (a crate tarball without one of them, say).
    for input in INPUTS.iter().filter(|i| dir.join(i).exists()) {
        println!("cargo:rerun-if-changed={input}");
    }
    let version = match checkout(&dir) {
        Some(commit) => format!("{package} ({commit})"),
        None => package,
    };
    println!("cargo:rustc-env=WHARF_VERSION={version}");
}

/// `<short commit>[-dirty], <commit date>` of the checkout `dir` is the root of, and the git
/// files to watch for a new commit printed; `None` when it is none (or git cannot say).
fn checkout(dir: &Path) -> Option<String> {
    // A checkout of something else holding this folder (a home folder kept in git, with the
    // crate unpacked in it) is not wharf's: its Cargo.toml must be tracked there, at the root.
    let top = git(dir, &["rev-parse", "--show-toplevel"])?;
    if std::fs::canonicalize(&top).ok()? != std::fs::canonicalize(dir).ok()? {
        return None;
    }
    git(dir, &["ls-files", "--error-unmatch", "--", "Cargo.toml"])?;
    // HEAD, its log (written by every commit, checkout and reset, even of a branch packed
    // away: a commit makes its loose ref anew) and the branch HEAD names: its loose ref, or
    // packed-refs. In a worktree HEAD and its log are its own and the branches the main
    // checkout's: `--git-path` knows where each is. Only files that exist (see `main`).
    let mut watched = ["HEAD", "logs/HEAD", "packed-refs"].map(String::from).to_vec();
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(dir, &["rev-parse", "--git-path", &name]).map(|p| dir.join(p))
            && path.is_file()
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    let commit = git(dir, &["-c", "log.showSignature=false", "log", "-1", "--format=%h, %cd", "--date=short", "HEAD"])?;
    // Untracked files count (a new module not added yet is compiled all the same).
    let mut status = vec!["status", "--porcelain", "--"];
    status.extend(INPUTS);
    let dirty = !git(dir, &status)?.is_empty();
    Some(match commit.split_once(", ") {
        Some((hash, date)) if dirty => format!("{hash}-dirty, {date}"),
        _ => commit,
    })
}

/// What `git args` prints in `dir`, trimmed; `None` when git is missing or fails.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        // Not the repository of a git hook that runs the build (a commit hook's GIT_DIR and
        // index), and no index refresh written by `status`.
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
