//! Meaning checks on a flow whose shape is right, and the building of the typed [`Flow`].
//!
//! Owns every rule that spans fields or needs more than a type: endpoint references, globs,
//! name templates, jailed paths, durations, credentials and host-key settings, identity and
//! disposition rules. It reports *every* problem as a [`Problem`] (a YAML path and a message;
//! `load.rs` turns them into positioned diagnostics) and builds the flow only when there are
//! none. A setting that is harmless but pointless (a CSV setting at its default value on a
//! `json` step) is a *warning*, in the same form: it never stops a flow. The only outside world it touches is through [`Lookup`]: `${env:…}` / `${file:…}`
//! for credentials, and the flow file's folder for relative paths. It never connects.
//!
//! Split by section: `endpoints.rs` (servers, credentials, host keys, certificates),
//! `content.rs` (`steps:` settings), `response.rs` (`response:`), `schedule.rs` (`schedule:`,
//! `expect:`) and `notify.rs` (`notify:`) add methods to the one `Checker` defined here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::diagnostic::Problem;
use super::duration;
use super::flow::Quarantine;
use super::flow::{
    Alerts, CertTrust, Command, Disposition, EndpointSpec, Flow, FtpSpec, FtpTls, HostKeyPolicy, Identity, Ready, Retry, SftpSpec, Sink,
    Source, SshAuth,
};
use super::interpolate::{Lookup, interpolate};

/// Files in flight at once when a flow does not say (and does not stop at the first error),
/// for files of a MiB or more; runs of smaller files get [`MAX_CONCURRENCY`] (see
/// `engine::endpoints::concurrency`).
pub const DEFAULT_CONCURRENCY: usize = 16;
/// The most files in flight a flow may ask for.
pub const MAX_CONCURRENCY: u32 = 64;
use super::locate::escape;
use super::raw::{
    IdentityField, OnError, RawAfter, RawAlerts, RawCommand, RawDisposition, RawEndpoint, RawFlow, RawFtp, RawReady, RawRetry, RawSftp,
    RawSink, RawSource,
};
use super::raw_steps::{OnInvalid, RawMaxInvalid, RawQuarantine, RawStep};
use super::secret::Secret;
use crate::endpoint::RemotePath;
use crate::endpoint::path::check_name;
use crate::template::{NameTemplate, NameVars};

// The `response:` checks, a child module so they use this `Checker` and its rules as they are.
mod content;
mod endpoints;
mod notify;
mod place;
mod response;
mod schedule;

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
}

/// Checks a deserialized flow and builds it. `file` is recorded in the flow; relative paths
/// and `${file:…}` resolve against `lookup.base_dir`.
pub fn validate(raw: RawFlow, file: &Path, lookup: &Lookup<'_>) -> Checked {
    validate_sections(Sections::from(raw), file, lookup)
}

/// Like [`validate`], for a flow of which some parts may be malformed: the others are still
/// checked, and the result is an error whenever a part is missing.
pub fn validate_sections(sections: Sections, file: &Path, lookup: &Lookup<'_>) -> Checked {
    let mut c = Checker::new(lookup);
    let name = sections.name.and_then(|n| c.flow_name(&n));
    let defined: Option<Vec<String>> = sections.endpoints.as_ref().map(|e| e.keys().cloned().collect());
    let endpoints = sections.endpoints.map(|eps| {
        eps.into_iter()
            .map(|(name, ep)| {
                let spec = ep.and_then(|ep| c.endpoint(&format!("/endpoints/{}", escape(&name)), ep));
                (name, spec)
            })
            .collect::<Vec<_>>()
    });
    // Folder rules compare where endpoints are, not their names.
    c.places = endpoints.iter().flatten().filter_map(|(n, spec)| Some((n.clone(), Place::of(spec.as_ref()?)))).collect();
    let source = sections.source.and_then(|s| c.source(s, defined.as_deref()));
    if let (Some(src), Some(eps)) = (&source, &endpoints)
        && src.command.is_some()
        && eps.iter().any(|(n, spec)| n == &src.endpoint && spec.as_ref().is_some_and(|s| !matches!(s, EndpointSpec::Local { .. })))
    {
        c.problem("/source/command", "writes into the source folder, so the source endpoint must be `type: local`");
    }
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
    if let (Some((Some(Disposition::MoveTo(folder)), _)), Some(sinks), Some(src)) = (&after, &sinks, &source) {
        let delivers_there =
            |s: &Sink| static_folder(s).is_some_and(|p| c.relation(&s.endpoint, &p, &src.endpoint, folder) == Some(Relation::Same));
        if let Some(i) = sinks.iter().position(|s| s.as_ref().is_some_and(delivers_there)) {
            c.problem(
                "/after/success/move_to",
                format!("`{folder}` is where sink {i} delivers: each moved source would land beside its own delivered copy (as `NAME-1`)"),
            );
        }
    }
    let concurrency = c.concurrency(sections.concurrency, sections.on_error);
    let retry = sections.retry.and_then(|r| c.retry(r));
    let alerts = sections.alerts.and_then(|a| c.alerts(a));
    let content = match (sections.steps, sections.quarantine, sections.on_invalid, sections.max_invalid) {
        (Some(steps), Some(quarantine), Some(on_invalid), Some(max_invalid)) => {
            c.content(&steps, quarantine, on_invalid, max_invalid.as_ref(), defined.as_deref(), source.as_ref())
        }
        _ => None,
    };
    let response = sections.response.map(|r| r.map(|r| c.response(r, defined.as_deref(), sinks.as_deref(), source.as_ref())));
    let schedule = sections.schedule.map(|s| s.map(|s| c.schedule(s)));
    let expect = sections.expect.map(|e| c.expects(e));
    let notify = sections.notify.map(|rules| c.notify("/notify", rules));

    let (problems, warnings) = (c.problems, c.warnings);
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
        };
        flow.response = response.map(|d| Box::new(d.build(&flow)));
        Some(flow)
    })();
    let flow = match built {
        Some(flow) if problems.is_empty() => Ok(flow),
        _ => Err(problems),
    };
    Checked { flow, warnings }
}

/// Collects problems and warnings while checking; each check returns `None` when its part is
/// unusable.
struct Checker<'l, 'a> {
    lookup: &'l Lookup<'a>,
    problems: Vec<Problem>,
    /// Found alongside the problems; they never make a check return `None`.
    warnings: Vec<Problem>,
    /// Where each well-formed endpoint is (see `place.rs`).
    places: BTreeMap<String, Place>,
}

/// How a folder lies relative to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// The same folder (perhaps through another endpoint).
    Same,
    /// Strictly inside it.
    Inside,
}

impl<'l, 'a> Checker<'l, 'a> {
    fn new(lookup: &'l Lookup<'a>) -> Self {
        Checker { lookup, problems: Vec::new(), warnings: Vec::new(), places: BTreeMap::new() }
    }
}

impl Checker<'_, '_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn warning(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(path, message));
    }

    /// Records `result`'s error at `path` and turns it into an `Option`.
    fn ok<T>(&mut self, path: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.problem(path, e)).ok()
    }

    fn flow_name(&mut self, name: &str) -> Option<String> {
        let mut chars = name.chars();
        let valid = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
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
        let d = self.ok(path, duration::parse(text))?;
        if d.is_zero() {
            self.problem(path, format!("`{text}` is zero; give a positive duration"));
            return None;
        }
        Some(d)
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

    /// A folder wharf lists (the source's, the responses'): a path, and no pattern in it
    /// (see [`pattern_in_folder`]); `instead` says where the pattern goes.
    fn polled_folder(&mut self, path: &str, text: &str, instead: impl FnOnce(&str) -> String) -> Option<RemotePath> {
        if let Some((folder, pattern)) = pattern_in_folder(text) {
            self.problem(
                path,
                format!("`{text}` has a pattern in it, but this is the folder to poll: write `path: {folder}`{}", instead(&pattern)),
            );
            return None;
        }
        self.remote_path(path, text)
    }

    fn source(&mut self, s: RawSource, defined: Option<&[String]>) -> Option<Source> {
        self.endpoint_ref("/source/endpoint", &s.endpoint, defined);
        let path = self.polled_folder("/source/path", &s.path, |pattern| {
            let recursive = if pattern.contains('/') { ", `recursive: true`" } else { "" };
            format!(" and `include: [\"{pattern}\"]`{recursive}")
        });
        if s.include.is_empty() {
            self.problem("/source/include", "must not be empty: no file would ever be taken (leave it out to take every file)");
        }
        let every = s.include == super::raw::default_include();
        let patterns = if s.recursive && every { vec!["**".to_string()] } else { s.include.clone() };
        if s.recursive && !every && !s.include.iter().any(|p| p.contains('/') || p == "**") {
            self.problem(
                "/source/include",
                "with `recursive: true` these patterns only match files directly in `path` (`*` stops at `/`): write e.g. `**/*.csv` for files at every level",
            );
        }
        let include = self.globs("/source/include", &patterns);
        let hidden: Vec<String> = s.include.iter().filter(|p| super::flow::is_hidden(p)).cloned().collect();
        // Only once `include` compiled: a bad pattern is reported once, at its own index.
        let include_hidden = include.as_ref().and_then(|_| self.globs("/source/include", &hidden));
        let exclude = self.globs("/source/exclude", &s.exclude);
        let ready = self.ready(s.ready);
        let identity = self.identity(&s.identity);
        if s.max_depth == 0 {
            self.problem("/source/max_depth", "must be at least 1");
        }
        let command = s.command.map(|c| self.command(c));
        Some(Source {
            endpoint: s.endpoint,
            path: path?,
            include: include?,
            include_hidden: include_hidden?,
            exclude: exclude?,
            recursive: s.recursive,
            max_depth: s.max_depth,
            ready: ready?,
            identity: identity?,
            command: checked(command)?,
        })
    }

    fn command(&mut self, c: RawCommand) -> Option<Command> {
        let at = "/source/command";
        let Some((program, args)) = c.run.split_first() else {
            self.problem(format!("{at}/run"), "must name a program");
            return None;
        };
        if program.is_empty() {
            self.problem(format!("{at}/run/0"), "must name a program");
        }
        let timeout = self.ok(&format!("{at}/timeout"), duration::parse(&c.timeout));
        let name = self.name_template(&format!("{at}/name"), &c.name);
        let program = if program.contains('/') { self.lookup.resolve_path(program) } else { PathBuf::from(program) };
        Some(Command {
            program,
            args: args.to_vec(),
            dir: self.lookup.resolve_path("."),
            name: name?,
            timeout: timeout?,
            keep_empty: c.keep_empty,
        })
    }

    fn globs(&mut self, at: &str, patterns: &[String]) -> Option<GlobSet> {
        let mut set = GlobSetBuilder::new();
        let mut ok = true;
        for (i, p) in patterns.iter().enumerate() {
            match GlobBuilder::new(p).literal_separator(true).build() {
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

    fn ready(&mut self, r: RawReady) -> Option<Ready> {
        let min_age = r.min_age.map(|t| self.ok("/source/ready/min_age", duration::parse(&t)));
        let stable_for = r.stable_for.map(|t| self.ok("/source/ready/stable_for", duration::parse(&t)));
        let done_file = r.done_file.map(|t| {
            let at = "/source/ready/done_file";
            self.name_template(at, &t).and_then(|t| self.ok(at, t.per_file()).map(|()| t))
        });
        Some(Ready { min_age: checked(min_age)?, stable_for: checked(stable_for)?, done_file: checked(done_file)? })
    }

    fn identity(&mut self, fields: &[IdentityField]) -> Option<Identity> {
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
            check_name(&sample).map_err(|e| format!("template `{text}` must give a plain file name: for a file named sample.csv, {e}")),
        )?;
        Some(t)
    }

    fn sink(&mut self, at: &str, s: RawSink, defined: Option<&[String]>, source: Option<&Source>) -> Option<Sink> {
        self.endpoint_ref(&format!("{at}/endpoint"), &s.endpoint, defined);
        let path = self.template(&format!("{at}/path"), &s.path).and_then(|(t, sample)| {
            let rendered = self.ok(
                &format!("{at}/path"),
                RemotePath::parse(&sample).map_err(|e| format!("template `{}` gives a bad path: {e}", s.path)),
            )?;
            if let Some(src) = source.filter(|_| !s.path.contains("{{")) {
                self.not_rescanned(&format!("{at}/path"), &s.endpoint, &rendered, src, "delivered files");
            }
            Some(t)
        });
        let name = self.name_template(&format!("{at}/name"), &s.name);
        let temp_name = if s.direct {
            if s.temp_name != super::raw::default_temp_name() {
                self.problem(format!("{at}/temp_name"), "`direct: true` writes straight under the final name, without a temporary name");
            }
            Some(None)
        } else {
            let spaceless = |t: &str| t.split_whitespace().collect::<String>();
            if spaceless(&s.temp_name) == spaceless(&s.name) {
                self.problem(
                    format!("{at}/temp_name"),
                    format!(
                        "`{}` is the final name too: a file is written under its temporary name and renamed to the final one once verified, so the two must differ (the default is `.{{{{name}}}}.part`; `direct: true` writes straight under the final name, for servers that refuse renames)",
                        s.temp_name
                    ),
                );
            }
            self.name_template(&format!("{at}/temp_name"), &s.temp_name).map(Some)
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

    /// How `folder` on endpoint `ep` lies relative to `base` on endpoint `base_ep`, by where
    /// the endpoints are (see `place.rs`); by name when an endpoint is malformed.
    fn relation(&self, ep: &str, folder: &RemotePath, base_ep: &str, base: &RemotePath) -> Option<Relation> {
        let (a, b) = match (self.places.get(ep), self.places.get(base_ep)) {
            (Some(a), Some(b)) => (a.locate(folder), b.locate(base)),
            _ if ep == base_ep => {
                return if folder == base { Some(Relation::Same) } else { folder.strip_prefix(base).map(|_| Relation::Inside) };
            }
            _ => return None,
        };
        if a == b { Some(Relation::Same) } else { a.inside(&b).then_some(Relation::Inside) }
    }

    /// Two sinks write into one folder: the same fixed folder, or the same path template
    /// under the same endpoint root.
    fn same_sink_folder(&self, a: &Sink, b: &Sink) -> bool {
        match (static_folder(a), static_folder(b)) {
            (Some(fa), Some(fb)) => self.relation(&a.endpoint, &fa, &b.endpoint, &fb) == Some(Relation::Same),
            _ => {
                a.path.source() == b.path.source()
                    && self.relation(&a.endpoint, &RemotePath::root(), &b.endpoint, &RemotePath::root()) == Some(Relation::Same)
            }
        }
    }

    /// Refuses a folder (on endpoint `ep`) that the source would list again: the source
    /// folder itself, on any endpoint that reaches it, or one inside it when `recursive` is on.
    fn not_rescanned(&mut self, path: &str, ep: &str, folder: &RemotePath, source: &Source, what: &str) {
        let Some(relation) = self.relation(ep, folder, &source.endpoint, &source.path) else { return };
        // Named with their endpoints when they differ: the names alone do not show it.
        let (on, source_on) = if ep == source.endpoint {
            (String::new(), String::new())
        } else {
            (format!(" on endpoint `{ep}`"), format!(" on endpoint `{}`", source.endpoint))
        };
        match relation {
            Relation::Same if on.is_empty() => {
                self.problem(path, format!("`{folder}` is the source folder: {what} would be picked up again"));
            }
            Relation::Same => self.problem(
                path,
                format!(
                    "`{folder}`{on} is the source folder (`{}`{source_on}: the same place): {what} would be picked up again",
                    source.path
                ),
            ),
            Relation::Inside if source.recursive => self.problem(
                path,
                format!(
                    "`{folder}`{on} is inside the source folder `{}`{source_on} and `recursive` is on: {what} would be picked up again",
                    source.path
                ),
            ),
            Relation::Inside => {}
        }
    }

    fn disposition(&mut self, at: &str, d: RawDisposition, source: Option<&Source>) -> Option<Disposition> {
        Some(match d {
            RawDisposition::Keep => Disposition::Keep,
            RawDisposition::Delete => Disposition::Delete,
            RawDisposition::MoveTo(folder) => {
                let path = format!("{at}/move_to");
                let folder = self.remote_path(&path, &folder)?;
                if let Some(src) = source {
                    self.not_rescanned(&path, &src.endpoint, &folder, src, "moved files");
                }
                Disposition::MoveTo(folder)
            }
        })
    }

    /// Content steps, their invalid-record policy and the quarantine location.
    fn content(
        &mut self,
        steps: &[Option<RawStep>],
        quarantine: Option<RawQuarantine>,
        on_invalid: OnInvalid,
        max_invalid: Option<&RawMaxInvalid>,
        defined: Option<&[String]>,
        source: Option<&Source>,
    ) -> Option<(Option<crate::steps::Steps>, Option<Quarantine>)> {
        let steps: Vec<Option<&RawStep>> = steps.iter().map(Option::as_ref).collect();
        for (i, step) in steps.iter().enumerate() {
            if let Some(step) = step {
                self.csv_settings(&format!("/steps/{i}"), step);
            }
        }
        let built = match crate::steps::build_partial(&steps, on_invalid, max_invalid, self.lookup.base_dir) {
            Ok(s) => Some(s),
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

    fn alerts(&mut self, a: RawAlerts) -> Option<Alerts> {
        if a.unreachable_after == 0 {
            self.problem("/alerts/unreachable_after", "must be at least 1 (runs in a row)");
            return None;
        }
        Some(Alerts { unreachable_after: a.unreachable_after })
    }

    /// Files in flight: as set (1–64), or 1 with `on_error: stop` (files in order); `None`
    /// inside when the flow leaves it to each run. The outer `None`: a problem was reported.
    fn concurrency(&mut self, set: Option<Option<u32>>, on_error: Option<OnError>) -> Option<Option<usize>> {
        let stop = on_error == Some(OnError::Stop);
        match set? {
            None => Some(stop.then_some(1)),
            Some(n) if !(1..=MAX_CONCURRENCY).contains(&n) => {
                self.problem("/concurrency", format!("must be between 1 and {MAX_CONCURRENCY} (files in flight at once), not {n}"));
                None
            }
            Some(n) if n > 1 && stop => {
                self.problem("/concurrency", "must be 1 with `on_error: stop`, which takes the files one after the other");
                None
            }
            Some(n) => Some(Some(n as usize)),
        }
    }

    fn retry(&mut self, r: RawRetry) -> Option<Retry> {
        if r.attempts == 0 {
            self.problem("/retry/attempts", "must be at least 1 (the first attempt counts)");
        }
        let backoff = self.ok("/retry/backoff", duration::parse(&r.backoff))?;
        (r.attempts > 0).then_some(Retry { attempts: r.attempts, backoff, give_up_after: r.give_up_after })
    }
}

/// An optional setting after checking: `None` when it was set but invalid, `Some(None)` when
/// it was not set.
fn checked<T>(setting: Option<Option<T>>) -> Option<Option<T>> {
    setting.map_or(Some(None), |valid| valid.map(Some))
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::IfExists;
    use std::env::VarError;
    use std::path::PathBuf;

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

    const BASE: &str = "name: f
endpoints:
  s: { type: sftp, host: h, user: u, auth: { password: \"${env:PASS}\" }, host_key: { known_hosts: ../k/known_hosts } }
  l: { type: local, root: ./out }
source: { endpoint: s, path: /in }
sinks: [ { endpoint: l } ]
";

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
    fn sftp_max_connections() {
        let with = |n: &str| BASE.replace("known_hosts } }", &format!("known_hosts }}, max_connections: {n} }}"));
        let EndpointSpec::Sftp(s) = &run(&with("3")).unwrap().endpoints["s"] else { panic!() };
        assert_eq!(s.max_connections, 3);
        assert_eq!(problems(&with("0")), ["must be at least 1 (at /endpoints/s/max_connections)"]);
    }

    #[test]
    fn concurrency_is_left_to_the_run_unless_set_and_is_one_for_flows_that_stop_at_an_error() {
        assert_eq!(run(BASE).unwrap().concurrency, None);
        assert_eq!(run(&format!("{BASE}on_error: stop\n")).unwrap().concurrency, Some(1));
        assert_eq!(run(&format!("{BASE}concurrency: 64\n")).unwrap().concurrency, Some(64));
        assert_eq!(run(&format!("{BASE}on_error: stop\nconcurrency: 1\n")).unwrap().concurrency, Some(1));
        assert_eq!(
            problems(&format!("{BASE}on_error: stop\nconcurrency: 2\n")),
            ["must be 1 with `on_error: stop`, which takes the files one after the other (at /concurrency)"]
        );
        assert_eq!(
            problems(&format!("{BASE}concurrency: 0\n")),
            ["must be between 1 and 64 (files in flight at once), not 0 (at /concurrency)"]
        );
    }

    #[test]
    fn credentials_and_host_keys() {
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: \"${env:NOPE}\", private_key: k"));
        assert_eq!(p, ["set either `password` or `private_key`, not both (at /endpoints/s/auth)"]);
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: \"${env:NOPE}\""));
        assert_eq!(p, ["environment variable `NOPE` is not set (at /endpoints/s/auth/password)"]);
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "passphrase: x"));
        assert_eq!(p, ["set `password` or `private_key` (at /endpoints/s/auth)"]);
        let p = problems(&BASE.replace("password: \"${env:PASS}\"", "password: x, passphrase: y"));
        assert_eq!(p, ["`passphrase` unlocks a `private_key`; with `password` login it is not used (at /endpoints/s/auth/passphrase)"]);
        let flow = run(&BASE.replace("password: \"${env:PASS}\"", "private_key: keys/id, passphrase: \"${env:PASS}\"")).unwrap();
        let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
        assert!(
            matches!(&s.auth, SshAuth::Key { path, passphrase: Some(p) } if path == Path::new("/flows/keys/id") && p.expose() == "s3cret")
        );

        let p = problems(&BASE.replace("known_hosts: ../k/known_hosts", "known_hosts: k, fingerprint: x"));
        assert_eq!(p, ["set either `known_hosts` or `fingerprint`, not both (at /endpoints/s/host_key)"]);
        let p = problems(&BASE.replace("known_hosts: ../k/known_hosts", "fingerprint: \"SHA256:abc\""));
        assert!(
            p[0].starts_with("`SHA256:abc` is not a key fingerprint") && p[0].ends_with("(at /endpoints/s/host_key/fingerprint)"),
            "{p:?}"
        );
        let fp = "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s";
        let flow = run(&BASE.replace("known_hosts: ../k/known_hosts", &format!("fingerprint: \"{fp}\""))).unwrap();
        let EndpointSpec::Sftp(s) = &flow.endpoints["s"] else { panic!() };
        assert_eq!(s.host_key, HostKeyPolicy::Fingerprint(fp.into()));
        let p = problems(&BASE.replace("host: h", "host: \"\", root: srv"));
        assert_eq!(
            p,
            [
                "must not be empty (at /endpoints/s/host)",
                "`srv` must be an absolute path on the server (start with `/`) (at /endpoints/s/root)"
            ]
        );
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

    #[test]
    fn two_sinks_delivering_to_one_place_and_a_move_into_a_sink_folder_are_refused() {
        let p =
            problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l }, { endpoint: l, path: /b }, { endpoint: l } ]"));
        assert_eq!(
            p,
            ["delivers to the same place as sink 0: one copy would find the other there (give it another `path` or `name`) (at /sinks/2)"]
        );
        let local = BASE.replace("source: { endpoint: s, path: /in }", "source: { endpoint: l, path: /in }");
        let p = problems(&local.replace(
            "sinks: [ { endpoint: l } ]",
            "sinks: [ { endpoint: l, path: /archive } ]\nafter: { success: { move_to: /archive } }",
        ));
        assert_eq!(
            p,
            [
                "`/archive` is where sink 0 delivers: each moved source would land beside its own delivered copy (as `NAME-1`) (at /after/success/move_to)"
            ]
        );
        assert!(
            run(&local.replace(
                "sinks: [ { endpoint: l } ]",
                "sinks: [ { endpoint: l, path: /archive } ]\nafter: { success: { move_to: /done } }"
            ))
            .is_ok()
        );
    }

    #[test]
    fn a_folder_reached_through_another_endpoint_name_is_still_the_source_folder() {
        let flow = |endpoints: &str, rest: &str| format!("name: f\nendpoints:\n{endpoints}{rest}");
        // Local: one root inside the other, `~`, `..`.
        let locals = "  a: { type: local, root: ./data }\n  b: { type: local, root: ./data/in }\n  h: { type: local, root: ~/x }\n  k: { type: local, root: /home/u/x/../x/in }\n";
        let p = problems(&flow(locals, "source: { endpoint: a, path: /in }\nsinks: [ { endpoint: b, path: / } ]\n"));
        assert_eq!(
            p,
            [
                "`/` on endpoint `b` is the source folder (`/in` on endpoint `a`: the same place): delivered files would be picked up again (at /sinks/0/path)"
            ]
        );
        let p = problems(&flow(locals, "source: { endpoint: h, path: /in }\nsinks: [ { endpoint: k } ]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`/` on endpoint `k` is the source folder (`/in` on endpoint `h`"), "{p:?}");
        let p = problems(&flow(locals, "source: { endpoint: a, path: /, recursive: true }\nsinks: [ { endpoint: b, path: /out } ]\n"));
        assert_eq!(
            p,
            [
                "`/out` on endpoint `b` is inside the source folder `/` on endpoint `a` and `recursive` is on: delivered files would be picked up again (at /sinks/0/path)"
            ]
        );
        assert!(run(&flow(locals, "source: { endpoint: a, path: /in }\nsinks: [ { endpoint: b, path: /out } ]\n")).is_ok());

        // Servers: the same protocol, host (any case), port and user.
        let sftp = |name: &str, host: &str, user: &str| {
            format!("  {name}: {{ type: sftp, host: {host}, user: {user}, auth: {{ password: p }}, host_key: {{ known_hosts: k }} }}\n")
        };
        let servers =
            format!("{}{}{}", sftp("s", "sftp.example.com", "u"), sftp("t", "SFTP.example.com", "u"), sftp("v", "sftp.example.com", "v"));
        let p = problems(&flow(&servers, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: t, path: /in } ]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`/in` on endpoint `t` is the source folder") && p[0].ends_with("(at /sinks/0/path)"), "{p:?}");
        assert!(
            run(&flow(&servers, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: v, path: /in } ]\n")).is_ok(),
            "another user"
        );
        // The loopback address, however it is spelt.
        let loopback = format!("{}{}", sftp("s", "localhost", "u"), sftp("t", "\"[::1]\"", "u"));
        let p = problems(&flow(&loopback, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: t, path: /in } ]\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("`/in` on endpoint `t` is the source folder"), "{p:?}");
        let loopback = format!("{}{}", sftp("s", "127.0.0.1", "u"), sftp("t", "LOCALHOST", "u"));
        assert_eq!(problems(&flow(&loopback, "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: t, path: /in } ]\n")).len(), 1);

        // Quarantine, and two sinks that are one folder.
        let both = format!("{locals}{servers}");
        let p = problems(&flow(
            &both,
            "source: { endpoint: s, path: /in }\nsinks: [ { endpoint: a, path: /in }, { endpoint: b } ]\nsteps: [ { parse: { format: csv } } ]\nquarantine: { endpoint: t, path: /in }\n",
        ));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("delivers to the same place as sink 0") && p[0].ends_with("(at /sinks/1)"), "{p:?}");
        assert!(p[1].contains("`/in` on endpoint `t` is the source folder") && p[1].ends_with("(at /quarantine/path)"), "{p:?}");

        // A move into the folder another name of the sink's endpoint delivers to.
        let p = problems(&flow(
            locals,
            "source: { endpoint: a, path: /in }\nsinks: [ { endpoint: b, path: /archive } ]\nafter: { success: { move_to: /in/archive } }\n",
        ));
        assert_eq!(
            p,
            [
                "`/in/archive` is where sink 0 delivers: each moved source would land beside its own delivered copy (as `NAME-1`) (at /after/success/move_to)"
            ]
        );
    }

    #[test]
    fn a_temp_name_that_is_the_final_name_is_refused() {
        let p = problems(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, temp_name: \"{{ name }}\" } ]"));
        assert_eq!(
            p,
            [
                "`{{ name }}` is the final name too: a file is written under its temporary name and renamed to the final one once verified, so the two must differ (the default is `.{{name}}.part`; `direct: true` writes straight under the final name, for servers that refuse renames) (at /sinks/0/temp_name)"
            ]
        );
        assert!(
            run(&BASE.replace("sinks: [ { endpoint: l } ]", "sinks: [ { endpoint: l, name: \"{{stem}}.txt\", temp_name: \"{{name}}\" } ]"))
                .is_ok()
        );
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

    #[test]
    fn ftp_endpoints() {
        let flow = run(&ftp("password: \"${env:PASS}\"")).unwrap();
        let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
        assert_eq!((f.port, f.tls, &f.trust, f.passive, f.root.as_deref()), (21, FtpTls::Explicit, &CertTrust::SystemRoots, true, None));
        assert_eq!((f.max_connections, f.operation_timeout), (4, Duration::from_secs(60)));
        assert_eq!(f.password.expose(), "s3cret");
        assert!(!format!("{flow:?}").contains("s3cret"));

        let fp = "SHA256:0a:1B:2c:3D:4e:5F:60:71:82:93:a4:b5:c6:d7:e8:f9:0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9";
        let flow = run(&ftp(&format!("password: x, tls: implicit, fingerprint: \"{fp}\", root: /srv/"))).unwrap();
        let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
        assert_eq!((f.port, f.root.as_deref()), (990, Some("/srv")));
        assert!(matches!(f.trust, CertTrust::Fingerprint(d) if d[0] == 0x0a && d[31] == 0xf9));
        let flow = run(&ftp("password: x, ca_file: certs/ca.pem, port: 2121, passive: false")).unwrap();
        let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
        assert_eq!((f.port, &f.trust, f.passive), (2121, &CertTrust::CaFile(PathBuf::from("/flows/certs/ca.pem")), false));

        let p = problems(&ftp("password: x, ca_file: c.pem, fingerprint: \"SHA256:00\""));
        assert_eq!(p, ["set either `ca_file` or `fingerprint`, not both (at /endpoints/l)"]);
        let p = problems(&ftp("password: x, fingerprint: \"SHA256:abc\""));
        assert!(
            p[0].starts_with("`SHA256:abc` is not a certificate fingerprint") && p[0].ends_with("(at /endpoints/l/fingerprint)"),
            "{p:?}"
        );
        let p = problems(&ftp("password: x, tls: none, ca_file: c.pem, max_connections: 0, root: rel"));
        assert_eq!(
            p,
            [
                "`ca_file` has no effect with `tls: none` (plain FTP has no certificate) (at /endpoints/l/ca_file)",
                "`rel` must be an absolute path on the server (start with `/`) (at /endpoints/l/root)",
                "must be at least 1 (at /endpoints/l/max_connections)",
            ]
        );
        let p = problems(&ftp("password: \"${env:NOPE}\""));
        assert_eq!(p, ["environment variable `NOPE` is not set (at /endpoints/l/password)"]);
    }

    /// [`BASE`] with endpoint `l` an FTP server with `fields`.
    fn ftp(fields: &str) -> String {
        BASE.replace("l: { type: local, root: ./out }", &format!("l: {{ type: ftp, host: h, user: u, {fields} }}"))
    }

    #[test]
    fn tls_max_version_is_taken_quoted_or_not() {
        use crate::config::flow::TlsVersion;
        let version = |extra: &str| {
            let flow = run(&ftp(&format!("password: x{extra}"))).unwrap();
            let EndpointSpec::Ftp(f) = &flow.endpoints["l"] else { panic!() };
            f.tls_max_version
        };
        assert_eq!(version(""), TlsVersion::V1_3);
        assert_eq!(version(", tls_max_version: 1.2"), TlsVersion::V1_2);
        assert_eq!(version(", tls_max_version: \"1.2\""), TlsVersion::V1_2);
        assert_eq!(version(", tls_max_version: 1.3"), TlsVersion::V1_3);
        let yaml = ftp("password: x, tls_max_version: 1.1").replace("${env:PASS}", "p");
        let err = crate::config::load::load_flow_str(&yaml, Path::new("/flows/f.yaml")).unwrap_err();
        let err: Vec<String> = err.iter().map(|d| d.to_string()).collect();
        assert_eq!(err, ["/flows/f.yaml:4:67: unknown value `1.1`, expected `1.2` or `1.3` (at /endpoints/l/tls_max_version)"]);
        let p = problems(&ftp("password: x, tls: none, tls_max_version: 1.2"));
        assert_eq!(p, ["`tls_max_version` has no effect with `tls: none` (plain FTP has no TLS) (at /endpoints/l/tls_max_version)"]);
    }
}
