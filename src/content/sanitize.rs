//! The HTML sanitiser every HTML body passes (ammonia), with the URL rewriting it does.

/// The HTML sanitiser: ammonia's safe defaults (no script, style, iframe, object, form, no
/// `on*` attributes, no `javascript:`), relative URLs made absolute against the base URL,
/// `srcset` kept with each candidate made absolute, and `data:` URLs only for raster images.
pub fn sanitizer(base: &url::Url) -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.add_tag_attributes("img", ["srcset", "sizes", "loading"])
        .add_url_schemes(["data"])
        .url_relative(ammonia::UrlRelative::Custom(Box::new(Relative(
            base.clone(),
        ))))
        .link_rel(Some("noopener noreferrer"));
    let base = base.clone();
    b.attribute_filter(move |element, attribute, value| {
        let lower = value.trim_start().to_ascii_lowercase();
        if lower.starts_with("data:") {
            let raster = lower.starts_with("data:image/") && !lower.starts_with("data:image/svg");
            return (element == "img" && attribute == "src" && raster).then(|| value.into());
        }
        if attribute == "srcset" {
            let out = rewrite_srcset(&base, value);
            return (!out.is_empty()).then(|| out.into());
        }
        Some(value.into())
    });
    b
}

/// Resolves a relative URL against the document's base ([`with_base`]), else the site's.
struct Relative(url::Url);

impl<'a> ammonia::UrlRelativeEvaluate<'a> for Relative {
    fn evaluate<'url>(&self, url: &'url str) -> Option<std::borrow::Cow<'url, str>> {
        let doc = DOC_BASE.with(|b| b.borrow().clone());
        let joined = doc.as_ref().unwrap_or(&self.0).join(url).ok()?;
        matches!(joined.scheme(), "http" | "https").then(|| joined.to_string().into())
    }
}

thread_local! {
    /// The base relative URLs resolve against while one document is sanitised (see
    /// [`with_base`]); the site's base URL otherwise.
    static DOC_BASE: std::cell::RefCell<Option<url::Url>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` (a sanitiser's `clean`) with relative URLs resolving against `base`.
pub fn with_base<R>(base: url::Url, f: impl FnOnce() -> R) -> R {
    DOC_BASE.with(|b| *b.borrow_mut() = Some(base));
    let out = f();
    DOC_BASE.with(|b| *b.borrow_mut() = None);
    out
}

/// Makes each `srcset` candidate absolute and drops any that is not http(s).
fn rewrite_srcset(base: &url::Url, value: &str) -> String {
    let doc = DOC_BASE.with(|b| b.borrow().clone());
    let base = doc.as_ref().unwrap_or(base);
    value
        .split(',')
        .filter_map(|cand| {
            let cand = cand.trim();
            let (u, desc) = cand.split_once(char::is_whitespace).unwrap_or((cand, ""));
            let abs = base
                .join(u)
                .ok()
                .filter(|a| matches!(a.scheme(), "http" | "https"))?;
            Some(if desc.trim().is_empty() {
                abs.to_string()
            } else {
                format!("{} {}", abs, desc.trim())
            })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizer_removes_active_content_and_absolutizes_urls() {
        let b = sanitizer(&url::Url::parse("https://ex.com/blog/").unwrap());
        let out = b
            .clean(
                r#"<p onclick="x()">hi<script>alert(1)</script><style>p{}</style>
<iframe src="https://evil"></iframe><object data="x"></object><form action="/x"><input></form>
<a href="javascript:alert(1)">j</a><a href="../up.html">rel</a><img src="img/a.png" srcset="a.png 1x, b.png 2x, javascript:x 3x">
<img src="data:image/png;base64,AAAA"><img src="data:image/svg+xml,<svg onload=x>"><a href="data:text/html,x">d</a></p>"#,
            )
            .to_string();
        for bad in [
            "onclick",
            "<script",
            "alert(1)</",
            "<style",
            "<iframe",
            "<object",
            "<form",
            "javascript:",
            "data:text",
            "svg+xml",
        ] {
            assert!(!out.contains(bad), "{bad} survived in {out}");
        }
        assert!(out.contains(r#"href="https://ex.com/up.html""#), "{out}");
        assert!(
            out.contains(r#"src="https://ex.com/blog/img/a.png""#),
            "{out}"
        );
        assert!(
            out.contains("https://ex.com/blog/a.png 1x, https://ex.com/blog/b.png 2x"),
            "{out}"
        );
        assert!(out.contains("data:image/png;base64,AAAA"), "{out}");
    }
}
