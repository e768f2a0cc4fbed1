//! `report`: the figures of the recurring overview, from one read of the
//! sign-ins: activity at the user grain over the period, per-day counts
//! (with history before the period, for "new partners"), the policy change
//! timeline, and the impact of a proposal.

use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::Duration;

use super::activity::{tapped_stream, ActivityPlan};
use super::inputs::{policy, Directory, DirectoryPaths};
use super::source::{read_tables, NewestChanges, Source};
use super::{Notes, Rejects};
use crate::analysis::activity::{ActivityRow, ActivityTable};
use crate::analysis::overview::{Daily, Overview, Rolled, Rollups, FOLLOWED_BY_BLOCKS, NOT_JOINED};
use crate::analysis::replay::{Inputs, Replayer, Summarizer, Summary};
use crate::analysis::runs::Stream;
use crate::analysis::timeline::{Brief, Join};
use crate::model::{GroupBy, ReadStats, SignIn};
use crate::policy::change::PolicyChange;
use crate::policy::Policy;

/// What the report covers.
pub(crate) struct OverviewPlan {
    /// The sign-ins and the period (`window`); the grain is always the user.
    pub(crate) activity: ActivityPlan,
    /// The policy in force: idle partners, partners on the default.
    pub(crate) current: Option<PathBuf>,
    /// A planned policy: the impact section.
    pub(crate) proposed: Option<PathBuf>,
    /// Audit events for the change timeline.
    pub(crate) audit: Option<Source>,
    /// The change timeline's window around each change and grace after it.
    pub(crate) window: Duration,
    pub(crate) grace: Duration,
    pub(crate) directory: DirectoryPaths,
}

/// The most policy changes a report lists, the newest in its period
/// (`xtenant timeline` lists them all).
pub(crate) const CHANGES_LISTED: usize = 1000;

/// Computes the overview, from sign-in logs or activity tables (then without
/// read statistics). Notes: policy warnings.
pub(crate) fn overview(
    plan: &OverviewPlan,
    notes: Notes<'_>,
    rejects: Rejects<'_>,
) -> Result<(Overview, ActivityTable, Option<ReadStats>)> {
    let current = plan.current.as_deref().map(|p| policy(p, notes)).transpose()?;
    let proposed = plan.proposed.as_deref().map(|p| policy(p, notes)).transpose()?;
    let period = plan.activity.window;
    let budget = plan.activity.groups_in_memory;
    if let Some(paths) = plan.activity.source.activity_tables()? {
        let (table, daily, mut rows) = from_tables(plan, &paths, notes)?;
        let policies = (current.as_ref(), proposed.as_ref());
        // A table's rows may name a partner differently (the engine picked
        // a name per group): its summary takes them in output order.
        let (rolled, impact) = rolled_up(plan, &mut rows, &table, policies, false)?;
        rows.finish()?;
        let mut overview = Overview::build(rolled, &table, daily, current.as_ref(), period.since, budget)?;
        overview.impact = impact;
        return Ok((overview, table, None));
    }
    // The newest changes in the period are listed, the others counted:
    // every change of a long trail was held, and listed (a million changes:
    // 1 GB, and a page no one reads).
    let mut ours = plan.activity.tenant;
    let mut changes_in_period = 0;
    let changes: Option<Vec<PolicyChange>> = match &plan.audit {
        Some(source) => {
            let mut newest = NewestChanges::new(CHANGES_LISTED, period);
            source.read_newest_changes(&plan.activity.read, None, &mut newest)?;
            // Whose changes they are, for joining the sign-ins: the tenant
            // given, else the one the audit logs belong to, as `timeline`
            // decides (a Graph export's sign-ins do not say whose log they
            // are, and the grouping infers our tenant only once every
            // sign-in is read).
            ours = super::timeline::our_tenant(&newest.owners, plan.activity.tenant)?;
            changes_in_period = newest.altering;
            // A store with no audit events has no timeline to show.
            let none = source.is_store() && newest.read == 0;
            (!none).then(|| newest.finish())
        }
        None => None,
    };
    let mut daily = Daily::new(period, budget);
    let mut join = changes.as_ref().map(|c| {
        let briefs: Vec<Brief> = c.iter().map(Brief::of).collect();
        Join::new(&briefs, ours, plan.window, plan.grace, budget)
    });
    let activity = ActivityPlan { by: GroupBy::User, ..plan.activity.clone() };
    let (table, mut rows, stats) = tapped_stream(&activity, rejects, |s: &SignIn| {
        daily.add(s);
        if let Some(j) = join.as_mut() {
            j.add(s);
        }
    })?;
    // The grouping names each partner once for the whole run.
    let (rolled, impact) = rolled_up(plan, &mut rows, &table, (current.as_ref(), proposed.as_ref()), true)?;
    rows.finish()?;
    let mut overview = Overview::build(rolled, &table, daily, current.as_ref(), period.since, budget)?;
    overview.impact = impact;
    if let (Some(changes), Some(join)) = (changes, join) {
        let names = join.names();
        // At most the newest CHANGES_LISTED: kept in memory.
        let (joined, _) = join.finish(|_| true, None)?;
        overview.changes = Some(
            changes
                .into_iter()
                .zip(joined.collect_rows()?)
                .map(|(c, j)| {
                    let partner = match c.partner() {
                        Some(p) => {
                            names.get(&p).map_or(p.to_string(), |n| format!("{n} ({})", &p.to_string()[..8]))
                        }
                        None => c.kind.as_str().to_string(),
                    };
                    let flag = if j.crowded {
                        Some(NOT_JOINED)
                    } else {
                        j.effect.is_some_and(|e| e.flagged).then_some(FOLLOWED_BY_BLOCKS)
                    };
                    (c.time, c.kind.as_str().to_string(), partner, c.summary(), flag)
                })
                .collect(),
        );
        overview.changes_in_period = changes_in_period;
    }
    Ok((overview, table, Some(stats)))
}

/// The report's rows, read once: rolled up per partner, app and user, and
/// with a proposal, replayed for the impact section (the summary alone is
/// kept). The summary is fed the replayed rows in output order, sorted on
/// disk past the budget, unless `named_alike`: when every row names its
/// partner as the others do, nothing the summary keeps depends on the
/// order (counts, sums, minima and maxima, distinct users and apps, the
/// partner's name), so the rows go to it as they are replayed, unsorted.
/// The rows' own read errors are the caller's to check.
fn rolled_up(
    plan: &OverviewPlan,
    rows: &mut impl Iterator<Item = ActivityRow>,
    table: &ActivityTable,
    (current, proposed): (Option<&Policy>, Option<&Policy>),
    named_alike: bool,
) -> Result<(Rolled, Option<Summary>)> {
    let budget = plan.activity.groups_in_memory;
    let mut rollups = Rollups::new(budget);
    let mut rows = rows.inspect(|r| rollups.add(r));
    let Some(p) = proposed else {
        rows.for_each(drop);
        return Ok((rollups.finish()?, None));
    };
    let directory = Directory::load(&plan.directory)?;
    let inputs = Inputs {
        current,
        proposed: p,
        groups: directory.groups.as_ref(),
        identities: directory.identities.as_ref(),
        history: None,
        apps: &directory.apps,
        ca: &directory.ca,
    };
    let replayer = Replayer::new(&inputs);
    // The report counts impacts; it lists no calibration mismatch.
    let mut summary = Summarizer::new(Some(&table.totals), current.is_some(), budget).without_mismatches();
    if named_alike {
        replayer.each(&mut rows, |r| summary.add(&r))?;
    } else {
        let mut replayed = super::replay::replayed(&mut rows, &replayer, budget, |_| true)?;
        for r in replayed.by_ref() {
            summary.add(&r)?;
        }
        replayed.finish()?;
    }
    Ok((rollups.finish()?, Some(summary.finish()?.0)))
}

/// The report from activity tables (`activity --format csv --by user`, or a
/// query's result brought back from where the logs live). They hold no
/// per-sign-in times, so the per-day series and the change timeline are
/// left out, and the period is what the tables cover. The totals, partners
/// and first sightings (which the summary needs before the rows) are added
/// up as the tables are read; the rows come after, sorted, on disk past
/// the budget.
fn from_tables(
    plan: &OverviewPlan,
    paths: &[PathBuf],
    notes: Notes<'_>,
) -> Result<(ActivityTable, Daily, Stream<ActivityRow>)> {
    if plan.audit.is_some() || !plan.activity.window.is_open() {
        bail!(
            "--audit, --since and --until need sign-in logs: an activity table has no per-sign-in times \
             (write the query or the table for the period you want instead)"
        );
    }
    let tenant = plan.activity.tenant;
    // Sums, minima and maxima: the same whether a group's parts are seen
    // one by one or as one row.
    let mut table = ActivityTable::read_back(tenant, GroupBy::User);
    let mut daily = Daily::new(plan.activity.window, plan.activity.groups_in_memory);
    let t = read_tables(paths, plan.activity.groups_in_memory, true, |r| {
        table.count(r);
        daily.add_row(tenant, r);
    })?;
    if t.by != GroupBy::User {
        bail!(
            "the report lists users and apps: give it an activity table --by user (these are --by {})",
            if t.by == GroupBy::App { "app" } else { "tenant" }
        );
    }
    notes(&format!(
        "report from the {} row(s) of {} activity table(s); the per-day chart needs sign-in logs and is left out",
        t.read,
        paths.len()
    ));
    Ok((table, daily, t.rows))
}
