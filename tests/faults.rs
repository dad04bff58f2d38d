//! Fault injection against the real binary: crashes mid-write, an unusable state store, a
//! content dir that vanishes, odd file system changes, floods of files, polling.

mod common;

use std::collections::{HashMap, HashSet};

use common::*;

/// Entry titles → ids in the JSON feed (the fault config holds every article in it).
fn entries(server: &TestServer) -> HashMap<String, String> {
    let v: serde_json::Value = serde_json::from_slice(&server.get("/feed.json").body).unwrap();
    let items = v["items"].as_array().unwrap();
    let map: HashMap<String, String> = items
        .iter()
        .map(|i| {
            (
                i["title"].as_str().unwrap().to_string(),
                i["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ids: HashSet<&String> = map.values().collect();
    assert_eq!(ids.len(), items.len(), "duplicate ids in the feed");
    map
}

fn metric(server: &TestServer, name: &str) -> f64 {
    server.metric(name)
}

#[test]
fn kill_9_during_a_burst_loses_nothing_and_changes_no_id() {
    let site = Site::new("content", "faults.toml");
    let mut server = TestServer::start(&site, &[]);
    let before = entries(&server);
    let c = site.content().join("burst");
    std::fs::create_dir_all(&c).unwrap();
    for i in 0..300 {
        std::fs::write(
            c.join(format!("b{i:03}.txt")),
            format!("Burst article {i}\n\nBody {i}.\n"),
        )
        .unwrap();
        if i == 150 {
            server.child.kill().unwrap(); // SIGKILL, mid-burst
            server.child.wait().unwrap();
        }
    }
    drop(server);
    let server = TestServer::start(&site, &[]);
    server.wait_until("every burst article indexed", || {
        entries(&server).len() == before.len() + 300
    });
    let after = entries(&server);
    for (title, id) in &before {
        assert_eq!(
            after.get(title),
            Some(id),
            "id of {title} changed across the crash"
        );
    }
    // And a clean restart changes nothing either.
    assert!(server.stop().success());
    let server = TestServer::start(&site, &[]);
    server.wait_until("same entries after restart", || entries(&server) == after);
}

/// A first start writes its records to the state store only after it starts serving. If it
/// dies before they are written, the next start is a first start again: it must give every
/// article the same id and page, titles shared by several files included.
#[test]
fn a_first_start_that_dies_before_saving_gives_the_same_ids_again() {
    let site = Site::new("content", "faults.toml");
    for i in 0..5 {
        std::fs::write(
            site.content().join(format!("same-{i}.txt")),
            format!("One Title For All\n\nBody {i}.\n"),
        )
        .unwrap();
    }
    let pages = |server: &TestServer| -> HashMap<String, String> {
        let v: serde_json::Value = serde_json::from_slice(&server.get("/feed.json").body).unwrap();
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().into(),
                    i["url"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let server = TestServer::start(&site, &[]);
    let first = pages(&server);
    assert!(server.stop().success());
    // As if the state had never been written: a second first start.
    std::fs::remove_dir_all(site.state()).unwrap();
    let server = TestServer::start(&site, &[]);
    assert_eq!(
        pages(&server),
        first,
        "ids or pages differ between two first starts"
    );
    let urls: HashSet<&String> = first.values().collect();
    assert_eq!(urls.len(), first.len(), "two articles share a page");
    // And a restart reads them back from the state store.
    assert!(server.stop().success());
    let server = TestServer::start(&site, &[]);
    assert_eq!(pages(&server), first, "a restart changed ids or pages");
}

#[test]
fn unusable_state_dir_keeps_serving_from_memory_and_says_so() {
    let site = Site::new("content", "faults.toml");
    // A regular file where the state dir should be: the store cannot be opened.
    std::fs::write(site.state(), "not a directory").unwrap();
    let server = TestServer::start(&site, &[]);
    assert!(
        server.log_contains("STATE STORE UNAVAILABLE"),
        "no loud log line"
    );
    assert!(metric(&server, "herald_state_errors_total") >= 1.0);
    assert_eq!(server.get("/feed.atom").status, 200);
    std::fs::write(
        site.content().join("new.txt"),
        "Added without a state store\n\nBody.\n",
    )
    .unwrap();
    server.wait_until("new article served", || {
        server
            .get("/feed.atom")
            .text()
            .contains("Added without a state store")
    });
}

#[test]
fn content_dir_deleted_and_recreated_is_picked_up_again() {
    let site = Site::new("content", "faults.toml");
    let server = TestServer::start(&site, &[]);
    std::fs::remove_dir_all(site.content()).unwrap();
    server.wait_until("still serving", || server.get("/healthz").status == 200);
    std::fs::create_dir_all(site.content()).unwrap();
    std::fs::write(
        site.content().join("back.md"),
        "# Back again\n\nThe dir came back.\n",
    )
    .unwrap();
    server.wait_until("new content dir watched", || {
        entries(&server).contains_key("Back again")
    });
    std::fs::write(
        site.content().join("more.md"),
        "# And more\n\nStill watched.\n",
    )
    .unwrap();
    server.wait_until("further changes seen", || {
        entries(&server).contains_key("And more")
    });
    server.wait_until("old articles gone", || {
        !entries(&server).contains_key("A plain note")
    });
}

#[test]
fn a_file_replaced_by_a_directory_of_the_same_name() {
    let site = Site::new("content", "faults.toml");
    let server = TestServer::start(&site, &[]);
    let note = site.content().join("plain/note.txt");
    std::fs::remove_file(&note).unwrap();
    std::fs::create_dir_all(&note).unwrap();
    std::fs::write(note.join("inside.txt"), "Inside the new folder\n\nBody.\n").unwrap();
    server.wait_until("folder content served, old file gone", || {
        let e = entries(&server);
        e.contains_key("Inside the new folder") && !e.contains_key("A plain note")
    });
}

#[test]
fn ten_thousand_files_dropped_at_once() {
    let site = Site::new("content", "flood.toml");
    let server = TestServer::start(&site, &[]);
    let base = metric(&server, "herald_articles_indexed");
    // Made outside, then moved in with one rename: the watcher sees only the folder.
    let staging = site.dir.path().join("staging");
    for d in 0..10 {
        let dir = staging.join(format!("d{d}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..1000 {
            std::fs::write(
                dir.join(format!("f{i}.txt")),
                format!("Flood {d}-{i}\n\nBody.\n"),
            )
            .unwrap();
        }
    }
    std::fs::rename(&staging, site.content().join("flood")).unwrap();
    server.wait_until("10 000 articles indexed", || {
        metric(&server, "herald_articles_indexed") == base + 10_000.0
    });
    assert_eq!(server.get("/feed.atom").status, 200);
}

#[cfg(unix)]
#[test]
fn unreadable_files_are_skipped_and_counted() {
    use std::os::unix::fs::PermissionsExt;
    let site = Site::new("content", "faults.toml");
    let p = site.content().join("secret.txt");
    std::fs::write(&p, "Secret\n\nBody.\n").unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
    let server = TestServer::start(&site, &[]);
    if std::fs::read(&p).is_err() {
        // Not root: the permission bites.
        assert!(!entries(&server).contains_key("Secret"));
        assert!(server
            .get("/metrics")
            .text()
            .contains("herald_articles_skipped_total{reason=\"unreadable\"} 1"));
    }
    assert_eq!(server.get("/feed.atom").status, 200);
}

#[test]
fn polling_mode_sees_adds_edits_and_deletes() {
    let site = Site::new("content", "poll.toml");
    let server = TestServer::start(&site, &[]);
    // Watching (here: polling) starts once the first index is published.
    server.wait_until("polling announced", || server.log_contains("polling"));
    let p = site.content().join("polled.md");
    std::fs::write(&p, "# Polled\n\nFirst.\n").unwrap();
    server.wait_until("add seen by polling", || {
        entries(&server).contains_key("Polled")
    });
    std::fs::write(&p, "# Polled\n\nSecond, longer body.\n").unwrap();
    server.wait_until("edit seen by polling", || {
        server
            .get("/feed.json")
            .text()
            .contains("Second, longer body")
    });
    std::fs::remove_file(&p).unwrap();
    server.wait_until("delete seen by polling", || {
        !entries(&server).contains_key("Polled")
    });
}
