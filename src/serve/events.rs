//! The watcher's vocabulary: what it tells the engine ([`Msg`], [`Change`]). Both the
//! watcher and the engine import it; neither imports the other.

use std::path::PathBuf;

use crate::config::Config;

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
