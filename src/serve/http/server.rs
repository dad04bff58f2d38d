//! The accept loop: hyper HTTP/1.1 with keep-alive, a header-read timeout (slowloris), a
//! send timeout (slow readers, see [`crate::serve::zerocopy::Stream`]), a request-head size cap, a
//! cap on concurrent connections and one per client address, and a bounded graceful stop.
//! When every connection is taken, the one idle or stalled longest is closed to make room,
//! so slow clients can never keep `/healthz` or new readers out. The caller binds the
//! listeners and decides what "stop" means.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioTimer;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tracing::{debug, info, warn};

use super::routes::{hub_request, prepare, websub, App, Prepared};
use crate::serve::zerocopy::{Activity, Stream};

#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// 0: no limit.
    pub max_connections_per_client: usize,
    pub send_timeout: Duration,
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
            max_connections_per_client: s.max_connections_per_client,
            send_timeout: s.send_timeout,
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
    let open = Arc::new(Open::default());
    // Bodies made on request (term feeds, article pages) are made on blocking threads, as
    // many at once as there are cores: the async workers stay free for everything else.
    let renders = Arc::new(Semaphore::new(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    ));
    let graceful = Arc::new(GracefulShutdown::new());
    let shared = Shared {
        app,
        limits: limits.clone(),
        permits,
        open,
        renders,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut loops = tokio::task::JoinSet::new();
    for listener in listeners {
        loops.spawn(accept_loop(
            listener,
            shared.clone(),
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

/// A connection that is open: its address, its activity, and how to close it.
struct Conn {
    ip: IpAddr,
    activity: Arc<Activity>,
    close: Arc<Notify>,
}

/// The open connections, for the per-client cap and for choosing which to close.
#[derive(Default)]
struct Open {
    conns: Mutex<OpenConns>,
}

#[derive(Default)]
struct OpenConns {
    next: u64,
    by_id: HashMap<u64, Conn>,
    per_ip: HashMap<IpAddr, usize>,
}

/// A connection idle or stalled at least this long may be closed to make room.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);

impl Open {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenConns> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection from `ip`, or None when that address holds `cap` already.
    fn add(&self, ip: IpAddr, cap: usize, activity: Arc<Activity>) -> Option<(u64, Arc<Notify>)> {
        let mut o = self.lock();
        let n = o.per_ip.entry(ip).or_default();
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        let id = o.next;
        o.next += 1;
        let close = Arc::new(Notify::new());
        o.by_id.insert(
            id,
            Conn {
                ip,
                activity,
                close: close.clone(),
            },
        );
        Some((id, close))
    }

    fn remove(&self, id: u64) {
        let mut o = self.lock();
        if let Some(c) = o.by_id.remove(&id) {
            if let Some(n) = o.per_ip.get_mut(&c.ip) {
                *n -= 1;
                if *n == 0 {
                    o.per_ip.remove(&c.ip);
                }
            }
        }
    }

    /// Closes the connection idle or stalled longest, if that is at least
    /// [`EVICTABLE_AFTER`]; true if one was.
    fn evict_one(&self) -> bool {
        let o = self.lock();
        let oldest = o
            .by_id
            .values()
            .map(|c| (c.activity.idle_for(), c))
            .filter(|(idle, _)| *idle >= EVICTABLE_AFTER)
            .max_by_key(|(idle, _)| *idle);
        match oldest {
            Some((idle, c)) => {
                debug!(peer = %c.ip, idle_ms = idle.as_millis() as u64, "closing the longest idle connection to make room");
                c.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// What every accept loop of a server shares.
#[derive(Clone)]
struct Shared {
    app: Arc<App>,
    limits: Limits,
    /// One per connection: `max_connections`.
    permits: Arc<Semaphore>,
    open: Arc<Open>,
    /// One per body being made on a blocking thread.
    renders: Arc<Semaphore>,
}

async fn accept_loop(
    listener: TcpListener,
    shared: Shared,
    graceful: Arc<GracefulShutdown>,
    mut stop: watch::Receiver<bool>,
) {
    let Shared {
        app,
        limits,
        permits,
        open,
        renders,
    } = shared;
    let builder = {
        let mut b = http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes.max(8192))
            .keep_alive(true);
        b
    };
    loop {
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
        let activity = Arc::new(Activity::new());
        let Some((id, close)) = open.add(
            peer.ip(),
            limits.max_connections_per_client,
            activity.clone(),
        ) else {
            app.metrics.connections_refused.fetch_add(1, Relaxed);
            debug!(peer = %peer, "refused: the client holds max_connections_per_client");
            continue;
        };
        // A permit, making room if every connection is taken: the connection idle or stalled
        // longest goes. Only if none has been for a second does the new one wait.
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if open.evict_one() {
                    app.metrics.connections_evicted.fetch_add(1, Relaxed);
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = stop.changed() => return,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        app.metrics.connections_total.fetch_add(1, Relaxed);
        app.metrics.connections_open.fetch_add(1, Relaxed);
        let app = app.clone();
        let svc_app = app.clone();
        let renders = renders.clone();
        let peer_ip = peer.ip();
        let service = service_fn(move |req| {
            let hub = hub_request(&req, &svc_app);
            let prepared = hub.is_none().then(|| prepare(&req, &svc_app));
            let (app, renders) = (svc_app.clone(), renders.clone());
            async move {
                let Some(prepared) = prepared else {
                    let hub = hub.expect("a request is for the hub or prepared");
                    return Ok::<_, Infallible>(websub(hub, req, peer_ip, &app).await);
                };
                let resp = match prepared {
                    Prepared::Done(r) => r,
                    Prepared::NeedsBody(job) => {
                        let _slot = renders.acquire_owned().await;
                        let made = tokio::task::spawn_blocking(move || job.finish(&app)).await;
                        // A panic while rendering is a bug; the connection gets a 500.
                        made.unwrap_or_else(|_| {
                            let mut r = hyper::Response::new(http_body_util::Full::new(
                                bytes::Bytes::from_static(b"internal error\n"),
                            ));
                            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                            r
                        })
                    }
                };
                Ok::<_, Infallible>(resp)
            }
        });
        let conn =
            builder.serve_connection(Stream::new(stream, activity, limits.send_timeout), service);
        let conn = graceful.watch(conn);
        let open = open.clone();
        tokio::spawn(async move {
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        debug!(peer = %peer, error = %e, "connection closed with an error");
                    }
                }
                _ = close.notified() => {}
            }
            open.remove(id);
            app.metrics.connections_open.fetch_sub(1, Relaxed);
            drop(permit);
        });
    }
}
