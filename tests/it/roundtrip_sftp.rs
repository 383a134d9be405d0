//! Round trips end to end through the `wharf` binary against a real OpenSSH sshd: a local
//! outbox of orders is pushed to the partner's `/inbox`, and every order awaits the partner's
//! acknowledgement `/outbox/{{stem}}.ack`, which is matched, delivered to a local `acks`
//! folder and removed from the server — on time, late after an overdue, and after a SIGKILL.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::sshd::Sshd;
use support::{TempDir, tempdir};

/// One test's world: a server, local outbox / acks / state folders and a flow file.
struct World {
    sshd: Sshd,
    dir: TempDir,
}

impl World {
    fn new() -> Option<World> {
        let sshd = Sshd::start()?;
        let w = World { sshd, dir: tempdir() };
        for d in ["outbox", "acks"] {
            fs::create_dir_all(w.local(d)).unwrap();
        }
        for d in ["inbox", "outbox"] {
            fs::create_dir_all(w.remote(d)).unwrap();
        }
        w.sshd.give_to_user(w.sshd.data_dir());
        Some(w)
    }

    fn local(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn remote(&self, rel: &str) -> PathBuf {
        self.sshd.data_dir().join(rel)
    }

    /// Writes the flow: local outbox → partner /inbox, responses `name` awaited in /outbox.
    fn flow(&self, name: &str, deadline: &str) -> PathBuf {
        self.flow_with(name, deadline, "[\"*.csv\"]", "")
    }

    /// The same, taking the source files `include` and with `sink` added to the partner sink.
    fn flow_with(&self, name: &str, deadline: &str, include: &str, sink: &str) -> PathBuf {
        let yaml = format!(
            "name: orders\nendpoints:\n  outbox:\n    type: local\n    root: {outbox:?}\n  partner:\n{ep}  acks:\n    type: local\n    root: {acks:?}\n\
             source:\n  endpoint: outbox\n  path: /\n  include: {include}\nsinks:\n  - endpoint: partner\n    path: /inbox\n{sink}\
             after: {{ success: delete }}\nresponse:\n  path: /outbox\n  name: \"{name}\"\n  deadline: {deadline}\n  sinks:\n    - endpoint: acks\n      path: /\n  after: delete\n",
            outbox = self.local("outbox").display().to_string(),
            acks = self.local("acks").display().to_string(),
            ep = self.sshd.endpoint_yaml(4),
        );
        let p = self.local("flow.yaml");
        fs::write(&p, yaml).unwrap();
        p
    }

    fn wharf(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_wharf"));
        c.arg("--state-dir").arg(self.local("state")).env_remove("WHARF_TEST_HALT_AT").env("RUST_LOG", "wharf=error");
        c
    }

    /// `wharf run --json`: exit code and report.
    fn run(&self, flow: &Path) -> (i32, Value) {
        let out = self.wharf().arg("run").arg("--json").arg(flow).output().unwrap();
        (out.status.code().unwrap_or(-1), json(&out))
    }

    /// `wharf plan --json`, which must succeed.
    fn plan(&self, flow: &Path) -> Value {
        let out = self.wharf().arg("plan").arg("--json").arg(flow).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        json(&out)
    }

    /// `wharf SUBCOMMAND orders --json`.
    fn list(&self, sub: &str) -> Vec<Value> {
        let out = self.wharf().args([sub, "orders", "--json"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        json(&out).as_array().unwrap().clone()
    }

    /// The partner writes `name` into its /outbox.
    fn answer(&self, name: &str, body: &str) {
        fs::write(self.remote(&format!("outbox/{name}")), body).unwrap();
        self.sshd.give_to_user(&self.remote("outbox"));
    }
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The state of each response line of a run report.
fn states(r: &Value) -> Vec<&str> {
    r["responses"].as_array().unwrap().iter().map(|x| x["state"].as_str().unwrap()).collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

#[test]
fn an_ack_is_awaited_across_runs_then_matched_delivered_and_removed() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("{{stem}}.ack", "30m");
    fs::write(w.local("outbox/order_1.csv"), "id;qty\n1;2\n").unwrap();

    let (code, r) = w.run(&flow);
    assert_eq!((code, r["counts"]["delivered"].as_u64(), states(&r)), (0, Some(1), vec!["waiting"]), "{r:#}");
    assert_eq!(r["responses"][0]["expected"], "outbox/order_1.ack", "{r:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/order_1.csv")).unwrap(), "id;qty\n1;2\n");
    for _ in 0..2 {
        let (code, r) = w.run(&flow);
        assert_eq!((code, r["counts"]["delivered"].as_u64(), states(&r)), (0, Some(0), vec!["waiting"]), "{r:#}");
    }
    assert_eq!(fs::read_dir(w.local("acks")).unwrap().count(), 0);

    w.answer("order_1.ack", "ACK order_1\n");
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["answered"]), "{r:#}");
    assert_eq!(r["responses"][0]["file"]["outcome"], "delivered", "{r:#}");
    let run4 = r["run"].as_u64().unwrap();
    assert_eq!(fs::read_to_string(w.local("acks/order_1.ack")).unwrap(), "ACK order_1\n");
    assert!(!w.remote("outbox/order_1.ack").exists(), "the ack is removed from the server (after: delete)");

    let awaits = w.list("awaits");
    assert_eq!(awaits.len(), 1, "{awaits:#?}");
    let a = &awaits[0];
    assert_eq!(
        (a["request"].as_str(), a["expected"].as_str(), a["state"].as_str()),
        (Some("order_1.csv"), Some("outbox/order_1.ack"), Some("answered"))
    );
    assert_eq!(
        (a["request_target"].as_str(), a["request_run"].as_u64(), a["response_run"].as_u64()),
        (Some("partner:/inbox/order_1.csv"), Some(1), Some(run4))
    );
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("an RFC 3339 time: {v}"))).unwrap();
    assert!(time(&a["answered_at"]) >= time(&a["sent_at"]));
    assert!(a["deadline_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{a}");
    assert!(w.list("events").is_empty());

    // Answered: nothing more to poll, and the text views say so.
    let (_, r) = w.run(&flow);
    assert_eq!(states(&r), Vec::<&str>::new(), "{r:#}");
    let text = String::from_utf8_lossy(&w.wharf().args(["awaits", "orders"]).output().unwrap().stdout).to_string();
    assert!(text.contains("answered") && text.contains("/outbox/order_1.ack") && text.contains("/order_1.csv"), "{text}");
}

/// A response its steps refuse is put aside in quarantine, and the run counts it so: in the
/// report's `quarantined`, in `wharf runs` (JSON and text), as a file of
/// the run's own would be. (It said 0 quarantined: only the flow's files were counted.)
#[test]
fn a_response_put_aside_in_quarantine_is_counted_quarantined() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("{{stem}}.ack", "30m");
    let yaml = fs::read_to_string(&flow).unwrap().replace(
        "  after: delete\n",
        "  steps: [ { check: { non_empty: true } } ]\n  quarantine: { endpoint: partner, path: /refused }\n  after: delete\n",
    );
    fs::write(&flow, yaml).unwrap();
    fs::write(w.local("outbox/order_1.csv"), "id;qty\n1;2\n").unwrap();
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["waiting"]), "{r:#}");

    w.answer("order_1.ack", "");
    let (code, r) = w.run(&flow);
    assert_eq!((states(&r), r["responses"][0]["file"]["outcome"].as_str()), (vec!["rejected"], Some("quarantined")), "{r:#}");
    assert_eq!((code, r["quarantined"].as_u64(), r["counts"]["failed"].as_u64()), (0, Some(1), Some(0)), "{r:#}");
    assert!(w.remote("refused/order_1.ack").exists(), "the copy is in quarantine");
    let runs = w.list("runs");
    let last = runs.iter().find(|x| x["id"] == r["run"]).unwrap_or_else(|| panic!("{runs:#?}"));
    assert_eq!(last["quarantined"].as_u64(), Some(1), "{last:#}");
    let text = String::from_utf8_lossy(&w.wharf().args(["runs", "orders"]).output().unwrap().stdout).to_string();
    let row = text.lines().find(|l| l.trim_start().starts_with(&r["run"].to_string())).unwrap_or_else(|| panic!("{text}"));
    // run, flow, started (2), took, status, seen, wait, deliv, skip, fail, quar.
    assert_eq!(row.split_whitespace().nth(11), Some("1"), "{text}");
}

/// `a.csv` and `a.xml` both expect `a.ack`: `a.xml` stays in the outbox until `a.csv`'s ack
/// came. `b.csv` finds somebody's `b.csv` in the partner's inbox, left as it was (`if_exists:
/// skip`): not sent, so no ack awaited (an old `b.ack` there is not taken for it).
#[test]
fn a_request_waits_for_its_response_name_and_one_left_alone_is_not_awaited() {
    let Some(w) = World::new() else { return };
    let flow = w.flow_with("{{stem}}.ack", "30m", "[\"*.csv\", \"*.xml\"]", "    if_exists: skip\n");
    fs::write(w.local("outbox/a.csv"), "order a\n").unwrap();
    fs::write(w.local("outbox/a.xml"), "<order/>\n").unwrap();
    fs::write(w.local("outbox/b.csv"), "order b\n").unwrap();
    fs::write(w.remote("inbox/b.csv"), "somebody's\n").unwrap();
    w.sshd.give_to_user(&w.remote("inbox"));
    w.answer("b.ack", "ACK somebody's\n");

    let (code, r) = w.run(&flow);
    assert_eq!((code, r["counts"]["delivered"].as_u64(), r["counts"]["not_ready"].as_u64()), (0, Some(2), Some(1)), "{r:#}");
    let file = |r: &Value, name: &str| {
        r["files"].as_array().unwrap().iter().find(|f| f["path"].as_str().unwrap().ends_with(name)).cloned().unwrap()
    };
    let held = file(&r, "a.xml");
    assert_eq!(held["outcome"], "not_ready", "{r:#}");
    assert!(held["detail"].as_str().unwrap().contains("its response /outbox/a.ack would also answer /a.csv"), "{held:#}");
    assert!(w.local("outbox/a.xml").exists() && !w.remote("inbox/a.xml").exists());
    assert!(file(&r, "b.csv")["detail"].as_str().unwrap().contains("the request was not sent, so no response is awaited"), "{r:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/b.csv")).unwrap(), "somebody's\n");
    let awaited = |w: &World| {
        w.list("awaits")
            .iter()
            .map(|a| (a["request"].as_str().unwrap().to_string(), a["state"].as_str().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(awaited(&w), [("a.csv".to_string(), "waiting".to_string())]);
    assert!(w.remote("outbox/b.ack").exists(), "not taken: no request awaits it");

    // The run that takes the answer sends a.xml after it (not a run later); the answer it
    // took for a.csv is not a.xml's, in the next run either.
    w.answer("a.ack", "ACK a\n");
    let (_, r) = w.run(&flow);
    assert_eq!(file(&r, "a.xml")["outcome"], "delivered", "{r:#}");
    assert_eq!(states(&r), ["answered", "waiting"], "{r:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.xml")).unwrap(), "<order/>\n");
    let (_, r) = w.run(&flow);
    assert_eq!(states(&r), ["waiting"], "{r:#}");
    assert_eq!(awaited(&w), [("a.xml".to_string(), "waiting".to_string())], "{r:#}");
}

#[test]
fn a_missing_ack_is_overdue_once_and_a_late_one_is_matched() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("{{stem}}.ack", "1s");
    fs::write(w.local("outbox/order_2.csv"), "x\n").unwrap();
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["waiting"]), "{r:#}");
    std::thread::sleep(Duration::from_millis(1200));
    // `wharf plan` says so beforehand, from the server's listing, and records nothing.
    let p = w.plan(&flow);
    let planned =
        |p: &Value| (p["responses"][0]["state"].as_str().map(str::to_string), p["responses"][0]["becomes"].as_str().map(str::to_string));
    assert_eq!(planned(&p), (Some("waiting".into()), Some("overdue".into())), "{p:#}");
    assert_eq!(p["responses"][0]["events"], serde_json::json!(["overdue"]), "{p:#}");

    // Overdue is not a failed run, but it is printed clearly.
    let out = w.wharf().arg("run").arg(&flow).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("overdue") && text.contains("OVERDUE since") && text.contains("/outbox/order_2.ack"), "{text}");
    for _ in 0..2 {
        let (code, r) = w.run(&flow);
        assert_eq!((code, r["status"].as_str(), states(&r)), (0, Some("ok"), vec!["overdue"]), "{r:#}");
    }
    let events = w.list("events");
    assert_eq!(kinds(&events), ["overdue"], "exactly one overdue event after three runs: {events:#?}");
    assert_eq!(events[0]["subject"], "order_2.csv");
    assert_eq!(events[0]["run"].as_u64(), Some(2), "the run that found it overdue: {events:#?}");
    let text = String::from_utf8_lossy(&w.wharf().args(["events", "orders"]).output().unwrap().stdout).to_string();
    let line = text.lines().find(|l| l.contains("overdue")).unwrap_or_default();
    // seq, at (date and time), flow, run, kind…
    assert_eq!(line.split_whitespace().nth(4), Some("2"), "{text}");

    w.answer("order_2.ack", "late ack");
    let p = w.plan(&flow);
    assert_eq!(planned(&p), (Some("overdue".into()), Some("late".into())), "{p:#}");
    assert_eq!(p["responses"][0]["targets"], serde_json::json!(["acks:/order_2.ack"]), "{p:#}");
    assert!(w.remote("outbox/order_2.ack").exists() && !w.local("acks/order_2.ack").exists(), "a plan takes nothing");
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["late"]), "{r:#}");
    assert_eq!(fs::read_to_string(w.local("acks/order_2.ack")).unwrap(), "late ack");
    let events = w.list("events");
    assert_eq!(kinds(&events), ["overdue", "late"], "{events:#?}");
    assert_eq!(events[1]["run"], r["run"], "{events:#?}");
    assert!(events[1]["seq"].as_u64() > events[0]["seq"].as_u64());
    let at = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap_or_else(|| panic!("an RFC 3339 time: {e}"))).unwrap();
    assert!(at(&events[1]) >= at(&events[0]), "{events:#?}");
    let awaits = w.list("awaits");
    assert_eq!((awaits.len(), awaits[0]["state"].as_str()), (1, Some("late")), "{awaits:#?}");
}

/// `wharf plan` says, under the request it delivers, the response it then awaits (where, due
/// and given up when); and, of an await past its deadline and its expiry that no run looked
/// at, that the run records it overdue, then expired — as the run does.
#[test]
fn plan_tells_each_await_from_sending_to_expiry_as_the_run_does() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("{{stem}}.ack", "1s\n  expire_after: 2s");
    fs::write(w.local("outbox/order_1.csv"), "x\n").unwrap();
    let plan_text = || {
        let out = w.wharf().arg("plan").arg(&flow).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let text = plan_text();
    let deliver = text.lines().position(|l| l.trim_start().starts_with("deliver   /order_1.csv")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        text.lines().nth(deliver + 1).map(str::trim),
        Some("awaits partner:/outbox/order_1.ack, due within 1s of sending (until 2s after)"),
        "{text}"
    );
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["waiting"]), "{r:#}");
    std::thread::sleep(Duration::from_millis(2200));
    let text = plan_text();
    assert!(
        text.contains(
            "response  /outbox/order_1.ack (request /order_1.csv), waiting → overdue → expired (events overdue, expired): EXPIRED"
        ),
        "{text}"
    );
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["expired"]), "{r:#}");
    assert_eq!(kinds(&w.list("events")), ["overdue", "expired"]);
}

/// Kills `wharf run` at `point` while two orders are pushed, reruns, and checks each order
/// awaits exactly one response, which is then matched.
fn crash_and_recover(point: &str) {
    let Some(w) = World::new() else { return };
    // `{{run}}` in the name: a resumed run would render another name, so only the
    // registration's idempotence keeps one await per order.
    let flow = w.flow("{{stem}}-r{{run}}.ack", "30m");
    for n in ["a", "b"] {
        fs::write(w.local(&format!("outbox/{n}.csv")), n).unwrap();
    }
    let mut cmd = w.wharf();
    cmd.arg("run").arg(&flow);
    support::halt::run_and_kill_at(cmd, point, Duration::from_secs(60));
    let (code, r) = w.run(&flow);
    assert_eq!(code, 0, "{r:#}");
    for _ in 0..2 {
        w.run(&flow);
    }
    let awaits = w.list("awaits");
    let mut requests: Vec<&str> = awaits.iter().map(|a| a["request"].as_str().unwrap()).collect();
    requests.sort();
    assert_eq!(requests, ["a.csv", "b.csv"], "one await per order after a kill at {point}: {awaits:#?}");
    assert!(fs::read_dir(w.local("outbox")).unwrap().next().is_none(), "both orders disposed of");
    for a in &awaits {
        let expected = a["expected"].as_str().unwrap();
        w.answer(expected.strip_prefix("outbox/").unwrap(), "ok");
    }
    let (_, r) = w.run(&flow);
    assert_eq!(states(&r), ["answered", "answered"], "{r:#}");
    assert_eq!(fs::read_dir(w.local("acks")).unwrap().count(), 2);
}

/// Killed with the order under its final name on the partner's server, before the ledger
/// knows (so before its await is registered).
#[test]
fn sigkill_between_delivery_and_registration_still_awaits_exactly_once() {
    crash_and_recover("renamed");
}

/// Killed with every sink confirmed and the await registered, before the disposition.
#[test]
fn sigkill_after_delivery_does_not_await_twice() {
    crash_and_recover("delivered");
}

#[test]
fn sigkill_after_registration_does_not_await_twice() {
    crash_and_recover("disposing");
}

/// An ack that never comes, to a flow without `expire_after`: `a.xml`, expecting the same
/// `a.ack` as `a.csv`, waits for good — until the operator closes `a.csv`'s await by hand.
/// The dry run changes nothing; `--yes` expires it (no event), and the next run sends `a.xml`.
#[test]
fn a_request_held_back_goes_out_once_the_await_is_closed_by_hand() {
    let Some(w) = World::new() else { return };
    let flow = w.flow_with("{{stem}}.ack", "30m", "[\"*.csv\", \"*.xml\"]", "");
    fs::write(w.local("outbox/a.csv"), "order a\n").unwrap();
    fs::write(w.local("outbox/a.xml"), "<order/>\n").unwrap();
    let (_, r) = w.run(&flow);
    assert_eq!(r["counts"]["not_ready"].as_u64(), Some(1), "{r:#}");
    let (_, r) = w.run(&flow);
    let held = r["files"].as_array().unwrap().iter().find(|f| f["path"].as_str().unwrap().ends_with("a.xml")).unwrap();
    assert!(held["detail"].as_str().unwrap().ends_with("`wharf awaits close orders /a.csv` gives up waiting"), "{held:#}");
    let close = |args: &[&str]| w.wharf().args(["awaits", "close"]).args(args).output().unwrap();
    let text = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));

    // Not awaited, or a typo: exit 2, naming the flow, the request and the open awaits.
    let unknown = close(&["orders", "/b.csv"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(
        text(&unknown)
            .contains("flow orders: request /b.csv has no await; open awaits of the flow: /a.csv (waiting, response /outbox/a.ack)"),
        "{}",
        text(&unknown)
    );

    // The dry run (the flow file names the flow; the request with or without its `/`).
    let dry = close(&[flow.to_str().unwrap(), "a.csv"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(text(&dry).contains("flow orders: would close the await of request /a.csv (waiting, sent "), "{}", text(&dry));
    assert!(text(&dry).contains("run again with --yes"), "{}", text(&dry));
    assert_eq!(w.list("awaits")[0]["state"], "waiting");

    let closed = close(&["orders", "/a.csv", "--yes", "--json"]);
    assert_eq!(closed.status.code(), Some(0), "{}", text(&closed));
    let report = json(&closed);
    assert_eq!((report["closed"].as_bool(), report["awaits"].as_array().map(Vec::len)), (Some(true), Some(1)), "{report:#}");
    let a = &w.list("awaits")[0];
    assert_eq!(a["state"], "expired", "{a:#}");
    assert!(a["detail"].as_str().unwrap().starts_with("closed by hand (`wharf awaits close`) on "), "{a:#}");
    assert!(w.list("events").is_empty(), "no event for an await closed by hand");

    // Closed: a second close is refused, saying how it closed.
    let again = close(&["orders", "a.csv", "--yes"]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("flow orders: the await of request /a.csv is not open, nothing to close: expired"), "{}", text(&again));

    let (_, r) = w.run(&flow);
    assert_eq!(r["counts"]["delivered"].as_u64(), Some(1), "{r:#}");
    assert_eq!(fs::read_to_string(w.remote("inbox/a.xml")).unwrap(), "<order/>\n");
    let a = &w.list("awaits")[0];
    assert_eq!((a["request"].as_str(), a["state"].as_str()), (Some("a.xml"), Some("waiting")), "{a:#}");
}

/// Closing by hand writes the ledger: refused while `wharf serve` holds it (the dry run
/// works beside it, and says to stop the daemon first).
#[test]
fn closing_an_await_by_hand_is_refused_while_serve_holds_the_ledger() {
    use wharf::control::discovery::ServeInfo;
    use wharf::ledger::{AwaitRecord, Ledger};
    let dir = tempdir();
    let state = dir.path().join("state");
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    let rec = AwaitRecord {
        flow: "orders".into(),
        request: "a.csv".into(),
        request_identity: "p=a.csv".into(),
        expected: "outbox/a.ack".into(),
        sent_at: 1_000,
        deadline_at: 2_000,
        ..Default::default()
    };
    ledger.register_await(&rec).unwrap();
    let socket = state.join("wharf.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let info = ServeInfo { pid: std::process::id(), socket, http: None, started_at: chrono::Utc::now(), version: "test".into() };
    info.write(&ServeInfo::path_in(&state)).unwrap();
    let close = |yes: bool| {
        let mut c = support::wharf(&state);
        c.args(["awaits", "close", "orders", "/a.csv"]);
        if yes {
            c.arg("--yes");
        }
        c.output().unwrap()
    };

    let dry = close(false);
    assert_eq!(dry.status.code(), Some(0), "{}", support::stderr(&dry));
    assert!(support::stdout(&dry).contains("--yes`; stop `wharf serve` first: it holds the ledger)"), "{}", support::stdout(&dry));
    let held = close(true);
    assert_eq!(held.status.code(), Some(3), "{}", support::stderr(&held));
    let expected = format!("flow orders: the ledger at {} is held by `wharf serve`", state.join("ledger.redb").display());
    assert!(support::stderr(&held).contains(&expected), "{}", support::stderr(&held));
    assert!(support::stderr(&held).contains("; stop the daemon to close an await by hand"), "{}", support::stderr(&held));
    assert_eq!(ledger.awaited("orders", "outbox/a.ack").unwrap().unwrap().state, wharf::ledger::AwaitState::Waiting);
}

/// An await whose response a run began to take (half delivered: a crash between the sinks, or
/// one sink refusing it after another confirmed it) is not closed by hand, with or without
/// `--yes` (exit 2, saying why and what to do): the answer came, and the next run finishes
/// taking it and closes the await. Closed, the response would stay half delivered for good
/// (its own record in flight), or be taken later as the answer to another request. A response
/// that failed before any sink had it does not stand in the way.
#[test]
fn an_await_whose_response_is_half_delivered_is_not_closed_by_hand() {
    use wharf::ledger::{AwaitRecord, AwaitState, Delivery, FileRecord, FileState, Ledger};
    let dir = tempdir();
    let state = dir.path().join("state");
    let put = |rec: Option<FileRecord>| {
        let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
        let a = AwaitRecord {
            flow: "orders".into(),
            request: "a.csv".into(),
            request_identity: "p=a.csv".into(),
            request_run: 2,
            answerable_from: 2,
            expected: "outbox/a.ack".into(),
            sent_at: 1_000,
            deadline_at: 2_000,
            ..Default::default()
        };
        ledger.register_await(&a).unwrap();
        if let Some(rec) = rec {
            ledger.put_file("orders.response", &rec).unwrap();
        }
    };
    let close = |yes: bool| {
        let mut c = support::wharf(&state);
        c.args(["awaits", "close", "orders", "/a.csv"]);
        if yes {
            c.arg("--yes");
        }
        c.output().unwrap()
    };
    let delivered = |done: bool| Delivery { sink: 0, target: "a.ack".into(), done, replaces: None };
    let taking = FileRecord {
        path: "outbox/a.ack".into(),
        identity: "p=outbox/a.ack|s=3".into(),
        size: 3,
        state: FileState::Delivering,
        run: 3,
        updated: 5_000,
        deliveries: vec![delivered(true), Delivery { sink: 1, ..delivered(false) }],
        ..Default::default()
    };
    for rec in [taking.clone(), FileRecord { state: FileState::Failed, ..taking.clone() }] {
        put(Some(rec.clone()));
        for yes in [false, true] {
            let out = close(yes);
            assert_eq!(out.status.code(), Some(2), "{yes}: {}", support::stderr(&out));
            let err = support::stderr(&out);
            let why = format!(
                "flow orders: the await of request /a.csv is not closed: its response /outbox/a.ack came, and run 3 began to take it ({}, 1 of its deliveries confirmed, since ",
                rec.state.as_str()
            );
            assert!(err.contains(&why), "{err}");
            assert!(err.contains("the next run of the flow finishes taking it and closes the await (answered, or late)"), "{err}");
            assert!(err.contains("`wharf files orders.response` shows how far it got"), "{err}");
        }
        let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
        assert_eq!(ledger.awaited("orders", "outbox/a.ack").unwrap().unwrap().state, AwaitState::Waiting);
    }
    // Failed before any sink had it: nothing half done; closed.
    put(Some(FileRecord { state: FileState::Failed, deliveries: vec![delivered(false)], ..taking }));
    let out = close(true);
    assert_eq!(out.status.code(), Some(0), "{}", support::stderr(&out));
    let ledger = Ledger::open(&state.join("ledger.redb")).unwrap();
    assert_eq!(ledger.awaited("orders", "outbox/a.ack").unwrap().unwrap().state, AwaitState::Expired);
}

/// The partner's `/outbox` read-only for the login: the ack is delivered to `acks`, but the
/// server refuses to delete it. The await is answered (the partner answered in time); the run
/// fails with the response's own failure, naming the flow, the file, the cause and the folder
/// permissions to check; later runs try the delete again without delivering the ack twice, and
/// `a.xml`, which awaits the same name, waits until the old ack is gone — then goes in the run
/// that deletes it, and is not answered by it. `wharf awaits` and `wharf plan` say the same.
/// Before, the await stayed `waiting` for as long as the server refused.
#[test]
fn an_ack_the_server_will_not_let_go_answers_its_await_and_is_deleted_once_it_may_be() {
    use std::os::unix::fs::PermissionsExt;
    let Some(w) = World::new() else { return };
    let flow = w.flow_with("{{stem}}.ack", "30m", "[\"*.csv\", \"*.xml\"]", "");
    fs::write(w.local("outbox/a.csv"), "order a\n").unwrap();
    fs::write(w.local("outbox/a.xml"), "<order/>\n").unwrap();
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["waiting"]), "{r:#}");
    w.answer("a.ack", "ACK a\n");
    fs::set_permissions(w.remote("outbox"), fs::Permissions::from_mode(0o555)).unwrap();
    let held = |r: &Value| {
        let f = r["files"].as_array().unwrap().iter().find(|f| f["path"] == "/a.xml").cloned().unwrap();
        (f["outcome"].as_str().unwrap().to_string(), f["detail"].as_str().unwrap().to_string())
    };
    for _ in 0..2 {
        let (code, r) = w.run(&flow);
        assert_eq!((code, states(&r)), (1, vec!["answered"]), "{r:#}");
        // Counted as the exit code says: the run failed for the response (it said `0 failed`).
        assert_eq!(r["counts"]["failed"], 1, "{r:#}");
        let runs = w.list("runs");
        assert_eq!(
            (&runs[0]["id"], &runs[0]["status"], &runs[0]["counts"]["failed"]),
            (&r["run"], &r["status"], &r["counts"]["failed"]),
            "{runs:#?}"
        );
        let file = &r["responses"][0]["file"];
        assert_eq!(file["outcome"], "failed", "{r:#}");
        let detail = file["detail"].as_str().unwrap();
        assert!(detail.starts_with("delivered to acks:/a.ack, but `response.after` failed: "), "{detail}");
        assert!(detail.contains("/outbox/a.ack"), "{detail}");
        assert!(detail.contains("the login may not delete files in /outbox (check the folder's permissions for it)"), "{detail}");
        let (outcome, why) = held(&r);
        assert_eq!(outcome, "not_ready", "{r:#}");
        assert!(
            why.starts_with(
                "its response name /outbox/a.ack still holds the answer to /a.csv, taken in run 2 and not deleted from the server yet ("
            ),
            "{why}"
        );
        assert!(why.ends_with("); sent once it is (the partner's answer to this request could not be told from it)"), "{why}");
        assert_eq!(fs::read_dir(w.local("acks")).unwrap().count(), 1, "delivered once: {r:#}");
        assert!(w.remote("outbox/a.ack").exists() && !w.remote("inbox/a.xml").exists());
    }
    let awaits = w.list("awaits");
    assert_eq!(awaits.len(), 1, "{awaits:#?}");
    assert_eq!((awaits[0]["state"].as_str(), awaits[0]["response_run"].as_u64()), (Some("answered"), Some(2)), "{awaits:#?}");
    assert!(awaits[0]["detail"].as_str().unwrap().contains("`response.after` failed"), "{awaits:#?}");
    let text = String::from_utf8_lossy(&w.wharf().args(["awaits", "orders"]).output().unwrap().stdout).to_string();
    assert!(
        text.contains("note: flow orders: the response /outbox/a.ack answered request /a.csv, but is not disposed of on the server yet: "),
        "{text}"
    );
    assert!(text.contains("every run of the flow tries again (`wharf files orders.response`)"), "{text}");
    let p = w.plan(&flow);
    let planned = &p["responses"][0];
    assert_eq!((planned["state"].as_str(), planned["becomes"].as_str()), (Some("answered"), Some("answered")), "{p:#}");
    assert!(planned["detail"].as_str().unwrap().contains("the run tries again, from its record: delete the source"), "{p:#}");
    // No overdue (the partner answered in time): the failure is the response's own.
    let events = w.list("events");
    assert_eq!(kinds(&events), ["failed", "failed"], "{events:#?}");
    assert!(events[0]["detail"].as_str().unwrap().contains("/outbox/a.ack"), "{events:#?}");

    // The login may delete there again: the ack goes, and a.xml after it, in the same run.
    fs::set_permissions(w.remote("outbox"), fs::Permissions::from_mode(0o755)).unwrap();
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["answered", "waiting"]), "{r:#}");
    assert_eq!(held(&r).0, "delivered", "{r:#}");
    assert!(!w.remote("outbox/a.ack").exists());
    assert_eq!(fs::read_to_string(w.remote("inbox/a.xml")).unwrap(), "<order/>\n");
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["waiting"]), "{r:#}");
    assert_eq!(fs::read_dir(w.local("acks")).unwrap().count(), 1);
    let text = String::from_utf8_lossy(&w.wharf().args(["awaits", "orders"]).output().unwrap().stdout).to_string();
    assert!(!text.contains("note:"), "{text}");
}

/// With `response.ignore_case: true` over SFTP, the partner answering `x.csv` with `X.ACK`
/// answers the request awaiting `x.ack` (before, it waited until it expired): delivered,
/// removed from the server, and the await recorded under `X.ACK`. Two named like `y.ack`
/// (`Y.ACK`, `y.Ack`): neither answers, the report says why; one gone, the other answers.
#[test]
fn with_ignore_case_an_ack_in_another_case_answers_its_request() {
    let Some(w) = World::new() else { return };
    let flow = w.flow("{{stem}}.ack", "30m");
    fs::write(
        &flow,
        fs::read_to_string(&flow).unwrap().replace("response:\n  path: /outbox\n", "response:\n  path: /outbox\n  ignore_case: true\n"),
    )
    .unwrap();
    for o in ["x", "y"] {
        fs::write(w.local(&format!("outbox/{o}.csv")), "order\n").unwrap();
    }
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["waiting", "waiting"]), "{r:#}");
    w.answer("X.ACK", "ack x");
    w.answer("Y.ACK", "ack y");
    w.answer("y.Ack", "ack y again");
    let (code, r) = w.run(&flow);
    assert_eq!(code, 0, "{r:#}");
    let of = |request: &str| r["responses"].as_array().unwrap().iter().find(|x| x["request"] == request).unwrap().clone();
    let (x, y) = (of("x.csv"), of("y.csv"));
    assert_eq!((x["state"].as_str(), x["expected"].as_str()), (Some("answered"), Some("outbox/X.ACK")), "{r:#}");
    assert_eq!(fs::read_to_string(w.local("acks/X.ACK")).unwrap(), "ack x");
    assert!(!w.remote("outbox/X.ACK").exists());
    assert_eq!(y["state"], "waiting", "{r:#}");
    assert!(y["detail"].as_str().unwrap().contains("\"Y.ACK\" and \"y.Ack\" are both there, named like it ignoring case"), "{r:#}");
    fs::remove_file(w.remote("outbox/y.Ack")).unwrap();
    let (code, r) = w.run(&flow);
    assert_eq!((code, states(&r)), (0, vec!["answered"]), "{r:#}");
    assert_eq!(fs::read_to_string(w.local("acks/Y.ACK")).unwrap(), "ack y");
}
