//! HTML articles: metadata from `<title>`/`og:title`, `<meta>` description, author,
//! keywords, `article:published_time`/`modified_time`/`section`/`tag`; the body from
//! `<article>`, else `<main>`, else `<body>`. The body is sanitised later, with the others.

use std::sync::OnceLock;

use scraper::{ElementRef, Html, Node, Selector};

use super::{split_keywords, Body, Parsed};

struct Selectors {
    og_title: Selector,
    og_image: Selector,
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
            og_image: s(r#"meta[property="og:image"], meta[name="twitter:image"]"#),
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
        image: meta(&doc, &s.og_image),
        enclosure: None,
        draft: false,
        markup: true,
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
    if too_complex(value) {
        // Not worth a parser's time (see `too_complex`): every `<…>` goes.
        let mut out = String::with_capacity(value.len());
        let mut rest = value;
        while let Some(open) = rest.find('<') {
            out.push_str(&rest[..open]);
            rest = rest[open..]
                .find('>')
                .map_or("", |close| &rest[open + close + 1..]);
            out.push(' ');
        }
        out.push_str(rest);
        return std::borrow::Cow::Owned(out);
    }
    let frag = Html::parse_fragment(value);
    std::borrow::Cow::Owned(visible_text(frag.root_element()))
}

/// How deep elements may nest before herald refuses to parse the HTML: the depth at which
/// Chromium's parser stops nesting. No real article comes close.
pub const MAX_DEPTH: usize = 512;

/// How many attributes one element may have before herald refuses to parse the HTML.
pub const MAX_ATTRIBUTES: usize = 1024;

/// Escaping work the HTML serializer may do, in bytes scanned: html5ever's
/// `write_escaped` scans from each `&` (or U+0080–U+00BF character) to the next `<` or `>`,
/// so a text run with many of them is quadratic (500 000 `&amp;` took 8 s, the same as
/// Markdown `a&b` 15 s). About a tenth of a second of scanning.
pub const MAX_ESCAPE_WORK: u64 = 1 << 31;

/// True when parsing `html` (and serializing it again) would take html5ever (under scraper
/// and ammonia) time out of all proportion to its size. It has four ways, all quadratic:
/// - nesting: it checks scopes by walking the stack of open elements, so 100 000 nested
///   `<div>`s (one megabyte) take over a minute; more than [`MAX_DEPTH`] is refused. Ruby
///   annotations (`rt`, `rp`, `rb`, `rtc`) close by themselves only inside `<ruby>`;
///   elsewhere they nest;
/// - attributes: each is compared with the element's others, so one element with 300 000
///   attributes takes 47 s; more than [`MAX_ATTRIBUTES`] on one element is refused, also in a
///   tag that never ends;
/// - escaping text (see [`MAX_ESCAPE_WORK`]).
///
/// Counted in one pass, following the tokenizer where it matters (a comment also ends at
/// `--!>`, and `<!-->` is a whole comment) and on the safe side for real pages: start tags
/// minus end tags, leaving out void elements, elements whose end tag is optional (an
/// unclosed `<p>` or `<li>` is closed by the next one), self-closed elements inside SVG or
/// MathML, comments, and the text of script, style and the other raw-text elements.
pub fn too_complex(html: &str) -> bool {
    let b = html.as_bytes();
    if escape_work(b) > MAX_ESCAPE_WORK {
        return true;
    }
    let (mut depth, mut foreign) = (0usize, 0usize);
    // The depth at which each open `<ruby>` started.
    let mut ruby: Vec<usize> = Vec::new();
    let mut i = 0;
    while let Some(lt) = memchr::memchr(b'<', &b[i..]) {
        let at = i + lt + 1;
        if b[at..].starts_with(b"!--") {
            let body = at + 3;
            // `<!-->` and `<!--->` are whole (empty) comments.
            if b[body..].starts_with(b">") || b[body..].starts_with(b"->") {
                i = body + 1;
                continue;
            }
            let end = [&b"-->"[..], b"--!>"]
                .iter()
                .filter_map(|e| memchr::memmem::find(&b[body..], e).map(|k| body + k + e.len()))
                .min();
            match end {
                Some(end) => i = end,
                None => break,
            }
            continue;
        }
        let closing = b.get(at) == Some(&b'/');
        let start = at + usize::from(closing);
        let len = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-')
            .count();
        if len == 0 || !b[start].is_ascii_alphabetic() {
            i = at;
            continue;
        }
        let name = &b[start..start + len];
        let (end, attributes) = tag_end(b, start + len);
        if attributes > MAX_ATTRIBUTES {
            return true;
        }
        let Some(end) = end else {
            break;
        };
        let self_closed = b[end - 2] == b'/';
        let is = |names: &[&str]| {
            names
                .iter()
                .any(|n| n.as_bytes().eq_ignore_ascii_case(name))
        };
        i = end;
        if is(&["svg", "math"]) && !self_closed {
            if closing {
                foreign = foreign.saturating_sub(1);
            } else {
                foreign += 1;
            }
        }
        if is(&["ruby"]) {
            if closing {
                // Whatever its annotations left open is closed with it.
                depth = ruby.pop().unwrap_or(depth.saturating_sub(1));
            } else {
                ruby.push(depth);
                depth += 1;
            }
            continue;
        }
        let ruby_part = is(RUBY_PARTS);
        if is(VOID)
            || (is(OPTIONAL_END) && !ruby_part)
            || (ruby_part && !ruby.is_empty())
            || (self_closed && foreign > 0)
        {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        if is(RAW_TEXT) {
            // Skip to this element's end tag: what is inside is text, not tags.
            let mut close = Vec::with_capacity(len + 2);
            close.extend_from_slice(b"</");
            close.extend(name.iter().map(u8::to_ascii_lowercase));
            let lower_from = |from: usize| {
                b[from..]
                    .windows(close.len())
                    .position(|w| w.eq_ignore_ascii_case(&close))
                    .map(|p| from + p)
            };
            match lower_from(end) {
                Some(p) => i = p,
                None => break,
            }
            continue;
        }
        depth += 1;
        if depth > MAX_DEPTH {
            return true;
        }
    }
    false
}

/// An upper bound of what html5ever's serializer scans to escape the text of `b`: for each
/// `&` or `0xC2` byte, the distance to the next `<` or `>` (or the end).
fn escape_work(b: &[u8]) -> u64 {
    let mut work = 0u64;
    let mut run_start = 0;
    let mut escapes = 0u64;
    for (k, &c) in b.iter().enumerate() {
        match c {
            b'<' | b'>' => {
                work += escapes * (k - run_start) as u64;
                run_start = k + 1;
                escapes = 0;
            }
            b'&' | 0xC2 => escapes += 1,
            _ => {}
        }
    }
    work + escapes * (b.len() - run_start) as u64
}

/// Where the tag whose attributes start at `from` ends (just past its `>`, quoted values
/// respected; None when it never does) and how many attributes it has (up to its end or
/// the end of the input).
fn tag_end(b: &[u8], from: usize) -> (Option<usize>, usize) {
    let (mut attributes, mut quote) = (0, None);
    // In a name, after its `=`, in an unquoted value.
    let (mut in_name, mut after_eq, mut in_value) = (false, false, false);
    for (k, &c) in b[from..].iter().enumerate() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'>' => return (Some(from + k + 1), attributes),
            c if c.is_ascii_whitespace() => (in_name, in_value) = (false, false),
            _ if in_value => {}
            b'=' if in_name => (in_name, after_eq) = (false, true),
            b'"' | b'\'' if after_eq => (quote, after_eq) = (Some(c), false),
            _ if after_eq => (in_value, after_eq) = (true, false),
            b'/' => in_name = false,
            _ if !in_name => (attributes, in_name) = (attributes + 1, true),
            _ => {}
        }
    }
    (None, attributes)
}

/// Ruby annotation parts: their end tags are optional inside `<ruby>` only.
const RUBY_PARTS: &[&str] = &["rb", "rt", "rtc", "rp"];
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr", "basefont", "bgsound", "frame", "image",
];
const OPTIONAL_END: &[&str] = &[
    "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot",
    "colgroup", "caption", "rb", "rt", "rtc", "rp", "html", "head", "body",
];
const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
];

/// Text a reader would see: no script, style, template or noscript content. Inline
/// elements join their text as a browser renders it ("a <a>link</a>." → "a link."); every
/// other element is set apart by white space, which the summary collapses.
fn visible_text(el: ElementRef) -> String {
    enum Step<N> {
        Enter(N),
        /// The end of a block element.
        Leave,
    }
    let mut out = String::new();
    let mut stack = vec![Step::Enter(*el)];
    while let Some(step) = stack.pop() {
        let Step::Enter(node) = step else {
            out.push(' ');
            continue;
        };
        match node.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e)
                if matches!(e.name(), "script" | "style" | "template" | "noscript") =>
            {
                continue
            }
            Node::Element(e) if !INLINE.contains(&e.name()) => {
                out.push(' ');
                stack.push(Step::Leave);
            }
            _ => {}
        }
        // Children in document order: push reversed.
        stack.extend(node.children().rev().map(Step::Enter));
    }
    out
}

/// Elements whose text runs on with the text around them.
const INLINE: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font", "i",
    "ins", "kbd", "label", "mark", "q", "rb", "rp", "rt", "ruby", "s", "samp", "small", "span",
    "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "wbr",
];

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

    #[test]
    fn nesting_depth_is_counted_like_a_parser_would_nest() {
        let n = MAX_DEPTH + 1;
        let deep = |open: &str| open.repeat(n);
        // Nested elements, however written.
        for html in [
            deep("<div>"),
            deep("<DIV class='a>b'>"),
            deep("<div/>"),
            deep("<span><blockquote>"),
            format!("<svg></svg>{}", deep("<div>")),
        ] {
            assert!(too_complex(&html), "{}", &html[..40]);
        }
        // What does not nest: closed elements, void elements, optional end tags, self-closed
        // SVG, comments, script text, text that only looks like markup.
        for html in [
            "<div>x</div>".repeat(n),
            deep("<br>") + &deep("<img src=x>") + &deep("<hr/>"),
            deep("<p>x") + &deep("<li>y") + &deep("<tr><td>z"),
            format!("<svg>{}</svg>", deep("<path d='M0'/>")),
            format!("<!--{}-->", deep("<div>")),
            format!(
                "<script>{}</script><style>{}</style>",
                deep("<div>"),
                deep("<b>")
            ),
            deep("a < b <3 << "),
        ] {
            assert!(!too_complex(&html), "{}", &html[..40]);
        }
        assert!(
            !too_complex(&deep("<div>")[5..]),
            "exactly the limit is allowed"
        );
    }

    #[test]
    fn attributes_are_counted_per_element() {
        let attrs = |n: usize| {
            (0..n)
                .map(|i| format!(" a{i}=\"v>/x\""))
                .collect::<String>()
        };
        assert!(too_complex(&format!(
            "<p{}>x</p>",
            attrs(MAX_ATTRIBUTES + 1)
        )));
        assert!(too_complex(&format!(
            "<p{}>",
            " a".repeat(MAX_ATTRIBUTES + 1)
        )));
        assert!(!too_complex(&format!("<p{}>x</p>", attrs(MAX_ATTRIBUTES))));
        // Many elements with a few attributes each; values with slashes, spaces, quotes.
        let many = "<a href=/a/b/c/d/e/f/g/h title='x y z' data-x=\"1 2 3\" hidden>y</a>";
        assert!(!too_complex(&many.repeat(10_000)));
        let data = format!(
            "<img src=\"data:image/png;base64,{}\">",
            "QUJD/+".repeat(50_000)
        );
        assert!(!too_complex(&data));
    }

    #[test]
    fn ruby_parts_nest_outside_ruby_only() {
        let n = MAX_DEPTH + 1;
        assert!(too_complex(&"<rt>".repeat(n)));
        assert!(too_complex(&"<rp>x".repeat(n)));
        // Inside ruby they close each other, and `</ruby>` closes what they left open.
        assert!(!too_complex(&"<ruby>a<rt>b<rp>c<rt>d</ruby>".repeat(n)));
        assert!(!too_complex(&format!(
            "<ruby>{}</ruby>",
            "x<rt>y".repeat(n)
        )));
    }

    #[test]
    fn attributes_of_a_tag_that_never_ends_are_counted() {
        assert!(too_complex(&format!(
            "<p{}",
            " a=1".repeat(MAX_ATTRIBUTES + 1)
        )));
        assert!(!too_complex(&format!("<p{}", " a=1".repeat(10))));
    }

    #[test]
    fn comments_end_where_the_tokenizer_ends_them() {
        let deep = "<div>".repeat(MAX_DEPTH + 1);
        assert!(too_complex(&format!("<!-- x --!>{deep}")));
        assert!(too_complex(&format!("<!-->{deep}")));
        assert!(too_complex(&format!("<!--->{deep}")));
        assert!(!too_complex(&format!("<!-- {deep} -->")));
    }

    #[test]
    fn text_that_is_slow_to_escape_is_refused() {
        assert!(too_complex(&"&amp;".repeat(500_000)));
        assert!(too_complex(&"\u{a9}x".repeat(500_000)));
        // The same escapes in paragraphs are cheap.
        assert!(!too_complex(
            &"<p>AT&amp;T &copy; &lt;b&gt;</p>".repeat(100_000)
        ));
        assert_eq!(escape_work(b"a&b<&&x>"), 3 + 2 * 3);
    }

    #[test]
    fn deeply_nested_tags_in_a_line_are_stripped_without_a_parser() {
        let line = format!("{}Title{}", "<b>".repeat(100_000), "</b>".repeat(100_000));
        assert_eq!(strip_tags(&line).trim(), "Title");
    }
}
