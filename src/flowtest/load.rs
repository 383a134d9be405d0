//! Loading a test file: text → parse → schema check → meaning checks → [`Suite`], every
//! problem a positioned [`Diagnostic`] (`file:line:col`), as for flow files.
//!
//! Owns the rules a test file must follow beyond its shape: one kind of case, an input with a
//! fixture or inline content, fixtures that can be read, expectations that fit the kind of
//! case and the flow (an endpoint it defines, a `map`/`render` step it has), and a case that
//! expects something — a test that cannot fail is refused. The flow under test is loaded here,
//! with every `${env:…}` given a placeholder: nothing connects, so no secret is needed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::SystemTime;

use serde_json::Value;

use super::spec::{RawCase, RawContent, RawCounts, RawExpect, RawInput, RawSuite, test_schema};
use super::{Case, CaseKind, Content, Exact, Expect, Input, QuarantineExpect, Suite};
use crate::config::schema::Compiled;
use crate::config::{self, Diagnostic, Flow, Problem, locate};
use crate::endpoint::RemotePath;
use crate::steps::Step;

/// The clock when neither the file nor the case sets one.
pub const DEFAULT_NOW: &str = "2026-01-01T00:00:00Z";

/// What `${env:NAME}` becomes in a flow under test.
const PLACEHOLDER: &str = "wharf-test-placeholder";

/// The test-file schema, compiled once.
fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| Compiled::new(test_schema()))
}

/// Reads and validates the test file at `path`, and loads its flow.
pub fn load_suite(path: &Path) -> Result<Suite, Vec<Diagnostic>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![unreadable(path, &e)])?;
    let (parsed, problems) = locate::parse(&text);
    let mut out: Vec<Diagnostic> = problems.into_iter().map(|l| Diagnostic::of_parse(path, l)).collect();
    let Some(parsed) = parsed else { return Err(out) };
    let at = |p: Problem, key: bool| {
        let pos = if key { parsed.positions.key(&p.yaml_path) } else { parsed.positions.node(&p.yaml_path) };
        diag(path, pos, &p.yaml_path, p.message)
    };
    let structural = compiled().check(&parsed.value);
    if !structural.is_empty() || !out.is_empty() {
        out.extend(structural.into_iter().map(|s| {
            let shown = s.shown_path();
            Diagnostic { yaml_path: shown, ..at(s.problem, s.at_key) }
        }));
        return Err(sorted(out));
    }
    let raw: RawSuite = match serde_json::from_value(parsed.value.clone()) {
        Ok(r) => r,
        Err(e) => return Err(vec![at(Problem::new("/", e.to_string()), false)]),
    };
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let flow_path = config::paths::resolve(base, &raw.flow);
    let flow = match std::fs::read_to_string(&flow_path) {
        Ok(t) => config::load_flow_str_with_env(&t, &flow_path, &|_: &str| Ok(PLACEHOLDER.to_string())).map_err(Some),
        Err(e) => {
            out.push(at(Problem::new("/flow", format!("cannot read the flow {}: {e}", flow_path.display())), false));
            Err(None)
        }
    };
    let flow = match flow {
        Ok(f) => Some(f),
        Err(Some(diags)) => {
            out.push(at(Problem::new("/flow", format!("the flow under test has {} problem(s), listed with its file", diags.len())), false));
            out.extend(diags);
            None
        }
        Err(None) => None,
    };
    let mut problems = Vec::new();
    let now = clock(raw.now.as_deref().unwrap_or(DEFAULT_NOW), "/now", &mut problems);
    let mut cases = Vec::new();
    // A case is picked and reported by its name: two of one name could not be told apart.
    let mut named: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in raw.cases.iter().enumerate() {
        let at_case = format!("/cases/{i}");
        if let Some(first) = named.insert(c.name.as_str(), i) {
            let line = parsed.positions.node(&format!("/cases/{first}/name")).line;
            problems.push(Problem::new(
                format!("{at_case}/name"),
                format!("case name `{}` is given twice (first on line {line}): give each case a name of its own", c.name),
            ));
        }
        let now = match &c.now {
            Some(t) => clock(t, &format!("{at_case}/now"), &mut problems),
            None => now,
        };
        let case = flow.as_ref().and_then(|f| build_case(c, &at_case, f, base, &mut problems));
        if let (Some(kind), Some(now)) = (case, now) {
            let line = parsed.positions.node(&at_case).line;
            cases.push(Case { name: c.name.clone(), line, now, kind: kind.0, expect: kind.1 });
        }
    }
    out.extend(problems.into_iter().map(|p| at(p, false)));
    match flow {
        Some(flow) if out.is_empty() => Ok(Suite { file: path.to_path_buf(), flow, cases }),
        _ => Err(sorted(out)),
    }
}

/// A test file that cannot be read: a problem with no place in it (printed without
/// `line:col`), saying in words when it does not exist — a path given to `wharf test` that
/// names nothing is taken for a file.
fn unreadable(path: &Path, e: &std::io::Error) -> Diagnostic {
    let message = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder (give a test file, or a folder holding `*.test.yaml` files)".to_string(),
        _ => format!("cannot read test file: {e}"),
    };
    Diagnostic { file: path.to_path_buf(), line: 0, col: 0, message, yaml_path: "/".into() }
}

fn diag(file: &Path, pos: locate::Pos, yaml_path: &str, message: String) -> Diagnostic {
    Diagnostic { file: file.to_path_buf(), line: pos.line, col: pos.col, message, yaml_path: yaml_path.to_string() }
}

fn sorted(mut d: Vec<Diagnostic>) -> Vec<Diagnostic> {
    d.sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
    d.dedup();
    d
}

/// An RFC 3339 time.
fn clock(text: &str, at: &str, problems: &mut Vec<Problem>) -> Option<SystemTime> {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => Some(SystemTime::from(t.with_timezone(&chrono::Utc))),
        Err(e) => {
            problems.push(Problem::new(at, format!("`{text}` is not an RFC 3339 time like `2026-01-05T06:00:00Z`: {e}")));
            None
        }
    }
}

/// Validates one case against its flow.
fn build_case(c: &RawCase, at: &str, flow: &Flow, base: &Path, problems: &mut Vec<Problem>) -> Option<(CaseKind, Expect)> {
    let start = problems.len();
    let has = |f: fn(&Step) -> bool| flow.steps.as_ref().is_some_and(|s| s.steps().iter().any(f));
    let kind = match (&c.input, &c.map, &c.render) {
        (Some(i), None, None) => input(i, &format!("{at}/input"), base, problems).map(CaseKind::File),
        (None, Some(m), None) => {
            if !has(|s| matches!(s, Step::Map(_))) {
                problems.push(Problem::new(format!("{at}/map"), format!("flow {} has no `map` step to test", flow.name)));
            }
            Some(CaseKind::Map(m.record.clone()))
        }
        (None, None, Some(r)) => {
            if !has(|s| matches!(s, Step::Render(_))) {
                problems.push(Problem::new(format!("{at}/render"), format!("flow {} has no `render` step to test", flow.name)));
            }
            Some(CaseKind::Render { records: r.records.clone(), name: r.name.clone().unwrap_or_else(|| "input.csv".into()) })
        }
        _ => {
            problems.push(Problem::new(at, "a case has exactly one of `input` (a file), `map` (a record) or `render` (records)"));
            None
        }
    };
    let expect = expect(&c.expect, &format!("{at}/expect"), kind.as_ref(), flow, base, problems);
    match (kind, expect) {
        (Some(k), Some(e)) if problems.len() == start => Some((k, e)),
        _ => None,
    }
}

fn input(raw: &RawInput, at: &str, base: &Path, problems: &mut Vec<Problem>) -> Option<Input> {
    let (content, default_name) = match (&raw.file, &raw.content) {
        (Some(f), None) => {
            let bytes = fixture(base, f, &format!("{at}/file"), problems)?;
            (bytes, Path::new(f).file_name().map(|n| n.to_string_lossy().into_owned()))
        }
        (None, Some(text)) => (text.clone().into_bytes(), None),
        _ => {
            problems.push(Problem::new(at, "give the file as `file` (a fixture) or as inline `content`, one of them"));
            return None;
        }
    };
    let Some(name) = raw.name.clone().or(default_name) else {
        problems.push(Problem::new(at, "an inline `content` needs a `name` (the file's name in the source folder)"));
        return None;
    };
    match RemotePath::parse(&name) {
        Ok(p) if !p.is_root() => {}
        Ok(_) => problems.push(Problem::new(format!("{at}/name"), "the name is empty")),
        Err(e) => problems.push(Problem::new(format!("{at}/name"), format!("`{name}` is not a usable file name: {e}"))),
    }
    let mut beside = BTreeMap::new();
    for (n, text) in &raw.beside {
        if let Err(e) = crate::endpoint::path::check_name(n) {
            problems.push(Problem::new(format!("{at}/beside/{}", locate::escape(n)), format!("`{n}` is not a usable file name: {e}")));
        }
        beside.insert(n.clone(), text.clone().into_bytes());
    }
    Some(Input { name, content, beside })
}

fn fixture(base: &Path, rel: &str, at: &str, problems: &mut Vec<Problem>) -> Option<Vec<u8>> {
    let path = config::paths::resolve(base, rel);
    std::fs::read(&path).map_err(|e| problems.push(Problem::new(at, format!("cannot read fixture {}: {e}", path.display())))).ok()
}

/// The fields of `expect` that only some kinds of case use, with the kinds they fit.
const FILE_ONLY: &[&str] = &["outcome", "counts", "outputs", "rejected", "quarantine", "source", "detail"];

fn expect(raw: &RawExpect, at: &str, kind: Option<&CaseKind>, flow: &Flow, base: &Path, problems: &mut Vec<Problem>) -> Option<Expect> {
    let given: BTreeMap<String, Value> = match serde_json::to_value(raw) {
        Ok(Value::Object(m)) => m.into_iter().collect(),
        _ => BTreeMap::new(),
    };
    if given.is_empty() {
        problems.push(Problem::new(at, "expects nothing: a test that cannot fail tests nothing"));
    }
    if raw.counts.is_some_and(|c| c == RawCounts::default()) {
        problems
            .push(Problem::new(format!("{at}/counts"), "compares nothing: give some of `read`, `valid`, `rejected`, `skipped`, `written`"));
    }
    let fits = |field: &str| match kind {
        Some(CaseKind::File(_)) => FILE_ONLY.contains(&field),
        Some(CaseKind::Map(_)) => matches!(field, "records" | "error"),
        Some(CaseKind::Render { .. }) => matches!(field, "output" | "error"),
        None => true,
    };
    for field in given.keys().filter(|f| !fits(f)) {
        let case = match kind {
            Some(CaseKind::File(_)) => "an `input` case",
            Some(CaseKind::Map(_)) => "a `map` case (`records` or `error`)",
            _ => "a `render` case (`output` or `error`)",
        };
        problems.push(Problem::new(format!("{at}/{field}"), format!("`{field}` does not apply to {case}")));
    }
    if raw.records.is_some() && raw.error.is_some() {
        problems.push(Problem::new(format!("{at}/error"), "expect either `records` or an `error`, not both"));
    }
    if raw.output.is_some() && raw.error.is_some() {
        problems.push(Problem::new(format!("{at}/error"), "expect either `output` or an `error`, not both"));
    }
    let mut outputs = None;
    if let Some(map) = &raw.outputs {
        let mut built = BTreeMap::new();
        for (target, c) in map {
            let here = format!("{at}/outputs/{}", locate::escape(target));
            place(target, &here, flow, problems);
            if let Some(c) = content(c, &here, base, problems) {
                built.insert(target.clone(), c);
            }
        }
        outputs = Some(built);
    }
    let quarantine = raw.quarantine.as_ref().map(|q| {
        if flow.quarantine.is_none() {
            problems.push(Problem::new(format!("{at}/quarantine"), format!("flow {} has no `quarantine` location", flow.name)));
        }
        if let Some(c) = &q.copy {
            place(c, &format!("{at}/quarantine/copy"), flow, problems);
        }
        QuarantineExpect { reason: q.reason.clone(), errors: q.errors.clone(), copy: q.copy.clone() }
    });
    let output = raw.output.as_ref().and_then(|c| content(c, &format!("{at}/output"), base, problems));
    Some(Expect {
        outcome: raw.outcome,
        counts: raw.counts.unwrap_or_default(),
        outputs,
        rejected: raw.rejected.clone(),
        quarantine,
        source: raw.source.clone(),
        detail: raw.detail.clone(),
        records: raw.records.clone(),
        output,
        error: raw.error.clone(),
    })
}

/// Checks an `ENDPOINT:/PATH` naming an endpoint of the flow.
fn place(text: &str, at: &str, flow: &Flow, problems: &mut Vec<Problem>) {
    match text.split_once(':') {
        Some((ep, path)) if flow.endpoints.contains_key(ep) && path.starts_with('/') => {}
        Some((ep, path)) if path.starts_with('/') => {
            let known: Vec<&str> = flow.endpoints.keys().map(String::as_str).collect();
            problems.push(Problem::new(at, format!("flow {} has no endpoint `{ep}` (it has {})", flow.name, known.join(", "))));
        }
        _ => problems.push(Problem::new(at, format!("`{text}` is not `ENDPOINT:/PATH` (like `hr:/roster/ROSTER_20260105.csv`)"))),
    }
}

fn content(raw: &RawContent, at: &str, base: &Path, problems: &mut Vec<Problem>) -> Option<Content> {
    let exact = match (&raw.file, &raw.content, &raw.records) {
        (Some(f), None, None) => {
            let bytes = fixture(base, f, &format!("{at}/file"), problems)?;
            Some(Exact::Bytes { bytes, fixture: Some(PathBuf::from(f)) })
        }
        (None, Some(t), None) => Some(Exact::Bytes { bytes: t.clone().into_bytes(), fixture: None }),
        (None, None, Some(r)) => Some(Exact::Records(r.clone())),
        (None, None, None) if !raw.contains.is_empty() => None,
        (None, None, None) => {
            problems.push(Problem::new(at, "give the expected content: `file`, `content`, `records` or `contains`"));
            return None;
        }
        _ => {
            problems.push(Problem::new(at, "give one of `file`, `content` or `records` (`contains` may go with any)"));
            return None;
        }
    };
    Some(Content { exact, contains: raw.contains.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_compiles() {
        assert_eq!(compiled().schema["title"], "wharf flow test");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const FLOW: &str = "name: t\nendpoints:\n  in: { type: local, root: in }\n  out: { type: sftp, host: h, user: u, auth: { password: \"${env:NOPE_UNSET}\" }, host_key: { known_hosts: kh } }\nsource: { endpoint: in, path: /, include: [\"*.csv\"] }\nsinks: [ { endpoint: out, path: /x } ]\n";

    /// `output: "text"` was told "expected a mapping, found the string `text`", which does
    /// not say what goes there.
    #[test]
    fn a_content_given_as_a_string_names_its_forms() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t.yaml", FLOW);
        let t = write(
            dir.path(),
            "t.test.yaml",
            "flow: t.yaml\ncases:\n  - name: a\n    render: { records: [] }\n    expect:\n      output: \"text\"\n",
        );
        let errs: Vec<String> =
            load_suite(&t).unwrap_err().iter().map(|d| format!("{}:{}:{} {}", d.file.display(), d.line, d.col, d.message)).collect();
        let want = "6:15 expected a mapping with `contains`, `content`, `file` or `records`, found the string `text`";
        assert_eq!(errs, vec![format!("{}:{want}", t.display())]);
    }

    #[test]
    fn every_problem_is_positioned_and_unknown_fields_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t.yaml", FLOW);
        let t = write(
            dir.path(),
            "t.test.yaml",
            "flow: t.yaml\nnow: yesterday\ncases:\n  - name: a\n    input: { content: x, name: a.csv }\n    expect: { outcome: delivered, records: [] }\n  - name: b\n    input: { file: missing.csv }\n    expect: { outputs: { nope:/a.csv: { content: x } } }\n  - name: c\n    map: { record: {} }\n    expect: {}\n  - name: d\n    input: { content: x }\n    expect: { outcome: ignored }\n  - name: e\n    input: { content: x, name: a.csv }\n    expect: { counts: {} }\n",
        );
        let errs: Vec<String> = load_suite(&t).unwrap_err().iter().map(|d| format!("{}:{} {}", d.line, d.col, d.message)).collect();
        let want = [
            (2, "`yesterday` is not an RFC 3339 time"),
            (6, "`records` does not apply to an `input` case"),
            (8, "cannot read fixture"),
            (9, "flow t has no endpoint `nope`"),
            (11, "flow t has no `map` step to test"),
            (12, "expects nothing"),
            (14, "an inline `content` needs a `name`"),
            (18, "compares nothing: give some of `read`"),
        ];
        for (line, w) in want {
            assert!(errs.iter().any(|e| e.starts_with(&format!("{line}:")) && e.contains(w)), "missing {line}: {w:?} in {errs:#?}");
        }
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        let t = write(
            dir.path(),
            "u.test.yaml",
            "flow: t.yaml\ncases:\n  - name: a\n    input: { content: x, nam: a.csv }\n    expect: { outcome: delivered }\n",
        );
        let errs = load_suite(&t).unwrap_err();
        assert_eq!((errs[0].line, errs[0].col), (4, 26), "{errs:?}");
        assert!(errs[0].message.starts_with("unknown field `nam`"), "{errs:?}");
    }

    /// Two cases of one name could not be told apart in the report or picked by name:
    /// the second is refused where it is, naming the line of the first.
    #[test]
    fn a_case_name_given_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t.yaml", FLOW);
        let case =
            |name: &str| format!("  - name: {name}\n    input: {{ content: x, name: a.csv }}\n    expect: {{ outcome: delivered }}\n");
        let text = format!("flow: t.yaml\ncases:\n{}{}{}", case("same"), case("other"), case("same"));
        let t = write(dir.path(), "t.test.yaml", &text);
        let errs = load_suite(&t).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].line, errs[0].yaml_path.as_str()), (9, "/cases/2/name"), "{errs:?}");
        assert_eq!(errs[0].message, "case name `same` is given twice (first on line 3): give each case a name of its own");
    }

    #[test]
    fn a_valid_file_loads_without_secrets() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "t.yaml", FLOW);
        write(dir.path(), "a.csv", "id\n1\n");
        let t = write(
            dir.path(),
            "t.test.yaml",
            "flow: t.yaml\ncases:\n  - name: a\n    now: 2026-01-05T06:00:00+01:00\n    input: { file: a.csv }\n    expect: { outcome: delivered, outputs: { out:/x/a.csv: { file: a.csv } } }\n",
        );
        let s = load_suite(&t).unwrap();
        assert_eq!(s.cases.len(), 1);
        let CaseKind::File(i) = &s.cases[0].kind else { panic!() };
        assert_eq!((i.name.as_str(), i.content.as_slice()), ("a.csv", &b"id\n1\n"[..]));
        assert_eq!(s.cases[0].now, SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_767_589_200));
    }
}
