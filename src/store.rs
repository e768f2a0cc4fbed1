//! The history store: canonical cross-tenant sign-ins and audit events in
//! Parquet files partitioned by day, so reports can reach back further
//! than the 30 days Entra keeps.
//!
//! ```text
//! STORE/
//!   manifest.json                     what is in the store (the only truth)
//!   signins/day=2026-11-19/part-<run>-<n>.parquet
//!   audit/day=2026-11-19/part-<run>-<n>.parquet
//!   .lock                             held (flock) by the one run writing
//! ```
//!
//! Safe under failure: a run writes its part files under temporary names,
//! renames them into place, and only then replaces the manifest
//! (temporary file, fsync, rename). Readers read only the files the
//! manifest lists, so a run killed at any point leaves the store as it was
//! before the run; the next run deletes files no manifest lists. Runs that
//! write are serialized by an advisory lock the operating system releases
//! when the process dies. Each sign-in id is stored once: a run loads the
//! ids of the days it touches and skips those already there.
//! Schema: docs/store.md.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::model::{
    AccessType, AuditEvent, CaStatus, Clause, Device, EventType, Evidence, Guid, SignIn, UserType,
};

/// Bumped on any change to the files' columns or the manifest.
pub const STORE_SCHEMA_VERSION: u32 = 2;
const MANIFEST: &str = "manifest.json";
/// Rows buffered per day before a part file is written.
const PART_ROWS: usize = 250_000;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartFile {
    /// Relative to the store.
    pub path: String,
    pub day: NaiveDate,
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct Manifest {
    pub kind: String,
    pub schema_version: u32,
    pub signins: Vec<PartFile>,
    pub audit: Vec<PartFile>,
    /// `replay --new-only`: finding ids already emitted.
    #[serde(default)]
    pub emitted_findings: Vec<String>,
}

pub struct Store {
    dir: PathBuf,
    pub manifest: Manifest,
}

/// Held while a run writes; released on drop or when the process dies.
pub struct Lock(#[allow(dead_code)] File);

#[derive(Copy, Clone, PartialEq)]
enum Table {
    SignIns,
    Audit,
}

impl Table {
    fn folder(self) -> &'static str {
        match self {
            Table::SignIns => "signins",
            Table::Audit => "audit",
        }
    }
}

impl Store {
    /// Opens an existing store; refuses a directory that is not one, or a
    /// store of a newer schema.
    pub fn open(dir: &Path) -> Result<Store> {
        let path = dir.join(MANIFEST);
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: not an xtenant store (no {MANIFEST}); create one with `xtenant store add --store {}`",
                dir.display(),
                dir.display()
            )
        })?;
        let manifest: Manifest = serde_json::from_str(&text)
            .with_context(|| format!("{}: unreadable manifest", path.display()))?;
        if manifest.kind != "xtenant-store" {
            bail!("{}: not an xtenant store manifest", path.display());
        }
        if manifest.schema_version > STORE_SCHEMA_VERSION {
            bail!(
                "{}: store schema version {} is newer than this xtenant reads ({STORE_SCHEMA_VERSION}); upgrade xtenant",
                dir.display(),
                manifest.schema_version
            );
        }
        Ok(Store { dir: dir.to_path_buf(), manifest })
    }

    /// Opens the store, creating an empty one where there is none.
    pub fn open_or_create(dir: &Path) -> Result<Store> {
        if dir.join(MANIFEST).exists() {
            return Store::open(dir);
        }
        if dir.exists() && fs::read_dir(dir)?.next().is_some() {
            bail!(
                "{}: the directory is not empty and holds no xtenant store; use a new directory",
                dir.display()
            );
        }
        fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        let store = Store {
            dir: dir.to_path_buf(),
            manifest: Manifest {
                kind: "xtenant-store".into(),
                schema_version: STORE_SCHEMA_VERSION,
                ..Manifest::default()
            },
        };
        store.write_manifest()?;
        Ok(store)
    }

    /// Takes the writers' lock, or says who holds it.
    pub fn lock(&self) -> Result<Lock> {
        let path = self.dir.join(".lock");
        let f = File::options().create(true).truncate(false).write(true).open(&path)?;
        match f.try_lock() {
            Ok(()) => Ok(Lock(f)),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "{}: another xtenant run is writing to this store; wait for it to finish (the lock is released when it exits)",
                self.dir.display()
            ),
            Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("{}: cannot lock", path.display())),
        }
    }

    fn write_manifest(&self) -> Result<()> {
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

    fn parts(&self, t: Table) -> &[PartFile] {
        match t {
            Table::SignIns => &self.manifest.signins,
            Table::Audit => &self.manifest.audit,
        }
    }

    /// Days covered, rows and bytes.
    pub fn info(&self) -> Info {
        let mut days: BTreeMap<NaiveDate, (u64, u64)> = BTreeMap::new();
        for p in &self.manifest.signins {
            let d = days.entry(p.day).or_default();
            d.0 += p.rows;
            d.1 += p.bytes;
        }
        Info {
            schema_version: self.manifest.schema_version,
            sign_in_rows: self.manifest.signins.iter().map(|p| p.rows).sum(),
            audit_rows: self.manifest.audit.iter().map(|p| p.rows).sum(),
            bytes: self.manifest.signins.iter().chain(&self.manifest.audit).map(|p| p.bytes).sum(),
            files: (self.manifest.signins.len() + self.manifest.audit.len()) as u64,
            first_day: days.keys().next().copied(),
            last_day: days.keys().next_back().copied(),
            days: days.into_iter().map(|(d, (rows, bytes))| DayInfo { day: d, rows, bytes }).collect(),
        }
    }

    /// Ids already stored for `day`, hashed: 16 bytes each whatever the
    /// id's length, so a month of a large tenant's ids fits in memory.
    fn ids_of_day(&self, t: Table, day: NaiveDate) -> Result<HashSet<u128>> {
        let mut ids = HashSet::new();
        for p in self.parts(t).iter().filter(|p| p.day == day) {
            let df = read_parquet(&self.dir.join(&p.path), Some(vec!["id".into()]))?;
            for id in df.column("id")?.str()?.iter().flatten() {
                ids.insert(id_hash(id));
            }
        }
        Ok(ids)
    }

    /// Reads the stored sign-ins of days in `[since, until)`, in day order.
    pub fn read_signins(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        mut sink: impl FnMut(SignIn),
    ) -> Result<u64> {
        let mut n = 0;
        for p in self.selected(Table::SignIns, since, until) {
            let path = self.dir.join(&p.path);
            let df = read_parquet(&path, None)?;
            for s in
                signins_from(&df).with_context(|| format!("{}: not a sign-in part file", path.display()))?
            {
                if since.is_none_or(|x| s.time >= x) && until.is_none_or(|x| s.time < x) {
                    n += 1;
                    sink(s);
                }
            }
        }
        Ok(n)
    }

    /// Reads the stored audit events of days in `[since, until)`.
    pub fn read_audit(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>> {
        let mut out = vec![];
        for p in self.selected(Table::Audit, since, until) {
            let path = self.dir.join(&p.path);
            let df = read_parquet(&path, Some(vec!["event".into()]))?;
            for text in df.column("event")?.str()?.iter().flatten() {
                let e: AuditEvent = serde_json::from_str(text)
                    .with_context(|| format!("{}: an unreadable audit event", path.display()))?;
                if since.is_none_or(|x| e.time >= x) && until.is_none_or(|x| e.time < x) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    fn selected(
        &self,
        t: Table,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Vec<&PartFile> {
        let mut v: Vec<&PartFile> = self
            .parts(t)
            .iter()
            .filter(|p| {
                since.is_none_or(|s| p.day >= s.date_naive()) && until.is_none_or(|u| p.day <= u.date_naive())
            })
            .collect();
        v.sort_by(|a, b| (a.day, &a.path).cmp(&(b.day, &b.path)));
        v
    }

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

#[derive(Debug, Serialize)]
pub struct Info {
    pub schema_version: u32,
    pub sign_in_rows: u64,
    pub audit_rows: u64,
    pub bytes: u64,
    pub files: u64,
    pub first_day: Option<NaiveDate>,
    pub last_day: Option<NaiveDate>,
    pub days: Vec<DayInfo>,
}

#[derive(Debug, Serialize)]
pub struct DayInfo {
    pub day: NaiveDate,
    pub rows: u64,
    pub bytes: u64,
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
    seen: HashMap<(bool, NaiveDate), HashSet<u128>>,
    signins: BTreeMap<NaiveDate, Vec<SignIn>>,
    audit: BTreeMap<NaiveDate, Vec<AuditEvent>>,
    new_parts: Vec<(Table, PartFile)>,
    pub added: Added,
}

impl<'s> Writer<'s> {
    pub fn begin(store: &'s mut Store) -> Result<Writer<'s>> {
        let lock = store.lock()?;
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
        if !self.is_new(Table::SignIns, day, &s.id)? {
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

fn id_hash(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

fn read_parquet(path: &Path, columns: Option<Vec<String>>) -> Result<DataFrame> {
    let f = File::open(path)
        .with_context(|| format!("{}: listed in the manifest but cannot be read", path.display()))?;
    anyhow::Context::with_context(ParquetReader::new(f).with_columns(columns).finish(), || {
        format!("{}: unreadable Parquet", path.display())
    })
}

fn opt_str<'a>(v: impl Iterator<Item = Option<&'a str>>) -> Vec<Option<&'a str>> {
    v.collect()
}

/// The sign-in part file's columns (schema version 2, docs/store.md).
fn signins_frame(rows: &[SignIn]) -> Result<DataFrame> {
    let s = |f: fn(&SignIn) -> Option<&str>| opt_str(rows.iter().map(f));
    let owned = |f: fn(&SignIn) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let flag = |f: fn(&Evidence) -> bool| rows.iter().map(|r| f(&r.evidence)).collect::<Vec<bool>>();
    let time: Vec<i64> = rows.iter().map(|r| r.time.timestamp_millis()).collect();
    let time = Column::new("time".into(), time).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?;
    let columns = vec![
        Column::new("id".into(), rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()),
        time,
        Column::new("event_type".into(), rows.iter().map(|r| r.event_type.as_str()).collect::<Vec<_>>()),
        Column::new("user_id".into(), s(|r| r.user_id.as_deref())),
        Column::new("user_principal_name".into(), s(|r| r.user_principal_name.as_deref())),
        Column::new("user_type".into(), rows.iter().map(|r| r.user_type.as_str()).collect::<Vec<_>>()),
        Column::new("home_tenant_id".into(), owned(|r| r.home_tenant.map(|g| g.to_string()))),
        Column::new("home_tenant_name".into(), s(|r| r.home_tenant_name.as_deref())),
        Column::new("resource_tenant_id".into(), owned(|r| r.resource_tenant.map(|g| g.to_string()))),
        Column::new("log_tenant_id".into(), owned(|r| r.log_tenant.map(|g| g.to_string()))),
        Column::new("access_type".into(), rows.iter().map(|r| r.access_type.as_str()).collect::<Vec<_>>()),
        Column::new("app_id".into(), s(|r| r.app_id.as_deref())),
        Column::new("app_name".into(), s(|r| r.app_name.as_deref())),
        Column::new("app_owner_tenant_id".into(), owned(|r| r.app_owner_tenant.map(|g| g.to_string()))),
        Column::new("resource_id".into(), s(|r| r.resource_id.as_deref())),
        Column::new("resource_name".into(), s(|r| r.resource_name.as_deref())),
        Column::new(
            "resource_owner_tenant_id".into(),
            owned(|r| r.resource_owner_tenant.map(|g| g.to_string())),
        ),
        Column::new("error_code".into(), rows.iter().map(|r| r.error_code).collect::<Vec<u32>>()),
        Column::new("ca_status".into(), rows.iter().map(|r| r.ca_status.as_str()).collect::<Vec<_>>()),
        Column::new("token_issuer_type".into(), s(|r| r.token_issuer_type.as_deref())),
        Column::new("mfa_required".into(), flag(|e| e.mfa_required)),
        Column::new("mfa_by_claim".into(), flag(|e| e.mfa_by_claim)),
        Column::new("compliant_device_required".into(), flag(|e| e.compliant_device_required)),
        Column::new("hybrid_join_required".into(), flag(|e| e.hybrid_join_required)),
        Column::new("ca_details".into(), flag(|e| e.ca_details)),
        Column::new(
            "grant_clauses".into(),
            owned(|r| (!r.evidence.clauses.is_empty()).then(|| Clause::list_text(&r.evidence.clauses))),
        ),
        Column::new("device_compliant".into(), rows.iter().map(|r| r.device.compliant).collect::<Vec<_>>()),
        Column::new("device_managed".into(), rows.iter().map(|r| r.device.managed).collect::<Vec<_>>()),
        Column::new("device_trust_type".into(), s(|r| r.device.trust_type.as_deref())),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

fn signins_from(df: &DataFrame) -> Result<Vec<SignIn>> {
    let text = |name: &str| -> Result<Vec<Option<String>>> {
        Ok(df.column(name)?.str()?.iter().map(|v| v.map(str::to_string)).collect())
    };
    let flags = |name: &str| -> Result<Vec<Option<bool>>> { Ok(df.column(name)?.bool()?.iter().collect()) };
    // Columns schema version 2 added: absent from version 1 part files.
    let newer = |name: &str| -> Result<Vec<Option<String>>> {
        if df.get_column_names().iter().any(|c| c.as_str() == name) {
            text(name)
        } else {
            Ok(vec![None; df.height()])
        }
    };
    let (app_owner, res_owner, clauses) =
        (newer("app_owner_tenant_id")?, newer("resource_owner_tenant_id")?, newer("grant_clauses")?);
    let guid = |v: &Option<String>| v.as_deref().and_then(Guid::parse);
    let times: Vec<Option<i64>> = df.column("time")?.cast(&DataType::Int64)?.i64()?.iter().collect();
    let codes: Vec<Option<u32>> = df.column("error_code")?.u32()?.iter().collect();
    let (id, event_type, user_id, upn, user_type) = (
        text("id")?,
        text("event_type")?,
        text("user_id")?,
        text("user_principal_name")?,
        text("user_type")?,
    );
    let (home, home_name, resource, log) = (
        text("home_tenant_id")?,
        text("home_tenant_name")?,
        text("resource_tenant_id")?,
        text("log_tenant_id")?,
    );
    let (access, app_id, app_name, res_id, res_name) = (
        text("access_type")?,
        text("app_id")?,
        text("app_name")?,
        text("resource_id")?,
        text("resource_name")?,
    );
    let (ca, issuer, trust) = (text("ca_status")?, text("token_issuer_type")?, text("device_trust_type")?);
    let (mfa, claim, compliant_req, hybrid_req, details) = (
        flags("mfa_required")?,
        flags("mfa_by_claim")?,
        flags("compliant_device_required")?,
        flags("hybrid_join_required")?,
        flags("ca_details")?,
    );
    let (compliant, managed) = (flags("device_compliant")?, flags("device_managed")?);
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let Some(ms) = times[i] else { bail!("row {i}: no time") };
        out.push(SignIn {
            id: id[i].clone().unwrap_or_default(),
            time: DateTime::from_timestamp_millis(ms).context("time out of range")?,
            event_type: event_type[i].as_deref().and_then(EventType::from_name).unwrap_or(EventType::Unknown),
            user_id: user_id[i].clone(),
            user_principal_name: upn[i].clone(),
            user_type: UserType::parse(user_type[i].as_deref().unwrap_or("")),
            home_tenant: guid(&home[i]),
            home_tenant_name: home_name[i].clone(),
            resource_tenant: guid(&resource[i]),
            log_tenant: guid(&log[i]),
            access_type: AccessType::parse(access[i].as_deref().unwrap_or("")),
            app_id: app_id[i].clone(),
            app_name: app_name[i].clone(),
            app_owner_tenant: guid(&app_owner[i]),
            resource_id: res_id[i].clone(),
            resource_name: res_name[i].clone(),
            resource_owner_tenant: guid(&res_owner[i]),
            error_code: codes[i].unwrap_or_default(),
            ca_status: CaStatus::parse(ca[i].as_deref().unwrap_or("")),
            token_issuer_type: issuer[i].clone(),
            evidence: Evidence {
                mfa_required: mfa[i].unwrap_or_default(),
                mfa_by_claim: claim[i].unwrap_or_default(),
                compliant_device_required: compliant_req[i].unwrap_or_default(),
                hybrid_join_required: hybrid_req[i].unwrap_or_default(),
                ca_details: details[i].unwrap_or_default(),
                clauses: match clauses[i].as_deref() {
                    Some(t) => {
                        Clause::parse_list(t).map_err(|e| anyhow::anyhow!("row {i}: grant_clauses: {e}"))?
                    }
                    None => Vec::new(),
                },
            },
            device: Device { compliant: compliant[i], managed: managed[i], trust_type: trust[i].clone() },
        });
    }
    Ok(out)
}

/// Audit part files: id, time, activity, category and the canonical event
/// as JSON (its nested targets have no fixed columns).
fn audit_frame(rows: &[AuditEvent]) -> Result<DataFrame> {
    let time: Vec<i64> = rows.iter().map(|r| r.time.timestamp_millis()).collect();
    let events: Vec<String> = rows.iter().map(serde_json::to_string).collect::<Result<_, _>>()?;
    let columns = vec![
        Column::new("id".into(), rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>()),
        Column::new("time".into(), time).cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?,
        Column::new("activity".into(), rows.iter().map(|r| r.activity.as_str()).collect::<Vec<_>>()),
        Column::new("category".into(), opt_str(rows.iter().map(|r| r.category.as_deref()))),
        Column::new("event".into(), events),
    ];
    Ok(DataFrame::new(rows.len(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signin(id: &str, at: &str) -> SignIn {
        SignIn {
            id: id.into(),
            time: at.parse().unwrap(),
            event_type: EventType::NonInteractive,
            user_id: Some("u1".into()),
            user_principal_name: Some("a@b.example".into()),
            user_type: UserType::Guest,
            home_tenant: Some(Guid(1)),
            home_tenant_name: Some("Alpha".into()),
            resource_tenant: Some(Guid(2)),
            log_tenant: Some(Guid(2)),
            access_type: AccessType::B2bDirectConnect,
            app_id: Some("app".into()),
            app_name: None,
            app_owner_tenant: Some(Guid(3)),
            resource_id: None,
            resource_name: Some("res".into()),
            resource_owner_tenant: None,
            error_code: 500213,
            ca_status: CaStatus::NotApplied,
            token_issuer_type: Some("AzureAD".into()),
            evidence: Evidence {
                mfa_required: true,
                ca_details: true,
                clauses: vec![Clause::parse("-:compliantDevice+mfa").unwrap()],
                ..Evidence::default()
            },
            device: Device { compliant: Some(true), managed: None, trust_type: None },
        }
    }

    #[test]
    fn sign_ins_round_trip_through_parquet_and_dedup_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let a = signin("1", "2026-11-19T10:00:00.123Z");
        let b = signin("2", "2026-11-20T10:00:00Z");
        let mut store = Store::open_or_create(&root).unwrap();
        let mut w = Writer::begin(&mut store).unwrap();
        w.add_signin(a.clone()).unwrap();
        w.add_signin(b.clone()).unwrap();
        w.add_signin(a.clone()).unwrap();
        let added = w.commit().unwrap();
        assert_eq!((added.sign_ins_added, added.sign_ins_already_stored), (2, 1));
        let mut store = Store::open(&root).unwrap();
        let mut w = Writer::begin(&mut store).unwrap();
        w.add_signin(b.clone()).unwrap();
        assert_eq!(w.commit().unwrap().sign_ins_added, 0);
        let mut back = vec![];
        Store::open(&root).unwrap().read_signins(None, None, |s| back.push(s)).unwrap();
        assert_eq!(back, [a.clone(), b]);
        let since = "2026-11-20T00:00:00Z".parse().ok();
        let mut later = vec![];
        Store::open(&root).unwrap().read_signins(since, None, |s| later.push(s.id)).unwrap();
        assert_eq!(later, ["2"]);
        assert_eq!(Store::open(&root).unwrap().info().days.len(), 2);
    }

    #[test]
    fn version_1_part_files_without_owners_or_clauses_still_read() {
        let a = signin("1", "2026-11-19T10:00:00Z");
        let v1 = signins_frame(std::slice::from_ref(&a)).unwrap().drop_many([
            "app_owner_tenant_id",
            "resource_owner_tenant_id",
            "grant_clauses",
        ]);
        let back = signins_from(&v1).unwrap();
        assert_eq!(back[0].app_owner_tenant, None);
        assert!(back[0].evidence.clauses.is_empty());
        assert_eq!(back[0].evidence.mfa_required, a.evidence.mfa_required);
    }

    #[test]
    fn a_second_writer_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_or_create(dir.path()).unwrap();
        let other = Store::open(dir.path()).unwrap();
        let _w = Writer::begin(&mut store).unwrap();
        let e = other.lock().err().unwrap().to_string();
        assert!(e.contains("another xtenant run is writing"), "{e}");
    }

    #[test]
    fn newer_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open_or_create(dir.path()).unwrap();
        store.manifest.schema_version = STORE_SCHEMA_VERSION + 1;
        store.write_manifest().unwrap();
        let e = Store::open(dir.path()).err().unwrap().to_string();
        assert!(e.contains("newer than this xtenant reads"), "{e}");
    }
}
