//! The HTML pages: one clean, readable page per article; a page per view (the whole site,
//! each category, each tag) with its newest entries, older pages, and subscribe links for
//! its feeds; the lists of all categories and all tags, by count, paged; and the index.
//! One small inline stylesheet ([`STYLE`]): no JavaScript, good on a phone, dark mode,
//! landmarks and headings in order. Everything interpolated is escaped; article bodies are
//! already sanitised.

use std::fmt::Write;

use super::{html_page_url, html_pages, FeedSpec};
use crate::config::Config;
use crate::dates;
use crate::index::Views;
use crate::model::Article;
use crate::text::escape_html as esc;

/// The pages' stylesheet. Colours meet WCAG AA (4.5:1 or more) on their background, in
/// light and dark mode; nothing is wider than a phone's screen (long words and URLs wrap,
/// wide tables and code scroll inside themselves).
const STYLE: &str = concat!(
    ":root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#fff;--link:#0550ae;--line:#d1d9e0;--panel:#f6f8fa}",
    "@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--link:#4493f8;--line:#3d444d;--panel:#151b23}}",
    "*{box-sizing:border-box}html{-webkit-text-size-adjust:100%}",
    "body{max-width:44rem;margin:0 auto;padding:0 1rem 2rem;font:1.05rem/1.6 system-ui,-apple-system,\"Segoe UI\",sans-serif;color:var(--fg);background:var(--bg);overflow-wrap:anywhere}",
    "a{color:var(--link)}a:focus-visible{outline:2px solid var(--link);outline-offset:2px}",
    ".skip{position:absolute;left:-999rem}.skip:focus{position:static}",
    "body>header{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;justify-content:space-between;padding:1rem 0;border-bottom:1px solid var(--line)}",
    ".site{font-weight:700;font-size:1.15rem;text-decoration:none;color:var(--fg)}",
    "nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}",
    "h1{line-height:1.2;font-size:1.9rem;margin:1.5rem 0 .5rem}h2{line-height:1.3;font-size:1.3rem}h3{font-size:1.1rem;line-height:1.35;margin:0}",
    ".kicker{color:var(--muted);font-size:.9rem;margin:1.5rem 0 0;text-transform:uppercase;letter-spacing:.04em}.kicker+h1{margin-top:.25rem}",
    ".meta,.count{color:var(--muted);font-size:.9rem}",
    "ol.entries{list-style:none;padding:0;margin:0}ol.entries>li{padding:1rem 0;border-top:1px solid var(--line)}ol.entries p{margin:.3rem 0 0}",
    ".subscribe{background:var(--panel);border:1px solid var(--line);border-radius:.5rem;padding:.5rem 1rem;margin:1rem 0}",
    ".subscribe h2{font-size:1rem;margin:.5rem 0}.subscribe ul{padding-left:1.2rem}.subscribe code{font-size:.85rem;word-break:break-all}",
    "ol.terms{columns:14rem;padding-left:1.5rem}ol.terms li{break-inside:avoid}",
    ".pager ul{justify-content:space-between;margin:1.5rem 0}",
    "img,video,iframe,svg{max-width:100%;height:auto}figure{margin:1rem 0}",
    "pre,table{display:block;overflow-x:auto;max-width:100%}pre{background:var(--panel);padding:.5rem}",
    "footer{margin-top:2rem;padding-top:1rem;border-top:1px solid var(--line);color:var(--muted);font-size:.9rem}",
);

/// How a browser shows an RSS or Atom feed (named by its `<?xml-stylesheet?>`): a banner
/// saying what it is, the feed's title, and each entry's title, date and summary; the rest
/// (links, ids, full content as escaped text) hidden.
pub const FEED_STYLE: &str = r#"rss, feed { display: block; max-width: 46rem; margin: 0 auto; padding: 1rem; font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; background: #fff; }
rss::before, feed::before { content: "This is a feed: copy its address into your feed reader to follow it."; display: block; padding: .75rem 1rem; margin-bottom: 1rem; border-radius: .5rem; background: #fff8c5; color: #3b2e00; }
channel > *, feed > *, item > *, entry > * { display: none; }
channel, channel > title, channel > description, channel > item, feed > title, feed > subtitle, feed > entry, item > title, item > pubDate, item > description, entry > title, entry > updated, entry > summary { display: block; }
channel > title, feed > title { font-size: 1.9rem; font-weight: 700; line-height: 1.2; margin: .5rem 0; }
channel > description, feed > subtitle { color: #59636e; margin-bottom: 1rem; }
item, entry { padding: 1rem 0; border-top: 1px solid #d1d9e0; }
item > title, entry > title { font-size: 1.2rem; font-weight: 600; }
item > pubDate, entry > updated { color: #59636e; font-size: .9rem; }
item > description, entry > summary { margin-top: .4rem; overflow-wrap: anywhere; }
@media (prefers-color-scheme: dark) { rss, feed { background: #0d1117; color: #e6edf3; } item, entry { border-color: #3d444d; } channel > description, feed > subtitle, item > pubDate, entry > updated { color: #9198a1; } }
"#;

/// The feeds a page names for autodiscovery and subscription: (format label, MIME type,
/// extension), Atom first (the format herald links first).
const FORMATS: [(&str, &str, &str); 3] = [
    ("Atom", "application/atom+xml", "atom"),
    ("RSS", "application/rss+xml", "rss"),
    ("JSON Feed", "application/feed+json", "json"),
];

/// The document's start: `<head>` (title, description, autodiscovery `<link>`s for `feeds`
/// — the whole site's, then the view's own — `extra` elements, the stylesheet), then the
/// site's header with its navigation, and `<main>`.
fn open_page(
    out: &mut String,
    cfg: &Config,
    title: &str,
    description: &str,
    feeds: &[&FeedSpec],
    extra: &str,
) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n",
        esc(&cfg.site.language),
        esc(title)
    );
    if !description.is_empty() {
        let _ = writeln!(
            out,
            "<meta name=\"description\" content=\"{}\">",
            esc(description)
        );
    }
    for (label, mime, ext) in FORMATS {
        let _ = writeln!(
            out,
            "<link rel=\"alternate\" type=\"{mime}\" title=\"{} ({label})\" href=\"{}\">",
            esc(&cfg.site.title),
            esc(&cfg.url(&format!("feed.{ext}")))
        );
    }
    for spec in feeds.iter().filter(|s| !s.dir.is_empty()) {
        for (label, mime, ext) in FORMATS {
            let _ = writeln!(
                out,
                "<link rel=\"alternate\" type=\"{mime}\" title=\"{} ({label})\" href=\"{}\">",
                esc(&spec.title),
                esc(&spec.url(cfg, ext))
            );
        }
    }
    out.push_str(extra);
    let _ = write!(
        out,
        "<style>{STYLE}</style>\n</head>\n<body>\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n<header>\n<a class=\"site\" href=\"{}\">{}</a>\n<nav aria-label=\"Site\"><ul><li><a href=\"{}\">Latest articles</a></li><li><a href=\"{}\">Categories</a></li><li><a href=\"{}\">Tags</a></li><li><a href=\"{}\">Subscribe</a></li></ul></nav>\n</header>\n<main id=\"main\">\n",
        esc(&cfg.url("")),
        esc(&cfg.site.title),
        esc(&cfg.url("")),
        esc(&cfg.url("categories/")),
        esc(&cfg.url("tags/")),
        esc(&cfg.url("feed.atom")),
    );
}

/// The document's end: `</main>`, the footer (the whole site's feeds and the OPML list).
fn close_page(out: &mut String, cfg: &Config) {
    let _ = write!(
        out,
        "</main>\n<footer>\n<p>{} · feeds: <a href=\"{}\">Atom feed</a> · <a href=\"{}\">RSS feed</a> · <a href=\"{}\">JSON Feed</a> · <a href=\"{}\">every feed (OPML)</a></p>\n</footer>\n</body>\n</html>\n",
        esc(&cfg.site.title),
        esc(&cfg.url("feed.atom")),
        esc(&cfg.url("feed.rss")),
        esc(&cfg.url("feed.json")),
        esc(&cfg.url("feeds.opml")),
    );
}

/// How to follow a view: its three feeds, each address shown to copy into a reader.
fn subscribe_box(out: &mut String, spec: &FeedSpec, cfg: &Config) {
    let what = if spec.name.is_empty() {
        cfg.site.title.as_str()
    } else {
        spec.name.as_str()
    };
    let _ = write!(
        out,
        "<section class=\"subscribe\" aria-labelledby=\"subscribe\">\n<h2 id=\"subscribe\">Follow “{}” in a feed reader</h2>\n<ul>\n",
        esc(what)
    );
    for (label, _, ext) in FORMATS {
        let url = spec.url(cfg, ext);
        let noun = if label == "JSON Feed" { "" } else { " feed" };
        let _ = writeln!(
            out,
            "<li><a href=\"{}\">{label}{noun}</a>: <code>{}</code></li>",
            esc(&url),
            esc(&url)
        );
    }
    out.push_str("</ul>\n</section>\n");
}

/// The entries of a list, newest first: title (linking to the article's page), date,
/// summary. `level` is the heading level of each title.
fn entry_list(out: &mut String, entries: &[std::sync::Arc<Article>], cfg: &Config, level: u8) {
    if entries.is_empty() {
        out.push_str("<p>No articles yet.</p>\n");
        return;
    }
    out.push_str("<ol class=\"entries\">\n");
    for a in entries {
        let summary = a.summary();
        let _ = write!(
            out,
            "<li><h{level}><a href=\"{}\">{}</a></h{level}>\n<p class=\"meta\">{}</p>\n",
            esc(&cfg.url(&a.page_path())),
            esc(&a.title),
            date_html(a.published),
        );
        if !summary.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", esc(&summary));
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ol>\n");
}

/// Links to the newer and older pages of a paged list (`url` gives page `k`'s address).
fn pager(out: &mut String, page: usize, pages: usize, url: impl Fn(usize) -> String) {
    if pages <= 1 {
        return;
    }
    out.push_str("<nav class=\"pager\" aria-label=\"Pages\"><ul>");
    if page > 1 {
        let _ = write!(
            out,
            "<li><a rel=\"prev\" href=\"{}\">← Newer entries</a></li>",
            esc(&url(page - 1))
        );
    }
    let _ = write!(out, "<li>Page {page} of {pages}</li>");
    if page < pages {
        let _ = write!(
            out,
            "<li><a rel=\"next\" href=\"{}\">Older entries →</a></li>",
            esc(&url(page + 1))
        );
    }
    out.push_str("</ul></nav>\n");
}

/// "1 article", "2 articles".
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What portals and link previews read from an article page: a canonical link, Open Graph
/// and `article:` properties, a Twitter card, and a schema.org `NewsArticle` in JSON-LD
/// (escaped so no title can end the script early).
fn page_metadata(a: &Article, cfg: &Config, summary: &str) -> String {
    let page = cfg.url(&a.page_path());
    let mut out = String::with_capacity(2048);
    let mut meta = |property: &str, content: &str| {
        let _ = writeln!(
            out,
            "<meta property=\"{property}\" content=\"{}\">",
            esc(content)
        );
    };
    meta("og:type", "article");
    meta("og:title", &a.title);
    meta("og:url", &page);
    meta("og:site_name", &cfg.site.title);
    if !summary.is_empty() {
        meta("og:description", summary);
    }
    if let Some(image) = a.image.as_deref() {
        meta("og:image", &image.url);
        if let (Some(w), Some(h)) = (image.width, image.height) {
            meta("og:image:width", &w.to_string());
            meta("og:image:height", &h.to_string());
        }
    }
    meta("article:published_time", &dates::rfc3339(a.published));
    meta("article:modified_time", &dates::rfc3339(a.updated));
    for c in &a.categories {
        meta("article:section", &c.name);
    }
    for t in &a.tags {
        meta("article:tag", &t.name);
    }
    let card = if a.image.is_some() {
        "summary_large_image"
    } else {
        "summary"
    };
    let _ = writeln!(out, "<meta name=\"twitter:card\" content=\"{card}\">");
    let _ = writeln!(out, "<link rel=\"canonical\" href=\"{}\">", esc(&page));
    let ld = serde_json::json!({
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": a.title,
        "description": summary,
        "datePublished": dates::rfc3339(a.published),
        "dateModified": dates::rfc3339(a.updated),
        "author": a.authors.iter().map(|p| serde_json::json!({"@type": "Person", "name": p.name})).collect::<Vec<_>>(),
        "image": a.image.as_deref().map(|m| vec![m.url.clone()]).unwrap_or_default(),
        "publisher": {"@type": "Organization", "name": cfg.site.title},
        "mainEntityOfPage": {"@type": "WebPage", "@id": page},
        "url": page,
    });
    let _ = writeln!(
        out,
        "<script type=\"application/ld+json\">{}</script>",
        script_safe_json(&ld.to_string())
    );
    out
}

/// JSON that cannot end a `<script>` early or break a JavaScript string: `<`, `>`, `&` and
/// U+2028/U+2029 as `\u` escapes (the same JSON to a parser).
fn script_safe_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn date_html(d: chrono::DateTime<chrono::FixedOffset>) -> String {
    use chrono::Datelike;
    // Formatted by hand: `format("%Y-%m-%d")` parses its pattern on every call, once per page.
    format!(
        "<time datetime=\"{}\">{:04}-{:02}-{:02}</time>",
        dates::rfc3339(d),
        d.year(),
        d.month(),
        d.day()
    )
}

pub(super) fn article_page(a: &Article, cfg: &Config) -> String {
    let (content, summary) = a.texts();
    let mut out = String::with_capacity(content.len() + 8192);
    open_page(
        &mut out,
        cfg,
        &format!("{} — {}", a.title, cfg.site.title),
        &summary,
        &[],
        &page_metadata(a, cfg, &summary),
    );
    let _ = write!(
        out,
        "<article>\n<h1>{}</h1>\n<p class=\"meta\">{}",
        esc(&a.title),
        date_html(a.published)
    );
    if a.updated > a.published {
        let _ = write!(out, " · updated {}", date_html(a.updated));
    }
    if !a.authors.is_empty() {
        let names: Vec<String> = a
            .authors
            .iter()
            .map(|p| esc(&p.name).into_owned())
            .collect();
        let _ = write!(out, " · {}", names.join(", "));
    }
    out.push_str("</p>\n");
    if let Some(image) = a.image.as_deref() {
        // Shown when the body does not show it already.
        if !content.contains(&*esc(&image.url)) {
            let _ = writeln!(
                out,
                "<figure class=\"featured\"><img src=\"{}\" alt=\"\"></figure>",
                esc(&image.url)
            );
        }
    }
    out.push_str(&content);
    out.push('\n');
    if let Some(link) = &a.link {
        let _ = writeln!(
            out,
            "<p><a href=\"{}\">Read the original article</a></p>",
            esc(link)
        );
    }
    for (section, label, terms) in [
        ("categories", "Categories", &a.categories),
        ("tags", "Tags", &a.tags),
    ] {
        if terms.is_empty() {
            continue;
        }
        let links: Vec<String> = terms
            .iter()
            .map(|t| {
                format!(
                    "<a href=\"{}\">{}</a>",
                    esc(&cfg.url(&format!("{section}/{}/", t.slug))),
                    esc(&t.name)
                )
            })
            .collect();
        let _ = writeln!(out, "<p class=\"meta\">{label}: {}</p>", links.join(" · "));
    }
    out.push_str("</article>\n");
    close_page(&mut out, cfg);
    out
}

/// How many categories and tags the index shows of each (the most used).
const TOP_TERMS: usize = 20;

/// Terms a page of `/categories/` or `/tags/` lists.
pub const TERMS_PER_PAGE: usize = 200;

/// The index: the newest entries, a link to older pages, how to subscribe, and the most
/// used categories and tags with links to the lists of all of them.
pub(super) fn index_page(views: &Views, specs: &[FeedSpec], cfg: &Config) -> String {
    let mut out = String::with_capacity(32 * 1024);
    open_page(
        &mut out,
        cfg,
        &cfg.site.title,
        &cfg.site.description,
        &[],
        "",
    );
    let _ = writeln!(out, "<h1>{}</h1>", esc(&cfg.site.title));
    if !cfg.site.description.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", esc(&cfg.site.description));
    }
    if let Some(main) = specs.first() {
        subscribe_box(&mut out, main, cfg);
    }
    let _ = writeln!(
        out,
        "<section aria-labelledby=\"latest\">\n<h2 id=\"latest\">Latest articles</h2>\n<p class=\"count\">{}</p>",
        count(views.total, "article", "articles")
    );
    entry_list(
        &mut out,
        &views.all[..views.all.len().min(cfg.feed.entries)],
        cfg,
        3,
    );
    let pages = html_pages(views.total, cfg.feed.entries);
    pager(&mut out, 1, pages, |k| html_page_url(cfg, "", k));
    out.push_str("</section>\n");
    for (section, title, noun) in [
        ("categories", "Categories", "categories"),
        ("tags", "Tags", "tags"),
    ] {
        let terms = by_count(specs, section);
        if terms.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<section aria-labelledby=\"{section}\">\n<h2 id=\"{section}\">{title}</h2>\n<ol class=\"terms\">"
        );
        for spec in terms.iter().take(TOP_TERMS) {
            term_item(&mut out, spec, cfg);
        }
        let _ = writeln!(
            out,
            "</ol>\n<p><a href=\"{}\">All {} {noun}</a></p>\n</section>",
            esc(&cfg.url(&format!("{section}/"))),
            terms.len()
        );
    }
    close_page(&mut out, cfg);
    out
}

/// One term in a list: its page, and how many articles it has.
fn term_item(out: &mut String, spec: &FeedSpec, cfg: &Config) {
    let _ = writeln!(
        out,
        "<li><a href=\"{}\">{}</a> <span class=\"count\">({})</span></li>",
        esc(&cfg.url(&spec.dir)),
        esc(&spec.name),
        spec.total
    );
}

/// The term feeds of `section` ("categories" or "tags"), the most used first (then by name).
pub(super) fn by_count<'s, 'a>(specs: &'s [FeedSpec<'a>], section: &str) -> Vec<&'s FeedSpec<'a>> {
    let mut terms: Vec<&FeedSpec> = specs
        .iter()
        .filter(|s| {
            s.dir
                .strip_prefix(section)
                .is_some_and(|r| r.starts_with('/'))
        })
        .collect();
    terms.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.name.cmp(&b.name)));
    terms
}

/// Page `page` (1-based) of the list of every category or tag (`section`), `terms` sorted
/// by [`by_count`], [`TERMS_PER_PAGE`] a page.
pub(super) fn term_list(section: &str, terms: &[&FeedSpec], page: usize, cfg: &Config) -> String {
    let (title, one, many) = if section == "categories" {
        ("Categories", "category", "categories")
    } else {
        ("Tags", "tag", "tags")
    };
    let pages = html_pages(terms.len(), TERMS_PER_PAGE);
    let heading = if page > 1 {
        format!("{title}, page {page} of {pages}")
    } else {
        title.to_string()
    };
    let mut out = String::with_capacity(4096 + terms.len().min(TERMS_PER_PAGE) * 160);
    open_page(
        &mut out,
        cfg,
        &format!("{heading} — {}", cfg.site.title),
        "",
        &[],
        "",
    );
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p class=\"count\">{}, the most used first</p>\n<ol class=\"terms\" start=\"{}\">",
        esc(&heading),
        count(terms.len(), one, many),
        (page - 1) * TERMS_PER_PAGE + 1
    );
    let start = ((page - 1) * TERMS_PER_PAGE).min(terms.len());
    for spec in &terms[start..(start + TERMS_PER_PAGE).min(terms.len())] {
        term_item(&mut out, spec, cfg);
    }
    out.push_str("</ol>\n");
    pager(&mut out, page, pages, |k| {
        html_page_url(cfg, &format!("{section}/"), k)
    });
    close_page(&mut out, cfg);
    out
}

/// A view's HTML page `spec.page`: the whole site's older pages, or a category's or tag's
/// pages (its name, subscribe links, autodiscovery for its feeds, entries, older pages).
pub(super) fn list_page(spec: &FeedSpec, cfg: &Config) -> String {
    let pages = html_pages(spec.total, cfg.feed.entries);
    let (kicker, name) = if spec.name.is_empty() {
        ("", cfg.site.title.as_str())
    } else if spec.dir.starts_with("categories/") {
        ("Category", spec.name.as_str())
    } else {
        ("Tag", spec.name.as_str())
    };
    let heading = if spec.page > 1 {
        format!("{name}, page {} of {pages}", spec.page)
    } else {
        name.to_string()
    };
    let mut out = String::with_capacity(8192 + spec.entries.len() * 600);
    let title = if spec.name.is_empty() {
        heading.clone()
    } else {
        format!("{kicker}: {heading} — {}", cfg.site.title)
    };
    open_page(&mut out, cfg, &title, &spec.description, &[spec], "");
    if !kicker.is_empty() {
        let _ = writeln!(out, "<p class=\"kicker\">{kicker}</p>");
    }
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p class=\"count\">{}</p>",
        esc(&heading),
        count(spec.total, "article", "articles")
    );
    subscribe_box(&mut out, spec, cfg);
    let _ = writeln!(
        out,
        "<section aria-labelledby=\"entries\">\n<h2 id=\"entries\">{}</h2>",
        if spec.page > 1 {
            "Older articles"
        } else {
            "Latest articles"
        }
    );
    entry_list(&mut out, &spec.entries, cfg, 3);
    pager(&mut out, spec.page, pages, |k| {
        html_page_url(cfg, &spec.dir, k)
    });
    out.push_str("</section>\n");
    close_page(&mut out, cfg);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_ld_cannot_end_its_script_or_a_javascript_string() {
        let json = serde_json::json!({"t": "a</script><b>&\u{2028}\u{2029}"}).to_string();
        let safe = script_safe_json(&json);
        for bad in ["<", ">", "&", "\u{2028}", "\u{2029}"] {
            assert!(!safe.contains(bad), "{safe}");
        }
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["t"], "a</script><b>&\u{2028}\u{2029}");
    }
}
