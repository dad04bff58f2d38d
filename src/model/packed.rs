//! Packed bodies: an article keeps its body and summary as one lz4 block, in memory until
//! the page store takes it (see `store::pages`). Plain data and CPU work, no I/O.

use bytes::Bytes;

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
