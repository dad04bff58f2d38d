//! Sitemaps for search engines and news aggregators: `/sitemap.xml` (sitemaps.org 0.9: the
//! front page, every feed and every article page, with `lastmod`; past 50 000 URLs a sitemap
//! index over children of at most 50 000), `/news-sitemap.xml` (Google News: the articles
//! published in the last two days, at most 1 000) and `/robots.txt` naming both.
//!
//! Articles are grouped by month of publication ([`Sitemaps`]): a change makes its month's
//! part again, nothing else, and a child whose articles did not change keeps its bytes
//! (and its ETag).

use std::collections::{BTreeMap, BTreeSet};
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

/// The front page and every category's and tag's page.
fn front_urls(specs: &[FeedSpec], cfg: &Config, newest: DateTime<FixedOffset>) -> String {
    let mut out = String::new();
    url_entry(&mut out, cfg.site.base_url.as_str(), newest);
    for spec in specs.iter().filter(|s| !s.dir.is_empty()) {
        url_entry(&mut out, &spec.html_url, spec.updated);
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

/// The sitemap's articles by month of publication, each month's part of the sitemap made
/// again only when one of its articles changed. Past [`URLS_PER_SITEMAP`] URLs, each month
/// is a child of a sitemap index (`sitemaps/YYYY-MM.xml`, split in parts past the limit),
/// so a new article changes its month's child and the index, nothing else; below it,
/// `/sitemap.xml` joins the months' parts kept from before. Plain data: the caller says
/// what changed (a publish) or hands over every article (a build).
#[derive(Debug, Default)]
pub struct Sitemaps {
    months: BTreeMap<String, Month>,
    /// Articles listed (all months).
    articles: usize,
    /// Whether the last render was one file (not an index).
    single: bool,
    /// Child paths made by the last render.
    children: BTreeSet<String>,
}

#[derive(Debug, Default)]
struct Month {
    /// By path.
    articles: BTreeMap<Arc<str>, Arc<Article>>,
    /// Changed since the last render.
    dirty: bool,
    /// Its `<url>` lines as last made (kept while the sitemap is one file).
    urls: Option<String>,
    lastmod: Option<DateTime<FixedOffset>>,
}

/// An article before and after a change (None: not there).
pub type Change = (Option<Arc<Article>>, Option<Arc<Article>>);

fn month_of(a: &Article) -> String {
    a.published.format("%Y-%m").to_string()
}

impl Sitemaps {
    /// Every article anew (a start or a build).
    pub fn rebuild<'a>(&mut self, articles: impl Iterator<Item = &'a Arc<Article>>) {
        self.months.clear();
        self.articles = 0;
        for a in articles {
            self.insert(a.clone());
        }
    }

    fn insert(&mut self, a: Arc<Article>) {
        let m = self.months.entry(month_of(&a)).or_default();
        m.dirty = true;
        if m.articles.insert(a.path.clone(), a).is_none() {
            self.articles += 1;
        }
    }

    /// Takes a publish's changes: (before, after) per article.
    pub fn apply(&mut self, changed: &[Change]) {
        for (old, new) in changed {
            if let Some(old) = old {
                let key = month_of(old);
                if let Some(m) = self.months.get_mut(&key) {
                    m.dirty = true;
                    if m.articles.remove(&old.path).is_some() {
                        self.articles -= 1;
                    }
                }
            }
            if let Some(new) = new {
                self.insert(new.clone());
            }
        }
    }

    /// The sitemap files to publish: `/sitemap.xml` always, and (past the limit) the
    /// children whose month changed, the feeds' child and the index; every child when
    /// `all`. Returns them with the children no longer part of the sitemap.
    pub fn render(
        &mut self,
        specs: &[FeedSpec],
        cfg: &Config,
        empty_updated: DateTime<FixedOffset>,
        all: bool,
    ) -> (Vec<(String, Page)>, Vec<String>) {
        self.months.retain(|_, m| !m.articles.is_empty());
        let newest = specs.first().map_or(empty_updated, |s| s.updated);
        let single = self.articles + specs.len() < URLS_PER_SITEMAP;
        let all = all || single != self.single;
        self.single = single;
        let mut out = Vec::new();
        let mut children = BTreeSet::new();
        if single {
            let mut body = front_urls(specs, cfg, newest);
            for m in self.months.values_mut() {
                if all || m.dirty || m.urls.is_none() {
                    m.urls = Some(month_urls(m, cfg));
                }
                m.dirty = false;
                body.push_str(m.urls.as_deref().unwrap_or_default());
            }
            out.push((
                "sitemap.xml".into(),
                Page {
                    max_age: None,
                    kind: Kind::Xml,
                    body: urlset(&body),
                    updated: Some(newest),
                },
            ));
        } else {
            let mut index = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sitemapindex xmlns=\"{NS}\">\n"
            );
            let mut list = |path: &str, lastmod: DateTime<FixedOffset>| {
                let _ = writeln!(
                    index,
                    "<sitemap><loc>{}</loc><lastmod>{}</lastmod></sitemap>",
                    esc(&cfg.url(path)),
                    dates::rfc3339(lastmod)
                );
            };
            let feeds = "sitemaps/feeds.xml".to_string();
            list(&feeds, newest);
            out.push((
                feeds.clone(),
                Page {
                    max_age: None,
                    kind: Kind::Xml,
                    body: urlset(&front_urls(specs, cfg, newest)),
                    updated: Some(newest),
                },
            ));
            children.insert(feeds);
            for (key, m) in self.months.iter_mut() {
                let remake = all || m.dirty;
                m.urls = None;
                m.dirty = false;
                if remake {
                    m.lastmod = m.articles.values().map(|a| a.updated).max();
                }
                // An unchanged month is listed, not read.
                let articles: Vec<&Arc<Article>> = match remake {
                    true => m.articles.values().collect(),
                    false => Vec::new(),
                };
                let parts = m.articles.len().div_ceil(URLS_PER_SITEMAP);
                for i in 0..parts {
                    let path = match parts {
                        1 => format!("sitemaps/{key}.xml"),
                        _ => format!("sitemaps/{key}-{}.xml", i + 1),
                    };
                    list(&path, m.lastmod.unwrap_or(newest));
                    if remake {
                        let part = articles.chunks(URLS_PER_SITEMAP).nth(i).unwrap_or_default();
                        out.push((path.clone(), articles_child(part, cfg)));
                    }
                    children.insert(path);
                }
            }
            index.push_str("</sitemapindex>\n");
            out.push((
                "sitemap.xml".into(),
                Page {
                    max_age: None,
                    kind: Kind::Xml,
                    body: index.into_bytes(),
                    updated: Some(newest),
                },
            ));
        }
        let gone = self.children.difference(&children).cloned().collect();
        self.children = children;
        (out, gone)
    }
}

fn month_urls(m: &Month, cfg: &Config) -> String {
    let articles: Vec<&Arc<Article>> = m.articles.values().collect();
    article_urls(&articles, cfg)
}

/// One child of articles.
fn articles_child(articles: &[&Arc<Article>], cfg: &Config) -> Page {
    Page {
        max_age: None,
        kind: Kind::Xml,
        body: urlset(&article_urls(articles, cfg)),
        updated: articles.iter().map(|a| a.updated).max(),
    }
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
        max_age: None,
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
        max_age: None,
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
    fn past_50_000_urls_the_sitemap_is_an_index_of_months_and_only_changed_months_are_made() {
        let cfg = crate::render::tests::config();
        let base = crate::model::fixtures::article("a.txt", "Title", 1);
        let make = |i: usize, day: u32| {
            let mut a = crate::model::fixtures::article(&format!("{i}.txt"), "T", day);
            a.slug = format!("s{i}").into();
            a.id = format!("tag:x,2026:{i}").into();
            Arc::new(a)
        };
        // 50 010 articles of 2015-12, one of 2015-11 (a month before).
        let mut articles: Vec<Arc<Article>> =
            (0..URLS_PER_SITEMAP + 10).map(|i| make(i, 1)).collect();
        let mut nov = (*make(999_999, 1)).clone();
        nov.published -= chrono::Duration::days(3);
        articles.push(Arc::new(nov));
        let mut s = Sitemaps::default();
        s.rebuild(articles.iter());
        let epoch = base.updated;
        let (pages, gone) = s.render(&[], &cfg, epoch, true);
        assert!(gone.is_empty());
        let paths: Vec<&str> = pages.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "sitemaps/feeds.xml",
                "sitemaps/2015-11.xml",
                "sitemaps/2015-12-1.xml",
                "sitemaps/2015-12-2.xml",
                "sitemap.xml"
            ]
        );
        let count = |p: &Page| String::from_utf8_lossy(&p.body).matches("<url>").count();
        assert_eq!(count(&pages[2].1), URLS_PER_SITEMAP);
        assert_eq!(count(&pages[3].1), 10);
        let index = String::from_utf8_lossy(&pages[4].1.body).into_owned();
        assert!(index.contains("<sitemapindex"));
        assert!(
            index.contains("<loc>https://news.example.com/sitemaps/2015-11.xml</loc>"),
            "{index}"
        );
        // A November edit makes November's child and the index again, not December's.
        let edited = make(999_999, 1);
        let mut edited_nov = (*edited).clone();
        edited_nov.published -= chrono::Duration::days(3);
        edited_nov.title = "Edited".into();
        let old = articles.last().unwrap().clone();
        s.apply(&[(Some(old), Some(Arc::new(edited_nov)))]);
        let (pages, _) = s.render(&[], &cfg, epoch, false);
        let paths: Vec<&str> = pages.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["sitemaps/feeds.xml", "sitemaps/2015-11.xml", "sitemap.xml"]
        );
        // Below the limit again: one file, and the children are gone.
        let removed: Vec<_> = articles[..20]
            .iter()
            .map(|a| (Some(a.clone()), None))
            .collect();
        s.apply(&removed);
        let (pages, gone) = s.render(&[], &cfg, epoch, false);
        assert_eq!(pages.len(), 1);
        assert_eq!(
            count(&pages[0].1),
            URLS_PER_SITEMAP + 10 + 1 - 20 + 1,
            "the front page too"
        );
        assert_eq!(gone.len(), 4, "{gone:?}");
    }
}
