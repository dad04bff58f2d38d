//! Replays the fuzzers' seed corpora and every crash input ever found (fuzz/seeds,
//! fuzz/regressions) through the same checks the fuzz targets make.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            out.push((
                e.path().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn article_inputs_render_well_formed_feeds() {
    let inputs = inputs("parse_article");
    assert!(!inputs.is_empty(), "no seeds found");
    for (name, data) in inputs {
        let Some(pages) = herald::fuzz_support::render_article_bytes(&data) else {
            continue;
        };
        for (path, page) in pages {
            let text = std::str::from_utf8(&page.body).unwrap();
            if path.ends_with(".json") {
                serde_json::from_str::<serde_json::Value>(text)
                    .unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            } else if !path.ends_with(".html") {
                roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("{name}: {path}: {e}"));
            }
        }
    }
}

#[test]
fn request_inputs_get_answers() {
    let inputs = inputs("http_request");
    assert!(!inputs.is_empty(), "no seeds found");
    for (name, data) in inputs {
        if let Some(status) = herald::fuzz_support::respond_to_raw(&data) {
            assert!((200..600).contains(&status), "{name}: status {status}");
        }
    }
}
