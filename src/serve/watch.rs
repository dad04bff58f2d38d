//! Watching the content dir: OS file events (notify) turned into debounced [`Change`] hints
//! for the engine, with polling as the fallback.
//!
//! Debouncing: a path is handed over once its writer has closed it (inotify's close-write)
//! or it has been quiet for the debounce time. A file still open for writing after that
//! (found in /proc on Linux) waits until it is closed, so a half-written file is never
//! published. Events that pile up are handed over together, as one batch.
//!
//! Events are hints: the engine stats every path. Queue overflows and watch errors become a
//! full rescan; a content dir that disappears is watched again when it comes back.
//!
//! What waits is bounded by paths, not events: pending changes are a map by path, renames
//! past [`MAX_RENAMES`] become one rescan, and while the engine has not taken the last batch
//! nothing more is handed over, so a flood of renames (600 000 in ten seconds) coalesces
//! here instead of queueing without bound.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher as _};
use tracing::{debug, info, warn};

use crate::config::{Config, WatchMode};
use crate::serve::events::{Change, Msg};
use crate::serve::metrics::Metrics;

/// A running watcher; dropping it stops the thread.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone)]
struct Settings {
    root: PathBuf,
    mode: WatchMode,
    debounce: Duration,
    poll: Duration,
}

pub fn spawn(cfg: &Config, engine: Sender<Msg>, metrics: Arc<Metrics>) -> Watcher {
    let stop = Arc::new(AtomicBool::new(false));
    let settings = Settings {
        root: cfg.content_dir.clone(),
        mode: cfg.watch.mode,
        debounce: cfg.watch.debounce,
        poll: cfg.watch.poll_interval,
    };
    let thread = (settings.mode != WatchMode::Off).then(|| {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("herald-watch".into())
            .spawn(move || run(settings, engine, metrics, stop))
            .expect("spawning a thread only fails when the OS is out of resources")
    });
    Watcher { stop, thread }
}

/// The identity of the content dir: if it changes, the dir was replaced.
fn dir_id(root: &Path) -> Option<(u64, u64)> {
    let m = std::fs::metadata(root).ok().filter(|m| m.is_dir())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    Some((0, 0))
}

fn run(s: Settings, engine: Sender<Msg>, metrics: Arc<Metrics>, stop: Arc<AtomicBool>) {
    let mut polling = s.mode == WatchMode::Poll;
    while !stop.load(Relaxed) {
        if polling {
            poll(&s, &engine, &metrics, &stop);
            return;
        }
        // Wait for the content dir to exist.
        let Some(id) = dir_id(&s.root) else {
            std::thread::sleep(s.poll.min(Duration::from_secs(1)));
            continue;
        };
        // Bounded: when events come faster than they are gathered, the ones that do not fit
        // are dropped and the next batch is a rescan instead (memory stays flat in a flood).
        let (raw_tx, raw_rx) = mpsc::sync_channel(RAW_EVENTS);
        let dropped = Arc::new(AtomicBool::new(false));
        let dropping = dropped.clone();
        let watcher = notify::recommended_watcher(move |ev| {
            if let Err(mpsc::TrySendError::Full(_)) = raw_tx.try_send(ev) {
                dropping.store(true, Relaxed);
            }
        })
        .and_then(|mut w| w.watch(&s.root, RecursiveMode::Recursive).map(|()| w));
        let watcher = match watcher {
            Ok(w) => w,
            Err(e) => {
                metrics.watch_errors.fetch_add(1, Relaxed);
                warn!(error = %e, dir = %s.root.display(), "cannot watch the content dir (inotify limits?); falling back to polling");
                polling = true;
                continue;
            }
        };
        info!(dir = %s.root.display(), "watching");
        // Whatever changed before the watch existed (during the first scan, or while the dir
        // was being replaced) is found by comparing everything once more.
        hand_over(&engine, &metrics, vec![Change::Rescan]);
        let raw = Raw {
            events: raw_rx,
            dropped,
        };
        let replaced = debounce_loop(&s, raw, &engine, &metrics, &stop, id);
        drop(watcher);
        if replaced {
            warn!(dir = %s.root.display(), "content dir disappeared or was replaced; watching it again when it is back");
        }
    }
}

/// Polling mode: compare the whole dir every interval (the engine only re-reads files whose
/// size, mtime or inode changed).
fn poll(s: &Settings, engine: &Sender<Msg>, metrics: &Metrics, stop: &AtomicBool) {
    info!(dir = %s.root.display(), interval_ms = s.poll.as_millis() as u64, "polling");
    while !stop.load(Relaxed) {
        std::thread::sleep(s.poll);
        // A rescan still waiting covers this one.
        if metrics.change_batches_queued.load(Relaxed) > 0 {
            continue;
        }
        if !hand_over(engine, metrics, vec![Change::Rescan]) {
            return;
        }
    }
}

/// Sends a batch to the engine, counting it as queued until the engine takes it; false when
/// the engine is gone.
fn hand_over(engine: &Sender<Msg>, metrics: &Metrics, changes: Vec<Change>) -> bool {
    metrics.change_batches_queued.fetch_add(1, Relaxed);
    engine.send(Msg::Changes(changes)).is_ok()
}

/// Raw events waiting to be gathered, at most (the kernel's own queue is 16 384 by default).
const RAW_EVENTS: usize = 16_384;

/// The raw events from notify, and whether some were dropped (the queue was full).
struct Raw {
    events: mpsc::Receiver<notify::Result<notify::Event>>,
    dropped: Arc<AtomicBool>,
}

/// Renames kept in order for one batch; past this, the batch is a rescan instead (which
/// finds renames by content).
const MAX_RENAMES: usize = 4096;

#[derive(Debug)]
struct Pending {
    first: Instant,
    last: Instant,
    /// Written to since the last close-write: the writer may not be done.
    open_write: bool,
}

/// Collects raw events and hands over ready paths. Returns true when the content dir was
/// removed or replaced (the watch must be set up again).
fn debounce_loop(
    s: &Settings,
    raw: Raw,
    engine: &Sender<Msg>,
    metrics: &Metrics,
    stop: &AtomicBool,
    id: (u64, u64),
) -> bool {
    let mut g = Gathering::default();
    let mut last_check = Instant::now();
    while !stop.load(Relaxed) {
        let tick = if g.is_empty() {
            Duration::from_millis(500)
        } else {
            Duration::from_millis(5)
        };
        let next = raw.events.recv_timeout(tick);
        if raw.dropped.swap(false, Relaxed) && !g.rescan {
            // What was dropped is found by comparing everything (what is gathered too).
            warn!("file events came faster than they could be gathered; rescanning");
            g.rescan_all();
        }
        match next {
            Ok(Ok(ev)) if ev.need_rescan() => {
                warn!("file event queue overflowed; rescanning");
                g.rescan_all();
            }
            // The content dir itself removed or moved away: its watch is gone, even if a
            // new dir (possibly with the same inode number) takes its place.
            Ok(Ok(ev)) if removes(&ev, &s.root) => return true,
            Ok(Ok(ev)) => g.note(ev),
            Ok(Err(e)) => {
                metrics.watch_errors.fetch_add(1, Relaxed);
                warn!(error = %e, "file watch error; rescanning");
                hand_over(engine, metrics, vec![Change::Rescan]);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return true,
        }
        let now = Instant::now();
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = now;
            if dir_id(&s.root) != Some(id) {
                return true;
            }
        }
        // The engine has not taken the last batch: keep gathering (by path) until it has.
        if !g.is_due(now, s) || metrics.change_batches_queued.load(Relaxed) > 0 {
            continue;
        }
        let batch = g.take_batch(now, s);
        if !batch.is_empty() {
            debug!(changes = batch.len(), "handing over changes");
            if !hand_over(engine, metrics, batch) {
                return false;
            }
        }
    }
    false
}

/// Whether an event removes or moves away `root` itself.
fn removes(ev: &notify::Event, root: &Path) -> bool {
    matches!(
        ev.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) && ev.paths.iter().any(|p| p == root)
}

/// The changes gathered for the next batch.
#[derive(Default)]
struct Gathering {
    pending: HashMap<PathBuf, Pending>,
    renames: Vec<(PathBuf, PathBuf)>,
    /// Too many renames to keep: the next batch is a rescan.
    rescan: bool,
    /// When the oldest change of the batch arrived.
    since: Option<Instant>,
    /// When the last event arrived.
    last_event: Option<Instant>,
}

impl Gathering {
    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.renames.is_empty() && !self.rescan
    }

    /// The next batch is a rescan: it finds everything gathered, and more.
    fn rescan_all(&mut self) {
        self.pending.clear();
        self.renames.clear();
        self.rescan = true;
        self.since.get_or_insert(Instant::now());
    }

    fn note(&mut self, ev: notify::Event) {
        let now = Instant::now();
        self.last_event = Some(now);
        self.since.get_or_insert(now);
        note(&mut self.pending, &mut self.renames, ev);
        if self.rescan {
            // A rescan is coming: it finds this change too.
            self.pending.clear();
            self.renames.clear();
        } else if self.renames.len() > MAX_RENAMES {
            self.rescan_all();
        }
    }

    /// Whether a path has waited long enough: until its burst settled, or a full debounce
    /// while it may still be written.
    fn ready(p: &Pending, now: Instant, s: &Settings) -> bool {
        let settle = s.debounce.min(Duration::from_millis(20));
        now.duration_since(p.last) >= if p.open_write { s.debounce } else { settle }
    }

    /// A batch is due once the burst has settled, or when something has waited a full
    /// debounce: a burst that never settles (a rename flood) is handed over in slices.
    fn is_due(&self, now: Instant, s: &Settings) -> bool {
        if self.is_empty() {
            return false;
        }
        let settle = s.debounce.min(Duration::from_millis(20));
        let quiet = self
            .last_event
            .is_none_or(|t| now.duration_since(t) >= settle);
        let overdue = self
            .pending
            .values()
            .any(|p| Self::ready(p, now, s) && now.duration_since(p.last) >= s.debounce)
            || self
                .since
                .is_some_and(|t| now.duration_since(t) >= hold(s).min(s.debounce * 4));
        quiet || overdue
    }

    /// The renames (or a rescan) and the ready paths. A path still open for writing waits
    /// another debounce, up to [`hold`] in all.
    fn take_batch(&mut self, now: Instant, s: &Settings) -> Vec<Change> {
        let mut batch: Vec<Change> = if std::mem::take(&mut self.rescan) {
            self.renames.clear();
            vec![Change::Rescan]
        } else {
            self.renames
                .drain(..)
                .map(|(from, to)| Change::Renamed { from, to })
                .collect()
        };
        let mut ready_paths: Vec<PathBuf> = Vec::new();
        for (path, p) in self.pending.iter_mut() {
            if !Self::ready(p, now, s) {
                continue;
            }
            if p.open_write && now.duration_since(p.first) < hold(s) && is_open_for_writing(path) {
                p.last = now;
                continue;
            }
            ready_paths.push(path.clone());
        }
        for path in ready_paths {
            self.pending.remove(&path);
            batch.push(Change::Touched(path));
        }
        self.since = (!self.pending.is_empty()).then_some(now);
        batch
    }
}

fn hold(s: &Settings) -> Duration {
    write_hold(s.debounce)
}

/// How long a file still open for writing is waited for before it is taken as it is (the
/// watcher's and the rescan's rule).
pub fn write_hold(debounce: Duration) -> Duration {
    (debounce * 20).max(Duration::from_secs(5))
}

fn mark(pending: &mut HashMap<PathBuf, Pending>, p: &Path, open_write: Option<bool>) {
    let now = Instant::now();
    let e = pending.entry(p.to_path_buf()).or_insert(Pending {
        first: now,
        last: now,
        open_write: false,
    });
    e.last = now;
    if let Some(w) = open_write {
        e.open_write = w;
    }
}

fn note(
    pending: &mut HashMap<PathBuf, Pending>,
    renames: &mut Vec<(PathBuf, PathBuf)>,
    ev: notify::Event,
) {
    // None: leave the open-for-writing flag as it is.
    let open_write = match ev.kind {
        // Our own reads produce open/close-nowrite events: ignore every access but close-write.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(false),
        EventKind::Access(_) => return,
        EventKind::Create(CreateKind::File) => Some(true),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if ev.paths.len() == 2 => {
            let (from, to) = (ev.paths[0].clone(), ev.paths[1].clone());
            pending.remove(&from);
            mark(pending, &to, Some(false));
            renames.push((from, to));
            return;
        }
        EventKind::Modify(ModifyKind::Name(_)) => Some(false),
        EventKind::Modify(ModifyKind::Metadata(_)) => None,
        EventKind::Modify(_) => Some(true),
        _ => Some(false),
    };
    for p in &ev.paths {
        mark(pending, p, open_write);
    }
}

/// True when some process has `path` open for writing (Linux: /proc/*/fdinfo flags). Best
/// effort: processes we may not inspect are not seen.
fn is_open_for_writing(path: &Path) -> bool {
    let Ok(target) = std::fs::canonicalize(path) else {
        return false;
    };
    let mut found = false;
    for_each_writer(
        |p| p == target,
        |_| {
            found = true;
            true
        },
    );
    found
}

/// The files under `root` (as paths relative to it) that some process has open for writing,
/// found in one pass over /proc: a rescan leaves them alone until they are closed.
pub fn open_for_writing_under(root: &Path) -> std::collections::HashSet<String> {
    let mut out = std::collections::HashSet::new();
    let Ok(root) = std::fs::canonicalize(root) else {
        return out;
    };
    for_each_writer(
        |p| p.starts_with(&root),
        |p| {
            if let Ok(rel) = p.strip_prefix(&root) {
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
            false
        },
    );
    out
}

/// Calls `found` with every file a process has open for writing and `relevant` accepts (only
/// those have their flags read), until `found` returns true.
#[cfg(target_os = "linux")]
fn for_each_writer(relevant: impl Fn(&Path) -> bool, mut found: impl FnMut(PathBuf) -> bool) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if !relevant(&target) {
                continue;
            }
            let info = std::fs::read_to_string(p.path().join("fdinfo").join(fd.file_name()))
                .unwrap_or_default();
            let flags = info
                .lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
                .unwrap_or(0);
            // O_WRONLY = 1, O_RDWR = 2.
            if flags & 0o3 != 0 && found(target) {
                return;
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn for_each_writer(_relevant: impl Fn(&Path) -> bool, _found: impl FnMut(PathBuf) -> bool) {}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{DataChange, MetadataKind, RemoveKind};

    fn event(kind: EventKind, paths: &[&str]) -> notify::Event {
        let mut e = notify::Event::new(kind);
        for p in paths {
            e = e.add_path(PathBuf::from(p));
        }
        e
    }

    /// Each notify event, applied to an empty state: which paths become pending (and
    /// whether their writer may still be writing) and which renames are kept.
    #[test]
    fn notify_events_become_pending_paths_and_renames() {
        use EventKind as K;
        type Case = (
            EventKind,
            &'static [&'static str],
            &'static [(&'static str, bool)],
            usize,
        );
        let cases: &[Case] = &[
            (
                K::Create(CreateKind::File),
                &["/c/a.txt"],
                &[("/c/a.txt", true)],
                0,
            ),
            (
                K::Access(AccessKind::Close(AccessMode::Write)),
                &["/c/a.txt"],
                &[("/c/a.txt", false)],
                0,
            ),
            // Our own reads: ignored.
            (
                K::Access(AccessKind::Open(AccessMode::Read)),
                &["/c/a.txt"],
                &[],
                0,
            ),
            (
                K::Modify(ModifyKind::Data(DataChange::Content)),
                &["/c/a.txt"],
                &[("/c/a.txt", true)],
                0,
            ),
            (
                K::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                &["/c/a.txt"],
                &[("/c/a.txt", false)],
                0,
            ),
            (
                K::Remove(RemoveKind::File),
                &["/c/a.txt"],
                &[("/c/a.txt", false)],
                0,
            ),
            (
                K::Create(CreateKind::Folder),
                &["/c/new"],
                &[("/c/new", false)],
                0,
            ),
            // A rename with both ends: kept as a rename, the new path re-checked.
            (
                K::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/c/a.txt", "/c/b.txt"],
                &[("/c/b.txt", false)],
                1,
            ),
            // One end of a rename (from or to outside the dir): a path to re-check.
            (
                K::Modify(ModifyKind::Name(RenameMode::To)),
                &["/c/b.txt"],
                &[("/c/b.txt", false)],
                0,
            ),
        ];
        for (kind, paths, want, renames_want) in cases {
            let (mut pending, mut renames) = (HashMap::new(), Vec::new());
            note(&mut pending, &mut renames, event(*kind, paths));
            let mut got: Vec<(String, bool)> = pending
                .iter()
                .map(|(p, v)| (p.display().to_string(), v.open_write))
                .collect();
            got.sort();
            let want: Vec<(String, bool)> = want.iter().map(|(p, w)| (p.to_string(), *w)).collect();
            assert_eq!(got, want, "{kind:?}");
            assert_eq!(renames.len(), *renames_want, "{kind:?}");
        }
    }

    #[test]
    fn a_rename_drops_what_was_pending_at_its_old_path() {
        let (mut pending, mut renames) = (HashMap::new(), Vec::new());
        note(
            &mut pending,
            &mut renames,
            event(EventKind::Create(CreateKind::File), &["/c/a.txt"]),
        );
        note(
            &mut pending,
            &mut renames,
            event(
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                &["/c/a.txt", "/c/b.txt"],
            ),
        );
        assert!(!pending.contains_key(Path::new("/c/a.txt")));
        assert!(pending.contains_key(Path::new("/c/b.txt")));
        assert_eq!(
            renames,
            [(PathBuf::from("/c/a.txt"), PathBuf::from("/c/b.txt"))]
        );
    }
}
