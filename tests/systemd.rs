//! systemd integration with the real binary: sd_notify messages over a real unix datagram
//! socket, and a listening socket handed over as fd 3 (socket activation).

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

#[test]
fn notifies_ready_status_watchdog_reload_and_stopping_in_order() {
    let site = Site::new("content", "serve.toml");
    let sock_path = site.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let messages = Arc::new(Mutex::new(Vec::<String>::new()));
    let m2 = messages.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        loop {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    for line in String::from_utf8_lossy(&buf[..n]).lines() {
                        m2.lock().unwrap().push(line.to_string());
                    }
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return,
            }
        }
    });
    let mut child = site
        .command(&site.config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let has =
        |m: &Arc<Mutex<Vec<String>>>, s: &str| m.lock().unwrap().iter().any(|l| l.starts_with(s));
    wait_until("READY=1", &mut || has(&messages, "READY=1"));
    wait_until("WATCHDOG=1", &mut || has(&messages, "WATCHDOG=1"));
    let kill = |sig: &str| {
        assert!(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success())
    };
    kill("HUP");
    wait_until("RELOADING=1", &mut || has(&messages, "RELOADING=1"));
    wait_until("READY=1 after reload", &mut || {
        messages
            .lock()
            .unwrap()
            .iter()
            .filter(|l| *l == "READY=1")
            .count()
            >= 2
    });
    kill("TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    wait_until("STOPPING=1", &mut || has(&messages, "STOPPING=1"));

    let log = messages.lock().unwrap().clone();
    let first = |s: &str| {
        log.iter()
            .position(|l| l.starts_with(s))
            .unwrap_or_else(|| panic!("{s} missing: {log:?}"))
    };
    let ready = first("READY=1");
    let status_line = first("STATUS=");
    let watchdog = first("WATCHDOG=1");
    let reloading = first("RELOADING=1");
    let ready_again = log
        .iter()
        .enumerate()
        .skip(reloading)
        .find(|(_, l)| *l == "READY=1")
        .map(|(i, _)| i)
        .unwrap();
    let stopping = first("STOPPING=1");
    assert!(ready <= status_line, "{log:?}");
    assert!(status_line < watchdog && watchdog < reloading, "{log:?}");
    assert!(reloading < ready_again && ready_again < stopping, "{log:?}");
    assert!(
        log.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "RELOADING=1 needs MONOTONIC_USEC: {log:?}"
    );
    assert!(log[status_line].contains("articles"), "{log:?}");
}

#[test]
fn serves_on_a_socket_passed_as_fd_3() {
    let site = Site::new("content", "serve.toml");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // The shell makes the listener (its stdin) fd 3, sets LISTEN_PID to its own pid and execs
    // herald, which keeps that pid.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("export LISTEN_PID=$$; exec \"$0\" \"$@\" 3<&0 0</dev/null")
        .arg(BIN)
        .arg("--config")
        .arg(&site.config)
        .arg("--content")
        .arg(site.content())
        .arg("--state-dir")
        .arg(site.state())
        .arg("serve")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "http")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("served on the passed socket", &mut || {
        std::net::TcpStream::connect(addr).is_ok()
            && http_request(addr, "GET", "/healthz", &[]).status == 200
    });
    let feed = http_request(addr, "GET", "/feed.atom", &[]);
    assert_eq!(feed.status, 200);
    assert!(feed.text().contains("<feed"));
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
