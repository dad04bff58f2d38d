//! The scraped news-page layout (see `content/` samples and the README):
//!
//! ```text
//! Your present location:Home…> Title        (breadcrumb; title fallback after the last '>')
//! Title
//! Number of visits: Date:2015-12-24        (visits / date / source labels)
//!   Paragraph…                             (indented paragraphs)
//! TypeInfo: Category
//! Keywords for the information: a, b       (tags, possibly empty)
//! ```
//!
//! Labels come from the config (other portals use other words). Metadata lines never leak
//! into the body or the summary.

use super::plain::paragraphs;
use super::{split_keywords, Body, Parsed};
use crate::config::Labels;
use crate::text;

/// How many non-empty lines from the top may hold the breadcrumb, title and date lines.
const HEADER_LINES: usize = 8;

/// True when the text carries the scraped layout's labels.
pub(super) fn is_scraped(input: &str, labels: &Labels) -> bool {
    input
        .lines()
        .filter(|l| !text::trim(l).is_empty())
        .enumerate()
        .any(|(i, line)| {
            let l = text::trim(line);
            starts_with_label(l, &labels.category).is_some()
                || starts_with_label(l, &labels.keywords).is_some()
                || (i < HEADER_LINES
                    && (starts_with_label(l, &labels.breadcrumb).is_some()
                        || starts_with_label(l, &labels.visits).is_some()
                        || find_label(l, &labels.date).is_some()))
        })
}

pub(super) fn parse(input: &str, labels: &Labels) -> Parsed {
    let lines: Vec<&str> = input.lines().collect();
    let mut used = vec![false; lines.len()];
    let mut crumb_title = None;
    let mut date = None;
    let mut meta_line = None;
    let mut category = None;
    let mut keywords = None;
    let mut body_end = lines.len();
    let mut non_empty_seen = 0;

    for (i, line) in lines.iter().enumerate() {
        let t = text::trim(line);
        if t.is_empty() {
            continue;
        }
        non_empty_seen += 1;
        let in_header = non_empty_seen <= HEADER_LINES && i < body_end;
        if let Some(v) = starts_with_label(t, &labels.category) {
            category = Some(v.to_string());
            used[i] = true;
            body_end = body_end.min(i);
        } else if let Some(v) = starts_with_label(t, &labels.keywords) {
            keywords = Some(v.to_string());
            used[i] = true;
            body_end = body_end.min(i);
        } else if !in_header {
            continue;
        } else if let Some(v) = starts_with_label(t, &labels.breadcrumb) {
            crumb_title = breadcrumb_title(v);
            used[i] = true;
        } else if meta_line.is_none()
            && (starts_with_label(t, &labels.visits).is_some()
                || starts_with_label(t, &labels.source).is_some()
                || find_label(t, &labels.date).is_some())
        {
            date = find_label(t, &labels.date).map(|v| cut_at_next_label(v, labels).to_string());
            meta_line = Some(i);
            used[i] = true;
        }
    }

    // The title line: the first free line above the date line (or the first free line).
    let title_limit = meta_line.unwrap_or(body_end);
    let title_line =
        (0..title_limit.min(lines.len())).find(|&i| !used[i] && !text::trim(lines[i]).is_empty());
    let title = title_line
        .map(|i| text::trim(lines[i]).to_string())
        .or(crumb_title);
    let body_start = [title_line, meta_line]
        .into_iter()
        .flatten()
        .max()
        .map_or(0, |i| i + 1);
    let body_lines: Vec<&str> = (body_start..body_end.max(body_start))
        .filter(|&i| !used[i])
        .map(|i| lines[i])
        .collect();

    Parsed {
        title,
        date,
        body: Body::Paragraphs(paragraphs(&body_lines)),
        categories: category
            .into_iter()
            .filter(|c| !text::trim(c).is_empty())
            .collect(),
        tags: keywords.map(|k| split_keywords(&k)).unwrap_or_default(),
        ..Parsed::default()
    }
}

/// The breadcrumb's last part: "HomeNewsIndustry trends >\u{a0}Title" → "Title".
fn breadcrumb_title(value: &str) -> Option<String> {
    let last = value.rsplit(['>', '»', '›', '＞']).next().unwrap_or(value);
    Some(text::trim(last).to_string()).filter(|t| !t.is_empty())
}

/// If `line` starts with one of the labels followed by `:` or `：`, the text after it.
fn starts_with_label<'a>(line: &'a str, labels: &[String]) -> Option<&'a str> {
    labels.iter().find_map(|label| {
        let head = line.get(..label.len())?;
        if !head.eq_ignore_ascii_case(label) {
            return None;
        }
        after_colon(&line[label.len()..])
    })
}

/// Finds `label:` anywhere in the line (at a word start) and returns the text after it.
fn find_label<'a>(line: &'a str, labels: &[String]) -> Option<&'a str> {
    let lower = line.to_ascii_lowercase();
    labels.iter().find_map(|label| {
        let needle = label.to_ascii_lowercase();
        let mut from = 0;
        while let Some(pos) = lower[from..].find(&needle) {
            let start = from + pos;
            let at_word_start = line[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric() || !label.starts_with(|c: char| c.is_ascii()));
            if at_word_start {
                if let Some(v) = after_colon(&line[start + label.len()..]) {
                    return Some(v);
                }
            }
            from = start + needle.len();
        }
        None
    })
}

fn after_colon(rest: &str) -> Option<&str> {
    let rest = rest.trim_start_matches([' ', '\t', '\u{A0}', '\u{3000}']);
    let rest = rest.strip_prefix(':').or_else(|| rest.strip_prefix('：'))?;
    Some(text::trim(rest))
}

/// "2015-12-24 Source: Xinhua" → "2015-12-24": a date value ends where another label starts.
fn cut_at_next_label<'a>(value: &'a str, labels: &Labels) -> &'a str {
    let mut end = value.len();
    for group in [&labels.source, &labels.visits, &labels.category] {
        for label in group.iter() {
            if let Some(pos) = value.to_ascii_lowercase().find(&label.to_ascii_lowercase()) {
                end = end.min(pos);
            }
        }
    }
    text::trim(&value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../content/000_2da8904ca48dd10b.txt");

    fn paras(p: &Parsed) -> &[String] {
        match &p.body {
            Body::Paragraphs(ps) => ps,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seed_article() {
        let labels = Labels::default();
        assert!(is_scraped(SEED, &labels));
        let p = parse(SEED, &labels);
        assert_eq!(
            p.title.as_deref(),
            Some("China, US have potential to develop new type cyber relations")
        );
        assert_eq!(p.date.as_deref(), Some("2015-12-24"));
        assert_eq!(p.categories, ["Industry trends"]);
        assert!(p.tags.is_empty());
        let ps = paras(&p);
        assert_eq!(ps.len(), 11);
        assert!(ps[0].starts_with("Beijing and Washington"));
        assert!(ps.last().unwrap().starts_with("\"As long as"));
        for p in ps {
            for leak in [
                "Your present location",
                "Number of visits",
                "TypeInfo",
                "Keywords for",
            ] {
                assert!(!p.contains(leak), "{leak} leaked into {p}");
            }
        }
    }

    #[test]
    fn title_falls_back_to_breadcrumb() {
        let text = "Your present location:HomeNews >\u{a0}Fallback title\n\nNumber of visits: Date:2016/01/02\n\n  Body.\n\nTypeInfo: News\n\nKeywords for the information:a，b、c\n";
        let p = parse(text, &Labels::default());
        assert_eq!(p.title.as_deref(), Some("Fallback title"));
        assert_eq!(p.date.as_deref(), Some("2016/01/02"));
        assert_eq!(p.tags, ["a", "b", "c"]);
        assert_eq!(paras(&p), ["Body."]);
    }

    #[test]
    fn chinese_labels_and_unindented_lines() {
        let text = "当前位置：首页 > 新闻 > 标题\n中美关系的新进展\n发布时间：2015年12月24日 10:30 来源：新华社\n  第一段。\n  第二段。\n栏目：国际新闻\n关键词：中国 美国\n";
        let p = parse(text, &Labels::default());
        assert_eq!(p.title.as_deref(), Some("中美关系的新进展"));
        assert_eq!(p.date.as_deref(), Some("2015年12月24日 10:30"));
        assert_eq!(paras(&p), ["第一段。", "第二段。"]);
        assert_eq!(p.categories, ["国际新闻"]);
        assert_eq!(p.tags, ["中国", "美国"]);
    }

    #[test]
    fn missing_date_and_footer() {
        let text = "Just a title\nNumber of visits: 12\n  Para one\n";
        let p = parse(text, &Labels::default());
        assert_eq!(p.title.as_deref(), Some("Just a title"));
        assert_eq!(p.date, None);
        assert_eq!(paras(&p), ["Para one"]);
    }

    #[test]
    fn date_label_needs_a_word_start() {
        assert_eq!(find_label("Update: x", &["Date".to_string()]), None);
        assert_eq!(
            find_label("Number of visits: Date:2015-12-24", &["Date".to_string()]),
            Some("2015-12-24")
        );
    }
}
