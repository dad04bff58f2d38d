//! Sitemaps for search engines and news aggregators: `/sitemap.xml` (sitemaps.org 0.9: the
//! front page, every feed and every article page, with `lastmod`; past 50 000 URLs a sitemap
//! index over children of at most 50 000), `/news-sitemap.xml` (Google News: the articles
//! published in the last two days, at most 1 000) and `/robots.txt` naming both.
//!
//! Articles are listed oldest first, so a new article changes the last child only, and a
//! child whose articles did not change keeps its bytes (and its ETag).

use std::fmt::Write;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};

use super::{FeedSpec, Kind, Page};
use crate::config::Config;
use crate::dates;
use crate::model::Article;

/// URLs per sitemap file (the protocol's limit).
pub const URLS_PER_SITEMAP: usize = 50_000;
/// Articles in the news sitemap, at most (Google News' limit).
pub const NEWS_MAX: usize = 1_000;
/// How far back the news sitemap reaches (Google News: two days).
pub const NEWS_WINDOW_SECS: i64 = 2 * 86_400;

const NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";
const NEWS_NS: &str = "http://www.google.com/schemas/sitemap-news/0.9";

/// `&`, `<`, `>`, `'`, `"` as entities (sitemaps.org asks for all five in URLs).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn url_entry(out: &mut String, loc: &str, lastmod: DateTime<FixedOffset>) {
    let _ = writeln!(
        out,
        "<url><loc>{}</loc><lastmod>{}</lastmod></url>",
        esc(loc),
        dates::rfc3339(lastmod)
    );
}

fn urlset(body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"{NS}\">\n{body}</urlset>\n"
    )
    .into_bytes()
}

/// The front page and every feed (in Atom, the format herald links first).
fn front_urls(specs: &[FeedSpec], cfg: &Config, newest: DateTime<FixedOffset>) -> String {
    let mut out = String::new();
    url_entry(&mut out, cfg.site.base_url.as_str(), newest);
    for spec in specs {
        url_entry(&mut out, &spec.url(cfg, "atom"), spec.updated);
    }
    out
}

fn article_urls(articles: &[&Arc<Article>], cfg: &Config) -> String {
    let mut out = String::with_capacity(articles.len() * 140);
    for a in articles {
        url_entry(&mut out, &cfg.url(&a.page_path()), a.updated);
    }
    out
}

/// How the sitemap is cut: articles (oldest first) into children of at most
/// [`URLS_PER_SITEMAP`], the front page and the feeds in one of their own.
pub struct Plan<'a> {
    /// Articles, oldest first.
    pub articles: Vec<&'a Arc<Article>>,
    /// One file (`/sitemap.xml` is the urlset) or an index over children.
    pub single: bool,
}

impl<'a> Plan<'a> {
    pub fn new(oldest_first: Vec<&'a Arc<Article>>, feeds: usize) -> Plan<'a> {
        let single = oldest_first.len() + feeds < URLS_PER_SITEMAP;
        Plan {
            articles: oldest_first,
            single,
        }
    }

    /// The children of articles: (path, its articles).
    pub fn children(&self) -> Vec<(String, &[&'a Arc<Article>])> {
        self.articles
            .chunks(URLS_PER_SITEMAP)
            .enumerate()
            .map(|(i, c)| (format!("sitemaps/articles-{}.xml", i + 1), c))
            .collect()
    }
}

/// One child of articles.
pub fn articles_child(articles: &[&Arc<Article>], cfg: &Config) -> Page {
    Page {
        kind: Kind::Xml,
        body: urlset(&article_urls(articles, cfg)),
        updated: articles.iter().map(|a| a.updated).max(),
    }
}

/// `/sitemap.xml` and, past [`URLS_PER_SITEMAP`] URLs, the children it lists (the front page
/// and feeds in `sitemaps/feeds.xml`, the articles in `sitemaps/articles-N.xml`). `skip`
/// says which article children need not be made (a caller that kept them unchanged).
pub fn sitemaps(
    plan: &Plan,
    specs: &[FeedSpec],
    cfg: &Config,
    empty_updated: DateTime<FixedOffset>,
    skip: &mut dyn FnMut(&str, &[&Arc<Article>]) -> bool,
) -> Vec<(String, Page)> {
    let newest = specs.first().map_or(empty_updated, |s| s.updated);
    if plan.single {
        let mut body = front_urls(specs, cfg, newest);
        body.push_str(&article_urls(&plan.articles, cfg));
        return vec![(
            "sitemap.xml".into(),
            Page {
                kind: Kind::Xml,
                body: urlset(&body),
                updated: Some(newest),
            },
        )];
    }
    let mut out = Vec::new();
    let mut index =
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"{NS}\">\n");
    let mut child = |path: &str, lastmod: DateTime<FixedOffset>| {
        let _ = writeln!(
            index,
            "<sitemap><loc>{}</loc><lastmod>{}</lastmod></sitemap>",
            esc(&cfg.url(path)),
            dates::rfc3339(lastmod)
        );
    };
    child("sitemaps/feeds.xml", newest);
    out.push((
        "sitemaps/feeds.xml".into(),
        Page {
            kind: Kind::Xml,
            body: urlset(&front_urls(specs, cfg, newest)),
            updated: Some(newest),
        },
    ));
    for (path, articles) in plan.children() {
        let lastmod = articles.iter().map(|a| a.updated).max().unwrap_or(newest);
        child(&path, lastmod);
        if !skip(&path, articles) {
            out.push((path, articles_child(articles, cfg)));
        }
    }
    index.push_str("</sitemapindex>\n");
    out.push((
        "sitemap.xml".into(),
        Page {
            kind: Kind::Xml,
            body: index.into_bytes(),
            updated: Some(newest),
        },
    ));
    out
}

/// The articles the news sitemap lists at `now`: published in the last two days (and not
/// in the future), newest first, at most [`NEWS_MAX`]. `newest_first` is every article.
pub fn news_articles<'a>(
    newest_first: impl Iterator<Item = &'a Arc<Article>>,
    now: DateTime<Utc>,
) -> Vec<&'a Arc<Article>> {
    let since = now.timestamp() - NEWS_WINDOW_SECS;
    // (Newest first by publication date: the first one older than the window ends it.)
    newest_first
        .filter(|a| a.published.timestamp() <= now.timestamp())
        .take_while(|a| a.published.timestamp() > since)
        .take(NEWS_MAX)
        .collect()
}

/// When the news sitemap listing `listed` changes by the clock alone: when its oldest entry
/// turns two days old (None: nothing listed).
pub fn news_expires(listed: &[&Arc<Article>]) -> Option<i64> {
    listed
        .iter()
        .map(|a| a.published.timestamp() + NEWS_WINDOW_SECS)
        .min()
}

/// `/news-sitemap.xml`.
pub fn news_sitemap(listed: &[&Arc<Article>], cfg: &Config) -> Page {
    let name = esc(&cfg.site.title);
    let lang = news_language(&cfg.site.language);
    let mut body = String::new();
    for a in listed {
        let _ = writeln!(
            body,
            "<url><loc>{}</loc><news:news><news:publication><news:name>{name}</news:name><news:language>{lang}</news:language></news:publication><news:publication_date>{}</news:publication_date><news:title>{}</news:title></news:news></url>",
            esc(&cfg.url(&a.page_path())),
            dates::rfc3339(a.published),
            esc(&a.title),
        );
    }
    Page {
        kind: Kind::Xml,
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"{NS}\" xmlns:news=\"{NEWS_NS}\">\n{body}</urlset>\n"
        )
        .into_bytes(),
        updated: listed.iter().map(|a| a.updated).max(),
    }
}

/// Google News' language code: ISO 639 (two or three letters), except `zh-cn` and `zh-tw`.
fn news_language(tag: &str) -> String {
    let lower = tag.to_ascii_lowercase().replace('_', "-");
    let primary = lower.split('-').next().unwrap_or("").to_string();
    if primary == "zh" {
        let traditional = ["tw", "hk", "mo", "hant"]
            .iter()
            .any(|t| lower.split('-').any(|p| p == *t));
        return if traditional { "zh-tw" } else { "zh-cn" }.into();
    }
    if (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase()) {
        primary
    } else {
        "en".into()
    }
}

/// `/robots.txt`: everything may be crawled; where the sitemaps are.
pub fn robots(cfg: &Config) -> Page {
    Page {
        kind: Kind::Text,
        body: format!(
            "User-agent: *\nAllow: /\n\nSitemap: {}\nSitemap: {}\n",
            cfg.url("sitemap.xml"),
            cfg.url("news-sitemap.xml")
        )
        .into_bytes(),
        updated: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_languages_are_what_google_news_takes() {
        for (tag, want) in [
            ("en", "en"),
            ("en-US", "en"),
            ("zh-CN", "zh-cn"),
            ("zh-Hans", "zh-cn"),
            ("zh-TW", "zh-tw"),
            ("zh-Hant-HK", "zh-tw"),
            ("fil", "fil"),
            ("", "en"),
        ] {
            assert_eq!(news_language(tag), want, "{tag}");
        }
    }

    #[test]
    fn urls_are_entity_escaped() {
        assert_eq!(
            esc("https://x/?a=1&b='2'"),
            "https://x/?a=1&amp;b=&apos;2&apos;"
        );
    }

    #[test]
    fn past_50_000_urls_the_sitemap_is_an_index_and_children_keep_their_bytes() {
        let cfg = crate::render::tests::config();
        let base = crate::model::fixtures::article("a.txt", "Title", 1);
        let articles: Vec<Arc<Article>> = (0..URLS_PER_SITEMAP + 10)
            .map(|i| {
                let mut a = base.clone();
                a.slug = format!("s{i}").into();
                a.id = format!("tag:x,2026:{i}").into();
                Arc::new(a)
            })
            .collect();
        let refs: Vec<&Arc<Article>> = articles.iter().collect();
        let plan = Plan::new(refs.clone(), 3);
        assert!(!plan.single);
        let epoch = base.updated;
        let pages = sitemaps(&plan, &[], &cfg, epoch, &mut |_, _| false);
        let paths: Vec<&str> = pages.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sitemaps/feeds.xml",
                "sitemaps/articles-1.xml",
                "sitemaps/articles-2.xml",
                "sitemap.xml"
            ]
        );
        let count = |p: &Page| String::from_utf8_lossy(&p.body).matches("<url>").count();
        assert_eq!(count(&pages[1].1), URLS_PER_SITEMAP);
        assert_eq!(count(&pages[2].1), 10);
        let index = String::from_utf8_lossy(&pages[3].1.body).into_owned();
        assert!(index.contains("<sitemapindex"));
        assert!(
            index.contains("<loc>https://news.example.com/sitemaps/articles-2.xml</loc>"),
            "{index}"
        );
        // A child the caller kept is not made again; the index still lists it.
        let pages = sitemaps(&plan, &[], &cfg, epoch, &mut |p, _| p.ends_with("-1.xml"));
        assert!(!pages.iter().any(|(p, _)| p == "sitemaps/articles-1.xml"));
        let index = String::from_utf8_lossy(&pages.last().unwrap().1.body).into_owned();
        assert!(index.contains("articles-1.xml"));
        // One URL short of the limit with the front page: a single file.
        assert!(Plan::new(refs[..URLS_PER_SITEMAP - 4].to_vec(), 3).single);
    }
}
