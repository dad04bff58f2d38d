//! The engine's vocabulary: what the watcher tells it ([`Msg`], [`Change`]), and what it
//! tells whoever acts on a publish ([`Published`]: hub pings and deliveries). Both sides
//! import it; neither imports the other.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::serve::snapshot::Snapshot;

/// What one publish changed.
#[derive(Debug)]
pub struct Published {
    pub generation: u64,
    /// Feed and list routes whose bytes changed since they were last published (a restart
    /// compares with what the state kept).
    pub changed: Vec<String>,
    /// Routes published for the first time (every route of a first start).
    pub added: Vec<String>,
    /// Routes gone with this publish.
    pub removed: Vec<String>,
    pub snapshot: Arc<Snapshot>,
}

/// Where the engine sends each [`Published`].
pub type PublishedTx = tokio::sync::mpsc::UnboundedSender<Arc<Published>>;

/// What the engine is told.
#[derive(Debug)]
pub enum Msg {
    Changes(Vec<Change>),
    /// A new, already validated config (SIGHUP).
    Reload(Box<Config>),
    Shutdown,
}

/// A hint that something changed. Hints are checked against the disk, never trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Something happened at this absolute path: a file, a folder, or now nothing.
    Touched(PathBuf),
    /// A rename inside the content dir (the record follows the file).
    Renamed { from: PathBuf, to: PathBuf },
    /// Compare the whole content dir with the index.
    Rescan,
}
