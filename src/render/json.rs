//! JSON Feed 1.1 with own serde structs (the `jsonfeed` crate only knows 1.0). Dates are
//! RFC 3339; `authors` is the 1.1 array and `author` is kept for 1.0 readers.

use serde::Serialize;

use super::{FeedSpec, Texts};
use crate::config::Config;
use crate::dates;

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: String,
    /// The next older page (JSON Feed paging: from the current feed to its archives).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<String>,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    language: &'a str,
    authors: Vec<Author<'a>>,
    /// WebSub hubs (JSON Feed 1.1 `hubs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub>,
    items: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Hub {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Item<'a> {
    id: &'a str,
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_url: Option<&'a str>,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_html: Option<&'a str>,
    /// Only for an entry past `max_feed_bytes`, which carries its summary alone (an item
    /// needs `content_html` or `content_text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    content_text: Option<&'a str>,
    summary: &'a str,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<Author<'a>>,
    /// The featured image.
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<&'a str>,
    /// The audio or video enclosure.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_in_bytes: Option<u64>,
}

pub(super) fn render(spec: &FeedSpec, texts: &Texts, cfg: &Config) -> Vec<u8> {
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: &spec.title,
        home_page_url: &spec.html_url,
        feed_url: spec.url(cfg, "json"),
        next_url: spec.paging(cfg, "json").prev_archive,
        description: &spec.description,
        language: &cfg.site.language,
        authors: vec![Author {
            name: &cfg.site.author,
        }],
        hubs: cfg
            .hub_urls()
            .into_iter()
            .map(|url| Hub {
                kind: "WebSub",
                url,
            })
            .collect(),
        items: spec
            .entries
            .iter()
            .zip(texts)
            .map(|(a, (content, summary))| Item {
                id: &a.id,
                url: cfg.url(&a.page_path()),
                external_url: a.link.as_deref(),
                title: &a.title,
                content_html: (!content.is_empty()).then_some(&**content),
                content_text: content.is_empty().then_some(&**summary),
                summary,
                date_published: dates::rfc3339(a.published),
                date_modified: dates::rfc3339(a.updated),
                tags: a
                    .categories
                    .iter()
                    .chain(&a.tags)
                    .map(|t| t.name.as_str())
                    .collect(),
                authors: a.authors.iter().map(|p| Author { name: &p.name }).collect(),
                author: a.authors.first().map(|p| Author { name: &p.name }),
                image: a.image.as_deref().map(|m| m.url.as_str()),
                attachments: a
                    .enclosure
                    .as_deref()
                    .and_then(|m| {
                        Some(Attachment {
                            url: &m.url,
                            mime_type: m.mime.as_deref()?,
                            size_in_bytes: m.length,
                        })
                    })
                    .into_iter()
                    .collect(),
            })
            .collect(),
    };
    // Serialising plain structs of strings into a Vec cannot fail.
    serde_json::to_vec_pretty(&feed).unwrap_or_default()
}
