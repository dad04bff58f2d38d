//! Plain text: the first non-empty line is the title, the rest are paragraphs.

use super::{Body, Parsed};
use crate::text;

pub(super) fn parse(input: &str) -> Parsed {
    let lines: Vec<&str> = input.lines().collect();
    let Some(first) = lines.iter().position(|l| !text::trim(l).is_empty()) else {
        return Parsed::default();
    };
    Parsed {
        title: Some(text::trim(lines[first]).to_string()),
        body: Body::Paragraphs(paragraphs(&lines[first + 1..])),
        ..Parsed::default()
    }
}

/// Groups lines into paragraphs: a blank line ends one, and so does an indented line (scraped
/// pages indent each paragraph, often without blank lines between). Lines inside a paragraph
/// are joined with a space.
pub(super) fn paragraphs(lines: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in lines {
        let trimmed = text::trim(line);
        let indented = line.starts_with([' ', '\t', '\u{3000}', '\u{A0}']);
        if trimmed.is_empty() || (indented && !current.is_empty()) {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            if trimmed.is_empty() {
                continue;
            }
        }
        if !current.is_empty() {
            current.push(' ');
        }
        // Most lines are ASCII with single spaces: copy them as they are.
        let b = trimmed.as_bytes();
        // One vectorised pass for non-ASCII and odd white space, memchr for double spaces.
        let odd = |c: u8| !c.is_ascii() || (c.is_ascii_whitespace() && c != b' ');
        let simple = !b
            .chunks(64)
            .any(|chunk| chunk.iter().fold(false, |found, &c| found | odd(c)))
            && memchr::memmem::find(b, b"  ").is_none();
        if simple {
            current.push_str(trimmed);
        } else {
            current.push_str(&text::collapse_whitespace(trimmed));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_then_paragraphs() {
        let p = parse("\n\n  My title \nline one\nline two\n\nsecond\n   third\n");
        assert_eq!(p.title.as_deref(), Some("My title"));
        match p.body {
            Body::Paragraphs(ps) => assert_eq!(ps, ["line one line two", "second", "third"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_text_has_no_title() {
        assert!(parse(" \n\t\n").title.is_none());
    }
}
