//! The email channel: a plain-text message over SMTP (lettre's async transport on tokio,
//! rustls): STARTTLS, implicit TLS or — to a loopback relay only — none; AUTH PLAIN/LOGIN
//! when a username is given; an extra trusted CA from `ca_file`.
//!
//! Owns the message (subject from a template or the one-line text, the body from
//! `message.rs`), the whole-exchange timeout and the classification of failures: SMTP 4xx,
//! timeouts and network failures are transient (421, 450, 451 and 452: rate-limited, retried
//! too, but the server is up); 5xx (authentication refused included),
//! certificate problems and client-side refusals are permanent. The password never appears in
//! an error: lettre does not print credentials, and errors name the server only.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::message::{TextTemplate, email_body};
use super::{Notice, Notifier, NotifyError, chain, is_certificate_problem, label};
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
        Ok(EmailNotifier { transport: builder.build(), spec, describe })
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
        match tokio::time::timeout(self.spec.timeout, self.transport.send(message)).await {
            Err(_) => Err(NotifyError::transient(&self.describe, format!("no answer within {:?}", self.spec.timeout))),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let message = chain(&e);
                if e.is_permanent() || e.is_client() || e.is_tls() || is_certificate_problem(&e) {
                    Err(NotifyError::permanent(&self.describe, message))
                } else if e.status().map(u16::from).is_some_and(is_rate_limit) {
                    Err(NotifyError::rate_limited(&self.describe, message))
                } else {
                    Err(NotifyError::transient(&self.describe, message))
                }
            }
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// The SMTP replies servers give to a sender that is too fast (421 too many connections or
/// messages, try later; 450/451 rate limit or greylisting; 452 too many messages or
/// recipients for now): the server is up, it only wants the mail slower.
fn is_rate_limit(code: u16) -> bool {
    matches!(code, 421 | 450 | 451 | 452)
}
