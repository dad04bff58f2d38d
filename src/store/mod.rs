//! What survives restarts, all in the state dir: the SQLite state (records of ids, slugs,
//! first-seen times and content hashes; per-route Last-Modified; all DDL), the article
//! cache (parsed articles by file stamp) and the page store (packed article bodies in a
//! mapped file), and the built-in WebSub hub's subscriptions (a file of their own). Knows
//! nothing of HTTP or of how feeds are rendered.

pub mod cache;
pub mod pages;
pub mod state;
pub mod subscriptions;
