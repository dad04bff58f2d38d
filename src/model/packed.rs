//! Packed bodies: an article keeps its body and summary as one lz4 block, in memory until
//! the page store takes it (see `store::pages`), then mapped from the store's file, which
//! [`Stored`] names. CPU work; the one read is [`Stored::read`], a `pread` of bytes the
//! store put there.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

/// Where a packed blob is in the page store's file (which `store::pages` writes and maps).
#[derive(Debug, Clone)]
pub struct Stored {
    file: Arc<File>,
    offset: u64,
    /// In the persistent file (so the article cache may point to it).
    persistent: bool,
}

impl Stored {
    pub fn new(file: Arc<File>, offset: u64, persistent: bool) -> Stored {
        Stored {
            file,
            offset,
            persistent,
        }
    }

    /// Reads the blob (`len` bytes) with `pread`, without touching its mapping: the kernel
    /// maps pages around every touched one, so reading 2 000 feed entries through the mapping
    /// would make most of the store resident.
    pub fn read(&self, len: usize) -> io::Result<Bytes> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, self.offset)?;
        Ok(Bytes::from(buf))
    }

    /// The offset in the persistent file, if the blob is there.
    pub fn persistent_offset(&self) -> Option<u64> {
        self.persistent.then_some(self.offset)
    }

    /// Makes what was written to the store durable (before the cache points to it).
    pub fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

use super::{Article, Content, PageTag};

/// Keeps an article's body and summary only lz4-compressed, together: at 100 000 articles
/// they are hundreds of megabytes as text. lz4, not gzip: this runs for every file on a
/// first start, where gzip was a fifth of all the work; decompressing is ~1 GB/s.
pub fn pack_article(mut a: Article) -> Article {
    let Content::Html(body) = &a.content else {
        return a;
    };
    let summary = std::mem::take(&mut a.summary);
    let body_len = body.len() as u32;
    let blob = LZ4_BUFS.with(|bufs| {
        let (input, output) = &mut *bufs.borrow_mut();
        input.clear();
        input.extend_from_slice(body.as_bytes());
        input.extend_from_slice(summary.as_bytes());
        lz4_block(input, output)
    });
    a.content = Content::Packed {
        tag: PageTag::of(&blob),
        blob,
        body_len,
        stored: None,
    };
    a
}

thread_local! {
    /// Per loading thread: the body and summary being packed, and the lz4 output buffer.
    static LZ4_BUFS: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// An lz4 block with its uncompressed size first (as `lz4_flex::compress_prepend_size`
/// makes it), in an allocation of its own size; `out` is scratch space.
fn lz4_block(data: &[u8], out: &mut Vec<u8>) -> Bytes {
    let max = 4 + lz4_flex::block::get_maximum_output_size(data.len());
    if out.len() < max {
        out.resize(max, 0);
    }
    out[..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
    // The output is sized for the worst case: compressing cannot fail.
    let n = lz4_flex::block::compress_into(data, &mut out[4..]).unwrap_or(0);
    Bytes::copy_from_slice(&out[..4 + n])
}
