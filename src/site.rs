//! The served site: an immutable [`Snapshot`] of every route with its body, compressed
//! variants, ETag and Last-Modified, built once per change and swapped atomically. Requests
//! only read a snapshot: nothing is read from disk or parsed per request, and only a category
//! or tag feed missing from its cache is rendered (see [`crate::feed_cache`]).
//!
//! Feeds, the index and the OPML are kept as identity bodies with gzip and brotli variants
//! made once per version. Article pages (one per article) are kept gzip-compressed only, in
//! `serve` as slices of the mapped page store (`crate::pages`): gzip is sent as is, and the
//! rare client that refuses gzip gets the identity body decompressed from it.

use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::header::HeaderValue;

use crate::config::Config;
use crate::feed_cache::LazyFeed;
use crate::model::{Article, Content, PageTag};
use crate::render::{self, Kind};

/// A content coding herald can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }

    fn etag_suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Gzip => "-gz",
            Coding::Brotli => "-br",
        }
    }
}

const ALL_CODINGS: &[Coding] = &[Coding::Brotli, Coding::Gzip, Coding::Identity];
/// Article pages and term feeds (see [`crate::feed_cache`]).
const PACKED_CODINGS: &[Coding] = &[Coding::Gzip, Coding::Identity];

#[derive(Debug)]
enum Repr {
    Full {
        identity: Bytes,
        gzip: OnceLock<Bytes>,
        br: OnceLock<Bytes>,
    },
    /// Only the gzip body is kept.
    Packed { gzip: Bytes },
    /// A term feed: rendered when asked for, into its cache (`tag` is its digest's).
    Lazy { feed: Arc<LazyFeed>, tag: PageTag },
}

/// One route's current representation.
#[derive(Debug)]
pub struct Rendered {
    pub kind: Kind,
    repr: Repr,
    /// Hex of the identity body's blake3 hash (first 20 chars): the ETag's opaque part.
    pub tag: String,
    /// Unix seconds; never goes backwards for a route.
    pub last_modified: i64,
    /// Header values made once per version, not per request (with a feed's own URL as
    /// `Link: <…>; rel="self"`).
    pub headers: Headers,
}

/// A representation's header values, ready to send.
#[derive(Debug)]
pub struct Headers {
    /// `ETag` per coding, in the order of [`Coding`]: identity, gzip, brotli.
    etags: [HeaderValue; 3],
    pub last_modified: HeaderValue,
    /// `Link: <self>; rel="self"` for feeds.
    pub link: Option<HeaderValue>,
}

impl Headers {
    fn new(tag: &str, last_modified: i64, self_url: Option<&str>) -> Headers {
        // Tags are hex and dates ASCII: always valid.
        let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
        let lm = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(last_modified).unwrap_or(0));
        Headers {
            etags: [Coding::Identity, Coding::Gzip, Coding::Brotli]
                .map(|c| value(format!("\"{tag}{}\"", c.etag_suffix()))),
            last_modified: value(httpdate::fmt_http_date(lm)),
            // A URL that is not a valid header value (not ASCII) gets no Link header.
            link: self_url
                .and_then(|url| HeaderValue::from_str(&format!("<{url}>; rel=\"self\"")).ok()),
        }
    }

    pub fn etag(&self, coding: Coding) -> &HeaderValue {
        match coding {
            Coding::Identity => &self.etags[0],
            Coding::Gzip => &self.etags[1],
            Coding::Brotli => &self.etags[2],
        }
    }
}

impl Rendered {
    /// Builds a representation. Compressed variants are made on first use or by [`warm`].
    ///
    /// [`warm`]: Rendered::warm
    pub fn new(
        kind: Kind,
        body: Vec<u8>,
        last_modified: i64,
        self_url: Option<String>,
    ) -> Rendered {
        let tag = body_tag(&body);
        Self::from_parts(kind, body, tag, last_modified, self_url)
    }

    /// Like [`Rendered::new`] with the body's tag ([`body_tag`]) already computed.
    pub fn from_parts(
        kind: Kind,
        body: Vec<u8>,
        tag: String,
        last_modified: i64,
        self_url: Option<String>,
    ) -> Rendered {
        Rendered {
            kind,
            repr: Repr::Full {
                identity: exact(body),
                gzip: OnceLock::new(),
                br: OnceLock::new(),
            },
            headers: Headers::new(&tag, last_modified, self_url.as_deref()),
            tag,
            last_modified,
        }
    }

    /// A representation kept as gzip only (`tag` is the identity body's).
    pub fn packed(kind: Kind, gzip: Bytes, tag: String, last_modified: i64) -> Rendered {
        Rendered {
            kind,
            repr: Repr::Packed { gzip },
            headers: Headers::new(&tag, last_modified, None),
            tag,
            last_modified,
        }
    }

    /// A term feed in one format, rendered on first use (see [`crate::feed_cache`]); `tag`
    /// is the digest tag of everything the body shows.
    pub fn lazy(
        kind: Kind,
        feed: Arc<LazyFeed>,
        tag: PageTag,
        last_modified: i64,
        self_url: Option<String>,
    ) -> Rendered {
        Rendered {
            kind,
            headers: Headers::new(tag.as_str(), last_modified, self_url.as_deref()),
            tag: tag.as_str().to_string(),
            repr: Repr::Lazy { feed, tag },
            last_modified,
        }
    }

    /// A term feed's spec and digest tag, for a representation made by [`Rendered::lazy`].
    pub fn lazy_feed(&self) -> Option<(&LazyFeed, &PageTag)> {
        match &self.repr {
            Repr::Lazy { feed, tag } => Some((feed, tag)),
            _ => None,
        }
    }

    /// The codings this representation can be sent in, best first.
    pub fn codings(&self) -> &'static [Coding] {
        match self.repr {
            Repr::Full { .. } => ALL_CODINGS,
            Repr::Packed { .. } | Repr::Lazy { .. } => PACKED_CODINGS,
        }
    }

    /// Makes the compressed variants now (the engine does this right after publishing, off the
    /// request path; a request that comes first waits for the one being made).
    pub fn warm(&self) {
        if let Repr::Full { .. } = self.repr {
            self.body(Coding::Gzip);
            self.body(Coding::Brotli);
        }
    }

    /// The body in a coding (compressed at most once per version). A coding not in
    /// [`codings`](Rendered::codings) gives the identity body.
    pub fn body(&self, coding: Coding) -> Bytes {
        match (&self.repr, coding) {
            (Repr::Full { identity, .. }, Coding::Identity) => identity.clone(),
            (Repr::Full { identity, gzip, .. }, Coding::Gzip) => {
                gzip.get_or_init(|| compress(identity, coding)).clone()
            }
            (Repr::Full { identity, br, .. }, Coding::Brotli) => {
                br.get_or_init(|| compress(identity, coding)).clone()
            }
            (Repr::Packed { gzip }, Coding::Gzip) => gzip.clone(),
            (Repr::Packed { gzip }, _) => Bytes::from(gunzip(gzip)),
            (Repr::Lazy { feed, tag }, _) => feed.body(self.kind, tag, coding),
        }
    }

    /// An identity body in a coding.
    pub fn encode(identity: Vec<u8>, coding: Coding) -> Bytes {
        match coding {
            Coding::Identity => exact(identity),
            _ => compress(&identity, coding),
        }
    }

    /// The strong ETag of the body in a coding (each coding has its own).
    pub fn etag(&self, coding: Coding) -> &str {
        // Made from hex digits and quotes: always text.
        self.headers.etag(coding).to_str().unwrap_or_default()
    }
}

/// Bytes that keep no spare capacity: a body built by a growing writer can hold up to twice
/// its length, and `Bytes::from(Vec)` keeps the whole allocation for as long as it lives.
fn exact(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
}

/// A body compressed in a coding (feeds: gzip level 6 or brotli; identity is a copy).
pub fn compress(identity: &[u8], coding: Coding) -> Bytes {
    match coding {
        Coding::Identity => Bytes::copy_from_slice(identity),
        Coding::Gzip => compress_gzip(identity, 6),
        Coding::Brotli => compress_brotli(identity),
    }
}

/// The opaque part of an ETag for a body.
pub fn body_tag(body: &[u8]) -> String {
    PageTag::of(body).as_str().to_string()
}

/// gzip for article pages: a fast level and one reused compressor per thread (making a new
/// one clears a large window buffer every time, which costs more than compressing a page).
pub fn compress_gzip_fast(data: &[u8]) -> Bytes {
    use flate2::{Compress, Compression, FlushCompress, Status};
    thread_local! {
        static DEFLATE: std::cell::RefCell<Compress> = std::cell::RefCell::new(Compress::new(Compression::new(PAGE_LEVEL), false));
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    // gzip header: magic, deflate, no flags, no mtime, no extra flags, unknown OS.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    DEFLATE.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        loop {
            let consumed = c.total_in() as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            match c.compress_vec(&data[consumed..], &mut out, FlushCompress::Finish) {
                Ok(Status::StreamEnd) => break,
                Ok(_) => continue,
                // Compressing into a growing Vec cannot fail; fall back to the slow path anyway.
                Err(_) => {
                    out = compress_gzip(data, PAGE_LEVEL).to_vec();
                    return;
                }
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    });
    // Kept for as long as the article lives: no spare capacity (about a third of a page).
    out.shrink_to_fit();
    Bytes::from(out)
}

/// The gzip level of article pages: fast, at a small cost in size.
const PAGE_LEVEL: u32 = 1;

/// gzip at `level` (0–9).
pub fn compress_gzip(data: &[u8], level: u32) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3 + 64),
        flate2::Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    exact(enc.finish().unwrap_or_default())
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 4);
    // Our own gzip bytes: decompression cannot fail.
    let _ = flate2::read::GzDecoder::new(data).read_to_end(&mut out);
    out
}

/// Brotli quality 5: most of quality 11's gain at a small fraction of its time, which matters
/// when a change re-compresses several large feeds.
fn compress_brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 3);
    // A window no larger than the input: same output, and the encoder's buffers (sized by
    // the window) shrink to what a feed needs. Never below 17: at quality 5 a window of 16
    // or less switches the encoder to another match finder that allocates ~33 MB and is six
    // times slower on a 40 KB feed, for 6% smaller output.
    let fit = usize::BITS - data.len().max(1).leading_zeros();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 5,
        lgwin: fit.clamp(17, 22) as i32,
        ..Default::default()
    };
    // Reading from a slice and writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut &data[..], &mut out, &params);
    exact(out)
}

/// Renders an article's page and keeps it only gzip-compressed; the article's body and
/// summary then point into the page (so each is stored once).
pub fn pack_article(mut a: Article, cfg: &Config) -> Article {
    let (page, at) = render::article_page_with_ranges(&a, cfg);
    let tag = PageTag::of(&page);
    let gzip = compress_gzip_fast(&page);
    a.content = Content::Packed {
        page: gzip,
        tag,
        start: at.body.start as u32,
        end: at.body.end as u32,
        summary_at: (at.summary.start as u32, at.summary.end as u32),
        stored: None,
    };
    // The page holds the summary too: one copy is enough.
    a.summary = String::new();
    a
}

/// The route of a packed article page, if the article is packed.
pub fn article_route(a: &Article, last_modified: i64) -> Option<Rendered> {
    match &a.content {
        Content::Packed { page, tag, .. } => Some(Rendered::packed(
            Kind::Html,
            page.clone(),
            tag.as_str().to_string(),
            last_modified,
        )),
        Content::Html(_) => None,
    }
}

/// Route path → representation.
pub type Routes = imbl::HashMap<String, Arc<Rendered>>;

/// An article in a snapshot, found by its slug: its page (`/articles/<slug>.html`) is made
/// from the article itself when asked for, so the snapshot holds no second copy of anything
/// per article (at 100 000 articles a route and a representation each cost ~40 MB).
#[derive(Debug, Clone)]
pub struct BySlug(pub Arc<Article>);

impl std::hash::Hash for BySlug {
    /// Hashes like the slug itself, so a `&str` finds it (see `Borrow`).
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        (*self.0.slug).hash(h)
    }
}

impl PartialEq for BySlug {
    fn eq(&self, other: &Self) -> bool {
        self.0.slug == other.0.slug
    }
}

impl Eq for BySlug {}

impl std::borrow::Borrow<str> for BySlug {
    fn borrow(&self) -> &str {
        &self.0.slug
    }
}

/// Every article page, by slug. Persistent like [`Routes`].
pub type ArticlePages = imbl::HashMap<BySlug, ()>;

/// The page of an article as of `config_epoch` (when the settings that shape pages last
/// changed): a page changes with its article or with those settings.
fn article_page_route(a: &Article, config_epoch: i64) -> Option<Rendered> {
    article_route(a, a.updated.timestamp().max(config_epoch))
}

/// Everything served, as of one index version.
#[derive(Debug)]
pub struct Snapshot {
    /// Route path (with a leading `/`) → representation. A persistent map: a new snapshot
    /// shares everything that did not change with the previous one.
    pub routes: Routes,
    /// Article pages, by slug (`/articles/<slug>.html`).
    pub articles_by_slug: ArticlePages,
    /// When the settings that shape pages last changed (an article page's least Last-Modified).
    pub config_epoch: i64,
    pub generation: u64,
    pub articles: usize,
    pub feeds: usize,
    /// `Cache-Control` for every route (see [`Snapshot::cache_control`]).
    pub cache_control: HeaderValue,
    /// Unix seconds of the last content change applied.
    pub last_change: i64,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            routes: Routes::default(),
            articles_by_slug: ArticlePages::default(),
            config_epoch: 0,
            generation: 0,
            articles: 0,
            feeds: 0,
            cache_control: Snapshot::cache_control(0),
            last_change: 0,
        }
    }
}

impl Snapshot {
    /// `public, max-age=…` for `[server] max_age` seconds.
    pub fn cache_control(max_age: u32) -> HeaderValue {
        // Digits and ASCII: always a valid header value.
        HeaderValue::from_str(&format!("public, max-age={max_age}"))
            .unwrap_or(HeaderValue::from_static("public"))
    }

    /// Looks up a request path; `/` is the index page. An article page is made from its
    /// article here (a few pointer copies: its gzip bytes are a slice of the page store).
    pub fn get(&self, path: &str) -> Option<Arc<Rendered>> {
        if path == "/" {
            return self.routes.get("/index.html").cloned();
        }
        let slug = path
            .strip_prefix("/articles/")
            .and_then(|p| p.strip_suffix(".html"));
        if let Some((a, ())) = slug.and_then(|s| self.articles_by_slug.get_key_value(s)) {
            return article_page_route(&a.0, self.config_epoch).map(Arc::new);
        }
        self.routes.get(path).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_bodies_decompress_to_identity() {
        let body = "<feed>".repeat(1000).into_bytes();
        let r = Rendered::new(Kind::Atom, body.clone(), 0, None);
        r.warm();
        assert_eq!(gunzip(&r.body(Coding::Gzip)), body);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &r.body(Coding::Brotli)[..], &mut out).unwrap();
        assert_eq!(out, body);
        assert_ne!(r.etag(Coding::Gzip), r.etag(Coding::Identity));
        assert_ne!(r.etag(Coding::Brotli), r.etag(Coding::Gzip));
    }

    #[test]
    fn packed_articles_keep_their_body_and_page() {
        let cfg = crate::render::tests::config();
        let a = crate::render::tests::article("a.txt", "Title", 3);
        let plain_page = render::article_page(&a, &cfg).body;
        let body = a.content_html().into_owned();
        let packed = pack_article(a, &cfg);
        assert_eq!(packed.content_html(), body);
        // The summary lives in the page only, and comes back exactly, markup characters and all.
        for summary in [
            "",
            "Plain.",
            r#"<b>&amp; "quoted" 'it's' &#39; 5 > 4 — é</b>"#,
        ] {
            let mut a = crate::render::tests::article("s.txt", "Title", 1);
            a.summary = summary.to_string();
            let mut packed = pack_article(a, &cfg);
            assert!(packed.summary.is_empty());
            assert_eq!(packed.summary(), summary);
            packed.unpack();
            assert_eq!(packed.summary, summary);
            assert_eq!(packed.summary(), summary);
        }
        let route = article_route(&packed, 0).unwrap();
        assert_eq!(route.body(Coding::Identity), plain_page);
        assert_eq!(gunzip(&route.body(Coding::Gzip)), plain_page);
        assert_eq!(route.tag, body_tag(&plain_page));
        assert_eq!(route.codings(), PACKED_CODINGS);
        // The reused compressor gives a valid stream every time.
        for n in [0usize, 1, 100, 70_000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
            assert_eq!(gunzip(&compress_gzip_fast(&data)), data);
        }
    }
}
