//! Publishing to a real S3-compatible server: a single-node Garage on loopback, set up by
//! `tests/s3/garage.sh` (`cargo install garage --locked`). `build --out s3://…` must put
//! in the bucket exactly what `build --out DIR` writes (bytes, types, cache headers,
//! ETags), replicas must agree, and `serve` with `[publish] to` must follow every add, edit
//! and delete within 2 s, and catch up when the store comes back and after a restart.
//! Skips with a printed reason where Garage is not installed, except in CI, where that is
//! a failure: `.ci/run` installs it.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::{Attribute, ObjectStore, ObjectStoreExt};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A single-node Garage with the bucket `herald`.
struct Garage {
    dir: tempfile::TempDir,
    ports: [u16; 3],
    key_id: String,
    secret: String,
}

/// One object as the bucket holds it.
#[derive(Debug, PartialEq)]
struct Stored {
    bytes: Vec<u8>,
    content_type: String,
    cache_control: String,
    etag: String,
    modified: chrono::DateTime<chrono::Utc>,
}

impl Garage {
    fn start() -> Option<Garage> {
        let found = Command::new("sh")
            .args(["-c", "command -v garage"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "garage is not installed; CI must install it (.ci/run)"
            );
            eprintln!("skipped: garage is not installed (cargo install garage --locked)");
            return None;
        }
        let mut g = Garage {
            dir: tempfile::tempdir().unwrap(),
            ports: [free_port(), free_port(), free_port()],
            key_id: String::new(),
            secret: String::new(),
        };
        let out = g.script();
        for line in out.lines() {
            if let Some(v) = line.strip_prefix("KEY_ID=") {
                g.key_id = v.to_string();
            } else if let Some(v) = line.strip_prefix("SECRET=") {
                g.secret = v.to_string();
            }
        }
        assert!(!g.key_id.is_empty() && !g.secret.is_empty(), "{out}");
        Some(g)
    }

    /// Runs the setup script: starts the server (and sets it up the first time).
    fn script(&self) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3/garage.sh");
        let o = Command::new("bash")
            .arg(script)
            .arg(self.dir.path())
            .args(self.ports.map(|p| p.to_string()))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "garage.sh: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports[0])
    }

    /// Stops the server (its data stays).
    fn stop(&self) {
        let pid = std::fs::read_to_string(self.dir.path().join("pid")).unwrap();
        let _ = Command::new("kill").arg(pid.trim()).status();
        wait_until("garage stopped", &mut || {
            std::net::TcpStream::connect(("127.0.0.1", self.ports[0])).is_err()
        });
    }

    fn restart(&self) {
        self.script();
    }

    /// The AWS environment herald is given (the endpoint from `AWS_ENDPOINT_URL`).
    fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", "garage")
            .env_remove("AWS_PROFILE");
    }

    fn store(&self) -> Arc<dyn ObjectStore> {
        // herald's reqwest has no TLS crypto provider of its own (plain HTTP here anyway).
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(self.endpoint())
                .with_allow_http(true)
                .with_bucket_name("herald")
                .with_region("garage")
                .with_access_key_id(&self.key_id)
                .with_secret_access_key(&self.secret)
                .build()
                .unwrap(),
        )
    }

    /// Every object under `prefix`, by path after it.
    fn objects(&self, prefix: &str) -> BTreeMap<String, Stored> {
        let store = self.store();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let p = object_store::path::Path::from(prefix.trim_end_matches('/'));
            let metas: Vec<_> = store.list(Some(&p)).try_collect().await.unwrap();
            let mut out = BTreeMap::new();
            for m in metas {
                let got = store.get(&m.location).await.unwrap();
                let attr = |a: &Attribute| {
                    got.attributes
                        .get(a)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                let (content_type, cache_control) = (
                    attr(&Attribute::ContentType),
                    attr(&Attribute::CacheControl),
                );
                let bytes = got.bytes().await.unwrap().to_vec();
                let key = m.location.to_string();
                out.insert(
                    key.strip_prefix(prefix).unwrap().to_string(),
                    Stored {
                        bytes,
                        content_type,
                        cache_control,
                        etag: m.e_tag.unwrap_or_default().trim_matches('"').to_string(),
                        modified: m.last_modified,
                    },
                );
            }
            out
        })
    }

    /// The ETag of each object under `prefix` (listing only).
    fn etags(&self, prefix: &str) -> BTreeMap<String, String> {
        let store = self.store();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let p = object_store::path::Path::from(prefix.trim_end_matches('/'));
            let metas: Vec<_> = store.list(Some(&p)).try_collect().await.unwrap();
            metas
                .into_iter()
                .map(|m| {
                    let key = m.location.to_string();
                    (
                        key.strip_prefix(prefix).unwrap().to_string(),
                        m.e_tag.unwrap_or_default(),
                    )
                })
                .collect()
        })
    }

    fn get(&self, key: &str) -> Option<String> {
        let store = self.store();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let got = store.get(&object_store::path::Path::from(key)).await.ok()?;
            Some(String::from_utf8(got.bytes().await.ok()?.to_vec()).unwrap())
        })
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// The serve fixture's config plus `[publish]` to `s3://herald/<prefix>`.
fn publish_config(site: &Site, prefix: &str) -> PathBuf {
    let base = std::fs::read_to_string(&site.config).unwrap();
    let file = site
        .dir
        .path()
        .join(format!("publish-{}.toml", prefix.replace('/', "-")));
    std::fs::write(
        &file,
        format!("{base}\n[publish]\nto = \"s3://herald/{prefix}\"\npath_style = true\nconcurrency = 8\n"),
    )
    .unwrap();
    file
}

fn md5_hex(bytes: &[u8]) -> String {
    herald::publish::md5_hex(bytes)
}

#[test]
fn build_to_a_bucket_holds_what_build_writes_to_a_folder_and_replicas_agree() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let site = Site::sample();
    let folder = site.build("out");
    let config = publish_config(&site, "unused");
    let build = |state: &Path, to: &str| {
        let mut cmd = site.command_at(&config, &site.content(), state);
        garage.env(&mut cmd);
        let o = cmd.args(["build", "--out", to]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    build(&site.state(), "s3://herald/site");
    let objects = garage.objects("site/");
    let files = files(&folder);
    assert_eq!(
        objects.keys().cloned().collect::<Vec<_>>(),
        files,
        "the bucket holds exactly the folder's files"
    );
    for (path, o) in &objects {
        let bytes = std::fs::read(folder.join(path)).unwrap();
        assert!(o.bytes == bytes, "{path}: other bytes");
        assert_eq!(o.etag, md5_hex(&bytes), "{path}");
        let expected_type = match path.rsplit('.').next().unwrap() {
            "atom" => "application/atom+xml; charset=utf-8",
            "rss" => "application/rss+xml; charset=utf-8",
            "json" => "application/feed+json; charset=utf-8",
            "html" => "text/html; charset=utf-8",
            "xml" => "application/xml; charset=utf-8",
            "opml" => "text/x-opml; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "txt" => "text/plain; charset=utf-8",
            "png" => "image/png",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(o.content_type, expected_type, "{path}");
        assert_eq!(o.cache_control, "public, max-age=120", "{path}");
    }
    assert!(
        objects.keys().any(|p| p.ends_with(".png")),
        "media published"
    );
    // Built again: nothing to upload.
    let again = build(&site.state(), "s3://herald/site");
    assert!(again.contains("uploaded=0"), "{again}");
    // A replica: the same content and a copy of the state dir give the same objects.
    let copy = site.dir.path().join("state-copy");
    copy_dir(&site.state(), &copy);
    build(&copy, "s3://herald/replica");
    assert_eq!(garage.etags("site/"), garage.etags("replica/"));
}

#[test]
fn serve_mirrors_every_change_and_catches_up_after_the_store_and_itself_restart() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let site = Site::sample();
    let config = publish_config(&site, "live");
    let start = || {
        let mut cmd = site.command(&config);
        garage.env(&mut cmd);
        TestServer::start_command(cmd, &[])
    };
    // What `build` writes to a folder: the mirror must hold the same paths.
    let folder = files(&site.build("out"));
    let server = start();
    let in_step = |server: &TestServer| {
        server.metric("herald_publish_objects_pending") == 0.0
            && server.metric("herald_publish_lag_seconds") == 0.0
            && server.metric("herald_publish_objects_uploaded_total") > 0.0
    };
    server.wait_until("the first publish mirrored", || in_step(&server));
    let first = garage.objects("live/");
    assert_eq!(
        first.keys().cloned().collect::<Vec<_>>(),
        folder,
        "the mirror holds every file build writes"
    );
    assert_eq!(
        first["feed.atom"].bytes,
        server.get("/feed.atom").body,
        "the bucket holds what is served"
    );
    // Within 2 s of each change the bucket follows: add, edit, delete.
    let follows = |what: &str, ok: &mut dyn FnMut() -> bool| {
        let t = Instant::now();
        wait_until(what, ok);
        let took = t.elapsed();
        eprintln!("{what}: {took:?}");
        assert!(took < Duration::from_secs(2), "{what} took {took:?}");
    };
    let file = site.content().join("mirrored.md");
    std::fs::write(
        &file,
        "---\ntitle: Mirrored first\ndate: 2026-11-30T10:00:00Z\ncategories: [Mirror]\n---\nBody.\n",
    )
    .unwrap();
    follows("a new article in the bucket", &mut || {
        garage.get("live/articles/mirrored-first.html").is_some()
            && garage
                .get("live/feed.atom")
                .is_some_and(|f| f.contains("Mirrored first"))
    });
    // What links came after what it links to.
    let now = garage.objects("live/");
    let page = &now["articles/mirrored-first.html"];
    for list in ["feed.atom", "categories/mirror/index.html", "index.html"] {
        let Some(o) = now.get(list) else {
            panic!(
                "{list} is not in the bucket: {:?}",
                now.keys().collect::<Vec<_>>()
            )
        };
        assert!(
            page.modified <= o.modified,
            "{list} went up before the page"
        );
    }
    std::fs::write(
        &file,
        "---\ntitle: Mirrored edited\ndate: 2026-11-30T10:00:00Z\ncategories: [Mirror]\n---\nBody.\n",
    )
    .unwrap();
    follows("an edit in the bucket", &mut || {
        garage
            .get("live/feed.atom")
            .is_some_and(|f| f.contains("Mirrored edited"))
    });
    let slug_page = "live/articles/mirrored-first.html";
    assert!(garage.get(slug_page).unwrap().contains("Mirrored edited"));
    std::fs::remove_file(&file).unwrap();
    follows("a deletion in the bucket", &mut || {
        garage.get(slug_page).is_none()
            && garage.get("live/categories/mirror/index.html").is_none()
            && garage
                .get("live/feed.atom")
                .is_some_and(|f| !f.contains("Mirrored edited"))
    });
    // The store goes away: serving goes on, the lag and the failures show.
    garage.stop();
    std::fs::write(
        &file,
        "---\ntitle: Written while the store was down\ndate: 2026-11-30T11:00:00Z\n---\nBody.\n",
    )
    .unwrap();
    server.wait_until("the store's absence noticed", || {
        server.metric("herald_publish_failures_total") > 0.0
            && server.metric("herald_publish_objects_pending") > 0.0
    });
    assert_eq!(server.get("/healthz").status, 200, "serving goes on");
    assert!(server
        .get("/feed.atom")
        .text()
        .contains("Written while the store was down"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(server.metric("herald_publish_lag_seconds") >= 1.0);
    // It comes back: herald catches up.
    garage.restart();
    wait_until("caught up after the store returned", &mut || {
        garage
            .get("live/feed.atom")
            .is_some_and(|f| f.contains("Written while the store was down"))
    });
    server.wait_until("in step again", || in_step(&server));
    // herald stops; a file changes; the next start uploads what changed, not everything.
    assert!(server.stop().success());
    let objects_before = garage.objects("live/").len();
    std::fs::remove_file(&file).unwrap();
    std::fs::write(
        site.content().join("while-down.md"),
        "---\ntitle: Added while herald was down\ndate: 2026-11-30T12:00:00Z\n---\nBody.\n",
    )
    .unwrap();
    let server = start();
    server.wait_until("caught up after a restart", || {
        in_step(&server)
            && garage
                .get("live/feed.atom")
                .is_some_and(|f| f.contains("Added while herald was down"))
    });
    let uploaded = server.metric("herald_publish_objects_uploaded_total");
    assert!(
        uploaded < objects_before as f64 / 2.0,
        "{uploaded} of {objects_before} objects uploaded again"
    );
    assert!(garage
        .get("live/articles/written-while-the-store-was-down.html")
        .is_none());
}

/// Two `serve` instances given the same content and a copy of one state dir, each
/// mirroring to its own prefix, publish byte-identical objects with identical ETags: a
/// standby can take over from a primary.
#[test]
fn two_serving_replicas_publish_identical_objects() {
    let Some(garage) = Garage::start() else {
        return;
    };
    let site = Site::sample();
    // The primary's state, made by a first run, copied for the standby.
    site.build("warm-up");
    let standby_state = site.dir.path().join("standby-state");
    copy_dir(&site.state(), &standby_state);
    let serve = |prefix: &str, state: &Path| {
        let config = publish_config(&site, prefix);
        let mut cmd = site.command_at(&config, &site.content(), state);
        garage.env(&mut cmd);
        TestServer::start_command(cmd, &[])
    };
    let primary = serve("primary", &site.state());
    let standby = serve("standby", &standby_state);
    for s in [&primary, &standby] {
        s.wait_until("mirrored", || {
            s.metric("herald_publish_objects_pending") == 0.0
                && s.metric("herald_publish_objects_uploaded_total") > 0.0
        });
    }
    let (a, b) = (garage.etags("primary/"), garage.etags("standby/"));
    assert!(a.len() > 50, "{}", a.len());
    // The news sitemap lists the last two days as of when it was made: the same here
    // unless a day boundary fell between the two starts.
    let differing: Vec<&String> = a
        .iter()
        .filter(|(k, v)| b.get(*k) != Some(*v) && k.as_str() != "news-sitemap.xml")
        .map(|(k, _)| k)
        .collect();
    assert!(differing.is_empty(), "objects differ: {differing:?}");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
}
