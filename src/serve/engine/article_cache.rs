//! The article cache as the engine uses it: on start, the records and the cache entries
//! still good (read while the first scan runs); after each publish, writes for what
//! changed (sent to the cache's own thread); and the page store the packed bodies live in.

use super::*;

/// The article cache's writer, its writes waiting for the next publish, and the page store.
pub(super) struct ArticleCache {
    /// Writes parsed articles to the article cache, off the engine's thread (None: no state
    /// file to cache in).
    writer: Option<cache::Writer>,
    /// Writes waiting for the next publish (so they never compete with the work that leads
    /// to it, the first start above all).
    pending: Vec<cache::Op>,
    /// Where article pages live instead of the heap (None: no usable state dir).
    pub(super) pages: Option<PageStore>,
}

impl ArticleCache {
    pub(super) fn open(cfg: &Config, state: &State) -> ArticleCache {
        // The cache lives in the state file; with no state file there is nothing to cache in.
        let writer = cfg
            .state_file()
            .exists()
            .then(|| cache::Writer::start(&cfg.state_file()));
        let pages = cfg
            .state_file()
            .parent()
            .and_then(|dir| open_pages(dir, state, writer.is_some()));
        ArticleCache {
            writer,
            pending: Vec::new(),
            pages,
        }
    }

    /// Queues writes for articles now in the index, each with its file's stamp.
    pub(super) fn put<'a>(
        &mut self,
        articles: impl Iterator<Item = &'a Arc<Article>>,
        stamps: &HashMap<Arc<str>, Stamp>,
        fingerprint: &Arc<str>,
    ) {
        for a in articles {
            if let Some(stamp) = stamps.get(&*a.path) {
                self.pending.push(cache::Op::Put {
                    stamp: *stamp,
                    fingerprint: fingerprint.clone(),
                    article: a.clone(),
                });
            }
        }
    }

    /// Queues the removal of a path's entry.
    pub(super) fn delete(&mut self, path: String) {
        self.pending.push(cache::Op::Delete(path));
    }

    /// Sends what is queued to the writer.
    pub(super) fn flush(&mut self) {
        let ops = std::mem::take(&mut self.pending);
        if let (Some(w), false) = (&self.writer, ops.is_empty()) {
            w.send(ops);
        }
    }

    /// Bytes in the page store.
    pub(super) fn page_store_len(&self) -> u64 {
        self.pages.as_ref().map_or(0, PageStore::len)
    }

    /// Reads the state's records and the usable article-cache entries: those whose file was
    /// there at the last stop, whose page is in the page store, and that were made with the
    /// record their path has (they then take the record's strings). Independent of the scan,
    /// so a start does it while the first scan runs.
    pub(super) fn preload(&self, state: &State, fingerprint: &str) -> anyhow::Result<Preloaded> {
        let t_records = Instant::now();
        let (records, absent) = state.all_records()?;
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
        let entries = match state.load_cache(fingerprint, &keep) {
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
