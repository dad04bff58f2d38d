//! Counters for `/metrics`, in the Prometheus text format (version 0.0.4). Lock-free atomics
//! on the request path; the set of labels is fixed, so there is nothing to allocate per request.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Route kinds requests are counted by.
pub const ROUTE_KINDS: [&str; 13] = [
    "rss", "atom", "json", "opml", "html", "xml", "txt", "css", "media", "healthz", "metrics",
    "websub", "other",
];
/// Statuses requests are counted by; anything else counts as "other".
pub const STATUSES: [u16; 13] = [
    200, 304, 404, 405, 503, 400, 202, 403, 413, 429, 206, 416, 0,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub articles: AtomicU64,
    pub feeds: AtomicU64,
    /// Files not published, by reason label (as the engine names them).
    skipped: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    pub rebuilds: AtomicU64,
    rebuild_micros_total: AtomicU64,
    rebuild_micros_last: AtomicU64,
    requests: [[AtomicU64; STATUSES.len()]; ROUTE_KINDS.len()],
    pub last_change: AtomicI64,
    pub rescans: AtomicU64,
    pub state_errors: AtomicU64,
    pub watch_errors: AtomicU64,
    pub connections_open: AtomicI64,
    /// Size of the page store file (live and replaced pages).
    pub page_store_bytes: AtomicU64,
    /// Bytes of term-feed and article-page bodies in the feed cache.
    pub feed_cache_bytes: AtomicU64,
    /// Term-feed and article-page bodies rendered (on request or right after publishing).
    pub feed_renders: AtomicU64,
    pub connections_total: AtomicU64,
    /// Connections closed as they arrived: their address held `max_connections_per_client`.
    pub connections_refused: AtomicU64,
    /// Connections closed to make room for a new one (idle or stalled longest).
    pub connections_evicted: AtomicU64,
    /// Batches of changes the watcher has handed over and the indexer not yet taken: the
    /// watcher hands over no more while one waits, and keeps coalescing instead.
    pub change_batches_queued: AtomicI64,
    /// When the indexer started the work it is doing (Unix seconds), 0 while it waits.
    pub indexer_busy_since: AtomicI64,
    /// WebSub: active subscriptions of the built-in hub.
    pub websub_subscriptions: AtomicU64,
    /// Intents verified (subscriptions made or ended) and not verified.
    pub websub_verifications: AtomicU64,
    pub websub_verifications_failed: AtomicU64,
    /// Feed bodies delivered to subscribers; deliveries given up after every try; failed tries.
    pub websub_deliveries: AtomicU64,
    pub websub_deliveries_failed: AtomicU64,
    pub websub_delivery_errors: AtomicU64,
    /// Feed URLs pinged to external hubs; dropped after an hour of failures; failed pings.
    pub websub_pings_sent: AtomicU64,
    pub websub_pings_failed: AtomicU64,
    pub websub_ping_errors: AtomicU64,
    /// Feed URLs waiting to be pinged (summed over the hubs).
    pub websub_pings_queued: AtomicU64,
    /// Object storage (`[publish] to`): objects uploaded and deleted, failed tries, objects
    /// waiting to be uploaded or deleted.
    pub publish_uploaded: AtomicU64,
    pub publish_deleted: AtomicU64,
    pub publish_failed: AtomicU64,
    pub publish_pending: AtomicU64,
    /// Since when (Unix milliseconds) the store has been behind the served site; 0 when in
    /// step.
    pub publish_behind_since_ms: AtomicI64,
}

/// How long the indexer may work on one batch before `/healthz` calls it stalled. A batch
/// of 100 000 changed files takes seconds; a minute and more means it is stuck (a file it
/// cannot get past), and everything published since the batch began waits.
pub const INDEXER_STALL_SECS: i64 = 120;

impl Metrics {
    /// Seconds the indexer has been working on its current batch (0 while it waits).
    pub fn indexer_busy_secs(&self, now: i64) -> i64 {
        match self.indexer_busy_since.load(Relaxed) {
            0 => 0,
            since => (now - since).max(0),
        }
    }

    /// Counts a file not published, by the label of its reason. Metrics take counts and
    /// labels, not the content layer's types.
    pub fn skipped(&self, reason: &'static str) {
        *self.skips().entry(reason).or_default() += 1;
    }

    /// Makes every label known up front, so each series is there (at 0) from the start.
    pub fn know_skip_reasons(&self, reasons: impl IntoIterator<Item = &'static str>) {
        let mut skips = self.skips();
        for r in reasons {
            skips.entry(r).or_default();
        }
    }

    fn skips(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, u64>> {
        self.skipped.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn rebuild(&self, took: std::time::Duration) {
        let us = took.as_micros() as u64;
        self.rebuilds.fetch_add(1, Relaxed);
        self.rebuild_micros_total.fetch_add(us, Relaxed);
        self.rebuild_micros_last.store(us, Relaxed);
    }

    pub fn request(&self, route: &str, status: u16) {
        let r = ROUTE_KINDS
            .iter()
            .position(|k| *k == route)
            .unwrap_or(ROUTE_KINDS.len() - 1);
        let s = STATUSES
            .iter()
            .position(|k| *k == status)
            .unwrap_or(STATUSES.len() - 1);
        self.requests[r][s].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        self.singles(&mut o, CONTENT);
        self.skipped_by_reason(&mut o);
        self.singles(&mut o, REBUILDS);
        self.requests_by_route(&mut o);
        self.singles(&mut o, REST);
        self.singles(&mut o, WEBSUB);
        self.singles(&mut o, PUBLISH);
        o
    }

    fn singles(&self, o: &mut String, table: &[Single]) {
        for &(name, kind, help, value) in table {
            single(o, name, kind, help, &value(self));
        }
    }

    fn skipped_by_reason(&self, o: &mut String) {
        let _ = write!(o, "# HELP herald_articles_skipped_total Files not published, by reason.\n# TYPE herald_articles_skipped_total counter\n");
        for (reason, n) in self.skips().iter() {
            let _ = writeln!(
                o,
                "herald_articles_skipped_total{{reason=\"{reason}\"}} {n}"
            );
        }
    }

    /// Requests by route kind and status, and the share of 304s on rendered routes.
    fn requests_by_route(&self, o: &mut String) {
        let _ = write!(o, "# HELP herald_http_requests_total HTTP requests by route kind and status.\n# TYPE herald_http_requests_total counter\n");
        let (mut ok, mut not_modified) = (0u64, 0u64);
        for (r, route) in ROUTE_KINDS.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                let n = self.requests[r][s].load(Relaxed);
                if n == 0 {
                    continue;
                }
                let status = if *status == 0 {
                    "other".to_string()
                } else {
                    status.to_string()
                };
                let _ = writeln!(
                    o,
                    "herald_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
                if r < 5 {
                    match s {
                        0 => ok += n,
                        1 => not_modified += n,
                        _ => {}
                    }
                }
            }
        }
        let ratio = if ok + not_modified == 0 {
            0.0
        } else {
            not_modified as f64 / (ok + not_modified) as f64
        };
        let help = "Share of 304 among 200+304 responses on rendered routes.";
        let ratio = format!("{ratio:.6}");
        single(o, "herald_http_not_modified_ratio", "gauge", help, &ratio);
    }
}

fn single(o: &mut String, name: &str, kind: &str, help: &str, value: &str) {
    let _ = write!(
        o,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
    );
}

/// A metric with one value: name, type, help, and how to read it.
type Single = (
    &'static str,
    &'static str,
    &'static str,
    fn(&Metrics) -> String,
);

fn seconds(micros: &AtomicU64) -> String {
    format!("{:.6}", micros.load(Relaxed) as f64 / 1e6)
}

const CONTENT: &[Single] = &[
    (
        "herald_articles_indexed",
        "gauge",
        "Articles currently published.",
        |m| m.articles.load(Relaxed).to_string(),
    ),
    (
        "herald_feeds",
        "gauge",
        "Feeds currently published (each format counted).",
        |m| m.feeds.load(Relaxed).to_string(),
    ),
    (
        "herald_page_store_bytes",
        "gauge",
        "Size of the page store file in the state dir (article pages, live and replaced).",
        |m| m.page_store_bytes.load(Relaxed).to_string(),
    ),
    (
        "herald_feed_cache_bytes",
        "gauge",
        "Bytes of category and tag feed and article page bodies kept rendered.",
        |m| m.feed_cache_bytes.load(Relaxed).to_string(),
    ),
    (
        "herald_feed_renders_total",
        "counter",
        "Category and tag feed and article page bodies rendered because none was cached.",
        |m| m.feed_renders.load(Relaxed).to_string(),
    ),
];

const REBUILDS: &[Single] = &[
    (
        "herald_rebuilds_total",
        "counter",
        "Index changes applied and published.",
        |m| m.rebuilds.load(Relaxed).to_string(),
    ),
    (
        "herald_rebuild_duration_seconds_total",
        "counter",
        "Time spent applying changes and rendering.",
        |m| seconds(&m.rebuild_micros_total),
    ),
    (
        "herald_last_rebuild_duration_seconds",
        "gauge",
        "Duration of the last rebuild.",
        |m| seconds(&m.rebuild_micros_last),
    ),
];

const WEBSUB: &[Single] = &[
    (
        "herald_websub_subscriptions",
        "gauge",
        "Active subscriptions of the built-in WebSub hub.",
        |m| m.websub_subscriptions.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_verifications_total",
        "counter",
        "Subscriber intents verified (subscriptions made or ended).",
        |m| m.websub_verifications.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_verifications_failed_total",
        "counter",
        "Subscriber intents not verified (wrong or no challenge echo).",
        |m| m.websub_verifications_failed.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_deliveries_total",
        "counter",
        "Feed bodies delivered to subscribers.",
        |m| m.websub_deliveries.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_deliveries_failed_total",
        "counter",
        "Deliveries given up after every try (the subscription stays).",
        |m| m.websub_deliveries_failed.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_delivery_errors_total",
        "counter",
        "Delivery tries that failed (each retried until given up).",
        |m| m.websub_delivery_errors.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_pings_total",
        "counter",
        "Feed URLs pinged to external hubs.",
        |m| m.websub_pings_sent.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_pings_failed_total",
        "counter",
        "Feed URLs whose ping was dropped after an hour of failures.",
        |m| m.websub_pings_failed.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_ping_errors_total",
        "counter",
        "Pings to external hubs that failed (each retried with backoff).",
        |m| m.websub_ping_errors.load(Relaxed).to_string(),
    ),
    (
        "herald_websub_pings_queued",
        "gauge",
        "Feed URLs waiting to be pinged (summed over the external hubs).",
        |m| m.websub_pings_queued.load(Relaxed).to_string(),
    ),
];

const PUBLISH: &[Single] = &[
    (
        "herald_publish_objects_uploaded_total",
        "counter",
        "Objects uploaded to the object store ([publish] to).",
        |m| m.publish_uploaded.load(Relaxed).to_string(),
    ),
    (
        "herald_publish_objects_deleted_total",
        "counter",
        "Objects deleted from the object store.",
        |m| m.publish_deleted.load(Relaxed).to_string(),
    ),
    (
        "herald_publish_failures_total",
        "counter",
        "Uploads and deletions that failed (each is tried again).",
        |m| m.publish_failed.load(Relaxed).to_string(),
    ),
    (
        "herald_publish_objects_pending",
        "gauge",
        "Objects waiting to be uploaded or deleted.",
        |m| m.publish_pending.load(Relaxed).to_string(),
    ),
    (
        "herald_publish_lag_seconds",
        "gauge",
        "How long the object store has been behind the served site (0: in step).",
        |m| match m.publish_behind_since_ms.load(Relaxed) {
            0 => "0".to_string(),
            since => {
                let now = chrono::Utc::now().timestamp_millis();
                format!("{:.3}", (now - since).max(0) as f64 / 1e3)
            }
        },
    ),
];

const REST: &[Single] = &[
    (
        "herald_last_change_timestamp_seconds",
        "gauge",
        "Unix time of the last content change applied.",
        |m| m.last_change.load(Relaxed).to_string(),
    ),
    (
        "herald_rescans_total",
        "counter",
        "Full rescans of the content dir.",
        |m| m.rescans.load(Relaxed).to_string(),
    ),
    (
        "herald_state_errors_total",
        "counter",
        "Failed writes to the state store.",
        |m| m.state_errors.load(Relaxed).to_string(),
    ),
    (
        "herald_watch_errors_total",
        "counter",
        "File watcher errors.",
        |m| m.watch_errors.load(Relaxed).to_string(),
    ),
    (
        "herald_http_connections_open",
        "gauge",
        "Open HTTP connections.",
        |m| m.connections_open.load(Relaxed).to_string(),
    ),
    (
        "herald_http_connections_total",
        "counter",
        "Accepted HTTP connections.",
        |m| m.connections_total.load(Relaxed).to_string(),
    ),
    (
        "herald_http_connections_refused_total",
        "counter",
        "Connections closed as they arrived: their address held max_connections_per_client.",
        |m| m.connections_refused.load(Relaxed).to_string(),
    ),
    (
        "herald_http_connections_evicted_total",
        "counter",
        "Connections closed to make room for a new one (the one idle or stalled longest).",
        |m| m.connections_evicted.load(Relaxed).to_string(),
    ),
    (
        "herald_indexer_busy_seconds",
        "gauge",
        "How long the indexer has been working on its current batch (0 while it waits).",
        |m| {
            m.indexer_busy_secs(chrono::Utc::now().timestamp())
                .to_string()
        },
    ),
];

/// Resident memory in MB (Linux; 0 elsewhere), for the debug log's phase timings.
pub fn rss_mb() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * 4096 / 1_000_000
}
