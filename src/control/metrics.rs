//! The daemon's Prometheus metrics: a small registry written by hand, rendered in the text
//! exposition format 0.0.4.
//!
//! The daemon records runs and notifications as they end; `GET /metrics` renders. Series
//! (labels in braces):
//! - `wharf_up` gauge, 1;
//! - `wharf_build_info{version}` gauge, 1: which build answers ([`crate::VERSION`]);
//! - `wharf_runs_total{flow,status}` counter: finished runs (`ok`, `failed`, `aborted`);
//! - `wharf_files_total{flow,outcome}` counter: files by outcome (`delivered`, `failed`,
//!   `quarantined`, …, whatever the daemon passes);
//! - `wharf_bytes_total{flow}` counter: bytes delivered;
//! - `wharf_run_duration_seconds{flow}` histogram;
//! - `wharf_last_run_timestamp_seconds{flow}`, `wharf_last_success_timestamp_seconds{flow}`
//!   gauges (Unix time; "success" = status `ok`);
//! - `wharf_flow_since_timestamp_seconds{flow}` gauge: when a daemon first served the flow
//!   with this ledger (Unix time), for every flow served, so that a stale-flow alert
//!   `time() - (wharf_last_success_timestamp_seconds or wharf_flow_since_timestamp_seconds)`
//!   covers a flow that never succeeded (it has no last-success series) without firing for
//!   one just added;
//! - `wharf_flow_running{flow}` gauge, 0 or 1;
//! - `wharf_runs_skipped_total{flow}` counter: scheduled runs not started because the flow's
//!   previous run was still going (`overlap: skip`; a refused `wharf trigger` is not one);
//! - `wharf_notifications_total{channel,result}` counter (`result`: `ok` or `failed`).
//!
//! Counters start at zero when the daemon starts (Prometheus handles resets); the last-run
//! timestamp gauges start at the ledger's times (`Metrics::last_times`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// Upper bounds of the run duration buckets, in seconds: from a quick poll of an empty folder
/// to an hour-long transfer.
const DURATION_BUCKETS: [f64; 12] = [0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0, 1800.0, 3600.0];

/// The registry. Cheap to update from any task; `render` takes a consistent snapshot.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Series>,
}

#[derive(Debug, Default)]
struct Series {
    runs: BTreeMap<(String, String), u64>,
    files: BTreeMap<(String, String), u64>,
    bytes: BTreeMap<String, u64>,
    durations: BTreeMap<String, Histogram>,
    last_run: BTreeMap<String, f64>,
    last_success: BTreeMap<String, f64>,
    since: BTreeMap<String, f64>,
    running: BTreeMap<String, u8>,
    skipped: BTreeMap<String, u64>,
    notifications: BTreeMap<(String, String), u64>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is +Inf.
    counts: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, v: f64) {
        let i = DURATION_BUCKETS.iter().position(|b| v <= *b).unwrap_or(DURATION_BUCKETS.len());
        self.counts[i] += 1;
        self.sum += v;
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn series(&self) -> MutexGuard<'_, Series> {
        // Every update is a few map insertions that cannot panic halfway in a way that breaks
        // an invariant, so a poisoned lock still holds usable numbers.
        crate::sync::lock(&self.inner)
    }

    /// Makes a flow's series visible (at zero) before its first run; true the first time
    /// (the caller then gives its last times, [`Metrics::last_times`]).
    pub fn register_flow(&self, flow: &str) -> bool {
        let mut s = self.series();
        let new = !s.running.contains_key(flow);
        s.running.entry(flow.to_string()).or_insert(0);
        s.bytes.entry(flow.to_string()).or_insert(0);
        s.skipped.entry(flow.to_string()).or_insert(0);
        new
    }

    /// When `flow`'s last run and last successful run ended before this daemon started (from
    /// the ledger): the timestamp gauges are not counters, and a restart must not drop them.
    /// Without them an alert on `time() - wharf_last_success_timestamp_seconds` went quiet at
    /// every restart, and stayed quiet for a flow that never succeeded again. A time already
    /// set (a run that ended since) is kept.
    pub fn last_times(&self, flow: &str, last_run: Option<DateTime<Utc>>, last_success: Option<DateTime<Utc>>) {
        let mut s = self.series();
        let secs = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;
        if let Some(t) = last_run {
            s.last_run.entry(flow.to_string()).or_insert(secs(t));
        }
        if let Some(t) = last_success {
            s.last_success.entry(flow.to_string()).or_insert(secs(t));
        }
    }

    /// When a daemon first served `flow` with this ledger (`Ledger::served_since`).
    pub fn served_since(&self, flow: &str, since: DateTime<Utc>) {
        self.series().since.insert(flow.to_string(), since.timestamp_millis() as f64 / 1000.0);
    }

    /// Drops the series of the flows `keep` refuses (no longer served: their file removed,
    /// or their `name:` changed). Kept, a removed flow's `wharf_last_success_timestamp_seconds`
    /// aged until a stale-flow alert fired for it, and went on firing until a restart.
    pub fn keep_flows(&self, keep: impl Fn(&str) -> bool) {
        let mut s = self.series();
        s.runs.retain(|(flow, _), _| keep(flow));
        s.files.retain(|(flow, _), _| keep(flow));
        s.bytes.retain(|flow, _| keep(flow));
        s.durations.retain(|flow, _| keep(flow));
        s.last_run.retain(|flow, _| keep(flow));
        s.last_success.retain(|flow, _| keep(flow));
        s.since.retain(|flow, _| keep(flow));
        s.running.retain(|flow, _| keep(flow));
        s.skipped.retain(|flow, _| keep(flow));
    }

    /// A run of `flow` was due while its previous run was still going, and skipped
    /// (`overlap: skip`).
    pub fn run_skipped(&self, flow: &str) {
        *self.series().skipped.entry(flow.to_string()).or_default() += 1;
    }

    /// A run of `flow` started.
    pub fn run_started(&self, flow: &str) {
        self.series().running.insert(flow.to_string(), 1);
    }

    /// A run of `flow` ended with `status` (`ok`, `failed`, `aborted`) after `duration`;
    /// `files_by_outcome` counts its files (e.g. `[("delivered", 3), ("failed", 1)]`).
    pub fn run_finished(
        &self,
        flow: &str,
        status: &str,
        duration: Duration,
        files_by_outcome: &[(&str, u64)],
        bytes: u64,
        finished_at: DateTime<Utc>,
    ) {
        let mut s = self.series();
        let f = flow.to_string();
        s.running.insert(f.clone(), 0);
        *s.runs.entry((f.clone(), status.to_string())).or_default() += 1;
        for (outcome, n) in files_by_outcome {
            *s.files.entry((f.clone(), outcome.to_string())).or_default() += n;
        }
        *s.bytes.entry(f.clone()).or_default() += bytes;
        s.durations.entry(f.clone()).or_default().observe(duration.as_secs_f64());
        let at = finished_at.timestamp_millis() as f64 / 1000.0;
        s.last_run.insert(f.clone(), at);
        if status == "ok" {
            s.last_success.insert(f, at);
        }
    }

    /// A notification over `channel` (e.g. `webhook`, `email`, `command`) was sent, or failed.
    pub fn notification(&self, channel: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        *self.series().notifications.entry((channel.to_string(), result.to_string())).or_default() += 1;
    }

    /// The text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let s = self.series();
        let mut out = String::new();
        family(&mut out, "wharf_up", "gauge", "1 while the wharf daemon answers.");
        out.push_str("wharf_up 1\n");
        family(&mut out, "wharf_build_info", "gauge", "1, labelled with the version of the wharf daemon (as `wharf --version` prints it).");
        sample(&mut out, "wharf_build_info", &[("version", crate::VERSION)], 1);

        family(&mut out, "wharf_runs_total", "counter", "Finished runs, by flow and status.");
        for ((flow, status), n) in &s.runs {
            sample(&mut out, "wharf_runs_total", &[("flow", flow), ("status", status)], *n);
        }
        family(&mut out, "wharf_files_total", "counter", "Files handled in runs, by flow and outcome.");
        for ((flow, outcome), n) in &s.files {
            sample(&mut out, "wharf_files_total", &[("flow", flow), ("outcome", outcome)], *n);
        }
        family(&mut out, "wharf_bytes_total", "counter", "Bytes delivered, by flow.");
        for (flow, n) in &s.bytes {
            sample(&mut out, "wharf_bytes_total", &[("flow", flow)], *n);
        }
        family(&mut out, "wharf_run_duration_seconds", "histogram", "How long runs took, by flow.");
        for (flow, h) in &s.durations {
            let mut cumulative = 0;
            for (i, n) in h.counts.iter().enumerate() {
                cumulative += n;
                let le = DURATION_BUCKETS.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                sample(&mut out, "wharf_run_duration_seconds_bucket", &[("flow", flow), ("le", &le)], cumulative);
            }
            sample(&mut out, "wharf_run_duration_seconds_sum", &[("flow", flow)], h.sum);
            sample(&mut out, "wharf_run_duration_seconds_count", &[("flow", flow)], cumulative);
        }
        family(&mut out, "wharf_last_run_timestamp_seconds", "gauge", "When the last run of a flow ended (Unix time).");
        for (flow, t) in &s.last_run {
            sample(&mut out, "wharf_last_run_timestamp_seconds", &[("flow", flow)], *t);
        }
        family(&mut out, "wharf_last_success_timestamp_seconds", "gauge", "When the last successful run of a flow ended (Unix time).");
        for (flow, t) in &s.last_success {
            sample(&mut out, "wharf_last_success_timestamp_seconds", &[("flow", flow)], *t);
        }
        family(
            &mut out,
            "wharf_flow_since_timestamp_seconds",
            "gauge",
            "When a daemon first served the flow with this state folder (Unix time).",
        );
        for (flow, t) in &s.since {
            sample(&mut out, "wharf_flow_since_timestamp_seconds", &[("flow", flow)], *t);
        }
        family(&mut out, "wharf_flow_running", "gauge", "1 while a run of the flow is going.");
        for (flow, n) in &s.running {
            sample(&mut out, "wharf_flow_running", &[("flow", flow)], *n);
        }
        family(
            &mut out,
            "wharf_runs_skipped_total",
            "counter",
            "Runs skipped because the previous run was still going (overlap: skip), by flow.",
        );
        for (flow, n) in &s.skipped {
            sample(&mut out, "wharf_runs_skipped_total", &[("flow", flow)], *n);
        }
        family(&mut out, "wharf_notifications_total", "counter", "Notifications sent, by channel and result.");
        for ((channel, result), n) in &s.notifications {
            sample(&mut out, "wharf_notifications_total", &[("channel", channel), ("result", result)], *n);
        }
        out
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family (help texts here need no escaping).
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// One sample line: `name{label="value",…} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(k);
            out.push_str("=\"");
            escape_label(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Label values escape backslash, double quote and line feed (exposition format 0.0.4).
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))).collect()
    }

    #[test]
    fn runs_fill_counters_gauges_and_a_cumulative_histogram() {
        let m = Metrics::new();
        let _ = m.register_flow("idle");
        m.run_started("a");
        assert!(m.render().contains("wharf_flow_running{flow=\"a\"} 1\n"));
        let t = DateTime::from_timestamp_millis(1_764_064_800_500).unwrap();
        m.run_finished("a", "ok", Duration::from_millis(300), &[("delivered", 3), ("failed", 0)], 1000, t);
        m.run_started("a");
        m.run_finished("a", "failed", Duration::from_secs(40), &[("delivered", 1), ("failed", 2)], 24, t);
        m.notification("webhook", true);
        m.notification("email", false);
        m.run_skipped("a");
        m.run_skipped("a");
        let text = m.render();
        assert_eq!(
            lines_of(&text, "wharf_runs_skipped_total"),
            ["wharf_runs_skipped_total{flow=\"a\"} 2", "wharf_runs_skipped_total{flow=\"idle\"} 0"]
        );
        assert_eq!(
            lines_of(&text, "wharf_runs_total"),
            ["wharf_runs_total{flow=\"a\",status=\"failed\"} 1", "wharf_runs_total{flow=\"a\",status=\"ok\"} 1"]
        );
        assert_eq!(
            lines_of(&text, "wharf_files_total"),
            ["wharf_files_total{flow=\"a\",outcome=\"delivered\"} 4", "wharf_files_total{flow=\"a\",outcome=\"failed\"} 2"]
        );
        assert_eq!(lines_of(&text, "wharf_bytes_total"), ["wharf_bytes_total{flow=\"a\"} 1024", "wharf_bytes_total{flow=\"idle\"} 0"]);
        assert_eq!(lines_of(&text, "wharf_flow_running"), ["wharf_flow_running{flow=\"a\"} 0", "wharf_flow_running{flow=\"idle\"} 0"]);
        let buckets = lines_of(&text, "wharf_run_duration_seconds_bucket");
        assert_eq!(buckets.len(), DURATION_BUCKETS.len() + 1);
        assert_eq!(buckets[0], "wharf_run_duration_seconds_bucket{flow=\"a\",le=\"0.1\"} 0");
        assert_eq!(buckets[1], "wharf_run_duration_seconds_bucket{flow=\"a\",le=\"0.5\"} 1");
        assert_eq!(buckets[6], "wharf_run_duration_seconds_bucket{flow=\"a\",le=\"30\"} 1");
        assert_eq!(buckets[7], "wharf_run_duration_seconds_bucket{flow=\"a\",le=\"60\"} 2");
        assert_eq!(buckets[12], "wharf_run_duration_seconds_bucket{flow=\"a\",le=\"+Inf\"} 2");
        assert_eq!(lines_of(&text, "wharf_run_duration_seconds_sum"), ["wharf_run_duration_seconds_sum{flow=\"a\"} 40.3"]);
        assert_eq!(lines_of(&text, "wharf_run_duration_seconds_count"), ["wharf_run_duration_seconds_count{flow=\"a\"} 2"]);
        assert_eq!(lines_of(&text, "wharf_last_run_timestamp_seconds"), ["wharf_last_run_timestamp_seconds{flow=\"a\"} 1764064800.5"]);
        assert_eq!(
            lines_of(&text, "wharf_last_success_timestamp_seconds"),
            ["wharf_last_success_timestamp_seconds{flow=\"a\"} 1764064800.5"]
        );
        assert_eq!(
            lines_of(&text, "wharf_notifications_total"),
            [
                "wharf_notifications_total{channel=\"email\",result=\"failed\"} 1",
                "wharf_notifications_total{channel=\"webhook\",result=\"ok\"} 1"
            ]
        );
        assert_eq!(lines_of(&text, "wharf_up"), ["wharf_up 1"]);
        assert_eq!(lines_of(&text, "wharf_build_info"), [format!("wharf_build_info{{version=\"{}\"}} 1", crate::VERSION)]);
        assert!(text.contains("# TYPE wharf_run_duration_seconds histogram\n"));
        assert!(text.ends_with('\n'));
    }

    /// The last-run gauges come from the ledger at registration, and a run that ended since
    /// is not overwritten by them.
    #[test]
    fn the_last_times_of_a_flow_survive_a_restart() {
        let m = Metrics::new();
        let t = |ms| DateTime::from_timestamp_millis(ms).unwrap();
        assert!(m.register_flow("a"));
        assert!(!m.register_flow("a"), "registered once");
        m.last_times("a", Some(t(2_000)), Some(t(1_000)));
        m.last_times("never", None, None);
        // A flow that never ran has a series to measure it by: when it was first served.
        m.served_since("never", t(3_000));
        let text = m.render();
        assert_eq!(lines_of(&text, "wharf_flow_since_timestamp_seconds"), ["wharf_flow_since_timestamp_seconds{flow=\"never\"} 3"]);
        assert_eq!(lines_of(&text, "wharf_last_run_timestamp_seconds"), ["wharf_last_run_timestamp_seconds{flow=\"a\"} 2"]);
        assert_eq!(lines_of(&text, "wharf_last_success_timestamp_seconds"), ["wharf_last_success_timestamp_seconds{flow=\"a\"} 1"]);
        m.run_finished("a", "ok", Duration::from_secs(1), &[], 0, t(9_000));
        m.last_times("a", Some(t(2_000)), Some(t(1_000)));
        assert_eq!(lines_of(&m.render(), "wharf_last_success_timestamp_seconds"), ["wharf_last_success_timestamp_seconds{flow=\"a\"} 9"]);
    }

    /// A flow no longer served loses every series; the others keep theirs.
    #[test]
    fn the_series_of_a_flow_no_longer_served_are_dropped() {
        let m = Metrics::new();
        let t = DateTime::from_timestamp_millis(1_000).unwrap();
        for flow in ["gone", "kept"] {
            let _ = m.register_flow(flow);
            m.served_since(flow, t);
            m.run_finished(flow, "ok", Duration::from_secs(1), &[("delivered", 1)], 5, t);
            m.run_skipped(flow);
        }
        m.keep_flows(|f| f == "kept");
        let text = m.render();
        assert!(!text.contains("\"gone\""), "{text}");
        assert_eq!(lines_of(&text, "wharf_last_success_timestamp_seconds"), ["wharf_last_success_timestamp_seconds{flow=\"kept\"} 1"]);
        assert_eq!(lines_of(&text, "wharf_runs_total"), ["wharf_runs_total{flow=\"kept\",status=\"ok\"} 1"]);
        assert_eq!(lines_of(&text, "wharf_flow_since_timestamp_seconds"), ["wharf_flow_since_timestamp_seconds{flow=\"kept\"} 1"]);
    }

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "m", &[("flow", "a\"b\\c\nd")], 1);
        assert_eq!(out, "m{flow=\"a\\\"b\\\\c\\nd\"} 1\n");
    }

    #[test]
    fn every_family_has_help_and_type_once() {
        let text = Metrics::new().render();
        for name in [
            "wharf_up",
            "wharf_build_info",
            "wharf_runs_total",
            "wharf_files_total",
            "wharf_bytes_total",
            "wharf_run_duration_seconds",
            "wharf_last_run_timestamp_seconds",
            "wharf_last_success_timestamp_seconds",
            "wharf_flow_since_timestamp_seconds",
            "wharf_flow_running",
            "wharf_runs_skipped_total",
            "wharf_notifications_total",
        ] {
            assert_eq!(text.matches(&format!("# HELP {name} ")).count(), 1, "{name}");
            assert_eq!(text.matches(&format!("# TYPE {name} ")).count(), 1, "{name}");
        }
    }
}
