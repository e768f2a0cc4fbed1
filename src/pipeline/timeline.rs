//! `timeline`: each cross-tenant policy change in the audit log, what it
//! changed, the policy before it (rebuilt from the one in force now), and
//! the partner's sign-ins around it.

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;

use anyhow::{bail, Result};
use chrono::Duration;

use super::inputs::policy;
use super::source::{ReadOptions, Source};
use super::{Notes, Rejects};
use crate::analysis::runs::{Spool, Stream};
use crate::analysis::timeline::{Brief, Join, Timeline, TimelineRun, MAX_CHANGES_NEAR};
use crate::model::{Guid, Window};
use crate::policy::change::PolicyChange;
use crate::policy::history::{checks_of_trail, MAX_EPOCHS};

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
    let budget = plan.groups_in_memory.map(|b| b.min(CHANGES_IN_MEMORY));
    let (changes, audit) = plan.audit.read_changes(&plan.read, super::again(&mut rejects), budget)?;
    let trail = read_trail(changes, budget, policy.is_some(), |c| {
        (plan.all || (c.succeeded && c.kind.changes_access())) && plan.period.contains(c.time)
    })?;
    let ours = our_tenant(trail.owners.iter().copied(), plan.tenant)?;
    // The changes a history undoes let go once their checks are made.
    let checks = match &policy {
        Some(p) => {
            let alters: Vec<bool> = trail.briefs.iter().map(|b| b.alters).collect();
            let all = checks_of_trail(p, &Vec::from(trail.newest), &alters);
            trail.listed.iter().map(|&i| all[i].clone()).collect()
        }
        None => vec![],
    };
    let (effects, names, signins, crowded, joined) = match &plan.signins {
        None => (vec![], Default::default(), None, vec![], 0),
        Some(source) => {
            let mut join = Join::new(&trail.briefs, ours, plan.window, plan.grace, plan.groups_in_memory);
            let stats = source.read_signins(&plan.read, Window::default(), rejects, |s| join.add(&s))?;
            if !join.crowded().is_empty() {
                notes(&format!(
                    "{} change(s) not joined with the sign-ins: each one's window holds more than {MAX_CHANGES_NEAR} other changes to the same configuration",
                    join.crowded().len()
                ));
            }
            let crowded = trail.listed.iter().map(|i| join.crowded().binary_search(i).is_ok()).collect();
            let (names, joined) = (join.names(), join.joined);
            (join.finish(&trail.listed)?, names, Some(stats), crowded, joined)
        }
    };
    let listed = Timeline::new((trail.changes, trail.listed.len()), effects, checks, crowded, names);
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

/// Changes sorted in memory at most, past them through a temporary folder
/// (some 1 KB each).
const CHANGES_IN_MEMORY: usize = 16_384;

/// An audit trail read once in time order: what the join and the checks
/// need of every change, the newest changes a history undoes, and the
/// changes to list, kept to be read again.
struct Trail {
    briefs: Vec<Brief>,
    /// The newest changes that alter access, at most [`MAX_EPOCHS`] (none
    /// unless asked for).
    newest: VecDeque<PolicyChange>,
    /// The places of the changes listed among all, ascending.
    listed: Vec<usize>,
    changes: Stream<PolicyChange>,
    owners: BTreeSet<Guid>,
}

fn read_trail(
    mut changes: Stream<PolicyChange>,
    budget: Option<usize>,
    newest_wanted: bool,
    listed: impl Fn(&PolicyChange) -> bool,
) -> Result<Trail> {
    let mut kept = Spool::new("timeline", budget);
    let mut trail = Trail {
        briefs: vec![],
        newest: VecDeque::new(),
        listed: vec![],
        changes: Stream::memory(vec![]),
        owners: BTreeSet::new(),
    };
    for c in changes.by_ref() {
        let brief = Brief::of(&c);
        trail.owners.extend(c.owner);
        if newest_wanted && brief.alters {
            if trail.newest.len() == MAX_EPOCHS {
                trail.newest.pop_front();
            }
            trail.newest.push_back(c.clone());
        }
        if listed(&c) {
            trail.listed.push(trail.briefs.len());
            kept.push(c)?;
        }
        trail.briefs.push(brief);
    }
    changes.finish()?;
    trail.changes = kept.finish()?;
    Ok(trail)
}
