//! Rendering: the index → every output file of the site, as bytes. Pure: no I/O, no clock
//! (the caller passes the only time it may need), so the same index and config always give
//! byte-identical output.
//!
//! Paths (relative to the site root): `feed.{rss,atom,json}`, `categories/<slug>/feed.*`,
//! `tags/<slug>/feed.*` and their `archive/<k>.*`, `articles/<slug>.html`, `index.html`,
//! `feeds.opml`, the views' HTML pages (`categories/<slug>/index.html`, older pages at
//! `…/page/<k>/index.html`), the lists `categories/index.html` and `tags/index.html`, the
//! sitemaps, `robots.txt`, `feed.css`.

mod atom;
mod html;
mod json;
mod opml;
mod rss;
pub mod sitemap;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset};
use rayon::prelude::*;

use crate::config::Config;
use crate::index::{Index, Views};
use crate::model::digest::{date, field};
use crate::model::Article;

/// What kind of document a route is; decides its content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Rss,
    Atom,
    Json,
    Opml,
    Html,
    /// Sitemaps.
    Xml,
    /// `robots.txt`.
    Text,
    /// The feeds' stylesheet.
    Css,
}

impl Kind {
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Rss => "application/rss+xml; charset=utf-8",
            Kind::Atom => "application/atom+xml; charset=utf-8",
            Kind::Json => "application/feed+json; charset=utf-8",
            Kind::Opml => "text/x-opml; charset=utf-8",
            Kind::Html => "text/html; charset=utf-8",
            Kind::Xml => "application/xml; charset=utf-8",
            Kind::Text => "text/plain; charset=utf-8",
            Kind::Css => "text/css; charset=utf-8",
        }
    }

    /// The label used in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Rss => "rss",
            Kind::Atom => "atom",
            Kind::Json => "json",
            Kind::Opml => "opml",
            Kind::Html => "html",
            Kind::Xml => "xml",
            Kind::Text => "txt",
            Kind::Css => "css",
        }
    }

    pub fn is_feed(self) -> bool {
        matches!(self, Kind::Rss | Kind::Atom | Kind::Json)
    }
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub kind: Kind,
    pub body: Vec<u8>,
    /// The newest `updated` among the entries shown (None for pages without entries).
    pub updated: Option<DateTime<FixedOffset>>,
    /// A `max-age` of its own, longer than `[server] max_age` (see [`archive_max_age`]).
    pub max_age: Option<u32>,
}

/// `max-age` of a full archive document: a day (only an edit of one of its articles
/// changes it); None for every other document.
pub fn archive_max_age(spec: &FeedSpec, cfg: &Config) -> Option<u32> {
    (spec.archive.is_some() && spec.entries.len() == cfg.feed.entries).then_some(86_400)
}

/// Every file of the site, by path relative to the site root.
pub type Pages = BTreeMap<String, Page>;

/// One feed's worth of entries, rendered three ways.
#[derive(Debug, Clone)]
pub struct FeedSpec<'a> {
    /// "" for the main feeds, else "categories/<slug>/" or "tags/<slug>/".
    pub dir: String,
    /// For `tag:` feed ids: "feed", "categories/<slug>", "tags/<slug>".
    pub key: String,
    pub title: String,
    /// The category or tag name (empty for the main feeds).
    pub name: String,
    /// How many articles the feed's view holds (entries are only the newest of them).
    pub total: usize,
    pub description: String,
    /// The HTML page the feed belongs to.
    pub html_url: String,
    /// Borrowed from the index's views, or owned by a feed rendered on request.
    pub entries: Cow<'a, [Arc<Article>]>,
    /// The feed's own updated time: its newest entry's, or the fallback when empty.
    pub updated: DateTime<FixedOffset>,
    /// None for the current feed; `Some(k)` for its archive document `k` (RFC 5005: pages
    /// of `feed.entries` articles counted from the oldest, the current feed holding the
    /// newest).
    pub archive: Option<usize>,
    /// The HTML page of the view this spec shows (1: the view's own page, `k`: its `k`-th
    /// page counted from the newest, see [`html_page_path`]); 1 for feed documents.
    pub page: usize,
}

impl FeedSpec<'_> {
    /// This document's path: the feed, or one of its archive documents.
    pub fn path(&self, ext: &str) -> String {
        match self.archive {
            None => self.current_path(ext),
            Some(k) => self.archive_path(k, ext),
        }
    }

    /// The current feed's path (every archive links to it).
    pub fn current_path(&self, ext: &str) -> String {
        format!("{}feed.{ext}", self.dir)
    }

    pub fn archive_path(&self, k: usize, ext: &str) -> String {
        format!("{}archive/{k}.{ext}", self.dir)
    }

    /// How many archive documents the feed has with `per_page` entries a document: every
    /// article but the newest `per_page`, in pages counted from the oldest.
    pub fn archive_pages(&self, per_page: usize) -> usize {
        archive_pages(self.total, per_page)
    }

    /// The paging links of this document in format `ext`: (current, prev-archive,
    /// next-archive, is an archive, is complete). See RFC 5005.
    pub fn paging(&self, cfg: &Config, ext: &str) -> Paging {
        let pages = self.archive_pages(cfg.feed.entries);
        let url = |k: usize| cfg.url(&self.archive_path(k, ext));
        match self.archive {
            None => Paging {
                current: None,
                prev_archive: (pages > 0).then(|| url(pages)),
                next_archive: None,
                archive: false,
                complete: pages == 0,
            },
            Some(k) => Paging {
                current: Some(cfg.url(&self.current_path(ext))),
                prev_archive: (k > 1).then(|| url(k - 1)),
                next_archive: (k < pages).then(|| url(k + 1)),
                archive: true,
                complete: false,
            },
        }
    }

    pub fn url(&self, cfg: &Config, ext: &str) -> String {
        cfg.url(&self.path(ext))
    }

    pub fn atom_id(&self, cfg: &Config) -> String {
        format!("tag:{}:{}", cfg.site.tag_authority, self.key)
    }

    /// A document of this spec's view showing `entries` (an archive document, an older
    /// page), dated by its newest entry.
    fn part(
        &self,
        entries: Vec<Arc<Article>>,
        total: usize,
        archive: Option<usize>,
        page: usize,
    ) -> FeedSpec<'static> {
        FeedSpec {
            dir: self.dir.clone(),
            key: self.key.clone(),
            title: self.title.clone(),
            name: self.name.clone(),
            total,
            description: self.description.clone(),
            html_url: self.html_url.clone(),
            updated: entries
                .iter()
                .map(|a| a.updated)
                .max()
                .unwrap_or(self.updated),
            entries: Cow::Owned(entries),
            archive,
            page,
        }
    }

    /// The same spec, owning its entries (a few reference counts, no copies of articles).
    pub fn into_owned(self) -> FeedSpec<'static> {
        FeedSpec {
            entries: Cow::Owned(self.entries.into_owned()),
            ..self
        }
    }

    /// Identifies the bytes [`render_format`] gives for this spec in `kind` without rendering
    /// them: a hash of everything it reads. `settings` stands for the configuration and the
    /// renderer's version (the engine's render fingerprint). Equal digests, equal bytes; any
    /// change to the feed, one of its entries or the settings gives another digest.
    pub fn digest(&self, settings: &str, kind: Kind) -> blake3::Hash {
        self.digest_with(settings, kind, &self.entries_digest())
    }

    /// The part of [`FeedSpec::digest`] every format shares: the entries (hashed once for
    /// the three formats and the HTML page).
    pub fn entries_digest(&self) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        for a in self.entries.iter() {
            a.digest_into(&mut h);
        }
        h.finalize()
    }

    /// [`FeedSpec::digest`] given [`FeedSpec::entries_digest`].
    pub fn digest_with(&self, settings: &str, kind: Kind, entries: &blake3::Hash) -> blake3::Hash {
        let mut h = blake3::Hasher::new();
        let FeedSpec {
            dir,
            key,
            title,
            name,
            total,
            description,
            html_url,
            entries: _,
            updated,
            archive,
            page,
        } = self;
        h.update(&(archive.map_or(0, |k| k as u64 + 1)).to_le_bytes());
        h.update(&(*page as u64).to_le_bytes());
        for s in [settings, env!("CARGO_PKG_VERSION"), kind.as_str(), dir, key] {
            field(&mut h, s.as_bytes());
        }
        for s in [title, name, description, html_url] {
            field(&mut h, s.as_bytes());
        }
        h.update(&(*total as u64).to_le_bytes());
        date(&mut h, updated);
        h.update(entries.as_bytes());
        h.finalize()
    }
}

/// Links between a feed's documents (RFC 5005).
#[derive(Debug, Default)]
pub struct Paging {
    /// The current feed (from an archive document).
    pub current: Option<String>,
    /// The next older archive document.
    pub prev_archive: Option<String>,
    /// The next newer archive document.
    pub next_archive: Option<String>,
    /// This document is an archive (`fh:archive`).
    pub archive: bool,
    /// This feed holds every article of its view (`fh:complete`).
    pub complete: bool,
}

impl Paging {
    /// The links to other documents of the feed, as (rel, URL).
    pub fn links(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            ("current", &self.current),
            ("prev-archive", &self.prev_archive),
            ("next-archive", &self.next_archive),
        ]
        .into_iter()
        .filter_map(|(rel, url)| url.as_ref().map(|u| (rel, u)))
    }

    /// `fh:archive` or `fh:complete`, the element this document carries, if any.
    pub fn history_element(&self) -> Option<&'static str> {
        match (self.archive, self.complete) {
            (true, _) => Some("fh:archive"),
            (false, true) => Some("fh:complete"),
            _ => None,
        }
    }
}

/// The RFC 5005 namespace.
pub const FH_NS: &str = "http://purl.org/syndication/history/1.0";

/// Archive documents of a view of `total` articles, `per_page` a document.
pub fn archive_pages(total: usize, per_page: usize) -> usize {
    if per_page == 0 || total <= per_page {
        0
    } else {
        (total - per_page).div_ceil(per_page)
    }
}

/// The entries of archive document `k` (1-based) of a view, given newest first: counted
/// from the oldest, `per_page` a document, the newest `per_page` left to the current feed.
pub fn archive_entries<T>(newest_first: &[T], per_page: usize, k: usize) -> &[T] {
    let archived = newest_first.len().saturating_sub(per_page);
    let start_from_oldest = (k - 1) * per_page;
    let end_from_oldest = (k * per_page).min(archived);
    if start_from_oldest >= end_from_oldest {
        return &[];
    }
    // Oldest-first index i is newest-first index len-1-i.
    let len = newest_first.len();
    &newest_first[len - end_from_oldest..len - start_from_oldest]
}

/// Archive document `k` of the feed `spec` stands for, given every article of its view
/// newest first (`members`), owning its entries (a reference count each). Its `total`
/// says only what the document shows of the view's size (whether a newer archive follows),
/// so a full page's bytes and digest stay the same while newer articles arrive.
pub fn archive_spec(
    spec: &FeedSpec,
    members: &[Arc<Article>],
    per_page: usize,
    k: usize,
) -> FeedSpec<'static> {
    let entries = archive_entries(members, per_page, k).to_vec();
    let last = archive_pages(members.len(), per_page);
    let total = per_page * (k + 1) + usize::from(k < last);
    spec.part(entries, total, Some(k), 1)
}

/// How many HTML pages a view of `total` articles has, `per_page` a page (at least one,
/// the view's own page, even when empty).
pub fn html_pages(total: usize, per_page: usize) -> usize {
    total.div_ceil(per_page.max(1)).max(1)
}

/// The file of HTML page `page` of the view whose feeds live in `dir` ("" for the whole
/// site, "categories/<slug>/", "tags/<slug>/"): page 1 is `{dir}index.html`, served at
/// `/{dir}`; older pages, counted from the newest like a news site's, are
/// `{dir}page/<k>/index.html`, served at `/{dir}page/<k>/`.
pub fn html_page_path(dir: &str, page: usize) -> String {
    if page <= 1 {
        format!("{dir}index.html")
    } else {
        format!("{dir}page/{page}/index.html")
    }
}

/// The URL of HTML page `page` of the view in `dir` (see [`html_page_path`]).
pub fn html_page_url(cfg: &Config, dir: &str, page: usize) -> String {
    if page <= 1 {
        cfg.url(dir)
    } else {
        cfg.url(&format!("{dir}page/{page}/"))
    }
}

/// HTML page `page` (2 or more) of the view `spec` stands for, given every article of the
/// view newest first (`members`): the next `per_page` after the page before it. None past
/// the last page.
pub fn html_page_spec(
    spec: &FeedSpec,
    members: &[Arc<Article>],
    per_page: usize,
    page: usize,
) -> Option<FeedSpec<'static>> {
    if page < 2 || page > html_pages(members.len(), per_page) {
        return None;
    }
    let start = (page - 1) * per_page;
    let entries = members[start..(start + per_page).min(members.len())].to_vec();
    Some(spec.part(entries, members.len(), None, page))
}

/// Renders the whole site. `empty_updated` is used as the `updated` time of feeds with no
/// entries (the caller keeps it stable, e.g. when the state store was created).
pub fn render_site(index: &Index, cfg: &Config, empty_updated: DateTime<FixedOffset>) -> Pages {
    let now = empty_updated.with_timezone(&chrono::Utc);
    let mut pages = render_lists(index, cfg, empty_updated, now, None);
    let all: Vec<&Arc<Article>> = index.articles().collect();
    let rendered: Vec<_> = all
        .par_iter()
        .map(|a| (a.page_path(), article_page(a, cfg)))
        .collect();
    pages.extend(rendered);
    pages
}

/// Every file of the site but the article pages (one per article, see [`article_page`]):
/// the feeds, `index.html`, `feeds.opml`, the sitemaps (the news sitemap as of `now`) and
/// `robots.txt` (`robots`: the content dir's own, served as it is).
pub fn render_lists(
    index: &Index,
    cfg: &Config,
    empty_updated: DateTime<FixedOffset>,
    now: chrono::DateTime<chrono::Utc>,
    robots: Option<&[u8]>,
) -> Pages {
    let views = index.views(cfg.feed.entries);
    let specs = feed_specs(&views, cfg, empty_updated);
    let mut pages: Pages = specs
        .par_iter()
        .map(|spec| {
            let mut p = Pages::new();
            render_feed(spec, cfg, &mut p);
            p
        })
        .reduce(Pages::new, |mut a, b| {
            a.extend(b);
            a
        });
    render_front(&views, &specs, cfg, empty_updated, &mut pages);
    // Every view's older documents: its feed's archives (RFC 5005) and its older HTML
    // pages, and each term's own page; one job per document, so the main view's hundreds
    // of pages spread over the cores like the rest.
    let n = cfg.feed.entries;
    let members: Vec<Vec<Arc<Article>>> = specs
        .par_iter()
        .map(|spec| match spec.total > n {
            true => index
                .view_newest_first(&spec.key)
                .unwrap_or_default()
                .into_iter()
                .cloned()
                .collect(),
            false => Vec::new(),
        })
        .collect();
    let jobs: Vec<(usize, Older)> = specs
        .iter()
        .zip(&members)
        .enumerate()
        .flat_map(|(i, (spec, m))| {
            let own = (!spec.dir.is_empty()).then_some((i, Older::Own));
            // (`m` is empty for a view of one page.)
            let archives = (1..=archive_pages(m.len(), n)).map(move |k| (i, Older::Archive(k)));
            let html = (2..=html_pages(m.len(), n)).map(move |k| (i, Older::Page(k)));
            own.into_iter().chain(archives).chain(html)
        })
        .collect();
    let older: Vec<Pages> = jobs
        .par_iter()
        .map(|&(i, job)| {
            let (spec, m) = (&specs[i], &members[i]);
            let mut p = Pages::new();
            match job {
                Older::Own => {
                    p.insert(html_page_path(&spec.dir, 1), list_page(spec, cfg));
                }
                Older::Archive(k) => render_feed(&archive_spec(spec, m, n, k), cfg, &mut p),
                Older::Page(k) => {
                    if let Some(page) = html_page_spec(spec, m, n, k) {
                        p.insert(html_page_path(&spec.dir, k), list_page(&page, cfg));
                    }
                }
            }
            p
        })
        .collect();
    pages.extend(older.into_iter().flatten());
    let mut sitemaps = sitemap::Sitemaps::default();
    sitemaps.rebuild(index.articles());
    pages.extend(sitemaps.render(&specs, cfg, empty_updated, true).0);
    let news = sitemap::news_articles(index.newest_first(), now);
    pages.insert("news-sitemap.xml".into(), sitemap::news_sitemap(&news, cfg));
    pages.insert("robots.txt".into(), robots_txt(robots, cfg));
    pages
}

/// One of a view's documents besides its current feed (see [`render_lists`]).
#[derive(Debug, Clone, Copy)]
enum Older {
    /// A term's own HTML page.
    Own,
    /// Archive document `k`.
    Archive(usize),
    /// HTML page `k` ≥ 2.
    Page(usize),
}

/// `robots.txt`: the content dir's own, else one naming the sitemaps.
pub fn robots_txt(own: Option<&[u8]>, cfg: &Config) -> Page {
    match own {
        Some(bytes) => Page {
            max_age: None,
            kind: Kind::Text,
            body: bytes.to_vec(),
            updated: None,
        },
        None => sitemap::robots(cfg),
    }
}

/// The page of one article.
pub fn article_page(a: &Article, cfg: &Config) -> Page {
    Page {
        max_age: None,
        kind: Kind::Html,
        body: html::article_page(a, cfg).into_bytes(),
        updated: Some(a.updated),
    }
}

/// A digest of everything an article's page shows, under the settings `settings` (a
/// fingerprint of those that shape pages) and this herald's version: equal digests, equal
/// pages. The page's ETag, so it is known without making the page.
pub fn page_digest(a: &Article, settings: &str) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    for s in ["article page", settings, env!("CARGO_PKG_VERSION")] {
        field(&mut h, s.as_bytes());
    }
    a.digest_into(&mut h);
    h.finalize()
}

/// The pages that list everything: `index.html` and `feeds.opml`.
/// `specs` are [`feed_specs`] of `views`: the pages list every feed.
pub fn render_front(
    views: &Views,
    specs: &[FeedSpec],
    cfg: &Config,
    empty_updated: DateTime<FixedOffset>,
    pages: &mut Pages,
) {
    let newest = views.all.iter().map(|a| a.updated).max();
    pages.insert(
        "index.html".into(),
        Page {
            max_age: None,
            kind: Kind::Html,
            body: html::index_page(views, specs, cfg).into_bytes(),
            updated: newest,
        },
    );
    for section in ["categories", "tags"] {
        let terms = html::by_count(specs, section);
        for k in 1..=html_pages(terms.len(), html::TERMS_PER_PAGE) {
            pages.insert(
                html_page_path(&format!("{section}/"), k),
                Page {
                    max_age: None,
                    kind: Kind::Html,
                    body: html::term_list(section, &terms, k, cfg).into_bytes(),
                    updated: newest,
                },
            );
        }
    }
    pages.insert(
        FEED_CSS.into(),
        Page {
            max_age: None,
            kind: Kind::Css,
            body: html::FEED_STYLE.as_bytes().to_vec(),
            updated: None,
        },
    );
    pages.insert(
        "feeds.opml".into(),
        Page {
            max_age: None,
            kind: Kind::Opml,
            body: opml::render(specs, cfg, newest.unwrap_or(empty_updated)).into_bytes(),
            updated: newest,
        },
    );
}

/// Each entry's body HTML and summary, in entry order.
type Texts<'a> = [(Cow<'a, str>, Cow<'a, str>)];

/// The three feed formats, with their file extensions.
pub const FEED_FORMATS: [(&str, Kind); 3] = [
    ("rss", Kind::Rss),
    ("atom", Kind::Atom),
    ("json", Kind::Json),
];

/// Renders one format of a feed (`kind` is RSS, Atom or JSON Feed), or its HTML page
/// `spec.page` ([`Kind::Html`]).
pub fn render_format(spec: &FeedSpec, cfg: &Config, kind: Kind) -> Vec<u8> {
    if kind == Kind::Html {
        return html::list_page(spec, cfg).into_bytes();
    }
    render_with(spec, &feed_texts(spec, cfg), cfg, kind)
}

/// The HTML page of a view (see [`html_page_path`]).
pub fn list_page(spec: &FeedSpec, cfg: &Config) -> Page {
    Page {
        max_age: None,
        kind: Kind::Html,
        body: html::list_page(spec, cfg).into_bytes(),
        updated: spec.entries.iter().map(|a| a.updated).max(),
    }
}

/// Each entry's body and summary, in entry order, with bodies only while they add up to
/// `[feed] max_feed_bytes`: past it an entry carries its summary alone (an empty body), so
/// a feed's size is bounded whatever its articles weigh.
fn feed_texts<'a>(spec: &'a FeedSpec, cfg: &Config) -> Vec<(Cow<'a, str>, Cow<'a, str>)> {
    let mut budget = cfg.feed.max_feed_bytes;
    spec.entries
        .iter()
        .map(|a| {
            let (content, summary) = a.texts();
            if content.len() <= budget {
                budget -= content.len();
                (content, summary)
            } else {
                budget = 0;
                (Cow::Borrowed(""), summary)
            }
        })
        .collect()
}

fn render_with(spec: &FeedSpec, texts: &Texts, cfg: &Config, kind: Kind) -> Vec<u8> {
    match kind {
        Kind::Rss => with_stylesheet(hex_references(rss::render(spec, texts, cfg)), cfg),
        Kind::Atom => with_stylesheet(hex_references(atom::render(spec, texts, cfg)), cfg),
        _ => json::render(spec, texts, cfg),
    }
}

/// The path of the stylesheet RSS and Atom feeds name, so a browser shows them legibly.
pub const FEED_CSS: &str = "feed.css";

/// An `<?xml-stylesheet?>` instruction after the XML declaration: a browser styles the feed
/// with [`FEED_CSS`] (CSS styling of XML works in every browser, where XSLT is going away);
/// feed readers ignore it.
fn with_stylesheet(xml: Vec<u8>, cfg: &Config) -> Vec<u8> {
    let pi = format!(
        "<?xml-stylesheet type=\"text/css\" href=\"{}\"?>",
        cfg.url(FEED_CSS)
    );
    let at = if xml.starts_with(b"<?xml") {
        xml.iter().position(|&b| b == b'>').map_or(0, |i| i + 1)
    } else {
        0
    };
    let mut out = Vec::with_capacity(xml.len() + pi.len());
    out.extend_from_slice(&xml[..at]);
    out.extend_from_slice(pi.as_bytes());
    out.extend_from_slice(&xml[at..]);
    out
}

/// Writes `&` and `<` in the text of an XML feed as `&#x26;` and `&#x3C;` instead of `&amp;`
/// and `&lt;`: the same characters to any XML parser, and what the RSS Best Practices
/// Profile asks for, so that readers that unescape twice keep them as text (the W3C
/// validator warns about plain text without them). CDATA sections and Atom `<content>`
/// (escaped HTML, where the shorter references are as good) are left as they are.
fn hex_references(xml: Vec<u8>) -> Vec<u8> {
    const SKIP: [(&[u8], &[u8]); 3] = [
        (b"<![CDATA[", b"]]>"),
        (b"<content ", b"</content>"),
        (b"<content>", b"</content>"),
    ];
    let mut out = Vec::with_capacity(xml.len() + xml.len() / 64);
    let mut i = 0;
    while let Some(at) = memchr::memchr2(b'&', b'<', &xml[i..]).map(|k| i + k) {
        out.extend_from_slice(&xml[i..at]);
        let rest = &xml[at..];
        if let Some((_, end)) = SKIP.iter().find(|(open, _)| rest.starts_with(open)) {
            let stop = memchr::memmem::find(rest, end).map_or(xml.len(), |k| at + k + end.len());
            out.extend_from_slice(&xml[at..stop]);
            i = stop;
        } else if rest.starts_with(b"&amp;") {
            out.extend_from_slice(b"&#x26;");
            i = at + 5;
        } else if rest.starts_with(b"&lt;") {
            out.extend_from_slice(b"&#x3C;");
            i = at + 4;
        } else {
            out.push(xml[at]);
            i = at + 1;
        }
    }
    out.extend_from_slice(&xml[i..]);
    out
}

/// Whether text shown as plain text would look like markup to a reader or validator (an
/// end tag such as `</b>`): such text is better sent as escaped HTML where the format can
/// say so (Atom's `type="html"`), so nobody takes it for undeclared markup.
pub(crate) fn looks_like_markup(text: &str) -> bool {
    text.match_indices("</")
        .any(|(i, _)| text[i + 2..].starts_with(|c: char| c.is_ascii_alphabetic()))
}

/// Renders the three formats of one feed into `pages`.
pub fn render_feed(spec: &FeedSpec, cfg: &Config, pages: &mut Pages) {
    let updated = spec.entries.iter().map(|a| a.updated).max();
    // Read once for the three formats (a packed article's page is decompressed for them).
    let texts = feed_texts(spec, cfg);
    for (ext, kind) in FEED_FORMATS {
        let body = render_with(spec, &texts, cfg, kind);
        pages.insert(
            spec.path(ext),
            Page {
                kind,
                body,
                updated,
                max_age: archive_max_age(spec, cfg),
            },
        );
    }
}

/// The main feed, then one per category, then one per tag.
pub fn feed_specs<'a>(
    views: &'a Views,
    cfg: &Config,
    empty_updated: DateTime<FixedOffset>,
) -> Vec<FeedSpec<'a>> {
    let n = cfg.feed.entries;
    let newest = |entries: &[Arc<Article>]| {
        entries
            .iter()
            .map(|a| a.updated)
            .max()
            .unwrap_or(empty_updated)
    };
    let head = |v: &'a [Arc<Article>]| &v[..v.len().min(n)];
    let mut specs = vec![FeedSpec {
        dir: String::new(),
        key: "feed".into(),
        title: cfg.site.title.clone(),
        name: String::new(),
        total: views.total,
        description: cfg.site.description.clone(),
        html_url: cfg.url(""),
        entries: Cow::Borrowed(head(&views.all)),
        updated: newest(head(&views.all)),
        archive: None,
        page: 1,
    }];
    for (section, label, groups) in [
        ("categories", "Category", &views.categories),
        ("tags", "Tag", &views.tags),
    ] {
        for (slug, g) in groups {
            let entries = head(&g.articles);
            specs.push(FeedSpec {
                dir: format!("{section}/{slug}/"),
                key: format!("{section}/{slug}"),
                title: format!("{} — {}", cfg.site.title, g.term.name),
                name: g.term.name.clone(),
                total: g.total,
                description: format!("{label} “{}” on {}", g.term.name, cfg.site.title),
                html_url: cfg.url(&format!("{section}/{slug}/")),
                entries: Cow::Borrowed(entries),
                updated: newest(entries),
                archive: None,
                page: 1,
            });
        }
    }
    specs
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Term;

    pub use crate::model::fixtures::article;

    pub fn config() -> Config {
        Config::from_toml(
            "[site]\nbase_url = \"https://news.example.com/\"\ntag_authority = \"example.org,2026\"\ntitle = \"T & <Co>\"\n",
            &Default::default(),
        )
        .unwrap()
    }

    pub fn site() -> Pages {
        let mut index = Index::new();
        index.insert(article("a.txt", "First <one>", 1));
        index.insert(article("b.txt", "Second & more", 2));
        let mut c = article("c.txt", "Third", 2);
        c.categories = vec![];
        c.tags = vec![];
        c.link = Some("https://elsewhere.example/x?a=1&b=2".into());
        index.insert(c);
        render_site(
            &index,
            &config(),
            DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z").unwrap(),
        )
    }

    #[test]
    fn site_has_every_route() {
        let pages = site();
        let paths: Vec<&str> = pages.keys().map(String::as_str).collect();
        for p in [
            "feed.rss",
            "feed.atom",
            "feed.json",
            "index.html",
            "feeds.opml",
            "articles/a-txt.html",
            "categories/industry-trends/feed.rss",
            "categories/industry-trends/feed.atom",
            "categories/industry-trends/feed.json",
            "tags/cyber/feed.atom",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        assert!(paths.iter().any(|p| p.starts_with("tags/xin-wen-")));
    }

    #[test]
    fn every_xml_output_is_well_formed() {
        for (path, page) in site() {
            let text = String::from_utf8(page.body).unwrap();
            match page.kind {
                Kind::Json => {
                    serde_json::from_str::<serde_json::Value>(&text).unwrap();
                }
                Kind::Html | Kind::Text | Kind::Css => {}
                _ => {
                    roxmltree::Document::parse(&text)
                        .unwrap_or_else(|e| panic!("{path}: {e}\n{text}"));
                }
            }
        }
    }

    #[test]
    fn a_digest_changes_with_anything_a_feed_shows_and_nothing_else() {
        let spec = |a: Article| FeedSpec {
            dir: "tags/x/".into(),
            key: "tags/x".into(),
            title: "T".into(),
            name: "x".into(),
            total: 1,
            description: "d".into(),
            html_url: "https://news.example.com/tags/x/".into(),
            updated: a.updated,
            entries: Cow::Owned(vec![Arc::new(a)]),
            archive: None,
            page: 1,
        };
        let base = || article("a.txt", "Title", 1);
        let digest = |a: Article| spec(a).digest("settings", Kind::Atom);
        let d0 = digest(base());
        assert_eq!(d0, digest(base()), "equal inputs, equal digests");
        assert_ne!(d0, spec(base()).digest("settings", Kind::Rss));
        assert_ne!(d0, spec(base()).digest("other settings", Kind::Atom));
        let mut more = spec(base());
        more.total = 2;
        assert_ne!(d0, more.digest("settings", Kind::Atom));
        let changes: [fn(&mut Article); 9] = [
            |a| a.title.push('!'),
            |a| a.summary.push('!'),
            |a| a.content = crate::model::Content::Html("<p>other</p>".into()),
            |a| a.tags[0] = Term::shared("other"),
            |a| a.authors[0].email = None,
            |a| a.link = Some("https://elsewhere.example/".into()),
            |a| a.updated += chrono::Duration::seconds(1),
            |a| a.id = "tag:example.org,2026:other".into(),
            |a| a.slug = "other".into(),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut a = base();
            change(&mut a);
            assert_ne!(d0, digest(a), "change {i} kept the digest");
        }
        // A renamed file, or new bytes saying the same: same feed, same digest.
        let mut a = base();
        a.path = "renamed.txt".into();
        a.hash = blake3::hash(b"other bytes");
        let cfg = config();
        let (before, after) = (spec(base()), spec(a.clone()));
        assert_eq!(
            render_format(&before, &cfg, Kind::Atom),
            render_format(&after, &cfg, Kind::Atom)
        );
        assert_eq!(d0, digest(a));
    }

    #[test]
    fn entries_are_newest_first_with_id_tiebreak() {
        let pages = site();
        let atom = String::from_utf8(pages["feed.atom"].body.clone()).unwrap();
        let b = atom.find("tag:example.org,2026:b.txt").unwrap();
        let c = atom.find("tag:example.org,2026:c.txt").unwrap();
        let a = atom.find("tag:example.org,2026:a.txt").unwrap();
        assert!(b < c && c < a, "order wrong:\n{atom}");
    }
}
