//! `herald build` end to end: the real binary over fixture trees, every output parsed by
//! independent parsers, determinism, and the identity rules (ids never change).

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;

fn entries_by_title(feed: &feed_rs::model::Feed) -> BTreeMap<String, feed_rs::model::Entry> {
    feed.entries
        .iter()
        .map(|e| {
            (
                e.title
                    .as_ref()
                    .map(|t| t.content.clone())
                    .unwrap_or_default(),
                e.clone(),
            )
        })
        .collect()
}

#[test]
fn build_over_fixtures_gives_valid_feeds_in_every_format() {
    let site = Site::new("content", "test.toml");
    let out = site.build("out");
    let expected_titles: HashSet<&str> = [
        "China, US have potential to develop new type cyber relations",
        "中美两国有潜力发展新型网络关系",
        "BOM and CRLF article",
        "UTF-16 article",
        "Title from the breadcrumb",
        "Old Mac line endings",
        "YAML front matter: a test",
        "TOML front matter",
        // Front matter is text: every character is kept (and escaped where it is shown).
        "<script>alert('title')</script> Injection",
        "Explicit id",
        "HTML fixture",
        "繁體中文文章",
        "A plain note",
        "Control characters in title",
        "Café society — naïve résumé",
    ]
    .into();
    for ext in ["rss", "atom", "json"] {
        let path = out.join(format!("feed.{ext}"));
        let feed = if ext == "json" {
            parse_json_feed(&path)
        } else {
            parse_xml_feed(&path)
        };
        let titles: HashSet<String> = feed
            .entries
            .iter()
            .map(|e| {
                // A title declared as HTML (Atom `type="html"`) is shown as its text.
                let title = e.title.clone().unwrap();
                if title.content_type.to_string().starts_with("text/html") {
                    scraper::Html::parse_fragment(&title.content)
                        .root_element()
                        .text()
                        .collect()
                } else {
                    title.content
                }
            })
            .collect();
        let titles: HashSet<&str> = titles.iter().map(String::as_str).collect();
        assert_eq!(titles, expected_titles, "titles in feed.{ext}");
        let ids: HashSet<&str> = feed.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids.len(), feed.entries.len(), "duplicate ids in feed.{ext}");
        for e in &feed.entries {
            assert!(
                e.id.starts_with("tag:example.com,2026:") || e.id.starts_with("urn:uuid:"),
                "id {} in feed.{ext}",
                e.id
            );
            assert!(
                e.published.is_some(),
                "published missing for {} in feed.{ext}",
                e.id
            );
        }
        let by_title = entries_by_title(&feed);
        let seed = &by_title["China, US have potential to develop new type cyber relations"];
        assert_eq!(seed.id, "tag:example.com,2026:scraped/seed.txt");
        assert_eq!(
            seed.published.unwrap().to_rfc3339(),
            "2015-12-24T00:00:00+00:00",
            "feed.{ext}"
        );
        let explicit = &by_title["Explicit id"];
        assert_eq!(explicit.id, "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66");
        assert_eq!(
            explicit.published.unwrap().to_rfc3339(),
            "2016-01-07T04:00:00+00:00"
        );
        if ext != "json" {
            let cats: Vec<&str> = seed.categories.iter().map(|c| c.term.as_str()).collect();
            assert_eq!(cats, ["Industry trends"], "feed.{ext}");
        }
        // Newest first.
        let dates: Vec<_> = feed.entries.iter().map(|e| e.published.unwrap()).collect();
        assert!(
            dates.windows(2).all(|w| w[0] >= w[1]),
            "feed.{ext} is not newest first"
        );
    }
}

#[test]
fn rss_and_atom_carry_what_readers_need() {
    let site = Site::new("content", "test.toml");
    let out = site.build("out");
    let rss = read(&out.join("feed.rss"));
    assert!(rss.contains(r#"<atom:link href="https://news.example.com/feed.rss" rel="self" type="application/rss+xml"/>"#));
    assert!(
        rss.contains(r#"<guid isPermaLink="false">tag:example.com,2026:scraped/seed.txt</guid>"#)
    );
    assert!(rss.contains("<pubDate>Thu, 24 Dec 2015 00:00:00 +0000</pubDate>"));
    assert!(rss.contains("<author>jane@example.org (Jane Doe)</author>"));
    assert!(rss.contains("<content:encoded>"));
    assert!(!rss.contains(" UTC<"), "RSS dates must use numeric zones");
    let atom = read(&out.join("feed.atom"));
    assert!(atom.contains(r#"<link href="https://news.example.com/feed.atom" rel="self" type="application/atom+xml"/>"#));
    assert!(atom.contains("<content type=\"html\">"));
    // Sanitised: no active content anywhere in any output. JSON Feed's titles and
    // summaries are text (a title may say `<script>`); its HTML is `content_html`.
    for path in files(&out) {
        let mut text = without_json_ld(&read(&out.join(&path)));
        if path.ends_with(".json") {
            let feed: serde_json::Value = serde_json::from_str(&text).unwrap();
            text = feed["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["content_html"].as_str().unwrap())
                .collect();
        }
        for bad in [
            "<script",
            "onerror=",
            "onclick=",
            "javascript:",
            "<iframe",
            "<form",
        ] {
            let unescaped = text.contains(bad);
            assert!(!unescaped, "{bad} in {path}");
        }
    }
}

#[test]
fn every_output_path_is_written_and_well_formed() {
    let site = Site::new("content", "test.toml");
    let out = site.build("out");
    let all = files(&out);
    for must in [
        "feed.rss",
        "feed.atom",
        "feed.json",
        "index.html",
        "feeds.opml",
        "categories/industry-trends/feed.atom",
        "tags/cyber/feed.rss",
    ] {
        assert!(all.contains(&must.to_string()), "{must} missing: {all:?}");
    }
    for path in &all {
        let p = out.join(path);
        if path.ends_with(".rss") || path.ends_with(".atom") {
            parse_xml_feed(&p);
        } else if path.ends_with(".json") {
            parse_json_feed(&p);
        } else if path.ends_with(".opml") {
            let text = read(&p);
            let doc = roxmltree::Document::parse(&text).unwrap();
            let feeds: Vec<_> = doc
                .descendants()
                .filter(|n| n.attribute("xmlUrl").is_some())
                .collect();
            assert!(feeds.len() >= 3 * 5, "opml lists every feed");
            for n in feeds {
                assert!(n
                    .attribute("xmlUrl")
                    .unwrap()
                    .starts_with("https://news.example.com/"));
                assert!(n.attribute("text").is_some() && n.attribute("type") == Some("rss"));
            }
        } else if path.ends_with(".xml") {
            check_sitemap(&read(&p), path);
        } else if path == "feed.css" {
            assert!(read(&p).contains("rss, feed {"));
        } else if path == "robots.txt" {
            let text = read(&p);
            assert!(
                text.contains("Sitemap: https://news.example.com/sitemap.xml\n"),
                "{text}"
            );
            assert!(
                text.contains("Sitemap: https://news.example.com/news-sitemap.xml\n"),
                "{text}"
            );
        } else {
            assert!(path.ends_with(".html"), "unexpected output {path}");
        }
    }
    for must in ["sitemap.xml", "news-sitemap.xml", "robots.txt"] {
        assert!(all.contains(&must.to_string()), "{must} missing");
    }
    // Every article page is in the sitemap, and so is every category's and tag's page.
    let sitemap = read(&out.join("sitemap.xml"));
    let mut listed = 0;
    for path in all.iter().filter(|p| {
        p.starts_with("articles/")
            || ((p.starts_with("categories/") || p.starts_with("tags/"))
                && p.ends_with("/index.html")
                && !p.contains("/page/")
                && p.matches('/').count() == 2)
    }) {
        let url = format!(
            "<loc>https://news.example.com/{}</loc>",
            path.trim_end_matches("index.html")
        );
        assert!(sitemap.contains(&url), "{path} not in the sitemap");
        listed += 1;
    }
    assert!(listed > 10, "{all:?}");
    // Every feed has its page; the lists of all terms are there.
    for feed in all.iter().filter(|p| p.ends_with("/feed.atom")) {
        let page = feed.replace("feed.atom", "index.html");
        assert!(all.contains(&page), "{page} missing");
    }
    for must in ["categories/index.html", "tags/index.html"] {
        assert!(all.contains(&must.to_string()), "{must} missing");
    }
    // Chinese names get unique ASCII slugs.
    assert!(
        all.iter()
            .any(|p| p.starts_with("tags/xin-wen-") && p.ends_with("/feed.atom")),
        "{all:?}"
    );
    let index = read(&out.join("index.html"));
    assert!(index.contains(r#"<link rel="alternate" type="application/atom+xml""#));
    assert!(index.contains(r#"href="https://news.example.com/feed.rss""#));
}

#[test]
fn second_build_is_byte_identical() {
    let site = Site::new("content", "test.toml");
    let a = site.build("a");
    let b = site.build("b");
    let (fa, fb) = (files(&a), files(&b));
    assert_eq!(fa, fb);
    for f in &fa {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs"
        );
    }
}

fn entry<'a>(feed: &'a feed_rs::model::Feed, title: &str) -> &'a feed_rs::model::Entry {
    feed.entries
        .iter()
        .find(|e| e.title.as_ref().is_some_and(|t| t.content == title))
        .unwrap_or_else(|| panic!("no entry {title}"))
}

#[test]
fn edit_keeps_id_and_moves_updated_touch_does_not() {
    let site = Site::new("content", "test.toml");
    let before = parse_xml_feed(&site.build("a").join("feed.atom"));
    let seed = site.content().join("scraped/seed.txt");
    // A touch changes nothing.
    let f = std::fs::File::options().append(true).open(&seed).unwrap();
    f.set_modified(std::time::SystemTime::now()).unwrap();
    drop(f);
    let touched = site.build("b");
    assert_eq!(
        read(&touched.join("feed.atom")),
        read(&site.out("a").join("feed.atom"))
    );
    // An edit keeps the id and published date and moves updated.
    let text = read(&seed).replace("researchers said.", "researchers said on Thursday.");
    std::fs::write(&seed, text).unwrap();
    let after = parse_xml_feed(&site.build("c").join("feed.atom"));
    let title = "China, US have potential to develop new type cyber relations";
    let (old, new) = (entry(&before, title), entry(&after, title));
    assert_eq!(old.id, new.id);
    assert_eq!(old.published, new.published);
    assert!(
        new.updated > old.updated,
        "updated must move: {:?} -> {:?}",
        old.updated,
        new.updated
    );
}

#[test]
fn rename_title_edit_and_base_url_change_keep_ids() {
    let site = Site::new("content", "test.toml");
    let before = parse_xml_feed(&site.build("a").join("feed.atom"));
    std::fs::rename(
        site.content().join("plain/note.txt"),
        site.content().join("plain/renamed-note.txt"),
    )
    .unwrap();
    let yaml = site.content().join("markdown/yaml.md");
    std::fs::write(
        &yaml,
        read(&yaml).replace("YAML front matter: a test", "A new title"),
    )
    .unwrap();
    let out = site.out("b");
    let o = site.run(&[
        "--base-url",
        "https://other.example.org/news/",
        "build",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = parse_xml_feed(&out.join("feed.atom"));
    assert_eq!(
        entry(&before, "A plain note").id,
        entry(&after, "A plain note").id
    );
    assert_eq!(
        entry(&before, "A plain note").published,
        entry(&after, "A plain note").published
    );
    assert_eq!(
        entry(&before, "YAML front matter: a test").id,
        entry(&after, "A new title").id
    );
    assert!(read(&out.join("feed.atom")).contains("https://other.example.org/news/feed.atom"));
}

#[test]
fn deleted_article_leaves_every_output() {
    let site = Site::new("content", "test.toml");
    let a = site.build("out");
    let page = files(&a)
        .into_iter()
        .find(|f| f.starts_with("articles/a-plain-note"))
        .unwrap();
    std::fs::remove_file(site.content().join("plain/note.txt")).unwrap();
    let b = site.build("out");
    assert!(!read(&b.join("feed.atom")).contains("A plain note"));
    assert!(!b.join(&page).exists(), "stale page {page} left behind");
}

#[test]
fn dates_without_zone_use_the_configured_timezone() {
    let site = Site::new("content", "shanghai.toml");
    let feed = parse_xml_feed(&site.build("out").join("feed.atom"));
    let seed = entry(
        &feed,
        "China, US have potential to develop new type cyber relations",
    );
    assert_eq!(
        seed.published.unwrap().to_rfc3339(),
        "2015-12-23T16:00:00+00:00"
    );
    let atom = read(&site.out("out").join("feed.atom"));
    assert!(
        atom.contains("<published>2015-12-24T00:00:00+08:00</published>"),
        "{atom}"
    );
}

#[cfg(unix)]
#[test]
fn symlinks_outside_and_loops_are_never_followed() {
    let site = Site::new("content", "test.toml");
    let outside = site.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), "SECRET TITLE\n\nsecret body\n").unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret.txt"),
        site.content().join("escape.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, site.content().join("escape-dir")).unwrap();
    std::os::unix::fs::symlink(site.content(), site.content().join("plain/loop")).unwrap();
    std::os::unix::fs::symlink(
        site.content().join("plain/note.txt"),
        site.content().join("alias.txt"),
    )
    .unwrap();
    let out = site.build("out");
    let atom = read(&out.join("feed.atom"));
    assert!(
        !atom.contains("SECRET"),
        "followed a symlink outside the content dir"
    );
    assert_eq!(
        atom.matches("<title>A plain note</title>").count(),
        1,
        "a symlinked alias duplicated an entry"
    );
    let o = site.run(&["check"]);
    let text = stdout(&o);
    assert!(text.contains("escape.txt: skipped: symlink to"), "{text}");
    assert!(text.contains("escape-dir: skipped: symlink to"), "{text}");
    assert!(text.contains("plain/loop: skipped: symlink loop"), "{text}");
}

/// The sitemaps.org protocol and Google's news sitemap rules: namespaces, required
/// elements, absolute escaped URLs under the site, W3C datetimes, limits.
fn check_sitemap(text: &str, path: &str) {
    const NS: &str = "http://www.sitemaps.org/schemas/sitemap/0.9";
    const NEWS: &str = "http://www.google.com/schemas/sitemap-news/0.9";
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        "{path}"
    );
    assert!(text.len() <= 50 << 20, "{path}: over 50 MiB");
    let doc = roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(NS), "{path}");
    let w3c = |s: &str| chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.len() >= 20;
    let loc_ok =
        |s: &str| s.starts_with("https://news.example.com/") && s.len() < 2048 && !s.contains(' ');
    let child = |n: roxmltree::Node, name: &str, ns: &str| {
        n.children()
            .find(|c| c.tag_name().name() == name && c.tag_name().namespace() == Some(ns))
            .and_then(|c| c.text())
            .map(str::to_string)
    };
    match root.tag_name().name() {
        "urlset" => {
            let urls: Vec<_> = root.children().filter(|n| n.is_element()).collect();
            assert!(urls.len() <= 50_000, "{path}");
            for u in &urls {
                assert_eq!(u.tag_name().name(), "url", "{path}");
                let loc = child(*u, "loc", NS).unwrap_or_else(|| panic!("{path}: url without loc"));
                assert!(loc_ok(&loc), "{path}: {loc}");
                if let Some(m) = child(*u, "lastmod", NS) {
                    assert!(w3c(&m), "{path}: lastmod {m}");
                }
                if path == "news-sitemap.xml" {
                    let news = u
                        .children()
                        .find(|c| {
                            c.tag_name().name() == "news" && c.tag_name().namespace() == Some(NEWS)
                        })
                        .unwrap_or_else(|| panic!("{path}: url without news:news"));
                    let publication = news
                        .children()
                        .find(|c| c.tag_name().name() == "publication")
                        .expect("news:publication");
                    assert!(!child(publication, "name", NEWS).unwrap().is_empty());
                    let lang = child(publication, "language", NEWS).unwrap();
                    assert!(
                        lang.len() <= 3 || lang == "zh-cn" || lang == "zh-tw",
                        "{lang}"
                    );
                    let date = child(news, "publication_date", NEWS).unwrap();
                    assert!(w3c(&date), "{date}");
                    let age = chrono::Utc::now().signed_duration_since(
                        chrono::DateTime::parse_from_rfc3339(&date).unwrap(),
                    );
                    assert!(
                        age.num_seconds() <= 2 * 86_400,
                        "{path}: {date} is older than two days"
                    );
                    assert!(!child(news, "title", NEWS).unwrap().is_empty());
                }
            }
            if path == "news-sitemap.xml" {
                assert!(urls.len() <= 1000);
            }
        }
        "sitemapindex" => {
            for s in root.children().filter(|n| n.is_element()) {
                assert!(loc_ok(&child(s, "loc", NS).unwrap()), "{path}");
            }
        }
        other => panic!("{path}: root element {other}"),
    }
}

/// An article page without its JSON-LD (the one script herald writes), checked on the way:
/// valid JSON with no `<` that could end the script early.
fn without_json_ld(text: &str) -> String {
    const OPEN: &str = "<script type=\"application/ld+json\">";
    let Some(start) = text.find(OPEN) else {
        return text.to_string();
    };
    let end = start + text[start..].find("</script>").expect("a closed script");
    let json = &text[start + OPEN.len()..end];
    assert!(!json.contains('<'), "{json}");
    let ld: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(ld["@type"], "NewsArticle");
    format!("{}{}", &text[..start], &text[end + "</script>".len()..])
}

/// `build` writes what `serve` serves: every page (the views' pages and their older pages,
/// the lists of terms, the index, article pages) and every feed, byte for byte.
#[test]
fn build_writes_every_page_serve_serves_with_the_same_bytes() {
    let site = Site::new("content", "serve.toml");
    let dir = site.content().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..130 {
        std::fs::write(
            dir.join(format!("a{i:03}.md")),
            format!(
                "---\ntitle: Story {i}\ndate: 2026-09-01T{:02}:{:02}:00Z\ncategories: [Many]\ntags: [\"T{}\"]\n---\nBody {i}.\n",
                i / 60,
                i % 60,
                i % 3
            ),
        )
        .unwrap();
    }
    let out = site.build("out");
    let all = files(&out);
    for must in [
        "index.html",
        "page/2/index.html",
        "page/3/index.html",
        "categories/index.html",
        "tags/index.html",
        "categories/many/index.html",
        "categories/many/page/2/index.html",
        "categories/many/page/3/index.html",
    ] {
        assert!(all.contains(&must.to_string()), "{must} missing");
    }
    let server = TestServer::start(&site, &[]);
    let mut compared = 0;
    for path in all.iter().filter(|p| {
        p.ends_with(".html") || p.ends_with(".atom") || p.ends_with(".rss") || p.ends_with(".json")
    }) {
        let url = format!("/{}", path.strip_suffix("index.html").unwrap_or(path));
        let served = server.get(&url);
        assert_eq!(served.status, 200, "{url}");
        assert!(
            served.body == std::fs::read(out.join(path)).unwrap(),
            "{path} differs from {url}"
        );
        compared += 1;
    }
    assert!(compared > 200, "{compared}");
}
