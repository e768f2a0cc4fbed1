//! Finding ids `replay --new-only` already emitted, kept in the manifest so
//! a scheduled job sends each finding once.
//!
//! The manifest keeps them as the 16 hex digits the outputs carry; in
//! memory they are their 64-bit numbers, sorted (8 bytes each instead of a
//! string and a hash-set entry: a store that has emitted a million findings
//! looks them up in 8 MB).

use anyhow::Result;

use super::Store;

/// Finding ids already emitted, as numbers, sorted.
pub struct EmittedFindings(Vec<u64>);

impl EmittedFindings {
    fn of(ids: &[String]) -> EmittedFindings {
        // An id that is not 16 hex digits cannot be one of ours: no finding has it.
        let mut n: Vec<u64> =
            ids.iter().filter(|i| i.len() == 16).filter_map(|i| u64::from_str_radix(i, 16).ok()).collect();
        n.sort_unstable();
        n.dedup();
        EmittedFindings(n)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.0.binary_search(&id).is_ok()
    }
}

impl Store {
    /// The findings earlier runs marked emitted.
    pub fn emitted_findings(&self) -> EmittedFindings {
        EmittedFindings::of(&self.manifest.emitted_findings)
    }

    /// Records finding ids as emitted (call once the output is written).
    pub fn mark_emitted(&mut self, ids: impl IntoIterator<Item = u64>) -> Result<()> {
        let _lock = self.lock()?;
        // Another run may have written since this one opened the store.
        let current = Store::open(&self.dir)?;
        self.manifest = current.manifest;
        let seen = self.emitted_findings();
        let mut fresh: Vec<u64> = ids.into_iter().filter(|i| !seen.contains(*i)).collect();
        fresh.sort_unstable();
        fresh.dedup();
        self.manifest.emitted_findings.extend(fresh.into_iter().map(|i| format!("{i:016x}")));
        self.write_manifest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_ids_are_looked_up_as_numbers_and_what_is_not_one_of_ours_matches_nothing() {
        let ids: Vec<String> = ["00000000000000ff", "ffffffffffffffff", "00000000000000ff", "xyz", "ff"]
            .map(String::from)
            .to_vec();
        let e = EmittedFindings::of(&ids);
        assert!(e.contains(0xff) && e.contains(u64::MAX));
        assert!(!e.contains(0) && !e.contains(0xfe));
        assert_eq!(e.0.len(), 2);
    }
}
