//! Making local files durable: the write-behind hint, and fsyncs of files and folders that
//! the threads asking at the same time share.
//!
//! An fsync is the most expensive thing wharf does per small file on a local disk (on
//! ext4, each one of a freshly written file allocates its blocks and commits the journal).
//! With many files in flight, the calls that arrive while one is running are served
//! together by the next: [`sync_file`] starts the write-out of every queued file first and
//! then fsyncs them one by one, so the first fsync's journal commit carries the others'
//! allocations and theirs have little left to do; [`sync_dir`] fsyncs a folder once for
//! every change made in it before the fsync started. Neither ever returns before the
//! caller's own file or change is on disk, so the crash-safety arguments built on them are
//! unchanged; only the number of journal commits drops.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use crate::sync::lock;

/// Asks the kernel to start writing the file's dirty pages to disk, without waiting: the
/// disk works while the program goes on, so a later fsync has little left to do. Only a
/// hint: errors surface at the fsync.
pub fn start_writeback(file: &File) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the lifetime of `file`; offset 0 with length 0
        // means the whole file; SYNC_FILE_RANGE_WRITE only starts write-out.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// fsyncs the file at `path` (data and metadata), together with the files other threads
/// asked for meanwhile. Blocking; returns once this file is on disk, or its fsync's error.
pub fn sync_file(path: &Path) -> io::Result<()> {
    FILES.sync(File::open(path)?)
}

/// [`sync_file`] for a file already open (for writing, say).
pub fn sync_open(file: File) -> io::Result<()> {
    FILES.sync(file)
}

/// Creates `path` as a new file, making its folder first when missing. A file already there
/// (left by an earlier attempt) is removed, never truncated: it may be a hard link to a
/// source file. The folder and a leftover are dealt with only when the first try says so
/// (two system calls fewer per file in the usual case).
pub fn create_fresh(path: &Path) -> io::Result<File> {
    match File::create_new(path) {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            File::create_new(path)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            File::create_new(path)
        }
        Err(e) => Err(e),
    }
}

/// Whether `e` says the file system is full (or the user's quota used up): no write there
/// succeeds until space is freed, so trying again at once is pointless.
pub fn no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// The files waiting for an fsync, and the one thread doing them.
#[derive(Default)]
struct FileSyncs {
    queue: Mutex<Queue>,
    /// Held by the thread fsyncing a batch.
    leader: Mutex<()>,
}

#[derive(Default)]
struct Queue {
    /// The last ticket handed out.
    issued: u64,
    /// Files waiting, with their tickets (increasing).
    waiting: Vec<(u64, File)>,
    /// Every ticket up to this one has been through an fsync.
    synced: u64,
    /// Tickets whose fsync failed, with the error, until their caller takes it.
    failed: HashMap<u64, io::Error>,
}

static FILES: LazyLock<FileSyncs> = LazyLock::new(FileSyncs::default);

impl FileSyncs {
    fn sync(&self, file: File) -> io::Result<()> {
        let ticket = {
            let mut q = lock(&self.queue);
            q.issued += 1;
            let t = q.issued;
            q.waiting.push((t, file));
            t
        };
        let _leader = lock(&self.leader);
        // Batches are taken whole and in ticket order, one leader at a time: once `synced`
        // reaches this ticket, the batch that held it is done.
        let batch = {
            let mut q = lock(&self.queue);
            if q.synced >= ticket {
                return q.failed.remove(&ticket).map_or(Ok(()), Err);
            }
            std::mem::take(&mut q.waiting)
        };
        if batch.len() > 1 {
            for (_, f) in &batch {
                start_writeback(f);
            }
        }
        let results: Vec<(u64, io::Result<()>)> = batch.iter().map(|(t, f)| (*t, f.sync_all())).collect();
        let mut q = lock(&self.queue);
        for (t, r) in results {
            q.synced = q.synced.max(t);
            if let Err(e) = r {
                q.failed.insert(t, e);
            }
        }
        q.failed.remove(&ticket).map_or(Ok(()), Err)
    }
}

/// fsyncs a directory so a rename or unlink in it survives a power cut. Best effort.
///
/// Calls for one folder from several threads at once share fsyncs (a group commit of the
/// folder): each call takes a ticket after its change, and returns without an fsync of its own
/// when one that started after its ticket has finished. With many files in flight renamed
/// into one folder, that is one fsync per burst instead of one per file.
pub fn sync_dir(dir: Option<&Path>) {
    let Some(d) = dir else { return };
    let folder = {
        let mut folders = lock(&FOLDERS);
        Arc::clone(folders.entry(d.to_path_buf()).or_default())
    };
    let ticket = folder.requested.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut synced = lock(&folder.synced);
        if *synced < ticket {
            // Every ticket up to here was taken after its change: this fsync covers them all.
            let upto = folder.requested.load(Ordering::SeqCst);
            if let Ok(f) = File::open(d) {
                let _ = f.sync_all();
            }
            *synced = upto;
        }
    }
    let mut folders = lock(&FOLDERS);
    // Only the map and this call hold it (a new holder needs the map's lock): forget it.
    if Arc::strong_count(&folder) == 2 {
        folders.remove(d);
    }
}

/// The folders being fsynced right now, for [`sync_dir`].
static FOLDERS: LazyLock<Mutex<HashMap<PathBuf, Arc<FolderSync>>>> = LazyLock::new(Default::default);

#[derive(Default)]
struct FolderSync {
    /// Tickets handed out.
    requested: AtomicU64,
    /// Every ticket up to this one is covered by a finished fsync.
    synced: Mutex<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_syncs_from_many_threads_all_return_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..16)
            .map(|i| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    std::fs::write(d.join(format!("f{i}")), b"x").unwrap();
                    sync_dir(Some(&d));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(!FOLDERS.lock().unwrap().contains_key(dir.path()));
    }

    #[test]
    fn file_syncs_from_many_threads_each_return_their_own_result() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..32)
            .map(|i| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || {
                    let p = d.join(format!("f{i}"));
                    if i % 5 == 0 {
                        // Never written: its own error, nobody else's.
                        return sync_file(&p).is_err();
                    }
                    std::fs::write(&p, vec![i as u8; 4096]).unwrap();
                    sync_file(&p).is_ok()
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap());
        }
    }
}
