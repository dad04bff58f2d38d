//! Any bytes, as any article format: parsing never panics, and every output of a usable
//! article is well-formed XML or valid JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(pages) = herald::fuzz_support::render_article_bytes(data) else {
        return;
    };
    for (path, page) in pages {
        let text = std::str::from_utf8(&page.body).expect("outputs are UTF-8");
        if path.ends_with(".json") {
            serde_json::from_str::<serde_json::Value>(text).expect("valid JSON");
        } else if ![".html", ".txt", ".css"].iter().any(|e| path.ends_with(e)) {
            if let Err(e) = roxmltree::Document::parse(text) {
                panic!("{path} is not well-formed: {e}");
            }
        }
    }
});
