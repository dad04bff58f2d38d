//! RFC 5005 archives and JSON Feed paging against the real binary: from the current feed,
//! following the chain visits every article of the view exactly once, in order, in Atom,
//! RSS and JSON Feed, for the main feed and a term feed; a new article changes the current
//! feed and at most one archive page.

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;

const BASE: &str = "https://news.example.com";

fn site_of(n: usize) -> (Site, std::path::PathBuf) {
    let site = Site::new("content", "serve.toml");
    std::fs::remove_dir_all(site.content()).unwrap();
    std::fs::create_dir_all(site.content()).unwrap();
    for i in 0..n {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        std::fs::write(
            site.content().join(format!("a{i:04}.md")),
            format!(
                "---\ntitle: Article {i}\ndate: 2020-01-01T{:02}:{:02}:00Z\ntags: [{tag}]\n---\nBody {i}.\n",
                i / 60,
                i % 60
            ),
        )
        .unwrap();
    }
    let base = std::fs::read_to_string(fixtures().join("config/serve.toml")).unwrap();
    let cfg = site.out("archives.toml");
    std::fs::write(&cfg, format!("{base}\n[feed]\nentries = 50\n")).unwrap();
    (site, cfg)
}

fn path_of(url: &str) -> String {
    url.strip_prefix(BASE).unwrap_or(url).to_string()
}

/// Entry titles of one XML feed document, the `prev-archive` link, and whether it says it
/// is an archive / complete.
fn xml_page(text: &str) -> (Vec<String>, Option<String>, bool, bool) {
    let doc = roxmltree::Document::parse(text).unwrap();
    let titles = doc
        .descendants()
        .filter(|n| matches!(n.tag_name().name(), "entry" | "item"))
        .map(|e| {
            e.children()
                .find(|c| c.tag_name().name() == "title")
                .and_then(|t| t.text())
                .unwrap()
                .to_string()
        })
        .collect();
    let prev = doc
        .descendants()
        .find(|n| n.tag_name().name() == "link" && n.attribute("rel") == Some("prev-archive"))
        .and_then(|n| n.attribute("href"))
        .map(path_of);
    let fh = |name: &str| {
        doc.descendants().any(|n| {
            n.tag_name().name() == name
                && n.tag_name().namespace() == Some("http://purl.org/syndication/history/1.0")
        })
    };
    (titles, prev, fh("archive"), fh("complete"))
}

/// Every title reached from `start` by the format's chain.
fn follow(server: &TestServer, start: &str) -> Vec<String> {
    let mut all = Vec::new();
    let mut next = Some(start.to_string());
    let mut first = true;
    while let Some(path) = next.take() {
        let r = server.get(&path);
        assert_eq!(r.status, 200, "{path}");
        if path.ends_with(".json") {
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            for i in v["items"].as_array().unwrap() {
                all.push(i["title"].as_str().unwrap().to_string());
            }
            next = v["next_url"].as_str().map(path_of);
        } else {
            let (titles, prev, archive, _) = xml_page(&r.text());
            assert_eq!(archive, !first, "{path}: fh:archive on archives only");
            all.extend(titles);
            next = prev;
        }
        first = false;
        assert!(all.len() <= 2000, "a loop in the chain");
    }
    all
}

fn number(title: &str) -> usize {
    title.trim_start_matches("Article ").parse().unwrap()
}

#[test]
fn the_archive_chain_reaches_every_article_once_in_order() {
    let (site, cfg) = site_of(1000);
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    for (start, want) in [
        ("/feed", (0..1000).collect::<Vec<_>>()),
        (
            "/tags/even/feed",
            (0..1000).filter(|i| i % 2 == 0).collect(),
        ),
    ] {
        for ext in ["atom", "rss", "json"] {
            let titles = follow(&server, &format!("{start}.{ext}"));
            let got: Vec<usize> = titles.iter().map(|t| number(t)).collect();
            let mut newest_first = want.clone();
            newest_first.reverse();
            assert_eq!(
                got, newest_first,
                "{start}.{ext}: every article once, newest first"
            );
        }
    }
    // Archives are served long-lived when full; the current feed is not complete.
    let full = server.get("/archive/1.atom");
    assert!(full
        .header("cache-control")
        .unwrap()
        .contains("max-age=86400"));
    let (_, _, _, complete) = xml_page(&server.get("/feed.atom").text());
    assert!(!complete);
    // A feed that holds its whole view says so.
    let small = server.get("/tags/odd/feed.atom");
    assert_eq!(small.status, 200);
}

#[test]
fn a_new_article_changes_the_current_feed_and_at_most_one_archive() {
    let (site, cfg) = site_of(1010);
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    // Each document's ETag and Last-Modified, along the chain.
    let validators = |server: &TestServer| -> BTreeMap<String, (String, String)> {
        let mut out = BTreeMap::new();
        let mut next = Some("/feed.atom".to_string());
        while let Some(path) = next.take() {
            let r = server.get(&path);
            let (etag, lm) = (
                r.header("etag").unwrap(),
                r.header("last-modified").unwrap(),
            );
            out.insert(path.clone(), (etag.to_string(), lm.to_string()));
            next = xml_page(&r.text()).1;
        }
        out
    };
    let etags = |server: &TestServer| -> BTreeMap<String, String> {
        validators(server)
            .into_iter()
            .map(|(p, (e, _))| (p, e))
            .collect()
    };
    let before_all = validators(&server);
    let before = etags(&server);
    // Archive documents (made on request) revalidate like any route, by either validator.
    for (path, (etag, lm)) in before_all.iter().filter(|(p, _)| p.contains("/archive/")) {
        let r = server.request("GET", path, &[("If-None-Match", etag)]);
        assert_eq!(r.status, 304, "{path}");
        let r = server.request("GET", path, &[("If-Modified-Since", lm)]);
        assert_eq!(r.status, 304, "{path}");
    }
    // The oldest page is full (20 pages of 50; the newest holds 10): cached a day.
    let oldest = server.get("/archive/1.atom");
    assert_eq!(
        oldest.header("cache-control"),
        Some("public, max-age=86400")
    );
    let newest = server.get("/archive/20.atom");
    assert_ne!(
        newest.header("cache-control"),
        Some("public, max-age=86400")
    );
    assert_eq!(before.len(), 1 + 20, "50 current, 960 in 20 archives");
    std::fs::write(
        site.content().join("new.md"),
        "---\ntitle: Article 5000\ndate: 2021-01-01T00:00:00Z\n---\nNew.\n",
    )
    .unwrap();
    server.wait_until("the new article", || {
        server.get("/feed.atom").text().contains("Article 5000")
    });
    let after = etags(&server);
    assert_ne!(before["/feed.atom"], after["/feed.atom"]);
    let changed: HashSet<&String> = after
        .iter()
        .filter(|(p, e)| p.as_str() != "/feed.atom" && before.get(*p) != Some(*e))
        .map(|(p, _)| p)
        .collect();
    assert!(changed.len() <= 1, "archives changed: {changed:?}");
    // An unchanged document keeps its Last-Modified; a changed one moves on.
    for (path, (etag, lm)) in validators(&server) {
        let (etag0, lm0) = &before_all[&path];
        if &etag == etag0 {
            assert_eq!(&lm, lm0, "{path}: same bytes, same Last-Modified");
        } else {
            // (Within the second of the change it may show the same date, as its `Date`.)
            let r = server.request("GET", &path, &[("If-Modified-Since", lm0)]);
            assert_eq!(r.status, 200, "{path}: changed, yet 304 to its old date");
        }
    }
    // And the chain still reaches every article once.
    let titles = follow(&server, "/feed.json");
    assert_eq!(titles.len(), 1011);
    assert_eq!(titles.iter().collect::<HashSet<_>>().len(), 1011);
}

#[test]
fn build_writes_the_archives_too() {
    let (site, cfg) = site_of(120);
    let out = site.build_with(&cfg, "out");
    for f in ["archive/1.atom", "archive/2.rss", "archive/1.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let (titles, prev, archive, _) = xml_page(&read(&out.join("archive/2.atom")));
    assert!(archive);
    assert_eq!(prev.as_deref(), Some("/archive/1.atom"));
    assert_eq!(titles.len(), 20, "120 = 50 current + 50 + 20");
    let (_, _, _, complete) = xml_page(&read(&out.join("tags/odd/feed.atom")));
    assert!(!complete, "60 odd articles: more than one page");
}
