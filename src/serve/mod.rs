//! The daemon around the pipeline: the watcher's vocabulary (`events`) and the watcher, the
//! engine that owns the index and the store and publishes snapshots, the snapshot and the
//! feed cache that requests read, HTTP, zero-copy bodies, metrics, systemd, WebSub (hub
//! pings and the built-in hub) and the mirror to object storage. Nothing in
//! the pipeline (content, model, index, render) or the store imports from here.

pub mod coding;
pub mod engine;
pub mod events;
pub mod feed_cache;
pub mod http;
pub mod metrics;
pub mod mirror;
pub mod snapshot;
pub mod systemd;
pub mod watch;
pub mod websub;
pub mod zerocopy;
