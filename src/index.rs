//! The index: every article keyed by its source path, kept in feed order as it changes, for
//! all articles and per category and tag: newest first, ties broken by id. A change costs
//! O(log n); reading the newest `n` of any view costs O(n), whatever the index's size.
//!
//! Invariant: no two articles in the index share an id, explicit or generated. An explicit
//! (front matter) id that another article already holds, as its explicit id or as its
//! generated (state) id, falls back to the article's own state id; generated ids never
//! change, so an article whose generated id another one copied takes it back.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use rayon::prelude::*;

use crate::model::{Article, Term};

/// Newest first, then by id, then by path: a total order, so equal input gives equal bytes.
pub fn newest_first(a: &Article, b: &Article) -> Ordering {
    b.published
        .cmp(&a.published)
        .then_with(|| a.id.cmp(&b.id))
        .then_with(|| a.path.cmp(&b.path))
}

/// An article ordered by [`newest_first`].
#[derive(Debug, Clone)]
struct Recent(Arc<Article>);

impl PartialEq for Recent {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Recent {}

impl PartialOrd for Recent {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Recent {
    fn cmp(&self, other: &Self) -> Ordering {
        newest_first(&self.0, &other.0)
    }
}

/// An article ordered and found by its path (no second copy of the path as a key).
#[derive(Debug, Clone)]
struct ByPath(Arc<Article>);

impl PartialEq for ByPath {
    fn eq(&self, other: &Self) -> bool {
        self.0.path == other.0.path
    }
}

impl Eq for ByPath {}

impl PartialOrd for ByPath {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByPath {
    /// As the paths (`str` order), so a `&str` finds it (see `Borrow`).
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.path.cmp(&other.0.path)
    }
}

impl std::borrow::Borrow<str> for ByPath {
    fn borrow(&self) -> &str {
        &self.0.path
    }
}

#[derive(Debug, Default, Clone)]
struct GroupSet {
    members: BTreeSet<Recent>,
}

#[derive(Debug, Default, Clone)]
pub struct Index {
    by_path: BTreeSet<ByPath>,
    order: BTreeSet<Recent>,
    categories: BTreeMap<String, GroupSet>,
    tags: BTreeMap<String, GroupSet>,
    /// Explicit ids (front matter) → path holding them.
    explicit_ids: HashMap<String, String>,
    /// Every article's state (generated) id → its path. Unique among themselves by
    /// construction; kept to refuse explicit ids that copy one, so made only once an
    /// article has an explicit id (most sites have none: no map of 100 000 ids for them).
    state_ids: Option<HashMap<Arc<str>, Arc<str>>>,
}

/// What [`Index::insert`] did besides inserting.
#[derive(Debug, Default)]
pub struct Inserted {
    /// The article that was at the path before.
    pub old: Option<Arc<Article>>,
    /// Ids that were refused, with the path of the article each is about.
    pub warnings: Vec<(Arc<str>, String)>,
    /// Articles that gave up an explicit id equal to the inserted article's generated id:
    /// (before, after).
    pub displaced: Vec<(Arc<Article>, Arc<Article>)>,
}

/// The newest articles sharing a category or tag.
#[derive(Debug, Clone)]
pub struct Group {
    /// The name to show (as the newest article writes it) and slug.
    pub term: Term,
    /// Newest first, at most the `n` asked for.
    pub articles: Vec<Arc<Article>>,
    /// How many articles the group holds in all.
    pub total: usize,
}

/// The newest articles of every view.
#[derive(Debug, Clone, Default)]
pub struct Views {
    /// Newest first, at most the `n` asked for.
    pub all: Vec<Arc<Article>>,
    pub total: usize,
    /// By slug.
    pub categories: BTreeMap<String, Group>,
    pub tags: BTreeMap<String, Group>,
}

fn group_view(
    slug: &str,
    set: &GroupSet,
    n: usize,
    pick: impl Fn(&Article) -> &[Arc<Term>],
) -> Option<Group> {
    let first = set.members.iter().next()?;
    let term = pick(&first.0)
        .iter()
        .find(|t| t.slug == slug)
        .map(|t| Term::clone(t))
        .unwrap_or_else(|| Term::new(slug));
    Some(Group {
        term,
        articles: set.members.iter().take(n).map(|r| r.0.clone()).collect(),
        total: set.members.len(),
    })
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
        self.by_path.get(path).map(|b| &b.0)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Arc<str>> {
        self.by_path.iter().map(|b| &b.0.path)
    }

    /// The map of generated ids, made from the articles held the first time it is needed.
    fn state_ids(&mut self) -> &mut HashMap<Arc<str>, Arc<str>> {
        let by_path = &self.by_path;
        self.state_ids.get_or_insert_with(|| {
            by_path
                .iter()
                .map(|b| (b.0.state_id.clone(), b.0.path.clone()))
                .collect()
        })
    }

    /// Whether some article's path starts with `prefix` (a folder's path and `/`): a range
    /// query on the ordered paths, not a pass over them.
    pub fn has_under(&self, prefix: &str) -> bool {
        use std::ops::Bound;
        self.by_path
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .next()
            .is_some_and(|b| b.0.path.starts_with(prefix))
    }

    /// Every article, by path.
    pub fn articles(&self) -> impl Iterator<Item = &Arc<Article>> {
        self.by_path.iter().map(|b| &b.0)
    }

    /// Every article, newest first (published, then id, then path).
    pub fn newest_first(&self) -> impl DoubleEndedIterator<Item = &Arc<Article>> {
        self.order.iter().map(|r| &r.0)
    }

    /// Every article of a view, newest first: `feed` (all), `categories/<slug>` or
    /// `tags/<slug>` (None: no such term). References: the articles are not touched.
    pub fn view_newest_first(&self, key: &str) -> Option<Vec<&Arc<Article>>> {
        let set = match key.split_once('/') {
            None if key == "feed" => &self.order,
            Some(("categories", slug)) => &self.categories.get(slug)?.members,
            Some(("tags", slug)) => &self.tags.get(slug)?.members,
            _ => return None,
        };
        Some(set.iter().map(|r| &r.0).collect())
    }

    /// Adds or replaces the article at its path; see [`Inserted`] for what else it did.
    pub fn insert(&mut self, article: impl Into<Arc<Article>>) -> Inserted {
        let mut article: Arc<Article> = article.into();
        let mut done = Inserted {
            old: self.remove(&article.path),
            ..Inserted::default()
        };
        if let Some(w) = self.claim_id(&mut article) {
            done.warnings.push((article.path.clone(), w));
        }
        // Another article copied this one's generated id as its explicit id: generated ids
        // never change, so the copy goes back to its own.
        let holder = self
            .explicit_ids
            .get(&*article.state_id)
            .filter(|p| **p != *article.path)
            .cloned();
        if let Some(mut h) = holder.and_then(|p| self.remove(&p)) {
            let before = h.clone();
            let a = Arc::make_mut(&mut h);
            let copied = std::mem::replace(&mut a.id, a.state_id.clone());
            done.warnings.push((
                h.path.clone(),
                format!(
                    "duplicate id {copied:?} (the generated id of {}); using {}",
                    article.path, h.id
                ),
            ));
            let path = h.path.clone();
            let again = self.insert(h);
            done.warnings.extend(again.warnings);
            done.displaced.extend(again.displaced);
            if let Some(after) = self.get(&path) {
                done.displaced.push((before, after.clone()));
            }
        }
        self.insert_views(article);
        done
    }

    fn insert_views(&mut self, article: Arc<Article>) {
        self.order.insert(Recent(article.clone()));
        for t in &article.categories {
            self.categories
                .entry(t.slug.clone())
                .or_default()
                .members
                .insert(Recent(article.clone()));
        }
        for t in &article.tags {
            self.tags
                .entry(t.slug.clone())
                .or_default()
                .members
                .insert(Recent(article.clone()));
        }
        self.by_path.insert(ByPath(article));
    }

    /// Records an article's ids; an explicit one that another article already holds (as
    /// its explicit or its generated id) falls back to the article's state id, with a
    /// warning naming the holder.
    fn claim_id(&mut self, article: &mut Arc<Article>) -> Option<String> {
        if let Some(ids) = &mut self.state_ids {
            ids.insert(article.state_id.clone(), article.path.clone());
        }
        if article.id == article.state_id {
            return None;
        }
        self.state_ids()
            .insert(article.state_id.clone(), article.path.clone());
        let holder = match self.explicit_ids.get(&*article.id) {
            Some(p) => Some(p.clone()),
            None => self
                .state_ids()
                .get(&*article.id)
                .filter(|p| **p != article.path)
                .map(|p| format!("{p}, as its generated id")),
        };
        if let Some(holder) = holder {
            let a = Arc::make_mut(article);
            let wanted = std::mem::replace(&mut a.id, a.state_id.clone());
            return Some(format!(
                "duplicate id {wanted:?} (already used by {holder}); using {}",
                a.id
            ));
        }
        self.explicit_ids
            .insert(article.id.to_string(), article.path.to_string());
        None
    }

    /// Inserts many articles; into an empty index (a start) it builds every view in one
    /// pass over sorted input instead of one tree insertion per article and view. Returns
    /// the warnings [`Index::insert`] would, each with its article's path.
    pub fn insert_all(&mut self, mut articles: Vec<Arc<Article>>) -> Vec<(Arc<str>, String)> {
        if !self.is_empty() {
            return articles
                .into_iter()
                .flat_map(|a| self.insert(a).warnings)
                .collect();
        }
        // Path order decides which of two articles keeps a contested explicit id, as when
        // they are inserted one by one in path order.
        articles.sort_by(|a, b| a.path.cmp(&b.path));
        articles.dedup_by(|b, a| {
            // A later duplicate path replaces the earlier one, like `insert`.
            if a.path == b.path {
                std::mem::swap(a, b);
                true
            } else {
                false
            }
        });
        // Every generated id first (when any article has an explicit one): an explicit id
        // copying one is refused wherever its article sorts.
        if articles.iter().any(|a| a.id != a.state_id) {
            let ids = self.state_ids();
            for a in &articles {
                ids.insert(a.state_id.clone(), a.path.clone());
            }
        }
        let warnings: Vec<(Arc<str>, String)> = articles
            .iter_mut()
            .filter_map(|a| self.claim_id(a).map(|w| (a.path.clone(), w)))
            .collect();
        // Sorted once, on every core; each group then gets its members already in order, and
        // building a set from sorted input costs one pass.
        let mut order: Vec<Recent> = articles.iter().map(|a| Recent(a.clone())).collect();
        order.par_sort_unstable();
        // Grouped by term in slices of the order, on every core; each slice's groups are
        // appended in the slices' order, so every group stays sorted.
        type Groups<'a> = HashMap<&'a str, Vec<Recent>>;
        let slices: Vec<(Groups, Groups)> = order
            .par_chunks(4096)
            .map(|slice| {
                let (mut categories, mut tags) = (Groups::new(), Groups::new());
                for r in slice {
                    for t in &r.0.categories {
                        categories.entry(&t.slug).or_default().push(r.clone());
                    }
                    for t in &r.0.tags {
                        tags.entry(&t.slug).or_default().push(r.clone());
                    }
                }
                (categories, tags)
            })
            .collect();
        let (mut categories, mut tags) = (Groups::new(), Groups::new());
        for (c, t) in slices {
            for (all, part) in [(&mut categories, c), (&mut tags, t)] {
                for (slug, members) in part {
                    all.entry(slug).or_default().extend(members);
                }
            }
        }
        let groups = |m: HashMap<&str, Vec<Recent>>| -> BTreeMap<String, GroupSet> {
            m.into_iter()
                .map(|(slug, members)| {
                    (
                        slug.to_string(),
                        GroupSet {
                            members: members.into_iter().collect(),
                        },
                    )
                })
                .collect()
        };
        self.categories = groups(categories);
        self.tags = groups(tags);
        self.order = order.into_iter().collect();
        self.by_path = articles.into_iter().map(ByPath).collect();
        warnings
    }

    pub fn remove(&mut self, path: &str) -> Option<Arc<Article>> {
        let old = self.by_path.take(path)?.0;
        if self.explicit_ids.get(&*old.id).is_some_and(|p| p == path) {
            self.explicit_ids.remove(&*old.id);
        }
        if let Some(ids) = &mut self.state_ids {
            if ids.get(&*old.state_id).is_some_and(|p| **p == *path) {
                ids.remove(&*old.state_id);
            }
        }
        let key = Recent(old.clone());
        self.order.remove(&key);
        for (terms, groups) in [
            (&old.categories, &mut self.categories),
            (&old.tags, &mut self.tags),
        ] {
            for t in terms {
                if let Some(g) = groups.get_mut(&t.slug) {
                    g.members.remove(&key);
                    if g.members.is_empty() {
                        groups.remove(&t.slug);
                    }
                }
            }
        }
        Some(old)
    }

    /// The newest `n` articles of every view.
    pub fn views(&self, n: usize) -> Views {
        let collect = |groups: &BTreeMap<String, GroupSet>, pick: fn(&Article) -> &[Arc<Term>]| {
            groups
                .iter()
                .filter_map(|(slug, set)| Some((slug.clone(), group_view(slug, set, n, pick)?)))
                .collect()
        };
        Views {
            all: self.order.iter().take(n).map(|r| r.0.clone()).collect(),
            total: self.by_path.len(),
            categories: collect(&self.categories, |a| &a.categories),
            tags: collect(&self.tags, |a| &a.tags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fixtures::article;

    #[test]
    fn views_stay_ordered_through_changes() {
        let mut index = Index::new();
        for (p, day) in [("a", 3), ("b", 1), ("c", 2), ("d", 2)] {
            index.insert(article(p, p, day));
        }
        let order = |i: &Index| {
            i.views(10)
                .all
                .iter()
                .map(|a| a.path.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&index), ["a", "c", "d", "b"]);
        index.insert(article("b", "b", 4));
        assert_eq!(order(&index), ["b", "a", "c", "d"]);
        index.remove("a");
        assert_eq!(order(&index), ["b", "c", "d"]);
        let v = index.views(2);
        assert_eq!(v.all.len(), 2);
        assert_eq!(v.total, 3);
        let cat = &v.categories["industry-trends"];
        assert_eq!((cat.articles.len(), cat.total), (2, 3));
        for p in ["b", "c", "d"] {
            index.remove(p);
        }
        assert!(
            index.views(10).categories.is_empty(),
            "empty groups disappear"
        );
    }

    #[test]
    fn explicit_duplicate_ids_fall_back() {
        let mut index = Index::new();
        let mut a = article("a", "A", 1);
        a.id = "urn:x".into();
        let mut b = article("b", "B", 2);
        b.id = "urn:x".into();
        assert!(index.insert(a).warnings.is_empty());
        let warnings = index.insert(b).warnings;
        assert!(warnings[0].1.contains("already used by a"), "{warnings:?}");
        assert_eq!(index.get("b").unwrap().id, index.get("b").unwrap().state_id);
    }

    #[test]
    fn an_explicit_id_never_copies_a_generated_one() {
        let victim = article("victim", "V", 1);
        let mut copy = article("copy", "C", 2);
        copy.id = victim.state_id.clone();
        // The victim first: the copy is refused.
        let mut index = Index::new();
        index.insert(victim.clone());
        let warnings = index.insert(copy.clone()).warnings;
        assert!(
            warnings[0].1.contains("victim, as its generated id"),
            "{warnings:?}"
        );
        assert_eq!(index.get("copy").unwrap().id, copy.state_id);
        // The copy first: the victim takes its generated id back, the copy is displaced.
        let mut index = Index::new();
        assert!(index.insert(copy.clone()).warnings.is_empty());
        let done = index.insert(victim.clone());
        assert_eq!(done.displaced.len(), 1, "{done:?}");
        assert_eq!(index.get("copy").unwrap().id, copy.state_id);
        assert_eq!(index.get("victim").unwrap().id, victim.state_id);
        assert_eq!(done.warnings[0].0.as_ref(), "copy");
        // At a start (every article at once), whatever the paths' order.
        for (first, second) in [("a-copy", "z-victim"), ("z-copy", "a-victim")] {
            let mut v = article(second, "V", 1);
            v.state_id = format!("tag:x:{second}").into();
            v.id = v.state_id.clone();
            let mut c = article(first, "C", 2);
            c.id = v.state_id.clone();
            let mut index = Index::new();
            let warnings = index.insert_all(vec![v.into(), c.into()]);
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert_eq!(
                index.get(first).unwrap().id,
                index.get(first).unwrap().state_id
            );
            assert_eq!(&*index.get(second).unwrap().id, format!("tag:x:{second}"));
        }
    }

    #[test]
    fn insert_all_builds_what_one_by_one_inserts_build() {
        let make = || {
            let mut list = Vec::new();
            for (i, p) in ["d", "a", "c", "b", "e"].iter().enumerate() {
                let mut a = article(p, p, (i % 3 + 1) as u32);
                if *p == "b" {
                    a.categories = vec![Term::shared("Other")];
                    a.tags.clear();
                }
                if matches!(*p, "c" | "e") {
                    a.id = "urn:same".into();
                }
                list.push(a);
            }
            list
        };
        let mut one = Index::new();
        let mut warnings_one = Vec::new();
        let mut sorted = make();
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
        for a in sorted {
            warnings_one.extend(one.insert(a).warnings);
        }
        let mut all = Index::new();
        let warnings_all = all.insert_all(make().into_iter().map(Arc::new).collect());
        assert_eq!(warnings_all, warnings_one);
        let shape = |i: &Index| {
            let v = i.views(10);
            let ids = |l: &[Arc<Article>]| {
                l.iter()
                    .map(|a| (a.path.clone(), a.id.clone()))
                    .collect::<Vec<_>>()
            };
            let groups = |g: &BTreeMap<String, Group>| {
                g.iter()
                    .map(|(k, g)| (k.clone(), g.term.clone(), ids(&g.articles), g.total))
                    .collect::<Vec<_>>()
            };
            (ids(&v.all), v.total, groups(&v.categories), groups(&v.tags))
        };
        assert_eq!(shape(&all), shape(&one));
        assert_eq!(
            all.paths().collect::<Vec<_>>(),
            one.paths().collect::<Vec<_>>()
        );
        // Later changes work on a bulk-built index as on any other.
        all.remove("c");
        one.remove("c");
        assert_eq!(shape(&all), shape(&one));
    }

    #[test]
    fn insert_all_keeps_every_group_in_order_past_its_parallel_slices() {
        // More articles than one slice of the bulk build (4096), few terms, many equal dates.
        let make = || {
            (0..10_000u32).map(|i| {
                let mut a = article(&format!("p{i:05}"), "T", i % 28 + 1);
                a.categories = vec![Term::shared(["A", "B", "C"][(i % 3) as usize])];
                a.tags = vec![Term::shared(
                    ["t1", "t2", "t3", "t4", "t5"][(i % 5) as usize],
                )];
                a
            })
        };
        let mut one = Index::new();
        for a in make() {
            one.insert(a);
        }
        let mut all = Index::new();
        all.insert_all(make().map(Arc::new).collect());
        let shape = |i: &Index| {
            let v = i.views(20_000);
            let paths = |l: &[Arc<Article>]| l.iter().map(|a| a.path.clone()).collect::<Vec<_>>();
            let groups = |g: &BTreeMap<String, Group>| {
                g.iter()
                    .map(|(k, g)| (k.clone(), paths(&g.articles)))
                    .collect::<Vec<_>>()
            };
            (paths(&v.all), groups(&v.categories), groups(&v.tags))
        };
        let (a, b) = (shape(&all), shape(&one));
        assert_eq!(a.1.len(), 3);
        assert_eq!(a.2.len(), 5);
        assert_eq!(a, b);
    }
}
