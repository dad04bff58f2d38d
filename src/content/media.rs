//! The media an article names: its featured image (front matter `image`, `og:image` of an
//! HTML source, else the body's first `<img>`) and its enclosure (front matter `enclosure`:
//! an audio or video file, a podcast episode). A local file is checked as media files are
//! served (inside the content dir, not empty, under the cap); its length is exact and an
//! image's pixel size is read from its header (`imagesize`), never by decoding it.

use std::os::unix::fs::FileExt;

use serde::{Deserialize, Serialize};

use super::{media_type, Loader};

/// A media file an article names, as feeds show it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MediaRef {
    /// Absolute URL.
    pub url: String,
    /// The media type, when known (local files, or a URL's file extension).
    pub mime: Option<String>,
    /// Bytes, for local files.
    pub length: Option<u64>,
    /// Pixels, for local raster images whose header says.
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl MediaRef {
    pub fn is_image(&self) -> bool {
        self.mime
            .as_deref()
            .is_some_and(|m| m.starts_with("image/"))
    }
}

/// What a named file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Want {
    Image,
    /// Audio or video.
    Enclosure,
}

/// Bytes read to find an image's size (JPEG headers can sit behind large EXIF blocks).
const HEADER_BYTES: usize = 256 << 10;

impl Loader {
    /// Resolves `value` (an absolute URL, or a path relative to the article `rel`'s folder,
    /// or to the content dir when it starts with `/`). A problem is a warning and no media.
    pub(super) fn resolve_media(
        &self,
        rel: &str,
        value: &str,
        want: Want,
        warnings: &mut Vec<String>,
    ) -> Option<MediaRef> {
        let field = match want {
            Want::Image => "image",
            Want::Enclosure => "enclosure",
        };
        let value = value.trim();
        if value.is_empty() || value.starts_with("data:") {
            return None;
        }
        let local = match url::Url::parse(value) {
            Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                warnings.push(format!("{field} {value:?} ignored: not an http(s) URL"));
                return None;
            }
            // A URL of this site names a file in the content dir.
            Ok(u) => match u.as_str().strip_prefix(self.base_url.as_str()) {
                Some(rest) => percent_encoding::percent_decode_str(rest)
                    .decode_utf8()
                    .ok()
                    .map(|s| s.into_owned()),
                None => return remote(u, want),
            },
            Err(_) => join_inside(rel, value),
        };
        let Some(local) = local else {
            warnings.push(format!(
                "{field} {value:?} ignored: outside the content dir"
            ));
            return None;
        };
        let Some(mime) = media_type(std::path::Path::new(&local)) else {
            warnings.push(format!(
                "{field} {value:?} ignored: not a media file herald serves"
            ));
            return None;
        };
        if !fits(want, mime) {
            warnings.push(format!(
                "{field} {value:?} ignored: {mime} is not an {}",
                match want {
                    Want::Image => "image",
                    Want::Enclosure => "audio or video file",
                }
            ));
            return None;
        }
        let (file, meta) = match self.open_media(&local) {
            Ok(f) => f,
            Err(s) => {
                warnings.push(format!("{field} {value:?} ignored: {}", s.message));
                return None;
            }
        };
        let (mut width, mut height) = (None, None);
        if want == Want::Image && mime != "image/svg+xml" {
            let mut head = vec![0; HEADER_BYTES.min(meta.len() as usize)];
            let n = file.read_at(&mut head, 0).unwrap_or(0);
            match imagesize::blob_size(&head[..n]) {
                Ok(size) => {
                    width = u32::try_from(size.width).ok();
                    height = u32::try_from(size.height).ok();
                }
                Err(_) => warnings.push(format!(
                    "{field} {value:?}: its header gives no size (corrupt or truncated?)"
                )),
            }
        }
        Some(MediaRef {
            url: self.base_url.join(&local).ok()?.to_string(),
            mime: Some(mime.to_string()),
            length: Some(meta.len()),
            width,
            height,
        })
    }
}

fn fits(want: Want, mime: &str) -> bool {
    match want {
        Want::Image => mime.starts_with("image/"),
        Want::Enclosure => mime.starts_with("audio/") || mime.starts_with("video/"),
    }
}

/// A file elsewhere: its type from its extension, if that is one herald knows.
fn remote(u: url::Url, want: Want) -> Option<MediaRef> {
    let mime = media_type(std::path::Path::new(u.path())).filter(|m| fits(want, m));
    if want == Want::Enclosure && mime.is_none() {
        return None;
    }
    Some(MediaRef {
        url: u.to_string(),
        mime: mime.map(str::to_string),
        length: None,
        width: None,
        height: None,
    })
}

/// `value` relative to the folder of `rel` (or to the content dir with a leading `/`),
/// `..` and `.` resolved; None when it climbs out of the content dir.
fn join_inside(rel: &str, value: &str) -> Option<String> {
    let value = value.split(['?', '#']).next().unwrap_or("");
    let value = percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .ok()?;
    let mut parts: Vec<&str> = if value.starts_with('/') {
        Vec::new()
    } else {
        rel.split('/').collect::<Vec<_>>()[..rel.split('/').count() - 1].to_vec()
    };
    for seg in value.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The `src` of the first `<img>` of sanitised HTML (ammonia writes attributes quoted).
pub(super) fn first_img_src(html: &str) -> Option<String> {
    // memmem: SIMD, where `str::find` scanned every body at a tenth of the speed.
    let at = memchr::memmem::find(html.as_bytes(), b"<img ")?;
    let tag = &html[at..at + html[at..].find('>')?];
    let src = tag.find(" src=\"")? + 6;
    let end = tag[src..].find('"')?;
    let raw = &tag[src..src + end];
    Some(raw.replace("&amp;", "&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside_the_content_dir() {
        assert_eq!(
            join_inside("notes/a.md", "images/x.png").as_deref(),
            Some("notes/images/x.png")
        );
        assert_eq!(
            join_inside("notes/a.md", "../x.png").as_deref(),
            Some("x.png")
        );
        assert_eq!(
            join_inside("notes/a.md", "/img/x.png").as_deref(),
            Some("img/x.png")
        );
        assert_eq!(
            join_inside("a.md", "x%20y.png?v=2").as_deref(),
            Some("x y.png")
        );
        assert_eq!(join_inside("notes/a.md", "../../etc/passwd"), None);
        assert_eq!(join_inside("a.md", "../x.png"), None);
    }

    #[test]
    fn the_first_image_of_sanitised_html() {
        let html =
            r#"<p>x</p><img alt="a" src="https://ex.com/a.png?x=1&amp;y=2"><img src="b.png">"#;
        assert_eq!(
            first_img_src(html).as_deref(),
            Some("https://ex.com/a.png?x=1&y=2")
        );
        assert_eq!(first_img_src("<p>none</p>"), None);
    }
}
