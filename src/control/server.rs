//! The control interface's HTTP/1 server: a Unix socket for the CLI, and optionally a TCP
//! listener for Prometheus.
//!
//! Endpoints, nothing else (others: 404; a known path with another method: 405):
//! - `GET /health`: 200, [`Health`] as JSON;
//! - `GET /metrics`: 200, the Prometheus text exposition (format 0.0.4);
//! - `GET /status`: 200, [`Status`] as JSON;
//! - `POST /flows/NAME/trigger`: 202 [`TriggerReply`] (started or queued), 404 unknown flow,
//!   422 its flow file refused (the body names the file and the first problem), 409 running
//!   already, 503 shutting down. Unix socket only: over TCP, 403. The socket is
//!   the owner's alone (mode 0600); a TCP port is open to every local user, or further with
//!   `allow_remote`, and an unauthenticated "start a partner transfer now" does not belong
//!   there.
//!
//! Bodies are small (a request body over 1 KiB: 413), headers must arrive within 10 s (which
//! also closes idle keep-alive connections), a handler answers within 30 s, and at most 64
//! connections are served at once on each listener: the TCP port's, open to every local user,
//! never crowd the owner out of the socket. On shutdown the listeners close, connections finish their
//! request, and the socket and discovery file are removed.
//!
//! This module owns transport and routing; what the answers say comes from the [`Daemon`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SubsecRound, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::discovery::{ServeInfo, set_owner_only};
use super::{ApiError, ControlError, Daemon, Health, ListenConfig, TriggerError, TriggerReply, Triggered};

const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const HANDLER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connections get to finish their request after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
const MAX_REQUEST_BODY: usize = 1024;
/// `sun_path` holds 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;
const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bound listeners, not serving yet: binding fails early (socket in use, bad address) before
/// the daemon starts anything.
#[derive(Debug)]
pub struct Server {
    unix: std::os::unix::net::UnixListener,
    tcp: Option<std::net::TcpListener>,
    info: ServeInfo,
    files: Cleanup,
}

/// Removes the socket and discovery file when the server ends, however it ends.
#[derive(Debug)]
struct Cleanup {
    socket: PathBuf,
    info: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        ServeInfo::remove_if_ours(&self.info);
    }
}

/// What a listener may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// The owner's socket: everything.
    Full,
    /// TCP: reading only.
    ReadOnly,
}

impl Server {
    /// Binds the Unix socket (owner-only; a stale one from a killed daemon is replaced, a live
    /// one is [`ControlError::AlreadyServing`]) and the TCP listener, then writes the discovery
    /// file beside the socket. Call within a Tokio runtime's context or not; serving needs one.
    pub fn bind(listen: &ListenConfig) -> Result<Server, ControlError> {
        listen.check()?;
        let socket = listen.socket.clone();
        let tmp = socket.with_extension("sock.new");
        for p in [&socket, &tmp] {
            let len = p.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(ControlError::SocketPathTooLong(p.clone(), len));
            }
        }
        let sock_err = |source| ControlError::Socket { path: socket.clone(), source };
        if let Some(dir) = socket.parent() {
            std::fs::create_dir_all(dir).map_err(sock_err)?;
        }
        clear_stale(&socket)?;
        // Bound under a temporary name, restricted, then renamed into place: nobody can connect
        // through the final path before the mode is 0600.
        let _ = std::fs::remove_file(&tmp);
        let unix = std::os::unix::net::UnixListener::bind(&tmp).map_err(sock_err)?;
        let mut files = Cleanup { socket: tmp.clone(), info: socket.with_file_name(super::discovery::INFO_NAME) };
        set_owner_only(&tmp).map_err(sock_err)?;
        std::fs::rename(&tmp, &socket).map_err(sock_err)?;
        files.socket = socket.clone();
        unix.set_nonblocking(true).map_err(sock_err)?;

        let tcp = match listen.tcp {
            Some(addr) => {
                let tcp_err = |source| ControlError::Tcp { addr, source };
                let l = std::net::TcpListener::bind(addr).map_err(tcp_err)?;
                l.set_nonblocking(true).map_err(tcp_err)?;
                Some(l)
            }
            None => None,
        };
        let info = ServeInfo {
            pid: std::process::id(),
            socket: socket.clone(),
            http: tcp.as_ref().and_then(|l| l.local_addr().ok()),
            // Whole milliseconds, as the discovery file keeps it (`crate::timestamp`).
            started_at: Utc::now().trunc_subsecs(3),
            version: crate::VERSION.to_string(),
        };
        info.write(&files.info)?;
        Ok(Server { unix, tcp, info, files })
    }

    /// The TCP address actually bound (port 0 resolved).
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.info.http
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.info.socket
    }

    /// What the discovery file says.
    pub fn info(&self) -> &ServeInfo {
        &self.info
    }

    /// Serves `daemon` until `shutdown` completes; then stops accepting, gives connections
    /// a few seconds to finish their request, and removes the socket and discovery file.
    pub async fn run(self, daemon: Arc<dyn Daemon>, shutdown: impl Future<Output = ()> + Send) -> Result<(), ControlError> {
        let Server { unix, tcp, info, files } = self;
        let unix = tokio::net::UnixListener::from_std(unix).map_err(|source| ControlError::Socket { path: info.socket.clone(), source })?;
        let tcp = match (tcp, info.http) {
            (Some(l), Some(addr)) => Some(tokio::net::TcpListener::from_std(l).map_err(|source| ControlError::Tcp { addr, source })?),
            _ => None,
        };
        info!(socket = %info.socket.display(), http = info.http.map(tracing::field::display), "Control interface listening.");
        let ctx = Arc::new(Ctx { daemon, started: Instant::now() });
        // One pool per listener: 64 idle connections to the TCP port (any local user may open
        // them) closed every new one on the socket too, `wharf status` and `trigger` included.
        let (unix_slots, tcp_slots) = (Arc::new(Semaphore::new(MAX_CONNECTIONS)), Arc::new(Semaphore::new(MAX_CONNECTIONS)));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => continue,
                r = unix.accept() => r.map(|(s, _)| Conn::Unix(s)),
                r = accept_tcp(tcp.as_ref()) => r.map(|(s, _)| Conn::Tcp(s)),
            };
            let conn = match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    warn!(error = %e, "Control interface: accept failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let slots = match conn {
                Conn::Unix(_) => &unix_slots,
                Conn::Tcp(_) => &tcp_slots,
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                debug!("Control interface: too many connections; closing a new one.");
                continue;
            };
            let ctx = ctx.clone();
            let stop = stop_rx.clone();
            conns.spawn(async move {
                match conn {
                    Conn::Unix(s) => serve_connection(TokioIo::new(s), ctx, Access::Full, stop).await,
                    Conn::Tcp(s) => serve_connection(TokioIo::new(s), ctx, Access::ReadOnly, stop).await,
                }
                drop(slot);
            });
        }
        drop((unix, tcp));
        let _ = stop_tx.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, async { while conns.join_next().await.is_some() {} }).await.is_err() {
            conns.abort_all();
        }
        drop(files);
        info!("Control interface stopped.");
        Ok(())
    }
}

/// Binds per `listen` and serves `daemon` until `shutdown` completes (see [`Server`]).
pub async fn serve(listen: &ListenConfig, daemon: Arc<dyn Daemon>, shutdown: impl Future<Output = ()> + Send) -> Result<(), ControlError> {
    Server::bind(listen)?.run(daemon, shutdown).await
}

/// Removes a socket file nobody listens on; refuses when a daemon answers there or the path
/// is something else than a socket.
fn clear_stale(socket: &Path) -> Result<(), ControlError> {
    let Ok(meta) = std::fs::symlink_metadata(socket) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        let source = std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists and is not a socket");
        return Err(ControlError::Socket { path: socket.to_path_buf(), source });
    }
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Err(ControlError::AlreadyServing(socket.to_path_buf())),
        Err(_) => std::fs::remove_file(socket).map_err(|source| ControlError::Socket { path: socket.to_path_buf(), source }),
    }
}

enum Conn {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept_tcp(l: Option<&tokio::net::TcpListener>) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

struct Ctx {
    daemon: Arc<dyn Daemon>,
    started: Instant,
}

async fn serve_connection<I>(io: I, ctx: Arc<Ctx>, access: Access, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(route(req, &ctx, access).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        // Sent once, at shutdown (an error: the server is gone, which means the same).
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "Control connection ended with an error.");
    }
}

async fn route(req: Request<Incoming>, ctx: &Ctx, access: Access) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let trigger = path.strip_prefix("/flows/").and_then(|rest| rest.strip_suffix("/trigger")).filter(|f| !f.is_empty() && !f.contains('/'));
    let allowed = match (path.as_str(), trigger) {
        ("/health" | "/metrics" | "/status", _) => "GET",
        (_, Some(_)) => "POST",
        _ => return error(StatusCode::NOT_FOUND, "not_found", format!("no endpoint {path}")),
    };
    if req.method().as_str() != allowed {
        let mut res = error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", format!("{path} takes {allowed} only"));
        res.headers_mut().insert(ALLOW, HeaderValue::from_static(allowed));
        return res;
    }
    match (path.as_str(), trigger) {
        ("/health", _) => json(
            StatusCode::OK,
            &Health {
                status: "ok".into(),
                version: crate::VERSION.into(),
                pid: std::process::id(),
                uptime_seconds: ctx.started.elapsed().as_secs(),
            },
        ),
        ("/metrics", _) => {
            let mut res = Response::new(Full::new(Bytes::from(ctx.daemon.metrics().render())));
            res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
            res
        }
        ("/status", _) => json(StatusCode::OK, &ctx.daemon.status()),
        (_, Some(flow)) => {
            if access != Access::Full {
                return error(StatusCode::FORBIDDEN, "forbidden", "triggers are taken on the control socket only (`wharf trigger`)".into());
            }
            // Nothing is read from the body, but a large one is refused rather than drained.
            if Limited::new(req.into_body(), MAX_REQUEST_BODY).collect().await.is_err() {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("request bodies are limited to {MAX_REQUEST_BODY} bytes"),
                );
            }
            trigger_flow(ctx, flow).await
        }
        _ => error(StatusCode::NOT_FOUND, "not_found", format!("no endpoint {path}")),
    }
}

async fn trigger_flow(ctx: &Ctx, flow: &str) -> Response<Full<Bytes>> {
    let answer = match tokio::time::timeout(HANDLER_TIMEOUT, ctx.daemon.trigger(flow)).await {
        Ok(a) => a,
        Err(_) => {
            return error(StatusCode::GATEWAY_TIMEOUT, "timeout", format!("flow {flow}: the daemon did not answer the trigger in time"));
        }
    };
    match answer {
        Ok(result) => {
            // Said as the reply says it (`started`, `queued`), not as Rust's Debug (`Started`).
            let said = match result {
                Triggered::Started => "started",
                Triggered::Queued => "queued",
            };
            info!(flow = %flow, result = %said, "Run triggered over the control socket.");
            json(StatusCode::ACCEPTED, &TriggerReply { flow: flow.to_string(), result })
        }
        Err(e) => {
            let (status, code) = match e {
                TriggerError::UnknownFlow(_) => (StatusCode::NOT_FOUND, "unknown_flow"),
                TriggerError::Refused { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "refused_flow"),
                TriggerError::AlreadyRunning(_) => (StatusCode::CONFLICT, "already_running"),
                TriggerError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            };
            let mut body = ApiError { error: code.to_string(), message: e.to_string(), file: None, problem: None };
            if let TriggerError::Refused { file, problem, .. } = e {
                (body.file, body.problem) = (Some(file), Some(problem));
            }
            json(status, &body)
        }
    }
}

fn json(status: StatusCode, body: &impl Serialize) -> Response<Full<Bytes>> {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut res = Response::new(Full::new(Bytes::from(bytes)));
            *res.status_mut() = status;
            res.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            res
        }
        Err(e) => {
            let mut res = Response::new(Full::new(Bytes::from(format!("cannot encode the reply: {e}"))));
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            res
        }
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response<Full<Bytes>> {
    json(status, &ApiError { error: code.to_string(), message, file: None, problem: None })
}
