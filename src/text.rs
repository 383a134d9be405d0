//! Text from outside wharf (a program's stderr, a server's answer) quoted in wharf's own
//! messages: made one line, without control characters, and capped; names from outside (a
//! file's path) laid out in columns by the width a terminal gives them.

/// Which end of a long text [`one_line`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The beginning (an answer's body: the reason comes first).
    Start,
    /// The end (a program's stderr: the reason comes last).
    End,
}

/// Longest part of a server's text (an error message, a reply, a listing line) quoted in
/// wharf's messages and logs, in characters.
pub const SERVER_TEXT: usize = 300;

/// `a, b, c and 4 more`: the items `shown`, the first few of `total`, and how many were left
/// out (nothing when none was).
pub fn first_few(shown: &[String], total: usize) -> String {
    match total.saturating_sub(shown.len()) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// What joins the lines of a quoted text in [`one_line`].
pub const LINE_BREAK: &str = " ⏎ ";

/// `a, b and c`: items listed in a sentence (one item alone; nothing for none).
pub fn and_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.join(""),
    }
}

/// Text from outside (a program's stderr, a webhook's answer) made fit for one log
/// line: its lines trimmed, blank ones dropped, joined with ` ⏎ `; other control characters
/// (a lone `\r`, tabs, terminal escapes) made spaces; at most `max` characters of it kept
/// (`keep`), with `…` where the rest was cut. A log line stays one line — in text logs, and
/// for shippers that take one event per line.
pub fn one_line(text: &str, max: usize, keep: Keep) -> String {
    let flat: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(LINE_BREAK)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let count = flat.chars().count();
    if count <= max {
        return flat;
    }
    match keep {
        Keep::Start => flat.chars().take(max).chain(['…']).collect(),
        Keep::End => ['…'].into_iter().chain(flat.chars().skip(count - max)).collect(),
    }
}

/// `text` with its control characters (a NUL, a line break) written as escapes (`\0`,
/// `\n`), the rest as it is: a flow file's value quoted in a message stays one line of
/// visible text.
pub fn visible(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// `text` as one word of a shell command line a message suggests (`wharf trust h
/// --known-hosts '/srv/My Flows/known_hosts'`): as it is when every character is one a shell
/// leaves alone, else in single quotes (a `'` in it written `'\''`), so that copying the
/// suggestion runs it on the right file.
pub fn shell_word(text: &str) -> std::borrow::Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(format!("'{}'", text.replace('\'', "'\\''")))
    }
}

/// How many terminal columns `text` takes: two for a wide character (CJK ideographs, kana,
/// Hangul syllables, fullwidth forms, most emoji), none for a combining mark (an accent of a
/// decomposed, NFD, name: `e` + U+0301), a format character (a zero-width joiner) or the
/// vowels and finals of decomposed Hangul, one for the rest. Was: characters counted, so a
/// column of Japanese or NFD names was padded wrongly (a column of bytes, worse).
pub fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    use unicode_general_category::{GeneralCategory as G, get_general_category};
    let cp = u32::from(c);
    if matches!(get_general_category(c), G::NonspacingMark | G::EnclosingMark | G::Format)
        // Hangul vowels and finals (Jungseong, Jongseong), as NFD splits a syllable.
        || matches!(cp, 0x1160..=0x11FF | 0xD7B0..=0xD7FF)
    {
        return 0;
    }
    // East Asian Wide and Fullwidth (as wcwidth has them).
    let wide = matches!(
        cp,
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xA960..=0xA97F
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE10..=0xFE19
            | 0xFE30..=0xFE6F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x2FFFD
            | 0x30000..=0x3FFFD
    );
    if wide { 2 } else { 1 }
}

/// Widest a column of names (a run report's paths) is padded to, in terminal columns: a
/// longer name goes on a line of its own.
pub const NAME_COLUMN: usize = 60;

/// Rows of a label, a name and a detail as lines `{indent}{label}  {name}  {detail}`: the
/// labels padded to `label_width`, the names to the widest of them that fits in
/// [`NAME_COLUMN`] (by [`width`], so that the details line up whatever the script). A wider
/// name is written whole on its line, its detail on the next one, at the details' column (was:
/// every name padded to the longest, so one deep path made every line hundreds of characters
/// wide). No line ends in spaces.
pub fn columns(rows: &[(&str, &str, &str)], indent: &str, label_width: usize) -> Vec<String> {
    let column = rows.iter().map(|(_, name, _)| width(name)).filter(|w| *w <= NAME_COLUMN).max().unwrap_or(0);
    let mut lines = Vec::with_capacity(rows.len());
    for (label, name, detail) in rows {
        let label = format!("{label}{}", " ".repeat(label_width.saturating_sub(width(label))));
        let w = width(name);
        if w <= column {
            lines.push(format!("{indent}{label}  {name}{}  {detail}", " ".repeat(column - w)));
        } else {
            lines.push(format!("{indent}{label}  {name}"));
            if !detail.is_empty() {
                lines.push(format!("{indent}{}  {}  {detail}", " ".repeat(label_width), " ".repeat(column)));
            }
        }
    }
    for line in &mut lines {
        line.truncate(line.trim_end().len());
    }
    lines
}

/// A column of a [`table`]: the least width of its cells, in terminal columns, the side they
/// keep, and the spaces before it (two unless [`Column::gap`] says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    min: usize,
    right: bool,
    gap: usize,
    /// The widest a cell may widen the column to (a name from outside: [`NAME_COLUMN`]); a
    /// wider one runs past it on its own line.
    most: usize,
}

impl Column {
    /// Cells on the left, the column at least `min` wide, widened to its widest cell.
    pub const fn left(min: usize) -> Self {
        Column { min, right: false, gap: 2, most: usize::MAX }
    }

    /// Cells on the right (numbers).
    pub const fn right(min: usize) -> Self {
        Column { right: true, ..Column::left(min) }
    }

    /// Names from outside (paths): on the left, widened to at most [`NAME_COLUMN`] (one deep
    /// path runs past the column on its own line instead of widening every line).
    pub const fn name(min: usize) -> Self {
        Column { most: NAME_COLUMN, ..Column::left(min) }
    }

    /// `gap` spaces before this column instead of two.
    pub const fn gap(self, gap: usize) -> Self {
        Column { gap, ..self }
    }
}

/// Rows of cells (a header first) as the lines of a table: each column as wide as its widest
/// cell (at least its `min`), by [`width`], so that CJK or NFD text lines up; the last column
/// is not padded and no line ends in spaces (was: every line padded to the last column, and
/// a column a cell was wider than, `wharf status`'s last run, pushed the rest of its line out
/// of line).
pub fn table(columns: &[Column], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let widest = rows.iter().filter_map(|r| r.get(i)).map(|s| width(s)).filter(|w| *w <= c.most).max();
            widest.unwrap_or(0).max(c.min)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut line = String::new();
            for (i, (cell, (c, w))) in row.iter().zip(columns.iter().zip(&widths)).enumerate() {
                if i > 0 {
                    line.push_str(&" ".repeat(c.gap));
                }
                let pad = " ".repeat(w.saturating_sub(width(cell)));
                if c.right {
                    line.push_str(&pad);
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&pad);
                }
            }
            line.truncate(line.trim_end().len());
            line
        })
        .collect()
}

/// A size for people: `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_few_says_how_many_were_left_out() {
        let shown = ["a".to_string(), "b".to_string()];
        assert_eq!(first_few(&shown, 2), "a, b");
        assert_eq!(first_few(&shown, 6), "a, b and 4 more");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn quoted_text_is_made_one_line_and_capped() {
        let stderr = "step one\r\n\n  \x1b[31mfailed\x1b[0m\tbadly  \nexit\n";
        assert_eq!(one_line(stderr, 100, Keep::End), "step one ⏎  [31mfailed [0m badly ⏎ exit");
        assert_eq!(one_line("a\nb\nc", 5, Keep::End), "…b ⏎ c");
        assert_eq!(one_line("abcdef", 3, Keep::Start), "abc…");
        assert_eq!(one_line("abcdef", 3, Keep::End), "…def");
        assert_eq!(one_line("é\nü", 10, Keep::Start), "é ⏎ ü", "counted in characters, not bytes");
        assert_eq!(one_line("\n \n", 10, Keep::Start), "");
    }

    #[test]
    fn width_is_what_a_terminal_shows() {
        assert_eq!(width("orders.csv"), 10);
        assert_eq!(width("受注.csv"), 8, "two columns an ideograph");
        assert_eq!(width("cafe\u{301}.csv"), 8, "NFD: the accent takes no column");
        assert_eq!(width("café.csv"), 8, "NFC");
        // 한 decomposed: a leading consonant (two columns), a vowel and a final (none).
        assert_eq!(width("\u{1112}\u{1161}\u{11AB}.csv"), 6);
        assert_eq!(width("ｆｕｌｌ"), 8);
    }

    /// The details line up at one terminal column whatever the script of the names, and a
    /// name too long for the column goes on a line of its own (was: padded by characters to
    /// the longest name, so CJK and NFD names misaligned and one deep path made every line
    /// hundreds of characters wide).
    #[test]
    fn columns_line_up_by_width_and_keep_lines_short() {
        let deep = format!("/in/{}/x.csv", "deep/".repeat(30));
        let rows = [
            ("delivered", "/in/a.csv", "→ out:/a.csv"),
            ("delivered", "/in/受注.csv", "→ out:/受注.csv"),
            ("skipped", "/in/cafe\u{301}.csv", "already delivered"),
            ("FAILED", deep.as_str(), "sink out: refused"),
            ("not ready", "/in/b.csv", ""),
        ];
        let lines = columns(&rows, "  ", 11);
        assert_eq!(lines.len(), 6, "{lines:#?}");
        let detail_at = |line: &str, detail: &str| width(&line[..line.find(detail).unwrap()]);
        let at = detail_at(&lines[0], "→");
        assert_eq!(at, 2 + 11 + 2 + width("/in/受注.csv") + 2);
        assert_eq!(detail_at(&lines[1], "→"), at);
        assert_eq!(detail_at(&lines[2], "already"), at);
        assert_eq!(lines[3], format!("  FAILED       {deep}"), "the long path whole, on its own line");
        assert_eq!(detail_at(&lines[4], "sink out"), at);
        assert_eq!(lines[5], "  not ready    /in/b.csv", "no trailing spaces");
        assert!(lines.iter().filter(|l| !l.contains(&deep)).all(|l| width(l) <= 2 + 11 + 2 + NAME_COLUMN + 2 + 20), "{lines:#?}");
    }

    /// `wharf runs` ended every line in spaces (the error column, mostly empty, after the
    /// padded records column); `wharf status`'s last run pushed its line out of line when it
    /// was wider than its column ("…, 1 quarantined").
    #[test]
    fn a_table_lines_up_by_width_and_no_line_ends_in_spaces() {
        let cols = [Column::right(3), Column::left(8), Column::left(0).gap(1), Column::left(0)];
        let row = |cells: [&str; 4]| cells.map(str::to_string).to_vec();
        let rows = [
            row(["run", "last run", "n", "error"]),
            row(["7", "#7 ok, 3 delivered, 1 quarantined", "2", ""]),
            row(["12", "受注 ok", "10", "sink refused"]),
        ];
        let lines = table(&cols, &rows);
        // "run" 3 wide; "last run" 33 (the quarantined cell); "n" 2 and one space before it.
        let pad = |n: usize| " ".repeat(n);
        assert_eq!(lines[0], format!("run  last run{} n   error", pad(33 - 8)));
        assert_eq!(lines[1], "  7  #7 ok, 3 delivered, 1 quarantined 2", "no trailing spaces");
        assert_eq!(lines[2], format!(" 12  受注 ok{} 10  sink refused", pad(33 - 7)), "padded by width, not characters");
        let at = |l: &str| width(&l[..l.rfind("  ").unwrap()]);
        assert_eq!(at(&lines[0]), at(&lines[2]), "the last column starts at one terminal column");
        // A path wider than a name column runs past it on its own line only.
        let deep = format!("/in/{}x.csv", "deep/".repeat(20));
        let rows = [row(["1", "/in/a.csv", "x", "ok"]), row(["2", deep.as_str(), "y", "ok"])];
        let lines = table(&[Column::right(0), Column::name(4), Column::left(0), Column::left(0)], &rows);
        assert_eq!(lines[0], "1  /in/a.csv  x  ok");
        assert_eq!(lines[1], format!("2  {deep}  y  ok"));
    }

    #[test]
    fn a_shell_word_is_quoted_only_when_a_shell_would_split_or_expand_it() {
        assert_eq!(shell_word("/srv/flows/known_hosts"), "/srv/flows/known_hosts");
        assert_eq!(shell_word("/srv/My Flows/kh"), "'/srv/My Flows/kh'");
        assert_eq!(shell_word("it's$HOME"), "'it'\\''s$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
