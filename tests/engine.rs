//! The engine in process, against an in-memory store (the state dir is unusable, so the
//! store falls back to memory): batches of change hints (add, edit, rename, delete, a
//! folder replaced by a file) and what the published snapshot then holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use herald::config::{Config, Overrides};
use herald::serve::engine::Engine;
use herald::serve::events::Change;
use herald::serve::metrics::Metrics;
use herald::serve::snapshot::Snapshot;
use tokio::sync::watch;

struct Harness {
    _dir: tempfile::TempDir,
    content: PathBuf,
    engine: Engine,
    site: watch::Receiver<Option<Arc<Snapshot>>>,
}

impl Harness {
    /// With the store in memory (the state dir is unusable).
    fn new() -> Harness {
        Harness::with(false)
    }

    /// `store`: with a real state store in a state dir; else in memory (a file where the
    /// state dir should be: the store cannot open, herald uses memory).
    fn with(store: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let content = dir.path().join("content");
        std::fs::create_dir_all(&content).unwrap();
        let state = dir.path().join("state");
        if store {
            std::fs::create_dir_all(&state).unwrap();
        } else {
            std::fs::write(&state, "not a folder").unwrap();
        }
        let cfg = Config::from_toml(
            "[site]\nbase_url = \"https://news.example.com/\"\ntag_authority = \"example.com,2026\"\n",
            &Overrides {
                content: Some(content.clone()),
                state_dir: Some(state),
                ..Overrides::default()
            },
        )
        .unwrap();
        let (tx, site) = watch::channel(None);
        let mut engine = Engine::new(Arc::new(cfg), Arc::new(Metrics::default()), tx);
        engine.start();
        Harness {
            _dir: dir,
            content,
            engine,
            site,
        }
    }

    fn write(&self, rel: &str, title: &str, body: &str) -> PathBuf {
        let p = self.content.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{title}\n\n{body}\n")).unwrap();
        p
    }

    fn apply(&mut self, changes: Vec<Change>) {
        self.engine.apply_changes(changes);
    }

    /// (id, title) of every entry of the main JSON feed, sorted by title.
    fn entries(&self) -> Vec<(String, String)> {
        let snapshot = self.site.borrow().clone().expect("published");
        let feed = snapshot.get("/feed.json").expect("a main feed");
        let body = feed.body(herald::serve::coding::Coding::Identity);
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let mut out: Vec<(String, String)> = json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().unwrap().to_string(),
                    i["title"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    fn id_of(&self, title: &str) -> String {
        self.entries()
            .into_iter()
            .find(|(_, t)| t == title)
            .unwrap_or_else(|| panic!("no entry {title:?} in {:?}", self.entries()))
            .0
    }
}

fn touched(p: &Path) -> Change {
    Change::Touched(p.to_path_buf())
}

fn renamed(from: &Path, to: &Path) -> Change {
    Change::Renamed {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
    }
}

/// Two files swapped through a third name (`mv a t; mv b a; mv t b`): each keeps its id,
/// whether the engine gets the three renames in one batch or, lagging behind the disk, in
/// two; and a rename over a known file is an edit of it (the old path's entry goes), as a
/// rescan would see it. (Races with the disk during a flood of such swaps are what
/// `hardening::a_rename_flood…` checks, on the real binary.)
#[test]
fn renames_that_swap_files_or_overwrite_one() {
    for store in [false, true] {
        // The simplest overwrite first: `mv b a` with both known.
        let mut h = Harness::with(store);
        let a = h.write("a.txt", "Alpha", "A.");
        let b = h.write("b.txt", "Beta", "B.");
        h.apply(vec![touched(&a), touched(&b)]);
        let alpha = h.id_of("Alpha");
        std::fs::rename(&b, &a).unwrap();
        h.apply(vec![renamed(&b, &a)]);
        assert_eq!(h.entries(), vec![(alpha, "Beta".into())], "store {store}");

        for split in [false, true] {
            let mut h = Harness::with(store);
            let a = h.write("a.txt", "Alpha", "A.");
            let b = h.write("b.txt", "Beta", "B.");
            h.apply(vec![touched(&a), touched(&b)]);
            let (alpha, beta) = (h.id_of("Alpha"), h.id_of("Beta"));
            let t = h.content.join("t.txt");
            std::fs::rename(&a, &t).unwrap();
            std::fs::rename(&b, &a).unwrap();
            std::fs::rename(&t, &b).unwrap();
            let moves = vec![renamed(&a, &t), renamed(&b, &a), renamed(&t, &b)];
            if split {
                // The first batch sees a disk two renames ahead of it.
                h.apply(moves[..1].to_vec());
                h.apply(moves[1..].to_vec());
            } else {
                h.apply(moves);
            }
            let want = vec![
                (alpha.clone(), "Alpha".into()),
                (beta.clone(), "Beta".into()),
            ];
            assert_eq!(h.entries(), want, "store {store}, split {split}");

            // `mv b a` (a holds Beta's record now): a is edited, keeping its id; b is gone.
            std::fs::rename(&b, &a).unwrap();
            h.apply(vec![renamed(&b, &a)]);
            assert_eq!(h.entries(), vec![(beta, "Alpha".into())], "store {store}");
            // The old path's record is not lost: a file with its bytes there again takes it.
            let c = h.write("c.txt", "Gamma", "C.");
            h.apply(vec![touched(&c)]);
            assert_eq!(h.entries().len(), 2);
        }
    }
}

#[test]
fn batches_of_changes_add_edit_rename_and_delete() {
    let mut h = Harness::new();
    assert!(h.entries().is_empty());

    // Add two files in one batch.
    let a = h.write("a.txt", "Alpha", "First.");
    let b = h.write("news/b.txt", "Beta", "Second.");
    h.apply(vec![touched(&a), touched(&b)]);
    assert_eq!(h.entries().len(), 2);
    let alpha = h.id_of("Alpha");
    assert_eq!(alpha, "tag:example.com,2026:a.txt");

    // Edit: same id, new title.
    h.write("a.txt", "Alpha edited", "First, edited.");
    h.apply(vec![touched(&a)]);
    assert_eq!(h.id_of("Alpha edited"), alpha);

    // Rename: the record follows the file.
    let moved = h.content.join("moved.txt");
    std::fs::rename(&a, &moved).unwrap();
    h.apply(vec![Change::Renamed {
        from: a.clone(),
        to: moved.clone(),
    }]);
    assert_eq!(h.id_of("Alpha edited"), alpha);
    assert_eq!(h.entries().len(), 2);

    // A rename the watcher saw only as a delete and a create: taken over by content.
    let again = h.content.join("again.txt");
    std::fs::rename(&moved, &again).unwrap();
    h.apply(vec![touched(&moved), touched(&again)]);
    assert_eq!(h.id_of("Alpha edited"), alpha);

    // Delete.
    std::fs::remove_file(&again).unwrap();
    h.apply(vec![touched(&again)]);
    assert_eq!(h.entries().len(), 1);
    assert_eq!(h.entries()[0].1, "Beta");
}

#[test]
fn a_folder_replaced_by_a_file_and_back() {
    let mut h = Harness::new();
    // A folder whose name would do for an article file.
    let one = h.write("dir.txt/one.txt", "One", "Body.");
    let two = h.write("dir.txt/two.txt", "Two", "Body.");
    h.apply(vec![touched(&one), touched(&two)]);
    assert_eq!(h.entries().len(), 2);

    // The folder goes, a file of the same name takes its place.
    let dir = h.content.join("dir.txt");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "Now a file\n\nIt was a folder.\n").unwrap();
    h.apply(vec![touched(&dir)]);
    let titles: Vec<String> = h.entries().into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, ["Now a file"], "what was under the folder is gone");

    // And a folder again, created with its files in one go (their events often lost).
    std::fs::remove_file(&dir).unwrap();
    h.write("dir.txt/three.txt", "Three", "Body.");
    h.apply(vec![touched(&dir)]);
    let titles: Vec<String> = h.entries().into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, ["Three"]);
}
