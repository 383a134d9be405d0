//! `source.max_files` end to end through the `wharf` binary, pulling from a real OpenSSH
//! sshd and a real vsftpd (explicit FTPS): a backlog is taken a few files per run, the
//! oldest first by the time the server lists, the rest left untouched and counted in the
//! run's report; `wharf plan` marks the files the cap leaves for later.

use crate::support;
use support::text;

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use support::partner::Partner;
use support::{TempDir, tempdir};

/// A partner's server with `/in`, and a local folder for the sink and the state.
struct World {
    partner: Partner,
    dir: TempDir,
}

impl World {
    fn new(partner: Option<Partner>) -> Option<World> {
        let w = World { partner: partner?, dir: tempdir() };
        fs::create_dir_all(w.partner.data_dir().join("in")).unwrap();
        fs::create_dir_all(w.dir.path().join("sink")).unwrap();
        w.partner.give_to_user(w.partner.data_dir());
        Some(w)
    }

    /// Puts `/in/NAME` on the server, modified `ago` before now (whole minutes apart: an FTP
    /// listing shows minutes).
    fn put(&self, name: &str, ago: Duration) {
        self.put_at(name, SystemTime::now() - ago);
    }

    /// Puts `/in/NAME` on the server, modified `at`.
    fn put_at(&self, name: &str, at: SystemTime) {
        let p = self.partner.data_dir().join("in").join(name);
        fs::write(&p, name).unwrap();
        fs::File::options().write(true).open(&p).unwrap().set_modified(at).unwrap();
        self.partner.give_to_user(&p);
    }

    /// partner /in/*.csv → local sink, `source.max_files: 2`, sources moved to `/in/done`.
    fn flow(&self) -> PathBuf {
        self.flow_with("")
    }

    /// The same, with `top` (top-level settings, each line ending in a line feed) added.
    fn flow_with(&self, top: &str) -> PathBuf {
        let yaml = format!(
            "name: backlog\n{top}endpoints:\n  partner:\n{ep}  archive:\n    type: local\n    root: {sink:?}\nsource:\n  endpoint: partner\n  path: /in\n  include: [\"*.csv\"]\n  max_files: 2\nsinks:\n  - endpoint: archive\n    path: /\nafter:\n  success: {{ move_to: /in/done }}\n",
            ep = self.partner.yaml(),
            sink = self.dir.path().join("sink").display().to_string(),
        );
        let p = self.dir.path().join("flow.yaml");
        fs::write(&p, yaml).unwrap();
        p
    }

    fn wharf(&self) -> std::process::Command {
        support::wharf(&self.dir.path().join("state"))
    }

    /// Puts a.csv … e.csv (`e.csv` the oldest), and runs the flow (one file at a time) until
    /// SIGKILLed once `d.csv` is delivered, its source not moved yet: of the two the run takes
    /// (e.csv and d.csv, the oldest), the first in listing order, the one file in flight.
    /// Returns the flow.
    fn killed_mid_backlog(&self) -> PathBuf {
        for (i, name) in ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"].iter().enumerate() {
            self.put(name, Duration::from_secs(3600 * (i as u64 + 1)));
        }
        let flow = self.flow_with("concurrency: 1\n");
        let mut run = self.wharf();
        run.arg("run").arg(&flow);
        drop(support::halt::run_until(run, "delivered", Duration::from_secs(60)));
        assert_eq!(self.sink_names(), ["d.csv"]);
        flow
    }

    fn sink_names(&self) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(self.dir.path().join("sink")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }
}

/// Five files, `max_files: 2`: three runs deliver 2, 2 and 1, the oldest first (by the time
/// the server lists, not by name); each run says how many it left; `wharf plan` marks them.
fn a_backlog_is_taken_max_files_at_a_time_oldest_first(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    // `e.csv` the oldest, `a.csv` the newest.
    for (i, name) in ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"].iter().enumerate() {
        w.put(name, Duration::from_secs(3600 * (i as u64 + 1)));
    }
    let flow = w.flow();

    let (code, plan) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
    assert_eq!(code, 0, "{plan}");
    let later: Vec<&str> = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["action"] == "wait" && f["why"] == "later: max_files 2 reached")
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(later, ["/in/a.csv", "/in/b.csv", "/in/c.csv"], "{plan:#}");

    let (code, r) = support::json_of(w.wharf().arg("run").arg("--json").arg(&flow));
    assert_eq!(code, 0, "{r:#}");
    assert_eq!((r["counts"]["seen"].as_u64(), r["counts"]["delivered"].as_u64()), (Some(5), Some(2)), "{r:#}");
    assert_eq!(r["later"], serde_json::json!({ "files": 3, "max_files": 2 }), "{r:#}");
    assert_eq!(r["files"].as_array().unwrap().len(), 2, "the files left are counted, not listed: {r:#}");
    assert_eq!(w.sink_names(), ["d.csv", "e.csv"]);

    let out = w.wharf().arg("run").arg(&flow).output().unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("1 left for the next run (max_files 2)"), "{t}");
    assert_eq!(w.sink_names(), ["b.csv", "c.csv", "d.csv", "e.csv"]);

    let (code, r) = support::json_of(w.wharf().arg("run").arg("--json").arg(&flow));
    assert_eq!((code, r["counts"]["delivered"].as_u64()), (0, Some(1)), "{r:#}");
    assert!(r.get("later").is_none(), "nothing left: {r:#}");
    assert_eq!(w.sink_names(), ["a.csv", "b.csv", "c.csv", "d.csv", "e.csv"]);
    let moved = fs::read_dir(w.partner.data_dir().join("in/done")).unwrap().count();
    assert_eq!(moved, 5, "every source moved once");
}

/// A run SIGKILLed mid-backlog (`d.csv`, one of the two oldest it took, delivered, its
/// source not moved yet): the next run takes it first, before files older than it that came
/// meanwhile, and still
/// starts at most `max_files` in all; `d.csv` is not delivered again; `wharf plan` says the
/// same files taken and left as the run then takes and leaves.
fn a_run_killed_mid_backlog_is_resumed_first_within_the_cap(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let flow = w.killed_mid_backlog();
    let delivered = fs::metadata(w.dir.path().join("sink/d.csv")).unwrap();
    // Two files older than everything, come while wharf was down: taken by mtime alone they
    // would take both places, and leave d.csv in flight.
    w.put("f.csv", Duration::from_secs(3600 * 10));
    w.put("g.csv", Duration::from_secs(3600 * 11));

    let (code, plan) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
    assert_eq!(code, 0, "{plan:#}");
    let files = plan["files"].as_array().unwrap();
    let later: Vec<&str> = files.iter().filter(|f| f["why"] == "later: max_files 2 reached").map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(later, ["/in/a.csv", "/in/b.csv", "/in/c.csv", "/in/e.csv", "/in/f.csv"], "{plan:#}");
    let taken: Vec<&str> = files.iter().filter(|f| f["action"] != "wait").map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(taken, ["/in/d.csv", "/in/g.csv"], "{plan:#}");

    let (code, r) = support::json_of(w.wharf().arg("run").arg("--json").arg(&flow));
    assert_eq!(code, 0, "{r:#}");
    let mut outcomes: Vec<(&str, &str)> =
        r["files"].as_array().unwrap().iter().map(|f| (f["path"].as_str().unwrap(), f["outcome"].as_str().unwrap())).collect();
    outcomes.sort();
    assert_eq!(outcomes, [("/in/d.csv", "delivered"), ("/in/g.csv", "delivered")], "{r:#}");
    assert_eq!(r["later"], serde_json::json!({ "files": 5, "max_files": 2 }), "{r:#}");
    assert_eq!(w.sink_names(), ["d.csv", "g.csv"]);
    let after = fs::metadata(w.dir.path().join("sink/d.csv")).unwrap();
    use std::os::unix::fs::MetadataExt as _;
    assert_eq!((after.ino(), after.mtime_nsec()), (delivered.ino(), delivered.mtime_nsec()), "d.csv not delivered again");
    let mut moved: Vec<String> = fs::read_dir(w.partner.data_dir().join("in/done"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    moved.sort();
    assert_eq!(moved, ["d.csv", "g.csv"]);
}

/// A run SIGKILLed mid-backlog (`d.csv` delivered, its source not moved yet), then the
/// partner removes `d.csv` from the server: the next run finishes it though it is no longer
/// listed, and it takes one of the `max_files` places first, as resumed work (was: finished
/// after two listed files, three started); `wharf plan` leaves the same files for later.
fn a_file_left_in_flight_and_no_longer_listed_takes_a_place_first(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let flow = w.killed_mid_backlog();
    fs::remove_file(w.partner.data_dir().join("in/d.csv")).unwrap();

    let (code, plan) = support::json_of(w.wharf().arg("plan").arg("--json").arg(&flow));
    assert_eq!(code, 0, "{plan:#}");
    let files = plan["files"].as_array().unwrap();
    let later: Vec<&str> = files.iter().filter(|f| f["why"] == "later: max_files 2 reached").map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(later, ["/in/a.csv", "/in/b.csv", "/in/c.csv"], "{plan:#}");

    let (code, r) = support::json_of(w.wharf().arg("run").arg("--json").arg(&flow));
    assert_eq!(code, 0, "{r:#}");
    let mut reported: Vec<&str> = r["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    reported.sort();
    assert_eq!(reported, ["/in/d.csv", "/in/e.csv"], "{r:#}");
    assert_eq!(r["later"], serde_json::json!({ "files": 3, "max_files": 2 }), "{r:#}");
    assert_eq!(w.sink_names(), ["d.csv", "e.csv"]);
}

/// Files modified within one minute, seconds apart, are taken oldest first by the second
/// (SFTP; FTP by `MLSD` on pure-ftpd, by `LIST` refined with `MDTM` on vsftpd: a `LIST` time
/// alone shows minutes), and of two at the same second the first by path: one a run
/// (`max_files: 1`), the order is c, d, b, a — by path, or by minute, it would be a, b, c, d.
fn files_within_a_minute_are_taken_by_the_second_then_by_path(partner: Option<Partner>) {
    let Some(w) = World::new(partner) else { return };
    let minute = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            (SystemTime::now() - Duration::from_secs(7200)).duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() / 60 * 60,
        );
    for (name, secs) in [("a.csv", 50), ("b.csv", 30), ("c.csv", 5), ("d.csv", 5)] {
        w.put_at(name, minute + Duration::from_secs(secs));
    }
    let flow = fs::read_to_string(w.flow()).unwrap().replace("max_files: 2", "max_files: 1");
    let flow_path = w.dir.path().join("one.yaml");
    fs::write(&flow_path, flow).unwrap();
    let mut taken = Vec::new();
    for _ in 0..4 {
        let (code, r) = support::json_of(w.wharf().arg("run").arg("--json").arg(&flow_path));
        assert_eq!((code, r["counts"]["delivered"].as_u64()), (0, Some(1)), "{r:#}");
        taken.push(r["files"][0]["path"].as_str().unwrap().to_string());
    }
    assert_eq!(taken, ["/in/c.csv", "/in/d.csv", "/in/b.csv", "/in/a.csv"]);
}

macro_rules! on_both_servers {
    ($($name:ident),*) => {
        mod sftp { $( #[test] fn $name() { super::$name(super::Partner::sftp()) } )* }
        mod ftps { $( #[test] fn $name() { super::$name(super::Partner::ftp()) } )* }
    };
}

mod pure_ftpd {
    #[test]
    fn files_within_a_minute_are_taken_by_the_second_then_by_path() {
        super::files_within_a_minute_are_taken_by_the_second_then_by_path(super::Partner::pure_ftp())
    }
}

on_both_servers!(
    a_backlog_is_taken_max_files_at_a_time_oldest_first,
    a_run_killed_mid_backlog_is_resumed_first_within_the_cap,
    a_file_left_in_flight_and_no_longer_listed_takes_a_place_first,
    files_within_a_minute_are_taken_by_the_second_then_by_path
);
