//! Markdown with optional YAML (`---`) or TOML (`+++`) front matter.
//!
//! Front matter keys: title, date, updated, author(s), summary/description, categories,
//! tags, draft, link, id (plus Zola-style `taxonomies`). Unknown keys are ignored, since
//! other generators' files carry many. Without a title, the first heading is the title.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{split_keywords, Body, Parsed};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct FrontMatter {
    title: Option<Scalar>,
    date: Option<Scalar>,
    published: Option<Scalar>,
    updated: Option<Scalar>,
    lastmod: Option<Scalar>,
    author: Option<OneOrMany>,
    authors: Option<OneOrMany>,
    summary: Option<Scalar>,
    description: Option<Scalar>,
    categories: Option<OneOrMany>,
    category: Option<OneOrMany>,
    tags: Option<OneOrMany>,
    keywords: Option<OneOrMany>,
    taxonomies: Option<Taxonomies>,
    draft: Option<Scalar>,
    link: Option<Scalar>,
    id: Option<Scalar>,
    image: Option<Scalar>,
    enclosure: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Taxonomies {
    categories: Option<OneOrMany>,
    tags: Option<OneOrMany>,
}

/// Any scalar, so `title: 2015` or an unquoted TOML date are not errors. Deserialised by
/// [`ScalarVisitor`] (an untagged enum would buffer every value and try each variant in turn:
/// a quarter of the front matter's time).
#[derive(Debug)]
enum Scalar {
    Datetime(toml::value::Datetime),
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Datetime(d) => d.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }

    fn is_true(&self) -> bool {
        match self {
            Scalar::Bool(b) => *b,
            Scalar::Str(s) => matches!(
                s.trim().to_ascii_lowercase().as_str(),
                "true" | "yes" | "on" | "1"
            ),
            Scalar::Int(i) => *i != 0,
            _ => false,
        }
    }
}

#[derive(Debug)]
enum OneOrMany {
    Many(Vec<Scalar>),
    One(Scalar),
}

/// Takes whatever scalar the format has.
struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string, number, boolean or date")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }

    /// A TOML date or time reaches a visitor as a one-entry map: its own type reads it.
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Scalar, A::Error> {
        toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(Scalar::Datetime)
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A list of scalars, or one scalar.
struct OneOrManyVisitor;

impl<'de> Visitor<'de> for OneOrManyVisitor {
    type Value = OneOrMany;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list, or a string, number, boolean or date")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
        let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(s) = seq.next_element()? {
            all.push(s);
        }
        Ok(OneOrMany::Many(all))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_bool(v).map(OneOrMany::One)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_i64(v).map(OneOrMany::One)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_u64(v).map(OneOrMany::One)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_f64(v).map(OneOrMany::One)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_str(v).map(OneOrMany::One)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_string(v).map(OneOrMany::One)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<OneOrMany, A::Error> {
        ScalarVisitor.visit_map(map).map(OneOrMany::One)
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OneOrMany, D::Error> {
        d.deserialize_any(OneOrManyVisitor)
    }
}

impl OneOrMany {
    /// A list as given; one string is split like a keywords line ("a, b").
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::Many(v) => v.into_iter().map(Scalar::into_string).collect(),
            OneOrMany::One(s) => split_keywords(&s.into_string()),
        }
    }

    fn into_names(self) -> Vec<String> {
        match self {
            OneOrMany::Many(v) => v.into_iter().map(Scalar::into_string).collect(),
            OneOrMany::One(s) => vec![s.into_string()],
        }
    }
}

/// Splits front matter from the body: `---` … `---`/`...` is YAML, `+++` … `+++` TOML.
fn split_front_matter(input: &str) -> (Option<(&str, bool)>, &str) {
    for (fence, is_toml) in [("---", false), ("+++", true)] {
        let Some(rest) = input.strip_prefix(fence) else {
            continue;
        };
        let Some(rest) = rest
            .strip_prefix('\n')
            .or_else(|| rest.trim_start_matches([' ', '\t']).strip_prefix('\n'))
        else {
            continue;
        };
        let mut offset = 0;
        for line in rest.split_inclusive('\n') {
            let t = line.trim_end();
            if t == fence || (!is_toml && t == "...") {
                return (
                    Some((&rest[..offset], is_toml)),
                    &rest[offset + line.len()..],
                );
            }
            offset += line.len();
        }
        // An opening fence with no closing one: not front matter.
    }
    (None, input)
}

pub(super) fn parse(input: &str) -> Result<Parsed, String> {
    let (front, body) = split_front_matter(input);
    let fm: FrontMatter = match front {
        None => FrontMatter::default(),
        Some((text, _)) if text.trim().is_empty() => FrontMatter::default(),
        Some((text, true)) => toml::from_str(text)
            .map_err(|e| format!("invalid TOML front matter: {}", one_line(&e.to_string())))?,
        Some((text, false)) => serde_saphyr::from_str(text).map_err(|e| {
            format!(
                "invalid YAML front matter (lines counted from the line after ---): {}",
                one_line(&e.to_string())
            )
        })?,
    };
    let rendered = render(body, fm.title.is_none());
    let mut categories: Vec<String> = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    for c in [fm.categories, fm.category].into_iter().flatten() {
        categories.extend(c.into_names());
    }
    for t in [fm.tags, fm.keywords].into_iter().flatten() {
        tags.extend(t.into_vec());
    }
    if let Some(tax) = fm.taxonomies {
        categories.extend(
            tax.categories
                .map(OneOrMany::into_names)
                .unwrap_or_default(),
        );
        tags.extend(tax.tags.map(OneOrMany::into_vec).unwrap_or_default());
    }
    let mut authors = Vec::new();
    for a in [fm.author, fm.authors].into_iter().flatten() {
        authors.extend(a.into_names());
    }
    Ok(Parsed {
        title: fm.title.map(Scalar::into_string).or(rendered.heading),
        date: fm.date.or(fm.published).map(Scalar::into_string),
        updated: fm.updated.or(fm.lastmod).map(Scalar::into_string),
        authors,
        summary: fm.summary.or(fm.description).map(Scalar::into_string),
        body: Body::Html {
            html: rendered.html,
            text: rendered.text,
        },
        categories,
        tags,
        link: fm.link.map(Scalar::into_string),
        id: fm.id.map(Scalar::into_string),
        image: fm.image.map(Scalar::into_string),
        enclosure: fm.enclosure.map(Scalar::into_string),
        draft: fm.draft.is_some_and(|d| d.is_true()),
        // Front matter strings and a heading's text are text, not markup.
        markup: false,
    })
}

fn one_line(s: &str) -> String {
    crate::text::collapse_whitespace(s)
}

struct Rendered {
    html: String,
    text: String,
    heading: Option<String>,
}

/// Renders Markdown to (unsanitised) HTML and plain text. With `take_heading`, the first
/// heading becomes the title and, when it opens the document, leaves the body.
fn render(body: &str, take_heading: bool) -> Rendered {
    let opts = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_TASKLISTS;
    let mut events: Vec<Event> = Parser::new_ext(body, opts).collect();
    let mut heading = None;
    if take_heading {
        let start = events
            .iter()
            .position(|e| matches!(e, Event::Start(Tag::Heading { .. })));
        if let Some(start) = start {
            let level = match &events[start] {
                Event::Start(Tag::Heading { level, .. }) => *level,
                _ => HeadingLevel::H1,
            };
            let end = events[start..]
                .iter()
                .position(|e| matches!(e, Event::End(TagEnd::Heading(l)) if *l == level))
                .map(|p| start + p);
            if let Some(end) = end {
                heading = Some(plain_text(&events[start + 1..end]).trim().to_string());
                if start == 0 {
                    events.drain(start..=end);
                }
            }
        }
    }
    let text = plain_text(&events);
    let mut html = String::with_capacity(body.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    Rendered {
        html,
        text,
        heading,
    }
}

/// The text content of events, block elements separated by newlines. Raw HTML is left out.
fn plain_text(events: &[Event]) -> String {
    let mut out = String::new();
    for e in events {
        match e {
            Event::Text(t) | Event::Code(t) => out.push_str(t),
            Event::SoftBreak | Event::HardBreak => out.push(' '),
            // Inline elements run on with the text around them ("a [link]." → "a link.").
            Event::End(
                TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image,
            ) => {}
            Event::End(_) => out.push('\n'),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(p: &Parsed) -> &str {
        match &p.body {
            Body::Html { html, .. } => html,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn yaml_front_matter() {
        let p = parse("---\ntitle: Hello\ndate: 2024-05-01T10:00:00+02:00\ntags: [a, b]\ncategories: News\nauthor: Jane <jane@example.com>\nsummary: Short\nlink: https://example.com/x\nid: urn:uuid:1\nextra: {nested: [1]}\n---\n# Heading\n\nBody *text*.\n").unwrap();
        assert_eq!(p.title.as_deref(), Some("Hello"));
        assert_eq!(p.date.as_deref(), Some("2024-05-01T10:00:00+02:00"));
        assert_eq!(p.tags, ["a", "b"]);
        assert_eq!(p.categories, ["News"]);
        assert_eq!(p.authors, ["Jane <jane@example.com>"]);
        assert_eq!(p.link.as_deref(), Some("https://example.com/x"));
        assert_eq!(p.id.as_deref(), Some("urn:uuid:1"));
        assert!(html(&p).contains("<h1>Heading</h1>"));
        assert!(html(&p).contains("<em>text</em>"));
        assert!(!p.draft);
    }

    #[test]
    fn toml_front_matter_with_bare_dates() {
        let p = parse("+++\ntitle = \"T\"\ndate = 2015-12-24\nupdated = 2016-01-01T00:00:00Z\ndraft = true\ntags = \"x, y\"\n[taxonomies]\ncategories = [\"C\"]\n+++\nbody\n").unwrap();
        assert_eq!(p.date.as_deref(), Some("2015-12-24"));
        assert_eq!(p.updated.as_deref(), Some("2016-01-01T00:00:00Z"));
        assert_eq!(p.tags, ["x", "y"]);
        assert_eq!(p.categories, ["C"]);
        assert!(p.draft);
    }

    #[test]
    fn numbers_as_titles_and_yes_drafts() {
        let p = parse("---\ntitle: 2015\ndraft: yes\n---\nx").unwrap();
        assert_eq!(p.title.as_deref(), Some("2015"));
        assert!(p.draft);
    }

    #[test]
    fn any_scalar_or_list_of_scalars_is_taken() {
        let p =
            parse("---\ntitle: 1.5\ntags: 42\ncategories: [x, 2, true]\nupdated:\n---\nb").unwrap();
        assert_eq!(p.title.as_deref(), Some("1.5"));
        assert_eq!(p.tags, ["42"]);
        assert_eq!(p.categories, ["x", "2", "true"]);
        assert_eq!(p.updated, None);
        let p = parse("---\ntitle: 18446744073709551615\n---\nb").unwrap();
        assert_eq!(p.title.as_deref(), Some("18446744073709552000"));
        let p =
            parse("+++\ntitle = 2015-12-24T10:00:00Z\ntags = [\"a\", 2016-01-01]\n+++\nb").unwrap();
        assert_eq!(p.title.as_deref(), Some("2015-12-24T10:00:00Z"));
        assert_eq!(p.tags, ["a", "2016-01-01"]);
        for bad in [
            "---\ntitle: [a]\n---\nb",
            "---\ntags: [[a]]\n---\nb",
            "---\ntitle: {a: 1}\n---\nb",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn heading_becomes_title_without_front_matter() {
        let p = parse("# The *title*\n\nText.\n").unwrap();
        assert_eq!(p.title.as_deref(), Some("The title"));
        assert!(!html(&p).contains("<h1>"));
        assert!(html(&p).contains("<p>Text.</p>"));
    }

    #[test]
    fn broken_front_matter_is_an_error() {
        let e = parse("---\ntitle: [unclosed\n---\nbody").unwrap_err();
        assert!(e.contains("invalid YAML front matter"), "{e}");
        let e = parse("+++\ntitle = \n+++\nbody").unwrap_err();
        assert!(e.contains("invalid TOML front matter"), "{e}");
    }

    #[test]
    fn unclosed_fence_is_body() {
        let p = parse("---\nnot front matter\n").unwrap();
        assert!(p.title.is_none());
    }

    #[test]
    fn empty_front_matter() {
        let p = parse("---\n---\n# T\n").unwrap();
        assert_eq!(p.title.as_deref(), Some("T"));
    }
}
