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
use crate::analysis::timeline::{Brief, Join, Place, Timeline, TimelineRun, MAX_CHANGES_NEAR};
use crate::model::{Guid, Window};
use crate::policy::change::PolicyChange;
use crate::policy::history::{undoable, TrailChecks, MAX_EPOCHS};

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
pub(super) fn our_tenant(owners: &BTreeSet<Guid>, given: Option<Guid>) -> Result<Option<Guid>> {
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
    let join = plan.signins.is_some().then(|| Join::start(plan.window, plan.grace, plan.groups_in_memory));
    let listed = |c: &PolicyChange| (plan.all || c.alters_access()) && plan.period.contains(c.time);
    let mut trail = read_trail(changes, budget, (policy.is_some(), join), listed)?;
    let ours = our_tenant(&trail.owners, plan.tenant)?;
    // The changes a history undoes let go once their checks are made.
    let checks = policy.as_ref().map(|p| TrailChecks::new(p, trail.newest.make_contiguous(), trail.altering));
    drop(trail.newest);
    let (joined, names, signins, joined_sign_ins) = match (&plan.signins, trail.join) {
        (Some(source), Some(mut join)) => {
            join.seal(ours);
            let stats = source.read_signins(&plan.read, Window::default(), rejects, |s| join.add(&s))?;
            if !join.crowded().is_empty() {
                notes(&format!(
                    "{} change(s) not joined with the sign-ins: each one's window holds more than {MAX_CHANGES_NEAR} other changes to the same configuration",
                    join.crowded().len()
                ));
            }
            let (names, joined_sign_ins) = (join.names(), join.joined);
            let places = &trail.places;
            let joined = join.finish(|i| places[i].listed, budget)?;
            (Some(joined), names, Some(stats), joined_sign_ins)
        }
        _ => (None, Default::default(), None, 0),
    };
    let listed = Timeline::new(trail.places, trail.changes, joined, checks, names);
    let run = TimelineRun {
        audit,
        signins,
        joined_sign_ins,
        policy: policy.map(|p| p.source),
        window: plan.window,
        grace: plan.grace,
    };
    Ok((listed, run))
}

/// Changes sorted in memory at most, past them through a temporary folder
/// (some 1 KB each).
const CHANGES_IN_MEMORY: usize = 16_384;

/// An audit trail read once in time order: of every change, its place;
/// the newest changes a history undoes; the join, given each change; and
/// the changes to list, kept to be read again.
struct Trail {
    places: Vec<Place>,
    /// The newest changes that alter access, at most [`MAX_EPOCHS`] (none
    /// unless asked for), as a history reads them ([`undoable`]).
    newest: VecDeque<PolicyChange>,
    /// How many changes alter access.
    altering: usize,
    join: Option<Join>,
    changes: Stream<PolicyChange>,
    owners: BTreeSet<Guid>,
}

fn read_trail(
    mut changes: Stream<PolicyChange>,
    budget: Option<usize>,
    (newest_wanted, join): (bool, Option<Join>),
    listed: impl Fn(&PolicyChange) -> bool,
) -> Result<Trail> {
    let mut kept = Spool::new("timeline", budget);
    let mut trail = Trail {
        places: vec![],
        newest: VecDeque::new(),
        altering: 0,
        join,
        changes: Stream::memory(vec![]),
        owners: BTreeSet::new(),
    };
    for c in changes.by_ref() {
        let brief = Brief::of(&c);
        trail.owners.extend(c.owner);
        if let Some(join) = &mut trail.join {
            join.push(&brief);
        }
        trail.altering += usize::from(brief.alters);
        if newest_wanted && brief.alters {
            if trail.newest.len() == MAX_EPOCHS {
                trail.newest.pop_front();
            }
            trail.newest.push_back(undoable(&c));
        }
        let place = Place { alters: brief.alters, listed: listed(&c) };
        if place.listed {
            kept.push(c)?;
        }
        trail.places.push(place);
    }
    changes.finish()?;
    trail.changes = kept.finish()?;
    Ok(trail)
}
