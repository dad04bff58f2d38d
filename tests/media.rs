//! Media files from the content dir, against the real binary: served at their path with
//! their type and validators, single ranges, SVG locked down, live changes, nothing outside
//! the index reachable, a file replaced while it is sent, and `build` copying them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn image(site: &Site, rel: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = site.content().join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn media_files_are_served_with_validators_and_ranges() {
    let site = Site::new("content", "serve.toml");
    let png = pattern(300_000, 1);
    image(&site, "html/images/photo.png", &png);
    image(
        &site,
        "html/drawing.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    );
    let server = TestServer::start(&site, &[]);

    let r = server.get("/html/images/photo.png");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, png, "the file's bytes, whole");
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_eq!(r.header("content-length"), Some("300000"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("last-modified").is_some());
    let etag = r.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let head = server.request("HEAD", "/html/images/photo.png", &[]);
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.header("etag"), Some(etag.as_str()));

    let again = server.request("GET", "/html/images/photo.png", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);

    let part = server.request("GET", "/html/images/photo.png", &[("Range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &png[10..20]);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/300000"));
    let tail = server.request("GET", "/html/images/photo.png", &[("Range", "bytes=-5")]);
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &png[png.len() - 5..])
    );
    let open = server.request(
        "GET",
        "/html/images/photo.png",
        &[("Range", "bytes=299990-")],
    );
    assert_eq!(open.body, &png[299_990..]);
    let past = server.request(
        "GET",
        "/html/images/photo.png",
        &[("Range", "bytes=400000-")],
    );
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */300000"));
    let two = server.request(
        "GET",
        "/html/images/photo.png",
        &[("Range", "bytes=0-1,5-6")],
    );
    assert_eq!(
        (two.status, two.body.len()),
        (200, png.len()),
        "several ranges: the whole"
    );
    let stale = server.request(
        "GET",
        "/html/images/photo.png",
        &[("Range", "bytes=0-1"), ("If-Range", "\"another\"")],
    );
    assert_eq!(stale.status, 200, "If-Range of another version: the whole");

    let svg = server.get("/html/drawing.svg");
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    let csp = svg.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("sandbox"),
        "{csp}"
    );
}

#[test]
fn media_follow_the_content_dir_live() {
    let site = Site::new("content", "serve.toml");
    let server = TestServer::start(&site, &[]);
    let p = image(&site, "new/pic.jpg", &pattern(1000, 2));
    server.wait_until("a new image served", || {
        server.get("/new/pic.jpg").status == 200
    });
    let etag = server
        .get("/new/pic.jpg")
        .header("etag")
        .unwrap()
        .to_string();
    std::thread::sleep(Duration::from_millis(20));
    image(&site, "new/pic.jpg", &pattern(2000, 3));
    server.wait_until("the changed image", || {
        server.get("/new/pic.jpg").body.len() == 2000
    });
    assert_ne!(server.get("/new/pic.jpg").header("etag").unwrap(), etag);
    let moved = site.content().join("new/moved.jpg");
    std::fs::rename(&p, &moved).unwrap();
    server.wait_until("a renamed image at its new path only", || {
        server.get("/new/moved.jpg").status == 200 && server.get("/new/pic.jpg").status == 404
    });
    std::fs::remove_dir_all(site.content().join("new")).unwrap();
    server.wait_until("a deleted folder's image gone", || {
        server.get("/new/moved.jpg").status == 404
    });
}

#[test]
fn nothing_but_indexed_media_is_reachable() {
    let site = Site::new("content", "serve.toml");
    image(&site, "ok.png", &pattern(100, 4));
    image(&site, "empty.png", b"");
    image(&site, ".hidden/x.png", &pattern(100, 5));
    image(&site, "x.png~", &pattern(100, 6));
    let outside = site.dir.path().join("secret.png");
    std::fs::write(&outside, b"secret").unwrap();
    std::os::unix::fs::symlink(&outside, site.content().join("link.png")).unwrap();
    std::fs::write(site.content().join("notes.exe"), b"MZ").unwrap();
    let server = TestServer::start(&site, &[]);
    assert_eq!(server.get("/ok.png").status, 200);
    for path in [
        "/empty.png",
        "/.hidden/x.png",
        "/x.png~",
        "/link.png",
        "/notes.exe",
        "/../secret.png",
        "/%2e%2e/secret.png",
        "/html/../ok.png/../../secret.png",
        "/%2fetc%2fpasswd",
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!r.text().contains("secret"), "{path}");
    }
}

#[test]
fn a_file_replaced_while_it_is_sent_arrives_as_it_was_opened() {
    let site = Site::new("content", "serve.toml");
    let old = pattern(8 << 20, 7);
    let path = image(&site, "big.mp4", &old);
    let server = TestServer::start(&site, &[]);
    server.wait_until("served", || {
        server.request("HEAD", "/big.mp4", &[]).status == 200
    });
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /big.mp4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = vec![0; 64 << 10];
    s.read_exact(&mut first).unwrap();
    // Replaced by a rename (as editors and rsync do) halfway through the response.
    let new = site.content().join("big.mp4.tmp");
    std::fs::write(&new, pattern(8 << 20, 9)).unwrap();
    std::fs::rename(&new, &path).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    first.extend(rest);
    let split = first.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert_eq!(
        &first[split + 4..],
        &old[..],
        "the bytes that were opened, all of them"
    );
}

#[test]
fn build_copies_media_files() {
    let site = Site::new("content", "test.toml");
    let png = pattern(5000, 8);
    image(&site, "html/images/photo.png", &png);
    let out = site.build("out");
    assert_eq!(
        std::fs::read(out.join("html/images/photo.png")).unwrap(),
        png
    );
}

/// A PNG header of `w`×`h` pixels (enough for the header reader; not a whole image).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend(w.to_be_bytes());
    b.extend(h.to_be_bytes());
    b.extend([8, 2, 0, 0, 0, 0, 0, 0, 0]);
    b
}

#[test]
fn featured_images_and_enclosures_reach_every_format_and_the_page() {
    let site = Site::new("content", "test.toml");
    image(&site, "pod/cover.png", &png_header(1200, 800));
    image(&site, "pod/episode.mp3", &pattern(12345, 3));
    image(&site, "pod/broken.png", b"\x89PNG\r\n");
    std::fs::write(
        site.content().join("pod/episode.md"),
        "---\ntitle: \"Episode </script>\u{2028} one\"\nimage: cover.png\nenclosure: episode.mp3\ndate: 2026-01-02\n---\nListen.\n",
    )
    .unwrap();
    std::fs::write(
        site.content().join("pod/pictured.md"),
        "---\ntitle: Pictured\nimage: /pod/cover.png\ndate: 2026-01-01\n---\nA picture.\n",
    )
    .unwrap();
    std::fs::write(
        site.content().join("pod/missing.md"),
        "---\ntitle: Missing\nimage: nothere.png\ndate: 2026-01-01\n---\nNo picture.\n",
    )
    .unwrap();
    std::fs::write(
        site.content().join("pod/broken.md"),
        "---\ntitle: Broken\nimage: broken.png\ndate: 2026-01-01\n---\nBroken picture.\n",
    )
    .unwrap();
    let out = site.build("out");
    let rss = read(&out.join("feed.rss"));
    let cover = "https://news.example.com/pod/cover.png";
    // The episode: its audio is the enclosure, its image a thumbnail.
    assert!(rss.contains(r#"<enclosure url="https://news.example.com/pod/episode.mp3" length="12345" type="audio/mpeg"/>"#), "{rss}");
    assert!(rss.contains(&format!(
        r#"<media:thumbnail height="800" url="{cover}" width="1200""#
    )));
    // The picture: the image is the enclosure and media:content, with its size.
    assert!(rss.contains(&format!(
        r#"<enclosure url="{cover}" length="{}" type="image/png"/>"#,
        png_header(1, 1).len()
    )));
    assert!(rss.contains(&format!(r#"<media:content fileSize="{}" height="800" medium="image" type="image/png" url="{cover}" width="1200""#, png_header(1, 1).len())));
    assert!(rss.contains(r#"xmlns:media="http://search.yahoo.com/mrss/""#));
    parse_xml_feed(&out.join("feed.rss"));
    let atom = read(&out.join("feed.atom"));
    assert!(
        atom.contains(r#"rel="enclosure" type="audio/mpeg" length="12345""#),
        "{atom}"
    );
    let json: serde_json::Value = serde_json::from_str(&read(&out.join("feed.json"))).unwrap();
    let items = json["items"].as_array().unwrap();
    let episode = items
        .iter()
        .find(|i| i["title"].as_str().unwrap().starts_with("Episode"))
        .unwrap();
    assert_eq!(episode["image"], cover);
    assert_eq!(episode["attachments"][0]["mime_type"], "audio/mpeg");
    assert_eq!(episode["attachments"][0]["size_in_bytes"], 12345);
    // A missing or broken image: no field (broken: no size), never a broken feed.
    let missing = items.iter().find(|i| i["title"] == "Missing").unwrap();
    assert!(missing.get("image").is_none());
    assert!(!rss.contains("broken.png\" width"));
    // The page: Open Graph, a canonical link and JSON-LD no title can close early.
    let page = std::fs::read_dir(out.join("articles"))
        .unwrap()
        .map(|e| read(&e.unwrap().path()))
        .find(|p| p.contains("Episode"))
        .unwrap();
    assert!(page.contains(&format!(r#"<meta property="og:image" content="{cover}">"#)));
    assert!(page.contains(r#"<meta property="og:image:width" content="1200">"#));
    assert!(page.contains(r#"<link rel="canonical" href="https://news.example.com/articles/"#));
    let start = page.find(r#"<script type="application/ld+json">"#).unwrap();
    let script = &page[start..];
    let end = script.find("</script>").unwrap();
    let json = &script[r#"<script type="application/ld+json">"#.len()..end];
    assert!(!json.contains("</") && !json.contains('\u{2028}'), "{json}");
    let ld: serde_json::Value = serde_json::from_str(json).unwrap();
    assert!(
        ld["headline"]
            .as_str()
            .unwrap()
            .starts_with("Episode </script>"),
        "{ld}"
    );
    assert_eq!(ld["image"][0], cover);
    // `check` says what was wrong.
    let check = site.run(&["check"]);
    let said = stdout(&check) + &stderr(&check);
    assert!(said.contains("nothere.png"), "{said}");
    assert!(said.contains("broken.png"), "{said}");
}

#[test]
fn a_media_file_being_rewritten_is_not_served_half_written() {
    let site = Site::new("content", "serve.toml");
    let path = image(&site, "clip.webm", &pattern(100_000, 1));
    let server = TestServer::start(&site, &[]);
    assert_eq!(server.get("/clip.webm").status, 200);
    // Rewritten in place: truncated, half the new bytes written, the writer still at it.
    let new = pattern(100_000, 2);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(&new[..50_000]).unwrap();
    f.flush().unwrap();
    let during = server.get("/clip.webm");
    assert_ne!(during.status, 200, "half a file served");
    assert_eq!(during.header("retry-after"), Some("1"));
    f.write_all(&new[50_000..]).unwrap();
    drop(f);
    server.wait_until("the whole new file", || {
        server.get("/clip.webm").body == new
    });
}
