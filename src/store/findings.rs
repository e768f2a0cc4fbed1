//! Finding ids `replay --new-only` already emitted, kept in the manifest so
//! a scheduled job sends each finding once.

use std::collections::HashSet;

use anyhow::Result;

use super::Store;

impl Store {
    /// Of `ids`, those no earlier run marked emitted.
    pub fn unseen_findings<'a>(&self, ids: impl Iterator<Item = &'a String>) -> HashSet<String> {
        let seen: HashSet<&String> = self.manifest.emitted_findings.iter().collect();
        ids.filter(|i| !seen.contains(i)).cloned().collect()
    }

    /// Records finding ids as emitted (call once the output is written).
    pub fn mark_emitted(&mut self, ids: impl IntoIterator<Item = String>) -> Result<()> {
        let _lock = self.lock()?;
        // Another run may have written since this one opened the store.
        let current = Store::open(&self.dir)?;
        self.manifest = current.manifest;
        let seen: HashSet<String> = self.manifest.emitted_findings.iter().cloned().collect();
        let mut fresh: Vec<String> = ids.into_iter().filter(|i| !seen.contains(i)).collect();
        fresh.sort();
        fresh.dedup();
        self.manifest.emitted_findings.extend(fresh);
        self.write_manifest()
    }
}
