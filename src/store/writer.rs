//! One `store add` run: rows buffered per day, part files written under
//! temporary names and renamed into place, all published by one manifest
//! replacement at [`Writer::commit`].
//!
//! Memory does not grow with the rows added: a day's part file stays open
//! and takes its rows a row group at a time, and the rows buffered across
//! all days are held to a bound ([`LIMITS`]: the fullest day's written out
//! when they reach it), whatever order the days come in; audit events
//! too (the fullest day's written as a part of its own). A 30-day export
//! of a million sign-ins held every one of them (750 MB). Nor with the ids
//! met, which tell a sign-in stored already: past a budget they go to a
//! temporary folder ([`super::seen`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{NaiveDate, Utc};
use polars::prelude::*;
use serde::Serialize;

use super::schema::{audit_frame, id_hash, signins_frame};
use super::seen::{Seen, IDS_IN_MEMORY};
use super::{Lock, PartFile, Store, Table, STORE_SCHEMA_VERSION};
use crate::model::{AuditEvent, SignIn};

/// How much a run holds before it writes.
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Rows a part file holds before it is finished and the day's next
    /// rows start another.
    part_rows: u64,
    /// Row groups a part file holds before it is finished: the writer
    /// keeps each one's description (its columns' offsets and statistics)
    /// until the file is, and days that come interleaved make row groups
    /// of a few thousand rows.
    part_row_groups: u64,
    /// Sign-ins buffered across all days before the fullest day's are
    /// written to its part file as a row group.
    buffered_rows: usize,
    /// Audit events buffered across all days at most: past them the
    /// fullest day's are written out as a part of their own (an audit
    /// trail of 300,000 changes held every one of them, 580 MB).
    buffered_audit: usize,
    /// Part files open at once, a day each: past them the one written to
    /// least recently is finished (an export whose days come interleaved,
    /// not in runs as Entra writes them, then makes more, smaller parts).
    open_parts: usize,
}

/// Some 50 MB of sign-ins and 30 MB of audit events buffered, 32 files
/// open.
const LIMITS: Limits = Limits {
    part_rows: 250_000,
    part_row_groups: 8,
    buffered_rows: 65_536,
    buffered_audit: 16_384,
    open_parts: 32,
};

/// How part files are written: Zstandard.
fn parquet_writer<W: std::io::Write>(w: W) -> ParquetWriter<W> {
    ParquetWriter::new(w).with_compression(ParquetCompression::Zstd(None))
}

/// A day's part file being written: its rows go in a row group at a time.
struct OpenPart {
    rel: String,
    path: PathBuf,
    tmp: PathBuf,
    /// The file again, to sync once the writer has finished it.
    file: File,
    writer: BatchedWriter<File>,
    rows: u64,
    row_groups: u64,
    /// When it was last written to ([`Writer::tick`]).
    used: u64,
}

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
    /// The ids of the days touched, stored and added ([`Seen`]).
    seen: Seen,
    signins: BTreeMap<NaiveDate, Vec<SignIn>>,
    /// The rows `signins` holds.
    buffered: usize,
    open: BTreeMap<NaiveDate, OpenPart>,
    /// Row groups written: the clock of [`OpenPart::used`].
    tick: u64,
    limits: Limits,
    audit: BTreeMap<NaiveDate, Vec<AuditEvent>>,
    /// The events `audit` holds.
    audit_buffered: usize,
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
            seen: Seen::new(IDS_IN_MEMORY),
            signins: BTreeMap::new(),
            buffered: 0,
            open: BTreeMap::new(),
            tick: 0,
            limits: LIMITS,
            audit: BTreeMap::new(),
            audit_buffered: 0,
            new_parts: vec![],
            added: Added { orphans_removed: orphans, ..Added::default() },
        })
    }

    /// Writes sooner than [`LIMITS`]: for tests of many parts from few rows.
    #[cfg(test)]
    pub(super) fn with_limits(mut self, part_rows: u64, buffered_rows: usize, open_parts: usize) -> Self {
        self.limits = Limits {
            part_rows,
            part_row_groups: LIMITS.part_row_groups,
            buffered_rows,
            buffered_audit: buffered_rows,
            open_parts,
        };
        self
    }

    /// Holds fewer ids in memory than [`IDS_IN_MEMORY`]: for tests of ids
    /// written out.
    #[cfg(test)]
    pub(super) fn with_ids_in_memory(mut self, ids: usize) -> Self {
        self.seen = Seen::new(ids);
        self
    }

    fn is_new(&mut self, t: Table, day: NaiveDate, id: &str) -> Result<bool> {
        let key = (t == Table::SignIns, day);
        if !self.seen.knows(key) {
            self.seen.begin(key);
            let seen = &mut self.seen;
            self.store.each_id_of_day(t, day, |id| seen.add_stored(key, id))?;
        }
        self.seen.insert(key, id_hash(id))
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
        self.signins.entry(day).or_default().push(s);
        self.buffered += 1;
        if self.buffered >= self.limits.buffered_rows {
            let fullest = self.signins.iter().max_by_key(|(_, rows)| rows.len()).map(|(day, _)| *day);
            if let Some(day) = fullest {
                self.write_rows(day)?;
            }
        }
        Ok(())
    }

    /// Writes the rows buffered for `day` as a row group of its part file
    /// (opened if it is not), finished once it holds [`Limits::part_rows`].
    fn write_rows(&mut self, day: NaiveDate) -> Result<()> {
        let rows = self.signins.remove(&day).unwrap_or_default();
        if rows.is_empty() {
            return Ok(());
        }
        self.buffered -= rows.len();
        let frame = signins_frame(&rows)?;
        drop(rows);
        if !self.open.contains_key(&day) {
            if self.open.len() >= self.limits.open_parts {
                let stalest = self.open.iter().min_by_key(|(_, p)| p.used).map(|(day, _)| *day);
                if let Some(stalest) = stalest {
                    self.finish_part(stalest)?;
                }
            }
            let part = self.open_part(Table::SignIns, day, &frame)?;
            self.open.insert(day, part);
        }
        self.tick += 1;
        let part = self.open.get_mut(&day).expect("opened above");
        part.writer.write_batch(&frame)?;
        part.rows += frame.height() as u64;
        part.row_groups += 1;
        part.used = self.tick;
        if part.rows >= self.limits.part_rows || part.row_groups >= self.limits.part_row_groups {
            self.finish_part(day)?;
        }
        Ok(())
    }

    /// The next part file's name in the store, its path, and the
    /// temporary path it is written at. Numbered in the order the run opens
    /// parts, six digits wide: a reader takes a day's parts in the order of
    /// their names, which must be the order their rows came in (four
    /// digits put part 10000 before 9999).
    fn next_part(&self, t: Table, day: NaiveDate) -> Result<(String, PathBuf, PathBuf)> {
        let n = self.new_parts.len() + self.open.len();
        let rel = format!("{}/day={day}/part-{}-{n:06}.parquet", t.folder(), self.run);
        let path = self.store.dir.join(&rel);
        fs::create_dir_all(path.parent().expect("has a parent"))?;
        let tmp = path.with_extension("parquet.tmp");
        Ok((rel, path, tmp))
    }

    fn open_part(&mut self, t: Table, day: NaiveDate, frame: &DataFrame) -> Result<OpenPart> {
        let (rel, path, tmp) = self.next_part(t, day)?;
        let file = File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
        let writer = parquet_writer(file.try_clone()?).batched(frame.schema())?;
        Ok(OpenPart { rel, path, tmp, file, writer, rows: 0, row_groups: 0, used: 0 })
    }

    /// Finishes `day`'s open part file and puts it in place, to be listed
    /// by the manifest at [`Writer::commit`].
    fn finish_part(&mut self, day: NaiveDate) -> Result<()> {
        let Some(part) = self.open.remove(&day) else { return Ok(()) };
        part.writer.finish()?;
        part.file.sync_all()?;
        fs::rename(&part.tmp, &part.path)?;
        let bytes = fs::metadata(&part.path)?.len();
        self.added.files_written += 1;
        let file = PartFile { path: part.rel, day, rows: part.rows, bytes };
        self.new_parts.push((Table::SignIns, file));
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
        self.audit_buffered += 1;
        if self.audit_buffered >= self.limits.buffered_audit {
            self.write_fullest_audit_day()?;
        }
        Ok(())
    }

    /// Writes the audit events of the day that holds the most as a part.
    fn write_fullest_audit_day(&mut self) -> Result<()> {
        let Some(day) = self.audit.iter().max_by_key(|(_, rows)| rows.len()).map(|(day, _)| *day) else {
            return Ok(());
        };
        let rows = self.audit.remove(&day).unwrap_or_default();
        self.audit_buffered -= rows.len();
        self.write_part(Table::Audit, day, audit_frame(&rows)?)
    }

    fn write_part(&mut self, t: Table, day: NaiveDate, mut df: DataFrame) -> Result<()> {
        let (rel, path, tmp) = self.next_part(t, day)?;
        let mut f = File::create(&tmp).with_context(|| format!("{}: cannot create", tmp.display()))?;
        parquet_writer(&mut f).finish(&mut df)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        let bytes = fs::metadata(&path)?.len();
        self.added.files_written += 1;
        self.new_parts.push((t, PartFile { path: rel, day, rows: df.height() as u64, bytes }));
        Ok(())
    }

    /// Writes what is buffered and publishes the run's files.
    pub fn commit(mut self) -> Result<Added> {
        let days: BTreeSet<NaiveDate> = self.signins.keys().chain(self.open.keys()).copied().collect();
        for day in days {
            self.write_rows(day)?;
            self.finish_part(day)?;
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
