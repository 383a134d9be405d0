//! Meaning checks on a flow's `sinks:`, and the building of each [`Sink`]: the folder
//! template, the final, temporary and trigger names, and `direct` writes.
//!
//! A child of `validate/mod.rs`, adding methods to the same `Checker`. Rules between sinks
//! and folders (two sinks into one folder, a sink in the source folder) are `folders.rs`'s.

use super::Checker;
use super::checked;
use crate::config::flow::{Disposition, IfExists, Sink, Source};
use crate::config::raw::RawSink;
use crate::endpoint::RemotePath;
use crate::template::NameVars;
use std::time::UNIX_EPOCH;

impl Checker<'_, '_> {
    pub(super) fn sink(&mut self, at: &str, s: RawSink, defined: Option<&[String]>, source: Option<&Source>) -> Option<Sink> {
        self.endpoint_ref(&format!("{at}/endpoint"), &s.endpoint, defined);
        let path = self.template(&format!("{at}/path"), &s.path).and_then(|(t, sample)| {
            let rendered = self.ok(
                &format!("{at}/path"),
                RemotePath::parse(&sample).map_err(|e| format!("template `{}` gives a bad path: {e}", crate::text::visible(&s.path))),
            )?;
            if let Some(src) = source.filter(|_| !s.path.contains("{{")) {
                self.not_rescanned(&format!("{at}/path"), &s.endpoint, &rendered, src, "delivered files");
            }
            Some(t)
        });
        let written = s.name.unwrap_or_else(crate::config::raw::default_name);
        let name = self.name_template(&format!("{at}/name"), &written);
        if let Some(t) = &name {
            self.named_without_extension(&format!("{at}/name"), &written, t);
        }
        if s.if_exists == IfExists::Skip
            && let (Some(dir), Some(file)) = (&path, &name)
            && one_name(dir, file, &|f| Some(f.to_string()))
        {
            self.skip_one_name(at, &format!("`{}` is every file's name on this sink", crate::text::visible(&written)));
        }
        let temp_name = if s.direct {
            if s.temp_name.is_some() {
                self.problem(format!("{at}/temp_name"), "`direct: true` writes straight under the final name, without a temporary name");
            }
            Some(None)
        } else {
            let temp_name = s.temp_name.unwrap_or_else(|| crate::config::raw::default_temp_name(&self.flow));
            let spaceless = |t: &str| t.split_whitespace().collect::<String>();
            if spaceless(&temp_name) == spaceless(&written) {
                self.problem(
                    format!("{at}/temp_name"),
                    format!(
                        "`{temp_name}` is the final name too: a file is written under its temporary name and renamed to the final one once verified, so the two must differ (the default is `.{{{{name}}}}.FLOW.part`; `direct: true` writes straight under the final name, for servers that refuse renames)"
                    ),
                );
            }
            let t = self.name_template(&format!("{at}/temp_name"), &temp_name);
            if t.as_ref().is_some_and(|t| t.varies_by_run()) {
                self.warning(
                    format!("{at}/temp_name"),
                    format!(
                        "`{temp_name}` changes from run to run (`run`, `date`): an upload cut off by a crash leaves its temporary file on the server when the next run writes under another name (the default `.{{{{name}}}}.FLOW.part` does not change)"
                    ),
                );
            }
            if let Some(sample) = t.as_ref().and_then(|t| t.render(&NameVars::new("sample.csv", "", 1, 1, UNIX_EPOCH)).ok())
                && !looks_temporary(&sample)
            {
                self.warning(
                    format!("{at}/temp_name"),
                    format!(
                        "`{temp_name}` gives `{sample}` for sample.csv, a name a real file in the folder may have (the partner's, another flow's): it is written over while the upload runs and removed if the upload fails. A temporary name starting with `.` or ending in `.part` or `.tmp` keeps clear of them (the default is `.{{{{name}}}}.FLOW.part`)"
                    ),
                );
            }
            t.map(Some)
        };
        let trigger = s.trigger.map(|t| {
            if t.split_whitespace().collect::<String>() == "{{name}}" {
                self.problem(format!("{at}/trigger"), "`{{name}}` in a trigger is the delivered file's name: the trigger would replace the file (write e.g. `{{name}}.done` or `{{stem}}.ok`)");
            }
            self.name_template(&format!("{at}/trigger"), &t)
        });
        Some(Sink {
            endpoint: s.endpoint,
            path: path?,
            name: name?,
            temp_name: temp_name?,
            if_exists: s.if_exists,
            trigger: checked(trigger)?,
        })
    }
}

impl Checker<'_, '_> {
    /// `if_exists: skip` with a source disposed of on success (`delete`, `move_to`): a file
    /// whose name is already at the sink's target — a new version of one sent before — is
    /// counted delivered unsent, then deleted or moved away as if it had gone: nothing says
    /// the partner never got it. Warned of at each such sink, with the settings that do not.
    pub(super) fn skip_then_dispose(&mut self, success: &Disposition, sinks: &[Option<Sink>]) {
        let fate = match success {
            Disposition::Keep => return,
            Disposition::Delete => "deleted from the source: that version is lost".to_string(),
            Disposition::MoveTo(folder) => format!("moved to `{folder}` as if it had been sent"),
        };
        for (i, _) in sinks.iter().enumerate().filter(|(_, s)| s.as_ref().is_some_and(|s| s.if_exists == IfExists::Skip)) {
            self.warning(
                format!("/sinks/{i}/if_exists"),
                format!(
                    "`skip` with `after.success` {}: a file whose name is already at this sink's target (a new version of a file sent before) is counted delivered without being sent, and {fate}. `fail` keeps it at the source until the name is free, `rename` delivers it under a name of its own, `overwrite` replaces the old one; `after.success: keep` leaves it at the source",
                    match success {
                        Disposition::Delete => "`delete`",
                        _ => "`move_to`",
                    }
                ),
            );
        }
    }
}

impl Checker<'_, '_> {
    /// A `recursive` source with a sink (one of `unnamed`, those that set no `name`) whose
    /// folder is the same for every sub-folder: its files arrive side by side under their own
    /// names, `a/x.csv` and `b/x.csv` both as `x.csv`. Warned of at `source.recursive` with
    /// the folder that keeps the tree, unless the sink says so with a `name` of its own.
    pub(super) fn flattened(&mut self, source: &Source, sinks: &[Option<Sink>], unnamed: &[usize]) {
        if !source.recursive {
            return;
        }
        for &i in unnamed {
            let Some(sink) = sinks.get(i).and_then(Option::as_ref).filter(|s| !s.path.varies_by_folder()) else { continue };
            let path = sink.path.source();
            let tree = format!("{}/{{{{rel_dir}}}}", path.trim_end_matches('/'));
            let quoted = if tree.contains('"') { format!("'{tree}'") } else { format!("\"{tree}\"") };
            let how = match sink.if_exists {
                IfExists::Rename => "as `x.csv` and `x-1.csv`",
                _ => "both as `x.csv`, one per run",
            };
            self.warning(
                "/source/recursive",
                format!(
                    "files of sub-folders are delivered by sink {i} (`{}`) side by side under their own names: `a/x.csv` and `b/x.csv` {how}. To keep the tree, give the sink `path: {quoted}` (sub-folders are created under `{path}` as needed; files directly in `{}` go to `{path}` itself); to say flat is meant, write its `name: \"{{{{name}}}}\"`",
                    sink.endpoint, source.path
                ),
            );
        }
    }
}

/// Whether the sink folder `dir` and name `file` give two unlike files the same target, the
/// files' names first made by `rename` (the content steps'; `None`: no name for that file).
fn one_name(dir: &crate::template::NameTemplate, file: &crate::template::NameTemplate, rename: &dyn Fn(&str) -> Option<String>) -> bool {
    let target = |f: &str| {
        let v = NameVars::new(&rename(f)?, "", 1, 1, UNIX_EPOCH);
        Some((dir.render(&v).ok()?, file.render(&v).ok()?))
    };
    matches!((target("a.csv"), target("b.xml")), (Some(a), Some(b)) if a == b)
}

impl Checker<'_, '_> {
    /// Warns that `if_exists: skip` drops files on a sink that gives every file one name
    /// (`whose`: where that name comes from).
    fn skip_one_name(&mut self, at: &str, whose: &str) {
        self.warning(
            format!("{at}/if_exists"),
            format!(
                "{whose}, and `skip` counts a file delivered, unsent, while a file of that name is there: a file arriving before the partner took the one before is dropped (its source disposed of as delivered). `fail` keeps it at the source until the name is free; `rename` gives it a name of its own"
            ),
        );
    }

    /// The same for a name the content `steps` give every file (a `command` step's constant
    /// `name: out.csv`) on sinks that would otherwise give each file its own.
    pub(super) fn skip_one_name_after_steps(&mut self, at: &str, sinks: &[Option<Sink>], steps: &crate::steps::Steps) {
        if !steps.renames() {
            return;
        }
        for (i, sink) in sinks.iter().enumerate() {
            let Some(sink) = sink.as_ref().filter(|s| s.if_exists == IfExists::Skip) else { continue };
            if !one_name(&sink.path, &sink.name, &|f| Some(f.to_string()))
                && one_name(&sink.path, &sink.name, &|f| steps.delivered_name(f).ok())
            {
                let name = steps.delivered_name("a.csv").unwrap_or_default();
                self.skip_one_name(
                    &format!("{at}/{i}"),
                    &format!("the content steps name every file `{}` on this sink", crate::text::visible(&name)),
                );
            }
        }
    }
}

/// Whether a temporary name reads as one/// Whether a temporary name reads as one, so that no real file of the folder has it: hidden,
/// or marked as a file being written (`.part`, `.tmp`, `TMP_…`, `~` and their like).
fn looks_temporary(name: &str) -> bool {
    const SUFFIXES: &[&str] = &[".part", ".partial", ".filepart", ".tmp", ".temp", ".upload", ".uploading", ".inprogress", ".writing", "~"];
    let lower = name.to_ascii_lowercase();
    let marked_prefix = ["tmp", "temp"].iter().any(|p| lower.strip_prefix(p).is_some_and(|rest| rest.starts_with(['_', '-', '.'])));
    name.starts_with('.') || SUFFIXES.iter().any(|s| lower.ends_with(s)) || marked_prefix
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BASE, problems, run, warnings};

    #[test]
    fn a_trigger_named_as_the_delivered_file_is_refused() {
        let p = problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, trigger: \"{{ name }}\" } ]"));
        assert_eq!(
            p,
            [
                "`{{name}}` in a trigger is the delivered file's name: the trigger would replace the file (write e.g. `{{name}}.done` or `{{stem}}.ok`) (at /sinks/0/trigger)"
            ]
        );
        assert!(run(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, trigger: \"{{name}}.done\" } ]")).is_ok());
    }

    /// `name: "{{ext}}"` (or `{{stem}}` mistyped) is fine for `sample.csv` but empty for
    /// `README`: such a file failed in every run, and validate said nothing.
    #[test]
    fn a_name_empty_for_a_file_without_extension_is_a_warning() {
        let with = |name: &str| BASE.replace("sinks: [ { endpoint: l } ]", &format!("sinks: [ {{ endpoint: l, name: \"{name}\" }} ]"));
        let w = warnings(&with("{{ext}}"));
        assert!(
            w.iter().any(|m| m.contains("template `{{ext}}` gives no file name for a file without an extension: for a file named README, \"\" is not a plain file name")
                && m.ends_with("(at /sinks/0/name)")),
            "{w:#?}"
        );
        assert!(warnings(&with("{{stem}}-{{run}}.{{ext}}")).iter().all(|m| !m.contains("without an extension")));
    }

    #[test]
    fn a_temp_name_that_is_the_final_name_is_refused() {
        let p = problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, temp_name: \"{{ name }}\" } ]"));
        assert_eq!(
            p,
            [
                "`{{ name }}` is the final name too: a file is written under its temporary name and renamed to the final one once verified, so the two must differ (the default is `.{{name}}.FLOW.part`; `direct: true` writes straight under the final name, for servers that refuse renames) (at /sinks/0/temp_name)"
            ]
        );
        assert!(
            run(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, name: \"{{stem}}.txt\", temp_name: \"{{name}}\" } ]"))
                .is_ok()
        );
    }

    /// A temporary name a real file may have (`{{stem}}.txt`): the upload writes over that
    /// file and removes it when it fails — a partner's file lost.
    #[test]
    fn a_temp_name_a_real_file_may_have_is_a_warning() {
        let with = |temp: &str| BASE.replace("sinks: [ { endpoint: l } ]", &format!("sinks: [ {{ endpoint: l, temp_name: \"{temp}\" }} ]"));
        let w = warnings(&with("{{stem}}.txt"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].starts_with("`{{stem}}.txt` gives `sample.txt` for sample.csv, a name a real file in the folder may have")
                && w[0].ends_with("(at /sinks/0/temp_name)"),
            "{w:#?}"
        );
        for fine in [".{{name}}.up", "{{name}}.part", "{{name}}.TMP", "TMP_{{name}}", "tmp-{{name}}", "{{name}}~", "{{stem}}.filepart"] {
            assert_eq!(warnings(&with(fine)), Vec::<String>::new(), "{fine}");
        }
        assert_eq!(warnings(&with("temperatures-{{name}}")).len(), 1);
    }

    #[test]
    fn a_template_with_a_control_character_is_quoted_escaped() {
        // Before: the NUL and the line break were printed as they were, the message split
        // over two lines.
        let p = problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, path: \"/ok\\0x\", name: \"a\\nb\" } ]"));
        assert_eq!(
            p,
            [
                "template `/ok\\0x` gives a bad path: control character in \"/ok\\0x\" (at /sinks/0/path)",
                "template `a\\nb` must give a plain file name: for a file named sample.csv, control character in \"a\\nb\" (at /sinks/0/name)",
            ]
        );
    }

    /// Two flows sending a file of the same name into one folder never share its temporary
    /// file: the default temporary name is the flow's own.
    #[test]
    fn the_default_temporary_name_carries_the_flow_name() {
        let flow = run(BASE).unwrap();
        let vars = crate::template::NameVars::new("a.csv", "", 1, 1, std::time::UNIX_EPOCH);
        let temp = flow.sinks[0].temp_name.as_ref().unwrap().render(&vars).unwrap();
        assert_eq!(temp, format!(".a.csv.{}.part", flow.name));
    }

    #[test]
    fn a_temp_name_that_changes_from_run_to_run_is_a_warning() {
        let yaml = BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, temp_name: \".{{name}}.{{run}}.part\" } ]");
        assert!(run(&yaml).is_ok());
        let w = warnings(&yaml);
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].starts_with("`.{{name}}.{{run}}.part` changes from run to run") && w[0].ends_with("(at /sinks/0/temp_name)"),
            "{w:#?}"
        );
        assert_eq!(warnings(BASE), Vec::<String>::new());
    }

    /// `skip` with a name every file gets: each file arriving before the partner took the
    /// last one is dropped, its source disposed of as delivered.
    #[test]
    fn skip_with_a_name_every_file_gets_is_a_warning() {
        let with = |sink: &str| BASE.replace("sinks: [ { endpoint: l } ]", &format!("sinks: [ {{ endpoint: l, {sink} }} ]"));
        let w = warnings(&with("name: import.csv, if_exists: skip"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].starts_with("`import.csv` is every file's name on this sink") && w[0].ends_with("(at /sinks/0/if_exists)"), "{w:#?}");
        for fine in ["name: import.csv, if_exists: fail", "if_exists: skip", "name: import.csv, path: '/{{stem}}', if_exists: skip"] {
            assert_eq!(warnings(&with(fine)), Vec::<String>::new(), "{fine}");
        }
    }

    /// The same when a `command` step gives every file one name (`name: out.csv`): before,
    /// no word of it, and the second file of a run was dropped as delivered.
    #[test]
    fn skip_with_a_name_a_command_step_gives_every_file_is_a_warning() {
        let with = |sink: &str, name: &str| {
            format!(
                "{}quarantine: {{ endpoint: l, path: /q }}\nsteps:\n  - command: {{ run: [cat], name: '{name}' }}\n",
                BASE.replace("sinks: [ { endpoint: l } ]", &format!("sinks: [ {{ endpoint: l, {sink} }} ]"))
            )
        };
        let w = warnings(&with("if_exists: skip", "out.csv"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(
            w[0].starts_with("the content steps name every file `out.csv` on this sink, and `skip` counts a file delivered")
                && w[0].ends_with("(at /sinks/0/if_exists)"),
            "{w:#?}"
        );
        let w = warnings(&with("name: import.csv, if_exists: skip", "out.csv"));
        assert_eq!(w.len(), 1, "said once, of the sink's own name: {w:#?}");
        for fine in [with("if_exists: skip", "{{stem}}"), with("if_exists: fail", "out.csv"), with("if_exists: rename", "out.csv")] {
            assert_eq!(warnings(&fine), Vec::<String>::new(), "{fine}");
        }
    }

    /// `skip` with a source deleted or moved on success: a new version of a file whose name
    /// is at the partner goes unsent, and its source is deleted or moved as if sent. Before:
    /// no word of it (only in the docs).
    #[test]
    fn skip_with_a_disposed_source_is_a_warning() {
        let with = |sink: &str, after: &str| {
            format!(
                "{}{after}",
                BASE.replace("sinks: [ { endpoint: l } ]", &format!("sinks: [ {{ endpoint: s, path: /out }}, {{ endpoint: l, {sink} }} ]"))
            )
        };
        let w = warnings(&with("if_exists: skip", "after: { success: delete }\n"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].starts_with("`skip` with `after.success` `delete`: a file whose name is already at this sink's target"), "{w:#?}");
        assert!(w[0].contains("deleted from the source: that version is lost") && w[0].ends_with("(at /sinks/1/if_exists)"), "{w:#?}");
        let w = warnings(&with("if_exists: skip", "after: { success: { move_to: /done } }\n"));
        assert_eq!(w.len(), 1, "{w:#?}");
        assert!(w[0].contains("moved to `/done` as if it had been sent") && w[0].contains("`after.success: keep`"), "{w:#?}");
        for fine in [
            with("if_exists: skip", ""),
            with("if_exists: skip", "after: { success: keep }\n"),
            with("if_exists: rename", "after: { success: delete }\n"),
        ] {
            assert_eq!(warnings(&fine), Vec::<String>::new(), "{fine}");
        }
    }

    #[test]
    fn direct_writes_need_a_server_and_no_temp_name() {
        // To a server: no temporary name.
        let flow = run(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: s, path: /out, direct: true } ]")).unwrap();
        assert!(flow.sinks[0].temp_name.is_none());
        assert!(run(BASE).unwrap().sinks[0].temp_name.is_some());
        let p =
            problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, direct: true, temp_name: \"{{name}}.tmp\" } ]"));
        assert_eq!(
            p,
            [
                "`direct: true` writes straight under the final name, without a temporary name (at /sinks/0/temp_name)",
                "a local folder always takes a file by rename (atomic); `direct` is for servers that refuse renames (at /sinks/0/direct)"
            ]
        );
    }

    #[test]
    fn a_recursive_source_into_a_sink_without_a_name_is_warned_of_with_the_folder_that_keeps_the_tree() {
        let recursive = BASE.replace("path: /in }", "path: /in, recursive: true }");
        assert_eq!(
            warnings(&recursive),
            [
                "files of sub-folders are delivered by sink 0 (`l`) side by side under their own names: `a/x.csv` and `b/x.csv` both as `x.csv`, one per run. To keep the tree, give the sink `path: \"/{{rel_dir}}\"` (sub-folders are created under `/` as needed; files directly in `/in` go to `/` itself); to say flat is meant, write its `name: \"{{name}}\"` (at /source/recursive)"
            ]
        );
        let sink = |s: &str| recursive.replace("sinks: [ { endpoint: l } ]", &format!("sinks: [ {{ endpoint: l, {s} }} ]"));
        let w = warnings(&sink("path: /out/, if_exists: rename"));
        assert!(
            w[0].contains("`a/x.csv` and `b/x.csv` as `x.csv` and `x-1.csv`. To keep the tree, give the sink `path: \"/out/{{rel_dir}}\"`"),
            "{w:#?}"
        );
        // Said as it is, flat or not; a folder by sub-folder keeps the tree; no sub-folders, no word.
        // The name that reads as if it kept the tree is refused, with where the folder goes.
        assert_eq!(
            problems(&sink("name: \"{{rel_dir}}/{{name}}\"")),
            [
                "template `{{rel_dir}}/{{name}}` must give a plain file name: for a file named sample.csv, \"/sample.csv\" is not a plain file name; a name holds no folder: folders go into `path` (`{{rel_dir}}` there keeps the sub-folders of a recursive source, as `path: \"/out/{{rel_dir}}\"`) (at /sinks/0/name)"
            ]
        );
        // One that gives a plain name one folder down but a folder two down fails the files
        // there in every run: warned of.
        assert_eq!(
            warnings(&sink("name: \"{{rel_dir}}_{{name}}\"")),
            [
                "template `{{rel_dir}}_{{name}}` gives no plain file name for a file two folders down a recursive source (`a/b/sample.csv`): \"a/b_sample.csv\" is not a plain file name; such files would fail in every run; a name holds no folder: folders go into `path` (`{{rel_dir}}` there keeps the sub-folders of a recursive source, as `path: \"/out/{{rel_dir}}\"`) (at /sinks/0/name)"
            ]
        );
        for quiet in
            [sink("name: \"{{name}}\""), sink("name: \"{{stem}}-{{run}}.{{ext}}\""), sink("path: \"/out/{{rel_dir}}\""), BASE.to_string()]
        {
            assert_eq!(warnings(&quiet), Vec::<String>::new(), "{quiet}");
        }
    }
}
