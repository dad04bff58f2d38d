//! WebSub delivery latency: N subscribers on loopback subscribe to a running herald's
//! built-in hub, then each of ROUNDS new files is written to the content dir and the time
//! from its close to each subscriber's signed delivery (with the file's title in it) is
//! measured. Prints p50/p99/max over every delivery. Used by `bench/websub.sh`.
//!
//!   websub_subscribers --addr 127.0.0.1:18086 --topic http://127.0.0.1:18086/feed.atom \
//!       --content DIR [--subscribers 100] [--rounds 20]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Args {
    addr: SocketAddr,
    topic: String,
    content: PathBuf,
    subscribers: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:18086".parse().unwrap(),
        topic: String::new(),
        content: PathBuf::new(),
        subscribers: 100,
        rounds: 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().expect("a value after each flag");
        match k.as_str() {
            "--addr" => a.addr = v.parse().expect("--addr host:port"),
            "--topic" => a.topic = v,
            "--content" => a.content = PathBuf::from(v),
            "--subscribers" => a.subscribers = v.parse().expect("a number"),
            "--rounds" => a.rounds = v.parse().expect("a number"),
            _ => panic!("unknown flag {k}"),
        }
    }
    a
}

/// Answers one request: echoes `hub.challenge` on GET; on POST reports the body's arrival.
fn serve(stream: TcpStream, who: usize, tx: &mpsc::Sender<(usize, Instant, String)>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut len = 0;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; len];
    let _ = reader.read_exact(&mut body);
    let reply = if line.starts_with("GET") {
        let query = line
            .split_whitespace()
            .nth(1)
            .and_then(|t| t.split_once('?'))
            .map(|(_, q)| q.to_string())
            .unwrap_or_default();
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "hub.challenge")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    } else {
        let _ = tx.send((
            who,
            Instant::now(),
            String::from_utf8_lossy(&body).into_owned(),
        ));
        String::new()
    };
    let mut s = stream;
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

fn post(addr: SocketAddr, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /websub HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn metric(addr: SocketAddr, name: &str) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(-1.0)
}

fn main() {
    let a = args();
    let (tx, rx) = mpsc::channel();
    for who in 0..a.subscribers {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let callback = format!("http://{}/cb/{who}", listener.local_addr().unwrap());
        let tx = tx.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().map_while(Result::ok) {
                let tx = tx.clone();
                std::thread::spawn(move || serve(s, who, &tx));
            }
        });
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("hub.mode", "subscribe")
            .append_pair("hub.topic", &a.topic)
            .append_pair("hub.callback", &callback)
            .append_pair("hub.secret", "bench");
        let answer = post(a.addr, &form.finish());
        assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
        // The hub's rate limit per address (a burst of 20, then 5 a second).
        if who >= 15 {
            std::thread::sleep(Duration::from_millis(210));
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(a.addr, "herald_websub_subscriptions") < a.subscribers as f64 {
        assert!(
            Instant::now() < deadline,
            "subscriptions not active after 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    let dir = a.content.join("websub-probe");
    std::fs::create_dir_all(&dir).unwrap();
    for round in 0..a.rounds {
        let title = format!("WebSub probe {round} {}", std::process::id());
        let path = dir.join(format!("probe-{round}.txt"));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(format!("{title}\n\nA probe.\n").as_bytes())
            .unwrap();
        drop(f);
        let closed = Instant::now();
        let mut got = vec![false; a.subscribers];
        let deadline = closed + Duration::from_secs(30);
        while got.iter().any(|g| !g) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok((who, at, body)) = rx.recv_timeout(left) else {
                panic!("round {round}: not every subscriber got the delivery in 30 s");
            };
            if body.contains(&title) && !got[who] {
                got[who] = true;
                latencies.push(at.duration_since(closed));
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{} subscribers × {} files: delivery after close p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        a.subscribers,
        a.rounds,
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        at(1.0).as_secs_f64() * 1e3
    );
}
