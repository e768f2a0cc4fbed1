//! `query`: the activity table's rules written for another engine.

use anyhow::Result;

use super::Notes;
use crate::analysis::query::query as write_query;

// The command line's words for a query, named here for it.
pub(crate) use crate::analysis::query::{Engine, QuerySpec, Records};

/// The query text; notes what the engine will do with an open window.
pub(crate) fn query(spec: &QuerySpec, notes: Notes) -> Result<String> {
    if spec.window.since.is_none() && spec.engine == Engine::Kql {
        notes(
            "no --since: Log Analytics then reads the portal's time range (24 hours unless changed) \
             or the API's timespan; give --since to say which sign-ins",
        );
    }
    write_query(spec).map_err(anyhow::Error::msg)
}
