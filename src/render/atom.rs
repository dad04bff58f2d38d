//! Atom 1.0 (RFC 4287) through `atom_syndication`: feed id, title, updated, author, self and
//! alternate links; entries with id, published, updated, authors, categories, a plain-text
//! summary and `type="html"` content (never `xhtml`, which the crate writes unescaped).

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

pub(super) fn render(spec: &FeedSpec, texts: &Texts, cfg: &Config) -> Vec<u8> {
    let entries = spec
        .entries
        .iter()
        .zip(texts)
        .map(|(a, (content, summary))| Entry {
            id: a.id.to_string(),
            title: Text::plain(a.title.clone()),
            updated: a.updated,
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
            links: vec![link(a.url(cfg), "alternate", Some("text/html"))],
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
            summary: (!summary.is_empty()).then(|| Text::plain(summary.to_string())),
            content: Some(Content {
                value: Some(content.to_string()),
                content_type: Some("html".into()),
                ..Content::default()
            }),
            ..Entry::default()
        })
        .collect();
    let feed = Feed {
        id: spec.atom_id(cfg),
        title: Text::plain(spec.title.clone()),
        subtitle: (!spec.description.is_empty()).then(|| Text::plain(spec.description.clone())),
        updated: spec.updated,
        authors: vec![Person {
            name: cfg.site.author.clone(),
            email: None,
            uri: None,
            ..Person::default()
        }],
        links: vec![
            link(spec.url(cfg, "atom"), "self", Some("application/atom+xml")),
            link(spec.html_url.clone(), "alternate", Some("text/html")),
        ],
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
    feed.write_to(Vec::new()).unwrap_or_default()
}
