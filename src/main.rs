//! The `wharf` binary: everything lives in the library's `cli` module, except the process-wide
//! allocator settings below.

fn main() -> std::process::ExitCode {
    tune_malloc();
    wharf::cli::run()
}

/// Keeps glibc's malloc from giving transfer buffers back to the kernel between files.
///
/// The SSH and SFTP layers allocate a buffer of up to 256 KiB for every packet, on several
/// threads. By default glibc serves such sizes from fresh `mmap`s or shrinks the threads'
/// heaps with `madvise(MADV_DONTNEED)` as soon as they are freed, so the next packet's buffer
/// faults in and zeroes new pages: for a 1 GiB SFTP download, 519 `madvise` calls, 41,000 to
/// 83,000 minor page faults (9,000 with this) and about 15 % of the client's CPU; it took
/// 3.4 s instead of 2.5 s. Freed memory is kept for reuse instead (up to 16 MiB per heap),
/// in at most two heaps (glibc's default is eight per core, and what each of them
/// kept added up: 85-92 MiB peak RSS for an SFTP push of 200 × 1 MiB instead of 53). Only
/// for the binary: a program embedding the library chooses its own allocator.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any other thread exists; mallopt only
    // changes three of malloc's tunables.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 16 * 1024 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
