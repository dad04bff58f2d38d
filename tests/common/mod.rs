//! Helpers shared by the integration tests: a temp site (content, state, output) and the
//! real `herald` binary run against it, plus strict checks of every feed it writes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_herald");

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Copies a directory tree (regular files and folders only).
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// A throwaway site: `content/`, `state/` and `out/` in a temp dir.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Site {
    /// A site whose content is a copy of `tests/fixtures/<fixture>`.
    pub fn new(fixture: &str, config: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&fixtures().join(fixture), &dir.path().join("content"));
        Site {
            dir,
            config: fixtures().join("config").join(config),
        }
    }

    /// A site whose content is a copy of the repository's sample `content/` (articles in
    /// folders, an image), served with `serve.toml`.
    pub fn sample() -> Site {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("content"),
            &dir.path().join("content"),
        );
        Site {
            dir,
            config: fixtures().join("config/serve.toml"),
        }
    }

    pub fn content(&self) -> PathBuf {
        self.dir.path().join("content")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The herald command for this site (`config`, its content and state), in its dir, with
    /// no inherited systemd or logging environment.
    pub fn command(&self, config: &Path) -> Command {
        self.command_with_content(config, &self.content())
    }

    /// Like [`Site::command`] with `--content` as given (a relative path is taken from the
    /// site's dir, where herald runs).
    pub fn command_with_content(&self, config: &Path, content: &Path) -> Command {
        self.command_at(config, content, &self.state())
    }

    /// Like [`Site::command`] with the content and state dirs as given (a replica's copy
    /// of the state, say).
    pub fn command_at(&self, config: &Path, content: &Path, state: &Path) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(config)
            .arg("--content")
            .arg(content)
            .arg("--state-dir")
            .arg(state)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env_remove("LISTEN_FDS")
            .env_remove("LISTEN_PID");
        cmd
    }

    /// Runs herald with this site's config, content and state, plus `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(&self.config).args(args).output().unwrap()
    }

    /// `herald build --out <name>`, which must succeed; returns the output dir.
    pub fn build(&self, name: &str) -> PathBuf {
        self.build_with(&self.config, name)
    }

    /// [`Site::build`] with another config file.
    pub fn build_with(&self, config: &Path, name: &str) -> PathBuf {
        let out = self.out(name);
        let o = self
            .command(config)
            .args(["build", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "build failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }
}

/// A JSON Feed's items by id.
pub fn items_by_id(
    feed: &serde_json::Value,
) -> std::collections::HashMap<String, serde_json::Value> {
    feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["id"].as_str().unwrap().to_string(), i.clone()))
        .collect()
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses an XML feed strictly (roxmltree rejects characters XML 1.0 forbids and unknown
/// namespace prefixes) and independently (feed-rs), and returns feed-rs's model.
pub fn parse_xml_feed(path: &Path) -> feed_rs::model::Feed {
    let text = read(path);
    roxmltree::Document::parse(&text)
        .unwrap_or_else(|e| panic!("{} is not well-formed: {e}", path.display()));
    feed_rs::parser::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("{}: feed-rs: {e}", path.display()))
}

/// Parses a JSON Feed: valid JSON, valid JSON Feed 1.1, and readable by feed-rs.
pub fn parse_json_feed(path: &Path) -> feed_rs::model::Feed {
    let text = read(path);
    let model =
        json_feed_model::from_str(&text).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
    assert!(
        model.is_valid(&json_feed_model::Version::Version1_1),
        "{} is not valid JSON Feed 1.1",
        path.display()
    );
    feed_rs::parser::parse(text.as_bytes())
        .unwrap_or_else(|e| panic!("{}: feed-rs: {e}", path.display()))
}

/// Every file under `dir`, relative, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(
                    e.path()
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A running `herald serve`: reads the `listening addr=…` line to learn its port, prefixes
/// and keeps its log, and is stopped with SIGTERM (then killed) when dropped.
pub struct TestServer {
    pub child: std::process::Child,
    pub addr: std::net::SocketAddr,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TestServer {
    /// Starts `herald serve --listen 127.0.0.1:0` for `site` with extra global `args`.
    pub fn start(site: &Site, args: &[&str]) -> TestServer {
        Self::start_with_config(site, &site.config, args)
    }

    pub fn start_with_config(site: &Site, config: &Path, args: &[&str]) -> TestServer {
        Self::start_command(site.command(config), args)
    }

    /// Starts `herald serve --listen 127.0.0.1:0` from a prepared command.
    pub fn start_command(command: Command, args: &[&str]) -> TestServer {
        Self::start_command_on(command, "127.0.0.1:0", args)
    }

    /// Starts `herald serve --listen <listen>` from a prepared command.
    pub fn start_command_on(mut command: Command, listen: &str, args: &[&str]) -> TestServer {
        use std::io::BufRead;
        let mut child = command
            .args(args)
            .args(["serve", "--listen", listen])
            .env("RUST_LOG", "herald=debug")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[herald] {line}");
                if let Some(i) = line.find("listening addr=") {
                    let addr = line[i + "listening addr=".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                }
                log2.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("no `listening addr=` line")
            .parse()
            .unwrap();
        let server = TestServer { child, addr, log };
        server.wait_until("healthz 200", || server.get("/healthz").status == 200);
        server
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        http_request(self.addr, method, path, headers)
    }

    /// A value from `/metrics` (-1 when it is missing).
    pub fn metric(&self, name: &str) -> f64 {
        self.get("/metrics")
            .text()
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(-1.0)
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        self.request("GET", path, &[])
    }

    /// Polls `ok` until it holds or 15 s pass (never a fixed sleep).
    pub fn wait_until(&self, what: &str, mut ok: impl FnMut() -> bool) {
        wait_until(what, &mut ok)
    }

    pub fn signal(&self, sig: &str) {
        let s = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(s.success());
    }

    /// SIGTERM, then the exit status (within 15 s).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "herald did not exit after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if self.child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_until(what: &str, ok: &mut dyn FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A minimal HTTP/1.1 client (`Connection: close`), so tests depend on nothing but std.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    HttpResponse {
        status,
        headers,
        body,
    }
}
