//! The built-in WebSub hub's subscriptions, in `websub.sqlite` in the state dir (a file of
//! its own: the hub writes from the async side while the engine writes the state file).
//! Only verified subscriptions are kept; each until its lease ends.

use std::path::Path;

use anyhow::Context;
use rusqlite::{params, Connection};

/// One active subscription: where to deliver which feed, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub callback: String,
    /// The feed's URL, as the subscriber gave it (one of herald's own).
    pub topic: String,
    /// The key of `X-Hub-Signature`, if the subscriber gave one.
    pub secret: Option<Vec<u8>>,
    /// Unix seconds when the lease ends.
    pub expires: i64,
}

pub struct Subscriptions {
    conn: Connection,
}

impl Subscriptions {
    /// Opens (creating when needed) the file.
    pub fn open(file: &Path) -> anyhow::Result<Subscriptions> {
        let conn = super::open_sqlite(file)?;
        Self::init(conn).with_context(|| format!("failed to set up {}", file.display()))
    }

    /// Kept in memory only (no usable state dir): subscriptions end with the process.
    pub fn in_memory() -> anyhow::Result<Subscriptions> {
        let conn = Connection::open_in_memory()?;
        super::tune(&conn)?;
        Self::init(conn)
    }

    fn init(conn: Connection) -> anyhow::Result<Subscriptions> {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS subscriptions (
                callback TEXT NOT NULL,
                topic TEXT NOT NULL,
                secret BLOB,
                expires INTEGER NOT NULL,
                PRIMARY KEY (callback, topic)
            ) WITHOUT ROWID;",
        )?;
        Ok(Subscriptions { conn })
    }

    /// Every subscription whose lease has not ended at `now`.
    pub fn active(&self, now: i64) -> anyhow::Result<Vec<Subscription>> {
        let mut stmt = self.conn.prepare(
            "SELECT callback, topic, secret, expires FROM subscriptions WHERE expires > ?1",
        )?;
        let rows = stmt.query_map([now], |r| {
            Ok(Subscription {
                callback: r.get(0)?,
                topic: r.get(1)?,
                secret: r.get(2)?,
                expires: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Adds or renews a subscription.
    pub fn put(&self, s: &Subscription) -> anyhow::Result<()> {
        self.conn.execute(
            "INSERT INTO subscriptions (callback, topic, secret, expires) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (callback, topic) DO UPDATE SET secret = ?3, expires = ?4",
            params![s.callback, s.topic, s.secret, s.expires],
        )?;
        Ok(())
    }

    pub fn remove(&self, callback: &str, topic: &str) -> anyhow::Result<()> {
        self.conn.execute(
            "DELETE FROM subscriptions WHERE callback = ?1 AND topic = ?2",
            [callback, topic],
        )?;
        Ok(())
    }

    /// Removes the subscriptions whose lease ended at `now`; returns how many.
    pub fn expire(&self, now: i64) -> anyhow::Result<usize> {
        Ok(self
            .conn
            .execute("DELETE FROM subscriptions WHERE expires <= ?1", [now])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(callback: &str, expires: i64) -> Subscription {
        Subscription {
            callback: callback.into(),
            topic: "https://ex.com/feed.atom".into(),
            secret: Some(b"k".to_vec()),
            expires,
        }
    }

    #[test]
    fn subscriptions_are_kept_renewed_removed_and_expired() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("websub.sqlite");
        {
            let s = Subscriptions::open(&file).unwrap();
            s.put(&sub("http://a/", 100)).unwrap();
            s.put(&sub("http://b/", 200)).unwrap();
            s.put(&sub("http://a/", 300)).unwrap(); // a renewal
        }
        let s = Subscriptions::open(&file).unwrap();
        let mut active = s.active(150).unwrap();
        active.sort_by(|a, b| a.callback.cmp(&b.callback));
        assert_eq!(active, [sub("http://a/", 300), sub("http://b/", 200)]);
        assert_eq!(s.expire(250).unwrap(), 1);
        s.remove("http://a/", "https://ex.com/feed.atom").unwrap();
        assert!(s.active(0).unwrap().is_empty());
    }
}
