//! `activity`: the cross-tenant sign-ins of a source, grouped.

use chrono::{DateTime, Utc};

use anyhow::Result;

use super::source::{ReadOptions, Source};
use super::Rejects;
use crate::analysis::activity::{Activity, ActivityTable};
use crate::model::{GroupBy, Guid, ReadStats, SignIn, Window};

/// What to group.
#[derive(Clone)]
pub(crate) struct ActivityPlan {
    pub(crate) source: Source,
    pub(crate) read: ReadOptions,
    /// Sign-ins outside it are counted, not grouped.
    pub(crate) window: Window,
    /// Our tenant; inferred from the logs when not given.
    pub(crate) tenant: Option<Guid>,
    pub(crate) by: GroupBy,
}

/// Reads the source and groups its sign-ins.
pub(crate) fn activity(plan: &ActivityPlan, rejects: Rejects<'_>) -> Result<(ActivityTable, ReadStats)> {
    grouped(plan, vec![], rejects, None::<fn(&SignIn)>)
}

/// [`activity`], counting each group per policy epoch when `epoch_starts`
/// is not empty. `tap`, when given, sees every sign-in read, in the window
/// or not (from a store, also the days before the window).
pub(crate) fn grouped(
    plan: &ActivityPlan,
    epoch_starts: Vec<DateTime<Utc>>,
    rejects: Rejects<'_>,
    mut tap: Option<impl FnMut(&SignIn) + Send>,
) -> Result<(ActivityTable, ReadStats)> {
    let mut acc = Activity::with_window(plan.window).for_grain(plan.by);
    if !epoch_starts.is_empty() {
        acc = acc.split_by_epochs(epoch_starts);
    }
    // A tap sees history before the window too (new partners in a report).
    let days = if tap.is_some() { Window::new(None, plan.window.until) } else { plan.window };
    let stats = plan.source.read_signins(&plan.read, days, rejects, |s| {
        if let Some(t) = tap.as_mut() {
            t(&s);
        }
        acc.add(s)
    })?;
    Ok((acc.finish(plan.tenant, plan.by)?, stats))
}
