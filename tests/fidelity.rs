//! What real feed readers and the W3C validator showed (issue 13), checked on every feed
//! `herald build` writes for `tests/fixtures/content-fidelity`: text that mentions markup,
//! titles with `&` and `<`, files that share a date, OPML import.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn build() -> (Site, PathBuf) {
    let site = Site::new("content-fidelity", "test.toml");
    let out = site.build("out");
    (site, out)
}

/// The output dir and every category and tag dir: each holds `feed.{rss,atom,json}`.
fn feed_dirs(out: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = files(out)
        .into_iter()
        .filter(|f| f.ends_with("feed.json"))
        .map(|f| out.join(f).parent().unwrap().to_path_buf())
        .collect();
    dirs.sort();
    assert!(dirs.len() > 5, "{dirs:?}");
    dirs
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&read(path)).unwrap()
}

/// JSON Feed items by id.
fn json_items(dir: &Path) -> HashMap<String, Value> {
    items_by_id(&json(&dir.join("feed.json")))
}

fn titles(out: &Path) -> HashSet<String> {
    json_items(out)
        .values()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.has_tag_name(name))
        .and_then(|c| c.text())
}

#[test]
fn rss_descriptions_are_html_whose_text_is_the_summary() {
    let (_site, out) = build();
    let mut checked = 0;
    for dir in feed_dirs(&out) {
        let summaries = json_items(&dir);
        let text = read(&dir.join("feed.rss"));
        let doc = roxmltree::Document::parse(&text).unwrap();
        for item in doc.descendants().filter(|n| n.has_tag_name("item")) {
            let id = child_text(item, "guid").unwrap();
            let description = child_text(item, "description").unwrap_or("");
            // Parsed as a reader does: HTML.
            let html = scraper::Html::parse_fragment(description);
            let elements: Vec<String> = html
                .root_element()
                .descendants()
                .filter_map(scraper::ElementRef::wrap)
                .map(|e| e.value().name().to_string())
                .filter(|n| n != "html")
                .collect();
            assert!(
                elements.is_empty(),
                "{id}: description has markup {elements:?}: {description}"
            );
            let shown: String = html.root_element().text().collect();
            assert_eq!(
                shown, summaries[id]["summary"],
                "{id}: description text is not the summary"
            );
            assert!(!description.contains("javascript:") || shown.contains("javascript:"));
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}

#[test]
fn text_sources_keep_every_character_of_titles_and_terms() {
    let (_site, out) = build();
    let titles = titles(&out);
    for want in [
        "AT&T & Huawei sign \"5G\" deal <draft> — it's 🚀 time",
        "Quotes “smart” and 'single' and \"double\" & <tags/> in title",
        "R&D <update>: 3 < 4 & \"quotes\"",
    ] {
        assert!(titles.contains(want), "{want:?} not among {titles:?}");
    }
    let items = json_items(&out);
    let quotes = items
        .values()
        .find(|i| i["title"].as_str().unwrap().starts_with("Quotes"))
        .unwrap();
    let tags: Vec<&str> = quotes["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(tags, ["R&D", "a<b", "</b> & co"]);
    assert_eq!(quotes["authors"][0]["name"], "R&D <desk>");
    // The summary of a text source is its text, whatever it mentions.
    let markup = items
        .values()
        .find(|i| i["title"].as_str().unwrap().starts_with("AT&T"))
        .unwrap();
    assert!(markup["summary"]
        .as_str()
        .unwrap()
        .contains("Use the <b> element … write a<b or AT&T or &amp; literally."));
    // The scraped page's breadcrumb, date line and labels are still metadata.
    let scraped = items
        .values()
        .find(|i| i["title"].as_str().unwrap().starts_with("R&D <update>"))
        .unwrap();
    assert_eq!(scraped["tags"], serde_json::json!(["R&D", "a<b", "AT&T"]));
    assert!(scraped["date_published"]
        .as_str()
        .unwrap()
        .starts_with("2015-12-24"));
}

#[test]
fn html_sources_reduce_markup_in_metadata_to_text() {
    let (_site, out) = build();
    assert!(titles(&out).contains("Bold HTML title"));
}

#[test]
fn summaries_join_inline_text_as_a_browser_shows_it() {
    let (_site, out) = build();
    let summaries: Vec<String> = json_items(&out)
        .values()
        .map(|i| i["summary"].as_str().unwrap().to_string())
        .collect();
    for want in [
        "A paragraph with a relative link. Next emphasised, code! Second paragraph.",
        "Body with a relative link. Next sentence, and emphasis, then code.",
    ] {
        assert!(
            summaries.iter().any(|s| s == want),
            "{want:?} not among {summaries:#?}"
        );
    }
}

#[test]
fn atom_entries_never_share_an_updated_value() {
    let (_site, out) = build();
    for dir in feed_dirs(&out) {
        let text = read(&dir.join("feed.atom"));
        let doc = roxmltree::Document::parse(&text).unwrap();
        let mut seen = HashSet::new();
        for entry in doc.descendants().filter(|n| n.has_tag_name("entry")) {
            let updated = child_text(entry, "updated").unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(updated).is_ok(),
                "{updated}"
            );
            assert!(
                seen.insert(updated.to_string()),
                "{}: two entries updated {updated}",
                dir.display()
            );
        }
    }
}

/// `&` and `<` in the text of RSS and Atom are hexadecimal references (RSS Best Practices
/// Profile; the W3C validator warns otherwise), and text that looks like markup is declared
/// as HTML in Atom.
#[test]
fn feed_text_uses_hexadecimal_references_for_ampersand_and_less_than() {
    let (_site, out) = build();
    for dir in feed_dirs(&out) {
        for name in ["feed.rss", "feed.atom"] {
            let text = read(&dir.join(name));
            let mut outside = String::new();
            let mut rest = text.as_str();
            // Only what is outside CDATA sections and Atom content.
            loop {
                let next = [("<![CDATA[", "]]>"), ("<content ", "</content>")]
                    .iter()
                    .filter_map(|(open, close)| rest.find(open).map(|i| (i, *close)))
                    .min();
                let Some((i, close)) = next else {
                    outside.push_str(rest);
                    break;
                };
                outside.push_str(&rest[..i]);
                let end = rest[i..].find(close).unwrap();
                rest = &rest[i + end + close.len()..];
            }
            assert!(
                !outside.contains("&amp;") && !outside.contains("&lt;"),
                "{}/{name}",
                dir.display()
            );
        }
        let atom = read(&dir.join("feed.atom"));
        let doc = roxmltree::Document::parse(&atom).unwrap();
        for node in doc.descendants().filter(|n| {
            ["title", "subtitle", "summary"]
                .iter()
                .any(|t| n.has_tag_name(*t))
        }) {
            let value = node.text().unwrap_or("");
            if node.attribute("type") == Some("html") {
                let text: String = scraper::Html::parse_fragment(value)
                    .root_element()
                    .text()
                    .collect();
                assert!(text.contains("</"), "{value}");
            } else {
                assert!(!value.contains("</"), "undeclared markup: {value}");
            }
        }
    }
}

fn opml_outlines(out: &Path) -> Vec<HashMap<String, String>> {
    let text = read(&out.join("feeds.opml"));
    let doc = roxmltree::Document::parse(&text).unwrap();
    assert_eq!(doc.root_element().attribute("version"), Some("2.0"));
    doc.descendants()
        .filter(|n| n.has_tag_name("outline"))
        .map(|n| {
            n.attributes()
                .map(|a| (a.name().to_string(), a.value().to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn opml_lists_each_feed_once_in_one_format() {
    let (site, out) = build();
    let dirs = feed_dirs(&out);
    let outlines = opml_outlines(&out);
    let feeds: Vec<_> = outlines
        .iter()
        .filter(|o| o.contains_key("xmlUrl"))
        .collect();
    assert_eq!(feeds.len(), dirs.len(), "one outline per feed");
    let titles: HashSet<String> = feeds
        .iter()
        .map(|o| {
            assert_eq!(o["type"], "rss");
            assert!(o["xmlUrl"].ends_with("/feed.atom"), "{o:?}");
            assert!(o["htmlUrl"].starts_with("https://news.example.com/"));
            assert!(!o.contains_key("version"), "OPML 2.0 has no Atom version");
            assert_eq!(o["text"], o["title"]);
            // `text` is HTML to OPML readers and the validator: its text is the title.
            scraper::Html::parse_fragment(&o["text"])
                .root_element()
                .text()
                .collect()
        })
        .collect();
    assert!(titles.contains("Fixture News — R&D"), "{titles:?}");
    assert!(titles.contains("Fixture News — a<b"), "{titles:?}");
    // Groups carry their text alone (anything more without `type` makes them feeds).
    for group in outlines.iter().filter(|o| !o.contains_key("xmlUrl")) {
        assert_eq!(group.keys().collect::<Vec<_>>(), ["text"], "{group:?}");
    }

    // `[feed] opml_format` picks the format.
    let config = site.out("rss.toml");
    std::fs::write(
        &config,
        format!("{}\nopml_format = \"rss\"\n", read(&site.config)),
    )
    .unwrap();
    let out = site.build_with(&config, "out-rss");
    for o in opml_outlines(&out)
        .iter()
        .filter(|o| o.contains_key("xmlUrl"))
    {
        assert!(o["xmlUrl"].ends_with("/feed.rss"), "{o:?}");
        assert_eq!(o["version"], "RSS2");
    }
}

/// Every member of every JSON Feed, and its type, as JSON Feed 1.1 defines them.
#[test]
fn json_feeds_follow_the_1_1_spec_member_by_member() {
    let (_site, out) = build();
    let rfc3339 = |v: &Value| {
        let s = v.as_str().expect("a date string");
        assert!(chrono::DateTime::parse_from_rfc3339(s).is_ok(), "{s}");
    };
    let url = |v: &Value| {
        let s = v.as_str().expect("a URL string");
        assert!(s.starts_with("https://news.example.com/"), "{s}");
    };
    let authors = |v: &Value| {
        for a in v.as_array().expect("authors is an array") {
            let a = a.as_object().unwrap();
            assert!(a
                .keys()
                .all(|k| ["name", "url", "avatar"].contains(&k.as_str())));
            assert!(a["name"].is_string());
        }
    };
    for dir in feed_dirs(&out) {
        let feed = json(&dir.join("feed.json"));
        let feed = feed.as_object().unwrap();
        assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
        assert!(feed["title"].is_string());
        for (key, value) in feed {
            match key.as_str() {
                "version" | "title" | "description" | "user_comment" | "language" => {
                    assert!(value.is_string(), "{key}")
                }
                "home_page_url" | "feed_url" | "next_url" | "icon" | "favicon" => url(value),
                "authors" => authors(value),
                "author" => authors(&Value::Array(vec![value.clone()])),
                "expired" => assert!(value.is_boolean()),
                "hubs" => assert!(value.is_array()),
                "items" => {}
                other if other.starts_with('_') => {}
                other => panic!("{}: unknown top-level member {other}", dir.display()),
            }
        }
        assert_eq!(
            feed["feed_url"].as_str().unwrap(),
            format!(
                "https://news.example.com/{}feed.json",
                dir.strip_prefix(&out).unwrap().to_str().unwrap().to_owned()
                    + if dir == out { "" } else { "/" }
            )
        );
        let mut ids = HashSet::new();
        for item in feed["items"].as_array().unwrap() {
            let item = item.as_object().unwrap();
            let id = item["id"].as_str().expect("id is a string");
            assert!(ids.insert(id.to_string()), "duplicate id {id}");
            assert!(item.contains_key("content_html") || item.contains_key("content_text"));
            for (key, value) in item {
                match key.as_str() {
                    "id" | "title" | "content_html" | "content_text" | "summary" | "language" => {
                        assert!(value.is_string(), "{key}")
                    }
                    "url" | "image" | "banner_image" => url(value),
                    "external_url" => assert!(value.as_str().unwrap().starts_with("http")),
                    "date_published" | "date_modified" => rfc3339(value),
                    "authors" => authors(value),
                    "author" => authors(&Value::Array(vec![value.clone()])),
                    "tags" => assert!(value.as_array().unwrap().iter().all(Value::is_string)),
                    "attachments" => assert!(value.is_array()),
                    other if other.starts_with('_') => {}
                    other => panic!("unknown item member {other}"),
                }
            }
        }
    }
}
