//! `herald build --out DIR`: render the site once and write it to a directory. Same
//! `render_site` as `serve`, so files and responses cannot drift apart.

use std::path::Path;

use anyhow::Context;
use tracing::{info, warn};

use crate::config::Config;
use crate::render::{self, Pages};
use crate::state::State;
use crate::{ingest, site_epoch};

pub fn run(cfg: &Config, out: &Path) -> anyhow::Result<()> {
    let now = crate::dates::truncate_secs(chrono::Utc::now());
    let mut state = State::open(&cfg.state_file(), &cfg.site.tag_authority)?;
    let t0 = std::time::Instant::now();
    let ingested = ingest::full(cfg, &mut state, now, true)?;
    tracing::debug!(ms = t0.elapsed().as_millis() as u64, "phase: ingest");
    for s in &ingested.skipped {
        if s.reason.is_error() {
            warn!(path = %s.path, reason = s.reason.as_str(), "{}", s.message);
        } else {
            tracing::debug!(path = %s.path, reason = s.reason.as_str(), "{}", s.message);
        }
    }
    for (path, w) in &ingested.warnings {
        warn!(path = %path, "{w}");
    }
    let epoch = site_epoch(&state, now)?;
    let t1 = std::time::Instant::now();
    let pages = render::render_site(&ingested.index, cfg, epoch);
    tracing::debug!(ms = t1.elapsed().as_millis() as u64, "phase: render");
    let t2 = std::time::Instant::now();
    write_site(&pages, out)?;
    tracing::debug!(ms = t2.elapsed().as_millis() as u64, "phase: write");
    info!(
        out = %out.display(),
        articles = ingested.index.len(),
        files = pages.len(),
        skipped = ingested.skipped.len(),
        "site built"
    );
    Ok(())
}

/// Writes every page (temp file + rename, so a reader never sees half a file) and removes
/// files herald wrote earlier that are no longer part of the site. Only herald's own paths
/// are ever removed: `articles/`, `categories/`, `tags/` contents.
pub fn write_site(pages: &Pages, out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    for (path, page) in pages {
        let dest = out.join(path);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("failed to create {}", dir.display()))?;
        }
        match std::fs::read(&dest) {
            Ok(old) if old == page.body => continue,
            // Replacing a file: write beside it and rename, so a reader never sees half of it.
            Ok(_) => {
                let tmp = dest.with_extension("herald-tmp");
                std::fs::write(&tmp, &page.body)
                    .with_context(|| format!("failed to write {}", tmp.display()))?;
                std::fs::rename(&tmp, &dest)
                    .with_context(|| format!("failed to write {}", dest.display()))?;
            }
            // A new file: nobody can be reading it yet.
            Err(_) => std::fs::write(&dest, &page.body)
                .with_context(|| format!("failed to write {}", dest.display()))?,
        }
    }
    for section in ["articles", "categories", "tags"] {
        let dir = out.join(section);
        if !dir.is_dir() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&dir).contents_first(true) {
            let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
            let rel = entry.path().strip_prefix(out).unwrap_or(entry.path());
            let rel = rel.to_string_lossy().replace('\\', "/");
            if entry.file_type().is_file() && !pages.contains_key(&rel) {
                std::fs::remove_file(entry.path()).with_context(|| {
                    format!("failed to remove stale {}", entry.path().display())
                })?;
            } else if entry.file_type().is_dir() {
                // Only succeeds when empty; a folder still in use stays.
                let _ = std::fs::remove_dir(entry.path());
            }
        }
    }
    Ok(())
}
