//! The history store: canonical cross-tenant sign-ins and audit events in
//! Parquet files partitioned by day, so reports can reach back further
//! than the 30 days Entra keeps.
//!
//! ```text
//! STORE/
//!   manifest.json                     what is in the store (the only truth)
//!   signins/day=2026-11-19/part-<run>-<n>.parquet
//!   audit/day=2026-11-19/part-<run>-<n>.parquet
//!   emitted-findings                  ids `replay --new-only` sent (sorted u64s)
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

//!
//! The module, file by file: [`manifest`] (what the store holds, replaced
//! atomically), [`lock`] (one writer at a time), [`schema`] (the Parquet
//! columns of each table), [`reader`] (sign-ins and audit events back, by
//! day), [`writer`] (one `store add` run), [`findings`] (finding ids
//! already sent by `replay --new-only`).

mod findings;
mod lock;
mod manifest;
mod reader;
mod schema;
mod seen;
mod writer;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use serde::Serialize;

pub use lock::Lock;
pub use manifest::{Manifest, PartFile, STORE_SCHEMA_VERSION};
pub use writer::{Added, Writer};

use manifest::MANIFEST;

pub struct Store {
    pub(crate) dir: PathBuf,
    pub manifest: Manifest,
}

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
        if let Some(p) = manifest.signins.iter().chain(&manifest.audit).find(|p| !p.is_inside_store()) {
            bail!(
                "{}: the manifest lists `{}`, which is not a part file inside the store; refusing to follow it",
                path.display(),
                crate::model::text::clip(&p.path, crate::model::text::QUOTED_BYTES)
            );
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

    /// Opens the store, creating an empty one where there is none. Two
    /// runs creating the same new store race only for the lock: the loser
    /// is told another run is writing, as with any store.
    pub fn open_or_create(dir: &Path) -> Result<Store> {
        if dir.join(MANIFEST).exists() {
            return Store::open(dir);
        }
        let refuse = || {
            anyhow::anyhow!(
                "{}: the directory is not empty and holds no xtenant store; use a new directory",
                dir.display()
            )
        };
        // Before the lock only a directory that no run of ours has touched
        // is judged: once another run has made its lock file there, it can
        // publish a manifest and part files at any moment, and only the
        // check under the lock below sees a settled directory.
        if !dir.join(".lock").exists() && !holds_nothing_of_others(dir)? {
            return Err(refuse());
        }
        fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        let _lock = lock::lock_dir(dir)?;
        // Under the lock: another run may have created it in the meantime.
        if dir.join(MANIFEST).exists() {
            return Store::open(dir);
        }
        if !holds_nothing_of_others(dir)? {
            return Err(refuse());
        }
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
}

/// Whether `dir` is missing, or holds only what a store being created
/// holds (its lock file, a manifest being written).
fn holds_nothing_of_others(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(true);
    }
    let ours = [".lock".to_string(), format!(".{MANIFEST}.tmp")];
    for e in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        if !ours.contains(&e?.file_name().to_string_lossy().into_owned()) {
            return Ok(false);
        }
    }
    Ok(true)
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

#[cfg(test)]
mod tests {
    use super::schema::{signins_frame, signins_from};
    use super::*;
    use crate::model::{
        AccessType, AuditEvent, CaStatus, Clause, Device, EventType, Evidence, Guid, SignIn, Text, Texts,
        UserType, Window,
    };

    fn signin(id: &str, at: &str) -> SignIn {
        SignIn {
            texts: Texts::of(&[
                (Text::Id, id),
                (Text::UserId, "u1"),
                (Text::UserPrincipalName, "a@b.example"),
                (Text::HomeTenantName, "Alpha"),
                (Text::AppId, "app"),
                (Text::ResourceName, "res"),
                (Text::TokenIssuerType, "AzureAD"),
            ]),
            time: at.parse().unwrap(),
            event_type: EventType::NonInteractive,
            user_type: UserType::Guest,
            home_tenant: Some(Guid(1)),
            resource_tenant: Some(Guid(2)),
            log_tenant: Some(Guid(2)),
            access_type: AccessType::B2bDirectConnect,
            app_owner_tenant: Some(Guid(3)),
            resource_owner_tenant: None,
            error_code: 500213,
            ca_status: CaStatus::NotApplied,
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
        Store::open(&root).unwrap().read_signins(Window::default(), |s| back.push(s)).unwrap();
        assert_eq!(back, [a.clone(), b]);
        let since = "2026-11-20T00:00:00Z".parse().ok();
        let mut later = vec![];
        Store::open(&root)
            .unwrap()
            .read_signins(Window::new(since, None), |s| later.push(s.id().to_string()))
            .unwrap();
        assert_eq!(later, ["2"]);
        assert_eq!(Store::open(&root).unwrap().info().days.len(), 2);
    }

    #[test]
    fn audit_events_past_the_buffer_are_written_a_day_at_a_time_and_each_read_back_once() {
        // 300 events over 10 days, interleaved, 120 of them again (an
        // overlapping export), past a buffer of 8 again and again.
        let event = |i: usize| AuditEvent {
            id: format!("Directory_{i}"),
            time: format!("2026-10-{:02}T{:02}:00:00Z", 1 + i % 10, i % 24).parse().unwrap(),
            activity: "Update a partner cross-tenant access setting".into(),
            category: Some("CrossTenantAccessSettings".into()),
            result: None,
            result_reason: None,
            correlation_id: None,
            actor: Default::default(),
            log_tenant: None,
            targets: vec![],
            details: vec![],
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let mut store = Store::open_or_create(&root).unwrap();
        let mut w = Writer::begin(&mut store).unwrap().with_limits(5, 8, 3);
        for i in (0..300).chain(100..220) {
            w.add_audit(event(i)).unwrap();
        }
        let added = w.commit().unwrap();
        assert_eq!((added.audit_added, added.audit_already_stored), (300, 120));
        assert!(added.files_written > 30, "{added:?}");
        let mut back = vec![];
        let n = Store::open(&root).unwrap().read_audit(Window::default(), |e| back.push(e.id)).unwrap();
        assert_eq!(n, 300);
        back.sort();
        let mut expected: Vec<String> = (0..300).map(|i| event(i).id).collect();
        expected.sort();
        assert_eq!(back, expected);
    }

    #[test]
    fn sign_ins_of_many_days_interleaved_are_written_a_row_group_at_a_time_and_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        // 30 days, one sign-in a day in turn: past the open parts (3),
        // the buffered rows (8) and a part's rows (5) again and again.
        let rows: Vec<SignIn> = (0..400)
            .map(|i| signin(&format!("id-{i}"), &format!("2026-10-{:02}T{:02}:00:00Z", 1 + i % 30, i % 24)))
            .collect();
        let mut store = Store::open_or_create(&root).unwrap();
        let mut w = Writer::begin(&mut store).unwrap().with_limits(5, 8, 3);
        for r in &rows {
            w.add_signin(r.clone()).unwrap();
        }
        let added = w.commit().unwrap();
        assert_eq!(added.sign_ins_added, 400);
        assert!(added.files_written > 30, "{added:?}");
        let mut back = vec![];
        Store::open(&root).unwrap().read_signins(Window::default(), |s| back.push(s)).unwrap();
        // In day order, and within a day in the order they came.
        let mut expected = rows;
        expected.sort_by_key(|s| s.time.date_naive());
        assert_eq!(back, expected);
        let info = Store::open(&root).unwrap().info();
        assert_eq!(info.days.len(), 30);
    }

    #[test]
    fn each_sign_in_is_added_once_when_the_ids_of_its_days_are_written_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        // Five days interleaved, 60 sign-ins each, every one offered twice.
        let rows: Vec<SignIn> = (0..300)
            .map(|i| signin(&format!("id-{i}"), &format!("2026-10-{:02}T{:02}:00:00Z", 1 + i % 5, i % 24)))
            .collect();
        let mut store = Store::open_or_create(&root).unwrap();
        let mut w = Writer::begin(&mut store).unwrap().with_ids_in_memory(7);
        for r in rows.iter().chain(&rows[..150]) {
            w.add_signin(r.clone()).unwrap();
        }
        let added = w.commit().unwrap();
        assert_eq!((added.sign_ins_added, added.sign_ins_already_stored), (300, 150));
        // A second run: the stored ids of each day are loaded past the
        // budget too, and only the new sign-in is added.
        let mut store = Store::open(&root).unwrap();
        let mut w = Writer::begin(&mut store).unwrap().with_ids_in_memory(7);
        for r in rows.iter().rev().chain([&signin("id-new", "2026-10-03T01:00:00Z")]) {
            w.add_signin(r.clone()).unwrap();
        }
        let added = w.commit().unwrap();
        assert_eq!((added.sign_ins_added, added.sign_ins_already_stored), (1, 300));
        let mut back = 0;
        Store::open(&root).unwrap().read_signins(Window::default(), |_| back += 1).unwrap();
        assert_eq!(back, 301);
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
    fn two_runs_creating_one_new_store_race_only_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new");
        std::fs::create_dir(&root).unwrap();
        // The first run has created the directory and holds the lock.
        let held = lock::lock_dir(&root).unwrap();
        let e = Store::open_or_create(&root).err().unwrap().to_string();
        assert!(e.contains("another xtenant run is writing"), "{e}");
        drop(held);
        assert!(Store::open_or_create(&root).is_ok());
    }

    #[test]
    fn a_manifest_naming_files_outside_the_store_is_refused() {
        for path in ["../../etc/passwd", "/etc/passwd", "signins/../../x.parquet", "elsewhere/x.parquet"] {
            let dir = tempfile::tempdir().unwrap();
            let mut store = Store::open_or_create(dir.path()).unwrap();
            store.manifest.signins.push(PartFile {
                path: path.into(),
                day: "2026-11-19".parse().unwrap(),
                rows: 1,
                bytes: 1,
            });
            store.write_manifest().unwrap();
            let e = Store::open(dir.path()).err().unwrap().to_string();
            assert!(e.contains("not a part file inside the store"), "{path}: {e}");
        }
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
