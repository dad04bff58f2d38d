//! The page store: `serve` moves the gzip-compressed article pages out of the heap into a
//! private file in the state dir and maps it read-only. Pages are the bulk of herald's memory
//! (about 1.7 KB per article, 170 MB at 100 000 articles); mapped, they are page cache the
//! kernel can drop and read back, and a served page is still a zero-copy slice: nothing is
//! read or rendered per request.
//!
//! The file is unlinked as soon as it is created, so it vanishes with the process (a crash
//! leaves nothing behind) and nobody else can truncate it under the mapping. It only grows:
//! each batch is written at the next page-aligned offset and mapped on its own, and mapped
//! bytes are never written again. A replaced page's bytes stay in the file until the
//! process ends (an edit costs its page, ~2 KB, of disk).
//!
//! Any failure (no state dir, disk full, a file system without mmap) leaves the pages where
//! they were: on the heap. Serving never depends on the store.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use crate::model::{Article, Content};

/// Mapping offsets must be multiples of the page size; 64 KiB covers every Linux platform.
const ALIGN: u64 = 64 * 1024;

/// Where a page is in the store.
#[derive(Debug, Clone)]
pub struct Stored {
    file: Arc<File>,
    offset: u64,
}

impl Stored {
    /// Reads the page (`len` bytes) with `pread`, without touching its mapping: the kernel
    /// maps pages around every touched one, so reading 2 000 feed entries through the mapping
    /// would make most of the store resident.
    pub fn read(&self, len: usize) -> io::Result<Bytes> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, self.offset)?;
        Ok(Bytes::from(buf))
    }
}

pub struct PageStore {
    file: Arc<File>,
    /// Bytes written so far (the next batch starts at the next multiple of [`ALIGN`]).
    len: u64,
}

impl PageStore {
    /// Creates the private file in `dir`.
    pub fn open(dir: &Path) -> io::Result<PageStore> {
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
            len: 0,
        })
    }

    /// Bytes the store holds (live and replaced pages).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Moves the heap-held pages of `articles` into the store, as one write and one mapping.
    /// On error the articles keep their heap pages.
    pub fn spill<'a>(&mut self, articles: impl Iterator<Item = &'a mut Article>) -> io::Result<()> {
        let mut batch: Vec<(&mut Bytes, &mut Option<Stored>)> = articles
            .filter_map(|a| match &mut a.content {
                Content::Packed { page, stored, .. } if stored.is_none() && !page.is_empty() => {
                    Some((page, stored))
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
            **stored = Some(Stored {
                file: self.file.clone(),
                offset: start + at as u64,
            });
            at += n;
        }
        Ok(())
    }
}

/// Maps `len` bytes of `file` from `offset` (a multiple of [`ALIGN`]), read-only.
#[allow(unsafe_code)]
fn map(file: &File, offset: u64, len: usize) -> io::Result<memmap2::Mmap> {
    // SAFETY: the mapping is read-only, and the mapped bytes never change while it lives:
    // the file is unlinked right after creation (no other process can reach it), herald never
    // truncates it, and it only writes at offsets past every mapped region.
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
        let cfg = crate::render::tests::config();
        let mut store = PageStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut articles: Vec<Article> = (0..3)
            .map(|i| {
                let a = crate::render::tests::article(&format!("{i}.txt"), "Title", i + 1);
                crate::site::pack_article(a, &cfg)
            })
            .collect();
        let before: Vec<(Bytes, String)> = articles
            .iter()
            .map(|a| match &a.content {
                Content::Packed { page, .. } => (page.clone(), a.content_html().into_owned()),
                Content::Html(_) => unreachable!(),
            })
            .collect();
        store.spill(articles.iter_mut()).unwrap();
        let first = store.len();
        // Pages already stored are left alone; a new batch starts on a fresh boundary and
        // leaves the first one intact.
        store.spill(articles[..1].iter_mut()).unwrap();
        assert_eq!(store.len(), first);
        let mut more = [crate::site::pack_article(
            crate::render::tests::article("x.txt", "More", 9),
            &cfg,
        )];
        store.spill(more.iter_mut()).unwrap();
        assert!(store.len() > ALIGN);
        assert!(more[0].page_bytes().is_some());
        for (a, (page, body)) in articles.iter().zip(&before) {
            match &a.content {
                Content::Packed { page: p, .. } => assert_eq!(p, page),
                Content::Html(_) => unreachable!(),
            }
            assert_eq!(&a.content_html(), body);
        }
    }
}
