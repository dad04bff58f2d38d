//! Loading: the records and the article cache read while the first scan runs, files read
//! and parsed in chunks on every core (the page store written beside), and the index
//! brought up to date.

use super::*;

impl Engine {
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
        let preloaded = match pass {
            Pass::Everything { preloaded } => preloaded,
            Pass::Changes => None,
        };
        // A first start (nothing recorded, nothing cached) reads every file: each file's
        // stamp comes from the loader's own look at it, not from a pass of its own.
        let fresh = initial
            && self.records.is_empty()
            && matches!(&preloaded, Some(Ok(p)) if p.records.is_empty() && p.entries.is_empty());
        let mut touched = touched;
        self.apply_media(&mut touched, &gone);
        let (mut to_load, mut stamps) = self.to_load(touched, &mut gone, fresh, initial);
        let now = now_secs();
        let mut start = Adopted::default();
        if initial && self.records.is_empty() {
            start = self.adopt(preloaded, &mut to_load, &mut stamps);
        }
        let loaded = self.load_files(&to_load, now);
        let ready = self.sort_loaded(to_load, loaded, &mut gone);
        self.assign_records(&ready, &start, &gone, initial, now);
        let mut changed = self.index_cached_and_gone(start.cached, &gone);
        changed.extend(self.index_loaded(ready, now));
        changed
    }

    /// A start with a state: takes the records read while the first scan ran (or reads them
    /// now), finds the files present at the last stop that the scan did not find, and takes
    /// the files the article cache has as they are now out of those to load.
    fn adopt(
        &mut self,
        preloaded: Option<anyhow::Result<Preloaded>>,
        to_load: &mut Vec<String>,
        stamps: &mut Vec<Stamp>,
    ) -> Adopted {
        let preloaded = preloaded.unwrap_or_else(|| {
            self.cache
                .preload(self.records.state(), self.publisher.fingerprint())
        });
        let Preloaded {
            records,
            absent,
            entries,
        } = match preloaded {
            Ok(p) => p,
            Err(e) => {
                self.records.failed(&e);
                return Adopted::default();
            }
        };
        let mut vanished = Vec::new();
        // Usually every file present at the last stop is still there: counting says so
        // without looking each one up in the scan.
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
        self.records.by_path = records;
        let mut cached = Vec::new();
        let (rest, rest_stamps) = ArticleCache::take_cached(
            std::mem::take(to_load),
            std::mem::take(stamps),
            entries,
            &mut cached,
        );
        (*to_load, *stamps) = (rest, rest_stamps);
        Adopted { cached, vanished }
    }

    /// Sorts the load results: parsed files ready for their record, and skipped ones
    /// (logged once, gone from the index, and their stamp kept so a rescan does not read
    /// them again, if the loader got to look at them: a file that could not be opened has
    /// no stamp to keep, and is tried again). Forgets the stamps of gone paths.
    fn sort_loaded(
        &mut self,
        to_load: Vec<String>,
        loaded: Vec<Result<Loaded, Skip>>,
        gone: &mut BTreeSet<String>,
    ) -> Vec<Loaded> {
        let mut ready: Vec<Loaded> = Vec::new();
        let mut skipped_now = Vec::new();
        for (rel, result) in to_load.into_iter().zip(loaded) {
            match result {
                Ok(l) => {
                    self.seen.read(&rel);
                    for w in &l.warnings {
                        warn!(path = %rel, "{w}");
                    }
                    ready.push(l);
                }
                Err(Skip { skipped, stamp }) => {
                    // A file gone since it was listed is just gone.
                    if stamp.is_some() || self.root().join(&rel).exists() {
                        self.seen.skipped(&skipped, &self.metrics);
                    }
                    gone.insert(rel.clone());
                    if let Some(st) = stamp.filter(|_| is_candidate_path(&rel)) {
                        skipped_now.push((rel, st));
                    }
                }
            }
        }
        // What is gone is forgotten: should a file be there again, it is read again. A file
        // just skipped keeps the stamp it was skipped with.
        for rel in gone.iter() {
            self.seen.stamps.remove(rel.as_str());
        }
        for (rel, st) in skipped_now {
            self.seen.stamps.insert(rel.into(), st);
        }
        ready
    }

    /// Gives every loaded file its record (see [`Records`]). With the article cache, most
    /// files were not read: only the parsed ones and the vanished ones need the state (a
    /// full sync would revisit every record); the cached ones' records are in memory.
    fn assign_records(
        &mut self,
        ready: &[Loaded],
        start: &Adopted,
        gone: &BTreeSet<String>,
        initial: bool,
        now: i64,
    ) {
        let t_assign = Instant::now();
        let removes: Vec<String> = gone
            .iter()
            .filter(|p| self.records.get(p).is_some() || self.index.get(p).is_some())
            .cloned()
            .collect();
        let keys: Vec<DocKey> = ready.iter().map(Loaded::key).collect();
        if initial && !start.cached.is_empty() {
            self.records
                .assign(&keys, start.vanished.clone(), now, false);
        } else if initial && self.records.nothing_recorded() {
            self.records.assign_first(&keys, &removes, now);
        } else {
            self.records.assign(&keys, removes, now, initial);
        }
        debug!(
            ms = t_assign.elapsed().as_millis() as u64,
            "phase: state rss={}",
            crate::serve::metrics::rss_mb()
        );
    }

    /// Puts the articles the cache had into the index, and takes the gone paths out of it.
    fn index_cached_and_gone(
        &mut self,
        cached: Vec<(String, Stamp, Arc<Article>)>,
        gone: &BTreeSet<String>,
    ) -> Vec<Pair> {
        let mut changed = Vec::new();
        let mut from_cache = Vec::with_capacity(cached.len());
        for (_, st, article) in cached {
            // The article's path string is its record's key (see `cache::Entry::adopt`).
            self.seen.stamps.insert(article.path.clone(), st);
            from_cache.push(article);
        }
        for (path, w) in self.index.insert_all(from_cache) {
            warn!(path = %path, "{w}");
        }
        for rel in gone {
            self.cache.delete(rel.clone());
            if let Some(old) = self.index.remove(rel) {
                changed.push((Some(old), None));
            }
        }
        changed
    }

    /// Finishes the loaded articles with their records and puts them into the index. Cache
    /// writes for them are made after publishing (see `publish`).
    fn index_loaded(&mut self, mut ready: Vec<Loaded>, now: i64) -> Vec<Pair> {
        let t_index = Instant::now();
        ready.sort_by(|a, b| a.article.path.cmp(&b.article.path));
        let mut changed = Vec::new();
        if self.index.is_empty() {
            // A start: nothing to compare with, and the views are built in one pass. Articles
            // are finished on every core (their dates resolved in their zone).
            let (records, cfg) = (&self.records.by_path, &*self.cfg);
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
                self.seen.stamps.insert(key, stamp);
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
            let Some((key, rec)) = self.records.by_path.get_key_value(&l.article.path) else {
                self.seen.stamps.insert(l.article.path.clone(), l.stamp);
                continue;
            };
            self.seen.stamps.insert(key.clone(), l.stamp);
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
            if self.seen.stamps.get(rel.as_str()) == Some(&st) && !initial {
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
    fn load_files(&mut self, to_load: &[String], now: i64) -> Vec<Result<Loaded, Skip>> {
        let t_load = Instant::now();
        let mut loaded: Vec<Result<Loaded, Skip>> = Vec::with_capacity(to_load.len());
        {
            let (loader, cfg, records) = (&self.loader, &*self.cfg, &self.records.by_path);
            // The store is here or with the thread writing the previous chunk.
            let mut idle = Some(&mut self.cache.pages);
            std::thread::scope(|s| {
                let mut spilling = None;
                for chunk in to_load.chunks(LOAD_CHUNK) {
                    let part: Vec<Result<Loaded, Skip>> = chunk
                        .par_iter()
                        .with_min_len(32)
                        .map(|rel| {
                            // The stamp of what was read: the descriptor's, not a look
                            // before (a file swapped in between would keep the bytes of
                            // one file under the stamp of another, and look unchanged
                            // when they swap back).
                            let (meta, doc) = loader.load_with_meta(rel);
                            let stamp = meta.as_ref().map(stamp_of);
                            let doc = doc.map_err(|skipped| Skip { skipped, stamp })?;
                            let mut l = prepare(doc, records.get(rel.as_str()), cfg, now);
                            l.stamp = stamp.unwrap_or_default();
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
}

/// What a start took from the state beside the files to load (see [`Engine::adopt`]).
#[derive(Default)]
struct Adopted {
    /// Articles the cache has as their files are now: (path, stamp, article).
    cached: Vec<(String, Stamp, Arc<Article>)>,
    /// Files present at the last stop that the scan did not find.
    vanished: Vec<String>,
}

/// A scoped thread's result; its panic goes on in the caller.
pub(super) fn join<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A file the loader did not take, with its stamp if it got to look at it.
pub(super) struct Skip {
    skipped: Skipped,
    stamp: Option<Stamp>,
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
    let authority = &cfg.site.tag_authority;
    let record = Record::likely(known, authority, &doc.path, doc.hash, utc(now));
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
