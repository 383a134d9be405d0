//! The webhook channel: a JSON POST over http or https (reqwest with rustls; `HTTPS_PROXY`,
//! `HTTP_PROXY` and `NO_PROXY` are honoured).
//!
//! Owns the request (body by format or template, secret headers, a timeout on the whole
//! exchange, no redirects, an extra trusted CA) and the classification of what came back: 2xx
//! is sent; 408, 5xx and network failures are transient, 429 is rate-limited (retried too,
//! but the hook is up; its `Retry-After`, as a 503's, in seconds or as an HTTP date, says how
//! long the retry waits); other
//! answers and refused certificates are permanent. A refusal's body is read only as far as
//! the error quotes it. The URL is a secret
//! (Slack and Teams hook URLs are credentials): errors and logs name only its host (and a
//! redirect only the scheme and host it points to).

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};

use super::message::{JsonTemplate, json_body, slack_body, teams_body};
use super::{Notice, Notifier, NotifyError, chain, connect_failure, is_certificate_problem, label};
use crate::config::Secret;
pub use crate::config::raw_notify::WebhookFormat;
use crate::text::{Keep, one_line};

/// Longest part of a refusing answer's body (its lines joined into one) quoted in the error, in
/// characters.
const BODY_QUOTE: usize = 200;

/// Most of a refusing answer's body read, in bytes: enough for [`BODY_QUOTE`] characters
/// after blank lines and spaces are squeezed. The rest is not read (it may be huge, or never
/// end).
const BODY_READ: usize = 16 * 1024;

/// A validated webhook channel.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    /// http or https URL (checked when validated).
    pub url: Secret,
    pub format: WebhookFormat,
    /// A custom body; replaces `format`'s.
    pub template: Option<JsonTemplate>,
    /// Extra request headers; the values are secrets (`Authorization`).
    pub headers: Vec<(String, Secret)>,
    /// An extra trusted CA (PEM file, absolute path), besides the system's.
    pub ca_file: Option<PathBuf>,
    /// For the whole exchange: connect, send, answer.
    pub timeout: Duration,
}

/// Sends notices to one webhook.
pub struct WebhookNotifier {
    spec: WebhookSpec,
    url: Url,
    headers: HeaderMap,
    client: reqwest::Client,
    describe: String,
}

impl WebhookNotifier {
    /// Prepares the client for the rule written at `origin` ([`label`]). Fails (permanently)
    /// on a URL or header the validation should have refused, or a TLS set-up the library
    /// refuses.
    pub fn new(spec: WebhookSpec, origin: &str) -> Result<Self, NotifyError> {
        let url = Url::parse(spec.url.expose())
            .map_err(|e| NotifyError::permanent(label(origin, "webhook"), format!("the URL is not valid: {e}")))?;
        let describe = label(origin, &format!("webhook to {}", url.host_str().unwrap_or("?")));
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &spec.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| NotifyError::permanent(&describe, format!("`{name}` is not a valid header name")))?;
            let mut value = HeaderValue::from_str(value.expose())
                .map_err(|_| NotifyError::permanent(&describe, format!("the value of header `{name}` is not valid")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder();
        if let Some(file) = &spec.ca_file {
            let fail = |m: String| NotifyError::permanent(&describe, m);
            let pem = std::fs::read(file).map_err(|e| fail(format!("cannot read `ca_file` {}: {e}", file.display())))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(format!("`ca_file` {}: {}", file.display(), chain(&e))))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .timeout(spec.timeout)
            .connect_timeout(spec.timeout.min(Duration::from_secs(10)))
            // A redirected POST becomes a GET, and the hook's address belongs in the config.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("wharf/{}", crate::VERSION))
            .build()
            .map_err(|e| NotifyError::permanent(&describe, format!("cannot set up the HTTP client: {}", chain(&e.without_url()))))?;
        Ok(WebhookNotifier { spec, url, headers, client, describe })
    }

    fn body(&self, notice: &Notice, held_back: u32) -> Result<serde_json::Value, NotifyError> {
        if let Some(t) = &self.spec.template {
            return t.render(notice, held_back).map_err(|e| NotifyError::permanent(&self.describe, e));
        }
        Ok(match self.spec.format {
            WebhookFormat::Json => json_body(notice, held_back),
            WebhookFormat::Slack => slack_body(notice, held_back),
            WebhookFormat::Teams => teams_body(notice, held_back),
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(&self, notice: &Notice, held_back: u32) -> Result<(), NotifyError> {
        let body = self.body(notice, held_back)?;
        let body = serde_json::to_vec(&body).map_err(|e| NotifyError::permanent(&self.describe, e.to_string()))?;
        let answer =
            self.client.post(self.url.clone()).headers(self.headers.clone()).body(body).send().await.map_err(|e| self.failed(e))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(());
        }
        // Only a `Retry-After` date without the answer's `Date` beside it needs our clock.
        let wait = retry_after(answer.headers(), std::time::SystemTime::now());
        let moved = status.is_redirection().then(|| moved_to(answer.headers(), &self.url)).flatten();
        let mut message = refusal(status, &body_start(answer).await);
        if let Some(to) = moved {
            message.push_str(&format!("; it points to {to} (redirects are not followed: give the hook's address in `url`)"));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            Err(NotifyError::rate_limited(&self.describe, message).with_retry_after(wait))
        } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            Err(NotifyError::transient(&self.describe, message).with_retry_after(wait))
        } else {
            Err(NotifyError::permanent(&self.describe, message))
        }
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// The start of a refusing answer's body (up to [`BODY_READ`] bytes; what a failed read left
/// out is missing, nothing more): the error quotes it, and the channel's timeout is not spent
/// reading a body that goes on and on.
async fn body_start(mut answer: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_READ {
        match answer.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    bytes.truncate(BODY_READ);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// How long the answer asks the client to wait before trying again (RFC 9110 §10.2.3):
/// `Retry-After` in seconds, as Slack and Teams send it with a 429 (and servers with a 503), or
/// as an HTTP date (`Wed, 21 Oct 2026 07:28:00 GMT`, and the two obsolete forms). A date is
/// measured from the answer's own `Date` — the server's clock against the server's clock, so a
/// skew between its clock and ours does not matter — or, without one, from `now` (ours); a
/// date already past asks for no wait (the backoff applies). The lane caps the wait
/// ([`RETRY_AFTER_MAX`](super::RETRY_AFTER_MAX)).
fn retry_after(headers: &HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let date = headers.get(reqwest::header::DATE).and_then(|d| httpdate::parse_http_date(d.to_str().ok()?.trim()).ok());
    Some(at.duration_since(date.unwrap_or(now)).unwrap_or(Duration::ZERO))
}

/// Where a redirect points, as scheme, host and port only (its path and query may hold a
/// token, like the hook's own): `https://hooks.example.com`. `None` without a `Location` that
/// reads as a URL.
fn moved_to(headers: &HeaderMap, base: &Url) -> Option<String> {
    let location = headers.get(reqwest::header::LOCATION)?.to_str().ok()?;
    let to = base.join(location.trim()).ok()?;
    let host = to.host_str()?;
    Some(match to.port() {
        Some(port) => format!("{}://{host}:{port}", to.scheme()),
        None => format!("{}://{host}", to.scheme()),
    })
}

/// What a refusing answer says: its status, and the start of its body on one line.
fn refusal(status: StatusCode, body: &str) -> String {
    let quote = one_line(body, BODY_QUOTE, Keep::Start);
    if quote.is_empty() { format!("answered HTTP {status}") } else { format!("answered HTTP {status}: {quote}") }
}

impl WebhookNotifier {
    /// A request that got no answer: the network, a timeout (transient), or the request
    /// itself (permanent). The URL is stripped from the error; a connection that could not be
    /// made is said in plain words, by the kind of its cause (`cannot connect to
    /// hooks.example.com:443: connection refused …`).
    fn failed(&self, e: reqwest::Error) -> NotifyError {
        let e = e.without_url();
        let certificate = is_certificate_problem(&e);
        let message = match connect_failure(&e) {
            _ if e.is_timeout() => format!("no answer within {:?}", self.spec.timeout),
            Some(why) if e.is_connect() && !certificate => format!("cannot connect to {}: {why}", self.address()),
            _ => chain(&e),
        };
        if e.is_builder() || certificate {
            NotifyError::permanent(&self.describe, message)
        } else {
            NotifyError::transient(&self.describe, message)
        }
    }

    /// `host:port` of the hook (no path, no query: they can hold a token).
    fn address(&self) -> String {
        format!("{}:{}", self.url.host_str().unwrap_or("?"), self.url.port_or_known_default().unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hook URL's path and query (and any user and password in it) are its secret: the
    /// channel's label, in every error and log line, shows its host only.
    #[test]
    fn the_label_shows_the_host_never_the_path_or_query() {
        for url in ["https://hooks.example.com/T0K3N?token=s3cret#s3cret", "https://u:s3cret@hooks.example.com:8443/T0K3N"] {
            let spec = WebhookSpec {
                url: Secret::new(url.to_string()),
                format: WebhookFormat::Json,
                template: None,
                headers: Vec::new(),
                ca_file: None,
                timeout: Duration::from_secs(5),
            };
            let hook = WebhookNotifier::new(spec, "flows/a.yaml notify[0]").unwrap();
            assert_eq!(hook.describe(), "flows/a.yaml notify[0] (webhook to hooks.example.com)");
            assert!(!hook.address().contains("T0K3N") && !hook.address().contains("s3cret"), "{}", hook.address());
        }
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        let now = std::time::SystemTime::now();
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static(" 30 "));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None, "neither seconds nor a date: the backoff applies");
    }

    /// An HTTP date (RFC 9110 allows it): before, it was ignored and the retry came after the
    /// short backoff, refused again.
    #[test]
    fn retry_after_as_a_date_is_read_against_the_answers_date_else_our_clock() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:27:00 GMT").unwrap();
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)), "from our clock without a `Date`");
        // The obsolete forms a recipient must accept too (RFC 850, asctime).
        for obsolete in ["Wednesday, 21-Oct-26 07:28:00 GMT", "Wed Oct 21 07:28:00 2026"] {
            h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static(obsolete));
            assert_eq!(retry_after(&h, now), Some(Duration::from_secs(60)), "{obsolete}");
        }
        // The server's clock is 10 minutes behind ours: its own `Date` is what counts.
        h.insert(reqwest::header::DATE, HeaderValue::from_static("Wed, 21 Oct 2026 07:17:30 GMT"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(630)), "measured from the answer's `Date`");
        // A date already past: no wait (the lane's backoff applies).
        h.insert(reqwest::header::DATE, HeaderValue::from_static("Wed, 21 Oct 2026 07:30:00 GMT"));
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
    }

    #[test]
    fn a_redirect_names_where_it_points_without_its_path() {
        let base = Url::parse("http://hooks.example.com/services/T0/s3cret").unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(moved_to(&h, &base), None);
        h.insert(reqwest::header::LOCATION, HeaderValue::from_static("https://hooks.example.com/services/T0/s3cret?token=x"));
        assert_eq!(moved_to(&h, &base).as_deref(), Some("https://hooks.example.com"));
        h.insert(reqwest::header::LOCATION, HeaderValue::from_static("/v2/s3cret"));
        assert_eq!(moved_to(&h, &base).as_deref(), Some("http://hooks.example.com"), "relative: the same host");
        h.insert(reqwest::header::LOCATION, HeaderValue::from_static("http://127.0.0.1:8443/x"));
        assert_eq!(moved_to(&h, &base).as_deref(), Some("http://127.0.0.1:8443"));
    }

    #[test]
    fn a_refusal_quotes_the_start_of_the_body_on_one_line() {
        let got = refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal\nerror\n{\"ok\":false}\n");
        assert_eq!(got, "answered HTTP 500 Internal Server Error: internal ⏎ error ⏎ {\"ok\":false}");
        let long = refusal(StatusCode::BAD_REQUEST, &"x".repeat(1000));
        assert!(long.ends_with(&format!(": {}…", "x".repeat(BODY_QUOTE))), "{long}");
        assert_eq!(refusal(StatusCode::NOT_FOUND, " \n "), "answered HTTP 404 Not Found");
    }
}
