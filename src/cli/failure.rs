//! A command that failed, and the one place that reports it ([`report`], called by
//! `cli::run`): the human text on stderr; with `--json` also one JSON object on stdout,
//! `{"error": {"kind", "message", "flow"?, "cause"?, "problems"?}}`; and the exit code.
//!
//! A command returns a [`Failure`] (through `anyhow`) where it knows what went wrong and which
//! exit code that gets (an invalid flow, a bad argument, an interrupted run). Any other error
//! is classified here from the typed errors in its chain — a ledger, endpoint, plan, quarantine
//! or control error — never from its text, and exits 3. A command that printed its result,
//! failure included (a run that ran and failed, `validate --json`'s problems), has not failed
//! in this sense: it returns its exit code and nothing is added.
//!
//! This module decides what a failure looks like; it must not decide whether a command failed.

use std::process::ExitCode;

use serde::Serialize;

use super::output::{self, errln, outln};
use super::{EXIT_ABORTED, EXIT_INVALID};
use crate::config::Diagnostic;
use crate::control::ControlError;
use crate::endpoint::{EndpointError, ErrorKind, Op};
use crate::engine::plan::PlanError;
use crate::engine::quarantine::QuarantineError;
use crate::ledger::LedgerError;

/// What kind of failure, for scripts (`error.kind` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The flow file has problems; `problems` lists them (exit 2).
    InvalidFlow,
    /// The flow file, the quarantined file named, or the open await named (`wharf awaits
    /// close`) does not exist (exit 2; 3 when a quarantined file's copy is gone).
    NotFound,
    /// A command-line argument is wrong (exit 2).
    Usage,
    /// No connection to an endpoint could be made: unreachable, login refused, server not
    /// trusted; `cause` says which (exit 3).
    Connect,
    /// An endpoint was reached but an operation on it failed (listing the source, say);
    /// `cause` says why (exit 3).
    Endpoint,
    /// The state folder or its ledger cannot be used (exit 3).
    State,
    /// Another process holds the ledger for writing: `wharf serve`, or another `wharf run`
    /// (exit 3).
    Busy,
    /// The running `wharf serve` could not be asked (exit 3).
    Daemon,
    /// SIGINT or SIGTERM ended the command (exit 128 + the signal's number).
    Interrupted,
    /// Anything else; the message says what (exit 3).
    Other,
}

/// A command that failed, with everything [`report`] says about it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: Kind,
    /// The process's exit code.
    pub exit: u8,
    pub message: String,
    /// The endpoint error kind behind a `connect` or `endpoint` failure.
    pub cause: Option<ErrorKind>,
    /// The flow file's problems (an invalid flow).
    pub problems: Vec<Diagnostic>,
    /// Printed on stderr as `error: MESSAGE`; else as it is (a summary line after the
    /// problems, as `wharf run` always printed it).
    labelled: bool,
}

impl Failure {
    pub fn new(kind: Kind, exit: u8, message: impl Into<String>) -> Self {
        Failure { kind, exit, message: message.into(), cause: None, problems: Vec::new(), labelled: true }
    }

    /// Printed on stderr without the `error: ` label.
    pub fn unlabelled(self) -> Self {
        Failure { labelled: false, ..self }
    }

    pub fn with_problems(self, problems: Vec<Diagnostic>) -> Self {
        Failure { problems, ..self }
    }
}

/// The JSON object printed for a failure.
#[derive(Debug, Serialize)]
struct Json<'a> {
    error: JsonError<'a>,
}

#[derive(Debug, Serialize)]
struct JsonError<'a> {
    kind: Kind,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<ErrorKind>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    problems: &'a [Diagnostic],
}

/// Reports the failure `e` of a command about `flow` (when it names one): the text on stderr,
/// with `json` the JSON object on stdout (unless the command printed something there
/// already: stdout holds one JSON document); and gives its exit code.
pub fn report(e: &anyhow::Error, json: bool, flow: Option<&str>) -> ExitCode {
    let f = classify(e);
    for p in &f.problems {
        errln!("{p}");
    }
    if f.labelled {
        errln!("error: {}", f.message);
    } else {
        errln!("{}", f.message);
    }
    if json && !output::wrote_stdout() {
        outln!("{}", to_json(&f, flow));
    }
    ExitCode::from(f.exit)
}

/// `{"error": {…}}`, pretty-printed like the commands' other JSON.
fn to_json(f: &Failure, flow: Option<&str>) -> String {
    let v = Json { error: JsonError { kind: f.kind, message: &f.message, flow, cause: f.cause, problems: &f.problems } };
    // Invariant: these fields (strings, numbers, unit enums) always serialise.
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

/// The failure `e` is: the [`Failure`] a command returned (its message with any context
/// added around it), or one made from the first typed error of its chain.
fn classify(e: &anyhow::Error) -> Failure {
    let message = causes(e);
    if let Some(f) = e.chain().find_map(|c| c.downcast_ref::<Failure>()) {
        return Failure { kind: f.kind, exit: f.exit, message, cause: f.cause, problems: f.problems.clone(), labelled: f.labelled };
    }
    let made = e.chain().find_map(|cause| {
        if let Some(l) = cause.downcast_ref::<LedgerError>() {
            return Some(ledger(l));
        }
        if let Some(x) = cause.downcast_ref::<EndpointError>() {
            return Some(endpoint(x));
        }
        if let Some(p) = cause.downcast_ref::<PlanError>() {
            return Some(match p {
                PlanError::Endpoint { source, .. } => endpoint(source),
                PlanError::Ledger(l) => ledger(l),
            });
        }
        if let Some(q) = cause.downcast_ref::<QuarantineError>() {
            return Some(match q {
                QuarantineError::NotQuarantined { .. } => (Kind::NotFound, EXIT_INVALID, None),
                QuarantineError::CopyGone { .. } => (Kind::NotFound, EXIT_ABORTED, None),
                QuarantineError::LastCopy { .. } => (Kind::Usage, EXIT_INVALID, None),
                QuarantineError::BeingQuarantined { .. } => (Kind::Usage, EXIT_INVALID, None),
                QuarantineError::Ambiguous { .. }
                | QuarantineError::AmbiguousCopy { .. }
                | QuarantineError::Superseded { .. }
                | QuarantineError::EarlierLastCopy { .. } => (Kind::Usage, EXIT_INVALID, None),
                QuarantineError::NoSuchCopy { .. } => (Kind::NotFound, EXIT_INVALID, None),
                QuarantineError::File { source, .. } => (Kind::Other, EXIT_ABORTED, Some(source.kind())),
                QuarantineError::Ledger(l) => ledger(l),
            });
        }
        if let Some(c) = cause.downcast_ref::<ControlError>() {
            return Some(match c {
                // Files in the state folder: a state folder that is a file says so here.
                ControlError::Discovery { .. } | ControlError::DiscoveryInvalid { .. } => (Kind::State, EXIT_ABORTED, None),
                _ => (Kind::Daemon, EXIT_ABORTED, None),
            });
        }
        None
    });
    let (kind, exit, cause) = made.unwrap_or((Kind::Other, EXIT_ABORTED, None));
    Failure { cause, ..Failure::new(kind, exit, message) }
}

fn ledger(e: &LedgerError) -> (Kind, u8, Option<ErrorKind>) {
    match e {
        LedgerError::Busy(_) => (Kind::Busy, EXIT_ABORTED, None),
        _ => (Kind::State, EXIT_ABORTED, None),
    }
}

fn endpoint(e: &EndpointError) -> (Kind, u8, Option<ErrorKind>) {
    let kind = if e.unconnected || e.op == Op::Connect { Kind::Connect } else { Kind::Endpoint };
    (kind, EXIT_ABORTED, Some(e.kind))
}

/// The error and its causes, `: `-separated (as `{:#}` prints them), leaving out a cause
/// whose text an outer message already holds: the library's errors name their cause in
/// their own message and also expose it as their `source`.
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use anyhow::Context as _;

    use super::*;

    fn json(e: &anyhow::Error, flow: Option<&str>) -> serde_json::Value {
        serde_json::from_str(&to_json(&classify(e), flow)).unwrap()
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("ledger /x: cannot create its folder: {source}")]
        struct Named {
            #[source]
            source: std::io::Error,
        }
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let e = anyhow::Error::new(Named { source: denied() }).context("cannot open the ledger");
        assert_eq!(causes(&e), "cannot open the ledger: ledger /x: cannot create its folder: permission denied");
        // A cause the message does not name is still printed.
        let e = anyhow::Error::new(denied()).context("cannot open the ledger");
        assert_eq!(causes(&e), "cannot open the ledger: permission denied");
    }

    #[test]
    fn an_invalid_flow_lists_its_problems_and_keeps_exit_2() {
        let problem =
            Diagnostic { file: "f.yaml".into(), line: 2, col: 1, message: "unknown field `bogus`".into(), yaml_path: "/bogus".into() };
        let e = anyhow::Error::new(
            Failure::new(Kind::InvalidFlow, EXIT_INVALID, "f.yaml: 1 problem(s); nothing was run")
                .unlabelled()
                .with_problems(vec![problem]),
        );
        let f = classify(&e);
        assert_eq!((f.kind, f.exit, f.labelled), (Kind::InvalidFlow, EXIT_INVALID, false));
        assert_eq!(
            json(&e, Some("f")),
            serde_json::json!({ "error": {
                "kind": "invalid_flow", "message": "f.yaml: 1 problem(s); nothing was run", "flow": "f",
                "problems": [{ "file": "f.yaml", "line": 2, "col": 1, "message": "unknown field `bogus`", "yaml_path": "/bogus" }],
            }})
        );
    }

    #[test]
    fn kinds_come_from_the_typed_errors_in_the_chain_not_from_the_text() {
        let blocked = LedgerError::NotAFolder { path: PathBuf::from("/s/ledger.redb"), blocker: PathBuf::from("/s") };
        let e = anyhow::Error::new(blocked).context("cannot open the ledger");
        assert_eq!(json(&e, None), serde_json::json!({ "error": { "kind": "state", "message": causes(&e) } }));
        let f = classify(&e);
        assert_eq!((f.kind, f.exit), (Kind::State, EXIT_ABORTED));

        let busy = anyhow::Error::new(LedgerError::Busy(PathBuf::from("/s/ledger.redb")));
        assert_eq!(classify(&busy).kind, Kind::Busy);

        let mut refused = EndpointError::new(ErrorKind::AuthFailed, Op::List, "sftp u@h:22", None, "login refused");
        refused.unconnected = true;
        let e = anyhow::Error::new(PlanError::Endpoint { flow: "f".into(), source: refused });
        let v = json(&e, Some("f"));
        assert_eq!((v["error"]["kind"].as_str(), v["error"]["cause"].as_str()), (Some("connect"), Some("auth_failed")), "{v}");

        let listing = EndpointError::new(ErrorKind::NotFound, Op::List, "sftp u@h:22", None, "no such folder");
        assert_eq!(classify(&anyhow::Error::new(PlanError::Endpoint { flow: "f".into(), source: listing })).kind, Kind::Endpoint);

        let e = anyhow::Error::new(QuarantineError::NotQuarantined { flow: "f".into(), path: "in/a.csv".into() });
        let f = classify(&e);
        assert_eq!((f.kind, f.exit, f.labelled), (Kind::NotFound, EXIT_INVALID, true));

        // Whatever its text says, an error of no known type is `other`, exit 3.
        let f = classify(&anyhow::anyhow!("ledger busy: connection refused"));
        assert_eq!((f.kind, f.exit), (Kind::Other, EXIT_ABORTED));
    }

    #[test]
    fn context_around_a_failure_is_kept_in_its_message() {
        let e = Err::<(), _>(Failure::new(Kind::Usage, EXIT_INVALID, "--scratch: bad path")).context("probe").unwrap_err();
        let f = classify(&e);
        assert_eq!((f.kind, f.exit, f.message.as_str()), (Kind::Usage, EXIT_INVALID, "probe: --scratch: bad path"));
    }
}
