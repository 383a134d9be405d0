//! Rolling wharf back after an upgrade: a ledger a newer layout wrote is refused by every
//! command, saying what to do, and left byte for byte as it was — this wharf does not create
//! its own empty tables in it and deliver again what the newer one delivered.

use crate::support::{self, stderr, stdout};

use std::path::Path;
use std::process::Output;

use wharf::ledger::layout::{LAYOUT, VERSION};

fn wharf(state: &Path, args: &[&str]) -> Output {
    support::wharf(state).args(args).output().expect("run wharf")
}

#[test]
fn a_ledger_written_by_a_newer_layout_is_refused_by_run_and_status_and_left_untouched() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    let flow = support::local_flow(dir.path(), "partner", &dir.path().join("partner"));
    std::fs::write(dir.path().join("partner/outbox/a.csv"), "1\n").unwrap();
    let flow = flow.to_str().unwrap();
    let ran = wharf(&state, &["run", flow]);
    assert_eq!(ran.status.code(), Some(0), "{}{}", stdout(&ran), stderr(&ran));
    // `wharf status --json` says which layout and version wrote the ledger: this one.
    let flows = dir.path().join("flows");
    let status = wharf(&state, &["status", "--flows", flows.to_str().unwrap(), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&status)));
    let ledger = state.join("ledger.redb");
    assert_eq!(v["ledger"], serde_json::json!({ "path": ledger.to_str().unwrap(), "layout": LAYOUT, "written_by": VERSION }), "{v}");
    let version = wharf(&state, &["--version"]);
    assert_eq!(stdout(&version).trim(), format!("wharf {VERSION}"), "`--version` agrees with the marker");

    // A newer wharf opened it since: its marker (the table and key every version reads).
    {
        let db = redb::Database::create(&ledger).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("meta");
        let mut t = tx.open_table(meta).unwrap();
        t.insert("layout", (LAYOUT + 1).to_string().as_str()).unwrap();
        t.insert("written_by", "9.9.9").unwrap();
        drop(t);
        tx.commit().unwrap();
    }
    let before = std::fs::read(&ledger).unwrap();
    let expected = format!(
        "ledger {}: last written by wharf 9.9.9, of ledger layout {}; this wharf, {VERSION}, knows layouts up to {LAYOUT}",
        ledger.display(),
        LAYOUT + 1
    );
    let advice = "run that newer wharf again or restore the state folder's backup taken before the upgrade";
    for args in [vec!["run", flow], vec!["status", "--flows", flows.to_str().unwrap()], vec!["runs"]] {
        let refused = wharf(&state, &args);
        assert_eq!(refused.status.code(), Some(3), "{args:?}: {}{}", stdout(&refused), stderr(&refused));
        for part in [&expected, advice] {
            assert!(stderr(&refused).contains(part), "{args:?}: {part:?} not in {}", stderr(&refused));
        }
    }
    // The run names its flow, and `--json` gives the kind of the other ledger errors.
    assert!(stderr(&wharf(&state, &["run", flow])).contains("flow partner"));
    let (code, v) = support::json_of(support::wharf(&state).args(["runs", "--json"]));
    assert_eq!((code, v["error"]["kind"].as_str()), (3, Some("state")), "{v}");
    assert!(std::fs::read(&ledger).unwrap() == before, "the ledger is byte-identical");
}
