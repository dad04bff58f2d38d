//! The article cache: every parsed article's metadata kept in the state file, with where its
//! packed body and summary are in the page store (`pages`), the stamp (size, mtime, inode)
//! of the file it came from and the fingerprint of the settings that shaped it. On start, a
//! file whose stamp and fingerprint match is not read at all: its article comes from here
//! and its packed blob is a slice of the mapped store. That is what makes a warm restart fast.
//!
//! Rows are committed only after the page store is synced, so a row never points to bytes
//! that a crash lost.
//!
//! Writes happen on their own thread with their own connection, after publishing, so they
//! never delay serving; a lost write only means that file is parsed again next time.

use foldhash::{HashMap, HashMapExt};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use rayon::prelude::*;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::content::MediaRef;
use crate::model::Record;
use crate::model::{Article, Content, PageTag, Person, Term};

/// What identifies a file version cheaply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    /// Modification time: seconds since the epoch and nanoseconds (an `i128` of nanoseconds
    /// would make every stamp, and the stamp map of 100 000 files, twice the size).
    pub mtime_s: i64,
    pub mtime_ns: u32,
    pub ino: u64,
}

impl Stamp {
    /// A file's stamp from its metadata (a descriptor's `fstat`, or a `stat`).
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .unwrap_or_default();
        #[cfg(unix)]
        let ino = std::os::unix::fs::MetadataExt::ino(m);
        #[cfg(not(unix))]
        let ino = 0;
        Stamp {
            len: m.len(),
            mtime_s: i64::try_from(mtime.as_secs()).unwrap_or(i64::MAX),
            mtime_ns: mtime.subsec_nanos(),
            ino,
        }
    }
}

impl Stamp {
    /// The modification time in nanoseconds, as the cache stores it.
    fn mtime_nanos(&self) -> i128 {
        i128::from(self.mtime_s) * 1_000_000_000 + i128::from(self.mtime_ns)
    }
}

/// An article's metadata as stored (its body and summary live in the page; its state id,
/// slug and hash are its state record's, checked by `record_check`).
#[derive(Serialize, Deserialize)]
struct Meta {
    /// The front matter id, when it is not the state id.
    explicit_id: Option<String>,
    /// [`record_check`] of the record the article was made with.
    record: u64,
    title: String,
    /// Dates as (Unix seconds, nanoseconds, UTC offset in seconds): no text to parse.
    published: (i64, u32, i32),
    updated: (i64, u32, i32),
    authors: Vec<(String, Option<String>)>,
    /// (name, slug): slugs are stored so loading never recomputes them.
    categories: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    link: Option<String>,
    image: Option<MediaRef>,
    enclosure: Option<MediaRef>,
    /// The packed blob's tag, and how much of it unpacked is the body (the summary follows).
    tag: String,
    body_len: u32,
}

/// Identifies the parts of a state record an article takes: id, slug, content hash.
fn record_check(id: &str, slug: &str, hash: &blake3::Hash) -> u64 {
    let mut h = blake3::Hasher::new();
    for part in [id, slug, hash.to_hex().as_str()] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or_default())
}

/// One cached article. Its `state_id`, `slug` and `hash` are empty until [`Entry::adopt`]
/// gives it its record's; its `id` is empty unless it has an explicit one.
pub struct Entry {
    pub stamp: Stamp,
    /// [`record_check`] of the record the article was made with.
    pub record: u64,
    pub article: std::sync::Arc<Article>,
    /// Where the page is in the page store: (offset, length).
    pub page: (u64, usize),
}

impl Entry {
    /// Gives the article the strings of `rec`, the record it was made with, and the record
    /// map's `path` string; false if `rec` is another record (then the entry is of no use).
    pub fn adopt(&mut self, path: &std::sync::Arc<str>, rec: &Record) -> bool {
        let Some(a) = std::sync::Arc::get_mut(&mut self.article) else {
            return false;
        };
        if self.record != record_check(&rec.id, &rec.slug, &rec.hash) {
            return false;
        }
        let explicit_id = !a.id.is_empty();
        a.take_record(path, rec, explicit_id);
        a.hash = rec.hash;
        true
    }
}

/// (`cache` was the first version, with the pages inside: dropped, it is only a cache.)
pub const SCHEMA: &str = "DROP TABLE IF EXISTS cache;
CREATE TABLE IF NOT EXISTS article_cache (
    path TEXT PRIMARY KEY,
    len INTEGER NOT NULL,
    mtime TEXT NOT NULL,
    ino INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    meta BLOB NOT NULL,
    page_offset INTEGER NOT NULL,
    page_len INTEGER NOT NULL
);";

/// Sees each decoded cache entry (path, entry), on any thread: says whether the entry is
/// usable, and may complete it (point it at its packed blob, give it its record's strings).
pub type KeepFn<'a> = dyn Fn(&str, &mut Entry) -> bool + Sync + 'a;

/// Rows decoded at a time: bounds how many raw rows are held at once.
const CHUNK: usize = 4096;

/// Reads every article cached under the settings `fingerprint` (rows made under other
/// settings are not even decoded). Entries that do not decode, or that `keep` rejects, are
/// left out (parsed again).
pub fn load(
    conn: &Connection,
    fingerprint: &str,
    keep: &KeepFn,
) -> anyhow::Result<HashMap<String, Entry>> {
    let mut stmt = conn.prepare(
        "SELECT path, len, mtime, ino, meta, page_offset, page_len FROM article_cache WHERE fingerprint = ?1",
    )?;
    let rows = stmt.query_map([fingerprint], |r| {
        Ok(Row {
            path: r.get(0)?,
            len: r.get(1)?,
            mtime: r.get(2)?,
            ino: r.get(3)?,
            meta: r.get(4)?,
            page_offset: r.get(5)?,
            page_len: r.get(6)?,
        })
    })?;
    let mut out = HashMap::new();
    let mut raw: Vec<Row> = Vec::with_capacity(CHUNK);
    let mut flush = |raw: &mut Vec<Row>| {
        // Decoding is most of the cost: spread it over the cores.
        let decoded: Vec<(String, Entry)> = std::mem::take(raw)
            .into_par_iter()
            .filter_map(decode)
            .filter_map(|(path, mut e)| keep(&path, &mut e).then_some((path, e)))
            .collect();
        out.extend(decoded);
    };
    for row in rows {
        raw.push(row?);
        if raw.len() == CHUNK {
            flush(&mut raw);
        }
    }
    flush(&mut raw);
    Ok(out)
}

/// A cache row as stored.
struct Row {
    path: String,
    len: i64,
    mtime: String,
    ino: i64,
    meta: Vec<u8>,
    page_offset: i64,
    page_len: i64,
}

/// The first byte of every stored `Meta`: the encoding's version (postcard since 1; JSON
/// before, which never starts with this byte; 2 points to a packed blob, not a gzip page;
/// 3 adds the featured image and the enclosure).
const META_VERSION: u8 = 3;

fn encode_meta(meta: &Meta) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![META_VERSION];
    out.extend(postcard::to_stdvec(meta)?);
    Ok(out)
}

fn decode_meta(bytes: &[u8]) -> Option<Meta> {
    let (&version, rest) = bytes.split_first()?;
    if version != META_VERSION {
        return None;
    }
    let (meta, left) = postcard::take_from_bytes::<Meta>(rest).ok()?;
    left.is_empty().then_some(meta)
}

fn to_parts(d: DateTime<FixedOffset>) -> (i64, u32, i32) {
    (
        d.timestamp(),
        d.timestamp_subsec_nanos(),
        d.offset().local_minus_utc(),
    )
}

fn from_parts((secs, nanos, offset): (i64, u32, i32)) -> Option<DateTime<FixedOffset>> {
    let zone = FixedOffset::east_opt(offset)?;
    DateTime::from_timestamp(secs, nanos).map(|d| d.with_timezone(&zone))
}

fn decode(row: Row) -> Option<(String, Entry)> {
    let meta = decode_meta(&row.meta)?;
    let nanos: i128 = row.mtime.parse().ok()?;
    let stamp = Stamp {
        len: row.len as u64,
        mtime_s: i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?,
        mtime_ns: nanos.rem_euclid(1_000_000_000) as u32,
        ino: row.ino as u64,
    };
    // Shared like freshly parsed terms, so every article with a name has the one slug this
    // run gives it (see `Term::shared`); the recorded slug is not needed.
    let terms = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(name, _slug)| Term::shared(&name))
            .collect()
    };
    let empty: std::sync::Arc<str> = std::sync::Arc::from("");
    let article = Article {
        path: row.path.as_str().into(),
        id: meta.explicit_id.map_or_else(|| empty.clone(), Into::into),
        state_id: empty.clone(),
        slug: empty.clone(),
        title: meta.title,
        published: from_parts(meta.published)?,
        updated: from_parts(meta.updated)?,
        authors: meta
            .authors
            .into_iter()
            .map(|(name, email)| Person { name, email })
            .collect(),
        summary: String::new(),
        content: Content::Packed {
            // Attached from the page store by the caller (see `Entry::page`).
            blob: Bytes::new(),
            tag: PageTag::parse(&meta.tag)?,
            body_len: meta.body_len,
            stored: None,
        },
        categories: terms(meta.categories),
        tags: terms(meta.tags),
        link: meta.link,
        image: meta.image.map(Box::new),
        enclosure: meta.enclosure.map(Box::new),
        hash: blake3::Hash::from_bytes([0; 32]),
    };
    Some((
        row.path,
        Entry {
            stamp,
            record: meta.record,
            article: std::sync::Arc::new(article),
            page: (
                u64::try_from(row.page_offset).ok()?,
                usize::try_from(row.page_len).ok()?,
            ),
        },
    ))
}

/// Reads one damaged or hostile row as [`load`] does (`meta` as stored, `mtime` as the text
/// column, the page store's `(offset, len)`), gives the article `blob` as its page-store
/// bytes and reads its texts back: what a bad state dir can make herald do. For fuzzing;
/// true when the row was usable.
pub(crate) fn read_damaged_row(meta: &[u8], mtime: &str, page: (i64, i64), blob: &[u8]) -> bool {
    let row = Row {
        path: "fuzz/article.txt".into(),
        len: 1,
        mtime: mtime.into(),
        ino: 1,
        meta: meta.to_vec(),
        page_offset: page.0,
        page_len: page.1,
    };
    let Some((_, entry)) = decode(row) else {
        return false;
    };
    let mut article = Article::clone(&entry.article);
    if let Content::Packed { blob: b, .. } = &mut article.content {
        *b = Bytes::copy_from_slice(blob);
    }
    let (body, summary) = article.texts();
    body.len() + summary.len() < usize::MAX
}

/// A change to the cache.
pub enum Op {
    Put {
        stamp: Stamp,
        /// Shared by every op of a batch (one string, not 100 000).
        fingerprint: std::sync::Arc<str>,
        article: std::sync::Arc<Article>,
    },
    Delete(String),
}

/// The writer thread's handle; dropping it lets the thread finish what is queued and stop.
pub struct Writer {
    tx: Option<Sender<Vec<Op>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Writer {
    /// Closes the queue and waits for what is queued to be written (on shutdown).
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Writer {
    /// Starts the writer on its own connection to the state file.
    pub fn start(file: &Path) -> Writer {
        let (tx, rx) = mpsc::channel();
        let file = file.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("herald-cache".into())
            .spawn(move || match open(&file) {
                Ok(conn) => run(conn, rx),
                Err(e) => warn!(
                    error = format!("{e:#}"),
                    "article cache unavailable; restarts will parse every file"
                ),
            });
        let thread = match spawned {
            Ok(t) => Some(t),
            Err(e) => {
                warn!(error = %e, "cannot start the article cache writer");
                None
            }
        };
        Writer {
            tx: Some(tx),
            thread,
        }
    }

    pub fn send(&self, ops: Vec<Op>) {
        if let (false, Some(tx)) = (ops.is_empty(), &self.tx) {
            let _ = tx.send(ops);
        }
    }
}

fn open(file: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(file)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Rows written per transaction. The engine writes to the same file (records, routes'
/// Last-Modified) and waits for the lock meanwhile: a first start's million rows in one
/// transaction held it for seconds, and every publish behind it (new files took up to
/// 20 s to be served at a million articles).
const WRITE_BATCH: usize = 8192;

/// How long the writer leaves the lock free between batches, so a waiting engine gets it
/// (SQLite's busy handler polls; a writer starting its next batch at once could win
/// every time).
const BETWEEN_BATCHES: std::time::Duration = std::time::Duration::from_millis(20);

fn run(mut conn: Connection, rx: Receiver<Vec<Op>>) {
    while let Ok(mut ops) = rx.recv() {
        // Take everything queued, written in batches.
        while let Ok(more) = rx.try_recv() {
            ops.extend(more);
        }
        let n = ops.len();
        let mut failed = None;
        let mut ops = ops.into_iter().peekable();
        while ops.peek().is_some() {
            let batch: Vec<Op> = ops.by_ref().take(WRITE_BATCH).collect();
            if let Err(e) = write(&mut conn, batch) {
                failed = Some(e);
            }
            if ops.peek().is_some() {
                std::thread::sleep(BETWEEN_BATCHES);
            }
        }
        match failed {
            Some(e) => warn!(
                error = format!("{e:#}"),
                "article cache write failed; those files will be parsed again on restart"
            ),
            None => debug!(entries = n, "article cache written"),
        }
    }
}

fn write(conn: &mut Connection, ops: Vec<Op>) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO article_cache (path, len, mtime, ino, fingerprint, meta, page_offset, page_len) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM article_cache WHERE path = ?1")?;
        // The pages must be on disk before rows point to them.
        let mut synced = false;
        for op in ops {
            match op {
                Op::Put {
                    stamp,
                    fingerprint,
                    article,
                } => {
                    // Only pages in the persistent store can be cached.
                    let Content::Packed {
                        blob,
                        tag,
                        body_len,
                        stored: Some(at),
                    } = &article.content
                    else {
                        delete.execute([&article.path])?;
                        continue;
                    };
                    let Some(offset) = at.persistent_offset() else {
                        delete.execute([&article.path])?;
                        continue;
                    };
                    if !synced {
                        at.sync()?;
                        synced = true;
                    }
                    let meta = Meta {
                        explicit_id: (article.id != article.state_id)
                            .then(|| article.id.to_string()),
                        record: record_check(&article.state_id, &article.slug, &article.hash),
                        title: article.title.clone(),
                        published: to_parts(article.published),
                        updated: to_parts(article.updated),
                        authors: article
                            .authors
                            .iter()
                            .map(|p| (p.name.clone(), p.email.clone()))
                            .collect(),

                        categories: article
                            .categories
                            .iter()
                            .map(|t| (t.name.clone(), t.slug.clone()))
                            .collect(),
                        tags: article
                            .tags
                            .iter()
                            .map(|t| (t.name.clone(), t.slug.clone()))
                            .collect(),
                        link: article.link.clone(),
                        image: article.image.as_deref().cloned(),
                        enclosure: article.enclosure.as_deref().cloned(),
                        tag: tag.as_str().to_string(),
                        body_len: *body_len,
                    };
                    put.execute(params![
                        article.path,
                        stamp.len as i64,
                        stamp.mtime_nanos().to_string(),
                        stamp.ino as i64,
                        fingerprint,
                        encode_meta(&meta)?,
                        offset as i64,
                        blob.len() as i64
                    ])?;
                }
                Op::Delete(path) => {
                    delete.execute([path])?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_older_encodings_are_misses() {
        let date = DateTime::parse_from_rfc3339("2015-12-24T08:30:00.25+08:00").unwrap();
        let meta = Meta {
            explicit_id: Some("urn:x".into()),
            record: 42,
            title: "T".into(),
            published: to_parts(date),
            updated: to_parts(date),
            authors: vec![("A".into(), Some("a@example.com".into()))],
            categories: vec![("News".into(), "news".into())],
            tags: vec![],
            link: None,
            image: Some(MediaRef {
                url: "https://ex.com/a.png".into(),
                mime: Some("image/png".into()),
                length: Some(5),
                width: Some(720),
                height: Some(405),
            }),
            enclosure: None,
            tag: "abc".into(),
            body_len: 7,
        };
        let bytes = encode_meta(&meta).unwrap();
        let back = decode_meta(&bytes).unwrap();
        assert_eq!(back.image.as_ref().and_then(|m| m.width), Some(720));
        assert_eq!(from_parts(back.published), Some(date));
        assert_eq!(back.explicit_id.as_deref(), Some("urn:x"));
        assert_eq!((back.record, back.body_len), (42, 7));
        // The JSON rows of earlier versions, a cut row and trailing bytes are all misses.
        assert!(decode_meta(br#"{"title":"T"}"#).is_none());
        assert!(decode_meta(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode_meta(&[bytes.as_slice(), &[0]].concat()).is_none());
        assert!(decode_meta(&[]).is_none());
    }
}
