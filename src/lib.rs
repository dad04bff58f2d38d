//! herald: publish a directory of articles as RSS 2.0, Atom 1.0 and JSON Feed 1.1.
//!
//! Layout (data flows down this list, one way; nothing imports from a line below it):
//! - `text`, `dates` — leaf helpers: encodings, XML-legal characters, slugs, summaries; dates
//! - `config`  — TOML file + flags → validated [`config::Config`]
//! - `content` — files → [`content::Document`] (scan, formats, decoding, sanitising)
//! - `model`   — [`model::Article`]: a document joined with its record; packed bodies
//! - `index`   — articles by path; views by recency, category, tag
//! - `render`  — index → every output file as bytes (no I/O, no clock)
//! - `store/`  — what survives restarts: `state` (SQLite records, routes, all DDL), `cache`
//!   (the article cache), `pages` (the page store: packed bodies in a mapped file)
//! - `ingest`  — scan + parallel load + state sync → [`index::Index`] (build, check)
//! - `serve/`  — the daemon: `events` (the watcher's vocabulary), `watch`, `engine` (owner
//!   of index + store: applies changes, publishes snapshots), `snapshot` (what HTTP reads),
//!   `feed_cache`, `http`, `zerocopy`, `metrics`, `systemd`
//! - `cmd`     — `build`, `check`, `serve`: glue
// Exceptions, each with its safety argument: mapping the page store (`store::pages::map`)
// and large bodies (`serve::zerocopy::map`), and the `sendfile`/`send` calls
// (`serve::zerocopy`).
#![deny(unsafe_code)]

pub mod cli;
pub mod cmd;
pub mod config;
pub mod content;
pub mod dates;
#[doc(hidden)]
pub mod fuzz_support;
pub mod index;
pub mod ingest;
pub mod model;
pub mod publish;
pub mod render;
pub mod serve;
pub mod store;
pub mod text;

use chrono::{DateTime, FixedOffset, Utc};

/// The `updated` time of feeds with no entries: when this state store was created, so it is
/// stable across runs (recorded on first use).
pub fn site_epoch(
    state: &store::state::State,
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
