//! Atom 1.0 (RFC 4287) through `atom_syndication`: feed id, title, updated, author, self and
//! alternate links; entries with id, published, updated, authors, categories, a plain-text
//! summary and `type="html"` content (never `xhtml`, which the crate writes unescaped).
//! No two entries of a feed show the same `updated` (see [`distinct_updated`]).

use std::collections::HashSet;

use chrono::{DateTime, Duration, FixedOffset};

use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person, Text};

use super::{FeedSpec, Texts};
use crate::config::Config;

fn link(href: String, rel: &str, mime: Option<&str>) -> Link {
    Link {
        href,
        rel: rel.into(),
        mime_type: mime.map(str::to_string),
        ..Link::default()
    }
}

fn paging_links(p: &super::Paging) -> Vec<Link> {
    p.links()
        .map(|(rel, url)| link(url.clone(), rel, Some("application/atom+xml")))
        .collect()
}

/// `<fh:archive/>` or `<fh:complete/>` (RFC 5005) as the feed element's first child: RFC
/// 4287 wants a feed's extension elements before its entries, and `atom_syndication`
/// writes its extensions after them.
fn with_history(xml: Vec<u8>, p: &super::Paging) -> Vec<u8> {
    let Some(name) = p.history_element() else {
        return xml;
    };
    let element = format!("<{name}/>");
    let element = element.as_bytes();
    let Some(start) = xml.windows(5).position(|w| w == b"<feed") else {
        return xml;
    };
    let Some(end) = xml[start..].iter().position(|&b| b == b'>') else {
        return xml;
    };
    let at = start + end + 1;
    let mut out = Vec::with_capacity(xml.len() + element.len());
    out.extend_from_slice(&xml[..at]);
    out.extend_from_slice(element);
    out.extend_from_slice(&xml[at..]);
    out
}

/// The entry's enclosure link: its audio or video, else its featured image.
fn enclosure(a: &crate::model::Article) -> Option<Link> {
    let m = a.enclosure.as_deref().or(a.image.as_deref())?;
    Some(Link {
        href: m.url.clone(),
        rel: "enclosure".into(),
        mime_type: m.mime.clone(),
        length: m.length.map(|l| l.to_string()),
        ..Link::default()
    })
}

/// Text as a text construct: plain, or escaped HTML when it would look like markup (an
/// article about HTML may say `</b>`), so no reader or validator takes it for markup.
fn text(s: &str) -> Text {
    if super::looks_like_markup(s) {
        Text::html(crate::text::escape_html(s).into_owned())
    } else {
        Text::plain(s.to_string())
    }
}

/// Each entry's `updated`, made distinct within the feed: the W3C validator warns about
/// two entries with the same value, and many share one (articles dated by day alone start
/// at midnight; files first seen in the same second). A repeat is moved a millisecond
/// later until it is free, in entry order (newest first, ties by id), so the same entries
/// always get the same values; entries without a twin keep theirs exactly.
fn distinct_updated(spec: &FeedSpec) -> Vec<DateTime<FixedOffset>> {
    let mut seen = HashSet::with_capacity(spec.entries.len());
    spec.entries
        .iter()
        .map(|a| {
            let mut d = a.updated;
            while !seen.insert(d) {
                d += Duration::milliseconds(1);
            }
            d
        })
        .collect()
}

pub(super) fn render(spec: &FeedSpec, texts: &Texts, cfg: &Config) -> Vec<u8> {
    let paging = spec.paging(cfg, "atom");
    let updated = distinct_updated(spec);
    let entries = spec
        .entries
        .iter()
        .zip(texts)
        .zip(updated)
        .map(|((a, (content, summary)), updated)| Entry {
            id: a.id.to_string(),
            title: text(&a.title),
            updated,
            published: Some(a.published),
            authors: a
                .authors
                .iter()
                .map(|p| Person {
                    name: p.name.clone(),
                    email: p.email.clone(),
                    uri: None,
                    ..Person::default()
                })
                .collect(),
            links: std::iter::once(link(a.url(cfg), "alternate", Some("text/html")))
                .chain(enclosure(a))
                .collect(),
            categories: a
                .categories
                .iter()
                .chain(&a.tags)
                .map(|t| Category {
                    term: t.name.clone(),
                    scheme: None,
                    label: None,
                })
                .collect(),
            summary: (!summary.is_empty()).then(|| text(summary)),
            // Past `max_feed_bytes` an entry carries its summary (and its link) alone.
            content: (!content.is_empty()).then(|| Content {
                value: Some(content.to_string()),
                content_type: Some("html".into()),
                ..Content::default()
            }),
            ..Entry::default()
        })
        .collect();
    let feed = Feed {
        id: spec.atom_id(cfg),
        title: text(&spec.title),
        subtitle: (!spec.description.is_empty()).then(|| text(&spec.description)),
        updated: spec.updated,
        authors: vec![Person {
            name: cfg.site.author.clone(),
            email: None,
            uri: None,
            ..Person::default()
        }],
        links: [
            link(spec.url(cfg, "atom"), "self", Some("application/atom+xml")),
            link(spec.html_url.clone(), "alternate", Some("text/html")),
        ]
        .into_iter()
        // RFC 5005: the current feed and its archive documents link to each other.
        .chain(paging_links(&paging))
        // WebSub: where to subscribe for pushed updates.
        .chain(cfg.hub_urls().into_iter().map(|hub| link(hub, "hub", None)))
        .collect(),
        namespaces: if paging.history_element().is_some() {
            [("fh".to_string(), super::FH_NS.to_string())].into()
        } else {
            Default::default()
        },
        generator: Some(Generator {
            value: "herald".into(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        lang: Some(cfg.site.language.clone()),
        entries,
        ..Feed::default()
    };
    // Writing into a Vec cannot fail; the crate only reports writer errors.
    let xml = feed.write_to(Vec::new()).unwrap_or_default();
    with_history(xml, &paging)
}
