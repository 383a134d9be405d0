//! Retry of transient errors within a run: exponential backoff with jitter.
//!
//! The only place retry decisions are made, always from the error's kind and type
//! ([`FileError::retried_in_run`]), never from messages.

use std::future::Future;
use std::time::Duration;

use crate::config::Flow;
use crate::config::flow::Retry;

use super::error::FileError;

/// Runs `op` up to `flow`'s `retry.attempts` times while it fails with a transient error,
/// each retry logged with the flow's name (a daemon runs many flows at once).
pub async fn retry<T, F, Fut>(flow: &Flow, what: &str, op: F) -> Result<T, FileError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FileError>>,
{
    retry_as(&flow.name, flow.retry, what, op).await
}

/// [`retry`] under `policy`, its retries logged as `flow`'s.
pub(super) async fn retry_as<T, F, Fut>(flow: &str, policy: Retry, what: &str, mut op: F) -> Result<T, FileError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, FileError>>,
{
    let mut delay = policy.backoff;
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.retried_in_run() && attempt < policy.attempts.max(1) => {
                let wait = jitter(delay);
                tracing::warn!(flow = %flow, what = %what, attempt, error = %e, wait_ms = wait.as_millis() as u64, "Transient failure; retrying.");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(60));
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// ±25 % jitter so many flows retrying at once do not hit a server in lockstep.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|t| t.subsec_nanos()).unwrap_or(0);
    let factor = 0.75 + (nanos % 1000) as f64 / 2000.0;
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{EndpointError, ErrorKind, Op};
    use std::cell::Cell;

    fn err(kind: ErrorKind) -> FileError {
        FileError::Endpoint(EndpointError::new(kind, Op::Read, "test", None, "boom"))
    }

    /// Each retry is logged with its flow's name (was: only what was retried, which of a
    /// daemon's flows unknown).
    #[tokio::test]
    async fn retries_transient_then_gives_up() {
        let n = Cell::new(0);
        let p = Retry { attempts: 3, backoff: Duration::from_millis(1), give_up_after: 0 };
        let log = crate::log_capture::Log::default();
        let guard = log.capture();
        let r: Result<(), _> = retry_as("acme-orders", p, "upload", || {
            n.set(n.get() + 1);
            async { Err(err(ErrorKind::Transient)) }
        })
        .await;
        drop(guard);
        assert!(r.is_err());
        assert_eq!(n.get(), 3);
        let text = log.text();
        let retried: Vec<&str> = text.lines().filter(|l| l.contains("Transient failure; retrying.")).collect();
        assert_eq!(retried.len(), 2, "{retried:#?}");
        assert!(retried.iter().all(|l| l.contains("flow=acme-orders what=upload")), "{retried:#?}");
    }

    #[tokio::test]
    async fn permanent_errors_are_not_retried_and_success_stops() {
        let n = Cell::new(0);
        let p = Retry { attempts: 5, backoff: Duration::from_millis(1), give_up_after: 0 };
        let r: Result<(), _> = retry_as("f", p, "t", || {
            n.set(n.get() + 1);
            async { Err(err(ErrorKind::PermissionDenied)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(n.get(), 1);
        let m = Cell::new(0);
        let ok = retry_as("f", p, "t", || {
            m.set(m.get() + 1);
            let fail = m.get() < 2;
            async move { if fail { Err(err(ErrorKind::Transient)) } else { Ok(7) } }
        })
        .await
        .unwrap();
        assert_eq!((ok, m.get()), (7, 2));
    }
}
