//! Assembly: what each command computes, without command-line flags or
//! formatting. A command's flags become a plan; one call here reads the
//! inputs ([`source`]), runs the analysis and returns the result for the
//! render layer. Notes for people (warnings, what was inferred) go to the
//! [`Notes`] callback the caller gives, in the order they arise.
//!
//! - [`source`]: where records come from (exports, the store) and how to read them.
//! - [`inputs`]: what evaluation may need besides sign-ins (policies, directory).
//! - [`activity`], [`replay`], [`timeline`], [`overview`]: one entry point each.
//! - [`store`]: adding exports to the history store.
//! - [`policy`]: `policy show`, `check`, `diff`.
//! - [`query`]: the activity table as KQL or Spark SQL for the engine the logs live in.
//! - [`propose`]: the least-privilege policy, proved by replay.
//! - [`generate`]: synthetic sign-ins and audit trails.

pub(crate) mod activity;
pub(crate) mod generate;
pub(crate) mod inputs;
pub(crate) mod overview;
pub(crate) mod policy;
pub(crate) mod propose;
pub(crate) mod query;
pub(crate) mod replay;
pub(crate) mod source;
pub(crate) mod store;
pub(crate) mod timeline;

/// Where notes for people go (stderr, unless the user asked for quiet).
pub(crate) type Notes<'a> = &'a dyn Fn(&str);

/// Where skipped records go, when the user asked for them (`--rejects`).
pub(crate) type Rejects<'a> = Option<&'a mut (dyn std::io::Write + Send)>;

/// The rejects writer again, for one more read (`--rejects` takes the
/// skipped records of every read of a run).
pub(crate) fn again<'b>(r: &'b mut Rejects<'_>) -> Rejects<'b> {
    r.as_mut().map(|w| &mut **w as &mut (dyn std::io::Write + Send))
}

/// Reads `rows` through once, showing each to `see`, and gives back those
/// it keeps (`see` returns true; an error stops the reading) in the same
/// order for a second reading:
/// in memory up to `budget` rows, on disk past it. For a document whose
/// summary of every row comes before the rows (or whose columns are as
/// wide as the widest row).
pub(crate) fn read_twice<T: crate::analysis::runs::Record>(
    rows: impl Iterator<Item = T>,
    budget: Option<usize>,
    mut see: impl FnMut(&T) -> anyhow::Result<bool>,
) -> anyhow::Result<crate::analysis::runs::Stream<T>> {
    let mut spool = crate::analysis::runs::Spool::new("document", budget);
    for row in rows {
        if see(&row)? {
            spool.push(row)?;
        }
    }
    spool.finish()
}
