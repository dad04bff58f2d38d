//! The accept loop: hyper HTTP/1.1 with keep-alive, a header-read timeout (slowloris), a
//! request-head size cap, a cap on concurrent connections, and a bounded graceful stop.
//! The caller binds the listeners and decides what "stop" means.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use super::routes::{respond, App};

#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Limits {
    pub fn from_config(s: &crate::config::ServerConfig) -> Limits {
        Limits {
            // hyper runs this timer while waiting for a request head, including between
            // keep-alive requests: it is also the idle timeout.
            header_read_timeout: s.header_read_timeout.min(s.idle_timeout),
            max_header_bytes: s.max_header_bytes,
            max_connections: s.max_connections,
            shutdown_grace: s.shutdown_grace,
        }
    }
}

/// Serves until `shutdown` completes, then stops accepting and gives in-flight requests up to
/// the grace period.
pub async fn run(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = Arc::new(GracefulShutdown::new());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(
            listener,
            app.clone(),
            limits.clone(),
            permits.clone(),
            graceful.clone(),
            stop_rx.clone(),
        ));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while loops.join_next().await.is_some() {}
    info!("stopped accepting; finishing in-flight requests");
    // The accept loops are done, so this is the last reference.
    let Ok(graceful) = Arc::try_unwrap(graceful) else {
        return;
    };
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            grace_ms = limits.shutdown_grace.as_millis() as u64,
            "connections still open after the grace period; closing them"
        );
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    permits: Arc<Semaphore>,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = {
        let mut b = http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true);
        b
    };
    loop {
        // A permit first: past the connection cap, clients wait in the kernel's backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        app.metrics.connections_total.fetch_add(1, Relaxed);
        app.metrics.connections_open.fetch_add(1, Relaxed);
        let app = app.clone();
        let svc_app = app.clone();
        let service = service_fn(move |req| {
            let resp = respond(&req, &svc_app);
            async move { Ok::<_, Infallible>(resp) }
        });
        let conn = builder.serve_connection(crate::zerocopy::Stream::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(peer = %peer, error = %e, "connection closed with an error");
            }
            app.metrics.connections_open.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
}
