//! Answering one request from the current snapshot: routes, `/healthz`, `/metrics`, 404,
//! 405, HEAD, content coding and conditional GET. Pure lookups: no disk, no rendering. The
//! one request that is not a lookup, `POST /websub`, is handed to the hub ([`websub`]).

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use super::{conditional, encoding};
use crate::render::Kind;
use crate::serve::coding::Coding;
use crate::serve::metrics::Metrics;
use crate::serve::snapshot::{Rendered, Snapshot};
use crate::serve::websub::{hub::MAX_REQUEST_BYTES, Hub};

/// The Content-Security-Policy of herald's HTML pages.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src http: https: data:; media-src http: https:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What every request handler shares.
pub struct App {
    pub site: watch::Receiver<Option<Arc<Snapshot>>>,
    pub metrics: Arc<Metrics>,
    pub serves: Serves,
    /// The built-in WebSub hub, answering `POST /websub` (`[websub] builtin`).
    pub hub: Option<Arc<Hub>>,
}

/// What one listener answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serves {
    /// The site, with or without `/metrics`.
    Site { metrics: bool },
    /// `/metrics` and `/healthz` alone (`[server] metrics_listen` set to an address).
    Metrics,
}

type Resp = Response<Full<Bytes>>;

fn plain(status: StatusCode, body: &'static str) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// All values of a header joined by ", " (clients may split lists over several lines);
/// borrowed in the usual case of one line.
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<Cow<'_, str>> {
    let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    match values.next() {
        None => Some(Cow::Borrowed(first)),
        Some(second) => {
            let mut all = vec![first, second];
            all.extend(values);
            Some(Cow::Owned(all.join(", ")))
        }
    }
}

/// Answers a request. HEAD gets GET's headers (same Content-Length and ETag) and no body.
/// A body not made yet is made here, on the calling thread (see [`prepare`] for a caller
/// that makes it elsewhere).
pub fn respond<B>(req: &Request<B>, app: &App) -> Resp {
    match prepare(req, app) {
        Prepared::Done(r) => r,
        Prepared::NeedsBody(job) => job.finish(app),
    }
}

/// A request answered but for a body that must be made first: a category or tag feed or an
/// article page missing from the feed cache, or a compressed variant not made yet. Making it
/// can take a while (a big term feed: tenths of a second), so the server does it on a
/// bounded pool of blocking threads, and health checks, 304s and cached bodies never wait
/// behind it.
pub struct BodyJob {
    resp: Resp,
    route: Arc<Rendered>,
    coding: Coding,
    kind: &'static str,
    head: bool,
}

impl BodyJob {
    /// Makes the body and completes the response.
    pub fn finish(self, app: &App) -> Resp {
        let BodyJob {
            mut resp,
            route,
            coding,
            kind,
            head,
        } = self;
        let body = route.body(coding);
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        if !head {
            *resp.body_mut() = Full::new(body);
        }
        app.metrics.request(kind, resp.status().as_u16());
        resp
    }
}

/// A response, or one whose body must still be made.
pub enum Prepared {
    Done(Resp),
    NeedsBody(BodyJob),
}

/// Answers a request as far as it can without making a body.
pub fn prepare<B>(req: &Request<B>, app: &App) -> Prepared {
    let raw = req.uri().path();
    // A client may percent-encode any character (`/%66eed.atom`); routes are plain text.
    // Nothing is ever looked up on disk, so a decoded `/` or `..` is just a path to miss.
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8();
    let path: &str = decoded.as_deref().unwrap_or(raw);
    let snapshot = app.site.borrow().clone();
    let head = req.method() == Method::HEAD;
    let (kind, mut resp) = match answer(req, path, snapshot.as_deref(), app) {
        Answer::Done(kind, resp) => (kind, resp),
        Answer::NeedsBody(kind, resp, route, coding) => {
            return Prepared::NeedsBody(BodyJob {
                resp,
                route,
                coding,
                kind,
                head,
            })
        }
    };
    if head {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    app.metrics.request(kind, resp.status().as_u16());
    Prepared::Done(resp)
}

/// The hub, when this request is for it (`POST /websub` with the built-in hub on).
pub fn hub_request<B>(req: &Request<B>, app: &App) -> Option<Arc<Hub>> {
    let hub = app.hub.as_ref()?;
    (req.method() == Method::POST && req.uri().path() == "/websub" && app.serves != Serves::Metrics)
        .then(|| hub.clone())
}

/// Answers `POST /websub`: the form (at most 4 KiB) goes to the hub, which answers 202 or
/// a 4xx saying what is wrong.
pub async fn websub(
    hub: Arc<Hub>,
    req: Request<hyper::body::Incoming>,
    peer: std::net::IpAddr,
    app: &App,
) -> Resp {
    use http_body_util::BodyExt;
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| {
            t.split(';').next().is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    let (status, text) = if !form {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the form as application/x-www-form-urlencoded\n".to_string(),
        )
    } else {
        match http_body_util::Limited::new(req.into_body(), MAX_REQUEST_BYTES)
            .collect()
            .await
        {
            Ok(body) => hub.request(body.to_bytes(), peer).await,
            Err(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a subscription request is at most {MAX_REQUEST_BYTES} bytes\n"),
            ),
        }
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    app.metrics.request("websub", status.as_u16());
    r
}

/// SVG can carry script: as a document of its own it gets nothing to run and no origin.
const SVG_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// A media file, sent from the file the index knows (opened now, checked as articles are
/// checked; never read into memory: see `zerocopy::file_slice`). Validators come from the
/// opened file, so they always describe the bytes sent; one `Range` is honoured (206/416),
/// more than one gets the whole file.
fn media_response<B>(
    req: &Request<B>,
    media: &crate::serve::snapshot::Media,
    snapshot: &Snapshot,
) -> Resp {
    use std::os::unix::fs::MetadataExt;
    let Some(loader) = &snapshot.media.loader else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    // Gone or changed for the worse since it was indexed: as if it were not there.
    let Ok((file, meta)) = loader.open_media(&media.rel) else {
        return plain(StatusCode::NOT_FOUND, "not found\n");
    };
    let len = meta.len();
    let mtime = meta.mtime();
    if crate::store::cache::Stamp::of(&meta) != media.stamp {
        // Changed since it was indexed: maybe still being written. Once its writer is done
        // the watcher takes it (a file replaced by a rename is taken as soon).
        let mut r = plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the file is changing; try again\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let etag = format!(
        "\"m{:x}-{:x}-{:x}.{:x}\"",
        meta.ino(),
        len,
        mtime,
        meta.mtime_nsec()
    );
    let last_modified = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime.max(0) as u64),
    );
    let mut r = Response::new(Full::new(Bytes::new()));
    let h = r.headers_mut();
    let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
    h.insert(header::ETAG, value(&etag));
    h.insert(header::LAST_MODIFIED, value(&last_modified));
    h.insert(header::CACHE_CONTROL, snapshot.cache_control.clone());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if media.content_type == "image/svg+xml" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SVG_CSP),
        );
    }
    let headers = req.headers();
    if revalidated(headers, &etag, mtime) {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return r;
    }
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(media.content_type),
    );
    // If-Range: a range of this version only (an ETag or the exact date), else the whole.
    let range_applies = match joined(headers, header::IF_RANGE) {
        None => true,
        Some(v) => v.trim() == etag || v.trim() == last_modified,
    };
    let range = joined(headers, header::RANGE).filter(|_| range_applies);
    let (status, start, end) = match range
        .map(|v| http_range_header::parse_range_header(&v).and_then(|p| p.validate(len)))
    {
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let (a, b) = (*ranges[0].start(), *ranges[0].end());
            (StatusCode::PARTIAL_CONTENT, a, b)
        }
        Some(Err(_)) => {
            let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            r.headers_mut()
                .insert(header::CONTENT_RANGE, value(&format!("bytes */{len}")));
            return r;
        }
        // No range, or several: the whole file.
        _ => (StatusCode::OK, 0, len - 1),
    };
    let body =
        match crate::serve::zerocopy::file_slice(Arc::new(file), start, (end - start + 1) as usize)
        {
            Ok(b) => b,
            Err(_) => return plain(StatusCode::SERVICE_UNAVAILABLE, "try again\n"),
        };
    *r.status_mut() = status;
    let h = r.headers_mut();
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            value(&format!("bytes {start}-{end}/{len}")),
        );
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *r.body_mut() = Full::new(body);
    r
}

enum Answer {
    Done(&'static str, Resp),
    NeedsBody(&'static str, Resp, Arc<Rendered>, Coding),
}

/// One request as the steps it goes through: the fixed routes (health, metrics, the hub,
/// methods), then a media file or a representation from the snapshot.
fn answer<B>(req: &Request<B>, path: &str, snapshot: Option<&Snapshot>, app: &App) -> Answer {
    let route = snapshot.and_then(|s| s.get(path));
    let kind = match (path, &route) {
        ("/healthz", _) => "healthz",
        ("/metrics", _) => "metrics",
        (_, Some(r)) => r.kind.as_str(),
        _ => "other",
    };
    if let Some(done) = fixed(req, path, kind, snapshot, app) {
        return done;
    }
    let Some(snapshot) = snapshot else {
        let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Answer::Done(kind, r);
    };
    let Some(route) = route else {
        if let Some(media) = snapshot.media_at(path) {
            return Answer::Done("media", media_response(req, &media, snapshot));
        }
        // A folder asked for without its slash (`/categories`): where it is.
        if !path.ends_with('/') && snapshot.get(&format!("{path}/")).is_some() {
            let mut r = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
            if let Ok(to) = HeaderValue::from_str(&format!("{}/", req.uri().path())) {
                r.headers_mut().insert(header::LOCATION, to);
            }
            return Answer::Done(kind, r);
        }
        return Answer::Done(kind, plain(StatusCode::NOT_FOUND, "not found\n"));
    };
    if let Some(to) = page_query(req, path) {
        // `?page=2` on a view's page: where that page lives (`/page/2/`).
        if to == path || snapshot.get(&to).is_some() {
            let mut r = plain(StatusCode::MOVED_PERMANENTLY, "moved\n");
            if let Ok(to) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, to);
            }
            return Answer::Done(kind, r);
        }
        return Answer::Done(kind, plain(StatusCode::NOT_FOUND, "no such page\n"));
    }
    represent(req, kind, route, snapshot)
}

/// The path `?page=<k>` on a view's own page (`/`, `/categories/<slug>/`) stands for.
fn page_query<B>(req: &Request<B>, path: &str) -> Option<String> {
    if !path.ends_with('/') || path.contains("/page/") {
        return None;
    }
    let k = req
        .uri()
        .query()?
        .split('&')
        .find_map(|p| p.strip_prefix("page="))?;
    Some(match k {
        "1" => path.to_string(),
        k => format!("{path}page/{k}/"),
    })
}

/// What does not come from the snapshot's routes: the hub's method, methods other than
/// GET and HEAD, `/healthz`, `/metrics` (where `metrics_listen` puts it).
fn fixed<B>(
    req: &Request<B>,
    path: &str,
    kind: &'static str,
    snapshot: Option<&Snapshot>,
    app: &App,
) -> Option<Answer> {
    if path == "/websub" && app.hub.is_some() && app.serves != Serves::Metrics {
        // Only POST gets here when the hub is on (see `hub_request`).
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "the WebSub hub takes POST (application/x-www-form-urlencoded)\n",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Some(Answer::Done("websub", r));
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(Answer::Done(kind, r));
    }
    let metrics_here = matches!(app.serves, Serves::Metrics | Serves::Site { metrics: true });
    if app.serves == Serves::Metrics && !matches!(path, "/healthz" | "/metrics") {
        return Some(Answer::Done(
            "other",
            plain(StatusCode::NOT_FOUND, "not found\n"),
        ));
    }
    match path {
        "/metrics" if !metrics_here => Some(Answer::Done(
            "other",
            plain(StatusCode::NOT_FOUND, "not found\n"),
        )),
        "/healthz" => {
            let busy = app
                .metrics
                .indexer_busy_secs(chrono::Utc::now().timestamp());
            let r = match snapshot {
                // Serving, but nothing new gets published: the operator must know.
                Some(_) if busy > crate::serve::metrics::INDEXER_STALL_SECS => {
                    plain(StatusCode::SERVICE_UNAVAILABLE, "indexer stalled\n")
                }
                Some(_) => plain(StatusCode::OK, "ok\n"),
                None => plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
            };
            Some(Answer::Done(kind, r))
        }
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(app.metrics.render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Some(Answer::Done(kind, r))
        }
        _ => None,
    }
}

/// Whether the request's validators match (304): `If-None-Match`, else `If-Modified-Since`.
fn revalidated(headers: &HeaderMap, etag: &str, last_modified: i64) -> bool {
    let inm = joined(headers, header::IF_NONE_MATCH);
    let ims = joined(headers, header::IF_MODIFIED_SINCE);
    conditional::not_modified(inm.as_deref(), ims.as_deref(), etag, last_modified)
}

/// A route's representation: content coding, validators (304), headers, the body when it
/// is made (else the caller makes it, see [`BodyJob`]).
fn represent<B>(
    req: &Request<B>,
    kind: &'static str,
    route: Arc<Rendered>,
    snapshot: &Snapshot,
) -> Answer {
    let headers = req.headers();
    let coding = encoding::negotiate(
        joined(headers, header::ACCEPT_ENCODING).as_deref(),
        route.codings(),
    );
    // Header values were made with the representation: cloning one is a reference count.
    let etag = route.headers.etag(coding);
    let mut r = Response::new(Full::new(Bytes::new()));
    let h = r.headers_mut();
    h.insert(header::ETAG, etag.clone());
    let (last_modified, date) = route.last_modified_at(std::time::SystemTime::now());
    h.insert(header::LAST_MODIFIED, last_modified);
    if let Some(date) = date {
        h.insert(header::DATE, date);
    }
    let cache_control = route.headers.cache_control.as_ref();
    h.insert(
        header::CACHE_CONTROL,
        cache_control.unwrap_or(&snapshot.cache_control).clone(),
    );
    // A browser's navigation to a feed gets the same bytes as `application/xml`, which it
    // shows styled (it shows the feed types as plain text); feed readers send no
    // `Sec-Fetch-*`. The choice is by those headers, never `Accept` (some readers ask for
    // HTML), and `Vary` names them so caches keep the two apart.
    let styled_xml = matches!(route.kind, Kind::Rss | Kind::Atom);
    h.insert(
        header::VARY,
        HeaderValue::from_static(if styled_xml {
            "Accept-Encoding, Sec-Fetch-Dest, Sec-Fetch-Mode"
        } else {
            "Accept-Encoding"
        }),
    );
    if let Some(link) = &route.headers.link {
        h.insert(header::LINK, link.clone());
    }
    let etag = etag.to_str().unwrap_or_default();
    if revalidated(headers, etag, route.last_modified) {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return Answer::Done(kind, r);
    }
    let h = r.headers_mut();
    let navigation = headers
        .get("sec-fetch-dest")
        .is_some_and(|v| v == "document")
        && headers
            .get("sec-fetch-mode")
            .is_some_and(|v| v == "navigate");
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(if styled_xml && navigation {
            "application/xml; charset=utf-8"
        } else {
            route.kind.content_type()
        }),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if route.kind == Kind::Html {
        // herald's pages need no script, frame or form; article bodies may show images
        // and media from anywhere. Nothing else loads, and no site may frame them.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
    }
    if let Some(enc) = coding.header() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    if !route.is_ready(coding) {
        return Answer::NeedsBody(kind, r, route, coding);
    }
    let body = route.body(coding);
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *r.body_mut() = Full::new(body);
    Answer::Done(kind, r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    fn healthz(app: &App) -> StatusCode {
        let req = Request::get("/healthz").body(()).unwrap();
        respond(&req, app).status()
    }

    #[test]
    fn bodies_not_made_yet_are_left_to_the_caller_and_health_never_is() {
        let mut snapshot = Snapshot::default();
        let feed = Rendered::new(Kind::Atom, b"<feed/>".repeat(100), 0, None);
        snapshot.routes.insert("/feed.atom".into(), Arc::new(feed));
        let (_tx, site) = watch::channel(Some(Arc::new(snapshot)));
        let app = App {
            site,
            metrics: Arc::new(Metrics::default()),
            serves: Serves::Site { metrics: true },
            hub: None,
        };
        let gzip = || {
            Request::get("/feed.atom")
                .header("Accept-Encoding", "gzip")
                .body(())
                .unwrap()
        };
        // The gzip variant is not made yet: the caller makes it (off the async workers).
        let Prepared::NeedsBody(job) = prepare(&gzip(), &app) else {
            panic!("a body to make was made on the request path");
        };
        let made = job.finish(&app);
        assert_eq!(made.headers()["content-encoding"], "gzip");
        // Made once: the next request is answered at once, and so is health.
        assert!(matches!(prepare(&gzip(), &app), Prepared::Done(_)));
        let health = Request::get("/healthz").body(()).unwrap();
        assert!(matches!(prepare(&health, &app), Prepared::Done(_)));
    }

    #[test]
    fn healthz_reports_an_indexer_that_makes_no_progress() {
        let (_tx, site) = watch::channel(Some(Arc::new(Snapshot::default())));
        let app = App {
            site,
            metrics: Arc::new(Metrics::default()),
            serves: Serves::Site { metrics: true },
            hub: None,
        };
        assert_eq!(healthz(&app), StatusCode::OK);
        let now = chrono::Utc::now().timestamp();
        app.metrics.indexer_busy_since.store(now - 5, Relaxed);
        assert_eq!(healthz(&app), StatusCode::OK, "busy, not stalled");
        app.metrics
            .indexer_busy_since
            .store(now - crate::serve::metrics::INDEXER_STALL_SECS - 1, Relaxed);
        assert_eq!(healthz(&app), StatusCode::SERVICE_UNAVAILABLE);
        app.metrics.indexer_busy_since.store(0, Relaxed);
        assert_eq!(healthz(&app), StatusCode::OK);
    }
}
