//! The engine: the one thread that owns the [`Index`] and the [`State`]. It applies batches
//! of file changes (only the files that changed are re-read), re-renders only the feeds and
//! pages those changes touch, and publishes a new immutable [`Snapshot`] for the HTTP side.
//!
//! It runs on its own OS thread because its work is blocking (SQLite, parsing, rendering,
//! compressing); HTTP handlers never wait for it. If the state store fails, it keeps going
//! with what it holds in memory and writes the records back once the store works again.

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
    self, body_tag, ArticlePages, BySlug, PageMaker, Rendered, Routes, Snapshot,
};
use crate::serve::systemd;
use crate::store::cache::{self, Stamp};
use crate::store::pages::PageStore;
use crate::store::state::{self, Batch, DocKey, State};

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
    /// The records and article-cache entries read while the first scan ran (see `start`),
    /// or why they could not be read.
    preloaded: Option<anyhow::Result<Preloaded>>,
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
            preloaded: None,
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
        self.preloaded = Some(preloaded);
        self.rescan_from(scan, started, true, true);
        // Not taken (no content dir, say): nothing of it is kept.
        self.preloaded = None;
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
                self.rescan(false, false);
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
        self.rescan(true, true);
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

    /// Applies a batch of hints.
    pub fn apply_changes(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let started = Instant::now();
        if changes.contains(&Change::Rescan) {
            // A rescan sees everything, renames included (content-hash takeover).
            self.rescan(false, false);
            return;
        }
        let mut work = Expanded::default();
        let mut changed: Vec<Pair> = Vec::new();
        for c in changes {
            match c {
                Change::Rescan => unreachable!("handled above"),
                Change::Renamed { from, to } => match (self.rel(&from), self.rel(&to)) {
                    (Some(f), Some(t)) if !f.is_empty() && !t.is_empty() => {
                        changed.extend(self.rename(&f, &t));
                        self.expand(&to, &mut work);
                    }
                    _ => {
                        self.expand(&from, &mut work);
                        self.expand(&to, &mut work);
                    }
                },
                Change::Touched(p) => {
                    if self.rel(&p).is_some_and(|r| r.is_empty()) {
                        self.rescan(false, false);
                        continue;
                    }
                    self.expand(&p, &mut work);
                }
            }
        }
        let gone = self.gone_under(&mut work);
        changed.extend(self.apply(work.touched, gone, false, false));
        self.publish(changed, false, started);
    }

    /// Turns a hint into work: a file to re-check, a folder to walk, or paths that are gone.
    /// What was under a folder that is gone or was walked is found once per batch, by
    /// [`Engine::gone_under`].
    fn expand(&self, abs: &Path, work: &mut Expanded) {
        let Some(rel) = self.rel(abs) else {
            return;
        };
        let is_known = |p: &str| self.stamps.contains_key(p) || self.index.get(p).is_some();
        // A symlink to a folder is never walked (as in the scan): `ln -s . mirror` or
        // `ln -s .. up` made while serving would index every article again.
        if is_dir_symlink(abs) {
            debug!(path = %rel, "skipped: symlink to a folder");
            return;
        }
        match std::fs::metadata(abs) {
            Err(_) => {
                // A known path was a file: nothing can be under it.
                if !is_known(&rel) {
                    work.dirs.insert(rel.clone());
                }
                work.gone.insert(rel);
            }
            Ok(m) if m.is_dir() => {
                // A file replaced by a folder of the same name: the file's entry goes.
                if is_known(&rel) {
                    work.gone.insert(rel.clone());
                }
                // Events for files created together with their folder are often lost: walk it.
                for e in walkdir::WalkDir::new(abs)
                    .into_iter()
                    .filter_map(Result::ok)
                {
                    if e.file_type().is_file() || (e.path_is_symlink() && !is_dir_symlink(e.path()))
                    {
                        if let Some(r) = self.rel(e.path()) {
                            work.found.insert(r.clone());
                            work.touched.insert(r);
                        }
                    }
                }
                work.dirs.insert(rel);
            }
            Ok(_) => {
                work.touched.insert(rel);
            }
        }
    }

    /// The batch's gone paths plus every known path under a folder of `work.dirs` that was
    /// not found there now: one pass over what is known, however many folders the batch
    /// names (a pass per deleted path made deleting 100 000 files take minutes).
    fn gone_under(&self, work: &mut Expanded) -> BTreeSet<String> {
        let mut gone = std::mem::take(&mut work.gone);
        if work.dirs.is_empty() {
            return gone;
        }
        let dirs = &work.dirs;
        let under_a_dir = |p: &str| {
            let mut at = p;
            while let Some(i) = at.rfind('/') {
                at = &at[..i];
                if dirs.contains(at) {
                    return true;
                }
            }
            false
        };
        for p in self.stamps.keys().chain(self.index.paths()) {
            if !work.found.contains(&p[..]) && under_a_dir(p) {
                gone.insert(p.to_string());
            }
        }
        gone
    }

    /// Moves an article's record to its new path so it keeps its id and dates.
    fn rename(&mut self, from: &str, to: &str) -> Vec<Pair> {
        let mut moves: Vec<(String, String)> = if self.records.contains_key(from) {
            // A file: nothing is under it (no pass over every record per rename).
            vec![(from.to_string(), to.to_string())]
        } else {
            let prefix = format!("{from}/");
            self.records
                .keys()
                .filter(|p| p.starts_with(&prefix))
                .map(|p| (p.to_string(), format!("{to}{}", &p[from.len()..])))
                .collect()
        };
        moves.sort();
        let mut changed = Vec::new();
        for (f, t) in moves {
            if let Some(rec) = self.records.remove(f.as_str()) {
                if let Err(e) = self.state.rename(&f, &t) {
                    self.state_failed(&e);
                    self.unsaved.insert(t.clone(), rec.clone());
                }
                self.records.insert(t.as_str().into(), rec);
            }
            self.stamps.remove(f.as_str());
            self.cache_pending.push(cache::Op::Delete(f.clone()));
            if let Some(old) = self.index.remove(&f) {
                changed.push((Some(old), None));
            }
            debug!(from = %f, to = %t, "renamed");
        }
        changed
    }

    /// Compares the whole content dir with what is indexed; only changed files are re-read.
    fn rescan(&mut self, initial: bool, full_render: bool) {
        let started = Instant::now();
        let scan = content::scan(self.root());
        self.rescan_from(scan, started, initial, full_render);
    }

    /// [`Engine::rescan`] with the scan already made.
    fn rescan_from(
        &mut self,
        scan: std::io::Result<content::Scan>,
        started: Instant,
        initial: bool,
        full_render: bool,
    ) {
        self.metrics.rescans.fetch_add(1, Relaxed);
        let scan = match scan {
            Ok(s) => s,
            Err(e) => {
                self.metrics.watch_errors.fetch_add(1, Relaxed);
                if initial {
                    error!(dir = %self.root().display(), error = %e, "cannot read the content dir; serving an empty site until it appears");
                    self.publish(Vec::new(), true, started);
                } else {
                    warn!(dir = %self.root().display(), error = %e, "content dir unreadable; keeping the last good feeds");
                }
                return;
            }
        };
        debug!(
            files = scan.files.len(),
            ms = started.elapsed().as_millis() as u64,
            "phase: scan rss={}",
            crate::serve::metrics::rss_mb()
        );
        for s in &scan.skipped {
            self.log_skip(s);
        }
        let present: HashSet<&str> = scan.files.iter().map(String::as_str).collect();
        let gone: BTreeSet<String> = self
            .stamps
            .keys()
            .chain(self.index.paths())
            .filter(|p| !present.contains(&p[..]))
            .map(|p| p.to_string())
            .collect();
        drop(present);
        // A file some process still has open for writing may be half written: it is left as
        // it was until it is closed (the watcher then reports it, or the next scan takes it).
        // Not forever, though: like the watcher, after a while it is taken as it is.
        let hold = (self.cfg.watch.debounce * 20).max(Duration::from_secs(5));
        let now = Instant::now();
        let mut writing = crate::serve::watch::open_for_writing_under(self.root());
        self.held.retain(|p, _| writing.contains(p));
        writing.retain(|p| now.duration_since(*self.held.entry(p.clone()).or_insert(now)) < hold);
        if !writing.is_empty() {
            debug!(files = writing.len(), "left alone while open for writing");
        }
        let touched: BTreeSet<String> = scan
            .files
            .into_iter()
            .filter(|f| !writing.contains(f))
            .collect();
        let changed = self.apply(touched, gone, initial, true);
        self.publish(changed, full_render, started);
    }

    fn log_skip(&mut self, s: &Skipped) {
        if !self.logged.insert((s.path.clone(), s.message.clone())) {
            return;
        }
        self.metrics.skipped(s.reason);
        if s.reason.is_error() {
            warn!(path = %s.path, reason = s.reason.as_str(), "{}", s.message);
        } else {
            debug!(path = %s.path, reason = s.reason.as_str(), "{}", s.message);
        }
    }

    /// Re-reads the touched files whose stamp changed, removes the gone ones, and updates
    /// the state and the index. Returns (old, new) for every article that changed.
    ///
    /// Each file is parsed, turned into an article with the record it most likely has, and
    /// its body and summary packed, all in the parallel stage: no uncompressed body outlives
    /// its file. The state sync then fixes ids, slugs and (for an article renamed while
    /// herald was not running) dates.
    fn apply(
        &mut self,
        touched: BTreeSet<String>,
        mut gone: BTreeSet<String>,
        initial: bool,
        scanned: bool,
    ) -> Vec<Pair> {
        let t_stat = Instant::now();
        let mut to_load = Vec::new();
        let mut stamps = Vec::new();
        // A first start (nothing recorded, nothing cached) reads every file: each file's
        // stamp comes from the loader's own look at it, not from a pass of its own.
        let fresh = initial
            && scanned
            && self.records.is_empty()
            && matches!(&self.preloaded, Some(Ok(p)) if p.records.is_empty() && p.entries.is_empty());
        // Else one stat per file, spread over the cores (a rescan stats every file).
        let candidates: Vec<String> = touched.into_iter().filter(|r| !gone.contains(r)).collect();
        let root = self.root();
        let stamped: Vec<Option<Stamp>> = candidates
            .par_iter()
            .with_min_len(256)
            .map(|rel| {
                if fresh {
                    Some(Stamp::default())
                } else {
                    stamp(&root.join(rel))
                }
            })
            .collect();
        for (rel, st) in candidates.into_iter().zip(stamped) {
            let Some(st) = st else {
                gone.insert(rel);
                continue;
            };
            if self.stamps.get(rel.as_str()) == Some(&st) && !initial {
                continue;
            }
            to_load.push(rel);
            stamps.push(st);
        }
        debug!(
            files = to_load.len(),
            ms = t_stat.elapsed().as_millis() as u64,
            "phase: stat"
        );
        let now = now_secs();
        let mut cached: Vec<(String, Stamp, Arc<Article>)> = Vec::new();
        // Files present at the last stop that this scan did not find.
        let mut vanished: Vec<String> = Vec::new();
        if initial && self.records.is_empty() {
            let preloaded = self.preloaded.take().unwrap_or_else(|| self.preload());
            match preloaded {
                Ok(Preloaded {
                    records,
                    absent,
                    entries,
                }) => {
                    // Usually every file present at the last stop is still there: counting
                    // says so without looking each one up in the scan.
                    let found = to_load
                        .iter()
                        .filter(|p| records.contains_key(p.as_str()) && !absent.contains(*p))
                        .count();
                    if found != records.len() - absent.len() {
                        // `to_load` is every file scanned, in order (from a BTreeSet).
                        debug_assert!(to_load.is_sorted());
                        vanished = records
                            .keys()
                            .filter(|p| {
                                !absent.contains(&p[..])
                                    && to_load.binary_search_by(|s| s.as_str().cmp(p)).is_err()
                            })
                            .map(|p| p.to_string())
                            .collect();
                    }
                    self.records = records;
                    (to_load, stamps) = Self::take_cached(to_load, stamps, entries, &mut cached);
                }
                Err(e) => self.state_failed(&e),
            }
        }
        let t_load = Instant::now();
        // In chunks, each one's pages moved to the page store (by a helper thread) while the
        // next is parsed: the heap never holds more than two chunks of pages, and the cores
        // never wait for the writes.
        let mut loaded: Vec<Result<Loaded, Skipped>> = Vec::with_capacity(to_load.len());
        {
            let (loader, cfg, records) = (&self.loader, &*self.cfg, &self.records);
            // The store is here or with the thread writing the previous chunk.
            let mut idle = Some(&mut self.pages);
            std::thread::scope(|s| {
                let mut spilling = None;
                for chunk in to_load.chunks(LOAD_CHUNK) {
                    let part: Vec<Result<Loaded, Skipped>> = chunk
                        .par_iter()
                        .with_min_len(32)
                        .map(|rel| {
                            let (meta, doc) = if fresh {
                                loader.load_scanned_with_meta(rel)
                            } else if scanned {
                                (None, loader.load_scanned(rel))
                            } else {
                                (None, loader.load(rel))
                            };
                            let mut l = prepare(doc?, records.get(rel.as_str()), cfg, now);
                            if let Some(m) = &meta {
                                l.stamp = stamp_of(m);
                            }
                            Ok(l)
                        })
                        .collect();
                    let mut store = match spilling.take() {
                        Some(h) => {
                            let (done, back) = join(h);
                            loaded.extend(done);
                            back
                        }
                        None => idle.take(),
                    };
                    spilling = Some(s.spawn(move || {
                        let mut part = part;
                        if let Some(store) = store.as_deref_mut() {
                            spill(
                                store,
                                part.iter_mut()
                                    .filter_map(|r| r.as_mut().ok())
                                    .filter_map(|l| Arc::get_mut(&mut l.article)),
                            );
                        }
                        (part, store)
                    }));
                }
                if let Some(h) = spilling {
                    loaded.extend(join(h).0);
                }
            });
        }
        debug!(
            files = to_load.len(),
            ms = t_load.elapsed().as_millis() as u64,
            "phase: load rss={}",
            crate::serve::metrics::rss_mb()
        );
        let mut ready: Vec<Loaded> = Vec::new();
        for ((rel, st), result) in to_load.into_iter().zip(stamps).zip(loaded) {
            match result {
                Ok(mut l) => {
                    self.logged.retain(|(p, _)| p != &rel);
                    for w in &l.warnings {
                        warn!(path = %rel, "{w}");
                    }
                    // Recorded once the article has its final path string (see `finish`).
                    if !fresh {
                        l.stamp = st;
                    }
                    ready.push(l);
                }
                Err(s) => {
                    let st = if fresh {
                        stamp(&self.root().join(&rel))
                    } else {
                        Some(st)
                    };
                    // (On a first start, a file gone since the scan is just gone.)
                    if st.is_some() {
                        self.log_skip(&s);
                    }
                    if let Some(st) = st.filter(|_| is_candidate_path(&rel)) {
                        self.stamps.insert(rel.as_str().into(), st);
                    }
                    gone.insert(rel);
                }
            }
        }
        for rel in &gone {
            // A skipped file that is gone or still bad: forget its stamp only if gone.
            if self.index.get(rel).is_none() && !self.root().join(rel).exists() {
                self.stamps.remove(rel.as_str());
            }
        }
        let removes: Vec<String> = gone
            .iter()
            .filter(|p| self.records.contains_key(p.as_str()) || self.index.get(p).is_some())
            .cloned()
            .collect();
        let t_assign = Instant::now();
        let keys: Vec<DocKey> = ready.iter().map(Loaded::key).collect();
        // With the article cache, most files were not read: only the parsed ones and the
        // vanished ones need the state (a full sync would revisit every record); the cached
        // ones' records are the ones already in memory.
        if initial && !cached.is_empty() {
            self.assign(&keys, vanished, now, false);
        } else if initial && self.records.is_empty() && self.unsaved.is_empty() {
            // A first start (the state holds no record at all): nothing to look up, so the
            // records are made in memory by the store's rules and written right after the
            // first publish (`start`), not on the way to it (~0.8 s of SQLite at 100 000).
            self.assign_in_memory(&keys, &removes, now, false);
            self.first_records_unsaved = true;
        } else {
            self.assign(&keys, removes, now, initial);
        }
        drop(keys);
        debug!(
            ms = t_assign.elapsed().as_millis() as u64,
            "phase: state rss={}",
            crate::serve::metrics::rss_mb()
        );
        let t_index = Instant::now();
        let mut changed = Vec::new();
        let mut cache_ops = Vec::new();
        let mut from_cache = Vec::with_capacity(cached.len());
        for (_, st, article) in cached {
            // The article's path string is its record's key (see `cache::Entry::adopt`).
            self.stamps.insert(article.path.clone(), st);
            from_cache.push(article);
        }
        for (path, w) in self.index.insert_all(from_cache) {
            warn!(path = %path, "{w}");
        }
        for rel in &gone {
            cache_ops.push(cache::Op::Delete(rel.clone()));
            if let Some(old) = self.index.remove(rel) {
                changed.push((Some(old), None));
            }
            if !self.root().join(rel).exists() {
                self.stamps.remove(rel.as_str());
            }
        }
        ready.sort_by(|a, b| a.article.path.cmp(&b.article.path));
        if self.index.is_empty() {
            // A start: nothing to compare with, and the views are built in one pass. Articles
            // are finished on every core (their dates resolved in their zone).
            let (records, cfg) = (&self.records, &*self.cfg);
            let finished: Vec<(Arc<str>, Stamp, Option<Arc<Article>>)> = ready
                .into_par_iter()
                .with_min_len(256)
                .map(|l| match records.get_key_value(&l.article.path) {
                    Some((key, rec)) => (key.clone(), l.stamp, Some(finish(l, key, rec, cfg, now))),
                    None => (l.article.path.clone(), l.stamp, None),
                })
                .collect();
            let mut articles = Vec::with_capacity(finished.len());
            for (key, stamp, article) in finished {
                self.stamps.insert(key, stamp);
                articles.extend(article);
            }
            for (path, w) in self.index.insert_all(articles) {
                warn!(path = %path, "{w}");
            }
            // Everything in the index is new.
            changed.extend(self.index.articles().map(|a| (None, Some(a.clone()))));
            ready = Vec::new();
        }
        for l in ready {
            let Some((key, rec)) = self.records.get_key_value(&l.article.path) else {
                self.stamps.insert(l.article.path.clone(), l.stamp);
                continue;
            };
            self.stamps.insert(key.clone(), l.stamp);
            let path = l.article.path.clone();
            let article = finish(l, key, rec, &self.cfg, now);
            let before = self.index.get(&path).cloned();
            if before.as_deref() == Some(&article) {
                continue;
            }
            let done = self.index.insert(article);
            for (p, w) in &done.warnings {
                warn!(path = %p, "{w}");
            }
            changed.push((before, self.index.get(&path).cloned()));
            changed.extend(done.displaced.into_iter().map(|(b, a)| (Some(b), Some(a))));
        }
        // Cache writes for the new articles are made after publishing (see `publish`).
        self.cache_pending.extend(cache_ops);
        debug!(
            ms = t_index.elapsed().as_millis() as u64,
            "phase: index rss={}",
            crate::serve::metrics::rss_mb()
        );
        changed
    }

    /// Reads the state's records and the usable article-cache entries: those whose file was
    /// there at the last stop, whose page is in the page store, and that were made with the
    /// record their path has (they then take the record's strings). Independent of the scan,
    /// so a start does it while the first scan runs.
    fn preload(&self) -> anyhow::Result<Preloaded> {
        let t_records = Instant::now();
        let (records, absent) = self.state.all_records()?;
        debug!(
            records = records.len(),
            ms = t_records.elapsed().as_millis() as u64,
            "phase: records"
        );
        let t_cache = Instant::now();
        let pages = &self.pages;
        let keep = |path: &str, e: &mut cache::Entry| -> bool {
            let (Some(store), Some((key, rec))) = (pages, records.get_key_value(path)) else {
                return false;
            };
            let (offset, len) = e.page;
            !absent.contains(path)
                && Arc::get_mut(&mut e.article).is_some_and(|a| store.attach(a, offset, len))
                && e.adopt(key, rec)
        };
        let entries = match self.state.load_cache(&self.fingerprint, &keep) {
            Ok(e) => e,
            Err(e) => {
                warn!(
                    error = format!("{e:#}"),
                    "article cache unreadable; parsing every file"
                );
                HashMap::new()
            }
        };
        debug!(
            entries = entries.len(),
            ms = t_cache.elapsed().as_millis() as u64,
            "phase: cache rss={}",
            crate::serve::metrics::rss_mb()
        );
        Ok(Preloaded {
            records,
            absent,
            entries,
        })
    }

    /// Splits the files to load into those the article cache has as they are now (same stamp,
    /// same settings, same record) and those that must be parsed.
    fn take_cached(
        to_load: Vec<String>,
        stamps: Vec<Stamp>,
        mut entries: HashMap<String, cache::Entry>,
        cached: &mut Vec<(String, Stamp, Arc<Article>)>,
    ) -> (Vec<String>, Vec<Stamp>) {
        let mut rest = (Vec::new(), Vec::new());
        for (rel, st) in to_load.into_iter().zip(stamps) {
            match entries.remove(&rel).filter(|e| e.stamp == st) {
                Some(e) => cached.push((rel, st, e.article)),
                None => {
                    rest.0.push(rel);
                    rest.1.push(st);
                }
            }
        }

        debug!(
            cached = cached.len(),
            to_parse = rest.0.len(),
            "article cache"
        );
        rest
    }

    /// Writes the records the state store does not have yet: a first start's (see `apply`),
    /// or those a failing store could not take.
    fn save_unsaved(&mut self) {
        let mut pending: Vec<(&str, &Record)> = if self.first_records_unsaved {
            self.records.iter().map(|(p, r)| (&p[..], r)).collect()
        } else {
            self.unsaved.iter().map(|(p, r)| (p.as_str(), r)).collect()
        };
        if pending.is_empty() {
            return;
        }
        // In key order: SQLite appends to its B-trees instead of splitting pages everywhere.
        pending.sort_unstable_by_key(|(p, _)| *p);
        match self.state.save_records(&pending) {
            Ok(()) => {
                // Records in `unsaved` are there because an earlier write failed.
                if !self.first_records_unsaved {
                    info!(
                        records = pending.len(),
                        "state store writable again; records saved"
                    );
                }
                self.unsaved = HashMap::new();
            }
            Err(e) => {
                self.state_failed(&e);
                if self.first_records_unsaved {
                    // Kept for the retry like any record the store failed to take.
                    let all = self.records.iter().map(|(p, r)| (p.to_string(), r.clone()));
                    self.unsaved.extend(all);
                }
            }
        }
        self.first_records_unsaved = false;
    }

    /// Gets records for documents from the state store (from memory when the store fails)
    /// into `self.records`.
    fn assign(&mut self, refs: &[DocKey], removes: Vec<String>, now: i64, initial: bool) {
        self.save_unsaved();
        let result = if !self.unsaved.is_empty() {
            Err(anyhow::anyhow!("state store still has unsaved records"))
        } else if initial {
            self.state.sync_all(refs, utc(now), true)
        } else {
            self.state.apply(
                &Batch {
                    upserts: refs.to_vec(),
                    removes: removes.clone(),
                },
                utc(now),
                true,
            )
        };
        match result {
            // A first start takes the map as is (no second table while it is copied).
            Ok(recs) if self.records.is_empty() => self.records = recs,
            Ok(recs) => self.records.extend(recs),
            Err(e) => {
                self.state_failed(&e);
                self.assign_in_memory(refs, &removes, now, true);
            }
        }
    }

    fn state_failed(&self, e: &anyhow::Error) {
        self.metrics.state_errors.fetch_add(1, Relaxed);
        error!(
            state = %self.cfg.state_file().display(),
            error = format!("{e:#}"),
            "STATE STORE WRITE FAILED: serving from memory; will retry"
        );
    }

    /// The state store's rules, applied to the in-memory records only.
    /// `unsaved`: remember each record as one the store still needs.
    fn assign_in_memory(&mut self, docs: &[DocKey], removes: &[String], now: i64, unsaved: bool) {
        let mut gone_by_hash: HashMap<blake3::Hash, String> = removes
            .iter()
            .filter_map(|p| {
                let r = self.records.get(p.as_str())?;
                Some((r.hash, p.clone()))
            })
            .collect();
        let ids: HashSet<Arc<str>> = self.records.values().map(|r| r.id.clone()).collect();
        let mut slugs: HashSet<Arc<str>> = self.records.values().map(|r| r.slug.clone()).collect();
        // What a new record would ask for (its id, its slug's words), made on every core: a
        // first start asks it for every file.
        let (records, authority) = (&self.records, &self.cfg.site.tag_authority);
        let wanted: Vec<Option<(String, String)>> = docs
            .par_iter()
            .with_min_len(256)
            .map(|doc| {
                (!records.contains_key(doc.path)).then(|| {
                    (
                        state::tag_id(authority, doc.path),
                        state::slug_base(doc.title),
                    )
                })
            })
            .collect();
        self.records.reserve(docs.len());
        slugs.reserve(docs.len());
        for (doc, wanted) in docs.iter().zip(wanted) {
            let rec = if let Some(mut rec) = self.records.get(doc.path).cloned() {
                if rec.hash != doc.hash {
                    rec.hash = doc.hash;
                    rec.changed_at = Some(utc(now));
                }
                rec
            } else if let Some(old) = gone_by_hash.remove(&doc.hash) {
                let Some(rec) = self.records.remove(old.as_str()) else {
                    unreachable!("gone_by_hash only holds known paths")
                };
                rec
            } else {
                let (base, words) = wanted.unwrap_or_else(|| {
                    (
                        state::tag_id(&self.cfg.site.tag_authority, doc.path),
                        state::slug_base(doc.title),
                    )
                });
                let id = state::first_free(&base, ";", |c| ids.contains(c));
                let slug: Arc<str> = state::first_free(&words, "-", |c| slugs.contains(c)).into();
                slugs.insert(slug.clone());
                Record {
                    id: id.into(),
                    slug,
                    first_seen: utc(now),
                    hash: doc.hash,
                    changed_at: None,
                }
            };
            if unsaved {
                self.unsaved.insert(doc.path.to_string(), rec.clone());
            }
            self.records.insert(doc.path.into(), rec);
        }
    }

    /// A rendered body as served: a large one in a mapped file in the state dir, so it is
    /// sent with `sendfile` (see [`crate::serve::zerocopy`]); else, or when the dir takes no file,
    /// on the heap.
    fn body_bytes(&self, body: Vec<u8>) -> bytes::Bytes {
        if body.len() >= crate::serve::zerocopy::MIN_LEN {
            match crate::serve::zerocopy::file_backed(&self.cfg.state_dir, &body) {
                Ok(b) => return b,
                Err(e) => debug!(error = %e, "large body kept on the heap"),
            }
        }
        snapshot::exact(body)
    }

    /// The cache write for an article now in the index, with its file's stamp.
    fn cache_put(&self, path: &str, article: Option<&Arc<Article>>) -> Option<cache::Op> {
        Some(cache::Op::Put {
            stamp: *self.stamps.get(path)?,
            fingerprint: self.fingerprint.clone(),
            article: article?.clone(),
        })
    }

    fn flush_cache(&mut self) {
        let ops = std::mem::take(&mut self.cache_pending);
        if let (Some(c), false) = (&self.cache, ops.is_empty()) {
            c.send(ops);
        }
    }

    fn status(&self) -> String {
        format!(
            "{} articles, {} feeds, last change {}",
            self.index.len(),
            self.feeds,
            crate::dates::rfc3339(utc(self.last_change).fixed_offset())
        )
    }

    /// Renders what `changed` affects (everything when `full`) and publishes a new snapshot.
    fn publish(&mut self, changed: Vec<Pair>, full: bool, started: Instant) {
        if !full && changed.is_empty() && self.generation > 0 {
            self.flush_cache();
            return;
        }
        let now = now_secs();
        let cfg = self.cfg.clone();
        let t_render = Instant::now();
        let views = self.index.views(cfg.feed.entries);
        let specs = render::feed_specs(&views, &cfg, self.epoch);
        let mut affected: HashSet<String> = ["feed".to_string()].into_iter().collect();
        for a in changed.iter().flat_map(|(o, n)| o.iter().chain(n.iter())) {
            affected.extend(
                a.categories
                    .iter()
                    .map(|t| format!("categories/{}", t.slug)),
            );
            affected.extend(a.tags.iter().map(|t| format!("tags/{}", t.slug)));
        }
        let live_keys: HashSet<&str> = specs.iter().map(|s| s.key.as_str()).collect();
        let mut removed: Vec<String> = Vec::new();
        for key in affected.iter().filter(|k| !live_keys.contains(k.as_str())) {
            for (ext, _) in render::FEED_FORMATS {
                removed.push(format!("/{key}/feed.{ext}"));
            }
        }
        drop(live_keys);
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
        // Term feeds are published unrendered: a digest per format stands for the body.
        let lazy: Vec<Prepared> = terms
            .into_par_iter()
            .flat_map_iter(|spec| {
                let digests = render::FEED_FORMATS.map(|(ext, kind)| {
                    let tag = PageTag::of_hash(&spec.digest(&self.fingerprint, kind));
                    (format!("/{}", spec.path(ext)), kind, tag)
                });
                let updated = spec.entries.iter().map(|a| a.updated.timestamp()).max();
                let feed = Arc::new(LazyFeed {
                    spec: spec.into_owned(),
                    cfg: cfg.clone(),
                    cache: self.feed_cache.clone(),
                });
                digests.into_iter().map(move |(route, kind, tag)| Prepared {
                    route,
                    kind,
                    tag: tag.as_str().to_string(),
                    body: Body::Lazy(feed.clone(), tag),
                    updated,
                })
            })
            .collect();
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
        let mut article_pages: Vec<&Arc<Article>> = Vec::new();
        if full {
            article_pages.extend(self.index.articles());
        } else {
            article_pages.extend(changed.iter().filter_map(|(_, n)| n.as_ref()));
        }
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
        let mut warm: Vec<Arc<Rendered>> = Vec::new();
        let mut prewarm: Vec<Arc<Rendered>> = Vec::new();
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
                    let r = Arc::new(Rendered::lazy(kind, feed, tag, lm, self_url));
                    prewarm.push(r.clone());
                    r
                }
            };
            routes.insert(route, rendered);
            rebuilt += 1;
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
}

/// True when `p` is a symlink that resolves to a folder.
fn is_dir_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}

/// What a batch of hints asks for (see [`Engine::expand`]).
#[derive(Default)]
struct Expanded {
    /// Files to read again.
    touched: BTreeSet<String>,
    /// Paths that are gone.
    gone: BTreeSet<String>,
    /// Folders that are gone or were walked: what is known under them and was not found
    /// now is gone too.
    dirs: HashSet<String>,
    /// Files found by walking `dirs`.
    found: HashSet<String>,
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
fn next_last_modified(
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
struct Prepared {
    route: String,
    kind: Kind,
    /// The ETag's opaque part: the body's hash, or a term feed's digest.
    tag: String,
    body: Body,
    /// The newest entry's `updated` (Unix seconds), for a new route's Last-Modified.
    updated: Option<i64>,
}

enum Body {
    Rendered(Vec<u8>),
    /// A term feed in one format, rendered on request (with its digest tag).
    Lazy(Arc<LazyFeed>, PageTag),
}

/// The persistent page store when the article cache can point into it, else a private one
/// (or none: pages then stay on the heap).
fn open_pages(dir: &Path, state: &State, persistent: bool) -> Option<PageStore> {
    if persistent {
        let recorded = state.meta("pages_token").ok().flatten();
        let live = state.cache_page_bytes().unwrap_or(0);
        // Start a new file when it is not the one the cache rows point into, or when more
        // than half of it is dead (replaced pages): that start parses every file once.
        let keep = |token: &str, len: u64| {
            recorded.as_deref() == Some(token) && len <= 2 * live + (64 << 20)
        };
        match PageStore::open_persistent(dir, keep) {
            Ok(mut store) => {
                if recorded.as_deref() != Some(store.token()) {
                    let saved = state
                        .clear_cache()
                        .and_then(|()| state.set_meta("pages_token", store.token()));
                    if let Err(e) = saved {
                        warn!(error = format!("{e:#}"), "cannot reset the article cache");
                    }
                }
                if let Err(e) = store.map_existing() {
                    warn!(error = %e, "cannot map the page store; parsing every file");
                }
                return Some(store);
            }
            Err(e) => warn!(
                dir = %dir.display(),
                error = %e,
                "page store unusable; using a private one (restarts will parse every file)"
            ),
        }
    }
    PageStore::open_private(dir)
        .map_err(|e| {
            warn!(dir = %dir.display(), error = %e, "no page store; keeping article pages in memory")
        })
        .ok()
}

/// Files parsed at a time before their pages go to the page store.
const LOAD_CHUNK: usize = 4096;

/// Moves articles' pages into the page store. If the store fails, it is dropped (pages
/// already there stay mapped) and pages stay on the heap from then on.
fn spill<'a>(store: &mut Option<PageStore>, articles: impl Iterator<Item = &'a mut Article>) {
    if let Some(s) = store {
        if let Err(e) = s.spill(articles) {
            warn!(error = %e, "page store write failed; keeping article pages in memory from now on");
            *store = None;
        }
    }
}

/// A scoped thread's result; its panic goes on in the caller.
fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A parsed file, already an article with its body and summary packed, waiting for its
/// record.
struct Loaded {
    /// The file's stamp when it was read.
    stamp: Stamp,
    date: Option<RawDate>,
    updated: Option<RawDate>,
    explicit_id: bool,
    /// Already in its `Arc`: the index takes it as is (no 100 000 copies at start).
    article: Arc<Article>,
    warnings: Vec<String>,
}

/// The parallel part of loading a file: the article with the record it most likely has (its
/// current one, or a new one made now), its body and summary packed.
fn prepare(mut doc: Document, known: Option<&Record>, cfg: &Config, now: i64) -> Loaded {
    let record = match known {
        Some(r) if r.hash == doc.hash => r.clone(),
        Some(r) => Record {
            hash: doc.hash,
            changed_at: Some(utc(now)),
            ..r.clone()
        },
        None => Record {
            id: state::tag_id(&cfg.site.tag_authority, &doc.path).into(),
            slug: "".into(),
            first_seen: utc(now),
            hash: doc.hash,
            changed_at: None,
        },
    };
    let mut warnings = std::mem::take(&mut doc.warnings);
    let (date, updated, explicit_id) = (doc.date, doc.updated, doc.id.is_some());
    let (article, more) = Article::new(doc, &record, cfg.site.timezone, utc(now));
    warnings.extend(more);
    Loaded {
        stamp: Stamp::default(),
        date,
        updated,
        explicit_id,
        article: Arc::new({
            let mut a = crate::model::pack_article(article);
            // Here, in parallel; what `finish` sets later are exact-size clones.
            a.shrink_to_fit();
            a
        }),
        warnings,
    }
}

impl Loaded {
    /// What the state needs of it (the article holds the document's path, hash and title).
    fn key(&self) -> DocKey<'_> {
        DocKey {
            path: &self.article.path,
            hash: self.article.hash,
            title: &self.article.title,
        }
    }
}

/// Gives a prepared article its real record: id, slug and dates (which differ from the
/// prepared ones only when the record's times do: a rename while herald was not running).
fn finish(l: Loaded, key: &Arc<str>, rec: &Record, cfg: &Config, now: i64) -> Arc<Article> {
    let mut arc = l.article;
    // Not shared yet: no copy.
    let a = Arc::make_mut(&mut arc);
    let (published, updated, _) =
        crate::model::resolve_dates(l.date, l.updated, rec, cfg.site.timezone, utc(now));
    a.published = published;
    a.updated = updated;
    a.take_record(key, rec, l.explicit_id);
    arc
}

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
