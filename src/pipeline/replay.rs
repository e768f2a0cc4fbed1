//! `replay`: every activity group under the current and the proposed
//! policy. The groups come from sign-in exports, the store or activity
//! tables; with audit logs, the current policy is rebuilt back through its
//! changes so that each sign-in is checked against the policy then in force.
//! Rows flow through as a stream: grouped, replayed a batch at a time,
//! sorted into output order (on disk past the memory budget), written.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};

use anyhow::{bail, Result};

use super::activity::{activity_stream, activity_stream_then, ActivityPlan};
use super::inputs::{policy, Directory, DirectoryPaths};
use super::source::{read_tables, NewestChanges, Source};
use super::{Notes, Rejects};
use crate::analysis::activity::{ActivityRow, ActivityTable, Finished, InMemory};
use crate::analysis::replay::{Inputs, Replayer, Summarizer, REPLAY_ORDER, REPLAY_THEN_ROW};
use crate::analysis::runs::{Line, LineWriter, Sorter, Stream};
use crate::model::{GroupBy, Guid, ReadStats, Window};
use crate::policy::history::{reconstruct, History, MAX_EPOCHS};
use crate::policy::Policy;
use crate::store::Store;

// What the command line reads of a replay's rows, named here for it.
pub(crate) use crate::analysis::replay::{Impact, ReplayRow};

/// What to replay.
pub(crate) struct ReplayPlan {
    /// The sign-ins (exports or a store), read and grouped as `activity` does.
    pub(crate) activity: ActivityPlan,
    pub(crate) proposed: PathBuf,
    pub(crate) current: Option<PathBuf>,
    /// Audit exports of the window: the current policy is rebuilt through them.
    pub(crate) audit: Vec<PathBuf>,
    pub(crate) directory: DirectoryPaths,
    /// Keep only findings no earlier `--new-only` run emitted (needs a store).
    pub(crate) new_only: bool,
}

/// Where the rows came from.
pub(crate) enum Read {
    /// Sign-ins, grouped here.
    SignIns(Box<ActivityTable>, ReadStats),
    /// Activity tables written earlier.
    Tables,
}

/// The result of a replay; its rows come apart, as a [`ReplayStream`].
pub(crate) struct ReplayRun {
    pub(crate) by: GroupBy,
    pub(crate) read: Read,
    pub(crate) tenant: Option<Guid>,
    pub(crate) proposed: Policy,
    pub(crate) current: Option<Policy>,
    pub(crate) groups_supplied: bool,
    pub(crate) identities_supplied: bool,
    /// With `new_only`: the store, the new finding ids and how many findings there were.
    pub(crate) new_findings: Option<NewFindings>,
    /// Rows kept in memory at most (`--groups-in-memory`); `None`: all.
    pub(crate) budget: Option<usize>,
}

/// The replayed rows in output order ([`REPLAY_ORDER`]), one at a time.
pub(crate) type ReplayStream = Stream<ReplayRow>;

pub(crate) struct NewFindings {
    store: Store,
    /// The new findings' ids ([`ReplayRow::finding_hash`]), sorted, once each.
    ids: Vec<u64>,
    pub(crate) total: usize,
}

impl NewFindings {
    fn new(store: Store, mut ids: Vec<u64>, total: usize) -> NewFindings {
        ids.sort_unstable();
        ids.dedup();
        NewFindings { store, ids, total }
    }

    pub(crate) fn count(&self) -> usize {
        self.ids.len()
    }

    /// Records the findings as emitted: call once the output is written.
    pub(crate) fn mark_emitted(mut self) -> Result<()> {
        self.store.mark_emitted(self.ids)
    }
}

impl ReplayRun {
    /// The summary of the run's rows, fed them in output order.
    pub(crate) fn summarizer(&self) -> Summarizer<'_> {
        let totals = match &self.read {
            Read::SignIns(t, _) => Some(&t.totals),
            Read::Tables => None,
        };
        Summarizer::new(totals, self.current.is_some(), self.budget)
    }
}

/// Replays `rows` a batch at a time, in parallel (replay is pure per row),
/// keeps those `keep` accepts and sorts them into output order, on disk
/// past `budget` rows; the rows' own errors are the caller's to check.
pub(crate) fn replayed(
    rows: &mut dyn Iterator<Item = ActivityRow>,
    replayer: &Replayer<'_>,
    budget: Option<usize>,
    mut keep: impl FnMut(&ReplayRow) -> bool,
) -> Result<ReplayStream> {
    // A replayed row carries its group's row and the reasons, about twice
    // a group's size: half as many stay in memory.
    let mut sorter = Sorter::new("replay", REPLAY_ORDER, budget.map(|b| b / 2));
    replayer.each(rows, |row| if keep(&row) { sorter.push(row) } else { Ok(()) })?;
    sorter.finish()
}

/// Rows a grouping finished in memory but did not map there (more than
/// half the budget, or their text past half its bytes), replayed where
/// they are ([`Replayer::in_place`]) if there are no more than the budget,
/// their texts are of Entra's lengths (a quarter of a kilobyte a row of
/// the budget, [`IN_PLACE_TEXT`]) and their reasons stay within twice as
/// much; else the rows back, for a sorter that goes to the disk past half the
/// budget (a replayed row and the row it was made from, held together,
/// weigh twice a group). Reasons name a sign-in's ids: a forged export's
/// kilobyte ids made reasons held beside the rows 60 MB more than the
/// sorter's peak.
fn in_place(
    rows: Stream<ActivityRow>,
    inputs: &Inputs<'_>,
    budget: Option<usize>,
) -> std::result::Result<ReplayStream, Stream<ActivityRow>> {
    let held = rows.into_memory()?;
    let text_budget = budget.map(|b| b.saturating_mul(IN_PLACE_TEXT));
    let text = || held.iter().map(ActivityRow::text_bytes).fold(0, usize::saturating_add);
    if budget.is_some_and(|b| held.len() > b) || text_budget.is_some_and(|t| text() > t) {
        return Err(Stream::memory(held));
    }
    Replayer::new(inputs).in_place(held, text_budget.map(|t| t.saturating_mul(2))).map_err(Stream::memory)
}

/// The bytes of text a row of the budget allows rows replayed in place,
/// and twice as many their reasons: Entra's ids and names are some 230
/// bytes a row, its reasons 150-450 (with `--current`, two).
const IN_PLACE_TEXT: usize = 256;

/// Rebuilds the current policy back through the audit trail.
fn history(
    plan: &ReplayPlan,
    current: &Policy,
    notes: Notes<'_>,
    rejects: Rejects<'_>,
) -> Result<Option<History>> {
    if plan.audit.is_empty() {
        return Ok(None);
    }
    let source = Source::Exports(plan.audit.clone());
    let mut newest = NewestChanges::new(MAX_EPOCHS, Window::default());
    let stats = source.read_newest_changes(&plan.activity.read, rejects, &mut newest)?;
    let changes = newest.finish();
    let history = reconstruct(current, &changes);
    let starts = history.epochs.iter().filter(|e| e.from.is_some()).count();
    let unknown = history.partly_unknown();
    notes(&format!(
        "audit: {} policy change(s) in {} audit record(s); the current policy rebuilt for {} epoch(s){}",
        starts,
        stats.records_read,
        history.epochs.len(),
        if unknown > 0 {
            format!(", {unknown} of them only in part (see `xtenant timeline --policy`)")
        } else {
            String::new()
        }
    ));
    Ok(Some(history))
}

/// The replayed rows: as rows, or, for a sink that writes each row as a
/// line of its own, as those lines.
pub(crate) enum Replayed {
    Rows(ReplayStream),
    /// Every row written out (past the memory budget, grouping sign-ins at
    /// the user grain), with the impacts among them.
    Lines(Stream<Line>, BTreeSet<Impact>),
}

/// What writes rows as lines for our tenant (the SIEM formats name it on
/// every line), once the grouping has decided which it is.
pub(crate) type LinesFor<T> = dyn Fn(Option<Guid>) -> Box<LineWriter<T>> + Sync;

/// The impacts met, noted by rows replayed on any thread.
#[derive(Default)]
struct ImpactsSeen(AtomicU8);

impl ImpactsSeen {
    fn add(&self, impact: Impact) {
        // Read first: every row of every thread notes its impact, and a
        // write to the one shared byte, even of a bit already set, takes
        // its cache line from the other cores each time.
        let bit = 1 << impact as u8;
        if self.0.load(Ordering::Relaxed) & bit == 0 {
            self.0.fetch_or(bit, Ordering::Relaxed);
        }
    }

    fn impacts(&self) -> BTreeSet<Impact> {
        let bits = self.0.load(Ordering::Relaxed);
        Impact::ALL.iter().copied().filter(|i| bits & (1 << *i as u8) != 0).collect()
    }
}

/// Replays the plan. Notes: policy warnings and what the audit trail gave.
/// The rows are evaluated as grouping hands them on, and sorted in a
/// temporary folder when they outgrow `--groups-in-memory`, so that memory
/// does not grow with the number of groups. With `line` (a sink's line of
/// a row, given our tenant), rows past the budget may come written out
/// ([`Replayed::Lines`]).
pub(crate) fn replay(
    plan: &ReplayPlan,
    notes: Notes<'_>,
    mut rejects: Rejects<'_>,
    line: Option<&LinesFor<ReplayRow>>,
) -> Result<(ReplayRun, Replayed)> {
    let proposed = policy(&plan.proposed, notes)?;
    let current = plan.current.as_deref().map(|p| policy(p, notes)).transpose()?;
    let history = match &current {
        Some(cur) => history(plan, cur, notes, super::again(&mut rejects))?,
        None => None,
    };
    let directory = Directory::load(&plan.directory)?;
    let inputs = Inputs {
        current: current.as_ref(),
        proposed: &proposed,
        groups: directory.groups.as_ref(),
        identities: directory.identities.as_ref(),
        history: history.as_ref(),
        apps: &directory.apps,
        ca: &directory.ca,
    };
    let store = match (&plan.activity.source, plan.new_only) {
        (Source::Store(dir), true) => Some(Store::open(dir)?),
        (_, true) => bail!("--new-only needs --store"),
        (_, false) => None,
    };
    let emitted = store.as_ref().map(Store::emitted_findings).transpose()?;
    let (mut new_ids, mut findings) = (Vec::new(), 0);
    let budget = plan.activity.groups_in_memory;
    // Replays rows that come as the grouping's (or a table's) rows.
    // Rows held in memory are replayed where they are, unless --new-only
    // filters them as they are replayed.
    let mut replay_rows = |mut rows: Stream<ActivityRow>| -> Result<ReplayStream> {
        if emitted.is_none() {
            match in_place(rows, &inputs, budget) {
                Ok(replayed) => return Ok(replayed),
                Err(back) => rows = back,
            }
        }
        let replayer = Replayer::new(&inputs);
        let sorted = replayed(&mut rows, &replayer, budget, |row| {
            let Some(emitted) = &emitted else { return true };
            // --new-only: findings only, and only those not emitted before.
            if row.impact == Impact::Unchanged {
                return false;
            }
            findings += 1;
            let id = row.finding_hash();
            let new = !emitted.contains(id);
            if new {
                new_ids.push(id);
            }
            new
        })?;
        rows.finish()?;
        Ok(sorted)
    };
    let (by, read, tenant, replayed) = match plan.activity.source.activity_tables()? {
        Some(paths) => {
            if !plan.activity.window.is_open() || !plan.audit.is_empty() {
                bail!("--since, --until and --audit need raw sign-in logs: an activity table has no per-sign-in times");
            }
            let t = read_tables(&paths, budget, false, |_| {})?;
            notes(&format!("replaying the {} row(s) of {} activity table(s)", t.read, paths.len()));
            (t.by, Read::Tables, plan.activity.tenant, Replayed::Rows(replay_rows(t.rows)?))
        }
        None => {
            let starts =
                history.as_ref().map_or_else(Vec::new, |h| h.epochs.iter().filter_map(|e| e.from).collect());
            let half = budget.map(|b| b / 2);
            let (table, replayed, stats) = match line.filter(|_| !plan.new_only) {
                // Past the budget at the user grain, each partition of the
                // grouping is replayed, written out and sorted where it is
                // finished; in memory, every row is, in parallel, and sorted
                // once. The impacts are noted as the rows are replayed.
                Some(lines) => {
                    let seen = ImpactsSeen::default();
                    let written_there = |table: &ActivityTable| {
                        let replayer = Replayer::new(&inputs);
                        let line = lines(table.tenant);
                        let seen = &seen;
                        move |row| {
                            let row = replayer.row(row);
                            seen.add(row.impact);
                            Line::new(&row, REPLAY_THEN_ROW, &*line)
                        }
                    };
                    let (table, finished, stats) = activity_stream_then(
                        &plan.activity,
                        starts,
                        rejects,
                        Line::ORDER,
                        (half, InMemory::Mapped),
                        written_there,
                    )?;
                    let replayed = match finished {
                        Finished::Mapped(lines) => Replayed::Lines(lines, seen.impacts()),
                        Finished::Rows(rows) => Replayed::Rows(replay_rows(rows)?),
                    };
                    (table, replayed, stats)
                }
                // --new-only filters rows one by one as they come, so it
                // takes the rows.
                None if plan.new_only => {
                    let (table, rows, stats) = activity_stream(&plan.activity, starts, rejects)?;
                    let replayed = Replayed::Rows(replay_rows(rows)?);
                    (table, replayed, stats)
                }
                // Past the budget at the user grain, the grouping's
                // partitions are replayed and sorted into output order where
                // they are finished (one sort of the rows instead of two); in
                // memory, the rows are replayed in parallel and sorted once.
                None => {
                    let replayed_there = |_: &ActivityTable| {
                        let replayer = Replayer::new(&inputs);
                        move |row| replayer.row(row)
                    };
                    let (table, finished, stats) = activity_stream_then(
                        &plan.activity,
                        starts,
                        rejects,
                        REPLAY_THEN_ROW,
                        (half, InMemory::Mapped),
                        replayed_there,
                    )?;
                    let replayed = Replayed::Rows(match finished {
                        Finished::Rows(rows) => replay_rows(rows)?,
                        Finished::Mapped(sorted) => sorted,
                    });
                    (table, replayed, stats)
                }
            };
            let (by, tenant) = (table.by, table.tenant);
            (by, Read::SignIns(Box::new(table), stats), tenant, replayed)
        }
    };
    drop(emitted);
    let run = ReplayRun {
        by,
        read,
        tenant,
        groups_supplied: directory.groups.is_some(),
        identities_supplied: directory.identities.is_some(),
        new_findings: store.map(|store| NewFindings::new(store, new_ids, findings)),
        proposed,
        current,
        budget: plan.activity.groups_in_memory,
    };
    Ok((run, replayed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_impacts_seen_are_those_noted_and_no_other() {
        for mask in 0u8..32 {
            let noted: BTreeSet<Impact> = Impact::ALL
                .iter()
                .copied()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, x)| x)
                .collect();
            let seen = ImpactsSeen::default();
            for i in &noted {
                seen.add(*i);
                seen.add(*i);
            }
            assert_eq!(seen.impacts(), noted);
        }
    }

    /// Rows of Entra's lengths within the budget are replayed in place;
    /// more rows than the budget, or rows whose texts are far longer (a
    /// forged export's: their reasons would name them beside the rows),
    /// come back whole for the sorter.
    #[test]
    fn rows_are_replayed_in_place_only_within_the_budget_and_of_entra_s_lengths() {
        let proposed = Policy::default();
        let ca = crate::policy::conditional_access::CaPolicies::default();
        let inputs = crate::analysis::replay::tests::policies_only(None, &proposed, &ca);
        let rows = |n: usize, id_bytes: usize| -> Vec<ActivityRow> {
            (0..n)
                .map(|i| {
                    let mut r = crate::analysis::runs::codec::tests::sample_row();
                    r.app_id = Some(format!("{i:0id_bytes$}").into());
                    r
                })
                .collect()
        };
        let whole = |r: std::result::Result<ReplayStream, Stream<ActivityRow>>| match r {
            Ok(_) => None,
            Err(back) => Some(back.collect_rows().unwrap()),
        };
        // Unbounded: always in place.
        assert!(whole(in_place(Stream::memory(rows(40, 4000)), &inputs, None)).is_none());
        assert!(whole(in_place(Stream::memory(rows(40, 36)), &inputs, Some(40))).is_none());
        for (n, id_bytes, budget) in [(41, 36, 40), (40, 4000, 40)] {
            let back = whole(in_place(Stream::memory(rows(n, id_bytes)), &inputs, Some(budget)));
            assert_eq!(back, Some(rows(n, id_bytes)), "{n} rows of {id_bytes}-byte app ids, budget {budget}");
        }
    }
}
