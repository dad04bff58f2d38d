//! Entry points for the fuzz targets (`fuzz/`) and their regression tests: the same code runs
//! under the fuzzer and in `cargo test`. Not part of herald's interface.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::content::{Format, Loader};
use crate::index::Index;
use crate::model::Article;
use crate::model::Record;
use crate::render::{render_site, Pages};
use crate::serve::http::routes::App;
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::{Rendered, Routes, Snapshot};

fn config() -> &'static Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        Config::from_toml(
            "[site]\nbase_url = \"https://news.example.com/\"\ntag_authority = \"example.com,2026\"\n",
            &Default::default(),
        )
        .expect("literal config is valid")
    })
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T00:00:00Z")
        .expect("literal date")
        .to_utc()
}

/// Parses `data` as an article (the first byte picks the format) and, when it is usable,
/// renders a site holding it. Never panics; the caller checks the outputs.
pub fn render_article_bytes(data: &[u8]) -> Option<Pages> {
    let (&selector, body) = data.split_first()?;
    let format = match selector % 3 {
        0 => Format::Text,
        1 => Format::Markdown,
        _ => Format::Html,
    };
    let cfg = config();
    let loader = Loader::new(cfg);
    let doc = loader.parse_bytes("fuzz/article.txt", body, format).ok()?;
    let record = Record {
        id: "tag:example.com,2026:fuzz/article.txt".into(),
        slug: "fuzz".into(),
        first_seen: now(),
        hash: doc.hash,
        changed_at: None,
    };
    let (article, _) = Article::new(doc, &record, cfg.site.timezone, now());
    let mut index = Index::new();
    index.insert(crate::model::pack_article(article));
    Some(render_site(&index, cfg, now().fixed_offset()))
}

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let pages = render_article_bytes(b"\x00Fuzz title\n\nFuzz body.\n").unwrap_or_default();
        let mut routes = Routes::new();
        for (path, page) in pages {
            let r = Rendered::new(page.kind, page.body, 784111777, None);
            routes.insert(format!("/{path}"), Arc::new(r));
        }
        let snapshot = Snapshot {
            routes,
            generation: 1,
            articles: 1,
            feeds: 3,
            cache_control: Snapshot::cache_control(300),
            last_change: 0,
            ..Snapshot::default()
        };
        let (tx, rx) = tokio::sync::watch::channel(Some(Arc::new(snapshot)));
        // The receiver keeps working after the sender is gone; keep it anyway.
        std::mem::forget(tx);
        App {
            site: rx,
            metrics: Arc::new(Metrics::default()),
            serves: crate::serve::http::routes::Serves::Site { metrics: true },
            hub: None,
        }
    })
}

/// Reads `data` as a raw request head (`METHOD PATH\nName: value\n…`), answers it from a small
/// site, and returns the status. `None` when the bytes do not make a request at all.
pub fn respond_to_raw(data: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let mut first = lines.next()?.split(' ');
    let method = first.next()?;
    let path = first.next().unwrap_or("/");
    let mut req = hyper::Request::builder().method(method).uri(path);
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            req = req.header(k.trim(), v.trim());
        }
    }
    let req = req.body(()).ok()?;
    let resp = crate::serve::http::routes::respond(&req, app());
    Some(resp.status().as_u16())
}

/// Reads `data` as a config file: a `Config` or a `ConfigError`, never a panic.
pub fn parse_config_bytes(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    Config::from_toml(&text, &Default::default()).is_ok()
}

/// Reads `data` as what a damaged state dir can hold: an article-cache row's stored
/// metadata and a page-store blob (split at a position the first two bytes give), read as
/// herald reads them on start. Never panics and never allocates out of proportion: a bad
/// row or blob is a cache miss.
pub fn read_state_bytes(data: &[u8]) -> bool {
    let Some((split, rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let at = usize::from(u16::from_le_bytes(*split)).min(rest.len());
    let (meta, blob) = rest.split_at(at);
    crate::store::cache::read_damaged_row(meta, "1700000000000000000", (0, blob.len() as i64), blob)
}
