//! `${env:NAME}` and `${file:PATH}` in credential fields (`host`, `user`, `password`,
//! `passphrase`).
//!
//! Owns the substitution syntax and the rule that an error names the variable or the file,
//! never a value. `$${` writes a literal `${`. A `${file:…}` path is relative to the flow
//! file's folder, and one trailing line break of the file is dropped (editors add one).
//! This module reads the environment and secret files through [`Lookup`], so tests can
//! inject both; it does not decide which fields may be interpolated (that is `validate.rs`).

use std::env::VarError;
use std::path::{Path, PathBuf};

/// Where `${env:…}` and `${file:…}` get their values.
pub struct Lookup<'a> {
    /// The flow file's folder; relative `${file:…}` paths resolve against it.
    pub base_dir: &'a Path,
    /// Reads an environment variable (`std::env::var` outside tests).
    pub env: &'a dyn Fn(&str) -> Result<String, VarError>,
}

impl Lookup<'_> {
    /// Resolves `path` against the flow file's folder; `~/…` is in the home folder (`HOME`),
    /// as in a shell.
    pub fn resolve_path(&self, path: &str) -> PathBuf {
        if let Some(rest) = path.strip_prefix("~/")
            && let Ok(home) = (self.env)("HOME")
        {
            return absolute(&Path::new(&home).join(rest));
        }
        absolute(&self.base_dir.join(path))
    }
}

/// `path` made absolute against the current directory, `.` components removed (`..` is kept:
/// with symlinks, dropping it could name a different file).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Substitutes every `${env:NAME}` / `${file:PATH}` in `text`. Returns every problem found,
/// each a sentence naming the variable or file.
pub fn interpolate(text: &str, lookup: &Lookup<'_>) -> Result<String, Vec<String>> {
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
                errors.push("`${` without a closing `}` (write `$${` for a literal `${`)".to_string());
                return Err(errors);
            };
            match expand(&after[..end], lookup) {
                Ok(value) => out.push_str(&value),
                Err(e) => errors.push(e),
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

/// Expands the inside of one `${…}`.
fn expand(reference: &str, lookup: &Lookup<'_>) -> Result<String, String> {
    match reference.split_once(':') {
        Some(("env", name)) if !name.is_empty() => match (lookup.env)(name) {
            Ok(value) => Ok(value),
            Err(VarError::NotPresent) => Err(format!("environment variable `{name}` is not set")),
            Err(VarError::NotUnicode(_)) => Err(format!("environment variable `{name}` is not valid UTF-8")),
        },
        Some(("file", path)) if !path.is_empty() => {
            let full = lookup.resolve_path(path);
            match super::inputs::read_to_string(&full) {
                Ok(mut value) => {
                    if value.ends_with('\n') {
                        value.pop();
                        if value.ends_with('\r') {
                            value.pop();
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "USER_NAME" => Ok("wharf".into()),
            "PASS" => Ok("s3cret".into()),
            _ => Err(VarError::NotPresent),
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
        });
    }
}
