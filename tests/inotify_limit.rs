//! With the inotify watch limit exhausted, herald falls back to polling and stays correct.
//! It lowers `fs.inotify.max_user_watches` for a moment, so it lives in its own test binary
//! (cargo runs test binaries one at a time) and only runs where that sysctl is writable.

mod common;

use common::*;

const SYSCTL: &str = "/proc/sys/fs/inotify/max_user_watches";

#[test]
fn exhausted_inotify_watches_fall_back_to_polling() {
    let Ok(old) = std::fs::read_to_string(SYSCTL) else {
        return;
    };
    // Probe writability with the current value.
    if std::fs::write(SYSCTL, old.trim()).is_err() {
        eprintln!("{SYSCTL} is not writable here; skipping");
        return;
    }
    let site = Site::new("content", "faults.toml");
    for d in 0..40 {
        std::fs::create_dir_all(site.content().join(format!("many/d{d}"))).unwrap();
    }
    std::fs::write(SYSCTL, "8").unwrap();
    // The watch is set up after the first index is published: keep the limit low until
    // herald has tried (and given up), then put it back whatever happened.
    let server = std::panic::catch_unwind(|| {
        let server = TestServer::start(&site, &[]);
        server.wait_until("fallback logged", || {
            server.log_contains("falling back to polling")
        });
        server
    });
    std::fs::write(SYSCTL, old.trim()).unwrap();
    let server = server.unwrap();
    std::fs::write(
        site.content().join("many/d7/late.md"),
        "# Late arrival\n\nBody.\n",
    )
    .unwrap();
    server.wait_until("polling sees the new file", || {
        server.get("/feed.atom").text().contains("Late arrival")
    });
}
