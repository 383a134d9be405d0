//! Differences a failed case shows: a unified line diff of two texts (expected vs actual,
//! with context lines), and the field paths where two lists of records differ.
//!
//! Owns only the presentation of differences; what is compared, and when, is `run.rs`'s.
//! The line diff is a plain longest-common-subsequence diff — fixtures are small — with a
//! size cap past which it shows the first differing line instead.

use std::fmt::Write as _;

use serde_json::Value;

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// Past this many line pairs (expected × actual) the full diff is not computed.
const MAX_CELLS: usize = 4_000_000;
/// Record differences listed before the rest is counted.
const MAX_RECORD_DIFFS: usize = 20;

/// One line of an edit script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Same(usize, usize),
    Del(usize),
    Add(usize),
}

/// A unified diff of `expected` → `actual` (`---`/`+++` headers named by the labels). A line
/// break `\r` shows as `␍`, so a CRLF/LF difference is visible, and a byte that is not UTF-8
/// as `\xE9`. Empty when equal.
pub fn unified(expected: &[u8], actual: &[u8], expected_label: &str, actual_label: &str) -> String {
    if expected == actual {
        return String::new();
    }
    let (e, a) = (escaped(expected), escaped(actual));
    let (el, al) = (lines(&e), lines(&a));
    let mut out = format!("--- {expected_label}\n+++ {actual_label}\n");
    if el.len().saturating_mul(al.len()) > MAX_CELLS {
        let i = el.iter().zip(&al).take_while(|(x, y)| x == y).count();
        let show = |l: Option<&&str>| l.map_or_else(|| "(end of text)".to_string(), |l| visible(l));
        let _ = writeln!(out, "(too large for a full diff) first difference at line {}:", i + 1);
        let _ = writeln!(out, "-{}\n+{}", show(el.get(i)), show(al.get(i)));
        return out;
    }
    let edits = script(&el, &al);
    // Hunks: runs of edits with up to CONTEXT unchanged lines around each change.
    let changed: Vec<usize> = edits.iter().enumerate().filter(|(_, e)| !matches!(e, Edit::Same(..))).map(|(i, _)| i).collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + CONTEXT + 1).min(edits.len());
        let hunk = &edits[start..end];
        let (mut e0, mut a0) = (None, None);
        let (mut ne, mut na) = (0, 0);
        for ed in hunk {
            match *ed {
                Edit::Same(i, j) => {
                    e0.get_or_insert(i);
                    a0.get_or_insert(j);
                    ne += 1;
                    na += 1;
                }
                Edit::Del(i) => {
                    e0.get_or_insert(i);
                    ne += 1;
                }
                Edit::Add(j) => {
                    a0.get_or_insert(j);
                    na += 1;
                }
            }
        }
        // An empty side starts where the other side's position is (unified diff convention).
        let pos = |first: Option<usize>, n: usize, before: usize| if n == 0 { before } else { first.map_or(0, |f| f + 1) };
        let before_e = edits[..start].iter().filter(|e| !matches!(e, Edit::Add(_))).count();
        let before_a = edits[..start].iter().filter(|e| !matches!(e, Edit::Del(_))).count();
        let _ = writeln!(out, "@@ -{},{ne} +{},{na} @@", pos(e0, ne, before_e), pos(a0, na, before_a));
        for ed in hunk {
            let _ = match *ed {
                Edit::Same(i, _) => writeln!(out, " {}", visible(el[i])),
                Edit::Del(i) => writeln!(out, "-{}", visible(el[i])),
                Edit::Add(j) => writeln!(out, "+{}", visible(al[j])),
            };
        }
        k += 1;
    }
    // An empty text has no last line to lack its line break.
    if e.ends_with('\n') != a.ends_with('\n') && !e.is_empty() && !a.is_empty() {
        let which = if a.ends_with('\n') { "expected" } else { "actual" };
        let _ = writeln!(out, "\\ No newline at end of the {which} text");
    }
    out
}

/// The text with each byte that is not UTF-8 written `\xE9`: a file in Latin-1 (delivered as it
/// came) differs where its bytes do; replaced by U+FFFD, every such byte looked the same. A
/// character that shows as nothing — a byte-order mark, a zero-width space, a control
/// character but tab and line breaks — is written `\u{FEFF}`: the lines looked equal.
fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            let invisible = matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')
                || (c.is_control() && !matches!(c, '\t' | '\n' | '\r'));
            if invisible {
                let _ = write!(out, "\\u{{{:04X}}}", u32::from(c));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// Lines without their `\n` (a trailing `\r` is kept, to be shown).
fn lines(text: &str) -> Vec<&str> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() { vec![] } else { body.split('\n').collect() }
}

fn visible(line: &str) -> String {
    match line.strip_suffix('\r') {
        Some(l) => format!("{l}␍"),
        None => line.to_string(),
    }
}

/// The edit script turning `a` into `b`, from the longest common subsequence.
fn script(a: &[&str], b: &[&str]) -> Vec<Edit> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: LCS length of a[i..] and b[j..].
    let mut lcs = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = if a[i] == b[j] { lcs[at(i + 1, j + 1)] + 1 } else { lcs[at(i + 1, j)].max(lcs[at(i, j + 1)]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(n + m));
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out.push(Edit::Same(i, j));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[at(i, j + 1)] >= lcs[at(i + 1, j)]) {
            out.push(Edit::Add(j));
            j += 1;
        } else {
            out.push(Edit::Del(i));
            i += 1;
        }
    }
    // Deletions before additions within a change, as diff tools print them.
    let mut k = 0;
    while k < out.len() {
        let end = out[k..].iter().position(|e| matches!(e, Edit::Same(..))).map_or(out.len(), |p| k + p);
        out[k..end].sort_by_key(|e| matches!(e, Edit::Add(_)));
        k = end + 1;
    }
    out
}

/// Where two lists of records differ, one line per difference: `record 2, field email:
/// expected "a", found "b"`, `record 3: missing`, `record 4: not expected: {…}`.
pub fn records(expected: &[Value], actual: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..expected.len().max(actual.len()) {
        match (expected.get(i), actual.get(i)) {
            (Some(e), Some(a)) => fields(e, a, "", &mut |path, msg| out.push(at_record(i, path, msg))),
            (Some(e), None) => out.push(format!("record {}: missing (expected {})", i + 1, short(e))),
            (None, Some(a)) => out.push(format!("record {}: not expected: {}", i + 1, short(a))),
            (None, None) => {}
        }
    }
    if out.len() > MAX_RECORD_DIFFS {
        let more = out.len() - MAX_RECORD_DIFFS;
        out.truncate(MAX_RECORD_DIFFS);
        out.push(format!("… and {more} more difference(s)"));
    }
    out
}

fn at_record(i: usize, path: &str, msg: String) -> String {
    if path.is_empty() { format!("record {}: {msg}", i + 1) } else { format!("record {}, field {path}: {msg}", i + 1) }
}

/// Compares two values field by field, calling `report(path, message)` for each difference.
fn fields(e: &Value, a: &Value, path: &str, report: &mut dyn FnMut(&str, String)) {
    let join = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for (k, ev) in eo {
                match ao.get(k) {
                    Some(av) => fields(ev, av, &join(k), report),
                    None => report(&join(k), format!("missing (expected {})", short(ev))),
                }
            }
            for (k, av) in ao.iter().filter(|(k, _)| !eo.contains_key(*k)) {
                report(&join(k), format!("not expected: {}", short(av)));
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                fields(ev, av, &join(&i.to_string()), report);
            }
        }
        (Value::Number(en), Value::Number(an)) if same_number(en, an) => {}
        _ if e == a => {}
        _ => report(path, format!("expected {}, found {}", short(e), short(a))),
    }
}

/// Whether two numbers are the same number, however written (numbers keep their text:
/// `1.50` from a partner's JSON is `1.5` in a test's YAML, and `1` is `1.0`): integers
/// compared exactly (a 20-digit order number's last digit counts), others as floats.
fn same_number(e: &serde_json::Number, a: &serde_json::Number) -> bool {
    let integer = |n: &serde_json::Number| n.to_string().parse::<i128>().ok();
    match (integer(e), integer(a)) {
        (Some(x), Some(y)) => x == y,
        _ => e.as_f64().is_some_and(|x| a.as_f64() == Some(x)),
    }
}

/// A value in a message, cut when long.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 { format!("{}…", s.chars().take(120).collect::<String>()) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unified_diff_with_context_and_hunk_headers() {
        let e: String = (1..=20).map(|i| format!("l{i}\n")).collect();
        let a = e.replace("l3\n", "X\n").replace("l18\n", "Y\n");
        let d = unified(e.as_bytes(), a.as_bytes(), "expected", "actual");
        assert_eq!(
            d,
            "--- expected\n+++ actual\n@@ -1,6 +1,6 @@\n l1\n l2\n-l3\n+X\n l4\n l5\n l6\n@@ -15,6 +15,6 @@\n l15\n l16\n l17\n-l18\n+Y\n l19\n l20\n"
        );
        // Changes closer than twice the context share a hunk.
        let a = e.replace("l3\n", "X\n").replace("l9\n", "Y\n");
        assert_eq!(unified(e.as_bytes(), a.as_bytes(), "e", "a").matches("@@ -").count(), 1);
        assert_eq!(unified(b"x\n", b"x\n", "e", "a"), "");
    }

    #[test]
    fn line_endings_and_missing_newlines_are_visible() {
        let d = unified(b"a\r\nb\r\n", b"a\nb\r\n", "e", "a");
        assert!(d.contains("-a␍\n+a\n b␍\n"), "{d}");
        let d = unified(b"a\n", b"a", "e", "a");
        assert!(d.contains("No newline at end of the actual text"), "{d}");
        let d = unified(b"", b"x\n", "e", "a");
        assert!(d.contains("@@ -0,0 +1,1 @@\n+x\n") && !d.contains("No newline"), "{d}");
    }

    #[test]
    fn characters_that_show_as_nothing_are_visible() {
        // A byte-order mark before a row: the two lines looked the same.
        let d = unified(b"a\nb\n", "a\n\u{feff}b\u{200b}\u{1}\tc\n".as_bytes(), "e", "a");
        assert!(d.contains("-b\n+\\u{FEFF}b\\u{200B}\\u{0001}\tc\n"), "{d}");
    }

    #[test]
    fn bytes_that_are_not_utf8_show_where_they_differ() {
        // A Latin-1 file delivered as it came: é (0xE9) where è (0xE8) was expected. Both read
        // as U+FFFD, the diff showed no line at all.
        let d = unified(b"id;name\n1;caf\xe8\n2;b\n", b"id;name\n1;caf\xe9\n2;b\n", "e", "a");
        assert!(d.contains("-1;caf\\xE8\n+1;caf\\xE9\n"), "{d}");
        assert!(d.contains(" id;name\n"), "valid text as it is: {d}");
        assert_eq!(unified("é\n".as_bytes(), "é\n".as_bytes(), "e", "a"), "");
    }

    #[test]
    fn numbers_are_compared_as_numbers_however_written() {
        let n = |t: &str| serde_json::from_str::<Value>(t).unwrap();
        let differs = |e: &str, a: &str| {
            let mut found = Vec::new();
            fields(&n(e), &n(a), "x", &mut |_, m| found.push(m));
            !found.is_empty()
        };
        assert!(!differs("1.5", "1.50") && !differs("1", "1.0") && !differs("100", "1e2"));
        assert!(differs("12345678901234567890", "12345678901234567891"), "exact for integers");
        assert!(differs("1.5", "1.25") && differs("1", "\"1\""));
    }

    #[test]
    fn record_differences_name_the_field() {
        let e = [json!({"id": "E1", "name": "Anna", "tags": ["a", "b"]}), json!({"id": "E2"})];
        let a = [json!({"id": "E1", "name": "Anna M", "tags": ["a", "c"], "x": 1})];
        assert_eq!(
            records(&e, &a),
            [
                "record 1, field name: expected \"Anna\", found \"Anna M\"",
                "record 1, field tags.1: expected \"b\", found \"c\"",
                "record 1, field x: not expected: 1",
                "record 2: missing (expected {\"id\":\"E2\"})",
            ]
        );
        assert!(records(&e, &e).is_empty());
    }
}
