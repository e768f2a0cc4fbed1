//! `replay`: every activity group under the current and the proposed
//! policy. The groups come from sign-in exports, the store or activity
//! tables; with audit logs, the current policy is rebuilt back through its
//! changes so that each sign-in is checked against the policy then in force.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::activity::{grouped, ActivityPlan};
use super::inputs::{policy, Directory, DirectoryPaths};
use super::source::{read_tables, Source};
use super::{Notes, Rejects};
use crate::analysis::activity::ActivityTable;
use crate::analysis::replay::{replay as replay_rows, summarize, Impact, Inputs, ReplayRow, Summary};
use crate::model::{GroupBy, Guid, ReadStats, SignIn};
use crate::policy::history::{reconstruct, History};
use crate::policy::Policy;
use crate::store::Store;

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

/// The result of a replay.
pub(crate) struct ReplayRun {
    pub(crate) by: GroupBy,
    pub(crate) rows: Vec<ReplayRow>,
    pub(crate) summary: Summary,
    pub(crate) read: Read,
    pub(crate) tenant: Option<Guid>,
    pub(crate) proposed: Policy,
    pub(crate) current: Option<Policy>,
    pub(crate) groups_supplied: bool,
    pub(crate) identities_supplied: bool,
    /// With `new_only`: the store, the new finding ids and how many findings there were.
    pub(crate) new_findings: Option<NewFindings>,
}

pub(crate) struct NewFindings {
    store: Store,
    ids: std::collections::HashSet<String>,
    pub(crate) total: usize,
}

impl NewFindings {
    pub(crate) fn count(&self) -> usize {
        self.ids.len()
    }

    /// Records the findings as emitted: call once the output is written.
    pub(crate) fn mark_emitted(mut self) -> Result<()> {
        self.store.mark_emitted(self.ids)
    }
}

impl ReplayRun {
    /// Impacts of `wanted` that occur, for `--fail-on`.
    pub(crate) fn found(&self, wanted: &[Impact]) -> Vec<Impact> {
        wanted.iter().copied().filter(|i| self.rows.iter().any(|r| r.impact == *i)).collect()
    }
}

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
    let (changes, stats) = Source::Exports(plan.audit.clone()).read_changes(&plan.activity.read, rejects)?;
    let history = reconstruct(current, &changes);
    let starts = history.epochs.iter().filter(|e| e.from.is_some()).count();
    let unknown = history.epochs.iter().filter(|e| !e.unknown.is_empty()).count();
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

/// Replays the plan. Notes: policy warnings and what the audit trail gave.
pub(crate) fn replay(plan: &ReplayPlan, notes: Notes<'_>, mut rejects: Rejects<'_>) -> Result<ReplayRun> {
    let proposed = policy(&plan.proposed, notes)?;
    let current = plan.current.as_deref().map(|p| policy(p, notes)).transpose()?;
    let history = match &current {
        Some(cur) => history(plan, cur, notes, super::again(&mut rejects))?,
        None => None,
    };
    let directory = Directory::load(&plan.directory)?;
    let (by, rows, read, tenant) = match plan.activity.source.activity_tables()? {
        Some(paths) => {
            if !plan.activity.window.is_open() || !plan.audit.is_empty() {
                bail!("--since, --until and --audit need raw sign-in logs: an activity table has no per-sign-in times");
            }
            let (by, rows) = read_tables(&paths)?;
            notes(&format!("replaying {} activity group(s) from {} table(s)", rows.len(), paths.len()));
            (by, rows, Read::Tables, plan.activity.tenant)
        }
        None => {
            let starts =
                history.as_ref().map_or_else(Vec::new, |h| h.epochs.iter().filter_map(|e| e.from).collect());
            let (mut table, stats) = grouped(&plan.activity, starts, rejects, None::<fn(&SignIn)>)?;
            let (by, tenant) = (table.by, table.tenant);
            // Only the table's totals are read after this: the rows move
            // (a copy would double the peak with a million groups).
            let rows = std::mem::take(&mut table.rows);
            (by, rows, Read::SignIns(Box::new(table), stats), tenant)
        }
    };
    let inputs = Inputs {
        current: current.as_ref(),
        proposed: &proposed,
        groups: directory.groups.as_ref(),
        identities: directory.identities.as_ref(),
        history: history.as_ref(),
        apps: &directory.apps,
        ca: &directory.ca,
    };
    let mut rows = replay_rows(rows, &inputs);
    let new_findings = if plan.new_only {
        let Source::Store(dir) = &plan.activity.source else { bail!("--new-only needs --store") };
        let store = Store::open(dir)?;
        let ids: Vec<String> =
            rows.iter().filter(|r| r.impact != Impact::Unchanged).map(|r| r.finding_id()).collect();
        let unseen = store.unseen_findings(ids.iter());
        rows.retain(|r| r.impact != Impact::Unchanged && unseen.contains(&r.finding_id()));
        Some(NewFindings { store, ids: unseen, total: ids.len() })
    } else {
        None
    };
    let totals = match &read {
        Read::SignIns(t, _) => Some(&t.totals),
        Read::Tables => None,
    };
    let summary = summarize(&rows, totals, current.is_some());
    Ok(ReplayRun {
        by,
        rows,
        summary,
        read,
        tenant,
        proposed,
        current,
        groups_supplied: directory.groups.is_some(),
        identities_supplied: directory.identities.is_some(),
        new_findings,
    })
}
