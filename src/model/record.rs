//! What the state store remembers about one article, as plain data, and the rules that
//! give, keep and hand over records ([`apply_rules`]): one set for every caller.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rayon::prelude::*;

/// What the state remembers about one article. The strings are shared with the article
/// made from the record (at 100 000 articles, separate copies cost ~18 MB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: Arc<str>,
    pub slug: Arc<str>,
    pub first_seen: DateTime<Utc>,
    /// blake3 of the file's bytes (stored as hex).
    pub hash: blake3::Hash,
    /// When the content last changed after it was first seen.
    pub changed_at: Option<DateTime<Utc>>,
}

impl Record {
    /// The rule for a known path: it keeps its record; new bytes move `changed_at` to `now`.
    /// Says whether the bytes were new.
    pub fn seen_with(mut self, hash: blake3::Hash, now: DateTime<Utc>) -> (Record, bool) {
        if self.hash == hash {
            return (self, false);
        }
        self.hash = hash;
        self.changed_at = Some(now);
        (self, true)
    }

    /// The record a file most likely ends up with, before its batch goes through
    /// [`apply_rules`] (the parallel load's guess, corrected once the batch is settled): the
    /// known record by the rule for known paths, else a new one with the id the rules try
    /// first and no slug yet.
    pub fn likely(
        known: Option<&Record>,
        authority: &str,
        path: &str,
        hash: blake3::Hash,
        now: DateTime<Utc>,
    ) -> Record {
        match known {
            Some(r) => r.clone().seen_with(hash, now).0,
            None => Record {
                id: tag_id(authority, path).into(),
                slug: "".into(),
                first_seen: now,
                hash,
                changed_at: None,
            },
        }
    }
}

/// A file as the record rules see it: where it is, what its bytes hash to, its title.
#[derive(Debug, Clone, Copy)]
pub struct DocKey<'a> {
    pub path: &'a str,
    pub hash: blake3::Hash,
    pub title: &'a str,
}

impl DocKey<'_> {
    pub fn of(doc: &crate::content::Document) -> DocKey<'_> {
        DocKey {
            path: &doc.path,
            hash: doc.hash,
            title: &doc.title,
        }
    }
}

/// A record as the rules find it, and whether its file was there at the last look.
#[derive(Debug, Clone)]
pub struct Known {
    pub rec: Record,
    pub present: bool,
}

/// What a new record claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    Id,
    Slug,
}

/// Who holds ids and slugs already: SQLite asked one by one (small batches), or sets of
/// all of them (a full read, or the records in memory).
pub trait Holders {
    type Error;
    fn is_taken(&mut self, what: Claim, candidate: &str) -> Result<bool, Self::Error>;
    /// `rec`, new at `path`, now holds its id and slug.
    fn claim(&mut self, path: &str, rec: &Record) -> Result<(), Self::Error>;
}

/// Every id and slug held, in memory.
#[derive(Debug, Default)]
pub struct HeldSets {
    pub ids: std::collections::HashSet<Arc<str>>,
    pub slugs: std::collections::HashSet<Arc<str>>,
}

impl HeldSets {
    pub fn of<'a>(records: impl Iterator<Item = &'a Record>) -> HeldSets {
        let mut sets = HeldSets::default();
        for r in records {
            sets.ids.insert(r.id.clone());
            sets.slugs.insert(r.slug.clone());
        }
        sets
    }
}

impl Holders for HeldSets {
    type Error = std::convert::Infallible;
    fn is_taken(&mut self, what: Claim, candidate: &str) -> Result<bool, Self::Error> {
        Ok(match what {
            Claim::Id => self.ids.contains(candidate),
            Claim::Slug => self.slugs.contains(candidate),
        })
    }
    fn claim(&mut self, _path: &str, rec: &Record) -> Result<(), Self::Error> {
        self.ids.insert(rec.id.clone());
        self.slugs.insert(rec.slug.clone());
        Ok(())
    }
}

/// Where the rules find records and put them: the store's rows, or the engine's map.
pub trait Ledger {
    /// The record at `path`, if any.
    fn known(&mut self, path: &str) -> Option<Known>;
    /// `rec` is now the record at `path` (every upserted path gets one).
    fn give(&mut self, path: &str, rec: Record);
}

/// What a batch does to the records (see [`apply_rules`]).
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// Upserts (by index) whose known record changed (a new hash) or whose file came back.
    pub updated: Vec<usize>,
    /// Records taken over by a new path with the same content: (old path, new path).
    pub moved: Vec<(String, String)>,
    /// Upserts (by index) given a new record (each claimed through [`Holders::claim`]).
    pub created: Vec<usize>,
    /// Removed paths whose record stays, marked not present (a file that comes back, or
    /// appears elsewhere with the same bytes later, gets it again).
    pub gone: Vec<String>,
}

/// The record rules: one set for the SQLite store, the in-memory fallback and a first
/// start, so they cannot disagree.
///
/// - A known path keeps its record; a new hash moves `changed_at` to `now`; a path whose
///   file was gone and is back keeps its record.
/// - A new path whose bytes equal a removed path's takes that record over (a rename or a
///   move keeps id, slug and first-seen time). Removed paths are offered in path order,
///   new paths take them in path order: two identical files deleted and one re-added takes
///   the first one's record.
/// - Any other new path gets a new record: id `tag:<authority>:<path>` and a slug from its
///   title's words, each the first free of `base`, `base;2`/`base-2`, … (`holders` says
///   what is taken, and learns each claim at once, so two new articles of one title get
///   two slugs).
///
/// `ledger` looks paths up and takes each upsert's record as it is settled (no vector of a
/// start's 100 000 records on the side); `removed` are the paths the batch removes (none of
/// them upserted).
pub fn apply_rules<H: Holders>(
    ledger: &mut impl Ledger,
    upserts: &[DocKey],
    removed: &[String],
    authority: &str,
    now: DateTime<Utc>,
    holders: &mut H,
) -> Result<Outcome, H::Error> {
    let mut out = Outcome::default();
    let mut new_docs: Vec<(usize, &DocKey)> = Vec::new();
    for (i, doc) in upserts.iter().enumerate() {
        match ledger.known(doc.path) {
            Some(Known { rec, present }) => {
                let (rec, new_bytes) = rec.seen_with(doc.hash, now);
                if new_bytes || !present {
                    out.updated.push(i);
                }
                ledger.give(doc.path, rec);
            }
            None => new_docs.push((i, doc)),
        }
    }
    let mut removed: Vec<&String> = removed.iter().collect();
    removed.sort();
    let mut gone_by_hash: HashMap<blake3::Hash, VecDeque<(String, Record)>> = HashMap::new();
    for path in removed {
        if let Some(k) = ledger.known(path).filter(|k| k.present) {
            gone_by_hash
                .entry(k.rec.hash)
                .or_default()
                .push_back((path.clone(), k.rec));
        }
    }
    // Callers mostly pass paths in order already (a scan's are).
    if !new_docs.is_sorted_by(|a, b| a.1.path <= b.1.path) {
        new_docs.sort_by(|a, b| a.1.path.cmp(b.1.path));
    }
    // What each new record would ask for, made on every core: a first start asks it for
    // every file.
    let wanted: Vec<(String, String)> = new_docs
        .par_iter()
        .with_min_len(256)
        .map(|(_, doc)| (tag_id(authority, doc.path), slug_base(doc.title)))
        .collect();
    for ((i, doc), (id_base, words)) in new_docs.into_iter().zip(wanted) {
        if let Some((old, rec)) = gone_by_hash
            .get_mut(&doc.hash)
            .and_then(VecDeque::pop_front)
        {
            out.moved.push((old, doc.path.to_string()));
            ledger.give(doc.path, rec);
            continue;
        }
        let id = first_free_in(&id_base, ";", |c| holders.is_taken(Claim::Id, c))?;
        let slug = first_free_in(&words, "-", |c| holders.is_taken(Claim::Slug, c))?;
        let rec = Record {
            id: id.into(),
            slug: slug.into(),
            first_seen: now,
            hash: doc.hash,
            changed_at: None,
        };
        holders.claim(doc.path, &rec)?;
        out.created.push(i);
        ledger.give(doc.path, rec);
    }
    let mut gone: Vec<String> = gone_by_hash
        .into_values()
        .flatten()
        .map(|(path, _)| path)
        .collect();
    gone.sort();
    out.gone = gone;
    Ok(out)
}

/// `base`, or `base` + `sep` + 2, 3, …: the first candidate `taken` says is free.
fn first_free_in<E>(
    base: &str,
    sep: &str,
    mut taken: impl FnMut(&str) -> Result<bool, E>,
) -> Result<String, E> {
    if !taken(base)? {
        return Ok(base.to_string());
    }
    for n in 2.. {
        let c = format!("{base}{sep}{n}");
        if !taken(&c)? {
            return Ok(c);
        }
    }
    unreachable!("an unbounded range always yields a free candidate")
}

/// The slug a new article's title asks for, before it is made unique.
pub fn slug_base(title: &str) -> String {
    let words = crate::text::ascii_words(&deunicode::deunicode(title), 80);
    if words.is_empty() {
        "article".to_string()
    } else {
        words
    }
}

/// `tag:<authority>:<path>` with the path percent-encoded outside `[A-Za-z0-9-._~/]`.
pub fn tag_id(authority: &str, path: &str) -> String {
    let mut out = format!("tag:{authority}:");
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// For tests of the rules' callers: a ledger reading `rows` and collecting what it is
/// given, as a store's map would take it.
#[cfg(test)]
pub(crate) struct TestLedger<'a> {
    pub rows: &'a HashMap<String, Known>,
    pub given: Vec<(String, Record)>,
}

#[cfg(test)]
impl Ledger for TestLedger<'_> {
    fn known(&mut self, path: &str) -> Option<Known> {
        self.rows.get(path).cloned()
    }
    fn give(&mut self, path: &str, rec: Record) {
        self.given.push((path.to_string(), rec));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> blake3::Hash {
        blake3::hash(s.as_bytes())
    }

    /// Records as a store keeps them: by path, with whether the file is there.
    #[derive(Default)]
    struct Store {
        rows: HashMap<String, Known>,
    }

    impl Store {
        /// One batch: `files` are (path, content, title) upserted, `removes` paths removed.
        fn batch(&mut self, files: &[(&str, &str, &str)], removes: &[&str], t: i64) -> Outcome {
            let docs: Vec<DocKey> = files
                .iter()
                .map(|(p, c, title)| DocKey {
                    path: p,
                    hash: h(c),
                    title,
                })
                .collect();
            let removed: Vec<String> = removes.iter().map(|p| p.to_string()).collect();
            let mut holders = HeldSets::of(self.rows.values().map(|k| &k.rec));
            let now = DateTime::from_timestamp(t, 0).unwrap();
            let mut given = TestLedger {
                rows: &self.rows,
                given: Vec::new(),
            };
            let Ok(out) = apply_rules(
                &mut given,
                &docs,
                &removed,
                "example.com,2026",
                now,
                &mut holders,
            );
            let records = given.given;
            for (old, _) in &out.moved {
                self.rows.remove(old);
            }
            for path in &out.gone {
                if let Some(k) = self.rows.get_mut(path) {
                    k.present = false;
                }
            }
            for (path, rec) in records {
                self.rows.insert(path, Known { rec, present: true });
            }
            out
        }

        fn id(&self, path: &str) -> &str {
            &self.rows[path].rec.id
        }

        fn slug(&self, path: &str) -> &str {
            &self.rows[path].rec.slug
        }
    }

    #[test]
    fn the_record_rules_case_by_case() {
        // A rename keeps id, slug and first-seen time; so does a move to another folder.
        let mut s = Store::default();
        s.batch(&[("a.md", "A", "Alpha")], &[], 100);
        let (id, slug) = (s.id("a.md").to_string(), s.slug("a.md").to_string());
        let out = s.batch(&[("b.md", "A", "Alpha")], &["a.md"], 200);
        assert_eq!(out.moved, [("a.md".to_string(), "b.md".to_string())]);
        assert_eq!((s.id("b.md"), s.slug("b.md")), (id.as_str(), slug.as_str()));
        s.batch(&[("news/b.md", "A", "Alpha")], &["b.md"], 300);
        assert_eq!(s.id("news/b.md"), id);
        assert_eq!(s.rows["news/b.md"].rec.first_seen.timestamp(), 100);

        // An edit keeps the record and moves changed_at.
        let out = s.batch(&[("news/b.md", "A2", "Alpha")], &[], 400);
        assert_eq!(out.updated, [0]);
        assert_eq!(s.rows["news/b.md"].rec.changed_at.unwrap().timestamp(), 400);
        assert_eq!(s.id("news/b.md"), id);

        // Two identical files deleted, one re-added elsewhere: it takes the first one's
        // record (path order), the other stays gone.
        let mut s = Store::default();
        s.batch(
            &[("x/1.md", "same", "Same"), ("x/2.md", "same", "Same")],
            &[],
            100,
        );
        let first = s.id("x/1.md").to_string();
        assert_ne!(s.slug("x/1.md"), s.slug("x/2.md"), "one title, two slugs");
        let out = s.batch(&[("y.md", "same", "Same")], &["x/2.md", "x/1.md"], 200);
        assert_eq!(out.moved, [("x/1.md".to_string(), "y.md".to_string())]);
        assert_eq!(out.gone, ["x/2.md"]);
        assert_eq!(s.id("y.md"), first);

        // A deleted file that comes back keeps its record.
        let mut s = Store::default();
        s.batch(&[("c.md", "C", "Gamma")], &[], 100);
        let id = s.id("c.md").to_string();
        let out = s.batch(&[], &["c.md"], 200);
        assert_eq!(out.gone, ["c.md"]);
        let out = s.batch(&[("c.md", "C", "Gamma")], &[], 300);
        assert_eq!(out.updated, [0], "present again");
        assert_eq!(s.id("c.md"), id);
        // A gone record is not taken over by a later new file with its bytes.
        s.batch(&[], &["c.md"], 400);
        let out = s.batch(&[("d.md", "C", "Gamma")], &[], 500);
        assert_eq!(out.created, [0]);
        assert_ne!(s.id("d.md"), id);

        // New ids and slugs are the first free ones.
        let mut s = Store::default();
        s.batch(
            &[("e.md", "E", "Same title"), ("f.md", "F", "Same title")],
            &[],
            100,
        );
        assert_eq!(s.slug("e.md"), "same-title");
        assert_eq!(s.slug("f.md"), "same-title-2");
        assert_eq!(s.id("e.md"), "tag:example.com,2026:e.md");
    }

    #[test]
    fn the_load_guess_is_what_the_rules_give_when_nothing_collides() {
        let mut s = Store::default();
        s.batch(&[("a.md", "A", "Alpha")], &[], 100);
        let known = s.rows["a.md"].rec.clone();
        let now = DateTime::from_timestamp(200, 0).unwrap();
        // A known path, bytes unchanged and changed: the rule for known paths, exactly.
        assert_eq!(
            Record::likely(Some(&known), "x", "a.md", h("A"), now),
            known
        );
        s.batch(&[("a.md", "A2", "Alpha")], &[], 200);
        let edited = Record::likely(Some(&known), "x", "a.md", h("A2"), now);
        assert_eq!(edited, s.rows["a.md"].rec);
        // A new path: the id the rules try first (all but the slug, settled with the batch).
        s.batch(&[("b.md", "B", "Beta")], &[], 200);
        let new = Record::likely(None, "example.com,2026", "b.md", h("B"), now);
        let settled = &s.rows["b.md"].rec;
        assert_eq!(
            (&new.id, new.first_seen, new.hash),
            (&settled.id, settled.first_seen, settled.hash)
        );
    }
}
