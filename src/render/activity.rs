//! Rendering `activity` results.

use serde_json::{json, Value};

use crate::analysis::activity::ActivityTable;
use crate::model::ReadStats as Stats;
use crate::model::{ActivityRow, Direction, GroupBy};

use super::table::{self, opt, Table};
use super::SCHEMA_VERSION;
use crate::model::rfc3339;

pub(crate) use crate::model::activity::columns;

pub(crate) fn cell(r: &ActivityRow, column: &str) -> Value {
    let c = &r.counters;
    match column {
        "direction" => json!(r.direction.as_str()),
        "access_type" => json!(r.access_type.as_str()),
        "partner_tenant_id" => json!(r.partner_tenant_id.to_string()),
        "partner_tenant_name" => opt(&r.partner_tenant_name),
        "app_id" => opt(&r.app_id),
        "app_name" => opt(&r.app_name),
        "resource_id" => opt(&r.resource_id),
        "resource_name" => opt(&r.resource_name),
        "user_id" => opt(&r.user_id),
        "user_principal_name" => opt(&r.user_principal_name),
        "user_type" => r.user_type.map_or(Value::Null, |t| json!(t.as_str())),
        "distinct_apps" => json!(r.distinct_apps),
        "distinct_users" => json!(r.distinct_users),
        "sign_ins" => json!(c.sign_ins),
        "successes" => json!(c.successes),
        "failures" => json!(c.failures),
        "policy_blocks" => json!(c.policy_blocks),
        "first_seen" => opt(&c.first_seen.as_ref().map(rfc3339)),
        "last_seen" => opt(&c.last_seen.as_ref().map(rfc3339)),
        "blocked_by_us" => json!(r.blocked_by_us()),
        "blocked_by_partner" => json!(r.blocked_by_partner()),
        "mfa_required" => json!(c.mfa_required),
        "mfa_by_claim" => json!(c.mfa_by_claim),
        "compliant_device_required" => json!(c.compliant_device_required),
        "hybrid_join_required" => json!(c.hybrid_join_required),
        "ca_details_missing" => json!(c.ca_details_missing),
        "app_owner_tenant_id" => opt(&r.app_owner_tenant_id),
        "resource_owner_tenant_id" => opt(&r.resource_owner_tenant_id),
        "grant_clauses" => {
            if c.grant_clauses.is_empty() {
                Value::Null
            } else {
                json!(crate::model::Clause::list_text(&c.grant_clauses))
            }
        }
        other => unreachable!("unknown activity column {other}"),
    }
}

/// The rows as cells, one at a time (for the streaming sinks).
pub(crate) fn rows<'a>(
    report: &'a ActivityTable,
    columns: &'a [&'static str],
) -> impl Iterator<Item = Vec<Value>> + 'a {
    report.rows.iter().map(move |r| columns.iter().map(|c| cell(r, c)).collect())
}

pub(crate) fn table(report: &ActivityTable) -> Table {
    let mut t = Table::new(columns(report.by));
    for r in &report.rows {
        let row = t.columns.iter().map(|c| cell(r, c)).collect();
        t.rows.push(row);
    }
    t
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

pub(crate) fn json_document(report: &ActivityTable, stats: &Stats) -> Value {
    json!({
        "schema_version": SCHEMA_VERSION,
        "by": report.by,
        "summary": summary(report, stats),
        "rows": table(report).objects(),
    })
}

/// Human-readable summary lines for stderr.
pub(crate) fn summary_lines(report: &ActivityTable, stats: &Stats) -> Vec<String> {
    let t = &report.totals;
    let mut out = vec![format!(
        "read {} sign-ins from {} file(s): {} cross-tenant, {} intra-tenant, {} unclassified; {} duplicates dropped, {} invalid skipped",
        stats.records_read, stats.files, t.cross_tenant, t.intra_tenant, t.unclassified, t.duplicates_dropped, stats.invalid_records
    )];
    if let Some(i) = &report.inferred_tenant {
        out.push(format!("{i} (override with --tenant)"));
    }
    if let (Some(a), Some(b)) = (t.first_seen, t.last_seen) {
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

/// The table for people: names where the logs have them, short ids else,
/// clipped so that a row fits in 120 columns.
pub(crate) fn text(report: &ActivityTable, color: bool, width: u16) -> String {
    if report.rows.is_empty() {
        return "no cross-tenant sign-ins found\n".into();
    }
    let mut headers = vec!["dir", "access", "partner"];
    match report.by {
        GroupBy::User => headers.extend(["app", "user"]),
        GroupBy::App => headers.extend(["app", "users"]),
        GroupBy::Tenant => headers.extend(["apps", "users"]),
    }
    headers.extend(["sign-ins", "fail", "blocks", "last seen"]);
    let mut rows = Vec::new();
    let mut colors = Vec::new();
    for r in &report.rows {
        let dir = match r.direction {
            Direction::Inbound => "in",
            Direction::Outbound => "out",
        };
        let mut row =
            vec![dir.to_string(), table::short_access(r.access_type).to_string(), partner_label(r, 17)];
        match report.by {
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
        rows.push(row);
        colors.push((c.policy_blocks > 0).then_some(comfy_table::Color::Red));
    }
    let mut s = table::render_text(&headers, &rows, &colors, width, color);
    s.push('\n');
    s
}
