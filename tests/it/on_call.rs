//! What the ledger tells the engineer on call, through the `wharf` binary with local folders:
//! everything kept of one file (`wharf files FLOW --path`), and a damaged ledger refused with
//! the way out.

use crate::support;

use std::path::Path;

use super::output::local_flow;

/// The flow `pipe` of [`local_flow`], with `f0.csv` and `f1.csv` waiting, run once.
fn delivered_once(dir: &Path, state: &Path) {
    let flow = local_flow(dir, 2);
    let out = support::wharf(state).arg("run").arg(&flow).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", support::text(&out));
}

#[test]
fn files_path_shows_everything_kept_of_one_file_whatever_the_limit() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    delivered_once(dir.path(), &state);
    // With `--limit 1`, `f0.csv` may be left out of the list; `--path` finds it anyway.
    let out = support::wharf(&state).args(["files", "pipe", "--path", "/f0.csv", "--limit", "1"]).output().unwrap();
    let text = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "file:        /f0.csv (2 bytes, modified ",
        "SHA-256 9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa)",
        "first seen:  ",
        "state:       done since ",
        "(run 1)",
        "delivered:   sink 1: /f0.csv",
        "source:      left at the source",
    ] {
        assert!(text.contains(line), "{line:?} in {text}");
    }
    assert!(!text.contains("f1.csv"), "{text}");
    // Without the leading `/`, and as JSON: the record as `wharf files --json` has it.
    let (code, v) = support::json_of(support::wharf(&state).args(["files", "pipe", "--path", "f0.csv", "--json"]));
    assert_eq!(code, 0);
    let rows = v.as_array().unwrap();
    assert_eq!(
        (rows.len(), rows[0]["path"].as_str(), rows[0]["state"].as_str(), rows[0]["run"].as_u64()),
        (1, Some("f0.csv"), Some("done"), Some(1)),
        "{v:#}"
    );
    // A path never listed says so and why it may be.
    let out = support::wharf(&state).args(["files", "pipe", "--path", "/c.csv"]).output().unwrap();
    let text = support::text(&out);
    assert!(text.contains("flow pipe: no file /c.csv recorded: no run listed it"), "{text}");
    let (_, v) = support::json_of(support::wharf(&state).args(["files", "pipe", "--path", "/c.csv", "--json"]));
    assert_eq!(v, serde_json::json!([]));
}

#[test]
fn a_ledger_cut_short_is_refused_as_damaged_by_every_command_naming_the_way_out() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    delivered_once(dir.path(), &state);
    let ledger = state.join("ledger.redb");
    std::fs::OpenOptions::new().write(true).open(&ledger).unwrap().set_len(20_000).unwrap();
    for args in [&["run", "pipe.yaml"][..], &["runs"], &["files", "pipe"]] {
        let mut cmd = support::wharf(&state);
        cmd.current_dir(dir.path()).args(args);
        if args[0] == "run" {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", support::text(&out));
        assert!(err.contains(&format!("ledger {} is damaged (", ledger.display())), "{args:?}: {err}");
        assert!(err.contains("Restore the state folder") && err.contains("move it aside"), "{args:?}: {err}");
    }
    let (code, v) = support::json_of(support::wharf(&state).args(["runs", "--json"]));
    assert_eq!((code, v["error"]["kind"].as_str()), (3, Some("state")), "{v:#}");
}

#[test]
fn plan_says_when_the_ledger_has_no_run_of_the_flow_and_what_a_lost_state_folder_means() {
    let dir = support::tempdir();
    let state = dir.path().join("state");
    delivered_once(dir.path(), &state);
    let flow = dir.path().join("pipe.yaml");
    let plan = |state: &Path| support::wharf(state).arg("plan").arg(&flow).output().unwrap();
    let t = support::text(&plan(&state));
    assert!(t.contains("skip      /f0.csv: already delivered") && !t.contains("note: the ledger"), "{t}");
    // The state folder lost: no ledger, every file new, and the way back named.
    let lost = dir.path().join("lost");
    let t = support::text(&plan(&lost));
    let ledger = lost.join("ledger.redb");
    assert!(t.contains(&format!("note: there is no ledger at {} yet: every file listed is new to wharf.", ledger.display())), "{t}");
    assert!(t.contains("run with that state folder (--state-dir) instead"), "{t}");
    // A ledger of other flows only: the same, in `--json` as well.
    std::fs::rename(&state, &lost).unwrap();
    let renamed = dir.path().join("renamed.yaml");
    std::fs::write(&renamed, std::fs::read_to_string(&flow).unwrap().replace("name: pipe", "name: renamed")).unwrap();
    let (code, v) = support::json_of(support::wharf(&lost).arg("plan").arg(&renamed).arg("--json"));
    assert_eq!(code, 0, "{v:#}");
    let first = v["caveats"][0].as_str().unwrap_or_default();
    assert!(first.starts_with(&format!("the ledger at {} has no run of flow renamed: every file", ledger.display())), "{v:#}");
}
