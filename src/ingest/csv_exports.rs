//! CSV exports: the Log Analytics portal export (`TenantId,SourceSystem,
//! TimeGenerated [UTC],...`, nested columns as JSON text, locale dates) and
//! the Entra admin center download (`Date (UTC),Request ID,...`, English
//! column names with stray spaces and a duplicated column).
//!
//! Headers are matched after trimming, collapsing runs of spaces, dropping a
//! ` [UTC]` suffix and ignoring case; of duplicate names the first wins. Each
//! row becomes the same JSON shape the JSON readers see, so one normaliser
//! serves every format.

use rustc_hash::FxHashMap as HashMap;

use serde::de::value::{Error as DeError, MapDeserializer};
use serde::de::{Deserializer, IntoDeserializer, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::lenient::{parse_bool_text, BorrowedText, Embedded, LenientBool, LenientU32, Text};
use super::raw::{
    read_values_later, says_mfa_by_claim, ClaimNote, LeaveAs, MaybeGuid, RawDevice, RawMfaDetail, RawSignIn,
    RawStatus,
};

use crate::model::EventType;

use super::normalize::{read_later_if_needed, FieldError};

/// A batch of rows in one buffer: the fields' text back to back and where
/// each field ends. A record per row cost an allocation (zeroed, grown)
/// made on the reader thread and freed on another, which kept the
/// allocator faulting in fresh pages: a tenth of the time on a portal CSV.
#[derive(Default)]
pub struct Rows {
    text: String,
    /// Where each field is in `text`, all rows after each other.
    spans: Vec<(usize, usize)>,
    rows: Vec<RowAt>,
}

/// The end of a [`Rows`] at some point.
#[derive(Clone, Copy)]
pub struct Mark {
    text: usize,
    spans: usize,
}

/// One row of [`Rows`]: where it is in the file, and its fields or why it
/// could not be read.
pub struct RowAt {
    pub line: u64,
    pub index: u64,
    /// First and past-last index in `spans`.
    fields: Result<(usize, usize), String>,
}

impl Rows {
    /// Room for `rows` rows like `like` (the previous batch), so that a
    /// batch is filled without growing.
    pub fn like(like: &Rows, rows: usize) -> Rows {
        Rows {
            text: String::with_capacity(like.text.len()),
            spans: Vec::with_capacity(like.spans.len()),
            rows: Vec::with_capacity(rows),
        }
    }

    /// Empty, keeping the room made.
    pub fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.rows.clear();
    }

    /// Where the batch ends now: a row is read onto [`Rows::buffers`] past
    /// it, then kept ([`Rows::keep`]) or taken back ([`Rows::truncate`]).
    pub fn mark(&self) -> Mark {
        Mark { text: self.text.len(), spans: self.spans.len() }
    }

    /// The batch's text and field spans, for a reader to add a row to in
    /// place: one copy of each line.
    pub fn buffers(&mut self) -> (&mut String, &mut Vec<(usize, usize)>) {
        (&mut self.text, &mut self.spans)
    }

    /// The fields added since `mark` are the row at `line`, `index`.
    pub fn keep(&mut self, mark: Mark, line: u64, index: u64) {
        self.rows.push(RowAt { line, index, fields: Ok((mark.spans, self.spans.len())) });
    }

    /// Whether what was added since `mark` is a blank line: one field of
    /// spaces or nothing.
    pub fn blank_since(&self, mark: Mark) -> bool {
        let row = Row { text: &self.text, spans: &self.spans[mark.spans..] };
        row.spans.len() == 1 && row.get(0).is_some_and(|f| f.trim().is_empty())
    }

    pub fn truncate(&mut self, mark: Mark) {
        self.text.truncate(mark.text);
        self.spans.truncate(mark.spans);
    }

    pub fn push_error(&mut self, line: u64, index: u64, message: String) {
        self.rows.push(RowAt { line, index, fields: Err(message) });
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }

    /// Each row with its fields, or the message of a row that could not be read.
    pub fn iter(&self) -> impl Iterator<Item = (&RowAt, Result<Row<'_>, &str>)> {
        self.rows.iter().map(|r| {
            let row = match &r.fields {
                Ok((first, last)) => Ok(Row { text: &self.text, spans: &self.spans[*first..*last] }),
                Err(m) => Err(m.as_str()),
            };
            (r, row)
        })
    }
}

/// The fields of one row of [`Rows`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    text: &'a str,
    spans: &'a [(usize, usize)],
}

impl<'a> Row<'a> {
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let &(start, end) = self.spans.get(i)?;
        self.text.get(start..end)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.spans.len()).filter_map(|i| self.get(i))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    LogAnalytics,
    Portal,
    /// The portal's `*_AuthDetails_*.csv` companion file: per-step MFA
    /// details without tenants or apps. Recognised and skipped.
    PortalAuthDetails,
    /// A Log Analytics `AuditLogs` export (read by `timeline`).
    LogAnalyticsAudit,
}

/// Columns only audit exports have.
fn is_audit_header(has: &dyn Fn(&str) -> bool) -> bool {
    has("activitydisplayname")
        || has("activity")
        || has("activity type")
        || has("targetresources")
        || has("auditdata")
}

/// A header, read once per file.
#[derive(Debug)]
pub struct Header {
    pub dialect: Dialect,
    pub delimiter: u8,
    /// Normalised column name -> first position.
    columns: HashMap<String, usize>,
    /// Log Analytics dialects: each column read, by position, with the key
    /// it gets in the row's JSON. Worked out once here, not per row: per
    /// row it cost more than parsing the CSV.
    keys: Vec<(usize, String)>,
    pub names: Vec<String>,
    /// For the portal download: the file kind its name gives.
    pub event_type: Option<EventType>,
    /// The portal download's columns by position, looked up once here: by
    /// name per cell, the lookups cost more than splitting the row.
    portal: PortalColumns,
}

/// Where the admin center download's columns are (see [`PORTAL_FIELDS`]).
#[derive(Debug, Default)]
struct PortalColumns {
    /// (signIn key, what fills it, position) of each of [`PORTAL_FIELDS`]
    /// the file has.
    fields: Vec<(&'static str, Fill, usize)>,
    error_code: Option<usize>,
    status: Option<usize>,
    mfa_result: Option<usize>,
    mfa_auth_detail: Option<usize>,
    /// isCompliant, isManaged, trustType.
    device: [(&'static str, Option<usize>); 3],
}

impl PortalColumns {
    fn new(columns: &HashMap<String, usize>) -> PortalColumns {
        let at = |c: &str| columns.get(c).copied();
        PortalColumns {
            fields: PORTAL_FIELDS
                .iter()
                .filter_map(|(key, column, fill)| at(column).map(|i| (*key, *fill, i)))
                .collect(),
            error_code: at("sign-in error code"),
            status: at("status"),
            mfa_result: at("multifactor authentication result"),
            mfa_auth_detail: at("multifactor authentication auth detail"),
            device: [
                ("isCompliant", at("compliant")),
                ("isManaged", at("managed")),
                ("trustType", at("join type")),
            ],
        }
    }
}

/// The JSON key of each column a Log Analytics row is read from: the
/// header's own name without a `[UTC]` suffix, for the first column of each
/// (normalised) name.
fn json_keys(names: &[String], columns: &HashMap<String, usize>) -> Vec<(usize, String)> {
    names
        .iter()
        .enumerate()
        .filter(|(i, name)| columns.get(&normalize_header(name)) == Some(i))
        .map(|(i, name)| {
            let key = name.trim().trim_start_matches('\u{feff}');
            (i, key.strip_suffix("[UTC]").unwrap_or(key).trim().to_string())
        })
        .collect()
}

pub fn normalize_header(h: &str) -> String {
    let h = h.trim().trim_start_matches('\u{feff}');
    let h = h.strip_suffix("[UTC]").unwrap_or(h);
    h.split_whitespace().collect::<Vec<_>>().join(" ").to_ascii_lowercase()
}

/// The delimiter that splits the header line into the most columns: Excel
/// re-saves use `;` in many locales and tabs for "Unicode text".
pub fn sniff_delimiter(first_line: &str) -> u8 {
    let count = |d: u8| first_line.bytes().filter(|b| *b == d).count();
    // On a tie (a one-column line) the comma wins.
    [b';', b'\t'].into_iter().fold(b',', |best, d| if count(d) > count(best) { d } else { best })
}

impl Header {
    pub fn new(names: Vec<String>, delimiter: u8, file_name: Option<&str>) -> Result<Header, String> {
        let mut columns = HashMap::default();
        for (i, n) in names.iter().enumerate() {
            columns.entry(normalize_header(n)).or_insert(i);
        }
        let has = |c: &str| columns.contains_key(c);
        let dialect = if is_audit_header(&has) {
            return Err("this is an audit log export, not sign-ins (use `xtenant timeline`)".into());
        } else if has("timegenerated") && (has("id") || has("correlationid")) {
            Dialect::LogAnalytics
        } else if has("request id") && has("date (utc)") {
            if has("authentication method") && !has("application") && !has("application id") {
                Dialect::PortalAuthDetails
            } else {
                Dialect::Portal
            }
        } else {
            return Err(format!(
                "not a sign-in export this tool knows: the header starts `{}`; expected a Log Analytics \
                 export (TimeGenerated, Id, ...) or an Entra admin center download (Date (UTC), Request ID, ...)",
                header_start(&names)
            ));
        };
        let event_type = match dialect {
            Dialect::Portal if !has("user id") && has("service principal id") => {
                Some(EventType::ServicePrincipal)
            }
            Dialect::Portal => file_name.and_then(portal_kind_from_name),
            _ => None,
        };
        let keys = json_keys(&names, &columns);
        let portal = PortalColumns::new(&columns);
        let header = Header { dialect, delimiter, columns, keys, names, event_type, portal };
        header.check_required()?;
        Ok(header)
    }

    /// Recognises a Log Analytics `AuditLogs` CSV export.
    pub fn new_audit(names: Vec<String>, delimiter: u8) -> Result<Header, String> {
        let mut columns = HashMap::default();
        for (i, n) in names.iter().enumerate() {
            columns.entry(normalize_header(n)).or_insert(i);
        }
        let has = |c: &str| columns.contains_key(c);
        if !is_audit_header(&has) {
            return Err(if has("request id") || has("resulttype") || has("usertype") {
                "this is a sign-in export, not audit events (give it to `timeline --signins`)".into()
            } else {
                format!(
                    "not an audit export this tool knows: the header starts `{}`; expected a Log Analytics \
                     AuditLogs export (TimeGenerated, OperationName, TargetResources, ...)",
                    header_start(&names)
                )
            });
        }
        if has("date (utc)") && has("activity") && !has("targetresources") {
            return Err("the Entra admin center's audit CSV download flattens targets into numbered columns, \
                        which this version does not read; download JSON instead, or export AuditLogs from Log Analytics"
                .into());
        }
        let audit = |names: Vec<String>, columns: HashMap<String, usize>| Header {
            dialect: Dialect::LogAnalyticsAudit,
            delimiter,
            keys: json_keys(&names, &columns),
            columns,
            names,
            event_type: None,
            portal: PortalColumns::default(),
        };
        if has("auditdata") {
            // A Purview audit search export: the record is in `AuditData`.
            return Ok(audit(names, columns));
        }
        for alternatives in [
            &["activitydatetime", "timegenerated"][..],
            &["targetresources"],
            &["operationname", "activitydisplayname"],
        ] {
            if !alternatives.iter().any(|c| has(c)) {
                return Err(format!(
                    "the CSV has no `{}` column, which an audit event needs (header names are matched ignoring case and spaces)",
                    alternatives.join("` or `")
                ));
            }
        }
        Ok(audit(names, columns))
    }

    fn check_required(&self) -> Result<(), String> {
        let need: &[&[&str]] = match self.dialect {
            Dialect::LogAnalytics => {
                &[&["id"], &["createddatetime", "timegenerated"], &["resulttype", "status"]]
            }
            Dialect::Portal => &[&["request id"], &["date (utc)"], &["sign-in error code", "status"]],
            Dialect::PortalAuthDetails | Dialect::LogAnalyticsAudit => &[],
        };
        for alternatives in need {
            if !alternatives.iter().any(|c| self.columns.contains_key(*c)) {
                return Err(format!(
                    "the CSV has no `{}` column, which a sign-in needs (header names are matched ignoring case and spaces)",
                    alternatives.join("` or `")
                ));
            }
        }
        Ok(())
    }

    /// Log Analytics columns carry the table's own (PascalCase) names, which
    /// the readers accept as they are: (key, text) for each column given.
    fn log_analytics_pairs<'h, 'r>(
        &'h self,
        row: Row<'r>,
    ) -> impl Iterator<Item = (&'h str, &'r str)> + Clone + use<'h, 'r> {
        self.keys.iter().filter_map(move |(i, key)| cell(row, *i).map(|v| (key.as_str(), v)))
    }

    /// An audit row (Log Analytics AuditLogs, Purview) as the JSON object
    /// the audit reader understands.
    pub fn to_json(&self, row: Row<'_>) -> Value {
        let m: Map<String, Value> = self
            .log_analytics_pairs(row)
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        Value::Object(m)
    }

    /// The row as the loose sign-in the JSON readers fill, its text
    /// borrowed from the row. The same serde rules read it as read a JSON
    /// record, from (key, text) pairs instead of a JSON object built per row
    /// (building that object cost more than parsing the CSV).
    pub fn to_raw<'r>(&self, row: Row<'r>) -> Result<RawSignIn<'r>, FieldError> {
        let at = |i: Option<usize>| i.and_then(|i| cell(row, i));
        let p = &self.portal;
        match self.dialect {
            Dialect::Portal => {
                // Each column fills its field directly, as serde would from
                // the (key, text) pairs (a test compares the two): none of
                // these fields can refuse a text, and matching the keys'
                // names cost a tenth of the time.
                let mut raw = RawSignIn::default();
                for (_, fill, i) in &p.fields {
                    if let Some(v) = cell(row, *i) {
                        fill(&mut raw, v);
                    }
                }
                raw.status = Embedded(Some(RawStatus {
                    error_code: LenientU32(self.portal_error_code(row)?),
                    additional_details: ClaimNote(at(p.mfa_result).is_some_and(says_mfa_by_claim)),
                }));
                raw.device_detail = Embedded(Some(self.portal_device(row)?));
                raw.mfa_detail = Embedded(Some(RawMfaDetail {
                    auth_detail: ClaimNote(at(p.mfa_auth_detail).is_some_and(says_mfa_by_claim)),
                }));
                Ok(raw)
            }
            _ => {
                // As the JSON reader does: the Conditional Access lists
                // (JSON text in their cells) are read for a cross-tenant
                // sign-in only ([`super::raw::Later`]); a row that fails so
                // is read again as it always was, which decides.
                let pairs = self.log_analytics_pairs(row);
                let map = MapDeserializer::<_, DeError>::new(pairs.clone().map(|(k, v)| (k, Cell(v))));
                if let Ok(mut raw) = read_values_later(LeaveAs::Text, || RawSignIn::deserialize(map)) {
                    if read_later_if_needed(&mut raw) {
                        return Ok(raw);
                    }
                }
                from_pairs(pairs)
            }
        }
    }

    /// The device columns, read as serde reads them from (key, text)
    /// pairs; serde itself is asked only to word a refusal.
    fn portal_device(&self, row: Row<'_>) -> Result<RawDevice, FieldError> {
        let [(_, compliant), (_, managed), (_, trust_type)] = self.portal.device;
        let at = |i: Option<usize>| i.and_then(|i| cell(row, i));
        let flag = |i| at(i).map(parse_bool_text).transpose().map(|b| LenientBool(b.flatten()));
        match (flag(compliant), flag(managed)) {
            (Ok(is_compliant), Ok(is_managed)) => Ok(RawDevice {
                is_compliant,
                is_managed,
                trust_type: Text(at(trust_type).map(str::to_owned)),
            }),
            _ => from_pairs(self.portal.device.iter().filter_map(|(key, i)| at(*i).map(|v| (*key, v)))),
        }
    }

    /// `Sign-in error code`, else 0 when `Status` says success.
    fn portal_error_code(&self, row: Row<'_>) -> Result<Option<u32>, FieldError> {
        let at = |i: Option<usize>| i.and_then(|i| cell(row, i));
        let code = match at(self.portal.error_code) {
            Some(c) => Some(
                super::lenient::parse_u32_text(c).map_err(|m| FieldError::new("Sign-in error code", m))?,
            )
            .flatten(),
            None => None,
        };
        match (code, at(self.portal.status)) {
            (Some(c), _) => Ok(Some(c)),
            (None, Some(s)) if s.eq_ignore_ascii_case("success") => Ok(Some(0)),
            (None, Some(s)) => {
                Err(FieldError::new("Sign-in error code", format!("empty while Status is `{s}`")))
            }
            (None, None) => Ok(None),
        }
    }
}

/// Sets a [`RawSignIn`] field from a cell's text, as its serde rule would.
type Fill = for<'r> fn(&mut RawSignIn<'r>, &'r str);

/// The admin center download's columns (normalised names), the signIn keys
/// they fill and how; status, device and MFA columns are read apart.
const PORTAL_FIELDS: [(&str, &str, Fill); 19] = [
    ("id", "request id", |r, v| r.id = Some(v.into())),
    ("createdDateTime", "date (utc)", |r, v| r.created_date_time = Some(v.into())),
    ("userId", "user id", |r, v| r.user_id = BorrowedText(Some(v.into()))),
    ("userPrincipalName", "username", |r, v| r.user_principal_name = Some(v.into())),
    ("userType", "user type", |r, v| r.user_type = Some(v.into())),
    ("crossTenantAccessType", "cross tenant access type", |r, v| r.cross_tenant_access_type = Some(v.into())),
    ("appDisplayName", "application", |r, v| r.app_display_name = Some(v.into())),
    ("appId", "application id", |r, v| r.app_id = BorrowedText(Some(v.into()))),
    ("appOwnerTenantId", "app owner tenant id", |r, v| r.app_owner_tenant_id = MaybeGuid::of(v)),
    ("resourceDisplayName", "resource", |r, v| r.resource_display_name = Some(v.into())),
    ("resourceId", "resource id", |r, v| r.resource_id = BorrowedText(Some(v.into()))),
    ("resourceOwnerTenantId", "resource owner tenant id", |r, v| {
        r.resource_owner_tenant_id = MaybeGuid::of(v)
    }),
    ("resourceTenantId", "resource tenant id", |r, v| r.resource_tenant_id = Some(v.into())),
    ("homeTenantId", "home tenant id", |r, v| r.home_tenant_id = Some(v.into())),
    ("homeTenantName", "home tenant name", |r, v| r.home_tenant_name = Some(v.into())),
    ("conditionalAccessStatus", "conditional access", |r, v| r.conditional_access_status = Some(v.into())),
    ("authenticationRequirement", "authentication requirement", |r, v| {
        r.authentication_requirement = Some(v.into())
    }),
    ("tokenIssuerType", "token issuer type", |r, v| r.token_issuer_type = Some(v.into())),
    ("servicePrincipalId", "service principal id", |r, v| {
        r.service_principal_id = BorrowedText(Some(v.into()))
    }),
];

/// A cell's text, trimmed; an empty cell is no value.
fn cell(row: Row<'_>, i: usize) -> Option<&str> {
    row.get(i).map(crate::model::text::trim).filter(|v| !v.is_empty())
}

/// Deserializes `T` from (key, cell text) pairs, as if from a JSON object
/// of strings. A row that fails is read again with path tracking (a cost
/// paid by failing rows only), so that the error names its column.
fn from_pairs<'k, 'r, T: Deserialize<'r>>(
    pairs: impl Iterator<Item = (&'k str, &'r str)> + Clone,
) -> Result<T, FieldError> {
    let map = MapDeserializer::new(pairs.clone().map(|(k, v)| (k, Cell(v))));
    T::deserialize(map).map_err(|first: DeError| {
        let map = MapDeserializer::<_, DeError>::new(pairs.map(|(k, v)| (k, Cell(v))));
        match serde_path_to_error::deserialize::<_, T>(map) {
            Err(e) => FieldError::new(e.path().to_string(), e.into_inner().to_string()),
            Ok(_) => FieldError::new("", first.to_string()),
        }
    })
}

/// One CSV cell to serde: text, borrowed from the row; present whenever
/// it is given (empty cells are left out before this).
struct Cell<'de>(&'de str);

impl<'de> Deserializer<'de> for Cell<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, DeError> for Cell<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// `InteractiveSignIns_2024-01-01_2024-01-31.csv` and its siblings: the
/// portal writes interactive and non-interactive sign-ins with the same
/// header, so only the name tells them apart.
pub fn portal_kind_from_name(name: &str) -> Option<EventType> {
    let n = name.to_ascii_lowercase();
    if n.starts_with("noninteractivesignins") {
        Some(EventType::NonInteractive)
    } else if n.starts_with("interactivesignins") {
        Some(EventType::Interactive)
    } else if n.starts_with("applicationsignins") {
        Some(EventType::ServicePrincipal)
    } else if n.starts_with("msisignins") {
        Some(EventType::ManagedIdentity)
    } else {
        None
    }
}

/// The first few names of a header, as a message quotes them.
fn header_start(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(6).map(String::as_str).collect();
    crate::model::text::clip(&shown.join(","), crate::model::text::QUOTED_BYTES).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(line: &str, name: Option<&str>) -> Result<Header, String> {
        let d = sniff_delimiter(line);
        let names = line.split(d as char).map(str::to_string).collect();
        Header::new(names, d, name)
    }

    #[test]
    fn recognises_dialects_with_header_quirks() {
        let la = header("TenantId,SourceSystem,TimeGenerated [UTC],Id,ResultType,Type", None).unwrap();
        assert_eq!(la.dialect, Dialect::LogAnalytics);
        let p = header(
            "Date (UTC),Request ID,User ID,Application ID ,Autonomous system  number,Status,Incoming token type,Incoming token type",
            Some("NonInteractiveSignIns_2024.csv"),
        )
        .unwrap();
        assert_eq!(p.dialect, Dialect::Portal);
        assert_eq!(p.event_type, Some(EventType::NonInteractive));
        assert!(p.columns.contains_key("application id"));
        assert!(p.columns.contains_key("autonomous system number"));
        let semi = header("Date (UTC);Request ID;Status", None).unwrap();
        assert_eq!(semi.delimiter, b';');
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The admin center's columns fill the sign-in as serde reading the
        /// same (key, text) pairs fills it.
        #[test]
        fn admin_center_columns_fill_the_sign_in_as_serde_does(
            cells in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::strategy::Just(String::new()),
                    proptest::strategy::Just("0D1C2B3A-0000-4000-8000-00000000000F".to_string()),
                    proptest::strategy::Just(" 0d1c2b3a-0000-4000-8000-00000000000f ".to_string()),
                    "[ -~]{0,12}",
                    "\\PC{0,6}",
                ],
                PORTAL_FIELDS.len(),
            )
        ) {
            let mut raw = RawSignIn::default();
            for ((_, _, fill), v) in PORTAL_FIELDS.iter().zip(&cells) {
                let v = v.trim();
                if !v.is_empty() {
                    fill(&mut raw, v);
                }
            }
            let pairs = PORTAL_FIELDS
                .iter()
                .zip(&cells)
                .map(|((key, _, _), v)| (*key, v.trim()))
                .filter(|(_, v)| !v.is_empty());
            let by_serde: RawSignIn = from_pairs(pairs).unwrap();
            proptest::prop_assert_eq!(format!("{raw:?}"), format!("{by_serde:?}"));
        }
    }

    /// A batch holding `line` as its one row, cut at every `delimiter`
    /// (no quoting), on line 2.
    fn one_row(line: &str, delimiter: char) -> Rows {
        let mut rows = Rows::default();
        let mark = rows.mark();
        let (text, spans) = rows.buffers();
        text.push_str(line);
        let mut start = 0;
        spans.extend(line.split(delimiter).map(|f| {
            start += f.len() + 1;
            (start - f.len() - 1, start - 1)
        }));
        rows.keep(mark, 2, 1);
        rows
    }

    #[test]
    fn admin_center_device_columns_read_as_serde_reads_them_and_are_refused_in_its_words() {
        let h = header("Date (UTC),Request ID,Status,Compliant,Managed,Join Type", None).unwrap();
        for cells in [
            ["", "", ""],
            ["TRUE", "no", "Hybrid Azure AD joined"],
            [" 1 ", "0", ""],
            ["maybe", "yes", "x"],
            ["yes", "sometimes", ""],
        ] {
            let line = format!("2026-11-01T00:00:00Z,r,Success,{}", cells.join(","));
            let rows = one_row(&line, ',');
            let (_, row) = rows.iter().next().unwrap();
            let row = row.unwrap();
            let pairs =
                h.portal.device.iter().filter_map(|(key, i)| i.and_then(|i| cell(row, i)).map(|v| (*key, v)));
            let by_serde = from_pairs::<RawDevice>(pairs).map(|d| format!("{d:?}"));
            assert_eq!(h.portal_device(row).map(|d| format!("{d:?}")), by_serde, "{cells:?}");
        }
    }

    /// A Log Analytics row's Conditional Access cell is read for a
    /// cross-tenant sign-in only: the same sign-in, or the same refusal, as
    /// reading every cell as it comes; a sign-in that is not cross-tenant
    /// is not refused for a cell nothing reads.
    #[test]
    fn a_log_analytics_rows_policy_list_is_read_for_cross_tenant_sign_ins_only() {
        const A: &str = "11111111-1111-1111-1111-111111111111";
        const B: &str = "22222222-2222-2222-2222-222222222222";
        let h = header("TimeGenerated [UTC];Id;ResultType;Type;UserId;HomeTenantId;ResourceTenantId;ConditionalAccessPolicies", None)
            .unwrap();
        let ctx = Default::default();
        for list in [
            "",
            "[]",
            r#"[{"result":"success","enforcedGrantControls":["Mfa"],"displayName":"x, \"y\""}]"#,
            "[5]",
            "not JSON",
        ] {
            for (home, resource) in [(A, B), (A, A)] {
                let line = format!("2026-11-01T00:00:00Z;r;0;SigninLogs;u;{home};{resource};{list}");
                let rows = one_row(&line, ';');
                let (_, row) = rows.iter().next().unwrap();
                let row = row.unwrap();
                let later = h.to_raw(row).and_then(|raw| crate::ingest::json::classify_csv(raw, &ctx));
                let as_it_comes = from_pairs(h.log_analytics_pairs(row))
                    .and_then(|raw| crate::ingest::json::classify_csv(raw, &ctx));
                let (later, as_it_comes) =
                    (later.map(|p| format!("{p:?}")), as_it_comes.map(|p| format!("{p:?}")));
                if home == resource && as_it_comes.is_err() {
                    assert!(later.is_ok(), "{list}: {later:?}");
                } else {
                    assert_eq!(later, as_it_comes, "{list} {home} {resource}");
                }
            }
        }
    }

    #[test]
    fn missing_columns_and_foreign_files_are_named() {
        let e = header("TenantId,TimeGenerated [UTC],Id,Type", None).unwrap_err();
        assert!(e.contains("`resulttype` or `status`"), "{e}");
        let e = header("name,age", None).unwrap_err();
        assert!(e.contains("not a sign-in export"), "{e}");
    }
}
