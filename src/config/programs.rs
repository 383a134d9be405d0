//! The programs a flow runs — `source.command`, `command` content steps and notification
//! `command` channels — and whether this machine has them.
//!
//! As with key files (see `key_files`), a flow file is valid whatever the machine: `wharf
//! validate` says when a program is missing (or not executable) as a warning, and the run
//! that starts it reports the failure to start, naming the flow and the program.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::Flow;
use super::diagnostic::Diagnostic;
use crate::notify::Channel;

/// The programs `flow` runs, with the field that names each.
fn programs(flow: &Flow) -> Vec<(String, &Path)> {
    let mut out: Vec<(String, &Path)> = Vec::new();
    if let Some(c) = &flow.source.command {
        out.push(("/source/command/run/0".into(), &c.program.path));
    }
    let response = flow.response.as_ref().map(|r| ("/response", &r.flow));
    for (within, f) in [("", flow)].into_iter().chain(response) {
        for s in f.steps.iter().flat_map(|s| s.steps()) {
            if let crate::steps::Step::Command(c) = s {
                out.push((format!("{within}/steps/{}/command/run/0", c.at), &c.program.path));
            }
        }
    }
    for (i, rule) in flow.notify.iter().enumerate() {
        if let Channel::Command(c) = &rule.channel {
            out.push((format!("/notify/{i}/command/run/0"), &c.program));
        }
    }
    out
}

/// What is wrong with `program` on this machine, if anything. A program written with a `/`
/// is a file (absolute once the flow is loaded); one without is looked up in `path` (the
/// `PATH` variable's value) as the run would.
pub fn problem(program: &Path, path: Option<&str>) -> Option<String> {
    let shown = program.display();
    if program.components().count() > 1 {
        return match std::fs::metadata(program) {
            Ok(m) if m.is_dir() => Some(format!("program {shown} is a folder")),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => Some(format!("program {shown} is not executable (chmod +x it)")),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!("program {shown} does not exist")),
            Err(e) => Some(format!("program {shown} cannot be read: {}", crate::endpoint::local::io_reason(&e))),
        };
    }
    let found = std::env::split_paths(path.unwrap_or_default())
        .map(|dir| dir.join(program))
        .any(|p: PathBuf| std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0));
    (!found).then(|| format!("program `{shown}` is not in PATH on this machine"))
}

/// The problems of the programs `flow` runs, each at its field in the flow file.
pub fn check(flow: &Flow) -> Vec<Diagnostic> {
    let path = std::env::var("PATH").ok();
    let bad = programs(flow).into_iter().filter_map(|(at, p)| problem(p, path.as_deref()).map(|why| (at, why))).collect();
    Diagnostic::at_fields(&flow.file, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_unrunnable_program_is_named_at_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("out")).unwrap();
        std::fs::write(d.join("plain.sh"), "#!/bin/sh\n").unwrap();
        let yaml = "name: f
endpoints:
  l: { type: local, root: out }
source: { endpoint: l, path: /, command: { run: [./nope.sh], name: x.csv } }
sinks: [ { endpoint: l, path: /sent } ]
notify:
  - { on: [failed], command: { run: [./plain.sh] } }
  - { on: [failed], command: { run: [no-such-program-wharf] } }
  - { on: [failed], command: { run: [sh, -c, 'true'] } }
";
        let file = d.join("f.yaml");
        std::fs::write(&file, yaml).unwrap();
        let flow = crate::config::load_flow(&file).unwrap();
        let got: Vec<String> = check(&flow).iter().map(|d| format!("{}:{} {} (at {})", d.line, d.col, d.message, d.yaml_path)).collect();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("4:50 program ") && got[0].ends_with("nope.sh does not exist (at /source/command/run/0)"), "{got:#?}");
        assert!(got[1].starts_with("7:38 program ") && got[1].contains("plain.sh is not executable"), "{got:#?}");
        assert_eq!(got[2], "8:38 program `no-such-program-wharf` is not in PATH on this machine (at /notify/1/command/run/0)");
    }

    #[test]
    fn a_content_step_s_missing_program_is_named_at_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("out")).unwrap();
        let yaml = "name: f
endpoints:
  l: { type: local, root: out }
source: { endpoint: l, path: / }
sinks: [ { endpoint: l, path: /sent } ]
quarantine: { endpoint: l, path: /bad }
steps:
  - command: { run: [gunzip, -c] }
  - command: { run: [./decrypt.sh], pass_env: [NO_SUCH_VAR_WHARF] }
";
        let file = d.join("f.yaml");
        std::fs::write(&file, yaml).unwrap();
        let flow = crate::config::load_flow(&file).unwrap();
        let got: Vec<String> = check(&flow).iter().map(|d| format!("{}:{} {} (at {})", d.line, d.col, d.message, d.yaml_path)).collect();
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(
            got[0].starts_with("9:22 program ") && got[0].ends_with("decrypt.sh does not exist (at /steps/1/command/run/0)"),
            "{got:#?}"
        );
    }

    #[test]
    fn a_program_is_looked_up_in_path_as_the_run_would() {
        assert_eq!(problem(Path::new("sh"), Some("/nowhere:/bin:/usr/bin")), None);
        assert!(problem(Path::new("sh"), Some("/nowhere")).is_some());
        assert!(problem(Path::new("sh"), None).is_some());
        assert!(problem(Path::new("/bin"), None).unwrap().ends_with("is a folder"));
    }
}
