//! Where a run of `wharf serve` executes: on a thread of its own, with a single-threaded
//! runtime, exactly as `wharf run` executes one.
//!
//! A run's work is a chain of hand-offs (socket, SSH session task, blocking pool, ledger
//! commits); on one thread every wake-up stays there, on the daemon's multi-threaded runtime
//! each one may cross to another thread. Measured on the benchmark's data, runs under
//! `serve` took 15–20 % longer than the same runs of `wharf run` until they got a thread
//! each (`docs/performance.md`). Runs of different flows still go side by side, one thread
//! each; the daemon's own loop, control socket and notifications stay on its runtime.

use std::future::Future;

use tokio::sync::oneshot;

/// Runs the future `make` builds to completion on a new thread named `name`, and hands its
/// output back; `Err` with a message when the thread could not start or the run panicked
/// (the panic itself is reported by the panic hook, on standard error).
///
/// Cancel-safe the way a task is: dropping the returned future (the supervisor cutting a
/// run off after `shutdown_grace`) drops the run's future at its next await, on its thread,
/// and waits for that thread to end, so nothing of the run goes on behind the caller's back
/// (a ledger written after the daemon closed it).
pub async fn on_own_thread<T, F, Fut>(name: String, make: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let (tx, rx) = oneshot::channel();
    let (cancel, cancelled) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let out = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| {
                rt.block_on(async move {
                    tokio::select! {
                        v = make() => Some(v),
                        // The sender is dropped, never used: the caller went away.
                        _ = cancelled => None,
                    }
                })
            })
            .map_err(|e| format!("cannot start the run's runtime: {e}"));
        match out {
            Ok(Some(v)) => drop(tx.send(Ok(v))),
            Ok(None) => {}
            Err(e) => drop(tx.send(Err(e))),
        }
    });
    let thread = match spawned {
        Ok(t) => Joined { cancel: Some(cancel), thread: Some(t) },
        Err(e) => return Err(format!("cannot start the run's thread: {e}")),
    };
    let out = rx.await.unwrap_or_else(|_| Err("the run stopped unexpectedly (a panic; see the log)".to_string()));
    drop(thread);
    out
}

/// The run's thread: on drop, tells it to stop (if it has not finished) and waits for it.
struct Joined {
    cancel: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        drop(self.cancel.take());
        if let Some(t) = self.thread.take() {
            // Short: a finished run's thread only tears its runtime down; a cancelled one
            // stops at its next await and waits for its blocking work (a write, an fsync).
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hands_the_output_back_and_survives_a_panic() {
        let v = on_own_thread("t".into(), || async { tokio::task::spawn_blocking(|| 6 * 7).await.unwrap() }).await;
        assert_eq!(v, Ok(42));
        let e = on_own_thread::<(), _, _>("t".into(), || async { panic!("boom") }).await.unwrap_err();
        assert!(e.contains("panic"), "{e}");
    }

    #[tokio::test]
    async fn dropping_the_future_stops_the_run_and_waits_for_its_thread() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let d = dropped.clone();
        let run = on_own_thread("t".into(), move || async move {
            let _guard = SetOnDrop(d);
            std::future::pending::<()>().await;
        });
        assert!(tokio::time::timeout(std::time::Duration::from_millis(100), run).await.is_err());
        assert!(dropped.load(Ordering::SeqCst), "the run's future was dropped before the caller went on");
    }
}
