//! What survives restarts, all in the state dir: the SQLite state (records of ids, slugs,
//! first-seen times and content hashes; per-route Last-Modified; all DDL), the article
//! cache (parsed articles by file stamp) and the page store (packed article bodies in a
//! mapped file), the built-in WebSub hub's subscriptions and what was published to object
//! storage (files of their own). Knows nothing of HTTP or of how feeds are rendered.

pub mod cache;
pub mod pages;
pub mod published;
pub mod state;
pub mod subscriptions;

use std::path::Path;

use anyhow::Context;
use rusqlite::Connection;

/// Opens (creating it and its folder when needed) a SQLite file of its own that one side
/// writes while others may read: WAL, normal sync, a 5 s busy timeout.
pub fn open_sqlite(file: &Path) -> anyhow::Result<Connection> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create state dir {}", dir.display()))?;
    }
    let conn =
        Connection::open(file).with_context(|| format!("failed to open {}", file.display()))?;
    tune(&conn).with_context(|| format!("failed to set up {}", file.display()))?;
    Ok(conn)
}

/// The settings of [`open_sqlite`], for a connection opened elsewhere (in memory).
pub fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")
}
