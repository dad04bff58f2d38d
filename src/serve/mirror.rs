//! Mirroring every publish to object storage (`[publish] to = "s3://BUCKET/PREFIX"`): after
//! each publish the site's objects (every route, article page, older page and media file of
//! the snapshot) are compared by tag with what was last uploaded (kept in the state dir,
//! [`crate::store::published`]), and only what changed is uploaded, what is gone deleted,
//! in [`publish::sync`]'s order. Runs on the async runtime and never blocks publishing or
//! serving: the engine only sends a [`Published`] down a channel. A store that fails is
//! tried again with backoff (1 s doubling to a minute) from the newest snapshot; the lag
//! and what is pending are in `/metrics`, and a restart catches up from the state.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::Config;
use crate::model::Article;
use crate::publish::{self, Bucket, Ledger, Object, Phase};
use crate::render;
use crate::serve::coding::Coding;
use crate::serve::events::{Published, PublishedTx};
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::{Rendered, Snapshot};
use crate::store::published::Published as Kept;

/// Starts the mirror `[publish] to` asks for (none: nothing to start); returns where the
/// engine sends each publish.
pub fn start(cfg: &Arc<Config>, metrics: &Arc<Metrics>) -> anyhow::Result<Option<PublishedTx>> {
    let Some(target) = cfg.publish.to.clone() else {
        return Ok(None);
    };
    let bucket = Bucket::open(cfg, &target)?;
    let kept = Kept::open(&cfg.state_dir.join("published.sqlite"), &target.to_string())?;
    let have = kept.load()?;
    info!(to = %target, objects = have.len(), "publishing to object storage");
    let (tx, rx) = mpsc::unbounded_channel();
    let mirror = Mirror {
        bucket,
        kept,
        have,
        pages: PageTags::default(),
        metrics: metrics.clone(),
    };
    tokio::spawn(mirror.run(rx));
    Ok(Some(tx))
}

/// The longest wait between tries while the store fails.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The mirror's own state: where to, what the store holds (path → tag, as kept in the
/// state dir), the article pages' tags by article.
struct Mirror {
    bucket: Bucket,
    kept: Kept,
    have: HashMap<String, String>,
    pages: PageTags,
    metrics: Arc<Metrics>,
}

impl Mirror {
    /// Mirrors the newest snapshot after each publish; while the store fails, tries again
    /// with backoff (from whatever is newest by then).
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Arc<Published>>) {
        let mut latest: Option<Arc<Snapshot>> = None;
        let mut backoff = Duration::from_secs(1);
        loop {
            if latest.is_none() {
                let Some(p) = rx.recv().await else { return };
                behind(&self.metrics);
                latest = Some(p.snapshot.clone());
            }
            // During a burst only the newest snapshot is worth mirroring.
            while let Ok(p) = rx.try_recv() {
                latest = Some(p.snapshot.clone());
            }
            let Some(snapshot) = latest.take() else {
                continue;
            };
            match self.sync(&snapshot).await {
                Some(outcome) if outcome.pending == 0 => {
                    backoff = Duration::from_secs(1);
                    if rx.is_empty() {
                        self.metrics.publish_behind_since_ms.store(0, Relaxed);
                    }
                    if outcome.uploaded + outcome.deleted > 0 {
                        info!(
                            generation = snapshot.generation,
                            uploaded = outcome.uploaded,
                            deleted = outcome.deleted,
                            "published to object storage"
                        );
                    }
                }
                outcome => {
                    warn!(
                        pending = outcome.as_ref().map_or(0, |o| o.pending),
                        failed = outcome.as_ref().map_or(0, |o| o.failed),
                        retry_in_secs = backoff.as_secs(),
                        "publish: the object store is behind the site; trying again"
                    );
                    latest = Some(snapshot);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// Lists the snapshot's objects (off the async threads), uploads and deletes what
    /// differs, keeps what was done. None when the listing failed.
    async fn sync(&mut self, snapshot: &Arc<Snapshot>) -> Option<publish::Outcome> {
        let listed = {
            let (snapshot, mut pages) = (snapshot.clone(), std::mem::take(&mut self.pages));
            tokio::task::spawn_blocking(move || (objects_of(&snapshot, &mut pages), pages)).await
        };
        let objects = match listed {
            Ok((objects, pages)) => {
                self.pages = pages;
                objects
            }
            Err(e) => {
                warn!(error = %e, "publish: listing the site failed");
                return None;
            }
        };
        let mut done = Done::default();
        let metrics = self.metrics.clone();
        let outcome = publish::sync(
            &self.bucket,
            objects,
            &self.have,
            |_| true,
            &mut done,
            |o| metrics.publish_pending.store(o.pending as u64, Relaxed),
        )
        .await;
        self.keep(&done);
        metrics
            .publish_uploaded
            .fetch_add(outcome.uploaded as u64, Relaxed);
        metrics
            .publish_deleted
            .fetch_add(outcome.deleted as u64, Relaxed);
        metrics
            .publish_failed
            .fetch_add(outcome.failed as u64, Relaxed);
        Some(outcome)
    }

    /// What a sync did, in memory and in the state dir.
    fn keep(&mut self, done: &Done) {
        for (path, tag, _) in &done.uploaded {
            self.have.insert(path.clone(), tag.clone());
        }
        for path in &done.deleted {
            self.have.remove(path);
        }
        if let Err(e) = self.kept.save(&done.uploaded, &done.deleted) {
            warn!(error = %e, "publish: keeping what was uploaded failed (it is uploaded again)");
        }
    }
}

/// Marks the store behind the site from now, unless it already is.
fn behind(metrics: &Metrics) {
    let now = chrono::Utc::now().timestamp_millis();
    let _ = metrics
        .publish_behind_since_ms
        .compare_exchange(0, now, Relaxed, Relaxed);
}

/// What one sync did, to keep in the state.
#[derive(Default)]
struct Done {
    uploaded: Vec<(String, String, String)>,
    deleted: Vec<String>,
}

impl Ledger for Done {
    fn uploaded(&mut self, path: &str, tag: &str, etag: &str) {
        self.uploaded
            .push((path.to_string(), tag.to_string(), etag.to_string()));
    }

    fn deleted(&mut self, path: &str) {
        self.deleted.push(path.to_string());
    }
}

/// Article pages' tags as last listed, by slug, with the article each was made from: the
/// same article (the same allocation, held here so it cannot be another's) has the same
/// page, so 100 000 pages are not digested again for every publish.
#[derive(Default)]
struct PageTags(HashMap<Arc<str>, (Arc<Article>, String)>);

/// Every object of a snapshot, with the tag of its bytes; bodies are made only for what is
/// uploaded.
fn objects_of(snapshot: &Arc<Snapshot>, pages: &mut PageTags) -> Vec<Object> {
    let mut out = Objects {
        snapshot,
        list: Vec::with_capacity(snapshot.routes.len() + snapshot.articles_by_slug.len()),
    };
    out.routes();
    out.article_pages(pages);
    out.older_documents();
    out.media();
    out.list
}

/// The objects of one snapshot, as they are listed.
struct Objects<'a> {
    snapshot: &'a Arc<Snapshot>,
    list: Vec<Object>,
}

impl Objects<'_> {
    /// A representation as an object: its type, its Cache-Control as served, its body made
    /// when it is uploaded.
    fn push(&mut self, path: String, r: Arc<Rendered>, tag: String, phase: Phase) {
        let cache_control = r
            .headers
            .cache_control
            .as_ref()
            .unwrap_or(&self.snapshot.cache_control)
            .to_str()
            .unwrap_or("public")
            .to_string();
        self.list.push(Object {
            phase,
            content_type: r.kind.content_type().to_string(),
            cache_control,
            tag,
            body: Box::new(move || Ok(r.body(Coding::Identity))),
            path,
        });
    }

    /// Every route, and each term's own page (made from its feed, see `Snapshot::get`).
    fn routes(&mut self) {
        let snapshot = self.snapshot;
        for (route, r) in snapshot.routes.iter() {
            let path = route.trim_start_matches('/').to_string();
            let phase = Phase::of(&path, false);
            self.push(path, r.clone(), r.tag.clone(), phase);
            let term_dir = route
                .strip_suffix("feed.atom")
                .filter(|d| d.starts_with("/categories/") || d.starts_with("/tags/"));
            if let Some((dir, page)) = term_dir.and_then(|d| Some((d, snapshot.get(d)?))) {
                let tag = page.tag.clone();
                self.push(format!("{}index.html", &dir[1..]), page, tag, Phase::Pages);
            }
        }
    }

    /// Every article's page, its tag reused while the article is the same allocation.
    fn article_pages(&mut self, pages: &mut PageTags) {
        let snapshot = self.snapshot;
        let mut seen = PageTags::default();
        for a in snapshot.articles_by_slug.keys() {
            let a = &a.0;
            let path = a.page_path();
            let Some(r) = snapshot.get(&format!("/{path}")) else {
                continue;
            };
            let tag = match pages.0.remove(&*a.slug) {
                Some((was, tag)) if Arc::ptr_eq(&was, a) => tag,
                _ => r.tag.clone(),
            };
            seen.0.insert(a.slug.clone(), (a.clone(), tag.clone()));
            self.push(path, r, tag, Phase::Articles);
        }
        *pages = seen;
    }

    /// The views' archive documents and older pages, made on request like article pages.
    fn older_documents(&mut self) {
        let snapshot = self.snapshot;
        let Some(maker) = &snapshot.page_maker else {
            return;
        };
        for (dir, view) in snapshot.paged.iter() {
            for k in 1..=view.archives.len() {
                for (ext, _) in render::FEED_FORMATS {
                    let path = format!("{dir}archive/{k}.{ext}");
                    if let Some(r) = snapshot.get(&format!("/{path}")) {
                        let tag = r.tag.clone();
                        self.push(path, r, tag, Phase::Lists);
                    }
                }
            }
            for k in 2..=render::html_pages(view.members.len(), maker.cfg.feed.entries) {
                if let Some(r) = snapshot.get(&format!("/{dir}page/{k}/")) {
                    let tag = r.tag.clone();
                    self.push(render::html_page_path(dir, k), r, tag, Phase::Pages);
                }
            }
        }
    }

    /// The media files, read when uploaded; tagged by their stamp.
    fn media(&mut self) {
        let snapshot = self.snapshot;
        let Some(loader) = &snapshot.media.loader else {
            return;
        };
        for (rel, m) in snapshot.media.by_path.iter() {
            let (loader, rel2) = (loader.clone(), rel.clone());
            let s = m.stamp;
            self.list.push(Object {
                path: rel.clone(),
                content_type: m.content_type.to_string(),
                cache_control: snapshot.cache_control.to_str().unwrap_or("public").into(),
                phase: Phase::Media,
                tag: format!("m{:x}-{:x}-{:x}.{:x}", s.ino, s.len, s.mtime_s, s.mtime_ns),
                body: Box::new(move || Ok(loader.read_media(&rel2)?.into())),
            });
        }
    }
}
