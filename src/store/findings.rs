//! Finding ids `replay --new-only` already emitted, kept in the manifest so
//! a scheduled job sends each finding once.

use std::collections::HashSet;

use anyhow::Result;

use super::Store;

impl Store {
    /// The findings earlier runs marked emitted.
    pub fn emitted_findings(&self) -> HashSet<&str> {
        self.manifest.emitted_findings.iter().map(String::as_str).collect()
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
