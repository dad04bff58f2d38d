//! Any method, path and headers: herald answers, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(status) = herald::fuzz_support::respond_to_raw(data) {
        assert!((200..600).contains(&status));
    }
});
