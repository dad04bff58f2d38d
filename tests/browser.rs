//! herald as a person in a browser sees it: Debian's headless Chromium, driven over the
//! DevTools protocol, opens the index, a category page, an older page, an article page and
//! `/feed.atom` from a live `herald serve` at 390 px (a phone) and 1280 px wide, light and
//! dark. From the rendered DOM it checks that the entries' titles are visible, that the
//! feed shows its banner, that nothing scrolls sideways, and the pages' accessibility
//! basics (lang, landmarks, headings in order, link text, contrast ≥ 4.5:1). Screenshots go
//! to `target/tmp/browser/` for a person to look at.
//!
//! Chromium reaches nothing but the loopback server (`--host-resolver-rules`, no
//! background networking). Skips with a printed reason where Chromium is not installed,
//! except in CI, where that is a failure: `.ci/run` installs it.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn chromium() -> Option<&'static str> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|p| {
            Command::new("sh")
                .args(["-c", &format!("command -v {p}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed; CI must install it (.ci/run)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
    }
    found
}

/// A headless Chromium and one page of it, spoken to over the DevTools protocol.
struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    session: String,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn launch(program: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(program)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--hide-scrollbars",
                // Nothing but loopback resolves.
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Chromium writes its port and browser path here once it listens.
        let file = profile.path().join("DevToolsActivePort");
        let mut text = String::new();
        wait_until("chromium's DevTools port", &mut || {
            text = std::fs::read_to_string(&file).unwrap_or_default();
            text.lines().count() >= 2
        });
        let mut lines = text.lines();
        let (port, path) = (lines.next().unwrap(), lines.next().unwrap());
        let (ws, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}{path}")).unwrap();
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        }
        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            _profile: profile,
        };
        let target = browser.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser
    }

    /// Sends a command (to the page once attached) and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.ws.read().unwrap() else {
                continue;
            };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == json!(id) {
                assert!(reply["error"].is_null(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(r["exceptionDetails"].is_null(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    fn viewport(&mut self, width: u32, dark: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": if width < 600 { 844 } else { 900 },
                   "deviceScaleFactor": 1, "mobile": width < 600}),
        );
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme",
                                 "value": if dark { "dark" } else { "light" }}]}),
        );
    }

    /// Opens `url` as a person would (a navigation) and waits until it has loaded.
    fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        let start = Instant::now();
        let check = format!(
            "document.readyState === 'complete' && location.href === {}",
            json!(url)
        );
        while self.eval(&check) != json!(true) {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{url} never loaded"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn screenshot(&mut self, to: &Path) {
        use base64::Engine;
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(to, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the page shows, measured in the browser: which of `titles` are visible text,
/// sideways scrolling, the feed banner, and the accessibility basics.
const MEASURE: &str = r#"((titles) => {
  const visible = el => el.checkVisibility({opacityProperty: true, visibilityProperty: true})
    && el.getBoundingClientRect().width > 0 && el.getBoundingClientRect().height > 0;
  const shown = [...document.querySelectorAll('*')]
    .filter(el => el.children.length === 0 || el.tagName === 'A' || /^H[1-6]$/.test(el.tagName))
    .filter(visible).map(el => el.textContent.trim());
  const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const background = el => { for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c; }
    return matchMedia('(prefers-color-scheme: dark)').matches ? [18, 18, 18] : [255, 255, 255]; };
  const lowContrast = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !visible(el)) continue;
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) lowContrast.push(el.tagName + ' "' + el.textContent.trim().slice(0, 40) + '" ' + ratio.toFixed(2));
  }
  return {
    contentType: document.contentType,
    missing: titles.filter(t => !shown.includes(t)),
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    banner: getComputedStyle(document.documentElement, '::before').content,
    lang: document.documentElement.getAttribute('lang') || '',
    landmarks: ['header', 'nav', 'main', 'footer'].filter(t => document.querySelector(t)),
    headings: [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1]),
    vagueLinks: [...document.querySelectorAll('a')].map(a => a.textContent.trim())
      .filter(t => !t || /^(here|click here|more|read more|link|atom|rss|json)$/i.test(t)),
    lowContrast: lowContrast.slice(0, 10),
  };
})"#;

fn titles_of(feed_json: &[u8], n: usize) -> Vec<String> {
    let feed: Value = serde_json::from_slice(feed_json).unwrap();
    feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect()
}

/// A site with the sample content and 70 more articles in one category (more than a page
/// of them), one with a featured image, one with a long word and a wide table.
fn site() -> Site {
    let site = Site::sample();
    let more = site.content().join("economy");
    std::fs::create_dir_all(&more).unwrap();
    for i in 1..=70 {
        std::fs::write(
            more.join(format!("story-{i:02}.md")),
            format!(
                "---\ntitle: Economy story number {i}\ndate: 2026-10-{:02}T{:02}:00:00Z\ncategories: [Economy]\ntags: [Trade, \"Port {}\"]\n---\nThe story {i} says what happened at the port.\n",
                i % 28 + 1,
                i % 24,
                i % 4
            ),
        )
        .unwrap();
    }
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")
        .unwrap();
    std::fs::write(more.join("harbour.png"), png).unwrap();
    std::fs::write(
        more.join("featured.md"),
        format!(
            "---\ntitle: The harbour at dawn\ndate: 2026-11-30T08:00:00Z\nimage: harbour.png\ncategories: [Economy]\ntags: [Trade]\n---\nA {} word, and a table:\n\n| {} |\n|---|\n| wide |\n",
            "Donaudampfschifffahrtsgesellschaftskapitän".repeat(4),
            (1..40).map(|i| format!("column {i}")).collect::<Vec<_>>().join(" | ")
        ),
    )
    .unwrap();
    site
}

#[test]
fn a_person_in_a_browser_reads_the_pages_and_the_feed() {
    let Some(program) = chromium() else { return };
    let site = site();
    // The pages' links and the feed's stylesheet name base_url: it must be this server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}/");
    let server = TestServer::start_command_on(
        site.command(&site.config),
        &format!("127.0.0.1:{port}"),
        &["--base-url", &base],
    );
    let main_titles = titles_of(&server.get("/feed.json").body, 10);
    let category_titles = titles_of(&server.get("/categories/economy/feed.json").body, 10);
    assert!(main_titles.contains(&"The harbour at dawn".to_string()));
    let article = "/articles/the-harbour-at-dawn.html";
    assert_eq!(server.get(article).status, 200);
    let pages: [(&str, &str, Vec<String>); 5] = [
        ("index", "/", main_titles.clone()),
        ("category", "/categories/economy/", category_titles),
        ("category-page-2", "/categories/economy/page/2/", Vec::new()),
        ("article", article, vec!["The harbour at dawn".to_string()]),
        ("feed", "/feed.atom", main_titles),
    ];
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let mut browser = Browser::launch(program);
    browser.call("Page.enable", json!({}));
    let mut problems = Vec::new();
    for (width, dark) in [(390, false), (1280, false), (390, true)] {
        browser.viewport(width, dark);
        for (name, path, titles) in &pages {
            let url = format!("{base}{}", path.trim_start_matches('/'));
            browser.open(&url);
            let m = browser.eval(&format!("{MEASURE}({})", json!(titles)));
            let mode = if dark { "-dark" } else { "" };
            browser.screenshot(&shots.join(format!("{name}-{width}{mode}.png")));
            let mut bad = |what: String| problems.push(format!("{name} at {width}{mode}: {what}"));
            if !m["missing"].as_array().unwrap().is_empty() {
                bad(format!("titles not visible: {}", m["missing"]));
            }
            if !m["lowContrast"].as_array().unwrap().is_empty() {
                bad(format!("contrast below 4.5:1: {}", m["lowContrast"]));
            }
            if m["scrollWidth"].as_u64() > m["innerWidth"].as_u64() {
                bad(format!(
                    "scrolls sideways: {} > {}",
                    m["scrollWidth"], m["innerWidth"]
                ));
            }
            if *name == "feed" {
                // The same bytes as the feed, as XML a browser styles: the banner shows.
                if m["contentType"] != "application/xml" {
                    bad(format!("served as {}", m["contentType"]));
                }
                if !m["banner"]
                    .as_str()
                    .unwrap_or("")
                    .contains("This is a feed")
                {
                    bad(format!("no banner: {}", m["banner"]));
                }
                continue;
            }
            if m["lang"].as_str().unwrap_or("").is_empty() {
                bad("no lang".into());
            }
            if m["landmarks"] != json!(["header", "nav", "main", "footer"]) {
                bad(format!("landmarks: {}", m["landmarks"]));
            }
            let headings: Vec<u64> = m["headings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_u64().unwrap())
                .collect();
            let in_order = headings.first() == Some(&1)
                && headings.iter().filter(|&&h| h == 1).count() == 1
                && headings.windows(2).all(|w| w[1] <= w[0] + 1);
            if !in_order {
                bad(format!("headings out of order: {headings:?}"));
            }
            if !m["vagueLinks"].as_array().unwrap().is_empty() {
                bad(format!(
                    "link text that says nothing alone: {}",
                    m["vagueLinks"]
                ));
            }
        }
    }
    // The featured image is on the article's page, loaded.
    browser.viewport(1280, false);
    browser.open(&format!("{base}{}", article.trim_start_matches('/')));
    let image = browser.eval(
        "(() => { const i = document.querySelector('figure.featured img'); return i ? i.complete && i.naturalWidth : 0 })()",
    );
    if image != json!(1) {
        problems.push(format!("featured image not shown: {image}"));
    }
    // The category page links to its older page, and that page shows the next articles.
    browser.open(&format!("{base}categories/economy/"));
    let older = browser.eval("document.querySelector('a[rel=next]')?.href ?? ''");
    if older != json!(format!("{base}categories/economy/page/2/")) {
        problems.push(format!("no older page link: {older}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!("screenshots in {}", shots.display());
}
