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
            } else if ![".html", ".txt", ".css"].iter().any(|e| path.ends_with(e)) {
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

#[test]
fn config_inputs_parse_or_fail_cleanly() {
    let inputs = inputs("config");
    assert!(!inputs.is_empty(), "no seeds found");
    let mut valid = 0;
    for (_, data) in inputs {
        valid += usize::from(herald::fuzz_support::parse_config_bytes(&data));
    }
    assert!(
        valid > 0,
        "no seed config was valid: the harness reads nothing"
    );
}

#[test]
fn damaged_state_rows_are_cache_misses() {
    let inputs = inputs("state_rows");
    assert!(!inputs.is_empty(), "no seeds found");
    let mut usable = 0;
    for (name, data) in &inputs {
        let ok = herald::fuzz_support::read_state_bytes(data);
        // The seeds are rows a real herald wrote: they must read back.
        if name.contains("/seeds/") {
            assert!(ok, "{name}: a real row did not read back");
        }
        usable += usize::from(ok);
        // Every truncation of a real row is damage herald must survive.
        for cut in [1, data.len() / 2, data.len().saturating_sub(1)] {
            herald::fuzz_support::read_state_bytes(&data[..cut.min(data.len())]);
        }
    }
    assert!(usable > 0);
}
