//! `timeline`: each cross-tenant policy change in the audit log, what it
//! changed, the policy before it (rebuilt from the one in force now), and
//! the partner's sign-ins around it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::Duration;

use super::inputs::policy;
use super::source::{ReadOptions, Source};
use super::{Notes, Rejects};
use crate::analysis::timeline::{Join, Timeline, TimelineRun, MAX_CHANGES_NEAR};
use crate::model::{Guid, Window};
use crate::policy::history::reconstruct;

/// What to list.
pub(crate) struct TimelinePlan {
    /// Audit events (exports or a store).
    pub(crate) audit: Source,
    /// Sign-ins to join with each change: exports, the same store, or none.
    pub(crate) signins: Option<Source>,
    pub(crate) read: ReadOptions,
    pub(crate) tenant: Option<Guid>,
    /// The policy in force at the end of the audit window.
    pub(crate) policy: Option<PathBuf>,
    /// How far before and after each change to look, and the grace after it.
    pub(crate) window: Duration,
    pub(crate) grace: Duration,
    /// Only changes in this period are listed.
    pub(crate) period: Window,
    /// Also failed attempts and events that change no access.
    pub(crate) all: bool,
    /// The users near changes held in memory before the temporary folder.
    pub(crate) groups_in_memory: Option<usize>,
}

/// Our tenant: the one given, else the one the audit logs belong to.
pub(super) fn our_tenant(owners: impl Iterator<Item = Guid>, given: Option<Guid>) -> Result<Option<Guid>> {
    let owners: BTreeSet<Guid> = owners.collect();
    if given.is_none() && owners.len() > 1 {
        let list: Vec<String> = owners.iter().map(Guid::to_string).collect();
        bail!(
            "the audit logs belong to {} tenants ({}); say which is ours with --tenant ID",
            owners.len(),
            list.join(", ")
        );
    }
    Ok(given.or_else(|| owners.iter().next().copied()))
}

pub(crate) fn timeline(
    plan: &TimelinePlan,
    notes: Notes<'_>,
    mut rejects: Rejects<'_>,
) -> Result<(Timeline, TimelineRun)> {
    let policy = plan.policy.as_deref().map(|p| policy(p, notes)).transpose()?;
    let (changes, audit) = plan.audit.read_changes(&plan.read, super::again(&mut rejects))?;
    let ours = our_tenant(changes.iter().filter_map(|c| c.owner), plan.tenant)?;
    // Only each change's check is listed: the rebuilt policies are let go
    // before the sign-ins are read.
    let checks = policy.as_ref().map_or_else(Vec::new, |p| reconstruct(p, &changes).checks);
    let (effects, names, signins, joined) = match &plan.signins {
        None => (vec![], Default::default(), None, 0),
        Some(source) => {
            let mut join = Join::new(&changes, ours, plan.window, plan.grace, plan.groups_in_memory);
            let stats = source.read_signins(&plan.read, Window::default(), rejects, |s| join.add(&s))?;
            if !join.crowded().is_empty() {
                notes(&format!(
                    "{} change(s) not joined with the sign-ins: each one's window holds more than {MAX_CHANGES_NEAR} other changes to the same configuration",
                    join.crowded().len()
                ));
            }
            let mut crowded = vec![false; changes.len()];
            join.crowded().iter().for_each(|&i| crowded[i] = true);
            let (names, joined) = (join.names(), join.joined);
            (join.finish()?, names, Some((stats, crowded)), joined)
        }
    };
    let (signins, crowded) = signins.map_or((None, vec![]), |(stats, crowded)| (Some(stats), crowded));
    let mut listed = Timeline { changes, effects, checks, names, crowded };
    listed.retain(|c| (plan.all || (c.succeeded && c.kind.changes_access())) && plan.period.contains(c.time));
    let run = TimelineRun {
        audit,
        signins,
        joined_sign_ins: joined,
        policy: policy.map(|p| p.source),
        window: plan.window,
        grace: plan.grace,
    };
    Ok((listed, run))
}
