//! SIEM sinks for `replay` findings: a stable id and a severity per
//! finding, Elastic Common Schema NDJSON, and ArcSight CEF lines.
//!
//! Times are the group's last sign-in (when the access at risk was last
//! used), never the time of the run, so the same input always gives the
//! same output and a SIEM can deduplicate on `finding_id`.

use std::io::Write;

use anyhow::Result;
use serde_json::{json, Value};

use crate::analysis::replay::{Impact, ReplayRow};
use crate::model::rfc3339;
use crate::model::Guid;

/// Findings worth sending: everything but unchanged.
fn is_finding(r: &ReplayRow) -> bool {
    r.impact != Impact::Unchanged
}

/// ECS 8.x documents, one per finding. ECS fields where ECS has them,
/// the rest under `xtenant.*` (custom fields, as ECS asks).
pub(crate) fn write_ecs(
    rows: impl IntoIterator<Item = ReplayRow>,
    tenant: Option<Guid>,
    w: &mut dyn Write,
) -> Result<()> {
    super::table::write_each_line(rows, ecs_line(tenant), w)
}

/// A row's ECS document as [`write_ecs`] writes it: nothing unless it is
/// a finding.
pub(crate) fn ecs_line(tenant: Option<Guid>) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    findings_as(tenant, ecs_document)
}

/// Writes a finding with `write`, and nothing for another row.
fn findings_as(
    tenant: Option<Guid>,
    write: fn(&ReplayRow, Option<Guid>, &mut Vec<u8>),
) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    move |r, w| {
        if is_finding(r) {
            write(r, tenant, w);
        }
    }
}

fn ecs_document(r: &ReplayRow, tenant: Option<Guid>, w: &mut Vec<u8>) {
    let a = &r.activity;
    let doc = json!({
        "@timestamp": a.counters.last_seen.as_ref().map(rfc3339),
        "ecs": {"version": "8.11.0"},
        "event": {
            "kind": "alert",
            "category": ["iam"],
            "type": ["info"],
            "action": format!("cross-tenant-access-{}", r.impact.as_str()),
            "id": r.finding_id(),
            "dataset": "xtenant.replay",
            "provider": "xtenant",
            "severity": r.impact.severity(),
            "reason": r.reason,
            "start": a.counters.first_seen.as_ref().map(rfc3339),
            "end": a.counters.last_seen.as_ref().map(rfc3339),
        },
        "message": format!(
            "{} {} {} access of partner {}: {} -> {}",
            r.impact.as_str(), a.direction.as_str(), a.access_type.as_str(),
            a.partner_tenant_id, r.current.as_str(), r.proposed.as_str()
        ),
        "observer": {"vendor": "xtenant", "product": "xtenant", "type": "policy-replay",
                     "version": env!("CARGO_PKG_VERSION")},
        "organization": {"id": tenant.map(|t| t.to_string())},
        "user": {"id": a.user_id.as_deref(), "name": a.user_principal_name.as_deref()},
        "xtenant": {
            "schema_version": super::SCHEMA_VERSION,
            "impact": r.impact.as_str(),
            "severity_label": r.impact.severity_label(),
            "direction": a.direction.as_str(),
            "access_type": a.access_type.as_str(),
            "partner": {"tenant_id": a.partner_tenant_id.to_string(), "name": a.partner_tenant_name.as_deref()},
            "app": {"id": a.app_id.as_deref(), "name": a.app_name.as_deref()},
            "resource": {"id": a.resource_id.as_deref(), "name": a.resource_name.as_deref()},
            "current": r.current.as_str(),
            "proposed": r.proposed.as_str(),
            "current_reason": r.current_reason,
            "calibration": r.calibration,
            "sign_ins": a.counters.sign_ins,
            "distinct_users": a.distinct_users,
        },
    });
    // Into a Vec: the only error serde_json could give is the writer's.
    let _ = serde_json::to_writer(&mut *w, &strip_nulls(doc));
    w.push(b'\n');
}

/// ECS consumers treat absent and null alike; absent keeps documents small.
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .filter(|(_, v)| !matches!(v, Value::Object(o) if o.is_empty()))
                .collect();
            Value::Object(m)
        }
        other => other,
    }
}

/// CEF header fields escape `\` and `|`; newlines cannot appear in a
/// header, so they become spaces; other hidden characters (NUL, ESC, bidi
/// overrides) are written as `\u{..}` text, escaped in turn.
pub(crate) fn cef_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c if super::escape::hidden(c) => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// CEF extension values escape `\` and `=`, and write newlines as `\n`
/// and `\r`; other hidden characters as `\u{..}` text, escaped in turn.
pub(crate) fn cef_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if super::escape::hidden(c) => out.push_str(&format!("\\\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// One CEF:0 line per finding (ArcSight Common Event Format 25), for
/// syslog collectors and Sentinel's CEF connector.
pub(crate) fn write_cef(
    rows: impl IntoIterator<Item = ReplayRow>,
    tenant: Option<Guid>,
    w: &mut dyn Write,
) -> Result<()> {
    super::table::write_each_line(rows, cef_line(tenant), w)
}

/// A row's CEF line as [`write_cef`] writes it: nothing unless it is a
/// finding.
pub(crate) fn cef_line(tenant: Option<Guid>) -> impl Fn(&ReplayRow, &mut Vec<u8>) + Sync {
    findings_as(tenant, cef_event)
}

fn cef_event(r: &ReplayRow, tenant: Option<Guid>, w: &mut Vec<u8>) {
    let a = &r.activity;
    let partner =
        a.partner_tenant_name.as_deref().map_or_else(|| a.partner_tenant_id.to_string(), str::to_string);
    let name = format!("Cross-tenant access {} under the proposed policy: {partner}", r.impact.as_str());
    let mut ext: Vec<(&str, String)> = vec![("externalId", r.finding_id())];
    if let Some(t) = a.counters.last_seen {
        ext.push(("rt", t.timestamp_millis().to_string()));
        ext.push(("end", t.timestamp_millis().to_string()));
    }
    if let Some(t) = a.counters.first_seen {
        ext.push(("start", t.timestamp_millis().to_string()));
    }
    ext.push(("act", r.impact.as_str().to_string()));
    ext.push(("cnt", a.counters.sign_ins.to_string()));
    if let Some(u) = &a.user_principal_name {
        ext.push(("suser", u.to_string()));
    }
    if let Some(u) = &a.user_id {
        ext.push(("suid", u.to_string()));
    }
    // CEF's `app` is the application-layer protocol (HTTPS, SSH), not
    // an application's name: the app is the service the event targets.
    if let Some(app) = a.app_name.as_ref().or(a.app_id.as_ref()) {
        ext.push(("destinationServiceName", app.to_string()));
    }
    if let Some(id) = &a.app_id {
        ext.push(("flexString1Label", "appId".to_string()));
        ext.push(("flexString1", id.to_string()));
    }
    if let Some(t) = tenant {
        ext.push(("deviceExternalId", t.to_string()));
    }
    for (i, (label, value)) in [
        ("partnerTenantId", Some(a.partner_tenant_id.to_string())),
        ("direction", Some(a.direction.as_str().to_string())),
        ("accessType", Some(a.access_type.as_str().to_string())),
        ("verdicts", Some(format!("{} -> {}", r.current.as_str(), r.proposed.as_str()))),
        ("partnerName", a.partner_tenant_name.as_deref().map(str::to_string)),
        ("resource", a.resource_name.as_deref().or(a.resource_id.as_deref()).map(str::to_string)),
    ]
    .into_iter()
    .enumerate()
    {
        if let Some(v) = value {
            ext.push((CS[i].0, label.to_string()));
            ext.push((CS[i].1, v));
        }
    }
    ext.push(("reason", r.reason.clone()));
    let extension: Vec<String> = ext.iter().map(|(k, v)| format!("{k}={}", cef_value(v))).collect();
    // Into a Vec: writing cannot fail.
    let _ = writeln!(
        w,
        "CEF:0|xtenant|xtenant|{}|{}|{}|{}|{}",
        cef_header(env!("CARGO_PKG_VERSION")),
        cef_header(&format!("xtenant-replay-{}", r.impact.as_str())),
        cef_header(&name),
        r.impact.severity(),
        extension.join(" ")
    );
}

/// CEF's custom string fields: (label key, value key).
const CS: [(&str, &str); 6] = [
    ("cs1Label", "cs1"),
    ("cs2Label", "cs2"),
    ("cs3Label", "cs3"),
    ("cs4Label", "cs4"),
    ("cs5Label", "cs5"),
    ("cs6Label", "cs6"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escaping_follows_the_spec() {
        assert_eq!(cef_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(cef_header("two\nlines"), "two lines");
        assert_eq!(cef_value(r"x=1\y"), r"x\=1\\y");
        assert_eq!(cef_value("a\r\nb|c"), r"a\r\nb|c");
    }

    #[test]
    fn severities_order_impacts() {
        let order = [Impact::Lost, Impact::Degraded, Impact::Unknown, Impact::Gained, Impact::Unchanged];
        assert!(order.windows(2).all(|w| w[0].severity() > w[1].severity()));
    }
}
