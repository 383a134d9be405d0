//! "Did you mean": the names close to one that was not found (a time zone or a field of a flow
//! file, a flow named on the command line), for the message that says it was not found.
//!
//! Owns the closeness rule (letter case, then at most two typing mistakes) and the wording of
//! the hint. It does not know where names come from: each caller gives the names there are.

/// Up to three of `names` close to `wanted`, closest first: the same name in other letter
/// case; then those `related` accepts (it is given the name in lower case: a time zone's
/// city, say); then those at most two typing mistakes away (letter case aside), one for a
/// name of up to five characters (two would make `ab` suggest `xy`; two neighbours swapped
/// are one). `wanted` itself is never one.
pub fn close<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>, related: impl Fn(&str) -> bool) -> Vec<&'a str> {
    let lower_wanted = wanted.to_lowercase();
    let mut scored: Vec<(usize, &'a str)> = names
        .into_iter()
        .filter(|name| *name != wanted)
        .filter_map(|name| {
            let lower = name.to_lowercase();
            if lower == lower_wanted {
                return Some((0, name));
            }
            if related(&lower) {
                return Some((1, name));
            }
            let d = distance(&lower, &lower_wanted);
            let most = if lower_wanted.chars().count() <= 5 { 1 } else { 2 };
            (d <= most).then_some((d + 1, name))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, name)| name).collect()
}

/// What a message adds for the [`close`] names: `` (did you mean `a`?)``, `` (did you mean
/// one of `a`, `b`?)``, or nothing when there are none.
pub fn did_you_mean(close: &[&str]) -> String {
    match close {
        [] => String::new(),
        [one] => format!(" (did you mean `{one}`?)"),
        several => format!(" (did you mean one of {}?)", several.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")),
    }
}

/// Edit distance, in characters: a character added, removed or replaced, or two neighbours
/// swapped (`paht` for `path`, one typing mistake: was two, too many for a short name), each
/// one step (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Rows i-1 and i-2 of the table, and the one being filled.
    let mut before: Vec<usize> = Vec::new();
    let mut above: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let mut d = (above[j - 1] + usize::from(a[i - 1] != b[j - 1])).min(row[j - 1] + 1).min(above[j] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        before = std::mem::replace(&mut above, row);
    }
    above[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_other_letter_case_come_first_then_the_fewest_mistakes() {
        let names = ["ordres", "orders", "invoices", "order"];
        assert_eq!(close("Orders", names, |_| false), ["orders", "order", "ordres"]);
        assert_eq!(close("invoice", names, |_| false), ["invoices"]);
        assert_eq!(close("payments", names, |_| false), Vec::<&str>::new());
        assert_eq!(close("orders", ["orders"], |_| false), Vec::<&str>::new(), "never the name itself");
        assert_eq!(close("x", ["ax", "ax"], |_| false), ["ax"], "once each");
        assert_eq!(close("ab", ["xy", "abc"], |_| false), ["abc"], "one mistake in a short name");
        assert_eq!(close("berlin", ["Europe/Berlin", "Europe/Bern"], |l| l.ends_with("/berlin")), ["Europe/Berlin"]);
    }

    #[test]
    fn the_hint_names_one_or_several() {
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["orders"]), " (did you mean `orders`?)");
        assert_eq!(did_you_mean(&["a", "b"]), " (did you mean one of `a`, `b`?)");
    }

    #[test]
    fn distance_counts_characters() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("zürich", "zurich"), 1);
        assert_eq!(distance("paht", "path"), 1, "two neighbours swapped");
        assert_eq!(distance("abc", "ca"), 3);
        assert_eq!(distance("abc", ""), 3);
    }
}
