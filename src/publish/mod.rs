//! Publishing the site to S3-compatible object storage (`[publish]`, `build --out s3://…`):
//! the [`Bucket`] (an `object_store` client made from the AWS environment and `[publish]`),
//! the objects a site is made of ([`Object`], each with the [`Phase`] it is uploaded in),
//! and [`sync`], which uploads what changed and deletes what is gone in an order that never
//! shows a broken site: media and article pages first, then the pages that link them, then
//! the feeds and lists, and deletions last. Every upload's ETag is checked against the MD5
//! of the bytes sent. Knows nothing of serving: `serve` and `build` give it objects.

pub mod credentials;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as StorePath;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use tracing::warn;

use crate::config::{Config, S3Target};

/// When an object is uploaded: everything of one phase before anything of the next, so a
/// reader never follows a link to an object not there yet. Deletions come after all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Images, audio, video, PDF: what pages and feeds embed.
    Media,
    /// Article pages: what every list links to.
    Articles,
    /// The other pages (categories, tags, older pages, the feeds' stylesheet).
    Pages,
    /// Feeds, the index, OPML, sitemaps, `robots.txt`: what readers and crawlers start from.
    Lists,
}

impl Phase {
    /// The phase of a site path (relative, as `build` writes it).
    pub fn of(path: &str, media: bool) -> Phase {
        if media {
            Phase::Media
        } else if path.starts_with("articles/") {
            Phase::Articles
        } else if path == "index.html" || (!path.ends_with(".html") && path != "feed.css") {
            Phase::Lists
        } else {
            Phase::Pages
        }
    }
}

/// One object as it should be in the store.
pub struct Object {
    /// The site path (`feed.atom`, `categories/x/index.html`), the key after the prefix.
    pub path: String,
    pub content_type: String,
    pub cache_control: String,
    pub phase: Phase,
    /// Identifies these bytes (compared with what was last uploaded at this path).
    pub tag: String,
    /// The bytes, made when the object is uploaded.
    pub body: Box<dyn FnOnce() -> anyhow::Result<Bytes> + Send>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field("path", &self.path)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// A bucket and prefix, and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    pub target: S3Target,
    concurrency: usize,
}

impl Bucket {
    /// A client for `target`: endpoint, region and credentials from the AWS environment
    /// (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, …),
    /// else the shared credentials and config files' profile (`AWS_PROFILE`, `default`),
    /// each overridden by `[publish]` where it says something.
    pub fn open(cfg: &Config, target: &S3Target) -> anyhow::Result<Bucket> {
        // reqwest is built without a TLS crypto provider of its own: ring, once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let p = &cfg.publish;
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&target.bucket);
        // A store that is down is found out in seconds, not minutes: the callers try
        // again themselves (`serve` with backoff, `build` by being run again).
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
            ..Default::default()
        };
        let client = object_store::ClientOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(60));
        // (Client options first: they hold `allow_http`, set below.)
        b = b.with_retry(retry).with_client_options(client);
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if env("AWS_ACCESS_KEY_ID").is_none() {
            if let Some(found) = credentials::profile()? {
                b = b
                    .with_access_key_id(found.access_key_id)
                    .with_secret_access_key(found.secret_access_key);
                if let Some(token) = found.session_token {
                    b = b.with_token(token);
                }
                if let (Some(region), None) = (found.region, env("AWS_REGION")) {
                    b = b.with_region(region);
                }
            }
        }
        if !p.endpoint.is_empty() {
            b = b.with_endpoint(&p.endpoint);
        }
        // Virtual-hosted requests to an endpoint go to the bucket's own host
        // (`http://bucket.host:port`), as the AWS tools make it; an endpoint that is an IP
        // address has no such host, so it gets path-style requests.
        let mut path_style = p.path_style;
        if let (false, Some(endpoint)) =
            (path_style, b.get_config_value(&AmazonS3ConfigKey::Endpoint))
        {
            match bucket_host(&endpoint, &target.bucket)? {
                Some(host) => b = b.with_endpoint(host),
                None => path_style = true,
            }
        }
        if !p.region.is_empty() {
            b = b.with_region(&p.region);
        }
        let endpoint = b
            .get_config_value(&AmazonS3ConfigKey::Endpoint)
            .unwrap_or_default();
        if endpoint.starts_with("http://") {
            b = b.with_allow_http(true);
        }
        // Self-hosted stores mostly want path-style requests; AWS virtual-hosted ones.
        b = b.with_virtual_hosted_style_request(!path_style);
        let store = b.build().with_context(|| {
            format!("cannot reach {target} (check [publish] and the AWS_* environment)")
        })?;
        Ok(Bucket {
            store: Arc::new(store),
            target: target.clone(),
            concurrency: p.concurrency.max(1),
        })
    }

    fn key(&self, path: &str) -> StorePath {
        StorePath::from(format!("{}{path}", self.target.prefix))
    }

    /// Uploads one object's bytes, then checks the ETag the store answers is their MD5
    /// (what S3 gives for a single-part upload); returns that ETag.
    pub async fn put(
        &self,
        path: &str,
        content_type: &str,
        cache_control: &str,
        body: Bytes,
    ) -> anyhow::Result<String> {
        let md5 = md5_hex(&body);
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_string().into());
        attributes.insert(Attribute::CacheControl, cache_control.to_string().into());
        let opts = PutOptions {
            attributes,
            ..Default::default()
        };
        let done = self
            .store
            .put_opts(&self.key(path), PutPayload::from_bytes(body), opts)
            .await
            .with_context(|| format!("upload of {path}"))?;
        let etag = done.e_tag.unwrap_or_default();
        let etag = etag.trim_matches('"');
        anyhow::ensure!(
            etag.eq_ignore_ascii_case(&md5),
            "upload of {path}: the store kept other bytes (ETag {etag}, sent MD5 {md5})"
        );
        Ok(md5)
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        match self.store.delete(&self.key(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("deletion of {path}")),
        }
    }

    /// Every object under the prefix: site path → ETag (without quotes).
    pub async fn list(&self) -> anyhow::Result<HashMap<String, String>> {
        let prefix = StorePath::from(self.target.prefix.trim_end_matches('/'));
        let prefix = (!self.target.prefix.is_empty()).then_some(prefix);
        let metas: Vec<_> = self
            .store
            .list(prefix.as_ref())
            .try_collect()
            .await
            .with_context(|| format!("listing {}", self.target))?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let key = m.location.to_string();
                let path = key.strip_prefix(&self.target.prefix)?.to_string();
                Some((
                    path,
                    m.e_tag.unwrap_or_default().trim_matches('"').to_string(),
                ))
            })
            .collect())
    }
}

/// `endpoint` with the bucket's name before its host, unless it is there already; None for
/// an endpoint whose host is an IP address.
fn bucket_host(endpoint: &str, bucket: &str) -> anyhow::Result<Option<String>> {
    let mut url = url::Url::parse(endpoint).with_context(|| format!("endpoint {endpoint:?}"))?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        _ => return Ok(None),
    };
    if !host.starts_with(&format!("{bucket}.")) {
        url.set_host(Some(&format!("{bucket}.{host}")))
            .with_context(|| format!("endpoint {endpoint:?}"))?;
    }
    Ok(Some(url.as_str().trim_end_matches('/').to_string()))
}

/// The MD5 of `bytes` in hex: a single-part upload's ETag.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    let digest = md5::Md5::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What [`sync`] is told as it goes: an object uploaded (path, tag, ETag) or deleted.
pub trait Ledger: Send {
    fn uploaded(&mut self, path: &str, tag: &str, etag: &str);
    fn deleted(&mut self, path: &str);
}

/// How one [`sync`] went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub uploaded: usize,
    pub deleted: usize,
    /// Uploads and deletions that failed; nothing after the first failed phase was tried.
    pub failed: usize,
    /// Objects not uploaded or deleted (failed, or waiting behind a failed phase).
    pub pending: usize,
}

/// Makes the store hold `objects` where `have` (path → tag) says what it holds: uploads
/// each object whose tag differs, phase after phase ([`Phase`]), `concurrency` at a time;
/// then deletes what `have` has and `objects` has not (`deletable` decides which may go).
/// A phase with a failure stops the run there (the objects of later phases would link to
/// what is missing); everything not done is counted pending, to be tried again.
pub async fn sync(
    bucket: &Bucket,
    objects: Vec<Object>,
    have: &HashMap<String, String>,
    deletable: impl Fn(&str) -> bool,
    ledger: &mut dyn Ledger,
    on_progress: impl Fn(&Outcome),
) -> Outcome {
    let wanted: std::collections::HashSet<String> =
        objects.iter().map(|o| o.path.clone()).collect();
    let mut gone: Vec<String> = have
        .keys()
        .filter(|p| !wanted.contains(*p) && deletable(p))
        .cloned()
        .collect();
    gone.sort();
    let mut todo: Vec<Object> = objects
        .into_iter()
        .filter(|o| have.get(&o.path) != Some(&o.tag))
        .collect();
    todo.sort_by(|a, b| a.phase.cmp(&b.phase).then_with(|| a.path.cmp(&b.path)));
    let mut out = Outcome {
        pending: todo.len() + gone.len(),
        ..Outcome::default()
    };
    on_progress(&out);
    let mut todo = todo.into_iter().peekable();
    while let Some(phase) = todo.peek().map(|o| o.phase) {
        let mut batch = Vec::new();
        while let Some(o) = todo.next_if(|o| o.phase == phase) {
            batch.push(o);
        }
        let mut results = futures_util::stream::iter(batch)
            .map(|o| upload(bucket, o))
            .buffer_unordered(bucket.concurrency);
        while let Some((path, tag, result)) = results.next().await {
            match result {
                Ok(etag) => {
                    ledger.uploaded(&path, &tag, &etag);
                    out.uploaded += 1;
                    out.pending -= 1;
                }
                Err(e) => {
                    warn!(path, error = %e, cause = %e.root_cause(), "publish: upload failed");
                    out.failed += 1;
                }
            }
            on_progress(&out);
        }
        if out.failed > 0 {
            return out;
        }
    }
    let mut results = futures_util::stream::iter(gone)
        .map(|path| async move {
            let r = bucket.delete(&path).await;
            (path, r)
        })
        .buffer_unordered(bucket.concurrency);
    while let Some((path, result)) = results.next().await {
        match result {
            Ok(()) => {
                ledger.deleted(&path);
                out.deleted += 1;
                out.pending -= 1;
            }
            Err(e) => {
                warn!(path, error = %e, cause = %e.root_cause(), "publish: deletion failed");
                out.failed += 1;
            }
        }
        on_progress(&out);
    }
    out
}

/// Makes an object's bytes (off the async threads: a term feed may be rendered) and
/// uploads them.
async fn upload(bucket: &Bucket, o: Object) -> (String, String, anyhow::Result<String>) {
    let Object {
        path,
        content_type,
        cache_control,
        tag,
        body,
        ..
    } = o;
    let result = async {
        let body = tokio::task::spawn_blocking(body)
            .await
            .context("making the body")??;
        bucket.put(&path, &content_type, &cache_control, body).await
    }
    .await;
    (path, tag, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_put_what_is_linked_before_what_links_it() {
        assert_eq!(Phase::of("images/a.png", true), Phase::Media);
        assert_eq!(Phase::of("articles/a.html", false), Phase::Articles);
        for p in ["categories/x/index.html", "page/2/index.html", "feed.css"] {
            assert_eq!(Phase::of(p, false), Phase::Pages, "{p}");
        }
        for p in [
            "index.html",
            "feed.atom",
            "tags/x/archive/2.rss",
            "sitemap.xml",
            "feeds.opml",
            "robots.txt",
        ] {
            assert_eq!(Phase::of(p, false), Phase::Lists, "{p}");
        }
        assert!(Phase::Media < Phase::Articles && Phase::Pages < Phase::Lists);
    }

    #[test]
    fn virtual_hosted_requests_go_to_the_buckets_host() {
        assert_eq!(
            bucket_host("http://garage.lan:3900", "b")
                .unwrap()
                .as_deref(),
            Some("http://b.garage.lan:3900")
        );
        assert_eq!(
            bucket_host("https://b.s3.example.com/", "b")
                .unwrap()
                .as_deref(),
            Some("https://b.s3.example.com")
        );
        assert_eq!(bucket_host("http://127.0.0.1:3900", "b").unwrap(), None);
        assert_eq!(bucket_host("http://[::1]:3900", "b").unwrap(), None);
    }

    #[test]
    fn md5_is_the_single_part_etag() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
