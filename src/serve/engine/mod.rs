//! The engine: the one thread that owns the [`Index`] and the [`State`]. It applies batches
//! of file changes (only the files that changed are re-read), re-renders only the feeds and
//! pages those changes touch, and publishes a new immutable [`Snapshot`] for the HTTP side.
//!
//! It runs on its own OS thread because its work is blocking (SQLite, parsing, rendering,
//! compressing); HTTP handlers never wait for it. If the state store fails, it keeps going
//! with what it holds in memory and writes the records back once the store works again.
//!
//! By concern: this file has the lifecycle (`new`, `start`, `run`, `reload`);
//! `changes.rs` turns hints into work, `load.rs` reads and parses files into the index,
//! `records.rs` assigns records (store or memory), `publish.rs` renders what changed and
//! sends the snapshot. A file change, from inotify to new feed bytes: `watch::debounce_loop`
//! → `Msg::Changes` → [`Engine::run`] → `apply_changes` → `expand` / `gone_under` → `apply`
//! (stat, `Loader::load`, `assign`, index insert/remove) → `publish` (`feed_specs`, digests
//! or `render_format`, `next_last_modified`) → the snapshot on the watch channel → HTTP.

use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
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
use crate::serve::events::{Change, Msg};
use crate::serve::feed_cache::{self, FeedCache, LazyFeed};
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::{
    body_tag, ArticlePages, BySlug, PageMaker, Rendered, Routes, Snapshot,
};
use crate::serve::systemd;
use crate::store::cache::{self, Stamp};
use crate::store::pages::PageStore;
use crate::store::state::{self, Batch, DocKey, State};

mod changes;
mod load;
mod publish;
mod records;

use load::*;

fn stamp(path: &Path) -> Option<Stamp> {
    Some(stamp_of(&std::fs::metadata(path).ok()?))
}

fn stamp_of(m: &std::fs::Metadata) -> Stamp {
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default();
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(m);
    #[cfg(not(unix))]
    let ino = 0;
    Stamp {
        len: m.len(),
        mtime_s: i64::try_from(mtime.as_secs()).unwrap_or(i64::MAX),
        mtime_ns: mtime.subsec_nanos(),
        ino,
    }
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

pub struct Engine {
    cfg: Arc<Config>,
    loader: Loader,
    state: State,
    index: Index,
    /// By path; the keys are the same strings as the articles' paths and the stamp map's
    /// keys (one copy of each path, not three).
    records: HashMap<Arc<str>, Record>,
    /// Records the state store does not have yet: a first start's, written right after the
    /// first publish, or those it failed to take, written back when it works again.
    unsaved: HashMap<String, Record>,

    /// Every record is a first start's, not written yet (see `apply`).
    first_records_unsaved: bool,
    /// Stamp of every candidate file as last read (articles and skipped ones).
    stamps: HashMap<Arc<str>, Stamp>,
    /// Files a rescan found open for writing, and since when (see `rescan`).
    held: HashMap<String, Instant>,
    /// Skip messages already logged, so rescans do not repeat them.
    logged: HashSet<(String, String)>,
    routes: Routes,
    /// Article pages, by slug (served from the articles themselves).
    articles_by_slug: ArticlePages,
    /// Per feed/list route: ETag tag and Last-Modified (also kept in the state).
    route_lm: HashMap<String, (String, i64)>,
    /// When the settings that shape pages last changed: the least Last-Modified of a page.
    config_epoch: i64,
    /// Identifies the settings that shape articles and pages (see [`render_fingerprint`]).
    fingerprint: Arc<str>,
    /// Writes parsed articles to the article cache, off this thread.
    cache: Option<cache::Writer>,
    /// Cache writes waiting for the next publish (so they never compete with the work
    /// that leads to it, the first start above all).
    cache_pending: Vec<cache::Op>,
    /// Where article pages live instead of the heap (None: no usable state dir).
    pages: Option<PageStore>,
    /// Feeds in the last snapshot (each format counted).
    feeds: usize,
    /// Rendered term feeds (shared by every snapshot's term-feed routes).
    feed_cache: Arc<FeedCache>,
    epoch: DateTime<FixedOffset>,
    generation: u64,
    last_change: i64,
    metrics: Arc<Metrics>,
    tx: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

fn utc(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// Opens the state store; if that fails, herald still serves, from memory.
fn open_state(cfg: &Config, metrics: &Metrics) -> State {
    match State::open(&cfg.state_file(), &cfg.site.tag_authority) {
        Ok(s) => s,
        Err(e) => {
            metrics.state_errors.fetch_add(1, Relaxed);
            error!(
                error = format!("{e:#}"),
                "STATE STORE UNAVAILABLE: serving from memory; ids of new articles will not survive a restart"
            );
            State::in_memory(&cfg.site.tag_authority)
                .expect("an in-memory SQLite database always opens")
        }
    }
}

impl Engine {
    pub fn new(
        cfg: Arc<Config>,
        metrics: Arc<Metrics>,
        tx: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
    ) -> Engine {
        let state = open_state(&cfg, &metrics);
        let now = now_secs();
        let epoch = crate::site_epoch(&state, utc(now)).unwrap_or_else(|_| utc(now).fixed_offset());
        let route_lm = state.load_routes().unwrap_or_default();
        let fingerprint: Arc<str> = render_fingerprint(&cfg).into();
        let config_epoch = state.config_epoch(&fingerprint, now).unwrap_or(now);
        // The cache lives in the state file; with no state file there is nothing to cache in.
        let cache = cfg
            .state_file()
            .exists()
            .then(|| cache::Writer::start(&cfg.state_file()));
        let pages = cfg
            .state_file()
            .parent()
            .and_then(|dir| open_pages(dir, &state, cache.is_some()));
        let feed_cache = Arc::new(FeedCache::new(cfg.server.feed_cache_bytes, metrics.clone()));
        metrics.know_skip_reasons(content::SkipReason::ALL.map(content::SkipReason::as_str));
        Engine {
            loader: Loader::new(&cfg),
            cfg,
            state,
            index: Index::new(),
            records: HashMap::new(),
            unsaved: HashMap::new(),

            first_records_unsaved: false,
            stamps: HashMap::new(),
            logged: HashSet::new(),
            held: HashMap::new(),
            routes: Routes::new(),
            articles_by_slug: ArticlePages::new(),
            route_lm,
            config_epoch,
            fingerprint,
            cache,
            cache_pending: Vec::new(),
            pages,
            feeds: 0,
            feed_cache,
            epoch,
            generation: 0,
            last_change: now,
            metrics,
            tx,
        }
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
            let preloaded = self.preload();
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
        self.save_unsaved();
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
        if old.state_file() != self.cfg.state_file()
            || old.site.tag_authority != self.cfg.site.tag_authority
        {
            self.state = open_state(&self.cfg, &self.metrics);
            self.route_lm = self.state.load_routes().unwrap_or_default();
            self.records.clear();
        }
        if old.server.listen != self.cfg.server.listen {
            warn!("server.listen changed: new addresses take effect after a restart");
        }
        self.loader = Loader::new(&self.cfg);
        self.fingerprint = render_fingerprint(&self.cfg).into();
        self.config_epoch = self
            .state
            .config_epoch(&self.fingerprint, now_secs())
            .unwrap_or_else(|_| now_secs());
        // Parse settings may have changed: read everything again, render everything.
        self.stamps.clear();
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
            self.feeds,
            crate::dates::rfc3339(utc(self.last_change).fixed_offset())
        )
    }
}

/// Files parsed at a time before their pages go to the page store.
const LOAD_CHUNK: usize = 4096;

/// The version of the article page layout and of what the article cache keeps of it: a new
/// version (the page gained a `<meta name="description">` in 2; the store keeps packed
/// bodies, not pages, since 3; text sources keep literal `<…>` and `&` in titles and
/// terms, and summaries join inline text, since 4) makes pages and cache rows from an
/// older herald stale, and moves pages' Last-Modified like a settings change does.
const PAGE_LAYOUT: u32 = 4;

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
