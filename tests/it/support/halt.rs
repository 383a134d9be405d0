//! Running `wharf` up to a test halt point (`WHARF_TEST_HALT_AT`, see `src/engine/halt.rs`),
//! reading its peak memory there, and killing it with SIGKILL — for crash-recovery and
//! memory-bound tests.

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `cmd` (a `wharf run …`) halting at `point`, waits up to `timeout` for it to get
/// there, reads its peak RSS and SIGKILLs it. Returns the peak RSS in KiB. Panics if the
/// process exits first or never gets there (with its stderr).
///
/// The peak is the process's own VmHWM: wait4's ru_maxrss would include this test
/// process's memory from before exec.
pub fn run_and_kill_at(cmd: Command, point: &str, timeout: Duration) -> u64 {
    let halted = run_until(cmd, point, timeout);
    let peak = vm_hwm_kib(halted.0.id());
    drop(halted);
    peak
}

/// A `wharf` process standing still at a halt point; SIGKILLed when dropped.
pub struct Halted(pub Child);

impl Drop for Halted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` halting at `point` and returns once it stands there (to look at the world
/// mid-run), panicking if it exits first or never gets there.
pub fn run_until(mut cmd: Command, point: &str, timeout: Duration) -> Halted {
    let child = cmd.env("WHARF_TEST_HALT_AT", point).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawn wharf");
    let mut halted = Halted(child);
    let stderr = halted.0.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let stop = line.contains("halted at");
            let _ = tx.send(line);
            if stop {
                break;
            }
        }
    });
    let deadline = Instant::now() + timeout;
    let mut log = String::new();
    let want = format!("halted at {point}");
    loop {
        while let Ok(line) = rx.try_recv() {
            log.push_str(&line);
            log.push('\n');
        }
        if log.contains(&want) {
            return halted;
        }
        if let Some(st) = halted.0.try_wait().expect("wait for wharf") {
            panic!("wharf exited ({st}) before reaching halt point {point}: {log}");
        }
        assert!(Instant::now() < deadline, "never reached halt point {point}: {log}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The VmHWM (peak resident set of the current program image) of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/PID/status");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmHWM value")
}
