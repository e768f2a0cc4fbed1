//! `manifest.json`: the list of part files that make up the store, the
//! only truth readers trust. Replaced atomically (temporary file, fsync,
//! rename), so a run killed at any point leaves the previous one.

use std::fs::{self, File};
use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::Store;

/// Bumped on any change to the files' columns or the manifest.
pub const STORE_SCHEMA_VERSION: u32 = 2;
pub(super) const MANIFEST: &str = "manifest.json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartFile {
    /// Relative to the store.
    pub path: String,
    pub day: NaiveDate,
    pub rows: u64,
    pub bytes: u64,
}

impl PartFile {
    /// Whether the path names a file under the store's `signins/` or
    /// `audit/` folder: a manifest is a file anyone may have edited, and a
    /// reader must not be led outside the store by it.
    pub fn is_inside_store(&self) -> bool {
        let p = std::path::Path::new(&self.path);
        let mut parts = p.components();
        matches!(parts.next(), Some(std::path::Component::Normal(top)) if top == "signins" || top == "audit")
            && parts.all(|c| matches!(c, std::path::Component::Normal(_)))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct Manifest {
    pub kind: String,
    pub schema_version: u32,
    pub signins: Vec<PartFile>,
    pub audit: Vec<PartFile>,
    /// `replay --new-only`'s finding ids, as stores before `emitted-findings`
    /// listed them (see [`super::findings`]); moved to that file by the next
    /// `--new-only` run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emitted_findings: Vec<String>,
}

impl Store {
    pub(super) fn write_manifest(&self) -> Result<()> {
        let tmp = self.dir.join(format!(".{MANIFEST}.tmp"));
        let mut f = File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, &self.manifest)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, self.dir.join(MANIFEST))?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
