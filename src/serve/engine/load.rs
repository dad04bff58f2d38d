//! Loading: the records and the article cache read while the first scan runs, files read
//! and parsed in chunks on every core (the page store written beside), and the index
//! brought up to date.

use super::*;

impl Engine {
    pub(super) fn log_skip(&mut self, s: &Skipped) {
        if !self.logged.insert((s.path.clone(), s.message.clone())) {
            return;
        }
        self.metrics.skipped(s.reason.as_str());
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
    pub(super) fn apply(
        &mut self,
        touched: BTreeSet<String>,
        mut gone: BTreeSet<String>,
        pass: Pass,
    ) -> Vec<Pair> {
        let initial = pass.is_everything();
        let mut preloaded = match pass {
            Pass::Everything { preloaded } => preloaded,
            Pass::Changes => None,
        };
        // A first start (nothing recorded, nothing cached) reads every file: each file's
        // stamp comes from the loader's own look at it, not from a pass of its own.
        let fresh = initial
            && self.records.is_empty()
            && matches!(&preloaded, Some(Ok(p)) if p.records.is_empty() && p.entries.is_empty());
        let (mut to_load, mut stamps) = self.to_load(touched, &mut gone, fresh, initial);
        let now = now_secs();
        let mut cached: Vec<(String, Stamp, Arc<Article>)> = Vec::new();
        // Files present at the last stop that this scan did not find.
        let mut vanished: Vec<String> = Vec::new();
        if initial && self.records.is_empty() {
            let preloaded = preloaded.take().unwrap_or_else(|| self.preload());
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
        let loaded = self.load_files(&to_load, fresh, now);
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

    /// The touched files to read again, each with its stamp: those whose stamp changed (all
    /// of them on an `initial` pass). A file that cannot be looked at is gone. On a `fresh`
    /// start no file is looked at here: the loader's own look gives the stamp.
    fn to_load(
        &self,
        touched: BTreeSet<String>,
        gone: &mut BTreeSet<String>,
        fresh: bool,
        initial: bool,
    ) -> (Vec<String>, Vec<Stamp>) {
        let t_stat = Instant::now();
        let mut to_load = Vec::new();
        let mut stamps = Vec::new();
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
        (to_load, stamps)
    }

    /// Reads and parses files on every core, in chunks, each chunk's packed bodies moved to
    /// the page store (by a helper thread) while the next is parsed: the heap never holds
    /// more than two chunks of bodies, and the cores never wait for the writes. Results keep
    /// the order of `to_load`.
    fn load_files(
        &mut self,
        to_load: &[String],
        fresh: bool,
        now: i64,
    ) -> Vec<Result<Loaded, Skipped>> {
        let t_load = Instant::now();
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
                                loader.load_with_meta(rel)
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
        loaded
    }

    /// Reads the state's records and the usable article-cache entries: those whose file was
    /// there at the last stop, whose page is in the page store, and that were made with the
    /// record their path has (they then take the record's strings). Independent of the scan,
    /// so a start does it while the first scan runs.
    pub(super) fn preload(&self) -> anyhow::Result<Preloaded> {
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
    pub(super) fn take_cached(
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
}

/// The persistent page store when the article cache can point into it, else a private one
/// (or none: pages then stay on the heap).
pub(super) fn open_pages(dir: &Path, state: &State, persistent: bool) -> Option<PageStore> {
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

/// Moves articles' pages into the page store. If the store fails, it is dropped (pages
/// already there stay mapped) and pages stay on the heap from then on.
pub(super) fn spill<'a>(
    store: &mut Option<PageStore>,
    articles: impl Iterator<Item = &'a mut Article>,
) {
    if let Some(s) = store {
        if let Err(e) = s.spill(articles) {
            warn!(error = %e, "page store write failed; keeping article pages in memory from now on");
            *store = None;
        }
    }
}

/// A scoped thread's result; its panic goes on in the caller.
pub(super) fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A parsed file, already an article with its body and summary packed, waiting for its
/// record.
pub(super) struct Loaded {
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
pub(super) fn prepare(mut doc: Document, known: Option<&Record>, cfg: &Config, now: i64) -> Loaded {
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
pub(super) fn finish(
    l: Loaded,
    key: &Arc<str>,
    rec: &Record,
    cfg: &Config,
    now: i64,
) -> Arc<Article> {
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
