//! Publishing: the [`Publisher`] holds what the last snapshot published (routes, article
//! pages, per-route Last-Modified, generation) and makes the next one from the index and the
//! config alone: the routes a change touched are rendered (term feeds as digests, made on
//! request), their Last-Modified settled ([`next_last_modified`]), and the snapshot sent.

use super::*;
use crate::render::{sitemap, FeedSpec};
use crate::serve::snapshot::{feed_link, ArchivePage};

/// What the last snapshot published, and what the next one is compared with.
pub(super) struct Publisher {
    /// Feeds and lists by route, as last published.
    routes: Routes,
    /// Article pages, by slug (served from the articles themselves).
    articles_by_slug: ArticlePages,
    /// Per feed/list route: ETag tag and Last-Modified (also kept in the state).
    route_lm: HashMap<String, (String, i64)>,
    /// Identifies the settings that shape articles and pages (see [`render_fingerprint`]).
    fingerprint: Arc<str>,
    /// When those settings last changed: the least Last-Modified of a page.
    config_epoch: i64,
    /// When the site was first served: the date of a feed with no entries.
    epoch: DateTime<FixedOffset>,
    /// Rendered term feeds and article pages (shared by every snapshot).
    feed_cache: Arc<FeedCache>,
    generation: u64,
    /// When content last changed (Unix seconds).
    last_change: i64,
    /// Feeds in the last snapshot (each format counted).
    feeds: usize,
    tx: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
    /// Told what each publish changed (see [`Published`]).
    listeners: Vec<PublishedTx>,
    /// The content dir's own `robots.txt`, served instead of herald's.
    robots: Option<Arc<[u8]>>,
    /// What the next publish compares with to make only what changed.
    kept: Kept,
    /// When the news sitemap changes by the clock alone (its oldest entry turns two days old).
    news_expires: Option<i64>,
    /// `robots` changed since the last publish.
    robots_changed: bool,
    /// The media files served.
    media: MediaFiles,
    /// `media` changed since the last publish.
    media_changed: bool,
}

/// What a publish leaves to its caller.
pub(super) struct Done {
    /// New Last-Modified values to keep in the state: (route, tag, seconds).
    pub(super) lm_updates: Vec<(String, String, i64)>,
    /// Routes and article pages given a new representation.
    pub(super) rebuilt: usize,
}

impl Publisher {
    pub(super) fn new(
        state: &State,
        cfg: &Config,
        feed_cache: Arc<FeedCache>,
        tx: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
        now: i64,
    ) -> Publisher {
        let epoch = crate::site_epoch(state, utc(now)).unwrap_or_else(|_| utc(now).fixed_offset());
        let fingerprint: Arc<str> = render_fingerprint(cfg).into();
        let config_epoch = state.config_epoch(&fingerprint, now).unwrap_or(now);
        Publisher {
            routes: Routes::new(),
            articles_by_slug: ArticlePages::new(),
            route_lm: state.load_routes().unwrap_or_default(),
            fingerprint,
            config_epoch,
            epoch,
            feed_cache,
            generation: 0,
            last_change: now,
            feeds: 0,
            tx,
            listeners: Vec::new(),
            robots: None,
            kept: Kept::default(),
            news_expires: None,
            robots_changed: false,
            media: MediaFiles::default(),
            media_changed: false,
        }
    }

    /// The media files served from the next publish on.
    pub(super) fn set_media(&mut self, media: MediaFiles) {
        self.media = media;
        self.media_changed = true;
    }

    /// The content dir's own `robots.txt` (None: herald's); true when that is a change.
    pub(super) fn set_robots(&mut self, robots: Option<Vec<u8>>) -> bool {
        let robots: Option<Arc<[u8]>> = robots.map(Into::into);
        let changed = robots != self.robots;
        self.robots = robots;
        self.robots_changed |= changed;
        changed
    }

    /// Whether the lists must be published again though no article changed: the news
    /// sitemap drops an entry by the clock alone, or `robots.txt` changed.
    pub(super) fn lists_due(&self, now: i64) -> bool {
        self.robots_changed || self.media_changed || self.news_expires.is_some_and(|t| now >= t)
    }

    /// `tx` is told what each publish from now on changes.
    pub(super) fn listen(&mut self, tx: PublishedTx) {
        self.listeners.push(tx);
    }

    /// New settings: pages made from now on carry their fingerprint, and date from when
    /// the state first saw it at the least. `new_state`: the state store was opened anew
    /// (it keeps its own Last-Modified per route).
    pub(super) fn reconfigure(&mut self, cfg: &Config, state: &State, new_state: bool, now: i64) {
        if new_state {
            self.route_lm = state.load_routes().unwrap_or_default();
        }
        self.fingerprint = render_fingerprint(cfg).into();
        self.config_epoch = state.config_epoch(&self.fingerprint, now).unwrap_or(now);
    }

    pub(super) fn fingerprint(&self) -> &Arc<str> {
        &self.fingerprint
    }

    pub(super) fn generation(&self) -> u64 {
        self.generation
    }

    pub(super) fn last_change(&self) -> i64 {
        self.last_change
    }

    pub(super) fn feeds(&self) -> usize {
        self.feeds
    }

    /// Renders what `changed` affects (everything when `full`) and publishes a new snapshot:
    /// render, settle, article pages, send, warm.
    pub(super) fn publish(
        &mut self,
        index: &Index,
        cfg: &Arc<Config>,
        changed: &[Pair],
        full: bool,
        now: i64,
    ) -> Done {
        let t_render = Instant::now();
        let mut kept = std::mem::take(&mut self.kept);
        if full {
            kept.sitemaps.rebuild(index.articles());
        } else {
            kept.sitemaps.apply(changed);
        }
        let Rendering {
            prepared,
            removed,
            feeds,
            news_expires,
        } = self.render(index, cfg, changed, full, now, &mut kept);
        self.kept = kept;
        self.news_expires = news_expires;
        self.robots_changed = false;
        self.media_changed = false;
        debug!(
            routes = prepared.len(),
            ms = t_render.elapsed().as_millis() as u64,
            "phase: render rss={}",
            crate::serve::metrics::rss_mb()
        );
        let t_prep = Instant::now();
        let mut routes = if full {
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
            rebuilt,
            changed: changed_routes,
            added,
        } = self.settle(prepared, &mut routes, now, cfg);
        let (articles_by_slug, pages) = self.article_pages(index, changed, full);
        debug!(
            ms = t_prep.elapsed().as_millis() as u64,
            "phase: routes rss={}",
            crate::serve::metrics::rss_mb()
        );
        if !changed.is_empty() || self.generation == 0 {
            self.last_change = now;
        }
        self.routes = routes;
        self.articles_by_slug = articles_by_slug;
        self.feeds = feeds;
        let snapshot = self.send(cfg, index.len());
        let published = Arc::new(Published {
            generation: self.generation,
            changed: changed_routes,
            added,
            removed,
            snapshot,
        });
        self.listeners.retain(|l| l.send(published.clone()).is_ok());
        // Compress what readers poll (feeds, index, OPML) now, in the background; then render
        // the most popular of the changed term feeds into their cache.
        let (feed_cache, generation) = (self.feed_cache.clone(), self.generation);
        feed_cache.published(generation);
        rayon::spawn(move || {
            warm.iter().for_each(|r| r.warm());
            feed_cache::prewarm(prewarm, &feed_cache, generation);
        });
        Done {
            lm_updates,
            rebuilt: rebuilt + pages,
        }
    }

    /// Renders the routes a change touches: the lists (index, OPML: long with many terms)
    /// beside the main feeds, and the affected term feeds as digests. Also says which
    /// routes are gone (a term no article has any more) and how many feeds there are.
    fn render(
        &self,
        index: &Index,
        cfg: &Arc<Config>,
        changed: &[Pair],
        full: bool,
        now: i64,
        kept: &mut Kept,
    ) -> Rendering {
        let views = index.views(cfg.feed.entries);
        let specs = render::feed_specs(&views, cfg, self.epoch);
        let affected = affected_feeds(changed);
        let mut removed = removed_routes(&affected, &specs);
        let feeds = specs.len() * render::FEED_FORMATS.len();
        let ((mut pages, discovery), main_pages) = rayon::join(
            || {
                let mut pages = Pages::new();
                render::render_front(&views, &specs, cfg, self.epoch, &mut pages);
                let discovery = self.discovery(index, &specs, cfg, full, now, &mut kept.sitemaps);
                (pages, discovery)
            },
            || {
                let mut pages = Pages::new();
                for spec in specs.iter().filter(|spec| spec.key == "feed") {
                    render::render_feed(spec, cfg, &mut pages);
                }
                pages
            },
        );
        pages.extend(main_pages);
        let Discovery {
            pages: found,
            gone,
            news_expires,
        } = discovery;
        pages.extend(found);
        // Sitemap children no longer part of the sitemap.
        removed.extend(gone.iter().map(|p| format!("/{p}")));
        let scope = Scope {
            full,
            affected: &affected,
            now,
        };
        self.paged_views(index, &specs, cfg, &scope, &mut kept.paged);
        let terms: Vec<_> = specs
            .into_iter()
            .filter(|spec| spec.key != "feed" && (full || affected.contains(&spec.key)))
            .collect();
        let lazy = self.term_feeds(terms, cfg);
        let mut prepared: Vec<Prepared> = pages
            .into_par_iter()
            .map(|(path, page)| Prepared {
                route: format!("/{path}"),
                kind: page.kind,
                tag: body_tag(&page.body),
                body: Body::Rendered(page.body),
                updated: page.updated.map(|u| u.timestamp()),
                max_age: page.max_age,
            })
            .collect();
        prepared.extend(lazy);
        Rendering {
            prepared,
            removed,
            feeds,
            news_expires,
        }
    }

    /// The sitemaps (children of articles made again only when what they list changed),
    /// the news sitemap as of `now` and `robots.txt`.
    fn discovery(
        &self,
        index: &Index,
        specs: &[FeedSpec],
        cfg: &Config,
        full: bool,
        now: i64,
        sitemaps: &mut sitemap::Sitemaps,
    ) -> Discovery {
        let (found, gone) = sitemaps.render(specs, cfg, self.epoch, full);
        let mut pages: Pages = found.into_iter().collect();
        let news = sitemap::news_articles(index.newest_first(), utc(now));
        pages.insert("news-sitemap.xml".into(), sitemap::news_sitemap(&news, cfg));
        pages.insert(
            "robots.txt".into(),
            render::robots_txt(self.robots.as_deref(), cfg),
        );
        Discovery {
            pages,
            gone,
            news_expires: sitemap::news_expires(&news),
        }
    }

    /// The views with more articles than one feed holds (the main one and every affected
    /// term's; every view when `full`), kept in `paged` for the documents made from them on
    /// request: RFC 5005 archive documents and older HTML pages (see [`PagedView`]). An
    /// archive page's Last-Modified moves only when what it shows changes (known by a
    /// fingerprint of its articles' pointers, never read) or the settings do (`full`).
    fn paged_views(
        &self,
        index: &Index,
        specs: &[FeedSpec],
        cfg: &Config,
        scope: &Scope,
        paged: &mut PagedViews,
    ) {
        use std::hash::{BuildHasher, Hash, Hasher};
        let Scope {
            full,
            affected,
            now,
        } = *scope;
        let n = cfg.feed.entries;
        let touched = specs
            .iter()
            .filter(|s| full || s.key == "feed" || affected.contains(&s.key));
        for spec in touched {
            let before = paged.remove(&spec.dir);
            if spec.total <= n {
                continue;
            }
            let members: Vec<Arc<Article>> = index
                .view_newest_first(&spec.key)
                .unwrap_or_default()
                .into_iter()
                .cloned()
                .collect();
            let last = render::archive_pages(members.len(), n);
            let archives = (1..=last)
                .map(|k| {
                    // Which articles, which versions, and whether a newer archive follows:
                    // all a page shows of the view.
                    let mut h = foldhash::fast::FixedState::with_seed(0xa2c4).build_hasher();
                    (k, k < last).hash(&mut h);
                    let entries = render::archive_entries(&members, n, k);
                    for a in entries {
                        (Arc::as_ptr(a) as usize).hash(&mut h);
                    }
                    let print = h.finish();
                    let was = before.as_ref().and_then(|v| v.archives.get(k - 1));
                    let last_modified = match was {
                        Some(p) if !full && p.print == print => p.last_modified,
                        Some(p) => p.last_modified.max(now + 1),
                        // At a start anything may have changed while herald was down.
                        None if self.generation == 0 => now,
                        None => entries
                            .iter()
                            .map(|a| a.updated.timestamp())
                            .max()
                            .unwrap_or(now)
                            .min(now),
                    };
                    ArchivePage {
                        print,
                        last_modified,
                    }
                })
                .collect();
            let view = PagedView {
                spec: spec.clone().into_owned(),
                members,
                archives,
            };
            paged.insert(spec.dir.clone(), Arc::new(view));
        }
        // A term no article has any more: its pages go with its feed.
        let live: HashSet<&str> = specs.iter().map(|s| s.dir.as_str()).collect();
        paged.retain(|dir, _| live.contains(dir.as_str()));
    }

    /// The set of article pages after `changed` (every article when `full`), and how many
    /// pages are new. Pages are already rendered and packed: only the set changes.
    fn article_pages(&self, index: &Index, changed: &[Pair], full: bool) -> (ArticlePages, usize) {
        let mut set = if full {
            ArticlePages::new()
        } else {
            let mut set = self.articles_by_slug.clone();
            for o in changed.iter().filter_map(|(o, _)| o.as_ref()) {
                set.remove(&*o.slug);
            }
            set
        };
        let new: Vec<&Arc<Article>> = if full {
            index.articles().collect()
        } else {
            changed.iter().filter_map(|(_, n)| n.as_ref()).collect()
        };
        for a in &new {
            // Every article reaching the index was packed when it was loaded.
            debug_assert!(matches!(a.content, Content::Packed { .. }));
            set.insert(BySlug((*a).clone()), ());
        }
        (set, new.len())
    }

    /// Sends the next snapshot to the HTTP side.
    fn send(&mut self, cfg: &Arc<Config>, articles: usize) -> Arc<Snapshot> {
        self.generation += 1;
        let snapshot = Snapshot {
            routes: self.routes.clone(),
            articles_by_slug: self.articles_by_slug.clone(),
            page_maker: Some(Arc::new(PageMaker {
                cfg: cfg.clone(),
                cache: self.feed_cache.clone(),
                fingerprint: self.fingerprint.clone(),
                feed_fingerprint: self.feed_fingerprint(cfg).into(),
            })),
            config_epoch: self.config_epoch,
            generation: self.generation,
            articles,
            feeds: self.feeds,
            cache_control: Snapshot::cache_control(cfg.server.max_age),
            last_change: self.last_change,
            media: self.media.clone(),
            paged: self.kept.paged.clone(),
        };
        let snapshot = Arc::new(snapshot);
        self.tx.send_replace(Some(snapshot.clone()));
        snapshot
    }

    /// The affected term feeds, published unrendered: per format a digest of everything the
    /// body shows stands for it (the ETag), and the body is made on request.
    fn term_feeds(&self, terms: Vec<FeedSpec<'_>>, cfg: &Arc<Config>) -> Vec<Prepared> {
        let fingerprint = self.feed_fingerprint(cfg);
        let (fingerprint, feed_cache) = (&fingerprint, &self.feed_cache);
        terms
            .into_par_iter()
            .flat_map_iter(|spec| {
                let entries = spec.entries_digest();
                let digests: Vec<_> = render::FEED_FORMATS
                    .iter()
                    .map(|&(ext, kind)| {
                        let tag = PageTag::of_hash(&spec.digest_with(fingerprint, kind, &entries));
                        (format!("/{}", spec.path(ext)), kind, tag)
                    })
                    .collect();
                let updated = spec.entries.iter().map(|a| a.updated.timestamp()).max();
                let feed = Arc::new(LazyFeed {
                    spec: spec.into_owned(),
                    cfg: cfg.clone(),
                    cache: feed_cache.clone(),
                });
                // A full archive page changes only when one of its articles is edited.
                let max_age = render::archive_max_age(&feed.spec, cfg);
                digests.into_iter().map(move |(route, kind, tag)| Prepared {
                    route,
                    kind,
                    tag: tag.as_str().to_string(),
                    body: Body::Lazy(feed.clone(), tag),
                    updated,
                    max_age,
                })
            })
            .collect()
    }

    /// What a term feed's digest stands for besides its entries: the settings, and the hubs
    /// it advertises (settings that do not shape articles, so not part of the fingerprint
    /// the article cache is keyed by).
    fn feed_fingerprint(&self, cfg: &Config) -> String {
        format!("{}|{:?}", self.fingerprint, cfg.hub_urls())
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
        let (mut changed, mut added) = (Vec::new(), Vec::new());
        let hubs = cfg.hub_urls();
        for Prepared {
            route,
            kind,
            body,
            tag,
            updated,
            max_age,
        } in prepared
        {
            if let Some(existing) = self.routes.get(&route).filter(|r| r.tag == tag) {
                routes.insert(route, existing.clone());
                continue;
            }
            let previous = self.route_lm.get(&route).map(|(t, lm)| (t.as_str(), *lm));
            match previous {
                None => added.push(route.clone()),
                Some((t, _)) if t != tag => changed.push(route.clone()),
                Some(_) => {}
            }
            let lm = next_last_modified(previous, &tag, updated, now);
            self.route_lm.insert(route.clone(), (tag.clone(), lm));
            lm_updates.push((route.clone(), tag.clone(), lm));
            let link = kind.is_feed().then(|| feed_link(&hubs, &cfg.url(&route)));
            let rendered = match body {
                Body::Rendered(body) => {
                    let body = body_bytes(&cfg.state_dir, body);
                    let r = Arc::new(Rendered::from_bytes(kind, body, tag, lm, link));
                    // What readers poll is compressed now; sitemaps (large, fetched now and
                    // then by crawlers) when first asked for.
                    if !matches!(kind, Kind::Xml | Kind::Text) {
                        warm.push(r.clone());
                    }
                    r
                }
                Body::Lazy(feed, tag) => {
                    // Archives are read now and then (a reader's backfill): made on request.
                    if feed.spec.archive.is_none() {
                        prewarm.push(feed_cache::Warm {
                            feed: feed.clone(),
                            kind,
                            tag,
                        });
                    }
                    let r = Rendered::lazy(kind, feed, tag, lm, link);
                    Arc::new(match max_age {
                        Some(secs) => r.with_max_age(secs),
                        None => r,
                    })
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
            changed,
            added,
        }
    }
}

impl Engine {
    /// Publishes what `changed` affects (everything when `full`), then keeps the new
    /// Last-Modified values, queues the article cache's writes and reports.
    pub(super) fn publish(&mut self, changed: Vec<Pair>, full: bool, started: Instant) {
        let due = self.publisher.lists_due(now_secs());
        if !full && changed.is_empty() && self.publisher.generation() > 0 && !due {
            self.cache.flush();
            return;
        }
        let published = self
            .publisher
            .publish(&self.index, &self.cfg, &changed, full, now_secs());
        self.records.save_routes(&published.lm_updates);
        // The article cache learns of every new or changed article; made only now, when
        // rendering's transient memory is free again (a first start queues 100 000).
        let new = changed.iter().filter_map(|(_, new)| new.as_ref());
        let fingerprint = self.publisher.fingerprint();
        self.cache.put(new, &self.seen.stamps, fingerprint);
        self.cache.flush();
        self.report(started, changed.len(), published.rebuilt);
    }

    /// Metrics, the log line and systemd's status after a publish.
    fn report(&self, started: Instant, changed: usize, rebuilt: usize) {
        let took = started.elapsed();
        let (generation, feeds) = (self.publisher.generation(), self.publisher.feeds());
        self.metrics.rebuild(took);
        self.metrics
            .articles
            .store(self.index.len() as u64, Relaxed);
        self.metrics.feeds.store(feeds as u64, Relaxed);
        self.metrics
            .page_store_bytes
            .store(self.cache.page_store_len(), Relaxed);
        self.metrics
            .last_change
            .store(self.publisher.last_change(), Relaxed);
        info!(
            generation,
            articles = self.index.len(),
            changed,
            routes_rendered = rebuilt,
            ms = took.as_millis() as u64,
            "published"
        );
        // The first STATUS= goes out with READY=1, from the caller.
        if generation > 1 {
            systemd::status(&self.status());
        }
    }
}

/// What a publish covers: everything (`full`), or the feeds `affected` by a change; at `now`.
struct Scope<'a> {
    full: bool,
    affected: &'a HashSet<String>,
    now: i64,
}

/// What a publish keeps for the next one to make only what changed.
#[derive(Default)]
struct Kept {
    /// The sitemap's articles by month, each month made again only when it changed.
    sitemaps: sitemap::Sitemaps,
    /// The views with older HTML pages, as served.
    paged: PagedViews,
}

/// A rendered body as served: a large one in a mapped file in the state dir, so it is sent
/// with `sendfile` (see [`crate::serve::zerocopy`]); else, or when the dir takes no file, on
/// the heap.
fn body_bytes(state_dir: &Path, body: Vec<u8>) -> bytes::Bytes {
    if body.len() >= crate::serve::zerocopy::MIN_LEN {
        match crate::serve::zerocopy::file_backed(state_dir, &body) {
            Ok(b) => return b,
            Err(e) => debug!(error = %e, "large body kept on the heap"),
        }
    }
    crate::serve::coding::exact(body)
}

/// The sitemaps and `robots.txt`, and what the next publish compares with.
struct Discovery {
    pages: Pages,
    /// Sitemap children no longer part of the sitemap.
    gone: Vec<String>,
    news_expires: Option<i64>,
}

/// What [`Publisher::render`] made.
struct Rendering {
    news_expires: Option<i64>,
    prepared: Vec<Prepared>,
    /// Routes of term feeds whose term is gone.
    removed: Vec<String>,
    /// Feeds in the snapshot (each format counted).
    feeds: usize,
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

/// What [`Publisher::settle`] leaves for after publishing.
pub(super) struct Settled {
    /// Representations to compress in the background.
    warm: Vec<Arc<Rendered>>,
    /// Term feeds to render ahead of requests.
    prewarm: Vec<feed_cache::Warm>,
    /// New Last-Modified values to keep in the state: (route, tag, seconds).
    lm_updates: Vec<(String, String, i64)>,
    rebuilt: usize,
    /// Routes whose tag differs from the one last published (kept in the state).
    changed: Vec<String>,
    /// Routes with no tag published before.
    added: Vec<String>,
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
    /// A `max-age` of its own (a full archive page, which only an edit changes).
    max_age: Option<u32>,
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
