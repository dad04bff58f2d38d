//! Publishing: the routes a change touched are rendered (term feeds as digests, made on
//! request), their Last-Modified settled ([`next_last_modified`]), and a new snapshot sent.

use super::*;
use crate::render::FeedSpec;

impl Engine {
    /// A rendered body as served: a large one in a mapped file in the state dir, so it is
    /// sent with `sendfile` (see [`crate::serve::zerocopy`]); else, or when the dir takes no file,
    /// on the heap.
    pub(super) fn body_bytes(&self, body: Vec<u8>) -> bytes::Bytes {
        if body.len() >= crate::serve::zerocopy::MIN_LEN {
            match crate::serve::zerocopy::file_backed(&self.cfg.state_dir, &body) {
                Ok(b) => return b,
                Err(e) => debug!(error = %e, "large body kept on the heap"),
            }
        }
        crate::serve::coding::exact(body)
    }

    /// The cache write for an article now in the index, with its file's stamp.
    pub(super) fn cache_put(
        &self,
        path: &str,
        article: Option<&Arc<Article>>,
    ) -> Option<cache::Op> {
        Some(cache::Op::Put {
            stamp: *self.stamps.get(path)?,
            fingerprint: self.fingerprint.clone(),
            article: article?.clone(),
        })
    }

    pub(super) fn flush_cache(&mut self) {
        let ops = std::mem::take(&mut self.cache_pending);
        if let (Some(c), false) = (&self.cache, ops.is_empty()) {
            c.send(ops);
        }
    }

    /// Renders what `changed` affects (everything when `full`) and publishes a new snapshot.
    pub(super) fn publish(&mut self, changed: Vec<Pair>, full: bool, started: Instant) {
        if !full && changed.is_empty() && self.generation > 0 {
            self.flush_cache();
            return;
        }
        let now = now_secs();
        let cfg = self.cfg.clone();
        let t_render = Instant::now();
        let views = self.index.views(cfg.feed.entries);
        let specs = render::feed_specs(&views, &cfg, self.epoch);
        let affected = affected_feeds(&changed);
        let removed = removed_routes(&affected, &specs);
        let feeds = specs.len() * render::FEED_FORMATS.len();
        // The pages listing every feed (long with many terms) beside the main feeds.
        let (mut pages, main_pages) = rayon::join(
            || {
                let mut pages = Pages::new();
                render::render_front(&views, &specs, &cfg, self.epoch, &mut pages);
                pages
            },
            || {
                let mut pages = Pages::new();
                for spec in specs.iter().filter(|spec| spec.key == "feed") {
                    render::render_feed(spec, &cfg, &mut pages);
                }
                pages
            },
        );
        pages.extend(main_pages);
        let terms: Vec<_> = specs
            .into_iter()
            .filter(|spec| spec.key != "feed" && (full || affected.contains(&spec.key)))
            .collect();
        let lazy = self.term_feeds(terms, &cfg);
        // Article pages are already rendered and packed: only the set of articles changes.
        let mut articles_by_slug = if full {
            ArticlePages::new()
        } else {
            let mut set = self.articles_by_slug.clone();
            for o in changed.iter().filter_map(|(o, _)| o.as_ref()) {
                set.remove(&*o.slug);
            }
            set
        };
        debug!(
            pages = pages.len(),
            ms = t_render.elapsed().as_millis() as u64,
            "phase: render rss={}",
            crate::serve::metrics::rss_mb()
        );
        let t_prep = Instant::now();

        let mut prepared: Vec<Prepared> = pages
            .into_par_iter()
            .map(|(path, page)| Prepared {
                route: format!("/{path}"),
                kind: page.kind,
                tag: body_tag(&page.body),
                body: Body::Rendered(page.body),
                updated: page.updated.map(|u| u.timestamp()),
            })
            .collect();
        prepared.extend(lazy);
        let mut routes: Routes = if full {
            Routes::new()
        } else {
            self.routes.clone()
        };
        for r in &removed {
            routes.remove(r);
        }
        let Settled {
            warm,
            prewarm,
            lm_updates,
            mut rebuilt,
        } = self.settle(prepared, &mut routes, now, &cfg);
        let mut article_pages: Vec<&Arc<Article>> = Vec::new();
        if full {
            article_pages.extend(self.index.articles());
        } else {
            article_pages.extend(changed.iter().filter_map(|(_, n)| n.as_ref()));
        }
        for a in article_pages {
            // Every article reaching the index was packed when it was loaded.
            debug_assert!(matches!(a.content, Content::Packed { .. }));
            articles_by_slug.insert(BySlug(a.clone()), ());
            rebuilt += 1;
        }
        debug!(
            ms = t_prep.elapsed().as_millis() as u64,
            "phase: routes rss={}",
            crate::serve::metrics::rss_mb()
        );
        if !lm_updates.is_empty() {
            if let Err(e) = self.state.save_routes(&lm_updates) {
                self.state_failed(&e);
            }
        }
        if !changed.is_empty() || self.generation == 0 {
            self.last_change = now;
        }
        self.routes = routes;
        self.articles_by_slug = articles_by_slug;
        self.generation += 1;
        self.feeds = feeds;
        let snapshot = Snapshot {
            routes: self.routes.clone(),
            articles_by_slug: self.articles_by_slug.clone(),
            page_maker: Some(Arc::new(PageMaker {
                cfg: cfg.clone(),
                cache: self.feed_cache.clone(),
                fingerprint: self.fingerprint.clone(),
            })),
            config_epoch: self.config_epoch,
            generation: self.generation,
            articles: self.index.len(),
            feeds,
            cache_control: Snapshot::cache_control(cfg.server.max_age),
            last_change: self.last_change,
        };
        self.tx.send_replace(Some(Arc::new(snapshot)));
        // The article cache learns of every new or changed article; made only now, when
        // rendering's transient memory is free again (a first start queues 100 000).
        let puts: Vec<cache::Op> = changed
            .iter()
            .filter_map(|(_, new)| new.as_ref())
            .filter_map(|a| self.cache_put(&a.path, Some(a)))
            .collect();
        self.cache_pending.extend(puts);
        self.flush_cache();
        // Compress what readers poll (feeds, index, OPML) now, in the background; then render
        // the most popular of the changed term feeds into their cache.
        let (feed_cache, generation) = (self.feed_cache.clone(), self.generation);
        feed_cache.published(generation);
        rayon::spawn(move || {
            warm.iter().for_each(|r| r.warm());
            feed_cache::prewarm(prewarm, &feed_cache, generation);
        });
        let took = started.elapsed();
        self.metrics.rebuild(took);
        self.metrics
            .articles
            .store(self.index.len() as u64, Relaxed);
        self.metrics.feeds.store(feeds as u64, Relaxed);
        let store = self.pages.as_ref().map_or(0, PageStore::len);
        self.metrics.page_store_bytes.store(store, Relaxed);
        self.metrics.last_change.store(self.last_change, Relaxed);
        info!(
            generation = self.generation,
            articles = self.index.len(),
            changed = changed.len(),
            routes_rendered = rebuilt,
            ms = took.as_millis() as u64,
            "published"
        );
        // The first STATUS= goes out with READY=1, from the caller.
        if self.generation > 1 {
            systemd::status(&self.status());
        }
    }

    /// The affected term feeds, published unrendered: per format a digest of everything the
    /// body shows stands for it (the ETag), and the body is made on request.
    fn term_feeds(&self, terms: Vec<FeedSpec<'_>>, cfg: &Arc<Config>) -> Vec<Prepared> {
        let (fingerprint, feed_cache) = (&self.fingerprint, &self.feed_cache);
        terms
            .into_par_iter()
            .flat_map_iter(|spec| {
                let digests = render::FEED_FORMATS.map(|(ext, kind)| {
                    let tag = PageTag::of_hash(&spec.digest(fingerprint, kind));
                    (format!("/{}", spec.path(ext)), kind, tag)
                });
                let updated = spec.entries.iter().map(|a| a.updated.timestamp()).max();
                let feed = Arc::new(LazyFeed {
                    spec: spec.into_owned(),
                    cfg: cfg.clone(),
                    cache: feed_cache.clone(),
                });
                digests.into_iter().map(move |(route, kind, tag)| Prepared {
                    route,
                    kind,
                    tag: tag.as_str().to_string(),
                    body: Body::Lazy(feed.clone(), tag),
                    updated,
                })
            })
            .collect()
    }

    /// Settles each prepared route against the last snapshot: an unchanged tag keeps its
    /// representation; a changed one gets its Last-Modified ([`next_last_modified`]) and a
    /// new representation, to be compressed (`warm`) or prewarmed after publishing.
    fn settle(
        &mut self,
        prepared: Vec<Prepared>,
        routes: &mut Routes,
        now: i64,
        cfg: &Config,
    ) -> Settled {
        let mut warm: Vec<Arc<Rendered>> = Vec::new();
        let mut prewarm: Vec<feed_cache::Warm> = Vec::new();
        let mut lm_updates = Vec::new();
        let mut rebuilt = 0;
        for Prepared {
            route,
            kind,
            body,
            tag,
            updated,
        } in prepared
        {
            if let Some(existing) = self.routes.get(&route).filter(|r| r.tag == tag) {
                routes.insert(route, existing.clone());
                continue;
            }
            let previous = self.route_lm.get(&route).map(|(t, lm)| (t.as_str(), *lm));
            let lm = next_last_modified(previous, &tag, updated, now);
            self.route_lm.insert(route.clone(), (tag.clone(), lm));
            lm_updates.push((route.clone(), tag.clone(), lm));
            let self_url = kind.is_feed().then(|| cfg.url(&route));
            let rendered = match body {
                Body::Rendered(body) => {
                    let body = self.body_bytes(body);
                    let r = Arc::new(Rendered::from_bytes(kind, body, tag, lm, self_url));
                    warm.push(r.clone());
                    r
                }
                Body::Lazy(feed, tag) => {
                    prewarm.push(feed_cache::Warm {
                        feed: feed.clone(),
                        kind,
                        tag,
                    });
                    Arc::new(Rendered::lazy(kind, feed, tag, lm, self_url))
                }
            };
            routes.insert(route, rendered);
            rebuilt += 1;
        }
        Settled {
            warm,
            prewarm,
            lm_updates,
            rebuilt,
        }
    }
}

/// The feeds a batch of changed articles touches: the main feed and the feed of every
/// category and tag an article had before or has now (by key: `categories/<slug>`).
fn affected_feeds(changed: &[Pair]) -> HashSet<String> {
    let mut affected: HashSet<String> = ["feed".to_string()].into_iter().collect();
    for a in changed.iter().flat_map(|(o, n)| o.iter().chain(n.iter())) {
        affected.extend(
            a.categories
                .iter()
                .map(|t| format!("categories/{}", t.slug)),
        );
        affected.extend(a.tags.iter().map(|t| format!("tags/{}", t.slug)));
    }
    affected
}

/// The routes of affected feeds whose term no article has any more.
fn removed_routes(affected: &HashSet<String>, specs: &[FeedSpec]) -> Vec<String> {
    let live_keys: HashSet<&str> = specs.iter().map(|s| s.key.as_str()).collect();
    let mut removed: Vec<String> = Vec::new();
    for key in affected.iter().filter(|k| !live_keys.contains(k.as_str())) {
        for (ext, _) in render::FEED_FORMATS {
            removed.push(format!("/{key}/feed.{ext}"));
        }
    }
    removed
}

/// What [`Engine::settle`] leaves for after publishing.
pub(super) struct Settled {
    /// Representations to compress in the background.
    warm: Vec<Arc<Rendered>>,
    /// Term feeds to render ahead of requests.
    prewarm: Vec<feed_cache::Warm>,
    /// New Last-Modified values to keep in the state: (route, tag, seconds).
    lm_updates: Vec<(String, String, i64)>,
    rebuilt: usize,
}

/// A route's Last-Modified (Unix seconds) after a publish made `tag` its version at `now`.
///
/// HTTP dates have one-second resolution and some readers (Tiny Tiny RSS) revalidate with
/// If-Modified-Since alone, so a changed route is dated the second *after* its change:
/// every response that showed an earlier version was sent no later than `now` and showed
/// at most `now`, so its If-Modified-Since is earlier and gets a 200, however many changes
/// fall within one second. Until that second has begun, responses show their own `Date`
/// instead (see [`crate::serve::snapshot::Rendered::last_modified_at`]): Last-Modified is never later
/// than Date, never goes backwards (it is kept per route in the state), and a busy site
/// does not drift ahead of the clock (the next change's value is again `now + 1`). A new
/// route takes its newest entry's `updated`, so a restart or a new state keeps it.
pub(super) fn next_last_modified(
    previous: Option<(&str, i64)>,
    tag: &str,
    updated: Option<i64>,
    now: i64,
) -> i64 {
    match previous {
        Some((t, lm)) if t == tag => lm,
        Some((_, lm)) => lm.max(now + 1),
        None => updated.unwrap_or(now).min(now),
    }
}

/// A route made by a publish, before its Last-Modified is settled.
pub(super) struct Prepared {
    route: String,
    kind: Kind,
    /// The ETag's opaque part: the body's hash, or a term feed's digest.
    tag: String,
    body: Body,
    /// The newest entry's `updated` (Unix seconds), for a new route's Last-Modified.
    updated: Option<i64>,
}

pub(super) enum Body {
    Rendered(Vec<u8>),
    /// A term feed in one format, rendered on request (with its digest tag).
    Lazy(Arc<LazyFeed>, PageTag),
}

#[cfg(test)]
mod tests {
    use super::next_last_modified;

    #[test]
    fn an_unchanged_route_keeps_its_last_modified() {
        assert_eq!(
            next_last_modified(Some(("a", 100)), "a", Some(50), 900),
            100
        );
    }

    #[test]
    fn a_change_is_dated_the_second_after_it() {
        assert_eq!(
            next_last_modified(Some(("a", 100)), "b", Some(50), 900),
            901
        );
        // A second change within the same second: the same value, no drift ahead.
        assert_eq!(next_last_modified(Some(("b", 901)), "c", None, 900), 901);
        // Ten changes in ten seconds stay one second ahead at most.
        let mut lm = 100;
        for (i, now) in (1000..1010).enumerate() {
            lm = next_last_modified(Some((&i.to_string(), lm)), "x", None, now);
            assert_eq!(lm, now + 1);
        }
    }

    #[test]
    fn last_modified_never_goes_backwards() {
        // A value ahead of the clock (an older herald drifted, or the clock was set back).
        assert_eq!(next_last_modified(Some(("a", 5000)), "b", None, 900), 5000);
    }

    #[test]
    fn a_new_route_takes_its_newest_entry_but_never_the_future() {
        assert_eq!(next_last_modified(None, "a", Some(50), 900), 50);
        assert_eq!(next_last_modified(None, "a", Some(5000), 900), 900);
        assert_eq!(next_last_modified(None, "a", None, 900), 900);
    }
}
