//! The CLI's side of the control interface: one HTTP/1 request per connection, over the
//! daemon's Unix socket (or a TCP address), with a timeout on the whole exchange.
//!
//! It knows the endpoints and their replies; finding the daemon is [`super::discovery`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::{TcpStream, UnixStream};

use super::{ApiError, ControlError, Health, Status, TriggerError, TriggerReply, Triggered};

/// Longest a request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply read (a status of many flows is a few hundred KiB at most).
const MAX_REPLY: usize = 16 * 1024 * 1024;

/// A way to reach a daemon's control interface.
#[derive(Debug, Clone)]
pub struct Client {
    target: Target,
}

#[derive(Debug, Clone)]
enum Target {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// A reply: its status code and body.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Client {
    /// Talks to the daemon over its Unix socket.
    pub fn unix(socket: &Path) -> Self {
        Client { target: Target::Unix(socket.to_path_buf()) }
    }

    /// Talks to the daemon's HTTP listener.
    pub fn tcp(addr: SocketAddr) -> Self {
        Client { target: Target::Tcp(addr) }
    }

    fn at(&self) -> String {
        match &self.target {
            Target::Unix(p) => p.display().to_string(),
            Target::Tcp(a) => format!("http://{a}"),
        }
    }

    fn error(&self, message: impl std::fmt::Display) -> ControlError {
        ControlError::Client { at: self.at(), message: message.to_string() }
    }

    /// Connects and hangs up: is anyone listening? The error's kind tells why not
    /// (`ConnectionRefused`/`NotFound`: nobody).
    pub async fn probe(&self) -> std::io::Result<()> {
        let connect = async {
            match &self.target {
                Target::Unix(p) => UnixStream::connect(p).await.map(drop),
                Target::Tcp(a) => TcpStream::connect(a).await.map(drop),
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, connect)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer to connect")))
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, ControlError> {
        self.get_json("/health").await
    }

    /// `GET /status`.
    pub async fn status(&self) -> Result<Status, ControlError> {
        self.get_json("/status").await
    }

    /// `GET /metrics`: the text exposition.
    pub async fn metrics(&self) -> Result<String, ControlError> {
        let reply = self.expect_ok(Method::GET, "/metrics").await?;
        String::from_utf8(reply.body.to_vec()).map_err(|e| self.error(format_args!("/metrics: {e}")))
    }

    /// `POST /flows/FLOW/trigger`: the daemon's answer, or why there was none. A name that is
    /// not a flow name is [`TriggerError::UnknownFlow`] without asking: no flow has it, and
    /// it could not be a path segment as it is (a space, `/`, `?`, `%`…).
    pub async fn trigger(&self, flow: &str) -> Result<Result<Triggered, TriggerError>, ControlError> {
        if !crate::config::raw::is_flow_name(flow) {
            return Ok(Err(TriggerError::UnknownFlow(flow.to_string())));
        }
        let reply = self.request(Method::POST, &format!("/flows/{flow}/trigger")).await?;
        match reply.status {
            StatusCode::ACCEPTED => {
                let r: TriggerReply = self.parse(&reply)?;
                Ok(Ok(r.result))
            }
            StatusCode::NOT_FOUND if self.api_error(&reply).is_some_and(|e| e.error == "unknown_flow") => {
                Ok(Err(TriggerError::UnknownFlow(flow.to_string())))
            }
            StatusCode::UNPROCESSABLE_ENTITY => match self.api_error(&reply) {
                Some(ApiError { error, file: Some(file), problem: Some(problem), .. }) if error == "refused_flow" => {
                    Ok(Err(TriggerError::Refused { flow: flow.to_string(), file, problem }))
                }
                _ => Err(self.unexpected(&reply)),
            },
            StatusCode::CONFLICT => Ok(Err(TriggerError::AlreadyRunning(flow.to_string()))),
            StatusCode::SERVICE_UNAVAILABLE => Ok(Err(TriggerError::ShuttingDown)),
            _ => Err(self.unexpected(&reply)),
        }
    }

    /// One request with an empty body; any status is a reply.
    pub async fn request(&self, method: Method, path: &str) -> Result<Reply, ControlError> {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, "wharf")
            .body(Empty::<Bytes>::new())
            .map_err(|e| self.error(e))?;
        let exchange = async {
            match &self.target {
                Target::Unix(p) => exchange(UnixStream::connect(p).await?, req).await,
                Target::Tcp(a) => exchange(TcpStream::connect(a).await?, req).await,
            }
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(self.error(format_args!(
                "no reply within {} s: the daemon is stopped or overloaded, and may still act on the request (see `wharf status` later)",
                REQUEST_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn expect_ok(&self, method: Method, path: &str) -> Result<Reply, ControlError> {
        let reply = self.request(method, path).await?;
        if reply.status != StatusCode::OK {
            return Err(self.unexpected(&reply));
        }
        Ok(reply)
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ControlError> {
        let reply = self.expect_ok(Method::GET, path).await?;
        self.parse(&reply)
    }

    fn parse<T: DeserializeOwned>(&self, reply: &Reply) -> Result<T, ControlError> {
        serde_json::from_slice(&reply.body).map_err(|e| self.error(format_args!("unexpected reply: {e}")))
    }

    fn api_error(&self, reply: &Reply) -> Option<ApiError> {
        serde_json::from_slice(&reply.body).ok()
    }

    fn unexpected(&self, reply: &Reply) -> ControlError {
        match self.api_error(reply) {
            Some(e) => self.error(format_args!("{}: {}", reply.status, e.message)),
            None => self.error(format_args!("unexpected reply {}", reply.status)),
        }
    }
}

/// Sends `req` over a fresh connection and reads the whole reply.
async fn exchange<S>(stream: S, req: Request<Empty<Bytes>>) -> Result<Reply, Box<dyn std::error::Error + Send + Sync>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection future does the I/O; it ends when `sender` is dropped or the peer closes.
    let driver = tokio::spawn(conn);
    let res = sender.send_request(req).await?;
    let status = res.status();
    let content_type = res.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = Limited::new(res.into_body(), MAX_REPLY).collect().await?.to_bytes();
    drop(sender);
    driver.abort();
    Ok(Reply { status, content_type, body })
}
