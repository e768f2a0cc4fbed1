//! Rendering `activity` results.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use crate::analysis::activity::ActivityTable;
use crate::model::ReadStats as Stats;
use crate::model::{ActivityRow, Direction, GroupBy};

use super::table::{self, CsvStyle, TypedCell};
use super::SCHEMA_VERSION;
use crate::model::rfc3339;

pub(crate) use crate::model::activity::columns;

/// An activity column, resolved from its name once per output rather
/// than once per cell ([`table::stream_typed_csv`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Column {
    Direction,
    AccessType,
    PartnerTenantId,
    PartnerTenantName,
    AppId,
    AppName,
    ResourceId,
    ResourceName,
    UserId,
    UserPrincipalName,
    UserType,
    DistinctApps,
    DistinctUsers,
    SignIns,
    Successes,
    Failures,
    PolicyBlocks,
    FirstSeen,
    LastSeen,
    BlockedByUs,
    BlockedByPartner,
    MfaRequired,
    MfaByClaim,
    CompliantDeviceRequired,
    HybridJoinRequired,
    CaDetailsMissing,
    AppOwnerTenantId,
    ResourceOwnerTenantId,
    GrantClauses,
}

impl Column {
    /// Every column by the name [`columns`] gives it.
    const NAMED: [(&'static str, Column); 29] = [
        ("direction", Column::Direction),
        ("access_type", Column::AccessType),
        ("partner_tenant_id", Column::PartnerTenantId),
        ("partner_tenant_name", Column::PartnerTenantName),
        ("app_id", Column::AppId),
        ("app_name", Column::AppName),
        ("resource_id", Column::ResourceId),
        ("resource_name", Column::ResourceName),
        ("user_id", Column::UserId),
        ("user_principal_name", Column::UserPrincipalName),
        ("user_type", Column::UserType),
        ("distinct_apps", Column::DistinctApps),
        ("distinct_users", Column::DistinctUsers),
        ("sign_ins", Column::SignIns),
        ("successes", Column::Successes),
        ("failures", Column::Failures),
        ("policy_blocks", Column::PolicyBlocks),
        ("first_seen", Column::FirstSeen),
        ("last_seen", Column::LastSeen),
        ("blocked_by_us", Column::BlockedByUs),
        ("blocked_by_partner", Column::BlockedByPartner),
        ("mfa_required", Column::MfaRequired),
        ("mfa_by_claim", Column::MfaByClaim),
        ("compliant_device_required", Column::CompliantDeviceRequired),
        ("hybrid_join_required", Column::HybridJoinRequired),
        ("ca_details_missing", Column::CaDetailsMissing),
        ("app_owner_tenant_id", Column::AppOwnerTenantId),
        ("resource_owner_tenant_id", Column::ResourceOwnerTenantId),
        ("grant_clauses", Column::GrantClauses),
    ];

    /// The column named `name`; a name [`columns`] does not give is a bug.
    pub(super) fn of(name: &str) -> Column {
        match Column::NAMED.iter().find(|(n, _)| *n == name) {
            Some((_, c)) => *c,
            None => unreachable!("unknown activity column {name}"),
        }
    }
}

/// One cell of a row, typed: the one place that says what each column
/// holds.
pub(super) fn typed<'a>(r: &'a ActivityRow, column: Column) -> TypedCell<'a> {
    use std::borrow::Cow;
    let c = &r.counters;
    let text = |v: Option<&'a str>| v.map_or(TypedCell::Null, |s| TypedCell::Text(Cow::Borrowed(s)));
    let number = |n: Option<u64>| n.map_or(TypedCell::Null, TypedCell::Number);
    let guid = |g: Option<crate::model::Guid>| g.map_or(TypedCell::Null, TypedCell::Guid);
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(TypedCell::Null, TypedCell::Time);
    match column {
        Column::Direction => text(Some(r.direction.as_str())),
        Column::AccessType => text(Some(r.access_type.as_str())),
        Column::PartnerTenantId => TypedCell::Guid(r.partner_tenant_id),
        Column::PartnerTenantName => text(r.partner_tenant_name.as_deref()),
        Column::AppId => text(r.app_id.as_deref()),
        Column::AppName => text(r.app_name.as_deref()),
        Column::ResourceId => text(r.resource_id.as_deref()),
        Column::ResourceName => text(r.resource_name.as_deref()),
        Column::UserId => text(r.user_id.as_deref()),
        Column::UserPrincipalName => text(r.user_principal_name.as_deref()),
        Column::UserType => text(r.user_type.map(|t| t.as_str())),
        Column::DistinctApps => number(r.distinct_apps),
        Column::DistinctUsers => number(r.distinct_users),
        Column::SignIns => number(Some(c.sign_ins)),
        Column::Successes => number(Some(c.successes)),
        Column::Failures => number(Some(c.failures)),
        Column::PolicyBlocks => number(Some(c.policy_blocks)),
        Column::FirstSeen => time(c.first_seen),
        Column::LastSeen => time(c.last_seen),
        Column::BlockedByUs => number(Some(r.blocked_by_us())),
        Column::BlockedByPartner => number(Some(r.blocked_by_partner())),
        Column::MfaRequired => number(Some(c.mfa_required)),
        Column::MfaByClaim => number(Some(c.mfa_by_claim)),
        Column::CompliantDeviceRequired => number(Some(c.compliant_device_required)),
        Column::HybridJoinRequired => number(Some(c.hybrid_join_required)),
        Column::CaDetailsMissing => number(Some(c.ca_details_missing)),
        Column::AppOwnerTenantId => guid(r.app_owner_tenant_id),
        Column::ResourceOwnerTenantId => guid(r.resource_owner_tenant_id),
        Column::GrantClauses => (!c.grant_clauses.is_empty())
            .then(|| crate::model::Clause::list_text(&c.grant_clauses))
            .map_or(TypedCell::Null, |t| TypedCell::Text(Cow::Owned(t))),
    }
}

/// Writes rows as CSV one at a time ([`table::stream_typed_csv`]).
pub(crate) fn stream_csv(
    rows: impl Iterator<Item = ActivityRow>,
    columns: &[&'static str],
    w: &mut dyn Write,
    style: CsvStyle,
) -> anyhow::Result<()> {
    table::stream_typed_csv(rows, columns, Column::of, typed, w, style)
}

/// A row's CSV line as [`stream_csv`] writes it.
pub(crate) fn csv_line(
    columns: &[&'static str],
    style: CsvStyle,
) -> impl Fn(&ActivityRow, &mut Vec<u8>) + Sync {
    table::typed_csv_line(columns, Column::of, typed, style)
}

/// A row's NDJSON line: its object, keys in column order.
pub(crate) fn ndjson_line(columns: &[&'static str]) -> impl Fn(&ActivityRow, &mut Vec<u8>) + Sync {
    table::typed_json_object(columns, Column::of, typed, table::JsonLayout::Line)
}

/// A row as an element of the JSON document's rows
/// ([`write_json_document`]).
pub(crate) fn json_row(columns: &[&'static str]) -> impl Fn(&ActivityRow, &mut Vec<u8>) + Sync {
    table::typed_json_object(columns, Column::of, typed, table::JsonLayout::DocumentRow)
}

/// The run summary as JSON: what was read, kept, dropped and inferred.
pub(crate) fn summary(report: &ActivityTable, stats: &Stats) -> Value {
    let t = &report.totals;
    json!({
        "tenant": report.tenant.map(|t| t.to_string()),
        "tenant_inferred": report.inferred_tenant.is_some(),
        "files": stats.files,
        "bytes_read": stats.bytes_read,
        "records_read": stats.records_read,
        "cross_tenant_sign_ins": t.cross_tenant,
        "intra_tenant_sign_ins": t.intra_tenant,
        "unclassified_sign_ins": t.unclassified,
        "other_tenants_sign_ins": t.other_tenants,
        "duplicates_dropped": t.duplicates_dropped,
        "invalid_records": stats.invalid_records,
        "ignored_records": stats.ignored,
        "window": {
            "first": t.first_seen.as_ref().map(rfc3339),
            "last": t.last_seen.as_ref().map(rfc3339),
        },
        "cross_tenant_by_event_type": t.cross_tenant_by_event_type,
        "notices": stats.notices,
    })
}

/// The JSON document: its summary, then the rows, which `rows` writes as
/// text in order, each as [`json_row`] writes it.
pub(crate) fn write_json_document(
    out: &mut dyn std::io::Write,
    report: &ActivityTable,
    stats: &Stats,
    rows: impl FnOnce(&mut dyn std::io::Write) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut head = serde_json::Map::new();
    head.insert("schema_version".into(), SCHEMA_VERSION.into());
    head.insert("by".into(), json!(report.by));
    head.insert("summary".into(), summary(report, stats));
    super::write_json_with_row_texts(out, head, rows)
}

/// Human-readable summary lines for stderr; `window` unless the command's
/// own output states it where the reader sees it.
pub(crate) fn summary_lines(report: &ActivityTable, stats: &Stats, window: bool) -> Vec<String> {
    let t = &report.totals;
    let mut out = vec![format!(
        "read {} sign-ins from {} file(s): {} cross-tenant, {} intra-tenant, {} unclassified; {} duplicates dropped, {} invalid skipped",
        stats.records_read, stats.files, t.cross_tenant, t.intra_tenant, t.unclassified, t.duplicates_dropped, stats.invalid_records
    )];
    if let Some(i) = &report.inferred_tenant {
        out.push(format!("{i} (override with --tenant)"));
    }
    if let (true, Some(a), Some(b)) = (window, t.first_seen, t.last_seen) {
        out.push(format!("window: {} to {}", rfc3339(&a), rfc3339(&b)));
    }
    for (reason, n) in &stats.ignored {
        out.push(format!("ignored {n} record(s): {reason}"));
    }
    if t.other_tenants > 0 {
        out.push(format!(
            "{} cross-tenant sign-in(s) involve neither side as our tenant and are not reported",
            t.other_tenants
        ));
    }
    for n in &stats.notices {
        out.push(n.clone());
    }
    if stats.records_read > 0 && t.unclassified * 2 > stats.records_read {
        out.push(format!(
            "warning: {} of {} sign-ins carry no home or resource tenant, so they cannot be classified. \
             Export from the Graph beta endpoint (GET /beta/auditLogs/signIns, or Get-MgBetaAuditLogSignIn), \
             or include the HomeTenantId, ResourceTenantId and CrossTenantAccessType columns",
            t.unclassified, stats.records_read
        ));
    }
    out
}

pub(crate) fn short(id: Option<&str>) -> String {
    match id {
        Some(s) if s.chars().count() > 12 => format!("{}…", s.chars().take(8).collect::<String>()),
        Some(s) => s.to_string(),
        None => "-".into(),
    }
}

/// A name where the logs carry one, else the shortened id.
pub(crate) fn named(name: Option<&str>, id: Option<&str>, max: usize) -> String {
    match name {
        Some(n) => super::table::clip(n, max),
        None => short(id),
    }
}

pub(crate) fn partner_label(r: &crate::analysis::activity::ActivityRow, max: usize) -> String {
    match &r.partner_tenant_name {
        Some(n) => super::table::clip(&format!("{} {}", r.partner_tenant_id.short(), n), max),
        None => r.partner_tenant_id.short(),
    }
}

/// The client app, with the resource after an arrow when it differs.
pub(crate) fn app_label(r: &crate::analysis::activity::ActivityRow, max: usize) -> String {
    let app = named(r.app_name.as_deref(), r.app_id.as_deref(), max);
    if r.resource_id.is_some() && r.resource_id != r.app_id && r.resource_name != r.app_name {
        let res = named(r.resource_name.as_deref(), r.resource_id.as_deref(), max);
        super::table::clip(&format!("{app} → {res}"), max)
    } else {
        app
    }
}

/// The text table's headers at grain `by`.
pub(crate) fn text_headers(by: GroupBy) -> Vec<&'static str> {
    let mut headers = vec!["dir", "access", "partner"];
    match by {
        GroupBy::User => headers.extend(["app", "user"]),
        GroupBy::App => headers.extend(["app", "users"]),
        GroupBy::Tenant => headers.extend(["apps", "users"]),
    }
    headers.extend(["sign-ins", "fail", "blocks", "last seen"]);
    headers
}

/// A row of the table for people: names where the logs have them, short
/// ids else, clipped so that a row fits in 120 columns; and its colour:
/// red when policy blocked some of its sign-ins.
pub(crate) fn text_row(r: &ActivityRow, by: GroupBy) -> (Vec<String>, Option<table::Color>) {
    let dir = match r.direction {
        Direction::Inbound => "in",
        Direction::Outbound => "out",
    };
    let mut row = vec![dir.to_string(), table::short_access(r.access_type).to_string(), partner_label(r, 17)];
    match by {
        GroupBy::User => {
            row.push(app_label(r, 24));
            row.push(named(r.user_principal_name.as_deref(), r.user_id.as_deref(), 19));
        }
        GroupBy::App => {
            row.push(app_label(r, 36));
            row.push(r.distinct_users.unwrap_or(0).to_string());
        }
        GroupBy::Tenant => {
            row.push(r.distinct_apps.unwrap_or(0).to_string());
            row.push(r.distinct_users.unwrap_or(0).to_string());
        }
    }
    let c = &r.counters;
    row.extend([
        c.sign_ins.to_string(),
        c.failures.to_string(),
        c.policy_blocks.to_string(),
        c.last_seen.map_or(String::new(), |t| t.format("%Y-%m-%d").to_string()),
    ]);
    (row, (c.policy_blocks > 0).then_some(table::Color::Red))
}

/// Writes the text table of `rows`, its columns laid out by `layout`
/// (which has measured every row, [`text_row`]), a row at a time.
pub(crate) fn write_text(
    w: &mut dyn Write,
    by: GroupBy,
    layout: &table::TextLayout,
    rows: &mut dyn Iterator<Item = ActivityRow>,
    color: bool,
) -> Result<()> {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return Ok(w.write_all(b"no cross-tenant sign-ins found\n")?);
    }
    let mut out = String::new();
    layout.header(&text_headers(by), color, &mut out);
    for r in rows {
        super::write_when_full(&mut out, w)?;
        let (cells, red) = text_row(&r, by);
        out.push('\n');
        layout.row(&cells, red.filter(|_| color), &mut out);
    }
    out.push('\n');
    Ok(w.write_all(out.as_bytes())?)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::{AccessType, Clause, Controls, Counters, Guid, UserType};

    /// A row with every column filled (hostile text included) and one with
    /// every optional column empty.
    pub(in crate::render) fn full_and_empty_rows() -> [ActivityRow; 2] {
        let t = chrono::DateTime::from_timestamp(1_790_000_000, 5).unwrap();
        let full = ActivityRow {
            direction: Direction::Outbound,
            access_type: AccessType::B2bDirectConnect,
            partner_tenant_id: Guid(77),
            partner_tenant_name: Some("=cmd|' /C calc'!A0, \"x\"\n".into()),
            app_id: Some("app".into()),
            app_name: Some("App".into()),
            app_owner_tenant_id: Some(Guid(u128::MAX)),
            resource_id: Some("res".into()),
            resource_name: Some("".into()),
            resource_owner_tenant_id: Some(Guid(3)),
            user_id: Some("u".into()),
            user_principal_name: Some("u@x".into()),
            user_type: Some(UserType::Guest),
            counters: Counters {
                sign_ins: u64::MAX,
                successes: 1,
                home_outbound_blocks: 2,
                resource_inbound_blocks: 3,
                first_seen: Some(t),
                last_seen: Some(t),
                grant_clauses: vec![Clause {
                    policy: Some(Guid(1)),
                    controls: Controls::MFA,
                    strength: None,
                }],
                ..Counters::default()
            },
            distinct_users: Some(4),
            distinct_apps: Some(0),
            by_epoch: vec![],
        };
        let empty = ActivityRow {
            partner_tenant_name: None,
            app_id: None,
            app_name: None,
            app_owner_tenant_id: None,
            resource_id: None,
            resource_name: None,
            resource_owner_tenant_id: None,
            user_id: None,
            user_principal_name: None,
            user_type: None,
            counters: Counters::default(),
            distinct_users: None,
            distinct_apps: None,
            ..full.clone()
        };
        [full, empty]
    }

    #[test]
    fn a_csv_cell_written_as_text_is_the_text_of_its_json_cell() {
        let every_column: Vec<&str> =
            [GroupBy::User, GroupBy::App, GroupBy::Tenant].into_iter().flat_map(columns).collect();
        for r in &full_and_empty_rows() {
            for column in &every_column {
                let mut text = String::new();
                typed(r, Column::of(column)).text_into(&mut text);
                assert_eq!(text, table::cell_text(&typed(r, Column::of(column)).into_json()), "{column}");
            }
        }
    }
}
