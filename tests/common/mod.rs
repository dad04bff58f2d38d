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

    pub fn content(&self) -> PathBuf {
        self.dir.path().join("content")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs herald with this site's config, content and state, plus `args`.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--content")
            .arg(self.content())
            .arg("--state-dir")
            .arg(self.state())
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("STATE_DIRECTORY");
        cmd.output().unwrap()
    }

    /// `herald build --out <name>`, which must succeed; returns the output dir.
    pub fn build(&self, name: &str) -> PathBuf {
        let out = self.out(name);
        let o = self.run(&["build", "--out", out.to_str().unwrap()]);
        assert!(
            o.status.success(),
            "build failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }
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
