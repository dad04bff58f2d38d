//! From a content dir to an [`Index`]: scan, load every candidate in parallel, bring the state
//! store in line (ids, first-seen times, renames), and join documents with their records.
//! Used by `build`, `check` and `serve`'s initial scan, so all three see the same articles.

use foldhash::HashMap;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rayon::prelude::*;

use crate::config::Config;
use crate::content::{self, Document, Loader, Skipped};
use crate::index::Index;
use crate::model::Article;
use crate::model::Record;
use crate::store::state::{DocKey, State};

/// The outcome of a full scan.
pub struct Ingested {
    pub index: Index,
    /// Files that did not become entries, sorted by path.
    pub skipped: Vec<Skipped>,
    /// Problems with articles that were still used: (path, message), sorted by path.
    pub warnings: Warnings,
    /// Media files (images, audio, video, PDF), by path, sorted.
    pub media: Vec<String>,
}

/// Loads scanned paths in parallel (each opened once and checked, see `Loader::load`).
/// Results keep the input order.
fn load_all(loader: &Loader, paths: &[String]) -> Vec<Result<Document, Skipped>> {
    paths
        .par_iter()
        .with_min_len(64)
        .map(|p| loader.load(p))
        .collect()
}

/// Scans and loads the whole content dir and syncs the state (committed when `commit`).
pub fn full(
    cfg: &Config,
    state: &mut State,
    now: DateTime<Utc>,
    commit: bool,
) -> anyhow::Result<Ingested> {
    let scan = content::scan(&cfg.content_dir)
        .with_context(|| format!("failed to read content dir {}", cfg.content_dir.display()))?;
    let t = std::time::Instant::now();
    let loader = Loader::new(cfg);
    let mut skipped = scan.skipped;
    let media = scan.media;
    let mut docs = Vec::with_capacity(scan.files.len());
    for result in load_all(&loader, &scan.files) {
        match result {
            Ok(doc) => docs.push(doc),
            Err(s) => skipped.push(s),
        }
    }
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "phase: load");
    let t = std::time::Instant::now();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let keys: Vec<DocKey> = docs.iter().map(DocKey::of).collect();
    let records = state.sync_all(&keys, now, commit)?;
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "phase: state");
    let t = std::time::Instant::now();
    let (index, warnings) = assemble(docs, &records, cfg, now);
    tracing::debug!(ms = t.elapsed().as_millis() as u64, "phase: assemble");
    Ok(Ingested {
        index,
        skipped,
        warnings,
        media,
    })
}

/// Warnings with the path they are about.
type Warnings = Vec<(String, String)>;

/// Joins documents with their records into an index, in path order (so which of two
/// articles keeps a contested explicit id is deterministic).
pub fn assemble(
    mut docs: Vec<Document>,
    records: &HashMap<Arc<str>, Record>,
    cfg: &Config,
    now: DateTime<Utc>,
) -> (Index, Warnings) {
    // Articles are made on every core; `insert_all` then claims explicit ids in path order.
    docs.sort_by(|a, b| a.path.cmp(&b.path));
    let made: Vec<(Arc<Article>, Warnings)> = docs
        .into_par_iter()
        .filter_map(|mut doc| {
            // sync_all returns a record for every document it was given.
            let rec = records.get(doc.path.as_str())?;
            let mut warnings: Warnings = std::mem::take(&mut doc.warnings)
                .into_iter()
                .map(|w| (doc.path.clone(), w))
                .collect();
            let path = doc.path.clone();
            let (article, more) = Article::new(doc, rec, cfg.site.timezone, now);
            warnings.extend(more.into_iter().map(|w| (path.clone(), w)));
            Some((Arc::new(article), warnings))
        })
        .collect();
    let mut warnings = Vec::new();
    let mut articles = Vec::with_capacity(made.len());
    for (article, w) in made {
        articles.push(article);
        warnings.extend(w);
    }
    let mut index = Index::new();
    for (path, w) in index.insert_all(articles) {
        warnings.push((path.to_string(), w));
    }
    warnings.sort();
    (index, warnings)
}
