//! `${env:NAME}` and `${file:PATH}` in credential fields (`host`, `user`, `password`,
//! `passphrase`).
//!
//! Owns the substitution syntax and the rule that an error names the variable or the file,
//! never a value. `$${` writes a literal `${`. A `${file:…}` path is relative to the flow
//! file's folder; a leading byte-order mark and one trailing line break of the file are
//! dropped (editors add them); a value holding another line break or a NUL is refused (it
//! would end a protocol line early).
//! This module reads the environment and secret files through [`Lookup`], so tests can
//! inject both; it does not decide which fields may be interpolated (that is `validate.rs`).

use std::env::VarError;
use std::path::{Path, PathBuf};

use super::paths::absolute;

/// Where `${env:…}` and `${file:…}` get their values.
pub struct Lookup<'a> {
    /// The flow file's folder; relative `${file:…}` paths resolve against it.
    pub base_dir: &'a Path,
    /// Reads an environment variable (`std::env::var` outside tests).
    pub env: &'a dyn Fn(&str) -> Result<String, VarError>,
}

impl Lookup<'_> {
    /// Resolves `path` against the flow file's folder; `~/…` is in the home folder (`HOME`),
    /// as in a shell. The result is absolute, without `.` and the `name/..` pairs that name
    /// the same folder ([`super::paths::clean`]).
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        if let Some(rest) = path.strip_prefix("~/")
            && let Ok(home) = (self.env)("HOME")
        {
            return absolute(&Path::new(&home).join(rest));
        }
        absolute(&self.base_dir.join(path))
    }
}

/// Substitutes every `${env:NAME}` / `${file:PATH}` in `text`. Returns every problem found,
/// each a sentence naming the variable or file.
pub fn interpolate(text: &str, lookup: &Lookup<'_>) -> Result<String, Vec<String>> {
    resolve(text, lookup).map_err(|errors| errors.into_iter().map(|e| e.message).collect())
}

/// Why a `${…}` could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefProblem {
    /// A sentence naming the variable or the file, never a value.
    pub message: String,
    /// The reference is right but its value is not to be had here (a variable not set, a
    /// file not readable, a value of several lines); `false`: the text itself is wrong.
    pub unavailable: bool,
}

/// [`interpolate`], each problem with whether the text or the machine is at fault.
pub fn resolve(text: &str, lookup: &Lookup<'_>) -> Result<String, Vec<RefProblem>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                // Not the text itself: in a `password:` it is the secret.
                let message = "`${` without a closing `}` (write `$${` for a literal `${`)".to_string();
                errors.push(RefProblem { message, unavailable: false });
                return Err(errors);
            };
            let reference = &after[..end];
            match expand(reference, lookup) {
                Ok(value) => out.push_str(&value),
                // A well-formed reference whose value is not to be had here.
                Err(message) => errors.push(RefProblem { message, unavailable: well_formed(reference) }),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// Whether `text` takes anything from outside the flow file: a `${env:…}` or `${file:…}`
/// (even one that cannot be resolved here). A credential without one is written in the file
/// itself, in clear (`$${` is a literal `${`, not a reference).
pub fn has_reference(text: &str) -> bool {
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            if after.split_once('}').is_some_and(|(reference, _)| well_formed(reference)) {
                return true;
            }
            rest = after;
        } else {
            rest = &tail[1..];
        }
    }
    false
}

/// The longest `${file:…}` a credential is read from (a password, a passphrase, a token).
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Whether the inside of a `${…}` is a reference (`env:NAME`, `file:PATH`).
fn well_formed(reference: &str) -> bool {
    matches!(reference.split_once(':'), Some(("env" | "file", rest)) if !rest.is_empty())
}

/// Expands the inside of one `${…}`.
fn expand(reference: &str, lookup: &Lookup<'_>) -> Result<String, String> {
    match reference.split_once(':') {
        Some(("env", name)) if !name.is_empty() => match (lookup.env)(name) {
            Ok(value) if !is_one_line(&value) => {
                Err(format!("environment variable `{name}` holds a line break or NUL character; a credential is one line"))
            }
            Ok(value) => Ok(value),
            Err(VarError::NotPresent) => Err(format!("environment variable `{name}` is not set")),
            Err(VarError::NotUnicode(_)) => Err(format!("environment variable `{name}` is not valid UTF-8")),
        },
        Some(("file", path)) if !path.is_empty() => {
            let full = lookup.resolve_path(path);
            match super::inputs::read_small_text(&full, MAX_SECRET_FILE) {
                Ok(mut value) => {
                    // Windows Notepad starts a saved file with a byte-order mark: not part of
                    // any password, and invisible in an editor.
                    if let Some(rest) = value.strip_prefix('\u{feff}') {
                        value = rest.to_string();
                    }
                    if value.ends_with('\n') {
                        value.pop();
                        if value.ends_with('\r') {
                            value.pop();
                        }
                    }
                    if !is_one_line(&value) {
                        return Err(format!(
                            "secret file `{}` holds more than one line (or a NUL character); a credential is one line (one trailing line break is dropped)",
                            full.display()
                        ));
                    }
                    Ok(value)
                }
                Err(e) => Err(format!("cannot read secret file `{}`: {}", full.display(), crate::endpoint::local::io_reason(&e))),
            }
        }
        // Not the reference itself: a password holding `${` would be quoted.
        _ => Err("a `${…}` here is not a reference: write `${env:NAME}` or `${file:PATH}`, or `$${` for a literal `${`".to_string()),
    }
}

/// Whether `value` has no line break and no NUL: a credential goes into a protocol line
/// (`PASS …\r\n` on FTP), where a line break would end it early and start a command of its own.
pub fn is_one_line(value: &str) -> bool {
    !value.contains(['\n', '\r', '\0'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "USER_NAME" => Ok("wharf".into()),
            "PASS" => Ok("s3cret".into()),
            "TWO_LINES" => Ok("s3cret\nDELE important.csv".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    #[test]
    fn a_reference_is_told_from_a_value_written_in_clear() {
        for text in ["${env:PASS}", "pre-${file:secret.txt}", "$${x}${env:A}"] {
            assert!(has_reference(text), "{text}");
        }
        for text in ["hunter2", "", "$${env:PASS}", "a$b", "${nope}", "${env:", "$"] {
            assert!(!has_reference(text), "{text}");
        }
    }

    fn with_lookup<T>(dir: &Path, f: impl FnOnce(&Lookup<'_>) -> T) -> T {
        f(&Lookup { base_dir: dir, env: &env })
    }

    #[test]
    fn paths_are_relative_to_the_flow_and_tilde_is_home() {
        let home = |n: &str| if n == "HOME" { Ok("/home/ops".to_string()) } else { Err(VarError::NotPresent) };
        let l = Lookup { base_dir: Path::new("/flows"), env: &home };
        assert_eq!(l.resolve_path("keys/id"), PathBuf::from("/flows/keys/id"));
        assert_eq!(l.resolve_path("~/.ssh/id_ed25519"), PathBuf::from("/home/ops/.ssh/id_ed25519"));
        assert_eq!(l.resolve_path("/etc/k"), PathBuf::from("/etc/k"));
    }

    #[test]
    fn substitutes_env_and_keeps_other_dollars() {
        with_lookup(Path::new("/"), |l| {
            assert_eq!(interpolate("${env:USER_NAME}", l).unwrap(), "wharf");
            assert_eq!(interpolate("a-${env:USER_NAME}-${env:PASS}$", l).unwrap(), "a-wharf-s3cret$");
            assert_eq!(interpolate("cost $5 and $${env:PASS}", l).unwrap(), "cost $5 and ${env:PASS}");
            assert_eq!(interpolate("plain", l).unwrap(), "plain");
        });
    }

    #[test]
    fn errors_name_the_variable_never_a_value() {
        with_lookup(Path::new("/"), |l| {
            let errs = interpolate("${env:MISSING}/${env:PASS}/${env:ALSO_MISSING}", l).unwrap_err();
            assert_eq!(errs, ["environment variable `MISSING` is not set", "environment variable `ALSO_MISSING` is not set"]);
            assert!(!errs.concat().contains("s3cret"));
            assert!(interpolate("${env:PASS", l).unwrap_err()[0].contains("closing"));
            assert!(interpolate("${vault:x}", l).unwrap_err()[0].contains("not a reference"));
            assert!(interpolate("${env:}", l).unwrap_err()[0].contains("not a reference"));
        });
    }

    #[test]
    fn a_literal_password_holding_dollar_brace_is_not_quoted() {
        // Before: "`${` without a closing `}` in \"hunter2${ss\"" and "`${nter2}` is not a
        // reference" printed the password, or part of it, in `wharf validate`.
        with_lookup(Path::new("/"), |l| {
            for text in ["hunter2${ss", "hu${nter2}x", "ab${env:PASS}${hunter2"] {
                let errs = interpolate(text, l).unwrap_err();
                assert!(!errs.concat().contains("hunter2") && !errs.concat().contains("nter2"), "{errs:?}");
                assert!(errs.concat().contains("$${"), "{errs:?}");
            }
        });
    }

    #[test]
    fn reads_files_relative_to_the_flow_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pass.txt"), "from-file\r\n").unwrap();
        with_lookup(dir.path(), |l| {
            assert_eq!(interpolate("${file:pass.txt}", l).unwrap(), "from-file");
            assert_eq!(interpolate(&format!("${{file:{}}}", dir.path().join("pass.txt").display()), l).unwrap(), "from-file");
            let err = &interpolate("${file:nope.txt}", l).unwrap_err()[0];
            // The OS's reason, as the rest of wharf says it (before: "… (os error 2)").
            assert_eq!(*err, format!("cannot read secret file `{}`: No such file or directory", dir.path().join("nope.txt").display()));
            // A device was read without end (the load hung): refused, as a FIFO is.
            let err = &interpolate("${file:/dev/zero}", l).unwrap_err()[0];
            assert_eq!(err, "cannot read secret file `/dev/zero`: not a regular file");
        });
    }

    #[test]
    fn a_secret_of_several_lines_is_refused_naming_its_source() {
        // Before: accepted, and an FTP login sent `PASS s3cret\r\nDELE important.csv\r\n`.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("two.txt"), "s3cret\nsecond\n").unwrap();
        std::fs::write(dir.path().join("nul.txt"), "s3\0cret").unwrap();
        std::fs::write(dir.path().join("one.txt"), "s3cret\n").unwrap();
        with_lookup(dir.path(), |l| {
            let errs = interpolate("${file:two.txt}", l).unwrap_err();
            assert_eq!(errs.len(), 1);
            assert!(
                errs[0].starts_with(&format!("secret file `{}` holds more than one line", dir.path().join("two.txt").display())),
                "{errs:?}"
            );
            assert!(interpolate("${file:nul.txt}", l).unwrap_err()[0].contains("NUL"));
            assert_eq!(
                interpolate("${env:TWO_LINES}", l).unwrap_err(),
                ["environment variable `TWO_LINES` holds a line break or NUL character; a credential is one line"]
            );
            assert_eq!(interpolate("${file:one.txt}", l).unwrap(), "s3cret");
            // Before: the mark was sent as the first three bytes of the password.
            std::fs::write(l.base_dir.join("bom.txt"), "\u{feff}s3cret\r\n").unwrap();
            assert_eq!(interpolate("${file:bom.txt}", l).unwrap(), "s3cret");
            let all = format!("{:?}", [interpolate("${file:two.txt}", l), interpolate("${env:TWO_LINES}", l)]);
            assert!(!all.contains("s3cret") && !all.contains("second"), "{all}");
        });
    }

    #[test]
    fn a_value_not_to_be_had_here_is_told_from_a_wrong_text() {
        // `load_flow_to_read` keeps the first kind as written; the second refuses any flow.
        with_lookup(Path::new("/nonexistent"), |l| {
            let unavailable = |text: &str| resolve(text, l).unwrap_err().iter().map(|e| e.unavailable).collect::<Vec<_>>();
            assert_eq!(unavailable("${env:MISSING}-${file:nope.txt}-${env:TWO_LINES}"), [true, true, true]);
            assert_eq!(unavailable("${vault:x}${env:MISSING}"), [false, true]);
            assert_eq!(unavailable("${env:"), [false]);
        });
    }
}
