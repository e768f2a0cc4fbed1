//! What reading the inputs came to: the counts every summary reports.

use std::collections::BTreeMap;

/// Counts for the run summary, whatever the source (exports or a store).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ReadStats {
    pub files: u64,
    pub bytes_read: u64,
    pub records_read: u64,
    pub invalid_records: u64,
    /// Well-formed records that are not of the kind read, by reason.
    pub ignored: BTreeMap<String, u64>,
    /// Notices about whole files (empty, skipped companion files).
    pub notices: Vec<String>,
    pub by_event_type: BTreeMap<&'static str, u64>,
}
