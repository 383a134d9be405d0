//! Full disks where files are written, other than the state folder (see `state_full`) and an
//! SFTP partner's (see `sftp_refusals`): a local sink folder, vsftpd's data folder, a local
//! quarantine folder, and a sink folder that fills up part-way through a run. Each is a real
//! tmpfs of a MiB (`support::tmpfs`: skipped where this machine cannot mount).
//!
//! What a user must see: the files that do not fit fail plainly, naming the flow's place that
//! is full; nothing is lost (the source stays where it is, `after.failure` not applied), nothing
//! partial is left behind to keep the disk full; the files that fit are delivered; and once
//! there is room, the next run takes the rest, each file once.

use crate::support;
use support::tmpfs::Tmpfs;
use support::{counts, json_of};

use std::fs;
use std::path::{Path, PathBuf};

use support::ftpd::Ftpd;
use support::sshd::Sshd;
use wharf::config::flow::FtpTls;

/// `n` bytes that are not all the same.
fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The names of the files below `dir`, at any depth, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = support::walk(dir).iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    n.sort();
    n
}

/// Writes `yaml` as `dir/flow.yaml`.
fn flow(dir: &Path, yaml: String) -> PathBuf {
    let file = dir.join("flow.yaml");
    fs::write(&file, yaml).unwrap();
    file
}

/// `wharf run --json FLOW` with its state in `dir/state`.
fn run(dir: &Path, flow: &Path) -> (i32, serde_json::Value) {
    json_of(support::wharf(&dir.join("state")).args(["run", "--json"]).arg(flow))
}

/// The detail of the one file of `report` named `path`.
fn detail<'a>(report: &'a serde_json::Value, path: &str) -> &'a str {
    let files = report["files"].as_array().unwrap();
    files.iter().find(|f| f["path"] == path).and_then(|f| f["detail"].as_str()).unwrap_or_else(|| panic!("no {path}: {report:#}"))
}

/// Room again (`disk` grown to 8 MiB): the next run delivers the one file waiting, whole, as
/// `delivered` (alone in its folder), and the run after it delivers nothing.
fn room_again_delivers_once(disk: &Tmpfs, dir: &Path, flow: &Path, delivered: &Path, bytes: &[u8]) {
    disk.resize("8m");
    let (code, r) = run(dir, flow);
    assert_eq!((code, counts(&r)), (0, (0, 1, 0, 0)), "{r:#}");
    assert!(fs::read(delivered).unwrap() == bytes, "{} whole", delivered.display());
    assert_eq!(names(delivered.parent().unwrap()), [delivered.file_name().unwrap().to_string_lossy()]);
    nothing_twice(dir, flow);
}

fn nothing_twice(dir: &Path, flow: &Path) {
    let (code, r) = run(dir, flow);
    assert_eq!((code, counts(&r).1), (0, 0), "nothing delivered twice: {r:#}");
}

/// A local sink folder with no room for the file: the file fails for this run saying which
/// folder is full and what to do (before: a "local I/O error" that aborted the run), no
/// temporary file is left there, the source is not moved to `processed/`, and once there is
/// room the next run delivers it, once.
#[test]
fn a_full_local_sink_fails_the_file_plainly_and_the_next_run_delivers_it_once() {
    full_local_sink(2 << 20, "1m");
}

/// The same with a file small enough to be written from memory (at most 64 KiB, no steps):
/// its partial temporary file is removed too.
#[test]
fn a_small_file_into_a_full_local_sink_leaves_nothing_behind_either() {
    full_local_sink(40 * 1024, "16k");
}

/// A file of `size` bytes pushed into a local sink on a tmpfs of `room`, which it does not fit.
fn full_local_sink(size: usize, room: &str) {
    let dir = support::tempdir();
    let d = dir.path();
    let sink = d.join("sink");
    let Some(disk) = Tmpfs::mount(&sink, room) else { return };
    fs::create_dir_all(d.join("outbox")).unwrap();
    let big = data(size);
    fs::write(d.join("outbox/big.bin"), &big).unwrap();
    let flow = flow(
        d,
        format!(
            "name: tosink\nendpoints:\n  outbox: {{ type: local, root: {0:?} }}\n  archive: {{ type: local, root: {1:?} }}\n\
             source: {{ endpoint: outbox, path: / }}\nsinks:\n  - {{ endpoint: archive, path: /in }}\n\
             after:\n  success: {{ move_to: /processed }}\n  failure: {{ move_to: /failed }}\nretry: {{ attempts: 3, backoff: 30s }}\n",
            d.join("outbox").display().to_string(),
            sink.display().to_string(),
        ),
    );

    let started = std::time::Instant::now();
    let (code, r) = run(d, &flow);
    assert!(started.elapsed() < std::time::Duration::from_secs(25), "not retried within the run");
    assert_eq!((code, counts(&r)), (1, (0, 0, 0, 1)), "{r:#}");
    assert_eq!(r["files"][0]["error_kind"], "no_space", "{r:#}");
    let detail = detail(&r, "/big.bin");
    // Written from memory it is named by its final name (it is renamed in the same trip).
    let full = format!("sink archive: local {0}: write /in/", sink.display());
    assert!(detail.starts_with(&full) && detail.contains("big.bin") && detail.contains(": no space left: "), "{detail}");
    assert!(detail.contains(&format!("the disk holding {} is full; make room there", sink.display())), "{detail}");
    assert!(detail.ends_with("(failed in 1 run; the next run tries again)"), "{detail}");
    assert_eq!(names(&sink), Vec::<String>::new(), "no partial or temporary file left in the sink folder");
    assert_eq!(names(&d.join("outbox")), ["big.bin"], "the source is kept where it was");

    room_again_delivers_once(&disk, d, &flow, &sink.join("in/big.bin"), &big);
    assert_eq!(names(&d.join("outbox")), ["big.bin"]);
    assert!(d.join("outbox/processed/big.bin").exists());
}

/// vsftpd with a full disk resets the data connection and answers `451` (as for any failed
/// write), which is transient trouble: the file fails for this run, the outbox keeps it, and
/// its partial upload is removed rather than left to keep the partner's disk full (before:
/// `.a.bin.part` stayed there until the next run). Once the partner has made room, the next
/// run delivers it, once.
#[test]
fn a_push_onto_a_full_vsftpd_disk_leaves_no_temporary_file_and_the_next_run_delivers_once() {
    let Some(ftpd) = Ftpd::vsftpd() else { return };
    let inbox = ftpd.data_dir().join("inbox");
    let Some(disk) = Tmpfs::mount(&inbox, "1m") else { return };
    let dir = support::tempdir();
    let d = dir.path();
    fs::create_dir_all(d.join("outbox")).unwrap();
    let big = data(2 << 20);
    fs::write(d.join("outbox/a.bin"), &big).unwrap();
    let flow = flow(
        d,
        format!(
            "name: push\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: here\n  path: /outbox\n\
             sinks:\n  - endpoint: partner\n    path: /inbox\nafter:\n  failure: {{ move_to: /failed }}\nretry: {{ attempts: 2, backoff: 1s }}\n",
            ep = ftpd.endpoint_yaml(FtpTls::None, 4),
            root = d.display().to_string(),
        ),
    );

    let (code, r) = run(d, &flow);
    assert_eq!((code, counts(&r)), (1, (0, 0, 0, 1)), "{r:#}");
    let detail = detail(&r, "/outbox/a.bin");
    assert!(detail.starts_with("sink partner: ftp ") && detail.contains(": write /inbox/.a.bin.push.part: "), "{detail}");
    assert!(detail.ends_with("(failed in 1 run; the next run tries again)"), "{detail}");
    assert!(ftpd.log().contains("451 Failure writing to local file."), "the refusal this test is about: {}", ftpd.log());
    // The server's reply, read after the data connection's reset, is what the error quotes.
    assert!(detail.contains("451 Failure writing to local file."), "{detail}");
    assert_eq!(names(&inbox), Vec::<String>::new(), "the partial upload is removed");
    assert_eq!(names(&d.join("outbox")), ["a.bin"], "after.failure is not applied");

    room_again_delivers_once(&disk, d, &flow, &inbox.join("a.bin"), &big);
}

/// A file refused by its content steps whose quarantine folder is full: the error says why it
/// was refused and that putting it aside there failed, and why; the file stays at the source
/// (not moved by `after.failure`, not lost), the other files are delivered, and once there is
/// room the next run quarantines it with its reports.
#[test]
fn a_full_quarantine_folder_keeps_the_refused_file_at_the_source_until_there_is_room() {
    let dir = support::tempdir();
    let d = dir.path();
    let q = d.join("q");
    let Some(disk) = Tmpfs::mount(&q, "1m") else { return };
    fs::create_dir_all(d.join("in")).unwrap();
    let mut bad = String::from("id,name\n");
    while bad.len() < 2 << 20 {
        bad.push_str("1,a,too many\n");
    }
    fs::write(d.join("in/bad.csv"), &bad).unwrap();
    fs::write(d.join("in/good.csv"), "id,name\n1,a\n").unwrap();
    let flow = flow(
        d,
        format!(
            "name: qfull\nendpoints:\n  in: {{ type: local, root: {0:?} }}\n  out: {{ type: local, root: {1:?} }}\n  q: {{ type: local, root: {2:?} }}\n\
             source: {{ endpoint: in, path: / }}\nsteps:\n  - parse: {{ format: csv }}\n  - write: {{ format: jsonl }}\n\
             quarantine: {{ endpoint: q, path: /rejected }}\nsinks: [ {{ endpoint: out, path: / }} ]\nafter:\n  failure: {{ move_to: /failed }}\n",
            d.join("in").display().to_string(),
            d.join("out").display().to_string(),
            q.display().to_string(),
        ),
    );

    let (code, r) = run(d, &flow);
    assert_eq!((code, counts(&r), r["quarantined"].as_u64()), (1, (0, 1, 0, 1), Some(0)), "{r:#}");
    let bad_file = r["files"].as_array().unwrap().iter().find(|f| f["path"] == "/bad.csv").unwrap();
    assert_eq!(bad_file["error_kind"], "no_space", "{r:#}");
    let detail = detail(&r, "/bad.csv");
    assert!(detail.contains("records are invalid"), "why it was refused: {detail}");
    let aside =
        format!("; putting it aside in quarantine q failed: local {0}: write /rejected/.bad.csv.qfull.part: no space left: ", q.display());
    assert!(detail.contains(&aside), "{detail}");
    assert!(detail.contains(&format!("the disk holding {} is full; make room there", q.display())), "{detail}");
    assert!(detail.ends_with("(failed in 1 run; the next run tries again)"), "{detail}");
    assert_eq!(names(&q), Vec::<String>::new(), "no partial copy left in quarantine");
    assert_eq!(names(&d.join("in")), ["bad.csv", "good.csv"], "the refused file stays at the source");
    assert_eq!(names(&d.join("out")), ["good.jsonl"], "the other file is delivered");

    disk.resize("16m");
    let (code, r) = run(d, &flow);
    assert_eq!((code, r["quarantined"].as_u64()), (0, Some(1)), "{r:#}");
    assert!(fs::read_to_string(q.join("rejected/bad.csv")).unwrap() == bad);
    assert_eq!(names(&q), ["bad.csv", "bad.csv.report.json", "bad.csv.report.txt"]);
    assert!(d.join("in/failed/bad.csv").exists(), "after.failure applied once quarantined");
    let (code, r) = run(d, &flow);
    assert_eq!((code, r["quarantined"].as_u64(), counts(&r).1), (0, Some(0), 0), "nothing twice: {r:#}");
}

/// A pull into a local sink whose disk fills up part-way through the run, several files in
/// flight: the files that fit are delivered whole, the others fail for this run (no space
/// left, nothing partial left behind), and once there is room the next run delivers exactly
/// those, each once.
#[test]
fn a_sink_filling_up_mid_run_takes_what_fits_and_the_next_run_the_rest_once() {
    let Some(sshd) = Sshd::start() else { return };
    let dir = support::tempdir();
    let d = dir.path();
    let sink = d.join("sink");
    let Some(disk) = Tmpfs::mount(&sink, "1m") else { return };
    // Ten files of 150 KiB on 1 MiB: the first three in flight always fit, all ten never do.
    fs::create_dir_all(sshd.data_dir().join("out")).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..10).map(|i| (format!("f{i}.bin"), data(150 * 1024 + i))).collect();
    for (name, bytes) in &files {
        fs::write(sshd.data_dir().join("out").join(name), bytes).unwrap();
    }
    sshd.give_to_user(sshd.data_dir());
    let flow = flow(
        d,
        format!(
            "name: fills\nendpoints:\n  partner:\n{ep}  here: {{ type: local, root: {root:?} }}\nsource: {{ endpoint: partner, path: /out }}\n\
             sinks:\n  - {{ endpoint: here, path: / }}\nconcurrency: 3\n",
            ep = sshd.endpoint_yaml(4),
            root = sink.display().to_string(),
        ),
    );

    let (_, r) = run(d, &flow);
    let (_, delivered, _, failed) = counts(&r);
    assert!(delivered >= 3 && failed >= 1 && delivered + failed == 10, "{r:#}");
    let outcome = |r: &serde_json::Value, o: &str| -> Vec<String> {
        let files = r["files"].as_array().unwrap();
        let mut v: Vec<String> = files
            .iter()
            .filter(|f| f["outcome"] == o)
            .map(|f| f["path"].as_str().unwrap().trim_start_matches("/out/").to_string())
            .collect();
        v.sort();
        v
    };
    for f in r["files"].as_array().unwrap().iter().filter(|f| f["outcome"] == "failed") {
        assert_eq!(f["error_kind"], "no_space", "{f}");
    }
    let first = outcome(&r, "delivered");
    assert_eq!(names(&sink), first, "the delivered files, and nothing partial");
    for name in &first {
        let (_, bytes) = files.iter().find(|(n, _)| n == name).unwrap();
        assert!(&fs::read(sink.join(name)).unwrap() == bytes, "{name} whole");
    }

    disk.resize("8m");
    let (code, r) = run(d, &flow);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(outcome(&r, "delivered"), failed_names(&files, &first), "exactly the files that did not fit: {r:#}");
    for (name, bytes) in &files {
        assert!(&fs::read(sink.join(name)).unwrap() == bytes, "{name} whole");
    }
    nothing_twice(d, &flow);
}

/// A local sink on a read-only file system (a mount gone read-only after disk errors): the
/// file fails for that sink alone, which is named with the cause, while the flow's other sink
/// gets it; the source stays. Before, `EROFS` was local I/O trouble that stopped the whole run
/// (exit 3), the other sink and files with it. Writable again, the next run delivers it to the
/// sink that missed it, once.
#[test]
fn a_read_only_local_sink_fails_that_sink_alone() {
    let dir = support::tempdir();
    let d = dir.path();
    let ro = d.join("ro");
    let Some(disk) = Tmpfs::mount(&ro, "1m") else { return };
    disk.read_only(true);
    fs::create_dir_all(d.join("outbox")).unwrap();
    fs::create_dir_all(d.join("good")).unwrap();
    fs::write(d.join("outbox/a.csv"), "a\n").unwrap();
    let flow = flow(
        d,
        format!(
            "name: twosinks\nendpoints:\n  outbox: {{ type: local, root: {0:?} }}\n  ro: {{ type: local, root: {1:?} }}\n  \
             good: {{ type: local, root: {2:?} }}\nsource: {{ endpoint: outbox, path: / }}\n\
             sinks:\n  - {{ endpoint: ro, path: / }}\n  - {{ endpoint: good, path: / }}\n",
            d.join("outbox").display().to_string(),
            ro.display().to_string(),
            d.join("good").display().to_string(),
        ),
    );

    let (code, r) = run(d, &flow);
    assert_eq!((code, counts(&r)), (1, (0, 0, 0, 1)), "{r:#}");
    assert_eq!(r["files"][0]["error_kind"], "permission_denied", "{r:#}");
    let detail = detail(&r, "/a.csv");
    assert!(detail.starts_with("sink ro: ") && detail.contains("Read-only file system"), "{detail}");
    assert_eq!(fs::read_to_string(d.join("good/a.csv")).unwrap(), "a\n", "the other sink has it");
    assert_eq!(names(&d.join("outbox")), ["a.csv"], "the source is kept");

    disk.read_only(false);
    let (code, r) = run(d, &flow);
    assert_eq!((code, counts(&r).1), (0, 1), "{r:#}");
    assert_eq!(fs::read_to_string(ro.join("a.csv")).unwrap(), "a\n");
    assert_eq!(names(&d.join("good")), ["a.csv"]);
    nothing_twice(d, &flow);
}

/// The names of `files` not in `delivered`, sorted.
fn failed_names(files: &[(String, Vec<u8>)], delivered: &[String]) -> Vec<String> {
    let mut v: Vec<String> = files.iter().map(|(n, _)| n.clone()).filter(|n| !delivered.contains(n)).collect();
    v.sort();
    v
}
