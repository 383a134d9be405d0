//! Meaning checks on a flow's `response:` section (round trips), and the building of its
//! [`Response`] with the derived response flow.
//!
//! A child of `validate.rs` (declared there), so it checks with the same [`Checker`] and the
//! same rules as the flow itself — endpoint references, jailed paths, name templates,
//! durations, sinks, steps and quarantine — instead of restating them. Problems carry their
//! YAML path under `/response`. It never connects.

use std::time::Duration;

use super::Checker;
use crate::config::flow::{Disposition, Flow, Identity, OnError, Quarantine, Ready, Response, Sink, Source};
use crate::config::raw_response::RawResponse;
use crate::endpoint::RemotePath;
use crate::template::{NameTemplate, NameVars};

const AT: &str = "/response";

/// A checked `response:` section, waiting for the rest of the flow to be built (the derived
/// flow shares its endpoints and retry policy).
#[derive(Debug, Clone)]
pub(super) struct Draft {
    name: NameTemplate,
    deadline: Duration,
    expire_after: Option<Duration>,
    request_sink: usize,
    source: Source,
    sinks: Vec<Sink>,
    after: Disposition,
    steps: Option<crate::steps::Steps>,
    quarantine: Option<Quarantine>,
}

impl Draft {
    /// The built response of `parent` (whose own `response` is not looked at).
    pub(super) fn build(self, parent: &Flow) -> Response {
        Response {
            name: self.name,
            deadline: self.deadline,
            expire_after: self.expire_after,
            request_sink: self.request_sink,
            flow: Flow {
                name: crate::config::flow::response_flow_name(&parent.name),
                file: parent.file.clone(),
                endpoints: parent.endpoints.clone(),
                source: self.source,
                sinks: self.sinks,
                after_success: self.after,
                // A refused or failed response stays where the partner put it: it is theirs,
                // and the quarantine copy (with reports) is what we look at.
                after_failure: Disposition::Keep,
                on_error: OnError::Continue,
                concurrency: parent.concurrency,
                retry: parent.retry,
                alerts: parent.alerts,
                history: parent.history,
                steps: self.steps,
                quarantine: self.quarantine,
                response: None,
                schedule: None,
                expect: vec![],
                // Notices about responses are the parent flow's.
                notify: vec![],
                // So are the warnings about its settings.
                warnings: vec![],
                unresolved: vec![],
            },
        }
    }
}

impl Checker<'_, '_> {
    /// Checks `raw`. `sinks` are the flow's checked sinks (`None` items are malformed), used
    /// for the default endpoint and the request sink; `source` is the flow's source, whose
    /// folder must not be the response folder, with its `include` patterns as written.
    pub(super) fn response(
        &mut self,
        raw: RawResponse,
        defined: Option<&[String]>,
        sinks: Option<&[Option<Sink>]>,
        (source, include): (Option<&Source>, Option<&[String]>),
    ) -> Option<Draft> {
        let sink_endpoints: Vec<Option<&str>> = sinks.unwrap_or_default().iter().map(|s| s.as_ref().map(|s| s.endpoint.as_str())).collect();
        let endpoint = match raw.endpoint {
            Some(e) => {
                self.endpoint_ref(&format!("{AT}/endpoint"), &e, defined);
                Some(e)
            }
            // A malformed first sink is reported where it is.
            None => sink_endpoints.first().copied().flatten().map(str::to_string),
        };
        let request_sink = sink_endpoints.iter().position(|e| e.is_some() && *e == endpoint.as_deref()).unwrap_or(0);
        let path = self.polled_folder(&format!("{AT}/path"), &raw.path, |_| {
            "; which file answers which request is `name`'s (a template such as `{{stem}}.ack`)".to_string()
        });
        if let (Some(p), Some(e), Some(src)) = (&path, &endpoint, source) {
            self.not_rescanned(&format!("{AT}/path"), e, p, src, "responses");
        }
        let name = self.name_template(&format!("{AT}/name"), &raw.name);
        let deadline = self.positive_duration(&format!("{AT}/deadline"), &raw.deadline);
        let expire_after = raw.expire_after.as_deref().map(|t| self.positive_duration(&format!("{AT}/expire_after"), t));
        if let (Some(d), Some(Some(e))) = (deadline, expire_after)
            && e <= d
        {
            self.problem(format!("{AT}/expire_after"), "must be longer than `deadline`: a response is given up only after it is overdue");
        }
        let every_pattern = vec!["*".to_string()];
        let every = self.globs(AT, &every_pattern, raw.ignore_case);
        let response_source = match (endpoint, path, every) {
            (Some(endpoint), Some(path), Some(include)) => Some(Source {
                endpoint,
                path,
                include,
                include_patterns: every_pattern,
                include_hidden: globset::GlobSet::empty(),
                exclude: globset::GlobSet::empty(),
                ignore_case: raw.ignore_case,
                any_case: None,
                recursive: false,
                max_depth: 1,
                max_files: None,
                ready: Ready::default(),
                identity: Identity::DEFAULT,
                command: None,
            }),
            _ => None,
        };
        let rs = response_source.as_ref();

        if raw.sinks.is_empty() {
            self.problem(format!("{AT}/sinks"), "must not be empty: responses need at least one sink");
        }
        let built_sinks: Vec<Option<Sink>> =
            raw.sinks.into_iter().enumerate().map(|(i, s)| self.sink(&format!("{AT}/sinks/{i}"), s, defined, rs)).collect();
        if let Some(src) = source {
            // Responses delivered where the flow takes its requests would go out as requests.
            for (i, s) in built_sinks.iter().enumerate() {
                if let Some((s, folder)) = s.as_ref().and_then(|s| Some((s, static_folder(s)?))) {
                    self.not_rescanned(&format!("{AT}/sinks/{i}/path"), &s.endpoint, &folder, src, "responses delivered there");
                }
            }
        }
        if let (Some(t), Some(rs)) = (&name, rs) {
            self.answerable(t, rs, sinks.unwrap_or_default());
            self.apart(t, include.unwrap_or_default());
        }
        let after = self.disposition(&format!("{AT}/after"), raw.after, rs);
        // The content checks name their paths as at the top of a flow: put them under `/response`.
        let (first, first_warning) = (self.problems.len(), self.warnings.len());
        let steps: Vec<_> = raw.steps.into_iter().map(Some).collect();
        let content = self.content(("response.steps", &steps), raw.quarantine, raw.on_invalid, raw.max_invalid.as_ref(), defined, rs);
        for p in self.problems[first..].iter_mut().chain(&mut self.warnings[first_warning..]) {
            p.yaml_path = format!("{AT}{}", p.yaml_path);
        }
        if let Some((Some(steps), _)) = &content {
            self.skip_one_name_after_steps(&format!("{AT}/sinks"), &built_sinks, steps);
        }
        let (steps, quarantine) = content?;
        Some(Draft {
            name: name?,
            deadline: deadline?,
            expire_after: checked_opt(expire_after)?,
            request_sink,
            source: response_source?,
            sinks: built_sinks.into_iter().collect::<Option<Vec<_>>>().filter(|s| !s.is_empty())?,
            after: after?,
            steps,
            quarantine,
        })
    }
}

impl Checker<'_, '_> {
    /// A response name must tell requests apart, and must not name what the flow itself
    /// writes beside a request in the response folder (the request, or its trigger, would
    /// answer itself).
    fn answerable(&mut self, name: &NameTemplate, rs: &Source, sinks: &[Option<Sink>]) {
        let at = format!("{AT}/name");
        let vars = |n: &str| NameVars::new(n, "", 1, 1, std::time::UNIX_EPOCH);
        let (Ok(a), Ok(b)) = (name.render(&vars("a.csv")), name.render(&vars("b.xml"))) else { return };
        if a == b {
            self.problem(
                at,
                format!(
                    "`{}` gives `{a}` whatever the request: every request would await the same file (use `{{{{stem}}}}` or `{{{{name}}}}`)",
                    name.source()
                ),
            );
            return;
        }
        let delivers_there = |s: &Sink| {
            static_folder(s).is_some_and(|f| self.relation(&s.endpoint, &f, &rs.endpoint, &rs.path) == Some(super::Relation::Same))
        };
        let requests: Vec<&Sink> = sinks.iter().flatten().filter(|s| delivers_there(s)).collect();
        for s in requests {
            let Ok(delivered) = s.name.render(&vars("a.csv")) else { continue };
            let Ok(expected) = name.render(&vars(&delivered)) else { continue };
            let trigger = s.trigger.as_ref().and_then(|t| t.render(&vars(&delivered)).ok());
            // Alike but for case is alike, to a response matched ignoring case.
            let key = |n: &str| rs.name_key(n).into_owned();
            let what = if key(&expected) == key(&delivered) {
                "the request itself"
            } else if trigger.as_deref().map(key) == Some(key(&expected)) {
                "the request's trigger file"
            } else {
                continue;
            };
            self.problem(
                at,
                format!("the response is awaited in `{}`, where sink `{}` delivers the requests, and is named like {what}: each request would answer itself", rs.path, s.endpoint),
            );
            return;
        }
    }
}

impl Checker<'_, '_> {
    /// Warns when the response name drops the extension (`{{stem}}.ack`) while the source's
    /// `include`, as written, takes files of several extensions: `a.csv` and `a.xml` would
    /// await the same response, so the second waits until the first is answered. Not for the
    /// default `include` (every file): a flow that says nothing about its files is not told.
    fn apart(&mut self, name: &NameTemplate, include: &[String]) {
        let vars = |n: &str| NameVars::new(n, "", 1, 1, std::time::UNIX_EPOCH);
        let (Ok(a), Ok(b)) = (name.render(&vars("a.csv")), name.render(&vars("a.xml"))) else { return };
        if a != b || include.is_empty() || include == crate::config::raw::default_include() {
            return;
        }
        // The extension each pattern takes; `None`: any (`*`, `*.*`, `orders_*`).
        let ext = |p: &str| {
            let last = p.rsplit('/').next().unwrap_or(p);
            last.rsplit_once('.').map(|(_, e)| e).filter(|e| !e.contains(['*', '?', '[', '{'])).map(str::to_ascii_lowercase)
        };
        let exts: Vec<Option<String>> = include.iter().map(|p| ext(p)).collect();
        let several = exts.iter().any(Option::is_none) || exts.iter().flatten().collect::<std::collections::BTreeSet<_>>().len() > 1;
        if several {
            self.warning(
                format!("{AT}/name"),
                format!(
                    "`{}` gives the same response for `a.csv` and `a.xml`, and `include` takes files of several extensions: two such requests are not sent together: the second waits until the first is answered or its await expires (use `{{{{name}}}}` to tell them apart)",
                    name.source()
                ),
            );
        }
    }
}

/// A sink's folder when it is the same for every file (no template).
pub(super) fn static_folder(s: &Sink) -> Option<RemotePath> {
    let text = s.path.source();
    if text.contains("{{") { None } else { RemotePath::parse(text).ok() }
}

/// `None` when an optional setting was given but invalid.
fn checked_opt<T>(v: Option<Option<T>>) -> Option<Option<T>> {
    match v {
        None => Some(None),
        Some(inner) => inner.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, run};
    use super::*;

    const BASE: &str = "name: orders
endpoints:
  out: { type: local, root: ./outbox }
  partner: { type: local, root: ./partner }
  archive: { type: local, root: ./archive }
source: { endpoint: out, path: / }
sinks: [ { endpoint: archive, path: /sent }, { endpoint: partner, path: /inbox } ]
";

    #[test]
    fn builds_the_derived_response_flow() {
        let flow = run(&format!(
            "{BASE}retry: {{ attempts: 5 }}\nresponse:\n  endpoint: partner\n  path: /outbox\n  name: \"{{{{stem}}}}.ack\"\n  deadline: 30m\n  expire_after: 7d\n  sinks: [ {{ endpoint: archive, path: /acks }} ]\n  after: delete\n"
        ))
        .unwrap();
        let r = flow.response.as_deref().unwrap();
        assert_eq!((r.deadline, r.expire_after), (Duration::from_secs(1800), Some(Duration::from_secs(7 * 86_400))));
        assert_eq!(r.request_sink, 1, "the first sink on the response endpoint");
        assert_eq!(r.name.source(), "{{stem}}.ack");
        let f = &r.flow;
        assert_eq!(f.name, "orders.response");
        assert_eq!((f.source.endpoint.as_str(), f.source.path.as_str()), ("partner", "outbox"));
        assert_eq!(f.source.identity, Identity::DEFAULT);
        assert_eq!((&f.after_success, &f.after_failure), (&Disposition::Delete, &Disposition::Keep));
        assert_eq!((f.retry.attempts, f.sinks.len(), f.sinks[0].endpoint.as_str()), (5, 1, "archive"));
        assert!(f.response.is_none() && f.steps.is_none() && f.endpoints.contains_key("partner"));
    }

    #[test]
    fn endpoint_defaults_to_the_first_sink_and_after_to_keep() {
        let flow = run(&format!(
            "{BASE}response: {{ path: /acks, name: \"{{{{name}}}}.ok\", deadline: 1h, sinks: [ {{ endpoint: out, path: /acks }} ] }}\n"
        ))
        .unwrap();
        let r = flow.response.unwrap();
        assert_eq!((r.flow.source.endpoint.as_str(), r.request_sink, r.expire_after), ("archive", 0, None));
        assert_eq!(r.flow.after_success, Disposition::Keep);
    }

    /// Round trips that would loop or match the wrong file are refused: responses delivered
    /// where requests are taken, a response named like the request (or its trigger) in the
    /// folder it is delivered to, a response name that does not depend on the request.
    #[test]
    fn round_trips_that_loop_or_answer_themselves_are_refused() {
        let p = problems(&format!(
            "{BASE}response: {{ endpoint: partner, path: /outbox, name: \"{{{{stem}}}}.ack\", deadline: 1h, sinks: [ {{ endpoint: out, path: / }} ] }}\n"
        ));
        assert!(
            p.iter().any(|m| m.contains("/response/sinks/0/path") && m.contains("is the source folder: responses delivered there")),
            "{p:#?}"
        );
        let p = problems(&format!(
            "{BASE}response: {{ endpoint: partner, path: /inbox, name: \"{{{{name}}}}\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ));
        assert!(p.iter().any(|m| m.contains("/response/name") && m.contains("named like the request itself")), "{p:#?}");
        let with_trigger =
            BASE.replace("{ endpoint: partner, path: /inbox }", "{ endpoint: partner, path: /inbox, trigger: \"{{name}}.go\" }");
        let p = problems(&format!(
            "{with_trigger}response: {{ endpoint: partner, path: /inbox, name: \"{{{{name}}}}.go\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ));
        assert!(p.iter().any(|m| m.contains("named like the request's trigger file")), "{p:#?}");
        let p = problems(&format!(
            "{BASE}response: {{ endpoint: partner, path: /outbox, name: \"ack{{{{rel_dir}}}}.txt\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ));
        assert!(p.iter().any(|m| m.contains("gives `ack.txt` whatever the request")), "{p:#?}");
        // In the same folder, a different name is fine.
        run(&format!(
            "{BASE}response: {{ endpoint: partner, path: /inbox, name: \"{{{{stem}}}}.ack\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ))
        .unwrap();
        let p = problems(&BASE.replace("name: orders", "name: orders.response"));
        assert!(p.iter().any(|m| m.contains("names ending in `.response` are kept for round trips")), "{p:#?}");
    }

    /// A response name that drops the extension, with a source taking several: a warning.
    #[test]
    fn a_response_name_that_cannot_tell_extensions_apart_is_warned_of() {
        let flow = |include: &str, name: &str| {
            format!(
                "{}response: {{ endpoint: partner, path: /outbox, name: \"{name}\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n",
                BASE.replace("source: { endpoint: out, path: / }", &format!("source: {{ endpoint: out, path: /{include} }}"))
            )
        };
        let warned =
            |y: String| super::super::tests::warnings(&y).iter().any(|w| w.contains("/response/name") && w.contains("several extensions"));
        assert!(warned(flow(", include: [\"*.csv\", \"*.xml\"]", "{{stem}}.ack")));
        assert!(warned(flow(", include: [\"orders_*\"]", "{{stem}}.ack")));
        assert!(!warned(flow(", include: [\"*.csv\", \"*.CSV\"]", "{{stem}}.ack")));
        assert!(!warned(flow(", include: [\"*.csv\", \"*.xml\"]", "{{name}}.ack")));
        // Not for a flow that says nothing of its files.
        assert!(!warned(flow("", "{{stem}}.ack")));
    }

    /// The loop checks compare where endpoints are: another name for the source's folder, or
    /// for the folder the requests are delivered to, is the same folder.
    #[test]
    fn round_trip_loops_through_another_endpoint_name_are_refused() {
        let base = BASE.replace("archive: { type: local, root: ./archive }", "archive: { type: local, root: ./archive }\n  outbox: { type: local, root: ./outbox/ }\n  inbox: { type: local, root: ./partner/inbox }");
        let p = problems(&format!(
            "{base}response: {{ endpoint: outbox, path: /, name: \"{{{{stem}}}}.ack\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ));
        assert_eq!(
            p,
            [
                "`/` on endpoint `outbox` is the source folder (`/` on endpoint `out`: the same place): responses would be picked up again (at /response/path)"
            ]
        );
        let p = problems(&format!(
            "{base}response: {{ endpoint: partner, path: /acks, name: \"{{{{stem}}}}.ack\", deadline: 1h, sinks: [ {{ endpoint: outbox, path: / }} ] }}\n"
        ));
        assert!(
            p.iter().any(|m| m.contains("/response/sinks/0/path") && m.contains("is the source folder (`/` on endpoint `out`")),
            "{p:#?}"
        );
        let p = problems(&format!(
            "{base}response: {{ endpoint: inbox, path: /, name: \"{{{{name}}}}\", deadline: 1h, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ));
        assert!(p.iter().any(|m| m.contains("/response/name") && m.contains("named like the request itself")), "{p:#?}");
    }

    #[test]
    fn every_problem_is_reported_under_response() {
        let p = problems(&format!(
            "{BASE}response:\n  endpoint: nope\n  path: /a/../..\n  name: \"x/{{{{stem}}}}\"\n  deadline: 0s\n  expire_after: \"5\"\n  steps: [ {{ parse: {{ format: csv }} }} ]\n  sinks: []\n"
        ));
        let want = [
            "unknown endpoint `nope` (defined: `archive`, `out`, `partner`) (at /response/endpoint)",
            "(at /response/path)",
            "(at /response/name)",
            "`0s` is zero; give a positive duration (at /response/deadline)",
            "is not a duration: a unit is missing (write e.g. `500ms`, `30s`, `2m`, `1h30m`, `1d`) (at /response/expire_after)",
            "must not be empty: responses need at least one sink (at /response/sinks)",
            "a flow with steps needs `quarantine: { endpoint, path }`: where the files they refuse go (at /response/steps)",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for (got, want) in p.iter().zip(want) {
            assert!(got.ends_with(want), "{got:?} should end with {want:?}");
        }
        let p = problems(&format!(
            "{BASE}response: {{ endpoint: out, path: /, name: \"{{{{stem}}}}.ack\", deadline: 1h, expire_after: 30m, sinks: [ {{ endpoint: archive, path: /acks }} ] }}\n"
        ));
        assert_eq!(
            p,
            [
                "`/` is the source folder: responses would be picked up again (at /response/path)",
                "must be longer than `deadline`: a response is given up only after it is overdue (at /response/expire_after)"
            ]
        );
        let p = problems(&format!(
            "{BASE}response: {{ endpoint: partner, path: /out, name: \"{{{{stem}}}}.ack\", deadline: 1h, sinks: [ {{ endpoint: partner, path: /out }} ] }}\n"
        ));
        assert_eq!(p, ["`/out` is the source folder: delivered files would be picked up again (at /response/sinks/0/path)"]);
        let p = problems(&format!(
            "{BASE}response: {{ path: /acks/*.ack, name: \"{{{{stem}}}}.ack\", deadline: 1h, sinks: [ {{ endpoint: out, path: /acks }} ] }}\n"
        ));
        assert_eq!(
            p,
            [
                "`/acks/*.ack` has a pattern in it, but this is the folder to poll: write `path: /acks`; which file answers which request is `name`'s (a template such as `{{stem}}.ack`) (at /response/path)"
            ]
        );
    }
}
