//! Property tests: whatever bytes or strings an article holds, parsing never panics and
//! every rendered feed is well-formed XML (strict parser) or valid JSON.

use herald::content::Format;
use herald::render::Kind;
use proptest::prelude::*;

/// Parses `bytes` as an article in `format` and, when it is usable, checks every output of
/// a site holding it (the same path the fuzz target takes).
fn check_bytes(bytes: &[u8], format: Format) -> Result<(), TestCaseError> {
    let selector = match format {
        Format::Text => 0u8,
        Format::Markdown => 1,
        Format::Html => 2,
    };
    let mut input = vec![selector];
    input.extend_from_slice(bytes);
    let Some(pages) = herald::fuzz_support::render_article_bytes(&input) else {
        return Ok(());
    };
    for (path, page) in pages {
        let text = String::from_utf8(page.body)
            .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
        match page.kind {
            Kind::Json => {
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| TestCaseError::fail(format!("{path}: {e}\n{text}")))?;
            }
            Kind::Html => {
                // The one script is the JSON-LD, which nothing can end early.
                const OPEN: &str = "<script type=\"application/ld+json\">";
                let mut rest = text.as_str();
                if let Some(start) = rest.find(OPEN) {
                    let end = start + rest[start..].find("</script>").unwrap_or(0);
                    let json = &rest[start + OPEN.len()..end];
                    prop_assert!(!json.contains('<'), "{path}: {json}");
                    serde_json::from_str::<serde_json::Value>(json)
                        .map_err(|e| TestCaseError::fail(format!("{path}: {e}\n{json}")))?;
                    rest = &rest[end..];
                }
                prop_assert!(
                    !rest[9.min(rest.len())..].contains("<script"),
                    "{path} has a script: {text}"
                );
            }
            Kind::Text | Kind::Css => {}
            _ => {
                roxmltree::Document::parse(&text)
                    .map_err(|e| TestCaseError::fail(format!("{path}: {e}\n{text}")))?;
            }
        }
    }
    Ok(())
}

/// Strings rich in what breaks feeds: control characters, noncharacters, CDATA ends,
/// markup, separators, CJK, and the scraped format's labels.
fn nasty() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\u{0}",
        "\u{3}",
        "\u{b}",
        "\u{c}",
        "\u{1d}",
        "\u{fffe}",
        "\u{ffff}",
        "\u{feff}",
        "]]>",
        "<![CDATA[",
        "<script>",
        "</p>",
        "&",
        "&amp;",
        "&#12;",
        "<",
        ">",
        "\"",
        "'",
        "\r\n",
        "\r",
        "\n",
        "\n\n",
        "  ",
        "\u{a0}",
        "\u{3000}",
        "新闻",
        "Date:",
        "TypeInfo:",
        "Keywords for the information:",
        "Your present location:",
        ">",
        "---\n",
        "+++\n",
        "# ",
        "title: ",
        "[x](javascript:alert(1))",
        "<img src=x onerror=y>",
        "2015-12-24",
        "word",
    ]);
    prop::collection::vec(
        prop_oneof![pieces.prop_map(str::to_string), any::<String>()],
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_break_a_feed(bytes in prop::collection::vec(any::<u8>(), 0..1024), f in 0..3usize) {
        let format = [Format::Text, Format::Markdown, Format::Html][f];
        check_bytes(&bytes, format)?;
    }

    #[test]
    fn arbitrary_strings_never_break_a_feed(title in nasty(), body in nasty(), tag in nasty()) {
        let scraped = format!("Your present location:Home > {title}\n{title}\nNumber of visits: Date:{body}\n  {body}\nTypeInfo: {tag}\nKeywords for the information:{tag}\n");
        check_bytes(scraped.as_bytes(), Format::Text)?;
        let yaml = format!("---\ntitle: {title:?}\ntags: [{tag:?}]\n---\n{body}\n");
        check_bytes(yaml.as_bytes(), Format::Markdown)?;
        let md = format!("# {title}\n\n{body}\n");
        check_bytes(md.as_bytes(), Format::Markdown)?;
        let html = format!("<html><head><title>{title}</title><meta name=keywords content=\"{tag}\"></head><body><article>{body}</article></body></html>");
        check_bytes(html.as_bytes(), Format::Html)?;
        check_bytes(format!("{title}\n\n{body}").as_bytes(), Format::Text)?;
    }
}
