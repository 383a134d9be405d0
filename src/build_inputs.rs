//! Tests only: `build.rs`'s `INPUTS` (what a change of makes `wharf --version` say `-dirty`,
//! and the build script run again) covers every file the sources take in from outside `src/`
//! with `include_str!`/`include_bytes!`. A file included from elsewhere and not listed would
//! change the program without `-dirty` saying so.
//!
//! The check reads the sources as text: a path written as a literal (relative to the file, as
//! the macros read it) or as `concat!(env!("CARGO_MANIFEST_DIR"), "/…")`; any other argument
//! is reported, to be written so.

use std::path::{Component, Path, PathBuf};

/// The macros looked for (written in two halves so this file is not taken for a user).
const MACROS: [&str; 2] = [concat!("include_", "str!("), concat!("include_", "bytes!(")];

/// The argument form relative to the package (the other is a plain literal).
const FROM_PACKAGE: &str = concat!("concat!(env!(\"CARGO_", "MANIFEST_DIR\"), \"");

/// `INPUTS` as `build.rs` lists it: the quoted strings of its `const INPUTS` item.
fn inputs(build_rs: &str) -> Vec<String> {
    let Some(start) = build_rs.find("const INPUTS") else { return vec![] };
    let list = &build_rs[start..];
    let list = &list[..list.find("];").unwrap_or(list.len())];
    list.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

/// `path` with `.` and `..` resolved as written (the file need not exist).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// What is wrong with the includes of the source `file` (relative to the package), its text
/// `text`, for `inputs`: one message per include from outside `src/` that no input covers,
/// or whose path cannot be read here.
fn uncovered(file: &Path, text: &str, inputs: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("//") {
            continue;
        }
        for found in MACROS.iter().flat_map(|m| line.match_indices(m).map(move |(at, _)| at + m.len())) {
            let arg = &line[found..];
            let at = format!("{}:{}", file.display(), n + 1);
            let included = if let Some(rest) = arg.strip_prefix(FROM_PACKAGE) {
                rest.split('"').next().map(|p| lexical(Path::new(p.trim_start_matches('/'))))
            } else if let Some(rest) = arg.strip_prefix('"') {
                rest.split('"').next().map(|p| lexical(&file.parent().unwrap_or(Path::new("")).join(p)))
            } else {
                None
            };
            match included {
                None => problems.push(format!(
                    "{at}: an include whose path this check cannot read; write it as a literal or as \
                     {FROM_PACKAGE}/…\")) (src/build_inputs.rs)"
                )),
                Some(p) if p.starts_with("src") || inputs.iter().any(|i| p.starts_with(i)) => {}
                Some(p) => problems.push(format!(
                    "{at} includes {}, outside src/ and not covered by build.rs's INPUTS: add \"{}\" (or a folder holding \
                     it) to INPUTS in build.rs, so that a change to it makes `wharf --version` say -dirty",
                    p.display(),
                    p.display()
                )),
            }
        }
    }
    problems
}

/// Every `.rs` file under `dir`, relative to `root`.
fn sources(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else { return };
    for e in entries.flatten() {
        let rel = dir.join(e.file_name());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            sources(root, &rel, out);
        } else if rel.extension().is_some_and(|x| x == "rs") {
            out.push(rel);
        }
    }
}

#[test]
fn every_file_included_from_outside_src_is_a_build_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let inputs = inputs(&std::fs::read_to_string(root.join("build.rs")).unwrap());
    assert!(inputs.iter().any(|i| i == "src"), "INPUTS not read from build.rs: {inputs:?}");
    let mut files = Vec::new();
    sources(root, Path::new("src"), &mut files);
    assert!(files.len() > 100, "sources not found: {files:?}");
    let mut seen = 0;
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        seen += MACROS.iter().map(|m| text.matches(m).count()).sum::<usize>();
        problems.extend(uncovered(f, &text, &inputs));
    }
    assert!(seen > 0, "no include found: the check reads nothing");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What the check says of an include it must refuse, and what it lets through.
#[test]
fn an_include_from_outside_the_inputs_is_told_with_what_to_add() {
    let inputs = vec!["src".to_string(), "docs/examples".to_string()];
    let file = Path::new("src/config/load.rs");
    let code = |arg: &str| format!("let t = {}{arg});\n", MACROS[0]);
    assert!(uncovered(file, &code("\"../../docs/examples/serve.yaml\""), &inputs).is_empty());
    assert!(uncovered(file, &code("\"fixtures/a.yaml\""), &inputs).is_empty(), "inside src/");
    let outside = uncovered(file, &format!("\n{}", code("\"../../tests/fixtures/a.yaml\"")), &inputs);
    assert_eq!(outside.len(), 1, "{outside:?}");
    for part in ["src/config/load.rs:2 includes tests/fixtures/a.yaml", "add \"tests/fixtures/a.yaml\"", "INPUTS in build.rs"] {
        assert!(outside[0].contains(part), "{part:?} not in {}", outside[0]);
    }
    let from_package = uncovered(file, &code(&format!("{FROM_PACKAGE}/schemas/flow.schema.json\")")), &inputs);
    assert!(from_package.len() == 1 && from_package[0].contains("add \"schemas/flow.schema.json\""), "{from_package:?}");
    let unread = uncovered(file, &code("SOME_PATH"), &inputs);
    assert!(unread.len() == 1 && unread[0].contains("cannot read"), "{unread:?}");
    assert!(uncovered(file, &format!("// {}", code("SOME_PATH")), &inputs).is_empty(), "comments are not code");
}
