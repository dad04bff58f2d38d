//! `herald build --out DIR`: render the site once and write it to a directory. The same
//! renderers as `serve` (`render_lists`, `article_page`), so files and responses cannot
//! drift apart.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tracing::{info, warn};

use crate::config::{Config, S3Target};
use rayon::prelude::*;

use crate::model::Article;
use crate::render::{self, Page, Pages};
use crate::store::state::State;
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
    let robots = own_robots(cfg);
    let lists = render::render_lists(&ingested.index, cfg, epoch, now, robots.as_deref());
    tracing::debug!(ms = t1.elapsed().as_millis() as u64, "phase: render lists");
    let t2 = std::time::Instant::now();
    let articles: Vec<&Arc<Article>> = ingested.index.articles().collect();
    let files = match out.to_str().and_then(S3Target::parse) {
        Some(target) => {
            let target = target.map_err(|e| anyhow::anyhow!("--out: {e}"))?;
            upload_site(lists, &articles, &ingested.media, cfg, &target)?
        }
        None => write_site(&lists, &articles, cfg, out)? + copy_media(&ingested.media, cfg, out),
    };
    tracing::debug!(
        ms = t2.elapsed().as_millis() as u64,
        "phase: render and write"
    );
    info!(
        out = %out.display(),
        articles = ingested.index.len(),
        files,
        skipped = ingested.skipped.len(),
        "site built"
    );
    Ok(())
}

/// `build --out s3://BUCKET/PREFIX`: every file `build` writes to a folder, as objects with
/// their content type and the `Cache-Control` `serve` sends, uploaded in the order
/// [`publish::sync`] keeps (what is linked before what links it), each checked by its ETag.
/// Objects already holding the same bytes (their ETag is the MD5 of ours) are left alone;
/// objects under herald's own folders that are no longer part of the site are deleted.
/// Returns how many objects the site has.
fn upload_site(
    lists: Pages,
    articles: &[&Arc<Article>],
    media: &[String],
    cfg: &Config,
    target: &S3Target,
) -> anyhow::Result<usize> {
    use crate::publish::{self, md5_hex, Object, Phase};
    let cache_control =
        |max_age: Option<u32>| format!("public, max-age={}", max_age.unwrap_or(cfg.server.max_age));
    let mut objects: Vec<Object> = lists
        .into_iter()
        .map(|(path, page)| {
            let body = bytes::Bytes::from(page.body);
            Object {
                phase: Phase::of(&path, false),
                content_type: page.kind.content_type().to_string(),
                cache_control: cache_control(page.max_age),
                tag: md5_hex(&body),
                body: Box::new(move || Ok(body)),
                path,
            }
        })
        .collect();
    // Article pages are made to be hashed, and made again if they must be uploaded: the
    // site never holds all of them.
    let cfg_arc = Arc::new(cfg.clone());
    objects.par_extend(articles.par_iter().map(|a| {
        let page = render::article_page(a, cfg);
        let (a, cfg) = (Arc::clone(a), cfg_arc.clone());
        Object {
            path: a.page_path(),
            content_type: page.kind.content_type().to_string(),
            cache_control: cache_control(None),
            phase: Phase::Articles,
            tag: md5_hex(&page.body),
            body: Box::new(move || Ok(render::article_page(&a, &cfg).body.into())),
        }
    }));
    let loader = Arc::new(crate::content::Loader::new(cfg));
    objects.par_extend(media.par_iter().filter_map(|rel| {
        let tag = match loader.read_media(rel) {
            Ok(bytes) => md5_hex(&bytes),
            Err(e) => {
                warn!(path = %rel, "media file not uploaded: {e}");
                return None;
            }
        };
        let (rel2, loader) = (rel.clone(), loader.clone());
        Some(Object {
            path: rel.clone(),
            content_type: crate::content::media_type(std::path::Path::new(rel))
                .unwrap_or("application/octet-stream")
                .to_string(),
            cache_control: cache_control(None),
            phase: Phase::Media,
            tag,
            body: Box::new(move || Ok(loader.read_media(&rel2)?.into())),
        })
    }));
    let total = objects.len();
    let bucket = publish::Bucket::open(cfg, target)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let have = bucket.list().await?;
        struct Nothing;
        impl publish::Ledger for Nothing {
            fn uploaded(&mut self, _: &str, _: &str, _: &str) {}
            fn deleted(&mut self, _: &str) {}
        }
        anyhow::Ok(publish::sync(&bucket, objects, &have, is_heralds, &mut Nothing, |_| {}).await)
    })?;
    info!(
        to = %target,
        uploaded = outcome.uploaded,
        deleted = outcome.deleted,
        unchanged = total - outcome.uploaded - outcome.pending.min(total),
        "objects published"
    );
    anyhow::ensure!(
        outcome.failed == 0,
        "{} uploads or deletions failed; {} objects not published (see the log)",
        outcome.failed,
        outcome.pending
    );
    Ok(total)
}

/// Whether a stale path is herald's to remove: under the folders only herald writes.
fn is_heralds(path: &str) -> bool {
    [
        "articles/",
        "categories/",
        "tags/",
        "page/",
        "archive/",
        "sitemaps/",
    ]
    .iter()
    .any(|dir| path.starts_with(dir))
}

/// Copies the media files to `out` (opened and checked as `serve` opens them; temp file +
/// rename, so a reader never sees half a file). A file that cannot be used is logged and
/// left out. Returns how many were copied.
fn copy_media(media: &[String], cfg: &Config, out: &Path) -> usize {
    let loader = crate::content::Loader::new(cfg);
    media
        .par_iter()
        .filter(|rel| {
            let copied =
                loader
                    .open_media(rel)
                    .map_err(|s| s.to_string())
                    .and_then(|(mut file, _)| {
                        let to = out.join(rel.as_str());
                        if let Some(dir) = to.parent() {
                            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                        }
                        let tmp = to.with_extension("herald-tmp");
                        let mut dst = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
                        std::io::copy(&mut file, &mut dst).map_err(|e| e.to_string())?;
                        std::fs::rename(&tmp, &to).map_err(|e| e.to_string())
                    });
            if let Err(e) = &copied {
                warn!(path = %rel, "media file not copied: {e}");
            }
            copied.is_ok()
        })
        .count()
}

/// The content dir's own `robots.txt`, if it has one and it can be used (64 KiB at most).
pub fn own_robots(cfg: &Config) -> Option<Vec<u8>> {
    match crate::content::Loader::new(cfg).read_site_file("robots.txt", 64 << 10) {
        Ok(bytes) => bytes,
        Err(s) => {
            warn!(path = %s.path, reason = s.reason.as_str(), "{}; writing herald's own", s.message);
            None
        }
    }
}

/// Writes the lists and every article's page, each rendered and written on any core (temp
/// file + rename when replacing, so a reader never sees half a file), and removes files
/// herald wrote earlier that are no longer part of the site. Only herald's own paths are
/// ever removed: `articles/`, `categories/`, `tags/`, `page/` contents. Returns how many files the
/// site has.
pub fn write_site(
    lists: &Pages,
    articles: &[&Arc<Article>],
    cfg: &Config,
    out: &Path,
) -> anyhow::Result<usize> {
    // Into a folder that did not exist, every file is new: no need to look for old ones.
    let fresh = !out.exists();
    std::fs::create_dir_all(out).with_context(|| format!("failed to create {}", out.display()))?;
    // Each folder once (10 000 article pages share one), then the files in parallel: most of
    // the cost is the file system's, per file.
    let mut dirs: BTreeSet<PathBuf> = lists
        .keys()
        .filter_map(|p| out.join(p).parent().map(Path::to_path_buf))
        .collect();
    dirs.insert(out.join("articles"));
    for dir in &dirs {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
    }
    let files: Vec<(&String, &Page)> = lists.iter().collect();
    files
        .par_iter()
        .with_min_len(64)
        .try_for_each(|(path, page)| write_page(&out.join(path), page, fresh))?;
    // Article pages are made here rather than kept: the site never holds all of them.
    let paths: Vec<String> = articles
        .par_iter()
        .with_min_len(64)
        .map(|a| {
            let path = a.page_path();
            write_page(&out.join(&path), &render::article_page(a, cfg), fresh)?;
            Ok(path)
        })
        .collect::<anyhow::Result<_>>()?;
    let mut site: HashSet<&str> = lists.keys().map(String::as_str).collect();
    site.extend(paths.iter().map(String::as_str));
    remove_stale(&site, out)?;
    Ok(site.len())
}

/// Writes one file unless it already holds these bytes.
fn write_page(dest: &Path, page: &Page, fresh: bool) -> anyhow::Result<()> {
    let old = if fresh {
        Err(std::io::ErrorKind::NotFound.into())
    } else {
        std::fs::read(dest)
    };
    match old {
        Ok(old) if old == page.body => {}
        // Replacing a file: write beside it and rename, so a reader never sees half of it.
        Ok(_) => {
            let tmp = dest.with_extension("herald-tmp");
            std::fs::write(&tmp, &page.body)
                .with_context(|| format!("failed to write {}", tmp.display()))?;
            std::fs::rename(&tmp, dest)
                .with_context(|| format!("failed to write {}", dest.display()))?;
        }
        // A new file: nobody can be reading it yet.
        Err(_) => std::fs::write(dest, &page.body)
            .with_context(|| format!("failed to write {}", dest.display()))?,
    }
    Ok(())
}

/// Removes files herald wrote earlier that are no longer part of the site.
fn remove_stale(site: &HashSet<&str>, out: &Path) -> anyhow::Result<()> {
    for section in ["articles", "categories", "tags", "page"] {
        let dir = out.join(section);
        if !dir.is_dir() {
            continue;
        }
        for entry in walkdir::WalkDir::new(&dir).contents_first(true) {
            let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
            let rel = entry.path().strip_prefix(out).unwrap_or(entry.path());
            let rel = rel.to_string_lossy().replace('\\', "/");
            if entry.file_type().is_file() && !site.contains(rel.as_str()) {
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
