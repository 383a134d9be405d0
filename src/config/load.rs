//! Loading flow files: text → parse → schema check → meaning checks → [`Flow`], with every
//! problem turned into a positioned [`Diagnostic`], and every warning too (kept in
//! [`Flow::warnings`] of a flow that loads; they never refuse it).
//!
//! Owns the order of the stages and what a broken stage hides from the next: a syntax error
//! stops everything; duplicate keys, unknown fields and wrong types are all reported, and
//! the meaning checks still run on every part of the flow whose shape is right. Also owns
//! finding flow files in folders. It does not define any rule itself.

use std::collections::BTreeMap;
use std::env::VarError;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::diagnostic::{Diagnostic, Problem};
use super::flow::Flow;
use super::interpolate::Lookup;
use super::locate::{self, Positions};
use super::schema::{self, Kind, Structural};
use super::stray;
use super::validate::{Sections, validate_sections};

/// Reads and validates the flow file at `path`. An unreadable file is one diagnostic at 1:1.
/// The flow comes with its warnings, in [`Flow::warnings`].
pub fn load_flow(path: &Path) -> Result<Flow, Vec<Diagnostic>> {
    load_flow_with_warnings(path).0
}

/// [`load_flow`], and the file's warnings whether or not it has problems (a valid flow also
/// carries them in [`Flow::warnings`]): `wharf validate` shows both at once.
pub fn load_flow_with_warnings(path: &Path) -> (Result<Flow, Vec<Diagnostic>>, Vec<Diagnostic>) {
    read_flow(path, false)
}

/// [`load_flow`] for a command that reads the ledger and never connects with the flow
/// (`wharf status`, `wharf quarantine show`): a credential whose value is not to be had here
/// (`${env:…}` not set, a `${file:…}` not readable) does not refuse it; it is kept as written
/// and listed in [`Flow::unresolved`], and an endpoint that needs it refuses to connect.
pub fn load_flow_to_read(path: &Path) -> Result<Flow, Vec<Diagnostic>> {
    read_flow(path, true).0
}

fn read_flow(path: &Path, keep_unavailable: bool) -> (Result<Flow, Vec<Diagnostic>>, Vec<Diagnostic>) {
    match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(text)) => check_flow_str(&text, path, &|name| std::env::var(name), keep_unavailable),
        Ok(Err(e)) => (Err(vec![not_utf8(path, e.as_bytes(), e.utf8_error().valid_up_to())]), Vec::new()),
        Err(e) => (
            // About the file as a whole (line 0: no position): `path: cannot read flow file: …`,
            // or in words what to give when the path names nothing (`wharf validate flows/`
            // where there is no such folder yet).
            Err(vec![Diagnostic {
                file: path.to_path_buf(),
                line: 0,
                col: 0,
                message: match e.kind() {
                    std::io::ErrorKind::NotFound => "no such file or folder (give a flow file, or a folder of flow files)".into(),
                    _ => format!("cannot read flow file: {}", crate::endpoint::local::io_reason(&e)),
                },
                yaml_path: "/".into(),
            }]),
            Vec::new(),
        ),
    }
}

/// A flow file that is not UTF-8 text, at its first byte that is not: before, "cannot read
/// flow file: stream did not contain valid UTF-8", which said neither where nor what to do.
fn not_utf8(file: &Path, bytes: &[u8], valid_up_to: usize) -> Diagnostic {
    let before = &bytes[..valid_up_to];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    // `before` is valid UTF-8 up to `valid_up_to`, so the line's part of it is too.
    let col = String::from_utf8_lossy(&before[line_start..]).chars().count() + 1;
    Diagnostic {
        file: file.to_path_buf(),
        line,
        col,
        message: format!(
            "not UTF-8 text (byte 0x{:02x} here): save the flow file as UTF-8",
            bytes.get(valid_up_to).copied().unwrap_or_default()
        ),
        yaml_path: "/".into(),
    }
}

/// Validates flow text that was read from `file`. Relative paths in the flow (a local `root`,
/// `known_hosts`, `private_key`, `${file:…}`) resolve against `file`'s folder and come out
/// absolute; `${env:…}` reads the process environment.
pub fn load_flow_str(text: &str, file: &Path) -> Result<Flow, Vec<Diagnostic>> {
    load_flow_str_with_env(text, file, &|name| std::env::var(name))
}

/// [`load_flow_str`] with the environment given by `env` (for tests and embedding).
pub fn load_flow_str_with_env(text: &str, file: &Path, env: &dyn Fn(&str) -> Result<String, VarError>) -> Result<Flow, Vec<Diagnostic>> {
    check_flow_str(text, file, env, false).0
}

/// The flow in `text` (or its problems), and its warnings either way.
fn check_flow_str(
    text: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Result<String, VarError>,
    keep_unavailable: bool,
) -> (Result<Flow, Vec<Diagnostic>>, Vec<Diagnostic>) {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let lookup = Lookup { base_dir: dir, env };
    let (parsed, parse_problems) = locate::parse(text);
    let mut out: Vec<Diagnostic> = parse_problems.into_iter().map(|l| Diagnostic::of_parse(file, l)).collect();
    let Some(parsed) = parsed else {
        return (Err(out), Vec::new());
    };
    let at = |problem: Problem, at_key: bool, positions: &Positions| {
        let pos = if at_key { positions.key(&problem.yaml_path) } else { positions.node(&problem.yaml_path) };
        Diagnostic { file: file.to_path_buf(), line: pos.line, col: pos.col, message: problem.message, yaml_path: problem.yaml_path }
    };

    let fields: Vec<String> = parsed.value.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
    let structural = schema::check(&parsed.value);
    let mut value = parsed.value;
    for s in structural.iter().filter(|s| s.kind == Kind::UnknownField) {
        remove(&mut value, &s.problem.yaml_path);
    }
    // Paths whose content is known to be wrong: meaning checks there would repeat the
    // schema's complaint in other words. (Unknown fields were removed, and a missing field
    // makes its part fail to deserialize, so neither hides anything.)
    let broken: Vec<String> = structural.iter().filter(|s| s.kind == Kind::Invalid).map(|s| s.problem.yaml_path.clone()).collect();
    let mut serde_problems = Vec::new();
    let sections = sections(&value, &structural, &mut serde_problems);
    let meaning = validate_sections(sections, file, &lookup, keep_unavailable);
    let unresolved: Vec<Diagnostic> = meaning.unresolved.into_iter().map(|p| at(p, false, &parsed.positions)).collect();
    let mut warnings: Vec<Diagnostic> = meaning.warnings.into_iter().map(|p| at(p, false, &parsed.positions)).collect();
    warnings.sort_by_key(|d| (d.line, d.col));
    warnings.dedup();

    out.extend(structural.into_iter().map(|s| {
        let shown = s.shown_path();
        Diagnostic { yaml_path: shown, ..at(s.problem, s.at_key, &parsed.positions) }
    }));
    out.extend(serde_problems.into_iter().map(|p| at(p, false, &parsed.positions)));
    let flow = match meaning.flow {
        Ok(flow) => Some(Flow { warnings: warnings.clone(), unresolved, ..flow }),
        Err(problems) => {
            let shown = problems.into_iter().filter(|p| !broken.iter().any(|b| within(&p.yaml_path, b)));
            out.extend(shown.map(|p| at(p, false, &parsed.positions)));
            None
        }
    };
    let flow = match flow {
        Some(flow) if out.is_empty() => Ok(flow),
        _ => {
            out.sort_by_key(|d| (d.line, d.col));
            out.dedup();
            // First, before the problems it explains.
            if let Some(hint) = stray::serve_config(file, &fields, schema::is_flow_field) {
                out.insert(0, at(hint, false, &parsed.positions));
            }
            Err(out)
        }
    };
    (flow, warnings)
}

/// `path` is `base` or lies below it (JSON pointers; `/` is the document).
pub(crate) fn within(path: &str, base: &str) -> bool {
    base == "/" || path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Removes the member at `pointer` (an unknown field) from `value`.
pub(crate) fn remove(value: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else { return };
    let key = key.replace("~1", "/").replace("~0", "~");
    let parent = if parent.is_empty() { Some(value) } else { value.pointer_mut(parent) };
    if let Some(Value::Object(map)) = parent {
        map.remove(&key);
    }
}

/// Splits the document into the parts validation works on, deserializing each on its own so
/// a broken part does not hide the others.
fn sections(doc: &Value, structural: &[Structural], problems: &mut Vec<Problem>) -> Sections {
    let Some(map) = doc.as_object() else {
        return Sections::default();
    };
    let part = |key: &str, default: Option<Value>| -> Option<Value> { map.get(key).cloned().or(default) };
    let mut sections = Sections {
        name: part("name", None).and_then(|v| decode(v, "/name", structural, problems)),
        source: part("source", None).and_then(|v| decode(v, "/source", structural, problems)),
        after: part("after", Some(Value::Object(Default::default()))).and_then(|v| decode(v, "/after", structural, problems)),
        on_error: part("on_error", Some(Value::String("continue".into()))).and_then(|v| decode(v, "/on_error", structural, problems)),
        concurrency: part("concurrency", Some(Value::Null)).and_then(|v| decode(v, "/concurrency", structural, problems)),
        retry: part("retry", Some(Value::Object(Default::default()))).and_then(|v| decode(v, "/retry", structural, problems)),
        alerts: part("alerts", Some(Value::Object(Default::default()))).and_then(|v| decode(v, "/alerts", structural, problems)),
        history: part("history", Some(Value::Null)).and_then(|v| decode(v, "/history", structural, problems)),
        quarantine: part("quarantine", Some(Value::Null)).and_then(|v| decode(v, "/quarantine", structural, problems)),
        on_invalid: part("on_invalid", Some(Value::String("quarantine".into())))
            .and_then(|v| decode(v, "/on_invalid", structural, problems)),
        max_invalid: part("max_invalid", Some(Value::Null)).and_then(|v| decode(v, "/max_invalid", structural, problems)),
        response: part("response", Some(Value::Null)).and_then(|v| decode(v, "/response", structural, problems)),
        schedule: part("schedule", Some(Value::Null)).and_then(|v| decode(v, "/schedule", structural, problems)),
        ..Sections::default()
    };
    if let Some(Value::Object(endpoints)) = map.get("endpoints") {
        let decoded: BTreeMap<String, _> = endpoints
            .iter()
            .map(|(name, v)| (name.clone(), decode(v.clone(), &format!("/endpoints/{}", locate::escape(name)), structural, problems)))
            .collect();
        sections.endpoints = Some(decoded);
    }
    if let Some(Value::Array(sinks)) = map.get("sinks") {
        sections.sinks =
            Some(sinks.iter().enumerate().map(|(i, v)| decode(v.clone(), &format!("/sinks/{i}"), structural, problems)).collect());
    }
    // Step by step, like the sinks: a step of the wrong shape must not hide the schema, script
    // and look-up checks of the others.
    sections.notify = decode_list(map, "notify", structural, problems);
    sections.steps = decode_list(map, "steps", structural, problems);
    // Entry by entry, like the steps.
    sections.expect = decode_list(map, "expect", structural, problems);
    sections
}

/// The list under the top-level `key` of `map`, item by item (`None` items are malformed), so
/// an item of the wrong shape does not hide the checks of the others; an empty list when
/// `key` is absent, `None` when the list itself is malformed. Used by every file with such
/// lists (a flow's `notify`, `steps`, `expect`; serve.yaml's `notify`).
pub(crate) fn decode_list<T: DeserializeOwned>(
    map: &serde_json::Map<String, Value>,
    key: &str,
    structural: &[Structural],
    problems: &mut Vec<Problem>,
) -> Option<Vec<Option<T>>> {
    let at = format!("/{}", locate::escape(key));
    match map.get(key) {
        None => Some(vec![]),
        Some(Value::Array(items)) => {
            Some(items.iter().enumerate().map(|(i, v)| decode(v.clone(), &format!("{at}/{i}"), structural, problems)).collect())
        }
        Some(other) => decode::<Vec<_>>(other.clone(), &at, structural, problems).map(|r| r.into_iter().map(Some).collect()),
    }
}

/// Deserializes one part. A failure the schema did not already explain (the schema and the
/// serde types disagree) is reported with serde's message, so nothing fails silently.
pub(crate) fn decode<T: DeserializeOwned>(value: Value, path: &str, structural: &[Structural], problems: &mut Vec<Problem>) -> Option<T> {
    match serde_json::from_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            if !structural.iter().any(|s| within(&s.problem.yaml_path, path)) {
                problems.push(Problem::new(path, e.to_string()));
            }
            None
        }
    }
}

/// Why a flow file is refused whose `name:` the flow of `first` (another file, loaded or
/// listed before it) already gives: in `wharf validate`'s, `wharf serve`'s and `wharf
/// status`'s words alike.
pub fn name_taken(name: &str, first: &Path) -> String {
    format!("flow name `{name}` is already used by {}; flow names must be unique (they key the ledger)", first.display())
}

/// The `name:` a flow file gives, read without checking the rest of the file; `None` when it
/// cannot be read as YAML with a name.
pub fn name_in_file(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let doc: serde_yaml::Value = serde_yaml::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text)).ok()?;
    doc.get("name")?.as_str().map(str::to_string)
}

/// The name a flow file that does not load (and has no version in force) goes by, in `wharf
/// serve`'s list and log and in `wharf status` alike, and the name its history is looked up
/// under: the `name:` it gives when its YAML got that far (the name the ledger knows its flow
/// by), else its file name without `.yaml`.
pub fn unloaded_name(file: &Path) -> String {
    name_in_file(file).unwrap_or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())
}

/// For a flow file with no flow in force that gives `name` (it does not load, or it is
/// refused for the name clash): the other file among `loaded` (each file with its flow in
/// force's name) whose flow goes by that name. Then nothing of that name is this file's — the
/// schedule, the runs and the ledger records (keyed by flow name) are that flow's, shown in
/// its own row — so `wharf serve` and `wharf status` (with a daemon or without) show only this
/// file and its problem. One rule for both.
pub fn name_owner<'a>(file: &Path, name: &str, loaded: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Option<&'a Path> {
    loaded.into_iter().find(|(other, n)| *other != file && *n == name).map(|(other, _)| other)
}

/// For a flow file that does not load and gives `name`, which no flow in force has
/// ([`name_owner`] finds none): the file among `broken` (each file that does not load with the
/// name it gives) whose row shows that name's history, when it is another file. One row shows
/// it, beside the first file by path; the others say which (was: every such file showed it
/// as its own). One rule for `wharf serve` and `wharf status`.
pub fn name_shown_by<'a>(file: &Path, name: &str, broken: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Option<&'a Path> {
    broken.into_iter().filter(|(_, n)| *n == name).map(|(p, _)| p).min().filter(|first| *first != file)
}

/// What the row of a flow file that does not load adds to its problem when another file that
/// does not load gives its `name:` too and shows that name's history ([`name_shown_by`]).
pub fn name_shown_beside(name: &str, first: &Path) -> String {
    format!(
        "its flow name `{name}` is also given by {}, which does not load either; that name's runs are shown in that row",
        first.display()
    )
}

/// What the row of a flow file that does not load adds to its problem when its `name:` is
/// another file's flow's ([`name_owner`]): that the schedule and runs shown for that name are
/// not this file's.
pub fn name_also_used(name: &str, owner: &Path) -> String {
    format!("its flow name `{name}` is also the flow of {}, whose schedule and runs are shown in that row", owner.display())
}

/// The flow files named by `paths`: files as given, folders expanded to the `*.yaml` and
/// `*.yml` files directly inside them (sorted; `*.test.yaml` / `*.test.yml` are test
/// fixtures and skipped). A folder that cannot be read is returned as is, so loading it
/// reports the problem.
pub fn find_flows(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in paths {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        let Ok(entries) = std::fs::read_dir(path) else {
            out.push(path.clone());
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
                (name.ends_with(".yaml") || name.ends_with(".yml")) && !name.ends_with(".test.yaml") && !name.ends_with(".test.yml")
            })
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_daemon_settings_among_the_flows_are_refused_with_where_they_belong() {
        // Said only "missing field `name`", "unknown field `listen`"… as for a broken flow.
        let text = include_str!("../../docs/examples/serve.yaml");
        for file in ["flows/serve.yaml", "flows/daemon.yaml"] {
            let problems = load_flow_str(text, Path::new(file)).unwrap_err();
            let first = &problems[0];
            assert!(first.message.starts_with("this looks like the settings of `wharf serve` (serve.yaml), not a flow"), "{problems:#?}");
            // At the document (which starts after the example's two comment lines).
            assert_eq!((first.line, first.col, first.yaml_path.as_str()), (3, 1, "/"));
            assert!(problems.iter().any(|d| d.message.starts_with("unknown field `listen`")), "the problems stay: {problems:#?}");
        }
        // A broken flow gets no such hint.
        let problems = load_flow_str("name: x\nlisten: 1\n", Path::new("flows/x.yaml")).unwrap_err();
        assert!(problems.iter().all(|d| !d.message.contains("wharf serve")), "{problems:#?}");
    }

    #[test]
    fn within_compares_whole_steps() {
        assert!(within("/source/path", "/source"));
        assert!(within("/source", "/source"));
        assert!(!within("/sources", "/source"));
        assert!(within("/x", "/"));
    }

    #[test]
    fn finds_yaml_files_sorted_without_tests() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.yaml", "a.yml", "c.test.yaml", "d.txt", "e.test.yml"] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let single = dir.path().join("c.test.yaml");
        let found = find_flows(&[dir.path().to_path_buf(), single.clone(), "missing.yaml".into()]);
        assert_eq!(found, [dir.path().join("a.yml"), dir.path().join("b.yaml"), single, "missing.yaml".into()]);
    }

    #[test]
    fn unreadable_file_is_one_diagnostic() {
        let errs = load_flow(Path::new("/nonexistent/flow.yaml")).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].to_string(), "/nonexistent/flow.yaml: no such file or folder (give a flow file, or a folder of flow files)");
        let dir = tempfile::tempdir().unwrap();
        let errs = load_flow(dir.path()).unwrap_err();
        assert!(errs[0].to_string().starts_with(&format!("{}: cannot read flow file: ", dir.path().display())), "{}", errs[0]);
    }

    #[test]
    fn a_flow_file_that_is_not_utf8_is_placed_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("latin1.yaml");
        std::fs::write(&file, b"name: x\ndescription: Pr\xfcfung\n").unwrap();
        let errs = load_flow(&file).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].to_string(),
            format!("{}:2:16: not UTF-8 text (byte 0xfc here): save the flow file as UTF-8 (at /)", file.display())
        );
    }
}
