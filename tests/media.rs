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
