//! Meaning checks on a flow's content steps (`steps:`, `on_invalid`, `max_invalid`) and its
//! `quarantine:`: the steps are built by `steps::build_partial` (scripts, schemas, look-up
//! tables, their order); this file adds what the steps cannot judge themselves — which
//! settings apply to which record format — and where refused files go, and turns what the
//! built steps find surely wrong (a template field no valid record has) into warnings.
//!
//! A child of `validate/mod.rs`, adding methods to the same `Checker`.

use super::Checker;
use crate::config::flow::{Quarantine, Source};
use crate::config::raw_steps::{CsvSetting, OnInvalid, ParseFormat, RawMaxInvalid, RawQuarantine, RawStep, WriteFormat};

impl Checker<'_, '_> {
    /// Content steps (`list`, as their messages at run time name it: `steps`,
    /// `response.steps`), their invalid-record policy and the quarantine location.
    pub(super) fn content(
        &mut self,
        (list, steps): (&'static str, &[Option<RawStep>]),
        quarantine: Option<RawQuarantine>,
        on_invalid: OnInvalid,
        max_invalid: Option<&RawMaxInvalid>,
        defined: Option<&[String]>,
        source: Option<&Source>,
    ) -> Option<(Option<crate::steps::Steps>, Option<Quarantine>)> {
        let mut steps: Vec<Option<&RawStep>> = steps.iter().map(Option::as_ref).collect();
        // `command` steps with their program as `source.command`'s is found: from the flow
        // file's folder made absolute (it runs in that folder: a relative path would be looked
        // for below it again), `~/` in the home folder.
        let mut resolved = Vec::new();
        for (i, step) in steps.iter_mut().enumerate() {
            if let Some(s) = step {
                self.csv_settings(&format!("/steps/{i}"), s);
                // Its `run` and `pass_env` as `source.command`'s (a bad one left out of the
                // build: already said).
                if let RawStep::Command(c) = s {
                    let at = format!("/steps/{i}/command");
                    match (self.run_line(&at, &c.run), self.pass_env(&at, &c.pass_env)) {
                        (Some((program, _)), Some(_)) => {
                            let mut c = c.clone();
                            c.run[0] = program.to_string_lossy().into_owned();
                            resolved.push((i, RawStep::Command(c)));
                        }
                        _ => *step = None,
                    }
                }
            }
        }
        let built: Vec<Option<&RawStep>> =
            steps.iter().enumerate().map(|(i, s)| resolved.iter().find(|(j, _)| *j == i).map(|(_, r)| r).or(*s)).collect();
        let built = match crate::steps::build_partial(&built, list, on_invalid, max_invalid, self.lookup.base_dir) {
            Ok(s) => {
                for (path, message) in s.warnings() {
                    self.warning(path, message);
                }
                Some(s)
            }
            Err(problems) => {
                self.problems.extend(problems);
                None
            }
        };
        let quarantine = match quarantine {
            None if !steps.is_empty() => {
                self.problem("/steps", "a flow with steps needs `quarantine: { endpoint, path }`: where the files they refuse go");
                return None;
            }
            None => None,
            Some(q) => {
                self.endpoint_ref("/quarantine/endpoint", &q.endpoint, defined);
                let path = self.remote_path("/quarantine/path", &q.path)?;
                if let Some(src) = source {
                    self.not_rescanned("/quarantine/path", &q.endpoint, &path, src, "quarantined files");
                }
                Some(Quarantine { endpoint: q.endpoint, path, report: q.report })
            }
        };
        let built = built?;
        Some(((!steps.is_empty()).then_some(built), quarantine))
    }

    /// CSV's own settings written on a `json` / `jsonl` parse or write step at `at`
    /// (`/steps/0`). At their default values they ask for nothing and are a warning (flows
    /// that older versions took keep loading); at any other value they are a problem: the
    /// user asked for something that would silently not happen.
    pub(super) fn csv_settings(&mut self, at: &str, step: &RawStep) {
        let (kind, format, given, why) = match step {
            RawStep::Parse(p) if p.format != ParseFormat::Csv => {
                let format = if p.format == ParseFormat::Json { "json" } else { "jsonl" };
                ("parse", format, p.csv_settings_given(), format!("this file is read as `{format}`"))
            }
            RawStep::Write(w) if w.format != WriteFormat::Csv => {
                let format = if w.format == WriteFormat::Json { "json" } else { "jsonl" };
                ("write", format, w.csv_settings_given(), format!("the output is `{format}`"))
            }
            _ => return,
        };
        for CsvSetting { field, default } in given {
            let path = format!("{at}/{kind}/{field}");
            if default {
                self.warning(path, format!("`{field}` only applies to csv; it has no effect on a `{format}` {kind} step — remove it"));
            } else {
                self.problem(path, format!("applies to `csv` only ({why})"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check, problems, run, warnings};

    const BASE: &str = "name: f
endpoints:
  l: { type: local, root: ./out }
source: { endpoint: l, path: /in }
sinks: [ { endpoint: l, path: /out } ]
quarantine: { endpoint: l, path: /bad }
";

    fn with_steps(steps: &str) -> String {
        format!("{BASE}steps:\n{steps}\n")
    }

    #[test]
    fn csv_settings_on_json_at_other_values_are_refused() {
        for format in ["json", "jsonl"] {
            let p = problems(&with_steps(&format!(
                "- parse: {{ format: {format}, header: false, columns: [a], delimiter: ';', quote: \"'\", trailer: {{ marker: T, count_column: 1 }} }}"
            )));
            let why = format!("applies to `csv` only (this file is read as `{format}`)");
            let fields = ["header", "columns", "delimiter", "quote", "trailer"];
            assert_eq!(p, fields.map(|f| format!("{why} (at /steps/0/parse/{f})")));
            let p = problems(&with_steps(&format!(
                "- parse: {{ format: csv }}\n- write: {{ format: {format}, columns: [a], delimiter: ';', header: false }}"
            )));
            let why = format!("applies to `csv` only (the output is `{format}`)");
            assert_eq!(p, ["columns", "delimiter", "header"].map(|f| format!("{why} (at /steps/1/write/{f})")));
        }
    }

    #[test]
    fn csv_settings_on_json_at_their_default_values_are_a_warning() {
        for format in ["json", "jsonl"] {
            let yaml = with_steps(&format!(
                "- parse: {{ format: {format}, header: true, columns: [], delimiter: ',', quote: '\"' }}\n- write: {{ format: {format}, columns: [], delimiter: ',', header: true }}"
            ));
            let checked = check(&yaml);
            assert!(checked.flow.is_ok(), "{:?}", checked.flow.err());
            let w = warnings(&yaml);
            let parse = ["header", "columns", "delimiter", "quote"].map(|f| {
                format!("`{f}` only applies to csv; it has no effect on a `{format}` parse step — remove it (at /steps/0/parse/{f})")
            });
            let write = ["columns", "delimiter", "header"].map(|f| {
                format!("`{f}` only applies to csv; it has no effect on a `{format}` write step — remove it (at /steps/1/write/{f})")
            });
            assert_eq!(w, [&parse[..], &write[..]].concat());
        }
        // A default beside a setting that asks for something: the one refused, the other warned.
        let yaml = with_steps("- parse: { format: json, delimiter: ',', quote: \"'\" }");
        assert_eq!(problems(&yaml), ["applies to `csv` only (this file is read as `json`) (at /steps/0/parse/quote)"]);
        assert_eq!(warnings(&yaml).len(), 1, "{:?}", warnings(&yaml));
        // In a response's steps, under `/response`.
        let yaml = format!(
            "{BASE}response:\n  path: /answers\n  name: \"{{{{stem}}}}.ack\"\n  deadline: 1h\n  steps: [ {{ parse: {{ format: jsonl, header: true }} }} ]\n  quarantine: {{ endpoint: l, path: /bad-answers }}\n  sinks: [ {{ endpoint: l, path: /answered }} ]\n"
        );
        assert!(run(&yaml).is_ok(), "{:?}", run(&yaml).err());
        assert_eq!(
            warnings(&yaml),
            ["`header` only applies to csv; it has no effect on a `jsonl` parse step — remove it (at /response/steps/0/parse/header)"]
        );
    }

    /// A template reading a field the flow's own schema rules out: a warning at the template's
    /// setting, naming the template line, the schema and what it declares.
    #[test]
    fn a_template_field_outside_a_closed_schema_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        file("orders.schema.json", r#"{"properties": {"sku": {}, "currency": {}}, "additionalProperties": false}"#);
        file("row.txt.hbs", "{{record.sku}}\n{{record.curency}}\n");
        file("m.rhai", "fn map(r) { r }");
        let flow = |steps: &str| {
            file("f.yaml", &with_steps(steps));
            let (flow, warnings) = crate::config::load_flow_with_warnings(&dir.path().join("f.yaml"));
            assert!(flow.is_ok(), "{flow:?}");
            warnings.into_iter().map(|w| w.warning_text().replace(&dir.path().display().to_string(), "DIR")).collect::<Vec<_>>()
        };
        assert_eq!(
            flow("- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- render: { row: row.txt.hbs }"),
            ["DIR/f.yaml:10:18: warning: template row.txt.hbs line 2, col 1: `record.curency` is not a property of the schema \
                 orders.schema.json (declared: currency, sku); every record will fail to render (at /steps/2/render/row)"]
        );
        // A script between them may make any field: nothing to say.
        let mapped = "- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- map: { script: m.rhai }\n- render: { row: row.txt.hbs }";
        assert_eq!(flow(mapped), Vec::<String>::new());
        // Nor of a field declared.
        file("row.txt.hbs", "{{record.sku}} {{record.currency}}\n");
        assert_eq!(
            flow("- parse: { format: csv }\n- validate: { schema: orders.schema.json }\n- render: { row: row.txt.hbs }"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn csv_settings_are_csv_s_own_and_no_settings_warn_nothing() {
        let yaml = with_steps(
            "- parse: { format: csv, header: false, columns: [a], delimiter: ';', quote: \"'\" }\n- write: { format: csv, columns: [a], delimiter: ',', header: true }",
        );
        assert!(run(&yaml).is_ok() && warnings(&yaml).is_empty());
        let yaml = with_steps("- parse: { format: json }\n- write: { format: jsonl }");
        assert!(run(&yaml).is_ok() && warnings(&yaml).is_empty());
    }

    /// A `command` step's `run` and `pass_env` are checked as `source.command`'s.
    #[test]
    fn a_command_step_s_run_and_pass_env_are_checked_as_a_source_command_s() {
        let yaml = with_steps("- command: { run: [gpg, --batch, --decrypt], pass_env: [GNUPGHOME, PASS], name: '{{stem}}' }");
        let flow = run(&yaml).unwrap();
        assert!(flow.steps.unwrap().renames());
        assert_eq!(
            warnings(&yaml),
            ["`GNUPGHOME` is not set in wharf's environment (here): the command would run without it (at /steps/0/command/pass_env/0)"]
        );
        let p = problems(&with_steps("- command: { run: [gpg], pass_env: [\"A=b\"] }\n- parse: { format: csv }"));
        assert_eq!(p.len(), 1, "{p:#?}");
        assert!(p[0].ends_with("(at /steps/0/command/pass_env/0)"), "{p:#?}");
        let w = warnings(&with_steps("- command: { run: [gpg, '--passphrase=${env:PASS}'] }"));
        assert!(w[0].starts_with("`${env:…}` and `${file:…}` are not expanded") && w[0].ends_with("(at /steps/0/command/run/1)"), "{w:#?}");
        let p = problems(&with_steps("- parse: { format: csv }\n- command: { run: [gzip] }\n- write: { format: csv }"));
        assert!(p[0].starts_with("a `command` step works on the file's bytes") && p[0].ends_with("(at /steps/1/command)"), "{p:#?}");
    }

    /// `max_output`: a size as `check`'s `max_size` takes it, with its file line; never zero.
    #[test]
    fn a_command_step_s_max_output_is_a_positive_size() {
        let loaded = |max: &str| {
            let text = with_steps(&format!("- command: {{ run: [gunzip], max_output: {max} }}")).replace("${env:PASS}", "p");
            match crate::config::load::load_flow_str(&text, std::path::Path::new("/flows/f.yaml")) {
                Ok(flow) => Ok(flow.steps.expect("steps")),
                Err(e) => Err(e.iter().map(ToString::to_string).collect::<Vec<_>>()),
            }
        };
        assert!(loaded("500MiB").is_ok() && loaded("1048576").is_ok(), "{:?}", loaded("500MiB").err());
        assert_eq!(
            loaded("0").unwrap_err(),
            ["/flows/f.yaml:8:41: is zero: no program could write anything; give a size such as `10GiB` (at /steps/0/command/max_output)"]
        );
        assert_eq!(
            loaded("10mb").unwrap_err(),
            ["/flows/f.yaml:8:41: `10mb`: unknown unit `mb` (use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB; upper and lower case as \
              written here) (at /steps/0/command/max_output)"]
        );
    }
}
