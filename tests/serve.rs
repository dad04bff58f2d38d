//! `herald serve` end to end: the real binary on port 0 over a temp content dir.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::*;

fn serve_site() -> (Site, TestServer) {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    (site, server)
}

fn atom(server: &TestServer) -> String {
    server.get("/feed.atom").text()
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn entry_field(feed: &str, title: &str, field: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(feed).unwrap();
    let entry = doc
        .descendants()
        .filter(|n| n.has_tag_name("entry"))
        .find(|e| {
            e.children()
                .any(|c| c.has_tag_name("title") && c.text() == Some(title))
        })?;
    entry
        .children()
        .find(|c| c.has_tag_name(field))
        .and_then(|c| c.text())
        .map(str::to_string)
}

#[test]
fn serves_exactly_what_build_writes() {
    let site = Site::new("content", "serve.toml");
    let out = site.build("out");
    let server = TestServer::start(&site, &[]);
    for path in files(&out) {
        let r = server.get(&format!("/{path}"));
        assert_eq!(r.status, 200, "/{path}");
        assert_eq!(
            r.body,
            std::fs::read(out.join(&path)).unwrap(),
            "/{path} differs from build output"
        );
    }
    assert_eq!(
        server.get("/").body,
        std::fs::read(out.join("index.html")).unwrap()
    );
    let types = [
        ("/feed.rss", "application/rss+xml; charset=utf-8"),
        ("/feed.atom", "application/atom+xml; charset=utf-8"),
        ("/feed.json", "application/feed+json; charset=utf-8"),
        ("/feeds.opml", "text/x-opml; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
    ];
    for (path, ct) in types {
        let r = server.get(path);
        assert_eq!(r.header("content-type"), Some(ct), "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=120"),
            "{path}"
        );
        let vary = if path.ends_with(".rss") || path.ends_with(".atom") {
            "Accept-Encoding, Sec-Fetch-Dest, Sec-Fetch-Mode"
        } else {
            "Accept-Encoding"
        };
        assert_eq!(r.header("vary"), Some(vary), "{path}");
    }
    assert_eq!(
        server.get("/feed.atom").header("link"),
        Some("<https://news.example.com/feed.atom>; rel=\"self\"")
    );
}

#[test]
fn conditional_get_with_both_validators() {
    let (_site, server) = serve_site();
    let r = server.get("/feed.atom");
    let etag = r.header("etag").unwrap().to_string();
    let lm = r.header("last-modified").unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong etag: {etag}"
    );
    let weak = format!("W/{etag}");
    let list = format!("\"nope\", {etag}");
    for inm in [etag.as_str(), weak.as_str(), list.as_str(), "*"] {
        let r = server.request("GET", "/feed.atom", &[("If-None-Match", inm)]);
        assert_eq!(r.status, 304, "If-None-Match: {inm}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(
            r.header("vary"),
            Some("Accept-Encoding, Sec-Fetch-Dest, Sec-Fetch-Mode")
        );
        assert!(r.header("cache-control").is_some());
    }
    // A non-matching tag wins over a matching date.
    let r = server.request(
        "GET",
        "/feed.atom",
        &[("If-None-Match", "\"other\""), ("If-Modified-Since", &lm)],
    );
    assert_eq!(r.status, 200);
    // Dates are compared as times: equal, later (made up) → 304; earlier → 200; garbage → 200.
    assert_eq!(
        server
            .request("GET", "/feed.atom", &[("If-Modified-Since", &lm)])
            .status,
        304
    );
    let later = "Fri, 31 Dec 2100 23:59:59 GMT";
    assert_eq!(
        server
            .request("GET", "/feed.atom", &[("If-Modified-Since", later)])
            .status,
        304
    );
    let earlier = "Sat, 01 Jan 2000 00:00:00 GMT";
    assert_eq!(
        server
            .request("GET", "/feed.atom", &[("If-Modified-Since", earlier)])
            .status,
        200
    );
    assert_eq!(
        server
            .request("GET", "/feed.atom", &[("If-Modified-Since", "yesterday")])
            .status,
        200
    );
}

#[test]
fn compressed_bodies_decompress_to_identity() {
    let (_site, server) = serve_site();
    let plain = server.get("/feed.rss");
    let gz = server.request("GET", "/feed.rss", &[("Accept-Encoding", "gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&gz.body), plain.body);
    let br = server.request("GET", "/feed.rss", &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(br.header("content-encoding"), Some("br"));
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &br.body[..], &mut out).unwrap();
    assert_eq!(out, plain.body);
    let no_br = server.request("GET", "/feed.rss", &[("Accept-Encoding", "br;q=0, gzip")]);
    assert_eq!(no_br.header("content-encoding"), Some("gzip"));
    let ident = server.request("GET", "/feed.rss", &[("Accept-Encoding", "identity")]);
    assert_eq!(ident.header("content-encoding"), None);
    let tags = [plain.header("etag"), gz.header("etag"), br.header("etag")];
    assert!(
        tags[0] != tags[1] && tags[1] != tags[2] && tags[0] != tags[2],
        "{tags:?}"
    );
    // A 304 for the gzip variant needs the gzip tag.
    let r = server.request(
        "GET",
        "/feed.rss",
        &[
            ("Accept-Encoding", "gzip"),
            ("If-None-Match", gz.header("etag").unwrap()),
        ],
    );
    assert_eq!(r.status, 304);
}

#[test]
fn head_405_404_healthz_metrics() {
    let (_site, server) = serve_site();
    let get = server.get("/feed.json");
    let head = server.request("HEAD", "/feed.json", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    for h in ["content-length", "etag", "content-type", "last-modified"] {
        assert_eq!(head.header(h), get.header(h), "{h}");
    }
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = server.request(method, "/feed.atom", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    for path in [
        "/nope",
        "/../../etc/passwd",
        "/content/welcome.md",
        "/feed.atom/",
        "/articles/",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/feed%ff.atom",
        "/feed.atom%00",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.body.len() < 100);
    }
    // Any character of a path may be percent-encoded.
    let encoded = server.get("/%66eed.js%6Fn");
    assert_eq!(encoded.status, 200);
    assert_eq!(encoded.header("etag"), get.header("etag"));
    assert_eq!(server.get("/healthz").text(), "ok\n");
    let m = server.get("/metrics").text();
    for name in [
        "herald_articles_indexed 15",
        "herald_articles_skipped_total{reason=\"draft\"} 1",
        "herald_rebuilds_total",
        "herald_rebuild_duration_seconds_total",
        "herald_http_requests_total{route=\"json\",status=\"200\"}",
        "herald_http_not_modified_ratio",
        "herald_last_change_timestamp_seconds",
    ] {
        assert!(m.contains(name), "{name} missing from /metrics:\n{m}");
    }
    let store: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("herald_page_store_bytes "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(store > 0, "article pages are in the page store:\n{m}");
}

#[test]
fn live_add_edit_rename_delete_and_new_folders() {
    let (site, server) = serve_site();
    let c = site.content();
    std::fs::write(
        c.join("live.md"),
        "---\ntitle: Live one\ndate: 2020-05-05\n---\nFirst version.\n",
    )
    .unwrap();
    server.wait_until("new file served", || atom(&server).contains("Live one"));
    let page = page_of(&server, "Live one");
    let first = server.get(&page);
    assert_eq!(first.status, 200, "{page}");
    assert!(String::from_utf8_lossy(&first.body).contains("First version"));
    let feed = atom(&server);
    let id = entry_field(&feed, "Live one", "id").unwrap();
    let updated = entry_field(&feed, "Live one", "updated").unwrap();
    // Editing keeps the id and moves `updated` (one-second resolution: wait for a new second).
    let start = Instant::now();
    while chrono::Utc::now().format("%S").to_string() == updated[17..19]
        && start.elapsed() < Duration::from_secs(2)
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(
        c.join("live.md"),
        "---\ntitle: Live one\ndate: 2020-05-05\n---\nSecond version.\n",
    )
    .unwrap();
    server.wait_until("edit served", || atom(&server).contains("Second version"));
    // The article's own page follows the edit, with a new validator.
    let second = server.get(&page);
    assert!(String::from_utf8_lossy(&second.body).contains("Second version"));
    assert_ne!(second.header("etag"), first.header("etag"));
    let feed = atom(&server);
    assert_eq!(entry_field(&feed, "Live one", "id").unwrap(), id);
    assert!(
        entry_field(&feed, "Live one", "updated").unwrap() > updated,
        "updated must move"
    );
    // A rename keeps the id.
    std::fs::create_dir_all(c.join("moved")).unwrap();
    std::fs::rename(c.join("live.md"), c.join("moved/live-renamed.md")).unwrap();
    server.wait_until("rename applied", || {
        server
            .get("/metrics")
            .text()
            .contains("herald_rebuilds_total")
            && {
                let f = atom(&server);
                f.contains("Second version")
                    && entry_field(&f, "Live one", "id").as_deref() == Some(id.as_str())
            }
    });
    // A folder made after start, with a file written right away, is watched.
    std::fs::create_dir_all(c.join("new/deeper")).unwrap();
    std::fs::write(c.join("new/deeper/n.txt"), "Deep new article\n\nBody.\n").unwrap();
    server.wait_until("file in new folder served", || {
        atom(&server).contains("Deep new article")
    });
    std::fs::write(c.join("new/deeper/m.txt"), "Second deep article\n\nBody.\n").unwrap();
    server.wait_until("second file in new folder served", || {
        atom(&server).contains("Second deep article")
    });
    // Deleting removes it from every feed; so does deleting a whole folder.
    std::fs::remove_file(c.join("moved/live-renamed.md")).unwrap();
    server.wait_until("delete applied", || !atom(&server).contains("Live one"));
    assert_eq!(server.get(&page).status, 404, "{page} after delete");
    std::fs::remove_dir_all(c.join("new")).unwrap();
    server.wait_until("folder delete applied", || {
        !atom(&server).contains("Deep new article")
    });
    // Moving a folder in from outside adds its articles.
    let outside = site.dir.path().join("incoming");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x.txt"), "Moved in from outside\n\nBody.\n").unwrap();
    std::fs::rename(&outside, c.join("incoming")).unwrap();
    server.wait_until("moved-in folder served", || {
        atom(&server).contains("Moved in from outside")
    });
}

#[test]
fn a_relative_content_dir_follows_changes() {
    // As an operator runs it: from the site's folder, with `--content content`. The watcher
    // reports absolute paths; they must still be found inside a content dir given relatively.
    let site = Site::new("content", "serve.toml");
    let cmd = site.command_with_content(&site.config, std::path::Path::new("content"));
    let server = TestServer::start_command(cmd, &[]);
    std::fs::write(
        site.content().join("relative.md"),
        "---\ntitle: Seen through a relative dir\n---\nx\n",
    )
    .unwrap();
    server.wait_until("the new article is served", || {
        atom(&server).contains("Seen through a relative dir")
    });
    std::fs::remove_file(site.content().join("relative.md")).unwrap();
    server.wait_until("the article goes", || {
        !atom(&server).contains("Seen through a relative dir")
    });
}

#[test]
fn new_files_with_one_title_arriving_together_get_their_own_pages() {
    let (site, server) = serve_site();
    let c = site.content();
    for name in ["twin-a.md", "twin-b.md", "twin-c.md"] {
        std::fs::write(c.join(name), "---\ntitle: Twin title\n---\nBody.\n").unwrap();
    }
    server.wait_until("all three served", || {
        atom(&server).matches("<title>Twin title</title>").count() == 3
    });
    let feed: serde_json::Value = serde_json::from_str(&server.get("/feed.json").text()).unwrap();
    let urls: std::collections::BTreeSet<&str> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"] == "Twin title")
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    assert_eq!(urls.len(), 3, "one page each: {urls:?}");
    // The state store took them (a slug clash used to fail the write and fall back to memory).
    assert!(server
        .get("/metrics")
        .text()
        .contains("herald_state_errors_total 0"));
    assert!(!server.log_contains("STATE STORE"));
}

#[test]
fn category_feed_follows_changes() {
    let (site, server) = serve_site();
    std::fs::write(
        site.content().join("cat.md"),
        "---\ntitle: Brand new category entry\ncategories: [Brand New]\n---\nx\n",
    )
    .unwrap();
    server.wait_until("category feed appears", || {
        server.get("/categories/brand-new/feed.atom").status == 200
    });
    std::fs::remove_file(site.content().join("cat.md")).unwrap();
    server.wait_until("category feed goes", || {
        server.get("/categories/brand-new/feed.atom").status == 404
    });
}

#[test]
fn term_feeds_follow_edits_and_revalidate_without_rendering() {
    let (site, server) = serve_site();
    let path = site.content().join("tagged.md");
    let write = |title: &str| {
        let md = format!("---\ntitle: {title}\ntags: [Zebra Crossing]\n---\nBody of {title}.\n");
        std::fs::write(&path, md).unwrap();
    };
    write("First take");
    let feed = "/tags/zebra-crossing/feed.atom";
    server.wait_until("tag feed appears", || server.get(feed).status == 200);
    let first = server.get(feed);
    assert!(first.text().contains("Body of First take"));
    let etag = first.header("etag").unwrap().to_string();
    // Feeds rendered right after publishing are done once the count stops moving.
    let mut renders = server.metric("herald_feed_renders_total");
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = server.metric("herald_feed_renders_total");
        if now == renders {
            break;
        }
        renders = now;
    }
    assert!(renders >= 1.0);
    for _ in 0..3 {
        let r = server.request("GET", feed, &[("If-None-Match", &etag)]);
        assert_eq!(r.status, 304);
    }
    assert_eq!(server.get(feed).body, first.body);
    assert_eq!(
        server.metric("herald_feed_renders_total"),
        renders,
        "a revalidation or a cached body rendered the feed again"
    );
    // Term feeds are offered gzip-compressed (brotli only for the main feeds).
    let gz = server.request("GET", feed, &[("Accept-Encoding", "br, gzip")]);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&gz.body), first.body);
    // An edit: new body, new ETag, and the old ETag no longer revalidates.
    write("Second take");
    server.wait_until("tag feed follows the edit", || {
        server.get(feed).text().contains("Body of Second take")
    });
    let second = server.get(feed);
    assert_ne!(second.header("etag"), Some(etag.as_str()));
    assert_eq!(
        server
            .request("GET", feed, &[("If-None-Match", &etag)])
            .status,
        200
    );
}

/// Starts a Markdown file titled `title` and leaves it open, half written.
fn start_writing(path: &std::path::Path, title: &str) -> std::fs::File {
    let mut f = std::fs::File::create(path).unwrap();
    write!(f, "---\ntitle: {title}\n---\nFirst half of the body, ").unwrap();
    f.flush().unwrap();
    f
}

/// For `ms`, the article titled `title` is never published; then the writer finishes and
/// closes the file, and the whole article is served.
fn unpublished_until_closed(server: &TestServer, mut f: std::fs::File, title: &str, ms: u64) {
    let pause_until = Instant::now() + Duration::from_millis(ms);
    while Instant::now() < pause_until {
        assert!(
            !atom(server).contains(title),
            "published while the writer still had the file open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    f.write_all(b"second half.\n").unwrap();
    drop(f);
    server.wait_until("complete file served", || {
        atom(server).contains("second half.")
    });
}

#[test]
fn a_file_written_in_two_parts_is_never_served_truncated() {
    let (site, server) = serve_site();
    let f = start_writing(&site.content().join("slow.md"), "Slow writer");
    unpublished_until_closed(&server, f, "Slow writer", 800);
}

#[test]
fn a_file_being_written_while_herald_starts_is_never_served_truncated() {
    let site = Site::new("content", "serve.toml");
    let f = start_writing(&site.content().join("starting.md"), "Written at start");
    // The first scan and the rescan that follows the watch setup both see the open file.
    let server = TestServer::start(&site, &[]);
    unpublished_until_closed(&server, f, "Written at start", 1500);
}

#[test]
fn restart_keeps_ids_dates_and_last_modified() {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    let before = server.get("/feed.atom");
    let before_rss = server.get("/feed.rss").text();
    let tag_feed = "/tags/markdown/feed.json";
    let before_tag = server.get(tag_feed);
    assert_eq!(before_tag.status, 200);
    assert!(server.stop().success());
    let server = TestServer::start(&site, &[]);
    // Every article came from the article cache: no file was parsed again.
    assert!(
        server.log_contains("article cache cached=15 to_parse=1"),
        "the restart did not use the cache"
    );
    let after = server.get("/feed.atom");
    assert_eq!(before.body, after.body, "a restart changed the Atom feed");
    assert_eq!(before.header("etag"), after.header("etag"));
    assert_eq!(
        before.header("last-modified"),
        after.header("last-modified")
    );
    assert_eq!(before_rss, server.get("/feed.rss").text());
    let after_tag = server.get(tag_feed);
    assert_eq!(
        before_tag.body, after_tag.body,
        "a restart changed a tag feed"
    );
    for h in ["etag", "last-modified"] {
        assert_eq!(
            before_tag.header(h),
            after_tag.header(h),
            "{h} of a tag feed"
        );
    }
    // Deleting an article while stopped: Last-Modified must not go backwards.
    assert!(server.stop().success());
    std::fs::remove_file(site.content().join("plain/note.txt")).unwrap();
    let server = TestServer::start(&site, &[]);
    let after = server.get("/feed.atom");
    let t =
        |r: &HttpResponse| httpdate::parse_http_date(r.header("last-modified").unwrap()).unwrap();
    assert!(t(&after) >= t(&before), "Last-Modified went backwards");
    assert_ne!(before.header("etag"), after.header("etag"));
}

/// The path of the page of the article titled `title`, from the JSON feed.
fn page_of(server: &TestServer, title: &str) -> String {
    let feed: serde_json::Value = serde_json::from_str(&server.get("/feed.json").text()).unwrap();
    let items = feed["items"].as_array().unwrap();
    let item = items.iter().find(|i| i["title"] == title).unwrap();
    let url = item["url"].as_str().unwrap();
    url[url.find("/articles/").unwrap()..].to_string()
}

/// Every article page the site links from its JSON feed: path → body.
fn article_pages(server: &TestServer) -> std::collections::BTreeMap<String, Vec<u8>> {
    let feed: serde_json::Value = serde_json::from_str(&server.get("/feed.json").text()).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for item in feed["items"].as_array().unwrap() {
        let url = item["url"].as_str().unwrap();
        let Some(at) = url.find("/articles/") else {
            continue;
        };
        let path = url[at..].to_string();
        let r = server.get(&path);
        assert_eq!(r.status, 200, "{path}");
        out.insert(path, r.body);
    }
    assert!(out.len() > 5);
    out
}

#[test]
fn a_damaged_or_missing_page_store_never_serves_a_wrong_page() {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    let pages = article_pages(&server);
    assert!(server.stop().success());
    let store = site.state().join("pages");
    let len = std::fs::metadata(&store).unwrap().len();
    assert!(
        len > 64 * 1024,
        "pages are kept in the state dir's page store"
    );
    let damages: [(&str, &dyn Fn()); 3] = [
        ("cut short", &|| {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&store)
                .unwrap();
            f.set_len(len - 100).unwrap();
        }),
        ("overwritten", &|| {
            std::fs::write(&store, vec![0x5a; len as usize]).unwrap()
        }),
        ("deleted", &|| std::fs::remove_file(&store).unwrap()),
    ];
    for (what, damage) in damages {
        damage();
        let server = TestServer::start(&site, &[]);
        assert_eq!(article_pages(&server), pages, "page store {what}");
        assert!(server.stop().success());
    }
    // And once repaired, the next restart uses the cache again.
    let server = TestServer::start(&site, &[]);
    assert!(
        server.log_contains("article cache cached=15 to_parse=1"),
        "the cache was not rebuilt after the page store was lost"
    );
    assert_eq!(article_pages(&server), pages);
}

/// Responses of a keep-alive connection, in order: (head, body), by Content-Length.
fn split_responses(mut raw: &[u8], heads_only: &[bool]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for &head_only in heads_only {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        let len = if head_only { 0 } else { len };
        out.push((head, raw[end..end + len].to_vec()));
        raw = &raw[end + len..];
    }
    assert!(raw.is_empty(), "bytes after the last response");
    out
}

/// Large bodies (the main feeds here) are sent from a mapped file with sendfile: every
/// byte must arrive in order, for a client that reads slowly (so the socket fills and each
/// send is partial) and pipelines requests (heads and bodies interleaved on one socket).
#[test]
fn large_bodies_arrive_whole_at_slow_and_pipelining_clients() {
    let site = Site::new("content", "serve.toml");
    let big = site.content().join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..30 {
        let para =
            format!("Paragraph of article {i} with words enough to fill a feed. ").repeat(40);
        let text = format!("Large article {i}\n\n{para}\n\n{para}\n\n{para}\n");
        std::fs::write(big.join(format!("a{i:02}.txt")), text).unwrap();
    }
    let out = site.build("out");
    let want = std::fs::read(out.join("feed.atom")).unwrap();
    assert!(
        want.len() > 200_000,
        "the feed is large: {} bytes",
        want.len()
    );
    let server = TestServer::start(&site, &[]);
    // The test is about the file-backed path: the body must really be in such a file.
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", server.child.id())).unwrap();
    assert!(maps.contains("/.body-"), "no file-backed body mapped");
    let get = server.get("/feed.atom");
    assert_eq!(get.body, want);
    let mut s = std::net::TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let host = server.addr;
    let requests = [
        ("GET", "/feed.atom", ""),
        ("HEAD", "/feed.atom", ""),
        ("GET", "/feed.atom", "Accept-Encoding: gzip\r\n"),
        ("GET", "/feed.rss", ""),
        ("GET", "/feed.atom", "Connection: close\r\n"),
    ];
    let mut pipelined = String::new();
    for (method, path, extra) in requests {
        pipelined.push_str(&format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"
        ));
    }
    s.write_all(pipelined.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf).unwrap() {
            0 => break,
            n => raw.extend_from_slice(&buf[..n]),
        }
        std::thread::sleep(Duration::from_micros(300));
    }
    let heads_only: Vec<bool> = requests.iter().map(|r| r.0 == "HEAD").collect();
    let responses = split_responses(&raw, &heads_only);
    assert!(responses.iter().all(|(h, _)| h.starts_with("http/1.1 200")));
    assert_eq!(responses[0].1, want);
    assert!(responses[1].1.is_empty());
    assert_eq!(gunzip(&responses[2].1), want);
    assert_eq!(responses[3].1, std::fs::read(out.join("feed.rss")).unwrap());
    assert_eq!(responses[4].1, want);
}

#[test]
fn slowloris_is_closed_while_others_are_served() {
    let (_site, server) = serve_site();
    let mut slow = std::net::TcpStream::connect(server.addr).unwrap();
    slow.write_all(b"GET /feed.atom HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    // Other clients are served meanwhile.
    for _ in 0..5 {
        assert_eq!(server.get("/feed.atom").status, 200);
    }
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 512];
    // The server closes the connection (EOF, perhaps after a 408) within the timeout.
    let closed = loop {
        match slow.read(&mut buf) {
            Ok(0) | Err(_) => break true,
            Ok(_) => continue,
        }
    };
    assert!(closed);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "slow client kept for {:?}",
        started.elapsed()
    );
}

#[test]
fn sighup_with_a_broken_config_keeps_serving_and_a_good_one_applies() {
    let site = Site::new("content", "serve.toml");
    let config = site.dir.path().join("herald.toml");
    std::fs::copy(fixtures().join("config/serve.toml"), &config).unwrap();
    let server = TestServer::start_with_config(&site, &config, &[]);
    std::fs::write(&config, "[site]\ntitle = \n").unwrap();
    server.signal("HUP");
    server.wait_until("reload rejected", || server.log_contains("invalid config"));
    assert_eq!(server.get("/feed.atom").status, 200);
    assert!(atom(&server).contains("<title>Fixture News</title>"));
    let good = std::fs::read_to_string(fixtures().join("config/serve.toml"))
        .unwrap()
        .replace("Fixture News", "Reloaded News");
    std::fs::write(&config, good).unwrap();
    server.signal("HUP");
    server.wait_until("new title served", || {
        atom(&server).contains("<title>Reloaded News</title>")
    });
}

#[test]
fn sigterm_exits_zero() {
    let (_site, server) = serve_site();
    assert_eq!(server.get("/healthz").status, 200);
    let status = server.stop();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn listens_on_several_addresses_ipv4_and_ipv6() {
    use std::io::BufRead;
    /// Stops the daemon even when an assertion fails.
    struct Guard(std::process::Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let site = Site::new("content", "serve.toml");
    let mut child = site
        .command(&site.config)
        .args(["serve", "--listen", "127.0.0.1:0", "--listen", "[::1]:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut guard = Guard(child);
    let (tx, rx) = std::sync::mpsc::channel();
    // Keep draining the log so the daemon never writes into a closed pipe.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(addr) = line.split("listening addr=").nth(1) {
                let _ = tx.send(addr.trim().parse::<std::net::SocketAddr>().unwrap());
            }
        }
    });
    let timeout = std::time::Duration::from_secs(30);
    let addrs = [
        rx.recv_timeout(timeout).unwrap(),
        rx.recv_timeout(timeout).unwrap(),
    ];
    assert!(addrs[0].is_ipv4() && addrs[1].is_ipv6(), "{addrs:?}");
    for addr in addrs {
        wait_until("served", &mut || {
            http_request(addr, "GET", "/healthz", &[]).status == 200
        });
    }
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(guard.0.id().to_string())
        .status();
    assert_eq!(guard.0.wait().unwrap().code(), Some(0));
}

/// Tiny Tiny RSS revalidates with If-Modified-Since alone, and HTTP dates have one-second
/// resolution: ten edits within a second, each published, with such a poller between them.
/// It must end with the final content, and no response may date itself after its `Date`.
#[test]
fn if_modified_since_alone_never_misses_an_edit_within_one_second() {
    let site = Site::new("content", "serve.toml");
    let config = site.out("fast.toml");
    std::fs::write(
        &config,
        read(&site.config).replace("debounce_ms = 200", "debounce_ms = 10"),
    )
    .unwrap();
    let server = TestServer::start_with_config(&site, &config, &[]);
    let time = |r: &HttpResponse, name: &str| {
        httpdate::parse_http_date(r.header(name).unwrap_or_else(|| panic!("no {name}"))).unwrap()
    };
    let mut since: Option<String> = None;
    let mut seen = String::new();
    let mut poll = || {
        let headers: Vec<(&str, &str)> = since
            .iter()
            .map(|s| ("If-Modified-Since", s.as_str()))
            .collect();
        let r = server.request("GET", "/feed.json", &headers);
        assert!(
            time(&r, "Last-Modified") <= time(&r, "Date"),
            "Last-Modified {:?} after Date {:?}",
            r.header("Last-Modified"),
            r.header("Date")
        );
        match r.status {
            200 => {
                since = r.header("Last-Modified").map(str::to_string);
                seen = r.text();
            }
            304 => {}
            s => panic!("status {s}"),
        }
    };
    let path = site.content().join("plain/busy.txt");
    for i in 0..10 {
        std::fs::write(&path, format!("Busy edit {i}\n\nBody {i}.\n")).unwrap();
        // Published (the debounce is 10 ms), then polled.
        server.wait_until("edit published", || {
            server
                .get("/feed.json")
                .text()
                .contains(&format!("Busy edit {i}"))
        });
        poll();
    }
    poll();
    assert!(
        seen.contains("Busy edit 9"),
        "the poller missed the last edit"
    );
}

#[test]
fn sitemaps_and_robots_follow_the_content_and_revalidate() {
    let (site, server) = serve_site();
    let sitemap = server.get("/sitemap.xml");
    assert_eq!(sitemap.status, 200);
    assert_eq!(
        sitemap.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    let etag = sitemap.header("etag").unwrap().to_string();
    let again = server.request("GET", "/sitemap.xml", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    let robots = server.get("/robots.txt").text();
    assert!(
        robots.contains("Sitemap: https://news.example.com/news-sitemap.xml"),
        "{robots}"
    );

    // A new article is in both sitemaps at once, and the sitemap's ETag moves.
    std::fs::write(
        site.content().join("plain/sitemapped.txt"),
        "Sitemapped\n\nBody.\n",
    )
    .unwrap();
    server.wait_until("the new article in the sitemap", || {
        server
            .get("/sitemap.xml")
            .text()
            .contains("/articles/sitemapped.html")
    });
    assert!(server
        .get("/news-sitemap.xml")
        .text()
        .contains("<news:title>Sitemapped</news:title>"));
    let moved = server.request("GET", "/sitemap.xml", &[("If-None-Match", &etag)]);
    assert_eq!(moved.status, 200);

    // The content dir's own robots.txt is served as it is (and is not an article).
    std::fs::write(
        site.content().join("robots.txt"),
        "User-agent: *\nDisallow: /tags/\n",
    )
    .unwrap();
    server.wait_until("the site's own robots.txt", || {
        server.get("/robots.txt").text() == "User-agent: *\nDisallow: /tags/\n"
    });
    assert!(!server.get("/feed.json").text().contains("Disallow"));
    std::fs::remove_file(site.content().join("robots.txt")).unwrap();
    server.wait_until("herald's robots.txt again", || {
        server.get("/robots.txt").text().contains("Sitemap:")
    });
}

#[test]
fn feeds_read_well_in_a_browser_with_the_same_bytes_for_readers() {
    let (_site, server) = serve_site();
    let reader = server.get("/feed.atom");
    assert_eq!(
        reader.header("content-type"),
        Some("application/atom+xml; charset=utf-8")
    );
    assert!(reader.text().contains(
        r#"<?xml-stylesheet type="text/css" href="https://news.example.com/feed.css"?>"#
    ));
    let vary = reader.header("vary").unwrap_or_default();
    assert!(
        vary.contains("Sec-Fetch-Dest") && vary.contains("Sec-Fetch-Mode"),
        "{vary}"
    );
    // A browser's navigation: the same bytes as application/xml, which it styles.
    let browser = server.request(
        "GET",
        "/feed.rss",
        &[
            ("Sec-Fetch-Dest", "document"),
            ("Sec-Fetch-Mode", "navigate"),
            ("Accept", "text/html"),
        ],
    );
    assert_eq!(
        browser.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    assert_eq!(browser.body, server.get("/feed.rss").body);
    // Accept alone never decides (some readers ask for HTML).
    let html_reader = server.request("GET", "/feed.rss", &[("Accept", "text/html")]);
    assert_eq!(
        html_reader.header("content-type"),
        Some("application/rss+xml; charset=utf-8")
    );
    let css = server.get("/feed.css");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(css.text().contains("This is a feed"));
}

/// Every `href` of an HTML page, and its `<h3>` entry titles in order.
fn links_and_titles(html: &str) -> (Vec<String>, Vec<String>) {
    let attr = |s: &str, name: &str| -> Vec<String> {
        s.split(name)
            .skip(1)
            .filter_map(|rest| rest.split('"').next().map(str::to_string))
            .collect()
    };
    let titles = html
        .split("<h3><a href=\"")
        .skip(1)
        .filter_map(|rest| {
            rest.split_once("\">")
                .and_then(|(_, t)| t.split("</a>").next())
        })
        .map(str::to_string)
        .collect();
    (attr(html, "href=\""), titles)
}

#[test]
fn each_category_and_tag_has_pages_with_older_entries_and_the_lists_are_paged() {
    let site = Site::new("content", "serve.toml");
    // 120 articles in one category (three pages of 50), 250 tags (two list pages of 200).
    let dir = site.content().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..120 {
        std::fs::write(
            dir.join(format!("a{i:03}.md")),
            format!(
                "---\ntitle: Paged story {i:03}\ndate: 2026-09-01T{:02}:{:02}:00Z\ncategories: [Paged]\ntags: [\"Topic {}\", \"Topic {}\"]\n---\nBody {i}.\n",
                i / 60,
                i % 60,
                i,
                i + 120
            ),
        )
        .unwrap();
    }
    let server = TestServer::start(&site, &[]);
    let page1 = server.get("/categories/paged/");
    assert_eq!(page1.status, 200);
    assert_eq!(
        page1.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page1.text();
    assert!(
        html.contains("<h1>Paged</h1>") && html.contains("120 articles"),
        "{html}"
    );
    // Autodiscovery and subscribe links for the term's own feeds, the address shown.
    for ext in ["atom", "rss", "json"] {
        let url = format!("https://news.example.com/categories/paged/feed.{ext}");
        assert!(
            html.lines()
                .any(|l| l.starts_with("<link rel=\"alternate\"") && l.contains(&url)),
            "no autodiscovery for {url}"
        );
        assert!(html.contains(&format!("href=\"{url}\"")), "{ext}");
        assert!(html.contains(&format!("<code>{url}</code>")), "{ext}");
    }
    // Newest first, page after page, each article once, older pages linked.
    let mut seen = Vec::new();
    let mut path = "/categories/paged/".to_string();
    for page in 1..=3 {
        let r = server.get(&path);
        assert_eq!(r.status, 200, "{path}");
        let (links, titles) = links_and_titles(&r.text());
        assert_eq!(titles.len(), if page < 3 { 50 } else { 20 }, "{path}");
        seen.extend(titles);
        let next = links
            .iter()
            .find(|l| l.ends_with(&format!("/categories/paged/page/{}/", page + 1)));
        match next {
            Some(url) => {
                path = url
                    .trim_start_matches("https://news.example.com")
                    .to_string()
            }
            None => assert_eq!(page, 3, "page {page} links no older page"),
        }
    }
    let expected: Vec<String> = (0..120)
        .rev()
        .map(|i| format!("Paged story {i:03}"))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(server.get("/categories/paged/page/4/").status, 404);
    assert_eq!(server.get("/categories/paged/page/0/").status, 404);
    // `?page=2` is where /page/2/ is; a folder without its slash is where it is.
    let q = server.get("/categories/paged/?page=2");
    assert_eq!(q.status, 301);
    assert_eq!(q.header("location"), Some("/categories/paged/page/2/"));
    let bare = server.get("/categories/paged");
    assert_eq!(
        (bare.status, bare.header("location")),
        (301, Some("/categories/paged/"))
    );
    // Pages revalidate like feeds.
    for p in [
        "/categories/paged/",
        "/categories/paged/page/2/",
        "/tags/",
        "/page/2/",
    ] {
        let r = server.get(p);
        assert_eq!(r.status, 200, "{p}");
        let etag = r.header("etag").unwrap().to_string();
        assert!(r.header("last-modified").is_some(), "{p}");
        let again = server.request("GET", p, &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{p}");
    }
    // The lists: every tag, most used first, 200 a page; the index links them, not all.
    let tags = server.get("/tags/").text();
    let listed = |html: &str| html.matches("<span class=\"count\">").count();
    assert_eq!(listed(&tags), 200);
    assert!(tags.contains("href=\"https://news.example.com/tags/page/2/\""));
    let tags2 = server.get("/tags/page/2/").text();
    let all_tags = tags
        .split("<p class=\"count\">")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap();
    assert!(all_tags > 240, "{all_tags}");
    assert_eq!(listed(&tags2), all_tags - 200);
    let index = server.get("/").text();
    assert!(
        index.matches("/tags/topic-").count() <= 20,
        "the index lists the top terms only"
    );
    assert!(index.contains("href=\"https://news.example.com/tags/\""));
    assert!(index.contains("href=\"https://news.example.com/page/2/\""));
    // Live: a new article shows on its term's page at once; a term no article has is gone.
    let etag = server
        .get("/categories/paged/page/2/")
        .header("etag")
        .unwrap()
        .to_string();
    std::fs::write(
        dir.join("new.md"),
        "---\ntitle: Brand new story\ndate: 2026-11-01T00:00:00Z\ncategories: [Paged, Fresh]\n---\nNew.\n",
    )
    .unwrap();
    server.wait_until("the new article on the term's page", || {
        server
            .get("/categories/paged/")
            .text()
            .contains("Brand new story")
    });
    assert_eq!(server.get("/categories/fresh/").status, 200);
    let moved = server.request(
        "GET",
        "/categories/paged/page/2/",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(
        moved.status, 200,
        "page 2 changed: its entries moved down one"
    );
    assert!(moved.text().contains("Paged story 070"));
    std::fs::remove_file(dir.join("new.md")).unwrap();
    server.wait_until("the emptied term's page gone", || {
        server.get("/categories/fresh/").status == 404
    });
    // Article pages link their terms' pages.
    let article = server.get("/articles/paged-story-005.html").text();
    assert!(article.contains("href=\"https://news.example.com/categories/paged/\""));
    assert!(article.contains("href=\"https://news.example.com/tags/topic-5/\""));
}
