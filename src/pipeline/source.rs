//! Where records come from: exports (files, folders, stdin, any format)
//! or the history store; and how to read them. Every command that reads
//! sign-ins or audit events reads them here, so the choice between exports
//! and a store, and the counts a run reports, are made in one place.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};

use super::Rejects;
use crate::ingest::{self, activity_table, AuditEvents, DateOrder, InputFormat, Progress, SignIns};
use crate::model::{ActivityRow, AuditEvent, GroupBy, ReadStats, SignIn, Window};
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

/// Reads activity tables of one grain. A group in several tables (a query
/// run once per month, say) becomes one row: counts summed, first and last
/// seen widened, clauses joined, names from the part seen last.
pub(crate) fn read_tables(paths: &[PathBuf]) -> Result<(GroupBy, Vec<ActivityRow>)> {
    let mut rows: Vec<ActivityRow> = Vec::new();
    let mut grain = None;
    for p in paths {
        let (by, r) = activity_table::read(p)?;
        if grain.is_some_and(|g| g != by) {
            bail!(
                "{}: the activity tables have different grains (--by); give one grain at a time",
                p.display()
            );
        }
        grain = Some(by);
        rows.extend(r);
    }
    if paths.len() > 1 {
        rows = merge_groups(rows);
    }
    Ok((grain.unwrap_or(GroupBy::User), rows))
}

/// One row per group key; see [`read_tables`]. Distinct user and app counts
/// cannot be added across parts (the same user may be in both): the larger
/// is kept, a lower bound.
fn merge_groups(rows: Vec<ActivityRow>) -> Vec<ActivityRow> {
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out: Vec<ActivityRow> = Vec::with_capacity(rows.len());
    for r in rows {
        let key = format!("{:?}", r.sort_key());
        match index.get(&key) {
            None => {
                index.insert(key, out.len());
                out.push(r);
            }
            Some(&i) => {
                let kept = &mut out[i];
                let later = r.counters.last_seen > kept.counters.last_seen;
                let mut counters = kept.counters.clone();
                counters.merge(&r.counters);
                let distinct_users = kept.distinct_users.max(r.distinct_users);
                let distinct_apps = kept.distinct_apps.max(r.distinct_apps);
                if later {
                    *kept = r;
                }
                kept.counters = counters;
                kept.distinct_users = distinct_users;
                kept.distinct_apps = distinct_apps;
            }
        }
    }
    out.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    out
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

    /// The exports, when every one is an activity table (`activity --format
    /// csv`, or a query's result brought back from Log Analytics, Data
    /// Explorer or Spark); `None` when they are logs; an error for a mix.
    pub(crate) fn activity_tables(&self) -> Result<Option<Vec<PathBuf>>> {
        let Source::Exports(paths) = self else { return Ok(None) };
        let tables: Vec<bool> = paths.iter().map(|p| activity_table::looks_like_activity_table(p)).collect();
        if !tables.is_empty() && tables.iter().all(|t| *t) {
            Ok(Some(paths.clone()))
        } else if tables.iter().any(|t| *t) {
            bail!("the inputs mix activity tables and raw sign-in logs: give one kind at a time");
        } else {
            Ok(None)
        }
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
