//! Text hygiene shared by every parser and renderer: turning bytes into text (BOMs, legacy
//! encodings, line endings), removing characters XML 1.0 forbids, slugs and summaries.
//!
//! Nothing here does I/O; every function is a pure transformation of its input.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// True for characters allowed by the XML 1.0 `Char` production. Rust strings cannot hold
/// lone surrogates, so those never reach here.
pub fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{A}' | '\u{D}'
        | '\u{20}'..='\u{D7FF}'
        | '\u{E000}'..='\u{FFFD}'
        | '\u{10000}'..='\u{10FFFF}')
}

/// Fast check on bytes: the only characters XML forbids that UTF-8 can hold are C0 controls
/// other than tab/LF/CR (single bytes) and U+FFFE/U+FFFF (EF BF BE / EF BF BF).
/// Every article's text passes here: the controls are looked for a chunk at a time (which
/// the compiler vectorises) and U+FFFE/U+FFFF from each 0xEF byte memchr finds.
fn is_all_xml(s: &str) -> bool {
    let b = s.as_bytes();
    let control = |c: u8| c < 0x20 && c != b'\t' && c != b'\n' && c != b'\r';
    if b.chunks(64)
        .any(|chunk| chunk.iter().fold(false, |found, &c| found | control(c)))
    {
        return false;
    }
    !memchr::memchr_iter(0xEF, b)
        .any(|i| b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)))
}

/// Removes every character XML 1.0 forbids (U+0000–U+0008, U+000B, U+000C, U+000E–U+001F,
/// U+FFFE, U+FFFF). Borrows when there is nothing to remove.
pub fn xml_clean(s: &str) -> Cow<'_, str> {
    if is_all_xml(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.chars().filter(|&c| is_xml_char(c)).collect())
    }
}

/// Like [`xml_clean`] on an owned string, also reporting how many characters were removed.
pub fn xml_clean_counted(s: String) -> (String, usize) {
    if is_all_xml(&s) {
        return (s, 0);
    }
    let removed = s.chars().filter(|&c| !is_xml_char(c)).count();
    if removed == 0 {
        (s, 0)
    } else {
        (s.chars().filter(|&c| is_xml_char(c)).collect(), removed)
    }
}

/// Text decoded from an article file.
#[derive(Debug)]
pub struct Decoded {
    pub text: String,
    /// The encoding that was used, e.g. "UTF-8", "GBK", "UTF-16LE".
    pub encoding: &'static str,
    /// True when some byte sequences were invalid and replaced by U+FFFD.
    pub had_errors: bool,
}

/// True when the bytes look like a binary file rather than text: a NUL byte in the first
/// 8 KiB (UTF-16 with a BOM is text and is checked before this).
pub fn looks_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(8192)]).is_some()
}

/// Decodes article bytes (taking ownership avoids a copy): a BOM wins, then valid UTF-8, then (for HTML) a `<meta charset>`
/// in the first 1024 bytes, then statistical detection (chardetng) for legacy encodings
/// such as GB18030/GBK, Big5, Shift_JIS and Windows-1252. The BOM never reaches the text, and
/// line endings are normalised to `\n`.
pub fn decode_owned(bytes: Vec<u8>, is_html: bool) -> Decoded {
    // The common case: UTF-8 without BOM or CR: take the buffer as it is, no copy.
    if Encoding::for_bom(&bytes).is_none() && !bytes.contains(&b'\r') {
        match String::from_utf8(bytes) {
            Ok(mut text) => {
                if text.contains('\u{FEFF}') {
                    text = text.replace('\u{FEFF}', "");
                }
                return Decoded {
                    text,
                    encoding: "UTF-8",
                    had_errors: false,
                };
            }
            Err(e) => return decode(e.as_bytes(), is_html),
        }
    }
    decode(&bytes, is_html)
}

/// Decodes article bytes: see [`decode_owned`] for the rules.
pub fn decode(bytes: &[u8], is_html: bool) -> Decoded {
    let encoding = if let Some((enc, _)) = Encoding::for_bom(bytes) {
        enc
    } else if std::str::from_utf8(bytes).is_ok() {
        encoding_rs::UTF_8
    } else if let Some(enc) = is_html.then(|| html_meta_charset(bytes)).flatten() {
        enc
    } else {
        let mut detector = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
        detector.feed(bytes, true);
        detector.guess(None, chardetng::Utf8Detection::Allow)
    };
    // `decode` strips a BOM matching the encoding and replaces malformed sequences.
    let (text, used, had_errors) = encoding.decode(bytes);
    let mut text = normalize_newlines(&text).into_owned();
    // A BOM in the middle (concatenated files) or a stray one must never reach a title.
    if text.contains('\u{FEFF}') {
        text = text.replace('\u{FEFF}', "");
    }
    Decoded {
        text,
        encoding: used.name(),
        had_errors,
    }
}

/// Finds `<meta charset=…>` or `<meta http-equiv content="…; charset=…">` in the first 1024
/// bytes, as the HTML prescan does. UTF-16 labels are ignored there (the spec says so).
fn html_meta_charset(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(|b| b.to_ascii_lowercase()).collect();
    let mut from = 0;
    while let Some(pos) = find(&lower[from..], b"charset") {
        let mut i = from + pos + b"charset".len();
        while i < lower.len() && matches!(lower[i], b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        if i < lower.len() && lower[i] == b'=' {
            i += 1;
            while i < lower.len() && matches!(lower[i], b' ' | b'"' | b'\'') {
                i += 1;
            }
            let start = i;
            while i < lower.len()
                && (lower[i].is_ascii_alphanumeric() || b"-_:.".contains(&lower[i]))
            {
                i += 1;
            }
            if let Some(enc) = Encoding::for_label(&lower[start..i]) {
                if enc != encoding_rs::UTF_16LE && enc != encoding_rs::UTF_16BE {
                    return Some(enc);
                }
            }
        }
        from += pos + 1;
    }
    None
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// CRLF and lone CR become LF.
pub fn normalize_newlines(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"))
}

/// Trims Unicode white space at both ends, including the no-break space (U+00A0) and the
/// ideographic space (U+3000) that scraped pages are full of.
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{200B}')
}

/// Collapses every run of white space into one ASCII space and trims the ends.
pub fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Like [`collapse_whitespace`], but stops once the result has more than `max_chars`
/// characters, so a long body is never copied whole.
fn collapse_prefix(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(max_chars.min(s.len()) * 2);
    let mut chars = 0;
    for word in s
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        out.push_str(word);
        chars += word.chars().count();
        if chars > max_chars {
            break;
        }
    }
    out
}

/// Escapes text for HTML and XML text nodes and double- or single-quoted attributes.
pub fn escape_html(s: &str) -> Cow<'_, str> {
    /// The bytes that are escaped.
    static SPECIAL: [bool; 256] = {
        let mut t = [false; 256];
        t[b'&' as usize] = true;
        t[b'<' as usize] = true;
        t[b'>' as usize] = true;
        t[b'"' as usize] = true;
        t[b'\'' as usize] = true;
        t
    };
    let bytes = s.as_bytes();
    // Every article body passes here: runs without a special byte are skipped 32 bytes at a
    // time (a fold the compiler vectorises), not byte by byte.
    let first = bytes
        .chunks(32)
        .take_while(|c| {
            !c.iter()
                .fold(false, |found, &b| found | SPECIAL[usize::from(b)])
        })
        .map(<[u8]>::len)
        .sum::<usize>();
    if first == bytes.len() {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + s.len() / 16 + 16);
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        if !SPECIAL[usize::from(b)] {
            continue;
        }
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        };
        // Specials are ASCII, so `i` is always a char boundary.
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
    Cow::Owned(out)
}

/// A URL path segment for a name, stable and unique per name.
///
/// Names that are plain lowercase ASCII words once case and separators are folded
/// ("Industry trends" → `industry-trends`) get exactly that. Any other name (Chinese, accents,
/// punctuation, very long) gets a transliteration followed by a short hash of the name, so a
/// slug never changes while its name stays: "新闻" → `xin-wen-3c8f0a1b`. Never empty. Two
/// names can share one (a 32-bit hash can be made to collide): `model::Term::shared` gives
/// the second a longer one.
pub fn slugify(name: &str) -> String {
    slug_with_hash(name, 0)
}

/// [`slugify`], or with `hex` > 0 the transliteration followed by that many hex digits of
/// the name's hash (at most 64: blake3's 256 bits) whatever the name: the longer slugs that
/// tell apart names whose short slugs collide (see `model::Term::shared`).
pub fn slug_with_hash(name: &str, hex: usize) -> String {
    let folded = fold_name(name);
    let ascii = ascii_words(&deunicode::deunicode(&folded), 60);
    if hex == 0 && !ascii.is_empty() && ascii == folded {
        return ascii;
    }
    let hash = blake3::hash(folded.as_bytes()).to_hex();
    let hash = &hash[..if hex == 0 { 8 } else { hex.min(64) }];
    if ascii.is_empty() {
        format!("n-{hash}")
    } else {
        format!("{ascii}-{hash}")
    }
}

/// The key under which names are grouped: lowercase, separators folded to single `-`.
/// "Industry trends", "industry  Trends" and "Industry-Trends" are one category.
pub fn fold_name(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for part in lower
        .split(|c: char| c.is_whitespace() || c == '-' || c == '_')
        .filter(|p| !p.is_empty())
    {
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(part);
    }
    out
}

/// Lowercase ASCII alphanumerics joined by single dashes, at most `max` bytes, cut at a dash.
pub fn ascii_words(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len());
    for part in s
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
    {
        if out.len() + part.len() + 1 > max && !out.is_empty() {
            break;
        }
        if !out.is_empty() {
            out.push('-');
        }
        out.push_str(&part.to_ascii_lowercase());
    }
    out.truncate(max);
    out
}

/// True for characters of scripts written without spaces between words (CJK, kana, Hangul
/// syllables are spaced but long words still cut fine per character).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
}

/// A plain-text summary of at most `max_chars` characters (plus an ellipsis when cut),
/// cut at a word boundary, or at a character boundary in CJK text.
pub fn summarize(text: &str, max_chars: usize) -> String {
    // Only the start matters: collapse white space in a prefix just long enough to decide.
    let mut text = collapse_prefix(text, max_chars + 1);
    if text.chars().count() <= max_chars {
        text.shrink_to_fit();
        return text;
    }
    let cut: usize = text
        .char_indices()
        .nth(max_chars)
        .map(|(i, _)| i)
        .unwrap_or(text.len());
    let head = &text[..cut];
    let next = text[cut..].chars().next();
    let last = head.chars().next_back();
    let at_boundary = next.is_some_and(|c| c == ' ' || is_cjk(c)) || last.is_some_and(is_cjk);
    let mut end = cut;
    if !at_boundary {
        // Back up to the last space, unless that would throw away most of the text (one
        // enormous word): then cut inside the word.
        if let Some(space) = head.rfind(' ') {
            if space >= cut / 2 {
                end = space;
            }
        }
    }
    let head = head[..end].trim_end_matches(|c: char| {
        c.is_whitespace() || matches!(c, ',' | ';' | ':' | '，' | '、')
    });
    // Sized exactly: summaries live as long as their article.
    let mut out = String::with_capacity(head.len() + '…'.len_utf8());
    out.push_str(head);
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_clean_removes_only_illegal_characters() {
        assert_eq!(
            xml_clean("a\u{3}b\u{1D}c\u{FFFE}d\u{FFFF}\te\u{C}\n"),
            "abcd\te\n"
        );
        assert!(matches!(xml_clean("plain ✓ 中文 😀"), Cow::Borrowed(_)));
        assert_eq!(xml_clean_counted("x\u{0}y\u{B}".into()), ("xy".into(), 2));
    }

    #[test]
    fn decode_strips_bom_and_crlf() {
        let d = decode(b"\xEF\xBB\xBFTitle\r\nbody\rend", false);
        assert_eq!(d.text, "Title\nbody\nend");
        assert_eq!(d.encoding, "UTF-8");
        assert!(!d.had_errors);
    }

    #[test]
    fn decode_utf16_with_bom() {
        let mut bytes = vec![0xFF, 0xFE];
        for u in "标题\r\n".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        let d = decode(&bytes, false);
        assert_eq!(d.text, "标题\n");
    }

    #[test]
    fn decode_detects_gb18030() {
        let (bytes, _, _) =
            encoding_rs::GB18030.encode("中美两国有潜力发展新型网络关系。日期：2015年12月24日");
        let d = decode(&bytes, false);
        assert_eq!(
            d.text,
            "中美两国有潜力发展新型网络关系。日期：2015年12月24日"
        );
        assert_eq!(d.encoding, "GBK");
    }

    #[test]
    fn decode_detects_big5_and_windows_1252() {
        let (bytes, _, _) = encoding_rs::BIG5.encode("中華民國的新聞報導，今天天氣很好。");
        assert_eq!(
            decode(&bytes, false).text,
            "中華民國的新聞報導，今天天氣很好。"
        );
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode("Café crème — naïve résumé");
        assert_eq!(decode(&bytes, false).text, "Café crème — naïve résumé");
    }

    #[test]
    fn decode_html_meta_charset() {
        let mut bytes = b"<html><head><meta charset=\"gb2312\"><title>".to_vec();
        let (t, _, _) = encoding_rs::GBK.encode("新闻");
        bytes.extend_from_slice(&t);
        bytes.extend_from_slice(b"</title>");
        assert!(decode(&bytes, true).text.contains("<title>新闻</title>"));
    }

    #[test]
    fn binary_is_detected() {
        assert!(looks_binary(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!looks_binary("text 中文".as_bytes()));
    }

    #[test]
    fn trim_handles_nbsp() {
        assert_eq!(trim("\u{A0} China\u{3000} "), "China");
    }

    #[test]
    fn slugs_are_ascii_when_possible_and_unique_otherwise() {
        assert_eq!(slugify("Industry trends"), "industry-trends");
        assert_eq!(slugify("  Industry   Trends "), "industry-trends");
        let zh = slugify("新闻");
        assert!(zh.starts_with("xin-wen-"), "{zh}");
        assert_ne!(slugify("新闻"), slugify("心闻"));
        assert_ne!(slugify("C++"), slugify("C"));
        assert_eq!(slugify("C"), "c");
        assert!(slugify("!!!").starts_with("n-"));
        assert!(slugify("").starts_with("n-"));
        assert!(slugify(&"word ".repeat(100)).len() <= 70);
        let s = slugify("Café");
        assert!(s.starts_with("cafe-") && s.is_ascii());
    }

    #[test]
    fn summaries_cut_on_words_and_cjk_characters() {
        assert_eq!(summarize("short text", 50), "short text");
        assert_eq!(summarize("one two three four", 9), "one two…");
        assert_eq!(
            summarize("中美两国有潜力发展新型网络关系", 5),
            "中美两国有…"
        );
        assert_eq!(summarize("Supercalifragilistic", 5), "Super…");
        assert_eq!(summarize("a  b\n\nc", 10), "a b c");
    }

    #[test]
    fn escape_html_escapes_markup() {
        assert_eq!(
            escape_html(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    proptest::proptest! {
        #[test]
        fn escape_html_replaces_exactly_the_five_characters(s in r#"([a-z &<>"';]|é|新){0,300}"#) {
            let expected: String = s
                .chars()
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => "&quot;".to_string(),
                    '\'' => "&#39;".to_string(),
                    c => c.to_string(),
                })
                .collect();
            proptest::prop_assert_eq!(escape_html(&s), expected);
        }

        #[test]
        fn the_fast_xml_check_agrees_with_the_character_rule(
            s in r#"([a-z \t\n\r\x00-\x1f]|\u{FFFE}|\u{FFFF}|\u{FFFD}|\u{FF0C}|\u{EFFF}|é|新){0,200}"#
        ) {
            proptest::prop_assert_eq!(is_all_xml(&s), s.chars().all(is_xml_char));
        }
    }
}
