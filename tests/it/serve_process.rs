//! `wharf serve` as a real process beside a real OpenSSH sshd: SIGTERM in the middle of a
//! large download, then a restart that finishes the file exactly once; and the CLI working
//! beside the daemon (`status`, `trigger`, `runs`, `files` read the ledger the daemon holds;
//! `run` is refused with a hint); and a daemon polling every second for a while, its open
//! files, memory and log.

use crate::support;
use support::text;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::sshd::Sshd;

const SIZE: u64 = 384 << 20;

fn wharf(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf")).arg("--state-dir").arg(state).args(args).output().expect("run wharf")
}

/// A `wharf serve` process, SIGKILLed if the test ends while it lives.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Daemon {
    fn start(dir: &Path) -> Daemon {
        let state = dir.join("state");
        let log = std::fs::File::create(dir.join(format!("serve-{}.log", Instant::now().elapsed().as_nanos()))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--state-dir")
            .arg(&state)
            .args(["serve", "--flows"])
            .arg(dir.join("flows"))
            .arg("--config")
            .arg(dir.join("serve.yaml"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn wharf serve");
        let d = Daemon(child);
        wait_for(Duration::from_secs(30), "the daemon's discovery file", || state.join("serve.json").exists());
        d
    }

    /// SIGTERM, then the exit status (within `limit`).
    fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        // SAFETY: kill(2) on a child we own; no memory is shared.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(st) = self.0.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "wharf serve did not stop within {limit:?} of SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics after `limit`.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The body of a plain HTTP/1.0 GET to 127.0.0.1:`port`.
fn http_get(port: u16, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the control port");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(out)
}

/// The biggest file under `dir` (recursively), in bytes.
fn biggest(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .map(|e| {
            let p = e.path();
            if p.is_dir() { biggest(&p) } else { e.metadata().map(|m| m.len()).unwrap_or(0) }
        })
        .max()
        .unwrap_or(0)
}

/// `SIZE` bytes of a pseudo-random (incompressible) pattern.
fn write_big(path: &Path) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut first = Vec::new();
    for i in 0..(SIZE >> 20) {
        for b in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        if i == 0 {
            first = chunk.clone();
        }
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    first
}

fn setup(sshd: &Sshd, port: u16) -> (support::TempDir, PathBuf) {
    let dir = support::tempdir();
    let d = dir.path().to_path_buf();
    for sub in ["flows", "dst"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::create_dir_all(sshd.data_dir().join("in")).unwrap();
    let flow = format!(
        "name: big\nendpoints:\n  partner:\n{}  local: {{ type: local, root: {} }}\nsource: {{ endpoint: partner, path: /in, include: ['*.bin'] }}\nsinks: [ {{ endpoint: local, path: / }} ]\nafter: {{ success: {{ move_to: /in/processed }} }}\nschedule: {{ cron: \"0 0 1 1 *\" }}\n",
        sshd.endpoint_yaml(4),
        d.join("dst").display()
    );
    std::fs::write(d.join("flows/big.yaml"), flow).unwrap();
    // No grace: SIGTERM cuts the transfer off at once, the hardest case for a resume. No
    // rescans: only SIGHUP reloads the flows.
    std::fs::write(d.join("serve.yaml"), format!("shutdown_grace: 0s\nrescan: 1h\nlisten: 127.0.0.1:{port}\n")).unwrap();
    (dir, d)
}

#[test]
fn sigterm_mid_transfer_then_a_restart_delivers_the_file_exactly_once() {
    let Some(sshd) = Sshd::start() else { return };
    let port = support::free_port();
    let (_tmp, d) = setup(&sshd, port);
    let state = d.join("state");
    let first_mib = write_big(&sshd.data_dir().join("in/big.bin"));
    sshd.give_to_user(&sshd.data_dir().join("in"));

    let daemon = Daemon::start(&d);
    let t = wharf(&state, &["trigger", "big"]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t));
    wait_for(Duration::from_secs(60), "the download to be under way", || biggest(&state.join("staging")) > 16 << 20);
    let st = daemon.terminate(Duration::from_secs(20));
    assert!(st.success(), "clean exit on SIGTERM: {st:?}");
    assert!(!state.join("wharf.sock").exists() && !state.join("serve.json").exists(), "control files removed");
    let staged = biggest(&state.join("staging"));
    assert!(staged < SIZE, "cut off mid-way ({staged} of {SIZE} bytes staged)");
    assert!(!d.join("dst/big.bin").exists(), "nothing delivered yet");

    // Without a daemon the CLI opens the ledger itself; the cut-off run is already closed.
    let files = wharf(&state, &["files", "big"]);
    assert_eq!(files.status.code(), Some(0), "{}", text(&files));
    assert!(text(&files).contains("in/big.bin"), "{}", text(&files));
    let runs = wharf(&state, &["runs", "big", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&runs)));
    assert_eq!(runs[0]["status"], "aborted", "closed at shutdown, not left running: {runs}");
    assert!(runs[0]["error"].as_str().unwrap_or("").contains("cut off"), "{runs}");

    let daemon = Daemon::start(&d);
    // Beside the daemon: read commands work, `run` is refused with the way to go.
    let runs = wharf(&state, &["runs", "big"]);
    assert_eq!(runs.status.code(), Some(0), "{}", text(&runs));
    let flow_file = d.join("flows/big.yaml");
    let run = wharf(&state, &["run", flow_file.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run));
    assert!(text(&run).contains("wharf trigger big"), "{}", text(&run));
    let status = wharf(&state, &["status"]);
    assert!(text(&status).contains("big"), "{}", text(&status));

    let t = wharf(&state, &["trigger", "big"]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t));
    wait_for(Duration::from_secs(120), "the file to be delivered and moved", || sshd.data_dir().join("in/processed/big.bin").exists());
    // The run is recorded as finished (read beside the daemon).
    let runs_json = || {
        let o = wharf(&state, &["runs", "big", "--json"]);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    };
    wait_for(Duration::from_secs(30), "the second run to be recorded", || {
        runs_json().as_array().unwrap().iter().all(|r| r["status"] != "running")
    });

    // Metrics over loopback HTTP count what the daemon did (once its loop has taken the run's
    // end, a moment after the ledger recorded it).
    wait_for(Duration::from_secs(30), "the run to be counted", || http_get(port, "/metrics").contains("wharf_runs_total{flow=\"big\""));
    let metrics = http_get(port, "/metrics");
    for want in ["wharf_runs_total{flow=\"big\",status=\"ok\"} 1", "wharf_files_total{flow=\"big\",outcome=\"delivered\"} 1", "wharf_up 1"]
    {
        assert!(metrics.contains(want), "{want} not in\n{metrics}");
    }
    assert!(metrics.contains(&format!("wharf_bytes_total{{flow=\"big\"}} {SIZE}")), "{metrics}");

    // SIGHUP reloads an edited flow (rescans are off): the status shows the new schedule.
    let flow_text = std::fs::read_to_string(&flow_file).unwrap().replace("0 0 1 1 *", "0 0 2 1 *");
    std::fs::write(&flow_file, flow_text).unwrap();
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGHUP) };
    wait_for(Duration::from_secs(20), "the reloaded schedule", || text(&wharf(&state, &["status", "--json"])).contains("0 0 2 1 *"));
    assert!(daemon.terminate(Duration::from_secs(20)).success());

    let names: Vec<String> =
        std::fs::read_dir(d.join("dst")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["big.bin"], "exactly one copy, no temporary left");
    let meta = std::fs::metadata(d.join("dst/big.bin")).unwrap();
    assert_eq!(meta.len(), SIZE);
    let mut head = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open(d.join("dst/big.bin")).unwrap(), &mut head).unwrap();
    assert!(head == first_mib, "the delivered file starts with the source's bytes");
    let json = runs_json();
    let delivered: u64 = json.as_array().unwrap().iter().map(|r| r["counts"]["delivered"].as_u64().unwrap_or(0)).sum();
    assert_eq!(delivered, 1, "delivered once over both runs: {json}");
    let first = &json.as_array().unwrap()[1];
    assert_eq!(first["status"], "aborted", "the cut-off run stays aborted: {json}");
}

/// Whether the process `pid` is gone (or a zombie waiting for its parent).
fn process_gone(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| s.contains(") Z "))
}

/// Starts a daemon in `d` serving the flow `export`, whose `source.command` is the shell
/// script `script`, and triggers a run of it.
fn start_export(d: &Path, script: &str) -> Daemon {
    for sub in ["flows", "src/out", "dst"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let flow = format!(
        "name: export\nendpoints:\n  a: {{ type: local, root: {root}/src }}\n  b: {{ type: local, root: {root}/dst }}\nsource:\n  endpoint: a\n  path: /out\n  include: ['*.csv']\n  command:\n    run: [sh, -c, '{script}']\n    name: 'out-{{{{run}}}}.csv'\n    timeout: 10m\nsinks: [ {{ endpoint: b, path: / }} ]\n",
        root = d.display(),
    );
    std::fs::write(d.join("flows/export.yaml"), flow).unwrap();
    std::fs::write(d.join("serve.yaml"), "shutdown_grace: 1m\nrescan: 1h\n").unwrap();
    let daemon = Daemon::start(d);
    let t = wharf(&d.join("state"), &["trigger", "export"]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t));
    daemon
}

/// A second SIGTERM stops the daemon at once (exit 3), and the programs it started go with
/// it. Before, a `source.command` export (and what it started in the background) lived on
/// in its own process group, writing on while the next start ran the export again.
#[test]
fn a_second_sigterm_stops_at_once_with_the_programs_the_daemon_started() {
    let dir = support::tempdir();
    let d = dir.path();
    let pids = d.join("pids");
    let daemon = start_export(d, &format!("sleep 300 & echo $! >> {pids}; echo $$ >> {pids}; wait", pids = pids.display()));
    let read_pids = || std::fs::read_to_string(&pids).unwrap_or_default().lines().map(str::to_string).collect::<Vec<_>>();
    wait_for(Duration::from_secs(20), "the export to start", || read_pids().len() == 2);

    let mut child = daemon;
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    wait_for(Duration::from_secs(10), "the graceful stop to begin", || {
        std::fs::read_dir(d).unwrap().filter_map(Result::ok).any(|e| {
            e.file_name().to_string_lossy().starts_with("serve-")
                && std::fs::read_to_string(e.path()).unwrap_or_default().contains("SIGTERM: shutting down")
        })
    });
    // SAFETY: as above.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "a second SIGTERM stops the daemon at once");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3), "stopped at once: {status:?}");
    for pid in read_pids() {
        wait_for(Duration::from_secs(5), &format!("the export's process {pid} to be killed"), || process_gone(&pid));
    }
}

/// `kill -9` of the daemon runs none of its clean-up; the export it was running dies with it
/// all the same (the parent-death signal), though the run's thread that started it is not
/// the daemon's main thread. Before, it ran on, writing into the source folder.
#[test]
fn kill_9_of_the_daemon_takes_the_export_it_was_running() {
    let dir = support::tempdir();
    let d = dir.path();
    let pids = d.join("pids");
    // `exec`: the long-running program is the one the daemon started.
    let mut daemon = start_export(d, &format!("echo $$ >> {}; exec sleep 300", pids.display()));
    let pid = || std::fs::read_to_string(&pids).unwrap_or_default().trim().to_string();
    wait_for(Duration::from_secs(20), "the export to start", || !pid().is_empty());
    assert!(!process_gone(&pid()));
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(daemon.0.id() as i32, libc::SIGKILL) };
    let _ = daemon.0.wait();
    wait_for(Duration::from_secs(5), &format!("the export's process {} to die with the daemon", pid()), || process_gone(&pid()));
}

/// How many file descriptors `pid` has open between runs (the fewest seen in 1.5 s: a run
/// holds a few while it goes), and its resident memory in KiB.
fn fds_and_rss(pid: u32) -> (usize, u64) {
    let mut fds = usize::MAX;
    for _ in 0..30 {
        fds = fds.min(std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count());
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches(" kB").parse().ok()).unwrap();
    (fds, rss)
}

/// A daemon running a flow every second, files arriving then none: its open files stay as
/// they were (nothing leaks per run: connections, staging files, ledger handles), its memory
/// does not climb with the runs, and the idle runs write nothing to its log.
#[test]
fn a_daemon_polling_every_second_leaks_no_descriptors_and_logs_nothing_when_idle() {
    let dir = support::tempdir();
    let d = dir.path();
    for sub in ["flows", "src/in", "dst"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    let flow = format!(
        "name: tight\nschedule: {{ every: 1s }}\nendpoints:\n  a: {{ type: local, root: {root}/src }}\n  b: {{ type: local, root: {root}/dst }}\nsource:\n  endpoint: a\n  path: /in\n  include: ['*.csv']\nsinks: [ {{ endpoint: b, path: / }} ]\nafter: {{ success: delete }}\n",
        root = d.display()
    );
    std::fs::write(d.join("flows/tight.yaml"), flow).unwrap();
    std::fs::write(d.join("serve.yaml"), "rescan: 1h\n").unwrap();
    let daemon = Daemon::start(d);
    let pid = daemon.0.id();
    let feed = |from: usize, to: usize| {
        for i in from..to {
            std::fs::write(d.join(format!("src/in/.f{i}")), format!("{i}\n")).unwrap();
            std::fs::rename(d.join(format!("src/in/.f{i}")), d.join(format!("src/in/f{i}.csv"))).unwrap();
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    let delivered = |n: usize| move || std::fs::read_dir(d.join("dst")).unwrap().count() == n;
    feed(0, 12);
    wait_for(Duration::from_secs(20), "the first files delivered", delivered(12));
    let (fds, rss) = fds_and_rss(pid);
    feed(12, 60);
    wait_for(Duration::from_secs(20), "every file delivered", delivered(60));
    let (fds_after, rss_after) = fds_and_rss(pid);
    assert_eq!(fds_after, fds, "open files after 48 more files and as many runs");
    assert!(rss_after < rss + 8 * 1024, "memory: {rss} KiB, then {rss_after} KiB");

    let log = || {
        let mut text = String::new();
        for e in std::fs::read_dir(d).unwrap().filter_map(Result::ok) {
            if e.file_name().to_string_lossy().starts_with("serve-") {
                text += &std::fs::read_to_string(e.path()).unwrap();
            }
        }
        text
    };
    assert!(log().contains("Run finished.") && log().contains("Delivered."), "{}", log());
    std::thread::sleep(Duration::from_secs(1));
    let lines = log().lines().count();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(log().lines().count(), lines, "idle runs log nothing: {}", log());
    assert_eq!(fds_and_rss(pid).0, fds);
}

/// SIGTERM during a run in which a file already failed for good (its name on the sink
/// taken), with no shutdown grace: the stop cuts the run off, closes it as aborted (with its
/// failed file counted) and raises its one `failed` event, naming the file and saying the run
/// was interrupted before its end (`engine::close_interrupted`), as the run's own end would
/// have. The next start raises no second one.
#[test]
fn sigterm_after_a_file_failed_for_good_closes_the_run_and_raises_its_failed_event() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let d = dir.path().to_path_buf();
    for sub in ["flows", "dst"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::create_dir_all(sshd.data_dir().join("in")).unwrap();
    // `a.csv` fails for good (the sink has one, `if_exists: fail`); `big.bin` is still
    // downloading when the stop comes.
    std::fs::write(sshd.data_dir().join("in/a.csv"), "a,1\n").unwrap();
    std::fs::write(d.join("dst/a.csv"), "someone else's\n").unwrap();
    write_big(&sshd.data_dir().join("in/big.bin"));
    sshd.give_to_user(&sshd.data_dir().join("in"));
    let flow = format!(
        "name: cut\nendpoints:\n  partner:\n{}  local: {{ type: local, root: {} }}\nsource: {{ endpoint: partner, path: /in, include: ['*.bin', '*.csv'] }}\nsinks: [ {{ endpoint: local, path: /, if_exists: fail }} ]\n",
        sshd.endpoint_yaml(4),
        d.join("dst").display()
    );
    std::fs::write(d.join("flows/cut.yaml"), flow).unwrap();
    std::fs::write(d.join("serve.yaml"), "shutdown_grace: 0s\nrescan: 1h\n").unwrap();
    let state = d.join("state");
    let json = |args: &[&str]| {
        let o = wharf(&state, args);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&o)))
    };

    let daemon = Daemon::start(&d);
    let t = wharf(&state, &["trigger", "cut"]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t));
    wait_for(Duration::from_secs(60), "a.csv to fail for good", || {
        json(&["files", "cut", "--json"]).as_array().is_some_and(|f| f.iter().any(|f| f["path"] == "in/a.csv" && f["state"] == "failed"))
    });
    wait_for(Duration::from_secs(60), "the download to be under way", || biggest(&state.join("staging")) > 16 << 20);
    assert!(json(&["events", "cut", "--json"]).as_array().unwrap().is_empty(), "nothing raised before the run's end");
    let st = daemon.terminate(Duration::from_secs(20));
    assert!(st.success(), "clean exit on SIGTERM: {st:?}");
    assert!(!d.join("dst/big.bin").exists(), "cut off before big.bin was delivered");

    let runs = json(&["runs", "cut", "--json"]);
    assert_eq!(runs.as_array().map(Vec::len), Some(1), "{runs:#}");
    let run = &runs[0];
    assert_eq!(run["status"], "aborted", "closed at the stop: {runs:#}");
    assert!(run["error"].as_str().unwrap_or("").contains("cut off"), "{runs:#}");
    assert_eq!(run["counts"]["failed"], 1, "its failed file counted: {runs:#}");
    let failed = |events: &serde_json::Value| -> Vec<serde_json::Value> {
        events.as_array().unwrap().iter().filter(|e| e["kind"] == "failed").cloned().collect()
    };
    let events = json(&["events", "cut", "--json"]);
    let raised = failed(&events);
    assert_eq!(raised.len(), 1, "one `failed` event: {events:#}");
    assert_eq!(raised[0]["run"], run["id"], "{events:#}");
    let detail = raised[0]["detail"].as_str().unwrap();
    assert!(detail.contains("(interrupted before its end): /in/a.csv failed: ") && detail.contains("already exists"), "{events:#}");

    // A new start (it would close a run left going) raises nothing more.
    let daemon = Daemon::start(&d);
    assert!(daemon.terminate(Duration::from_secs(20)).success());
    assert_eq!(failed(&json(&["events", "cut", "--json"])).len(), 1, "raised once");
}

/// SIGTERM while a `command` content step runs (`sleep 600`): once `shutdown_grace` is over
/// the run is cut off and its program killed with its group, so the daemon stops at once and
/// leaves nothing running. The file is neither quarantined nor failed: the next run (here
/// with a program that ends) delivers it, once, and the state folder keeps no step output.
#[test]
fn a_stop_cuts_a_command_step_off_and_the_next_run_redoes_the_file() {
    let dir = support::tempdir();
    let d = dir.path();
    for sub in ["flows", "src/in", "dst"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("src/in/a.csv"), "id\n1\n").unwrap();
    let pids = d.join("pids");
    let flow = |script: &str| {
        format!(
            "name: slow\nendpoints:\n  a: {{ type: local, root: {root}/src }}\n  b: {{ type: local, root: {root}/dst }}\n\
             source: {{ endpoint: a, path: /in }}\nsinks: [ {{ endpoint: b, path: / }} ]\n\
             quarantine: {{ endpoint: b, path: /q }}\nsteps:\n  - command: {{ run: [sh, -c, '{script}'], timeout: 1h }}\n",
            root = d.display(),
        )
    };
    std::fs::write(d.join("flows/slow.yaml"), flow(&format!("sleep 600 & echo $! >> {p}; echo $$ >> {p}; wait", p = pids.display())))
        .unwrap();
    std::fs::write(d.join("serve.yaml"), "shutdown_grace: 1s\nrescan: 1h\n").unwrap();
    let state = d.join("state");
    let daemon = Daemon::start(d);
    let t = wharf(&state, &["trigger", "slow"]);
    assert_eq!(t.status.code(), Some(0), "{}", text(&t));
    let read_pids = || std::fs::read_to_string(&pids).unwrap_or_default().lines().map(str::to_string).collect::<Vec<_>>();
    wait_for(Duration::from_secs(20), "the step's program to start", || read_pids().len() == 2);
    let started = Instant::now();
    let st = daemon.terminate(Duration::from_secs(15));
    assert!(st.success(), "clean exit on SIGTERM: {st:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped promptly: {:?}", started.elapsed());
    for pid in read_pids() {
        wait_for(Duration::from_secs(5), &format!("the step's process {pid} to be killed"), || process_gone(&pid));
    }
    assert!(d.join("src/in/a.csv").exists() && !d.join("dst/q").exists() && !d.join("dst/a.csv").exists());
    let log: String = std::fs::read_dir(d)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("serve-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!log.contains("panic"), "{log}");

    std::fs::write(d.join("flows/slow.yaml"), flow("cat")).unwrap();
    let run = wharf(&state, &["run", "--json", d.join("flows/slow.yaml").to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let r: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&run)));
    assert_eq!(r["counts"]["delivered"], 1, "{r:#}");
    assert_eq!(std::fs::read_to_string(d.join("dst/a.csv")).unwrap(), "id\n1\n");
    let left: Vec<_> = std::fs::read_dir(state.join("staging"))
        .into_iter()
        .flatten()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).into_iter().flatten())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "staging left: {left:?}");
}
