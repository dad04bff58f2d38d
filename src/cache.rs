//! The article cache: every parsed article (metadata and its packed page) kept in the state
//! file with the stamp (size, mtime, inode) of the file it came from and the fingerprint of
//! the settings that shaped it. On start, a file whose stamp and fingerprint match is not
//! read at all: its article comes from here. That is what makes a warm restart fast.
//!
//! Writes happen on their own thread with their own connection, after publishing, so they
//! never delay serving; a lost write only means that file is parsed again next time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc::{self, Receiver, Sender};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::model::{Article, Content, Person, Term};

/// What identifies a file version cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub mtime: i128,
    pub ino: u64,
}

/// An article's metadata as stored (its body lives in the page).
#[derive(Serialize, Deserialize)]
struct Meta {
    id: String,
    state_id: String,
    slug: String,
    title: String,
    published: DateTime<FixedOffset>,
    updated: DateTime<FixedOffset>,
    authors: Vec<(String, Option<String>)>,
    summary: String,
    categories: Vec<String>,
    tags: Vec<String>,
    link: Option<String>,
    hash: String,
    tag: String,
    start: u32,
    end: u32,
}

/// One cached article.
pub struct Entry {
    pub stamp: Stamp,
    pub fingerprint: String,
    pub article: Article,
}

pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS cache (
    path TEXT PRIMARY KEY,
    len INTEGER NOT NULL,
    mtime TEXT NOT NULL,
    ino INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    meta BLOB NOT NULL,
    page BLOB NOT NULL
);";

/// Reads every cached article. Entries that do not decode are left out (parsed again).
pub fn load(conn: &Connection) -> anyhow::Result<HashMap<String, Entry>> {
    let mut stmt =
        conn.prepare("SELECT path, len, mtime, ino, fingerprint, meta, page FROM cache")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Vec<u8>>(5)?,
            r.get::<_, Vec<u8>>(6)?,
        ))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (path, len, mtime, ino, fingerprint, meta, page) = row?;
        let Ok(meta) = serde_json::from_slice::<Meta>(&meta) else {
            continue;
        };
        let Ok(mtime) = mtime.parse::<i128>() else {
            continue;
        };
        let article = Article {
            path: path.clone(),
            id: meta.id,
            state_id: meta.state_id,
            slug: meta.slug,
            title: meta.title,
            published: meta.published,
            updated: meta.updated,
            authors: meta
                .authors
                .into_iter()
                .map(|(name, email)| Person { name, email })
                .collect(),
            summary: meta.summary,
            content: Content::Packed {
                page: Bytes::from(page),
                tag: meta.tag,
                start: meta.start,
                end: meta.end,
            },
            categories: meta.categories.iter().map(|c| Term::new(c)).collect(),
            tags: meta.tags.iter().map(|t| Term::new(t)).collect(),
            link: meta.link,
            hash: meta.hash,
        };
        let stamp = Stamp {
            len: len as u64,
            mtime,
            ino: ino as u64,
        };
        out.insert(
            path,
            Entry {
                stamp,
                fingerprint,
                article,
            },
        );
    }
    Ok(out)
}

/// A change to the cache.
pub enum Op {
    Put {
        stamp: Stamp,
        fingerprint: String,
        article: std::sync::Arc<Article>,
    },
    Delete(String),
}

/// The writer thread's handle; dropping it lets the thread finish what is queued and stop.
pub struct Writer {
    tx: Sender<Vec<Op>>,
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
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the article cache writer");
        }
        Writer { tx }
    }

    pub fn send(&self, ops: Vec<Op>) {
        if !ops.is_empty() {
            let _ = self.tx.send(ops);
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

fn run(mut conn: Connection, rx: Receiver<Vec<Op>>) {
    while let Ok(mut ops) = rx.recv() {
        // Take everything queued as one transaction.
        while let Ok(more) = rx.try_recv() {
            ops.extend(more);
        }
        let n = ops.len();
        if let Err(e) = write(&mut conn, ops) {
            warn!(
                error = format!("{e:#}"),
                "article cache write failed; those files will be parsed again on restart"
            );
        } else {
            debug!(entries = n, "article cache written");
        }
    }
}

fn write(conn: &mut Connection, ops: Vec<Op>) -> anyhow::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO cache (path, len, mtime, ino, fingerprint, meta, page) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut delete = tx.prepare_cached("DELETE FROM cache WHERE path = ?1")?;
        for op in ops {
            match op {
                Op::Put {
                    stamp,
                    fingerprint,
                    article,
                } => {
                    let Content::Packed {
                        page,
                        tag,
                        start,
                        end,
                    } = &article.content
                    else {
                        continue;
                    };
                    let meta = Meta {
                        id: article.id.clone(),
                        state_id: article.state_id.clone(),
                        slug: article.slug.clone(),
                        title: article.title.clone(),
                        published: article.published,
                        updated: article.updated,
                        authors: article
                            .authors
                            .iter()
                            .map(|p| (p.name.clone(), p.email.clone()))
                            .collect(),
                        summary: article.summary.clone(),
                        categories: article.categories.iter().map(|t| t.name.clone()).collect(),
                        tags: article.tags.iter().map(|t| t.name.clone()).collect(),
                        link: article.link.clone(),
                        hash: article.hash.clone(),
                        tag: tag.clone(),
                        start: *start,
                        end: *end,
                    };
                    put.execute(params![
                        article.path,
                        stamp.len as i64,
                        stamp.mtime.to_string(),
                        stamp.ino as i64,
                        fingerprint,
                        serde_json::to_vec(&meta)?,
                        &page[..]
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
