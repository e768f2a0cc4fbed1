//! One `store add` run: rows buffered per day, part files written under
//! temporary names and renamed into place, all published by one manifest
//! replacement at [`Writer::commit`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::schema::{audit_frame, id_hash, signins_frame};
use super::{Lock, PartFile, Store, Table, STORE_SCHEMA_VERSION};
use crate::model::{AuditEvent, SignIn};

/// Rows buffered per day before a part file is written.
const PART_ROWS: usize = 250_000;

/// What one `store add` did.
#[derive(Debug, Default, Serialize)]
pub struct Added {
    pub sign_ins_added: u64,
    pub sign_ins_already_stored: u64,
    pub sign_ins_not_cross_tenant: u64,
    pub audit_added: u64,
    pub audit_already_stored: u64,
    pub files_written: u64,
    pub orphans_removed: u64,
}

/// One `store add` run: buffers rows per day, writes part files as they
/// fill, and publishes them all in one manifest update at [`Writer::commit`].
pub struct Writer<'s> {
    store: &'s mut Store,
    _lock: Lock,
    run: String,
    seen: HashMap<(bool, NaiveDate), HashSet<u128>>,
    signins: BTreeMap<NaiveDate, Vec<SignIn>>,
    audit: BTreeMap<NaiveDate, Vec<AuditEvent>>,
    new_parts: Vec<(Table, PartFile)>,
    pub added: Added,
}

impl<'s> Writer<'s> {
    pub fn begin(store: &'s mut Store) -> Result<Writer<'s>> {
        let lock = store.lock()?;
        // Another run may have written since this one opened the store:
        // start from the manifest as it is now, or its parts would be lost.
        store.manifest = Store::open(&store.dir)?.manifest;
        let orphans = store.remove_orphans()?;
        let run = format!("{}-{}", Utc::now().format("%Y%m%dT%H%M%S"), std::process::id());
        Ok(Writer {
            store,
            _lock: lock,
            run,
            seen: HashMap::new(),
            signins: BTreeMap::new(),
            audit: BTreeMap::new(),
            new_parts: vec![],
            added: Added { orphans_removed: orphans, ..Added::default() },
        })
    }

    fn is_new(&mut self, t: Table, day: NaiveDate, id: &str) -> Result<bool> {
        let key = (t == Table::SignIns, day);
        if !self.seen.contains_key(&key) {
            let ids = self.store.ids_of_day(t, day)?;
            self.seen.insert(key, ids);
        }
        Ok(self.seen.entry(key).or_default().insert(id_hash(id)))
    }

    /// Adds a sign-in if it is cross-tenant and not stored yet.
    pub fn add_signin(&mut self, s: SignIn) -> Result<()> {
        if !s.is_cross_tenant() {
            self.added.sign_ins_not_cross_tenant += 1;
            return Ok(());
        }
        let day = s.time.date_naive();
        if !self.is_new(Table::SignIns, day, s.id())? {
            self.added.sign_ins_already_stored += 1;
            return Ok(());
        }
        self.added.sign_ins_added += 1;
        let buf = self.signins.entry(day).or_default();
        buf.push(s);
        if buf.len() >= PART_ROWS {
            let rows = std::mem::take(buf);
            self.write_part(Table::SignIns, day, signins_frame(&rows)?)?;
        }
        Ok(())
    }

    pub fn add_audit(&mut self, e: AuditEvent) -> Result<()> {
        let day = e.time.date_naive();
        let id = if e.id.is_empty() {
            format!("{}|{}", e.time.timestamp_millis(), e.activity)
        } else {
            e.id.clone()
        };
        if !self.is_new(Table::Audit, day, &id)? {
            self.added.audit_already_stored += 1;
            return Ok(());
        }
        self.added.audit_added += 1;
        self.audit.entry(day).or_default().push(AuditEvent { id, ..e });
        Ok(())
    }

    fn write_part(&mut self, t: Table, day: NaiveDate, mut df: DataFrame) -> Result<()> {
        let n = self.new_parts.len();
        let rel = format!("{}/day={day}/part-{}-{n:04}.parquet", t.folder(), self.run);
        let path = self.store.dir.join(&rel);
        fs::create_dir_all(path.parent().expect("has a parent"))?;
        let tmp = path.with_extension("parquet.tmp");
        let mut f = File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
        ParquetWriter::new(&mut f).with_compression(ParquetCompression::Zstd(None)).finish(&mut df)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        let bytes = fs::metadata(&path)?.len();
        self.added.files_written += 1;
        self.new_parts.push((t, PartFile { path: rel, day, rows: df.height() as u64, bytes }));
        Ok(())
    }

    /// Writes what is buffered and publishes the run's files.
    pub fn commit(mut self) -> Result<Added> {
        for (day, rows) in std::mem::take(&mut self.signins) {
            if !rows.is_empty() {
                self.write_part(Table::SignIns, day, signins_frame(&rows)?)?;
            }
        }
        for (day, rows) in std::mem::take(&mut self.audit) {
            self.write_part(Table::Audit, day, audit_frame(&rows)?)?;
        }
        for (t, p) in std::mem::take(&mut self.new_parts) {
            match t {
                Table::SignIns => self.store.manifest.signins.push(p),
                Table::Audit => self.store.manifest.audit.push(p),
            }
        }
        if std::env::var_os("XTENANT_TEST_DIE_BEFORE_MANIFEST").is_some() {
            // For the crash-safety test: die with the part files written
            // and the manifest not yet replaced.
            std::process::abort();
        }
        // Parts of every version are read; the manifest says the newest written.
        self.store.manifest.schema_version = self.store.manifest.schema_version.max(STORE_SCHEMA_VERSION);
        self.store.write_manifest()?;
        Ok(std::mem::take(&mut self.added))
    }
}

impl Store {
    /// Deletes part files no manifest lists (left by a killed run).
    fn remove_orphans(&self) -> Result<u64> {
        let listed: HashSet<PathBuf> = self
            .manifest
            .signins
            .iter()
            .chain(&self.manifest.audit)
            .map(|p| self.dir.join(&p.path))
            .collect();
        let mut removed = 0;
        for t in [Table::SignIns, Table::Audit] {
            let root = self.dir.join(t.folder());
            if !root.exists() {
                continue;
            }
            for f in crate::files::files_under(&root)? {
                if !listed.contains(&f) {
                    fs::remove_file(&f)?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}
