//! Records: ids, slugs and first-seen times assigned by the state store, or by the same
//! rules in memory while the store fails; records the store has not taken are written back
//! when it works again.

use super::*;
use crate::model::{apply_rules, HeldSets, Known, Ledger};
use crate::store::state::StoreError;

/// Every article's record, by path: the state store, and the map the engine works from.
pub(super) struct Records {
    state: State,
    /// By path; the keys are the same strings as the articles' paths and the stamp map's
    /// keys (one copy of each path, not three).
    pub(super) by_path: HashMap<Arc<str>, Record>,
    /// Records the state store does not have yet: those it failed to take, written back
    /// when it works again.
    unsaved: HashMap<String, Record>,
    /// Every record in `by_path` is a first start's, not written yet (see `assign_first`).
    first_start_unsaved: bool,
    /// Where the store's failures are counted, and its file for the log.
    metrics: Arc<Metrics>,
    state_file: std::path::PathBuf,
}

impl Records {
    /// Opens the state store; if that fails, herald still serves, from memory.
    pub(super) fn open(cfg: &Config, metrics: Arc<Metrics>) -> Records {
        let state = match State::open(&cfg.state_file(), &cfg.site.tag_authority) {
            Ok(s) => s,
            Err(e) => {
                metrics.state_errors.fetch_add(1, Relaxed);
                error!(
                    error = format!("{e:#}"),
                    "STATE STORE UNAVAILABLE: serving from memory; ids of new articles will not survive a restart"
                );
                State::in_memory(&cfg.site.tag_authority)
                    .expect("an in-memory SQLite database always opens")
            }
        };
        Records {
            state,
            by_path: HashMap::new(),
            unsaved: HashMap::new(),
            first_start_unsaved: false,
            metrics,
            state_file: cfg.state_file(),
        }
    }

    pub(super) fn state(&self) -> &State {
        &self.state
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    pub(super) fn get(&self, path: &str) -> Option<&Record> {
        self.by_path.get(path)
    }

    /// Writes the records the state store does not have yet: a first start's (see
    /// [`Records::assign_first`]), or those a failing store could not take.
    pub(super) fn save_unsaved(&mut self) {
        let mut pending: Vec<(&str, &Record)> = if self.first_start_unsaved {
            self.by_path.iter().map(|(p, r)| (&p[..], r)).collect()
        } else {
            self.unsaved.iter().map(|(p, r)| (p.as_str(), r)).collect()
        };
        if pending.is_empty() {
            return;
        }
        // In key order: SQLite appends to its B-trees instead of splitting pages everywhere.
        pending.sort_unstable_by_key(|(p, _)| *p);
        match self.state.save_records(&pending) {
            Ok(()) => {
                // Records in `unsaved` are there because an earlier write failed.
                if !self.first_start_unsaved {
                    info!(
                        records = pending.len(),
                        "state store writable again; records saved"
                    );
                }
                self.unsaved = HashMap::new();
            }
            Err(e) => {
                self.failed(&e);
                if self.first_start_unsaved {
                    // Kept for the retry like any record the store failed to take.
                    let all = self.by_path.iter().map(|(p, r)| (p.to_string(), r.clone()));
                    self.unsaved.extend(all);
                }
            }
        }
        self.first_start_unsaved = false;
    }

    /// Gets records for documents from the state store (from memory when the store fails).
    /// `initial`: the documents are every file there is (a full sync of the store).
    pub(super) fn assign(
        &mut self,
        refs: &[DocKey],
        removes: Vec<String>,
        now: i64,
        initial: bool,
    ) {
        self.save_unsaved();
        let result = if !self.unsaved.is_empty() {
            // Records the store failed to take come first: until they are written, new
            // ones go to memory too (a new record could claim an id an unsaved one holds).
            Err(StoreError::Behind)
        } else if initial {
            self.state
                .sync_all(refs, utc(now), true)
                .map_err(StoreError::Failed)
        } else {
            self.state
                .apply(
                    &Batch {
                        upserts: refs.to_vec(),
                        removes: removes.clone(),
                    },
                    utc(now),
                    true,
                )
                .map_err(StoreError::Failed)
        };
        match result {
            // A first start takes the map as is (no second table while it is copied).
            Ok(recs) if self.by_path.is_empty() => self.by_path = recs,
            Ok(recs) => self.by_path.extend(recs),
            Err(e) => {
                // Logged and counted either way, as before: the operator sees the store is
                // not keeping up until it does.
                self.failed(&anyhow::Error::from(e));
                self.assign_in_memory(refs, &removes, now, true);
            }
        }
    }

    /// A first start (the state holds no record at all): nothing to look up, so the records
    /// are made in memory by the store's rules and written right after the first publish
    /// ([`Records::save_unsaved`]), not on the way to it (~0.8 s of SQLite at 100 000).
    pub(super) fn assign_first(&mut self, refs: &[DocKey], removes: &[String], now: i64) {
        self.assign_in_memory(refs, removes, now, false);
        self.first_start_unsaved = true;
    }

    /// Whether this is a first start: no record anywhere, none waiting to be written.
    pub(super) fn nothing_recorded(&self) -> bool {
        self.by_path.is_empty() && self.unsaved.is_empty()
    }

    /// Moves a record to a new path (a rename), in the store and in memory. False when
    /// there is none to move, or the store holds a record at `to` (then nothing moves).
    pub(super) fn rename(&mut self, from: &str, to: &str) -> bool {
        if !self.by_path.contains_key(from) || self.by_path.contains_key(to) {
            return false;
        }
        match self.state.rename(from, to) {
            Ok(false) => return false,
            Ok(true) => {}
            Err(e) => {
                self.failed(&e);
                if let Some(rec) = self.by_path.get(from) {
                    self.unsaved.insert(to.to_string(), rec.clone());
                }
            }
        }
        if let Some(rec) = self.by_path.remove(from) {
            self.by_path.insert(to.into(), rec);
        }
        true
    }

    /// Keeps new Last-Modified values per route.
    pub(super) fn save_routes(&mut self, updates: &[(String, String, i64)]) {
        if !updates.is_empty() {
            if let Err(e) = self.state.save_routes(updates) {
                self.failed(&e);
            }
        }
    }

    pub(super) fn failed(&self, e: &anyhow::Error) {
        self.metrics.state_errors.fetch_add(1, Relaxed);
        error!(
            state = %self.state_file.display(),
            error = format!("{e:#}"),
            "STATE STORE WRITE FAILED: serving from memory; will retry"
        );
    }

    /// The record rules ([`crate::model::apply_rules`], the state store's own), applied to
    /// the in-memory records only. `unsaved`: remember each record as one the store still
    /// needs.
    fn assign_in_memory(&mut self, docs: &[DocKey], removes: &[String], now: i64, unsaved: bool) {
        // (A first start removes nothing: no set of 100 000 paths for it.)
        let removed: Vec<String> = if removes.is_empty() {
            Vec::new()
        } else {
            let upserted: HashSet<&str> = docs.iter().map(|d| d.path).collect();
            removes
                .iter()
                .filter(|p| !upserted.contains(p.as_str()))
                .cloned()
                .collect()
        };
        let mut holders = HeldSets::of(self.by_path.values());
        let mut ledger = MemoryLedger {
            records: &mut self.by_path,
            unsaved: unsaved.then_some(&mut self.unsaved),
        };
        let Ok(outcome) = apply_rules(
            &mut ledger,
            docs,
            &removed,
            self.state.authority(),
            utc(now),
            &mut holders,
        );
        for (old, _) in &outcome.moved {
            self.by_path.remove(old.as_str());
        }
    }
}

/// The engine's records as the rules' ledger: a settled record goes straight into the map
/// (and, while the store is behind, into `unsaved` too).
struct MemoryLedger<'a> {
    records: &'a mut HashMap<Arc<str>, Record>,
    unsaved: Option<&'a mut HashMap<String, Record>>,
}

impl Ledger for MemoryLedger<'_> {
    fn known(&mut self, path: &str) -> Option<Known> {
        self.records.get(path).map(|rec| Known {
            rec: rec.clone(),
            present: true,
        })
    }

    fn give(&mut self, path: &str, rec: Record) {
        if let Some(unsaved) = &mut self.unsaved {
            unsaved.insert(path.to_string(), rec.clone());
        }
        self.records.insert(path.into(), rec);
    }
}
