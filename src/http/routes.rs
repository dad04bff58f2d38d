//! Answering one request from the current snapshot: routes, `/healthz`, `/metrics`, 404,
//! 405, HEAD, content coding and conditional GET. Pure lookups: no disk, no rendering.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::watch;

use super::{conditional, encoding};
use crate::metrics::Metrics;
use crate::site::Snapshot;

/// What every request handler shares.
pub struct App {
    pub site: watch::Receiver<Option<Arc<Snapshot>>>,
    pub metrics: Arc<Metrics>,
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

/// All values of a header joined by ", " (clients may split lists over several lines).
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let mut values = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .peekable();
    values.peek()?;
    Some(values.collect::<Vec<_>>().join(", "))
}

/// Answers a request. HEAD gets GET's headers (same Content-Length and ETag) and no body.
pub fn respond<B>(req: &Request<B>, app: &App) -> Resp {
    let path = req.uri().path();
    let snapshot = app.site.borrow().clone();
    let (kind, mut resp) = answer(req, path, snapshot.as_deref(), app);
    if req.method() == Method::HEAD {
        *resp.body_mut() = Full::new(Bytes::new());
    }
    app.metrics.request(kind, resp.status().as_u16());
    resp
}

fn answer<B>(
    req: &Request<B>,
    path: &str,
    snapshot: Option<&Snapshot>,
    app: &App,
) -> (&'static str, Resp) {
    let route = snapshot.and_then(|s| s.get(path));
    let kind = match (path, &route) {
        ("/healthz", _) => "healthz",
        ("/metrics", _) => "metrics",
        (_, Some(r)) => r.kind.as_str(),
        _ => "other",
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return (kind, r);
    }
    match path {
        "/healthz" => {
            return match snapshot {
                Some(_) => (kind, plain(StatusCode::OK, "ok\n")),
                None => (kind, plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n")),
            }
        }
        "/metrics" => {
            let mut r = Response::new(Full::new(Bytes::from(app.metrics.render())));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            return (kind, r);
        }
        _ => {}
    }
    let Some(snapshot) = snapshot else {
        let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "starting\n");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return (kind, r);
    };
    let Some(route) = route else {
        return (kind, plain(StatusCode::NOT_FOUND, "not found\n"));
    };

    let headers = req.headers();
    let coding = encoding::negotiate(
        joined(headers, header::ACCEPT_ENCODING).as_deref(),
        route.codings(),
    );
    let etag = route.etag(coding);
    let lm =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(route.last_modified.max(0) as u64);
    let mut r = Response::new(Full::new(Bytes::new()));
    let h = r.headers_mut();
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    set(h, header::ETAG, &etag);
    set(h, header::LAST_MODIFIED, &httpdate::fmt_http_date(lm));
    set(
        h,
        header::CACHE_CONTROL,
        &format!("public, max-age={}", snapshot.max_age),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Some(url) = &route.self_url {
        set(h, header::LINK, &format!("<{url}>; rel=\"self\""));
    }
    let inm = joined(headers, header::IF_NONE_MATCH);
    let ims = joined(headers, header::IF_MODIFIED_SINCE);
    if conditional::not_modified(inm.as_deref(), ims.as_deref(), &etag, route.last_modified) {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        return (kind, r);
    }
    let body = route.body(coding);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(route.kind.content_type()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(enc) = coding.header() {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(enc));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *r.body_mut() = Full::new(body);
    (kind, r)
}
