//! A small tmpfs mounted over a folder for one test: a file system that really fills up
//! (a full state folder, a full server disk), or is read-only. Needs root and a kernel that lets this process
//! mount; elsewhere [`Tmpfs::mount`] prints `SKIP:` and gives `None` — even under
//! `WHARF_REQUIRE_SERVERS=1`: a container without `CAP_SYS_ADMIN` can run the servers but not
//! mount, and that is no reason to fail the suite.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a folder of its own (made if missing, world-writable, so that a
/// server's login can write to it), unmounted on drop.
pub struct Tmpfs {
    at: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount` syntax: `3m`) at `at`; `None` (after `SKIP:`) when
    /// this machine cannot.
    pub fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        match Self::try_mount(at, size) {
            Ok(t) => Some(t),
            Err(why) => {
                eprintln!("SKIP: {why}");
                None
            }
        }
    }

    fn try_mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("a full file system is tested on a tmpfs, which needs root to mount".into());
        }
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0777"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs: {}", super::text(&out)));
        }
        Ok(Tmpfs { at: at.to_path_buf() })
    }

    /// Gives it another size: more room, as freeing space would.
    pub fn resize(&self, size: &str) {
        self.remount(&format!("size={size}"));
    }

    /// Makes it read-only (`true`: writes fail with `EROFS`) or writable again.
    pub fn read_only(&self, ro: bool) {
        self.remount(if ro { "ro" } else { "rw" });
    }

    fn remount(&self, options: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,{options}")]).arg(&self.at).output().unwrap();
        assert!(out.status.success(), "{}", super::text(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a server's session (or a wharf child) may still hold a file open there.
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}
