//! Records: ids, slugs and first-seen times assigned by the state store, or by the same
//! rules in memory while the store fails; records the store has not taken are written back
//! when it works again.

use super::*;

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
            Err(anyhow::anyhow!("state store still has unsaved records"))
        } else if initial {
            self.state.sync_all(refs, utc(now), true)
        } else {
            self.state.apply(
                &Batch {
                    upserts: refs.to_vec(),
                    removes: removes.clone(),
                },
                utc(now),
                true,
            )
        };
        match result {
            // A first start takes the map as is (no second table while it is copied).
            Ok(recs) if self.records.is_empty() => self.records = recs,
            Ok(recs) => self.records.extend(recs),
            Err(e) => {
                self.state_failed(&e);
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

    /// The state store's rules, applied to the in-memory records only.
    /// `unsaved`: remember each record as one the store still needs.
    pub(super) fn assign_in_memory(
        &mut self,
        docs: &[DocKey],
        removes: &[String],
        now: i64,
        unsaved: bool,
    ) {
        let mut gone_by_hash: HashMap<blake3::Hash, String> = removes
            .iter()
            .filter_map(|p| {
                let r = self.records.get(p.as_str())?;
                Some((r.hash, p.clone()))
            })
            .collect();
        let ids: HashSet<Arc<str>> = self.records.values().map(|r| r.id.clone()).collect();
        let mut slugs: HashSet<Arc<str>> = self.records.values().map(|r| r.slug.clone()).collect();
        // What a new record would ask for (its id, its slug's words), made on every core: a
        // first start asks it for every file.
        let (records, authority) = (&self.records, &self.cfg.site.tag_authority);
        let wanted: Vec<Option<(String, String)>> = docs
            .par_iter()
            .with_min_len(256)
            .map(|doc| {
                (!records.contains_key(doc.path)).then(|| {
                    (
                        state::tag_id(authority, doc.path),
                        state::slug_base(doc.title),
                    )
                })
            })
            .collect();
        self.records.reserve(docs.len());
        slugs.reserve(docs.len());
        for (doc, wanted) in docs.iter().zip(wanted) {
            let rec = if let Some(mut rec) = self.records.get(doc.path).cloned() {
                if rec.hash != doc.hash {
                    rec.hash = doc.hash;
                    rec.changed_at = Some(utc(now));
                }
                rec
            } else if let Some(old) = gone_by_hash.remove(&doc.hash) {
                let Some(rec) = self.records.remove(old.as_str()) else {
                    unreachable!("gone_by_hash only holds known paths")
                };
                rec
            } else {
                let (base, words) = wanted.unwrap_or_else(|| {
                    (
                        state::tag_id(&self.cfg.site.tag_authority, doc.path),
                        state::slug_base(doc.title),
                    )
                });
                let id = state::first_free(&base, ";", |c| ids.contains(c));
                let slug: Arc<str> = state::first_free(&words, "-", |c| slugs.contains(c)).into();
                slugs.insert(slug.clone());
                Record {
                    id: id.into(),
                    slug,
                    first_seen: utc(now),
                    hash: doc.hash,
                    changed_at: None,
                }
            };
            if unsaved {
                self.unsaved.insert(doc.path.to_string(), rec.clone());
            }
            self.records.insert(doc.path.into(), rec);
        }
    }
}
