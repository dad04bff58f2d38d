//! Any bytes as an article-cache row and a page-store blob from a damaged state dir: read
//! as on start, never a panic, never an allocation out of proportion (run with
//! `-malloc_limit_mb`); a bad row or blob is a cache miss.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    herald::fuzz_support::read_state_bytes(data);
});
