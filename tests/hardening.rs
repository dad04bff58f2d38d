//! What an attacker found (issue 14), each against the real binary: files swapped under the
//! loader, hostile content, floods. Every test here failed before its fix.

mod common;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// Swaps two paths atomically (`renameat2(RENAME_EXCHANGE)`).
fn exchange(a: &Path, b: &Path) -> bool {
    let a = CString::new(a.as_os_str().as_bytes()).unwrap();
    let b = CString::new(b.as_os_str().as_bytes()).unwrap();
    // SAFETY: two valid NUL-terminated paths; the call only reads them.
    unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        ) == 0
    }
}

/// Swaps `content/race/race.txt` with `content/race/.swap.txt` (made by `make_swap`) as fast
/// as it can for `secs`, while herald runs; returns the server.
fn swap_race(site: &Site, secs: u64, make_swap: impl FnOnce(&Path)) -> TestServer {
    let race = site.content().join("race");
    std::fs::create_dir_all(&race).unwrap();
    std::fs::write(race.join("race.txt"), "A race title\n\nAn ordinary body.\n").unwrap();
    make_swap(&race.join(".swap.txt"));
    let server = TestServer::start(site, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (a, b) = (race.join("race.txt"), race.join(".swap.txt"));
            while !stop.load(Ordering::Relaxed) {
                assert!(exchange(&a, &b), "renameat2 failed");
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut next_rescan = Instant::now();
    while Instant::now() < deadline {
        // Rescans (SIGHUP re-reads everything) as well as events load the swapped file.
        if Instant::now() >= next_rescan {
            server.signal("HUP");
            next_rescan = Instant::now() + Duration::from_millis(200);
        }
        let feed = server.get("/feed.json").text();
        assert!(
            !feed.contains("TOP SECRET"),
            "a file from outside the content dir was published"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    server
}

#[test]
fn a_symlink_swapped_in_never_publishes_a_file_from_outside() {
    let site = Site::new("content", "serve.toml");
    let secret = site.out("secret.txt");
    std::fs::write(&secret, "TOP SECRET title\n\nTOP SECRET body.\n").unwrap();
    let server = swap_race(&site, 5, |swap| {
        std::os::unix::fs::symlink(&secret, swap).unwrap();
    });
    // Whatever state the swap stopped in, a rescan publishes nothing from outside either.
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert!(!server.get("/feed.json").text().contains("TOP SECRET"));
}

#[test]
fn a_fifo_swapped_in_never_stalls_the_indexer() {
    let site = Site::new("content", "serve.toml");
    let server = swap_race(&site, 5, |swap| {
        let c = CString::new(swap.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    });
    // The indexer still works: a new article is published.
    std::fs::write(
        site.content().join("plain/after-fifo.txt"),
        "Published after the FIFO\n\nStill indexing.\n",
    )
    .unwrap();
    server.wait_until("the indexer publishes again", || {
        server
            .get("/feed.json")
            .text()
            .contains("Published after the FIFO")
    });
}

#[test]
fn tags_whose_slugs_collide_keep_their_own_feeds() {
    let site = Site::new("content", "test.toml");
    // "=@~." and "!^?~;" hash to the same 32 bits; "n-18112a52" spells that slug.
    for (file, tag) in [("a.md", "=@~."), ("b.md", "!^?~;"), ("c.md", "n-18112a52")] {
        std::fs::write(
            site.content().join(file),
            format!("---\ntitle: Tagged {tag}\ntags: [\"{tag}\"]\n---\nBody.\n"),
        )
        .unwrap();
    }
    let out = site.build("out");
    let mut found = Vec::new();
    // Each tag's folder (beside them, `index.html` lists every tag).
    for dir in std::fs::read_dir(out.join("tags")).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let feed = read(&dir.join("feed.json"));
        let here: Vec<&str> = ["=@~.", "!^?~;", "n-18112a52"]
            .into_iter()
            .filter(|tag| feed.contains(&format!("\"title\": \"Tagged {tag}\"")))
            .collect();
        assert!(here.len() <= 1, "one feed for several tags: {here:?}");
        found.extend(here);
    }
    found.sort();
    assert_eq!(
        found,
        ["!^?~;", "=@~.", "n-18112a52"],
        "each tag its own feed"
    );
}

/// HTML that html5ever takes seconds to minutes on, all under the size cap, and Markdown
/// whose HTML is hundreds of times its size: each is refused with a reason (and quickly,
/// which `bench/` measures; here the reasons are checked).
#[test]
fn html_that_would_stall_the_parser_and_exploding_markdown_are_refused() {
    let site = Site::new("content", "test.toml");
    let dir = site.content().join("hostile");
    std::fs::create_dir_all(&dir).unwrap();
    let page = |body: &str| {
        format!("<html><head><title>T</title></head><body><article>{body}</article></body></html>")
    };
    let files = [
        ("rt.html", page(&"<rt>".repeat(50_000))),
        (
            "attributes.html",
            page(&format!("<p{}", " a=1".repeat(150_000))),
        ),
        (
            "comment.html",
            page(&format!("<!-- x --!>{}", "<div>".repeat(50_000))),
        ),
        ("amp.html", page(&"&amp;".repeat(500_000))),
        (
            "amp.md",
            format!("---\ntitle: T\n---\n{}", "a&b ".repeat(500_000)),
        ),
        (
            "table.md",
            format!(
                "---\ntitle: T\n---\n|{}\n|{}\n{}",
                "x|".repeat(1000),
                "-|".repeat(1000),
                "|x|\n".repeat(1000)
            ),
        ),
    ];
    for (name, text) in &files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    // A real page with ruby annotations left open, many entities and a comment is fine.
    std::fs::write(
        dir.join("fine.html"),
        page(&format!(
            "<p>{}</p><!-- a comment --><p>AT&amp;T &copy; 2026</p>",
            "<ruby>漢<rt>kan<rt>ji</ruby> ".repeat(2000)
        )),
    )
    .unwrap();
    let o = site.run(&["check"]);
    let out = stdout(&o);
    for (name, _) in &files {
        let reason = if name.starts_with("table") {
            "over 8 times its"
        } else {
            "skipped: HTML nested more than"
        };
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("hostile/{name}: ")) && l.contains(reason)),
            "{name} not refused:\n{out}"
        );
    }
    assert!(!out.contains("hostile/fine.html"), "{out}");
}

/// Eight 4.5 MB articles in one category made a 37 MiB term feed, rendered again on every
/// request (larger than the feed cache) and copied per slow reader. A feed carries entry
/// bodies up to `[feed] max_feed_bytes`; past it, summaries alone.
#[test]
fn a_feed_carries_bodies_up_to_max_feed_bytes_then_summaries() {
    let site = Site::new("content", "test.toml");
    let config = site.out("cap.toml");
    std::fs::write(
        &config,
        read(&site.config).replace("[feed]", "[feed]\nmax_feed_bytes = 100000"),
    )
    .unwrap();
    let dir = site.content().join("heavy");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..8 {
        let body = format!("Paragraph {i} with some words in it.\n\n").repeat(1500);
        std::fs::write(
            dir.join(format!("heavy-{i}.md")),
            format!(
                "---\ntitle: Heavy {i}\ndate: 2026-01-0{}\ncategories: [Heavy]\n---\n{body}",
                i + 1
            ),
        )
        .unwrap();
    }
    let out = site.build_with(&config, "out");
    for feed in [out.clone(), out.join("categories/heavy")] {
        let json: serde_json::Value = serde_json::from_str(&read(&feed.join("feed.json"))).unwrap();
        let items = json["items"].as_array().unwrap();
        let bodies: usize = items
            .iter()
            .filter_map(|i| i["content_html"].as_str())
            .map(str::len)
            .sum();
        assert!(bodies <= 100_000, "{bodies} bytes of bodies");
        let heavy: Vec<_> = items
            .iter()
            .filter(|i| i["title"].as_str().unwrap().starts_with("Heavy"))
            .collect();
        assert_eq!(heavy.len(), 8, "every entry is still listed");
        // The newest fit (~60 KB each: one), the rest carry their summary as text.
        assert!(heavy[0]["content_html"].is_string());
        for i in &heavy[1..] {
            assert!(i.get("content_html").is_none());
            assert_eq!(i["content_text"], i["summary"]);
        }
        for name in ["feed.atom", "feed.rss"] {
            let size = std::fs::metadata(feed.join(name)).unwrap().len();
            assert!(size < 200_000, "{name}: {size} bytes");
            parse_xml_feed(&feed.join(name));
        }
    }
}

/// A config like `serve.toml` with `[server]` settings replaced.
fn server_config(site: &Site, settings: &str) -> std::path::PathBuf {
    let config = site.out("server.toml");
    std::fs::write(
        &config,
        read(&site.config).replace("max_connections = 64", settings),
    )
    .unwrap();
    config
}

/// A client that pipelines requests for a feed and never reads, with a small receive
/// buffer: the server's writes stall on it.
fn slow_reader(addr: std::net::SocketAddr) -> std::net::TcpStream {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let s = std::net::TcpStream::connect(addr).unwrap();
    let size: libc::c_int = 4096;
    // SAFETY: a valid socket and a c_int option value of the size given.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let req = "GET /feed.rss HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    (&s).write_all(req.as_bytes()).unwrap();
    s
}

#[test]
fn slow_readers_never_keep_healthz_or_new_readers_out() {
    let site = Site::new("content", "serve.toml");
    let config = server_config(
        &site,
        "max_connections = 8\nmax_connections_per_client = 0\nsend_timeout_ms = 3000",
    );
    let server = TestServer::start_with_config(&site, &config, &[]);
    let slow: Vec<_> = (0..8).map(|_| slow_reader(server.addr)).collect();
    // Every connection is taken by a reader that stopped reading more than a second ago.
    std::thread::sleep(Duration::from_millis(1500));
    for _ in 0..3 {
        assert_eq!(server.get("/healthz").status, 200);
        assert_eq!(server.get("/feed.atom").status, 200);
    }
    assert!(server.metric("herald_http_connections_evicted_total") >= 1.0);
    // The send timeout closes the rest: nothing stays open but the request asking.
    server.wait_until("stalled connections closed", || {
        server.metric("herald_http_connections_open") <= 1.0
    });
    drop(slow);
}

#[test]
fn one_client_address_holds_at_most_max_connections_per_client() {
    use std::io::Read;
    let site = Site::new("content", "serve.toml");
    let config = server_config(
        &site,
        "max_connections = 64\nmax_connections_per_client = 3",
    );
    let server = TestServer::start_with_config(&site, &config, &[]);
    let held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    server.wait_until("three connections open", || {
        // The metrics request is a fourth connection: refused while three are held.
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    });
    drop(held);
    server.wait_until("room again", || {
        // A connection refused now (the held ones not yet seen closed) is a reset.
        std::panic::catch_unwind(|| http_request(server.addr, "GET", "/healthz", &[]).status)
            .is_ok_and(|s| s == 200)
    });
    assert!(server.metric("herald_http_connections_refused_total") >= 1.0);
}

/// `ln -s . content/mirror` and `ln -s .. content/dirloop/up` made while serving turned 7
/// articles into 24, each copy with a new id. A folder reached twice is walked once: while
/// serving, at a rescan and at the next start alike.
#[test]
fn folder_symlinks_made_while_serving_never_duplicate_articles() {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    let count = |server: &TestServer| server.metric("herald_articles_indexed");
    server.wait_until("articles counted", || count(&server) > 5.0);
    let before = count(&server);
    std::os::unix::fs::symlink(".", site.content().join("mirror")).unwrap();
    std::fs::create_dir(site.content().join("dirloop")).unwrap();
    std::os::unix::fs::symlink("..", site.content().join("dirloop/up")).unwrap();
    std::os::unix::fs::symlink("plain", site.content().join("plain-again")).unwrap();
    // A new article after the links: once it is in, the links have been seen too.
    std::fs::write(
        site.content().join("dirloop/after.txt"),
        "After the links\n\nBody.\n",
    )
    .unwrap();
    server.wait_until("the new article", || {
        server.get("/feed.json").text().contains("After the links")
    });
    assert_eq!(count(&server), before + 1.0);
    server.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&server), before + 1.0, "after a rescan");
    drop(server);
    let server = TestServer::start(&site, &[]);
    server.wait_until("articles counted", || count(&server) > 5.0);
    assert_eq!(count(&server), before + 1.0, "after a restart");
    let feed = server.get("/feed.json").text();
    assert!(
        !feed.contains("mirror/") && !feed.contains("plain-again/"),
        "{feed}"
    );
}

fn rss_kib(pid: u32) -> u64 {
    read(Path::new(&format!("/proc/{pid}/status")))
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Renaming two files back and forth (~60 000 renames a second) stalled publishing for a
/// minute and grew memory without bound. Changes made during such a flood are published,
/// and memory stays flat.
#[test]
fn a_rename_flood_neither_stalls_publishing_nor_grows_memory() {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    let dir = site.content().join("flood");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.txt"), "Flood A\n\nBody A.\n").unwrap();
    std::fs::write(dir.join("b.txt"), "Flood B\n\nBody B.\n").unwrap();
    server.wait_until("flood files in", || {
        server.get("/feed.json").text().contains("Flood B")
    });
    let rss_before = rss_kib(server.child.id());
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (stop, dir) = (stop.clone(), dir.clone());
        std::thread::spawn(move || {
            let (a, b, t) = (dir.join("a.txt"), dir.join("b.txt"), dir.join("t.txt"));
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::fs::rename(&a, &t).unwrap();
                std::fs::rename(&b, &a).unwrap();
                std::fs::rename(&t, &b).unwrap();
                n += 3;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    // An edit in the middle of the flood is published while it goes on.
    std::fs::write(
        site.content().join("plain/during.txt"),
        "Written during the flood\n\nBody.\n",
    )
    .unwrap();
    let published = Instant::now();
    server.wait_until("the edit made during the flood", || {
        server
            .get("/feed.json")
            .text()
            .contains("Written during the flood")
    });
    let took = published.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let renames = flood.join().unwrap();
    let grown = rss_kib(server.child.id()).saturating_sub(rss_before);
    eprintln!("{renames} renames; edit published after {took:?}; RSS grew {grown} KiB");
    assert!(renames > 10_000, "the flood was too slow to mean anything");
    assert!(grown < 32 * 1024, "RSS grew {grown} KiB during the flood");
    // Both files are there once each when it settles.
    server.wait_until("settled", || {
        let feed = server.get("/feed.json").text();
        feed.matches("\"title\": \"Flood A\"").count() == 1
            && feed.matches("\"title\": \"Flood B\"").count() == 1
    });
}

#[test]
fn html_pages_carry_security_headers_and_feeds_do_not_need_them() {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    let index = server.get("/");
    let csp = index.header("Content-Security-Policy").unwrap();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("script-src"),
        "no script is ever needed: {csp}"
    );
    assert_eq!(index.header("X-Frame-Options"), Some("DENY"));
    assert!(index.header("Referrer-Policy").is_some());
    assert_eq!(index.header("X-Content-Type-Options"), Some("nosniff"));
    let page = index
        .text()
        .split("href=\"https://news.example.com/articles/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .map(|s| format!("/articles/{s}"))
        .unwrap();
    assert!(
        server
            .get(&page)
            .header("Content-Security-Policy")
            .is_some(),
        "{page}"
    );
    assert!(server.get("/feed.atom").header("X-Frame-Options").is_none());
}

#[test]
fn metrics_can_be_turned_off_or_served_on_a_listener_of_their_own() {
    let site = Site::new("content", "serve.toml");
    let off = server_config(&site, "max_connections = 64\nmetrics_listen = \"off\"");
    let server = TestServer::start_with_config(&site, &off, &[]);
    assert_eq!(server.get("/metrics").status, 404);
    assert_eq!(server.get("/feed.atom").status, 200);
    drop(server);

    let own = server_config(
        &site,
        "max_connections = 64\nmetrics_listen = \"127.0.0.1:0\"",
    );
    let server = TestServer::start_with_config(&site, &own, &[]);
    assert_eq!(
        server.get("/metrics").status,
        404,
        "not on the feeds' listener"
    );
    let mut addr = None;
    server.wait_until("the metrics listener's address", || {
        addr = server.log.lock().unwrap().iter().find_map(|l| {
            let at = l.find("metrics_addr=")? + "metrics_addr=".len();
            l[at..]
                .split_whitespace()
                .next()?
                .parse::<std::net::SocketAddr>()
                .ok()
        });
        addr.is_some()
    });
    let addr = addr.unwrap();
    let m = http_request(addr, "GET", "/metrics", &[]);
    assert_eq!(m.status, 200);
    assert!(m.text().contains("herald_articles_indexed"));
    assert_eq!(http_request(addr, "GET", "/healthz", &[]).status, 200);
    assert_eq!(http_request(addr, "GET", "/feed.atom", &[]).status, 404);
}
