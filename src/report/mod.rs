//! Output: a format-neutral [`Table`] and the sinks that write it, plus the
//! run's atomic output file, progress bar and colour choice.

pub mod activity;
pub mod output;
pub mod overview;
pub mod progress;
pub mod replay;
pub mod siem;
pub mod style;
pub mod table;
pub mod timeline;

pub use output::Output;
pub use table::Table;

use chrono::{DateTime, SecondsFormat, Utc};

/// RFC 3339 in UTC to the second: every export carries at least that, so
/// the same sign-ins give the same text whatever format they came in.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Schema version of every machine-readable output; bumped on any change
/// that could break a consumer (see docs/output.md).
pub const SCHEMA_VERSION: u32 = 1;
