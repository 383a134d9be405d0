//! Text from outside wharf (a program's stderr, a server's answer) quoted in wharf's own
//! messages: made one line, without control characters, and capped.

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

/// What joins the lines of a quoted text in [`one_line`].
pub const LINE_BREAK: &str = " ⏎ ";

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
    fn a_shell_word_is_quoted_only_when_a_shell_would_split_or_expand_it() {
        assert_eq!(shell_word("/srv/flows/known_hosts"), "/srv/flows/known_hosts");
        assert_eq!(shell_word("/srv/My Flows/kh"), "'/srv/My Flows/kh'");
        assert_eq!(shell_word("it's$HOME"), "'it'\\''s$HOME'");
        assert_eq!(shell_word(""), "''");
    }
}
