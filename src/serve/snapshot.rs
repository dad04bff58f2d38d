//! The served site: an immutable [`Snapshot`] of every route with its body, compressed
//! variants, ETag and Last-Modified, built once per change and swapped atomically. Requests
//! only read a snapshot: nothing is read from disk or parsed per request, and only a category
//! or tag feed missing from its cache is rendered (see [`crate::serve::feed_cache`]).
//!
//! Feeds, the index and the OPML are kept as identity bodies with gzip and brotli variants
//! made once per version. Article pages (one per article) are not kept at all: an article
//! keeps its body and summary lz4-compressed (`serve` keeps them in the mapped page store,
//! `crate::store::pages`), and its page is made when asked for, into the byte-bounded cache term
//! feeds use ([`crate::serve::feed_cache`]). Its ETag is a digest of everything the page shows, so
//! revalidations never make it.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use hyper::header::HeaderValue;

use crate::config::Config;
use crate::model::{Article, PageTag};
use crate::render::{self, Kind};
use crate::serve::coding::{compress, encode, exact, Coding};
use crate::serve::feed_cache::{FeedCache, LazyFeed};

const ALL_CODINGS: &[Coding] = &[Coding::Brotli, Coding::Gzip, Coding::Identity];
/// Article pages and term feeds (see [`crate::serve::feed_cache`]).
const PACKED_CODINGS: &[Coding] = &[Coding::Gzip, Coding::Identity];

#[derive(Debug)]
enum Repr {
    Full {
        identity: Bytes,
        gzip: OnceLock<Bytes>,
        br: OnceLock<Bytes>,
    },
    /// An article's page: made when asked for, into its cache (`tag` is its digest's).
    Page {
        article: Arc<Article>,
        maker: Arc<PageMaker>,
        tag: PageTag,
    },
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
    /// For feeds: `Link: <hub>; rel="hub", …, <self>; rel="self"`.
    pub link: Option<HeaderValue>,
    /// `Cache-Control` of its own (a full archive page: long), else the snapshot's.
    pub cache_control: Option<HeaderValue>,
}

impl Headers {
    fn new(tag: &str, last_modified: i64, link: Option<&str>) -> Headers {
        // Tags are hex and dates ASCII: always valid.
        let value = |s: String| HeaderValue::from_str(&s).unwrap_or(HeaderValue::from_static(""));
        let lm = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(last_modified).unwrap_or(0));
        Headers {
            etags: [Coding::Identity, Coding::Gzip, Coding::Brotli]
                .map(|c| value(format!("\"{tag}{}\"", c.etag_suffix()))),
            last_modified: value(httpdate::fmt_http_date(lm)),
            // A URL that is not a valid header value (not ASCII) gets no Link header.
            link: link.and_then(|link| HeaderValue::from_str(link).ok()),
            cache_control: None,
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
    pub fn new(kind: Kind, body: Vec<u8>, last_modified: i64, link: Option<String>) -> Rendered {
        let tag = body_tag(&body);
        Self::from_bytes(kind, exact(body), tag, last_modified, link)
    }

    /// Like [`Rendered::new`] with the body's tag ([`body_tag`]) already computed and the
    /// body in its final place (see [`exact`] and [`crate::serve::zerocopy::file_backed`]).
    pub fn from_bytes(
        kind: Kind,
        identity: Bytes,
        tag: String,
        last_modified: i64,
        link: Option<String>,
    ) -> Rendered {
        Rendered {
            kind,
            repr: Repr::Full {
                identity,
                gzip: OnceLock::new(),
                br: OnceLock::new(),
            },
            headers: Headers::new(&tag, last_modified, link.as_deref()),
            tag,
            last_modified,
        }
    }

    /// An article's page as of `config_epoch` (when the settings that shape pages last
    /// changed: a page changes with its article or with those settings).
    pub fn page(article: Arc<Article>, maker: Arc<PageMaker>, config_epoch: i64) -> Rendered {
        let tag = PageTag::of_hash(&render::page_digest(&article, &maker.fingerprint));
        let last_modified = article.updated.timestamp().max(config_epoch);
        Rendered {
            kind: Kind::Html,
            headers: Headers::new(tag.as_str(), last_modified, None),
            tag: tag.as_str().to_string(),
            repr: Repr::Page {
                article,
                maker,
                tag,
            },
            last_modified,
        }
    }

    /// A term feed in one format, rendered on first use (see [`crate::serve::feed_cache`]); `tag`
    /// is the digest tag of everything the body shows.
    pub fn lazy(
        kind: Kind,
        feed: Arc<LazyFeed>,
        tag: PageTag,
        last_modified: i64,
        link: Option<String>,
    ) -> Rendered {
        Rendered {
            kind,
            headers: Headers::new(tag.as_str(), last_modified, link.as_deref()),
            tag: tag.as_str().to_string(),
            repr: Repr::Lazy { feed, tag },
            last_modified,
        }
    }

    /// The same representation with a `Cache-Control` of its own (`max-age` seconds).
    pub fn with_max_age(mut self, max_age: u32) -> Rendered {
        self.headers.cache_control = Some(Snapshot::cache_control(max_age));
        self
    }

    /// The `Last-Modified` to send at `now`, and the `Date` to send with it when it is not
    /// the precomputed value: a representation dated ahead of the clock (a change is dated
    /// the second after it, an article may be dated tomorrow) shows `now` instead, as both
    /// headers, so Last-Modified is never later than Date (RFC 9110 §8.8.2.1).
    pub fn last_modified_at(
        &self,
        now: std::time::SystemTime,
    ) -> (HeaderValue, Option<HeaderValue>) {
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self.last_modified <= i64::try_from(secs).unwrap_or(i64::MAX) {
            return (self.headers.last_modified.clone(), None);
        }
        let date = HeaderValue::from_str(&httpdate::fmt_http_date(now))
            .unwrap_or(HeaderValue::from_static(""));
        (date.clone(), Some(date))
    }

    /// The codings this representation can be sent in, best first.
    pub fn codings(&self) -> &'static [Coding] {
        match self.repr {
            Repr::Full { .. } => ALL_CODINGS,
            Repr::Page { .. } | Repr::Lazy { .. } => PACKED_CODINGS,
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
            (
                Repr::Page {
                    article,
                    maker,
                    tag,
                },
                _,
            ) => maker.cache.get_or_make((*tag, coding), || {
                encode(render::article_page(article, &maker.cfg).body, coding)
            }),
            (Repr::Lazy { feed, tag }, _) => feed.body(self.kind, tag, coding),
        }
    }

    /// Whether [`body`](Rendered::body) in `coding` is at hand (made, cached) rather than
    /// to be rendered or compressed now.
    pub fn is_ready(&self, coding: Coding) -> bool {
        match (&self.repr, coding) {
            (Repr::Full { .. }, Coding::Identity) => true,
            (Repr::Full { gzip, .. }, Coding::Gzip) => gzip.get().is_some(),
            (Repr::Full { br, .. }, Coding::Brotli) => br.get().is_some(),
            (Repr::Page { maker, tag, .. }, _) => maker.cache.contains(&(*tag, coding)),
            (Repr::Lazy { feed, tag }, _) => feed.cache.contains(&(*tag, coding)),
        }
    }

    /// The strong ETag of the body in a coding (each coding has its own).
    pub fn etag(&self, coding: Coding) -> &str {
        // Made from hex digits and quotes: always text.
        self.headers.etag(coding).to_str().unwrap_or_default()
    }
}

/// The opaque part of an ETag for a body.
pub fn body_tag(body: &[u8]) -> String {
    PageTag::of(body).as_str().to_string()
}

/// How `serve` makes article pages when they are asked for.
#[derive(Debug)]
pub struct PageMaker {
    pub cfg: Arc<Config>,
    /// Where made pages are kept (shared with term feeds).
    pub cache: Arc<FeedCache>,
    /// Of the settings that shape pages: part of every page's ETag.
    pub fingerprint: Arc<str>,
    /// The same with what feeds show besides (their hubs): part of every feed's ETag.
    pub feed_fingerprint: Arc<str>,
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

/// A media file the index knows (images, audio, video, PDF in the content dir), by its
/// path relative to the content dir. Served from the file itself, opened per request
/// through [`MediaFiles::loader`]: requests open no path the index does not know as media.
#[derive(Debug, PartialEq, Eq)]
pub struct Media {
    pub rel: String,
    pub content_type: &'static str,
    /// The file's stamp when it was indexed: a file that no longer matches is being
    /// changed (the watcher takes it once its writer is done).
    pub stamp: crate::store::cache::Stamp,
}

/// The media files, and how to open one.
#[derive(Clone, Default)]
pub struct MediaFiles {
    pub by_path: imbl::HashMap<String, Arc<Media>>,
    pub loader: Option<Arc<crate::content::Loader>>,
}

impl std::fmt::Debug for MediaFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaFiles")
            .field("files", &self.by_path.len())
            .finish_non_exhaustive()
    }
}

/// A view with more articles than one HTML page holds (the whole site, a category, a tag):
/// what its older pages (`/{dir}page/<k>/`) are made from when asked for. Pointers only:
/// the articles are the index's.
#[derive(Debug)]
pub struct PagedView {
    /// The view's own feed, as published (its name, title, feeds' addresses).
    pub spec: render::FeedSpec<'static>,
    /// Every article of the view, newest first.
    pub members: Vec<Arc<Article>>,
    /// Its RFC 5005 archive documents, oldest first (see [`render::archive_spec`]).
    pub archives: Vec<ArchivePage>,
}

/// What an archive document keeps between publishes: 16 bytes, where a published route
/// per format would be a representation with its header values.
#[derive(Debug, Clone, Copy)]
pub struct ArchivePage {
    /// Identifies which articles, in which versions, it shows (pointers, never read).
    pub print: u64,
    /// Unix seconds; moves only when the page changes.
    pub last_modified: i64,
}

/// A feed's `Link` header: its hubs (WebSub) and itself.
pub fn feed_link(hubs: &[String], self_url: &str) -> String {
    let mut link: String = hubs
        .iter()
        .map(|h| format!("<{h}>; rel=\"hub\", "))
        .collect();
    link.push_str(&format!("<{self_url}>; rel=\"self\""));
    link
}

/// Paged views by their folder ("" for the whole site, `categories/<slug>/`, `tags/<slug>/`).
pub type PagedViews = imbl::HashMap<String, Arc<PagedView>>;

/// Everything served, as of one index version.
#[derive(Debug)]
pub struct Snapshot {
    /// Route path (with a leading `/`) → representation. A persistent map: a new snapshot
    /// shares everything that did not change with the previous one.
    pub routes: Routes,
    /// Article pages, by slug (`/articles/<slug>.html`), and how to make them (none: no
    /// article pages, as in an empty snapshot).
    pub articles_by_slug: ArticlePages,
    pub page_maker: Option<Arc<PageMaker>>,
    /// When the settings that shape pages last changed (an article page's least Last-Modified).
    pub config_epoch: i64,
    pub generation: u64,
    pub articles: usize,
    pub feeds: usize,
    /// `Cache-Control` for every route (see [`Snapshot::cache_control`]).
    pub cache_control: HeaderValue,
    /// Unix seconds of the last content change applied.
    pub last_change: i64,
    pub media: MediaFiles,
    /// Views with older HTML pages.
    pub paged: PagedViews,
}

impl Default for Snapshot {
    fn default() -> Snapshot {
        Snapshot {
            routes: Routes::default(),
            articles_by_slug: ArticlePages::default(),
            page_maker: None,
            config_epoch: 0,
            generation: 0,
            articles: 0,
            feeds: 0,
            cache_control: Snapshot::cache_control(0),
            last_change: 0,
            media: MediaFiles::default(),
            paged: PagedViews::default(),
        }
    }
}

impl Snapshot {
    /// The media file served at `path` (`/images/x.png`), if the index knows one.
    pub fn media_at(&self, path: &str) -> Option<Arc<Media>> {
        self.media.by_path.get(path.strip_prefix('/')?).cloned()
    }

    /// `public, max-age=…` for `[server] max_age` seconds.
    pub fn cache_control(max_age: u32) -> HeaderValue {
        // Digits and ASCII: always a valid header value.
        HeaderValue::from_str(&format!("public, max-age={max_age}"))
            .unwrap_or(HeaderValue::from_static("public"))
    }

    /// Looks up a request path; a folder (`/`, `/categories/`) is its `index.html`. An
    /// article page's representation is made from its article here, and so is an older
    /// page of a view (their bodies are made when first sent, see [`Rendered::page`]).
    pub fn get(&self, path: &str) -> Option<Arc<Rendered>> {
        if path.ends_with('/') {
            return self.get(&format!("{path}index.html"));
        }
        let slug = path
            .strip_prefix("/articles/")
            .and_then(|p| p.strip_suffix(".html"));
        if let Some((a, ())) = slug.and_then(|s| self.articles_by_slug.get_key_value(s)) {
            let maker = self.page_maker.clone()?;
            return Some(Arc::new(Rendered::page(
                a.0.clone(),
                maker,
                self.config_epoch,
            )));
        }
        self.routes
            .get(path)
            .cloned()
            .or_else(|| self.archive_document(path))
            .or_else(|| self.term_page(path))
            .or_else(|| self.older_page(path))
    }

    /// The route whose Last-Modified dates a view's HTML pages: the index for the whole
    /// site, a term's Atom feed (its digest covers the view's size, so it moves whenever
    /// the view changes).
    fn view_dated_by(&self, dir: &str) -> Option<&Arc<Rendered>> {
        if dir.is_empty() {
            self.routes.get("/index.html")
        } else {
            self.routes.get(&format!("/{dir}feed.atom"))
        }
    }

    /// A category's or tag's own page (`file`: `/{dir}index.html`), made from its feed's
    /// spec: its ETag a digest of what it shows, its Last-Modified its Atom feed's.
    fn term_page(&self, file: &str) -> Option<Arc<Rendered>> {
        let dir = file.strip_prefix('/')?.strip_suffix("index.html")?;
        let slug = dir
            .strip_prefix("categories/")
            .or_else(|| dir.strip_prefix("tags/"))?
            .strip_suffix('/')?;
        if slug.is_empty() || slug.contains('/') {
            return None;
        }
        let atom = self.view_dated_by(dir)?;
        let Repr::Lazy { feed, .. } = &atom.repr else {
            return None;
        };
        let maker = self.page_maker.as_ref()?;
        let tag = PageTag::of_hash(&feed.spec.digest(&maker.fingerprint, Kind::Html));
        Some(Arc::new(Rendered::lazy(
            Kind::Html,
            feed.clone(),
            tag,
            atom.last_modified,
            None,
        )))
    }

    /// Archive document `k` of a view's feed (`path`: `/{dir}archive/<k>.<ext>`), made from
    /// the view's articles: its ETag a digest of what it shows, its Last-Modified the one
    /// the publisher keeps for it, a day's `max-age` when it is full.
    fn archive_document(&self, path: &str) -> Option<Arc<Rendered>> {
        let (dir, file) = path.strip_prefix('/')?.rsplit_once("archive/")?;
        let (k, ext) = file.split_once('.')?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || k.starts_with('0') {
            return None;
        }
        let k: usize = k.parse().ok()?;
        let (_, kind) = render::FEED_FORMATS.into_iter().find(|(e, _)| *e == ext)?;
        let view = self.paged.get(dir)?;
        let page = view.archives.get(k.checked_sub(1)?)?;
        let maker = self.page_maker.as_ref()?;
        let cfg = &maker.cfg;
        let spec = render::archive_spec(&view.spec, &view.members, cfg.feed.entries, k);
        let tag = PageTag::of_hash(&spec.digest(&maker.feed_fingerprint, kind));
        let link = feed_link(&cfg.hub_urls(), &cfg.url(path));
        let max_age = render::archive_max_age(&spec, cfg);
        let feed = Arc::new(LazyFeed {
            spec,
            cfg: cfg.clone(),
            cache: maker.cache.clone(),
        });
        let r = Rendered::lazy(kind, feed, tag, page.last_modified, Some(link));
        Some(Arc::new(match max_age {
            Some(secs) => r.with_max_age(secs),
            None => r,
        }))
    }

    /// Page `k` ≥ 2 of a view (`file`: `/{dir}page/<k>/index.html`), made from the view's
    /// articles: its ETag a digest of what it shows, its Last-Modified the view's
    /// ([`Snapshot::view_dated_by`]).
    fn older_page(&self, file: &str) -> Option<Arc<Rendered>> {
        let rest = file.strip_prefix('/')?.strip_suffix("/index.html")?;
        let (dir, k) = rest.rsplit_once("page/")?;
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_digit()) || k.starts_with('0') {
            return None;
        }
        let k: usize = k.parse().ok()?;
        let view = self.paged.get(dir)?;
        let maker = self.page_maker.as_ref()?;
        let own = self.view_dated_by(dir)?;
        let spec = render::html_page_spec(&view.spec, &view.members, maker.cfg.feed.entries, k)?;
        let tag = PageTag::of_hash(&spec.digest(&maker.fingerprint, Kind::Html));
        let feed = Arc::new(LazyFeed {
            spec,
            cfg: maker.cfg.clone(),
            cache: maker.cache.clone(),
        });
        Some(Arc::new(Rendered::lazy(
            Kind::Html,
            feed,
            tag,
            own.last_modified,
            None,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{pack_article, Content};
    use std::io::Read;

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

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
    fn packed_articles_keep_their_body_and_make_their_page() {
        let cfg = crate::render::tests::config();
        let a = crate::model::fixtures::article("a.txt", "Title", 3);
        let plain_page = render::article_page(&a, &cfg).body;
        let body = a.content_html().into_owned();
        let packed = Arc::new(pack_article(a));
        assert_eq!(packed.content_html(), body);
        // The summary lives in the blob only, and comes back exactly, markup characters and all.
        for summary in [
            "",
            "Plain.",
            r#"<b>&amp; "quoted" 'it's' &#39; 5 > 4 — é</b>"#,
        ] {
            let mut a = crate::model::fixtures::article("s.txt", "Title", 1);
            a.summary = summary.to_string();
            let packed = pack_article(a);
            assert!(packed.summary.is_empty());
            assert_eq!(packed.summary(), summary);
            assert_eq!(packed.texts().1, summary);
        }
        // Its page, made when asked for, is the page `build` writes, and is made once.
        let metrics = Arc::new(crate::serve::metrics::Metrics::default());
        let maker = Arc::new(PageMaker {
            cfg: Arc::new(cfg),
            cache: Arc::new(FeedCache::new(1 << 20, metrics.clone())),
            fingerprint: "settings".into(),
            feed_fingerprint: "settings|[]".into(),
        });
        let route = Rendered::page(packed.clone(), maker.clone(), 0);
        assert_eq!(route.body(Coding::Identity), plain_page);
        assert_eq!(gunzip(&route.body(Coding::Gzip)), plain_page);
        let again = Rendered::page(packed.clone(), maker.clone(), 0);
        assert_eq!(gunzip(&again.body(Coding::Gzip)), plain_page);
        let renders = metrics
            .feed_renders
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(renders, 2, "one render per coding");
        assert_eq!(route.codings(), PACKED_CODINGS);
        assert_eq!(route.tag, again.tag);
        // The ETag follows what the page shows, and the settings.
        let mut retitled = (*packed).clone();
        retitled.title = "Another title".into();
        assert_ne!(
            Rendered::page(Arc::new(retitled), maker.clone(), 0).tag,
            route.tag
        );
        let other = Arc::new(PageMaker {
            fingerprint: "other settings".into(),
            feed_fingerprint: "other settings|[]".into(),
            cache: maker.cache.clone(),
            cfg: maker.cfg.clone(),
        });
        assert_ne!(Rendered::page(packed.clone(), other, 0).tag, route.tag);
    }

    #[test]
    fn a_damaged_blob_unpacks_to_nothing_not_to_a_huge_allocation() {
        let mut a = pack_article(crate::model::fixtures::article("a.txt", "Title", 3));
        let Content::Packed { blob, .. } = &mut a.content else {
            unreachable!()
        };
        let mut bytes = blob.to_vec();
        bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        *blob = Bytes::from(bytes);
        assert_eq!(a.content_html(), "");
    }
}
