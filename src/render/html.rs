//! The two kinds of HTML page: one clean, readable page per article, and the index with the
//! newest entries, feed autodiscovery `<link>`s, and sections listing every category and
//! tag feed. Everything interpolated is escaped; article bodies are already sanitised.

use std::fmt::Write;

use super::FeedSpec;
use crate::config::Config;
use crate::dates;
use crate::index::Views;
use crate::model::Article;
use crate::text::escape_html as esc;

const STYLE: &str = "body{max-width:42rem;margin:2rem auto;padding:0 1rem;font:1.05rem/1.6 system-ui,sans-serif;color:#222}\
a{color:#0645ad}img{max-width:100%;height:auto}header,footer{color:#555;font-size:.9rem}\
h1{line-height:1.25}ul.entries{list-style:none;padding:0}ul.entries li{margin:0 0 1.2rem}\
.meta{color:#666;font-size:.85rem}pre{overflow:auto}";

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

fn head(out: &mut String, cfg: &Config, title: &str, description: &str) {
    head_with(out, cfg, title, description, "");
}

/// [`head`] with more elements (`extra`, already HTML) before the style.
fn head_with(out: &mut String, cfg: &Config, title: &str, description: &str, extra: &str) {
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
    for (ext, mime, label) in [
        ("atom", "application/atom+xml", "Atom"),
        ("rss", "application/rss+xml", "RSS"),
        ("json", "application/feed+json", "JSON Feed"),
    ] {
        let _ = writeln!(
            out,
            "<link rel=\"alternate\" type=\"{mime}\" title=\"{} ({label})\" href=\"{}\">",
            esc(&cfg.site.title),
            esc(&cfg.url(&format!("feed.{ext}")))
        );
    }
    out.push_str(extra);
    let _ = write!(out, "<style>{STYLE}</style>\n</head>\n<body>\n");
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
    let mut out = String::with_capacity(content.len() + 4096);
    head_with(
        &mut out,
        cfg,
        &format!("{} — {}", a.title, cfg.site.title),
        &summary,
        &page_metadata(a, cfg, &summary),
    );

    let _ = write!(
        out,
        "<header><a href=\"{}\">{}</a></header>\n<main>\n<article>\n<h1>{}</h1>\n<p class=\"meta\">{}",
        esc(&cfg.url("")),
        esc(&cfg.site.title),
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
        let _ = writeln!(out, "<p><a href=\"{}\">Original article</a></p>", esc(link));
    }
    let terms: Vec<String> = a
        .categories
        .iter()
        .map(|t| ("categories", t))
        .chain(a.tags.iter().map(|t| ("tags", t)))
        .map(|(section, t)| {
            format!(
                "<a href=\"{}\">{}</a>",
                esc(&cfg.url(&format!("{section}/{}/feed.atom", t.slug))),
                esc(&t.name)
            )
        })
        .collect();
    if !terms.is_empty() {
        let _ = writeln!(out, "<p class=\"meta\">Feeds: {}</p>", terms.join(" · "));
    }
    out.push_str("</article>\n</main>\n</body>\n</html>\n");
    out
}

pub(super) fn index_page(views: &Views, specs: &[FeedSpec], cfg: &Config) -> String {
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, cfg, &cfg.site.title, &cfg.site.description);
    let _ = write!(
        out,
        "<header><h1>{}</h1><p>{}</p><p><a href=\"{}\">Atom</a> · <a href=\"{}\">RSS</a> · <a href=\"{}\">JSON Feed</a> · <a href=\"{}\">OPML</a></p></header>\n<main>\n<ul class=\"entries\">\n",
        esc(&cfg.site.title),
        esc(&cfg.site.description),
        esc(&cfg.url("feed.atom")),
        esc(&cfg.url("feed.rss")),
        esc(&cfg.url("feed.json")),
        esc(&cfg.url("feeds.opml")),
    );
    for a in views.all.iter().take(cfg.feed.entries) {
        let _ = writeln!(
            out,
            "<li><a href=\"{}\">{}</a><br><span class=\"meta\">{}</span><br>{}</li>",
            esc(&cfg.url(&a.page_path())),
            esc(&a.title),
            date_html(a.published),
            esc(&a.summary())
        );
    }
    out.push_str("</ul>\n");
    for (section, title) in [("categories", "Categories"), ("tags", "Tags")] {
        let in_section: Vec<_> = specs
            .iter()
            .filter(|s| s.dir.starts_with(section))
            .collect();
        if in_section.is_empty() {
            continue;
        }
        let _ = writeln!(out, "<section id=\"{section}\"><h2>{title}</h2>\n<ul>");
        for s in in_section {
            let slug = s.dir.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            let _ = writeln!(
                out,
                "<li id=\"{section}-{}\">{} ({}): <a href=\"{}\">Atom</a> · <a href=\"{}\">RSS</a> · <a href=\"{}\">JSON Feed</a></li>",
                esc(slug),
                esc(&s.name),
                s.total,
                esc(&s.url(cfg, "atom")),
                esc(&s.url(cfg, "rss")),
                esc(&s.url(cfg, "json")),
            );
        }
        out.push_str("</ul></section>\n");
    }
    out.push_str("</main>\n</body>\n</html>\n");
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
