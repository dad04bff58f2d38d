//! Records: ids, slugs and first-seen times assigned by the state store, or by the same
//! rules in memory while the store fails; records the store has not taken are written back
//! when it works again.

use super::*;
use crate::model::{apply_rules, HeldSets, Known, Ledger};
use crate::store::state::StoreError;

impl Engine {
    /// Writes the records the state store does not have yet: a first start's (see `apply`),
    /// or those a failing store could not take.
    pub(super) fn save_unsaved(&mut self) {
        let mut pending: Vec<(&str, &Record)> = if self.first_records_unsaved {
            self.records.iter().map(|(p, r)| (&p[..], r)).collect()
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
                if !self.first_records_unsaved {
                    info!(
                        records = pending.len(),
                        "state store writable again; records saved"
                    );
                }
                self.unsaved = HashMap::new();
            }
            Err(e) => {
                self.state_failed(&e);
                if self.first_records_unsaved {
                    // Kept for the retry like any record the store failed to take.
                    let all = self.records.iter().map(|(p, r)| (p.to_string(), r.clone()));
                    self.unsaved.extend(all);
                }
            }
        }
        self.first_records_unsaved = false;
    }

    /// Gets records for documents from the state store (from memory when the store fails)
    /// into `self.records`.
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
            Ok(recs) if self.records.is_empty() => self.records = recs,
            Ok(recs) => self.records.extend(recs),
            Err(e) => {
                // Logged and counted either way, as before: the operator sees the store is
                // not keeping up until it does.
                self.state_failed(&anyhow::Error::from(e));
                self.assign_in_memory(refs, &removes, now, true);
            }
        }
    }

    pub(super) fn state_failed(&self, e: &anyhow::Error) {
        self.metrics.state_errors.fetch_add(1, Relaxed);
        error!(
            state = %self.cfg.state_file().display(),
            error = format!("{e:#}"),
            "STATE STORE WRITE FAILED: serving from memory; will retry"
        );
    }

    /// The record rules ([`crate::model::apply_rules`], the state store's own), applied to
    /// the in-memory records only. `unsaved`: remember each record as one the store still
    /// needs.
    pub(super) fn assign_in_memory(
        &mut self,
        docs: &[DocKey],
        removes: &[String],
        now: i64,
        unsaved: bool,
    ) {
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
        let mut holders = HeldSets::of(self.records.values());
        let mut ledger = MemoryLedger {
            records: &mut self.records,
            unsaved: unsaved.then_some(&mut self.unsaved),
        };
        let Ok(outcome) = apply_rules(
            &mut ledger,
            docs,
            &removed,
            &self.cfg.site.tag_authority,
            utc(now),
            &mut holders,
        );
        for (old, _) in &outcome.moved {
            self.records.remove(old.as_str());
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
