//! Round trips end to end through the `wharf` binary against real FTP servers (vsftpd, which
//! lists with LIST and gives times by MDTM; pure-ftpd, which lists with MLSD): an order pushed
//! to the partner's `/inbox` awaits its acknowledgement `/outbox/{{stem}}.ack`, which is matched
//! by the server's own listing and times, delivered to a local `acks` folder and removed from
//! the server; an ack left there from long before the request is not taken as its answer; and
//! `wharf plan` says beforehand what the run does with each await.

use crate::support;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::ftpd::Ftpd;
use support::{TempDir, tempdir};
use wharf::config::flow::FtpTls;

struct World {
    ftpd: Ftpd,
    dir: TempDir,
}

impl World {
    fn new(ftpd: Option<Ftpd>) -> Option<World> {
        let w = World { ftpd: ftpd?, dir: tempdir() };
        for d in ["outbox", "acks"] {
            fs::create_dir_all(w.local(d)).unwrap();
        }
        for d in ["inbox", "outbox"] {
            fs::create_dir_all(w.ftpd.data_dir().join(d)).unwrap();
        }
        w.ftpd.give_to_user(w.ftpd.data_dir());
        Some(w)
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.ftpd.data_dir().join(rel)
    }

    fn flow(&self) -> PathBuf {
        let yaml = format!(
            "name: orders\nendpoints:\n  outbox:\n    type: local\n    root: {outbox:?}\n  partner:\n{ep}  acks:\n    type: local\n    root: {acks:?}\n\
             source:\n  endpoint: outbox\n  path: /\nsinks:\n  - endpoint: partner\n    path: /inbox\nafter: {{ success: delete }}\n\
             response:\n  path: /outbox\n  name: \"{{{{stem}}}}.ack\"\n  deadline: 1h\n  sinks:\n    - endpoint: acks\n      path: /\n  after: delete\n",
            outbox = self.local("outbox").display().to_string(),
            acks = self.local("acks").display().to_string(),
            ep = self.ftpd.endpoint_yaml(FtpTls::None, 4),
        );
        let p = self.local("flow.yaml");
        fs::write(&p, yaml).unwrap();
        p
    }

    /// `wharf ARGS… --json FLOW` (the flow written by [`World::flow`]): exit code and output.
    fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("--state-dir")
            .arg(self.local("state"))
            .args(args)
            .arg("--json")
            .arg(self.local("flow.yaml"))
            .env("RUST_LOG", "wharf=error")
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
        (out.status.code().unwrap_or(-1), v)
    }

    /// The partner writes `name` into its /outbox, last written `ago` before now.
    fn answer(&self, name: &str, body: &str, ago: Duration) {
        let p = self.remote(&format!("outbox/{name}"));
        fs::write(&p, body).unwrap();
        fs::File::options().write(true).open(&p).unwrap().set_modified(SystemTime::now() - ago).unwrap();
        self.ftpd.give_to_user(&self.remote("outbox"));
    }
}

fn responses(r: &Value, field: &str) -> Vec<String> {
    r["responses"].as_array().unwrap().iter().map(|x| x[field].as_str().unwrap().to_string()).collect()
}

fn round_trip(ftpd: Option<Ftpd>) {
    let Some(w) = World::new(ftpd) else { return };
    w.flow();
    // b's ack is two days old: an earlier exchange's, left there.
    w.answer("b.ack", "old ack", Duration::from_secs(2 * 86_400));
    for o in ["a", "b"] {
        fs::write(w.local(&format!("outbox/{o}.csv")), "order\n").unwrap();
    }
    let (code, r) = w.json(&["run"]);
    assert_eq!((code, responses(&r, "state")), (0, vec!["waiting".to_string(), "waiting".to_string()]), "{r:#}");
    assert!(r["responses"][1]["detail"].as_str().unwrap().contains("before the request was sent"), "{r:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.csv")).unwrap(), "order\n");

    w.answer("a.ack", "ack a", Duration::from_secs(5));
    let (code, p) = w.json(&["plan"]);
    assert_eq!(code, 0, "{p:#}");
    assert_eq!(responses(&p, "becomes"), ["answered", "waiting"], "{p:#}");
    assert_eq!(p["responses"][0]["targets"], serde_json::json!(["acks:/a.ack"]), "{p:#}");
    let (code, r) = w.json(&["run"]);
    assert_eq!((code, responses(&r, "state")), (0, vec!["answered".to_string(), "waiting".to_string()]), "{r:#}");
    assert_eq!(fs::read_to_string(w.local("acks/a.ack")).unwrap(), "ack a");
    assert!(!w.remote("outbox/a.ack").exists(), "removed from the server");
    assert_eq!(fs::read_to_string(w.remote("outbox/b.ack")).unwrap(), "old ack", "not taken");
}

#[test]
fn an_ack_is_matched_by_the_ftp_listing_and_an_old_one_left_vsftpd() {
    round_trip(Ftpd::vsftpd());
}

#[test]
fn an_ack_is_matched_by_the_ftp_listing_and_an_old_one_left_pure_ftpd_mlsd() {
    round_trip(Ftpd::pure_ftpd());
}

/// A response folder the login may not list (vsftpd refuses to change into it): the run's
/// request is delivered, and the run ends failing with a message that says it was the look for
/// responses that failed, not the run — the awaits stay open, and once the folder can be listed
/// the next run looks. Before, the message was the bare listing error (`list /outbox:
/// permission denied: …`), as if the run had not started.
#[test]
fn a_response_folder_that_cannot_be_listed_says_so_and_the_request_stays_delivered() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    w.flow();
    std::os::unix::fs::chown(w.remote("outbox"), Some(0), Some(0)).unwrap();
    fs::set_permissions(w.remote("outbox"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(w.local("outbox/a.csv"), "order\n").unwrap();
    let (code, r) = w.json(&["run"]);
    let error = r["error"].as_str().unwrap_or_default();
    assert_eq!((code, r["counts"]["delivered"].as_u64()), (3, Some(1)), "{r:#}");
    assert!(error.starts_with("flow orders: could not look for the responses of 1 open await(s) in /outbox: ftp "), "{error}");
    assert!(error.contains("list /outbox: permission denied"), "{error}");
    assert!(error.ends_with("the run's files are done as reported, the awaits stay open and the next run looks again"), "{error}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.csv")).unwrap(), "order\n");
    w.ftpd.give_to_user(&w.remote("outbox"));
    let (code, r) = w.json(&["run"]);
    assert_eq!((code, responses(&r, "state")), (0, vec!["waiting".to_string()]), "{r:#}");
}

/// The partner's `/outbox` read-only for the login (vsftpd refuses `DELE` there): the ack is
/// delivered to `acks` and its await answered; the refused delete is the response's failure
/// (exit 1, the folder's permissions named), tried again by the next run without delivering the
/// ack twice, and done once the login may delete there. Before, the await stayed `waiting`.
#[test]
fn an_ack_the_ftp_server_will_not_delete_answers_its_await() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    w.flow();
    fs::write(w.local("outbox/a.csv"), "order\n").unwrap();
    let (code, _) = w.json(&["run"]);
    assert_eq!(code, 0);
    w.answer("a.ack", "ack a", Duration::from_secs(5));
    fs::set_permissions(w.remote("outbox"), fs::Permissions::from_mode(0o555)).unwrap();
    for _ in 0..2 {
        let (code, r) = w.json(&["run"]);
        assert_eq!((code, responses(&r, "state")), (1, vec!["answered".to_string()]), "{r:#}");
        let detail = r["responses"][0]["file"]["detail"].as_str().unwrap();
        assert!(detail.starts_with("delivered to acks:/a.ack, but `response.after` failed: "), "{detail}");
        assert!(detail.contains("check the folder's permissions"), "{detail}");
        assert_eq!(fs::read_dir(w.local("acks")).unwrap().count(), 1, "delivered once: {r:#}");
    }
    fs::set_permissions(w.remote("outbox"), fs::Permissions::from_mode(0o755)).unwrap();
    let (code, r) = w.json(&["run"]);
    assert_eq!((code, responses(&r, "state")), (0, vec!["answered".to_string()]), "{r:#}");
    assert!(!w.remote("outbox/a.ack").exists(), "{r:#}");
    let (code, r) = w.json(&["run"]);
    assert_eq!((code, responses(&r, "state")), (0, Vec::<String>::new()), "{r:#}");
}

/// With `response.ignore_case: true` over FTP (vsftpd), the partner answering `a.csv` with
/// `A.ACK` answers the request awaiting `a.ack`, as `wharf plan` foresees: delivered, removed
/// from the server, the await recorded under `A.ACK`. Before, it waited until it expired.
#[test]
fn with_ignore_case_an_ack_in_another_case_answers_its_request() {
    let Some(w) = World::new(Ftpd::vsftpd()) else { return };
    let flow = w.flow();
    fs::write(
        &flow,
        fs::read_to_string(&flow).unwrap().replace("response:\n  path: /outbox\n", "response:\n  path: /outbox\n  ignore_case: true\n"),
    )
    .unwrap();
    fs::write(w.local("outbox/a.csv"), "order\n").unwrap();
    let (code, r) = w.json(&["run"]);
    assert_eq!((code, responses(&r, "state")), (0, vec!["waiting".to_string()]), "{r:#}");
    w.answer("A.ACK", "ack a", Duration::from_secs(5));
    let (code, p) = w.json(&["plan"]);
    assert_eq!(
        (code, responses(&p, "becomes"), responses(&p, "expected")),
        (0, vec!["answered".to_string()], vec!["outbox/A.ACK".to_string()]),
        "{p:#}"
    );
    let (code, r) = w.json(&["run"]);
    assert_eq!(
        (code, responses(&r, "state"), responses(&r, "expected")),
        (0, vec!["answered".to_string()], vec!["outbox/A.ACK".to_string()]),
        "{r:#}"
    );
    assert_eq!(fs::read_to_string(w.local("acks/A.ACK")).unwrap(), "ack a");
    assert!(!w.remote("outbox/A.ACK").exists());
}
