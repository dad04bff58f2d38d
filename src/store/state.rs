//! What survives restarts: for every article path, its id, page slug, first-seen time,
//! content hash and the time its content last changed. A SQLite file in the state dir
//! (WAL journal: a crash or kill -9 at any moment leaves it usable, and `build`/`check` can
//! read it while `serve` runs).
//!
//! Invariant: an id or slug, once given, is never given to another path, and never changes
//! for its article — not on edit, rename (the record follows the file), restart or a
//! changed base_url.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{params, Connection, OptionalExtension};

use crate::model::{apply_rules, Claim, HeldSets, Holders, Known, Ledger, Record};
pub use crate::model::{slug_base, tag_id, DocKey};

const SCHEMA_VERSION: i64 = 1;

/// Records by path.
pub type Records = HashMap<Arc<str>, Record>;

/// Why the store did not give records, where the caller branches: it goes on from memory
/// in both cases, but only a failure is news.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Records it failed to take earlier are still waiting to be written.
    #[error("state store still has unsaved records")]
    Behind,
    /// SQLite failed (disk full, file unwritable, …).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

pub struct State {
    conn: Connection,
    authority: String,
}

/// A change to apply: the documents now present at their paths, and paths now gone.
#[derive(Debug, Default)]
pub struct Batch<'a> {
    pub upserts: Vec<DocKey<'a>>,
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
        // 2 MiB of page cache (SQLite's default): a first start's 100 000 inserts take no
        // longer than with 8 MiB (measured), and the cache stays allocated for the daemon's life.
        conn.pragma_update(None, "cache_size", -2048)?;
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
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS routes (path TEXT PRIMARY KEY, tag TEXT NOT NULL, last_modified INTEGER NOT NULL);",
        )?;
        conn.execute_batch(crate::store::cache::SCHEMA)?;
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
        docs: &[DocKey],
        now: DateTime<Utc>,
        commit: bool,
    ) -> anyhow::Result<Records> {
        self.run(docs, Removes::AllOthers, now, commit)
    }

    /// Applies a batch in one transaction and returns the record of every upserted path.
    /// A removed path whose content reappears under an upserted new path hands its record
    /// over (same id, slug and first-seen time). With `commit == false` nothing is kept.
    pub fn apply(
        &mut self,
        batch: &Batch,
        now: DateTime<Utc>,
        commit: bool,
    ) -> anyhow::Result<Records> {
        self.run(&batch.upserts, Removes::These(&batch.removes), now, commit)
    }

    fn run(
        &mut self,
        upserts: &[DocKey],
        removes: Removes,
        now: DateTime<Utc>,
        commit: bool,
    ) -> anyhow::Result<Records> {
        let now = from_ts(now.timestamp());
        let tx = self.conn.transaction()?;
        // Small batches look rows up one by one; big ones (a scan) read the table once.
        let bulk = matches!(removes, Removes::AllOthers) || upserts.len() > 512;
        let rows: HashMap<String, Row> = if bulk {
            all_rows(&tx)?
        } else {
            let mut rows = HashMap::new();
            let removed: &[String] = match removes {
                Removes::These(r) => r,
                Removes::AllOthers => &[],
            };
            for path in upserts
                .iter()
                .map(|d| d.path)
                .chain(removed.iter().map(String::as_str))
            {
                if let Some(row) = one_row(&tx, path)? {
                    rows.insert(path.to_string(), row);
                }
            }
            rows
        };
        // (A first start, with no rows, removes nothing: no need for the set.)
        let upserted: HashSet<&str> = if rows.is_empty() {
            HashSet::new()
        } else {
            upserts.iter().map(|d| d.path).collect()
        };
        let removed: Vec<String> = match removes {
            Removes::These(r) => r
                .iter()
                .filter(|p| !upserted.contains(p.as_str()))
                .cloned()
                .collect(),
            Removes::AllOthers => rows
                .iter()
                .filter(|(p, r)| r.present && !upserted.contains(p.as_str()))
                .map(|(p, _)| p.clone())
                .collect(),
        };
        let mut holders = StoreHolders {
            tx: &tx,
            sets: bulk.then(|| HeldSets::of(rows.values().map(|r| &r.rec))),
        };
        let mut ledger = RowLedger {
            rows: &rows,
            out: HashMap::with_capacity(upserts.len()),
        };
        let outcome = apply_rules(
            &mut ledger,
            upserts,
            &removed,
            &self.authority,
            now,
            &mut holders,
        )?;
        let out = ledger.out;
        let writes = Writes {
            update: outcome
                .updated
                .iter()
                .filter_map(|&i| {
                    let path = upserts[i].path;
                    Some((path, out.get(path)?.clone()))
                })
                .collect(),
            moved: outcome.moved,
            gone: outcome.gone,
        };
        writes.apply(&tx)?;
        if commit {
            tx.commit()?;
        }
        Ok(out)
    }

    /// The tag-URI authority new ids are made with.
    pub fn authority(&self) -> &str {
        &self.authority
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
    pub fn save_records(&mut self, records: &[(&str, &Record)]) -> anyhow::Result<()> {
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
                    r.hash.to_hex().as_str(),
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

    /// Every record, with whether its file is present (to look records up in memory during
    /// a full scan).
    /// Every record by path, and the paths whose file was gone at the last sync.
    pub fn all_records(&self) -> anyhow::Result<(Records, HashSet<String>)> {
        // One statement: a consistent read without a transaction.
        let mut stmt = self.conn.prepare_cached(ALL_ROWS)?;
        let mut records = HashMap::new();
        let mut absent = HashSet::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let path: Arc<str> = r.get(0)?;
            let row = read_row(r, 1)?;
            if !row.present {
                absent.insert(path.to_string());
            }
            records.insert(path, row.rec);
        }
        Ok((records, absent))
    }

    /// Every cached article (see [`crate::store::cache`]).
    pub fn load_cache(
        &self,
        fingerprint: &str,
        keep: &crate::store::cache::KeepFn,
    ) -> anyhow::Result<HashMap<String, crate::store::cache::Entry>> {
        crate::store::cache::load(&self.conn, fingerprint, keep)
    }

    /// When the rendering settings last changed: `fingerprint` identifies the settings that
    /// shape pages; a new one is recorded with `now`. Pages kept across restarts use this as
    /// the least Last-Modified, so a config change is never hidden behind a 304.
    pub fn config_epoch(&self, fingerprint: &str, now: i64) -> anyhow::Result<i64> {
        if self.meta("config_fingerprint")?.as_deref() == Some(fingerprint) {
            if let Some(at) = self.meta("config_changed_at")?.and_then(|v| v.parse().ok()) {
                return Ok(at);
            }
        }
        self.set_meta("config_fingerprint", fingerprint)?;
        self.set_meta("config_changed_at", &now.to_string())?;
        Ok(now)
    }

    /// A stored value (e.g. per-route Last-Modified times).
    pub fn meta(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Bytes of page store the article cache points to.
    pub fn cache_page_bytes(&self) -> anyhow::Result<u64> {
        let n: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(page_len), 0) FROM article_cache",
            [],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    }

    /// Forgets every cached article (their pages are gone).
    pub fn clear_cache(&self) -> anyhow::Result<()> {
        self.conn.execute("DELETE FROM article_cache", [])?;
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

/// Which records a batch removes.
enum Removes<'a> {
    These(&'a [String]),
    /// Every present record not upserted (a full scan).
    AllOthers,
}

struct Row {
    rec: Record,
    present: bool,
}

fn read_row(r: &rusqlite::Row, offset: usize) -> rusqlite::Result<Row> {
    Ok(Row {
        rec: Record {
            id: r.get(offset)?,
            slug: r.get(offset + 1)?,
            first_seen: from_ts(r.get(offset + 2)?),
            // A damaged hash reads as one no file has: the next sync replaces it.
            hash: blake3::Hash::from_hex(r.get_ref(offset + 3)?.as_bytes()?)
                .unwrap_or(blake3::Hash::from_bytes([0; 32])),
            changed_at: r.get::<_, Option<i64>>(offset + 4)?.map(from_ts),
        },
        present: r.get(offset + 5)?,
    })
}

const ALL_ROWS: &str = "SELECT path, id, slug, first_seen, hash, changed_at, present FROM articles";

fn all_rows(tx: &rusqlite::Transaction) -> anyhow::Result<HashMap<String, Row>> {
    let mut stmt = tx.prepare_cached(ALL_ROWS)?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, read_row(r, 1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn one_row(tx: &rusqlite::Transaction, path: &str) -> anyhow::Result<Option<Row>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, slug, first_seen, hash, changed_at, present FROM articles WHERE path = ?1",
    )?;
    Ok(stmt.query_row([path], |r| read_row(r, 0)).optional()?)
}

/// Who holds ids and slugs, for the record rules: sets of all of them after a full read,
/// else SQLite asked one candidate at a time. A new record is written at once, so the next
/// claim in the batch sees it.
struct StoreHolders<'t> {
    tx: &'t rusqlite::Transaction<'t>,
    sets: Option<HeldSets>,
}

impl Holders for StoreHolders<'_> {
    type Error = rusqlite::Error;

    fn is_taken(&mut self, what: Claim, candidate: &str) -> rusqlite::Result<bool> {
        if let Some(sets) = &mut self.sets {
            return Ok(sets.is_taken(what, candidate).unwrap_or(false));
        }
        let sql = match what {
            Claim::Id => "SELECT 1 FROM articles WHERE id = ?1",
            Claim::Slug => "SELECT 1 FROM articles WHERE slug = ?1",
        };
        self.tx.prepare_cached(sql)?.exists([candidate])
    }

    fn claim(&mut self, path: &str, rec: &Record) -> rusqlite::Result<()> {
        insert(self.tx, path, rec)?;
        if let Some(sets) = &mut self.sets {
            let _ = sets.claim(path, rec);
        }
        Ok(())
    }
}

/// The store's rows as the rules' ledger: records are looked up in the rows read for the
/// batch and given into the map the batch returns.
struct RowLedger<'r> {
    rows: &'r HashMap<String, Row>,
    out: Records,
}

impl Ledger for RowLedger<'_> {
    fn known(&mut self, path: &str) -> Option<Known> {
        self.rows.get(path).map(|r| Known {
            rec: r.rec.clone(),
            present: r.present,
        })
    }

    fn give(&mut self, path: &str, rec: Record) {
        self.out.insert(Arc::from(path), rec);
    }
}

/// The writes a batch makes, executed together with prepared statements.
struct Writes<'a> {
    update: Vec<(&'a str, Record)>,
    moved: Vec<(String, String)>,
    gone: Vec<String>,
}

impl Writes<'_> {
    fn apply(self, tx: &rusqlite::Transaction) -> anyhow::Result<()> {
        let mut update = tx.prepare_cached(
            "UPDATE articles SET hash = ?2, changed_at = ?3, present = 1 WHERE path = ?1",
        )?;
        for (path, r) in &self.update {
            update.execute(params![
                path,
                r.hash.to_hex().as_str(),
                r.changed_at.map(|c| c.timestamp())
            ])?;
        }
        let mut moved =
            tx.prepare_cached("UPDATE articles SET path = ?2, present = 1 WHERE path = ?1")?;
        for (from, to) in &self.moved {
            moved.execute([from, to])?;
        }

        let mut gone = tx.prepare_cached("UPDATE articles SET present = 0 WHERE path = ?1")?;
        for path in &self.gone {
            gone.execute([path])?;
        }
        Ok(())
    }
}

/// Records a new article.
fn insert(tx: &rusqlite::Transaction, path: &str, r: &Record) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO articles (path, id, slug, first_seen, hash, changed_at, present) VALUES (?1, ?2, ?3, ?4, ?5, NULL, 1)",
    )?
    .execute(params![
        path,
        r.id,
        r.slug,
        r.first_seen.timestamp(),
        r.hash.to_hex().as_str()
    ])?;
    Ok(())
}

fn from_ts(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc<'a>(path: &'a str, title: &'a str, hash: &'a str) -> DocKey<'a> {
        DocKey {
            path,
            hash: blake3::hash(hash.as_bytes()),
            title,
        }
    }

    fn t(s: i64) -> DateTime<Utc> {
        from_ts(1_700_000_000 + s)
    }

    /// The store and the in-memory fallback (the same rules over a map, as the engine uses
    /// them while the store fails) give the same records, batch after batch, including in
    /// small batches (ids and slugs asked of SQLite) and big ones (read once).
    #[test]
    fn the_store_and_memory_apply_the_same_record_rules() {
        use crate::model::record::TestLedger;
        let many: Vec<(String, String)> = (0..600)
            .map(|i| (format!("bulk/{i:03}.md"), format!("content {i}")))
            .collect();
        let many_docs: Vec<DocKey> = many.iter().map(|(p, c)| doc(p, "Bulk title", c)).collect();
        type Step<'a> = (Vec<DocKey<'a>>, Vec<&'a str>);
        let steps: Vec<Step> = vec![
            (
                vec![doc("a.md", "Alpha", "A"), doc("b.md", "Alpha", "B")],
                vec![],
            ),
            (vec![doc("c.md", "Alpha", "A")], vec!["a.md"]),
            (
                vec![doc("d.md", "Dup", "S"), doc("e.md", "Dup", "S")],
                vec![],
            ),
            (vec![doc("f.md", "Dup", "S")], vec!["e.md", "d.md"]),
            (vec![], vec!["b.md"]),
            (vec![doc("b.md", "Alpha", "B2")], vec![]),
            (many_docs.clone(), vec![]),
            (vec![doc("g.md", "Bulk title", "G")], vec!["bulk/000.md"]),
        ];
        let mut store = State::in_memory("example.com,2026").unwrap();
        let mut memory: std::collections::HashMap<String, Known> = Default::default();
        for (i, (upserts, removes)) in steps.iter().enumerate() {
            let now = t(100 * i as i64);
            let removes: Vec<String> = removes.iter().map(|s| s.to_string()).collect();
            let from_store = store
                .apply(
                    &Batch {
                        upserts: upserts.clone(),
                        removes: removes.clone(),
                    },
                    now,
                    true,
                )
                .unwrap();
            let mut holders = HeldSets::of(memory.values().map(|k| &k.rec));
            let mut ledger = TestLedger {
                rows: &memory,
                given: Vec::new(),
            };
            let Ok(out) = apply_rules(
                &mut ledger,
                upserts,
                &removes,
                "example.com,2026",
                now,
                &mut holders,
            );
            let given = ledger.given;
            for (old, _) in &out.moved {
                memory.remove(old);
            }
            for p in &out.gone {
                if let Some(k) = memory.get_mut(p) {
                    k.present = false;
                }
            }
            for (p, rec) in given {
                assert_eq!(from_store.get(p.as_str()), Some(&rec), "step {i}: {p}");
                memory.insert(p, Known { rec, present: true });
            }
            assert_eq!(from_store.len(), upserts.len(), "step {i}");
        }
    }

    #[test]
    fn ids_are_tag_uris_and_stable() {
        let mut st = State::in_memory("example.org,2026").unwrap();
        let a = doc("news/a b.txt", "Hello World", "h1");
        let r1 = st.sync_all(&[a], t(0), true).unwrap()["news/a b.txt"].clone();
        assert_eq!(&*r1.id, "tag:example.org,2026:news/a%20b.txt");
        assert_eq!(&*r1.slug, "hello-world");
        // Same content later: nothing moves.
        let r2 = st.sync_all(&[a], t(100), true).unwrap()["news/a b.txt"].clone();
        assert_eq!(r1, r2);
        // Edited: same id and first-seen, changed_at set.
        let a2 = doc("news/a b.txt", "Hello World!", "h2");
        let r3 = st.sync_all(&[a2], t(200), true).unwrap()["news/a b.txt"].clone();
        assert_eq!(
            (&*r3.id, r3.first_seen, r3.changed_at),
            (&*r1.id, t(0), Some(t(200)))
        );
    }

    #[test]
    fn rename_while_away_keeps_the_record() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let a = doc("a.md", "A", "same");
        let r1 = st.sync_all(&[a], t(0), true).unwrap()["a.md"].clone();
        let b = doc("b.md", "A", "same");
        let r2 = st.sync_all(&[b], t(50), true).unwrap()["b.md"].clone();
        assert_eq!(r1, r2);
        // A new file at the old path gets a fresh, different id.
        let a_new = doc("a.md", "A", "other");
        let r3 = st.sync_all(&[b, a_new], t(60), true).unwrap()["a.md"].clone();
        assert_ne!(r3.id, r1.id);
        assert_ne!(r3.slug, r1.slug);
    }

    #[test]
    fn deleted_then_restored_keeps_id_and_first_seen() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let a = doc("a.md", "A", "h");
        let r1 = st.sync_all(&[a], t(0), true).unwrap()["a.md"].clone();
        st.sync_all(&[], t(10), true).unwrap();
        let r2 = st.sync_all(&[a], t(20), true).unwrap()["a.md"].clone();
        assert_eq!(r1, r2);
    }

    #[test]
    fn uncommitted_batches_leave_no_trace() {
        let mut st = State::in_memory("x.org,2026").unwrap();
        let a = doc("a.md", "A", "h");
        st.sync_all(&[a], t(0), false).unwrap();
        let r = st.sync_all(&[a], t(99), true).unwrap()["a.md"].clone();
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
        let r = st.sync_all(&[a, b, c], t(0), true).unwrap();
        assert_eq!(&*r["a.md"].slug, "same");
        assert_eq!(&*r["b.md"].slug, "same-2");
        assert_eq!(&*r["c.md"].slug, "xin-wen");
        // A small batch (the watcher's) claims against the database, and sees its own claims.
        let (d, e) = (doc("d.md", "Same", "4"), doc("e.md", "Same", "5"));
        let batch = Batch {
            upserts: vec![d, e],
            removes: vec![],
        };
        let r = st.apply(&batch, t(1), true).unwrap();
        assert_eq!(&*r["d.md"].slug, "same-3");
        assert_eq!(&*r["e.md"].slug, "same-4");
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("s/herald.sqlite");
        let a = doc("a.md", "A", "h");
        let r1 = State::open(&file, "x.org,2026")
            .unwrap()
            .sync_all(&[a], t(0), true)
            .unwrap()["a.md"]
            .clone();
        let r2 = State::open(&file, "x.org,2026")
            .unwrap()
            .sync_all(&[a], t(9), true)
            .unwrap()["a.md"]
            .clone();
        assert_eq!(r1, r2);
    }
}
