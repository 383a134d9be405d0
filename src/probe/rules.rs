//! The findings: what a probe's facts and measurements mean for one flow's own settings.
//!
//! Pure (a flow and a report in, sentences out), so `wharf probe` and `wharf plan` judge the
//! same way, and a plan judges a stored probe against the flow as it is now. Rules look at the
//! endpoint's roles in the flow — source (readiness by `min_age`/`stable_for`, identity by
//! mtime), sink (`if_exists`, trigger files), quarantine — and say nothing about settings the
//! flow does not use. They read protocol-neutral [`Traits`](crate::endpoint::Traits), never a
//! backend's name.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::clock::{human_ms, human_precision};
use super::{ProbeReport, RenameBehaviour};
use crate::config::Flow;
use crate::config::duration::format as flow_duration;
use crate::config::flow::{IfExists, Source};
use crate::endpoint::Sessions;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing; nothing to change.
    Info,
    /// A setting does not do what it seems to, or a weaker guarantee than expected.
    Warning,
    /// Something the flow relies on does not work on this server.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    Connection,
    Encryption,
    Clock,
    MtimePrecision,
    Rename,
    Durability,
    Checksum,
}

/// One thing a probe found, as a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub topic: Topic,
    pub text: String,
}

fn finding(severity: Severity, topic: Topic, text: String) -> Finding {
    Finding { severity, topic, text }
}

/// The findings for `report`'s endpoint in `flow`, most severe first.
pub fn findings(flow: &Flow, report: &ProbeReport) -> Vec<Finding> {
    let name = report.endpoint.as_str();
    let mut out = Vec::new();
    let facts = &report.facts;
    for p in &facts.problems {
        out.push(finding(Severity::Error, Topic::Connection, p.clone()));
    }
    if !facts.traits.encrypted.yes {
        out.push(finding(Severity::Warning, Topic::Encryption, facts.traits.encrypted.why.clone()));
    }
    if let Some(Sessions { asked, accepted }) = facts.traits.sessions
        && accepted < asked
    {
        out.push(finding(
            Severity::Warning,
            Topic::Connection,
            format!(
                "the server accepted {accepted} of the {asked} connections at once that `max_connections` allows (a limit of sessions per user or address): a run that wants more has the extra ones turned away, with a warning each time; set `max_connections: {accepted}` on endpoint {name}"
            ),
        ));
    }

    let mut sources: Vec<&Source> = Vec::new();
    if flow.source.endpoint == name {
        sources.push(&flow.source);
    }
    let response = flow.response.as_deref();
    if let Some(r) = response
        && r.flow.source.endpoint == name
    {
        sources.push(&r.flow.source);
    }
    // The command to measure what a `--write` probe measures, naming the flow file as the
    // flow was loaded from (its name alone finds it only in ./flows, under that name).
    let probe_write = format!("wharf probe {} --write", flow.file.display());
    for source in sources {
        readiness(source, report, &probe_write, &mut out);
    }

    // Sinks write through rename; trigger files always replace an older one.
    let mut sinks: Vec<(String, IfExists, bool)> = Vec::new();
    let mut through_temp: Vec<String> = Vec::new();
    let responding = response.map(|r| ("response sink", &r.flow.sinks[..]));
    for (what, list) in std::iter::once(("sink", &flow.sinks[..])).chain(responding) {
        for (i, s) in list.iter().enumerate().filter(|(_, s)| s.endpoint == name) {
            let label = format!("{what} {} ({name})", i + 1);
            if !s.direct() {
                through_temp.push(label.clone());
            }
            sinks.push((label, s.if_exists, s.trigger.is_some()));
        }
    }
    if let Some(p) = report.write.as_ref().and_then(|w| w.rename_problem.as_ref())
        && !through_temp.is_empty()
    {
        out.push(finding(
            Severity::Error,
            Topic::Rename,
            format!(
                "the server refuses to rename a file ({p}), and {} write{} under a temporary name and rename it: set `direct: true` there to write straight under the final name (the partner then sees a file while it arrives; a `trigger` tells it when it is whole)",
                through_temp.join(", "),
                if through_temp.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    rename(&sinks, report, &probe_write, &mut out);
    let quarantined_here = flow.quarantine.as_ref().is_some_and(|q| q.endpoint == name);
    if !sinks.is_empty() || quarantined_here {
        let t = &facts.traits;
        if !t.durable_writes.yes {
            out.push(finding(
                Severity::Info,
                Topic::Durability,
                format!(
                    "uploads cannot be forced to disk on the server ({}): a server crash right after a delivery may lose it",
                    t.durable_writes.why
                ),
            ));
        }
    }
    if !sinks.is_empty() && !facts.traits.server_sha256.yes {
        out.push(finding(
            Severity::Info,
            Topic::Checksum,
            format!("uploads are verified by their size only ({})", facts.traits.server_sha256.why),
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// Whether a clock offset of `off_ms` (± `unc_ms`) is at least a quarter hour and, within its
/// error and a second, a whole number of quarter hours: the distance of a time zone from UTC.
fn in_another_zone(off_ms: i64, unc_ms: u64) -> bool {
    const QUARTER: u64 = 15 * 60 * 1000;
    let off = off_ms.unsigned_abs();
    let from_quarter = (off % QUARTER).min(QUARTER - off % QUARTER);
    off + 1000 + unc_ms >= QUARTER && from_quarter <= unc_ms + 1000
}

/// A clock offset as the `time_offset` of a zone that far from UTC, to the quarter hour:
/// `-5h`, `+5h30m`.
fn zone_offset(off_ms: i64) -> String {
    const QUARTER: i64 = 15 * 60 * 1000;
    let quarters = (off_ms as f64 / QUARTER as f64).round() as i64;
    let minutes = quarters.abs() * 15;
    let sign = if quarters < 0 { '-' } else { '+' };
    match (minutes / 60, minutes % 60) {
        (h, 0) => format!("{sign}{h}h"),
        (0, m) => format!("{sign}{m}m"),
        (h, m) => format!("{sign}{h}h{m}m"),
    }
}

/// Readiness and identity on a source endpoint: the clock offset and the mtime precision.
/// `probe_write` is the command that measures the clock (`wharf probe FILE --write`).
fn readiness(source: &Source, report: &ProbeReport, probe_write: &str, out: &mut Vec<Finding>) {
    let traits = &report.facts.traits;
    let precision = report.write.as_ref().map(|w| w.mtime_precision).unwrap_or(traits.mtime_precision);
    let min_age = source.ready.min_age;
    match report.write.as_ref().and_then(|w| w.clock) {
        Some(c) => {
            let (off, unc) = (c.offset_ms, c.uncertainty_ms);
            let side = if off < 0 { "behind" } else { "ahead of" };
            let skew = format!("server clock is {} {side} ours (±{})", human_ms(off.unsigned_abs()), human_ms(unc));
            // Only an offset certainly larger than a second (and than the measuring error) counts.
            let certain = off.unsigned_abs().saturating_sub(unc);
            match min_age {
                Some(age) if off < 0 && certain > 1000 => {
                    let age_ms = age.as_millis() as u64;
                    let behind = off.unsigned_abs();
                    let text = if behind >= age_ms {
                        format!(
                            "{skew}: `min_age: {}` does not hold files back at all — a file counts as old enough the moment it appears",
                            flow_duration(age)
                        )
                    } else {
                        format!(
                            "{skew}: `min_age: {}` would let a file through {} after its last write",
                            flow_duration(age),
                            human_ms(age_ms - behind)
                        )
                    };
                    let severity = if behind >= age_ms { Severity::Error } else { Severity::Warning };
                    out.push(finding(severity, Topic::Clock, text));
                }
                Some(age) if off > 0 && certain > 1000 => out.push(finding(
                    Severity::Info,
                    Topic::Clock,
                    format!(
                        "{skew}: `min_age: {}` waits up to {} after a file's last write ({} after a run first sees it \
                         unchanged, when that is sooner)",
                        flow_duration(age),
                        human_ms(age.as_millis() as u64 + off as u64),
                        flow_duration(age)
                    ),
                )),
                None if certain > 1000 => {
                    out.push(finding(Severity::Info, Topic::Clock, format!("{skew}; keep this in mind before setting `min_age`")))
                }
                _ => out.push(finding(Severity::Info, Topic::Clock, format!("{skew}: the clocks agree"))),
            }
            if precision >= Duration::from_secs(60) && off.unsigned_abs() >= 15 * 60 * 1000 {
                out.push(finding(
                    Severity::Info,
                    Topic::Clock,
                    "listing times are in the server's time zone (LIST): an offset of whole hours is its distance from UTC".into(),
                ));
            } else if in_another_zone(off, unc) {
                // Exact times a whole number of quarter hours off: not a clock that drifted, but
                // times given in the server's own zone where UTC is due.
                out.push(finding(
                    Severity::Warning,
                    Topic::Clock,
                    format!(
                        "an offset of whole hours (or quarter hours): the server gives its times in its own time zone instead of \
                         UTC (vsftpd's MDTM with `use_localtime=YES`, Debian's default), so `min_age` is off by {}; set the \
                         endpoint's `time_zone` to the server's zone (FTP; `America/New_York`, summer time included) or \
                         `time_offset: {}` (the same all year), ask the partner for UTC times, or use `stable_for`, which does \
                         not rely on the server's clock",
                        human_ms(off.unsigned_abs()),
                        zone_offset(off)
                    ),
                ));
            }
        }
        None if min_age.is_some() && report.write.is_none() => out.push(finding(
            Severity::Info,
            Topic::Clock,
            format!("the server's clock was not measured (`min_age` relies on it): run `{probe_write}`"),
        )),
        // No times to measure the clock by: `ready::assess` counts `min_age` on wharf's clock.
        None => {
            if let Some(age) = min_age {
                out.push(finding(
                    Severity::Info,
                    Topic::Clock,
                    format!(
                        "the server lists no modification times: with `min_age: {}` a file waits that long from when a run \
                         first sees it (counted again if its size changes), not from its last write",
                        flow_duration(age)
                    ),
                ))
            }
        }
    }

    if precision >= Duration::from_secs(60) {
        let p = human_precision(precision);
        let why = format!("mtimes have {p} precision ({})", traits.mtime_source);
        if let Some(stable) = source.ready.stable_for
            && stable < 2 * precision
        {
            out.push(finding(
                Severity::Warning,
                Topic::MtimePrecision,
                format!(
                    "{why}: `stable_for` below {} cannot be trusted (`stable_for: {}`): a file rewritten with the same size within the {p} looks unchanged",
                    flow_duration(2 * precision),
                    flow_duration(stable)
                ),
            ));
        }
        if let Some(age) = min_age {
            let severity = if age < 2 * precision { Severity::Warning } else { Severity::Info };
            out.push(finding(
                severity,
                Topic::MtimePrecision,
                format!("{why}: `min_age: {}` may let a file through up to {p} early", flow_duration(age)),
            ));
        }
        if source.identity.mtime && !source.identity.sha256 {
            out.push(finding(
                Severity::Warning,
                Topic::MtimePrecision,
                format!("{why}: with identity by mtime, a file re-sent with the same name and size within the same {p} is taken for the one already delivered (identity `[sha256]` tells them apart)"),
            ));
        }
    }
    if let Some(w) = &report.write
        && w.mtime_precision > report.promised.mtime_precision.max(traits.mtime_precision)
    {
        out.push(finding(
            Severity::Warning,
            Topic::MtimePrecision,
            format!(
                "listed mtimes were whole multiples of {}, coarser than the {} this endpoint assumes",
                human_precision(w.mtime_precision),
                human_precision(report.promised.mtime_precision.max(traits.mtime_precision))
            ),
        ));
    }
}

/// Rename semantics for the sinks on this endpoint.
fn rename(sinks: &[(String, IfExists, bool)], report: &ProbeReport, probe_write: &str, out: &mut Vec<Finding>) {
    let atomic = &report.facts.traits.atomic_replace;
    let plain = report.write.as_ref().map(|w| &w.plain_rename);
    if let Some(w) = &report.write {
        if let Some(p) = &w.replace_problem {
            let users: Vec<&str> = sinks.iter().filter(|s| s.1 == IfExists::Overwrite || s.2).map(|s| s.0.as_str()).collect();
            let who = if users.is_empty() { String::new() } else { format!(" (used by {})", users.join(", ")) };
            out.push(finding(Severity::Error, Topic::Rename, format!("renaming onto an existing file with replace {p}{who}")));
        }
        if let Some(p) = &w.no_replace_problem {
            out.push(finding(Severity::Error, Topic::Rename, format!("renaming onto an existing file without replace {p}")));
        }
        // What the endpoint promised against what the server did.
        match (&w.plain_rename, report.promised.atomic_replace) {
            (RenameBehaviour::Replaces, false) if !sinks.is_empty() => out.push(finding(
                Severity::Info,
                Topic::Rename,
                format!(
                    "the server's own rename replaced an existing file, though the endpoint does not promise an atomic replace ({})",
                    atomic.why
                ),
            )),
            (RenameBehaviour::Odd { what }, _) => {
                out.push(finding(Severity::Warning, Topic::Rename, format!("the server's own rename onto an existing file: {what}")))
            }
            _ => {}
        }
    }
    if atomic.yes || report.promised.atomic_replace {
        return;
    }
    for (sink, policy, trigger) in sinks {
        let uses = match (policy, trigger) {
            (IfExists::Overwrite, _) => "`if_exists: overwrite`",
            (_, true) => "its trigger file",
            _ => continue,
        };
        let text = match plain {
            Some(RenameBehaviour::Replaces) => continue,
            Some(RenameBehaviour::Refuses { .. }) => format!(
                "rename does not replace an existing file ({}): {uses} on {sink} uses delete-then-rename (a short window without the file)",
                atomic.why
            ),
            _ => format!(
                "rename may not replace an existing file atomically ({}): {uses} on {sink} deletes the old file first if the server refuses (`{probe_write}` tells)",
                atomic.why
            ),
        };
        out.push(finding(Severity::Warning, Topic::Rename, text));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chrono::Utc;

    use super::*;
    use crate::endpoint::{ErrorKind, ServerFacts, Support, Traits};
    use crate::probe::clock::ClockOffset;
    use crate::probe::{Promised, WriteChecks};

    fn flow(ready: &str, if_exists: &str) -> Flow {
        let yaml = format!(
            "name: f\nendpoints:\n  p: {{ type: local, root: /srv/p }}\n  l: {{ type: local, root: /srv/l }}\n\
             source: {{ endpoint: p, path: /in, ready: {ready} }}\n\
             sinks: [ {{ endpoint: p, path: /out, if_exists: {if_exists} }} ]\n"
        );
        crate::config::load_flow_str(&yaml, Path::new("/flows/f.yaml")).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn report(atomic: bool, precision: Duration, write: Option<WriteChecks>) -> ProbeReport {
        ProbeReport {
            flow: "f".into(),
            endpoint: "p".into(),
            target: "sftp x@h:22".into(),
            probed_at: Utc::now(),
            facts: ServerFacts {
                protocol: "SFTP v3".into(),
                software: None,
                features: vec![],
                traits: Traits {
                    atomic_replace: if atomic { Support::yes("posix-rename") } else { Support::no("no posix-rename@openssh.com") },
                    durable_writes: Support::no("no fsync@openssh.com"),
                    server_sha256: Support::no("none"),
                    encrypted: Support::yes("SSH"),
                    mtime_precision: precision,
                    mtime_source: "LIST only".into(),
                    sessions: None,
                },
                problems: vec![],
            },
            promised: Promised { mtime_precision: precision, atomic_replace: atomic },
            write,
            write_error: None,
            findings: vec![],
        }
    }

    fn checks(offset_ms: i64, uncertainty_ms: u64, plain: RenameBehaviour) -> WriteChecks {
        WriteChecks {
            at: Utc::now(),
            scratch: "/.wharf-probe-1".into(),
            plain_rename: plain,
            replace_problem: None,
            no_replace_problem: None,
            mtime_precision: Duration::from_secs(1),
            clock: Some(ClockOffset { offset_ms, uncertainty_ms, samples: 4 }),
            cleanup_problem: None,
            rename_problem: None,
        }
    }

    fn texts(f: &[Finding], topic: Topic) -> Vec<String> {
        f.iter().filter(|f| f.topic == topic).map(|f| format!("{}: {}", f.severity.as_str(), f.text)).collect()
    }

    #[test]
    fn a_server_clock_behind_ours_shortens_min_age() {
        let refuses = RenameBehaviour::Refuses { kind: ErrorKind::Protocol, message: "Failure".into() };
        let r = report(true, Duration::from_secs(1), Some(checks(-18_000, 500, refuses.clone())));
        let f = findings(&flow("{ min_age: 30s }", "fail"), &r);
        assert_eq!(
            texts(&f, Topic::Clock),
            ["warning: server clock is 18 s behind ours (±500 ms): `min_age: 30s` would let a file through 12 s after its last write"]
        );
        let r = report(true, Duration::from_secs(1), Some(checks(-42_000, 1000, refuses.clone())));
        let f = findings(&flow("{ min_age: 30s }", "fail"), &r);
        assert_eq!(f[0].severity, Severity::Error, "{f:?}");
        assert!(f[0].text.contains("does not hold files back at all"), "{f:?}");
        // Ahead: files wait longer; clocks within the error agree.
        let r = report(true, Duration::from_secs(1), Some(checks(42_000, 1000, refuses.clone())));
        assert_eq!(
            texts(&findings(&flow("{ min_age: 2m }", "fail"), &r), Topic::Clock),
            ["info: server clock is 42 s ahead of ours (±1 s): `min_age: 2m` waits up to 2 min 42 s after a file's last write \
                 (2m after a run first sees it unchanged, when that is sooner)"]
        );
        let r = report(true, Duration::from_secs(1), Some(checks(300, 500, refuses)));
        assert_eq!(
            texts(&findings(&flow("{ min_age: 30s }", "fail"), &r), Topic::Clock),
            ["info: server clock is 300 ms ahead of ours (±500 ms): the clocks agree"]
        );
    }

    /// vsftpd with `use_localtime=YES` (Debian's default) gives MDTM in its own zone: a server
    /// in New York lists a file written now as five hours old. Before: only "server clock is
    /// 5 h behind ours", read as a clock to set right.
    #[test]
    fn exact_times_whole_hours_off_are_named_times_in_the_servers_zone() {
        let refuses = RenameBehaviour::Refuses { kind: ErrorKind::Protocol, message: "Failure".into() };
        let zone = |off: i64| {
            let r = report(true, Duration::from_secs(1), Some(checks(off, 600, refuses.clone())));
            texts(&findings(&flow("{ min_age: 2m }", "fail"), &r), Topic::Clock).into_iter().any(|t| t.contains("its own time zone"))
        };
        assert!(zone(-5 * 3_600_000 + 400));
        assert_eq!((zone_offset(-5 * 3_600_000 + 400), zone_offset(5 * 3_600_000 + 30 * 60_000 - 900)), ("-5h".into(), "+5h30m".into()));
        assert!(zone(5 * 3_600_000 + 30 * 60_000 - 900));
        assert!(!zone(-42_000), "a clock off by seconds");
        assert!(!zone(-5 * 3_600_000 + 7 * 60_000), "minutes past the hour");
        // Minute-precision LIST times have their own note.
        let list = WriteChecks { mtime_precision: Duration::from_secs(60), ..checks(-5 * 3_600_000, 30_000, refuses) };
        let r = report(true, Duration::from_secs(60), Some(list));
        let t = texts(&findings(&flow("{ min_age: 2m }", "fail"), &r), Topic::Clock);
        assert!(t.iter().any(|t| t.contains("(LIST)")) && !t.iter().any(|t| t.contains("its own time zone")), "{t:?}");
    }

    /// The command asked for names the flow file: the flow's name found it only when the file
    /// was `./flows/NAME.yaml` (here it is `/flows/f.yaml`, outside the current folder).
    #[test]
    fn without_a_measurement_min_age_asks_for_one() {
        let f = findings(&flow("{ min_age: 30s }", "fail"), &report(true, Duration::from_secs(1), None));
        assert_eq!(
            texts(&f, Topic::Clock),
            ["info: the server's clock was not measured (`min_age` relies on it): run `wharf probe /flows/f.yaml --write`"]
        );
        assert!(
            texts(&findings(&flow("{ stable_for: 30s }", "fail"), &report(true, Duration::from_secs(1), None)), Topic::Clock).is_empty()
        );
    }

    /// A listing without times: `min_age` counts from when a run first sees a file. Before,
    /// the finding said `min_age` could not hold files back, while such a file was never taken.
    #[test]
    fn without_times_min_age_counts_from_the_first_sighting() {
        let no_times = WriteChecks { clock: None, ..checks(0, 0, RenameBehaviour::Replaces) };
        let r = report(true, Duration::from_secs(1), Some(no_times));
        assert_eq!(
            texts(&findings(&flow("{ min_age: 2m }", "fail"), &r), Topic::Clock),
            ["info: the server lists no modification times: with `min_age: 2m` a file waits that long from when a run first \
              sees it (counted again if its size changes), not from its last write"]
        );
        assert!(texts(&findings(&flow("{ stable_for: 30s }", "fail"), &r), Topic::Clock).is_empty());
    }

    #[test]
    fn minute_precision_makes_short_stable_for_untrustworthy() {
        let f = findings(&flow("{ stable_for: 30s }", "fail"), &report(true, Duration::from_secs(60), None));
        let t = texts(&f, Topic::MtimePrecision);
        assert!(
            t.iter().any(|t| t.starts_with("warning: mtimes have 1 min precision (LIST only): `stable_for` below 2m cannot be trusted")),
            "{t:?}"
        );
        assert!(t.iter().any(|t| t.contains("identity by mtime")), "{t:?}");
        let f = findings(&flow("{ stable_for: 5m }", "fail"), &report(true, Duration::from_secs(60), None));
        assert!(!texts(&f, Topic::MtimePrecision).iter().any(|t| t.contains("stable_for")), "{f:?}");
    }

    #[test]
    fn fewer_sessions_than_max_connections_says_what_to_set() {
        let mut r = report(true, Duration::from_secs(1), None);
        r.facts.traits.sessions = Some(Sessions { asked: 4, accepted: 2 });
        let t = texts(&findings(&flow("{ min_age: 1m }", "fail"), &r), Topic::Connection);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(
            t[0].starts_with("warning: the server accepted 2 of the 4 connections")
                && t[0].ends_with("set `max_connections: 2` on endpoint p"),
            "{t:?}"
        );
        r.facts.traits.sessions = Some(Sessions { asked: 2, accepted: 2 });
        assert!(texts(&findings(&flow("{ min_age: 1m }", "fail"), &r), Topic::Connection).is_empty());
    }

    #[test]
    fn overwrite_without_atomic_replace_is_delete_then_rename() {
        let refuses = RenameBehaviour::Refuses { kind: ErrorKind::Protocol, message: "Failure".into() };
        let r = report(false, Duration::from_secs(1), Some(checks(0, 500, refuses)));
        assert_eq!(
            texts(&findings(&flow("{}", "overwrite"), &r), Topic::Rename),
            [
                "warning: rename does not replace an existing file (no posix-rename@openssh.com): `if_exists: overwrite` on sink 1 (p) uses delete-then-rename (a short window without the file)"
            ]
        );
        // `fail` does not rename onto anything; an atomic replace needs no finding.
        assert!(texts(&findings(&flow("{}", "fail"), &r), Topic::Rename).is_empty());
        let r = report(true, Duration::from_secs(1), None);
        assert!(texts(&findings(&flow("{}", "overwrite"), &r), Topic::Rename).is_empty());
        // A server whose own rename replaces: overwrite is that rename, said as info.
        let r = report(false, Duration::from_secs(1), Some(checks(0, 500, RenameBehaviour::Replaces)));
        let t = texts(&findings(&flow("{}", "overwrite"), &r), Topic::Rename);
        assert_eq!(t.len(), 1, "{t:?}");
        assert!(t[0].starts_with("info: the server's own rename replaced an existing file"), "{t:?}");
    }

    #[test]
    fn sinks_hear_about_durability_and_checksums_and_errors_come_first() {
        let mut r = report(true, Duration::from_secs(1), None);
        r.facts.problems.push("listing the root / over passive (EPSV) failed: refused".into());
        let f = findings(&flow("{}", "fail"), &r);
        assert_eq!(f[0].severity, Severity::Error);
        assert_eq!(
            texts(&f, Topic::Durability),
            [
                "info: uploads cannot be forced to disk on the server (no fsync@openssh.com): a server crash right after a delivery may lose it"
            ]
        );
        assert_eq!(texts(&f, Topic::Checksum).len(), 1);
    }
}
