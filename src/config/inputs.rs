//! The files a flow is built from besides its flow file: mapping scripts and their look-up
//! tables, record schemas, templates, `${file:…}` secrets, CA files. A flow's load reads
//! every such file through this module, so that whoever asked for the load can learn which
//! files the built flow depends on ([`recording`]) — `wharf serve` reloads a flow when any
//! of them changes, not only its YAML (a rotated password file, a corrected script).
//!
//! A file is noted whether or not it could be read: a flow refused because its script is
//! missing loads as soon as the script appears.
//!
//! Invariant: a load runs synchronously on one thread (nothing in `config` or in the steps'
//! building spawns or awaits), so the thread's recorder sees every file of that load and
//! nothing else.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

thread_local! {
    /// The files read since [`recording`] started on this thread (`None`: nobody asked).
    static READ: RefCell<Option<BTreeSet<PathBuf>>> = const { RefCell::new(None) };
}

/// Runs `load` and returns, with its result, every file it read through this module (also
/// noted for a recording around this one).
pub fn recording<T>(load: impl FnOnce() -> T) -> (T, BTreeSet<PathBuf>) {
    let outer = READ.with(|r| r.replace(Some(BTreeSet::new())));
    let result = load();
    let read = READ.with(|r| r.replace(outer)).unwrap_or_default();
    read.iter().for_each(|path| note(path));
    (result, read)
}

fn note(path: &Path) {
    READ.with(|r| {
        if let Some(read) = r.borrow_mut().as_mut() {
            read.insert(path.to_path_buf());
        }
    });
}

/// [`std::fs::read_to_string`] of a file the flow is built from.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    note(path);
    std::fs::read_to_string(path)
}

/// [`read_to_string`] of a file of code (a mapping script, a record schema), without the
/// byte-order mark Windows editors save: left in, Rhai refused it as "Unexpected '\u{feff}'"
/// and the schema was "not JSON". (A header or whole-document template keeps its mark: it is
/// output, at the file's start; a row or footer template's is dropped: `steps::render`.)
pub fn read_code(path: &Path) -> io::Result<String> {
    let text = read_to_string(path)?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// [`read_to_string`] of a small file (a secret): a path that is not a regular file (a FIFO,
/// which would block the load until somebody writes to it; a device such as `/dev/zero`,
/// which never ends) or a file longer than `max` bytes is refused instead of read.
pub fn read_small_text(path: &Path, max: u64) -> io::Result<String> {
    use std::io::Read;
    note(path);
    // Looked at before it is opened: opening a FIFO for reading waits for a writer.
    if !std::fs::metadata(path)?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    let mut text = String::new();
    std::fs::File::open(path)?.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("longer than {max} bytes")));
    }
    Ok(text)
}

/// [`std::fs::read`] of a file the flow is built from.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    note(path);
    std::fs::read(path)
}

/// [`std::fs::File::open`] of a file the flow is built from (read as a stream).
pub fn open(path: &Path) -> io::Result<std::fs::File> {
    note(path);
    std::fs::File::open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_recording_load_notes_its_files_and_missing_ones_count() {
        let dir = tempfile::tempdir().unwrap();
        let here = dir.path().join("map.rhai");
        std::fs::write(&here, "x").unwrap();
        let missing = dir.path().join("schema.json");
        assert!(read_to_string(&here).is_ok(), "not recording: a plain read");
        let ((), noted) = recording(|| {
            let _ = read_to_string(&here);
            let (_, inner) = recording(|| read(&missing).is_err());
            assert_eq!(inner, BTreeSet::from([missing.clone()]), "a nested recording sees its own files");
        });
        assert_eq!(noted, BTreeSet::from([here, missing]), "and the outer one sees them too");
        let ((), noted) = recording(|| assert!(open(&dir.path().join("nope")).is_err()));
        assert_eq!(noted.len(), 1);
    }

    #[test]
    fn a_small_text_is_a_regular_file_of_at_most_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(read_small_text(&file, 7).unwrap(), "s3cret\n");
        assert_eq!(read_small_text(&file, 6).unwrap_err().to_string(), "longer than 6 bytes");
        // Were read without end (a device) or waited for a writer for ever (a FIFO).
        assert_eq!(read_small_text(Path::new("/dev/zero"), 64).unwrap_err().to_string(), "not a regular file");
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert_eq!(read_small_text(&fifo, 64).unwrap_err().to_string(), "not a regular file");
    }
}
