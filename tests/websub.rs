//! WebSub, against the real binary: hub links in headers and all three formats, pings to
//! an external hub (a fake one on loopback), and the built-in hub with subscribers on
//! loopback (subscribe, verify, signed delivery, unsubscribe, expiry, restart, abuse).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hmac::{Hmac, KeyInit, Mac};

/// One request a fake endpoint received.
#[derive(Debug, Clone)]
struct Got {
    method: String,
    /// Path and query, as sent.
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
    at: Instant,
}

impl Got {
    fn query(&self) -> HashMap<String, String> {
        let q = self.target.split_once('?').map(|(_, q)| q).unwrap_or("");
        url::form_urlencoded::parse(q.as_bytes())
            .into_owned()
            .collect()
    }

    fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
}

/// How a fake endpoint answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Echo `hub.challenge` on GET; 204 on POST.
    Good,
    /// Answer verification with something else than the challenge.
    WrongEcho,
    /// Never answer a POST (hold the connection).
    Hang,
    /// 500 to the first POST, then 204.
    FailOnce,
    /// 410 Gone to every POST.
    Gone,
}

/// A fake subscriber or hub: a loopback HTTP server that records every request.
struct Endpoint {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Endpoint {
    fn start(mode: Mode) -> Endpoint {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let posts = Arc::new(Mutex::new(0u32));
        let g = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (g, posts) = (g.clone(), posts.clone());
                std::thread::spawn(move || serve_one(stream, mode, &g, &posts));
            }
        });
        Endpoint { addr, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn posts(&self) -> Vec<Got> {
        self.requests()
            .into_iter()
            .filter(|g| g.method == "POST")
            .collect()
    }
}

fn serve_one(stream: TcpStream, mode: Mode, got: &Mutex<Vec<Got>>, posts: &Mutex<u32>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    let g = Got {
        method: method.clone(),
        target,
        headers,
        body,
        at: Instant::now(),
    };
    let query = g.query();
    got.lock().unwrap().push(g);
    let (status, reply) = match (method.as_str(), mode) {
        ("GET", Mode::WrongEcho) => ("200 OK", "not the challenge".to_string()),
        ("GET", _) => (
            "200 OK",
            query.get("hub.challenge").cloned().unwrap_or_default(),
        ),
        ("POST", Mode::Hang) => {
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
        ("POST", Mode::Gone) => ("410 Gone", String::new()),
        ("POST", Mode::FailOnce) => {
            let mut n = posts.lock().unwrap();
            *n += 1;
            if *n == 1 {
                ("500 Internal Server Error", String::new())
            } else {
                ("204 No Content", String::new())
            }
        }
        _ => ("204 No Content", String::new()),
    };
    let mut s = stream;
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// The serve tests' config with a `[websub]` section.
fn config(site: &Site, websub: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(fixtures().join("config/serve.toml")).unwrap();
    let path = site.out("websub.toml");
    std::fs::write(&path, format!("{base}\n[websub]\n{websub}\n")).unwrap();
    path
}

/// POSTs a form to herald.
fn post_form(server: &TestServer, path: &str, pairs: &[(&str, &str)]) -> HttpResponse {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        form.append_pair(k, v);
    }
    post_raw(
        server.addr,
        path,
        "application/x-www-form-urlencoded",
        form.finish().as_bytes(),
    )
}

fn post_raw(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.as_bytes().to_vec())
        .unwrap_or_default();
    HttpResponse {
        status,
        headers: Vec::new(),
        body,
    }
}

const TOPIC: &str = "https://news.example.com/feed.atom";

fn subscribe(server: &TestServer, callback: &str, secret: Option<&str>) -> HttpResponse {
    let mut pairs = vec![
        ("hub.mode", "subscribe"),
        ("hub.topic", TOPIC),
        ("hub.callback", callback),
    ];
    if let Some(s) = secret {
        pairs.push(("hub.secret", s));
    }
    post_form(server, "/websub", &pairs)
}

fn edit(site: &Site, title: &str) {
    std::fs::write(
        site.content().join("plain/websub.txt"),
        format!("{title}\n\nA body.\n"),
    )
    .unwrap();
}

fn hmac_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn feeds_advertise_their_hubs_in_headers_and_all_three_formats() {
    let site = Site::new("content", "serve.toml");
    let cfg = config(
        &site,
        "hubs = [\"https://hub.example.net/\"]\nbuiltin = true\nallow_private_callbacks = true",
    );
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    let hubs = [
        "https://hub.example.net/",
        "https://news.example.com/websub",
    ];
    for (path, ext) in [
        ("/feed.atom", "atom"),
        ("/feed.rss", "rss"),
        ("/feed.json", "json"),
    ] {
        let get = server.get(path);
        let etag = get.header("etag").unwrap().to_string();
        let not_modified = server.request("GET", path, &[("If-None-Match", &etag)]);
        let head = server.request("HEAD", path, &[]);
        assert_eq!(not_modified.status, 304);
        for r in [&get, &not_modified, &head] {
            let link = r.header("link").unwrap_or_default();
            for hub in hubs {
                assert!(
                    link.contains(&format!("<{hub}>; rel=\"hub\"")),
                    "{path}: {link}"
                );
            }
            let this = format!("<https://news.example.com/feed.{ext}>; rel=\"self\"");
            assert!(link.contains(&this), "{path}: {link}");
        }
        let body = get.text();
        for hub in hubs {
            match ext {
                "json" => {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let listed: Vec<&str> = json["hubs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|h| h["type"] == "WebSub")
                        .map(|h| h["url"].as_str().unwrap())
                        .collect();
                    assert!(listed.contains(&hub), "{listed:?}");
                }
                _ => {
                    let doc = roxmltree::Document::parse(&body).unwrap();
                    let found = doc.descendants().any(|n| {
                        n.tag_name().name() == "link"
                            && n.tag_name().namespace() == Some("http://www.w3.org/2005/Atom")
                            && n.attribute("rel") == Some("hub")
                            && n.attribute("href") == Some(hub)
                    });
                    assert!(found, "{path} has no hub link {hub}");
                }
            }
        }
    }
    // Term feeds too.
    let opml = server.get("/feeds.opml").text();
    let term = opml
        .split("xmlUrl=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .find(|u| u.contains("/tags/"))
        .expect("a tag feed");
    let route = term.trim_start_matches("https://news.example.com");
    let link = server
        .get(route)
        .header("link")
        .unwrap_or_default()
        .to_string();
    assert!(link.contains("rel=\"hub\""), "{route}: {link}");
}

#[test]
fn changed_feeds_are_pinged_to_external_hubs_and_retried() {
    let hub = Endpoint::start(Mode::FailOnce);
    let site = Site::new("content", "serve.toml");
    let cfg = config(&site, &format!("hubs = [\"{}\"]", hub.url("/hub")));
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    // Starting pings nothing: nothing changed since the feeds were first published.
    std::thread::sleep(Duration::from_millis(500));
    assert!(hub.posts().is_empty(), "{:?}", hub.posts());
    edit(&site, "Pinged");
    server.wait_until("a ping retried after the hub's 500", || {
        hub.posts().len() >= 2
    });
    let posts = hub.posts();
    let form = posts[1].form();
    assert!(
        form.contains(&("hub.mode".into(), "publish".into())),
        "{form:?}"
    );
    let urls: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "hub.url")
        .map(|(_, v)| v.as_str())
        .collect();
    for u in [
        "https://news.example.com/feed.atom",
        "https://news.example.com/feed.rss",
        "https://news.example.com/feed.json",
    ] {
        assert!(urls.contains(&u), "{urls:?}");
    }
    // Only changed feeds: the new article has no tags, so no tag feed changed.
    assert!(!urls.iter().any(|u| u.contains("/tags/")), "{urls:?}");
    assert_eq!(
        posts[0].headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    assert!(server.metric("herald_websub_ping_errors_total") >= 1.0);
    server.wait_until("pings counted", || {
        server.metric("herald_websub_pings_total") >= 3.0
            && server.metric("herald_websub_pings_queued") == 0.0
    });
    // Edits in a burst are coalesced: far fewer pings than edits.
    let before = hub.posts().len();
    for i in 0..20 {
        edit(&site, &format!("Burst {i}"));
        std::thread::sleep(Duration::from_millis(20));
    }
    server.wait_until("the burst published", || {
        server.get("/feed.json").text().contains("Burst 19")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let burst = hub.posts().len() - before;
    assert!((1..=10).contains(&burst), "{burst} pings for 20 edits");
}

#[test]
fn subscribe_verify_and_a_signed_delivery_then_unsubscribe() {
    let sub = Endpoint::start(Mode::Good);
    let site = Site::new("content", "serve.toml");
    let cfg = config(&site, "builtin = true\nallow_private_callbacks = true");
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    let callback = sub.url("/cb?user=1");
    let r = subscribe(&server, &callback, Some("s3cret"));
    assert_eq!(r.status, 202, "{}", r.text());
    server.wait_until("the subscription active", || {
        server.metric("herald_websub_subscriptions") == 1.0
    });
    let verify = &sub.requests()[0];
    assert_eq!(verify.method, "GET");
    let q = verify.query();
    assert_eq!(q["hub.mode"], "subscribe");
    assert_eq!(q["hub.topic"], TOPIC);
    assert_eq!(q["user"], "1", "the callback's own query is kept");
    assert!(q["hub.lease_seconds"].parse::<u64>().unwrap() >= 3600);

    edit(&site, "Delivered");
    server.wait_until("a delivery", || !sub.posts().is_empty());
    let d = &sub.posts()[0];
    let body = String::from_utf8_lossy(&d.body);
    assert!(body.contains("Delivered"), "the full new feed");
    assert_eq!(
        d.headers["content-type"],
        "application/atom+xml; charset=utf-8"
    );
    assert!(d.headers["link"].contains("<https://news.example.com/websub>; rel=\"hub\""));
    assert!(d.headers["link"].contains(&format!("<{TOPIC}>; rel=\"self\"")));
    let want = format!("sha256={}", hmac_hex(b"s3cret", &d.body));
    assert_eq!(d.headers["x-hub-signature"], want);
    assert_eq!(server.get("/feed.atom").body, d.body, "the bytes served");

    let r = post_form(
        &server,
        "/websub",
        &[
            ("hub.mode", "unsubscribe"),
            ("hub.topic", TOPIC),
            ("hub.callback", &callback),
        ],
    );
    assert_eq!(r.status, 202);
    server.wait_until("unsubscribed", || {
        server.metric("herald_websub_subscriptions") == 0.0
    });
    let n = sub.posts().len();
    edit(&site, "After unsubscribing");
    server.wait_until("published", || {
        server
            .get("/feed.json")
            .text()
            .contains("After unsubscribing")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sub.posts().len(), n, "no delivery after unsubscribing");
}

#[test]
fn a_wrong_challenge_echo_makes_no_subscription() {
    let sub = Endpoint::start(Mode::WrongEcho);
    let site = Site::new("content", "serve.toml");
    let cfg = config(&site, "builtin = true\nallow_private_callbacks = true");
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    assert_eq!(subscribe(&server, &sub.url("/cb"), None).status, 202);
    server.wait_until("verification failed", || {
        server.metric("herald_websub_verifications_failed_total") == 1.0
    });
    assert_eq!(server.metric("herald_websub_subscriptions"), 0.0);
    edit(&site, "Not for them");
    server.wait_until("published", || {
        server.get("/feed.json").text().contains("Not for them")
    });
    std::thread::sleep(Duration::from_millis(500));
    assert!(sub.posts().is_empty());
}

#[test]
fn subscriptions_survive_a_restart_and_end_with_their_lease() {
    let sub = Endpoint::start(Mode::Good);
    let short = Endpoint::start(Mode::Good);
    let site = Site::new("content", "serve.toml");
    let cfg = config(&site, "builtin = true\nallow_private_callbacks = true");
    {
        let server = TestServer::start_with_config(&site, &cfg, &[]);
        assert_eq!(subscribe(&server, &sub.url("/cb"), None).status, 202);
        server.wait_until("active", || {
            server.metric("herald_websub_subscriptions") == 1.0
        });
        server.stop();
    }
    // A subscription whose lease ends in two seconds (leases are at least an hour when
    // asked for, so it is written into the hub's file as a restart would find it).
    let file = site.state().join("websub.sqlite");
    let store = herald::store::subscriptions::Subscriptions::open(&file).unwrap();
    store
        .put(&herald::store::subscriptions::Subscription {
            callback: short.url("/cb"),
            topic: TOPIC.into(),
            secret: None,
            expires: chrono::Utc::now().timestamp() + 2,
        })
        .unwrap();
    drop(store);
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    assert_eq!(server.metric("herald_websub_subscriptions"), 2.0);
    std::thread::sleep(Duration::from_secs(3));
    edit(&site, "After the restart");
    server.wait_until("delivered after the restart", || !sub.posts().is_empty());
    std::thread::sleep(Duration::from_millis(500));
    assert!(short.posts().is_empty(), "a lease that ended gets nothing");
}

#[test]
fn bad_subscription_requests_get_a_4xx_and_change_nothing() {
    let sub = Endpoint::start(Mode::Good);
    let site = Site::new("content", "serve.toml");
    let cfg = config(&site, "builtin = true");
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    let cb = sub.url("/cb");
    let long_secret = "x".repeat(200);
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (
            vec![
                ("hub.topic", TOPIC),
                ("hub.callback", "https://example.net/"),
            ],
            400,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.callback", "https://example.net/"),
            ],
            400,
        ),
        (vec![("hub.mode", "subscribe"), ("hub.topic", TOPIC)], 400),
        (
            vec![
                ("hub.mode", "publish"),
                ("hub.topic", TOPIC),
                ("hub.callback", "https://example.net/"),
            ],
            400,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://elsewhere.example/feed.atom"),
                ("hub.callback", "https://example.net/"),
            ],
            400,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", "https://news.example.com/nothing.atom"),
                ("hub.callback", "https://example.net/"),
            ],
            400,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "ftp://example.net/"),
            ],
            400,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "not a url"),
            ],
            400,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "https://example.net/"),
                ("hub.secret", &long_secret),
            ],
            400,
        ),
        // Loopback, private and metadata addresses without allow_private_callbacks.
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", &cb),
            ],
            403,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "http://10.0.0.1/cb"),
            ],
            403,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "http://169.254.169.254/"),
            ],
            403,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "http://[::1]:9/"),
            ],
            403,
        ),
        (
            vec![
                ("hub.mode", "subscribe"),
                ("hub.topic", TOPIC),
                ("hub.callback", "http://localhost:9/"),
            ],
            403,
        ),
    ];
    for (pairs, want) in &cases {
        let r = post_form(&server, "/websub", pairs);
        assert_eq!(r.status, *want, "{pairs:?}: {}", r.text());
    }
    // Too big a body; not a form; not a POST.
    let big = format!("hub.mode=subscribe&x={}", "a".repeat(5000));
    assert_eq!(
        post_raw(
            server.addr,
            "/websub",
            "application/x-www-form-urlencoded",
            big.as_bytes()
        )
        .status,
        413
    );
    assert_eq!(
        post_raw(server.addr, "/websub", "application/json", b"{}").status,
        415
    );
    assert_eq!(server.get("/websub").status, 405);
    std::thread::sleep(Duration::from_millis(300));
    assert!(sub.requests().is_empty(), "nothing was contacted");
    assert_eq!(server.metric("herald_websub_subscriptions"), 0.0);
    assert!(
        !site.state().join("websub.sqlite").exists() || {
            let s = herald::store::subscriptions::Subscriptions::open(
                &site.state().join("websub.sqlite"),
            )
            .unwrap();
            s.active(0).unwrap().is_empty()
        }
    );
}

#[test]
fn a_hanging_callback_does_not_delay_another_and_410_ends_a_subscription() {
    let hang = Endpoint::start(Mode::Hang);
    let gone = Endpoint::start(Mode::Gone);
    let fast = Endpoint::start(Mode::Good);
    let site = Site::new("content", "serve.toml");
    let cfg = config(&site, "builtin = true\nallow_private_callbacks = true");
    let server = TestServer::start_with_config(&site, &cfg, &[]);
    for e in [&hang, &gone, &fast] {
        assert_eq!(subscribe(&server, &e.url("/cb"), None).status, 202);
    }
    server.wait_until("three active", || {
        server.metric("herald_websub_subscriptions") == 3.0
    });
    let t = Instant::now();
    edit(&site, "Fast one");
    server.wait_until("the fast subscriber's delivery", || {
        !fast.posts().is_empty()
    });
    let took = fast.posts()[0].at.duration_since(t);
    assert!(took < Duration::from_secs(3), "delivery took {took:?}");
    server.wait_until("the hanging one tried too", || !hang.posts().is_empty());
    server.wait_until("410 ends a subscription", || {
        server.metric("herald_websub_subscriptions") == 2.0
    });
}
