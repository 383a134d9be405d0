//! The sandbox servers' accept loop and their stop, shared by SFTP and FTP.
//!
//! Owns accepting connections on a bound listener, running each on its own task, and
//! stopping: when told to, the loop stops accepting, closes the listening socket (so the port
//! can be bound again at once) and waits for every connection task, which sees the stop
//! through its [`Stopped`] and ends its session (each protocol says goodbye its own way).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// A server's view of "stop now", handed to each connection.
#[derive(Clone)]
pub struct Stopped(watch::Receiver<bool>);

impl Stopped {
    /// Completes once the server is told to stop (or its handle is gone).
    pub async fn wait(&mut self) {
        // The guard `wait_for` returns is not Send: dropped here, never held across an await.
        let _ = self.0.wait_for(|s| *s).await.map(drop);
    }
}

/// A running server: its accept loop and every connection it took.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves on `listener` (already bound) until [`stop`](Self::stop): each accepted
    /// connection runs `serve(socket, peer, stopped)` on its own task. `name` is for logs.
    pub fn start<F, Fut>(listener: TcpListener, name: &'static str, serve: F) -> io::Result<Server>
    where
        F: Fn(TcpStream, SocketAddr, Stopped) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, name, serve, Stopped(stopped)));
        Ok(Server { addr, stop, task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, releases the port, ends every connection; returns when done.
    pub async fn stop(self) {
        // Err only when the loop is gone already (it ended by itself).
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "A sandbox accept loop ended abnormally.");
        }
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, name: &'static str, serve: F, mut stopped: Stopped)
where
    F: Fn(TcpStream, SocketAddr, Stopped) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    sessions.spawn(serve(socket, peer, stopped.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(server = name, error = %e, "Cannot accept a connection.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    while sessions.join_next().await.is_some() {}
}
