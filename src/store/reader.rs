//! Reading back: sign-ins and audit events of the days asked for, and the
//! ids a day already holds (for dedup on write).

use anyhow::{Context, Result};
use chrono::NaiveDate;

use super::schema::{id_hash, read_parquet, signins_from};
use super::{PartFile, Store, Table};
use crate::model::{AuditEvent, SignIn, Window};

/// Sign-ins made from a part file's columns at a time.
const SLICE: usize = 8192;

impl Store {
    /// Hands `f` each id already stored for `day`, hashed: 16 bytes each
    /// whatever the id's length ([`super::seen`] keeps them).
    pub(super) fn each_id_of_day(
        &self,
        t: Table,
        day: NaiveDate,
        mut f: impl FnMut(u128) -> Result<()>,
    ) -> Result<()> {
        for p in self.parts(t).iter().filter(|p| p.day == day) {
            let df = read_parquet(&self.dir.join(&p.path), Some(vec!["id".into()]))?;
            for id in df.column("id")?.str()?.iter().flatten() {
                f(id_hash(id))?;
            }
        }
        Ok(())
    }

    /// Reads the stored sign-ins in `window`, in day order. A part file's
    /// columns are read whole, its sign-ins made [`SLICE`] at a time: a
    /// part of 250,000 made at once held them all beside the columns.
    pub fn read_signins(&self, window: Window, mut sink: impl FnMut(SignIn)) -> Result<u64> {
        let mut n = 0;
        for p in self.selected(Table::SignIns, window) {
            let path = self.dir.join(&p.path);
            let df = read_parquet(&path, None)?;
            for offset in (0..df.height()).step_by(SLICE) {
                let slice = df.slice(offset as i64, SLICE);
                let rows = signins_from(&slice)
                    .with_context(|| format!("{}: not a sign-in part file", path.display()))?;
                for s in rows {
                    if window.contains(s.time) {
                        n += 1;
                        sink(s);
                    }
                }
            }
        }
        Ok(n)
    }

    /// Hands each stored audit event in `window` to `sink`, a day's file
    /// at a time (a long trail's events were all held first); returns how
    /// many.
    pub fn read_audit(&self, window: Window, mut sink: impl FnMut(AuditEvent)) -> Result<u64> {
        let mut n = 0;
        for p in self.selected(Table::Audit, window) {
            let path = self.dir.join(&p.path);
            let df = read_parquet(&path, Some(vec!["event".into()]))?;
            for text in df.column("event")?.str()?.iter().flatten() {
                let e: AuditEvent = serde_json::from_str(text)
                    .with_context(|| format!("{}: an unreadable audit event", path.display()))?;
                if window.contains(e.time) {
                    n += 1;
                    sink(e);
                }
            }
        }
        Ok(n)
    }

    fn selected(&self, t: Table, window: Window) -> Vec<&PartFile> {
        let mut v: Vec<&PartFile> = self
            .parts(t)
            .iter()
            .filter(|p| {
                window.since.is_none_or(|s| p.day >= s.date_naive())
                    && window.until.is_none_or(|u| p.day <= u.date_naive())
            })
            .collect();
        v.sort_by(|a, b| (a.day, &a.path).cmp(&(b.day, &b.path)));
        v
    }
}
