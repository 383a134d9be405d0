//! The email channel: a plain-text message over SMTP (lettre's async transport on tokio,
//! rustls): STARTTLS, implicit TLS or — to a loopback relay only — none; AUTH PLAIN/LOGIN
//! when a username is given; an extra trusted CA from `ca_file`.
//!
//! Owns the message (subject from a template or the one-line text, the body from
//! `message.rs`), the whole-exchange timeout and the classification of failures: SMTP 4xx,
//! timeouts and network failures are transient (421, 450, 451 and 452: deferred — the server
//! is up and says to come back later, which the lane does after minutes, not seconds); 5xx
//! (authentication refused included),
//! certificate problems and client-side refusals are permanent. A message goes to every
//! address in one transaction; refused for good, it goes to each address alone, so that one
//! address the server refuses (someone who left) does not keep the notice from the others. The password never appears in
//! an error: lettre does not print credentials, and errors name the server only.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::message::{TextTemplate, email_body};
use super::{ErrorKind, Notice, Notifier, NotifyError, chain, is_certificate_problem, label};
use crate::config::Secret;
pub use crate::config::raw_notify::SmtpTls;

/// A validated email channel.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailSpec {
    pub server: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Log in (AUTH PLAIN or LOGIN) with these; both or neither are set.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// An extra trusted CA (PEM file, absolute path), besides the system's.
    pub ca_file: Option<PathBuf>,
    pub from: Mailbox,
    /// At least one recipient.
    pub to: Vec<Mailbox>,
    /// The subject; default: the notice's one-line text.
    pub subject: Option<TextTemplate>,
    /// For each SMTP exchange as a whole.
    pub timeout: Duration,
}

/// Sends notices as emails through one SMTP server.
pub struct EmailNotifier {
    spec: EmailSpec,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    describe: String,
    /// The addresses the notice being sent (with its held-back count) has reached, after a
    /// transient failure part way through them: its retry sends to the others only. One slot
    /// is enough: a channel's lane sends one notice at a time, retries included.
    reached: Mutex<Option<(Notice, u32, Vec<Address>)>>,
}

impl EmailNotifier {
    /// Prepares the transport (no connection yet) for the rule written at `origin`
    /// ([`label`]). Fails (permanently) when `ca_file` cannot be read or parsed, or the TLS
    /// set-up is refused.
    pub fn new(spec: EmailSpec, origin: &str) -> Result<Self, NotifyError> {
        let describe = label(origin, &format!("email via {}:{}", spec.server, spec.port));
        let fail = |m: String| NotifyError::permanent(&describe, m);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&spec.server).port(spec.port).timeout(Some(spec.timeout));
        if spec.tls != SmtpTls::None {
            let mut params = TlsParameters::builder(spec.server.clone());
            if let Some(file) = &spec.ca_file {
                let pem = std::fs::read(file).map_err(|e| fail(format!("cannot read `ca_file` {}: {e}", file.display())))?;
                let cert = Certificate::from_pem(&pem).map_err(|e| fail(format!("`ca_file` {}: {}", file.display(), chain(&e))))?;
                params = params.add_root_certificate(cert);
            }
            let params = params.build_rustls().map_err(|e| fail(format!("cannot set up TLS: {}", chain(&e))))?;
            builder = builder.tls(if spec.tls == SmtpTls::Implicit { Tls::Wrapper(params) } else { Tls::Required(params) });
        } else {
            builder = builder.tls(Tls::None);
        }
        if let (Some(user), Some(password)) = (&spec.username, &spec.password) {
            builder = builder
                .credentials(Credentials::new(user.clone(), password.expose().to_string()))
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        Ok(EmailNotifier { transport: builder.build(), spec, describe, reached: Mutex::new(None) })
    }

    fn message(&self, notice: &Notice, held_back: u32) -> Result<Message, NotifyError> {
        let subject = match &self.spec.subject {
            Some(t) => t.render(notice, held_back).map_err(|e| NotifyError::permanent(&self.describe, e))?,
            None => notice.text_with(held_back),
        };
        let mut builder = Message::builder().from(self.spec.from.clone()).subject(subject).header(ContentType::TEXT_PLAIN);
        for to in &self.spec.to {
            builder = builder.to(to.clone());
        }
        builder
            .body(email_body(notice, held_back))
            .map_err(|e| NotifyError::permanent(&self.describe, format!("cannot build the message: {e}")))
    }
}

#[async_trait]
impl Notifier for EmailNotifier {
    async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), NotifyError> {
        let message = self.message(notice, held_back)?;
        let bytes = message.formatted();
        let reached = match crate::sync::lock(&self.reached).take() {
            Some((n, h, reached)) if n == *notice && h == held_back => reached,
            _ => Vec::new(),
        };
        if reached.is_empty() {
            match self.exchange(message.envelope(), &bytes).await {
                Ok(()) => return Ok(()),
                // Refused by the server for good, maybe for one address (RCPT): then nothing
                // was sent, and each address alone tells which, while the others get it.
                Err((e, true)) if self.spec.to.len() > 1 => {
                    tracing::debug!(channel = %self.describe, error = %e.message, "Sending to each address alone.")
                }
                Err((e, _)) => return Err(e),
            }
        }
        self.send_to_each(&message, &bytes, notice, held_back, reached).await
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

impl EmailNotifier {
    /// One SMTP transaction to the envelope's addresses. An error says whether the server
    /// refused it for good with a reply that may concern one address only.
    async fn exchange(&self, envelope: &Envelope, bytes: &[u8]) -> Result<(), (NotifyError, bool)> {
        match tokio::time::timeout(self.spec.timeout, self.transport.send_raw(envelope, bytes)).await {
            Err(_) => Err((NotifyError::transient(&self.describe, format!("no answer within {:?}", self.spec.timeout)), false)),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let message = if closed_early(&e) {
                    format!(
                        "the server at {}:{} closed the connection before answering (it may be limiting connections, or not \
                         speak SMTP{} on this port)",
                        self.spec.server,
                        self.spec.port,
                        if self.spec.tls == SmtpTls::Implicit { " over TLS" } else { "" }
                    )
                } else {
                    chain(&e)
                };
                let refused = e.is_permanent() && e.status().map(u16::from).is_some_and(may_refuse_one_address);
                if e.is_permanent() || e.is_client() || e.is_tls() || is_certificate_problem(&e) {
                    Err((NotifyError::permanent(&self.describe, message), refused))
                } else if e.status().map(u16::from).is_some_and(is_deferral) {
                    Err((NotifyError::deferred(&self.describe, message), false))
                } else {
                    Err((NotifyError::transient(&self.describe, message), false))
                }
            }
        }
    }

    /// Sends `message` to each address not `reached` yet, alone: an address the server refuses
    /// for good does not keep the notice from the others. A transient failure is retried (by
    /// the lane) for the addresses it did not reach only; a refusal for good is not retried,
    /// and names the addresses refused and those reached.
    async fn send_to_each(
        &self,
        message: &Message,
        bytes: &[u8],
        notice: &Notice,
        held_back: u32,
        mut reached: Vec<Address>,
    ) -> Result<(), NotifyError> {
        let (mut refused, mut again) = (Vec::new(), None);
        for to in self.spec.to.iter().map(|m| &m.email) {
            if reached.contains(to) {
                continue;
            }
            let envelope = Envelope::new(message.envelope().from().cloned(), vec![to.clone()])
                .map_err(|e| NotifyError::permanent(&self.describe, format!("cannot address the message to {to}: {e}")))?;
            match self.exchange(&envelope, bytes).await {
                Ok(()) => reached.push(to.clone()),
                Err((e, _)) if e.kind == ErrorKind::Permanent => refused.push(format!("{to}: {}", e.message)),
                Err((e, _)) => {
                    again.get_or_insert(e);
                }
            }
        }
        let sent = if reached.is_empty() {
            "sent to nobody".to_string()
        } else {
            format!("sent to {}", reached.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
        };
        if let Some(e) = again {
            let message = format!("{}; {sent} (a retry sends to the others only)", e.message);
            *crate::sync::lock(&self.reached) = Some((notice.clone(), held_back, reached));
            return Err(NotifyError { message, ..e });
        }
        if refused.is_empty() {
            return Ok(());
        }
        Err(NotifyError::permanent(&self.describe, format!("refused for {}; {sent}", refused.join("; "))))
    }
}

/// The server closed the connection where an answer was due. lettre says only `response
/// error: incomplete response`, with no kind of its own for it (a response error with no
/// reply code, whose source is that text); only the wording depends on it, never whether
/// the notice is tried again (a response error is transient either way).
fn closed_early(e: &lettre::transport::smtp::Error) -> bool {
    use std::error::Error as _;
    e.is_response() && e.status().is_none() && e.source().is_some_and(|s| s.to_string() == "incomplete response")
}

/// The SMTP replies that refuse one recipient (RCPT TO) for good: 550 no such mailbox (or not
/// allowed), 551 not local, 553 a name not allowed. (They may refuse the sender too; a login
/// refused, 530/535, or a message too large, 552/554, concern every address.)
fn may_refuse_one_address(code: u16) -> bool {
    matches!(code, 550 | 551 | 553)
}

/// The SMTP replies that say "not now, come back later" (421 service not available, closing
/// — too many connections or messages; 450 mailbox busy, greylisting; 451 local error, a rate
/// limit; 452 insufficient storage, too many messages or recipients for now): the server is
/// up; a mail transfer agent queues the message and tries again minutes later.
fn is_deferral(code: u16) -> bool {
    matches!(code, 421 | 450 | 451 | 452)
}
