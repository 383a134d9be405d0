//! A real SMTP server on 127.0.0.1 speaking enough RFC 5321 for lettre, recording every
//! message: greeting, EHLO/HELO, STARTTLS (tokio-rustls, with the test CA's certificate for
//! 127.0.0.1 and localhost, shared with the FTPS harness), AUTH PLAIN and LOGIN (offered only
//! over TLS, as real servers do), MAIL FROM, RCPT TO, DATA (with dot-unstuffing), RSET, NOOP,
//! QUIT.
//!
//! ```ignore
//! let smtp = SmtpReceiver::start(SmtpOptions::default()).await; // user `alerts`, password `pw`
//! // … send with server 127.0.0.1, port smtp.port(), ca_file smtp.ca() …
//! let mail = &smtp.messages()[0];
//! ```
//!
//! A message is recorded before the server answers the end of DATA, so once a client has sent
//! it, it is in [`SmtpReceiver::messages`]: no waiting needed.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// How the server behaves.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// The only login accepted.
    pub user: String,
    pub password: String,
    /// AUTH mechanisms advertised: `PLAIN LOGIN` by default.
    pub mechanisms: String,
    /// Refuse MAIL FROM before a successful AUTH.
    pub require_auth: bool,
    /// Answer every MAIL FROM with this reply instead of accepting it (`451 4.7.1 …`: a
    /// server rate-limiting its senders).
    pub mail_reply: Option<String>,
    /// RCPT TO addresses refused for good (`550 5.1.1 … unknown`: someone who left).
    pub unknown: Vec<String>,
    /// RCPT TO addresses answered `450 4.2.1 Mailbox busy` the first time only.
    pub busy_once: Vec<String>,
}

impl Default for SmtpOptions {
    fn default() -> Self {
        SmtpOptions {
            user: "alerts".into(),
            password: "pw".into(),
            mechanisms: "PLAIN LOGIN".into(),
            require_auth: true,
            mail_reply: None,
            unknown: Vec::new(),
            busy_once: Vec::new(),
        }
    }
}

/// One message received.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The MAIL FROM address (without `<>`).
    pub from: String,
    /// The RCPT TO addresses.
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed, lines joined with `\r\n`.
    pub data: String,
    /// The user that logged in, if any.
    pub user: Option<String>,
    /// Whether the message came over TLS.
    pub tls: bool,
}

impl Mail {
    /// The value of header `name` (first occurrence, unfolded).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let mut lines = head.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if let Some((n, v)) = line.split_once(':')
                && n.eq_ignore_ascii_case(name)
            {
                let mut value = v.trim().to_string();
                while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
                    value.push(' ');
                    value.push_str(next.trim());
                    lines.next();
                }
                return Some(value);
            }
        }
        None
    }

    /// The body (after the blank line), decoded from its `Content-Transfer-Encoding`
    /// (quoted-printable or base64; lettre picks one for long or non-ASCII lines).
    pub fn body(&self) -> String {
        let raw = self.data.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
        let bytes = match self.header("Content-Transfer-Encoding").map(|e| e.to_ascii_lowercase()).as_deref() {
            Some("quoted-printable") => unquote(raw),
            Some("base64") => STANDARD.decode(raw.replace("\r\n", "")).expect("base64 body"),
            _ => raw.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Decodes quoted-printable: `=\r\n` is a soft line break, `=XX` a byte.
fn unquote(text: &str) -> Vec<u8> {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

struct Shared {
    options: SmtpOptions,
    acceptor: TlsAcceptor,
    messages: Mutex<Vec<Mail>>,
    /// The `busy_once` addresses answered busy already.
    was_busy: Mutex<Vec<String>>,
}

/// A running SMTP server; dropping it stops it.
pub struct SmtpReceiver {
    port: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl SmtpReceiver {
    /// Starts on a free port of 127.0.0.1 (inside a tokio runtime). Panics when the test
    /// certificates cannot be made (the `openssl` CLI is needed).
    pub async fn start(options: SmtpOptions) -> SmtpReceiver {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            options,
            acceptor: super::tls_acceptor(),
            messages: Mutex::new(Vec::new()),
            was_busy: Mutex::new(Vec::new()),
        });
        let for_task = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let shared = Arc::clone(&for_task);
                tokio::spawn(async move {
                    let _ = session(stream, &shared).await;
                });
            }
        });
        SmtpReceiver { port, shared, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that issued the server's certificate (PEM), for the client's `ca_file`.
    pub fn ca(&self) -> PathBuf {
        super::ftpd::certs().expect("test certificates").ca.clone()
    }

    /// Every message received so far, in order.
    pub fn messages(&self) -> Vec<Mail> {
        self.shared.messages.lock().expect("messages").clone()
    }
}

impl Drop for SmtpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the dialog asks the connection to do next.
enum Next {
    StartTls,
    Close,
}

/// The envelope being built and the login, kept across STARTTLS only as RFC 3207 allows
/// (the client must start over, so it is reset).
#[derive(Default)]
struct Envelope {
    user: Option<String>,
    from: Option<String>,
    to: Vec<String>,
}

async fn session(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut plain = BufReader::new(stream);
    plain.get_mut().write_all(b"220 localhost ESMTP wharf test receiver\r\n").await?;
    match dialog(&mut plain, false, shared).await? {
        Next::Close => Ok(()),
        Next::StartTls => {
            let tls = shared.acceptor.accept(plain.into_inner()).await?;
            let mut tls = BufReader::new(tls);
            dialog(&mut tls, true, shared).await.map(|_| ())
        }
    }
}

async fn reply<S: AsyncWrite + Unpin>(s: &mut S, text: &str) -> std::io::Result<()> {
    s.write_all(text.as_bytes()).await?;
    s.write_all(b"\r\n").await?;
    s.flush().await
}

/// Reads one line without its line break; `None` at end of stream.
async fn line<S: AsyncBufRead + Unpin>(s: &mut S) -> std::io::Result<Option<String>> {
    let mut buf = Vec::new();
    if s.read_until(b'\n', &mut buf).await? == 0 {
        return Ok(None);
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

/// The part of `MAIL FROM:<a@b> SIZE=1` between `<` and `>`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    match (arg.find('<'), arg.find('>')) {
        (Some(a), Some(b)) if a < b => arg[a + 1..b].to_string(),
        _ => arg.split_whitespace().next().unwrap_or_default().to_string(),
    }
}

async fn dialog<S: AsyncBufRead + AsyncWrite + Unpin>(s: &mut S, tls: bool, shared: &Shared) -> std::io::Result<Next> {
    let options = &shared.options;
    let mut env = Envelope::default();
    while let Some(command) = line(s).await? {
        let (verb, arg) = command.split_once(' ').unwrap_or((&command, ""));
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                let mut lines = vec!["250-localhost".to_string()];
                if !tls {
                    lines.push("250-STARTTLS".into());
                } else {
                    lines.push(format!("250-AUTH {}", options.mechanisms));
                }
                lines.push("250 8BITMIME".into());
                reply(s, &lines.join("\r\n")).await?;
            }
            "HELO" => reply(s, "250 localhost").await?,
            "STARTTLS" if tls => reply(s, "503 5.5.1 TLS already active").await?,
            "STARTTLS" => {
                reply(s, "220 2.0.0 Ready to start TLS").await?;
                return Ok(Next::StartTls);
            }
            "AUTH" if !tls => reply(s, "538 5.7.11 Encryption required for requested authentication mechanism").await?,
            "AUTH" => {
                let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
                let mechanism = mechanism.to_ascii_uppercase();
                if !options.mechanisms.split_whitespace().any(|m| m == mechanism) {
                    reply(s, "504 5.5.4 Unrecognized authentication type").await?;
                    continue;
                }
                let decode = |t: &str| String::from_utf8_lossy(&STANDARD.decode(t.trim()).unwrap_or_default()).into_owned();
                let (user, password) = if mechanism == "PLAIN" {
                    let response = if initial.is_empty() {
                        reply(s, "334 ").await?;
                        line(s).await?.unwrap_or_default()
                    } else {
                        initial.to_string()
                    };
                    let decoded = decode(&response);
                    let mut parts = decoded.split('\0').skip(1);
                    (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string())
                } else {
                    let user = if initial.is_empty() {
                        reply(s, &format!("334 {}", STANDARD.encode("Username:"))).await?;
                        decode(&line(s).await?.unwrap_or_default())
                    } else {
                        decode(initial)
                    };
                    reply(s, &format!("334 {}", STANDARD.encode("Password:"))).await?;
                    (user, decode(&line(s).await?.unwrap_or_default()))
                };
                if user == options.user && password == options.password {
                    env.user = Some(user);
                    reply(s, "235 2.7.0 Authentication successful").await?;
                } else {
                    reply(s, "535 5.7.8 Authentication credentials invalid").await?;
                }
            }
            "MAIL" if options.require_auth && env.user.is_none() => reply(s, "530 5.7.0 Authentication required").await?,
            "MAIL" if options.mail_reply.is_some() => reply(s, options.mail_reply.as_deref().unwrap_or_default()).await?,
            "MAIL" => {
                env.from = Some(address(arg.trim_start_matches(|c: char| c != ':').trim_start_matches(':')));
                env.to.clear();
                reply(s, "250 2.1.0 OK").await?;
            }
            "RCPT" if env.from.is_none() => reply(s, "503 5.5.1 MAIL first").await?,
            "RCPT" => {
                let to = address(arg.trim_start_matches(|c: char| c != ':').trim_start_matches(':'));
                let busy = options.busy_once.contains(&to) && {
                    let mut was = shared.was_busy.lock().expect("was busy");
                    !was.contains(&to) && {
                        was.push(to.clone());
                        true
                    }
                };
                if options.unknown.contains(&to) {
                    reply(s, "550 5.1.1 Recipient address rejected: User unknown").await?;
                } else if busy {
                    reply(s, "450 4.2.1 Mailbox busy, try again later").await?;
                } else {
                    env.to.push(to);
                    reply(s, "250 2.1.5 OK").await?;
                }
            }
            "DATA" if env.to.is_empty() => reply(s, "503 5.5.1 RCPT first").await?,
            "DATA" => {
                reply(s, "354 End data with <CR><LF>.<CR><LF>").await?;
                let mut lines = Vec::new();
                loop {
                    let Some(l) = line(s).await? else { return Ok(Next::Close) };
                    if l == "." {
                        break;
                    }
                    // Dot-stuffing: the client doubled a leading dot.
                    lines.push(match l.strip_prefix('.') {
                        Some(rest) => rest.to_string(),
                        None => l,
                    });
                }
                let mail = Mail {
                    from: env.from.take().unwrap_or_default(),
                    to: std::mem::take(&mut env.to),
                    data: lines.join("\r\n"),
                    user: env.user.clone(),
                    tls,
                };
                shared.messages.lock().expect("messages").push(mail);
                reply(s, "250 2.0.0 OK queued").await?;
            }
            "RSET" => {
                env.from = None;
                env.to.clear();
                reply(s, "250 2.0.0 OK").await?;
            }
            "NOOP" => reply(s, "250 2.0.0 OK").await?,
            "QUIT" => {
                reply(s, "221 2.0.0 Bye").await?;
                return Ok(Next::Close);
            }
            _ => reply(s, "502 5.5.2 Command not recognized").await?,
        }
    }
    Ok(Next::Close)
}
