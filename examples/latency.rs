//! Measures how long a new article takes to be served: writes `--count` files (one at a
//! time) into a running herald's content dir and, for each, polls `/feed.atom` until the
//! entry is there. Meanwhile a second thread requests `/feed.atom` continuously and records
//! every request's latency. Prints p50/p99 of both.
//!
//! cargo run --release --example latency -- --addr 127.0.0.1:18084 --content DIR --count 100

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One GET over a fresh connection; returns (status, body).
fn get(addr: SocketAddr, path: &str, etag: Option<&str>) -> (u16, Vec<u8>, Option<String>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let inm = etag
        .map(|e| format!("If-None-Match: {e}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{inm}\r\n"
    )
    .expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let tag = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("etag: ")
                .or_else(|| l.strip_prefix("ETag: "))
        })
        .map(str::to_string);
    (status, raw[(split + 4).min(raw.len())..].to_vec(), tag)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let mut addr: SocketAddr = "127.0.0.1:18084".parse().expect("literal");
    let mut content = std::path::PathBuf::from("content");
    let mut count = 100;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--addr" => addr = v.parse().expect("--addr host:port"),
            "--content" => content = v.into(),
            "--count" => count = v.parse().expect("--count N"),
            _ => panic!("unknown argument {a}"),
        }
    }
    let dir = content.join("latency-probe");
    std::fs::create_dir_all(&dir).expect("create probe dir");
    // Let the new folder's own event settle.
    std::thread::sleep(Duration::from_millis(500));

    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let background = std::thread::spawn(move || {
        let mut lat = Vec::new();
        while !stop2.load(Ordering::Relaxed) {
            let t = Instant::now();
            get(addr, "/feed.atom", None);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        lat
    });

    let mut visible = Vec::new();
    for i in 0..count {
        let title = format!("Latency probe {i} {}", std::process::id());
        let (_, _, mut tag) = get(addr, "/feed.atom", None);
        let t = Instant::now();
        std::fs::write(
            dir.join(format!("probe-{i}.txt")),
            format!("{title}\n\nBody of probe {i}.\n"),
        )
        .expect("write probe");
        loop {
            let (status, body, new_tag) = get(addr, "/feed.atom", tag.as_deref());
            if status == 200 && String::from_utf8_lossy(&body).contains(&title) {
                break;
            }
            if new_tag.is_some() {
                tag = new_tag;
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "probe {i} never appeared"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        visible.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = background.join().expect("background thread");
    let _ = std::fs::remove_dir_all(&dir);
    let max = lat.iter().cloned().fold(0.0, f64::max);
    println!(
        "new file -> served (ms): p50 {:.1}  p99 {:.1}  max {:.1}   ({count} files)",
        percentile(&mut visible, 0.5),
        percentile(&mut visible, 0.99),
        visible.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "concurrent /feed.atom requests (ms): p50 {:.2}  p99 {:.2}  max {:.2}   ({} requests)",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        max,
        lat.len()
    );
}
