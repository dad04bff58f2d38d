//! The served site: an immutable [`Snapshot`] of every route with its body, compressed
//! variants, ETag and Last-Modified, built once per change and swapped atomically. Requests
//! only read a snapshot; nothing here is computed per request except, once per version, the
//! compressed variants of article pages (feeds and lists are compressed when published).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::render::Kind;

/// A content coding herald can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Brotli,
}

impl Coding {
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::Identity => None,
            Coding::Gzip => Some("gzip"),
            Coding::Brotli => Some("br"),
        }
    }

    fn etag_suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Gzip => "-gz",
            Coding::Brotli => "-br",
        }
    }
}

/// One route's current representation.
#[derive(Debug)]
pub struct Rendered {
    pub kind: Kind,
    pub identity: Bytes,
    gzip: OnceLock<Bytes>,
    br: OnceLock<Bytes>,
    /// Hex of the body's blake3 hash (first 20 chars): the ETag's opaque part.
    pub tag: String,
    /// Unix seconds; never goes backwards for a route.
    pub last_modified: i64,
    /// The feed's own URL, for `Link: <…>; rel="self"`.
    pub self_url: Option<String>,
}

impl Rendered {
    /// Builds a representation; with `eager`, the compressed variants are made now.
    pub fn new(
        kind: Kind,
        body: Vec<u8>,
        last_modified: i64,
        self_url: Option<String>,
        eager: bool,
    ) -> Rendered {
        let r = Rendered {
            kind,
            tag: body_tag(&body),
            identity: Bytes::from(body),
            gzip: OnceLock::new(),
            br: OnceLock::new(),
            last_modified,
            self_url,
        };
        if eager {
            r.body(Coding::Gzip);
            r.body(Coding::Brotli);
        }
        r
    }

    /// The body in a coding (compressed at most once per version).
    pub fn body(&self, coding: Coding) -> &Bytes {
        match coding {
            Coding::Identity => &self.identity,
            Coding::Gzip => self.gzip.get_or_init(|| gzip(&self.identity)),
            Coding::Brotli => self.br.get_or_init(|| brotli(&self.identity)),
        }
    }

    /// The strong ETag of the body in a coding (each coding has its own).
    pub fn etag(&self, coding: Coding) -> String {
        format!("\"{}{}\"", self.tag, coding.etag_suffix())
    }
}

/// The opaque part of an ETag for a body.
pub fn body_tag(body: &[u8]) -> String {
    blake3::hash(body).to_hex()[..20].to_string()
}

fn gzip(data: &[u8]) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::best(),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    Bytes::from(enc.finish().unwrap_or_default())
}

fn brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 3);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 9,
        lgwin: 22,
        ..Default::default()
    };
    // Reading from a slice and writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut &data[..], &mut out, &params);
    Bytes::from(out)
}

/// Everything served, as of one index version.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Route path (with a leading `/`) → representation.
    pub routes: HashMap<String, Arc<Rendered>>,
    pub generation: u64,
    pub articles: usize,
    pub feeds: usize,
    /// `Cache-Control: public, max-age=…`.
    pub max_age: u32,
    /// Unix seconds of the last content change applied.
    pub last_change: i64,
}

impl Snapshot {
    /// Looks up a request path; `/` is the index page.
    pub fn get(&self, path: &str) -> Option<&Arc<Rendered>> {
        if path == "/" {
            return self.routes.get("/index.html");
        }
        self.routes.get(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn compressed_bodies_decompress_to_identity() {
        let body = "<feed>".repeat(1000).into_bytes();
        let r = Rendered::new(Kind::Atom, body.clone(), 0, None, true);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&r.body(Coding::Gzip)[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, body);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &r.body(Coding::Brotli)[..], &mut out).unwrap();
        assert_eq!(out, body);
        assert_ne!(r.etag(Coding::Gzip), r.etag(Coding::Identity));
        assert_ne!(r.etag(Coding::Brotli), r.etag(Coding::Gzip));
    }
}
