//! The built-in hub (W3C WebSub, sections 5–7): `POST /websub` subscribes and unsubscribes;
//! intent is verified with the subscriber's callback before anything is stored; a feed whose
//! bytes changed is delivered to every active subscription, signed when a secret was given.
//!
//! A request that can be judged at once (a bad parameter, a topic that is not one of
//! herald's feeds, a refused callback address, a full hub) gets its 4xx at once, and
//! nothing is stored or contacted. Every outgoing request goes through the address guard
//! ([`super::guard`]), follows no redirect and has a timeout; deliveries run concurrently
//! (bounded), so one hanging callback never delays another.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use hyper::StatusCode;
use tokio::sync::{watch, Semaphore};
use tracing::{debug, info, warn};

use super::ping::{error_chain, jitter};
use crate::config::{Config, WebSubConfig};
use crate::serve::coding::Coding;
use crate::serve::events::Published;
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::Snapshot;
use crate::store::subscriptions::{Subscription, Subscriptions};

/// The most a subscription request's body may be.
pub const MAX_REQUEST_BYTES: usize = 4096;
/// A secret must be shorter than this (bytes), per the recommendation.
const MAX_SECRET: usize = 200;
const MAX_CALLBACK: usize = 2048;
/// Connect and response headers; the whole exchange.
const HEADERS_TIMEOUT: Duration = Duration::from_secs(5);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries of one delivery before it is given up (the subscription stays).
const DELIVERY_TRIES: u32 = 6;
/// Outgoing requests at once: deliveries, and verifications apart.
const DELIVERIES_AT_ONCE: usize = 64;
const VERIFICATIONS_AT_ONCE: usize = 16;

type Site = watch::Receiver<Option<Arc<Snapshot>>>;

/// An active subscription as the hub keeps it, by feed route and callback.
struct Active {
    secret: Option<Vec<u8>>,
    expires: i64,
    /// The newest publish delivered (or being delivered) to it: an older delivery still
    /// retrying stops once a newer one starts.
    latest: Arc<AtomicU64>,
}

pub struct Hub {
    cfg: Arc<Config>,
    metrics: Arc<Metrics>,
    site: Site,
    client: reqwest::Client,
    store: Mutex<Subscriptions>,
    /// Route → callback → subscription.
    active: Mutex<HashMap<String, HashMap<String, Active>>>,
    deliveries: Arc<Semaphore>,
    verifications: Arc<Semaphore>,
    rate: Mutex<RateLimit>,
}

/// A parsed, checked subscription request.
#[derive(Debug)]
struct Request {
    subscribe: bool,
    callback: url::Url,
    /// The feed's canonical URL and its route.
    topic: String,
    route: String,
    lease: u64,
    secret: Option<Vec<u8>>,
}

impl Hub {
    /// The hub, with the subscriptions kept in the state dir (in memory when it cannot be
    /// used: they then end with the process).
    pub fn start(
        cfg: Arc<Config>,
        metrics: Arc<Metrics>,
        site: Site,
        client: reqwest::Client,
    ) -> Arc<Hub> {
        let file = cfg.state_dir.join("websub.sqlite");
        let store = Subscriptions::open(&file).unwrap_or_else(|e| {
            warn!(file = %file.display(), error = format!("{e:#}"), "WebSub subscriptions cannot be kept on disk; keeping them in memory until a restart");
            Subscriptions::in_memory().expect("an in-memory SQLite database always opens")
        });
        let hub = Arc::new(Hub {
            cfg,
            metrics,
            site,
            client,
            store: Mutex::new(store),
            active: Mutex::new(HashMap::new()),
            deliveries: Arc::new(Semaphore::new(DELIVERIES_AT_ONCE)),
            verifications: Arc::new(Semaphore::new(VERIFICATIONS_AT_ONCE)),
            rate: Mutex::new(RateLimit::default()),
        });
        hub.load();
        let sweeper = Arc::downgrade(&hub);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                every.tick().await;
                let Some(hub) = sweeper.upgrade() else { return };
                hub.expire();
            }
        });
        hub
    }

    fn settings(&self) -> &WebSubConfig {
        &self.cfg.websub
    }

    /// The hub's own URL (`<base_url>websub`).
    pub fn url(&self) -> String {
        self.cfg.url("websub")
    }

    /// Reads the subscriptions kept in the state dir.
    fn load(&self) {
        let now = now();
        let kept = lock(&self.store).active(now);
        let kept = match kept {
            Ok(k) => k,
            Err(e) => {
                warn!(error = format!("{e:#}"), "cannot read WebSub subscriptions");
                return;
            }
        };
        let mut active = lock(&self.active);
        let mut n = 0;
        for s in kept {
            // Topics are kept as URLs: a new base_url leaves the old ones unmatched.
            let Some(route) = self.route_in(&s.topic) else {
                continue;
            };
            // Kept from before private callbacks were turned off.
            if super::guard::literal_refused(&s.callback, self.settings().allow_private_callbacks) {
                continue;
            }
            active.entry(route).or_default().insert(
                s.callback,
                Active {
                    secret: s.secret,
                    expires: s.expires,
                    latest: Arc::new(AtomicU64::new(0)),
                },
            );
            n += 1;
        }
        drop(active);
        self.metrics.websub_subscriptions.store(n, Relaxed);
        if n > 0 {
            info!(subscriptions = n, "WebSub subscriptions restored");
        }
    }

    /// Ends the subscriptions whose lease is over.
    fn expire(&self) {
        let now = now();
        let mut active = lock(&self.active);
        for subs in active.values_mut() {
            subs.retain(|callback, a| {
                let keep = a.expires > now;
                if !keep {
                    info!(callback = %callback, "WebSub subscription expired");
                }
                keep
            });
        }
        active.retain(|_, subs| !subs.is_empty());
        let n = active.values().map(HashMap::len).sum::<usize>();
        drop(active);
        self.metrics.websub_subscriptions.store(n as u64, Relaxed);
        if let Err(e) = lock(&self.store).expire(now) {
            warn!(
                error = format!("{e:#}"),
                "cannot remove expired WebSub subscriptions"
            );
        }
    }

    /// The route a URL of this site names (`https://ex.com/tags/x/feed.atom` →
    /// `/tags/x/feed.atom`).
    fn route_in(&self, url: &str) -> Option<String> {
        let base = self.cfg.site.base_url.as_str();
        url.strip_prefix(base).map(|rest| format!("/{rest}"))
    }

    /// The route of one of herald's feed URLs, if it is a feed in the current snapshot.
    fn route_of(&self, topic: &str) -> Option<String> {
        let route = self.route_in(topic)?;
        let snapshot = self.site.borrow().clone()?;
        snapshot
            .get(&route)
            .filter(|r| r.kind.is_feed())
            .map(|_| route)
    }

    fn count(&self) -> usize {
        lock(&self.active).values().map(HashMap::len).sum()
    }

    fn is_subscribed(&self, route: &str, callback: &str) -> bool {
        lock(&self.active)
            .get(route)
            .is_some_and(|s| s.contains_key(callback))
    }

    /// Answers `POST /websub`: a 4xx for what is wrong at once, else 202 and the
    /// verification of intent in the background.
    pub async fn request(self: &Arc<Self>, body: Bytes, peer: IpAddr) -> (StatusCode, String) {
        if !lock(&self.rate).allow(peer, Instant::now()) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests from this address; try again in a few seconds\n".into(),
            );
        }
        let req = match self.parse(&body) {
            Ok(r) => r,
            Err(msg) => return (StatusCode::BAD_REQUEST, format!("{msg}\n")),
        };
        let allow_private = self.settings().allow_private_callbacks;
        if let Err(msg) = super::guard::check_callback(&req.callback, allow_private).await {
            return (StatusCode::FORBIDDEN, format!("{msg}\n"));
        }
        if req.subscribe
            && self.count() >= self.settings().max_subscriptions
            && !self.is_subscribed(&req.route, req.callback.as_str())
        {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "this hub has as many subscriptions as it takes\n".into(),
            );
        }
        debug!(mode = if req.subscribe { "subscribe" } else { "unsubscribe" }, callback = %req.callback, topic = %req.topic, "WebSub request accepted");
        let hub = self.clone();
        tokio::spawn(async move { hub.verify(req).await });
        (
            StatusCode::ACCEPTED,
            "accepted: the callback will be asked to confirm\n".into(),
        )
    }

    /// The request's parameters, checked.
    fn parse(&self, body: &[u8]) -> Result<Request, String> {
        let mut p: HashMap<String, String> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            // The first of a repeated parameter counts.
            p.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        let subscribe = match p.get("hub.mode").map(String::as_str) {
            Some("subscribe") => true,
            Some("unsubscribe") => false,
            Some(m) => return Err(format!("hub.mode {m:?}: expected subscribe or unsubscribe")),
            None => return Err("hub.mode is missing".into()),
        };
        let callback = p.get("hub.callback").ok_or("hub.callback is missing")?;
        if callback.len() > MAX_CALLBACK {
            return Err(format!("hub.callback is longer than {MAX_CALLBACK} bytes"));
        }
        let callback = url::Url::parse(callback)
            .map_err(|e| format!("hub.callback {callback:?} is not a URL: {e}"))?;
        if !matches!(callback.scheme(), "http" | "https") || callback.host().is_none() {
            return Err("hub.callback must be an absolute http or https URL".into());
        }
        if callback.fragment().is_some() {
            return Err("hub.callback must not have a fragment".into());
        }
        let topic = p.get("hub.topic").ok_or("hub.topic is missing")?;
        let route = self
            .route_of(topic)
            .ok_or_else(|| format!("hub.topic {topic:?} is not one of this site's feeds"))?;
        let (min, max) = WebSubConfig::LEASE_RANGE;
        let lease = match p.get("hub.lease_seconds") {
            None => self.settings().lease_seconds,
            Some(s) => s
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("hub.lease_seconds {s:?} is not a number of seconds"))?
                .clamp(min, max),
        };
        let secret = match p.get("hub.secret") {
            Some(s) if s.len() >= MAX_SECRET => {
                return Err(format!(
                    "hub.secret must be shorter than {MAX_SECRET} bytes"
                ))
            }
            Some(s) if s.is_empty() => None,
            Some(s) => Some(s.as_bytes().to_vec()),
            None => None,
        };
        Ok(Request {
            subscribe,
            callback,
            topic: self.cfg.url(&route),
            route,
            lease,
            secret,
        })
    }

    /// Verifies intent with the callback (section 5.3); only then is the subscription
    /// stored (or removed).
    async fn verify(self: Arc<Self>, req: Request) {
        let _slot = self.verifications.clone().acquire_owned().await;
        if req.subscribe
            && self.count() >= self.settings().max_subscriptions
            && !self.is_subscribed(&req.route, req.callback.as_str())
        {
            self.deny(&req, "the hub has as many subscriptions as it takes")
                .await;
            return;
        }
        let challenge = challenge();
        let mut url = req.callback.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair(
                "hub.mode",
                if req.subscribe {
                    "subscribe"
                } else {
                    "unsubscribe"
                },
            );
            q.append_pair("hub.topic", &req.topic);
            q.append_pair("hub.challenge", &challenge);
            if req.subscribe {
                q.append_pair("hub.lease_seconds", &req.lease.to_string());
            }
        }
        let answer = self.exchange(self.client.get(url)).await;
        let verified = match &answer {
            Ok((status, body)) => status.is_success() && body.as_ref() == challenge.as_bytes(),
            Err(_) => false,
        };
        if !verified {
            self.metrics
                .websub_verifications_failed
                .fetch_add(1, Relaxed);
            let why = match answer {
                Ok((status, _)) if status.is_success() => "the body was not the challenge".into(),
                Ok((status, _)) => format!("the callback answered {status}"),
                Err(e) => e,
            };
            info!(callback = %req.callback, topic = %req.topic, reason = %why, "WebSub intent not verified; nothing changed");
            return;
        }
        self.metrics.websub_verifications.fetch_add(1, Relaxed);
        let callback = req.callback.to_string();
        if req.subscribe {
            let expires = now() + req.lease as i64;
            let kept = Subscription {
                callback: callback.clone(),
                topic: req.topic.clone(),
                secret: req.secret.clone(),
                expires,
            };
            if let Err(e) = lock(&self.store).put(&kept) {
                warn!(
                    error = format!("{e:#}"),
                    "cannot keep a WebSub subscription on disk; it ends with the process"
                );
            }
            let mut active = lock(&self.active);
            let subs = active.entry(req.route.clone()).or_default();
            let latest = subs
                .get(&callback)
                .map(|a| a.latest.clone())
                .unwrap_or_default();
            subs.insert(
                callback.clone(),
                Active {
                    secret: req.secret,
                    expires,
                    latest,
                },
            );
            drop(active);
            info!(callback = %callback, topic = %req.topic, lease_s = req.lease, "WebSub subscription active");
        } else {
            self.remove(&req.route, &req.topic, &callback);
            info!(callback = %callback, topic = %req.topic, "WebSub subscription ended by the subscriber");
        }
        self.metrics
            .websub_subscriptions
            .store(self.count() as u64, Relaxed);
    }

    /// Tells a subscriber its request was refused (section 5.2).
    async fn deny(&self, req: &Request, reason: &str) {
        let mut url = req.callback.clone();
        url.query_pairs_mut()
            .append_pair("hub.mode", "denied")
            .append_pair("hub.topic", &req.topic)
            .append_pair("hub.reason", reason);
        info!(callback = %req.callback, topic = %req.topic, reason, "WebSub subscription denied");
        let _ = self.exchange(self.client.get(url)).await;
    }

    fn remove(&self, route: &str, topic: &str, callback: &str) {
        let mut active = lock(&self.active);
        if let Some(subs) = active.get_mut(route) {
            subs.remove(callback);
            if subs.is_empty() {
                active.remove(route);
            }
        }
        drop(active);
        if let Err(e) = lock(&self.store).remove(callback, topic) {
            warn!(
                error = format!("{e:#}"),
                "cannot remove a WebSub subscription from disk"
            );
        }
        self.metrics
            .websub_subscriptions
            .store(self.count() as u64, Relaxed);
    }

    /// One request with the hub's limits: headers within 5 s, the whole within 10 s, at
    /// most 64 KiB of body read. Returns the status and the body.
    async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<(StatusCode, Bytes), String> {
        let resp = tokio::time::timeout(HEADERS_TIMEOUT, req.send())
            .await
            .map_err(|_| "no response headers within 5 s".to_string())?
            .map_err(|e| error_chain(&e))?;
        let status =
            StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > 64 << 10 {
                break;
            }
        }
        Ok((status, Bytes::from(body)))
    }

    /// Delivers every changed feed that has subscribers (section 7).
    pub fn published(self: &Arc<Self>, p: &Published) {
        let now = now();
        let routes: Vec<(String, Vec<Target>)> = {
            let active = lock(&self.active);
            p.changed
                .iter()
                .chain(&p.added)
                .filter_map(|route| {
                    let subs = active.get(route)?;
                    // (A lease that ended since the last sweep gets nothing.)
                    let targets = subs
                        .iter()
                        .filter(|(_, a)| a.expires > now)
                        .map(|(cb, a)| (cb.clone(), a.secret.clone(), a.latest.clone()))
                        .collect();
                    Some((route.clone(), targets))
                })
                .collect()
        };
        for (route, targets) in routes {
            let Some(rendered) = p.snapshot.get(&route) else {
                continue;
            };
            let hub = self.clone();
            let generation = p.generation;
            tokio::spawn(async move {
                // A term feed's body may not be made yet: made off the async workers.
                let made = tokio::task::spawn_blocking({
                    let rendered = rendered.clone();
                    move || rendered.body(Coding::Identity)
                })
                .await;
                let Ok(body) = made else { return };
                let topic = hub.cfg.url(&route);
                let link = format!("<{}>; rel=\"hub\", <{topic}>; rel=\"self\"", hub.url());
                let content_type = rendered.kind.content_type();
                for (callback, secret, latest) in targets {
                    latest.fetch_max(generation, Relaxed);
                    let delivery = Delivery {
                        route: route.clone(),
                        topic: topic.clone(),
                        callback,
                        body: body.clone(),
                        content_type,
                        link: link.clone(),
                        signature: secret.map(|s| signature(&s, &body)),
                        generation,
                        latest,
                    };
                    tokio::spawn(hub.clone().deliver(delivery));
                }
            });
        }
    }

    /// Delivers one feed body to one subscriber, retrying with backoff; stops when a newer
    /// publish supersedes it, and ends the subscription on `410 Gone`.
    async fn deliver(self: Arc<Self>, d: Delivery) {
        let mut backoff = Duration::from_secs(1);
        for attempt in 1..=DELIVERY_TRIES {
            if d.latest.load(Relaxed) != d.generation {
                debug!(callback = %d.callback, "WebSub delivery superseded by a newer one");
                return;
            }
            let result = {
                let _slot = self.deliveries.clone().acquire_owned().await;
                let mut req = self
                    .client
                    .post(&d.callback)
                    .header(reqwest::header::CONTENT_TYPE, d.content_type)
                    .header(reqwest::header::LINK, &d.link)
                    .body(d.body.clone());
                if let Some(sig) = &d.signature {
                    req = req.header("X-Hub-Signature", sig);
                }
                self.exchange(req).await
            };
            match result {
                Ok((status, _)) if status.is_success() => {
                    self.metrics.websub_deliveries.fetch_add(1, Relaxed);
                    debug!(callback = %d.callback, topic = %d.topic, "WebSub delivery done");
                    return;
                }
                Ok((StatusCode::GONE, _)) => {
                    info!(callback = %d.callback, topic = %d.topic, "WebSub callback answered 410 Gone; subscription ended");
                    self.remove(&d.route, &d.topic, &d.callback);
                    return;
                }
                Ok((status, _)) => self.delivery_failed(&d, attempt, &format!("answered {status}")),
                Err(e) => self.delivery_failed(&d, attempt, &e),
            }
            if attempt < DELIVERY_TRIES {
                tokio::time::sleep(jitter(backoff)).await;
                backoff *= 2;
            }
        }
        self.metrics.websub_deliveries_failed.fetch_add(1, Relaxed);
        warn!(callback = %d.callback, topic = %d.topic, tries = DELIVERY_TRIES, "WebSub delivery given up; the subscription stays");
    }

    fn delivery_failed(&self, d: &Delivery, attempt: u32, why: &str) {
        self.metrics.websub_delivery_errors.fetch_add(1, Relaxed);
        debug!(callback = %d.callback, attempt, reason = why, "WebSub delivery failed");
    }
}

/// A subscriber of a changed feed: callback, secret, its newest publish.
type Target = (String, Option<Vec<u8>>, Arc<AtomicU64>);

/// One feed body on its way to one callback.
struct Delivery {
    route: String,
    topic: String,
    callback: String,
    body: Bytes,
    content_type: &'static str,
    link: String,
    signature: Option<String>,
    generation: u64,
    latest: Arc<AtomicU64>,
}

/// `X-Hub-Signature`: `sha256=` and the hex HMAC-SHA256 of the body keyed by the secret.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in digest.iter() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A random challenge: 32 hex digits.
fn challenge() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Requests per client address: a token bucket each (a burst of 20, then 5 a second), for
/// at most 10 000 addresses (the idlest are forgotten first).
#[derive(Default)]
struct RateLimit {
    buckets: HashMap<IpAddr, (f64, Instant)>,
}

impl RateLimit {
    const BURST: f64 = 20.0;
    const PER_SECOND: f64 = 5.0;
    const ADDRESSES: usize = 10_000;

    fn allow(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.buckets.len() >= Self::ADDRESSES && !self.buckets.contains_key(&ip) {
            // Full buckets are as good as forgotten.
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * Self::PER_SECOND < Self::BURST
            });
            if self.buckets.len() >= Self::ADDRESSES {
                return false;
            }
        }
        let (tokens, at) = self.buckets.entry(ip).or_insert((Self::BURST, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * Self::PER_SECOND).min(Self::BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_client_address_gets_a_burst_then_a_steady_rate() {
        let mut r = RateLimit::default();
        let (ip, t) = ("192.0.2.1".parse().unwrap(), Instant::now());
        let allowed = (0..30).filter(|_| r.allow(ip, t)).count();
        assert_eq!(allowed, 20);
        assert!(
            r.allow(ip, t + Duration::from_millis(250)),
            "refilled at 5 a second"
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(r.allow(other, t), "another address has its own bucket");
    }
}
