//! `activity`: the cross-tenant sign-ins of a source, grouped.

use anyhow::Result;
use chrono::{DateTime, Utc};

use super::source::{ReadOptions, Source};
use super::Rejects;
use crate::analysis::activity::{Activity, ActivityRow, InMemory, ROW_ORDER};
use crate::analysis::runs::{Line, Order, Record};
use crate::model::{GroupBy, Guid, ReadStats, SignIn, Window};

// What the command line gets back from here, named here so that it reads
// the pipeline's results without reaching past the pipeline.
pub(crate) use crate::analysis::activity::{ActivityTable, Finished, RowStream};
pub(crate) use crate::analysis::runs::LineWriter;

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
    /// Groups (and replayed rows) held in memory before they move to a
    /// temporary folder; `None`: never.
    pub(crate) groups_in_memory: Option<usize>,
}

/// Reads the source and groups its sign-ins: the table (its `rows` empty)
/// and the rows in output order as a stream, for sinks that take them one
/// at a time. With `epoch_starts`, each group is also counted per policy
/// epoch.
pub(crate) fn activity_stream(
    plan: &ActivityPlan,
    epoch_starts: Vec<DateTime<Utc>>,
    rejects: Rejects<'_>,
) -> Result<(ActivityTable, RowStream, ReadStats)> {
    streamed(plan, epoch_starts, rejects, None::<fn(&SignIn)>)
}

/// [`activity_stream`] with `tap`, which sees every sign-in read, in the
/// window or not (from a store, also the days before the window).
pub(crate) fn tapped_stream(
    plan: &ActivityPlan,
    rejects: Rejects<'_>,
    tap: impl FnMut(&SignIn) + Send,
) -> Result<(ActivityTable, RowStream, ReadStats)> {
    streamed(plan, vec![], rejects, Some(tap))
}

/// [`activity_stream`] for a caller that turns every row into a record of
/// its own, in `order` (see [`Activity::finish_stream_then`]): past the
/// memory budget at the user grain, each partition of the grouping is
/// mapped and sorted where it is finished, instead of the grouping's rows
/// being sorted a second time.
pub(crate) fn activity_stream_then<R, M>(
    plan: &ActivityPlan,
    epoch_starts: Vec<DateTime<Utc>>,
    rejects: Rejects<'_>,
    order: Order<R>,
    budget: (Option<usize>, InMemory),
    make: impl FnOnce(&ActivityTable) -> M,
) -> Result<(ActivityTable, Finished<R>, ReadStats)>
where
    R: Record + Send,
    M: Fn(ActivityRow) -> R + Sync,
{
    let (acc, stats) = read(plan, epoch_starts, rejects, None::<fn(&SignIn)>)?;
    let (table, rows) = acc.finish_stream_then(plan.tenant, plan.by, order, budget, make)?;
    Ok((table, rows, stats))
}

/// [`activity_stream`] for a sink that writes each row as a line of its
/// own (`line` appends a row's bytes): past the memory budget at the user
/// grain, each partition's rows are written out where the partition is
/// finished, on the pool, and the merge hands the lines on as they are
/// ([`Line`]). Else the rows come as they are, for the sink to write as
/// they come (written on the pool all the same, and without holding every
/// line besides every row).
pub(crate) fn activity_lines(
    plan: &ActivityPlan,
    rejects: Rejects<'_>,
    line: &LineWriter<ActivityRow>,
) -> Result<(ActivityTable, Finished<Line>, ReadStats)> {
    let written = |_: &ActivityTable| move |row: ActivityRow| Line::new(&row, ROW_ORDER, line);
    let budget = (plan.groups_in_memory, InMemory::Rows);
    activity_stream_then(plan, vec![], rejects, Line::ORDER, budget, written)
}

/// Reads the source and hands the grouping's rows on as a stream.
fn streamed(
    plan: &ActivityPlan,
    epoch_starts: Vec<DateTime<Utc>>,
    rejects: Rejects<'_>,
    tap: Option<impl FnMut(&SignIn) + Send>,
) -> Result<(ActivityTable, RowStream, ReadStats)> {
    let (acc, stats) = read(plan, epoch_starts, rejects, tap)?;
    let (table, rows) = acc.finish_stream(plan.tenant, plan.by)?;
    Ok((table, rows, stats))
}

/// Reads the source into a grouping, not yet finished.
fn read(
    plan: &ActivityPlan,
    epoch_starts: Vec<DateTime<Utc>>,
    rejects: Rejects<'_>,
    mut tap: Option<impl FnMut(&SignIn) + Send>,
) -> Result<(Activity, ReadStats)> {
    let mut acc = Activity::with_window(plan.window).for_grain(plan.by);
    if !epoch_starts.is_empty() {
        acc = acc.split_by_epochs(epoch_starts);
    }
    if let Some(n) = plan.groups_in_memory {
        acc = acc.spill_beyond(n);
    }
    // A tap sees history before the window too (new partners in a report).
    let days = if tap.is_some() { Window::new(None, plan.window.until) } else { plan.window };
    let stats = plan.source.read_signins(&plan.read, days, rejects, |s| {
        if let Some(t) = tap.as_mut() {
            t(&s);
        }
        acc.add(s)
    })?;
    Ok((acc, stats))
}
