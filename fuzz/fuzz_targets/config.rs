//! Any bytes as a config file: a `Config` or an error that names the problem, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    herald::fuzz_support::parse_config_bytes(data);
});
