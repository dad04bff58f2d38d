//! The state store fills up while herald runs: it keeps serving new articles from memory,
//! logs loudly, counts the failures, and saves the records once there is room again. Needs a
//! tmpfs it can mount (root); elsewhere it says so and returns. Its own test binary, since
//! it mounts a file system.

mod common;

use std::process::Command;

use common::*;

fn mount_tmpfs(dir: &std::path::Path, size: &str) -> bool {
    std::fs::create_dir_all(dir).unwrap();
    Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success())
}

struct Unmount(std::path::PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_state_dir_keeps_serving_from_memory_and_recovers() {
    let site = Site::new("content", "faults.toml");
    if !mount_tmpfs(&site.state(), "4m") {
        eprintln!("cannot mount a tmpfs here; skipping");
        return;
    }
    let _unmount = Unmount(site.state());
    let server = TestServer::start(&site, &[]);
    // Fill the state dir's file system to the last byte.
    let filler = site.state().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut f, &block).is_ok() {}
    let _ = std::io::Write::write_all(&mut f, &[0u8; 512]);
    drop(f);
    for i in 0..20 {
        let body = "x".repeat(2000);
        std::fs::write(
            site.content().join(format!("full-{i}.txt")),
            format!("Written while full {i}\n\n{body}\n"),
        )
        .unwrap();
    }
    server.wait_until("new articles served from memory", || {
        server
            .get("/feed.atom")
            .text()
            .matches("Written while full")
            .count()
            == 20
    });
    server.wait_until("loud log line", || {
        server.log_contains("STATE STORE WRITE FAILED")
    });
    assert!(server
        .get("/metrics")
        .text()
        .lines()
        .any(|l| l.starts_with("herald_state_errors_total") && !l.ends_with(" 0")));
    // Room again: the next change writes the records kept in memory.
    std::fs::remove_file(&filler).unwrap();
    std::fs::write(
        site.content().join("after.txt"),
        "After the disk was freed\n\nBody.\n",
    )
    .unwrap();
    server.wait_until("records saved", || {
        server.log_contains("state store writable again")
    });
    server.wait_until("later article served", || {
        server
            .get("/feed.atom")
            .text()
            .contains("After the disk was freed")
    });
    let ids_before = server.get("/feed.json").text();
    assert!(server.stop().success());
    // A restart keeps the ids given while the store was full.
    let server = TestServer::start(&site, &[]);
    let after: serde_json::Value = serde_json::from_str(&server.get("/feed.json").text()).unwrap();
    let before: serde_json::Value = serde_json::from_str(&ids_before).unwrap();
    let ids = |v: &serde_json::Value| {
        let mut ids: Vec<String> = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&before), ids(&after), "ids changed across the restart");
}
