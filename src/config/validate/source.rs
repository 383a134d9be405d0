//! Meaning checks on a flow's `source:` section, and the building of its [`Source`]: the
//! polled folder (no pattern in it), the include/exclude globs (and which of them take
//! hidden files), readiness, identity and the optional producing `command`.
//!
//! A child of `validate/mod.rs`, adding methods to the same `Checker`. Whether the source
//! folder is reached again by a sink, a move or the quarantine is `folders.rs`'s.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::{Checker, checked};
use crate::config::duration;
use crate::config::flow::{AnyCase, Command, Identity, LeftBy, Ready, Source, fold_case, left_by};
use crate::config::raw::{IdentityField, RawCommand, RawReady, RawSource};
use crate::endpoint::RemotePath;
use crate::template::NameVars;
use std::time::UNIX_EPOCH;

/// A polled folder with a glob in it (`/incoming/*.csv`, as other tools spell it), split
/// into the folder and the pattern: the two are separate fields here, and listing a folder
/// named `*.csv` would only fail at run time with "not found". Only `*` and `?` count: real
/// folder names practically never hold them, while `[` does occur.
fn pattern_in_folder(text: &str) -> Option<(String, String)> {
    let segments: Vec<&str> = text.split('/').collect();
    let at = segments.iter().position(|s| s.contains(['*', '?']))?;
    let folder = match segments[..at].join("/") {
        f if f.is_empty() => "/".to_string(),
        f => f,
    };
    Some((folder, segments[at..].join("/")))
}

/// A path the glob `p` may match (`*.csv`: `a.csv`; `**/in_[0-9]?.{csv,txt}`: `in_0a.csv`):
/// each wildcard filled with `a` (or nothing, for `**/`), a class with its first character, an
/// alternation with its first choice. `None` for what it cannot fill (a negated class, a
/// pattern cut short): the caller checks the sample is taken, so a wrong guess only leaves a
/// check out.
fn sample_of(p: &str) -> Option<String> {
    let p = p.replace("**/", "");
    let mut out = String::new();
    let mut chars = p.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => {
                while chars.next_if_eq(&'*').is_some() {}
                out.push('a');
            }
            '?' => out.push('a'),
            '\\' => out.push(chars.next()?),
            '[' => {
                let first = chars.next().filter(|f| !matches!(f, '!' | '^'))?;
                out.push(first);
                while chars.next()? != ']' {}
            }
            '{' => {
                let inner: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(&sample_of(inner.split(',').next()?)?);
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// Why the glob `p` can match no path a listing gives (relative to the source folder, as
/// `a.csv` or, with `recursive`, `sub/a.csv`), when it cannot: it was taken for nothing, or
/// for an exclusion, without a word. `None` for a pattern that may match.
fn never_matches(p: &str, recursive: bool) -> Option<String> {
    let rest = p.trim_start_matches("**/");
    if p.is_empty() {
        Some("it is empty".into())
    } else if let Some(rel) = p.strip_prefix('/').or_else(|| p.strip_prefix("./")) {
        Some(format!(
            "patterns are matched against the path under `path` (`a.csv`, `sub/a.csv`), which never starts with `/` or `./`: write `{rel}`"
        ))
    } else if let Some(negated) = p.strip_prefix('!') {
        Some(format!(
            "`!` does not negate a pattern here (it is matched as a character): to leave files out, list `{negated}` under `exclude`"
        ))
    } else if !recursive && rest.contains('/') {
        Some("without `recursive: true` only the files directly in `path` are listed, and their paths hold no `/`: put the folder into `path`, or set `recursive: true`".into())
    } else {
        None
    }
}

impl Checker<'_, '_> {
    /// A folder wharf lists (the source's, the responses'): a path, and no pattern in it
    /// (see [`pattern_in_folder`]); `instead` says where the pattern goes.
    pub(super) fn polled_folder(&mut self, path: &str, text: &str, instead: impl FnOnce(&str) -> String) -> Option<RemotePath> {
        if let Some((folder, pattern)) = pattern_in_folder(text) {
            self.problem(
                path,
                format!("`{text}` has a pattern in it, but this is the folder to poll: write `path: {folder}`{}", instead(&pattern)),
            );
            return None;
        }
        self.remote_path(path, text)
    }

    pub(super) fn source(&mut self, s: RawSource, defined: Option<&[String]>) -> Option<Source> {
        self.endpoint_ref("/source/endpoint", &s.endpoint, defined);
        let path = self.polled_folder("/source/path", &s.path, |pattern| {
            let recursive = if pattern.contains('/') { ", `recursive: true`" } else { "" };
            format!(" and `include: [\"{pattern}\"]`{recursive}")
        });
        if s.include.is_empty() {
            self.problem("/source/include", "must not be empty: no file would ever be taken (leave it out to take every file)");
        }
        let every = s.include == crate::config::raw::default_include();
        let patterns = if s.recursive && every { vec!["**".to_string()] } else { s.include.clone() };
        if s.recursive && !every && !s.include.iter().any(|p| p.contains('/') || p == "**") {
            self.problem(
                "/source/include",
                "with `recursive: true` these patterns only match files directly in `path` (`*` stops at `/`): write e.g. `**/*.csv` for files at every level",
            );
        }
        for (list, patterns) in [("include", &s.include), ("exclude", &s.exclude)] {
            for (i, p) in patterns.iter().enumerate() {
                if let Some(why) = never_matches(p, s.recursive) {
                    self.problem(format!("/source/{list}/{i}"), format!("`{}` matches no file: {why}", crate::text::visible(p)));
                }
            }
        }
        let include = self.globs("/source/include", &patterns, s.ignore_case);
        let hidden: Vec<String> = s.include.iter().filter(|p| crate::config::flow::is_hidden(p)).cloned().collect();
        // Only once `include` compiled: a bad pattern is reported once, at its own index.
        let include_hidden = include.as_ref().and_then(|_| self.globs("/source/include", &hidden, s.ignore_case));
        let exclude = self.globs("/source/exclude", &s.exclude, s.ignore_case);
        // The same, ignoring case, to tell of a file left for its case alone. Once all of them
        // compiled: ignoring case makes no pattern bad, so nothing is reported twice.
        let any_case = match (&include, &include_hidden, &exclude) {
            (Some(_), Some(_), Some(_)) if !s.ignore_case => Some(AnyCase {
                include: self.globs("/source/include", &patterns, true)?,
                include_hidden: self.globs("/source/include", &hidden, true)?,
                exclude: self.globs("/source/exclude", &s.exclude, true)?,
            }),
            _ => None,
        };
        let ready = self.ready(s.ready);
        let identity = self.identity(&s.identity);
        if s.max_depth == 0 {
            self.problem("/source/max_depth", "must be at least 1");
        }
        if s.max_files == Some(0) {
            self.problem("/source/max_files", "must be at least 1 (leave it out for no cap)");
        }
        let command = s.command.map(|c| self.command(c));
        if let (Some(Some(c)), Some(inc), Some(hid), Some(exc)) = (&command, &include, &include_hidden, &exclude) {
            self.command_output_taken(c, (inc, hid, exc), s.ignore_case);
        }
        Some(Source {
            endpoint: s.endpoint,
            path: path?,
            include: include?,
            include_patterns: patterns,
            include_hidden: include_hidden?,
            exclude: exclude?,
            ignore_case: s.ignore_case,
            any_case: any_case.map(Box::new),
            recursive: s.recursive,
            max_depth: s.max_depth,
            max_files: s.max_files,
            ready: ready?,
            identity: identity?,
            command: checked(command)?,
        })
    }

    pub(super) fn command(&mut self, c: RawCommand) -> Option<Command> {
        let at = "/source/command";
        let timeout = self.ok(&format!("{at}/timeout"), duration::parse(&c.timeout));
        let name = self.name_template(&format!("{at}/name"), &c.name);
        let max_output = self.ok(&format!("{at}/max_output"), crate::steps::check::MaxOutput::parse(&c.max_output));
        let pass_env = self.pass_env(at, &c.pass_env);
        let (program, args) = self.run_line(at, &c.run)?;
        let program = crate::process::FlowProgram {
            path: program,
            args,
            pass_env: pass_env?,
            dir: self.lookup.resolve_path("."),
            timeout: timeout?,
            max_output: max_output?,
        };
        Some(Command { program, name: name?, keep_empty: c.keep_empty })
    }

    /// Checks that the source takes what its command writes: the output is a new file with
    /// no name of its own (`{{name}}`, `{{stem}}`, `{{ext}}` are empty when it is named), and
    /// an output the patterns leave (a hidden `.csv`, a `.txt` beside `include: ["*.csv"]`)
    /// would stay in the folder, never sent, run after run.
    fn command_output_taken(&mut self, c: &Command, (include, include_hidden, exclude): (&GlobSet, &GlobSet, &GlobSet), ignore_case: bool) {
        let at = "/source/command/name";
        let of = |file: &str| c.name.render(&NameVars::new(file, "", 1, 1, UNIX_EPOCH)).ok();
        // As `command::produce` names it (for the first run).
        let Some(name) = c.name.render(&NameVars::new("", "", 0, 1, UNIX_EPOCH)).ok() else { return };
        if of("a.csv") != of("b.xml") || of("a.csv").as_deref() != Some(name.as_str()) {
            self.problem(
                at,
                format!(
                    "`{}` reads the name of a file, but the command's output has none yet (`{{{{name}}}}`, `{{{{stem}}}}` and `{{{{ext}}}}` are empty: it would be named `{name}`): name it with `{{{{run}}}}` or the `date` helper",
                    c.name.source()
                ),
            );
            return;
        }
        let refused = match left_by(include, include_hidden, exclude, ignore_case, &name) {
            Some(LeftBy::Include) => "is not taken by the source's `include` patterns",
            Some(LeftBy::Exclude) => "matches the source's `exclude` patterns",
            None => return,
        };
        self.problem(at, format!("the command's output (`{name}`) {refused}: it would stay in the source folder and never be sent"));
    }

    /// Checks that no file that goes with a data file — its done file, the checksum and
    /// row-count files the steps read (`steps`: the flow's, one for one) — is named, for a file
    /// the source takes, as that file itself: with `source.ignore_case`, not even in another
    /// case (`{{stem}}.CSV` of `a.csv`, beside `include: ["*.csv"]`). A done file so named
    /// makes every such file wait for good (told why, run after run); a row count so named has
    /// each file read as its own row count. Looked at for a file each `include` pattern takes
    /// ([`sample_of`]); a name that is every file's own (`{{name}}`) is refused before
    /// ([`crate::template::NameTemplate::per_file`]).
    pub(super) fn companions_apart(&mut self, src: &Source, steps: Option<&crate::steps::Steps>) {
        use crate::steps::CompanionKind;
        // Each companion told of once, for the first sample that shows it.
        let mut told = std::collections::BTreeSet::new();
        for (pattern, rel) in src.include_patterns.iter().filter_map(|p| Some((p, sample_of(p)?))) {
            if !src.takes(&rel) {
                continue;
            }
            let (dir, data) = rel.rsplit_once('/').unwrap_or(("", &rel));
            let vars = NameVars::new(data, dir, 1, 1, UNIX_EPOCH);
            let done = src
                .ready
                .done_file
                .as_ref()
                .map(|t| ("/source/ready/done_file".to_string(), None, t.source().to_string(), t.render(&vars)));
            let read = steps.map(|s| s.companion_names(&vars)).unwrap_or_default();
            let companions = done.into_iter().chain(read.into_iter().map(|c| (c.at, Some(c.kind), c.written, c.name)));
            for (at, kind, written, name) in companions {
                let Ok(name) = name else { continue };
                if src.name_key(&name) != src.name_key(data) || told.contains(&at) {
                    continue;
                }
                let case = if name == data { "" } else { ", ignoring case (`source.ignore_case`)" };
                let (what, then, apart) = match kind {
                    None => ("done file", "no such file would ever be taken (each would wait for it)", "`{{name}}.done`, `{{stem}}.ok`"),
                    Some(k @ CompanionKind::Checksum) => {
                        (k.what(), "each such file would be read as its own checksum", "`{{name}}.sha256`")
                    }
                    Some(k @ CompanionKind::RowCount) => {
                        (k.what(), "each such file would be read as its own row count", "`{{name}}.count`, `{{stem}}.rows`")
                    }
                };
                self.problem(
                    at.clone(),
                    format!(
                        "`{written}` gives `{name}` for `{data}` (a file `{}` takes): the data file itself{case}; a data file is never its own {what}, so {then}; name it apart (e.g. {apart})",
                        crate::text::visible(pattern)
                    ),
                );
                told.insert(at);
            }
        }
    }

    /// `patterns` compiled into one set (`*` and `?` stop at `/`); with `ignore_case`, from
    /// their [`fold_case`]d text, for names folded alike ([`Source::takes`]). Each bad
    /// pattern is a problem at `at/INDEX`.
    pub(super) fn globs(&mut self, at: &str, patterns: &[String], ignore_case: bool) -> Option<GlobSet> {
        let mut set = GlobSetBuilder::new();
        let mut ok = true;
        for (i, p) in patterns.iter().enumerate() {
            let text = if ignore_case { fold_case(p) } else { p.clone() };
            match GlobBuilder::new(&text).literal_separator(true).build() {
                Ok(glob) => {
                    set.add(glob);
                }
                Err(e) => {
                    self.problem(format!("{at}/{i}"), format!("bad glob `{p}`: {}", e.kind()));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        self.ok(at, set.build().map_err(|e| format!("bad glob set: {e}")))
    }

    pub(super) fn ready(&mut self, r: RawReady) -> Option<Ready> {
        let min_age = r.min_age.map(|t| self.ok("/source/ready/min_age", duration::parse(&t)));
        let stable_for = r.stable_for.map(|t| self.ok("/source/ready/stable_for", duration::parse(&t)));
        let done_file = r.done_file.map(|t| {
            let at = "/source/ready/done_file";
            self.name_template(at, &t).and_then(|t| self.ok(at, t.per_file()).map(|()| t))
        });
        Some(Ready { min_age: checked(min_age)?, stable_for: checked(stable_for)?, done_file: checked(done_file)? })
    }

    pub(super) fn identity(&mut self, fields: &[IdentityField]) -> Option<Identity> {
        let at = "/source/identity";
        if fields.is_empty() {
            self.problem(at, "must not be empty: list `path`, `size`, `mtime`, or give `[sha256]`");
            return None;
        }
        let has = |f| fields.contains(&f);
        let id = Identity {
            path: has(IdentityField::Path),
            size: has(IdentityField::Size),
            mtime: has(IdentityField::Mtime),
            sha256: has(IdentityField::Sha256),
        };
        if id.sha256 && (id.path || id.size || id.mtime) {
            self.problem(at, "`sha256` stands alone: write `[sha256]` (content identity), or list any of `path`, `size`, `mtime`");
            return None;
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, problems, run, warnings};

    /// Patterns no listed path can match made a flow that took nothing (or an `exclude` that
    /// left out nothing), and validate said nothing.
    #[test]
    fn a_pattern_that_matches_no_file_is_refused() {
        let with =
            |source: &str| BASE.replace("source: { endpoint: s, path: /in }", &format!("source: {{ endpoint: s, path: /in, {source} }}"));
        let p = problems(&with(r#"include: ["/*.csv", "./*.xml", "*.txt", "!x.csv", ""], exclude: ["/y.csv"]"#));
        for want in [
            "`/*.csv` matches no file: patterns are matched against the path under `path` (`a.csv`, `sub/a.csv`), which never starts with `/` or `./`: write `*.csv` (at /source/include/0)",
            "`./*.xml` matches no file: patterns are matched against the path under `path` (`a.csv`, `sub/a.csv`), which never starts with `/` or `./`: write `*.xml` (at /source/include/1)",
            "`!x.csv` matches no file: `!` does not negate a pattern here (it is matched as a character): to leave files out, list `x.csv` under `exclude` (at /source/include/3)",
            "`` matches no file: it is empty (at /source/include/4)",
            "`/y.csv` matches no file: patterns are matched against the path under `path` (`a.csv`, `sub/a.csv`), which never starts with `/` or `./`: write `y.csv` (at /source/exclude/0)",
        ] {
            assert!(p.iter().any(|m| m.ends_with(want)), "missing {want:?} in {p:#?}");
        }
        assert_eq!(p.len(), 5, "{p:#?}");
        let p = problems(&with(r#"include: ["sub/*.csv"]"#));
        assert!(p.iter().any(|m| m.contains("without `recursive: true` only the files directly in `path` are listed")), "{p:#?}");
        assert!(run(&with(r#"include: ["**/*.csv", "sub/*.csv"], recursive: true"#)).is_ok());
        assert!(run(&with(r#"include: ["**/*.csv"]"#)).is_ok());
    }

    /// `source.max_files`: a cap of at least one file; none when left out.
    #[test]
    fn max_files_is_at_least_one() {
        let with = |source: &str| BASE.replace("path: /in }", &format!("path: /in, {source} }}"));
        assert_eq!(run(BASE).unwrap().source.max_files, None);
        assert_eq!(run(&with("max_files: 100")).unwrap().source.max_files, Some(100));
        let p = problems(&with("max_files: 0"));
        assert!(p.iter().any(|m| m.ends_with("(at /source/max_files)")), "{p:#?}");
    }

    /// Partners send `ORDERS_1.CSV` to a flow taking `*.csv`: without `ignore_case` it was
    /// never taken, without a word; with it, every pattern matches whatever the case
    /// (Unicode too), `exclude` as well.
    #[test]
    fn ignore_case_makes_the_patterns_match_whatever_the_case() {
        let with = |source: &str| BASE.replace("path: /in }", &format!("path: /in, {source} }}"));
        let flow = run(&with(r#"include: ["*.csv", "äpfel_*.txt", ".*.done"], exclude: ["*_DRAFT*"], ignore_case: true"#)).unwrap();
        let src = &flow.source;
        for taken in ["a.csv", "ORDERS_1.CSV", "orders_1.Csv", "ÄPFEL_1.TXT", ".A.DONE"] {
            assert!(src.takes(taken), "{taken}");
        }
        for left in ["a.txt", "orders_draft_1.csv", ".a.csv", "Äpfel/1.txt"] {
            assert!(!src.takes(left), "{left}");
        }
        assert!(src.any_case.is_none() && src.taken_ignoring_case("a.txt").is_none());
        // By default the case must match; a file left for its case alone says which pattern
        // would take it.
        let flow = run(&with(r#"include: ["*.txt", "*.csv"], exclude: ["*_draft*"]"#)).unwrap();
        let src = &flow.source;
        assert!(src.takes("a.csv") && !src.takes("ORDERS_1.CSV") && !src.takes("ÄPFEL.TXT"));
        assert_eq!(src.taken_ignoring_case("ORDERS_1.CSV"), Some("*.csv"));
        assert_eq!(src.taken_ignoring_case("ÄPFEL.TXT"), Some("*.txt"));
        assert_eq!(src.taken_ignoring_case("a.csv"), None, "taken as it is");
        assert_eq!(src.taken_ignoring_case("a.xml"), None, "not for its case");
        assert_eq!(src.taken_ignoring_case("A_DRAFT.CSV"), None, "left by `exclude` ignoring case too");
        assert_eq!(src.taken_ignoring_case(".A.CSV"), None, "hidden: left whatever its case");
    }

    #[test]
    fn a_done_file_every_file_shares_is_refused() {
        let p = problems(
            &BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: s, path: /in, ready: { done_file: READY } }"),
        );
        assert!(
            p.iter().any(|m| m.contains("`READY` gives `READY` for every file") && m.ends_with("(at /source/ready/done_file)")),
            "{p:#?}"
        );
    }

    /// With `ignore_case`, a done file named as the data file itself but for case
    /// (`{{stem}}.CSV` beside `include: ["*.csv"]`) was caught only at run time: each file
    /// waited, run after run, told why. Refused as `{{name}}` is, naming the pattern; so is
    /// one that is the file's own name exactly for the files a pattern takes (`{{stem}}.csv`
    /// of `*.csv`). One that is another file's name for them is fine: without `ignore_case`
    /// `a.CSV` is not `a.csv`, and a pattern taking other files never meets the name.
    #[test]
    fn a_done_file_named_as_the_data_file_it_goes_with_ignoring_case_is_refused() {
        let with = |source: &str| BASE.replace("path: /in }", &format!("path: /in, {source} }}"));
        let at = |p: Vec<String>| p.into_iter().filter(|m| m.ends_with("(at /source/ready/done_file)")).collect::<Vec<_>>();
        let p = at(problems(&with(r#"include: ["*.xml", "**/*.csv"], ignore_case: true, ready: { done_file: "{{stem}}.CSV" }"#)));
        assert_eq!(
            p,
            [
                "`{{stem}}.CSV` gives `a.CSV` for `a.csv` (a file `**/*.csv` takes): the data file itself, ignoring case (`source.ignore_case`); a data file is never its own done file, so no such file would ever be taken (each would wait for it); name it apart (e.g. `{{name}}.done`, `{{stem}}.ok`) (at /source/ready/done_file)"
            ],
            "{p:#?}"
        );
        let p = at(problems(&with(r#"include: ["ORDERS_*.CSV"], ready: { done_file: "{{stem}}.CSV" }"#)));
        assert!(
            p.len() == 1
                && p[0].starts_with(
                    "`{{stem}}.CSV` gives `ORDERS_a.CSV` for `ORDERS_a.CSV` (a file `ORDERS_*.CSV` takes): the data file itself; a data"
                ),
            "{p:#?}"
        );
        for fine in [
            r#"include: ["*.csv"], ready: { done_file: "{{stem}}.CSV" }"#,
            r#"include: ["*.xml"], ignore_case: true, ready: { done_file: "{{stem}}.CSV" }"#,
            r#"ignore_case: true, ready: { done_file: "{{stem}}.OK" }"#,
            r#"include: ["*.csv"], exclude: ["*.csv"], ignore_case: true, ready: { done_file: "{{stem}}.CSV" }"#,
            r#"include: ["*.csv"], ignore_case: true, ready: { done_file: "{{name}}.DONE" }"#,
        ] {
            let checked = run(&with(fine));
            assert!(checked.is_ok(), "{fine}: {:#?}", checked.err());
        }
    }

    /// The same for the companions the steps read: a `validate.row_count_file` naming the
    /// data file itself (`{{stem}}.csv` of `*.csv`, or with `ignore_case` `{{stem}}.CSV`)
    /// passed validation, and each file was read as its own row count. Refused at its step,
    /// as the done file is at its field, by the one check of all three companions; the
    /// checksum's `NAME.sha256` never is the file's own name.
    #[test]
    fn a_row_count_file_named_as_the_data_file_ignoring_case_is_refused() {
        let with = |source: &str, count: &str| {
            let base = BASE.replace("path: /in }", &format!("path: /in, {source} }}"));
            format!(
                "{base}steps:\n  - check: {{ checksum: sha256 }}\n  - parse: {{ format: csv }}\n  - validate: {{ row_count_file: \"{count}\" }}\nquarantine: {{ endpoint: l, path: /rejected }}\n"
            )
        };
        let at = |p: Vec<String>| p.into_iter().filter(|m| m.contains("row-count file")).collect::<Vec<_>>();
        let p = at(problems(&with(r#"include: ["*.csv"], ignore_case: true"#, "{{stem}}.CSV")));
        assert_eq!(
            p,
            [
                "`{{stem}}.CSV` gives `a.CSV` for `a.csv` (a file `*.csv` takes): the data file itself, ignoring case (`source.ignore_case`); a data file is never its own row-count file, so each such file would be read as its own row count; name it apart (e.g. `{{name}}.count`, `{{stem}}.rows`) (at /steps/2/validate/row_count_file)"
            ],
            "{p:#?}"
        );
        let p = at(problems(&with(r#"include: ["*.csv"]"#, "{{stem}}.csv")));
        assert!(p.len() == 1 && p[0].contains("for `a.csv` (a file `*.csv` takes): the data file itself; a data file"), "{p:#?}");
        // A done file and a row count both so named: each told, at its own field.
        let p = problems(&with(r#"include: ["*.csv"], ignore_case: true, ready: { done_file: "{{stem}}.Csv" }"#, "{{stem}}.CSV"));
        let fields: Vec<&str> = p.iter().filter(|m| m.contains("the data file itself")).map(|m| &m[m.rfind("(at ").unwrap()..]).collect();
        assert_eq!(fields, ["(at /source/ready/done_file)", "(at /steps/2/validate/row_count_file)"], "{p:#?}");
        for fine in [(r#"include: ["*.csv"]"#, "{{stem}}.CSV"), (r#"include: ["*.csv"], ignore_case: true"#, "{{stem}}.count")] {
            let checked = run(&with(fine.0, fine.1));
            assert!(checked.is_ok(), "{fine:?}: {:#?}", checked.err());
        }
    }

    /// What a pattern is looked at for: each wildcard filled, a negated class not guessed.
    #[test]
    fn a_sample_is_a_path_the_pattern_takes() {
        assert_eq!(super::sample_of("**/in_[0-9]?.{csv,txt}").as_deref(), Some("in_0a.csv"));
        assert_eq!(super::sample_of("sub/**/*.CSV").as_deref(), Some("sub/a.CSV"));
        assert_eq!(super::sample_of(r"a\*b").as_deref(), Some("a*b"));
        assert_eq!(super::sample_of("[!a]*"), None);
    }

    /// A command's output is a new file with no name of its own: a name template reading
    /// one (`{{stem}}.csv` gives `.csv`, hidden) or one the source's patterns do not take
    /// would leave every export in the outbox, never sent, without a word.
    #[test]
    fn a_command_output_the_source_would_never_take_is_refused() {
        let local = BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: l, path: /in, SOURCE }");
        let with = |source: &str| local.replace("SOURCE", source);
        let cmd = |name: &str| format!("command: {{ run: [export.sh], name: \"{name}\" }}");
        let p = problems(&with(&cmd("{{stem}}.csv")));
        assert!(
            p.iter().any(|m| m.contains("`{{stem}}.csv` reads the name of a file, but the command's output has none yet")
                && m.contains("named `.csv`")
                && m.ends_with("(at /source/command/name)")),
            "{p:#?}"
        );
        let p = problems(&with(&cmd("{{name}}")));
        assert!(p.iter().any(|m| m.contains("`{{name}}` reads the name of a file") && m.ends_with("(at /source/command/name)")), "{p:#?}");
        let p = problems(&with(&format!("include: [\"*.csv\"], {}", cmd("prices-{{run}}.txt"))));
        assert!(
            p.iter().any(|m| m.contains("the command's output (`prices-1.txt`) is not taken by the source's `include`")
                && m.ends_with("(at /source/command/name)")),
            "{p:#?}"
        );
        let p = problems(&with(&format!("exclude: [\"prices-*\"], {}", cmd("prices-{{run}}.csv"))));
        assert!(p.iter().any(|m| m.contains("`exclude`")), "{p:#?}");
        assert!(run(&with(&format!("include: [\"*.csv\"], {}", cmd("prices-{{date 'YYYYMMDD'}}-{{run}}.csv")))).is_ok());
        assert!(run(&with(&format!("recursive: true, include: [\"**/*.csv\"], {}", cmd("p-{{run}}.csv")))).is_ok());
        // Taken whatever its case, with `ignore_case`.
        assert!(run(&with(&format!("include: [\"*.CSV\"], ignore_case: true, {}", cmd("p-{{run}}.csv")))).is_ok());
        assert!(!problems(&with(&format!("include: [\"*.CSV\"], {}", cmd("p-{{run}}.csv")))).is_empty());
    }

    /// `${env:…}` is expanded in credential fields only: in a command's `run` the program
    /// would get it as written (and a secret in its arguments shows in the process list).
    #[test]
    fn a_reference_in_a_command_s_run_is_warned_of() {
        let with = |extra: &str| BASE.replace("path: /in }", &format!("path: /in, include: [\"*.csv\"], {extra} }}"));
        let w = warnings(&with("command: { run: [export.sh, \"--token=${env:TOKEN}\"], name: \"p-{{run}}.csv\" }"));
        assert!(
            w.iter().any(|m| m.contains("not expanded in a command's `run`")
                && m.contains("name the variable in the command's `pass_env`")
                && m.ends_with("(at /source/command/run/1)")),
            "{w:#?}"
        );
        assert!(warnings(&with("command: { run: [export.sh, \"$HOME\"], name: \"p-{{run}}.csv\" }")).is_empty());
    }

    /// `max_output`: a size as a `command` step's (default `10GiB`), never zero.
    #[test]
    fn a_command_s_max_output_is_a_positive_size() {
        let local = BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: l, path: /in, SOURCE }");
        let with = |extra: &str| local.replace("SOURCE", &format!("command: {{ run: [export.sh], name: \"p-{{{{run}}}}.csv\"{extra} }}"));
        let max = |extra: &str| run(&with(extra)).unwrap().source.command.unwrap().program.max_output;
        assert_eq!((max("").bytes, max("").shown), (10 << 30, "10GiB".to_string()));
        assert_eq!((max(", max_output: 500MiB").bytes, max(", max_output: 1024").shown), (500 << 20, "1024 bytes".to_string()));
        let p = problems(&with(", max_output: 0"));
        assert!(p.iter().any(|m| m.contains("is zero") && m.ends_with("(at /source/command/max_output)")), "{p:#?}");
    }

    /// `pass_env` names variables; anything else is a mistake the program would never see.
    #[test]
    fn a_command_s_pass_env_takes_names_of_variables() {
        let local = BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: l, path: /in, SOURCE }");
        let with = |source: &str| local.replace("SOURCE", source);
        let ok = run(&with("command: { run: [export.sh], name: \"p-{{run}}.csv\", pass_env: [PGPASSWORD, _X1] }")).unwrap();
        assert_eq!(ok.source.command.unwrap().program.pass_env, ["PGPASSWORD", "_X1"]);
        let w = warnings(&with("command: { run: [export.sh], name: \"p-{{run}}.csv\", pass_env: [PASS, NOPE] }"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].contains("`NOPE` is not set in wharf's environment (here): the command would run without it")
                && w[0].ends_with("(at /source/command/pass_env/1)"),
            "{w:#?}"
        );
        let p = problems(&with("command: { run: [export.sh], name: \"p-{{run}}.csv\", pass_env: [OK, \"PG=x\", 1X] }"));
        assert_eq!(p.len(), 2, "{p:#?}");
        assert!(
            p[0].contains("`PG=x` is not the name of an environment variable") && p[0].ends_with("(at /source/command/pass_env/1)"),
            "{p:#?}"
        );
        assert!(p[1].ends_with("(at /source/command/pass_env/2)"), "{p:#?}");
    }

    #[test]
    fn a_pattern_in_the_source_folder_says_how_to_write_it() {
        let p = problems(&BASE.replace("path: /in }", "path: /incoming/*.csv }"));
        assert_eq!(
            p,
            [
                "`/incoming/*.csv` has a pattern in it, but this is the folder to poll: write `path: /incoming` and `include: [\"*.csv\"]` (at /source/path)"
            ]
        );
        let p = problems(&BASE.replace("path: /in }", "path: \"/in/**/order?.xml\" }"));
        assert_eq!(
            p,
            [
                "`/in/**/order?.xml` has a pattern in it, but this is the folder to poll: write `path: /in` and `include: [\"**/order?.xml\"]`, `recursive: true` (at /source/path)"
            ]
        );
        assert_eq!(
            problems(&BASE.replace("path: /in }", "path: /*.csv }"))[0].split(" (at").next(),
            Some("`/*.csv` has a pattern in it, but this is the folder to poll: write `path: /` and `include: [\"*.csv\"]`")
        );
        // `[` occurs in real folder names.
        assert!(run(&BASE.replace("path: /in }", "path: \"/in [2026]\" }")).is_ok());
    }

    #[test]
    fn only_patterns_that_name_hidden_files_take_them() {
        let flow = run(&BASE.replace("path: /in }", "path: /in, include: [\"*.csv\", \".*.done\"] }")).unwrap();
        assert!(flow.source.include_hidden.is_match(".a.done") && !flow.source.include_hidden.is_match(".a.csv"));
        assert!(crate::config::flow::is_hidden(".a.csv") && crate::config::flow::is_hidden("sub/.x/a.csv"));
        assert!(!crate::config::flow::is_hidden("a.csv") && !crate::config::flow::is_hidden("sub/a.b.csv"));
    }

    #[test]
    fn recursive_takes_every_file_at_every_level_by_default_and_refuses_patterns_that_stop_at_the_top() {
        let flow = run(&BASE.replace("path: /in }", "path: /in, recursive: true }")).unwrap();
        assert!(flow.source.include.is_match("a.csv") && flow.source.include.is_match("sub/deeper/a.csv"));
        let p = problems(&BASE.replace("path: /in }", "path: /in, recursive: true, include: [\"*.csv\"] }"));
        assert_eq!(
            p,
            [
                "with `recursive: true` these patterns only match files directly in `path` (`*` stops at `/`): write e.g. `**/*.csv` for files at every level (at /source/include)"
            ]
        );
        assert!(run(&BASE.replace("path: /in }", "path: /in, recursive: true, include: [\"**/*.csv\"] }")).is_ok());
    }
}
