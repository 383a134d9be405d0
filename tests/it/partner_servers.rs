//! Partners' servers that are not a default OpenSSH or vsftpd, emulated with the real
//! daemons' own options (no mocks): an `sftp-server` without the OpenSSH extensions (`-P`), an
//! sshd allowing one session channel per login (`MaxSessions 1`), a vsftpd whose `PASV` reply
//! names another address (a server behind NAT), one allowing one login per address
//! (`max_per_ip=1`) shared by two endpoints of a flow, one refusing `.part` names, one
//! refusing deletions, and a pure-ftpd cutting a long listing short.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};

use wharf::config::flow::FtpTls;

use support::ftpd::Ftpd;
use support::sshd::Sshd;
use support::{TempDir, counts, json_of, tempdir, text};

/// The sftp-server of this machine with `flags`, as the sshd_config line that runs it.
fn sftp_server(flags: &str) -> String {
    format!("Subsystem sftp /usr/lib/openssh/sftp-server {flags}")
}

/// Every OpenSSH extension wharf uses, denied (a server that lacks them).
const NO_EXTENSIONS: &str = "-P posix-rename@openssh.com,fsync@openssh.com,limits@openssh.com,statvfs@openssh.com";

/// One test's world: the partner's server (its folder and endpoint YAML) and local folders.
struct World {
    data: PathBuf,
    endpoint: String,
    dir: TempDir,
    /// The server itself, stopped when the world is dropped.
    _keep: Box<dyn std::any::Any>,
}

impl World {
    fn sftp(sshd: Option<Sshd>) -> Option<World> {
        let sshd = sshd?;
        let w = World { data: sshd.data_dir().to_path_buf(), endpoint: sshd.endpoint_yaml(4), dir: tempdir(), _keep: Box::new(()) };
        for d in ["in", "inbox"] {
            fs::create_dir_all(w.data.join(d)).unwrap();
            sshd.give_to_user(&w.data.join(d));
        }
        fs::create_dir_all(w.local("outbox")).unwrap();
        fs::create_dir_all(w.local("sink")).unwrap();
        Some(World { _keep: Box::new(sshd), ..w })
    }

    fn ftp(ftpd: Option<Ftpd>) -> Option<World> {
        let ftpd = ftpd?;
        let w = World {
            data: ftpd.data_dir().to_path_buf(),
            endpoint: ftpd.endpoint_yaml(FtpTls::None, 4),
            dir: tempdir(),
            _keep: Box::new(()),
        };
        for d in ["in", "inbox"] {
            fs::create_dir_all(w.data.join(d)).unwrap();
            ftpd.give_to_user(&w.data.join(d));
        }
        fs::create_dir_all(w.local("outbox")).unwrap();
        fs::create_dir_all(w.local("sink")).unwrap();
        Some(World { _keep: Box::new(ftpd), ..w })
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.data.join(rel)
    }

    /// local /outbox → partner /inbox, `sink_extra` under the sink, `rest` at the end.
    fn push(&self, sink_extra: &str, rest: &str) -> PathBuf {
        let yaml = format!(
            "name: push\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: here\n  path: /outbox\nsinks:\n  - endpoint: partner\n    path: /inbox\n{sink_extra}{rest}",
            ep = self.endpoint,
            root = self.dir.path().display().to_string(),
        );
        self.flow("push.yaml", &yaml)
    }

    /// partner /in → local /sink, `rest` at the end.
    fn pull(&self, rest: &str) -> PathBuf {
        let yaml = format!(
            "name: pull\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: partner\n  path: /in\nsinks:\n  - endpoint: here\n    path: /sink\n{rest}",
            ep = self.endpoint,
            root = self.dir.path().display().to_string(),
        );
        self.flow("pull.yaml", &yaml)
    }

    fn flow(&self, name: &str, yaml: &str) -> PathBuf {
        let p = self.local(name);
        fs::write(&p, yaml).unwrap();
        p
    }

    /// `wharf run --json flow`: exit code, report, log.
    fn run(&self, flow: &Path) -> (i32, serde_json::Value) {
        json_of(support::wharf(&self.local("state")).arg("run").arg("--json").arg(flow))
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// An `sftp-server` without OpenSSH's extensions (no `posix-rename`, so a plain rename onto an
/// existing name fails; no `fsync`, no `limits`): files pushed with `if_exists: overwrite` over
/// yesterday's replace them, a big one included, and no temporary file is left.
#[test]
fn a_server_without_openssh_extensions_still_takes_overwrites() {
    let line = sftp_server(NO_EXTENSIONS);
    let Some(w) = World::sftp(Sshd::start_with(&[&line])) else { return };
    let body = |i: usize| format!("new file {i}\n").repeat(1000);
    for i in 0..3 {
        fs::write(w.remote(&format!("inbox/f{i}.csv")), format!("old {i}\n")).unwrap();
        fs::write(w.local(&format!("outbox/f{i}.csv")), body(i)).unwrap();
    }
    fs::write(w.local("outbox/big.csv"), "0123456789".repeat(300_000)).unwrap();
    let (code, report) = w.run(&w.push("    if_exists: overwrite\n", ""));
    assert_eq!((code, counts(&report).1), (0, 4), "{report:#}");
    for i in 0..3 {
        assert_eq!(fs::read_to_string(w.remote(&format!("inbox/f{i}.csv"))).unwrap(), body(i));
    }
    assert_eq!(names(&w.remote("inbox")), ["big.csv", "f0.csv", "f1.csv", "f2.csv"]);
}

/// A server behind NAT names in its `PASV` reply an address that cannot be reached from here
/// (vsftpd's `pasv_address`; 127.0.0.2 here, where nothing listens; `EPSV` refused, so `PASV` is
/// used): the data connection goes to the server's own address, as curl's and lftp's do.
/// Before: "cannot open the data connection to 127.0.0.2:…: Connection refused", every run.
#[test]
fn a_pasv_reply_naming_an_unreachable_address_is_not_followed() {
    let Some(w) = World::ftp(Ftpd::vsftpd_with(&["pasv_address=127.0.0.2", "cmds_denied=EPSV"])) else { return };
    fs::write(w.remote("in/a.csv"), "a\n").unwrap();
    fs::write(w.local("outbox/b.csv"), "b\n").unwrap();
    for flow in [w.pull(""), w.push("", "")] {
        let (code, report) = w.run(&flow);
        assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
    }
    assert_eq!(fs::read_to_string(w.local("sink/a.csv")).unwrap(), "a\n");
    assert_eq!(fs::read_to_string(w.remote("inbox/b.csv")).unwrap(), "b\n");
    // `use_pasv_address: true` (a server that serves data from another address) follows it.
    fs::write(w.remote("in/c.csv"), "c\n").unwrap();
    let yaml = fs::read_to_string(w.pull("")).unwrap().replacen("    type: ftp\n", "    type: ftp\n    use_pasv_address: true\n", 1);
    let (code, report) = w.run(&w.flow("follow.yaml", &yaml.replace("name: pull", "name: follow")));
    assert_ne!(code, 0, "{report:#}");
    assert!(report.to_string().contains("127.0.0.2"), "{report:#}");
}

/// A flow whose source and sink are the same FTP server and login under two roots (two
/// endpoints), on a server that allows one session per address (vsftpd `max_per_ip=1`): the
/// login the source keeps for reuse is closed when the sink needs one, and back. Before: the
/// sink's login was turned away (`421 There are too many connections from your internet
/// address`) and every run was aborted.
#[test]
fn endpoints_sharing_a_server_that_allows_one_login_take_turns() {
    let Some(w) = World::ftp(Ftpd::vsftpd_with(&["max_per_ip=1"])) else { return };
    for i in 0..5 {
        fs::write(w.remote(&format!("in/f{i}.csv")), format!("file {i}\n")).unwrap();
    }
    let root = format!("root: {:?}", w.data.display().to_string());
    let inbox = w.endpoint.replace(&root, &format!("root: {:?}", w.remote("inbox").display().to_string()));
    assert_ne!(inbox, w.endpoint, "the endpoint YAML names its root");
    let yaml = format!(
        "name: loop\nendpoints:\n  partner:\n{ep}  partner_inbox:\n{inbox}source:\n  endpoint: partner\n  path: /in\nsinks:\n  - endpoint: partner_inbox\n    path: /\nafter:\n  success: delete\n",
        ep = w.endpoint
    );
    let (code, report) = w.run(&w.flow("loop.yaml", &yaml));
    assert_eq!((code, counts(&report).1), (0, 5), "{report:#}");
    assert_eq!(names(&w.remote("inbox")), ["f0.csv", "f1.csv", "f2.csv", "f3.csv", "f4.csv"]);
    assert!(names(&w.remote("in")).is_empty());
}

/// A server allowing one session channel per login (OpenSSH `MaxSessions 1`): wharf's second
/// SFTP channel goes over a second login, and a pull of small and big files (several in
/// flight, deleted at the source) and a push with `if_exists: overwrite` work. Before: every
/// run failed with "the server allows one session channel per login (OpenSSH `MaxSessions 1`?),
/// and wharf needs two".
#[test]
fn a_server_allowing_one_channel_per_login_is_used() {
    let Some(w) = World::sftp(Sshd::start_with(&["MaxSessions 1"])) else { return };
    for i in 0..10 {
        fs::write(w.remote(&format!("in/f{i}.csv")), format!("file {i}\n")).unwrap();
    }
    fs::write(w.remote("in/big.csv"), "0123456789".repeat(300_000)).unwrap();
    let (code, report) = w.run(&w.pull("after:\n  success: delete\n"));
    assert_eq!((code, counts(&report).1), (0, 11), "{report:#}");
    assert_eq!(fs::read_to_string(w.local("sink/big.csv")).unwrap(), "0123456789".repeat(300_000));
    assert!(names(&w.remote("in")).is_empty());

    fs::write(w.remote("inbox/a.csv"), "old\n").unwrap();
    fs::write(w.local("outbox/a.csv"), "new\n").unwrap();
    let (code, report) = w.run(&w.push("    if_exists: overwrite\n", ""));
    assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.csv")).unwrap(), "new\n");
    assert_eq!(names(&w.remote("inbox")), ["a.csv"]);
}

/// A server that refuses the temporary name's kind of name (vsftpd `deny_file={*.part}`, like
/// servers taking known extensions only): the error says the temporary name may be what it
/// refuses, and which setting helps; with `temp_name` set to a name it takes, the file goes.
/// Before: only "write /inbox/.b.csv.push.part: permission denied: 550 Permission denied.",
/// every run.
#[test]
fn a_refused_temporary_name_is_suspected_and_temp_name_named() {
    let Some(w) = World::ftp(Ftpd::vsftpd_with(&["deny_file={*.part}"])) else { return };
    fs::write(w.local("outbox/b.csv"), "b\n").unwrap();
    let (code, report) = w.run(&w.push("", ""));
    let detail = report["files"][0]["detail"].as_str().unwrap_or_default().to_string();
    assert_eq!((code, counts(&report).3), (1, 1), "{report:#}");
    assert!(detail.contains("write /inbox/.b.csv.push.part: permission denied"), "{detail}");
    assert!(
        detail.contains("refuses such names (hidden ones, `.part`): if it takes `b.csv` there, set the sink's `temp_name`"),
        "{detail}"
    );
    let (code, report) = w.run(&w.push("    temp_name: \"{{name}}.tmp\"\n", ""));
    assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/b.csv")).unwrap(), "b\n");
}

/// vsftpd with `use_localtime=YES` (Debian's default) in New York (a `TZ` with New York's
/// summer-time rules, which needs no tz data): its `MDTM` gives local times where UTC is due,
/// so a file written just now reads as four or five hours old and `min_age: 1h` takes it at
/// once. `time_zone: America/New_York` on the endpoint moves the times to UTC, summer or not,
/// and so does `time_offset` set to the offset of the day: the file waits.
#[test]
fn a_server_giving_times_in_its_own_zone_is_read_in_utc_with_time_zone_or_time_offset() {
    let Some(w) = World::ftp(Ftpd::vsftpd_with(&["use_localtime=YES", "env:TZ=EST5EDT,M3.2.0,M11.1.0"])) else { return };
    fs::write(w.remote("in/a.csv"), "a\n").unwrap();
    let flow = |name: &str, clock: &str| {
        let yaml = format!(
            "name: {name}\nendpoints:\n  partner:\n{ep}{clock}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: partner\n  path: /in\n  ready: {{ min_age: 1h }}\nsinks:\n  - endpoint: here\n    path: /sink\n",
            ep = w.endpoint,
            root = w.dir.path().display().to_string(),
        );
        w.flow(&format!("{name}.yaml"), &yaml)
    };
    let (code, report) = w.run(&flow("by-zone", "    time_zone: America/New_York\n"));
    assert_eq!((code, &report["counts"]["not_ready"]), (0, &serde_json::json!(1)), "written just now: {report:#}");
    let hours = {
        use chrono::{Offset, TimeZone};
        chrono_tz::America::New_York.offset_from_utc_datetime(&chrono::Utc::now().naive_utc()).fix().local_minus_utc() / 3600
    };
    let (code, report) = w.run(&flow("by-offset", &format!("    time_offset: {hours}h\n")));
    assert_eq!((code, &report["counts"]["not_ready"]), (0, &serde_json::json!(1)), "written just now: {report:#}");
    assert!(names(&w.local("sink")).is_empty());
    // Without either, the file looks hours old.
    let (code, report) = w.run(&flow("as-given", ""));
    assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
}

/// A server that refuses renames and deletions (vsftpd `cmds_denied=RNFR,RNTO,DELE`, like a
/// drop box whose logins may only write): the refused rename says `direct: true` is the way for
/// such a server, and the temporary file it could not remove is named as left there (the
/// partner's to remove). With `direct: true` the file goes. Before: only "rename
/// /inbox/.a.csv.push.part: permission denied: 550 Permission denied. (renaming it to
/// /inbox/a.csv)", with no word of the `.part` file staying in the partner's folder.
#[test]
fn a_server_refusing_renames_and_deletions_is_told_and_its_left_temporary_file_named() {
    let Some(w) = World::ftp(Ftpd::vsftpd_with(&["cmds_denied=RNFR,RNTO,DELE"])) else { return };
    fs::write(w.local("outbox/a.csv"), "a\n").unwrap();
    let (code, report) = w.run(&w.push("", ""));
    let detail = report["files"][0]["detail"].as_str().unwrap_or_default().to_string();
    assert_eq!((code, counts(&report).3), (1, 1), "{report:#}");
    assert!(detail.contains("rename /inbox/.a.csv.push.part: permission denied"), "{detail}");
    assert!(detail.contains("if the server refuses renames, `direct: true` on the sink writes the final name directly"), "{detail}");
    assert!(detail.contains("the temporary file /inbox/.a.csv.push.part is left there: removing it failed too (550 "), "{detail}");
    assert_eq!(names(&w.remote("inbox")), [".a.csv.push.part"]);
    let (code, report) = w.run(&w.push("    direct: true\n", ""));
    assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.csv")).unwrap(), "a\n");
}

/// A push into a folder the login may not write into (`chmod 555`; the servers' sessions run
/// as the test user): the refused create of the temporary file names the folder's permissions
/// first, and says nothing of refused renames (no rename was tried). Before: the only hint was
/// that the server might refuse the temporary name, which no `temp_name` would have helped.
fn an_unwritable_folder_is_named(w: &World) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(w.remote("inbox"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::write(w.local("outbox/a.csv"), "a\n").unwrap();
    let (code, report) = w.run(&w.push("", ""));
    let detail = report["files"][0]["detail"].as_str().unwrap_or_default().to_string();
    assert_eq!((code, counts(&report).3), (1, 1), "{report:#}");
    assert!(detail.contains("write /inbox/.a.csv.push.part: permission denied"), "{detail}");
    assert!(detail.contains("the login may not create files in /inbox (check the folder's permissions for it, and that the server lets this login write at all)"), "{detail}");
    assert!(!detail.contains("refuses renames"), "{detail}");
    assert!(names(&w.remote("inbox")).is_empty());
}

#[test]
fn an_unwritable_folder_is_named_over_sftp() {
    let Some(w) = World::sftp(Sshd::start()) else { return };
    an_unwritable_folder_is_named(&w);
}

#[test]
fn an_unwritable_folder_is_named_over_ftp() {
    let Some(w) = World::ftp(Ftpd::vsftpd()) else { return };
    an_unwritable_folder_is_named(&w);
}

/// pure-ftpd with `-r` (auto-rename) stores an upload to a taken name under another one: a
/// temporary file left by an earlier attempt (here a run killed once its upload was written
/// under the temporary name) made the next upload land in `.a.csv.push.part.1`, left in the
/// partner's folder, while the stale file was size-checked and renamed to `a.csv` — stale
/// content delivered when its size matched. Now an attempt after an earlier one removes the
/// temporary file first: `a.csv` holds what was sent, nothing else is left. (A first attempt
/// does not: it costs no extra round trip.)
#[test]
fn a_stale_temporary_file_on_an_auto_renaming_server_is_removed_first() {
    let Some(w) = World::ftp(Ftpd::pure_ftpd_with(&["-r"])) else { return };
    fs::write(w.local("outbox/a.csv"), "a\n").unwrap();
    let flow = w.push("", "");
    let mut cmd = support::wharf(&w.local("state"));
    cmd.arg("run").arg(&flow);
    drop(support::halt::run_until(cmd, "uploaded", std::time::Duration::from_secs(60)));
    // What the killed attempt left, changed behind its back (same size, other bytes).
    fs::write(w.remote("inbox/.a.csv.push.part"), "zz").unwrap();
    let (code, report) = w.run(&flow);
    assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.csv")).unwrap(), "a\n");
    assert_eq!(names(&w.remote("inbox")), ["a.csv"]);
}

/// pure-ftpd lists at most 10,000 lines by default (`LimitRecursion 10000`): of a folder with
/// 10,005 files it sends 10,000 lines (`.` and `..` among them) and a `226 Output truncated to
/// 10000 matches` that the FTP library drops. The run now warns, naming the flow, the folder,
/// the limit and what helps, and takes nothing in that folder for gone (a file past the cut
/// keeps its history: were it forgotten, it would be taken again once listed). Before: "9998
/// seen", as if that were the whole folder, and five files never seen, without a word.
#[test]
fn a_listing_pure_ftpd_cuts_short_is_told() {
    let Some(w) = World::ftp(Ftpd::pure_ftpd()) else { return };
    for i in 0..10_005 {
        fs::write(w.remote(&format!("in/f{i:05}.csv")), "x\n").unwrap();
    }
    // Only ten of them taken: the listing is what is tried here, not 10,000 downloads.
    let yaml = format!(
        "name: pull\nendpoints:\n  partner:\n{ep}  here:\n    type: local\n    root: {root:?}\nsource:\n  endpoint: partner\n  path: /in\n  include: [\"f0000?.csv\"]\nsinks:\n  - endpoint: here\n    path: /sink\n",
        ep = w.endpoint,
        root = w.dir.path().display().to_string(),
    );
    let flow = w.flow("pull.yaml", &yaml);
    let out = support::wharf(&w.local("state")).arg("run").arg(&flow).output().unwrap();
    let log = text(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let warning = log.lines().find(|l| l.contains("listed part of a folder")).unwrap_or_else(|| panic!("no warning: {log}"));
    for part in ["flow=pull", "folder=/in", "10000 lines", "pure-ftpd", "LimitRecursion"] {
        assert!(warning.contains(part), "{part} missing: {warning}");
    }
    assert!(names(&w.local("sink")).len() <= 10, "{log}");
}

/// A pull whose `after.success: delete` the server refuses for every file (vsftpd
/// `cmds_denied=DELE,RNFR,RNTO`: a drop box the login may only read from): the file is
/// delivered once, the failure says the server may refuse deletions outright and that `keep`
/// is what works then, the next run does not deliver it again, and with `keep` the next run
/// finishes it and none takes it twice. Before: only "check the folder's permissions", which
/// were fine.
#[test]
fn a_pull_from_a_server_refusing_deletions_names_keep() {
    let Some(w) = World::ftp(Ftpd::vsftpd_with(&["cmds_denied=DELE,RNFR,RNTO"])) else { return };
    fs::write(w.remote("in/a.csv"), "a\n").unwrap();
    let delete = w.pull("    if_exists: rename\nafter: { success: delete }\n");
    for run in 1..=2 {
        let (code, report) = w.run(&delete);
        assert_eq!(code, 1, "run {run}: {report:#}");
        let detail = report["files"][0]["detail"].as_str().unwrap_or_default().to_string();
        assert!(detail.contains("remove /in/a.csv") && detail.contains("a drop box") && detail.contains("`keep`"), "{detail}");
        assert_eq!(names(&w.local("sink")), ["a.csv"], "run {run}: delivered once");
    }
    // With `keep`, the file left failing is finished (recorded delivered: its one copy), and
    // never taken again.
    let keep = w.pull("    if_exists: rename\n");
    let (code, report) = w.run(&keep);
    assert_eq!((code, report["files"][0]["detail"].as_str()), (0, Some("delivered to here:/sink/a.csv")), "{report:#}");
    let (code, report) = w.run(&keep);
    assert_eq!((code, counts(&report).1), (0, 0), "{report:#}");
    assert_eq!(names(&w.local("sink")), ["a.csv"]);
}

/// A pull whose login the server runs no SFTP for, the run's `error` and its kind.
fn sftp_start_refused(extra: &str) -> Option<(String, serde_json::Value)> {
    let w = World::sftp(Sshd::start_with(&[extra]))?;
    fs::write(w.remote("in/a.csv"), "a\n").unwrap();
    let (code, report) = w.run(&w.pull(""));
    assert_eq!((code, report["status"].as_str(), report["error_kind"].as_str()), (3, Some("aborted"), Some("protocol")), "{report:#}");
    assert!(w.local("sink").read_dir().unwrap().next().is_none());
    Some((report["error"].as_str().unwrap_or_default().to_string(), report))
}

/// A login whose shell prints a greeting before the SFTP server starts (a message in
/// `~/.bashrc`; here the subsystem's command line echoes it): the text is quoted and its usual
/// cause named. Before: "SFTP start failed: sender dropped".
#[test]
fn a_login_printing_text_before_sftp_is_quoted_and_its_cause_named() {
    let line = "Subsystem sftp /bin/echo Welcome to ACME; exec /usr/lib/openssh/sftp-server";
    let Some((error, _)) = sftp_start_refused(line) else { return };
    assert!(error.contains("SFTP start failed: the server's SFTP channel began with text, not SFTP: `Welcome to ACME`"), "{error}");
    assert!(error.contains("a login script such as ~/.bashrc") && !error.contains("sender dropped"), "{error}");
}

/// A server that runs no SFTP server for the login (`Subsystem sftp /bin/false`): said so, and
/// what the partner has to enable. Before: "SFTP start failed: sender dropped".
#[test]
fn a_server_without_sftp_for_the_login_is_told() {
    let Some((error, _)) = sftp_start_refused("Subsystem sftp /bin/false") else { return };
    assert!(
        error.contains("SFTP start failed: the server ended its SFTP service at once (exit status 1): it runs no SFTP server"),
        "{error}"
    );
    assert!(error.contains("ask the partner to enable SFTP for this login"), "{error}");
}

/// An endpoint `root` the login does not see (written as the path on the server's disk for a
/// login the server keeps in a folder of its own, `ChrootDirectory`, where paths start at
/// `/`): the pull's listing and the push's folder say that the root is not there, where the
/// login starts, and what to set. Before: only "not found: No such file (on the server: …)".
#[test]
fn a_root_the_login_does_not_see_is_named() {
    let Some(w) = World::sftp(Sshd::start()) else { return };
    let data = format!("root: {:?}", w.data.display().to_string());
    let missing = format!("root: {:?}", w.data.join("srv/partner").display().to_string());
    fs::write(w.local("outbox/a.csv"), "a\n").unwrap();
    // The pull's run stops at its listing (exit 3); the push fails its file (exit 1), kept.
    for (flow, at, exit) in [(w.pull(""), "list /in", 3), (w.push("", ""), "create directory /inbox", 1)] {
        fs::write(&flow, fs::read_to_string(&flow).unwrap().replace(&data, &missing)).unwrap();
        let (code, report) = w.run(&flow);
        let error = report["error"].as_str().or(report["files"][0]["detail"].as_str()).unwrap_or_default();
        assert_eq!(code, exit, "{report:#}");
        assert!(error.contains(&format!("{at}: not found")), "{error}");
        let root = w.data.join("srv/partner").display().to_string();
        assert!(error.contains(&format!("the endpoint's `root` {root} is not there for this login (it starts in ")), "{error}");
        assert!(error.contains("(a chroot), where paths start at `/`: set `root` to the folder as the login sees it"), "{error}");
    }
    assert_eq!(names(&w.local("outbox")), ["a.csv"]);
}

/// A server read-only for the login (`sftp-server -R`): a push fails the file as refused,
/// says the server may not let the login write at all, and claims no temporary file left
/// (none was made: the refused removal is of nothing); the source stays, each run tries once
/// (no retries within a run: a refusal is not transient). A pull delivers once, and its
/// refused `after.success: delete` names `keep`. Before: "the temporary file
/// /inbox/.a.csv.push.part is left there: removing it failed too", of a file never made.
#[test]
fn a_read_only_server_refuses_pushes_plainly_and_pulls_deliver_once() {
    let Some(w) = World::sftp(Sshd::start_with(&[&sftp_server("-R -l INFO")])) else { return };
    fs::write(w.local("outbox/a.csv"), "a\n").unwrap();
    for run in 1..=2 {
        let (code, report) = w.run(&w.push("", ""));
        let detail = report["files"][0]["detail"].as_str().unwrap_or_default().to_string();
        assert_eq!((code, counts(&report).3, report["files"][0]["error_kind"].as_str()), (1, 1, Some("permission_denied")), "{report:#}");
        assert!(detail.contains("write /inbox/.a.csv.push.part: permission denied"), "{detail}");
        assert!(detail.contains("and that the server lets this login write at all"), "{detail}");
        assert!(!detail.contains("left there"), "run {run}: {detail}");
    }
    assert_eq!(names(&w.local("outbox")), ["a.csv"]);
    assert!(names(&w.remote("inbox")).is_empty());

    fs::write(w.remote("in/b.csv"), "b\n").unwrap();
    for run in 1..=2 {
        let (code, report) = w.run(&w.pull("after: { success: delete }\n"));
        let detail = report["files"][0]["detail"].as_str().unwrap_or_default().to_string();
        assert_eq!(code, 1, "run {run}: {report:#}");
        assert!(detail.contains("delivered to here:/sink/b.csv, but `after.success` failed") && detail.contains("`keep`"), "{detail}");
    }
    assert_eq!(names(&w.local("sink")), ["b.csv"]);
    assert_eq!(names(&w.remote("in")), ["b.csv"]);
}

/// A server allowing only the SFTP requests wharf needs (`sftp-server -p`: open, close, read,
/// write, lstat, stat, opendir, readdir, remove, mkdir, rename; no `fstat`, `setstat`,
/// `realpath`, `fsync`, `statvfs`, `posix-rename`…): pushes, an overwrite included, and a
/// pull moving its files go through. Before: a small file's upload failed when `FSTAT` (a
/// shortcut for its stored size) was refused.
#[test]
fn a_server_allowing_only_the_requests_wharf_needs_is_used() {
    let allowed = "-p open,close,read,write,lstat,stat,opendir,readdir,remove,mkdir,rename";
    let Some(w) = World::sftp(Sshd::start_with(&[&sftp_server(allowed)])) else { return };
    fs::write(w.remote("inbox/a.csv"), "old\n").unwrap();
    fs::write(w.local("outbox/a.csv"), "new\n").unwrap();
    fs::write(w.local("outbox/big.csv"), "0123456789".repeat(300_000)).unwrap();
    let (code, report) = w.run(&w.push("    if_exists: overwrite\n", ""));
    assert_eq!((code, counts(&report).1), (0, 2), "{report:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.csv")).unwrap(), "new\n");
    assert_eq!(names(&w.remote("inbox")), ["a.csv", "big.csv"]);

    fs::write(w.remote("in/b.csv"), "b\n").unwrap();
    let (code, report) = w.run(&w.pull("after: { success: { move_to: /in/done } }\n"));
    assert_eq!((code, counts(&report).1), (0, 1), "{report:#}");
    assert_eq!(names(&w.remote("in/done")), ["b.csv"]);
}
