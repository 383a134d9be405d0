//! Meaning checks on a flow whose shape is right, and the building of the typed [`Flow`].
//!
//! Owns every rule that spans fields or needs more than a type: endpoint references, globs,
//! name templates, jailed paths, durations, credentials and host-key settings, identity and
//! disposition rules. It reports *every* problem as a [`Problem`] (a YAML path and a message;
//! `load.rs` turns them into positioned diagnostics) and builds the flow only when there are
//! none. A setting that is harmless but pointless (a CSV setting at its default value on a
//! `json` step) is a *warning*, in the same form: it never stops a flow. The only outside
//! world it touches is through [`Lookup`]: `${env:…}` / `${file:…}` for credentials, and the
//! flow file's folder for relative paths. It never connects.
//!
//! This file holds the order of the checks ([`validate_sections`]), the `Checker` and the
//! small rules every section uses (names, paths, durations, templates, endpoint references).
//! Split by section, each adding methods to the one `Checker`: `endpoints.rs` (servers,
//! credentials, host keys, certificates), `source.rs` (`source:`), `sinks.rs` (`sinks:`),
//! `folders.rs` (folders the source would list again, sinks into one folder, `after:`),
//! `content.rs` (`steps:`, quarantine), `policy.rs` (`concurrency`, `retry`, `alerts`),
//! `response.rs` (`response:`), `schedule.rs` (`schedule:`, `expect:`) and `notify.rs`
//! (`notify:`); `place.rs` says where an endpoint's folders are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;

use super::diagnostic::Problem;
use super::duration;
use super::flow::{CertTrust, Disposition, EndpointSpec, Flow, FtpSpec, FtpTls, HostKeyPolicy, SftpSpec, Sink, SshAuth};
use super::interpolate::{Lookup, resolve};

/// Files in flight at once when a flow does not say (and does not stop at the first error),
/// for files of a MiB or more; runs of smaller files get [`MAX_CONCURRENCY`] (see
/// `engine::endpoints::concurrency`).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The most files in flight a flow may ask for.
pub const MAX_CONCURRENCY: u32 = 64;
use super::locate::escape;
use super::raw::{OnError, RawAfter, RawAlerts, RawEndpoint, RawFlow, RawFtp, RawRetry, RawSftp, RawSink, RawSource};
use super::raw_steps::{OnInvalid, RawMaxInvalid, RawQuarantine, RawStep};
use super::secret::Secret;
use crate::endpoint::RemotePath;
use crate::endpoint::path::check_name;
use crate::template::{NameTemplate, NameVars};

// Child modules, so they use this `Checker` and its rules as they are.
mod content;
mod endpoints;
mod folders;
mod notify;
mod place;
mod policy;
pub use policy::DEFAULT_HISTORY;
mod response;
mod schedule;
mod sinks;
mod source;

use folders::Relation;
use place::Place;
use response::static_folder;

pub use endpoints::parse_cert_fingerprint;
pub use notify::validate_notify;

/// The parts of a flow file that have the right shape. `None` marks a part whose shape is
/// broken (already reported by the schema check); checks that need it are skipped.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    pub name: Option<String>,
    /// Every endpoint name; the definition is `None` when it is malformed.
    pub endpoints: Option<BTreeMap<String, Option<RawEndpoint>>>,
    pub source: Option<RawSource>,
    /// Every sink; `None` items are malformed.
    pub sinks: Option<Vec<Option<RawSink>>>,
    pub after: Option<RawAfter>,
    pub on_error: Option<OnError>,
    /// `Some(None)`: not configured; `None`: malformed.
    pub concurrency: Option<Option<u32>>,
    pub retry: Option<RawRetry>,
    pub alerts: Option<RawAlerts>,
    /// `Some(None)`: not configured; `None`: malformed.
    pub history: Option<Option<String>>,
    /// Every content step; `None` items are malformed.
    pub steps: Option<Vec<Option<RawStep>>>,
    /// `Some(None)`: not configured; `None`: malformed.
    pub quarantine: Option<Option<RawQuarantine>>,
    pub on_invalid: Option<OnInvalid>,
    /// `Some(None)`: not configured; `None`: malformed.
    pub max_invalid: Option<Option<RawMaxInvalid>>,
    /// `Some(None)`: not configured; `None`: malformed.
    pub response: Option<Option<super::raw_response::RawResponse>>,
    /// `Some(None)`: not configured; `None`: malformed.
    pub schedule: Option<Option<super::raw_schedule::RawSchedule>>,
    /// Every `expect:` entry; `None` items are malformed.
    pub expect: Option<Vec<Option<super::raw_schedule::RawExpect>>>,
    /// Every notification rule; `None` items are malformed.
    pub notify: Option<Vec<Option<super::raw_notify::RawNotifyRule>>>,
}

impl From<RawFlow> for Sections {
    fn from(raw: RawFlow) -> Self {
        Sections {
            name: Some(raw.name),
            endpoints: Some(raw.endpoints.into_iter().map(|(k, v)| (k, Some(v))).collect()),
            source: Some(raw.source),
            sinks: Some(raw.sinks.into_iter().map(Some).collect()),
            after: Some(raw.after),
            on_error: Some(raw.on_error),
            concurrency: Some(raw.concurrency),
            retry: Some(raw.retry),
            alerts: Some(raw.alerts),
            history: Some(raw.history),
            steps: Some(raw.steps.into_iter().map(Some).collect()),
            quarantine: Some(raw.quarantine),
            on_invalid: Some(raw.on_invalid),
            max_invalid: Some(raw.max_invalid),
            response: Some(raw.response),
            schedule: Some(raw.schedule),
            expect: Some(raw.expect.into_iter().map(Some).collect()),
            notify: Some(raw.notify.into_iter().map(Some).collect()),
        }
    }
}

/// What the meaning checks found in a flow.
#[derive(Debug)]
pub struct Checked {
    /// The built flow, or every problem that stops it.
    pub flow: Result<Flow, Vec<Problem>>,
    /// What is pointless but harmless, whether or not the flow was built: reported, never
    /// refused.
    pub warnings: Vec<Problem>,
    /// Credentials kept as written, their values not to be had here (only with
    /// `keep_unavailable`).
    pub unresolved: Vec<Problem>,
}

/// Checks a deserialized flow and builds it. `file` is recorded in the flow; relative paths
/// and `${file:…}` resolve against `lookup.base_dir`.
pub fn validate(raw: RawFlow, file: &Path, lookup: &Lookup<'_>) -> Checked {
    validate_sections(Sections::from(raw), file, lookup, false)
}

/// Like [`validate`], for a flow of which some parts may be malformed: the others are still
/// checked, and the result is an error whenever a part is missing. With `keep_unavailable`, a
/// credential whose value is not to be had here (a variable not set, a secret file not
/// readable) is kept as written and listed in [`Checked::unresolved`] instead of refusing the
/// flow: for commands that read the ledger and never connect with it.
pub fn validate_sections(sections: Sections, file: &Path, lookup: &Lookup<'_>, keep_unavailable: bool) -> Checked {
    let mut c = Checker::new(lookup);
    c.keep_unavailable = keep_unavailable;
    let name = sections.name.and_then(|n| c.flow_name(&n));
    if let Some(name) = &name {
        c.flow.clone_from(name);
    }
    let defined: Option<Vec<String>> = sections.endpoints.as_ref().map(|e| e.keys().cloned().collect());
    let endpoints = sections.endpoints.map(|eps| {
        eps.into_iter()
            .map(|(name, ep)| {
                let spec = ep.and_then(|ep| c.endpoint(&name, ep));
                (name, spec)
            })
            .collect::<Vec<_>>()
    });
    // Folder rules compare where endpoints are, not their names.
    c.places = endpoints.iter().flatten().filter_map(|(n, spec)| Some((n.clone(), Place::of(spec.as_ref()?)))).collect();
    // What the source takes, as written: whether a response name tells its files apart.
    let include = sections.source.as_ref().map(|s| s.include.clone());
    let source = sections.source.and_then(|s| c.source(s, defined.as_deref()));
    if let (Some(src), Some(eps)) = (&source, &endpoints)
        && src.command.is_some()
        && eps.iter().any(|(n, spec)| n == &src.endpoint && spec.as_ref().is_some_and(|s| !matches!(s, EndpointSpec::Local { .. })))
    {
        c.problem("/source/command", "writes into the source folder, so the source endpoint must be `type: local`");
    }
    // The sinks that set no `name` (whether files of a recursive source arrive flat by choice).
    let unnamed: Vec<usize> =
        sections.sinks.iter().flatten().enumerate().filter(|(_, s)| s.as_ref().is_some_and(|s| s.name.is_none())).map(|(i, _)| i).collect();
    let sinks = sections.sinks.map(|sinks| {
        if sinks.is_empty() {
            c.problem("/sinks", "must not be empty: a flow needs at least one sink");
        }
        sinks
            .into_iter()
            .enumerate()
            .map(|(i, s)| s.and_then(|s| c.sink(&format!("/sinks/{i}"), s, defined.as_deref(), source.as_ref())))
            .collect::<Vec<_>>()
    });
    if let (Some(sinks), Some(eps)) = (&sinks, &endpoints) {
        for (i, sink) in sinks.iter().enumerate() {
            let Some(sink) = sink.as_ref().filter(|s| s.direct()) else { continue };
            if eps.iter().any(|(n, spec)| n == &sink.endpoint && matches!(spec, Some(EndpointSpec::Local { .. }))) {
                c.problem(
                    format!("/sinks/{i}/direct"),
                    "a local folder always takes a file by rename (atomic); `direct` is for servers that refuse renames",
                );
            }
        }
    }
    if let (Some(src), Some(sinks)) = (&source, &sinks) {
        c.flattened(src, sinks, &unnamed);
    }
    if let Some(sinks) = &sinks {
        let built: Vec<(usize, &Sink)> = sinks.iter().enumerate().filter_map(|(i, s)| Some((i, s.as_ref()?))).collect();
        for (k, &(j, b)) in built.iter().enumerate() {
            let same = |a: &Sink| a.name.source() == b.name.source() && c.same_sink_folder(a, b);
            if let Some((i, _)) = built[..k].iter().find(|(_, a)| same(a)) {
                c.problem(
                    format!("/sinks/{j}"),
                    format!(
                        "delivers to the same place as sink {i}: one copy would find the other there (give it another `path` or `name`)"
                    ),
                );
            }
        }
    }
    let after = sections.after.map(|a| {
        (c.disposition("/after/success", a.success, source.as_ref()), c.disposition("/after/failure", a.failure, source.as_ref()))
    });
    // The sink delivering into `folder` on endpoint `ep`, if one does.
    let sink_into = |c: &Checker, ep: &str, folder: &RemotePath| {
        let delivers_there = |s: &Sink| static_folder(s).is_some_and(|p| c.relation(&s.endpoint, &p, ep, folder) == Some(Relation::Same));
        sinks.as_ref()?.iter().position(|s| s.as_ref().is_some_and(delivers_there))
    };
    if let (Some((success, failure)), Some(src)) = (&after, &source) {
        if let Some(Disposition::MoveTo(folder)) = success
            && let Some(i) = sink_into(&c, &src.endpoint, folder)
        {
            c.problem(
                "/after/success/move_to",
                format!("`{folder}` is where sink {i} delivers: each moved source would land beside its own delivered copy (as `NAME-1`)"),
            );
        }
        if let Some(Disposition::MoveTo(folder)) = failure
            && let Some(i) = sink_into(&c, &src.endpoint, folder)
        {
            c.problem(
                "/after/failure/move_to",
                format!("`{folder}` is where sink {i} delivers: a file that failed would be moved among the delivered ones, and taken as delivered by whoever takes those"),
            );
        }
    }
    if let (Some((Some(success), _)), Some(sinks)) = (&after, &sinks) {
        c.skip_then_dispose(success, sinks);
    }
    let concurrency = c.concurrency(sections.concurrency, sections.on_error);
    let retry = sections.retry.and_then(|r| c.retry(r));
    let alerts = sections.alerts.and_then(|a| c.alerts(a));
    let history = sections.history.and_then(|h| c.history(h.as_deref()));
    // Built steps are the flow's one for one only when every step was read.
    let steps_whole = sections.steps.as_ref().is_some_and(|s| s.iter().all(Option::is_some));
    let content = match (sections.steps, sections.quarantine, sections.on_invalid, sections.max_invalid) {
        (Some(steps), Some(quarantine), Some(on_invalid), Some(max_invalid)) => {
            c.content(("steps", &steps), quarantine, on_invalid, max_invalid.as_ref(), defined.as_deref(), source.as_ref())
        }
        _ => None,
    };
    if let Some(src) = &source {
        let steps = content.as_ref().and_then(|(steps, _)| steps.as_ref()).filter(|_| steps_whole);
        c.companions_apart(src, steps);
    }
    if let (Some(sinks), Some((Some(steps), _))) = (&sinks, &content)
        && steps_whole
    {
        c.skip_one_name_after_steps("/sinks", sinks, steps);
    }
    if let Some((_, Some(q))) = &content
        && let Some(i) = sink_into(&c, &q.endpoint, &q.path)
    {
        c.problem(
            "/quarantine/path",
            format!(
                "`{}` is where sink {i} delivers: a file the steps refuse would be put aside among the delivered ones, and taken as delivered by whoever takes those",
                q.path
            ),
        );
    }
    let response =
        sections.response.map(|r| r.map(|r| c.response(r, defined.as_deref(), sinks.as_deref(), (source.as_ref(), include.as_deref()))));
    let schedule = sections.schedule.map(|s| s.map(|s| c.schedule(s)));
    let expect = sections.expect.map(|e| c.expects(e));
    let notify = sections.notify.map(|rules| c.notify("/notify", rules, file));

    let (problems, warnings, unresolved) = (c.problems, c.warnings, c.unresolved);
    let built = (|| {
        let endpoints = endpoints?.into_iter().map(|(k, v)| Some((k, v?))).collect::<Option<BTreeMap<_, _>>>()?;
        let sinks = sinks?.into_iter().collect::<Option<Vec<_>>>()?;
        let (after_success, after_failure) = after?;
        let response = match response? {
            Some(draft) => Some(draft?),
            None => None,
        };
        let mut flow = Flow {
            name: name?,
            file: file.to_path_buf(),
            endpoints,
            source: source?,
            sinks,
            after_success: after_success?,
            after_failure: after_failure?,
            on_error: sections.on_error?,
            concurrency: concurrency?,
            retry: retry?,
            alerts: alerts?,
            history: history?,
            steps: content.clone()?.0,
            quarantine: content?.1,
            response: None,
            schedule: match schedule? {
                Some(s) => Some(s?),
                None => None,
            },
            expect: expect??,
            notify: notify.flatten()?,
            // Positioned by the loader, which knows the lines.
            warnings: Vec::new(),
            unresolved: Vec::new(),
        };
        flow.response = response.map(|d| Box::new(d.build(&flow)));
        Some(flow)
    })();
    let flow = match built {
        Some(flow) if problems.is_empty() => Ok(flow),
        _ => Err(problems),
    };
    Checked { flow, warnings, unresolved }
}

/// Collects problems and warnings while checking; each check returns `None` when its part is
/// unusable.
struct Checker<'l, 'a> {
    lookup: &'l Lookup<'a>,
    problems: Vec<Problem>,
    /// Found alongside the problems; they never make a check return `None`.
    warnings: Vec<Problem>,
    /// Credentials kept as written (with `keep_unavailable`).
    unresolved: Vec<Problem>,
    /// Whether a credential whose value is not to be had here is kept as written.
    keep_unavailable: bool,
    /// Where each well-formed endpoint is (see `place.rs`).
    places: BTreeMap<String, Place>,
    /// The flow's name, once checked (a placeholder before, or when it is malformed: the flow
    /// is refused then anyway). Sinks' default temporary names carry it.
    flow: String,
}

impl<'l, 'a> Checker<'l, 'a> {
    fn new(lookup: &'l Lookup<'a>) -> Self {
        Checker {
            lookup,
            problems: Vec::new(),
            warnings: Vec::new(),
            unresolved: Vec::new(),
            keep_unavailable: false,
            places: BTreeMap::new(),
            flow: "flow".into(),
        }
    }
}

/// Where a name template that holds a folder is pointed to.
const FOLDER_GOES_TO_PATH: &str = "; a name holds no folder: folders go into `path` (`{{rel_dir}}` there keeps the sub-folders of a recursive source, as `path: \"/out/{{rel_dir}}\"`)";

impl Checker<'_, '_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(path, message));
    }

    /// Whether the credential at `path` was kept as written, its value not to be had here:
    /// checks of its value are left out.
    fn unresolved(&self, path: &str) -> bool {
        self.unresolved.iter().any(|p| p.yaml_path == path)
    }

    /// A command's `run` (at `at/run`): the program — a path with a `/` is from the flow
    /// file's folder — and its arguments, passed as written. `${env:…}` and `${file:…}` are
    /// not expanded there (only in credential fields): warned of, not to reach the program as
    /// they are written.
    fn run_line(&mut self, at: &str, run: &[String]) -> Option<(PathBuf, Vec<String>)> {
        let Some((program, args)) = run.split_first() else {
            self.problem(format!("{at}/run"), "must name a program");
            return None;
        };
        if program.is_empty() {
            self.problem(format!("{at}/run/0"), "must name a program");
            return None;
        }
        for (i, _) in run.iter().enumerate().filter(|(_, a)| a.contains("${env:") || a.contains("${file:")) {
            self.warning(
                format!("{at}/run/{i}"),
                "`${env:…}` and `${file:…}` are not expanded in a command's `run`: the program gets them as written; name the \
                 variable in the command's `pass_env` and read it from the environment (`\"$NAME\"` in a shell script), which \
                 also keeps a secret out of the process list",
            );
        }
        let program = if program.contains('/') { self.lookup.resolve_path(program) } else { PathBuf::from(program) };
        Some((program, args.to_vec()))
    }

    /// A command's `pass_env` (at `at/pass_env`): names of environment variables.
    fn pass_env(&mut self, at: &str, names: &[String]) -> Option<Vec<String>> {
        let mut ok = true;
        for (i, name) in names.iter().enumerate() {
            let mut chars = name.chars();
            let valid =
                chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                self.problem(
                    format!("{at}/pass_env/{i}"),
                    format!("`{name}` is not the name of an environment variable: use letters, digits and `_`, not starting with a digit"),
                );
                ok = false;
            } else if (self.lookup.env)(name).is_err() {
                // As a missing `${env:…}` secret is reported, though the program may do without.
                self.warning(
                    format!("{at}/pass_env/{i}"),
                    format!("`{name}` is not set in wharf's environment (here): the command would run without it"),
                );
            }
        }
        ok.then(|| names.to_vec())
    }

    /// Records `result`'s error at `path` and turns it into an `Option`.
    fn ok<T>(&mut self, path: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.problem(path, e)).ok()
    }

    fn flow_name(&mut self, name: &str) -> Option<String> {
        if !crate::config::raw::is_flow_name(name) {
            self.problem(
                "/name",
                format!("`{name}` is not a valid flow name: use letters, digits, `-`, `_` and `.`, starting with a letter or digit"),
            );
            return None;
        }
        if name.ends_with(".response") {
            self.problem(
                "/name",
                format!(
                    "`{name}`: names ending in `.response` are kept for round trips (the responses of flow `{}` are recorded under this name)",
                    name.trim_end_matches(".response")
                ),
            );
            return None;
        }
        Some(name.to_string())
    }

    fn positive_duration(&mut self, path: &str, text: &str) -> Option<Duration> {
        self.ok(path, duration::parse_positive(text))
    }

    fn endpoint_ref(&mut self, path: &str, name: &str, defined: Option<&[String]>) {
        let Some(defined) = defined else { return };
        if !defined.iter().any(|d| d == name) {
            let known = if defined.is_empty() {
                "no endpoints are defined".to_string()
            } else {
                format!("defined: {}", defined.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", "))
            };
            self.problem(path, format!("unknown endpoint `{name}` ({known})"));
        }
    }

    fn remote_path(&mut self, path: &str, text: &str) -> Option<RemotePath> {
        self.ok(path, RemotePath::parse(text).map_err(|e| e.to_string()))
    }

    /// Compiles a template and renders it with sample values.
    fn template(&mut self, path: &str, text: &str) -> Option<(NameTemplate, String)> {
        let t = self.ok(path, NameTemplate::new(text))?;
        let sample = self.ok(path, t.render(&NameVars::new("sample.csv", "", 1, 1, std::time::UNIX_EPOCH)))?;
        Some((t, sample))
    }

    /// A template that must render to one plain file name.
    fn name_template(&mut self, path: &str, text: &str) -> Option<NameTemplate> {
        let (t, sample) = self.template(path, text)?;
        self.ok(
            path,
            check_name(&sample).map_err(|e| {
                // `{{rel_dir}}/{{name}}`, meant to keep a recursive source's tree: the folder
                // part has a setting of its own.
                let folder = if sample.contains('/') { FOLDER_GOES_TO_PATH } else { "" };
                format!("template `{}` must give a plain file name: for a file named sample.csv, {e}{folder}", crate::text::visible(text))
            }),
        )?;
        self.named_two_folders_down(path, text, &t);
        Some(t)
    }

    /// Warns when the name template `t` (at `path`, written `text`), good for `sample.csv`,
    /// gives no plain name for a file two folders down a recursive source: `{{rel_dir}}` is
    /// a folder path there (`a/b`), so `{{rel_dir}}-{{name}}`, fine one folder down (`a-x.csv`),
    /// names `a/b-x.csv`, and such a file would fail in every run.
    fn named_two_folders_down(&mut self, path: &str, text: &str, t: &NameTemplate) {
        self.unnamed_for(path, t, NameVars::new("sample.csv", "a/b", 1, 1, std::time::UNIX_EPOCH), |e| {
            format!(
                "template `{}` gives no plain file name for a file two folders down a recursive source (`a/b/sample.csv`): {e}; \
                 such files would fail in every run{FOLDER_GOES_TO_PATH}",
                crate::text::visible(text)
            )
        });
    }

    /// Warns when the name template `t` (at `path`, written `text`), good for `sample.csv`,
    /// gives no plain name for a file without an extension (`{{ext}}` alone is empty for
    /// `README`): such a file would fail in every run, and nothing before the run said so.
    fn named_without_extension(&mut self, path: &str, text: &str, t: &NameTemplate) {
        self.unnamed_for(path, t, NameVars::new("README", "", 1, 1, std::time::UNIX_EPOCH), |e| {
            format!(
                "template `{}` gives no file name for a file without an extension: for a file named README, {e}; such a file fails in every run (leave such files out with `include`, or write the name with `{{{{name}}}}` or `{{{{stem}}}}`)",
                crate::text::visible(text)
            )
        });
    }

    /// A warning at `path`, worded by `says` from why, when the name template `t` gives no
    /// plain file name for the file `vars` describe.
    fn unnamed_for(&mut self, path: &str, t: &NameTemplate, vars: NameVars, says: impl FnOnce(String) -> String) {
        let Ok(name) = t.render(&vars) else { return };
        if let Err(e) = check_name(&name) {
            self.warning(path, says(e.to_string()));
        }
    }
}

/// An optional setting after checking: `None` when it was set but invalid, `Some(None)` when
/// it was not set.
fn checked<T>(setting: Option<Option<T>>) -> Option<Option<T>> {
    setting.map_or(Some(None), |valid| valid.map(Some))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::flow::{Identity, Retry};
    use crate::config::raw::IfExists;
    use std::env::VarError;

    fn env(name: &str) -> Result<String, VarError> {
        match name {
            "PASS" => Ok("s3cret".into()),
            "HOME" => Ok("/home/u".into()),
            _ => Err(VarError::NotPresent),
        }
    }

    /// Validates flow text (the child modules' tests use it too).
    pub(super) fn run(yaml: &str) -> Result<Flow, Vec<Problem>> {
        check(yaml).flow
    }

    /// Validates flow text, with the warnings.
    pub(super) fn check(yaml: &str) -> Checked {
        // Through JSON, as the loader does: serde_yaml alone wants `!move_to x` for enums.
        let raw: RawFlow = serde_json::from_value(serde_yaml::from_str(yaml).unwrap()).unwrap();
        validate(raw, Path::new("/flows/f.yaml"), &Lookup { base_dir: Path::new("/flows"), env: &env })
    }

    /// The warnings about flow text, as text.
    pub(super) fn warnings(yaml: &str) -> Vec<String> {
        check(yaml).warnings.into_iter().map(|p| p.to_string()).collect()
    }

    /// Every problem of an invalid flow, as text.
    pub(super) fn problems(yaml: &str) -> Vec<String> {
        run(yaml).unwrap_err().into_iter().map(|p| p.to_string()).collect()
    }

    /// A valid flow: an SFTP source (password from `${env:PASS}`), a local sink.
    pub(super) const BASE: &str = "name: f
endpoints:
  s: { type: sftp, host: h, user: u, auth: { password: \"${env:PASS}\" }, host_key: { known_hosts: ../k/known_hosts } }
  l: { type: local, root: ./out }
source: { endpoint: s, path: /in }
sinks: [ { endpoint: l } ]
";

    #[test]
    fn builds_a_flow_with_resolved_paths_and_secrets() {
        let flow = run(BASE).unwrap();
        let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
        let SshAuth::Password(p) = &s.auth else { panic!() };
        assert_eq!(p.expose(), "s3cret");
        assert_eq!(s.host_key, HostKeyPolicy::KnownHosts(PathBuf::from("/flows/../k/known_hosts")));
        assert_eq!((s.port, s.root.as_str(), s.connect_timeout, s.max_connections), (22, "/", Duration::from_secs(20), 2));
        assert!(matches!(&flow.endpoints["l"], EndpointSpec::Local { root } if root == Path::new("/flows/out")));
        assert_eq!(flow.source.identity, Identity::DEFAULT);
        assert!(flow.source.include.is_match("a.csv") && !flow.source.include.is_match("sub/a.csv"));
        assert_eq!(flow.sinks[0].if_exists, IfExists::Fail);
        assert_eq!(flow.retry, Retry { attempts: 3, backoff: Duration::from_secs(1), give_up_after: 10 });
        assert!(!format!("{flow:?}").contains("s3cret"));
    }

    #[test]
    fn references_globs_templates_and_paths() {
        let yaml = BASE
            .replace(
                "source: { endpoint: s, path: /in }",
                "source: { endpoint: nope, path: /in/../x, include: [\"[a\"], ready: { min_age: \"5\", done_file: \"{{nme}}\" } }",
            )
            .replace(
                "sinks: [ { endpoint: l } ]",
                "sinks: [ { endpoint: l, path: \"/a/{{date 'YYYY'}}/..\", name: \"{{#if}}\", temp_name: \"x/{{name}}\" } ]",
            );
        let p = problems(&yaml);
        let want = [
            "unknown endpoint `nope` (defined: `l`, `s`) (at /source/endpoint)",
            "`..` is not allowed in \"/in/../x\" (paths may not leave the endpoint root) (at /source/path)",
            "bad glob `[a`: unclosed character class; missing ']' (at /source/include/0)",
            "`5` is not a duration: a unit is missing (write e.g. `500ms`, `30s`, `2m`, `1h30m`, `1d`) (at /source/ready/min_age)",
        ];
        assert_eq!(p[..4], want, "{p:#?}");
        assert!(p[4].contains("nme") && p[4].ends_with("(at /source/ready/done_file)"), "{p:#?}");
        assert!(p[5].contains("gives a bad path") && p[5].ends_with("(at /sinks/0/path)"), "{p:#?}");
        assert!(p[6].starts_with("bad template \"{{#if}}\"") && p[6].ends_with("(at /sinks/0/name)"), "{p:#?}");
        assert!(p[7].contains("must give a plain file name") && p[7].ends_with("(at /sinks/0/temp_name)"), "{p:#?}");
        assert_eq!(p.len(), 8, "{p:#?}");
    }

    /// A `\` in a flow's path is a Windows habit: never a separator here (a server on Linux
    /// would take `\incoming\x.csv` for one file name, a Windows server for a path, so
    /// `out/..\..\x` would leave the root there), and never a name wharf can list: refused,
    /// with the path written with `/`. It was taken as one odd folder name.
    #[test]
    fn a_backslash_in_a_path_is_refused_with_the_path_written_with_slashes() {
        let yaml = BASE
            .replace("source: { endpoint: s, path: /in }", "source: { endpoint: s, path: '\\incoming\\orders' }")
            .replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, path: 'out/..\\..\\etc' } ]");
        let p = problems(&yaml);
        assert_eq!(
            p,
            [
                "`\\` in \"\\\\incoming\\\\orders\": paths are written with `/` (a `\\` is never a separator, and a name holding one is never listed): write \"/incoming/orders\" (at /source/path)",
                "template `out/..\\..\\etc` gives a bad path: `\\` in \"out/..\\\\..\\\\etc\": paths are written with `/` (a `\\` is never a separator, and a name holding one is never listed) (at /sinks/0/path)",
            ],
            "{p:#?}"
        );
    }

    #[test]
    fn identity_dispositions_and_retry() {
        let p = problems(&BASE.replace("path: /in }", "path: /in, identity: [sha256, path] }"));
        assert!(p[0].starts_with("`sha256` stands alone"), "{p:?}");
        let flow = run(&BASE.replace("path: /in }", "path: /in, identity: [sha256] }")).unwrap();
        assert_eq!(flow.source.identity, Identity { path: false, size: false, mtime: false, sha256: true });

        let p = problems(&format!("{BASE}after: {{ success: {{ move_to: /in/ }}, failure: {{ move_to: /in/bad }} }}\n"));
        assert_eq!(p, ["`/in` is the source folder: moved files would be picked up again (at /after/success/move_to)"]);
        let p = problems(&format!(
            "{}after: {{ failure: {{ move_to: /in/bad }} }}\n",
            BASE.replace("path: /in }", "path: /in, recursive: true }")
        ));
        assert_eq!(
            p,
            [
                "`/in/bad` is inside the source folder `/in` and `recursive` is on: moved files would be picked up again (at /after/failure/move_to)"
            ]
        );
        let flow = run(&format!("{BASE}after: {{ success: delete, failure: {{ move_to: /in/bad }} }}\n")).unwrap();
        assert_eq!(
            (flow.after_success, flow.after_failure),
            (Disposition::Delete, Disposition::MoveTo(RemotePath::parse("in/bad").unwrap()))
        );

        let p = problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: s, path: /in } ]"));
        assert_eq!(p, ["`/in` is the source folder: delivered files would be picked up again (at /sinks/0/path)"]);
        let p = problems(&format!("{}retry: {{ attempts: 0, backoff: 1x }}\n", BASE.replace("name: f", "name: -f")));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].ends_with("(at /name)") && p[1].ends_with("(at /retry/attempts)") && p[2].contains("unknown unit `x`"), "{p:?}");
        let p = problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: []"));
        assert_eq!(p, ["must not be empty: a flow needs at least one sink (at /sinks)"]);
    }
}
