//! What `serve` last uploaded to object storage (`[publish] to`), in `published.sqlite` in
//! the state dir: per object path, the tag of the bytes uploaded and their ETag, and the
//! target they went to. A restart compares the site with it, so what is pending (changed
//! while the store was down, or while herald was) is known without listing the bucket.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::{params, Connection};

pub struct Published {
    conn: Connection,
}

impl Published {
    /// Opens the file; what it holds for a target other than `target` is forgotten (a new
    /// bucket or prefix starts empty).
    pub fn open(file: &Path, target: &str) -> anyhow::Result<Published> {
        let conn = super::open_sqlite(file)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS objects (
                path TEXT PRIMARY KEY,
                tag TEXT NOT NULL,
                etag TEXT NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
        )?;
        let kept: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'target'", [], |r| {
                r.get(0)
            })
            .ok();
        if kept.as_deref() != Some(target) {
            conn.execute_batch("DELETE FROM objects;")?;
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('target', ?1)",
                [target],
            )?;
        }
        Ok(Published { conn })
    }

    /// Every object uploaded: path → tag.
    pub fn load(&self) -> anyhow::Result<HashMap<String, String>> {
        let mut stmt = self.conn.prepare("SELECT path, tag FROM objects")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps a batch of changes in one transaction: uploads (path, tag, ETag), deletions.
    pub fn save(
        &mut self,
        uploaded: &[(String, String, String)],
        deleted: &[String],
    ) -> anyhow::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO objects (path, tag, etag) VALUES (?1, ?2, ?3)",
            )?;
            for (path, tag, etag) in uploaded {
                put.execute(params![path, tag, etag])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM objects WHERE path = ?1")?;
            for path in deleted {
                del.execute([path])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_per_target_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("published.sqlite");
        let mut p = Published::open(&file, "s3://a/").unwrap();
        p.save(
            &[
                ("feed.atom".into(), "t1".into(), "e1".into()),
                ("x.html".into(), "t2".into(), "e2".into()),
            ],
            &[],
        )
        .unwrap();
        p.save(&[], &["x.html".into()]).unwrap();
        drop(p);
        let p = Published::open(&file, "s3://a/").unwrap();
        let have = p.load().unwrap();
        assert_eq!(have.len(), 1);
        assert_eq!(have["feed.atom"], "t1");
        drop(p);
        let p = Published::open(&file, "s3://b/").unwrap();
        assert!(p.load().unwrap().is_empty(), "another target starts empty");
    }
}
