//! Articles for unit tests of the layers above the model (index, render, store, serve).

use chrono::DateTime;

use super::{Article, Person, Term};

/// An article dated 2015-12-`day`, with two authors, a category and two tags, and a body
/// that needs escaping in every format.
pub fn article(path: &str, title: &str, day: u32) -> Article {
    let d = DateTime::parse_from_rfc3339(&format!("2015-12-{day:02}T08:00:00+00:00")).unwrap();
    Article {
        path: path.into(),
        id: format!("tag:example.org,2026:{path}").into(),
        state_id: format!("tag:example.org,2026:{path}").into(),
        slug: path.replace('.', "-").into(),
        title: title.into(),
        published: d,
        updated: d,
        authors: vec![
            Person::parse("Jane <jane@example.org>"),
            Person::parse("Li Wei"),
        ],
        summary: "Summary.".into(),
        content: crate::model::Content::Html("<p>Body &amp; <b>bold</b> ]]&gt; ]]> end</p>".into()),
        categories: vec![Term::shared("Industry trends")],
        tags: vec![Term::shared("新闻"), Term::shared("cyber")],
        link: None,
        image: None,
        enclosure: None,
        hash: blake3::hash(b"h"),
    }
}
