//! What survives restarts: for every article path, its id, page slug, first-seen time,
//! content hash and the time its content last changed. A SQLite file in the state dir
//! (WAL journal: a crash or kill -9 at any moment leaves it usable, and `build`/`check` can
//! read it while `serve` runs).
//!
//! Invariant: an id or slug, once given, is never given to another path, and never changes
//! for its article — not on edit, rename (the record follows the file), restart or a
//! changed base_url.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::content::Document;
use crate::text;

const SCHEMA_VERSION: i64 = 1;

/// What the state remembers about one article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub id: String,
    pub slug: String,
    pub first_seen: DateTime<Utc>,
    pub hash: String,
    /// When the content last changed after it was first seen.
    pub changed_at: Option<DateTime<Utc>>,
}

pub struct State {
    conn: Connection,
    authority: String,
}

/// A change to apply: the documents now present at their paths, and paths now gone.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pub upserts: Vec<&'a Document>,
    pub removes: Vec<String>,
}

impl State {
    /// Opens (creating when needed) the state file.
    pub fn open(file: &Path, authority: &str) -> anyhow::Result<State> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create state dir {}", dir.display()))?;
        }
        let conn = Connection::open(file)
            .with_context(|| format!("failed to open state file {}", file.display()))?;
        Self::init(conn, authority)
            .with_context(|| format!("failed to set up state file {}", file.display()))
    }

    /// A state that lives in memory only (`check` without a state dir, tests).
    pub fn in_memory(authority: &str) -> anyhow::Result<State> {
        Self::init(Connection::open_in_memory()?, authority)
    }

    fn init(conn: Connection, authority: &str) -> anyhow::Result<State> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            anyhow::bail!(
                "state schema version {version} is newer than this herald ({SCHEMA_VERSION})"
            );
        }
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS articles (
                path TEXT PRIMARY KEY,
                id TEXT NOT NULL UNIQUE,
                slug TEXT NOT NULL UNIQUE,
                first_seen INTEGER NOT NULL,
                hash TEXT NOT NULL,
                changed_at INTEGER,
                present INTEGER NOT NULL DEFAULT 1
            );
            CREATE INDEX IF NOT EXISTS articles_hash ON articles(hash);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS routes (path TEXT PRIMARY KEY, tag TEXT NOT NULL, last_modified INTEGER NOT NULL);",
        )?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(State {
            conn,
            authority: authority.to_string(),
        })
    }

    /// Brings the state in line with the full set of documents found by a scan: records of
    /// paths no longer present are marked gone (a new path with a gone record's content takes
    /// that record over: a rename while herald was not looking).
    pub fn sync_all(
        &mut self,
        docs: &[&Document],
        now: DateTime<Utc>,
        commit: bool,
    ) -> anyhow::Result<HashMap<String, Record>> {
        let present: HashSet<&str> = docs.iter().map(|d| d.path.as_str()).collect();
        let removes = self
            .present_paths()?
            .into_iter()
            .filter(|p| !present.contains(p.as_str()))
            .collect();
        self.apply(
            &Batch {
                upserts: docs.to_vec(),
                removes,
            },
            now,
            commit,
        )
    }

    fn present_paths(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path FROM articles WHERE present = 1")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies a batch in one transaction and returns the record of every upserted path.
    /// A removed path whose content reappears under an upserted new path hands its record
    /// over (same id, slug and first-seen time). With `commit == false` nothing is kept.
    pub fn apply(
        &mut self,
        batch: &Batch,
        now: DateTime<Utc>,
        commit: bool,
    ) -> anyhow::Result<HashMap<String, Record>> {
        let now_s = now.timestamp();
        let tx = self.conn.transaction()?;
        let mut out = HashMap::with_capacity(batch.upserts.len());
        let mut new_docs: Vec<&Document> = Vec::new();
        {
            let mut get = tx.prepare_cached(
                "SELECT id, slug, first_seen, hash, changed_at, present FROM articles WHERE path = ?1",
            )?;
            let mut update = tx.prepare_cached(
                "UPDATE articles SET hash = ?2, changed_at = ?3, present = 1 WHERE path = ?1",
            )?;
            for doc in &batch.upserts {
                let row = get
                    .query_row([&doc.path], |r| {
                        Ok((
                            Record {
                                id: r.get(0)?,
                                slug: r.get(1)?,
                                first_seen: from_ts(r.get(2)?),
                                hash: r.get(3)?,
                                changed_at: r.get::<_, Option<i64>>(4)?.map(from_ts),
                            },
                            r.get::<_, bool>(5)?,
                        ))
                    })
                    .optional()?;
                match row {
                    Some((mut rec, present)) => {
                        if rec.hash != doc.hash || !present {
                            if rec.hash != doc.hash {
                                rec.changed_at = Some(from_ts(now_s));
                                rec.hash = doc.hash.clone();
                            }
                            update.execute(params![
                                doc.path,
                                rec.hash,
                                rec.changed_at.map(|c| c.timestamp())
                            ])?;
                        }
                        out.insert(doc.path.clone(), rec);
                    }
                    None => new_docs.push(doc),
                }
            }
        }
        // Paths that went away, by content hash, for rename detection.
        let upserted: HashSet<&str> = batch.upserts.iter().map(|d| d.path.as_str()).collect();
        let mut gone_by_hash: HashMap<String, VecDeque<String>> = HashMap::new();
        {
            let mut hash_of =
                tx.prepare_cached("SELECT hash FROM articles WHERE path = ?1 AND present = 1")?;
            let mut removes: Vec<&String> = batch
                .removes
                .iter()
                .filter(|p| !upserted.contains(p.as_str()))
                .collect();
            removes.sort();
            for path in removes {
                if let Some(hash) = hash_of
                    .query_row([path], |r| r.get::<_, String>(0))
                    .optional()?
                {
                    gone_by_hash
                        .entry(hash)
                        .or_default()
                        .push_back(path.clone());
                }
            }
        }
        new_docs.sort_by(|a, b| a.path.cmp(&b.path));
        {
            let mut take_over =
                tx.prepare_cached("UPDATE articles SET path = ?2, present = 1 WHERE path = ?1")?;
            let mut get = tx.prepare_cached(
                "SELECT id, slug, first_seen, hash, changed_at FROM articles WHERE path = ?1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO articles (path, id, slug, first_seen, hash, changed_at, present) VALUES (?1, ?2, ?3, ?4, ?5, NULL, 1)",
            )?;
            let mut id_taken = tx.prepare_cached("SELECT 1 FROM articles WHERE id = ?1")?;
            let mut slug_taken = tx.prepare_cached("SELECT 1 FROM articles WHERE slug = ?1")?;
            for doc in new_docs {
                if let Some(old) = gone_by_hash
                    .get_mut(&doc.hash)
                    .and_then(VecDeque::pop_front)
                {
                    take_over.execute([&old, &doc.path])?;
                    let rec = get.query_row([&doc.path], |r| {
                        Ok(Record {
                            id: r.get(0)?,
                            slug: r.get(1)?,
                            first_seen: from_ts(r.get(2)?),
                            hash: r.get(3)?,
                            changed_at: r.get::<_, Option<i64>>(4)?.map(from_ts),
                        })
                    })?;
                    out.insert(doc.path.clone(), rec);
                    continue;
                }
                let base_id = tag_id(&self.authority, &doc.path);
                let id = unique(&base_id, ";", |c| id_taken.exists([c]))?;
                let base_slug = text::ascii_words(&deunicode::deunicode(&doc.title), 80);
                let base_slug = if base_slug.is_empty() {
                    "article".to_string()
                } else {
                    base_slug
                };
                let slug = unique(&base_slug, "-", |c| slug_taken.exists([c]))?;
                insert.execute(params![doc.path, id, slug, now_s, doc.hash])?;
                out.insert(
                    doc.path.clone(),
                    Record {
                        id,
                        slug,
                        first_seen: from_ts(now_s),
                        hash: doc.hash.clone(),
                        changed_at: None,
                    },
                );
            }
            let mut gone = tx.prepare_cached("UPDATE articles SET present = 0 WHERE path = ?1")?;
            for path in gone_by_hash.into_values().flatten() {
                gone.execute([path])?;
            }
        }
        if commit {
            tx.commit()?;
        }
        Ok(out)
    }

    /// Moves a record to a new path (a rename seen as such by the watcher).
    pub fn rename(&mut self, from: &str, to: &str) -> anyhow::Result<bool> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM articles WHERE path = ?1 AND present = 0", [to])?;
        let exists: bool =
            tx.query_row("SELECT COUNT(*) FROM articles WHERE path = ?1", [to], |r| {
                r.get::<_, i64>(0)
            })? > 0;
        let moved =
            !exists && tx.execute("UPDATE articles SET path = ?2 WHERE path = ?1", [from, to])? > 0;
        tx.commit()?;
        Ok(moved)
    }

    /// Writes records exactly as given (kept in memory while the state was unwritable).
    /// A record whose id or slug another path holds meanwhile is left out.
    pub fn save_records(&mut self, records: &[(String, Record)]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT OR IGNORE INTO articles (path, id, slug, first_seen, hash, changed_at, present) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1)
                 ON CONFLICT(path) DO UPDATE SET hash = excluded.hash, changed_at = excluded.changed_at, present = 1",
            )?;
            for (path, r) in records {
                upsert.execute(params![
                    path,
                    r.id,
                    r.slug,
                    r.first_seen.timestamp(),
                    r.hash,
                    r.changed_at.map(|c| c.timestamp())
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Per-route ETag tag and Last-Modified (unix seconds), so Last-Modified never goes
    /// backwards across restarts.
    pub fn load_routes(&self) -> anyhow::Result<HashMap<String, (String, i64)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT path, tag, last_modified FROM routes")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                (r.get::<_, String>(1)?, r.get::<_, i64>(2)?),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn save_routes(&mut self, routes: &[(String, String, i64)]) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO routes (path, tag, last_modified) VALUES (?1, ?2, ?3)
                 ON CONFLICT(path) DO UPDATE SET tag = excluded.tag, last_modified = excluded.last_modified",
            )?;
            for (path, tag, lm) in routes {
                upsert.execute(params![path, tag, lm])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A stored value (e.g. per-route Last-Modified times).
    pub fn meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

fn from_ts(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

/// `base`, or `base` + sep + 2, 3, … until `taken` says no.
fn unique(
    base: &str,
    sep: &str,
    mut taken: impl FnMut(&str) -> rusqlite::Result<bool>,
) -> anyhow::Result<String> {
    if !taken(base)? {
        return Ok(base.to_string());
    }
    for n in 2.. {
        let candidate = format!("{base}{sep}{n}");
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    unreachable!("an unbounded range always yields a free suffix")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(path: &str, title: &str, hash: &str) -> Document {
        Document {
            path: path.into(),
            hash: hash.into(),
            title: title.into(),
            date: None,
            updated: None,
            authors: vec![],
            summary: String::new(),
            content_html: String::new(),
            categories: vec![],
            tags: vec![],
            link: None,
            id: None,
            warnings: vec![],
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        from_ts(1_700_000_000 + s)
    }

    #[test]
    fn ids_are_tag_uris_and_stable() {
        let mut st = State::in_memory("example.org,2026").unwrap();
        let a = doc("news/a b.txt", "Hello World", "h1");
        let r1 = st.sync_all(&[&a], t(0), true).unwrap()["news/a b.txt"].clone();
        assert_eq!(r1.id, "tag:example.org,2026:news/a%20b.txt");
        assert_eq!(r1.slug, "hello-world");
        // Same content later: nothing moves.
        let r2 = st.sync_all(&[&a], t(100), true).unwrap()["news/a b.txt"].clone();
        assert_eq!(r1, r2);
        // Edited: same id and first-seen, changed_at set.
        let a2 = doc("news/a b.txt", "Hello World!", "h2");
        let r3 = st.sync_all(&[&a2], t(200), true).unwrap()["news/a b.txt"].clone();
        assert_eq!(
            (r3.id.as_str(), r3.first_seen, r3.changed_at),
            (r1.id.as_str(), t(0), Some(t(200)))
        );
    }

    #[test]
    fn rename_while_away_keeps_the_record() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let a = doc("a.md", "A", "same");
        let r1 = st.sync_all(&[&a], t(0), true).unwrap()["a.md"].clone();
        let b = doc("b.md", "A", "same");
        let r2 = st.sync_all(&[&b], t(50), true).unwrap()["b.md"].clone();
        assert_eq!(r1, r2);
        // A new file at the old path gets a fresh, different id.
        let a_new = doc("a.md", "A", "other");
        let r3 = st.sync_all(&[&b, &a_new], t(60), true).unwrap()["a.md"].clone();
        assert_ne!(r3.id, r1.id);
        assert_ne!(r3.slug, r1.slug);
    }

    #[test]
    fn deleted_then_restored_keeps_id_and_first_seen() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let a = doc("a.md", "A", "h");
        let r1 = st.sync_all(&[&a], t(0), true).unwrap()["a.md"].clone();
        st.sync_all(&[], t(10), true).unwrap();
        let r2 = st.sync_all(&[&a], t(20), true).unwrap()["a.md"].clone();
        assert_eq!(r1, r2);
    }

    #[test]
    fn uncommitted_batches_leave_no_trace() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let a = doc("a.md", "A", "h");
        st.sync_all(&[&a], t(0), false).unwrap();
        let r = st.sync_all(&[&a], t(99), true).unwrap()["a.md"].clone();
        assert_eq!(r.first_seen, t(99));
    }

    #[test]
    fn slugs_are_unique() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let (a, b, c) = (
            doc("a.md", "Same", "1"),
            doc("b.md", "Same", "2"),
            doc("c.md", "新闻", "3"),
        );
        let r = st.sync_all(&[&a, &b, &c], t(0), true).unwrap();
        assert_eq!(r["a.md"].slug, "same");
        assert_eq!(r["b.md"].slug, "same-2");
        assert_eq!(r["c.md"].slug, "xin-wen");
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s/herald.sqlite");
        let a = doc("a.md", "A", "h");
        let r1 = State::open(&file, "x.org,2026")
            .unwrap()
            .sync_all(&[&a], t(0), true)
            .unwrap()["a.md"]
            .clone();
        let r2 = State::open(&file, "x.org,2026")
            .unwrap()
            .sync_all(&[&a], t(9), true)
            .unwrap()["a.md"]
            .clone();
        assert_eq!(r1, r2);
    }
}
