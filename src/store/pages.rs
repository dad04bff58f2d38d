//! The page store: `serve` moves every article's packed body and summary (an lz4 blob, see
//! [`crate::model::pack_article`]) out of the heap into a file in the state dir and maps it
//! read-only. They are the bulk of herald's memory (about 2 KB per article, 200 MB at
//! 100 000 articles); mapped, they are page cache the kernel can drop and read back.
//!
//! The store is `pages` in the state dir, locked by the running daemon. It outlives the
//! process: the article cache records where each cached article's blob is, so a restart maps
//! the file once instead of copying every blob back in. The file only grows while herald
//! runs: each batch is written at the next aligned offset and mapped on its own, and mapped
//! bytes are never written again. A replaced blob's bytes stay until a start finds more
//! dead bytes than live ones and begins a new file (that start parses every file).
//!
//! A header (magic and a random token, also recorded in the state) ties the file to the
//! cache rows that point into it: a file that is missing, foreign or replaced makes every
//! cached page a miss, never a wrong page. Herald never shrinks the file while it is mapped;
//! shrinking it from outside while herald runs is like truncating its database.
//!
//! When the file cannot be used (no state dir, locked by another herald), blobs go to a
//! private file unlinked at creation; when writing fails (disk full), they stay on the heap.
//! Serving never depends on the store.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::model::{Article, Content, Stored};

/// Mapping offsets must be multiples of the page size; 64 KiB covers every Linux platform.
/// The header takes the first block.
const ALIGN: u64 = 64 * 1024;
const MAGIC: &[u8; 8] = b"HERALDPG";

pub struct PageStore {
    file: Arc<File>,
    /// Bytes in the file (the next batch starts at the next multiple of [`ALIGN`]).
    len: u64,
    persistent: bool,
    token: String,
    /// The file as it was at open, mapped once (cached pages are slices of it).
    existing: Bytes,
}

impl PageStore {
    /// Creates a private store in `dir`: unlinked at once, gone with the process.
    pub fn open_private(dir: &Path) -> io::Result<PageStore> {
        let path = dir.join(format!(".herald-pages-{}", std::process::id()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        std::fs::remove_file(&path)?;
        Ok(PageStore {
            file: Arc::new(file),
            len: ALIGN,
            persistent: false,
            token: String::new(),
            existing: Bytes::new(),
        })
    }

    /// Opens (creating when needed) the persistent store `dir/pages` and locks it. `keep`
    /// gets the file's token and size and says whether its contents may be used (the state
    /// knows which token its cache rows refer to and how many bytes they hold); if not, the
    /// file starts over with a new token. Map the kept contents with [`map_existing`].
    ///
    /// [`map_existing`]: PageStore::map_existing
    pub fn open_persistent(
        dir: &Path,
        keep: impl FnOnce(&str, u64) -> bool,
    ) -> io::Result<PageStore> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("pages"))?;
        file.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => io::Error::new(
                io::ErrorKind::WouldBlock,
                "locked by another herald using the same state dir",
            ),
            std::fs::TryLockError::Error(e) => e,
        })?;
        let len = file.metadata()?.len();
        let mut header = [0u8; 40];
        let token = if len >= ALIGN
            && file.read_exact_at(&mut header, 0).is_ok()
            && &header[..8] == MAGIC
        {
            String::from_utf8(header[8..].to_vec()).ok()
        } else {
            None
        };
        let mut store = PageStore {
            file: Arc::new(file),
            len,
            persistent: true,
            token: token.clone().unwrap_or_default(),
            existing: Bytes::new(),
        };
        if !token.is_some_and(|t| keep(&t, len)) {
            store.reset()?;
        }
        Ok(store)
    }

    /// Empties the file and gives it a new token (nothing is mapped yet).
    fn reset(&mut self) -> io::Result<()> {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        self.token = blake3::hash(seed.as_bytes()).to_hex()[..32].to_string();
        self.file.set_len(0)?;
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(self.token.as_bytes());
        self.file.write_all_at(&header, 0)?;
        self.file.set_len(ALIGN)?;
        self.file.sync_all()?;
        self.len = ALIGN;
        Ok(())
    }

    /// Maps what the file held at open, so cached pages can be [`attach`]ed.
    ///
    /// [`attach`]: PageStore::attach
    pub fn map_existing(&mut self) -> io::Result<()> {
        if self.persistent && self.len > ALIGN {
            self.existing = Bytes::from_owner(map(&self.file, 0, self.len as usize)?);
        }
        Ok(())
    }

    /// The token the article cache must record with its rows.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Points a cached article's page at its bytes in the file (`offset`, its length is
    /// `len`). False when the file does not hold them (the article is then parsed again).
    pub fn attach(&self, a: &mut Article, offset: u64, len: usize) -> bool {
        let end = offset.saturating_add(len as u64);
        if offset < ALIGN || end > self.existing.len() as u64 {
            return false;
        }
        let Content::Packed { blob, stored, .. } = &mut a.content else {
            return false;
        };
        *blob = self.existing.slice(offset as usize..end as usize);
        *stored = Some(Stored::new(self.file.clone(), offset, true));
        true
    }

    /// Bytes the store holds (header, live and replaced pages).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= ALIGN
    }

    /// Moves the heap-held pages of `articles` into the store, as one write and one mapping.
    /// On error the articles keep their heap pages.
    pub fn spill<'a>(&mut self, articles: impl Iterator<Item = &'a mut Article>) -> io::Result<()> {
        let mut batch: Vec<(&mut Bytes, &mut Option<Stored>)> = articles
            .filter_map(|a| match &mut a.content {
                Content::Packed { blob, stored, .. } if stored.is_none() && !blob.is_empty() => {
                    Some((blob, stored))
                }
                _ => None,
            })
            .collect();
        let total: usize = batch.iter().map(|(p, _)| p.len()).sum();
        if total == 0 {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(total);
        for (p, _) in &batch {
            buf.extend_from_slice(p);
        }
        let start = self.len.div_ceil(ALIGN) * ALIGN;
        self.file.write_all_at(&buf, start)?;
        drop(buf);
        let region = map(&self.file, start, total)?;
        self.len = start + total as u64;
        let region = Bytes::from_owner(region);
        let mut at = 0;
        for (page, stored) in &mut batch {
            let n = page.len();
            **page = region.slice(at..at + n);
            **stored = Some(Stored::new(
                self.file.clone(),
                start + at as u64,
                self.persistent,
            ));
            at += n;
        }
        Ok(())
    }
}

/// Maps `len` bytes of `file` from `offset` (a multiple of [`ALIGN`]), read-only.
#[allow(unsafe_code)]
fn map(file: &File, offset: u64, len: usize) -> io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only, and the mapped bytes never change while it lives:
    // herald only writes at offsets past every mapped region and never shrinks the file once
    // anything is mapped; the file is either unlinked at creation (private store) or locked
    // against other herald processes (persistent store) in herald's own state dir.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_pages_keep_their_bytes_and_the_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = PageStore::open_private(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut articles: Vec<Article> = (0..3)
            .map(|i| {
                let a = crate::model::fixtures::article(&format!("{i}.txt"), "Title", i + 1);
                crate::model::pack_article(a)
            })
            .collect();
        let before: Vec<(Bytes, String)> = articles
            .iter()
            .map(|a| match &a.content {
                Content::Packed { blob, .. } => (blob.clone(), a.content_html().into_owned()),
                Content::Html(_) => unreachable!(),
            })
            .collect();
        store.spill(articles.iter_mut()).unwrap();
        let first = store.len();
        // Pages already stored are left alone; a new batch starts on a fresh boundary and
        // leaves the first one intact.
        store.spill(articles[..1].iter_mut()).unwrap();
        assert_eq!(store.len(), first);
        let mut more = [crate::model::pack_article(crate::model::fixtures::article(
            "x.txt", "More", 9,
        ))];
        store.spill(more.iter_mut()).unwrap();
        assert!(store.len() > 2 * ALIGN);
        assert!(more[0].packed_bytes().is_some());
        for (a, (page, body)) in articles.iter().zip(&before) {
            match &a.content {
                Content::Packed { blob, .. } => assert_eq!(blob, page),
                Content::Html(_) => unreachable!(),
            }
            assert_eq!(&a.content_html(), body);
        }
    }

    #[test]
    fn the_persistent_store_survives_a_restart_and_is_locked_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut a =
            crate::model::pack_article(crate::model::fixtures::article("a.txt", "Title", 1));
        let body = a.content_html().into_owned();
        let (token, offset, len) = {
            let mut store = PageStore::open_persistent(dir.path(), |_, _| true).unwrap();
            store.map_existing().unwrap();
            // A second herald on the same state dir cannot take it.
            let e = PageStore::open_persistent(dir.path(), |_, _| true)
                .err()
                .unwrap();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
            store.spill(std::iter::once(&mut a)).unwrap();
            let Content::Packed {
                blob,
                stored: Some(at),
                ..
            } = &a.content
            else {
                unreachable!()
            };
            (
                store.token().to_string(),
                at.persistent_offset().unwrap(),
                blob.len(),
            )
        };
        // The lock lasts as long as anything holds the file (pages point into it).
        drop(a);
        // Reopened with the same token: the page is found where it was.
        let mut store = PageStore::open_persistent(dir.path(), |t, _| t == token).unwrap();
        assert_eq!(store.token(), token);
        store.map_existing().unwrap();
        let mut cached =
            crate::model::pack_article(crate::model::fixtures::article("a.txt", "Title", 1));
        assert!(store.attach(&mut cached, offset, len));
        assert_eq!(cached.content_html(), body);
        assert!(!store.attach(&mut cached, offset, store.len() as usize));
        drop((store, cached));
        // Not kept: a new, empty file with a new token.
        let store = PageStore::open_persistent(dir.path(), |_, _| false).unwrap();
        assert_ne!(store.token(), token);
        assert!(store.is_empty());
    }
}
