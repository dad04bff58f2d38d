//! The index: every article keyed by its source path, plus the views feeds are made from
//! (all, by category, by tag), each in one total order: newest first, ties broken by id.
//!
//! Invariant: no two articles in the index share an id. An explicit (front matter) id that
//! another article already holds falls back to the article's own state id.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::model::{Article, Term};

#[derive(Debug, Default, Clone)]
pub struct Index {
    by_path: BTreeMap<String, Arc<Article>>,
    /// id → path holding it.
    ids: HashMap<String, String>,
}

/// Articles sharing a category or tag.
#[derive(Debug, Clone)]
pub struct Group {
    /// The name to show (the smallest spelling, so the choice is deterministic) and slug.
    pub term: Term,
    pub articles: Vec<Arc<Article>>,
}

#[derive(Debug, Clone, Default)]
pub struct Views {
    pub all: Vec<Arc<Article>>,
    /// By slug.
    pub categories: BTreeMap<String, Group>,
    pub tags: BTreeMap<String, Group>,
}

/// Newest first, then by id: a total order, so equal input gives equal bytes.
pub fn newest_first(a: &Article, b: &Article) -> Ordering {
    b.published
        .cmp(&a.published)
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.path.cmp(&b.path))
}

impl Index {
    pub fn new() -> Index {
        Index::default()
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    pub fn get(&self, path: &str) -> Option<&Arc<Article>> {
        self.by_path.get(path)
    }

    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.by_path.keys()
    }

    pub fn articles(&self) -> impl Iterator<Item = &Arc<Article>> {
        self.by_path.values()
    }

    /// Adds or replaces the article at its path. Returns the replaced article and, when the
    /// article's explicit id was taken, a warning naming the holder.
    pub fn insert(&mut self, mut article: Article) -> (Option<Arc<Article>>, Option<String>) {
        let old = self.remove(&article.path);
        let mut warning = None;
        if let Some(holder) = self.ids.get(&article.id) {
            let wanted = std::mem::replace(&mut article.id, article.state_id.clone());
            warning = Some(format!(
                "duplicate id {wanted:?} (already used by {holder}); using {}",
                article.id
            ));
            if self.ids.contains_key(&article.id) {
                let suffix = &blake3::hash(article.path.as_bytes()).to_hex()[..8];
                article.id = format!("{};{suffix}", article.state_id);
            }
        }
        self.ids.insert(article.id.clone(), article.path.clone());
        self.by_path.insert(article.path.clone(), Arc::new(article));
        (old, warning)
    }

    pub fn remove(&mut self, path: &str) -> Option<Arc<Article>> {
        let old = self.by_path.remove(path)?;
        if self.ids.get(&old.id).is_some_and(|p| p == path) {
            self.ids.remove(&old.id);
        }
        Some(old)
    }

    /// All articles in feed order, and grouped by category and by tag.
    pub fn views(&self) -> Views {
        let mut all: Vec<Arc<Article>> = self.by_path.values().cloned().collect();
        all.sort_by(|a, b| newest_first(a, b));
        let mut views = Views {
            all,
            ..Views::default()
        };
        for a in &views.all {
            for (terms, groups) in [
                (&a.categories, &mut views.categories),
                (&a.tags, &mut views.tags),
            ] {
                for t in terms {
                    let g = groups.entry(t.slug.clone()).or_insert_with(|| Group {
                        term: t.clone(),
                        articles: Vec::new(),
                    });
                    if t.name < g.term.name {
                        g.term.name = t.name.clone();
                    }
                    // `all` is sorted, so each group is too. An article lists a term once.
                    if !g.articles.last().is_some_and(|last| Arc::ptr_eq(last, a)) {
                        g.articles.push(a.clone());
                    }
                }
            }
        }
        views
    }
}
