//! Real feed readers against a live `herald serve` on a copy of the sample content:
//! newsboat (its SQLite cache is read back) and sfeed (its TSV files), plus their OPML
//! import. Each entry must appear once with herald's title, link and date; an edit updates
//! the reader's item in place, a new file appears once, and a re-fetch without change is
//! answered 304. Skips with a printed reason where a client is not installed, except in CI
//! (`CI` set), where a missing client is a failure: `.ci/run` installs both.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::Value;

/// True when `program` can be run; otherwise prints why the test skips (and fails in CI).
fn have(program: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is not installed; CI must install it (.ci/run)"
        );
        eprintln!("skipped: {program} is not installed (apt-get install newsboat sfeed)");
    }
    found
}

/// What herald itself says: JSON Feed items by id.
fn herald_items(server: &TestServer) -> HashMap<String, Value> {
    items_by_id(&serde_json::from_slice(&server.get("/feed.json").body).unwrap())
}

fn unix(date: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(date.as_str().unwrap())
        .unwrap()
        .timestamp()
}

fn not_modified(server: &TestServer) -> f64 {
    server
        .get("/metrics")
        .text()
        .lines()
        .filter(|l| l.starts_with("herald_http_requests_total{") && l.contains("status=\"304\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Edits the welcome article (its title with `title`, else its body only), adds an article
/// and deletes another, then waits until herald serves the result. Returns (edited id,
/// new id).
fn change_content(site: &Site, server: &TestServer, title: bool) -> (String, String) {
    let welcome = site.content().join("welcome.md");
    let text = read(&welcome);
    let text = if title {
        text.replace("title: Welcome to herald", "title: Welcome, edited")
    } else {
        text + "\nAn edited body.\n"
    };
    std::fs::write(&welcome, text).unwrap();
    std::fs::write(
        site.content().join("news/reader-test.txt"),
        "A new article for the readers\n\nIt arrived while they were subscribed.\n",
    )
    .unwrap();
    std::fs::remove_file(site.content().join("notes/plain-note.txt")).unwrap();
    server.wait_until("the changes are served", || {
        let titles: Vec<String> = herald_items(server)
            .values()
            .map(|i| i["title"].as_str().unwrap().to_string())
            .collect();
        titles.iter().any(|t| t == "Welcome, edited") == title
            && titles.iter().any(|t| t == "A new article for the readers")
            && !titles.iter().any(|t| t == "A plain text note")
    });
    (
        "tag:example.com,2026:welcome.md".into(),
        "tag:example.com,2026:news/reader-test.txt".into(),
    )
}

struct Newsboat {
    dir: PathBuf,
}

impl Newsboat {
    fn new(dir: &Path, feed: &str) -> Newsboat {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("urls"), format!("{feed}\n")).unwrap();
        std::fs::write(dir.join("config"), "").unwrap();
        Newsboat {
            dir: dir.to_path_buf(),
        }
    }

    fn reload(&self) {
        let o = Command::new("newsboat")
            .args([
                "-u", "urls", "-c", "cache.db", "-C", "config", "-x", "reload",
            ])
            .current_dir(&self.dir)
            .env("HOME", &self.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "newsboat: {}", stderr(&o));
    }

    /// (guid, title, url, pubDate) of every item newsboat keeps for `feed`.
    fn items(&self, feed: &str) -> Vec<(String, String, String, i64)> {
        let db = rusqlite::Connection::open(self.dir.join("cache.db")).unwrap();
        let mut q = db
            .prepare("SELECT guid, title, url, pubDate FROM rss_item WHERE feedurl = ?1")
            .unwrap();
        q.query_map([feed], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }
}

/// Every herald entry appears exactly once, with herald's title, link and date.
fn assert_same_entries(
    reader: &str,
    items: &[(String, String, String, i64)],
    herald: &HashMap<String, Value>,
) {
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (guid, ..) in items {
        *count.entry(guid.as_str()).or_default() += 1;
    }
    assert!(
        count.values().all(|&n| n == 1),
        "{reader}: duplicates {count:?}"
    );
    for (id, item) in herald {
        let Some((_, title, url, date)) = items.iter().find(|(g, ..)| g == id) else {
            panic!("{reader}: {id} missing");
        };
        assert_eq!(title, item["title"].as_str().unwrap(), "{reader}: {id}");
        assert_eq!(url, item["url"].as_str().unwrap(), "{reader}: {id}");
        assert_eq!(*date, unix(&item["date_published"]), "{reader}: {id}");
    }
}

#[test]
fn newsboat_reads_every_entry_once_and_follows_changes_in_place() {
    if !have("newsboat") {
        return;
    }
    let site = Site::sample();
    let server = TestServer::start(&site, &[]);
    // newsboat keeps one item per guid across all its feeds: one cache per format.
    let readers: Vec<(String, Newsboat)> = ["atom", "rss"]
        .iter()
        .map(|ext| {
            let feed = format!("http://{}/feed.{ext}", server.addr);
            let nb = Newsboat::new(&site.out(&format!("newsboat-{ext}")), &feed);
            (feed, nb)
        })
        .collect();
    let before = herald_items(&server);
    for (feed, nb) in &readers {
        nb.reload();
        assert_same_entries(&format!("newsboat {feed}"), &nb.items(feed), &before);
    }

    let (edited, added) = change_content(&site, &server, true);
    let after = herald_items(&server);
    for (feed, nb) in &readers {
        nb.reload();
        let items = nb.items(feed);
        // The deleted article stays in the reader (readers keep what they have read).
        let live: Vec<_> = items
            .iter()
            .filter(|(g, ..)| after.contains_key(g))
            .cloned()
            .collect();
        assert_same_entries(&format!("newsboat {feed} after changes"), &live, &after);
        assert_eq!(items.len(), before.len() + 1, "{feed}: {items:?}");
        let edited: Vec<_> = items.iter().filter(|(g, ..)| *g == edited).collect();
        assert_eq!(edited.len(), 1);
        assert_eq!(edited[0].1, "Welcome, edited", "updated in place");
        assert_eq!(items.iter().filter(|(g, ..)| *g == added).count(), 1);
    }

    // Nothing changed: newsboat revalidates (it keeps ETag and Last-Modified) and gets 304s.
    for (_, nb) in &readers {
        nb.reload();
    }
    let before_304 = not_modified(&server);
    for (_, nb) in &readers {
        nb.reload();
    }
    assert!(
        not_modified(&server) >= before_304 + readers.len() as f64,
        "no 304 for an unchanged feed"
    );
}

/// sfeed's TSV: (id, title, link, timestamp) per line.
fn sfeed_items(file: &Path) -> Vec<(String, String, String, i64)> {
    read(file)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (
                f[5].to_string(),
                f[1].to_string(),
                f[2].to_string(),
                f[0].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn sfeed_reads_every_entry_once_and_imports_the_opml_once_per_feed() {
    if !have("sfeed_update") || !have("sfeed_opml_import") {
        return;
    }
    let site = Site::sample();
    let server = TestServer::start(&site, &[]);
    let base = format!("http://{}", server.addr);
    let dir = site.out("sfeed");
    std::fs::create_dir_all(&dir).unwrap();
    let rc = dir.join("sfeedrc");
    std::fs::write(
        &rc,
        format!(
            "sfeedpath=\"{}/feeds\"\nfeeds() {{\n  feed \"atom\" \"{base}/feed.atom\"\n  feed \"rss\" \"{base}/feed.rss\"\n}}\n",
            dir.display()
        ),
    )
    .unwrap();
    let update = || {
        let o = Command::new("sfeed_update")
            .arg(&rc)
            .env("HOME", &dir)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "sfeed_update: {}{}",
            stdout(&o),
            stderr(&o)
        );
    };
    update();
    let before = herald_items(&server);
    for name in ["atom", "rss"] {
        let items = sfeed_items(&dir.join("feeds").join(name));
        assert_same_entries(&format!("sfeed {name}"), &items, &before);
    }

    // sfeed keeps a line per (id, title, link): an edit of the body is updated in place,
    // one of the title is a new line by sfeed's design, so the body is edited here.
    let (edited, added) = change_content(&site, &server, false);
    server.wait_until("the body edit is served", || {
        server.get("/feed.json").text().contains("An edited body.")
    });
    update();
    for name in ["atom", "rss"] {
        let items = sfeed_items(&dir.join("feeds").join(name));
        assert_eq!(items.iter().filter(|(g, ..)| *g == edited).count(), 1);
        let mut ids: Vec<&str> = items.iter().map(|(g, ..)| g.as_str()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "sfeed {name}: an entry appears twice");
        assert_eq!(items.iter().filter(|(g, ..)| *g == added).count(), 1);
    }

    // Importing the OPML subscribes to each feed once.
    let opml = server.get("/feeds.opml").body;
    let mut import = Command::new("sfeed_opml_import")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    import.stdin.take().unwrap().write_all(&opml).unwrap();
    let o = import.wait_with_output().unwrap();
    let imported: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.trim_start().starts_with("feed "))
        .map(str::to_string)
        .collect();
    let outlines = String::from_utf8_lossy(&opml).matches("xmlUrl=").count();
    assert_eq!(imported.len(), outlines, "{imported:#?}");
    let mut urls: Vec<&str> = imported
        .iter()
        .filter_map(|l| l.rsplit('\'').nth(1))
        .collect();
    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), outlines, "each feed once: {imported:#?}");
    assert!(urls.iter().all(|u| u.ends_with("/feed.atom")), "{urls:?}");
}
