//! RSS 2.0 through the `rss` crate: the summary escaped as HTML in `description`, full HTML in
//! `content:encoded`, `guid isPermaLink="false"` for tag ids, names in `dc:creator` and only
//! e-mails in `author`, `atom:link rel="self"`, RFC 2822 dates with numeric zones; an
//! article's enclosure (its audio or video, else its local featured image, whose length is
//! known) in `enclosure`, its featured image in Media RSS `media:content` and
//! `media:thumbnail`.

use std::collections::BTreeMap;

use rss::extension::atom::{AtomExtension, Link};
use rss::extension::dublincore::DublinCoreExtension;
use rss::extension::{Extension, ExtensionMap};
use rss::{Category, Channel, Guid, Item};

use super::{FeedSpec, Texts};
use crate::config::Config;
use crate::content::MediaRef;
use crate::dates;
use crate::model::Article;

pub(super) fn render(spec: &FeedSpec, texts: &Texts, cfg: &Config) -> Vec<u8> {
    let mut channel = Channel {
        title: spec.title.clone(),
        link: spec.html_url.clone(),
        description: if spec.description.trim().is_empty() {
            spec.title.clone()
        } else {
            spec.description.clone()
        },
        language: Some(cfg.site.language.clone()),
        last_build_date: Some(dates::rfc2822(spec.updated)),
        generator: Some("herald".into()),
        docs: Some("https://www.rssboard.org/rss-specification".into()),
        ..Channel::default()
    };
    let hubs = cfg.hub_urls().into_iter().map(|href| Link {
        href,
        rel: "hub".into(),
        ..Link::default()
    });
    // RFC 5005: the current feed and its archive documents link to each other.
    let paging = spec.paging(cfg, "rss");
    let pages: Vec<Link> = paging
        .links()
        .map(|(rel, href)| Link {
            href: href.clone(),
            rel: rel.into(),
            mime_type: Some("application/rss+xml".into()),
            ..Link::default()
        })
        .collect();
    if let Some(name) = paging.history_element() {
        channel.namespaces.insert("fh".into(), super::FH_NS.into());
        let element = Extension {
            name: name.into(),
            value: None,
            attrs: BTreeMap::new(),
            children: BTreeMap::new(),
        };
        channel.extensions.insert(
            "fh".into(),
            [(name.to_string(), vec![element])].into_iter().collect(),
        );
    }
    channel.set_atom_ext(AtomExtension {
        links: std::iter::once(Link {
            href: spec.url(cfg, "rss"),
            rel: "self".into(),
            mime_type: Some("application/rss+xml".into()),
            ..Link::default()
        })
        .chain(pages)
        // WebSub: where to subscribe for pushed updates.
        .chain(hubs)
        .collect(),
    });
    channel.items = spec
        .entries
        .iter()
        .zip(texts)
        .map(|(a, (content, summary))| {
            let url = a.url(cfg);
            let is_permalink = *a.id == *url;
            let creators: Vec<String> = a
                .authors
                .iter()
                .filter(|p| p.email.is_none())
                .map(|p| p.name.clone())
                .collect();
            let author = a.authors.iter().find_map(|p| {
                p.email.as_ref().map(|e| {
                    if &p.name == e {
                        e.clone()
                    } else {
                        format!("{e} ({})", p.name)
                    }
                })
            });
            let categories = a
                .categories
                .iter()
                .chain(&a.tags)
                .map(|t| Category {
                    name: t.name.clone(),
                    domain: None,
                })
                .collect();
            Item {
                title: Some(a.title.clone()),
                link: Some(url),
                // RSS readers take `description` as HTML: the summary is text, so it is
                // escaped (CDATA alone would hand `<b>` or `<script>` to them as markup).
                description: Some(crate::text::escape_html(summary).into_owned()),
                // Past `max_feed_bytes` an entry carries its summary alone.
                content: (!content.is_empty()).then(|| content.to_string()),
                author,
                categories,
                guid: Some(Guid {
                    value: a.id.to_string(),
                    permalink: is_permalink,
                }),
                pub_date: Some(dates::rfc2822(a.published)),
                dublin_core_ext: (!creators.is_empty()).then(|| DublinCoreExtension {
                    creators,
                    ..DublinCoreExtension::default()
                }),
                enclosure: enclosure(a),
                extensions: media_rss(a),
                ..Item::default()
            }
        })
        .collect();
    if channel.items.iter().any(|i| !i.extensions.is_empty()) {
        channel.namespaces.insert("media".into(), MEDIA_NS.into());
    }
    // Writing into a Vec cannot fail; the crate only reports writer errors.
    channel.write_to(Vec::new()).unwrap_or_default()
}

const MEDIA_NS: &str = "http://search.yahoo.com/mrss/";

/// RSS `enclosure` needs a length and a type: the audio or video file, else a local
/// featured image (a remote one's length is unknown, and `0` would be a lie).
fn enclosure(a: &Article) -> Option<rss::Enclosure> {
    let m = a.enclosure.as_deref().or(a.image.as_deref())?;
    Some(rss::Enclosure {
        url: m.url.clone(),
        length: m.length?.to_string(),
        mime_type: m.mime.clone()?,
    })
}

/// Media RSS: the featured image as `media:content` (`medium="image"`, with its size when
/// known) and `media:thumbnail`, which aggregators pick a card's picture from.
fn media_rss(a: &Article) -> ExtensionMap {
    let mut map = ExtensionMap::default();
    let Some(image) = a.image.as_deref() else {
        return map;
    };
    let element = |name: &str, attrs: BTreeMap<String, String>| Extension {
        name: name.into(),
        value: None,
        attrs,
        children: BTreeMap::new(),
    };
    let size = |m: &MediaRef, attrs: &mut BTreeMap<String, String>| {
        if let (Some(w), Some(h)) = (m.width, m.height) {
            attrs.insert("width".into(), w.to_string());
            attrs.insert("height".into(), h.to_string());
        }
    };
    let mut content = BTreeMap::from([
        ("url".to_string(), image.url.clone()),
        ("medium".to_string(), "image".to_string()),
    ]);
    if let Some(mime) = &image.mime {
        content.insert("type".into(), mime.clone());
    }
    if let Some(len) = image.length {
        content.insert("fileSize".into(), len.to_string());
    }
    size(image, &mut content);
    let mut thumb = BTreeMap::from([("url".to_string(), image.url.clone())]);
    size(image, &mut thumb);
    let mut elements = BTreeMap::new();
    // With an audio or video enclosure, the image is the episode's thumbnail only.
    if a.enclosure.is_none() {
        elements.insert(
            "media:content".to_string(),
            vec![element("media:content", content)],
        );
    }
    elements.insert(
        "media:thumbnail".to_string(),
        vec![element("media:thumbnail", thumb)],
    );
    map.insert("media".into(), elements);
    map
}
