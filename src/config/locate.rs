//! Flow text → a JSON value to validate, plus a position index that maps YAML paths back to
//! line and column.
//!
//! Two parsers, each for what it is good at: `serde_yaml` decides the *values* (the same
//! scalar rules serde uses for deserializing), saphyr's span-preserving [`MarkedYamlOwned`]
//! gives *positions*. Both refuse duplicate keys and stop at the first one, so to report every
//! duplicate this module renames each one it is told about (it overwrites the key's first
//! character with a private-use character, which keeps every position in the file unchanged)
//! and parses again; the renamed keys are dropped from the value afterwards, so the first
//! occurrence of a key wins. This module knows nothing about flows.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
use serde_json::Value;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// The start of the file.
    pub const START: Pos = Pos { line: 1, col: 1 };
}

/// A problem found while parsing: where, the YAML path (when known) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    pub yaml_path: String,
    pub message: String,
    /// For a duplicate key, which `message` names and `yaml_path` ends with: the key and its
    /// mapping, so a caller that knows the key may be a secret can say
    /// [`without_key`](Self::without_key).
    pub duplicate: Option<DuplicateKey>,
}

/// A key written twice in one mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The mapping holding the key (`/` is the document).
    pub mapping: String,
    /// The key's name.
    pub key: String,
}

impl Located {
    /// A problem that is not about a duplicate key.
    fn at(pos: Pos, yaml_path: impl Into<String>, message: String) -> Located {
        Located { pos, yaml_path: yaml_path.into(), message, duplicate: None }
    }

    /// This problem without the name of its duplicate key, in the message and in the path
    /// (which stops at the mapping), for a key that may be a secret (a password written as a
    /// key). A problem that names no key comes back unchanged.
    pub fn without_key(self) -> Located {
        let Some(d) = &self.duplicate else { return self };
        let place = match d.mapping.rsplit('/').next().filter(|s| !s.is_empty()) {
            Some(under) => format!("under `{under}`"),
            None => "in the document".into(),
        };
        let message = format!("a duplicate key {place} (name not shown: it may be a secret; the first occurrence is used)");
        Located { pos: self.pos, yaml_path: d.mapping.clone(), message, duplicate: self.duplicate }
    }
}

/// A parsed flow file.
#[derive(Debug)]
pub struct Parsed {
    /// The document as JSON (duplicate keys removed), for schema validation and serde.
    pub value: Value,
    /// Positions of the nodes.
    pub positions: Positions,
}

/// First private-use character used to rename duplicate keys; the n-th duplicate gets
/// `MANGLE_BASE + n`, so renamed keys never collide with each other.
const MANGLE_BASE: u32 = 0xE000;
/// Duplicates reported before giving up (the first char must stay in the private-use area).
const MAX_DUPLICATES: u32 = 1000;

/// Parses `text`. Returns the parsed document when the YAML is well-formed (duplicate keys
/// aside) and every problem found on the way: all duplicate keys, or the syntax error.
pub fn parse(text: &str) -> (Option<Parsed>, Vec<Located>) {
    // A byte-order mark (Windows editors save one) is not part of the document: left in, it
    // read as "more than one document". Positions are the same without it, as editors show.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut problems = Vec::new();
    let mut chars: Vec<char> = text.chars().collect();
    // (char index of the duplicate key, the character it had) for each renamed key.
    let mut renamed: Vec<(usize, char)> = Vec::new();
    let docs = loop {
        let current: String = chars.iter().collect();
        match MarkedYamlOwned::load_from_str(&current) {
            Ok(docs) => break docs,
            Err(e) if e.info() == "duplicated key in mapping" && (renamed.len() as u32) < MAX_DUPLICATES => {
                let at = e.marker().index();
                let Some(first) = first_key_char(&chars, at) else {
                    // An empty key (`"": 1` twice) cannot be renamed in place: report and stop.
                    // Its mapping is not known; an empty name is no secret.
                    let pos = Pos { line: e.marker().line(), col: e.marker().col() + 1 };
                    problems.push(Located::at(pos, "/", "duplicate key `\"\"` (the first occurrence is used)".into()));
                    return (None, problems);
                };
                let n = renamed.len() as u32;
                renamed.push((at, chars[first]));
                // Invariant: MANGLE_BASE + n < 0xF8FF (n < MAX_DUPLICATES) is a valid scalar value.
                chars[first] = char::from_u32(MANGLE_BASE + n).unwrap_or('\u{E000}');
            }
            Err(e) => {
                // serde_yaml's message and position are the ones users know from other tools;
                // fall back to saphyr's if serde_yaml happens to accept the text.
                let located = match serde_yaml::from_str::<serde_yaml::Value>(&current) {
                    Err(se) => syntax_error(&se, &current),
                    Ok(_) => Located::at(
                        Pos { line: e.marker().line(), col: e.marker().col() + 1 },
                        "/",
                        format!("YAML syntax error: {}", e.info()),
                    ),
                };
                problems.push(located);
                return (None, problems);
            }
        }
    };
    let current: String = chars.iter().collect();
    let positions = Positions { root: docs.first().cloned() };
    for (at, _) in &renamed {
        let (mapping, key) = positions.renamed_key(*at, &renamed).unwrap_or_else(|| ("/".into(), String::new()));
        let pos = pos_of_index(&chars, *at);
        problems.push(duplicate(pos, mapping, key));
    }
    if docs.len() > 1 {
        let pos = docs.get(1).map_or(Pos::START, |d| marker_pos(&d.span.start));
        problems.push(Located::at(pos, "/", format!("a flow file holds one YAML document, found {}", docs.len())));
        return (None, problems);
    }
    let mut yaml: serde_yaml::Value = match serde_yaml::from_str(&current) {
        Ok(v) => v,
        Err(e) => {
            problems.push(syntax_error(&e, &current));
            return (None, problems);
        }
    };
    if let Err(e) = yaml.apply_merge() {
        problems.push(Located::at(Pos::START, "/", format!("YAML merge key (`<<`): {e}")));
        return (None, problems);
    }
    drop_renamed_keys(&mut yaml);
    match serde_json::to_value(&yaml) {
        Ok(value) => (Some(Parsed { value, positions }), problems),
        Err(e) => {
            problems.push(Located::at(Pos::START, "/", format!("unsupported YAML: {e}")));
            (None, problems)
        }
    }
}

/// A duplicate `key` in `mapping`; the problem's path is the key's.
fn duplicate(pos: Pos, mapping: String, key: String) -> Located {
    let yaml_path = if mapping == "/" { format!("/{}", escape(&key)) } else { format!("{mapping}/{}", escape(&key)) };
    let message = format!("duplicate key `{key}` (the first occurrence is used)");
    Located { pos, yaml_path, message, duplicate: Some(DuplicateKey { mapping, key }) }
}

fn syntax_error(e: &serde_yaml::Error, yaml: &str) -> Located {
    let text = e.to_string();
    let pos = e.location().map_or(Pos::START, |l| Pos { line: l.line(), col: l.column() });
    // serde_yaml appends " at line L column C" of `pos`, which is reported separately; other
    // positions in the text (where the enclosing collection began) stay.
    let at = format!(" at line {} column {}", pos.line, pos.col);
    let message = match text.find(&at) {
        Some(i) => format!("{}{}", &text[..i], &text[i + at.len()..]),
        None => text,
    };
    if let Some(opened) = unclosed(&message) {
        return opened;
    }
    // The one YAML mistake the parser's words do not name.
    let tab = yaml.lines().nth(pos.line.saturating_sub(1)).and_then(|l| l.chars().nth(pos.col.saturating_sub(1))) == Some('\t');
    let hint = if tab { " (a tab: YAML indents with spaces only)".to_string() } else { indentation_hint(&message, yaml, pos.line) };
    Located::at(pos, "/", format!("YAML syntax error: {message}{hint}"))
}

/// For the parser's words of a line indented wrong (`did not find expected key`, `mapping
/// values are not allowed in this context`, `did not find expected '-' indicator`), which
/// name no indentation: how far line `line` is indented, and how far the lines it may belong
/// with are (each line above it that is less indented than every line between; a `- ` item
/// also at its content's column). Empty when the line lines up with one of them (then the
/// mistake is another) or there is none.
fn indentation_hint(message: &str, yaml: &str, line: usize) -> String {
    const INDENTATION: [&str; 3] =
        ["did not find expected key", "mapping values are not allowed in this context", "did not find expected '-' indicator"];
    if line < 2 || !INDENTATION.iter().any(|m| message.starts_with(m)) {
        return String::new();
    }
    let lines: Vec<&str> = yaml.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let Some(own) = lines.get(line - 1).map(|l| indent(l)) else { return String::new() };
    let above = || lines[..line - 1].iter().rev().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    // Right under a `key:` that opens a block, any deeper indentation is its own.
    if above().next().is_some_and(|l| l.trim_end().ends_with(':') && own > indent(l)) {
        return String::new();
    }
    let mut levels: Vec<usize> = Vec::new();
    let mut limit = usize::MAX;
    for l in above() {
        let at = indent(l);
        if at >= limit {
            continue;
        }
        levels.push(at);
        // `- key: x`: the item's keys line up with `key`.
        let mut rest = &l[at..];
        while let Some(after) = rest.strip_prefix('-').filter(|a| a.starts_with(' ')) {
            let content = after.trim_start_matches(' ');
            levels.push(l.len() - content.len());
            rest = content;
        }
        limit = at;
    }
    levels.sort_unstable();
    levels.dedup();
    if levels.is_empty() || levels.contains(&own) {
        return String::new();
    }
    let shown: Vec<String> = levels.iter().map(usize::to_string).collect();
    let Some((last, first)) = shown.split_last() else { return String::new() };
    let above = if first.is_empty() { last.clone() } else { format!("{} or {last}", first.join(", ")) };
    format!(
        " (check the indentation: line {line} starts after {own} space{}, the lines above it after {above}; a key lines up \
         with the other keys of its mapping, a `- ` with the other items of its list)",
        if own == 1 { "" } else { "s" }
    )
}

/// A quote (or a `[`, a `{`) never closed: the parser stops at the end of the file, which
/// names nothing useful; the mistake is where it was opened, which its message gives
/// (`found unexpected end of stream, while scanning a quoted scalar at line 4 column 30`).
fn unclosed(message: &str) -> Option<Located> {
    let rest = message.strip_prefix("found unexpected end of stream, while scanning ")?;
    let (what, at) = rest.split_once(" at line ")?;
    let (line, col) = at.split_once(" column ")?;
    let pos = Pos { line: line.trim().parse().ok()?, col: col.trim().parse().ok()? };
    let what = match what {
        "a quoted scalar" => "a quoted value",
        other => other,
    };
    Some(Located::at(pos, "/", format!("YAML syntax error: {what} begun here is never closed (the file ends first)")))
}

/// Index of the first character of the key's text for a key node starting at `at` (skipping
/// an opening quote or a `? ` indicator); `None` for an empty quoted key.
fn first_key_char(chars: &[char], at: usize) -> Option<usize> {
    let mut i = at;
    if chars.get(i) == Some(&'?') {
        i += 1;
        while chars.get(i).is_some_and(|c| *c == ' ' || *c == '\t') {
            i += 1;
        }
    }
    if let Some(q @ ('"' | '\'')) = chars.get(i).copied() {
        i += 1;
        if chars.get(i) == Some(&q) {
            return None;
        }
    }
    (i < chars.len()).then_some(i)
}

fn is_renamed(key: &str) -> bool {
    key.chars().next().is_some_and(|c| (MANGLE_BASE..MANGLE_BASE + MAX_DUPLICATES).contains(&(c as u32)))
}

fn drop_renamed_keys(value: &mut serde_yaml::Value) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            map.retain(|k, _| !k.as_str().is_some_and(is_renamed));
            for (_, v) in map.iter_mut() {
                drop_renamed_keys(v);
            }
        }
        serde_yaml::Value::Sequence(seq) => seq.iter_mut().for_each(drop_renamed_keys),
        serde_yaml::Value::Tagged(t) => drop_renamed_keys(&mut t.value),
        _ => {}
    }
}

fn pos_of_index(chars: &[char], index: usize) -> Pos {
    let before = &chars[..index.min(chars.len())];
    let line = 1 + before.iter().filter(|c| **c == '\n').count();
    let col = 1 + before.iter().rev().take_while(|c| **c != '\n').count();
    Pos { line, col }
}

fn marker_pos(m: &saphyr::Marker) -> Pos {
    Pos { line: m.line(), col: m.col() + 1 }
}

/// Positions of the nodes of one document.
#[derive(Debug)]
pub struct Positions {
    root: Option<MarkedYamlOwned>,
}

/// One step of a YAML path.
enum Step<'a> {
    Key(std::borrow::Cow<'a, str>),
    Index(usize),
}

/// Splits a JSON pointer (`/sinks/0/endpoint`) into steps, undoing `~1` / `~0`.
fn steps(pointer: &str) -> Vec<Step<'_>> {
    pointer
        .split('/')
        .skip(1)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<usize>() {
            Ok(i) => Step::Index(i),
            Err(_) if s.contains('~') => Step::Key(s.replace("~1", "/").replace("~0", "~").into()),
            Err(_) => Step::Key(s.into()),
        })
        .collect()
}

/// Escapes a key for use as one JSON-pointer step.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The node under `node`, looking through tags.
fn inner(mut node: &MarkedYamlOwned) -> &MarkedYamlOwned {
    while let YamlDataOwned::Tagged(_, n) = &node.data {
        node = n;
    }
    node
}

/// A mapping key as the JSON value sees it.
fn key_text(node: &MarkedYamlOwned) -> Option<String> {
    match &inner(node).data {
        YamlDataOwned::Value(ScalarOwned::String(s)) => Some(s.clone()),
        YamlDataOwned::Value(ScalarOwned::Integer(i)) => Some(i.to_string()),
        YamlDataOwned::Value(ScalarOwned::Boolean(b)) => Some(b.to_string()),
        YamlDataOwned::Value(ScalarOwned::FloatingPoint(f)) => Some(f.to_string()),
        YamlDataOwned::Value(ScalarOwned::Null) => Some("null".into()),
        YamlDataOwned::Representation(s, _, _) => Some(s.clone()),
        _ => None,
    }
}

/// The child of `node` at `step`: (key node, value node).
fn child<'n>(node: &'n MarkedYamlOwned, step: &Step<'_>) -> Option<(Option<&'n MarkedYamlOwned>, &'n MarkedYamlOwned)> {
    match (&inner(node).data, step) {
        (YamlDataOwned::Mapping(m), Step::Key(k)) => {
            m.iter().find(|(key, _)| key_text(key).as_deref() == Some(k)).map(|(k, v)| (Some(k), v))
        }
        // A numeric step may also be a mapping key (`1: …`).
        (YamlDataOwned::Mapping(m), Step::Index(i)) => {
            let k = i.to_string();
            m.iter().find(|(key, _)| key_text(key).as_deref() == Some(&k)).map(|(k, v)| (Some(k), v))
        }
        (YamlDataOwned::Sequence(s), Step::Index(i)) => s.get(*i).map(|v| (None, v)),
        _ => None,
    }
}

impl Positions {
    /// Where the node at `pointer` starts; for a path that does not exist (a missing field),
    /// where its deepest existing ancestor starts.
    pub fn node(&self, pointer: &str) -> Pos {
        self.find(pointer, false)
    }

    /// Where the *key* of the node at `pointer` starts (for "unknown field" and the like);
    /// for sequence items and the document, where the node starts.
    pub fn key(&self, pointer: &str) -> Pos {
        self.find(pointer, true)
    }

    fn find(&self, pointer: &str, want_key: bool) -> Pos {
        let Some(mut node) = self.root.as_ref() else {
            return Pos::START;
        };
        let mut key = None;
        for step in steps(pointer) {
            match child(node, &step) {
                Some((k, v)) => {
                    key = k;
                    node = v;
                }
                None => return marker_pos(&node.span.start),
            }
        }
        match (want_key, key) {
            (true, Some(k)) => marker_pos(&k.span.start),
            _ => position_of(node),
        }
    }

    /// The mapping holding the renamed duplicate key starting at char `index` (`/` for the
    /// document), and the key's original name. `renamed` gives every renamed key's first
    /// character, so the path names a renamed mapping (the second `auth:`) as written.
    fn renamed_key(&self, index: usize, renamed: &[(usize, char)]) -> Option<(String, String)> {
        // The key's name as written: its first character back if it was renamed.
        let name_of = |k: &MarkedYamlOwned| {
            let name = key_text(k).unwrap_or_default();
            match renamed.iter().find(|(at, _)| *at == k.span.start.index()) {
                Some((_, original)) if is_renamed(&name) => std::iter::once(*original).chain(name.chars().skip(1)).collect(),
                _ => name,
            }
        };
        fn walk(
            node: &MarkedYamlOwned,
            index: usize,
            path: &str,
            name_of: &dyn Fn(&MarkedYamlOwned) -> String,
        ) -> Option<(String, String)> {
            match &inner(node).data {
                YamlDataOwned::Mapping(m) => m.iter().find_map(|(k, v)| {
                    let name = name_of(k);
                    if k.span.start.index() == index {
                        return Some((path.to_string(), name));
                    }
                    walk(v, index, &format!("{path}/{}", escape(&name)), name_of)
                }),
                YamlDataOwned::Sequence(s) => s.iter().enumerate().find_map(|(i, v)| walk(v, index, &format!("{path}/{i}"), name_of)),
                _ => None,
            }
        }
        let (parent, name) = walk(self.root.as_ref()?, index, "", &name_of)?;
        Some((if parent.is_empty() { "/".into() } else { parent }, name))
    }
}

/// Start of a node; an empty value (`key:` with nothing after it) has no useful span of its
/// own, so its start is as good as any.
fn position_of(node: &MarkedYamlOwned) -> Pos {
    marker_pos(&node.span.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Parsed {
        let (p, problems) = parse(text);
        assert!(problems.is_empty(), "{problems:?}");
        p.unwrap()
    }

    #[test]
    fn locates_nodes_and_keys() {
        let text = "name: x\nsource:\n  path: /in\n  include: [\"*.csv\", \"*.txt\"]\nsinks:\n  - endpoint: erp\n    name: a\n";
        let p = parsed(text);
        assert_eq!(p.value["sinks"][0]["endpoint"], "erp");
        assert_eq!(p.positions.node("/source/path"), Pos { line: 3, col: 9 });
        assert_eq!(p.positions.key("/source/path"), Pos { line: 3, col: 3 });
        assert_eq!(p.positions.node("/source/include/1"), Pos { line: 4, col: 22 });
        assert_eq!(p.positions.node("/sinks/0/name"), Pos { line: 7, col: 11 });
        assert_eq!(p.positions.key("/sinks/0"), Pos { line: 6, col: 5 });
        // A missing field points at its parent.
        assert_eq!(p.positions.node("/source/nosuch"), Pos { line: 3, col: 3 });
        assert_eq!(p.positions.node("/"), Pos { line: 1, col: 1 });
    }

    /// A file saved with a byte-order mark (Notepad's UTF-8) was refused: "deserializing from
    /// YAML containing more than one document is not supported".
    #[test]
    fn a_byte_order_mark_is_not_part_of_the_document() {
        let (p, problems) = parse("\u{feff}name: x\nsource: { path: /in }\n");
        assert!(problems.is_empty(), "{problems:?}");
        let p = p.unwrap();
        assert_eq!(p.value["name"], "x");
        assert_eq!(p.positions.node("/name"), Pos { line: 1, col: 7 });
        assert_eq!(p.positions.node("/source/path"), Pos { line: 2, col: 17 });
    }

    #[test]
    fn locates_in_flow_mappings_with_unicode() {
        let p = parsed("a: { ü: 1, b: \"ä\", c: [1, 2] }\n");
        assert_eq!(p.positions.node("/a/b"), Pos { line: 1, col: 15 });
        assert_eq!(p.positions.key("/a/c"), Pos { line: 1, col: 20 });
        assert_eq!(p.positions.node("/a/c/1"), Pos { line: 1, col: 27 });
    }

    #[test]
    fn reports_every_duplicate_key_and_keeps_the_first() {
        let text = "a: 1\nb:\n  x: 1\n  x: 2\n  y: { z: 1, z: 2 }\na: 3\nc: [ {\"q\": 1, \"q\": 2} ]\nb: 4\n";
        let (p, problems) = parse(text);
        let got: Vec<_> = problems.iter().map(|l| (l.pos.line, l.pos.col, l.yaml_path.as_str(), l.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (4, 3, "/b/x", "duplicate key `x` (the first occurrence is used)"),
                (5, 14, "/b/y/z", "duplicate key `z` (the first occurrence is used)"),
                (6, 1, "/a", "duplicate key `a` (the first occurrence is used)"),
                (7, 15, "/c/0/q", "duplicate key `q` (the first occurrence is used)"),
                (8, 1, "/b", "duplicate key `b` (the first occurrence is used)"),
            ]
        );
        let p = p.unwrap();
        assert_eq!(p.value, serde_json::json!({"a": 1, "b": {"x": 1, "y": {"z": 1}}, "c": [{"q": 1}]}));
        // Positions after a renamed key are unchanged.
        assert_eq!(p.positions.node("/c/0/q"), Pos { line: 7, col: 12 });
    }

    #[test]
    fn a_duplicate_key_can_be_reported_without_its_name() {
        let (_, problems) = parse("a: 1\nauth: { hunter2: 1, hunter2: 2 }\na: 2\n");
        let got: Vec<_> = problems.into_iter().map(Located::without_key).collect();
        let got: Vec<_> = got.iter().map(|l| (l.pos.line, l.pos.col, l.yaml_path.as_str(), l.message.as_str())).collect();
        assert_eq!(
            got,
            [
                (2, 21, "/auth", "a duplicate key under `auth` (name not shown: it may be a secret; the first occurrence is used)"),
                (3, 1, "/", "a duplicate key in the document (name not shown: it may be a secret; the first occurrence is used)"),
            ]
        );
        let (_, problems) = parse("a: [1\n");
        assert_eq!(problems.clone().into_iter().map(Located::without_key).collect::<Vec<_>>(), problems, "only duplicates change");
        // Inside a mapping whose own key is a duplicate (the second `auth:`), the mapping is
        // named as written (before: `/\u{e000}uth`, so not known for a secret's either).
        let (_, problems) = parse("auth: { password: x }\nauth: { hunter2: 1, hunter2: 2 }\n");
        let got: Vec<_> = problems.iter().map(|l| (l.yaml_path.as_str(), l.duplicate.as_ref().map(|d| d.mapping.as_str()))).collect();
        assert_eq!(got, [("/auth/hunter2", Some("/auth")), ("/auth", Some("/"))]);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let (p, problems) = parse("a: 1\nb: [1, 2\nc: 3\n");
        assert!(p.is_none());
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("YAML syntax error: "), "{problems:?}");
        assert!(problems[0].pos.line >= 2, "{problems:?}");
        let (_, problems) = parse("a: 1\n---\nb: 2\n");
        assert_eq!(problems[0].message, "a flow file holds one YAML document, found 2");
        assert_eq!(problems[0].pos.line, 3);
        // An unclosed quote is placed where it opens, not at the end of the file.
        let (_, problems) = parse("a: 1\nb: \"/in }\nc: [ x ]\nd: 2\n");
        assert_eq!(problems[0].message, "YAML syntax error: a quoted value begun here is never closed (the file ends first)");
        assert_eq!(problems[0].pos, Pos { line: 2, col: 4 });
        let (_, problems) = parse("a:\n\tb: 1\n");
        assert!(problems[0].message.ends_with("(a tab: YAML indents with spaces only)"), "{problems:?}");
        assert_eq!(problems[0].pos, Pos { line: 2, col: 1 });
    }

    /// Before, only the parser's words (`did not find expected key, while parsing a block
    /// mapping`), which name no indentation, the usual mistake behind them.
    #[test]
    fn a_line_indented_wrong_says_how_far_it_and_the_lines_above_it_are_indented() {
        let message = |yaml: &str| parse(yaml).1.into_iter().map(|l| (l.pos.line, l.message)).collect::<Vec<_>>();
        let hint = |line: usize, own: &str, above: &str| {
            format!(
                " (check the indentation: line {line} starts after {own}, the lines above it after {above}; a key lines up with \
                 the other keys of its mapping, a `- ` with the other items of its list)"
            )
        };
        let got = message("name: a\nsource:\n  endpoint: p\n path: /in\n");
        assert_eq!(got.len(), 1);
        assert!(got[0].1.starts_with("YAML syntax error: did not find expected key"), "{got:?}");
        assert!(got[0].1.ends_with(&hint(4, "1 space", "0 or 2")), "{got:?}");
        let got = message("name: a\nsource:\n  endpoint: p\n    path: /in\n");
        assert!(got[0].1.ends_with(&hint(4, "4 spaces", "0 or 2")), "{got:?}");
        // A list item's keys line up after its `- `.
        let got = message("name: a\nsinks:\n  - endpoint: p\n    path: /in\n   - endpoint: q\n");
        assert!(got[0].1.ends_with(&hint(5, "3 spaces", "0, 2 or 4")), "{got:?}");
        let got = message("name: a\nendpoints:\n  a:\n    type: local\n   # note\n\n   root: /x\n");
        assert!(got[0].1.ends_with(&hint(7, "3 spaces", "0, 2 or 4")), "{got:?}");
        // Lined up: the mistake is another, and no hint.
        let got = message("name: a\nsource:\n  endpoint: p: q\n");
        assert!(got[0].1.ends_with("mapping values are not allowed in this context"), "{got:?}");
    }

    #[test]
    fn merge_keys_are_applied() {
        let p = parsed("base: &b { x: 1 }\nthing:\n  <<: *b\n  y: 2\n");
        assert_eq!(p.value["thing"], serde_json::json!({"x": 1, "y": 2}));
    }
}
