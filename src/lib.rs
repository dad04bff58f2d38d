//! herald: publish a directory of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.
//!
//! Layout (data flows down this list, one way):
//! - `config`  — TOML file + flags → validated [`config::Config`]
//! - `content` — files → [`content::Document`] (scan, formats, decoding, sanitising)
//! - `state`   — what survives restarts: ids, slugs, first-seen times, content hashes
//! - `model`   — [`model::Article`]: a document joined with its state record
//! - `ingest`  — scan + parallel load + state sync → [`index::Index`]
//! - `index`   — articles by path; views by recency, category, tag
//! - `render`  — index → every output file as bytes (no I/O, no clock)
//! - `engine`  — serve's single owner of index + state: applies changes, publishes snapshots
//! - `site`    — the immutable snapshot HTTP reads: bodies, compressed variants, ETags
//! - `feed_cache` — category and tag feeds: rendered on first request into a bounded cache
//! - `pages`   — the page store: article pages in a mapped file, off the heap
//! - `cache`   — the article cache: what a restart needs to skip unchanged files
//! - `http`    — accept loop with limits, routes, content coding, conditional GET
//! - `watch`   — notify events → debounced change hints (polling fallback)
//! - `zerocopy` — large bodies in mapped files, sent with `sendfile`
//! - `cmd`     — `build`, `check`, `serve` glue; `systemd`, `metrics` for operators
//!
//! Shared helpers: `text` (encodings, XML-legal characters, slugs, summaries), `dates`.
// Exceptions, each with its safety argument: mapping the page store (`pages::map`) and
// large bodies (`zerocopy::map`), and the `sendfile`/`send` calls (`zerocopy`).
#![deny(unsafe_code)]

pub mod cache;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod content;
pub mod dates;
pub mod engine;
pub mod feed_cache;
#[doc(hidden)]
pub mod fuzz_support;
pub mod http;
pub mod index;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod pages;
pub mod render;
pub mod site;
pub mod state;
pub mod systemd;
pub mod text;
pub mod watch;
pub mod zerocopy;

use chrono::{DateTime, FixedOffset, Utc};

/// The `updated` time of feeds with no entries: when this state store was created, so it is
/// stable across runs (recorded on first use).
pub fn site_epoch(
    state: &state::State,
    now: DateTime<Utc>,
) -> anyhow::Result<DateTime<FixedOffset>> {
    if let Some(v) = state.meta("created_at")? {
        if let Ok(d) = DateTime::parse_from_rfc3339(&v) {
            return Ok(d);
        }
    }
    let d = now.fixed_offset();
    state.set_meta("created_at", &dates::rfc3339(d))?;
    Ok(d)
}
