//! A small HTTP/1.1 server on 127.0.0.1 (hyper) that records every request — method, path,
//! headers, body — and answers with a configured sequence of statuses (then 200), to test
//! webhooks against a real socket: bodies, headers, retry on 500, no retry on 4xx.
//!
//! ```ignore
//! let hook = HttpReceiver::start(&[500]).await; // first answer 500, then 200
//! notifier.send(&notice, 0).await?;
//! assert_eq!(hook.requests().len(), 2);
//! ```
//!
//! A request is recorded before it is answered, so once a client has its answer the request
//! is in [`HttpReceiver::requests`]: no waiting needed. [`HttpReceiver::start_tls`] serves
//! HTTPS with the test CA's server certificate (for `127.0.0.1` and `localhost`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query: `/hook?x=1`.
    pub path: String,
    /// Header names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Recorded {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    statuses: VecDeque<u16>,
    /// How long each answer takes ([`HttpReceiver::set_pace`]).
    pace: std::time::Duration,
    /// The `Retry-After` (seconds) of 429 and 503 answers ([`HttpReceiver::set_retry_after`]).
    retry_after: Option<u64>,
    /// Whether `retry_after` is sent as an HTTP date that many seconds ahead instead
    /// ([`HttpReceiver::set_retry_after_date`]).
    retry_after_date: bool,
}

/// A running receiver; dropping it stops the server.
pub struct HttpReceiver {
    addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl HttpReceiver {
    /// Starts on a free port of 127.0.0.1; the first answers have `statuses`, the rest 200.
    /// A non-2xx answer's body is `refused with <status>`. Call inside a tokio runtime.
    pub async fn start(statuses: &[u16]) -> HttpReceiver {
        Self::start_with(statuses, None).await
    }

    /// Like [`start`](Self::start), over HTTPS; [`ca`](Self::ca) is the CA to trust. Needs the
    /// `openssl` CLI for the test certificates.
    pub async fn start_tls(statuses: &[u16]) -> HttpReceiver {
        Self::start_with(statuses, Some(super::tls_acceptor())).await
    }

    /// The CA that issued the HTTPS server's certificate (PEM file).
    pub fn ca(&self) -> std::path::PathBuf {
        super::ftpd::certs().expect("test certificates").ca.clone()
    }

    async fn start_with(statuses: &[u16], tls: Option<TlsAcceptor>) -> HttpReceiver {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(State { statuses: statuses.iter().copied().collect(), ..State::default() }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = Arc::clone(&shared);
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, Arc::clone(&state)));
                    let _ = match tls {
                        // A refused handshake (an untrusting client) just ends the connection.
                        Some(tls) => match tls.accept(stream).await {
                            Ok(stream) => http1::Builder::new().serve_connection(TokioIo::new(stream), service).await,
                            Err(_) => return,
                        },
                        None => http1::Builder::new().serve_connection(TokioIo::new(stream), service).await,
                    };
                });
            }
        });
        HttpReceiver { addr, scheme, state, task }
    }

    /// `http://127.0.0.1:PORT{path}` (`https://…` when started with TLS).
    pub fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Answers each request `pace` after recording it: a slow but healthy server.
    pub fn set_pace(&self, pace: std::time::Duration) {
        self.state.lock().expect("receiver state").pace = pace;
    }

    /// Answers 429 and 503 with `Retry-After: SECONDS`, as Slack and Teams do.
    pub fn set_retry_after(&self, seconds: u64) {
        self.state.lock().expect("receiver state").retry_after = Some(seconds);
    }

    /// Answers 429 and 503 with `Retry-After: <HTTP date>`, `seconds` from now (and a `Date`).
    pub fn set_retry_after_date(&self, seconds: u64) {
        let mut state = self.state.lock().expect("receiver state");
        (state.retry_after, state.retry_after_date) = (Some(seconds), true);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("receiver state").requests.clone()
    }
}

impl Drop for HttpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(req: Request<Incoming>, state: Arc<Mutex<State>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = std::time::Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let headers = req.headers().iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let (status, pace, retry_after, as_date) = {
        let mut state = state.lock().expect("receiver state");
        state.requests.push(Recorded { method, path, headers, body, at });
        (state.statuses.pop_front().unwrap_or(200), state.pace, state.retry_after, state.retry_after_date)
    };
    tokio::time::sleep(pace).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = if status.is_success() { "ok".to_string() } else { format!("refused with {}", status.as_u16()) };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    if let Some(seconds) = retry_after.filter(|_| matches!(status.as_u16(), 429 | 503)) {
        let now = std::time::SystemTime::now();
        let value = if as_date {
            response.headers_mut().insert(hyper::header::DATE, httpdate::fmt_http_date(now).parse().expect("a date header"));
            httpdate::fmt_http_date(now + std::time::Duration::from_secs(seconds)).parse().expect("a date header")
        } else {
            seconds.into()
        };
        response.headers_mut().insert(hyper::header::RETRY_AFTER, value);
    }
    Ok(response)
}
