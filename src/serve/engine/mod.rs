//! The engine: the one thread that owns the [`Index`] and the [`State`]. It applies batches
//! of file changes (only the files that changed are re-read), re-renders only the feeds and
//! pages those changes touch, and publishes a new immutable [`Snapshot`] for the HTTP side.
//!
//! It runs on its own OS thread because its work is blocking (SQLite, parsing, rendering,
//! compressing); HTTP handlers never wait for it. If the state store fails, it keeps going
//! with what it holds in memory and writes the records back once the store works again.
//!
//! By concern, each part owned by the engine: `Records` (`records.rs`: ids and slugs,
//! the state store and its fallback), `Seen` (`changes.rs`, which also turns hints into
//! work), `ArticleCache` (`article_cache.rs`), the [`Index`], and the `Publisher`
//! (`publish.rs`: needs only the index and the config). `load.rs` is `apply`, as named
//! steps; this file has the lifecycle (`new`, `start`, `run`, `reload`). ARCHITECTURE.md
//! follows a file change from inotify to the new feed bytes, function by function.

use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use rayon::prelude::*;
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::content::{self, Document, Loader, Skipped};
use crate::dates::RawDate;
use crate::index::Index;
use crate::model::Record;
use crate::model::{Article, Content, PageTag};
use crate::render::{self, Kind, Pages};
use crate::serve::events::{Change, Msg, Published, PublishedTx};
use crate::serve::feed_cache::{self, FeedCache, LazyFeed};
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::{
    body_tag, ArticlePages, BySlug, Media, MediaFiles, PageMaker, PagedView, PagedViews, Rendered,
    Routes, Snapshot,
};
use crate::serve::systemd;
use crate::store::cache::{self, Stamp};
use crate::store::pages::PageStore;
use crate::store::state::{Batch, DocKey, State};

mod article_cache;
mod changes;
mod load;
mod media;
mod publish;
mod records;

use article_cache::*;
use changes::Seen;
use publish::Publisher;
use records::Records;

fn stamp(path: &Path) -> Option<Stamp> {
    Some(stamp_of(&std::fs::metadata(path).ok()?))
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    Stamp::of(m)
}

type Pair = (Option<Arc<Article>>, Option<Arc<Article>>);

/// How much a pass over the content dir does again.
enum Pass {
    /// Only what changed: files whose stamp moved, the feeds they touch.
    Changes,
    /// Everything: every file read again, every route rendered (a start, or new settings).
    /// A start hands over what it read of the state while the first scan ran; without it,
    /// the state is read when needed.
    Everything {
        preloaded: Option<anyhow::Result<Preloaded>>,
    },
}

impl Pass {
    fn is_everything(&self) -> bool {
        matches!(self, Pass::Everything { .. })
    }
}

/// What a start reads from the state before it needs the scan: every record by path, the
/// paths whose file was gone at the last stop, and the usable article-cache entries.
struct Preloaded {
    records: HashMap<Arc<str>, Record>,
    absent: HashSet<String>,
    entries: HashMap<String, cache::Entry>,
}

/// The engine, by concern: the index it keeps, the records that give articles their ids,
/// what it has seen on disk, the article cache, and the publisher that turns the index into
/// snapshots.
pub struct Engine {
    cfg: Arc<Config>,
    loader: Arc<Loader>,
    index: Index,
    /// Ids, slugs and first-seen times: the state store, and the map worked from.
    records: Records,
    /// Stamps of the files as last read, files held while written, skips logged.
    seen: Seen,
    /// Parsed articles kept across restarts, and the page store their bodies live in.
    cache: ArticleCache,
    /// What the last snapshot published; makes the next one.
    publisher: Publisher,
    metrics: Arc<Metrics>,
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

fn utc(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

impl Engine {
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<Metrics>,
        tx: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
    ) -> Engine {
        let records = Records::open(&cfg, metrics.clone());
        let cache = ArticleCache::open(&cfg, records.state());
        let feed_cache = Arc::new(FeedCache::new(cfg.server.feed_cache_bytes, metrics.clone()));
        let publisher = Publisher::new(records.state(), &cfg, feed_cache, tx, now_secs());
        metrics.know_skip_reasons(content::SkipReason::ALL.map(content::SkipReason::as_str));
        Engine {
            loader: Arc::new(Loader::new(&cfg)),
            cfg,
            index: Index::new(),
            records,
            seen: Seen::default(),
            cache,
            publisher,
            metrics,
        }
    }

    /// `tx` is told what each publish changes, from the first one on.
    pub fn on_publish(&mut self, tx: PublishedTx) {
        self.publisher.listen(tx);
    }

    /// The first full scan; publishes the first snapshot. The scan walks the tree (one core,
    /// mostly in the kernel) while this thread reads the state and the article cache.
    pub fn start(&mut self) {
        let root = self.root().to_path_buf();
        let started = Instant::now();
        let (scan, preloaded) = std::thread::scope(|s| {
            let scan = std::thread::Builder::new()
                .name("herald-scan".into())
                .spawn_scoped(s, || content::scan(&root));
            let preloaded = self
                .cache
                .preload(self.records.state(), self.publisher.fingerprint());
            let scan = match scan {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err(_) => content::scan(&root),
            };
            (scan, preloaded)
        });
        self.rescan_from(
            scan,
            started,
            Pass::Everything {
                preloaded: Some(preloaded),
            },
        );
        // Serving has begun: now the first start's records go to the state store. (Should
        // herald die before this commits, the next start is a first start again and gives
        // every article the same id and slug: both follow from the paths and titles alone.)
        self.records.save_unsaved();
    }

    /// Applies messages until told to stop. Pings the systemd watchdog from this loop, so a
    /// stuck engine gets the daemon restarted.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let watchdog = systemd::watchdog_interval();
        let rescan_every = self.cfg.watch.rescan_interval;
        let mut next_rescan = Instant::now() + rescan_every;
        loop {
            let mut wait = watchdog.unwrap_or(Duration::from_secs(1));
            if !rescan_every.is_zero() {
                wait = wait.min(next_rescan.saturating_duration_since(Instant::now()));
            }
            let msg = rx.recv_timeout(wait);
            // Cleared below, once this message (and a due rescan) is done: /healthz reports an
            // indexer that stays busy too long.
            self.metrics.indexer_busy_since.store(now_secs(), Relaxed);
            match msg {
                Ok(Msg::Changes(mut changes)) => {
                    self.metrics.change_batches_queued.fetch_sub(1, Relaxed);
                    // Take everything already queued as one batch.
                    let mut stop = false;
                    while let Ok(m) = rx.try_recv() {
                        match m {
                            Msg::Changes(more) => {
                                self.metrics.change_batches_queued.fetch_sub(1, Relaxed);
                                changes.extend(more);
                            }
                            Msg::Reload(cfg) => {
                                self.apply_changes(std::mem::take(&mut changes));
                                self.reload(*cfg);
                            }
                            Msg::Shutdown => stop = true,
                        }
                    }
                    self.apply_changes(changes);
                    if stop {
                        break;
                    }
                }
                Ok(Msg::Reload(cfg)) => self.reload(*cfg),
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                // The news sitemap drops entries as they turn two days old.
                Err(RecvTimeoutError::Timeout) if self.publisher.lists_due(now_secs()) => {
                    self.publish(Vec::new(), false, Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if !rescan_every.is_zero() && Instant::now() >= next_rescan {
                debug!("periodic rescan");
                self.rescan(Pass::Changes);
                next_rescan = Instant::now() + rescan_every;
            }
            self.metrics.indexer_busy_since.store(0, Relaxed);
            systemd::watchdog();
        }
        debug!("engine stopped");
    }

    /// Applies a new config (RELOADING=1 was sent by whoever received SIGHUP).
    fn reload(&mut self, cfg: Config) {
        let old = std::mem::replace(&mut self.cfg, Arc::new(cfg));
        let new_state = old.state_file() != self.cfg.state_file()
            || old.site.tag_authority != self.cfg.site.tag_authority;
        if new_state {
            self.records = Records::open(&self.cfg, self.metrics.clone());
        }
        if old.server.listen != self.cfg.server.listen {
            warn!("server.listen changed: new addresses take effect after a restart");
        }
        self.loader = Arc::new(Loader::new(&self.cfg));
        self.seen.media.clear();
        self.publisher
            .reconfigure(&self.cfg, self.records.state(), new_state, now_secs());
        // Parse settings may have changed: read everything again, render everything.
        self.seen.stamps.clear();
        self.index = Index::new();
        self.rescan(Pass::Everything { preloaded: None });
        info!(config = %self.cfg.file_display(), "config reloaded");
        systemd::ready(&self.status());
    }

    fn root(&self) -> &Path {
        &self.cfg.content_dir
    }

    fn rel(&self, abs: &Path) -> Option<String> {
        let rel = abs.strip_prefix(self.root()).ok()?;
        let s = rel.to_str()?.replace('\\', "/");
        Some(s)
    }

    fn status(&self) -> String {
        format!(
            "{} articles, {} feeds, last change {}",
            self.index.len(),
            self.publisher.feeds(),
            crate::dates::rfc3339(utc(self.publisher.last_change()).fixed_offset())
        )
    }
}

/// Files parsed at a time before their pages go to the page store.
const LOAD_CHUNK: usize = 4096;

/// The version of the article page layout and of what the article cache keeps of it: a new
/// version (the page gained a `<meta name="description">` in 2; the store keeps packed
/// bodies, not pages, since 3; text sources keep literal `<…>` and `&` in titles and
/// terms, and summaries join inline text, since 4; relative URLs resolve against the
/// article's folder, and articles carry a featured image and enclosure, since 5; the site's
/// header and navigation, links to the category and tag pages, since 6) makes pages and
/// cache rows from an older herald stale, and moves pages' Last-Modified like a settings
/// change does.
const PAGE_LAYOUT: u32 = 6;

/// The settings (and page layout) that shape rendered pages, as one fingerprint.
fn render_fingerprint(cfg: &Config) -> String {
    let text = format!(
        "{PAGE_LAYOUT}|{:?}|{:?}|{:?}|{}",
        cfg.site, cfg.feed, cfg.labels, cfg.max_article_bytes
    );
    blake3::hash(text.as_bytes()).to_hex().to_string()
}

/// Whether a path could be an article at all (cheap, by name).
fn is_candidate_path(rel: &str) -> bool {
    content::is_candidate(Path::new(rel)).is_ok()
}
