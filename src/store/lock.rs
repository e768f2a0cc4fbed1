//! The writers' lock: an advisory `flock` on `.lock`, released when the
//! run ends or its process dies, so writes are serialized and a crash never
//! leaves a stale lock.

use std::fs::{self, File};
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::Store;

/// Held while a run writes; released on drop or when the process dies.
pub struct Lock(#[allow(dead_code)] File);

impl Store {
    /// Takes the writers' lock, or says who holds it.
    pub fn lock(&self) -> Result<Lock> {
        lock_dir(&self.dir)
    }
}

/// The writers' lock of the store in `dir`.
pub(super) fn lock_dir(dir: &Path) -> Result<Lock> {
    let path = dir.join(".lock");
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("{}: cannot create the lock file", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(Lock(f)),
        Err(fs::TryLockError::WouldBlock) => bail!(
            "{}: another xtenant run is writing to this store; wait for it to finish (the lock is released when it exits)",
            dir.display()
        ),
        Err(fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("{}: cannot lock", path.display())),
    }
}
