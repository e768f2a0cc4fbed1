//! `store add` and `store info`: keeping cross-tenant sign-ins and policy
//! audit events beyond the 30 days Entra keeps them.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::source::{ReadOptions, Source};
use super::Rejects;
use crate::store::{Added, Info, Store, Writer};

/// Adds sign-in and audit exports to the store at `dir` (created if missing).
pub(crate) fn add(
    dir: &Path,
    signins: &[PathBuf],
    audit: &[PathBuf],
    read: &ReadOptions,
    mut rejects: Rejects<'_>,
) -> Result<Added> {
    if signins.is_empty() && audit.is_empty() {
        bail!("nothing to add: give sign-in exports as PATH and/or audit exports with --audit");
    }
    let mut store = Store::open_or_create(dir)?;
    let mut w = Writer::begin(&mut store)?;
    let mut failed: Option<anyhow::Error> = None;
    if !signins.is_empty() {
        let all = crate::model::Window::default();
        Source::Exports(signins.to_vec()).read_signins(read, all, super::again(&mut rejects), |s| {
            if failed.is_none() {
                failed = w.add_signin(s).err();
            }
        })?;
    }
    if !audit.is_empty() {
        Source::Exports(audit.to_vec()).read_audit(read, rejects, |e| {
            if failed.is_none() {
                failed = w.add_audit(e).err();
            }
        })?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    w.commit()
}

/// Days covered, rows and size of the store at `dir`.
pub(crate) fn info(dir: &Path) -> Result<Info> {
    Ok(Store::open(dir)?.info())
}
