//! Hints → work: a batch of [`Change`]s becomes files to read again and paths that are
//! gone (one pass over what is known per batch), renames move records, rescans compare the
//! whole content dir with what is indexed.

use super::*;

/// What the engine has seen of the content dir.
#[derive(Default)]
pub(super) struct Seen {
    /// Stamp of every candidate file as last read (articles and skipped ones).
    pub(super) stamps: HashMap<Arc<str>, Stamp>,
    /// Files a rescan found open for writing, and since when (see [`Engine::rescan_from`]).
    held: HashMap<String, Instant>,
    /// Skip messages already logged, so rescans do not repeat them.
    logged: HashSet<(String, String)>,
    /// Media files served, by path (each with its stamp as last checked); a persistent
    /// map, so each snapshot takes it as it is.
    pub(super) media: imbl::HashMap<String, Arc<Media>>,
}

impl Seen {
    /// Logs and counts a skipped file, once per path and message.
    pub(super) fn skipped(&mut self, s: &Skipped, metrics: &Metrics) {
        if !self.logged.insert((s.path.clone(), s.message.clone())) {
            return;
        }
        metrics.skipped(s.reason.as_str());
        if s.reason.is_error() {
            warn!(path = %s.path, reason = s.reason.as_str(), "{}", s.message);
        } else {
            debug!(path = %s.path, reason = s.reason.as_str(), "{}", s.message);
        }
    }

    /// A file was read: its skip messages may be logged again should it go bad again.
    pub(super) fn read(&mut self, path: &str) {
        self.logged.retain(|(p, _)| p != path);
    }

    /// Of the files open for writing, those held for less than `hold` (the others are taken
    /// as they are). Forgets files no longer open.
    fn still_held(
        &mut self,
        mut writing: std::collections::HashSet<String>,
        hold: Duration,
    ) -> std::collections::HashSet<String> {
        let now = Instant::now();
        self.held.retain(|p, _| writing.contains(p));
        writing.retain(|p| now.duration_since(*self.held.entry(p.clone()).or_insert(now)) < hold);
        writing
    }
}

impl Engine {
    /// Applies a batch of hints.
    pub fn apply_changes(&mut self, changes: Vec<Change>) {
        if changes.is_empty() {
            return;
        }
        let started = Instant::now();
        if changes.contains(&Change::Rescan) {
            // A rescan sees everything, renames included (content-hash takeover).
            self.rescan(Pass::Changes);
            return;
        }
        let mut work = Expanded::default();
        let mut changed: Vec<Pair> = Vec::new();
        for c in changes {
            match c {
                Change::Rescan => unreachable!("handled above"),
                Change::Renamed { from, to } => match (self.rel(&from), self.rel(&to)) {
                    (Some(f), Some(t)) if !f.is_empty() && !t.is_empty() => {
                        changed.extend(self.rename(&f, &t, &mut work));
                        self.expand(&to, &mut work);
                        // Media files at the old path (or under it) are gone from there.
                        let under = format!("{f}/");
                        work.gone.extend(
                            self.seen
                                .media
                                .keys()
                                .filter(|p| **p == f || p.starts_with(&under))
                                .cloned(),
                        );
                    }
                    _ => {
                        self.expand(&from, &mut work);
                        self.expand(&to, &mut work);
                    }
                },
                Change::Touched(p) => {
                    if self.rel(&p).is_some_and(|r| r.is_empty()) {
                        self.rescan(Pass::Changes);
                        continue;
                    }
                    self.expand(&p, &mut work);
                }
            }
        }
        let gone = self.gone_under(&mut work);
        if work.touched.contains(ROBOTS) || gone.contains(ROBOTS) {
            self.refresh_robots();
        }
        changed.extend(self.apply(work.touched, gone, Pass::Changes));
        self.publish(changed, false, started);
    }

    /// Turns a hint into work: a file to re-check, a folder to walk, or paths that are gone.
    /// What was under a folder that is gone or was walked is found once per batch, by
    /// [`Engine::gone_under`].
    pub(super) fn expand(&self, abs: &Path, work: &mut Expanded) {
        let Some(rel) = self.rel(abs) else {
            return;
        };
        let is_known = |p: &str| {
            self.seen.stamps.contains_key(p)
                || self.index.get(p).is_some()
                || self.seen.media.contains_key(p)
        };
        // A symlink to a folder is never walked (as in the scan): `ln -s . mirror` or
        // `ln -s .. up` made while serving would index every article again.
        if is_dir_symlink(abs) {
            debug!(path = %rel, "skipped: symlink to a folder");
            return;
        }
        match std::fs::metadata(abs) {
            Err(_) => {
                // A known path was a file: nothing can be under it.
                if !is_known(&rel) {
                    work.dirs.insert(rel.clone());
                }
                work.gone.insert(rel);
            }
            Ok(m) if m.is_dir() => {
                // A file replaced by a folder of the same name: the file's entry goes.
                if is_known(&rel) {
                    work.gone.insert(rel.clone());
                }
                // Events for files created together with their folder are often lost: walk it.
                for e in walkdir::WalkDir::new(abs)
                    .into_iter()
                    .filter_map(Result::ok)
                {
                    if e.file_type().is_file() || (e.path_is_symlink() && !is_dir_symlink(e.path()))
                    {
                        if let Some(r) = self.rel(e.path()) {
                            work.found.insert(r.clone());
                            work.touched.insert(r);
                        }
                    }
                }
                work.dirs.insert(rel);
            }
            Ok(_) => {
                // A folder replaced by a file of the same name: what was under it is gone.
                if self.index.has_under(&format!("{rel}/")) {
                    work.dirs.insert(rel.clone());
                }
                work.touched.insert(rel);
            }
        }
    }

    /// The batch's gone paths plus every known path under a folder of `work.dirs` that was
    /// not found there now: one pass over what is known, however many folders the batch
    /// names (a pass per deleted path made deleting 100 000 files take minutes).
    pub(super) fn gone_under(&self, work: &mut Expanded) -> BTreeSet<String> {
        let mut gone = std::mem::take(&mut work.gone);
        if work.dirs.is_empty() {
            return gone;
        }
        let dirs = &work.dirs;
        let under_a_dir = |p: &str| {
            let mut at = p;
            while let Some(i) = at.rfind('/') {
                at = &at[..i];
                if dirs.contains(at) {
                    return true;
                }
            }
            false
        };
        for p in self.known_paths() {
            if !work.found.contains(p) && under_a_dir(p) {
                gone.insert(p.to_string());
            }
        }
        gone
    }

    /// Every path the engine knows of: files read (articles and skipped ones), articles,
    /// media files (some paths more than once).
    fn known_paths(&self) -> impl Iterator<Item = &str> {
        self.seen
            .stamps
            .keys()
            .map(|p| &p[..])
            .chain(self.index.paths().map(|p| &p[..]))
            .chain(self.seen.media.keys().map(String::as_str))
    }

    /// Moves an article's record to its new path so it keeps its id and dates. A rename over
    /// a file herald knows is an edit of that file and a deletion of the old path, as a
    /// rescan would see it: the old path is looked at again (`work`), and so is the new one
    /// (its stamp is forgotten: the path now names other bytes).
    pub(super) fn rename(&mut self, from: &str, to: &str, work: &mut Expanded) -> Vec<Pair> {
        let mut moves: Vec<(String, String)> = if self.records.get(from).is_some() {
            // A file: nothing is under it (no pass over every record per rename).
            vec![(from.to_string(), to.to_string())]
        } else {
            let prefix = format!("{from}/");
            self.records
                .by_path
                .keys()
                .filter(|p| p.starts_with(&prefix))
                .map(|p| (p.to_string(), format!("{to}{}", &p[from.len()..])))
                .collect()
        };
        moves.sort();
        let mut changed = Vec::new();
        for (f, t) in moves {
            let over_known = self.records.get(&t).is_some() || self.index.get(&t).is_some();
            self.seen.stamps.remove(f.as_str());
            self.seen.stamps.remove(t.as_str());
            self.cache.delete(f.clone());
            if let Some(old) = self.index.remove(&f) {
                changed.push((Some(old), None));
            }
            if !over_known && self.records.rename(&f, &t) {
                debug!(from = %f, to = %t, "renamed");
            } else {
                self.expand(&self.root().join(&f), work);
            }
        }
        changed
    }

    /// Compares the whole content dir with what is indexed; only changed files are re-read.
    pub(super) fn rescan(&mut self, pass: Pass) {
        let started = Instant::now();
        let scan = content::scan(self.root());
        self.rescan_from(scan, started, pass);
    }

    /// [`Engine::rescan`] with the scan already made.
    pub(super) fn rescan_from(
        &mut self,
        scan: std::io::Result<content::Scan>,
        started: Instant,
        pass: Pass,
    ) {
        self.metrics.rescans.fetch_add(1, Relaxed);
        let scan = match scan {
            Ok(s) => s,
            Err(e) => {
                self.metrics.watch_errors.fetch_add(1, Relaxed);
                if pass.is_everything() {
                    error!(dir = %self.root().display(), error = %e, "cannot read the content dir; serving an empty site until it appears");
                    self.publish(Vec::new(), true, started);
                } else {
                    warn!(dir = %self.root().display(), error = %e, "content dir unreadable; keeping the last good feeds");
                }
                return;
            }
        };
        debug!(
            files = scan.files.len(),
            ms = started.elapsed().as_millis() as u64,
            "phase: scan rss={}",
            crate::serve::metrics::rss_mb()
        );
        for s in &scan.skipped {
            self.seen.skipped(s, &self.metrics);
        }
        let present: HashSet<&str> = scan
            .files
            .iter()
            .chain(&scan.media)
            .map(String::as_str)
            .collect();
        let (gone, missed): (BTreeSet<String>, BTreeSet<String>) = self
            .known_paths()
            .filter(|p| !present.contains(p))
            .map(|p| p.to_string())
            // A walk misses a file renamed while it reads the folder: one that is there is
            // not gone (one stat per path the walk did not list, usually none).
            .partition(|p| !is_regular_file(&self.root().join(p)));
        drop(present);
        let mut files = scan.files;
        files.extend(scan.media);
        files.extend(missed);
        // A file some process still has open for writing may be half written: it is left as
        // it was until it is closed (the watcher then reports it, or the next scan takes it).
        // Not forever, though: like the watcher, after a while it is taken as it is.
        let hold = crate::serve::watch::write_hold(self.cfg.watch.debounce);
        let writing = crate::serve::watch::open_for_writing_under(self.root());
        let writing = self.seen.still_held(writing, hold);
        if !writing.is_empty() {
            debug!(files = writing.len(), "left alone while open for writing");
        }
        let touched: BTreeSet<String> =
            files.into_iter().filter(|f| !writing.contains(f)).collect();
        let everything = pass.is_everything();
        self.refresh_robots();
        let changed = self.apply(touched, gone, pass);
        self.publish(changed, everything, started);
    }
}

/// The content dir's own `robots.txt`, served as `/robots.txt` (not an article).
const ROBOTS: &str = "robots.txt";

impl Engine {
    /// Reads the content dir's own `robots.txt` again (the publisher serves it, or herald's
    /// own when there is none or it cannot be used).
    fn refresh_robots(&mut self) {
        let robots = match self.loader.read_site_file(ROBOTS, 64 << 10) {
            Ok(r) => r,
            Err(s) => {
                self.seen.skipped(&s, &self.metrics);
                None
            }
        };
        if self.publisher.set_robots(robots) {
            debug!("robots.txt changed");
        }
    }
}

/// True when `p` is a regular file (not followed if a symlink).
fn is_regular_file(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
}

/// True when `p` is a symlink that resolves to a folder.
pub(super) fn is_dir_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
        && std::fs::metadata(p).is_ok_and(|m| m.is_dir())
}

/// What a batch of hints asks for (see [`Engine::expand`]).
#[derive(Default)]
pub(super) struct Expanded {
    /// Files to read again.
    touched: BTreeSet<String>,
    /// Paths that are gone.
    gone: BTreeSet<String>,
    /// Folders that are gone or were walked: what is known under them and was not found
    /// now is gone too.
    dirs: HashSet<String>,
    /// Files found by walking `dirs`.
    found: HashSet<String>,
}
