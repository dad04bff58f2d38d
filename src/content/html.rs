//! HTML articles: metadata from `<title>`/`og:title`, `<meta>` description, author,
//! keywords, `article:published_time`/`modified_time`/`section`/`tag`; the body from
//! `<article>`, else `<main>`, else `<body>`. The body is sanitised later, with the others.

use std::sync::OnceLock;

use scraper::{ElementRef, Html, Node, Selector};

use super::{split_keywords, Body, Parsed};

struct Selectors {
    og_title: Selector,
    title: Selector,
    h1: Selector,
    description: Selector,
    author: Selector,
    keywords: Selector,
    tags: Selector,
    section: Selector,
    published: Selector,
    modified: Selector,
    time: Selector,
    canonical: Selector,
    containers: [Selector; 3],
}

fn selectors() -> &'static Selectors {
    static S: OnceLock<Selectors> = OnceLock::new();
    S.get_or_init(|| {
        // The selectors are literals: parsing them cannot fail.
        let s = |css: &str| Selector::parse(css).expect("valid selector literal");
        Selectors {
            og_title: s(r#"meta[property="og:title"]"#),
            title: s("title"),
            h1: s("h1"),
            description: s(r#"meta[name="description" i], meta[property="og:description"]"#),
            author: s(r#"meta[name="author" i], meta[property="article:author"]"#),
            keywords: s(r#"meta[name="keywords" i]"#),
            tags: s(r#"meta[property="article:tag"]"#),
            section: s(r#"meta[property="article:section"]"#),
            published: s(
                r#"meta[property="article:published_time"], meta[name="date" i], meta[itemprop="datePublished"], meta[name="pubdate" i]"#,
            ),
            modified: s(r#"meta[property="article:modified_time"], meta[itemprop="dateModified"]"#),
            time: s("article time[datetime], time[pubdate]"),
            canonical: s(r#"link[rel="canonical"]"#),
            containers: [s("article"), s("main"), s("body")],
        }
    })
}

fn meta(doc: &Html, sel: &Selector) -> Option<String> {
    doc.select(sel)
        .filter_map(|e| e.value().attr("content"))
        .map(|c| c.trim().to_string())
        .find(|c| !c.is_empty())
}

fn element_text(doc: &Html, sel: &Selector) -> Option<String> {
    doc.select(sel)
        .map(|e| crate::text::collapse_whitespace(&e.text().collect::<String>()))
        .find(|t| !t.is_empty())
}

pub(super) fn parse(input: &str) -> Parsed {
    let s = selectors();
    let doc = Html::parse_document(input);
    let title = meta(&doc, &s.og_title)
        .or_else(|| element_text(&doc, &s.title))
        .or_else(|| element_text(&doc, &s.h1));
    let container = s.containers.iter().find_map(|sel| doc.select(sel).next());
    let (html, text) = match container {
        Some(el) => (el.inner_html(), visible_text(el)),
        None => (String::new(), String::new()),
    };
    let mut tags = meta(&doc, &s.keywords)
        .map(|k| split_keywords(&k))
        .unwrap_or_default();
    tags.extend(
        doc.select(&s.tags)
            .filter_map(|e| e.value().attr("content"))
            .map(str::to_string),
    );
    let date = meta(&doc, &s.published).or_else(|| {
        doc.select(&s.time)
            .filter_map(|e| e.value().attr("datetime"))
            .map(str::to_string)
            .next()
    });
    Parsed {
        title,
        date,
        updated: meta(&doc, &s.modified),
        authors: meta(&doc, &s.author).into_iter().collect(),
        summary: meta(&doc, &s.description),
        body: Body::Html { html, text },
        categories: meta(&doc, &s.section).into_iter().collect(),
        tags,
        link: doc
            .select(&s.canonical)
            .filter_map(|e| e.value().attr("href"))
            .find(|h| h.starts_with("http://") || h.starts_with("https://"))
            .map(str::to_string),
        id: None,
        draft: false,
    }
}

/// The visible text of a metadata value that contains markup ("<b>Title</b>" → "Title",
/// script and style content dropped). Values without a tag-like `<` are returned as is, so
/// "a < b" stays intact.
pub(super) fn strip_tags(value: &str) -> std::borrow::Cow<'_, str> {
    let has_tag = value.match_indices('<').any(|(i, _)| {
        value[i + 1..]
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?')
    });
    if !has_tag {
        return std::borrow::Cow::Borrowed(value);
    }
    let frag = Html::parse_fragment(value);
    std::borrow::Cow::Owned(visible_text(frag.root_element()))
}

/// Text a reader would see: no script, style, template or noscript content.
fn visible_text(el: ElementRef) -> String {
    let mut out = String::new();
    let mut stack = vec![*el];
    while let Some(node) = stack.pop() {
        match node.value() {
            Node::Text(t) => {
                out.push_str(t);
                out.push(' ');
            }
            Node::Element(e)
                if matches!(e.name(), "script" | "style" | "template" | "noscript") =>
            {
                continue
            }
            _ => {}
        }
        // Children in document order: push reversed.
        let children: Vec<_> = node.children().collect();
        stack.extend(children.into_iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<!doctype html><html><head><title>Site | Page title</title>
<meta property="og:title" content="Page title">
<meta name="description" content="A summary.">
<meta name="author" content="Li Wei">
<meta name="keywords" content="trade, economy">
<meta property="article:published_time" content="2016-03-01T08:00:00+08:00">
<meta property="article:section" content="Business">
</head><body><nav>menu</nav><article><h1>Page title</h1><p>Hello <b>world</b>.</p><script>evil()</script></article></body></html>"#;

    #[test]
    fn metadata_and_article_body() {
        let p = parse(PAGE);
        assert_eq!(p.title.as_deref(), Some("Page title"));
        assert_eq!(p.summary.as_deref(), Some("A summary."));
        assert_eq!(p.authors, ["Li Wei"]);
        assert_eq!(p.tags, ["trade", "economy"]);
        assert_eq!(p.categories, ["Business"]);
        assert_eq!(p.date.as_deref(), Some("2016-03-01T08:00:00+08:00"));
        match p.body {
            Body::Html { html, text } => {
                assert!(html.contains("<p>Hello <b>world</b>.</p>") && !html.contains("menu"));
                assert!(text.contains("Hello") && !text.contains("evil"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn title_element_and_body_fallback() {
        let p = parse("<html><head><title> Only title </title></head><body><p>x</p></body></html>");
        assert_eq!(p.title.as_deref(), Some("Only title"));
        assert!(matches!(p.body, Body::Html { ref html, .. } if html.contains("<p>x</p>")));
    }

    #[test]
    fn tags_are_stripped_from_metadata() {
        assert_eq!(
            crate::text::collapse_whitespace(&strip_tags("<script>alert(1)</script> Injection")),
            "Injection"
        );
        assert_eq!(
            crate::text::collapse_whitespace(&strip_tags("<b>Bold</b> title")),
            "Bold title"
        );
        assert_eq!(strip_tags("a < b and c<3"), "a < b and c<3");
    }

    #[test]
    fn garbage_does_not_panic() {
        let p = parse("<<<>>><title></title><meta content>");
        assert!(p.title.is_none());
    }
}
