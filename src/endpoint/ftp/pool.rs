//! A small pool of logged-in control connections per endpoint.
//!
//! FTP carries one transfer per control connection, so parallel work needs more logins: the
//! pool hands out at most `max_connections` at a time ([`Lease`]s), keeps returned ones for
//! reuse, drops one the server spoke on or hung up while it sat idle (an idle timeout's `421`:
//! seen without sending anything), checks with `NOOP` that one idle for a while is still
//! alive, and drops those idle so long that the server has probably closed them. A lease that is dropped instead of returned
//! closes its connection: after an error or an abandoned transfer the connection's state is
//! unknown, and a fresh login is cheaper than a wrong assumption. A server that allows fewer
//! sessions than `max_connections` (per address or per user, common on partners' servers)
//! turns the extra logins away; the pool then goes on with the logins it has instead of
//! failing files (see [`Pool::acquire`]). A login turned away while this pool has none, but
//! another endpoint of this process holds idle ones to the same server and user (a flow whose
//! source and sinks are that server under other roots or names, or two flows of `wharf
//! serve`), closes those idle logins and tries again: the server's limit is shared, and a
//! login kept for reuse must not stop the work. It does not retry operations;
//! `super::FtpEndpoint::attempt` does (once, after a dropped connection; for an operation
//! that must not run twice, only on a reused login the server closed before running it).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::connect::{Conn, ConnectError, Connector, within};
use crate::endpoint::{EndpointError, ErrorKind, Op};

/// A connection idle longer than this is checked with `NOOP` before it is used again.
const CHECK_AFTER: Duration = Duration::from_secs(5);
/// A connection idle longer than this is closed instead of reused (servers commonly time out
/// idle sessions after a few minutes, firewalls sooner).
const MAX_IDLE: Duration = Duration::from_secs(120);
/// Waits before each new login after idle ones of other endpoints were closed for it: the
/// server counts a session until its process has seen the close.
const AFTER_CLOSING: [Duration; 5] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
];

/// Every pool of this process, to find those logged in to the same server as the same user.
static POOLS: Mutex<Vec<Weak<Pool>>> = Mutex::new(Vec::new());

pub(super) struct Pool {
    connector: Connector,
    label: String,
    /// `user@host:port`: pools with the same one share the server's session limit.
    server: String,
    /// `max_connections`, less the logins the server turned away.
    max: AtomicUsize,
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<Idle>>,
    /// Leases given back or dropped so far, and pieces moved by the transfers holding the
    /// others: a waiting [`acquire`](Pool::acquire) keeps waiting as long as this moves.
    activity: Arc<AtomicU64>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// A connection on loan. [`release`](Self::release) gives it back for reuse; dropping it
/// closes the connection.
pub(super) struct Lease {
    conn: Conn,
    /// Made for this lease (not taken from the idle ones).
    pub fresh: bool,
    pool: Arc<Pool>,
    _permit: Permit,
}

/// A slot of the pool; counts as activity when dropped (given back).
struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    activity: Arc<AtomicU64>,
}

impl Permit {
    /// Gives the slot up for good: the pool has one fewer from now on.
    fn forget(mut self) {
        if let Some(p) = self.permit.take() {
            p.forget();
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.activity.fetch_add(1, Ordering::SeqCst);
    }
}

impl Deref for Lease {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.conn
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

impl Lease {
    /// Returns the connection to the pool; only for a connection known to be in step (no
    /// transfer open, last reply read).
    pub fn release(self) {
        let Lease { conn, pool, _permit, .. } = self;
        if let Ok(mut idle) = pool.idle.lock() {
            idle.push(Idle { conn, since: Instant::now() });
        }
    }
}

impl Pool {
    pub fn new(connector: Connector, label: String) -> Arc<Pool> {
        let max = connector.spec().max_connections.max(1);
        let spec = connector.spec();
        let server = format!("{}@{}:{}", spec.user, spec.host, spec.port);
        let pool = Arc::new(Pool {
            connector,
            label,
            server,
            max: AtomicUsize::new(max),
            permits: Arc::new(Semaphore::new(max)),
            idle: Mutex::new(Vec::new()),
            activity: Arc::default(),
        });
        let mut pools = crate::sync::lock(&POOLS);
        pools.retain(|p| p.strong_count() > 0);
        pools.push(Arc::downgrade(&pool));
        pool
    }

    /// `max_connections`, or fewer once the server turned logins away.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }

    /// A transfer holding a connection moved a piece of data (see [`acquire`](Self::acquire)).
    pub fn moved(&self) {
        self.activity.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// A connection: an idle one that still answers, or a new login. Waits for a free slot
    /// (slots are handed out in turn) for as long as connections keep being given back or
    /// the transfers holding them keep moving data; when neither happened for as long as one
    /// operation may take, the caller gets an error instead of waiting forever (every
    /// connection held by something that does not finish: a stream left open and idle). A new login the server turns away while others of this pool are
    /// live means the server's session limit is reached: that slot is given up and the
    /// caller waits for one of the live logins instead.
    pub async fn acquire(self: &Arc<Self>) -> Result<Lease, EndpointError> {
        loop {
            let permit = self.permit().await?;
            if let Some(lease) = self.lease(permit).await? {
                return Ok(lease);
            }
        }
    }

    /// A free slot, waiting as [`acquire`](Self::acquire) says.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, EndpointError> {
        let wait = self.connector.spec().connect_timeout + self.connector.spec().operation_timeout;
        let acquiring = self.permits.clone().acquire_owned();
        tokio::pin!(acquiring);
        let mut seen = self.activity.load(Ordering::SeqCst);
        loop {
            match tokio::time::timeout(wait, &mut acquiring).await {
                Ok(Ok(p)) => return Ok(p),
                Err(_) if self.activity.load(Ordering::SeqCst) != seen => seen = self.activity.load(Ordering::SeqCst),
                // The semaphore is never closed; treat it like a timeout if it ever were.
                Ok(Err(_)) | Err(_) => {
                    return Err(EndpointError::new(
                        ErrorKind::Transient,
                        Op::Connect,
                        self.label.clone(),
                        None,
                        format!(
                            "all {} connections to the server stayed busy for {} s, none given back (max_connections)",
                            self.max(),
                            wait.as_secs()
                        ),
                    ));
                }
            }
        }
    }

    /// A connection when one is free right now (below `max_connections`), else `None`.
    pub async fn try_acquire(self: &Arc<Self>) -> Option<Result<Lease, EndpointError>> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        self.lease(permit).await.transpose()
    }

    /// An idle connection that still answers, or a new login, for `permit`; `None` when the
    /// server turned the login away at its session limit (the slot is given up).
    async fn lease(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Result<Option<Lease>, EndpointError> {
        let permit = Permit { permit: Some(permit), activity: Arc::clone(&self.activity) };
        loop {
            let next = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(Idle { mut conn, since }) = next else { break };
            let idle_for = since.elapsed();
            if idle_for > MAX_IDLE {
                tracing::debug!(endpoint = %self.label, idle_s = idle_for.as_secs(), "Closing a connection idle too long.");
                continue;
            }
            if conn.spoke_while_idle().await {
                tracing::debug!(endpoint = %self.label, idle_s = idle_for.as_secs(), "The server closed an idle connection; dropping it.");
                continue;
            }
            if idle_for > CHECK_AFTER {
                let limit = conn.timeout.min(Duration::from_secs(10));
                if let Err(e) = within(limit, conn.ftp.noop()).await {
                    tracing::debug!(endpoint = %self.label, error = %e, "An idle connection did not answer NOOP; dropping it.");
                    continue;
                }
            }
            return Ok(Some(Lease { conn, fresh: false, pool: self.clone(), _permit: permit }));
        }
        match self.login().await {
            Ok(conn) => Ok(Some(Lease { conn, fresh: true, pool: self.clone(), _permit: permit })),
            Err(ConnectError { error, turned_away: true }) if self.others_live() => {
                permit.forget();
                let before = self.max.fetch_sub(1, Ordering::SeqCst);
                let left = before - 1;
                // The first login turned away warns; the ones after it only shrink the pool.
                if before == self.connector.spec().max_connections.max(1) {
                    tracing::warn!(
                        endpoint = %self.label,
                        error = %error.message,
                        "The server turned away a login while others were open (a limit of sessions per user or address); going on with the logins it accepted. Setting max_connections to that number spares it the extra logins."
                    );
                }
                tracing::debug!(endpoint = %self.label, logins = left, "Fewer logins.");
                Ok(None)
            }
            Err(ConnectError { error, .. }) => Err(error),
        }
    }

    /// A new login. Turned away while this pool has no other, it closes the idle logins other
    /// pools of this process keep to the same server as the same user, and tries again
    /// (a few times, while the server sees them close).
    async fn login(&self) -> Result<Conn, ConnectError> {
        let first = match self.connector.connect().await {
            Err(e) if e.turned_away && !self.others_live() => e,
            done => return done,
        };
        let closed = self.close_idle_of_others();
        if closed == 0 {
            return Err(first);
        }
        tracing::debug!(endpoint = %self.label, closed, "Login turned away; closed idle logins of other endpoints to the same server for it.");
        let mut last = first;
        for wait in AFTER_CLOSING {
            tokio::time::sleep(wait).await;
            match self.connector.connect().await {
                Err(e) if e.turned_away => last = e,
                done => return done,
            }
        }
        Err(last)
    }

    /// Closes the idle logins of the other pools to this one's server and user; how many.
    fn close_idle_of_others(&self) -> usize {
        let others: Vec<Arc<Pool>> = crate::sync::lock(&POOLS)
            .iter()
            .filter_map(Weak::upgrade)
            .filter(|p| !std::ptr::eq(Arc::as_ptr(p), self) && p.server == self.server)
            .collect();
        others.iter().map(|p| p.idle.lock().map(|mut idle| idle.drain(..).count()).unwrap_or(0)).sum()
    }

    /// Logins of this pool besides the one just made (or being made): held by leases, or idle.
    fn others_live(&self) -> bool {
        let held = self.max().saturating_sub(self.permits.available_permits() + 1);
        held > 0 || self.idle.lock().is_ok_and(|idle| !idle.is_empty())
    }

    /// Closes every idle connection (after one turned out dead: the others probably are too).
    pub fn discard_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}
