//! Where records come from: exports (files, folders, stdin, any format)
//! or the history store; and how to read them. Every command that reads
//! sign-ins or audit events reads them here, so the choice between exports
//! and a store, and the counts a run reports, are made in one place.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use super::Rejects;
use crate::ingest::{self, AuditEvents, DateOrder, InputFormat, Progress, SignIns};
use crate::model::{AuditEvent, ReadStats, SignIn, Window};
use crate::policy::change::{decode, PolicyChange};
use crate::store::Store;

/// How to read exports.
#[derive(Clone, Default)]
pub(crate) struct ReadOptions {
    pub(crate) format: InputFormat,
    pub(crate) date_order: DateOrder,
    /// Go on past malformed records, counting them.
    pub(crate) skip_invalid: bool,
    pub(crate) progress: Option<Arc<dyn Progress>>,
}

/// Where records are read from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Source {
    /// Export files and folders (`-` is stdin).
    Exports(Vec<PathBuf>),
    /// A history store (`xtenant store add`).
    Store(PathBuf),
}

impl Source {
    pub(crate) fn is_store(&self) -> bool {
        matches!(self, Source::Store(_))
    }

    /// Reads sign-ins and hands each to `sink` in input order. From a store,
    /// only the days `days` covers are read (all days when it is open).
    pub(crate) fn read_signins(
        &self,
        opts: &ReadOptions,
        days: Window,
        rejects: Rejects<'_>,
        mut sink: impl FnMut(SignIn) + Send,
    ) -> Result<ReadStats> {
        match self {
            Source::Exports(paths) => read_exports(SignIns, paths, opts, rejects, sink),
            Source::Store(dir) => {
                let store = Store::open(dir)?;
                let n = store.read_signins(days, &mut sink)?;
                Ok(ReadStats {
                    files: store.manifest.signins.len() as u64,
                    records_read: n,
                    ..ReadStats::default()
                })
            }
        }
    }

    /// Reads audit events, in input order (a store: every day).
    pub(crate) fn read_audit(
        &self,
        opts: &ReadOptions,
        rejects: Rejects<'_>,
        mut sink: impl FnMut(AuditEvent) + Send,
    ) -> Result<ReadStats> {
        match self {
            Source::Exports(paths) => read_exports(AuditEvents, paths, opts, rejects, sink),
            Source::Store(dir) => {
                let store = Store::open(dir)?;
                let events = store.read_audit(Window::default())?;
                let stats = ReadStats {
                    files: store.manifest.audit.len() as u64,
                    records_read: events.len() as u64,
                    ..ReadStats::default()
                };
                events.into_iter().for_each(&mut sink);
                Ok(stats)
            }
        }
    }

    /// The cross-tenant policy changes the audit events record, decoded, in
    /// time order; the same record from overlapping exports once.
    pub(crate) fn read_changes(
        &self,
        opts: &ReadOptions,
        rejects: Rejects<'_>,
    ) -> Result<(Vec<PolicyChange>, ReadStats)> {
        let mut changes = vec![];
        let stats = self.read_audit(opts, rejects, |e| changes.push(decode(&e)))?;
        Ok((sort_changes(changes), stats))
    }
}

/// Time order; the same record from overlapping exports once.
fn sort_changes(mut changes: Vec<PolicyChange>) -> Vec<PolicyChange> {
    changes.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
    changes.dedup_by(|a, b| !a.id.is_empty() && a.id == b.id);
    changes
}

fn read_exports<K: ingest::RecordKind>(
    kind: K,
    paths: &[PathBuf],
    opts: &ReadOptions,
    rejects: Rejects<'_>,
    sink: impl FnMut(K::Item) + Send,
) -> Result<ReadStats> {
    let (inputs, skipped) = ingest::source::expand(paths)?;
    let options = ingest::Options {
        format: opts.format,
        date_order: opts.date_order,
        skip_invalid: opts.skip_invalid,
        progress: opts.progress.clone(),
    };
    let mut stats = ingest::read_records(kind, &inputs, &options, rejects, sink)?;
    stats.notices.splice(0..0, skipped);
    Ok(stats)
}
