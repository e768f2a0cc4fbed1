//! `report`: the figures of the recurring overview, from one read of the
//! sign-ins: activity at the user grain over the period, per-day counts
//! (with history before the period, for "new partners"), the policy change
//! timeline, and the impact of a proposal.

use std::path::PathBuf;

use anyhow::Result;
use chrono::Duration;

use super::activity::{grouped, ActivityPlan};
use super::inputs::{policy, Directory, DirectoryPaths};
use super::source::Source;
use super::{Notes, Rejects};
use crate::analysis::activity::ActivityTable;
use crate::analysis::overview::{Daily, Overview};
use crate::analysis::replay::{replay, summarize, Inputs};
use crate::analysis::timeline::Join;
use crate::model::{GroupBy, ReadStats, SignIn};
use crate::policy::change::PolicyChange;

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

/// Computes the overview. Notes: policy warnings.
pub(crate) fn overview(
    plan: &OverviewPlan,
    notes: Notes<'_>,
    rejects: Rejects<'_>,
) -> Result<(Overview, ActivityTable, ReadStats)> {
    let current = plan.current.as_deref().map(|p| policy(p, notes)).transpose()?;
    let proposed = plan.proposed.as_deref().map(|p| policy(p, notes)).transpose()?;
    let period = plan.activity.window;
    let changes: Option<Vec<PolicyChange>> = match &plan.audit {
        Some(source) => {
            let (changes, _) = source.read_changes(&plan.activity.read, None)?;
            // A store with no audit events has no timeline to show.
            (!(source.is_store() && changes.is_empty())).then_some(changes)
        }
        None => None,
    };
    let changes = changes.map(|c| {
        c.into_iter()
            .filter(|c| c.succeeded && c.kind.changes_access() && period.contains(c.time))
            .collect::<Vec<_>>()
    });
    let mut daily = Daily::new(period);
    let mut join = changes.as_ref().map(|c| Join::new(c, plan.activity.tenant, plan.window, plan.grace));
    let activity = ActivityPlan { by: GroupBy::User, ..plan.activity.clone() };
    let (table, stats) = grouped(
        &activity,
        vec![],
        rejects,
        Some(|s: &SignIn| {
            daily.add(s);
            if let Some(j) = join.as_mut() {
                j.add(s);
            }
        }),
    )?;
    let mut overview = Overview::build(&table, &daily, current.as_ref(), period.since);
    if let (Some(changes), Some(join)) = (changes, join) {
        let names = join.names();
        let effects = join.finish();
        overview.changes = Some(
            changes
                .into_iter()
                .zip(effects)
                .map(|(c, e)| {
                    let partner = match c.partner() {
                        Some(p) => {
                            names.get(&p).map_or(p.to_string(), |n| format!("{n} ({})", &p.to_string()[..8]))
                        }
                        None => c.kind.as_str().to_string(),
                    };
                    (c.time, c.kind.as_str().to_string(), partner, c.summary(), e.is_some_and(|e| e.flagged))
                })
                .collect(),
        );
    }
    if let Some(p) = &proposed {
        let directory = Directory::load(&plan.directory)?;
        let inputs = Inputs {
            current: current.as_ref(),
            proposed: p,
            groups: directory.groups.as_ref(),
            identities: directory.identities.as_ref(),
            history: None,
            apps: &directory.apps,
            ca: &directory.ca,
        };
        let rows = replay(table.rows.clone(), &inputs);
        overview.impact = Some(summarize(&rows, Some(&table.totals), current.is_some()));
    }
    Ok((overview, table, stats))
}
