//! Notifications: telling people that something happened — a run failed, a file was
//! quarantined, an endpoint is unreachable, a response is overdue — by webhook, email or a
//! command.
//!
//! Owns the [`Notice`] (what is told, independent of the ledger's event type: the caller
//! converts), the built notification [`Rule`]s of a flow or of the serve configuration, the
//! [`Notifier`] trait with one implementation per channel (`webhook.rs`, `email.rs`,
//! `command.rs`), the rendering of messages (`message.rs`) and the [`Dispatcher`]
//! (`dispatch/`: which rules a notice goes to, throttling; `dispatch/lane.rs`: each channel's queue and retries). It does not decide when
//! an event happens, and it never reads the system clock: `now` is passed in (the one exception:
//! a webhook's `Retry-After` given as a date, with no `Date` in the answer to measure it from).
//!
//! Secrets (webhook URLs and headers, SMTP passwords) are [`Secret`](crate::config::Secret)s;
//! errors and logs name a channel by [`Notifier::describe`], which never contains them.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod command;
mod dispatch;
mod email;
mod message;
mod webhook;

pub use command::{CommandNotifier, CommandSpec};
pub use dispatch::{Delivery, Dispatcher, Held, InFlight, Landed, Outcome, QUEUED, RetryPolicy, SENDING, Settled, Started};
pub use email::{EmailNotifier, EmailSpec, SmtpTls};
pub use message::{JsonTemplate, TextTemplate, email_body, sample_notice, unreadable_source_folder};
pub use webhook::{WebhookFormat, WebhookNotifier, WebhookSpec};

/// Every notice kind, by its snake_case name. `all` in a rule means every one of them except
/// `summary` (run summaries are opt-in).
pub const KINDS: [&str; 10] =
    ["failed", "quarantined", "unreachable", "recovered", "missing", "overdue", "late", "expired", "not_taken", "summary"];

/// The kind that is never throttled: a recovery is announced every time it happens.
pub const RECOVERED: &str = "recovered";

/// Something worth telling someone about. (Read back too: a notice held back by a throttle is
/// kept in the ledger as JSON, see `notify::dispatch`.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// One of [`KINDS`] (snake_case): `failed`, `quarantined`, `unreachable`, `recovered`,
    /// `missing`, `overdue`, `late`, `expired`, `not_taken`, `summary`.
    pub kind: String,
    /// The flow it is about ("" for the serve process itself).
    pub flow: String,
    /// When it happened.
    #[serde(with = "crate::timestamp::utc")]
    pub at: DateTime<Utc>,
    /// What it is about: a file path, an endpoint name, a request path.
    pub subject: String,
    /// A one-line reason or summary.
    pub detail: String,
    /// The ledger event's sequence number, when it came from the ledger.
    pub seq: Option<u64>,
    /// The run it happened in, when known.
    pub run: Option<u64>,
    /// Anything else (counts, a quarantine report, an endpoint): an object, shown to templates
    /// as `facts` and sent in JSON bodies.
    pub facts: serde_json::Value,
}

impl Notice {
    /// The form a notice is kept in the ledger while it waits (a run summary not sent yet).
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// A notice as [`encode`](Self::encode) keeps it.
    pub fn decode(bytes: &[u8]) -> Result<Notice, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// A notice with no sequence number, run or facts.
    pub fn new(kind: &str, flow: &str, at: DateTime<Utc>, subject: &str, detail: &str) -> Self {
        Notice {
            kind: kind.into(),
            flow: flow.into(),
            at,
            subject: subject.into(),
            detail: detail.into(),
            seq: None,
            run: None,
            facts: serde_json::Value::Object(Default::default()),
        }
    }
}

/// A validated notification rule: which notices, how often, and where to. Equal rules (a
/// reload that did not change them, nor moved them in their list) keep their throttle state.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The notice kinds this rule sends (`all` already expanded).
    pub on: BTreeSet<String>,
    /// A notice with the same (flow, kind, subject) as one this rule sent less than this long
    /// ago is held back and counted. Zero: nothing is held back. `recovered` never is.
    pub throttle: Duration,
    pub channel: Channel,
    /// Where the rule was written: its file and position (`flows/orders.yaml notify[1]`).
    /// Logs, errors and metrics name the channel by it first ([`label`]), so that two rules
    /// to one host (two Slack hooks) are told apart without showing their secret URLs.
    pub origin: String,
}

impl Rule {
    /// Whether notices of `kind` go to this rule.
    pub fn matches(&self, kind: &str) -> bool {
        self.on.contains(kind)
    }

    /// The notifier that sends over this rule's channel. Fails only when the channel cannot be
    /// set up at all (a TLS configuration the library refuses): a permanent error.
    pub fn notifier(&self) -> Result<Arc<dyn Notifier>, NotifyError> {
        let origin = &self.origin;
        Ok(match &self.channel {
            Channel::Webhook(spec) => Arc::new(WebhookNotifier::new(spec.clone(), origin)?),
            Channel::Email(spec) => Arc::new(EmailNotifier::new(spec.clone(), origin)?),
            Channel::Command(spec) => Arc::new(CommandNotifier::new(spec.clone(), origin)),
        })
    }
}

/// A channel's name in logs, errors and metrics ([`Notifier::describe`]): where its rule was
/// written, then what it is — `flows/orders.yaml notify[1] (webhook to hooks.slack.com)` —
/// or only what it is when `origin` is empty (a notifier made outside a flow or serve file).
pub fn label(origin: &str, channel: &str) -> String {
    if origin.is_empty() { channel.to_string() } else { format!("{origin} ({channel})") }
}

/// Where a rule sends to: exactly one channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    Webhook(WebhookSpec),
    Email(EmailSpec),
    Command(CommandSpec),
}

/// One way of sending notices. Implementations time out on their own (no call blocks for
/// ever) and report failures by [`ErrorKind`], never leaving it to the message text.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends `notice`; `held_back` similar notices were held back since the last one sent
    /// (the message says so when it is not zero).
    async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), NotifyError>;

    /// A short name for logs and errors: the rule's origin and the channel ([`label`]:
    /// `flows/orders.yaml notify[1] (webhook to hooks.slack.com)`, `serve.yaml notify[0]
    /// (email via smtp.example.com:587)`). Never contains a secret: no URL path, no password.
    fn describe(&self) -> String;
}

/// Whether trying again may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Connection refused or dropped, a timeout, HTTP 5xx, SMTP 4xx: retried. The channel
    /// may be down.
    Transient,
    /// The channel answered "not so fast" (HTTP 429): retried after its `Retry-After`, or
    /// without one after a pause of seconds to minutes ([`RetryPolicy::rate_limit`](crate::notify::RetryPolicy)),
    /// not after the short backoff it would only refuse again; the channel is up — a backlog
    /// to it waits beside its lane rather than failing (see `notify::dispatch`).
    RateLimited,
    /// The server is up but takes nothing for now, and says to come back later: SMTP 421
    /// (service not available, closing), 450 (mailbox busy, greylisted), 451 (local error,
    /// rate limit), 452 (insufficient storage). Retried after minutes, as a mail transfer
    /// agent does ([`RetryPolicy::deferral`](crate::notify::RetryPolicy)), not after the short
    /// backoff meant for a network blip, which it would only refuse again.
    Deferred,
    /// Refused for good: HTTP 4xx, authentication refused, a bad template, a command that
    /// exited non-zero. Not retried.
    Permanent,
}

/// A notice that could not be sent. The message names the channel by its description and
/// never contains a secret.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{target}: {message}")]
pub struct NotifyError {
    pub kind: ErrorKind,
    /// [`Notifier::describe`] of the channel.
    pub target: String,
    /// What went wrong.
    pub message: String,
    /// How long the channel asked to be left alone before the next attempt (an HTTP
    /// `Retry-After`); the retry waits at least this long, up to [`RETRY_AFTER_MAX`].
    pub retry_after: Option<Duration>,
}

/// The longest a retry waits for a channel's `Retry-After`: a longer one is not waited for in
/// full (the lane's other notices wait meanwhile), the attempt is made after this.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

impl NotifyError {
    pub fn transient(target: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError { kind: ErrorKind::Transient, target: target.into(), message: message.into(), retry_after: None }
    }

    pub fn permanent(target: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError { kind: ErrorKind::Permanent, target: target.into(), message: message.into(), retry_after: None }
    }

    pub fn rate_limited(target: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError { kind: ErrorKind::RateLimited, target: target.into(), message: message.into(), retry_after: None }
    }

    pub fn deferred(target: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError { kind: ErrorKind::Deferred, target: target.into(), message: message.into(), retry_after: None }
    }

    /// The same error, asking the next attempt to wait `after` (see
    /// [`retry_after`](Self::retry_after)).
    pub fn with_retry_after(self, after: Option<Duration>) -> Self {
        NotifyError { retry_after: after, ..self }
    }

    /// Trying again may help: transient, rate-limited or deferred.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, ErrorKind::Transient | ErrorKind::RateLimited | ErrorKind::Deferred)
    }

    /// The channel may be down (a transient failure that is neither a rate limit nor a
    /// deferral).
    pub fn says_down(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Transient => "transient",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::Deferred => "deferred",
            ErrorKind::Permanent => "permanent",
        })
    }
}

/// `error` and its sources, joined with `: ` (library errors keep the useful part, such as
/// "connection refused", in a source).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// A TLS refusal (an untrusted or mismatched certificate) somewhere in the error's sources:
/// reported as a connection error (lettre, reqwest), but trying again will not help.
pub(crate) fn is_certificate_problem(error: &(dyn std::error::Error + 'static)) -> bool {
    sources(error).any(|e| e.is::<rustls::Error>())
}

/// Why a connection could not be made, in plain words, from the first `io::Error` among the
/// error's sources, by its kind (never its text): `connection refused`, `host unreachable`…;
/// for a kind without words of its own (a name that does not resolve), the innermost source's
/// own message. `None` when no source is an `io::Error`.
pub(crate) fn connect_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use std::io::ErrorKind as K;
    let io = sources(error).find_map(|e| e.downcast_ref::<std::io::Error>())?;
    let words = match io.kind() {
        K::ConnectionRefused => "connection refused",
        K::ConnectionReset => "the connection was reset",
        K::ConnectionAborted => "the connection was aborted",
        K::TimedOut => "no answer",
        K::HostUnreachable => "host unreachable",
        K::NetworkUnreachable | K::NetworkDown => "network unreachable",
        K::AddrNotAvailable => "address not available",
        K::PermissionDenied => "not permitted (a firewall on this machine?)",
        _ => return sources(error).last().map(|e| e.to_string()),
    };
    Some(words.to_string())
}

/// The error and its sources, outermost first. `io::Error::source()` skips the error it wraps
/// (it returns that error's source), and TLS and HTTP stacks wrap errors in one io::Error or
/// more: the walk steps into the wrapped error instead.
fn sources<'a>(error: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| match e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
        Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notice_serializes_with_an_rfc3339_time_and_nulls() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_123).unwrap();
        let n = Notice::new("failed", "orders", at, "run 4", "connection refused");
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["at"], "2023-11-14T22:13:20.123Z");
        assert_eq!((v["kind"].as_str(), v["seq"].is_null(), v["facts"].is_object()), (Some("failed"), true, true));
    }

    /// An error whose source is `inner`, as HTTP and SMTP clients wrap an io::Error.
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request: client error (Connect)")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn a_failed_connection_is_said_by_the_kind_of_its_cause() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let refused = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(connect_failure(&Wrapped(refused)).as_deref(), Some("connection refused"));
        // Wrapped in a further io::Error (as TLS stacks do), the inner kind still counts.
        let inner = std::io::Error::from(std::io::ErrorKind::HostUnreachable);
        assert_eq!(connect_failure(&Wrapped(std::io::Error::other(Wrapped(inner)))).as_deref(), Some("host unreachable"));
        // A kind without words (a name that does not resolve): the innermost message.
        let dns = std::io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(connect_failure(&Wrapped(dns)).as_deref(), Some("failed to lookup address information: Name or service not known"));
        assert_eq!(connect_failure(&NotifyError::transient("x", "y")), None);
    }

    #[test]
    fn errors_are_classified_by_kind() {
        let e = NotifyError::transient("webhook to h", "HTTP 503");
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "webhook to h: HTTP 503");
        assert!(!NotifyError::permanent("x", "y").is_transient());
        let limited = NotifyError::rate_limited("webhook to h", "HTTP 429");
        assert!(limited.is_transient() && !limited.says_down(), "retried, but the channel is up");
        assert!(e.says_down());
        let deferred = NotifyError::deferred("email via h:25", "421 closing");
        assert!(deferred.is_transient() && !deferred.says_down(), "retried; the server is up");
        assert_eq!(deferred.kind.to_string(), "deferred");
    }
}
