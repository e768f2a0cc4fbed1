//! `propose`: the least-privilege policy from the sign-ins (or an activity
//! table), proved by replaying them against it.

use std::path::PathBuf;

use anyhow::{bail, Result};

use super::activity::{activity_stream, ActivityPlan};
use super::inputs::{policy, Directory, DirectoryPaths};
use super::source::read_tables;
use super::{Notes, Rejects};
use crate::analysis::propose::{propose as build, Proposal, ProposeInputs};
use crate::analysis::replay::Inputs;
use crate::model::GroupBy;

// The command line's choice of what a proposal keeps, named here for it.
pub(crate) use crate::analysis::propose::Keep;

pub(crate) struct ProposePlan {
    /// The sign-ins and the period; the grain is always the user.
    pub(crate) activity: ActivityPlan,
    pub(crate) current: Option<PathBuf>,
    pub(crate) directory: DirectoryPaths,
    pub(crate) min_sign_ins: u64,
    pub(crate) keep: Vec<Keep>,
}

/// Builds the proposal. Notes: what was read, policy warnings. The rows
/// come from an activity table --by user, or from the logs grouped (as a
/// stream, on disk past `--groups-in-memory`).
pub(crate) fn propose(plan: &ProposePlan, notes: Notes<'_>, rejects: Rejects<'_>) -> Result<Proposal> {
    let current = plan.current.as_deref().map(|p| policy(p, notes)).transpose()?;
    let directory = Directory::load(&plan.directory)?;
    let placeholder = crate::policy::Policy::default();
    let inputs = ProposeInputs {
        replay: Inputs {
            current: current.as_ref(),
            proposed: &placeholder,
            groups: directory.groups.as_ref(),
            identities: directory.identities.as_ref(),
            history: None,
            apps: &directory.apps,
            ca: &directory.ca,
        },
        min_sign_ins: plan.min_sign_ins,
        keep: &plan.keep,
    };
    let budget = plan.activity.groups_in_memory;
    if let Some(paths) = plan.activity.source.activity_tables()? {
        if !plan.activity.window.is_open() {
            bail!("--since and --until need sign-in logs: an activity table has no per-sign-in times");
        }
        let mut t = read_tables(&paths, budget, false, |_| {})?;
        if t.by != GroupBy::User {
            bail!("propose allows users and apps one by one: give it an activity table --by user");
        }
        notes(&format!("proposing from the {} row(s) of {} activity table(s)", t.read, paths.len()));
        let proposal = build(&mut t.rows, &inputs, budget)?;
        t.rows.finish()?;
        return Ok(proposal);
    }
    let activity = ActivityPlan { by: GroupBy::User, ..plan.activity.clone() };
    let (table, mut rows, stats) = activity_stream(&activity, vec![], rejects)?;
    notes(&format!(
        "proposing from {} cross-tenant sign-in(s) in {} record(s) read",
        table.totals.cross_tenant, stats.records_read
    ));
    let proposal = build(&mut rows, &inputs, budget)?;
    rows.finish()?;
    Ok(proposal)
}
