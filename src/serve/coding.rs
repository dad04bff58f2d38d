//! Content codings: which ones herald sends, and making a body in one (gzip, brotli, or
//! the identity bytes with no spare capacity). Shared by the snapshot and the feed cache.

use std::io::Write;

use bytes::Bytes;

/// A content coding herald can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    pub(crate) fn etag_suffix(self) -> &'static str {
        match self {
            Coding::Identity => "",
            Coding::Gzip => "-gz",
            Coding::Brotli => "-br",
        }
    }
}

/// An identity body in a coding.
pub fn encode(identity: Vec<u8>, coding: Coding) -> Bytes {
    match coding {
        Coding::Identity => exact(identity),
        _ => compress(&identity, coding),
    }
}

/// Bytes that keep no spare capacity: a body built by a growing writer can hold up to twice
/// its length, and `Bytes::from(Vec)` keeps the whole allocation for as long as it lives.
pub fn exact(mut body: Vec<u8>) -> Bytes {
    body.shrink_to_fit();
    Bytes::from(body)
}

/// A body compressed in a coding (feeds: gzip level 6 or brotli; identity is a copy).
pub fn compress(identity: &[u8], coding: Coding) -> Bytes {
    match coding {
        Coding::Identity => Bytes::copy_from_slice(identity),
        Coding::Gzip => compress_gzip(identity, 6),
        Coding::Brotli => compress_brotli(identity),
    }
}

/// gzip at `level` (0–9).
pub fn compress_gzip(data: &[u8], level: u32) -> Bytes {
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3 + 64),
        flate2::Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    exact(enc.finish().unwrap_or_default())
}

/// Brotli quality 5: most of quality 11's gain at a small fraction of its time, which matters
/// when a change re-compresses several large feeds.
fn compress_brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 3);
    // A window no larger than the input: same output, and the encoder's buffers (sized by
    // the window) shrink to what a feed needs. Never below 17: at quality 5 a window of 16
    // or less switches the encoder to another match finder that allocates ~33 MB and is six
    // times slower on a 40 KB feed, for 6% smaller output.
    let fit = usize::BITS - data.len().max(1).leading_zeros();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 5,
        lgwin: fit.clamp(17, 22) as i32,
        ..Default::default()
    };
    // Reading from a slice and writing into a Vec cannot fail.
    let _ = brotli::BrotliCompress(&mut &data[..], &mut out, &params);
    exact(out)
}
