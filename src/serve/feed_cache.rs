//! Category and tag feeds, rendered when first asked for and kept in a cache bounded by bytes.
//!
//! A site can have thousands of terms (scraped news carries free-text keywords), and every
//! term has three feeds of up to `feed.entries` full-content entries: kept rendered and
//! compressed, they would need gigabytes. So a term feed is published as its spec (a few
//! strings and references to its entries) with an ETag and Last-Modified made from a digest
//! of everything the feed shows ([`FeedSpec::digest`]): conditional requests are answered
//! without rendering, and a body is rendered, compressed and cached on first use. The most
//! popular feeds are made right after publishing (see [`prewarm`]), so readers polling them
//! never wait.
//!
//! Article pages are made on request into the same cache (see [`crate::serve::snapshot::Rendered::page`]):
//! keys are digests of what a body shows, so the two never collide.
//!
//! Term feeds are sent gzip-compressed or as they are, never brotli: brotli's per-call tables
//! (about a megabyte each) cost more time than a small feed takes to render and, over
//! thousands of feeds, leave the allocator holding hundreds of megabytes. The main feeds,
//! made once per change, have it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use hashlink::LinkedHashMap;

use crate::config::Config;
use crate::model::PageTag;
use crate::render::{self, FeedSpec, Kind};
use crate::serve::coding::{encode, Coding};
use crate::serve::metrics::Metrics;

/// Rendered term-feed and article-page bodies by (digest tag, coding), least recently used
/// first.
#[derive(Debug)]
pub struct FeedCache {
    inner: Mutex<Inner>,
    capacity: u64,
    /// The generation of the latest snapshot: prewarming for an older one stops.
    latest: AtomicU64,
    /// Where the cache's size and renders are reported.
    metrics: Arc<Metrics>,
}

pub(crate) type Key = (PageTag, Coding);

#[derive(Debug, Default)]
struct Inner {
    entries: LinkedHashMap<Key, Bytes>,
    bytes: u64,
    /// Bodies being rendered now: a request for one waits for it instead of rendering it
    /// again (a change makes every reader of a popular feed ask at about the same time).
    pending: HashMap<Key, Arc<OnceLock<Bytes>>>,
}

impl FeedCache {
    pub fn new(capacity: u64, metrics: Arc<Metrics>) -> FeedCache {
        FeedCache {
            inner: Mutex::new(Inner::default()),
            capacity,
            latest: AtomicU64::new(0),
            metrics,
        }
    }

    /// Notes that snapshot `generation` is published (see [`prewarm`]).
    pub fn published(&self, generation: u64) {
        self.latest.store(generation, Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The lock is never held across anything that can panic mid-update.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of bodies held now (`/metrics` has them as `herald_feed_cache_bytes`).
    #[cfg(test)]
    fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    #[cfg(test)]
    fn get(&self, key: &Key) -> Option<Bytes> {
        let mut inner = self.lock();
        let body = inner.entries.get(key)?.clone();
        inner.entries.to_back(key);
        Some(body)
    }

    /// Whether the body of `key` is cached (not made or being made).
    pub(crate) fn contains(&self, key: &Key) -> bool {
        self.lock().entries.contains_key(key)
    }

    /// A cached body, or the slot where it is (being) made.
    fn lookup(&self, key: &Key) -> Result<Bytes, Arc<OnceLock<Bytes>>> {
        let mut inner = self.lock();
        if let Some(body) = inner.entries.get(key).cloned() {
            inner.entries.to_back(key);
            return Ok(body);
        }
        Err(inner.pending.entry(*key).or_default().clone())
    }

    /// The body of `key` or, when nobody has it, `make`'s (made once however many ask).
    pub(crate) fn get_or_make(&self, key: Key, make: impl FnOnce() -> Bytes) -> Bytes {
        let slot = match self.lookup(&key) {
            Ok(body) => return body,
            Err(slot) => slot,
        };
        let mut made = false;
        let body = slot
            .get_or_init(|| {
                made = true;
                self.metrics.feed_renders.fetch_add(1, Relaxed);
                make()
            })
            .clone();
        if made {
            let mut inner = self.lock();
            inner.pending.remove(&key);
            self.insert_locked(&mut inner, key, body.clone());
        }
        body
    }

    #[cfg(test)]
    fn insert(&self, key: Key, body: Bytes) {
        let mut inner = self.lock();
        self.insert_locked(&mut inner, key, body);
    }

    fn insert_locked(&self, inner: &mut Inner, key: Key, body: Bytes) {
        let len = body.len() as u64;
        if len > self.capacity {
            return;
        }
        inner.bytes += len;
        if let Some(old) = inner.entries.insert(key, body) {
            inner.bytes -= old.len() as u64;
        }
        while inner.bytes > self.capacity {
            match inner.entries.pop_front() {
                Some((_, old)) => inner.bytes -= old.len() as u64,
                None => break,
            }
        }
        self.metrics.feed_cache_bytes.store(inner.bytes, Relaxed);
    }
}

/// One term feed as published: what it takes to render it, and where its bodies are kept.
#[derive(Debug)]
pub struct LazyFeed {
    pub spec: FeedSpec<'static>,
    pub cfg: Arc<Config>,
    pub cache: Arc<FeedCache>,
}

impl LazyFeed {
    /// The body of one format in one coding: from the cache, else rendered (and compressed)
    /// now and cached. `tag` is the format's digest tag (the cache key).
    pub fn body(&self, kind: Kind, tag: &PageTag, coding: Coding) -> Bytes {
        self.cache.get_or_make((*tag, coding), || {
            encode(render::render_format(&self.spec, &self.cfg, kind), coding)
        })
    }

    /// Renders a format and caches it gzip-compressed (what readers ask for); returns its size.
    fn warm(&self, kind: Kind, tag: &PageTag) -> u64 {
        self.body(kind, tag, Coding::Gzip).len() as u64
    }
}

/// Renders and caches the term feeds a change touched (snapshot `generation`), most popular
/// first (by how many articles their term has), up to half the cache's capacity: the rest
/// is for feeds asked for later. Older bodies make room by the cache's own order (least
/// recently used first). Stops early once a newer snapshot is published: during a burst of
/// changes only the last one's feeds are worth making.
pub fn prewarm(mut feeds: Vec<Warm>, cache: &FeedCache, generation: u64) {
    feeds.sort_by_key(|w| std::cmp::Reverse(w.feed.spec.total));
    let mut warmed = 0;
    for w in feeds {
        if warmed >= cache.capacity / 2 || cache.latest.load(Relaxed) != generation {
            break;
        }
        warmed += w.feed.warm(w.kind, &w.tag);
    }
}

/// A term feed in one format to render ahead of requests (see [`prewarm`]).
pub struct Warm {
    pub feed: Arc<LazyFeed>,
    pub kind: Kind,
    /// The format's digest tag (the cache key).
    pub tag: PageTag,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: u8) -> PageTag {
        PageTag::of(&[n])
    }

    fn term_feed(total: usize, name: &str, cache: &Arc<FeedCache>) -> Arc<Warm> {
        let a = crate::model::fixtures::article(&format!("{name}.txt"), name, 1);
        let spec = FeedSpec {
            dir: format!("tags/{name}/"),
            key: format!("tags/{name}"),
            title: name.into(),
            name: name.into(),
            total,
            description: String::new(),
            html_url: "https://news.example.com/".into(),
            updated: a.updated,
            entries: std::borrow::Cow::Owned(vec![Arc::new(a)]),
            archive: None,
            page: 1,
        };
        let tag = PageTag::of_hash(&spec.digest("settings", Kind::Atom));
        let feed = LazyFeed {
            spec,
            cfg: Arc::new(crate::render::tests::config()),
            cache: cache.clone(),
        };
        Arc::new(Warm {
            feed: Arc::new(feed),
            kind: Kind::Atom,
            tag,
        })
    }

    fn warm(w: &Warm) -> Warm {
        Warm {
            feed: w.feed.clone(),
            kind: w.kind,
            tag: w.tag,
        }
    }

    #[test]
    fn prewarm_renders_the_most_popular_changed_feeds_even_into_a_full_cache() {
        let probe = Arc::new(FeedCache::new(1 << 20, Arc::default()));
        let p = term_feed(1, "popular", &probe);
        let size = p.feed.body(p.kind, &p.tag, Coding::Gzip).len() as u64;
        // Room for two such bodies, so prewarming stops after one (half the capacity).
        let cache = Arc::new(FeedCache::new(2 * size, Arc::default()));
        cache.insert((tag(9), Coding::Gzip), Bytes::from(vec![0; size as usize]));
        let rare = term_feed(1, "rare", &cache);
        let popular = term_feed(9, "popular", &cache);
        let cached = |w: &Warm| cache.get(&(w.tag, Coding::Gzip)).is_some();
        // Prewarming for a snapshot that is no longer the latest makes nothing.
        cache.published(2);
        prewarm(vec![warm(&popular)], &cache, 1);
        assert!(!cached(&popular));
        prewarm(vec![warm(&rare), warm(&popular)], &cache, 2);
        assert!(cached(&popular), "the most popular feed was not prewarmed");
        assert!(!cached(&rare), "prewarming went past half the cache");
        // What is cached is what a request would have rendered.
        let direct = crate::render::render_format(
            &popular.feed.spec,
            &crate::render::tests::config(),
            Kind::Atom,
        );
        assert_eq!(
            popular
                .feed
                .body(Kind::Atom, &popular.tag, Coding::Identity),
            direct
        );
    }

    #[test]
    fn concurrent_requests_for_one_missing_body_render_it_once() {
        let metrics = Arc::new(Metrics::default());
        let cache = FeedCache::new(1 << 20, metrics.clone());
        let started = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    started.wait();
                    let body = cache.get_or_make((tag(1), Coding::Gzip), || {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                        Bytes::from_static(b"body")
                    });
                    assert_eq!(body, "body");
                });
            }
        });
        assert_eq!(metrics.feed_renders.load(Relaxed), 1);
        assert_eq!(cache.bytes(), 4);
        assert!(cache.lock().pending.is_empty());
    }

    #[test]
    fn cache_stays_within_its_capacity_and_drops_the_least_recently_used() {
        let cache = FeedCache::new(100, Arc::default());
        cache.insert((tag(1), Coding::Gzip), Bytes::from(vec![0; 40]));
        cache.insert((tag(2), Coding::Gzip), Bytes::from(vec![0; 40]));
        // Using 1 makes 2 the least recently used.
        assert!(cache.get(&(tag(1), Coding::Gzip)).is_some());
        cache.insert((tag(3), Coding::Gzip), Bytes::from(vec![0; 40]));
        assert_eq!(cache.bytes(), 80);
        assert!(cache.get(&(tag(2), Coding::Gzip)).is_none());
        assert!(cache.get(&(tag(1), Coding::Gzip)).is_some());
        assert!(cache.get(&(tag(3), Coding::Gzip)).is_some());
        // Replacing an entry counts its size once; a body larger than the cache is not kept.
        cache.insert((tag(3), Coding::Gzip), Bytes::from(vec![0; 10]));
        assert_eq!(cache.bytes(), 50);
        cache.insert((tag(4), Coding::Gzip), Bytes::from(vec![0; 101]));
        assert_eq!(cache.bytes(), 50);
        assert!(cache.get(&(tag(4), Coding::Gzip)).is_none());
    }
}
