//! The finished entry: a [`Document`] joined with what the state store remembers about it
//! (id, slug, first-seen time, last content change). Plain data; the one read is a packed
//! article's bytes from where its store put them ([`Stored::read`]). Imports neither the
//! store nor the renderers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;

use crate::config::Config;
use crate::content::{Document, MediaRef};
use crate::dates;
use crate::text;

pub mod digest;
#[cfg(test)]
pub(crate) mod fixtures;
mod packed;
pub(crate) mod record;

pub use packed::{pack_article, Stored};
pub use record::{apply_rules, Claim, DocKey, HeldSets, Holders, Known, Ledger, Outcome, Record};
pub use record::{slug_base, tag_id};

/// A category or tag: the name as first written and its URL slug.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Term {
    pub name: String,
    pub slug: String,
}

impl Term {
    pub fn new(name: &str) -> Term {
        Term {
            name: name.to_string(),
            slug: text::slugify(name),
        }
    }

    /// The one shared copy of the term with this name: articles hold a pointer each instead
    /// of two strings per category and tag (tens of MB at 100 000 articles). The table only
    /// grows, by names herald has seen.
    ///
    /// A slug belongs to one term (one folded name). A name whose slug another name already
    /// has — two names hashed to the same 32 bits, or a plain name that spells another's
    /// hashed slug — gets a longer hash (16 hex digits, then 32, then all 64), checked the
    /// same way, so no term's feeds are ever merged with another's. Which of two colliding
    /// names keeps the short slug is the one seen first.
    pub fn shared(name: &str) -> Arc<Term> {
        #[derive(Default)]
        struct Terms {
            by_name: HashMap<String, Arc<Term>>,
            /// Slug → the folded name that has it.
            owners: HashMap<String, String>,
        }
        static TERMS: OnceLock<Mutex<Terms>> = OnceLock::new();
        let mut terms = TERMS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(t) = terms.by_name.get(name) {
            return t.clone();
        }
        let folded = text::fold_name(name);
        let mut slug = text::slugify(name);
        for hex in [16, 32, 64] {
            match terms.owners.get(&slug) {
                Some(owner) if *owner != folded => {
                    tracing::warn!(name, slug, "slug taken by another name; using a longer one");
                    slug = text::slug_with_hash(name, hex);
                }
                _ => break,
            }
        }
        terms.owners.entry(slug.clone()).or_insert(folded);
        let t = Arc::new(Term {
            name: name.to_string(),
            slug,
        });
        terms.by_name.insert(name.to_string(), t.clone());
        t
    }
}

/// An author: RSS wants an e-mail in `<author>` and a bare name in `dc:creator`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub email: Option<String>,
}

impl Person {
    /// Reads "Name <a@b.c>", "a@b.c (Name)", "a@b.c" or "Name".
    pub fn parse(s: &str) -> Person {
        let s = text::trim(s);
        let is_email = |e: &str| {
            let e = e.trim();
            e.split_once('@').is_some_and(|(l, d)| {
                !l.is_empty() && d.contains('.') && !e.contains(char::is_whitespace)
            })
        };
        if let (Some(open), true) = (s.rfind('<'), s.ends_with('>')) {
            let email = &s[open + 1..s.len() - 1];
            if is_email(email) {
                let name = text::trim(&s[..open]);
                return Person {
                    name: if name.is_empty() { email.trim() } else { name }.to_string(),
                    email: Some(email.trim().to_string()),
                };
            }
        }
        if let (Some(open), true) = (s.find('('), s.ends_with(')')) {
            let email = text::trim(&s[..open]);
            if is_email(email) {
                let name = text::trim(&s[open + 1..s.len() - 1]);
                return Person {
                    name: if name.is_empty() { email } else { name }.to_string(),
                    email: Some(email.to_string()),
                };
            }
        }
        if is_email(s) {
            return Person {
                name: s.to_string(),
                email: Some(s.to_string()),
            };
        }
        Person {
            name: s.to_string(),
            email: None,
        }
    }
}

/// An article's published and updated times from what it says and what the state knows:
/// implausible dates (before 1990 or more than a day ahead) fall back to the first-seen
/// time; `updated` is the content's last change when the article does not say.
pub fn resolve_dates(
    date: Option<crate::dates::RawDate>,
    updated: Option<crate::dates::RawDate>,
    rec: &Record,
    tz: Tz,
    now: DateTime<Utc>,
) -> (DateTime<FixedOffset>, DateTime<FixedOffset>, Vec<String>) {
    let mut warnings = Vec::new();
    let first_seen = rec.first_seen.with_timezone(&tz).fixed_offset();
    let published = match date.map(|d| dates::resolve(d, tz, rec.first_seen)) {
        Some(d) if dates::is_plausible(d, now) => d,
        Some(d) => {
            warnings.push(format!(
                "implausible date {} (before 1990 or more than a day ahead); using first-seen time",
                dates::rfc3339(d)
            ));
            first_seen
        }
        None => first_seen,
    };
    let changed = rec
        .changed_at
        .map(|c| c.with_timezone(&tz).fixed_offset())
        .filter(|c| *c > published);
    let updated = match updated.map(|d| dates::resolve(d, tz, rec.first_seen)) {
        Some(d) if dates::is_plausible(d, now) && d >= published => d,
        Some(d) => {
            warnings.push(format!(
                "implausible updated date {}; ignored",
                dates::rfc3339(d)
            ));
            changed.unwrap_or(published)
        }
        None => changed.unwrap_or(published),
    };
    (published, updated, warnings)
}

/// An ETag's opaque part (see `serve::snapshot::body_tag`), or the tag of an article's packed
/// body and summary: 20 hex digits kept inline, so 100 000 articles do not make 100 000
/// small allocations for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageTag([u8; PageTag::LEN]);

impl PageTag {
    const LEN: usize = 20;

    /// The tag of a page's bytes.
    pub fn of(body: &[u8]) -> PageTag {
        PageTag::of_hash(&blake3::hash(body))
    }

    /// The tag of a digest (the same form as a page's).
    pub fn of_hash(hash: &blake3::Hash) -> PageTag {
        let hex = hash.to_hex();
        let mut tag = [0; PageTag::LEN];
        tag.copy_from_slice(&hex.as_bytes()[..PageTag::LEN]);
        PageTag(tag)
    }

    /// A tag as written by [`PageTag::as_str`]; None for anything else.
    pub fn parse(s: &str) -> Option<PageTag> {
        let bytes: [u8; PageTag::LEN] = s.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(u8::is_ascii_hexdigit)
            .then_some(PageTag(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Where an article's body HTML is.
#[derive(Debug, Clone)]
pub enum Content {
    /// As parsed (`build`, tests).
    Html(Arc<str>),
    /// What `serve` keeps: the body HTML followed by the summary, lz4-compressed together
    /// (see [`pack_article`]); the article's `summary` field is then empty. The
    /// article's page is made from it when asked for.
    Packed {
        blob: Bytes,
        /// The tag of `blob`'s bytes: stands for the body and summary in digests.
        tag: PageTag,
        /// Bytes of body HTML at the start of the unpacked blob; the summary follows.
        body_len: u32,
        /// Where `blob` is in the page store, when it is there (then `blob` is mapped).
        stored: Option<Stored>,
    },
}

/// Equal when the bodies are: where a page is kept does not matter.
impl PartialEq for Content {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Content::Html(a), Content::Html(b)) => a == b,
            (
                Content::Packed {
                    blob: a,
                    tag: ta,
                    body_len: la,
                    ..
                },
                Content::Packed {
                    blob: b,
                    tag: tb,
                    body_len: lb,
                    ..
                },
                // The tag is the blob's hash: equal tags, equal blobs (without reading them).
            ) => (ta, la) == (tb, lb) && a.len() == b.len(),
            _ => false,
        }
    }
}

/// One feed entry, ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Article {
    /// Path relative to the content dir: the index key. The same string as the keys of the
    /// engine's record and stamp maps.
    pub path: Arc<str>,
    /// The entry id in every format: front matter `id`, else the one recorded in the state
    /// (then the same string as `state_id`).
    pub id: Arc<str>,
    /// The id the state store gave this article (used when an explicit id is a duplicate).
    /// `state_id`, `slug` and `hash` are shared with the article's state record.
    pub state_id: Arc<str>,
    /// `/articles/<slug>.html`.
    pub slug: Arc<str>,
    pub title: String,
    pub published: DateTime<FixedOffset>,
    pub updated: DateTime<FixedOffset>,
    pub authors: Vec<Person>,
    pub summary: String,
    /// The sanitised body HTML; see [`Article::content_html`].
    pub content: Content,
    pub categories: Vec<Arc<Term>>,
    pub tags: Vec<Arc<Term>>,
    /// External URL given by the article, if any.
    pub link: Option<String>,
    /// Its featured image, and an audio or video enclosure (boxed: most articles have
    /// neither, and an article is one of 100 000).
    pub image: Option<Box<MediaRef>>,
    pub enclosure: Option<Box<MediaRef>>,
    pub hash: blake3::Hash,
}

impl Article {
    /// Joins a document with its state record. Returns warnings about dates that were
    /// replaced (implausible ones: before 1990 or more than a day ahead).
    pub fn new(doc: Document, rec: &Record, tz: Tz, now: DateTime<Utc>) -> (Article, Vec<String>) {
        let (published, updated, warnings) = resolve_dates(doc.date, doc.updated, rec, tz, now);
        let article = Article {
            id: doc.id.as_deref().map_or_else(|| rec.id.clone(), Into::into),
            state_id: rec.id.clone(),
            slug: rec.slug.clone(),
            path: doc.path.into(),
            title: doc.title,
            published,
            updated,
            authors: doc.authors.iter().map(|a| Person::parse(a)).collect(),
            summary: doc.summary,
            content: Content::Html(doc.content_html.into()),
            categories: doc.categories.iter().map(|c| Term::shared(c)).collect(),
            tags: doc.tags.iter().map(|t| Term::shared(t)).collect(),
            link: doc.link,
            image: doc.image.map(Box::new),
            enclosure: doc.enclosure.map(Box::new),
            hash: doc.hash,
        };
        (article, warnings)
    }

    /// Drops spare string capacity: an article lives as long as its file, and at 100 000
    /// articles the slack left by building strings piece by piece adds up to tens of MB.
    pub fn shrink_to_fit(&mut self) {
        for s in [&mut self.title, &mut self.summary] {
            s.shrink_to_fit();
        }
        if let Some(l) = &mut self.link {
            l.shrink_to_fit();
        }

        self.categories.shrink_to_fit();
        self.tags.shrink_to_fit();
        self.authors.shrink_to_fit();
    }

    /// The packed blob's bytes for reading in bulk (rendering feeds, writing the cache): from
    /// the page store with a plain read, so the mapping (and the resident set) only grows
    /// with the articles whose pages are actually served.
    pub fn packed_bytes(&self) -> Option<Bytes> {
        match &self.content {
            Content::Html(_) => None,
            Content::Packed {
                blob,
                stored: Some(at),
                ..
            } => Some(at.read(blob.len()).unwrap_or_else(|_| blob.clone())),
            Content::Packed { blob, .. } => Some(blob.clone()),
        }
    }

    /// The body HTML and the summary together, decompressing a packed article's blob once.
    pub fn texts(&self) -> (Cow<'_, str>, Cow<'_, str>) {
        match &self.content {
            Content::Html(h) => (Cow::Borrowed(h), Cow::Borrowed(&self.summary)),
            Content::Packed { body_len, .. } => {
                let blob = unpack_blob(&self.packed_bytes().unwrap_or_default());
                let (body, summary) = blob.split_at((*body_len as usize).min(blob.len()));
                let summary = if self.summary.is_empty() {
                    Cow::Owned(String::from_utf8_lossy(summary).into_owned())
                } else {
                    Cow::Borrowed(self.summary.as_str())
                };
                (
                    Cow::Owned(String::from_utf8_lossy(body).into_owned()),
                    summary,
                )
            }
        }
    }

    /// The body HTML, decompressed from the article's blob when it is kept packed.
    pub fn content_html(&self) -> Cow<'_, str> {
        match &self.content {
            Content::Html(h) => Cow::Borrowed(h),
            Content::Packed { .. } => self.texts().0,
        }
    }

    /// The summary (plain text); a packed article keeps it only in its blob.
    pub fn summary(&self) -> Cow<'_, str> {
        match &self.content {
            Content::Packed { .. } if self.summary.is_empty() => self.texts().1,
            _ => Cow::Borrowed(&self.summary),
        }
    }

    /// Takes what its state record gives it: the state id (also the entry id unless the
    /// article has an explicit one), the slug, and the record map's `path` string (one
    /// string for the path, shared with the record and stamp maps' keys).
    pub fn take_record(&mut self, path: &Arc<str>, rec: &Record, explicit_id: bool) {
        self.state_id = rec.id.clone();
        if !explicit_id {
            self.id = rec.id.clone();
        }
        self.slug = rec.slug.clone();
        self.path = path.clone();
    }

    /// The site path of the article's own page.
    /// Adds everything a feed entry shows of this article to a digest (see
    /// [`crate::render::FeedSpec::digest`]). The body and summary of a packed article are
    /// stood for by its blob's tag, a hash of the blob that holds both.
    pub fn digest_into(&self, h: &mut blake3::Hasher) {
        use digest::{date, field};
        // Every field named, so a new one cannot be forgotten here. Left out: what no entry
        // shows (the file's path and content hash, the state's own id), so renaming a file
        // or touching its bytes without changing what it says keeps the feeds' ETags.
        let Article {
            path: _,
            id,
            state_id: _,
            slug,
            title,
            published,
            updated,
            authors,
            summary,
            content,
            categories,
            tags,
            link,
            image,
            enclosure,
            hash: _,
        } = self;
        for s in [id, slug] {
            field(h, s.as_bytes());
        }
        field(h, title.as_bytes());
        date(h, published);
        date(h, updated);
        h.update(&(authors.len() as u64).to_le_bytes());
        for p in authors {
            field(h, p.name.as_bytes());
            field(h, p.email.as_deref().unwrap_or("\0").as_bytes());
        }
        field(h, summary.as_bytes());
        match content {
            Content::Html(html) => field(h, html.as_bytes()),
            Content::Packed { tag, .. } => field(h, tag.as_str().as_bytes()),
        }
        for terms in [categories, tags] {
            h.update(&(terms.len() as u64).to_le_bytes());
            for t in terms {
                field(h, t.name.as_bytes());
            }
        }
        field(h, link.as_deref().unwrap_or("\0").as_bytes());
        for m in [image, enclosure] {
            match m {
                None => field(h, b"\0"),
                Some(m) => {
                    let MediaRef {
                        url,
                        mime,
                        length,
                        width,
                        height,
                    } = &**m;
                    field(h, url.as_bytes());
                    field(h, mime.as_deref().unwrap_or("\0").as_bytes());
                    for n in [
                        length.unwrap_or(u64::MAX),
                        u64::from(width.unwrap_or(u32::MAX)),
                        u64::from(height.unwrap_or(u32::MAX)),
                    ] {
                        h.update(&n.to_le_bytes());
                    }
                }
            }
        }
    }

    pub fn page_path(&self) -> String {
        format!("articles/{}.html", self.slug)
    }

    /// Where the entry links to: its own URL if it has one, else its page.
    pub fn url(&self, cfg: &Config) -> String {
        self.link
            .clone()
            .unwrap_or_else(|| cfg.url(&self.page_path()))
    }
}

/// The lz4 block of a blob (size first), decompressed; empty if it is not one. lz4 does at
/// most ~255:1, so a size beyond that is damage, not an allocation to make.
fn unpack_blob(blob: &[u8]) -> Vec<u8> {
    let claimed = blob
        .get(..4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
    if claimed > blob.len().saturating_mul(255) {
        return Vec::new();
    }
    lz4_flex::decompress_size_prepended(blob).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tags_are_twenty_hex_digits_and_parse_back() {
        let tag = PageTag::of(b"<html>page</html>");
        assert_eq!(tag.as_str(), PageTag::of(b"<html>page</html>").as_str());
        assert_eq!(PageTag::parse(tag.as_str()), Some(tag));
        for bad in ["", "abc", "zzzzzzzzzzzzzzzzzzzz", "0123456789abcdef01234"] {
            assert_eq!(PageTag::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn terms_are_shared_by_name() {
        let a = Term::shared("Economy");
        let b = Term::shared("Economy");
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, Term::new("Economy"));
        assert!(!Arc::ptr_eq(&a, &Term::shared("economy")));
    }

    #[test]
    fn people() {
        let p = |s: &str| Person::parse(s);
        assert_eq!(
            p("Jane Doe <jane@ex.com>"),
            Person {
                name: "Jane Doe".into(),
                email: Some("jane@ex.com".into())
            }
        );
        assert_eq!(
            p("jane@ex.com (Jane)"),
            Person {
                name: "Jane".into(),
                email: Some("jane@ex.com".into())
            }
        );
        assert_eq!(
            p("jane@ex.com"),
            Person {
                name: "jane@ex.com".into(),
                email: Some("jane@ex.com".into())
            }
        );
        assert_eq!(
            p("Li Wei"),
            Person {
                name: "Li Wei".into(),
                email: None
            }
        );
        assert_eq!(
            p("@handle"),
            Person {
                name: "@handle".into(),
                email: None
            }
        );
    }

    #[test]
    fn names_whose_slugs_collide_get_their_own() {
        // Two names whose 32-bit slug hashes collide, and a plain name that spells it.
        assert_eq!(text::slugify("=@~."), text::slugify("!^?~;"));
        let a = Term::shared("=@~.");
        let b = Term::shared("!^?~;");
        let c = Term::shared(&a.slug);
        assert_ne!(a.slug, b.slug);
        assert_ne!(a.slug, c.slug);
        assert_ne!(b.slug, c.slug);
        // Each keeps its slug, and a name folded the same shares it.
        assert_eq!(Term::shared("!^?~;").slug, b.slug);
        assert_eq!(
            Term::shared("Industry trends").slug,
            Term::shared("industry-Trends").slug
        );
    }
}
