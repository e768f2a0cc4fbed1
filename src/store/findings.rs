//! Finding ids `replay --new-only` already emitted, so a scheduled job
//! sends each finding once.
//!
//! They live in `emitted-findings`, beside the manifest: a 16-byte header
//! and then each id's 64-bit number, little-endian, sorted, once each.
//! Not in the manifest, because every store command reads the manifest
//! whole and a feed that runs for years emits millions of findings (as
//! JSON strings in the manifest, a million of them took some 20 MB of text
//! and 50 MB in memory on every `store info`); only `--new-only` reads
//! this file, and holds 8 bytes an id. The file is replaced atomically
//! (temporary file, fsync, rename), under the writers' lock.
//!
//! Stores written before kept the ids in the manifest as 16 hex digits;
//! they still count, and the next `--new-only` run moves them into the
//! file (the file first, then the manifest without them, so a run killed
//! in between leaves both, whose union is the same).

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Store;

pub(super) const EMITTED: &str = "emitted-findings";
const HEADER: &[u8; 16] = b"xtenant-emitted1";

/// Finding ids already emitted, as numbers, sorted.
pub struct EmittedFindings(Vec<u64>);

impl EmittedFindings {
    /// The ids a manifest of an earlier version listed.
    fn of_hex(ids: &[String]) -> Vec<u64> {
        // An id that is not 16 hex digits cannot be one of ours: no finding has it.
        ids.iter().filter(|i| i.len() == 16).filter_map(|i| u64::from_str_radix(i, 16).ok()).collect()
    }

    fn sorted(mut ids: Vec<u64>) -> EmittedFindings {
        ids.sort_unstable();
        ids.dedup();
        EmittedFindings(ids)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.0.binary_search(&id).is_ok()
    }
}

/// Reads `emitted-findings` (none yet: no ids).
fn read_emitted(path: &Path) -> Result<Vec<u64>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot open", path.display())),
    };
    let len = f.metadata().with_context(|| format!("{}: cannot read", path.display()))?.len();
    let mut r = BufReader::new(f);
    let mut header = [0u8; 16];
    let well_formed =
        len >= 16 && (len - 16) % 8 == 0 && r.read_exact(&mut header).is_ok() && &header == HEADER;
    if !well_formed {
        bail!(
            "{}: not a list of emitted finding ids ({len} bytes); it is written by `replay --new-only` only. \
             Move it away to start the feed afresh (every finding is then sent once more)",
            path.display()
        );
    }
    // Room for what the length promises, up to a million ids: a damaged
    // (or sparse) file's length is no reason to ask for memory up front.
    let mut ids = Vec::with_capacity(((len - 16) / 8).min(1 << 20) as usize);
    let mut id = [0u8; 8];
    for _ in 0..(len - 16) / 8 {
        r.read_exact(&mut id).with_context(|| format!("{}: cannot read", path.display()))?;
        ids.push(u64::from_le_bytes(id));
    }
    Ok(ids)
}

/// Replaces `emitted-findings` with `ids` (sorted, once each).
fn write_emitted(dir: &Path, ids: &[u64]) -> Result<()> {
    let tmp = dir.join(format!(".{EMITTED}.tmp"));
    let write = || -> std::io::Result<()> {
        let mut w = BufWriter::new(File::create(&tmp)?);
        w.write_all(HEADER)?;
        for id in ids {
            w.write_all(&id.to_le_bytes())?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        fs::rename(&tmp, dir.join(EMITTED))
    };
    write().with_context(|| format!("{}: cannot write", dir.join(EMITTED).display()))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

impl Store {
    /// The findings earlier runs marked emitted.
    pub fn emitted_findings(&self) -> Result<EmittedFindings> {
        let mut ids = read_emitted(&self.dir.join(EMITTED))?;
        ids.extend(EmittedFindings::of_hex(&self.manifest.emitted_findings));
        Ok(EmittedFindings::sorted(ids))
    }

    /// Records finding ids as emitted (call once the output is written).
    pub fn mark_emitted(&mut self, ids: impl IntoIterator<Item = u64>) -> Result<()> {
        let _lock = self.lock()?;
        // Another run may have written since this one opened the store.
        let current = Store::open(&self.dir)?;
        self.manifest = current.manifest;
        let mut all = self.emitted_findings()?.0;
        all.extend(ids);
        let all = EmittedFindings::sorted(all).0;
        write_emitted(&self.dir, &all)?;
        if !self.manifest.emitted_findings.is_empty() {
            self.manifest.emitted_findings = Vec::new();
            self.write_manifest()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(&dir.path().join("s")).unwrap();
        (dir, store)
    }

    #[test]
    fn emitted_ids_are_kept_beside_the_manifest_and_read_back_once_each() {
        let (_d, mut s) = store();
        assert!(!s.emitted_findings().unwrap().contains(7), "a new store has emitted nothing");
        s.mark_emitted([7, u64::MAX, 7, 0]).unwrap();
        s.mark_emitted([3, 7]).unwrap();
        let e = s.emitted_findings().unwrap();
        assert_eq!(e.0, [0, 3, 7, u64::MAX]);
        let on_disk = Store::open(&s.dir).unwrap();
        assert!(on_disk.manifest.emitted_findings.is_empty(), "the manifest does not grow with them");
        assert_eq!(on_disk.emitted_findings().unwrap().0, e.0);
    }

    #[test]
    fn ids_an_earlier_version_kept_in_the_manifest_still_count_and_move_to_the_file() {
        let (_d, mut s) = store();
        s.manifest.emitted_findings =
            ["00000000000000ff", "ffffffffffffffff", "00000000000000ff", "xyz", "ff"]
                .map(String::from)
                .to_vec();
        s.write_manifest().unwrap();
        let s2 = Store::open(&s.dir).unwrap();
        let e = s2.emitted_findings().unwrap();
        assert!(e.contains(0xff) && e.contains(u64::MAX));
        assert!(!e.contains(0) && !e.contains(0xfe), "what is not one of our ids matches nothing");
        s.mark_emitted([5]).unwrap();
        let s3 = Store::open(&s.dir).unwrap();
        assert!(s3.manifest.emitted_findings.is_empty());
        assert_eq!(s3.emitted_findings().unwrap().0, [5, 0xff, u64::MAX]);
    }

    #[test]
    fn a_damaged_list_of_emitted_ids_is_named_not_taken_for_empty() {
        let (_d, s) = store();
        fs::write(s.dir.join(EMITTED), b"xtenant-emitted1\x01\x02").unwrap();
        let e = s.emitted_findings().err().unwrap().to_string();
        assert!(e.contains(EMITTED) && e.contains("not a list of emitted finding ids"), "{e}");
    }
}
