//! OPML 2.0 listing every feed with absolute URLs: the main feeds, then one outline group
//! per category and per tag.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset};

use super::FeedSpec;
use crate::config::Config;
use crate::dates;
use crate::text::escape_html as esc;

pub(super) fn render(specs: &[FeedSpec], cfg: &Config, updated: DateTime<FixedOffset>) -> String {
    let mut out = String::with_capacity(4096 + specs.len() * 700);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<opml version=\"2.0\">\n<head>\n<title>{}</title>\n<dateCreated>{}</dateCreated>\n<ownerName>{}</ownerName>\n</head>\n<body>\n",
        esc(&cfg.site.title),
        dates::rfc2822(updated),
        esc(&cfg.site.author),
    );
    let mut group = "";
    for spec in specs {
        let section = spec.dir.split('/').next().unwrap_or("");
        if section != group {
            if !group.is_empty() {
                out.push_str("</outline>\n");
            }
            group = section;
            let label = if section == "categories" {
                "Categories"
            } else {
                "Tags"
            };
            let _ = writeln!(out, "<outline text=\"{label}\" title=\"{label}\">");
        }
        for (ext, format) in [("atom", "Atom"), ("rss", "RSS"), ("json", "JSON Feed")] {
            let text = format!("{} ({format})", spec.title);
            let _ = writeln!(
                out,
                "<outline type=\"rss\" version=\"{}\" text=\"{}\" title=\"{}\" xmlUrl=\"{}\" htmlUrl=\"{}\"/>",
                if ext == "rss" { "RSS2" } else { format },
                esc(&text),
                esc(&text),
                esc(&spec.url(cfg, ext)),
                esc(&spec.html_url),
            );
        }
    }
    if !group.is_empty() {
        out.push_str("</outline>\n");
    }
    out.push_str("</body>\n</opml>\n");
    out
}
