//! What can be read: the input formats (`--input-format`) and the kinds of
//! record (sign-ins, audit events), each saying how one framed JSON record
//! or one CSV row becomes canonical.

use super::csv_exports as csv;
use super::normalize::{Context, FieldError};
use super::{audit, json};
use crate::model::SignIn;

/// `--input-format`: what to read the inputs as. `auto` decides per file
/// from its content.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum InputFormat {
    #[default]
    Auto,
    /// Microsoft Graph signIn JSON (v1.0 or beta): a page, pages, an array or NDJSON.
    Graph,
    /// Diagnostic-settings stream: `{"records": [...]}` or one record per line.
    Diagnostic,
    /// Log Analytics / Sentinel rows as JSON (array, NDJSON or a query API response).
    LogAnalyticsJson,
    /// Log Analytics portal CSV export.
    LogAnalyticsCsv,
    /// Entra admin center "Download CSV".
    PortalCsv,
    /// Entra admin center "Download JSON".
    PortalJson,
}

/// The name the user types (`log-analytics-csv`), not the Rust one.
impl std::fmt::Display for InputFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = clap::ValueEnum::to_possible_value(self);
        f.write_str(name.as_ref().map_or("?", |v| v.get_name()))
    }
}

impl InputFormat {
    pub(super) fn is_csv(self) -> bool {
        matches!(self, InputFormat::LogAnalyticsCsv | InputFormat::PortalCsv)
    }
    pub(super) fn is_json(self) -> bool {
        !self.is_csv() && self != InputFormat::Auto
    }
}

/// What one record turned out to be.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Not boxed: a box made on the thread that parsed the record was
    /// freed on the one that merges, a free across threads a record.
    One(T),
    /// A Log Analytics query response holds many rows in one document;
    /// rows not of this kind are counted by reason, and a bad row costs
    /// that row only: its error and its text travel on.
    Many(Vec<T>, Vec<String>, Vec<BadRow>),
    /// Well-formed but not of the kind being read (audit events among
    /// sign-ins, other diagnostic categories): counted by reason, never
    /// silently dropped.
    Ignored(String),
}

/// One row of a many-row document that could not be read.
#[derive(Debug)]
pub struct BadRow {
    pub error: super::normalize::FieldError,
    /// The row as JSON text, for the rejects file.
    pub raw: String,
}

/// A kind of record the pipeline can read: how one framed JSON record or
/// one CSV row becomes canonical.
pub trait RecordKind: Clone + Send + Sync + 'static {
    type Item: Send;
    fn parse_json(
        &self,
        bytes: &[u8],
        ctx: &Context,
        format: InputFormat,
    ) -> Result<Parsed<Self::Item>, FieldError>;
    /// Recognises a CSV header, or says why this file is not of this kind.
    fn csv_header(
        &self,
        names: Vec<String>,
        delimiter: u8,
        file_name: Option<&str>,
    ) -> Result<csv::Header, String>;
    fn parse_csv(
        &self,
        header: &csv::Header,
        row: csv::Row<'_>,
        ctx: &Context,
    ) -> Result<Parsed<Self::Item>, FieldError>;
    /// The label a record is counted under in [`ReadStats::by_event_type`](crate::model::ReadStats::by_event_type).
    fn label(&self, item: &Self::Item) -> &'static str;
}

/// Sign-in records: Graph signIn, diagnostic sign-in categories, Log
/// Analytics SigninLogs (and siblings), portal downloads.
#[derive(Clone, Copy, Debug, Default)]
pub struct SignIns;

impl RecordKind for SignIns {
    type Item = SignIn;
    fn parse_json(
        &self,
        bytes: &[u8],
        ctx: &Context,
        format: InputFormat,
    ) -> Result<Parsed<SignIn>, FieldError> {
        json::parse_record(bytes, ctx, format)
    }
    fn csv_header(
        &self,
        names: Vec<String>,
        delimiter: u8,
        file_name: Option<&str>,
    ) -> Result<csv::Header, String> {
        csv::Header::new(names, delimiter, file_name)
    }
    fn parse_csv(
        &self,
        header: &csv::Header,
        row: csv::Row<'_>,
        ctx: &Context,
    ) -> Result<Parsed<SignIn>, FieldError> {
        if header.dialect == csv::Dialect::PortalAuthDetails {
            return Ok(Parsed::Ignored("rows of the portal's AuthDetails companion file".into()));
        }
        json::classify_csv(header.to_raw(row)?, ctx)
    }
    fn label(&self, item: &SignIn) -> &'static str {
        item.event_type.as_str()
    }
}

/// Audit events (directoryAudit) of every export format.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuditEvents;

impl RecordKind for AuditEvents {
    type Item = crate::model::AuditEvent;
    fn parse_json(
        &self,
        bytes: &[u8],
        ctx: &Context,
        format: InputFormat,
    ) -> Result<Parsed<Self::Item>, FieldError> {
        audit::parse_record(bytes, ctx, format)
    }
    fn csv_header(
        &self,
        names: Vec<String>,
        delimiter: u8,
        _file_name: Option<&str>,
    ) -> Result<csv::Header, String> {
        csv::Header::new_audit(names, delimiter)
    }
    fn parse_csv(
        &self,
        header: &csv::Header,
        row: csv::Row<'_>,
        ctx: &Context,
    ) -> Result<Parsed<Self::Item>, FieldError> {
        audit::parse_value(header.to_json(row), ctx)
    }
    fn label(&self, _item: &Self::Item) -> &'static str {
        "audit"
    }
}
