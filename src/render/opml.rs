//! OPML 2.0 listing every feed once, with absolute URLs, in the format `[feed] opml_format`
//! names: the main feed, then one outline group per category and per tag. Readers that
//! import it (newsboat, sfeed_opml_import, Tiny Tiny RSS) subscribe to every outline, so
//! listing each feed in three formats would subscribe them three times.

use std::fmt::Write;

use chrono::{DateTime, FixedOffset};

use super::FeedSpec;
use crate::config::{Config, OpmlFormat};
use crate::dates;
use crate::text::escape_html as esc;

pub(super) fn render(specs: &[FeedSpec], cfg: &Config, updated: DateTime<FixedOffset>) -> String {
    let mut out = String::with_capacity(4096 + specs.len() * 300);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<opml version=\"2.0\">\n<head>\n<title>{}</title>\n<dateCreated>{}</dateCreated>\n<ownerName>{}</ownerName>\n</head>\n<body>\n",
        text(&cfg.site.title),
        dates::rfc2822(updated),
        text(&cfg.site.author),
    );
    let format = cfg.feed.opml_format;
    // OPML 2.0 defines `version` for RSS only ("RSS", "RSS1", "RSS2", "scriptingNews").
    let version = match format {
        OpmlFormat::Rss => " version=\"RSS2\"",
        OpmlFormat::Atom | OpmlFormat::Json => "",
    };
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
            // A group is `text` alone: other attributes without `type` make it a feed.
            let _ = writeln!(out, "<outline text=\"{label}\">");
        }
        let title = text(&spec.title);
        let _ = writeln!(
            out,
            "<outline type=\"rss\"{version} text=\"{title}\" title=\"{title}\" xmlUrl=\"{}\" htmlUrl=\"{}\"/>",
            esc(&spec.url(cfg, format.ext())),
            esc(&spec.html_url),
        );
    }
    if !group.is_empty() {
        out.push_str("</outline>\n");
    }
    out.push_str("</body>\n</opml>\n");
    out
}

/// A title for `text`/`title` (and the head's): OPML 2.0 lets readers show these as HTML,
/// and the W3C validator parses them so ("R&D" is "Named entity expected"), so the text is
/// escaped as HTML and that again as XML. The XML parser gives back HTML whose text is the
/// title.
fn text(s: &str) -> String {
    esc(&esc(s)).into_owned()
}
