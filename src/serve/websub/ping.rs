//! Pings to external hubs: after a publish, `hub.mode=publish` with the URL of every feed
//! whose bytes changed, one request per hub carrying up to [`URLS_PER_PING`] URLs. A queue
//! per hub, a set of URLs: a feed that changes again while queued is pinged once, and a hub
//! that is down holds at most one entry per feed. A failed ping is retried with exponential
//! backoff and jitter for up to an hour, then dropped (and counted).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::serve::metrics::Metrics;

/// Feed URLs in one ping.
pub const URLS_PER_PING: usize = 100;
/// How long a ping is retried before it is dropped.
const GIVE_UP_AFTER: Duration = Duration::from_secs(3600);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What is waiting for one hub.
struct Queue {
    hub: url::Url,
    pending: Mutex<BTreeSet<String>>,
    wake: Notify,
}

/// The queues of every external hub, each drained by a task of its own.
pub struct Pinger {
    queues: Vec<Arc<Queue>>,
}

impl Pinger {
    pub fn start(hubs: &[url::Url], client: reqwest::Client, metrics: Arc<Metrics>) -> Pinger {
        let queues: Vec<Arc<Queue>> = hubs
            .iter()
            .map(|hub| {
                Arc::new(Queue {
                    hub: hub.clone(),
                    pending: Mutex::new(BTreeSet::new()),
                    wake: Notify::new(),
                })
            })
            .collect();
        for q in &queues {
            tokio::spawn(drain(q.clone(), client.clone(), metrics.clone()));
        }
        Pinger { queues }
    }

    /// Queues `urls` for every hub (coalesced with what is queued already).
    pub fn queue(&self, urls: &[String], metrics: &Metrics) {
        if urls.is_empty() {
            return;
        }
        for q in &self.queues {
            let mut pending = q.pending.lock().unwrap_or_else(|e| e.into_inner());
            let before = pending.len();
            pending.extend(urls.iter().cloned());
            metrics
                .websub_pings_queued
                .fetch_add((pending.len() - before) as u64, Relaxed);
            drop(pending);
            q.wake.notify_one();
        }
    }
}

/// Pings one hub with what is queued for it, for as long as the daemon runs.
async fn drain(q: Arc<Queue>, client: reqwest::Client, metrics: Arc<Metrics>) {
    loop {
        let batch: Vec<String> = {
            let mut pending = q.pending.lock().unwrap_or_else(|e| e.into_inner());
            let batch: Vec<String> = pending.iter().take(URLS_PER_PING).cloned().collect();
            for u in &batch {
                pending.remove(u);
            }
            batch
        };
        if batch.is_empty() {
            q.wake.notified().await;
            continue;
        }
        let first_try = Instant::now();
        let mut backoff = Duration::from_secs(1);
        loop {
            match ping(&client, &q.hub, &batch).await {
                Ok(()) => {
                    debug!(hub = %q.hub, urls = batch.len(), "hub pinged");
                    metrics
                        .websub_pings_sent
                        .fetch_add(batch.len() as u64, Relaxed);
                    break;
                }
                Err(e) if first_try.elapsed() + backoff > GIVE_UP_AFTER => {
                    warn!(hub = %q.hub, urls = batch.len(), error = %e, "hub ping failed for an hour; dropped");
                    metrics
                        .websub_pings_failed
                        .fetch_add(batch.len() as u64, Relaxed);
                    break;
                }
                Err(e) => {
                    warn!(hub = %q.hub, error = %e, retry_in_s = backoff.as_secs(), "hub ping failed; will retry");
                    metrics.websub_ping_errors.fetch_add(1, Relaxed);
                    tokio::time::sleep(jitter(backoff)).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        metrics
            .websub_pings_queued
            .fetch_sub(batch.len() as u64, Relaxed);
    }
}

/// One `hub.mode=publish` request; a 2xx is success.
async fn ping(client: &reqwest::Client, hub: &url::Url, urls: &[String]) -> Result<(), String> {
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("hub.mode", "publish");
        for u in urls {
            form.append_pair("hub.url", u);
        }
        form.finish()
    };
    let resp = client
        .post(hub.clone())
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        s => Err(format!("hub answered {s}")),
    }
}

/// `d` plus up to a quarter more, at random: many feeds failing together do not retry in
/// step.
pub fn jitter(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    let frac = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX);
    d + d.mul_f64(frac / 4.0)
}

/// An error with its causes (reqwest's own message is often just "error sending request").
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(c) = source {
        s.push_str(": ");
        s.push_str(&c.to_string());
        source = c.source();
    }
    s
}
