//! `herald check`: one `path: problem` line per problem, a summary, and the exit code.

mod common;

use common::*;

#[test]
fn clean_content_exits_zero_and_lists_skipped_files() {
    let site = Site::new("content", "test.toml");
    let o = site.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    for line in [
        "markdown/draft.md: skipped: draft",
        "markdown/4913: skipped: editor or download temp file",
        "markdown/yaml.md~: skipped: editor or download temp file",
        "markdown/.#yaml.md: skipped: hidden file or folder",
        "markdown/download.md.part: skipped: editor or download temp file",
        "plain/control-chars.txt: 5 characters illegal in XML removed",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "missing line {line:?} in:\n{out}"
        );
    }
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("15 articles ok, 0 unusable"),
        "{out}"
    );
    assert!(!site.state().exists(), "check must not write the state");
}

#[test]
fn broken_articles_are_reported_and_exit_one() {
    let site = Site::new("content-invalid", "small-limit.toml");
    let o = site.run(&["check"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for prefix in [
        "empty.txt: skipped: missing title",
        "binary.txt: skipped: binary file",
        "no-title.md: skipped: missing title",
        "bad-front-matter.md: invalid YAML front matter",
        "big.txt: skipped: 5011 bytes is over max_article_bytes (2048)",
        "bad-date.txt: unparseable date \"sometime last week\"",
        "future.md: implausible date 2099-01-01",
        "epoch.md: implausible date 1970-01-01",
        "dup-b.md: duplicate id \"urn:example:same\"",
        "copy-id.md: duplicate id \"tag:example.com,2026:fine.md\" (already used by fine.md, as its generated id)",
        "control.txt: 1 characters illegal in XML removed",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(prefix)),
            "missing line {prefix:?} in:\n{out}"
        );
    }
    assert!(
        !out.lines().any(|l| l.starts_with("fine.md:")),
        "fine.md has no problem:\n{out}"
    );
    assert!(out.lines().last().unwrap().contains("5 unusable"), "{out}");
}

#[cfg(unix)]
#[test]
fn unreadable_file_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new("content-invalid", "small-limit.toml");
    let p = site.content().join("fine.md");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root reads anything: only assert when the permission really bites.
    if std::fs::read(&p).is_err() {
        let out = stdout(&site.run(&["check"]));
        assert!(
            out.contains("fine.md: unreadable: permission denied"),
            "{out}"
        );
    }
}

#[test]
fn config_errors_name_file_line_and_key() {
    let site = Site::new("content", "unknown-key.toml");
    let o = site.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown-key.toml") && err.contains("line 3") && err.contains("titel"),
        "{err}"
    );
}

#[test]
fn build_and_check_survive_an_empty_content_dir() {
    let site = Site::new("content", "test.toml");
    std::fs::remove_dir_all(site.content()).unwrap();
    std::fs::create_dir_all(site.content()).unwrap();
    assert_eq!(site.run(&["check"]).status.code(), Some(0));
    let out = site.build("out");
    parse_xml_feed(&out.join("feed.atom"));
    parse_xml_feed(&out.join("feed.rss"));
    parse_json_feed(&out.join("feed.json"));
}
