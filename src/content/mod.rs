//! Article files → [`Document`]s: which files are articles ([`is_candidate`]), the recursive
//! scan with its symlink policy ([`scan`]), and loading one file ([`Loader::load`]): read with a
//! size cap from a descriptor checked as opened (`read.rs`), decode, parse by format,
//! sanitise, remove XML-illegal characters, summarise.
//!
//! A `Document` is everything an article says about itself; what herald remembers about it
//! (id, first-seen time) is added later from the state store. This module knows nothing of
//! feeds, HTTP or the state store. A bad file is a [`Skipped`] value, never a panic.

mod html;
mod markdown;
mod media;
mod plain;
mod read;
mod sanitize;
mod scan;
mod scraped;

pub use media::MediaRef;
pub use sanitize::sanitizer;
use scan::io_reason;
pub use scan::{is_candidate, media_type, scan, Scan};

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{Config, Labels};
use crate::dates::{self, RawDate};
use crate::text;

/// How an article file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.txt`: the scraped news-page layout when its labels are present, else plain text.
    Text,
    Markdown,
    Html,
}

/// Why a file is not (or not any more) an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    Hidden,
    TempFile,
    NotArticle,
    Draft,
    SymlinkOutside,
    SymlinkDuplicate,
    NotRegularFile,
    FilesystemLoop,
    NonUtf8Name,
    TooLarge,
    Binary,
    Unreadable,
    NoTitle,
    BadFrontMatter,
    /// HTML (given, or made from Markdown) that would take its parser out of all proportion
    /// to its size (see [`html::too_complex`]).
    TooComplexHtml,
    /// A body whose HTML is out of proportion to its source (see [`MAX_EXPANSION`]).
    HtmlTooLarge,
    /// A media file with no bytes.
    EmptyMedia,
}

/// Titles longer than this (in characters) are cut, with a warning: a title is a line in a
/// reader's list, and one of a megabyte is an attack on every page that shows it.
pub const MAX_TITLE_CHARS: usize = 1000;

/// How much larger than its file an article's HTML body may be: Markdown tables expand
/// ~300× (an 8 KB table of 1 000 columns is 2.3 MB of HTML), so 50 such files made a
/// 119 MB feed. Bodies under [`MIN_HTML_CAP`] are always fine.
pub const MAX_EXPANSION: usize = 8;
/// See [`MAX_EXPANSION`].
pub const MIN_HTML_CAP: usize = 256 * 1024;

impl SkipReason {
    pub const ALL: [SkipReason; 17] = [
        SkipReason::Hidden,
        SkipReason::TempFile,
        SkipReason::NotArticle,
        SkipReason::Draft,
        SkipReason::SymlinkOutside,
        SkipReason::SymlinkDuplicate,
        SkipReason::NotRegularFile,
        SkipReason::FilesystemLoop,
        SkipReason::NonUtf8Name,
        SkipReason::TooLarge,
        SkipReason::Binary,
        SkipReason::Unreadable,
        SkipReason::NoTitle,
        SkipReason::BadFrontMatter,
        SkipReason::TooComplexHtml,
        SkipReason::HtmlTooLarge,
        SkipReason::EmptyMedia,
    ];

    /// The label used in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Hidden => "hidden",
            SkipReason::TempFile => "temp_file",
            SkipReason::NotArticle => "not_article",
            SkipReason::Draft => "draft",
            SkipReason::SymlinkOutside => "symlink_outside",
            SkipReason::SymlinkDuplicate => "symlink_duplicate",
            SkipReason::NotRegularFile => "not_regular_file",
            SkipReason::FilesystemLoop => "filesystem_loop",
            SkipReason::NonUtf8Name => "non_utf8_name",
            SkipReason::TooLarge => "too_large",
            SkipReason::Binary => "binary",
            SkipReason::Unreadable => "unreadable",
            SkipReason::NoTitle => "no_title",
            SkipReason::BadFrontMatter => "bad_front_matter",
            SkipReason::TooComplexHtml => "too_complex_html",
            SkipReason::HtmlTooLarge => "html_too_large",
            SkipReason::EmptyMedia => "empty_media",
        }
    }

    /// True when a file meant as an article could not be used (`check` exits 1). Hidden
    /// files, editor temp files, other file types and drafts are skipped by design.
    pub fn is_error(self) -> bool {
        !matches!(
            self,
            SkipReason::Hidden
                | SkipReason::TempFile
                | SkipReason::NotArticle
                | SkipReason::Draft
                | SkipReason::SymlinkDuplicate
        )
    }
}

/// A file that did not become an entry, with a message for the log and `check`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Skipped {
    /// Path relative to the content dir, `/`-separated.
    pub path: String,
    pub reason: SkipReason,
    pub message: String,
}

impl Skipped {
    fn new(path: &str, reason: SkipReason, message: impl Into<String>) -> Self {
        Skipped {
            path: path.to_string(),
            reason,
            message: message.into(),
        }
    }
}

/// Everything an article file says about itself, cleaned and ready to render.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Path relative to the content dir, `/`-separated: the article's key.
    pub path: String,
    /// blake3 of the file's bytes: detects edits and renames.
    pub hash: blake3::Hash,
    pub title: String,
    pub date: Option<RawDate>,
    pub updated: Option<RawDate>,
    pub authors: Vec<String>,
    pub summary: String,
    /// Sanitised HTML with absolute URLs and only XML-legal characters.
    pub content_html: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    /// An external URL the entry links to instead of its own page.
    pub link: Option<String>,
    /// An id given by the article itself (front matter `id`).
    pub id: Option<String>,
    /// The featured image: front matter `image`, `og:image`, else the body's first image.
    pub image: Option<MediaRef>,
    /// An audio or video file (front matter `enclosure`).
    pub enclosure: Option<MediaRef>,
    /// Problems that did not stop the article from being used, for `check`.
    pub warnings: Vec<String>,
}

/// What a format parser extracts, before cleaning.
#[derive(Debug, Default)]
struct Parsed {
    title: Option<String>,
    /// The date as written, parsed later so that a bad one becomes a warning.
    date: Option<String>,
    updated: Option<String>,
    authors: Vec<String>,
    summary: Option<String>,
    body: Body,
    categories: Vec<String>,
    tags: Vec<String>,
    link: Option<String>,
    id: Option<String>,
    image: Option<String>,
    enclosure: Option<String>,
    draft: bool,
    /// Whether the metadata strings above are markup (values from an HTML source, reduced
    /// to their visible text) or text (every other source: kept character for character).
    markup: bool,
}

#[derive(Debug)]
enum Body {
    /// Plain-text paragraphs (scraped and plain text): escaped into `<p>`s, nothing to sanitise.
    Paragraphs(Vec<String>),
    /// Untrusted HTML with its plain text (for the summary).
    Html { html: String, text: String },
}

impl Default for Body {
    fn default() -> Self {
        Body::Paragraphs(Vec::new())
    }
}

/// Loads article files with one configuration: content root, limits, labels, sanitiser.
pub struct Loader {
    root: PathBuf,
    root_canon: Option<PathBuf>,
    /// The site's base URL: relative URLs in bodies resolve against the article's folder
    /// under it, and local media are served under it.
    base_url: url::Url,
    max_bytes: u64,
    max_media_bytes: u64,
    summary_chars: usize,
    labels: Labels,
    sanitizer: ammonia::Builder<'static>,
}

impl Loader {
    pub fn new(cfg: &Config) -> Loader {
        Loader {
            root: cfg.content_dir.clone(),
            root_canon: fs::canonicalize(&cfg.content_dir).ok(),
            base_url: cfg.site.base_url.clone(),
            max_bytes: cfg.max_article_bytes,
            max_media_bytes: cfg.max_media_bytes,
            summary_chars: cfg.feed.summary_chars,
            labels: cfg.labels.clone(),
            sanitizer: sanitizer(&cfg.site.base_url),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads and parses one file, given by its path relative to the content dir. Whatever
    /// the path was when it was found, what is read is checked to be a regular file inside
    /// the content dir (see [`Loader::open_inside`]).
    pub fn load(&self, rel: &str) -> Result<Document, Skipped> {
        self.load_checked(rel, &mut None)
    }

    /// Like [`Loader::load`], also giving the file's metadata as it was opened (none when it
    /// could not be): a caller that needs both makes one `stat` instead of two.
    pub fn load_with_meta(&self, rel: &str) -> (Option<fs::Metadata>, Result<Document, Skipped>) {
        let mut meta = None;
        let doc = self.load_checked(rel, &mut meta);
        (meta, doc)
    }

    fn load_checked(
        &self,
        rel: &str,
        meta: &mut Option<fs::Metadata>,
    ) -> Result<Document, Skipped> {
        let rel_path = Path::new(rel);
        let format = is_candidate(rel_path).map_err(|(r, m)| Skipped::new(rel, r, m))?;
        let abs = self.root.join(rel_path);
        let bytes = self.read_capped(rel, &abs, meta)?;
        self.parse_owned(rel, bytes, format)
    }

    /// Parses bytes as an article in `format`. Public for fuzzing and property tests.
    pub fn parse_bytes(
        &self,
        rel: &str,
        bytes: &[u8],
        format: Format,
    ) -> Result<Document, Skipped> {
        self.parse_owned(rel, bytes.to_vec(), format)
    }

    fn parse_owned(&self, rel: &str, bytes: Vec<u8>, format: Format) -> Result<Document, Skipped> {
        let has_bom = encoding_rs::Encoding::for_bom(&bytes).is_some();
        if !has_bom && text::looks_binary(&bytes) {
            return Err(Skipped::new(
                rel,
                SkipReason::Binary,
                "skipped: binary file",
            ));
        }
        let hash = blake3::hash(&bytes);
        let source_len = bytes.len();
        let decoded = text::decode_owned(bytes, format == Format::Html);
        let mut warnings = Vec::new();
        if decoded.had_errors {
            warnings.push(format!(
                "invalid {} byte sequences replaced with U+FFFD",
                decoded.encoding
            ));
        }
        let (text, removed) = text::xml_clean_counted(decoded.text);
        if removed > 0 {
            warnings.push(format!("{removed} characters illegal in XML removed"));
        }
        let parsed = match format {
            Format::Text if scraped::is_scraped(&text, &self.labels) => {
                scraped::parse(&text, &self.labels)
            }
            Format::Text => plain::parse(&text),
            Format::Markdown => markdown::parse(&text)
                .map_err(|m| Skipped::new(rel, SkipReason::BadFrontMatter, m))?,
            Format::Html if html::too_complex(&text) => return Err(too_complex(rel)),
            Format::Html => html::parse(&text),
        };
        self.finish(rel, hash, parsed, source_len, warnings)
    }

    fn finish(
        &self,
        rel: &str,
        hash: blake3::Hash,
        p: Parsed,
        source_len: usize,
        mut warnings: Vec<String>,
    ) -> Result<Document, Skipped> {
        if p.draft {
            return Err(Skipped::new(rel, SkipReason::Draft, "skipped: draft"));
        }
        // A title like `AT&T <draft>` from a text source keeps every character: only values
        // from HTML sources are markup to reduce to text.
        let line = if p.markup { clean_line } else { text_line };
        let mut title = line(p.title.as_deref().unwrap_or(""));
        if title.is_empty() {
            return Err(Skipped::new(
                rel,
                SkipReason::NoTitle,
                "skipped: missing title",
            ));
        }
        if let Some((cut, _)) = title.char_indices().nth(MAX_TITLE_CHARS) {
            title.truncate(cut);
            title.push('…');
            warnings.push(format!("title cut to {MAX_TITLE_CHARS} characters"));
        }
        let date = parse_date_field(p.date.as_deref(), "date", line, &mut warnings);
        let updated = parse_date_field(p.updated.as_deref(), "updated", line, &mut warnings);
        let (content_html, body_text) = match p.body {
            Body::Paragraphs(paras) => {
                let mut html = String::new();
                for para in &paras {
                    html.push_str("<p>");
                    html.push_str(&text::escape_html(para));
                    html.push_str("</p>\n");
                }
                // The summary needs only the start of the text.
                let mut start = String::new();
                for p in &paras {
                    if start.len() > self.summary_chars * 4 {
                        break;
                    }
                    start.push_str(p);
                    start.push('\n');
                }
                (html, start)
            }
            Body::Html { html, text } => {
                let cap = (source_len * MAX_EXPANSION).max(MIN_HTML_CAP);
                if html.len() > cap {
                    return Err(Skipped::new(
                        rel,
                        SkipReason::HtmlTooLarge,
                        format!(
                            "skipped: its HTML is {} bytes, over {MAX_EXPANSION} times its {source_len} bytes",
                            html.len()
                        ),
                    ));
                }
                if html::too_complex(&html) {
                    return Err(too_complex(rel));
                }
                // Relative URLs resolve against the article's own folder under the site, as
                // its media files are served.
                let folder = rel.rfind('/').map_or("", |i| &rel[..=i]);
                let base = self
                    .base_url
                    .join(folder)
                    .unwrap_or_else(|_| self.base_url.clone());
                let clean = sanitize::with_base(base, || self.sanitizer.clean(&html).to_string());
                (text::xml_clean(&clean).into_owned(), text)
            }
        };
        let summary = match p.summary.as_deref().map(line) {
            Some(s) if !s.is_empty() => text::summarize(&s, self.summary_chars),
            // Text taken from parsed HTML or Markdown has its character references decoded.
            _ => text::summarize(&text::xml_clean(&body_text), self.summary_chars),
        };
        let link = p.link.and_then(|l| {
            let l = line(&l);
            match url::Url::parse(&l) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => Some(u.to_string()),
                _ => {
                    warnings.push(format!("link {l:?} ignored: not an absolute http(s) URL"));
                    None
                }
            }
        });
        let id = p.id.map(|i| line(&i)).filter(|i| !i.is_empty());
        if let Some(id) = &id {
            if url::Url::parse(id).is_err() {
                warnings.push(format!(
                    "id {id:?} is not an absolute URI; feed validators require one"
                ));
            }
        }
        let image = p
            .image
            .map(|v| line(&v))
            .or_else(|| media::first_img_src(&content_html))
            .and_then(|v| self.resolve_media(rel, &v, media::Want::Image, &mut warnings));
        let enclosure = p.enclosure.and_then(|v| {
            self.resolve_media(rel, &line(&v), media::Want::Enclosure, &mut warnings)
        });
        let categories = capped(p.categories, "categories", line, &mut warnings);
        let tags = capped(p.tags, "tags", line, &mut warnings);
        Ok(Document {
            path: rel.to_string(),
            hash,
            title,
            date,
            updated,
            authors: clean_list(p.authors, |a| clean_author(a, line)),
            summary,
            content_html,
            categories,
            tags,
            link,
            id,
            image,
            enclosure,
            warnings,
        })
    }
}

fn too_complex(rel: &str) -> Skipped {
    Skipped::new(
        rel,
        SkipReason::TooComplexHtml,
        format!(
            "skipped: HTML nested more than {} elements deep, with more than {} attributes on an element, or text that would take its parser minutes to escape",
            html::MAX_DEPTH,
            html::MAX_ATTRIBUTES
        ),
    )
}

fn parse_date_field(
    value: Option<&str>,
    field: &str,
    line: fn(&str) -> String,
    warnings: &mut Vec<String>,
) -> Option<RawDate> {
    let value = line(value?);
    if value.is_empty() {
        return None;
    }
    let parsed = dates::parse_date(&value);
    if parsed.is_none() {
        warnings.push(format!("unparseable {field} {value:?}"));
    }
    parsed
}

/// One line of metadata from an HTML source: tags stripped, white space collapsed, only XML
/// characters (stripping tags decodes character references, and `&#1;` is U+0001).
fn clean_line(s: &str) -> String {
    let line = text::collapse_whitespace(&html::strip_tags(&text::xml_clean(s)));
    match text::xml_clean(&line) {
        std::borrow::Cow::Borrowed(_) => line,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// One line of metadata from a text source: white space collapsed, every other character
/// kept (`<draft>` and `&amp;` are words here, escaped on output).
fn text_line(s: &str) -> String {
    text::collapse_whitespace(&text::xml_clean(s))
}

/// An author keeps a trailing `<e-mail>` (not a tag); the rest is cleaned like any line.
fn clean_author(s: &str, clean_line: fn(&str) -> String) -> String {
    let s = text::trim(s);
    if let Some(open) = s.rfind('<') {
        let email = &s[open + 1..];
        if let Some(email) = email
            .strip_suffix('>')
            .filter(|e| e.contains('@') && !e.contains(['<', '"', ' ']))
        {
            return format!("{} <{}>", clean_line(&s[..open]), clean_line(email));
        }
    }
    clean_line(s)
}

/// Categories or tags one article may have: each is three feeds, and a file with 400 000
/// keywords must not make a million routes.
pub const MAX_TERMS: usize = 100;

/// Cleaned names (see [`clean_list`]), at most [`MAX_TERMS`]; a warning says how many more
/// there were.
fn capped(
    mut names: Vec<String>,
    what: &str,
    clean_line: fn(&str) -> String,
    warnings: &mut Vec<String>,
) -> Vec<String> {
    // Only the first ones can be kept: no need to clean the rest.
    let given = names.len();
    names.truncate(MAX_TERMS * 4);
    let mut clean = clean_list(names, clean_line);
    if clean.len() > MAX_TERMS || given > MAX_TERMS * 4 {
        clean.truncate(MAX_TERMS);
        warnings.push(format!(
            "only the first {MAX_TERMS} {what} are used ({given} given)"
        ));
    }
    clean
}

/// Cleans names and drops empty ones and repeats (case-insensitively), keeping order.
fn clean_list(items: Vec<String>, clean: impl Fn(&str) -> String) -> Vec<String> {
    let mut seen = HashSet::new();
    items
        .iter()
        .map(|s| clean(s))
        .filter(|s| !s.is_empty() && seen.insert(text::fold_name(s)))
        .collect()
}

/// Splits a keywords value on `,` `，` `;` `；` `、` `|`, or on white space when none is present.
pub(crate) fn split_keywords(value: &str) -> Vec<String> {
    let seps = [',', '，', ';', '；', '、', '|'];
    let parts: Vec<&str> = if value.contains(seps) {
        value.split(seps).collect()
    } else {
        value.split(char::is_whitespace).collect()
    };
    parts
        .into_iter()
        .map(text::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loader() -> Loader {
        let cfg = Config::from_toml(
            "[site]\nbase_url = \"https://news.example.com/\"\n",
            &Default::default(),
        )
        .unwrap();
        Loader::new(&cfg)
    }

    #[test]
    fn html_too_complex_for_a_parser_is_skipped() {
        let loader = loader();
        let n = 100_000;
        let nested = format!("{}x{}", "<div>".repeat(n), "</div>".repeat(n));
        let docs = [
            (
                format!("<html><head><title>T</title></head><body>{nested}</body></html>"),
                Format::Html,
            ),
            (format!("---\ntitle: T\n---\n{nested}\n"), Format::Markdown),
            // Markdown block quotes become nested HTML too.
            (
                format!("---\ntitle: T\n---\n{} x\n", ">".repeat(50_000)),
                Format::Markdown,
            ),
            // One element with 300 000 attributes.
            (
                format!(
                    "<title>T</title><body><p{}>x</p></body>",
                    " a=b".repeat(300_000)
                ),
                Format::Html,
            ),
        ];
        for (text, format) in docs {
            let e = loader
                .parse_bytes("a", text.as_bytes(), format)
                .unwrap_err();
            // 50 000 `>` make 50 000 nested blockquotes: also far larger than the file.
            assert!(
                matches!(
                    e.reason,
                    SkipReason::TooComplexHtml | SkipReason::HtmlTooLarge
                ),
                "{format:?}: {e:?}"
            );
            assert!(e.reason.is_error());
        }
        // Real nesting is far below the limit.
        let ok = "---\ntitle: T\n---\n> > > quoted\n\n- a\n  - b\n    - c\n";
        assert!(loader
            .parse_bytes("a", ok.as_bytes(), Format::Markdown)
            .is_ok());
    }

    #[test]
    fn long_titles_are_cut_on_a_character_with_a_warning() {
        let title = "新".repeat(MAX_TITLE_CHARS + 500);
        let d = loader()
            .parse_bytes(
                "t.txt",
                format!("{title}\n\nBody.\n").as_bytes(),
                Format::Text,
            )
            .unwrap();
        assert_eq!(d.title.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(d.title.ends_with('…'));
        assert!(d.warnings.iter().any(|w| w.contains("title cut")));
        let ok = loader()
            .parse_bytes("t.txt", b"Short\n\nBody.\n", Format::Text)
            .unwrap();
        assert_eq!(ok.title, "Short");
    }

    #[test]
    fn an_article_has_at_most_max_terms_tags_and_categories() {
        let loader = loader();
        let many = (0..400_000)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!("Your present location:Home> T\nT\nNumber of visits: Date:2015-12-24\n    p\nTypeInfo: x\nKeywords for the information: {many}\n");
        let d = loader
            .parse_bytes("a.txt", text.as_bytes(), Format::Text)
            .unwrap();
        assert_eq!(d.tags.len(), MAX_TERMS);
        assert_eq!(d.tags[0], "k0");
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("only the first 100 tags")),
            "{:?}",
            d.warnings
        );
        let few = "---\ntitle: T\ntags: [a, b, A]\ncategories: [c]\n---\nx\n";
        let d = loader
            .parse_bytes("a.md", few.as_bytes(), Format::Markdown)
            .unwrap();
        assert_eq!((d.tags.len(), d.categories.len()), (2, 1));
        assert!(d.warnings.is_empty());
    }

    #[test]
    fn decoded_character_references_never_bring_back_illegal_characters() {
        let loader = loader();
        let docs = [
            (
                "<html><head><title>&#1;Title <b>x</b></title></head><body><p>&#2;x &#x1f; y</p></body></html>",
                Format::Html,
            ),
            ("# T &#1; <b>t</b>\n\nBody &#2; text.\n", Format::Markdown),
            ("---\ntitle: \"&#1<b>x</b>\"\ntags: [\"&#3<i>k</i>\"]\n---\nb &#4; c\n", Format::Markdown),
        ];
        for (text, format) in docs {
            let d = loader.parse_bytes("a", text.as_bytes(), format).unwrap();
            for s in [&d.title, &d.summary, &d.content_html]
                .into_iter()
                .chain(&d.tags)
            {
                assert!(
                    s.chars().all(text::is_xml_char),
                    "{format:?} {text:?} gave {s:?}"
                );
            }
        }
    }

    #[test]
    fn keywords_split_on_any_separator() {
        assert_eq!(split_keywords("a, b，c；d、e"), ["a", "b", "c", "d", "e"]);
        assert_eq!(split_keywords("China US cyber"), ["China", "US", "cyber"]);
        assert!(split_keywords("  ").is_empty());
    }

    #[test]
    fn binary_empty_and_title_less_files_are_skipped() {
        let l = loader();
        let e = l
            .parse_bytes("x.txt", b"\x89PNG\r\n\x1a\n\0\0\0", Format::Text)
            .unwrap_err();
        assert_eq!(e.reason, SkipReason::Binary);
        let e = l.parse_bytes("x.txt", b"", Format::Text).unwrap_err();
        assert_eq!(e.reason, SkipReason::NoTitle);
        let e = l
            .parse_bytes("x.txt", b"\n \n\t\n", Format::Text)
            .unwrap_err();
        assert_eq!(e.reason, SkipReason::NoTitle);
        assert_eq!(e.to_string(), "x.txt: skipped: missing title");
    }

    #[test]
    fn control_characters_are_removed_and_reported() {
        let d = loader()
            .parse_bytes(
                "x.txt",
                "Ti\u{3}tle\u{c}\n\nBody \u{1d}text ]]> \u{fffe}".as_bytes(),
                Format::Text,
            )
            .unwrap();
        assert_eq!(d.title, "Title");
        assert!(
            d.content_html.contains("Body text ]]&gt;"),
            "{}",
            d.content_html
        );
        assert!(
            d.warnings
                .iter()
                .any(|w| w.contains("4 characters illegal")),
            "{:?}",
            d.warnings
        );
    }

    #[test]
    fn invalid_utf8_never_panics() {
        let d = loader()
            .parse_bytes("x.md", b"# T\xff\xfeitle\n\nbody \xc3", Format::Markdown)
            .unwrap();
        assert!(!d.title.is_empty());
    }
}
