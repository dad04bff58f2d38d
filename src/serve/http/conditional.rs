//! Conditional GET (RFC 9110 §13.1–13.2.2): If-None-Match (a list, `*`, weak comparison)
//! wins; otherwise If-Modified-Since, compared as a time, never as a string.

use std::time::{Duration, UNIX_EPOCH};

/// True when the client's copy is current and a 304 is the answer.
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    etag: &str,
    last_modified: i64,
) -> bool {
    if let Some(inm) = if_none_match {
        return etag_matches(inm, etag);
    }
    let Some(ims) = if_modified_since else {
        return false;
    };
    let Ok(since) = httpdate::parse_http_date(ims.trim()) else {
        return false;
    };
    let since = since
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    last_modified <= since
}

/// Weak comparison against a list of entity tags (proxies turn `"x"` into `W/"x"`).
fn etag_matches(header: &str, etag: &str) -> bool {
    let ours = opaque(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || (!t.is_empty() && opaque(t) == ours))
}

fn opaque(tag: &str) -> &str {
    let t = tag.trim();
    let t = t
        .strip_prefix("W/")
        .or_else(|| t.strip_prefix("w/"))
        .unwrap_or(t);
    t.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"abc-gz\"";
    // Sun, 06 Nov 1994 08:49:37 GMT
    const LM: i64 = 784111777;

    #[test]
    fn if_none_match() {
        assert!(not_modified(Some("\"abc-gz\""), None, TAG, LM));
        assert!(not_modified(Some("W/\"abc-gz\""), None, TAG, LM));
        assert!(not_modified(Some("\"x\", \"abc-gz\""), None, TAG, LM));
        assert!(not_modified(Some("*"), None, TAG, LM));
        assert!(!not_modified(Some("\"abc\""), None, TAG, LM));
        assert!(!not_modified(Some(""), None, TAG, LM));
        // If-None-Match wins over a matching If-Modified-Since.
        assert!(!not_modified(
            Some("\"other\""),
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            TAG,
            LM
        ));
    }

    #[test]
    fn if_modified_since_compares_times() {
        assert!(not_modified(
            None,
            Some("Sun, 06 Nov 1994 08:49:37 GMT"),
            TAG,
            LM
        ));
        assert!(not_modified(
            None,
            Some("Mon, 07 Nov 1994 00:00:00 GMT"),
            TAG,
            LM
        ));
        assert!(!not_modified(
            None,
            Some("Sun, 06 Nov 1994 08:49:36 GMT"),
            TAG,
            LM
        ));
        // Obsolete formats readers still send.
        assert!(not_modified(
            None,
            Some("Sunday, 06-Nov-94 08:49:37 GMT"),
            TAG,
            LM
        ));
        assert!(not_modified(
            None,
            Some("Sun Nov  6 08:49:37 1994"),
            TAG,
            LM
        ));
        assert!(!not_modified(None, Some("garbage"), TAG, LM));
        assert!(!not_modified(None, None, TAG, LM));
    }
}
