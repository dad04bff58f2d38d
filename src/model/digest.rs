//! Length-prefixed digests of what an output shows: a term feed's or an article page's
//! ETag is a digest of everything it shows, so equal digests mean equal bytes.

use chrono::{DateTime, FixedOffset};

/// Adds a length-prefixed field to a digest (so "ab"+"c" and "a"+"bc" differ).
pub fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Adds a date with its offset to a digest.
pub fn date(h: &mut blake3::Hasher, d: &DateTime<FixedOffset>) {
    h.update(&d.timestamp().to_le_bytes());
    h.update(&d.timestamp_subsec_nanos().to_le_bytes());
    h.update(&d.offset().local_minus_utc().to_le_bytes());
}
