//! Where records come from: exports (files, folders, stdin, any format)
//! or the history store; and how to read them. Every command that reads
//! sign-ins or audit events reads them here, so the choice between exports
//! and a store, and the counts a run reports, are made in one place.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};

use super::Rejects;
use crate::analysis::activity::ROW_ORDER;
use crate::analysis::runs::{Sorter, Spool, Stream};
use crate::analysis::timeline::CHANGE_ORDER;
use crate::ingest::{self, activity_table, AuditEvents, Progress, SignIns};
use crate::model::{ActivityRow, AuditEvent, GroupBy, Guid, ReadStats, SignIn, Window};
use crate::policy::change::{decode, PolicyChange};
use crate::store::Store;

// The command line's words for how inputs are read, named here for it.
pub(crate) use crate::ingest::{DateOrder, InputFormat};

/// How to read exports.
#[derive(Clone, Default)]
pub(crate) struct ReadOptions {
    pub(crate) format: InputFormat,
    pub(crate) date_order: DateOrder,
    /// Go on past malformed records, counting them.
    pub(crate) skip_invalid: bool,
    pub(crate) progress: Option<Arc<dyn Progress>>,
}

/// The rows of activity tables, as a stream.
pub(crate) struct TableRows {
    pub(crate) by: GroupBy,
    /// One table's rows in its order (unless asked sorted); several
    /// tables' in [`ROW_ORDER`], a group in several of them (a query run
    /// once per month, say) as one row ([`ActivityRow::merge_part`]).
    pub(crate) rows: Stream<ActivityRow>,
    /// The rows read, before groups in several tables became one.
    pub(crate) read: usize,
}

/// Reads activity tables of one grain, kept in memory up to `budget` rows
/// and on disk past it (`xtenant-tables-*`) until they are read. With
/// `sorted`, one table's rows come in [`ROW_ORDER`] too. `see` is shown
/// every row as it is read (before a group's parts become one row), for
/// what must be known before the rows are.
pub(crate) fn read_tables(
    paths: &[PathBuf],
    budget: Option<usize>,
    sorted: bool,
    mut see: impl FnMut(&ActivityRow),
) -> Result<TableRows> {
    enum Keep {
        Spool(Spool<ActivityRow>),
        Sort(Sorter<ActivityRow>),
    }
    let mut keep = match paths {
        [_] if sorted => Keep::Sort(Sorter::new("tables", ROW_ORDER, budget)),
        [_] => Keep::Spool(Spool::new("tables", budget)),
        _ => Keep::Sort(Sorter::new("tables", ROW_ORDER, budget).combining(ActivityRow::merge_part)),
    };
    let mut read = 0;
    let mut grain = None;
    for p in paths {
        let by = activity_table::read_each(p, &mut |r| {
            see(&r);
            read += 1;
            match &mut keep {
                Keep::Spool(s) => s.push(r),
                Keep::Sort(s) => s.push(r),
            }
        })?;
        if grain.is_some_and(|g| g != by) {
            bail!(
                "{}: the activity tables have different grains (--by); give one grain at a time",
                p.display()
            );
        }
        grain = Some(by);
    }
    let rows = match keep {
        Keep::Spool(s) => s.finish()?,
        Keep::Sort(s) => s.finish()?,
    };
    Ok(TableRows { by: grain.unwrap_or(GroupBy::User), rows, read })
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
                let records_read = store.read_audit(Window::default(), &mut sink)?;
                Ok(ReadStats {
                    files: store.manifest.audit.len() as u64,
                    records_read,
                    ..ReadStats::default()
                })
            }
        }
    }

    /// The cross-tenant policy changes the audit events record, decoded, in
    /// time order ([`CHANGE_ORDER`]); the same record from overlapping
    /// exports once. Past `budget` changes they are sorted through a
    /// temporary folder: an audit trail of a million changes took a
    /// gigabyte held whole.
    pub(crate) fn read_changes(
        &self,
        opts: &ReadOptions,
        rejects: Rejects<'_>,
        budget: Option<usize>,
    ) -> Result<(Stream<PolicyChange>, ReadStats)> {
        let mut sorter = Sorter::new("timeline", CHANGE_ORDER, budget);
        let mut failed = None;
        let stats = self.read_audit(opts, rejects, |e| {
            if failed.is_none() {
                failed = sorter.push(decode(&e)).err();
            }
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        let (mut sorted, mut last) = (Some(sorter.finish()?), None::<String>);
        let once = Stream::made(move || {
            let Some(changes) = sorted.as_mut() else { return Ok(None) };
            for c in changes.by_ref() {
                if !c.id.is_empty() && last.as_deref() == Some(c.id.as_str()) {
                    continue;
                }
                last = Some(c.id.clone());
                return Ok(Some(c));
            }
            sorted.take().map_or(Ok(()), Stream::finish)?;
            Ok(None)
        });
        Ok((once, stats))
    }

    /// Reads audit events into `newest` ([`NewestChanges`]): all a rebuilt
    /// history undoes, or a report lists, held while reading, so that an
    /// audit trail of any length takes as much memory as its newest changes.
    pub(crate) fn read_newest_changes(
        &self,
        opts: &ReadOptions,
        rejects: Rejects<'_>,
        newest: &mut NewestChanges,
    ) -> Result<ReadStats> {
        self.read_audit(opts, rejects, |e| newest.add(decode(&e)))
    }
}

/// The newest changes that alter access (and succeeded) within a period
/// seen so far, at most `n`, each once; with the owners every change read
/// names, and how many were read.
pub(crate) struct NewestChanges {
    n: usize,
    within: Window,
    held: BinaryHeap<Reverse<Newest>>,
    /// Those held, by time and id: the same record from overlapping exports
    /// is held once.
    ids: HashSet<(DateTime<Utc>, String)>,
    /// Those that alter access within the period, let go or not.
    pub(crate) altering: u64,
    /// Every change read.
    pub(crate) read: u64,
    pub(crate) owners: BTreeSet<Guid>,
}

impl NewestChanges {
    pub(crate) fn new(n: usize, within: Window) -> Self {
        NewestChanges {
            n,
            within,
            held: BinaryHeap::new(),
            ids: HashSet::new(),
            altering: 0,
            read: 0,
            owners: BTreeSet::new(),
        }
    }

    fn add(&mut self, change: PolicyChange) {
        self.read += 1;
        self.owners.extend(change.owner);
        if !change.alters_access() || !self.within.contains(change.time) {
            return;
        }
        if !change.id.is_empty() && !self.ids.insert((change.time, change.id.clone())) {
            return;
        }
        self.altering += 1;
        self.held.push(Reverse(Newest(change)));
        if self.held.len() > self.n {
            if let Some(Reverse(Newest(oldest))) = self.held.pop() {
                self.ids.remove(&(oldest.time, oldest.id));
            }
        }
    }

    /// The changes held, in time order.
    pub(crate) fn finish(self) -> Vec<PolicyChange> {
        sort_changes(self.held.into_iter().map(|Reverse(Newest(c))| c).collect())
    }
}

/// A change ordered by time, then id (as [`sort_changes`] orders them).
struct Newest(PolicyChange);

impl Ord for Newest {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.time, &self.0.id).cmp(&(other.0.time, &other.0.id))
    }
}

impl PartialOrd for Newest {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Newest {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Newest {}

/// Time order; the same record from overlapping exports once (in memory,
/// as [`Source::read_changes`] does through the disk).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::change::{ChangeKind, Scope};

    fn change(second: u32, id: &str, kind: ChangeKind, succeeded: bool) -> PolicyChange {
        PolicyChange {
            id: id.into(),
            time: format!("2026-03-01T00:{:02}:{:02}Z", second / 60, second % 60).parse().unwrap(),
            actor: "admin@contoso.com".into(),
            activity: kind.as_str().into(),
            kind,
            succeeded,
            scope: Scope::Partner(Guid(7)),
            owner: None,
            properties: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn the_newest_changes_held_are_the_newest_that_alter_access_each_once_whatever_the_order() {
        // 300 changes, a third failed or altering nothing, some logged twice
        // (overlapping exports), read in a scrambled order.
        let all: Vec<PolicyChange> = (0..300u32)
            .map(|i| {
                let kind = if i % 7 == 3 { ChangeKind::Migrated } else { ChangeKind::PartnerUpdated };
                change(i, &format!("Directory_{i}"), kind, i % 5 != 1)
            })
            .collect();
        let read: Vec<PolicyChange> =
            (0..300).map(|i| all[(i * 131) % 300].clone()).chain(all[250..].iter().cloned()).collect();
        let everything = sort_changes(read.clone());
        let altering: Vec<&PolicyChange> = everything.iter().filter(|c| c.alters_access()).collect();
        for n in [1, 10, 150, 1_000] {
            let mut newest = NewestChanges::new(n, Window::default());
            read.iter().cloned().for_each(|c| newest.add(c));
            let held = newest.finish();
            let expected = &altering[altering.len().saturating_sub(n)..];
            assert_eq!(held.iter().collect::<Vec<_>>(), expected, "n = {n}");
        }
    }
}
