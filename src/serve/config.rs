//! The daemon's own settings (`wharf serve --config serve.yaml`): where it listens, how many
//! runs and connections it allows at once, how it retries flows that cannot reach their
//! servers, how long a shutdown may take, and the notifications that apply to every flow.
//!
//! Shape only plus the few checks that need no flow; the stages and what a broken one hides
//! are a flow file's (`config::load`), and notification rules are checked by the same code as
//! a flow's `notify:` (`config::validate`), so both report problems alike.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::diagnostic::{Diagnostic, Problem};
use crate::config::raw_notify::RawNotifyRule;
use crate::config::schema::{Compiled, Kind};
use crate::config::{duration, load, locate};

/// The shortest `rescan`.
const MIN_RESCAN: Duration = Duration::from_millis(100);
/// The shortest `retry.backoff`.
const MIN_BACKOFF: Duration = Duration::from_secs(1);
/// The longest `shutdown_grace`, `rescan`, `retry.backoff` and `retry.max`: past these a
/// value is a typo, and a huge one overflowed the clock arithmetic (a panic at the stop).
const MAX_GRACE: Duration = Duration::from_secs(24 * 3600);
const MAX_RESCAN: Duration = Duration::from_secs(3600);
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
const MAX_RETRY_MAX: Duration = Duration::from_secs(7 * 24 * 3600);

/// `serve.yaml`: settings of `wharf serve` (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "wharf serve settings")]
pub struct RawServeConfig {
    /// Also serve health, metrics and status over HTTP on this address (for Prometheus), e.g.
    /// `127.0.0.1:9464`. The CLI always uses the Unix socket `STATE/wharf.sock`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Allow `listen` on an address other than loopback. The interface has no authentication:
    /// only do this behind a firewall or a reverse proxy that adds it.
    #[serde(default)]
    pub allow_remote: bool,
    /// Limits on concurrent work.
    #[serde(default)]
    pub limits: RawLimits,
    /// Retries of a run that could not reach an endpoint.
    #[serde(default)]
    pub retry: RawServeRetry,
    /// How long in-flight files may take to finish after SIGTERM / Ctrl-C before the runs are
    /// cut off (cut-off files resume at the next start). Default `30s`; at most `1d`.
    #[serde(default = "default_grace")]
    pub shutdown_grace: String,
    /// How often the flows folder is checked for changed flow files. Default `2s`; from `100ms`
    /// to `1h`.
    #[serde(default = "default_rescan")]
    pub rescan: String,
    /// Notifications for every flow, in addition to each flow's own `notify:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<RawNotifyRule>,
}

/// Limits on concurrent work.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Runs at once, over all flows. Default 4.
    #[serde(default = "default_runs")]
    pub runs: usize,
    /// Runs at once that connect to one server (`host:port`). Each run holds one connection
    /// per endpoint, so this bounds the connections a partner sees from wharf. Default 2.
    #[serde(default = "default_per_server")]
    pub per_server: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits { runs: default_runs(), per_server: default_per_server() }
    }
}

/// Retries of a run that could not reach an endpoint: exponential backoff with jitter from
/// `backoff` up to `max`, never later than the flow's next scheduled run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawServeRetry {
    /// First delay. Default `30s`; from `1s` to `1d`.
    #[serde(default = "default_backoff")]
    pub backoff: String,
    /// Longest delay. Default `15m`; at most `7d`.
    #[serde(default = "default_max")]
    pub max: String,
}

impl Default for RawServeRetry {
    fn default() -> Self {
        RawServeRetry { backoff: default_backoff(), max: default_max() }
    }
}

fn default_grace() -> String {
    "30s".into()
}
fn default_rescan() -> String {
    "2s".into()
}
fn default_runs() -> usize {
    4
}
fn default_per_server() -> usize {
    2
}
fn default_backoff() -> String {
    "30s".into()
}
fn default_max() -> String {
    "15m".into()
}

/// The daemon's checked settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: Option<SocketAddr>,
    pub allow_remote: bool,
    pub max_runs: usize,
    pub per_server: usize,
    pub retry_backoff: Duration,
    pub retry_max: Duration,
    pub shutdown_grace: Duration,
    pub rescan: Duration,
    pub notify: Vec<crate::notify::Rule>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: None,
            allow_remote: false,
            max_runs: default_runs(),
            per_server: default_per_server(),
            retry_backoff: Duration::from_secs(30),
            retry_max: Duration::from_secs(15 * 60),
            shutdown_grace: Duration::from_secs(30),
            rescan: Duration::from_secs(2),
            notify: Vec::new(),
        }
    }
}

/// The JSON Schema of `serve.yaml` (`schemas/serve.schema.json`, for editors).
pub fn serve_schema() -> serde_json::Value {
    crate::config::schema::schema_for::<RawServeConfig>()
}

/// The `serve.yaml` schema, compiled once.
fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| Compiled::new(serve_schema()))
}

/// Reads and checks `serve.yaml`; every problem is reported, each with file:line:col, as for
/// a flow (`config::load`): the shape first (unknown fields, wrong types, duplicate keys),
/// then the meaning of every part whose shape is right — a wrong type in one setting does not
/// hide a `listen` that is not loopback, or a `rescan` out of range, in another.
pub fn load(path: &Path) -> Result<ServeConfig, Vec<Diagnostic>> {
    let diag = |line, col, message: String, yaml_path: &str| Diagnostic {
        file: path.to_path_buf(),
        line,
        col,
        message,
        yaml_path: yaml_path.into(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| vec![diag(1, 1, format!("cannot read serve config: {e}"), "/")])?;
    let (parsed, parse_problems) = locate::parse(&text);
    // Duplicate keys too (the first occurrence would be used): reported as in a flow.
    let mut out: Vec<Diagnostic> = parse_problems.into_iter().map(|l| Diagnostic::of_parse(path, l)).collect();
    let Some(parsed) = parsed else { return Err(out) };
    // The shape, every problem at its line (serde stops at the first, without one).
    let structural = compiled().check(&parsed.value);
    out.extend(structural.iter().map(|s| {
        let path = &s.problem.yaml_path;
        let pos = if s.at_key { parsed.positions.key(path) } else { parsed.positions.node(path) };
        diag(pos.line, pos.col, s.problem.message.clone(), &s.shown_path())
    }));
    // What is left once the settings the schema refused are dropped: every setting has a
    // default, so the rest is checked for its meaning. The `notify:` rules are decoded one by
    // one, as a flow's are, so a broken rule does not hide the others' problems.
    let mut value = parsed.value;
    let broken: Vec<&str> = structural.iter().filter(|s| s.kind != Kind::MissingField).map(|s| s.problem.yaml_path.as_str()).collect();
    let mut problems: Vec<Problem> = Vec::new();
    let rules = match value.as_object_mut().map(|m| m.remove("notify")) {
        Some(Some(list)) => {
            let map = serde_json::Map::from_iter([("notify".to_string(), list)]);
            load::decode_list::<RawNotifyRule>(&map, "notify", &structural, &mut problems)
        }
        _ => Some(Vec::new()),
    };
    for at in broken.iter().filter(|at| !load::within(at, "/notify")) {
        load::remove(&mut value, at);
    }
    let raw: Option<RawServeConfig> = load::decode(value, "/", &structural, &mut problems);
    let checked = raw.and_then(|raw| {
        let mut found = Vec::new();
        let checked = check(&raw, &mut found);
        problems.extend(found.into_iter().map(|(at, message)| Problem::new(at, message)));
        checked
    });
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let env = |name: &str| std::env::var(name);
    let lookup = crate::config::interpolate::Lookup { base_dir: dir, env: &env };
    let rules = rules.and_then(|rules| match crate::config::validate::validate_notify(rules, path, "/notify", &lookup) {
        Ok(r) => Some(r),
        Err(ps) => {
            problems.extend(ps);
            None
        }
    });
    // A value the shape check refused is not told about twice (a default put in its place
    // may disagree with another setting: `retry.max` dropped, `backoff` longer than its default).
    out.extend(problems.into_iter().filter(|p| !broken.iter().any(|b| load::within(&p.yaml_path, b))).map(|p| {
        let pos = parsed.positions.node(&p.yaml_path);
        diag(pos.line, pos.col, p.message, &p.yaml_path)
    }));
    match (checked, rules) {
        (Some(mut cfg), Some(rules)) if out.is_empty() => {
            cfg.notify = rules;
            Ok(cfg)
        }
        _ => {
            out.sort_by_key(|d| (d.line, d.col));
            out.dedup();
            Err(out)
        }
    }
}

/// The `serve.yaml` the daemon started with, for what a reload (SIGHUP, `systemctl reload`)
/// says of it. Its settings are read at the start only (the address listened on, the limits
/// the runs going hold permits of, the notifier's rules): a reload loads the flows again, not
/// them. An operator who edited the file and reloaded was told nothing, and found out at the
/// next restart — which an invalid file then made fail.
pub struct Started {
    path: std::path::PathBuf,
    /// The file's bytes at the start (`None`: they could not be read again after loading).
    text: Option<Vec<u8>>,
}

impl Started {
    /// Remembers `path` as it is now (just loaded).
    pub fn new(path: &Path) -> Started {
        Started { path: path.to_path_buf(), text: std::fs::read(path).ok() }
    }

    /// At a reload: logs, when the file differs from the one the daemon started with, that
    /// its settings are not applied until a restart, and every problem of the file now, as a
    /// restart would refuse it. Says nothing while it is unchanged.
    pub fn reloaded(&self) {
        let file = self.path.display().to_string();
        let now = std::fs::read(&self.path);
        if now.as_ref().ok() == self.text.as_ref() {
            return;
        }
        if let Err(e) = &now {
            return tracing::error!(
                %file,
                error = %e,
                "The daemon's settings file cannot be read; the daemon keeps the settings it started with, but a restart would fail (the flows are loaded again)."
            );
        }
        match load(&self.path) {
            Ok(_) => tracing::warn!(
                %file,
                "The daemon's settings file changed; its settings are read at the start only: restart the daemon to apply them (the flows are loaded again; it keeps the settings it started with)."
            ),
            Err(diags) => {
                for d in &diags {
                    tracing::error!(%file, line = d.line, col = d.col, at = %d.yaml_path, problem = %d.message, "Settings file problem.");
                }
                tracing::error!(
                    %file,
                    problems = diags.len(),
                    "The daemon's settings file changed and is invalid: a restart would refuse to start; the daemon keeps the settings it started with (the flows are loaded again). `wharf validate` it."
                );
            }
        }
    }
}

/// Checks the parts of a serve config that need no other file (the `notify:` rules are
/// checked by the caller, which has the flow-checking machinery).
pub fn check(raw: &RawServeConfig, problems: &mut Vec<(String, String)>) -> Option<ServeConfig> {
    let mut dur = |at: &str, s: &str| match duration::parse(s) {
        Ok(d) => Some(d),
        Err(e) => {
            problems.push((at.into(), e));
            None
        }
    };
    let grace = dur("/shutdown_grace", &raw.shutdown_grace);
    let rescan = dur("/rescan", &raw.rescan);
    let backoff = dur("/retry/backoff", &raw.retry.backoff);
    let max = dur("/retry/max", &raw.retry.max);
    let listen = match raw.listen.as_deref().map(str::parse::<SocketAddr>) {
        None => None,
        Some(Ok(a)) if a.ip().is_loopback() || raw.allow_remote => Some(Some(a)),
        Some(Ok(a)) => {
            problems.push((
                "/listen".into(),
                format!(
                    "{a} is not a loopback address; the control interface has no authentication (set `allow_remote: true` to allow it)"
                ),
            ));
            None
        }
        Some(Err(e)) => {
            problems.push(("/listen".into(), format!("not an address like 127.0.0.1:9464: {e}")));
            None
        }
    };
    for (at, v) in [("/limits/runs", raw.limits.runs), ("/limits/per_server", raw.limits.per_server)] {
        if v == 0 {
            problems.push((at.into(), "must be at least 1".into()));
        }
    }
    // Zero (or near it) made a busy loop: `rescan: 0s` read the flows folder without pause,
    // `retry.backoff: 0s` retried an unreachable server some 70 times a second.
    for (at, value, least, what) in [
        ("/rescan", rescan, MIN_RESCAN, "the flows folder would be read without pause"),
        ("/retry/backoff", backoff, MIN_BACKOFF, "a server that cannot be reached would be tried again without pause"),
    ] {
        if value.is_some_and(|v| v < least) {
            problems.push((at.into(), format!("must be at least {}: {what}", crate::config::duration::format(least))));
        }
    }
    let retry_late = "a server back up would wait that long to be tried again";
    for (at, value, most, what) in [
        ("/shutdown_grace", grace, MAX_GRACE, "a stop would wait longer than any service manager does"),
        ("/rescan", rescan, MAX_RESCAN, "a changed flow file would go unseen that long"),
        ("/retry/backoff", backoff, MAX_BACKOFF, retry_late),
        ("/retry/max", max, MAX_RETRY_MAX, retry_late),
    ] {
        if value.is_some_and(|v| v > most) {
            problems.push((at.into(), format!("must be at most {}: {what}", crate::config::duration::format(most))));
        }
    }
    if let (Some(b), Some(m)) = (backoff, max)
        && b > m
    {
        problems.push(("/retry/max".into(), format!("is shorter than retry.backoff ({})", crate::config::duration::format(b))));
    }
    Some(ServeConfig {
        listen: listen.unwrap_or(None),
        allow_remote: raw.allow_remote,
        max_runs: raw.limits.runs.max(1),
        per_server: raw.limits.per_server.max(1),
        retry_backoff: backoff?,
        retry_max: max?,
        shutdown_grace: grace?,
        rescan: rescan?,
        notify: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reload says nothing of an unchanged `serve.yaml`; of a changed one, that a restart
    /// applies it; of an invalid one, each problem and that a restart would fail (before:
    /// nothing, so a reload seemed to have applied it, and the next restart failed).
    #[test]
    fn a_reload_tells_of_a_changed_serve_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serve.yaml");
        std::fs::write(&p, "rescan: 2s\n").unwrap();
        let started = Started::new(&p);
        let log = crate::log_capture::Log::default();
        let ((), lines) = log.of(|| started.reloaded());
        assert!(lines.is_empty(), "{lines:#?}");
        std::fs::write(&p, "rescan: 5s\n").unwrap();
        let ((), lines) = log.of(|| started.reloaded());
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(lines[0].contains("WARN") && lines[0].contains("restart the daemon to apply them"), "{lines:#?}");
        assert!(lines[0].contains(&format!("file={}", p.display())), "{lines:#?}");
        std::fs::write(&p, "rescan: 5s\nlimits: { runs: many }\n").unwrap();
        let ((), lines) = log.of(|| started.reloaded());
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(lines[0].contains("ERROR") && lines[0].contains("line=2") && lines[0].contains("at=/limits/runs"), "{lines:#?}");
        assert!(lines[1].contains("a restart would refuse to start"), "{lines:#?}");
        std::fs::remove_file(&p).unwrap();
        let ((), lines) = log.of(|| started.reloaded());
        assert!(lines.len() == 1 && lines[0].contains("cannot be read"), "{lines:#?}");
        // Put back as it was: nothing to say.
        std::fs::write(&p, "rescan: 2s\n").unwrap();
        assert!(log.of(|| started.reloaded()).1.is_empty());
    }

    fn problems(yaml: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serve.yaml");
        std::fs::write(&p, yaml).unwrap();
        match load(&p) {
            Ok(_) => vec![],
            Err(ds) => ds.iter().map(|d| format!("{}:{} {} {}", d.line, d.col, d.yaml_path, d.message)).collect(),
        }
    }

    #[test]
    fn defaults_and_every_problem_with_its_line() {
        assert!(problems("{}\n").is_empty());
        let got = problems(
            "listen: 10.0.0.1:9464\nlimits: { runs: 0, per_server: 2 }\nretry: { backoff: 5m, max: 1m }\nshutdown_grace: soon\nnotify:\n  - on: [failed]\n    command: { run: [] }\n",
        );
        let want = [
            "1:9 /listen",
            "2:17 /limits/runs",
            "3:28 /retry/max is shorter than retry.backoff (5m)",
            "4:17 /shutdown_grace",
            "7:21 /notify/0/command/run",
        ];
        for w in want {
            assert!(got.iter().any(|g| g.starts_with(w)), "{w} missing in {got:#?}");
        }
        assert!(got[0].contains("not a loopback address"), "{got:#?}");
    }

    #[test]
    fn global_rules_are_named_by_the_config_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("serve.yaml");
        std::fs::write(&p, "notify:\n  - on: [failed]\n    command: { run: [a] }\n  - on: [failed]\n    command: { run: [b] }\n").unwrap();
        let cfg = load(&p).unwrap();
        let origins: Vec<&str> = cfg.notify.iter().map(|r| r.origin.as_str()).collect();
        let file = p.display();
        assert_eq!(origins, [format!("{file} notify[0]"), format!("{file} notify[1]")]);
    }

    /// A duplicate key is refused as in a flow (before: the first occurrence was used
    /// silently), and one in a webhook's `headers` or an email `password` is not named — it may
    /// be the secret.
    #[test]
    fn duplicate_keys_are_refused_and_secret_ones_not_named() {
        let got = problems(
            "rescan: 5s\nrescan: 1s\nnotify:\n  - on: [failed]\n    webhook:\n      url: https://hooks.example.com/x\n      \
             headers: { Bearer-hunter2: a, Bearer-hunter2: b }\n  - on: [failed]\n    email: { server: localhost, tls: none, \
             from: a@b.c, to: [d@e.f], username: u, password: { hunter2: 1, hunter2: 2 } }\n",
        );
        assert_eq!(
            got,
            [
                "2:1 /rescan duplicate key `rescan` (the first occurrence is used)",
                "7:37 /notify/0/webhook/headers a duplicate key under `headers` (name not shown: it may be a secret; the first \
                 occurrence is used)",
                // At its line since the shape is checked by the schema (was "1:1 / not a serve
                // config: invalid type: map, expected a string").
                "9:93 /notify/1/email/password expected a string, found a mapping",
                "9:107 /notify/1/email/password a duplicate key under `password` (name not shown: it may be a secret; the \
                 first occurrence is used)",
            ]
        );
    }

    #[test]
    fn a_wrong_shape_is_told_at_its_line_with_the_other_problems() {
        // Was one problem at 1:1, serde's first ("not a serve config: unknown field …"), which
        // hid the others.
        let got = problems(
            "limits: { runs: many }
rescan: 1ms
retry: { backof: 5s }
listen: 10.0.0.1:1
",
        );
        // And then the meaning problems were not told at all until the shape was right: now
        // all four at once, as for a flow (`rescan` and `listen` too).
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].starts_with("1:17 /limits/runs expected"), "{got:#?}");
        assert!(got[1].starts_with("2:9 /rescan must be at least 100ms"), "{got:#?}");
        assert!(got[2].starts_with("3:10 /retry/backof unknown field `backof`"), "{got:#?}");
        assert!(got[3].starts_with("4:9 /listen 10.0.0.1:1 is not a loopback address"), "{got:#?}");
        // A broken notification rule hides neither the other rules' problems nor the
        // settings'; a setting dropped for its type is not blamed again through a default.
        let got = problems(
            "notify:\n  - on: [failed]\n    command: { run: 5 }\n  - on: [failed]\n    throttle: soon\n    command: { run: [a] }\n\
             retry: { backoff: 20m, max: [1] }\nshutdown_grace: 2d\n",
        );
        let want = [
            "3:21 /notify/0/command/run expected",
            "5:15 /notify/1/throttle",
            "7:29 /retry/max expected",
            "8:17 /shutdown_grace must be at most 1d",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (g, w) in got.iter().zip(want) {
            assert!(g.starts_with(w), "{w} not {g}");
        }
        // Shape right, meaning wrong: every problem, each once.
        let got = problems("notify:\n  - on: [failed]\n    command: { run: [] }\nlisten: 10.0.0.1:1\n");
        assert_eq!(got.len(), 2, "{got:#?}");
    }

    #[test]
    fn intervals_that_would_spin_are_refused() {
        // Were accepted: `rescan: 0s` reread the folder without pause, `backoff: 0s` retried an
        // unreachable server some 70 times a second.
        let got = problems("rescan: 0s\nretry: { backoff: 0s, max: 0s }\n");
        assert_eq!(
            got,
            [
                "1:9 /rescan must be at least 100ms: the flows folder would be read without pause",
                "2:19 /retry/backoff must be at least 1s: a server that cannot be reached would be tried again without pause",
            ]
        );
        assert!(problems("rescan: 100ms\nretry: { backoff: 1s, max: 1s }\n").is_empty());
    }

    #[test]
    fn huge_durations_are_refused() {
        // Were accepted: `shutdown_grace: 100000000000d` panicked at the stop
        // (`Instant::now() + grace` overflowed), the others slept or waited for ever.
        let got = problems("shutdown_grace: 100000000000d\nrescan: 2d\nretry: { backoff: 2d, max: 8d }\n");
        assert_eq!(
            got,
            [
                "1:17 /shutdown_grace must be at most 1d: a stop would wait longer than any service manager does",
                "2:9 /rescan must be at most 1h: a changed flow file would go unseen that long",
                "3:19 /retry/backoff must be at most 1d: a server back up would wait that long to be tried again",
                "3:28 /retry/max must be at most 7d: a server back up would wait that long to be tried again",
            ]
        );
        assert!(problems("shutdown_grace: 1d\nrescan: 1h\nretry: { backoff: 1d, max: 7d }\n").is_empty());
    }

    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../docs/examples/serve.yaml");
        let raw: RawServeConfig = serde_json::from_value(serde_yaml::from_str(text).unwrap()).unwrap();
        let mut problems = Vec::new();
        let cfg = check(&raw, &mut problems).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!((cfg.max_runs, cfg.per_server, cfg.listen.map(|a| a.port())), (4, 2, Some(9464)));
        assert_eq!(raw.notify.len(), 1);
    }

    #[test]
    fn the_flow_loader_knows_these_fields() {
        // `config::stray` tells a serve.yaml among the flows by them.
        let schema = crate::config::schema::schema_for::<RawServeConfig>();
        let mut fields: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut known = crate::config::stray::SERVE_CONFIG_FIELDS.to_vec();
        fields.sort();
        known.sort();
        assert_eq!(fields, known);
    }
}
